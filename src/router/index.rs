//! `RouteIndex`: Applications indexed by repository and watched path, so routing one push costs
//! in proportion to the apps it can affect, not to every app there is.
//!
//! Each Application source becomes one entry under its repository's canonical key, holding the
//! parsed target revision and watched paths. Inside a repository, entries hang in a tree of path
//! segments at the directory each watched path sits under; a changed file walks the tree along
//! its own segments and meets exactly the entries whose paths could contain it.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::domain::AppKey;
use crate::event::{PushEvent, is_null_sha};
use crate::store::Application;

use super::paths::{self, MANIFEST_GENERATE_PATHS, WatchedPaths};
use super::repo_url;
use super::revision::{PushedRef, TargetRevision};

/// One Application a push affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The affected Application.
    pub app: AppKey,
    /// The commit the matching ref moved to, when the event says and the ref still exists.
    pub revision: Option<String>,
}

/// Applications by repository, target revision and watched paths; see the module docs.
#[derive(Debug, Default)]
pub struct RouteIndex {
    /// Slots of entries; a removed entry leaves `None` for reuse.
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    repos: HashMap<String, RepoRoutes>,
    apps: HashMap<AppKey, IndexedApp>,
    /// Bumped by every `sync`, to find apps it did not see.
    sync_round: u64,
}

/// One source of one Application.
#[derive(Debug)]
struct Entry {
    app: AppKey,
    repo: String,
    revision: TargetRevision,
    paths: WatchedPaths,
}

/// What the index holds for one Application.
#[derive(Debug)]
struct IndexedApp {
    /// A hash of the fields routing reads; an app whose hash is unchanged is not re-indexed.
    fingerprint: u64,
    entries: Vec<usize>,
    seen_in_round: u64,
}

/// The entries of one repository.
#[derive(Debug, Default)]
struct RepoRoutes {
    all: HashSet<usize>,
    tree: PathNode,
}

/// A directory in the tree of watched paths.
#[derive(Debug, Default)]
struct PathNode {
    /// Entries with a watched path anchored at this directory.
    here: HashSet<usize>,
    children: HashMap<Box<str>, PathNode>,
}

