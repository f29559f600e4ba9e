//! Bindings ((connection, kind, external id) ↔ internal record, unique on both sides),
//! acknowledged snapshots, and full-scan generations for mark and sweep.

use tidemark_core::{
    AccountId, Binding, ConnectionId, ExternalId, RecordContent, RecordKind, ScanKind, Snapshot,
    Timestamp,
};

use super::{from_json, hash_from_hex, opt_ts, to_json, to_u32};
use crate::error::db_err;
use crate::repo::products::{key, status_str};
use crate::sql::{Arg, Sql, query_builder};
use crate::{ConflictKind, Db, StoreError, repository, with_db};

#[derive(sqlx::FromRow)]
struct BindingRow {
    connection_id: i64,
    kind: String,
    external_id: String,
    internal_id: i64,
    internal_key: String,
}

impl BindingRow {
    fn into_binding(self) -> Result<Binding, StoreError> {
        let kind = RecordKind::parse(&self.kind).ok_or_else(|| {
            StoreError::corrupt(
                "bindings",
                format!("{}/{}", self.connection_id, self.external_id),
                format!("unknown kind {:?}", self.kind),
            )
        })?;
        Ok(Binding {
            connection: ConnectionId(self.connection_id),
            kind,
            external_id: ExternalId(self.external_id),
            internal_id: self.internal_id,
            internal_key: self.internal_key,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SnapshotRow {
    connection_id: i64,
    external_id: String,
    internal_id: i64,
    schema_version: i64,
    content: String,
    content_hash: String,
    platform_updated_at: Option<i64>,
    seen_generation: i64,
}

impl SnapshotRow {
    fn into_snapshot(self) -> Result<Snapshot, StoreError> {
        let row = format!(
            "connection {} external id {}",
            self.connection_id, self.external_id
        );
        Ok(Snapshot {
            connection: ConnectionId(self.connection_id),
            schema_version: to_u32("snapshots", &row, self.schema_version)?,
            content: from_json("snapshots", &row, "content", &self.content)?,
            content_hash: hash_from_hex("snapshots", &row, &self.content_hash)?,
            external_id: ExternalId(self.external_id),
            internal_id: self.internal_id,
            platform_updated_at: opt_ts(self.platform_updated_at),
            seen_generation: self.seen_generation,
        })
    }
}

const BINDING_COLUMNS: &str = "connection_id, kind, external_id, internal_id, internal_key";
const SNAPSHOT_COLUMNS: &str = "connection_id, external_id, internal_id, schema_version, content, \
                                content_hash, platform_updated_at, seen_generation";

pub(crate) fn scan_record_kind(kind: ScanKind) -> RecordKind {
    match kind {
        ScanKind::Products => RecordKind::Product,
        ScanKind::Orders => RecordKind::Order,
    }
}

fn snapshot_kind(content: &RecordContent) -> RecordKind {
    match content {
        RecordContent::Product(_) => RecordKind::Product,
        RecordContent::Order(_) => RecordKind::Order,
    }
}

impl Db<'_> {
    async fn bindings_where(&mut self, sql: Sql) -> Result<Vec<Binding>, StoreError> {
        let rows: Vec<BindingRow> = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(db_err("bindings", "get"))?;
        rows.into_iter().map(BindingRow::into_binding).collect()
    }

    /// Binds an external record to an internal one. Binding an identical pair again is a
    /// no-op; if either side is already bound elsewhere the answer is a `Conflict` naming the
    /// side, and nothing is written. Safe against a concurrent bind of the same external id:
    /// the loser's insert does nothing and it reads the winner's row.
    pub(crate) async fn bind(
        &mut self,
        binding: &Binding,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let inserted: Option<i64> = with_db!(self, |c| {
            sqlx::query_scalar(
            "INSERT INTO bindings (connection_id, kind, external_id, internal_id, internal_key, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id"
        )
        .bind(binding.connection.0)
        .bind(binding.kind.as_str())
        .bind(binding.external_id.as_str())
        .bind(binding.internal_id)
        .bind(&binding.internal_key)
        .bind(now.0)
        .fetch_optional(&mut *c)
        .await
        })
        .map_err(db_err("bindings", "bind"))?;
        if inserted.is_some() {
            return Ok(());
        }
        if let Some(existing) = self
            .binding_by_external(binding.connection, binding.kind, &binding.external_id)
            .await?
        {
            if existing == *binding {
                tracing::debug!(
                    connection = binding.connection.0,
                    kind = binding.kind.as_str(),
                    external_id = binding.external_id.as_str(),
                    "bind: the same binding already exists (a concurrent bind won); no-op"
                );
                return Ok(());
            }
            return Err(StoreError::Conflict {
                table: "bindings",
                kind: ConflictKind::ExternalIdBound {
                    connection: binding.connection,
                    kind: binding.kind,
                    external_id: binding.external_id.clone(),
                    bound_to_internal_id: existing.internal_id,
                    bound_to_internal_key: existing.internal_key,
                },
            });
        }
        if let Some(existing) = self
            .binding_by_internal(
                binding.connection,
                binding.kind,
                binding.internal_id,
                &binding.internal_key,
            )
            .await?
        {
            return Err(StoreError::Conflict {
                table: "bindings",
                kind: ConflictKind::InternalRecordBound {
                    connection: binding.connection,
                    kind: binding.kind,
                    internal_id: binding.internal_id,
                    internal_key: binding.internal_key.clone(),
                    bound_to_external_id: existing.external_id,
                },
            });
        }
        // The conflicting row vanished between the insert and the reads (a concurrent unbind).
        Err(StoreError::Conflict {
            table: "bindings",
            kind: ConflictKind::Unique {
                detail: format!(
                    "bind {} {} on connection {}: a concurrent change took and released it; retry",
                    binding.kind.as_str(),
                    binding.external_id,
                    binding.connection
                ),
            },
        })
    }

    /// Removes a binding (and with it the snapshot).
    pub(crate) async fn unbind(
        &mut self,
        connection: ConnectionId,
        kind: RecordKind,
        external_id: &ExternalId,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "DELETE FROM bindings WHERE connection_id = $1 AND kind = $2 AND external_id = $3"
        )
        .bind(connection.0)
        .bind(kind.as_str())
        .bind(external_id.as_str())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("bindings", "unbind"))?;
        Ok(done > 0)
    }

    pub(crate) async fn binding_by_external(
        &mut self,
        connection: ConnectionId,
        kind: RecordKind,
        external_id: &ExternalId,
    ) -> Result<Option<Binding>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(BINDING_COLUMNS)
            .push(" FROM bindings WHERE connection_id = ")
            .bind_i64(connection.0)
            .push(" AND kind = ")
            .bind_text(kind.as_str())
            .push(" AND external_id = ")
            .bind_text(external_id.as_str());
        Ok(self.bindings_where(sql).await?.into_iter().next())
    }

