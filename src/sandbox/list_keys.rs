//! The schema facts the sandbox needs for built-in kinds: how each list merges (atomic, set,
//! or keyed map) and which maps are atomic. Shared by strategic merge patch and server-side apply
//! so both agree with each other and with Kubernetes' `patchMergeKey` / `listMapKeys` tags.

/// One key field of an associative list; `default` is used when an element omits it
/// (Kubernetes defaults `protocol` to TCP before keying ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyField {
    /// The element field that is part of the key.
    pub name: &'static str,
    /// The value assumed when the element omits the field.
    pub default: Option<&'static str>,
}

/// How a list merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole (`+listType=atomic`, no patch strategy).
    Atomic,
    /// A set of scalars (`+listType=set`, strategic `patchStrategy=merge` on primitives).
    Set,
    /// Elements keyed by `keys` for apply; strategic merge patch keys by `patch_key` alone.
    Map {
        keys: &'static [KeyField],
        patch_key: &'static str,
    },
}

const fn key(name: &'static str) -> KeyField {
    KeyField {
        name,
        default: None,
    }
}

const NAME: &[KeyField] = &[key("name")];
const TYPE: &[KeyField] = &[key("type")];
const UID: &[KeyField] = &[key("uid")];
const IP: &[KeyField] = &[key("ip")];
const MOUNT_PATH: &[KeyField] = &[key("mountPath")];
const DEVICE_PATH: &[KeyField] = &[key("devicePath")];
const CONTAINER_PORT: &[KeyField] = &[
    key("containerPort"),
    KeyField {
        name: "protocol",
        default: Some("TCP"),
    },
];
const SERVICE_PORT: &[KeyField] = &[
    key("port"),
    KeyField {
        name: "protocol",
        default: Some("TCP"),
    },
];
const TOPOLOGY_SPREAD: &[KeyField] = &[key("topologyKey"), key("whenUnsatisfiable")];

fn map(keys: &'static [KeyField], patch_key: &'static str) -> ListType {
    ListType::Map { keys, patch_key }
}

/// Where the pod spec and pod template metadata live in objects of this kind.
fn pod_template_prefixes(group: &str, kind: &str) -> &'static [(&'static [&'static str], bool)] {
    // (prefix, is_metadata)
    const POD: &[(&[&str], bool)] = &[(&["spec"], false)];
    const TEMPLATE: &[(&[&str], bool)] = &[
        (&["spec", "template", "spec"], false),
        (&["spec", "template", "metadata"], true),
    ];
    const POD_TEMPLATE: &[(&[&str], bool)] = &[
        (&["template", "spec"], false),
        (&["template", "metadata"], true),
    ];
    const CRON: &[(&[&str], bool)] = &[
        (&["spec", "jobTemplate", "spec", "template", "spec"], false),
        (
            &["spec", "jobTemplate", "spec", "template", "metadata"],
            true,
        ),
        (&["spec", "jobTemplate", "metadata"], true),
    ];
    match (group, kind) {
        ("", "Pod") => POD,
        ("", "PodTemplate") => POD_TEMPLATE,
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => TEMPLATE,
        ("batch", "CronJob") => CRON,
        _ => &[],
    }
}

fn is_builtin_group(group: &str) -> bool {
    matches!(
        group,
        "" | "apps"
            | "batch"
            | "networking.k8s.io"
            | "rbac.authorization.k8s.io"
            | "policy"
            | "autoscaling"
            | "coordination.k8s.io"
            | "apiextensions.k8s.io"
            | "discovery.k8s.io"
            | "events.k8s.io"
    )
}

fn pod_spec_list(rel: &[&str]) -> ListType {
    match rel {
        ["containers" | "initContainers" | "ephemeralContainers"] => map(NAME, "name"),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "ports",
        ] => map(CONTAINER_PORT, "containerPort"),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "env",
        ] => map(NAME, "name"),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "volumeMounts",
        ] => map(MOUNT_PATH, "mountPath"),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "volumeDevices",
        ] => map(DEVICE_PATH, "devicePath"),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "resources",
            "claims",
        ] => map(NAME, "name"),
        ["volumes"] | ["imagePullSecrets"] | ["schedulingGates"] | ["resourceClaims"] => {
            map(NAME, "name")
        }
        ["hostAliases"] => map(IP, "ip"),
        ["topologySpreadConstraints"] => map(TOPOLOGY_SPREAD, "topologyKey"),
        _ => ListType::Atomic,
    }
}

fn metadata_list(rel: &[&str]) -> Option<ListType> {
    match rel {
        ["finalizers"] => Some(ListType::Set),
        ["ownerReferences"] => Some(map(UID, "uid")),
        _ => None,
    }
}

/// How the list at `path` (field names only, list levels skipped) merges in objects of this kind.
pub fn list_type(group: &str, kind: &str, path: &[&str]) -> ListType {
    if let Some(rel) = path.strip_prefix(&["metadata"][..])
        && let Some(t) = metadata_list(rel)
    {
        return t;
    }
    if !is_builtin_group(group) {
        return ListType::Atomic;
    }
    for (prefix, is_metadata) in pod_template_prefixes(group, kind) {
        if let Some(rel) = path.strip_prefix(*prefix) {
            if *is_metadata {
                return metadata_list(rel).unwrap_or(ListType::Atomic);
            }
            return pod_spec_list(rel);
        }
    }
    match (group, kind, path) {
        ("", "Service", ["spec", "ports"]) => map(SERVICE_PORT, "port"),
        (_, _, ["status", "conditions"]) => map(TYPE, "type"),
        _ => ListType::Atomic,
    }
}

/// Whether the map at `path` is atomic for server-side apply (owned and replaced as a whole).
/// Label selectors are `+structType=atomic` everywhere; a Service's selector is `+mapType=atomic`.
pub fn is_atomic_map(path: &[&str]) -> bool {
    matches!(
        path.last(),
        Some(&("selector" | "labelSelector" | "namespaceSelector" | "podSelector"))
    )
}

/// Whether the Go types always serialize the map or list at `path` (plain structs, required
/// lists), so Kubernetes never lists it as a member (`.`) of an Update manager's field set.
pub fn is_always_serialized(path: &[&str]) -> bool {
    matches!(
        path.last(),
        Some(
            &("metadata"
                | "spec"
                | "status"
                | "template"
                | "jobTemplate"
                | "strategy"
                | "updateStrategy"
                | "containers")
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_containers_are_keyed_by_name_and_ports_by_port_and_protocol() {
        let path = ["spec", "template", "spec", "containers"];
        assert_eq!(
            list_type("apps", "Deployment", &path),
            ListType::Map {
                keys: NAME,
                patch_key: "name"
            }
        );
        let ports = ["spec", "template", "spec", "containers", "ports"];
        match list_type("apps", "Deployment", &ports) {
            ListType::Map { keys, patch_key } => {
                assert_eq!(patch_key, "containerPort");
                assert_eq!(keys.len(), 2);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn cronjob_pod_spec_and_custom_kinds() {
        let path = [
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
            "env",
        ];
        assert!(matches!(
            list_type("batch", "CronJob", &path),
            ListType::Map { .. }
        ));
        assert_eq!(
            list_type("example.com", "Widget", &["spec", "items"]),
            ListType::Atomic
        );
        assert_eq!(
            list_type("example.com", "Widget", &["metadata", "finalizers"]),
            ListType::Set
        );
        assert_eq!(
            list_type("", "Pod", &["spec", "tolerations"]),
            ListType::Atomic
        );
    }
}
