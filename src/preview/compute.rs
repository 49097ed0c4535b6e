//! Computing a preview: the Applications the PR's base branch feeds, each rendered at the PR's
//! head and at the base, compared with each other and with the live objects. Rendering goes
//! through the same path as a sync (render budgets, project rules), so a PR from a fork is held
//! to the same limits; nothing is applied and no hook runs.

use std::collections::BTreeMap;

use serde_json::Value;

use super::record::AppPreview;
use crate::domain::RepoUrl;
use crate::event::{EventSource, PullRequestEvent, PushEvent, RefUpdate};
use crate::store::Application;
use crate::store::application::ApplicationSource;
use crate::worker::desired::desired_state;
use crate::worker::reconcile::Context;

/// The commits a preview compares.
#[derive(Debug, Clone, PartialEq)]
pub struct Commits {
    pub head: String,
    pub base: String,
}

/// The apps whose source repository and target revision the PR's base branch feeds: the
/// router's matching, as a push to the base branch would route.
pub async fn affected(ctx: &Context, event: &PullRequestEvent) -> Vec<std::sync::Arc<Application>> {
    let apps: Vec<_> = ctx
        .store
        .list()
        .into_iter()
        .filter(|a| ctx.tenancy.honours(a).is_ok())
        .collect();
    let push = PushEvent {
        v: crate::event::PUSH_EVENT_VERSION,
        id: event.id.clone(),
        source: event.source.clone(),
        delivery: event.delivery.clone(),
        received_at: event.received_at.clone(),
        repo_urls: event.repo_urls.clone(),
        refs: vec![RefUpdate {
            name: format!("refs/heads/{}", event.base_ref),
            before: None,
            after: None,
            created: false,
            deleted: false,
            forced: false,
        }],
        changed_files: event.changed_files.clone(),
        default_branch: None,
        pusher: None,
    };
    let mut keys: Vec<String> = crate::router::route(&push, apps.iter().map(|a| a.as_ref()))
        .into_iter()
        .map(|job| job.app.to_string())
        .collect();
    // An app that tracks HEAD follows the default branch, which a PR event does not name: it
    // counts when the repository's HEAD is the base branch's commit (asked once per URL).
    let mut head_is_base: std::collections::HashMap<String, bool> = Default::default();
    for app in &apps {
        let key = app.key().to_string();
        if keys.contains(&key) {
            continue;
        }
        for source in app.all_sources() {
            let tracks_head = source
                .target_revision
                .as_deref()
                .is_none_or(|r| r.is_empty() || r == "HEAD");
            if !tracks_head || !same_repo(&source.repo_url, &event.repo_urls) {
                continue;
            }
            let feeds = match head_is_base.get(&source.repo_url) {
                Some(known) => *known,
                None => {
                    let (head, base) = tokio::join!(
                        ctx.manifests.resolve(&source.repo_url, "HEAD"),
                        ctx.manifests.resolve(&source.repo_url, &event.base_ref)
                    );
                    let feeds = matches!((head, base), (Ok(h), Ok(b)) if h == b);
                    head_is_base.insert(source.repo_url.clone(), feeds);
                    feeds
                }
            };
            if feeds {
                keys.push(key.clone());
                break;
            }
        }
    }
    apps.into_iter()
        .filter(|a| keys.contains(&a.key().to_string()))
        .collect()
}

/// Whether `url` names one of the repositories in `urls`.
pub fn same_repo(url: &str, urls: &[String]) -> bool {
    let Ok(url) = RepoUrl::parse(url) else {
        return false;
    };
    urls.iter()
        .filter_map(|u| RepoUrl::parse(u).ok())
        .any(|u| u.same_repo(&url))
}

/// The ref under which the host keeps a PR's head in the base repository, where it has one:
/// how a fork's commits are fetched without ever asking the fork.
fn pull_ref(source: &EventSource, number: u64) -> Option<String> {
    match source {
        EventSource::Github | EventSource::Gitea | EventSource::Gogs => {
            Some(format!("refs/pull/{number}/head"))
        }
        EventSource::Gitlab => Some(format!("refs/merge-requests/{number}/head")),
        EventSource::BitbucketServer => Some(format!("refs/pull-requests/{number}/from")),
        _ => None,
    }
}

