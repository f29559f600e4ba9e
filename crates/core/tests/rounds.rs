//! Whole sync rounds on the pure core: fetch (absorb), plan, send (stock moves, snapshot
//! advance), fetch again — with the platforms modelled as plain values. These pin the rules
//! of `snapshot`, the two-pass variant matching, field policies on creates and added
//! variants, unreadable prices and the default category.

use std::collections::BTreeMap;
use std::str::FromStr;

use proptest::prelude::*;
use rust_decimal::Decimal;
use tidemark_core::diff::diff_products;
use tidemark_core::merge::{AbsorbWarning, absorb_product, mass_delete_guard};
use tidemark_core::normalize::normalize_product;
use tidemark_core::plan::{insert_fields, outbound_for_insert, plan_product};
use tidemark_core::snapshot::{
    advance_snapshot, snapshot_after_image_delete, snapshot_after_insert, stock_changes,
};
use tidemark_core::transform::outbound_product;
use tidemark_core::{
    AccountId, CanonicalProduct, ConnectionSettings, ExternalId, Field, FieldPolicy, FieldSet,
    PendingOp, Product, ProductId, Timestamp, sample,
};

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_default()
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

/// A product with one variant holding `stock`, bound on a platform (external ids set).
fn one_variant(seed: u64, stock: i64) -> Product {
    let mut p = sample::product(seed);
    p.variants.truncate(1);
    p.variants[0].stock = Some(stock);
    p.variants[0].external_id = Some(ExternalId::new("v1"));
    p
}

fn fields(list: &[Field]) -> FieldSet {
    list.iter().copied().collect()
}

fn ok<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Channels A and B both start at `start` and each sell some units. A is fetched first, a
    /// send to B is planned and applied as a move on B's current quantity (which already has
    /// B's own unabsorbed sale), the snapshot advances, then B is fetched: canonical ends at
    /// `start − sold_a − sold_b`. Writing the canonical value as an absolute would lose B's.
    #[test]
    fn a_send_between_two_fetches_loses_no_sale(
        seed in 0u64..200,
        start in 0i64..50,
        sold_a in 0i64..10,
        sold_b in 0i64..10,
    ) {
        let settings = ConnectionSettings::default();
        let base = one_variant(seed, start);
        let mut c = canonical(base.clone());
        let (mut snap_a, mut snap_b) = (base.clone(), base.clone());
        // The platforms, as plain numbers.
        let mut platform_b = start;

        // Both sell.
        let platform_a = start - sold_a;
        platform_b -= sold_b;

        // Fetch A.
        let mut scanned_a = snap_a.clone();
        scanned_a.variants[0].stock = Some(platform_a);
        let absorbed = ok(absorb_product(&c, Some(&snap_a), &scanned_a, Timestamp(2_000), &settings));
        prop_assert!(absorbed.warnings.is_empty());
        c.content = absorbed.content;
        c.field_times = absorbed.field_times;
        snap_a = scanned_a;
        prop_assert_eq!(c.content.variants[0].stock, Some(start - sold_a));

        // Plan and send to B.
        let ops = ok(plan_product(&c.content, &settings, Some(&snap_b)));
        let desired = ok(outbound_product(&c.content, &settings));
        let sent = match ops.as_slice() {
            [PendingOp::Update { fields }] => fields.clone(),
            [] => FieldSet::new(),
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert_eq!(sent.contains(&Field::Stock), sold_a != 0);
        for change in stock_changes(&snap_b, &desired) {
            prop_assert_eq!(change.variant.as_str(), "v1");
            prop_assert_eq!(change.from, start);
            platform_b += change.delta();
        }
        snap_b = advance_snapshot(&snap_b, &desired, None, &sent);
        prop_assert_eq!(platform_b, start - sold_a - sold_b);

        // Fetch B.
        let mut scanned_b = snap_b.clone();
        scanned_b.variants[0].stock = Some(platform_b);
        let absorbed = ok(absorb_product(&c, Some(&snap_b), &scanned_b, Timestamp(3_000), &settings));
        prop_assert_eq!(absorbed.content.variants[0].stock, Some(start - sold_a - sold_b));
        let _ = snap_a;
    }

    /// A field edited on the platform but not sent survives the snapshot advance and is then
    /// seen by the diff of the next fetch (and absorbed); the sent fields are in the snapshot.
    #[test]
    fn unsent_platform_edits_survive_the_advance(
        seed in 0u64..200,
        title in "[A-Za-z]{1,12}",
        vendor in "[A-Za-z]{1,12}",
    ) {
        let settings = ConnectionSettings::default();
        let snapshot = ok(outbound_product(&sample::product(seed), &settings));
        // Canonical changes the title; the merchant meanwhile edits the vendor on the platform.
        let mut content = sample::product(seed);
        content.title = format!("New {title}");
        let desired = ok(outbound_product(&content, &settings));
        let mut platform = snapshot.clone();
        platform.vendor = Some(format!("Platform {vendor}"));
        platform.title.clone_from(&desired.title);
        let platform = ok(normalize_product(platform));

        let ops = ok(plan_product(&content, &settings, Some(&snapshot)));
        prop_assert_eq!(ops.clone(), vec![PendingOp::Update { fields: fields(&[Field::Title]) }]);
        let advanced = advance_snapshot(&snapshot, &desired, Some(&platform), &fields(&[Field::Title]));
        prop_assert_eq!(&advanced.title, &desired.title);
        prop_assert_eq!(&advanced.vendor, &snapshot.vendor);
        let seen = diff_products(&advanced, &platform);
        prop_assert_eq!(seen.changed_fields(), fields(&[Field::Vendor]));
        let absorbed = ok(absorb_product(&canonical(content), Some(&advanced), &platform, Timestamp(5_000), &settings));
        prop_assert_eq!(absorbed.content.vendor, platform.vendor);
    }
}

