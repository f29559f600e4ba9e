//! The daemon's configuration (DESIGN §9): defaults, then a TOML file, then `TIDEMARK_*`
//! environment variables, each overriding the one before. `config/tidemark.toml` works as it
//! is (SQLite store and queue, console on 127.0.0.1:8080); every key has a default, so an empty
//! file does too.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The file read when no path is given, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/tidemark.toml";

const ENV_PREFIX: &str = "TIDEMARK_";

/// Top-level keys (and sections) an environment variable may set. Anything else under the
/// prefix belongs to someone else (`TIDEMARK_LOG`, the test suites' `TIDEMARK_TEST_*`) and is
/// not ours to reject.
const ENV_KEYS: &[&str] = &[
    "data_dir",
    "database_url",
    "queue_url",
    "listen",
    "secret_key",
    "log_format",
    "workers",
    "leases",
    "scheduler",
    "reconciler",
    "retries",
    "images",
    "queue",
];

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the SQLite files and the key file live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; `None` is the SQLite file in `data_dir`
    /// (see [`Config::database_url`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `sqlite` (a file in `data_dir`), `sqlite://PATH` or a Redis URL.
    pub queue_url: String,
    /// Address of the API and the console.
    pub listen: SocketAddr,
    /// The key credentials are sealed under (base64 or hex of 32 bytes); `None` reads or
    /// creates `data_dir/secret.key`. Never serialised, so no dump of the config carries it.
    #[serde(skip_serializing)]
    pub secret_key: Option<SecretText>,
    pub log_format: LogFormat,
    pub workers: WorkersConfig,
    pub leases: LeasesConfig,
    pub scheduler: SchedulerConfig,
    pub reconciler: ReconcilerConfig,
    pub retries: RetriesConfig,
    pub images: ImagesConfig,
    pub queue: QueueConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            queue_url: "sqlite".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            secret_key: None,
            log_format: LogFormat::Human,
            workers: WorkersConfig::default(),
            leases: LeasesConfig::default(),
            scheduler: SchedulerConfig::default(),
            reconciler: ReconcilerConfig::default(),
            retries: RetriesConfig::default(),
            images: ImagesConfig::default(),
            queue: QueueConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// Job runs one worker process runs at once.
    pub concurrency: u32,
    /// How often an idle worker asks the queue for work.
    pub poll_interval_ms: u64,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            poll_interval_ms: 25,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeasesConfig {
    /// How long a connection's lease lasts without renewal.
    pub ttl_ms: u64,
    /// How often a running job renews its leases; under half the TTL, so one late renewal
    /// does not lose the lease.
    pub heartbeat_ms: u64,
}

