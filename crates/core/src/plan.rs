//! The propagation planner (DESIGN §4, "Propagate"): a canonical record, one target
//! connection's settings and that connection's snapshot → the pending operations that bring
//! the connection in line.
//!
//! * No snapshot (not on that connection yet): `[Insert]` when the settings clone new records
//!   there, else nothing.
//! * With a snapshot: desired = the outbound transform of the canonical record; the diff
//!   snapshot → desired, restricted to fields whose policy on the target
//!   [`sends`](crate::model::FieldPolicy::sends) (`readonly` and `absorb_only` fields are never
//!   written), is one `Update { fields }` when anything is left; every image of the snapshot
//!   absent from desired is one `ImageDelete` (when the `Images` policy sends), in snapshot
//!   position order, after the update. Image removals alone do not name `images` in the update.
//! * A snapshot price that reads back (inbound) as exactly the canonical price needs no update,
//!   even when the outbound rounding would spell it differently: the merchant's own price on
//!   that platform stands (see [`crate::transform`]).
//! * Never a product or order delete: [`PendingOp`] has no such variant.
//!
//! Plans are pure functions of their inputs, so planning twice gives the same operations.

use thiserror::Error;

use crate::diff::{
    ImageChange, VariantFieldChanges, diff_orders, diff_products, match_variants, variant_key,
};
use crate::model::{ConnectionSettings, Field, FieldSet, PendingOp, Product, SalesOrder, Variant};
use crate::transform::{
    TransformError, inbound_price, inbound_variant_key, outbound_order, outbound_product,
};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PlanError {
    #[error("cannot compute the product as it should be on this connection: {0}")]
    Transform(#[from] TransformError),
}

/// Pending operations that bring one connection's copy of `canonical` in line (module docs).
pub fn plan_product(
    canonical: &Product,
    target: &ConnectionSettings,
    snapshot: Option<&Product>,
) -> Result<Vec<PendingOp>, PlanError> {
    let Some(snapshot) = snapshot else {
        return Ok(if target.clone_new_products {
            vec![PendingOp::Insert]
        } else {
            Vec::new()
        });
    };
    let desired = outbound_product(canonical, target)?;
    let diff = diff_products(snapshot, &desired);

    let mut fields = diff.product_fields();
    // Variants paired exactly as the diff pairs them (two-pass matching): the snapshot side
    // may lack the SKUs the desired side has.
    for pair in match_variants(&snapshot.variants, &desired.variants) {
        let (old, new) = (
            pair.0.and_then(|i| snapshot.variants.get(i)),
            pair.1.and_then(|i| desired.variants.get(i)),
        );
        let (Some(old), Some(new)) = (old, new) else {
            fields.insert(Field::Variants);
            continue;
        };
        let changes = VariantFieldChanges::between(old, new);
        let mut changed = changes.fields();
        if changed.is_empty() {
            continue;
        }
        let canonical_variant = canonical_variant(canonical, new, target);
        let agrees = |old: Option<rust_decimal::Decimal>,
                      pick: fn(&Variant) -> Option<rust_decimal::Decimal>| {
            match (old, canonical_variant.and_then(pick)) {
                (Some(old), Some(canonical_price)) => {
                    inbound_price(old, snapshot.currency, canonical.currency, target)
                        .is_ok_and(|read_back| read_back == canonical_price)
                }
                _ => false,
            }
        };
        if let Some(price) = &changes.price
            && agrees(price.old, |v| v.price)
        {
            changed.remove(&Field::Price);
        }
        if let Some(price) = &changes.compare_at_price
            && agrees(price.old, |v| v.compare_at_price)
        {
            changed.remove(&Field::CompareAtPrice);
        }
        fields.extend(changed);
    }
    if diff
        .images
        .iter()
        .any(|change| !matches!(change, ImageChange::Removed { .. }))
    {
        fields.insert(Field::Images);
    }
    fields.retain(|field| target.policy(*field).sends());

    let mut ops = Vec::new();
    if !fields.is_empty() {
        ops.push(PendingOp::Update { fields });
    }
    if target.policy(Field::Images).sends() {
        ops.extend(diff.images.iter().filter_map(|change| match change {
            ImageChange::Removed { image } => Some(PendingOp::ImageDelete {
                external_id: image.external_id.clone(),
                content_hash: image.content_hash,
            }),
            _ => None,
        }));
    }
    Ok(ops)
}

/// The canonical variant a desired (outbound) variant came from.
fn canonical_variant<'a>(
    canonical: &'a Product,
    desired: &Variant,
    target: &ConnectionSettings,
) -> Option<&'a Variant> {
    let key = inbound_variant_key(desired, target);
    canonical.variants.iter().find(|v| variant_key(v) == key)
}

