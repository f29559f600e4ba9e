//! Parsing of every set phrase of DESIGN §4, their variant spellings, and located errors.

use tidemark_core::Field;
use tidemark_core::sets::{
    ConnectionRef, OrderSet, ProductSet, SetParseError, SetParseErrorKind, Vocabulary,
    parse_order_set, parse_product_set,
};

fn vocab() -> Vocabulary {
    Vocabulary::new(["Shopify", "Shopify EU", "woo", "Mercado Libre"])
}

fn conn(name: &str) -> ConnectionRef {
    ConnectionRef(name.to_owned())
}

#[track_caller]
fn check_products(cases: &[(&str, ProductSet)]) {
    let vocab = vocab();
    for (input, expected) in cases {
        match parse_product_set(input, &vocab) {
            Ok(set) => assert_eq!(&set, expected, "input {input:?}"),
            Err(e) => panic!("input {input:?} failed: {e}"),
        }
    }
}

#[track_caller]
fn check_orders(cases: &[(&str, OrderSet)]) {
    let vocab = vocab();
    for (input, expected) in cases {
        match parse_order_set(input, &vocab) {
            Ok(set) => assert_eq!(&set, expected, "input {input:?}"),
            Err(e) => panic!("input {input:?} failed: {e}"),
        }
    }
}

fn product_error(input: &str) -> SetParseError {
    match parse_product_set(input, &vocab()) {
        Ok(set) => panic!("input {input:?} parsed as {set:?}"),
        Err(e) => e,
    }
}

fn order_error(input: &str) -> SetParseError {
    match parse_order_set(input, &vocab()) {
        Ok(set) => panic!("input {input:?} parsed as {set:?}"),
        Err(e) => e,
    }
}

/// The offending text an error points at.
fn pointed(e: &SetParseError) -> &str {
    &e.input[e.span.clone()]
}

// ---------------------------------------------------------------------------------------------
// Product phrases, one row per phrase of DESIGN §4
// ---------------------------------------------------------------------------------------------

#[test]
fn every_product_phrase_parses() {
    use ProductSet::*;
    check_products(&[
        (
            "products on woo",
            OnConnection {
                connection: conn("woo"),
            },
        ),
        (
            "with barcode",
            WithField {
                field: Field::Barcode,
            },
        ),
        (
            "without images",
            WithoutField {
                field: Field::Images,
            },
        ),
        (
            "of brand Nike",
            OfBrand {
                brand: "Nike".into(),
            },
        ),
        ("of size XL", OfSize { size: "XL".into() }),
        (
            "of color red",
            OfColor {
                color: "red".into(),
            },
        ),
        (
            "active on woo",
            ActiveOn {
                connection: conn("woo"),
            },
        ),
        (
            "paused on woo",
            PausedOn {
                connection: conn("woo"),
            },
        ),
        (
            "published on woo",
            PublishedOn {
                connection: conn("woo"),
            },
        ),
        (
            "unpublished on woo",
            UnpublishedOn {
                connection: conn("woo"),
            },
        ),
        ("with issues", WithIssues),
        ("without issues", WithoutIssues),
        ("with low-stock", LowStock),
        ("out-of-stock", OutOfStock),
        ("with stock", WithStock),
        ("with low-price", LowPrice),
        ("bad price", BadPrice),
        (
            "on Shopify EU category Shoes",
            InCategory {
                connection: conn("Shopify EU"),
                category: "Shoes".into(),
            },
        ),
        (
            "without woo category",
            WithoutCategory {
                connection: conn("woo"),
            },
        ),
        (
            "with pending updates to woo",
            PendingUpdates {
                connection: conn("woo"),
            },
        ),
        (
            "with pending creates to woo",
            PendingCreates {
                connection: conn("woo"),
            },
        ),
    ]);
}

