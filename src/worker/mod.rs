//! The worker role: router, syncer and poller.

pub mod desired;
pub mod drift;
pub mod health_checks;
pub mod operate;
pub mod operation;
pub mod poller;
pub mod queue_depth;
pub mod reconcile;
pub mod route_events;
pub mod status;
pub mod syncer;
