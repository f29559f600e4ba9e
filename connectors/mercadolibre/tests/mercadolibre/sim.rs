//! The connector against the MercadoLibre simulator, in process over loopback.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rust_decimal::Decimal;
use tidemark_connector::{
    Connector, ConnectorError, CredentialSink, Credentials, Cursor, ScanScope, Write, WriteKey,
    WriteOp, WriteResult,
};
use tidemark_core::{
    ConnectionId, ExternalId, ExternalRecord, Field, Product, RecordContent, ScanKind, StockChange,
    Timestamp, sample,
};
use tidemark_mercadolibre::{MercadoLibre, Settings, Tokens};
use tidemark_sim::mercadolibre::{MlConfig, MlSim};
use tidemark_sim::{FaultConfig, RunningSim};

#[derive(Default)]
struct RecordingSink(Mutex<Vec<Credentials>>);

#[async_trait]
impl CredentialSink for RecordingSink {
    async fn save(&self, _: ConnectionId, credentials: &Credentials) -> Result<(), ConnectorError> {
        self.0.lock().unwrap().push(credentials.clone());
        Ok(())
    }
}

struct Setup {
    sim: MlSim,
    running: RunningSim,
    ml: MercadoLibre,
    sink: Arc<RecordingSink>,
}

fn tokens(refresh: &str) -> Tokens {
    Tokens {
        client_secret: "ml_secret_test".into(),
        access_token: "APP_USR-initial".into(),
        refresh_token: refresh.into(),
    }
}

fn connector(
    running: &RunningSim,
    rps: f64,
    tokens: Tokens,
    sink: Arc<RecordingSink>,
) -> MercadoLibre {
    let mut settings = Settings::new("MLA", 207_035_636, "5503910054141466");
    settings.base_url = running.base_url.clone();
    settings.default_category_id = Some("MLA1234".into());
    settings.requests_per_second = rps;
    MercadoLibre::new(settings, tokens, ConnectionId(1), sink).unwrap()
}

async fn setup(config: MlConfig, faults: FaultConfig, rps: f64) -> Setup {
    let sim = MlSim::new(config, faults);
    let running = sim.serve().await.unwrap();
    let sink = Arc::new(RecordingSink::default());
    let ml = connector(&running, rps, tokens("TG-initial"), sink.clone());
    Setup {
        sim,
        running,
        ml,
        sink,
    }
}

fn fast(items: u64, orders: u64) -> MlConfig {
    MlConfig {
        items,
        orders,
        rate_per_second: Some(200.0),
        rate_burst: 20,
        ..MlConfig::default()
    }
}

/// Every page of a scan; retryable failures repeat the page (as the engine's job would).
async fn scan_all(ml: &MercadoLibre, kind: ScanKind, scope: ScanScope) -> Vec<ExternalRecord> {
    let mut cursor: Option<Cursor> = None;
    let mut out = Vec::new();
    let mut failures = 0;
    loop {
        match ml.scan_page(kind, &scope, cursor.as_ref()).await {
            Ok(page) => {
                out.extend(page.records);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => return out,
                }
            }
            Err(e) if e.is_retryable() && failures < 50 => failures += 1,
            Err(e) => panic!("scan failed: {e}"),
        }
    }
}

