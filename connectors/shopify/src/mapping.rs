//! Shopify JSON ↔ canonical records. Ids stay text (gids) from end to end: webhook bodies'
//! numeric ids lost precision above 2^53 and are never read. Money arrives as strings and
//! becomes `rust_decimal` without passing through a float.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;
use tidemark_connector::ConnectorError;
use tidemark_core::{
    Barcode, Buyer, Currency, ExternalId, ExternalRecord, Image, ImageHashSource, OrderLine,
    OrderStatus, PaymentStatus, Product, ProductStatus, RecordContent, SalesOrder, Shipment,
    ShipmentStatus, Sku, Timestamp, Variant, hash::image_hash_url,
};

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A money string (`"29.99"`) as a decimal; `None` when absent or null.
pub fn money(v: &Value) -> Result<Option<Decimal>, ConnectorError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Decimal::from_str(s).map(Some).map_err(|e| {
            ConnectorError::fatal(format!("shopify money {s:?} is not a decimal: {e}"))
        }),
        other => Err(ConnectorError::fatal(format!(
            "shopify money {other} is not a string"
        ))),
    }
}

pub fn timestamp(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(|s| Timestamp::parse_rfc3339(s).ok())
}

fn status(text: &str) -> ProductStatus {
    match text.to_ascii_lowercase().as_str() {
        "draft" => ProductStatus::Draft,
        "archived" => ProductStatus::Archived,
        _ => ProductStatus::Active,
    }
}

/// GraphQL `status` of a canonical status (Shopify has no "paused": it is a draft).
pub fn status_enum(status: ProductStatus) -> &'static str {
    match status {
        ProductStatus::Active => "ACTIVE",
        ProductStatus::Draft | ProductStatus::Paused => "DRAFT",
        ProductStatus::Archived => "ARCHIVED",
    }
}

fn image(url: &str, position: u32, id: Option<&str>, alt: Option<&str>) -> Image {
    Image {
        external_id: id.map(ExternalId::new),
        src: url.to_owned(),
        content_hash: image_hash_url(url),
        hash_source: ImageHashSource::Url,
        position,
        alt: alt.filter(|a| !a.is_empty()).map(str::to_owned),
    }
}

/// A weight in grams; `Err` when converting it overflows (an absurd value).
fn weight_grams(weight: &Value) -> Result<Option<Decimal>, ConnectorError> {
    let Some(amount) = weight_amount(weight) else {
        return Ok(None);
    };
    let factor = match weight
        .get("unit")
        .and_then(Value::as_str)
        .unwrap_or("GRAMS")
    {
        "KILOGRAMS" => Decimal::from(1000),
        "POUNDS" => Decimal::new(45_359_237, 5),
        "OUNCES" => Decimal::new(28_349_523_125, 9),
        _ => Decimal::ONE,
    };
    amount
        .checked_mul(factor)
        .map(|g| Some(g.normalize()))
        .ok_or_else(|| ConnectorError::fatal(format!("shopify weight {weight} overflows in grams")))
}

fn weight_amount(weight: &Value) -> Option<Decimal> {
    let value = weight.get("value")?;
    match value {
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        Value::String(s) => Decimal::from_str(s).ok(),
        _ => None,
    }
}

/// One GraphQL `ProductVariant` node.
pub fn variant_from_graphql(node: &Value) -> Result<Variant, ConnectorError> {
    let options: BTreeMap<String, String> = node["selectedOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            Some((
                text(o, "name")?.to_lowercase(),
                text(o, "value")?.to_owned(),
            ))
        })
        .filter(|(n, v)| !(n == "title" && v == "Default Title"))
        .collect();
    Ok(Variant {
        external_id: text(node, "id").map(ExternalId::new),
        sku: text(node, "sku").map(|s| Sku(s.to_owned())),
        barcode: text(node, "barcode").map(|s| Barcode(s.to_owned())),
        options,
        price: money(&node["price"])?,
        compare_at_price: money(&node["compareAtPrice"])?,
        stock: node["inventoryQuantity"].as_i64(),
        weight_grams: weight_grams(&node["inventoryItem"]["measurement"]["weight"])
            .map_err(|e| e.context(format!("variant {}", text(node, "id").unwrap_or("?"))))?,
        image_hashes: text(&node["image"], "url")
            .map(|u| vec![image_hash_url(u)])
            .unwrap_or_default(),
    })
}

