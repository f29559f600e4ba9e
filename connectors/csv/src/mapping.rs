//! CSV rows ↔ canonical products.
//!
//! [`read_catalog`] parses a file into a [`Table`] (header + rows with their line numbers),
//! detects the [`Layout`] and hands the rows to [`shopify`] or [`woocommerce`]; [`writer`] turns
//! products into Shopify CSV. Cells are parsed strictly: a price that is not a decimal number,
//! a quantity that is not an integer, a status nobody defined — each makes its record a
//! [`RecordIssue`] (left out of the products, reported, and keeping a full scan from
//! completing; see [`crate::connector`]) instead of a guess. Arithmetic on values from the file
//! is checked: an overflow is a [`RecordIssue`] too, never a panic.

pub mod shopify;
pub mod woocommerce;
pub mod writer;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use rust_decimal::Decimal;
use tidemark_core::{Currency, ExternalId, ExternalRecord, Product};

use crate::config::LayoutSetting;
use crate::error::{CsvError, RecordIssue};

/// The layouts tidemark reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layout {
    /// Shopify's product CSV with `Status` (and usually `Product Category` and per-market
    /// columns): the layout tidemark writes.
    ShopifyCurrent,
    /// Shopify's older product CSV: no `Status`, `Google Shopping / AdWords*` columns.
    ShopifyLegacy,
    /// WooCommerce's product CSV exporter (`ID`, `Type`, `SKU`, `Parent`, `Attribute N …`).
    WooCommerce,
}

impl Layout {
    pub fn is_shopify(self) -> bool {
        matches!(self, Layout::ShopifyCurrent | Layout::ShopifyLegacy)
    }

    /// From the header alone, or `None` when it is neither platform's export.
    pub fn detect(header: &[String]) -> Option<Layout> {
        let has = |name: &str| header.iter().any(|h| h == name);
        if has("Handle") && (has("Title") || has("Variant SKU") || has("Option1 Value")) {
            return Some(if has("Status") {
                Layout::ShopifyCurrent
            } else {
                Layout::ShopifyLegacy
            });
        }
        if has("Type") && has("SKU") && has("Name") && (has("Regular price") || has("Parent")) {
            return Some(Layout::WooCommerce);
        }
        None
    }
}

/// What one read of a file produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub layout: Layout,
    /// In file order (the order of each product's first row), each once.
    pub products: Vec<ExternalRecord>,
    /// Records skipped because a cell could not be read: never in `products`. While any are
    /// here a full scan does not complete (it would make them look deleted).
    pub problems: Vec<RecordIssue>,
    /// Values dropped from records that were kept (a variant image URL that is not an http(s)
    /// URL, an attribute with no name, …).
    pub notices: Vec<RecordIssue>,
    index: BTreeMap<ExternalId, usize>,
}

impl Catalog {
    pub(crate) fn new(
        layout: Layout,
        products: Vec<ExternalRecord>,
        problems: Vec<RecordIssue>,
        notices: Vec<RecordIssue>,
    ) -> Self {
        let index = products
            .iter()
            .enumerate()
            .map(|(at, record)| (record.external_id.clone(), at))
            .collect();
        Self {
            layout,
            products,
            problems,
            notices,
            index,
        }
    }

    /// A target file that does not exist yet.
    pub fn empty() -> Self {
        Self::new(Layout::ShopifyCurrent, Vec::new(), Vec::new(), Vec::new())
    }

    pub fn get(&self, id: &ExternalId) -> Option<&ExternalRecord> {
        self.index.get(id).map(|&at| &self.products[at])
    }

    /// The problem that kept `id` out of `products`, if any.
    pub fn problem(&self, id: &ExternalId) -> Option<&RecordIssue> {
        self.problems.iter().find(|p| &p.external_id == id)
    }

