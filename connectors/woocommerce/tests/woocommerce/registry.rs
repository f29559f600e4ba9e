//! The WooCommerce factory in the connector registry: built from settings JSON and
//! credentials, refusing unknown settings, out-of-range values and missing keys; the built
//! connector works against the simulator and keeps its keys out of `Debug`.

use std::sync::Arc;

use serde_json::json;
use tidemark_connector::{
    ConnectorRegistry, CredentialSink, Credentials, NoCredentialRotation, ScanScope, SettingsError,
};
use tidemark_core::{ConnectionId, PlatformKind, ScanKind};
use tidemark_sim::FaultConfig;
use tidemark_sim::woocommerce::{WooConfig, WooSim};
use tidemark_woocommerce::WooCommerceFactory;

fn registry() -> ConnectorRegistry {
    ConnectorRegistry::new().with(Arc::new(WooCommerceFactory))
}

fn sink() -> Arc<dyn CredentialSink> {
    Arc::new(NoCredentialRotation)
}

fn keys() -> Credentials {
    Credentials::new()
        .with("consumer_key", "ck_test")
        .with("consumer_secret", "cs_test")
        .with("webhook_secret", "whsec_test")
}

fn build(
    settings: serde_json::Value,
    credentials: &Credentials,
) -> Result<Arc<dyn tidemark_connector::Connector>, SettingsError> {
    registry().build(
        PlatformKind::Woocommerce,
        ConnectionId(7),
        &settings,
        credentials,
        &sink(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_from_settings_json_and_credentials_and_scans() {
    let sim = WooSim::new(
        WooConfig {
            products: 30,
            ..WooConfig::default()
        },
        FaultConfig::none(),
    );
    let running = sim.serve().await.unwrap();
    let connector = build(
        json!({
            "base_url": running.base_url,
            "per_page": 25,
            "variation_concurrency": 4,
            "timeout_secs": 10,
            "currency": "EUR",
            "query_string_auth": true,
        }),
        &keys(),
    )
    .unwrap();
    assert_eq!(connector.platform(), PlatformKind::Woocommerce);
    let caps = connector.capabilities();
    assert_eq!(caps.max_batch_size, 100);
    assert!(caps.scans(ScanKind::Orders));
    let page = connector
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 25);
    assert_eq!(page.total, Some(30));
    let debug = format!("{connector:?}");
    assert!(!debug.contains("cs_test"), "{debug}");
    assert!(!debug.contains("whsec_test"), "{debug}");

    // The schema the console renders names every setting the factory accepts.
    let schema = registry()
        .settings_schema(PlatformKind::Woocommerce)
        .unwrap();
    let text = serde_json::to_string(&schema).unwrap();
    for name in [
        "base_url",
        "api_path",
        "per_page",
        "currency",
        "query_string_auth",
        "variation_concurrency",
        "timeout_secs",
        "consumer_key",
        "consumer_secret",
        "webhook_secret",
    ] {
        assert!(
            text.contains(&format!("\"{name}\"")),
            "{name} not in {text}"
        );
    }
}

#[test]
fn refuses_unknown_or_out_of_range_settings_and_missing_keys() {
    let base = "https://shop.example";
    let err = build(json!({"base_url": base, "perpage": 50}), &keys()).unwrap_err();
    assert!(err.to_string().contains("perpage"), "{err}");
    for bad in [
        json!({"base_url": base, "per_page": 101}),
        json!({"base_url": base, "per_page": 0}),
        json!({"base_url": base, "variation_concurrency": 0}),
        json!({"base_url": base, "variation_concurrency": 65}),
        json!({"base_url": base, "timeout_secs": 0}),
    ] {
        assert!(build(bad.clone(), &keys()).is_err(), "{bad} accepted");
    }
    // A currency that is not one is refused, not replaced by USD.
    for bad in ["dollars", "", "US"] {
        let err = build(json!({"base_url": base, "currency": bad}), &keys()).unwrap_err();
        assert!(err.to_string().contains("currency"), "{bad}: {err}");
    }
    let mut settings = tidemark_woocommerce::Settings::new(base);
    settings.currency = "eur0".into();
    let keys_struct = tidemark_woocommerce::Keys {
        consumer_key: "ck".into(),
        consumer_secret: "cs".into(),
        webhook_secret: None,
    };
    assert!(tidemark_woocommerce::WooCommerce::new(settings, keys_struct).is_err());
    assert!(build(json!({}), &keys()).is_err(), "base_url is required");
    assert!(build(json!({"base_url": "not a url"}), &keys()).is_err());
    let no_secret = Credentials::new().with("consumer_key", "ck_test");
    assert!(build(json!({"base_url": base}), &no_secret).is_err());
    // Defaults fill in the rest.
    build(json!({"base_url": base}), &keys()).unwrap();
}
