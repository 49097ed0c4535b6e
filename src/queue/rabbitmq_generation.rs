//! Which topology generation the broker holds, checked (and, on a fresh broker, recorded) by
//! every process before it declares anything, under a lock the migration holds too.
//!
//! The record is one persistent message in the durable queue `{p}.topology` (at most one
//! message: a newer one drops the older). It is only read and written by the holder of the lock,
//! the exclusive queue `{p}.topology.lock`, so a reader that takes the message and puts it back
//! never hides it from another reader. A process whose settings differ from the record declares
//! nothing and fails with [`QueueError::Topology`], naming `capstan queue migrate`.

use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use serde::{Deserialize, Serialize};

use super::rabbitmq::classify;
use super::rabbitmq_claim::amqp_code;
use super::topology::Topology;
use super::{QueueError, QueueSettings};

/// How long a lock that another process holds is waited for before giving up, between tries.
const LOCK_RETRY: Duration = Duration::from_millis(100);

/// The current generation and the settings it was declared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Marker {
    pub(crate) v: u32,
    pub(crate) generation: u32,
    pub(crate) shards: u16,
    pub(crate) max_attempts: u32,
}

impl Marker {
    pub(crate) fn of(settings: &QueueSettings, generation: u32) -> Self {
        Self {
            v: 1,
            generation,
            shards: settings.shards,
            max_attempts: settings.max_attempts,
        }
    }

    pub(crate) fn matches(&self, settings: &QueueSettings) -> bool {
        self.shards == settings.shards && self.max_attempts == settings.max_attempts
    }
}

/// What the broker holds under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// No Capstan queues at all: a fresh broker.
    Nothing,
    /// A recorded generation.
    Marked(Marker),
    /// Queues of generation 0 declared before generations were recorded, with this many job
    /// shards; their delivery limit cannot be read over AMQP.
    Unmarked { shards: u16 },
}

/// The exclusive queue that only one connection can hold; it vanishes with its connection.
pub(crate) struct TopologyLock {
    channel: Channel,
    queue: String,
}

impl TopologyLock {
    /// Takes the lock, trying for at most `wait` while another connection holds it.
    pub(crate) async fn acquire(
        conn: &Connection,
        names: &Topology,
        wait: Duration,
    ) -> Result<Self, QueueError> {
        let queue = names.lock_queue();
        let deadline = Instant::now() + wait;
        let options = QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        };
        loop {
            let channel = open(conn).await?;
            match channel
                .queue_declare(queue.as_str().into(), options, FieldTable::default())
                .await
            {
                Ok(_) => return Ok(Self { channel, queue }),
                // RESOURCE_LOCKED: another connection holds it.
                Err(e) if amqp_code(&e) == Some(405) => {
                    if Instant::now() >= deadline {
                        return Err(QueueError::Unavailable(format!(
                            "the queue topology is locked by another process ({queue}); a \
                             `capstan queue migrate` may be running"
                        )));
                    }
                    tokio::time::sleep(LOCK_RETRY).await;
                }
                Err(e) => return Err(classify("lock the queue topology", &e)),
            }
        }
    }

    /// Gives the lock back (closing the connection would too).
    pub(crate) async fn release(self) {
        let _ = self
            .channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await;
        let _ = self.channel.close(200, "unlocked".into()).await;
    }
}

pub(crate) async fn open(conn: &Connection) -> Result<Channel, QueueError> {
    conn.create_channel()
        .await
        .map_err(|e| classify("open channel", &e))
}

/// Messages and consumers of `queue`, `None` when it does not exist (a passive declare, on a
/// channel of its own since a missing queue closes the channel).
pub(crate) async fn queue_state(
    conn: &Connection,
    queue: &str,
) -> Result<Option<(u32, u32)>, QueueError> {
    let ch = open(conn).await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    match ch
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
    {
        Ok(q) => {
            let _ = ch.close(200, "inspected".into()).await;
            Ok(Some((q.message_count(), q.consumer_count())))
        }
        Err(e) if amqp_code(&e) == Some(404) => Ok(None),
        Err(e) => Err(classify(&format!("inspect {queue}"), &e)),
    }
}

/// What the broker holds under `names`' prefix. Call with the lock held.
pub(crate) async fn inspect(conn: &Connection, names: &Topology) -> Result<Found, QueueError> {
    if let Some(marker) = read_marker(conn, names).await? {
        return Ok(Found::Marked(marker));
    }
    let legacy = Topology::found(names.prefix(), 0, 0);
    let router = queue_state(conn, &legacy.router_queue()).await?;
    let mut shards: u16 = 0;
    while queue_state(conn, &legacy.jobs_queue(shards))
        .await?
        .is_some()
    {
        shards = shards
            .checked_add(1)
            .ok_or_else(|| QueueError::Topology("more than 65535 job shard queues".to_owned()))?;
    }
    if router.is_none() && shards == 0 {
        return Ok(Found::Nothing);
    }
    Ok(Found::Unmarked { shards })
}

