//! A written Shopify CSV reads back as the same products (after normalisation, which the
//! engine applies to every record anyway), whatever the text holds: unicode, commas, quotes,
//! line breaks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use proptest::prelude::*;
use rust_decimal::Decimal;
use tidemark_core::hash::image_hash_url;
use tidemark_core::normalize::normalize_product;
use tidemark_core::{
    Barcode, Currency, ExternalId, ExternalRecord, Image, ImageHashSource, Product, ProductStatus,
    RecordContent, Sku, Variant,
};
use tidemark_csv::mapping::{ReadOptions, writer};
use tidemark_csv::{Layout, LayoutSetting, read_catalog};

/// The products of `records` in comparable form: normalised, platform ids cleared.
fn comparable(records: &[ExternalRecord]) -> Vec<(ExternalId, Product)> {
    records
        .iter()
        .map(|record| {
            let RecordContent::Product(product) = &record.content else {
                panic!("not a product")
            };
            let mut product = normalize_product(product.clone()).expect("normalises");
            for variant in &mut product.variants {
                variant.external_id = None;
            }
            for image in &mut product.images {
                image.external_id = None;
            }
            (record.external_id.clone(), product)
        })
        .collect()
}

fn round_trip(records: &[ExternalRecord]) -> Vec<ExternalRecord> {
    let bytes = writer::write_file(records, Currency::USD).expect("writable");
    let catalog = read_catalog(
        Path::new("written.csv"),
        &bytes,
        ReadOptions {
            layout: LayoutSetting::Auto,
            currency: Currency::USD,
        },
    )
    .expect("reads back");
    assert_eq!(catalog.layout, Layout::ShopifyCurrent);
    assert!(catalog.problems.is_empty(), "{:?}", catalog.problems);
    catalog.products
}

fn record(id: &str, product: Product) -> ExternalRecord {
    ExternalRecord {
        external_id: ExternalId::new(id),
        updated_at: None,
        content: RecordContent::Product(product),
    }
}

fn image(src: &str, position: u32, alt: Option<&str>) -> Image {
    Image {
        external_id: None,
        src: src.to_owned(),
        content_hash: image_hash_url(src),
        hash_source: ImageHashSource::Url,
        position,
        alt: alt.map(str::to_owned),
    }
}

fn dec(text: &str) -> Option<Decimal> {
    Some(Decimal::from_str(text).unwrap())
}

#[test]
fn tricky_text_round_trips() {
    let img = "https://cdn.example.com/a,b/\u{e9}t\u{e9}.jpg?w=1&h=2";
    let product = Product {
        sku: Some(Sku("PARENT-1".into())),
        title: "Caf\u{e9} \"Deluxe\", 2-pack \u{65e5}\u{672c}".into(),
        description: "<p>Line one, with \"quotes\"</p>\r\n<p>line two\n\n  indented</p>".into(),
        brand: Some("M\u{fc}ller & S\u{f6}hne, Ltd.".into()),
        vendor: Some("Vendor \"V\"".into()),
        category: Some("Home > Kitchen, Dining".into()),
        tags: BTreeSet::from(["caf\u{e9}".into(), "say \"hi\"".into(), "two\nlines".into()]),
        barcode: Some(Barcode("0012345678905".into())),
        weight_grams: dec("1234.5"),
        status: ProductStatus::Paused,
        attributes: BTreeMap::from([
            ("material".into(), "cotton, 100%".into()),
            ("care \"tips\"".into(), "wash\ncold".into()),
        ]),
        currency: Currency::USD,
        images: vec![
            image(img, 0, Some("An \"alt\", with commas")),
            image("https://cdn.example.com/2.jpg", 1, None),
        ],
        variants: vec![
            Variant {
                external_id: None,
                sku: Some(Sku("SKU,1".into())),
                barcode: Some(Barcode("4006381333931".into())),
                options: BTreeMap::from([
                    ("Size".into(), "9\" x 12\"".into()),
                    ("Colour".into(), "Bleu, fonc\u{e9}".into()),
                ]),
                price: dec("19.99"),
                compare_at_price: dec("25.00"),
                stock: Some(-2),
                weight_grams: dec("200.125"),
                image_hashes: vec![image_hash_url("https://cdn.example.com/2.jpg")],
            },
            Variant {
                external_id: None,
                sku: None,
                barcode: None,
                options: BTreeMap::from([
                    ("Size".into(), "Small".into()),
                    ("Colour".into(), "Red".into()),
                ]),
                price: None,
                compare_at_price: None,
                stock: None,
                weight_grams: None,
                image_hashes: vec![],
            },
        ],
    };
    let records = vec![
        record("caf\u{e9}-deluxe", product),
        record(
            "no-variants",
            Product {
                title: "Grouped".into(),
                status: ProductStatus::Archived,
                ..empty_product()
            },
        ),
        record(
            "one-default",
            Product {
                title: "Plain".into(),
                status: ProductStatus::Draft,
                variants: vec![Variant {
                    price: dec("3"),
                    ..empty_variant()
                }],
                ..empty_product()
            },
        ),
    ];
    let back = round_trip(&records);
    assert_eq!(comparable(&back), comparable(&records));
    // And the exact text survived, not only its normalised form.
    let RecordContent::Product(p) = &back[0].content else {
        unreachable!()
    };
    assert_eq!(
        p.description,
        "<p>Line one, with \"quotes\"</p>\r\n<p>line two\n\n  indented</p>"
    );
    assert_eq!(p.title, "Caf\u{e9} \"Deluxe\", 2-pack \u{65e5}\u{672c}");
    assert_eq!(p.images[0].alt.as_deref(), Some("An \"alt\", with commas"));
}

