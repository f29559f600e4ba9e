//! Connections (scoped by account), their credentials as opaque ciphertext, and clocks.

use std::collections::BTreeMap;

use tidemark_core::{
    AccountId, Connection, ConnectionId, ConnectionSettings, PlatformKind, ScanKind, Timestamp,
};

use super::{from_json, opt_ts, to_json, ts};
use crate::error::db_err;
use crate::sql::{Arg, Sql, query_builder};
use crate::{ConnectionPatch, Db, NewConnection, StoreError, repository, with_db};

const COLUMNS: &str = "id, account_id, platform, name, settings, platform_settings, paused, \
                       last_fetch_at, last_send_at, created_at";

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: i64,
    account_id: i64,
    platform: String,
    name: String,
    settings: String,
    platform_settings: String,
    paused: bool,
    last_fetch_at: Option<i64>,
    last_send_at: Option<i64>,
    created_at: i64,
}

impl ConnectionRow {
    fn into_connection(
        self,
        clocks: BTreeMap<ScanKind, Timestamp>,
    ) -> Result<Connection, StoreError> {
        let row = format!("id {}", self.id);
        let platform = PlatformKind::parse(&self.platform).ok_or_else(|| {
            StoreError::corrupt(
                "connections",
                &row,
                format!("unknown platform {:?}", self.platform),
            )
        })?;
        let settings: ConnectionSettings =
            from_json("connections", &row, "settings", &self.settings)?;
        let platform_settings = from_json(
            "connections",
            &row,
            "platform_settings",
            &self.platform_settings,
        )?;
        Ok(Connection {
            id: ConnectionId(self.id),
            account: AccountId(self.account_id),
            platform,
            name: self.name,
            settings,
            platform_settings,
            paused: self.paused,
            clocks,
            last_fetch_at: opt_ts(self.last_fetch_at),
            last_send_at: opt_ts(self.last_send_at),
            created_at: ts(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
struct ClockRow {
    connection_id: i64,
    scan_kind: String,
    clock_at: i64,
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict {
        table: "connections",
        kind: crate::ConflictKind::Unique {
            detail: format!("a connection named {name:?} already exists in this account"),
        },
    }
}

impl Db<'_> {
    pub(crate) async fn create_connection(
        &mut self,
        new: &NewConnection,
        now: Timestamp,
    ) -> Result<Connection, StoreError> {
        let settings = to_json("create_connection", &new.settings)?;
        let platform_settings = to_json("create_connection", &new.platform_settings)?;
        // ON CONFLICT DO NOTHING: a taken name is answered without a database error, so a
        // caller's PostgreSQL transaction stays usable.
        let id: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
            "INSERT INTO connections (account_id, platform, name, settings, platform_settings, \
             credentials, paused, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $7) \
             ON CONFLICT (account_id, name) DO NOTHING RETURNING id"
        )
        .bind(new.account.0)
        .bind(new.platform.as_str())
        .bind(&new.name)
        .bind(&settings)
        .bind(&platform_settings)
        .bind(new.credentials.as_deref())
        .bind(now.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("connections", "create"))?;
        let id = id.ok_or_else(|| name_taken(&new.name))?;
        Ok(Connection {
            id: ConnectionId(id),
            account: new.account,
            platform: new.platform,
            name: new.name.clone(),
            settings: new.settings.clone(),
            platform_settings: new.platform_settings.clone(),
            paused: false,
            clocks: BTreeMap::new(),
            last_fetch_at: None,
            last_send_at: None,
            created_at: now,
        })
    }

    async fn connection_rows(&mut self, sql: Sql) -> Result<Vec<Connection>, StoreError> {
        let rows: Vec<ConnectionRow> = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(db_err("connections", "get"))?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut clock_sql = Sql::new(
            "SELECT connection_id, scan_kind, clock_at FROM clocks WHERE connection_id IN ",
        );
        clock_sql.bind_list(rows.iter().map(|r| Arg::I64(Some(r.id))));
        let clock_rows: Vec<ClockRow> = with_db!(self, |c| {
            let mut qb = query_builder!(clock_sql);
            qb.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(db_err("clocks", "get"))?;
        let mut clocks: BTreeMap<i64, BTreeMap<ScanKind, Timestamp>> = BTreeMap::new();
        for clock in clock_rows {
            let kind = ScanKind::parse(&clock.scan_kind).ok_or_else(|| {
                StoreError::corrupt(
                    "clocks",
                    format!("connection {}", clock.connection_id),
                    format!("unknown scan kind {:?}", clock.scan_kind),
                )
            })?;
            clocks
                .entry(clock.connection_id)
                .or_default()
                .insert(kind, ts(clock.clock_at));
        }
        rows.into_iter()
            .map(|row| {
                let own = clocks.remove(&row.id).unwrap_or_default();
                row.into_connection(own)
            })
            .collect()
    }

    pub(crate) async fn get_connection(
        &mut self,
        account: AccountId,
        id: ConnectionId,
    ) -> Result<Option<Connection>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM connections WHERE id = ")
            .bind_i64(id.0)
            .push(" AND account_id = ")
            .bind_i64(account.0);
        Ok(self.connection_rows(sql).await?.into_iter().next())
    }

    pub(crate) async fn load_connection(
        &mut self,
        id: ConnectionId,
    ) -> Result<Option<Connection>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM connections WHERE id = ")
            .bind_i64(id.0);
        Ok(self.connection_rows(sql).await?.into_iter().next())
    }

    pub(crate) async fn list_connections(
        &mut self,
        account: AccountId,
    ) -> Result<Vec<Connection>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM connections WHERE account_id = ")
            .bind_i64(account.0)
            .push(" ORDER BY id");
        self.connection_rows(sql).await
    }

    /// Every connection of every account, for the scheduler and reconciler.
    pub(crate) async fn list_all_connections(&mut self) -> Result<Vec<Connection>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS).push(" FROM connections ORDER BY id");
        self.connection_rows(sql).await
    }