/// The recorded generation; `None` without a record (an empty record queue is a record that
/// was never written: its writer died between declaring and publishing).
async fn read_marker(conn: &Connection, names: &Topology) -> Result<Option<Marker>, QueueError> {
    if queue_state(conn, &names.marker_queue()).await?.is_none() {
        return Ok(None);
    }
    let ch = open(conn).await?;
    let got = ch
        .basic_get(
            names.marker_queue().as_str().into(),
            BasicGetOptions { no_ack: false },
        )
        .await
        .map_err(|e| classify("read the topology record", &e))?;
    let Some(got) = got else {
        let _ = ch.close(200, "read".into()).await;
        return Ok(None);
    };
    let parsed = serde_json::from_slice::<Marker>(&got.delivery.data);
    // Put back at once: the record stays for the next reader.
    let _ = got
        .delivery
        .acker
        .nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        })
        .await;
    let _ = ch.close(200, "read".into()).await;
    match parsed {
        Ok(m) if m.v == 1 => Ok(Some(m)),
        Ok(m) => Err(QueueError::Topology(format!(
            "{} holds a topology record of version {}, which this Capstan does not know",
            names.marker_queue(),
            m.v
        ))),
        Err(e) => Err(QueueError::Topology(format!(
            "{} holds an unreadable topology record: {e}",
            names.marker_queue()
        ))),
    }
}

/// Records `marker` as the current generation, confirmed; the older record is dropped.
pub(crate) async fn write_marker(
    conn: &Connection,
    names: &Topology,
    marker: &Marker,
) -> Result<(), QueueError> {
    let ch = open(conn).await?;
    let queue = names.marker_queue();
    let mut args = FieldTable::default();
    // drop-head (the default overflow): publishing the new record drops the old one.
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        args,
    )
    .await
    .map_err(|e| classify("declare the topology record", &e))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| classify("confirm.select", &e))?;
    let body = serde_json::to_vec(marker)
        .map_err(|e| QueueError::Invalid(format!("topology record: {e}")))?;
    let confirm = ch
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            &body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .map_err(|e| classify("write the topology record", &e))?
        .await
        .map_err(|e| classify("topology record confirm", &e))?;
    let _ = ch.close(200, "written".into()).await;
    super::rabbitmq::confirmed(confirm)
}

/// The command that changes the recorded generation, for error messages.
pub(crate) const MIGRATE_HINT: &str = "stop every worker of the old configuration, run `capstan queue migrate` \
     with the new one, then start the processes again (README: Changing the queue topology)";

/// Declares the generation `settings` run in and returns it, under the lock: the recorded one
/// when its settings match, generation 0 on a fresh broker (recorded), and generation 0 found
/// without a record when its shard count and delivery limit match (recorded from then on).
/// Settings that differ from what the broker holds are a [`QueueError::Topology`] and nothing
/// is declared.
pub(crate) async fn establish(
    conn: &Connection,
    settings: &QueueSettings,
    wait: Duration,
) -> Result<Topology, QueueError> {
    let names = Topology::new(settings, 0);
    let lock = TopologyLock::acquire(conn, &names, wait).await?;
    let result = establish_locked(conn, settings).await;
    lock.release().await;
    result
}

async fn establish_locked(
    conn: &Connection,
    settings: &QueueSettings,
) -> Result<Topology, QueueError> {
    let mine = format!(
        "shards = {}, max_attempts = {}",
        settings.shards, settings.max_attempts
    );
    match inspect(conn, &Topology::new(settings, 0)).await? {
        Found::Marked(m) if m.matches(settings) => {
            let topology = Topology::new(settings, m.generation);
            declare(conn, &topology).await?;
            Ok(topology)
        }
        Found::Marked(m) => Err(QueueError::Topology(format!(
            "the broker's queues for prefix {} are generation {} with shards = {}, \
             max_attempts = {}, but this process has {mine}: {MIGRATE_HINT}",
            settings.prefix, m.generation, m.shards, m.max_attempts
        ))),
        Found::Nothing => {
            let topology = Topology::new(settings, 0);
            declare(conn, &topology).await?;
            write_marker(conn, &topology, &Marker::of(settings, 0)).await?;
            Ok(topology)
        }
        Found::Unmarked { shards } if shards == settings.shards => {
            let topology = Topology::new(settings, 0);
            match declare(conn, &topology).await {
                Err(QueueError::Topology(_)) => Err(QueueError::Topology(format!(
                    "the broker's queues for prefix {} were declared with another \
                     max_attempts than this process's {mine}: {MIGRATE_HINT}",
                    settings.prefix
                ))),
                Err(e) => Err(e),
                Ok(()) => {
                    write_marker(conn, &topology, &Marker::of(settings, 0)).await?;
                    Ok(topology)
                }
            }
        }
        Found::Unmarked { shards } => Err(QueueError::Topology(format!(
            "the broker's queues for prefix {} have {shards} job shards, but this process has \
             {mine}: {MIGRATE_HINT}",
            settings.prefix
        ))),
    }
}

/// Declares `topology` on a channel of its own; arguments that disagree with an existing queue
/// (PRECONDITION_FAILED) are a [`QueueError::Topology`].
pub(crate) async fn declare(conn: &Connection, topology: &Topology) -> Result<(), QueueError> {
    let ch = open(conn).await?;
    match topology.declare(&ch).await {
        Ok(()) => {
            let _ = ch.close(200, "declared".into()).await;
            Ok(())
        }
        Err(e) if amqp_code(&e) == Some(406) => Err(QueueError::Topology(format!(
            "declare generation {}: {e}",
            topology.generation()
        ))),
        Err(e) => Err(classify("declare topology", &e)),
    }
}
