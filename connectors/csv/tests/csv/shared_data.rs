//! Reads the real product CSVs of the shared data folder (never copied here: the Shopify files
//! have no licence and the WooCommerce sample is GPL-3.0) and checks counts and hand-checked
//! values.
//!
//! `TIDEMARK_SHARED_DATA` is the shared folder holding `data/` (`../shared` in CI,
//! `/work/shared` on a workstation). Unset: each test prints why it is skipped and passes. Set
//! but a file missing: the test fails.

use std::str::FromStr;

use rust_decimal::Decimal;
use tidemark_connector::{Connector, ScanScope};
use tidemark_core::hash::image_hash_url;
use tidemark_core::normalize::{NormalizeWarning, normalize_product_with_warnings};
use tidemark_core::{
    Barcode, Currency, ExternalId, Product, ProductStatus, RecordContent, ScanKind, Sku, Variant,
};
use tidemark_csv::mapping::ReadOptions;
use tidemark_csv::{Catalog, CsvConfig, CsvConnector, Layout, LayoutSetting, read_catalog};

fn read(relative: &str) -> Option<Catalog> {
    let path = tidemark_testkit::shared_data_file(relative)?;
    let bytes = std::fs::read(&path).unwrap();
    let catalog = read_catalog(
        &path,
        &bytes,
        ReadOptions {
            layout: LayoutSetting::Auto,
            currency: Currency::USD,
        },
    )
    .unwrap();
    assert!(
        catalog.problems.is_empty(),
        "{relative}: {:?}",
        catalog.problems
    );
    // Every product is one the engine accepts.
    for record in &catalog.products {
        let RecordContent::Product(p) = &record.content else {
            panic!("{relative}: {} is not a product", record.external_id)
        };
        normalize_product_with_warnings(p.clone()).unwrap_or_else(|e| {
            panic!("{relative}: {} does not normalise: {e}", record.external_id)
        });
    }
    Some(catalog)
}

/// (external id, variants, images) of every product, in file order.
fn shape(catalog: &Catalog) -> Vec<(String, usize, usize)> {
    catalog
        .products
        .iter()
        .map(|r| {
            let RecordContent::Product(p) = &r.content else {
                unreachable!()
            };
            (r.external_id.to_string(), p.variants.len(), p.images.len())
        })
        .collect()
}

fn expect_shape(catalog: &Catalog, expected: &[(&str, usize, usize)]) {
    let expected: Vec<(String, usize, usize)> = expected
        .iter()
        .map(|(id, v, i)| ((*id).to_owned(), *v, *i))
        .collect();
    assert_eq!(shape(catalog), expected);
}

fn product<'a>(catalog: &'a Catalog, id: &str) -> &'a Product {
    catalog
        .product(&ExternalId::new(id))
        .unwrap_or_else(|| panic!("no product {id}"))
}

fn variant<'a>(product: &'a Product, sku: &str) -> &'a Variant {
    product
        .variants
        .iter()
        .find(|v| v.sku.as_ref().is_some_and(|s| s.as_str() == sku))
        .unwrap_or_else(|| panic!("no variant {sku}"))
}

fn dec(text: &str) -> Option<Decimal> {
    Some(Decimal::from_str(text).unwrap())
}

