//! RabbitMQ exchange and queue names, and their declaration.
//!
//! `{p}.events` (fanout) → quorum queue `{p}.events.router`;
//! `{p}.jobs` (direct) → quorum queues `{p}.jobs.{i}`, bound with routing key `{i}`, single
//! active consumer; work queues dead-letter to `{p}.dead` (fanout) → queue `{p}.dead`.
//! What `queue.shards` and `queue.max_attempts` fix (the router queue, the jobs exchange and its
//! queues) belongs to a *generation*: generation 0 has the names above, generation `n` adds
//! `.g{n}` (`{p}.events.router.g{n}`, `{p}.jobs.g{n}`, `{p}.jobs.g{n}.{i}`). The broker's current
//! generation is recorded in `{p}.topology` (see `rabbitmq_generation.rs`); `capstan queue
//! migrate` moves from one to the next (`rabbitmq_migrate.rs`).
//! Notifications go to `{p}.notify` (fanout) → quorum queue `{p}.notify`, outside the generations:
//! its consumers retry in process (`crate::notify`), so it carries no delivery limit that
//! `queue.max_attempts` would fix.
//! Worker heartbeats go to `{p}.workers` (fanout) → one exclusive queue per process (see
//! `rabbitmq_shards.rs`). Claims (de-duplication windows) are transient queues `{p}.seen.<hash>` that expire by
//! themselves (see `rabbitmq_claim.rs`).

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use sha2::{Digest, Sha256};

use super::{QueueSettings, Topic, shard_for};

/// The names and arguments derived from the settings.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    prefix: String,
    shards: u16,
    max_attempts: u32,
    generation: u32,
}

impl Topology {
    /// The topology `settings` ask for, in `generation`.
    pub(crate) fn new(settings: &QueueSettings, generation: u32) -> Self {
        Self {
            prefix: settings.prefix.clone(),
            shards: settings.shards,
            max_attempts: settings.max_attempts,
            generation,
        }
    }

