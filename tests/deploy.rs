//! The installation under deploy/ (the Kustomize base and overlays, the Helm chart) is what the
//! README promises: a Kubernetes API server (the sandbox) accepts every object and the README's
//! install command, both roles have probes, resources and a hardened Pod, RBAC is least-privilege
//! unless cluster-admin is asked for, the ConfigMap's capstan.toml loads through the real settings
//! loader and points at what the Pods mount, and every Secret the Pods need is documented with the
//! command that creates it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use capstan::config::{ManagementCluster, Settings};
use capstan::queue::QueueKind;
use capstan::sandbox::{Sandbox, SandboxOptions};
use serde_json::Value;

/// The control namespace every variant installs into.
const NAMESPACE: &str = "capstan";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a tool to completion with `stdin`, failing the test instead of hanging.
async fn run(program: &Path, args: &[&str], home: &Path, stdin: Option<&str>) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(repo())
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let mut input = child.stdin.take().expect("stdin is piped");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    match tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await {
        Ok(out) => out.expect("tool runs"),
        Err(_) => panic!("{} {args:?} did not finish within 60 s", program.display()),
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One way of installing Capstan, rendered to the YAML a user would apply.
struct Variant {
    name: &'static str,
    yaml: String,
    /// The Kustomize directory under deploy/kustomize, for the Kustomize variants.
    kustomize_dir: Option<&'static str>,
    /// Whether it binds cluster-admin (the opt-in).
    cluster_admin: bool,
    /// Whether it brings its own RabbitMQ.
    rabbitmq: bool,
}

/// `kubectl kustomize deploy/kustomize/<dir>`.
async fn kustomize(dir: &str, home: &Path) -> String {
    let kubectl = common::tools::require("kubectl");
    let path = format!("deploy/kustomize/{dir}");
    let out = run(&kubectl, &["kustomize", &path], home, None).await;
    assert!(
        out.status.success(),
        "kubectl kustomize {path}: {}",
        text(&out)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `helm template capstan deploy/helm/capstan -n capstan` with `extra` arguments.
async fn helm_template(extra: &[&str], home: &Path) -> String {
    let helm = common::tools::require("helm");
    let mut args = vec![
        "template",
        "capstan",
        "deploy/helm/capstan",
        "--namespace",
        NAMESPACE,
    ];
    args.extend_from_slice(extra);
    let out = run(&helm, &args, home, None).await;
    assert!(out.status.success(), "helm {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

const HELM_OPT_IN_NAME: &str = "helm opt-ins";

/// The opt-ins, and the values that add to capstan.toml.
const HELM_OPT_IN: &[&str] = &[
    "--set",
    "rbac.clusterAdmin=true",
    "--set",
    "rabbitmq.enabled=true",
    "--set",
    "webhook.providers.gitlab=gitlab-webhook-secret",
    "--set",
    "config.applicationNamespaces={team-*}",
    "--set",
    "config.extraToml=[health]\nconfigmap = \"capstan-cm\"",
];

async fn variants(home: &Path) -> Vec<Variant> {
    vec![
        Variant {
            name: "kustomize base",
            yaml: kustomize("base", home).await,
            kustomize_dir: Some("base"),
            cluster_admin: false,
            rabbitmq: false,
        },
        Variant {
            name: "kustomize with-rabbitmq",
            yaml: kustomize("with-rabbitmq", home).await,
            kustomize_dir: Some("with-rabbitmq"),
            cluster_admin: false,
            rabbitmq: true,
        },
        Variant {
            name: "kustomize cluster-admin",
            yaml: kustomize("cluster-admin", home).await,
            kustomize_dir: Some("cluster-admin"),
            cluster_admin: true,
            rabbitmq: false,
        },
        Variant {
            name: "helm defaults",
            yaml: helm_template(&[], home).await,
            kustomize_dir: None,
            cluster_admin: false,
            rabbitmq: false,
        },
        Variant {
            name: HELM_OPT_IN_NAME,
            yaml: helm_template(HELM_OPT_IN, home).await,
            kustomize_dir: None,
            cluster_admin: true,
            rabbitmq: true,
        },
    ]
}

/// The YAML documents of a stream, as written (kubectl gets the text, not a re-serialisation).
fn documents(yaml: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in yaml.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().expect("one document at least");
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.retain(|d| parse_one(d).is_some());
    docs
}

fn parse_one(doc: &str) -> Option<Value> {
    let value: Value = serde_saphyr::from_str(doc)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{doc}"));
    value.is_object().then_some(value)
}

fn objects(yaml: &str) -> Vec<Value> {
    documents(yaml)
        .iter()
        .filter_map(|d| parse_one(d))
        .collect()
}

fn of_kind<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The Deployment whose Pods carry `app.kubernetes.io/component: <component>`.
fn deployment<'a>(objs: &'a [Value], component: &str, variant: &str) -> &'a Value {
    let found: Vec<&Value> = of_kind(objs, "Deployment")
        .into_iter()
        .filter(|d| {
            d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == component
        })
        .collect();
    assert_eq!(found.len(), 1, "{variant}: one {component} Deployment");
    found[0]
}

fn container(deploy: &Value) -> &Value {
    let containers = deploy["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    containers
        .iter()
        .find(|c| c["name"] == "capstan")
        .expect("a container named capstan")
}

/// A probe's or Service's port (a name or a number) as the container's port number.
fn port_number(container: &Value, port: &Value) -> Option<u64> {
    if let Some(n) = port.as_u64() {
        return Some(n);
    }
    container["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == *port)
        .and_then(|p| p["containerPort"].as_u64())
}

/// `matchLabels` ⊆ `labels`, and not empty.
fn selects(match_labels: &Value, labels: &Value) -> bool {
    match match_labels.as_object() {
        Some(m) if !m.is_empty() => m.iter().all(|(k, v)| labels[k] == *v),
        _ => false,
    }
}

/// Whether RBAC `rules` allow `verb` on `resource` of `group` (without resourceNames limits).
fn allows(rules: &Value, group: &str, resource: &str, verb: &str) -> bool {
    let has = |list: &Value, want: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|x| x == want || x == "*"))
    };
    rules.as_array().is_some_and(|rules| {
        rules.iter().any(|r| {
            has(&r["apiGroups"], group)
                && has(&r["resources"], resource)
                && has(&r["verbs"], verb)
                && r["resourceNames"].as_array().is_none_or(|n| n.is_empty())
        })
    })
}

fn uses_wildcards(rules: &Value) -> bool {
    rules.as_array().is_some_and(|rules| {
        rules.iter().any(|r| {
            ["apiGroups", "resources", "verbs"].iter().any(|field| {
                r[field]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|x| x == "*"))
            })
        })
    })
}

