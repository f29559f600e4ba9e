//! tidemark-engine: the procedures of DESIGN §4 — fetch, propagate, send, sync and the
//! integrity fix — over the store and the connectors.
//!
//! Boundary: knows nothing of the queue. A procedure runs for one connection, reports to a
//! [`RunControl`] at every page or batch boundary (where the jobs layer saves its checkpoint
//! and learns whether its lease still holds), and returns counts. Everything it changes in
//! the store for one page or one write commits in one transaction, so a procedure stopped or
//! killed at any point loses nothing and repeats only harmless work when run again.
//!
//! * [`Engine::fetch`] — scan → normalise, download images and hash → diff against the
//!   snapshot → absorb into canonical records → propagate pending rows to every connection →
//!   checkpoint per page → move the clock to the largest platform timestamp seen when the scan
//!   completes; deletions by full-scan mark and sweep under the mass-delete guard, by delete
//!   webhooks and by single fetches answering not found.
//! * [`Engine::send`] — drain pending rows in platform-sized batches; the snapshot advances and
//!   the row goes in one transaction with the platform's confirmation.
//! * [`Engine::sync`] — both at once, until the fetch is done and nothing is left to send.

pub mod control;
pub mod error;
pub mod images;

mod absorb;
mod fetch;
mod integrity;
mod propagate;
mod send;
mod sync;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tidemark_connector::Connector;
use tidemark_core::{Connection, ConnectionId, Currency, Field, FieldPolicy, Timestamp};
use tidemark_store::Store;

pub use control::{Counts, JobRunControl, RunControl, StopReason, Unsupervised};
pub use error::EngineError;
pub use fetch::{FetchCheckpoint, FetchReport, FetchRequest, FetchScope};
pub use images::{ImageError, ImageFetcher, ImagePolicy};
pub use integrity::IntegrityReport;
pub use send::SendReport;
pub use sync::SyncReport;

/// Where the engine gets a connection's connector (built from its platform kind, settings and
/// decrypted credentials by the caller, who owns the secrets).
#[async_trait]
pub trait ConnectorSource: Send + Sync {
    async fn connector(&self, connection: &Connection) -> Result<Arc<dyn Connector>, EngineError>;
}

/// Connectors given up front, by connection id: tests and the demo.
#[derive(Debug, Default, Clone)]
pub struct StaticConnectors {
    connectors: BTreeMap<ConnectionId, Arc<dyn Connector>>,
}

impl StaticConnectors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, connection: ConnectionId, connector: Arc<dyn Connector>) {
        self.connectors.insert(connection, connector);
    }
}

#[async_trait]
impl ConnectorSource for StaticConnectors {
    async fn connector(&self, connection: &Connection) -> Result<Arc<dyn Connector>, EngineError> {
        self.connectors
            .get(&connection.id)
            .cloned()
            .ok_or_else(|| EngineError::Connector {
                connection: connection.id,
                message: "no connector configured for it".into(),
            })
    }
}

/// The engine's notion of now (time is passed in everywhere below it).
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(time::OffsetDateTime::now_utc())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The currency of canonical prices for records first seen on a connection that converts
    /// prices (settings `currency` and `conversion_rate`); without conversion a new record
    /// keeps its platform's currency.
    pub canonical_currency: Option<Currency>,
    pub images: ImagePolicy,
    /// Attempts at one scan page before the fetch fails (the connector's HTTP client already
    /// retries single requests; this covers a platform that stays unavailable for a while).
    pub page_attempts: u32,
    /// How long a write the platform refused waits before it is tried again without a change
    /// to the record (a change makes it due at once).
    pub rejected_retry: std::time::Duration,
    /// Longest backoff between attempts of a failing write.
    pub max_backoff: std::time::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            canonical_currency: None,
            images: ImagePolicy::default(),
            page_attempts: 5,
            rejected_retry: std::time::Duration::from_secs(24 * 3600),
            max_backoff: std::time::Duration::from_secs(3600),
        }
    }
}

/// The procedures over one store and a source of connectors. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    connectors: Arc<dyn ConnectorSource>,
    clock: Arc<dyn Clock>,
    images: ImageFetcher,
    config: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(
        store: Store,
        connectors: Arc<dyn ConnectorSource>,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        Self::with_clock(store, connectors, config, Arc::new(SystemClock))
    }

    pub fn with_clock(
        store: Store,
        connectors: Arc<dyn ConnectorSource>,
        config: EngineConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, EngineError> {
        let images = ImageFetcher::new(config.images.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                connectors,
                clock,
                images,
                config,
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    async fn load(&self, id: ConnectionId) -> Result<Connection, EngineError> {
        self.inner
            .store
            .load_connection(id)
            .await?
            .ok_or(EngineError::UnknownConnection(id))
    }

    async fn connector_of(
        &self,
        connection: &Connection,
    ) -> Result<Arc<dyn Connector>, EngineError> {
        self.inner.connectors.connector(connection).await
    }
}

/// The connection with its settings as the engine applies them: a field the platform does not
/// carry is readonly there, whatever the settings say (see `Connector::carries`), and a
/// platform with one currency writes in it unless the settings name one.
pub(crate) fn effective(mut connection: Connection, connector: &dyn Connector) -> Connection {
    if connection.settings.currency.is_none() {
        connection.settings.currency = connector.currency();
    }
    let carries = connector.carries();
    for field in Field::PRODUCT_FIELDS.into_iter().chain(Field::ORDER_FIELDS) {
        if !carries.contains(&field) {
            connection
                .settings
                .field_policies
                .insert(field, FieldPolicy::Readonly);
        }
    }
    connection
}
