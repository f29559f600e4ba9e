//! WooCommerce REST v3 JSON ↔ tidemark's canonical records.
//!
//! Reading is tolerant: a missing or null field reads as absent, never as an error. Prices are
//! strings (`"21.99"`) read into `Decimal`; `regular_price` with a `sale_price` is the
//! compare-at price. Attribute names are kept as the platform spells them (`Color`, `pa_color`):
//! the engine maps them to `color` / `size` by the connection's settings.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use tidemark_connector::ConnectorError;
use tidemark_core::hash::image_hash_url;
use tidemark_core::{
    Barcode, Buyer, Currency, ExternalId, ExternalRecord, Field, FieldSet, Image, ImageHashSource,
    OrderLine, OrderStatus, PaymentStatus, Product, ProductStatus, RecordContent, SalesOrder,
    Shipment, ShipmentStatus, Sku, Timestamp, Variant,
};

/// The meta key of the Shipment Tracking extension, where tracking numbers live.
pub const TRACKING_META_KEY: &str = "_wc_shipment_tracking_items";

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn non_empty(v: &Value, key: &str) -> Option<String> {
    let s = str_of(v, key).trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A price string (or number) as a decimal; empty and unparsable read as absent.
pub fn money(v: &Value, key: &str) -> Option<Decimal> {
    match v.get(key)? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// An id as text (`794`).
pub fn id_of(v: &Value) -> Option<ExternalId> {
    match v.get("id")? {
        Value::Number(n) => Some(ExternalId::new(n.to_string())),
        Value::String(s) if !s.is_empty() => Some(ExternalId::new(s.clone())),
        _ => None,
    }
}

/// `date_modified_gmt` (UTC, no zone) as a timestamp.
pub fn gmt_time(v: &Value, key: &str) -> Option<Timestamp> {
    let text = v.get(key)?.as_str()?;
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    if let Ok(dt) = time::PrimitiveDateTime::parse(text, format) {
        return Some(Timestamp::from_datetime(dt.assume_utc()));
    }
    Timestamp::parse_rfc3339(text).ok()
}

/// `2025-06-01T00:00:00` in UTC, for `modified_after` with `dates_are_gmt=true`.
pub fn gmt_text(at: Timestamp) -> String {
    match at.to_datetime() {
        Some(dt) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        ),
        None => "1970-01-01T00:00:00".to_owned(),
    }
}

pub fn status_from_wc(status: &str) -> ProductStatus {
    match status {
        "draft" | "pending" | "future" | "auto-draft" => ProductStatus::Draft,
        "private" => ProductStatus::Paused,
        "trash" => ProductStatus::Archived,
        _ => ProductStatus::Active,
    }
}

pub fn status_to_wc(status: ProductStatus) -> &'static str {
    match status {
        ProductStatus::Active => "publish",
        ProductStatus::Draft => "draft",
        ProductStatus::Paused | ProductStatus::Archived => "private",
    }
}

/// Price and compare-at price from WooCommerce's regular and sale prices.
fn prices(v: &Value) -> (Option<Decimal>, Option<Decimal>) {
    let regular = money(v, "regular_price");
    match money(v, "sale_price") {
        Some(sale) => (Some(sale), regular.filter(|r| *r != sale)),
        None => (regular.or_else(|| money(v, "price")), None),
    }
}

/// A value the platform holds that tidemark cannot represent (an amount past `Decimal`'s
/// range): an error on that one record, never a panic.
fn out_of_range(what: &str, field: &str) -> ConnectorError {
    ConnectorError::rejected(
        "value_out_of_range",
        format!("{what} is out of the representable range"),
    )
    .with_field(field)
}

/// `"1.25"` kg (the store's default weight unit) as grams.
fn grams(v: &Value) -> Result<Option<Decimal>, ConnectorError> {
    match money(v, "weight") {
        None => Ok(None),
        Some(kg) => kg
            .checked_mul(Decimal::from(1000))
            .map(|g| Some(g.normalize()))
            .ok_or_else(|| {
                let id = id_of(v).map(|i| i.to_string()).unwrap_or_default();
                out_of_range(&format!("weight {kg} kg of {id}"), "weight")
            }),
    }
}

