//! Scans against the WooCommerce simulator on loopback: full scans of 5,000 products (with the
//! `orderby=date` tie trap present and with index lag on), incremental scans after merchant
//! edits, and edits made while a scan runs.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use common::{Scanned, scan, scan_with, setup, since};
use serde_json::Value;
use tidemark_connector::ScanScope;
use tidemark_connector::http::{ApiRequest, HttpClient, HttpClientConfig};
use tidemark_core::{PlatformKind, RecordContent, ScanKind};
use tidemark_sim::FaultConfig;
use tidemark_sim::woocommerce::{Edit, ProductShape, WooSim};

/// Every product of the simulator came exactly once, with all its variants (by SKU, in id
/// order) and all its images (by attachment id, in gallery order).
fn assert_complete(sim: &WooSim, seen: &Scanned) {
    let shapes = sim.shapes();
    assert_eq!(seen.repeated(), vec![], "products seen more than once");
    let missing: Vec<u64> = shapes
        .keys()
        .filter(|id| !seen.records.contains_key(id))
        .copied()
        .collect();
    assert_eq!(missing, Vec::<u64>::new(), "products never seen");
    assert_eq!(seen.records.len(), shapes.len());
    for (id, (_, record)) in &seen.records {
        let RecordContent::Product(p) = &record.content else {
            panic!("{id} is not a product")
        };
        let shape: &ProductShape = &shapes[id];
        let skus: Vec<String> = p
            .variants
            .iter()
            .map(|v| v.sku.as_ref().map(|s| s.0.clone()).unwrap_or_default())
            .collect();
        if shape.variation_skus.is_empty() {
            assert_eq!(skus, vec![shape.sku.clone()], "simple product {id}");
        } else {
            assert_eq!(skus, shape.variation_skus, "variants of {id}");
        }
        let images: Vec<u64> = p
            .images
            .iter()
            .map(|i| i.external_id.as_ref().unwrap().as_str().parse().unwrap())
            .collect();
        assert_eq!(images, shape.images, "images of {id}");
    }
}

