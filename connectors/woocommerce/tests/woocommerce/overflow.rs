//! Absurd values from the shop or in a write are an error on that one record, never a panic,
//! and a variations listing that ignores paging ends instead of looping forever.

use crate::common;

use std::time::Duration;

use common::setup;
use rust_decimal::Decimal;
use serde_json::json;
use tidemark_connector::{Connector, ConnectorError, Write, WriteKey, WriteOp};
use tidemark_core::{Currency, ExternalId, ScanKind, Sku, sample};
use tidemark_sim::FaultConfig;
use tidemark_woocommerce::mapping;

const HUGE: &str = "79228162514264337593543950335";

fn rejected(result: Result<impl std::fmt::Debug, ConnectorError>) -> ConnectorError {
    let error = result.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Rejected { code, .. } if code == "value_out_of_range"),
        "{error}"
    );
    error
}

#[test]
fn an_absurd_weight_is_an_error_on_the_record() {
    let usd = Currency::parse("USD").unwrap();
    let simple = json!({"id": 5, "type": "simple", "name": "x", "weight": HUGE});
    rejected(mapping::product_from_wc(&simple, &[], usd));
    let parent = json!({"id": 6, "type": "variable", "name": "x"});
    let variation = json!({"id": 7, "sku": "V", "weight": HUGE});
    rejected(mapping::product_from_wc(&parent, &[variation], usd));
    // A sane one still reads.
    let fine = json!({"id": 5, "type": "simple", "name": "x", "weight": "1.25"});
    mapping::product_from_wc(&fine, &[], usd).unwrap();
}

#[test]
fn absurd_order_line_totals_are_an_error_on_the_record() {
    let order = json!({"id": 9, "status": "processing", "line_items": [
        {"quantity": 1, "subtotal": HUGE}, {"quantity": 1, "subtotal": HUGE}
    ]});
    rejected(mapping::order_from_wc(&order));
    let one = json!({"id": 9, "status": "processing", "line_items": [
        {"quantity": 3, "subtotal": HUGE}
    ]});
    mapping::order_from_wc(&one).unwrap();

    let mut o = sample::order(3);
    o.lines.truncate(1);
    o.lines[0].unit_price = Decimal::MAX;
    o.lines[0].quantity = 2;
    rejected(mapping::order_body(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_values_through_the_api_fail_one_record_only() {
    let (sim, _running, wc) = setup(10, FaultConfig::none()).await;
    // A plugin stored an absurd weight on a simple product (every 8th is simple).
    let id = sim.product_ids()[7];
    assert!(sim.set_raw_field(id, None, "weight", json!(HUGE)));
    rejected(
        wc.fetch_one(ScanKind::Products, &ExternalId::new(id.to_string()))
            .await,
    );
    // Another product still reads.
    let other = ExternalId::new(sim.product_ids()[0].to_string());
    assert!(
        wc.fetch_one(ScanKind::Products, &other)
            .await
            .unwrap()
            .is_some()
    );

    // An order create whose line total overflows is refused on its own; the batch goes on.
    let orders = sim.order_count();
    let mut bad = sample::order(4);
    bad.lines.truncate(1);
    bad.lines[0].unit_price = Decimal::MAX;
    bad.lines[0].quantity = 3;
    let mut good = sample::order(5);
    good.number = "TM-OK".into();
    good.lines.truncate(1);
    good.lines[0].sku = Some(Sku(sim.all_skus()[0].clone()));
    let results = wc
        .apply_writes(&[
            Write {
                key: WriteKey::from("bad"),
                op: WriteOp::CreateOrder { order: bad },
            },
            Write {
                key: WriteKey::from("good"),
                op: WriteOp::CreateOrder { order: good },
            },
        ])
        .await
        .unwrap();
    rejected(results[0].outcome.clone());
    results[1].outcome.clone().unwrap();
    assert_eq!(sim.order_count(), orders + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variations_listing_that_ignores_paging_ends_with_an_error() {
    let (sim, _running, wc) = setup(10, FaultConfig::none()).await;
    // A product with 150 variations (two pages).
    let mut p = sample::product(92_001);
    p.sku = Some(Sku("BIG".into()));
    let template = p.variants[0].clone();
    p.variants = (0..150)
        .map(|n| {
            let mut v = template.clone();
            v.sku = Some(Sku(format!("BIG-{n}")));
            v.options = [("size".to_owned(), format!("S{n}"))].into();
            v
        })
        .collect();
    let done = wc
        .apply_writes(&[Write {
            key: WriteKey::from("w"),
            op: WriteOp::CreateProduct { product: p },
        }])
        .await
        .unwrap()
        .pop()
        .unwrap()
        .outcome
        .unwrap();
    let id = done.record.external_id.clone();
    let read = wc
        .fetch_one(ScanKind::Products, &id)
        .await
        .unwrap()
        .unwrap();
    let tidemark_core::RecordContent::Product(got) = &read.content else {
        panic!()
    };
    assert_eq!(got.variants.len(), 150);

    sim.set_variation_paging_ignored(true);
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        wc.fetch_one(ScanKind::Products, &id),
    )
    .await
    .expect("the variations loop ends");
    let error = answer.unwrap_err();
    assert!(matches!(error, ConnectorError::Fatal { .. }), "{error}");
}
