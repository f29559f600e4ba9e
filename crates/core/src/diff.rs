//! The diff engine: field-level changes between two normalised records (DESIGN §4,
//! "post-analysis").
//!
//! Variants are matched in two passes ([`match_variants`], used alike by the diff, the merge
//! rules, the planner and the snapshot helpers):
//!
//! 1. by [`VariantKey`]: the case-folded SKU when both have one, the option tuple when neither
//!    has one;
//! 2. the variants still unmatched on both sides, by option tuple, when *at most one* of the
//!    two has a SKU. A platform that does not store SKUs (or a variant whose SKU was never
//!    filled in) still lines up with the canonical variant that has one, instead of being a
//!    removal plus an addition on every comparison. Two variants with *different* SKUs are
//!    never the same variant: a SKU is the merchant's own identity for it.
//!
//! Several candidates in pass 2 pair up in key order (first unmatched old with first
//! unmatched new of the same options). Images are matched by content hash, never by URL.
//! Changing a variant's SKU to another SKU is therefore a removal plus an addition; adding or
//! removing the SKU of a variant whose options stay is a change of that variant.
//!
//! **Locators are not content.** The `external_id` of variants and images, and an image's `src`
//! and `hash_source`, say *where* content lives on one platform; the content hash skips them
//! and they never make a diff non-empty or name a [`Field`]. A diff still carries the new
//! locators of matched variants and images ([`ProductDiff::locators`]) so that
//! `apply_product_diff(a, &diff_products(a, b)) == b` holds exactly; added and removed
//! variants and images carry their locators inside them.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{
    Barcode, Buyer, ContentHash, Currency, ExternalId, Field, FieldSet, Image, ImageHashSource,
    OrderLine, OrderStatus, PaymentStatus, Product, ProductStatus, SalesOrder, Shipment, Sku,
    Timestamp, Variant,
};
use crate::normalize::{sku_key, sku_key_chars};

/// How variants are matched across two versions of a product.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "by", content = "key", rename_all = "snake_case")]
pub enum VariantKey {
    /// [`sku_key`] of the variant's SKU.
    Sku(String),
    /// The (name, value) pairs, in name order; empty for a product's only variant.
    Options(Vec<(String, String)>),
}

impl fmt::Display for VariantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VariantKey::Sku(key) => write!(f, "sku:{key}"),
            VariantKey::Options(options) => {
                f.write_str("options:")?;
                for (index, (name, value)) in options.iter().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={value}")?;
                }
                Ok(())
            }
        }
    }
}

pub fn variant_key(variant: &Variant) -> VariantKey {
    match &variant.sku {
        Some(sku) => VariantKey::Sku(sku_key(sku)),
        None => VariantKey::Options(
            variant
                .options
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        ),
    }
}

/// Orders two variants exactly as their [`VariantKey`]s order, without allocating.
pub fn cmp_variant_keys(a: &Variant, b: &Variant) -> Ordering {
    match (&a.sku, &b.sku) {
        (Some(x), Some(y)) => cmp_sku_keys(x.as_str(), y.as_str()),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.options.iter().cmp(b.options.iter()),
    }
}

/// `sku_key(a).cmp(&sku_key(b))` without allocating; bytewise for ASCII (the usual case).
fn cmp_sku_keys(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return cmp_ascii_sku_keys(a.as_bytes(), b.as_bytes());
    }
    sku_key_chars(a).cmp(sku_key_chars(b))
}

/// The ASCII case of [`cmp_sku_keys`] as a plain loop: this runs for every adjacent pair of
/// variants on every hash, where an iterator chain was a sixth of the hashing time.
fn cmp_ascii_sku_keys(a: &[u8], b: &[u8]) -> Ordering {
    // The ASCII characters `char::is_whitespace` accepts.
    let skip = |bytes: &[u8], mut at: usize| {
        while at < bytes.len() && matches!(bytes[at], b'\t'..=b'\r' | b' ') {
            at += 1;
        }
        at
    };
    let (mut i, mut j) = (0, 0);
    loop {
        i = skip(a, i);
        j = skip(b, j);
        match (a.get(i), b.get(j)) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
        i += 1;
        j += 1;
    }
}

