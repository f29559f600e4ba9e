//! What every handler shares: the job system (and through it the store), connectors for
//! webhook verification, the registry of connector kinds for checking settings, the key that
//! seals credentials, and the API's own counters.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tidemark_connector::ConnectorRegistry;
use tidemark_connector::sealing::SecretKey;
use tidemark_core::Timestamp;
use tidemark_engine::ConnectorSource;
use tidemark_jobs::{Jobs, RunnerStats};
use tidemark_store::Store;

/// Limits and pacing of the HTTP side.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The largest API request body accepted (413 above).
    pub body_limit: usize,
    /// The largest webhook body accepted: platforms send whole products.
    pub webhook_body_limit: usize,
    /// How often `/events` looks for changes.
    pub events_interval: Duration,
    /// MercadoLibre drops a notification not answered within 500 ms: queueing its fetch
    /// may take at most this long before the answer goes out (the queueing goes on).
    pub hint_answer_within: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            webhook_body_limit: 8 * 1024 * 1024,
            events_interval: Duration::from_millis(500),
            hint_answer_within: Duration::from_millis(300),
        }
    }
}

/// Counters the API keeps itself (the rest of `/metrics` is read at scrape time).
#[derive(Debug, Default)]
pub struct ApiMetrics {
    /// Webhook deliveries by outcome: queued, duplicate, ignored, rejected.
    pub webhooks: Family<Vec<(String, String)>, Counter>,
    /// Requests refused for a missing or unknown bearer token.
    pub auth_failures: Counter,
}

impl ApiMetrics {
    pub fn webhook(&self, outcome: &str) {
        self.webhooks
            .get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())])
            .inc();
    }
}

/// The API's shared state. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: Jobs,
    connectors: Arc<dyn ConnectorSource>,
    registry: ConnectorRegistry,
    key: Arc<SecretKey>,
    runner: Option<Arc<RunnerStats>>,
    config: ApiConfig,
    metrics: ApiMetrics,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("jobs", &self.inner.jobs)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(
        jobs: Jobs,
        connectors: Arc<dyn ConnectorSource>,
        registry: ConnectorRegistry,
        key: Arc<SecretKey>,
        runner: Option<Arc<RunnerStats>>,
        config: ApiConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                jobs,
                connectors,
                registry,
                key,
                runner,
                config,
                metrics: ApiMetrics::default(),
            }),
        }
    }

    pub fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    pub fn store(&self) -> &Store {
        self.inner.jobs.store()
    }

    pub fn now(&self) -> Timestamp {
        self.inner.jobs.now()
    }

    pub fn connectors(&self) -> &Arc<dyn ConnectorSource> {
        &self.inner.connectors
    }

    pub fn registry(&self) -> &ConnectorRegistry {
        &self.inner.registry
    }

    pub fn key(&self) -> &SecretKey {
        &self.inner.key
    }

    /// The workers' counters of this process, for `/metrics` (absent when it runs none).
    pub fn runner_stats(&self) -> Option<&Arc<RunnerStats>> {
        self.inner.runner.as_ref()
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &ApiMetrics {
        &self.inner.metrics
    }
}
