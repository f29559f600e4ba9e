//! How a running procedure reports progress and learns that it must stop: [`JobRunControl`]
//! over a `job_runs` row the caller has started as its owner; [`Unsupervised`] for tests and
//! one-shot commands.

use std::fmt;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tidemark_core::{ConnectionId, JobRunId};
use tidemark_store::{JobState, Store, StoreError};

use crate::Clock;

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
    /// The run's progress could not be stored (the database is unreachable): stopping keeps
    /// the last stored checkpoint the one a later run resumes from.
    Unrecorded,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LeaseLost => "the connection's lease was lost",
            Self::Paused => "the connection was paused",
            Self::Cancelled => "the job was cancelled",
            Self::Shutdown => "the worker is shutting down",
            Self::Unrecorded => "the run's progress could not be stored",
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

/// Supervises a run through its `job_runs` row, which the caller has started as `owner`.
///
/// Every checkpoint writes the counts, the progress (records scanned of the total the platform
/// announced, and changes sent) and the checkpoint in one transaction, which is also the run's
/// heartbeat. The run is told to stop when the row is no longer its own running run (cancelled,
/// or taken over after its heartbeat went stale) or its connection was paused.
pub struct JobRunControl {
    store: Store,
    run: JobRunId,
    connection: ConnectionId,
    owner: String,
    clock: Arc<dyn Clock>,
}

impl JobRunControl {
    /// Supervision of `run`, a run of `connection` started by `owner`.
    pub fn new(
        store: Store,
        run: JobRunId,
        connection: ConnectionId,
        owner: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            run,
            connection,
            owner: owner.into(),
            clock,
        }
    }

    /// The progress column: what a progress bar shows.
    pub fn progress(counts: &Counts) -> serde_json::Value {
        let sent = counts.inserted
            + counts.updated
            + counts.image_deletes
            + counts.settled
            + counts.send_failed;
        let mut progress = serde_json::json!({ "scanned": counts.scanned, "sent": sent });
        if let Some(total) = counts.total {
            progress["total"] = total.into();
        }
        progress
    }

    async fn record(
        &self,
        counts: &Counts,
        checkpoint: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let counts_json = serde_json::to_value(counts).map_err(|e| StoreError::Invalid {
            operation: "record job progress",
            detail: e.to_string(),
        })?;
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let owned = tx
            .set_job_progress(
                self.run,
                &self.owner,
                &Self::progress(counts),
                &counts_json,
                now,
            )
            .await?
            // A null checkpoint (a sync's send reporting before its fetch did) saves none.
            && (checkpoint.is_null()
                || tx
                    .save_job_checkpoint(self.run, &self.owner, checkpoint, now)
                    .await?);
        tx.commit().await?;
        Ok(owned)
    }

    /// Why a run that no longer owns its row must stop.
    async fn lost_reason(&self) -> Result<StopReason, StoreError> {
        Ok(match self.store.get_job_run(self.run).await? {
            None => StopReason::Cancelled,
            Some(run) if run.state == JobState::Cancelled => StopReason::Cancelled,
            Some(_) => StopReason::LeaseLost,
        })
    }

    async fn connection_paused(&self, connection: ConnectionId) -> Result<bool, StoreError> {
        Ok(self
            .store
            .load_connection(connection)
            .await?
            .is_none_or(|c| c.paused))
    }
}

#[async_trait]
impl RunControl for JobRunControl {
    async fn checkpoint(
        &self,
        counts: &Counts,
        checkpoint: &serde_json::Value,
    ) -> Result<(), StopReason> {
        let unrecorded = |e: StoreError| {
            tracing::warn!(run = %self.run.0, error = %e, "job progress not stored; stopping");
            StopReason::Unrecorded
        };
        if !self.record(counts, checkpoint).await.map_err(unrecorded)? {
            return Err(self.lost_reason().await.map_err(unrecorded)?);
        }
        if self
            .connection_paused(self.connection)
            .await
            .map_err(unrecorded)?
        {
            return Err(StopReason::Paused);
        }
        Ok(())
    }
}
