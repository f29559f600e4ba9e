//! Parsing the words a user types ("on Shopify EU category Shoes", "of 2025 march") into
//! [`ProductSet`] and [`OrderSet`].
//!
//! The input is NFC-normalised first; error spans are byte ranges into that normalised input,
//! which [`SetParseError::input`] carries (for input already in NFC, the usual case, they are
//! byte ranges into what the user typed).
//!
//! Lexing: words are separated by whitespace; a word starting with `"` (or `“`) runs to the
//! closing quote, with `\` escaping the next character. For keywords, a word is further split
//! on `-`, `_` and `/`, so "low-stock", "compare_at_price" and "2025-03" read as several words.
//! Values (brand, size, color, category) are taken from the original text, so "Coca-Cola"
//! stays whole. Connection names are matched on whole whitespace-separated words,
//! case-insensitively, longest name first.

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

use super::{ConnectionRef, OrderSet, ProductSet};
use crate::model::Field;

/// What the account's data lets the parser and [`super::suggest`] know: the connection names
/// (needed to split "on Shopify EU category Shoes") and, for autocomplete only, known values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocabulary {
    /// Connection names as the account spells them ("Shopify EU", "woo").
    #[serde(default)]
    pub connections: Vec<String>,
    #[serde(default)]
    pub brands: Vec<String>,
    #[serde(default)]
    pub colors: Vec<String>,
    #[serde(default)]
    pub sizes: Vec<String>,
    /// Categories seen on any connection.
    #[serde(default)]
    pub categories: Vec<String>,
}

impl Vocabulary {
    pub fn new<I, S>(connections: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            connections: connections.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    pub fn with_brands<I: IntoIterator<Item = S>, S: Into<String>>(mut self, brands: I) -> Self {
        self.brands = brands.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_colors<I: IntoIterator<Item = S>, S: Into<String>>(mut self, colors: I) -> Self {
        self.colors = colors.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_sizes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, sizes: I) -> Self {
        self.sizes = sizes.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_categories<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        categories: I,
    ) -> Self {
        self.categories = categories.into_iter().map(Into::into).collect();
        self
    }
}

/// What went wrong, with the offending text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetParseErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// A word that is not valid where it stands.
    UnknownWord {
        word: String,
    },
    /// "on X" where X is none of the account's connections.
    UnknownConnection {
        name: String,
    },
    /// The phrase stops where a value (brand, connection, year, …) or keyword is needed.
    MissingValue {
        what: String,
    },
    BadYear {
        text: String,
    },
    BadMonth {
        text: String,
    },
    /// Words after a complete set.
    TrailingWords {
        text: String,
    },
    /// "with payment status": a field, but not one products have.
    NotAProductField {
        field: String,
    },
    UnterminatedQuote,
}

impl fmt::Display for SetParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty set"),
            Self::UnknownWord { word } => write!(f, "unknown word {word:?}"),
            Self::UnknownConnection { name } => write!(f, "unknown connection {name:?}"),
            Self::MissingValue { what } => write!(f, "missing {what}"),
            Self::BadYear { text } => write!(f, "bad year {text:?}"),
            Self::BadMonth { text } => write!(f, "bad month {text:?}"),
            Self::TrailingWords { text } => write!(f, "unexpected words {text:?}"),
            Self::NotAProductField { field } => write!(f, "{field:?} is not a product field"),
            Self::UnterminatedQuote => f.write_str("unterminated quote"),
        }
    }
}

/// A located parse error: `unknown word "brnad" at 3..8 in "of brnad Nike": did you mean
/// "brand"?`. Without a suggestion the message ends with what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "{kind} at {start}..{end} in {input:?}{tail}",
    start = .span.start,
    end = .span.end,
    tail = Tail(.suggestion.as_deref(), .expected.as_str())
)]
pub struct SetParseError {
    pub kind: SetParseErrorKind,
    /// Byte range of the offending word(s) in `input`; empty at the end for a missing value.
    pub span: Range<usize>,
    /// The input as parsed (NFC-normalised).
    pub input: String,
    /// What would have been valid there, in words.
    pub expected: String,
    /// The nearest valid word or phrase for the span (for trailing words: the complete set
    /// before them).
    pub suggestion: Option<String>,
}

struct Tail<'a>(Option<&'a str>, &'a str);

impl fmt::Display for Tail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(suggestion) => write!(f, ": did you mean {suggestion:?}?"),
            None if self.1.is_empty() => Ok(()),
            None => write!(f, ": expected {}", self.1),
        }
    }
}

impl SetParseError {
    /// The input with the suggestion applied, for a "did you mean" link.
    pub fn corrected_input(&self) -> Option<String> {
        let suggestion = self.suggestion.as_deref()?;
        if let SetParseErrorKind::TrailingWords { .. } = self.kind {
            return Some(suggestion.to_owned());
        }
        let before = self.input.get(..self.span.start)?;
        let after = self.input.get(self.span.end..)?;
        Some(format!("{before}{suggestion}{after}"))
    }
}

/// Parses one product set.
pub fn parse_product_set(input: &str, vocab: &Vocabulary) -> Result<ProductSet, SetParseError> {
    let lexed = lex(input)?;
    Parser::new(&lexed, vocab).product()
}

