//! The set filters of DESIGN §4: the product and order browsers take a list of sets and show
//! their intersection. A set is typed here, parsed from the words a user types in [`parse`],
//! and compiled to parameterised SQL by the store.
//!
//! Connections are named as the user typed them ([`ConnectionRef`]); the store resolves names
//! within the account. Relative dates ("today", "last week") resolve against a `now` passed in.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{Field, Timestamp};

mod display;
pub mod parse;
mod range;
pub mod suggest;

pub use parse::{SetParseError, SetParseErrorKind, Vocabulary, parse_order_set, parse_product_set};
pub use suggest::{SetTarget, Suggestion, suggest};

/// A connection as named in a set phrase ("on Shopify EU").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionRef(pub String);

/// A set of products.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "set", rename_all = "snake_case")]
pub enum ProductSet {
    /// products on CONNECTION: bound to a record there.
    OnConnection { connection: ConnectionRef },
    /// with FIELD: the field has a value (on the product or, for variant fields, any variant).
    WithField { field: Field },
    /// without FIELD: the field is empty (on the product and on every variant).
    WithoutField { field: Field },
    /// of brand B (case-insensitive).
    OfBrand { brand: String },
    /// of size S: a variant whose `size` option is S (case-insensitive).
    OfSize { size: String },
    /// of color C: a variant whose `color` option is C (case-insensitive).
    OfColor { color: String },
    /// active on CONNECTION: its snapshot there has status active.
    ActiveOn { connection: ConnectionRef },
    /// paused on CONNECTION.
    PausedOn { connection: ConnectionRef },
    /// published on CONNECTION: visible to buyers there.
    PublishedOn { connection: ConnectionRef },
    /// unpublished on CONNECTION: bound there but not visible to buyers.
    UnpublishedOn { connection: ConnectionRef },
    /// with issues: at least one open issue on any connection.
    WithIssues,
    /// without issues.
    WithoutIssues,
    /// with low-stock: a tracked variant with 0 < stock ≤ the low-stock threshold.
    LowStock,
    /// out-of-stock: every tracked variant at stock ≤ 0 (and at least one tracked).
    OutOfStock,
    /// with stock: some variant with stock > 0.
    WithStock,
    /// with low-price: a variant priced above zero but below the low-price threshold.
    LowPrice,
    /// bad price: a variant with no price, a price ≤ 0, or a compare-at price below its price.
    BadPrice,
    /// on CONNECTION category C: the snapshot there is in category C (case-insensitive).
    InCategory {
        connection: ConnectionRef,
        category: String,
    },
    /// without CONNECTION category: bound there with no category.
    WithoutCategory { connection: ConnectionRef },
    /// with pending updates to CONNECTION (update or image delete rows).
    PendingUpdates { connection: ConnectionRef },
    /// with pending creates to CONNECTION.
    PendingCreates { connection: ConnectionRef },
}

/// A set of sales orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "set", rename_all = "snake_case")]
pub enum OrderSet {
    /// orders on CONNECTION: bound to a record there (placed there or created there).
    OnConnection {
        connection: ConnectionRef,
    },
    PendingUpdates {
        connection: ConnectionRef,
    },
    PendingCreates {
        connection: ConnectionRef,
    },
    /// of YEAR MONTH (month 1–12).
    OfMonth {
        year: i32,
        month: u8,
    },
    /// of YEAR.
    OfYear {
        year: i32,
    },
    ThisMonth,
    ThisYear,
    /// The seven days of the previous ISO week (Monday to Sunday).
    LastWeek,
    Yesterday,
    Today,
}

/// What the sets need besides themselves: the present, the merchant's time zone and the
/// thresholds that "low" means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetContext {
    pub now: Timestamp,
    /// Offset of the merchant's local time from UTC, in minutes ("today" is local).
    pub utc_offset_minutes: i32,
    pub low_stock_threshold: i64,
    pub low_price_threshold: Decimal,
}

impl SetContext {
    pub fn new(now: Timestamp) -> Self {
        Self {
            now,
            utc_offset_minutes: 0,
            low_stock_threshold: 5,
            low_price_threshold: Decimal::ONE,
        }
    }
}

/// A half-open time range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub from: Timestamp,
    pub to: Timestamp,
}
