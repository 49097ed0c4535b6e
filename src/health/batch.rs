//! Health of batch/v1 Job and CronJob.

use serde_json::Value;

use super::json::{array_at, bool_at, conditions_in, str_at};
use super::{Health, HealthStatus};

/// Job: Failed ⇒ Degraded, Suspended ⇒ Suspended, Complete ⇒ Healthy, else Progressing.
pub(super) fn job(obj: &Value) -> Health {
    let conditions: Vec<_> = conditions_in(array_at(obj, "/status/conditions"))
        .filter(|c| c.is_true())
        .collect();
    let find = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
    if let Some(failed) = find("Failed") {
        return Health::degraded(failed.message);
    }
    if let Some(suspended) = find("Suspended") {
        return Health::new(HealthStatus::Suspended, suspended.message);
    }
    if let Some(complete) = find("Complete") {
        return Health::new(HealthStatus::Healthy, complete.message);
    }
    Health::progressing("")
}

/// CronJob, as Argo CD's built-in Lua check: a failed last run is Degraded, suspension is Healthy.
pub(super) fn cron_job(obj: &Value) -> Health {
    if bool_at(obj, "/spec/suspend") {
        return Health::new(HealthStatus::Healthy, "CronJob is Suspended");
    }
    let Some(status) = obj.get("status").filter(|s| s.is_object()) else {
        return Health::progressing("Waiting for CronJob");
    };
    let Some(last_schedule) = str_at(status, "/lastScheduleTime") else {
        return Health::new(HealthStatus::Healthy, "CronJob has not been scheduled yet");
    };
    let Some(last_success) = str_at(status, "/lastSuccessfulTime") else {
        return Health::new(
            HealthStatus::Healthy,
            "The Cronjob never completed succesfully. It may not be healthy",
        );
    };
    if !array_at(status, "/active").is_empty() {
        return Health::new(
            HealthStatus::Healthy,
            "The job is running. Its last execution may not have been successful",
        );
    }
    // RFC 3339 times in UTC with the same precision order correctly as text.
    if last_success < last_schedule {
        return Health::degraded("CronJob has not completed its last execution successfully");
    }
    Health::new(
        HealthStatus::Healthy,
        "CronJob has completed its last execution successfully",
    )
}

#[cfg(test)]
mod tests {
    use super::super::assess;
    use super::*;
    use serde_json::json;

    #[test]
    fn job_table() {
        let job = |conditions: Value| {
            json!({ "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": "j" },
                    "status": { "conditions": conditions } })
        };
        let cases = [
            (json!([]), Health::progressing("")),
            (
                json!([{ "type": "Complete", "status": "True", "message": "done" }]),
                Health::new(HealthStatus::Healthy, "done"),
            ),
            (
                json!([{ "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit" }]),
                Health::degraded("Job has reached the specified backoff limit"),
            ),
            (
                json!([{ "type": "Suspended", "status": "True", "message": "Job suspended" }]),
                Health::new(HealthStatus::Suspended, "Job suspended"),
            ),
            (
                json!([{ "type": "Suspended", "status": "False" }]),
                Health::progressing(""),
            ),
        ];
        for (conditions, want) in cases {
            assert_eq!(assess(&job(conditions.clone())), Some(want), "{conditions}");
        }
    }

    #[test]
    fn cronjob_table() {
        let cj = |spec: Value, status: Option<Value>| {
            let mut obj = json!({ "apiVersion": "batch/v1", "kind": "CronJob", "metadata": { "name": "c" }, "spec": spec });
            if let Some(s) = status {
                obj["status"] = s;
            }
            obj
        };
        let cases = [
            (json!({}), None, Health::progressing("Waiting for CronJob")),
            (
                json!({ "suspend": true }),
                None,
                Health::new(HealthStatus::Healthy, "CronJob is Suspended"),
            ),
            (
                json!({}),
                Some(json!({})),
                Health::new(HealthStatus::Healthy, "CronJob has not been scheduled yet"),
            ),
            (
                json!({}),
                Some(
                    json!({ "lastScheduleTime": "2026-01-01T10:00:00Z", "lastSuccessfulTime": "2026-01-01T09:00:00Z" }),
                ),
                Health::degraded("CronJob has not completed its last execution successfully"),
            ),
            (
                json!({}),
                Some(
                    json!({ "lastScheduleTime": "2026-01-01T10:00:00Z", "lastSuccessfulTime": "2026-01-01T09:00:00Z",
                                     "active": [{ "name": "c-1" }] }),
                ),
                Health::new(
                    HealthStatus::Healthy,
                    "The job is running. Its last execution may not have been successful",
                ),
            ),
            (
                json!({}),
                Some(
                    json!({ "lastScheduleTime": "2026-01-01T10:00:00Z", "lastSuccessfulTime": "2026-01-01T10:00:05Z" }),
                ),
                Health::new(
                    HealthStatus::Healthy,
                    "CronJob has completed its last execution successfully",
                ),
            ),
        ];
        for (spec, status, want) in cases {
            assert_eq!(assess(&cj(spec, status)), Some(want));
        }
    }
}
