//! The HTTP API end to end: the application on a loopback port over real stores and queues.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod common;
mod openapi;
mod routes;
mod webhooks;
