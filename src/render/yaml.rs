//! Budgeted parsing of YAML and JSON manifest files into Kubernetes objects.

use serde_json::Value;

use super::RenderError;
use super::budget::{Budget, Expanded, Limits};

/// `List` kinds nested in `List` kinds deeper than this are refused.
const MAX_LIST_NESTING: usize = 8;

/// Parses one manifest file into Kubernetes objects: multi-document YAML (empty and null
/// documents skipped) or, for `*.json`, one JSON document; `*List` kinds are flattened.
/// `file` (repository-relative) names the file in errors.
pub fn parse_manifests(file: &str, text: &str) -> Result<Vec<Value>, RenderError> {
    parse_budgeted(file, text, &mut Budget::new(Limits::default()))
}

/// Like `parse_manifests`, charging the parsed size and the objects to `budget`, which the
/// caller carries across every file of the source (the file-size budget is the caller's).
pub fn parse_budgeted(
    file: &str,
    text: &str,
    budget: &mut Budget,
) -> Result<Vec<Value>, RenderError> {
    let documents = if file.to_ascii_lowercase().ends_with(".json") {
        let documents = parse_json(file, text)?;
        // JSON has no aliases: the value is no larger than the file, so it is measured after.
        for document in &documents {
            budget.charge_expanded(file, Expanded::of(document))?;
        }
        documents
    } else {
        parse_yaml(file, text, budget)?
    };
    let mut objects = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        flatten(file, index, document, 0, &mut objects, budget)?;
    }
    Ok(objects)
}

fn parse_json(file: &str, text: &str) -> Result<Vec<Value>, RenderError> {
    // serde_json bounds nesting (128) itself, so deep input cannot overflow the stack.
    let value: Value = serde_json::from_str(text).map_err(|err| json_error(file, &err))?;
    Ok(if value.is_null() {
        Vec::new()
    } else {
        vec![value]
    })
}

/// Parses multi-document YAML into plain values (not necessarily Kubernetes objects), charging
/// the parsed size to `budget`; used for files such as kustomizations.
pub(crate) fn parse_documents(
    file: &str,
    text: &str,
    budget: &mut Budget,
) -> Result<Vec<Value>, RenderError> {
    parse_yaml(file, text, budget)
}

fn parse_yaml(file: &str, text: &str, budget: &mut Budget) -> Result<Vec<Value>, RenderError> {
    parse_yaml_checked(file, text, budget).map_err(YamlFailure::into_error)
}

/// Why a YAML text did not parse: bad syntax (a lenient caller may skip the file) or a
/// budget breach (never skipped: the file is hostile or too large).
enum YamlFailure {
    Syntax(RenderError),
    Fatal(RenderError),
}

impl YamlFailure {
    fn into_error(self) -> RenderError {
        match self {
            YamlFailure::Syntax(err) | YamlFailure::Fatal(err) => err,
        }
    }
}

fn parse_yaml_checked(
    file: &str,
    text: &str,
    budget: &mut Budget,
) -> Result<Vec<Value>, YamlFailure> {
    let failure = |err: serde_saphyr::Error| {
        if is_budget_breach(&err) {
            YamlFailure::Fatal(yaml_error(file, &err))
        } else {
            YamlFailure::Syntax(yaml_error(file, &err))
        }
    };
    // Without an alias nothing expands, so the parsed value is bounded by the file size and is
    // measured after parsing; otherwise the file is measured first, without keeping anything,
    // so an alias bomb is refused before it is built.
    if may_contain_alias(text) {
        let sizes: Vec<Expanded> =
            serde_saphyr::from_multiple_with_options(text, options(budget)).map_err(failure)?;
        let mut total = Expanded::default();
        for size in sizes {
            total.nodes = total.nodes.saturating_add(size.nodes);
            total.bytes = total.bytes.saturating_add(size.bytes);
        }
        budget
            .check_expanded(file, total)
            .map_err(YamlFailure::Fatal)?;
    }
    let documents: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options(budget)).map_err(failure)?;
    for document in &documents {
        budget
            .charge_expanded(file, Expanded::of(document))
            .map_err(YamlFailure::Fatal)?;
    }
    Ok(documents)
}