impl Default for LeasesConfig {
    fn default() -> Self {
        Self {
            ttl_ms: 20_000,
            heartbeat_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    pub tick_ms: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self { tick_ms: 2_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcilerConfig {
    pub interval_ms: u64,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self { interval_ms: 5_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetriesConfig {
    pub max_attempts: u32,
    /// The first retry's delay; it doubles per attempt up to `max_delay_ms`.
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetriesConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay_ms: 5_000,
            max_delay_ms: 300_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// Whether image downloads may reach private and loopback addresses (the simulators
    /// need it; a production daemon should not).
    pub allow_private: bool,
    pub max_bytes: u64,
    pub timeout_ms: u64,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            max_bytes: 20 * 1024 * 1024,
            timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// The queue's name (Redis key prefix, SQLite job type): daemons that share one name
    /// share the work.
    pub name: String,
    /// Finished queue entries older than this are deleted.
    pub prune_after_hours: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            name: "tidemark-runs".to_owned(),
            prune_after_hours: 24,
        }
    }
}

/// A configured secret. Its `Debug` shows no value and it cannot be serialised.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Debug for Config {
    // By hand so URL passwords stay out of logs as the secret key does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("queue_url", &redact_url(&self.queue_url))
            .field("listen", &self.listen)
            .field("secret_key", &self.secret_key)
            .field("log_format", &self.log_format)
            .field("workers", &self.workers)
            .field("leases", &self.leases)
            .field("scheduler", &self.scheduler)
            .field("reconciler", &self.reconciler)
            .field("retries", &self.retries)
            .field("images", &self.images)
            .field("queue", &self.queue)
            .finish()
    }
}

impl Config {
    /// Defaults, then the TOML file, then `TIDEMARK_*` variables (nested keys with `__`:
    /// `TIDEMARK_WORKERS__CONCURRENCY=8`), then [`Config::validate`]. Without `path`,
    /// `config/tidemark.toml` is read if it exists; a path given explicitly must exist.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let file = match path {
            Some(path) => {
                if !path.exists() {
                    bail!("config file {} does not exist", path.display());
                }
                Some(path.to_owned())
            }
            None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.exists()),
        };
        let origin = match &file {
            Some(file) => format!("{} and TIDEMARK_* variables", file.display()),
            None => "defaults and TIDEMARK_* variables".to_owned(),
        };
        let config = Self::figment(file.as_deref())
            .extract::<Config>()
            .map_err(describe)
            .with_context(|| format!("invalid configuration (from {origin})"))?;
        config
            .validate()
            .with_context(|| format!("invalid configuration (from {origin})"))?;
        Ok(config)
    }

    fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            // `file_exact`: `Toml::file` would also search parent directories.
            figment = figment.merge(Toml::file_exact(file));
        }
        figment.merge(Env::prefixed(ENV_PREFIX).split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            ENV_KEYS.iter().any(|known| known.eq_ignore_ascii_case(top))
        }))
    }

    /// The store's URL: `database_url`, or the SQLite file `tidemark.db` in `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("tidemark.db").display()),
        }
    }

    /// The configured secret key text, for `SecretKey::load_or_create`.
    pub fn secret_key(&self) -> Option<&str> {
        self.secret_key.as_ref().map(SecretText::expose)
    }

    /// Checks ranges and URLs; the error lists every problem, each naming its key.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.data_dir.as_os_str().is_empty() {
            problems.push("`data_dir` is empty".to_owned());
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            problems.push(format!(
                "`database_url` must be `sqlite://PATH` or `postgres://…`, got {}",
                describe_scheme(url)
            ));
        }
        if let Err(problem) = check_queue_url(&self.queue_url) {
            problems.push(format!("`queue_url`: {problem}"));
        }

        let mut positive = |key: &str, value: u64| {
            if value == 0 {
                problems.push(format!("`{key}` must be greater than 0"));
            }
        };
        positive("workers.concurrency", self.workers.concurrency.into());
        positive("workers.poll_interval_ms", self.workers.poll_interval_ms);
        positive("leases.ttl_ms", self.leases.ttl_ms);
        positive("leases.heartbeat_ms", self.leases.heartbeat_ms);
        positive("scheduler.tick_ms", self.scheduler.tick_ms);
        positive("reconciler.interval_ms", self.reconciler.interval_ms);
        positive("retries.max_attempts", self.retries.max_attempts.into());
        positive("retries.base_delay_ms", self.retries.base_delay_ms);
        positive("retries.max_delay_ms", self.retries.max_delay_ms);
        positive("images.max_bytes", self.images.max_bytes);
        positive("images.timeout_ms", self.images.timeout_ms);
        positive("queue.prune_after_hours", self.queue.prune_after_hours);
        let name = &self.queue.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            problems.push(format!(
                "`queue.name` ({name:?}) must be letters, digits, `-`, `_` or `.`"
            ));
        }

        if self.leases.heartbeat_ms.saturating_mul(2) >= self.leases.ttl_ms {
            problems.push(format!(
                "`leases.heartbeat_ms` ({}) must be less than half of `leases.ttl_ms` ({}), so \
                 one late renewal does not lose a lease",
                self.leases.heartbeat_ms, self.leases.ttl_ms
            ));
        }
        if self.retries.max_delay_ms < self.retries.base_delay_ms {
            problems.push(format!(
                "`retries.max_delay_ms` ({}) must be at least `retries.base_delay_ms` ({})",
                self.retries.max_delay_ms, self.retries.base_delay_ms
            ));
        }

        match problems.as_slice() {
            [] => Ok(()),
            [one] => Err(anyhow!("{one}")),
            many => Err(anyhow!("{}", many.join("; "))),
        }
    }
}

