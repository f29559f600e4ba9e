//! The connector over files in a temporary folder: writes land on disk, an interrupted write
//! leaves the old file, scans page each product once and notice a changed file, bad cells
//! become rejections naming line and column.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use http::HeaderMap;
use rust_decimal::Decimal;
use serde_json::json;
use tidemark_connector::{
    Connector, ConnectorError, ConnectorRegistry, CredentialSink, Credentials, Cursor,
    NoCredentialRotation, ScanScope, Write, WriteOp, WriteResult,
};
use tidemark_core::hash::image_hash_url;
use tidemark_core::{
    ConnectionId, Currency, ExternalId, Field, Image, ImageHashSource, PlatformKind, Product,
    ProductStatus, RecordContent, SalesOrder, ScanKind, Sku, StockChange, Variant,
};
use tidemark_csv::mapping::ReadOptions;
use tidemark_csv::{Catalog, CsvConfig, CsvConnector, CsvFactory, LayoutSetting, read_catalog};

fn on_disk(path: &Path) -> Catalog {
    let bytes = std::fs::read(path).unwrap();
    read_catalog(
        path,
        &bytes,
        ReadOptions {
            layout: LayoutSetting::Auto,
            currency: Currency::USD,
        },
    )
    .unwrap()
}

fn product_on_disk(path: &Path, id: &str) -> Product {
    on_disk(path)
        .product(&ExternalId::new(id))
        .unwrap_or_else(|| panic!("no {id} on disk"))
        .clone()
}

fn dec(text: &str) -> Option<Decimal> {
    Some(Decimal::from_str(text).unwrap())
}

fn image(src: &str, position: u32) -> Image {
    Image {
        external_id: None,
        src: src.to_owned(),
        content_hash: image_hash_url(src),
        hash_source: ImageHashSource::Url,
        position,
        alt: None,
    }
}

fn variant(sku: &str, size: &str, price: &str, stock: i64) -> Variant {
    Variant {
        external_id: None,
        sku: Some(Sku(sku.into())),
        barcode: None,
        options: BTreeMap::from([("size".to_owned(), size.to_owned())]),
        price: dec(price),
        compare_at_price: None,
        stock: Some(stock),
        weight_grams: None,
        image_hashes: vec![],
    }
}

fn shirt() -> Product {
    let mut small = variant("B-S", "S", "10.00", 5);
    small.image_hashes = vec![image_hash_url("https://img.example/back.jpg")];
    Product {
        sku: None,
        title: "Blue Shirt".into(),
        description: "<p>Soft</p>".into(),
        brand: Some("Acme".into()),
        vendor: Some("Acme Supply".into()),
        category: Some("Shirts".into()),
        tags: BTreeSet::from(["blue".to_owned()]),
        barcode: None,
        weight_grams: None,
        status: ProductStatus::Active,
        attributes: BTreeMap::new(),
        currency: Currency::USD,
        images: vec![
            image("https://img.example/front.jpg", 0),
            image("https://img.example/back.jpg", 1),
        ],
        variants: vec![small, variant("B-M", "M", "12.00", 7)],
    }
}

fn write(key: &str, op: WriteOp) -> Write {
    Write {
        key: key.into(),
        op,
    }
}

fn ok(result: &WriteResult) -> (&str, bool) {
    match &result.outcome {
        Ok(confirmed) => (confirmed.record.external_id.as_str(), confirmed.adopted),
        Err(e) => panic!("{}: {e}", result.key),
    }
}

fn target(dir: &Path) -> (CsvConnector, std::path::PathBuf) {
    let path = dir.join("catalogue.csv");
    (CsvConnector::new(CsvConfig::target(&path)), path)
}

