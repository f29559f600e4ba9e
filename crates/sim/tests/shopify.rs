#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The Shopify simulator on its own: auth, cost, throttling, paging and query filters.

use serde_json::{Value, json};
use tidemark_sim::FaultConfig;
use tidemark_sim::shopify::shop::{Term, parse_query};
use tidemark_sim::shopify::{ShopifyConfig, ShopifySim};

async fn post(addr: &str, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("http://{addr}/admin/api/2025-01/graphql.json"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(t) = token {
        req = req.header("X-Shopify-Access-Token", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn auth_cost_throttle_and_paging() {
    let sim = ShopifySim::new(
        ShopifyConfig {
            products: 30,
            ..ShopifyConfig::default()
        },
        FaultConfig::none(),
    );
    let running = sim.serve().await.unwrap();
    let addr = running.addr.to_string();
    let page = "query($after: String) { products(first: 10, after: $after, sortKey: UPDATED_AT) { pageInfo { hasNextPage endCursor } nodes { id variants(first: 5) { nodes { sku } } } } }";

    let (status, _) = post(&addr, None, page, json!({})).await;
    assert_eq!(status, 401);

    // Paging: 30 products in three pages, each once; cost 2 + 10 × (1 + 2 + 5 × 1) = 82.
    let mut after = Value::Null;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let (_, body) = post(&addr, Some("shpat_test"), page, json!({ "after": after })).await;
        assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 82);
        assert!(
            body["extensions"]["cost"]["actualQueryCost"]
                .as_u64()
                .unwrap()
                <= 82
        );
        for n in body["data"]["products"]["nodes"].as_array().unwrap() {
            assert!(seen.insert(n["id"].as_str().unwrap().to_owned()));
        }
        if body["data"]["products"]["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = body["data"]["products"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.len(), 30);

    // first > 250 and cost above 1000 are refused.
    let (_, body) = post(
        &addr,
        Some("shpat_test"),
        "{ products(first: 251) { nodes { id } } }",
        json!({}),
    )
    .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("250")
    );
    let (_, body) = post(
        &addr,
        Some("shpat_test"),
        "{ products(first: 250) { nodes { id variants(first: 10) { nodes { id } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED");

    // A bucket that cannot cover the request answers THROTTLED with HTTP 200.
    sim.set_rate(50.0, 1.0);
    let (status, body) = post(&addr, Some("shpat_test"), page, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["extensions"]["code"], "THROTTLED");
    assert!(body["extensions"]["cost"]["actualQueryCost"].is_null());
    assert_eq!(
        body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"],
        50.0
    );
    assert_eq!(sim.harness.stats.snapshot().throttled, 1);
    running.stop().await;
}

#[test]
fn query_filters_parse() {
    let terms = parse_query("updated_at:>='2025-06-01T00:00:00Z' AND sku:\"A B\" status:active");
    assert_eq!(
        terms,
        vec![
            Term {
                field: "updated_at".into(),
                op: ">=",
                value: "2025-06-01T00:00:00Z".into()
            },
            Term {
                field: "sku".into(),
                op: "=",
                value: "A B".into()
            },
            Term {
                field: "status".into(),
                op: "=",
                value: "active".into()
            },
        ]
    );
    assert_eq!(parse_query("updated_at:<'2025-01-01T00:00:00Z'")[0].op, "<");
}

#[tokio::test]
async fn bulk_query_runs_completes_serves_jsonl_and_refuses_a_second_job() {
    let sim = ShopifySim::new(
        ShopifyConfig {
            products: 12,
            ..ShopifyConfig::default()
        },
        FaultConfig::none(),
    );
    sim.set_bulk_delay_ms(300);
    let running = sim.serve().await.unwrap();
    let addr = running.addr.to_string();
    let run = r#"mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status } userErrors { field message code } } }"#;
    let inner = "{ products { edges { node { id title variants { edges { node { id sku price } } } media { edges { node { id ... on MediaImage { image { url } } } } } } } } }";
    let (_, body) = post(&addr, Some("shpat_test"), run, json!({ "q": inner })).await;
    let op = &body["data"]["bulkOperationRunQuery"];
    assert_eq!(op["userErrors"], json!([]), "{body}");
    assert_eq!(op["bulkOperation"]["status"], "RUNNING");
    // A mutation's cost (10) plus its payload objects; the inner query itself costs nothing.
    assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 12);

    // A second job while the first runs is refused.
    let (_, body) = post(&addr, Some("shpat_test"), run, json!({ "q": inner })).await;
    let op = &body["data"]["bulkOperationRunQuery"];
    assert_eq!(op["bulkOperation"], Value::Null);
    assert_eq!(op["userErrors"][0]["code"], "OPERATION_IN_PROGRESS");

    let poll = "{ currentBulkOperation(type: QUERY) { id status errorCode objectCount rootObjectCount url partialDataUrl } }";
    let (_, body) = post(&addr, Some("shpat_test"), poll, json!({})).await;
    assert_eq!(body["data"]["currentBulkOperation"]["status"], "RUNNING");
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    let (_, body) = post(&addr, Some("shpat_test"), poll, json!({})).await;
    let cur = &body["data"]["currentBulkOperation"];
    assert_eq!(cur["status"], "COMPLETED", "{body}");
    assert_eq!(cur["rootObjectCount"], "12");
    let url = cur["url"].as_str().unwrap();
    assert!(url.starts_with(&running.base_url));

    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cur["objectCount"], lines.len().to_string());
    let parents: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("__parentId").is_none())
        .collect();
    assert_eq!(parents.len(), 12);
    let mut expected_children = 0;
    for gid in sim.product_gids() {
        let (title, variants, media) = sim.product_shape(&gid).unwrap();
        assert!(
            parents
                .iter()
                .any(|p| p["id"] == gid.as_str() && p["title"] == title.as_str())
        );
        let kids = lines.iter().filter(|l| l["__parentId"] == gid.as_str());
        let (v, m) = kids.fold((0, 0), |(v, m), l| {
            let id = l["id"].as_str().unwrap();
            if id.contains("ProductVariant") {
                assert!(l["price"].is_string());
                (v + 1, m)
            } else {
                (v, m + 1)
            }
        });
        assert_eq!((v, m), (variants, media), "{gid}");
        expected_children += variants + media;
        assert!(parents.iter().all(|p| p.get("variants").is_none()));
    }
    assert_eq!(lines.len(), 12 + expected_children);

    // A job that fails ends FAILED with a partial file; expired jobs lose their files.
    sim.set_bulk_delay_ms(0);
    sim.set_bulk_fail(true);
    let (_, body) = post(&addr, Some("shpat_test"), run, json!({ "q": inner })).await;
    assert_eq!(
        body["data"]["bulkOperationRunQuery"]["userErrors"],
        json!([])
    );
    let (_, body) = post(&addr, Some("shpat_test"), poll, json!({})).await;
    let cur = &body["data"]["currentBulkOperation"];
    assert_eq!(cur["status"], "FAILED");
    assert_eq!(cur["url"], Value::Null);
    let partial = reqwest::get(cur["partialDataUrl"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(partial.lines().count() < lines.len());
    sim.expire_bulk_operations();
    let (_, body) = post(&addr, Some("shpat_test"), poll, json!({})).await;
    assert_eq!(body["data"]["currentBulkOperation"]["status"], "EXPIRED");
    assert_eq!(reqwest::get(url).await.unwrap().status().as_u16(), 404);

    // productsCount.
    let (_, body) = post(
        &addr,
        Some("shpat_test"),
        "{ productsCount { count precision } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["productsCount"],
        json!({ "count": 12, "precision": "EXACT" })
    );
}