/// An old and a new value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change<T> {
    pub old: T,
    pub new: T,
}

fn change<T: PartialEq + Clone>(old: &T, new: &T) -> Option<Change<T>> {
    (old != new).then(|| Change {
        old: old.clone(),
        new: new.clone(),
    })
}

fn set<T: Clone>(target: &mut T, change: &Option<Change<T>>) {
    if let Some(change) = change {
        *target = change.new.clone();
    }
}

/// Per-field changes of a variant matched in both versions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VariantFieldChanges {
    /// The spelling (`ab-1` → `AB-1`), or a SKU added or removed on a variant matched by
    /// options (pass 2 of [`match_variants`]); two different SKUs never match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<Change<Option<Sku>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barcode: Option<Change<Option<Barcode>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Change<BTreeMap<String, String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<Change<Option<Decimal>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare_at_price: Option<Change<Option<Decimal>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stock: Option<Change<Option<i64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<Change<Option<Decimal>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_hashes: Option<Change<Vec<ContentHash>>>,
}

impl VariantFieldChanges {
    /// The changes from `old` to `new`, whatever matched them.
    pub fn between(old: &Variant, new: &Variant) -> Self {
        Self {
            sku: change(&old.sku, &new.sku),
            barcode: change(&old.barcode, &new.barcode),
            options: change(&old.options, &new.options),
            price: change(&old.price, &new.price),
            compare_at_price: change(&old.compare_at_price, &new.compare_at_price),
            stock: change(&old.stock, &new.stock),
            weight_grams: change(&old.weight_grams, &new.weight_grams),
            image_hashes: change(&old.image_hashes, &new.image_hashes),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }

    /// The fields these changes touch.
    pub fn fields(&self) -> FieldSet {
        let mut fields = FieldSet::new();
        let pairs = [
            (self.sku.is_some(), Field::Sku),
            (self.barcode.is_some(), Field::Barcode),
            (self.options.is_some(), Field::Variants),
            (self.price.is_some(), Field::Price),
            (self.compare_at_price.is_some(), Field::CompareAtPrice),
            (self.stock.is_some(), Field::Stock),
            (self.weight_grams.is_some(), Field::Weight),
            (self.image_hashes.is_some(), Field::Images),
        ];
        fields.extend(pairs.into_iter().filter(|(on, _)| *on).map(|(_, f)| f));
        fields
    }

    pub fn apply(&self, variant: &mut Variant) {
        set(&mut variant.sku, &self.sku);
        set(&mut variant.barcode, &self.barcode);
        set(&mut variant.options, &self.options);
        set(&mut variant.price, &self.price);
        set(&mut variant.compare_at_price, &self.compare_at_price);
        set(&mut variant.stock, &self.stock);
        set(&mut variant.weight_grams, &self.weight_grams);
        set(&mut variant.image_hashes, &self.image_hashes);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum VariantChange {
    Added {
        variant: Variant,
    },
    Removed {
        key: VariantKey,
        variant: Variant,
    },
    Changed {
        key: VariantKey,
        changes: VariantFieldChanges,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ImageChange {
    Added {
        image: Image,
    },
    /// The old image, with its external id (an image delete needs it).
    Removed {
        image: Image,
    },
    /// Same content, moved or re-described.
    Changed {
        content_hash: ContentHash,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<Change<u32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alt: Option<Change<Option<String>>>,
    },
}

/// The new locators of a variant or image present in both versions (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "of", rename_all = "snake_case")]
pub enum Locator {
    Variant {
        key: VariantKey,
        external_id: Option<ExternalId>,
    },
    Image {
        content_hash: ContentHash,
        external_id: Option<ExternalId>,
        src: String,
        hash_source: ImageHashSource,
    },
}

/// Field-level changes from an old to a new version of a product.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProductDiff {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<Change<Option<Sku>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<Change<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Change<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<Change<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<Change<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<Change<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Change<BTreeSet<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barcode: Option<Change<Option<Barcode>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<Change<Option<Decimal>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Change<ProductStatus>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Change<BTreeMap<String, String>>>,
    /// Every amount is in this currency, so a change counts as a price change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<Change<Currency>>,
    /// In key order (the old key for removed and changed variants, the new one for added).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantChange>,
    /// Added and changed images in new position order, then removed ones in old position order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageChange>,
    /// Not content: never makes the diff non-empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locators: Vec<Locator>,
}

impl ProductDiff {
    /// No content changed (locators may still differ).
    pub fn is_empty(&self) -> bool {
        self.sku.is_none()
            && self.title.is_none()
            && self.description.is_none()
            && self.brand.is_none()
            && self.vendor.is_none()
            && self.category.is_none()
            && self.tags.is_none()
            && self.barcode.is_none()
            && self.weight_grams.is_none()
            && self.status.is_none()
            && self.attributes.is_none()
            && self.currency.is_none()
            && self.variants.is_empty()
            && self.images.is_empty()
    }

    /// The fields this diff touches: variant prices name [`Field::Price`], stocks
    /// [`Field::Stock`], added or removed variants and option changes [`Field::Variants`],
    /// any image change (including a variant's image list) [`Field::Images`].
    pub fn changed_fields(&self) -> FieldSet {
        let mut fields = self.product_fields();
        if !self.images.is_empty() {
            fields.insert(Field::Images);
        }
        for change in &self.variants {
            fields.extend(change.fields());
        }
        fields
    }

    /// The fields touched by product-level changes only (not variants, not images).
    pub fn product_fields(&self) -> FieldSet {
        let pairs = [
            (self.sku.is_some(), Field::Sku),
            (self.title.is_some(), Field::Title),
            (self.description.is_some(), Field::Description),
            (self.brand.is_some(), Field::Brand),
            (self.vendor.is_some(), Field::Vendor),
            (self.category.is_some(), Field::Category),
            (self.tags.is_some(), Field::Tags),
            (self.barcode.is_some(), Field::Barcode),
            (self.weight_grams.is_some(), Field::Weight),
            (self.status.is_some(), Field::Status),
            (self.attributes.is_some(), Field::Attributes),
            (self.currency.is_some(), Field::Price),
            (self.currency.is_some(), Field::CompareAtPrice),
        ];
        pairs
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| f)
            .collect()
    }
}

impl VariantChange {
    /// Added or removed: [`Field::Variants`]; changed: the fields of its changes.
    pub fn fields(&self) -> FieldSet {
        match self {
            VariantChange::Added { .. } | VariantChange::Removed { .. } => [Field::Variants].into(),
            VariantChange::Changed { changes, .. } => changes.fields(),
        }
    }
}

/// The two-pass variant matching of the module docs: pairs of indices into `old` and `new`,
/// `(Some, Some)` for a match, one side `None` for a variant only on that side. Pairs come in
/// key order of pass 1 (the old key for matched and removed variants, the new key for added
/// ones), pass-2 matches taking the place of their old variant.
pub fn match_variants(old: &[Variant], new: &[Variant]) -> Vec<(Option<usize>, Option<usize>)> {
    let old_order = sorted_indices(old);
    let new_order = sorted_indices(new);
    let mut pairs = Vec::with_capacity(old.len().max(new.len()));
    let (mut i, mut j) = (0, 0);
    let (mut old_left, mut new_left) = (0usize, 0usize);
    while i < old_order.len() || j < new_order.len() {
        let order = match (old_order.get(i), new_order.get(j)) {
            (Some(&a), Some(&b)) => cmp_variant_keys(&old[a], &new[b]),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                pairs.push((Some(old_order[i]), None));
                old_left += 1;
                i += 1;
            }
            Ordering::Greater => {
                pairs.push((None, Some(new_order[j])));
                new_left += 1;
                j += 1;
            }
            Ordering::Equal => {
                pairs.push((Some(old_order[i]), Some(new_order[j])));
                i += 1;
                j += 1;
            }
        }
    }
    // Pass 2 only when both sides have leftovers: the unchanged path never pays for it.
    if old_left > 0 && new_left > 0 {
        second_pass(old, new, &mut pairs);
    }
    pairs
}

/// Pass 2 of [`match_variants`]: leftovers with equal options, at most one side with a SKU.
fn second_pass(old: &[Variant], new: &[Variant], pairs: &mut Vec<(Option<usize>, Option<usize>)>) {
    let mut taken = vec![false; pairs.len()];
    for at in 0..pairs.len() {
        let (Some(a), None) = pairs[at] else {
            continue;
        };
        let found = (0..pairs.len()).find(|&k| {
            !taken[k]
                && matches!(pairs[k], (None, Some(b))
                    if !(old[a].sku.is_some() && new[b].sku.is_some())
                        && old[a].options == new[b].options)
        });
        if let Some(k) = found {
            pairs[at].1 = pairs[k].1;
            taken[k] = true;
        }
    }
    let mut index = 0;
    pairs.retain(|_| {
        index += 1;
        !taken[index - 1]
    });
}

fn sorted_indices(variants: &[Variant]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..variants.len()).collect();
    // Already sorted for normalised products; this keeps the engine right for others.
    if !variants.is_sorted_by(|a, b| cmp_variant_keys(a, b) != Ordering::Greater) {
        order.sort_by(|&a, &b| cmp_variant_keys(&variants[a], &variants[b]));
    }
    order
}

/// The index in `variants` of the variant whose [`variant_key`] is `key` (unique in a
/// normalised product).
pub fn find_variant_by_key(variants: &[Variant], key: &VariantKey) -> Option<usize> {
    variants.iter().position(|v| variant_key(v) == *key)
}

/// The variant of `variants` that `probe` matches under the rules of [`match_variants`], for
/// one probe: its key first (pass 1), else the first variant with the same options where at
/// most one of the two has a SKU (pass 2).
pub fn find_variant(variants: &[Variant], probe: &Variant) -> Option<usize> {
    let key = variant_key(probe);
    find_variant_by_key(variants, &key).or_else(|| {
        variants
            .iter()
            .position(|v| !(v.sku.is_some() && probe.sku.is_some()) && v.options == probe.options)
    })
}

fn by_hash(images: &[Image]) -> Vec<&Image> {
    let mut refs: Vec<&Image> = images.iter().collect();
    refs.sort_by_key(|image| image.content_hash);
    refs
}

/// Field-level changes from `old` to `new` (both normalised).
pub fn diff_products(old: &Product, new: &Product) -> ProductDiff {
    let mut diff = ProductDiff {
        sku: change(&old.sku, &new.sku),
        title: change(&old.title, &new.title),
        description: change(&old.description, &new.description),
        brand: change(&old.brand, &new.brand),
        vendor: change(&old.vendor, &new.vendor),
        category: change(&old.category, &new.category),
        tags: change(&old.tags, &new.tags),
        barcode: change(&old.barcode, &new.barcode),
        weight_grams: change(&old.weight_grams, &new.weight_grams),
        status: change(&old.status, &new.status),
        attributes: change(&old.attributes, &new.attributes),
        currency: change(&old.currency, &new.currency),
        ..ProductDiff::default()
    };

    for (a, b) in match_variants(&old.variants, &new.variants) {
        let pair = (
            a.and_then(|a| old.variants.get(a)),
            b.and_then(|b| new.variants.get(b)),
        );
        match pair {
            (Some(a), Some(b)) => {
                let changes = VariantFieldChanges::between(a, b);
                if !changes.is_empty() {
                    diff.variants.push(VariantChange::Changed {
                        key: variant_key(a),
                        changes,
                    });
                }
                if a.external_id != b.external_id {
                    diff.locators.push(Locator::Variant {
                        key: variant_key(a),
                        external_id: b.external_id.clone(),
                    });
                }
            }
            (Some(a), None) => diff.variants.push(VariantChange::Removed {
                key: variant_key(a),
                variant: a.clone(),
            }),
            (None, Some(b)) => diff
                .variants
                .push(VariantChange::Added { variant: b.clone() }),
            (None, None) => {}
        }
    }

    let old_images = by_hash(&old.images);
    let find_old = |hash: ContentHash| {
        old_images
            .binary_search_by_key(&hash, |image| image.content_hash)
            .ok()
            .map(|index| old_images[index])
    };
    let mut new_in_order: Vec<&Image> = new.images.iter().collect();
    new_in_order.sort_by_key(|image| image.position);
    for b in new_in_order {
        match find_old(b.content_hash) {
            None => diff.images.push(ImageChange::Added { image: b.clone() }),
            Some(a) => {
                let position = change(&a.position, &b.position);
                let alt = change(&a.alt, &b.alt);
                if position.is_some() || alt.is_some() {
                    diff.images.push(ImageChange::Changed {
                        content_hash: b.content_hash,
                        position,
                        alt,
                    });
                }
                if a.external_id != b.external_id
                    || a.src != b.src
                    || a.hash_source != b.hash_source
                {
                    diff.locators.push(Locator::Image {
                        content_hash: b.content_hash,
                        external_id: b.external_id.clone(),
                        src: b.src.clone(),
                        hash_source: b.hash_source,
                    });
                }
            }
        }
    }
    let new_images = by_hash(&new.images);
    let mut old_in_order: Vec<&Image> = old.images.iter().collect();
    old_in_order.sort_by_key(|image| image.position);
    for a in old_in_order {
        if new_images
            .binary_search_by_key(&a.content_hash, |image| image.content_hash)
            .is_err()
        {
            diff.images.push(ImageChange::Removed { image: a.clone() });
        }
    }
    diff
}

/// [`diff_products`], but free when the content hashes agree: equal hashes mean equal content,
/// so the diff is empty without walking either record.
pub fn diff_products_hashed(
    old: &Product,
    old_hash: ContentHash,
    new: &Product,
    new_hash: ContentHash,
) -> ProductDiff {
    if old_hash == new_hash {
        return ProductDiff::default();
    }
    diff_products(old, new)
}

/// Applies `diff` to `product`. For normalised `a` and `b`,
/// `apply_product_diff(a, &diff_products(a, b)) == b`. Changes that do not fit `product`
/// (a changed variant it lacks) are skipped rather than invented.
pub fn apply_product_diff(product: &Product, diff: &ProductDiff) -> Product {
    let mut out = product.clone();
    set(&mut out.sku, &diff.sku);
    set(&mut out.title, &diff.title);
    set(&mut out.description, &diff.description);
    set(&mut out.brand, &diff.brand);
    set(&mut out.vendor, &diff.vendor);
    set(&mut out.category, &diff.category);
    set(&mut out.tags, &diff.tags);
    set(&mut out.barcode, &diff.barcode);
    set(&mut out.weight_grams, &diff.weight_grams);
    set(&mut out.status, &diff.status);
    set(&mut out.attributes, &diff.attributes);
    set(&mut out.currency, &diff.currency);

    // Every key is resolved against the variants as they were before any change: a change
    // may add or remove a SKU (a pass-2 match) and with it change the variant's key.
    let slot = |key: &VariantKey| find_variant_by_key(&product.variants, key);
    let mut removed = Vec::new();
    for change in &diff.variants {
        match change {
            VariantChange::Removed { key, .. } => removed.extend(slot(key)),
            VariantChange::Changed { key, changes } => {
                if let Some(index) = slot(key) {
                    changes.apply(&mut out.variants[index]);
                }
            }
            VariantChange::Added { .. } => {}
        }
    }
    for locator in &diff.locators {
        if let Locator::Variant { key, external_id } = locator
            && let Some(index) = slot(key)
        {
            out.variants[index].external_id = external_id.clone();
        }
    }
    removed.sort_unstable();
    removed.dedup();
    for index in removed.into_iter().rev() {
        out.variants.remove(index);
    }
    out.variants
        .extend(diff.variants.iter().filter_map(|change| match change {
            VariantChange::Added { variant } => Some(variant.clone()),
            _ => None,
        }));
    let find_image =
        |images: &[Image], hash: ContentHash| images.iter().position(|i| i.content_hash == hash);
    for change in &diff.images {
        match change {
            ImageChange::Added { image } => out.images.push(image.clone()),
            ImageChange::Removed { image } => {
                if let Some(index) = find_image(&out.images, image.content_hash) {
                    out.images.remove(index);
                }
            }
            ImageChange::Changed {
                content_hash,
                position,
                alt,
            } => {
                if let Some(index) = find_image(&out.images, *content_hash) {
                    set(&mut out.images[index].position, position);
                    set(&mut out.images[index].alt, alt);
                }
            }
        }
    }
    for locator in &diff.locators {
        if let Locator::Image {
            content_hash,
            external_id,
            src,
            hash_source,
        } = locator
            && let Some(index) = find_image(&out.images, *content_hash)
        {
            let image = &mut out.images[index];
            image.external_id = external_id.clone();
            image.src = src.clone();
            image.hash_source = *hash_source;
        }
    }
    out.variants.sort_by(cmp_variant_keys);
    out.images.sort_by_key(|image| image.position);
    out
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

/// Field-level changes of a sales order. Only status, payment status, shipments and note may
/// change after creation; the rest is reported (see [`OrderDiff::immutable_changes`]) so the
/// engine can raise an issue, and carried so that apply reproduces the new order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderDiff {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Change<OrderStatus>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<Change<PaymentStatus>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipments: Option<Change<Vec<Shipment>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<Change<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<Change<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer: Option<Change<Buyer>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Change<Vec<OrderLine>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<Change<Currency>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtotal: Option<Change<Decimal>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_total: Option<Change<Decimal>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_total: Option<Change<Decimal>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Change<Decimal>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placed_at: Option<Change<Timestamp>>,
}

impl OrderDiff {
    pub fn is_empty(&self) -> bool {
        self.changed_fields().is_empty() && self.immutable_changes().is_empty()
    }

