//! With 10 % of platform requests faulted (2 % each of 429, 5xx, timeout after the write was
//! applied, cut bodies and slow answers), every scan and every write still completes when
//! retried the way the engine retries, and the simulator counts no duplicate create and no
//! delete.

use crate::common;

use std::time::{Duration, Instant};

use common::{scan_with, setup_with};
use tidemark_connector::{
    Confirmed, Connector, ConnectorError, ScanScope, Write, WriteKey, WriteOp,
};
use tidemark_core::{ExternalId, Field, OrderStatus, RecordContent, ScanKind, Sku, sample};
use tidemark_sim::FaultConfig;
use tidemark_sim::woocommerce::WooConfig;
use tidemark_woocommerce::WooCommerce;

const TIMEOUT: Duration = Duration::from_millis(400);

async fn faulty(
    products: u64,
    seed: u64,
) -> (
    tidemark_sim::woocommerce::WooSim,
    tidemark_sim::RunningSim,
    WooCommerce,
) {
    let mut faults = FaultConfig::uniform(0.02, seed);
    faults.timeout_hold_ms = 600;
    faults.slow_ms = 50;
    let (sim, running, wc) = setup_with(
        WooConfig {
            products,
            ..WooConfig::default()
        },
        faults,
        |_| {},
    )
    .await;
    (sim, running, wc.with_timeouts(TIMEOUT).unwrap())
}

/// How the engine sends one write: a transient failure is retried with backoff; before a
/// create that may have applied is repeated, it is looked up (by SKU, or by number for an
/// order) and adopted when found.
async fn send(wc: &WooCommerce, op: WriteOp) -> Confirmed {
    let write = Write {
        key: WriteKey::from("w"),
        op,
    };
    let mut maybe_applied = false;
    for _ in 0..60 {
        if maybe_applied && let Some(found) = lookup(wc, &write.op).await {
            return Confirmed {
                record: found,
                adopted: true,
            };
        }
        let error = match wc.apply_writes(std::slice::from_ref(&write)).await {
            Ok(mut results) => match results.pop().unwrap().outcome {
                Ok(confirmed) => return confirmed,
                Err(e) => e,
            },
            Err(e) => e,
        };
        assert!(
            error.is_retryable(),
            "{} failed for good: {error}",
            write.op.name()
        );
        maybe_applied |= error.is_maybe_applied();
        tokio::time::sleep(
            error
                .retry_hint()
                .unwrap_or(Duration::from_millis(20))
                .min(Duration::from_secs(2)),
        )
        .await;
    }
    panic!("{} never completed", write.op.name())
}

