//! tidemark-store: the repositories of tidemark over SQLite and PostgreSQL.
//!
//! Boundary: the only crate that writes SQL. Every statement binds its values; none is
//! spliced into SQL text. Every method an API user can reach takes an `account` and answers
//! `NotFound` (or nothing) for another account's ids. Methods without one are worker-only
//! (the scheduler, the reconciler, a job holding the connection's lease) and say so in their
//! docs ("Worker-only", or "by id alone"); the API must never call them with ids a user sent.
//!
//! One [`Store`] wraps either pool. Each repository method is written once, on the
//! crate-private [`Db`] handle, with [`with_db!`] expanding its body for each dialect, and is
//! published twice by [`repository!`]: on [`Store`] (its own connection or transaction) and on
//! [`Tx`] (so the engine can compose several calls into one atomic unit, e.g. absorbing a page).
//!
//! Time is passed in (`now: Timestamp`) like everywhere in tidemark; the store reads no clock.
//!
//! Logging: `tracing` events at debug level with structured fields (ids, kinds, revisions;
//! never tokens, credentials or record content) where the store resolves a conflict: stale
//! updates refused, pending changes merged, an insert completed while a change merged into
//! it, a bind race lost to an identical binding, and stale job runs requeued or failed.
//!
//! # Schema (`migrations/sqlite`, `migrations/postgres`, kept parallel)
//!
//! Portable column types only: BIGINT ids and epoch-millisecond timestamps, TEXT for
//! decimals, hashes and JSON, BLOB/BYTEA for credentials ciphertext.
//!
//! - `accounts`, `api_tokens` (SHA-256 of the token only), `connections` (unique name per
//!   account; settings JSON; credentials ciphertext), `clocks` (connection, scan kind → time),
//!   `scan_generations` (connection, kind → current full-scan generation and when it
//!   started). Mark and sweep: a snapshot's `seen_generation` only ever increases, and a
//!   binding created at or after its generation started is never a sweep candidate.
//! - `products` (content JSON, content hash, field times, plus the filterable product
//!   columns and the indexed match keys `sku_key` (core's `normalize::sku_key`) and
//!   `barcode_key` that coincidence detection compares, also on variants), `product_variants` and `product_images` (the filterable variant and image
//!   columns; UNIQUE (product, sku) and (product, image hash)), `orders`. Products and
//!   orders carry a `revision`: reads return it ([`Versioned`]), updates name the revision
//!   they were computed from and are refused with `Conflict { kind: StaleRecord }` when
//!   another writer got there first (optimistic concurrency; the engine re-reads and
//!   re-applies).
//! - `bindings`: UNIQUE (connection, kind, external id) and UNIQUE (connection, kind,
//!   internal id, internal key); `snapshots` keyed by the binding (cascade on unbind), with
//!   the platform status and category for the set filters.
//! - `pending_changes`: partial unique indexes keep one insert-or-update row per (connection,
//!   record) and one image-delete row per image; `revision` guards removal. An insert is
//!   settled with `complete_pending_insert` (an insert merged while its create was in flight
//!   becomes an update), and an insert for a record already bound is queued as an update;
//!   see the `pending` module docs for the send protocol.
//! - `issues`: a partial unique index keeps one open issue per (connection, record, code).
//! - `job_runs`, `leases` (connection, kind → owner, expiry), `cooldowns`.
//! - `schedules` (connection → fetch interval, full-scan cron text, next due times): the
//!   scheduler claims a due scan by moving its due time with a compare-and-set, so of several
//!   daemons exactly one fires it.
//! - `webhook_deliveries` (connection, platform delivery id → when): deliveries acted on,
//!   so a repeat causes no second fetch; pruned after a week.
//! - `unlinked_records` (records a connection saw but did not absorb, for the merchant to
//!   link or import) and `platform_deletions` (records a merchant deleted on one platform,
//!   which "clone new records" must not create there again).
//!
//! Multi-row writes run inside a savepoint, so they are all-or-nothing even inside a
//! caller's [`Tx`], and a PostgreSQL transaction stays usable after one fails.
//! Single-statement writes that can hit a unique constraint (an order number, a connection
//! name, a binding, a queued change) use `ON CONFLICT … DO NOTHING` or a savepoint, so a
//! `Conflict` never leaves a caller's PostgreSQL transaction aborted.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};

