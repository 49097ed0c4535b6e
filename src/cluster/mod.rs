//! Clients for target clusters: discovery, get, server-side apply, delete.

pub mod cache;
pub mod credentials;
pub mod observe;
pub mod registry;
pub mod resource;

use std::sync::Arc;

use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy,
};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use kube::{Client, core::GroupVersionKind};
use serde_json::Value;
use tokio::sync::RwLock;

pub use resource::{ResourceKey, TRACKING_ANNOTATION, TRACKING_LABEL};

use crate::store::FIELD_MANAGER;

/// Errors talking to a target cluster; messages are shown to users in conditions.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the server does not know {kind} in {api_version}")]
    UnknownKind { api_version: String, kind: String },
    #[error("object is missing apiVersion, kind or metadata.name")]
    BadObject,
    #[error("{0}")]
    Api(String),
    #[error("cannot reach the cluster: {0}")]
    Unreachable(String),
    /// The server answered 429 or 5xx: overloaded or restarting, not the object's fault.
    #[error("the API server answered {code}: {message}")]
    Unavailable { code: u16, message: String },
}

impl ClusterError {
    /// A failure of the connection or the server that is often gone a moment later (a pooled
    /// connection the server closed, a restart, throttling), so worth a prompt retry.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClusterError::Unreachable(_) | ClusterError::Unavailable { .. }
        )
    }
}

impl From<kube::Error> for ClusterError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) if status.code == 429 || status.code >= 500 => {
                ClusterError::Unavailable {
                    code: status.code,
                    message: status.message.clone(),
                }
            }
            kube::Error::Api(status) => ClusterError::Api(status.message.clone()),
            other => ClusterError::Unreachable(other.to_string()),
        }
    }
}

/// One target cluster: a client and its (re-runnable) discovery.
pub struct Cluster {
    client: Client,
    /// Discovery and the API versions derived from it, replaced together.
    discovery: RwLock<Discovered>,
    /// The API server's version (`v1.33.0`), read once at connect.
    version: Option<String>,
}

/// One discovery run and what renderers read from it, computed once per run rather than per
/// reconcile.
#[derive(Clone)]
struct Discovered {
    discovery: Arc<Discovery>,
    api_versions: Arc<Vec<String>>,
}

impl Discovered {
    fn new(discovery: Discovery) -> Discovered {
        let api_versions = Arc::new(api_versions_of(&discovery));
        Discovered {
            discovery: Arc::new(discovery),
            api_versions,
        }
    }
}