    pub(crate) async fn binding_by_internal(
        &mut self,
        connection: ConnectionId,
        kind: RecordKind,
        internal_id: i64,
        internal_key: &str,
    ) -> Result<Option<Binding>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(BINDING_COLUMNS)
            .push(" FROM bindings WHERE connection_id = ")
            .bind_i64(connection.0)
            .push(" AND kind = ")
            .bind_text(kind.as_str())
            .push(" AND internal_id = ")
            .bind_i64(internal_id)
            .push(" AND internal_key = ")
            .bind_text(internal_key);
        Ok(self.bindings_where(sql).await?.into_iter().next())
    }

    /// Every binding of one internal record on the account's connections (for variants and
    /// images, all keys), ordered by connection.
    pub(crate) async fn bindings_of_record(
        &mut self,
        account: AccountId,
        kind: RecordKind,
        internal_id: i64,
    ) -> Result<Vec<Binding>, StoreError> {
        self.bindings_of_records(account, kind, &[internal_id])
            .await
    }

    /// Bindings of several internal records of one kind on the account's connections.
    pub(crate) async fn bindings_of_records(
        &mut self,
        account: AccountId,
        kind: RecordKind,
        internal_ids: &[i64],
    ) -> Result<Vec<Binding>, StoreError> {
        if internal_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new("SELECT ");
        sql.push(BINDING_COLUMNS)
            .push(
                " FROM bindings WHERE connection_id IN \
                 (SELECT id FROM connections WHERE account_id = ",
            )
            .bind_i64(account.0)
            .push(") AND kind = ")
            .bind_text(kind.as_str())
            .push(" AND internal_id IN ")
            .bind_list(internal_ids.iter().map(|id| Arg::I64(Some(*id))))
            .push(" ORDER BY connection_id, internal_id, internal_key");
        self.bindings_where(sql).await
    }

    /// Bindings of one connection and kind in external-id order, after `after` (keyset).
    pub(crate) async fn list_bindings(
        &mut self,
        account: AccountId,
        connection: ConnectionId,
        kind: RecordKind,
        after: Option<&ExternalId>,
        limit: i64,
    ) -> Result<Vec<Binding>, StoreError> {
        self.check_connection(account, connection).await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(BINDING_COLUMNS)
            .push(" FROM bindings WHERE connection_id = ")
            .bind_i64(connection.0)
            .push(" AND kind = ")
            .bind_text(kind.as_str());
        if let Some(after) = after {
            sql.push(" AND external_id > ").bind_text(after.as_str());
        }
        sql.push(" ORDER BY external_id LIMIT ")
            .bind_i64(super::clamp_limit(limit));
        self.bindings_where(sql).await
    }

    pub(crate) async fn count_bindings(
        &mut self,
        connection: ConnectionId,
        kind: RecordKind,
    ) -> Result<i64, StoreError> {
        with_db!(self, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM bindings WHERE connection_id = $1 AND kind = $2"
        )
        .bind(connection.0)
        .bind(kind.as_str())
        .fetch_one(&mut *c)
        .await)
        .map_err(db_err("bindings", "count"))
    }

    /// Bindings of the connection whose internal record no longer exists (for the integrity
    /// fix), in id order.
    pub(crate) async fn list_orphan_bindings(
        &mut self,
        connection: ConnectionId,
        limit: i64,
    ) -> Result<Vec<Binding>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(BINDING_COLUMNS)
            .push(" FROM bindings b WHERE b.connection_id = ")
            .bind_i64(connection.0)
            .push(
                " AND ((b.kind IN ('product', 'variant', 'image') AND NOT EXISTS \
                 (SELECT 1 FROM products p WHERE p.id = b.internal_id)) \
                 OR (b.kind = 'order' AND NOT EXISTS \
                 (SELECT 1 FROM orders o WHERE o.id = b.internal_id))) ORDER BY b.id LIMIT ",
            )
            .bind_i64(super::clamp_limit(limit));
        self.bindings_where(sql).await
    }

    /// Writes the acknowledged snapshot of a bound record (insert or replace). The binding
    /// must exist (`NotFound` otherwise). `seen_generation` only ever increases: a writer
    /// passing an older generation (a send during a full scan) keeps the stored one, so it
    /// cannot make a record the scan saw look deleted.
    pub(crate) async fn put_snapshot(
        &mut self,
        snapshot: &Snapshot,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let kind = snapshot_kind(&snapshot.content);
        let (status, category) = match &snapshot.content {
            RecordContent::Product(p) => (
                Some(status_str(p.status)),
                p.category.as_deref().map(key).filter(|c| !c.is_empty()),
            ),
            RecordContent::Order(_) => (None, None),
        };
        let content = to_json("put snapshot", &snapshot.content)?;
        let bound: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT internal_id FROM bindings WHERE connection_id = $1 AND kind = $2 \
             AND external_id = $3"
        )
        .bind(snapshot.connection.0)
        .bind(kind.as_str())
        .bind(snapshot.external_id.as_str())
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("snapshots", "put"))?;
        match bound {
            None => {
                return Err(StoreError::not_found(
                    "binding",
                    format!(
                        "{} {} on connection {}",
                        kind.as_str(),
                        snapshot.external_id,
                        snapshot.connection
                    ),
                ));
            }
            Some(internal) if internal != snapshot.internal_id => {
                return Err(StoreError::Invalid {
                    operation: "put snapshot",
                    detail: format!(
                        "{} {} is bound to {internal}, not {}",
                        kind.as_str(),
                        snapshot.external_id,
                        snapshot.internal_id
                    ),
                });
            }
            Some(_) => {}
        }
        with_db!(self, |c| sqlx::query(
            "INSERT INTO snapshots (connection_id, kind, external_id, internal_id, schema_version, \
             content, content_hash, platform_updated_at, seen_generation, status, category_key, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (connection_id, kind, external_id) DO UPDATE SET \
             internal_id = excluded.internal_id, schema_version = excluded.schema_version, \
             content = excluded.content, content_hash = excluded.content_hash, \
             platform_updated_at = excluded.platform_updated_at, \
             seen_generation = CASE WHEN excluded.seen_generation > snapshots.seen_generation \
             THEN excluded.seen_generation ELSE snapshots.seen_generation END, \
             status = excluded.status, \
             category_key = excluded.category_key, updated_at = excluded.updated_at"
        )
        .bind(snapshot.connection.0)
        .bind(kind.as_str())
        .bind(snapshot.external_id.as_str())
        .bind(snapshot.internal_id)
        .bind(i64::from(snapshot.schema_version))
        .bind(&content)
        .bind(snapshot.content_hash.to_hex())
        .bind(snapshot.platform_updated_at.map(|t| t.0))
        .bind(snapshot.seen_generation)
        .bind(status)
        .bind(category.as_deref())
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(drop))
        .map_err(db_err("snapshots", "put"))?;
        Ok(())
    }

    async fn snapshots_where(&mut self, sql: Sql) -> Result<Vec<Snapshot>, StoreError> {
        let rows: Vec<SnapshotRow> = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(db_err("snapshots", "get"))?;
        rows.into_iter().map(SnapshotRow::into_snapshot).collect()
    }

    pub(crate) async fn get_snapshot(
        &mut self,
        connection: ConnectionId,
        kind: RecordKind,
        external_id: &ExternalId,
    ) -> Result<Option<Snapshot>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(SNAPSHOT_COLUMNS)
            .push(" FROM snapshots WHERE connection_id = ")
            .bind_i64(connection.0)
            .push(" AND kind = ")
            .bind_text(kind.as_str())
            .push(" AND external_id = ")
            .bind_text(external_id.as_str());
        Ok(self.snapshots_where(sql).await?.into_iter().next())
    }

    /// The snapshot on `connection` of the internal record `internal_id`.
    pub(crate) async fn snapshot_of_record(
        &mut self,
        connection: ConnectionId,
        kind: RecordKind,
        internal_id: i64,
    ) -> Result<Option<Snapshot>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(SNAPSHOT_COLUMNS)
            .push(" FROM snapshots WHERE connection_id = ")
            .bind_i64(connection.0)
            .push(" AND kind = ")
            .bind_text(kind.as_str())
            .push(" AND internal_id = ")
            .bind_i64(internal_id)
            .push(" ORDER BY external_id LIMIT 1");
        Ok(self.snapshots_where(sql).await?.into_iter().next())
    }

    /// The snapshots of these external ids on the connection (those that exist), for a scan
    /// page: one query per 500 ids instead of one per record.
    pub(crate) async fn snapshots_by_external(
        &mut self,
        connection: ConnectionId,
        kind: RecordKind,
        external_ids: &[ExternalId],
    ) -> Result<Vec<Snapshot>, StoreError> {
        let mut out = Vec::with_capacity(external_ids.len());
        for chunk in external_ids.chunks(500) {
            let mut sql = Sql::new("SELECT ");
            sql.push(SNAPSHOT_COLUMNS)
                .push(" FROM snapshots WHERE connection_id = ")
                .bind_i64(connection.0)
                .push(" AND kind = ")
                .bind_text(kind.as_str())
                .push(" AND external_id IN ");
            sql.bind_list(chunk.iter().map(|id| Arg::Text(Some(id.0.clone()))));
            out.extend(self.snapshots_where(sql).await?);
        }
        Ok(out)
    }

    /// Snapshots of one connection and kind in external-id order (keyset), e.g. for the
    /// integrity fix.
    pub(crate) async fn list_snapshots(
        &mut self,
        connection: ConnectionId,
        kind: RecordKind,
        after: Option<&ExternalId>,
        limit: i64,
    ) -> Result<Vec<Snapshot>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(SNAPSHOT_COLUMNS)
            .push(" FROM snapshots WHERE connection_id = ")
            .bind_i64(connection.0)
            .push(" AND kind = ")
            .bind_text(kind.as_str());
        if let Some(after) = after {
            sql.push(" AND external_id > ").bind_text(after.as_str());
        }
        sql.push(" ORDER BY external_id LIMIT ")
            .bind_i64(super::clamp_limit(limit));
        self.snapshots_where(sql).await
    }

    pub(crate) async fn delete_snapshot(
        &mut self,
        connection: ConnectionId,
        kind: RecordKind,
        external_id: &ExternalId,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "DELETE FROM snapshots WHERE connection_id = $1 AND kind = $2 AND external_id = $3"
        )
        .bind(connection.0)
        .bind(kind.as_str())
        .bind(external_id.as_str())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("snapshots", "delete"))?;
        Ok(done > 0)
    }

    /// Starts a full scan: the connection's next scan generation for `kind` (1, 2, …), and
    /// records `now` as the moment it started ([`Db::list_unseen`] ignores bindings made at
    /// or after it).
    pub(crate) async fn next_scan_generation(
        &mut self,
        connection: ConnectionId,
        kind: ScanKind,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        with_db!(self, |c| sqlx::query_scalar(
            "INSERT INTO scan_generations (connection_id, kind, generation, started_at) \
             VALUES ($1, $2, 1, $3) ON CONFLICT (connection_id, kind) DO UPDATE SET \
             generation = scan_generations.generation + 1, started_at = excluded.started_at \
             RETURNING generation"
        )
        .bind(connection.0)
        .bind(kind.as_str())
        .bind(now.0)
        .fetch_one(&mut *c)
        .await)
        .map_err(db_err("scan_generations", "next"))
    }

    /// The current scan generation (0 before the first full scan).
    pub(crate) async fn scan_generation(
        &mut self,
        connection: ConnectionId,
        kind: ScanKind,
    ) -> Result<i64, StoreError> {
        let generation: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT generation FROM scan_generations WHERE connection_id = $1 AND kind = $2"
        )
        .bind(connection.0)
        .bind(kind.as_str())
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("scan_generations", "get"))?;
        Ok(generation.unwrap_or(0))
    }

    /// Marks the snapshots of these external ids as seen by scan `generation`; returns how
    /// many were marked.
    pub(crate) async fn mark_seen(
        &mut self,
        connection: ConnectionId,
        kind: ScanKind,
        external_ids: &[ExternalId],
        generation: i64,
    ) -> Result<u64, StoreError> {
        let mut marked = 0;
        for chunk in external_ids.chunks(500) {
            // Never lowers the generation (a late mark of an older scan keeps the newer one).
            let mut sql =
                Sql::new("UPDATE snapshots SET seen_generation = CASE WHEN seen_generation < ");
            sql.bind_i64(generation)
                .push(" THEN ")
                .bind_i64(generation)
                .push(" ELSE seen_generation END WHERE connection_id = ")
                .bind_i64(connection.0)
                .push(" AND kind = ")
                .bind_text(scan_record_kind(kind).as_str())
                .push(" AND external_id IN ");
            sql.bind_list(chunk.iter().map(|id| Arg::Text(Some(id.0.clone()))));
            marked += with_db!(self, |c| {
                let mut qb = query_builder!(sql);
                qb.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })
            .map_err(db_err("snapshots", "mark seen"))?;
        }
        Ok(marked)
    }

    /// Bindings of `kind` on the connection that scan `generation` did not see (sweep
    /// candidates), in external-id order after `after`.
    ///
    /// A binding created at or after the moment the generation started (a record created by
    /// a send, or bound by a webhook, while the scan ran) is never a candidate: the scan may
    /// have passed its page before it existed. Only the current generation sweeps: for a
    /// generation that has been superseded (or never started) the answer is empty.
    pub(crate) async fn list_unseen(
        &mut self,
        connection: ConnectionId,
        kind: ScanKind,
        generation: i64,
        after: Option<&ExternalId>,
        limit: i64,
    ) -> Result<Vec<Binding>, StoreError> {
        let mut sql = Sql::new(
            "SELECT b.connection_id, b.kind, b.external_id, b.internal_id, b.internal_key \
             FROM bindings b JOIN scan_generations g ON g.connection_id = b.connection_id \
             AND g.kind = ",
        );
        sql.bind_text(kind.as_str())
            .push(" AND g.generation = ")
            .bind_i64(generation)
            .push(
                " LEFT JOIN snapshots s ON s.connection_id = b.connection_id \
                 AND s.kind = b.kind AND s.external_id = b.external_id WHERE b.connection_id = ",
            )
            .bind_i64(connection.0)
            .push(" AND b.kind = ")
            .bind_text(scan_record_kind(kind).as_str())
            .push(" AND b.created_at < g.started_at")
            .push(" AND (s.seen_generation IS NULL OR s.seen_generation < ")
            .bind_i64(generation)
            .push(")");
        if let Some(after) = after {
            sql.push(" AND b.external_id > ").bind_text(after.as_str());
        }
        sql.push(" ORDER BY b.external_id LIMIT ")
            .bind_i64(super::clamp_limit(limit));
        self.bindings_where(sql).await
    }
}

