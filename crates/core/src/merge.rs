//! Merge rules of DESIGN §4 ("Absorb", "Deletions"): how a record scanned on one connection
//! changes the canonical record.
//!
//! * **Only what the platform changed.** The scanned record is compared with the connection's
//!   acknowledged snapshot, both brought into canonical terms by
//!   [`crate::transform::inbound_product`]; only fields that differ, and whose policy on that
//!   connection absorbs ([`FieldPolicy::absorbs`](crate::model::FieldPolicy::absorbs)), are
//!   candidates.
//! * **Stock merges as a delta**: `canonical + (scanned − snapshot)`, saturating
//!   ([`merge_stock`]), so a sale on each of two channels removes two. Timestamps do not
//!   matter for a delta. When the delta is undefined (stock untracked on one side) the
//!   scanned value is an ordinary field change.
//! * **Every other field: the later change wins**, comparing the platform's `changed_at` with
//!   `canonical.field_times[field]` (absent fields take `created_at`). Times are kept per
//!   [`Field`], not per variant: a later price change on any variant makes earlier price
//!   changes elsewhere lose. **A tie goes to the platform**: the platform's value is what the
//!   merchant can see right now, and the canonical record changed at the very same
//!   millisecond cannot be shown to be newer.
//! * **Prices do not ping-pong**: a scanned price equal to the outbound transform of the
//!   canonical price is not a change, even if the inbound value rounds differently.
//! * **Variants are lined up** with the diff's two-pass matching
//!   ([`crate::diff::match_variants`]): snapshot, scan and canonical variants pair by SKU,
//!   then by options when one side has no SKU. A platform variant that lost (or never had)
//!   its SKU changes the canonical variant it matches but never erases its SKU: the SKU is
//!   how every other connection finds that variant.
//! * **Unreadable prices** (a platform price the inverse margin cannot bring back, e.g.
//!   below `margin_fixed`) count as no price change for that variant and are reported in
//!   [`Absorbed::warnings`]; the rest of the record is absorbed. Only broken settings (no
//!   conversion rate, a margin at or below −100 %) fail an absorb.
//! * **The target's default category** reads back as *no change*: outbound writes it for
//!   categories the map does not cover, so seeing it says nothing about the canonical
//!   category (unless it is also a mapped value, which reads back through the map).
//! * **Additions are absorbed** (variants and images new on the platform are added, when the
//!   `Variants` / `Images` policy absorbs). An added variant brings its SKU and options (its
//!   identity) and only the fields this connection absorbs; the others stay empty until a
//!   connection that absorbs them, or the merchant, fills them in (outbound then leaves them
//!   unwritten). **Removals are absorbed only from the master
//!   connection** (`settings.master`); elsewhere the canonical record keeps the variant or
//!   image and the next send restores it. A removal needs a snapshot: a record seen for the
//!   first time removed nothing.
//! * **First sight** (no snapshot): the whole scanned record is a change at `changed_at`,
//!   compared with the canonical record itself; for stock that means the scanned value.
//! * **Deletions** of a whole record: see [`deletion_effect`]. A product deleted on the master
//!   connection is archived canonically (status `archived`, sent to every other connection as
//!   an update) and unbound; elsewhere it is only unbound. Nothing is ever deleted on a
//!   platform because of it. Orders are only unbound. The [`mass_delete_guard`] stops a
//!   broken full scan from applying deletions at all.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::diff::{
    ImageChange, VariantFieldChanges, VariantKey, diff_orders, diff_products, match_variants,
    variant_key,
};
use crate::model::{
    CanonicalOrder, CanonicalProduct, ConnectionSettings, Field, FieldSet, Product, ProductStatus,
    RecordKind, SalesOrder, Sku, Timestamp, Variant,
};
use crate::normalize::{NormalizeError, NormalizeWarning, normalize_product_with_warnings};
use crate::transform::{
    TransformError, inbound_product_lenient, inbound_variant_key, outbound_price,
};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MergeError {
    #[error("cannot read the scanned product in canonical terms: {0}")]
    Transform(#[from] TransformError),
    #[error("the merged product is not valid: {0}")]
    Normalize(#[from] NormalizeError),
}

/// `canonical + (scanned − snapshot)`, saturating: what the platform sold or restocked since
/// the snapshot is applied to the canonical stock, so concurrent sales on two channels both
/// count.
pub fn merge_stock(canonical: i64, snapshot: i64, scanned: i64) -> i64 {
    canonical.saturating_add(scanned.saturating_sub(snapshot))
}

/// The canonical product after absorbing a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absorbed {
    pub content: Product,
    pub field_times: BTreeMap<Field, Timestamp>,
    /// Fields whose canonical value changed: what to propagate.
    pub changed: FieldSet,
    /// What was not absorbed and why, for the engine to raise as issues (the rest of the
    /// record was absorbed).
    pub warnings: Vec<AbsorbWarning>,
}

/// Something a scan carried that was left out of the canonical record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbsorbWarning {
    /// A platform price that reads back as no valid canonical price (see
    /// [`crate::transform::inbound_product_lenient`]): that variant's price is treated as
    /// unchanged.
    UnreadablePrice {
        sku: Option<Sku>,
        field: Field,
        price: Decimal,
        reason: TransformError,
    },
    /// Normalisation of the merged record dropped something.
    Normalize(NormalizeWarning),
}

