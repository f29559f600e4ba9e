//! The connector boundary's integration tests. One test binary: each integration test is a module
//! here, so its dependencies link once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_client;
mod registry;
mod webhook_signatures;
