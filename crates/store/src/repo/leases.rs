//! Leases (at most one fetch and one send per connection across all processes) and
//! cooldowns (manual resyncs at most once an hour / every five minutes).

use tidemark_core::{ConnectionId, Timestamp};

use super::ts;
use crate::error::db_err;
use crate::{Cooldown, Db, Lease, StoreError, repository, with_db};

impl Db<'_> {
    /// Takes the lease `(connection, kind)` for `owner` until `now + ttl_ms`, atomically:
    /// inserted if absent, taken over if expired, extended if `owner` already holds it.
    /// Returns whether `owner` holds it now.
    pub(crate) async fn acquire_lease(
        &mut self,
        connection: ConnectionId,
        kind: &str,
        owner: &str,
        now: Timestamp,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let expires = now.saturating_add_millis(ttl_ms.max(1));
        let holder: Option<String> = with_db!(self, |c| sqlx::query_scalar(
            "INSERT INTO leases (connection_id, kind, owner, acquired_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connection_id, kind) DO UPDATE SET \
             owner = excluded.owner, acquired_at = CASE WHEN leases.owner = excluded.owner \
             THEN leases.acquired_at ELSE excluded.acquired_at END, \
             expires_at = excluded.expires_at \
             WHERE leases.expires_at <= excluded.acquired_at OR leases.owner = excluded.owner \
             RETURNING owner"
        )
        .bind(connection.0)
        .bind(kind)
        .bind(owner)
        .bind(now.0)
        .bind(expires.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("leases", "acquire"))?;
        Ok(holder.as_deref() == Some(owner))
    }

    /// Extends a lease `owner` still holds (and has not let expire); false otherwise.
    pub(crate) async fn renew_lease(
        &mut self,
        connection: ConnectionId,
        kind: &str,
        owner: &str,
        now: Timestamp,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let expires = now.saturating_add_millis(ttl_ms.max(1));
        let done = with_db!(self, |c| sqlx::query(
            "UPDATE leases SET expires_at = $4 WHERE connection_id = $1 AND kind = $2 \
             AND owner = $3 AND expires_at > $5"
        )
        .bind(connection.0)
        .bind(kind)
        .bind(owner)
        .bind(expires.0)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("leases", "renew"))?;
        Ok(done > 0)
    }

    /// Releases a lease held by `owner`; false if someone else holds it.
    pub(crate) async fn release_lease(
        &mut self,
        connection: ConnectionId,
        kind: &str,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "DELETE FROM leases WHERE connection_id = $1 AND kind = $2 AND owner = $3"
        )
        .bind(connection.0)
        .bind(kind)
        .bind(owner)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("leases", "release"))?;
        Ok(done > 0)
    }

    /// The lease row, expired or not.
    pub(crate) async fn get_lease(
        &mut self,
        connection: ConnectionId,
        kind: &str,
    ) -> Result<Option<Lease>, StoreError> {
        let row: Option<(String, i64, i64)> = with_db!(self, |c| sqlx::query_as(
            "SELECT owner, acquired_at, expires_at FROM leases WHERE connection_id = $1 AND kind = $2"
        )
        .bind(connection.0)
        .bind(kind)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("leases", "get"))?;
        Ok(row.map(|(owner, acquired, expires)| Lease {
            connection,
            kind: kind.to_owned(),
            owner,
            acquired_at: ts(acquired),
            expires_at: ts(expires),
        }))
    }

    /// Starts a cooldown `(connection, key)` of `duration_ms` unless one is running:
    /// `Started` (go ahead) or `Active` with when it ends. Atomic across processes.
    pub(crate) async fn start_cooldown(
        &mut self,
        connection: ConnectionId,
        key: &str,
        now: Timestamp,
        duration_ms: i64,
    ) -> Result<Cooldown, StoreError> {
        let until = now.saturating_add_millis(duration_ms.max(0));
        let started: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
            "INSERT INTO cooldowns (connection_id, cooldown_key, until_at) VALUES ($1, $2, $3) \
             ON CONFLICT (connection_id, cooldown_key) DO UPDATE SET until_at = excluded.until_at \
             WHERE cooldowns.until_at <= $4 RETURNING until_at"
        )
        .bind(connection.0)
        .bind(key)
        .bind(until.0)
        .bind(now.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("cooldowns", "start"))?;
        if let Some(until) = started {
            return Ok(Cooldown::Started { until: ts(until) });
        }
        match self.cooldown_until(connection, key, now).await? {
            Some(until) => Ok(Cooldown::Active { until }),
            // Expired between the two statements (cannot happen inside one transaction).
            None => Ok(Cooldown::Started { until }),
        }
    }

    /// When the running cooldown `(connection, key)` ends, if one runs at `now`.
    pub(crate) async fn cooldown_until(
        &mut self,
        connection: ConnectionId,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let until: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT until_at FROM cooldowns WHERE connection_id = $1 AND cooldown_key = $2 \
             AND until_at > $3"
        )
        .bind(connection.0)
        .bind(key)
        .bind(now.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("cooldowns", "get"))?;
        Ok(until.map(ts))
    }

    pub(crate) async fn clear_cooldown(
        &mut self,
        connection: ConnectionId,
        key: &str,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "DELETE FROM cooldowns WHERE connection_id = $1 AND cooldown_key = $2"
        )
        .bind(connection.0)
        .bind(key)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("cooldowns", "clear"))?;
        Ok(done > 0)
    }
}

repository! {
    /// Acquires (or takes over an expired, or extends one's own) lease; whether `owner` holds it.
    write fn acquire_lease(connection: ConnectionId, kind: &str, owner: &str, now: Timestamp, ttl_ms: i64) -> bool;
    /// Extends a lease only its unexpired owner holds.
    write fn renew_lease(connection: ConnectionId, kind: &str, owner: &str, now: Timestamp, ttl_ms: i64) -> bool;
    /// Releases a lease only its owner holds.
    write fn release_lease(connection: ConnectionId, kind: &str, owner: &str) -> bool;
    read fn get_lease(connection: ConnectionId, kind: &str) -> Option<Lease>;
    write fn start_cooldown(connection: ConnectionId, key: &str, now: Timestamp, duration_ms: i64) -> Cooldown;
    read fn cooldown_until(connection: ConnectionId, key: &str, now: Timestamp) -> Option<Timestamp>;
    write fn clear_cooldown(connection: ConnectionId, key: &str) -> bool;
}
