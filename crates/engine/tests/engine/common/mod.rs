//! End-to-end set-up: simulators on loopback, their connectors, a store on SQLite or
//! PostgreSQL, and an engine over them. Tests run each body on both databases with
//! `tidemark_testkit::store_test!`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tidemark_connector::{Connector, Cursor, ScanScope};
use tidemark_core::{
    AccountId, ConnectionId, ConnectionSettings, ExternalRecord, PlatformKind, ScanKind, Timestamp,
};
use tidemark_engine::{Engine, EngineConfig, ImagePolicy, StaticConnectors};
use tidemark_store::{NewConnection, Store};

pub fn now() -> Timestamp {
    Timestamp::from_datetime(time::OffsetDateTime::now_utc())
}

/// The account, its connections and the engine over them.
pub struct World {
    pub store: Store,
    pub account: AccountId,
    connectors: StaticConnectors,
    pub connections: Vec<(ConnectionId, Arc<dyn Connector>)>,
}

impl World {
    pub async fn new(store: Store) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("TIDEMARK_TEST_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .try_init();
        let account = store.create_account("Acme", now()).await.unwrap().id;
        Self {
            store,
            account,
            connectors: StaticConnectors::new(),
            connections: Vec::new(),
        }
    }

    pub async fn connect(
        &mut self,
        name: &str,
        platform: PlatformKind,
        settings: ConnectionSettings,
        connector: Arc<dyn Connector>,
    ) -> ConnectionId {
        let connection = self
            .store
            .create_connection(
                &NewConnection {
                    account: self.account,
                    platform,
                    name: name.into(),
                    settings,
                    platform_settings: serde_json::json!({}),
                    credentials: None,
                },
                now(),
            )
            .await
            .unwrap();
        self.connectors.insert(connection.id, connector.clone());
        self.connections.push((connection.id, connector));
        connection.id
    }

    /// An engine over the connections made so far; simulators live on loopback, so private
    /// image addresses are allowed.
    pub fn engine(&self) -> Engine {
        Engine::new(
            self.store.clone(),
            Arc::new(self.connectors.clone()),
            EngineConfig {
                images: ImagePolicy {
                    allow_private: true,
                    ..ImagePolicy::default()
                },
                ..EngineConfig::default()
            },
        )
        .unwrap()
    }
}

/// Every record of `kind` a connector returns in a full scan.
pub async fn scan_all(connector: &dyn Connector, kind: ScanKind) -> Vec<ExternalRecord> {
    let mut cursor: Option<Cursor> = None;
    let mut out = Vec::new();
    loop {
        let page = connector
            .scan_page(kind, &ScanScope::Full, cursor.as_ref())
            .await
            .unwrap();
        out.extend(page.records);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

/// A WooCommerce connector to a simulator, with its test keys; `tune` adjusts the settings
/// (variation reads 32 at a time unless it says otherwise).
pub fn woo_connector(
    base_url: &str,
    tune: impl FnOnce(&mut tidemark_woocommerce::Settings),
) -> Arc<dyn Connector> {
    let mut settings = tidemark_woocommerce::Settings::new(base_url.to_owned());
    settings.variation_concurrency = 32;
    tune(&mut settings);
    Arc::new(
        tidemark_woocommerce::WooCommerce::new(
            settings,
            tidemark_woocommerce::Keys {
                consumer_key: "ck_test".into(),
                consumer_secret: "cs_test".into(),
                webhook_secret: None,
            },
        )
        .expect("a WooCommerce connector"),
    )
}

/// A WooCommerce simulator with `products` seeded and no orders, served on loopback.
pub async fn woo_shop(
    products: u64,
) -> (tidemark_sim::woocommerce::WooSim, tidemark_sim::RunningSim) {
    let sim = tidemark_sim::woocommerce::WooSim::new(
        tidemark_sim::woocommerce::WooConfig {
            products,
            orders: 0,
            ..tidemark_sim::woocommerce::WooConfig::default()
        },
        tidemark_sim::FaultConfig::none(),
    );
    let run = sim.serve().await.expect("serve the WooCommerce simulator");
    (sim, run)
}
