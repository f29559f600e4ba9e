//! Products end to end between real connectors and their simulators (issue acceptance of the
//! engine): first sync with clone-new and a price margin (images compared by their bytes),
//! and a second sync that sends nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tidemark_testkit::store_test;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::common::{self, World, scan_all};
use rust_decimal::Decimal;
use tidemark_connector::Connector;
use tidemark_core::{
    ConnectionId, ConnectionSettings, ExternalId, PlatformKind, Product, RecordContent, RecordKind,
    ScanKind,
};
use tidemark_engine::{Engine, FetchRequest, FetchScope, Unsupervised};
use tidemark_sim::shopify::{ShopifyConfig, ShopifySim};
use tidemark_sim::woocommerce::WooSim;
use tidemark_sim::{FaultConfig, RunningSim};

pub struct Pair {
    /// Held, not read: the world and the Shopify simulator live as long as the pair.
    pub _world: World,
    pub engine: Engine,
    pub _shopify: ShopifySim,
    pub shopify_run: RunningSim,
    pub shopify_conn: Arc<dyn Connector>,
    pub s: ConnectionId,
    pub woo: WooSim,
    pub woo_run: RunningSim,
    pub woo_conn: Arc<dyn Connector>,
    pub w: ConnectionId,
}

/// A Shopify shop of `products` products and an empty WooCommerce shop that clones new
/// products with `margin` percent.
async fn shopify_to_woo(store: tidemark_store::Store, products: u64, margin: i64) -> Pair {
    let shopify = ShopifySim::new(
        ShopifyConfig {
            products,
            orders: 0,
            bucket_max: 1e6,
            restore_rate: 1e6,
            ..ShopifyConfig::default()
        },
        FaultConfig::none(),
    );
    let shopify_run = shopify.serve().await.unwrap();
    let (woo, woo_run) = common::woo_shop(0).await;
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
    let mut woo_settings = tidemark_woocommerce::Settings::new(woo_run.base_url.clone());
    woo_settings.variation_concurrency = 32;
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
    let mut world = World::new(store).await;
    let s = world
        .connect(
            "Shopify",
            PlatformKind::Shopify,
            ConnectionSettings::default(),
            shopify_conn.clone(),
        )
        .await;
    let mut woo_settings = ConnectionSettings {
        clone_new_products: true,
        ..ConnectionSettings::default()
    };
    woo_settings.price.margin_percent = Decimal::from(margin);
    let w = world
        .connect(
            "Woo",
            PlatformKind::Woocommerce,
            woo_settings,
            woo_conn.clone(),
        )
        .await;
    let engine = world.engine();
    Pair {
        _world: world,
        engine,
        _shopify: shopify,
        shopify_run,
        shopify_conn,
        s,
        woo,
        woo_run,
        woo_conn,
        w,
    }
}

/// The content hash of the bytes at `src`.
async fn image_hash(http: &reqwest::Client, src: &str) -> u128 {
    let bytes = http.get(src).send().await.unwrap().bytes().await.unwrap();
    tidemark_core::hash::image_hash_bytes(&bytes).0
}

fn product(record: &tidemark_core::ExternalRecord) -> &Product {
    match &record.content {
        RecordContent::Product(p) => p,
        RecordContent::Order(_) => panic!("not a product"),
    }
}

async fn fetch(engine: &Engine, connection: ConnectionId) -> tidemark_engine::FetchReport {
    engine
        .fetch(
            connection,
            &FetchRequest::new(FetchScope::Incremental),
            None,
            &Unsupervised,
        )
        .await
        .unwrap()
}

async fn send(engine: &Engine, connection: ConnectionId) -> tidemark_engine::SendReport {
    engine.send(connection, &Unsupervised).await.unwrap()
}

