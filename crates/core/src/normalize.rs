//! Canonical form of products and orders (DESIGN §3–§4, "post-analysis").
//!
//! Every record is normalised before it is hashed, diffed, stored as a snapshot or absorbed, so
//! that two spellings of the same content compare equal. The rules, all idempotent
//! (`normalize(normalize(x)) == normalize(x)`, a property test):
//!
//! * **Text** is Unicode NFC. Control characters other than whitespace are removed.
//!   Single-line text (title, brand, vendor, category, tags, option names and values, attribute
//!   names and values, image alt, order number, buyer fields, line titles, carriers, tracking
//!   numbers, notes) has every whitespace run collapsed to one ASCII space and is trimmed; an
//!   empty result becomes `None` or is dropped from its set/map. Whitespace is collapsed
//!   *before* NFC so that NFC is the last step and cannot be undone by the next pass.
//! * **HTML descriptions** ([`normalize_html`]): CRLF/CR become LF; outside `<pre>` every
//!   whitespace run becomes one space; whitespace next to a *block-level* tag (`p`, `div`,
//!   `li`, `br`, `h1`…, `table`…) or at either end is removed, because a browser ignores it;
//!   whitespace next to an *inline* tag (`b`, `a`, `span`…) is significant and kept as one
//!   space; inside a tag, whitespace runs become one space and a space before `>` or `/>` is
//!   removed; the content of `<pre>` is kept byte for byte. A `<` not followed by a letter, `/`
//!   or `!` is text, and so is everything from a `<` that no `>` follows (found in one scan,
//!   so hostile input stays linear).
//! * **Money** is rounded half away from zero to the currency's minor units and given exactly
//!   that scale (`10` → `10.00` in USD, `1200` in JPY) so that hashes do not depend on how a
//!   platform spelled the number. Prices, compare-at prices and weights may not be negative
//!   ([`NormalizeError::NegativeAmount`]); order amounts may (refunds, discounts).
//! * **Weight** is grams with [`WEIGHT_SCALE`] decimals.
//! * **SKU**: NFC, trimmed, internal whitespace runs collapsed to one space; the case is kept
//!   because a merchant's SKU is theirs and some platforms are case-sensitive. Matching uses
//!   [`sku_key`] (case-folded, whitespace removed), so `ab-1`, `AB-1` and `AB -1` match.
//! * **Barcode** ([`normalize_barcode`]): spaces, hyphens and a leading apostrophe (Excel's
//!   text marker) are removed. A number Excel printed as a float keeps its integer part
//!   (`7891234567890.0` → `7891234567890`). A number in scientific notation
//!   (`3.65275E+11`) has lost digits and is not a barcode: it is *dropped* (`None`) and
//!   reported as a [`NormalizeWarning`], because storing it would propagate garbage and
//!   rejecting the whole record would block its stock and price updates. Anything else that is
//!   not all digits (an internal code such as `ABC-123`) is kept, as text, with whitespace
//!   removed.
//! * **Options**: names are lower-cased (`Color` → `color`) so `color` and `size` are the
//!   canonical names; values keep their case.
//! * **Variants** are sorted by their match key ([`crate::diff::variant_key`]). Of two variants
//!   with the same key (Shopify allows duplicate SKUs) the first in the platform's order is
//!   kept and the later one *dropped* and reported ([`NormalizeWarning::DroppedDuplicateVariant`]):
//!   the diff engine could not tell them apart, and rejecting the record would block every
//!   stock and price update of the product. Likewise a second spelling of an option name on
//!   one variant, or of an attribute name, is dropped with a warning. Variant image hashes
//!   are sorted and de-duplicated.
//! * **Images** are ordered by position, de-duplicated by content hash (the first position
//!   wins) and renumbered `0..n`.
//!
//! [`SCHEMA_VERSION`] names this rule set; snapshots record it and [`upgrade`] brings older
//! ones up to date.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::{Decimal, RoundingStrategy};
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

use crate::diff::{cmp_variant_keys, variant_key};
use crate::model::{
    Barcode, Buyer, ExternalId, Image, OrderLine, Product, RecordContent, SalesOrder, Shipment,
    Sku, Variant,
};