async fn raw_client(base_url: &str) -> HttpClient {
    let base = url::Url::parse(&format!("{base_url}/wp-json/wc/v3/")).unwrap();
    HttpClient::new(HttpClientConfig::new(PlatformKind::Woocommerce, base)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_scan_of_5000_returns_each_product_once_with_variants_and_images() {
    let (sim, _running, wc) = setup(5000, FaultConfig::none()).await;
    let started = Instant::now();
    let seen = scan(&wc, ScanScope::Full).await;
    eprintln!(
        "full scan of 5000 products: {} pages in {:?}",
        seen.pages,
        started.elapsed()
    );
    assert_complete(&sim, &seen);
    let stats = sim.harness.stats.snapshot();
    // One listing per 100 products plus one variations request per variable product.
    eprintln!("{} requests", stats.requests);
    assert_eq!(stats.requests, 51 + 5000 - 5000 / 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_scan_is_immune_to_orderby_date_ties() {
    let (sim, running, wc) = setup(1000, FaultConfig::none()).await;
    // The trap is live: paging by the default `orderby=date` over the same shop repeats some
    // products and misses others (import batches share their creation second).
    let raw = raw_client(&running.base_url).await;
    let mut by_date: BTreeMap<u64, usize> = BTreeMap::new();
    for page in 1..=34 {
        let answer = raw
            .send(
                ApiRequest::get("products")
                    .query("per_page", 30)
                    .query("page", page)
                    .query("consumer_key", "ck_test")
                    .query("consumer_secret", "cs_test"),
            )
            .await
            .unwrap();
        for p in answer.json::<Vec<Value>>().unwrap() {
            *by_date.entry(p["id"].as_u64().unwrap()).or_default() += 1;
        }
    }
    let repeated = by_date.values().filter(|n| **n > 1).count();
    assert!(
        repeated > 0 && by_date.len() < 1000,
        "the simulator should reproduce the date-tie trap (repeated {repeated}, distinct {})",
        by_date.len()
    );
    // The connector pages by id: exactly once each, twice over.
    for _ in 0..2 {
        let seen = scan(&wc, ScanScope::Full).await;
        assert_complete(&sim, &seen);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_scan_of_5000_with_index_lag_returns_each_product_once() {
    let faults = FaultConfig {
        index_lag_ms: 60_000,
        ..FaultConfig::none()
    };
    let (sim, _running, wc) = setup(5000, faults).await;
    // Fresh merchant writes the listing index has not caught up with, spread over the
    // catalogue: new images, price and title changes.
    let ids = sim.product_ids();
    for (n, id) in ids.iter().step_by(97).enumerate() {
        let edit = Edit {
            title: Some(format!("Lagged {id}")),
            add_image: n % 2 == 0,
            ..Edit::default()
        };
        assert!(sim.edit_product(*id, &edit));
    }
    let started = Instant::now();
    let seen = scan(&wc, ScanScope::Full).await;
    eprintln!("full scan of 5000 with index lag: {:?}", started.elapsed());
    assert_complete(&sim, &seen);
    // What the scan read is the current record (reads are not lagged, only the index is).
    let edited = ids[0];
    let RecordContent::Product(p) = &seen.records[&edited].1.content else {
        panic!()
    };
    assert_eq!(p.title, format!("Lagged {edited}"));
}

/// The set an incremental scan from `since` must return: every product the simulator has
/// modified after it.
fn modified_after(sim: &WooSim, since: tidemark_core::Timestamp) -> BTreeSet<u64> {
    sim.shapes()
        .into_iter()
        .filter(|(_, s)| s.modified * 1000 > since.millis())
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_scan_returns_the_20_edited_products() {
    let (sim, _running, wc) = setup(300, FaultConfig::none()).await;
    let full = scan(&wc, ScanScope::Full).await;
    let clock = full.clock.unwrap();
    let from = since(clock);
    // Seeded products are dated 2025; the overlap covers the tail of the last import batch
    // only, not the whole shop.
    let in_overlap = modified_after(&sim, from);
    assert!(
        !in_overlap.is_empty() && in_overlap.len() < 150,
        "{}",
        in_overlap.len()
    );

    let ids = sim.product_ids();
    let edited: BTreeSet<u64> = ids.iter().step_by(15).take(20).copied().collect();
    assert_eq!(edited.len(), 20);
    for id in &edited {
        let edit = Edit {
            title: Some(format!("Edited {id}")),
            ..Edit::default()
        };
        assert!(sim.edit_product(*id, &edit));
    }
    let seen = scan(&wc, ScanScope::Incremental { since: from }).await;
    assert_eq!(seen.repeated(), vec![]);
    let got: BTreeSet<u64> = seen.ids().into_iter().collect();
    assert!(
        edited.is_subset(&got),
        "missed {:?}",
        edited.difference(&got)
    );
    let want: BTreeSet<u64> = edited.union(&in_overlap).copied().collect();
    assert_eq!(got, want);
    for id in &edited {
        let RecordContent::Product(p) = &seen.records[id].1.content else {
            panic!()
        };
        assert_eq!(p.title, format!("Edited {id}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_made_during_a_scan_is_caught_by_the_next_incremental_scan() {
    let (sim, _running, wc) = setup(1000, FaultConfig::none()).await;
    let ids = sim.product_ids();
    // Round 1, a full scan: after page 3, edit a product already passed (page 1) and one not
    // reached yet (page 8).
    let behind = ids[50];
    let ahead = ids[750];
    let full = scan_with(&wc, ScanKind::Products, ScanScope::Full, |page| {
        if page == 3 {
            for (id, title) in [
                (behind, "Behind the cursor"),
                (ahead, "Ahead of the cursor"),
            ] {
                let edit = Edit {
                    title: Some(title.into()),
                    ..Edit::default()
                };
                assert!(sim.edit_product(id, &edit));
            }
        }
    })
    .await;
    assert_eq!(full.records.len(), 1000);
    assert_eq!(full.repeated(), vec![]);
    let title = |s: &Scanned, id: u64| match &s.records[&id].1.content {
        RecordContent::Product(p) => p.title.clone(),
        _ => panic!(),
    };
    assert_ne!(
        title(&full, behind),
        "Behind the cursor",
        "passed before the edit"
    );
    assert_eq!(title(&full, ahead), "Ahead of the cursor");

    // Round 2, incremental from the clock the full scan reached, minus the overlap: both
    // edits are there. While it runs, more edits land behind and ahead of its cursor.
    let clock = full.clock.unwrap();
    let behind2 = ids[5];
    let ahead2 = ids[990];
    let incremental = scan_with(
        &wc,
        ScanKind::Products,
        ScanScope::Incremental {
            since: since(clock),
        },
        |page| {
            if page == 1 {
                for id in [behind2, ahead2] {
                    let edit = Edit {
                        price: Some("12.34".into()),
                        variation_sku: first_variation_sku(&sim, id),
                        ..Edit::default()
                    };
                    assert!(sim.edit_product(id, &edit));
                }
            }
        },
    )
    .await;
    assert_eq!(incremental.repeated(), vec![]);
    assert_eq!(title(&incremental, behind), "Behind the cursor");
    assert_eq!(title(&incremental, ahead), "Ahead of the cursor");

    // Round 3: the next incremental scan catches the edits made during round 2.
    let clock = incremental.clock.unwrap().max(clock);
    let next = scan(
        &wc,
        ScanScope::Incremental {
            since: since(clock),
        },
    )
    .await;
    for id in [behind2, ahead2] {
        assert!(
            next.records.contains_key(&id),
            "edit of {id} during the previous scan was missed"
        );
        let RecordContent::Product(p) = &next.records[&id].1.content else {
            panic!()
        };
        assert!(
            p.variants
                .iter()
                .any(|v| v.price == Some("12.34".parse().unwrap())),
            "{id}"
        );
    }
}

fn first_variation_sku(sim: &WooSim, id: u64) -> Option<String> {
    sim.shapes().get(&id)?.variation_skus.first().cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_before_the_cursor_mid_scan_skip_nothing_after_it() {
    // 250 products in pages of 100; after page 2, 60 of the first 200 are deleted, which
    // pushes the third page's offset (199) past the 190 left.
    let (sim, _running, wc) = setup(250, FaultConfig::none()).await;
    let ids = sim.product_ids();
    let seen = scan_with(&wc, ScanKind::Products, ScanScope::Full, |page| {
        if page == 2 {
            for id in ids.iter().take(200).step_by(3).take(60) {
                assert!(sim.admin_delete_product(*id));
            }
        }
    })
    .await;
    assert_eq!(seen.repeated(), vec![]);
    let left: BTreeSet<u64> = sim.product_ids().into_iter().collect();
    assert_eq!(left.len(), 190);
    let missed: Vec<u64> = left
        .iter()
        .filter(|id| !seen.records.contains_key(id))
        .copied()
        .collect();
    assert_eq!(
        missed,
        Vec::<u64>::new(),
        "products after the cursor never returned"
    );

    // Deletes that leave the cursor in the middle of a page: stepped back, nothing skipped.
    let (sim, _running, wc) = setup(250, FaultConfig::none()).await;
    let ids = sim.product_ids();
    let seen = scan_with(&wc, ScanKind::Products, ScanScope::Full, |page| {
        if page == 1 {
            for id in ids.iter().take(100).skip(10).take(30) {
                assert!(sim.admin_delete_product(*id));
            }
        }
    })
    .await;
    assert_eq!(seen.repeated(), vec![]);
    assert_eq!(
        seen.records.len(),
        250,
        "the deleted ones were seen on page 1"
    );
    let left: BTreeSet<u64> = sim.product_ids().into_iter().collect();
    assert!(left.iter().all(|id| seen.records.contains_key(id)));
}
