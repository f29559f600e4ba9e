//! Three shops kept in step: a WooCommerce shop seeded with the catalogue (the master) and
//! empty Shopify and MercadoLibre shops that clone new products, each over its simulator and
//! real connector, with an engine whose clock a test can move forward (to make backed-off
//! rows due without waiting).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tidemark_connector::{Connector, ConnectorError, CredentialSink, Credentials};
use tidemark_core::{
    ConnectionId, ConnectionSettings, ExternalId, ExternalRecord, PlatformKind, Product, ProductId,
    RecordContent, RecordKind, ScanKind, Sku, Timestamp,
};
use tidemark_engine::{
    Clock, Engine, EngineConfig, FetchReport, FetchRequest, FetchScope, ImagePolicy, SendReport,
    StaticConnectors, Unsupervised,
};
use tidemark_sim::mercadolibre::{MlConfig, MlSim};
use tidemark_sim::shopify::{ShopifyConfig, ShopifySim};
use tidemark_sim::woocommerce::{WooConfig, WooSim};
use tidemark_sim::{FaultConfig, RunningSim};
use tidemark_store::{ConnectionPatch, Store};

use crate::common::{World, now};

/// System time plus an offset a test moves forward.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(i64::try_from(by.as_millis()).unwrap(), Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        now().saturating_add_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// Keeps MercadoLibre's rotated tokens (in memory: the test outlives no refresh).
#[derive(Debug, Default)]
struct KeepTokens;

#[async_trait]
impl CredentialSink for KeepTokens {
    async fn save(&self, _: ConnectionId, _: &Credentials) -> Result<(), ConnectorError> {
        Ok(())
    }
}

pub struct Options {
    /// Products seeded on WooCommerce.
    pub products: u64,
    /// WooCommerce listing page size (small pages make a scan page several times).
    pub woo_per_page: u32,
    pub woo: ConnectionSettings,
    pub shopify: ConnectionSettings,
    pub ml: ConnectionSettings,
    /// Publish every WooCommerce product before the first sync: MercadoLibre creates every
    /// item active and its connector does not pause one afterwards, so a paused or draft
    /// product would come back published (`the_first_fetch_after_the_first_sync_...` shows it).
    pub around_gaps: bool,
}

impl Options {
    pub fn new(products: u64) -> Self {
        let clone = ConnectionSettings {
            clone_new_products: true,
            ..ConnectionSettings::default()
        };
        Self {
            products,
            woo_per_page: 100,
            woo: ConnectionSettings {
                master: true,
                ..ConnectionSettings::default()
            },
            shopify: clone.clone(),
            ml: ConnectionSettings {
                // Created items get the connector's default category: reading it back is
                // then no change to the canonical category.
                default_category: Some(ML_CATEGORY.into()),
                ..clone
            },
            around_gaps: true,
        }
    }
}

pub const ML_CATEGORY: &str = "MLA1234";

pub struct Shops {
    pub world: World,
    pub engine: Engine,
    pub clock: Arc<TestClock>,
    pub woo: WooSim,
    pub woo_run: RunningSim,
    pub woo_conn: Arc<dyn Connector>,
    pub w: ConnectionId,
    pub shopify: ShopifySim,
    pub shopify_run: RunningSim,
    pub shopify_conn: Arc<dyn Connector>,
    pub s: ConnectionId,
    pub ml: MlSim,
    pub ml_run: RunningSim,
    pub ml_conn: Arc<dyn Connector>,
    pub m: ConnectionId,
}