fn binds(binding: &Value, service_account: &str, namespace: &str) -> bool {
    binding["subjects"].as_array().is_some_and(|subjects| {
        subjects.iter().any(|s| {
            s["kind"] == "ServiceAccount"
                && s["name"] == service_account
                && s["namespace"] == namespace
        })
    })
}

/// The user id the image runs as (the last `USER` of the Dockerfile).
fn dockerfile_uid() -> u64 {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the Dockerfile sets USER");
    let uid = user.split(':').next().unwrap_or_default().trim();
    uid.parse()
        .unwrap_or_else(|_| panic!("USER {user} is not numeric, so runAsNonRoot cannot check it"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_variant_is_accepted_by_a_kubernetes_api_server() {
    let home = tempfile::tempdir().expect("tempdir");
    let kubectl = common::tools::require("kubectl");
    // The CRDs Helm installs from the chart's crds/, as `helm install` would send them.
    let helm_crds = helm_template(&["--include-crds"], home.path()).await;
    for variant in variants(home.path()).await {
        capstan::install_crypto_provider();
        let sandbox = Sandbox::start(SandboxOptions {
            ready_delay: Duration::from_millis(50),
            ..Default::default()
        })
        .await
        .expect("sandbox starts");
        let kubeconfig = home
            .path()
            .join(format!("kubeconfig-{}", sandbox_port(&sandbox)));
        std::fs::write(&kubeconfig, sandbox.kubeconfig_yaml()).expect("kubeconfig");
        let kc = kubeconfig.to_str().expect("utf-8 path");

        // Namespaces and CRDs first, for real, as `kubectl apply` of the whole stream (or
        // `helm install --create-namespace`) creates them before the objects inside them.
        let mut first: Vec<String> = Vec::new();
        let mut rest: Vec<String> = Vec::new();
        for doc in documents(&variant.yaml) {
            let kind = parse_one(&doc).expect("an object")["kind"].clone();
            if kind == "Namespace" || kind == "CustomResourceDefinition" {
                first.push(doc);
            } else {
                rest.push(doc);
            }
        }
        if variant.name.starts_with("helm") {
            first.push(format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n"
            ));
            first.extend(
                documents(&helm_crds).into_iter().filter(|d| {
                    parse_one(d).is_some_and(|o| o["kind"] == "CustomResourceDefinition")
                }),
            );
        }
        let crds = first
            .iter()
            .filter(|d| d.contains("kind: CustomResourceDefinition"))
            .count();
        assert_eq!(
            crds, 3,
            "{}: Application, AppProject and Cluster CRDs",
            variant.name
        );
        let out = run(
            &kubectl,
            &["--kubeconfig", kc, "apply", "--server-side", "-f", "-"],
            home.path(),
            Some(&first.join("---\n")),
        )
        .await;
        assert!(
            out.status.success(),
            "{}: CRDs and namespace: {}",
            variant.name,
            text(&out)
        );

        // Client-side and server-side apply, as `kubectl apply` and the README's
        // `kubectl apply --server-side` send them.
        for mode in [&["apply"][..], &["apply", "--server-side"][..]] {
            let mut args = vec!["--kubeconfig", kc];
            args.extend_from_slice(mode);
            args.extend_from_slice(&["--dry-run=server", "-f", "-"]);
            let out = run(&kubectl, &args, home.path(), Some(&rest.join("---\n"))).await;
            assert!(
                out.status.success(),
                "{}: {args:?}: {}",
                variant.name,
                text(&out)
            );
            let accepted = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.ends_with("(server dry run)"))
                .count();
            assert_eq!(
                accepted,
                rest.len(),
                "{}: {args:?}: every object is accepted by the server: {}",
                variant.name,
                text(&out)
            );
        }

        // Then the README's install command for real.
        let out = match variant.kustomize_dir {
            Some(dir) => {
                let path = format!("deploy/kustomize/{dir}");
                let args = ["--kubeconfig", kc, "apply", "--server-side", "-k", &path];
                run(&kubectl, &args, home.path(), None).await
            }
            None => {
                let args = ["--kubeconfig", kc, "apply", "--server-side", "-f", "-"];
                run(&kubectl, &args, home.path(), Some(&rest.join("---\n"))).await
            }
        };
        assert!(
            out.status.success(),
            "{}: install: {}",
            variant.name,
            text(&out)
        );
        let out = run(
            &kubectl,
            &[
                "--kubeconfig",
                kc,
                "-n",
                NAMESPACE,
                "get",
                "deployments",
                "-o",
                "name",
            ],
            home.path(),
            None,
        )
        .await;
        let listed = String::from_utf8_lossy(&out.stdout);
        for component in ["api", "worker"] {
            assert!(
                listed
                    .lines()
                    .any(|l| l.ends_with(&format!("-{component}"))),
                "{}: the {component} Deployment is installed: {}",
                variant.name,
                text(&out)
            );
        }
        sandbox.shutdown().await;
    }
}

fn sandbox_port(sandbox: &Sandbox) -> String {
    sandbox
        .url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_roles_run_hardened_with_probes_resources_and_a_disruption_budget() {
    let home = tempfile::tempdir().expect("tempdir");
    let uid = dockerfile_uid();
    assert_ne!(uid, 0, "the image runs as a non-root user");
    for variant in variants(home.path()).await {
        let v = variant.name;
        let objs = objects(&variant.yaml);
        let service_accounts: BTreeSet<&str> = of_kind(&objs, "ServiceAccount")
            .iter()
            .map(|sa| str_of(&sa["metadata"]["name"]))
            .collect();
        for component in ["api", "worker"] {
            let d = deployment(&objs, component, v);
            let pod = &d["spec"]["template"];
            let c = container(d);
            assert_eq!(d["spec"]["replicas"], 2, "{v}: {component} replicas");
            assert_eq!(d["metadata"]["namespace"], NAMESPACE, "{v}: {component}");
            let args: Vec<&str> = c["args"]
                .as_array()
                .expect("args")
                .iter()
                .map(str_of)
                .collect();
            assert!(
                args.windows(2).any(|w| w == ["--role", component]),
                "{v}: {component} runs its role: {args:?}"
            );
            assert!(
                service_accounts.contains(str_of(&pod["spec"]["serviceAccountName"])),
                "{v}: {component}'s ServiceAccount is installed"
            );

            for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
                let get = &c[probe]["httpGet"];
                assert_eq!(get["path"], path, "{v}: {component} {probe}");
                assert_eq!(
                    port_number(c, &get["port"]),
                    Some(8080),
                    "{v}: {component} {probe} reaches the listen port"
                );
            }

            let resources = &c["resources"];
            for field in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        resources[field][resource].is_string(),
                        "{v}: {component} {field}.{resource}"
                    );
                }
            }

            let pod_sc = &pod["spec"]["securityContext"];
            let sc = &c["securityContext"];
            assert_eq!(pod_sc["runAsNonRoot"], true, "{v}: {component}");
            assert_eq!(
                pod_sc["runAsUser"].as_u64(),
                Some(uid),
                "{v}: {component} runs as the Dockerfile's user"
            );
            assert_eq!(
                pod_sc["seccompProfile"]["type"], "RuntimeDefault",
                "{v}: {component}"
            );
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{v}: {component}");
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{v}: {component}");
            assert_eq!(
                sc["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{v}: {component}"
            );
            assert!(
                mounted_volume(d, "/tmp").is_some_and(|vol| vol["emptyDir"].is_object()),
                "{v}: {component} has an emptyDir at /tmp (its root is read-only)"
            );

            let annotations = &pod["metadata"]["annotations"];
            assert_eq!(
                annotations["prometheus.io/scrape"], "true",
                "{v}: {component}"
            );
            assert_eq!(
                annotations["prometheus.io/path"], "/metrics",
                "{v}: {component}"
            );
            assert_eq!(
                annotations["prometheus.io/port"], "8080",
                "{v}: {component}"
            );

            let labels = &pod["metadata"]["labels"];
            let budgets: Vec<&Value> = of_kind(&objs, "PodDisruptionBudget")
                .into_iter()
                .filter(|p| selects(&p["spec"]["selector"]["matchLabels"], labels))
                .collect();
            assert_eq!(
                budgets.len(),
                1,
                "{v}: a PodDisruptionBudget covers {component}"
            );
            assert_eq!(budgets[0]["apiVersion"], "policy/v1", "{v}");
        }

        let api = deployment(&objs, "api", v);
        let api_labels = &api["spec"]["template"]["metadata"]["labels"];
        let services: Vec<&Value> = of_kind(&objs, "Service")
            .into_iter()
            .filter(|s| selects(&s["spec"]["selector"], api_labels))
            .collect();
        assert_eq!(services.len(), 1, "{v}: a Service in front of the api");
        let target = &services[0]["spec"]["ports"][0]["targetPort"];
        assert_eq!(
            port_number(container(api), target),
            Some(8080),
            "{v}: the Service reaches the api's listen port"
        );
        let worker_labels =
            &deployment(&objs, "worker", v)["spec"]["template"]["metadata"]["labels"];
        assert!(
            !of_kind(&objs, "Service")
                .iter()
                .any(|s| selects(&s["spec"]["selector"], worker_labels)),
            "{v}: webhooks never reach a worker"
        );

        if variant.kustomize_dir.is_some() {
            let namespace = of_kind(&objs, "Namespace")
                .into_iter()
                .find(|n| n["metadata"]["name"] == NAMESPACE)
                .unwrap_or_else(|| panic!("{v}: installs the control namespace"));
            assert_eq!(
                namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
                "{v}: the control namespace enforces the restricted Pod Security Standard"
            );
        }

        let statefulsets = of_kind(&objs, "StatefulSet");
        assert_eq!(
            statefulsets.len(),
            usize::from(variant.rabbitmq),
            "{v}: a RabbitMQ StatefulSet only when bundled"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_is_least_privilege_unless_cluster_admin_is_asked_for() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut cluster_roles: Vec<(&str, Value, Value)> = Vec::new();
    let variants = variants(home.path()).await;
    for variant in &variants {
        let v = variant.name;
        let objs = objects(&variant.yaml);
        let accounts: Vec<String> = ["api", "worker"]
            .iter()
            .map(|c| {
                str_of(&deployment(&objs, c, v)["spec"]["template"]["spec"]["serviceAccountName"])
                    .to_owned()
            })
            .collect();

        let admin: Vec<&Value> = of_kind(&objs, "ClusterRoleBinding")
            .into_iter()
            .filter(|b| b["roleRef"]["name"] == "cluster-admin")
            .collect();
        assert_eq!(
            admin.len(),
            usize::from(variant.cluster_admin),
            "{v}: cluster-admin only as an opt-in"
        );
        for binding in &admin {
            for sa in &accounts {
                assert!(
                    binds(binding, sa, NAMESPACE),
                    "{v}: {sa} gets cluster-admin"
                );
            }
        }

        // The least-privilege ClusterRole, bound to both roles' accounts.
        let bindings: Vec<&Value> = of_kind(&objs, "ClusterRoleBinding")
            .into_iter()
            .filter(|b| {
                b["roleRef"]["kind"] == "ClusterRole" && b["roleRef"]["name"] != "cluster-admin"
            })
            .collect();
        assert_eq!(
            bindings.len(),
            1,
            "{v}: one ClusterRoleBinding of Capstan's own role"
        );
        for sa in &accounts {
            assert!(binds(bindings[0], sa, NAMESPACE), "{v}: {sa} is bound");
        }
        let role_name = &bindings[0]["roleRef"]["name"];
        let cluster_role = of_kind(&objs, "ClusterRole")
            .into_iter()
            .find(|r| r["metadata"]["name"] == *role_name)
            .unwrap_or_else(|| panic!("{v}: the bound ClusterRole {role_name} is installed"));
        let rules = &cluster_role["rules"];
        assert!(
            !uses_wildcards(rules),
            "{v}: no wildcard in the ClusterRole"
        );
        for (group, resource, verb) in [
            ("capstan.dev", "applications", "watch"),
            ("capstan.dev", "applications", "patch"),
            ("capstan.dev", "applications/status", "patch"),
            ("capstan.dev", "appprojects", "create"),
            ("capstan.dev", "clusters", "watch"),
            ("", "namespaces", "create"),
            ("apps", "deployments", "patch"),
            ("apps", "deployments", "delete"),
            ("", "configmaps", "list"),
            ("apps", "replicasets", "watch"),
        ] {
            assert!(
                allows(rules, group, resource, verb),
                "{v}: {verb} {resource}.{group}"
            );
        }
        for (group, resource, verb) in [
            ("", "secrets", "get"),
            ("rbac.authorization.k8s.io", "clusterrolebindings", "create"),
            ("apiextensions.k8s.io", "customresourcedefinitions", "patch"),
            ("apps", "replicasets", "delete"),
        ] {
            assert!(
                !allows(rules, group, resource, verb),
                "{v}: {verb} {resource}.{group} is not granted cluster-wide"
            );
        }

        let role_binding = of_kind(&objs, "RoleBinding")
            .into_iter()
            .find(|b| accounts.iter().all(|sa| binds(b, sa, NAMESPACE)))
            .unwrap_or_else(|| panic!("{v}: a RoleBinding in the control namespace"));
        assert_eq!(role_binding["metadata"]["namespace"], NAMESPACE, "{v}");
        let role = of_kind(&objs, "Role")
            .into_iter()
            .find(|r| r["metadata"]["name"] == role_binding["roleRef"]["name"])
            .unwrap_or_else(|| panic!("{v}: the bound Role is installed"));
        assert_eq!(role["metadata"]["namespace"], NAMESPACE, "{v}");
        let rules = &role["rules"];
        assert!(!uses_wildcards(rules), "{v}: no wildcard in the Role");
        for verb in ["get", "create", "update"] {
            assert!(
                allows(rules, "coordination.k8s.io", "leases", verb),
                "{v}: {verb} leases"
            );
        }
        for verb in ["get", "list", "watch", "create", "delete"] {
            assert!(
                allows(rules, "", "secrets", verb),
                "{v}: {verb} control-namespace secrets"
            );
        }
        assert!(
            allows(rules, "", "configmaps", "watch"),
            "{v}: the health ConfigMap"
        );

        cluster_roles.push((v, cluster_role.clone(), role.clone()));
    }
    // Kustomize and Helm grant the same rights (with the chart's default values).
    let (_, kustomize_cr, kustomize_role) = &cluster_roles[0];
    let (_, helm_cr, helm_role) = cluster_roles
        .iter()
        .find(|(v, _, _)| *v == "helm defaults")
        .expect("helm defaults rendered");
    assert_eq!(kustomize_cr["rules"], helm_cr["rules"], "ClusterRole rules");
    assert_eq!(kustomize_role["rules"], helm_role["rules"], "Role rules");
}

/// The volume mounted at `path` or at a directory holding it, with the mount's sub-path.
fn mounted_volume<'a>(deploy: &'a Value, path: &str) -> Option<&'a Value> {
    mount_of(deploy, path).map(|(volume, _)| volume)
}

