//! Writes of every kind against the WooCommerce simulator, read back: product creates (simple
//! and variable), duplicate-SKU adoption, updates by id that keep attachments, stock moved as
//! a delta over a sale made meanwhile, image deletes, order creates and tracking updates, and
//! the order lookup by number that keeps a repeated order create from duplicating.

use crate::common;

use common::setup;
use rust_decimal::Decimal;
use tidemark_connector::{Confirmed, Connector, Write, WriteKey, WriteOp};
use tidemark_core::{
    ExternalId, ExternalRecord, Field, FieldSet, OrderStatus, Product, RecordContent, SalesOrder,
    ScanKind, Shipment, ShipmentStatus, Sku, StockChange, sample,
};
use tidemark_sim::FaultConfig;
use tidemark_woocommerce::WooCommerce;

async fn apply(wc: &WooCommerce, op: WriteOp) -> Confirmed {
    let results = wc
        .apply_writes(&[Write {
            key: WriteKey::from("w1"),
            op,
        }])
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].key, WriteKey::from("w1"));
    results[0].outcome.clone().unwrap()
}

fn product(record: &ExternalRecord) -> &Product {
    match &record.content {
        RecordContent::Product(p) => p,
        _ => panic!("not a product"),
    }
}

fn order(record: &ExternalRecord) -> &SalesOrder {
    match &record.content {
        RecordContent::Order(o) => o,
        _ => panic!("not an order"),
    }
}

fn fields(list: &[Field]) -> FieldSet {
    list.iter().copied().collect()
}

async fn fetch(wc: &WooCommerce, kind: ScanKind, id: &ExternalId) -> ExternalRecord {
    wc.fetch_one(kind, id).await.unwrap().unwrap()
}

/// A new variable product (not in the seeded shop).
fn new_variable(seed: u64) -> Product {
    let mut p = sample::product(seed);
    p.variants.truncate(3);
    assert!(p.variants.len() >= 2, "sample {seed} has one variant");
    p
}

fn new_simple(seed: u64) -> Product {
    let mut p = sample::product(seed);
    p.variants.truncate(1);
    p.variants[0].options.clear();
    p.variants[0].stock = Some(7);
    p.sku = p.variants[0].sku.clone();
    p
}

