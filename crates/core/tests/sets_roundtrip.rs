//! Properties of the set language: the canonical phrase parses back to the same set, and no
//! input makes the parser panic or point outside what was typed.

use proptest::prelude::*;
use tidemark_core::Field;
use tidemark_core::sets::{
    ConnectionRef, OrderSet, ProductSet, Vocabulary, parse_order_set, parse_product_set,
};
use unicode_normalization::UnicodeNormalization;

/// Names chosen to be awkward: shared prefixes, spaces, a hyphen, a field word, a keyword,
/// quotes, a double space, non-ASCII.
const CONNECTIONS: &[&str] = &[
    "Shopify",
    "Shopify EU",
    "woo",
    "Mercado Libre",
    "eBay-US",
    "price",
    "Issues",
    "Boutique Café",
    "the \"best\" shop",
    "Shop  Two",
];

fn vocab() -> Vocabulary {
    Vocabulary::new(CONNECTIONS.iter().copied())
}

fn connection() -> impl Strategy<Value = ConnectionRef> {
    prop::sample::select(CONNECTIONS).prop_map(|name| ConnectionRef(name.to_owned()))
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9 '&.,-]{1,16}",
        "[a-zé\"“”\\\\ \t]{1,8}",
        prop::sample::select(vec![
            "with issues",
            "category",
            "Coca-Cola",
            "\"quoted\"",
            " leading",
            "trailing ",
            "a\\b",
            "nbsp\u{a0}x",
            "Ame\u{301}lie",
            "“smart”",
        ])
        .prop_map(str::to_owned),
    ]
    .prop_map(|v| v.nfc().collect::<String>())
    .prop_filter("a value has a non-space character", |v| {
        !v.trim().is_empty()
    })
}

fn product_field() -> impl Strategy<Value = Field> {
    prop::sample::select(Field::PRODUCT_FIELDS.to_vec())
}

fn product_set() -> impl Strategy<Value = ProductSet> {
    use ProductSet::*;
    prop_oneof![
        connection().prop_map(|connection| OnConnection { connection }),
        product_field().prop_map(|field| WithField { field }),
        product_field().prop_map(|field| WithoutField { field }),
        value().prop_map(|brand| OfBrand { brand }),
        value().prop_map(|size| OfSize { size }),
        value().prop_map(|color| OfColor { color }),
        connection().prop_map(|connection| ActiveOn { connection }),
        connection().prop_map(|connection| PausedOn { connection }),
        connection().prop_map(|connection| PublishedOn { connection }),
        connection().prop_map(|connection| UnpublishedOn { connection }),
        Just(WithIssues),
        Just(WithoutIssues),
        Just(LowStock),
        Just(OutOfStock),
        Just(WithStock),
        Just(LowPrice),
        Just(BadPrice),
        (connection(), value()).prop_map(|(connection, category)| InCategory {
            connection,
            category
        }),
        connection().prop_map(|connection| WithoutCategory { connection }),
        connection().prop_map(|connection| PendingUpdates { connection }),
        connection().prop_map(|connection| PendingCreates { connection }),
    ]
}

fn order_set() -> impl Strategy<Value = OrderSet> {
    use OrderSet::*;
    prop_oneof![
        connection().prop_map(|connection| OnConnection { connection }),
        connection().prop_map(|connection| PendingUpdates { connection }),
        connection().prop_map(|connection| PendingCreates { connection }),
        (1970..=9999i32, 1..=12u8).prop_map(|(year, month)| OfMonth { year, month }),
        (1970..=9999i32).prop_map(|year| OfYear { year }),
        Just(ThisMonth),
        Just(ThisYear),
        Just(LastWeek),
        Just(Yesterday),
        Just(Today),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn product_sets_round_trip(set in product_set()) {
        let phrase = set.to_string();
        prop_assert_eq!(parse_product_set(&phrase, &vocab()), Ok(set), "phrase {:?}", phrase);
    }

    #[test]
    fn order_sets_round_trip(set in order_set()) {
        let phrase = set.to_string();
        prop_assert_eq!(parse_order_set(&phrase, &vocab()), Ok(set), "phrase {:?}", phrase);
    }

    /// Any input: no panic; an error points inside the (normalised) input at char
    /// boundaries; a success has a canonical phrase that parses to the same set.
    #[test]
    fn any_input_parses_or_fails_cleanly(
        input in prop_oneof![
            any::<String>(),
            "(with|without|of|on|low|out|bad|brand|stock|issues|pending|updates|to|category|Shopify|EU|woo|\"| |-|2025|march|this|today|week|last){0,6}",
        ]
    ) {
        let vocab = vocab();
        match parse_product_set(&input, &vocab) {
            Ok(set) => prop_assert_eq!(parse_product_set(&set.to_string(), &vocab), Ok(set)),
            Err(e) => {
                prop_assert!(e.span.start <= e.span.end && e.span.end <= e.input.len(), "{}", e);
                prop_assert!(e.input.is_char_boundary(e.span.start) && e.input.is_char_boundary(e.span.end));
            }
        }
        match parse_order_set(&input, &vocab) {
            Ok(set) => prop_assert_eq!(parse_order_set(&set.to_string(), &vocab), Ok(set)),
            Err(e) => {
                prop_assert!(e.span.start <= e.span.end && e.span.end <= e.input.len(), "{}", e);
                prop_assert!(e.input.is_char_boundary(e.span.start) && e.input.is_char_boundary(e.span.end));
            }
        }
    }
}

#[test]
fn canonical_phrases() {
    let woo = || ConnectionRef("woo".into());
    let cases: &[(ProductSet, &str)] = &[
        (
            ProductSet::WithField {
                field: Field::CompareAtPrice,
            },
            "with compare-at price",
        ),
        (
            ProductSet::WithField {
                field: Field::Stock,
            },
            "with field stock",
        ),
        (ProductSet::WithStock, "with stock"),
        (ProductSet::LowStock, "with low-stock"),
        (ProductSet::OutOfStock, "out-of-stock"),
        (
            ProductSet::OfBrand {
                brand: "Acme Co".into(),
            },
            "of brand Acme Co",
        ),
        (
            ProductSet::OfBrand {
                brand: " Acme".into(),
            },
            "of brand \" Acme\"",
        ),
        (
            ProductSet::OfBrand {
                brand: "say \"hi\"".into(),
            },
            "of brand \"say \\\"hi\\\"\"",
        ),
        (
            ProductSet::InCategory {
                connection: ConnectionRef("Shopify EU".into()),
                category: "Shoes".into(),
            },
            "on Shopify EU category Shoes",
        ),
        (
            ProductSet::WithoutCategory { connection: woo() },
            "without woo category",
        ),
        (
            ProductSet::PendingCreates { connection: woo() },
            "with pending creates to woo",
        ),
    ];
    for (set, phrase) in cases {
        assert_eq!(set.to_string(), *phrase);
    }
    assert_eq!(
        OrderSet::OfMonth {
            year: 2025,
            month: 3
        }
        .to_string(),
        "of 2025 march"
    );
    assert_eq!(OrderSet::Today.to_string(), "of today");
    assert_eq!(
        OrderSet::OnConnection { connection: woo() }.to_string(),
        "on woo"
    );
}