/// Resolves the PR's head and base commits in the base repository `url` (with its credentials;
/// never the fork's URL). The head is checked against the event's head SHA (a prefix, for
/// hosts that send short ones).
pub async fn commits(
    ctx: &Context,
    url: &str,
    event: &PullRequestEvent,
) -> Result<Commits, String> {
    let want = event.head_sha.to_ascii_lowercase();
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    if let (true, Some(branch)) = (event.head_repo_urls.is_empty(), &event.head_ref) {
        candidates.push(format!("refs/heads/{branch}"));
    }
    candidates.extend(pull_ref(&event.source, event.number));
    if want.len() == 40 || want.len() == 64 {
        candidates.push(want.clone());
    }
    let mut head = None;
    for candidate in candidates {
        match ctx.manifests.resolve(url, &candidate).await {
            Ok(commit) if commit.starts_with(&want) => {
                head = Some(commit);
                break;
            }
            Ok(commit) => tried.push(format!("{candidate} is at {}", short(&commit))),
            Err(e) => tried.push(format!("{candidate}: {e}")),
        }
    }
    let head = head.ok_or_else(|| {
        format!(
            "the pull request's head commit {} cannot be fetched from {} ({})",
            short(&want),
            crate::git::redact_url(url),
            tried.join("; ")
        )
    })?;
    let base_rev = event
        .base_sha
        .clone()
        .unwrap_or_else(|| format!("refs/heads/{}", event.base_ref));
    let base = match ctx.manifests.resolve(url, &base_rev).await {
        Ok(b) => b,
        // A base SHA the host names may be gone after a force-push; the branch is the base then.
        Err(_) if event.base_sha.is_some() => ctx
            .manifests
            .resolve(url, &format!("refs/heads/{}", event.base_ref))
            .await
            .map_err(|e| format!("the base branch {} cannot be read: {e}", event.base_ref))?,
        Err(e) => {
            return Err(format!(
                "the base branch {} cannot be read: {e}",
                event.base_ref
            ));
        }
    };
    Ok(Commits { head, base })
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// The app's sources with every source of the PR's repository pinned to `commit`.
fn pinned(app: &Application, repo_urls: &[String], commit: &str) -> Vec<ApplicationSource> {
    app.all_sources()
        .into_iter()
        .cloned()
        .map(|mut s| {
            let helm_repo = s.chart.as_deref().is_some_and(|c| !c.is_empty());
            if !helm_repo && same_repo(&s.repo_url, repo_urls) {
                s.target_revision = Some(commit.to_owned());
            }
            s
        })
        .collect()
}

/// `Kind/namespace/name` (or `Kind/name` for cluster-scoped objects).
fn object_name(obj: &Value) -> String {
    let text = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
    let ns = text("/metadata/namespace");
    let name = text("/metadata/name");
    if ns.is_empty() {
        format!("{}/{name}", text("/kind"))
    } else {
        format!("{}/{ns}/{name}", text("/kind"))
    }
}

/// Objects by `group/kind/namespace/name`, so head and base pair up.
fn by_identity(objects: &[Value]) -> BTreeMap<String, &Value> {
    objects
        .iter()
        .map(|o| {
            let group = o
                .get("apiVersion")
                .and_then(Value::as_str)
                .and_then(|v| v.split_once('/'))
                .map_or("", |(g, _)| g);
            (format!("{group}/{}", object_name(o)), o)
        })
        .collect()
}

/// Head against base: (added, changed, removed, unified diff with Secrets masked).
pub fn compare_renders(
    base: &[Value],
    head: &[Value],
) -> (Vec<String>, Vec<String>, Vec<String>, String) {
    let (base, head) = (by_identity(base), by_identity(head));
    let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    let mut diff = String::new();
    let keys: std::collections::BTreeSet<&String> = base.keys().chain(head.keys()).collect();
    for key in keys {
        let (old, new) = (base.get(key).copied(), head.get(key).copied());
        let name = object_name(new.or(old).unwrap_or(&Value::Null));
        let (mut old, mut new) = (
            old.cloned().unwrap_or(Value::Null),
            new.cloned().unwrap_or(Value::Null),
        );
        if old == new {
            continue;
        }
        crate::diff::mask_secrets(&mut old, &mut new);
        let text = crate::diff::unified_between(
            ((!old.is_null()).then_some(&old), "base"),
            ((!new.is_null()).then_some(&new), "head"),
        );
        match (old.is_null(), new.is_null()) {
            (true, _) => added.push(name.clone()),
            (_, true) => removed.push(name.clone()),
            _ => changed.push(name.clone()),
        }
        diff.push_str(&format!("# {name}\n{text}"));
        if !diff.ends_with('\n') {
            diff.push('\n');
        }
    }
    (added, changed, removed, diff)
}

/// The preview of one app: renders at both commits, then the head against the cluster.
pub async fn preview_app(
    ctx: &Context,
    app: &Application,
    event: &PullRequestEvent,
    commits: &Commits,
) -> AppPreview {
    let dest = &app.spec.destination;
    let mut out = AppPreview {
        app: app.key().to_string(),
        project: app.spec.project.clone(),
        destination: format!(
            "{}/{}",
            dest.name
                .as_deref()
                .or(dest.server.as_deref())
                .unwrap_or(""),
            dest.namespace.as_deref().unwrap_or("")
        ),
        error: None,
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
        cluster_changes: Vec::new(),
        diff: String::new(),
        diff_truncated: false,
    };
    let target = match ctx
        .clusters
        .resolve(dest.server.as_deref(), dest.name.as_deref())
        .await
    {
        Ok(t) => t,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    let head_sources = pinned(app, &event.repo_urls, &commits.head);
    let base_sources = pinned(app, &event.repo_urls, &commits.base);
    let head = match desired_state(
        ctx,
        &target,
        app,
        &head_sources.iter().collect::<Vec<_>>(),
        false,
    )
    .await
    {
        Ok(d) => d,
        Err(f) => {
            out.error = Some(format!("{}: {}", f.condition, f.message));
            return out;
        }
    };
    // A base that does not render (a broken branch) compares as empty: everything is new.
    let base_objects = desired_state(
        ctx,
        &target,
        app,
        &base_sources.iter().collect::<Vec<_>>(),
        false,
    )
    .await
    .map(|d| d.resources)
    .unwrap_or_default();
    let (added, changed, removed, diff) = compare_renders(&base_objects, &head.resources);
    out.added = added;
    out.changed = changed;
    out.removed = removed;
    out.diff = diff;
    let inventory: Vec<crate::cluster::ResourceKey> = app
        .status
        .as_ref()
        .map(|s| {
            s.resources
                .iter()
                .map(crate::worker::desired::resource_key)
                .collect()
        })
        .unwrap_or_default();
    let rules = match crate::worker::reconcile::ignore_rules(app) {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    match crate::sync::compare(
        &target.cluster,
        &target.cache,
        &app.key().to_string(),
        &head.resources,
        &inventory,
        &target.verdicts,
        &rules,
    )
    .await
    {
        Ok(compared) => {
            out.cluster_changes = compared
                .iter()
                .filter(|c| !c.in_sync())
                .map(|c| {
                    let name = object_name(
                        c.desired
                            .as_ref()
                            .or(c.live.as_ref())
                            .unwrap_or(&Value::Null),
                    );
                    if c.requires_pruning {
                        format!("{name} (pruned)")
                    } else if c.live.is_none() {
                        format!("{name} (created)")
                    } else {
                        name
                    }
                })
                .collect();
        }
        Err(e) => out.error = Some(format!("cannot compare with the cluster: {e}")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    #[test]
    fn a_changed_image_is_one_changed_object_with_its_lines_in_the_diff() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "shop"}, "data": {"password": "aHVudGVyMg=="}});
        let mut secret2 = secret.clone();
        secret2["data"]["password"] = json!("c2VjcmV0Mg==");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": "shop"}});
        let gone = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "old", "namespace": "shop"}});
        let (added, changed, removed, diff) = compare_renders(
            &[deployment("web:1"), secret, gone],
            &[deployment("web:2"), secret2, cm],
        );
        assert_eq!(added, ["ConfigMap/shop/new"]);
        assert_eq!(changed, ["Secret/shop/db", "Deployment/shop/web"]);
        assert_eq!(removed, ["Service/shop/old"]);
        assert!(
            diff.contains("-          image: web:1") || diff.contains("- image: web:1"),
            "{diff}"
        );
        assert!(diff.contains("web:2"), "{diff}");
        assert!(
            diff.contains("--- base") && diff.contains("+++ head"),
            "{diff}"
        );
        // Secret values never show, not even base64-encoded.
        assert!(
            !diff.contains("aHVudGVyMg==") && !diff.contains("c2VjcmV0Mg=="),
            "{diff}"
        );
    }

    #[test]
    fn identical_renders_change_nothing() {
        let (a, c, r, d) = compare_renders(&[deployment("x")], &[deployment("x")]);
        assert!(a.is_empty() && c.is_empty() && r.is_empty() && d.is_empty());
    }

    #[test]
    fn repositories_match_in_any_spelling() {
        let urls = vec!["https://github.com/Org/Repo.git".to_owned()];
        assert!(same_repo("git@github.com:Org/Repo", &urls));
        assert!(!same_repo("https://github.com/org/other", &urls));
    }
}