/// Absorbs `scanned` (normalised, as on the platform) into `canonical`, given the
/// connection's `snapshot` (normalised, as on the platform) when the record was seen before.
/// `changed_at` is the platform's modification time of the scanned record. Rules in the
/// module docs.
pub fn absorb_product(
    canonical: &CanonicalProduct,
    snapshot: Option<&Product>,
    scanned: &Product,
    changed_at: Timestamp,
    settings: &ConnectionSettings,
) -> Result<Absorbed, MergeError> {
    let currency = canonical.content.currency;
    let (scanned_in, unreadable) = inbound_product_lenient(scanned, settings, currency)?;
    let base = match snapshot {
        Some(snapshot) => inbound_product_lenient(snapshot, settings, currency)?.0,
        None => canonical.content.clone(),
    };
    let mut warnings: Vec<AbsorbWarning> = unreadable
        .iter()
        .map(|u| AbsorbWarning::UnreadablePrice {
            sku: u.sku.clone(),
            field: u.field,
            price: u.price,
            reason: u.reason.clone(),
        })
        .collect();
    let unreadable_price = |key: &VariantKey, field: Field| {
        unreadable.iter().any(|u| u.key == *key && u.field == field)
    };
    let mut diff = diff_products(&base, &scanned_in);
    // The target's default category stands for "not mapped", not for a category the merchant
    // chose there: it reads back as no change, so a first sight or a mapping gap never
    // overwrites the canonical category with it.
    if let Some(default) = &settings.default_category
        && scanned.category.as_ref() == Some(default)
        && !settings
            .category_map
            .values()
            .any(|mapped| mapped == default)
    {
        diff.category = None;
    }
    let absorbs = |field: Field| settings.policy(field).absorbs();
    let wins = |field: Field| {
        absorbs(field)
            && changed_at
                >= canonical
                    .field_times
                    .get(&field)
                    .copied()
                    .unwrap_or(canonical.created_at)
    };
    // Platform prices of scanned variants by canonical key, for the ping-pong guard.
    let platform_prices: BTreeMap<VariantKey, &Variant> = scanned
        .variants
        .iter()
        .map(|v| (inbound_variant_key(v, settings), v))
        .collect();
    let unchanged_price = |key: &VariantKey,
                           canonical_price: Option<Decimal>,
                           pick: fn(&Variant) -> Option<Decimal>| {
        let Some(platform) = platform_prices.get(key) else {
            return false;
        };
        match (canonical_price, pick(platform)) {
            (Some(c), Some(p)) => outbound_price(c, currency, settings).is_ok_and(|out| out == p),
            (None, None) => true,
            _ => false,
        }
    };

    let mut out = canonical.content.clone();
    macro_rules! take {
        ($field:ident, $name:expr) => {
            if let Some(change) = &diff.$field
                && wins($name)
            {
                out.$field = change.new.clone();
            }
        };
    }
    take!(sku, Field::Sku);
    take!(title, Field::Title);
    take!(description, Field::Description);
    take!(brand, Field::Brand);
    take!(vendor, Field::Vendor);
    take!(category, Field::Category);
    take!(tags, Field::Tags);
    take!(barcode, Field::Barcode);
    take!(weight_grams, Field::Weight);
    take!(status, Field::Status);
    take!(attributes, Field::Attributes);

    // Base, scan and canonical variants are lined up with the diff's own two-pass matching,
    // so a platform variant without a SKU still reaches the canonical variant with one.
    let canon = &canonical.content.variants;
    let to_canon = |from: &[Variant]| {
        let mut map = vec![None; from.len()];
        for pair in match_variants(from, canon) {
            if let (Some(a), Some(c)) = pair {
                map[a] = Some(c);
            }
        }
        map
    };
    let base_to_canon = to_canon(&base.variants);
    let scan_to_canon = to_canon(&scanned_in.variants);
    let removals = settings.master && snapshot.is_some();
    let mut removed = Vec::new();
    for pair in match_variants(&base.variants, &scanned_in.variants) {
        match pair {
            (None, Some(s)) => {
                let Some(variant) = scanned_in.variants.get(s) else {
                    continue;
                };
                if absorbs(Field::Variants) && scan_to_canon.get(s).copied().flatten().is_none() {
                    out.variants.push(added_variant(variant, settings));
                }
            }
            (Some(b), None) => {
                if removals
                    && absorbs(Field::Variants)
                    && let Some(index) = base_to_canon.get(b).copied().flatten()
                {
                    removed.push(index);
                }
            }
            (Some(b), Some(s)) => {
                let (Some(old), Some(new)) = (base.variants.get(b), scanned_in.variants.get(s))
                else {
                    continue;
                };
                let changes = VariantFieldChanges::between(old, new);
                if changes.is_empty() {
                    continue;
                }
                let Some(index) = base_to_canon.get(b).copied().flatten() else {
                    // Gone canonically (removed on the master): nothing to change.
                    continue;
                };
                let key = variant_key(new);
                let target = &mut out.variants[index];
                if let Some(stock) = &changes.stock
                    && absorbs(Field::Stock)
                {
                    target.stock = match (target.stock, stock.old, stock.new) {
                        (Some(c), Some(s), Some(n)) => Some(merge_stock(c, s, n)),
                        (current, _, new) => {
                            if wins(Field::Stock) {
                                new
                            } else {
                                current
                            }
                        }
                    };
                }
                if let Some(price) = &changes.price
                    && wins(Field::Price)
                    && !unreadable_price(&key, Field::Price)
                    && !unchanged_price(&key, target.price, |v| v.price)
                {
                    target.price = price.new;
                }
                if let Some(price) = &changes.compare_at_price
                    && wins(Field::CompareAtPrice)
                    && !unreadable_price(&key, Field::CompareAtPrice)
                    && !unchanged_price(&key, target.compare_at_price, |v| v.compare_at_price)
                {
                    target.compare_at_price = price.new;
                }
                // A platform that dropped the SKU of a variant (pass-2 match) does not erase
                // the canonical SKU: the SKU is how every other connection finds the variant.
                if let Some(c) = &changes.sku
                    && c.new.is_some()
                    && wins(Field::Sku)
                {
                    target.sku = c.new.clone();
                }
                if let Some(c) = &changes.barcode
                    && wins(Field::Barcode)
                {
                    target.barcode = c.new.clone();
                }
                if let Some(c) = &changes.weight_grams
                    && wins(Field::Weight)
                {
                    target.weight_grams = c.new;
                }
                if let Some(c) = &changes.options
                    && wins(Field::Variants)
                {
                    target.options = c.new.clone();
                }
                if let Some(c) = &changes.image_hashes
                    && wins(Field::Images)
                {
                    target.image_hashes = c.new.clone();
                }
            }
            (None, None) => {}
        }
    }
    removed.sort_unstable();
    removed.dedup();
    for index in removed.into_iter().rev() {
        out.variants.remove(index);
    }

    for change in &diff.images {
        let find = |images: &[crate::model::Image], hash| {
            images.iter().position(|image| image.content_hash == hash)
        };
        match change {
            ImageChange::Added { image } => {
                if absorbs(Field::Images) && find(&out.images, image.content_hash).is_none() {
                    out.images.push(crate::model::Image {
                        external_id: None,
                        ..image.clone()
                    });
                }
            }
            ImageChange::Removed { image } => {
                if removals
                    && absorbs(Field::Images)
                    && let Some(index) = find(&out.images, image.content_hash)
                {
                    out.images.remove(index);
                }
            }
            ImageChange::Changed {
                content_hash,
                position,
                alt,
            } => {
                if wins(Field::Images)
                    && let Some(index) = find(&out.images, *content_hash)
                {
                    if let Some(position) = position {
                        out.images[index].position = position.new;
                    }
                    if let Some(alt) = alt {
                        out.images[index].alt = alt.new.clone();
                    }
                }
            }
        }
    }

    let (content, dropped) = normalize_product_with_warnings(out)?;
    warnings.extend(dropped.into_iter().map(AbsorbWarning::Normalize));
    let changed = diff_products(&canonical.content, &content).changed_fields();
    let field_times = stamp(&canonical.field_times, &changed, changed_at);
    Ok(Absorbed {
        content,
        field_times,
        changed,
        warnings,
    })
}