/// The version of the normalisation rules above. Bump it whenever a rule changes so that the
/// integrity-fix job re-normalises stored snapshots.
pub const SCHEMA_VERSION: u32 = 1;

/// Decimal places of a normalised weight in grams.
pub const WEIGHT_SCALE: u32 = 3;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NormalizeError {
    #[error("{field} is {value}, which cannot be held with {scale} decimal places")]
    AmountOutOfRange {
        field: String,
        value: Decimal,
        scale: u32,
    },
    #[error("{field} is negative ({value}); it must be zero or more")]
    NegativeAmount { field: String, value: Decimal },
    /// No longer returned: duplicates are dropped with a [`NormalizeWarning`]. Kept so that
    /// code matching on it still compiles.
    #[error("two variants share the match key {key}; variants must differ by SKU or options")]
    DuplicateVariant { key: String },
    /// No longer returned (see [`NormalizeError::DuplicateVariant`]).
    #[error("option name {name:?} appears twice on variant {variant} once normalised")]
    DuplicateOptionName { variant: String, name: String },
    /// No longer returned (see [`NormalizeError::DuplicateVariant`]).
    #[error("attribute name {name:?} appears twice once normalised")]
    DuplicateAttribute { name: String },
    #[error(
        "snapshot schema version {found} is newer than this build's {current}; upgrade tidemark"
    )]
    UnsupportedSchemaVersion { found: u32, current: u32 },
}

/// Something normalisation removed that a merchant may want to hear about (an issue of
/// severity notice), without rejecting the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeWarning {
    /// A barcode in scientific notation (Excel damage), dropped. `sku` names the variant, or
    /// is `None` for the product-level barcode.
    #[error("barcode {value:?} {} looks mangled by a spreadsheet (scientific notation) and was left out", match .sku { Some(s) => format!("of variant {}", s.as_str()), None => "of the product".to_owned() })]
    DroppedBarcode { sku: Option<Sku>, value: String },
    /// A second variant with the same match key (Shopify allows duplicate SKUs), dropped:
    /// the first in the platform's order is kept. `external_id` is the dropped variant's.
    #[error("a second variant with the key {key:?}{} was left out (the first is kept)", match .external_id { Some(id) => format!(" (platform id {id})"), None => String::new() })]
    DroppedDuplicateVariant {
        key: String,
        external_id: Option<ExternalId>,
    },
    /// A second spelling of one option name on a variant (`Color` and `color`), dropped with
    /// its value; the first in name order is kept.
    #[error(
        "variant {variant}: a second spelling of option {name:?} (value {value:?}) was left out"
    )]
    DroppedDuplicateOption {
        variant: String,
        name: String,
        value: String,
    },
    /// A second spelling of one attribute name, dropped with its value.
    #[error("a second spelling of attribute {name:?} (value {value:?}) was left out")]
    DroppedDuplicateAttribute { name: String, value: String },
}

/// Normalises a product (see the module docs).
pub fn normalize_product(product: Product) -> Result<Product, NormalizeError> {
    normalize_product_with_warnings(product).map(|(product, _)| product)
}

/// [`normalize_product`], also returning what was dropped.
pub fn normalize_product_with_warnings(
    product: Product,
) -> Result<(Product, Vec<NormalizeWarning>), NormalizeError> {
    let mut warnings = Vec::new();
    let Product {
        sku,
        title,
        description,
        brand,
        vendor,
        category,
        tags,
        barcode,
        weight_grams,
        status,
        attributes,
        currency,
        images,
        variants,
    } = product;
    let minor = currency.minor_units();

    let barcode = barcode.and_then(|b| barcode_or_warn(b, None, &mut warnings));
    let mut variants = variants
        .into_iter()
        .map(|v| normalize_variant(v, minor, &mut warnings))
        .collect::<Result<Vec<_>, _>>()?;
    // Stable: variants sharing a key keep the platform's order, so the first one is kept.
    variants.sort_by(cmp_variant_keys);
    variants.dedup_by(|later, first| {
        let duplicate = cmp_variant_keys(first, later).is_eq();
        if duplicate {
            warnings.push(NormalizeWarning::DroppedDuplicateVariant {
                key: variant_key(first).to_string(),
                external_id: later.external_id.clone(),
            });
        }
        duplicate
    });

    let product = Product {
        sku: sku.and_then(normalize_sku),
        title: single_line(&title),
        description: normalize_html(&description),
        brand: opt_single_line(brand),
        vendor: opt_single_line(vendor),
        category: opt_single_line(category),
        tags: tags
            .iter()
            .filter_map(|t| non_empty(single_line(t)))
            .collect(),
        barcode,
        weight_grams: weight_grams
            .map(|w| non_negative_amount(w, WEIGHT_SCALE, || "weight_grams".to_owned()))
            .transpose()?,
        status,
        attributes: normalize_attributes(attributes, &mut warnings),
        currency,
        images: normalize_images(images),
        variants,
    };
    Ok((product, warnings))
}