#[test]
fn every_product_field_is_accepted_after_with_and_without() {
    use ProductSet::*;
    let vocab = vocab();
    for field in Field::PRODUCT_FIELDS {
        let name = field.as_str().replace('_', " ");
        let with = if field == Field::Stock {
            "with field stock".to_owned()
        } else {
            format!("with {name}")
        };
        assert_eq!(
            parse_product_set(&with, &vocab),
            Ok(WithField { field }),
            "{with}"
        );
        let without = format!("without {name}");
        assert_eq!(
            parse_product_set(&without, &vocab),
            Ok(WithoutField { field }),
            "{without}"
        );
    }
}

#[test]
fn product_variant_spellings() {
    use ProductSet::*;
    check_products(&[
        // "products" optional, any case, extra whitespace.
        (
            "on woo",
            OnConnection {
                connection: conn("woo"),
            },
        ),
        (
            "  PRODUCTS   On   WOO  ",
            OnConnection {
                connection: conn("woo"),
            },
        ),
        (
            "product on woo",
            OnConnection {
                connection: conn("woo"),
            },
        ),
        // Connection names: case-insensitive, longest first, several words.
        (
            "on shopify eu",
            OnConnection {
                connection: conn("Shopify EU"),
            },
        ),
        (
            "on Shopify",
            OnConnection {
                connection: conn("Shopify"),
            },
        ),
        (
            "on mercado   libre",
            OnConnection {
                connection: conn("Mercado Libre"),
            },
        ),
        (
            "on \"shopify eu\"",
            OnConnection {
                connection: conn("Shopify EU"),
            },
        ),
        (
            "on Shopify category EU Shoes",
            InCategory {
                connection: conn("Shopify"),
                category: "EU Shoes".into(),
            },
        ),
        (
            "on shopify eu category \"Men's  Shoes\"",
            InCategory {
                connection: conn("Shopify EU"),
                category: "Men's  Shoes".into(),
            },
        ),
        (
            "without Shopify EU category",
            WithoutCategory {
                connection: conn("Shopify EU"),
            },
        ),
        // Field spellings.
        (
            "with compare at price",
            WithField {
                field: Field::CompareAtPrice,
            },
        ),
        (
            "with compare-at price",
            WithField {
                field: Field::CompareAtPrice,
            },
        ),
        (
            "with Compare-At-Price",
            WithField {
                field: Field::CompareAtPrice,
            },
        ),
        (
            "with compare_at_price",
            WithField {
                field: Field::CompareAtPrice,
            },
        ),
        (
            "without image",
            WithoutField {
                field: Field::Images,
            },
        ),
        (
            "with photos",
            WithField {
                field: Field::Images,
            },
        ),
        ("with tag", WithField { field: Field::Tags }),
        ("with SKU", WithField { field: Field::Sku }),
        (
            "with gtin",
            WithField {
                field: Field::Barcode,
            },
        ),
        (
            "with attribute",
            WithField {
                field: Field::Attributes,
            },
        ),
        (
            "without stock",
            WithoutField {
                field: Field::Stock,
            },
        ),
        (
            "with field stock",
            WithField {
                field: Field::Stock,
            },
        ),
        (
            "with inventory",
            WithField {
                field: Field::Stock,
            },
        ),
        (
            "without category",
            WithoutField {
                field: Field::Category,
            },
        ),
        // Values: quoted or the rest of the phrase.
        (
            "of brand \"Acme Co\"",
            OfBrand {
                brand: "Acme Co".into(),
            },
        ),
        (
            "of brand Acme   Co",
            OfBrand {
                brand: "Acme Co".into(),
            },
        ),
        (
            "of brand Coca-Cola",
            OfBrand {
                brand: "Coca-Cola".into(),
            },
        ),
        (
            "of brand “Acme Co”",
            OfBrand {
                brand: "Acme Co".into(),
            },
        ),
        (
            "of brand \"say \\\"hi\\\"\"",
            OfBrand {
                brand: "say \"hi\"".into(),
            },
        ),
        (
            "OF BRAND with issues",
            OfBrand {
                brand: "with issues".into(),
            },
        ),
        (
            "of colour navy blue",
            OfColor {
                color: "navy blue".into(),
            },
        ),
        (
            "of Color Red",
            OfColor {
                color: "Red".into(),
            },
        ),
        ("of size 42", OfSize { size: "42".into() }),
        // Status sets with "on" left out.
        (
            "active woo",
            ActiveOn {
                connection: conn("woo"),
            },
        ),
        (
            "Published on Shopify EU",
            PublishedOn {
                connection: conn("Shopify EU"),
            },
        ),
        // Stock and price sets.
        ("with issue", WithIssues),
        ("low stock", LowStock),
        ("with low stock", LowStock),
        ("Low-Stock", LowStock),
        ("out of stock", OutOfStock),
        ("with out-of-stock", OutOfStock),
        ("products out of stock", OutOfStock),
        ("low price", LowPrice),
        ("with low price", LowPrice),
        ("with bad price", BadPrice),
        ("bad prices", BadPrice),
        // Pending rows.
        (
            "with pending update to Shopify EU",
            PendingUpdates {
                connection: conn("Shopify EU"),
            },
        ),
        (
            "with pending creates woo",
            PendingCreates {
                connection: conn("woo"),
            },
        ),
        (
            "with pending create to woo",
            PendingCreates {
                connection: conn("woo"),
            },
        ),
    ]);
}