#[test]
fn advance_copies_only_sent_fields_and_takes_platform_locators() {
    let settings = ConnectionSettings::default();
    let canonical_product = sample::product(3);
    let old = ok(outbound_product(&canonical_product, &settings));
    let mut content = canonical_product.clone();
    content.title = "Canonical title".into();
    content.description = "<p>Canonical</p>".into();
    content.variants[0].price = Some(dec("1.00"));
    content.variants[0].stock = Some(77);
    let desired = ok(outbound_product(&content, &settings));
    // The platform reformatted the title and assigned ids.
    let mut confirmed = desired.clone();
    confirmed.title = "CANONICAL TITLE".into();
    for (index, v) in confirmed.variants.iter_mut().enumerate() {
        v.external_id = Some(ExternalId::new(format!("pv{index}")));
    }
    let sent = fields(&[Field::Title, Field::Price, Field::Stock]);
    let advanced = advance_snapshot(&old, &desired, Some(&confirmed), &sent);
    assert_eq!(
        advanced.title, "Canonical title",
        "what was written, not the echo"
    );
    assert_eq!(advanced.description, old.description, "not sent");
    assert_eq!(advanced.variants[0].price, Some(dec("1.00")));
    assert_eq!(advanced.variants[0].stock, Some(77));
    assert!(
        advanced
            .variants
            .iter()
            .enumerate()
            .all(|(i, v)| v.external_id == Some(ExternalId::new(format!("pv{i}"))))
    );
    // A create: the insert payload with the platform's ids.
    let created = snapshot_after_insert(&desired, Some(&confirmed));
    assert_eq!(created.title, desired.title);
    assert_eq!(
        created.variants[1].external_id,
        Some(ExternalId::new("pv1"))
    );
    // An image delete.
    let gone = old.images[0].content_hash;
    let after = snapshot_after_image_delete(&old, gone);
    assert!(after.images.iter().all(|i| i.content_hash != gone));
    assert!(
        after
            .images
            .iter()
            .enumerate()
            .all(|(i, im)| im.position as usize == i)
    );
}

