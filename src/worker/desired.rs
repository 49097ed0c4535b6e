//! The resolve and render stages of a reconcile: the app's project and destination, its
//! sources rendered and prepared, checked against what the project allows. Problems become the
//! condition they are reported as ([`Failed`]).

use crate::cluster::ResourceKey;
use crate::manifests::{AppManifests, ManifestError};
use crate::metrics::Stage;
use crate::store::application::{Application, ApplicationSource, ApplicationStatus, RenderInputs};
use crate::sync::Compared;
use crate::sync::hooks::Role;
use crate::tenancy::{ProjectRules, Target};

use super::reconcile::Context;
use super::status::{
    self, COMPARISON_ERROR, EXCLUDED_RESOURCE_WARNING, INVALID_SPEC_ERROR, SYNC_ERROR,
};
use crate::cluster::registry::Connected;

/// The failure of one stage, as the condition it becomes.
pub struct Failed {
    pub condition: &'static str,
    pub message: String,
}

/// A stage failure.
pub fn failed(condition: &'static str, message: impl Into<String>) -> Failed {
    Failed {
        condition,
        message: message.into(),
    }
}

/// The resolve and render stages' result: what the app wants, and where.
pub struct Desired {
    pub revision: String,
    pub revisions: Vec<String>,
    /// Ordinary resources, prepared for applying (namespaces, tracking).
    pub resources: Vec<serde_json::Value>,
    /// Hook objects (`generateName` ones have no name yet).
    pub hooks: Vec<serde_json::Value>,
    pub source_types: Vec<String>,
    pub warnings: Vec<crate::render::RenderWarning>,
    pub render_inputs: Vec<RenderInputs>,
    pub rules: ProjectRules,
    pub target: Destination,
}

/// Resolves the app's project and destination, then renders `sources` (the spec's, or an
/// operation's pinned ones) into prepared objects the project allows.
pub async fn desired_state(
    ctx: &Context,
    target: &Connected,
    app: &Application,
    sources: &[&ApplicationSource],
    hard: bool,
) -> Result<Desired, Failed> {
    let sources = sources.to_vec();
    let rules = ctx
        .tenancy
        .rules_for(app)
        .map_err(|e| failed(INVALID_SPEC_ERROR, e.to_string()))?;
    let destination = resolve_destination(app, target);
    for s in &sources {
        rules
            .check_repo(&s.repo_url)
            .map_err(|e| failed(INVALID_SPEC_ERROR, e.to_string()))?;
    }
    rules
        .check_destination(destination.as_target())
        .map_err(|e| failed(INVALID_SPEC_ERROR, e.to_string()))?;
    let namespace = app.destination_namespace();
    let mut rendered = ctx
        .manifests
        .desired_for_app_from(app, &sources, &target.cluster, hard)
        .await
        .map_err(|e| match e {
            ManifestError::InvalidSpec(m) => failed(INVALID_SPEC_ERROR, m),
            ManifestError::Comparison(m) => failed(COMPARISON_ERROR, m),
        })?;
    ctx.metrics
        .stage(Stage::Fetch, rendered.fetch_time.as_secs_f64());
    // Preparing (namespaces, tracking, the project's checks) counts as rendering.
    let prepare_started = std::time::Instant::now();
    let allow_empty = app.automated().is_some_and(|a| a.allow_empty);
    if rendered.objects.is_empty() && !allow_empty {
        return Err(failed(COMPARISON_ERROR, nothing_rendered(&rendered)));
    }
    let objects = crate::sync::prepare::prepare(
        &target.cluster,
        std::mem::take(&mut rendered.objects),
        &app.key().to_string(),
        &namespace,
    )
    .await
    .map_err(|e| failed(COMPARISON_ERROR, e.to_string()))?;
    ctx.metrics.stage(
        Stage::Render,
        (rendered.render_time + prepare_started.elapsed()).as_secs_f64(),
    );
    check_objects(&rules, destination.as_target(), &objects)?;
    let mut resources = Vec::with_capacity(objects.len());
    let mut hooks = Vec::new();
    for obj in objects {
        match crate::sync::hooks::role_of(&obj) {
            Role::Resource => resources.push(obj),
            Role::Hook { .. } => hooks.push(obj),
            Role::Skip => {}
        }
    }
    Ok(Desired {
        revision: rendered.revisions.first().cloned().unwrap_or_default(),
        render_inputs: render_inputs(&sources, &rendered),
        revisions: rendered.revisions,
        resources,
        hooks,
        source_types: rendered
            .tools
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        warnings: rendered.warnings,
        rules,
        target: destination,
    })
}

/// Files listed in a "rendered nothing" message before the rest are only counted.
const MAX_LISTED_SKIPPED: usize = 10;

