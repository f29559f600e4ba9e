//! Connectors built from what the store holds: the connection's platform kind and settings,
//! and its credentials sealed under the daemon's key. Built once per connection and kept, so
//! the connector's pacing state (Shopify's cost bucket, MercadoLibre's request rate) spans
//! every job of that connection in this process; rebuilt when the settings or credentials
//! change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tidemark_connector::sealing::{self, SecretKey};
use tidemark_connector::{
    Connector, ConnectorError, ConnectorRegistry, CredentialSink, Credentials,
};
use tidemark_core::{Connection, ConnectionId};
use tidemark_engine::{ConnectorSource, EngineError};
use tidemark_store::Store;

/// A built connector and the fingerprint of the settings and sealed credentials it was built
/// from.
type Built = (blake3::Hash, Arc<dyn Connector>);

/// The registry of connector kinds with the daemon's key and store behind it.
pub struct RegistryConnectors {
    registry: ConnectorRegistry,
    store: Store,
    key: Arc<SecretKey>,
    sink: Arc<dyn CredentialSink>,
    built: Mutex<HashMap<ConnectionId, Built>>,
}

impl std::fmt::Debug for RegistryConnectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConnectors")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl RegistryConnectors {
    pub fn new(registry: ConnectorRegistry, store: Store, key: Arc<SecretKey>) -> Self {
        let sink: Arc<dyn CredentialSink> = Arc::new(StoreCredentials {
            store: store.clone(),
            key: key.clone(),
        });
        Self {
            registry,
            store,
            key,
            sink,
            built: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, id: ConnectionId, fingerprint: &blake3::Hash) -> Option<Arc<dyn Connector>> {
        let built = self
            .built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        built
            .get(&id)
            .filter(|(seen, _)| seen == fingerprint)
            .map(|(_, connector)| connector.clone())
    }
}

#[async_trait]
impl ConnectorSource for RegistryConnectors {
    async fn connector(&self, connection: &Connection) -> Result<Arc<dyn Connector>, EngineError> {
        let failed = |message: String| EngineError::Connector {
            connection: connection.id,
            message,
        };
        let sealed = self.store.connection_credentials(connection.id).await?;
        let settings = serde_json::to_vec(&connection.platform_settings)
            .map_err(|e| failed(format!("settings not readable: {e}")))?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(connection.platform.as_str().as_bytes());
        hasher.update(&settings);
        hasher.update(sealed.as_deref().unwrap_or_default());
        let fingerprint = hasher.finalize();
        if let Some(connector) = self.cached(connection.id, &fingerprint) {
            return Ok(connector);
        }
        let credentials = match &sealed {
            Some(blob) => sealing::open(&self.key, blob)
                .map_err(|e| failed(format!("its stored credentials cannot be opened: {e}")))?,
            None => Credentials::new(),
        };
        let connector = self
            .registry
            .build(
                connection.platform,
                connection.id,
                &connection.platform_settings,
                &credentials,
                &self.sink,
            )
            .map_err(|e| failed(e.to_string()))?;
        self.built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(connection.id, (fingerprint, connector.clone()));
        Ok(connector)
    }
}

/// Stores credentials a connector rotated (MercadoLibre's single-use refresh tokens), sealed.
struct StoreCredentials {
    store: Store,
    key: Arc<SecretKey>,
}

#[async_trait]
impl CredentialSink for StoreCredentials {
    async fn save(
        &self,
        connection: ConnectionId,
        credentials: &Credentials,
    ) -> Result<(), ConnectorError> {
        let sealed = sealing::seal(&self.key, credentials)
            .map_err(|e| ConnectorError::fatal(format!("cannot seal rotated credentials: {e}")))?;
        let Some(current) = self.store.load_connection(connection).await.map_err(|e| {
            ConnectorError::transient(format!("cannot store rotated credentials: {e}"))
        })?
        else {
            return Err(ConnectorError::fatal(format!(
                "connection {connection} is gone"
            )));
        };
        let now = tidemark_core::Timestamp::from_datetime(time::OffsetDateTime::now_utc());
        let saved = self
            .store
            .set_connection_credentials(current.account, connection, Some(&sealed), now)
            .await
            .map_err(|e| {
                ConnectorError::transient(format!("cannot store rotated credentials: {e}"))
            })?;
        if !saved {
            return Err(ConnectorError::fatal(format!(
                "connection {connection} is gone"
            )));
        }
        Ok(())
    }
}

/// The registry of every connector kind tidemark ships.
pub fn builtin_registry() -> ConnectorRegistry {
    ConnectorRegistry::new()
        .with(Arc::new(tidemark_shopify::ShopifyFactory))
        .with(Arc::new(tidemark_woocommerce::WooCommerceFactory))
        .with(Arc::new(tidemark_mercadolibre::MercadoLibreFactory))
        .with(Arc::new(tidemark_csv::CsvFactory))
}