/// The platform keeps no SKUs: its variants still match the canonical ones by options, stock
/// moves land on the right variants, and the planner does not rewrite the variant list on
/// every round.
#[test]
fn variants_without_skus_match_canonical_variants_with_skus() {
    let settings = ConnectionSettings::default();
    let content = sample::product(8);
    assert!(content.variants.len() >= 2);
    let mut platform = ok(outbound_product(&content, &settings));
    for (index, v) in platform.variants.iter_mut().enumerate() {
        v.sku = None;
        v.external_id = Some(ExternalId::new(format!("p{index}")));
    }
    let platform = ok(normalize_product(platform));
    assert_eq!(platform.variants.len(), content.variants.len());

    // Fetch: each platform variant sells one; the sale lands on its own canonical variant.
    let mut scanned = platform.clone();
    for v in &mut scanned.variants {
        v.stock = v.stock.map(|s| s - 1);
    }
    let absorbed = ok(absorb_product(
        &canonical(content.clone()),
        Some(&platform),
        &scanned,
        Timestamp(5_000),
        &settings,
    ));
    assert_eq!(absorbed.content.variants.len(), content.variants.len());
    for v in &content.variants {
        let after = absorbed
            .content
            .variants
            .iter()
            .find(|a| a.sku == v.sku)
            .unwrap_or_else(|| panic!("{:?} kept", v.sku));
        assert_eq!(after.stock, v.stock.map(|s| s - 1), "{:?}", v.sku);
        assert_eq!(after.options, v.options);
    }
    assert_eq!(absorbed.changed, fields(&[Field::Stock]));

    // Plan: SKUs are written once (they differ), never the variant list.
    let ops = ok(plan_product(&absorbed.content, &settings, Some(&scanned)));
    assert_eq!(
        ops,
        vec![PendingOp::Update {
            fields: fields(&[Field::Sku])
        }]
    );
    let desired = ok(outbound_product(&absorbed.content, &settings));
    let changes = stock_changes(&scanned, &desired);
    assert!(changes.is_empty(), "stocks agree: {changes:?}");
    // Where the platform does not take the SKUs, Sku is not sent: nothing left to plan.
    let mut no_sku = settings.clone();
    no_sku
        .field_policies
        .insert(Field::Sku, FieldPolicy::Readonly);
    assert_eq!(
        ok(plan_product(&absorbed.content, &no_sku, Some(&scanned))),
        vec![]
    );
    // After sending the SKUs the snapshot has them, and the round is done.
    let advanced = advance_snapshot(&scanned, &desired, None, &fields(&[Field::Sku]));
    assert_eq!(
        ok(plan_product(&absorbed.content, &settings, Some(&advanced))),
        vec![]
    );
    // A stock change now moves the platform's variant by its id.
    let mut sold = absorbed.content.clone();
    sold.variants[1].stock = sold.variants[1].stock.map(|s| s - 5);
    let desired = ok(outbound_product(&sold, &settings));
    let moves = stock_changes(&advanced, &desired);
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0].delta(), -5);
    let expected_id = advanced
        .variants
        .iter()
        .find(|v| v.options == sold.variants[1].options)
        .and_then(|v| v.external_id.clone());
    assert_eq!(Some(moves[0].variant.clone()), expected_id);
}

#[test]
fn creates_write_only_the_fields_the_target_sends() {
    let mut settings = ConnectionSettings::default();
    for (field, policy) in [
        (Field::Description, FieldPolicy::Readonly),
        (Field::Price, FieldPolicy::AbsorbOnly),
        (Field::Images, FieldPolicy::Readonly),
        (Field::Stock, FieldPolicy::SendOnly),
    ] {
        settings.field_policies.insert(field, policy);
    }
    let content = sample::product(5);
    let insert = ok(outbound_for_insert(&content, &settings));
    assert!(insert.description.is_empty());
    assert!(insert.images.is_empty());
    assert!(insert.variants.iter().all(|v| v.price.is_none()));
    assert!(insert.variants.iter().all(|v| v.image_hashes.is_empty()));
    assert_eq!(
        insert.variants.iter().map(|v| v.stock).collect::<Vec<_>>(),
        content.variants.iter().map(|v| v.stock).collect::<Vec<_>>()
    );
    assert_eq!(insert.title, content.title);
    let written = insert_fields(&settings);
    assert!(!written.contains(&Field::Description) && !written.contains(&Field::Price));
    assert!(written.contains(&Field::Variants) && written.contains(&Field::Stock));
}