fn stock(v: &Value) -> Option<i64> {
    if v.get("manage_stock").and_then(Value::as_bool) == Some(true) {
        Some(v.get("stock_quantity").and_then(Value::as_i64).unwrap_or(0))
    } else {
        None
    }
}

fn image_of(v: &Value, position: u32) -> Option<Image> {
    let src = non_empty(v, "src")?;
    Some(Image {
        external_id: id_of(v),
        content_hash: image_hash_url(&src),
        src,
        hash_source: ImageHashSource::Url,
        position,
        alt: non_empty(v, "alt"),
    })
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|t| non_empty(t, "name"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
}

/// A product and its variations (for a variable product) as a canonical record.
pub fn product_from_wc(
    product: &Value,
    variations: &[Value],
    currency: Currency,
) -> Result<ExternalRecord, ConnectorError> {
    let external_id =
        id_of(product).ok_or_else(|| ConnectorError::fatal("woocommerce product without an id"))?;
    let mut images: Vec<Image> = product
        .get("images")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(i, img)| image_of(img, i as u32))
                .collect()
        })
        .unwrap_or_default();

    let mut attributes = BTreeMap::new();
    if let Some(list) = product.get("attributes").and_then(Value::as_array) {
        for a in list {
            if a.get("variation").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let options: Vec<&str> = a
                .get("options")
                .and_then(Value::as_array)
                .map(|o| o.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(name) = non_empty(a, "name") {
                attributes.insert(name, options.join(", "));
            }
        }
    }

    let variants = if str_of(product, "type") == "variable" {
        let mut out = Vec::with_capacity(variations.len());
        for v in variations {
            let (price, compare_at_price) = prices(v);
            let mut image_hashes = Vec::new();
            if let Some(img) = v.get("image").filter(|i| i.is_object()) {
                let bound = id_of(img);
                let known = images
                    .iter()
                    .find(|i| bound.is_some() && i.external_id == bound)
                    .map(|i| i.content_hash);
                match known {
                    Some(hash) => image_hashes.push(hash),
                    None => {
                        if let Some(mut extra) = image_of(img, images.len() as u32) {
                            image_hashes.push(extra.content_hash);
                            extra.position = images.len() as u32;
                            images.push(extra);
                        }
                    }
                }
            }
            let options = v
                .get("attributes")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|a| Some((non_empty(a, "name")?, non_empty(a, "option")?)))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Variant {
                external_id: id_of(v),
                sku: non_empty(v, "sku").map(Sku),
                barcode: non_empty(v, "global_unique_id").map(Barcode),
                options,
                price,
                compare_at_price,
                stock: stock(v),
                weight_grams: grams(v)?,
                image_hashes,
            });
        }
        out
    } else {
        let (price, compare_at_price) = prices(product);
        vec![Variant {
            external_id: Some(external_id.clone()),
            sku: non_empty(product, "sku").map(Sku),
            barcode: non_empty(product, "global_unique_id").map(Barcode),
            options: BTreeMap::new(),
            price,
            compare_at_price,
            stock: stock(product),
            weight_grams: grams(product)?,
            image_hashes: Vec::new(),
        }]
    };

    let own_sku = non_empty(product, "sku").filter(|sku| {
        // A SKU tidemark derived for a variable product that had none reads as none.
        !(str_of(product, "type") == "variable" && sku.ends_with(PARENT_SKU_SUFFIX))
    });
    let content = Product {
        sku: own_sku.map(Sku),
        title: str_of(product, "name").to_owned(),
        description: str_of(product, "description").to_owned(),
        brand: names(product, "brands").into_iter().next(),
        vendor: None,
        category: names(product, "categories").into_iter().next(),
        tags: names(product, "tags").into_iter().collect::<BTreeSet<_>>(),
        barcode: None,
        weight_grams: None,
        status: status_from_wc(str_of(product, "status")),
        attributes,
        currency,
        images,
        variants,
    };
    Ok(ExternalRecord {
        external_id,
        updated_at: gmt_time(product, "date_modified_gmt"),
        content: RecordContent::Product(content),
    })
}

