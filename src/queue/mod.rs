//! INTERFACE STUB (integrator's copy of the queue API; replaced by the queue helper's module at merge).
use futures::future::BoxFuture;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    Embedded,
    Rabbitmq,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub kind: QueueKind,
    pub url: String,
    pub prefix: String,
    pub shards: u16,
    pub prefetch: u16,
    pub max_attempts: u32,
    pub publish_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Events,
    Jobs,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

pub type SharedQueue = Arc<dyn Queue>;

pub trait Queue: Send + Sync + 'static {
    fn publish<'a>(
        &'a self,
        topic: Topic,
        key: &'a str,
        id: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
    fn subscribe(&self, topic: Topic) -> BoxFuture<'_, Result<Subscription, QueueError>>;
    fn is_ready(&self) -> BoxFuture<'_, bool>;
}

pub struct Subscription {}
impl Subscription {
    pub async fn next(&mut self) -> Option<Delivery> {
        unimplemented!()
    }
}

pub struct Delivery {
    pub id: String,
    pub body: Vec<u8>,
    pub attempt: u32,
    pub shard: Option<u16>,
}
impl Delivery {
    pub async fn ack(self) -> Result<(), QueueError> {
        unimplemented!()
    }
    pub async fn retry(self) -> Result<(), QueueError> {
        unimplemented!()
    }
    pub async fn reject(self) -> Result<(), QueueError> {
        unimplemented!()
    }
}

pub fn shard_for(_key: &str, _shards: u16) -> u16 {
    unimplemented!()
}
pub async fn connect(_settings: &QueueSettings) -> Result<SharedQueue, QueueError> {
    unimplemented!()
}