impl Shops {
    /// The simulators, connectors and connections; nothing synced yet.
    pub async fn start(store: Store, options: Options) -> Self {
        let woo = WooSim::new(
            WooConfig {
                products: options.products,
                orders: 0,
                ..WooConfig::default()
            },
            FaultConfig::none(),
        );
        let woo_run = woo.serve().await.unwrap();
        let mut woo_settings = tidemark_woocommerce::Settings::new(woo_run.base_url.clone());
        woo_settings.variation_concurrency = 16;
        woo_settings.per_page = options.woo_per_page;
        woo_settings.timeout_secs = 5;
        let woo_conn: Arc<dyn Connector> = Arc::new(
            tidemark_woocommerce::WooCommerce::new(
                woo_settings,
                tidemark_woocommerce::Keys {
                    consumer_key: "ck_test".into(),
                    consumer_secret: "cs_test".into(),
                    webhook_secret: Some("whsec_test".into()),
                },
            )
            .unwrap(),
        );

        let shopify = ShopifySim::new(
            ShopifyConfig {
                products: 0,
                orders: 0,
                bucket_max: 1e6,
                restore_rate: 1e6,
                media_processing_ms: 20,
                ..ShopifyConfig::default()
            },
            FaultConfig::none(),
        );
        let shopify_run = shopify.serve().await.unwrap();
        let shopify_conn: Arc<dyn Connector> = Arc::new(
            tidemark_shopify::Shopify::new(
                tidemark_shopify::Settings::new(format!("http://{}", shopify_run.addr)),
                tidemark_shopify::Keys {
                    access_token: "shpat_test".into(),
                    webhook_secret: Some("whsec_test".into()),
                },
            )
            .unwrap(),
        );

        let ml = MlSim::new(
            MlConfig {
                items: 0,
                orders: 0,
                rate_per_second: None,
                hourly_limit: None,
                ..MlConfig::default()
            },
            FaultConfig::none(),
        );
        let ml_run = ml.serve().await.unwrap();
        let mut ml_settings =
            tidemark_mercadolibre::Settings::new("MLA", 207_035_636, "5503910054141466");
        ml_settings.base_url = ml_run.base_url.clone();
        ml_settings.default_category_id = Some(ML_CATEGORY.into());
        ml_settings.requests_per_second = 1_000.0;
        let mut world = World::new(store).await;
        // The connection id the connector reports with: the next one the store hands out is
        // not known yet, and only rotated tokens (none here) use it.
        let ml_conn: Arc<dyn Connector> = Arc::new(
            tidemark_mercadolibre::MercadoLibre::new(
                ml_settings,
                tidemark_mercadolibre::Tokens {
                    client_secret: "ml_secret_test".into(),
                    access_token: "APP_USR-initial".into(),
                    refresh_token: "TG-initial".into(),
                },
                ConnectionId(0),
                Arc::new(KeepTokens),
            )
            .unwrap(),
        );

        if options.around_gaps {
            for id in woo.product_ids() {
                woo.set_raw_field(id, None, "status", serde_json::json!("publish"));
            }
        }
        let w = world
            .connect(
                "Woo",
                PlatformKind::Woocommerce,
                options.woo,
                woo_conn.clone(),
            )
            .await;
        let s = world
            .connect(
                "Shopify",
                PlatformKind::Shopify,
                options.shopify,
                shopify_conn.clone(),
            )
            .await;
        let m = world
            .connect(
                "MercadoLibre",
                PlatformKind::Mercadolibre,
                options.ml,
                ml_conn.clone(),
            )
            .await;
        let clock = Arc::new(TestClock::default());
        let engine = engine_over(&world, clock.clone(), EngineConfig::default());
        Self {
            world,
            engine,
            clock,
            woo,
            woo_run,
            woo_conn,
            w,
            shopify,
            shopify_run,
            shopify_conn,
            s,
            ml,
            ml_run,
            ml_conn,
            m,
        }
    }

    /// Every canonical product, by id.
    pub async fn all_canonical(&self) -> BTreeMap<ProductId, Product> {
        let mut out = BTreeMap::new();
        let mut id = 1;
        let count = self
            .store()
            .count_products(self.world.account)
            .await
            .unwrap();
        while (out.len() as i64) < count {
            if let Some(p) = self
                .store()
                .get_product(self.world.account, ProductId(id))
                .await
                .unwrap()
            {
                out.insert(ProductId(id), p.into_inner().content);
            }
            id += 1;
        }
        out
    }

    /// Started and synced: WooCommerce fetched, its products created on Shopify and
    /// MercadoLibre, and both of those fetched once (finding nothing to change).
    pub async fn synced(store: Store, options: Options) -> Self {
        let products = options.products;
        let shops = Self::start(store, options).await;
        let fetched = shops.fetch(shops.w).await;
        assert_eq!(fetched.counts.new, products, "{:?}", fetched.counts);
        assert_eq!(fetched.counts.failed, 0, "{:?}", fetched.counts);
        for target in [shops.s, shops.m] {
            let sent = shops.send(target).await;
            assert_eq!(sent.counts.inserted, products, "{:?}", sent.counts);
            assert_eq!(sent.counts.send_failed, 0, "{:?}", sent.counts);
        }
        for target in [shops.s, shops.m] {
            let fetched = shops.fetch(target).await;
            assert_eq!(
                fetched.counts.new + fetched.counts.changed + fetched.counts.failed,
                0,
                "a first fetch of what was just created on {} finds it as written: {:?}",
                shops.name(target),
                fetched.counts
            );
        }
        shops.assert_quiet().await;
        shops
    }

