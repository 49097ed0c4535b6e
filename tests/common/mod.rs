//! Shared support for integration tests.

pub mod child;
pub mod drip;
pub mod git;
pub mod git_http;
pub mod receiver;
pub mod sshd;
pub mod tcp_proxy;
pub mod tools;
