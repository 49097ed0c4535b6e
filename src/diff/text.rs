//! Diffs for people and programs: unified text of YAML renderings, and JSON patch ops.

use serde_json::Value;
use similar::TextDiff;

/// Unified diff (3 lines of context, `--- live` / `+++ desired`) of the YAML renderings; ""
/// when equal. A `None` side is an object that is only on the other side.
pub fn unified(live: Option<&Value>, predicted: Option<&Value>) -> String {
    unified_between((live, "live"), (predicted, "desired"))
}

/// Unified diff of two YAML renderings with the given side names (`--- base` / `+++ head`);
/// "" when equal.
pub fn unified_between(
    (old, old_name): (Option<&Value>, &str),
    (new, new_name): (Option<&Value>, &str),
) -> String {
    let old = old.map(yaml).unwrap_or_default();
    let new = new.map(yaml).unwrap_or_default();
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

/// JSON patch ops that turn `live` into `predicted` (pass both normalised and masked).
pub fn patch(live: &Value, predicted: &Value) -> json_patch::Patch {
    json_patch::diff(live, predicted)
}

/// YAML with keys in serde_json's (sorted) map order; JSON if YAML rendering fails.
fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value)
        .or_else(|_| serde_json::to_string_pretty(value))
        .unwrap_or_default()
}
