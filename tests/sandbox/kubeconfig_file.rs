//! Writing the kubeconfig: private to its owner, and never through a link planted at its path.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use capstan::sandbox::SandboxOptions;

use super::start_with;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_symlink_is_replaced_and_its_target_left_alone() {
    let sb = start_with(SandboxOptions {
        tls: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").expect("write victim");
    let kc = dir.path().join("kubeconfig");
    std::os::unix::fs::symlink(&victim, &kc).expect("plant symlink");

    sb.write_kubeconfig(&kc).expect("kubeconfig written");

    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious",
        "the link's target is untouched"
    );
    let meta = std::fs::symlink_metadata(&kc).expect("metadata");
    assert!(
        meta.file_type().is_file(),
        "the kubeconfig is a regular file"
    );
    assert_eq!(mode(&kc), 0o600);
    assert_eq!(
        std::fs::read_to_string(&kc).expect("kubeconfig"),
        sb.kubeconfig_yaml()
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["kubeconfig", "victim"], "no temporary file is left");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_readable_kubeconfig_becomes_private() {
    let sb = start_with(SandboxOptions {
        tls: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, "old").expect("write");
    std::fs::set_permissions(&kc, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    sb.write_kubeconfig(&kc).expect("kubeconfig written");

    assert_eq!(mode(&kc), 0o600, "the token is not left world-readable");
    assert_eq!(
        std::fs::read_to_string(&kc).expect("kubeconfig"),
        sb.kubeconfig_yaml()
    );
    sb.shutdown().await;
}
