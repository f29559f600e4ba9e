//! Scan schedules (one row per connection): set at run time by the merchant, listed when due
//! and claimed by the scheduler with a compare-and-set, so that of several daemons exactly
//! one fires each due scan.

use tidemark_core::{AccountId, ConnectionId, Timestamp};

use super::{clamp_limit, opt_ts, ts};
use crate::error::db_err;
use crate::{Db, Schedule, ScheduledScan, StoreError, repository, with_db};

#[derive(sqlx::FromRow)]
struct ScheduleRow {
    connection_id: i64,
    fetch_interval_ms: Option<i64>,
    full_scan_cron: Option<String>,
    next_fetch_at: Option<i64>,
    next_full_scan_at: Option<i64>,
    updated_at: i64,
}

impl From<ScheduleRow> for Schedule {
    fn from(row: ScheduleRow) -> Self {
        Schedule {
            connection: ConnectionId(row.connection_id),
            fetch_interval_ms: row.fetch_interval_ms,
            full_scan_cron: row.full_scan_cron,
            next_fetch_at: opt_ts(row.next_fetch_at),
            next_full_scan_at: opt_ts(row.next_full_scan_at),
            updated_at: ts(row.updated_at),
        }
    }
}

#[derive(sqlx::FromRow)]
struct DueRow {
    #[sqlx(flatten)]
    schedule: ScheduleRow,
    scan: String,
}

