//! The connector against the in-process Shopify simulator over loopback HTTP.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tidemark_connector::{Connector, Cursor, ScanScope, Write, WriteKey, WriteOp};
use tidemark_core::{Field, RecordContent, ScanKind, StockChange, Timestamp};
use tidemark_shopify::{Keys, Settings, Shopify};
use tidemark_sim::shopify::{ShopifyConfig, ShopifySim};
use tidemark_sim::{FaultConfig, RunningSim};

async fn start(
    products: u64,
    restore: f64,
    faults: FaultConfig,
) -> (ShopifySim, RunningSim, Shopify) {
    let sim = ShopifySim::new(
        ShopifyConfig {
            products,
            bucket_max: 2000.0,
            restore_rate: restore,
            media_processing_ms: 50,
            ..ShopifyConfig::default()
        },
        faults,
    );
    let running = sim.serve().await.expect("serve");
    let client = Shopify::new(
        Settings::new(format!("http://{}", running.addr)),
        Keys {
            access_token: "shpat_test".into(),
            webhook_secret: Some("whsec_test".into()),
        },
    )
    .expect("client");
    (sim, running, client)
}

async fn scan_all(client: &Shopify, scope: ScanScope) -> Vec<tidemark_core::ExternalRecord> {
    let mut cursor: Option<Cursor> = None;
    let mut out = Vec::new();
    loop {
        let page = client
            .scan_page(ScanKind::Products, &scope, cursor.as_ref())
            .await
            .expect("page");
        out.extend(page.records);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

fn assert_complete(sim: &ShopifySim, records: &[tidemark_core::ExternalRecord]) {
    let ids: Vec<&str> = records.iter().map(|r| r.external_id.as_str()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a product came twice");
    assert_eq!(unique.len(), sim.product_count());
    for r in records {
        let (title, variants, media) = sim.product_shape(r.external_id.as_str()).unwrap();
        let RecordContent::Product(p) = &r.content else {
            panic!()
        };
        assert_eq!(p.variants.len(), variants, "{}", r.external_id);
        assert_eq!(p.images.len(), media, "{}", r.external_id);
        assert_eq!(p.title, title);
    }
}

/// 5,000 products (the default bulk threshold: one bulk operation, its file streamed) with
/// 2 s of search-index lag and merchant edits landing during the scan: every product exactly
/// once, with all its variants and images.
#[tokio::test]
async fn full_scan_returns_every_product_once_with_all_variants_and_images() {
    let faults = FaultConfig {
        index_lag_ms: 2_000,
        ..FaultConfig::none()
    };
    let (sim, running, client) = start(5000, 1e6, faults).await;
    let gids = sim.product_gids();
    let mut records = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut edited = BTreeSet::new();
    loop {
        let page = client
            .scan_page(ScanKind::Products, &ScanScope::Full, cursor.as_ref())
            .await
            .expect("page");
        if cursor.is_none() {
            for g in gids.iter().step_by(50) {
                assert!(sim.edit_title(g, "edited during the scan"));
                edited.insert(g.clone());
            }
        }
        records.extend(page.records);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let ids: Vec<&str> = records.iter().map(|r| r.external_id.as_str()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a product came twice");
    assert_eq!(unique.len(), 5000);
    for r in &records {
        let (title, variants, media) = sim.product_shape(r.external_id.as_str()).unwrap();
        let RecordContent::Product(p) = &r.content else {
            panic!()
        };
        assert_eq!(p.variants.len(), variants, "{}", r.external_id);
        assert_eq!(p.images.len(), media, "{}", r.external_id);
        assert!(p.images.iter().all(|i| !i.src.is_empty()));
        if !edited.contains(r.external_id.as_str()) {
            assert_eq!(p.title, title);
        }
    }
    // Ids above 2^53 survive as text.
    assert!(
        records[0]
            .external_id
            .as_str()
            .starts_with("gid://shopify/Product/90071992547409")
    );
    running.stop().await;
}

/// Applies one write, repeating it (as the engine does) while the error is retryable. A create
/// that may have been applied is repeated too: the connector looks the handle up first and
/// adopts what the lost answer created.
async fn apply_until_done(client: &Shopify, write: &Write) -> tidemark_connector::Confirmed {
    let mut last = None;
    for _ in 0..30 {
        let results = client
            .apply_writes(std::slice::from_ref(write))
            .await
            .unwrap();
        let outcome = results.into_iter().next().unwrap().outcome;
        match outcome {
            Ok(confirmed) => return confirmed,
            Err(e) if e.is_retryable() || e.is_maybe_applied() => {
                tokio::time::sleep(
                    e.retry_hint()
                        .unwrap_or(Duration::from_millis(20))
                        .min(Duration::from_millis(500)),
                )
                .await;
                last = Some(e);
            }
            Err(e) => panic!("{}: {e}", write.key),
        }
    }
    panic!("{} never completed: {last:?}", write.key)
}

/// 10 % of requests faulted (rate limits, 5xx, timeouts after the write applied, truncated
/// bodies, slow answers: 2 % each) with 2 s of search-index lag, over 1,000 products: the full
/// scan is complete and exact, and creates and updates repeated after ambiguous failures land
/// once each.
#[tokio::test]
async fn with_ten_percent_faults_scans_and_writes_complete_without_duplicate_creates() {
    let faults = FaultConfig {
        rate_limit: 0.02,
        server_error: 0.02,
        timeout: 0.02,
        truncated: 0.02,
        slow: 0.02,
        slow_ms: 100,
        timeout_hold_ms: 300,
        index_lag_ms: 2_000,
        seed: 7,
    };
    let (sim, running, client) = start(1000, 1e6, faults).await;
    let records = scan_all(&client, ScanScope::Full).await;
    assert_complete(&sim, &records);
    assert!(sim.harness.stats.snapshot().faults.values().sum::<u64>() > 0);

    // Creates (each repeated until it answers) and title updates, under the same faults.
    let mut created = Vec::new();
    for i in 0..30u64 {
        let mut product = tidemark_core::sample::product(900_000 + i);
        for v in &mut product.variants {
            v.external_id = None;
        }
        for image in &mut product.images {
            image.external_id = None;
        }
        let write = Write {
            key: WriteKey::from(format!("create-{i}").as_str()),
            op: WriteOp::CreateProduct {
                product: product.clone(),
            },
        };
        let confirmed = apply_until_done(&client, &write).await;
        let RecordContent::Product(p) = &confirmed.record.content else {
            panic!()
        };
        assert_eq!(p.variants.len(), product.variants.len());
        created.push(confirmed.record.external_id.clone());
    }
    let gids = sim.product_gids();
    for (i, gid) in gids.iter().take(20).enumerate() {
        let record = client
            .fetch_one(
                ScanKind::Products,
                &tidemark_core::ExternalId::new(gid.clone()),
            )
            .await
            .unwrap()
            .unwrap();
        let RecordContent::Product(mut product) = record.content else {
            panic!()
        };
        product.title = format!("faulted edit {i}");
        let write = Write {
            key: WriteKey::from(format!("update-{i}").as_str()),
            op: WriteOp::UpdateProduct {
                external_id: record.external_id.clone(),
                product,
                fields: [Field::Title].into_iter().collect(),
                stock: vec![],
            },
        };
        let confirmed = apply_until_done(&client, &write).await;
        let RecordContent::Product(p) = &confirmed.record.content else {
            panic!()
        };
        assert_eq!(p.title, format!("faulted edit {i}"));
    }
    let stats = sim.harness.stats.snapshot();
    assert_eq!(stats.duplicate_creates, 0, "{stats:?}");
    assert_eq!(stats.product_deletes, 0, "{stats:?}");
    assert_eq!(sim.product_count(), 1030);
    let unique: BTreeSet<_> = created.iter().collect();
    assert_eq!(unique.len(), 30);
    running.stop().await;
}

#[tokio::test]
async fn incremental_scan_returns_the_edited_products() {
    let (sim, running, client) = start(200, 1e6, FaultConfig::none()).await;
    let before = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let gids = sim.product_gids();
    let edited: BTreeSet<String> = gids.iter().step_by(10).take(20).cloned().collect();
    for g in &edited {
        assert!(sim.edit_title(g, &format!("edited {g}")));
    }
    let scope = ScanScope::Incremental { since: before };
    let records = scan_all(&client, scope).await;
    let seen: BTreeSet<String> = records.iter().map(|r| r.external_id.0.clone()).collect();
    assert_eq!(seen, edited);

    // An edit made during a scan is caught by the next one.
    let first = client
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap();
    let late = gids.last().unwrap().clone();
    let mid = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    sim.edit_title(&late, "edited during the scan");
    let mut rest = Vec::new();
    let mut cursor = first.next.clone();
    while let Some(c) = cursor {
        let page = client
            .scan_page(ScanKind::Products, &ScanScope::Full, Some(&c))
            .await
            .unwrap();
        rest.extend(page.records);
        cursor = page.next;
    }
    let next = scan_all(
        &client,
        ScanScope::Incremental {
            since: mid.saturating_sub_millis(60_000),
        },
    )
    .await;
    assert!(next.iter().any(|r| r.external_id.as_str() == late));
    running.stop().await;
}

#[tokio::test]
async fn writes_land_and_read_back() {
    let (sim, running, client) = start(5, 1e6, FaultConfig::none()).await;
    let gid = sim.product_gids()[0].clone();
    let record = client
        .fetch_one(
            ScanKind::Products,
            &tidemark_core::ExternalId::new(gid.clone()),
        )
        .await
        .unwrap()
        .unwrap();
    let RecordContent::Product(mut product) = record.content.clone() else {
        panic!()
    };
    product.title = "New title".into();
    let first_variant = product.variants[0].external_id.clone().unwrap();
    let stock_before = product.variants[0].stock.unwrap();
    product.variants[0].price = Some("12.34".parse().unwrap());
    let fields = [Field::Title, Field::Price, Field::Stock]
        .into_iter()
        .collect();
    let update = WriteOp::UpdateProduct {
        external_id: record.external_id.clone(),
        product: product.clone(),
        fields,
        stock: vec![StockChange {
            variant: first_variant.clone(),
            sku: None,
            from: stock_before,
            to: stock_before - 3,
        }],
    };
    let image = product.images[0].clone();
    let delete_image = WriteOp::DeleteProductImage {
        product_id: record.external_id.clone(),
        image_id: image.external_id.clone(),
        content_hash: image.content_hash,
    };
    let mut created = tidemark_core::sample::product(424_242);
    for v in &mut created.variants {
        v.external_id = None;
    }
    let create = WriteOp::CreateProduct {
        product: created.clone(),
    };
    let writes = vec![
        Write {
            key: WriteKey::from("u"),
            op: update,
        },
        Write {
            key: WriteKey::from("d"),
            op: delete_image,
        },
        Write {
            key: WriteKey::from("c"),
            op: create.clone(),
        },
    ];
    let results = client.apply_writes(&writes).await.unwrap();
    for r in &results {
        assert!(r.outcome.is_ok(), "{}: {:?}", r.key, r.outcome);
    }
    let after = client
        .fetch_one(ScanKind::Products, &record.external_id)
        .await
        .unwrap()
        .unwrap();
    let RecordContent::Product(p) = after.content else {
        panic!()
    };
    assert_eq!(p.title, "New title");
    assert_eq!(p.variants[0].price, Some("12.34".parse().unwrap()));
    assert_eq!(p.variants[0].stock, Some(stock_before - 3));
    assert_eq!(p.images.len(), product.images.len() - 1);
    assert!(!p.images.iter().any(|i| i.external_id == image.external_id));

    let created_id = results[2]
        .outcome
        .as_ref()
        .unwrap()
        .record
        .external_id
        .clone();
    let RecordContent::Product(c) = &results[2].outcome.as_ref().unwrap().record.content else {
        panic!()
    };
    assert_eq!(c.variants.len(), created.variants.len());
    assert_eq!(c.images.len(), created.images.len());
    // A repeated create adopts the product instead of duplicating it.
    let again = client
        .apply_writes(&[Write {
            key: WriteKey::from("c2"),
            op: create,
        }])
        .await
        .unwrap();
    let adopted = again[0].outcome.as_ref().unwrap();
    assert!(adopted.adopted);
    assert_eq!(adopted.record.external_id, created_id);
    assert_eq!(sim.harness.stats.snapshot().duplicate_creates, 0);
    // find_by_sku sees it (no index lag configured).
    let sku = created.variants[0].sku.clone().unwrap();
    let found = client.find_by_sku(&sku).await.unwrap().unwrap();
    assert_eq!(found.external_id, created_id);
    running.stop().await;
}

/// Pacing against a simulator restoring `restore` points/s: a paged full scan of `products`.
/// Prints the share of the restored points the scan used (and the points spent in each 5 s)
/// and the THROTTLED count; returns the share.
async fn pacing(products: u64, restore: f64) -> f64 {
    let (sim, running, client) = start(products, restore, FaultConfig::none()).await;
    sim.set_rate(2000.0, restore);
    let client = std::sync::Arc::new(client);
    // Samples the points spent so far, every 5 s while the scan runs.
    let sampled = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let window = {
        let client = client.clone();
        let sampled = sampled.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let now = client.cost_figures().actual_points;
                sampled.lock().unwrap().push(now);
            }
        })
    };
    let start = Instant::now();
    let records = scan_all(&client, ScanScope::Full).await;
    let elapsed = start.elapsed().as_secs_f64();
    window.abort();
    assert_eq!(records.len() as u64, products);
    let figures = client.cost_figures();
    assert_eq!(figures.throttled_after_first, 0, "{figures:?}");
    // Points spent beyond the initial bucket, per second, against the restore rate.
    // The initial bucket (2000) minus what is left at the end was spent without waiting.
    let left = sim.bucket_available().min(2000.0);
    let used = (figures.actual_points as f64 - (2000.0 - left)).max(0.0);
    let share = used / (elapsed * restore);
    // Points spent in each 5 s interval (the first spends most of the initial bucket; answers
    // are few and large, so intervals are lumpy around 5 × the restore rate).
    let mut last = 0;
    let marks: Vec<String> = sampled
        .lock()
        .unwrap()
        .iter()
        .map(|used| {
            let spent = used - last;
            last = *used;
            spent.to_string()
        })
        .collect();
    println!(
        "pacing: {products} products, {} answers, {} points actual in {elapsed:.1} s at {restore} points/s: \
         {:.1} % of the restored points used (after the initial bucket); points spent per 5 s: [{}]; \
         {} THROTTLED ({} after the first answer)",
        figures.answers,
        figures.actual_points,
        share * 100.0,
        marks.join(", "),
        figures.throttled,
        figures.throttled_after_first,
    );
    running.stop().await;
    share
}

/// About 30–35 s of paged scanning against 100 points/s: at least 90 % of the restored points are
/// used, and no answer after the first is THROTTLED.
#[tokio::test]
async fn pacing_uses_the_restore_rate_without_throttles() {
    let share = pacing(80, 100.0).await;
    assert!(share >= 0.90, "used {:.1} %", share * 100.0);
}

async fn scan_kind(
    client: &Shopify,
    kind: ScanKind,
    scope: ScanScope,
) -> Vec<tidemark_core::ExternalRecord> {
    let mut cursor: Option<Cursor> = None;
    let mut out = Vec::new();
    loop {
        let page = client
            .scan_page(kind, &scope, cursor.as_ref())
            .await
            .expect("page");
        out.extend(page.records);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

/// Orders placed and edited after a point are exactly what an incremental orders scan
/// returns, with their gids and decimal totals; a sale moves stock but is no product edit.
#[tokio::test]
async fn incremental_orders_scan_returns_placed_and_edited_orders() {
    let (sim, running, client) = start(20, 1e6, FaultConfig::none()).await;
    let before = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let product_gid = sim.product_gids()[3].clone();
    let node_before = sim.product_node(&product_gid).unwrap();
    let variant = node_before["variants"]["__connection"][0].clone();
    let variant_gid = variant["id"].as_str().unwrap().to_owned();
    let price: rust_decimal::Decimal = variant["price"].as_str().unwrap().parse().unwrap();
    let stock_before = variant["inventoryQuantity"].as_i64().unwrap();

    let placed = sim.place_order(&[(variant_gid.as_str(), 2)]).unwrap();
    let placed_again = sim.place_order(&[(variant_gid.as_str(), 1)]).unwrap();
    let edited = sim.order_gids()[0].clone();
    assert!(sim.edit_order_note(&edited, "gift wrap"));

    let records = scan_kind(
        &client,
        ScanKind::Orders,
        ScanScope::Incremental { since: before },
    )
    .await;
    let seen: BTreeSet<String> = records.iter().map(|r| r.external_id.0.clone()).collect();
    let expected: BTreeSet<String> = [placed.clone(), placed_again.clone(), edited.clone()]
        .into_iter()
        .collect();
    assert_eq!(seen, expected);
    for r in &records {
        assert!(r.external_id.as_str().starts_with("gid://shopify/Order/"));
        let RecordContent::Order(o) = &r.content else {
            panic!()
        };
        if r.external_id.as_str() == placed {
            assert_eq!(o.total, price * rust_decimal::Decimal::from(2));
            assert_eq!(o.subtotal, o.total);
            assert_eq!(o.lines.len(), 1);
            assert_eq!(o.lines[0].quantity, 2);
            assert_eq!(o.lines[0].unit_price, price);
        }
        if r.external_id.as_str() == edited {
            assert_eq!(o.note.as_deref(), Some("gift wrap"));
        }
    }
    // The sale moved stock, but the product was not edited: same updatedAt, and an
    // incremental products scan does not return it.
    let node_after = sim.product_node(&product_gid).unwrap();
    assert_eq!(node_after["updatedAt"], node_before["updatedAt"]);
    assert_eq!(
        node_after["variants"]["__connection"][0]["inventoryQuantity"]
            .as_i64()
            .unwrap(),
        stock_before - 3
    );
    let products = scan_all(&client, ScanScope::Incremental { since: before }).await;
    assert!(products.is_empty());
    // fetch_one reads an order by its gid.
    let one = client
        .fetch_one(
            ScanKind::Orders,
            &tidemark_core::ExternalId::new(placed.clone()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.external_id.as_str(), placed);
    running.stop().await;
}

/// Field::Variants and Field::Images on an update: productSet with every kept variant and
/// media id (list replace), one variant and one image removed, one of each added; the kept
/// ids survive, the new variant starts at its stock. A repeated detach of a gone image is a
/// success.
#[tokio::test]
async fn update_adds_and_removes_variants_and_images_keeping_ids() {
    let (sim, running, client) = start(5, 1e6, FaultConfig::none()).await;
    let gid = sim.product_gids()[1].clone();
    let record = client
        .fetch_one(
            ScanKind::Products,
            &tidemark_core::ExternalId::new(gid.clone()),
        )
        .await
        .unwrap()
        .unwrap();
    let RecordContent::Product(mut product) = record.content.clone() else {
        panic!()
    };
    assert!(product.variants.len() >= 2 && product.images.len() >= 2);
    let removed_variant = product.variants.pop().unwrap();
    let kept_variants: Vec<_> = product
        .variants
        .iter()
        .map(|v| v.external_id.clone().unwrap())
        .collect();
    let mut added = product.variants[0].clone();
    added.external_id = None;
    added.sku = Some(tidemark_core::Sku("ADDED-VARIANT-1".into()));
    added.options.insert("size".into(), "XXXL-added".into());
    added.stock = Some(5);
    product.variants.push(added);
    let removed_image = product.images.remove(0);
    let kept_images: Vec<_> = product
        .images
        .iter()
        .map(|i| i.external_id.clone().unwrap())
        .collect();
    let mut new_image = product.images[0].clone();
    new_image.external_id = None;
    new_image.src = "https://cdn.example.com/tm/added/1.jpg".into();
    product.images.push(new_image);
    let write = Write {
        key: WriteKey::from("lists"),
        op: WriteOp::UpdateProduct {
            external_id: record.external_id.clone(),
            product,
            fields: [Field::Variants, Field::Images].into_iter().collect(),
            stock: vec![],
        },
    };
    let results = client.apply_writes(&[write]).await.unwrap();
    assert!(results[0].outcome.is_ok(), "{:?}", results[0].outcome);
    // The added media are PROCESSING for a moment (see processing_media_are_kept_until_ready).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = client
        .fetch_one(ScanKind::Products, &record.external_id)
        .await
        .unwrap()
        .unwrap();
    let RecordContent::Product(p) = after.content else {
        panic!()
    };
    let ids: Vec<_> = p
        .variants
        .iter()
        .filter_map(|v| v.external_id.clone())
        .collect();
    for k in &kept_variants {
        assert!(ids.contains(k), "kept variant {k} lost");
    }
    assert!(!ids.contains(removed_variant.external_id.as_ref().unwrap()));
    assert_eq!(p.variants.len(), kept_variants.len() + 1);
    let new_variant = p
        .variants
        .iter()
        .find(|v| v.sku.as_ref().map(|s| s.as_str()) == Some("ADDED-VARIANT-1"))
        .unwrap();
    assert_eq!(new_variant.stock, Some(5));
    assert!(!kept_variants.contains(new_variant.external_id.as_ref().unwrap()));
    let image_ids: Vec<_> = p
        .images
        .iter()
        .filter_map(|i| i.external_id.clone())
        .collect();
    assert_eq!(&image_ids[..kept_images.len()], &kept_images[..]);
    assert_eq!(p.images.len(), kept_images.len() + 1);
    assert!(!image_ids.contains(removed_image.external_id.as_ref().unwrap()));
    let added = tidemark_sim::images::fetch_source("https://cdn.example.com/tm/added/1.jpg")
        .await
        .unwrap();
    let last = p.images.last().unwrap();
    assert_eq!(
        tidemark_sim::images::fetch_source(&last.src).await.unwrap(),
        added
    );

    // Detaching an image twice: the second answer is FILE_DOES_NOT_EXIST, counted as done.
    let image = p.images[0].clone();
    let detach = Write {
        key: WriteKey::from("detach"),
        op: WriteOp::DeleteProductImage {
            product_id: record.external_id.clone(),
            image_id: image.external_id.clone(),
            content_hash: image.content_hash,
        },
    };
    for _ in 0..2 {
        let results = client
            .apply_writes(std::slice::from_ref(&detach))
            .await
            .unwrap();
        let confirmed = results[0].outcome.as_ref().unwrap();
        let RecordContent::Product(p) = &confirmed.record.content else {
            panic!()
        };
        assert!(!p.images.iter().any(|i| i.external_id == image.external_id));
    }
    running.stop().await;
}

/// A product with more variants and media than a listing page reads (10 each) is completed
/// by per-product pages.
#[tokio::test]
async fn products_beyond_the_first_variant_and_media_page_are_completed() {
    let (_sim, running, client) = start(3, 1e6, FaultConfig::none()).await;
    let mut product = tidemark_core::sample::product(777);
    let template = product.variants[0].clone();
    product.variants.clear();
    for i in 0..23 {
        let mut v = template.clone();
        v.external_id = None;
        v.sku = Some(tidemark_core::Sku(format!("MANY-{i}")));
        v.options = [("size".to_owned(), format!("S{i}"))].into_iter().collect();
        product.variants.push(v);
    }
    let image = product.images[0].clone();
    product.images.clear();
    for i in 0..14 {
        let mut im = image.clone();
        im.external_id = None;
        im.src = format!("https://cdn.example.com/tm/many/{i}.jpg");
        product.images.push(im);
    }
    let write = Write {
        key: WriteKey::from("many"),
        op: WriteOp::CreateProduct { product },
    };
    let results = client.apply_writes(&[write]).await.unwrap();
    let id = results[0]
        .outcome
        .as_ref()
        .unwrap()
        .record
        .external_id
        .clone();
    let records = scan_all(&client, ScanScope::Full).await;
    let r = records.iter().find(|r| r.external_id == id).unwrap();
    let RecordContent::Product(p) = &r.content else {
        panic!()
    };
    assert_eq!(p.variants.len(), 23);
    assert_eq!(p.images.len(), 14);
    running.stop().await;
}

/// A loopback receiver: every request's headers and body, answered 200.
async fn receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(http::HeaderMap, Vec<u8>)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/shopify", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed before the body");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..pos]).to_string();
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap();
                        break (pos + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = stream.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut headers = http::HeaderMap::new();
                for line in head.lines().skip(1) {
                    if let Some((k, v)) = line.split_once(':') {
                        headers.insert(
                            http::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                            http::HeaderValue::from_str(v.trim()).unwrap(),
                        );
                    }
                }
                let body = buf[head_end..head_end + length].to_vec();
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tx.send((headers, body));
            });
        }
    });
    (url, rx)
}

