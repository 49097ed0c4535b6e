//! `capstan queue migrate`: moves a broker from its recorded topology generation to the one
//! the settings ask for (another `queue.shards` or `queue.max_attempts`).
//!
//! Under the topology lock (so no process declares anything meanwhile): refuse while anyone
//! consumes the old generation's queues (its workers must be gone, so no app is reconciled
//! from both generations at once); declare the next generation; move the events exchange's
//! binding to the new router queue; delete the old jobs exchange, so a process still running
//! the old settings gets an error for a job instead of a confirm for a queue about to go;
//! move every message of the old router queue to the new one and every job to the new jobs
//! exchange, routed by the new shard count (its key from the `x-capstan-key` header, or from the
//! body for jobs published before that header existed), each confirmed before it is acked;
//! delete the old queues (only when empty and unused); record the new generation last.
//! A crash anywhere leaves the old generation recorded, so running the command again finishes
//! the move (a message moved but not yet acked when it crashed is moved twice; jobs are
//! idempotent). The dead-letter queue belongs to no generation and is not touched.

use std::fmt;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use super::rabbitmq::classify;
use super::rabbitmq_consumer::{KEY_HEADER, REASON_HEADER};
use super::rabbitmq_generation::{
    Found, Marker, TopologyLock, declare, inspect, open, queue_state, write_marker,
};
use super::topology::Topology;
use super::{QueueError, QueueKind, QueueSettings, Topic};

/// Messages being moved at once (each is still confirmed before its original is acked).
const MOVE_PREFETCH: u16 = 64;

/// One topology generation as the migration saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// 0 for the original names, then one more per migration.
    pub number: u32,
    /// Job shard queues.
    pub shards: u16,
    /// The delivery limit it was declared with; unknown for queues declared before generations
    /// were recorded.
    pub max_attempts: Option<u32>,
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "generation {} (shards = {}, ", self.number, self.shards)?;
        match self.max_attempts {
            Some(n) => write!(f, "max_attempts = {n})"),
            None => write!(f, "max_attempts unrecorded)"),
        }
    }
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migration {
    /// The broker already holds the topology the settings ask for: nothing changed.
    Current(Generation),
    /// Every message moved from one generation to the next, the old one deleted.
    Migrated {
        /// The generation moved from.
        from: Generation,
        /// The generation now recorded.
        to: Generation,
        /// PushEvents moved to the new router queue.
        events: u64,
        /// Jobs moved to their shard under the new count.
        jobs: u64,
        /// Jobs without a readable app key, sent to the dead-letter queue with the reason.
        dead_lettered: u64,
    },
}

impl fmt::Display for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Migration::Current(g) => write!(f, "the broker already holds {g}: nothing to do"),
            Migration::Migrated {
                from,
                to,
                events,
                jobs,
                dead_lettered,
            } => {
                write!(
                    f,
                    "migrated from {from} to {to}: {jobs} jobs and {events} events moved"
                )?;
                if *dead_lettered > 0 {
                    write!(f, ", {dead_lettered} jobs without an app key dead-lettered")?;
                }
                Ok(())
            }
        }
    }
}

/// The app key of a job body published without the key header; `None` when it has none.
pub type KeyOf<'a> = &'a (dyn Fn(&[u8]) -> Option<String> + Sync);

/// Moves the broker under `settings.prefix` to the topology `settings` ask for; see the module
/// documentation. `key_of` reads the app key from a job body that lacks the key header.
pub async fn migrate(settings: &QueueSettings, key_of: KeyOf<'_>) -> Result<Migration, QueueError> {
    settings.validate()?;
    if settings.kind != QueueKind::Rabbitmq {
        return Err(QueueError::Settings(
            "queue.kind is not \"rabbitmq\": the embedded queue lives and dies with its process \
             and has no topology to migrate"
                .to_owned(),
        ));
    }
    let conn = Connection::connect(
        &settings.connection_url()?,
        ConnectionProperties::default().with_connection_name(
            format!("capstan:{}:migrate", settings.prefix)
                .as_str()
                .into(),
        ),
    )
    .await
    .map_err(|e| classify("connect", &e))?;
    let names = Topology::new(settings, 0);
    let result = match TopologyLock::acquire(&conn, &names, settings.publish_timeout()).await {
        Ok(lock) => {
            let r = migrate_locked(&conn, settings, key_of).await;
            lock.release().await;
            r
        }
        Err(e) => Err(e),
    };
    let _ = conn.close(200, "migrated".into()).await;
    result
}

