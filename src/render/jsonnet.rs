//! `*.jsonnet` files, evaluated in process with jrsonnet.