/// Normalises a sales order (see the module docs). Lines keep their order: it is the order the
/// buyer sees. Shipments keep theirs: it is creation order.
pub fn normalize_order(order: SalesOrder) -> Result<SalesOrder, NormalizeError> {
    let minor = order.currency.minor_units();
    let lines = order
        .lines
        .into_iter()
        .enumerate()
        .map(|(index, line)| {
            Ok(OrderLine {
                sku: line.sku.and_then(normalize_sku),
                title: single_line(&line.title),
                quantity: line.quantity,
                unit_price: amount(line.unit_price, minor, || {
                    format!("lines[{index}].unit_price")
                })?,
            })
        })
        .collect::<Result<Vec<_>, NormalizeError>>()?;
    Ok(SalesOrder {
        number: single_line(&order.number),
        buyer: Buyer {
            name: single_line(&order.buyer.name),
            // Email addresses are matched case-insensitively by every platform we talk to.
            email: opt_single_line(order.buyer.email).map(|e| e.to_lowercase()),
            phone: opt_single_line(order.buyer.phone),
            address: order
                .buyer
                .address
                .iter()
                .filter_map(|line| non_empty(single_line(line)))
                .collect(),
        },
        lines,
        currency: order.currency,
        subtotal: amount(order.subtotal, minor, || "subtotal".to_owned())?,
        shipping_total: amount(order.shipping_total, minor, || "shipping_total".to_owned())?,
        tax_total: amount(order.tax_total, minor, || "tax_total".to_owned())?,
        total: amount(order.total, minor, || "total".to_owned())?,
        status: order.status,
        payment_status: order.payment_status,
        shipments: order
            .shipments
            .into_iter()
            .map(|s| Shipment {
                carrier: opt_single_line(s.carrier),
                tracking_number: opt_single_line(s.tracking_number),
                status: s.status,
            })
            .collect(),
        note: opt_single_line(order.note),
        placed_at: order.placed_at,
    })
}

pub fn normalize_record(content: RecordContent) -> Result<RecordContent, NormalizeError> {
    match content {
        RecordContent::Product(p) => normalize_product(p).map(RecordContent::Product),
        RecordContent::Order(o) => normalize_order(o).map(RecordContent::Order),
    }
}

/// Brings content stored under schema `from_version` to [`SCHEMA_VERSION`]. Version 1 is the
/// first, so today this is re-normalisation; later versions add their migrations here.
pub fn upgrade(content: RecordContent, from_version: u32) -> Result<RecordContent, NormalizeError> {
    if from_version > SCHEMA_VERSION {
        return Err(NormalizeError::UnsupportedSchemaVersion {
            found: from_version,
            current: SCHEMA_VERSION,
        });
    }
    normalize_record(content)
}

/// The key SKUs are matched by: case-folded, whitespace removed. Never stored as the SKU.
pub fn sku_key(sku: &Sku) -> String {
    sku_key_chars(sku.as_str()).collect()
}

/// The characters of [`sku_key`], for comparisons that must not allocate.
pub(crate) fn sku_key_chars(sku: &str) -> impl Iterator<Item = char> + '_ {
    sku.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
}

/// A normalised SKU, or `None` when nothing is left.
pub fn normalize_sku(sku: Sku) -> Option<Sku> {
    non_empty(single_line(&sku.0)).map(Sku)
}

