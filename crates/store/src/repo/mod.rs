//! Repository methods, one module per table family. Each is written once on [`crate::Db`].

use std::fmt::Display;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tidemark_core::{ContentHash, Timestamp};

use crate::{Db, StoreError, with_db};

mod absences;
mod accounts;
mod bindings;
mod connections;
mod issues;
mod jobs;
mod leases;
mod orders;
mod pending;
mod products;
mod schedules;
mod sets;
mod webhooks;

pub(crate) fn to_json<T: Serialize + ?Sized>(
    operation: &'static str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid {
        operation,
        detail: format!("cannot serialise to JSON: {e}"),
    })
}

pub(crate) fn from_json<T: DeserializeOwned>(
    table: &'static str,
    row: impl Display,
    column: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::corrupt(table, row, format!("column {column}: {e}")))
}

pub(crate) fn hash_from_hex(
    table: &'static str,
    row: impl Display,
    text: &str,
) -> Result<ContentHash, StoreError> {
    ContentHash::from_hex(text).map_err(|e| StoreError::corrupt(table, row, e))
}

pub(crate) fn ts(millis: i64) -> Timestamp {
    Timestamp(millis)
}

pub(crate) fn opt_ts(millis: Option<i64>) -> Option<Timestamp> {
    millis.map(Timestamp)
}

pub(crate) fn to_u32(
    table: &'static str,
    row: impl Display,
    value: i64,
) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::corrupt(table, row, format!("{value} out of range")))
}

/// A limit as SQL wants it: at least 1, at most 10,000.
pub(crate) fn clamp_limit(limit: i64) -> i64 {
    limit.clamp(1, 10_000)
}

impl Db<'_> {
    /// `NotFound` unless the connection belongs to the account: the guard of every
    /// account-scoped method that takes a connection id.
    pub(crate) async fn check_connection(
        &mut self,
        account: tidemark_core::AccountId,
        connection: tidemark_core::ConnectionId,
    ) -> Result<(), StoreError> {
        let found: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT id FROM connections WHERE id = $1 AND account_id = $2"
        )
        .bind(connection.0)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(crate::error::db_err("connections", "check account"))?;
        match found {
            Some(_) => Ok(()),
            None => Err(StoreError::not_found("connection", connection)),
        }
    }

    /// Opens a savepoint so that a multi-statement write is all-or-nothing even inside a
    /// caller's transaction (and a PostgreSQL transaction stays usable after it fails).
    pub(crate) async fn savepoint(&mut self) -> Result<(), StoreError> {
        with_db!(self, |c| sqlx::query("SAVEPOINT tidemark_write")
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
        .map(drop)
        .map_err(crate::error::db_err("transaction", "savepoint"))
    }

    /// Closes the savepoint of [`Db::savepoint`]: released on success, rolled back otherwise.
    pub(crate) async fn end_savepoint<T>(
        &mut self,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let close = if result.is_ok() {
            with_db!(self, |c| sqlx::query("RELEASE SAVEPOINT tidemark_write")
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))
        } else {
            let rolled_back = with_db!(self, |c| sqlx::query(
                "ROLLBACK TO SAVEPOINT tidemark_write"
            )
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()));
            match rolled_back {
                Ok(_) => with_db!(self, |c| sqlx::query("RELEASE SAVEPOINT tidemark_write")
                    .execute(&mut *c)
                    .await
                    .map(|r| r.rows_affected())),
                Err(e) => Err(e),
            }
        };
        match (result, close) {
            (Ok(value), Ok(_)) => Ok(value),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(crate::error::db_err("transaction", "release savepoint")(e)),
        }
    }
}