/// A variant new on a connection whose policy does not absorb price, stock or barcode enters
/// the canonical record without them.
#[test]
fn added_variants_bring_only_absorbed_fields() {
    let mut settings = ConnectionSettings::default();
    for field in [Field::Price, Field::Stock, Field::Barcode] {
        settings.field_policies.insert(field, FieldPolicy::SendOnly);
    }
    let base = sample::product(3);
    let mut scanned = base.clone();
    let mut added = scanned.variants[0].clone();
    added.sku = Some(tidemark_core::Sku("NEW-1".into()));
    added.barcode = Some(tidemark_core::Barcode("12345670".into()));
    added.price = Some(dec("3.00"));
    added.stock = Some(9);
    added.options.insert("size".into(), "XXXL".into());
    scanned.variants.push(added);
    let scanned = ok(normalize_product(scanned));
    let out = ok(absorb_product(
        &canonical(base.clone()),
        Some(&base),
        &scanned,
        Timestamp(5_000),
        &settings,
    ));
    let new = out
        .content
        .variants
        .iter()
        .find(|v| v.sku.as_ref().is_some_and(|s| s.0 == "NEW-1"))
        .unwrap_or_else(|| panic!("added"));
    assert_eq!(
        (new.price, new.stock, new.barcode.clone()),
        (None, None, None)
    );
    assert_eq!(new.options.get("size").map(String::as_str), Some("XXXL"));
}

/// A platform price below the fixed margin cannot be read back: that price is left alone and
/// reported, while the stock of the same record is still absorbed.
#[test]
fn an_unreadable_price_does_not_block_the_record() {
    let mut settings = ConnectionSettings::default();
    settings.price.margin_fixed = dec("5.00");
    let base = sample::product(2);
    let snapshot = ok(outbound_product(&base, &settings));
    let mut scanned = snapshot.clone();
    scanned.variants[0].price = Some(dec("1.00"));
    scanned.variants[0].stock = scanned.variants[0].stock.map(|s| s - 2);
    let out = ok(absorb_product(
        &canonical(base.clone()),
        Some(&snapshot),
        &scanned,
        Timestamp(5_000),
        &settings,
    ));
    assert_eq!(out.content.variants[0].price, base.variants[0].price);
    assert_eq!(
        out.content.variants[0].stock,
        base.variants[0].stock.map(|s| s - 2)
    );
    assert!(matches!(
        out.warnings.as_slice(),
        [AbsorbWarning::UnreadablePrice {
            field: Field::Price,
            ..
        }]
    ));
    assert_eq!(out.changed, fields(&[Field::Stock]));
}

/// The target's default category means "not mapped": seen on first sight (or after), it does
/// not replace the canonical category.
#[test]
fn the_default_category_reads_back_as_unchanged() {
    let settings = ConnectionSettings {
        default_category: Some("Misc".into()),
        ..ConnectionSettings::default()
    };
    let mut content = sample::product(4);
    content.category = Some("Garden > Tools".into());
    let platform = ok(outbound_product(&content, &settings));
    assert_eq!(platform.category.as_deref(), Some("Misc"));
    for snapshot in [None, Some(&platform)] {
        let out = ok(absorb_product(
            &canonical(content.clone()),
            snapshot,
            &platform,
            Timestamp(5_000),
            &settings,
        ));
        assert_eq!(out.content.category, content.category);
        assert!(!out.changed.contains(&Field::Category));
    }
    // A category the merchant really chose there is still absorbed.
    let mut chosen = platform.clone();
    chosen.category = Some("Outdoor".into());
    let out = ok(absorb_product(
        &canonical(content.clone()),
        Some(&platform),
        &chosen,
        Timestamp(5_000),
        &settings,
    ));
    assert_eq!(out.content.category.as_deref(), Some("Outdoor"));
}

#[test]
fn the_mass_delete_guard_never_panics_on_a_huge_share() {
    for share in [Decimal::MAX, Decimal::MIN, dec("1e20")] {
        let _ = mass_delete_guard(u64::MAX, 1, u64::MAX, share);
        let _ = mass_delete_guard(100, 1, 99, share);
    }
}