/// Webhooks from the simulator verify through the connector (HMAC over the raw body) and
/// dedupe by webhook id; a product edit sends products/update, a sale only
/// inventory_levels/update; a one-byte change fails verification.
#[tokio::test]
async fn simulator_webhooks_verify_and_dedupe_by_webhook_id() {
    let (url, mut rx) = receiver().await;
    let sim = ShopifySim::new(
        ShopifyConfig {
            products: 5,
            webhook_url: Some(url),
            ..ShopifyConfig::default()
        },
        FaultConfig::none(),
    );
    let running = sim.serve().await.unwrap();
    let client = Shopify::new(
        Settings::new(format!("http://{}", running.addr)),
        Keys {
            access_token: "shpat_test".into(),
            webhook_secret: Some("whsec_test".into()),
        },
    )
    .unwrap();
    sim.set_webhook_duplicates(1);
    let gid = sim.product_gids()[0].clone();
    assert!(sim.edit_title(&gid, "webhook edit"));
    let variant = sim.product_node(&gid).unwrap()["variants"]["__connection"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.place_order(&[(variant.as_str(), 1)]).unwrap();

    let mut seen = BTreeSet::new();
    let mut topics = Vec::new();
    let mut deliveries = 0;
    while deliveries < 6 {
        let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a delivery")
            .unwrap();
        deliveries += 1;
        let event = client.verify_webhook(&headers, &body).unwrap();
        let mut tampered = body.clone();
        tampered[1] ^= 1;
        assert!(client.verify_webhook(&headers, &tampered).is_err());
        if seen.insert(event.delivery_id.clone()) {
            topics.push((event.topic.clone(), event.resource.clone()));
        }
    }
    assert_eq!(seen.len(), 3, "each delivery came twice with one id");
    topics.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(topics[0].0, "inventory_levels/update");
    assert_eq!(topics[1].0, "orders/create");
    assert_eq!(topics[2].0, "products/update");
    let resource = topics[2].1.as_ref().unwrap();
    assert_eq!(resource.external_id.as_str(), gid);
    // No products/update for the sale: nothing more arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err()
    );
    assert_eq!(sim.webhooks_delivered(), 6);
    running.stop().await;
}

