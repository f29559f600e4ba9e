//! Reading a platform's error answer into code, message and field, for the shapes of
//! platforms.md: WooCommerce `{code, message, data}`, MercadoLibre `{message, error, status,
//! cause[]}`, Shopify `{errors: …}` (a string, a list of `{message, extensions.code}`, or a
//! map of field → messages).

use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub field: Option<String>,
}

impl PlatformError {
    pub fn is_empty(&self) -> bool {
        self.code.is_none() && self.message.is_none()
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Extracts what it can; `None` when the body names neither a code nor a message.
pub fn parse_error_body(body: &Value) -> Option<PlatformError> {
    let obj = body.as_object()?;
    let mut out = PlatformError::default();

    // MercadoLibre: the first blocking cause says more than the generic "Validation error".
    if let Some(causes) = obj.get("cause").and_then(Value::as_array) {
        let blocking = causes
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("error"))
            .or_else(|| causes.iter().find(|c| c.get("type").is_none()));
        if let Some(cause) = blocking {
            out.code = text(cause.get("code"));
            out.message = text(cause.get("message"));
            out.field = cause
                .get("references")
                .and_then(Value::as_array)
                .and_then(|r| text(r.first()));
        }
    }

    // WooCommerce and MercadoLibre top level.
    if out.code.is_none() {
        out.code = text(obj.get("code")).or_else(|| text(obj.get("error")));
    }
    if out.message.is_none() {
        out.message = text(obj.get("message"));
    }
    if out.field.is_none() {
        out.field = obj
            .get("data")
            .and_then(|d| d.get("params"))
            .and_then(Value::as_object)
            .and_then(|p| p.keys().next().cloned());
    }

    // Shopify.
    match obj.get("errors") {
        Some(Value::String(s)) if out.message.is_none() => out.message = Some(s.clone()),
        Some(Value::Array(items)) => {
            if let Some(first) = items.first() {
                if out.message.is_none() {
                    out.message = text(first.get("message")).or_else(|| text(Some(first)));
                }
                if out.code.is_none() {
                    out.code = text(first.get("extensions").and_then(|e| e.get("code")))
                        .or_else(|| text(first.get("code")));
                }
                if out.field.is_none() {
                    out.field = first.get("field").and_then(field_path);
                }
            }
        }
        Some(Value::Object(map)) if out.message.is_none() => {
            if let Some((field, messages)) = map.iter().next() {
                let message = match messages {
                    Value::Array(list) => text(list.first()),
                    other => text(Some(other)),
                };
                out.message = message.map(|m| format!("{field} {m}"));
                out.field = Some(field.clone());
            }
        }
        _ => {}
    }

    (!out.is_empty()).then_some(out)
}

/// A GraphQL `userErrors[].field` (`["variants","0","price"]`) as `variants.0.price`.
pub fn field_path(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let parts: Vec<String> = parts
                .iter()
                .filter_map(|p| match p {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join("."))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn woocommerce() {
        let e = parse_error_body(&json!({"code":"rest_invalid_param","message":"Invalid parameter(s): per_page","data":{"status":400,"params":{"per_page":"must be between 1 and 100"}}})).unwrap();
        assert_eq!(e.code.as_deref(), Some("rest_invalid_param"));
        assert_eq!(e.field.as_deref(), Some("per_page"));
    }

    #[test]
    fn mercadolibre_prefers_the_blocking_cause() {
        let e = parse_error_body(&json!({"message":"Validation error","error":"validation_error","status":400,
            "cause":[{"type":"warning","code":"w","message":"warn","references":["item.attributes"]},
                     {"type":"error","code":"moderations.seller.not_authorized","references":["item.seller_id"],"message":"Seller is not authorized"}]})).unwrap();
        assert_eq!(e.code.as_deref(), Some("moderations.seller.not_authorized"));
        assert_eq!(e.field.as_deref(), Some("item.seller_id"));
        let e = parse_error_body(&json!({"message":"Too Many Requests","error":"too_many_requests","status":429,"cause":[]})).unwrap();
        assert_eq!(e.code.as_deref(), Some("too_many_requests"));
        assert_eq!(e.message.as_deref(), Some("Too Many Requests"));
    }

    #[test]
    fn shopify_shapes() {
        let e = parse_error_body(
            &json!({"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED"}}]}),
        )
        .unwrap();
        assert_eq!(e.code.as_deref(), Some("THROTTLED"));
        let e = parse_error_body(&json!({"errors":"Not Found"})).unwrap();
        assert_eq!(e.message.as_deref(), Some("Not Found"));
        let e = parse_error_body(&json!({"errors":{"title":["can't be blank"]}})).unwrap();
        assert_eq!(e.message.as_deref(), Some("title can't be blank"));
        assert_eq!(
            field_path(&json!(["variants", "0", "price"])).as_deref(),
            Some("variants.0.price")
        );
    }

    #[test]
    fn nothing_to_read() {
        assert_eq!(parse_error_body(&json!({"ok": true})), None);
        assert_eq!(parse_error_body(&json!([1, 2])), None);
    }
}
