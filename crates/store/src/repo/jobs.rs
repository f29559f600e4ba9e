//! Job runs: the truth about every job (DESIGN §2). State changes are compare-and-set on the
//! current state (and, while running, on the lease owner), so two workers cannot both start a
//! run and a worker that lost its run cannot write to it.

use tidemark_core::{AccountId, ConnectionId, JobRunId, Timestamp};

use super::{from_json, opt_ts, to_json, to_u32, ts};
use crate::error::db_err;
use crate::sql::{Arg, Sql, query_builder};
use crate::{
    Db, JobKind, JobRun, JobRunFilter, JobState, NewJobRun, StaleJobRuns, StoreError, repository,
    with_db,
};

const COLUMNS: &str = "j.id, j.connection_id, j.kind, j.scope, j.triggered_by, j.state, \
                       j.progress, j.counts, j.attempts, j.max_attempts, j.next_attempt_at, \
                       j.lease_owner, j.checkpoint, j.error, j.created_at, j.started_at, \
                       j.finished_at, j.heartbeat_at";

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    connection_id: i64,
    kind: String,
    scope: String,
    triggered_by: String,
    state: String,
    progress: String,
    counts: String,
    attempts: i64,
    max_attempts: i64,
    next_attempt_at: i64,
    lease_owner: Option<String>,
    checkpoint: Option<String>,
    error: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    heartbeat_at: Option<i64>,
}

impl JobRow {
    fn into_run(self) -> Result<JobRun, StoreError> {
        let row = format!("id {}", self.id);
        let kind = JobKind::parse(&self.kind).ok_or_else(|| {
            StoreError::corrupt("job_runs", &row, format!("unknown kind {:?}", self.kind))
        })?;
        let state = JobState::parse(&self.state).ok_or_else(|| {
            StoreError::corrupt("job_runs", &row, format!("unknown state {:?}", self.state))
        })?;
        let checkpoint = self
            .checkpoint
            .as_deref()
            .map(|text| from_json("job_runs", &row, "checkpoint", text))
            .transpose()?;
        Ok(JobRun {
            id: JobRunId(self.id),
            connection: ConnectionId(self.connection_id),
            kind,
            scope: from_json("job_runs", &row, "scope", &self.scope)?,
            trigger: self.triggered_by,
            state,
            progress: from_json("job_runs", &row, "progress", &self.progress)?,
            counts: from_json("job_runs", &row, "counts", &self.counts)?,
            attempts: to_u32("job_runs", &row, self.attempts)?,
            max_attempts: to_u32("job_runs", &row, self.max_attempts)?,
            next_attempt_at: ts(self.next_attempt_at),
            lease_owner: self.lease_owner,
            checkpoint,
            error: self.error,
            created_at: ts(self.created_at),
            started_at: opt_ts(self.started_at),
            finished_at: opt_ts(self.finished_at),
            heartbeat_at: opt_ts(self.heartbeat_at),
        })
    }
}