/// serde-saphyr's own limits (events, anchors, alias replay) were hit, directly or behind the
/// alias or snippet wrappers it reports them in.
fn is_budget_breach(err: &serde_saphyr::Error) -> bool {
    match err {
        serde_saphyr::Error::AliasError { error, .. }
        | serde_saphyr::Error::WithSnippet { error, .. } => return is_budget_breach(error),
        _ => {}
    }
    matches!(
        err,
        serde_saphyr::Error::Budget { .. }
            | serde_saphyr::Error::AliasReplayCounterOverflow { .. }
            | serde_saphyr::Error::AliasReplayLimitExceeded { .. }
            | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
            | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. }
    )
}

/// What one file of a plain directory holds, read as Argo CD's repo-server reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lenient {
    /// The Kubernetes objects, `List` kinds flattened.
    pub objects: Vec<Value>,
    /// The file holds no Kubernetes object at all (a `values.yaml`, docs) and was skipped.
    pub skipped: bool,
}

/// Parses one file of a plain directory source as Argo CD does, leniently where
/// `parse_budgeted` is strict: a YAML file holding no Kubernetes object at all is skipped, and
/// so is one that does not parse unless objects came before the failure or its text contains
/// `apiVersion:`, `kind:` and `metadata:`; a file mixing objects with anything else is an
/// error naming the document. A `*.json` file holds one object, a `List` or an array of
/// objects. Budgets are charged as in `parse_budgeted`, and a budget breach is always an error.
pub fn parse_lenient(file: &str, text: &str, budget: &mut Budget) -> Result<Lenient, RenderError> {
    if file.to_ascii_lowercase().ends_with(".json") {
        return Ok(Lenient {
            objects: parse_json_manifest(file, text, budget)?,
            skipped: false,
        });
    }
    let documents = match parse_yaml_checked(file, text, budget) {
        Ok(documents) => documents,
        Err(YamlFailure::Fatal(err)) => return Err(err),
        Err(YamlFailure::Syntax(err)) => return unparsable(file, text, err, budget),
    };
    let mut objects = Vec::new();
    let mut recognised = false;
    let mut first_other: Option<(usize, String)> = None;
    for (index, document) in documents.into_iter().enumerate() {
        match shape(&document) {
            Shape::Null => {}
            Shape::NullList => recognised = true,
            Shape::Object => {
                recognised = true;
                flatten(file, index, document, 0, &mut objects, budget)?;
            }
            Shape::Other(message) => {
                first_other.get_or_insert((index, message));
            }
        }
    }
    match first_other {
        Some((index, message)) if recognised || looks_like_a_manifest(text) => {
            Err(RenderError::NotAnObject {
                file: file.to_string(),
                index,
                message,
            })
        }
        Some(_) => Ok(Lenient {
            objects: Vec::new(),
            skipped: true,
        }),
        None => Ok(Lenient {
            objects,
            skipped: !recognised,
        }),
    }
}

/// The kinds of YAML document a directory file may hold.
enum Shape {
    /// An empty or `null` document.
    Null,
    /// A `List` whose `items` is null: dropped, as Argo CD does.
    NullList,
    /// A Kubernetes object or a `List` of them.
    Object,
    /// Anything else, with what is wrong.
    Other(String),
}

fn shape(document: &Value) -> Shape {
    if document.is_null() {
        Shape::Null
    } else if is_null_list(document) {
        Shape::NullList
    } else if is_list(document) {
        Shape::Object
    } else {
        match check_object(document) {
            Ok(()) => Shape::Object,
            Err(message) => Shape::Other(message),
        }
    }
}

/// Argo CD's heuristic for a YAML file that does not parse: an error if it looks like a
/// manifest, else an unrelated file to ignore.
fn looks_like_a_manifest(text: &str) -> bool {
    text.contains("apiVersion:") && text.contains("kind:") && text.contains("metadata:")
}

