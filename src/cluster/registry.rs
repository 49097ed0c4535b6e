//! Every cluster Capstan deploys to: the management cluster (always, as `in-cluster` /
//! `https://kubernetes.default.svc`), the clusters registered as Argo CD cluster Secrets in the
//! control namespace (read unchanged) and `Cluster` objects there. Each has its own client, live cache, dry-run verdicts and
//! connection state; one that cannot be reached fails only its own apps.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde::Serialize;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Cluster;
use super::cache::LiveCache;
use super::credentials::{ClusterSpec, SECRET_TYPE_LABEL, secret_data};
use super::observe::observe;
use crate::metrics::Metrics;
use crate::store::cluster::ClusterObject;
use crate::sync::Verdicts;

/// The destination server that means "the management cluster".
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
/// The name of the management cluster as a destination.
pub const IN_CLUSTER_NAME: &str = "in-cluster";

/// Prefix of a notification that a whole cluster went down or came back (`cluster:NAME SERVER`)
/// rather than one app's object changed.
pub const CLUSTER_CHANGE: &str = "cluster:";

/// Cluster Secrets are listed again at most this often.
const SECRETS_TTL: Duration = Duration::from_secs(5);
/// A cluster that could not be reached is tried again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// A cluster that has not answered a connect within this long is unreachable for now.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often connected clusters are probed.
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// A cluster Capstan is connected to.
pub struct Connected {
    pub name: String,
    pub server: String,
    pub cluster: Arc<Cluster>,
    pub cache: LiveCache,
    pub verdicts: Arc<Verdicts>,
    /// Ends this connection's watches and probe (when its credentials change or it is removed).
    cancel: CancellationToken,
}

/// What Capstan last knew of a cluster's connection.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionState {
    pub name: String,
    pub server: String,
    /// Where it is registered: `in-cluster`, `Secret/NAME` or `Cluster/NAME`.
    pub source: String,
    /// `Successful`, `Failed` or `Unknown`.
    pub status: String,
    pub message: String,
    pub version: Option<String>,
    /// When Capstan last reached it (RFC 3339).
    pub last_contact: Option<String>,
}

/// Why an app's destination cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "destination {0} is not a registered cluster (in-cluster, a Cluster object or an Argo CD cluster Secret in the control namespace)"
    )]
    NotRegistered(String),
    #[error("cluster {wanted} is registered by {source_name} but cannot be used: {reason}")]
    Unusable {
        wanted: String,
        source_name: String,
        reason: String,
    },
    #[error("cluster {name} ({server}) cannot be reached: {message}")]
    Unreachable {
        name: String,
        server: String,
        message: String,
    },
}

/// One registration: where it came from, what it says, and its connection.
struct Entry {
    spec: ClusterSpec,
    /// `Secret/NAME` or `Cluster/NAME`.
    source: String,
    /// Locked only by work on this cluster, so a slow connect never holds up another cluster.
    slot: Arc<tokio::sync::Mutex<Slot>>,
}

#[derive(Default)]
struct Slot {
    connected: Option<Arc<Connected>>,
    message: String,
    retry_at: Option<Instant>,
}

/// A registration that cannot be used, kept so apps naming it are told why.
struct Unusable {
    source: String,
    name: Option<String>,
    server: Option<String>,
    reason: String,
}

struct Inner {
    entries: HashMap<String, Entry>,
    unusable: Vec<Unusable>,
    listed_at: Option<Instant>,
}

/// The registry of target clusters; cheap to share.
#[derive(Clone)]
pub struct Registry {
    management: Arc<Connected>,
    client: kube::Client,
    namespace: String,
    inner: Arc<tokio::sync::Mutex<Inner>>,
    states: Arc<Mutex<BTreeMap<String, ConnectionState>>>,
    drift: UnboundedSender<String>,
    shutdown: CancellationToken,
    /// Where the requests of registered clusters' clients are counted.
    metrics: Arc<Metrics>,
}