/// Parses one order set.
pub fn parse_order_set(input: &str, vocab: &Vocabulary) -> Result<OrderSet, SetParseError> {
    let lexed = lex(input)?;
    Parser::new(&lexed, vocab).order()
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

/// A whitespace-separated word, or a quoted string.
#[derive(Debug)]
struct Raw {
    span: Range<usize>,
    quoted: bool,
}

/// A keyword-sized piece of a raw word (or a whole quoted string).
#[derive(Debug)]
struct Word {
    span: Range<usize>,
    /// Lowercased text; for a quoted word, the lowercased content.
    lower: String,
    /// For a quoted word, the unescaped content.
    content: String,
    quoted: bool,
    /// Index into `Lexed::raws`.
    raw: usize,
    /// First piece of its raw word: connection names and values may start only here.
    first: bool,
}

#[derive(Debug)]
pub(crate) struct Lexed {
    input: String,
    raws: Vec<Raw>,
    words: Vec<Word>,
}

fn is_open_quote(c: char) -> bool {
    c == '"' || c == '“'
}

fn is_close_quote(c: char) -> bool {
    c == '"' || c == '”'
}

fn is_separator(c: char) -> bool {
    c == '-' || c == '_' || c == '/'
}

pub(crate) fn nfc(text: &str) -> String {
    text.nfc().collect()
}

/// Lowercase with runs of whitespace collapsed: how names and values are compared.
pub(crate) fn fold(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

fn lex(input: &str) -> Result<Lexed, SetParseError> {
    let input = nfc(input);
    let mut raws = Vec::new();
    let mut words = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let raw = raws.len();
        if is_open_quote(c) {
            chars.next();
            let mut content = String::new();
            let mut end = None;
            while let Some((i, d)) = chars.next() {
                if d == '\\' {
                    if let Some((_, escaped)) = chars.next() {
                        content.push(escaped);
                    }
                } else if is_close_quote(d) {
                    end = Some(i + d.len_utf8());
                    break;
                } else {
                    content.push(d);
                }
            }
            let Some(end) = end else {
                return Err(SetParseError {
                    kind: SetParseErrorKind::UnterminatedQuote,
                    span: start..input.len(),
                    expected: "a closing quote".into(),
                    suggestion: Some(format!("{}\"", &input[start..])),
                    input,
                });
            };
            raws.push(Raw {
                span: start..end,
                quoted: true,
            });
            words.push(Word {
                span: start..end,
                lower: content.to_lowercase(),
                content,
                quoted: true,
                raw,
                first: true,
            });
            continue;
        }
        let mut end = start;
        while let Some(&(i, d)) = chars.peek() {
            if d.is_whitespace() {
                break;
            }
            end = i + d.len_utf8();
            chars.next();
        }
        raws.push(Raw {
            span: start..end,
            quoted: false,
        });
        let mut piece_start: Option<usize> = None;
        let mut first = true;
        let mut push = |from: usize, to: usize, first: &mut bool| {
            let text = &input[from..to];
            words.push(Word {
                span: from..to,
                lower: text.to_lowercase(),
                content: text.to_owned(),
                quoted: false,
                raw,
                first: *first,
            });
            *first = false;
        };
        for (i, d) in input[start..end].char_indices() {
            let i = start + i;
            if is_separator(d) {
                if let Some(from) = piece_start.take() {
                    push(from, i, &mut first);
                }
            } else if piece_start.is_none() {
                piece_start = Some(i);
            }
        }
        if let Some(from) = piece_start {
            push(from, end, &mut first);
        }
        if first {
            // Only separators ("-"): still a word, so that it can be a value.
            push(start, end, &mut first);
        }
    }
    Ok(Lexed { input, raws, words })
}

// ---------------------------------------------------------------------------------------------
// Nearest-word suggestions
// ---------------------------------------------------------------------------------------------

/// The candidate nearest to `word`, if it is near enough to be what the user meant: few edits
/// (Damerau-Levenshtein, transpositions count once) for its length, or a prefix of it.
pub(crate) fn nearest<'c, I>(word: &str, candidates: I) -> Option<&'c str>
where
    I: IntoIterator<Item = &'c str>,
{
    let word = word.to_lowercase();
    let len = word.chars().count();
    if len == 0 {
        return None;
    }
    let allowed = match len {
        0..=2 => 1,
        3..=5 => 2,
        _ => 3,
    };
    let mut best: Option<(usize, f64, &'c str)> = None;
    for candidate in candidates {
        let lower = candidate.to_lowercase();
        let distance = strsim::damerau_levenshtein(&word, &lower);
        let similarity = strsim::jaro_winkler(&word, &lower);
        let prefix = len >= 2 && lower.starts_with(&word);
        if !(distance <= allowed || prefix || similarity >= 0.9) {
            continue;
        }
        // A prefix counts as one edit: "iss" is nearer to "issues" than three insertions say.
        let rank = if prefix { 1 } else { distance };
        let better = match best {
            None => true,
            Some((d, s, _)) => rank < d || (rank == d && similarity > s),
        };
        if better {
            best = Some((rank, similarity, candidate));
        }
    }
    best.map(|(_, _, candidate)| candidate)
}

// ---------------------------------------------------------------------------------------------
// Words of the grammar
// ---------------------------------------------------------------------------------------------

/// Spellings of product fields, as word sequences; the first spelling of each field is the one
/// suggestions show.
pub(crate) const PRODUCT_FIELD_SPELLINGS: &[(&[&str], Field)] = &[
    (&["sku"], Field::Sku),
    (&["skus"], Field::Sku),
    (&["title"], Field::Title),
    (&["titles"], Field::Title),
    (&["name"], Field::Title),
    (&["description"], Field::Description),
    (&["descriptions"], Field::Description),
    (&["desc"], Field::Description),
    (&["brand"], Field::Brand),
    (&["brands"], Field::Brand),
    (&["vendor"], Field::Vendor),
    (&["vendors"], Field::Vendor),
    (&["category"], Field::Category),
    (&["categories"], Field::Category),
    (&["tags"], Field::Tags),
    (&["tag"], Field::Tags),
    (&["barcode"], Field::Barcode),
    (&["barcodes"], Field::Barcode),
    (&["gtin"], Field::Barcode),
    (&["ean"], Field::Barcode),
    (&["weight"], Field::Weight),
    (&["status"], Field::Status),
    (&["attributes"], Field::Attributes),
    (&["attribute"], Field::Attributes),
    (&["images"], Field::Images),
    (&["image"], Field::Images),
    (&["photos"], Field::Images),
    (&["pictures"], Field::Images),
    (&["variants"], Field::Variants),
    (&["variant"], Field::Variants),
    (&["price"], Field::Price),
    (&["prices"], Field::Price),
    (&["compare", "at", "price"], Field::CompareAtPrice),
    (&["compare", "at", "prices"], Field::CompareAtPrice),
    (&["compareatprice"], Field::CompareAtPrice),
    (&["compare", "price"], Field::CompareAtPrice),
    (&["stock"], Field::Stock),
    (&["inventory"], Field::Stock),
];

const ORDER_FIELD_SPELLINGS: &[(&[&str], Field)] = &[
    (&["order", "status"], Field::OrderStatus),
    (&["payment", "status"], Field::PaymentStatus),
    (&["payment"], Field::PaymentStatus),
    (&["shipments"], Field::Shipments),
    (&["shipment"], Field::Shipments),
    (&["tracking"], Field::Shipments),
    (&["order", "note"], Field::OrderNote),
    (&["note"], Field::OrderNote),
];

/// How a field is written in a canonical phrase.
pub(crate) fn field_phrase(field: Field) -> &'static str {
    match field {
        Field::CompareAtPrice => "compare-at price",
        Field::OrderStatus => "order status",
        Field::PaymentStatus => "payment status",
        Field::OrderNote => "order note",
        other => other.as_str(),
    }
}

pub(crate) const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Month number for a name, a 3-letter abbreviation ("sept" too) or a number 1–12.
fn month_number(word: &str) -> Option<u8> {
    if !word.is_empty() && word.len() <= 2 && word.bytes().all(|b| b.is_ascii_digit()) {
        return word.parse::<u8>().ok().filter(|m| (1..=12).contains(m));
    }
    if word == "sept" {
        return Some(9);
    }
    MONTHS
        .iter()
        .position(|name| *name == word || (word.len() == 3 && name.starts_with(word)))
        .and_then(|i| u8::try_from(i + 1).ok())
}

pub(crate) const MIN_YEAR: i32 = 1970;
pub(crate) const MAX_YEAR: i32 = 9999;

const YEAR_EXPECTED: &str = "a year from 1970 to 9999, such as 2025";
const MONTH_EXPECTED: &str = "a month such as \"march\", \"mar\" or 3";

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

type Result<T, E = SetParseError> = std::result::Result<T, E>;

#[derive(Clone, Copy)]
struct Parser<'a> {
    lx: &'a Lexed,
    vocab: &'a Vocabulary,
    pos: usize,
}

