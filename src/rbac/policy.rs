//! Argo CD's RBAC policy text (`policy.csv` of argocd-rbac-cm): `p` and `g` lines, parsed and
//! checked line by line so a typo is an error naming its line, never a rule that silently
//! matches nothing.

/// Resources a `p` line may name (Argo CD's, plus `*`).
pub const RESOURCES: &[&str] = &[
    "applications",
    "applicationsets",
    "projects",
    "clusters",
    "repositories",
    "accounts",
    "certificates",
    "gpgkeys",
    "logs",
    "exec",
    "extensions",
    "*",
];

/// One checked policy line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Line {
    /// `p, SUBJECT, RESOURCE, ACTION, OBJECT, EFFECT`.
    Permission {
        subject: String,
        resource: String,
        action: String,
        object: String,
        allow: bool,
    },
    /// `g, USER_OR_GROUP, ROLE`.
    Grant { member: String, role: String },
}

impl Line {
    /// The casbin policy type (`p` or `g`) and its fields.
    pub(super) fn casbin(&self) -> (&'static str, Vec<String>) {
        match self {
            Line::Permission {
                subject,
                resource,
                action,
                object,
                allow,
            } => (
                "p",
                vec![
                    subject.clone(),
                    resource.clone(),
                    action.clone(),
                    object.clone(),
                    if *allow { "allow" } else { "deny" }.to_string(),
                ],
            ),
            Line::Grant { member, role } => ("g", vec![member.clone(), role.clone()]),
        }
    }
}

/// Why policy text was refused; `line` counts from 1 within its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name} line {line}: {reason}")]
pub struct PolicyError {
    pub source_name: String,
    pub line: usize,
    pub reason: String,
}

/// Parses CSV policy text; blank lines and `#` comments are skipped. `source_name` names it in
/// errors (`policy.csv`, `project team-a role deployer`).
pub fn parse(source_name: &str, text: &str) -> Result<Vec<Line>, PolicyError> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let line = parse_line(trimmed).map_err(|reason| PolicyError {
            source_name: source_name.to_string(),
            line: index + 1,
            reason,
        })?;
        lines.push(line);
    }
    Ok(lines)
}

/// One non-empty line.
pub fn parse_line(text: &str) -> Result<Line, String> {
    let fields: Vec<&str> = split_csv(text);
    match fields.first().copied() {
        Some("p") => {
            let [_, subject, resource, action, object, rest @ ..] = fields.as_slice() else {
                return Err(format!(
                    "a p line has 5 or 6 fields (p, subject, resource, action, object, effect): {text:?}"
                ));
            };
            let allow = match rest {
                [] | ["allow"] => true,
                ["deny"] => false,
                [other] => {
                    return Err(format!("effect must be allow or deny, not {other:?}"));
                }
                _ => return Err(format!("too many fields: {text:?}")),
            };
            for (name, value) in [
                ("subject", subject),
                ("resource", resource),
                ("action", action),
                ("object", object),
            ] {
                if value.is_empty() {
                    return Err(format!("the {name} is empty: {text:?}"));
                }
            }
            if !RESOURCES.contains(resource) {
                return Err(format!(
                    "unknown resource {resource:?} (one of {})",
                    RESOURCES.join(", ")
                ));
            }
            check_glob(object)?;
            check_glob(action)?;
            Ok(Line::Permission {
                subject: subject.to_string(),
                resource: resource.to_string(),
                action: action.to_string(),
                object: object.to_string(),
                allow,
            })
        }
        Some("g") => match fields.as_slice() {
            [_, member, role] if !member.is_empty() && !role.is_empty() => Ok(Line::Grant {
                member: member.to_string(),
                role: role.to_string(),
            }),
            _ => Err(format!(
                "a g line has 3 fields (g, user or group, role): {text:?}"
            )),
        },
        _ => Err(format!("a line starts with p or g: {text:?}")),
    }
}

/// Fields separated by commas, trimmed; a field in double quotes may hold commas (Argo CD's
/// policies are read by a CSV reader, and OIDC group names can contain commas).
fn split_csv(text: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if let Some(quoted) = trimmed.strip_prefix('"')
            && let Some(end) = quoted.find('"')
        {
            fields.push(&quoted[..end]);
            let after = quoted[end + 1..].trim_start();
            match after.strip_prefix(',') {
                Some(next) => rest = next,
                None => return fields,
            }
            continue;
        }
        match trimmed.split_once(',') {
            Some((field, next)) => {
                fields.push(field.trim());
                rest = next;
            }
            None => {
                fields.push(trimmed.trim());
                return fields;
            }
        }
    }
}

