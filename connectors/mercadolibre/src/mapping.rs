//! MercadoLibre JSON ↔ canonical records.
//!
//! Money: MercadoLibre writes prices as JSON numbers (`15000`, `12.5`) and its own SDK examples
//! send numeric strings (`"350"`). Both are read as decimals from the raw JSON text
//! ([`Amount`], through `serde_json`'s `RawValue`), never through `f64`. Prices are sent as
//! numeric strings, which MercadoLibre accepts, so no float rounding happens either way.

use std::collections::BTreeMap;
use std::str::FromStr as _;

use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tidemark_connector::ConnectorError;
use tidemark_core::hash::image_hash_url;
use tidemark_core::{
    Buyer, Currency, ExternalId, ExternalRecord, Image, ImageHashSource, OrderLine, OrderStatus,
    PaymentStatus, Product, ProductStatus, RecordContent, SalesOrder, Shipment, ShipmentStatus,
    Sku, Timestamp, Variant,
};

/// A decimal read from a JSON number or numeric string's own text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub Decimal);

/// Parses a JSON number token (or a quoted numeric string) as a decimal.
pub fn parse_amount(raw: &str) -> Result<Decimal, String> {
    let text = raw.trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
        .trim();
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|e| format!("{text:?} is not a decimal amount: {e}"))
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        parse_amount(raw.get())
            .map(Amount)
            .map_err(D::Error::custom)
    }
}

/// A whole number from a JSON number or a numeric string (`"12"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub i64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        let amount = parse_amount(raw.get()).map_err(D::Error::custom)?;
        if !amount.fract().is_zero() {
            return Err(D::Error::custom(format!("{amount} is not a whole number")));
        }
        i64::try_from(amount)
            .map(Count)
            .map_err(|e| D::Error::custom(e.to_string()))
    }
}

/// An id that MercadoLibre writes as a number (variation and order ids, some above 2^53 in
/// other sellers' accounts) or a string, kept as its exact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdText(pub String);

