//! Shared support for integration tests.

pub mod drip;
pub mod git;
pub mod git_http;
pub mod tcp_proxy;
pub mod tools;