/// The fields a create on this connection writes: every product field whose policy
/// [`sends`](crate::model::FieldPolicy::sends), plus [`Field::Variants`] always (a product
/// cannot be created without its variant list; which variants exist is structure, and each
/// variant's own fields still follow their policies).
pub fn insert_fields(target: &ConnectionSettings) -> FieldSet {
    let mut fields: FieldSet = Field::PRODUCT_FIELDS
        .into_iter()
        .filter(|field| target.policy(*field).sends())
        .collect();
    fields.insert(Field::Variants);
    fields
}

/// The record a create (`PendingOp::Insert`) writes on this connection: the outbound
/// transform of `canonical` with every field the target does not send
/// ([`insert_fields`]) left out.
///
/// *Left out* means empty in the model — `None`, an empty string, list or map — and
/// connectors omit empty fields from a create, so the platform applies its own default for
/// them (no description, no images, its default category, its default status handling…).
/// [`ProductStatus`](crate::model::ProductStatus) has no empty form: when `status` is not
/// sent the connector must omit it too, which it knows from [`insert_fields`]. A readonly
/// `title` leaves the title empty; platforms that require one answer with a validation
/// error, which becomes an issue on the record rather than a title the merchant said never
/// to write.
pub fn outbound_for_insert(
    canonical: &Product,
    target: &ConnectionSettings,
) -> Result<Product, PlanError> {
    let mut out = outbound_product(canonical, target)?;
    let sends = |field: Field| target.policy(field).sends();
    if !sends(Field::Sku) {
        out.sku = None;
    }
    if !sends(Field::Title) {
        out.title.clear();
    }
    if !sends(Field::Description) {
        out.description.clear();
    }
    if !sends(Field::Brand) {
        out.brand = None;
    }
    if !sends(Field::Vendor) {
        out.vendor = None;
    }
    if !sends(Field::Category) {
        out.category = None;
    }
    if !sends(Field::Tags) {
        out.tags.clear();
    }
    if !sends(Field::Barcode) {
        out.barcode = None;
    }
    if !sends(Field::Weight) {
        out.weight_grams = None;
    }
    if !sends(Field::Attributes) {
        out.attributes.clear();
    }
    if !sends(Field::Images) {
        out.images.clear();
    }
    for variant in &mut out.variants {
        // Not even variant SKUs when `sku` is not sent: the merchant said never to write
        // them there. The created variants are then matched by options (pass 2 of
        // `diff::match_variants`) and a retried create cannot find them by SKU.
        if !sends(Field::Sku) {
            variant.sku = None;
        }
        if !sends(Field::Barcode) {
            variant.barcode = None;
        }
        if !sends(Field::Price) {
            variant.price = None;
        }
        if !sends(Field::CompareAtPrice) {
            variant.compare_at_price = None;
        }
        if !sends(Field::Stock) {
            variant.stock = None;
        }
        if !sends(Field::Weight) {
            variant.weight_grams = None;
        }
        if !sends(Field::Images) {
            variant.image_hashes.clear();
        }
    }
    out.variants.sort_by(crate::diff::cmp_variant_keys);
    Ok(out)
}

/// Pending operations for one connection's copy of a sales order. No snapshot: `[Insert]`
/// when the settings clone new orders there and the connection is not where the order was
/// placed. With a snapshot: one `Update` of the order fields that differ from the outbound
/// order ([`outbound_order`], defaults applied; the origin gets the order as it is) and whose
/// policy sends. Lines and totals never change after creation and are never written.
pub fn plan_order(
    order: &SalesOrder,
    target: &ConnectionSettings,
    target_is_origin: bool,
    snapshot: Option<&SalesOrder>,
) -> Result<Vec<PendingOp>, PlanError> {
    let Some(snapshot) = snapshot else {
        return Ok(if target.clone_new_orders && !target_is_origin {
            vec![PendingOp::Insert]
        } else {
            Vec::new()
        });
    };
    let desired = if target_is_origin {
        order.clone()
    } else {
        outbound_order(order, target)
    };
    let mut fields: FieldSet = diff_orders(snapshot, &desired).changed_fields();
    fields.retain(|field| target.policy(*field).sends());
    Ok(if fields.is_empty() {
        Vec::new()
    } else {
        vec![PendingOp::Update { fields }]
    })
}