/// What a barcode normalises to (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BarcodeOutcome {
    Kept(Barcode),
    /// Nothing was there.
    Empty,
    /// Scientific notation: digits were lost, so it is not a barcode any more.
    Dropped,
}

pub fn normalize_barcode(raw: &str) -> BarcodeOutcome {
    let text: String = raw.nfc().filter(|c| !c.is_whitespace()).collect();
    let text = text.strip_prefix('\'').unwrap_or(&text);
    let compact: String = text.chars().filter(|&c| c != '-').collect();
    if compact.is_empty() {
        return BarcodeOutcome::Empty;
    }
    if compact.bytes().all(|b| b.is_ascii_digit()) {
        return BarcodeOutcome::Kept(Barcode(compact));
    }
    if is_scientific(&compact) {
        return BarcodeOutcome::Dropped;
    }
    if let Some((int, frac)) = compact.split_once('.')
        && !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b == b'0')
    {
        return BarcodeOutcome::Kept(Barcode(int.to_owned()));
    }
    // Not a GTIN: an internal code. Keep its hyphens, they may be part of it.
    BarcodeOutcome::Kept(Barcode(text.to_owned()))
}

/// `3.65275E+11`, `3E11`, `3.6e+011`.
fn is_scientific(text: &str) -> bool {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    !int.is_empty()
        && !exponent.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && exponent.bytes().all(|b| b.is_ascii_digit())
}

fn barcode_or_warn(
    barcode: Barcode,
    sku: Option<&Sku>,
    warnings: &mut Vec<NormalizeWarning>,
) -> Option<Barcode> {
    match normalize_barcode(&barcode.0) {
        BarcodeOutcome::Kept(b) => Some(b),
        BarcodeOutcome::Empty => None,
        BarcodeOutcome::Dropped => {
            warnings.push(NormalizeWarning::DroppedBarcode {
                sku: sku.cloned(),
                value: barcode.0,
            });
            None
        }
    }
}

fn normalize_variant(
    variant: Variant,
    minor: u32,
    warnings: &mut Vec<NormalizeWarning>,
) -> Result<Variant, NormalizeError> {
    let sku = variant.sku.and_then(normalize_sku);
    let label = sku
        .as_ref()
        .map_or_else(|| "(no sku)".to_owned(), Sku::to_string);
    let path = |field: &str| format!("variants[{label}].{field}");
    let mut options = BTreeMap::new();
    for (name, value) in &variant.options {
        let (Some(name), Some(value)) =
            (non_empty(option_name(name)), non_empty(single_line(value)))
        else {
            continue;
        };
        // `variant.options` is a map, so a second spelling of one name (`Color`, `color `)
        // comes later in name order: the first spelling wins, the rest are reported.
        if options.contains_key(&name) {
            warnings.push(NormalizeWarning::DroppedDuplicateOption {
                variant: label.clone(),
                name,
                value,
            });
            continue;
        }
        options.insert(name, value);
    }
    let mut image_hashes = variant.image_hashes;
    image_hashes.sort_unstable();
    image_hashes.dedup();
    Ok(Variant {
        external_id: variant.external_id,
        barcode: variant
            .barcode
            .and_then(|b| barcode_or_warn(b, sku.as_ref(), warnings)),
        options,
        price: variant
            .price
            .map(|p| non_negative_amount(p, minor, || path("price")))
            .transpose()?,
        compare_at_price: variant
            .compare_at_price
            .map(|p| non_negative_amount(p, minor, || path("compare_at_price")))
            .transpose()?,
        stock: variant.stock,
        weight_grams: variant
            .weight_grams
            .map(|w| non_negative_amount(w, WEIGHT_SCALE, || path("weight_grams")))
            .transpose()?,
        image_hashes,
        sku,
    })
}

/// Option names are lower-cased so that `Color`, `COLOR` and `color` are one option.
pub fn option_name(name: &str) -> String {
    single_line(&name.to_lowercase())
}

fn normalize_attributes(
    attributes: BTreeMap<String, String>,
    warnings: &mut Vec<NormalizeWarning>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in &attributes {
        let (Some(name), Some(value)) =
            (non_empty(single_line(name)), non_empty(single_line(value)))
        else {
            continue;
        };
        if out.contains_key(&name) {
            warnings.push(NormalizeWarning::DroppedDuplicateAttribute { name, value });
            continue;
        }
        out.insert(name, value);
    }
    out
}

