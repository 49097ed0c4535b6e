//! Paths into JSON objects: RFC 6901 pointers and jq paths, with get, remove and set.

use std::cmp::Ordering;

use serde_json::Value;

use super::DiffError;

/// One step of a path: an object key or an array index (negative counts from the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(isize),
}

/// Parses an RFC 6901 pointer; `~1` is `/` and `~0` is `~`. Indices stay keys until applied,
/// because `/0` names an index in an array and a key in an object.
pub(crate) fn parse_pointer(pointer: &str) -> Result<Vec<String>, DiffError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(DiffError::InvalidPointer {
            pointer: pointer.to_string(),
        });
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// Pointer tokens as path segments for `value`'s shape; `None` when the path does not exist.
pub(crate) fn resolve_pointer(value: &Value, tokens: &[String]) -> Option<Vec<Segment>> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut cur = value;
    for t in tokens {
        match cur {
            Value::Object(map) => {
                cur = map.get(t)?;
                out.push(Segment::Key(t.clone()));
            }
            Value::Array(items) => {
                let i: usize = t.parse().ok()?;
                cur = items.get(i)?;
                out.push(Segment::Index(i as isize));
            }
            _ => return None,
        }
    }
    Some(out)
}

fn index(len: usize, i: isize) -> Option<usize> {
    if i >= 0 {
        let i = i as usize;
        (i < len).then_some(i)
    } else {
        len.checked_sub(i.unsigned_abs())
    }
}

/// Removes the value at `path`; a missing path is not an error. The root is never removed.
pub(crate) fn remove(value: &mut Value, path: &[Segment]) -> Option<Value> {
    let (last, parent) = path.split_last()?;
    let mut cur = value;
    for s in parent {
        cur = match (cur, s) {
            (Value::Object(m), Segment::Key(k)) => m.get_mut(k)?,
            (Value::Array(a), Segment::Index(i)) => {
                let i = index(a.len(), *i)?;
                a.get_mut(i)?
            }
            _ => return None,
        };
    }
    match (cur, last) {
        (Value::Object(m), Segment::Key(k)) => m.remove(k),
        (Value::Array(a), Segment::Index(i)) => {
            let i = index(a.len(), *i)?;
            Some(a.remove(i))
        }
        _ => None,
    }
}

/// Orders paths so that removing them back to front never shifts an index still to be used.
pub(crate) fn order(a: &[Segment], b: &[Segment]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Segment::Key(p), Segment::Key(q)) => p.cmp(q),
            (Segment::Index(p), Segment::Index(q)) => p.cmp(q),
            (Segment::Key(_), Segment::Index(_)) => Ordering::Less,
            (Segment::Index(_), Segment::Key(_)) => Ordering::Greater,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Removes every path, deepest and last indices first.
pub(crate) fn remove_all(value: &mut Value, mut paths: Vec<Vec<Segment>>) {
    // Negative indices are made absolute first so that ordering sees real positions.
    for p in &mut paths {
        absolutize(value, p);
    }
    paths.sort_by(|a, b| order(a, b));
    paths.dedup();
    for p in paths.iter().rev() {
        remove(value, p);
    }
}

fn absolutize(value: &Value, path: &mut [Segment]) {
    let mut cur = value;
    for s in path.iter_mut() {
        let next = match (cur, &*s) {
            (Value::Object(m), Segment::Key(k)) => m.get(k),
            (Value::Array(a), Segment::Index(i)) => {
                let Some(abs) = index(a.len(), *i) else {
                    return;
                };
                *s = Segment::Index(abs as isize);
                a.get(abs)
            }
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
}
