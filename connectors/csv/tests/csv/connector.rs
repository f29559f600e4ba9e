//! The connector over files in a temporary folder: writes land on disk, an interrupted write
//! leaves the old file, scans page each product once and notice a changed file, bad cells
//! become rejections naming line and column and keep full scans from completing (so an
//! unreadable record never looks deleted), absurd values and oversized files are refused
//! without a panic.

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

/// Every page of a scan until it completes (`Ok`: the ids in order) or fails (`Err`: the ids
/// served before the error, and the error).
async fn scan_all(
    csv: &CsvConnector,
    scope: ScanScope,
) -> Result<Vec<String>, (Vec<String>, ConnectorError)> {
    let mut ids = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..1000 {
        match csv
            .scan_page(ScanKind::Products, &scope, cursor.as_ref())
            .await
        {
            Ok(page) => {
                ids.extend(page.records.iter().map(|r| r.external_id.to_string()));
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => return Ok(ids),
                }
            }
            Err(e) => return Err((ids, e)),
        }
    }
    panic!("the scan did not end")
}

const ONE_BAD_CELL: &str = "Handle,Title,Body (HTML),Option1 Name,Option1 Value,Variant Price\n\
     a,A,\"<p>two\nlines</p>\",Size,S,1.00\n\
     b,B,,Size,S,2.00\n\
     b,,,,M,12;50\n\
     c,C,,Size,S,3.00\n";

/// The review's case: a product with one unreadable cell must not vanish from a full scan,
/// or mark and sweep would take it as deleted (and archive it everywhere if the file is the
/// master). The full scan serves the readable products and then fails instead of completing,
/// naming the record, line and column; incremental and window scans serve the rest.
#[tokio::test]
async fn a_bad_cell_keeps_a_full_scan_from_completing_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.csv");
    std::fs::write(&path, ONE_BAD_CELL).unwrap();
    for page_size in [1, 2, 250] {
        let mut config = CsvConfig::source(&path);
        config.page_size = page_size;
        let csv = CsvConnector::new(config);
        let (served, err) = scan_all(&csv, ScanScope::Full).await.unwrap_err();
        assert_eq!(served, ["a", "c"], "page size {page_size}");
        assert!(matches!(err, ConnectorError::Fatal { .. }), "{err:?}");
        let message = err.to_string();
        for part in [
            "feed.csv has 1 record(s) tidemark cannot read",
            "full scan cannot complete",
            "line 5, column `Variant Price` (\"12;50\"), record b",
            "not a decimal number",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }

        // No deletion can be inferred from the other scopes; they serve the readable records.
        let since = tidemark_core::Timestamp::from_millis(0);
        for scope in [
            ScanScope::Incremental { since },
            ScanScope::Window { since },
        ] {
            assert_eq!(
                scan_all(&csv, scope).await.unwrap(),
                ["a", "c"],
                "{scope:?}"
            );
        }
    }

    // Once the file is fixed, the stored cursor of the failed scan is expired and a new full
    // scan completes with every product.
    let csv = CsvConnector::new(CsvConfig::source(&path));
    let page = csv
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap();
    let resume = page.next.expect("an incomplete full scan has no last page");
    std::fs::write(&path, ONE_BAD_CELL.replace("12;50", "12.50")).unwrap();
    let err = csv
        .scan_page(ScanKind::Products, &ScanScope::Full, Some(&resume))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::CursorExpired { .. }),
        "{err:?}"
    );
    assert_eq!(
        scan_all(&csv, ScanScope::Full).await.unwrap(),
        ["a", "b", "c"]
    );
}

