//! Helm charts, rendered with `helm template`.

use super::{Budget, HelmSpec, RenderContext, RenderError, Rendered};

/// Renders the chart at `path` (relative to `ctx.checkout`) with `helm template`.
pub(crate) fn render_helm(
    _ctx: &RenderContext<'_>,
    _path: &str,
    _spec: &HelmSpec,
    _budget: &mut Budget,
) -> Result<Rendered, RenderError> {
    Err(RenderError::Unsupported {
        message: "Helm sources are not supported yet".into(),
    })
}