/// A stock update whose move was applied, for the product `gid` of `client`.
async fn stock_update(client: &Shopify, gid: &str, delta: i64) -> (WriteOp, i64) {
    let record = client
        .fetch_one(ScanKind::Products, &tidemark_core::ExternalId::new(gid))
        .await
        .unwrap()
        .unwrap();
    let RecordContent::Product(product) = record.content else {
        panic!()
    };
    let variant = product.variants[0].external_id.clone().unwrap();
    let before = product.variants[0].stock.unwrap();
    let op = WriteOp::UpdateProduct {
        external_id: record.external_id.clone(),
        product,
        fields: [Field::Title, Field::Stock].into_iter().collect(),
        stock: vec![StockChange {
            variant,
            sku: None,
            from: before,
            to: before + delta,
        }],
    };
    (op, before)
}

async fn first_stock(client: &Shopify, gid: &str) -> i64 {
    let record = client
        .fetch_one(ScanKind::Products, &tidemark_core::ExternalId::new(gid))
        .await
        .unwrap()
        .unwrap();
    let RecordContent::Product(p) = record.content else {
        panic!()
    };
    p.variants[0].stock.unwrap()
}

/// A failure after the stock move was applied (the confirming read, or the move's own answer
/// being a GraphQL INTERNAL_SERVER_ERROR) is `maybe_applied`, never a plain retryable error that
/// would make the engine add the delta again.
#[tokio::test]
async fn failures_after_a_stock_move_are_maybe_applied() {
    for including_trigger in [false, true] {
        let (sim, running, client) = start(3, 1e6, FaultConfig::none()).await;
        let gid = sim.product_gids()[0].clone();
        let (op, before) = stock_update(&client, &gid, -3).await;
        sim.fail_after(
            "inventorySetQuantities",
            including_trigger,
            u64::from(!including_trigger),
        );
        let results = client
            .apply_writes(&[Write {
                key: WriteKey::from("s"),
                op,
            }])
            .await
            .unwrap();
        let err = results[0].outcome.clone().unwrap_err();
        assert!(err.is_maybe_applied(), "{including_trigger}: {err}");
        assert_eq!(first_stock(&client, &gid).await, before - 3);
        running.stop().await;
    }
}

