//! The merge half of server-side apply: how an applied configuration merges into a live object
//! (structured-merge-diff semantics) and how fields an applier stopped applying are pruned.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use serde_json::Value;

use super::list_keys::{ListType, is_atomic_map, list_type};
use super::ssa_fieldset::{FieldPath, FieldSet, PathElement, element_key_of, set_element_of};

/// Merges applied configurations into live objects of one kind the way structured-merge-diff
/// does, and prunes what an applier stopped applying.
pub struct Merger<'a> {
    /// API group of the kind.
    pub group: &'a str,
    /// Kind.
    pub kind: &'a str,
}

impl Merger<'_> {
    /// Merges `config` into `live`; `names` is the field path of both (list levels skipped).
    pub fn merge<'c>(&self, live: &mut Value, config: &'c Value, names: &mut Vec<&'c str>) {
        match (live, config) {
            (Value::Object(l), Value::Object(c)) if !is_atomic_map(names) => {
                for (k, v) in c {
                    if v.is_null() {
                        l.remove(k);
                        continue;
                    }
                    names.push(k.as_str());
                    match l.get_mut(k) {
                        Some(existing) => self.merge(existing, v, names),
                        None => {
                            l.insert(k.clone(), v.clone());
                        }
                    }
                    names.pop();
                }
            }
            (Value::Array(l), Value::Array(c)) => match list_type(self.group, self.kind, names) {
                ListType::Atomic => *l = c.clone(),
                ListType::Set => {
                    let lhs = std::mem::take(l);
                    *l = self.merge_list(lhs, c, |x| Some(set_element_of(x)), names);
                }
                ListType::Map { keys, .. } => {
                    let lhs = std::mem::take(l);
                    *l = self.merge_list(lhs, c, |x| element_key_of(x, keys).ok(), names);
                }
            },
            (live, config) => *live = config.clone(),
        }
    }

    /// structured-merge-diff's list merge: live-only elements stay where they are, shared
    /// elements follow the configuration's order, new elements come in before the next shared one.
    fn merge_list<'c>(
        &self,
        lhs: Vec<Value>,
        rhs: &'c [Value],
        key_of: impl Fn(&Value) -> Option<PathElement>,
        names: &mut Vec<&'c str>,
    ) -> Vec<Value> {
        let lpe: Vec<Option<PathElement>> = lhs.iter().map(&key_of).collect();
        let rpe: Vec<Option<PathElement>> = rhs.iter().map(&key_of).collect();
        let mut lhs_at: HashMap<&PathElement, usize> = HashMap::new();
        for (i, pe) in lpe.iter().enumerate() {
            if let Some(pe) = pe {
                lhs_at.entry(pe).or_insert(i);
            }
        }
        let rhs_keys: HashSet<&PathElement> = rpe.iter().flatten().collect();
        let in_rhs = |pe: &Option<PathElement>| pe.as_ref().is_some_and(|p| rhs_keys.contains(p));
        let mut lhs: Vec<Option<Value>> = lhs.into_iter().map(Some).collect();
        let take_lhs = |pe: &Option<PathElement>, lhs: &mut Vec<Option<Value>>| {
            let i = *lhs_at.get(pe.as_ref()?)?;
            lhs.get_mut(i).and_then(Option::take)
        };
        let mut shared = rpe
            .iter()
            .filter(|pe| pe.as_ref().is_some_and(|p| lhs_at.contains_key(p)));
        let mut next_shared = shared.next();
        let mut merged: HashSet<&PathElement> = HashSet::new();
        let mut out = Vec::with_capacity(lpe.len().max(rpe.len()));
        let (mut li, mut ri) = (0, 0);
        while li < lpe.len() || ri < rpe.len() {
            if li < lpe.len() && ri < rpe.len() {
                if lpe[li].is_some() && lpe[li] == rpe[ri] {
                    merged.extend(rpe[ri].iter());
                    let mut item = take_lhs(&lpe[li], &mut lhs).unwrap_or(Value::Null);
                    self.merge(&mut item, &rhs[ri], names);
                    out.push(item);
                    li += 1;
                    ri += 1;
                    next_shared = shared.next();
                    continue;
                }
                if in_rhs(&lpe[li]) && next_shared.is_some_and(|n| *n != lpe[li]) {
                    li += 1;
                    continue;
                }
            }
            if li < lpe.len() {
                if !in_rhs(&lpe[li]) {
                    if let Some(item) = lhs.get_mut(li).and_then(Option::take) {
                        out.push(item);
                    }
                    li += 1;
                    continue;
                }
                if ri >= rpe.len() || lpe[li].as_ref().is_some_and(|p| merged.contains(p)) {
                    li += 1;
                    continue;
                }
            }
            if ri < rpe.len() {
                let pe = &rpe[ri];
                merged.extend(pe.iter());
                match take_lhs(pe, &mut lhs) {
                    Some(mut item) => {
                        self.merge(&mut item, &rhs[ri], names);
                        out.push(item);
                    }
                    None => out.push(rhs[ri].clone()),
                }
                ri += 1;
                if next_shared.is_some_and(|n| n == pe) {
                    next_shared = shared.next();
                }
            }
        }
        out
    }

    /// How elements of the list at `names` are identified in paths.
    fn element_identity(&self, names: &[&str]) -> impl Fn(&Value) -> Option<PathElement> + use<> {
        let list = list_type(self.group, self.kind, names);
        move |x: &Value| match list {
            ListType::Map { keys, .. } => element_key_of(x, keys).ok(),
            _ => Some(set_element_of(x)),
        }
    }

    /// Removes what the applier owned last time (`last`) and no longer applies, unless a
    /// manager (or the new configuration) still owns it or something beneath it (`keep`).
    /// Maps and lists left empty by the removal go too, unless someone owns them.
    pub fn prune(&self, obj: &mut Value, last: &FieldSet, keep: &FieldSet) {
        let pruner = Pruner {
            merger: self,
            last,
            keep,
        };
        pruner.children(obj, &mut Vec::new(), &mut Vec::new());
    }
}