#[tokio::test]
async fn creates_updates_and_image_deletes_land_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, path) = target(dir.path());
    assert!(csv.capabilities().writes(ScanKind::Products));
    // An empty target holds no products (the file may also not exist yet: see below).
    std::fs::write(&path, "").unwrap();
    assert!(csv.catalog().await.unwrap().products.is_empty());
    std::fs::remove_file(&path).unwrap();

    // Create: the file does not exist yet.
    let results = csv
        .apply_writes(&[write("c1", WriteOp::CreateProduct { product: shirt() })])
        .await
        .unwrap();
    assert_eq!(ok(&results[0]), ("blue-shirt", false));
    let disk = product_on_disk(&path, "blue-shirt");
    assert_eq!(disk.title, "Blue Shirt");
    assert_eq!(disk.brand.as_deref(), Some("Acme"));
    assert_eq!(disk.variants.len(), 2);
    assert_eq!(disk.images.len(), 2);

    // A repeated create (the first answer was lost) adopts by SKU instead of duplicating;
    // another product with the same title gets its own handle.
    let mut other = shirt();
    other.variants = vec![variant("G-S", "S", "9.00", 1)];
    other.images.clear();
    let results = csv
        .apply_writes(&[
            write("c1-again", WriteOp::CreateProduct { product: shirt() }),
            write("c2", WriteOp::CreateProduct { product: other }),
        ])
        .await
        .unwrap();
    assert_eq!(ok(&results[0]), ("blue-shirt", true));
    assert_eq!(ok(&results[1]), ("blue-shirt-2", false));
    assert_eq!(on_disk(&path).products.len(), 2);

    // Update exactly title and price: description and vendor stay as they are.
    let mut changed = shirt();
    changed.title = "Navy Shirt".into();
    changed.description = "<p>NOT SENT</p>".into();
    changed.vendor = Some("NOT SENT".into());
    changed.variants[0].price = dec("11.50");
    changed.variants[1].stock = Some(999); // not a field of this write
    let results = csv
        .apply_writes(&[write(
            "u1",
            WriteOp::UpdateProduct {
                external_id: ExternalId::new("blue-shirt"),
                product: changed,
                fields: BTreeSet::from([Field::Title, Field::Price]),
                stock: vec![],
            },
        )])
        .await
        .unwrap();
    assert_eq!(ok(&results[0]), ("blue-shirt", false));
    let disk = product_on_disk(&path, "blue-shirt");
    assert_eq!(disk.title, "Navy Shirt");
    assert_eq!(disk.description, "<p>Soft</p>");
    assert_eq!(disk.vendor.as_deref(), Some("Acme Supply"));
    let by_sku = |p: &Product, sku: &str| {
        p.variants
            .iter()
            .find(|v| v.sku.as_ref().is_some_and(|s| s.as_str() == sku))
            .cloned()
            .unwrap()
    };
    assert_eq!(by_sku(&disk, "B-S").price, dec("11.50"));
    assert_eq!(by_sku(&disk, "B-M").stock, Some(7));

    // Stock moves apply to the file's current quantity: the merchant sold one B-S (5 → 4)
    // in the file since tidemark's snapshot; tidemark moves 5 → 3; the file ends at 2.
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen(",B-S,,shopify,5,", ",B-S,,shopify,4,", 1);
    assert_ne!(edited, text, "the test edits the B-S quantity cell");
    std::fs::write(&path, edited).unwrap();
    let small_id = by_sku(&disk, "B-S").external_id.unwrap();
    let results = csv
        .apply_writes(&[write(
            "s1",
            WriteOp::UpdateProduct {
                external_id: ExternalId::new("blue-shirt"),
                product: shirt(),
                fields: BTreeSet::from([Field::Stock]),
                stock: vec![StockChange {
                    variant: small_id,
                    sku: Some(Sku("B-S".into())),
                    from: 5,
                    to: 3,
                }],
            },
        )])
        .await
        .unwrap();
    ok(&results[0]);
    let disk = product_on_disk(&path, "blue-shirt");
    assert_eq!(by_sku(&disk, "B-S").stock, Some(2));
    assert_eq!(disk.title, "Navy Shirt");

    // Image delete: the image goes, the variant that showed it no longer does, positions
    // close up. Deleting it again is a success that changes nothing.
    let back = image_hash_url("https://img.example/back.jpg");
    for key in ["d1", "d1-again"] {
        let results = csv
            .apply_writes(&[write(
                key,
                WriteOp::DeleteProductImage {
                    product_id: ExternalId::new("blue-shirt"),
                    image_id: None,
                    content_hash: back,
                },
            )])
            .await
            .unwrap();
        ok(&results[0]);
        let disk = product_on_disk(&path, "blue-shirt");
        assert_eq!(disk.images.len(), 1);
        assert_eq!(disk.images[0].src, "https://img.example/front.jpg");
        assert!(by_sku(&disk, "B-S").image_hashes.is_empty());
    }

    // Per-item failures leave the rest of the batch alone.
    let order = SalesOrder {
        number: "1".into(),
        buyer: Default::default(),
        lines: vec![],
        currency: Currency::USD,
        subtotal: Decimal::ZERO,
        shipping_total: Decimal::ZERO,
        tax_total: Decimal::ZERO,
        total: Decimal::ZERO,
        status: Default::default(),
        payment_status: Default::default(),
        shipments: vec![],
        note: None,
        placed_at: tidemark_core::Timestamp::from_millis(0),
    };
    let mut eur = shirt();
    eur.currency = Currency::parse("EUR").unwrap();
    let mut retitled = shirt();
    retitled.title = "Teal Shirt".into();
    let results = csv
        .apply_writes(&[
            write(
                "missing",
                WriteOp::UpdateProduct {
                    external_id: ExternalId::new("no-such-handle"),
                    product: shirt(),
                    fields: BTreeSet::from([Field::Title]),
                    stock: vec![],
                },
            ),
            write("order", WriteOp::CreateOrder { order }),
            write(
                "eur",
                WriteOp::UpdateProduct {
                    external_id: ExternalId::new("blue-shirt-2"),
                    product: eur,
                    fields: BTreeSet::from([Field::Price]),
                    stock: vec![],
                },
            ),
            write(
                "fine",
                WriteOp::UpdateProduct {
                    external_id: ExternalId::new("blue-shirt"),
                    product: retitled,
                    fields: BTreeSet::from([Field::Title]),
                    stock: vec![],
                },
            ),
        ])
        .await
        .unwrap();
    assert!(matches!(
        results[0].outcome,
        Err(ConnectorError::NotFound { .. })
    ));
    assert!(
        matches!(&results[1].outcome, Err(ConnectorError::Rejected { code, .. }) if code == "csv_no_orders")
    );
    assert!(
        matches!(&results[2].outcome, Err(ConnectorError::Rejected { code, .. }) if code == "csv_currency_mismatch")
    );
    ok(&results[3]);
    assert_eq!(product_on_disk(&path, "blue-shirt").title, "Teal Shirt");
    assert_eq!(
        by_sku(&product_on_disk(&path, "blue-shirt-2"), "G-S").price,
        dec("9.00")
    );

    // What the connector serves is what the file holds.
    let found = csv.find_by_sku(&Sku("b-m".into())).await.unwrap().unwrap();
    assert_eq!(found.external_id, ExternalId::new("blue-shirt"));
    assert!(
        csv.find_by_sku(&Sku("nope".into()))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_interrupted_write_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, path) = target(dir.path());
    csv.apply_writes(&[write("c1", WriteOp::CreateProduct { product: shirt() })])
        .await
        .unwrap();
    let before = std::fs::read(&path).unwrap();

    let mut renamed = shirt();
    renamed.title = "Changed".into();
    let update = write(
        "u1",
        WriteOp::UpdateProduct {
            external_id: ExternalId::new("blue-shirt"),
            product: renamed,
            fields: BTreeSet::from([Field::Title]),
            stock: vec![],
        },
    );
    csv.fail_next_write_before_rename();
    let err = csv
        .apply_writes(std::slice::from_ref(&update))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectorError::Transient {
                maybe_applied: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "old file intact");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    // The connector did not start serving what it failed to write.
    let record = csv
        .fetch_one(ScanKind::Products, &ExternalId::new("blue-shirt"))
        .await
        .unwrap()
        .unwrap();
    let RecordContent::Product(p) = record.content else {
        unreachable!()
    };
    assert_eq!(p.title, "Blue Shirt");

    // The retry lands.
    csv.apply_writes(&[update]).await.unwrap();
    assert_eq!(product_on_disk(&path, "blue-shirt").title, "Changed");
}