#[tracing::instrument(skip_all, fields(prefix = %settings.prefix))]
async fn migrate_locked(
    conn: &Connection,
    settings: &QueueSettings,
    key_of: KeyOf<'_>,
) -> Result<Migration, QueueError> {
    let names = Topology::new(settings, 0);
    let (old, from) = match inspect(conn, &names).await? {
        Found::Nothing => {
            return Err(QueueError::Topology(format!(
                "the broker has no Capstan queues under prefix {}: nothing to migrate (check \
                 queue.url and queue.prefix; processes declare the queues when they start)",
                settings.prefix
            )));
        }
        Found::Marked(m) if m.matches(settings) => {
            return Ok(Migration::Current(Generation {
                number: m.generation,
                shards: m.shards,
                max_attempts: Some(m.max_attempts),
            }));
        }
        Found::Marked(m) => (
            Topology::found(&settings.prefix, m.shards, m.generation),
            Generation {
                number: m.generation,
                shards: m.shards,
                max_attempts: Some(m.max_attempts),
            },
        ),
        Found::Unmarked { shards } => {
            let old = Topology::found(&settings.prefix, shards, 0);
            if shards == settings.shards && declare(conn, &Topology::new(settings, 0)).await.is_ok()
            {
                // Same shard count and delivery limit: only the record was missing.
                write_marker(conn, &names, &Marker::of(settings, 0)).await?;
                return Ok(Migration::Current(Generation {
                    number: 0,
                    shards,
                    max_attempts: Some(settings.max_attempts),
                }));
            }
            let from = Generation {
                number: 0,
                shards,
                max_attempts: None,
            };
            (old, from)
        }
    };
    refuse_while_consumed(conn, &old).await?;

    let new = Topology::new(settings, from.number + 1);
    declare(conn, &new).await.map_err(|e| match e {
        QueueError::Topology(m) => QueueError::Topology(format!(
            "{m} (an interrupted migration to other settings left generation {}: finish it with \
             those settings first)",
            new.generation()
        )),
        other => other,
    })?;
    let ch = open(conn).await?;
    // The new router queue is bound by `declare`; events published from here on go there only.
    ch.queue_unbind(
        old.router_queue().as_str().into(),
        old.events_exchange().as_str().into(),
        "".into(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| classify("unbind the old router queue", &e))?;
    ch.exchange_delete(
        old.jobs_exchange().as_str().into(),
        ExchangeDeleteOptions::default(),
    )
    .await
    .map_err(|e| classify("delete the old jobs exchange", &e))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| classify("confirm.select", &e))?;
    ch.basic_qos(MOVE_PREFETCH, BasicQosOptions::default())
        .await
        .map_err(|e| classify("basic.qos", &e))?;
    let wait = settings.publish_timeout();

    let router = new.router_queue();
    let (events, _) = drain(
        conn,
        &ch,
        &old.router_queue(),
        &|_, _| ("".to_owned(), router.clone(), None),
        wait,
    )
    .await?;
    let mut jobs = 0;
    let mut dead_lettered = 0;
    for (queue, _) in old.queues(Topic::Jobs) {
        let moved = drain(
            conn,
            &ch,
            &queue,
            &|headers, body| {
                let key = header_key(headers).or_else(|| key_of(body));
                match key {
                    Some(key) => {
                        let (exchange, shard) = new.route(Topic::Jobs, &key);
                        (exchange, shard, None)
                    }
                    None => (
                        new.dead_queue(),
                        String::new(),
                        Some("the queue migration found no app key in this job"),
                    ),
                }
            },
            wait,
        )
        .await?;
        jobs += moved.0;
        dead_lettered += moved.1;
    }
    let _ = ch.close(200, "moved".into()).await;

    let mut old_queues: Vec<String> = vec![old.router_queue()];
    old_queues.extend(old.queues(Topic::Jobs).into_iter().map(|(q, _)| q));
    for queue in old_queues {
        delete_if_empty(conn, &queue).await?;
    }
    write_marker(conn, &names, &Marker::of(settings, new.generation())).await?;
    let to = Generation {
        number: new.generation(),
        shards: settings.shards,
        max_attempts: Some(settings.max_attempts),
    };
    tracing::info!(%from, %to, jobs, events, dead_lettered, "queue topology migrated");
    Ok(Migration::Migrated {
        from,
        to,
        events,
        jobs,
        dead_lettered,
    })
}

/// Fails naming the queues when anything still consumes `old`'s router or job queues.
async fn refuse_while_consumed(conn: &Connection, old: &Topology) -> Result<(), QueueError> {
    let mut queues = vec![old.router_queue()];
    queues.extend(old.queues(Topic::Jobs).into_iter().map(|(q, _)| q));
    let mut busy = Vec::new();
    for queue in queues {
        if let Some((_, consumers)) = queue_state(conn, &queue).await?
            && consumers > 0
        {
            busy.push(format!("{queue} ({consumers})"));
        }
    }
    if busy.is_empty() {
        return Ok(());
    }
    Err(QueueError::Topology(format!(
        "processes of the old configuration still consume generation {}: {}; stop every \
         worker first (e.g. kubectl -n capstan scale deploy/capstan-worker --replicas=0) and run \
         the migration again",
        old.generation(),
        busy.join(", ")
    )))
}