pub fn order_status_from_wc(status: &str) -> OrderStatus {
    match status {
        "processing" => OrderStatus::Processing,
        "on-hold" => OrderStatus::OnHold,
        "completed" => OrderStatus::Completed,
        "cancelled" => OrderStatus::Cancelled,
        "refunded" => OrderStatus::Refunded,
        "failed" => OrderStatus::Failed,
        _ => OrderStatus::Pending,
    }
}

pub fn order_status_to_wc(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "pending",
        OrderStatus::Processing => "processing",
        OrderStatus::OnHold => "on-hold",
        OrderStatus::Completed => "completed",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Refunded => "refunded",
        OrderStatus::Failed => "failed",
    }
}

/// An order as a canonical record.
pub fn order_from_wc(order: &Value) -> Result<ExternalRecord, ConnectorError> {
    let external_id =
        id_of(order).ok_or_else(|| ConnectorError::fatal("woocommerce order without an id"))?;
    let billing = order.get("billing").cloned().unwrap_or(Value::Null);
    let name = [
        str_of(&billing, "first_name"),
        str_of(&billing, "last_name"),
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(" ");
    let address: Vec<String> = [
        "address_1",
        "address_2",
        "city",
        "state",
        "postcode",
        "country",
    ]
    .iter()
    .filter_map(|k| non_empty(&billing, k))
    .collect();
    let items: &[Value] = order
        .get("line_items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut lines = Vec::with_capacity(items.len());
    let mut subtotal = Decimal::ZERO;
    for l in items {
        let quantity = l.get("quantity").and_then(Value::as_i64).unwrap_or(0);
        let line_subtotal = money(l, "subtotal");
        let unit_price = match (quantity, line_subtotal) {
            (0, _) | (_, None) => money(l, "price").unwrap_or_default(),
            (q, Some(total)) => total
                .checked_div(Decimal::from(q))
                .map(|d| d.normalize())
                .ok_or_else(|| {
                    out_of_range(&format!("line price of order {external_id}"), "line_items")
                })?,
        };
        if let Some(total) = line_subtotal {
            subtotal = subtotal.checked_add(total).ok_or_else(|| {
                out_of_range(&format!("subtotal of order {external_id}"), "line_items")
            })?;
        }
        lines.push(OrderLine {
            sku: non_empty(l, "sku").map(Sku),
            title: str_of(l, "name").to_owned(),
            quantity,
            unit_price,
        });
    }
    let status = order_status_from_wc(str_of(order, "status"));
    let paid = order.get("date_paid").is_some_and(|d| !d.is_null());
    let payment_status = match status {
        OrderStatus::Refunded => PaymentStatus::Refunded,
        OrderStatus::Cancelled | OrderStatus::Failed if !paid => PaymentStatus::Voided,
        _ if paid => PaymentStatus::Paid,
        _ => PaymentStatus::Pending,
    };
    let shipments = order
        .get("meta_data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| str_of(m, "key") == TRACKING_META_KEY)
        .filter_map(|m| m.get("value").and_then(Value::as_array))
        .flatten()
        .map(|t| Shipment {
            carrier: non_empty(t, "tracking_provider")
                .or_else(|| non_empty(t, "custom_tracking_provider")),
            tracking_number: non_empty(t, "tracking_number"),
            status: if status == OrderStatus::Completed {
                ShipmentStatus::Delivered
            } else {
                ShipmentStatus::Shipped
            },
        })
        .collect();
    let content = SalesOrder {
        number: non_empty(order, "number").unwrap_or_else(|| external_id.to_string()),
        buyer: Buyer {
            name,
            email: non_empty(&billing, "email"),
            phone: non_empty(&billing, "phone"),
            address,
        },
        lines,
        currency: Currency::parse(str_of(order, "currency")).unwrap_or_default(),
        subtotal,
        shipping_total: money(order, "shipping_total").unwrap_or_default(),
        tax_total: money(order, "total_tax").unwrap_or_default(),
        total: money(order, "total").unwrap_or_default(),
        status,
        payment_status,
        shipments,
        note: non_empty(order, "customer_note"),
        placed_at: gmt_time(order, "date_created_gmt").unwrap_or(Timestamp::from_millis(0)),
    };
    Ok(ExternalRecord {
        external_id,
        updated_at: gmt_time(order, "date_modified_gmt"),
        content: RecordContent::Order(content),
    })
}

// ---------------------------------------------------------------------------------------------
// Canonical → WooCommerce
// ---------------------------------------------------------------------------------------------

fn price_fields(out: &mut Map<String, Value>, v: &Variant, fields: Option<&FieldSet>) {
    let wants = |f: Field| fields.is_none_or(|s| s.contains(&f));
    if wants(Field::Price) || wants(Field::CompareAtPrice) {
        let text = |d: Option<Decimal>| d.map(|d| d.normalize().to_string()).unwrap_or_default();
        match v.compare_at_price {
            Some(was) => {
                out.insert("regular_price".into(), json!(text(Some(was))));
                out.insert("sale_price".into(), json!(text(v.price)));
            }
            None => {
                out.insert("regular_price".into(), json!(text(v.price)));
                out.insert("sale_price".into(), json!(""));
            }
        }
    }
    if wants(Field::Weight) {
        let kg = v
            .weight_grams
            .map(|g| (g / Decimal::from(1000)).normalize().to_string())
            .unwrap_or_default();
        out.insert("weight".into(), json!(kg));
    }
    if wants(Field::Barcode) {
        out.insert(
            "global_unique_id".into(),
            json!(v.barcode.as_ref().map(|b| b.0.clone()).unwrap_or_default()),
        );
    }
}

/// The attachment name (title) tidemark gives an image it uploads by `src`: the content hash
/// of its source, so that a later look at the product finds the attachment an earlier (maybe
/// unanswered) request made, and keeps it by id instead of uploading it again.
pub fn image_marker(hash: tidemark_core::ContentHash) -> String {
    format!("tidemark-{}", hash.to_hex())
}

fn new_image(img: &Image) -> Value {
    let mut o = json!({"src": img.src, "name": image_marker(img.content_hash)});
    if let Some(alt) = &img.alt {
        o["alt"] = json!(alt);
    }
    o
}

/// The `images` array: bound images by id (never re-sent by src, which would duplicate the
/// attachment), new ones by src, named by [`image_marker`].
pub fn images_body(product: &Product) -> Value {
    Value::Array(
        product
            .images
            .iter()
            .map(|img| match &img.external_id {
                Some(id) => match id.as_str().parse::<u64>() {
                    Ok(n) => json!({"id": n}),
                    Err(_) => new_image(img),
                },
                None => new_image(img),
            })
            .collect(),
    )
}

/// The last path segment of a URL without its query, extension, WordPress's `-scaled` and
/// `-N` uniquifier: `https://x/uploads/2025/06/front-1.jpg?v=2` → `front`.
fn file_stem(src: &str) -> String {
    let path = src.split(['?', '#']).next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or("");
    let mut stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    stem = stem.strip_suffix("-scaled").unwrap_or(stem);
    if let Some((head, tail)) = stem.rsplit_once('-')
        && !head.is_empty()
        && !tail.is_empty()
        && tail.bytes().all(|b| b.is_ascii_digit())
    {
        stem = head;
    }
    stem.to_ascii_lowercase()
}

/// Gives the images of `product` that have no external id the id of an attachment `existing`
/// (a WooCommerce product answer) already has for them: one named by [`image_marker`] (an
/// upload by tidemark), or else one whose file or name is the source's file. Each attachment
/// is claimed once. Sending those by id keeps an adoption or a repeated update from
/// uploading the same image again (every `src` makes a new attachment).
pub fn bind_existing_images(product: &mut Product, existing: &Value) {
    bind_images(product, existing, true);
}

/// Like [`bind_existing_images`], by [`image_marker`] names only: the attachments an earlier
/// attempt of the same write uploaded.
pub fn bind_uploaded_images(product: &mut Product, existing: &Value) {
    bind_images(product, existing, false);
}

/// Whether a product body uploads an image by `src` (and so must not be repeated blindly).
pub fn uploads_images(body: &Value) -> bool {
    body.get("images")
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|i| i.get("src").is_some()))
}

fn bind_images(product: &mut Product, existing: &Value, by_file: bool) {
    let attachments: Vec<(u64, String, String)> = existing
        .get("images")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|img| {
            let id = img.get("id").and_then(Value::as_u64).filter(|n| *n > 0)?;
            Some((
                id,
                str_of(img, "name").to_owned(),
                str_of(img, "src").to_owned(),
            ))
        })
        .collect();
    let mut claimed: BTreeSet<u64> = product
        .images
        .iter()
        .filter_map(|i| i.external_id.as_ref()?.as_str().parse().ok())
        .collect();
    // Markers first (exact), then file names (looser), so a loose match cannot take an
    // attachment a marker names.
    let passes: &[bool] = if by_file { &[true, false] } else { &[true] };
    for &exact in passes {
        for image in product
            .images
            .iter_mut()
            .filter(|i| i.external_id.is_none())
        {
            let marker = image_marker(image.content_hash);
            let stem = file_stem(&image.src);
            let found = attachments.iter().find(|(id, name, src)| {
                !claimed.contains(id)
                    && if exact {
                        *name == marker
                    } else {
                        !stem.is_empty() && (file_stem(src) == stem || file_stem(name) == stem)
                    }
            });
            if let Some((id, _, _)) = found {
                claimed.insert(*id);
                image.external_id = Some(ExternalId::new(id.to_string()));
            }
        }
    }
}