/// The condition message for a source that rendered no object: never Synced on nothing.
fn nothing_rendered(rendered: &AppManifests) -> String {
    let mut message = String::from("the source rendered no Kubernetes objects");
    if !rendered.skipped.is_empty() {
        message.push_str(&format!(
            " (skipped, holding no Kubernetes object: {})",
            listed(&rendered.skipped, MAX_LISTED_SKIPPED)
        ));
    }
    message.push_str(
        "; nothing is applied or pruned. Check spec.source.path and directory.include, or set \
         syncPolicy.automated.allowEmpty: true if the app is meant to be empty",
    );
    message
}

/// Most render inputs recorded per repository; beyond it the whole repository is watched,
/// which costs extra refreshes but never misses one.
const MAX_RENDER_INPUTS: usize = 500;

/// What each repository's renders read outside the app's own source paths, for the router.
fn render_inputs(sources: &[&ApplicationSource], rendered: &AppManifests) -> Vec<RenderInputs> {
    rendered
        .files_read
        .iter()
        .filter_map(|(repo, files)| {
            let own: Vec<String> = sources
                .iter()
                .filter(|s| &s.repo_url == repo)
                .filter_map(|s| s.path.as_deref())
                .map(|p| p.trim_matches('/').trim_start_matches("./").to_string())
                .collect();
            let outside: Vec<String> = files
                .iter()
                .filter(|f| {
                    !own.iter().any(|base| {
                        base.is_empty()
                            || base == "."
                            || *f == base
                            || f.starts_with(&format!("{base}/"))
                    })
                })
                .cloned()
                .collect();
            if outside.is_empty() {
                return None;
            }
            let paths = if outside.len() > MAX_RENDER_INPUTS {
                vec![String::new()]
            } else {
                outside
            };
            Some(RenderInputs {
                repo_url: repo.clone(),
                paths,
            })
        })
        .collect()
}

/// Violations listed in one condition message before the rest are only counted.
const MAX_LISTED_VIOLATIONS: usize = 10;

/// Every desired object must be of a kind, and in a namespace, the project allows; otherwise
/// nothing at all is applied.
pub fn check_objects(
    rules: &ProjectRules,
    target: Target<'_>,
    objects: &[serde_json::Value],
) -> Result<(), Failed> {
    let violations: Vec<String> = objects
        .iter()
        .filter_map(|obj| {
            let key = crate::sync::prepare::key_or_generated(obj)?;
            rules
                .check_object(
                    &key.group,
                    &key.kind,
                    &key.namespace,
                    target,
                    &key.to_string(),
                )
                .err()
                .map(|v| v.to_string())
        })
        .collect();
    if violations.is_empty() {
        return Ok(());
    }
    Err(failed(
        SYNC_ERROR,
        format!(
            "nothing applied: {}",
            listed(&violations, MAX_LISTED_VIOLATIONS)
        ),
    ))
}

/// Tracked objects the project no longer lets this app reach are never pruned: they are taken out
/// of the comparison and named in a warning condition instead.
pub fn keep_prunes_in_reach(
    compared: &mut Vec<Compared>,
    rules: &ProjectRules,
    target: Target<'_>,
    status: &mut ApplicationStatus,
) {
    let mut excluded = Vec::new();
    compared.retain(|c| {
        if !c.requires_pruning {
            return true;
        }
        let k = &c.key;
        match rules.check_object(&k.group, &k.kind, &k.namespace, target, &k.to_string()) {
            Ok(()) => true,
            Err(_) => {
                excluded.push(k.to_string());
                false
            }
        }
    });
    if excluded.is_empty() {
        status::clear_condition(status, EXCLUDED_RESOURCE_WARNING);
    } else {
        status::set_condition(
            status,
            EXCLUDED_RESOURCE_WARNING,
            &format!(
                "left in place, outside what project '{}' allows (never pruned): {}",
                rules.name(),
                listed(&excluded, MAX_LISTED_VIOLATIONS)
            ),
        );
    }
}

/// `a; b; c and 4 more`.
fn listed(items: &[String], max: usize) -> String {
    let mut text = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > max {
        text.push_str(&format!(" and {} more", items.len() - max));
    }
    text
}

/// An app's destination resolved to a cluster name and server URL.
pub struct Destination {
    pub server: String,
    pub name: String,
    pub namespace: String,
}

impl Destination {
    /// The destination as the project rules see it.
    pub fn as_target(&self) -> Target<'_> {
        Target {
            server: &self.server,
            name: &self.name,
            namespace: &self.namespace,
        }
    }
}

/// The app's destination as the project rules see it: the cluster it resolved to (by server or
/// name), and the namespace.
pub fn resolve_destination(app: &Application, target: &Connected) -> Destination {
    Destination {
        server: target.server.clone(),
        name: target.name.clone(),
        namespace: app.spec.destination.namespace.clone().unwrap_or_default(),
    }
}

/// The key of a resource listed in the status.
pub fn resource_key(r: &crate::store::application::ResourceStatus) -> ResourceKey {
    ResourceKey {
        group: r.group.clone(),
        version: r.version.clone(),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    }
}