mod error;
mod repo;
mod sql;
mod types;

pub use error::{ConflictKind, StoreError};
pub use types::*;

/// Dialect-dispatch: runs `$body` with `$c` bound to the dialect's connection
/// (`&mut SqliteConnection` or `&mut PgConnection`) and the type alias `DB` naming the
/// database, so one body serves both.
macro_rules! with_db {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            $crate::Db::Sqlite($c) => {
                #[allow(unused_imports)]
                use ::sqlx::Sqlite as DB;
                let $c: &mut ::sqlx::SqliteConnection = &mut **$c;
                $body
            }
            $crate::Db::Postgres($c) => {
                #[allow(unused_imports)]
                use ::sqlx::Postgres as DB;
                let $c: &mut ::sqlx::PgConnection = &mut **$c;
                $body
            }
        }
    };
}
pub(crate) use with_db;

/// The SQLite and PostgreSQL migrations, embedded in the binary.
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database: a pool of SQLite or PostgreSQL connections. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A borrowed connection of either dialect; repository methods are written on it.
pub(crate) enum Db<'c> {
    Sqlite(&'c mut sqlx::SqliteConnection),
    Postgres(&'c mut sqlx::PgConnection),
}

impl Db<'_> {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }
}

/// A pooled connection outside a transaction (for reads).
enum PooledConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl PooledConn {
    fn db(&mut self) -> Db<'_> {
        match self {
            PooledConn::Sqlite(c) => Db::Sqlite(&mut *c),
            PooledConn::Postgres(c) => Db::Postgres(&mut *c),
        }
    }
}

/// A transaction: the same repository methods as [`Store`], applied atomically on
/// [`Tx::commit`]. Dropped without commit, it rolls back.
///
/// On SQLite a transaction begins `IMMEDIATE` (it takes the write lock at once), so two
/// writers queue behind the busy timeout instead of failing on a lock upgrade.
pub struct Tx {
    inner: TxInner,
}

enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn db(&mut self) -> Db<'_> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => Db::Sqlite(&mut *tx),
            TxInner::Postgres(tx) => Db::Postgres(&mut *tx),
        }
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        let result = match self.inner {
            TxInner::Sqlite(tx) => tx.commit().await,
            TxInner::Postgres(tx) => tx.commit().await,
        };
        result.map_err(error::db_err("transaction", "commit"))
    }

    /// Opens a savepoint inside this transaction, so that one record of a page can fail
    /// (and be rolled back alone) without losing the rest. Close it with
    /// [`Tx::end_savepoint`].
    pub async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.db().savepoint().await
    }

    /// Closes the savepoint of [`Tx::savepoint`]: released when `result` is `Ok`, rolled
    /// back (everything since the savepoint undone) otherwise; `result` is passed through.
    pub async fn end_savepoint<T>(
        &mut self,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.db().end_savepoint(result).await
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        let result = match self.inner {
            TxInner::Sqlite(tx) => tx.rollback().await,
            TxInner::Postgres(tx) => tx.rollback().await,
        };
        result.map_err(error::db_err("transaction", "rollback"))
    }
}

