//! The WooCommerce simulator over real HTTP: paging limits and headers, the `orderby=date`
//! trap, strict `modified_after`, SKU uniqueness, batch limits, image replace semantics, auth,
//! stock changes from orders that do not bump `date_modified`, and signed webhooks.

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
    (
        sim,
        running,
        tidemark_sim::http_client_builder().build().unwrap(),
    )
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

async fn send(c: &reqwest::Client, method: reqwest::Method, u: &str, body: Value) -> (u16, Value) {
    let r = c
        .request(method, u)
        .basic_auth("ck_test", Some("cs_test"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn download(c: &reqwest::Client, src: &str) -> (String, Vec<u8>) {
    let r = c.get(src).send().await.unwrap();
    assert_eq!(r.status(), 200, "{src}");
    let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
    (kind, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn src_uploads_keep_the_downloaded_bytes_and_seeded_images_their_pngs() {
    let (sim, running, c) = start(5).await;
    let id = sim.product_ids()[0];
    let seeded: Value = get(&c, &url(&running, &format!("products/{id}")))
        .await
        .json()
        .await
        .unwrap();
    let seeded_id = seeded["images"][0]["id"].as_u64().unwrap();
    let (kind, bytes) = download(&c, seeded["images"][0]["src"].as_str().unwrap()).await;
    assert_eq!(kind, "image/png");
    assert_eq!(bytes, tidemark_sim::images::png(seeded_id, 32));

    let src = "https://cdn.example.com/catalogue/front.jpg?v=2";
    let (status, created) = send(
        &c,
        reqwest::Method::POST,
        &url(&running, "products"),
        json!({"name": "Copied", "sku": "COPY-1", "images": [{"src": src, "alt": "front"}]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let image = &created["images"][0];
    assert_eq!(image["name"], "front.jpg", "titled after the file");
    assert_eq!(image["alt"], "front");
    let (kind, bytes) = download(&c, image["src"].as_str().unwrap()).await;
    assert_eq!(kind, "image/png");
    assert_eq!(
        bytes,
        tidemark_sim::images::fetch_source(src).await.unwrap()
    );
}

#[tokio::test]
async fn an_unfetchable_src_fails_that_write_and_changes_nothing_of_it() {
    let (sim, running, c) = start(5).await;
    let products = sim.product_count();
    let attachments = sim.attachment_count();
    let bad = "https://images.invalid/missing.jpg";
    let good = "https://cdn.example.com/ok.jpg";

    // A create: refused, the SKU stays free; the good image sent before the bad one was
    // sideloaded anyway and stays in the media library, attached to nothing.
    let (status, body) = send(
        &c,
        reqwest::Method::POST,
        &url(&running, "products"),
        json!({"name": "N", "sku": "IMG-1", "images": [{"src": good}, {"src": bad}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "woocommerce_product_image_upload_error");
    assert_eq!(body["data"]["status"], 400);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("Error getting remote image {bad}.")),
        "{message}"
    );
    assert_eq!(sim.product_count(), products);
    assert_eq!(sim.attachment_count(), attachments + 1);
    assert!(sim.product_id_by_sku("IMG-1").is_none());

    // A loopback source that answers 404 fails the same way, with WordPress's reason.
    let gone = format!(
        "{}/wp-content/uploads/2025/01/tm-999999.png",
        running.base_url
    );
    let (status, body) = send(
        &c,
        reqwest::Method::POST,
        &url(&running, "products"),
        json!({"name": "N", "images": [{"src": gone}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("Error: Not Found"),
        "{body}"
    );

    // An update: refused whole, the name and gallery unchanged, not even date_modified.
    let id = sim.product_ids()[1];
    let before = sim.product_json("", id).unwrap();
    let (status, body) = send(
        &c,
        reqwest::Method::PUT,
        &url(&running, &format!("products/{id}")),
        json!({"name": "Renamed", "images": [{"id": before["images"][0]["id"]}, {"src": bad}]}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("woocommerce_product_image_upload_error"))
    );
    assert_eq!(sim.product_json("", id).unwrap(), before);

    // A batch: the items with a bad source fail alone.
    let other = sim.product_ids()[2];
    let (status, body) = send(
        &c,
        reqwest::Method::POST,
        &url(&running, "products/batch"),
        json!({
            "create": [{"name": "ok", "sku": "B-OK", "images": [{"src": good}]},
                       {"name": "bad", "sku": "B-BAD", "images": [{"src": bad}]}],
            "update": [{"id": id, "name": "Renamed", "images": [{"src": bad}]},
                       {"id": other, "name": "Renamed too"}],
        }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["create"][0]["sku"], "B-OK");
    assert_eq!(body["create"][1]["id"], 0);
    assert_eq!(
        body["create"][1]["error"]["code"],
        "woocommerce_product_image_upload_error"
    );
    assert_eq!(body["create"][1]["error"]["data"]["status"], 400);
    assert_eq!(body["update"][0]["id"], id);
    assert_eq!(
        body["update"][0]["error"]["code"],
        "woocommerce_product_image_upload_error"
    );
    assert_eq!(body["update"][1]["name"], "Renamed too");
    assert!(sim.product_id_by_sku("B-BAD").is_none());
    assert_eq!(sim.product_json("", id).unwrap(), before);

    // Variations answer with their own code, alone and in a batch.
    let parent = sim.product_ids()[0];
    let variation = sim.product_json("", parent).unwrap()["_variations"][0].clone();
    let vid = variation["id"].as_u64().unwrap();
    let (status, body) = send(
        &c,
        reqwest::Method::PUT,
        &url(&running, &format!("products/{parent}/variations/{vid}")),
        json!({"regular_price": "1.00", "image": {"src": bad}}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("woocommerce_variation_image_upload_error"))
    );
    let (_, body) = send(
        &c,
        reqwest::Method::POST,
        &url(&running, &format!("products/{parent}/variations/batch")),
        json!({"create": [{"sku": "V-BAD", "image": {"src": bad}}],
               "update": [{"id": vid, "regular_price": "1.00", "image": {"src": bad}}]}),
    )
    .await;
    assert_eq!(
        body["create"][0]["error"]["code"],
        "woocommerce_variation_image_upload_error"
    );
    assert_eq!(
        body["update"][0]["error"]["code"],
        "woocommerce_variation_image_upload_error"
    );
    assert!(sim.product_id_by_sku("V-BAD").is_none());
    let after = sim.product_json("", parent).unwrap()["_variations"][0].clone();
    assert_eq!(after, variation);
}

#[tokio::test]
async fn a_variation_image_by_src_is_its_own_attachment_outside_the_gallery() {
    let (sim, running, c) = start(1).await;
    let (status, product) = send(
        &c,
        reqwest::Method::POST,
        &url(&running, "products"),
        json!({"name": "Shirt", "type": "variable", "sku": "SHIRT",
               "attributes": [{"name": "color", "variation": true, "options": ["red"]}],
               "images": [{"src": "https://cdn.example.com/shirt.jpg"}]}),
    )
    .await;
    assert_eq!(status, 201);
    let id = product["id"].as_u64().unwrap();
    let src = "https://cdn.example.com/shirt-red.jpg";
    let (status, variation) = send(
        &c,
        reqwest::Method::POST,
        &url(&running, &format!("products/{id}/variations")),
        json!({"sku": "SHIRT-RED", "regular_price": "10",
               "attributes": [{"name": "color", "option": "red"}], "image": {"src": src}}),
    )
    .await;
    assert_eq!(status, 201, "{variation}");
    let image_id = variation["image"]["id"].as_u64().unwrap();
    let gallery: Vec<u64> = sim.shapes()[&id].images.clone();
    assert_eq!(gallery.len(), 1);
    assert!(
        !gallery.contains(&image_id),
        "not added to the parent's gallery"
    );
    let (_, bytes) = download(&c, variation["image"]["src"].as_str().unwrap()).await;
    assert_eq!(
        bytes,
        tidemark_sim::images::fetch_source(src).await.unwrap()
    );

    // `{}` clears the variation's image; `{id}` of an attachment that does not exist is refused.
    let vid = variation["id"].as_u64().unwrap();
    let u = url(&running, &format!("products/{id}/variations/{vid}"));
    let (status, body) = send(
        &c,
        reqwest::Method::PUT,
        &u,
        json!({"image": {"id": 999_999}}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("woocommerce_variation_invalid_image_id"))
    );
    let (status, body) = send(&c, reqwest::Method::PUT, &u, json!({"image": {}})).await;
    assert_eq!(status, 200);
    assert!(body["image"].is_null());
}

#[tokio::test]
async fn an_image_copied_from_one_simulator_to_another_keeps_its_bytes() {
    let (first, first_running, c) = start(3).await;
    let (second, second_running, _) = start(0).await;
    let id = first.product_ids()[0];
    let seeded = first.product_json(&first_running.base_url, id).unwrap();
    // Also an image the first simulator itself downloaded: its bytes travel on.
    let (_, uploaded) = send(
        &c,
        reqwest::Method::POST,
        &url(&first_running, "products"),
        json!({"name": "Up", "images": [{"src": "https://cdn.example.com/up.jpg"}]}),
    )
    .await;
    // Media are static files: the first simulator's API faults do not reach them.
    first.harness.faults.set(FaultConfig {
        truncated: 0.5,
        server_error: 0.5,
        ..FaultConfig::none()
    });
    for src in [&seeded["images"][0]["src"], &uploaded["images"][0]["src"]] {
        let src = src.as_str().unwrap();
        let (_, original) = download(&c, src).await;
        let before = second.attachment_count();
        let (status, copy) = send(
            &c,
            reqwest::Method::POST,
            &url(&second_running, "products"),
            json!({"name": "Copy", "images": [{"src": src}]}),
        )
        .await;
        assert_eq!(status, 201, "{copy}");
        assert_eq!(second.attachment_count(), before + 1);
        let copied = copy["images"][0]["src"].as_str().unwrap();
        assert!(copied.starts_with(&second_running.base_url), "{copied}");
        let (kind, bytes) = download(&c, copied).await;
        assert_eq!(kind, "image/png");
        assert_eq!(bytes, original, "{src} → {copied}");
    }
}
