//! Every route: the generated walks (no token → 401; another account's ids → 404 and none of
//! its data; malformed, oversized, mistyped and unknown-field bodies → 4xx with the error
//! shape) and a success test of each.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tidemark_core::{
    Binding, ConnectionId, Field, FieldSet, PendingOp, ProductId, RecordKind, RecordRef, Severity,
    hash, normalize, sample,
};
use tidemark_store::NewIssue;

use crate::api_test;
use crate::common::{Harness, error_code, now, oversized, send};

/// Every (method, path) the OpenAPI document lists, with whether it takes a token and a body.
pub struct Operation {
    pub method: Method,
    pub path: String,
    pub secured: bool,
    pub has_body: bool,
}

pub fn operations() -> Vec<Operation> {
    let doc = serde_json::to_value(tidemark_api::openapi()).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            out.push(Operation {
                method,
                path: path.clone(),
                secured: op.get("security").is_some(),
                has_body: op.get("requestBody").is_some(),
            });
        }
    }
    out
}

/// `path` with every `{param}` replaced by `id`.
fn with_id(path: &str, id: i64) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e + 1)
            .unwrap_or(rest.len());
        out.push_str(&id.to_string());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A product, an order, a job, an issue and a queued change of alice's, all with one id
/// where the ids line up with their tables' first rows.
pub struct AliceRecords {
    pub connection: i64,
    pub product: i64,
    pub order: i64,
    pub job: i64,
    pub issue: i64,
}

/// The credential [`seed`] gives alice's connection (looked for in answers and logs).
pub const SEED_SECRET: &str = "alice-secret-1234567";

impl AliceRecords {
    /// The seeded record a route's `{id}` names, by the resource in its path.
    pub fn id_for(&self, path: &str) -> i64 {
        if path.contains("/products/") {
            self.product
        } else if path.contains("/orders/") {
            self.order
        } else if path.contains("/jobs/") {
            self.job
        } else if path.contains("/issues/") {
            self.issue
        } else {
            self.connection
        }
    }
}

