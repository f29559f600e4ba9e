//! Pending changes: the outbox. At most one insert-or-update row per (connection, record)
//! (a second change merges into it) and one image-delete row per (connection, record, image).
//!
//! # The send protocol
//!
//! A send reads due rows ([`Db::due_pending_changes`]) with their `revision`, applies them on
//! the platform and then, in one transaction with the snapshot (and, for a create, the new
//! binding):
//!
//! - an **update** or **image delete** calls `remove_pending_change(id, revision)`: the row
//!   goes only if nothing merged into it since it was read; otherwise it stays (with the
//!   merged fields) for the next drain;
//! - an **insert** calls `complete_pending_insert(id, revision, now)` *after* binding the
//!   created record: if nothing merged into it the row goes; if a plan merged into it while
//!   the create was in flight, the row becomes an update of every field of the record (the
//!   merge into an insert does not remember which fields changed), so the next drain updates
//!   the record it created instead of creating it again.
//!
//! And on the planning side, `enqueue_pending_change` never queues an insert for a record
//! that is already bound on that connection: such an insert (a plan made from a snapshot read
//! before the create was acknowledged) is queued as an update of every field, and an insert
//! row already queued for a now-bound record is treated as such an update when merging.

use std::collections::BTreeMap;

use tidemark_core::{
    AccountId, ConnectionId, ContentHash, ExternalId, Field, FieldSet, OrderId, PendingChange,
    PendingChangeId, PendingOp, ProductId, RecordKind, RecordRef, Timestamp,
};

use super::{from_json, hash_from_hex, to_json, to_u32, ts};
use crate::error::db_err;
use crate::sql::{Arg, Sql, query_builder};
use crate::{
    Backend, Db, InsertCompletion, PendingCounts, PendingRow, StoreError, repository, with_db,
};

pub(crate) fn record_parts(record: RecordRef) -> (&'static str, i64) {
    match record {
        RecordRef::Product(ProductId(id)) => ("product", id),
        RecordRef::Order(OrderId(id)) => ("order", id),
    }
}

pub(crate) fn record_from_parts(kind: &str, id: i64) -> Option<RecordRef> {
    match kind {
        "product" => Some(RecordRef::Product(ProductId(id))),
        "order" => Some(RecordRef::Order(OrderId(id))),
        _ => None,
    }
}

const COLUMNS: &str = "id, connection_id, record_kind, record_id, op, fields, image_hash, \
                       image_external_id, attempts, next_attempt_at, last_error, revision, \
                       created_at, updated_at";

#[derive(sqlx::FromRow)]
struct PendingRowDb {
    id: i64,
    connection_id: i64,
    record_kind: String,
    record_id: i64,
    op: String,
    fields: String,
    image_hash: String,
    image_external_id: Option<String>,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    revision: i64,
    created_at: i64,
    updated_at: i64,
}

impl PendingRowDb {
    fn into_row(self) -> Result<PendingRow, StoreError> {
        let row = format!("id {}", self.id);
        let record = record_from_parts(&self.record_kind, self.record_id).ok_or_else(|| {
            StoreError::corrupt(
                "pending_changes",
                &row,
                format!("unknown record kind {:?}", self.record_kind),
            )
        })?;
        let op = match self.op.as_str() {
            "insert" => PendingOp::Insert,
            "update" => PendingOp::Update {
                fields: from_json("pending_changes", &row, "fields", &self.fields)?,
            },
            "image_delete" => PendingOp::ImageDelete {
                external_id: self.image_external_id.map(ExternalId),
                content_hash: hash_from_hex("pending_changes", &row, &self.image_hash)?,
            },
            other => {
                return Err(StoreError::corrupt(
                    "pending_changes",
                    &row,
                    format!("unknown op {other:?}"),
                ));
            }
        };
        Ok(PendingRow {
            change: PendingChange {
                id: PendingChangeId(self.id),
                connection: ConnectionId(self.connection_id),
                record,
                op,
                attempts: to_u32("pending_changes", &row, self.attempts)?,
                next_attempt_at: ts(self.next_attempt_at),
                last_error: self.last_error,
                created_at: ts(self.created_at),
                updated_at: ts(self.updated_at),
            },
            revision: self.revision,
        })
    }
}

