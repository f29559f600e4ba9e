//! Webhooks: signed deliveries verified before any work; forged, unsigned, stale and replayed
//! ones cause no work; MercadoLibre hints answered within 500 ms.

use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::api_test;
use crate::common::{Harness, error_code, logs, oversized, send};

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn runs(h: &Harness) -> i64 {
    h.store
        .job_run_counts()
        .await
        .unwrap()
        .iter()
        .map(|(_, _, n)| n)
        .sum()
}

async fn create(h: &Harness, body: Value) -> i64 {
    let (status, created) = send(
        h.alice(reqwest::Method::POST, "/api/v1/connections")
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_i64().unwrap()
}

api_test! {
    async fn woocommerce_deliveries_are_verified_deduped_and_queue_one_fetch(h) {
        let secret = "wc-webhook-secret-ABCDEF";
        let id = h.woo_connection("Woo", secret).await["id"].as_i64().unwrap();
        let url = h.url(&format!("/webhooks/{id}"));
        let body = br#"{"id": 731, "name": "Blue shirt", "sku": "BS-1"}"#.to_vec();
        let deliver = |signature: Option<String>, delivery: &str, body: Vec<u8>| {
            let mut request = h
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-wc-webhook-topic", "product.updated")
                .header("x-wc-webhook-delivery-id", delivery)
                .body(body);
            if let Some(signature) = signature {
                request = request.header("x-wc-webhook-signature", signature);
            }
            request
        };

        // Forged, unsigned and wrong-connection deliveries: 401, no work.
        let before = runs(&h).await;
        for (signature, target) in [
            (Some(sign("not-the-secret", &body)), url.clone()),
            (None, url.clone()),
            (Some("bm90IGEgc2lnbmF0dXJl".to_owned()), url.clone()),
            (Some(sign(secret, &body)), h.url("/webhooks/999999")),
        ] {
            let mut request = deliver(signature, "d-forged", body.clone());
            if target != url {
                request = h.http.post(&target).header("x-wc-webhook-topic", "product.updated").header("x-wc-webhook-delivery-id", "d").header("x-wc-webhook-signature", sign(secret, &body)).body(body.clone());
            }
            let (status, answer) = send(request).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
            assert_eq!(error_code(&answer), "unauthorized");
        }
        // A body changed after signing does not verify either.
        let tampered = br#"{"id": 732, "name": "Blue shirt", "sku": "BS-1"}"#.to_vec();
        let (status, _) = send(deliver(Some(sign(secret, &body)), "d-tampered", tampered)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(runs(&h).await, before, "a refused delivery queued work");

        // A genuine delivery: one fetch of product 731.
        let (status, answer) = send(deliver(Some(sign(secret, &body)), "d-1", body.clone())).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["status"], "queued");
        let job = answer["job"].as_i64().unwrap();
        let (_, run) = send(h.alice(reqwest::Method::GET, &format!("/api/v1/jobs/{job}"))).await;
        assert_eq!(run["kind"], "fetch");
        assert_eq!(run["trigger"], "webhook");
        assert_eq!(run["scope"]["scope"]["one"]["external_id"].as_str().or(run["scope"].to_string().contains("731").then_some("731")), Some("731"), "{run}");
        let after = runs(&h).await;
        assert_eq!(after, before + 1);

        // The same delivery again (a retry or a replay): 200, no work.
        for _ in 0..3 {
            let (status, answer) = send(deliver(Some(sign(secret, &body)), "d-1", body.clone())).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(answer["status"], "duplicate");
        }
        assert_eq!(runs(&h).await, after, "a replayed delivery queued work");

        // A ping (no topic) is accepted and ignored.
        let ping = b"webhook_id=12".to_vec();
        let (status, answer) = send(
            h.http.post(&url)
                .header("x-wc-webhook-delivery-id", "d-ping")
                .header("x-wc-webhook-signature", sign(secret, &ping))
                .body(ping),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["status"], "ignored");
        assert_eq!(runs(&h).await, after);

        // An oversized delivery: 413.
        let (status, answer) = oversized(&h, &reqwest::Method::POST, &format!("/webhooks/{id}"), None, 9 * 1024 * 1024).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
        error_code(&answer);
        assert!(!logs().contains(secret), "the webhook secret was logged");
    }
}

api_test! {
    async fn shopify_deliveries_are_verified_and_stale_ones_refused(h) {
        let secret = "shpss_webhook_secret_112233";
        let id = create(&h, json!({
            "name": "Shopify",
            "platform": "shopify",
            "platform_settings": {"shop_url": "http://127.0.0.1:9"},
            "credentials": {"access_token": "shpat_test_token_445566", "webhook_secret": secret},
        })).await;
        let url = h.url(&format!("/webhooks/{id}"));
        let body = br#"{"id": 632910392, "admin_graphql_api_id": "gid://shopify/Product/632910392", "title": "IPod Nano"}"#.to_vec();
        let deliver = |signature: String, delivery: &str, triggered: &str| {
            h.http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-shopify-topic", "products/update")
                .header("x-shopify-webhook-id", delivery)
                .header("x-shopify-triggered-at", triggered)
                .header("x-shopify-hmac-sha256", signature)
                .body(body.clone())
        };
        let fresh = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let before = runs(&h).await;
        let (status, answer) = send(deliver(sign("wrong", &body), "s-0", &fresh)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        // Signed properly but stamped eight days ago: its id may have been forgotten.
        let (status, answer) = send(deliver(sign(secret, &body), "s-old", "2026-01-01T00:00:00Z")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(runs(&h).await, before);
        let (status, answer) = send(deliver(sign(secret, &body), "s-1", &fresh)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        let (status, answer) = send(deliver(sign(secret, &body), "s-1", &fresh)).await;
        assert_eq!((status, answer["status"].clone()), (StatusCode::OK, json!("duplicate")));
        assert_eq!(runs(&h).await, before + 1);
    }
}

api_test! {
    async fn mercadolibre_hints_are_answered_within_500_ms_and_queue_a_fetch(h) {
        let id = create(&h, json!({
            "name": "Meli",
            "platform": "mercadolibre",
            "platform_settings": {"site_id": "MLA", "user_id": 4242, "client_id": "5566", "base_url": "http://127.0.0.1:9"},
            "credentials": {"client_secret": "meli-client-secret-1", "access_token": "APP_USR-token-1", "refresh_token": "TG-refresh-1"},
        })).await;
        let url = h.url(&format!("/webhooks/{id}"));
        let notification = |user: u64, resource: &str| json!({
            "_id": format!("n-{user}-{resource}"),
            "resource": resource,
            "user_id": user,
            "topic": "items",
            "application_id": 5566,
            "attempts": 1,
            "sent": "2026-12-08T10:00:00.000Z",
            "received": "2026-12-08T10:00:00.000Z",
        });
        let before = runs(&h).await;
        let started = Instant::now();
        let (status, answer) = send(h.http.post(&url).json(&notification(4242, "/items/MLA123456"))).await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(took < Duration::from_millis(500), "answered in {took:?}");
        // The fetch is queued (at once, or just after the answer).
        let deadline = Instant::now() + Duration::from_secs(5);
        while runs(&h).await == before {
            assert!(Instant::now() < deadline, "no fetch queued for the hint");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // For another seller: refused, no work.
        let (status, _) = send(h.http.post(&url).json(&notification(9999, "/items/MLA1"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(runs(&h).await, before + 1);
    }
}