#[test]
fn input_is_nfc_normalised() {
    // "é" typed as e + combining acute, vocabulary in NFC.
    let vocab = Vocabulary::new(["Boutique Café"]);
    assert_eq!(
        parse_product_set("on boutique cafe\u{301}", &vocab),
        Ok(ProductSet::OnConnection {
            connection: conn("Boutique Café")
        })
    );
    assert_eq!(
        parse_product_set("of brand Ame\u{301}lie", &vocab),
        Ok(ProductSet::OfBrand {
            brand: "Amélie".into()
        })
    );
}

#[test]
fn a_connection_that_shares_a_word_with_a_field() {
    let vocab = Vocabulary::new(["price", "Issues"]);
    assert_eq!(
        parse_product_set("without price category", &vocab),
        Ok(ProductSet::WithoutCategory {
            connection: conn("price")
        })
    );
    assert_eq!(
        parse_product_set("without price", &vocab),
        Ok(ProductSet::WithoutField {
            field: Field::Price
        })
    );
    assert_eq!(
        parse_product_set("without issues", &vocab),
        Ok(ProductSet::WithoutIssues)
    );
    assert_eq!(
        parse_product_set("without issues category", &vocab),
        Ok(ProductSet::WithoutCategory {
            connection: conn("Issues")
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Order phrases
// ---------------------------------------------------------------------------------------------

#[test]
fn every_order_phrase_parses() {
    use OrderSet::*;
    check_orders(&[
        (
            "orders on woo",
            OnConnection {
                connection: conn("woo"),
            },
        ),
        (
            "with pending updates to woo",
            PendingUpdates {
                connection: conn("woo"),
            },
        ),
        (
            "with pending creates to woo",
            PendingCreates {
                connection: conn("woo"),
            },
        ),
        (
            "of 2025 march",
            OfMonth {
                year: 2025,
                month: 3,
            },
        ),
        ("of 2024", OfYear { year: 2024 }),
        ("of this month", ThisMonth),
        ("of this year", ThisYear),
        ("of last week", LastWeek),
        ("of yesterday", Yesterday),
        ("of today", Today),
    ]);
}

#[test]
fn order_variant_spellings() {
    use OrderSet::*;
    check_orders(&[
        (
            "on Shopify EU",
            OnConnection {
                connection: conn("Shopify EU"),
            },
        ),
        (
            "ORDERS ON MERCADO LIBRE",
            OnConnection {
                connection: conn("Mercado Libre"),
            },
        ),
        (
            "order with pending update to woo",
            PendingUpdates {
                connection: conn("woo"),
            },
        ),
        (
            "with pending create woo",
            PendingCreates {
                connection: conn("woo"),
            },
        ),
        (
            "of march 2025",
            OfMonth {
                year: 2025,
                month: 3,
            },
        ),
        (
            "of 2025-03",
            OfMonth {
                year: 2025,
                month: 3,
            },
        ),
        (
            "of 2025 03",
            OfMonth {
                year: 2025,
                month: 3,
            },
        ),
        (
            "of 2025 3",
            OfMonth {
                year: 2025,
                month: 3,
            },
        ),
        (
            "of 2025/12",
            OfMonth {
                year: 2025,
                month: 12,
            },
        ),
        (
            "of 03 2025",
            OfMonth {
                year: 2025,
                month: 3,
            },
        ),
        (
            "of 2025 Mar",
            OfMonth {
                year: 2025,
                month: 3,
            },
        ),
        (
            "of MAR 2025",
            OfMonth {
                year: 2025,
                month: 3,
            },
        ),
        (
            "of 2025 sept",
            OfMonth {
                year: 2025,
                month: 9,
            },
        ),
        (
            "of 2025 sep",
            OfMonth {
                year: 2025,
                month: 9,
            },
        ),
        (
            "of December 1999",
            OfMonth {
                year: 1999,
                month: 12,
            },
        ),
        (
            "of 2026 january",
            OfMonth {
                year: 2026,
                month: 1,
            },
        ),
        ("orders of 1970", OfYear { year: 1970 }),
        ("this month", ThisMonth),
        ("This Year", ThisYear),
        ("last week", LastWeek),
        ("orders yesterday", Yesterday),
        ("today", Today),
        ("  orders   of   TODAY ", Today),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Errors: kind, span and suggestion
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_keyword_points_at_the_word_and_suggests() {
    let e = product_error("of brnad Nike");
    assert_eq!(
        e.kind,
        SetParseErrorKind::UnknownWord {
            word: "brnad".into()
        }
    );
    assert_eq!(e.span, 3..8);
    assert_eq!(e.suggestion.as_deref(), Some("brand"));
    assert_eq!(
        e.to_string(),
        "unknown word \"brnad\" at 3..8 in \"of brnad Nike\": did you mean \"brand\"?"
    );
    assert_eq!(e.corrected_input().as_deref(), Some("of brand Nike"));

    let e = product_error("products wiht issues");
    assert_eq!(
        (pointed(&e), e.suggestion.as_deref()),
        ("wiht", Some("with"))
    );
    assert_eq!(e.span, 9..13);

    let e = product_error("with isues");
    assert_eq!(
        (pointed(&e), e.suggestion.as_deref()),
        ("isues", Some("issues"))
    );

    let e = product_error("with low-stok");
    assert_eq!(
        (pointed(&e), e.suggestion.as_deref()),
        ("stok", Some("stock"))
    );
    assert_eq!(e.span, 9..13);

    let e = product_error("of colr red");
    assert_eq!(e.suggestion.as_deref(), Some("color"));

    let e = product_error("actve on woo");
    assert_eq!(
        (pointed(&e), e.suggestion.as_deref()),
        ("actve", Some("active"))
    );

    let e = product_error("with pending upates to woo");
    assert_eq!(
        (pointed(&e), e.suggestion.as_deref()),
        ("upates", Some("updates"))
    );

    let e = order_error("of thsi month");
    assert_eq!(
        (pointed(&e), e.suggestion.as_deref()),
        ("thsi", Some("this"))
    );

    let e = order_error("lst week");
    assert_eq!(
        (pointed(&e), e.suggestion.as_deref()),
        ("lst", Some("last"))
    );
}

#[test]
fn a_word_from_later_in_a_phrase_suggests_the_phrase() {
    let e = product_error("issues");
    assert_eq!(e.suggestion.as_deref(), Some("with issues"));
    let e = product_error("brand Nike");
    assert_eq!(e.suggestion.as_deref(), Some("of brand"));
    assert_eq!(e.corrected_input().as_deref(), Some("of brand Nike"));
    let e = product_error("Shopify EU");
    assert_eq!(e.suggestion.as_deref(), Some("on Shopify EU"));
}

#[test]
fn unknown_connection_suggests_the_nearest() {
    let e = product_error("on shopfy");
    assert_eq!(
        e.kind,
        SetParseErrorKind::UnknownConnection {
            name: "shopfy".into()
        }
    );
    assert_eq!(e.span, 3..9);
    assert_eq!(e.suggestion.as_deref(), Some("Shopify"));

    let e = product_error("on shopfy eu category Shoes");
    assert_eq!(pointed(&e), "shopfy eu");
    assert_eq!(e.suggestion.as_deref(), Some("Shopify EU"));
    assert_eq!(
        e.corrected_input().as_deref(),
        Some("on Shopify EU category Shoes")
    );

    let e = product_error("with pending updates to wooo");
    assert_eq!(
        (pointed(&e), e.suggestion.as_deref()),
        ("wooo", Some("woo"))
    );

    let e = product_error("without mercado lbre category");
    assert!(
        matches!(e.kind, SetParseErrorKind::UnknownConnection { .. }),
        "{e}"
    );
    assert_eq!(e.suggestion.as_deref(), Some("Mercado Libre"));

    let e = order_error("on amazon");
    assert_eq!(
        e.kind,
        SetParseErrorKind::UnknownConnection {
            name: "amazon".into()
        }
    );
    assert_eq!(e.suggestion, None);
    assert!(
        e.to_string()
            .ends_with("expected a connection name such as \"Shopify\", \"Shopify EU\", \"woo\""),
        "{e}"
    );
}

#[test]
fn missing_values_point_at_the_end() {
    let e = product_error("of brand");
    assert_eq!(
        e.kind,
        SetParseErrorKind::MissingValue {
            what: "brand".into()
        }
    );
    assert_eq!(e.span, 8..8);
    assert_eq!(
        e.to_string(),
        "missing brand at 8..8 in \"of brand\": expected a brand, quoted if it has leading or trailing spaces"
    );

    let e = product_error("of size  ");
    assert_eq!(
        e.kind,
        SetParseErrorKind::MissingValue {
            what: "size".into()
        }
    );
    assert_eq!(e.span, 7..7);

    let e = product_error("of color \"  \"");
    assert_eq!(
        e.kind,
        SetParseErrorKind::MissingValue {
            what: "color".into()
        }
    );
    assert_eq!(pointed(&e), "\"  \"");

    let e = product_error("on woo category");
    assert_eq!(
        e.kind,
        SetParseErrorKind::MissingValue {
            what: "category".into()
        }
    );

    let e = product_error("with pending updates to");
    assert_eq!(
        e.kind,
        SetParseErrorKind::MissingValue {
            what: "connection".into()
        }
    );

    let e = product_error("with");
    assert_eq!(
        e.kind,
        SetParseErrorKind::MissingValue {
            what: "field".into()
        }
    );

    let e = order_error("of march");
    assert_eq!(
        e.kind,
        SetParseErrorKind::MissingValue {
            what: "year".into()
        }
    );
}

#[test]
fn bad_months_and_years() {
    let e = order_error("of 2025 13");
    assert_eq!(e.kind, SetParseErrorKind::BadMonth { text: "13".into() });
    assert_eq!(e.span, 8..10);

    let e = order_error("of 2025 marhc");
    assert_eq!(
        e.kind,
        SetParseErrorKind::BadMonth {
            text: "marhc".into()
        }
    );
    assert_eq!(e.suggestion.as_deref(), Some("march"));

    let e = order_error("of 20255");
    assert_eq!(
        e.kind,
        SetParseErrorKind::BadYear {
            text: "20255".into()
        }
    );
    assert_eq!(e.span, 3..8);

    let e = order_error("of 1969");
    assert_eq!(
        e.kind,
        SetParseErrorKind::BadYear {
            text: "1969".into()
        }
    );

    let e = order_error("of march 25");
    assert_eq!(e.kind, SetParseErrorKind::BadYear { text: "25".into() });
    assert!(
        e.to_string().contains("expected a year from 1970 to 9999"),
        "{e}"
    );

    let e = order_error("of 20x5");
    assert!(matches!(e.kind, SetParseErrorKind::BadYear { .. }), "{e}");

    let e = order_error("of 2025-00");
    assert_eq!(e.kind, SetParseErrorKind::BadMonth { text: "00".into() });
}

#[test]
fn trailing_words_suggest_the_complete_set() {
    let e = product_error("with issues please");
    assert_eq!(
        e.kind,
        SetParseErrorKind::TrailingWords {
            text: "please".into()
        }
    );
    assert_eq!(e.span, 12..18);
    assert_eq!(e.suggestion.as_deref(), Some("with issues"));
    assert_eq!(e.corrected_input().as_deref(), Some("with issues"));

    let e = order_error("of today and yesterday");
    assert_eq!(pointed(&e), "and yesterday");
    assert_eq!(e.suggestion.as_deref(), Some("of today"));

    let e = order_error("of 2025 march 3");
    assert_eq!(pointed(&e), "3");

    let e = product_error("of brand \"Acme\" Co");
    assert_eq!(pointed(&e), "Co");

    // After "on CONNECTION" only "category" may follow.
    let e = product_error("on woo categry Shoes");
    assert_eq!(
        (pointed(&e), e.suggestion.as_deref()),
        ("categry", Some("category"))
    );
}

#[test]
fn empty_input() {
    for input in ["", "   ", "\t\n"] {
        let e = product_error(input);
        assert_eq!(e.kind, SetParseErrorKind::Empty, "{input:?}");
        assert!(e.to_string().starts_with("empty set at 0.."), "{e}");
        assert_eq!(order_error(input).kind, SetParseErrorKind::Empty);
    }
    let e = product_error("products");
    assert_eq!(
        e.kind,
        SetParseErrorKind::MissingValue { what: "set".into() }
    );
}

#[test]
fn order_fields_are_not_product_fields() {
    let e = product_error("with payment status");
    assert_eq!(
        e.kind,
        SetParseErrorKind::NotAProductField {
            field: "payment status".into()
        }
    );
    assert_eq!(pointed(&e), "payment status");
    assert_eq!(
        e.to_string(),
        "\"payment status\" is not a product field at 5..19 in \"with payment status\": did you mean \"status\"?"
    );

    let e = product_error("without shipments");
    assert_eq!(
        e.kind,
        SetParseErrorKind::NotAProductField {
            field: "shipments".into()
        }
    );
}

#[test]
fn unknown_fields_suggest_a_product_field() {
    let e = product_error("with imgaes");
    assert_eq!(
        e.kind,
        SetParseErrorKind::UnknownWord {
            word: "imgaes".into()
        }
    );
    assert_eq!(e.suggestion.as_deref(), Some("images"));

    let e = product_error("without barcod");
    assert_eq!(e.suggestion.as_deref(), Some("barcode"));

    let e = product_error("with xyzzy");
    assert_eq!(e.suggestion, None);
    assert!(e.to_string().contains("expected a product field"), "{e}");
}

#[test]
fn unterminated_quote() {
    let e = product_error("of brand \"Acme");
    assert_eq!(e.kind, SetParseErrorKind::UnterminatedQuote);
    assert_eq!(pointed(&e), "\"Acme");
    assert_eq!(e.corrected_input().as_deref(), Some("of brand \"Acme\""));
}

#[test]
fn spans_are_byte_ranges_in_non_ascii_input() {
    let e = product_error("of brand Ärger extra \"x");
    assert_eq!(pointed(&e), "\"x");
    let e = product_error("äöü with issues");
    assert_eq!(e.span, 0..6);
}

#[test]
fn a_connection_named_like_a_filler_word() {
    let vocab = Vocabulary::new(["On Air", "woo"]);
    assert_eq!(
        parse_product_set("paused on air", &vocab),
        Ok(ProductSet::PausedOn {
            connection: conn("On Air")
        })
    );
    assert_eq!(
        parse_product_set("paused on on air", &vocab),
        Ok(ProductSet::PausedOn {
            connection: conn("On Air")
        })
    );
    assert_eq!(
        parse_order_set("with pending updates on air", &vocab),
        Ok(OrderSet::PendingUpdates {
            connection: conn("On Air")
        })
    );
    assert_eq!(
        parse_product_set("paused on woo", &vocab),
        Ok(ProductSet::PausedOn {
            connection: conn("woo")
        })
    );
}
