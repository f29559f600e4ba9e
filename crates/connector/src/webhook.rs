//! Webhook signature helpers: `base64(HMAC-SHA256(secret, raw body))`, the scheme of both
//! Shopify (`X-Shopify-Hmac-Sha256`) and WooCommerce (`X-WC-Webhook-Signature`).
//!
//! Verification runs on the raw body bytes, before any parsing, and compares in constant time
//! (`Mac::verify_slice`), so a forged signature learns nothing from timing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;

use crate::error::ConnectorError;

type HmacSha256 = Hmac<Sha256>;

pub const SHOPIFY_HMAC_HEADER: &str = "x-shopify-hmac-sha256";
pub const SHOPIFY_TOPIC_HEADER: &str = "x-shopify-topic";
pub const SHOPIFY_WEBHOOK_ID_HEADER: &str = "x-shopify-webhook-id";
pub const WOOCOMMERCE_SIGNATURE_HEADER: &str = "x-wc-webhook-signature";
pub const WOOCOMMERCE_TOPIC_HEADER: &str = "x-wc-webhook-topic";
pub const WOOCOMMERCE_DELIVERY_ID_HEADER: &str = "x-wc-webhook-delivery-id";

/// `base64(HMAC-SHA256(secret, body))`, as the platforms compute it (for simulators and tests).
pub fn sign_hmac_sha256_base64(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length (WooCommerce's default secret is empty), so this cannot fail.
    let mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    STANDARD.encode(mac.chain_update(body).finalize().into_bytes())
}

/// Checks a base64 signature against each secret in turn (a platform may still sign with the
/// previous secret for a while after a rotation). `Unauthorized` when none matches.
pub fn verify_hmac_sha256_base64<'a>(
    secrets: impl IntoIterator<Item = &'a [u8]>,
    body: &[u8],
    signature_b64: &str,
) -> Result<(), ConnectorError> {
    let signature = STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| ConnectorError::unauthorized("webhook signature is not valid base64"))?;
    for secret in secrets {
        let Ok(mac) = HmacSha256::new_from_slice(secret) else {
            continue;
        };
        if mac.chain_update(body).verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err(ConnectorError::unauthorized(
        "webhook signature does not match the body",
    ))
}

/// A header's value as text; `Unauthorized` when it is missing or not visible ASCII, since a
/// delivery without its signature or id cannot be trusted.
pub fn required_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, ConnectorError> {
    let value = headers
        .get(name)
        .ok_or_else(|| ConnectorError::unauthorized(format!("webhook has no `{name}` header")))?;
    value
        .to_str()
        .map_err(|_| ConnectorError::unauthorized(format!("webhook header `{name}` is not text")))
}

/// Verifies a Shopify delivery's `X-Shopify-Hmac-Sha256` with the app's client secret(s).
pub fn verify_shopify<'a>(
    headers: &HeaderMap,
    body: &[u8],
    secrets: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(), ConnectorError> {
    let signature = required_header(headers, SHOPIFY_HMAC_HEADER)?;
    verify_hmac_sha256_base64(secrets, body, signature)
        .map_err(|e| e.context("shopify webhook rejected"))
}

/// Verifies a WooCommerce delivery's `X-WC-Webhook-Signature` with the webhook secret(s).
pub fn verify_woocommerce<'a>(
    headers: &HeaderMap,
    body: &[u8],
    secrets: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(), ConnectorError> {
    let signature = required_header(headers, WOOCOMMERCE_SIGNATURE_HEADER)?;
    verify_hmac_sha256_base64(secrets, body, signature)
        .map_err(|e| e.context("woocommerce webhook rejected"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn sign_then_verify() {
        let sig = sign_hmac_sha256_base64(b"k", b"body");
        verify_hmac_sha256_base64([b"k".as_slice()], b"body", &sig).unwrap();
        assert!(verify_hmac_sha256_base64([b"k".as_slice()], b"bodY", &sig).is_err());
        assert!(verify_hmac_sha256_base64([b"x".as_slice()], b"body", &sig).is_err());
        assert!(verify_hmac_sha256_base64([b"k".as_slice()], b"body", "%%%").is_err());
    }

    #[test]
    fn rotated_secret_still_verifies() {
        let sig = sign_hmac_sha256_base64(b"old", b"body");
        verify_hmac_sha256_base64([b"new".as_slice(), b"old".as_slice()], b"body", &sig).unwrap();
    }

    #[test]
    fn missing_header_is_unauthorized() {
        let err = verify_shopify(&HeaderMap::new(), b"{}", [b"k".as_slice()]).unwrap_err();
        assert!(matches!(err, ConnectorError::Unauthorized { .. }), "{err}");
        let mut headers = HeaderMap::new();
        headers.insert(
            "X-WC-Webhook-Signature",
            HeaderValue::from_static("bm9wZQ=="),
        );
        let err = verify_woocommerce(&headers, b"{}", [b"k".as_slice()]).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}
