//! Orders end to end (engine issue, acceptance 10): a MercadoLibre sale arrives on
//! WooCommerce with that connection's default order fields, WooCommerce's own stock reduction
//! for the copied order is given back, and a tracking number added on WooCommerce reaches
//! MercadoLibre.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::common::{self, World};
use async_trait::async_trait;
use tidemark_connector::{Connector, ConnectorError, CredentialSink, Credentials};
use tidemark_core::{
    ConnectionId, ConnectionSettings, OrderDefaults, OrderStatus, PlatformKind, RecordKind,
    ScanKind,
};
use tidemark_engine::{Engine, FetchRequest, FetchScope, Unsupervised};
use tidemark_sim::FaultConfig;
use tidemark_sim::mercadolibre::{MlConfig, MlSim, PlaceOrder};
use tidemark_testkit::store_test;

struct KeepTokens;

#[async_trait]
impl CredentialSink for KeepTokens {
    async fn save(&self, _: ConnectionId, _: &Credentials) -> Result<(), ConnectorError> {
        Ok(())
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
    let report = engine.send(connection, &Unsupervised).await.unwrap();
    assert_eq!(report.counts.send_failed, 0, "{:?}", report.counts);
    report
}

store_test! {
    async fn a_mercadolibre_sale_reaches_woocommerce_and_its_tracking_comes_back(store) {
        let ml_sim = MlSim::new(
            MlConfig { items: 6, orders: 0, rate_per_second: Some(500.0), rate_burst: 50, ..MlConfig::default() },
            FaultConfig::none(),
        );
        let ml_run = ml_sim.serve().await.unwrap();
        let (woo, woo_run) = common::woo_shop(0).await;

        let mut ml_settings = tidemark_mercadolibre::Settings::new("MLA", 207_035_636, "5503910054141466");
        ml_settings.base_url = ml_run.base_url.clone();
        ml_settings.default_category_id = Some("MLA1234".into());
        ml_settings.requests_per_second = 500.0;
        let ml_conn: Arc<dyn Connector> = Arc::new(
            tidemark_mercadolibre::MercadoLibre::new(
                ml_settings,
                tidemark_mercadolibre::Tokens {
                    client_secret: "ml_secret_test".into(),
                    access_token: "APP_USR-initial".into(),
                    refresh_token: "TG-initial".into(),
                },
                ConnectionId(1),
                Arc::new(KeepTokens),
            )
            .unwrap(),
        );
        let woo_conn = common::woo_connector(&woo_run.base_url, |_| {});
        let mut world = World::new(store.clone()).await;
        let ml = world.connect("MercadoLibre", PlatformKind::Mercadolibre, ConnectionSettings::default(), ml_conn.clone()).await;
        let w = world
            .connect(
                "Woo",
                PlatformKind::Woocommerce,
                ConnectionSettings {
                    clone_new_products: true,
                    clone_new_orders: true,
                    order_defaults: OrderDefaults {
                        status: Some(OrderStatus::Processing),
                        number_prefix: Some("ML-".into()),
                        customer_email: Some("orders@shop.example".into()),
                        note: Some("Sold on MercadoLibre".into()),
                        ..OrderDefaults::default()
                    },
                    ..ConnectionSettings::default()
                },
                woo_conn.clone(),
            )
            .await;
        let engine = world.engine();

        // The catalogue first: MercadoLibre → WooCommerce.
        let first = fetch(&engine, ml).await;
        assert_eq!(first.counts.new, 6, "{:?}", first.counts);
        assert_eq!(send(&engine, w).await.counts.inserted, 6);
        assert_eq!(fetch(&engine, w).await.counts.changed, 0);

        // A buyer takes 2 units of an item's first variation on MercadoLibre, shipped by the
        // seller (so the seller sets its tracking).
        let item = ml_sim.item_ids()[0].clone();
        let item_json = ml_sim.item_json(&ml_run.base_url, &item).unwrap();
        let variation = item_json["variations"][0]["id"].as_u64();
        let sku = item_json["variations"][0]["attributes"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == "SELLER_SKU"))
            .and_then(|x| x["value_name"].as_str())
            .map(str::to_owned)
            .or_else(|| item_json["variations"][0]["seller_custom_field"].as_str().map(str::to_owned))
            .expect("variation SKU");
        let before = woo.stock_of(&sku).unwrap();
        let order_id = ml_sim
            .place_order(&PlaceOrder { item_id: item.clone(), variation_id: variation, quantity: 2 })
            .unwrap();
        assert!(ml_sim.set_shipping_mode(order_id, "me1"));

        let fetched = fetch(&engine, ml).await;
        assert_eq!(fetched.counts.new, 1, "one new order: {:?}", fetched.counts);
        assert!(fetched.pending_for.contains(&w));
        let sent = send(&engine, w).await;
        assert!(sent.counts.inserted >= 1, "{:?}", sent.counts);
        // Anything the order's copy set in motion (WooCommerce's own stock reduction, given
        // back) is sent too.
        send(&engine, w).await;

        // The order is on WooCommerce with the defaults, once.
        assert_eq!(woo.order_count(), 1);
        let on_woo = tidemark_store::Store::binding_by_internal(
            &store,
            w,
            RecordKind::Order,
            store
                .binding_by_external(ml, RecordKind::Order, &tidemark_core::ExternalId::new(order_id.to_string()))
                .await
                .unwrap()
                .expect("order bound on MercadoLibre")
                .internal_id,
            "",
        )
        .await
        .unwrap()
        .expect("order bound on WooCommerce");
        let record = woo_conn
            .fetch_one(ScanKind::Orders, &on_woo.external_id)
            .await
            .unwrap()
            .unwrap();
        let tidemark_core::RecordContent::Order(order) = &record.content else { panic!() };
        assert_eq!(order.status, OrderStatus::Processing);
        assert_eq!(order.buyer.email.as_deref(), Some("orders@shop.example"));
        assert_eq!(order.lines.len(), 1);
        assert_eq!(order.lines[0].quantity, 2);
        assert_eq!(order.lines[0].sku.as_ref().map(|s| s.as_str()), Some(sku.as_str()));

        // Stock: 2 fewer everywhere, not 4 on WooCommerce.
        let ml_stock = {
            let json = ml_sim.item_json(&ml_run.base_url, &item).unwrap();
            json["variations"][0]["available_quantity"].as_i64().unwrap()
        };
        assert_eq!(woo.stock_of(&sku), Some(before - 2), "WooCommerce gave back its own reduction");
        assert_eq!(ml_stock, before - 2);
        let woo_again = fetch(&engine, w).await;
        assert_eq!(woo_again.counts.changed, 0, "{:?}", woo_again.counts);

        // The merchant adds a tracking number on WooCommerce (the Shipment Tracking extension),
        // later than the sale: WooCommerce times have whole seconds, so a change within the
        // second of the sale (MercadoLibre times have milliseconds) would not be later.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let woo_order_id: u64 = on_woo.external_id.as_str().parse().unwrap();
        let client = tidemark_connector::http::client_builder().build().unwrap();
        let answer = client
            .put(format!("{}/wp-json/wc/v3/orders/{woo_order_id}", woo_run.base_url))
            .basic_auth("ck_test", Some("cs_test"))
            .json(&serde_json::json!({
                "meta_data": [{ "key": tidemark_woocommerce::mapping::TRACKING_META_KEY, "value": [
                    { "tracking_provider": "Correo Argentino", "tracking_number": "CA123456789AR",
                      "date_shipped": "1700000000" }
                ]}]
            }))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
        let fetched = fetch(&engine, w).await;
        assert_eq!(fetched.counts.changed, 1, "{:?}", fetched.counts);
        assert!(fetched.pending_for.contains(&ml));
        let sent = send(&engine, ml).await;
        assert_eq!(sent.counts.updated, 1, "{:?}", sent.counts);
        let shipment = client
            .get(format!("{}/orders/{order_id}", ml_run.base_url))
            .bearer_auth("APP_USR-initial")
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        let shipment_id = shipment["shipping"]["id"].as_u64().unwrap();
        let shipment = client
            .get(format!("{}/shipments/{shipment_id}", ml_run.base_url))
            .bearer_auth("APP_USR-initial")
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        assert_eq!(shipment["tracking_number"], "CA123456789AR");

        let stats = woo.harness.stats.snapshot();
        assert_eq!(stats.duplicate_creates, 0, "{stats:?}");
        assert_eq!(stats.product_deletes + stats.order_deletes, 0, "{stats:?}");
        ml_run.stop().await;
        woo_run.stop().await;
    }
}