#[test]
fn shopify_current_template() {
    let Some(catalog) = read("shopify/product-csv/product_template.csv") else {
        return;
    };
    assert_eq!(catalog.layout, Layout::ShopifyCurrent);
    expect_shape(
        &catalog,
        &[
            ("example-shirt", 12, 6),
            ("example-pants", 3, 4),
            ("example-hat", 1, 1),
        ],
    );

    let shirt = product(&catalog, "example-shirt");
    assert_eq!(shirt.title, "Example T-Shirt");
    assert_eq!(shirt.vendor.as_deref(), Some("Acme"));
    assert_eq!(
        shirt.category.as_deref(),
        Some("Apparel & Accessories > Clothing > Clothing Tops > T-Shirts"),
        "Product Category wins over Type"
    );
    assert_eq!(
        shirt.tags.iter().map(String::as_str).collect::<Vec<_>>(),
        ["Made to Order", "Shirt Tag"]
    );
    assert_eq!(shirt.status, ProductStatus::Active);
    assert_eq!(
        shirt.images[0].src,
        "https://burst.shopifycdn.com/photos/tshirts.jpg?width=1500"
    );
    assert_eq!(shirt.images[0].alt.as_deref(), Some("A rack of T-Shirts"));
    assert_eq!(shirt.images[5].position, 5);
    let green_s = variant(shirt, "SRT_COT_111");
    assert_eq!(green_s.options["Color"], "Green");
    assert_eq!(green_s.options["Size"], "S");
    assert_eq!(green_s.price, dec("25"));
    assert_eq!(green_s.stock, Some(0));
    assert_eq!(green_s.weight_grams, dec("145"));
    assert_eq!(
        green_s.image_hashes,
        [image_hash_url(
            "https://burst.shopifycdn.com/photos/green-t-shirt.jpg?width=1500"
        )]
    );
    // Excel turned the barcode into scientific notation: read as written, then dropped by
    // normalisation with a warning rather than kept as a wrong number.
    assert_eq!(green_s.barcode, Some(Barcode("3.65275E+11".into())));
    let (normal, warnings) = normalize_product_with_warnings(shirt.clone()).unwrap();
    assert!(normal.variants.iter().all(|v| v.barcode.is_none()));
    assert_eq!(warnings.len(), 12);
    assert!(warnings.contains(&NormalizeWarning::DroppedBarcode {
        sku: Some(Sku("SRT_COT_111".into())),
        value: "3.65275E+11".into(),
    }));

    let jeans = product(&catalog, "example-pants");
    assert_eq!(jeans.status, ProductStatus::Draft);
    let jeans_28 = variant(jeans, "PNT_DEN_285");
    assert_eq!(jeans_28.price, dec("95"));
    assert_eq!(jeans_28.compare_at_price, dec("64.95"));
    assert_eq!(jeans_28.stock, Some(20));
    assert_eq!(
        jeans_28.weight_grams,
        dec("226.796185"),
        "grams, whatever the unit (oz)"
    );
    assert_eq!(
        product(&catalog, "example-hat").status,
        ProductStatus::Archived
    );
    assert!(
        product(&catalog, "example-hat").variants[0]
            .options
            .is_empty(),
        "Default Title"
    );
}

#[test]
fn shopify_legacy_template() {
    let Some(catalog) = read("shopify/product-csv/legacy/product_template.csv") else {
        return;
    };
    assert_eq!(catalog.layout, Layout::ShopifyLegacy);
    expect_shape(
        &catalog,
        &[("black-t-shirt-os", 1, 1), ("example-t-shirt", 3, 1)],
    );

    let black = product(&catalog, "black-t-shirt-os");
    assert_eq!(
        black.status,
        ProductStatus::Active,
        "Published true, no Status column"
    );
    assert_eq!(
        black.category.as_deref(),
        Some("Shirts"),
        "Type without Product Category"
    );
    let only = &black.variants[0];
    assert_eq!(only.barcode, Some(Barcode("'3212483".into())));
    let normal = tidemark_core::normalize::normalize_product(black.clone()).unwrap();
    assert_eq!(normal.variants[0].barcode, Some(Barcode("3212483".into())));
    assert_eq!(only.price, dec("19.99"));
    assert_eq!(only.stock, Some(1));

    let example = product(&catalog, "example-t-shirt");
    // The embedded `""` of the file is one quote in the value.
    let lithograph = example.variants.iter().find(|v| v.sku.is_none()).unwrap();
    assert_eq!(
        lithograph.options["Size"],
        "Lithograph - Height: 9\" x Width: 12\""
    );
    assert_eq!(lithograph.weight_grams, dec("3629"));
    let small = variant(example, "example-shirt-s");
    assert_eq!(small.options["Size"], "Small");
    assert_eq!(small.compare_at_price, dec("24.99"));
}

#[test]
fn shopify_apparel() {
    let Some(catalog) = read("shopify/product-csv/apparel.csv") else {
        return;
    };
    assert_eq!(catalog.layout, Layout::ShopifyLegacy);
    let mut expected: Vec<(&str, usize, usize)> = [
        "ocean-blue-shirt",
        "classic-varsity-top",
        "yellow-wool-jumper",
        "floral-white-top",
        "striped-silk-blouse",
        "classic-leather-jacket",
        "dark-denim-top",
        "navy-sport-jacket",
        "dark-winter-jacket",
        "black-leather-bag",
        "zipped-jacket",
        "silk-summer-top",
        "longsleeve-cotton-top",
        "chequered-red-shirt",
        "white-cotton-shirt",
        "olive-green-jacket",
        "blue-silk-tuxedo",
        "red-sports-tee",
        "striped-skirt-and-top",
        "led-high-tops",
    ]
    .iter()
    .map(|id| (*id, 1, 1))
    .collect();
    expected[1].1 = 3;
    expect_shape(&catalog, &expected);
    let shirt = product(&catalog, "ocean-blue-shirt");
    assert_eq!(shirt.vendor.as_deref(), Some("partners-demo"));
    assert_eq!(shirt.category, None, "Type is empty");
    assert_eq!(shirt.variants[0].price, dec("50"));
    let top = product(&catalog, "classic-varsity-top");
    let sizes: Vec<&str> = top
        .variants
        .iter()
        .map(|v| v.options["Size"].as_str())
        .collect();
    assert_eq!(sizes, ["Small", "Medium", "Large"]);
    assert_eq!(
        product(&catalog, "dark-winter-jacket").title,
        "Soft Winter Jacket"
    );
}