pub async fn seed(h: &Harness) -> AliceRecords {
    let connection = h.woo_connection("Alice Woo", SEED_SECRET).await;
    let connection_id = connection["id"].as_i64().unwrap();
    let product = normalize::normalize_product(sample::product(1)).unwrap();
    let product = h
        .store
        .create_product(
            h.alice.id,
            &product,
            hash::product_hash(&product),
            &BTreeMap::new(),
            now(),
        )
        .await
        .unwrap();
    let order = normalize::normalize_order(sample::order(1)).unwrap();
    let order = h
        .store
        .create_order(
            h.alice.id,
            ConnectionId(connection_id),
            &order,
            hash::order_hash(&order),
            &BTreeMap::new(),
            now(),
        )
        .await
        .unwrap();
    let (status, accepted) = send(
        h.alice(
            Method::POST,
            &format!("/api/v1/connections/{connection_id}/fetch"),
        )
        .json(&json!({"scope": "full"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let issue = h
        .store
        .raise_issue(
            &NewIssue {
                connection: ConnectionId(connection_id),
                record: Some(RecordRef::Product(product.record.id)),
                external_id: None,
                severity: Severity::Warning,
                code: "product_invalid_sku".into(),
                message: "SKU 'X-1' already exists".into(),
                field: Some("sku".into()),
                payload: json!({"code": "product_invalid_sku"}),
            },
            now(),
        )
        .await
        .unwrap();
    AliceRecords {
        connection: connection_id,
        product: product.record.id.0,
        order: order.record.id.0,
        job: accepted["job"]["id"].as_i64().unwrap(),
        issue: issue.id.0,
    }
}

api_test! {
    async fn every_secured_route_refuses_a_missing_or_unknown_token(h) {
        let ops = operations();
        assert!(ops.iter().filter(|o| o.secured).count() >= 25);
        for op in ops.iter().filter(|o| o.secured) {
            let url = h.url(&with_id(&op.path, 1));
            let (status, body) = send(h.http.request(op.method.clone(), &url)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {}: {body}", op.method, op.path);
            assert_eq!(error_code(&body), "unauthorized");
            let (status, body) = send(
                h.http
                    .request(op.method.clone(), &url)
                    .bearer_auth("tmk_not_a_real_token"),
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {}: {body}", op.method, op.path);
            let (status, _) = send(
                h.http
                    .request(op.method.clone(), &url)
                    .header("authorization", "Basic YWxpY2U6c2VjcmV0"),
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {}", op.method, op.path);
        }
        // And nothing was queued or changed by any of them.
        assert!(h.store.list_connections(h.alice.id).await.unwrap().is_empty());
    }
}

api_test! {
    async fn another_accounts_ids_are_404_on_every_route_and_never_its_data(h) {
        let records = seed(&h).await;
        let before = h.store.job_run_counts().await.unwrap();
        for op in operations().iter().filter(|o| o.secured && o.path.contains('{')) {
            let id = records.id_for(&op.path);
            let mut request = h.bob(op.method.clone(), &with_id(&op.path, id));
            if op.has_body {
                // A body the route accepts, so only the ownership check can refuse it.
                let body = if op.path.ends_with("reset-clocks") {
                    json!({"kinds": ["products"]})
                } else if op.path.ends_with("resync") {
                    json!({"window": "7d"})
                } else {
                    json!({})
                };
                request = request.json(&body);
            }
            let (status, body) = send(request).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{} {}: {body}", op.method, op.path);
            assert_eq!(error_code(&body), "not_found", "{} {}", op.method, op.path);
            let text = body.to_string();
            assert!(!text.contains("Alice Woo"), "{} {} leaked: {text}", op.method, op.path);
        }
        // Nothing bob asked for was done on alice's connection.
        assert_eq!(h.store.job_run_counts().await.unwrap(), before);
        let alice = h.store.get_connection(h.alice.id, ConnectionId(records.connection)).await.unwrap().unwrap();
        assert!(!alice.paused);
        // Bob's lists hold none of alice's records, even when he names her connection.
        for path in [
            "/api/v1/connections".to_owned(),
            format!("/api/v1/jobs?connection={}", records.connection),
            format!("/api/v1/issues?connection={}", records.connection),
            "/api/v1/products".to_owned(),
            "/api/v1/orders".to_owned(),
            "/api/v1/issues/troubleshoot".to_owned(),
        ] {
            let (status, body) = send(h.bob(Method::GET, &path)).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            let items = body.get("items").unwrap_or(&body);
            assert_eq!(items.as_array().map(Vec::len), Some(0), "{path}: {body}");
        }
        // A set naming alice's connection is unknown to bob.
        let (status, body) = send(h.bob(Method::GET, "/api/v1/products?set=on%20Alice%20Woo")).await;
        assert!(status.is_client_error(), "{status}: {body}");
        assert!(!body.to_string().contains(&format!("\"id\":{}", records.product)));
    }
}

api_test! {
    async fn malformed_oversized_mistyped_and_unknown_bodies_get_4xx_with_the_error_shape(h) {
        let records = seed(&h).await;
        for op in operations().iter().filter(|o| o.secured && o.has_body) {
            let url = with_id(&op.path, records.connection);
            let (status, answer) = oversized(&h, &op.method, &url, Some(&h.alice_token), 2 * 1024 * 1024).await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "oversized body to {} {}: {answer}", op.method, op.path);
            error_code(&answer);
            let cases: [(&str, Vec<u8>, &str, StatusCode); 3] = [
                ("malformed", b"{\"".to_vec(), "application/json", StatusCode::BAD_REQUEST),
                ("unknown field", b"{\"no_such_field\": 1}".to_vec(), "application/json", StatusCode::UNPROCESSABLE_ENTITY),
                ("not JSON", b"name=x".to_vec(), "application/x-www-form-urlencoded", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ];
            for (what, body, content_type, expected) in cases {
                let (status, answer) = send(
                    h.alice(op.method.clone(), &url)
                        .header("content-type", content_type)
                        .body(body),
                )
                .await;
                assert_eq!(status, expected, "{what} body to {} {}: {answer}", op.method, op.path);
                error_code(&answer);
            }
        }
        // Deep nesting is refused, not a stack overflow.
        let deep = format!(
            "{{\"name\": \"x\", \"platform\": \"csv\", \"settings\": {}1{}}}",
            "{\"a\": ".repeat(5_000),
            "}".repeat(5_000)
        );
        let (status, answer) = send(
            h.alice(Method::POST, "/api/v1/connections")
                .header("content-type", "application/json")
                .body(deep),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        // A value of the wrong type names the field.
        let (status, answer) = send(h.alice(Method::POST, "/api/v1/connections").json(&json!({
            "name": 5, "platform": "woocommerce"
        })))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(answer["error"]["message"].as_str().unwrap().contains("name") || answer["error"]["message"].as_str().unwrap().contains("string"), "{answer}");
        // Unknown paths and methods answer in the error shape too.
        let (status, answer) = send(h.alice(Method::GET, "/api/v1/nothing-here")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        error_code(&answer);
        let (status, answer) = send(h.alice(Method::PUT, "/api/v1/connections")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        error_code(&answer);
        // Path ids that are not numbers are a 404, never a 500.
        let (status, _) = send(h.alice(Method::GET, "/api/v1/connections/abc")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

api_test! {
    async fn connections_are_created_read_changed_and_removed(h) {
        let secret = "cs_create_secret_98765";
        let created = h.woo_connection("Shop", secret).await;
        let id = created["id"].as_i64().unwrap();
        assert_eq!(created["platform"], "woocommerce");
        assert_eq!(created["state"], "idle");
        assert_eq!(created["has_credentials"], true);
        assert_eq!(created["settings"]["clone_new_products"], true);
        assert!(!created.to_string().contains(secret), "{created}");

        // A second one with the same name is a conflict.
        let (status, body) = send(h.alice(Method::POST, "/api/v1/connections").json(&json!({
            "name": "Shop", "platform": "woocommerce",
            "platform_settings": {"base_url": "http://127.0.0.1:9"},
            "credentials": {"consumer_key": "a", "consumer_secret": "b"},
        }))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(error_code(&body), "conflict");
        // Bad values are named.
        for (body, needle) in [
            (json!({"name": "X", "platform": "ebay"}), "platform"),
            (json!({"name": "X", "platform": "woocommerce", "settings": {"price": {"margin_percent": "-150"}}, "platform_settings": {"base_url": "http://127.0.0.1:9"}, "credentials": {"consumer_key": "a", "consumer_secret": "b"}}), "margin_percent"),
            (json!({"name": "X", "platform": "woocommerce", "settings": {"colour": "red"}, "platform_settings": {"base_url": "http://127.0.0.1:9"}, "credentials": {"consumer_key": "a", "consumer_secret": "b"}}), "colour"),
            (json!({"name": "X", "platform": "woocommerce", "platform_settings": {}, "credentials": {"consumer_key": "a", "consumer_secret": "b"}}), "base_url"),
            (json!({"name": " ", "platform": "woocommerce"}), "name"),
        ] {
            let (status, answer) = send(h.alice(Method::POST, "/api/v1/connections").json(&body)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
            assert!(answer["error"]["message"].as_str().unwrap().contains(needle), "{needle}: {answer}");
        }

        let (status, listed) = send(h.alice(Method::GET, "/api/v1/connections")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed.as_array().unwrap().len(), 1);
        let (status, one) = send(h.alice(Method::GET, &format!("/api/v1/connections/{id}"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["name"], "Shop");

        // A merge patch: one setting changed, the others kept; a schedule applies at once.
        let (status, patched) = send(h.alice(Method::PATCH, &format!("/api/v1/connections/{id}")).json(&json!({
            "name": "Shop EU",
            "settings": {"price": {"margin_percent": "12.5"}, "fetch_interval_secs": 900},
        }))).await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert_eq!(patched["name"], "Shop EU");
        assert_eq!(patched["settings"]["price"]["margin_percent"], "12.5");
        assert_eq!(patched["settings"]["clone_new_products"], true);
        assert_eq!(patched["schedule"]["fetch_interval_ms"], 900_000);
        // Refused settings change nothing.
        let (status, _) = send(h.alice(Method::PATCH, &format!("/api/v1/connections/{id}")).json(&json!({
            "settings": {"fetch_interval_secs": 5},
        }))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (_, one) = send(h.alice(Method::GET, &format!("/api/v1/connections/{id}"))).await;
        assert_eq!(one["settings"]["fetch_interval_secs"], 900);

        // Re-authenticate: new credentials are sealed; the answer never shows them.
        let rotated = "cs_rotated_secret_24680";
        let (status, patched) = send(h.alice(Method::PATCH, &format!("/api/v1/connections/{id}")).json(&json!({
            "credentials": {"consumer_key": "ck_2", "consumer_secret": rotated},
        }))).await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert!(!patched.to_string().contains(rotated));
        let sealed = h.store.connection_credentials(ConnectionId(id)).await.unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains(rotated), "stored in the clear");
        let opened = tidemark_connector::sealing::open(&h.key, &sealed).unwrap();
        assert_eq!(opened.get("consumer_secret").map(|s| s.expose().to_owned()), Some(rotated.to_owned()));

        // Neither secret reached a log line.
        let logged = crate::common::logs();
        assert!(!logged.is_empty(), "the log capture works");
        assert!(!logged.contains(secret) && !logged.contains(rotated), "a credential was logged");
        let (status, _) = send(h.alice(Method::DELETE, &format!("/api/v1/connections/{id}"))).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = send(h.alice(Method::GET, &format!("/api/v1/connections/{id}"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = send(h.alice(Method::DELETE, &format!("/api/v1/connections/{id}"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

api_test! {
    async fn the_buttons_queue_jobs_once_and_pause_resume_and_cooldowns_answer(h) {
        let id = h.woo_connection("Shop", "s3cr3t-buttons-1").await["id"].as_i64().unwrap();
        let post = |path: &str, body: Value| {
            h.alice(Method::POST, &format!("/api/v1/connections/{id}/{path}")).json(&body)
        };
        for (path, body, kind) in [
            ("fetch", json!({"scope": "incremental"}), "fetch"),
            ("send", json!({}), "send"),
            ("sync", json!({"scope": "full", "kinds": ["products"]}), "sync"),
            ("maintenance/integrity-fix", json!({}), "integrity_fix"),
        ] {
            let (status, first) = send(post(path, body.clone())).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{path}: {first}");
            assert_eq!(first["job"]["kind"], kind);
            assert_eq!(first["job"]["state"], "queued");
            assert_eq!(first["job"]["trigger"], "user");
            assert_eq!(first["created"], true);
            // Asking again does not stack work.
            let (status, again) = send(post(path, body)).await;
            assert_eq!(status, StatusCode::ACCEPTED);
            assert_eq!(again["created"], false, "{path}: {again}");
            assert_eq!(again["job"]["id"], first["job"]["id"]);
        }
        // No body at all is the same as {} for fetch and send.
        let (status, _) = send(h.alice(Method::POST, &format!("/api/v1/connections/{id}/fetch"))).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let (status, bad) = send(post("fetch", json!({"scope": "everything"}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let (status, bad) = send(post("fetch", json!({"kinds": ["customers"]}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");

        let (_, listed) = send(h.alice(Method::GET, &format!("/api/v1/connections/{id}"))).await;
        assert_eq!(listed["state"], "queued");
        assert_eq!(listed["jobs"].as_array().unwrap().len(), 4);

        let (status, paused) = send(post("pause", json!({}))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(paused["paused"], true);
        assert_eq!(paused["state"], "paused");
        let (status, resumed) = send(post("resume", json!({}))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(resumed["paused"], false);

        // Resync: a window once an hour, a record once every five minutes.
        let (status, first) = send(post("resync", json!({"window": "7d"}))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{first}");
        let response = post("resync", json!({"window": "today"})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry_after > 3000 && retry_after <= 3600, "{retry_after}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "cooldown");
        assert!(body["error"]["details"]["retry_after_secs"].as_u64().unwrap() > 3000);
        let (status, _) = send(post("resync", json!({"record": {"kind": "products", "external_id": "42"}}))).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let (status, _) = send(post("resync", json!({"record": {"kind": "products", "external_id": "42"}}))).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        for bad in [json!({}), json!({"window": "2d"}), json!({"window": "1d", "record": {"kind": "products", "external_id": "1"}})] {
            let (status, answer) = send(post("resync", bad.clone())).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {answer}");
        }

        // Reset clocks.
        h.store.set_clock(ConnectionId(id), tidemark_core::ScanKind::Products, now()).await.unwrap();
        let (status, reset) = send(post("reset-clocks", json!({"kinds": ["products"]}))).await;
        assert_eq!(status, StatusCode::OK, "{reset}");
        assert!(reset["clocks"].get("products").is_none(), "{reset}");
        let (status, _) = send(post("reset-clocks", json!({"kinds": []}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        // Stats.
        let (status, stats) = send(h.alice(Method::GET, &format!("/api/v1/connections/{id}/stats"))).await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        assert_eq!(stats["jobs_by_state"]["queued"].as_i64().unwrap(), stats["history"].as_array().unwrap().len() as i64);
        assert_eq!(stats["bound"]["products"], 0);
    }
}

api_test! {
    async fn jobs_are_listed_read_and_cancelled(h) {
        let id = h.woo_connection("Shop", "jobs-secret-777").await["id"].as_i64().unwrap();
        let mut ids = Vec::new();
        for path in ["fetch", "send", "maintenance/integrity-fix"] {
            let (_, accepted) = send(h.alice(Method::POST, &format!("/api/v1/connections/{id}/{path}")).json(&json!({}))).await;
            ids.push(accepted["job"]["id"].as_i64().unwrap());
        }
        let (status, page) = send(h.alice(Method::GET, &format!("/api/v1/jobs?connection={id}&state=queued&limit=2"))).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        assert_eq!(page["items"][0]["id"], ids[2], "newest first");
        let cursor = page["next"].as_str().unwrap().to_owned();
        let (_, rest) = send(h.alice(Method::GET, &format!("/api/v1/jobs?connection={id}&cursor={cursor}"))).await;
        assert_eq!(rest["items"].as_array().unwrap().len(), 1);
        assert!(rest["next"].is_null());
        let (_, sends) = send(h.alice(Method::GET, "/api/v1/jobs?kind=send")).await;
        assert_eq!(sends["items"].as_array().unwrap().len(), 1);
        for bad in ["state=sleeping", "kind=dance", "limit=0", "cursor=x", "nope=1"] {
            let (status, body) = send(h.alice(Method::GET, &format!("/api/v1/jobs?{bad}"))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            error_code(&body);
        }
        let (status, job) = send(h.alice(Method::GET, &format!("/api/v1/jobs/{}", ids[0]))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(job["kind"], "fetch");
        let (status, cancelled) = send(h.alice(Method::POST, &format!("/api/v1/jobs/{}/cancel", ids[0]))).await;
        assert_eq!(status, StatusCode::OK, "{cancelled}");
        assert_eq!(cancelled["state"], "cancelled");
        let (status, again) = send(h.alice(Method::POST, &format!("/api/v1/jobs/{}/cancel", ids[0]))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{again}");
        let (status, _) = send(h.alice(Method::GET, "/api/v1/jobs/999999")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

api_test! {
    async fn products_and_orders_are_browsed_by_sets_with_their_state_on_each_connection(h) {
        let records = seed(&h).await;
        let woo = ConnectionId(records.connection);
        // A second product; the first is bound on the connection with an update queued.
        let other = normalize::normalize_product(sample::product(2)).unwrap();
        let other = h.store.create_product(h.alice.id, &other, hash::product_hash(&other), &BTreeMap::new(), now()).await.unwrap();
        h.store.bind(&Binding {
            connection: woo,
            kind: RecordKind::Product,
            external_id: tidemark_core::ExternalId::new("501"),
            internal_id: records.product,
            internal_key: String::new(),
        }, now()).await.unwrap();
        let mut fields = FieldSet::new();
        fields.insert(Field::Title);
        h.store.enqueue_pending_change(woo, RecordRef::Product(ProductId(records.product)), &PendingOp::Update { fields }, now()).await.unwrap();
        h.store.enqueue_pending_change(woo, RecordRef::Product(other.record.id), &PendingOp::Insert, now()).await.unwrap();

        let (status, page) = send(h.alice(Method::GET, "/api/v1/products")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        let state_of = |item: &Value| item["connections"][0]["state"].as_str().unwrap().to_owned();
        assert_eq!(state_of(&items[0]), "update");
        assert_eq!(items[0]["connections"][0]["fields"], json!(["title"]));
        assert_eq!(items[0]["connections"][0]["external_id"], "501");
        assert_eq!(state_of(&items[1]), "insert");

        // Two sets: their intersection.
        let brand = sample::product(1).brand.unwrap();
        let url = format!(
            "/api/v1/products?set={}&set={}",
            urlencode("with issues"),
            urlencode(&format!("of brand \"{brand}\""))
        );
        let (status, page) = send(h.alice(Method::GET, &url)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let ids: Vec<i64> = page["items"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![records.product]);
        let (_, page) = send(h.alice(Method::GET, &format!("/api/v1/products?set={}", urlencode("with pending creates to Alice Woo")))).await;
        let ids: Vec<i64> = page["items"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![other.record.id.0]);
        // A set that does not parse: 422 naming it.
        let (status, bad) = send(h.alice(Method::GET, &format!("/api/v1/products?set={}", urlencode("with flying colours")))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(error_code(&bad), "invalid_set");
        // Paging.
        let (_, first) = send(h.alice(Method::GET, "/api/v1/products?limit=1")).await;
        let next = first["next"].as_str().unwrap().to_owned();
        let (_, second) = send(h.alice(Method::GET, &format!("/api/v1/products?limit=1&cursor={next}"))).await;
        assert_eq!(second["items"][0]["id"], other.record.id.0);
        for bad in ["limit=500", "cursor=zz", "utc_offset_minutes=5000", "colour=red"] {
            let (status, _) = send(h.alice(Method::GET, &format!("/api/v1/products?{bad}"))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        }

        // The record view: the queued title is yellow on the connection.
        let (status, detail) = send(h.alice(Method::GET, &format!("/api/v1/products/{}", records.product))).await;
        assert_eq!(status, StatusCode::OK, "{detail}");
        assert_eq!(detail["connections"][0]["state"], "update");
        assert_eq!(detail["connections"][0]["fields"]["title"], "update");
        assert_eq!(detail["issues"][0]["code"], "product_invalid_sku");
        assert_eq!(detail["record"]["content"]["title"], sample::product(1).title);
        let (_, detail) = send(h.alice(Method::GET, &format!("/api/v1/products/{}", other.record.id.0))).await;
        assert_eq!(detail["connections"][0]["state"], "insert");
        assert_eq!(detail["connections"][0]["fields"]["title"], "insert");
        assert!(!detail["connections"][0]["variants"].as_object().unwrap().is_empty());

        // Orders.
        let (status, orders) = send(h.alice(Method::GET, "/api/v1/orders")).await;
        assert_eq!(status, StatusCode::OK, "{orders}");
        assert_eq!(orders["items"][0]["id"], records.order);
        assert!(orders["items"][0]["total"].as_str().unwrap().parse::<rust_decimal::Decimal>().is_ok());
        let (_, orders) = send(h.alice(Method::GET, &format!("/api/v1/orders?set={}", urlencode("on Alice Woo")))).await;
        assert_eq!(orders["items"].as_array().unwrap().len(), 1, "{orders}");
        let (status, order) = send(h.alice(Method::GET, &format!("/api/v1/orders/{}", records.order))).await;
        assert_eq!(status, StatusCode::OK, "{order}");
        assert_eq!(order["record"]["content"]["number"], sample::order(1).number);

        // Autocomplete knows the connection and the brands.
        let (status, suggestions) = send(h.alice(Method::GET, "/api/v1/sets/suggest?q=on%20Al")).await;
        assert_eq!(status, StatusCode::OK, "{suggestions}");
        assert!(suggestions.as_array().unwrap().iter().any(|s| s["phrase"].as_str().unwrap().contains("Alice Woo")), "{suggestions}");
        let (_, suggestions) = send(h.alice(Method::GET, "/api/v1/sets/suggest?q=of%20brand%20")).await;
        assert!(suggestions.to_string().contains(&brand), "{suggestions}");
        let (_, suggestions) = send(h.alice(Method::GET, "/api/v1/sets/suggest?q=of%20this&target=orders")).await;
        assert!(!suggestions.as_array().unwrap().is_empty());
        let (status, _) = send(h.alice(Method::GET, "/api/v1/sets/suggest?q=x&target=customers")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

api_test! {
    async fn issues_are_listed_grouped_and_resolved(h) {
        let records = seed(&h).await;
        for n in 2..5 {
            h.store.raise_issue(&NewIssue {
                connection: ConnectionId(records.connection),
                record: Some(RecordRef::Product(ProductId(records.product))),
                external_id: None,
                severity: Severity::Warning,
                code: format!("code_{}", n % 2),
                message: format!("Price {n}.00 is below the minimum"),
                field: None,
                payload: Value::Null,
            }, now()).await.unwrap();
        }
        let (status, page) = send(h.alice(Method::GET, &format!("/api/v1/issues?connection={}", records.connection))).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["items"].as_array().unwrap().len(), 3, "one per (record, code) stays open");
        let (status, groups) = send(h.alice(Method::GET, "/api/v1/issues/troubleshoot")).await;
        assert_eq!(status, StatusCode::OK, "{groups}");
        let groups = groups.as_array().unwrap();
        assert_eq!(groups.len(), 3, "{groups:?}");
        let sku = groups.iter().find(|g| g["code"] == "product_invalid_sku").unwrap();
        assert_eq!(sku["platform"], "woocommerce");
        assert!(sku["advice"].as_str().unwrap().contains("SKU"));
        assert_eq!(sku["connections"][0]["name"], "Alice Woo");
        // The group's sets list its records in the product browser.
        let sets: Vec<String> = sku["connections"][0]["sets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        // The product is not on the connection (not bound): "on Alice Woo" would miss it.
        assert_eq!(sets, vec!["with issues".to_owned()]);
        let query: Vec<String> = sets.iter().map(|s| format!("set={}", urlencode(s))).collect();
        let (status, page) = send(h.alice(Method::GET, &format!("/api/v1/products?{}", query.join("&")))).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["items"][0]["id"], records.product);
        assert_eq!(sku["records"][0]["id"], records.product);
        // Resolve.
        let (status, resolved) = send(h.alice(Method::POST, &format!("/api/v1/issues/{}/resolve", records.issue))).await;
        assert_eq!(status, StatusCode::OK, "{resolved}");
        assert!(resolved["resolved_at"].is_i64());
        let (status, _) = send(h.alice(Method::POST, &format!("/api/v1/issues/{}/resolve", records.issue))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, page) = send(h.alice(Method::GET, "/api/v1/issues?open=false")).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 3);
        let (_, page) = send(h.alice(Method::GET, "/api/v1/issues")).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
    }
}

api_test! {
    async fn account_health_readiness_metrics_and_the_console_answer(h) {
        let (status, account) = send(h.alice(Method::GET, "/api/v1/account")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(account["name"], "alice");
        let (status, body) = send(h.http.get(h.url("/healthz"))).await;
        assert_eq!((status, body), (StatusCode::OK, Value::String("ok".into())));
        let (status, ready) = send(h.http.get(h.url("/readyz"))).await;
        assert_eq!(status, StatusCode::OK, "{ready}");
        assert_eq!(ready["ready"], true);
        seed(&h).await;
        send(h.http.post(h.url("/webhooks/999999")).body("{}")).await;
        let response = h.http.get(h.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
        let text = response.text().await.unwrap();
        for metric in ["tidemark_jobs{", "tidemark_platform_errors{", "tidemark_queue_depth", "tidemark_webhooks", "tidemark_auth_failures_total"] {
            assert!(text.contains(metric), "{metric} missing:\n{text}");
        }
        assert!(text.contains("kind=\"fetch\"") && text.contains("state=\"queued\""), "{text}");
        assert!(text.contains("platform=\"woocommerce\""), "{text}");
        assert!(!text.contains("Alice Woo"), "merchant data in metrics:\n{text}");
        let response = h.http.get(h.url("/")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
        let page = response.text().await.unwrap();
        assert!(page.contains("/assets/app.js"));
        // Everything the console needs is served here: it works offline, with no CDN.
        for asset in ["/assets/app.js", "/assets/app.css"] {
            let response = h.http.get(h.url(asset)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{asset}");
            let text = response.text().await.unwrap();
            for external in ["http://", "https://", "//cdn", "@import"] {
                assert!(!text.contains(external), "{asset} refers to {external}");
            }
        }
        for attribute in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
            assert!(!page.contains(attribute), "index.html loads {attribute}…");
        }
    }
}

api_test! {
    async fn events_stream_job_progress_counts_and_new_issues(h) {
        let id = h.woo_connection("Shop", "events-secret-1").await["id"].as_i64().unwrap();
        let mut response = h.alice(Method::GET, "/api/v1/events").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let mut seen = String::new();
        // The first look sends the connections' counts.
        read_events(&mut response, &mut seen, "event: connections").await;
        let (_, accepted) = send(h.alice(Method::POST, &format!("/api/v1/connections/{id}/fetch")).json(&json!({}))).await;
        let job = accepted["job"]["id"].as_i64().unwrap();
        read_events(&mut response, &mut seen, &format!("\"id\":{job}")).await;
        h.store.raise_issue(&NewIssue {
            connection: ConnectionId(id),
            record: None,
            external_id: None,
            severity: Severity::Alert,
            code: "unauthorized".into(),
            message: "the key was revoked".into(),
            field: None,
            payload: Value::Null,
        }, now()).await.unwrap();
        read_events(&mut response, &mut seen, "event: issue").await;
        assert!(seen.contains("the key was revoked"));
        // Cancelled: the run's last state is sent once more.
        send(h.alice(Method::POST, &format!("/api/v1/jobs/{job}/cancel"))).await;
        read_events(&mut response, &mut seen, "\"state\":\"cancelled\"").await;
        // A run queued and cancelled within one look is still reported, finished.
        let (_, quick) = send(h.alice(Method::POST, &format!("/api/v1/connections/{id}/send"))).await;
        let quick = quick["job"]["id"].as_i64().unwrap();
        send(h.alice(Method::POST, &format!("/api/v1/jobs/{quick}/cancel"))).await;
        let line = |seen: &str| {
            seen.lines().any(|l| {
                l.starts_with("data:") && l.contains(&format!("\"id\":{quick},")) && l.contains("\"state\":\"cancelled\"")
            })
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !line(&seen) {
            assert!(tokio::time::Instant::now() < deadline, "no cancelled run {quick}:\n{seen}");
            if let Ok(Ok(Some(chunk))) = tokio::time::timeout(std::time::Duration::from_secs(1), response.chunk()).await {
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        }
    }
}

/// Reads the event stream until `needle` appears (at most 10 s).
async fn read_events(response: &mut reqwest::Response, seen: &mut String, needle: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in the events within 10 s:\n{seen}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the event stream ended:\n{seen}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}
