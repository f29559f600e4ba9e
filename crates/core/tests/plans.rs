//! The propagation planner on small, readable cases: one `check` per case, the expected plan
//! written out (and the diff behind one of them kept as a snapshot).

use std::str::FromStr;

use rust_decimal::Decimal;
use tidemark_core::diff::diff_products;
use tidemark_core::plan::{plan_order, plan_product};
use tidemark_core::sample;
use tidemark_core::transform::outbound_product;
use tidemark_core::{
    ConnectionSettings, ExternalId, Field, FieldPolicy, OrderStatus, PendingOp, Product, Rounding,
};

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_default()
}

/// Plans `canonical` against the snapshot `edit` makes from the desired state.
fn check(settings: &ConnectionSettings, edit: impl Fn(&mut Product), expected: &[&str]) {
    let canonical = sample::product(21);
    let mut snapshot = outbound_product(&canonical, settings).unwrap_or_else(|e| panic!("{e}"));
    edit(&mut snapshot);
    let ops = plan_product(&canonical, settings, Some(&snapshot)).unwrap_or_else(|e| panic!("{e}"));
    let described: Vec<String> = ops
        .iter()
        .map(|op| match op {
            PendingOp::Insert => "insert".to_owned(),
            PendingOp::Update { fields } => format!(
                "update {}",
                fields
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            PendingOp::ImageDelete { external_id, .. } => format!(
                "image_delete {}",
                external_id.as_ref().map_or("-", ExternalId::as_str)
            ),
        })
        .collect();
    assert_eq!(described, expected);
}

#[test]
fn in_step_plans_nothing() {
    check(&ConnectionSettings::default(), |_| {}, &[]);
}

#[test]
fn stale_fields_become_one_update() {
    check(
        &ConnectionSettings::default(),
        |s| {
            s.title = "Old title".into();
            s.variants[0].price = Some(dec("1.00"));
            s.variants[1].stock = Some(999);
        },
        &["update title,price,stock"],
    );
}

#[test]
fn readonly_and_absorb_only_fields_are_never_written() {
    let mut settings = ConnectionSettings::default();
    settings
        .field_policies
        .insert(Field::Title, FieldPolicy::Readonly);
    settings
        .field_policies
        .insert(Field::Stock, FieldPolicy::AbsorbOnly);
    check(
        &settings,
        |s| {
            s.title = "Old title".into();
            s.variants[1].stock = Some(999);
            s.vendor = None;
        },
        &["update vendor"],
    );
}

#[test]
fn images_gone_from_the_canonical_record_are_deleted_one_by_one() {
    let extra = |s: &mut Product, n: u32| {
        let mut image = s.images[0].clone();
        image.content_hash = tidemark_core::hash::image_hash_url(&format!("https://x/{n}"));
        image.external_id = Some(ExternalId::new(format!("media{n}")));
        image.position = 100 + n;
        s.images.push(image);
    };
    check(
        &ConnectionSettings::default(),
        |s| {
            // Deleted in snapshot position order, whatever the list order.
            extra(s, 2);
            extra(s, 1);
        },
        &["image_delete media1", "image_delete media2"],
    );
    let mut settings = ConnectionSettings::default();
    settings
        .field_policies
        .insert(Field::Images, FieldPolicy::AbsorbOnly);
    check(&settings, |s| extra(s, 1), &[]);
}

#[test]
fn missing_images_and_variants_are_updates() {
    check(
        &ConnectionSettings::default(),
        |s| {
            s.images.pop();
            s.variants.pop();
        },
        &["update images,variants"],
    );
}

#[test]
fn a_merchant_price_that_reads_back_as_canonical_is_left_alone() {
    let settings = ConnectionSettings {
        price: tidemark_core::PriceRule {
            rounding: Rounding::Charm {
                ending: dec("0.01"),
            },
            ..Default::default()
        },
        ..ConnectionSettings::default()
    };
    let canonical = sample::product(21);
    let mut snapshot = outbound_product(&canonical, &settings).unwrap_or_else(|e| panic!("{e}"));
    // The platform shows the canonical price itself, not its charm spelling.
    for (s, c) in snapshot.variants.iter_mut().zip(&canonical.variants) {
        s.price = c.price;
    }
    let ops = plan_product(&canonical, &settings, Some(&snapshot));
    assert_eq!(ops, Ok(vec![]));
}

#[test]
fn inserts_only_where_new_records_are_cloned() {
    let canonical = sample::product(1);
    let mut settings = ConnectionSettings::default();
    assert_eq!(plan_product(&canonical, &settings, None), Ok(vec![]));
    settings.clone_new_products = true;
    assert_eq!(
        plan_product(&canonical, &settings, None),
        Ok(vec![PendingOp::Insert])
    );

    let order = sample::order(1);
    settings.clone_new_orders = true;
    assert_eq!(
        plan_order(&order, &settings, false, None),
        Ok(vec![PendingOp::Insert])
    );
    assert_eq!(plan_order(&order, &settings, true, None), Ok(vec![]));
}

#[test]
fn order_updates_carry_only_mutable_fields() {
    let settings = ConnectionSettings::default();
    let order = sample::order(5);
    let mut snapshot = order.clone();
    snapshot.status = OrderStatus::OnHold;
    snapshot.total += Decimal::ONE;
    assert_eq!(
        plan_order(&order, &settings, false, Some(&snapshot)),
        Ok(vec![PendingOp::Update {
            fields: [Field::OrderStatus].into()
        }])
    );
}

#[test]
fn diff_snapshot() {
    let mut a = sample::product(30);
    a.description = "<p>A soft sweater.</p>".into();
    let mut b = a.clone();
    b.title = "Renamed".into();
    b.variants[0].price = Some(dec("1.50"));
    b.variants[0].external_id = Some(ExternalId::new("gid://shopify/ProductVariant/1"));
    b.variants.pop();
    b.images[0].alt = None;
    b.images.pop();
    b.description = "<p>short</p>".into();
    insta::assert_json_snapshot!(diff_products(&a, &b));
}