/// Whether the WooCommerce variation `existing` is the canonical variant `v`: the same SKU, or
/// for a variant without SKU the same attribute options.
pub fn is_variation_of(existing: &Value, v: &Variant) -> bool {
    if let Some(sku) = v.sku.as_ref().filter(|s| !s.0.trim().is_empty()) {
        return str_of(existing, "sku").trim() == sku.0.trim();
    }
    let options: BTreeMap<String, String> = existing
        .get("attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| Some((non_empty(a, "name")?, non_empty(a, "option")?)))
        .collect();
    !options.is_empty() && options == v.options
}

/// Appended to a variant's SKU to make the product-level SKU of a variable product that has
/// none of its own (see [`parent_sku`]).
pub const PARENT_SKU_SUFFIX: &str = "-tm-parent";

/// The product-level SKU a create sends: the product's own; for a simple product its variant's;
/// for a variable product without one, `{first variant SKU}-tm-parent`. WooCommerce's SKUs are
/// unique per shop, so a repeated create of a product that has a SKU is refused with
/// `product_invalid_sku` and the existing product adopted, instead of a second parent being made
/// (variations do not exist yet when the parent is created, so their SKUs cannot protect it).
/// Reading drops a variable product's SKU that ends in [`PARENT_SKU_SUFFIX`]. `None` when no
/// SKU exists anywhere in the product: such a product cannot be deduplicated.
pub fn parent_sku(product: &Product) -> Option<Sku> {
    if let Some(sku) = product.sku.as_ref().filter(|s| !s.0.trim().is_empty()) {
        return Some(sku.clone());
    }
    let first = product
        .variants
        .iter()
        .filter_map(|v| v.sku.as_ref())
        .find(|s| !s.0.trim().is_empty())?;
    if is_simple(product) {
        Some(first.clone())
    } else {
        Some(Sku(format!("{}{PARENT_SKU_SUFFIX}", first.0.trim())))
    }
}

/// Whether the canonical product is a simple product on WooCommerce.
pub fn is_simple(product: &Product) -> bool {
    product.variants.len() <= 1 && product.variants.iter().all(|v| v.options.is_empty())
}

/// `product` as WooCommerce reads it back after storing it (see `Connector::as_stored`):
/// - no archived status: an archived product is stored private, read back as paused;
/// - no product-level barcode or weight (a simple product's are its variant's);
/// - a simple product has one SKU, the product's and its variant's: [`parent_sku`];
/// - a compare-at price equal to the price is none (a sale price equal to the regular one
///   reads as no sale);
/// - an image's alt is trimmed, and an empty one is none (WordPress cleans it);
/// - a variation shows one image at most, and only one of the product's: the first it
///   links, when the product has it (otherwise it is cleared); a simple product has no
///   variations, so its variant links none.
pub fn as_stored(mut product: Product) -> Product {
    if product.status == ProductStatus::Archived {
        product.status = ProductStatus::Paused;
    }
    product.barcode = None;
    product.weight_grams = None;
    let simple = is_simple(&product);
    if simple {
        product.sku = parent_sku(&product);
        for variant in &mut product.variants {
            variant.sku.clone_from(&product.sku);
        }
    }
    for variant in &mut product.variants {
        if variant.compare_at_price.is_some() && variant.compare_at_price == variant.price {
            variant.compare_at_price = None;
        }
    }
    for image in &mut product.images {
        image.alt = image
            .alt
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned);
    }
    for variant in &mut product.variants {
        let shown = variant
            .image_hashes
            .first()
            .filter(|h| !simple && product.images.iter().any(|i| i.content_hash == **h))
            .copied();
        variant.image_hashes = shown.into_iter().collect();
    }
    product
}