fn shopify_csv(products: usize) -> String {
    let mut text =
        String::from("Handle,Title,Option1 Name,Option1 Value,Variant SKU,Variant Price\n");
    for i in 0..products {
        text.push_str(&format!(
            "p{i},Product {i},Title,Default Title,SKU{i},{i}.50\n"
        ));
    }
    text
}

#[tokio::test]
async fn scans_page_each_product_once_and_expire_on_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.csv");
    std::fs::write(&path, shopify_csv(10)).unwrap();
    let mut config = CsvConfig::source(&path);
    config.page_size = 3;
    let csv = CsvConnector::new(config);
    assert!(!csv.capabilities().writes(ScanKind::Products));
    assert_eq!(csv.capabilities().incremental(ScanKind::Products), None);

    for scope in [
        ScanScope::Full,
        ScanScope::Incremental {
            since: tidemark_core::Timestamp::from_millis(i64::MAX / 2),
        },
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        let mut pages = 0;
        loop {
            let page = csv
                .scan_page(ScanKind::Products, &scope, cursor.as_ref())
                .await
                .unwrap();
            pages += 1;
            seen.extend(page.records.into_iter().map(|r| r.external_id.to_string()));
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(pages, 4);
        let expected: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
        assert_eq!(
            seen, expected,
            "each product once, in file order ({scope:?})"
        );
    }

    // The file changes between pages: the old cursor is expired, not silently shifted.
    let first = csv
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap();
    std::fs::write(&path, shopify_csv(11)).unwrap();
    let err = csv
        .scan_page(ScanKind::Products, &ScanScope::Full, first.next.as_ref())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::CursorExpired { .. }),
        "{err:?}"
    );
    let err = csv
        .scan_page(
            ScanKind::Products,
            &ScanScope::Full,
            Some(&Cursor::new("garbage")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::CursorExpired { .. }),
        "{err:?}"
    );

    // A source is never written, holds no orders, has no webhooks.
    let err = csv
        .apply_writes(&[write("c", WriteOp::CreateProduct { product: shirt() })])
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Fatal { .. }), "{err:?}");
    assert!(
        csv.scan_page(ScanKind::Orders, &ScanScope::Full, None)
            .await
            .is_err()
    );
    assert!(csv.verify_webhook(&HeaderMap::new(), b"{}").is_err());
}