/// A variant new on the platform as it enters the canonical record: its identity (SKU and
/// options) always, every other field only when this connection's policy absorbs it. A field
/// the connection does not absorb is left empty (`None`, no images) rather than taken from
/// it: the canonical record has no value for it yet, a connection that absorbs it (or the
/// merchant) gives it one, and outbound leaves it unwritten until then.
fn added_variant(variant: &Variant, settings: &ConnectionSettings) -> Variant {
    let absorbs = |field: Field| settings.policy(field).absorbs();
    Variant {
        external_id: None,
        sku: variant.sku.clone(),
        options: variant.options.clone(),
        barcode: variant.barcode.clone().filter(|_| absorbs(Field::Barcode)),
        price: variant.price.filter(|_| absorbs(Field::Price)),
        compare_at_price: variant
            .compare_at_price
            .filter(|_| absorbs(Field::CompareAtPrice)),
        stock: variant.stock.filter(|_| absorbs(Field::Stock)),
        weight_grams: variant.weight_grams.filter(|_| absorbs(Field::Weight)),
        image_hashes: if absorbs(Field::Images) {
            variant.image_hashes.clone()
        } else {
            Vec::new()
        },
    }
}

/// `times` with every changed field stamped `at` (never moved backwards: a stock delta may
/// apply an older change).
fn stamp(
    times: &BTreeMap<Field, Timestamp>,
    changed: &FieldSet,
    at: Timestamp,
) -> BTreeMap<Field, Timestamp> {
    let mut times = times.clone();
    for field in changed {
        let time = times.entry(*field).or_insert(at);
        *time = (*time).max(at);
    }
    times
}

