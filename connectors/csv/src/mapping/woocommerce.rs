//! WooCommerce product CSV export → canonical products.
//!
//! One row per product or variation (`Type`: `simple`, `variable`, `grouped`, `external`,
//! `variation`, possibly with `, downloadable, virtual`). Every row but a variation is a
//! product, with external id `ID` (else `SKU`). A variation joins the product its `Parent`
//! names (`id:44` or the parent's SKU) as a variant; a simple or external product is its own
//! single variant (same SKU, price and stock); a grouped product has no variant of its own.
//!
//! Field by field:
//! - `Name` → title; `Description` → description (`Short description` is not read);
//!   `Categories` → category (the first, as its `A > B` path); `Tags` → tags; `Brands` (when the
//!   export has it) → brand; `Published` 1/0/-1 → active/paused (private)/draft.
//! - price: `Sale price` when there is one, with `Regular price` as compare-at; else
//!   `Regular price`. Scheduled sale dates are not evaluated (the file says nothing of today).
//! - `Stock` → stock (empty: not managed); `Weight (UNIT)` → grams (lbs, oz, kg, g); a
//!   variation without a weight inherits its parent's, as in WooCommerce.
//! - `Images` (comma-separated URLs) → images in that order; a variation's first image is its
//!   variant image, added to the parent's images when not listed there.
//! - `Attribute N name` / `Attribute N value(s)`: on a variation, its option (an empty value
//!   means "any" and gives no option); on a variable product, names its variations use are
//!   variation axes, others are attributes; on other products every attribute is an
//!   attribute (`name` → `value(s)` as written).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use rust_decimal::Decimal;
use tidemark_core::hash::image_hash_url;
use tidemark_core::{
    ContentHash, Currency, ExternalId, ExternalRecord, Image, ImageHashSource, Product,
    ProductStatus, RecordContent, Sku, Variant,
};

use super::{
    Catalog, CellError, Layout, MAX_ROWS_PER_PRODUCT, Row, Table, image_external_id, integer,
    non_negative, opt, split_list,
};
use crate::error::{CsvError, RecordIssue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Simple,
    Variable,
    Grouped,
    External,
    Variation,
}

/// Grams per unit of WooCommerce's weight units.
fn grams_per(unit: &str) -> Option<Decimal> {
    Some(match unit {
        "g" => Decimal::ONE,
        "kg" => Decimal::new(1000, 0),
        "lbs" | "lb" => Decimal::new(45_359_237, 5),
        "oz" => Decimal::new(28_349_523_125, 9),
        _ => return None,
    })
}

struct Parsed {
    id: ExternalId,
    product: Product,
    /// The row's attributes (name, value(s)); on a variable product, those no variation uses
    /// become product attributes.
    attributes: Vec<(String, String)>,
    /// Attribute names the product's variation rows name, with a value or "any".
    axes: BTreeSet<String>,
    /// Content hashes of `product.images`, so variations add theirs without a search.
    image_hashes: HashSet<ContentHash>,
    kind: Kind,
    /// The row's own SKU and `ID`, to resolve `Parent`.
    sku: String,
    wc_id: String,
}

