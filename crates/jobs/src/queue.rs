//! The apalis queue: it carries triggers, never truth (DESIGN §2). A message is a job run's id
//! and nothing else; a lost message is re-sent by the reconciler, a repeated one is ignored
//! by the worker's compare-and-set on the run.
//!
//! Two backends, chosen by URL: `sqlite` (a `queue.db` file beside the store, for the embedded
//! daemon) and `redis://…` (standalone Redis or Sentinel; apalis-redis 1.0 cannot use Redis
//! Cluster). Both are tuned for apalis 1.0's measured defects (`docs/ARCHITECTURE.md`,
//! "Queue"): the SQLite index that makes acks scan the worker's whole history is dropped and
//! `synchronous` is `NORMAL`, not `OFF`; on Redis due messages are promoted in chunks so a
//! backlog never reaches the Lua `unpack` limit that kills a worker, and finished entries are
//! pruned by our own bounded scripts.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::{ConnectionManager, RedisStorage};
use apalis_sqlite::SqliteStorage;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tidemark_core::JobRunId;

use crate::JobsError;

/// The one message the queue carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMessage {
    pub run: i64,
}

/// Where the queue lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueSpec {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A Redis URL (`redis://`, `rediss://`, `redis+unix://`).
    Redis(String),
}

impl QueueSpec {
    /// `sqlite` (the file `queue.db` in `data_dir`), `sqlite://PATH`, or a Redis URL.
    pub fn parse(url: &str, data_dir: &std::path::Path) -> Result<Self, JobsError> {
        let bad = |reason: &str| JobsError::QueueUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url == "sqlite" {
            return Ok(Self::Sqlite(data_dir.join("queue.db")));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(bad("names no file"));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("redis+cluster") || url.starts_with("redis-cluster") {
            return Err(bad(
                "Redis Cluster is not supported (apalis-redis 1.0 cannot run on it); use a \
                 standalone Redis or Sentinel",
            ));
        }
        if url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("redis+unix://")
        {
            return Ok(Self::Redis(url.to_owned()));
        }
        Err(bad(
            "expected `sqlite`, `sqlite://PATH` or `redis://HOST:PORT/DB`",
        ))
    }
}

/// A connected queue. Cheap to clone.
#[derive(Clone)]
pub enum Queue {
    Sqlite {
        storage: SqliteStorage<RunMessage>,
        pool: sqlx::SqlitePool,
        name: String,
    },
    Redis {
        storage: RedisStorage<RunMessage>,
        conn: ConnectionManager,
        config: apalis_redis::Config,
    },
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite { .. } => "Queue::Sqlite",
            Self::Redis { .. } => "Queue::Redis",
        })
    }
}

/// Messages pushed or promoted per round trip: far below the ~8,000 ids at which Redis's Lua
/// `unpack` fails.
const CHUNK: usize = 500;

