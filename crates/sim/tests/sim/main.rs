//! The simulators' integration tests. One test binary: each integration test is a module here, so
//! its dependencies link once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod mercadolibre;
mod shopify;
mod woocommerce;