/// Merges a new insert-or-update into an existing one: an insert writes everything, so it
/// absorbs updates; two updates write the union of their fields.
fn merge_ops(existing: &PendingOp, new: &PendingOp) -> PendingOp {
    match (existing, new) {
        (PendingOp::Update { fields: a }, PendingOp::Update { fields: b }) => PendingOp::Update {
            fields: a.union(b).copied().collect::<FieldSet>(),
        },
        _ => PendingOp::Insert,
    }
}

/// Every field of the record's kind: what is owed to a record that exists on the platform
/// when the precise field set is not known.
fn all_fields(kind: &str) -> FieldSet {
    let fields: &[Field] = if kind == "order" {
        &Field::ORDER_FIELDS
    } else {
        &Field::PRODUCT_FIELDS
    };
    fields.iter().copied().collect()
}

fn update_all_fields(kind: &str) -> PendingOp {
    PendingOp::Update {
        fields: all_fields(kind),
    }
}

fn binding_kind(kind: &str) -> RecordKind {
    if kind == "order" {
        RecordKind::Order
    } else {
        RecordKind::Product
    }
}

impl Db<'_> {
    async fn pending_where(&mut self, sql: Sql) -> Result<Vec<PendingRow>, StoreError> {
        let rows: Vec<PendingRowDb> = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(db_err("pending_changes", "get"))?;
        rows.into_iter().map(PendingRowDb::into_row).collect()
    }

    async fn pending_by_id(&mut self, id: i64) -> Result<PendingRow, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM pending_changes WHERE id = ")
            .bind_i64(id);
        self.pending_where(sql)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::not_found("pending change", id))
    }

    /// Queues a change for a connection, merging with the row already queued for the same
    /// record (the merged row is due at once, with its attempts reset).
    pub(crate) async fn enqueue_pending_change(
        &mut self,
        connection: ConnectionId,
        record: RecordRef,
        op: &PendingOp,
        now: Timestamp,
    ) -> Result<PendingRow, StoreError> {
        let (kind, record_id) = record_parts(record);
        self.savepoint().await?;
        let result = match op {
            PendingOp::ImageDelete {
                external_id,
                content_hash,
            } => {
                self.enqueue_image_delete(
                    connection,
                    kind,
                    record_id,
                    external_id.as_ref(),
                    *content_hash,
                    now,
                )
                .await
            }
            PendingOp::Insert | PendingOp::Update { .. } => {
                self.enqueue_write(connection, kind, record_id, op, now)
                    .await
            }
        };
        self.end_savepoint(result).await
    }

    async fn enqueue_image_delete(
        &mut self,
        connection: ConnectionId,
        kind: &'static str,
        record_id: i64,
        external_id: Option<&ExternalId>,
        content_hash: ContentHash,
        now: Timestamp,
    ) -> Result<PendingRow, StoreError> {
        let id: i64 = with_db!(self, |c| sqlx::query_scalar(
            "INSERT INTO pending_changes (connection_id, record_kind, record_id, op, fields, \
             image_hash, image_external_id, attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, 'image_delete', '[]', $4, $5, 0, $6, $6, $6) \
             ON CONFLICT (connection_id, record_kind, record_id, image_hash) \
             WHERE op = 'image_delete' DO UPDATE SET \
             image_external_id = COALESCE(excluded.image_external_id, \
             pending_changes.image_external_id), attempts = 0, next_attempt_at = excluded.next_attempt_at, \
             revision = pending_changes.revision + 1, updated_at = excluded.updated_at \
             RETURNING id"
        )
        .bind(connection.0)
        .bind(kind)
        .bind(record_id)
        .bind(content_hash.to_hex())
        .bind(external_id.map(ExternalId::as_str))
        .bind(now.0)
        .fetch_one(&mut *c)
        .await)
        .map_err(db_err("pending_changes", "enqueue image delete"))?;
        self.pending_by_id(id).await
    }

    async fn enqueue_write(
        &mut self,
        connection: ConnectionId,
        kind: &'static str,
        record_id: i64,
        op: &PendingOp,
        now: Timestamp,
    ) -> Result<PendingRow, StoreError> {
        // A record already bound on the connection exists there: it is never inserted again.
        let bound = self
            .binding_by_internal(connection, binding_kind(kind), record_id, "")
            .await?
            .is_some();
        let converted;
        let op = if bound && matches!(op, PendingOp::Insert) {
            converted = update_all_fields(kind);
            &converted
        } else {
            op
        };
        let fields = match op {
            PendingOp::Update { fields } => to_json("enqueue pending change", fields)?,
            _ => "[]".to_owned(),
        };
        let inserted: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
            "INSERT INTO pending_changes (connection_id, record_kind, record_id, op, fields, \
             attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6, $6) \
             ON CONFLICT (connection_id, record_kind, record_id) WHERE op <> 'image_delete' \
             DO NOTHING RETURNING id"
        )
        .bind(connection.0)
        .bind(kind)
        .bind(record_id)
        .bind(op.name())
        .bind(&fields)
        .bind(now.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("pending_changes", "enqueue"))?;
        if let Some(id) = inserted {
            return self.pending_by_id(id).await;
        }
        // Merge into the queued row, locked against a concurrent merge (SQLite transactions
        // already hold the write lock).
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM pending_changes WHERE connection_id = ")
            .bind_i64(connection.0)
            .push(" AND record_kind = ")
            .bind_text(kind)
            .push(" AND record_id = ")
            .bind_i64(record_id)
            .push(" AND op <> 'image_delete'");
        if self.backend() == Backend::Postgres {
            sql.push(" FOR UPDATE");
        }
        let existing = self
            .pending_where(sql)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Conflict {
                table: "pending_changes",
                kind: crate::ConflictKind::Unique {
                    detail: "the queued row vanished during a merge; retry".to_owned(),
                },
            })?;
        let existing_op = if bound && matches!(existing.change.op, PendingOp::Insert) {
            update_all_fields(kind)
        } else {
            existing.change.op.clone()
        };
        let merged = merge_ops(&existing_op, op);
        tracing::debug!(
            pending_change = existing.change.id.0,
            connection = connection.0,
            record_kind = kind,
            record_id,
            existing = existing.change.op.name(),
            new = op.name(),
            merged = merged.name(),
            "pending change merged into the queued row"
        );
        let merged_fields = match &merged {
            PendingOp::Update { fields } => to_json("enqueue pending change", fields)?,
            _ => "[]".to_owned(),
        };
        let id = existing.change.id.0;
        with_db!(self, |c| sqlx::query(
            "UPDATE pending_changes SET op = $2, fields = $3, attempts = 0, next_attempt_at = $4, \
             revision = revision + 1, updated_at = $4 WHERE id = $1"
        )
        .bind(id)
        .bind(merged.name())
        .bind(&merged_fields)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(drop))
        .map_err(db_err("pending_changes", "merge"))?;
        self.pending_by_id(id).await
    }

    /// Due rows of a connection (next attempt at or before `now`) in id order, after `after`.
    pub(crate) async fn due_pending_changes(
        &mut self,
        connection: ConnectionId,
        now: Timestamp,
        after: Option<PendingChangeId>,
        limit: i64,
    ) -> Result<Vec<PendingRow>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM pending_changes WHERE connection_id = ")
            .bind_i64(connection.0)
            .push(" AND next_attempt_at <= ")
            .bind_i64(now.0)
            .push(" AND id > ")
            .bind_i64(after.map_or(0, |a| a.0))
            .push(" ORDER BY id LIMIT ")
            .bind_i64(super::clamp_limit(limit));
        self.pending_where(sql).await
    }

    /// Every queued row of one record (all connections).
    pub(crate) async fn pending_changes_of_record(
        &mut self,
        record: RecordRef,
    ) -> Result<Vec<PendingRow>, StoreError> {
        let (kind, id) = record_parts(record);
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM pending_changes WHERE record_kind = ")
            .bind_text(kind)
            .push(" AND record_id = ")
            .bind_i64(id)
            .push(" ORDER BY connection_id, id");
        self.pending_where(sql).await
    }

    /// Queued rows of several records of one kind on the account's connections (for the
    /// browser's per-connection colours), by connection and id.
    pub(crate) async fn pending_changes_of_records(
        &mut self,
        account: AccountId,
        kind: RecordKind,
        ids: &[i64],
    ) -> Result<Vec<PendingRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let kind = match kind {
            RecordKind::Order => "order",
            _ => "product",
        };
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(
                " FROM pending_changes WHERE connection_id IN \
                 (SELECT id FROM connections WHERE account_id = ",
            )
            .bind_i64(account.0)
            .push(") AND record_kind = ")
            .bind_text(kind)
            .push(" AND record_id IN ")
            .bind_list(ids.iter().map(|id| Arg::I64(Some(*id))))
            .push(" ORDER BY connection_id, id");
        self.pending_where(sql).await
    }

    /// Removes a row after it was applied, only if it was not merged with new fields since
    /// it was read (`revision`); returns whether it was removed.
    pub(crate) async fn remove_pending_change(
        &mut self,
        id: PendingChangeId,
        revision: i64,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "DELETE FROM pending_changes WHERE id = $1 AND revision = $2"
        )
        .bind(id.0)
        .bind(revision)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("pending_changes", "remove"))?;
        Ok(done > 0)
    }

    /// Settles an insert row after its create succeeded on the platform (and the created
    /// record was bound, in the same transaction): removed when its revision is still
    /// `revision`; when a change merged into it meanwhile, turned into an update of every
    /// field of the record (due now, attempts reset) so it is not created twice.
    pub(crate) async fn complete_pending_insert(
        &mut self,
        id: PendingChangeId,
        revision: i64,
        now: Timestamp,
    ) -> Result<InsertCompletion, StoreError> {
        if self.remove_pending_change(id, revision).await? {
            return Ok(InsertCompletion::Removed);
        }
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM pending_changes WHERE id = ")
            .bind_i64(id.0);
        if self.backend() == Backend::Postgres {
            sql.push(" FOR UPDATE");
        }
        let Some(row) = self.pending_where(sql).await?.into_iter().next() else {
            return Ok(InsertCompletion::Gone);
        };
        if !matches!(row.change.op, PendingOp::Insert) {
            // Already an update (or an image delete): it owes what it says.
            return Ok(InsertCompletion::Kept(row));
        }
        let (kind, _) = record_parts(row.change.record);
        let fields = to_json("complete pending insert", &all_fields(kind))?;
        with_db!(self, |c| sqlx::query(
            "UPDATE pending_changes SET op = 'update', fields = $2, attempts = 0, \
             next_attempt_at = $3, last_error = NULL, revision = revision + 1, updated_at = $3 \
             WHERE id = $1"
        )
        .bind(id.0)
        .bind(&fields)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(drop))
        .map_err(db_err("pending_changes", "complete insert"))?;
        tracing::debug!(
            pending_change = id.0,
            connection = row.change.connection.0,
            record_kind = kind,
            record_id = record_parts(row.change.record).1,
            "insert completed while a change merged into it; kept as an update of all fields"
        );
        Ok(InsertCompletion::ConvertedToUpdate(
            self.pending_by_id(id.0).await?,
        ))
    }

    /// Records a failed attempt: attempts + 1, the error, and when to try again.
    pub(crate) async fn retry_pending_change(
        &mut self,
        id: PendingChangeId,
        next_attempt_at: Timestamp,
        error: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "UPDATE pending_changes SET attempts = attempts + 1, next_attempt_at = $2, \
             last_error = $3, updated_at = $4 WHERE id = $1"
        )
        .bind(id.0)
        .bind(next_attempt_at.0)
        .bind(error)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("pending_changes", "retry"))?;
        Ok(done > 0)
    }

    pub(crate) async fn pending_counts(
        &mut self,
        account: AccountId,
        connection: ConnectionId,
    ) -> Result<PendingCounts, StoreError> {
        self.check_connection(account, connection).await?;
        let rows: Vec<(String, i64)> = with_db!(self, |c| sqlx::query_as(
            "SELECT op, COUNT(*) FROM pending_changes WHERE connection_id = $1 GROUP BY op"
        )
        .bind(connection.0)
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("pending_changes", "count"))?;
        let mut counts = PendingCounts::default();
        for (op, n) in rows {
            add_count(&mut counts, &op, n);
        }
        Ok(counts)
    }

    /// Queued-change counts of every connection of the account that has any.
    pub(crate) async fn pending_counts_by_connection(
        &mut self,
        account: AccountId,
    ) -> Result<BTreeMap<ConnectionId, PendingCounts>, StoreError> {
        let rows: Vec<(i64, String, i64)> = with_db!(self, |c| sqlx::query_as(
            "SELECT p.connection_id, p.op, COUNT(*) FROM pending_changes p \
             JOIN connections c ON c.id = p.connection_id WHERE c.account_id = $1 \
             GROUP BY p.connection_id, p.op"
        )
        .bind(account.0)
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("pending_changes", "count by connection"))?;
        let mut out: BTreeMap<ConnectionId, PendingCounts> = BTreeMap::new();
        for (connection, op, n) in rows {
            add_count(out.entry(ConnectionId(connection)).or_default(), &op, n);
        }
        Ok(out)
    }

    /// Connections (of any account) with at least one row due at `now`, for the reconciler.
    pub(crate) async fn connections_with_due_changes(
        &mut self,
        now: Timestamp,
    ) -> Result<Vec<ConnectionId>, StoreError> {
        let ids: Vec<i64> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT DISTINCT connection_id FROM pending_changes WHERE next_attempt_at <= $1 \
             ORDER BY connection_id"
        )
        .bind(now.0)
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("pending_changes", "due connections"))?;
        Ok(ids.into_iter().map(ConnectionId).collect())
    }
}

