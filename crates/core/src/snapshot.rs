//! What a connection's snapshot becomes after a send (DESIGN §4, "Send"), and the stock writes
//! a send makes.
//!
//! * **Stock is written as a move**, never as an absolute value: [`stock_changes`] gives, per
//!   variant, `from` (the snapshot's quantity) and `to` (the desired one); the connector adds
//!   `to − from` to the platform's *current* quantity. A sale made on the platform since the
//!   snapshot is then kept there, and the next fetch sees it as a difference against the
//!   snapshot, which merges as a delta ([`crate::merge::merge_stock`]). Variants are matched
//!   as the diff matches them ([`crate::diff::match_variants`]); only variants whose snapshot
//!   has an external id (there is something to write to) and whose stock is tracked on both
//!   sides and differs get a change.
//! * **Only what was sent advances** ([`advance_snapshot`]): the snapshot is what tidemark
//!   last knew of the platform, so a field that was not written keeps its old snapshot value.
//!   A platform-side edit to such a field since the last fetch is then still a difference on
//!   the next fetch and is absorbed, instead of being hidden by a snapshot copied wholesale
//!   from the platform's answer.
//! * **Sent fields take what tidemark wrote** (`desired`), not the platform's echo of it. A
//!   platform that reformats a field (trims a title, rewrites HTML) then shows that as an
//!   ordinary change on the next fetch, which is absorbed once and planned back as nothing —
//!   the loop converges in one round instead of ping-ponging between the two spellings on
//!   every send.
//! * **Locators come from the platform**: the external ids of variants and images and an
//!   image's `src` / `hash_source` are taken from `confirmed` where it has them (a created
//!   variant or uploaded image gets its id there), else kept from the old snapshot.
//! * Stock of a variant whose stock was sent becomes `to` (`from` + the delta applied), the
//!   quantity tidemark moved the platform to as far as it knows.

use crate::diff::{cmp_variant_keys, match_variants};
use crate::model::{ContentHash, Field, FieldSet, Image, Product, StockChange, Variant};

/// The stock moves that bring `snapshot` to `desired` (module docs).
pub fn stock_changes(snapshot: &Product, desired: &Product) -> Vec<StockChange> {
    match_variants(&snapshot.variants, &desired.variants)
        .into_iter()
        .filter_map(|pair| {
            let (Some(s), Some(d)) = pair else {
                return None;
            };
            let (old, new) = (snapshot.variants.get(s)?, desired.variants.get(d)?);
            let variant = old.external_id.clone()?;
            match (old.stock, new.stock) {
                (Some(from), Some(to)) if from != to => Some(StockChange {
                    variant,
                    sku: new.sku.clone().or_else(|| old.sku.clone()),
                    from,
                    to,
                }),
                _ => None,
            }
        })
        .collect()
}

/// The snapshot after a send of the fields `sent` (module docs). `old` is the snapshot the
/// send was planned against, `desired` the outbound record it was planned towards,
/// `confirmed` the platform's answer when it gave one. Image deletions are
/// [`snapshot_after_image_delete`].
///
/// The variant list follows `desired` only when [`Field::Variants`] was sent; a variant it
/// adds takes its unsent fields from its `confirmed` counterpart (the platform's own
/// defaults) when there is one.
pub fn advance_snapshot(
    old: &Product,
    desired: &Product,
    confirmed: Option<&Product>,
    sent: &FieldSet,
) -> Product {
    let has = |field: Field| sent.contains(&field);
    let mut out = old.clone();
    macro_rules! copy {
        ($field:ident, $name:expr) => {
            if has($name) {
                out.$field = desired.$field.clone();
            }
        };
    }
    copy!(sku, Field::Sku);
    copy!(title, Field::Title);
    copy!(description, Field::Description);
    copy!(brand, Field::Brand);
    copy!(vendor, Field::Vendor);
    copy!(category, Field::Category);
    copy!(tags, Field::Tags);
    copy!(barcode, Field::Barcode);
    copy!(weight_grams, Field::Weight);
    copy!(status, Field::Status);
    copy!(attributes, Field::Attributes);
    // Every amount is in the currency, so it moves with the prices.
    if has(Field::Price) || has(Field::CompareAtPrice) {
        out.currency = desired.currency;
    }

    let mut variants = Vec::with_capacity(desired.variants.len().max(old.variants.len()));
    for pair in match_variants(&old.variants, &desired.variants) {
        match pair {
            (Some(o), Some(d)) => {
                if let (Some(o), Some(d)) = (old.variants.get(o), desired.variants.get(d)) {
                    let mut variant = o.clone();
                    copy_variant_fields(&mut variant, d, sent);
                    variants.push(variant);
                }
            }
            (Some(o), None) => {
                // Removed only if the variant list was written.
                if !has(Field::Variants)
                    && let Some(o) = old.variants.get(o)
                {
                    variants.push(o.clone());
                }
            }
            (None, Some(d)) => {
                if has(Field::Variants)
                    && let Some(d) = desired.variants.get(d)
                {
                    let platform = confirmed.and_then(|c| counterpart(&c.variants, d));
                    let mut variant = platform.cloned().unwrap_or_else(|| d.clone());
                    copy_variant_fields(&mut variant, d, sent);
                    // The variant list was written: the new variant's identity is ours.
                    variant.sku = d.sku.clone();
                    variant.options = d.options.clone();
                    variants.push(variant);
                }
            }
            (None, None) => {}
        }
    }
    out.variants = variants;

    if has(Field::Images) {
        out.images = desired
            .images
            .iter()
            .map(|image| {
                let mut image = image.clone();
                if let Some(from) = old
                    .images
                    .iter()
                    .find(|i| i.content_hash == image.content_hash)
                {
                    take_image_locators(&mut image, from);
                }
                image
            })
            .collect();
    }
    take_locators(&mut out, confirmed);
    out.variants.sort_by(cmp_variant_keys);
    out.images.sort_by_key(|image| image.position);
    out
}