    pub(crate) async fn update_connection(
        &mut self,
        account: AccountId,
        id: ConnectionId,
        patch: &ConnectionPatch,
        now: Timestamp,
    ) -> Result<Connection, StoreError> {
        let settings = patch
            .settings
            .as_ref()
            .map(|s| to_json("update_connection", s))
            .transpose()?;
        let platform_settings = patch
            .platform_settings
            .as_ref()
            .map(|s| to_json("update_connection", s))
            .transpose()?;
        // A rename can hit UNIQUE (account, name): run it in a savepoint so the conflict
        // leaves a caller's transaction usable.
        self.savepoint().await?;
        let result = with_db!(self, |c| sqlx::query(
            "UPDATE connections SET name = COALESCE($3, name), \
             settings = COALESCE($4, settings), \
             platform_settings = COALESCE($5, platform_settings), updated_at = $6 \
             WHERE id = $1 AND account_id = $2"
        )
        .bind(id.0)
        .bind(account.0)
        .bind(patch.name.as_deref())
        .bind(settings.as_deref())
        .bind(platform_settings.as_deref())
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("connections", "update"))
        .map_err(|e| match e {
            StoreError::Conflict { .. } => name_taken(patch.name.as_deref().unwrap_or_default()),
            other => other,
        });
        let done = self.end_savepoint(result).await?;
        if done == 0 {
            return Err(StoreError::not_found("connection", id));
        }
        self.get_connection(account, id)
            .await?
            .ok_or_else(|| StoreError::not_found("connection", id))
    }

