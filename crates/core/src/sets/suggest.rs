//! Autocomplete for the set search bar (GET /sets/suggest?q=…).
//!
//! Every phrase the vocabulary makes possible is a candidate (keywords, each connection, known
//! brands, colors, sizes and categories), with the alternative spellings the parser accepts as
//! extra match keys. A candidate matches the typed text by plain prefix, by word-wise prefix
//! ("w pen up" → "with pending updates to woo") or, for typos, by Jaro-Winkler similarity of
//! its start. The order is fixed: match quality, then the candidate's place in the grammar,
//! then the vocabulary's order, so the same input always gives the same list.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::parse::{
    MAX_YEAR, MIN_YEAR, MONTHS, PRODUCT_FIELD_SPELLINGS, Vocabulary, nfc, parse_order_set,
    parse_product_set,
};
use super::{ConnectionRef, OrderSet, ProductSet};
use crate::model::Field;

/// Which browser the search bar filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetTarget {
    Products,
    Orders,
}

/// One completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The whole phrase to put in the search bar. It ends with a space when a value is still
    /// to be typed ("of brand ").
    pub phrase: String,
    /// What the phrase selects, for the dropdown.
    pub label: String,
}

/// Completions of `partial`, best first, at most `limit`.
pub fn suggest(
    partial: &str,
    vocab: &Vocabulary,
    target: SetTarget,
    limit: usize,
) -> Vec<Suggestion> {
    let typed = Typed::new(partial, target);
    let candidates = match target {
        SetTarget::Products => product_candidates(vocab),
        SetTarget::Orders => order_candidates(vocab, &typed.key),
    };

    let mut ranked: Vec<(Rank, usize, Suggestion)> = Vec::new();
    if let Some((set_is_value, phrase, label)) = parsed(partial, vocab, target) {
        // A value the vocabulary does not know is still a valid set, but known values that
        // extend what was typed come first.
        let tier = if set_is_value {
            Tier::FreeValue
        } else {
            Tier::Exact
        };
        let phrase = format!("{}{phrase}", typed.lead);
        ranked.push((Rank { tier, score: 0 }, 0, Suggestion { phrase, label }));
    }
    for (order, candidate) in candidates.iter().enumerate() {
        let Some(rank) = candidate
            .keys
            .iter()
            .filter_map(|key| typed.rank(key, candidate.placeholder))
            .min()
        else {
            continue;
        };
        ranked.push((
            rank,
            order + 1,
            Suggestion {
                phrase: format!("{}{}", typed.lead, candidate.phrase),
                label: candidate.label.clone(),
            },
        ));
    }
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut seen = HashSet::new();
    ranked
        .into_iter()
        .map(|(_, _, s)| s)
        .filter(|s| seen.insert(s.phrase.clone()))
        .take(limit)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    Exact,
    Prefix,
    FreeValue,
    WordPrefix,
    Fuzzy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    tier: Tier,
    /// Lower is better (negated similarity in thousandths for fuzzy matches).
    score: i64,
}

/// The typed text, folded for matching.
struct Typed {
    /// "products " or "orders " if the user typed it: kept in front of every phrase.
    lead: &'static str,
    key: String,
    /// The user finished the last word.
    trailing_space: bool,
}

impl Typed {
    fn new(partial: &str, target: SetTarget) -> Self {
        let mut key = match_key(partial);
        let trailing_space = !key.is_empty() && partial.ends_with(char::is_whitespace);
        let (long, short, lead) = match target {
            SetTarget::Products => ("products", "product", "products "),
            SetTarget::Orders => ("orders", "order", "orders "),
        };
        let mut lead_used = "";
        for word in [long, short] {
            if key == word {
                key.clear();
                lead_used = lead;
                break;
            }
            if let Some(rest) = key.strip_prefix(word).and_then(|r| r.strip_prefix(' ')) {
                key = rest.to_owned();
                lead_used = lead;
                break;
            }
        }
        Self {
            lead: lead_used,
            key,
            trailing_space,
        }
    }

    fn rank(&self, candidate: &str, placeholder: bool) -> Option<Rank> {
        let typed = self.key.as_str();
        if typed.is_empty() {
            return Some(Rank {
                tier: Tier::Prefix,
                score: 0,
            });
        }
        if placeholder && candidate.trim_end() == typed {
            // The user already typed all the placeholder would insert.
            return None;
        }
        if candidate == typed {
            return Some(Rank {
                tier: Tier::Exact,
                score: 0,
            });
        }
        let typed_spaced = if self.trailing_space {
            format!("{typed} ")
        } else {
            typed.to_owned()
        };
        if candidate.starts_with(&typed_spaced) || (placeholder && candidate.starts_with(typed)) {
            return Some(Rank {
                tier: Tier::Prefix,
                score: 0,
            });
        }
        let typed_words: Vec<&str> = typed.split(' ').collect();
        let candidate_words: Vec<&str> = candidate.split(' ').collect();
        if typed_words.len() <= candidate_words.len()
            && typed_words
                .iter()
                .zip(&candidate_words)
                .all(|(t, c)| c.starts_with(t))
        {
            return Some(Rank {
                tier: Tier::WordPrefix,
                score: 0,
            });
        }
        let length = typed.chars().count();
        if length >= 3 {
            let start: String = candidate.chars().take(length).collect();
            let similarity = strsim::jaro_winkler(typed, &start);
            if similarity >= 0.88 {
                return Some(Rank {
                    tier: Tier::Fuzzy,
                    score: -((similarity * 1000.0).round() as i64),
                });
            }
        }
        None
    }
}