async fn product_of(client: &Shopify, gid: &str) -> tidemark_core::Product {
    let record = client
        .fetch_one(ScanKind::Products, &tidemark_core::ExternalId::new(gid))
        .await
        .unwrap()
        .unwrap();
    let RecordContent::Product(p) = record.content else {
        panic!()
    };
    p
}

async fn update_fields(
    client: &Shopify,
    gid: &str,
    product: &tidemark_core::Product,
    fields: &[Field],
) -> Result<tidemark_connector::Confirmed, tidemark_connector::ConnectorError> {
    let results = client
        .apply_writes(&[Write {
            key: WriteKey::from("u"),
            op: WriteOp::UpdateProduct {
                external_id: tidemark_core::ExternalId::new(gid),
                product: product.clone(),
                fields: fields.iter().copied().collect(),
                stock: vec![],
            },
        }])
        .await
        .unwrap();
    results.into_iter().next().unwrap().outcome
}

/// Every field an update confirms is written: compare-at price alone, weight; a price write
/// leaves the compare-at price alone; a field Shopify cannot take is refused, not confirmed.
#[tokio::test]
async fn update_writes_each_field_it_confirms_and_only_those() {
    let (sim, running, client) = start(3, 1e6, FaultConfig::none()).await;
    let gid = sim.product_gids()[0].clone();
    let original = product_of(&client, &gid).await;

    let mut edited = original.clone();
    edited.variants[0].price = Some("77.70".parse().unwrap());
    edited.variants[0].compare_at_price = Some("99.90".parse().unwrap());
    update_fields(&client, &gid, &edited, &[Field::Price])
        .await
        .unwrap();
    let after = product_of(&client, &gid).await;
    assert_eq!(after.variants[0].price, Some("77.70".parse().unwrap()));
    assert_eq!(
        after.variants[0].compare_at_price, original.variants[0].compare_at_price,
        "a price write clobbered the compare-at price"
    );

    update_fields(&client, &gid, &edited, &[Field::CompareAtPrice])
        .await
        .unwrap();
    let after = product_of(&client, &gid).await;
    assert_eq!(
        after.variants[0].compare_at_price,
        Some("99.90".parse().unwrap())
    );

    let mut heavy = after.clone();
    heavy.variants[0].weight_grams = Some("1234".parse().unwrap());
    update_fields(&client, &gid, &heavy, &[Field::Weight])
        .await
        .unwrap();
    let after = product_of(&client, &gid).await;
    assert_eq!(
        after.variants[0].weight_grams,
        Some("1234".parse().unwrap())
    );

    let mut branded = after.clone();
    branded.brand = Some("Acme".into());
    branded.title = "must not be written".into();
    let err = update_fields(&client, &gid, &branded, &[Field::Title, Field::Brand])
        .await
        .unwrap_err();
    assert!(
        matches!(err, tidemark_connector::ConnectorError::Rejected { .. }),
        "{err}"
    );
    assert_eq!(product_of(&client, &gid).await.title, after.title);
    running.stop().await;
}