pub fn read(table: &Table, path: &Path, currency: Currency) -> Result<Catalog, CsvError> {
    let weight = weight_column(table, path)?;
    // The `Attribute N name` / `value(s)` column names, made once (not per row).
    let attribute_columns: Vec<(String, String)> = (1..)
        .map(|n| {
            (
                format!("Attribute {n} name"),
                format!("Attribute {n} value(s)"),
            )
        })
        .take_while(|(name, _)| table.has(name))
        .collect();
    let attribute_columns = attribute_columns.as_slice();

    let mut problems: Vec<RecordIssue> = Vec::new();
    let mut parents: Vec<Parsed> = Vec::new();
    let mut failed_parents: BTreeSet<String> = BTreeSet::new();
    let mut variations: Vec<&Row> = Vec::new();
    for row in &table.rows {
        let kind = match kind(table, row) {
            Ok(kind) => kind,
            Err(e) => {
                problems.push(e.into_issue(row_id(table, row)));
                continue;
            }
        };
        if kind == Kind::Variation {
            variations.push(row);
            continue;
        }
        let id = row_id(table, row);
        match parent(
            table,
            row,
            kind,
            &id,
            weight.as_ref(),
            attribute_columns,
            currency,
        ) {
            Ok(parsed) => parents.push(parsed),
            Err(e) => {
                failed_parents.insert(table.cell(row, "SKU").to_owned());
                failed_parents.insert(format!("id:{}", table.cell(row, "ID")));
                problems.push(e.into_issue(id));
            }
        }
    }

    let by_sku: HashMap<String, usize> = parents
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.sku.is_empty())
        .map(|(at, p)| (p.sku.clone(), at))
        .collect();
    let by_id: HashMap<String, usize> = parents
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.wc_id.is_empty())
        .map(|(at, p)| (format!("id:{}", p.wc_id), at))
        .collect();
    let mut broken: BTreeMap<usize, RecordIssue> = BTreeMap::new();
    for row in variations {
        let parent_ref = table.cell(row, "Parent");
        let Some(&at) = by_id.get(parent_ref).or_else(|| by_sku.get(parent_ref)) else {
            let message = if failed_parents.contains(parent_ref) {
                format!("its parent {parent_ref:?} could not be read (see that row's issue)")
            } else {
                format!("the variation's parent {parent_ref:?} is not a product in this file")
            };
            problems.push(
                CellError::new(row, "Parent", parent_ref, message).into_issue(row_id(table, row)),
            );
            continue;
        };
        if broken.contains_key(&at) {
            continue;
        }
        let parent = &mut parents[at];
        if parent.product.variants.len() >= MAX_ROWS_PER_PRODUCT {
            broken.insert(
                at,
                CellError::new(
                    row,
                    "Parent",
                    parent_ref,
                    format!("the product has more than {MAX_ROWS_PER_PRODUCT} variations"),
                )
                .into_issue(parent.id.clone()),
            );
            continue;
        }
        if parent.kind != Kind::Variable {
            broken.insert(
                at,
                CellError::new(
                    row,
                    "Parent",
                    parent_ref,
                    format!("a variation of a {:?} product", parent.kind),
                )
                .into_issue(parent.id.clone()),
            );
            continue;
        }
        match variation(table, row, parent, weight.as_ref(), attribute_columns) {
            Ok(variant) => parent.product.variants.push(variant),
            // The product would be read without this variant: skip it whole instead.
            Err(e) => {
                broken.insert(at, e.into_issue(parent.id.clone()));
            }
        }
    }

    let mut products = Vec::with_capacity(parents.len());
    for (at, mut parsed) in parents.into_iter().enumerate() {
        if let Some(issue) = broken.remove(&at) {
            problems.push(issue);
            continue;
        }
        if parsed.kind == Kind::Variable {
            for (name, value) in &parsed.attributes {
                if !parsed.axes.contains(name) {
                    parsed
                        .product
                        .attributes
                        .insert(name.clone(), value.clone());
                }
            }
        }
        for (position, image) in (0u32..).zip(parsed.product.images.iter_mut()) {
            image.position = position;
        }
        products.push(ExternalRecord {
            external_id: parsed.id,
            updated_at: None,
            content: RecordContent::Product(parsed.product),
        });
    }
    Ok(Catalog::new(
        Layout::WooCommerce,
        products,
        problems,
        Vec::new(),
    ))
}

/// The `Weight (UNIT)` column and grams per unit, if the export has one.
fn weight_column(table: &Table, path: &Path) -> Result<Option<(String, Decimal)>, CsvError> {
    let Some(column) = table.column_starting_with("Weight (") else {
        return Ok(None);
    };
    let unit = column
        .trim_start_matches("Weight (")
        .trim_end_matches(')')
        .trim();
    match grams_per(unit) {
        Some(factor) => Ok(Some((column.to_owned(), factor))),
        None => Err(CsvError::Malformed {
            path: path.to_owned(),
            line: 1,
            column: Some(column.to_owned()),
            message: format!("unknown weight unit {unit:?} (expected lbs, oz, kg or g)"),
        }),
    }
}

fn row_id(table: &Table, row: &Row) -> ExternalId {
    let id = table.cell(row, "ID");
    let sku = table.cell(row, "SKU");
    ExternalId::new(if !id.is_empty() {
        id.to_owned()
    } else if !sku.is_empty() {
        sku.to_owned()
    } else {
        format!("line {}", row.line)
    })
}

fn kind(table: &Table, row: &Row) -> Result<Kind, CellError> {
    let text = table.cell(row, "Type");
    let words = split_list(text, true);
    let has = |word: &str| words.iter().any(|w| w.eq_ignore_ascii_case(word));
    Ok(if has("variation") {
        Kind::Variation
    } else if has("variable") {
        Kind::Variable
    } else if has("grouped") {
        Kind::Grouped
    } else if has("external") {
        Kind::External
    } else if has("simple") || (text.is_empty() && !table.cell(row, "Name").is_empty()) {
        Kind::Simple
    } else {
        return Err(CellError::new(
            row,
            "Type",
            text,
            format!("{text:?} is not a WooCommerce product type"),
        ));
    })
}

fn weight(
    table: &Table,
    row: &Row,
    column: Option<&(String, Decimal)>,
) -> Result<Option<Decimal>, CellError> {
    let Some((name, factor)) = column else {
        return Ok(None);
    };
    let Some(value) = non_negative(table, row, name)? else {
        return Ok(None);
    };
    // `Decimal`'s `*` panics on overflow: an absurd weight is the record's problem, not a
    // crash of the daemon.
    value.checked_mul(*factor).map(Some).ok_or_else(|| {
        let text = table.cell(row, name);
        CellError::new(
            row,
            name,
            text,
            format!("{text:?} is too large a weight to convert to grams"),
        )
    })
}

