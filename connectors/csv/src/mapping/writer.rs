//! Canonical products → Shopify product CSV (the current layout).
//!
//! One product takes `max(variants, images, 1)` rows: the first carries the product's fields
//! and option names, row *i* carries variant *i* (if any) and image *i* (if any), as Shopify's
//! own export does. The columns are Shopify's current template, then tidemark's metafield
//! columns for what Shopify's columns cannot hold (product SKU, brand, product barcode,
//! product weight, custom attributes as a JSON object), so a written file reads back as the
//! same products.
//!
//! What Shopify CSV cannot represent is refused for that product (`Rejected`), never written
//! half: more than three option names, a tag with a comma, two variants with the same option
//! values, a variant image that is not one of the product's images, prices in another
//! currency than the connection's. A variant's first image is its `Variant Image` (Shopify
//! has one per variant).
//!
//! Status: active → `Status` active + `Published` TRUE; paused → active + FALSE; draft and
//! archived → that status + FALSE.

use std::collections::BTreeSet;

use tidemark_connector::ConnectorError;
use tidemark_core::{Currency, ExternalRecord, Product, ProductStatus, RecordContent};

use super::shopify::{
    COLUMN_ATTRIBUTES, COLUMN_BRAND, COLUMN_PRODUCT_BARCODE, COLUMN_PRODUCT_SKU,
    COLUMN_PRODUCT_WEIGHT,
};

/// The header tidemark writes: Shopify's current product template, then its own columns.
pub const HEADER: [&str; 53] = [
    "Handle",
    "Title",
    "Body (HTML)",
    "Vendor",
    "Product Category",
    "Type",
    "Tags",
    "Published",
    "Option1 Name",
    "Option1 Value",
    "Option2 Name",
    "Option2 Value",
    "Option3 Name",
    "Option3 Value",
    "Variant SKU",
    "Variant Grams",
    "Variant Inventory Tracker",
    "Variant Inventory Qty",
    "Variant Inventory Policy",
    "Variant Fulfillment Service",
    "Variant Price",
    "Variant Compare At Price",
    "Variant Requires Shipping",
    "Variant Taxable",
    "Variant Barcode",
    "Image Src",
    "Image Position",
    "Image Alt Text",
    "Gift Card",
    "SEO Title",
    "SEO Description",
    "Google Shopping / Google Product Category",
    "Google Shopping / Gender",
    "Google Shopping / Age Group",
    "Google Shopping / MPN",
    "Google Shopping / Condition",
    "Google Shopping / Custom Product",
    "Variant Image",
    "Variant Weight Unit",
    "Variant Tax Code",
    "Cost per item",
    "Included / United States",
    "Price / United States",
    "Compare At Price / United States",
    "Included / International",
    "Price / International",
    "Compare At Price / International",
    "Status",
    COLUMN_BRAND,
    COLUMN_PRODUCT_SKU,
    COLUMN_PRODUCT_BARCODE,
    COLUMN_PRODUCT_WEIGHT,
    COLUMN_ATTRIBUTES,
];

fn col(name: &str) -> usize {
    HEADER.iter().position(|h| *h == name).unwrap_or(0)
}

fn rejected(code: &str, field: &str, message: String) -> ConnectorError {
    ConnectorError::rejected(code, message).with_field(field)
}

