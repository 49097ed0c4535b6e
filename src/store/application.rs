//! The `Application` custom resource (`capstan.dev/v1alpha1`): Argo CD's spec, field for field.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::AppKey;
use crate::health::HealthStatus;

/// Desired state of an Application: where its manifests live and where they go.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "capstan.dev",
    version = "v1alpha1",
    kind = "Application",
    plural = "applications",
    shortname = "app",
    shortname = "apps",
    namespaced,
    status = "ApplicationStatus",
    printcolumn = r#"{"name":"Sync","type":"string","jsonPath":".status.sync.status"}"#,
    printcolumn = r#"{"name":"Health","type":"string","jsonPath":".status.health.status"}"#,
    printcolumn = r#"{"name":"Revision","type":"string","jsonPath":".status.sync.revision"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    #[serde(default)]
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    #[serde(default)]
    pub destination: Destination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<SyncPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<ResourceIgnoreDifferences>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i64>,
}

/// Where manifests come from.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSource {
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Helm options (Argo CD's `helm{}`), kept verbatim until the Helm renderer reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub helm: Option<serde_json::Value>,
    /// Kustomize options (Argo CD's `kustomize{}`), kept verbatim until the Kustomize renderer reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub kustomize: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySource>,
    /// A config-management plugin (Argo CD's `plugin{}`); kept so it can be refused clearly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub plugin: Option<serde_json::Value>,
}

/// Options for a plain directory of YAML/JSON manifests.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySource {
    #[serde(default)]
    pub recurse: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<String>,
    /// Jsonnet options (Argo CD's `jsonnet{}`), kept verbatim until the Jsonnet renderer reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub jsonnet: Option<serde_json::Value>,
}

/// The cluster and namespace manifests are applied to.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// When and how Capstan syncs on its own.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<AutomatedSync>,
    /// `Key=Value` options, e.g. `CreateNamespace=true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryStrategy>,
    /// Labels and annotations for the namespace `CreateNamespace=true` creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_namespace_metadata: Option<ManagedNamespaceMetadata>,
}

/// Metadata of a namespace Capstan creates.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ManagedNamespaceMetadata {
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Automated sync switches.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutomatedSync {
    #[serde(default)]
    pub prune: bool,
    #[serde(default)]
    pub self_heal: bool,
    #[serde(default)]
    pub allow_empty: bool,
    /// Argo CD 3.x: `enabled: false` turns automation off while keeping the settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Retries of a failed sync.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    #[serde(default)]
    pub limit: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

/// Backoff between retries (`duration` like "5s", factor, `maxDuration` like "3m").
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
}

/// Differences to ignore when comparing (Argo CD's `ignoreDifferences[]`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceIgnoreDifferences {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields_managers: Vec<String>,
}

/// Observed state, written only by Capstan through the status subresource.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatusBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_state: Option<OperationState>,
    #[serde(default)]
    pub history: Vec<RevisionHistory>,
    /// The last finished sync operations, failed ones too, oldest first (Capstan's addition:
    /// `history` lists successful deployments only, as in Argo CD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_operations: Vec<RecentOperation>,
    #[serde(default)]
    pub resources: Vec<ResourceStatus>,
    #[serde(default)]
    pub conditions: Vec<ApplicationCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_at: Option<String>,
    /// Directory, Helm, Kustomize (of the first rendered source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    /// The tool of each rendered source, for multi-source apps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_types: Vec<String>,
    /// Files outside each source's path that its last render read (Kustomize bases, value
    /// files, Jsonnet imports), so a push changing one refreshes this app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub render_inputs: Vec<RenderInputs>,
}

/// Repository paths one render read, beyond the source path.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenderInputs {
    /// The repository, as the source spells it.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Paths from the repository root; a directory covers everything below it.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// Whether the cluster equals Git at `revision`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    pub status: SyncStatusCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The commit of each source, for multi-source apps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<String>,
}

/// Argo CD's sync status codes.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SyncStatusCode {
    Synced,
    OutOfSync,
    #[default]
    Unknown,
}

/// Health of the app or one resource.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatusBlock {
    pub status: HealthStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The last (or running) sync operation.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    pub phase: OperationPhase,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_result: Option<SyncOperationResult>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<InitiatedBy>,
    /// What was asked for, so a running sync continues as it began (after a restart too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<SyncOperation>,
    /// Failed attempts retried so far (`syncPolicy.retry`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_count: i64,
    /// When the next retry of a failed sync is due (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A requested sync, as Argo CD's `operation.sync`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperation {
    /// The revision being synced (pinned for the whole operation).
    #[serde(default)]
    pub revision: String,
    /// The sources being synced, with their revisions pinned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    #[serde(default)]
    pub prune: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Selective sync: only these resources, and no hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<SyncOperationResource>,
    /// Consecutive self-heal syncs of this revision, for the self-heal backoff.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub auto_heal_attempts_count: i64,
    /// The history entry this operation rolls back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_id: Option<i64>,
}

