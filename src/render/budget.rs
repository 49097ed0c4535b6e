//! One budget per rendered source, charged by every file and every renderer that feeds it.
//!
//! Per-file limits alone let many small files that each expand (YAML aliases) to tens of
//! megabytes pass one by one and together exhaust the worker's memory; the running totals here
//! are carried across all files of one source, so the whole render stays bounded.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::RenderError;

/// Budgets for rendering one source; hostile input hits one of them instead of exhausting memory.
///
/// The defaults let real large repositories through (hundreds of CRDs, a 5 MB CRD bundle: a
/// 5 MB bundle is roughly 200,000 nodes and 3 MB of scalars) while bounding what one render
/// can hold in memory to a few hundred MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single file, in bytes. Default 10 MiB.
    pub max_file_bytes: u64,
    /// Largest total of text rendered for one source (files read, tool output), in bytes.
    /// Default 50 MiB.
    pub max_total_bytes: u64,
    /// Most objects (after `List` flattening) of one source. Default 10,000.
    pub max_documents: usize,
    /// Largest total of parsed scalar bytes (keys and strings; 8 per other scalar) of one
    /// source, aliases counted as expanded. Default 128 MiB: above the total text budget, so
    /// legitimate anchors fit, yet a few alias-expanded files exhaust it.
    pub max_expanded_bytes: u64,
    /// Most parsed nodes (scalars, keys, lists and maps) of one source, aliases counted as
    /// expanded. Default 2,500,000: 50 MiB of typical manifests at ~20 bytes per node.
    pub max_nodes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 10 * 1024 * 1024,
            max_total_bytes: 50 * 1024 * 1024,
            max_documents: 10_000,
            max_expanded_bytes: 128 * 1024 * 1024,
            max_nodes: 2_500_000,
        }
    }
}

/// The running totals of one source's render against its `Limits`.
#[derive(Debug, Clone)]
pub struct Budget {
    limits: Limits,
    rendered_bytes: u64,
    expanded: Expanded,
    objects: usize,
}

impl Budget {
    /// A fresh budget for one source.
    pub fn new(limits: Limits) -> Budget {
        Budget {
            limits,
            rendered_bytes: 0,
            expanded: Expanded::default(),
            objects: 0,
        }
    }

    /// The limits this budget enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Charges `bytes` of rendered text (a file read, a tool's output) produced at `at`.
    pub fn charge_rendered(&mut self, at: &str, bytes: u64) -> Result<(), RenderError> {
        self.rendered_bytes = self.rendered_bytes.saturating_add(bytes);
        if self.rendered_bytes > self.limits.max_total_bytes {
            return Err(RenderError::TooLarge {
                what: format!("total bytes of rendered manifests (at {at})"),
                limit: self.limits.max_total_bytes,
            });
        }
        Ok(())
    }

    /// How many more bytes of rendered text fit, for readers that cannot hold the budget
    /// while they read (Jsonnet imports).
    pub fn remaining_rendered(&self) -> u64 {
        self.limits
            .max_total_bytes
            .saturating_sub(self.rendered_bytes)
    }

    /// Whether `size` more would still fit, without charging it; lets a caller refuse a
    /// document before building it.
    pub fn check_expanded(&self, at: &str, size: Expanded) -> Result<(), RenderError> {
        let nodes = self.expanded.nodes.saturating_add(size.nodes);
        if nodes > self.limits.max_nodes {
            return Err(RenderError::TooLarge {
                what: format!("number of parsed YAML/JSON nodes, aliases expanded (at {at})"),
                limit: self.limits.max_nodes,
            });
        }
        let bytes = self.expanded.bytes.saturating_add(size.bytes);
        if bytes > self.limits.max_expanded_bytes {
            return Err(RenderError::TooLarge {
                what: format!("bytes of parsed YAML/JSON, aliases expanded (at {at})"),
                limit: self.limits.max_expanded_bytes,
            });
        }
        Ok(())
    }

    /// Charges the parsed size of a document (or a whole file) produced at `at`.
    pub fn charge_expanded(&mut self, at: &str, size: Expanded) -> Result<(), RenderError> {
        self.check_expanded(at, size)?;
        self.expanded.nodes += size.nodes;
        self.expanded.bytes += size.bytes;
        Ok(())
    }

    /// Charges one object of the rendered output, found at `at`.
    pub fn charge_object(&mut self, at: &str) -> Result<(), RenderError> {
        if self.objects >= self.limits.max_documents {
            return Err(RenderError::TooLarge {
                what: format!("number of objects (at {at})"),
                limit: self.limits.max_documents as u64,
            });
        }
        self.objects += 1;
        Ok(())
    }
}

/// The size of parsed YAML/JSON, counted as it is held in memory (aliases expanded).
///
/// Deserialising into `Expanded` walks a document without keeping it, so a document can be
/// measured, and refused, before it is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expanded {
    /// Scalars, mapping keys, lists and maps.
    pub nodes: u64,
    /// Bytes of keys and strings, plus 8 for every other scalar.
    pub bytes: u64,
}

/// What a number, boolean or null costs: its in-memory size, not its spelling.
const OTHER_SCALAR_BYTES: u64 = 8;