/// The queue backends the daemon can run on (the jobs crate's `QueueSpec` makes the same
/// choice; this check runs before anything connects).
fn check_queue_url(url: &str) -> std::result::Result<(), String> {
    if url == "sqlite" {
        return Ok(());
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        return match path.split('?').next() {
            Some(file) if !file.is_empty() => Ok(()),
            _ => Err("`sqlite://` names no file".to_owned()),
        };
    }
    let cluster = "Redis Cluster is not supported (apalis-redis 1.0 cannot run on it); use a \
                   standalone Redis (Sentinel failover behind one stable address works)";
    if url.starts_with("redis+cluster") || url.starts_with("redis-cluster") {
        return Err(cluster.to_owned());
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        // Several comma-separated nodes are a cluster's seed list.
        if url.contains(',') {
            return Err(cluster.to_owned());
        }
        return Ok(());
    }
    if url.starts_with("redis+unix://") {
        return Ok(());
    }
    Err(format!(
        "expected `sqlite`, `sqlite://PATH` or `redis://HOST:PORT/DB` (`rediss://` for TLS), \
         got {}",
        describe_scheme(url)
    ))
}

/// Names a URL by its scheme only: the rest may hold a password.
fn describe_scheme(url: &str) -> String {
    match url.split_once(':') {
        Some((scheme, _)) if !scheme.is_empty() => format!("a `{scheme}:` URL"),
        _ if url.is_empty() => "an empty value".to_owned(),
        _ => "a value that is not a URL".to_owned(),
    }
}