impl RouteIndex {
    /// An index of `apps`.
    pub fn build<'a>(apps: impl IntoIterator<Item = &'a Application>) -> RouteIndex {
        let mut index = RouteIndex::default();
        index.sync(apps);
        index
    }

    /// The number of Applications indexed, including those whose sources name no usable repository.
    pub fn len(&self) -> usize {
        self.apps.len()
    }

    /// Whether no Application is indexed.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// Makes the index describe exactly `apps`: new and changed apps are (re-)indexed, apps
    /// missing from `apps` are dropped, unchanged ones cost a hash each.
    pub fn sync<'a>(&mut self, apps: impl IntoIterator<Item = &'a Application>) {
        self.sync_round += 1;
        // Most apps of a monorepo share one repoURL: parse each spelling once per sync.
        let mut repo_keys = HashMap::new();
        for app in apps {
            self.upsert_with(app, &mut repo_keys);
        }
        let round = self.sync_round;
        let gone: Vec<AppKey> = self
            .apps
            .iter()
            .filter(|(_, indexed)| indexed.seen_in_round != round)
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }

    /// Indexes a new Application or re-indexes a changed one; status-only changes do nothing.
    pub fn upsert(&mut self, app: &Application) {
        self.upsert_with(app, &mut HashMap::new());
    }

    /// `upsert`, with canonical repository keys looked up in (and added to) `repo_keys`.
    fn upsert_with(&mut self, app: &Application, repo_keys: &mut HashMap<String, Option<String>>) {
        let key = app.key();
        let fingerprint = fingerprint(app);
        let round = self.sync_round;
        if let Some(indexed) = self.apps.get_mut(&key)
            && indexed.fingerprint == fingerprint
        {
            indexed.seen_in_round = round;
            return;
        }
        self.remove(&key);
        let annotation = app
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(MANIFEST_GENERATE_PATHS))
            .map(String::as_str);
        let mut ids = Vec::new();
        for source in app.all_sources() {
            // An unusable repoURL can match no push; the worker reports it on the app.
            let repo = match repo_keys.get(&source.repo_url) {
                Some(repo) => repo.clone(),
                None => {
                    let repo = repo_url::canonical(&source.repo_url);
                    repo_keys.insert(source.repo_url.clone(), repo.clone());
                    repo
                }
            };
            let Some(repo) = repo else {
                continue;
            };
            let entry = Entry {
                app: key.clone(),
                repo,
                revision: TargetRevision::parse(source.target_revision.as_deref()),
                paths: WatchedPaths::for_source(
                    source.path.as_deref(),
                    annotation,
                    render_inputs(app, &source.repo_url),
                ),
            };
            ids.push(self.insert(entry));
        }
        self.apps.insert(
            key,
            IndexedApp {
                fingerprint,
                entries: ids,
                seen_in_round: round,
            },
        );
    }

    /// Drops an Application from the index.
    pub fn remove(&mut self, key: &AppKey) {
        let Some(indexed) = self.apps.remove(key) else {
            return;
        };
        for id in indexed.entries {
            let Some(entry) = self.entries.get_mut(id).and_then(Option::take) else {
                continue;
            };
            self.free.push(id);
            if let Some(routes) = self.repos.get_mut(&entry.repo) {
                routes.all.remove(&id);
                for anchor in entry.paths.anchors() {
                    routes.tree.remove(segments(anchor), id);
                }
                if routes.all.is_empty() {
                    self.repos.remove(&entry.repo);
                }
            }
        }
    }

    /// The Applications `event` affects, each once, sorted by key.
    pub fn route(&self, event: &PushEvent) -> Vec<RouteMatch> {
        let mut repos: Vec<String> = event
            .repo_urls
            .iter()
            .filter_map(|url| repo_url::canonical(url))
            .collect();
        repos.sort();
        repos.dedup();
        let routes: Vec<&RepoRoutes> = repos.iter().filter_map(|r| self.repos.get(r)).collect();
        if routes.is_empty() {
            return Vec::new();
        }
        // A path that cannot be cleaned says nothing reliable about the push: all paths count.
        let files: Option<Vec<String>> = event
            .changed_files
            .as_ref()
            .and_then(|files| files.iter().map(|f| paths::clean(f)).collect());
        let default_branch = event.default_branch.as_deref();
        let mut matched: BTreeMap<&AppKey, Option<&String>> = BTreeMap::new();
        for pushed in &event.refs {
            let name = PushedRef::parse(&pushed.name);
            let after = pushed.after.as_ref().filter(|sha| !is_null_sha(Some(sha)));
            // A created, deleted or rewritten ref, or a tag, moved more than its commit list says.
            let known_files = files
                .as_ref()
                .filter(|_| !(pushed.created || pushed.deleted || pushed.forced || name.is_tag()));
            // `files` None: every path counts; otherwise the files that reached the entry.
            let mut consider = |id: usize, files: Option<&[&str]>| {
                let Some(Some(entry)) = self.entries.get(id) else {
                    return;
                };
                if matched.contains_key(&entry.app)
                    || !entry.revision.matches(name, default_branch)
                    || files.is_some_and(|fs| !fs.iter().any(|f| entry.paths.matches(f)))
                {
                    return;
                }
                matched.insert(&entry.app, after);
            };
            for routes in &routes {
                match known_files {
                    None => routes.all.iter().for_each(|&id| consider(id, None)),
                    Some(files) => {
                        for (node, reached) in routes.tree.reached_by(files) {
                            node.here
                                .iter()
                                .for_each(|&id| consider(id, Some(&reached)));
                        }
                    }
                }
            }
        }
        matched
            .into_iter()
            .map(|(app, revision)| RouteMatch {
                app: app.clone(),
                revision: revision.cloned(),
            })
            .collect()
    }

    fn insert(&mut self, entry: Entry) -> usize {
        let id = self.free.pop().unwrap_or(self.entries.len());
        let routes = self.repos.entry(entry.repo.clone()).or_default();
        routes.all.insert(id);
        for anchor in entry.paths.anchors() {
            routes.tree.insert(segments(anchor), id);
        }
        if let Some(slot) = self.entries.get_mut(id) {
            *slot = Some(entry);
        } else {
            self.entries.push(Some(entry));
        }
        id
    }
}

