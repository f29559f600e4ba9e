//! The real REST v3 example payloads (woocommerce-rest-api-docs, Apache-2.0, copied to
//! tests/fixtures/woocommerce) parsed into canonical records.

use rust_decimal::Decimal;
use serde_json::Value;
use tidemark_core::{Currency, OrderStatus, PaymentStatus, ProductStatus, RecordContent};
use tidemark_woocommerce::mapping::{order_from_wc, product_from_wc};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/woocommerce/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect("json")
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn simple_product() {
    let r = product_from_wc(
        &fixture("products__retrieve-a-product.json"),
        &[],
        Currency::USD,
    )
    .unwrap();
    assert_eq!(r.external_id.as_str(), "794");
    assert_eq!(r.updated_at.unwrap().to_string(), "2017-03-23T20:01:14Z");
    let RecordContent::Product(p) = r.content else {
        panic!()
    };
    assert_eq!(p.title, "Premium Quality");
    assert_eq!(p.status, ProductStatus::Active);
    assert_eq!(p.category.as_deref(), Some("Clothing"));
    assert_eq!(p.images.len(), 2);
    assert_eq!(p.images[0].external_id.as_ref().unwrap().as_str(), "792");
    assert_eq!(p.variants.len(), 1);
    assert_eq!(p.variants[0].price, Some(d("21.99")));
    assert_eq!(p.variants[0].compare_at_price, None);
    assert_eq!(p.variants[0].stock, None);
}

#[test]
fn variable_product_with_a_variation() {
    let variation = fixture("product-variations__retrieve-a-product-variation.json");
    let r = product_from_wc(
        &fixture("products__create-a-product-variable.json"),
        &[variation],
        Currency::USD,
    )
    .unwrap();
    assert_eq!(r.external_id.as_str(), "799");
    let RecordContent::Product(p) = r.content else {
        panic!()
    };
    assert_eq!(p.title, "Ship Your Idea");
    assert!(p.images.len() >= 4);
    let v = &p.variants[0];
    assert_eq!(v.external_id.as_ref().unwrap().as_str(), "732");
    // Platform attribute names are kept.
    assert_eq!(v.options.get("Color").map(String::as_str), Some("Black"));
    assert_eq!(v.price, Some(d("9.00")));
    assert_eq!(v.sku, None);
    assert_eq!(v.image_hashes.len(), 1);
}

#[test]
fn order() {
    let r = order_from_wc(&fixture("orders__retrieve-an-order.json")).unwrap();
    assert_eq!(r.external_id.as_str(), "727");
    assert_eq!(r.updated_at.unwrap().to_string(), "2017-03-22T19:28:08Z");
    let RecordContent::Order(o) = r.content else {
        panic!()
    };
    assert_eq!(o.number, "727");
    assert_eq!(o.status, OrderStatus::Processing);
    assert_eq!(o.payment_status, PaymentStatus::Paid);
    assert_eq!(o.total, d("29.35"));
    assert_eq!(o.shipping_total, d("10.00"));
    assert_eq!(o.tax_total, d("1.35"));
    assert_eq!(o.subtotal, d("18.00"));
    assert_eq!(o.buyer.name, "John Doe");
    assert_eq!(o.buyer.email.as_deref(), Some("john.doe@example.com"));
    assert_eq!(o.lines.len(), 2);
    assert_eq!(o.lines[0].quantity, 2);
    assert_eq!(o.lines[0].unit_price, d("3"));
    assert_eq!(o.lines[1].sku.as_ref().unwrap().0, "Bar3");
}
