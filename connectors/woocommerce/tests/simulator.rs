//! The connector against the WooCommerce simulator on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use tidemark_connector::{Connector, ScanScope};
use tidemark_core::{RecordContent, ScanKind, Timestamp};
use tidemark_sim::FaultConfig;
use tidemark_sim::woocommerce::{Edit, WooConfig, WooSim};
use tidemark_woocommerce::{Keys, Settings, WooCommerce};

async fn setup(
    products: u64,
    faults: FaultConfig,
) -> (WooSim, tidemark_sim::RunningSim, WooCommerce) {
    let sim = WooSim::new(
        WooConfig {
            products,
            ..WooConfig::default()
        },
        faults,
    );
    let running = sim.serve().await.unwrap();
    let keys = Keys {
        consumer_key: "ck_test".into(),
        consumer_secret: "cs_test".into(),
        webhook_secret: Some("whsec_test".into()),
    };
    let wc = WooCommerce::new(Settings::new(running.base_url.clone()), keys).unwrap();
    (sim, running, wc)
}

/// Scans to the end; returns records by id (counting repeats) and the max updated_at.
async fn scan(
    wc: &WooCommerce,
    scope: ScanScope,
) -> (BTreeMap<String, (usize, RecordContent)>, Option<Timestamp>) {
    let mut out: BTreeMap<String, (usize, RecordContent)> = BTreeMap::new();
    let mut cursor = None;
    let mut max = None;
    loop {
        let page = wc
            .scan_page(ScanKind::Products, &scope, cursor.as_ref())
            .await
            .unwrap();
        max = max.max(page.max_updated_at);
        for r in page.records {
            let e = out
                .entry(r.external_id.0.clone())
                .or_insert((0, r.content.clone()));
            e.0 += 1;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    (out, max)
}

#[tokio::test]
async fn full_scan_of_5000_returns_each_product_once_with_variants_and_images() {
    let (sim, running, wc) = setup(5000, FaultConfig::none()).await;
    let (seen, _) = scan(&wc, ScanScope::Full).await;
    assert_eq!(seen.len(), 5000);
    for (id, (count, content)) in &seen {
        assert_eq!(*count, 1, "product {id} seen {count} times");
        let RecordContent::Product(p) = content else {
            panic!()
        };
        let json = sim
            .product_json(&running.base_url, id.parse().unwrap())
            .unwrap();
        let variations = json["_variations"].as_array().unwrap().len().max(1);
        assert_eq!(p.variants.len(), variations, "{id}");
        assert_eq!(
            p.images.len(),
            json["images"].as_array().unwrap().len(),
            "{id}"
        );
    }
}

#[tokio::test]
async fn incremental_scan_returns_the_edited_products() {
    let (sim, _running, wc) = setup(300, FaultConfig::none()).await;
    let (_, clock) = scan(&wc, ScanScope::Full).await;
    let ids = sim.product_ids();
    let edited: Vec<u64> = ids.iter().step_by(15).take(20).copied().collect();
    for id in &edited {
        assert!(sim.edit_product(
            *id,
            &Edit {
                title: Some(format!("Edited {id}")),
                ..Edit::default()
            }
        ));
    }
    // Seeded products are all older than the clock; edits are stamped now.
    let since = clock.unwrap();
    let (seen, _) = scan(&wc, ScanScope::Incremental { since }).await;
    let mut got: Vec<u64> = seen.keys().map(|k| k.parse().unwrap()).collect();
    got.sort();
    let mut want = edited.clone();
    want.sort();
    assert_eq!(got, want);
}
