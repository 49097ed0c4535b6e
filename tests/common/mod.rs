//! Shared support for integration tests.

pub mod browser;
pub mod child;
pub mod drip;
pub mod forge_server;
pub mod git;
pub mod git_http;
pub mod github_api;
pub mod receiver;
pub mod simplesamlphp;
pub mod slapd;
pub mod sshd;
pub mod tcp_proxy;
pub mod tools;
