//! Hashing and diffing throughput on realistic products (3–10 variants, 2–8 images, 1–4 KB of
//! HTML description, from `tidemark_core::sample`).
//!
//! Each group measures a batch of `BATCH` records and reports elements (records) per second:
//! - `unchanged`: what a scan pays for a record equal to its snapshot — hash the scanned record
//!   and compare with the snapshot's stored hash (the cheap path of the diff engine);
//! - `changed/one_field`: a title edit — hash, hashes differ, full field-level diff;
//! - `changed/variants_images`: a price and a stock change on variants, an image added and one
//!   removed — hash and full diff;
//! - `normalise`: canonicalising a freshly parsed record (paid once per scanned record);
//! - `baseline/serde_json_value`: a generic comparison of the same unchanged records as
//!   `serde_json::Value`s, for scale.
//!
//! Run: `cargo bench --bench diff` (one core; criterion prints `thrpt` in elements/s).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tidemark_core::diff::{diff_products, diff_products_hashed};
use tidemark_core::hash::{image_hash_url, product_hash};
use tidemark_core::model::{Image, ImageHashSource, Product};
use tidemark_core::normalize::normalize_product;
use tidemark_core::sample;

const BATCH: usize = 1_000;

fn catalogue() -> Vec<Product> {
    (0..BATCH as u64).map(sample::product).collect()
}

/// A title edit on every record.
fn with_title_edit(products: &[Product]) -> Vec<Product> {
    products
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p.title.push_str(" (2025 edition)");
            p
        })
        .collect()
}

/// Price and stock changes on variants, one image added and the last one removed.
fn with_variant_and_image_edits(products: &[Product]) -> Vec<Product> {
    products
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if let Some(v) = p.variants.first_mut() {
                v.price = v.price.map(|price| price + rust_decimal::Decimal::ONE);
            }
            if let Some(v) = p.variants.last_mut() {
                v.stock = v.stock.map(|stock| stock - 1);
            }
            p.images.pop();
            let src = format!("https://cdn.example.com/new/{}.jpg", p.title.len());
            p.images.push(Image {
                external_id: None,
                content_hash: image_hash_url(&src),
                src,
                hash_source: ImageHashSource::Url,
                position: p.images.len() as u32,
                alt: None,
            });
            p
        })
        .collect()
}

fn bench_diff(c: &mut Criterion) {
    let snapshots = catalogue();
    let snapshot_hashes: Vec<_> = snapshots.iter().map(product_hash).collect();

    let mut group = c.benchmark_group("diff");
    group.throughput(Throughput::Elements(BATCH as u64));

    let scanned = snapshots.clone();
    group.bench_function("unchanged", |b| {
        b.iter(|| {
            let mut changed = 0usize;
            for ((scan, snap), snap_hash) in scanned.iter().zip(&snapshots).zip(&snapshot_hashes) {
                let hash = product_hash(scan);
                let diff = diff_products_hashed(snap, *snap_hash, scan, hash);
                changed += usize::from(!diff.is_empty());
            }
            assert_eq!(changed, 0);
            black_box(changed)
        })
    });

    for (name, scanned) in [
        ("changed/one_field", with_title_edit(&snapshots)),
        (
            "changed/variants_images",
            with_variant_and_image_edits(&snapshots),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut changed = 0usize;
                for ((scan, snap), snap_hash) in
                    scanned.iter().zip(&snapshots).zip(&snapshot_hashes)
                {
                    let hash = product_hash(scan);
                    let diff = diff_products_hashed(snap, *snap_hash, scan, hash);
                    changed += usize::from(!diff.is_empty());
                }
                assert_eq!(changed, BATCH);
                black_box(changed)
            })
        });
    }

    // The full walk without the hash shortcut, to show what the shortcut saves.
    group.bench_function("unchanged/full_walk", |b| {
        b.iter(|| {
            let mut changed = 0usize;
            for (scan, snap) in scanned.iter().zip(&snapshots) {
                changed += usize::from(!diff_products(snap, scan).is_empty());
            }
            assert_eq!(changed, 0);
            black_box(changed)
        })
    });

    group.bench_function("normalise", |b| {
        b.iter_batched(
            || snapshots.clone(),
            |batch| {
                let mut ok = 0usize;
                for product in batch {
                    ok += usize::from(normalize_product(product).is_ok());
                }
                black_box(ok)
            },
            BatchSize::LargeInput,
        )
    });

    let as_values: Vec<serde_json::Value> = snapshots
        .iter()
        .map(|p| serde_json::to_value(p).unwrap_or_default())
        .collect();
    group.bench_function("baseline/serde_json_value", |b| {
        b.iter(|| {
            let mut changed = 0usize;
            for (scan, snap) in scanned.iter().zip(&as_values) {
                let value = serde_json::to_value(scan).unwrap_or_default();
                changed += usize::from(&value != snap);
            }
            assert_eq!(changed, 0);
            black_box(changed)
        })
    });

    group.finish();

    let mut group = c.benchmark_group("hash");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("product", |b| {
        b.iter(|| {
            let mut acc = 0u128;
            for product in &snapshots {
                acc ^= product_hash(product).0;
            }
            black_box(acc)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_diff);
criterion_main!(benches);