#[test]
fn shopify_home_and_garden() {
    let Some(catalog) = read("shopify/product-csv/home-and-garden.csv") else {
        return;
    };
    assert_eq!(catalog.products.len(), 20);
    let shape = shape(&catalog);
    assert_eq!(shape[0], ("clay-plant-pot".to_owned(), 2, 2));
    assert!(
        shape[1..].iter().all(|(_, v, i)| (*v, *i) == (1, 1)),
        "{shape:?}"
    );
    let pot = product(&catalog, "clay-plant-pot");
    let large = pot
        .variants
        .iter()
        .find(|v| v.options["Size"] == "Large")
        .unwrap();
    assert_eq!(large.price, dec("15.99"));
    assert_eq!(large.stock, Some(3));
    assert_eq!(large.compare_at_price, None);
    assert_eq!(pot.category.as_deref(), Some("Outdoor"));
    assert_eq!(
        pot.tags.iter().map(String::as_str).collect::<Vec<_>>(),
        ["Plants", "Pot"]
    );
}

#[test]
fn shopify_jewelery() {
    let Some(catalog) = read("shopify/product-csv/jewelery.csv") else {
        return;
    };
    expect_shape(
        &catalog,
        &[
            ("chain-bracelet", 2, 2),
            ("leather-anchor", 2, 3),
            ("bangle-bracelet", 1, 1),
            ("bangle-bracelet-with-feathers", 1, 1),
            ("boho-earrings", 1, 3),
            ("choker-with-bead", 1, 2),
            ("choker-with-gold-pendant", 1, 2),
            ("choker-with-triangle", 1, 1),
            ("dainty-gold-neclace", 1, 2),
            ("dreamcatcher-pendant-necklace", 1, 2),
            ("galaxy-earrings", 1, 1),
            ("gemstone", 2, 4),
            ("gold-bird-necklace", 1, 1),
            ("looped-earrings", 1, 1),
            ("guardian-angel-earrings", 1, 2),
            ("moon-charm-bracelet", 1, 3),
            ("origami-crane-necklace", 1, 4),
            ("pretty-gold-necklace", 1, 3),
            ("silver-threader-necklace", 1, 2),
            ("stylish-summer-neclace", 1, 1),
        ],
    );
    // A Body (HTML) over several physical lines.
    let gemstone = product(&catalog, "gemstone");
    assert!(
        gemstone.description.starts_with(
            "<p>Gemstone pendant, housed in sterling silver, with sterling silver chain.</p>\n<ul>\n<li>Sterling silver chain, 14 inches</li>\n"
        ),
        "{:?}",
        gemstone.description
    );
    assert!(
        gemstone
            .description
            .ends_with("<li>Made in USA</li>\n</ul>")
    );
    assert_eq!(gemstone.vendor.as_deref(), Some("Sterling Ltd"));
    let purple = gemstone
        .variants
        .iter()
        .find(|v| v.options.get("Colour").map(String::as_str) == Some("Purple"))
        .unwrap();
    assert_eq!(
        purple.image_hashes,
        [image_hash_url(
            "https://burst.shopifycdn.com/photos/purple-gemstone-necklace_925x.jpg"
        )]
    );
    assert_eq!(
        gemstone.images[3].src,
        "https://burst.shopifycdn.com/photos/purple-gemstone-necklace_925x.jpg"
    );
    let anchor = product(&catalog, "leather-anchor");
    let silver = anchor
        .variants
        .iter()
        .find(|v| v.options["Color"] == "Silver")
        .unwrap();
    assert_eq!(silver.price, dec("55"));
    assert_eq!(silver.compare_at_price, dec("85"));
    assert_eq!(silver.stock, Some(0));
    let earrings = product(&catalog, "boho-earrings");
    assert_eq!(earrings.variants[0].weight_grams, dec("28"));
    assert_eq!(
        earrings.images[2].src,
        "https://burst.shopifycdn.com/photos/necklace-earrings-set_925x.jpg"
    );
}

