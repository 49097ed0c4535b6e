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
        if namespace == &*self.control {
            return Ok(());
        }
        if !allowed_by(&self.app_namespaces, namespace) {
            return Err(NotHonoured::Namespace {
                namespace: namespace.to_owned(),
                control: self.control.to_string(),
            });
        }
        let project = project_name(app);
        let allowed = self
            .rules(project)
            .is_ok_and(|r| r.allows_app_namespace(namespace));
        if allowed {
            Ok(())
        } else {
            Err(NotHonoured::Project {
                namespace: namespace.to_owned(),
                project: project.to_owned(),
            })
        }
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

/// The project an Application belongs to; an empty one means `default`, as in Argo CD.
pub fn project_name(app: &Application) -> &str {
    match app.spec.project.trim() {
        "" => DEFAULT_PROJECT,
        p => p,
    }
}