/// The canonical order after absorbing a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsorbedOrder {
    pub content: SalesOrder,
    pub field_times: BTreeMap<Field, Timestamp>,
    pub changed: FieldSet,
}

/// Absorbs a scanned order: status, payment status, shipments and note, each by policy and
/// later-wins (a tie goes to the platform), against the snapshot when there is one, else
/// against the canonical order. Lines, totals and buyer never change after creation.
pub fn absorb_order(
    canonical: &CanonicalOrder,
    snapshot: Option<&SalesOrder>,
    scanned: &SalesOrder,
    changed_at: Timestamp,
    settings: &ConnectionSettings,
) -> AbsorbedOrder {
    let base = snapshot.unwrap_or(&canonical.content);
    let diff = diff_orders(base, scanned);
    let wins = |field: Field| {
        settings.policy(field).absorbs()
            && changed_at
                >= canonical
                    .field_times
                    .get(&field)
                    .copied()
                    .unwrap_or(canonical.created_at)
    };
    let mut content = canonical.content.clone();
    if let Some(c) = &diff.status
        && wins(Field::OrderStatus)
    {
        content.status = c.new;
    }
    if let Some(c) = &diff.payment_status
        && wins(Field::PaymentStatus)
    {
        content.payment_status = c.new;
    }
    if let Some(c) = &diff.shipments
        && wins(Field::Shipments)
    {
        content.shipments = c.new.clone();
    }
    if let Some(c) = &diff.note
        && wins(Field::OrderNote)
    {
        content.note = c.new.clone();
    }
    let changed = diff_orders(&canonical.content, &content).changed_fields();
    let field_times = stamp(&canonical.field_times, &changed, changed_at);
    AbsorbedOrder {
        content,
        field_times,
        changed,
    }
}