/// Moves up to ARGV[2] due ids from the scheduled set to the active list: apalis's fetch
/// promotes every due id in one `unpack`, which fails (and kills the worker) past ~8,000.
const PROMOTE: &str = r#"
local ids = redis.call('zrangebyscore', KEYS[1], 0, ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
  redis.call('rpush', KEYS[2], unpack(ids))
  redis.call('zrem', KEYS[1], unpack(ids))
  redis.call('del', KEYS[3])
  redis.call('lpush', KEYS[3], 1)
end
return #ids
"#;

/// Deletes up to ARGV[1] finished entries (payload and metadata); apalis's own vacuum walks
/// the whole payload hash in one script and never trims the done set.
const PRUNE: &str = r#"
local ids = redis.call('spop', KEYS[1], tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  redis.call('hdel', KEYS[2], id)
  redis.call('del', KEYS[3] .. ':' .. id)
end
return #ids
"#;

impl Queue {
    /// Connects (and on SQLite creates and migrates) the queue named `name`.
    pub async fn connect(
        spec: &QueueSpec,
        name: &str,
        heartbeat: Duration,
    ) -> Result<Self, JobsError> {
        match spec {
            QueueSpec::Sqlite(path) => Self::connect_sqlite(path, name, heartbeat).await,
            QueueSpec::Redis(url) => Self::connect_redis(url, name, heartbeat).await,
        }
    }

    async fn connect_sqlite(
        path: &std::path::Path,
        name: &str,
        heartbeat: Duration,
    ) -> Result<Self, JobsError> {
        let err = |e: sqlx::Error| JobsError::queue("sqlite", format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                JobsError::queue("sqlite", format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        // apalis's setup sets `synchronous = OFF`, which can lose commits on power loss; it
        // runs on a pool of its own that is closed before the real pool opens with `NORMAL`.
        let setup = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(err)?;
        SqliteStorage::setup(&setup)
            .await
            .map_err(|e| JobsError::queue("sqlite", format!("setting up the queue: {e}")))?;
        // Acks are planned through this index and then scan every row the worker ever
        // locked: 150 jobs/s at 20,000 jobs instead of thousands.
        sqlx::query("DROP INDEX IF EXISTS LIdx")
            .execute(&setup)
            .await
            .map_err(err)?;
        setup.close().await;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.synchronous(SqliteSynchronous::Normal))
            .await
            .map_err(err)?;
        let config = apalis_sqlite::Config::default()
            .queue(name)
            .heartbeat_interval(heartbeat)
            .missed_heartbeats(3)
            .batch_size(CHUNK.min(10));
        let storage = SqliteStorage::new(&pool).with_config(config);
        Ok(Self::Sqlite {
            storage,
            pool,
            name: name.to_owned(),
        })
    }

    async fn connect_redis(url: &str, name: &str, heartbeat: Duration) -> Result<Self, JobsError> {
        let err = |e: redis::RedisError| JobsError::queue("redis", e);
        let client = redis::Client::open(url).map_err(err)?;
        // redis-rs's 500 ms default response timeout turns a busy server into fatal worker
        // errors (apalis-redis#76).
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let conn = client
            .get_connection_manager_with_config(manager)
            .await
            .map_err(err)?;
        let config = apalis_redis::Config::default()
            .queue(name)
            .heartbeat_interval(heartbeat)
            // The default (10) leaves a dead worker's messages stranded for five minutes.
            .missed_heartbeats(3)
            .batch_size(10);
        let storage = RedisStorage::new(conn.clone()).with_config(config.clone());
        Ok(Self::Redis {
            storage,
            conn,
            config,
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Redis { .. } => "redis",
        }
    }

    /// Sends `run` to a worker, after `delay` if given (one-second granularity).
    pub async fn push(&self, run: JobRunId, delay: Option<Duration>) -> Result<(), JobsError> {
        let mut task = TaskBuilder::new(RunMessage { run: run.0 });
        if let Some(delay) = delay.filter(|d| !d.is_zero()) {
            task = task.run_after(delay);
        }
        // One attempt: retries are ours (a failed handler would otherwise be re-run at once
        // on SQLite, or 25 times on Redis).
        let task = task.max_attempts(1).build();
        match self {
            Self::Sqlite { storage, .. } => storage
                .clone()
                .push_task(task)
                .await
                .map_err(|e| JobsError::queue("sqlite", e)),
            Self::Redis { storage, .. } => storage
                .clone()
                .push_task(task)
                .await
                .map_err(|e| JobsError::queue("redis", e)),
        }
    }

    /// Sends every run in `runs`, in chunks.
    pub async fn push_many(&self, runs: &[JobRunId]) -> Result<(), JobsError> {
        for chunk in runs.chunks(CHUNK) {
            let messages: Vec<RunMessage> = chunk.iter().map(|r| RunMessage { run: r.0 }).collect();
            match self {
                Self::Sqlite { storage, .. } => storage
                    .clone()
                    .push_bulk(messages)
                    .await
                    .map_err(|e| JobsError::queue("sqlite", e))?,
                Self::Redis { storage, .. } => storage
                    .clone()
                    .push_bulk(messages)
                    .await
                    .map_err(|e| JobsError::queue("redis", e))?,
            }
            // A worker's fetch promotes whatever is due; keep what it can see small.
            self.promote_due().await?;
        }
        Ok(())
    }

    /// Messages waiting to be taken (ready or delayed). Messages a worker holds are not
    /// counted.
    pub async fn backlog(&self) -> Result<u64, JobsError> {
        match self {
            Self::Sqlite { pool, name, .. } => {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM Jobs WHERE job_type = ?1 \
                     AND status IN ('Pending', 'Queued')",
                )
                .bind(name)
                .fetch_one(pool)
                .await
                .map_err(|e| JobsError::queue("sqlite", e))?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
            Self::Redis { conn, config, .. } => {
                let mut conn = conn.clone();
                let (active, scheduled): (u64, u64) = redis::pipe()
                    .llen(config.active_jobs_list())
                    .zcard(config.scheduled_jobs_set())
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| JobsError::queue("redis", e))?;
                Ok(active + scheduled)
            }
        }
    }

    /// Redis: moves due delayed messages to the ready list, `CHUNK` at a time, until none is
    /// left; returns how many. SQLite has nothing to promote.
    pub async fn promote_due(&self) -> Result<u64, JobsError> {
        let Self::Redis { conn, config, .. } = self else {
            return Ok(0);
        };
        let mut conn = conn.clone();
        let script = redis::Script::new(PROMOTE);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut total = 0u64;
        loop {
            let moved: u64 = script
                .key(config.scheduled_jobs_set())
                .key(config.active_jobs_list())
                .key(config.signal_list())
                .arg(now)
                .arg(CHUNK)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| JobsError::queue("redis", e))?;
            total += moved;
            if moved < CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    /// Deletes finished queue entries (older than `older_than` on SQLite; every finished one
    /// on Redis, whose done set keeps no time); returns how many.
    pub async fn prune(&self, older_than: Duration) -> Result<u64, JobsError> {
        match self {
            Self::Sqlite { pool, name, .. } => {
                let before = time::OffsetDateTime::now_utc().unix_timestamp()
                    - i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX / 2);
                let done = sqlx::query(
                    "DELETE FROM Jobs WHERE job_type = ?1 \
                     AND status IN ('Done', 'Failed', 'Killed') AND done_at < ?2",
                )
                .bind(name)
                .bind(before)
                .execute(pool)
                .await
                .map_err(|e| JobsError::queue("sqlite", e))?;
                Ok(done.rows_affected())
            }
            Self::Redis { conn, config, .. } => {
                let mut conn = conn.clone();
                let script = redis::Script::new(PRUNE);
                let mut total = 0u64;
                for set in [config.done_jobs_set(), config.dead_jobs_set()] {
                    loop {
                        let removed: u64 = script
                            .key(&set)
                            .key(config.job_data_hash())
                            .key(config.job_meta_hash())
                            .arg(CHUNK)
                            .invoke_async(&mut conn)
                            .await
                            .map_err(|e| JobsError::queue("redis", e))?;
                        total += removed;
                        if removed < CHUNK as u64 {
                            break;
                        }
                    }
                }
                Ok(total)
            }
        }
    }

    /// Whether the queue answers (readiness).
    pub async fn ping(&self) -> Result<(), JobsError> {
        match self {
            Self::Sqlite { pool, .. } => sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(|e| JobsError::queue("sqlite", e)),
            Self::Redis { conn, .. } => {
                let mut conn = conn.clone();
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| JobsError::queue("redis", e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_parse_or_say_what_is_wrong() {
        let dir = std::path::Path::new("/var/lib/tidemark");
        assert_eq!(
            QueueSpec::parse("sqlite", dir).ok(),
            Some(QueueSpec::Sqlite(dir.join("queue.db")))
        );
        assert_eq!(
            QueueSpec::parse("sqlite:///tmp/q.db?mode=rwc", dir).ok(),
            Some(QueueSpec::Sqlite(PathBuf::from("/tmp/q.db")))
        );
        assert_eq!(
            QueueSpec::parse("redis://127.0.0.1:6379/0", dir).ok(),
            Some(QueueSpec::Redis("redis://127.0.0.1:6379/0".into()))
        );
        let cluster = QueueSpec::parse("redis+cluster://a:1,b:2", dir).err();
        assert!(cluster.is_some_and(|e| e.to_string().contains("Cluster is not supported")));
        assert!(QueueSpec::parse("amqp://x", dir).is_err());
        assert!(QueueSpec::parse("sqlite://", dir).is_err());
    }
}