impl Store {
    /// Connects to `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://…`.
    ///
    /// SQLite files run in WAL mode with foreign keys on, `synchronous=NORMAL` and a busy
    /// timeout; an in-memory SQLite database is a single connection (each connection would
    /// otherwise see its own empty database).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: redact(url),
            reason,
        };
        if url.starts_with("sqlite:") {
            let mut options = SqliteConnectOptions::from_str(url)
                .map_err(|e| invalid(e.to_string()))?
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            if !url.contains("mode=") {
                // A plain `sqlite://path` creates the file, as `?mode=rwc` does.
                options = options.create_if_missing(true);
            }
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let (options, max) = if in_memory {
                (options, 1)
            } else {
                (
                    options
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal),
                    8,
                )
            };
            let pool = SqlitePoolOptions::new()
                .max_connections(max)
                .min_connections(if in_memory { 1 } else { 0 })
                .idle_timeout(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(600))
                })
                .max_lifetime(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(1800))
                })
                .connect_with(options)
                .await
                .map_err(error::db_err("connection", "connect"))?;
            Ok(Self::from_sqlite_pool(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
            Self::connect_postgres(options, 16).await
        } else {
            Err(invalid(
                "expected sqlite://…, sqlite::memory: or postgres://…".to_owned(),
            ))
        }
    }

    /// Connects to PostgreSQL with explicit options (e.g. a `search_path` for tests).
    pub async fn connect_postgres(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        // A merchant's first import grows the tables from empty within one run. PostgreSQL
        // caches a generic plan for a prepared statement after five executions, planned for
        // the tables as they were then (a sequential scan of an empty table), and matching
        // each new product by SKU then scans the whole catalogue: quadratic. Planning every
        // execution costs a fraction of a millisecond and follows the data.
        let options = options.options([("plan_cache_mode", "force_custom_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(error::db_err("connection", "connect"))?;
        Ok(Self::from_pg_pool(pool))
    }

    pub fn from_sqlite_pool(pool: SqlitePool) -> Self {
        Self {
            pool: Pool::Sqlite(pool),
        }
    }

    pub fn from_pg_pool(pool: PgPool) -> Self {
        Self {
            pool: Pool::Postgres(pool),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Closes every connection of the pool.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.acquire().await?;
        with_db!(&mut conn.db(), |c| sqlx::query("SELECT 1")
            .execute(&mut *c)
            .await
            .map(drop))
        .map_err(error::db_err("connection", "ping"))
    }

    /// Begins a transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pool {
            Pool::Sqlite(pool) => TxInner::Sqlite(
                pool.begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(error::db_err("transaction", "begin"))?,
            ),
            Pool::Postgres(pool) => TxInner::Postgres(
                pool.begin()
                    .await
                    .map_err(error::db_err("transaction", "begin"))?,
            ),
        };
        Ok(Tx { inner })
    }

    async fn acquire(&self) -> Result<PooledConn, StoreError> {
        let conn = match &self.pool {
            Pool::Sqlite(pool) => PooledConn::Sqlite(
                pool.acquire()
                    .await
                    .map_err(error::db_err("connection", "acquire"))?,
            ),
            Pool::Postgres(pool) => PooledConn::Postgres(
                pool.acquire()
                    .await
                    .map_err(error::db_err("connection", "acquire"))?,
            ),
        };
        Ok(conn)
    }
}

/// Hides a password in a database URL before it goes into an error message.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Publishes repository methods of [`Db`] on [`Tx`] and on [`Store`]. `read` methods run on a
/// pooled connection, `write` methods in their own transaction.
macro_rules! repository {
    ($(
        $(#[$meta:meta])*
        $mode:ident fn $name:ident ( $( $arg:ident : $ty:ty ),* $(,)? ) -> $ret:ty;
    )*) => {
        impl $crate::Tx {
            $(
                $(#[$meta])*
                pub async fn $name(&mut self, $( $arg: $ty ),*) -> Result<$ret, $crate::StoreError> {
                    self.db().$name($( $arg ),*).await
                }
            )*
        }

        impl $crate::Store {
            $(
                $(#[$meta])*
                pub async fn $name(&self, $( $arg: $ty ),*) -> Result<$ret, $crate::StoreError> {
                    $crate::repository!(@run $mode self $name ($( $arg ),*))
                }
            )*
        }
    };
    (@run read $self:ident $name:ident ($( $arg:ident ),*)) => {{
        let mut conn = $self.acquire().await?;
        conn.db().$name($( $arg ),*).await
    }};
    (@run write $self:ident $name:ident ($( $arg:ident ),*)) => {{
        let mut tx = $self.begin().await?;
        let out = tx.db().$name($( $arg ),*).await?;
        tx.commit().await?;
        Ok(out)
    }};
}
pub(crate) use repository;

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://user:secret@host/db"),
            "postgres://user:***@host/db"
        );
        assert_eq!(redact("postgres://user@host/db"), "postgres://user@host/db");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }
}
