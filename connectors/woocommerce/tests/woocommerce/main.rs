//! The WooCommerce connector's integration tests. One test binary: each integration test is a
//! module here, so its dependencies link once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod contract;
mod creates;
mod faults;
mod images;
mod overflow;
mod registry;
mod roundtrip;
mod simulator;
mod stock;
mod webhooks;
mod writes;
