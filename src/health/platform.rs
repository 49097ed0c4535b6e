//! Health of cluster-level API objects: Namespace, APIService, CustomResourceDefinition.

use serde_json::Value;

use super::json::{array_at, conditions_in, str_at};
use super::{Health, HealthStatus};

/// Namespace: Active (or no phase reported) ⇒ Healthy, Terminating ⇒ Progressing.
pub(super) fn namespace(obj: &Value) -> Health {
    match str_at(obj, "/status/phase") {
        None | Some("Active") => Health::healthy(),
        Some("Terminating") => Health::progressing("Namespace is terminating"),
        Some(other) => Health::new(HealthStatus::Unknown, format!("Namespace phase is {other}")),
    }
}

/// APIService: the Available condition decides; without it the service is still being processed.
pub(super) fn api_service(obj: &Value) -> Health {
    let available =
        conditions_in(array_at(obj, "/status/conditions")).find(|c| c.type_ == "Available");
    match available {
        Some(c) => {
            let message = format!("{}: {}", c.reason, c.message);
            if c.is_true() {
                Health::new(HealthStatus::Healthy, message)
            } else {
                Health::progressing(message)
            }
        }
        None => Health::progressing("Waiting to be processed"),
    }
}

/// CustomResourceDefinition: established, names accepted, structural schema.
pub(super) fn crd(obj: &Value) -> Health {
    let conditions = array_at(obj, "/status/conditions");
    if conditions.is_empty() {
        return Health::progressing("Status conditions not found");
    }
    let mut established = false;
    let mut terminating = false;
    let mut names_rejected = false;
    let mut violations = false;
    let mut message = "";
    for c in conditions_in(conditions) {
        match c.type_ {
            "Terminating" if c.is_true() => {
                terminating = true;
                message = c.message;
            }
            "NamesAccepted" if c.status == "False" => {
                names_rejected = true;
                message = c.message;
            }
            "Established" if c.is_true() => established = true,
            "Established" => message = c.message,
            "NonStructuralSchema" if c.is_true() => {
                violations = true;
                message = c.message;
            }
            _ => {}
        }
    }
    if terminating {
        Health::progressing(format!("CRD is being terminated: {message}"))
    } else if names_rejected {
        Health::degraded(format!("CRD names have not been accepted: {message}"))
    } else if !established {
        Health::degraded(format!("CRD is not established: {message}"))
    } else if violations {
        Health::degraded(format!("Schema violations found: {message}"))
    } else {
        Health::new(HealthStatus::Healthy, "CRD is healthy")
    }
}

#[cfg(test)]
mod tests {
    use super::super::assess;
    use super::*;
    use serde_json::json;

    #[test]
    fn namespace_table() {
        let ns = |status: Value| json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "n" }, "status": status });
        assert_eq!(
            assess(&ns(json!({ "phase": "Active" }))),
            Some(Health::healthy())
        );
        assert_eq!(assess(&ns(json!({}))), Some(Health::healthy()));
        assert_eq!(
            assess(&ns(json!({ "phase": "Terminating" }))).map(|h| h.status),
            Some(HealthStatus::Progressing)
        );
    }

    #[test]
    fn api_service_table() {
        let svc = |conditions: Value| {
            json!({ "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": { "name": "v1.metrics" },
                    "status": { "conditions": conditions } })
        };
        assert_eq!(
            assess(&svc(
                json!([{ "type": "Available", "status": "True", "reason": "Passed", "message": "all checks passed" }])
            )),
            Some(Health::new(
                HealthStatus::Healthy,
                "Passed: all checks passed"
            ))
        );
        assert_eq!(
            assess(&svc(
                json!([{ "type": "Available", "status": "False", "reason": "MissingEndpoints", "message": "no endpoints" }])
            )),
            Some(Health::progressing("MissingEndpoints: no endpoints"))
        );
        assert_eq!(
            assess(&svc(json!([]))),
            Some(Health::progressing("Waiting to be processed"))
        );
    }

    #[test]
    fn crd_table() {
        let crd = |conditions: Value| {
            json!({ "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                    "metadata": { "name": "widgets.example.com" }, "status": { "conditions": conditions } })
        };
        let cases = [
            (
                json!([{ "type": "NamesAccepted", "status": "True" }, { "type": "Established", "status": "True" }]),
                Health::new(HealthStatus::Healthy, "CRD is healthy"),
            ),
            (
                json!([]),
                Health::progressing("Status conditions not found"),
            ),
            (
                json!([{ "type": "Established", "status": "False", "message": "not yet" }]),
                Health::degraded("CRD is not established: not yet"),
            ),
            (
                json!([{ "type": "NamesAccepted", "status": "False", "message": "conflict" }, { "type": "Established", "status": "True" }]),
                Health::degraded("CRD names have not been accepted: conflict"),
            ),
            (
                json!([{ "type": "Established", "status": "True" }, { "type": "NonStructuralSchema", "status": "True", "message": "bad" }]),
                Health::degraded("Schema violations found: bad"),
            ),
            (
                json!([{ "type": "Established", "status": "True" }, { "type": "Terminating", "status": "True", "message": "bye" }]),
                Health::progressing("CRD is being terminated: bye"),
            ),
        ];
        for (conditions, want) in cases {
            assert_eq!(assess(&crd(conditions.clone())), Some(want), "{conditions}");
        }
    }
}
