//! Worker processes for the benches that run several: `capstan serve --role worker` children on
//! one broker prefix, and the removal of that prefix's topology once they are gone.

use std::path::Path;
use std::process::{Command, Stdio};

use capstan::queue::{QueueKind, QueueSettings};

use crate::child::ChildGuard;

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Job shards of the benches' broker topology (every process on a prefix must agree).
pub const SHARDS: u16 = 8;

/// One `capstan serve --role worker` process on the shared broker prefix, reading `file://`
/// repositories under `repos`, with its data under `dir/worker-<i>`.
pub fn worker(dir: &Path, repos: &Path, i: usize, kubeconfig: &Path, prefix: &str) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["serve", "--role", "worker"])
        .env("CAPSTAN__SERVER__LISTEN", "127.0.0.1:0")
        .env("CAPSTAN__SERVER__DATA_DIR", dir.join(format!("worker-{i}")))
        .env("CAPSTAN__QUEUE__KIND", "rabbitmq")
        .env("CAPSTAN__QUEUE__URL", AMQP)
        .env("CAPSTAN__QUEUE__PREFIX", prefix)
        .env("CAPSTAN__QUEUE__SHARDS", SHARDS.to_string())
        .env("CAPSTAN__CLUSTER__MANAGEMENT", "kubeconfig")
        .env("CAPSTAN__CLUSTER__KUBECONFIG", kubeconfig)
        .env("CAPSTAN__GIT__ALLOWED_LOCAL_ROOTS", repos)
        .env("CAPSTAN__RECONCILE__INTERVAL_SECS", "3600")
        .env("CAPSTAN__LOG__LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("capstan starts");
    ChildGuard::new(child)
}

/// Removes the exchanges and queues of `prefix`; call it once every process on it has stopped,
/// or they declare them again.
pub async fn delete_topology(prefix: &str) {
    let settings = QueueSettings {
        kind: QueueKind::Rabbitmq,
        url: AMQP.into(),
        prefix: prefix.into(),
        shards: SHARDS,
        ..QueueSettings::default()
    };
    if let Err(e) = capstan::queue::rabbitmq::delete_topology(&settings).await {
        eprintln!("could not delete the bench's broker topology: {e}");
    }
}