/// The rows of one product, or why Shopify CSV cannot hold it.
pub fn product_rows(
    handle: &str,
    product: &Product,
    currency: Currency,
) -> Result<Vec<Vec<String>>, ConnectorError> {
    if handle.trim().is_empty() {
        return Err(rejected(
            "csv_no_handle",
            "handle",
            "a product needs a handle".to_owned(),
        ));
    }
    if product.currency != currency {
        return Err(rejected(
            "csv_currency_mismatch",
            "currency",
            format!(
                "prices are in {} but this file holds {} prices",
                product.currency, currency
            ),
        ));
    }
    if let Some(tag) = product.tags.iter().find(|t| t.contains(',')) {
        return Err(rejected(
            "csv_tag_comma",
            "tags",
            format!("tag {tag:?} contains a comma, which Shopify CSV uses between tags"),
        ));
    }
    // Option names in first-seen order.
    let mut names: Vec<&str> = Vec::new();
    for variant in &product.variants {
        for name in variant.options.keys() {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    if names.len() > 3 {
        return Err(rejected(
            "csv_too_many_options",
            "variants",
            format!(
                "{} option names ({}); Shopify products have at most three",
                names.len(),
                names.join(", ")
            ),
        ));
    }
    let single_default = product.variants.len() == 1 && names.is_empty();
    let mut seen = BTreeSet::new();
    if !single_default
        && let Some(twice) = product.variants.iter().find(|v| {
            !seen.insert(
                names
                    .iter()
                    .map(|n| v.options.get(*n).cloned().unwrap_or_default())
                    .collect::<Vec<_>>(),
            )
        })
    {
        return Err(rejected(
            "csv_variants_need_options",
            "variants",
            format!(
                "two variants have the same option values ({:?}); Shopify tells variants apart \
                 by them",
                twice.options
            ),
        ));
    }

    let mut images: Vec<&tidemark_core::Image> = product.images.iter().collect();
    images.sort_by_key(|image| image.position);
    let count = product.variants.len().max(images.len()).max(1);
    let mut rows = vec![vec![String::new(); HEADER.len()]; count];
    for row in &mut rows {
        row[col("Handle")] = handle.to_owned();
    }

    let first = &mut rows[0];
    let mut set = |name: &str, value: String| first[col(name)] = value;
    set("Title", product.title.clone());
    set("Body (HTML)", product.description.clone());
    set("Vendor", product.vendor.clone().unwrap_or_default());
    set("Type", product.category.clone().unwrap_or_default());
    set(
        "Tags",
        product.tags.iter().cloned().collect::<Vec<_>>().join(", "),
    );
    let (status, published) = match product.status {
        ProductStatus::Active => ("active", true),
        ProductStatus::Paused => ("active", false),
        ProductStatus::Draft => ("draft", false),
        ProductStatus::Archived => ("archived", false),
    };
    set(
        "Published",
        if published { "TRUE" } else { "FALSE" }.to_owned(),
    );
    set("Status", status.to_owned());
    set("Gift Card", "FALSE".to_owned());
    if single_default {
        set("Option1 Name", "Title".to_owned());
    } else {
        for (index, name) in names.iter().enumerate() {
            set(&format!("Option{} Name", index + 1), (*name).to_owned());
        }
    }
    set(COLUMN_BRAND, product.brand.clone().unwrap_or_default());
    set(
        COLUMN_PRODUCT_SKU,
        product
            .sku
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
    );
    set(
        COLUMN_PRODUCT_BARCODE,
        product
            .barcode
            .as_ref()
            .map(|b| b.as_str().to_owned())
            .unwrap_or_default(),
    );
    set(
        COLUMN_PRODUCT_WEIGHT,
        product
            .weight_grams
            .map(|w| w.to_string())
            .unwrap_or_default(),
    );
    if !product.attributes.is_empty() {
        set(
            COLUMN_ATTRIBUTES,
            serde_json::to_string(&product.attributes).unwrap_or_default(),
        );
    }

    for (row, variant) in rows.iter_mut().zip(&product.variants) {
        let mut set = |name: &str, value: String| row[col(name)] = value;
        if single_default {
            set("Option1 Value", "Default Title".to_owned());
        } else {
            for (index, name) in names.iter().enumerate() {
                if let Some(value) = variant.options.get(*name) {
                    set(&format!("Option{} Value", index + 1), value.clone());
                }
            }
        }
        let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
        set(
            "Variant SKU",
            text(variant.sku.as_ref().map(|s| s.as_str())),
        );
        set(
            "Variant Barcode",
            text(variant.barcode.as_ref().map(|b| b.as_str())),
        );
        set(
            "Variant Price",
            variant.price.map(|p| p.to_string()).unwrap_or_default(),
        );
        set(
            "Variant Compare At Price",
            variant
                .compare_at_price
                .map(|p| p.to_string())
                .unwrap_or_default(),
        );
        set(
            "Variant Grams",
            variant
                .weight_grams
                .map(|w| w.to_string())
                .unwrap_or_default(),
        );
        if let Some(stock) = variant.stock {
            set("Variant Inventory Tracker", "shopify".to_owned());
            set("Variant Inventory Qty", stock.to_string());
        }
        set("Variant Inventory Policy", "deny".to_owned());
        set("Variant Fulfillment Service", "manual".to_owned());
        set("Variant Requires Shipping", "TRUE".to_owned());
        set("Variant Taxable", "TRUE".to_owned());
        set("Variant Weight Unit", "g".to_owned());
        if let Some(hash) = variant.image_hashes.first() {
            let Some(image) = images.iter().find(|i| i.content_hash == *hash) else {
                return Err(rejected(
                    "csv_variant_image_unknown",
                    "images",
                    format!(
                        "variant {} names image {hash}, which is not one of the product's images",
                        variant
                            .sku
                            .as_ref()
                            .map_or_else(|| format!("{:?}", variant.options), |s| s.to_string())
                    ),
                ));
            };
            set("Variant Image", image.src.clone());
        }
    }
    for ((row, image), position) in rows.iter_mut().zip(&images).zip(1u32..) {
        row[col("Image Src")] = image.src.clone();
        row[col("Image Position")] = position.to_string();
        row[col("Image Alt Text")] = image.alt.clone().unwrap_or_default();
    }
    Ok(rows)
}

/// The whole file for `records` (products only; anything else is skipped).
pub fn write_file(
    records: &[ExternalRecord],
    currency: Currency,
) -> Result<Vec<u8>, ConnectorError> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let io = |e: csv::Error| ConnectorError::fatal(format!("cannot build the CSV text: {e}"));
    writer.write_record(HEADER).map_err(io)?;
    for record in records {
        let RecordContent::Product(product) = &record.content else {
            continue;
        };
        let rows = product_rows(record.external_id.as_str(), product, currency)
            .map_err(|e| e.context(format!("product {}", record.external_id)))?;
        for row in rows {
            writer.write_record(&row).map_err(io)?;
        }
    }
    writer
        .into_inner()
        .map_err(|e| ConnectorError::fatal(format!("cannot build the CSV text: {e}")))
}
