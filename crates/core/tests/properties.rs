//! Properties of the pure core (issue 2, Acceptance): normalisation is idempotent, diffs are
//! exact, the hash sees content and only content, stock deltas lose no sale, plans are
//! deterministic and never delete what they keep, and prices do not ping-pong.

use std::collections::BTreeMap;
use std::str::FromStr;

use proptest::prelude::*;
use rust_decimal::Decimal;
use tidemark_core::diff::{apply_product_diff, diff_products};
use tidemark_core::hash::{image_hash_url, product_hash};
use tidemark_core::merge::absorb_product;
use tidemark_core::normalize::normalize_product;
use tidemark_core::plan::plan_product;
use tidemark_core::transform::outbound_product;
use tidemark_core::{
    AccountId, Barcode, CanonicalProduct, ConnectionSettings, Currency, ExternalId, Field,
    FieldPolicy, Image, ImageHashSource, PendingOp, PriceRule, Product, ProductId, ProductStatus,
    Rounding, Sku, Timestamp, Variant,
};

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_default()
}

/// Text with the things normalisation must handle: spaces, tabs, newlines, NBSP, combining
/// marks, precomposed letters, control characters.
fn text() -> impl Strategy<Value = String> {
    "[ a-zA-Z0-9\t\n\u{a0}\u{301}\u{e9}\u{1}<>/pb.-]{0,12}"
}

fn short() -> impl Strategy<Value = String> {
    "[ a-zA-Z\u{e9}]{0,6}"
}

/// Amounts of odd scale, including more decimals than any currency has.
fn amount() -> impl Strategy<Value = Decimal> {
    (0i64..5_000_000, 0u32..6).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
}

fn currency() -> impl Strategy<Value = Currency> {
    prop_oneof![
        Just(Currency::USD),
        Just(Currency::parse("EUR").unwrap_or_default()),
        Just(Currency::parse("JPY").unwrap_or_default()),
        Just(Currency::parse("KWD").unwrap_or_default()),
    ]
}

fn map(keys: &'static [&'static str]) -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(keys).prop_map(String::from),
        short(),
        0..3,
    )
}

fn arb_variant(index: usize) -> impl Strategy<Value = Variant> {
    (
        prop::option::weighted(0.8, "[ a-zA-Z]{0,3}"),
        prop::option::of(prop_oneof![
            "[0-9]{8,13}",
            Just("'3212483".to_owned()),
            Just("3.65275E+11".to_owned()),
            Just("789-1234 5".to_owned())
        ]),
        map(&["color", "Size", "material"]),
        prop::option::of(amount()),
        prop::option::of(amount()),
        prop::option::of(-5i64..200),
        prop::option::of(amount()),
        prop::collection::vec(0u128..6, 0..3),
        prop::option::of("[0-9]{1,4}"),
    )
        .prop_map(
            move |(prefix, barcode, mut options, price, compare, stock, weight, images, id)| {
                let sku = prefix.map(|p| Sku(format!("{p}SKU {index}")));
                // Variants without a SKU are told apart by their options.
                options.insert("size".to_owned(), format!("S{index}"));
                Variant {
                    external_id: id.map(ExternalId),
                    sku,
                    barcode: barcode.map(Barcode),
                    options,
                    price,
                    compare_at_price: compare,
                    stock,
                    weight_grams: weight,
                    image_hashes: images.into_iter().map(image_hash).collect(),
                }
            },
        )
}

fn image_hash(n: u128) -> tidemark_core::ContentHash {
    image_hash_url(&format!("https://img.example/{n}.jpg"))
}

fn arb_image() -> impl Strategy<Value = Image> {
    (
        0u128..10,
        0u32..12,
        prop::option::of(text()),
        prop::option::of("[0-9]{1,3}"),
        any::<bool>(),
    )
        .prop_map(|(n, position, alt, id, bytes)| Image {
            external_id: id.map(ExternalId),
            src: format!(" https://img.example/{n}.jpg"),
            content_hash: image_hash(n),
            hash_source: if bytes {
                ImageHashSource::Bytes
            } else {
                ImageHashSource::Url
            },
            position,
            alt,
        })
}

fn arb_status() -> impl Strategy<Value = ProductStatus> {
    prop_oneof![
        Just(ProductStatus::Active),
        Just(ProductStatus::Paused),
        Just(ProductStatus::Draft),
        Just(ProductStatus::Archived)
    ]
}