    /// The mutable order fields that changed.
    pub fn changed_fields(&self) -> FieldSet {
        let pairs = [
            (self.status.is_some(), Field::OrderStatus),
            (self.payment_status.is_some(), Field::PaymentStatus),
            (self.shipments.is_some(), Field::Shipments),
            (self.note.is_some(), Field::OrderNote),
        ];
        pairs
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| f)
            .collect()
    }

    /// Names of the parts that should never change after creation but did.
    pub fn immutable_changes(&self) -> Vec<&'static str> {
        let pairs = [
            (self.number.is_some(), "number"),
            (self.buyer.is_some(), "buyer"),
            (self.lines.is_some(), "lines"),
            (self.currency.is_some(), "currency"),
            (self.subtotal.is_some(), "subtotal"),
            (self.shipping_total.is_some(), "shipping_total"),
            (self.tax_total.is_some(), "tax_total"),
            (self.total.is_some(), "total"),
            (self.placed_at.is_some(), "placed_at"),
        ];
        pairs
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| name)
            .collect()
    }
}

pub fn diff_orders(old: &SalesOrder, new: &SalesOrder) -> OrderDiff {
    OrderDiff {
        status: change(&old.status, &new.status),
        payment_status: change(&old.payment_status, &new.payment_status),
        shipments: change(&old.shipments, &new.shipments),
        note: change(&old.note, &new.note),
        number: change(&old.number, &new.number),
        buyer: change(&old.buyer, &new.buyer),
        lines: change(&old.lines, &new.lines),
        currency: change(&old.currency, &new.currency),
        subtotal: change(&old.subtotal, &new.subtotal),
        shipping_total: change(&old.shipping_total, &new.shipping_total),
        tax_total: change(&old.tax_total, &new.tax_total),
        total: change(&old.total, &new.total),
        placed_at: change(&old.placed_at, &new.placed_at),
    }
}