#[tokio::test]
async fn a_bad_cell_skips_its_record_and_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.csv");
    std::fs::write(
        &path,
        "Handle,Title,Body (HTML),Option1 Name,Option1 Value,Variant Price\n\
         a,A,\"<p>two\nlines</p>\",Size,S,1.00\n\
         b,B,,Size,S,2.00\n\
         b,,,,M,12;50\n\
         c,C,,Size,S,3.00\n",
    )
    .unwrap();
    let csv = CsvConnector::new(CsvConfig::source(&path));
    let page = csv
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap();
    let ids: Vec<&str> = page
        .records
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "c"]);
    let err = csv
        .fetch_one(ScanKind::Products, &ExternalId::new("b"))
        .await
        .unwrap_err();
    let ConnectorError::Rejected {
        code,
        field,
        payload,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(code, "csv_invalid_value");
    assert_eq!(field.as_deref(), Some("Variant Price"));
    assert_eq!(payload["line"], 5, "the row starts on physical line 5");
    assert_eq!(payload["value"], "12;50");
    assert!(
        err.to_string()
            .contains("feed.csv line 5, column `Variant Price`"),
        "{err}"
    );
    assert!(
        csv.fetch_one(ScanKind::Products, &ExternalId::new("zzz"))
            .await
            .unwrap()
            .is_none()
    );

    // As a target, the file is not rewritten while it has unreadable records: they would be
    // dropped.
    let mut config = CsvConfig::target(&path);
    config.layout = LayoutSetting::Auto;
    let target = CsvConnector::new(config);
    let err = target
        .apply_writes(&[write("c", WriteOp::CreateProduct { product: shirt() })])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[tokio::test]
async fn a_malformed_file_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.csv");
    std::fs::write(&path, b"Handle,Title,Variant Price\na,A,1\nb,B\xff,2\n").unwrap();
    let csv = CsvConnector::new(CsvConfig::source(&path));
    let err = csv
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Fatal { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("broken.csv line 3, column `Title`"),
        "{err}"
    );

    std::fs::write(&path, "Sku;Price\nA;1\n").unwrap();
    let err = csv
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("neither a Shopify nor a WooCommerce"),
        "{err}"
    );

    std::fs::remove_file(&path).unwrap();
    let err = csv
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn woocommerce_variations_join_their_parent_or_sink_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wc.csv");
    std::fs::write(
        &path,
        "\u{feff}ID,Type,SKU,Name,Published,Stock,Regular price,Sale price,Weight (kg),Images,Parent,Brands,Attribute 1 name,Attribute 1 value(s)\n\
         10,variable,TEE,Tee,1,,,,0.2,\"https://i/a.jpg, https://i/b.jpg\",,Acme,Size,\"S, M\"\n\
         11,variation,TEE-S,Tee - S,1,4,10,,,https://i/c.jpg,id:10,,Size,S\n\
         12,variation,TEE-M,Tee - M,1,2,10,8,0.25,,TEE,,Size,M\n\
         20,variable,BAD,Bad,-1,,,,,,,,Size,S\n\
         21,variation,BAD-S,Bad - S,1,x,10,,,,BAD,,Size,S\n\
         30,variation,ORPHAN,Orphan,1,,10,,,,id:99,,Size,S\n",
    )
    .unwrap();
    let csv = CsvConnector::new(CsvConfig::source(&path));
    let catalog = csv.catalog().await.unwrap();
    let ids: Vec<&str> = catalog
        .products
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(ids, ["10"]);
    let tee = catalog.product(&ExternalId::new("10")).unwrap();
    assert_eq!(tee.brand.as_deref(), Some("Acme"));
    assert_eq!(tee.weight_grams, dec("200.0"));
    assert_eq!(
        tee.images.len(),
        3,
        "the variation's own image joins the parent's"
    );
    let small = &tee.variants[0];
    assert_eq!((small.stock, small.price), (Some(4), dec("10")));
    assert_eq!(small.weight_grams, dec("200.0"), "inherited");
    assert_eq!(small.image_hashes, [image_hash_url("https://i/c.jpg")]);
    let medium = &tee.variants[1];
    assert_eq!(
        (medium.price, medium.compare_at_price),
        (dec("8"), dec("10"))
    );
    assert_eq!(medium.weight_grams, dec("250.00"));
    let problems: BTreeMap<&str, (&str, u64)> = catalog
        .problems
        .iter()
        .map(|p| (p.external_id.as_str(), (p.column.as_str(), p.line)))
        .collect();
    assert_eq!(
        problems,
        BTreeMap::from([("20", ("Stock", 6)), ("30", ("Parent", 7))])
    );
}

