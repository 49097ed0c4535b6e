//! Health of a HorizontalPodAutoscaler from its conditions (v2 status, or the v1 annotation).

use serde_json::Value;

use super::json::{Condition, array_at, conditions_in, str_at};
use super::{Health, HealthStatus};

/// Where autoscaling/v1 objects carry the v2 conditions.
const V1_CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// (condition type, reason) pairs that mean the autoscaler cannot do its job.
const DEGRADED: [(&str, &str); 8] = [
    ("AbleToScale", "FailedGetScale"),
    ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"),
    ("ScalingActive", "FailedGetObjectMetric"),
    ("ScalingActive", "FailedGetPodsMetric"),
    ("ScalingActive", "FailedGetExternalMetric"),
    ("ScalingActive", "FailedComputeMetricsReplicas"),
    ("ScalingActive", "InvalidSelector"),
];
const WAITING: &str = "Waiting to Autoscale";

/// HPA: the first condition that is degraded or healthy decides; otherwise it is waiting to autoscale.
pub(super) fn hpa(obj: &Value) -> Health {
    if str_at(obj, "/apiVersion") == Some("autoscaling/v1") {
        let annotation = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(V1_CONDITIONS_ANNOTATION))
            .and_then(Value::as_str);
        let Some(text) = annotation else {
            return Health::progressing(WAITING);
        };
        return match serde_json::from_str::<Vec<Value>>(text) {
            Ok(list) => decide(conditions_in(&list)),
            Err(e) => Health::new(
                HealthStatus::Unknown,
                format!("failed to convert conditions annotation to typed: {e}"),
            ),
        };
    }
    decide(conditions_in(array_at(obj, "/status/conditions")))
}

fn decide<'a>(conditions: impl Iterator<Item = Condition<'a>>) -> Health {
    for c in conditions {
        if DEGRADED.contains(&(c.type_, c.reason)) {
            return Health::degraded(c.message);
        }
        if c.is_true() && (c.type_ == "AbleToScale" || c.type_ == "ScalingLimited") {
            return Health::new(HealthStatus::Healthy, c.message);
        }
    }
    Health::progressing(WAITING)
}

#[cfg(test)]
mod tests {
    use super::super::assess;
    use super::*;
    use serde_json::json;

    #[test]
    fn hpa_v2_table() {
        let hpa = |conditions: Value| {
            json!({ "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": { "name": "h" },
                    "status": { "conditions": conditions } })
        };
        let cases = [
            (
                json!([{ "type": "AbleToScale", "status": "True", "reason": "SucceededGetScale", "message": "ok" }]),
                Health::new(HealthStatus::Healthy, "ok"),
            ),
            (
                json!([{ "type": "ScalingActive", "status": "False", "reason": "FailedGetExternalMetric", "message": "no metric" },
                    { "type": "AbleToScale", "status": "True" }]),
                Health::degraded("no metric"),
            ),
            (
                json!([{ "type": "AbleToScale", "status": "False", "reason": "BackoffBoth" }]),
                Health::progressing(WAITING),
            ),
            (
                json!([{ "type": "ScalingActive", "status": "False", "reason": "ScalingDisabled" },
                    { "type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas", "message": "at max" }]),
                Health::new(HealthStatus::Healthy, "at max"),
            ),
            (json!([]), Health::progressing(WAITING)),
        ];
        for (conditions, want) in cases {
            assert_eq!(assess(&hpa(conditions.clone())), Some(want), "{conditions}");
        }
    }

    #[test]
    fn hpa_v1_reads_the_annotation() {
        let hpa = |annotations: Value| {
            json!({ "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                    "metadata": { "name": "h", "annotations": annotations } })
        };
        let degraded = r#"[{"type":"AbleToScale","status":"False","reason":"FailedGetScale","message":"no target"}]"#;
        assert_eq!(
            assess(&hpa(json!({ V1_CONDITIONS_ANNOTATION: degraded }))),
            Some(Health::degraded("no target"))
        );
        let healthy = r#"[{"type":"AbleToScale","status":"True","reason":"SucceededRescale","message":"scaled"}]"#;
        assert_eq!(
            assess(&hpa(json!({ V1_CONDITIONS_ANNOTATION: healthy }))),
            Some(Health::new(HealthStatus::Healthy, "scaled"))
        );
        assert_eq!(assess(&hpa(json!({}))), Some(Health::progressing(WAITING)));
        assert_eq!(
            assess(&hpa(json!({ V1_CONDITIONS_ANNOTATION: "[]" }))),
            Some(Health::progressing(WAITING))
        );
    }
}