    pub fn product(&self, id: &ExternalId) -> Option<&Product> {
        match self.get(id).map(|r| &r.content) {
            Some(tidemark_core::RecordContent::Product(p)) => Some(p),
            _ => None,
        }
    }
}

/// What a reader needs besides the rows.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub layout: LayoutSetting,
    pub currency: Currency,
}

/// Parses a whole file (`bytes`, as read from `path`) into products.
pub fn read_catalog(path: &Path, bytes: &[u8], options: ReadOptions) -> Result<Catalog, CsvError> {
    let table = Table::parse(path, bytes)?;
    let detected = Layout::detect(&table.header);
    let layout = match (options.layout, detected) {
        (LayoutSetting::Auto, Some(layout)) => layout,
        (LayoutSetting::Shopify, Some(layout)) if layout.is_shopify() => layout,
        (LayoutSetting::Woocommerce, Some(Layout::WooCommerce)) => Layout::WooCommerce,
        (setting, detected) => {
            return Err(CsvError::Layout {
                path: path.to_owned(),
                message: format!(
                    "the header {} (settings ask for {setting:?}); a Shopify product CSV has \
                     `Handle` and `Title`, a WooCommerce export has `Type`, `SKU`, `Name` and \
                     `Regular price`",
                    match detected {
                        Some(layout) => format!("is a {layout:?} export"),
                        None => "is neither a Shopify nor a WooCommerce product export".to_owned(),
                    }
                ),
            });
        }
    };
    Ok(match layout {
        Layout::ShopifyCurrent | Layout::ShopifyLegacy => {
            shopify::read(&table, layout, options.currency)
        }
        Layout::WooCommerce => woocommerce::read(&table, path, options.currency)?,
    })
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// A parsed CSV file: header names and rows, each row with the line it starts on.
#[derive(Debug)]
pub struct Table {
    pub header: Vec<String>,
    columns: HashMap<String, usize>,
    pub rows: Vec<Row>,
}

#[derive(Debug)]
pub struct Row {
    /// 1-based physical line where the row starts (the header is line 1).
    pub line: u64,
    cells: Vec<String>,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The most columns a header may name. Shopify's current export has about 50 plus a few per
/// market, WooCommerce's about 40 plus 4 per attribute: a header past this is not a product
/// export (or not split on the right delimiter), and every row is checked against it.
pub const MAX_COLUMNS: usize = 10_000;

/// The most rows one product may span (Shopify: one per variant or image, at most 2,048
/// variants and 250 images) or variations one WooCommerce product may have. Beyond it the
/// record is a problem rather than a product: reading and later updating a product costs time
/// growing with the square of its variants.
pub const MAX_ROWS_PER_PRODUCT: usize = 10_000;

impl Table {
    /// Parses `bytes`; a UTF-8 byte order mark is skipped. Rows shorter than the header read
    /// as empty in the missing cells (exporters drop trailing empty cells); a header of more
    /// than [`MAX_COLUMNS`] columns, a row longer than the header, text that is not UTF-8, or a
    /// quote left open is [`CsvError::Malformed`].
    ///
    /// Memory stays proportional to the file: rows are not padded to the header's width (a wide
    /// header over many short rows would multiply), and a row's cells are checked against the
    /// header before they are decoded.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, CsvError> {
        let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut records = reader.byte_records();
        let malformed = |line: u64, column: Option<String>, message: String| CsvError::Malformed {
            path: path.to_owned(),
            line,
            column,
            message,
        };
        let header_record = match records.next() {
            None => return Err(malformed(1, None, "the file is empty".to_owned())),
            Some(Err(e)) => return Err(csv_error(path, &e, &[])),
            Some(Ok(record)) => record,
        };
        if header_record.len() > MAX_COLUMNS {
            return Err(malformed(
                1,
                None,
                format!(
                    "the header has {} columns; a product export has at most {MAX_COLUMNS} (is \
                     the file a product CSV, separated by commas?)",
                    header_record.len()
                ),
            ));
        }
        let header = decode_cells(&header_record, &[])
            .map_err(|(column, message)| malformed(1, column, message))?
            .into_iter()
            .map(|name| name.trim().to_owned())
            .collect::<Vec<_>>();
        let mut columns = HashMap::new();
        for (at, name) in header.iter().enumerate() {
            if !name.is_empty() {
                columns.entry(name.clone()).or_insert(at);
            }
        }
        let mut rows = Vec::new();
        for record in records {
            let record = record.map_err(|e| csv_error(path, &e, &header))?;
            let line = record.position().map_or(0, |p| p.line());
            // Trailing empty cells beyond the header are harmless (a stray comma).
            if record
                .iter()
                .skip(header.len())
                .any(|c| !c.trim_ascii().is_empty())
            {
                return Err(malformed(
                    line,
                    None,
                    format!(
                        "the row has {} fields but the header names {}: a field with a comma \
                         or a quote is probably not quoted",
                        record.len(),
                        header.len()
                    ),
                ));
            }
            let mut cells = decode_cells(&record, &header)
                .map_err(|(column, message)| malformed(line, column, message))?;
            if cells.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            // Not padded: a missing cell reads as empty (`raw`). Trailing empty cells are
            // dropped so the row holds only what it says.
            while cells.last().is_some_and(String::is_empty) {
                cells.pop();
            }
            cells.shrink_to_fit();
            rows.push(Row { line, cells });
        }
        Ok(Self {
            header,
            columns,
            rows,
        })
    }

    pub fn has(&self, column: &str) -> bool {
        self.columns.contains_key(column)
    }

    /// The cell of `column` in `row`, trimmed; empty when the file has no such column.
    pub fn cell<'a>(&self, row: &'a Row, column: &str) -> &'a str {
        self.raw(row, column).trim()
    }

    /// The cell as written (HTML bodies keep their whitespace).
    pub fn raw<'a>(&self, row: &'a Row, column: &str) -> &'a str {
        self.columns
            .get(column)
            .and_then(|&at| row.cells.get(at))
            .map_or("", String::as_str)
    }

    /// The first header name that starts with `prefix` (`Weight (` finds `Weight (lbs)`).
    pub fn column_starting_with(&self, prefix: &str) -> Option<&str> {
        self.header
            .iter()
            .find(|h| h.starts_with(prefix))
            .map(String::as_str)
    }
}

