//! The real kubectl with default flags against the sandbox.

use super::{kubectl, start, text, write_kubeconfig};

const MANIFESTS: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-config
  namespace: shop
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_diff_wait_delete() {
    let sb = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = write_kubeconfig(&sb, dir.path());
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    let file = manifests.join("shop.yaml");
    let dir_arg = manifests.to_str().expect("utf-8 path");

    std::fs::write(&file, MANIFESTS).expect("write manifests");
    let out = kubectl(&kc, &["apply", "--server-side", "-f", dir_arg]).await;
    assert!(out.status.success(), "server-side apply: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for what in [
        "namespace/shop",
        "configmap/shop-config",
        "deployment.apps/web",
        "service/web",
    ] {
        assert!(
            stdout.contains(&format!("{what} serverside-applied")),
            "{}",
            text(&out)
        );
    }

    // A changed version, applied client-side.
    std::fs::write(
        &file,
        MANIFESTS
            .replace("greeting: hello", "greeting: bonjour")
            .replace("replicas: 2", "replicas: 3"),
    )
    .expect("write changed manifests");
    let out = kubectl(&kc, &["apply", "-f", dir_arg]).await;
    assert!(out.status.success(), "client-side apply: {}", text(&out));

    let out = kubectl(
        &kc,
        &[
            "get",
            "-n",
            "shop",
            "configmap",
            "shop-config",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(out.status.success(), "get: {}", text(&out));
    let cm: serde_json::Value = serde_json::from_slice(&out.stdout).expect("get -o json is JSON");
    assert_eq!(cm["data"]["greeting"], "bonjour");
    let out = kubectl(
        &kc,
        &["get", "-n", "shop", "deployment", "web", "-o", "json"],
    )
    .await;
    let deploy: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("get -o json is JSON");
    assert_eq!(deploy["spec"]["replicas"], 3);

    // diff: a difference (exit 1), then, once applied, none (exit 0).
    std::fs::write(
        &file,
        MANIFESTS
            .replace("greeting: hello", "greeting: hola")
            .replace("replicas: 2", "replicas: 3"),
    )
    .expect("write changed manifests");
    let out = kubectl(&kc, &["diff", "-f", dir_arg]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "diff should report a difference: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("+  greeting: hola"),
        "{}",
        text(&out)
    );
    let out = kubectl(&kc, &["apply", "-f", dir_arg]).await;
    assert!(out.status.success(), "apply: {}", text(&out));
    let out = kubectl(&kc, &["diff", "-f", dir_arg]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "diff after apply should be empty: {}",
        text(&out)
    );

    let out = kubectl(
        &kc,
        &[
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "-n",
            "shop",
            "--timeout=30s",
        ],
    )
    .await;
    assert!(out.status.success(), "wait: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("condition met"),
        "{}",
        text(&out)
    );

    let out = kubectl(
        &kc,
        &["scale", "deployment/web", "-n", "shop", "--replicas=5"],
    )
    .await;
    assert!(out.status.success(), "scale: {}", text(&out));
    let out = kubectl(
        &kc,
        &[
            "get",
            "-n",
            "shop",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "5", "{}", text(&out));

    let out = kubectl(&kc, &["delete", "-f", dir_arg]).await;
    assert!(out.status.success(), "delete: {}", text(&out));
    for (kind, name) in [
        ("namespace", "shop"),
        ("deployment", "web"),
        ("configmap", "shop-config"),
    ] {
        let out = kubectl(&kc, &["get", "-n", "shop", kind, name]).await;
        assert!(
            !out.status.success(),
            "{kind}/{name} should be gone: {}",
            text(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("NotFound"),
            "{}",
            text(&out)
        );
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_into_missing_namespace_fails() {
    let sb = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = write_kubeconfig(&sb, dir.path());
    let file = dir.path().join("cm.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lost\n  namespace: nowhere\ndata:\n  a: b\n",
    )
    .expect("write manifest");
    let path = file.to_str().expect("utf-8 path");
    for extra in [&[][..], &["--server-side"][..]] {
        let mut args = vec!["apply", "-f", path];
        args.extend_from_slice(extra);
        let out = kubectl(&kc, &args).await;
        assert!(!out.status.success(), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("namespaces \"nowhere\" not found"),
            "{}",
            text(&out)
        );
    }
    sb.shutdown().await;
}