async fn create(
    client: &Shopify,
    product: &tidemark_core::Product,
) -> tidemark_connector::Confirmed {
    let results = client
        .apply_writes(&[Write {
            key: WriteKey::from("c"),
            op: WriteOp::CreateProduct {
                product: product.clone(),
            },
        }])
        .await
        .unwrap();
    results.into_iter().next().unwrap().outcome.unwrap()
}

/// A merchant's product titled "Mug" holds the handle `mug`, which is also the handle derived
/// from the SKU `MUG`: the create does not adopt it (it lacks the SKU) but makes its own
/// product; a repeated create adopts that one and writes the product to it.
#[tokio::test]
async fn create_adopts_only_products_carrying_its_sku_and_updates_them() {
    let (sim, running, client) = start(2, 1e6, FaultConfig::none()).await;
    let merchant = sim.add_merchant_product("Mug", "MERCHANT-MUG-1").unwrap();
    assert!(!client.capabilities().upsert_by_sku);
    let mut product = tidemark_core::sample::product(777);
    product.sku = Some(tidemark_core::Sku("MUG".into()));
    product.title = "Our mug".into();
    for v in &mut product.variants {
        v.external_id = None;
    }
    for i in &mut product.images {
        i.external_id = None;
    }
    let first = create(&client, &product).await;
    assert!(!first.adopted);
    assert_ne!(first.record.external_id.as_str(), merchant);
    assert_eq!(product_of(&client, &merchant).await.title, "Mug");

    product.title = "Our mug, renamed".into();
    let again = create(&client, &product).await;
    assert!(again.adopted);
    assert_eq!(again.record.external_id, first.record.external_id);
    let RecordContent::Product(p) = &again.record.content else {
        panic!()
    };
    assert_eq!(p.title, "Our mug, renamed");
    assert_eq!(p.variants.len(), product.variants.len());
    assert_eq!(p.images.len(), product.images.len());
    assert_eq!(product_of(&client, &merchant).await.title, "Mug");
    assert_eq!(sim.harness.stats.snapshot().duplicate_creates, 0);
    running.stop().await;
}