/// A file that does not parse is an error if valid objects came before the broken document
/// or it looks like a manifest (naming the document); otherwise it is skipped.
fn unparsable(
    file: &str,
    text: &str,
    err: RenderError,
    budget: &Budget,
) -> Result<Lenient, RenderError> {
    // The documents before the failure are parsed one by one, against a copy of the budget:
    // they only decide between error and skip, and are not kept.
    let mut scratch = budget.clone();
    let mut objects_before = 0usize;
    let mut broken = None;
    for (index, chunk) in split_documents(text).into_iter().enumerate() {
        match parse_yaml_checked(file, chunk, &mut scratch) {
            Ok(documents) => {
                objects_before += documents
                    .iter()
                    .filter(|d| matches!(shape(d), Shape::Object | Shape::NullList))
                    .count();
            }
            Err(_) => {
                broken = Some(index);
                break;
            }
        }
    }
    if objects_before == 0 && !looks_like_a_manifest(text) {
        return Ok(Lenient {
            objects: Vec::new(),
            skipped: true,
        });
    }
    Err(match (err, broken) {
        (RenderError::Parse { file, message }, Some(index)) => RenderError::Parse {
            file,
            message: format!("document {index}: {message}"),
        },
        (err, _) => err,
    })
}

/// Splits YAML text at `---` lines (followed by nothing or a comment), as Kubernetes' YAML
/// reader does.
fn split_documents(text: &str) -> Vec<&str> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if rest.is_empty() || rest.starts_with('#') {
                chunks.push(&text[start..offset]);
                start = offset + line.len();
            }
        }
        offset += line.len();
    }
    chunks.push(&text[start..]);
    chunks
}

/// A `*.json` manifest: one object, a `List`, or an array of objects.
fn parse_json_manifest(
    file: &str,
    text: &str,
    budget: &mut Budget,
) -> Result<Vec<Value>, RenderError> {
    let parse_error = |message: String| RenderError::Parse {
        file: file.to_string(),
        message,
    };
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let value = match values.next() {
        Some(Ok(value)) => value,
        Some(Err(err)) => return Err(json_error(file, &err)),
        None => {
            return Err(parse_error(
                "empty JSON file: a JSON manifest holds one object, a List or an array of objects"
                    .into(),
            ));
        }
    };
    match values.next() {
        None => {}
        Some(Ok(_)) => {
            return Err(parse_error(
                "found more than one JSON value; a JSON manifest holds one object, a List or an \
                 array of objects"
                    .into(),
            ));
        }
        Some(Err(err)) => return Err(json_error(file, &err)),
    }
    // JSON has no aliases: the value is no larger than the file, so it is measured after.
    budget.charge_expanded(file, Expanded::of(&value))?;
    let mut objects = Vec::new();
    match value {
        Value::Array(items) => {
            for (index, item) in items.into_iter().enumerate() {
                if !item.is_object() {
                    return Err(RenderError::NotAnObject {
                        file: file.to_string(),
                        index,
                        message: format!(
                            "a JSON array of manifests may hold only objects, not {}",
                            type_name(&item)
                        ),
                    });
                }
                flatten(file, index, item, 0, &mut objects, budget)?;
            }
        }
        Value::Object(_) => flatten(file, 0, value, 0, &mut objects, budget)?,
        other => {
            return Err(RenderError::NotAnObject {
                file: file.to_string(),
                index: 0,
                message: format!(
                    "a JSON manifest must be an object, a List or an array of objects, not {}",
                    type_name(&other)
                ),
            });
        }
    }
    Ok(objects)
}

fn json_error(file: &str, err: &serde_json::Error) -> RenderError {
    RenderError::Parse {
        file: file.to_string(),
        message: format!(
            "invalid JSON at line {}, column {}: {err}",
            err.line(),
            err.column()
        ),
    }
}

/// Whether `text` may hold an alias; never false when it does. An alias starts a node, so it
/// follows whitespace or a flow indicator: a `*` right after a letter, digit, quote, bracket or
/// regex character (globs, patterns, RBAC `"*"`) is not one.
fn may_contain_alias(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'*'
            && (i == 0 || {
                let before = bytes[i - 1];
                !(before.is_ascii_alphanumeric() || b"'\"])}./^$\\*".contains(&before))
            })
    })
}