/// Every `group/version` and `group/version/Kind` served (`v1`, `v1/Pod` for the core group),
/// as Helm's `--api-versions` takes them.
fn api_versions_of(discovery: &Discovery) -> Vec<String> {
    let mut out = Vec::new();
    for group in discovery.groups() {
        for version in group.versions() {
            let gv = if group.name().is_empty() {
                version.to_string()
            } else {
                format!("{}/{version}", group.name())
            };
            for (resource, _) in group.versioned_resources(version) {
                out.push(format!("{gv}/{}", resource.kind));
            }
            out.push(gv);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// How a resource is served: its API resource and whether it is namespaced.
#[derive(Clone)]
pub struct Served {
    pub resource: ApiResource,
    pub namespaced: bool,
}

impl Cluster {
    /// Connects and runs discovery once.
    pub async fn connect(client: Client) -> Result<Cluster, ClusterError> {
        let discovery = Discovery::new(client.clone()).run().await?;
        // Renderers want it (Helm's --kube-version); a server that hides it is still usable.
        let version = client.apiserver_version().await.ok().map(|v| v.git_version);
        Ok(Cluster {
            client,
            discovery: RwLock::new(Discovered::new(discovery)),
            version,
        })
    }

    /// The API server's version, e.g. `v1.33.0`, when it told us.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Every `group/version` and `group/version/Kind` the cluster serves, as of the last
    /// discovery.
    pub async fn api_versions(&self) -> Arc<Vec<String>> {
        self.discovery.read().await.api_versions.clone()
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Re-runs discovery, e.g. after a CRD was applied.
    pub async fn rediscover(&self) -> Result<(), ClusterError> {
        let fresh = Discovery::new(self.client.clone()).run().await?;
        *self.discovery.write().await = Discovered::new(fresh);
        Ok(())
    }

    /// How `group/version/kind` is served; rediscovers once when it is unknown.
    pub async fn served(
        &self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Result<Served, ClusterError> {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        if let Some(found) = self.lookup(&gvk).await {
            return Ok(found);
        }
        self.rediscover().await?;
        self.lookup(&gvk)
            .await
            .ok_or_else(|| ClusterError::UnknownKind {
                api_version: if group.is_empty() {
                    version.to_owned()
                } else {
                    format!("{group}/{version}")
                },
                kind: kind.to_owned(),
            })
    }

    async fn lookup(&self, gvk: &GroupVersionKind) -> Option<Served> {
        let discovery = self.discovery.read().await.discovery.clone();
        discovery
            .resolve_gvk(gvk)
            .map(|(resource, caps): (ApiResource, ApiCapabilities)| Served {
                resource,
                namespaced: caps.scope == Scope::Namespaced,
            })
    }

    fn api(&self, served: &Served, namespace: &str) -> Api<DynamicObject> {
        if served.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &served.resource)
        } else {
            Api::all_with(self.client.clone(), &served.resource)
        }
    }

    /// The live object, or None when it does not exist.
    pub async fn get(&self, key: &ResourceKey) -> Result<Option<Value>, ClusterError> {
        let served = self.served(&key.group, &key.version, &key.kind).await?;
        let found = self.api(&served, &key.namespace).get_opt(&key.name).await?;
        Ok(found.map(to_value))
    }

    /// Server-side apply with field manager `capstan` and force; `dry_run` changes nothing.
    pub async fn apply(&self, obj: &Value, dry_run: bool) -> Result<Value, ClusterError> {
        self.apply_with(obj, dry_run, true).await
    }

    /// Server-side apply; `validate: false` makes the server drop unknown fields instead of
    /// refusing them (`Validate=false`).
    pub async fn apply_with(
        &self,
        obj: &Value,
        dry_run: bool,
        validate: bool,
    ) -> Result<Value, ClusterError> {
        let (key, served, dynamic) = self.typed(obj).await?;
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        if !validate {
            params.field_validation = Some(kube::api::ValidationDirective::Ignore);
        }
        let applied = self
            .api(&served, &key.namespace)
            .patch(&key.name, &params, &Patch::Apply(&dynamic))
            .await?;
        Ok(to_value(applied))
    }

    /// Creates the object (POST), as `Replace=true` does for a missing object.
    pub async fn create(&self, obj: &Value) -> Result<Value, ClusterError> {
        let (key, served, dynamic) = self.typed(obj).await?;
        let params = kube::api::PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..Default::default()
        };
        let created = self
            .api(&served, &key.namespace)
            .create(&params, &dynamic)
            .await?;
        Ok(to_value(created))
    }

    /// Replaces the whole object (PUT), as `Replace=true` does.
    pub async fn replace(&self, obj: &Value) -> Result<Value, ClusterError> {
        let (key, served, mut dynamic) = self.typed(obj).await?;
        let api = self.api(&served, &key.namespace);
        if dynamic.metadata.resource_version.is_none() {
            // An unconditional replace still needs the current version on most servers.
            if let Some(live) = api.get_opt(&key.name).await? {
                dynamic.metadata.resource_version = live.metadata.resource_version;
            }
        }
        let params = kube::api::PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..Default::default()
        };
        let replaced = api.replace(&key.name, &params, &dynamic).await?;
        Ok(to_value(replaced))
    }

    async fn typed(
        &self,
        obj: &Value,
    ) -> Result<(ResourceKey, Served, DynamicObject), ClusterError> {
        let key = ResourceKey::of(obj).ok_or(ClusterError::BadObject)?;
        let served = self.served(&key.group, &key.version, &key.kind).await?;
        let dynamic: DynamicObject =
            serde_json::from_value(obj.clone()).map_err(|e| ClusterError::Api(e.to_string()))?;
        Ok((key, served, dynamic))
    }

    /// Deletes an object with foreground propagation; NotFound counts as deleted.
    pub async fn delete(&self, key: &ResourceKey) -> Result<(), ClusterError> {
        self.delete_with(key, PropagationPolicy::Foreground).await
    }

    /// Deletes an object with the given propagation; NotFound counts as deleted.
    pub async fn delete_with(
        &self,
        key: &ResourceKey,
        propagation: PropagationPolicy,
    ) -> Result<(), ClusterError> {
        let served = self.served(&key.group, &key.version, &key.kind).await?;
        let params = DeleteParams {
            propagation_policy: Some(propagation),
            ..Default::default()
        };
        match self
            .api(&served, &key.namespace)
            .delete(&key.name, &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a namespaced kind; unknown kinds count as namespaced (the common case).
    pub async fn is_namespaced(
        &self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Result<bool, ClusterError> {
        Ok(self.served(group, version, kind).await?.namespaced)
    }

    /// Cheap reachability probe for /readyz.
    pub async fn is_reachable(&self) -> bool {
        self.client.apiserver_version().await.is_ok()
    }

    /// Every live object of `group/version/kind` in `namespace` (all namespaces when empty).
    /// A kind the server does not serve has none.
    pub async fn list(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        namespace: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        let served = match self.served(group, version, kind).await {
            Ok(s) => s,
            Err(ClusterError::UnknownKind { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let api: Api<DynamicObject> = if served.namespaced && !namespace.is_empty() {
            Api::namespaced_with(self.client.clone(), namespace, &served.resource)
        } else {
            Api::all_with(self.client.clone(), &served.resource)
        };
        let list = api.list(&ListParams::default()).await?;
        Ok(typed_items(list.items, &served))
    }
}

/// List items as objects with apiVersion and kind, which a real API server leaves out of them.
fn typed_items(items: Vec<DynamicObject>, served: &Served) -> Vec<Value> {
    let types = kube::core::TypeMeta {
        api_version: served.resource.api_version.clone(),
        kind: served.resource.kind.clone(),
    };
    items
        .into_iter()
        .map(|mut o| {
            o.types.get_or_insert_with(|| types.clone());
            to_value(o)
        })
        .collect()
}

fn to_value(obj: DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

/// The resource an object is, with its apiVersion re-read from the object.
pub fn key_of(obj: &Value) -> Result<ResourceKey, ClusterError> {
    ResourceKey::of(obj).ok_or(ClusterError::BadObject)
}