/// The cells of `record` as text, at most one per header column when there is a header (the
/// caller checked that cells beyond it are empty).
fn decode_cells(
    record: &csv::ByteRecord,
    header: &[String],
) -> Result<Vec<String>, (Option<String>, String)> {
    let width = if header.is_empty() {
        record.len()
    } else {
        header.len()
    };
    record
        .iter()
        .take(width)
        .enumerate()
        .map(|(at, bytes)| {
            String::from_utf8(bytes.to_vec()).map_err(|e| {
                (
                    Some(column_name(header, at)),
                    format!(
                        "not UTF-8 text (byte {} of the field; save the file as UTF-8)",
                        e.utf8_error().valid_up_to() + 1
                    ),
                )
            })
        })
        .collect()
}

fn column_name(header: &[String], at: usize) -> String {
    header
        .get(at)
        .cloned()
        .unwrap_or_else(|| format!("#{}", at + 1))
}

fn csv_error(path: &Path, error: &csv::Error, header: &[String]) -> CsvError {
    let line = error.position().map_or(0, csv::Position::line);
    let column = match error.kind() {
        csv::ErrorKind::Utf8 { err, .. } => Some(column_name(header, err.field())),
        _ => None,
    };
    CsvError::Malformed {
        path: path.to_owned(),
        line,
        column,
        message: error.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Cells
// ---------------------------------------------------------------------------------------------

/// Why one cell could not be read; the readers turn it into a [`RecordIssue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    pub line: u64,
    pub column: String,
    pub value: String,
    pub message: String,
}

impl CellError {
    pub fn new(row: &Row, column: &str, value: &str, message: impl Into<String>) -> Self {
        Self {
            line: row.line,
            column: column.to_owned(),
            value: value.to_owned(),
            message: message.into(),
        }
    }

    pub fn into_issue(self, external_id: ExternalId) -> RecordIssue {
        RecordIssue {
            external_id,
            line: self.line,
            column: self.column,
            value: self.value,
            message: self.message,
        }
    }
}

/// A decimal amount (`25`, `64.95`, `.5`), or `None` for an empty cell. Never a float: the
/// text is parsed digit by digit. Thousands separators, currency signs and scientific notation
/// are refused rather than guessed at.
pub fn decimal(table: &Table, row: &Row, column: &str) -> Result<Option<Decimal>, CellError> {
    let text = table.cell(row, column);
    if text.is_empty() {
        return Ok(None);
    }
    let digits = if let Some(rest) = text.strip_prefix('.') {
        format!("0.{rest}")
    } else if let Some(rest) = text.strip_prefix("-.") {
        format!("-0.{rest}")
    } else {
        text.to_owned()
    };
    let plain = digits
        .strip_prefix('-')
        .unwrap_or(&digits)
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.');
    match Decimal::from_str(&digits) {
        Ok(value) if plain => Ok(Some(value)),
        _ => Err(CellError::new(
            row,
            column,
            text,
            format!("{text:?} is not a decimal number (write it like 1234.50)"),
        )),
    }
}

/// [`decimal`], refusing negative amounts (prices, weights).
pub fn non_negative(table: &Table, row: &Row, column: &str) -> Result<Option<Decimal>, CellError> {
    let value = decimal(table, row, column)?;
    if value.is_some_and(|v| v.is_sign_negative() && !v.is_zero()) {
        let text = table.cell(row, column);
        return Err(CellError::new(
            row,
            column,
            text,
            format!("{text:?} is negative"),
        ));
    }
    Ok(value)
}

/// A whole number (`12`, `-3`, and `12.0` as Excel writes it), or `None` for an empty cell.
pub fn integer(table: &Table, row: &Row, column: &str) -> Result<Option<i64>, CellError> {
    let text = table.cell(row, column);
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(value) = text.parse::<i64>() {
        return Ok(Some(value));
    }
    let whole = text
        .split_once('.')
        .filter(|(_, frac)| !frac.is_empty() && frac.bytes().all(|b| b == b'0'))
        .and_then(|(int, _)| int.parse::<i64>().ok());
    whole
        .map(Some)
        .ok_or_else(|| CellError::new(row, column, text, format!("{text:?} is not a whole number")))
}

/// `TRUE`/`true`/`1`/`yes` or `FALSE`/`false`/`0`/`no`; `None` for an empty cell.
pub fn boolean(table: &Table, row: &Row, column: &str) -> Result<Option<bool>, CellError> {
    let text = table.cell(row, column);
    match text.to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "1" | "yes" => Ok(Some(true)),
        "false" | "0" | "no" => Ok(Some(false)),
        _ => Err(CellError::new(
            row,
            column,
            text,
            format!("{text:?} is neither TRUE nor FALSE"),
        )),
    }
}