/// Lowercase, NFC, separators and quotes dropped, whitespace collapsed: "Low-Stock" and
/// "low stock" have the same key.
fn match_key(text: &str) -> String {
    let spaced: String = nfc(text)
        .chars()
        .filter(|c| !matches!(c, '"' | '“' | '”' | '\\'))
        .map(|c| if matches!(c, '-' | '_' | '/') { ' ' } else { c })
        .collect();
    spaced
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The typed text as a complete set: (is it a free value, canonical phrase, label).
fn parsed(partial: &str, vocab: &Vocabulary, target: SetTarget) -> Option<(bool, String, String)> {
    match target {
        SetTarget::Products => {
            let set = parse_product_set(partial, vocab).ok()?;
            let value = matches!(
                set,
                ProductSet::OfBrand { .. }
                    | ProductSet::OfSize { .. }
                    | ProductSet::OfColor { .. }
                    | ProductSet::InCategory { .. }
            );
            Some((value, set.to_string(), set.describe()))
        }
        SetTarget::Orders => {
            let set = parse_order_set(partial, vocab).ok()?;
            Some((false, set.to_string(), set.describe()))
        }
    }
}

struct Candidate {
    phrase: String,
    label: String,
    /// Match keys: the phrase's and its alternative spellings'.
    keys: Vec<String>,
    /// Ends where a value is to be typed.
    placeholder: bool,
}

impl Candidate {
    fn set(phrase: String, label: String, aliases: &[String]) -> Self {
        let mut keys = vec![match_key(&phrase)];
        keys.extend(aliases.iter().map(|a| match_key(a)));
        Self {
            phrase,
            label,
            keys,
            placeholder: false,
        }
    }

    fn product(set: ProductSet, aliases: &[String]) -> Self {
        Self::set(set.to_string(), set.describe(), aliases)
    }

    fn order(set: OrderSet, aliases: &[String]) -> Self {
        Self::set(set.to_string(), set.describe(), aliases)
    }

    fn placeholder(phrase: &str, label: &str, aliases: &[&str]) -> Self {
        let mut keys = vec![match_key(phrase)];
        keys.extend(aliases.iter().map(|a| match_key(a)));
        Self {
            phrase: phrase.to_owned(),
            label: label.to_owned(),
            keys,
            placeholder: true,
        }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn product_candidates(vocab: &Vocabulary) -> Vec<Candidate> {
    let mut out = vec![
        Candidate::product(ProductSet::WithIssues, &strings(&["with issue"])),
        Candidate::product(ProductSet::WithoutIssues, &[]),
        Candidate::product(ProductSet::LowStock, &strings(&["low stock"])),
        Candidate::product(ProductSet::OutOfStock, &strings(&["with out of stock"])),
        Candidate::product(ProductSet::WithStock, &[]),
        Candidate::product(ProductSet::LowPrice, &strings(&["low price"])),
        Candidate::product(ProductSet::BadPrice, &strings(&["with bad price"])),
    ];
    let connections: Vec<ConnectionRef> = vocab
        .connections
        .iter()
        .map(|c| ConnectionRef(c.clone()))
        .collect();
    type Make = fn(ConnectionRef) -> ProductSet;
    let per_connection: [(Make, &[&str]); 4] = [
        (|connection| ProductSet::OnConnection { connection }, &[]),
        (
            |connection| ProductSet::ActiveOn { connection },
            &["active"],
        ),
        (
            |connection| ProductSet::PausedOn { connection },
            &["paused"],
        ),
        (
            |connection| ProductSet::PublishedOn { connection },
            &["published"],
        ),
    ];
    for (make, prefixes) in per_connection {
        for connection in &connections {
            let aliases: Vec<String> = prefixes
                .iter()
                .map(|p| format!("{p} {}", connection.0))
                .collect();
            out.push(Candidate::product(make(connection.clone()), &aliases));
        }
    }
    for connection in &connections {
        out.push(Candidate::product(
            ProductSet::UnpublishedOn {
                connection: connection.clone(),
            },
            &[format!("unpublished {}", connection.0)],
        ));
    }
    for connection in &connections {
        out.push(Candidate::placeholder(
            &format!(
                "on {} category ",
                super::display::connection_phrase(connection)
            ),
            &format!("products in a category on {}", connection.0),
            &[],
        ));
    }
    for connection in &connections {
        out.push(Candidate::product(
            ProductSet::WithoutCategory {
                connection: connection.clone(),
            },
            &[],
        ));
    }
    for connection in &connections {
        out.push(Candidate::product(
            ProductSet::PendingUpdates {
                connection: connection.clone(),
            },
            &[format!("with pending update to {}", connection.0)],
        ));
    }
    for connection in &connections {
        out.push(Candidate::product(
            ProductSet::PendingCreates {
                connection: connection.clone(),
            },
            &[format!("with pending create to {}", connection.0)],
        ));
    }

    out.push(Candidate::placeholder(
        "of brand ",
        "products of a brand",
        &[],
    ));
    for brand in &vocab.brands {
        out.push(Candidate::product(
            ProductSet::OfBrand {
                brand: brand.clone(),
            },
            &[],
        ));
    }
    out.push(Candidate::placeholder(
        "of size ",
        "products with a variant of a size",
        &[],
    ));
    for size in &vocab.sizes {
        out.push(Candidate::product(
            ProductSet::OfSize { size: size.clone() },
            &[],
        ));
    }
    out.push(Candidate::placeholder(
        "of color ",
        "products with a variant of a color",
        &["of colour "],
    ));
    for color in &vocab.colors {
        out.push(Candidate::product(
            ProductSet::OfColor {
                color: color.clone(),
            },
            &[format!("of colour {color}")],
        ));
    }
    for connection in &connections {
        for category in &vocab.categories {
            out.push(Candidate::product(
                ProductSet::InCategory {
                    connection: connection.clone(),
                    category: category.clone(),
                },
                &[],
            ));
        }
    }

    for field in Field::PRODUCT_FIELDS {
        let spellings = spellings_of(field);
        let aliases: Vec<String> = spellings
            .iter()
            .filter(|s| *s != "stock")
            .map(|s| format!("with {s}"))
            .chain(spellings.iter().map(|s| format!("with field {s}")))
            .collect();
        out.push(Candidate::product(
            ProductSet::WithField { field },
            &aliases,
        ));
    }
    for field in Field::PRODUCT_FIELDS {
        let aliases: Vec<String> = spellings_of(field)
            .iter()
            .map(|s| format!("without {s}"))
            .collect();
        out.push(Candidate::product(
            ProductSet::WithoutField { field },
            &aliases,
        ));
    }
    out
}

fn spellings_of(field: Field) -> Vec<String> {
    PRODUCT_FIELD_SPELLINGS
        .iter()
        .filter(|(_, f)| *f == field)
        .map(|(words, _)| words.join(" "))
        .collect()
}

fn order_candidates(vocab: &Vocabulary, typed: &str) -> Vec<Candidate> {
    let mut out = vec![
        Candidate::order(OrderSet::Today, &strings(&["today"])),
        Candidate::order(OrderSet::Yesterday, &strings(&["yesterday"])),
        Candidate::order(OrderSet::ThisMonth, &strings(&["this month"])),
        Candidate::order(OrderSet::ThisYear, &strings(&["this year"])),
        Candidate::order(OrderSet::LastWeek, &strings(&["last week"])),
    ];
    let connections: Vec<ConnectionRef> = vocab
        .connections
        .iter()
        .map(|c| ConnectionRef(c.clone()))
        .collect();
    for connection in &connections {
        out.push(Candidate::order(
            OrderSet::OnConnection {
                connection: connection.clone(),
            },
            &[],
        ));
    }
    for connection in &connections {
        out.push(Candidate::order(
            OrderSet::PendingUpdates {
                connection: connection.clone(),
            },
            &[format!("with pending update to {}", connection.0)],
        ));
    }
    for connection in &connections {
        out.push(Candidate::order(
            OrderSet::PendingCreates {
                connection: connection.clone(),
            },
            &[format!("with pending create to {}", connection.0)],
        ));
    }
    // Years are not enumerable without a clock: complete the months of a year once typed.
    let year = typed.split(' ').find_map(|w| {
        (w.len() == 4)
            .then(|| w.parse::<i32>().ok())
            .flatten()
            .filter(|y| (MIN_YEAR..=MAX_YEAR).contains(y))
    });
    if let Some(year) = year {
        out.push(Candidate::order(OrderSet::OfYear { year }, &[]));
        for (i, name) in MONTHS.iter().enumerate() {
            let Ok(month) = u8::try_from(i + 1) else {
                continue;
            };
            let short = name.get(..3).unwrap_or(name);
            let aliases = vec![
                format!("of {name} {year}"),
                format!("of {year} {short}"),
                format!("of {short} {year}"),
                format!("of {year} {month:02}"),
                format!("of {year} {month}"),
            ];
            out.push(Candidate::order(
                OrderSet::OfMonth { year, month },
                &aliases,
            ));
        }
    }
    out
}