#[test]
fn woocommerce_sample() {
    let Some(catalog) = read("woocommerce/sample_products.csv") else {
        return;
    };
    assert_eq!(catalog.layout, Layout::WooCommerce);
    expect_shape(
        &catalog,
        &[
            ("44", 3, 3),
            ("45", 4, 4),
            ("46", 1, 1),
            ("47", 1, 1),
            ("48", 1, 1),
            ("58", 1, 1),
            ("60", 1, 1),
            ("62", 1, 1),
            ("64", 1, 1),
            ("66", 1, 1),
            ("68", 1, 1),
            ("70", 1, 1),
            ("73", 1, 1),
            ("75", 1, 1),
            ("83", 1, 1),
            ("85", 1, 1),
            ("87", 0, 4),
            ("89", 1, 1),
        ],
    );
    // The BOM did not end up in the first column's name: ids were read.
    let vneck = product(&catalog, "44");
    assert_eq!(vneck.title, "V-Neck T-Shirt");
    assert_eq!(vneck.sku, Some(Sku("woo-vneck-tee".into())));
    assert_eq!(vneck.category.as_deref(), Some("Clothing > Tshirts"));
    assert_eq!(vneck.weight_grams, dec("226.796185"), ".5 lbs");
    // Size is left at "any" by every variation: an axis without a value, not an attribute.
    assert!(vneck.attributes.is_empty());
    let blue = variant(vneck, "woo-vneck-tee-blue");
    assert_eq!(blue.external_id, Some(ExternalId::new("78")));
    assert_eq!(blue.options.len(), 1);
    assert_eq!(blue.options["Color"], "Blue");
    assert_eq!(blue.price, dec("15"));
    assert_eq!(
        blue.weight_grams,
        dec("226.796185"),
        "inherited from the parent"
    );

    let hoodie = product(&catalog, "45");
    let red = variant(hoodie, "woo-hoodie-red");
    assert_eq!(red.price, dec("42"), "the sale price is the price");
    assert_eq!(red.compare_at_price, dec("45"));
    assert_eq!(red.options["Logo"], "No");
    assert_eq!(hoodie.weight_grams, dec("680.388555"), "1.5 lbs");
    let logo = variant(hoodie, "woo-hoodie-blue-logo");
    assert_eq!(
        logo.image_hashes,
        [image_hash_url(
            "https://woocommercecore.mystagingwebsite.com/wp-content/uploads/2017/12/hoodie-with-logo-2.jpg"
        )]
    );

    let with_logo = product(&catalog, "46");
    assert_eq!(with_logo.attributes["Color"], "Blue");
    assert_eq!(
        with_logo.variants[0].sku,
        Some(Sku("woo-hoodie-with-logo".into()))
    );
    assert_eq!(with_logo.variants[0].price, dec("45"));
    assert_eq!(
        product(&catalog, "73").variants[0].price,
        dec("15"),
        "simple, downloadable, virtual"
    );
    let grouped = product(&catalog, "87");
    assert!(grouped.variants.is_empty());
    assert_eq!(
        grouped.images[1].src,
        "https://woocommercecore.mystagingwebsite.com/wp-content/uploads/2017/12/beanie-with-logo-1.jpg"
    );
    assert_eq!(
        product(&catalog, "89").variants[0].price,
        dec("11.05"),
        "external"
    );
    assert_eq!(product(&catalog, "64").status, ProductStatus::Active);
}

/// A scan through the connector pages the real file, each product once.
#[tokio::test]
async fn scan_pages_a_real_file() {
    let Some(path) = tidemark_testkit::shared_data_file("shopify/product-csv/jewelery.csv") else {
        return;
    };
    let mut config = CsvConfig::source(path);
    config.page_size = 7;
    let connector = CsvConnector::new(config);
    let mut cursor = None;
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = connector
            .scan_page(ScanKind::Products, &ScanScope::Full, cursor.as_ref())
            .await
            .unwrap();
        pages += 1;
        assert_eq!(page.total, Some(20));
        ids.extend(page.records.iter().map(|r| r.external_id.to_string()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (20, 20));
}