/// One GraphQL `Product` node whose `variants` and `media` hold every node (the client has
/// fetched the pages beyond the first and appended them).
pub fn product_from_graphql(
    node: &Value,
    currency: Currency,
) -> Result<ExternalRecord, ConnectorError> {
    let id =
        text(node, "id").ok_or_else(|| ConnectorError::fatal("shopify product without an id"))?;
    // Media still UPLOADED/PROCESSING have `image: null` (normal for a while after they are
    // added): they are kept, by id, so they do not look deleted. Without a URL their
    // content hash is a placeholder derived from the media id (`src` empty) until READY.
    let images: Vec<Image> = node["media"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            text(m, "mediaContentType").is_none_or(|t| t == "IMAGE")
                && text(m, "status") != Some("FAILED")
        })
        .filter_map(|m| match text(&m["image"], "url") {
            Some(url) => Some((m, url, false)),
            None => Some((m, text(m, "id")?, true)),
        })
        .enumerate()
        .map(|(i, (m, url, pending))| {
            let mut img = image(
                url,
                u32::try_from(i).unwrap_or(u32::MAX),
                text(m, "id"),
                text(m, "alt"),
            );
            if pending {
                img.src = String::new();
            }
            img
        })
        .collect();
    let variants = node["variants"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(variant_from_graphql)
        .collect::<Result<Vec<_>, _>>()?;
    let product = Product {
        sku: None,
        title: text(node, "title").unwrap_or_default().to_owned(),
        description: text(node, "descriptionHtml").unwrap_or_default().to_owned(),
        brand: None,
        vendor: text(node, "vendor").map(str::to_owned),
        category: text(node, "productType").map(str::to_owned),
        tags: node["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        barcode: None,
        weight_grams: None,
        status: status(text(node, "status").unwrap_or("ACTIVE")),
        attributes: BTreeMap::new(),
        currency,
        images,
        variants,
    };
    Ok(ExternalRecord {
        external_id: ExternalId::new(id),
        updated_at: timestamp(&node["updatedAt"]),
        content: RecordContent::Product(product),
    })
}

/// A REST webhook body (`products/create`, `products/update`): snake_case, numeric ids that
/// may have lost precision, so ids come from `admin_graphql_api_id`.
pub fn product_from_rest(
    body: &Value,
    currency: Currency,
) -> Result<ExternalRecord, ConnectorError> {
    let id = text(body, "admin_graphql_api_id").ok_or_else(|| {
        ConnectorError::fatal("shopify product body without admin_graphql_api_id")
    })?;
    let option_names: Vec<String> = body["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| text(o, "name").map(str::to_lowercase))
        .collect();
    let images: Vec<Image> = body["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| Some((i, text(i, "src")?)))
        .enumerate()
        .map(|(n, (i, src))| {
            image(
                src,
                u32::try_from(n).unwrap_or(u32::MAX),
                text(i, "admin_graphql_api_id"),
                text(i, "alt"),
            )
        })
        .collect();
    let variants = body["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let mut options = BTreeMap::new();
            for (n, name) in option_names.iter().enumerate() {
                if let Some(value) = text(v, &format!("option{}", n + 1))
                    && !(name == "title" && value == "Default Title")
                {
                    options.insert(name.clone(), value.to_owned());
                }
            }
            let grams = v["grams"].as_i64().map(Decimal::from);
            Ok(Variant {
                external_id: text(v, "admin_graphql_api_id").map(ExternalId::new),
                sku: text(v, "sku").map(|s| Sku(s.to_owned())),
                barcode: text(v, "barcode").map(|s| Barcode(s.to_owned())),
                options,
                price: money(&v["price"])?,
                compare_at_price: money(&v["compare_at_price"])?,
                stock: v["inventory_quantity"].as_i64(),
                weight_grams: grams,
                image_hashes: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, ConnectorError>>()?;
    let product = Product {
        sku: None,
        title: text(body, "title").unwrap_or_default().to_owned(),
        description: text(body, "body_html").unwrap_or_default().to_owned(),
        brand: None,
        vendor: text(body, "vendor").map(str::to_owned),
        category: text(body, "product_type").map(str::to_owned),
        tags: text(body, "tags")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        barcode: None,
        weight_grams: None,
        status: status(text(body, "status").unwrap_or("active")),
        attributes: BTreeMap::new(),
        currency,
        images,
        variants,
    };
    Ok(ExternalRecord {
        external_id: ExternalId::new(id),
        updated_at: timestamp(&body["updated_at"]),
        content: RecordContent::Product(product),
    })
}

fn payment_status(financial: &str) -> PaymentStatus {
    match financial.to_ascii_lowercase().as_str() {
        "paid" => PaymentStatus::Paid,
        "partially_paid" => PaymentStatus::PartiallyPaid,
        "refunded" => PaymentStatus::Refunded,
        "partially_refunded" => PaymentStatus::PartiallyRefunded,
        "voided" => PaymentStatus::Voided,
        _ => PaymentStatus::Pending,
    }
}

fn order_status(cancelled: bool, fulfillment: Option<&str>, payment: PaymentStatus) -> OrderStatus {
    if cancelled {
        return OrderStatus::Cancelled;
    }
    if payment == PaymentStatus::Refunded {
        return OrderStatus::Refunded;
    }
    match fulfillment.map(str::to_ascii_lowercase).as_deref() {
        Some("fulfilled") => OrderStatus::Completed,
        _ if payment == PaymentStatus::Paid => OrderStatus::Processing,
        _ => OrderStatus::Pending,
    }
}

fn currency_of(code: Option<&str>, fallback: Currency) -> Currency {
    code.and_then(|c| Currency::parse(c).ok())
        .unwrap_or(fallback)
}

fn amount(set: &Value) -> Result<Decimal, ConnectorError> {
    Ok(money(&set["shopMoney"]["amount"])?.unwrap_or_default())
}

/// Postal address lines of a `MailingAddress` (GraphQL) or `shipping_address` (REST): street
/// lines, then "city province zip", then the country; empty parts left out.
fn address_lines(address: &Value) -> Vec<String> {
    if !address.is_object() {
        return Vec::new();
    }
    let locality = ["city", "province", "zip"]
        .iter()
        .filter_map(|k| text(address, k))
        .collect::<Vec<_>>()
        .join(" ");
    [
        text(address, "address1").map(str::to_owned),
        text(address, "address2").map(str::to_owned),
        Some(locality).filter(|l| !l.is_empty()),
        text(address, "country").map(str::to_owned),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A shipment's status from a fulfilment's display status (or, without one, its status;
/// REST: `shipment_status`, then `status`).
fn shipment_status(display: Option<&str>, status: Option<&str>) -> ShipmentStatus {
    match display.map(str::to_ascii_uppercase).as_deref() {
        Some("DELIVERED" | "PICKED_UP") => return ShipmentStatus::Delivered,
        Some(
            "IN_TRANSIT" | "OUT_FOR_DELIVERY" | "ATTEMPTED_DELIVERY" | "READY_FOR_PICKUP"
            | "CONFIRMED",
        ) => return ShipmentStatus::InTransit,
        Some("CANCELED" | "CANCELLED") => return ShipmentStatus::Cancelled,
        Some("FULFILLED" | "MARKED_AS_FULFILLED" | "LABEL_PRINTED" | "LABEL_PURCHASED") => {
            return ShipmentStatus::Shipped;
        }
        _ => {}
    }
    match status.map(str::to_ascii_uppercase).as_deref() {
        Some("SUCCESS") => ShipmentStatus::Shipped,
        Some("CANCELLED" | "CANCELED" | "ERROR" | "FAILURE") => ShipmentStatus::Cancelled,
        _ => ShipmentStatus::Pending,
    }
}

/// One shipment per tracking entry of each fulfilment (one without tracking when it has none).
fn shipments_from_graphql(fulfillments: &Value) -> Vec<Shipment> {
    let mut out = Vec::new();
    for f in fulfillments.as_array().into_iter().flatten() {
        let status = shipment_status(text(f, "displayStatus"), text(f, "status"));
        let tracking: Vec<&Value> = f["trackingInfo"].as_array().into_iter().flatten().collect();
        if tracking.is_empty() {
            out.push(Shipment {
                carrier: None,
                tracking_number: None,
                status,
            });
        }
        for t in tracking {
            out.push(Shipment {
                carrier: text(t, "company").map(str::to_owned),
                tracking_number: text(t, "number").map(str::to_owned),
                status,
            });
        }
    }
    out
}

fn shipments_from_rest(fulfillments: &Value) -> Vec<Shipment> {
    fulfillments
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| Shipment {
            carrier: text(f, "tracking_company").map(str::to_owned),
            tracking_number: text(f, "tracking_number").map(str::to_owned),
            status: shipment_status(text(f, "shipment_status"), text(f, "status")),
        })
        .collect()
}

/// One GraphQL `Order` node.
pub fn order_from_graphql(
    node: &Value,
    fallback: Currency,
) -> Result<ExternalRecord, ConnectorError> {
    let id =
        text(node, "id").ok_or_else(|| ConnectorError::fatal("shopify order without an id"))?;
    let payment = payment_status(text(node, "displayFinancialStatus").unwrap_or(""));
    let customer = &node["customer"];
    let name = [text(customer, "firstName"), text(customer, "lastName")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let lines = node["lineItems"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            Ok(OrderLine {
                sku: text(l, "sku").map(|s| Sku(s.to_owned())),
                title: text(l, "title").unwrap_or_default().to_owned(),
                quantity: l["quantity"].as_i64().unwrap_or(0),
                unit_price: amount(&l["originalUnitPriceSet"])?,
            })
        })
        .collect::<Result<Vec<_>, ConnectorError>>()?;
    let order = SalesOrder {
        number: text(node, "name").unwrap_or_default().to_owned(),
        buyer: Buyer {
            name,
            email: text(node, "email")
                .or_else(|| text(customer, "email"))
                .map(str::to_owned),
            phone: text(customer, "phone").map(str::to_owned),
            address: address_lines(&node["shippingAddress"]),
        },
        lines,
        currency: currency_of(text(node, "currencyCode"), fallback),
        subtotal: amount(&node["subtotalPriceSet"])?,
        shipping_total: amount(&node["totalShippingPriceSet"])?,
        tax_total: amount(&node["totalTaxSet"])?,
        total: amount(&node["totalPriceSet"])?,
        status: order_status(
            !node["cancelledAt"].is_null(),
            text(node, "displayFulfillmentStatus"),
            payment,
        ),
        payment_status: payment,
        shipments: shipments_from_graphql(&node["fulfillments"]),
        note: text(node, "note").map(str::to_owned),
        placed_at: timestamp(&node["createdAt"]).unwrap_or(Timestamp::from_millis(0)),
    };
    Ok(ExternalRecord {
        external_id: ExternalId::new(id),
        updated_at: timestamp(&node["updatedAt"]),
        content: RecordContent::Order(order),
    })
}

/// A REST order webhook body (`orders/create`, `orders/updated`, …).
pub fn order_from_rest(body: &Value, fallback: Currency) -> Result<ExternalRecord, ConnectorError> {
    let id = text(body, "admin_graphql_api_id")
        .ok_or_else(|| ConnectorError::fatal("shopify order body without admin_graphql_api_id"))?;
    let payment = payment_status(text(body, "financial_status").unwrap_or(""));
    let customer = &body["customer"];
    let name = [text(customer, "first_name"), text(customer, "last_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let lines = body["line_items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            Ok(OrderLine {
                sku: text(l, "sku").map(|s| Sku(s.to_owned())),
                title: text(l, "title").unwrap_or_default().to_owned(),
                quantity: l["quantity"].as_i64().unwrap_or(0),
                unit_price: money(&l["price"])?.unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, ConnectorError>>()?;
    let total_shipping =
        money(&body["total_shipping_price_set"]["shop_money"]["amount"])?.unwrap_or_default();
    let order = SalesOrder {
        number: text(body, "name").unwrap_or_default().to_owned(),
        buyer: Buyer {
            name,
            email: text(body, "email")
                .or_else(|| text(customer, "email"))
                .map(str::to_owned),
            phone: text(body, "phone")
                .or_else(|| text(customer, "phone"))
                .map(str::to_owned),
            address: address_lines(&body["shipping_address"]),
        },
        lines,
        currency: currency_of(text(body, "currency"), fallback),
        subtotal: money(&body["subtotal_price"])?.unwrap_or_default(),
        shipping_total: total_shipping,
        tax_total: money(&body["total_tax"])?.unwrap_or_default(),
        total: money(&body["total_price"])?.unwrap_or_default(),
        status: order_status(
            !body["cancelled_at"].is_null(),
            text(body, "fulfillment_status"),
            payment,
        ),
        payment_status: payment,
        shipments: shipments_from_rest(&body["fulfillments"]),
        note: text(body, "note").map(str::to_owned),
        placed_at: timestamp(&body["created_at"]).unwrap_or(Timestamp::from_millis(0)),
    };
    Ok(ExternalRecord {
        external_id: ExternalId::new(id),
        updated_at: timestamp(&body["updated_at"]),
        content: RecordContent::Order(order),
    })
}