pub fn apply_order_diff(order: &SalesOrder, diff: &OrderDiff) -> SalesOrder {
    let mut out = order.clone();
    set(&mut out.status, &diff.status);
    set(&mut out.payment_status, &diff.payment_status);
    set(&mut out.shipments, &diff.shipments);
    set(&mut out.note, &diff.note);
    set(&mut out.number, &diff.number);
    set(&mut out.buyer, &diff.buyer);
    set(&mut out.lines, &diff.lines);
    set(&mut out.currency, &diff.currency);
    set(&mut out.subtotal, &diff.subtotal);
    set(&mut out.shipping_total, &diff.shipping_total);
    set(&mut out.tax_total, &diff.tax_total);
    set(&mut out.total, &diff.total);
    set(&mut out.placed_at, &diff.placed_at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ExternalId;
    use crate::normalize::normalize_product;
    use crate::sample;

    proptest::proptest! {
        /// The allocation-free comparison orders exactly as the keys it stands for.
        #[test]
        fn sku_key_comparison_agrees_with_sku_key(a in "[ a-zA-Z0-9\t-]{0,12}", b in "[ a-zA-Z0-9\t-]{0,12}") {
            let expected = sku_key(&Sku(a.clone())).cmp(&sku_key(&Sku(b.clone())));
            proptest::prop_assert_eq!(cmp_sku_keys(&a, &b), expected);
        }
    }

    #[test]
    fn fields_of_small_changes() {
        type Edit = fn(&mut Product);
        let cases: [(Edit, &[Field]); 8] = [
            (|p| p.title.push('!'), &[Field::Title]),
            (
                |p| p.variants[0].price = Some(Decimal::new(1, 2)),
                &[Field::Price],
            ),
            (|p| p.variants[1].stock = Some(-3), &[Field::Stock]),
            (
                |p| {
                    p.variants.remove(0);
                },
                &[Field::Variants],
            ),
            (
                |p| {
                    p.images.pop();
                },
                &[Field::Images],
            ),
            (
                |p| p.images[0].alt = Some("new alt".into()),
                &[Field::Images],
            ),
            (
                |p| p.variants[0].external_id = Some(ExternalId::new("1")),
                &[],
            ),
            (
                |p| p.images[0].src = "https://moved.example/a.jpg".into(),
                &[],
            ),
        ];
        for (index, (edit, expected)) in cases.into_iter().enumerate() {
            let a = sample::product(8);
            let mut b = a.clone();
            edit(&mut b);
            let d = diff_products(&a, &b);
            assert_eq!(
                d.changed_fields().into_iter().collect::<Vec<_>>(),
                expected,
                "case {index}"
            );
            assert_eq!(d.is_empty(), expected.is_empty(), "case {index}");
            assert_eq!(apply_product_diff(&a, &d), b, "case {index}");
        }
    }

    #[test]
    fn sku_spelling_is_a_change_of_the_same_variant() {
        let a = sample::product(9);
        let mut b = a.clone();
        let sku = b.variants[0].sku.clone().map(|s| Sku(s.0.to_lowercase()));
        b.variants[0].sku = sku;
        let b = normalize_product(b).unwrap_or_else(|e| panic!("{e}"));
        let d = diff_products(&a, &b);
        assert_eq!(d.variants.len(), 1);
        assert!(matches!(&d.variants[0], VariantChange::Changed { .. }));
        assert_eq!(apply_product_diff(&a, &d), b);
    }

    #[test]
    fn equal_hashes_short_circuit() {
        let a = sample::product(1);
        let b = sample::product(2);
        // Deliberately lying hashes: the cheap path must not look at the records.
        assert!(diff_products_hashed(&a, ContentHash(1), &b, ContentHash(1)).is_empty());
        assert!(!diff_products_hashed(&a, ContentHash(1), &b, ContentHash(2)).is_empty());
    }

    #[test]
    fn order_diffs() {
        let a = sample::order(4);
        let mut b = a.clone();
        b.status = OrderStatus::Refunded;
        b.total += Decimal::ONE;
        let d = diff_orders(&a, &b);
        assert_eq!(d.changed_fields(), [Field::OrderStatus].into());
        assert_eq!(d.immutable_changes(), ["total"]);
        assert_eq!(apply_order_diff(&a, &d), b);
        assert!(diff_orders(&a, &a).is_empty());
    }
}
