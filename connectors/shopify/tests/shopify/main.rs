//! The Shopify connector's integration tests. One test binary: each integration test is a module
//! here, so its dependencies link once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract;
mod schema;
mod sim;
