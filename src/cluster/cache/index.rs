//! The cached objects of one cluster, indexed by object and by app, and the writes Capstan made
//! itself so that their watch events do not come back as drift. No I/O: the watch tasks feed it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::cluster::resource::{ObjectId, ResourceKey, tracking_id_of};

/// One cached object and the app its tracking annotation names. The object is kept as its JSON
/// text: a parsed `Value` of small maps takes about ten times the memory, and a worker may hold
/// hundreds of thousands of objects; reads parse what they need.
struct Cached {
    json: Arc<[u8]>,
    rv: Option<Box<str>>,
    app: Option<Arc<str>>,
}

impl Cached {
    fn value(&self) -> Option<Arc<Value>> {
        serde_json::from_slice(&self.json).ok().map(Arc::new)
    }
}

/// A change Capstan made itself, whose watch event is applied but not notified.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Note {
    /// An apply returned this resourceVersion.
    Written(String),
    /// Capstan deleted the object.
    Deleted,
}

/// What one event did: the apps to notify (distinct) and whether a note silenced it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// App keys whose objects changed, each once.
    pub apps: Vec<String>,
    /// Whether the event was Capstan's own write and so not notified.
    pub suppressed: bool,
}

/// How an event should be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Not at all (the initial list, or the engine's own `update`).
    Silent,
    /// Always (a live watch event).
    Always,
    /// Only when it differs from what the cache held (an item of a relist).
    IfChanged,
}

/// A notification held back while Capstan writes the object.
struct Held {
    rv: Option<String>,
    apps: Vec<String>,
    deletion: bool,
}

/// Writes in flight on one object and what their events would have notified.
#[derive(Default)]
struct InFlight {
    writers: usize,
    held: Vec<Held>,
}

/// How one of Capstan's writes ended.
#[derive(Debug, Clone, Copy)]
pub enum WriteEnd<'a> {
    /// Applied; the object the API server returned.
    Written(&'a Value),
    /// Deleted.
    Deleted,
    /// Failed or abandoned: held events are notified.
    Failed,
}

/// Objects by id, ids by app, and Capstan's own writes.
#[derive(Default)]
pub struct Index {
    objects: HashMap<Arc<ObjectId>, Cached>,
    by_app: HashMap<Arc<str>, HashSet<Arc<ObjectId>>>,
    notes: HashMap<ObjectId, Note>,
    in_flight: HashMap<ObjectId, InFlight>,
}

/// The app key in an object's tracking annotation: what precedes the first `:`.
pub fn app_of(obj: &Value) -> Option<&str> {
    let id = tracking_id_of(obj)?;
    let app = id.split_once(':').map_or(id, |(app, _)| app);
    (!app.is_empty()).then_some(app)
}

/// The object's group, kind, namespace and name.
pub fn id_of(obj: &Value) -> Option<ObjectId> {
    ResourceKey::of(obj).map(|k| k.object_id())
}

fn rv_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/resourceVersion")?.as_str()
}

