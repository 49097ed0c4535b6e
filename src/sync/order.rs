//! The order objects are applied in: Helm's kind order, so dependencies exist before their users.

use crate::cluster::ResourceKey;

/// Helm's install order; kinds not listed go last.
const KIND_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

/// Rank of a kind in apply order (lower first).
pub fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

/// Sort key for applying: kind rank, then kind, namespace, name — deterministic.
pub fn apply_order(key: &ResourceKey) -> (usize, String, String, String) {
    (
        kind_rank(&key.kind),
        key.kind.clone(),
        key.namespace.clone(),
        key.name.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, name: &str) -> ResourceKey {
        ResourceKey {
            group: String::new(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: "d".into(),
            name: name.into(),
        }
    }

    #[test]
    fn namespaces_and_config_come_before_workloads_and_unknown_kinds_last() {
        let mut keys = [
            key("Widget", "w"),
            key("Deployment", "d"),
            key("ConfigMap", "c"),
            key("Namespace", "n"),
            key("Service", "s"),
        ];
        keys.sort_by_key(apply_order);
        let kinds: Vec<&str> = keys.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["Namespace", "ConfigMap", "Service", "Deployment", "Widget"]
        );
    }
}
