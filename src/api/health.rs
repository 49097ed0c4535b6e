//! Liveness and readiness. Readiness is cached: `/readyz` is unauthenticated, and answering each
//! request with a broker round-trip and a cluster call would let anyone load both.

use std::future::Future;
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::ApiState;

/// A probe taking longer than this counts as "not ready", so waiting callers are not held long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "Alive", body = crate::api::openapi::StatusAnswer))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(crate::api::openapi::StatusAnswer {
        status: "ok".into(),
    })
}

/// Ready when the queue can take messages and the management cluster answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "Ready", body = ReadyState), (status = 503, description = "The queue or the cluster does not answer", body = ReadyState))
)]
pub async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    let probed = state
        .readiness
        .get_or_probe(|| async {
            let (queue, cluster) =
                tokio::join!(state.queue.is_ready(), state.cluster.is_reachable());
            ReadyState { queue, cluster }
        })
        .await;
    if probed.queue && probed.cluster {
        HttpResponse::Ok().json(probed)
    } else {
        HttpResponse::ServiceUnavailable().json(probed)
    }
}

/// What the last readiness probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReadyState {
    /// The queue takes messages.
    pub queue: bool,
    /// The management cluster answers.
    pub cluster: bool,
}

/// The last probe's result, reused while younger than `max_age`; at most one probe runs at a
/// time, and callers arriving meanwhile wait for it and share its result.
pub struct Readiness {
    max_age: Duration,
    last: tokio::sync::Mutex<Option<(Instant, ReadyState)>>,
}

impl Readiness {
    /// A cache whose results are reused for `max_age`.
    pub fn new(max_age: Duration) -> Readiness {
        Readiness {
            max_age,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached state, or the result of running `probe` when the cache is empty or stale.
    pub async fn get_or_probe<F, Fut>(&self, probe: F) -> ReadyState
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ReadyState>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, state)) = *last
            && at.elapsed() < self.max_age
        {
            return state;
        }
        let state = tokio::time::timeout(PROBE_TIMEOUT, probe())
            .await
            .unwrap_or(ReadyState {
                queue: false,
                cluster: false,
            });
        *last = Some((Instant::now(), state));
        state
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    async fn hundred_calls(readiness: Arc<Readiness>) -> usize {
        let probes = Arc::new(AtomicUsize::new(0));
        let calls = (0..100).map(|_| {
            let (readiness, probes) = (readiness.clone(), probes.clone());
            tokio::spawn(async move {
                readiness
                    .get_or_probe(|| async move {
                        probes.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        ReadyState {
                            queue: true,
                            cluster: true,
                        }
                    })
                    .await
            })
        });
        for state in futures::future::join_all(calls).await {
            assert!(state.expect("task").cluster);
        }
        probes.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_concurrent_checks_share_one_probe() {
        let cached = hundred_calls(Arc::new(Readiness::new(Duration::from_secs(3600)))).await;
        assert_eq!(cached, 1);
        // Without caching each call probes: the count above is not an artefact of the harness.
        let uncached = hundred_calls(Arc::new(Readiness::new(Duration::ZERO))).await;
        assert_eq!(uncached, 100);
    }
}
