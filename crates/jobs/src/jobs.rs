//! [`Jobs`]: what the command line, the API and the daemon's own loops ask of the job system.
//! Every job is first a `job_runs` row, then a queue message carrying its id; if the message
//! cannot be sent the row stays queued and the reconciler sends it later.

use std::sync::Arc;
use std::time::Duration;

use tidemark_core::{AccountId, ConnectionId, ExternalId, JobRunId, ScanKind, Timestamp};
use tidemark_engine::{Clock, FetchRequest, FetchScope};
use tidemark_store::{
    Cooldown, JobKind, JobRun, JobRunFilter, JobState, NewJobRun, Schedule, Store,
};

use crate::schedule::FullScanCron;
use crate::{JobsConfig, JobsError, Queue};

/// A job asked for: the run that will do it, and whether it is new or an equal run already
/// waiting (asking twice does not stack work).
#[derive(Debug, Clone)]
pub struct Submission {
    pub run: JobRun,
    pub created: bool,
}

/// The windows a merchant can resync (DESIGN §4, "Manual resync").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncWindow {
    /// Since midnight UTC.
    Today,
    Days(u32),
}

impl ResyncWindow {
    /// `today`, `1d`, `7d`, `30d`, `60d`.
    pub fn parse(text: &str) -> Result<Self, JobsError> {
        match text {
            "today" => Ok(Self::Today),
            "1d" => Ok(Self::Days(1)),
            "7d" => Ok(Self::Days(7)),
            "30d" => Ok(Self::Days(30)),
            "60d" => Ok(Self::Days(60)),
            other => Err(JobsError::Invalid(format!(
                "unknown resync window {other:?}: expected today, 1d, 7d, 30d or 60d"
            ))),
        }
    }

    fn since(self, now: Timestamp) -> Timestamp {
        const DAY_MS: i64 = 24 * 3600 * 1000;
        match self {
            Self::Today => Timestamp(now.0 - now.0.rem_euclid(DAY_MS)),
            Self::Days(days) => Timestamp(now.0 - i64::from(days) * DAY_MS),
        }
    }
}

/// A manual resync: a window of recent changes, or one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resync {
    Window(ResyncWindow),
    Record {
        kind: ScanKind,
        external_id: ExternalId,
    },
}

const WINDOW_COOLDOWN: Duration = Duration::from_secs(3600);
const RECORD_COOLDOWN: Duration = Duration::from_secs(300);

