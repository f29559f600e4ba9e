//! What every command opens: the configuration, the store (migrated), the sealing key, and
//! for the commands that queue work, the job system.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tidemark_connector::sealing::{KeySource, SecretKey};
use tidemark_core::Timestamp;
use tidemark_engine::{Engine, EngineConfig, ImagePolicy, SystemClock};
use tidemark_jobs::{Jobs, JobsConfig, Queue, QueueSpec, RegistryConnectors, builtin_registry};
use tidemark_store::Account;
use tidemark_store::Store;
pub use tidemark_store::redact;

use crate::config::Config;

pub fn now() -> Timestamp {
    Timestamp::from_datetime(time::OffsetDateTime::now_utc())
}

/// The opened parts of a tidemark installation.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub key: Arc<SecretKey>,
}

impl App {
    /// Opens the store named by the configuration and brings its schema up to date.
    pub async fn open(config: Config) -> Result<Self> {
        let url = config.database_url();
        if url.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    config.data_dir.display()
                )
            })?;
        }
        let store = Store::connect(&url)
            .await
            .with_context(|| format!("cannot open the store {}", redact(&url)))?;
        store.migrate().await.context("cannot migrate the store")?;
        let (key, source) = SecretKey::load_or_create(config.secret_key(), &config.data_dir)
            .context("cannot load the key that seals platform credentials")?;
        if let KeySource::Created(path) = &source {
            tracing::warn!(path = %path.display(), "created a new key for platform credentials: back it up with the database");
        }
        Ok(Self {
            config,
            store,
            key: Arc::new(key),
        })
    }

    /// The account named `name`, created on first use.
    pub async fn account(&self, name: &str) -> Result<Account> {
        if let Some(account) = self.store.account_named(name).await? {
            return Ok(account);
        }
        Ok(self.store.create_account(name, now()).await?)
    }

    pub fn jobs_config(&self) -> JobsConfig {
        let c = &self.config;
        JobsConfig {
            concurrency: usize::try_from(c.workers.concurrency).unwrap_or(4).max(1),
            poll_interval: Duration::from_millis(c.workers.poll_interval_ms),
            lease_ttl: Duration::from_millis(c.leases.ttl_ms),
            heartbeat: Duration::from_millis(c.leases.heartbeat_ms),
            scheduler_tick: Duration::from_millis(c.scheduler.tick_ms),
            reconcile_interval: Duration::from_millis(c.reconciler.interval_ms),
            max_attempts: c.retries.max_attempts,
            retry_base: Duration::from_millis(c.retries.base_delay_ms),
            retry_max: Duration::from_millis(c.retries.max_delay_ms),
            prune_after: Duration::from_secs(c.queue.prune_after_hours.saturating_mul(3600)),
            queue_name: c.queue.name.clone(),
            ..JobsConfig::default()
        }
    }

    /// The job system over the configured queue.
    pub async fn jobs(&self) -> Result<Jobs> {
        let config = self.jobs_config();
        let spec = QueueSpec::parse(&self.config.queue_url, &self.config.data_dir)?;
        let queue = Queue::connect(&spec, &config.queue_name, config.heartbeat * 2)
            .await
            .context("cannot open the job queue")?;
        Ok(Jobs::new(
            self.store.clone(),
            queue,
            config,
            Arc::new(SystemClock),
        ))
    }

    /// The engine over connectors built from the stored settings and sealed credentials.
    pub fn engine(&self) -> Result<Engine> {
        let images = &self.config.images;
        let connectors =
            RegistryConnectors::new(builtin_registry(), self.store.clone(), self.key.clone());
        Ok(Engine::new(
            self.store.clone(),
            Arc::new(connectors),
            EngineConfig {
                images: ImagePolicy {
                    max_bytes: usize::try_from(images.max_bytes).unwrap_or(usize::MAX),
                    timeout: Duration::from_millis(images.timeout_ms),
                    allow_private: images.allow_private,
                    ..ImagePolicy::default()
                },
                ..EngineConfig::default()
            },
        )?)
    }
}