    pub(crate) async fn set_connection_paused(
        &mut self,
        account: AccountId,
        id: ConnectionId,
        paused: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| {
            sqlx::query(
            "UPDATE connections SET paused = $3, updated_at = $4 WHERE id = $1 AND account_id = $2"
        )
        .bind(id.0)
        .bind(account.0)
        .bind(paused)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected())
        })
        .map_err(db_err("connections", "set paused"))?;
        Ok(done > 0)
    }

    pub(crate) async fn set_connection_credentials(
        &mut self,
        account: AccountId,
        id: ConnectionId,
        ciphertext: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "UPDATE connections SET credentials = $3, updated_at = $4 \
             WHERE id = $1 AND account_id = $2"
        )
        .bind(id.0)
        .bind(account.0)
        .bind(ciphertext)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("connections", "set credentials"))?;
        Ok(done > 0)
    }

    /// The credentials ciphertext of a connection (`Ok(None)` when none are set);
    /// `NotFound` when the connection does not exist.
    pub(crate) async fn connection_credentials(
        &mut self,
        id: ConnectionId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<Option<Vec<u8>>> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT credentials FROM connections WHERE id = $1"
        )
        .bind(id.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("connections", "get credentials"))?;
        row.ok_or_else(|| StoreError::not_found("connection", id))
    }

    pub(crate) async fn delete_connection(
        &mut self,
        account: AccountId,
        id: ConnectionId,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "DELETE FROM connections WHERE id = $1 AND account_id = $2"
        )
        .bind(id.0)
        .bind(account.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("connections", "delete"))?;
        Ok(done > 0)
    }

    pub(crate) async fn record_fetch(
        &mut self,
        id: ConnectionId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        with_db!(self, |c| sqlx::query(
            "UPDATE connections SET last_fetch_at = $2 WHERE id = $1"
        )
        .bind(id.0)
        .bind(at.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("connections", "record fetch"))?;
        Ok(())
    }

    pub(crate) async fn record_send(
        &mut self,
        id: ConnectionId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        with_db!(self, |c| sqlx::query(
            "UPDATE connections SET last_send_at = $2 WHERE id = $1"
        )
        .bind(id.0)
        .bind(at.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("connections", "record send"))?;
        Ok(())
    }

    /// Resolves a connection name typed by a user within the account: an exact match first,
    /// else the single case-insensitive match.
    pub(crate) async fn resolve_connection_name(
        &mut self,
        account: AccountId,
        name: &str,
    ) -> Result<ConnectionId, StoreError> {
        let rows: Vec<(i64, String)> = with_db!(self, |c| sqlx::query_as(
            "SELECT id, name FROM connections WHERE account_id = $1 ORDER BY id"
        )
        .bind(account.0)
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("connections", "resolve name"))?;
        let wanted = name.trim();
        if let Some((id, _)) = rows.iter().find(|(_, n)| n == wanted) {
            return Ok(ConnectionId(*id));
        }
        let folded = wanted.to_lowercase();
        let mut matches = rows.iter().filter(|(_, n)| n.to_lowercase() == folded);
        match (matches.next(), matches.next()) {
            (Some((id, _)), None) => Ok(ConnectionId(*id)),
            _ => Err(StoreError::UnknownConnection {
                name: name.to_owned(),
            }),
        }
    }

    pub(crate) async fn get_clocks(
        &mut self,
        connection: ConnectionId,
    ) -> Result<BTreeMap<ScanKind, Timestamp>, StoreError> {
        let rows: Vec<ClockRow> = with_db!(self, |c| sqlx::query_as(
            "SELECT connection_id, scan_kind, clock_at FROM clocks WHERE connection_id = $1"
        )
        .bind(connection.0)
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("clocks", "get"))?;
        rows.into_iter()
            .map(|row| {
                let kind = ScanKind::parse(&row.scan_kind).ok_or_else(|| {
                    StoreError::corrupt(
                        "clocks",
                        format!("connection {}", row.connection_id),
                        format!("unknown scan kind {:?}", row.scan_kind),
                    )
                })?;
                Ok((kind, ts(row.clock_at)))
            })
            .collect()
    }

    pub(crate) async fn set_clock(
        &mut self,
        connection: ConnectionId,
        kind: ScanKind,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        with_db!(self, |c| sqlx::query(
            "INSERT INTO clocks (connection_id, scan_kind, clock_at) VALUES ($1, $2, $3) \
             ON CONFLICT (connection_id, scan_kind) DO UPDATE SET clock_at = excluded.clock_at"
        )
        .bind(connection.0)
        .bind(kind.as_str())
        .bind(at.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("clocks", "set"))?;
        Ok(())
    }

    pub(crate) async fn reset_clocks(
        &mut self,
        account: AccountId,
        connection: ConnectionId,
        kinds: &[ScanKind],
    ) -> Result<(), StoreError> {
        self.check_connection(account, connection).await?;
        for kind in kinds {
            with_db!(self, |c| sqlx::query(
                "DELETE FROM clocks WHERE connection_id = $1 AND scan_kind = $2"
            )
            .bind(connection.0)
            .bind(kind.as_str())
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
            .map_err(db_err("clocks", "reset"))?;
        }
        Ok(())
    }
}

repository! {
    /// Creates a connection; a name already used in the account is a `Conflict`.
    write fn create_connection(new: &NewConnection, now: Timestamp) -> Connection;
    /// A connection of the account, with its clocks.
    read fn get_connection(account: AccountId, id: ConnectionId) -> Option<Connection>;
    /// A connection by id alone, for workers acting on a job run (never for API requests).
    read fn load_connection(id: ConnectionId) -> Option<Connection>;
    read fn list_connections(account: AccountId) -> Vec<Connection>;
    /// Worker-only (the scheduler and reconciler): every connection of every account.
    read fn list_all_connections() -> Vec<Connection>;
    write fn update_connection(
        account: AccountId,
        id: ConnectionId,
        patch: &ConnectionPatch,
        now: Timestamp,
    ) -> Connection;
    write fn set_connection_paused(
        account: AccountId,
        id: ConnectionId,
        paused: bool,
        now: Timestamp,
    ) -> bool;
    /// Stores the credentials ciphertext (encryption happens outside the store).
    write fn set_connection_credentials(
        account: AccountId,
        id: ConnectionId,
        ciphertext: Option<&[u8]>,
        now: Timestamp,
    ) -> bool;
    /// Worker-only (a connector about to call its platform): the ciphertext, by id alone.
    read fn connection_credentials(id: ConnectionId) -> Option<Vec<u8>>;
    /// Deletes a connection and everything that hangs off it (bindings, snapshots, pending
    /// changes, issues, job runs, clocks, cooldowns). Orders placed there are kept.
    write fn delete_connection(account: AccountId, id: ConnectionId) -> bool;
    /// Worker-only: records the end of a fetch.
    write fn record_fetch(id: ConnectionId, at: Timestamp) -> ();
    /// Worker-only: records the end of a send.
    write fn record_send(id: ConnectionId, at: Timestamp) -> ();
    read fn resolve_connection_name(account: AccountId, name: &str) -> ConnectionId;
    /// Worker-only (API users see clocks on [`crate::Store::get_connection`]).
    read fn get_clocks(connection: ConnectionId) -> BTreeMap<ScanKind, Timestamp>;
    /// Worker-only: moves the clock (the caller passes the largest platform timestamp a
    /// completed scan saw).
    write fn set_clock(connection: ConnectionId, kind: ScanKind, at: Timestamp) -> ();
    /// Forgets the clocks so the next fetch of those kinds is a full scan ("reset clocks");
    /// `NotFound` when the connection is not the account's.
    write fn reset_clocks(account: AccountId, connection: ConnectionId, kinds: &[ScanKind]) -> ();
}
