//! How `capstan app get` and `capstan app list` print Applications for people: the summary and
//! table `argocd` prints, and the client-side filters of `app list`.

use serde_json::Value;

use super::table::{aligned, header};

/// Width of the label column of the summary, as `argocd app get` aligns it.
const LABEL: usize = 20;

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn items<'a>(v: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn line(out: &mut String, label: &str, value: &str) {
    let label = format!("{label}:");
    out.push_str(format!("{label:<LABEL$}{value}").trim_end());
    out.push('\n');
}

/// The first seven characters of a commit, as Git abbreviates it.
fn short(revision: &str) -> &str {
    revision.get(..7).unwrap_or(revision)
}

/// `namespace/name`.
pub fn qualified_name(app: &Value) -> String {
    format!(
        "{}/{}",
        text(app, "/metadata/namespace"),
        text(app, "/metadata/name")
    )
}

/// The destination cluster: its server URL, else its name.
fn cluster(app: &Value) -> &str {
    match text(app, "/spec/destination/server") {
        "" => text(app, "/spec/destination/name"),
        server => server,
    }
}

/// The single source, else the first of a multi-source app (what list columns show).
fn first_source(app: &Value) -> Option<&Value> {
    app.pointer("/spec/source")
        .filter(|s| s.is_object())
        .or_else(|| app.pointer("/spec/sources/0"))
}

fn is_multi_source(app: &Value) -> bool {
    app.pointer("/spec/source").is_none_or(Value::is_null)
        && items(app, "/spec/sources").next().is_some()
}

fn automated(app: &Value) -> Option<&Value> {
    app.pointer("/spec/syncPolicy/automated")
        .filter(|a| a.is_object())
        .filter(|a| a.get("enabled").and_then(Value::as_bool) != Some(false))
}

/// `argocd app get`'s Sync Policy: Manual, Automated or Automated (Prune).
fn sync_policy(app: &Value) -> String {
    match automated(app) {
        None => "Manual".into(),
        Some(a) if a.get("prune").and_then(Value::as_bool) == Some(true) => {
            "Automated (Prune)".into()
        }
        Some(_) => "Automated".into(),
    }
}

/// `argocd app list`'s SYNCPOLICY column: Manual, Auto or Auto-Prune.
fn sync_policy_short(app: &Value) -> &'static str {
    match automated(app) {
        None => "Manual",
        Some(a) if a.get("prune").and_then(Value::as_bool) == Some(true) => "Auto-Prune",
        Some(_) => "Auto",
    }
}

fn sync_status(app: &Value) -> &str {
    match text(app, "/status/sync/status") {
        "" => "Unknown",
        s => s,
    }
}

fn health_status(app: &Value) -> &str {
    match text(app, "/status/health/status") {
        "" => "Unknown",
        s => s,
    }
}

