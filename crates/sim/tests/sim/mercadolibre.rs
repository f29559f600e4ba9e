//! The MercadoLibre simulator over real HTTP: OAuth rotation, search limits and scan mode,
//! multiget, list-replace updates, the title lock, the token bucket, order search and its
//! ignored-parameter trap, and picture bytes.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use tidemark_sim::mercadolibre::{MlConfig, MlSim};
use tidemark_sim::{FaultConfig, RunningSim};

const TOKEN: &str = "APP_USR-initial";

async fn start(config: MlConfig) -> (MlSim, RunningSim, reqwest::Client) {
    let sim = MlSim::new(config, FaultConfig::none());
    let running = sim.serve().await.expect("serve");
    (
        sim,
        running,
        tidemark_sim::http_client_builder().build().unwrap(),
    )
}

fn fast(items: u64) -> MlConfig {
    MlConfig {
        items,
        rate_per_second: None,
        ..MlConfig::default()
    }
}

async fn get(c: &reqwest::Client, running: &RunningSim, path: &str) -> (u16, Value) {
    let r = c
        .get(format!("{}{path}", running.base_url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn put(c: &reqwest::Client, running: &RunningSim, path: &str, body: Value) -> (u16, Value) {
    let r = c
        .put(format!("{}{path}", running.base_url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn grant(c: &reqwest::Client, running: &RunningSim, form: &[(&str, &str)]) -> (u16, Value) {
    let r = c
        .post(format!("{}/oauth/token", running.base_url))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn refresh_tokens_are_single_use_and_rotate() {
    let (sim, running, c) = start(fast(3)).await;
    let r = c
        .get(format!("{}/users/me", running.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (status, me) = get(&c, &running, "/users/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], 207_035_636);

    let form = |rt: &'static str| {
        vec![
            ("grant_type", "refresh_token"),
            ("client_id", "5503910054141466"),
            ("client_secret", "ml_secret_test"),
            ("refresh_token", rt),
        ]
    };
    let (status, body) = grant(&c, &running, &form("TG-initial")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 21_600);
    let new_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, "TG-initial");
    assert_eq!(sim.current_refresh_token(), new_refresh);
    // The old one is spent.
    let (status, body) = grant(&c, &running, &form("TG-initial")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    // The new access token works; expired ones do not.
    let access = body_token(&c, &running, &new_refresh).await;
    sim.expire_access_tokens();
    let r = c
        .get(format!("{}/users/me", running.base_url))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn body_token(c: &reqwest::Client, running: &RunningSim, refresh: &str) -> String {
    let (status, body) = grant(
        c,
        running,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "5503910054141466"),
            ("client_secret", "ml_secret_test"),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(status, 200);
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn search_caps_offset_and_scan_returns_each_id_once() {
    let (sim, running, c) = start(fast(1_234)).await;
    let user = "/users/207035636/items/search";
    let (status, body) = get(&c, &running, &format!("{user}?offset=950&limit=100")).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = get(&c, &running, &format!("{user}?offset=900&limit=100")).await;
    assert_eq!(status, 200);
    assert_eq!(body["results"].as_array().unwrap().len(), 100);
    assert_eq!(body["paging"]["total"], 1_234);
    assert!(body["results"][0].is_string(), "IDs only");

    let mut seen = BTreeSet::new();
    let mut pages = 0;
    let (_, mut body) = get(&c, &running, &format!("{user}?search_type=scan&limit=100")).await;
    loop {
        let ids = body["results"].as_array().unwrap().clone();
        if ids.is_empty() {
            break;
        }
        pages += 1;
        for id in ids {
            assert!(seen.insert(id.as_str().unwrap().to_owned()), "{id} twice");
        }
        let scroll = body["scroll_id"].as_str().unwrap().to_owned();
        // Repeating a request repeats its page (an answer lost on the way costs nothing).
        let (_, again) = get(
            &c,
            &running,
            &format!("{user}?search_type=scan&limit=100&scroll_id={scroll}"),
        )
        .await;
        body = again;
    }
    assert_eq!(pages, 13);
    assert_eq!(seen.len(), 1_234);
    assert_eq!(seen, sim.item_ids().into_iter().collect());

    let (status, body) = get(
        &c,
        &running,
        &format!("{user}?search_type=scan&scroll_id=nope"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_scroll_id");

    // seller_sku matches item and variation SKUs.
    let item = sim.item_json("http://x", &sim.item_ids()[5]).unwrap();
    let vsku = item["variations"][1]["attributes"][0]["value_name"]
        .as_str()
        .unwrap();
    let (_, body) = get(&c, &running, &format!("{user}?seller_sku={vsku}")).await;
    assert_eq!(body["results"], json!([item["id"]]));
}

#[tokio::test]
async fn scroll_ids_expire() {
    let (_sim, running, c) = start(MlConfig {
        scroll_ttl: Duration::from_millis(100),
        ..fast(30)
    })
    .await;
    let user = "/users/207035636/items/search";
    let (_, body) = get(&c, &running, &format!("{user}?search_type=scan&limit=10")).await;
    let scroll = body["scroll_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (status, _) = get(
        &c,
        &running,
        &format!("{user}?search_type=scan&limit=10&scroll_id={scroll}"),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn multiget_has_a_code_per_element_and_at_most_20() {
    let (sim, running, c) = start(fast(25)).await;
    let ids = sim.item_ids();
    let (status, _) = get(&c, &running, &format!("/items?ids={}", ids[..21].join(","))).await;
    assert_eq!(status, 400);
    let (status, body) = get(&c, &running, &format!("/items?ids={},MLA9", ids[0])).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["code"], 200);
    assert_eq!(body[0]["body"]["id"], ids[0].as_str());
    assert!(!body[0]["body"]["variations"].as_array().unwrap().is_empty());
    assert_eq!(body[1]["code"], 404);
    assert_eq!(body[1]["body"]["error"], "not_found");
    let (_, body) = get(
        &c,
        &running,
        &format!("/items?ids={}&attributes=id,price", ids[0]),
    )
    .await;
    assert_eq!(body[0]["body"].as_object().unwrap().len(), 2);

    // Picture bytes are a PNG.
    let url = body_url(&sim, &running, &ids[0]);
    let bytes = c.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
}

fn body_url(sim: &MlSim, running: &RunningSim, id: &str) -> String {
    let item = sim.item_json(&running.base_url, id).unwrap();
    item["pictures"][0]["url"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn put_replaces_pictures_and_variations_and_locks_the_title_after_a_sale() {
    let (sim, running, c) = start(MlConfig {
        orders: 0,
        ..fast(2)
    })
    .await;
    let id = sim.item_ids()[0].clone();
    let (_, item) = get(&c, &running, &format!("/items/{id}")).await;
    let keep_pic = item["pictures"][0]["id"].as_str().unwrap().to_owned();
    let keep_var = item["variations"][0]["id"].as_u64().unwrap();
    let combos = item["variations"][0]["attribute_combinations"].clone();
    let (status, body) = put(
        &c,
        &running,
        &format!("/items/{id}"),
        json!({
            "price": 12.5,
            "pictures": [{"id": keep_pic}, {"source": "https://example.com/new.jpg"}],
            "variations": [{"id": keep_var, "available_quantity": 9, "price": "12.50",
                            "picture_ids": [keep_pic]}],
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let pics = body["pictures"].as_array().unwrap();
    assert_eq!(pics.len(), 2);
    assert_eq!(pics[0]["id"], keep_pic.as_str());
    assert_ne!(pics[1]["id"], keep_pic.as_str());
    assert_eq!(
        body["variations"].as_array().unwrap().len(),
        1,
        "others deleted"
    );
    assert_eq!(body["variations"][0]["available_quantity"], 9);
    assert_eq!(body["available_quantity"], 9);
    assert_eq!(body["variations"][0]["attribute_combinations"], combos);
    assert_eq!(body["price"], json!(12.5));

    // A picture id the item does not have is refused with a cause.
    let (status, body) = put(
        &c,
        &running,
        &format!("/items/{id}"),
        json!({"pictures": [{"id": "nope"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["cause"][0]["code"], "item.pictures.id.invalid");

    // The title is locked once the item sold.
    let (status, body) = put(
        &c,
        &running,
        &format!("/items/{id}"),
        json!({"title": "Renamed"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    sim.place_order(&serde_json::from_value(json!({"item_id": id})).unwrap())
        .unwrap();
    let (status, body) = put(
        &c,
        &running,
        &format!("/items/{id}"),
        json!({"title": "Again"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["cause"][0]["code"], "item.title.not_modifiable");
    let (_, item) = get(&c, &running, &format!("/items/{id}")).await;
    assert_eq!(item["available_quantity"], 8);
}

#[tokio::test]
async fn the_token_bucket_answers_too_many_requests() {
    let (sim, running, c) = start(MlConfig {
        rate_per_second: Some(5.0),
        rate_burst: 5,
        ..fast(2)
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let (status, body) = get(&c, &running, "/users/me").await;
        if status == 429 {
            assert_eq!(body["error"], "too_many_requests");
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(sim.harness.stats.snapshot().throttled > 0);
}

#[tokio::test]
async fn order_search_filters_by_date_last_updated_and_ignores_unknown_parameters() {
    let (sim, running, c) = start(MlConfig {
        orders: 30,
        ..fast(10)
    })
    .await;
    let base = "/orders/search?seller=207035636";
    let (_, all) = get(&c, &running, base).await;
    assert_eq!(all["paging"]["total"], 30);
    assert_eq!(all["results"].as_array().unwrap().len(), 30);
    let (status, _) = get(&c, &running, &format!("{base}&limit=51")).await;
    assert_eq!(status, 400);

    let ids = sim.order_ids();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let since = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    sim.edit_order(ids[3], &Default::default());
    sim.set_tracking(
        ids[7],
        &serde_json::from_value(json!({"tracking_number": "TRK1"})).unwrap(),
    );
    let (_, found) = get(
        &c,
        &running,
        &format!("{base}&order.date_last_updated.from={since}&sort=date_asc"),
    )
    .await;
    let found: Vec<u64> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_u64().unwrap())
        .collect();
    assert_eq!(found, vec![ids[3], ids[7]]);
    // The common typo is ignored: every order comes back.
    let (_, typo) = get(
        &c,
        &running,
        &format!("{base}&order.last_updated.from={since}"),
    )
    .await;
    assert_eq!(typo["paging"]["total"], 30);

    let (_, order) = get(&c, &running, &format!("/orders/{}", ids[7])).await;
    assert!(order["last_updated"].as_str().unwrap().ends_with("-04:00"));
    let ship = order["shipping"]["id"].as_u64().unwrap();
    let (_, shipment) = get(&c, &running, &format!("/shipments/{ship}")).await;
    assert_eq!(shipment["tracking_number"], "TRK1");
}

#[tokio::test]
async fn search_sorts_by_last_updated_desc_on_request() {
    let (sim, running, c) = start(fast(30)).await;
    let ids = sim.item_ids();
    for id in [&ids[7], &ids[3], &ids[20]] {
        let edit = tidemark_sim::mercadolibre::ItemEdit {
            stock: Some(9),
            ..Default::default()
        };
        sim.edit_item(id, &edit).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let path = "/users/207035636/items/search?orders=last_updated_desc&limit=5";
    let (status, body) = get(&c, &running, path).await;
    assert_eq!(status, 200);
    let first: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        &first[..3],
        [ids[20].as_str(), ids[3].as_str(), ids[7].as_str()]
    );
    // Without it: id order.
    let (_, body) = get(&c, &running, "/users/207035636/items/search?limit=2").await;
    assert_eq!(body["results"][0], ids[0].as_str());
}

#[tokio::test]
async fn descriptions_are_served_and_written_by_put_and_post() {
    let (sim, running, c) = start(fast(2)).await;
    let id = sim.item_ids()[0].clone();
    let (status, body) = get(&c, &running, &format!("/items/{id}/description")).await;
    assert_eq!(status, 200);
    let seeded = tidemark_core::sample::product(1).description;
    assert_eq!(body["plain_text"], json!(seeded));

    let before = sim.item_json(&running.base_url, &id).unwrap()["last_updated"].clone();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, body) = put(
        &c,
        &running,
        &format!("/items/{id}/description"),
        json!({"plain_text": "uno"}),
    )
    .await;
    assert_eq!((status, body["plain_text"].clone()), (200, json!("uno")));
    let after = sim.item_json(&running.base_url, &id).unwrap()["last_updated"].clone();
    assert_ne!(before, after, "a description write bumps last_updated");

    let r = c
        .post(format!("{}/items/{id}/description", running.base_url))
        .bearer_auth(TOKEN)
        .json(&json!({"plain_text": "dos"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, body) = get(&c, &running, &format!("/items/{id}/description")).await;
    assert_eq!(body["plain_text"], json!("dos"));

    let (status, body) = put(&c, &running, &format!("/items/{id}/description"), json!({})).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("validation_error"))
    );
    let (status, _) = get(&c, &running, "/items/MLA1/description").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sku_search_lags_writes_by_the_index_lag_while_reads_by_id_do_not() {
    let sim = MlSim::new(
        fast(2),
        FaultConfig {
            index_lag_ms: 400,
            ..FaultConfig::none()
        },
    );
    let running = sim.serve().await.unwrap();
    let c = tidemark_sim::http_client_builder().build().unwrap();
    let r = c
        .post(format!("{}/items", running.base_url))
        .bearer_auth(TOKEN)
        .json(
            &json!({"title": "Lagging", "category_id": "MLA1234", "price": 10,
            "currency_id": "ARS", "available_quantity": 1,
            "attributes": [{"id": "SELLER_SKU", "value_name": "LAG-1"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let search = "/users/207035636/items/search?seller_sku=LAG-1";
    let (_, body) = get(&c, &running, search).await;
    assert_eq!(body["results"], json!([]), "not indexed yet");
    let (status, _) = get(&c, &running, &format!("/items/{id}")).await;
    assert_eq!(status, 200, "reads by id are immediate");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (_, body) = get(&c, &running, search).await;
    assert_eq!(body["results"], json!([id]));

    // An edit of the SKU: the old one is still found within the lag, the new one after.
    let (status, _) = put(
        &c,
        &running,
        &format!("/items/{id}"),
        json!({"attributes": [{"id": "SELLER_SKU", "value_name": "LAG-2"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = get(&c, &running, search).await;
    assert_eq!(body["results"], json!([id]));
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (_, body) = get(&c, &running, search).await;
    assert_eq!(body["results"], json!([]));
    let (_, body) = get(
        &c,
        &running,
        "/users/207035636/items/search?seller_sku=LAG-2",
    )
    .await;
    assert_eq!(body["results"], json!([id]));
}

/// A loopback image host: `/a.png`, `/b.png` (PNGs), `/c.gif` (a GIF) and `/t.txt` (text).
async fn image_host() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/a.png",
            axum::routing::get(|| async { tidemark_sim::images::png(77, 12) }),
        )
        .route(
            "/b.png",
            axum::routing::get(|| async { tidemark_sim::images::png(78, 20) }),
        )
        .route(
            "/c.gif",
            axum::routing::get(|| async { b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec() }),
        )
        .route("/t.txt", axum::routing::get(|| async { "hello" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// `bytes` is `original` with one chunk inserted right after IHDR (MercadoLibre's
/// re-encoding as the simulator models it).
fn is_original_plus_one_chunk(bytes: &[u8], original: &[u8]) -> bool {
    let after_ihdr = 33;
    let len = u32::from_be_bytes(bytes[after_ihdr..after_ihdr + 4].try_into().unwrap()) as usize;
    bytes[..after_ihdr] == original[..after_ihdr]
        && &bytes[after_ihdr + 4..after_ihdr + 8] == b"tEXt"
        && bytes[after_ihdr + 12 + len..] == original[after_ihdr..]
}

async fn post(c: &reqwest::Client, running: &RunningSim, path: &str, body: Value) -> (u16, Value) {
    let r = c
        .post(format!("{}{path}", running.base_url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A new item without variations or pictures (seeded items' variations name their pictures,
/// so replacing those would need the variations too).
async fn plain_item(c: &reqwest::Client, running: &RunningSim) -> String {
    let (status, item) = post(
        c,
        running,
        "/items",
        json!({"title": "Taza", "category_id": "MLA1234", "price": 10, "currency_id": "ARS",
               "available_quantity": 3}),
    )
    .await;
    assert_eq!(status, 201, "{item}");
    item["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn picture_sources_are_downloaded_and_served_re_encoded() {
    let (sim, running, c) = start(MlConfig {
        orders: 0,
        ..fast(2)
    })
    .await;
    let host = image_host().await;
    let id = plain_item(&c, &running).await;
    let a = format!("{host}/a.png");
    let elsewhere = "https://cdn.example.com/shoe.png";
    let (status, item) = put(
        &c,
        &running,
        &format!("/items/{id}"),
        json!({"pictures": [{"source": a}, {"source": elsewhere}]}),
    )
    .await;
    assert_eq!(status, 200, "{item}");
    let pics = item["pictures"].as_array().unwrap();
    assert_eq!(pics.len(), 2);
    assert_eq!(pics[0]["size"], "12x12", "the downloaded image's own size");

    // What the CDN serves is not what was sent: the same PNG with one more chunk. The CDN is
    // apart from the API: its answers are not counted (nor faulted, nor rate limited).
    let original = tidemark_sim::images::png(77, 12);
    let requests = sim.harness.stats.snapshot().requests;
    let served = c
        .get(pics[0]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(served.headers()["content-type"], "image/png");
    let served = served.bytes().await.unwrap();
    assert_ne!(served.as_ref(), original.as_slice());
    assert!(is_original_plus_one_chunk(&served, &original));
    assert_eq!(sim.harness.stats.snapshot().requests, requests);
    // A URL off the machine: the stand-in image, re-encoded too.
    let stand_in = tidemark_sim::images::fetch_source(elsewhere).await.unwrap();
    let served = c
        .get(pics[1]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(is_original_plus_one_chunk(&served, &stand_in));

    // Variations may name a source URL in picture_ids: the item picture made from it by the
    // same write, or (a URL the write's pictures do not have) a new item picture.
    let b = format!("{host}/b.png");
    let (status, created) = post(
        &c,
        &running,
        "/items",
        json!({"title": "Remera", "category_id": "MLA1234", "price": 100, "currency_id": "ARS",
               "pictures": [{"source": a}],
               "variations": [
                 {"attribute_combinations": [{"id": "COLOR", "name": "Color", "value_name": "Rojo"}],
                  "available_quantity": 1, "picture_ids": [a]},
                 {"attribute_combinations": [{"id": "COLOR", "name": "Color", "value_name": "Azul"}],
                  "available_quantity": 1, "picture_ids": [b]}]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let pics: Vec<&str> = created["pictures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(pics.len(), 2, "{created}");
    assert_eq!(created["variations"][0]["picture_ids"], json!([pics[0]]));
    assert_eq!(created["variations"][1]["picture_ids"], json!([pics[1]]));
}

#[tokio::test]
async fn a_picture_source_that_cannot_be_taken_fails_the_whole_write() {
    let (sim, running, c) = start(MlConfig {
        orders: 0,
        ..fast(2)
    })
    .await;
    let host = image_host().await;
    let id = sim.item_ids()[0].clone();
    let before = sim.item_json(&running.base_url, &id).unwrap();
    let keep = before["pictures"][0]["id"].clone();
    let cases = [
        (
            "https://images.invalid/a.png".to_owned(),
            "item.pictures.source.invalid",
        ),
        (
            format!("{host}/missing.png"),
            "item.pictures.source.invalid",
        ),
        (format!("{host}/t.txt"), "item.pictures.format.invalid"),
        (format!("{host}/c.gif"), "item.pictures.format.invalid"),
    ];
    for (source, code) in &cases {
        let (status, body) = put(
            &c,
            &running,
            &format!("/items/{id}"),
            json!({"title": "Nuevo título", "price": 999,
                   "pictures": [{"id": keep}, {"source": source}]}),
        )
        .await;
        assert_eq!(status, 400, "{source}: {body}");
        assert_eq!(body["error"], "validation_error");
        assert_eq!(body["status"], 400);
        let cause = &body["cause"][0];
        assert_eq!(cause["code"], *code, "{body}");
        assert_eq!(cause["type"], "error");
        assert_eq!(cause["references"], json!(["item.pictures[1].source"]));
        assert!(
            cause["message"].as_str().unwrap().contains(source.as_str()),
            "{body}"
        );
    }
    // Nothing of those writes happened: not the title, the price, nor last_updated.
    assert_eq!(sim.item_json(&running.base_url, &id).unwrap(), before);

    // A variation naming an unreachable URL: the same, with the variation's reference.
    let var = before["variations"][0]["id"].clone();
    let (status, body) = put(
        &c,
        &running,
        &format!("/items/{id}"),
        json!({"variations": [{"id": var, "picture_ids": ["https://images.invalid/v.png"]}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["cause"][0]["references"],
        json!(["item.variations[0].picture_ids[0]"])
    );
    assert_eq!(sim.item_json(&running.base_url, &id).unwrap(), before);

    // A create with one: no item, no create counted.
    let (status, body) = post(
        &c,
        &running,
        "/items",
        json!({"title": "Nunca", "category_id": "MLA1234", "price": 10, "currency_id": "ARS",
               "available_quantity": 1,
               "pictures": [{"source": format!("{host}/a.png")},
                            {"source": "https://images.invalid/b.png"}],
               "attributes": [{"id": "SELLER_SKU", "value_name": "NEVER-1"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["cause"][0]["code"], "item.pictures.source.invalid");
    assert_eq!(sim.item_ids().len(), 2);
    assert_eq!(sim.harness.stats.snapshot().creates, 0);
}

/// A `multipart/form-data` body with `bytes` as the part `name`.
fn multipart(name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----tidemarkBoundary7MA4YWxkTrZu0gW";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
         filename=\"photo.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(
    c: &reqwest::Client,
    running: &RunningSim,
    name: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let (content_type, body) = multipart(name, bytes);
    let r = c
        .post(format!("{}/pictures/items/upload", running.base_url))
        .bearer_auth(TOKEN)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn uploaded_pictures_are_named_by_id_in_item_writes() {
    let (sim, running, c) = start(MlConfig {
        orders: 0,
        ..fast(2)
    })
    .await;
    let png = tidemark_sim::images::png(5, 30);
    let (status, uploaded) = upload(&c, &running, "file", &png).await;
    assert_eq!(status, 201, "{uploaded}");
    let picture = uploaded["id"].as_str().unwrap().to_owned();
    assert_eq!(uploaded["max_size"], "30x30");
    let variations = uploaded["variations"].as_array().unwrap();
    assert!(!variations.is_empty());
    for v in variations {
        assert_eq!(v["size"], "30x30");
        let served = c
            .get(v["secure_url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(is_original_plus_one_chunk(&served, &png), "re-encoded");
    }

    // Named by id in a PUT (list replace) and in a create.
    let id = plain_item(&c, &running).await;
    let (status, item) = put(
        &c,
        &running,
        &format!("/items/{id}"),
        json!({"pictures": [{"id": picture}]}),
    )
    .await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["pictures"][0]["id"], picture.as_str());
    assert_eq!(item["pictures"].as_array().unwrap().len(), 1);
    let (status, created) = post(
        &c,
        &running,
        "/items",
        json!({"title": "Con foto subida", "category_id": "MLA1234", "price": 10,
               "currency_id": "ARS", "available_quantity": 1, "pictures": [{"id": picture}]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["pictures"][0]["id"], picture.as_str());

    // Or linked to an item with POST /items/{id}/pictures.
    let (_, second) = upload(&c, &running, "file", &tidemark_sim::images::png(6, 10)).await;
    let other = sim.item_ids()[1].clone();
    let count = sim.item_json(&running.base_url, &other).unwrap()["pictures"]
        .as_array()
        .unwrap()
        .len();
    let (status, body) = post(
        &c,
        &running,
        &format!("/items/{other}/pictures"),
        json!({"id": second["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let pictures = sim.item_json(&running.base_url, &other).unwrap()["pictures"].clone();
    assert_eq!(pictures.as_array().unwrap().len(), count + 1);
    assert_eq!(pictures[count]["id"], second["id"]);

    // Refusals: not an image, no `file` part, no token.
    let (status, body) = upload(&c, &running, "file", b"plain text").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["cause"][0]["code"], "picture.file.invalid");
    let (status, _) = upload(&c, &running, "image", &png).await;
    assert_eq!(status, 400);
    let (content_type, body) = multipart("file", &png);
    let r = c
        .post(format!("{}/pictures/items/upload", running.base_url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // An id MercadoLibre never issued is still refused.
    let (status, body) = put(
        &c,
        &running,
        &format!("/items/{id}"),
        json!({"pictures": [{"id": "123-MLA999_062025"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["cause"][0]["code"], "item.pictures.id.invalid");
}

#[tokio::test]
async fn a_seller_deleted_item_leaves_searches_and_reads() {
    let (sim, running, c) = start(fast(5)).await;
    let victim = sim.item_ids()[2].clone();
    let answer = c
        .post(format!(
            "{}/_sim/mercadolibre/items/{victim}/delete",
            running.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let (status, found) = get(&c, &running, "/users/207035636/items/search?limit=50").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(!ids.contains(&victim.as_str()));
    let (status, _) = get(&c, &running, &format!("/items/{victim}")).await;
    assert_eq!(status, 404);
    assert_eq!(sim.harness.stats.snapshot().product_deletes, 0);
    assert!(!sim.delete_item(&victim), "already gone");
    running.stop().await;
}