/// Varied, un-normalised products.
fn arb_product() -> impl Strategy<Value = Product> {
    let variants = (0usize..=10).prop_flat_map(|n| (0..n).map(arb_variant).collect::<Vec<_>>());
    (
        (
            prop::option::of("[ A-Za-z0-9-]{1,8}"),
            text(),
            "[ a-z<>/p\n\t\u{a0}pre\u{e9}]{0,60}",
            prop::option::of(short()),
            prop::option::of(short()),
            prop::option::of(prop_oneof![Just("Footwear".to_owned()), short()]),
            prop::collection::btree_set(short(), 0..4),
        ),
        (
            prop::option::of("[0-9]{8,13}".prop_map(Barcode)),
            prop::option::of(amount()),
            arb_status(),
            map(&["material", "Care ", "care"]),
            currency(),
            prop::collection::vec(arb_image(), 0..=8),
            variants,
        ),
    )
        .prop_map(
            |(
                (sku, title, description, brand, vendor, category, tags),
                (barcode, weight, status, attributes, currency, images, variants),
            )| Product {
                sku: sku.map(Sku),
                title,
                description,
                brand,
                vendor,
                category,
                tags,
                barcode,
                weight_grams: weight,
                status,
                attributes,
                currency,
                images,
                variants,
            },
        )
}

/// Products already in canonical form (inputs that normalisation rejects are skipped).
fn arb_normalized() -> impl Strategy<Value = Product> {
    arb_product().prop_filter_map("rejected by normalisation", |p| normalize_product(p).ok())
}

fn arb_rounding() -> impl Strategy<Value = Rounding> {
    prop_oneof![
        Just(Rounding::MinorUnit),
        Just(Rounding::Nearest { step: dec("0.05") }),
        Just(Rounding::Up { step: dec("1") }),
        Just(Rounding::Down { step: dec("0.1") }),
        Just(Rounding::Charm {
            ending: dec("0.01")
        }),
        Just(Rounding::Charm {
            ending: dec("0.05")
        }),
    ]
}

fn arb_policy() -> impl Strategy<Value = FieldPolicy> {
    prop_oneof![
        3 => Just(FieldPolicy::Both),
        1 => Just(FieldPolicy::AbsorbOnly),
        1 => Just(FieldPolicy::SendOnly),
        1 => Just(FieldPolicy::Readonly),
    ]
}

