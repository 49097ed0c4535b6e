//! The merge half of server-side apply: how an applied configuration merges into a live object
//! (structured-merge-diff semantics) and how fields an applier stopped applying are pruned.

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
        let in_rhs = |pe: &Option<PathElement>| pe.is_some() && rpe.contains(pe);
        let mut lhs: Vec<Option<Value>> = lhs.into_iter().map(Some).collect();
        let take_lhs = |pe: &Option<PathElement>, lhs: &mut Vec<Option<Value>>| {
            let i = lpe.iter().position(|x| x.is_some() && x == pe)?;
            lhs.get_mut(i).and_then(Option::take)
        };
        let mut shared = rpe.iter().filter(|pe| pe.is_some() && lpe.contains(pe));
        let mut next_shared = shared.next();
        let mut merged: Vec<&Option<PathElement>> = Vec::new();
        let mut out = Vec::with_capacity(lpe.len().max(rpe.len()));
        let (mut li, mut ri) = (0, 0);
        while li < lpe.len() || ri < rpe.len() {
            if li < lpe.len() && ri < rpe.len() {
                if lpe[li].is_some() && lpe[li] == rpe[ri] {
                    merged.push(&rpe[ri]);
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
                if merged.contains(&&lpe[li]) {
                    li += 1;
                    continue;
                }
            }
            if ri < rpe.len() {
                let pe = &rpe[ri];
                merged.push(pe);
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

    /// Removes what the applier owned last time (`last`) and no longer applies, unless a
    /// manager (or the new configuration) still owns it or something beneath it (`keep`).
    pub fn prune(&self, obj: &mut Value, last: &FieldSet, keep: &FieldSet) {
        for path in last {
            if keep.contains(path) || has_descendant(keep, path) || is_key_field(path) {
                continue;
            }
            if self.remove_path(obj, path) {
                self.remove_empty_parents(obj, path, keep);
            }
        }
    }

    /// The value at `path`, matching list elements by their keys.
    fn navigate<'v>(&self, obj: &'v mut Value, path: &[PathElement]) -> Option<&'v mut Value> {
        let mut names: Vec<&str> = Vec::new();
        let mut cur = obj;
        for pe in path {
            cur = match (cur, pe) {
                (Value::Object(m), PathElement::Field(f)) => {
                    names.push(f);
                    m.get_mut(f)?
                }
                (Value::Array(a), PathElement::Index(i)) => a.get_mut(*i)?,
                (Value::Array(a), pe) => {
                    let key_of = self.element_identity(&names);
                    a.iter_mut().find(|x| key_of(x).as_ref() == Some(pe))?
                }
                _ => return None,
            };
        }
        Some(cur)
    }

    /// How elements of the list at `names` are identified in paths.
    fn element_identity(&self, names: &[&str]) -> impl Fn(&Value) -> Option<PathElement> + use<> {
        let list = list_type(self.group, self.kind, names);
        move |x: &Value| match list {
            ListType::Map { keys, .. } => element_key_of(x, keys).ok(),
            _ => Some(set_element_of(x)),
        }
    }

    fn remove_path(&self, obj: &mut Value, path: &[PathElement]) -> bool {
        let Some((last, parent_path)) = path.split_last() else {
            return false;
        };
        let Some(parent) = self.navigate(obj, parent_path) else {
            return false;
        };
        match (parent, last) {
            (Value::Object(m), PathElement::Field(f)) => m.remove(f).is_some(),
            (Value::Array(a), PathElement::Index(i)) if *i < a.len() => {
                a.remove(*i);
                true
            }
            (Value::Array(a), pe) => {
                let names: Vec<&str> = parent_path
                    .iter()
                    .filter_map(|p| match p {
                        PathElement::Field(f) => Some(f.as_str()),
                        _ => None,
                    })
                    .collect();
                let key_of = self.element_identity(&names);
                let before = a.len();
                a.retain(|x| key_of(x).as_ref() != Some(pe));
                a.len() != before
            }
            _ => false,
        }
    }

    /// Drops maps and lists that pruning left empty, up to the first one someone owns.
    fn remove_empty_parents(&self, obj: &mut Value, path: &[PathElement], keep: &FieldSet) {
        let mut end = path.len().saturating_sub(1);
        while end >= 1 {
            let parent = &path[..end];
            if keep.contains(parent) || parent == [PathElement::Field("metadata".to_string())] {
                return;
            }
            let empty = match self.navigate(obj, parent) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if !empty || !self.remove_path(obj, parent) {
                return;
            }
            end -= 1;
        }
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
