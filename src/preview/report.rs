//! What a preview says back on the pull request: one Markdown comment (per app: objects added,
//! changed and removed, what a sync after the merge would change in the cluster, and the diff
//! folded), and the `capstan/preview` commit status. Pure functions of the record.

use super::record::{AppPreview, Preview, PreviewState};
use crate::forge::{CommitStatus, StatusState};

/// The hidden line that marks Capstan's comment on a PR, so it is found and edited, never doubled.
pub const COMMENT_MARKER: &str = "<!-- capstan-preview -->";
/// The status context on the head commit.
pub const STATUS_CONTEXT: &str = "capstan/preview";
/// Diff text in one comment, across apps; the rest is behind the link (hosts cap comments at
/// 64 KiB and a long diff reads better in the UI).
pub const MAX_COMMENT_DIFF: usize = 40 * 1024;
/// Objects listed per app and per kind of change before the rest are only counted.
const MAX_LISTED: usize = 25;

/// Where a person reads the whole preview.
pub fn preview_url(base_url: &str, id: &str) -> String {
    format!("{}/api/v1/previews/{id}", base_url.trim_end_matches('/'))
}

/// The status for the head commit.
pub fn status(preview: &Preview, base_url: &str) -> CommitStatus {
    let state = match preview.state {
        PreviewState::Running => StatusState::Pending,
        PreviewState::Succeeded | PreviewState::NoApps => StatusState::Success,
        PreviewState::Failed => StatusState::Failure,
    };
    CommitStatus {
        context: STATUS_CONTEXT.into(),
        state,
        // Hosts cap descriptions (GitHub: 140 characters).
        description: preview.message.chars().take(140).collect(),
        target_url: Some(preview_url(base_url, &preview.id)),
    }
}

/// The one-line summary of a finished preview (also the status description).
pub fn summary(apps: &[AppPreview]) -> (PreviewState, String) {
    if apps.is_empty() {
        return (
            PreviewState::NoApps,
            "no Application follows this branch: the pull request touches no app".into(),
        );
    }
    let failed: Vec<&AppPreview> = apps.iter().filter(|a| a.error.is_some()).collect();
    if let Some(first) = failed.first() {
        let reason = first.error.as_deref().unwrap_or_default();
        let more = if failed.len() > 1 {
            format!(" (and {} more apps)", failed.len() - 1)
        } else {
            String::new()
        };
        return (
            PreviewState::Failed,
            format!("{}: {}{more}", first.app, condensed(reason)),
        );
    }
    let changed = apps.iter().filter(|a| a.changes()).count();
    let message = match changed {
        0 => format!(
            "touches no app's manifests ({} app{} rendered unchanged)",
            apps.len(),
            plural(apps.len())
        ),
        n => format!(
            "{n} of {} app{} change{}",
            apps.len(),
            plural(apps.len()),
            if n == 1 { "s" } else { "" }
        ),
    };
    (PreviewState::Succeeded, message)
}

