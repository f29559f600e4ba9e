//! Shopify product CSV → canonical products.
//!
//! Rows are grouped by `Handle` (the external id). The first row of a handle carries the
//! product's fields and option names (`Option1 Name`…); every row that has a variant cell
//! (an option value or any `Variant …` column but `Variant Image`) is one more variant; every
//! row with an `Image Src` adds an image (`Image Position`, 1-based, and `Image Alt Text`).
//! `Variant Image` names the variant's image, added to the product's images when no row lists
//! it. The single variant Shopify writes as `Title` / `Default Title` has no options.
//!
//! Field by field:
//! - `Title` → title; `Body (HTML)` → description (kept as written, line breaks included);
//!   `Vendor` → vendor; `Product Category` → category, else `Type`; `Tags` → tags.
//! - status: `Status` (`active`, `draft`, `archived`, `unlisted`) with `Published`: active and
//!   published is active, active and not published is paused (selling nowhere visible), and
//!   `unlisted` is paused too; without a `Status` column (the older layout) `Published` false
//!   is draft.
//! - `Variant SKU`, `Variant Barcode` (as written: core's normalisation strips Excel's leading
//!   apostrophe and drops scientific notation such as `3.65275E+11` with a warning),
//!   `Variant Price`, `Variant Compare At Price` (decimals), `Variant Inventory Qty` (stock),
//!   `Variant Grams` (grams whatever `Variant Weight Unit` says: the unit is only how Shopify
//!   displays it).
//! - tidemark's own columns, `… (product.metafields.tidemark.KEY)` for `brand`, `sku`,
//!   `barcode`, `weight_grams` and `attributes` (a JSON object), hold what Shopify's columns
//!   cannot; see [`super::writer`].
//! - prices are in the connection's currency; per-market price columns are not read.

use std::collections::{BTreeMap, HashMap, HashSet};

use tidemark_core::hash::image_hash_url;
use tidemark_core::{
    Barcode, ContentHash, Currency, ExternalId, ExternalRecord, Image, ImageHashSource, Product,
    ProductStatus, RecordContent, Sku, Variant,
};

use super::{
    Catalog, CellError, Layout, MAX_ROWS_PER_PRODUCT, Row, Table, image_external_id, integer,
    non_negative, opt, split_list, variant_external_id,
};
use crate::error::RecordIssue;

/// tidemark's metafield columns (see [`super::writer`]).
pub const COLUMN_BRAND: &str = "Brand (product.metafields.tidemark.brand)";
pub const COLUMN_PRODUCT_SKU: &str = "Product SKU (product.metafields.tidemark.sku)";
pub const COLUMN_PRODUCT_BARCODE: &str = "Product Barcode (product.metafields.tidemark.barcode)";
pub const COLUMN_PRODUCT_WEIGHT: &str =
    "Product Weight Grams (product.metafields.tidemark.weight_grams)";
pub const COLUMN_ATTRIBUTES: &str = "Attributes (product.metafields.tidemark.attributes)";

/// The columns whose value makes a row a variant row.
const VARIANT_COLUMNS: [&str; 12] = [
    "Option1 Value",
    "Option2 Value",
    "Option3 Value",
    "Variant SKU",
    "Variant Grams",
    "Variant Inventory Qty",
    "Variant Inventory Policy",
    "Variant Fulfillment Service",
    "Variant Price",
    "Variant Compare At Price",
    "Variant Barcode",
    "Variant Weight Unit",
];

pub fn read(table: &Table, layout: Layout, currency: Currency) -> Catalog {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<&Row>> = HashMap::new();
    let mut problems = Vec::new();
    for row in &table.rows {
        let handle = table.cell(row, "Handle");
        if handle.is_empty() {
            problems.push(RecordIssue {
                external_id: ExternalId::new(format!("line {}", row.line)),
                line: row.line,
                column: "Handle".to_owned(),
                value: String::new(),
                message: "the row has no handle, so it belongs to no product".to_owned(),
            });
            continue;
        }
        groups
            .entry(handle.to_owned())
            .or_insert_with(|| {
                order.push(handle.to_owned());
                Vec::new()
            })
            .push(row);
    }
    let mut products = Vec::with_capacity(order.len());
    for handle in order {
        let rows = groups.remove(&handle).unwrap_or_default();
        let id = ExternalId::new(handle);
        match product(table, &id, &rows, layout, currency) {
            Ok(product) => products.push(ExternalRecord {
                external_id: id,
                updated_at: None,
                content: RecordContent::Product(product),
            }),
            Err(e) => problems.push(e.into_issue(id)),
        }
    }
    Catalog::new(layout, products, problems, Vec::new())
}