#[derive(Clone, Copy)]
enum Start {
    On,
    With,
    Without,
    Of,
    Active,
    Paused,
    Published,
    Unpublished,
    Low,
    Out,
    Bad,
}

#[derive(Clone, Copy)]
enum Pending {
    Updates,
    Creates,
}

#[derive(Clone, Copy)]
enum Value {
    Brand,
    Size,
    Color,
}

#[derive(Clone, Copy)]
enum OrderStart {
    On,
    With,
    Of,
    This,
    Last,
    Yesterday,
    Today,
}

const PRODUCT_START: &[(&str, Start)] = &[
    ("on", Start::On),
    ("with", Start::With),
    ("without", Start::Without),
    ("of", Start::Of),
    ("active", Start::Active),
    ("paused", Start::Paused),
    ("published", Start::Published),
    ("unpublished", Start::Unpublished),
    ("low", Start::Low),
    ("out", Start::Out),
    ("bad", Start::Bad),
];

/// A first word that belongs later in a phrase: suggest the phrase it belongs to.
const PRODUCT_HINTS: &[(&str, &str)] = &[
    ("issues", "with issues"),
    ("brand", "of brand"),
    ("size", "of size"),
    ("color", "of color"),
    ("colour", "of color"),
    ("stock", "with stock"),
    ("lowstock", "with low-stock"),
    ("outofstock", "out-of-stock"),
    ("pending", "with pending updates to"),
    ("category", "without category"),
];