#[test]
fn what_shopify_csv_cannot_hold_is_refused() {
    let with = |f: &dyn Fn(&mut Product)| {
        let mut p = Product {
            title: "x".into(),
            variants: vec![empty_variant()],
            ..empty_product()
        };
        f(&mut p);
        writer::product_rows("x", &p, Currency::USD)
    };
    assert!(with(&|_| {}).is_ok());
    let code = |r: Result<_, tidemark_connector::ConnectorError>| match r {
        Err(tidemark_connector::ConnectorError::Rejected { code, .. }) => code,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        code(with(&|p| {
            p.tags.insert("a, b".into());
        })),
        "csv_tag_comma"
    );
    assert_eq!(
        code(with(&|p| p.currency = Currency::parse("EUR").unwrap())),
        "csv_currency_mismatch"
    );
    assert_eq!(
        code(with(&|p| {
            p.variants[0].options = ["a", "b", "c", "d"]
                .iter()
                .map(|n| ((*n).to_owned(), "v".to_owned()))
                .collect();
        })),
        "csv_too_many_options"
    );
    assert_eq!(
        code(with(&|p| p.variants.push(empty_variant()))),
        "csv_variants_need_options"
    );
    assert_eq!(
        code(with(
            &|p| p.variants[0].image_hashes = vec![image_hash_url("nowhere")]
        )),
        "csv_variant_image_unknown"
    );
}

fn empty_product() -> Product {
    Product {
        sku: None,
        title: String::new(),
        description: String::new(),
        brand: None,
        vendor: None,
        category: None,
        tags: BTreeSet::new(),
        barcode: None,
        weight_grams: None,
        status: ProductStatus::Active,
        attributes: BTreeMap::new(),
        currency: Currency::USD,
        images: vec![],
        variants: vec![],
    }
}

fn empty_variant() -> Variant {
    Variant {
        external_id: None,
        sku: None,
        barcode: None,
        options: BTreeMap::new(),
        price: None,
        compare_at_price: None,
        stock: None,
        weight_grams: None,
        image_hashes: vec![],
    }
}

// ---------------------------------------------------------------------------------------------
// Property: any product Shopify CSV can hold round-trips.
// ---------------------------------------------------------------------------------------------

/// Text with the characters that break naive CSV: commas, quotes, line breaks, backslashes,
/// non-ASCII, and spaces at the ends.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::char::range('a', 'z'),
            1 => Just(','),
            1 => Just('"'),
            1 => Just('\n'),
            1 => Just('\r'),
            1 => Just(' '),
            1 => Just('\\'),
            1 => Just('\u{e9}'),
            1 => Just('\u{65e5}'),
            1 => Just('\u{1f600}'),
        ],
        0..max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn opt_text(max: usize) -> impl Strategy<Value = Option<String>> {
    prop::option::of(text(max))
}

fn money() -> impl Strategy<Value = Option<Decimal>> {
    prop::option::of((0i64..10_000_000).prop_map(|cents| Decimal::new(cents, 2)))
}

fn status() -> impl Strategy<Value = ProductStatus> {
    prop_oneof![
        Just(ProductStatus::Active),
        Just(ProductStatus::Paused),
        Just(ProductStatus::Draft),
        Just(ProductStatus::Archived),
    ]
}