impl Db<'_> {
    async fn job_runs_where(&mut self, sql: Sql) -> Result<Vec<JobRun>, StoreError> {
        let rows: Vec<JobRow> = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(db_err("job_runs", "get"))?;
        rows.into_iter().map(JobRow::into_run).collect()
    }

    /// Creates a queued run, due at `now`, for a connection of the account (`NotFound`
    /// otherwise).
    pub(crate) async fn create_job_run(
        &mut self,
        account: AccountId,
        new: &NewJobRun,
        now: Timestamp,
    ) -> Result<JobRun, StoreError> {
        self.check_connection(account, new.connection).await?;
        let scope = to_json("create job run", &new.scope)?;
        let id: i64 = with_db!(self, |c| sqlx::query_scalar(
            "INSERT INTO job_runs (connection_id, kind, scope, triggered_by, state, progress, \
             counts, attempts, max_attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, 'queued', '{}', '{}', 0, $5, $6, $6) RETURNING id"
        )
        .bind(new.connection.0)
        .bind(new.kind.as_str())
        .bind(&scope)
        .bind(&new.trigger)
        .bind(i64::from(new.max_attempts))
        .bind(now.0)
        .fetch_one(&mut *c)
        .await)
        .map_err(db_err("job_runs", "create"))?;
        self.get_job_run(JobRunId(id))
            .await?
            .ok_or_else(|| StoreError::not_found("job run", id))
    }

    /// A run by id alone, for workers holding a queue message.
    pub(crate) async fn get_job_run(&mut self, id: JobRunId) -> Result<Option<JobRun>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM job_runs j WHERE j.id = ")
            .bind_i64(id.0);
        Ok(self.job_runs_where(sql).await?.into_iter().next())
    }

    /// A run of the account (for the API).
    pub(crate) async fn get_account_job_run(
        &mut self,
        account: AccountId,
        id: JobRunId,
    ) -> Result<Option<JobRun>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM job_runs j JOIN connections c ON c.id = j.connection_id WHERE j.id = ")
            .bind_i64(id.0)
            .push(" AND c.account_id = ")
            .bind_i64(account.0);
        Ok(self.job_runs_where(sql).await?.into_iter().next())
    }

    /// Runs of the account, newest first.
    pub(crate) async fn list_job_runs(
        &mut self,
        account: AccountId,
        filter: &JobRunFilter,
    ) -> Result<Vec<JobRun>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM job_runs j JOIN connections c ON c.id = j.connection_id WHERE c.account_id = ")
            .bind_i64(account.0);
        if let Some(connection) = filter.connection {
            sql.push(" AND j.connection_id = ").bind_i64(connection.0);
        }
        if let Some(kind) = filter.kind {
            sql.push(" AND j.kind = ").bind_text(kind.as_str());
        }
        if !filter.states.is_empty() {
            sql.push(" AND j.state IN ");
            sql.bind_list(
                filter
                    .states
                    .iter()
                    .map(|s| Arg::Text(Some(s.as_str().to_owned()))),
            );
        }
        if let Some(before) = filter.before {
            sql.push(" AND j.id < ").bind_i64(before.0);
        }
        let limit = if filter.limit <= 0 { 50 } else { filter.limit };
        sql.push(" ORDER BY j.id DESC LIMIT ")
            .bind_i64(super::clamp_limit(limit));
        self.job_runs_where(sql).await
    }

    /// The queued or running run of this kind on the connection, if any (oldest first), so a
    /// schedule that fires while one is under way is skipped rather than stacked.
    pub(crate) async fn active_job_run(
        &mut self,
        connection: ConnectionId,
        kind: JobKind,
    ) -> Result<Option<JobRun>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM job_runs j WHERE j.connection_id = ")
            .bind_i64(connection.0)
            .push(" AND j.kind = ")
            .bind_text(kind.as_str())
            .push(" AND j.state IN ('queued', 'running') ORDER BY j.id LIMIT 1");
        Ok(self.job_runs_where(sql).await?.into_iter().next())
    }

    /// Queued runs (of any account) due at `now`, oldest first, for the reconciler.
    pub(crate) async fn due_job_runs(
        &mut self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<JobRun>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM job_runs j WHERE j.state = 'queued' AND j.next_attempt_at <= ")
            .bind_i64(now.0)
            .push(" ORDER BY j.id LIMIT ")
            .bind_i64(super::clamp_limit(limit));
        self.job_runs_where(sql).await
    }

    /// Compare-and-set `queued → running` for `owner`: attempts + 1, started and heartbeat
    /// now. `None` when the run is not queued (finished, cancelled, or another worker won) or
    /// not yet due (`next_attempt_at` after `now`: a repeated queue message does not skip the
    /// backoff).
    pub(crate) async fn start_job_run(
        &mut self,
        id: JobRunId,
        owner: &str,
        now: Timestamp,
    ) -> Result<Option<JobRun>, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "UPDATE job_runs SET state = 'running', lease_owner = $2, attempts = attempts + 1, \
             started_at = COALESCE(started_at, $3), heartbeat_at = $3, error = NULL \
             WHERE id = $1 AND state = 'queued' AND next_attempt_at <= $3"
        )
        .bind(id.0)
        .bind(owner)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("job_runs", "start"))?;
        if done == 0 {
            return Ok(None);
        }
        self.get_job_run(id).await
    }

    /// Records that `owner` is alive; false when the run is no longer its running run.
    pub(crate) async fn heartbeat_job_run(
        &mut self,
        id: JobRunId,
        owner: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "UPDATE job_runs SET heartbeat_at = $3 \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2"
        )
        .bind(id.0)
        .bind(owner)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("job_runs", "heartbeat"))?;
        Ok(done > 0)
    }

    /// Writes progress and counts (and a heartbeat); false when `owner` lost the run.
    pub(crate) async fn set_job_progress(
        &mut self,
        id: JobRunId,
        owner: &str,
        progress: &serde_json::Value,
        counts: &serde_json::Value,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let progress = to_json("set job progress", progress)?;
        let counts = to_json("set job progress", counts)?;
        let done = with_db!(self, |c| sqlx::query(
            "UPDATE job_runs SET progress = $3, counts = $4, heartbeat_at = $5 \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2"
        )
        .bind(id.0)
        .bind(owner)
        .bind(&progress)
        .bind(&counts)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("job_runs", "progress"))?;
        Ok(done > 0)
    }

    /// Saves the checkpoint a crashed run resumes from; false when `owner` lost the run.
    pub(crate) async fn save_job_checkpoint(
        &mut self,
        id: JobRunId,
        owner: &str,
        checkpoint: &serde_json::Value,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let checkpoint = to_json("save job checkpoint", checkpoint)?;
        let done = with_db!(self, |c| sqlx::query(
            "UPDATE job_runs SET checkpoint = $3, heartbeat_at = $4 \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2"
        )
        .bind(id.0)
        .bind(owner)
        .bind(&checkpoint)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("job_runs", "checkpoint"))?;
        Ok(done > 0)
    }

    /// Compare-and-set `running (by owner) → succeeded | failed`.
    pub(crate) async fn finish_job_run(
        &mut self,
        id: JobRunId,
        owner: &str,
        state: JobState,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if !matches!(state, JobState::Succeeded | JobState::Failed) {
            return Err(StoreError::Invalid {
                operation: "finish job run",
                detail: format!(
                    "a run finishes as succeeded or failed, not {}",
                    state.as_str()
                ),
            });
        }
        let done = with_db!(self, |c| sqlx::query(
            "UPDATE job_runs SET state = $3, error = $4, finished_at = $5, heartbeat_at = $5, \
             lease_owner = NULL WHERE id = $1 AND state = 'running' AND lease_owner = $2"
        )
        .bind(id.0)
        .bind(owner)
        .bind(state.as_str())
        .bind(error)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("job_runs", "finish"))?;
        Ok(done > 0)
    }

    /// Compare-and-set `running (by owner) → queued` for another attempt at `next_attempt_at`
    /// (the checkpoint is kept), or `→ failed` when the attempts are used up.
    pub(crate) async fn retry_job_run(
        &mut self,
        id: JobRunId,
        owner: &str,
        next_attempt_at: Timestamp,
        error: &str,
        now: Timestamp,
    ) -> Result<Option<JobState>, StoreError> {
        let state: Option<String> = with_db!(self, |c| sqlx::query_scalar(
            "UPDATE job_runs SET \
             state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, \
             finished_at = CASE WHEN attempts >= max_attempts THEN $5 ELSE NULL END, \
             next_attempt_at = $3, error = $4, lease_owner = NULL, heartbeat_at = $5 \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2 RETURNING state"
        )
        .bind(id.0)
        .bind(owner)
        .bind(next_attempt_at.0)
        .bind(error)
        .bind(now.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("job_runs", "retry"))?;
        Ok(state.as_deref().and_then(JobState::parse))
    }

    /// Compare-and-set `running (by owner) → queued`, due at `now`, giving the attempt back:
    /// the run stopped for a reason that is not its own failure (its connection was paused,
    /// its worker is shutting down) and runs again from its checkpoint.
    pub(crate) async fn yield_job_run(
        &mut self,
        id: JobRunId,
        owner: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "UPDATE job_runs SET state = 'queued', lease_owner = NULL, next_attempt_at = $3, \
             heartbeat_at = $3, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2"
        )
        .bind(id.0)
        .bind(owner)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("job_runs", "yield"))?;
        Ok(done > 0)
    }

    /// Compare-and-set `queued | running → cancelled` (a running job notices at its next
    /// checkpoint, which then fails).
    pub(crate) async fn cancel_job_run(
        &mut self,
        account: AccountId,
        id: JobRunId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "UPDATE job_runs SET state = 'cancelled', finished_at = $2, lease_owner = NULL \
             WHERE id = $1 AND state IN ('queued', 'running') \
             AND connection_id IN (SELECT id FROM connections WHERE account_id = $3)"
        )
        .bind(id.0)
        .bind(now.0)
        .bind(account.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("job_runs", "cancel"))?;
        Ok(done > 0)
    }

    /// Worker-only (the reconciler). Running runs whose last heartbeat is older than
    /// `heartbeat_before` (their worker died) go back to queued, due now, keeping their
    /// checkpoint; those that have used up their attempts (a run that crashes its worker
    /// every time) go to failed with an error instead, so they do not loop forever.
    pub(crate) async fn requeue_stale_job_runs(
        &mut self,
        heartbeat_before: Timestamp,
        now: Timestamp,
    ) -> Result<StaleJobRuns, StoreError> {
        let rows: Vec<(i64, i64, String, i64)> = with_db!(self, |c| sqlx::query_as(
            "UPDATE job_runs SET \
             state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, \
             finished_at = CASE WHEN attempts >= max_attempts THEN $2 ELSE NULL END, \
             error = CASE WHEN attempts >= max_attempts \
             THEN 'worker stopped heartbeating; attempts used up' ELSE error END, \
             lease_owner = NULL, next_attempt_at = $2 \
             WHERE state = 'running' AND COALESCE(heartbeat_at, started_at, created_at) < $1 \
             RETURNING id, connection_id, state, attempts"
        )
        .bind(heartbeat_before.0)
        .bind(now.0)
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("job_runs", "requeue stale"))?;
        let mut out = StaleJobRuns::default();
        for (id, connection, state, attempts) in rows {
            let failed = state == "failed";
            tracing::debug!(
                job_run = id,
                connection,
                attempts,
                state = state.as_str(),
                "stale job run (no heartbeat) {}",
                if failed {
                    "failed: attempts used up"
                } else {
                    "requeued"
                }
            );
            if failed {
                out.failed.push(JobRunId(id));
            } else {
                out.requeued.push(JobRunId(id));
            }
        }
        out.requeued.sort();
        out.failed.sort();
        Ok(out)
    }

    /// Runs of every account by kind and state (the operator's metrics; no account data).
    pub(crate) async fn job_run_counts(
        &mut self,
    ) -> Result<Vec<(JobKind, JobState, i64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = with_db!(self, |c| {
            sqlx::query_as(
            "SELECT kind, state, COUNT(*) FROM job_runs GROUP BY kind, state ORDER BY kind, state"
        )
        .fetch_all(&mut *c)
        .await
        })
        .map_err(db_err("job_runs", "count"))?;
        rows.into_iter()
            .map(|(kind, state, n)| {
                let row = format!("{kind}/{state}");
                let kind = JobKind::parse(&kind)
                    .ok_or_else(|| StoreError::corrupt("job_runs", &row, "unknown kind"))?;
                let state = JobState::parse(&state)
                    .ok_or_else(|| StoreError::corrupt("job_runs", &row, "unknown state"))?;
                Ok((kind, state, n))
            })
            .collect()
    }

    /// Deletes finished runs that finished before `before`; returns how many.
    pub(crate) async fn prune_job_runs(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        with_db!(self, |c| sqlx::query(
            "DELETE FROM job_runs WHERE state IN ('succeeded', 'failed', 'cancelled') \
             AND finished_at < $1"
        )
        .bind(before.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("job_runs", "prune"))
    }
}