impl Registry {
    /// A registry around the management cluster; live changes of any cluster's managed objects
    /// arrive on the returned receiver (app keys).
    pub fn new(
        management: Arc<Cluster>,
        client: kube::Client,
        namespace: &str,
        shutdown: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> (Registry, UnboundedReceiver<String>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = shutdown.child_token();
        let (cache, drifted) = LiveCache::with_cancel(client.clone(), cancel.child_token());
        forward(drifted, tx.clone());
        let management = Arc::new(Connected {
            name: IN_CLUSTER_NAME.into(),
            server: IN_CLUSTER_SERVER.into(),
            cluster: management,
            cache,
            verdicts: Arc::new(Verdicts::default()),
            cancel,
        });
        let registry = Registry {
            management,
            client,
            namespace: namespace.to_owned(),
            inner: Arc::new(tokio::sync::Mutex::new(Inner {
                entries: HashMap::new(),
                unusable: Vec::new(),
                listed_at: None,
            })),
            states: Arc::new(Mutex::new(BTreeMap::new())),
            drift: tx,
            shutdown,
            metrics,
        };
        registry.watch_registrations();
        (registry, rx)
    }

    /// Re-reads the registrations every few seconds; a cluster added, changed (rotated
    /// credentials) or removed gets its apps refreshed, so they use the new credentials at once.
    fn watch_registrations(&self) {
        let registry = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = registry.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(SECRETS_TTL) => {}
                }
                let changed = {
                    let mut inner = registry.inner.lock().await;
                    registry.relist(&mut inner).await
                };
                for (name, server) in changed {
                    let _ = registry
                        .drift
                        .send(format!("{CLUSTER_CHANGE}{name} {server}"));
                }
            }
        });
    }

    /// The management cluster.
    pub fn management(&self) -> &Arc<Connected> {
        &self.management
    }

    /// The cluster an app's destination names (by server or by name), connected.
    pub async fn resolve(
        &self,
        server: Option<&str>,
        name: Option<&str>,
    ) -> Result<Arc<Connected>, ResolveError> {
        let server = server
            .map(|s| s.trim().trim_end_matches('/'))
            .filter(|s| !s.is_empty());
        let name = name.map(str::trim).filter(|s| !s.is_empty());
        if server.is_none_or(|s| s == IN_CLUSTER_SERVER)
            && name.is_none_or(|n| n == IN_CLUSTER_NAME)
        {
            return Ok(self.management.clone());
        }
        let wanted = server.or(name).unwrap_or_default().to_owned();
        let (spec, slot) = {
            let mut inner = self.inner.lock().await;
            if inner.listed_at.is_none_or(|t| t.elapsed() > SECRETS_TTL) {
                self.relist(&mut inner).await;
            }
            let found = inner.entries.values().find(|e| {
                server.is_some_and(|s| e.spec.server == s) || name.is_some_and(|n| e.spec.name == n)
            });
            match found {
                Some(e) => (e.spec.clone(), e.slot.clone()),
                None => {
                    let unusable = inner.unusable.iter().find(|u| {
                        server.is_some_and(|s| u.server.as_deref() == Some(s))
                            || name.is_some_and(|n| u.name.as_deref() == Some(n))
                    });
                    return Err(match unusable {
                        Some(u) => ResolveError::Unusable {
                            wanted,
                            source_name: u.source.clone(),
                            reason: u.reason.clone(),
                        },
                        None => ResolveError::NotRegistered(wanted),
                    });
                }
            }
        };
        let mut slot = slot.lock().await;
        if let Some(c) = &slot.connected {
            return Ok(c.clone());
        }
        if slot.retry_at.is_some_and(|t| Instant::now() < t) {
            return Err(unreachable(&spec, &slot.message));
        }
        let result = match tokio::time::timeout(CONNECT_TIMEOUT, self.connect(&spec)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
        };
        match result {
            Ok(connected) => {
                self.record(&state(&spec, Ok(connected.cluster.version())));
                slot.connected = Some(connected.clone());
                slot.retry_at = None;
                Ok(connected)
            }
            Err(message) => {
                self.record(&state(&spec, Err(&message)));
                slot.retry_at = Some(Instant::now() + RETRY_AFTER);
                slot.message = message.clone();
                Err(unreachable(&spec, &message))
            }
        }
    }

    /// Every registered cluster with its connection state, connecting those not tried yet (the
    /// management cluster first); registrations that cannot be used are listed as `Failed`.
    pub async fn list(&self) -> Vec<ConnectionState> {
        let (names, unusable): (Vec<String>, Vec<ConnectionState>) = {
            let mut inner = self.inner.lock().await;
            if inner.listed_at.is_none_or(|t| t.elapsed() > SECRETS_TTL) {
                self.relist(&mut inner).await;
            }
            let unusable = inner
                .unusable
                .iter()
                .map(|u| ConnectionState {
                    name: u.name.clone().unwrap_or_default(),
                    server: u.server.clone().unwrap_or_default(),
                    source: u.source.clone(),
                    status: "Failed".into(),
                    message: u.reason.clone(),
                    ..Default::default()
                })
                .collect();
            let names = inner
                .entries
                .values()
                .map(|e| e.spec.name.clone())
                .collect();
            (names, unusable)
        };
        // Connects (or records why it cannot) all at once: one slow cluster costs one timeout.
        futures::future::join_all(names.iter().map(|n| self.resolve(None, Some(n)))).await;
        let mut out = vec![ConnectionState {
            name: IN_CLUSTER_NAME.into(),
            server: IN_CLUSTER_SERVER.into(),
            source: "in-cluster".into(),
            status: "Successful".into(),
            version: self.management.cluster.version().map(String::from),
            ..Default::default()
        }];
        let inner = self.inner.lock().await;
        let mut rest: Vec<ConnectionState> = inner
            .entries
            .values()
            .map(|e| ConnectionState {
                source: e.source.clone(),
                ..lock(&self.states)
                    .get(&e.spec.name)
                    .cloned()
                    .unwrap_or_else(|| ConnectionState {
                        name: e.spec.name.clone(),
                        server: e.spec.server.clone(),
                        status: "Unknown".into(),
                        ..Default::default()
                    })
            })
            .chain(unusable)
            .collect();
        rest.sort_by(|a, b| (&a.name, &a.source).cmp(&(&b.name, &b.source)));
        out.extend(rest);
        out
    }

    /// Whether the cluster is known to be unreachable now (its last probe failed).
    pub fn is_down(&self, name: &str) -> Option<String> {
        lock(&self.states)
            .get(name)
            .filter(|s| s.status != "Successful")
            .map(|s| s.message.clone())
    }

    fn record(&self, s: &ConnectionState) {
        lock(&self.states).insert(s.name.clone(), s.clone());
    }

    /// Reads the registrations again (Argo CD cluster Secrets and Cluster objects): new ones are
    /// added, removed ones dropped, and one whose data changed (rotated credentials) is connected
    /// again with them. Returns the clusters whose apps must be refreshed.
    async fn relist(&self, inner: &mut Inner) -> Vec<(String, String)> {
        let (specs, unusable) = match self.registrations().await {
            Ok(found) => found,
            Err(e) => {
                warn!(error = %e, "cannot read the cluster registrations; keeping the clusters known");
                return Vec::new();
            }
        };
        inner.listed_at = Some(Instant::now());
        let mut changes = Vec::new();
        let mut seen = Vec::new();
        for (source, spec) in specs {
            seen.push(source.clone());
            let changed = inner
                .entries
                .get(&source)
                .is_none_or(|e| e.spec.fingerprint != spec.fingerprint);
            if !changed {
                continue;
            }
            info!(cluster = %spec.name, server = %spec.server, %source, "cluster registered or changed");
            changes.push((spec.name.clone(), spec.server.clone()));
            let entry = Entry {
                spec,
                source: source.clone(),
                slot: Arc::default(),
            };
            if let Some(old) = inner.entries.insert(source, entry) {
                disconnect(old.slot);
            }
        }
        inner.entries.retain(|source, e| {
            let keep = seen.contains(source);
            if !keep {
                disconnect(e.slot.clone());
                changes.push((e.spec.name.clone(), e.spec.server.clone()));
            }
            keep
        });
        for u in &unusable {
            if !inner
                .unusable
                .iter()
                .any(|o| o.source == u.source && o.reason == u.reason)
            {
                warn!(source = %u.source, reason = %u.reason, "a cluster registration is not usable");
                changes.push((
                    u.name.clone().unwrap_or_default(),
                    u.server.clone().unwrap_or_default(),
                ));
            }
        }
        inner.unusable = unusable;
        let names: Vec<String> = inner
            .entries
            .values()
            .map(|e| e.spec.name.clone())
            .collect();
        lock(&self.states).retain(|n, _| names.contains(n));
        changes
    }

    /// Every registration in the control namespace, usable or not.
    async fn registrations(
        &self,
    ) -> Result<(Vec<(String, ClusterSpec)>, Vec<Unusable>), kube::Error> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = ListParams::default().labels(&format!("{SECRET_TYPE_LABEL}=cluster"));
        let mut specs = Vec::new();
        let mut unusable = Vec::new();
        for secret in secrets.list(&params).await?.items {
            let source = format!(
                "Secret/{}",
                secret.metadata.name.clone().unwrap_or_default()
            );
            let data = secret_data(secret);
            match ClusterSpec::from_secret_data(&data) {
                Ok(spec) => specs.push((source, spec)),
                Err(reason) => unusable.push(Unusable {
                    source,
                    name: data.get("name").cloned(),
                    server: data
                        .get("server")
                        .map(|s| s.trim_end_matches('/').to_owned()),
                    reason,
                }),
            }
        }
        let objects: Api<ClusterObject> = Api::namespaced(self.client.clone(), &self.namespace);
        let listed = match objects.list(&ListParams::default()).await {
            Ok(list) => list.items,
            // No Cluster CRD (not installed yet): Secrets are the only registrations.
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(e) => return Err(e),
        };
        for object in listed {
            let object_name = object.metadata.name.clone().unwrap_or_default();
            let source = format!("Cluster/{object_name}");
            let data = match &object.spec.secret_ref {
                None => Ok(BTreeMap::new()),
                Some(r) => match secrets.get_opt(&r.name).await? {
                    Some(s) => Ok(secret_data(s)),
                    None => Err(format!("its Secret {} does not exist", r.name)),
                },
            };
            match data.and_then(|d| ClusterSpec::from_object(&object_name, &object.spec, &d)) {
                Ok(spec) => specs.push((source, spec)),
                Err(reason) => unusable.push(Unusable {
                    source,
                    name: Some(object.spec.name.clone().unwrap_or(object_name)),
                    server: Some(object.spec.server.trim_end_matches('/').to_owned()),
                    reason,
                }),
            }
        }
        Ok((specs, unusable))
    }

    async fn connect(&self, spec: &ClusterSpec) -> Result<Arc<Connected>, String> {
        let client = observe(spec.client().await?, self.metrics.clone(), &spec.name);
        let cluster = Cluster::connect(client.clone())
            .await
            .map_err(|e| e.to_string())?;
        let cancel = self.shutdown.child_token();
        let (cache, drifted) = LiveCache::with_cancel(client, cancel.child_token());
        forward(drifted, self.drift.clone());
        let connected = Arc::new(Connected {
            name: spec.name.clone(),
            server: spec.server.clone(),
            cluster: Arc::new(cluster),
            cache,
            verdicts: Arc::new(Verdicts::default()),
            cancel,
        });
        self.probe(connected.clone());
        Ok(connected)
    }

    /// Probes a connected cluster until shutdown, recording when it goes down or comes back;
    /// each change is sent as the cluster's name on `changes`.
    fn probe(&self, connected: Arc<Connected>) {
        let registry = self.clone();
        tokio::spawn(async move {
            let mut was_up = true;
            loop {
                tokio::select! {
                    _ = connected.cancel.cancelled() => return,
                    _ = tokio::time::sleep(PROBE_EVERY) => {}
                }
                let spec_state = |result: Result<Option<&str>, &str>| ConnectionState {
                    name: connected.name.clone(),
                    server: connected.server.clone(),
                    ..state_of(result)
                };
                let up = match tokio::time::timeout(
                    Duration::from_secs(5),
                    connected.cluster.client().apiserver_version(),
                )
                .await
                {
                    Ok(Ok(_)) => {
                        registry.record(&spec_state(Ok(connected.cluster.version())));
                        true
                    }
                    Ok(Err(e)) => {
                        registry.record(&spec_state(Err(&e.to_string())));
                        false
                    }
                    Err(_) => {
                        registry.record(&spec_state(Err("no answer within 5 s")));
                        false
                    }
                };
                if up != was_up {
                    warn!(cluster = %connected.name, up, "cluster connection changed");
                    // Every app of the cluster is refreshed: the worker maps this to them.
                    let _ = registry.drift.send(format!(
                        "{CLUSTER_CHANGE}{} {}",
                        connected.name, connected.server
                    ));
                }
                was_up = up;
            }
        });
    }
}