/// "Synced to main (1a2b3c4)"; a multi-source app names each source's commit.
fn sync_line(app: &Value) -> String {
    let status = sync_status(app);
    if is_multi_source(app) {
        let revisions: Vec<&str> = items(app, "/status/sync/revisions")
            .filter_map(Value::as_str)
            .map(short)
            .collect();
        return if revisions.is_empty() {
            status.to_owned()
        } else {
            format!("{status} ({})", revisions.join(", "))
        };
    }
    let target = first_source(app)
        .and_then(|s| s.get("targetRevision"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("HEAD");
    let preposition = if status == "Synced" { "to" } else { "from" };
    match text(app, "/status/sync/revision") {
        "" => format!("{status} {preposition} {target}"),
        rev => format!("{status} {preposition} {target} ({})", short(rev)),
    }
}

fn source_lines(out: &mut String, source: &Value, indent: &str, first: &str) {
    let fields = [
        ("Repo", "/repoURL"),
        ("Target", "/targetRevision"),
        ("Path", "/path"),
        ("Chart", "/chart"),
        ("Ref", "/ref"),
    ];
    let mut lead = first;
    for (label, pointer) in fields {
        let value = text(source, pointer);
        // Repo and Target always show, as argocd prints them; Path too unless the source is a
        // chart (which has none); Chart and Ref only when set.
        let is_chart = !text(source, "/chart").is_empty();
        if value.is_empty() && (matches!(label, "Chart" | "Ref") || (label == "Path" && is_chart)) {
            continue;
        }
        let label = format!("{lead}{label}:");
        out.push_str(format!("{label:<LABEL$}{value}").trim_end());
        out.push('\n');
        lead = indent;
    }
}

/// Seconds between two RFC 3339 times, as `1m5s`; None when either does not parse.
fn duration(start: &str, end: &str) -> Option<String> {
    let start: jiff::Timestamp = start.parse().ok()?;
    let end: jiff::Timestamp = end.parse().ok()?;
    let secs = end.duration_since(start).as_secs();
    if secs < 0 {
        return None;
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    Some(match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    })
}

/// `capstan app get`'s human summary, as `argocd app get` prints it: the app's settings, its
/// conditions, the last operation, and one row per managed resource.
pub fn app_summary(app: &Value) -> String {
    let mut out = String::new();
    line(&mut out, "Name", &qualified_name(app));
    line(&mut out, "Project", text(app, "/spec/project"));
    line(&mut out, "Server", cluster(app));
    line(
        &mut out,
        "Namespace",
        text(app, "/spec/destination/namespace"),
    );
    if is_multi_source(app) {
        out.push_str("Sources:\n");
        for source in items(app, "/spec/sources") {
            source_lines(&mut out, source, "  ", "- ");
        }
    } else if let Some(source) = first_source(app) {
        source_lines(&mut out, source, "", "");
    }
    line(&mut out, "Sync Policy", &sync_policy(app));
    line(&mut out, "Sync Status", &sync_line(app));
    let health = health_status(app);
    match text(app, "/status/health/message") {
        "" => line(&mut out, "Health Status", health),
        message => line(&mut out, "Health Status", &format!("{health} ({message})")),
    }

    let conditions: Vec<Vec<String>> = items(app, "/status/conditions")
        .map(|c| {
            vec![
                text(c, "/type").to_owned(),
                text(c, "/message").to_owned(),
                text(c, "/lastTransitionTime").to_owned(),
            ]
        })
        .collect();
    if !conditions.is_empty() {
        out.push('\n');
        let mut rows = vec![header(&["CONDITION", "MESSAGE", "LAST TRANSITION"])];
        rows.extend(conditions);
        out.push_str(&aligned(&rows));
    }

    if let Some(op) = app
        .pointer("/status/operationState")
        .filter(|o| o.is_object())
    {
        out.push('\n');
        line(&mut out, "Operation", "Sync");
        let revision = match text(op, "/syncResult/revision") {
            "" => text(op, "/operation/revision"),
            r => r,
        };
        line(&mut out, "Sync Revision", revision);
        line(&mut out, "Phase", text(op, "/phase"));
        line(&mut out, "Start", text(op, "/startedAt"));
        let finished = text(op, "/finishedAt");
        line(&mut out, "Finished", finished);
        if let Some(d) = duration(text(op, "/startedAt"), finished) {
            line(&mut out, "Duration", &d);
        }
        line(&mut out, "Message", text(op, "/message"));
    }

    let rows = resource_rows(app);
    if !rows.is_empty() {
        out.push('\n');
        let mut all = vec![header(&[
            "GROUP",
            "KIND",
            "NAMESPACE",
            "NAME",
            "STATUS",
            "HEALTH",
            "HOOK",
            "MESSAGE",
        ])];
        all.extend(rows);
        out.push_str(&aligned(&all));
    }
    out
}

/// Resources from status.resources with the last sync's message for each; hooks (which
/// status.resources does not track) follow with their phase as STATUS.
fn resource_rows(app: &Value) -> Vec<Vec<String>> {
    let results: Vec<&Value> = items(app, "/status/operationState/syncResult/resources").collect();
    let same = |a: &Value, b: &Value| {
        ["/group", "/kind", "/namespace", "/name"]
            .iter()
            .all(|p| text(a, p) == text(b, p))
    };
    let mut rows: Vec<Vec<String>> = items(app, "/status/resources")
        .map(|r| {
            let message = results
                .iter()
                .find(|res| text(res, "/hookType").is_empty() && same(res, r))
                .map_or("", |res| text(res, "/message"));
            // Argo CD's wording for what only a pruning sync would remove.
            let pruning = r.get("requiresPruning").and_then(Value::as_bool) == Some(true);
            let message = if message.is_empty() && pruning {
                "ignored (requires pruning)"
            } else {
                message
            };
            vec![
                text(r, "/group").to_owned(),
                text(r, "/kind").to_owned(),
                text(r, "/namespace").to_owned(),
                text(r, "/name").to_owned(),
                text(r, "/status").to_owned(),
                text(r, "/health/status").to_owned(),
                String::new(),
                message.to_owned(),
            ]
        })
        .collect();
    for hook in results.iter().filter(|r| !text(r, "/hookType").is_empty()) {
        rows.push(vec![
            text(hook, "/group").to_owned(),
            text(hook, "/kind").to_owned(),
            text(hook, "/namespace").to_owned(),
            text(hook, "/name").to_owned(),
            text(hook, "/hookPhase").to_owned(),
            String::new(),
            text(hook, "/hookType").to_owned(),
            text(hook, "/message").to_owned(),
        ]);
    }
    rows
}

/// `capstan app list`'s table, as `argocd app list` prints it; `wide` adds the synced
/// revision and the operation's phase.
pub fn app_list_table(apps: &[&Value], wide: bool) -> String {
    let mut columns = vec![
        "NAME",
        "CLUSTER",
        "NAMESPACE",
        "PROJECT",
        "STATUS",
        "HEALTH",
        "SYNCPOLICY",
        "CONDITIONS",
        "REPO",
        "PATH",
        "TARGET",
    ];
    if wide {
        columns.extend(["REVISION", "OPERATION"]);
    }
    let mut rows = vec![header(&columns)];
    for app in apps {
        let conditions: Vec<&str> = items(app, "/status/conditions")
            .map(|c| text(c, "/type"))
            .collect();
        let source = first_source(app).unwrap_or(&Value::Null);
        let mut row = vec![
            qualified_name(app),
            cluster(app).to_owned(),
            text(app, "/spec/destination/namespace").to_owned(),
            text(app, "/spec/project").to_owned(),
            sync_status(app).to_owned(),
            health_status(app).to_owned(),
            sync_policy_short(app).to_owned(),
            if conditions.is_empty() {
                "<none>".to_owned()
            } else {
                conditions.join(",")
            },
            text(source, "/repoURL").to_owned(),
            text(source, "/path").to_owned(),
            text(source, "/targetRevision").to_owned(),
        ];
        if wide {
            let revision = match text(app, "/status/sync/revision") {
                "" => items(app, "/status/sync/revisions")
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                r => r.to_owned(),
            };
            row.push(revision);
            row.push(text(app, "/status/operationState/phase").to_owned());
        }
        rows.push(row);
    }
    aligned(&rows)
}

/// A malformed `--selector`.
#[derive(Debug, thiserror::Error)]
#[error("invalid --selector {0:?}: expected k=v, k!=v or k, separated by commas")]
pub struct SelectorError(String);

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
}

/// A label selector as kubectl writes it: `k=v,k2!=v2,k3`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// Parses `k=v`, `k==v`, `k!=v` and `k` (exists), comma-separated.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let bad = || SelectorError(text.to_owned());
        let valid = |k: &str| !k.is_empty() && !k.contains(['=', '!', ' ']);
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim) {
            let requirement = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
            } else {
                Requirement::Exists(part.to_owned())
            };
            let (Requirement::Equals(k, v) | Requirement::NotEquals(k, v)) = &requirement else {
                if !valid(part) {
                    return Err(bad());
                }
                requirements.push(requirement);
                continue;
            };
            if !valid(k) || v.contains(['=', '!']) {
                return Err(bad());
            }
            requirements.push(requirement);
        }
        Ok(Selector(requirements))
    }

    /// Whether these labels (an object of strings, or none) satisfy every requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::Exists(k) => get(k).is_some(),
        })
    }
}