/// The job system's front door. Cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    queue: Queue,
    config: JobsConfig,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("queue", &self.inner.queue)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Jobs {
    pub fn new(store: Store, queue: Queue, config: JobsConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                queue,
                config,
                clock,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn queue(&self) -> &Queue {
        &self.inner.queue
    }

    pub fn config(&self) -> &JobsConfig {
        &self.inner.config
    }

    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// Asks for a job on a connection of the account. An equal run (same kind and scope)
    /// already queued is returned instead of a new one; so is an equal fetch, sync or
    /// integrity fix already running. A send already running does not count: changes queued
    /// since it read its rows need another.
    pub async fn submit(
        &self,
        account: AccountId,
        connection: ConnectionId,
        kind: JobKind,
        scope: serde_json::Value,
        trigger: &str,
    ) -> Result<Submission, JobsError> {
        check_scope(kind, &scope)?;
        let store = &self.inner.store;
        let mut states = vec![JobState::Queued];
        if kind != JobKind::Send {
            states.push(JobState::Running);
        }
        let filter = JobRunFilter {
            connection: Some(connection),
            kind: Some(kind),
            states,
            limit: 100,
            ..JobRunFilter::default()
        };
        if let Some(run) = store
            .list_job_runs(account, &filter)
            .await?
            .into_iter()
            .find(|run| run.scope == scope)
        {
            return Ok(Submission {
                run,
                created: false,
            });
        }
        let new = NewJobRun {
            connection,
            kind,
            scope,
            trigger: trigger.to_owned(),
            max_attempts: self.inner.config.max_attempts,
        };
        let run = store.create_job_run(account, &new, self.now()).await?;
        self.send_message(run.id, None).await;
        Ok(Submission { run, created: true })
    }

    /// A fetch (`Fetch updates` in the console).
    pub async fn fetch(
        &self,
        account: AccountId,
        connection: ConnectionId,
        request: &FetchRequest,
        trigger: &str,
    ) -> Result<Submission, JobsError> {
        let scope = fetch_scope(request)?;
        self.submit(account, connection, JobKind::Fetch, scope, trigger)
            .await
    }

    /// A sync: fetch and send at once.
    pub async fn sync(
        &self,
        account: AccountId,
        connection: ConnectionId,
        request: &FetchRequest,
        trigger: &str,
    ) -> Result<Submission, JobsError> {
        let scope = fetch_scope(request)?;
        self.submit(account, connection, JobKind::Sync, scope, trigger)
            .await
    }

    pub async fn send(
        &self,
        account: AccountId,
        connection: ConnectionId,
        trigger: &str,
    ) -> Result<Submission, JobsError> {
        self.submit(
            account,
            connection,
            JobKind::Send,
            serde_json::Value::Null,
            trigger,
        )
        .await
    }

    pub async fn integrity_fix(
        &self,
        account: AccountId,
        connection: ConnectionId,
        trigger: &str,
    ) -> Result<Submission, JobsError> {
        self.submit(
            account,
            connection,
            JobKind::IntegrityFix,
            serde_json::Value::Null,
            trigger,
        )
        .await
    }

    /// A manual resync, refused inside its cooldown (a window once an hour per connection,
    /// a record once every five minutes) with the time left.
    pub async fn resync(
        &self,
        account: AccountId,
        connection: ConnectionId,
        resync: &Resync,
        trigger: &str,
    ) -> Result<Submission, JobsError> {
        let store = &self.inner.store;
        let now = self.now();
        // The account owns the connection before any cooldown is spent on it.
        store
            .get_connection(account, connection)
            .await?
            .ok_or(JobsError::UnknownConnection(connection))?;
        let (what, key, cooldown, scope) = match resync {
            Resync::Window(window) => (
                "a window resync",
                "resync:window".to_owned(),
                WINDOW_COOLDOWN,
                FetchScope::Window {
                    since: window.since(now),
                },
            ),
            Resync::Record { kind, external_id } => (
                "a resync of this record",
                format!("resync:{}:{}", kind.as_str(), external_id.as_str()),
                RECORD_COOLDOWN,
                FetchScope::One {
                    kind: *kind,
                    external_id: external_id.clone(),
                    deleted: false,
                },
            ),
        };
        let millis = i64::try_from(cooldown.as_millis()).unwrap_or(i64::MAX);
        if let Cooldown::Active { until } =
            store.start_cooldown(connection, &key, now, millis).await?
        {
            let left = Duration::from_millis(u64::try_from(until.0 - now.0).unwrap_or(0));
            return Err(JobsError::Cooldown { what, until, left });
        }
        self.fetch(account, connection, &FetchRequest::new(scope), trigger)
            .await
    }

    /// Cancels a queued or running run (a running one stops at its next checkpoint).
    pub async fn cancel(&self, account: AccountId, run: JobRunId) -> Result<bool, JobsError> {
        Ok(self
            .inner
            .store
            .cancel_job_run(account, run, self.now())
            .await?)
    }

    /// Pauses a connection: nothing of it runs; running jobs stop at their next page
    /// boundary with their checkpoint saved; queued ones wait.
    pub async fn pause(
        &self,
        account: AccountId,
        connection: ConnectionId,
    ) -> Result<(), JobsError> {
        if !self
            .inner
            .store
            .set_connection_paused(account, connection, true, self.now())
            .await?
        {
            return Err(JobsError::UnknownConnection(connection));
        }
        Ok(())
    }

    /// Resumes a connection and sends the runs that waited for it to the workers.
    pub async fn resume(
        &self,
        account: AccountId,
        connection: ConnectionId,
    ) -> Result<Vec<JobRunId>, JobsError> {
        let store = &self.inner.store;
        if !store
            .set_connection_paused(account, connection, false, self.now())
            .await?
        {
            return Err(JobsError::UnknownConnection(connection));
        }
        let filter = JobRunFilter {
            connection: Some(connection),
            states: vec![JobState::Queued],
            limit: 10_000,
            ..JobRunFilter::default()
        };
        let mut waiting: Vec<JobRunId> = store
            .list_job_runs(account, &filter)
            .await?
            .into_iter()
            .map(|run| run.id)
            .collect();
        waiting.sort();
        if let Err(error) = self.inner.queue.push_many(&waiting).await {
            tracing::warn!(%error, connection = %connection, "resumed runs not sent to the queue; the reconciler will");
        }
        Ok(waiting)
    }

    /// Sets a connection's schedule: a fetch every `interval`, and a full scan at each time
    /// of `full_scan` (a cron expression, five or six fields, UTC). Applies at once.
    pub async fn set_schedule(
        &self,
        account: AccountId,
        connection: ConnectionId,
        interval: Option<Duration>,
        full_scan: Option<&str>,
    ) -> Result<Schedule, JobsError> {
        let now = self.now();
        let interval_ms = interval
            .map(|d| {
                i64::try_from(d.as_millis())
                    .ok()
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| {
                        JobsError::Schedule(format!("fetch interval {d:?} is out of range"))
                    })
            })
            .transpose()?;
        let (expression, next_full) = match full_scan {
            Some(text) => {
                let cron = FullScanCron::parse(text)?;
                let next = cron.next_after(now).ok_or_else(|| {
                    JobsError::Schedule(format!("{text:?} never fires after now"))
                })?;
                (Some(cron.expression().to_owned()), Some(next))
            }
            None => (None, None),
        };
        Ok(self
            .inner
            .store
            .set_schedule(
                account,
                connection,
                interval_ms,
                expression.as_deref(),
                next_full,
                now,
            )
            .await?)
    }

    /// Waits until `run` is finished, calling `progress` with the row at every poll.
    pub async fn wait(
        &self,
        account: AccountId,
        run: JobRunId,
        poll: Duration,
        mut progress: impl FnMut(&JobRun),
    ) -> Result<JobRun, JobsError> {
        loop {
            let current = self
                .inner
                .store
                .get_account_job_run(account, run)
                .await?
                .ok_or_else(|| JobsError::Invalid(format!("job run {run} does not exist")))?;
            progress(&current);
            if matches!(
                current.state,
                JobState::Succeeded | JobState::Failed | JobState::Cancelled
            ) {
                return Ok(current);
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Sends `run` to the workers; a queue that is down leaves the row for the reconciler.
    pub(crate) async fn send_message(&self, run: JobRunId, delay: Option<Duration>) {
        if let Err(error) = self.inner.queue.push(run, delay).await {
            tracing::warn!(%error, run = %run, "job run not sent to the queue; the reconciler will");
        }
    }
}

fn fetch_scope(request: &FetchRequest) -> Result<serde_json::Value, JobsError> {
    serde_json::to_value(request)
        .map_err(|e| JobsError::Invalid(format!("a fetch request that cannot be stored: {e}")))
}

/// A fetch or sync carries a fetch request; a send or integrity fix carries nothing.
fn check_scope(kind: JobKind, scope: &serde_json::Value) -> Result<(), JobsError> {
    match kind {
        JobKind::Fetch | JobKind::Sync => serde_json::from_value::<FetchRequest>(scope.clone())
            .map(|_| ())
            .map_err(|e| {
                JobsError::Invalid(format!(
                    "a {} scope must be a fetch request: {e}",
                    kind.as_str()
                ))
            }),
        JobKind::Send | JobKind::IntegrityFix if scope.is_null() => Ok(()),
        JobKind::Send | JobKind::IntegrityFix => Err(JobsError::Invalid(format!(
            "a {} takes no scope",
            kind.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reach_back_from_now() {
        let now = Timestamp(10 * 24 * 3600 * 1000 + 5_000);
        assert_eq!(
            ResyncWindow::parse("today").ok().map(|w| w.since(now)),
            Some(Timestamp(10 * 24 * 3600 * 1000))
        );
        assert_eq!(
            ResyncWindow::parse("7d").ok().map(|w| w.since(now)),
            Some(Timestamp(3 * 24 * 3600 * 1000 + 5_000))
        );
        assert!(ResyncWindow::parse("2d").is_err());
    }

    #[test]
    fn scopes_are_checked_against_the_kind() {
        let full = serde_json::json!({ "scope": { "scope": "full" } });
        assert!(check_scope(JobKind::Fetch, &full).is_ok());
        assert!(check_scope(JobKind::Sync, &serde_json::json!({ "scope": "nonsense" })).is_err());
        assert!(check_scope(JobKind::Send, &serde_json::Value::Null).is_ok());
        assert!(check_scope(JobKind::Send, &full).is_err());
    }
}