/// Where one message goes: exchange, routing key, and a dead-letter reason when it is one.
type Target = (String, String, Option<&'static str>);

/// Picks a moved message's [`Target`] from its headers and body.
type RouteFn<'a> = dyn Fn(Option<&FieldTable>, &[u8]) -> Target + Sync + 'a;

/// Moves every message of `queue` (if it exists) where `target` says, each confirmed before
/// the original is acked. Returns (moved, dead-lettered). Nothing new reaches the queue any
/// more (its exchange is gone or unbound), so the messages counted now are all there is; they
/// are consumed rather than fetched because quorum queues with a single active consumer refuse
/// `basic.get`.
async fn drain(
    conn: &Connection,
    ch: &Channel,
    queue: &str,
    target: &RouteFn<'_>,
    wait: std::time::Duration,
) -> Result<(u64, u64), QueueError> {
    let Some((count, _)) = queue_state(conn, queue).await? else {
        return Ok((0, 0));
    };
    if count == 0 {
        return Ok((0, 0));
    }
    let tag = format!("migrate-{queue}");
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| classify(&format!("consume {queue}"), &e))?;
    let (mut moved, mut dead) = (0, 0);
    // Copies published but not yet confirmed, with what acks their originals: confirmed and
    // acked a prefetch window at a time rather than one round trip each.
    let mut pending = Vec::new();
    let mut received: u64 = 0;
    while received < u64::from(count) {
        let d = match tokio::time::timeout(wait, consumer.next()).await {
            Ok(Some(Ok(d))) => d,
            Ok(Some(Err(e))) => return Err(classify(&format!("consume {queue}"), &e)),
            Ok(None) => {
                return Err(QueueError::Unavailable(format!(
                    "the broker ended the consumer of {queue}"
                )));
            }
            Err(_) => {
                return Err(QueueError::Unavailable(format!(
                    "{queue} delivered {received} of its {count} messages within {} ms",
                    wait.as_millis()
                )));
            }
        };
        received += 1;
        let (exchange, routing_key, reason) = target(d.properties.headers().as_ref(), &d.data);
        let properties = fresh_properties(&d.properties, reason);
        let confirm = ch
            .basic_publish(
                exchange.as_str().into(),
                routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                &d.data,
                properties,
            )
            .await
            .map_err(|e| classify("publish a moved message", &e))?;
        pending.push((confirm, d.acker, reason.is_some()));
        if pending.len() >= usize::from(MOVE_PREFETCH) || received == u64::from(count) {
            for (confirm, acker, dead_letter) in pending.drain(..) {
                super::rabbitmq::confirmed(
                    confirm
                        .await
                        .map_err(|e| classify("moved message confirm", &e))?,
                )?;
                acker
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(|e| classify("ack a moved message", &e))?;
                if dead_letter {
                    dead += 1;
                } else {
                    moved += 1;
                }
            }
        }
    }
    ch.basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
        .await
        .map_err(|e| classify(&format!("stop consuming {queue}"), &e))?;
    Ok((moved, dead))
}

/// The message's properties for its copy: persistent, without the old queue's delivery count
/// (the new queue counts afresh), with the reason when it is dead-lettered.
fn fresh_properties(old: &BasicProperties, reason: Option<&str>) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(h) = old.headers() {
        for (k, v) in h.inner() {
            if k.as_str() != "x-delivery-count" {
                headers.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(reason) = reason {
        headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
    }
    old.clone().with_delivery_mode(2).with_headers(headers)
}

fn header_key(headers: Option<&FieldTable>) -> Option<String> {
    match headers?.inner().get(KEY_HEADER)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Deletes `queue` only when it is empty and unused, so nothing that reached it during the move
/// is lost (quorum queues refuse the broker's own `if-empty`/`if-unused` deletes, so this checks
/// first; nothing routes to the queue any more and the lock keeps processes from declaring it).
async fn delete_if_empty(conn: &Connection, queue: &str) -> Result<(), QueueError> {
    match queue_state(conn, queue).await? {
        None => return Ok(()),
        Some((0, 0)) => {}
        Some((messages, consumers)) => {
            return Err(QueueError::Topology(format!(
                "{queue} was not deleted: {messages} messages and {consumers} consumers reached                  it during the migration; run it again"
            )));
        }
    }
    let ch = open(conn).await?;
    ch.queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .map_err(|e| classify(&format!("delete {queue}"), &e))?;
    let _ = ch.close(200, "deleted".into()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_loses_the_old_delivery_count_and_keeps_everything_else() {
        let mut h = FieldTable::default();
        h.insert("x-delivery-count".into(), AMQPValue::LongLongInt(2));
        h.insert(KEY_HEADER.into(), AMQPValue::LongString("ns/app".into()));
        let old = BasicProperties::default()
            .with_message_id("job-1".into())
            .with_headers(h);
        let copy = fresh_properties(&old, None);
        let headers = copy.headers().clone().unwrap_or_default();
        assert!(!headers.contains_key("x-delivery-count"));
        assert_eq!(header_key(Some(&headers)).as_deref(), Some("ns/app"));
        assert_eq!(
            copy.message_id().as_ref().map(|m| m.as_str()),
            Some("job-1")
        );
        assert_eq!(copy.delivery_mode(), &Some(2));
        let dead = fresh_properties(&old, Some("why"));
        assert!(
            dead.headers()
                .as_ref()
                .is_some_and(|h| h.contains_key(REASON_HEADER))
        );
    }
}