fn product(r: &ExternalRecord) -> &Product {
    match &r.content {
        RecordContent::Product(p) => p,
        RecordContent::Order(_) => panic!("not a product"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_scan_of_5000_items_under_index_lag_returns_each_once_with_variations_and_pictures() {
    use tidemark_sim::mercadolibre::ItemEdit;
    // One description read per item: a faster bucket keeps the test short.
    let config = MlConfig {
        rate_per_second: Some(2_000.0),
        rate_burst: 50,
        ..fast(5_000, 0)
    };
    // The search index stays behind every write for longer than the scan lasts.
    let faults = FaultConfig {
        index_lag_ms: 120_000,
        ..FaultConfig::none()
    };
    let s = setup(config, faults, 1_000.0).await;
    let ids = s.sim.item_ids();
    let edit = |n: usize| ItemEdit {
        price: Some(format!("{}.25", 1_000 + n)),
        add_picture: n.is_multiple_of(2),
        ..ItemEdit::default()
    };
    // Edits the index does not show yet: before the scan, and between its pages.
    for (n, id) in ids.iter().enumerate().step_by(10) {
        s.sim.edit_item(id, &edit(n)).unwrap();
    }
    let started = Instant::now();
    let mut records = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut pages = 0usize;
    loop {
        let page =
            s.ml.scan_page(ScanKind::Products, &ScanScope::Full, cursor.as_ref())
                .await
                .unwrap();
        pages += 1;
        records.extend(page.records);
        if pages.is_multiple_of(5) {
            // Items of later pages only (a scan returns ids in id order), so every record
            // can be compared with the item as it is at the end.
            let read = pages * tidemark_mercadolibre::client::SCAN_LIMIT;
            for (n, id) in ids.iter().enumerate().skip(read + pages).step_by(97) {
                s.sim.edit_item(id, &edit(n)).unwrap();
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let elapsed = started.elapsed();
    let stats = s.sim.harness.stats.snapshot();
    println!(
        "5,000 items under index lag: {pages} pages, {} requests, {elapsed:?}",
        stats.requests
    );
    let got: Vec<String> = records.iter().map(|r| r.external_id.0.clone()).collect();
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(got.len(), 5_000, "each item once");
    assert_eq!(unique.len(), 5_000);
    // Every record is the item as it is now (reads by id do not lag), variations and
    // pictures included.
    for r in &records {
        let item = s
            .sim
            .item_json(&s.running.base_url, r.external_id.as_str())
            .unwrap();
        let p = product(r);
        let variations = item["variations"].as_array().unwrap();
        assert_eq!(p.variants.len(), variations.len(), "{}", r.external_id);
        for (v, w) in p.variants.iter().zip(variations) {
            assert_eq!(
                v.external_id.as_ref().unwrap().as_str(),
                w["id"].to_string()
            );
            assert_eq!(v.price.unwrap().to_string(), w["price"].to_string());
            assert!(v.options.contains_key("color"));
            assert!(!v.image_hashes.is_empty());
        }
        let pictures: Vec<&str> = item["pictures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        let images: Vec<&str> = p
            .images
            .iter()
            .map(|i| i.external_id.as_ref().unwrap().as_str())
            .collect();
        assert_eq!(images, pictures, "{}", r.external_id);
    }
    assert_eq!(stats.throttled, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_5_rps_the_client_paces_itself_and_gets_no_429() {
    // The simulator's default bucket: 5 req/s. A scan reads each item's description too, so
    // 100 items are about 107 requests: some 20 s.
    let s = setup(
        MlConfig {
            items: 100,
            orders: 0,
            ..MlConfig::default()
        },
        FaultConfig::none(),
        5.0,
    )
    .await;
    let started = Instant::now();
    let records = scan_all(&s.ml, ScanKind::Products, ScanScope::Full).await;
    let elapsed = started.elapsed();
    assert_eq!(records.len(), 100);
    let stats = s.sim.harness.stats.snapshot();
    // 2 scan pages (the last empty) + 5 multigets + 100 descriptions.
    assert!(stats.requests >= 107, "{stats:?}");
    println!(
        "100 items at 5 req/s: {} requests in {elapsed:?}",
        stats.requests
    );
    assert_eq!(stats.throttled, 0, "{stats:?}");
    let floor = Duration::from_secs_f64((stats.requests - 1) as f64 / 5.0 * 0.9);
    assert!(elapsed >= floor, "{elapsed:?} < {floor:?}: not paced");
}

#[tokio::test]
async fn incremental_orders_after_20_edits_returns_those_20() {
    let s = setup(fast(50, 60), FaultConfig::none(), 200.0).await;
    let all = scan_all(&s.ml, ScanKind::Orders, ScanScope::Full).await;
    assert_eq!(all.len(), 60);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let since = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    let ids = s.sim.order_ids();
    let mut edited = BTreeSet::new();
    for (n, id) in ids.iter().enumerate().filter(|(n, _)| n % 3 == 0).take(20) {
        if n % 2 == 0 {
            s.sim.edit_order(*id, &Default::default());
        } else {
            s.sim.set_tracking(
                *id,
                &serde_json::from_value(serde_json::json!({"tracking_number": format!("TRK{n}"),
                    "tracking_method": "Correo"}))
                .unwrap(),
            );
        }
        edited.insert(id.to_string());
    }
    let found = scan_all(&s.ml, ScanKind::Orders, ScanScope::Incremental { since }).await;
    let found_ids: BTreeSet<String> = found.iter().map(|r| r.external_id.0.clone()).collect();
    assert_eq!(found_ids, edited);
    let tracked = found
        .iter()
        .filter_map(|r| match &r.content {
            RecordContent::Order(o) => o.shipments.first().and_then(|s| s.tracking_number.clone()),
            RecordContent::Product(_) => None,
        })
        .count();
    assert_eq!(tracked, 10);
    let one = &found[0];
    let RecordContent::Order(o) = &one.content else {
        panic!()
    };
    assert_eq!(o.lines.len(), 1);
    assert!(o.total > Decimal::ZERO);
    assert!(one.updated_at.unwrap() >= since);
}

async fn write(
    ml: &MercadoLibre,
    op: WriteOp,
) -> Result<tidemark_connector::Confirmed, ConnectorError> {
    let mut results: Vec<WriteResult> = ml
        .apply_writes(&[Write {
            key: WriteKey::from("w"),
            op,
        }])
        .await
        .unwrap();
    results.pop().unwrap().outcome
}

#[tokio::test]
async fn writes_of_every_kind_land_and_read_back() {
    let s = setup(fast(5, 0), FaultConfig::none(), 200.0).await;
    let id = ExternalId::new(s.sim.item_ids()[0].clone());
    let before =
        s.ml.fetch_one(ScanKind::Products, &id)
            .await
            .unwrap()
            .unwrap();
    let mut p = product(&before).clone();

    // Title, price, status, pictures (keep all but the first, add one by source).
    p.title = "Renamed by tidemark".into();
    p.variants[0].price = Some(Decimal::new(4321, 2));
    p.status = tidemark_core::ProductStatus::Paused;
    p.images.remove(0);
    let mut added = p.images[0].clone();
    added.external_id = None;
    added.src = "https://cdn.example.com/new.png".into();
    p.images.push(added);
    for v in &mut p.variants {
        v.image_hashes.clear();
    }
    let v0 = p.variants[0].external_id.clone().unwrap();
    // The title first: MercadoLibre locks it once the item has sales.
    write(
        &s.ml,
        WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p.clone(),
            fields: [Field::Title].into_iter().collect(),
            stock: vec![],
        },
    )
    .await
    .unwrap();
    let stock_before = p.variants[0].stock.unwrap();
    // A sale on the platform since the snapshot: the move must apply on top of it.
    s.sim
        .place_order(
            &serde_json::from_value(serde_json::json!({
            "item_id": id.as_str(), "variation_id": v0.as_str().parse::<u64>().unwrap()}))
            .unwrap(),
        )
        .unwrap();
    let fields = [Field::Price, Field::Status, Field::Images, Field::Stock];
    let confirmed = write(
        &s.ml,
        WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p.clone(),
            fields: fields.into_iter().collect(),
            stock: vec![StockChange {
                variant: v0.clone(),
                sku: None,
                from: stock_before,
                to: stock_before + 5,
            }],
        },
    )
    .await
    .unwrap();
    let after =
        s.ml.fetch_one(ScanKind::Products, &id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(confirmed.record.content, after.content);
    let a = product(&after);
    assert_eq!(a.title, "Renamed by tidemark");
    assert_eq!(a.status, tidemark_core::ProductStatus::Paused);
    assert_eq!(a.variants.len(), p.variants.len(), "no variation lost");
    let v = a
        .variants
        .iter()
        .find(|v| v.external_id.as_ref() == Some(&v0))
        .unwrap();
    assert_eq!(v.price, Some(Decimal::new(4321, 2)));
    assert_eq!(
        v.stock,
        Some(stock_before - 1 + 5),
        "delta on top of the sale"
    );
    assert_eq!(a.images.len(), p.images.len());
    assert_eq!(a.images[0].external_id, p.images[0].external_id);
    assert!(a.images.last().unwrap().external_id.is_some());

    // Delete an image.
    let gone = a.images[0].clone();
    write(
        &s.ml,
        WriteOp::DeleteProductImage {
            product_id: id.clone(),
            image_id: gone.external_id.clone(),
            content_hash: gone.content_hash,
        },
    )
    .await
    .unwrap();
    let after =
        s.ml.fetch_one(ScanKind::Products, &id)
            .await
            .unwrap()
            .unwrap();
    assert!(
        !product(&after)
            .images
            .iter()
            .any(|i| i.external_id == gone.external_id)
    );

    // Create, then a repeated create adopts instead of duplicating.
    let new = sample::product(9_999);
    let created = write(
        &s.ml,
        WriteOp::CreateProduct {
            product: new.clone(),
        },
    )
    .await
    .unwrap();
    assert!(!created.adopted);
    let c = product(&created.record);
    assert_eq!(c.title, new.title);
    assert_eq!(c.variants.len(), new.variants.len());
    assert_eq!(c.images.len(), new.images.len());
    let again = write(
        &s.ml,
        WriteOp::CreateProduct {
            product: new.clone(),
        },
    )
    .await
    .unwrap();
    assert!(again.adopted);
    assert_eq!(again.record.external_id, created.record.external_id);
    let found =
        s.ml.find_by_sku(new.sku.as_ref().unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(found.external_id, created.record.external_id);
    let stats = s.sim.harness.stats.snapshot();
    assert_eq!((stats.creates, stats.duplicate_creates), (1, 0));

    // Orders are not written.
    let order = sample::order(1);
    let err = write(&s.ml, WriteOp::CreateOrder { order })
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Rejected { .. }), "{err}");
}

#[tokio::test]
async fn a_picture_source_mercadolibre_cannot_download_is_an_issue_on_that_record() {
    let s = setup(fast(3, 0), FaultConfig::none(), 200.0).await;
    let id = ExternalId::new(s.sim.item_ids()[0].clone());
    let before = read(&s.ml, ScanKind::Products, &id).await;
    let json_before = s.sim.item_json(&s.running.base_url, id.as_str()).unwrap();
    let mut p = product(&before).clone();
    p.title = "No debería cambiar".into();
    for v in &mut p.variants {
        v.price = Some(Decimal::new(77_777, 2));
    }
    let mut lost = p.images[0].clone();
    lost.external_id = None;
    lost.src = "https://images.invalid/lost.png".into();
    p.images.push(lost);
    let at = p.images.len() - 1;
    let err = write(
        &s.ml,
        WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p,
            fields: [Field::Title, Field::Price, Field::Images]
                .into_iter()
                .collect(),
            stock: vec![],
        },
    )
    .await
    .unwrap_err();
    println!("update: {err}");
    match &err {
        ConnectorError::Rejected {
            code,
            message,
            field,
            ..
        } => {
            assert_eq!(code, "item.pictures.source.invalid");
            assert!(
                message.contains("https://images.invalid/lost.png"),
                "{message}"
            );
            assert_eq!(
                field.as_deref(),
                Some(format!("item.pictures[{at}].source").as_str())
            );
        }
        other => panic!("{other}"),
    }
    assert!(!err.is_retryable(), "repeating it unchanged fails again");
    // Nothing of the write was applied.
    assert_eq!(
        s.sim.item_json(&s.running.base_url, id.as_str()).unwrap(),
        json_before
    );
    assert_eq!(
        read(&s.ml, ScanKind::Products, &id).await.content,
        before.content
    );

    // A create: rejected, nothing created, and once the image is fixed it creates once.
    let mut new = sample::product(9_321);
    new.images[0].src = "https://images.invalid/first.png".into();
    let err = write(
        &s.ml,
        WriteOp::CreateProduct {
            product: new.clone(),
        },
    )
    .await
    .unwrap_err();
    println!("create: {err}");
    match &err {
        ConnectorError::Rejected { code, field, .. } => {
            assert_eq!(code, "item.pictures.source.invalid");
            assert_eq!(field.as_deref(), Some("item.pictures[0].source"));
        }
        other => panic!("{other}"),
    }
    assert_eq!(s.sim.item_ids().len(), 3);
    assert_eq!(s.sim.harness.stats.snapshot().creates, 0);
    new.images[0].src = "https://cdn.example.com/fixed/first.png".into();
    let created = write(&s.ml, WriteOp::CreateProduct { product: new })
        .await
        .unwrap();
    assert!(!created.adopted);
    let stats = s.sim.harness.stats.snapshot();
    assert_eq!((stats.creates, stats.duplicate_creates), (1, 0));
}

#[tokio::test]
async fn a_variation_added_by_an_update_whose_answer_was_lost_is_not_added_twice() {
    let s = setup(fast(3, 0), FaultConfig::none(), 200.0).await;
    let id = ExternalId::new(s.sim.item_ids()[0].clone());
    let mut p = product(&read(&s.ml, ScanKind::Products, &id).await).clone();
    let mut added = p.variants[0].clone();
    added.external_id = None;
    added.sku = Some(tidemark_core::Sku("NEW-VAR-1".into()));
    added.image_hashes.clear();
    if let Some(color) = added.options.get_mut("color") {
        *color = "Turquesa".into();
    }
    p.variants.push(added);
    let op = WriteOp::UpdateProduct {
        external_id: id.clone(),
        product: p.clone(),
        fields: [Field::Variants].into_iter().collect(),
        stock: vec![],
    };
    s.sim.lose_update_answers(1);
    let err = write(&s.ml, op.clone()).await.unwrap_err();
    // A PUT that creates a variation is not repeated blindly by the client.
    assert!(err.is_maybe_applied(), "{err}");
    let confirmed = write(&s.ml, op).await.unwrap();
    let item = s.sim.item_json(&s.running.base_url, id.as_str()).unwrap();
    let skus: Vec<&str> = item["variations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["attributes"][0]["value_name"].as_str().unwrap())
        .collect();
    assert_eq!(skus.len(), p.variants.len(), "{skus:?}");
    assert_eq!(skus.iter().filter(|k| **k == "NEW-VAR-1").count(), 1);
    let got = product(&confirmed.record);
    let new = got
        .variants
        .iter()
        .find(|v| v.sku.as_ref().is_some_and(|k| k.0 == "NEW-VAR-1"))
        .unwrap();
    assert!(new.external_id.is_some());
}

/// A record read by id, repeating retryable failures.
async fn read(ml: &MercadoLibre, kind: ScanKind, id: &ExternalId) -> ExternalRecord {
    for _ in 0..30 {
        match ml.fetch_one(kind, id).await {
            Ok(Some(record)) => return record,
            Ok(None) => panic!("{id} not found"),
            Err(e) if e.is_retryable() => {}
            Err(e) => panic!("reading {id}: {e}"),
        }
    }
    panic!("reading {id} kept failing")
}

/// Repeats a write until it lands, as the engine's job would: retryable failures (also those
/// that may have been applied) again, each attempt built by `op` from a fresh read of the
/// record, so stock moves start from what the platform has now. Returns the attempts made.
async fn settle<F, Fut>(ml: &MercadoLibre, what: &str, mut op: F) -> u32
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = WriteOp>,
{
    for attempt in 1..=30 {
        match write(ml, op().await).await {
            Ok(_) => return attempt,
            Err(e) if e.is_retryable() => {}
            Err(e) => panic!("{what} failed: {e}"),
        }
    }
    panic!("{what} did not land in 30 attempts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_10_percent_faults_scans_and_writes_of_every_kind_complete_without_duplicates() {
    // 2 % of each of five kinds: rate limited, server error, timeout after applying, truncated
    // answer, slow answer.
    let mut faults = FaultConfig::uniform(0.02, 7);
    faults.timeout_hold_ms = 300;
    faults.slow_ms = 50;
    let s = setup(fast(400, 120), faults, 200.0).await;
    let started = Instant::now();
    let records = scan_all(&s.ml, ScanKind::Products, ScanScope::Full).await;
    let unique: BTreeSet<String> = records.iter().map(|r| r.external_id.0.clone()).collect();
    assert_eq!(unique.len(), 400);
    let orders = scan_all(&s.ml, ScanKind::Orders, ScanScope::Full).await;
    let unique: BTreeSet<String> = orders.iter().map(|r| r.external_id.0.clone()).collect();
    assert_eq!(unique.len(), 120);
    let scanned = started.elapsed();
    let mut attempts = 0;

    // Creates.
    for seed in 20_000..20_015 {
        let op = WriteOp::CreateProduct {
            product: sample::product(seed),
        };
        attempts += settle(&s.ml, &format!("create {seed}"), || async { op.clone() }).await;
    }

    // Unsold items with at least two variations and two pictures (one of each to drop).
    let ids: Vec<ExternalId> = s
        .sim
        .item_ids()
        .into_iter()
        .filter(|id| {
            let item = s.sim.item_json(&s.running.base_url, id).unwrap();
            item["variations"].as_array().unwrap().len() >= 2
                && item["pictures"].as_array().unwrap().len() >= 2
                // Titles lock once an item has sales.
                && item["sold_quantity"] == 0
        })
        .map(ExternalId)
        .collect();
    assert!(ids.len() >= 19, "{} items fit", ids.len());
    // Updates of title, price, status, pictures (one dropped, one added by source), stock and
    // description together. The wanted product is fixed once; only the stock move is made
    // again from each fresh read (a move is a delta on what the platform has).
    let mut wanted_stock = Vec::new();
    for (n, id) in ids.iter().take(8).enumerate() {
        let initial = product(&read(&s.ml, ScanKind::Products, id).await).clone();
        let mut p = initial.clone();
        p.title = format!("Con fallas {n}");
        p.status = tidemark_core::ProductStatus::Paused;
        p.description = format!("Descripción con fallas {n}");
        for v in &mut p.variants {
            v.price = Some(Decimal::new(5_000 + n as i64, 2));
        }
        p.images.remove(0);
        let mut added = p.images[0].clone();
        added.external_id = None;
        added.src = format!("https://cdn.example.com/faults/{n}.png");
        p.images.push(added);
        let variant = p.variants[0].external_id.clone().unwrap();
        let target = initial.variants[0].stock.unwrap() + 7;
        wanted_stock.push((id.clone(), variant.clone(), target));
        let fields = [
            Field::Title,
            Field::Price,
            Field::Status,
            Field::Images,
            Field::Stock,
            Field::Description,
        ];
        attempts += settle(&s.ml, &format!("update {id}"), || {
            let (p, variant, id) = (p.clone(), variant.clone(), id.clone());
            let ml = &s.ml;
            async move {
                let now = product(&read(ml, ScanKind::Products, &id).await).variants[0]
                    .stock
                    .unwrap();
                WriteOp::UpdateProduct {
                    external_id: id,
                    product: p,
                    fields: fields.into_iter().collect(),
                    stock: vec![StockChange {
                        variant,
                        sku: None,
                        from: now,
                        to: target,
                    }],
                }
            }
        })
        .await;
    }

    // Variations replaced: the last one removed, a new one (with its SKU) added.
    let mut new_skus = Vec::new();
    for (n, id) in ids.iter().skip(8).take(6).enumerate() {
        let mut p = product(&read(&s.ml, ScanKind::Products, id).await).clone();
        p.variants.pop();
        let mut added = p.variants[0].clone();
        added.external_id = None;
        added.sku = Some(tidemark_core::Sku(format!("FLT-{n}")));
        added.image_hashes.clear();
        if let Some(color) = added.options.get_mut("color") {
            *color = format!("Fucsia {n}");
        }
        p.variants.push(added);
        new_skus.push((id.clone(), p.variants.len(), format!("FLT-{n}")));
        let op = WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p,
            fields: [Field::Variants].into_iter().collect(),
            stock: vec![],
        };
        attempts += settle(&s.ml, &format!("variants of {id}"), || async { op.clone() }).await;
    }

    // Picture deletes.
    let mut deleted = Vec::new();
    for id in ids.iter().skip(14).take(5) {
        let gone = product(&read(&s.ml, ScanKind::Products, id).await).images[0].clone();
        deleted.push((id.clone(), gone.external_id.clone().unwrap()));
        let op = WriteOp::DeleteProductImage {
            product_id: id.clone(),
            image_id: gone.external_id.clone(),
            content_hash: gone.content_hash,
        };
        attempts += settle(&s.ml, &format!("picture delete on {id}"), || async {
            op.clone()
        })
        .await;
    }

    // Shipment tracking on orders the seller ships.
    let order_ids = s.sim.order_ids();
    for (n, order_id) in order_ids.iter().take(5).enumerate() {
        assert!(s.sim.set_shipping_mode(*order_id, "me1"));
        let id = ExternalId::new(order_id.to_string());
        let RecordContent::Order(mut order) = read(&s.ml, ScanKind::Orders, &id).await.content
        else {
            panic!("not an order")
        };
        order.shipments = vec![tidemark_core::Shipment {
            carrier: Some("Correo Argentino".into()),
            tracking_number: Some(format!("FLT-TRK-{n}")),
            status: Default::default(),
        }];
        let op = WriteOp::UpdateOrder {
            external_id: id.clone(),
            order,
            fields: [Field::Shipments].into_iter().collect(),
        };
        attempts += settle(&s.ml, &format!("tracking of {id}"), || async { op.clone() }).await;
    }

    let stats = s.sim.harness.stats.snapshot();
    println!(
        "10 % faults: scans {scanned:?}, 39 writes in {attempts} attempts, all in {:?}; \
         {} requests, faults {:?}",
        started.elapsed(),
        stats.requests,
        stats.faults
    );
    assert_eq!(stats.duplicate_creates, 0, "{stats:?}");
    assert_eq!(stats.creates, 15, "{stats:?}");
    assert!(stats.faults.values().sum::<u64>() > 0, "{stats:?}");

    // Everything landed once.
    let base = &s.running.base_url;
    let first = product(&read(&s.ml, ScanKind::Products, &wanted_stock[0].0).await).clone();
    assert_eq!(first.description, "Descripción con fallas 0");
    for (n, (id, variant, target)) in wanted_stock.iter().enumerate() {
        let item = s.sim.item_json(base, id.as_str()).unwrap();
        assert_eq!(item["title"], format!("Con fallas {n}"));
        assert_eq!(item["status"], "paused");
        let v = item["variations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"].as_u64() == variant.as_str().parse::<u64>().ok())
            .unwrap();
        assert_eq!(v["available_quantity"], *target, "{id}");
        let pictures = item["pictures"].as_array().unwrap();
        let last = pictures.last().unwrap()["url"].as_str().unwrap();
        assert!(last.starts_with(base.as_str()), "{last}");
    }
    for (id, count, sku) in &new_skus {
        let item = s.sim.item_json(base, id.as_str()).unwrap();
        let skus: Vec<String> = item["variations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                v["attributes"][0]["value_name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(skus.len(), *count, "{id}: {skus:?}");
        assert_eq!(
            skus.iter().filter(|k| *k == sku).count(),
            1,
            "{id}: {skus:?}"
        );
    }
    for (id, gone) in &deleted {
        let item = s.sim.item_json(base, id.as_str()).unwrap();
        assert!(
            !item["pictures"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["id"] == gone.as_str())
        );
    }
}

#[tokio::test]
async fn a_refresh_during_a_scan_rotates_and_persists_the_pair() {
    let s = setup(fast(350, 0), FaultConfig::none(), 200.0).await;
    let first =
        s.ml.scan_page(ScanKind::Products, &ScanScope::Full, None)
            .await
            .unwrap();
    s.sim.expire_access_tokens();
    let mut records = first.records;
    let mut cursor = first.next;
    while let Some(c) = cursor {
        let page =
            s.ml.scan_page(ScanKind::Products, &ScanScope::Full, Some(&c))
                .await
                .unwrap();
        records.extend(page.records);
        cursor = page.next;
    }
    assert_eq!(records.len(), 350);
    assert_eq!(s.sim.refreshes(), 1);
    let saved = s.sink.0.lock().unwrap().clone();
    assert_eq!(saved.len(), 1);
    let now = s.ml.current_tokens().await;
    assert_eq!(
        saved[0].get("refresh_token").unwrap().expose(),
        now.refresh_token
    );
    assert_eq!(now.refresh_token, s.sim.current_refresh_token());
    assert_ne!(now.refresh_token, "TG-initial");

    // A second client still holding the spent refresh token is refused.
    let stale = connector(
        &s.running,
        200.0,
        tokens("TG-initial"),
        Arc::new(RecordingSink::default()),
    );
    let err = stale
        .fetch_one(
            ScanKind::Products,
            &ExternalId::new(s.sim.item_ids()[0].clone()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Unauthorized { .. }), "{err}");
}

#[tokio::test]
async fn an_expired_scroll_id_is_cursor_expired() {
    let s = setup(
        MlConfig {
            scroll_ttl: Duration::from_millis(100),
            ..fast(250, 0)
        },
        FaultConfig::none(),
        200.0,
    )
    .await;
    let first =
        s.ml.scan_page(ScanKind::Products, &ScanScope::Full, None)
            .await
            .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let err =
        s.ml.scan_page(ScanKind::Products, &ScanScope::Full, first.next.as_ref())
            .await
            .unwrap_err();
    assert!(matches!(err, ConnectorError::CursorExpired { .. }), "{err}");
}

/// A loopback notification receiver: answers 200 after `delay`, hands each body on.
async fn receiver(delay: Duration) -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notifications", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            tokio::time::sleep(delay).await;
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                .await;
                            let _ = tx.send(buf[end + 4..end + 4 + length].to_vec());
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

async fn next_body(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) -> Vec<u8> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a notification within 5 s")
        .expect("receiver open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_a_receiver_and_name_the_item_or_order() {
    use tidemark_connector::Authenticity;
    use tidemark_sim::mercadolibre::{ItemEdit, PlaceOrder};
    let s = setup(fast(5, 0), FaultConfig::none(), 200.0).await;
    let (url, mut rx) = receiver(Duration::ZERO).await;
    s.sim.set_notification_url(Some(url));
    let item = s.sim.item_ids()[2].clone();

    s.sim
        .edit_item(
            &item,
            &ItemEdit {
                title: Some("Renamed on the site".into()),
                ..ItemEdit::default()
            },
        )
        .unwrap();
    let body = next_body(&mut rx).await;
    let event = s.ml.verify_webhook(&http::HeaderMap::new(), &body).unwrap();
    assert_eq!(event.authenticity, Authenticity::HintOnly);
    assert_eq!(event.topic, "items");
    let r = event.resource.unwrap();
    assert_eq!(
        (r.kind, r.external_id.as_str()),
        (ScanKind::Products, item.as_str())
    );

    let order = s
        .sim
        .place_order(&PlaceOrder {
            item_id: item.clone(),
            variation_id: None,
            quantity: 1,
        })
        .unwrap();
    // Placing an order also changes the item's stock: collect until the order arrives.
    let mut seen = None;
    for _ in 0..3 {
        let event =
            s.ml.verify_webhook(&http::HeaderMap::new(), &next_body(&mut rx).await)
                .unwrap();
        if event.topic == "orders_v2" {
            seen = event.resource;
            break;
        }
    }
    let r = seen.expect("an orders_v2 notification");
    assert_eq!(
        (r.kind, r.external_id.0),
        (ScanKind::Orders, order.to_string())
    );
    // A hint names a record the connector can fetch with its own token.
    assert!(
        s.ml.fetch_one(ScanKind::Orders, &ExternalId::new(order.to_string()))
            .await
            .unwrap()
            .is_some()
    );

    // Another seller's notification is refused.
    let foreign = br#"{"_id":"x","resource":"/items/MLA1","user_id":1,"topic":"items"}"#;
    assert!(matches!(
        s.ml.verify_webhook(&http::HeaderMap::new(), foreign),
        Err(ConnectorError::Unauthorized { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_disables_the_topic_and_missed_feeds_catch_up() {
    use tidemark_sim::mercadolibre::ItemEdit;
    let s = setup(fast(5, 0), FaultConfig::none(), 200.0).await;
    let (url, mut rx) = receiver(Duration::from_millis(700)).await;
    s.sim.set_notification_url(Some(url));
    let ids = s.sim.item_ids();
    let edit = |title: &str| ItemEdit {
        title: Some(title.into()),
        ..ItemEdit::default()
    };
    s.sim.edit_item(&ids[0], &edit("first")).unwrap();
    next_body(&mut rx).await; // received, but answered after 700 ms
    let started = Instant::now();
    while s.sim.disabled_topics().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "topic never disabled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.sim.disabled_topics(), ["items"]);
    // While disabled nothing is POSTed; everything undelivered is in /missed_feeds.
    for id in &ids[1..] {
        s.sim.edit_item(id, &edit("while disabled")).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        rx.try_recv().is_err(),
        "nothing delivered on a disabled topic"
    );
    let missed = s.ml.missed_notifications("items").await.unwrap();
    let named: BTreeSet<String> = missed
        .iter()
        .map(|e| e.resource.as_ref().unwrap().external_id.0.clone())
        .collect();
    assert_eq!(named, ids.iter().cloned().collect::<BTreeSet<_>>());
    assert!(missed.iter().all(|e| e.topic == "items"));
    assert!(
        s.ml.missed_notifications("orders_v2")
            .await
            .unwrap()
            .is_empty()
    );
    // Subscribing again re-enables the topic.
    s.sim.set_notification_url(None);
    assert!(s.sim.disabled_topics().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_scans_beyond_the_offset_cap_return_each_order_once() {
    // The cap lowered from 10,000 to 100 so 1,000 orders need at least ten windows.
    let config = MlConfig {
        order_offset_cap: 100,
        rate_per_second: None,
        ..fast(20, 1_000)
    };
    let sim = MlSim::new(config, FaultConfig::none());
    let running = sim.serve().await.unwrap();
    let sink = Arc::new(RecordingSink::default());
    let mut settings = Settings::new("MLA", 207_035_636, "5503910054141466");
    settings.base_url = running.base_url.clone();
    settings.requests_per_second = 5_000.0;
    settings.orders_offset_cap = 100;
    let ml = MercadoLibre::new(settings, tokens("TG-initial"), ConnectionId(1), sink).unwrap();
    let all = scan_all(&ml, ScanKind::Orders, ScanScope::Full).await;
    let ids: BTreeSet<String> = all.iter().map(|r| r.external_id.0.clone()).collect();
    assert_eq!(all.len(), 1_000, "each order exactly once");
    assert_eq!(ids.len(), 1_000);
    let expected: BTreeSet<String> = sim.order_ids().iter().map(u64::to_string).collect();
    assert_eq!(ids, expected);
    // A window scope from the middle returns the later half only.
    let mut times: Vec<Timestamp> = all.iter().map(|r| r.updated_at.unwrap()).collect();
    times.sort();
    let since = times[500];
    let later = scan_all(&ml, ScanKind::Orders, ScanScope::Incremental { since }).await;
    assert_eq!(later.len(), times.iter().filter(|t| **t >= since).count());
}

#[tokio::test]
async fn created_variations_carry_the_pictures_their_variants_use() {
    let s = setup(fast(2, 0), FaultConfig::none(), 200.0).await;
    let new = product_with_variant_images(9_000..9_100);
    let created = write(
        &s.ml,
        WriteOp::CreateProduct {
            product: new.clone(),
        },
    )
    .await
    .unwrap();
    let id = created.record.external_id.clone();
    let item = s.sim.item_json(&s.running.base_url, id.as_str()).unwrap();
    let pictures: Vec<String> = item["pictures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pictures.len(), new.images.len());
    let variations = item["variations"].as_array().unwrap();
    assert_eq!(variations.len(), new.variants.len());
    for (variation, variant) in variations.iter().zip(&new.variants) {
        let expected: Vec<&str> = variant
            .image_hashes
            .iter()
            .map(|h| {
                let at = new
                    .images
                    .iter()
                    .position(|i| i.content_hash == *h)
                    .unwrap();
                pictures[at].as_str()
            })
            .collect();
        let got: Vec<&str> = variation["picture_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(got, expected, "variation {}", variation["id"]);
    }
    // The confirmed record and a fresh read agree: every variant names its images.
    let read =
        s.ml.fetch_one(ScanKind::Products, &id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(created.record.content, read.content);
    assert!(
        product(&read)
            .variants
            .iter()
            .all(|v| !v.image_hashes.is_empty())
    );
}

#[tokio::test]
async fn a_window_scan_walks_newest_first_and_stops_at_since() {
    use tidemark_sim::mercadolibre::ItemEdit;
    let s = setup(fast(300, 0), FaultConfig::none(), 200.0).await;
    let since = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let ids = s.sim.item_ids();
    let mut edited = BTreeSet::new();
    for id in ids.iter().step_by(20) {
        let edit = ItemEdit {
            price: Some("123.45".into()),
            ..ItemEdit::default()
        };
        s.sim.edit_item(id, &edit).unwrap();
        edited.insert(id.clone());
    }
    let requests_before = s.sim.harness.stats.snapshot().requests;
    let found = scan_all(&s.ml, ScanKind::Products, ScanScope::Window { since }).await;
    let requests = s.sim.harness.stats.snapshot().requests - requests_before;
    let found_ids: BTreeSet<String> = found.iter().map(|r| r.external_id.0.clone()).collect();
    assert_eq!(found_ids, edited);
    assert_eq!(found.len(), edited.len());
    assert!(found.iter().all(|r| r.updated_at.unwrap() >= since));
    // One search page, its multigets and the descriptions of the items found, not the
    // 300-item catalogue.
    assert!(
        requests <= (1 + 100 / 20 + edited.len()) as u64,
        "{requests} requests"
    );
}

/// Ids of the records of a scan, each once, failing on a repeat.
fn ids_once(records: &[ExternalRecord]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for r in records {
        assert!(
            ids.insert(r.external_id.0.clone()),
            "{} twice",
            r.external_id
        );
    }
    ids
}

#[tokio::test]
async fn incremental_items_after_20_edits_are_those_20_and_an_edit_during_a_scan_is_caught_next() {
    use tidemark_sim::mercadolibre::ItemEdit;
    let s = setup(fast(600, 0), FaultConfig::none(), 200.0).await;
    let ids = s.sim.item_ids();
    let edit = |price: &str| ItemEdit {
        price: Some(price.into()),
        ..ItemEdit::default()
    };
    // MercadoLibre has no "updated since" filter for items: an incremental product scan is a
    // window walking `orders=last_updated_desc` newest first, stopping at `since`.
    let since = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut edited = BTreeSet::new();
    for id in ids.iter().skip(3).step_by(29).take(20) {
        s.sim.edit_item(id, &edit("321.50")).unwrap();
        edited.insert(id.clone());
    }
    assert_eq!(edited.len(), 20);
    let requests_before = s.sim.harness.stats.snapshot().requests;
    let found = scan_all(&s.ml, ScanKind::Products, ScanScope::Window { since }).await;
    let requests = s.sim.harness.stats.snapshot().requests - requests_before;
    println!("20 edits of 600 items: a window scan of {requests} requests");
    assert_eq!(ids_once(&found), edited);
    for r in &found {
        assert!(r.updated_at.unwrap() >= since);
        let p = product(r);
        assert!(
            p.variants
                .iter()
                .all(|v| v.price == Some(Decimal::new(32_150, 2)))
        );
    }

    // More edits, so that the next window spans three search pages; one item of the last
    // page is edited again while the scan is on its first page.
    let more: Vec<String> = ids
        .iter()
        .filter(|id| !edited.contains(*id))
        .take(230)
        .cloned()
        .collect();
    for (n, id) in more.iter().enumerate() {
        s.sim.edit_item(id, &edit("99.99")).unwrap();
        if n == 0 {
            // Strictly older than the rest (edits in one millisecond sort by id).
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    edited.extend(more.iter().cloned());
    // The oldest of these edits: the window reaches it on its third page.
    let moved = more[0].clone();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let scan_started = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    let scope = ScanScope::Window { since };
    let first =
        s.ml.scan_page(ScanKind::Products, &scope, None)
            .await
            .unwrap();
    assert!(first.next.is_some(), "a window of 250 items spans pages");
    assert!(!first.records.iter().any(|r| r.external_id.0 == moved));
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.sim.edit_item(&moved, &edit("55.55")).unwrap();
    let mut records = first.records;
    let mut cursor = first.next;
    while let Some(c) = cursor {
        let page =
            s.ml.scan_page(ScanKind::Products, &scope, Some(&c))
                .await
                .unwrap();
        records.extend(page.records);
        cursor = page.next;
    }
    let seen: BTreeSet<String> = records.iter().map(|r| r.external_id.0.clone()).collect();
    // The edit moved the item to the front, behind the scan: this scan misses it (the items
    // it passed shift by one place, so a page may repeat one but none is skipped).
    let missed: Vec<&String> = edited.difference(&seen).collect();
    println!(
        "window of {} edited items: {} records, missed during the scan: {missed:?}",
        edited.len(),
        records.len()
    );
    assert!(missed.iter().all(|id| **id == moved), "{missed:?}");
    assert!(seen.is_subset(&edited));
    // The next incremental scan, from when the last one started, catches it with its new
    // price.
    let next = scan_all(
        &s.ml,
        ScanKind::Products,
        ScanScope::Window {
            since: scan_started,
        },
    )
    .await;
    let caught: Vec<&ExternalRecord> = next.iter().filter(|r| r.external_id.0 == moved).collect();
    assert_eq!(caught.len(), 1, "the item edited during the scan");
    assert_eq!(
        ids_once(&next),
        BTreeSet::from([moved.clone()]),
        "only it changed since"
    );
    assert!(
        product(caught[0])
            .variants
            .iter()
            .all(|v| v.price == Some(Decimal::new(5_555, 2)))
    );
}

#[tokio::test]
async fn tracking_added_elsewhere_reaches_a_seller_shipped_order() {
    let s = setup(fast(3, 2), FaultConfig::none(), 200.0).await;
    let ids = s.sim.order_ids();
    let (me1, me2) = (ids[0], ids[1]);
    assert!(s.sim.set_shipping_mode(me1, "me1"));
    let update = |id: u64, tracking: &str, fields: &[Field], order: &tidemark_core::SalesOrder| {
        let mut order = order.clone();
        order.shipments = vec![tidemark_core::Shipment {
            carrier: Some("Correo Argentino".into()),
            tracking_number: Some(tracking.into()),
            status: Default::default(),
        }];
        WriteOp::UpdateOrder {
            external_id: ExternalId::new(id.to_string()),
            order,
            fields: fields.iter().copied().collect(),
        }
    };
    let order_of = |r: &ExternalRecord| match &r.content {
        RecordContent::Order(o) => o.clone(),
        RecordContent::Product(_) => panic!("not an order"),
    };
    let id1 = ExternalId::new(me1.to_string());
    let before =
        s.ml.fetch_one(ScanKind::Orders, &id1)
            .await
            .unwrap()
            .unwrap();
    let confirmed = write(
        &s.ml,
        update(me1, "TRK-42", &[Field::Shipments], &order_of(&before)),
    )
    .await
    .unwrap();
    let after =
        s.ml.fetch_one(ScanKind::Orders, &id1)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(confirmed.record.content, after.content);
    let o = order_of(&after);
    assert_eq!(o.shipments[0].tracking_number.as_deref(), Some("TRK-42"));
    assert!(
        after.updated_at > before.updated_at,
        "the order's last_updated moved"
    );

    // Mercado Envíos (me2): the carrier owns tracking; the platform's code comes back.
    let id2 = ExternalId::new(me2.to_string());
    let other =
        s.ml.fetch_one(ScanKind::Orders, &id2)
            .await
            .unwrap()
            .unwrap();
    let err = write(
        &s.ml,
        update(me2, "TRK-1", &[Field::Shipments], &order_of(&other)),
    )
    .await
    .unwrap_err();
    match err {
        ConnectorError::Rejected { code, .. } => assert_eq!(code, "shipment.mode.not_allowed"),
        other => panic!("{other}"),
    }
    // Other order fields are refused before anything is sent.
    let err = write(
        &s.ml,
        update(me1, "TRK-43", &[Field::OrderStatus], &order_of(&before)),
    )
    .await
    .unwrap_err();
    match err {
        ConnectorError::Rejected { code, .. } => {
            assert_eq!(code, "mercadolibre_order_field_read_only")
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn descriptions_are_read_by_scans_and_fetches_and_written_by_creates_and_updates() {
    let s = setup(fast(3, 0), FaultConfig::none(), 200.0).await;
    // Seeded items carry their sample product's description.
    let records = scan_all(&s.ml, ScanKind::Products, ScanScope::Full).await;
    assert_eq!(records.len(), 3);
    for (n, r) in records.iter().enumerate() {
        let want = sample::product(n as u64 + 1).description;
        assert!(!want.is_empty());
        assert_eq!(product(r).description, want, "scan of {}", r.external_id);
    }
    let id = records[0].external_id.clone();
    let fetched =
        s.ml.fetch_one(ScanKind::Products, &id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        product(&fetched).description,
        product(&records[0]).description
    );

    // An update of another field keeps the description, in the answer and on the platform.
    let mut p = product(&fetched).clone();
    p.title = "Only the title".into();
    let confirmed = write(
        &s.ml,
        WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p.clone(),
            fields: [Field::Title].into_iter().collect(),
            stock: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(product(&confirmed.record).description, p.description);

    // A description update lands.
    p.description = "Texto nuevo, sin HTML.".into();
    let confirmed = write(
        &s.ml,
        WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p.clone(),
            fields: [Field::Description].into_iter().collect(),
            stock: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(
        product(&confirmed.record).description,
        "Texto nuevo, sin HTML."
    );
    let after =
        s.ml.fetch_one(ScanKind::Products, &id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(product(&after).description, "Texto nuevo, sin HTML.");

    // A create writes the description.
    let new = sample::product(7_777);
    let created = write(
        &s.ml,
        WriteOp::CreateProduct {
            product: new.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(product(&created.record).description, new.description);
    let read =
        s.ml.fetch_one(ScanKind::Products, &created.record.external_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(product(&read).description, new.description);
}

#[tokio::test]
async fn a_short_scan_page_mid_scroll_does_not_end_the_scan() {
    let s = setup(fast(250, 0), FaultConfig::none(), 200.0).await;
    s.sim.set_short_scan_page(Some((1, 7)));
    let records = scan_all(&s.ml, ScanKind::Products, ScanScope::Full).await;
    let unique: BTreeSet<String> = records.iter().map(|r| r.external_id.0.clone()).collect();
    assert_eq!(unique.len(), 250, "a short page is not the end");
    assert_eq!(records.len(), 250);
}

#[tokio::test]
async fn an_order_updated_mid_scan_does_not_make_the_scan_skip_another() {
    use tidemark_sim::mercadolibre::OrderEdit;
    let s = setup(fast(10, 120), FaultConfig::none(), 200.0).await;
    let scope = ScanScope::Full;
    let first =
        s.ml.scan_page(ScanKind::Orders, &scope, None)
            .await
            .unwrap();
    assert_eq!(first.records.len(), 50);
    // An order of the first page changes: it leaves the scan's window, and every later order
    // moves one place towards the start.
    let moved: u64 = first.records[0].external_id.as_str().parse().unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(s.sim.edit_order(
        moved,
        &OrderEdit {
            status: Some("cancelled".into())
        }
    ));
    let mut seen: Vec<String> = first
        .records
        .iter()
        .map(|r| r.external_id.0.clone())
        .collect();
    let mut cursor = first.next;
    while let Some(c) = cursor {
        let page =
            s.ml.scan_page(ScanKind::Orders, &scope, Some(&c))
                .await
                .unwrap();
        seen.extend(page.records.iter().map(|r| r.external_id.0.clone()));
        cursor = page.next;
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 120, "no order skipped");
    assert_eq!(seen.len(), 120, "none returned twice");
}

/// Fails its first `failures` saves, then records.
struct FlakySink {
    failures: Mutex<u32>,
    saved: Mutex<Vec<Credentials>>,
}

#[async_trait]
impl CredentialSink for FlakySink {
    async fn save(&self, _: ConnectionId, credentials: &Credentials) -> Result<(), ConnectorError> {
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(ConnectorError::transient("credential store unavailable"));
        }
        self.saved.lock().unwrap().push(credentials.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_credential_save_keeps_the_rotated_pair_in_memory() {
    let sim = MlSim::new(fast(3, 0), FaultConfig::none());
    let running = sim.serve().await.unwrap();
    let sink = Arc::new(FlakySink {
        failures: Mutex::new(1_000),
        saved: Mutex::new(Vec::new()),
    });
    let mut settings = Settings::new("MLA", 207_035_636, "5503910054141466");
    settings.base_url = running.base_url.clone();
    settings.requests_per_second = 200.0;
    let ml = MercadoLibre::new(
        settings,
        tokens("TG-initial"),
        ConnectionId(1),
        sink.clone(),
    )
    .unwrap();
    let id = ExternalId::new(sim.item_ids()[0].clone());

    sim.expire_access_tokens();
    let err = ml.fetch_one(ScanKind::Products, &id).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("held in memory"), "{err}");
    // The spent token is not kept: the client holds the pair the platform now honours.
    assert_eq!(
        ml.current_tokens().await.refresh_token,
        sim.current_refresh_token()
    );
    assert!(sink.saved.lock().unwrap().is_empty());

    // The connection still works, without another refresh; once the store is back, the
    // pair is saved before the next request.
    assert!(
        ml.fetch_one(ScanKind::Products, &id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(sim.refreshes(), 1);
    *sink.failures.lock().unwrap() = 0;
    assert!(
        ml.fetch_one(ScanKind::Products, &id)
            .await
            .unwrap()
            .is_some()
    );
    let saved = sink.saved.lock().unwrap().clone();
    assert_eq!(saved.len(), 1);
    assert_eq!(
        saved[0].get("refresh_token").unwrap().expose(),
        sim.current_refresh_token()
    );

    // A save that fails once is retried within the refresh.
    *sink.failures.lock().unwrap() = 1;
    sim.expire_access_tokens();
    assert!(
        ml.fetch_one(ScanKind::Products, &id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(sim.refreshes(), 2);
    assert_eq!(sink.saved.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_absurd_platform_quantity_is_refused_for_that_write_not_a_panic() {
    use tidemark_sim::mercadolibre::ItemEdit;
    let s = setup(fast(2, 0), FaultConfig::none(), 200.0).await;
    let id = ExternalId::new(s.sim.item_ids()[0].clone());
    let before =
        s.ml.fetch_one(ScanKind::Products, &id)
            .await
            .unwrap()
            .unwrap();
    let p = product(&before).clone();
    let v0 = p.variants[0].external_id.clone().unwrap();
    s.sim
        .edit_item(
            id.as_str(),
            &ItemEdit {
                stock: Some(i64::MAX),
                variation_id: Some(v0.as_str().parse().unwrap()),
                ..ItemEdit::default()
            },
        )
        .unwrap();
    let err = write(
        &s.ml,
        WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p,
            fields: [Field::Stock].into_iter().collect(),
            stock: vec![StockChange {
                variant: v0,
                sku: None,
                from: 1,
                to: 6,
            }],
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Rejected { code, .. } if code == "mercadolibre_quantity_overflow"),
        "{err}"
    );
}

/// A server answering every request with `answer(request head)` (HTTP/1.1, one request per
/// connection).
async fn fixed_answer(
    answer: fn(&str) -> &'static str,
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let body = answer(&String::from_utf8_lossy(&buf[..n]));
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn missed_feeds_without_a_total_that_ignore_offset_end() {
    // The same page for every offset, and no `paging.total`.
    let (base, hits) = fixed_answer(|_| {
        r#"{"messages":[{"_id":"n1","resource":"/items/MLA1","user_id":207035636,"topic":"items","application_id":5503910054141466,"attempts":1,"sent":"2025-06-02T14:30:00.129Z","received":"2025-06-02T14:30:00.106Z"}]}"#
    })
    .await;
    let mut settings = Settings::new("MLA", 207_035_636, "5503910054141466");
    settings.base_url = base;
    settings.requests_per_second = 200.0;
    let ml = MercadoLibre::new(
        settings,
        tokens("TG-initial"),
        ConnectionId(1),
        Arc::new(RecordingSink::default()),
    )
    .unwrap();
    let events = tokio::time::timeout(Duration::from_secs(10), ml.missed_notifications("items"))
        .await
        .expect("missed_notifications must end")
        .unwrap();
    assert_eq!(events.len(), 1);
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) <= 3);
}

#[tokio::test]
async fn an_item_scan_whose_scroll_never_empties_is_cut_off() {
    // Every scan page names the same item, with a total of one.
    let (base, _) = fixed_answer(|head| {
        if head.contains("/items/search") {
            r#"{"paging":{"total":1},"results":["MLA1"],"scroll_id":"s"}"#
        } else if head.contains("/description") {
            r#"{"plain_text":"d"}"#
        } else {
            r#"[{"code":200,"body":{"id":"MLA1","title":"x","price":1,"currency_id":"ARS"}}]"#
        }
    })
    .await;
    let mut settings = Settings::new("MLA", 207_035_636, "5503910054141466");
    settings.base_url = base;
    settings.requests_per_second = 200.0;
    let ml = MercadoLibre::new(
        settings,
        tokens("TG-initial"),
        ConnectionId(1),
        Arc::new(RecordingSink::default()),
    )
    .unwrap();
    let mut cursor: Option<Cursor> = None;
    let mut pages = 0;
    let err = loop {
        match ml
            .scan_page(ScanKind::Products, &ScanScope::Full, cursor.as_ref())
            .await
        {
            Ok(page) => {
                pages += 1;
                assert!(pages < 10, "the scan goes on");
                cursor = Some(page.next.expect("pages keep naming items"));
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(err, ConnectorError::Fatal { .. }), "{err}");
    assert!(pages <= 2, "{pages} pages");
}

#[tokio::test]
async fn a_create_repeated_after_a_lost_answer_does_not_duplicate_under_index_lag() {
    let faults = FaultConfig {
        index_lag_ms: 1_000,
        ..FaultConfig::none()
    };
    let sim = MlSim::new(fast(2, 0), faults);
    let running = sim.serve().await.unwrap();
    let mut settings = Settings::new("MLA", 207_035_636, "5503910054141466");
    settings.base_url = running.base_url.clone();
    settings.default_category_id = Some("MLA1234".into());
    settings.requests_per_second = 200.0;
    settings.sku_search_lag_ms = 1_500;
    let ml = MercadoLibre::new(
        settings,
        tokens("TG-initial"),
        ConnectionId(1),
        Arc::new(RecordingSink::default()),
    )
    .unwrap();
    let new = sample::product(31_337);
    let op = WriteOp::CreateProduct {
        product: new.clone(),
    };
    sim.lose_create_answers(1);
    let err = write(&ml, op.clone()).await.unwrap_err();
    assert!(err.is_maybe_applied(), "{err}");
    // The engine repeats the create at once: the search does not show the item yet.
    let mut adopted = None;
    for _ in 0..40 {
        match write(&ml, op.clone()).await {
            Ok(confirmed) => {
                adopted = Some(confirmed);
                break;
            }
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("create failed: {e}"),
        }
    }
    let adopted = adopted.expect("the create ends once the search can be trusted");
    assert!(adopted.adopted);
    let stats = sim.harness.stats.snapshot();
    assert_eq!(
        (stats.creates, stats.duplicate_creates),
        (1, 0),
        "{stats:?}"
    );
    assert_eq!(sim.item_ids().len(), 3);

    // A create whose answer arrived is journalled: repeating it adopts at once, search or not.
    let other = sample::product(31_338);
    let first = write(
        &ml,
        WriteOp::CreateProduct {
            product: other.clone(),
        },
    )
    .await
    .unwrap();
    let again = write(&ml, WriteOp::CreateProduct { product: other })
        .await
        .unwrap();
    assert!(again.adopted);
    assert_eq!(again.record.external_id, first.record.external_id);
    assert_eq!(sim.harness.stats.snapshot().duplicate_creates, 0);
}

#[tokio::test]
async fn an_adopted_create_writes_the_product_to_the_item_it_found() {
    let s = setup(fast(2, 0), FaultConfig::none(), 200.0).await;
    let mut new = sample::product(40_001);
    s.sim.lose_create_answers(1);
    let err = write(
        &s.ml,
        WriteOp::CreateProduct {
            product: new.clone(),
        },
    )
    .await
    .unwrap_err();
    assert!(err.is_maybe_applied(), "{err}");
    // The product changed before the create was repeated.
    new.description = "Descripción corregida".into();
    for (n, v) in new.variants.iter_mut().enumerate() {
        v.price = Some(Decimal::new(10_000 + n as i64, 2));
        v.stock = Some(40 + n as i64);
    }
    let adopted = write(
        &s.ml,
        WriteOp::CreateProduct {
            product: new.clone(),
        },
    )
    .await
    .unwrap();
    assert!(adopted.adopted);
    let read =
        s.ml.fetch_one(ScanKind::Products, &adopted.record.external_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(read.content, adopted.record.content);
    let p = product(&read);
    assert_eq!(p.description, "Descripción corregida");
    assert_eq!(p.variants.len(), new.variants.len());
    for v in &new.variants {
        let got = p.variants.iter().find(|w| w.sku == v.sku).unwrap();
        assert_eq!(got.price, v.price, "{:?}", v.sku);
        assert_eq!(got.stock, v.stock, "{:?}", v.sku);
    }
    assert_eq!(p.images.len(), new.images.len());
    assert!(p.variants.iter().all(|v| !v.image_hashes.is_empty()));
    let stats = s.sim.harness.stats.snapshot();
    assert_eq!((stats.creates, stats.duplicate_creates), (1, 0));
}

/// A create of `product`.
async fn create(
    ml: &MercadoLibre,
    product: &Product,
) -> Result<tidemark_connector::Confirmed, ConnectorError> {
    let op = WriteOp::CreateProduct {
        product: product.clone(),
    };
    write(ml, op).await
}

/// An update of `fields` of item `id` to `product`, without stock moves.
async fn update(
    ml: &MercadoLibre,
    id: &ExternalId,
    product: &Product,
    fields: impl IntoIterator<Item = Field>,
) -> Result<tidemark_connector::Confirmed, ConnectorError> {
    let op = WriteOp::UpdateProduct {
        external_id: id.clone(),
        product: product.clone(),
        fields: fields.into_iter().collect(),
        stock: vec![],
    };
    write(ml, op).await
}

/// A sample product with several variants and images, each variant naming its images.
fn product_with_variant_images(seeds: std::ops::Range<u64>) -> Product {
    seeds
        .map(sample::product)
        .find(|p| {
            p.variants.len() > 2
                && p.images.len() > 2
                && p.variants.iter().all(|v| !v.image_hashes.is_empty())
        })
        .expect("a sample product with variant images")
}

#[tokio::test]
async fn an_item_created_for_a_draft_paused_or_archived_product_has_that_status() {
    use tidemark_core::ProductStatus;
    let s = setup(fast(1, 0), FaultConfig::none(), 200.0).await;
    for (n, status) in [
        ProductStatus::Draft,
        ProductStatus::Paused,
        ProductStatus::Archived,
        ProductStatus::Active,
    ]
    .into_iter()
    .enumerate()
    {
        let mut new = product_with_variant_images(50_000 + 100 * n as u64..50_100 + 100 * n as u64);
        new.status = status;
        let created = create(&s.ml, &new).await.unwrap();
        let wanted = s.ml.as_stored(new.clone()).status;
        assert_eq!(product(&created.record).status, wanted, "{status:?}");
        let read = read(&s.ml, ScanKind::Products, &created.record.external_id).await;
        assert_eq!(product(&read).status, wanted, "{status:?}");
        assert_eq!(created.record.content, read.content, "{status:?}");
        // The variation pictures were linked too.
        assert!(
            product(&read)
                .variants
                .iter()
                .all(|v| !v.image_hashes.is_empty())
        );
    }
    let stats = s.sim.harness.stats.snapshot();
    assert_eq!((stats.creates, stats.duplicate_creates), (4, 0));
}

#[tokio::test]
async fn a_status_write_after_a_create_that_fails_is_retried_without_a_second_item() {
    let s = setup(fast(1, 0), FaultConfig::none(), 200.0).await;
    let mut new = sample::product(60_013);
    new.status = tidemark_core::ProductStatus::Paused;
    // No variant images: the status write is the first PUT after the create.
    for v in &mut new.variants {
        v.image_hashes.clear();
    }
    let op = WriteOp::CreateProduct {
        product: new.clone(),
    };
    // Every attempt the client makes at the status write answers 502.
    s.sim.lose_update_answers(1_000);
    let err = write(&s.ml, op.clone()).await.unwrap_err();
    s.sim.lose_update_answers(0);
    assert!(err.is_maybe_applied(), "{err}");
    let ids = s.sim.item_ids();
    assert_eq!(ids.len(), 2);
    let id = ids.last().unwrap().clone();
    assert!(err.to_string().contains(&id), "{err}");
    // As if the status write had never landed.
    s.sim
        .edit_item(
            &id,
            &tidemark_sim::mercadolibre::ItemEdit {
                status: Some("active".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let again = write(&s.ml, op).await.unwrap();
    assert!(again.adopted);
    assert_eq!(again.record.external_id.as_str(), id);
    assert_eq!(
        product(&again.record).status,
        tidemark_core::ProductStatus::Paused
    );
    let read = read(&s.ml, ScanKind::Products, &again.record.external_id).await;
    assert_eq!(read.content, again.record.content);
    let stats = s.sim.harness.stats.snapshot();
    assert_eq!((stats.creates, stats.duplicate_creates), (1, 0));
    assert_eq!(s.sim.item_ids().len(), 2);
}

/// Each variant's images as positions in `p.images`, sorted (hashes differ between what was
/// written and what is read back: MercadoLibre serves its own picture URLs).
fn variant_image_positions(p: &Product) -> Vec<(Option<ExternalId>, Vec<usize>)> {
    p.variants
        .iter()
        .map(|v| {
            let mut at: Vec<usize> = v
                .image_hashes
                .iter()
                .map(|h| {
                    p.images
                        .iter()
                        .position(|i| i.content_hash == *h)
                        .expect("a variant image is one of the product's")
                })
                .collect();
            at.sort_unstable();
            (v.external_id.clone(), at)
        })
        .collect()
}

#[tokio::test]
async fn an_update_of_images_links_each_variation_to_its_variants_pictures() {
    let s = setup(fast(1, 0), FaultConfig::none(), 200.0).await;
    let new = product_with_variant_images(70_000..70_100);
    let created = create(&s.ml, &new).await.unwrap();
    let id = created.record.external_id.clone();
    let mut p = product(&read(&s.ml, ScanKind::Products, &id).await).clone();
    // A new picture, added by this update.
    let mut added = p.images[0].clone();
    added.external_id = None;
    added.src = "https://cdn.example.com/tm/variation-new.png".into();
    added.content_hash = tidemark_core::hash::image_hash_url(&added.src);
    added.position = p.images.len() as u32;
    p.images.push(added.clone());
    // The first picture leaves the item.
    let removed = p.images.remove(0);
    for (n, image) in p.images.iter_mut().enumerate() {
        image.position = n as u32;
    }
    let other = p.images[0].content_hash;
    // One variant moves to another existing picture, one to the new one, one to none, and
    // those that showed the removed picture show the new one.
    p.variants[0].image_hashes = vec![other];
    p.variants[1].image_hashes = vec![added.content_hash];
    p.variants[2].image_hashes.clear();
    for v in p.variants.iter_mut().skip(3) {
        for h in &mut v.image_hashes {
            if *h == removed.content_hash {
                *h = added.content_hash;
            }
        }
    }
    let confirmed = update(&s.ml, &id, &p, [Field::Images]).await.unwrap();
    let got = read(&s.ml, ScanKind::Products, &id).await;
    assert_eq!(confirmed.record.content, got.content);
    let g = product(&got);
    assert_eq!(g.images.len(), p.images.len());
    assert_eq!(variant_image_positions(g), variant_image_positions(&p));
}

/// `p` as it can be compared across a write and a read: as the connector stores it, without
/// the fields MercadoLibre does not carry, images by position (MercadoLibre serves its own
/// URLs, so their hashes and ids differ) and variants without their ids.
fn comparable(ml: &MercadoLibre, p: &Product) -> Product {
    let mut p = ml.as_stored(p.clone());
    p.vendor = None;
    p.tags = Default::default();
    p.barcode = None;
    p.weight_grams = None;
    p.attributes = Default::default();
    let at = |hash: &tidemark_core::ContentHash, images: &[tidemark_core::Image]| {
        let n = images
            .iter()
            .position(|i| i.content_hash == *hash)
            .expect("a variant image is one of the product's");
        tidemark_core::ContentHash(n as u128)
    };
    let images = p.images.clone();
    for v in &mut p.variants {
        v.external_id = None;
        v.barcode = None;
        v.weight_grams = None;
        v.compare_at_price = None;
        v.image_hashes = v.image_hashes.iter().map(|h| at(h, &images)).collect();
    }
    for (n, i) in p.images.iter_mut().enumerate() {
        i.external_id = None;
        i.src = String::new();
        i.content_hash = tidemark_core::ContentHash(n as u128);
        i.position = n as u32;
    }
    tidemark_core::normalize::normalize_product(p).unwrap()
}

/// Checks that the record a write confirmed is what a read gives, and that this is `written`
/// as the connector stores it; returns what was read.
async fn reads_back(
    ml: &MercadoLibre,
    confirmed: &tidemark_connector::Confirmed,
    written: &Product,
    what: &str,
) -> Product {
    let got = read(ml, ScanKind::Products, &confirmed.record.external_id).await;
    assert_eq!(confirmed.record.content, got.content, "{what}");
    let got = product(&got).clone();
    assert_eq!(comparable(ml, &got), comparable(ml, written), "{what}");
    got
}

#[tokio::test]
async fn created_and_updated_items_read_back_as_the_connector_stores_them() {
    use tidemark_core::{ProductStatus, Sku};
    let s = setup(fast(0, 0), FaultConfig::none(), 200.0).await;
    for seed in 80_000..80_012u64 {
        let mut new = sample::product(seed);
        new.category = Some("MLA1234".into());
        if seed % 3 == 0 {
            // One variant without options: an item without variations, whose SKU is the
            // variant's when the product has none (as Shopify products have none).
            new.variants.truncate(1);
            new.variants[0].options.clear();
            new.variants[0].image_hashes.clear();
            if seed % 2 == 0 {
                new.sku = None;
            }
        }
        new.status = [
            ProductStatus::Active,
            ProductStatus::Draft,
            ProductStatus::Paused,
            ProductStatus::Archived,
        ][(seed % 4) as usize];
        let created = create(&s.ml, &new).await.unwrap();
        let id = created.record.external_id.clone();
        let got = reads_back(&s.ml, &created, &new, &format!("create, seed {seed}")).await;
        let sku = s.ml.as_stored(new.clone()).variants[0].sku.clone().unwrap();
        let found = s.ml.find_by_sku(&sku).await.unwrap().unwrap();
        assert_eq!(found.external_id, id, "seed {seed}");
        if new.status == ProductStatus::Archived {
            continue; // closed is final on MercadoLibre
        }

        // An update of every field the connector writes, from what was read.
        let mut p = got;
        p.title = format!("Actualizado {seed}");
        p.description = "<p>Otra descripción</p>".into();
        p.brand = Some("Otra marca".into());
        p.status = if p.status == ProductStatus::Active {
            ProductStatus::Paused
        } else {
            ProductStatus::Active
        };
        let mut added = p.images[0].clone();
        added.external_id = None;
        added.src = format!("https://cdn.example.com/tm/updated-{seed}.png");
        added.content_hash = tidemark_core::hash::image_hash_url(&added.src);
        p.images.push(added.clone());
        for v in &mut p.variants {
            v.price = v.price.map(|x| x + Decimal::new(150, 2));
        }
        let mut fields: BTreeSet<Field> = [
            Field::Title,
            Field::Description,
            Field::Brand,
            Field::Status,
            Field::Price,
            Field::Images,
        ]
        .into();
        if p.variants.len() > 2 {
            p.sku = Some(Sku(format!("NUEVO-{seed}")));
            p.variants[0].image_hashes = vec![added.content_hash];
            // A renamed variant (another variant key, still bound to its variation), a
            // removed one and a new one.
            p.variants[0].sku = Some(Sku(format!("RENOMBRADO-{seed}")));
            p.variants.remove(1);
            let mut extra = p.variants[0].clone();
            extra.external_id = None;
            extra.sku = Some(Sku(format!("EXTRA-{seed}")));
            extra.options.insert("size".into(), "XXXL".into());
            extra.image_hashes = vec![p.images[1].content_hash];
            extra.stock = Some(0);
            p.variants.push(extra);
            fields.extend([Field::Sku, Field::Variants]);
        }
        let updated = update(&s.ml, &id, &p, fields).await.unwrap();
        reads_back(&s.ml, &updated, &p, &format!("update, seed {seed}")).await;
    }
    let stats = s.sim.harness.stats.snapshot();
    assert_eq!((stats.creates, stats.duplicate_creates), (12, 0));
}
