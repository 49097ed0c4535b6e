//! Spreading the job shards over the live worker processes.
//!
//! Every process consuming jobs sends a heartbeat each second to the fanout exchange
//! `{p}.workers` and hears everyone else's on its own exclusive queue. From the ids heard within
//! the last few seconds every process computes the same split (sorted ids, shard `i` to member
//! `i mod n`), so counts differ by at most one, and consumes only its own shards. The queues keep
//! single active consumer, so two processes whose views briefly disagree never both receive a
//! shard's jobs.
//!
//! Handing a shard over drains it first: new deliveries of the shard are held back (unacked),
//! the ones already handed to the syncer are waited for, and only then is the consumer
//! cancelled and the held ones returned to the queue. The next owner therefore never starts a
//! job for an app this process is still reconciling.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::QueueError;
use super::rabbitmq::{Live, Shared, SubState, classify, lock};
use super::rabbitmq_consumer::Forwarder;

/// How often a process says it is alive (and re-evaluates its shards).
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
/// A process not heard from for this long is taken for dead and its shards are shared out.
const MEMBER_TTL: Duration = Duration::from_secs(5);

/// One heartbeat.
#[derive(Debug, Serialize, Deserialize)]
struct Beat {
    id: String,
    /// Sent once when the process stops taking jobs, so the others take over at once.
    #[serde(default)]
    leaving: bool,
}

/// The processes heard from, with when.
#[derive(Default)]
pub(crate) struct Members {
    seen: HashMap<String, Instant>,
}

impl Members {
    fn heard(&mut self, beat: &Beat, now: Instant) {
        if beat.leaving {
            self.seen.remove(&beat.id);
        } else {
            self.seen.insert(beat.id.clone(), now);
        }
    }

    /// The live processes, `me` included, sorted.
    pub(crate) fn live(&self, me: &str, now: Instant) -> Vec<String> {
        let mut ids: Vec<String> = self
            .seen
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(**t) <= MEMBER_TTL)
            .map(|(id, _)| id.clone())
            .chain(std::iter::once(me.to_owned()))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// The shards `me` owns among the sorted `members`: shard `i` goes to `members[i mod n]`, so
/// every process that sees the same members computes the same split.
pub(crate) fn assigned(members: &[String], me: &str, shards: u16) -> BTreeSet<u16> {
    let Some(mine) = members.iter().position(|m| m == me) else {
        return BTreeSet::new();
    };
    (0..shards)
        .filter(|i| usize::from(*i) % members.len() == mine)
        .collect()
}

/// Counts one shard's deliveries that are with the subscriber, and holds new ones back while
/// the shard is handed over.
#[derive(Default)]
pub(crate) struct ShardGate {
    holding: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
    /// Set when this process cancels the consumer on purpose (not a broker cancel).
    released: AtomicBool,
}

impl ShardGate {
    /// Counts a delivery in; false (and not counted) when the shard is being handed over.
    pub(crate) fn admit(&self) -> bool {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.holding.load(Ordering::SeqCst) {
            self.leave();
            return false;
        }
        true
    }

