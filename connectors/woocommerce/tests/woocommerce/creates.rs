//! Product creates that must not duplicate: a variable product without a product-level SKU
//! (every product that comes from Shopify) and a simple one without any SKU, when the answer
//! to the create is lost, when the create is repeated, and when its variations fail after the
//! parent exists.

use crate::common;

use common::setup;
use serde_json::Value;
use tidemark_connector::{Confirmed, Connector, ConnectorError, Write, WriteKey, WriteOp};
use tidemark_core::{ExternalRecord, Field, Product, RecordContent, Sku, sample};
use tidemark_sim::FaultConfig;
use tidemark_sim::woocommerce::Scripted;
use tidemark_woocommerce::WooCommerce;

async fn outcome(wc: &WooCommerce, op: WriteOp) -> Result<Confirmed, ConnectorError> {
    let mut results = wc
        .apply_writes(&[Write {
            key: WriteKey::from("w1"),
            op,
        }])
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    results.pop().unwrap().outcome
}

fn product(record: &ExternalRecord) -> &Product {
    match &record.content {
        RecordContent::Product(p) => p,
        _ => panic!("not a product"),
    }
}

/// A variable product as Shopify gives it: no product-level SKU.
fn sku_less_variable(seed: u64) -> Product {
    let mut p = sample::product(seed);
    p.variants.truncate(3);
    assert!(p.variants.len() >= 2);
    p.sku = None;
    p
}

fn variant_skus(p: &Product) -> Vec<Option<Sku>> {
    p.variants.iter().map(|v| v.sku.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_of_a_sku_less_variable_product_adopts_the_first() {
    let (sim, _running, wc) = setup(10, FaultConfig::none()).await;
    let before = sim.product_count();
    let p = sku_less_variable(91_001);
    sim.script("POST", "products", 0, Scripted::AfterApply);
    let done = outcome(&wc, WriteOp::CreateProduct { product: p.clone() })
        .await
        .unwrap();
    assert_eq!(sim.scripted_left(), 0);
    assert_eq!(sim.product_count(), before + 1, "exactly one product");
    assert_eq!(variant_skus(product(&done.record)), variant_skus(&p));
    // The derived parent SKU does not leak into the canonical record.
    assert_eq!(product(&done.record).sku, None);
    let stats = sim.harness.stats.snapshot();
    assert_eq!(stats.duplicate_creates, 0);
    assert_eq!(stats.product_deletes, 0);

    // The engine's look-up before repeating a create finds it by the first variant's SKU,
    // even though `?sku=` only matches product-level SKUs.
    let first = p.variants[0].sku.clone().unwrap();
    let found = wc.find_by_sku(&first).await.unwrap().unwrap();
    assert_eq!(found.external_id, done.record.external_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_create_of_a_sku_less_variable_product_adopts_it() {
    let (sim, _running, wc) = setup(10, FaultConfig::none()).await;
    let before = sim.product_count();
    let p = sku_less_variable(91_002);
    let first = outcome(&wc, WriteOp::CreateProduct { product: p.clone() })
        .await
        .unwrap();
    assert!(!first.adopted);
    let again = outcome(&wc, WriteOp::CreateProduct { product: p.clone() })
        .await
        .unwrap();
    assert!(again.adopted);
    assert_eq!(again.record.external_id, first.record.external_id);
    assert_eq!(variant_skus(product(&again.record)), variant_skus(&p));
    assert_eq!(sim.product_count(), before + 1);
    assert_eq!(sim.harness.stats.snapshot().duplicate_creates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sku_less_simple_product_whose_create_may_have_applied_is_not_posted_again() {
    let (sim, _running, wc) = setup(10, FaultConfig::none()).await;
    let before = sim.product_count();
    let mut p = sample::product(91_003);
    p.variants.truncate(1);
    p.variants[0].options.clear();
    p.variants[0].sku = None;
    p.sku = None;
    sim.script("POST", "products", 0, Scripted::AfterApply);
    let error = outcome(&wc, WriteOp::CreateProduct { product: p })
        .await
        .unwrap_err();
    assert!(error.is_maybe_applied(), "{error}");
    assert_eq!(sim.product_count(), before + 1, "posted once");
    assert_eq!(sim.harness.stats.snapshot().duplicate_creates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variations_failing_after_the_parent_exists_confirm_the_parent_and_an_update_adds_them() {
    let (sim, _running, wc) = setup(10, FaultConfig::none()).await;
    let before = sim.product_count();
    let p = sku_less_variable(91_004);
    for _ in 0..6 {
        sim.script(
            "POST",
            "products/*/variations/batch",
            0,
            Scripted::Before(500),
        );
    }
    let done = outcome(&wc, WriteOp::CreateProduct { product: p.clone() })
        .await
        .expect("the parent exists: the create is confirmed, not failed");
    assert!(!done.adopted);
    assert!(product(&done.record).variants.is_empty());
    assert_eq!(sim.product_count(), before + 1);

    // The engine binds the parent; an update with the variants adds them.
    let id = done.record.external_id.clone();
    let fixed = outcome(
        &wc,
        WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p.clone(),
            fields: [Field::Variants].into_iter().collect(),
            stock: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(variant_skus(product(&fixed.record)), variant_skus(&p));
    assert_eq!(sim.product_count(), before + 1);
    assert_eq!(sim.harness.stats.snapshot().duplicate_creates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variation_sku_held_by_another_product_is_not_adopted() {
    let (sim, _running, wc) = setup(10, FaultConfig::none()).await;
    let before = sim.product_count();
    let other = sim.product_ids()[0];
    let taken: Vec<Value> = sim.product_json("http://x", other).unwrap()["_variations"]
        .as_array()
        .unwrap()
        .clone();
    let taken_sku = taken[0]["sku"].as_str().unwrap().to_owned();
    let mut p = sku_less_variable(91_005);
    p.variants[1].sku = Some(Sku(taken_sku.clone()));
    let done = outcome(&wc, WriteOp::CreateProduct { product: p.clone() })
        .await
        .unwrap();
    let got = product(&done.record);
    // The colliding variant is missing (its SKU belongs to another product); the others exist.
    assert_eq!(got.variants.len(), 2);
    assert!(
        got.variants
            .iter()
            .all(|v| v.sku.as_ref().map(|s| s.0.as_str()) != Some(taken_sku.as_str()))
    );
    assert_eq!(sim.product_count(), before + 1);
    // The other product still has its variation.
    let still = sim.product_json("http://x", other).unwrap();
    assert!(
        still["_variations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["sku"] == taken_sku.as_str())
    );
    // An update trying to add it again surfaces the refusal.
    let error = outcome(
        &wc,
        WriteOp::UpdateProduct {
            external_id: done.record.external_id.clone(),
            product: p,
            fields: [Field::Variants].into_iter().collect(),
            stock: vec![],
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Rejected { code, .. } if code == "product_invalid_sku"),
        "{error}"
    );
}
