//! `GET /api/v1/applications/{namespace}/{name}/diff`: what a sync would change, per resource,
//! as the server would store it (a server-side dry-run of each desired object) against what it
//! stores now, both normalised the way the compare sees them (server fields, status and the app's
//! `ignoreDifferences` left out) and with Secret values masked.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use super::ApiState;
use super::applications::{AppPath, admit, authorized};
use super::auth::Authenticated;
use super::error::ApiError;
use crate::cluster::{ClusterError, ResourceKey};
use crate::diff::{self, IgnoreRule, Normalizer};
use crate::manifests::ManifestError;
use crate::sync::hooks::{Role, role_of};

/// The answer of `…/diff`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DiffAnswer {
    /// The revision compared (the first source's).
    pub revision: Option<String>,
    /// Whether any resource would change.
    pub modified: bool,
    pub items: Vec<ResourceDiff>,
}

/// One resource's difference.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDiff {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `added`, `removed` (a prune), `modified` or `unchanged`.
    pub change: &'static str,
    /// Unified diff of the YAML, live (`---`) to desired (`+++`); empty when unchanged.
    pub diff: String,
    /// JSON patch operations (RFC 6902) from live to desired.
    #[schema(value_type = Vec<Object>)]
    pub patch: json_patch::Patch,
}

/// The app's diff: `modified` when any resource would change.
#[utoipa::path(
    get,
    path = "/api/v1/applications/{namespace}/{name}/diff",
    tag = "applications",
    params(("namespace" = String, Path, description = "Namespace of the Application"), ("name" = String, Path, description = "Name of the Application")),
    responses((status = 200, description = "Per resource: the change, a unified diff and a JSON patch", body = DiffAnswer), (status = 400, description = "A name is not a valid Kubernetes name", body = crate::api::error::ErrorBody), (status = 404, description = "No such Application", body = crate::api::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    auth: Authenticated,
    path: AppPath,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let app = authorized(&state, &auth, &path, "get").await?;
    admit(&state.tenancy, &app)?;
    let target = super::manifests::destination(&state, &app).await?;
    let cluster = &target.cluster;
    let rendered = state
        .manifests
        .desired_for_app(&app, cluster, false)
        .await
        .map_err(|e| match e {
            ManifestError::InvalidSpec(m) | ManifestError::Comparison(m) => {
                ApiError::Unprocessable(m)
            }
        })?;
    let app_key = app.key().to_string();
    let objects = crate::sync::prepare::prepare(
        cluster,
        rendered.objects,
        &app_key,
        &app.destination_namespace(),
    )
    .await
    .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let rules: Vec<IgnoreRule> = serde_json::to_value(&app.spec.ignore_differences)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::Unprocessable(format!("invalid ignoreDifferences: {e}")))?;
    let normalizer = Normalizer::new(&rules)
        .map_err(|e| ApiError::Unprocessable(format!("invalid ignoreDifferences: {e}")))?;

    let mut items = Vec::new();
    let mut desired_ids = std::collections::HashSet::new();
    for obj in objects.iter().filter(|o| role_of(o) == Role::Resource) {
        let Some(key) = ResourceKey::of(obj) else {
            continue;
        };
        desired_ids.insert(key.object_id());
        let live = live(cluster, &key).await?;
        let predicted = match cluster.apply(obj, true).await {
            Ok(p) => p,
            // A kind a CRD of this app will define: shown as written.
            Err(ClusterError::UnknownKind { .. }) => obj.clone(),
            Err(e) => {
                return Err(ApiError::Unprocessable(format!(
                    "{key}: the server refuses it: {e}"
                )));
            }
        };
        items.push(resource_diff(
            &key,
            live.as_ref(),
            Some(&predicted),
            &normalizer,
        ));
    }
    let status = app.status.clone().unwrap_or_default();
    for r in status.resources.iter().filter(|r| r.requires_pruning) {
        let key = crate::worker::desired::resource_key(r);
        if desired_ids.contains(&key.object_id()) {
            continue;
        }
        if let Some(live) = live(cluster, &key).await? {
            items.push(resource_diff(&key, Some(&live), None, &normalizer));
        }
    }
    let modified = items.iter().any(|i| i.change != "unchanged");
    Ok(HttpResponse::Ok().json(DiffAnswer {
        revision: rendered.revisions.first().cloned(),
        modified,
        items,
    }))
}

async fn live(
    cluster: &crate::cluster::Cluster,
    key: &ResourceKey,
) -> Result<Option<Value>, ApiError> {
    match cluster.get(key).await {
        Ok(v) => Ok(v),
        Err(ClusterError::UnknownKind { .. }) => Ok(None),
        Err(e) => Err(ApiError::Unprocessable(format!("cannot read {key}: {e}"))),
    }
}

/// The normalised, masked difference of one object (None: absent on that side).
fn resource_diff(
    key: &ResourceKey,
    live: Option<&Value>,
    predicted: Option<&Value>,
    normalizer: &Normalizer,
) -> ResourceDiff {
    let mut l = live.map_or(Value::Null, |v| normalizer.normalize(v, live));
    let mut p = predicted.map_or(Value::Null, |v| normalizer.normalize(v, live));
    diff::mask_secrets(&mut l, &mut p);
    let change = match (live, predicted) {
        (None, _) => "added",
        (_, None) => "removed",
        _ if l == p => "unchanged",
        _ => "modified",
    };
    let (lo, po) = ((!l.is_null()).then_some(&l), (!p.is_null()).then_some(&p));
    ResourceDiff {
        group: key.group.clone(),
        version: key.version.clone(),
        kind: key.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        change,
        diff: if change == "unchanged" {
            String::new()
        } else {
            diff::unified(lo, po)
        },
        patch: diff::patch(&l, &p),
    }
}
