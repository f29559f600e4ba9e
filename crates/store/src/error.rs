//! The store's error type: every variant says which table and operation it came from.

use thiserror::Error;
use tidemark_core::{ConnectionId, ExternalId, RecordKind};

/// Which side of a binding's two unique keys was already taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictKind {
    /// (connection, kind, external id) is already bound to another internal record.
    ExternalIdBound {
        connection: ConnectionId,
        kind: RecordKind,
        external_id: ExternalId,
        bound_to_internal_id: i64,
        bound_to_internal_key: String,
    },
    /// (connection, kind, internal id, key) is already bound to another external id.
    InternalRecordBound {
        connection: ConnectionId,
        kind: RecordKind,
        internal_id: i64,
        internal_key: String,
        bound_to_external_id: ExternalId,
    },
    /// An optimistic-concurrency check failed: the record changed since it was read at
    /// `expected_revision`. Re-read it and re-apply the change.
    StaleRecord {
        kind: RecordKind,
        id: i64,
        expected_revision: i64,
        current_revision: i64,
    },
    /// Any other unique constraint (a connection name, a variant SKU inside one product, …).
    Unique { detail: String },
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConflictKind::ExternalIdBound {
                connection,
                kind,
                external_id,
                bound_to_internal_id,
                bound_to_internal_key,
            } => write!(
                f,
                "{} {external_id} on connection {connection} is already bound to internal \
                 record {bound_to_internal_id}{}{bound_to_internal_key}",
                kind.as_str(),
                if bound_to_internal_key.is_empty() {
                    ""
                } else {
                    "/"
                }
            ),
            ConflictKind::InternalRecordBound {
                connection,
                kind,
                internal_id,
                internal_key,
                bound_to_external_id,
            } => write!(
                f,
                "internal {} {internal_id}{}{internal_key} is already bound to \
                 {bound_to_external_id} on connection {connection}",
                kind.as_str(),
                if internal_key.is_empty() { "" } else { "/" }
            ),
            ConflictKind::StaleRecord {
                kind,
                id,
                expected_revision,
                current_revision,
            } => write!(
                f,
                "{} {id} changed since it was read (revision {current_revision}, not \
                 {expected_revision}); re-read and re-apply",
                kind.as_str()
            ),
            ConflictKind::Unique { detail } => f.write_str(detail),
        }
    }
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("invalid database url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("database error in {table}.{operation}: {source}")]
    Database {
        table: &'static str,
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error("applying migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    #[error("conflict in {table}: {kind}")]
    Conflict {
        table: &'static str,
        kind: ConflictKind,
    },

    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },

    #[error("no connection named {name:?} in this account")]
    UnknownConnection { name: String },

    #[error("corrupt row in {table} ({row}): {detail}")]
    Corrupt {
        table: &'static str,
        row: String,
        detail: String,
    },

    #[error("invalid argument to {operation}: {detail}")]
    Invalid {
        operation: &'static str,
        detail: String,
    },
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, row: impl ToString, detail: impl ToString) -> Self {
        StoreError::Corrupt {
            table,
            row: row.to_string(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn not_found(entity: &'static str, id: impl ToString) -> Self {
        StoreError::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// True for a [`StoreError::Conflict`] of kind [`ConflictKind::StaleRecord`].
    pub fn is_stale(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict {
                kind: ConflictKind::StaleRecord { .. },
                ..
            }
        )
    }

    /// True for a [`StoreError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// Maps a sqlx error to a [`StoreError`] naming the table and operation; unique violations
/// become [`StoreError::Conflict`].
pub(crate) fn db_err(
    table: &'static str,
    operation: &'static str,
) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| {
        if let sqlx::Error::Database(db) = &source
            && db.is_unique_violation()
        {
            return StoreError::Conflict {
                table,
                kind: ConflictKind::Unique {
                    detail: format!("{operation}: {}", db.message()),
                },
            };
        }
        StoreError::Database {
            table,
            operation,
            source,
        }
    }
}