impl PathNode {
    fn insert<'a>(&mut self, mut path: impl Iterator<Item = &'a str>, id: usize) {
        match path.next() {
            None => {
                self.here.insert(id);
            }
            Some(segment) => self
                .children
                .entry(segment.into())
                .or_default()
                .insert(path, id),
        }
    }

    /// Removes `id` at `path`, pruning directories left empty.
    fn remove<'a>(&mut self, mut path: impl Iterator<Item = &'a str>, id: usize) {
        match path.next() {
            None => {
                self.here.remove(&id);
            }
            Some(segment) => {
                if let Some(child) = self.children.get_mut(segment) {
                    child.remove(path, id);
                    if child.here.is_empty() && child.children.is_empty() {
                        self.children.remove(segment);
                    }
                }
            }
        }
    }

    /// The directories holding entries that `files` lie in, each once, with the files that
    /// reached it: an entry watching the root is checked once per push, not once per file.
    fn reached_by<'t, 'f>(&'t self, files: &'f [String]) -> Vec<(&'t PathNode, Vec<&'f str>)> {
        let mut reached: Vec<(&PathNode, Vec<&str>)> = Vec::new();
        let mut slots: HashMap<*const PathNode, usize> = HashMap::new();
        for file in files.iter().filter(|f| !f.is_empty()) {
            let mut node = self;
            let mut segments = segments(file);
            loop {
                if !node.here.is_empty() {
                    let slot = *slots.entry(std::ptr::from_ref(node)).or_insert_with(|| {
                        reached.push((node, Vec::new()));
                        reached.len() - 1
                    });
                    if let Some((_, files)) = reached.get_mut(slot) {
                        files.push(file);
                    }
                }
                match segments.next().and_then(|s| node.children.get(s)) {
                    Some(child) => node = child,
                    None => break,
                }
            }
        }
        reached
    }
}

/// The segments of a cleaned path; none for the root.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// A hash of what routing reads from an app: its sources' repository, path and revision, and
/// the annotation. Status, labels and every other field leave it unchanged.
/// The paths the app's last render read in `repo_url`, beyond the source path.
fn render_inputs<'a>(app: &'a Application, repo_url: &str) -> &'a [String] {
    render_inputs_of(app)
        .iter()
        .find(|i| i.repo_url == repo_url)
        .map_or(&[], |i| i.paths.as_slice())
}

fn render_inputs_of(app: &Application) -> &[crate::store::application::RenderInputs] {
    app.status
        .as_ref()
        .map_or(&[], |s| s.render_inputs.as_slice())
}

