//! The store's integration tests, each on SQLite and on PostgreSQL. One test binary: each
//! integration test is a module here, so its dependencies link once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_tables;
mod fixtures;
mod review;
mod schedules;
mod store;