const ORDER_START: &[(&str, OrderStart)] = &[
    ("on", OrderStart::On),
    ("with", OrderStart::With),
    ("of", OrderStart::Of),
    ("this", OrderStart::This),
    ("last", OrderStart::Last),
    ("yesterday", OrderStart::Yesterday),
    ("today", OrderStart::Today),
];

const PENDING: &[(&str, Pending)] = &[
    ("updates", Pending::Updates),
    ("update", Pending::Updates),
    ("creates", Pending::Creates),
    ("create", Pending::Creates),
];

const LOW: &[(&str, bool)] = &[("stock", true), ("price", false), ("prices", false)];

const PRICE: &[(&str, ())] = &[("price", ()), ("prices", ())];

const OF_VALUE: &[(&str, Value)] = &[
    ("brand", Value::Brand),
    ("size", Value::Size),
    ("color", Value::Color),
    ("colour", Value::Color),
    ("brands", Value::Brand),
    ("sizes", Value::Size),
    ("colors", Value::Color),
    ("colours", Value::Color),
];

/// Words valid right after "with" besides field names.
const WITH_WORDS: &[&str] = &["issues", "stock", "low", "out", "bad", "pending", "field"];

impl<'a> Parser<'a> {
    fn new(lx: &'a Lexed, vocab: &'a Vocabulary) -> Self {
        Self { lx, vocab, pos: 0 }
    }

