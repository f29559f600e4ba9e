//! Records that are on a platform without a canonical counterpart (unlinked), and canonical
//! records deleted on a platform by its merchant (platform deletions).

use tidemark_core::{ConnectionId, ExternalId, RecordKind, ScanKind};

use super::{opt_ts, ts};
use crate::error::db_err;
use crate::sql::{Sql, query_builder};
use crate::{Db, PlatformDeletion, StoreError, UnlinkedRecord, repository, with_db};

#[derive(sqlx::FromRow)]
struct UnlinkedRow {
    connection_id: i64,
    kind: String,
    external_id: String,
    sku: Option<String>,
    title: String,
    platform_updated_at: Option<i64>,
    first_seen: i64,
    last_seen: i64,
}

impl UnlinkedRow {
    fn into_record(self) -> Result<UnlinkedRecord, StoreError> {
        let kind = ScanKind::parse(&self.kind).ok_or_else(|| {
            StoreError::corrupt(
                "unlinked_records",
                format!("{}/{}", self.connection_id, self.external_id),
                format!("unknown kind {:?}", self.kind),
            )
        })?;
        Ok(UnlinkedRecord {
            connection: ConnectionId(self.connection_id),
            kind,
            external_id: ExternalId(self.external_id),
            sku: self.sku,
            title: self.title,
            platform_updated_at: opt_ts(self.platform_updated_at),
            first_seen: ts(self.first_seen),
            last_seen: ts(self.last_seen),
        })
    }
}

impl Db<'_> {
    /// Lists (or refreshes) a record the connection does not absorb.
    pub(crate) async fn put_unlinked(&mut self, record: &UnlinkedRecord) -> Result<(), StoreError> {
        with_db!(self, |c| sqlx::query(
            "INSERT INTO unlinked_records (connection_id, kind, external_id, sku, title, \
             platform_updated_at, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (connection_id, kind, external_id) DO UPDATE SET sku = excluded.sku, \
             title = excluded.title, platform_updated_at = excluded.platform_updated_at, \
             last_seen = excluded.last_seen"
        )
        .bind(record.connection.0)
        .bind(record.kind.as_str())
        .bind(record.external_id.as_str())
        .bind(record.sku.as_deref())
        .bind(&record.title)
        .bind(record.platform_updated_at.map(|t| t.0))
        .bind(record.first_seen.0)
        .bind(record.last_seen.0)
        .execute(&mut *c)
        .await
        .map(drop))
        .map_err(db_err("unlinked_records", "put"))
    }

    /// Takes a record off the unlinked list (it was bound, or is gone from the platform).
    pub(crate) async fn remove_unlinked(
        &mut self,
        connection: ConnectionId,
        kind: ScanKind,
        external_id: &ExternalId,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "DELETE FROM unlinked_records WHERE connection_id = $1 AND kind = $2 \
             AND external_id = $3"
        )
        .bind(connection.0)
        .bind(kind.as_str())
        .bind(external_id.as_str())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("unlinked_records", "remove"))?;
        Ok(done > 0)
    }

    /// A connection's unlinked records of one kind, in external-id order after `after`.
    pub(crate) async fn list_unlinked(
        &mut self,
        connection: ConnectionId,
        kind: ScanKind,
        after: Option<&ExternalId>,
        limit: i64,
    ) -> Result<Vec<UnlinkedRecord>, StoreError> {
        let mut sql = Sql::new(
            "SELECT connection_id, kind, external_id, sku, title, platform_updated_at, \
             first_seen, last_seen FROM unlinked_records WHERE connection_id = ",
        );
        sql.bind_i64(connection.0)
            .push(" AND kind = ")
            .bind_text(kind.as_str());
        if let Some(after) = after {
            sql.push(" AND external_id > ").bind_text(after.as_str());
        }
        sql.push(" ORDER BY external_id LIMIT ")
            .bind_i64(super::clamp_limit(limit));
        let rows: Vec<UnlinkedRow> = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(db_err("unlinked_records", "list"))?;
        rows.into_iter().map(UnlinkedRow::into_record).collect()
    }

    /// Remembers that the merchant deleted this record on the connection's platform.
    pub(crate) async fn record_platform_deletion(
        &mut self,
        deletion: &PlatformDeletion,
    ) -> Result<(), StoreError> {
        with_db!(self, |c| sqlx::query(
            "INSERT INTO platform_deletions (connection_id, kind, internal_id, external_id, \
             deleted_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connection_id, kind, \
             internal_id) DO UPDATE SET external_id = excluded.external_id, \
             deleted_at = excluded.deleted_at"
        )
        .bind(deletion.connection.0)
        .bind(deletion.kind.as_str())
        .bind(deletion.internal_id)
        .bind(deletion.external_id.as_str())
        .bind(deletion.deleted_at.0)
        .execute(&mut *c)
        .await
        .map(drop))
        .map_err(db_err("platform_deletions", "record"))
    }

    /// The connections on whose platform this record was deleted.
    pub(crate) async fn platform_deletions_of(
        &mut self,
        kind: RecordKind,
        internal_id: i64,
    ) -> Result<Vec<ConnectionId>, StoreError> {
        let ids: Vec<i64> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT connection_id FROM platform_deletions WHERE kind = $1 AND internal_id = $2 \
             ORDER BY connection_id"
        )
        .bind(kind.as_str())
        .bind(internal_id)
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("platform_deletions", "get"))?;
        Ok(ids.into_iter().map(ConnectionId).collect())
    }

    /// Forgets a platform deletion (the record was created there again on purpose).
    pub(crate) async fn clear_platform_deletion(
        &mut self,
        connection: ConnectionId,
        kind: RecordKind,
        internal_id: i64,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "DELETE FROM platform_deletions WHERE connection_id = $1 AND kind = $2 \
             AND internal_id = $3"
        )
        .bind(connection.0)
        .bind(kind.as_str())
        .bind(internal_id)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("platform_deletions", "clear"))?;
        Ok(done > 0)
    }
}

repository! {
    /// Worker-only. Lists (or refreshes) a record the connection does not absorb.
    write fn put_unlinked(record: &UnlinkedRecord) -> ();
    /// Worker-only.
    write fn remove_unlinked(connection: ConnectionId, kind: ScanKind, external_id: &ExternalId) -> bool;
    /// Worker-only (the API checks the connection's account first).
    read fn list_unlinked(connection: ConnectionId, kind: ScanKind, after: Option<&ExternalId>, limit: i64) -> Vec<UnlinkedRecord>;
    /// Worker-only.
    write fn record_platform_deletion(deletion: &PlatformDeletion) -> ();
    /// Worker-only.
    read fn platform_deletions_of(kind: RecordKind, internal_id: i64) -> Vec<ConnectionId>;
    /// Worker-only.
    write fn clear_platform_deletion(connection: ConnectionId, kind: RecordKind, internal_id: i64) -> bool;
}
