//! Test harness for the queue: one set of behaviours run against the embedded queue and a real
//! RabbitMQ, unique names per test, best-effort cleanup, a killable TCP proxy and rabbitmqctl.

/// Runs one behaviour against both queue implementations: `both!(name)` makes tests
/// `name::embedded` and `name::rabbitmq` calling `name(kind)`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(capstan::queue::QueueKind::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rabbitmq() {
                super::$name(capstan::queue::QueueKind::Rabbitmq).await
            }
        }
    };
}

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use capstan::queue::{
    EmbeddedQueue, QueueKind, QueueSettings, RabbitQueue, SharedQueue, Subscription, rabbitmq,
};
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::{Connection, ConnectionProperties};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

/// The broker every RabbitMQ test needs; it must be running (`rabbitmq-server -detached`).
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Long enough for anything that should happen to happen on a loaded 2-core machine.
pub const EVENTUALLY: Duration = Duration::from_secs(20);
/// How long we watch for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(700);

/// Settings with a fresh prefix, so tests never see each other's messages.
pub fn settings(kind: QueueKind) -> QueueSettings {
    QueueSettings {
        kind,
        url: AMQP_URL.to_owned(),
        prefix: format!("capstan-test-{}", uuid::Uuid::new_v4().simple()),
        retry_delay_ms: 10,
        ..QueueSettings::default()
    }
}

/// One queue under test plus what the assertions need to look inside it.
pub struct Harness {
    pub settings: QueueSettings,
    pub queue: SharedQueue,
    embedded: Option<Arc<EmbeddedQueue>>,
    rabbit: Option<Arc<RabbitQueue>>,
    /// Dead-lettered ids seen so far (RabbitMQ's dead queue is drained as it is read).
    dead_seen: Vec<String>,
}

impl Harness {
    pub async fn new(kind: QueueKind, tweak: impl FnOnce(&mut QueueSettings)) -> Self {
        let mut settings = settings(kind);
        tweak(&mut settings);
        match kind {
            QueueKind::Embedded => {
                let q = EmbeddedQueue::new(&settings).expect("embedded queue");
                Self {
                    settings,
                    queue: q.clone(),
                    embedded: Some(q),
                    rabbit: None,
                    dead_seen: Vec::new(),
                }
            }
            QueueKind::Rabbitmq => {
                let q = rabbit(&settings).await;
                Self {
                    settings,
                    queue: q.clone(),
                    embedded: None,
                    rabbit: Some(q),
                    dead_seen: Vec::new(),
                }
            }
        }
    }

    /// Another consumer process on the same queues: a new connection for RabbitMQ, the same
    /// in-process queue for the embedded one.
    pub async fn second_process(&self) -> SharedQueue {
        match &self.embedded {
            Some(q) => q.clone(),
            None => rabbit(&self.settings).await,
        }
    }

    /// The first process dies holding `delivery` unsettled.
    pub async fn crash_first(&self, sub: Subscription, delivery: capstan::queue::Delivery) {
        if let Some(q) = &self.rabbit {
            // Dropping the connection without settling, as a killed process would.
            use capstan::queue::Queue;
            q.close().await;
        }
        drop(delivery);
        drop(sub);
    }

    /// The embedded queue under test (tests/triggers.rs reads its dead letters).
    #[allow(dead_code)]
    pub fn embedded(&self) -> &Arc<EmbeddedQueue> {
        self.embedded.as_ref().expect("an embedded harness")
    }

    pub fn rabbit(&self) -> &Arc<RabbitQueue> {
        self.rabbit.as_ref().expect("a RabbitMQ harness")
    }

