//! The canonical phrase of each set: what the console shows and what parses back to the same
//! set (`parse(display(s)) == s`, proven by a property test).
//!
//! Values and connection names are written bare when the parser would read them back
//! unchanged, else quoted with `\` escapes.

use std::borrow::Cow;
use std::fmt;

use super::parse::{MONTHS, field_phrase};
use super::{ConnectionRef, OrderSet, ProductSet};
use crate::model::Field;

/// Whether `text` reads back unchanged when written bare: non-empty, single spaces between
/// words, and no character that starts a quoted string or an escape.
fn is_bare(text: &str) -> bool {
    !text.is_empty()
        && text.split_whitespace().collect::<Vec<_>>().join(" ") == text
        && !text.contains(['"', '“', '”', '\\'])
}

/// `text` bare if it can be, else quoted.
pub(crate) fn quote(text: &str) -> Cow<'_, str> {
    if is_bare(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '”' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Cow::Owned(out)
}

pub(crate) fn connection_phrase(connection: &ConnectionRef) -> Cow<'_, str> {
    quote(&connection.0)
}

/// "with stock" is the WithStock set, so the stock field is written "field stock".
fn field_after_with(field: Field) -> Cow<'static, str> {
    match field {
        Field::Stock => Cow::Borrowed("field stock"),
        other => Cow::Borrowed(field_phrase(other)),
    }
}

impl fmt::Display for ProductSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OnConnection { connection } => write!(f, "on {}", connection_phrase(connection)),
            Self::WithField { field } => write!(f, "with {}", field_after_with(*field)),
            Self::WithoutField { field } => write!(f, "without {}", field_phrase(*field)),
            Self::OfBrand { brand } => write!(f, "of brand {}", quote(brand)),
            Self::OfSize { size } => write!(f, "of size {}", quote(size)),
            Self::OfColor { color } => write!(f, "of color {}", quote(color)),
            Self::ActiveOn { connection } => {
                write!(f, "active on {}", connection_phrase(connection))
            }
            Self::PausedOn { connection } => {
                write!(f, "paused on {}", connection_phrase(connection))
            }
            Self::PublishedOn { connection } => {
                write!(f, "published on {}", connection_phrase(connection))
            }
            Self::UnpublishedOn { connection } => {
                write!(f, "unpublished on {}", connection_phrase(connection))
            }
            Self::WithIssues => f.write_str("with issues"),
            Self::WithoutIssues => f.write_str("without issues"),
            Self::LowStock => f.write_str("with low-stock"),
            Self::OutOfStock => f.write_str("out-of-stock"),
            Self::WithStock => f.write_str("with stock"),
            Self::LowPrice => f.write_str("with low-price"),
            Self::BadPrice => f.write_str("bad price"),
            Self::InCategory {
                connection,
                category,
            } => write!(
                f,
                "on {} category {}",
                connection_phrase(connection),
                quote(category)
            ),
            Self::WithoutCategory { connection } => {
                write!(f, "without {} category", connection_phrase(connection))
            }
            Self::PendingUpdates { connection } => {
                write!(
                    f,
                    "with pending updates to {}",
                    connection_phrase(connection)
                )
            }
            Self::PendingCreates { connection } => {
                write!(
                    f,
                    "with pending creates to {}",
                    connection_phrase(connection)
                )
            }
        }
    }
}

impl fmt::Display for OrderSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OnConnection { connection } => write!(f, "on {}", connection_phrase(connection)),
            Self::PendingUpdates { connection } => {
                write!(
                    f,
                    "with pending updates to {}",
                    connection_phrase(connection)
                )
            }
            Self::PendingCreates { connection } => {
                write!(
                    f,
                    "with pending creates to {}",
                    connection_phrase(connection)
                )
            }
            Self::OfMonth { year, month } => {
                // An out-of-range month has no name; the number shows what is wrong.
                match usize::from(*month)
                    .checked_sub(1)
                    .and_then(|i| MONTHS.get(i))
                {
                    Some(name) => write!(f, "of {year} {name}"),
                    None => write!(f, "of {year} {month}"),
                }
            }
            Self::OfYear { year } => write!(f, "of {year}"),
            Self::ThisMonth => f.write_str("of this month"),
            Self::ThisYear => f.write_str("of this year"),
            Self::LastWeek => f.write_str("of last week"),
            Self::Yesterday => f.write_str("of yesterday"),
            Self::Today => f.write_str("of today"),
        }
    }
}

impl ProductSet {
    /// A short description for a suggestion's label: "products of brand Acme".
    pub fn describe(&self) -> String {
        match self {
            Self::OnConnection { connection } => format!("products listed on {}", connection.0),
            Self::WithField { field } => format!("products with a {}", field_phrase(*field)),
            Self::WithoutField { field } => format!("products without a {}", field_phrase(*field)),
            Self::OfBrand { brand } => format!("products of brand {brand}"),
            Self::OfSize { size } => format!("products with a variant of size {size}"),
            Self::OfColor { color } => format!("products with a variant of color {color}"),
            Self::ActiveOn { connection } => format!("products active on {}", connection.0),
            Self::PausedOn { connection } => format!("products paused on {}", connection.0),
            Self::PublishedOn { connection } => format!("products published on {}", connection.0),
            Self::UnpublishedOn { connection } => {
                format!("products unpublished on {}", connection.0)
            }
            Self::WithIssues => "products with an open issue".into(),
            Self::WithoutIssues => "products with no open issue".into(),
            Self::LowStock => "products with a variant low in stock".into(),
            Self::OutOfStock => "products out of stock".into(),
            Self::WithStock => "products with some stock".into(),
            Self::LowPrice => "products with a variant priced below the low-price threshold".into(),
            Self::BadPrice => "products with a missing, zero or inconsistent variant price".into(),
            Self::InCategory {
                connection,
                category,
            } => format!("products in category {category} on {}", connection.0),
            Self::WithoutCategory { connection } => {
                format!("products without a category on {}", connection.0)
            }
            Self::PendingUpdates { connection } => {
                format!(
                    "products with updates waiting to be sent to {}",
                    connection.0
                )
            }
            Self::PendingCreates { connection } => {
                format!("products waiting to be created on {}", connection.0)
            }
        }
    }
}

impl OrderSet {
    /// A short description for a suggestion's label: "orders placed today".
    pub fn describe(&self) -> String {
        match self {
            Self::OnConnection { connection } => format!("orders on {}", connection.0),
            Self::PendingUpdates { connection } => {
                format!("orders with updates waiting to be sent to {}", connection.0)
            }
            Self::PendingCreates { connection } => {
                format!("orders waiting to be created on {}", connection.0)
            }
            Self::OfMonth { year, month } => match usize::from(*month)
                .checked_sub(1)
                .and_then(|i| MONTHS.get(i))
            {
                Some(name) => format!("orders placed in {name} {year}"),
                None => format!("orders placed in month {month} of {year}"),
            },
            Self::OfYear { year } => format!("orders placed in {year}"),
            Self::ThisMonth => "orders placed this month".into(),
            Self::ThisYear => "orders placed this year".into(),
            Self::LastWeek => "orders placed last week (Monday to Sunday)".into(),
            Self::Yesterday => "orders placed yesterday".into(),
            Self::Today => "orders placed today".into(),
        }
    }
}