impl<'de> Deserialize<'de> for IdText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        let text = raw.get().trim();
        Ok(IdText(
            text.strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .unwrap_or(text)
                .to_owned(),
        ))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MlAttribute {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MlPicture {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub secure_url: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

impl MlPicture {
    fn src(&self) -> Option<&str> {
        self.secure_url
            .as_deref()
            .or(self.url.as_deref())
            .or(self.source.as_deref())
            .filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MlVariation {
    #[serde(default)]
    pub id: Option<IdText>,
    #[serde(default)]
    pub price: Option<Amount>,
    #[serde(default)]
    pub available_quantity: Option<Count>,
    #[serde(default)]
    pub attribute_combinations: Vec<MlAttribute>,
    #[serde(default)]
    pub picture_ids: Vec<String>,
    #[serde(default)]
    pub attributes: Vec<MlAttribute>,
    #[serde(default)]
    pub seller_custom_field: Option<String>,
}

/// An item as `GET /items/{id}`, a multiget element's `body` or a `POST /items` body has it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MlItem {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub category_id: Option<String>,
    #[serde(default)]
    pub price: Option<Amount>,
    #[serde(default)]
    pub currency_id: Option<String>,
    #[serde(default)]
    pub available_quantity: Option<Count>,
    #[serde(default)]
    pub sold_quantity: Option<Count>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub last_updated: Option<String>,
    #[serde(default)]
    pub seller_custom_field: Option<String>,
    #[serde(default)]
    pub attributes: Vec<MlAttribute>,
    #[serde(default)]
    pub pictures: Vec<MlPicture>,
    #[serde(default)]
    pub variations: Vec<MlVariation>,
    /// The `plain_text` of `GET /items/{id}/description`, which the item itself does not carry;
    /// the client fills it in before the item becomes a record (`None`: not read, which
    /// [`item_to_record`] refuses rather than report an empty description).
    #[serde(skip)]
    pub description: Option<String>,
}

fn attribute<'a>(list: &'a [MlAttribute], id: &str) -> Option<&'a str> {
    list.iter()
        .find(|a| a.id.as_deref() == Some(id))
        .and_then(|a| a.value_name.as_deref())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// A variation's `SELLER_SKU` (or legacy `seller_custom_field`).
pub fn variation_sku(v: &MlVariation) -> Option<Sku> {
    sku_of(&v.attributes, v.seller_custom_field.as_deref())
}

fn sku_of(attributes: &[MlAttribute], custom: Option<&str>) -> Option<Sku> {
    attribute(attributes, "SELLER_SKU")
        .or(custom.map(str::trim).filter(|c| !c.is_empty()))
        .map(|s| Sku(s.to_owned()))
}

/// The canonical option name of an attribute combination: `COLOR` → `color`, `SIZE` →
/// `size`, otherwise its name (or id) in lower case.
pub fn option_name(combo: &MlAttribute) -> String {
    match combo.id.as_deref() {
        Some("COLOR") => "color".to_owned(),
        Some("SIZE") => "size".to_owned(),
        _ => combo
            .name
            .as_deref()
            .or(combo.id.as_deref())
            .unwrap_or("option")
            .trim()
            .to_lowercase(),
    }
}

pub fn status_from_ml(status: Option<&str>) -> ProductStatus {
    match status {
        Some("active") | None => ProductStatus::Active,
        Some("closed") => ProductStatus::Archived,
        // paused, under_review, inactive, payment_required…
        Some(_) => ProductStatus::Paused,
    }
}

pub fn status_to_ml(status: ProductStatus) -> &'static str {
    match status {
        ProductStatus::Active => "active",
        ProductStatus::Paused | ProductStatus::Draft => "paused",
        ProductStatus::Archived => "closed",
    }
}

fn parse_time(text: Option<&str>) -> Option<Timestamp> {
    text.and_then(|t| Timestamp::parse_rfc3339(t).ok())
}

fn currency(code: Option<&str>) -> Result<Currency, ConnectorError> {
    let code = code.unwrap_or("");
    Currency::parse(code).map_err(|_| {
        ConnectorError::fatal(format!(
            "mercadolibre item has an invalid currency_id {code:?}"
        ))
    })
}

/// An item as a canonical product. An item without variations becomes one variant whose
/// external id is the item's own id (its stock lives on the item).
pub fn item_to_product(item: &MlItem) -> Result<Product, ConnectorError> {
    let images: Vec<Image> = item
        .pictures
        .iter()
        .filter_map(|p| p.src().map(|src| (p, src)))
        .enumerate()
        .map(|(n, (p, src))| Image {
            external_id: p.id.clone().map(ExternalId),
            src: src.to_owned(),
            content_hash: image_hash_url(src),
            hash_source: ImageHashSource::Url,
            position: n as u32,
            alt: None,
        })
        .collect();
    let item_sku = sku_of(&item.attributes, item.seller_custom_field.as_deref());
    let item_price = item.price.map(|a| a.0);
    let variants = if item.variations.is_empty() {
        vec![Variant {
            external_id: item.id.clone().map(ExternalId),
            sku: item_sku.clone(),
            barcode: None,
            options: BTreeMap::new(),
            price: item_price,
            compare_at_price: None,
            stock: item.available_quantity.map(|c| c.0),
            weight_grams: None,
            image_hashes: Vec::new(),
        }]
    } else {
        item.variations
            .iter()
            .map(|v| Variant {
                external_id: v.id.clone().map(|i| ExternalId(i.0)),
                sku: sku_of(&v.attributes, v.seller_custom_field.as_deref()),
                barcode: None,
                options: v
                    .attribute_combinations
                    .iter()
                    .filter_map(|c| {
                        c.value_name
                            .as_deref()
                            .map(|value| (option_name(c), value.trim().to_owned()))
                    })
                    .collect(),
                price: v.price.map(|a| a.0).or(item_price),
                compare_at_price: None,
                stock: v.available_quantity.map(|c| c.0),
                weight_grams: None,
                image_hashes: v
                    .picture_ids
                    .iter()
                    .filter_map(|pid| {
                        images
                            .iter()
                            .find(|i| i.external_id.as_ref().is_some_and(|e| e.0 == *pid))
                            .map(|i| i.content_hash)
                    })
                    .collect(),
            })
            .collect()
    };
    let attributes = item
        .attributes
        .iter()
        .filter(|a| !matches!(a.id.as_deref(), Some("SELLER_SKU") | Some("BRAND")))
        .filter_map(|a| {
            let name = a.id.as_deref().or(a.name.as_deref())?.trim().to_lowercase();
            let value = a.value_name.as_deref()?.trim().to_owned();
            (!name.is_empty() && !value.is_empty()).then_some((name, value))
        })
        .collect();
    Ok(Product {
        sku: item_sku,
        title: item.title.clone(),
        description: item.description.clone().unwrap_or_default(),
        brand: attribute(&item.attributes, "BRAND").map(str::to_owned),
        vendor: None,
        category: item.category_id.clone(),
        tags: Default::default(),
        barcode: None,
        weight_grams: None,
        status: status_from_ml(item.status.as_deref()),
        attributes,
        currency: currency(item.currency_id.as_deref())?,
        images,
        variants,
    })
}

/// An item's `last_updated`, when readable.
pub fn item_updated_at(item: &MlItem) -> Option<Timestamp> {
    parse_time(item.last_updated.as_deref())
}

pub fn item_to_record(item: &MlItem) -> Result<ExternalRecord, ConnectorError> {
    let id = item
        .id
        .clone()
        .ok_or_else(|| ConnectorError::fatal("mercadolibre item without an id"))?;
    if item.description.is_none() {
        // An empty description here would read as "the description was cleared" and spread
        // to every channel: a bug in the caller, never a platform answer.
        return Err(ConnectorError::fatal(format!(
            "mercadolibre item {id} was mapped before its description was read"
        )));
    }
    Ok(ExternalRecord {
        external_id: ExternalId(id),
        updated_at: parse_time(item.last_updated.as_deref()),
        content: RecordContent::Product(item_to_product(item)?),
    })
}

/// Parses an item from JSON text (prices exact).
pub fn parse_item(text: &str) -> Result<MlItem, serde_json::Error> {
    serde_json::from_str(text)
}

#[derive(Debug, Clone, Deserialize)]
pub struct MultigetEntry {
    pub code: u16,
    pub body: Box<RawValue>,
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MlOrderItemRef {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub variation_id: Option<IdText>,
    #[serde(default)]
    pub seller_sku: Option<String>,
    #[serde(default)]
    pub seller_custom_field: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MlOrderItem {
    pub item: MlOrderItemRef,
    pub quantity: Count,
    pub unit_price: Amount,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MlBuyer {
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MlShippingRef {
    #[serde(default)]
    pub id: Option<IdText>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MlPayment {
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MlOrder {
    pub id: IdText,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub last_updated: Option<String>,
    #[serde(default)]
    pub date_last_updated: Option<String>,
    #[serde(default)]
    pub order_items: Vec<MlOrderItem>,
    #[serde(default)]
    pub total_amount: Option<Amount>,
    #[serde(default)]
    pub currency_id: Option<String>,
    #[serde(default)]
    pub buyer: MlBuyer,
    #[serde(default)]
    pub shipping: Option<MlShippingRef>,
    #[serde(default)]
    pub payments: Vec<MlPayment>,
}

impl MlOrder {
    pub fn updated_at(&self) -> Option<Timestamp> {
        parse_time(
            self.date_last_updated
                .as_deref()
                .or(self.last_updated.as_deref()),
        )
    }

    pub fn shipment_id(&self) -> Option<&str> {
        self.shipping
            .as_ref()
            .and_then(|s| s.id.as_ref())
            .map(|i| i.0.as_str())
            .filter(|i| *i != "null")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MlShipment {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub tracking_method: Option<String>,
}

pub fn shipment_to_canonical(s: &MlShipment) -> Shipment {
    Shipment {
        carrier: s.tracking_method.clone().filter(|c| !c.is_empty()),
        tracking_number: s.tracking_number.clone().filter(|t| !t.is_empty()),
        status: match s.status.as_deref() {
            Some("shipped") => ShipmentStatus::Shipped,
            Some("delivered") => ShipmentStatus::Delivered,
            Some("cancelled") => ShipmentStatus::Cancelled,
            Some("not_delivered") => ShipmentStatus::Returned,
            _ => ShipmentStatus::Pending,
        },
    }
}

pub fn order_to_record(
    order: &MlOrder,
    shipment: Option<&MlShipment>,
) -> Result<ExternalRecord, ConnectorError> {
    let currency = currency(order.currency_id.as_deref())?;
    let lines: Vec<OrderLine> = order
        .order_items
        .iter()
        .map(|i| OrderLine {
            sku: i
                .item
                .seller_sku
                .as_deref()
                .or(i.item.seller_custom_field.as_deref())
                .filter(|s| !s.trim().is_empty())
                .map(|s| Sku(s.trim().to_owned())),
            title: i.item.title.clone().unwrap_or_default(),
            quantity: i.quantity.0,
            unit_price: i.unit_price.0,
        })
        .collect();
    // Checked: amounts come from the platform, and `Decimal`'s operators panic on overflow.
    let subtotal = lines.iter().try_fold(Decimal::ZERO, |sum, l| {
        l.unit_price
            .checked_mul(Decimal::from(l.quantity))
            .and_then(|line| sum.checked_add(line))
            .ok_or_else(|| {
                ConnectorError::fatal(format!(
                    "mercadolibre order {}: the line amounts ({} × {}) overflow a decimal",
                    order.id.0, l.unit_price, l.quantity
                ))
            })
    })?;
    let name = [
        order.buyer.first_name.as_deref(),
        order.buyer.last_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    let name = if name.is_empty() {
        order.buyer.nickname.clone().unwrap_or_default()
    } else {
        name
    };
    let paid = order
        .payments
        .iter()
        .any(|p| p.status.as_deref() == Some("approved"));
    let (status, payment_status) = match order.status.as_deref() {
        Some("paid") => (OrderStatus::Processing, PaymentStatus::Paid),
        Some("cancelled") => (OrderStatus::Cancelled, PaymentStatus::Voided),
        Some("invalid") => (OrderStatus::Failed, PaymentStatus::Voided),
        Some("partially_refunded") => (OrderStatus::Completed, PaymentStatus::PartiallyRefunded),
        _ if paid => (OrderStatus::Processing, PaymentStatus::Paid),
        _ => (OrderStatus::Pending, PaymentStatus::Pending),
    };
    let placed_at = parse_time(order.date_created.as_deref()).ok_or_else(|| {
        ConnectorError::fatal(format!(
            "mercadolibre order {} has no readable date_created",
            order.id.0
        ))
    })?;
    Ok(ExternalRecord {
        external_id: ExternalId(order.id.0.clone()),
        updated_at: order.updated_at(),
        content: RecordContent::Order(SalesOrder {
            number: order.id.0.clone(),
            buyer: Buyer {
                name,
                email: order.buyer.email.clone(),
                phone: None,
                address: Vec::new(),
            },
            lines,
            currency,
            subtotal,
            shipping_total: Decimal::ZERO,
            tax_total: Decimal::ZERO,
            total: order.total_amount.map_or(subtotal, |a| a.0),
            status,
            payment_status,
            shipments: shipment.map(shipment_to_canonical).into_iter().collect(),
            note: None,
            placed_at,
        }),
    })
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

/// A price as MercadoLibre accepts it without float rounding: a numeric string.
pub fn price_json(value: Decimal) -> Value {
    Value::String(value.normalize().to_string())
}

/// The attribute combination for a canonical option.
pub fn combo_json(name: &str, value: &str) -> Value {
    match name {
        "color" => json!({"id": "COLOR", "name": "Color", "value_name": value}),
        "size" => json!({"id": "SIZE", "name": "Talle", "value_name": value}),
        other => json!({"name": other, "value_name": value}),
    }
}

/// The item-level `SELLER_SKU`: the product's, else, for an item without variations, its one
/// variant's (a product may have no SKU of its own, as Shopify's have none). An item without
/// variations has one SKU, read back as the product's and the variant's.
pub fn item_sku(product: &Product) -> Option<&Sku> {
    product.sku.as_ref().or_else(|| {
        if has_variations(product) {
            None
        } else {
            product.variants.first().and_then(|v| v.sku.as_ref())
        }
    })
}

/// Item-level `attributes` for SKU and brand.
pub fn attributes_json(product: &Product) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(sku) = item_sku(product) {
        out.push(json!({"id": "SELLER_SKU", "value_name": sku.0}));
    }
    if let Some(brand) = &product.brand {
        out.push(json!({"id": "BRAND", "value_name": brand}));
    }
    out
}

/// A product with options on its variants is listed with variations.
pub fn has_variations(product: &Product) -> bool {
    product.variants.iter().any(|v| !v.options.is_empty())
}

/// The body of `POST /items`.
pub fn create_body(product: &Product, category_id: &str) -> Value {
    let price = product
        .variants
        .iter()
        .filter_map(|v| v.price)
        .min()
        .unwrap_or_default();
    let mut body = json!({
        "title": product.title,
        "category_id": category_id,
        "price": price_json(price),
        "currency_id": product.currency.as_str(),
        "buying_mode": "buy_it_now",
        "condition": "new",
        "listing_type_id": "gold_special",
        "pictures": product.images.iter().map(|i| json!({"source": i.src})).collect::<Vec<_>>(),
        "attributes": attributes_json(product),
    });
    if has_variations(product) {
        body["variations"] = Value::Array(
            product
                .variants
                .iter()
                .map(|v| {
                    let mut var = json!({
                        "price": price_json(v.price.unwrap_or(price)),
                        "available_quantity": v.stock.unwrap_or(0).max(0),
                        "attribute_combinations": v.options.iter()
                            .map(|(k, val)| combo_json(k, val)).collect::<Vec<_>>(),
                    });
                    if let Some(sku) = &v.sku {
                        var["attributes"] = json!([{"id": "SELLER_SKU", "value_name": sku.0}]);
                    }
                    var
                })
                .collect(),
        );
    } else {
        let stock = product.variants.first().and_then(|v| v.stock).unwrap_or(0);
        body["available_quantity"] = json!(stock.max(0));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_keep_their_digits() {
        assert_eq!(parse_amount("15000").unwrap(), Decimal::new(15000, 0));
        assert_eq!(parse_amount("\"350\"").unwrap(), Decimal::new(350, 0));
        assert_eq!(parse_amount("0.1").unwrap().to_string(), "0.1");
        assert_eq!(
            parse_amount("12345678901234567.89").unwrap().to_string(),
            "12345678901234567.89"
        );
        assert_eq!(parse_amount("1e3").unwrap(), Decimal::new(1000, 0));
        assert!(parse_amount("\"abc\"").is_err());
        let item: MlItem =
            parse_item(r#"{"id":"MLA1","title":"x","price":19.99,"currency_id":"ARS"}"#).unwrap();
        assert_eq!(item.price, Some(Amount(Decimal::new(1999, 2))));
    }

    #[test]
    fn absurd_order_amounts_are_an_error_for_that_order_not_a_panic() {
        let order: MlOrder = serde_json::from_str(
            r#"{"id":2000000001,"status":"paid","date_created":"2025-06-02T10:01:50.000-04:00",
                "currency_id":"ARS","order_items":[
                {"item":{"id":"MLA1","title":"x"},"quantity":9223372036854775807,
                 "unit_price":79228162514264337593543950335},
                {"item":{"id":"MLA2","title":"y"},"quantity":2,
                 "unit_price":79228162514264337593543950335}]}"#,
        )
        .unwrap();
        let err = order_to_record(&order, None).unwrap_err();
        assert!(err.to_string().contains("2000000001"), "{err}");
        assert!(err.to_string().contains("overflow"), "{err}");
    }
}
