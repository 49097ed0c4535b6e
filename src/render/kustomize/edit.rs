//! `source.kustomize` overrides applied to the top kustomization's text, as Argo CD's
//! `kustomize edit set …` / `edit add …` calls would leave it.
//!
//! Only the top-level fields an override changes are rewritten (as one-line JSON, which is
//! YAML); every other line stays as written, so no scalar is re-typed by a YAML round trip
//! (`"1.10"` → 1.1, `"on"` → true). When the fields cannot be cut out of the text safely the
//! render fails rather than guess.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::super::{KustomizeSpec, RenderError};

/// Whether `spec` asks for any change to the kustomization (Argo CD skips empty fields).
pub(crate) fn has_overrides(spec: &KustomizeSpec, components: &[String]) -> bool {
    non_empty(&spec.name_prefix)
        || non_empty(&spec.name_suffix)
        || !spec.images.is_empty()
        || !spec.replicas.is_empty()
        || !spec.common_labels.is_empty()
        || !spec.common_annotations.is_empty()
        || non_empty(&spec.namespace)
        || !spec.patches.is_empty()
        || !components.is_empty()
}

fn non_empty(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}

/// The fields an override may rewrite, as Kustomize types them; read from the text with these
/// types so a string such as a tag `1.10` stays the string the text holds, not a number.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Existing {
    #[serde(default)]
    images: Option<Vec<BTreeMap<String, String>>>,
    #[serde(default)]
    replicas: Option<Vec<Replica>>,
    #[serde(default)]
    common_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<Vec<Label>>,
    #[serde(default)]
    common_annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    patches: Option<Vec<Patch>>,
    #[serde(default)]
    components: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Replica {
    name: String,
    count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Label {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pairs: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    include_selectors: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    include_templates: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fields: Option<Vec<FieldSpec>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    create: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<BTreeMap<String, bool>>,
}

/// The kustomization `text` (of `file`, parsed as `content`) with `spec`'s overrides applied;
/// `components` are the override components that exist (missing ones already dropped when
/// `ignoreMissingComponents` is set).
pub(crate) fn apply(
    file: &str,
    text: &str,
    content: &Map<String, Value>,
    spec: &KustomizeSpec,
    components: &[String],
) -> Result<String, RenderError> {
    let unsupported = |why: String| RenderError::Unsupported {
        message: format!(
            "{file}: source.kustomize overrides cannot be applied to this kustomization: {why}"
        ),
    };
    let existing: Existing = if content.is_empty() {
        Existing::default()
    } else {
        serde_saphyr::from_str(text).map_err(|err| unsupported(err.to_string()))?
    };
    let changes = changes(file, existing, spec, components)?;
    if changes.is_empty() {
        return Ok(text.to_string());
    }
    let keys: Vec<&str> = changes.iter().map(|(key, _)| *key).collect();
    let mut kept = match serde_json::from_str::<Value>(text) {
        // A JSON kustomization has no ambiguous scalars: it is rewritten whole.
        Ok(Value::Object(map)) => {
            let mut map = map;
            map.retain(|key, _| !keys.contains(&key.as_str()));
            let mut out = String::new();
            if !map.is_empty() {
                out = serde_json::to_string(&Value::Object(map))
                    .map_err(|err| unsupported(err.to_string()))?;
                // A one-line JSON object is a flow mapping; the changed fields follow as a
                // block, so it is re-emitted key by key instead.
                out = reemit_block(&out).map_err(unsupported)?;
            }
            out
        }
        _ => strip_top_level(text, &keys),
    };
    check_kept(&kept, content, &keys).map_err(unsupported)?;
    if !kept.is_empty() && !kept.ends_with('\n') {
        kept.push('\n');
    }
    for (key, value) in changes {
        let json = serde_json::to_string(&value).map_err(|err| unsupported(err.to_string()))?;
        kept.push_str(&format!("{key}: {json}\n"));
    }
    Ok(kept)
}

/// Each changed top-level field with its new value, in Argo CD's order of edits.
fn changes(
    file: &str,
    existing: Existing,
    spec: &KustomizeSpec,
    components: &[String],
) -> Result<Vec<(&'static str, Value)>, RenderError> {
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    if let Some(prefix) = spec.name_prefix.as_deref().filter(|p| !p.is_empty()) {
        out.push(("namePrefix", Value::String(prefix.to_string())));
    }
    if let Some(suffix) = spec.name_suffix.as_deref().filter(|s| !s.is_empty()) {
        out.push(("nameSuffix", Value::String(suffix.to_string())));
    }
    if !spec.images.is_empty() {
        out.push((
            "images",
            set_images(existing.images.unwrap_or_default(), &spec.images)?,
        ));
    }
    if !spec.replicas.is_empty() {
        let mut replicas = existing.replicas.unwrap_or_default();
        for replica in &spec.replicas {
            let count = replica
                .count
                .value()
                .ok_or_else(|| RenderError::InvalidSpec {
                    message: format!(
                        "source.kustomize.replicas: count of {:?} must be an integer",
                        replica.name
                    ),
                })?;
            match replicas.iter_mut().find(|r| r.name == replica.name) {
                Some(found) => found.count = count,
                None => replicas.push(Replica {
                    name: replica.name.clone(),
                    count,
                }),
            }
        }
        out.push(("replicas", to_value(&replicas)));
    }
    if !spec.common_labels.is_empty() {
        if spec.label_include_templates && !spec.label_without_selector {
            return Err(RenderError::InvalidSpec {
                message: "source.kustomize.labelIncludeTemplates needs labelWithoutSelector".into(),
            });
        }
        let mut common = existing.common_labels.unwrap_or_default();
        if spec.label_without_selector {
            let mut labels = existing.labels.unwrap_or_default();
            if !spec.force_common_labels {
                let present = labels
                    .iter()
                    .filter_map(|l| l.pairs.as_ref())
                    .chain(std::iter::once(&common));
                for pairs in present {
                    refuse_present(
                        file,
                        "label",
                        "forceCommonLabels",
                        pairs,
                        &spec.common_labels,
                    )?;
                }
            }
            labels.push(Label {
                pairs: Some(spec.common_labels.clone()),
                include_selectors: None,
                include_templates: spec.label_include_templates.then_some(true),
                fields: None,
            });
            out.push(("labels", to_value(&labels)));
        } else {
            if !spec.force_common_labels {
                refuse_present(
                    file,
                    "label",
                    "forceCommonLabels",
                    &common,
                    &spec.common_labels,
                )?;
            }
            common.extend(spec.common_labels.clone());
            out.push(("commonLabels", to_value(&common)));
        }
    }
    if !spec.common_annotations.is_empty() {
        let mut common = existing.common_annotations.unwrap_or_default();
        if !spec.force_common_annotations {
            refuse_present(
                file,
                "annotation",
                "forceCommonAnnotations",
                &common,
                &spec.common_annotations,
            )?;
        }
        common.extend(spec.common_annotations.clone());
        out.push(("commonAnnotations", to_value(&common)));
    }
    if let Some(namespace) = spec.namespace.as_deref().filter(|n| !n.is_empty()) {
        out.push(("namespace", Value::String(namespace.to_string())));
    }
    if !spec.patches.is_empty() {
        let mut patches: Vec<Value> = existing
            .patches
            .unwrap_or_default()
            .iter()
            .map(to_value)
            .collect();
        patches.extend(spec.patches.iter().cloned());
        out.push(("patches", Value::Array(patches)));
    }
    if !components.is_empty() {
        let mut all = existing.components.unwrap_or_default();
        for component in components {
            // `kustomize edit add component` skips one already listed.
            if !all.contains(component) {
                all.push(component.clone());
            }
        }
        out.push(("components", to_value(&all)));
    }
    Ok(out)
}

/// Kustomize refuses to replace a label or annotation the kustomization sets unless forced.
fn refuse_present(
    file: &str,
    kind: &str,
    force: &str,
    present: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> Result<(), RenderError> {
    match wanted.keys().find(|key| present.contains_key(*key)) {
        Some(key) => Err(RenderError::InvalidSpec {
            message: format!(
                "source.kustomize: {kind} {key:?} is already set in {file}; set {force} to \
                 replace it"
            ),
        }),
        None => Ok(()),
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    // Plain maps, strings, numbers and booleans always serialise.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// One `kustomize edit set image` argument.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ImageArg {
    name: String,
    new_name: String,
    new_tag: String,
    digest: String,
}

/// `*` keeps the value the kustomization already has.
const PRESERVE: &str = "*";

/// `kustomize edit set image` over the existing `images`: an argument replaces the entry of the
/// same name (`*` keeps a field), others are kept, and the list is sorted by name.
fn set_images(
    existing: Vec<BTreeMap<String, String>>,
    args: &[String],
) -> Result<Value, RenderError> {
    let mut by_name: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut wanted: BTreeMap<String, ImageArg> = BTreeMap::new();
    for arg in args {
        let image = parse_image(arg)?;
        wanted.insert(image.name.clone(), image);
    }
    for image in existing {
        let name = image.get("name").cloned().unwrap_or_default();
        match wanted.remove(&name) {
            Some(mut arg) => {
                let keep = |value: &mut String, field: &str| {
                    if value == PRESERVE {
                        *value = image.get(field).cloned().unwrap_or_default();
                    }
                };
                keep(&mut arg.new_name, "newName");
                keep(&mut arg.new_tag, "newTag");
                keep(&mut arg.digest, "digest");
                by_name.insert(name, image_map(arg));
            }
            None => {
                by_name.insert(name, image);
            }
        }
    }
    for (name, arg) in wanted {
        by_name.insert(name, image_map(arg));
    }
    Ok(Value::Array(
        by_name.into_values().map(|m| to_value(&m)).collect(),
    ))
}

fn image_map(arg: ImageArg) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (key, value) in [
        ("name", arg.name),
        ("newName", arg.new_name),
        ("newTag", arg.new_tag),
        ("digest", arg.digest),
    ] {
        if !value.is_empty() && value != PRESERVE {
            map.insert(key.to_string(), value);
        }
    }
    map
}

/// Parses `name=newName:tag`, `name=newName@digest`, `name=newName`, `name:tag`, `name@digest`.
fn parse_image(arg: &str) -> Result<ImageArg, RenderError> {
    let invalid = || RenderError::InvalidSpec {
        message: format!(
            "source.kustomize.images: invalid image {arg:?}; use one of name=newName:tag, \
             name=newName@digest, name=newName, name:tag, name@digest"
        ),
    };
    let parts: Vec<&str> = arg.split('=').collect();
    if let [name, overwrite] = parts.as_slice() {
        let (new_name, new_tag, digest) = split_reference(overwrite, true).ok_or_else(invalid)?;
        return Ok(ImageArg {
            name: name.to_string(),
            new_name,
            new_tag,
            digest,
        });
    }
    let (name, new_tag, digest) = split_reference(arg, false).ok_or_else(invalid)?;
    Ok(ImageArg {
        name,
        new_tag,
        digest,
        ..ImageArg::default()
    })
}

/// `(name, tag, digest)` of `image@digest`, `image:tag` or (when `bare` is allowed) `image`.
fn split_reference(text: &str, bare: bool) -> Option<(String, String, String)> {
    let mut at = text.split('@');
    if let (Some(name), Some(digest)) = (at.next(), at.next()) {
        return Some((name.into(), String::new(), digest.into()));
    }
    if let Some((name, tag)) = text.rsplit_once(':')
        && (tag == PRESERVE
            || tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some((name.into(), tag.into(), String::new()));
    }
    (bare && !text.is_empty()).then(|| (text.into(), String::new(), String::new()))
}

/// `text` without the top-level block-mapping entries named in `keys` (their key line and
/// every following line until the next top-level key or document marker).
fn strip_top_level(text: &str, keys: &[&str]) -> String {
    let mut out = String::new();
    let mut dropping = false;
    for line in text.split_inclusive('\n') {
        if let Some(key) = top_level_key(line) {
            dropping = keys.contains(&key);
        } else if line.starts_with("---") || line.starts_with("...") {
            dropping = false;
        }
        if !dropping {
            out.push_str(line);
        }
    }
    out
}

/// The key of a line opening a top-level mapping entry (`key:` at column 0).
fn top_level_key(line: &str) -> Option<&str> {
    let first = line.chars().next()?;
    if first.is_whitespace() || matches!(first, '#' | '-' | '{' | '[' | '"' | '\'' | '?') {
        return None;
    }
    let colon = line.find(':')?;
    let after = &line[colon + 1..];
    (after.is_empty() || after.starts_with([' ', '\t', '\n', '\r']))
        .then(|| line[..colon].trim_end())
}

/// Re-emits a one-line JSON object as a block of `key: <json>` lines.
fn reemit_block(json: &str) -> Result<String, String> {
    let map: Map<String, Value> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for (key, value) in map {
        let key = serde_json::to_string(&key).map_err(|e| e.to_string())?;
        let value = serde_json::to_string(&value).map_err(|e| e.to_string())?;
        out.push_str(&format!("{key}: {value}\n"));
    }
    Ok(out)
}

/// Checks that what is left of the text still means the original minus the changed fields, so
/// an unusual layout (anchors, multi-line flow, several documents) fails instead of losing data.
fn check_kept(kept: &str, original: &Map<String, Value>, keys: &[&str]) -> Result<(), String> {
    let parsed: Option<Value> = if kept.trim().is_empty() {
        Some(Value::Null)
    } else {
        serde_saphyr::from_str(kept).ok()
    };
    let parsed = match parsed {
        Some(Value::Null) => Some(Map::new()),
        Some(Value::Object(map)) => Some(map),
        _ => None,
    };
    let mut expected = original.clone();
    expected.retain(|key, _| !keys.contains(&key.as_str()));
    if parsed.as_ref() == Some(&expected) {
        Ok(())
    } else {
        Err(
            "its layout (anchors, multi-line flow style, several documents) cannot be edited \
             safely; write its top-level fields in block style without anchors"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(text: &str) -> Map<String, Value> {
        match serde_saphyr::from_str::<Value>(text).unwrap() {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn rewritten_fields_keep_the_other_lines_and_their_string_scalars() {
        let text = "resources:\n- a.yaml\nimages:\n- name: web\n  newTag: 1.10\n# trailing\nnamePrefix: old-\n";
        let spec = KustomizeSpec {
            name_prefix: Some("new-".into()),
            images: vec!["db:5.7".into()],
            ..KustomizeSpec::default()
        };
        let out = apply("k.yaml", text, &content(text), &spec, &[]).unwrap();
        assert!(out.starts_with("resources:\n- a.yaml\n"), "{out}");
        assert!(out.contains("namePrefix: \"new-\"\n"), "{out}");
        assert!(!out.contains("old-"), "{out}");
        // Read as the string the text holds ("1.10"), not as the number 1.1.
        assert!(
            out.contains(
                r#"images: [{"name":"db","newTag":"5.7"},{"name":"web","newTag":"1.10"}]"#
            ),
            "{out}"
        );
    }

    #[test]
    fn set_image_follows_kustomize_forms_and_star_keeps_a_field() {
        let existing = vec![BTreeMap::from([
            ("name".to_string(), "web".to_string()),
            ("newName".to_string(), "reg/web".to_string()),
            ("newTag".to_string(), "1".to_string()),
        ])];
        let value = set_images(
            existing,
            &[
                "web=*:2".into(),
                "db@sha256:abc".into(),
                "cache=redis".into(),
                "localhost:5000/app:v3".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                {"name": "cache", "newName": "redis"},
                {"name": "db", "digest": "sha256:abc"},
                {"name": "localhost:5000/app", "newTag": "v3"},
                {"name": "web", "newName": "reg/web", "newTag": "2"},
            ])
        );
        assert!(parse_image("noseparator").is_err());
    }

    #[test]
    fn an_existing_label_is_replaced_only_when_forced() {
        let text = "commonLabels:\n  team: a\n";
        let mut spec = KustomizeSpec {
            common_labels: BTreeMap::from([("team".into(), "b".into())]),
            ..KustomizeSpec::default()
        };
        let err = apply("k.yaml", text, &content(text), &spec, &[]).unwrap_err();
        assert!(err.to_string().contains("forceCommonLabels"), "{err}");
        spec.force_common_labels = true;
        let out = apply("k.yaml", text, &content(text), &spec, &[]).unwrap();
        assert_eq!(out, "commonLabels: {\"team\":\"b\"}\n");
    }

    #[test]
    fn a_layout_that_cannot_be_cut_safely_is_refused() {
        let text = "namePrefix: &p x-\nnameSuffix: *p\n";
        let spec = KustomizeSpec {
            name_prefix: Some("y-".into()),
            ..KustomizeSpec::default()
        };
        let err = apply("k.yaml", text, &content(text), &spec, &[]).unwrap_err();
        assert!(err.to_string().contains("cannot be edited"), "{err}");
    }

    #[test]
    fn empty_commented_and_json_kustomizations_take_overrides() {
        let spec = KustomizeSpec {
            namespace: Some("ns".into()),
            ..KustomizeSpec::default()
        };
        for text in ["", "# nothing yet\n"] {
            let out = apply("k.yaml", text, &content(text), &spec, &[]).unwrap();
            assert!(out.ends_with("namespace: \"ns\"\n"), "{out:?}");
        }
        let json = r#"{"resources": ["a.yaml"], "namespace": "old"}"#;
        let out = apply("k.yaml", json, &content(json), &spec, &[]).unwrap();
        assert_eq!(out, "\"resources\": [\"a.yaml\"]\nnamespace: \"ns\"\n");
    }
}
