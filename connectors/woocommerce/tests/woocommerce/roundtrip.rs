//! Products written to the WooCommerce simulator read back as the connector's `as_stored`
//! says of what was written, created and then updated: variations with and without images,
//! images outside the gallery or not the product's at all, simple products, SKU-less variants.
//!
//! Compared as written, but for what the platform gives by design: the ids of the shop, and
//! the source of an uploaded image (WordPress serves it from its own media URL, so it reads
//! back with another URL and content hash; images are paired by gallery position). Vendor is
//! not carried (`Connector::carries`) and prices are in the shop's currency (the engine
//! converts), so the products are written without a vendor and in the shop's currency.

use crate::common;

use std::collections::BTreeMap;

use common::{setup, write_one};
use rust_decimal::Decimal;
use tidemark_connector::{Connector, WriteOp};
use tidemark_core::hash::image_hash_url;
use tidemark_core::{
    Barcode, Currency, ExternalRecord, Field, FieldSet, Product, RecordContent, ScanKind, sample,
};
use tidemark_sim::FaultConfig;
use tidemark_woocommerce::WooCommerce;

fn product(record: &ExternalRecord) -> &Product {
    match &record.content {
        RecordContent::Product(p) => p,
        _ => panic!("not a product"),
    }
}

/// A sample product of `variants` variants as another platform would hand it over, in the
/// shop's currency and without a vendor.
fn base(seed: u64, variants: usize) -> Product {
    let mut p = sample::product(seed);
    p.variants.truncate(variants);
    p.currency = Currency::USD;
    p.vendor = None;
    p
}

fn simple(seed: u64) -> Product {
    let mut p = base(seed, 1);
    p.variants[0].options.clear();
    p
}

fn cases() -> Vec<(&'static str, Product)> {
    let mut out = Vec::new();
    let mut p = base(91_301, 3);
    p.variants[0].image_hashes.clear();
    out.push(("variations with and without an image", p));
    let mut p = base(91_302, 3);
    for v in &mut p.variants {
        v.image_hashes.clear();
    }
    out.push(("no variation with an image", p));
    let mut p = base(91_303, 3);
    p.images.clear();
    for v in &mut p.variants {
        v.image_hashes.clear();
    }
    out.push(("no images at all", p));
    let mut p = base(91_304, 3);
    let dropped = p.images.remove(0).content_hash;
    for (n, image) in p.images.iter_mut().enumerate() {
        image.position = n as u32;
    }
    p.variants[1].image_hashes = vec![dropped];
    out.push(("a variation linking an image the product does not have", p));
    let mut p = base(91_305, 3);
    p.variants[2].image_hashes = vec![image_hash_url("https://cdn.example.com/nowhere.jpg")];
    out.push(("a variation linking an image nobody has", p));
    let mut p = base(91_306, 3);
    p.variants[0].image_hashes = vec![p.images[1].content_hash, p.images[0].content_hash];
    out.push(("a variation linking two images", p));
    let mut p = base(91_307, 3);
    p.sku = None;
    p.variants[1].sku = None;
    p.variants[2].stock = None;
    p.variants[0].compare_at_price = p.variants[0].price;
    p.images[0].alt = Some(" ".into());
    p.barcode = Some(Barcode("4006381333931".into()));
    p.weight_grams = Some(Decimal::from(250));
    p.status = tidemark_core::ProductStatus::Archived;
    out.push(("no product SKU, a SKU-less variant, an archived product", p));
    out.push((
        "a simple product whose variant links an image",
        simple(91_308),
    ));
    let mut p = simple(91_309);
    p.sku = None;
    p.variants[0].stock = None;
    out.push(("a simple product with its SKU on the variant alone", p));
    out.push(("one variant with options", base(91_310, 1)));
    out
}

/// `read` as comparable with `written`: no ids of the shop, and each image with the source
/// of the written image at its position (variation links following it).
fn comparable(read: &Product, written: &Product) -> Product {
    let mut p = read.clone();
    let mut hashes = BTreeMap::new();
    for (got, sent) in p.images.iter_mut().zip(&written.images) {
        hashes.insert(got.content_hash, sent.content_hash);
        got.src.clone_from(&sent.src);
        got.content_hash = sent.content_hash;
    }
    for v in &mut p.variants {
        for h in &mut v.image_hashes {
            *h = hashes.get(h).copied().unwrap_or(*h);
        }
    }
    without_ids(p)
}

fn without_ids(mut p: Product) -> Product {
    for image in &mut p.images {
        image.external_id = None;
    }
    for v in &mut p.variants {
        v.external_id = None;
    }
    p
}

async fn read_back(wc: &WooCommerce, written: &ExternalRecord) -> Product {
    let record = wc
        .fetch_one(ScanKind::Products, &written.external_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(product(&record), product(written), "the write's answer");
    product(&record).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_written_reads_back_as_stored_created_and_updated() {
    let (_sim, _running, wc) = setup(0, FaultConfig::none()).await;
    let all: FieldSet = Field::PRODUCT_FIELDS
        .into_iter()
        .filter(|f| !matches!(f, Field::Stock | Field::Vendor))
        .collect();
    for (case, written) in cases() {
        let created = write_one(
            &wc,
            WriteOp::CreateProduct {
                product: written.clone(),
            },
        )
        .await;
        let read = read_back(&wc, &created).await;
        assert_eq!(
            comparable(&read, &written),
            wc.as_stored(written.clone()),
            "created: {case}"
        );

        // Updated from what was read: the variations that showed an image show none, the
        // others the last image of the gallery.
        let mut updated = read.clone();
        let last = updated.images.last().map(|i| i.content_hash);
        for v in &mut updated.variants {
            v.image_hashes = match v.image_hashes.is_empty() {
                true => last.into_iter().collect(),
                false => Vec::new(),
            };
        }
        let done = write_one(
            &wc,
            WriteOp::UpdateProduct {
                external_id: created.external_id.clone(),
                product: updated.clone(),
                fields: all.clone(),
                stock: vec![],
            },
        )
        .await;
        let read = read_back(&wc, &done).await;
        assert_eq!(
            without_ids(read),
            without_ids(wc.as_stored(updated)),
            "updated: {case}"
        );
    }
}