/// A file whose every record is unreadable fails its full scan at once, and the error lists
/// the first problems and counts the rest rather than growing with the file.
#[tokio::test]
async fn a_full_scan_of_nothing_readable_fails_with_a_bounded_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.csv");
    let mut text = String::from("Handle,Title,Variant Price\n");
    for i in 0..25 {
        text.push_str(&format!("p{i},P,{i}€\n"));
    }
    std::fs::write(&path, text).unwrap();
    let csv = CsvConnector::new(CsvConfig::source(&path));
    let (served, err) = scan_all(&csv, ScanScope::Full).await.unwrap_err();
    assert!(served.is_empty());
    let message = err.to_string();
    assert!(message.contains("has 25 record(s)"), "{message}");
    assert!(message.contains("record p9:"), "{message}");
    assert!(!message.contains("record p10:"), "{message}");
    assert!(message.ends_with("; and 15 more"), "{message}");
    let since = tidemark_core::Timestamp::from_millis(0);
    assert_eq!(
        scan_all(&csv, ScanScope::Incremental { since })
            .await
            .unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_bad_cell_skips_its_record_and_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.csv");
    std::fs::write(&path, ONE_BAD_CELL).unwrap();
    let csv = CsvConnector::new(CsvConfig::source(&path));
    let catalog = csv.catalog().await.unwrap();
    let ids: Vec<&str> = catalog
        .products
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

/// `Decimal`'s `*` panics on overflow: a weight too large to convert to grams is a problem of
/// its record (named, with line and column), not a crash of the daemon.
#[tokio::test]
async fn an_absurd_weight_is_a_problem_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wc.csv");
    std::fs::write(
        &path,
        format!(
            "ID,Type,SKU,Name,Regular price,Weight (lbs),Parent\n\
             1,simple,A,A,1,2,\n\
             2,simple,B,B,1,{max},\n\
             3,variable,C,C,,,\n\
             4,variation,C-1,C 1,1,{max},id:3\n\
             5,simple,D,D,1,{huge},\n",
            max = Decimal::MAX,
            huge = "9".repeat(200),
        ),
    )
    .unwrap();
    let csv = CsvConnector::new(CsvConfig::source(&path));
    let catalog = csv.catalog().await.unwrap();
    let ids: Vec<&str> = catalog
        .products
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(ids, ["1"]);
    assert_eq!(
        catalog.product(&ExternalId::new("1")).unwrap().weight_grams,
        dec("907.18474")
    );
    let problems: BTreeMap<&str, (&str, u64)> = catalog
        .problems
        .iter()
        .map(|p| (p.external_id.as_str(), (p.column.as_str(), p.line)))
        .collect();
    assert_eq!(
        problems,
        BTreeMap::from([
            ("2", ("Weight (lbs)", 3)),
            ("3", ("Weight (lbs)", 5)),
            ("5", ("Weight (lbs)", 6)),
        ])
    );
    let message = catalog
        .problem(&ExternalId::new("2"))
        .unwrap()
        .message
        .clone();
    assert!(message.contains("too large a weight"), "{message}");
    let (served, err) = scan_all(&csv, ScanScope::Full).await.unwrap_err();
    assert_eq!(served, ["1"]);
    assert!(
        err.to_string().contains("line 3, column `Weight (lbs)`"),
        "{err}"
    );
}

/// A file over `max_file_bytes` is refused with an error saying so, for scans, fetches and
/// writes alike; a write that would make the file too large leaves it as it was.
#[tokio::test]
async fn an_oversized_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.csv");
    std::fs::write(&path, shopify_csv(100)).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let mut config = CsvConfig::source(&path);
    config.max_file_bytes = size - 1;
    let csv = CsvConnector::new(config.clone());
    let err = csv
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Fatal { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "feed.csv is {size} bytes, more than the {} bytes",
            size - 1
        )) && message.contains("`max_file_bytes`"),
        "{message}"
    );
    assert!(
        csv.fetch_one(ScanKind::Products, &ExternalId::new("p1"))
            .await
            .is_err()
    );
    config.max_file_bytes = size;
    let csv = CsvConnector::new(config);
    assert_eq!(scan_all(&csv, ScanScope::Full).await.unwrap().len(), 100);

    // A target is not written past the limit.
    let (_, target_path) = target(dir.path());
    let mut config = CsvConfig::target(&target_path);
    config.max_file_bytes = 1_000;
    let small = CsvConnector::new(config);
    let mut big = shirt();
    big.description = "x".repeat(2_000);
    let err = small
        .apply_writes(&[write("c", WriteOp::CreateProduct { product: big })])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`max_file_bytes`"), "{err}");
    assert!(!target_path.exists(), "nothing was written");
}

/// A header of a million columns (a file split on the wrong delimiter, a binary) is refused
/// before any row is read, and a wide header over many short rows costs memory by what the
/// rows hold, not rows × columns.
#[tokio::test]
async fn a_million_column_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.csv");
    let mut text = String::from("Handle,Title");
    text.push_str(&",x".repeat(1_000_000));
    text.push_str("\na,A\n");
    std::fs::write(&path, text).unwrap();
    let csv = CsvConnector::new(CsvConfig::source(&path));
    let err = csv
        .scan_page(ScanKind::Products, &ScanScope::Full, None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "wide.csv line 1: the header has 1000002 columns; a product export has at most 10000"
        ),
        "{err}"
    );

    let mut text = String::from("Handle,Title");
    for n in 0..9_000 {
        text.push_str(&format!(",Extra {n}"));
    }
    text.push('\n');
    for i in 0..20_000 {
        text.push_str(&format!("p{i},P\n"));
    }
    std::fs::write(&path, text).unwrap();
    assert_eq!(scan_all(&csv, ScanScope::Full).await.unwrap().len(), 20_000);
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
    assert!(build(json!({"path": "/tmp/x.csv", "max_file_bytes": 0})).is_err());
    assert!(build(json!({"path": "/tmp/x.csv", "max_file_bytes": 1_000_000})).is_ok());
    assert!(build(json!({"path": "/tmp/x.csv", "mode": "sideways"})).is_err());
}