fn add_count(counts: &mut PendingCounts, op: &str, n: i64) {
    match op {
        "insert" => counts.inserts += n,
        "update" => counts.updates += n,
        _ => counts.image_deletes += n,
    }
}

repository! {
    /// Queues a change (the outbox), merging with what is already queued for that record.
    write fn enqueue_pending_change(connection: ConnectionId, record: RecordRef, op: &PendingOp, now: Timestamp) -> PendingRow;
    /// Worker-only (a send job holding the connection's lease).
    read fn due_pending_changes(connection: ConnectionId, now: Timestamp, after: Option<PendingChangeId>, limit: i64) -> Vec<PendingRow>;
    read fn pending_changes_of_record(record: RecordRef) -> Vec<PendingRow>;
    /// Queued rows of these records (products or orders) on the account's connections.
    read fn pending_changes_of_records(account: AccountId, kind: RecordKind, ids: &[i64]) -> Vec<PendingRow>;
    /// Removes an applied row unless it was merged with new fields since it was read.
    write fn remove_pending_change(id: PendingChangeId, revision: i64) -> bool;
    /// After a create succeeded (and was bound): removes the insert row, or, if a change
    /// merged into it meanwhile, turns it into an update of every field (see the module docs).
    write fn complete_pending_insert(id: PendingChangeId, revision: i64, now: Timestamp) -> InsertCompletion;
    write fn retry_pending_change(id: PendingChangeId, next_attempt_at: Timestamp, error: &str, now: Timestamp) -> bool;
    /// Queued-change counts of a connection of the account (`NotFound` otherwise).
    read fn pending_counts(account: AccountId, connection: ConnectionId) -> PendingCounts;
    read fn pending_counts_by_connection(account: AccountId) -> BTreeMap<ConnectionId, PendingCounts>;
    /// Worker-only (the reconciler): connections of any account with due rows.
    read fn connections_with_due_changes(now: Timestamp) -> Vec<ConnectionId>;
}
