//! The object store: every object keyed by (group, plural, namespace, name), one global
//! resourceVersion counter, and a bounded event history that watches replay from.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

use super::resources::Catalog;

/// How many past events a watch can resume from before it gets 410 Gone.
pub const HISTORY_LEN: usize = 10_000;

/// (group, plural): the objects of one resource, whatever version they are read at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeKey {
    /// API group.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
}

impl TypeKey {
    /// Builds a key.
    pub fn new(group: &str, plural: &str) -> Self {
        Self {
            group: group.into(),
            plural: plural.into(),
        }
    }
}

/// An object together with its serialized form, so lists do not re-serialize.
#[derive(Debug)]
pub struct Stored {
    /// The object.
    pub value: Value,
    /// `value` as JSON.
    pub json: Bytes,
}

impl Stored {
    /// Wraps and serializes an object.
    pub fn new(value: Value) -> Arc<Self> {
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Arc::new(Self { value, json })
    }
}

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// As the watch protocol spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion this change produced.
    pub rv: u64,
    /// What happened.
    pub ty: EventType,
    /// Which resource.
    pub key: TypeKey,
    /// The object after the change (before it, for deletions, with the new resourceVersion).
    pub obj: Arc<Stored>,
    /// The object before a modification, so filtered watches see objects enter and leave.
    pub prev: Option<Arc<Stored>>,
}

/// Namespace and name of one object ("" namespace for cluster-scoped objects).
pub type ObjName = (String, String);

/// All objects and the bookkeeping around them.
pub struct Store {
    objects: BTreeMap<TypeKey, BTreeMap<ObjName, Arc<Stored>>>,
    /// Objects carrying ownerReferences, so garbage collection does not scan everything.
    owned: BTreeSet<(TypeKey, ObjName)>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    /// The newest resourceVersion that fell out of `history`.
    compacted: u64,
    tx: broadcast::Sender<Arc<Event>>,
    /// Resource types currently served (changes with CRDs).
    pub catalog: Catalog,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(HISTORY_LEN);
        Self {
            objects: BTreeMap::new(),
            owned: BTreeSet::new(),
            rv: 1,
            history: VecDeque::new(),
            compacted: 0,
            tx,
            catalog: Catalog::build(std::iter::empty()),
        }
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// Sets the counter (when loading state).
    pub fn set_rv(&mut self, rv: u64) {
        self.rv = self.rv.max(rv);
        self.compacted = self.rv;
    }

    /// The newest resourceVersion no longer replayable.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// A receiver of all future events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Past events newer than `rv`.
    pub fn history_after(&self, rv: u64) -> impl Iterator<Item = &Arc<Event>> {
        let start = self.history.partition_point(|e| e.rv <= rv);
        self.history.range(start..)
    }