/// `scheme://user:password@host/…` → `scheme://user:***@host/…`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// Every figment error on its own line, named by the key and where it came from (the file, or
/// the environment variable itself). A problem with `secret_key` never shows the value
/// (figment's type errors would print a numeric one).
fn describe(error: figment::Error) -> anyhow::Error {
    use figment::Source;
    use figment::error::Kind;

    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let place = match e.metadata.as_ref() {
                Some(md) if md.source.is_none() && md.name.contains("environment variable") => {
                    if e.path.is_empty() {
                        "TIDEMARK_* variables".to_owned()
                    } else {
                        let name: Vec<String> =
                            e.path.iter().map(|k| k.to_ascii_uppercase()).collect();
                        format!("{ENV_PREFIX}{}", name.join("__"))
                    }
                }
                Some(figment::Metadata {
                    source: Some(source @ Source::File(_)),
                    ..
                }) if key.is_empty() => source.to_string(),
                Some(figment::Metadata {
                    source: Some(source @ Source::File(_)),
                    ..
                }) => format!("`{key}` in {source}"),
                _ if key.is_empty() => "configuration".to_owned(),
                _ => format!("`{key}`"),
            };
            let what = match &e.kind {
                _ if e.path.first().is_some_and(|k| k == "secret_key") => {
                    "`secret_key` must be a string (value not shown)".to_owned()
                }
                Kind::UnknownField(found, expected) => format!(
                    "unknown key `{found}` (expected one of: {})",
                    expected.join(", ")
                ),
                other => other.to_string(),
            };
            format!("{place}: {what}")
        })
        .collect();
    anyhow!("{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    // figment::Jail's closures return figment's (large) error type; that is its API.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

    use super::*;
    use figment::Jail;

    fn shipped(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../config")
            .join(name)
    }

    /// Runs `f` in a scratch directory with no environment variables, serialised with every
    /// other test that touches the environment.
    fn jailed(f: impl FnOnce(&mut Jail) -> Result<()>) {
        Jail::expect_with(|jail| {
            jail.clear_env();
            f(jail).map_err(|e| figment::Error::from(format!("{e:#}")))
        });
    }

    fn load_error(path: Option<&Path>) -> String {
        format!("{:#}", Config::load(path).unwrap_err())
    }

    #[test]
    fn defaults_load_without_a_file() {
        jailed(|_| {
            let config = Config::load(None)?;
            assert_eq!(config, Config::default());
            assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
            assert_eq!(config.database_url(), "sqlite://./data/tidemark.db");
            assert_eq!(config.queue_url, "sqlite");
            assert_eq!(config.images.max_bytes, 20 * 1024 * 1024);
            assert!(config.secret_key().is_none());
            Ok(())
        });
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        jailed(|jail| {
            jail.create_file("empty.toml", "")?;
            assert_eq!(
                Config::load(Some(Path::new("empty.toml")))?,
                Config::default()
            );
            Ok(())
        });
    }

    #[test]
    fn default_path_is_read_when_present() {
        jailed(|jail| {
            jail.create_dir("config")?;
            jail.create_file(DEFAULT_PATH, "[workers]\nconcurrency = 2\n")?;
            assert_eq!(Config::load(None)?.workers.concurrency, 2);
            Ok(())
        });
    }

    #[test]
    fn shipped_default_config_loads() {
        jailed(|_| {
            let config = Config::load(Some(&shipped("tidemark.toml")))?;
            // The file spells out the defaults; they must not drift apart.
            assert_eq!(config, Config::default());
            assert_eq!(config.queue_url, "sqlite");
            assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
            assert!(config.database_url().starts_with("sqlite://"));
            Ok(())
        });
    }

    #[test]
    fn production_example_loads() {
        jailed(|_| {
            let config = Config::load(Some(&shipped("production.example.toml")))?;
            assert!(config.database_url().starts_with("postgres://"));
            assert!(config.queue_url.starts_with("redis://"));
            assert_eq!(config.log_format, LogFormat::Json);
            assert!(!config.images.allow_private);
            Ok(())
        });
    }

    #[test]
    fn an_explicit_path_must_exist() {
        jailed(|_| {
            let err = load_error(Some(Path::new("missing.toml")));
            assert!(err.contains("missing.toml does not exist"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_the_file() {
        jailed(|jail| {
            jail.create_file(
                "t.toml",
                "data_dir = \"/srv/file\"\nqueue_url = \"sqlite\"\n[workers]\nconcurrency = 2\n",
            )?;
            jail.set_env("TIDEMARK_DATA_DIR", "/srv/env");
            jail.set_env("TIDEMARK_WORKERS__CONCURRENCY", "8");
            jail.set_env("TIDEMARK_QUEUE_URL", "redis://127.0.0.1:6379/0");
            jail.set_env("TIDEMARK_LISTEN", "0.0.0.0:9000");
            jail.set_env("TIDEMARK_LEASES__TTL_MS", "30000");
            jail.set_env("TIDEMARK_LOG_FORMAT", "json");
            jail.set_env("TIDEMARK_SECRET_KEY", "c2VjcmV0");
            let config = Config::load(Some(Path::new("t.toml")))?;
            assert_eq!(config.data_dir, PathBuf::from("/srv/env"));
            assert_eq!(config.database_url(), "sqlite:///srv/env/tidemark.db");
            assert_eq!(config.workers.concurrency, 8);
            assert_eq!(config.queue_url, "redis://127.0.0.1:6379/0");
            assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
            assert_eq!(config.leases.ttl_ms, 30_000);
            assert_eq!(config.leases.heartbeat_ms, 5_000);
            assert_eq!(config.log_format, LogFormat::Json);
            assert_eq!(config.secret_key(), Some("c2VjcmV0"));
            Ok(())
        });
    }

    #[test]
    fn unknown_key_in_the_file_is_named() {
        jailed(|jail| {
            jail.create_file("t.toml", "[workers]\nconcurency = 8\n")?;
            let err = load_error(Some(Path::new("t.toml")));
            assert!(err.contains("concurency"), "{err}");
            assert!(err.contains("t.toml"), "{err}");
            jail.create_file("u.toml", "listen_addr = \"127.0.0.1:1\"\n")?;
            let err = load_error(Some(Path::new("u.toml")));
            assert!(err.contains("listen_addr"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unrelated_tidemark_variables_are_ignored() {
        jailed(|jail| {
            jail.set_env("TIDEMARK_LOG", "debug");
            jail.set_env("TIDEMARK_TEST_DATABASE_URL", "postgres://x@localhost/t");
            jail.set_env("TIDEMARK_TEST_REDIS_URL", "redis://127.0.0.1:6379/9");
            jail.set_env("TIDEMARK_SHARED_DATA", "/tmp/shared");
            assert_eq!(Config::load(None)?, Config::default());
            Ok(())
        });
    }

    #[test]
    fn misspelt_known_section_in_the_environment_is_named() {
        jailed(|jail| {
            jail.set_env("TIDEMARK_WORKERS__CONCURENCY", "8");
            let err = load_error(None);
            assert!(err.contains("concurency"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_their_key() {
        jailed(|jail| {
            jail.create_file("a.toml", "listen = \"localhost\"\n")?;
            let err = load_error(Some(Path::new("a.toml")));
            assert!(err.contains("listen"), "{err}");
            jail.create_file("b.toml", "log_format = \"xml\"\n")?;
            let err = load_error(Some(Path::new("b.toml")));
            assert!(err.contains("log_format") && err.contains("xml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_queue_url_is_refused() {
        jailed(|jail| {
            jail.set_env("TIDEMARK_QUEUE_URL", "amqp://user:hunter2@mq/");
            let err = load_error(None);
            assert!(err.contains("`queue_url`"), "{err}");
            assert!(err.contains("`amqp:`"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");

            jail.set_env("TIDEMARK_QUEUE_URL", "redis+cluster://a:6379,b:6379");
            let err = load_error(None);
            assert!(err.contains("Redis Cluster is not supported"), "{err}");
            jail.set_env("TIDEMARK_QUEUE_URL", "redis://a:6379,b:6379");
            let err = load_error(None);
            assert!(err.contains("Redis Cluster is not supported"), "{err}");

            for ok in [
                "rediss://h:6380/0",
                "redis+unix:///run/redis.sock",
                "sqlite://q.db",
            ] {
                jail.set_env("TIDEMARK_QUEUE_URL", ok);
                assert_eq!(Config::load(None)?.queue_url, ok);
            }
            Ok(())
        });
    }

    #[test]
    fn bad_database_url_is_refused_without_its_password() {
        jailed(|jail| {
            jail.set_env("TIDEMARK_DATABASE_URL", "mysql://root:hunter2@db/t");
            let err = load_error(None);
            assert!(err.contains("`database_url`"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn ranges_are_checked_and_every_problem_named() {
        let mut config = Config::default();
        config.leases.heartbeat_ms = 10_000;
        config.workers.concurrency = 0;
        config.retries.max_delay_ms = 1;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("`leases.heartbeat_ms` (10000)"), "{err}");
        assert!(err.contains("`workers.concurrency` must be"), "{err}");
        assert!(err.contains("`retries.max_delay_ms` (1)"), "{err}");
        config = Config::default();
        config.leases.heartbeat_ms = 9_999;
        config.validate().unwrap();
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        jailed(|jail| {
            jail.set_env("TIDEMARK_SECRET_KEY", "c2VjcmV0LWtleQ");
            jail.set_env(
                "TIDEMARK_DATABASE_URL",
                "postgres://app:hunter2@db:5432/tidemark",
            );
            jail.set_env("TIDEMARK_QUEUE_URL", "redis://:hunter3@cache:6379/0");
            let text = format!("{:?}", Config::load(None)?);
            assert!(!text.contains("c2VjcmV0LWtleQ"), "{text}");
            assert!(
                !text.contains("hunter2") && !text.contains("hunter3"),
                "{text}"
            );
            assert!(
                text.contains("postgres://app:***@db:5432/tidemark"),
                "{text}"
            );

            // A numeric value would otherwise be echoed by the type error.
            jail.set_env("TIDEMARK_SECRET_KEY", "123456789");
            let err = load_error(None);
            assert!(err.contains("secret_key"), "{err}");
            assert!(!err.contains("123456789"), "{err}");
            Ok(())
        });
    }
}
