//! Sync options, as Argo CD takes them: `Key=Value` strings on the Application
//! (`syncPolicy.syncOptions`) and per resource (annotation `argocd.argoproj.io/sync-options`,
//! comma-separated), the resource's value winning.

use serde_json::Value;

/// The per-resource sync options annotation.
pub const SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";

/// Whether an object may be deleted by a prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PruneMode {
    #[default]
    Allowed,
    /// `Prune=false`: never pruned (reported PruneSkipped).
    Never,
    /// `Prune=confirm`: pruned only after a person confirms; Capstan has no confirmation yet, so
    /// it is never pruned either, with a message saying so.
    Confirm,
}

/// How a prune deletes (`PrunePropagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    #[default]
    Foreground,
    Background,
    Orphan,
}

/// Options that can be set on the app and overridden per resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectOptions {
    pub prune: PruneMode,
    pub prune_last: bool,
    /// `Replace=true`: create or replace (PUT) instead of apply.
    pub replace: bool,
    /// `Force=true`: with Replace, delete and re-create; with apply, re-create when a field is immutable.
    pub force: bool,
    /// `ServerSideApply=false` asks for client-side apply, which Capstan does not do (it always
    /// applies server-side); kept so the choice is visible.
    pub server_side_apply: bool,
    /// `Validate=false`: the server ignores unknown fields instead of refusing them.
    pub validate: bool,
    /// `SkipDryRunOnMissingResource=true`: no dry-run when the kind is not served yet.
    pub skip_dry_run_on_missing: bool,
    /// `Delete=false`: kept when the Application is deleted.
    pub delete: bool,
}

impl Default for ObjectOptions {
    fn default() -> Self {
        ObjectOptions {
            prune: PruneMode::Allowed,
            prune_last: false,
            replace: false,
            force: false,
            server_side_apply: true,
            validate: true,
            skip_dry_run_on_missing: false,
            delete: true,
        }
    }
}

/// The Application's sync options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppOptions {
    /// Defaults for every object.
    pub object: ObjectOptions,
    pub create_namespace: bool,
    pub apply_out_of_sync_only: bool,
    pub propagation: Propagation,
    pub respect_ignore_differences: bool,
    pub fail_on_shared_resource: bool,
    /// Options Capstan did not recognise, for a warning.
    pub unknown: Vec<String>,
}

/// Parses the app's `syncOptions`.
pub fn app_options<'a>(options: impl IntoIterator<Item = &'a str>) -> AppOptions {
    let mut app = AppOptions::default();
    for option in options {
        let Some((key, value)) = split(option) else {
            app.unknown.push(option.to_owned());
            continue;
        };
        let on = value.eq_ignore_ascii_case("true");
        match key {
            "CreateNamespace" => app.create_namespace = on,
            "ApplyOutOfSyncOnly" => app.apply_out_of_sync_only = on,
            "RespectIgnoreDifferences" => app.respect_ignore_differences = on,
            "FailOnSharedResource" => app.fail_on_shared_resource = on,
            "PrunePropagationPolicy" => {
                app.propagation = match value.to_ascii_lowercase().as_str() {
                    "background" => Propagation::Background,
                    "orphan" => Propagation::Orphan,
                    _ => Propagation::Foreground,
                }
            }
            _ => {
                if !set_object_option(&mut app.object, key, value) {
                    app.unknown.push(option.to_owned());
                }
            }
        }
    }
    app
}

/// The options for one object: the app's, overridden by the object's annotation.
pub fn object_options(app: &AppOptions, obj: &Value) -> ObjectOptions {
    let mut opts = app.object;
    let annotation = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(SYNC_OPTIONS))
        .and_then(Value::as_str);
    if let Some(text) = annotation {
        for option in text.split(',') {
            if let Some((key, value)) = split(option) {
                set_object_option(&mut opts, key, value);
            }
        }
    }
    opts
}

fn split(option: &str) -> Option<(&str, &str)> {
    let (k, v) = option.split_once('=')?;
    Some((k.trim(), v.trim()))
}

fn set_object_option(opts: &mut ObjectOptions, key: &str, value: &str) -> bool {
    let on = value.eq_ignore_ascii_case("true");
    match key {
        "Prune" => {
            opts.prune = match value.to_ascii_lowercase().as_str() {
                "false" => PruneMode::Never,
                "confirm" => PruneMode::Confirm,
                _ => PruneMode::Allowed,
            }
        }
        "Delete" => opts.delete = !value.eq_ignore_ascii_case("false"),
        "PruneLast" => opts.prune_last = on,
        "Replace" => opts.replace = on,
        "Force" => opts.force = on,
        "ServerSideApply" => opts.server_side_apply = !value.eq_ignore_ascii_case("false"),
        "Validate" => opts.validate = !value.eq_ignore_ascii_case("false"),
        "SkipDryRunOnMissingResource" => opts.skip_dry_run_on_missing = on,
        // Accepted by Argo CD; nothing to do differently here.
        "ClientSideApplyMigration" => {}
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn app_options_parse_and_resources_override_them() {
        let app = app_options([
            "CreateNamespace=true",
            "PruneLast=true",
            "PrunePropagationPolicy=background",
            "ApplyOutOfSyncOnly=true",
            "Validate=false",
            "Bogus=1",
        ]);
        assert!(app.create_namespace && app.apply_out_of_sync_only);
        assert!(app.object.prune_last && !app.object.validate);
        assert_eq!(app.propagation, Propagation::Background);
        assert_eq!(app.unknown, vec!["Bogus=1".to_string()]);

        let obj = json!({"metadata": {"annotations": {SYNC_OPTIONS: "Prune=false, Replace=true,PruneLast=false"}}});
        let opts = object_options(&app, &obj);
        assert_eq!(opts.prune, PruneMode::Never);
        assert!(opts.replace && !opts.prune_last && !opts.validate);
        let confirm =
            json!({"metadata": {"annotations": {SYNC_OPTIONS: "Prune=confirm,Delete=false"}}});
        let opts = object_options(&app, &confirm);
        assert_eq!(opts.prune, PruneMode::Confirm);
        assert!(!opts.delete);
        assert_eq!(object_options(&app, &json!({})), app.object);
    }
}
