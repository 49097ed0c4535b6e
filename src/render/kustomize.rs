//! Kustomize overlays, rendered with `kustomize build` or `kubectl kustomize`.

use super::{Budget, KustomizeSpec, RenderContext, RenderError, Rendered};

/// The file names that make a directory a kustomization, in Kustomize's order of preference.
pub(crate) const KUSTOMIZATION_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Renders the kustomization at `path` (relative to `ctx.checkout`).
pub(crate) fn render_kustomize(
    _ctx: &RenderContext<'_>,
    _path: &str,
    _spec: &KustomizeSpec,
    _budget: &mut Budget,
) -> Result<Rendered, RenderError> {
    Err(RenderError::Unsupported {
        message: "Kustomize sources are not supported yet".into(),
    })
}
