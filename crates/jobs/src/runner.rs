//! What a worker does with a queue message: re-read the run, check it should run here and
//! now, take the connection's leases, start the run with a compare-and-set, run the engine
//! under supervision (heartbeats, lease loss, pause, shutdown), and settle the row with our
//! own retry policy. The queue never retries anything: every message is acknowledged.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use tidemark_core::{ConnectionId, JobRunId};
use tidemark_engine::{
    Counts, Engine, EngineError, FetchCheckpoint, FetchRequest, JobRunControl, RunControl,
    StopReason,
};
use tidemark_store::{JobKind, JobRun, JobState};
use tokio::sync::watch;

use crate::{Jobs, JobsError};

/// The lease kinds: at most one fetch and one send per connection across all processes.
pub const FETCH_LEASE: &str = "fetch";
pub const SEND_LEASE: &str = "send";

/// The leases a run of `kind` holds: a sync and an integrity fix (which rebuilds pending
/// rows) exclude both a fetch and a send.
pub fn leases_of(kind: JobKind) -> &'static [&'static str] {
    match kind {
        JobKind::Fetch => &[FETCH_LEASE],
        JobKind::Send => &[SEND_LEASE],
        JobKind::Sync | JobKind::IntegrityFix => &[FETCH_LEASE, SEND_LEASE],
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do: the run is gone, finished, cancelled, running elsewhere, or its
    /// connection is paused (the run waits for resume).
    Skipped(&'static str),
    /// Not due yet, or the connection's lease is held by another run: sent again later.
    Deferred(&'static str),
    Succeeded,
    /// Failed for now; queued again for a later attempt.
    Retrying(String),
    Failed(String),
    /// Stopped at a checkpoint (paused, shutting down, lease lost, cancelled).
    Stopped(StopReason),
    /// The store could not be reached; the reconciler takes over once it can.
    Error(String),
}

/// What a worker process's runner has done since it started (for `/metrics` and tests).
#[derive(Debug, Default)]
pub struct RunnerStats {
    pub started: AtomicU64,
    pub succeeded: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    pub stopped: AtomicU64,
    pub lease_lost: AtomicU64,
    pub skipped: AtomicU64,
    pub deferred: AtomicU64,
    pub errors: AtomicU64,
    /// Queue workers restarted by the Monitor after they stopped.
    pub worker_restarts: AtomicU64,
    /// Records read from platforms by the runs that succeeded here.
    pub records_scanned: AtomicU64,
    /// Writes settled (applied, or found needless) by the runs that succeeded here.
    pub records_sent: AtomicU64,
}

impl RunnerStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn count(&self, outcome: &Outcome) {
        let counter = match outcome {
            Outcome::Skipped(_) => &self.skipped,
            Outcome::Deferred(_) => &self.deferred,
            Outcome::Succeeded => &self.succeeded,
            Outcome::Retrying(_) => &self.retried,
            Outcome::Failed(_) => &self.failed,
            Outcome::Stopped(StopReason::LeaseLost) => &self.lease_lost,
            Outcome::Stopped(_) => &self.stopped,
            Outcome::Error(_) => &self.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs queue messages. One per worker process, shared by its concurrent handlers.
pub struct Runner {
    stats: Arc<RunnerStats>,
    jobs: Jobs,
    engine: Engine,
    /// `{host}-{pid}-{start}`: with the run id, the owner of a run's row and leases.
    process: String,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("process", &self.process)
            .finish_non_exhaustive()
    }
}

impl Runner {
    pub fn new(
        jobs: Jobs,
        engine: Engine,
        process: String,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            stats: Arc::default(),
            jobs,
            engine,
            process,
            shutdown,
        }
    }

    pub fn stats(&self) -> &Arc<RunnerStats> {
        &self.stats
    }

    /// Handles the message for `id`. Never fails: every problem is settled on the run's row
    /// or left for the reconciler.
    pub async fn run(&self, id: JobRunId) -> Outcome {
        let outcome = self.handle(id).await;
        self.stats.count(&outcome);
        outcome
    }

    async fn handle(&self, id: JobRunId) -> Outcome {
        match self.try_run(id).await {
            Ok(outcome) => {
                tracing::debug!(run = %id, ?outcome, "message handled");
                outcome
            }
            Err(error) => {
                tracing::warn!(run = %id, %error, "job run not handled; the reconciler will retry it");
                Outcome::Error(error.to_string())
            }
        }
    }

    async fn try_run(&self, id: JobRunId) -> Result<Outcome, JobsError> {
        let store = self.jobs.store();
        let now = self.jobs.now();
        let Some(run) = store.get_job_run(id).await? else {
            return Ok(Outcome::Skipped("no such run"));
        };
        if run.state != JobState::Queued {
            return Ok(Outcome::Skipped(match run.state {
                JobState::Running => "running elsewhere",
                JobState::Cancelled => "cancelled",
                _ => "finished",
            }));
        }
        if run.next_attempt_at > now {
            let wait = std::time::Duration::from_millis(
                u64::try_from(run.next_attempt_at.0 - now.0).unwrap_or(0),
            );
            self.jobs.send_message(id, Some(wait)).await;
            return Ok(Outcome::Deferred("not due"));
        }
        let Some(connection) = store.load_connection(run.connection).await? else {
            return Ok(Outcome::Skipped("connection deleted"));
        };
        if connection.paused {
            // The row stays queued; resuming the connection sends it again.
            return Ok(Outcome::Skipped("connection paused"));
        }
        if *self.shutdown.borrow() {
            // Leave it for another worker (or this one after a restart).
            self.jobs.send_message(id, None).await;
            return Ok(Outcome::Deferred("shutting down"));
        }

        let owner = owner_of(&self.process, id);
        let leases = leases_of(run.kind);
        let config = self.jobs.config();
        let ttl = i64::try_from(config.lease_ttl.as_millis()).unwrap_or(i64::MAX);
        let mut held = Vec::new();
        for kind in leases {
            if store
                .acquire_lease(run.connection, kind, &owner, now, ttl)
                .await?
            {
                held.push(*kind);
            } else {
                self.release(run.connection, &held, &owner).await;
                self.jobs.send_message(id, Some(config.busy_delay)).await;
                return Ok(Outcome::Deferred("connection busy"));
            }
        }
        let Some(run) = store.start_job_run(id, &owner, now).await? else {
            self.release(run.connection, &held, &owner).await;
            return Ok(Outcome::Skipped("started by another worker"));
        };
        self.stats.started.fetch_add(1, Ordering::Relaxed);
        tracing::info!(run = %id, kind = run.kind.as_str(), connection = %run.connection, attempt = run.attempts, trigger = %run.trigger, "job run started");

        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
            self.jobs.clone(),
            run.id,
            run.connection,
            owner.clone(),
            leases,
            lost.clone(),
        )));
        let control = Arc::new(Supervised {
            inner: JobRunControl::new(
                store.clone(),
                run.id,
                run.connection,
                owner.clone(),
                self.jobs.clock(),
            ),
            lost,
            shutdown: self.shutdown.clone(),
        });
        // Spawned so that a panic in the engine fails the attempt instead of the worker.
        let result = tokio::spawn(execute(self.engine.clone(), run.clone(), control)).await;
        drop(heartbeat);
        let outcome = self.settle(&run, &owner, result).await;
        self.release(run.connection, leases, &owner).await;
        Ok(outcome)
    }

    async fn settle(
        &self,
        run: &JobRun,
        owner: &str,
        result: Result<Result<Finished, EngineError>, tokio::task::JoinError>,
    ) -> Outcome {
        let store = self.jobs.store();
        let now = self.jobs.now();
        let error = match result {
            Ok(Ok(finished)) => {
                return match self.succeed(run, owner, &finished).await {
                    Ok(true) => {
                        tracing::info!(run = %run.id, kind = run.kind.as_str(), counts = %finished.counts, "job run succeeded");
                        let progress = |key: &str| finished.progress[key].as_u64().unwrap_or(0);
                        let stats = &self.stats;
                        stats
                            .records_scanned
                            .fetch_add(progress("scanned"), Ordering::Relaxed);
                        stats
                            .records_sent
                            .fetch_add(progress("sent"), Ordering::Relaxed);
                        self.auto_send(&finished.pending_for).await;
                        Outcome::Succeeded
                    }
                    Ok(false) => Outcome::Stopped(StopReason::LeaseLost),
                    Err(error) => Outcome::Error(error.to_string()),
                };
            }
            Ok(Err(EngineError::Paused(_))) => EngineError::Stopped(StopReason::Paused),
            Ok(Err(error)) => error,
            Err(panic) => EngineError::Internal(format!("the job panicked: {panic}")),
        };
        match &error {
            EngineError::Stopped(reason @ (StopReason::Paused | StopReason::Shutdown)) => {
                tracing::info!(run = %run.id, %reason, "job run stopped at a checkpoint; it will resume there");
                match store.yield_job_run(run.id, owner, now).await {
                    Ok(true) if *reason == StopReason::Shutdown => {
                        self.jobs.send_message(run.id, None).await;
                    }
                    Ok(_) => {}
                    Err(error) => return Outcome::Error(error.to_string()),
                }
                return Outcome::Stopped(*reason);
            }
            EngineError::Stopped(reason @ (StopReason::LeaseLost | StopReason::Cancelled)) => {
                tracing::info!(run = %run.id, %reason, "job run stopped");
                return Outcome::Stopped(*reason);
            }
            _ => {}
        }
        let message = error.to_string();
        if !error.is_retryable() && !matches!(error, EngineError::Internal(_)) {
            tracing::warn!(run = %run.id, error = %message, "job run failed");
            return match store
                .finish_job_run(run.id, owner, JobState::Failed, Some(&message), now)
                .await
            {
                Ok(_) => Outcome::Failed(message),
                Err(error) => Outcome::Error(error.to_string()),
            };
        }
        let delay = self.jobs.config().retry_delay(run.attempts);
        let at = now.saturating_add_millis(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        match store.retry_job_run(run.id, owner, at, &message, now).await {
            Ok(Some(JobState::Queued)) => {
                tracing::warn!(run = %run.id, error = %message, retry_in = ?delay, "job run failed; retrying");
                self.jobs.send_message(run.id, Some(delay)).await;
                Outcome::Retrying(message)
            }
            Ok(Some(_)) => {
                tracing::warn!(run = %run.id, error = %message, "job run failed; attempts used up");
                Outcome::Failed(message)
            }
            Ok(None) => Outcome::Stopped(StopReason::LeaseLost),
            Err(error) => Outcome::Error(error.to_string()),
        }
    }

    /// Final counts and the succeeded state, in one transaction; false if the run was no
    /// longer ours.
    async fn succeed(
        &self,
        run: &JobRun,
        owner: &str,
        finished: &Finished,
    ) -> Result<bool, JobsError> {
        let now = self.jobs.now();
        let mut tx = self.jobs.store().begin().await?;
        let owned = tx
            .set_job_progress(run.id, owner, &finished.progress, &finished.counts, now)
            .await?
            && tx
                .finish_job_run(run.id, owner, JobState::Succeeded, None, now)
                .await?;
        tx.commit().await?;
        Ok(owned)
    }

    /// Sends owed to connections that got pending rows and send by themselves.
    async fn auto_send(&self, connections: &BTreeSet<ConnectionId>) {
        for id in connections {
            let result = async {
                let Some(connection) = self.jobs.store().load_connection(*id).await? else {
                    return Ok::<_, JobsError>(());
                };
                if connection.settings.auto_send && !connection.paused {
                    self.jobs
                        .send(connection.account, connection.id, "auto_send")
                        .await?;
                }
                Ok(())
            }
            .await;
            if let Err(error) = result {
                tracing::warn!(connection = %id, %error, "auto-send not queued; the reconciler will");
            }
        }
    }

    async fn release(&self, connection: ConnectionId, leases: &[&str], owner: &str) {
        for kind in leases {
            if let Err(error) = self
                .jobs
                .store()
                .release_lease(connection, kind, owner)
                .await
            {
                tracing::warn!(%connection, lease = kind, %error, "lease not released; it expires by itself");
            }
        }
    }
}

/// Stops a task when dropped, so a run's heartbeat never outlives its run.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the run's leases and heartbeat until aborted; marks the run lost when another
/// process holds a lease or the row now.
async fn heartbeat(
    jobs: Jobs,
    run: JobRunId,
    connection: ConnectionId,
    owner: String,
    leases: &'static [&'static str],
    lost: Arc<AtomicBool>,
) {
    let config = jobs.config().clone();
    let ttl = i64::try_from(config.lease_ttl.as_millis()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = jobs.now();
        let store = jobs.store();
        let mut held = true;
        for kind in leases {
            match store.renew_lease(connection, kind, &owner, now, ttl).await {
                Ok(renewed) => held &= renewed,
                Err(error) => tracing::warn!(%run, lease = kind, %error, "lease not renewed"),
            }
        }
        match store.heartbeat_job_run(run, &owner, now).await {
            Ok(owned) => held &= owned,
            Err(error) => tracing::warn!(%run, %error, "heartbeat not stored"),
        }
        if !held {
            tracing::warn!(%run, "lease lost; the run stops at its next checkpoint");
            lost.store(true, Ordering::SeqCst);
            return;
        }
    }
}