    /// A delivery counted in was settled (or dropped, which returns it to the queue).
    pub(crate) fn leave(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Whether this process cancelled the consumer itself.
    pub(crate) fn is_released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// Holds new deliveries back from now on.
    pub(crate) fn hold(&self) {
        self.holding.store(true, Ordering::SeqCst);
    }

    async fn drained(&self) {
        loop {
            // Registered before the check, so a notification between the two is not missed.
            let idle = self.idle.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// One shard this process consumes on one connection.
pub(crate) struct ShardConsumer {
    tag: String,
    gate: Arc<ShardGate>,
    conn: std::sync::Weak<Live>,
}

/// Which shards a jobs subscription consumes, and which it was asked to.
#[derive(Default)]
pub(crate) struct Shards {
    consuming: std::collections::BTreeMap<u16, ShardConsumer>,
    releasing: BTreeSet<u16>,
    /// What the last split gave this process (every shard until others are heard).
    wanted: Option<BTreeSet<u16>>,
}

/// The consumer tag of a shard: the process's connection name and the shard, so
/// `rabbitmqctl list_consumers` shows who owns what.
fn tag(shared: &Shared, shard: u16) -> String {
    format!("{}/shard-{shard}", shared.connection_name)
}

/// Starts consuming `shard` on the subscription's channel of `live`.
async fn acquire(
    live: &Arc<Live>,
    shared: &Shared,
    sub: &Arc<SubState>,
    shard: u16,
) -> Result<(), QueueError> {
    let (Some(channel), Some(tx)) = (lock(&sub.channel).clone(), lock(&sub.tx).clone()) else {
        return Ok(());
    };
    let queue = live.topology.jobs_queue(shard);
    let tag = tag(shared, shard);
    let consumer = channel
        .basic_consume(
            queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| classify("basic.consume", &e))?;
    let gate = Arc::new(ShardGate::default());
    let forward = Forwarder {
        tx,
        shard: Some(shard),
        max_attempts: shared.settings.max_attempts,
        retry_delay: shared.settings.retry_delay(),
        dead_exchange: shared.topology.dead_queue().into(),
        publish_timeout: shared.settings.publish_timeout(),
        sub: Arc::downgrade(sub),
        live: Arc::downgrade(live),
        gate: Some(gate.clone()),
        metrics: shared.metrics.get().cloned(),
    };
    if let Some(metrics) = &forward.metrics {
        metrics.shards_owned.inc();
    }
    tokio::spawn(forward.run(consumer));
    lock(&sub.shards).consuming.insert(
        shard,
        ShardConsumer {
            tag,
            gate,
            conn: Arc::downgrade(live),
        },
    );
    tracing::info!(shard, "consuming shard");
    Ok(())
}

/// Hands `shard` over: holds new deliveries, waits for the ones out to be settled, cancels the
/// consumer (single active consumer moves the shard on) and returns the held ones.
async fn release(live: Arc<Live>, sub: Arc<SubState>, shard: u16) {
    let found = lock(&sub.shards)
        .consuming
        .get(&shard)
        .map(|c| (c.tag.clone(), c.gate.clone()));
    let Some((tag, gate)) = found else {
        lock(&sub.shards).releasing.remove(&shard);
        return;
    };
    gate.hold();
    tokio::select! {
        _ = gate.drained() => {}
        // The connection is gone: the broker has requeued everything already.
        _ = live.lost.cancelled() => {}
    }
    gate.released.store(true, Ordering::SeqCst);
    let channel = lock(&sub.channel).clone();
    if let Some(channel) = channel
        && let Err(e) = channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await
    {
        tracing::debug!(shard, error = %e, "cancelling a shard consumer");
    }
    let mut shards = lock(&sub.shards);
    shards.consuming.remove(&shard);
    shards.releasing.remove(&shard);
    tracing::info!(shard, "handed shard over");
}

/// Makes the subscription consume exactly `wanted` on `live`.
async fn rebalance(live: &Arc<Live>, shared: &Shared, sub: &Arc<SubState>, wanted: BTreeSet<u16>) {
    let (to_acquire, to_release) = {
        let mut guard = lock(&sub.shards);
        let Shards {
            consuming,
            releasing,
            wanted: last,
        } = &mut *guard;
        // Consumers of an earlier connection died with it.
        consuming.retain(|_, c| c.conn.upgrade().is_some_and(|l| Arc::ptr_eq(&l, live)));
        releasing.retain(|s| consuming.contains_key(s));
        let acquire: Vec<u16> = wanted
            .iter()
            .filter(|s| !consuming.contains_key(s) && !releasing.contains(s))
            .copied()
            .collect();
        let release: Vec<u16> = consuming
            .keys()
            .filter(|s| !wanted.contains(s) && !releasing.contains(s))
            .copied()
            .collect();
        releasing.extend(release.iter().copied());
        *last = Some(wanted);
        (acquire, release)
    };
    for shard in to_acquire {
        if let Err(e) = acquire(live, shared, sub, shard).await {
            tracing::warn!(shard, error = %e, "cannot consume a shard; trying again");
        }
    }
    for shard in to_release {
        tokio::spawn(release(live.clone(), sub.clone(), shard));
    }
}

/// On a new connection: consume what the last split gave this process (every shard at first,
/// so a lone worker starts at once; the split moves the surplus on as others are heard).
pub(crate) async fn resume(
    live: &Arc<Live>,
    shared: &Shared,
    sub: &Arc<SubState>,
) -> Result<(), QueueError> {
    let wanted = {
        let mut shards = lock(&sub.shards);
        shards.consuming.clear();
        shards.releasing.clear();
        shards
            .wanted
            .clone()
            .unwrap_or_else(|| (0..shared.settings.shards).collect())
    };
    if sub.is_leaving() {
        return Ok(());
    }
    for shard in wanted.iter().copied() {
        acquire(live, shared, sub, shard).await?;
    }
    lock(&sub.shards).wanted = Some(wanted);
    Ok(())
}

/// Declares this connection's presence queue and feeds the heartbeats it hears into `members`.
async fn listen(
    live: &Live,
    shared: &Shared,
    members: Arc<Mutex<Members>>,
) -> Result<(), QueueError> {
    let channel = live
        .conn
        .create_channel()
        .await
        .map_err(|e| classify("open channel", &e))?;
    let exchange = shared.topology.workers_exchange();
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| classify("declare the workers exchange", &e))?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| classify("declare a presence queue", &e))?;
    channel
        .queue_bind(
            queue.name().as_str().into(),
            exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| classify("bind the presence queue", &e))?;
    let mut consumer = channel
        .basic_consume(
            queue.name().as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| classify("consume heartbeats", &e))?;
    tokio::spawn(async move {
        // The channel lives as long as this task: it ends with the connection.
        let _channel = channel;
        while let Some(Ok(delivery)) = consumer.next().await {
            // A beat that is not ours to read (another version, garbage) is ignored.
            if let Ok(beat) = serde_json::from_slice::<Beat>(&delivery.data) {
                lock(&members).heard(&beat, Instant::now());
            }
        }
    });
    Ok(())
}

/// Sends one heartbeat (fire and forget: a lost beat is covered by the next).
async fn beat(live: &Live, shared: &Shared, leaving: bool) {
    let body = serde_json::to_vec(&Beat {
        id: shared.connection_name.clone(),
        leaving,
    })
    .unwrap_or_default();
    let Ok(channel) = live.publishing_channel().await else {
        return;
    };
    let properties = BasicProperties::default()
        .with_delivery_mode(1)
        .with_expiration(MEMBER_TTL.as_millis().to_string().as_str().into());
    let exchange = shared.topology.workers_exchange();
    if let Err(e) = channel
        .basic_publish(
            exchange.as_str().into(),
            "".into(),
            BasicPublishOptions::default(),
            &body,
            properties,
        )
        .await
    {
        tracing::debug!(error = %e, "heartbeat not sent");
    }
}

/// Keeps a jobs subscription's shards in line with the live processes until it ends; then
/// says this process is leaving.
pub(crate) async fn balance(shared: Arc<Shared>, sub: Arc<SubState>) {
    let me = shared.connection_name.clone();
    let members = Arc::new(Mutex::new(Members::default()));
    let mut listening_on = std::sync::Weak::<Live>::new();
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = tick.tick() => {}
            _ = sub.leaving_now.notified() => {}
        }
        if sub.is_closed() || sub.is_leaving() {
            break;
        }
        let live = shared.live.borrow().clone().filter(|l| l.is_usable());
        let Some(live) = live else {
            continue;
        };
        if listening_on
            .upgrade()
            .is_none_or(|l| !Arc::ptr_eq(&l, &live))
        {
            match listen(&live, &shared, members.clone()).await {
                Ok(()) => listening_on = Arc::downgrade(&live),
                Err(e) => {
                    tracing::debug!(error = %e, "presence not set up yet");
                    continue;
                }
            }
        }
        beat(&live, &shared, false).await;
        let ids = lock(&members).live(&me, Instant::now());
        let wanted = assigned(&ids, &me, shared.settings.shards);
        rebalance(&live, &shared, &sub, wanted).await;
    }
    let live = shared.live.borrow().clone().filter(|l| l.is_usable());
    if let Some(live) = live {
        beat(&live, &shared, true).await;
        if sub.is_leaving() {
            // Nothing new is started from here on; what is out finishes and is settled.
            for c in lock(&sub.shards).consuming.values() {
                c.gate.hold();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("capstan:p:{i:08x}")).collect()
    }

    #[test]
    fn every_shard_has_exactly_one_owner_and_counts_differ_by_at_most_one() {
        for shards in [1u16, 4, 7, 16] {
            for n in 1..=5 {
                let members = ids(n);
                let splits: Vec<BTreeSet<u16>> = members
                    .iter()
                    .map(|m| assigned(&members, m, shards))
                    .collect();
                let mut all: Vec<u16> = splits.iter().flatten().copied().collect();
                all.sort();
                assert_eq!(
                    all,
                    (0..shards).collect::<Vec<_>>(),
                    "{shards} shards, {n} members"
                );
                let sizes: Vec<usize> = splits.iter().map(BTreeSet::len).collect();
                let (lo, hi) = (sizes.iter().min(), sizes.iter().max());
                assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{sizes:?}");
            }
        }
        assert!(assigned(&ids(2), "stranger", 4).is_empty());
    }

    #[test]
    fn members_expire_unless_heard_and_leave_at_once_when_they_say_so() {
        let t0 = Instant::now();
        let mut m = Members::default();
        m.heard(
            &Beat {
                id: "b".into(),
                leaving: false,
            },
            t0,
        );
        m.heard(
            &Beat {
                id: "c".into(),
                leaving: false,
            },
            t0,
        );
        assert_eq!(m.live("a", t0), ["a", "b", "c"]);
        m.heard(
            &Beat {
                id: "c".into(),
                leaving: true,
            },
            t0,
        );
        assert_eq!(m.live("a", t0), ["a", "b"]);
        assert_eq!(
            m.live("a", t0 + MEMBER_TTL + Duration::from_millis(1)),
            ["a"]
        );
    }

    #[tokio::test]
    async fn a_gate_waits_for_what_is_out_and_holds_what_comes_after() {
        let gate = Arc::new(ShardGate::default());
        assert!(gate.admit());
        gate.hold();
        assert!(!gate.admit(), "held back once the hand-over began");
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.drained().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one delivery is still out");
        gate.leave();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("drained once settled")
            .expect("task");
    }
}