/// One resource of a selective sync.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperationResource {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    pub name: String,
}

/// Argo CD's operation phases.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum OperationPhase {
    #[default]
    Running,
    Terminating,
    Failed,
    Error,
    Succeeded,
}

/// What a sync did to one resource (Argo CD's `ResultCode`).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ResultCode {
    #[default]
    Synced,
    SyncFailed,
    Pruned,
    PruneSkipped,
    /// Not run yet (a later wave of a running sync).
    Pending,
}

/// Who started an operation.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitiatedBy {
    /// The person who asked for it (absent for automated syncs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Started by automation (auto-sync), not by a person's sync request.
    #[serde(default)]
    pub automated: bool,
    /// What set it off: a webhook delivery, a published trigger, the poller, drift, or a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<OperationCause>,
}

/// The signal behind an operation (Capstan's addition to Argo CD's `initiatedBy`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationCause {
    /// `webhook`, `mq` (a published trigger), `manual` (a person), `poll` or `drift`.
    pub source: String,
    /// The Git host (`github`, `gitlab`, …) for a webhook; the sender's name for a published event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The Git host's delivery id (as in its webhook log), or a published event's message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// The PushEvent's id, as Capstan's logs name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Who pushed, as the Git host names them; for a published trigger, its publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pusher: Option<String>,
    /// The person who asked, for a manual sync or refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Per-resource results of a sync.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperationResult {
    pub revision: String,
    /// The sources synced, with pinned revisions: automation syncs once per (revision, sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    #[serde(default)]
    pub resources: Vec<ResourceResult>,
}

/// What a sync did to one resource.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceResult {
    #[serde(default)]
    pub group: String,
    pub version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    pub name: String,
    pub status: ResultCode,
    #[serde(default)]
    pub message: String,
    /// created, configured, unchanged, pruned …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `PreSync`, `Sync`, `PostSync` or `SyncFail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_phase: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sync_wave: i64,
    /// For a hook: the phase it runs in (`PreSync` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_type: Option<String>,
    /// For a hook: `Pending`, `Running`, `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_phase: Option<String>,
    /// For a `generateName` hook: the prefix it was named from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
}

/// One successful sync, newest last.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionHistory {
    pub id: i64,
    pub revision: String,
    pub deployed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<InitiatedBy>,
    /// The sources deployed, so a rollback renders exactly them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    /// The deployed commit's message (cut to a bounded length), read from Git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The deployed commit's author, `Name <email>`, read from Git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// One finished sync operation and its result.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentOperation {
    /// `Succeeded`, `Failed` or `Error`.
    pub phase: OperationPhase,
    /// What it did, or why it failed.
    #[serde(default)]
    pub message: String,
    /// The revision it synced (or tried to).
    #[serde(default)]
    pub revision: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<InitiatedBy>,
    /// A dry run: nothing was applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Sync and health of one resource the app manages.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    #[serde(default)]
    pub group: String,
    pub version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    pub name: String,
    pub status: SyncStatusCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatusBlock>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_pruning: bool,
}

/// A problem worth a user's attention (ComparisonError, SyncError, …).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

impl Application {
    /// `namespace/name`, the key jobs, logs and tracking ids use.
    pub fn key(&self) -> AppKey {
        AppKey::of_stored(
            self.metadata.namespace.as_deref().unwrap_or_default(),
            self.metadata.name.as_deref().unwrap_or_default(),
        )
    }

    /// The single source this app renders (multi-source apps use the first for now).
    pub fn primary_source(&self) -> Option<&ApplicationSource> {
        self.spec
            .source
            .as_ref()
            .or_else(|| self.spec.sources.first())
    }

    /// Every source, single or multi.
    pub fn all_sources(&self) -> Vec<&ApplicationSource> {
        self.spec
            .source
            .iter()
            .chain(self.spec.sources.iter())
            .collect()
    }

    /// The destination namespace, `default` when unset (as Argo CD).
    pub fn destination_namespace(&self) -> String {
        self.spec
            .destination
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into())
    }

    /// Whether `syncOptions` contains `key=true`.
    pub fn sync_option(&self, key: &str) -> bool {
        self.spec.sync_policy.as_ref().is_some_and(|p| {
            p.sync_options.iter().any(|o| {
                o.split_once('=')
                    .is_some_and(|(k, v)| k.trim() == key && v.trim().eq_ignore_ascii_case("true"))
            })
        })
    }

    /// The automated sync settings when automation is on.
    pub fn automated(&self) -> Option<&AutomatedSync> {
        self.spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.automated.as_ref())
            .filter(|a| a.enabled != Some(false))
    }
}