/// What a record deleted on a platform does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionEffect {
    /// Archive the canonical product ([`archive_product`]), propagate that as an update, and
    /// drop the binding.
    ArchiveAndUnbind,
    /// Only drop the binding; the canonical record and every other platform are untouched.
    Unbind,
}

/// A product deleted on the master connection is archived canonically; anything else deleted
/// anywhere is only unbound (see the module docs).
pub fn deletion_effect(kind: RecordKind, settings: &ConnectionSettings) -> DeletionEffect {
    match kind {
        RecordKind::Product if settings.master => DeletionEffect::ArchiveAndUnbind,
        _ => DeletionEffect::Unbind,
    }
}

/// The canonical product archived because the master deleted it. A master deletion wins over
/// edits whatever their time, so `deleted_at` only stamps the status.
pub fn archive_product(canonical: &CanonicalProduct, deleted_at: Timestamp) -> Absorbed {
    let mut content = canonical.content.clone();
    content.status = ProductStatus::Archived;
    let changed: FieldSet = if canonical.content.status == ProductStatus::Archived {
        FieldSet::new()
    } else {
        [Field::Status].into()
    };
    let field_times = stamp(&canonical.field_times, &changed, deleted_at);
    Absorbed {
        content,
        field_times,
        changed,
        warnings: Vec::new(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum GuardDecision {
    Apply,
    Refuse { reason: String },
}

/// The mass-delete guard (DESIGN §4, "Deletions"): a full scan that saw `scanned` records while
/// `bound` bindings exist, `unseen` of which it did not see. Deletions apply unless the scan
/// returned nothing while bindings exist, or `unseen / bound` is more than `share`.
pub fn mass_delete_guard(bound: u64, scanned: u64, unseen: u64, share: Decimal) -> GuardDecision {
    if unseen == 0 {
        return GuardDecision::Apply;
    }
    if scanned == 0 && bound > 0 {
        return GuardDecision::Refuse {
            reason: format!(
                "the full scan returned no records while {bound} are bound; no deletions applied"
            ),
        };
    }
    // An overflowing limit is a share no scan can exceed.
    let over = share
        .checked_mul(Decimal::from(bound))
        .is_some_and(|limit| Decimal::from(unseen) > limit);
    if over {
        // Settings are validated on save (share in [0, 1]), but a stored value may predate
        // that: never panic on it, say the share as it is instead.
        let allowed = share.checked_mul(Decimal::ONE_HUNDRED).map_or_else(
            || format!("share {} of records", share.normalize()),
            |percent| format!("{}%", percent.normalize()),
        );
        return GuardDecision::Refuse {
            reason: format!(
                "the full scan did not see {unseen} of {bound} bound records, more than the \
                 {allowed} allowed; no deletions applied"
            ),
        };
    }
    GuardDecision::Apply
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountId, FieldPolicy, ProductId};
    use crate::normalize::normalize_product;
    use crate::sample;

    fn canonical(content: Product, times: &[(Field, i64)]) -> CanonicalProduct {
        CanonicalProduct {
            id: ProductId(1),
            account: AccountId(1),
            content,
            field_times: times.iter().map(|(f, t)| (*f, Timestamp(*t))).collect(),
            created_at: Timestamp(100),
            updated_at: Timestamp(100),
        }
    }

    #[test]
    fn stock_is_a_saturating_delta() {
        let cases = [
            (10, 10, 7, 7),
            (8, 10, 7, 5),
            (8, 10, 12, 10),
            (i64::MAX, 0, 5, i64::MAX),
            (i64::MIN, 5, 0, i64::MIN),
        ];
        for (c, s, n, expected) in cases {
            assert_eq!(merge_stock(c, s, n), expected, "{c} {s} {n}");
        }
    }

    #[test]
    fn later_change_wins_and_a_tie_goes_to_the_platform() {
        let base = sample::product(1);
        let mut scanned = base.clone();
        scanned.title = "Platform title".into();
        let settings = ConnectionSettings::default();
        let cases = [(200, 150, true), (200, 200, true), (200, 250, false)];
        for (changed_at, canonical_time, platform_wins) in cases {
            let mut content = base.clone();
            content.title = "Canonical title".into();
            let c = canonical(content, &[(Field::Title, canonical_time)]);
            let out = absorb_product(&c, Some(&base), &scanned, Timestamp(changed_at), &settings)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                out.content.title == "Platform title",
                platform_wins,
                "{changed_at} vs {canonical_time}"
            );
            assert_eq!(out.changed.contains(&Field::Title), platform_wins);
            if platform_wins {
                assert_eq!(
                    out.field_times.get(&Field::Title),
                    Some(&Timestamp(changed_at))
                );
            }
        }
    }

    #[test]
    fn policies_that_do_not_absorb_are_ignored() {
        let base = sample::product(2);
        let mut scanned = base.clone();
        scanned.title = "Changed".into();
        scanned.variants[0].stock = Some(0);
        for policy in [FieldPolicy::SendOnly, FieldPolicy::Readonly] {
            let mut settings = ConnectionSettings::default();
            settings.field_policies.insert(Field::Title, policy);
            settings.field_policies.insert(Field::Stock, policy);
            let out = absorb_product(
                &canonical(base.clone(), &[]),
                Some(&base),
                &scanned,
                Timestamp(500),
                &settings,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out.content, base);
            assert!(out.changed.is_empty());
        }
    }

    #[test]
    fn removals_only_from_the_master_additions_from_anyone() {
        let base = sample::product(3);
        let mut scanned = base.clone();
        let removed_variant = scanned.variants.remove(0);
        let removed_image = scanned.images.remove(1);
        let mut added = scanned.variants[0].clone();
        added.sku = Some(crate::model::Sku("NEW-1".into()));
        added.external_id = Some(crate::model::ExternalId::new("v9"));
        scanned.variants.push(added);
        let scanned = normalize_product(scanned).unwrap_or_else(|e| panic!("{e}"));
        for master in [false, true] {
            let settings = ConnectionSettings {
                master,
                ..ConnectionSettings::default()
            };
            let out = absorb_product(
                &canonical(base.clone(), &[]),
                Some(&base),
                &scanned,
                Timestamp(500),
                &settings,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let has_variant = out
                .content
                .variants
                .iter()
                .any(|v| v.sku == removed_variant.sku);
            let has_image = out
                .content
                .images
                .iter()
                .any(|i| i.content_hash == removed_image.content_hash);
            assert_eq!(has_variant, !master);
            assert_eq!(has_image, !master);
            let new = out
                .content
                .variants
                .iter()
                .find(|v| v.sku.as_ref().is_some_and(|s| s.0 == "NEW-1"));
            assert!(
                new.is_some_and(|v| v.external_id.is_none()),
                "added, without the platform's id"
            );
            // Without a snapshot nothing was removed by the platform.
            let out = absorb_product(
                &canonical(base.clone(), &[]),
                None,
                &scanned,
                Timestamp(500),
                &settings,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                out.content
                    .variants
                    .iter()
                    .any(|v| v.sku == removed_variant.sku)
            );
        }
    }

    #[test]
    fn deletions() {
        let master = ConnectionSettings {
            master: true,
            ..ConnectionSettings::default()
        };
        let other = ConnectionSettings::default();
        assert_eq!(
            deletion_effect(RecordKind::Product, &master),
            DeletionEffect::ArchiveAndUnbind
        );
        assert_eq!(
            deletion_effect(RecordKind::Product, &other),
            DeletionEffect::Unbind
        );
        assert_eq!(
            deletion_effect(RecordKind::Order, &master),
            DeletionEffect::Unbind
        );
        let c = canonical(sample::product(1), &[(Field::Status, 900)]);
        let archived = archive_product(&c, Timestamp(500));
        assert_eq!(archived.content.status, ProductStatus::Archived);
        assert_eq!(archived.changed, [Field::Status].into());
        assert_eq!(
            archived.field_times.get(&Field::Status),
            Some(&Timestamp(900))
        );
    }

    #[test]
    fn mass_delete_guard_cases() {
        let half = Decimal::new(5, 1);
        let cases = [
            (100, 100, 0, true),
            (100, 0, 100, false),
            (0, 0, 0, true),
            (100, 60, 40, true),
            (100, 50, 50, true),
            (100, 49, 51, false),
            (1, 0, 1, false),
        ];
        for (bound, scanned, unseen, applies) in cases {
            let decision = mass_delete_guard(bound, scanned, unseen, half);
            assert_eq!(
                decision == GuardDecision::Apply,
                applies,
                "{bound} {scanned} {unseen}: {decision:?}"
            );
        }
        assert_eq!(
            mass_delete_guard(100, 10, 90, half),
            GuardDecision::Refuse {
                reason: "the full scan did not see 90 of 100 bound records, more than the 50% \
                         allowed; no deletions applied"
                    .into()
            }
        );
        assert_eq!(
            mass_delete_guard(10, 5, 5, Decimal::MAX),
            GuardDecision::Apply
        );
    }

    #[test]
    fn orders_absorb_status_later_wins() {
        let content = sample::order(2);
        let c = CanonicalOrder {
            id: crate::model::OrderId(1),
            account: AccountId(1),
            origin: crate::model::ConnectionId(1),
            content: content.clone(),
            field_times: [(Field::OrderStatus, Timestamp(300))].into(),
            created_at: Timestamp(100),
            updated_at: Timestamp(100),
        };
        let mut scanned = content.clone();
        scanned.status = crate::model::OrderStatus::Refunded;
        scanned.note = Some("call first".into());
        let settings = ConnectionSettings::default();
        let out = absorb_order(&c, Some(&content), &scanned, Timestamp(200), &settings);
        assert_eq!(
            out.content.status, content.status,
            "older than the canonical status"
        );
        assert_eq!(out.content.note.as_deref(), Some("call first"));
        let out = absorb_order(&c, Some(&content), &scanned, Timestamp(300), &settings);
        assert_eq!(out.content.status, crate::model::OrderStatus::Refunded);
        assert!(out.changed.contains(&Field::OrderStatus));
    }
}