/// serde-saphyr's own budgets count the file as written (an alias is one node); they bound the
/// work of one parse, while `Budget` bounds what the whole source holds once expanded.
fn options(budget: &Budget) -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    let mut limits = serde_saphyr::Budget::default();
    limits.max_documents = budget.limits().max_documents;
    limits.max_depth = 100;
    // Large CRDs are legitimate; the defaults (250k nodes, 1M events) are sized for config
    // files.
    limits.max_nodes = 1_000_000;
    limits.max_events = 3_000_000;
    options.budget = Some(limits);
    options
}

fn yaml_error(file: &str, err: &serde_saphyr::Error) -> RenderError {
    let mut message = one_line(&err.to_string());
    if !message.contains("line ")
        && let Some(location) = err.location()
    {
        message = format!(
            "{message} at line {}, column {}",
            location.line(),
            location.column()
        );
    }
    RenderError::Parse {
        file: file.to_string(),
        message: format!("invalid YAML: {message}"),
    }
}

/// Pushes `document` (or the items of a `*List` kind) after checking each is an object; a
/// `List` whose `items` is null is dropped.
pub(super) fn flatten(
    file: &str,
    index: usize,
    document: Value,
    nesting: usize,
    out: &mut Vec<Value>,
    budget: &mut Budget,
) -> Result<(), RenderError> {
    let not_an_object = |message: String| RenderError::NotAnObject {
        file: file.to_string(),
        index,
        message,
    };
    if document.is_null() || is_null_list(&document) {
        return Ok(());
    }
    if is_list(&document) {
        if nesting >= MAX_LIST_NESTING {
            return Err(not_an_object("List kinds nested too deeply".into()));
        }
        let Value::Object(mut list) = document else {
            return Err(not_an_object("not an object".into()));
        };
        if let Some(Value::Array(items)) = list.remove("items") {
            for item in items {
                flatten(file, index, item, nesting + 1, out, budget)?;
            }
        }
        return Ok(());
    }
    check_object(&document).map_err(not_an_object)?;
    budget.charge_object(file)?;
    out.push(document);
    Ok(())
}

/// A `*List` kind with its items.
fn is_list(document: &Value) -> bool {
    document
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.ends_with("List"))
        && document.get("items").is_some_and(Value::is_array)
}

/// Argo CD drops an object whose `items` is null and that has no `spec` or `status` (an empty
/// `List` as templates often render it).
fn is_null_list(document: &Value) -> bool {
    document.get("items").is_some_and(Value::is_null)
        && document.get("spec").is_none()
        && document.get("status").is_none()
}

