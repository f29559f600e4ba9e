//! How a running procedure reports progress and learns that it must stop. The jobs layer
//! implements [`RunControl`] over its job-run row and lease; tests and one-shot commands use
//! [`Unsupervised`].

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What a procedure did so far, written to the job-run row as it goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Records read from the platform.
    pub scanned: u64,
    /// How many the scan will read, when the platform says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Records new to tidemark (a canonical record created, or matched by SKU or barcode).
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    /// Records the merchant deleted on the platform (bindings dropped).
    pub deleted: u64,
    /// Records seen but not absorbed (the connection does not absorb new records).
    pub unlinked: u64,
    /// Records that could not be read or absorbed (each has an issue).
    pub failed: u64,
    pub inserted: u64,
    pub updated: u64,
    pub image_deletes: u64,
    /// Writes the platform refused or that will be retried.
    pub send_failed: u64,
    /// Pending rows settled without a write (nothing left to change).
    pub settled: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.scanned += other.scanned;
        self.total = match (self.total, other.total) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.new += other.new;
        self.changed += other.changed;
        self.unchanged += other.unchanged;
        self.deleted += other.deleted;
        self.unlinked += other.unlinked;
        self.failed += other.failed;
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.image_deletes += other.image_deletes;
        self.send_failed += other.send_failed;
        self.settled += other.settled;
    }
}

/// Why a procedure was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Another process holds the connection's lease now.
    LeaseLost,
    Paused,
    Cancelled,
    Shutdown,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LeaseLost => "the connection's lease was lost",
            Self::Paused => "the connection was paused",
            Self::Cancelled => "the job was cancelled",
            Self::Shutdown => "the worker is shutting down",
        })
    }
}

/// The supervisor of one running procedure.
///
/// Procedures call [`RunControl::checkpoint`] at every page or batch boundary, after the work
/// before it is committed: the implementation stores the checkpoint and counts durably and
/// answers whether to go on. A stop answer ends the procedure with
/// [`crate::EngineError::Stopped`]; a later run given the stored checkpoint resumes there.
#[async_trait]
pub trait RunControl: Send + Sync {
    async fn checkpoint(
        &self,
        counts: &Counts,
        checkpoint: &serde_json::Value,
    ) -> Result<(), StopReason>;
}

/// Runs to the end and records nothing: tests and one-shot commands.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unsupervised;

#[async_trait]
impl RunControl for Unsupervised {
    async fn checkpoint(&self, _: &Counts, _: &serde_json::Value) -> Result<(), StopReason> {
        Ok(())
    }
}
