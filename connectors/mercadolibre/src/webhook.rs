//! MercadoLibre notifications: unsigned pointers (`{_id, resource, user_id, topic,
//! application_id, attempts, sent, received}`). They are only hints: the event names the
//! record to fetch with the connection's own token, never content to trust.

use serde::Deserialize;
use tidemark_connector::{Authenticity, ConnectorError, WebhookEvent, WebhookResource};
use tidemark_core::{ExternalId, ScanKind};

use crate::mapping::IdText;

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(default, rename = "_id")]
    id: Option<String>,
    resource: String,
    topic: String,
    #[serde(default)]
    user_id: Option<IdText>,
    #[serde(default)]
    application_id: Option<IdText>,
    #[serde(default)]
    sent: Option<String>,
}

/// Parses a notification and checks what can be checked without a signature: that it is for
/// this seller and (when it says) this application. Anything else is `Unauthorized`.
pub fn parse_notification(
    body: &[u8],
    user_id: u64,
    application_id: &str,
) -> Result<WebhookEvent, ConnectorError> {
    let n: Notification = serde_json::from_slice(body).map_err(|e| {
        ConnectorError::unauthorized(format!("mercadolibre notification is not readable: {e}"))
    })?;
    if let Some(user) = &n.user_id
        && user.0 != user_id.to_string()
    {
        return Err(ConnectorError::unauthorized(format!(
            "mercadolibre notification for user {} is not for this seller",
            user.0
        )));
    }
    if let Some(app) = &n.application_id
        && app.0 != application_id
    {
        return Err(ConnectorError::unauthorized(format!(
            "mercadolibre notification for application {} is not for this application",
            app.0
        )));
    }
    let resource = resource_of(&n.topic, &n.resource);
    let delivery_id = n.id.clone().unwrap_or_else(|| {
        format!(
            "{}:{}:{}",
            n.topic,
            n.resource,
            n.sent.as_deref().unwrap_or("")
        )
    });
    Ok(WebhookEvent {
        delivery_id,
        topic: n.topic,
        resource,
        authenticity: Authenticity::HintOnly,
    })
}

/// `/items/MLA1` → the product `MLA1`; `/orders/2000…` → the order. Other topics (shipments,
/// questions, payments) name nothing tidemark fetches directly.
fn resource_of(topic: &str, resource: &str) -> Option<WebhookResource> {
    let path = resource.split('?').next().unwrap_or(resource);
    let mut parts = path.trim_matches('/').split('/');
    let (kind, id) = match (topic, parts.next(), parts.next()) {
        ("items" | "items_prices" | "stock-locations", Some("items"), Some(id)) => {
            (ScanKind::Products, id)
        }
        ("orders_v2" | "orders", Some("orders"), Some(id)) => (ScanKind::Orders, id),
        _ => return None,
    };
    (!id.is_empty()).then(|| WebhookResource {
        kind,
        external_id: ExternalId::new(id),
        deleted: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_items_are_hints_to_fetch() {
        let body = br#"{"_id":"f9f08571","resource":"/orders/2000003508419013","user_id":468424240,
            "topic":"orders_v2","application_id":5503910054141466,"attempts":1,
            "sent":"2025-06-02T14:30:00.129Z","received":"2025-06-02T14:30:00.106Z"}"#;
        let e = parse_notification(body, 468_424_240, "5503910054141466").unwrap();
        assert_eq!(e.authenticity, Authenticity::HintOnly);
        assert_eq!(e.delivery_id, "f9f08571");
        let r = e.resource.unwrap();
        assert_eq!(r.kind, ScanKind::Orders);
        assert_eq!(r.external_id.as_str(), "2000003508419013");

        let body = br#"{"resource":"/items/MLA811601010","user_id":1,"topic":"items"}"#;
        let e = parse_notification(body, 1, "x").unwrap();
        assert_eq!(e.resource.unwrap().external_id.as_str(), "MLA811601010");

        let err = parse_notification(body, 2, "x").unwrap_err();
        assert!(matches!(err, ConnectorError::Unauthorized { .. }));
        let body = br#"{"resource":"/shipments/1","user_id":1,"topic":"shipments"}"#;
        assert!(parse_notification(body, 1, "x").unwrap().resource.is_none());
    }
}
