//! The WooCommerce simulator over real HTTP: paging limits and headers, the `orderby=date`
//! trap, strict `modified_after`, SKU uniqueness, batch limits, image replace semantics, auth,
//! stock changes from orders that do not bump `date_modified`, and signed webhooks.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tidemark_sim::woocommerce::{Scripted, WooConfig, WooSim};
use tidemark_sim::{FaultConfig, RunningSim};

async fn start(products: u64) -> (WooSim, RunningSim, reqwest::Client) {
    let sim = WooSim::new(
        WooConfig {
            products,
            ..WooConfig::default()
        },
        FaultConfig::none(),
    );
    let running = sim.serve().await.expect("serve");
    (sim, running, reqwest::Client::new())
}

fn url(sim: &RunningSim, path: &str) -> String {
    format!("{}/wp-json/wc/v3/{path}", sim.base_url)
}

async fn get(c: &reqwest::Client, u: &str) -> reqwest::Response {
    c.get(u)
        .basic_auth("ck_test", Some("cs_test"))
        .send()
        .await
        .expect("get")
}

#[tokio::test]
async fn paging_headers_limits_and_past_the_end() {
    let (_sim, running, c) = start(250).await;
    let r = get(&c, &url(&running, "products")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-wp-total"], "250");
    assert_eq!(r.headers()["x-wp-totalpages"], "25");
    let link = r.headers()["link"].to_str().unwrap().to_owned();
    assert!(link.contains("page=2>; rel=\"next\""), "{link}");
    assert_eq!(r.json::<Vec<Value>>().await.unwrap().len(), 10);

    let r = get(&c, &url(&running, "products?per_page=101")).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "rest_invalid_param");

    let r = get(&c, &url(&running, "products?per_page=100&page=4")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Vec<Value>>().await.unwrap(), Vec::<Value>::new());

    // Unauthenticated: 401; query-string auth works.
    let r = c.get(url(&running, "products")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(url(
            &running,
            "products?consumer_key=ck_test&consumer_secret=cs_test",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // orderby=id pages see every product once.
    let mut seen = BTreeSet::new();
    for page in 1..=3 {
        let r = get(
            &c,
            &url(
                &running,
                &format!("products?per_page=100&page={page}&orderby=id&order=asc"),
            ),
        )
        .await;
        for p in r.json::<Vec<Value>>().await.unwrap() {
            assert!(seen.insert(p["id"].as_u64().unwrap()));
        }
    }
    assert_eq!(seen.len(), 250);
}

#[tokio::test]
async fn orderby_date_with_ties_duplicates_and_misses() {
    let (_sim, running, c) = start(300).await;
    let mut seen = Vec::new();
    for page in 1..=10 {
        let r = get(
            &c,
            &url(&running, &format!("products?per_page=30&page={page}")),
        )
        .await;
        for p in r.json::<Vec<Value>>().await.unwrap() {
            seen.push(p["id"].as_u64().unwrap());
        }
    }
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), 300);
    assert!(
        unique.len() < 300,
        "date paging with ties should be unstable"
    );
}

#[tokio::test]
async fn modified_after_is_strict_and_order_stock_does_not_bump_it() {
    let (sim, running, c) = start(50).await;
    let id = sim.product_ids()[3];
    let p: Value = get(&c, &url(&running, &format!("products/{id}")))
        .await
        .json()
        .await
        .unwrap();
    let modified = p["date_modified_gmt"].as_str().unwrap().to_owned();
    let r = get(&c, &url(&running, &format!("products?modified_after={modified}&dates_are_gmt=true&per_page=100&orderby=id&order=asc"))).await;
    let ids: Vec<u64> = r
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert!(!ids.contains(&id), "strict >");
    assert!(ids.contains(&sim.product_ids()[4]));

    // A sale decrements stock without bumping date_modified.
    let variation: Value = get(&c, &url(&running, &format!("products/{id}/variations")))
        .await
        .json::<Vec<Value>>()
        .await
        .unwrap()[0]
        .clone();
    let sku = variation["sku"].as_str().unwrap().to_owned();
    let before = variation["stock_quantity"].as_i64().unwrap();
    sim.place_order(&sku, 1).unwrap();
    let after: Value = get(
        &c,
        &url(
            &running,
            &format!("products/{id}/variations/{}", variation["id"]),
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(after["stock_quantity"].as_i64().unwrap(), before - 1);
    let p2: Value = get(&c, &url(&running, &format!("products/{id}")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p2["date_modified_gmt"], p["date_modified_gmt"]);
}

#[tokio::test]
async fn sku_uniqueness_batch_limit_and_image_replace() {
    let (sim, running, c) = start(20).await;
    let existing = sim.product_ids()[0];
    let sku = sim.sku_of(existing);
    let r = c
        .post(url(&running, "products"))
        .basic_auth("ck_test", Some("cs_test"))
        .json(&json!({"name": "Dup", "sku": sku}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "product_invalid_sku");
    assert_eq!(body["data"]["resource_id"].as_u64(), Some(existing));

    let items: Vec<Value> = (0..101).map(|i| json!({"name": format!("n{i}")})).collect();
    let r = c
        .post(url(&running, "products/batch"))
        .basic_auth("ck_test", Some("cs_test"))
        .json(&json!({"create": items}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    let r: Value = c
        .post(url(&running, "products/batch"))
        .basic_auth("ck_test", Some("cs_test"))
        .json(&json!({"create": [{"name": "ok", "sku": "NEW-1"}, {"name": "dup", "sku": sku}], "update": [{"id": 999_999, "name": "x"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["create"][0]["sku"], "NEW-1");
    assert_eq!(r["create"][1]["error"]["code"], "product_invalid_sku");
    assert_eq!(
        r["update"][0]["error"]["code"],
        "woocommerce_rest_product_invalid_id"
    );

    // Images: {id} keeps the attachment, {src} always makes a new one.
    let p: Value = get(&c, &url(&running, &format!("products/{existing}")))
        .await
        .json()
        .await
        .unwrap();
    let first = p["images"][0].clone();
    let put = |body: Value| {
        let c = c.clone();
        let u = url(&running, &format!("products/{existing}"));
        async move {
            c.put(u)
                .basic_auth("ck_test", Some("cs_test"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let kept = put(json!({"images": [{"id": first["id"]}]})).await;
    assert_eq!(kept["images"].as_array().unwrap().len(), 1);
    assert_eq!(kept["images"][0]["id"], first["id"]);
    let again = put(json!({"images": [{"src": first["src"]}]})).await;
    assert_ne!(again["images"][0]["id"], first["id"]);
    // The image bytes are served.
    let png = c
        .get(again["images"][0]["src"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), 200);
    assert!(png.bytes().await.unwrap().starts_with(b"\x89PNG"));
    assert_eq!(sim.harness.stats.snapshot().product_deletes, 0);
}

#[tokio::test]
async fn sku_less_creates_count_as_duplicates_and_scripted_faults_fire_once() {
    let (sim, running, c) = start(5).await;
    let post = |body: Value| {
        let c = c.clone();
        let u = url(&running, "products");
        async move {
            c.post(u)
                .basic_auth("ck_test", Some("cs_test"))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let parent = json!({"name": "Linen Shirt", "type": "variable", "description": "d", "sku": ""});
    assert_eq!(post(parent.clone()).await.status(), 201);
    assert_eq!(sim.harness.stats.snapshot().duplicate_creates, 0);
    // The same SKU-less product again: nothing stops it, but it is counted as a duplicate.
    assert_eq!(post(parent.clone()).await.status(), 201);
    let stats = sim.harness.stats.snapshot();
    assert_eq!(stats.duplicate_creates, 1);
    assert_eq!(stats.creates, 2);
    // Another SKU-less product is not a duplicate.
    let other = json!({"name": "Wool Hat", "type": "variable", "description": "d"});
    assert_eq!(post(other).await.status(), 201);
    assert_eq!(sim.harness.stats.snapshot().duplicate_creates, 1);

    // Scripted faults: the second matching POST is applied and answered 504; the next one
    // is answered 500 without being applied; then requests pass again.
    sim.script("POST", "products", 1, Scripted::AfterApply);
    sim.script("POST", "products", 0, Scripted::Before(503));
    let before = sim.product_count();
    assert_eq!(post(json!({"name": "a", "sku": "S-A"})).await.status(), 201);
    assert_eq!(post(json!({"name": "b", "sku": "S-B"})).await.status(), 504);
    assert_eq!(sim.product_count(), before + 2, "applied before the 504");
    assert_eq!(post(json!({"name": "c", "sku": "S-C"})).await.status(), 503);
    assert_eq!(sim.product_count(), before + 2, "not applied");
    assert_eq!(sim.scripted_left(), 0);
    assert_eq!(post(json!({"name": "c", "sku": "S-C"})).await.status(), 201);
    // Patterns match one path segment per `*`, and the method.
    sim.script("GET", "products/*/variations", 0, Scripted::Before(500));
    assert_eq!(get(&c, &url(&running, "products")).await.status(), 200);
    let id = sim.product_ids()[0];
    let r = get(&c, &url(&running, &format!("products/{id}/variations"))).await;
    assert_eq!(r.status(), 500);
    assert_eq!(sim.scripted_left(), 0);
}