/// A pattern the matcher can compile; checked here so enforcement never meets a bad one.
fn check_glob(pattern: &str) -> Result<(), String> {
    super::glob::compile(pattern)
        .map(|_| ())
        .map_err(|e| format!("invalid pattern {pattern:?}: {e}"))
}

/// Argo CD's built-in roles: `role:readonly` reads everything, `role:admin` does everything,
/// and the local `admin` account is an admin.
pub const BUILTIN: &str = "\
p, role:readonly, applications, get, */*, allow
p, role:readonly, applicationsets, get, */*, allow
p, role:readonly, certificates, get, *, allow
p, role:readonly, clusters, get, *, allow
p, role:readonly, repositories, get, *, allow
p, role:readonly, projects, get, *, allow
p, role:readonly, accounts, get, *, allow
p, role:readonly, gpgkeys, get, *, allow
p, role:readonly, logs, get, */*, allow
p, role:admin, applications, create, */*, allow
p, role:admin, applications, update, */*, allow
p, role:admin, applications, update/*, */*, allow
p, role:admin, applications, delete, */*, allow
p, role:admin, applications, delete/*, */*, allow
p, role:admin, applications, sync, */*, allow
p, role:admin, applications, override, */*, allow
p, role:admin, applications, action/*, */*, allow
p, role:admin, applicationsets, create, */*, allow
p, role:admin, applicationsets, update, */*, allow
p, role:admin, applicationsets, delete, */*, allow
p, role:admin, certificates, create, *, allow
p, role:admin, certificates, update, *, allow
p, role:admin, certificates, delete, *, allow
p, role:admin, clusters, create, *, allow
p, role:admin, clusters, update, *, allow
p, role:admin, clusters, delete, *, allow
p, role:admin, repositories, create, *, allow
p, role:admin, repositories, update, *, allow
p, role:admin, repositories, delete, *, allow
p, role:admin, projects, create, *, allow
p, role:admin, projects, update, *, allow
p, role:admin, projects, delete, *, allow
p, role:admin, accounts, update, *, allow
p, role:admin, gpgkeys, create, *, allow
p, role:admin, gpgkeys, delete, *, allow
p, role:admin, exec, create, */*, allow
p, role:admin, extensions, invoke, *, allow
g, role:admin, role:readonly
g, admin, role:admin
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_and_without_an_effect() {
        let lines = parse(
            "policy.csv",
            "# team a\np, role:dev, applications, sync, team-a/*, allow\n\n\
             p, role:dev, applications, delete, team-a/*\ng, my-org:dev-team, role:dev\n\
             p, role:dev, applications, delete, team-a/prod, deny\n",
        )
        .expect("valid");
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            Line::Permission {
                subject: "role:dev".into(),
                resource: "applications".into(),
                action: "sync".into(),
                object: "team-a/*".into(),
                allow: true,
            }
        );
        assert!(matches!(&lines[1], Line::Permission { allow: true, .. }));
        assert!(matches!(&lines[3], Line::Permission { allow: false, .. }));
        assert_eq!(
            lines[2],
            Line::Grant {
                member: "my-org:dev-team".into(),
                role: "role:dev".into()
            }
        );
    }

    #[test]
    fn a_typo_is_an_error_naming_its_line() {
        let cases = [
            (
                "p, role:x, application, get, */*, allow",
                "unknown resource",
            ),
            ("p, role:x, applications, get, */*, permit", "allow or deny"),
            ("p, role:x, applications, get", "5 or 6 fields"),
            ("g, alice", "3 fields"),
            ("x, alice, role:y", "starts with p or g"),
            ("p, role:x, applications, get, [a, allow", "invalid pattern"),
            ("p, , applications, get, */*, allow", "subject is empty"),
        ];
        for (text, expected) in cases {
            let err = parse("policy.csv", &format!("\n{text}")).expect_err(text);
            assert_eq!(err.line, 2, "{text}");
            assert!(err.to_string().contains(expected), "{text}: {err}");
            assert!(err.to_string().starts_with("policy.csv line 2"), "{err}");
        }
    }

    #[test]
    fn quoted_fields_keep_their_commas() {
        let line = parse_line(r#"g, "CN=ops,OU=groups,DC=example", role:admin"#).expect("valid");
        assert_eq!(
            line,
            Line::Grant {
                member: "CN=ops,OU=groups,DC=example".into(),
                role: "role:admin".into()
            }
        );
    }

    #[test]
    fn the_builtin_policy_parses() {
        assert!(parse("built-in", BUILTIN).expect("valid").len() > 30);
    }
}