/// Ends a registration's connection (watches, probe), once any connect in progress is done.
fn disconnect(slot: Arc<tokio::sync::Mutex<Slot>>) {
    tokio::spawn(async move {
        if let Some(c) = slot.lock().await.connected.take() {
            c.cancel.cancel();
        }
    });
}

fn unreachable(spec: &ClusterSpec, message: &str) -> ResolveError {
    ResolveError::Unreachable {
        name: spec.name.clone(),
        server: spec.server.clone(),
        message: message.to_owned(),
    }
}

fn state(spec: &ClusterSpec, result: Result<Option<&str>, &str>) -> ConnectionState {
    ConnectionState {
        name: spec.name.clone(),
        server: spec.server.clone(),
        ..state_of(result)
    }
}

fn state_of(result: Result<Option<&str>, &str>) -> ConnectionState {
    let now = crate::event::now_rfc3339();
    match result {
        Ok(version) => ConnectionState {
            status: "Successful".into(),
            version: version.map(String::from),
            last_contact: Some(now),
            ..Default::default()
        },
        Err(message) => ConnectionState {
            status: "Failed".into(),
            message: message.to_owned(),
            ..Default::default()
        },
    }
}

/// Passes one cache's notifications into the registry's single channel.
fn forward(mut from: UnboundedReceiver<String>, to: UnboundedSender<String>) {
    tokio::spawn(async move {
        while let Some(app) = from.recv().await {
            if to.send(app).is_err() {
                return;
            }
        }
    });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
