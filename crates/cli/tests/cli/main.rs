//! The command line's tests, on the built binary in real processes. One test binary: each
//! integration test is a module here, so its dependencies link once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod kill;
