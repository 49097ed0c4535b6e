//! Pull-request previews: for a PR opened or updated on a Git host, the Applications its base
//! branch feeds are rendered at the PR's head and at its base and compared with each other and
//! with the live objects. The result goes back to the PR (one comment, edited on each push, and
//! the `capstan/preview` status on the head commit) and is served by `GET /api/v1/previews`.
//! Nothing is ever applied and no hook runs.

pub mod compute;
pub mod record;
pub mod report;
pub mod run;
pub mod settings;

pub use record::{AppPreview, Preview, PreviewState, Records};
pub use run::{Previewer, run};
pub use settings::PreviewSettings;
