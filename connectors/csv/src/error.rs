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

/// A problem with one record of the file: the record is skipped (it is not in scans) rather
/// than read with a wrong value, and `fetch_one` ([`tidemark_connector::Connector::fetch_one`]) answers it with a
/// `Rejected` error naming the line and column, which the engine turns into an issue.
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
                "value": self.value,
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
            self.line, self.column, self.value, self.external_id, self.message
        )
    }
}