/// A create waits for the media it added to be processed and confirms them READY, with their
/// own URL serving the bytes downloaded from the source. Media a merchant adds are PROCESSING
/// (`image: null`) for a while: they are read as images (by id) meanwhile, not as deleted.
#[tokio::test]
async fn processing_media_are_kept_until_ready() {
    let sim = ShopifySim::new(
        ShopifyConfig {
            products: 1,
            media_processing_ms: 600,
            ..ShopifyConfig::default()
        },
        FaultConfig::none(),
    );
    let running = sim.serve().await.unwrap();
    let client = Shopify::new(
        Settings::new(format!("http://{}", running.addr)),
        Keys {
            access_token: "shpat_test".into(),
            webhook_secret: None,
        },
    )
    .unwrap();
    let mut product = tidemark_core::sample::product(31_337);
    for v in &mut product.variants {
        v.external_id = None;
    }
    for i in &mut product.images {
        i.external_id = None;
    }
    assert!(!product.images.is_empty());
    let started = Instant::now();
    let created = create(&client, &product).await;
    assert!(started.elapsed() >= Duration::from_millis(600));
    let gid = created.record.external_id.as_str().to_owned();
    let RecordContent::Product(confirmed) = &created.record.content else {
        panic!()
    };
    assert_eq!(confirmed.images.len(), product.images.len());
    // READY media carry their own URL, which serves the bytes downloaded from the source.
    for (got, sent) in confirmed.images.iter().zip(&product.images) {
        assert!(got.src.starts_with(&running.base_url), "{}", got.src);
        assert_eq!(
            tidemark_sim::images::fetch_source(&got.src).await.unwrap(),
            tidemark_sim::images::fetch_source(&sent.src).await.unwrap()
        );
    }

    let source = "https://cdn.example.com/merchant/added.png";
    let media = sim.add_image(&gid, source, "").unwrap();
    let now = product_of(&client, &gid).await;
    assert_eq!(now.images.len(), product.images.len() + 1);
    let pending = now.images.last().unwrap();
    assert_eq!(pending.external_id.as_ref().unwrap().as_str(), media);
    assert!(pending.src.is_empty());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let later = product_of(&client, &gid).await;
    let ready = later.images.last().unwrap();
    assert_eq!(ready.external_id.as_ref().unwrap().as_str(), media);
    assert_eq!(
        tidemark_sim::images::fetch_source(&ready.src)
            .await
            .unwrap(),
        tidemark_sim::images::fetch_source(source).await.unwrap()
    );
    running.stop().await;
}

/// A platform whose media paging never ends (empty pages repeating the cursor) makes the scan
/// fail quickly instead of looping forever.
#[tokio::test]
async fn endless_media_paging_fails_instead_of_looping() {
    let (sim, running, client) = start(2, 1e6, FaultConfig::none()).await;
    sim.set_stuck_media_paging(true);
    let page = tokio::time::timeout(
        Duration::from_secs(20),
        client.scan_page(ScanKind::Products, &ScanScope::Full, None),
    )
    .await
    .expect("the scan looped");
    let err = page.unwrap_err();
    assert!(err.to_string().contains("media"), "{err}");
    running.stop().await;
}

/// An order with more line items than a page (120), a fulfilment with tracking and a shipping
/// address reads back whole: every line, the shipments and the address lines.
#[tokio::test]
async fn orders_read_every_line_their_shipments_and_address() {
    let (sim, running, client) = start(1, 1e6, FaultConfig::none()).await;
    let gid = sim.order_gids()[0].clone();
    assert!(sim.edit_order_node(&gid, |node| {
        let lines: Vec<serde_json::Value> = (0..120)
            .map(|i| {
                serde_json::json!({
                    "__typename": "LineItem", "id": format!("gid://shopify/LineItem/{}", 500_000 + i),
                    "sku": format!("LINE-{i}"), "title": format!("Line {i}"), "quantity": 1,
                    "variant": null,
                    "originalUnitPriceSet": { "shopMoney": { "amount": "1.50", "currencyCode": "USD" } },
                })
            })
            .collect();
        node["lineItems"] = serde_json::json!({ "__connection": lines });
        node["shippingAddress"] = serde_json::json!({ "__typename": "MailingAddress",
            "address1": "1 Main St", "address2": "Apt 2", "city": "Springfield",
            "province": "IL", "zip": "62701", "country": "United States" });
        node["fulfillments"] = serde_json::json!([{ "__typename": "Fulfillment",
            "status": "SUCCESS", "displayStatus": "IN_TRANSIT",
            "trackingInfo": [{ "__typename": "FulfillmentTrackingInfo",
                "company": "UPS", "number": "1Z999" }] }]);
    }));
    let id = tidemark_core::ExternalId::new(gid.clone());
    let fetched = client
        .fetch_one(ScanKind::Orders, &id)
        .await
        .unwrap()
        .unwrap();
    let scanned = scan_kind(&client, ScanKind::Orders, ScanScope::Full)
        .await
        .into_iter()
        .find(|r| r.external_id == id)
        .unwrap();
    for record in [fetched, scanned] {
        let RecordContent::Order(o) = record.content else {
            panic!()
        };
        assert_eq!(o.lines.len(), 120);
        assert_eq!(o.lines[119].sku.as_ref().unwrap().as_str(), "LINE-119");
        assert_eq!(o.shipments.len(), 1);
        assert_eq!(o.shipments[0].carrier.as_deref(), Some("UPS"));
        assert_eq!(o.shipments[0].tracking_number.as_deref(), Some("1Z999"));
        assert_eq!(
            o.shipments[0].status,
            tidemark_core::ShipmentStatus::InTransit
        );
        assert_eq!(
            o.buyer.address,
            [
                "1 Main St",
                "Apt 2",
                "Springfield IL 62701",
                "United States"
            ]
        );
    }
    running.stop().await;
}

