//! The day-2 commands of `capstan app`: sync options, history, rollback, wait, resources and
//! terminate-op, and how their answers are printed.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use super::{ApiClient, ExitError};
use crate::job::ResourceSelector;

/// What `capstan app sync` asks for beyond the app.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SyncOptions {
    pub prune: bool,
    pub dry_run: bool,
    pub revision: Option<String>,
    pub resources: Vec<ResourceSelector>,
}

impl SyncOptions {
    /// The JSON body of the sync, or None when only `prune` is set (the query says that).
    pub fn body(&self) -> Option<Value> {
        if !self.dry_run && self.revision.is_none() && self.resources.is_empty() {
            return None;
        }
        let mut body =
            json!({ "prune": self.prune, "dryRun": self.dry_run, "resources": self.resources });
        if let Some(r) = &self.revision {
            body["revision"] = r.as_str().into();
        }
        Some(body)
    }
}

/// What `capstan app wait` waits for; none set means all three.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitFor {
    pub sync: bool,
    pub health: bool,
    pub operation: bool,
}

impl WaitFor {
    /// The conditions to check: all of them when no flag was given, as `argocd app wait`.
    pub fn effective(self) -> WaitFor {
        if self.sync || self.health || self.operation {
            self
        } else {
            WaitFor {
                sync: true,
                health: true,
                operation: true,
            }
        }
    }

    /// What the app still lacks, in words; empty when it is in the wanted state.
    pub fn missing(self, app: &Value) -> Vec<String> {
        let text = |pointer: &str| app.pointer(pointer).and_then(Value::as_str);
        let mut missing = Vec::new();
        let sync = text("/status/sync/status").unwrap_or("Unknown");
        if self.sync && sync != "Synced" {
            missing.push(format!("sync (is {sync})"));
        }
        let health = text("/status/health/status").unwrap_or("Unknown");
        if self.health && health != "Healthy" {
            missing.push(format!("health (is {health})"));
        }
        let phase = text("/status/operationState/phase");
        if self.operation && matches!(phase, Some("Running" | "Terminating")) {
            missing.push(format!(
                "operation to finish (is {})",
                phase.unwrap_or_default()
            ));
        }
        missing
    }
}

impl ApiClient {
    fn app_path(namespace: &str, name: &str, rest: &str) -> String {
        format!("/api/v1/applications/{namespace}/{name}{rest}")
    }

    /// `capstan app sync` with options.
    pub async fn sync(
        &self,
        namespace: &str,
        name: &str,
        options: &SyncOptions,
    ) -> anyhow::Result<Value> {
        let query = if options.prune { "?prune=true" } else { "" };
        let path = Self::app_path(namespace, name, &format!("/sync{query}"));
        self.call(reqwest::Method::POST, &path, options.body().as_ref())
            .await
    }