/// A Kubernetes object has a string apiVersion and kind and a metadata.name or generateName.
fn check_object(document: &Value) -> Result<(), String> {
    let Value::Object(object) = document else {
        return Err(format!(
            "expected a Kubernetes object, found {}",
            type_name(document)
        ));
    };
    let non_empty =
        |value: Option<&Value>| value.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    if !non_empty(object.get("apiVersion")) {
        return Err("missing apiVersion".into());
    }
    if !non_empty(object.get("kind")) {
        return Err("missing kind".into());
    }
    let metadata = object.get("metadata");
    if !metadata.is_some_and(Value::is_object) {
        return Err("missing metadata".into());
    }
    if !non_empty(metadata.and_then(|m| m.get("name")))
        && !non_empty(metadata.and_then(|m| m.get("generateName")))
    {
        return Err("missing metadata.name (or metadata.generateName)".into());
    }
    Ok(())
}

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(file: &str, text: &str) -> Result<Vec<Value>, RenderError> {
        parse_manifests(file, text)
    }

    #[test]
    fn multi_document_yaml_skips_empty_documents() {
        let text = "---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\nnull\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: b-\n";
        let objects = parse("x.yaml", text).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0]["metadata"]["name"], "a");
        assert_eq!(objects[1]["metadata"]["generateName"], "b-");
    }

    #[test]
    fn lists_are_flattened() {
        let text = r#"{"apiVersion":"v1","kind":"ConfigMapList","items":[
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},
            {"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b"}}]}]}"#;
        let objects = parse("l.json", text).unwrap();
        let names: Vec<_> = objects
            .iter()
            .map(|o| o["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, vec!["a", "b"]);
    }

    #[test]
    fn documents_that_are_not_objects_are_refused_with_their_index() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n- 1\n";
        match parse("x.yaml", text) {
            Err(RenderError::NotAnObject { file, index, .. }) => {
                assert_eq!((file.as_str(), index), ("x.yaml", 1));
            }
            other => panic!("{other:?}"),
        }
        for text in [
            "kind: A\nmetadata: {name: a}",
            "apiVersion: v1\nmetadata: {name: a}",
            "apiVersion: v1\nkind: A",
            "apiVersion: v1\nkind: A\nmetadata: {labels: {}}",
            "just a string",
        ] {
            assert!(
                matches!(parse("x.yaml", text), Err(RenderError::NotAnObject { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let err = parse(
            "dir/bad.yaml",
            "apiVersion: v1\nkind: [unclosed\nmetadata: x\n",
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("dir/bad.yaml: "), "{message}");
        assert!(message.contains("line "), "{message}");
        let err = parse("bad.json", "{\n\"a\": }").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    /// Twelve levels of nine aliases each: 9^12 "lol"s once expanded.
    fn alias_bomb() -> String {
        let mut text = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
            ));
        }
        text
    }

    #[test]
    fn alias_bombs_hit_a_budget() {
        let text = alias_bomb();
        assert!(matches!(
            parse("bomb.yaml", &text),
            Err(RenderError::Parse { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let yaml = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse("deep.yaml", &yaml).is_err());
        let json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse("deep.json", &json).is_err());
    }

    #[test]
    fn too_many_documents_is_too_large() {
        let limits = Limits {
            max_documents: 3,
            ..Limits::default()
        };
        let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n";
        let err =
            parse_budgeted("many.yaml", &doc.repeat(10), &mut Budget::new(limits)).unwrap_err();
        assert!(
            matches!(
                err,
                RenderError::TooLarge { .. } | RenderError::Parse { .. }
            ),
            "{err}"
        );
    }

    fn small_budget(max_expanded_bytes: u64, max_nodes: u64) -> Budget {
        Budget::new(Limits {
            max_expanded_bytes,
            max_nodes,
            ..Limits::default()
        })
    }

    /// 8 copies of a 1,000-byte string behind one alias level: ~9 KB once expanded.
    fn expanding(name: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  s: &s {}\n  l: [*s, *s, *s, *s, *s, *s, *s, *s]\n",
            "x".repeat(1000)
        )
    }

    #[test]
    fn aliases_count_as_expanded_against_the_budget_of_the_whole_source() {
        let mut budget = small_budget(20_000, 1_000);
        parse_budgeted("a.yaml", &expanding("a"), &mut budget).unwrap();
        parse_budgeted("b.yaml", &expanding("b"), &mut budget).unwrap();
        match parse_budgeted("c.yaml", &expanding("c"), &mut budget) {
            Err(RenderError::TooLarge { what, limit }) => {
                assert!(
                    what.contains("c.yaml") && what.contains("aliases expanded"),
                    "{what}"
                );
                assert_eq!(limit, 20_000);
            }
            other => panic!("{other:?}"),
        }
        // A refused file is not charged: something small still fits after it.
        let small = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n";
        assert_eq!(
            parse_budgeted("d.yaml", small, &mut budget).unwrap().len(),
            1
        );
    }

    #[test]
    fn files_without_aliases_and_json_files_are_charged_too() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata: {a: b, c: d}\n";
        let json = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}"#;
        let mut budget = small_budget(u64::MAX, 20);
        parse_budgeted("a.yaml", yaml, &mut budget).unwrap();
        assert!(matches!(
            parse_budgeted("b.yaml", yaml, &mut budget),
            Err(RenderError::TooLarge { .. })
        ));
        let mut budget = small_budget(u64::MAX, 10);
        parse_budgeted("a.json", json, &mut budget).unwrap();
        assert!(matches!(
            parse_budgeted("b.json", json, &mut budget),
            Err(RenderError::TooLarge { .. })
        ));
    }

    #[test]
    fn alias_detection_never_misses_an_alias_and_skips_globs_and_patterns() {
        for text in [
            "*a",
            "a: *x",
            "- *x",
            "[*a,*b]",
            "{\"k\":*a}",
            "a:\n\t*x",
            "? *k\n: v",
        ] {
            assert!(may_contain_alias(text), "{text}");
        }
        for text in [
            "pattern: '^[a-z]*$'",
            "verbs: [\"*\"]",
            "a: b*c",
            "host: '*.example.com'",
            "regex: .*",
            "no star at all",
        ] {
            assert!(!may_contain_alias(text), "{text}");
        }
    }

    fn lenient(file: &str, text: &str) -> Result<Lenient, RenderError> {
        parse_lenient(file, text, &mut Budget::new(Limits::default()))
    }

    #[test]
    fn lenient_parsing_skips_files_without_objects_and_refuses_mixed_ones() {
        for text in [
            "replicaCount: 1\nimage: {tag: x}\n",
            "- a\n- b\n",
            "# only a comment\n",
            "just text\n---\nmore: text\n",
            "broken: [unclosed\n",
        ] {
            let parsed = lenient("values.yaml", text).unwrap();
            assert!(parsed.skipped && parsed.objects.is_empty(), "{text}");
        }
        let parsed = lenient(
            "ok.yaml",
            &format!(
                "---\n{}",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
            ),
        )
        .unwrap();
        assert!(!parsed.skipped);
        assert_eq!(parsed.objects.len(), 1);
        // Mixed: an error naming the document, in either order.
        let object = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
        for (text, at) in [
            (format!("{object}---\nfoo: bar\n"), 1),
            (format!("foo: bar\n---\n{object}"), 0),
        ] {
            match lenient("m.yaml", &text) {
                Err(RenderError::NotAnObject { file, index, .. }) => {
                    assert_eq!((file.as_str(), index), ("m.yaml", at));
                }
                other => panic!("{other:?}"),
            }
        }
        // A parse failure after an object, or in a file that looks like a manifest.
        for (text, document) in [
            (
                format!("{object}---\n{object}---\nkey: [unclosed\n"),
                "document 2",
            ),
            (
                "apiVersion: v1\nkind: X\nmetadata: [unclosed\n".to_string(),
                "document 0",
            ),
        ] {
            match lenient("b.yaml", &text) {
                Err(RenderError::Parse { file, message }) => {
                    assert_eq!(file, "b.yaml");
                    assert!(message.contains(document), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn lenient_parsing_never_skips_a_budget_breach() {
        // An alias bomb without anything that looks like a manifest is still an error.
        let text = alias_bomb();
        match lenient("bomb.yaml", &text) {
            Err(RenderError::Parse { file, message }) => {
                assert_eq!(file, "bomb.yaml");
                assert!(message.contains("budget"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Nesting past the parser's recursion limit stops the parse (a syntax error, so a
        // file that does not look like a manifest is skipped) instead of overflowing the stack.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let parsed = lenient("deep.yaml", &deep).unwrap();
        assert!(parsed.skipped && parsed.objects.is_empty());
        let mut budget = Budget::new(Limits {
            max_nodes: 5,
            ..Limits::default()
        });
        assert!(matches!(
            parse_lenient("big.yaml", "a: 1\nb: 2\nc: 3\nd: 4\n", &mut budget),
            Err(RenderError::TooLarge { .. })
        ));
    }

    #[test]
    fn null_lists_are_dropped_but_objects_with_null_items_and_a_spec_are_kept() {
        let parsed = lenient(
            "l.yaml",
            "apiVersion: v1\nkind: List\nitems: null\n---\napiVersion: x/v1\nkind: Thing\nmetadata: {name: t}\nitems: null\nspec: {}\n",
        )
        .unwrap();
        assert!(!parsed.skipped);
        assert_eq!(parsed.objects.len(), 1);
        assert_eq!(parsed.objects[0]["kind"], "Thing");
    }

    #[test]
    fn documents_split_at_separator_lines_only() {
        assert_eq!(
            split_documents("a: 1\n---\nb: 2\n--- # c\nc: 3\n---x: 4\n"),
            ["a: 1\n", "b: 2\n", "c: 3\n---x: 4\n"]
        );
    }
}
