//! Autocomplete of the set search bar.

use tidemark_core::sets::{
    SetTarget, Suggestion, Vocabulary, parse_order_set, parse_product_set, suggest,
};

fn vocab() -> Vocabulary {
    Vocabulary::new(["Shopify", "Shopify EU", "woo"])
        .with_brands(["Acme", "Nike", "Adidas"])
        .with_colors(["red", "navy blue"])
        .with_sizes(["S", "M", "XL"])
        .with_categories(["Shoes", "Shirts"])
}

fn phrases(partial: &str, target: SetTarget, limit: usize) -> Vec<String> {
    suggest(partial, &vocab(), target, limit)
        .into_iter()
        .map(|s| s.phrase)
        .collect()
}

#[track_caller]
fn check(partial: &str, target: SetTarget, expected: &[&str]) {
    assert_eq!(
        phrases(partial, target, expected.len()),
        expected,
        "partial {partial:?}"
    );
}

#[test]
fn empty_input_lists_the_simple_sets_first() {
    check(
        "",
        SetTarget::Products,
        &[
            "with issues",
            "without issues",
            "with low-stock",
            "out-of-stock",
            "with stock",
        ],
    );
    check(
        "",
        SetTarget::Orders,
        &[
            "of today",
            "of yesterday",
            "of this month",
            "of this year",
            "of last week",
        ],
    );
}

#[test]
fn completes_keywords() {
    check("with is", SetTarget::Products, &["with issues"]);
    check("out", SetTarget::Products, &["out-of-stock"]);
    check("low s", SetTarget::Products, &["with low-stock"]);
    check("Without Iss", SetTarget::Products, &["without issues"]);
    check(
        "with compare",
        SetTarget::Products,
        &["with compare-at price"],
    );
    check("with ima", SetTarget::Products, &["with images"]);
    check("tod", SetTarget::Orders, &["of today"]);
    check(
        "of this",
        SetTarget::Orders,
        &["of this month", "of this year"],
    );
}

#[test]
fn completes_connection_names() {
    check(
        "on sh",
        SetTarget::Products,
        &[
            "on Shopify",
            "on Shopify EU",
            "on Shopify category ",
            "on Shopify EU category ",
        ],
    );
    check("paused on w", SetTarget::Products, &["paused on woo"]);
    check(
        "without woo c",
        SetTarget::Products,
        &["without woo category"],
    );
    check(
        "with pending updates to ",
        SetTarget::Orders,
        &[
            "with pending updates to Shopify",
            "with pending updates to Shopify EU",
            "with pending updates to woo",
        ],
    );
}

#[test]
fn completes_known_values() {
    check(
        "of b",
        SetTarget::Products,
        &[
            "of brand ",
            "of brand Acme",
            "of brand Nike",
            "of brand Adidas",
        ],
    );
    check(
        "of brand a",
        SetTarget::Products,
        &["of brand Acme", "of brand Adidas"],
    );
    check("of colour n", SetTarget::Products, &["of color navy blue"]);
    check("of size x", SetTarget::Products, &["of size XL"]);
    check(
        "on woo category sh",
        SetTarget::Products,
        &["on woo category Shoes", "on woo category Shirts"],
    );
}

#[test]
fn a_typed_value_the_vocabulary_does_not_know_is_offered_after_known_ones() {
    check(
        "of brand Ac",
        SetTarget::Products,
        &["of brand Acme", "of brand Ac"],
    );
    check("of brand Zed", SetTarget::Products, &["of brand Zed"]);
    // A complete set comes first.
    check(
        "on woo",
        SetTarget::Products,
        &["on woo", "on woo category "],
    );
}

#[test]
fn completes_months_of_a_typed_year() {
    check(
        "of 2025 ma",
        SetTarget::Orders,
        &["of 2025 march", "of 2025 may"],
    );
    check("of mar 2025", SetTarget::Orders, &["of 2025 march"]);
    check(
        "of 2025-0",
        SetTarget::Orders,
        &["of 2025 january", "of 2025 february"],
    );
    check(
        "of 2025",
        SetTarget::Orders,
        &["of 2025", "of 2025 january"],
    );
}

#[test]
fn word_prefixes_and_typos() {
    check(
        "w pen up",
        SetTarget::Products,
        &["with pending updates to Shopify"],
    );
    check("wiht issu", SetTarget::Products, &["with issues"]);
    check("of yesterdya", SetTarget::Orders, &["of yesterday"]);
}

#[test]
fn keeps_a_typed_leading_products_or_orders() {
    check(
        "products with is",
        SetTarget::Products,
        &["products with issues"],
    );
    check("orders of tod", SetTarget::Orders, &["orders of today"]);
}

#[test]
fn labels_say_what_the_set_selects() {
    let found = suggest("with is", &vocab(), SetTarget::Products, 1);
    assert_eq!(
        found,
        vec![Suggestion {
            phrase: "with issues".into(),
            label: "products with an open issue".into()
        }]
    );
    let found = suggest("of b", &vocab(), SetTarget::Products, 1);
    assert_eq!(found[0].label, "products of a brand");
}

#[test]
fn limit_and_determinism() {
    assert!(phrases("", SetTarget::Products, 0).is_empty());
    assert_eq!(phrases("", SetTarget::Products, 7).len(), 7);
    assert_eq!(
        phrases("o", SetTarget::Products, 50),
        phrases("o", SetTarget::Products, 50)
    );
    assert!(phrases("qqqq", SetTarget::Products, 10).is_empty());
}

#[test]
fn every_complete_suggestion_parses() {
    let vocab = vocab();
    for partial in [
        "", "o", "w", "with", "of", "on", "a", "p", "u", "b", "l", "without",
    ] {
        for s in suggest(partial, &vocab, SetTarget::Products, 500) {
            if !s.phrase.ends_with(' ') {
                assert!(
                    parse_product_set(&s.phrase, &vocab).is_ok(),
                    "{:?}",
                    s.phrase
                );
            }
        }
    }
    for partial in ["", "o", "of", "of 2025", "w", "t", "l"] {
        for s in suggest(partial, &vocab, SetTarget::Orders, 500) {
            assert!(parse_order_set(&s.phrase, &vocab).is_ok(), "{:?}", s.phrase);
        }
    }
}