    /// `capstan app history`.
    pub async fn history(&self, namespace: &str, name: &str) -> anyhow::Result<Value> {
        let path = Self::app_path(namespace, name, "/history");
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `capstan app rollback`.
    pub async fn rollback(
        &self,
        namespace: &str,
        name: &str,
        id: i64,
        prune: bool,
        dry_run: bool,
    ) -> anyhow::Result<Value> {
        let path = Self::app_path(namespace, name, "/rollback");
        let body = json!({ "id": id, "prune": prune, "dryRun": dry_run });
        self.call(reqwest::Method::POST, &path, Some(&body)).await
    }

    /// `capstan app resources`.
    pub async fn resource_tree(&self, namespace: &str, name: &str) -> anyhow::Result<Value> {
        let path = Self::app_path(namespace, name, "/resource-tree");
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `capstan app diff`.
    pub async fn diff(&self, namespace: &str, name: &str) -> anyhow::Result<Value> {
        let path = Self::app_path(namespace, name, "/diff");
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `capstan app terminate-op`.
    pub async fn terminate(&self, namespace: &str, name: &str) -> anyhow::Result<Value> {
        let path = Self::app_path(namespace, name, "/operation");
        self.call(reqwest::Method::DELETE, &path, None).await
    }

    /// `capstan app wait`: polls every second until the app is in the wanted state and returns
    /// it; a timeout is an [`ExitError`] with code 1 naming what was missing, any other failure
    /// one with code 2.
    pub async fn wait(
        &self,
        namespace: &str,
        name: &str,
        wanted: WaitFor,
        timeout: Option<Duration>,
    ) -> anyhow::Result<Value> {
        let wanted = wanted.effective();
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            let app = self
                .get(namespace, name)
                .await
                .with_context(|| format!("waiting for {namespace}/{name}"))
                .map_err(|e| {
                    let line = super::error_line(&e);
                    e.context(ExitError::new(2, line))
                })?;
            let missing = wanted.missing(&app);
            if missing.is_empty() {
                return Ok(app);
            }
            let now = tokio::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                print!("{}", wait_summary(&app));
                let secs = timeout.map_or(0, |t| t.as_secs());
                return Err(ExitError::new(
                    1,
                    format!("timed out after {secs}s waiting for {}", missing.join(", ")),
                )
                .into());
            }
            let pause = deadline.map_or(Duration::from_secs(1), |d| {
                (d - now).min(Duration::from_secs(1))
            });
            tokio::time::sleep(pause).await;
        }
    }
}

/// The state `app wait` ends on: name, sync, health, operation phase and revision.
pub fn wait_summary(app: &Value) -> String {
    let text = |pointer: &str| app.pointer(pointer).and_then(Value::as_str).unwrap_or("");
    let field = |pointer: &str, default: &str| {
        let v = text(pointer);
        if v.is_empty() {
            default.to_owned()
        } else {
            v.to_owned()
        }
    };
    format!(
        "{:<40} {:<10} {:<12} {:<12} {}\n",
        "NAME", "SYNC", "HEALTH", "OPERATION", "REVISION"
    ) + format!(
        "{:<40} {:<10} {:<12} {:<12} {}\n",
        format!("{}/{}", text("/metadata/namespace"), text("/metadata/name")),
        field("/status/sync/status", "Unknown"),
        field("/status/health/status", "Unknown"),
        field("/status/operationState/phase", "-"),
        text("/status/sync/revision"),
    )
    .as_str()
}

/// `argocd app history`'s table: ID, DATE, REVISION, INITIATED BY, newest first as the server
/// sends it, plus what caused each sync and the first line of the commit's message.
pub fn history_table(answer: &Value) -> String {
    let rows: Vec<[String; 5]> = answer
        .get("history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|h| {
            let text = |field: &str| h.get(field).and_then(Value::as_str).unwrap_or("");
            [
                h.get("id")
                    .and_then(Value::as_i64)
                    .unwrap_or_default()
                    .to_string(),
                text("deployedAt").to_owned(),
                text("revision").to_owned(),
                initiated_by(h.get("initiatedBy")),
                headline(text("message"), HEADLINE_CHARS),
            ]
        })
        .collect();
    let header = ["ID", "DATE", "REVISION", "INITIATED BY", "MESSAGE"].map(str::to_owned);
    // Every column but the last is as wide as its widest cell, so the message column lines up.
    let mut widths = [0usize; 4];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (w, cell) in widths.iter().zip(r) {
            line.push_str(&format!("{cell:<w$} "));
        }
        line.push_str(&r[4]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Characters of a commit message's first line the history table shows.
const HEADLINE_CHARS: usize = 60;

/// Who or what started a sync, in a few words: "webhook github delivery 1234 by alice",
/// "trigger 42 by ci", "poller", "drift", a person's name, or "automated" when older
/// entries say no more.
pub fn initiated_by(initiated: Option<&Value>) -> String {
    let Some(i) = initiated else {
        return String::new();
    };
    fn text(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    let cause = i.get("cause");
    let field = |name: &str| text(cause.and_then(|c| c.get(name)));
    let username = text(i.get("username"));
    let mut words: Vec<String> = Vec::new();
    match field("source") {
        Some("webhook") => {
            words.push("webhook".into());
            words.extend(field("provider").map(str::to_owned));
            words.extend(field("deliveryId").map(|d| format!("delivery {d}")));
        }
        Some("mq") => {
            words.push("trigger".into());
            words.extend(field("deliveryId").map(str::to_owned));
        }
        Some("poll") => words.push("poller".into()),
        Some("drift") => words.push("drift".into()),
        Some("manual") => {
            let who = username.or(field("user")).unwrap_or("a person");
            // A person's refresh that automation turned into a sync.
            if i.get("automated").and_then(Value::as_bool) == Some(true) {
                return format!("automated, refresh by {who}");
            }
            return who.to_owned();
        }
        Some(other) => words.push(other.to_owned()),
        None => {
            let automated = i.get("automated").and_then(Value::as_bool) == Some(true);
            return match username {
                Some(name) if !automated => name.to_owned(),
                _ if automated => "automated".to_owned(),
                _ => String::new(),
            };
        }
    }
    if let Some(pusher) = field("pusher") {
        words.push(format!("by {pusher}"));
    }
    words.join(" ")
}

/// The first line of `message`, cut to `max` characters with an ellipsis.
fn headline(message: &str, max: usize) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    if first.chars().count() <= max {
        first.to_owned()
    } else {
        let cut: String = first.chars().take(max.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    }
}

/// The resource tree as an indented list: every child right under its parent, its KIND two
/// columns further right.
pub fn resources_table(answer: &Value) -> String {
    let nodes: Vec<&Value> = answer
        .get("nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let uid = |n: &Value| {
        n.get("uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let parents = |n: &Value| -> Vec<String> {
        n.get("parentRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("uid").and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    let known: std::collections::HashSet<String> = nodes
        .iter()
        .map(|n| uid(n))
        .filter(|u| !u.is_empty())
        .collect();
    let mut rows: Vec<[String; 5]> = Vec::new();
    // A node whose parents are not in the tree is a root, so nothing is ever left out.
    let mut stack: Vec<(&Value, usize)> = nodes
        .iter()
        .rev()
        .filter(|n| !parents(n).iter().any(|p| known.contains(p)))
        .map(|n| (*n, 0))
        .collect();
    let mut seen = std::collections::HashSet::new();
    while let Some((node, depth)) = stack.pop() {
        let id = uid(node);
        if !id.is_empty() && !seen.insert(id.clone()) {
            continue;
        }
        let text = |field: &str| node.get(field).and_then(Value::as_str).unwrap_or("");
        let health = node
            .pointer("/health/status")
            .and_then(Value::as_str)
            .unwrap_or("");
        // Argo CD's tree marker: the KIND of a child sits right of its parent's.
        let marker = match depth {
            0 => String::new(),
            d => format!("{}└─", "  ".repeat(d - 1)),
        };
        rows.push([
            text("group").to_owned(),
            format!("{marker}{}", text("kind")),
            text("namespace").to_owned(),
            text("name").to_owned(),
            health.to_owned(),
        ]);
        if id.is_empty() {
            continue;
        }
        for child in nodes.iter().rev().filter(|n| parents(n).contains(&id)) {
            stack.push((child, depth + 1));
        }
    }
    let header = ["GROUP", "KIND", "NAMESPACE", "NAME", "HEALTH"].map(str::to_owned);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `capstan app diff` as `argocd app diff` prints it: a header per changed resource, then its
/// unified diff (live on the left, desired on the right).
pub fn diff_text(answer: &Value) -> String {
    let mut out = String::new();
    let items = answer.get("items").and_then(Value::as_array);
    for item in items.into_iter().flatten() {
        if item["change"] == "unchanged" {
            continue;
        }
        let text = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("");
        out.push_str(&format!(
            "===== {}/{} {}/{} ======\n",
            text("group"),
            text("kind"),
            text("namespace"),
            text("name")
        ));
        out.push_str(text("diff"));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_options_beyond_prune_make_a_body() {
        let prune_only = SyncOptions {
            prune: true,
            ..Default::default()
        };
        assert_eq!(prune_only.body(), None);
        let selective = SyncOptions {
            resources: vec![ResourceSelector::parse("apps:Deployment:shop/web").expect("parses")],
            revision: Some("v1.2".into()),
            ..Default::default()
        };
        let body = selective.body().expect("a body");
        assert_eq!(body["revision"], "v1.2");
        assert_eq!(
            body["resources"],
            json!([{"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web"}])
        );
    }

    #[test]
    fn wait_reports_what_is_missing_and_no_flag_means_everything() {
        let app = json!({"status": {"sync": {"status": "Synced"}, "health": {"status": "Progressing"},
            "operationState": {"phase": "Running"}}});
        let sync_only = WaitFor {
            sync: true,
            ..Default::default()
        };
        assert!(sync_only.effective().missing(&app).is_empty());
        let all = WaitFor::default().effective().missing(&app);
        assert_eq!(
            all,
            [
                "health (is Progressing)",
                "operation to finish (is Running)"
            ]
        );
        let empty = WaitFor::default().effective().missing(&json!({}));
        assert_eq!(empty, ["sync (is Unknown)", "health (is Unknown)"]);
    }

    #[test]
    fn history_rows_show_id_date_revision_who_and_the_message() {
        let table = history_table(&json!({"history": [
            {"id": 4, "revision": "ddd", "deployedAt": "2026-12-02T04:00:00Z",
             "message": "Roll out web 1.27 to every region at once, with the new probes and limits\n\nbody",
             "initiatedBy": {"automated": true, "cause": {"source": "webhook", "provider": "github",
                "deliveryId": "72d3162e", "eventId": "e-1", "pusher": "alice"}}},
            {"id": 3, "revision": "ccc", "deployedAt": "2026-12-02T03:00:00Z", "message": "two",
             "initiatedBy": {"automated": true, "cause": {"source": "poll"}}},
            {"id": 2, "revision": "bbb", "deployedAt": "2026-12-02T02:00:00Z",
             "initiatedBy": {"username": "admin", "cause": {"source": "manual", "user": "admin"}}},
            {"id": 1, "revision": "aaa", "deployedAt": "2026-12-01T02:00:00Z", "initiatedBy": {"automated": true}},
        ]}));
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("ID")
                && lines[0].contains("INITIATED BY")
                && lines[0].ends_with("MESSAGE"),
            "{table}"
        );
        let cells = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            cells(lines[1])[..9],
            [
                "4",
                "2026-12-02T04:00:00Z",
                "ddd",
                "webhook",
                "github",
                "delivery",
                "72d3162e",
                "by",
                "alice"
            ]
        );
        assert!(
            lines[1].ends_with("at once, with the new pro…"),
            "first line only, cut: {table}"
        );
        assert!(!table.contains("body"), "{table}");
        assert_eq!(
            cells(lines[2]),
            ["3", "2026-12-02T03:00:00Z", "ccc", "poller", "two"]
        );
        assert_eq!(
            cells(lines[3]),
            ["2", "2026-12-02T02:00:00Z", "bbb", "admin"]
        );
        assert_eq!(
            cells(lines[4]),
            ["1", "2026-12-01T02:00:00Z", "aaa", "automated"]
        );
        // The MESSAGE column starts at one place on every line.
        let at = lines[0].find("MESSAGE").expect("column");
        assert_eq!(lines[2].find("two"), Some(at), "{table}");
    }

    #[test]
    fn a_trigger_and_a_persons_refresh_are_named_as_such() {
        let trigger = json!({"automated": true, "cause": {"source": "mq", "provider": "mq",
            "deliveryId": "msg-9", "pusher": "ci/deploy"}});
        assert_eq!(initiated_by(Some(&trigger)), "trigger msg-9 by ci/deploy");
        let refresh = json!({"automated": true, "cause": {"source": "manual", "user": "admin"}});
        assert_eq!(initiated_by(Some(&refresh)), "automated, refresh by admin");
        let drift = json!({"automated": true, "cause": {"source": "drift"}});
        assert_eq!(initiated_by(Some(&drift)), "drift");
        assert_eq!(initiated_by(None), "");
    }

    #[test]
    fn children_are_printed_indented_under_their_parent() {
        let node = |kind: &str, name: &str, uid: &str, parent: Option<&str>| {
            json!({"group": if kind == "Pod" { "" } else { "apps" }, "kind": kind,
                "namespace": "shop", "name": name, "uid": uid,
                "parentRefs": parent.map(|p| json!([{"uid": p}])).unwrap_or(json!([])),
                "health": {"status": "Healthy"}})
        };
        let table = resources_table(&json!({"nodes": [
            node("Deployment", "web", "d", None),
            node("Deployment", "api", "a", None),
            node("ReplicaSet", "web-1", "r", Some("d")),
            node("Pod", "web-1-x", "p", Some("r")),
        ]}));
        let lines: Vec<&str> = table.lines().collect();
        let names: Vec<&str> = lines[1..]
            .iter()
            .map(|l| {
                l.split_whitespace()
                    .nth(if l.contains("Pod") { 2 } else { 3 })
                    .unwrap_or("")
            })
            .collect();
        assert_eq!(names, ["web", "web-1", "web-1-x", "api"], "{table}");
        // Where the KIND text starts, in characters.
        let kind_at = |l: &str, kind: &str| {
            let byte = l.find(kind).expect("kind printed");
            l[..byte].chars().count()
        };
        let (d, rs, pod) = (
            kind_at(lines[1], "Deployment"),
            kind_at(lines[2], "ReplicaSet"),
            kind_at(lines[3], "Pod"),
        );
        assert!(d < rs && rs < pod, "{table}");
        assert_eq!(kind_at(lines[4], "Deployment"), d, "{table}");
        assert!(lines[2].contains("└─ReplicaSet"), "{table}");
        assert!(lines[3].contains("Healthy"));
    }
}
