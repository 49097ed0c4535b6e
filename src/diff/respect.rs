//! `RespectIgnoreDifferences=true`: what is applied keeps the live values of ignored fields.

use serde_json::Value;

use super::Normalizer;

/// Rewrites `desired` so that every path the rules ignore takes the live value, or is absent
/// when live lacks it. Server fields are left alone: only the rules' paths are touched.
pub fn respect_ignored(desired: &mut Value, live: &Value, normalizer: &Normalizer) {
    if !normalizer.has_rules_for(desired) && !normalizer.has_rules_for(live) {
        return;
    }
    let original = desired.clone();
    normalizer.remove_ignored(desired, &original, live);
    let mut live_without = live.clone();
    normalizer.remove_ignored(&mut live_without, live, live);
    // The ops that put the ignored fields back into live are the ones to give desired.
    let restore = json_patch::diff(&live_without, live);
    for op in restore.0 {
        // An op whose parent desired lacks (e.g. a list of another length) is skipped
        // rather than failing the whole rewrite.
        let _ = json_patch::patch(desired, &[op]);
    }
}
