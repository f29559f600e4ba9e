//! Webhook deliveries: `X-Shopify-Hmac-Sha256` verified over the raw body in constant time
//! before any parsing; the record named by `admin_graphql_api_id` (never the numeric `id`,
//! which lost precision above 2^53 in real payloads); `X-Shopify-Webhook-Id` as the dedupe key.

use http::HeaderMap;
use serde_json::Value;
use tidemark_connector::webhook::{required_header, verify_shopify};
use tidemark_connector::{Authenticity, ConnectorError, WebhookEvent, WebhookResource};
use tidemark_core::{ExternalId, ScanKind};

/// Verifies and parses one delivery. `secrets`: the current webhook secret and, for an hour
/// after a rotation, the previous one.
pub fn parse<'a>(
    headers: &HeaderMap,
    body: &[u8],
    secrets: impl IntoIterator<Item = &'a [u8]>,
) -> Result<WebhookEvent, ConnectorError> {
    verify_shopify(headers, body, secrets)?;
    let topic = required_header(headers, "x-shopify-topic")?.to_owned();
    let delivery_id = required_header(headers, "x-shopify-webhook-id")?.to_owned();
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| ConnectorError::fatal(format!("shopify webhook body is not JSON: {e}")))?;
    let resource = resource(&topic, &json);
    Ok(WebhookEvent {
        delivery_id,
        topic,
        resource,
        authenticity: Authenticity::Signed,
    })
}

/// The record a topic is about. Delete bodies carry only `{"id": …}`, so the gid is rebuilt
/// from the id's text as sent (a JSON number is read as its digits, never as a float).
fn resource(topic: &str, body: &Value) -> Option<WebhookResource> {
    if topic == "inventory_levels/update" {
        return inventory_item_gid(body).map(|gid| WebhookResource {
            kind: ScanKind::Products,
            external_id: ExternalId::new(gid),
            deleted: false,
        });
    }
    let (kind, gid_kind) = match topic.split('/').next()? {
        "products" => (ScanKind::Products, "Product"),
        "orders" => (ScanKind::Orders, "Order"),
        _ => return None,
    };
    let deleted = topic.ends_with("/delete");
    let external_id = match body.get("admin_graphql_api_id").and_then(Value::as_str) {
        Some(gid) => gid.to_owned(),
        None => match body.get("id")? {
            Value::Number(n) if n.is_u64() => format!("gid://shopify/{gid_kind}/{n}"),
            Value::String(s) => format!("gid://shopify/{gid_kind}/{s}"),
            _ => return None,
        },
    };
    Some(WebhookResource {
        kind,
        external_id: ExternalId::new(external_id),
        deleted,
    })
}

/// The inventory item of an `inventory_levels/update` body, as a gid: from the text of
/// `admin_graphql_api_id` (`gid://shopify/InventoryLevel/…?inventory_item_id=…`), else from
/// `inventory_item_id` read as its digits.
pub fn inventory_item_gid(body: &Value) -> Option<String> {
    let from_gid = body
        .get("admin_graphql_api_id")
        .and_then(Value::as_str)
        .and_then(|g| g.split_once("inventory_item_id="))
        .map(|(_, rest)| rest.split('&').next().unwrap_or(rest).to_owned())
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
    let id = match from_gid {
        Some(id) => id,
        None => match body.get("inventory_item_id")? {
            Value::Number(n) if n.is_u64() => n.to_string(),
            Value::String(s) if !s.is_empty() => s.clone(),
            _ => return None,
        },
    };
    Some(format!("gid://shopify/InventoryItem/{id}"))
}
