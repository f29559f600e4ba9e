//! The daemon in-process: runs through the queue, leases, pause and resume, cancellation,
//! the scheduler, the reconciler and cooldowns, on both backend pairs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod lost;
mod runs;
mod schedule;
