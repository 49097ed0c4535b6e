//! Who may do what: Argo CD's RBAC, evaluated by casbin with Argo CD's model. Policy lines are
//! `p, SUBJECT, RESOURCE, ACTION, OBJECT, EFFECT` and `g, USER_OR_GROUP, ROLE`; a request is
//! allowed when one of the person's subjects (the default role, the user, each group) has an
//! allow and no deny for it, as in Argo CD.

pub mod glob;
pub mod live;
pub mod policy;
pub mod project_roles;

use std::collections::{HashMap, HashSet};

use casbin::function_map::OperatorFunction;
use casbin::rhai::Dynamic;
use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi, RbacApi};

pub use live::LivePolicy;
pub use policy::{Line, PolicyError};
pub use project_roles::ProjectRole;

/// Argo CD's casbin model: role links through `g`, globs on resource, action and object, and an
/// explicit deny beating any allow.
const MODEL: &str = "
[request_definition]
r = sub, res, act, obj

[policy_definition]
p = sub, res, act, obj, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && policyGlob(r.res, p.res) && policyGlob(r.act, p.act) && policyGlob(r.obj, p.obj)
";

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("the policy engine refused the policy: {0}")]
    Engine(String),
}

/// The person (or token) asking: a user name and the groups their identity provider gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub user: String,
    pub groups: Vec<String>,
}

impl Subject {
    /// A subject with no groups.
    pub fn user(name: &str) -> Subject {
        Subject {
            user: name.to_string(),
            groups: Vec::new(),
        }
    }
}

/// A refused request, worded as Argo CD words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission denied: {resource}, {action}, {object}, sub: {user}")]
pub struct Denied {
    pub resource: String,
    pub action: String,
    pub object: String,
    pub user: String,
}

/// The loaded policy: built-in roles, `policy.csv`, project roles and the default role.
///
/// casbin evaluates the matcher once per policy line, so one enforcer over a thousand lines
/// costs a thousand evaluations a decision. Each subject therefore gets its own enforcer holding
/// only the lines it can reach (its own, and its roles' through `g`), built once at load:
/// a decision evaluates a handful of lines, with casbin's semantics unchanged.
pub struct Rbac {
    by_subject: HashMap<String, Enforcer>,
    default_role: Option<String>,
}

impl Rbac {
    /// Loads `policy_csv` over the built-in roles, plus every project's roles; `default_role`
    /// (`policy.default`, e.g. `role:readonly`) applies to everyone signed in, empty for none.
    pub async fn new(
        policy_csv: &str,
        default_role: &str,
        projects: &[(String, Vec<ProjectRole>)],
    ) -> Result<Rbac, RbacError> {
        let mut lines = policy::parse("built-in policy", policy::BUILTIN)?;
        lines.extend(policy::parse("policy.csv", policy_csv)?);
        for (project, roles) in projects {
            for role in roles {
                lines.extend(project_roles::lines(project, role)?);
            }
        }
        // casbin adds nothing from a batch holding a rule it already has, so repeats go first.
        let mut seen = HashSet::new();
        lines.retain(|line| seen.insert(line.clone()));
        let everything = enforcer(&lines).await?;
        let mut subjects: Vec<&str> = Vec::new();
        for line in &lines {
            match line {
                Line::Permission { subject, .. } => subjects.push(subject),
                Line::Grant { member, role } => subjects.extend([member.as_str(), role.as_str()]),
            }
        }
        subjects.sort_unstable();
        subjects.dedup();
        let mut by_subject = HashMap::with_capacity(subjects.len());
        for subject in subjects {
            let mut reach: HashSet<String> = everything
                .get_implicit_roles_for_user(subject, None)
                .into_iter()
                .collect();
            reach.insert(subject.to_string());
            let own: Vec<Line> = lines
                .iter()
                .filter(|line| match line {
                    Line::Permission { subject, .. } => reach.contains(subject),
                    Line::Grant { member, .. } => reach.contains(member),
                })
                .cloned()
                .collect();
            if own.iter().any(|l| matches!(l, Line::Permission { .. })) {
                by_subject.insert(subject.to_string(), enforcer(&own).await?);
            }
        }
        Ok(Rbac {
            by_subject,
            default_role: Some(default_role.trim())
                .filter(|r| !r.is_empty())
                .map(str::to_string),
        })
    }

    /// Whether `subject` may do `action` on `resource` `object` (`project/app` for apps).
    pub fn allows(&self, subject: &Subject, resource: &str, action: &str, object: &str) -> bool {
        let subjects = self
            .default_role
            .iter()
            .chain(std::iter::once(&subject.user))
            .chain(subject.groups.iter());
        for sub in subjects {
            // A subject no policy line reaches is allowed nothing.
            let Some(enforcer) = self.by_subject.get(sub) else {
                continue;
            };
            match enforcer.enforce((sub.as_str(), resource, action, object)) {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "policy evaluation failed; treated as a refusal");
                }
            }
        }
        false
    }

    /// [`Rbac::allows`], as an error naming what was refused.
    pub fn check(
        &self,
        subject: &Subject,
        resource: &str,
        action: &str,
        object: &str,
    ) -> Result<(), Denied> {
        if self.allows(subject, resource, action, object) {
            return Ok(());
        }
        Err(Denied {
            resource: resource.to_string(),
            action: action.to_string(),
            object: object.to_string(),
            user: subject.user.clone(),
        })
    }
}

/// An enforcer with Argo CD's model holding `lines`.
async fn enforcer(lines: &[Line]) -> Result<Enforcer, RbacError> {
    let engine = |e: casbin::Error| RbacError::Engine(e.to_string());
    let model = DefaultModel::from_str(MODEL).await.map_err(engine)?;
    let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
        .await
        .map_err(engine)?;
    enforcer.add_function(
        "policyGlob",
        OperatorFunction::Arg2(|value: Dynamic, pattern: Dynamic| {
            let (value, pattern) = (value.to_string(), pattern.to_string());
            glob::matches(&value, &pattern).into()
        }),
    );
    let (mut permissions, mut grants) = (Vec::new(), Vec::new());
    for line in lines {
        match line.casbin() {
            ("p", fields) => permissions.push(fields),
            (_, fields) => grants.push(fields),
        }
    }
    if !permissions.is_empty() {
        enforcer
            .add_named_policies("p", permissions)
            .await
            .map_err(engine)?;
    }
    if !grants.is_empty() {
        enforcer
            .add_named_grouping_policies("g", grants)
            .await
            .map_err(engine)?;
    }
    Ok(enforcer)
}

#[cfg(test)]
mod tests;
