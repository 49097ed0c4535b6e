//! What worker processes did, read from their JSON logs (`log.format = json`): each run of a job
//! is the `job` span (job id, app, cause, event id, delivery attempt) from its "job started"
//! line to its "job done" or "job failed" line.

use std::path::Path;

use serde_json::Value;

/// One run of one delivery of a job by one worker process.
#[derive(Debug, Clone)]
pub struct JobRun {
    pub job_id: String,
    /// Which delivery of the message this is (1 = first; a redelivery after a crash is 2).
    pub attempt: u64,
    /// `Webhook`, `Manual`, `Poll`, `Drift`, `Mq`.
    pub cause: String,
    /// The webhook's or message's event id, empty for other causes.
    pub event_id: String,
    pub started: jiff::Timestamp,
    /// When the run ended; None while it runs, or when the process died inside it.
    pub ended: Option<jiff::Timestamp>,
    /// The "job done" line (fields `revision`, `synced`, `coalesced`), when it ended well.
    pub done: Option<Value>,
    /// The log it came from.
    pub log: String,
}

impl JobRun {
    /// `synced` of the "job done" line: this run completed a sync.
    pub fn synced(&self) -> bool {
        self.done
            .as_ref()
            .and_then(|d| d["synced"].as_bool())
            .unwrap_or(false)
    }

    /// `revision` of the "job done" line: the commit this run compared (and synced).
    pub fn revision(&self) -> &str {
        self.done
            .as_ref()
            .and_then(|d| d["revision"].as_str())
            .unwrap_or("")
    }

    /// `coalesced` of the "job started" line: how many jobs this run stands for.
    pub fn coalesced(&self) -> u64 {
        self.done
            .as_ref()
            .and_then(|d| d["coalesced"].as_u64())
            .unwrap_or(0)
    }
}

/// The runs of jobs for `app` (`namespace/name`) that the worker logging to `log` started, in
/// log order.
pub fn runs(log: &Path, app: &str) -> Vec<JobRun> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut runs: Vec<JobRun> = Vec::new();
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let span = &entry["span"];
        if span["name"] != "job" || span["app"] != app {
            continue;
        }
        let Some(at) = entry["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        else {
            continue;
        };
        let job_id = span["job_id"].as_str().unwrap_or("").to_owned();
        let attempt = span["attempt"].as_u64().unwrap_or(0);
        let message = entry["message"].as_str().unwrap_or("");
        if message == "job started" {
            runs.push(JobRun {
                job_id,
                attempt,
                cause: span["cause"].as_str().unwrap_or("").to_owned(),
                event_id: span["event_id"].as_str().unwrap_or("").to_owned(),
                started: at,
                ended: None,
                done: None,
                log: log.display().to_string(),
            });
            continue;
        }
        let ends = message == "job done" || message.starts_with("job failed");
        if !ends {
            continue;
        }
        if let Some(run) = runs
            .iter_mut()
            .rev()
            .find(|r| r.job_id == job_id && r.attempt == attempt && r.ended.is_none())
        {
            run.ended = Some(at);
            if message == "job done" {
                run.done = Some(entry.clone());
            }
        }
    }
    runs
}

/// Fails when two of `runs` (from any processes) were in progress at the same time.
pub fn assert_never_overlapping(runs: &[JobRun]) {
    let mut sorted: Vec<&JobRun> = runs.iter().collect();
    sorted.sort_by_key(|r| r.started);
    for pair in sorted.windows(2) {
        let (earlier, later) = (pair[0], pair[1]);
        let ended = earlier
            .ended
            .unwrap_or_else(|| panic!("a run never ended: {earlier:?}"));
        assert!(
            ended <= later.started,
            "two reconciles of one app overlapped ({} and {}):\n{earlier:?}\n{later:?}",
            earlier.log,
            later.log
        );
    }
}
