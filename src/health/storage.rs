//! Health of a PersistentVolumeClaim from its phase.

use serde_json::Value;

use super::json::str_at;
use super::{Health, HealthStatus};

/// PVC: Bound ⇒ Healthy, Pending ⇒ Progressing, Lost ⇒ Degraded, anything else Unknown.
pub(super) fn pvc(obj: &Value) -> Health {
    match str_at(obj, "/status/phase") {
        Some("Bound") => Health::healthy(),
        Some("Pending") => Health::progressing(""),
        Some("Lost") => Health::degraded(""),
        _ => Health::new(HealthStatus::Unknown, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::super::assess;
    use super::*;
    use serde_json::json;

    #[test]
    fn pvc_table() {
        for (phase, want) in [
            (json!("Bound"), HealthStatus::Healthy),
            (json!("Pending"), HealthStatus::Progressing),
            (json!("Lost"), HealthStatus::Degraded),
            (json!(null), HealthStatus::Unknown),
        ] {
            let obj = json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": { "name": "d" },
                              "status": { "phase": phase } });
            assert_eq!(assess(&obj).map(|h| h.status), Some(want), "{phase}");
        }
    }
}
