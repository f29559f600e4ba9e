//! What can go wrong reading or writing a CSV file.

use std::path::PathBuf;

use serde_json::json;
use thiserror::Error;
use tidemark_connector::ConnectorError;
use tidemark_core::ExternalId;

/// A problem with the file as a whole: nothing in it can be trusted, so the scan stops and the
/// merchant is told where to look.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CsvError {
    #[error("cannot read {}: {message}", path.display())]
    Read { path: PathBuf, message: String },

    /// Not CSV as the header promises: a line with more fields than the header, text that is not
    /// UTF-8, an unclosed quote.
    #[error("{} line {line}{}: {message}", path.display(),
        match column { Some(c) => format!(", column `{c}`"), None => String::new() })]
    Malformed {
        path: PathBuf,
        /// 1-based physical line where the record starts.
        line: u64,
        /// The header name of the column, when one column is at fault.
        column: Option<String>,
        message: String,
    },

    /// The header is neither a Shopify nor a WooCommerce product export (or not the one the
    /// settings name).
    #[error("{}: {message}", path.display())]
    Layout { path: PathBuf, message: String },

    #[error("cannot write {}: {message}", path.display())]
    Write { path: PathBuf, message: String },

    /// The file is larger than the connection's `max_file_bytes` (it is held in memory whole),
    /// or a write would make it so. `size` is `None` when the size was only noticed while
    /// reading (a file that grew, a device).
    #[error("{} is {} than the {limit} bytes `max_file_bytes` allows; raise `max_file_bytes` \
             in the connection's settings if the file is right, or point `path` at the product \
             CSV",
        path.display(),
        match size { Some(size) => format!("{size} bytes, more"), None => "larger".to_owned() })]
    TooLarge {
        path: PathBuf,
        size: Option<u64>,
        limit: u64,
    },
}

impl From<CsvError> for ConnectorError {
    fn from(error: CsvError) -> Self {
        match error {
            // A failed write left the old file in place: trying again later may work (disk
            // full, permissions fixed), and nothing was applied.
            CsvError::Write { .. } => ConnectorError::transient(error.to_string()),
            // The merchant must fix the file or the settings: retrying cannot help.
            _ => ConnectorError::fatal(error.to_string()),
        }
    }
}

/// A problem with one record of the file: the record is not read with a wrong value. It is
/// left out of the products, `fetch_one` ([`tidemark_connector::Connector::fetch_one`]) answers
/// it with a `Rejected` error naming the line and column (the engine turns it into an issue),
/// and a full scan of the file does not complete (see [`incomplete_full_scan`]), so the record
/// can never look deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordIssue {
    /// The record's id (Shopify handle, WooCommerce ID or SKU), or `line N` when the row has
    /// none.
    pub external_id: ExternalId,
    /// 1-based physical line of the offending row.
    pub line: u64,
    /// The header name of the offending column.
    pub column: String,
    /// The cell as written.
    pub value: String,
    pub message: String,
}

impl RecordIssue {
    /// The `Rejected` error for this record (code `csv_invalid_value`, field = the column).
    pub fn to_error(&self, file: &str) -> ConnectorError {
        ConnectorError::rejected("csv_invalid_value", self.message.clone())
            .with_field(self.column.clone())
            .with_payload(json!({
                "file": file,
                "line": self.line,
                "column": self.column,
                "value": shortened(&self.value),
            }))
            .context(format!(
                "{file} line {}, column `{}`, record {}",
                self.line, self.column, self.external_id
            ))
    }
}

impl std::fmt::Display for RecordIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column `{}` ({:?}), record {}: {}",
            self.line,
            self.column,
            shortened(&self.value),
            self.external_id,
            self.message
        )
    }
}

/// How many problems the error of [`incomplete_full_scan`] lists; the rest are counted.
pub const LISTED_PROBLEMS: usize = 10;

/// The error that ends a full scan of a file with unreadable records, after every readable one
/// was served: a full scan is the basis of mark-and-sweep deletion detection, and a record
/// left out of it would look deleted (archived everywhere, if the file is the master). The
/// scan therefore never completes, so no deletion is inferred, and the merchant is told which
/// records, lines and columns to fix. `Fatal`: retrying cannot help until the file changes.
pub fn incomplete_full_scan(file: &str, problems: &[RecordIssue]) -> ConnectorError {
    let mut message = format!(
        "{file} has {} record(s) tidemark cannot read, so a full scan cannot complete (a record \
         missing from it would look deleted; no deletion is inferred until the file is fixed): ",
        problems.len()
    );
    let listed: Vec<String> = problems
        .iter()
        .take(LISTED_PROBLEMS)
        .map(ToString::to_string)
        .collect();
    message.push_str(&listed.join("; "));
    if problems.len() > LISTED_PROBLEMS {
        message.push_str(&format!("; and {} more", problems.len() - LISTED_PROBLEMS));
    }
    ConnectorError::fatal(message)
}

/// Characters of a cell value kept in messages and issue payloads.
const SHOWN_VALUE_CHARS: usize = 100;

/// `value`, cut to [`SHOWN_VALUE_CHARS`] characters (a cell can be megabytes of text).
fn shortened(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(SHOWN_VALUE_CHARS) {
        Some((at, _)) => format!("{}…", &value[..at]).into(),
        None => value.into(),
    }
}
