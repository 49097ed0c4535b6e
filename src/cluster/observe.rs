//! Every Kubernetes API request of a cluster's client, counted by verb and answer
//! (`capstan_cluster_requests_total`), whoever makes it: reconciles, watches, probes.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Method, Request, Response};
use kube::client::Body;

use crate::metrics::Metrics;

/// `client`, with every request it sends counted under `cluster`.
pub fn observe(client: kube::Client, metrics: Arc<Metrics>, cluster: &str) -> kube::Client {
    let namespace = client.default_namespace().to_owned();
    kube::Client::new(
        Counted {
            inner: client,
            metrics,
            cluster: cluster.into(),
        },
        namespace,
    )
}

/// Sends through the wrapped client and counts the answer.
#[derive(Clone)]
struct Counted {
    inner: kube::Client,
    metrics: Arc<Metrics>,
    cluster: Arc<str>,
}

impl tower::Service<Request<Body>> for Counted {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The wrapped client buffers and waits for readiness itself in `send`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let verb = verb(request.method(), request.uri().query().unwrap_or(""));
        let this = self.clone();
        Box::pin(async move {
            let answer = this.inner.send(request).await;
            let code = match &answer {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "error".to_owned(),
            };
            this.metrics.cluster_request(&this.cluster, verb, &code);
            answer
        })
    }
}

/// The Kubernetes verb of a request; a GET is a `watch` when it asks to watch, otherwise `get`
/// (a list and a single get look alike without knowing the resource's path layout).
fn verb(method: &Method, query: &str) -> &'static str {
    match *method {
        Method::GET
            if query
                .split('&')
                .any(|p| p == "watch=true" || p == "watch=1") =>
        {
            "watch"
        }
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_follow_the_method_and_watch_flag() {
        assert_eq!(verb(&Method::GET, "labelSelector=a&watch=true"), "watch");
        assert_eq!(verb(&Method::GET, "labelSelector=a"), "get");
        assert_eq!(verb(&Method::PATCH, "fieldManager=capstan"), "patch");
        assert_eq!(verb(&Method::DELETE, ""), "delete");
        assert_eq!(verb(&Method::POST, ""), "create");
    }
}
