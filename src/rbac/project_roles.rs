//! Project roles (`AppProject.spec.roles`): policies whose subject is `proj:<project>:<role>`,
//! confined to the project's own objects, and the groups that hold the role.

use serde::Deserialize;

use super::policy::{self, Line, PolicyError};

/// Resources a project role may grant, on objects of its own project only.
const PROJECT_RESOURCES: &[&str] = &[
    "applications",
    "applicationsets",
    "repositories",
    "clusters",
    "logs",
    "exec",
];

/// One role of an AppProject, as Argo CD writes it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRole {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Tokens issued for the role; only their ids and times are kept here.
    #[serde(default)]
    pub jwt_tokens: Vec<RoleToken>,
}

/// A token issued for a project role (`iat`, optional `exp` and `id`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct RoleToken {
    pub iat: i64,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub id: Option<String>,
}

/// The subject a project role's policies name.
pub fn subject(project: &str, role: &str) -> String {
    format!("proj:{project}:{role}")
}

/// Reads `spec.roles` of the project `project`.
pub fn parse(project: &str, roles: &serde_json::Value) -> Result<Vec<ProjectRole>, PolicyError> {
    serde_json::from_value(roles.clone()).map_err(|e| PolicyError {
        source_name: format!("project {project} spec.roles"),
        line: 0,
        reason: e.to_string(),
    })
}

/// The policy lines of one role: its policies, checked to stay inside the project, and a
/// grant of the role to each of its groups.
pub fn lines(project: &str, role: &ProjectRole) -> Result<Vec<Line>, PolicyError> {
    let source_name = format!("project {project} role {}", role.name);
    let own = subject(project, &role.name);
    let mut out = Vec::new();
    for (index, text) in role.policies.iter().enumerate() {
        let error = |reason: String| PolicyError {
            source_name: source_name.clone(),
            line: index + 1,
            reason,
        };
        let line = policy::parse_line(text.trim()).map_err(error)?;
        let Line::Permission {
            subject,
            resource,
            object,
            ..
        } = &line
        else {
            return Err(error("a project role holds p lines only".into()));
        };
        if *subject != own {
            return Err(error(format!("the subject must be {own}, not {subject}")));
        }
        if !PROJECT_RESOURCES.contains(&resource.as_str()) {
            return Err(error(format!(
                "a project role cannot grant {resource} (only {})",
                PROJECT_RESOURCES.join(", ")
            )));
        }
        if !object.starts_with(&format!("{project}/")) {
            return Err(error(format!(
                "the object must be inside the project ({project}/…), not {object}"
            )));
        }
        out.push(line);
    }
    for group in &role.groups {
        out.push(Line::Grant {
            member: group.clone(),
            role: own.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(policies: &[&str], groups: &[&str]) -> ProjectRole {
        ProjectRole {
            name: "deployer".into(),
            policies: policies.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_role_grants_its_project_to_its_groups() {
        let lines = lines(
            "team-a",
            &role(
                &["p, proj:team-a:deployer, applications, sync, team-a/*, allow"],
                &["my-org:team-a"],
            ),
        )
        .expect("valid");
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[1],
            Line::Grant {
                member: "my-org:team-a".into(),
                role: "proj:team-a:deployer".into()
            }
        );
    }

    #[test]
    fn a_role_cannot_reach_outside_its_project() {
        for (policy, reason) in [
            (
                "p, proj:team-a:deployer, applications, sync, team-b/*, allow",
                "inside the project",
            ),
            (
                "p, proj:team-a:deployer, applications, sync, */*, allow",
                "inside the project",
            ),
            (
                "p, proj:team-b:deployer, applications, sync, team-a/*, allow",
                "subject must be",
            ),
            (
                "p, proj:team-a:deployer, projects, update, team-a/*, allow",
                "cannot grant projects",
            ),
            ("g, alice, role:admin", "p lines only"),
        ] {
            let err = lines("team-a", &role(&[policy], &[])).expect_err(policy);
            assert!(err.to_string().contains(reason), "{policy}: {err}");
            assert!(
                err.to_string()
                    .contains("project team-a role deployer line 1"),
                "{err}"
            );
        }
    }

    #[test]
    fn roles_parse_from_the_project_spec() {
        let roles = parse(
            "team-a",
            &serde_json::json!([{
                "name": "ci", "description": "CI",
                "policies": ["p, proj:team-a:ci, applications, sync, team-a/*, allow"],
                "jwtTokens": [{"iat": 1700000000, "id": "t1"}]
            }]),
        )
        .expect("valid");
        assert_eq!(roles[0].name, "ci");
        assert_eq!(roles[0].jwt_tokens[0].id.as_deref(), Some("t1"));
        assert!(parse("team-a", &serde_json::json!({"name": 1})).is_err());
    }
}