    fn peek(&self) -> Option<&'a Word> {
        self.lx.words.get(self.pos)
    }

    fn peek_at(&self, ahead: usize) -> Option<&'a Word> {
        self.lx.words.get(self.pos + ahead)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.lx.words.len()
    }

    /// The next word, if it is an unquoted keyword.
    fn peek_keyword(&self) -> Option<&'a str> {
        self.peek().filter(|w| !w.quoted).map(|w| w.lower.as_str())
    }

    fn eat(&mut self, keywords: &[&str]) -> bool {
        match self.peek_keyword() {
            Some(word) if keywords.contains(&word) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn end_span(&self) -> Range<usize> {
        let end = self.lx.input.trim_end().len();
        end..end
    }

    fn error(
        &self,
        kind: SetParseErrorKind,
        span: Range<usize>,
        expected: impl Into<String>,
        suggestion: Option<String>,
    ) -> SetParseError {
        SetParseError {
            kind,
            span,
            input: self.lx.input.clone(),
            expected: expected.into(),
            suggestion,
        }
    }

    fn missing(&self, what: &str, expected: impl Into<String>) -> SetParseError {
        self.error(
            SetParseErrorKind::MissingValue { what: what.into() },
            self.end_span(),
            expected,
            None,
        )
    }

    fn unknown_word(
        &self,
        word: &Word,
        expected: impl Into<String>,
        near: Option<&str>,
    ) -> SetParseError {
        self.error(
            SetParseErrorKind::UnknownWord {
                word: word.content.clone(),
            },
            word.span.clone(),
            expected,
            near.map(str::to_owned),
        )
    }

    /// One of the `table` keywords, or a located error suggesting the nearest.
    fn choose<T: Copy>(&mut self, table: &[(&str, T)], what: &str, expected: &str) -> Result<T> {
        let Some(word) = self.peek() else {
            return Err(self.missing(what, expected));
        };
        if !word.quoted
            && let Some((_, value)) = table.iter().find(|(k, _)| *k == word.lower)
        {
            self.pos += 1;
            return Ok(*value);
        }
        let near = nearest(&word.lower, table.iter().map(|(k, _)| *k));
        Err(self.unknown_word(word, expected, near))
    }

    /// Errors if words remain after a complete set; suggests the set without them.
    fn finish<T: fmt::Display>(self, set: T) -> Result<T> {
        match self.peek() {
            None => Ok(set),
            Some(word) => {
                let span = word.span.start..self.lx.input.trim_end().len();
                Err(self.error(
                    SetParseErrorKind::TrailingWords {
                        text: self.lx.input[span.clone()].to_owned(),
                    },
                    span,
                    "the end of the set",
                    Some(set.to_string()),
                ))
            }
        }
    }

    // --- connections ---------------------------------------------------------------------

    fn expected_connection(&self) -> String {
        let names: Vec<String> = self
            .vocab
            .connections
            .iter()
            .take(3)
            .map(|n| format!("{n:?}"))
            .collect();
        if names.is_empty() {
            "a connection name (this account has none)".into()
        } else {
            format!("a connection name such as {}", names.join(", "))
        }
    }

    /// Every connection name the input continues with, longest first, each with the parser
    /// positioned after it.
    fn connections(&self) -> Result<Vec<(ConnectionRef, Parser<'a>)>> {
        let Some(word) = self.peek() else {
            return Err(self.missing("connection", self.expected_connection()));
        };
        let mut names: Vec<(&String, Vec<String>)> = self
            .vocab
            .connections
            .iter()
            .map(|name| {
                (
                    name,
                    fold(&nfc(name)).split(' ').map(str::to_owned).collect(),
                )
            })
            .filter(|(_, words): &(&String, Vec<String>)| words.iter().any(|w| !w.is_empty()))
            .collect();
        names.sort_by(|a, b| {
            b.1.len()
                .cmp(&a.1.len())
                .then_with(|| b.0.chars().count().cmp(&a.0.chars().count()))
        });
        let raws = &self.lx.raws;
        let mut found = Vec::new();
        if word.quoted {
            let typed = fold(&word.content);
            if let Some((name, _)) = names.iter().find(|(_, words)| words.join(" ") == typed) {
                found.push((ConnectionRef((*name).clone()), self.after_raw(word.raw + 1)));
            }
        } else if word.first {
            for (name, words) in &names {
                let n = words.len();
                let Some(slice) = raws.get(word.raw..word.raw + n) else {
                    continue;
                };
                let matches = slice.iter().zip(words).all(|(raw, w)| {
                    !raw.quoted && self.lx.input[raw.span.clone()].to_lowercase() == *w
                });
                if matches {
                    found.push((ConnectionRef((*name).clone()), self.after_raw(word.raw + n)));
                }
            }
        }
        if found.is_empty() {
            return Err(self.unknown_connection(word, &names));
        }
        Ok(found)
    }

    /// A parser at the first word of raw word `raw`.
    fn after_raw(&self, raw: usize) -> Parser<'a> {
        let pos = self
            .lx
            .words
            .iter()
            .position(|w| w.raw >= raw)
            .unwrap_or(self.lx.words.len());
        Parser { pos, ..*self }
    }

    /// The error for a name that is no connection: tries the next 1..n words (n the most words
    /// in a connection name) against every name and points at the nearest pairing.
    fn unknown_connection(&self, word: &Word, names: &[(&String, Vec<String>)]) -> SetParseError {
        let raws = &self.lx.raws;
        let most = names.iter().map(|(_, w)| w.len()).max().unwrap_or(1).max(1);
        let mut best: Option<(usize, f64, Range<usize>, &String)> = None;
        for k in 1..=most {
            let Some(slice) = raws.get(word.raw..word.raw + k) else {
                break;
            };
            if k > 1 && slice.iter().any(|r| r.quoted) {
                break;
            }
            let (Some(first), Some(last)) = (slice.first(), slice.last()) else {
                break;
            };
            let typed = if word.quoted {
                word.lower.clone()
            } else {
                fold(&self.lx.input[first.span.start..last.span.end])
            };
            let joined: Vec<String> = names.iter().map(|(_, w)| w.join(" ")).collect();
            if let Some(hit) = nearest(&typed, joined.iter().map(String::as_str))
                && let Some(i) = joined.iter().position(|j| j == hit)
            {
                let distance = strsim::damerau_levenshtein(&typed, hit);
                let similarity = strsim::jaro_winkler(&typed, hit);
                let better = match &best {
                    None => true,
                    Some((d, s, _, _)) => distance < *d || (distance == *d && similarity > *s),
                };
                if better {
                    best = Some((
                        distance,
                        similarity,
                        first.span.start..last.span.end,
                        names[i].0,
                    ));
                }
            }
        }
        let (span, suggestion) = match best {
            Some((_, _, span, name)) => (span, Some(name.clone())),
            None => (word.span.clone(), None),
        };
        let name = self.lx.input[span.clone()].to_owned();
        let name = if word.quoted {
            word.content.clone()
        } else {
            name
        };
        self.error(
            SetParseErrorKind::UnknownConnection { name },
            span,
            self.expected_connection(),
            suggestion,
        )
    }

    /// Runs `rest` after each connection the input may start with (longest first) and keeps
    /// the first that parses: "on Shopify EU" with connections "Shopify" and "Shopify EU".
    fn with_connection<T>(
        &self,
        rest: impl Fn(Parser<'a>, ConnectionRef) -> Result<T>,
    ) -> Result<T> {
        let mut first_error = None;
        for (connection, parser) in self.connections()? {
            match rest(parser, connection) {
                Ok(set) => return Ok(set),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| self.missing("connection", self.expected_connection())))
    }

    /// [`Self::with_connection`] after an optional filler word ("to", "on"). A connection
    /// whose name starts with the filler ("On Air") is tried first, with the filler in it.
    fn with_connection_after<T>(
        &self,
        fillers: &[&str],
        rest: impl Fn(Parser<'a>, ConnectionRef) -> Result<T>,
    ) -> Result<T> {
        let mut after = *self;
        if after.eat(fillers)
            && let Ok(set) = self.with_connection(&rest)
        {
            return Ok(set);
        }
        after.with_connection(rest)
    }

    // --- values --------------------------------------------------------------------------

    /// A value: one quoted string, or the rest of the phrase with whitespace collapsed.
    fn value(&mut self, what: &str) -> Result<String> {
        let expected = format!("a {what}, quoted if it has leading or trailing spaces");
        let Some(word) = self.peek() else {
            return Err(self.missing(what, expected));
        };
        if word.quoted {
            if word.content.trim().is_empty() {
                return Err(self.error(
                    SetParseErrorKind::MissingValue { what: what.into() },
                    word.span.clone(),
                    expected,
                    None,
                ));
            }
            self.pos += 1;
            return Ok(word.content.clone());
        }
        // From the start of the raw word, so leading separators ("-a") stay in the value.
        let start = match self.lx.raws.get(word.raw) {
            Some(raw) if word.first => raw.span.start,
            _ => word.span.start,
        };
        let end = self.lx.input.trim_end().len();
        let text = self.lx.input[start..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        self.pos = self.lx.words.len();
        Ok(text)
    }

    // --- fields --------------------------------------------------------------------------

    /// The longest spelling in `table` the input continues with, and how many words it takes.
    fn match_spelling(&self, table: &[(&[&str], Field)]) -> Option<(Field, usize)> {
        table
            .iter()
            .filter(|(words, _)| {
                words.iter().enumerate().all(|(i, w)| {
                    self.peek_at(i)
                        .is_some_and(|word| !word.quoted && word.lower == *w)
                })
            })
            .max_by_key(|(words, _)| words.len())
            .map(|(words, field)| (*field, words.len()))
    }

    fn product_field(&mut self, others: &[&str]) -> Result<Field> {
        let expected = "a product field such as \"sku\", \"images\" or \"compare-at price\"";
        let Some(word) = self.peek() else {
            return Err(self.missing("field", expected));
        };
        if let Some((field, n)) = self.match_spelling(PRODUCT_FIELD_SPELLINGS) {
            self.pos += n;
            return Ok(field);
        }
        if let Some((field, n)) = self.match_spelling(ORDER_FIELD_SPELLINGS) {
            let last = self.peek_at(n - 1).map_or(word.span.end, |w| w.span.end);
            // "order status" is nearest to "status" by its last word, not by edits.
            let phrase = field_phrase(field);
            let last_word = phrase.rsplit(' ').next().unwrap_or(phrase);
            let product_fields = || Field::PRODUCT_FIELDS.iter().map(|f| field_phrase(*f));
            let near = nearest(phrase, product_fields())
                .or_else(|| product_fields().find(|f| *f == last_word));
            return Err(self.error(
                SetParseErrorKind::NotAProductField {
                    field: field_phrase(field).into(),
                },
                word.span.start..last,
                expected,
                near.map(str::to_owned),
            ));
        }
        let candidates = Field::PRODUCT_FIELDS
            .iter()
            .map(|f| field_phrase(*f))
            .chain(others.iter().copied());
        Err(self.unknown_word(word, expected, nearest(&word.lower, candidates)))
    }

    // --- products ------------------------------------------------------------------------

    fn product(mut self) -> Result<ProductSet> {
        if self.at_end() {
            return Err(self.error(
                SetParseErrorKind::Empty,
                0..self.lx.input.len(),
                "a set such as \"on CONNECTION\", \"with issues\" or \"of brand B\"",
                None,
            ));
        }
        self.eat(&["products", "product"]);
        let Some(word) = self.peek() else {
            return Err(self.missing("set", "a set after \"products\", such as \"with issues\""));
        };
        let start = if word.quoted {
            None
        } else {
            PRODUCT_START
                .iter()
                .find(|(k, _)| *k == word.lower)
                .map(|(_, s)| *s)
        };
        let Some(start) = start else {
            return Err(self.unknown_product_start(word));
        };
        self.pos += 1;
        match start {
            Start::On => self.with_connection(|mut p, connection| {
                if p.at_end() {
                    return Ok(ProductSet::OnConnection { connection });
                }
                p.choose(
                    &[("category", ())],
                    "category",
                    "\"category\" or the end of the set",
                )?;
                let category = p.value("category")?;
                p.finish(ProductSet::InCategory {
                    connection,
                    category,
                })
            }),
            Start::With => self.with(),
            Start::Without => self.without(),
            Start::Of => {
                let value = self.choose(OF_VALUE, "word", "\"brand\", \"size\" or \"color\"")?;
                let set = match value {
                    Value::Brand => ProductSet::OfBrand {
                        brand: self.value("brand")?,
                    },
                    Value::Size => ProductSet::OfSize {
                        size: self.value("size")?,
                    },
                    Value::Color => ProductSet::OfColor {
                        color: self.value("color")?,
                    },
                };
                self.finish(set)
            }
            Start::Active | Start::Paused | Start::Published | Start::Unpublished => self
                .with_connection_after(&["on"], |p, connection| {
                    p.finish(match start {
                        Start::Active => ProductSet::ActiveOn { connection },
                        Start::Paused => ProductSet::PausedOn { connection },
                        Start::Published => ProductSet::PublishedOn { connection },
                        _ => ProductSet::UnpublishedOn { connection },
                    })
                }),
            Start::Low => self.low(),
            Start::Out => self.out_of_stock(),
            Start::Bad => {
                self.choose(PRICE, "word", "\"price\"")?;
                self.finish(ProductSet::BadPrice)
            }
        }
    }

    fn unknown_product_start(&self, word: &Word) -> SetParseError {
        let expected = "a set such as \"on CONNECTION\", \"with issues\" or \"of brand B\"";
        // A connection name typed alone most likely wants "on".
        if let Ok(found) = self.connections()
            && let Some((connection, _)) = found.first()
        {
            let span = word.span.clone();
            return self.error(
                SetParseErrorKind::UnknownWord {
                    word: word.content.clone(),
                },
                span,
                expected,
                Some(format!(
                    "on {}",
                    super::display::connection_phrase(connection)
                )),
            );
        }
        let hint = PRODUCT_HINTS
            .iter()
            .find(|(w, _)| *w == word.lower)
            .map(|(_, phrase)| *phrase);
        let near = hint.or_else(|| nearest(&word.lower, PRODUCT_START.iter().map(|(k, _)| *k)));
        self.unknown_word(word, expected, near)
    }

    fn low(mut self) -> Result<ProductSet> {
        let stock = self.choose(LOW, "word", "\"stock\" or \"price\"")?;
        self.finish(if stock {
            ProductSet::LowStock
        } else {
            ProductSet::LowPrice
        })
    }

    fn out_of_stock(mut self) -> Result<ProductSet> {
        self.choose(&[("of", ())], "word", "\"of stock\"")?;
        self.choose(&[("stock", ())], "word", "\"stock\"")?;
        self.finish(ProductSet::OutOfStock)
    }

    fn pending(&mut self) -> Result<Pending> {
        self.choose(PENDING, "word", "\"updates\" or \"creates\"")
    }

    fn with(mut self) -> Result<ProductSet> {
        match self.peek_keyword() {
            Some("issues" | "issue") => {
                self.pos += 1;
                self.finish(ProductSet::WithIssues)
            }
            Some("stock") => {
                self.pos += 1;
                self.finish(ProductSet::WithStock)
            }
            Some("low") => {
                self.pos += 1;
                self.low()
            }
            Some("out") => {
                self.pos += 1;
                self.out_of_stock()
            }
            Some("bad") => {
                self.pos += 1;
                self.choose(PRICE, "word", "\"price\"")?;
                self.finish(ProductSet::BadPrice)
            }
            Some("pending") => {
                self.pos += 1;
                let kind = self.pending()?;
                self.with_connection_after(&["to", "on", "for"], |p, connection| {
                    p.finish(match kind {
                        Pending::Updates => ProductSet::PendingUpdates { connection },
                        Pending::Creates => ProductSet::PendingCreates { connection },
                    })
                })
            }
            Some("field") => {
                self.pos += 1;
                let field = self.product_field(&[])?;
                self.finish(ProductSet::WithField { field })
            }
            _ => {
                let field = self.product_field(WITH_WORDS)?;
                self.finish(ProductSet::WithField { field })
            }
        }
    }

    fn without(mut self) -> Result<ProductSet> {
        // "without CONNECTION category" first: a connection may share a word with a field.
        if let Ok(found) = self.connections() {
            for (connection, mut p) in found {
                if p.eat(&["category"]) && p.at_end() {
                    return Ok(ProductSet::WithoutCategory { connection });
                }
            }
        }
        match self.peek_keyword() {
            Some("issues" | "issue") => {
                self.pos += 1;
                return self.finish(ProductSet::WithoutIssues);
            }
            Some("field") => {
                self.pos += 1;
                let field = self.product_field(&[])?;
                return self.finish(ProductSet::WithoutField { field });
            }
            _ => {}
        }
        match self.product_field(&["issues"]) {
            Ok(field) => self.finish(ProductSet::WithoutField { field }),
            Err(e) => {
                // "without shopfy category": a misspelt connection, not a misspelt field.
                let words = &self.lx.words[self.pos..];
                let ends_in_category = words.len() >= 2
                    && words
                        .last()
                        .is_some_and(|w| !w.quoted && w.lower == "category");
                if ends_in_category && let Err(conn) = self.connections() {
                    return Err(conn);
                }
                Err(e)
            }
        }
    }

    // --- orders --------------------------------------------------------------------------

    fn order(mut self) -> Result<OrderSet> {
        if self.at_end() {
            return Err(self.error(
                SetParseErrorKind::Empty,
                0..self.lx.input.len(),
                "a set such as \"on CONNECTION\", \"of today\" or \"of 2025 march\"",
                None,
            ));
        }
        self.eat(&["orders", "order"]);
        let expected = "a set such as \"on CONNECTION\", \"of today\" or \"of 2025 march\"";
        let start = self.choose(ORDER_START, "set", expected)?;
        match start {
            OrderStart::On => self
                .with_connection(|p, connection| p.finish(OrderSet::OnConnection { connection })),
            OrderStart::With => {
                self.choose(
                    &[("pending", ())],
                    "word",
                    "\"pending updates\" or \"pending creates\"",
                )?;
                let kind = self.pending()?;
                self.with_connection_after(&["to", "on", "for"], |p, connection| {
                    p.finish(match kind {
                        Pending::Updates => OrderSet::PendingUpdates { connection },
                        Pending::Creates => OrderSet::PendingCreates { connection },
                    })
                })
            }
            OrderStart::Of => self.order_of(),
            OrderStart::This => self.this(),
            OrderStart::Last => {
                self.choose(&[("week", ())], "word", "\"week\"")?;
                self.finish(OrderSet::LastWeek)
            }
            OrderStart::Yesterday => self.finish(OrderSet::Yesterday),
            OrderStart::Today => self.finish(OrderSet::Today),
        }
    }

    fn this(mut self) -> Result<OrderSet> {
        let month = self.choose(
            &[("month", true), ("year", false)],
            "word",
            "\"month\" or \"year\"",
        )?;
        self.finish(if month {
            OrderSet::ThisMonth
        } else {
            OrderSet::ThisYear
        })
    }

    /// After "of": a relative period, YEAR, YEAR MONTH or MONTH YEAR.
    fn order_of(mut self) -> Result<OrderSet> {
        let expected = "\"this month\", \"last week\", \"today\", a year or a year and month";
        let Some(word) = self.peek() else {
            return Err(self.missing("period", expected));
        };
        match self.peek_keyword() {
            Some("this") => {
                self.pos += 1;
                return self.this();
            }
            Some("last") => {
                self.pos += 1;
                self.choose(&[("week", ())], "word", "\"week\"")?;
                return self.finish(OrderSet::LastWeek);
            }
            Some("yesterday") => {
                self.pos += 1;
                return self.finish(OrderSet::Yesterday);
            }
            Some("today") => {
                self.pos += 1;
                return self.finish(OrderSet::Today);
            }
            _ => {}
        }
        let is_digits = !word.lower.is_empty() && word.lower.bytes().all(|b| b.is_ascii_digit());
        if is_digits && word.lower.len() <= 2 {
            // "of 03 2025": month first.
            let month = self.month()?;
            let year = self.year()?;
            return self.finish(OrderSet::OfMonth { year, month });
        }
        if word.lower.chars().any(|c| c.is_ascii_digit()) {
            let year = self.year()?;
            if self.at_end() {
                return Ok(OrderSet::OfYear { year });
            }
            let month = self.month()?;
            return self.finish(OrderSet::OfMonth { year, month });
        }
        if !word.quoted && month_number(&word.lower).is_some() {
            let month = self.month()?;
            let year = self.year()?;
            return self.finish(OrderSet::OfMonth { year, month });
        }
        let candidates = ["this", "last", "yesterday", "today"]
            .into_iter()
            .chain(MONTHS);
        Err(self.unknown_word(word, expected, nearest(&word.lower, candidates)))
    }

    fn year(&mut self) -> Result<i32> {
        let Some(word) = self.peek() else {
            return Err(self.missing("year", YEAR_EXPECTED));
        };
        let text = &word.lower;
        let year = if text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse::<i32>()
                .ok()
                .filter(|y| (MIN_YEAR..=MAX_YEAR).contains(y))
        } else {
            None
        };
        match year {
            Some(year) => {
                self.pos += 1;
                Ok(year)
            }
            None => Err(self.error(
                SetParseErrorKind::BadYear {
                    text: word.content.clone(),
                },
                word.span.clone(),
                YEAR_EXPECTED,
                None,
            )),
        }
    }

    fn month(&mut self) -> Result<u8> {
        let Some(word) = self.peek() else {
            return Err(self.missing("month", MONTH_EXPECTED));
        };
        if !word.quoted
            && let Some(month) = month_number(&word.lower)
        {
            self.pos += 1;
            return Ok(month);
        }
        Err(self.error(
            SetParseErrorKind::BadMonth {
                text: word.content.clone(),
            },
            word.span.clone(),
            MONTH_EXPECTED,
            nearest(&word.lower, MONTHS).map(str::to_owned),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_prefers_few_edits_and_prefixes() {
        let words = ["brand", "size", "color", "colour"];
        assert_eq!(nearest("brnad", words), Some("brand"));
        assert_eq!(nearest("colr", words), Some("color"));
        assert_eq!(nearest("siz", words), Some("size"));
        assert_eq!(nearest("xyzzy", words), None);
        assert_eq!(nearest("", words), None);
    }

    #[test]
    fn lexer_splits_keywords_but_keeps_spans() {
        let lexed = lex("with Low-Stock \"a \\\" b\"").map_err(|e| e.to_string());
        let Ok(lexed) = lexed else {
            panic!("{lexed:?}");
        };
        let words: Vec<(&str, Range<usize>, bool)> = lexed
            .words
            .iter()
            .map(|w| (w.lower.as_str(), w.span.clone(), w.first))
            .collect();
        assert_eq!(
            words,
            vec![
                ("with", 0..4, true),
                ("low", 5..8, true),
                ("stock", 9..14, false),
                ("a \" b", 15..23, true),
            ]
        );
        assert_eq!(lexed.raws.len(), 3);
    }

    #[test]
    fn month_words() {
        assert_eq!(month_number("mar"), Some(3));
        assert_eq!(month_number("march"), Some(3));
        assert_eq!(month_number("03"), Some(3));
        assert_eq!(month_number("sept"), Some(9));
        assert_eq!(month_number("13"), None);
        assert_eq!(month_number("0"), None);
        assert_eq!(month_number("ma"), None);
    }
}