repository! {
    /// Binds an external record to an internal one; `Conflict` naming the side when either
    /// unique side is taken (nothing is written then).
    write fn bind(binding: &Binding, now: Timestamp) -> ();
    write fn unbind(connection: ConnectionId, kind: RecordKind, external_id: &ExternalId) -> bool;
    read fn binding_by_external(connection: ConnectionId, kind: RecordKind, external_id: &ExternalId) -> Option<Binding>;
    read fn binding_by_internal(connection: ConnectionId, kind: RecordKind, internal_id: i64, internal_key: &str) -> Option<Binding>;
    /// Bindings of an internal record on the account's connections.
    read fn bindings_of_record(account: AccountId, kind: RecordKind, internal_id: i64) -> Vec<Binding>;
    /// Bindings of several internal records on the account's connections.
    read fn bindings_of_records(account: AccountId, kind: RecordKind, internal_ids: &[i64]) -> Vec<Binding>;
    /// Bindings of a connection of the account (`NotFound` otherwise), keyset by external id.
    read fn list_bindings(account: AccountId, connection: ConnectionId, kind: RecordKind, after: Option<&ExternalId>, limit: i64) -> Vec<Binding>;
    read fn count_bindings(connection: ConnectionId, kind: RecordKind) -> i64;
    read fn list_orphan_bindings(connection: ConnectionId, limit: i64) -> Vec<Binding>;
    write fn put_snapshot(snapshot: &Snapshot, now: Timestamp) -> ();
    read fn get_snapshot(connection: ConnectionId, kind: RecordKind, external_id: &ExternalId) -> Option<Snapshot>;
    read fn snapshots_by_external(connection: ConnectionId, kind: RecordKind, external_ids: &[ExternalId]) -> Vec<Snapshot>;
    read fn snapshot_of_record(connection: ConnectionId, kind: RecordKind, internal_id: i64) -> Option<Snapshot>;
    read fn list_snapshots(connection: ConnectionId, kind: RecordKind, after: Option<&ExternalId>, limit: i64) -> Vec<Snapshot>;
    write fn delete_snapshot(connection: ConnectionId, kind: RecordKind, external_id: &ExternalId) -> bool;
    write fn next_scan_generation(connection: ConnectionId, kind: ScanKind, now: Timestamp) -> i64;
    read fn scan_generation(connection: ConnectionId, kind: ScanKind) -> i64;
    write fn mark_seen(connection: ConnectionId, kind: ScanKind, external_ids: &[ExternalId], generation: i64) -> u64;
    read fn list_unseen(connection: ConnectionId, kind: ScanKind, generation: i64, after: Option<&ExternalId>, limit: i64) -> Vec<Binding>;
}