fn normalize_images(mut images: Vec<Image>) -> Vec<Image> {
    // Stable: images sharing a position keep the platform's order.
    images.sort_by_key(|image| image.position);
    let mut seen = BTreeSet::new();
    images.retain(|image| seen.insert(image.content_hash));
    for (position, image) in (0u32..).zip(images.iter_mut()) {
        image.position = position;
        image.src = image.src.trim().to_owned();
        image.alt = opt_single_line(image.alt.take());
    }
    images
}

/// Rounds half away from zero to `scale` decimals and pins the scale, so equal amounts have
/// equal bytes. Negative zero becomes zero.
pub fn amount(
    value: Decimal,
    scale: u32,
    field: impl FnOnce() -> String,
) -> Result<Decimal, NormalizeError> {
    let mut rounded = value.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(scale);
    if rounded.scale() != scale {
        return Err(NormalizeError::AmountOutOfRange {
            field: field(),
            value,
            scale,
        });
    }
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    Ok(rounded)
}

fn non_negative_amount(
    value: Decimal,
    scale: u32,
    field: impl Fn() -> String,
) -> Result<Decimal, NormalizeError> {
    let rounded = amount(value, scale, &field)?;
    if rounded.is_sign_negative() {
        return Err(NormalizeError::NegativeAmount {
            field: field(),
            value,
        });
    }
    Ok(rounded)
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn opt_single_line(text: Option<String>) -> Option<String> {
    text.and_then(|t| non_empty(single_line(&t)))
}

/// Whitespace runs → one space, trimmed, other control characters removed, then NFC.
pub fn single_line(text: &str) -> String {
    let mut collapsed = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !collapsed.is_empty();
        } else if !c.is_control() {
            if pending_space {
                collapsed.push(' ');
                pending_space = false;
            }
            collapsed.push(c);
        }
    }
    if collapsed.is_ascii() {
        return collapsed;
    }
    collapsed.nfc().collect()
}

/// Tags whose surrounding whitespace a browser ignores.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

enum Token<'a> {
    Text(&'a str),
    Tag {
        raw: &'a str,
        name: String,
        closing: bool,
    },
}

/// Splits HTML into text and tags. Deliberately forgiving: anything that is not a well-formed
/// tag start (`<` + letter, `/` or `!`, up to a `>`) is text.
fn tokenize(html: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let bytes = html.as_bytes();
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_tag = bytes[i] == b'<'
            && bytes
                .get(i + 1)
                .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'/' || b == b'!');
        let end = if starts_tag {
            html[i..].find('>').map(|offset| i + offset + 1)
        } else {
            None
        };
        let Some(end) = end else {
            if starts_tag {
                // No `>` anywhere after this `<`, so no later `<` can close a tag either:
                // the rest is text. Scanning on would make `<a<a<a…` quadratic.
                break;
            }
            i += 1;
            continue;
        };
        if text_start < i {
            tokens.push(Token::Text(&html[text_start..i]));
        }
        let raw = &html[i..end];
        let closing = raw.starts_with("</");
        let name: String = raw[if closing { 2 } else { 1 }..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        tokens.push(Token::Tag { raw, name, closing });
        i = end;
        text_start = end;
    }
    if text_start < html.len() {
        tokens.push(Token::Text(&html[text_start..]));
    }
    tokens
}

/// Normalises an HTML description (rules in the module docs).
pub fn normalize_html(html: &str) -> String {
    let mut current = html_pass(html);
    // Removing whitespace or a control character can put a combining mark next to `>` and
    // NFC then composes them (`>` + U+0338 is `≯`), changing the tokens; repeat until stable
    // so that normalising twice is a no-op. ASCII has no combining marks.
    for _ in 0..4 {
        if current.is_ascii() {
            break;
        }
        let next = html_pass(&current);
        if next == current {
            break;
        }
        current = next;
    }
    current
}