impl Expanded {
    /// The size of an already parsed value, counted as deserialising it would count.
    pub fn of(value: &Value) -> Expanded {
        let mut size = Expanded::default();
        let mut pending = vec![value];
        while let Some(value) = pending.pop() {
            size.nodes += 1;
            match value {
                Value::String(s) => size.bytes += s.len() as u64,
                Value::Array(items) => pending.extend(items),
                Value::Object(map) => {
                    for (key, item) in map {
                        size.add(Expanded::scalar(key.len()));
                        pending.push(item);
                    }
                }
                Value::Null | Value::Bool(_) | Value::Number(_) => {
                    size.bytes += OTHER_SCALAR_BYTES;
                }
            }
        }
        size
    }

    fn scalar(bytes: usize) -> Expanded {
        Expanded {
            nodes: 1,
            bytes: bytes as u64,
        }
    }

    fn add(&mut self, other: Expanded) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

impl<'de> Deserialize<'de> for Expanded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Measure)
    }
}

/// Counts every node it is shown and keeps none of them.
struct Measure;

impl<'de> Visitor<'de> for Measure {
    type Value = Expanded;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML or JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Expanded, E> {
        Ok(Expanded::scalar(OTHER_SCALAR_BYTES as usize))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Expanded, E> {
        Ok(Expanded::scalar(OTHER_SCALAR_BYTES as usize))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Expanded, E> {
        Ok(Expanded::scalar(OTHER_SCALAR_BYTES as usize))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Expanded, E> {
        Ok(Expanded::scalar(OTHER_SCALAR_BYTES as usize))
    }

    fn visit_str<E>(self, v: &str) -> Result<Expanded, E> {
        Ok(Expanded::scalar(v.len()))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Expanded, E> {
        Ok(Expanded::scalar(v.len()))
    }

    fn visit_unit<E>(self) -> Result<Expanded, E> {
        Ok(Expanded::scalar(OTHER_SCALAR_BYTES as usize))
    }

    fn visit_none<E>(self) -> Result<Expanded, E> {
        Ok(Expanded::scalar(OTHER_SCALAR_BYTES as usize))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Expanded, D::Error> {
        Expanded::deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Expanded, D::Error> {
        Expanded::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Expanded, A::Error> {
        let mut size = Expanded::scalar(0);
        while let Some(item) = seq.next_element::<Expanded>()? {
            size.add(item);
        }
        Ok(size)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Expanded, A::Error> {
        let mut size = Expanded::scalar(0);
        while let Some((key, value)) = map.next_entry::<Expanded, Expanded>()? {
            size.add(key);
            size.add(value);
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measuring_while_parsing_agrees_with_measuring_the_value() {
        let text = r#"{"a": [1, "xy", null, true, {"bcd": 2.5}], "e": {}}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        let streamed: Expanded = serde_json::from_str(text).unwrap();
        assert_eq!(streamed, Expanded::of(&value));
        // root, a, list, 1, "xy", null, true, map, bcd, 2.5, e, {} = 12 nodes
        assert_eq!(streamed.nodes, 12);
        assert_eq!(streamed.bytes, 1 + 8 + 2 + 8 + 8 + 3 + 8 + 1);
    }

    #[test]
    fn aliases_are_measured_as_expanded() {
        let text = "s: &s hello\nl: &l [*s, *s, *s]\nm: [*l, *l]\n";
        let streamed: Vec<Expanded> = serde_saphyr::from_multiple(text).unwrap();
        let value: Vec<Value> = serde_saphyr::from_multiple(text).unwrap();
        assert_eq!(streamed, vec![Expanded::of(&value[0])]);
        // "hello" appears 1 + 3 + 6 times once expanded.
        assert_eq!(streamed[0].bytes, 10 * 5 + 3);
    }

    #[test]
    fn the_budget_is_carried_across_charges_and_names_where_it_ran_out() {
        let mut budget = Budget::new(Limits {
            max_expanded_bytes: 100,
            max_nodes: 10,
            max_total_bytes: 1000,
            max_documents: 2,
            ..Limits::default()
        });
        let half = Expanded {
            nodes: 4,
            bytes: 40,
        };
        budget.charge_expanded("a.yaml", half).unwrap();
        budget.charge_expanded("b.yaml", half).unwrap();
        match budget.charge_expanded("c.yaml", half) {
            Err(RenderError::TooLarge { what, limit }) => {
                assert!(what.contains("nodes") && what.contains("c.yaml"), "{what}");
                assert_eq!(limit, 10);
            }
            other => panic!("{other:?}"),
        }
        let bytes_heavy = Expanded {
            nodes: 1,
            bytes: 30,
        };
        match budget.charge_expanded("d.yaml", bytes_heavy) {
            Err(RenderError::TooLarge { what, limit }) => {
                assert!(what.contains("bytes") && what.contains("d.yaml"), "{what}");
                assert_eq!(limit, 100);
            }
            other => panic!("{other:?}"),
        }
        budget.charge_rendered("a.yaml", 600).unwrap();
        assert!(matches!(
            budget.charge_rendered("b.yaml", 600),
            Err(RenderError::TooLarge { limit: 1000, .. })
        ));
        budget.charge_object("a.yaml").unwrap();
        budget.charge_object("a.yaml").unwrap();
        assert!(matches!(
            budget.charge_object("b.yaml"),
            Err(RenderError::TooLarge { limit: 2, .. })
        ));
    }
}
