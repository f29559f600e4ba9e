//! The OpenAPI document: served as generated, valid OpenAPI 3.1 (the OAS JSON Schema, every
//! component a valid JSON Schema 2020-12, every `$ref` resolving, operation ids unique), and
//! covering every route of DESIGN §7 — each of which the server actually routes.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::api_test;
use crate::common::send;
use crate::routes::operations;

fn document() -> Value {
    serde_json::to_value(tidemark_api::openapi()).unwrap()
}

fn oas_schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/openapi/oas-3.1-schema.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let validator = jsonschema::validator_for(&oas_schema()).expect("the OAS 3.1 schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not valid OpenAPI 3.1:\n{}",
        errors.join("\n")
    );
    // The check can fail: a document without its info object does not pass.
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("info");
    assert!(!validator.is_valid(&broken));
    // Every component schema is itself a valid JSON Schema (2020-12, the 3.1 dialect).
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let mut schema = schema.clone();
        if let Some(object) = schema.as_object_mut() {
            object.insert(
                "$schema".into(),
                "https://json-schema.org/draft/2020-12/schema".into(),
            );
        }
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("schema {name} is not valid JSON Schema: {e}");
        }
    }
    // Every $ref resolves within the document.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {reference}"));
        assert!(
            doc.pointer(pointer).is_some(),
            "$ref {reference} does not resolve"
        );
    }
    // Operation ids are unique, and every operation has a 2xx and documents its errors.
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success"
            );
            if op.get("security").is_some() {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path}: 401 undocumented"
                );
            }
        }
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref" {
                    if let Some(r) = v.as_str() {
                        out.push(r.to_owned());
                    }
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// DESIGN §7, route by route.
const DESIGN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/connections"),
    ("POST", "/api/v1/connections"),
    ("GET", "/api/v1/connections/{id}"),
    ("PATCH", "/api/v1/connections/{id}"),
    ("DELETE", "/api/v1/connections/{id}"),
    ("POST", "/api/v1/connections/{id}/fetch"),
    ("POST", "/api/v1/connections/{id}/send"),
    ("POST", "/api/v1/connections/{id}/sync"),
    ("POST", "/api/v1/connections/{id}/pause"),
    ("POST", "/api/v1/connections/{id}/resume"),
    ("POST", "/api/v1/connections/{id}/resync"),
    ("POST", "/api/v1/connections/{id}/reset-clocks"),
    ("GET", "/api/v1/connections/{id}/stats"),
    ("POST", "/api/v1/connections/{id}/maintenance/integrity-fix"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{id}"),
    ("GET", "/api/v1/products"),
    ("GET", "/api/v1/products/{id}"),
    ("GET", "/api/v1/orders"),
    ("GET", "/api/v1/orders/{id}"),
    ("GET", "/api/v1/sets/suggest"),
    ("GET", "/api/v1/issues"),
    ("GET", "/api/v1/issues/troubleshoot"),
    ("GET", "/api/v1/events"),
    ("POST", "/webhooks/{connection_id}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
];

#[test]
fn the_document_covers_every_route_of_the_design() {
    let documented: BTreeSet<(String, String)> = operations()
        .into_iter()
        .map(|o| (o.method.to_string(), o.path))
        .collect();
    for (method, path) in DESIGN_ROUTES {
        assert!(
            documented.contains(&((*method).to_owned(), (*path).to_owned())),
            "{method} {path} is not in the OpenAPI document"
        );
    }
}

api_test! {
    async fn the_served_document_is_the_generated_one_and_every_documented_route_is_routed(h) {
        let records = crate::routes::seed(&h).await;
        let (status, served) = send(h.http.get(h.url("/api/v1/openapi.json"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(served, document());
        for op in operations() {
            if op.path == "/api/v1/events" {
                continue; // a stream: routed, checked in its own test
            }
            let id = records.id_for(&op.path);
            let path = op.path.replace("{id}", &id.to_string()).replace("{connection_id}", &id.to_string());
            let (status, body) = send(h.alice(op.method.clone(), &path)).await;
            // The connection's credentials appear in no answer of any route.
            assert!(
                !body.to_string().contains(crate::routes::SEED_SECRET),
                "{} {} answered with a credential: {body}",
                op.method,
                op.path
            );
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{} {}", op.method, op.path);
            let unrouted = status == StatusCode::NOT_FOUND
                && body["error"]["message"].as_str() == Some("this path not found");
            assert!(!unrouted, "{} {} is documented but not routed", op.method, op.path);
        }
        assert!(!crate::common::logs().contains(crate::routes::SEED_SECRET), "a credential was logged");
    }
}