fn mount_of<'a>(deploy: &'a Value, path: &str) -> Option<(&'a Value, String)> {
    let mounts = container(deploy)["volumeMounts"].as_array()?;
    let mount = mounts.iter().find(|m| {
        let at = str_of(&m["mountPath"]);
        path == at
            || path
                .strip_prefix(at)
                .is_some_and(|rest| rest.starts_with('/'))
    })?;
    let relative = path
        .strip_prefix(str_of(&mount["mountPath"]))
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_owned();
    let volumes = deploy["spec"]["template"]["spec"]["volumes"].as_array()?;
    let volume = volumes.iter().find(|v| v["name"] == mount["name"])?;
    Some((volume, relative))
}

/// The (Secret, key) a file path of the container reads, when a Secret volume provides it.
fn secret_file(deploy: &Value, path: &Path) -> Option<(String, String)> {
    let (volume, file) = mount_of(deploy, path.to_str()?)?;
    let secret = &volume["secret"];
    let name = secret["secretName"].as_str()?.to_owned();
    let key = match secret["items"].as_array() {
        Some(items) => items.iter().find(|i| i["path"] == file.as_str())?["key"]
            .as_str()?
            .to_owned(),
        None => file,
    };
    Some((name, key))
}

/// What one Pod needs to start: its capstan.toml, loaded as `capstan serve` loads it.
struct Loaded {
    settings: Settings,
    toml: String,
    /// (Secret, key) pairs the Pod reads.
    secrets: BTreeSet<(String, String)>,
}

