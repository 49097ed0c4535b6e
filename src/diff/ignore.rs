//! ignoreDifferences rules: which objects a rule applies to, and its compiled paths.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DiffError;
use super::jq::JqPath;
use super::path::parse_pointer;

/// One ignoreDifferences rule, as an Application (or the system-wide settings) states it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreRule {
    /// API group; "" is the core group, "*" any group.
    #[serde(default)]
    pub group: String,
    /// Kind; "*" any kind.
    pub kind: String,
    /// Only the object of this name, when set.
    #[serde(default)]
    pub name: Option<String>,
    /// Only objects in this namespace, when set.
    #[serde(default)]
    pub namespace: Option<String>,
    /// RFC 6901 pointers to hide.
    #[serde(default)]
    pub json_pointers: Vec<String>,
    /// jq expressions whose paths are hidden.
    #[serde(default)]
    pub jq_path_expressions: Vec<String>,
    /// Managers whose fields (per the live object's managedFields) are hidden.
    #[serde(default)]
    pub managed_fields_managers: Vec<String>,
}

impl IgnoreRule {
    /// The group and kind a system-wide key names: `all`, or `<group>_<kind>` (`_<kind>` or
    /// `<kind>` alone for the core group), as in `resource.customizations.ignoreDifferences.<key>`.
    pub fn system_target(key: &str) -> (String, String) {
        if key == "all" {
            return ("*".into(), "*".into());
        }
        match key.rsplit_once('_') {
            Some((group, kind)) => (group.to_string(), kind.to_string()),
            None => (String::new(), key.to_string()),
        }
    }
}

/// A rule with its pointers parsed and expressions compiled.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    group: String,
    kind: String,
    name: Option<String>,
    namespace: Option<String>,
    pub(crate) pointers: Vec<Vec<String>>,
    pub(crate) jq: Vec<JqPath>,
    pub(crate) managers: Vec<String>,
}

impl CompiledRule {
    pub(crate) fn compile(rule: &IgnoreRule) -> Result<CompiledRule, DiffError> {
        Ok(CompiledRule {
            group: rule.group.clone(),
            kind: rule.kind.clone(),
            name: rule.name.clone().filter(|n| !n.is_empty()),
            namespace: rule.namespace.clone().filter(|n| !n.is_empty()),
            pointers: rule
                .json_pointers
                .iter()
                .map(|p| parse_pointer(p))
                .collect::<Result<_, _>>()?,
            jq: rule
                .jq_path_expressions
                .iter()
                .map(|e| JqPath::compile(e))
                .collect::<Result<_, _>>()?,
            managers: rule.managed_fields_managers.clone(),
        })
    }

    pub(crate) fn matches(&self, target: &Target<'_>) -> bool {
        wild(&self.group, target.group)
            && wild(&self.kind, target.kind)
            && self.name.as_deref().is_none_or(|n| n == target.name)
            && self
                .namespace
                .as_deref()
                .is_none_or(|n| n == target.namespace)
    }
}

fn wild(pattern: &str, value: &str) -> bool {
    pattern == "*" || pattern == value
}

/// What rules match on: group, kind, name and namespace of an object.
pub(crate) struct Target<'a> {
    pub(crate) group: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) name: &'a str,
    pub(crate) namespace: &'a str,
}

impl<'a> Target<'a> {
    pub(crate) fn of(obj: &'a Value) -> Target<'a> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let meta = obj.get("metadata");
        let text = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        Target {
            group,
            kind: obj.get("kind").and_then(Value::as_str).unwrap_or(""),
            name: text("name"),
            namespace: text("namespace"),
        }
    }
}
