//! INTERFACE STUB (integrator's copy of the health API; replaced by the health helper's module at merge).
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HealthStatus {
    Healthy,
    Suspended,
    Progressing,
    Missing,
    Degraded,
    Unknown,
}
impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub status: HealthStatus,
    pub message: String,
}
pub fn assess(_obj: &serde_json::Value) -> Option<Health> {
    unimplemented!()
}
pub fn aggregate<'a>(_items: impl IntoIterator<Item = &'a HealthStatus>) -> HealthStatus {
    unimplemented!()
}