/// (price, compare-at) from `Sale price` and `Regular price`.
fn prices(table: &Table, row: &Row) -> Result<(Option<Decimal>, Option<Decimal>), CellError> {
    let regular = non_negative(table, row, "Regular price")?;
    let sale = non_negative(table, row, "Sale price")?;
    Ok(match sale {
        Some(sale) => (Some(sale), regular),
        None => (regular, None),
    })
}

fn images(table: &Table, row: &Row, id: &ExternalId) -> (Vec<Image>, HashSet<ContentHash>) {
    let mut images: Vec<Image> = Vec::new();
    let mut seen = HashSet::new();
    for src in split_list(table.cell(row, "Images"), true) {
        let hash = image_hash_url(&src);
        if !seen.insert(hash) {
            continue;
        }
        images.push(Image {
            external_id: Some(image_external_id(id, &src)),
            content_hash: hash,
            hash_source: ImageHashSource::Url,
            position: u32::try_from(images.len()).unwrap_or(u32::MAX),
            alt: None,
            src,
        });
    }
    (images, seen)
}

fn attributes(table: &Table, row: &Row, columns: &[(String, String)]) -> Vec<(String, String)> {
    columns
        .iter()
        .filter_map(|(name_column, value_column)| {
            let name = table.cell(row, name_column);
            (!name.is_empty()).then(|| (name.to_owned(), table.cell(row, value_column).to_owned()))
        })
        .collect()
}

fn parent(
    table: &Table,
    row: &Row,
    kind: Kind,
    id: &ExternalId,
    weight_column: Option<&(String, Decimal)>,
    attribute_columns: &[(String, String)],
    currency: Currency,
) -> Result<Parsed, CellError> {
    let cell = |column: &str| table.cell(row, column);
    let published = cell("Published");
    let status = match published {
        "1" | "" => ProductStatus::Active,
        "0" => ProductStatus::Paused,
        "-1" => ProductStatus::Draft,
        _ => {
            return Err(CellError::new(
                row,
                "Published",
                published,
                format!("{published:?} is not 1 (published), 0 (private) or -1 (draft)"),
            ));
        }
    };
    let weight_grams = weight(table, row, weight_column)?;
    let (price, compare_at_price) = prices(table, row)?;
    let stock = integer(table, row, "Stock")?;
    let sku = opt(cell("SKU")).map(Sku);
    let attributes = attributes(table, row, attribute_columns);
    let variants = match kind {
        Kind::Simple | Kind::External => vec![Variant {
            external_id: Some(id.clone()),
            sku: sku.clone(),
            barcode: None,
            options: BTreeMap::new(),
            price,
            compare_at_price,
            stock,
            weight_grams,
            image_hashes: Vec::new(),
        }],
        _ => Vec::new(),
    };
    let (images, image_hashes) = images(table, row, id);
    let product = Product {
        sku,
        title: cell("Name").to_owned(),
        description: table.raw(row, "Description").to_owned(),
        brand: opt(cell("Brands")).or_else(|| opt(cell("Brand"))),
        vendor: None,
        category: split_list(cell("Categories"), true).into_iter().next(),
        tags: split_list(cell("Tags"), true).into_iter().collect(),
        barcode: None,
        weight_grams,
        status,
        attributes: if kind == Kind::Variable {
            BTreeMap::new()
        } else {
            attributes.iter().cloned().collect()
        },
        currency,
        images,
        variants,
    };
    Ok(Parsed {
        id: id.clone(),
        product,
        attributes,
        axes: BTreeSet::new(),
        image_hashes,
        kind,
        sku: cell("SKU").to_owned(),
        wc_id: cell("ID").to_owned(),
    })
}

fn variation(
    table: &Table,
    row: &Row,
    parent: &mut Parsed,
    weight_column: Option<&(String, Decimal)>,
    attribute_columns: &[(String, String)],
) -> Result<Variant, CellError> {
    let (price, compare_at_price) = prices(table, row)?;
    let mut options = BTreeMap::new();
    for (name, value) in attributes(table, row, attribute_columns) {
        parent.axes.insert(name.clone());
        if !value.is_empty() {
            options.insert(name, value);
        }
    }
    let mut image_hashes = Vec::new();
    if let Some(src) = split_list(table.cell(row, "Images"), true)
        .into_iter()
        .next()
    {
        let hash = image_hash_url(&src);
        let images = &mut parent.product.images;
        if parent.image_hashes.insert(hash) {
            images.push(Image {
                external_id: Some(image_external_id(&parent.id, &src)),
                content_hash: hash,
                hash_source: ImageHashSource::Url,
                position: u32::try_from(images.len()).unwrap_or(u32::MAX),
                alt: None,
                src,
            });
        }
        image_hashes.push(hash);
    }
    Ok(Variant {
        external_id: Some(row_id(table, row)),
        sku: opt(table.cell(row, "SKU")).map(Sku),
        barcode: None,
        options,
        price,
        compare_at_price,
        stock: integer(table, row, "Stock")?,
        weight_grams: weight(table, row, weight_column)?.or(parent.product.weight_grams),
        image_hashes,
    })
}