/// One pruning pass; it only descends where `last` has paths, so it is bounded by their depth.
struct Pruner<'a> {
    merger: &'a Merger<'a>,
    last: &'a FieldSet,
    keep: &'a FieldSet,
}

/// What happened to a node during pruning.
#[derive(PartialEq)]
enum Pruned {
    Kept,
    /// Something beneath it was removed.
    Changed,
    /// It must be removed from its parent.
    Remove,
}

impl Pruner<'_> {
    fn verdict(&self, v: &mut Value, path: &mut FieldPath, names: &mut Vec<String>) -> Pruned {
        let owned_below = has_descendant(self.keep, path);
        if self.last.contains(path)
            && !self.keep.contains(path)
            && !owned_below
            && !is_key_field(path)
        {
            return Pruned::Remove;
        }
        if !has_descendant(self.last, path) || !self.children(v, path, names) {
            return Pruned::Kept;
        }
        let empty = match v {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        let is_metadata = matches!(path.as_slice(), [PathElement::Field(f)] if f == "metadata");
        if empty && !self.keep.contains(path) && !is_metadata {
            Pruned::Remove
        } else {
            Pruned::Changed
        }
    }

    /// Prunes the children of `v`; true when something was removed.
    fn children(&self, v: &mut Value, path: &mut FieldPath, names: &mut Vec<String>) -> bool {
        let mut changed = false;
        match v {
            Value::Object(m) => {
                let mut remove = Vec::new();
                for (k, child) in m.iter_mut() {
                    path.push(PathElement::Field(k.clone()));
                    names.push(k.clone());
                    let verdict = self.verdict(child, path, names);
                    names.pop();
                    path.pop();
                    if verdict == Pruned::Remove {
                        remove.push(k.clone());
                    }
                    changed |= verdict != Pruned::Kept;
                }
                for k in remove {
                    m.remove(&k);
                }
            }
            Value::Array(items) => {
                let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let key_of = self.merger.element_identity(&name_refs);
                let mut keep_item = Vec::with_capacity(items.len());
                for item in items.iter_mut() {
                    let verdict = match key_of(item) {
                        Some(pe) => {
                            path.push(pe);
                            let verdict = self.verdict(item, path, names);
                            path.pop();
                            verdict
                        }
                        None => Pruned::Kept,
                    };
                    changed |= verdict != Pruned::Kept;
                    keep_item.push(verdict != Pruned::Remove);
                }
                let mut flags = keep_item.into_iter();
                items.retain(|_| flags.next().unwrap_or(true));
            }
            _ => {}
        }
        changed
    }
}

fn has_descendant(set: &FieldSet, path: &FieldPath) -> bool {
    // Descendants sort right after their ancestor.
    set.range((Bound::Excluded(path.clone()), Bound::Unbounded))
        .next()
        .is_some_and(|p| p.starts_with(path))
}

/// A key field of a list element stays as long as the element does.
fn is_key_field(path: &FieldPath) -> bool {
    match path.as_slice() {
        [.., PathElement::Key(json), PathElement::Field(f)] => {
            matches!(serde_json::from_str::<Value>(json), Ok(Value::Object(m)) if m.contains_key(f))
        }
        _ => false,
    }
}