/// Splits a comma-separated list (tags, image URLs, WooCommerce categories); items are
/// trimmed, empty ones dropped. With `escapes`, WooCommerce's `\,` is a comma inside an item
/// (Shopify has no such escape: its tags cannot hold a comma).
pub fn split_list(text: &str, escapes: bool) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if escapes && chars.peek() == Some(&',') => {
                current.push(',');
                chars.next();
            }
            ',' => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    items.push(current);
    items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// `Some(text)` for a non-empty cell.
pub fn opt(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// The external id of an image of `product`: images have no ids in a CSV, and one URL may
/// serve two products, so the id is scoped by the product's.
pub fn image_external_id(product: &ExternalId, src: &str) -> ExternalId {
    ExternalId::new(format!("{product}|{}", src.trim()))
}

/// The external id of a variant of a Shopify CSV product: its SKU, else its option values,
/// scoped by the product's handle (bindings are unique per connection).
pub fn variant_external_id(product: &ExternalId, variant: &tidemark_core::Variant) -> ExternalId {
    match &variant.sku {
        Some(sku) => ExternalId::new(format!("{product}|{}", sku.as_str().trim())),
        None if variant.options.is_empty() => ExternalId::new(format!("{product}|default")),
        None => {
            let values: Vec<String> = variant
                .options
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            ExternalId::new(format!("{product}|{}", values.join("/")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        Table::parse(Path::new("t.csv"), text.as_bytes()).unwrap()
    }

    #[test]
    fn decimals_are_exact_and_strict() {
        let t = table("a\n25\n.5\n64.95\n1e3\n\"1,234.50\"\n-1\n\n");
        let d = |at: usize| decimal(&t, &t.rows[at], "a");
        assert_eq!(d(0).unwrap(), Some(Decimal::new(25, 0)));
        assert_eq!(d(1).unwrap(), Some(Decimal::new(5, 1)));
        assert_eq!(d(2).unwrap(), Some(Decimal::new(6495, 2)));
        assert!(d(3).unwrap_err().message.contains("not a decimal"));
        assert!(d(4).is_err());
        assert!(non_negative(&t, &t.rows[5], "a").is_err());
        assert_eq!(t.rows.len(), 6, "blank lines are not rows");
    }

    #[test]
    fn absurd_decimals_are_refused_not_panicked_on() {
        let huge = "9".repeat(200);
        let long_fraction = format!("0.{}", "3".repeat(200));
        let t = table(&format!("a\n{huge}\n{long_fraction}\n{}\n", Decimal::MAX));
        let d = |at: usize| decimal(&t, &t.rows[at], "a");
        assert!(d(0).unwrap_err().message.contains("not a decimal"));
        // A fraction beyond 28 digits is rounded, as `Decimal` holds it.
        assert!(d(1).unwrap().is_some());
        assert_eq!(d(2).unwrap(), Some(Decimal::MAX));
    }

    #[test]
    fn integers_accept_excel_point_zero() {
        let t = table("q\n12\n-3\n12.0\n1.5\nx\n");
        let i = |at: usize| integer(&t, &t.rows[at], "q");
        assert_eq!(i(0).unwrap(), Some(12));
        assert_eq!(i(1).unwrap(), Some(-3));
        assert_eq!(i(2).unwrap(), Some(12));
        assert!(i(3).is_err());
        assert!(i(4).is_err());
    }

    #[test]
    fn lists_honour_escaped_commas() {
        assert_eq!(
            split_list(r"Clothing > Tshirts, Shoes\, boots ,, x", true),
            vec!["Clothing > Tshirts", "Shoes, boots", "x"]
        );
        assert_eq!(split_list(r"a\, b", false), vec![r"a\", "b"]);
    }

    #[test]
    fn malformed_rows_name_the_line_and_column() {
        let err = Table::parse(Path::new("f.csv"), b"a,b\n1,2\n\"x\ny\",2,3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.csv line 3: the row has 3 fields but the header names 2: a field with a comma or \
             a quote is probably not quoted"
        );
        let err = Table::parse(Path::new("f.csv"), b"a,b\n1,2\n1,\xff\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("f.csv line 3, column `b`: not UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn short_rows_are_padded_and_the_bom_skipped() {
        let t = table("\u{feff}Handle,Title,Vendor\nx,y\n");
        assert_eq!(t.header[0], "Handle");
        assert_eq!(t.cell(&t.rows[0], "Vendor"), "");
        assert_eq!(t.cell(&t.rows[0], "Title"), "y");
        assert_eq!(t.rows[0].line, 2);
    }
}