/// The engine's look-up before repeating a create; lookup errors count as "not known yet".
async fn lookup(wc: &WooCommerce, op: &WriteOp) -> Option<tidemark_core::ExternalRecord> {
    match op {
        WriteOp::CreateProduct { product } => {
            let sku = product
                .sku
                .clone()
                .or_else(|| product.variants.first().and_then(|v| v.sku.clone()))?;
            wc.find_by_sku(&sku).await.ok().flatten()
        }
        WriteOp::CreateOrder { order } => {
            wc.find_order_by_number(&order.number).await.ok().flatten()
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_complete_under_ten_percent_faults() {
    let (sim, _running, wc) = faulty(250, 11).await;
    let started = Instant::now();
    let mut retries = 0;
    for round in 0..2 {
        let seen = scan_with(&wc, ScanKind::Products, ScanScope::Full, |_| {}).await;
        assert_eq!(seen.repeated(), vec![], "round {round}");
        assert_eq!(seen.records.len(), 250, "round {round}");
        retries += seen.page_retries;
        let orders = scan_with(&wc, ScanKind::Orders, ScanScope::Full, |_| {}).await;
        assert_eq!(orders.records.len(), sim.order_count(), "round {round}");
        retries += orders.page_retries;
    }
    let stats = sim.harness.stats.snapshot();
    eprintln!(
        "2 × (250 products + orders) in {:?}: {} requests, faults {:?}, {retries} page retries",
        started.elapsed(),
        stats.requests,
        stats.faults
    );
    assert!(
        stats.faults.values().sum::<u64>() > 20,
        "{:?}",
        stats.faults
    );
    assert_eq!(stats.duplicate_creates, 0);
    assert_eq!(stats.product_deletes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_complete_under_ten_percent_faults_without_duplicates() {
    let (sim, _running, wc) = faulty(40, 29).await;
    let products_before = sim.product_count();
    let orders_before = sim.order_count();
    let started = Instant::now();

    // Creates: simple and variable, each read back.
    let mut created = Vec::new();
    for n in 0..12u64 {
        let mut p = sample::product(70_000 + n);
        if n % 2 == 0 {
            p.variants.truncate(1);
            p.variants[0].options.clear();
            p.sku = p.variants[0].sku.clone();
        } else {
            p.variants.truncate(4);
        }
        let done = send(&wc, WriteOp::CreateProduct { product: p.clone() }).await;
        let RecordContent::Product(got) = &done.record.content else {
            panic!()
        };
        let skus = |p: &tidemark_core::Product| -> Vec<Option<Sku>> {
            p.variants.iter().map(|v| v.sku.clone()).collect()
        };
        assert_eq!(skus(got), skus(&p), "create {n}");
        created.push(done.record.external_id.clone());
    }
    assert_eq!(sim.product_count(), products_before + 12);

    // Updates by id (title and price).
    for (n, id) in created.iter().enumerate() {
        let current = wc.fetch_one(ScanKind::Products, id).await;
        let current = match current {
            Ok(Some(r)) => r,
            _ => loop_fetch(&wc, id).await,
        };
        let RecordContent::Product(mut p) = current.content else {
            panic!()
        };
        p.title = format!("Updated {n}");
        p.variants[0].price = Some(rust_decimal::Decimal::new(1000 + n as i64, 2));
        p.variants[0].compare_at_price = None;
        send(
            &wc,
            WriteOp::UpdateProduct {
                external_id: id.clone(),
                product: p,
                fields: [Field::Title, Field::Price].into_iter().collect(),
                stock: vec![],
            },
        )
        .await;
        let RecordContent::Product(back) = loop_fetch(&wc, id).await.content else {
            panic!()
        };
        assert_eq!(back.title, format!("Updated {n}"));
    }

    // Order creates, looked up by number before any repeat.
    let sku = sim.all_skus()[0].clone();
    for n in 0..8 {
        let mut o = sample::order(n);
        o.number = format!("TM-{n}");
        o.status = OrderStatus::Processing;
        o.shipments.clear();
        o.lines.truncate(1);
        o.lines[0].sku = Some(Sku(sku.clone()));
        send(&wc, WriteOp::CreateOrder { order: o }).await;
    }
    assert_eq!(
        sim.order_count(),
        orders_before + 8,
        "no order created twice"
    );

    let stats = sim.harness.stats.snapshot();
    eprintln!(
        "writes under faults in {:?}: {} requests, faults {:?}",
        started.elapsed(),
        stats.requests,
        stats.faults
    );
    assert!(
        stats.faults.values().sum::<u64>() > 10,
        "{:?}",
        stats.faults
    );
    assert_eq!(stats.duplicate_creates, 0);
    assert_eq!(stats.product_deletes, 0);
    assert_eq!(sim.product_count(), products_before + 12);
}

async fn loop_fetch(wc: &WooCommerce, id: &ExternalId) -> tidemark_core::ExternalRecord {
    for _ in 0..30 {
        match wc.fetch_one(ScanKind::Products, id).await {
            Ok(Some(r)) => return r,
            Ok(None) => panic!("{id} is gone"),
            Err(e @ (ConnectorError::Transient { .. } | ConnectorError::RateLimited { .. })) => {
                tokio::time::sleep(
                    e.retry_hint()
                        .unwrap_or(Duration::from_millis(20))
                        .min(Duration::from_secs(2)),
                )
                .await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{id} never readable")
}

/// Variable products without a product-level SKU (as Shopify's are), created under faults
/// (lost answers included) and each create sent twice: exactly one product apiece.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sku_less_variable_creates_under_faults_and_repeats_make_one_product_each() {
    let (sim, _running, wc) = faulty(10, 41).await;
    let before = sim.product_count();
    let mut ids = Vec::new();
    for n in 0..8u64 {
        let mut p = sample::product(71_000 + n);
        p.variants.truncate(3);
        p.sku = None;
        let first = send(&wc, WriteOp::CreateProduct { product: p.clone() }).await;
        let again = send(&wc, WriteOp::CreateProduct { product: p.clone() }).await;
        assert!(again.adopted, "create {n} repeated");
        assert_eq!(again.record.external_id, first.record.external_id);
        let RecordContent::Product(got) = &again.record.content else {
            panic!()
        };
        let skus: Vec<_> = p.variants.iter().map(|v| v.sku.clone()).collect();
        let got_skus: Vec<_> = got.variants.iter().map(|v| v.sku.clone()).collect();
        assert_eq!(got_skus, skus, "create {n}");
        ids.push(first.record.external_id);
    }
    assert_eq!(
        sim.product_count(),
        before + 8,
        "exactly one product per create"
    );
    let stats = sim.harness.stats.snapshot();
    eprintln!("sku-less creates under faults: faults {:?}", stats.faults);
    assert!(stats.faults.values().sum::<u64>() > 3, "{:?}", stats.faults);
    assert_eq!(stats.duplicate_creates, 0);
    assert_eq!(stats.product_deletes, 0);
}