impl Db<'_> {
    /// Sets (inserts or replaces) the schedule of an account's connection. A new or changed
    /// fetch interval makes the next fetch due at `now + interval`, so it applies at once
    /// without a restart; an unchanged one keeps its due time; `None` clears it. Without a
    /// cron expression `next_full_scan_at` is cleared, whatever was passed.
    pub(crate) async fn set_schedule(
        &mut self,
        account: AccountId,
        connection: ConnectionId,
        fetch_interval_ms: Option<i64>,
        full_scan_cron: Option<&str>,
        next_full_scan_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Schedule, StoreError> {
        if let Some(interval) = fetch_interval_ms
            && interval <= 0
        {
            return Err(StoreError::Invalid {
                operation: "set_schedule",
                detail: format!(
                    "the fetch interval must be a positive number of milliseconds, not {interval}"
                ),
            });
        }
        if full_scan_cron.is_some_and(|cron| cron.trim().is_empty()) {
            return Err(StoreError::Invalid {
                operation: "set_schedule",
                detail: "the full-scan cron expression is empty (pass none for no full scan)"
                    .to_owned(),
            });
        }
        self.check_connection(account, connection).await?;
        let next_fetch_at = fetch_interval_ms.map(|interval| now.saturating_add_millis(interval));
        let next_full_scan_at = full_scan_cron.and(next_full_scan_at);
        let row: ScheduleRow = with_db!(self, |c| sqlx::query_as(
            "INSERT INTO schedules (connection_id, fetch_interval_ms, full_scan_cron, \
             next_fetch_at, next_full_scan_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (connection_id) DO UPDATE SET \
             next_fetch_at = CASE WHEN excluded.fetch_interval_ms IS NULL THEN NULL \
             WHEN schedules.fetch_interval_ms = excluded.fetch_interval_ms \
             AND schedules.next_fetch_at IS NOT NULL THEN schedules.next_fetch_at \
             ELSE excluded.next_fetch_at END, \
             fetch_interval_ms = excluded.fetch_interval_ms, \
             full_scan_cron = excluded.full_scan_cron, \
             next_full_scan_at = excluded.next_full_scan_at, \
             updated_at = excluded.updated_at \
             RETURNING connection_id, fetch_interval_ms, full_scan_cron, next_fetch_at, \
             next_full_scan_at, updated_at"
        )
        .bind(connection.0)
        .bind(fetch_interval_ms)
        .bind(full_scan_cron)
        .bind(next_fetch_at.map(|t| t.0))
        .bind(next_full_scan_at.map(|t| t.0))
        .bind(now.0)
        .fetch_one(&mut *c)
        .await)
        .map_err(db_err("schedules", "set"))?;
        Ok(row.into())
    }

    /// The schedule of an account's connection; `None` if it has none.
    pub(crate) async fn get_schedule(
        &mut self,
        account: AccountId,
        connection: ConnectionId,
    ) -> Result<Option<Schedule>, StoreError> {
        self.check_connection(account, connection).await?;
        let row: Option<ScheduleRow> = with_db!(self, |c| sqlx::query_as(
            "SELECT connection_id, fetch_interval_ms, full_scan_cron, next_fetch_at, \
             next_full_scan_at, updated_at FROM schedules WHERE connection_id = $1"
        )
        .bind(connection.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("schedules", "get"))?;
        Ok(row.map(Schedule::from))
    }

    /// Worker-only (the scheduler): the scans due at `now` of connections not paused, oldest
    /// due first, at most `limit`. A schedule with both scans due appears once for each.
    pub(crate) async fn due_schedules(
        &mut self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<(Schedule, ScheduledScan)>, StoreError> {
        let rows: Vec<DueRow> = with_db!(self, |c| sqlx::query_as(
            "SELECT s.connection_id, s.fetch_interval_ms, s.full_scan_cron, s.next_fetch_at, \
             s.next_full_scan_at, s.updated_at, 'fetch' AS scan, s.next_fetch_at AS due_at \
             FROM schedules s JOIN connections c ON c.id = s.connection_id \
             WHERE s.next_fetch_at <= $1 AND NOT c.paused \
             UNION ALL \
             SELECT s.connection_id, s.fetch_interval_ms, s.full_scan_cron, s.next_fetch_at, \
             s.next_full_scan_at, s.updated_at, 'full_scan' AS scan, \
             s.next_full_scan_at AS due_at \
             FROM schedules s JOIN connections c ON c.id = s.connection_id \
             WHERE s.next_full_scan_at <= $2 AND NOT c.paused \
             ORDER BY due_at, connection_id, scan LIMIT $3"
        )
        .bind(now.0)
        .bind(now.0)
        .bind(clamp_limit(limit))
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("schedules", "list due"))?;
        rows.into_iter()
            .map(|row| {
                let scan = ScheduledScan::parse(&row.scan).ok_or_else(|| {
                    StoreError::corrupt(
                        "schedules",
                        format!("connection {}", row.schedule.connection_id),
                        format!("unknown scan {:?}", row.scan),
                    )
                })?;
                Ok((row.schedule.into(), scan))
            })
            .collect()
    }

    /// Worker-only (the scheduler): claims the `scan` of `connection` due at `expected_due`
    /// (and due at `now`) by moving its due time to `next`. Atomic compare-and-set: of several
    /// daemons claiming the same due scan exactly one gets `true`; `false` if the scan was
    /// claimed already, rescheduled or cleared since it was listed, or is not due yet.
    pub(crate) async fn claim_scheduled_scan(
        &mut self,
        connection: ConnectionId,
        scan: ScheduledScan,
        expected_due: Timestamp,
        next: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // The column is chosen from code, never from input; every value is bound.
        let sql = match scan {
            ScheduledScan::Fetch => {
                "UPDATE schedules SET next_fetch_at = $1 WHERE connection_id = $2 \
                 AND next_fetch_at = $3 AND next_fetch_at <= $4"
            }
            ScheduledScan::FullScan => {
                "UPDATE schedules SET next_full_scan_at = $1 WHERE connection_id = $2 \
                 AND next_full_scan_at = $3 AND next_full_scan_at <= $4"
            }
        };
        let done = with_db!(self, |c| sqlx::query(sql)
            .bind(next.0)
            .bind(connection.0)
            .bind(expected_due.0)
            .bind(now.0)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db_err("schedules", "claim"))?;
        Ok(done > 0)
    }
}

repository! {
    /// Sets a connection's schedule; a new or changed interval is due at `now + interval`.
    write fn set_schedule(
        account: AccountId,
        connection: ConnectionId,
        fetch_interval_ms: Option<i64>,
        full_scan_cron: Option<&str>,
        next_full_scan_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Schedule;
    read fn get_schedule(account: AccountId, connection: ConnectionId) -> Option<Schedule>;
    /// Worker-only (the scheduler): due scans of connections not paused, oldest first.
    read fn due_schedules(now: Timestamp, limit: i64) -> Vec<(Schedule, ScheduledScan)>;
    /// Worker-only (the scheduler): moves a due scan from `expected_due` to `next`; whether
    /// this caller won it.
    write fn claim_scheduled_scan(
        connection: ConnectionId,
        scan: ScheduledScan,
        expected_due: Timestamp,
        next: Timestamp,
        now: Timestamp,
    ) -> bool;
}