    /// Generation `generation` of `prefix` with `shards` job queues, for names only (what is
    /// found on the broker, whose delivery limit is not known).
    pub(crate) fn found(prefix: &str, shards: u16, generation: u32) -> Self {
        Self {
            prefix: prefix.to_owned(),
            shards,
            max_attempts: 0,
            generation,
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    /// `.g{n}` for generation n > 0; nothing for generation 0, whose names are the original ones.
    fn suffix(&self) -> String {
        match self.generation {
            0 => String::new(),
            n => format!(".g{n}"),
        }
    }

    /// The durable queue holding the one message that says which generation is current.
    pub(crate) fn marker_queue(&self) -> String {
        format!("{}.topology", self.prefix)
    }

    /// The exclusive queue whose holder alone may declare, check or change the topology.
    pub(crate) fn lock_queue(&self) -> String {
        format!("{}.topology.lock", self.prefix)
    }

    /// The fanout exchange every PushEvent is published to (the same in every generation:
    /// other systems publish to it).
    pub(crate) fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    pub(crate) fn router_queue(&self) -> String {
        format!("{}.events.router{}", self.prefix, self.suffix())
    }

    pub(crate) fn jobs_exchange(&self) -> String {
        format!("{}.jobs{}", self.prefix, self.suffix())
    }

    pub(crate) fn dead_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    /// The queue that holds the claim marker for `key`: 128 bits of its SHA-256, so any key
    /// gives a short, valid queue name.
    pub(crate) fn seen_queue(&self, key: &str) -> String {
        let digest = Sha256::digest(key.as_bytes());
        format!("{}.seen.{}", self.prefix, hex::encode(&digest[..16]))
    }

    /// The fanout exchange and the queue notifications wait in (the same in every generation).
    pub(crate) fn notify_queue(&self) -> String {
        format!("{}.notify", self.prefix)
    }

    /// The fanout exchange and the queue pull-request previews wait in (the same in every
    /// generation).
    pub(crate) fn previews_queue(&self) -> String {
        format!("{}.previews", self.prefix)
    }

    /// The exchange and queue (one name) of a side topic.
    fn side_queue(&self, topic: Topic) -> Option<String> {
        match topic {
            Topic::Notifications => Some(self.notify_queue()),
            Topic::Previews => Some(self.previews_queue()),
            Topic::Events | Topic::Jobs => None,
        }
    }

    fn exchange(&self, topic: Topic) -> String {
        match topic {
            Topic::Events => self.events_exchange(),
            Topic::Jobs => self.jobs_exchange(),
            Topic::Notifications => self.notify_queue(),
            Topic::Previews => self.previews_queue(),
        }
    }

    /// The fanout exchange worker processes send their heartbeats to.
    pub(crate) fn workers_exchange(&self) -> String {
        format!("{}.workers", self.prefix)
    }

    pub(crate) fn jobs_queue(&self, shard: u16) -> String {
        format!("{}.jobs{}.{shard}", self.prefix, self.suffix())
    }

    /// The queues a subscription to `topic` consumes, with their shard numbers.
    pub(crate) fn queues(&self, topic: Topic) -> Vec<(String, Option<u16>)> {
        match topic {
            Topic::Events => vec![(self.router_queue(), None)],
            Topic::Notifications | Topic::Previews => {
                vec![(self.exchange(topic), None)]
            }
            Topic::Jobs => (0..self.shards)
                .map(|i| (self.jobs_queue(i), Some(i)))
                .collect(),
        }
    }

    /// Exchange and routing key for a message.
    pub(crate) fn route(&self, topic: Topic, key: &str) -> (String, String) {
        match topic {
            Topic::Events | Topic::Notifications | Topic::Previews => {
                (self.exchange(topic), String::new())
            }
            Topic::Jobs => (
                self.exchange(topic),
                shard_for(key, self.shards).to_string(),
            ),
        }
    }

    fn work_queue_arguments(&self, single_active: bool) -> FieldTable {
        let mut args = quorum();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_queue().into()),
        );
        // A quorum queue dead-letters a message once it was returned more often than the
        // limit, i.e. after limit + 1 deliveries; this catches consumers that crash on it.
        let limit = i64::from(self.max_attempts.saturating_sub(1));
        args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(limit));
        if single_active {
            args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        }
        args
    }

    /// Declares everything, idempotently; an existing queue with other arguments is an error.
    pub(crate) async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let queue_opts = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let dead = self.dead_queue();
        ch.exchange_declare(
            dead.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
        ch.queue_declare(dead.as_str().into(), queue_opts, quorum())
            .await?;
        ch.queue_bind(
            dead.as_str().into(),
            dead.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

        for (topic, kind) in [
            (Topic::Events, ExchangeKind::Fanout),
            (Topic::Jobs, ExchangeKind::Direct),
        ] {
            let exchange = self.exchange(topic);
            ch.exchange_declare(
                exchange.as_str().into(),
                kind,
                durable,
                FieldTable::default(),
            )
            .await?;
            self.declare_queues(ch, topic, &exchange).await?;
        }
        // Dead-lettered like the work queues; no delivery limit (see the module doc).
        for side in Topic::SIDE.iter().filter_map(|t| self.side_queue(*t)) {
            ch.exchange_declare(
                side.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
            let mut args = quorum();
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(self.dead_queue().into()),
            );
            ch.queue_declare(side.as_str().into(), queue_opts, args)
                .await?;
            ch.queue_bind(
                side.as_str().into(),
                side.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        Ok(())
    }

    /// Declares and binds the work queues of `topic` (events or jobs) to `exchange`.
    async fn declare_queues(
        &self,
        ch: &Channel,
        topic: Topic,
        exchange: &str,
    ) -> lapin::Result<()> {
        let queue_opts = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        for (queue, shard) in self.queues(topic) {
            let args = self.work_queue_arguments(topic == Topic::Jobs);
            ch.queue_declare(queue.as_str().into(), queue_opts, args)
                .await?;
            let routing_key = shard.map(|s| s.to_string()).unwrap_or_default();
            ch.queue_bind(
                queue.as_str().into(),
                exchange.into(),
                routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        Ok(())
    }

    /// Deletes every queue and exchange (messages included).
    pub(crate) async fn delete(&self, ch: &Channel) -> lapin::Result<()> {
        let mut queues: Vec<String> = self
            .queues(Topic::Events)
            .into_iter()
            .map(|q| q.0)
            .collect();
        queues.extend(self.queues(Topic::Jobs).into_iter().map(|q| q.0));
        queues.extend(Topic::SIDE.iter().filter_map(|t| self.side_queue(*t)));
        queues.push(self.dead_queue());
        queues.push(self.marker_queue());
        for q in queues {
            ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        for e in [
            self.exchange(Topic::Events),
            self.exchange(Topic::Jobs),
            self.notify_queue(),
            self.previews_queue(),
            self.dead_queue(),
            self.workers_exchange(),
        ] {
            ch.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}