    /// An engine with its own configuration over the same connections and clock.
    pub fn engine_with(&self, config: EngineConfig) -> Engine {
        engine_over(&self.world, self.clock.clone(), config)
    }

    pub fn store(&self) -> &Store {
        &self.world.store
    }

    pub fn connections(&self) -> [ConnectionId; 3] {
        [self.w, self.s, self.m]
    }

    pub fn name(&self, connection: ConnectionId) -> &'static str {
        match connection {
            c if c == self.w => "WooCommerce",
            c if c == self.s => "Shopify",
            c if c == self.m => "MercadoLibre",
            _ => "?",
        }
    }

    pub fn connector(&self, connection: ConnectionId) -> &Arc<dyn Connector> {
        match connection {
            c if c == self.w => &self.woo_conn,
            c if c == self.s => &self.shopify_conn,
            _ => &self.ml_conn,
        }
    }

    /// An incremental fetch of products.
    pub async fn fetch(&self, connection: ConnectionId) -> FetchReport {
        self.fetch_scope(connection, FetchScope::Incremental).await
    }

    pub async fn fetch_scope(&self, connection: ConnectionId, scope: FetchScope) -> FetchReport {
        self.engine
            .fetch(connection, &products(scope), None, &Unsupervised)
            .await
            .unwrap_or_else(|e| panic!("fetch of {}: {e}", self.name(connection)))
    }

    pub async fn send(&self, connection: ConnectionId) -> SendReport {
        self.engine
            .send(connection, &Unsupervised)
            .await
            .unwrap_or_else(|e| panic!("send to {}: {e}", self.name(connection)))
    }

    /// Sends to every connection.
    pub async fn send_all(&self) -> BTreeMap<ConnectionId, SendReport> {
        let mut out = BTreeMap::new();
        for connection in self.connections() {
            out.insert(connection, self.send(connection).await);
        }
        out
    }

    /// Nothing is pending anywhere, and a full fetch of every shop then finds no change and
    /// queues nothing: the shops agree with the canonical records.
    pub async fn assert_quiet(&self) {
        for connection in self.connections() {
            let fetched = self.fetch_scope(connection, FetchScope::Full).await;
            assert_eq!(
                fetched.counts.new + fetched.counts.changed + fetched.counts.deleted,
                0,
                "{} changed: {:?}",
                self.name(connection),
                fetched.counts
            );
        }
        for connection in self.connections() {
            let sent = self.send(connection).await;
            assert_eq!(
                sent.counts.inserted + sent.counts.updated + sent.counts.image_deletes,
                0,
                "{} had more to send: {:?}",
                self.name(connection),
                sent.counts
            );
        }
        self.assert_no_deletes_nor_duplicates();
    }

    /// No product was ever deleted through a platform's API, and no SKU created twice.
    pub fn assert_no_deletes_nor_duplicates(&self) {
        for (name, stats) in [
            ("WooCommerce", self.woo.harness.stats.snapshot()),
            ("Shopify", self.shopify.harness.stats.snapshot()),
            ("MercadoLibre", self.ml.harness.stats.snapshot()),
        ] {
            assert_eq!(stats.product_deletes, 0, "{name}: {stats:?}");
            assert_eq!(stats.duplicate_creates, 0, "{name}: {stats:?}");
        }
    }

    /// The canonical product carrying `sku` (the product's own SKU).
    pub async fn canonical_id(&self, sku: &str) -> ProductId {
        let found = self
            .store()
            .match_candidates(self.world.account, &[Sku(sku.to_owned())], &[])
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{sku}: {found:?}");
        found[0]
    }

    pub async fn canonical(&self, id: ProductId) -> Product {
        self.store()
            .get_product(self.world.account, id)
            .await
            .unwrap()
            .expect("canonical product")
            .into_inner()
            .content
    }

    /// The platform id of `id` on `connection`.
    pub async fn external(&self, connection: ConnectionId, id: ProductId) -> Option<ExternalId> {
        self.store()
            .binding_by_internal(connection, RecordKind::Product, id.0, "")
            .await
            .unwrap()
            .map(|b| b.external_id)
    }

    /// The product `id` as `connection`'s platform has it now (read through its connector).
    pub async fn on_platform(&self, connection: ConnectionId, id: ProductId) -> Product {
        let external = self
            .external(connection, id)
            .await
            .unwrap_or_else(|| panic!("{id} is not bound on {}", self.name(connection)));
        let record = self
            .connector(connection)
            .fetch_one(ScanKind::Products, &external)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{external} is gone from {}", self.name(connection)));
        product(&record).clone()
    }

    /// Changes a connection's settings as the merchant would in the console.
    pub async fn set_settings(
        &self,
        connection: ConnectionId,
        change: impl FnOnce(&mut ConnectionSettings),
    ) {
        let mut settings = self
            .store()
            .load_connection(connection)
            .await
            .unwrap()
            .unwrap()
            .settings;
        change(&mut settings);
        self.store()
            .update_connection(
                self.world.account,
                connection,
                &ConnectionPatch {
                    name: None,
                    settings: Some(settings),
                    platform_settings: None,
                },
                now(),
            )
            .await
            .unwrap();
    }

    pub async fn stop(self) {
        self.assert_no_deletes_nor_duplicates();
        self.woo_run.stop().await;
        self.shopify_run.stop().await;
        self.ml_run.stop().await;
    }
}