fn load_config(objs: &[Value], deploy: &Value, v: &str, dir: &Path) -> Loaded {
    let c = container(deploy);
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(str_of)
        .collect();
    let config_path = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1])
        .unwrap_or_else(|| panic!("{v}: serve --config"));
    let (volume, file) =
        mount_of(deploy, config_path).unwrap_or_else(|| panic!("{v}: {config_path} is mounted"));
    let map_name = &volume["configMap"]["name"];
    let map = of_kind(objs, "ConfigMap")
        .into_iter()
        .find(|m| m["metadata"]["name"] == *map_name)
        .unwrap_or_else(|| panic!("{v}: the ConfigMap {map_name} is installed"));
    let toml = str_of(&map["data"][file.as_str()]).to_owned();
    assert!(!toml.is_empty(), "{v}: {config_path} is in the ConfigMap");

    // The container's environment; Secret values stand in as the Secret would give them.
    let mut secrets = BTreeSet::new();
    let mut env = Vec::new();
    for var in c["env"].as_array().into_iter().flatten() {
        let name = str_of(&var["name"]).to_owned();
        if let Some(value) = var["value"].as_str() {
            env.push((name, value.to_owned()));
        } else if let Some(key_ref) = var["valueFrom"]["secretKeyRef"].as_object() {
            secrets.insert((
                str_of(&key_ref["name"]).to_owned(),
                str_of(&key_ref["key"]).to_owned(),
            ));
            env.push((
                name,
                "amqp://capstan:password@rabbitmq.example:5672/%2f".to_owned(),
            ));
        }
    }
    let file = dir.join("capstan.toml");
    std::fs::write(&file, &toml).expect("write capstan.toml");
    let settings = Settings::load_from(Some(&file), env)
        .unwrap_or_else(|e| panic!("{v}: capstan.toml does not load: {e}\n{toml}"));
    Loaded {
        settings,
        toml,
        secrets,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_map_loads_and_points_at_what_the_pods_mount() {
    let home = tempfile::tempdir().expect("tempdir");
    for variant in variants(home.path()).await {
        let v = variant.name;
        let objs = objects(&variant.yaml);
        for component in ["api", "worker"] {
            let d = deployment(&objs, component, v);
            let c = container(d);
            let dir = tempfile::tempdir().expect("tempdir");
            let Loaded {
                settings: s,
                toml,
                secrets,
            } = load_config(&objs, d, v, dir.path());

            assert_eq!(s.cluster.management, ManagementCluster::InCluster, "{v}");
            assert_eq!(
                s.queue.kind,
                QueueKind::Rabbitmq,
                "{v}: shared by every process"
            );
            assert_eq!(s.server.namespace, NAMESPACE, "{v}: the control namespace");
            assert_eq!(
                port_number(c, &Value::from("http")),
                Some(u64::from(s.server.listen.port())),
                "{v}: {component} listens on its container port"
            );
            assert!(
                s.server.listen.ip().is_unspecified(),
                "{v}: reachable from the kubelet and the Service"
            );
            let data_dir = s.server.data_dir.to_str().expect("utf-8");
            assert!(
                mounted_volume(d, data_dir).is_some_and(|vol| vol["emptyDir"].is_object()),
                "{v}: {component}'s data_dir {data_dir} is a writable emptyDir"
            );

            // Shared secrets come from a Secret: generated ones would differ per replica.
            let token_file = s.api.token_file.as_deref().expect("api.token_file");
            let github = s
                .webhook
                .github_secret_file
                .as_deref()
                .expect("webhook.github_secret_file");
            let mut needed = secrets.clone();
            for file in [token_file, github] {
                let from = secret_file(d, file).unwrap_or_else(|| {
                    panic!(
                        "{v}: {component} reads {} from a mounted Secret",
                        file.display()
                    )
                });
                needed.insert(from);
            }
            if variant.rabbitmq {
                let password = s
                    .queue
                    .password_file
                    .as_deref()
                    .expect("queue.password_file");
                let password_from = secret_file(d, password)
                    .unwrap_or_else(|| panic!("{v}: the broker password is a mounted Secret"));
                needed.insert(password_from.clone());
                let services = of_kind(&objs, "Service");
                let service = services
                    .iter()
                    .find(|svc| {
                        s.queue.url.contains(&format!(
                            "@{}.{NAMESPACE}.svc:5672/",
                            str_of(&svc["metadata"]["name"])
                        ))
                    })
                    .unwrap_or_else(|| panic!("{v}: {} names the bundled broker", s.queue.url));
                assert_eq!(service["spec"]["ports"][0]["port"], 5672, "{v}");

                // The broker behind that Service creates the user Capstan logs in as, with the
                // password Capstan reads.
                let broker = of_kind(&objs, "StatefulSet")
                    .into_iter()
                    .find(|b| {
                        selects(
                            &service["spec"]["selector"],
                            &b["spec"]["template"]["metadata"]["labels"],
                        )
                    })
                    .unwrap_or_else(|| panic!("{v}: the broker Service selects the StatefulSet"));
                let env = &broker["spec"]["template"]["spec"]["containers"][0]["env"];
                let var = |name: &str| {
                    env.as_array()
                        .into_iter()
                        .flatten()
                        .find(|e| e["name"] == name)
                        .cloned()
                        .unwrap_or_else(|| panic!("{v}: the broker sets {name}"))
                };
                let user = str_of(&var("RABBITMQ_DEFAULT_USER")["value"]).to_owned();
                assert!(
                    s.queue.url.starts_with(&format!("amqp://{user}@")),
                    "{v}: Capstan logs in as {user}: {}",
                    s.queue.url
                );
                let pass = var("RABBITMQ_DEFAULT_PASS");
                let key_ref = &pass["valueFrom"]["secretKeyRef"];
                assert_eq!(
                    (
                        str_of(&key_ref["name"]).to_owned(),
                        str_of(&key_ref["key"]).to_owned()
                    ),
                    password_from,
                    "{v}: the broker and Capstan share one password"
                );
            } else {
                assert!(
                    secrets.iter().any(|(_, key)| key == "amqp-url"),
                    "{v}: the broker URL comes from a Secret"
                );
            }
            assert_documented(v, &needed);
            // Other Git hosts' secrets are keys of a mounted Secret too (named by the user).
            for (provider, from) in &s.webhook.providers {
                for file in &from.secret_files {
                    assert!(
                        secret_file(d, file).is_some(),
                        "{v}: {provider}'s {} is a mounted Secret key",
                        file.display()
                    );
                }
            }
            if variant.name == HELM_OPT_IN_NAME {
                assert!(s.webhook.providers.contains_key("gitlab"), "{v}");
                assert_eq!(s.applications.namespaces, ["team-*"], "{v}");
                assert_eq!(s.health.configmap.as_deref(), Some("capstan-cm"), "{v}");
            }

            // The loader refuses what it does not know, so a typo in the file fails here.
            let typo = toml.replace("[cluster]", "[cluster]\nmanagment = \"in-cluster\"");
            assert_ne!(typo, toml, "{v}: capstan.toml has a [cluster] table");
            let file = dir.path().join("typo.toml");
            std::fs::write(&file, typo).expect("write");
            let err = Settings::load_from(Some(&file), Vec::new())
                .expect_err("an unknown key is refused");
            assert!(err.to_string().contains("managment"), "{err}");
        }
    }
}

/// Every (Secret, key) a variant needs is created by a documented `kubectl create secret`.
fn assert_documented(variant: &str, needed: &BTreeSet<(String, String)>) {
    let doc = if variant.starts_with("helm") {
        "deploy/helm/capstan/README.md"
    } else {
        "README.md"
    };
    let text = std::fs::read_to_string(repo().join(doc)).expect("docs");
    for (secret, key) in needed {
        let commands = create_secret_commands(&text, secret);
        assert!(
            !commands.is_empty(),
            "{doc} shows `kubectl create secret generic {secret}` ({variant})"
        );
        assert!(
            commands.iter().any(|cmd| {
                cmd.contains(&format!("--from-literal={key}="))
                    || cmd.contains(&format!("--from-file={key}="))
            }),
            "{doc} creates key {key} of Secret {secret} ({variant}): {commands:?}"
        );
    }
}

/// The `kubectl … create secret generic <name>` commands of a document, continuation lines joined.
fn create_secret_commands(text: &str, name: &str) -> Vec<String> {
    let needle = format!("create secret generic {name}");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let names_it = line.match_indices(&needle).any(|(at, _)| {
            line[at + needle.len()..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace)
        });
        if !names_it {
            continue;
        }
        let mut command = String::new();
        for l in &lines[i..] {
            let l = l.trim_end();
            command.push_str(l.trim_end_matches('\\'));
            command.push(' ');
            if !l.ends_with('\\') {
                break;
            }
        }
        out.push(command);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_lint_passes_for_the_defaults_and_the_opt_ins() {
    let home = tempfile::tempdir().expect("tempdir");
    let helm = common::tools::require("helm");
    for extra in [&[][..], HELM_OPT_IN] {
        let mut args = vec!["lint", "--strict", "deploy/helm/capstan"];
        args.extend_from_slice(extra);
        let out = run(&helm, &args, home.path(), None).await;
        assert!(out.status.success(), "helm {args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("0 chart(s) failed"),
            "{}",
            text(&out)
        );
    }
}

/// Leaf keys of the chart's values (maps are walked; `resources` blocks count as one value).
fn value_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value.as_object() {
        Some(map) if !map.is_empty() && !prefix.ends_with("resources") => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                value_paths(v, &path, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// The line number of `a.b.c` in a block-style YAML file: `c:` inside `b:` inside `a:`.
fn key_line(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let (mut from, mut parent_indent) = (0, None::<usize>);
    let mut found = None;
    for key in path.split('.') {
        let at = (from..lines.len()).find(|&i| {
            let line = lines[i];
            let indent = line.len() - line.trim_start().len();
            line.trim_start().starts_with(&format!("{key}:"))
                && parent_indent.is_none_or(|p| indent > p)
        })?;
        // Stay inside the parent: no line between it and the key may be indented at or left of it.
        if let Some(p) = parent_indent {
            let left_parent = lines[from..at].iter().any(|l| {
                let t = l.trim_start();
                !t.is_empty() && !t.starts_with('#') && l.len() - t.len() <= p
            });
            if left_parent {
                return None;
            }
        }
        parent_indent = Some(lines[at].len() - lines[at].trim_start().len());
        from = at + 1;
        found = Some(at);
    }
    found
}

#[test]
fn every_chart_value_is_commented_and_in_the_readme_table() {
    let chart = repo().join("deploy/helm/capstan");
    let values_text = std::fs::read_to_string(chart.join("values.yaml")).expect("values.yaml");
    let values: Value = serde_saphyr::from_str(&values_text).expect("values.yaml parses");
    let readme = std::fs::read_to_string(chart.join("README.md")).expect("chart README");
    let mut paths = Vec::new();
    value_paths(&values, "", &mut paths);
    assert!(paths.len() > 20, "{paths:?}");
    for path in &paths {
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with(&format!("| `{path}` |"))),
            "deploy/helm/capstan/README.md has a table row for `{path}`"
        );
        let line = key_line(&values_text, path)
            .unwrap_or_else(|| panic!("values.yaml has a line for `{path}`"));
        assert!(
            line > 0
                && values_text
                    .lines()
                    .nth(line - 1)
                    .is_some_and(|l| l.trim_start().starts_with('#')),
            "values.yaml has a comment right above `{path}`"
        );
    }
    assert!(
        readme.contains("helm install"),
        "the chart README shows the install command"
    );
}
