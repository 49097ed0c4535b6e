//! Runs the simulated controllers: asks `controllers::next_status` what each changed object's
//! status becomes, and writes it after the planned delay through the status path.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::controllers::{self, SimSettings, StatusPlan};
use super::http::Shared;
use super::store::{EventType, Stored, TypeKey};

/// The shortest time a terminating namespace stays visible.
const NAMESPACE_FINALIZE_MIN: std::time::Duration = std::time::Duration::from_millis(500);

type ObjKey = (TypeKey, String, String);

struct Loop {
    shared: Arc<Shared>,
    settings: SimSettings,
    /// The latest plan per object; older plans are dropped when they wake up.
    pending: Arc<Mutex<HashMap<ObjKey, u64>>>,
    seq: u64,
    broken: bool,
}

impl Loop {
    fn plan(&mut self, key: &TypeKey, obj: &Stored) {
        if key.group.is_empty()
            && key.plural == "namespaces"
            && obj.value["metadata"]["deletionTimestamp"].is_string()
        {
            self.finalize_later(obj);
        }
        if self.broken {
            return;
        }
        let meta = &obj.value["metadata"];
        let ns = meta["namespace"].as_str().unwrap_or("").to_string();
        let name = meta["name"].as_str().unwrap_or("").to_string();
        let uid = meta["uid"].as_str().unwrap_or("").to_string();
        let generation = meta["generation"].as_i64().unwrap_or(1);
        let kind = obj.value["kind"].as_str().unwrap_or("");
        let plan = std::panic::catch_unwind(AssertUnwindSafe(|| {
            controllers::next_status(&key.group, kind, &obj.value, &self.settings)
        }));
        let Some(StatusPlan { after, status }) = (match plan {
            Ok(p) => p,
            Err(_) => {
                tracing::error!("simulated controllers panicked; workloads will not become ready");
                self.broken = true;
                return;
            }
        }) else {
            return;
        };
        self.seq += 1;
        let seq = self.seq;
        let okey = (key.clone(), ns.clone(), name.clone());
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(okey.clone(), seq);
        let shared = self.shared.clone();
        let pending = self.pending.clone();
        let key = key.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shared.cancel.cancelled() => return,
                _ = tokio::time::sleep(after) => {}
            }
            let current =
                pending.lock().unwrap_or_else(|e| e.into_inner()).get(&okey) == Some(&seq);
            if current {
                shared
                    .lock()
                    .set_status(&key, &ns, &name, &uid, generation, status);
            }
        });
    }

    /// The namespace controller: contents of a terminating namespace go after a short while.
    fn finalize_later(&self, ns: &Stored) {
        let name = ns.value["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let shared = self.shared.clone();
        let delay = self.settings.ready_delay.max(NAMESPACE_FINALIZE_MIN);
        tokio::spawn(async move {
            tokio::select! {
                _ = shared.cancel.cancelled() => {}
                _ = tokio::time::sleep(delay) => shared.lock().finalize_namespace(&name),
            }
        });
    }

    /// The owning controllers (`workloads`) catch up with a change, under one lock.
    fn reconcile(&mut self, key: &TypeKey, obj: &Stored) {
        if self.broken {
            return;
        }
        let settings = &self.settings;
        let shared = &self.shared;
        let done = std::panic::catch_unwind(AssertUnwindSafe(|| {
            shared.lock().reconcile_workloads(key, &obj.value, settings);
        }));
        if done.is_err() {
            tracing::error!("simulated workload controllers panicked; workloads will not roll out");
            self.broken = true;
        }
    }

    fn scan(&mut self) {
        let all = self.shared.lock().snapshot();
        for (key, obj) in all {
            self.plan(&key, &obj);
            self.reconcile(&key, &obj);
        }
    }
}

/// Starts the controller loop; it stops at shutdown.
pub fn spawn(shared: Arc<Shared>, settings: SimSettings) -> tokio::task::JoinHandle<()> {
    let mut rx = shared.lock().subscribe();
    tokio::spawn(async move {
        let mut lp = Loop {
            shared: shared.clone(),
            settings,
            pending: Arc::default(),
            seq: 0,
            broken: false,
        };
        lp.scan();
        loop {
            let ev = tokio::select! {
                _ = shared.cancel.cancelled() => return,
                ev = rx.recv() => ev,
            };
            match ev {
                Ok(ev) if ev.ty == EventType::Deleted => {
                    let meta = &ev.obj.value["metadata"];
                    let okey = (
                        ev.key.clone(),
                        meta["namespace"].as_str().unwrap_or("").to_string(),
                        meta["name"].as_str().unwrap_or("").to_string(),
                    );
                    lp.pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&okey);
                    lp.reconcile(&ev.key, &ev.obj);
                }
                Ok(ev) => {
                    lp.plan(&ev.key, &ev.obj);
                    lp.reconcile(&ev.key, &ev.obj);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => lp.scan(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}
