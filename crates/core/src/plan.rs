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

use crate::diff::{ImageChange, VariantChange, diff_orders, diff_products, variant_key};
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
    for change in &diff.variants {
        let mut changed = change.fields();
        if let VariantChange::Changed { key: _, changes } = change {
            let canonical_variant = desired_variant(&desired, change)
                .and_then(|v| canonical_variant(canonical, v, target));
            let agrees =
                |old: Option<rust_decimal::Decimal>,
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

/// The desired variant a `Changed` entry is about (matched by key, which desired shares).
fn desired_variant<'a>(desired: &'a Product, change: &VariantChange) -> Option<&'a Variant> {
    let VariantChange::Changed { key, .. } = change else {
        return None;
    };
    desired.variants.iter().find(|v| variant_key(v) == *key)
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