#[test]
fn the_registry_builds_it_from_settings() {
    let registry = ConnectorRegistry::new().with(Arc::new(CsvFactory));
    let sink: Arc<dyn CredentialSink> = Arc::new(NoCredentialRotation);
    let build = |settings: serde_json::Value| {
        registry.build(
            PlatformKind::Csv,
            ConnectionId(1),
            &settings,
            &Credentials::new(),
            &sink,
        )
    };
    let csv = build(json!({"path": "/tmp/x.csv", "mode": "target", "currency": "eur"})).unwrap();
    assert_eq!(csv.platform(), PlatformKind::Csv);
    assert!(csv.capabilities().writes(ScanKind::Products));
    assert!(!csv.capabilities().scans(ScanKind::Orders));
    let source = build(json!({"path": "/tmp/x.csv"})).unwrap();
    assert!(!source.capabilities().writes(ScanKind::Products));
    assert!(build(json!({"path": "/tmp/x.csv", "delimiter": ";"})).is_err());
    assert!(build(json!({})).is_err());
    assert!(
        build(json!({"path": "/tmp/x.csv", "mode": "target", "layout": "woocommerce"})).is_err()
    );
    assert!(build(json!({"path": "/tmp/x.csv", "page_size": 0})).is_err());
    assert!(build(json!({"path": "/tmp/x.csv", "mode": "sideways"})).is_err());
}