    /// One object.
    pub fn get(&self, key: &TypeKey, ns: &str, name: &str) -> Option<Arc<Stored>> {
        self.objects
            .get(key)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// The objects of one resource, in (namespace, name) order, optionally in one namespace,
    /// starting strictly after `after`.
    pub fn iter<'a>(
        &'a self,
        key: &TypeKey,
        ns: Option<&'a str>,
        after: Option<&'a ObjName>,
    ) -> Box<dyn Iterator<Item = (&'a ObjName, &'a Arc<Stored>)> + 'a> {
        let Some(map) = self.objects.get(key) else {
            return Box::new(std::iter::empty());
        };
        use std::ops::Bound;
        let lower = match (after, ns) {
            (Some(a), _) => Bound::Excluded(a.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        Box::new(
            map.range((lower, Bound::Unbounded))
                .take_while(move |((n, _), _)| ns.is_none_or(|ns| ns == n)),
        )
    }

    /// Every resource key that has objects.
    pub fn keys(&self) -> Vec<TypeKey> {
        self.objects.keys().cloned().collect()
    }

    /// Objects that carry ownerReferences.
    pub fn owned(&self) -> Vec<(TypeKey, ObjName)> {
        self.owned.iter().cloned().collect()
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(
        &mut self,
        ty: EventType,
        key: &TypeKey,
        obj: Arc<Stored>,
        prev: Option<Arc<Stored>>,
        rv: u64,
    ) {
        let event = Arc::new(Event {
            rv,
            ty,
            key: key.clone(),
            obj,
            prev,
        });
        if self.history.len() >= HISTORY_LEN
            && let Some(old) = self.history.pop_front()
        {
            self.compacted = old.rv;
        }
        self.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    /// Stores `value` (assigning the next resourceVersion) and emits ADDED or MODIFIED.
    pub fn put(&mut self, key: &TypeKey, mut value: Value) -> Arc<Stored> {
        let rv = self.next_rv();
        value["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        self.insert_raw(key, value, Some(rv))
    }

    /// Inserts an object as is (loading state) or with an event when `rv` is set.
    pub fn insert_raw(&mut self, key: &TypeKey, value: Value, rv: Option<u64>) -> Arc<Stored> {
        let ns = value["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = value["metadata"]["name"].as_str().unwrap_or("").to_string();
        let has_owners = value["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        let stored = Stored::new(value);
        let objname = (ns, name);
        if has_owners {
            self.owned.insert((key.clone(), objname.clone()));
        } else {
            self.owned.remove(&(key.clone(), objname.clone()));
        }
        let previous = self
            .objects
            .entry(key.clone())
            .or_default()
            .insert(objname, stored.clone());
        if let Some(rv) = rv {
            let ty = if previous.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            };
            self.record(ty, key, stored.clone(), previous, rv);
        }
        stored
    }

    /// Removes an object and emits DELETED.
    pub fn remove(&mut self, key: &TypeKey, ns: &str, name: &str) -> Option<Arc<Stored>> {
        let objname = (ns.to_string(), name.to_string());
        let old = self.objects.get_mut(key)?.remove(&objname)?;
        self.owned.remove(&(key.clone(), objname));
        let rv = self.next_rv();
        let mut last = old.value.clone();
        last["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let last = Stored::new(last);
        self.record(EventType::Deleted, key, last.clone(), None, rv);
        Some(last)
    }

    /// Every object, for persisting.
    pub fn snapshot(&self) -> Vec<(TypeKey, Arc<Stored>)> {
        self.objects
            .iter()
            .flat_map(|(k, m)| m.values().map(move |o| (k.clone(), o.clone())))
            .collect()
    }

    /// Rebuilds the catalog from the stored CRDs.
    pub fn refresh_catalog(&mut self) {
        let key = TypeKey::new("apiextensions.k8s.io", "customresourcedefinitions");
        let crds: Vec<Arc<Stored>> = self
            .iter(&key, None, None)
            .map(|(_, o)| o.clone())
            .collect();
        self.catalog = Catalog::build(crds.iter().map(|o| &o.value));
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_change_gets_the_next_resource_version_and_a_history_entry() {
        let mut store = Store::new();
        let key = TypeKey::new("", "configmaps");
        let start = store.rv();
        let a = store.put(&key, json!({"metadata": {"name": "a", "namespace": "n"}}));
        assert_eq!(
            a.value["metadata"]["resourceVersion"],
            (start + 1).to_string()
        );
        store.put(
            &key,
            json!({"metadata": {"name": "a", "namespace": "n", "labels": {"x": "y"}}}),
        );
        let gone = store.remove(&key, "n", "a").expect("removed");
        assert_eq!(
            gone.value["metadata"]["resourceVersion"],
            (start + 3).to_string()
        );
        let types: Vec<EventType> = store.history_after(start).map(|e| e.ty).collect();
        assert_eq!(
            types,
            [EventType::Added, EventType::Modified, EventType::Deleted]
        );
        assert_eq!(store.history_after(start + 2).count(), 1);
        assert!(store.get(&key, "n", "a").is_none());
    }

    #[test]
    fn history_is_bounded_and_remembers_what_it_dropped() {
        let mut store = Store::new();
        let key = TypeKey::new("", "configmaps");
        for i in 0..HISTORY_LEN + 5 {
            store.put(
                &key,
                json!({"metadata": {"name": format!("c{i}"), "namespace": "n"}}),
            );
        }
        assert_eq!(store.history_after(0).count(), HISTORY_LEN);
        assert_eq!(store.compacted(), 1 + 5);
    }
}
