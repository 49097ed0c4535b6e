//! How `capstan proj get` prints an AppProject for people, as `argocd proj get` does.

use serde_json::Value;

/// Width of the label column, as `argocd proj get` aligns it.
const LABEL: usize = 30;

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The entries of a list field, `<none>` when there are none; later entries go on their own
/// lines under the first, as argocd prints them.
fn list_line(out: &mut String, label: &str, entries: &[String]) {
    let label = format!("{label}:");
    let first = entries.first().map_or("<none>", String::as_str);
    out.push_str(format!("{label:<LABEL$}{first}").trim_end());
    out.push('\n');
    for entry in entries.iter().skip(1) {
        out.push_str(&format!("{:<LABEL$}{entry}\n", ""));
    }
}

fn group_kinds(project: &Value, field: &str) -> Vec<String> {
    project
        .pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|gk| format!("{}/{}", text(gk, "/group"), text(gk, "/kind")))
        .collect()
}

/// `capstan proj get`'s human summary.
pub fn project_summary(project: &Value) -> String {
    let mut out = String::new();
    list_line(
        &mut out,
        "Name",
        &[text(project, "/metadata/name").to_owned()],
    );
    let description = text(project, "/spec/description");
    let label = "Description:";
    out.push_str(format!("{label:<LABEL$}{description}").trim_end());
    out.push('\n');
    let destinations: Vec<String> = project
        .pointer("/spec/destinations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|d| {
            let cluster = match text(d, "/server") {
                "" => text(d, "/name"),
                server => server,
            };
            format!("{cluster},{}", text(d, "/namespace"))
        })
        .collect();
    list_line(&mut out, "Destinations", &destinations);
    let strings = |field: &str| -> Vec<String> {
        project
            .pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    list_line(&mut out, "Repositories", &strings("sourceRepos"));
    list_line(&mut out, "Source Namespaces", &strings("sourceNamespaces"));
    for (label, field) in [
        ("Allowed Cluster Resources", "clusterResourceWhitelist"),
        ("Denied Cluster Resources", "clusterResourceBlacklist"),
        ("Allowed Namespaced Resources", "namespaceResourceWhitelist"),
        ("Denied Namespaced Resources", "namespaceResourceBlacklist"),
    ] {
        list_line(&mut out, label, &group_kinds(project, field));
    }
    let windows = project
        .pointer("/spec/syncWindows")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let windows = if windows == 0 {
        "<none>".to_owned()
    } else {
        format!("{windows} defined")
    };
    list_line(&mut out, "Sync Windows", &[windows]);
    let orphaned = if project
        .pointer("/spec/orphanedResources")
        .is_some_and(Value::is_object)
    {
        "enabled"
    } else {
        "disabled"
    };
    list_line(&mut out, "Orphaned Resources", &[orphaned.to_owned()]);
    out
}
