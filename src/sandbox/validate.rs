//! Object validation the sandbox enforces: names, and kind/apiVersion against the URL.

use serde_json::Value;

use super::resources::ResourceType;
use super::status::ApiError;

fn alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Whether `s` is an RFC 1123 label (namespaces, services).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| alnum(c) || c == '-')
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

/// Whether `s` is an RFC 1123 subdomain (most objects).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| alnum(c) || c == '-')
                && l.starts_with(alnum)
                && l.ends_with(alnum)
        })
}

/// Whether `s` can appear as one URL path segment (RBAC names allow `:` and more).
pub fn is_path_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && s.len() <= 253 && !s.contains(['/', '%'])
}

/// Checks `metadata.name` the way Kubernetes does for this resource.
pub fn check_name(rt: &ResourceType, name: &str, obj: &Value) -> Result<(), ApiError> {
    let invalid = |why: &str| {
        ApiError::invalid(
            &rt.group,
            &rt.kind,
            name,
            format!("metadata.name: Invalid value: \"{name}\": {why}"),
        )
    };
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") | ("", "services") => {
            if !is_dns_label(name) {
                return Err(invalid(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                ));
            }
        }
        ("rbac.authorization.k8s.io", _) => {
            if !is_path_segment(name) {
                return Err(invalid("may not contain '/' or '%'"));
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            let spec = &obj["spec"];
            let want = format!(
                "{}.{}",
                spec["names"]["plural"].as_str().unwrap_or(""),
                spec["group"].as_str().unwrap_or("")
            );
            if name != want {
                return Err(invalid("must be spec.names.plural+\".\"+spec.group"));
            }
            if spec["names"]["kind"].as_str().is_none_or(str::is_empty)
                || spec["versions"].as_array().is_none_or(Vec::is_empty)
            {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    name,
                    "spec.names.kind: Required value, spec.versions: Required value",
                ));
            }
        }
        _ => {
            if !is_dns_subdomain(name) {
                return Err(invalid(
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ));
            }
        }
    }
    Ok(())
}

/// Checks that `kind` and `apiVersion` (when present) match the URL, and fills them in.
pub fn check_type(rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
    let want_api = rt.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = Value::String(want_api),
        Some(got) if got == want_api => {}
        Some(got) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({got}) does not match the expected API version ({want_api})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = Value::String(rt.kind.clone()),
        Some(got) if got == rt.kind => {}
        Some(got) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({got}) does not match the expected kind ({})",
                rt.kind
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns_label("web-1"));
        assert!(!is_dns_label("Web"));
        assert!(!is_dns_label("a.b"));
        assert!(is_dns_subdomain("a.b-c"));
        assert!(!is_dns_subdomain("a..b"));
        assert!(!is_dns_subdomain("-a"));
        assert!(is_path_segment("system:controller"));
        assert!(!is_path_segment("a/b"));
    }
}
