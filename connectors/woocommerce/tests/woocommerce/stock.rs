//! Stock moves are not idempotent: once one was sent, a later failure of the same write is
//! reported as possibly applied (the caller re-fetches), never as a plain transient error the
//! caller would answer by repeating the write and moving stock twice.

use crate::common;

use common::setup;
use tidemark_connector::http::RetryPolicy;
use tidemark_connector::{Connector, ConnectorError, Write, WriteKey, WriteOp};
use tidemark_core::{ExternalId, Field, RecordContent, ScanKind, Sku, StockChange};
use tidemark_sim::FaultConfig;
use tidemark_sim::woocommerce::{Scripted, WooSim};
use tidemark_woocommerce::WooCommerce;

/// Moves of -1 on the first two variants of the first seeded (variable) product.
async fn two_moves(sim: &WooSim, wc: &WooCommerce) -> (WriteOp, Vec<(String, i64)>) {
    let id = ExternalId::new(sim.product_ids()[0].to_string());
    let current = wc
        .fetch_one(ScanKind::Products, &id)
        .await
        .unwrap()
        .unwrap();
    let RecordContent::Product(p) = current.content else {
        panic!()
    };
    let mut changes = Vec::new();
    let mut before = Vec::new();
    for v in p.variants.iter().take(2) {
        let sku = v.sku.clone().unwrap();
        let old = sim.stock_of(&sku.0).unwrap();
        before.push((sku.0.clone(), old));
        changes.push(StockChange {
            variant: v.external_id.clone().unwrap(),
            sku: Some(Sku(sku.0.clone())),
            from: old,
            to: old - 1,
        });
    }
    let op = WriteOp::UpdateProduct {
        external_id: id,
        product: p,
        fields: [Field::Stock].into_iter().collect(),
        stock: changes,
    };
    (op, before)
}

async fn apply(wc: &WooCommerce, op: WriteOp) -> Result<(), ConnectorError> {
    let mut results = wc
        .apply_writes(&[Write {
            key: WriteKey::from("s"),
            op,
        }])
        .await
        .unwrap();
    results.pop().unwrap().outcome.map(|_| ())
}

async fn connector() -> (WooSim, tidemark_sim::RunningSim, WooCommerce) {
    let (sim, running, wc) = setup(10, FaultConfig::none()).await;
    (sim, running, wc.with_retry(RetryPolicy::never()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_first_move_is_reported_as_maybe_applied() {
    let (sim, _running, wc) = connector().await;
    let (op, before) = two_moves(&sim, &wc).await;
    // The first move's read passes; the second move's read fails every attempt.
    for n in 0..6 {
        sim.script(
            "GET",
            "products/*/variations/*",
            u32::from(n == 0),
            Scripted::Before(500),
        );
    }
    let error = apply(&wc, op).await.unwrap_err();
    assert!(error.is_maybe_applied(), "{error}");
    assert_eq!(sim.scripted_left(), 0);
    assert_eq!(
        sim.stock_of(&before[0].0),
        Some(before[0].1 - 1),
        "moved once"
    );
    assert_eq!(sim.stock_of(&before[1].0), Some(before[1].1), "not moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_back_failure_after_the_moves_is_reported_as_maybe_applied() {
    let (sim, _running, wc) = connector().await;
    let (op, before) = two_moves(&sim, &wc).await;
    // The update's first read of the product passes; the read-back after the moves fails.
    for n in 0..6 {
        sim.script(
            "GET",
            "products/*",
            u32::from(n == 0),
            Scripted::Before(503),
        );
    }
    let error = apply(&wc, op).await.unwrap_err();
    assert!(error.is_maybe_applied(), "{error}");
    for (sku, old) in &before {
        assert_eq!(sim.stock_of(sku), Some(old - 1), "{sku} moved once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_before_any_move_leaves_the_write_repeatable() {
    let (sim, _running, wc) = connector().await;
    let (op, before) = two_moves(&sim, &wc).await;
    for _ in 0..6 {
        sim.script("GET", "products/*/variations/*", 0, Scripted::Before(500));
    }
    let error = apply(&wc, op.clone()).await.unwrap_err();
    assert!(error.is_retryable() && !error.is_maybe_applied(), "{error}");
    for (sku, old) in &before {
        assert_eq!(sim.stock_of(sku), Some(*old));
    }
    // Repeating it moves each variant once.
    apply(&wc, op).await.unwrap();
    for (sku, old) in &before {
        assert_eq!(sim.stock_of(sku), Some(old - 1));
    }
}
