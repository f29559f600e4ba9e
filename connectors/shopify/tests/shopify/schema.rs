//! Every GraphQL document the connector sends validates against the real Admin schema
//! (2025-01 introspection, `tests/fixtures/shopify/admin_schema_2025-01.json.gz`), and a bad
//! document does not.

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use tidemark_shopify::documents;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/shopify/admin_schema_2025-01.json.gz")
}

/// The introspection JSON turned into SDL and parsed once per test binary.
fn schema() -> &'static Valid<Schema> {
    static SCHEMA: OnceLock<Valid<Schema>> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let gz = std::fs::read(schema_path()).expect("schema fixture");
        let mut json = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut json)
            .expect("gunzip schema");
        let value: serde_json::Value = serde_json::from_str(&json).expect("schema JSON");
        let query: cynic_introspection::IntrospectionQuery =
            serde_json::from_value(value["data"].clone()).expect("introspection shape");
        let sdl = query
            .into_schema()
            .expect("introspection to schema")
            .to_sdl();
        match Schema::parse_and_validate(&sdl, "admin_2025-01.graphql") {
            Ok(valid) => valid,
            Err(with_errors) => {
                // The schema is Shopify's; only the documents are ours to validate.
                Valid::assume_valid(with_errors.partial)
            }
        }
    })
}

fn validate(name: &str, document: &str) -> Result<(), String> {
    ExecutableDocument::parse_and_validate(schema(), document, format!("{name}.graphql"))
        .map(|_| ())
        .map_err(|e| e.errors.to_string())
}

#[test]
fn every_document_validates_against_the_2025_01_admin_schema() {
    assert!(schema().get_object("QueryRoot").is_some());
    let mut failures = Vec::new();
    for (name, document) in documents::ALL {
        if let Err(errors) = validate(name, document) {
            failures.push(format!("{name}:\n{errors}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(documents::ALL.len() >= 14);
}

#[test]
fn an_unknown_field_fails_validation() {
    let bad = "query { products(first: 1) { nodes { id sku } } }";
    let errors = validate("bad", bad).expect_err("sku is not a field of Product");
    assert!(errors.contains("sku"), "{errors}");

    let bad_argument = "query { products(first: 1, orderBy: TITLE) { nodes { id } } }";
    assert!(validate("bad_argument", bad_argument).is_err());

    let good = "query { products(first: 1) { nodes { id variants(first: 1) { nodes { sku } } } } }";
    validate("good", good).expect("a valid document");
}

#[test]
fn product_set_has_no_identifier_upsert_in_2025_01() {
    // Upsert by `identifier` arrived in 2025-04: creates here look the handle up first.
    let upsert = "mutation { productSet(input: {title: \"x\"}, identifier: {handle: \"x\"}) { product { id } } }";
    assert!(validate("upsert", upsert).is_err());
    let plain = "mutation { productSet(input: {title: \"x\"}) { product { id } } }";
    validate("plain", plain).expect("productSet without identifier");
}
