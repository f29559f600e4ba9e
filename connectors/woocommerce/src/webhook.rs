//! WooCommerce webhook deliveries: `X-WC-Webhook-Signature` verified in constant time over the
//! raw body, then topic and resource id read; the dedupe key is `X-WC-Webhook-Delivery-ID`.

use http::HeaderMap;
use serde_json::Value;
use tidemark_connector::webhook::{
    WOOCOMMERCE_DELIVERY_ID_HEADER, WOOCOMMERCE_TOPIC_HEADER, required_header, verify_woocommerce,
};
use tidemark_connector::{Authenticity, ConnectorError, WebhookEvent, WebhookResource};
use tidemark_core::{ExternalId, ScanKind};

/// Verifies and parses a delivery. A ping (form body `webhook_id=…`, no topic) is accepted with
/// no resource.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<WebhookEvent, ConnectorError> {
    verify_woocommerce(headers, body, [secret.as_bytes()])?;
    let delivery_id = required_header(headers, WOOCOMMERCE_DELIVERY_ID_HEADER)?.to_owned();
    let topic = headers
        .get(WOOCOMMERCE_TOPIC_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let (resource, event) = topic.split_once('.').unwrap_or(("", ""));
    let kind = match resource {
        "product" => Some(ScanKind::Products),
        "order" => Some(ScanKind::Orders),
        _ => None,
    };
    let id = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| crate::mapping::id_of(&v));
    let resource = match (kind, id) {
        (Some(kind), Some(external_id)) => Some(WebhookResource {
            kind,
            external_id,
            deleted: event == "deleted",
        }),
        _ => None,
    };
    Ok(WebhookEvent {
        delivery_id,
        topic,
        resource,
        authenticity: Authenticity::Signed,
    })
}

/// The resource id of a product webhook body, for callers that only have the body.
pub fn resource_id(body: &[u8]) -> Option<ExternalId> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| crate::mapping::id_of(&v))
}
