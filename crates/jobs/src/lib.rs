//! tidemark-jobs: the daemon of DESIGN §2 — job runs carried by an apalis queue (Redis or
//! SQLite), per-connection leases, pause gating, the scheduler and the reconciler.
//!
//! * [`Jobs`] — the front door: submit fetch, send, sync and integrity-fix runs (a
//!   `job_runs` row first, then a queue message carrying its id), cancel, pause, resume,
//!   resync with cooldowns, schedules, wait for a run.
//! * [`Queue`] — the apalis queue on SQLite or Redis, tuned around apalis 1.0's defects.
//! * [`runner`] — what a worker does with a message: leases, compare-and-set start,
//!   supervision, our own retry policy.
//! * [`schedule`] and [`reconciler`] — the loops every daemon runs.
//! * [`RegistryConnectors`] — connectors built from stored settings and sealed credentials.
//! * [`Daemon`] — all of it running, until shutdown.

pub mod bench;
pub mod config;
pub mod connectors;
pub mod daemon;
pub mod error;
pub mod jobs;
pub mod queue;
pub mod reconciler;
pub mod runner;
pub mod schedule;

pub use bench::{QueueBenchOptions, QueueBenchReport, queue_bench};
pub use config::JobsConfig;
pub use connectors::{RegistryConnectors, builtin_registry};
pub use daemon::{Daemon, Roles, process_name};
pub use error::JobsError;
pub use jobs::{Jobs, Resync, ResyncWindow, Submission};
pub use queue::{Queue, QueueSpec, RunMessage};
pub use runner::{Outcome, Runner, RunnerStats};