#[derive(Debug, Clone)]
struct VariantSeed {
    sku: Option<String>,
    barcode: Option<u64>,
    values: Vec<String>,
    price: Option<Decimal>,
    compare_at_price: Option<Decimal>,
    stock: Option<i64>,
    weight_milligrams: Option<i64>,
    image: Option<usize>,
}

fn variant_seed() -> impl Strategy<Value = VariantSeed> {
    (
        opt_text(8),
        prop::option::of(0u64..10_000_000_000_000),
        prop::collection::vec(text(6), 3),
        money(),
        money(),
        prop::option::of(-50i64..100_000),
        prop::option::of(0i64..100_000_000),
        prop::option::of(0usize..4),
    )
        .prop_map(
            |(sku, barcode, values, price, compare_at_price, stock, weight_milligrams, image)| {
                VariantSeed {
                    sku,
                    barcode,
                    values,
                    price,
                    compare_at_price,
                    stock,
                    weight_milligrams,
                    image,
                }
            },
        )
}

fn product() -> impl Strategy<Value = Product> {
    (
        (
            opt_text(8),
            text(20),
            text(60),
            opt_text(10),
            opt_text(10),
            opt_text(10),
            prop::collection::btree_set(text(8).prop_map(|t| t.replace(',', ";")), 0..4),
            prop::option::of(0u64..10_000_000_000_000),
            prop::option::of(0i64..10_000_000),
            status(),
        ),
        prop::collection::btree_map(text(6), text(10), 0..3),
        prop::collection::vec((text(6), opt_text(10)), 0..4),
        0usize..=3,
        prop::collection::vec(variant_seed(), 0..5),
    )
        .prop_map(
            |(
                (sku, title, description, brand, vendor, category, tags, barcode, weight, status),
                attributes,
                image_seeds,
                option_count,
                variant_seeds,
            )| {
                let images: Vec<Image> = image_seeds
                    .iter()
                    .enumerate()
                    .map(|(i, (path, alt))| {
                        let src = format!(
                            "https://cdn.example.com/{i}/{}.jpg",
                            path.chars()
                                .filter(char::is_ascii_alphanumeric)
                                .collect::<String>()
                        );
                        image(&src, i as u32, alt.as_deref())
                    })
                    .collect();
                let names = ["Color", "Size", "Material"];
                // With no option names, at most one variant (Shopify's Default Title).
                let seeds = if option_count == 0 {
                    &variant_seeds[..variant_seeds.len().min(1)]
                } else {
                    &variant_seeds[..]
                };
                let variants = seeds
                    .iter()
                    .enumerate()
                    .map(|(i, seed)| Variant {
                        external_id: None,
                        // Unique within the product: variants are told apart by SKU.
                        sku: seed.sku.as_ref().map(|s| Sku(format!("S{i}-{s}"))),
                        barcode: seed.barcode.map(|b| Barcode(b.to_string())),
                        options: names[..option_count]
                            .iter()
                            .zip(&seed.values)
                            .enumerate()
                            // The first value carries the index: option tuples differ.
                            .map(|(n, (name, value))| {
                                let value = if n == 0 {
                                    format!("{value}#{i}")
                                } else {
                                    value.clone()
                                };
                                ((*name).to_owned(), value)
                            })
                            .collect(),
                        price: seed.price,
                        compare_at_price: seed.compare_at_price,
                        stock: seed.stock,
                        weight_grams: seed.weight_milligrams.map(|mg| Decimal::new(mg, 3)),
                        image_hashes: seed
                            .image
                            .and_then(|at| images.get(at))
                            .map(|img| vec![img.content_hash])
                            .unwrap_or_default(),
                    })
                    .collect();
                Product {
                    sku: sku.map(Sku),
                    title,
                    description,
                    brand,
                    vendor,
                    category,
                    tags,
                    barcode: barcode.map(|b| Barcode(b.to_string())),
                    weight_grams: weight.map(|mg| Decimal::new(mg, 3)),
                    status,
                    attributes,
                    currency: Currency::USD,
                    images,
                    variants,
                }
            },
        )
        // Only products the engine would hold: normalisation must accept them.
        .prop_filter("normalises", |p| normalize_product(p.clone()).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn written_csv_reads_back_identical(products in prop::collection::vec(product(), 0..4)) {
        let records: Vec<ExternalRecord> = products
            .into_iter()
            .enumerate()
            .map(|(i, p)| record(&format!("product-{i}"), p))
            .collect();
        let back = round_trip(&records);
        prop_assert_eq!(comparable(&back), comparable(&records));
    }
}