fn html_pass(html: &str) -> String {
    let unified;
    let html = if html.contains('\r') {
        unified = html.replace("\r\n", "\n").replace('\r', "\n");
        unified.as_str()
    } else {
        html
    };
    let tokens = tokenize(html);
    let is_block = |token: Option<&Token<'_>>| match token {
        None => true,
        Some(Token::Tag { name, .. }) => name.is_empty() || BLOCK_TAGS.contains(&name.as_str()),
        Some(Token::Text(_)) => false,
    };
    let mut out = String::with_capacity(html.len());
    let mut pre_depth = 0usize;
    for (index, token) in tokens.iter().enumerate() {
        match token {
            Token::Tag { raw, name, closing } => {
                out.push_str(&normalize_tag(raw));
                if name == "pre" {
                    if *closing {
                        pre_depth = pre_depth.saturating_sub(1);
                    } else {
                        pre_depth += 1;
                    }
                }
            }
            Token::Text(text) if pre_depth > 0 => {
                out.extend(
                    text.chars()
                        .filter(|c| !c.is_control() || c.is_whitespace()),
                );
            }
            Token::Text(text) => {
                let before_block = is_block(index.checked_sub(1).and_then(|i| tokens.get(i)));
                let after_block = is_block(tokens.get(index + 1));
                let mut collapsed = collapse_whitespace(text);
                if after_block && collapsed.ends_with(' ') {
                    collapsed.pop();
                }
                let start = usize::from(before_block && collapsed.starts_with(' '));
                out.push_str(&collapsed[start..]);
            }
        }
    }
    if out.is_ascii() {
        return out;
    }
    out.nfc().collect()
}

/// Inside a tag: whitespace runs → one space; none before the closing `>` or `/>`.
fn normalize_tag(raw: &str) -> String {
    let mut tag = collapse_whitespace(raw);
    if tag.ends_with(" >") {
        tag.replace_range(tag.len() - 2.., ">");
    }
    if tag.ends_with(" />") {
        tag.replace_range(tag.len() - 3.., "/>");
    }
    tag
}

