//! Tenancy: where Applications are honoured, and what their AppProject lets them use.
//! The rules mirror Argo CD's AppProjects, stricter where Argo CD is permissive (see docs/security.md).

pub mod glob;
pub mod project;

use std::sync::Arc;

pub use project::{ProjectRules, Target, Violation};

use crate::store::project::DEFAULT_PROJECT;
use crate::store::{Application, ProjectStore};
use glob::{Pattern, allowed_by};

/// Why Capstan does not act on an Application where it lives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotHonoured {
    #[error(
        "namespace '{namespace}' is not one where Applications are honoured: use '{control}' or a namespace listed in applications.namespaces"
    )]
    Namespace { namespace: String, control: String },
    #[error(
        "namespace '{namespace}' is not in the sourceNamespaces of project '{project}', or the project does not exist"
    )]
    Project { namespace: String, project: String },
}

/// An Application names a project that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Application referencing project {project} which does not exist")]
pub struct MissingProject {
    pub project: String,
}

/// The tenancy rules of one control plane; cheap to clone.
#[derive(Clone)]
pub struct Tenancy {
    control: Arc<str>,
    app_namespaces: Arc<[Pattern]>,
    projects: ProjectStore,
}

impl Tenancy {
    /// Rules for the control namespace of `projects`, plus the `applications.namespaces` globs.
    pub fn new(projects: ProjectStore, app_namespaces: &[String]) -> Tenancy {
        Tenancy {
            control: projects.namespace().into(),
            app_namespaces: app_namespaces
                .iter()
                .map(|n| Pattern::new(n, false))
                .collect(),
            projects,
        }
    }

    /// The control namespace: Applications and AppProjects live here.
    pub fn control_namespace(&self) -> &str {
        &self.control
    }

    /// The projects of the control plane.
    pub fn projects(&self) -> &ProjectStore {
        &self.projects
    }

    /// Whether Capstan acts on `app` at all: in the control namespace always; elsewhere only when
    /// configuration *and* the app's project both allow the namespace.
    pub fn honours(&self, app: &Application) -> Result<(), NotHonoured> {
        let namespace = app.metadata.namespace.as_deref().unwrap_or_default();
        let project = project_name(app);
        honoured(
            &self.control,
            &self.app_namespaces,
            namespace,
            project,
            self.rules(project).ok().as_ref(),
        )
    }

    /// The compiled rules of `app`'s project.
    pub fn rules_for(&self, app: &Application) -> Result<ProjectRules, MissingProject> {
        self.rules(project_name(app))
    }

    fn rules(&self, project: &str) -> Result<ProjectRules, MissingProject> {
        self.projects
            .get(project)
            .map(|p| ProjectRules::new(project, &p.spec))
            .ok_or_else(|| MissingProject {
                project: project.to_owned(),
            })
    }
}

/// The namespace decision, apart from where the project comes from.
fn honoured(
    control: &str,
    app_namespaces: &[Pattern],
    namespace: &str,
    project: &str,
    rules: Option<&ProjectRules>,
) -> Result<(), NotHonoured> {
    if namespace == control {
        return Ok(());
    }
    if !allowed_by(app_namespaces, namespace) {
        return Err(NotHonoured::Namespace {
            namespace: namespace.to_owned(),
            control: control.to_owned(),
        });
    }
    if rules.is_some_and(|r| r.allows_app_namespace(namespace)) {
        Ok(())
    } else {
        Err(NotHonoured::Project {
            namespace: namespace.to_owned(),
            project: project.to_owned(),
        })
    }
}

/// The project an Application belongs to; an empty one means `default`, as in Argo CD.
pub fn project_name(app: &Application) -> &str {
    match app.spec.project.trim() {
        "" => DEFAULT_PROJECT,
        p => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AppProjectSpec;

    fn rules(source_namespaces: &[&str]) -> ProjectRules {
        ProjectRules::new(
            "p",
            &AppProjectSpec {
                source_namespaces: source_namespaces.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        )
    }

    #[test]
    fn the_control_namespace_always_and_others_only_when_configuration_and_project_agree() {
        let config = [Pattern::new("team-*", false)];
        let team_a = rules(&["team-a"]);
        assert_eq!(honoured("capstan", &[], "capstan", "p", None), Ok(()));
        assert_eq!(
            honoured("capstan", &config, "team-a", "p", Some(&team_a)),
            Ok(())
        );
        assert!(
            matches!(
                honoured("capstan", &[], "team-a", "p", Some(&team_a)),
                Err(NotHonoured::Namespace { .. })
            ),
            "the project alone cannot open a namespace the operator did not list"
        );
        assert!(
            matches!(
                honoured("capstan", &config, "team-b", "p", Some(&team_a)),
                Err(NotHonoured::Project { .. })
            ),
            "configuration alone cannot either"
        );
        assert!(
            matches!(
                honoured("capstan", &config, "team-a", "p", None),
                Err(NotHonoured::Project { .. })
            ),
            "a missing project allows nothing outside the control namespace"
        );
        assert!(matches!(
            honoured("capstan", &config, "default", "p", Some(&rules(&["*"]))),
            Err(NotHonoured::Namespace { .. })
        ));
    }
}
