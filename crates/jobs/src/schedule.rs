//! The daily full scan's cron expression, and the scheduler: one fixed-rate scanner of the
//! `schedules` table on every daemon; a compare-and-set claim makes exactly one daemon fire
//! each due scan, and a scan that falls due while a fetch of the connection is under way is
//! skipped, not stacked.

use std::str::FromStr;

use tidemark_core::Timestamp;
use tidemark_engine::{FetchRequest, FetchScope};
use tidemark_store::{JobKind, ScheduledScan};

use crate::{Jobs, JobsError};

/// A full-scan schedule: a cron expression in UTC, written with five fields
/// (`minute hour day month weekday`, as crontab) or six (seconds first).
#[derive(Debug, Clone)]
pub struct FullScanCron {
    expression: String,
    schedule: cron::Schedule,
}

impl FullScanCron {
    pub fn parse(text: &str) -> Result<Self, JobsError> {
        let expression = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let fields = expression.split(' ').count();
        let full = match fields {
            5 => format!("0 {expression}"),
            6 => expression.clone(),
            _ => {
                return Err(JobsError::Schedule(format!(
                    "{text:?} has {fields} fields; a cron expression has five \
                     (minute hour day month weekday, e.g. \"0 3 * * *\" for 03:00 UTC daily)"
                )));
            }
        };
        let schedule = cron::Schedule::from_str(&full)
            .map_err(|e| JobsError::Schedule(format!("{text:?} is not a cron expression: {e}")))?;
        Ok(Self {
            expression,
            schedule,
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first firing strictly after `now`.
    pub fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        let after = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now.0)?;
        self.schedule
            .after(&after)
            .next()
            .map(|at| Timestamp(at.timestamp_millis()))
    }
}

/// What one pass of the scheduler did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerPass {
    pub fired: u64,
    /// Due while a fetch or sync of the connection was queued or running.
    pub skipped: u64,
}

/// One pass: claims each due scan and submits its fetch.
pub async fn schedule_pass(jobs: &Jobs) -> Result<SchedulerPass, JobsError> {
    let store = jobs.store();
    let now = jobs.now();
    let mut pass = SchedulerPass::default();
    for (schedule, scan) in store.due_schedules(now, 500).await? {
        let (expected, next, scope) = match scan {
            ScheduledScan::Fetch => {
                let (Some(due), Some(interval)) =
                    (schedule.next_fetch_at, schedule.fetch_interval_ms)
                else {
                    continue;
                };
                (
                    due,
                    now.saturating_add_millis(interval),
                    FetchScope::Incremental,
                )
            }
            ScheduledScan::FullScan => {
                let Some(due) = schedule.next_full_scan_at else {
                    continue;
                };
                // A stored expression that no longer parses stops firing (and says so)
                // rather than firing every tick.
                let next = match schedule.full_scan_cron.as_deref().map(FullScanCron::parse) {
                    Some(Ok(cron)) => cron.next_after(now),
                    Some(Err(error)) => {
                        tracing::warn!(connection = %schedule.connection, %error, "full-scan schedule unreadable; not firing it");
                        None
                    }
                    None => None,
                };
                (due, next.unwrap_or(Timestamp(i64::MAX)), FetchScope::Full)
            }
        };
        if !store
            .claim_scheduled_scan(schedule.connection, scan, expected, next, now)
            .await?
        {
            continue; // another daemon fired it
        }
        let busy = store
            .active_job_run(schedule.connection, JobKind::Fetch)
            .await?
            .or(store
                .active_job_run(schedule.connection, JobKind::Sync)
                .await?);
        if let Some(run) = busy {
            tracing::info!(connection = %schedule.connection, run = %run.id, scan = scan.as_str(), "scheduled scan skipped: a fetch is under way");
            pass.skipped += 1;
            continue;
        }
        let Some(connection) = store.load_connection(schedule.connection).await? else {
            continue;
        };
        let submitted = jobs
            .fetch(
                connection.account,
                connection.id,
                &FetchRequest::new(scope),
                "schedule",
            )
            .await?;
        tracing::info!(connection = %connection.id, run = %submitted.run.id, scan = scan.as_str(), "scheduled scan fired");
        pass.fired += 1;
    }
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_field_expressions_fire_at_their_minute() {
        let cron = FullScanCron::parse("0  3 * * *").ok();
        let cron = cron.as_ref();
        assert_eq!(cron.map(FullScanCron::expression), Some("0 3 * * *"));
        // 2026-11-23 01:00 UTC → 03:00 the same day.
        let now = Timestamp(1_795_395_600_000);
        assert_eq!(
            cron.and_then(|c| c.next_after(now)),
            Some(Timestamp(1_795_395_600_000 + 2 * 3600 * 1000))
        );
    }

    #[test]
    fn bad_expressions_say_what_a_good_one_is() {
        let error = FullScanCron::parse("every night")
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("five")));
        assert!(FullScanCron::parse("61 * * * *").is_err());
    }
}
