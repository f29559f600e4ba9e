//! Contract tests on MercadoLibre's own example payloads. The files have no licence, so they
//! are not copied here: they are read from `$TIDEMARK_SHARED_DATA/data/mercadolibre/` (the variable names the shared folder holding `data/`). Unset, the
//! tests skip with a printed reason; set but missing, they fail.

use rust_decimal::Decimal;
use tidemark_core::{ProductStatus, RecordContent};
use tidemark_mercadolibre::mapping::{self, parse_item};

fn shared(file: &str) -> Option<String> {
    tidemark_testkit::shared_data_text(&format!("mercadolibre/{file}"))
}

#[test]
fn post_item_success_reads_as_a_product() {
    let Some(text) = shared("post_item_success.json") else {
        return;
    };
    let mut item = parse_item(&text).unwrap();
    // The description is a separate resource: an item not yet described is not a record.
    assert!(mapping::item_to_record(&item).is_err());
    item.description = Some("Texto".into());
    let record = mapping::item_to_record(&item).unwrap();
    assert_eq!(record.external_id.as_str(), "MLA600190449");
    assert_eq!(
        record.updated_at.unwrap().to_string(),
        "2016-01-13T18:26:54Z"
    );
    let RecordContent::Product(p) = record.content else {
        panic!("not a product")
    };
    assert_eq!(p.title, "Iphone 6 64gb Space Gray Liberado");
    assert_eq!(p.currency.as_str(), "ARS");
    assert_eq!(p.category.as_deref(), Some("MLA352543"));
    assert_eq!(p.status, ProductStatus::Active);
    assert_eq!(p.sku, None);
    assert_eq!(p.images.len(), 3);
    assert_eq!(
        p.images[0].external_id.as_ref().unwrap().as_str(),
        "873411-MLA20547233702_012016"
    );
    assert!(
        p.images[2]
            .src
            .ends_with("768311-MLA20547233735_012016-O.jpg")
    );
    assert_eq!(p.images[2].position, 2);
    // No variations: one variant carrying the item's price, quantity and id.
    assert_eq!(p.variants.len(), 1);
    let v = &p.variants[0];
    assert_eq!(v.price, Some(Decimal::new(16550, 0)));
    assert_eq!(v.stock, Some(2));
    assert_eq!(v.external_id.as_ref().unwrap().as_str(), "MLA600190449");
    assert!(v.options.is_empty());
}

#[test]
fn create_request_with_string_numbers_reads_as_a_product() {
    let Some(text) = shared("item_create_request_MLA.json") else {
        return;
    };
    let item = parse_item(&text).unwrap();
    // "350" and "12" are strings in the SDK's example.
    assert_eq!(item.price.unwrap().0, Decimal::new(350, 0));
    assert_eq!(item.available_quantity.unwrap().0, 12);
    let p = mapping::item_to_product(&item).unwrap();
    assert_eq!(p.title, "Item de test - No Ofertar");
    assert_eq!(p.category.as_deref(), Some("MLA5991"));
    assert_eq!(p.currency.as_str(), "ARS");
    // `"value_id": "null"` is a string, not an id: only the value's name is kept.
    assert_eq!(
        p.attributes
            .get("data_storage_capacity")
            .map(String::as_str),
        Some("8 GB")
    );
    assert_eq!(p.images.len(), 1);
    assert_eq!(
        p.images[0].src,
        "https://http2.mlstatic.com/storage/developers-site-cms-admin/openapi/319968615067-mp3.jpg"
    );
    assert_eq!(p.variants.len(), 1);
    let v = &p.variants[0];
    assert_eq!(v.price, Some(Decimal::new(350, 0)));
    assert_eq!(v.stock, Some(2));
    assert_eq!(v.options.get("color").map(String::as_str), Some("Gris"));
    // Its picture id names no picture of the item (a source-only create body).
    assert!(v.image_hashes.is_empty());
}