fn engine_over(world: &World, clock: Arc<TestClock>, config: EngineConfig) -> Engine {
    let mut connectors = StaticConnectors::new();
    for (id, connector) in &world.connections {
        connectors.insert(*id, connector.clone());
    }
    Engine::with_clock(
        world.store.clone(),
        Arc::new(connectors),
        EngineConfig {
            images: ImagePolicy {
                allow_private: true,
                ..ImagePolicy::default()
            },
            ..config
        },
        clock,
    )
    .unwrap()
}

/// A fetch of products only (orders are not what these tests are about).
pub fn products(scope: FetchScope) -> FetchRequest {
    FetchRequest {
        scope,
        kinds: vec![ScanKind::Products],
    }
}

pub fn product(record: &ExternalRecord) -> &Product {
    match &record.content {
        RecordContent::Product(p) => p,
        RecordContent::Order(_) => panic!("not a product"),
    }
}

/// A supervisor that keeps the last checkpoint a fetch saved and runs `on_page` with the number
/// of pages done so far (1 after the first) at every page boundary; its answer is the
/// supervisor's (an `Err` stops the fetch there).
pub struct Pages<F> {
    pages: std::sync::atomic::AtomicU64,
    saved: std::sync::Mutex<Option<serde_json::Value>>,
    on_page: F,
}

impl<F> Pages<F>
where
    F: Fn(u64) -> Result<(), tidemark_engine::StopReason> + Send + Sync,
{
    pub fn new(on_page: F) -> Self {
        Self {
            pages: Default::default(),
            saved: Default::default(),
            on_page,
        }
    }

    pub fn pages(&self) -> u64 {
        self.pages.load(Ordering::SeqCst)
    }

    /// The checkpoint saved at the last page boundary, as a later fetch takes it.
    pub fn checkpoint(&self) -> Option<tidemark_engine::FetchCheckpoint> {
        self.saved
            .lock()
            .unwrap()
            .clone()
            .map(|saved| serde_json::from_value(saved).unwrap())
    }
}

#[async_trait]
impl<F> tidemark_engine::RunControl for Pages<F>
where
    F: Fn(u64) -> Result<(), tidemark_engine::StopReason> + Send + Sync,
{
    async fn checkpoint(
        &self,
        _: &tidemark_engine::Counts,
        checkpoint: &serde_json::Value,
    ) -> Result<(), tidemark_engine::StopReason> {
        *self.saved.lock().unwrap() = Some(checkpoint.clone());
        let pages = self.pages.fetch_add(1, Ordering::SeqCst) + 1;
        (self.on_page)(pages)
    }
}
