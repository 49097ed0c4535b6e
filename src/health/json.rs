//! Total accessors for untyped Kubernetes objects: wrong types read as absent, never panic.

use serde_json::Value;

/// A string at a JSON pointer.
pub(super) fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// An integer at a JSON pointer (integral floats accepted, as Go's decoder does).
pub(super) fn int_at(v: &Value, pointer: &str) -> Option<i64> {
    let n = v.pointer(pointer)?;
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// An integer at a JSON pointer, 0 when absent (Go's zero value).
pub(super) fn int_or_zero(v: &Value, pointer: &str) -> i64 {
    int_at(v, pointer).unwrap_or(0)
}

/// A boolean at a JSON pointer, false when absent.
pub(super) fn bool_at(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

/// The array at a JSON pointer, empty when absent or not an array.
pub(super) fn array_at<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// One entry of a Kubernetes `conditions` list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Condition<'a> {
    pub type_: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

impl<'a> Condition<'a> {
    fn read(c: &'a Value) -> Self {
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
        Condition {
            type_: s("type"),
            status: s("status"),
            reason: s("reason"),
            message: s("message"),
        }
    }

    /// Whether the condition's status is "True".
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// All entries of a conditions list (`status.conditions` for most kinds).
pub(super) fn conditions_in(list: &[Value]) -> impl Iterator<Item = Condition<'_>> {
    list.iter().filter(|c| c.is_object()).map(Condition::read)
}

/// The first condition of a type in `status.conditions`.
pub(super) fn condition<'a>(obj: &'a Value, type_: &str) -> Option<Condition<'a>> {
    conditions_in(array_at(obj, "/status/conditions")).find(|c| c.type_ == type_)
}