/// A reason short enough for a status line (hosts cut descriptions at 140 characters): without
/// the condition's name, and with commit ids shortened, so the file an error names survives.
fn condensed(reason: &str) -> String {
    let reason = ["ComparisonError: ", "InvalidSpecError: "]
        .iter()
        .find_map(|p| reason.strip_prefix(p))
        .unwrap_or(reason);
    let mut out = String::with_capacity(reason.len());
    let mut run = String::new();
    for c in reason.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        if run.len() == 40 || run.len() == 64 {
            run.truncate(7);
        }
        out.push_str(&run);
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The comment's Markdown.
pub fn comment(preview: &Preview, base_url: &str) -> String {
    let url = preview_url(base_url, &preview.id);
    let head = preview.head_sha.get(..12).unwrap_or(&preview.head_sha);
    let icon = match preview.state {
        PreviewState::Failed => "❌",
        PreviewState::Running => "⏳",
        _ => "✅",
    };
    let mut out = format!(
        "{COMMENT_MARKER}\n## {icon} Capstan preview of `{head}`\n\n{}\n\n",
        preview.message
    );
    let mut diff_left = MAX_COMMENT_DIFF;
    let mut cut = false;
    for app in &preview.apps {
        out.push_str(&format!(
            "### {} `{}`\nProject `{}`, destination `{}`\n\n",
            if app.error.is_some() {
                "❌"
            } else if app.changes() {
                "✏️"
            } else {
                "➖"
            },
            app.app,
            app.project,
            app.destination
        ));
        if let Some(error) = &app.error {
            out.push_str(&format!("```\n{}\n```\n\n", fence_safe(error)));
            continue;
        }
        if !app.changes() {
            out.push_str("No change to the rendered manifests.\n\n");
        } else {
            out.push_str(&format!(
                "{} added, {} changed, {} removed\n\n",
                app.added.len(),
                app.changed.len(),
                app.removed.len()
            ));
            for (label, list) in [
                ("Added", &app.added),
                ("Changed", &app.changed),
                ("Removed", &app.removed),
            ] {
                if list.is_empty() {
                    continue;
                }
                let shown: Vec<String> = list
                    .iter()
                    .take(MAX_LISTED)
                    .map(|o| format!("`{o}`"))
                    .collect();
                let more = list.len().saturating_sub(MAX_LISTED);
                out.push_str(&format!(
                    "- {label}: {}{}\n",
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                ));
            }
            out.push('\n');
        }
        if !app.cluster_changes.is_empty() {
            let shown: Vec<String> = app
                .cluster_changes
                .iter()
                .take(MAX_LISTED)
                .map(|o| format!("`{o}`"))
                .collect();
            out.push_str(&format!(
                "After the merge a sync changes {} object{} in the cluster: {}{}\n\n",
                app.cluster_changes.len(),
                plural(app.cluster_changes.len()),
                shown.join(", "),
                if app.cluster_changes.len() > MAX_LISTED {
                    " …"
                } else {
                    ""
                }
            ));
        }
        if !app.diff.is_empty() {
            let mut text = app.diff.as_str();
            if text.len() > diff_left {
                let mut at = diff_left;
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text = &text[..at];
                cut = true;
            }
            diff_left -= text.len();
            if !text.is_empty() {
                out.push_str(&format!(
                    "<details><summary>Diff</summary>\n\n```diff\n{}\n```\n</details>\n\n",
                    fence_safe(text)
                ));
            }
        }
    }
    if cut || preview.apps.iter().any(|a| a.diff_truncated) {
        out.push_str(&format!(
            "The diff is cut here; the whole preview is at {url}\n\n"
        ));
    }
    out.push_str(&format!(
        "<sub>Rendered at `{head}` against `{}` ({}). Nothing was applied. [Full preview]({url})</sub>\n",
        preview.base_sha.as_deref().and_then(|b| b.get(..12)).unwrap_or(&preview.base_ref),
        preview.base_ref
    ));
    out
}

/// Text inside a Markdown code fence cannot close it.
fn fence_safe(text: &str) -> String {
    text.replace("```", "`\u{200b}``")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, changed: &[&str], diff: &str, error: Option<&str>) -> AppPreview {
        AppPreview {
            app: format!("capstan/{name}"),
            project: "default".into(),
            destination: "in-cluster/shop".into(),
            error: error.map(str::to_owned),
            added: Vec::new(),
            changed: changed.iter().map(|s| s.to_string()).collect(),
            removed: Vec::new(),
            cluster_changes: Vec::new(),
            diff: diff.into(),
            diff_truncated: false,
        }
    }

    fn preview(apps: Vec<AppPreview>) -> Preview {
        let (state, message) = summary(&apps);
        Preview {
            id: "abc".into(),
            repo: "https://git.example.com/o/r.git".into(),
            pr: 7,
            title: "t".into(),
            author: None,
            html_url: None,
            provider: "github".into(),
            forge: crate::event::ForgeRepo {
                kind: crate::event::EventSource::Github,
                api_url: "http://api".into(),
                owner: "o".into(),
                name: "r".into(),
            },
            delivery: None,
            head_sha: "0123456789abcdef0123456789abcdef01234567".into(),
            base_ref: "main".into(),
            base_sha: None,
            state,
            message,
            apps,
            started_at: String::new(),
            finished_at: None,
            comment: None,
            report_error: None,
        }
    }

    #[test]
    fn a_failure_reason_is_condensed_so_the_file_fits_in_a_status() {
        assert_eq!(
            condensed(
                "ComparisonError: rendering chart at ad4fb2d362d0f3d80a127f25988b196514694a02: helm failed: parse error at (web/templates/cm.yaml:4)"
            ),
            "rendering chart at ad4fb2d: helm failed: parse error at (web/templates/cm.yaml:4)"
        );
        assert_eq!(condensed("cafe is not a sha"), "cafe is not a sha");
    }

    #[test]
    fn no_app_is_said_plainly_and_succeeds() {
        let p = preview(Vec::new());
        assert_eq!(p.state, PreviewState::NoApps);
        assert!(p.message.contains("touches no app"), "{}", p.message);
        assert_eq!(status(&p, "http://c").state, StatusState::Success);
    }

    #[test]
    fn a_render_failure_fails_the_status_and_names_the_app_and_reason() {
        let p = preview(vec![
            app("ok", &[], "", None),
            app(
                "chart",
                &[],
                "",
                Some("ComparisonError: helm template: templates/dep.yaml: parse error"),
            ),
        ]);
        assert_eq!(p.state, PreviewState::Failed);
        let s = status(&p, "http://capstan.example.com/");
        assert_eq!(s.state, StatusState::Failure);
        assert!(
            s.description.contains("capstan/chart") && s.description.contains("templates/dep.yaml"),
            "{}",
            s.description
        );
        assert_eq!(
            s.target_url.as_deref(),
            Some("http://capstan.example.com/api/v1/previews/abc")
        );
        assert!(comment(&p, "http://c").contains("templates/dep.yaml"));
    }

    #[test]
    fn the_comment_carries_the_marker_the_changes_and_a_folded_diff() {
        let p = preview(vec![app(
            "web",
            &["Deployment/shop/web"],
            "# Deployment/shop/web\n-image: a\n+image: b\n",
            None,
        )]);
        let c = comment(&p, "http://c");
        assert!(c.starts_with(COMMENT_MARKER));
        assert!(c.contains("0 added, 1 changed, 0 removed"), "{c}");
        assert!(c.contains("`Deployment/shop/web`"), "{c}");
        assert!(
            c.contains("<details><summary>Diff</summary>") && c.contains("+image: b"),
            "{c}"
        );
        assert_eq!(p.message, "1 of 1 app changes");
    }

    #[test]
    fn a_large_diff_is_cut_with_a_link_to_the_whole_preview() {
        let big = "+x\n".repeat(MAX_COMMENT_DIFF);
        let p = preview(vec![app("web", &["ConfigMap/shop/big"], &big, None)]);
        let c = comment(&p, "http://c");
        assert!(c.len() < MAX_COMMENT_DIFF + 4096, "{}", c.len());
        assert!(c.contains(
            "The diff is cut here; the whole preview is at http://c/api/v1/previews/abc"
        ));
    }

    #[test]
    fn a_diff_cannot_close_its_fence() {
        let p = preview(vec![app(
            "web",
            &["ConfigMap/shop/x"],
            "+```\n+# injected\n",
            None,
        )]);
        let c = comment(&p, "http://c");
        assert_eq!(c.matches("```diff").count(), 1);
        assert_eq!(c.matches("\n```\n").count(), 1, "{c}");
    }
}
