//! The seam between the sync engine and a cluster: the few calls a sync makes. The real cluster
//! implements it over kube; the engine's tests implement it in memory.

use std::future::Future;

use serde_json::Value;

use super::options::Propagation;
use crate::cluster::{Cluster, ClusterError, ResourceKey};

/// How to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyMode {
    pub dry_run: bool,
    /// False: unknown fields are ignored instead of refused (`Validate=false`).
    pub validate: bool,
}

/// The calls a sync makes to its destination cluster.
pub trait Target: Sync {
    /// The live object, or None.
    fn get(
        &self,
        key: &ResourceKey,
    ) -> impl Future<Output = Result<Option<Value>, ClusterError>> + Send;
    /// Server-side apply (force conflicts); returns what the server stored (or would store).
    fn apply(
        &self,
        obj: &Value,
        mode: ApplyMode,
    ) -> impl Future<Output = Result<Value, ClusterError>> + Send;
    /// Create (POST).
    fn create(&self, obj: &Value) -> impl Future<Output = Result<Value, ClusterError>> + Send;
    /// Replace (PUT) the whole object.
    fn replace(&self, obj: &Value) -> impl Future<Output = Result<Value, ClusterError>> + Send;
    /// Delete; NotFound counts as deleted.
    fn delete(
        &self,
        key: &ResourceKey,
        propagation: Propagation,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
}

impl Target for Cluster {
    async fn get(&self, key: &ResourceKey) -> Result<Option<Value>, ClusterError> {
        match Cluster::get(self, key).await {
            Err(ClusterError::UnknownKind { .. }) => Ok(None),
            other => other,
        }
    }

    async fn apply(&self, obj: &Value, mode: ApplyMode) -> Result<Value, ClusterError> {
        let applied = self.apply_with(obj, mode.dry_run, mode.validate).await?;
        if !mode.dry_run
            && obj.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
        {
            // Instances later in this sync need the new kind served.
            let _ = self.rediscover().await;
        }
        Ok(applied)
    }

    async fn create(&self, obj: &Value) -> Result<Value, ClusterError> {
        Cluster::create(self, obj).await
    }

    async fn replace(&self, obj: &Value) -> Result<Value, ClusterError> {
        Cluster::replace(self, obj).await
    }

    async fn delete(
        &self,
        key: &ResourceKey,
        propagation: Propagation,
    ) -> Result<(), ClusterError> {
        let policy = match propagation {
            Propagation::Foreground => kube::api::PropagationPolicy::Foreground,
            Propagation::Background => kube::api::PropagationPolicy::Background,
            Propagation::Orphan => kube::api::PropagationPolicy::Orphan,
        };
        self.delete_with(key, policy).await
    }
}
