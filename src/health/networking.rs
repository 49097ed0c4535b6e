//! Health of Service and Ingress: a load balancer must have an address.

use serde_json::Value;

use super::Health;
use super::json::{array_at, str_at};

fn has_load_balancer_ingress(obj: &Value) -> bool {
    !array_at(obj, "/status/loadBalancer/ingress").is_empty()
}

/// Service: type LoadBalancer waits for an ingress address; other types are Healthy.
pub(super) fn service(obj: &Value) -> Health {
    if str_at(obj, "/spec/type") == Some("LoadBalancer") && !has_load_balancer_ingress(obj) {
        return Health::progressing("");
    }
    Health::healthy()
}

/// Ingress: Healthy once the controller published an address.
pub(super) fn ingress(obj: &Value) -> Health {
    if has_load_balancer_ingress(obj) {
        Health::healthy()
    } else {
        Health::progressing("")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HealthStatus, assess};
    use serde_json::{Value, json};

    fn status_of(obj: Value) -> Option<HealthStatus> {
        assess(&obj).map(|h| h.status)
    }

    #[test]
    fn service_and_ingress_table() {
        let lb = json!({ "loadBalancer": { "ingress": [{ "ip": "192.0.2.7" }] } });
        let svc = |type_: &str, status: Value| {
            json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "s" },
                    "spec": { "type": type_ }, "status": status })
        };
        assert_eq!(
            status_of(svc("ClusterIP", json!({}))),
            Some(HealthStatus::Healthy)
        );
        assert_eq!(
            status_of(svc("LoadBalancer", json!({ "loadBalancer": {} }))),
            Some(HealthStatus::Progressing)
        );
        assert_eq!(
            status_of(svc("LoadBalancer", lb.clone())),
            Some(HealthStatus::Healthy)
        );
        assert_eq!(
            status_of(svc(
                "LoadBalancer",
                json!({ "loadBalancer": { "ingress": [{ "hostname": "lb.example.com" }] } })
            )),
            Some(HealthStatus::Healthy)
        );
        assert_eq!(
            status_of(svc("NodePort", json!({}))),
            Some(HealthStatus::Healthy)
        );
        for api_version in ["networking.k8s.io/v1", "extensions/v1beta1"] {
            let ing = |status: Value| json!({ "apiVersion": api_version, "kind": "Ingress", "metadata": { "name": "i" }, "status": status });
            assert_eq!(status_of(ing(json!({}))), Some(HealthStatus::Progressing));
            assert_eq!(status_of(ing(lb.clone())), Some(HealthStatus::Healthy));
        }
    }
}
