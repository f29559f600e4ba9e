//! Errors of the pure core.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    #[error("invalid currency code {0:?}: expected three letters such as USD")]
    InvalidCurrency(String),
    #[error("invalid content hash {0:?}: expected 32 hex digits")]
    InvalidHash(String),
}