repository! {
    /// Creates a queued run for a connection of the account (`NotFound` otherwise).
    write fn create_job_run(account: AccountId, new: &NewJobRun, now: Timestamp) -> JobRun;
    /// A run by id alone (workers); the API uses [`Store::get_account_job_run`].
    read fn get_job_run(id: JobRunId) -> Option<JobRun>;
    read fn get_account_job_run(account: AccountId, id: JobRunId) -> Option<JobRun>;
    read fn list_job_runs(account: AccountId, filter: &JobRunFilter) -> Vec<JobRun>;
    /// Worker-only (the scheduler): the queued or running run of this kind, if any.
    read fn active_job_run(connection: ConnectionId, kind: JobKind) -> Option<JobRun>;
    /// Worker-only (the reconciler): due queued runs of every account.
    read fn due_job_runs(now: Timestamp, limit: i64) -> Vec<JobRun>;
    /// Worker-only. Compare-and-set queued → running; `None` if another worker won, the run
    /// is over, or it is not due yet.
    write fn start_job_run(id: JobRunId, owner: &str, now: Timestamp) -> Option<JobRun>;
    write fn heartbeat_job_run(id: JobRunId, owner: &str, now: Timestamp) -> bool;
    write fn set_job_progress(id: JobRunId, owner: &str, progress: &serde_json::Value, counts: &serde_json::Value, now: Timestamp) -> bool;
    write fn save_job_checkpoint(id: JobRunId, owner: &str, checkpoint: &serde_json::Value, now: Timestamp) -> bool;
    write fn finish_job_run(id: JobRunId, owner: &str, state: JobState, error: Option<&str>, now: Timestamp) -> bool;
    /// Back to queued for another attempt (or failed when attempts are used up); the new
    /// state, or `None` if `owner` no longer runs it.
    write fn retry_job_run(id: JobRunId, owner: &str, next_attempt_at: Timestamp, error: &str, now: Timestamp) -> Option<JobState>;
    /// Back to queued, due now, with the attempt given back (paused, shutting down); false
    /// if `owner` no longer runs it.
    write fn yield_job_run(id: JobRunId, owner: &str, now: Timestamp) -> bool;
    /// Cancels a queued or running run of the account; false when it is not the account's
    /// or already finished.
    write fn cancel_job_run(account: AccountId, id: JobRunId, now: Timestamp) -> bool;
    /// Worker-only: requeues runs whose worker died, or fails them when their attempts are used up.
    write fn requeue_stale_job_runs(heartbeat_before: Timestamp, now: Timestamp) -> StaleJobRuns;
    /// Worker-only (housekeeping, every account).
    write fn prune_job_runs(before: Timestamp) -> u64;
    /// Operator-only (metrics): runs of every account by kind and state.
    read fn job_run_counts() -> Vec<(JobKind, JobState, i64)>;
}
