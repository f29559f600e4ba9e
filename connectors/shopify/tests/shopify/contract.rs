//! Contract tests on Shopify's real REST webhook bodies (ids above 2^53 that lost precision in
//! their numeric form) and the HMAC vector.

use std::path::PathBuf;
use std::str::FromStr;

use http::{HeaderMap, HeaderValue};
use rust_decimal::Decimal;
use tidemark_connector::{Authenticity, ConnectorError};
use tidemark_core::{
    Currency, OrderStatus, PaymentStatus, ProductStatus, RecordContent, ScanKind, Timestamp,
};
use tidemark_shopify::{mapping, webhook};

fn fixture(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn json(path: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(path)).unwrap()
}

#[test]
fn product_webhook_body_maps_with_exact_gids() {
    let body = json("shopify/Product.json");
    // The numeric id lost precision; the gid did not.
    assert_eq!(body["id"].as_u64(), Some(788_032_119_674_292_900));
    let record = mapping::product_from_rest(&body, Currency::USD).unwrap();
    assert_eq!(
        record.external_id.as_str(),
        "gid://shopify/Product/788032119674292922"
    );
    assert_eq!(
        record.updated_at,
        Some(Timestamp::parse_rfc3339("2022-01-01T00:00:00Z").unwrap())
    );
    let RecordContent::Product(p) = record.content else {
        panic!("not a product")
    };
    assert_eq!(p.title, "Example T-Shirt");
    assert_eq!(p.description, "An example T-Shirt");
    assert_eq!(p.vendor.as_deref(), Some("Acme"));
    assert_eq!(p.category.as_deref(), Some("Shirts"));
    assert_eq!(p.status, ProductStatus::Active);
    assert!(p.tags.contains("mens") && p.tags.contains("t-shirt") && p.tags.len() == 3);
    assert_eq!(p.variants.len(), 2);
    let small = &p.variants[0];
    assert_eq!(
        small.external_id.as_ref().unwrap().as_str(),
        "gid://shopify/ProductVariant/642667041472713922"
    );
    assert_eq!(small.sku.as_ref().unwrap().as_str(), "example-shirt-s");
    assert_eq!(small.price, Some(Decimal::from_str("19.99").unwrap()));
    assert_eq!(
        small.compare_at_price,
        Some(Decimal::from_str("24.99").unwrap())
    );
    assert_eq!(small.stock, Some(75));
    assert_eq!(
        p.variants[1].external_id.as_ref().unwrap().as_str(),
        "gid://shopify/ProductVariant/757650484644203962"
    );
}

#[test]
fn order_webhook_body_maps_with_exact_gid_and_decimal_totals() {
    let body = json("shopify/Order.json");
    let record = mapping::order_from_rest(&body, Currency::USD).unwrap();
    assert_eq!(
        record.external_id.as_str(),
        "gid://shopify/Order/820982911946154508"
    );
    let RecordContent::Order(o) = record.content else {
        panic!("not an order")
    };
    assert_eq!(o.number, "#9999");
    assert_eq!(o.total, Decimal::from_str("388.00").unwrap());
    assert_eq!(o.currency, Currency::USD);
    assert_eq!(o.payment_status, PaymentStatus::Voided);
    assert_eq!(o.lines.len(), 2);
    assert_eq!(o.lines[0].sku.as_ref().unwrap().as_str(), "IPOD2008PINK");
    assert_eq!(o.lines[0].unit_price, Decimal::from_str("199.00").unwrap());
    assert_ne!(o.status, OrderStatus::Completed);
}

fn headers(topic: &str, signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-shopify-topic", HeaderValue::from_str(topic).unwrap());
    h.insert(
        "x-shopify-hmac-sha256",
        HeaderValue::from_str(signature).unwrap(),
    );
    h.insert(
        "x-shopify-webhook-id",
        HeaderValue::from_static("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
    );
    h
}

#[test]
fn hmac_vector_verifies_and_a_one_byte_change_fails() {
    let vector = json("signatures/shopify_webhook_hmac_vector.json");
    let secret = vector["secret"].as_str().unwrap().as_bytes();
    let body = vector["body"].as_str().unwrap().as_bytes();
    let signature = vector["expected_header_value"].as_str().unwrap();
    let event = webhook::parse(&headers("products/create", signature), body, [secret]).unwrap();
    assert_eq!(event.delivery_id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
    assert_eq!(event.authenticity, Authenticity::Signed);
    assert!(
        event.resource.is_none(),
        "the vector's body names no product"
    );

    let mut changed = body.to_vec();
    changed[2] ^= 1;
    let err =
        webhook::parse(&headers("products/create", signature), &changed, [secret]).unwrap_err();
    assert!(matches!(err, ConnectorError::Unauthorized { .. }), "{err}");
}

#[test]
fn product_webhook_names_the_product_by_its_gid_and_delete_by_its_digits() {
    let secret = b"whsec_test";
    let body = fixture("shopify/Product.json");
    let signature = tidemark_connector::webhook::sign_hmac_sha256_base64(secret, &body);
    let event = webhook::parse(
        &headers("products/update", &signature),
        &body,
        [&secret[..]],
    )
    .unwrap();
    let resource = event.resource.unwrap();
    assert_eq!(resource.kind, ScanKind::Products);
    assert_eq!(
        resource.external_id.as_str(),
        "gid://shopify/Product/788032119674292922"
    );
    assert!(!resource.deleted);

    // A delete body has only the numeric id: its digits as sent, never through f64.
    let body = fixture("shopify/Deleted.json");
    let signature = tidemark_connector::webhook::sign_hmac_sha256_base64(secret, &body);
    let event = webhook::parse(
        &headers("products/delete", &signature),
        &body,
        [&secret[..]],
    )
    .unwrap();
    let resource = event.resource.unwrap();
    assert!(resource.deleted);
    assert_eq!(
        resource.external_id.as_str(),
        "gid://shopify/Product/788032119674292900"
    );

    let big = br#"{"id":9007199254740993}"#;
    let signature = tidemark_connector::webhook::sign_hmac_sha256_base64(secret, big);
    let event = webhook::parse(&headers("orders/delete", &signature), big, [&secret[..]]).unwrap();
    assert_eq!(
        event.resource.unwrap().external_id.as_str(),
        "gid://shopify/Order/9007199254740993"
    );
}

/// An absurd weight (converting it to grams overflows a decimal) is an error for that record,
/// not a panic.
#[test]
fn absurd_weight_is_an_error_not_a_panic() {
    let node = serde_json::json!({
        "id": "gid://shopify/ProductVariant/1",
        "price": "1.00",
        "inventoryItem": { "measurement": { "weight": {
            "unit": "KILOGRAMS", "value": "79228162514264337593543950335" } } },
    });
    let err = mapping::variant_from_graphql(&node).unwrap_err();
    assert!(err.to_string().contains("overflows"), "{err}");
    let huge_float = serde_json::json!({
        "id": "gid://shopify/ProductVariant/2",
        "inventoryItem": { "measurement": { "weight": { "unit": "POUNDS", "value": 1e300 } } },
    });
    let v = mapping::variant_from_graphql(&huge_float).unwrap();
    assert_eq!(v.weight_grams, None);
    let fine = serde_json::json!({
        "id": "gid://shopify/ProductVariant/3",
        "inventoryItem": { "measurement": { "weight": { "unit": "KILOGRAMS", "value": 1.5 } } },
    });
    assert_eq!(
        mapping::variant_from_graphql(&fine).unwrap().weight_grams,
        Some(Decimal::from(1500))
    );
}