/// The client-side filters of `capstan app list`.
#[derive(Debug, Clone, Default)]
pub struct AppFilter {
    /// Only apps of this project.
    pub project: Option<String>,
    /// Only apps whose destination server or name is this.
    pub cluster: Option<String>,
    /// Only apps whose labels match.
    pub selector: Option<Selector>,
}

impl AppFilter {
    /// Whether `app` passes every filter given.
    pub fn matches(&self, app: &Value) -> bool {
        let project_ok = self
            .project
            .as_deref()
            .is_none_or(|p| text(app, "/spec/project") == p);
        let cluster_ok = self.cluster.as_deref().is_none_or(|c| {
            text(app, "/spec/destination/server") == c || text(app, "/spec/destination/name") == c
        });
        let labels_ok = self
            .selector
            .as_ref()
            .is_none_or(|s| s.matches(app.pointer("/metadata/labels")));
        project_ok && cluster_ok && labels_ok
    }

    /// The apps of a list answer (`{"items": […]}`) that pass.
    pub fn apply<'a>(&self, list: &'a Value) -> Vec<&'a Value> {
        items(list, "/items").filter(|a| self.matches(a)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_match_equality_inequality_and_existence() {
        let labels = json!({"team": "shop", "tier": "web"});
        let yes = |s: &str| Selector::parse(s).expect("parses").matches(Some(&labels));
        assert!(yes("team=shop,tier"));
        assert!(yes("team==shop"));
        assert!(yes("team!=infra"));
        assert!(!yes("team=infra"));
        assert!(!yes("owner"));
        assert!(!yes("tier!=web"));
        assert!(Selector::parse("team!=x").expect("parses").matches(None));
        for bad in ["", "=x", "a=b=c", "a,,b", "!=x"] {
            assert!(Selector::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn short_revisions_never_split_a_character() {
        assert_eq!(short("1a2b3c4d5e"), "1a2b3c4");
        assert_eq!(short("v1"), "v1");
        assert_eq!(short("ééééé"), "ééééé");
    }
}