/// The product-level body of a create (`fields: None`) or of an update of `fields`. Stock is
/// never written here for an existing product (it moves as a delta).
pub fn product_body(product: &Product, fields: Option<&FieldSet>) -> Value {
    let wants = |f: Field| fields.is_none_or(|s| s.contains(&f));
    let mut out = Map::new();
    let simple = is_simple(product);
    if fields.is_none() {
        out.insert(
            "type".into(),
            json!(if simple { "simple" } else { "variable" }),
        );
    }
    if wants(Field::Title) {
        out.insert("name".into(), json!(product.title));
    }
    if wants(Field::Description) {
        out.insert("description".into(), json!(product.description));
    }
    if wants(Field::Status) {
        out.insert("status".into(), json!(status_to_wc(product.status)));
    }
    if wants(Field::Sku) {
        match parent_sku(product) {
            Some(sku) => {
                out.insert("sku".into(), json!(sku.0));
            }
            // A variable product without any SKU keeps whatever it has (clearing a derived
            // SKU would remove its protection against a repeated create).
            None if !simple && fields.is_some() => {}
            None => {
                out.insert("sku".into(), json!(""));
            }
        }
    }
    if wants(Field::Category) {
        out.insert(
            "categories".into(),
            json!(
                product
                    .category
                    .iter()
                    .map(|c| json!({"name": c}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if wants(Field::Tags) {
        out.insert(
            "tags".into(),
            json!(
                product
                    .tags
                    .iter()
                    .map(|t| json!({"name": t}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if wants(Field::Brand) {
        out.insert(
            "brands".into(),
            json!(
                product
                    .brand
                    .iter()
                    .map(|b| json!({"name": b}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if wants(Field::Attributes) || wants(Field::Variants) {
        let mut attributes: Vec<Value> = product
            .attributes
            .iter()
            .map(|(name, value)| {
                json!({"name": name, "visible": true, "variation": false, "options": [value]})
            })
            .collect();
        let mut options: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for v in &product.variants {
            for (name, value) in &v.options {
                let values = options.entry(name).or_default();
                if !values.contains(&value.as_str()) {
                    values.push(value);
                }
            }
        }
        for (name, values) in options {
            attributes
                .push(json!({"name": name, "visible": true, "variation": true, "options": values}));
        }
        out.insert("attributes".into(), Value::Array(attributes));
    }
    if wants(Field::Images) {
        out.insert("images".into(), images_body(product));
    }
    if simple && let Some(v) = product.variants.first() {
        price_fields(&mut out, v, fields);
        if fields.is_none() {
            out.insert("manage_stock".into(), json!(v.stock.is_some()));
            out.insert("stock_quantity".into(), json!(v.stock));
        }
    }
    Value::Object(out)
}

/// A variation body for a create (`fields: None`, absolute initial stock) or an update. A
/// body that writes images names the variation's image, or clears it when the variant has
/// none (or one the product does not have).
pub fn variation_body(
    product: &Product,
    v: &Variant,
    fields: Option<&FieldSet>,
    image_ids: &BTreeMap<tidemark_core::ContentHash, u64>,
) -> Value {
    let wants = |f: Field| fields.is_none_or(|s| s.contains(&f));
    let mut out = Map::new();
    if wants(Field::Sku) || fields.is_none() {
        out.insert(
            "sku".into(),
            json!(v.sku.as_ref().map(|s| s.0.clone()).unwrap_or_default()),
        );
    }
    price_fields(&mut out, v, fields);
    if fields.is_none() {
        out.insert("manage_stock".into(), json!(v.stock.is_some()));
        out.insert("stock_quantity".into(), json!(v.stock));
    }
    if fields.is_none() || wants(Field::Variants) {
        out.insert(
            "attributes".into(),
            json!(
                v.options
                    .iter()
                    .map(|(n, o)| json!({"name": n, "option": o}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if wants(Field::Images) {
        // Always said when images are written: a variation keeps an image it is not told to
        // drop, which would read back as a change. On a create the clear is a no-op that
        // WooCommerce accepts; sending it there too keeps one rule for both bodies.
        let hash = v.image_hashes.first();
        let image = match hash.and_then(|h| image_ids.get(h)) {
            Some(id) => json!({"id": id}),
            None => hash
                .and_then(|h| product.images.iter().find(|i| i.content_hash == *h))
                .map_or_else(cleared_variation_image, new_image),
        };
        out.insert("image".into(), image);
    }
    Value::Object(out)
}

/// The `image` that clears a variation's image. WooCommerce
/// (`WC_REST_Product_Variations_Controller::set_variation_image`) clears it for an image
/// object naming neither an attachment `id` nor a `src`; `null` is not a clear (PHP's `isset`
/// skips it, and the image stays).
pub fn cleared_variation_image() -> Value {
    json!({})
}

/// The body of an order create; a line whose total is past `Decimal`'s range is refused.
pub fn order_body(order: &SalesOrder) -> Result<Value, ConnectorError> {
    let mut line_items = Vec::with_capacity(order.lines.len());
    for (n, l) in order.lines.iter().enumerate() {
        let total = l
            .unit_price
            .checked_mul(Decimal::from(l.quantity))
            .ok_or_else(|| {
                out_of_range(
                    &format!("line {n} total ({} × {})", l.unit_price, l.quantity),
                    &format!("lines.{n}.unit_price"),
                )
            })?;
        line_items.push(json!({
            "sku": l.sku.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
            "name": l.title, "quantity": l.quantity,
            "total": total.to_string(),
        }));
    }
    let mut names = order.buyer.name.splitn(2, ' ');
    let first = names.next().unwrap_or("");
    let last = names.next().unwrap_or("");
    Ok(json!({
        "status": order_status_to_wc(order.status),
        "currency": order.currency.as_str(),
        "set_paid": order.payment_status == PaymentStatus::Paid,
        "customer_note": order.note.clone().unwrap_or_default(),
        "billing": {
            "first_name": first, "last_name": last,
            "email": order.buyer.email.clone().unwrap_or_default(),
            "phone": order.buyer.phone.clone().unwrap_or_default(),
            "address_1": order.buyer.address.first().cloned().unwrap_or_default(),
            "city": order.buyer.address.get(1).cloned().unwrap_or_default(),
        },
        "line_items": line_items,
        "shipping_lines": [{"method_id": "flat_rate", "method_title": "Shipping",
                            "total": order.shipping_total.to_string()}],
        "meta_data": [{"key": NUMBER_META_KEY, "value": order.number}],
    }))
}

/// The meta key under which an order created by tidemark keeps tidemark's number for it.
pub const NUMBER_META_KEY: &str = "_tidemark_number";

/// Whether a WooCommerce order is the one numbered `number`: its own number (or id), or the
/// number tidemark gave it when creating it.
pub fn order_has_number(order: &Value, number: &str) -> bool {
    let own = match order.get("number") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    if own == number || id_of(order).is_some_and(|id| id.as_str() == number) {
        return true;
    }
    order
        .get("meta_data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|m| {
            str_of(m, "key") == NUMBER_META_KEY
                && m.get("value").and_then(Value::as_str) == Some(number)
        })
}

/// The body of an order update of `fields`.
pub fn order_update_body(order: &SalesOrder, fields: &FieldSet) -> Value {
    let mut out = Map::new();
    if fields.contains(&Field::OrderStatus) {
        out.insert("status".into(), json!(order_status_to_wc(order.status)));
    }
    if fields.contains(&Field::OrderNote) {
        out.insert(
            "customer_note".into(),
            json!(order.note.clone().unwrap_or_default()),
        );
    }
    if fields.contains(&Field::Shipments) {
        let items: Vec<Value> = order
            .shipments
            .iter()
            .map(|s| {
                json!({"tracking_provider": s.carrier.clone().unwrap_or_default(),
                       "tracking_number": s.tracking_number.clone().unwrap_or_default()})
            })
            .collect();
        out.insert(
            "meta_data".into(),
            json!([{"key": TRACKING_META_KEY, "value": items}]),
        );
    }
    Value::Object(out)
}

/// The record field a WooCommerce error code is about, for codes whose answer names none (no
/// `data.params`): an image that could not be downloaded or does not exist (products and
/// variations alike) is `images`; a refused SKU is `sku`.
pub fn field_of_code(code: &str) -> Option<&'static str> {
    const IMAGE_CODES: &[&str] = &[
        "woocommerce_product_image_upload_error",
        "woocommerce_variation_image_upload_error",
        "woocommerce_product_invalid_image_id",
        "woocommerce_variation_invalid_image_id",
        "woocommerce_rest_invalid_remote_image_url",
        "woocommerce_rest_invalid_image_url",
        "woocommerce_rest_invalid_image",
    ];
    if IMAGE_CODES.contains(&code) {
        Some("images")
    } else if code.contains("sku") {
        Some("sku")
    } else {
        None
    }
}

/// Names the field of a `Rejected` that has none by its code ([`field_of_code`]), so the
/// issue raised on the record says which part of it was refused.
pub fn name_field(error: ConnectorError) -> ConnectorError {
    match &error {
        ConnectorError::Rejected {
            code, field: None, ..
        } => match field_of_code(code) {
            Some(field) => error.with_field(field),
            None => error,
        },
        _ => error,
    }
}

/// A per-item batch error (`{"id","error":{code,message,data}}`) as `Rejected`.
pub fn item_error(item: &Value) -> Option<ConnectorError> {
    let error = item.get("error")?;
    let code = non_empty(error, "code").unwrap_or_else(|| "woocommerce_error".to_owned());
    let message = str_of(error, "message").to_owned();
    let field = error
        .get("data")
        .and_then(|d| d.get("params"))
        .and_then(Value::as_object)
        .and_then(|p| p.keys().next().cloned());
    let e = ConnectorError::rejected(code, message).with_payload(item.clone());
    Some(match field {
        Some(field) => e.with_field(field),
        None => name_field(e),
    })
}