/// Whether `rv` is at most `other`; resourceVersions are opaque, so only when both are integers
/// (as every real API server makes them) is there an order; otherwise they are only equal or not.
fn not_newer(rv: Option<&str>, other: Option<&str>) -> bool {
    match (rv, other) {
        (Some(a), Some(b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) => a <= b,
            _ => a == b,
        },
        _ => false,
    }
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

impl Index {
    /// The cached object with this id.
    pub fn get(&self, id: &ObjectId) -> Option<Arc<Value>> {
        self.objects.get(id).and_then(Cached::value)
    }

    /// Every cached object whose tracking annotation names `app`.
    pub fn objects_of(&self, app: &str) -> Vec<Arc<Value>> {
        let Some(ids) = self.by_app.get(app) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| self.objects.get(id).and_then(Cached::value))
            .collect()
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Records the resourceVersion one of Capstan's applies returned.
    pub fn note_written(&mut self, obj: &Value) {
        let (Some(id), Some(rv)) = (id_of(obj), rv_of(obj)) else {
            return;
        };
        // Two applies can return out of order; the newer one covers both.
        if let Some(Note::Written(old)) = self.notes.get(&id)
            && not_newer(Some(rv), Some(old))
        {
            return;
        }
        self.notes.insert(id, Note::Written(rv.to_owned()));
    }

    /// Records that Capstan deleted the object.
    pub fn note_deleted(&mut self, id: &ObjectId) {
        self.notes.insert(id.clone(), Note::Deleted);
    }

    /// Whether a note says Capstan caused this event; drops notes a newer event outdated.
    fn own_change(&mut self, id: &ObjectId, obj: &Value, deleted: bool) -> bool {
        let rv = rv_of(obj);
        match self.notes.get(id) {
            None => false,
            Some(Note::Written(noted)) => {
                if not_newer(rv, Some(noted)) {
                    true
                } else {
                    // Later than our write: someone else's, and the note is spent.
                    self.notes.remove(id);
                    false
                }
            }
            Some(Note::Deleted) => {
                if deleted {
                    self.notes.remove(id);
                    true
                } else if is_deleting(obj) {
                    // Foreground deletion first marks the object and removes finalizers.
                    true
                } else {
                    // Created again: the deletion event came before the note did.
                    self.notes.remove(id);
                    false
                }
            }
        }
    }

    /// An added or modified object. The cache keeps whichever resourceVersion is higher, so a
    /// late watch event does not roll back what `update` put in.
    pub fn apply(&mut self, obj: Value, report: Report) -> Outcome {
        let Some(id) = id_of(&obj) else {
            return Outcome::default();
        };
        let prev = self.objects.get(&id);
        let prev_rv = prev.and_then(|c| c.rv.as_deref()).map(str::to_owned);
        let prev_app = prev.and_then(|c| c.app.clone());
        let changed = prev_rv.as_deref() != rv_of(&obj) || prev.is_none();
        let own = report != Report::Silent && self.own_change(&id, &obj, false);
        let new_app = app_of(&obj).map(str::to_owned);
        let event_rv = rv_of(&obj).map(str::to_owned);
        if !not_newer(rv_of(&obj), prev_rv.as_deref()) || prev_rv.is_none() {
            self.insert(&id, obj);
        }
        let notify = match report {
            Report::Silent => false,
            Report::Always => true,
            Report::IfChanged => changed,
        };
        let out = self.outcome(notify, own, new_app.as_deref(), prev_app.as_deref());
        self.hold_if_writing(&id, event_rv, false, out)
    }

    /// A deleted object; ignored when the cache already holds a newer one (recreated since).
    pub fn delete(&mut self, obj: &Value, report: Report) -> Outcome {
        let Some(id) = id_of(obj) else {
            return Outcome::default();
        };
        let own = report != Report::Silent && self.own_change(&id, obj, true);
        let cached_rv = self
            .objects
            .get(&id)
            .and_then(|c| c.rv.as_deref())
            .map(str::to_owned);
        let mut prev_app = None;
        let stale = cached_rv.is_some()
            && not_newer(rv_of(obj), cached_rv.as_deref())
            && rv_of(obj) != cached_rv.as_deref();
        if !stale {
            prev_app = self.take(&id);
        }
        let out = self.outcome(
            report != Report::Silent,
            own,
            app_of(obj),
            prev_app.as_deref(),
        );
        self.hold_if_writing(&id, rv_of(obj).map(str::to_owned), true, out)
    }

    /// Puts the engine's own apply result in at once, silently.
    pub fn update(&mut self, obj: Value) {
        self.apply(obj, Report::Silent);
    }

    /// Takes an object out at once, silently.
    pub fn remove(&mut self, id: &ObjectId) {
        self.take(id);
    }

    /// Ends a relist of `group`/`kind`: objects not listed again are gone. Returns their apps.
    pub fn retain_listed(
        &mut self,
        group: &str,
        kind: &str,
        listed: &HashSet<ObjectId>,
        report: Report,
    ) -> Outcome {
        let gone: Vec<Arc<ObjectId>> = self
            .objects
            .keys()
            .filter(|id| id.0 == group && id.1 == kind && !listed.contains(id.as_ref()))
            .cloned()
            .collect();
        let mut out = Outcome::default();
        for id in gone {
            if let Some(app) = self.take(&id)
                && report != Report::Silent
                && !out.apps.iter().any(|a| a.as_str() == &*app)
            {
                out.apps.push(app.to_string());
            }
        }
        out
    }

    /// Marks a write of Capstan's in flight: events of the object are held back until
    /// [`Index::end_write`], since the apply's answer (and so the note) may come after its event.
    pub fn begin_write(&mut self, id: &ObjectId) {
        self.in_flight.entry(id.clone()).or_default().writers += 1;
    }

    /// Ends a write begun with [`Index::begin_write`]: `Written` notes the apply's result,
    /// `Deleted` the deletion, `Failed` nothing. Returns the held notifications that were not
    /// Capstan's own, once the last write in flight on the object ends.
    pub fn end_write(&mut self, id: &ObjectId, end: WriteEnd<'_>) -> Outcome {
        let mut deleted_seen = false;
        let mut out = Outcome::default();
        let done = match self.in_flight.get_mut(id) {
            Some(f) => {
                f.writers = f.writers.saturating_sub(1);
                f.writers == 0
            }
            None => false,
        };
        let held = if done {
            self.in_flight
                .remove(id)
                .map(|f| f.held)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        if let WriteEnd::Written(obj) = end {
            self.note_written(obj);
        }
        for h in held {
            deleted_seen |= h.deletion;
            let own = match (&end, self.notes.get(id)) {
                (WriteEnd::Deleted, _) => true,
                (WriteEnd::Written(_), Some(Note::Written(noted))) => {
                    not_newer(h.rv.as_deref(), Some(noted))
                }
                _ => false,
            };
            if own {
                out.suppressed = true;
            } else {
                for app in h.apps {
                    if !out.apps.contains(&app) {
                        out.apps.push(app);
                    }
                }
            }
        }
        // A deletion already seen needs no note; one left behind would silence a later one.
        if matches!(end, WriteEnd::Deleted) && !deleted_seen {
            self.note_deleted(id);
        }
        out
    }

    fn hold_if_writing(
        &mut self,
        id: &ObjectId,
        rv: Option<String>,
        deletion: bool,
        out: Outcome,
    ) -> Outcome {
        match self.in_flight.get_mut(id) {
            Some(f) if !out.apps.is_empty() => {
                f.held.push(Held {
                    rv,
                    apps: out.apps,
                    deletion,
                });
                Outcome {
                    apps: Vec::new(),
                    suppressed: out.suppressed,
                }
            }
            _ => out,
        }
    }

    fn outcome(
        &self,
        notify: bool,
        own: bool,
        app: Option<&str>,
        prev_app: Option<&str>,
    ) -> Outcome {
        if !notify {
            return Outcome::default();
        }
        if own {
            return Outcome {
                apps: Vec::new(),
                suppressed: true,
            };
        }
        let mut apps: Vec<String> = app.into_iter().map(str::to_owned).collect();
        // An object moved to another app changed both.
        if let Some(prev) = prev_app
            && app != Some(prev)
        {
            apps.push(prev.to_owned());
        }
        Outcome {
            apps,
            suppressed: false,
        }
    }

    fn insert(&mut self, id: &ObjectId, obj: Value) {
        let app: Option<Arc<str>> = app_of(&obj).map(Arc::from);
        let id = match self.objects.get_key_value(id) {
            Some((key, _)) => key.clone(),
            None => Arc::new(id.clone()),
        };
        let old = self.objects.insert(
            id.clone(),
            Cached {
                json: serde_json::to_vec(&obj).unwrap_or_default().into(),
                rv: rv_of(&obj).map(Box::from),
                app: app.clone(),
            },
        );
        let old_app = old.and_then(|c| c.app);
        if old_app != app {
            if let Some(old_app) = old_app {
                self.unlink(&old_app, &id);
            }
            if let Some(app) = app {
                self.by_app.entry(app).or_default().insert(id);
            }
        }
    }

    /// Removes an object; returns the app it belonged to.
    fn take(&mut self, id: &ObjectId) -> Option<Arc<str>> {
        let (key, cached) = self.objects.remove_entry(id)?;
        let app = cached.app?;
        self.unlink(&app, &key);
        Some(app)
    }

    fn unlink(&mut self, app: &str, id: &ObjectId) {
        if let Some(ids) = self.by_app.get_mut(app) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_app.remove(app);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(name: &str, app: Option<&str>, rv: &str, data: &str) -> Value {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "d", "resourceVersion": rv},
            "data": {"v": data}});
        if let Some(app) = app {
            obj["metadata"]["annotations"] = json!({
                "capstan.dev/tracking-id": format!("{app}:/ConfigMap:d/{name}")});
        }
        obj
    }

    fn id(name: &str) -> ObjectId {
        ("".into(), "ConfigMap".into(), "d".into(), name.into())
    }

    fn data(index: &Index, name: &str) -> Option<String> {
        index
            .get(&id(name))
            .and_then(|o| o["data"]["v"].as_str().map(str::to_owned))
    }

    #[test]
    fn objects_are_found_by_app_and_move_when_the_annotation_changes() {
        let mut index = Index::default();
        index.apply(cm("a", Some("x/one"), "1", "a"), Report::Silent);
        index.apply(cm("b", Some("x/one"), "2", "b"), Report::Silent);
        index.apply(cm("c", Some("x/two"), "3", "c"), Report::Silent);
        assert_eq!(index.objects_of("x/one").len(), 2);
        let moved = index.apply(cm("b", Some("x/two"), "4", "b"), Report::Always);
        assert_eq!(moved.apps, ["x/two", "x/one"]);
        assert_eq!(index.objects_of("x/one").len(), 1);
        assert_eq!(index.objects_of("x/two").len(), 2);
        let gone = index.delete(&cm("a", Some("x/one"), "5", "a"), Report::Always);
        assert_eq!(gone.apps, ["x/one"]);
        assert!(index.objects_of("x/one").is_empty());
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn a_late_watch_event_does_not_roll_back_an_update() {
        let mut index = Index::default();
        index.update(cm("a", Some("x/one"), "10", "mine"));
        index.apply(cm("a", Some("x/one"), "9", "older"), Report::Always);
        assert_eq!(data(&index, "a").as_deref(), Some("mine"));
        index.apply(cm("a", Some("x/one"), "11", "newer"), Report::Always);
        assert_eq!(data(&index, "a").as_deref(), Some("newer"));
        // Not integers: the last write wins.
        index.apply(cm("a", Some("x/one"), "abc", "opaque"), Report::Always);
        assert_eq!(data(&index, "a").as_deref(), Some("opaque"));
        // A deletion older than what the cache holds was followed by a re-creation.
        index.update(cm("b", Some("x/one"), "20", "recreated"));
        index.delete(&cm("b", Some("x/one"), "15", "old"), Report::Always);
        assert_eq!(data(&index, "b").as_deref(), Some("recreated"));
    }

    #[test]
    fn own_writes_are_silent_until_someone_else_writes() {
        let mut index = Index::default();
        index.apply(cm("a", Some("x/one"), "1", "a"), Report::Silent);
        index.note_written(&cm("a", Some("x/one"), "5", "ours"));
        let own = index.apply(cm("a", Some("x/one"), "5", "ours"), Report::Always);
        assert!(own.suppressed && own.apps.is_empty(), "{own:?}");
        let theirs = index.apply(cm("a", Some("x/one"), "6", "theirs"), Report::Always);
        assert_eq!(theirs.apps, ["x/one"]);
        assert!(!theirs.suppressed);
        index.note_deleted(&id("a"));
        let deleted = index.delete(&cm("a", Some("x/one"), "7", "theirs"), Report::Always);
        assert!(deleted.suppressed, "{deleted:?}");
        assert!(index.get(&id("a")).is_none());
    }

    #[test]
    fn events_during_a_write_are_held_until_its_answer_is_noted() {
        let mut index = Index::default();
        index.apply(cm("a", Some("x/one"), "1", "a"), Report::Silent);
        index.begin_write(&id("a"));
        // The watch delivers our write before the apply call returns.
        let early = index.apply(cm("a", Some("x/one"), "5", "ours"), Report::Always);
        assert!(early.apps.is_empty());
        let end = index.end_write(
            &id("a"),
            WriteEnd::Written(&cm("a", Some("x/one"), "5", "ours")),
        );
        assert!(end.apps.is_empty() && end.suppressed, "{end:?}");
        // Someone else's change during a write is still reported when the write ends.
        index.begin_write(&id("a"));
        index.apply(cm("a", Some("x/one"), "6", "ours"), Report::Always);
        index.apply(cm("a", Some("x/one"), "7", "theirs"), Report::Always);
        let end = index.end_write(
            &id("a"),
            WriteEnd::Written(&cm("a", Some("x/one"), "6", "ours")),
        );
        assert_eq!(end.apps, ["x/one"]);
        // A deletion seen during the write leaves no note behind.
        index.begin_write(&id("a"));
        index.delete(&cm("a", Some("x/one"), "8", "theirs"), Report::Always);
        let end = index.end_write(&id("a"), WriteEnd::Deleted);
        assert!(end.apps.is_empty());
        index.apply(cm("a", Some("x/one"), "9", "new"), Report::Always);
        let later = index.delete(&cm("a", Some("x/one"), "10", "new"), Report::Always);
        assert_eq!(later.apps, ["x/one"]);
        // A failed write releases what it held.
        index.begin_write(&id("b"));
        index.apply(cm("b", Some("x/two"), "11", "b"), Report::Always);
        assert_eq!(index.end_write(&id("b"), WriteEnd::Failed).apps, ["x/two"]);
    }

    #[test]
    fn a_relist_removes_what_was_not_listed_and_reports_only_differences() {
        let mut index = Index::default();
        index.apply(cm("a", Some("x/one"), "1", "a"), Report::Silent);
        index.apply(cm("b", Some("x/two"), "2", "b"), Report::Silent);
        index.apply(cm("c", Some("x/three"), "3", "c"), Report::Silent);
        let same = index.apply(cm("a", Some("x/one"), "1", "a"), Report::IfChanged);
        assert!(same.apps.is_empty());
        let changed = index.apply(cm("b", Some("x/two"), "8", "b2"), Report::IfChanged);
        assert_eq!(changed.apps, ["x/two"]);
        let listed: HashSet<ObjectId> = [id("a"), id("b")].into_iter().collect();
        let gone = index.retain_listed("", "ConfigMap", &listed, Report::IfChanged);
        assert_eq!(gone.apps, ["x/three"]);
        assert!(index.get(&id("c")).is_none());
        assert!(index.objects_of("x/three").is_empty());
    }

    #[test]
    fn unlabeled_or_malformed_objects_notify_nobody() {
        let mut index = Index::default();
        let out = index.apply(cm("plain", None, "1", "p"), Report::Always);
        assert!(out.apps.is_empty());
        let out = index.apply(json!({"metadata": {"name": "x"}}), Report::Always);
        assert_eq!(out, Outcome::default());
        assert_eq!(index.len(), 1);
    }
}