/// A sale on Shopify sends only `inventory_levels/update` (the product's `updatedAt` does not
/// move): the event names the product, directly once the connection has read it, and
/// otherwise through the inventory item, which `fetch_one` resolves to the product.
#[tokio::test]
async fn inventory_level_webhooks_name_the_product() {
    let (url, mut rx) = receiver().await;
    let sim = ShopifySim::new(
        ShopifyConfig {
            products: 3,
            webhook_url: Some(url),
            ..ShopifyConfig::default()
        },
        FaultConfig::none(),
    );
    let running = sim.serve().await.unwrap();
    let connect = || {
        Shopify::new(
            Settings::new(format!("http://{}", running.addr)),
            Keys {
                access_token: "shpat_test".into(),
                webhook_secret: Some("whsec_test".into()),
            },
        )
        .unwrap()
    };
    let warm = connect();
    let cold = connect();
    let _ = scan_all(&warm, ScanScope::Full).await;
    let gid = sim.product_gids()[1].clone();
    let variant = sim.product_node(&gid).unwrap()["variants"]["__connection"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.place_order(&[(variant.as_str(), 1)]).unwrap();
    // The sale sends orders/create, then inventory_levels/update.
    let (headers, body) = loop {
        let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a delivery")
            .unwrap();
        if headers["x-shopify-topic"] == "inventory_levels/update" {
            break (headers, body);
        }
    };
    let event = warm.verify_webhook(&headers, &body).unwrap();
    assert_eq!(event.topic, "inventory_levels/update");
    let resource = event.resource.unwrap();
    assert_eq!(resource.kind, ScanKind::Products);
    assert_eq!(resource.external_id.as_str(), gid);

    let event = cold.verify_webhook(&headers, &body).unwrap();
    let resource = event.resource.unwrap();
    assert!(
        resource
            .external_id
            .as_str()
            .starts_with("gid://shopify/InventoryItem/")
    );
    let record = cold
        .fetch_one(ScanKind::Products, &resource.external_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.external_id.as_str(), gid);
    running.stop().await;
}

fn client_with_threshold(running: &RunningSim, bulk_threshold: u64) -> Shopify {
    let mut settings = Settings::new(format!("http://{}", running.addr));
    settings.bulk_threshold = bulk_threshold;
    Shopify::new(
        settings,
        Keys {
            access_token: "shpat_test".into(),
            webhook_secret: None,
        },
    )
    .expect("client")
}

#[tokio::test]
async fn bulk_full_scan_returns_the_same_records_as_paging_and_resumes_by_cursor() {
    let (sim, running, _) = start(600, 1e6, FaultConfig::none()).await;
    sim.set_bulk_delay_ms(150);
    let paged_client = client_with_threshold(&running, 0);
    let bulk_client = client_with_threshold(&running, 500);
    assert!(bulk_client.capabilities().bulk_full_scan);

    let paged = scan_all(&paged_client, ScanScope::Full).await;
    let bulk = scan_all(&bulk_client, ScanScope::Full).await;
    assert_complete(&sim, &bulk);
    let by_id = |records: &[tidemark_core::ExternalRecord]| {
        records
            .iter()
            .map(|r| (r.external_id.as_str().to_owned(), r.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(by_id(&paged), by_id(&bulk));
    // Paging is not what served it: 600 products at 250 per bulk page.
    let page = bulk_client
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 250);
    let cursor = page.next.expect("more");

    // A resumed scan (a new connection, nothing cached) continues at the cursor.
    let resumed_client = client_with_threshold(&running, 500);
    let mut rest = Vec::new();
    let mut cursor = Some(cursor);
    while let Some(c) = cursor {
        let page = resumed_client
            .scan_page(ScanKind::Products, &ScanScope::Full, Some(&c))
            .await
            .unwrap();
        rest.extend(page.records);
        cursor = page.next;
    }
    let mut all = page.records.clone();
    all.extend(rest);
    assert_eq!(by_id(&all), by_id(&paged));

    // Below the threshold a full scan pages.
    let small = client_with_threshold(&running, 10_000);
    let first = small
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap();
    assert!(first.records.len() < 250);

    // A second job while one runs is refused cleanly (Transient, retried later).
    sim.set_bulk_delay_ms(5_000);
    bulk_client.start_bulk().await.expect("first job");
    let err = bulk_client
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("already running"), "{err}");

    // An expired job's cursor restarts the scan.
    sim.expire_bulk_operations();
    let err = resumed_client
        .scan_page(
            ScanKind::Products,
            &ScanScope::Full,
            Some(
                &Cursor::encode(
                    &serde_json::json!({ "bulk": "gid://shopify/BulkOperation/1", "offset": 250 }),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            tidemark_connector::ConnectorError::CursorExpired { .. }
        ),
        "{err:?}"
    );
    drop(running);
}

#[tokio::test]
async fn failed_bulk_job_restarts_the_scan() {
    let (sim, running, _) = start(50, 1e6, FaultConfig::none()).await;
    sim.set_bulk_delay_ms(20);
    sim.set_bulk_fail(true);
    let client = client_with_threshold(&running, 10);
    let err = client
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            tidemark_connector::ConnectorError::CursorExpired { .. }
        ),
        "{err:?}"
    );
    drop(running);
}

/// Arms `sales` sales of one unit of `variant`, each landing just before the next stock set
/// reaches the simulator (after the connector read the quantity it compares against).
fn sell_before_each_set(sim: &ShopifySim, variant: String, sales: usize) {
    if sales == 0 {
        return;
    }
    sim.before_next("inventorySetQuantities", move |sim| {
        sim.place_order(&[(variant.as_str(), 1)]).unwrap();
        sell_before_each_set(sim, variant, sales - 1);
    });
}

/// Stock writes are compare-and-set (`inventorySetQuantities` with `compareQuantity`): a sale
/// landing between the connector's read and its set makes the set stale; the connector reads
/// again and sets from the new quantity, so both the sale and the move count. A quantity that
/// keeps moving is given up after a bounded number of attempts (retryable, not maybe applied:
/// nothing was set).
#[tokio::test]
async fn stock_set_retries_when_a_sale_lands_between_read_and_write() {
    let (sim, running, client) = start(3, 1e6, FaultConfig::none()).await;
    let gid = sim.product_gids()[0].clone();
    let variant = sim.product_node(&gid).unwrap()["variants"]["__connection"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (op, before) = stock_update(&client, &gid, -3).await;
    sell_before_each_set(&sim, variant.clone(), 2);
    let results = client
        .apply_writes(&[Write {
            key: WriteKey::from("s"),
            op,
        }])
        .await
        .unwrap();
    let confirmed = results[0].outcome.as_ref().expect("the set lands");
    let RecordContent::Product(p) = &confirmed.record.content else {
        panic!()
    };
    assert_eq!(p.variants[0].stock, Some(before - 2 - 3));
    assert_eq!(first_stock(&client, &gid).await, before - 5);

    let (op, before) = stock_update(&client, &gid, 4).await;
    sell_before_each_set(&sim, variant, tidemark_shopify::client::STOCK_SET_ATTEMPTS);
    let results = client
        .apply_writes(&[Write {
            key: WriteKey::from("s2"),
            op,
        }])
        .await
        .unwrap();
    let err = results[0].outcome.clone().unwrap_err();
    assert!(err.is_retryable() && !err.is_maybe_applied(), "{err}");
    assert_eq!(
        first_stock(&client, &gid).await,
        before - tidemark_shopify::client::STOCK_SET_ATTEMPTS as i64
    );
    running.stop().await;
}

/// An image Shopify cannot download ends FAILED: the write that added it ends `Rejected` with
/// Shopify's code and message and the image's field, and the image is not reported on the
/// product. A create with such an image is rejected the same way, and repeating it adopts the
/// product made the first time (no duplicate) and is rejected again rather than looping.
#[tokio::test]
async fn an_image_shopify_cannot_download_rejects_the_write() {
    let (sim, running, client) = start(2, 1e6, FaultConfig::none()).await;
    let gid = sim.product_gids()[0].clone();
    let mut product = product_of(&client, &gid).await;
    let kept = product.images.len();
    let mut broken = product.images[0].clone();
    broken.external_id = None;
    broken.src = "https://images.invalid/broken.jpg".into();
    product.images.push(broken.clone());
    let err = update_fields(&client, &gid, &product, &[Field::Images])
        .await
        .unwrap_err();
    let tidemark_connector::ConnectorError::Rejected {
        code,
        message,
        field,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(code, "IMAGE_DOWNLOAD_FAILURE");
    assert!(!message.is_empty());
    assert_eq!(field.as_deref(), Some(format!("images.{kept}").as_str()));
    assert!(err.to_string().contains("images.invalid"), "{err}");
    let after = product_of(&client, &gid).await;
    assert_eq!(after.images.len(), kept);

    let mut new = tidemark_core::sample::product(515_151);
    for v in &mut new.variants {
        v.external_id = None;
    }
    for i in &mut new.images {
        i.external_id = None;
    }
    new.images.push(broken);
    let write = Write {
        key: WriteKey::from("c"),
        op: WriteOp::CreateProduct {
            product: new.clone(),
        },
    };
    for _ in 0..2 {
        let results = client
            .apply_writes(std::slice::from_ref(&write))
            .await
            .unwrap();
        let err = results[0].outcome.clone().unwrap_err();
        assert!(
            matches!(&err, tidemark_connector::ConnectorError::Rejected { code, .. } if code == "IMAGE_DOWNLOAD_FAILURE"),
            "{err:?}"
        );
    }
    assert_eq!(sim.product_count(), 3);
    assert_eq!(sim.harness.stats.snapshot().duplicate_creates, 0);
    running.stop().await;
}

/// Webhooks delivered with duplicates, a fifth dropped and bursts reordered still verify, and
/// each names the right record: products/create and products/update the product, products/delete
/// the deleted product (by id), orders/create and orders/updated the order,
/// inventory_levels/update the product. Every delivery not dropped arrives (deduped by id).
#[tokio::test]
async fn webhooks_under_duplicates_drops_and_reordering_name_the_right_records() {
    use tidemark_sim::shopify::WebhookBehaviour;
    let (url, mut rx) = receiver().await;
    let sim = ShopifySim::new(
        ShopifyConfig {
            products: 30,
            webhook_url: Some(url),
            ..ShopifyConfig::default()
        },
        FaultConfig::none(),
    );
    let running = sim.serve().await.unwrap();
    let client = Shopify::new(
        Settings::new(format!("http://{}", running.addr)),
        Keys {
            access_token: "shpat_test".into(),
            webhook_secret: Some("whsec_test".into()),
        },
    )
    .unwrap();
    let _ = scan_all(&client, ScanScope::Full).await;
    sim.set_webhook_behaviour(WebhookBehaviour {
        duplicates: 1,
        drop: 0.2,
        reorder_window_ms: 150,
        seed: 5,
        ..WebhookBehaviour::default()
    });
    let gids = sim.product_gids();
    // What each topic may name: (topic, record, deleted).
    let mut expected: BTreeSet<(String, String, bool)> = BTreeSet::new();
    for g in &gids[..20] {
        assert!(sim.edit_title(g, "burst"));
        expected.insert(("products/update".into(), g.clone(), false));
    }
    let created = sim.add_merchant_product("Hooked mug", "HOOK-1").unwrap();
    expected.insert(("products/create".into(), created, false));
    assert!(sim.delete_product(&gids[20]));
    expected.insert(("products/delete".into(), gids[20].clone(), true));
    let variant = sim.product_node(&gids[21]).unwrap()["variants"]["__connection"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = sim.place_order(&[(variant.as_str(), 1)]).unwrap();
    expected.insert(("orders/create".into(), order.clone(), false));
    expected.insert(("inventory_levels/update".into(), gids[21].clone(), false));
    assert!(sim.edit_order_note(&order, "ring twice"));
    expected.insert(("orders/updated".into(), order, false));

    // Wait until every delivery was sent or dropped (two copies each).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = sim.webhook_stats();
        if stats.deliveries == 25 && stats.delivered == 2 * (stats.deliveries - stats.dropped) {
            break;
        }
        assert!(Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = sim.webhook_stats();
    assert!(stats.dropped > 0, "{stats:?}");
    let mut unique = BTreeSet::new();
    let mut copies = 0;
    let mut arrival = Vec::new();
    while let Ok(Some((headers, body))) =
        tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
    {
        copies += 1;
        let event = client.verify_webhook(&headers, &body).unwrap();
        let resource = event.resource.clone().unwrap();
        let kind = if event.topic.starts_with("orders/") {
            ScanKind::Orders
        } else {
            ScanKind::Products
        };
        assert_eq!(resource.kind, kind, "{}", event.topic);
        let named = (
            event.topic.clone(),
            resource.external_id.as_str().to_owned(),
            resource.deleted,
        );
        assert!(expected.contains(&named), "{named:?}");
        if unique.insert(event.delivery_id.clone()) {
            arrival.push(named);
        }
    }
    assert_eq!(copies, stats.delivered);
    assert_eq!(unique.len() as u64, stats.deliveries - stats.dropped);
    // The burst of title edits did not arrive in the order it was made.
    let updates: Vec<&String> = arrival
        .iter()
        .filter(|a| a.0 == "products/update")
        .map(|a| &a.1)
        .collect();
    let mut in_order = updates.clone();
    in_order.sort_by_key(|g| gids.iter().position(|x| x == *g));
    assert_ne!(updates, in_order);
    running.stop().await;
}