fn fingerprint(app: &Application) -> u64 {
    let mut hasher = DefaultHasher::new();
    // No status and a status without inputs route alike.
    render_inputs_of(app).hash(&mut hasher);
    for source in app.all_sources() {
        source.repo_url.hash(&mut hasher);
        source.path.hash(&mut hasher);
        source.target_revision.hash(&mut hasher);
    }
    app.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MANIFEST_GENERATE_PATHS))
        .hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventSource, RefUpdate};
    use crate::store::application::{ApplicationSource, ApplicationSpec};

    fn source(repo: &str, rev: &str, path: &str) -> ApplicationSource {
        ApplicationSource {
            repo_url: repo.into(),
            target_revision: Some(rev.into()),
            path: Some(path.into()),
            ..Default::default()
        }
    }

    fn app(name: &str, sources: Vec<ApplicationSource>) -> Application {
        let mut a = Application::new(
            name,
            ApplicationSpec {
                sources,
                ..Default::default()
            },
        );
        a.metadata.namespace = Some("apps".into());
        a
    }

    fn push(name: &str, files: Option<&[&str]>) -> PushEvent {
        PushEvent {
            v: 1,
            id: "e".into(),
            source: EventSource::Github,
            delivery: None,
            received_at: "now".into(),
            repo_urls: vec!["git@github.com:org/mono.git".into()],
            refs: vec![RefUpdate {
                name: name.into(),
                before: Some("b".repeat(40)),
                after: Some("c".repeat(40)),
                created: false,
                deleted: false,
                forced: false,
            }],
            changed_files: files.map(|f| f.iter().map(|s| s.to_string()).collect()),
            default_branch: Some("main".into()),
            pusher: None,
        }
    }

    fn names(index: &RouteIndex, event: &PushEvent) -> Vec<String> {
        index
            .route(event)
            .into_iter()
            .map(|m| m.app.name().to_string())
            .collect()
    }

    const MONO: &str = "https://github.com/org/mono";

    #[test]
    fn a_push_reaches_only_apps_whose_paths_it_touches() {
        let apps: Vec<Application> = (0..50)
            .map(|i| {
                app(
                    &format!("a{i}"),
                    vec![source(MONO, "HEAD", &format!("apps/a{i}"))],
                )
            })
            .collect();
        let index = RouteIndex::build(&apps);
        assert_eq!(index.len(), 50);
        let ev = push(
            "refs/heads/main",
            Some(&["apps/a7/deploy.yaml", "apps/a42/x.yaml"]),
        );
        assert_eq!(names(&index, &ev), ["a42", "a7"]);
        let matches = index.route(&ev);
        assert_eq!(
            matches[0].revision.as_deref(),
            Some("c".repeat(40).as_str())
        );
        assert!(names(&index, &push("refs/heads/dev", Some(&["apps/a7/x"]))).is_empty());
        assert!(names(&index, &push("refs/heads/main", Some(&[]))).is_empty());
        assert!(names(&index, &push("refs/heads/main", Some(&["README.md"]))).is_empty());
        assert_eq!(names(&index, &push("refs/heads/main", None)).len(), 50);
        assert_eq!(
            names(&index, &push("refs/tags/v1", Some(&["apps/a1/x"]))).len(),
            0,
            "HEAD apps ignore tags"
        );
    }

    #[test]
    fn created_deleted_forced_and_tag_pushes_affect_every_app_of_the_ref() {
        let apps = vec![
            app("a", vec![source(MONO, "main", "apps/a")]),
            app("b", vec![source(MONO, "main", "apps/b")]),
            app("t", vec![source(MONO, "^1.0", "apps/t")]),
        ];
        let index = RouteIndex::build(&apps);
        let files: &[&str] = &["apps/a/x.yaml"];
        for flag in ["created", "deleted", "forced"] {
            let mut ev = push("refs/heads/main", Some(files));
            let r = &mut ev.refs[0];
            match flag {
                "created" => r.created = true,
                "deleted" => {
                    r.deleted = true;
                    r.after = Some("0".repeat(40));
                }
                _ => r.forced = true,
            }
            assert_eq!(names(&index, &ev), ["a", "b"], "{flag}");
            if flag == "deleted" {
                assert_eq!(
                    index.route(&ev)[0].revision,
                    None,
                    "a deleted ref has no commit"
                );
            }
        }
        assert_eq!(names(&index, &push("refs/tags/v1.2.0", Some(files))), ["t"]);
    }

    #[test]
    fn multi_source_apps_match_on_any_source_and_get_one_match() {
        let apps = vec![app(
            "multi",
            vec![
                source("https://charts.example.com/helm", "1.0.0", ""),
                source(MONO, "main", "values/prod"),
                source(MONO, "main", "values/common"),
            ],
        )];
        let index = RouteIndex::build(&apps);
        let ev = push(
            "refs/heads/main",
            Some(&["values/common/a.yaml", "values/prod/b.yaml"]),
        );
        assert_eq!(names(&index, &ev), ["multi"]);
        assert!(names(&index, &push("refs/heads/main", Some(&["values/dev/x"]))).is_empty());
    }

    #[test]
    fn the_annotation_is_honoured_and_hostile_paths_mean_unknown() {
        let mut narrowed = app("narrowed", vec![source(MONO, "main", ".")]);
        narrowed.metadata.annotations = Some(
            [(
                MANIFEST_GENERATE_PATHS.to_string(),
                "/apps/n;/lib/*.libsonnet".to_string(),
            )]
            .into(),
        );
        let whole = app("whole", vec![source(MONO, "main", "")]);
        let index = RouteIndex::build([&narrowed, &whole]);
        assert_eq!(names(&index, &push("main", Some(&["apps/x/y"]))), ["whole"]);
        assert_eq!(
            names(&index, &push("main", Some(&["lib/k.libsonnet"]))),
            ["narrowed", "whole"]
        );
        assert_eq!(
            names(&index, &push("main", Some(&["/apps/n/"]))),
            ["narrowed", "whole"]
        );
        let mut top_docs = app("docs", vec![source(MONO, "main", "")]);
        top_docs.metadata.annotations =
            Some([(MANIFEST_GENERATE_PATHS.to_string(), "/*.md".to_string())].into());
        let index = RouteIndex::build([&narrowed, &top_docs]);
        assert!(names(&index, &push("main", Some(&["apps/x/y", "docs/a.md"]))).is_empty());
        assert_eq!(
            names(
                &index,
                &push("main", Some(&["apps/x/y", "README.md", "apps/n/z"]))
            ),
            ["docs", "narrowed"],
            "every file reaching a directory is checked, not only the first"
        );
        let index = RouteIndex::build([&narrowed, &whole]);
        assert_eq!(
            names(&index, &push("main", Some(&["../../etc/passwd"]))),
            ["narrowed", "whole"],
            "a path the index cannot place counts as unknown"
        );
    }

    #[test]
    fn the_index_follows_create_update_and_delete() {
        let a = app("a", vec![source(MONO, "main", "apps/a")]);
        let b = app("b", vec![source(MONO, "main", "apps/b")]);
        let mut index = RouteIndex::build([&a, &b]);
        let touch_a = push("refs/heads/main", Some(&["apps/a/x"]));
        let touch_c = push("refs/heads/main", Some(&["apps/c/x"]));
        assert_eq!(names(&index, &touch_a), ["a"]);

        // Update: a moves to apps/c.
        let moved = app("a", vec![source(MONO, "main", "apps/c")]);
        index.upsert(&moved);
        assert!(names(&index, &touch_a).is_empty());
        assert_eq!(names(&index, &touch_c), ["a"]);

        // Create: c joins through sync; sync also drops b, which is gone.
        let c = app("c", vec![source(MONO, "main", "apps/c")]);
        index.sync([&moved, &c]);
        assert_eq!(index.len(), 2);
        assert_eq!(names(&index, &touch_c), ["a", "c"]);
        assert!(names(&index, &push("refs/heads/main", Some(&["apps/b/x"]))).is_empty());

        // Delete.
        index.remove(&moved.key());
        assert_eq!(names(&index, &touch_c), ["c"]);
        index.remove(&c.key());
        assert!(index.is_empty());
        assert!(
            index.repos.is_empty(),
            "an empty repository leaves nothing behind"
        );
        assert!(names(&index, &push("refs/heads/main", None)).is_empty());

        // Repository change.
        let elsewhere = app(
            "e",
            vec![source("https://github.com/org/other", "main", "")],
        );
        index.upsert(&elsewhere);
        assert!(names(&index, &push("refs/heads/main", None)).is_empty());
        index.upsert(&app("e", vec![source(MONO, "main", "")]));
        assert_eq!(names(&index, &push("refs/heads/main", None)), ["e"]);
    }

    #[test]
    fn only_routing_fields_change_the_fingerprint() {
        let a = app("a", vec![source(MONO, "main", "apps/a")]);
        let before = fingerprint(&a);
        let mut touched = a.clone();
        touched.status = Some(Default::default());
        touched.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        touched.metadata.resource_version = Some("42".into());
        assert_eq!(fingerprint(&touched), before);
        // What the last render read is routing data, though it lives in the status.
        let mut read_more = a.clone();
        read_more.status = Some(crate::store::application::ApplicationStatus {
            render_inputs: vec![crate::store::application::RenderInputs {
                repo_url: MONO.into(),
                paths: vec!["base".into()],
            }],
            ..Default::default()
        });
        assert_ne!(fingerprint(&read_more), before);
        let mut retargeted = a.clone();
        retargeted.spec.sources[0].target_revision = Some("dev".into());
        assert_ne!(fingerprint(&retargeted), before);
        let mut annotated = a.clone();
        annotated.metadata.annotations =
            Some([(MANIFEST_GENERATE_PATHS.to_string(), ".".to_string())].into());
        assert_ne!(fingerprint(&annotated), before);
    }
}
