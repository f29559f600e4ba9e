//! Shared set-up of the connector tests against the WooCommerce simulator.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use tidemark_connector::{
    Connector, ConnectorError, Cursor, ScanPage, ScanScope, Write, WriteKey, WriteOp,
};
use tidemark_core::{ExternalRecord, ScanKind, Timestamp};
use tidemark_sim::woocommerce::{WooConfig, WooSim};
use tidemark_sim::{FaultConfig, RunningSim};
use tidemark_woocommerce::{Keys, Settings, WooCommerce};

pub fn keys() -> Keys {
    Keys {
        consumer_key: "ck_test".into(),
        consumer_secret: "cs_test".into(),
        webhook_secret: Some("whsec_test".into()),
    }
}

/// A simulator of `products` products and a connector on it (variations fetched 32 at a time:
/// the simulator is not a PHP shop).
pub async fn setup(products: u64, faults: FaultConfig) -> (WooSim, RunningSim, WooCommerce) {
    setup_with(
        WooConfig {
            products,
            ..WooConfig::default()
        },
        faults,
        |_| {},
    )
    .await
}

pub async fn setup_with(
    config: WooConfig,
    faults: FaultConfig,
    tweak: impl FnOnce(&mut Settings),
) -> (WooSim, RunningSim, WooCommerce) {
    let sim = WooSim::new(config, faults);
    let running = sim.serve().await.unwrap();
    let mut settings = Settings::new(running.base_url.clone());
    settings.variation_concurrency = 32;
    tweak(&mut settings);
    let wc = WooCommerce::new(settings, keys()).unwrap();
    (sim, running, wc)
}

/// What a scan returned: records by id with how often each came, and the largest
/// `updated_at` seen (the clock the engine would keep).
#[derive(Debug, Default)]
pub struct Scanned {
    pub records: BTreeMap<u64, (usize, ExternalRecord)>,
    pub clock: Option<Timestamp>,
    pub pages: usize,
    pub page_retries: usize,
}

impl Scanned {
    pub fn repeated(&self) -> Vec<(u64, usize)> {
        self.records
            .iter()
            .filter(|(_, (n, _))| *n != 1)
            .map(|(id, (n, _))| (*id, *n))
            .collect()
    }

    pub fn ids(&self) -> Vec<u64> {
        self.records.keys().copied().collect()
    }
}

/// Scans to the end, calling `between` after each page with the page number (1-based). A
/// transient error repeats the page from the same cursor, as the engine does; anything else
/// fails the test.
pub async fn scan_with(
    wc: &WooCommerce,
    kind: ScanKind,
    scope: ScanScope,
    mut between: impl FnMut(usize),
) -> Scanned {
    let mut out = Scanned::default();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = page_retrying(wc, kind, &scope, cursor.as_ref(), &mut out.page_retries).await;
        out.pages += 1;
        out.clock = out.clock.max(page.max_updated_at);
        for r in page.records {
            let id: u64 = r.external_id.as_str().parse().unwrap();
            let entry = out.records.entry(id).or_insert((0, r.clone()));
            entry.0 += 1;
            entry.1 = r;
        }
        between(out.pages);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out
}

pub async fn scan(wc: &WooCommerce, scope: ScanScope) -> Scanned {
    scan_with(wc, ScanKind::Products, scope, |_| {}).await
}

async fn page_retrying(
    wc: &WooCommerce,
    kind: ScanKind,
    scope: &ScanScope,
    cursor: Option<&Cursor>,
    retries: &mut usize,
) -> ScanPage {
    for _ in 0..50 {
        match wc.scan_page(kind, scope, cursor).await {
            Ok(page) => return page,
            Err(e @ (ConnectorError::Transient { .. } | ConnectorError::RateLimited { .. })) => {
                *retries += 1;
                let wait = e.retry_hint().unwrap_or(Duration::from_millis(10));
                tokio::time::sleep(wait.min(Duration::from_secs(2))).await;
            }
            Err(e) => panic!("scan page failed: {e}"),
        }
    }
    panic!("a scan page kept failing")
}

/// The engine's incremental start: the clock minus WooCommerce's 2-minute overlap.
pub fn since(clock: Timestamp) -> Timestamp {
    Timestamp::from_millis(clock.millis() - 120_000)
}

/// Applies one write that must succeed; the record it confirms.
pub async fn write_one(wc: &WooCommerce, op: WriteOp) -> ExternalRecord {
    let results = wc
        .apply_writes(&[Write {
            key: WriteKey::from("w"),
            op,
        }])
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    results[0].outcome.clone().unwrap().record
}