/// The snapshot of a record just created on the platform: what was written (`desired`, the
/// insert payload of [`crate::plan::outbound_for_insert`]), with the locators of `confirmed`.
/// Fields the insert did not write are empty in `desired`; the platform's own default for
/// them is then seen as a change by the next fetch and absorbed only where the connection's
/// policy absorbs that field.
pub fn snapshot_after_insert(desired: &Product, confirmed: Option<&Product>) -> Product {
    let mut out = desired.clone();
    take_locators(&mut out, confirmed);
    out
}

/// The snapshot after the image `content_hash` was deleted on the platform.
pub fn snapshot_after_image_delete(old: &Product, content_hash: ContentHash) -> Product {
    let mut out = old.clone();
    out.images
        .retain(|image| image.content_hash != content_hash);
    for (position, image) in (0u32..).zip(out.images.iter_mut()) {
        image.position = position;
    }
    for variant in &mut out.variants {
        variant.image_hashes.retain(|hash| *hash != content_hash);
    }
    out
}

/// The per-variant fields named by `sent`, as [`crate::diff::VariantFieldChanges::fields`]
/// names them.
fn copy_variant_fields(variant: &mut Variant, desired: &Variant, sent: &FieldSet) {
    let has = |field: Field| sent.contains(&field);
    if has(Field::Sku) {
        variant.sku = desired.sku.clone();
    }
    if has(Field::Barcode) {
        variant.barcode = desired.barcode.clone();
    }
    if has(Field::Variants) {
        variant.options = desired.options.clone();
    }
    if has(Field::Price) {
        variant.price = desired.price;
    }
    if has(Field::CompareAtPrice) {
        variant.compare_at_price = desired.compare_at_price;
    }
    if has(Field::Stock) {
        // `to` of the stock change: the old quantity plus the delta the connector applied.
        variant.stock = desired.stock;
    }
    if has(Field::Weight) {
        variant.weight_grams = desired.weight_grams;
    }
    if has(Field::Images) {
        variant.image_hashes = desired.image_hashes.clone();
    }
}

/// The variant of `variants` that `probe` matches (the diff's matching, for one probe).
fn counterpart<'a>(variants: &'a [Variant], probe: &Variant) -> Option<&'a Variant> {
    crate::diff::find_variant(variants, probe).and_then(|index| variants.get(index))
}

/// Variant and image locators from `confirmed`, where it has them.
fn take_locators(out: &mut Product, confirmed: Option<&Product>) {
    let Some(confirmed) = confirmed else {
        return;
    };
    for pair in match_variants(&out.variants, &confirmed.variants) {
        if let (Some(o), Some(c)) = pair
            && let Some(id) = confirmed
                .variants
                .get(c)
                .and_then(|v| v.external_id.clone())
            && let Some(variant) = out.variants.get_mut(o)
        {
            variant.external_id = Some(id);
        }
    }
    for image in &mut out.images {
        if let Some(from) = confirmed
            .images
            .iter()
            .find(|i| i.content_hash == image.content_hash)
        {
            take_image_locators(image, from);
        }
    }
}

fn take_image_locators(image: &mut Image, from: &Image) {
    if from.external_id.is_some() {
        image.external_id = from.external_id.clone();
    }
    image.src = from.src.clone();
    image.hash_source = from.hash_source;
}