fn product(
    table: &Table,
    id: &ExternalId,
    rows: &[&Row],
    layout: Layout,
    currency: Currency,
) -> Result<Product, CellError> {
    let Some(first) = rows.first() else {
        return Err(CellError {
            line: 0,
            column: "Handle".to_owned(),
            value: id.to_string(),
            message: "no rows".to_owned(),
        });
    };
    if rows.len() > MAX_ROWS_PER_PRODUCT {
        return Err(CellError::new(
            first,
            "Handle",
            id.as_str(),
            format!(
                "the product spans {} rows; at most {MAX_ROWS_PER_PRODUCT} are read (one per \
                 variant or image)",
                rows.len()
            ),
        ));
    }
    let cell = |column: &str| table.cell(first, column);
    let option_names: [&str; 3] = [
        cell("Option1 Name"),
        cell("Option2 Name"),
        cell("Option3 Name"),
    ];

    // Images first, so variant images can point at them.
    let mut listed: Vec<(Option<i64>, usize, String, Option<String>)> = Vec::new();
    for (at, row) in rows.iter().enumerate() {
        let src = table.cell(row, "Image Src");
        if src.is_empty() {
            continue;
        }
        let position = integer(table, row, "Image Position")?;
        listed.push((
            position,
            at,
            src.to_owned(),
            opt(table.cell(row, "Image Alt Text")),
        ));
    }
    // Listed positions first (stable for ties), rows without a position after, in row order.
    listed.sort_by_key(|(position, at, ..)| (position.is_none(), *position, *at));
    let mut images = Images::default();
    for (_, _, src, alt) in listed {
        images.push(id, &src, alt);
    }

    let mut variants = Vec::new();
    for row in rows {
        if !VARIANT_COLUMNS
            .iter()
            .any(|column| !table.cell(row, column).is_empty())
        {
            continue;
        }
        let mut options = BTreeMap::new();
        for (index, name) in option_names.iter().enumerate() {
            let column = format!("Option{} Value", index + 1);
            let value = table.cell(row, &column);
            if value.is_empty() {
                continue;
            }
            if name.is_empty() {
                return Err(CellError::new(
                    row,
                    &column,
                    value,
                    format!(
                        "an option value without an option name (Option{} Name is empty on the \
                         product's first row, line {})",
                        index + 1,
                        first.line
                    ),
                ));
            }
            if *name == "Title" && value == "Default Title" {
                continue;
            }
            if options
                .insert((*name).to_owned(), value.to_owned())
                .is_some()
            {
                return Err(CellError::new(
                    row,
                    &column,
                    value,
                    format!("option {name:?} is named twice"),
                ));
            }
        }
        let image_hashes = match table.cell(row, "Variant Image") {
            "" => Vec::new(),
            src => vec![images.push(id, src, None)],
        };
        let mut variant = Variant {
            external_id: None,
            sku: opt(table.cell(row, "Variant SKU")).map(Sku),
            barcode: opt(table.cell(row, "Variant Barcode")).map(Barcode),
            options,
            price: non_negative(table, row, "Variant Price")?,
            compare_at_price: non_negative(table, row, "Variant Compare At Price")?,
            stock: integer(table, row, "Variant Inventory Qty")?,
            weight_grams: non_negative(table, row, "Variant Grams")?,
            image_hashes,
        };
        variant.external_id = Some(variant_external_id(id, &variant));
        variants.push(variant);
    }
    let mut images = images.list;
    for (position, image) in (0u32..).zip(images.iter_mut()) {
        image.position = position;
    }

    let attributes = match table.raw(first, COLUMN_ATTRIBUTES).trim() {
        "" => BTreeMap::new(),
        text => serde_json::from_str::<BTreeMap<String, String>>(text).map_err(|e| {
            CellError::new(
                first,
                COLUMN_ATTRIBUTES,
                text,
                format!("not a JSON object of text values: {e}"),
            )
        })?,
    };

    Ok(Product {
        sku: opt(cell(COLUMN_PRODUCT_SKU)).map(Sku),
        title: cell("Title").to_owned(),
        description: table.raw(first, "Body (HTML)").to_owned(),
        brand: opt(cell(COLUMN_BRAND)),
        vendor: opt(cell("Vendor")),
        category: opt(cell("Product Category")).or_else(|| opt(cell("Type"))),
        tags: split_list(cell("Tags"), false).into_iter().collect(),
        barcode: opt(cell(COLUMN_PRODUCT_BARCODE)).map(Barcode),
        weight_grams: non_negative(table, first, COLUMN_PRODUCT_WEIGHT)?,
        status: status(table, first, layout)?,
        attributes,
        currency,
        images,
        variants,
    })
}

/// A product's images in order, each once (by content hash, looked up in a set: a product of
/// many rows must not cost rows × images comparisons).
#[derive(Default)]
struct Images {
    list: Vec<Image>,
    seen: HashSet<ContentHash>,
}

impl Images {
    /// Adds `src` unless it is there already; its content hash either way.
    fn push(&mut self, product: &ExternalId, src: &str, alt: Option<String>) -> ContentHash {
        let hash = image_hash_url(src);
        if self.seen.insert(hash) {
            self.list.push(Image {
                external_id: Some(image_external_id(product, src)),
                src: src.trim().to_owned(),
                content_hash: hash,
                hash_source: ImageHashSource::Url,
                position: u32::try_from(self.list.len()).unwrap_or(u32::MAX),
                alt,
            });
        }
        hash
    }
}

fn status(table: &Table, row: &Row, layout: Layout) -> Result<ProductStatus, CellError> {
    let published = super::boolean(table, row, "Published")?;
    let text = table.cell(row, "Status");
    let status = match text.to_ascii_lowercase().as_str() {
        "" if layout == Layout::ShopifyLegacy || !table.has("Status") => match published {
            Some(false) => ProductStatus::Draft,
            _ => ProductStatus::Active,
        },
        "" | "active" => match published {
            Some(false) => ProductStatus::Paused,
            _ => ProductStatus::Active,
        },
        "draft" => ProductStatus::Draft,
        "archived" => ProductStatus::Archived,
        "unlisted" => ProductStatus::Paused,
        _ => {
            return Err(CellError::new(
                row,
                "Status",
                text,
                format!("{text:?} is not a Shopify product status (active, draft, archived)"),
            ));
        }
    };
    Ok(status)
}
