//! AppProjects of the control namespace: a watch cache for reads, the API for writes.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use super::StoreError;
use super::project::{AppProject, DEFAULT_PROJECT};

/// The projects Capstan enforces; they live in the control namespace only, as in Argo CD.
#[derive(Clone)]
pub struct ProjectStore {
    client: Client,
    namespace: String,
    cache: Store<AppProject>,
}

impl ProjectStore {
    /// Starts the watch cache of `namespace` and waits until its first list is in.
    pub async fn start(client: Client, namespace: &str) -> Result<ProjectStore, StoreError> {
        let api: Api<AppProject> = Api::namespaced(client.clone(), namespace);
        let (reader, writer) = reflector::store();
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .applied_objects();
        tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(item) = stream.next().await {
                if let Err(e) = item {
                    tracing::warn!(error = %e, "project watch error; retrying");
                }
            }
        });
        super::wait_ready(&reader, "project").await?;
        Ok(ProjectStore {
            client,
            namespace: namespace.to_owned(),
            cache: reader,
        })
    }

    /// Creates the `default` project when it is missing (Argo CD's permissive default), and
    /// returns once the cache holds it, so the first request after start does not miss it.
    pub async fn ensure_default(&self) -> Result<(), StoreError> {
        let api: Api<AppProject> = Api::namespaced(self.client.clone(), &self.namespace);
        if api.get_opt(DEFAULT_PROJECT).await?.is_none() {
            match api
                .create(
                    &PostParams::default(),
                    &AppProject::default_project(&self.namespace),
                )
                .await
            {
                Ok(_) => {}
                // Another process created it first.
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.wait_cached(DEFAULT_PROJECT, Duration::from_secs(30))
            .await
    }

    /// Waits until the cache holds the project `name`.
    async fn wait_cached(&self, name: &str, limit: Duration) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.get(name).is_none() {
            if tokio::time::Instant::now() > deadline {
                return Err(StoreError::Invalid(format!(
                    "project {name} did not reach the project cache in {}s",
                    limit.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// The control namespace the projects live in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// One project from the cache.
    pub fn get(&self, name: &str) -> Option<Arc<AppProject>> {
        self.cache
            .get(&reflector::ObjectRef::new(name).within(&self.namespace))
    }

    /// Every project, by name.
    pub fn list(&self) -> Vec<Arc<AppProject>> {
        let mut projects = self.cache.state();
        projects.sort_by_key(|p| p.name_any());
        projects
    }

    /// Creates a project in the control namespace and returns once this process's cache holds
    /// it, so an Application of the project created right after is admitted (read your writes).
    pub async fn create(&self, project: &AppProject) -> Result<AppProject, StoreError> {
        let api: Api<AppProject> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut project = project.clone();
        project.metadata.namespace = Some(self.namespace.clone());
        let created = api.create(&PostParams::default(), &project).await?;
        self.wait_cached(&created.name_any(), Duration::from_secs(10))
            .await?;
        Ok(created)
    }

    /// Changes a project read fresh from the API (again on a conflicting write), and returns
    /// once this process's cache holds the change.
    pub async fn update<E: From<StoreError>>(
        &self,
        name: &str,
        mut change: impl FnMut(&mut AppProject) -> Result<(), E>,
    ) -> Result<AppProject, E> {
        let api: Api<AppProject> = Api::namespaced(self.client.clone(), &self.namespace);
        for _ in 0..8 {
            let mut project = match api.get(name).await {
                Ok(p) => p,
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    return Err(StoreError::NotFound(format!("project {name}")).into());
                }
                Err(e) => return Err(StoreError::from(e).into()),
            };
            change(&mut project)?;
            match api.replace(name, &PostParams::default(), &project).await {
                Ok(updated) => {
                    let version = updated.resource_version();
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                    while self.get(name).map(|p| p.resource_version()) != Some(version.clone())
                        && tokio::time::Instant::now() < deadline
                    {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    return Ok(updated);
                }
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(StoreError::from(e).into()),
            }
        }
        Err(StoreError::Invalid(format!("project {name}: too many concurrent changes")).into())
    }

    /// Deletes a project.
    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let api: Api<AppProject> = Api::namespaced(self.client.clone(), &self.namespace);
        match api.delete(name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                Err(StoreError::NotFound(format!("project {name}")))
            }
            Err(e) => Err(e.into()),
        }
    }
}
