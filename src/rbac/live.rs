//! The policy in force: configuration's `policy.csv` and default role plus every AppProject's
//! roles, rebuilt when the projects' roles change. A project whose roles do not parse is left
//! out (and logged), so one bad project cannot lock everyone out.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use super::{Denied, Rbac, RbacError, Subject, project_roles};
use crate::config::RbacSettings;
use crate::store::ProjectStore;

/// How often the projects are looked at for changed roles.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The live policy.
pub struct LivePolicy {
    settings: RbacSettings,
    current: RwLock<(String, Arc<Rbac>)>,
}

impl LivePolicy {
    /// Loads the policy (a bad `policy.csv` is an error: refusing to start beats guessing) and
    /// follows the projects' roles until `shutdown`.
    pub async fn start(
        settings: RbacSettings,
        projects: ProjectStore,
        shutdown: CancellationToken,
    ) -> Result<Arc<LivePolicy>, RbacError> {
        let fingerprint = roles_fingerprint(&projects);
        let rbac = build(&settings, &projects).await?;
        let live = Arc::new(LivePolicy {
            settings,
            current: RwLock::new((fingerprint, Arc::new(rbac))),
        });
        let following = live.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(CHECK_EVERY) => {}
                }
                following.reload_if_changed(&projects).await;
            }
        });
        Ok(live)
    }

    /// The policy now.
    pub fn current(&self) -> Arc<Rbac> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// [`Rbac::check`] against the policy now.
    pub fn check(
        &self,
        subject: &Subject,
        resource: &str,
        action: &str,
        object: &str,
    ) -> Result<(), Denied> {
        self.current().check(subject, resource, action, object)
    }

    /// Rebuilds the policy when a project's roles changed since the last build.
    pub async fn reload_if_changed(&self, projects: &ProjectStore) {
        let fingerprint = roles_fingerprint(projects);
        let unchanged = self
            .current
            .read()
            .map(|c| c.0 == fingerprint)
            .unwrap_or(false);
        if unchanged {
            return;
        }
        match build(&self.settings, projects).await {
            Ok(rbac) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) =
                    (fingerprint, Arc::new(rbac));
                tracing::info!("RBAC policy reloaded after a project's roles changed");
            }
            Err(e) => tracing::error!(error = %e, "RBAC policy not reloaded"),
        }
    }
}

async fn build(settings: &RbacSettings, projects: &ProjectStore) -> Result<Rbac, RbacError> {
    let mut roles = Vec::new();
    for project in projects.list() {
        let name = project.name_any();
        let Some(spec_roles) = &project.spec.roles else {
            continue;
        };
        match project_roles::parse(&name, spec_roles) {
            Ok(parsed) => {
                // A role whose lines break the project's bounds would fail the whole load.
                let valid: Vec<_> = parsed
                    .into_iter()
                    .filter(|role| match project_roles::lines(&name, role) {
                        Ok(_) => true,
                        Err(e) => {
                            tracing::warn!(project = %name, role = %role.name, error = %e, "project role ignored");
                            false
                        }
                    })
                    .collect();
                roles.push((name, valid));
            }
            Err(e) => tracing::warn!(project = %name, error = %e, "project roles ignored"),
        }
    }
    Rbac::new(&settings.policy_csv, &settings.policy_default, &roles).await
}

fn roles_fingerprint(projects: &ProjectStore) -> String {
    projects
        .list()
        .iter()
        .map(|p| {
            format!(
                "{}={}",
                p.name_any(),
                p.spec
                    .roles
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