/// Whitespace runs → one space (kept at the ends); control characters removed.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else if !c.is_control() {
            out.push(c);
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContentHash, Currency, ExternalId, ImageHashSource};
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap_or_default()
    }

    #[test]
    fn single_line_text() {
        let cases = [
            ("  Red \t\n  Shirt ", "Red Shirt"),
            ("Cafe\u{301}", "Café"),
            ("a\u{0}b\u{7f}c", "abc"),
            ("\u{a0}nbsp\u{2003}em\u{3000}", "nbsp em"),
            ("   ", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(single_line(input), expected, "{input:?}");
        }
    }

    #[test]
    fn html_whitespace() {
        let cases = [
            (
                "  <p>  Hello   world </p>\n\n<p>x</p> ",
                "<p>Hello world</p><p>x</p>",
            ),
            ("<p>a <b>bold</b> move</p>", "<p>a <b>bold</b> move</p>"),
            (
                "<ul>\n  <li> one </li>\n  <li>two</li>\n</ul>",
                "<ul><li>one</li><li>two</li></ul>",
            ),
            (
                "<pre>  keep\n   this </pre>  <p> x </p>",
                "<pre>  keep\n   this </pre><p>x</p>",
            ),
            (
                "<p\n class=\"a\"   >x<br / ></p>",
                "<p class=\"a\">x<br/></p>",
            ),
            ("5 < 6 and 7 >  2", "5 < 6 and 7 > 2"),
            ("line\r\nbreak", "line break"),
            ("<p>unterminated <b", "<p>unterminated <b"),
            ("<!-- note -->  <p>x</p>", "<!-- note --><p>x</p>"),
        ];
        for (input, expected) in cases {
            let once = normalize_html(input);
            assert_eq!(once, expected, "{input:?}");
            assert_eq!(normalize_html(&once), once, "idempotent on {input:?}");
        }
    }

    #[test]
    fn hostile_html_without_closing_brackets_is_linear() {
        // 1 MB of tag starts that never close: each used to scan to the end of the input.
        let hostile = "<a".repeat(512 * 1024);
        assert_eq!(normalize_html(&hostile), hostile);
        let mixed = format!("<p>x</p>{}", "<b <i ".repeat(150_000));
        assert!(normalize_html(&mixed).starts_with("<p>x</p><b <i"));
    }

    #[test]
    fn html_combining_mark_after_tag_is_stable() {
        let input = "<p> \u{338}x</p>";
        let once = normalize_html(input);
        assert_eq!(normalize_html(&once), once);
    }

    #[test]
    fn barcodes() {
        let kept = |s: &str| BarcodeOutcome::Kept(Barcode(s.to_owned()));
        let cases = [
            ("'3212483", kept("3212483")),
            (" 789-1234 567890 ", kept("7891234567890")),
            ("7891234567890.0", kept("7891234567890")),
            ("3.65275E+11", BarcodeOutcome::Dropped),
            ("3e11", BarcodeOutcome::Dropped),
            ("ABC-123", kept("ABC-123")),
            ("  ", BarcodeOutcome::Empty),
            ("'", BarcodeOutcome::Empty),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_barcode(input), expected, "{input:?}");
        }
    }

    #[test]
    fn sku_keeps_case_and_keys_fold_it() {
        assert_eq!(
            normalize_sku(Sku("  ab  C-1 ".into())),
            Some(Sku("ab C-1".into()))
        );
        assert_eq!(normalize_sku(Sku(" \t".into())), None);
        assert_eq!(sku_key(&Sku("Ab C-1".into())), "abc-1");
        assert_eq!(sku_key(&Sku("ABC-1".into())), sku_key(&Sku("abc-1".into())));
    }

    #[test]
    fn amounts_take_the_currency_scale() {
        let cases = [
            ("10", 2, "10.00"),
            ("10.005", 2, "10.01"),
            ("-10.005", 2, "-10.01"),
            ("1199.5", 0, "1200"),
            ("0.0004", 3, "0.000"),
            ("-0.001", 2, "0.00"),
        ];
        for (input, scale, expected) in cases {
            let out = amount(dec(input), scale, String::new).unwrap_or_default();
            assert_eq!(out.to_string(), expected, "{input} at {scale}");
        }
        assert!(matches!(
            amount(Decimal::MAX, 2, || "price".into()),
            Err(NormalizeError::AmountOutOfRange { .. })
        ));
    }

    fn variant(sku: Option<&str>, options: &[(&str, &str)]) -> Variant {
        Variant {
            external_id: None,
            sku: sku.map(|s| Sku(s.to_owned())),
            barcode: None,
            options: options
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            price: Some(dec("9.5")),
            compare_at_price: None,
            stock: Some(1),
            weight_grams: None,
            image_hashes: vec![ContentHash(3), ContentHash(1), ContentHash(3)],
        }
    }

    fn image(hash: u128, position: u32) -> Image {
        Image {
            external_id: Some(ExternalId::new(format!("img{hash}"))),
            src: format!(" https://x/{hash}.jpg "),
            content_hash: ContentHash(hash),
            hash_source: ImageHashSource::Url,
            position,
            alt: Some("  ".into()),
        }
    }

    fn product(variants: Vec<Variant>, images: Vec<Image>) -> Product {
        Product {
            sku: None,
            title: " T ".into(),
            description: String::new(),
            brand: Some(String::new()),
            vendor: None,
            category: None,
            tags: [" a ", "", "a"].into_iter().map(String::from).collect(),
            barcode: Some(Barcode("3.6E+11".into())),
            weight_grams: Some(dec("1.23456")),
            status: Default::default(),
            attributes: [(" Material ", "cotton "), ("x", " ")]
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            currency: Currency::USD,
            images,
            variants,
        }
    }

    #[test]
    fn product_structure() {
        let p = product(
            vec![
                variant(None, &[("Size", "M"), ("Color", " Red ")]),
                variant(Some("b-2"), &[]),
                variant(Some("A-1"), &[]),
            ],
            vec![image(7, 5), image(9, 2), image(7, 1)],
        );
        let (n, warnings) = normalize_product_with_warnings(p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.title, "T");
        assert_eq!(n.brand, None);
        assert_eq!(n.tags.iter().collect::<Vec<_>>(), ["a"]);
        assert_eq!(n.barcode, None);
        assert_eq!(warnings.len(), 1);
        assert_eq!(n.weight_grams.map(|w| w.to_string()), Some("1.235".into()));
        assert_eq!(n.attributes.len(), 1);
        assert_eq!(
            n.attributes.get("Material").map(String::as_str),
            Some("cotton")
        );
        let skus: Vec<_> = n
            .variants
            .iter()
            .map(|v| v.sku.clone().map(|s| s.0))
            .collect();
        assert_eq!(skus, [Some("A-1".into()), Some("b-2".into()), None]);
        assert_eq!(
            n.variants[2].options.iter().collect::<Vec<_>>(),
            [
                (&"color".to_owned(), &"Red".to_owned()),
                (&"size".to_owned(), &"M".to_owned())
            ]
        );
        assert_eq!(n.variants[0].image_hashes, [ContentHash(1), ContentHash(3)]);
        assert_eq!(
            n.variants[0].price.map(|p| p.to_string()),
            Some("9.50".into())
        );
        let images: Vec<_> = n
            .images
            .iter()
            .map(|i| (i.content_hash.0, i.position))
            .collect();
        assert_eq!(images, [(7, 0), (9, 1)]);
        assert_eq!(n.images[0].src, "https://x/7.jpg");
        assert_eq!(n.images[0].alt, None);
        assert_eq!(normalize_product(n.clone()), Ok(n));
    }

    #[test]
    fn product_errors() {
        // Duplicates are dropped with a warning, never an error: the first one stays.
        let mut first = variant(Some("ab"), &[]);
        first.external_id = Some(ExternalId::new("1"));
        let mut second = variant(Some("AB"), &[]);
        second.external_id = Some(ExternalId::new("2"));
        second.stock = Some(7);
        let (n, warnings) = normalize_product_with_warnings(product(
            vec![first, second, variant(Some("c"), &[])],
            vec![],
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.variants.len(), 2);
        assert_eq!(n.variants[0].external_id, Some(ExternalId::new("1")));
        assert_eq!(n.variants[0].stock, Some(1));
        assert!(
            warnings.contains(&NormalizeWarning::DroppedDuplicateVariant {
                key: "sku:ab".into(),
                external_id: Some(ExternalId::new("2")),
            })
        );
        assert_eq!(normalize_product(n.clone()), Ok(n), "idempotent");

        let dup = product(
            vec![variant(None, &[("Color", "x"), ("color ", "y")])],
            vec![],
        );
        let (n, warnings) = normalize_product_with_warnings(dup).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            n.variants[0].options.get("color").map(String::as_str),
            Some("x")
        );
        assert!(
            warnings.contains(&NormalizeWarning::DroppedDuplicateOption {
                variant: "(no sku)".into(),
                name: "color".into(),
                value: "y".into(),
            })
        );
        let mut attrs = product(vec![], vec![]);
        attrs.attributes.insert("Material".into(), "wool".into());
        attrs.attributes.insert("Material ".into(), "silk".into());
        let (n, warnings) =
            normalize_product_with_warnings(attrs).unwrap_or_else(|e| panic!("{e}"));
        // ` Material ` (the fixture's, cotton) comes first in name order.
        assert_eq!(
            n.attributes.get("Material").map(String::as_str),
            Some("cotton")
        );
        assert!(
            warnings.contains(&NormalizeWarning::DroppedDuplicateAttribute {
                name: "Material".into(),
                value: "silk".into(),
            })
        );
        let mut negative = variant(Some("n"), &[]);
        negative.price = Some(dec("-1"));
        let err = normalize_product(product(vec![negative], vec![])).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("variants[n].price is negative (-1); it must be zero or more".into())
        );
    }

    #[test]
    fn upgrade_refuses_newer_versions() {
        let content = RecordContent::Order(crate::sample::order(1));
        assert_eq!(
            upgrade(content.clone(), SCHEMA_VERSION),
            Ok(content.clone())
        );
        let err = upgrade(content, SCHEMA_VERSION + 1)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!(
                "snapshot schema version {} is newer than this build's {}; upgrade tidemark",
                SCHEMA_VERSION + 1,
                SCHEMA_VERSION
            ))
        );
    }
}