/// Settings of a target connection: margins, rounding, conversion, maps, policies.
fn arb_settings() -> impl Strategy<Value = ConnectionSettings> {
    (
        (0i64..5000, 0i64..300, arb_rounding()),
        prop::option::of(currency()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::btree_map(
            prop::sample::select(&Field::PRODUCT_FIELDS[..]),
            arb_policy(),
            0..4,
        ),
        any::<bool>(),
    )
        .prop_map(
            |((percent, fixed, rounding), currency, colour, talla, map, policies, clone)| {
                let mut settings = ConnectionSettings {
                    price: PriceRule {
                        margin_percent: Decimal::new(percent, 2),
                        margin_fixed: Decimal::new(fixed, 2),
                        rounding,
                    },
                    currency,
                    conversion_rate: Some(dec("151.37")),
                    color_attribute: colour.then(|| "Colour".to_owned()),
                    size_attribute: talla.then(|| "Talla".to_owned()),
                    field_policies: policies,
                    clone_new_products: clone,
                    ..ConnectionSettings::default()
                };
                if map {
                    settings
                        .category_map
                        .insert("Footwear".into(), "Shoes".into());
                }
                settings
            },
        )
}

fn canonical(content: Product) -> CanonicalProduct {
    CanonicalProduct {
        id: ProductId(1),
        account: AccountId(1),
        content,
        field_times: BTreeMap::new(),
        created_at: Timestamp(1_000),
        updated_at: Timestamp(1_000),
    }
}

/// JSON with every object's keys in reverse order, to prove the hash does not see order.
fn reversed_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String(k.clone()),
                        reversed_json(v)
                    )
                })
                .collect();
            format!("{{{}}}", entries.join(","))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(reversed_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn normalize_is_idempotent(p in arb_product()) {
        if let Ok(once) = normalize_product(p) {
            let twice = normalize_product(once.clone());
            prop_assert_eq!(twice.as_ref(), Ok(&once));
            prop_assert_eq!(twice.map(|t| product_hash(&t)), Ok(product_hash(&once)));
        }
    }

    #[test]
    fn diff_of_a_record_with_itself_is_empty(a in arb_normalized()) {
        let d = diff_products(&a, &a);
        prop_assert!(d.is_empty());
        prop_assert!(d.changed_fields().is_empty());
        prop_assert!(d.locators.is_empty());
    }

    #[test]
    fn applying_a_diff_gives_the_new_record(a in arb_normalized(), b in arb_normalized()) {
        let d = diff_products(&a, &b);
        let applied = apply_product_diff(&a, &d);
        prop_assert_eq!(product_hash(&applied), product_hash(&b));
        prop_assert_eq!(&applied, &b);
        prop_assert_eq!(d.is_empty(), product_hash(&a) == product_hash(&b));
    }

    #[test]
    fn hash_ignores_field_map_and_variant_order(a in arb_normalized(), seed in any::<u64>()) {
        let value = serde_json::to_value(&a).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut reordered: Product = serde_json::from_str(&reversed_json(&value))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        reordered.variants.reverse();
        if !reordered.images.is_empty() {
            let k = (seed as usize) % reordered.images.len();
            reordered.images.rotate_left(k);
        }
        prop_assert_eq!(product_hash(&reordered), product_hash(&a));
    }

    #[test]
    fn hash_changes_when_any_field_changes(a in arb_normalized(), which in 0usize..22) {
        let mut b = a.clone();
        let bump = |d: &mut Option<Decimal>| *d = Some(d.unwrap_or_default() + Decimal::ONE);
        match which {
            0 => b.title.push('x'),
            1 => b.description.push('x'),
            2 => b.brand = Some(format!("{}x", b.brand.clone().unwrap_or_default())),
            3 => b.vendor = Some(format!("{}x", b.vendor.clone().unwrap_or_default())),
            4 => b.category = Some(format!("{}x", b.category.clone().unwrap_or_default())),
            5 => { b.tags.insert("brand-new-tag".into()); }
            6 => b.barcode = Some(Barcode("99999999".into())),
            7 => bump(&mut b.weight_grams),
            8 => b.status = if b.status == ProductStatus::Active { ProductStatus::Draft } else { ProductStatus::Active },
            9 => { b.attributes.insert("zz".into(), "new".into()); }
            10 => b.currency = if b.currency == Currency::USD { Currency::parse("EUR").unwrap_or_default() } else { Currency::USD },
            11 => b.sku = Some(Sku(format!("{}X", b.sku.clone().map(|s| s.0).unwrap_or_default()))),
            n => {
                prop_assume!(!b.variants.is_empty() && !b.images.is_empty());
                let v = &mut b.variants[0];
                match n {
                    12 => bump(&mut v.price),
                    13 => bump(&mut v.compare_at_price),
                    14 => v.stock = Some(v.stock.unwrap_or_default() + 1),
                    15 => bump(&mut v.weight_grams),
                    16 => v.barcode = Some(Barcode("12345670".into())),
                    17 => { v.options.insert("zz".into(), "new".into()); }
                    18 => v.image_hashes = vec![image_hash(99)],
                    19 => b.images[0].alt = Some(format!("{}x", b.images[0].alt.clone().unwrap_or_default())),
                    20 => { b.images.pop(); }
                    _ => { b.variants.pop(); }
                }
            }
        }
        let b = normalize_product(b);
        prop_assume!(b.is_ok());
        let b = b.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_ne!(product_hash(&a), product_hash(&b));
        prop_assert!(!diff_products(&a, &b).is_empty());
    }

    #[test]
    fn concurrent_sales_on_two_channels_both_count(
        seed in 0u64..500,
        sold_a in 0i64..20,
        sold_b in 0i64..20,
        t_a in 2_000i64..3_000,
        t_b in 2_000i64..3_000,
    ) {
        let start = tidemark_core::sample::product(seed);
        let settings = ConnectionSettings::default();
        let sell = |p: &Product, k: i64| {
            let mut p = p.clone();
            for v in &mut p.variants {
                v.stock = v.stock.map(|s| s - k);
            }
            p
        };
        let c0 = canonical(start.clone());
        let after_a = absorb_product(&c0, Some(&start), &sell(&start, sold_a), Timestamp(t_a), &settings)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let c1 = CanonicalProduct { content: after_a.content, field_times: after_a.field_times, ..c0 };
        let after_b = absorb_product(&c1, Some(&start), &sell(&start, sold_b), Timestamp(t_b), &settings)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (before, after) in start.variants.iter().zip(&after_b.content.variants) {
            prop_assert_eq!(after.stock, before.stock.map(|s| s - sold_a - sold_b));
        }
    }

    /// The plan is a function of the content only: a canonical record and snapshot that went
    /// through JSON with every object's keys reversed, and whose variants and images are
    /// listed in another order, plan exactly the same operations.
    #[test]
    fn planning_twice_gives_the_same_operations(
        c in arb_normalized(),
        snapshot in prop::option::of(arb_normalized()),
        settings in arb_settings(),
        seed in any::<u64>(),
    ) {
        let reorder = |p: &Product| -> Result<Product, TestCaseError> {
            let value = serde_json::to_value(p).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut out: Product = serde_json::from_str(&reversed_json(&value))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            out.variants.reverse();
            if !out.images.is_empty() {
                let k = (seed as usize) % out.images.len();
                out.images.rotate_left(k);
            }
            Ok(out)
        };
        let first = plan_product(&c, &settings, snapshot.as_ref());
        let c2 = reorder(&c)?;
        let snapshot2 = snapshot.as_ref().map(reorder).transpose()?;
        prop_assert_eq!(&first, &plan_product(&c2, &settings, snapshot2.as_ref()));
        // And a plan is reproducible on its own inputs.
        prop_assert_eq!(first, plan_product(&c, &settings, snapshot.as_ref()));
    }

    #[test]
    fn plans_never_delete_what_they_keep_nor_insert_over_a_snapshot(
        c in arb_normalized(),
        snapshot in arb_normalized(),
        settings in arb_settings(),
    ) {
        let Ok(ops) = plan_product(&c, &settings, Some(&snapshot)) else { return Ok(()); };
        let desired = outbound_product(&c, &settings).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut updates = 0;
        for op in &ops {
            match op {
                PendingOp::Insert => prop_assert!(false, "insert despite a snapshot"),
                PendingOp::Update { fields } => {
                    updates += 1;
                    prop_assert!(!fields.is_empty());
                    prop_assert!(fields.iter().all(|f| settings.policy(*f).sends()));
                }
                PendingOp::ImageDelete { content_hash, .. } => {
                    prop_assert!(desired.images.iter().all(|i| i.content_hash != *content_hash));
                    prop_assert!(snapshot.images.iter().any(|i| i.content_hash == *content_hash));
                }
            }
        }
        prop_assert!(updates <= 1);
        // Against its own desired state there is nothing to do.
        prop_assert_eq!(plan_product(&c, &settings, Some(&desired)), Ok(Vec::new()));
    }

    /// The platform shows exactly what we sent: absorbing it changes no price, and nothing is
    /// planned back, whatever the older snapshot was.
    #[test]
    fn no_ping_pong_when_the_platform_shows_what_we_sent(
        c in arb_normalized(),
        older in arb_normalized(),
        settings in arb_settings(),
    ) {
        let Ok(sent) = outbound_product(&c, &settings) else { return Ok(()); };
        let mut older = older;
        older.currency = sent.currency;
        let Ok(older) = normalize_product(older) else { return Ok(()); };
        // An absorb never fails on what it scanned (an unreadable price is a warning).
        let absorbed = absorb_product(&canonical(c.clone()), Some(&older), &sent, Timestamp(5_000), &settings)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for v in &absorbed.content.variants {
            if let Some(original) = c.variants.iter().find(|o| o.sku == v.sku && o.options == v.options) {
                prop_assert_eq!(v.price, original.price);
                prop_assert_eq!(v.compare_at_price, original.compare_at_price);
            }
        }
        prop_assert!(!absorbed.changed.contains(&Field::Price));
        prop_assert!(!absorbed.changed.contains(&Field::CompareAtPrice));
        let ops = plan_product(&absorbed.content, &settings, Some(&sent)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for op in ops {
            if let PendingOp::Update { fields } = op {
                prop_assert!(!fields.contains(&Field::Price) && !fields.contains(&Field::CompareAtPrice));
            }
        }
    }

    /// The merchant types a price on the platform: it is absorbed, and the plan back to that
    /// platform leaves it alone even when the rounding rule would spell it differently.
    #[test]
    fn no_ping_pong_when_the_merchant_edits_a_price(
        seed in 0u64..500,
        typed in 0i64..100_000,
        settings in arb_settings(),
    ) {
        // A price policy that does not absorb rightly writes the canonical price back.
        let mut settings = settings;
        settings.field_policies.insert(Field::Price, FieldPolicy::Both);
        let c = tidemark_core::sample::product(seed);
        let Ok(sent) = outbound_product(&c, &settings) else { return Ok(()); };
        let mut edited = sent.clone();
        let minor = sent.currency.minor_units();
        let typed = Decimal::new(typed, minor) + settings.price.margin_fixed;
        edited.variants[0].price = Some(typed);
        let Ok(edited) = normalize_product(edited) else { return Ok(()); };
        let absorbed = absorb_product(&canonical(c), Some(&sent), &edited, Timestamp(5_000), &settings)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ops = plan_product(&absorbed.content, &settings, Some(&edited)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for op in ops {
            if let PendingOp::Update { fields } = op {
                prop_assert!(!fields.contains(&Field::Price), "{:?}", fields);
            }
        }
    }
}