    /// Waits until `id` shows up among the dead letters, and returns them all.
    pub async fn await_dead(&mut self, id: &str) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + EVENTUALLY;
        loop {
            self.collect_dead().await;
            if self.dead_seen.iter().any(|d| d == id) {
                return self.dead_seen.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never reached the dead letters; saw {:?}",
                self.dead_seen
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn collect_dead(&mut self) {
        if let Some(q) = &self.embedded {
            self.dead_seen = q.dead_letters().into_iter().map(|d| d.id).collect();
            return;
        }
        let conn = Connection::connect(AMQP_URL, ConnectionProperties::default())
            .await
            .expect("RabbitMQ must be running (rabbitmq-server -detached)");
        let ch = conn.create_channel().await.expect("channel");
        let dead = format!("{}.dead", self.settings.prefix);
        while let Some(m) = ch
            .basic_get(dead.as_str().into(), BasicGetOptions::default())
            .await
            .expect("basic.get on the dead queue")
        {
            let id = m
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            m.delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
            self.dead_seen.push(id);
        }
        let _ = conn.close(200, "done".into()).await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.settings.kind != QueueKind::Rabbitmq {
            return;
        }
        // Best effort: the test may be unwinding, and Drop cannot await, so use a private runtime.
        let settings = QueueSettings {
            url: AMQP_URL.to_owned(),
            password_file: None,
            ..self.settings.clone()
        };
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Runtime::new() {
                let _ = rt.block_on(rabbitmq::delete_topology(&settings));
            }
        })
        .join();
    }
}

/// Connects to the real broker and fails loudly when it is not there.
pub async fn rabbit(settings: &QueueSettings) -> Arc<RabbitQueue> {
    use capstan::queue::Queue;
    let q = RabbitQueue::connect_concrete(settings)
        .await
        .expect("RabbitMQ topology declared");
    assert!(
        q.is_ready().await,
        "RabbitMQ must be running at {AMQP_URL} (start it with `rabbitmq-server -detached`)"
    );
    q
}

/// Next delivery, failing the test if none comes.
pub async fn next(sub: &mut Subscription) -> capstan::queue::Delivery {
    tokio::time::timeout(EVENTUALLY, sub.next())
        .await
        .expect("a delivery arrives")
        .expect("the subscription is open")
}

/// Takes the job `id` in a fresh process `crashes` times, each crashing before settling it
/// (the connection closes with the delivery unacked), asserting the attempt count each time.
pub async fn crash_on(settings: &QueueSettings, id: &str, crashes: u32) {
    use capstan::queue::Queue;
    for expected in 1..=crashes {
        let q = rabbit(settings).await;
        let mut sub = q
            .subscribe(capstan::queue::Topic::Jobs)
            .await
            .expect("subscribe");
        let d = next(&mut sub).await;
        assert_eq!((d.id.as_str(), d.attempt), (id, expected));
        q.close().await;
        drop(d);
    }
}

/// Asserts that nothing is delivered for a while.
pub async fn assert_quiet(sub: &mut Subscription, why: &str) {
    if let Ok(Some(d)) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!("{why}: unexpected delivery {d:?}");
    }
}

/// Closes this process's RabbitMQ connection from the broker side, as a broker restart or a
/// network cut would, without touching other processes' connections.
pub fn close_connection_from_broker(connection_name: &str) {
    let out = Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl runs");
    let listing = String::from_utf8_lossy(&out.stdout);
    let pids: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains(connection_name))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        !pids.is_empty(),
        "connection {connection_name} not found in:\n{listing}"
    );
    for pid in pids {
        let status = Command::new("rabbitmqctl")
            .args(["-q", "close_connection", pid, "test"])
            .status()
            .expect("rabbitmqctl runs");
        assert!(status.success(), "close_connection {pid}");
    }
}

/// A TCP proxy in front of the broker that can be stopped and restarted on the same port,
/// to simulate the broker going away without disturbing the shared broker.
pub struct Proxy {
    pub port: u16,
    stop: CancellationToken,
}

impl Proxy {
    pub async fn start(port: u16) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket
            .bind(([127, 0, 0, 1], port).into())
            .expect("bind proxy port");
        let listener: TcpListener = socket.listen(64).expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                let token = token.clone();
                tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect("127.0.0.1:5672").await else {
                        return;
                    };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                    }
                });
            }
        });
        Self { port, stop }
    }

    /// Drops the listener and every proxied connection.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }
}