/// The run's supervision: its row (progress, checkpoint, cancel, pause), its leases and the
/// worker's shutdown.
struct Supervised {
    inner: JobRunControl,
    lost: Arc<AtomicBool>,
    shutdown: watch::Receiver<bool>,
}

#[async_trait]
impl RunControl for Supervised {
    async fn checkpoint(
        &self,
        counts: &Counts,
        checkpoint: &serde_json::Value,
    ) -> Result<(), StopReason> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(StopReason::LeaseLost);
        }
        self.inner.checkpoint(counts, checkpoint).await?;
        if *self.shutdown.borrow() {
            return Err(StopReason::Shutdown);
        }
        Ok(())
    }
}

/// What a finished run writes on its row, and who owes a send.
struct Finished {
    counts: serde_json::Value,
    progress: serde_json::Value,
    pending_for: BTreeSet<ConnectionId>,
}

impl Finished {
    fn from_counts(
        counts: &Counts,
        pending_for: BTreeSet<ConnectionId>,
    ) -> Result<Self, EngineError> {
        Ok(Self {
            counts: serde_json::to_value(counts)
                .map_err(|e| EngineError::Internal(format!("counts not storable: {e}")))?,
            progress: JobRunControl::progress(counts),
            pending_for,
        })
    }
}

async fn execute(
    engine: Engine,
    run: JobRun,
    control: Arc<Supervised>,
) -> Result<Finished, EngineError> {
    let connection = run.connection;
    match run.kind {
        JobKind::Fetch | JobKind::Sync => {
            let request: FetchRequest = serde_json::from_value(run.scope.clone()).map_err(|e| {
                EngineError::Internal(format!(
                    "job run {}: scope is not a fetch request: {e}",
                    run.id
                ))
            })?;
            let resume = resume_point(&run);
            if run.kind == JobKind::Fetch {
                let report = engine
                    .fetch(connection, &request, resume, &*control)
                    .await?;
                Finished::from_counts(&report.counts, report.pending_for)
            } else {
                let report = engine.sync(connection, &request, resume, &*control).await?;
                Finished::from_counts(&report.counts(), report.fetch.pending_for)
            }
        }
        JobKind::Send => {
            let report = engine.send(connection, &*control).await?;
            Finished::from_counts(&report.counts, BTreeSet::new())
        }
        JobKind::IntegrityFix => {
            let report = engine.integrity_fix(connection, &*control).await?;
            Ok(Finished {
                counts: serde_json::to_value(&report)
                    .map_err(|e| EngineError::Internal(format!("report not storable: {e}")))?,
                progress: serde_json::json!({ "changed": report.changed() }),
                pending_for: BTreeSet::new(),
            })
        }
    }
}

/// The checkpoint a stopped attempt saved. One that no longer reads (written by an older
/// version) is dropped: the fetch starts over, which repeats only harmless work.
fn resume_point(run: &JobRun) -> Option<FetchCheckpoint> {
    let saved = run.checkpoint.as_ref().filter(|c| !c.is_null())?;
    match serde_json::from_value(saved.clone()) {
        Ok(checkpoint) => Some(checkpoint),
        Err(error) => {
            tracing::warn!(run = %run.id, %error, "saved checkpoint unreadable; starting over");
            None
        }
    }
}

/// The owner of a run's row and leases while `process` runs it.
pub fn owner_of(process: &str, run: JobRunId) -> String {
    format!("{process}/{}", run.0)
}