fn variant_skus(p: &Product) -> Vec<String> {
    p.variants
        .iter()
        .map(|v| v.sku.as_ref().unwrap().0.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_simple_and_variable_products_and_adopts_a_duplicate_sku() {
    let (sim, _running, wc) = setup(20, FaultConfig::none()).await;
    let before = sim.product_count();

    let simple = new_simple(90_001);
    let created = apply(
        &wc,
        WriteOp::CreateProduct {
            product: simple.clone(),
        },
    )
    .await;
    assert!(!created.adopted);
    let back = fetch(&wc, ScanKind::Products, &created.record.external_id).await;
    let p = product(&back);
    assert_eq!(p.title, simple.title);
    assert_eq!(p.variants.len(), 1);
    assert_eq!(p.variants[0].sku, simple.variants[0].sku);
    assert_eq!(p.variants[0].stock, Some(7));
    assert_eq!(p.variants[0].price, simple.variants[0].price);
    assert_eq!(p.images.len(), simple.images.len());

    let variable = new_variable(90_002);
    let created = apply(
        &wc,
        WriteOp::CreateProduct {
            product: variable.clone(),
        },
    )
    .await;
    assert!(!created.adopted);
    let id = created.record.external_id.clone();
    let back = fetch(&wc, ScanKind::Products, &id).await;
    let p = product(&back);
    assert_eq!(variant_skus(p), variant_skus(&variable));
    for (got, want) in p.variants.iter().zip(&variable.variants) {
        assert_eq!(got.options, want.options);
        assert_eq!(got.price, want.price);
        assert_eq!(got.stock, want.stock);
        assert!(got.external_id.is_some());
    }
    assert_eq!(p.images.len(), variable.images.len());
    assert_eq!(sim.product_count(), before + 2);

    // The same create again (an earlier attempt's answer was lost): the duplicate SKU answer
    // is adopted, no second product appears.
    let again = apply(
        &wc,
        WriteOp::CreateProduct {
            product: variable.clone(),
        },
    )
    .await;
    assert!(again.adopted);
    assert_eq!(again.record.external_id, id);
    assert_eq!(
        variant_skus(product(&again.record)),
        variant_skus(&variable)
    );
    assert_eq!(sim.product_count(), before + 2);
    let stats = sim.harness.stats.snapshot();
    assert_eq!(stats.duplicate_creates, 0);
    assert_eq!(stats.product_deletes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_title_price_and_images_by_id_without_new_attachments() {
    let (sim, _running, wc) = setup(20, FaultConfig::none()).await;
    let id = ExternalId::new(sim.product_ids()[0].to_string());
    let current = fetch(&wc, ScanKind::Products, &id).await;
    let mut p = product(&current).clone();
    assert!(p.images.len() >= 2, "seeded product 1 has images");
    let attachments = sim.attachment_count();
    let image_ids: Vec<_> = p.images.iter().map(|i| i.external_id.clone()).collect();

    p.title = "Renamed by tidemark".into();
    p.variants[0].price = Some(Decimal::new(4321, 2));
    p.variants[0].compare_at_price = None;
    // Images re-sent as they are bound (by id), in a new order.
    p.images.reverse();
    for (n, image) in p.images.iter_mut().enumerate() {
        image.position = n as u32;
    }
    let done = apply(
        &wc,
        WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p.clone(),
            fields: fields(&[Field::Title, Field::Price, Field::Images]),
            stock: vec![],
        },
    )
    .await;
    assert!(!done.adopted);
    let back = fetch(&wc, ScanKind::Products, &id).await;
    let got = product(&back);
    assert_eq!(got.title, "Renamed by tidemark");
    assert_eq!(got.variants[0].price, Some(Decimal::new(4321, 2)));
    assert_eq!(got.variants[0].sku, p.variants[0].sku);
    let mut want_ids = image_ids.clone();
    want_ids.reverse();
    let got_ids: Vec<_> = got.images.iter().map(|i| i.external_id.clone()).collect();
    assert_eq!(got_ids, want_ids, "same attachments, new order");
    assert_eq!(sim.attachment_count(), attachments, "no attachment created");
    // Untouched variants keep their prices.
    for (a, b) in got
        .variants
        .iter()
        .zip(product(&current).variants.iter())
        .skip(1)
    {
        assert_eq!(a.price, b.price);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_moves_as_a_delta_over_a_sale_made_meanwhile() {
    let (sim, _running, wc) = setup(20, FaultConfig::none()).await;
    // A variable product (the first seeded is variable) and a simple one (every 8th).
    for index in [0usize, 7] {
        let id = ExternalId::new(sim.product_ids()[index].to_string());
        let current = fetch(&wc, ScanKind::Products, &id).await;
        let p = product(&current).clone();
        let v = p.variants[0].clone();
        let sku = v.sku.clone().unwrap().0;
        let old = sim.stock_of(&sku).expect("managed stock");
        assert_eq!(v.stock, Some(old));

        // A buyer orders one on the platform; tidemark, which saw `old`, sells one elsewhere.
        sim.place_order(&sku, 1).unwrap();
        assert_eq!(sim.stock_of(&sku), Some(old - 1));
        let done = apply(
            &wc,
            WriteOp::UpdateProduct {
                external_id: id.clone(),
                product: p.clone(),
                fields: fields(&[Field::Stock]),
                stock: vec![StockChange {
                    variant: v.external_id.clone().unwrap(),
                    sku: Some(Sku(sku.clone())),
                    from: old,
                    to: old - 1,
                }],
            },
        )
        .await;
        assert_eq!(sim.stock_of(&sku), Some(old - 2), "both sales count");
        let confirmed = product(&done.record)
            .variants
            .iter()
            .find(|x| x.sku.as_ref().map(|s| s.0.as_str()) == Some(sku.as_str()))
            .unwrap()
            .stock;
        assert_eq!(confirmed, Some(old - 2));
        // Other variants untouched.
        for (a, b) in product(&done.record)
            .variants
            .iter()
            .zip(&p.variants)
            .skip(1)
        {
            assert_eq!(a.stock, b.stock);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_one_image_and_keeps_the_others() {
    let (sim, _running, wc) = setup(20, FaultConfig::none()).await;
    let id = ExternalId::new(sim.product_ids()[1].to_string());
    let current = fetch(&wc, ScanKind::Products, &id).await;
    let p = product(&current).clone();
    assert!(p.images.len() >= 2);
    let gone = p.images[1].clone();
    apply(
        &wc,
        WriteOp::DeleteProductImage {
            product_id: id.clone(),
            image_id: gone.external_id.clone(),
            content_hash: gone.content_hash,
        },
    )
    .await;
    let back = fetch(&wc, ScanKind::Products, &id).await;
    let got: Vec<_> = product(&back)
        .images
        .iter()
        .map(|i| i.external_id.clone())
        .collect();
    let want: Vec<_> = p
        .images
        .iter()
        .filter(|i| i.external_id != gone.external_id)
        .map(|i| i.external_id.clone())
        .collect();
    // Variations that showed it lose it too: it is gone from the record.
    assert_eq!(got, want);
    assert!(
        product(&back)
            .variants
            .iter()
            .all(|v| !v.image_hashes.contains(&gone.content_hash))
    );
    assert_eq!(sim.harness.stats.snapshot().product_deletes, 0);
}

fn new_order(sku: &str, number: &str) -> SalesOrder {
    let mut o = sample::order(7);
    o.number = number.to_owned();
    o.status = OrderStatus::Processing;
    o.shipments.clear();
    for line in &mut o.lines {
        line.sku = Some(Sku(sku.to_owned()));
    }
    o.lines.truncate(1);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_an_order_updates_its_tracking_and_finds_it_by_number() {
    let (sim, _running, wc) = setup(20, FaultConfig::none()).await;
    let sku = sim.all_skus()[0].clone();
    let orders_before = sim.order_count();

    let number = "ML-2000003508419013";
    assert!(wc.find_order_by_number(number).await.unwrap().is_none());
    let wanted = new_order(&sku, number);
    let created = apply(
        &wc,
        WriteOp::CreateOrder {
            order: wanted.clone(),
        },
    )
    .await;
    let id = created.record.external_id.clone();
    assert_eq!(sim.order_count(), orders_before + 1);
    let back = fetch(&wc, ScanKind::Orders, &id).await;
    let o = order(&back);
    assert_eq!(o.status, OrderStatus::Processing);
    assert_eq!(o.lines.len(), 1);
    assert_eq!(o.lines[0].sku, Some(Sku(sku.clone())));
    assert_eq!(o.lines[0].quantity, wanted.lines[0].quantity);
    assert_eq!(o.buyer.email, wanted.buyer.email);
    let raw = sim.order_json(id.as_str().parse().unwrap()).unwrap();
    assert!(
        raw["meta_data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["key"] == "_tidemark_number" && m["value"] == number),
        "{raw}"
    );

    // Before repeating a create that may have applied, the send path looks it up.
    let found = wc.find_order_by_number(number).await.unwrap().unwrap();
    assert_eq!(found.external_id, id);
    // The shop's own number is found too (by search), and an unknown one is not.
    let own = order(&back).number.clone();
    let found = wc.find_order_by_number(&own).await.unwrap().unwrap();
    assert_eq!(found.external_id, id);
    assert!(wc.find_order_by_number("NOPE-1").await.unwrap().is_none());

    // Tracking and status.
    let mut shipped = wanted.clone();
    shipped.status = OrderStatus::Completed;
    shipped.shipments = vec![Shipment {
        carrier: Some("UPS".into()),
        tracking_number: Some("1Z999AA10123456784".into()),
        status: ShipmentStatus::Shipped,
    }];
    apply(
        &wc,
        WriteOp::UpdateOrder {
            external_id: id.clone(),
            order: shipped,
            fields: fields(&[Field::OrderStatus, Field::Shipments]),
        },
    )
    .await;
    let back = fetch(&wc, ScanKind::Orders, &id).await;
    let o = order(&back);
    assert_eq!(o.status, OrderStatus::Completed);
    assert_eq!(o.shipments.len(), 1);
    assert_eq!(o.shipments[0].carrier.as_deref(), Some("UPS"));
    assert_eq!(
        o.shipments[0].tracking_number.as_deref(),
        Some("1Z999AA10123456784")
    );
    assert_eq!(sim.order_count(), orders_before + 1);
    assert_eq!(sim.harness.stats.snapshot().order_deletes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variant_removed_from_the_product_is_deleted_and_a_new_one_added() {
    let (sim, _running, wc) = setup(20, FaultConfig::none()).await;
    let id = ExternalId::new(sim.product_ids()[0].to_string());
    let current = fetch(&wc, ScanKind::Products, &id).await;
    let mut p = product(&current).clone();
    assert!(p.variants.len() >= 3, "seeded product 1 has 3+ variants");
    let removed = p.variants.remove(1);
    let mut added = p.variants[0].clone();
    added.external_id = None;
    added.sku = Some(Sku("TM-NEW-VARIANT".into()));
    added.options.insert("size".into(), "XXXL".into());
    p.variants.push(added);
    let done = apply(
        &wc,
        WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p.clone(),
            fields: fields(&[Field::Variants]),
            stock: vec![],
        },
    )
    .await;
    let back = fetch(&wc, ScanKind::Products, &id).await;
    for record in [&done.record, &back] {
        let got = product(record);
        assert_eq!(variant_skus(got), variant_skus(&p));
        assert!(
            !got.variants
                .iter()
                .any(|v| v.external_id == removed.external_id)
        );
    }
    assert!(
        !sim.all_skus().contains(&removed.sku.clone().unwrap().0),
        "the removed variation is gone"
    );
    let stats = sim.harness.stats.snapshot();
    assert_eq!(stats.product_deletes, 0);
    assert_eq!(stats.duplicate_creates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_create_keeps_the_attachments_it_finds() {
    let (sim, _running, wc) = setup(10, FaultConfig::none()).await;
    let p = new_variable(90_010);
    let first = apply(&wc, WriteOp::CreateProduct { product: p.clone() }).await;
    let attachments = sim.attachment_count();
    let gallery: Vec<_> = product(&first.record)
        .images
        .iter()
        .map(|i| i.external_id.clone())
        .collect();
    assert_eq!(gallery.len(), p.images.len());
    let again = apply(&wc, WriteOp::CreateProduct { product: p.clone() }).await;
    assert!(again.adopted);
    assert_eq!(
        sim.attachment_count(),
        attachments,
        "no image uploaded again"
    );
    let kept: Vec<_> = product(&again.record)
        .images
        .iter()
        .map(|i| i.external_id.clone())
        .collect();
    assert_eq!(kept, gallery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_image_upload_after_a_lost_answer_does_not_duplicate_it() {
    let (sim, _running, wc) = setup(10, FaultConfig::none()).await;
    let id = ExternalId::new(sim.product_ids()[0].to_string());
    let current = fetch(&wc, ScanKind::Products, &id).await;
    let mut p = product(&current).clone();
    let n = p.images.len();
    let src = "https://cdn.example.com/new/front.jpg".to_owned();
    p.images.push(tidemark_core::Image {
        external_id: None,
        content_hash: tidemark_core::hash::image_hash_url(&src),
        src,
        hash_source: tidemark_core::ImageHashSource::Url,
        position: n as u32,
        alt: None,
    });
    let attachments = sim.attachment_count();
    sim.script(
        "PUT",
        "products/*",
        0,
        tidemark_sim::woocommerce::Scripted::AfterApply,
    );
    let done = apply(
        &wc,
        WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p,
            fields: fields(&[Field::Images]),
            stock: vec![],
        },
    )
    .await;
    assert_eq!(sim.scripted_left(), 0);
    assert_eq!(sim.attachment_count(), attachments + 1, "uploaded once");
    assert_eq!(product(&done.record).images.len(), n + 1);
}