store_test! {
    async fn first_sync_clones_every_product_with_margin_and_a_second_sends_nothing(store) {
        const N: u64 = 1_000;
        let p = shopify_to_woo(store.clone(), N, 15).await;
        let fetched = fetch(&p.engine, p.s).await;
        assert_eq!(fetched.counts.new, N, "{:?}", fetched.counts);
        assert_eq!(fetched.counts.failed, 0, "{:?}", fetched.counts);
        assert!(fetched.pending_for.contains(&p.w));
        let sent = send(&p.engine, p.w).await;
        assert_eq!(sent.counts.inserted, N, "{:?}", sent.counts);
        assert_eq!(sent.counts.send_failed, 0, "{:?}", sent.counts);

        // WooCommerce holds every product, variant, stock and margin-adjusted price, and as
        // many images.
        let on_shopify = scan_all(&*p.shopify_conn, ScanKind::Products).await;
        let on_woo: BTreeMap<ExternalId, _> = scan_all(&*p.woo_conn, ScanKind::Products)
            .await
            .into_iter()
            .map(|r| (r.external_id.clone(), r))
            .collect();
        assert_eq!(on_woo.len() as u64, N);
        let margin = Decimal::new(115, 2);
        let http = tidemark_connector::http::client_builder().build().unwrap();
        for record in &on_shopify {
            let binding = store
                .binding_by_external(p.s, RecordKind::Product, &record.external_id)
                .await
                .unwrap()
                .expect("bound on Shopify");
            let woo_binding = store
                .binding_by_internal(p.w, RecordKind::Product, binding.internal_id, "")
                .await
                .unwrap()
                .expect("bound on WooCommerce");
            let theirs = product(&on_woo[&woo_binding.external_id]);
            let ours = product(record);
            assert_eq!(theirs.title, ours.title);
            assert_eq!(theirs.variants.len(), ours.variants.len(), "{}", ours.title);
            assert_eq!(theirs.images.len(), ours.images.len(), "{}", ours.title);
            // Images by content: WooCommerce downloaded Shopify's bytes.
            let mut ours_bytes = Vec::new();
            for image in &ours.images {
                ours_bytes.push(image_hash(&http, &image.src).await);
            }
            let mut theirs_bytes = Vec::new();
            for image in &theirs.images {
                theirs_bytes.push(image_hash(&http, &image.src).await);
            }
            ours_bytes.sort_unstable();
            theirs_bytes.sort_unstable();
            assert_eq!(theirs_bytes, ours_bytes, "{}", ours.title);
            for variant in &ours.variants {
                let twin = theirs
                    .variants
                    .iter()
                    .find(|v| v.sku == variant.sku)
                    .unwrap_or_else(|| panic!("variant {:?} missing", variant.sku));
                assert_eq!(twin.stock, variant.stock, "{:?}", variant.sku);
                let expected = variant.price.map(|price| (price * margin).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero));
                assert_eq!(twin.price.map(|p| p.normalize()), expected.map(|p| p.normalize()), "{:?}", variant.sku);
            }
        }
        let stats = p.woo.harness.stats.snapshot();
        assert_eq!(stats.duplicate_creates, 0, "{stats:?}");
        assert_eq!(stats.product_deletes, 0, "{stats:?}");

        // A second sync, both ways, changes and sends nothing.
        let again = fetch(&p.engine, p.s).await;
        assert_eq!(again.counts.new + again.counts.changed, 0, "{:?}", again.counts);
        let woo_first = fetch(&p.engine, p.w).await;
        assert_eq!(woo_first.counts.new, 0, "{:?}", woo_first.counts);
        assert_eq!(woo_first.counts.changed, 0, "Woo's first fetch finds nothing new: {:?}", woo_first.counts);
        for connection in [p.w, p.s] {
            let sent = send(&p.engine, connection).await;
            assert_eq!(
                sent.counts.inserted + sent.counts.updated + sent.counts.image_deletes,
                0,
                "{:?}",
                sent.counts
            );
        }
        p.shopify_run.stop().await;
        p.woo_run.stop().await;
    }
}
