//! The shared HTTP client against wiremock: retries, Retry-After, idempotency, pacing, body
//! caps and redaction. Timing tests use real time with small numbers (reqwest does real I/O,
//! which tokio's paused clock would race).

// Helpers outside #[test] functions panic on broken fixtures too: that is the point.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http::header::HeaderName;
use serde_json::json;
use tidemark_connector::ConnectorError;
use tidemark_connector::http::{
    ApiRequest, HttpClient, HttpClientConfig, Idempotency, MAX_RETRY_AFTER, Rate, RetryPolicy,
};
use tidemark_core::PlatformKind;
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn config(server: &MockServer) -> HttpClientConfig {
    let mut config = HttpClientConfig::new(
        PlatformKind::Woocommerce,
        Url::parse(&format!("{}/wp-json/wc/v3/", server.uri())).unwrap(),
    );
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    };
    config.total_timeout = Duration::from_secs(5);
    config
}

fn client(server: &MockServer) -> HttpClient {
    HttpClient::new(config(server)).unwrap()
}

async fn requests_seen(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::test]
async fn retry_after_delta_seconds_is_waited_out_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/products"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/products"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 794}])))
        .mount(&server)
        .await;

    let start = Instant::now();
    let body: serde_json::Value = client(&server)
        .send_json(ApiRequest::get("products"))
        .await
        .unwrap();
    let elapsed = start.elapsed();

    assert_eq!(body[0]["id"], 794);
    assert!(elapsed >= Duration::from_secs(1), "waited only {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "waited {elapsed:?}");
    assert_eq!(requests_seen(&server).await, 2);
}

#[tokio::test]
async fn retry_after_http_date_is_waited_out() {
    let server = MockServer::start().await;
    // HTTP dates have whole seconds: 2 s ahead is at least 1 s ahead once truncated.
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", at.as_str()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&server)
        .await;

    let start = Instant::now();
    client(&server)
        .send(ApiRequest::get("orders"))
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_secs(1), "waited only {elapsed:?}");
    assert_eq!(requests_seen(&server).await, 2);
}

#[tokio::test]
async fn retry_after_longer_than_the_cap_goes_back_to_the_caller() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3600")
                .set_body_json(json!({"message":"Too Many Requests","error":"too_many_requests","status":429,"cause":[]})),
        )
        .mount(&server)
        .await;

    let start = Instant::now();
    let err = client(&server)
        .send(ApiRequest::get("products"))
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(err.retry_hint(), Some(Duration::from_secs(3600)));
    assert!(matches!(err, ConnectorError::RateLimited { .. }), "{err}");
    assert!(err.to_string().contains("Too Many Requests"), "{err}");
    assert_eq!(requests_seen(&server).await, 1);
}

#[tokio::test]
async fn rate_limit_without_hint_surfaces_after_the_limit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429))
        .mount(&server)
        .await;
    let err = client(&server)
        .send(ApiRequest::get("products"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectorError::RateLimited {
                retry_after: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(requests_seen(&server).await, 3);
}

#[tokio::test]
async fn server_errors_are_retried_then_surface_as_transient() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .mount(&server)
        .await;

    let err = client(&server)
        .send(ApiRequest::get("products").query("page", 2))
        .await
        .unwrap_err();
    match &err {
        ConnectorError::Transient {
            message,
            maybe_applied: false,
            retry_after: None,
        } => {
            assert!(
                message.contains("woocommerce GET /wp-json/wc/v3/products answered 502"),
                "{message}"
            );
            assert!(message.contains("Bad Gateway"), "{message}");
        }
        other => panic!("expected Transient, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(requests_seen(&server).await, 3, "max_attempts is 3");
}

#[tokio::test]
async fn client_errors_are_not_retried_and_mapped() {
    let cases: Vec<(u16, serde_json::Value, &str)> = vec![
        (
            422,
            json!({"code":"rest_invalid_param","message":"Invalid parameter(s): per_page","data":{"status":400,"params":{"per_page":"per_page must be between 1 (inclusive) and 100 (inclusive)"}}}),
            "rejected",
        ),
        (
            401,
            json!({"code":"woocommerce_rest_cannot_view","message":"Sorry, you cannot list resources.","data":{"status":401}}),
            "unauthorized",
        ),
        (
            403,
            json!({"message":"forbidden","error":"forbidden_error","status":403,"cause":[]}),
            "unauthorized",
        ),
        (
            404,
            json!({"code":"woocommerce_rest_product_invalid_id","message":"Invalid ID.","data":{"status":404}}),
            "not_found",
        ),
        (
            409,
            json!({"errors": {"handle": ["has already been taken"]}}),
            "rejected",
        ),
        (400, json!("not an object"), "fatal"),
        (402, json!({"errors": "Unavailable Shop"}), "fatal"),
    ];
    for (status, body, kind) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&server)
            .await;
        let err = client(&server)
            .send(ApiRequest::get("products"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "status {status}: {err}");
        assert!(!err.is_retryable());
        assert_eq!(
            requests_seen(&server).await,
            1,
            "status {status} was retried"
        );
        if status == 422 {
            match err {
                ConnectorError::Rejected {
                    code,
                    message,
                    field,
                    payload,
                    ..
                } => {
                    assert_eq!(code, "rest_invalid_param");
                    assert_eq!(message, "Invalid parameter(s): per_page");
                    assert_eq!(field.as_deref(), Some("per_page"));
                    assert_eq!(payload["data"]["status"], 400);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn rejected_batch_reads_with_its_context() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/wp-json/wc/v3/products/batch"))
        .respond_with(ResponseTemplate::new(413).set_body_json(json!({
            "code": "woocommerce_rest_request_entity_too_large",
            "message": "Unable to accept more than 100 items for this request.",
            "data": {"status": 413}
        })))
        .mount(&server)
        .await;
    let items: Vec<_> = (0..101).map(|i| json!({"id": i})).collect();
    let err = client(&server)
        .send(
            ApiRequest::post("products/batch", Idempotency::NonIdempotent)
                .json(&json!({"update": items}))
                .unwrap()
                .context("a batch of 101 items"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "woocommerce POST /wp-json/wc/v3/products/batch (a batch of 101 items) answered 413: \
         rejected [woocommerce_rest_request_entity_too_large] Unable to accept more than 100 \
         items for this request."
    );
    assert_eq!(requests_seen(&server).await, 1);
}

#[tokio::test]
async fn non_idempotent_post_is_not_retried_after_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.total_timeout = Duration::from_millis(300);
    let client = HttpClient::new(config).unwrap();

    let err = client
        .send(
            ApiRequest::post("products", Idempotency::NonIdempotent)
                .json(&json!({"name": "T-Shirt", "sku": "TSHIRT-001"}))
                .unwrap(),
        )
        .await
        .unwrap_err();
    match &err {
        ConnectorError::Transient {
            maybe_applied: true,
            message,
            ..
        } => assert!(message.contains("timed out"), "{message}"),
        other => panic!("expected Transient with maybe_applied, got {other:?}"),
    }
    assert_eq!(requests_seen(&server).await, 1, "a create was repeated");

    // The same timeout on an idempotent request is retried up to the limit.
    let err = client
        .send(ApiRequest::post("graphql.json", Idempotency::Idempotent))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectorError::Transient {
                maybe_applied: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(requests_seen(&server).await, 1 + 3);
}

#[tokio::test]
async fn non_idempotent_post_is_not_retried_after_a_server_error_but_is_after_429() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/wp-json/wc/v3/orders"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/wp-json/wc/v3/products"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/wp-json/wc/v3/products"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    let client = client(&server);

    let err = client
        .send(ApiRequest::post("orders", Idempotency::NonIdempotent))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectorError::Transient {
                maybe_applied: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(requests_seen(&server).await, 1);

    // A 429 says the platform did nothing: repeating the create is safe.
    client
        .send(ApiRequest::post("products", Idempotency::NonIdempotent))
        .await
        .unwrap();
    assert_eq!(requests_seen(&server).await, 3);
}

#[tokio::test]
async fn connection_refused_is_retried_even_for_creates() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = HttpClientConfig::new(
        PlatformKind::Woocommerce,
        Url::parse(&format!("http://{addr}/wp-json/wc/v3/")).unwrap(),
    );
    config.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(1),
    };
    let err = HttpClient::new(config)
        .unwrap()
        .send(
            ApiRequest::post("products", Idempotency::NonIdempotent)
                .query("consumer_secret", "cs_do_not_log_me"),
        )
        .await
        .unwrap_err();
    match &err {
        ConnectorError::Transient {
            maybe_applied: false,
            message,
            ..
        } => {
            assert!(message.contains("could not connect"), "{message}");
            assert!(!message.contains("cs_do_not_log_me"), "{message}");
        }
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[tokio::test]
async fn pacing_spreads_requests_at_the_configured_rate() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.rate = Some(Rate::per_second(10.0));
    let client = HttpClient::new(config).unwrap();

    // 8 requests at 10/s, sent concurrently: the first goes at once, the rest 100 ms apart.
    let start = Instant::now();
    let calls = (0..8).map(|_| client.send(ApiRequest::get("products")));
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(650),
        "too fast: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "too slow: {elapsed:?}"
    );
    assert_eq!(requests_seen(&server).await, 8);
}

#[tokio::test]
async fn a_429_pauses_the_whole_connection() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/products"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&server)
        .await;
    let client = client(&server);

    let start = Instant::now();
    let first = client.send(ApiRequest::get("products"));
    // A request to another endpoint of the same connection, sent while the first waits out
    // its Retry-After, waits too rather than adding to the platform's load.
    let second = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        client
            .send(ApiRequest::get("orders"))
            .await
            .map(|_| start.elapsed())
    };
    let (first, second) = tokio::join!(first, second);
    first.unwrap();
    let second_done = second.unwrap();
    assert!(second_done >= Duration::from_millis(950), "{second_done:?}");
}

#[tokio::test]
async fn oversized_bodies_are_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(4096)))
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.max_body_bytes = 1024;
    let client = HttpClient::new(config).unwrap();

    let err = client.send(ApiRequest::get("products")).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Fatal { .. }), "{err:?}");
    assert!(err.to_string().contains("1024-byte limit"), "{err}");
    assert_eq!(
        requests_seen(&server).await,
        1,
        "an oversized body is not retried"
    );

    // A request may raise its own cap (a bulk result file).
    let ok = client
        .send(ApiRequest::get("products").max_body_bytes(8192))
        .await
        .unwrap();
    assert_eq!(ok.body.len(), 4096);
}

#[tokio::test]
async fn oversized_chunked_bodies_are_cut_off_while_streaming() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    // No Content-Length: the cap must hold while reading, not only up front.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await.unwrap();
        socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        let chunk = vec![b'x'; 512];
        // Up to 64 KiB, far past the 2 KiB cap; stops early once the client hangs up.
        for _ in 0..128 {
            let head = format!("{:x}\r\n", chunk.len());
            if socket.write_all(head.as_bytes()).await.is_err()
                || socket.write_all(&chunk).await.is_err()
                || socket.write_all(b"\r\n").await.is_err()
            {
                return;
            }
        }
        let _ = socket.write_all(b"0\r\n\r\n").await;
    });

    let mut config = HttpClientConfig::new(
        PlatformKind::Shopify,
        Url::parse(&format!("http://{addr}/")).unwrap(),
    );
    config.max_body_bytes = 2048;
    config.retry = RetryPolicy::never();
    let err = HttpClient::new(config)
        .unwrap()
        .send(ApiRequest::get("bulk.jsonl"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("2048-byte limit"), "{err}");
    server.abort();
}

#[tokio::test]
async fn inspector_turns_a_200_throttled_answer_into_a_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {"requestedQueryCost": 70, "actualQueryCost": null,
                "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 66, "restoreRate": 50.0}}}
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"shop": {"name": "x"}}})),
        )
        .mount(&server)
        .await;

    let request = ApiRequest::post("graphql.json", Idempotency::Idempotent)
        .json(&json!({"query": "{ shop { name } }"}))
        .unwrap()
        .cost(70)
        .inspect(|answer| {
            let body: serde_json::Value = answer.json()?;
            let throttled = body["errors"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["extensions"]["code"] == "THROTTLED"));
            if throttled {
                // (70 - 66) / 50 points per second
                return Err(ConnectorError::rate_limited(
                    Some(Duration::from_millis(80)),
                    "THROTTLED",
                ));
            }
            Ok(())
        });
    let start = Instant::now();
    let answer = client(&server).send(request).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(80));
    assert_eq!(
        answer.json::<serde_json::Value>().unwrap()["data"]["shop"]["name"],
        "x"
    );
    assert_eq!(requests_seen(&server).await, 2);
}

#[tokio::test]
async fn auth_headers_do_not_follow_absolute_urls_to_other_hosts() {
    let platform = MockServer::start().await;
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&platform)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&storage)
        .await;
    let config = config(&platform)
        .secret_header(
            HeaderName::from_static("x-shopify-access-token"),
            "shpat_0123456789",
        )
        .unwrap();
    let client = HttpClient::new(config).unwrap();

    client.send(ApiRequest::get("products")).await.unwrap();
    client
        .send(ApiRequest::get(format!(
            "{}/bulk/result.jsonl",
            storage.uri()
        )))
        .await
        .unwrap();

    let to_platform = platform.received_requests().await.unwrap();
    assert_eq!(
        to_platform[0]
            .headers
            .get("x-shopify-access-token")
            .unwrap(),
        "shpat_0123456789"
    );
    let to_storage = storage.received_requests().await.unwrap();
    assert!(
        to_storage[0]
            .headers
            .get("x-shopify-access-token")
            .is_none()
    );
}

/// Collects everything `tracing` writes while a test runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn secrets_are_redacted_from_errors_and_logs() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    // A platform that echoes credentials back in its error answers.
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/products"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "code": "woocommerce_rest_authentication_error",
            "message": "Invalid signature for consumer_secret=cs_secret_value_42 and token shpat_token_value_42",
            "data": {"status": 401}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/orders"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "code": "bad", "message": "Bearer bearer_value_42 rejected",
            "data": {"echo": "cs_secret_value_42"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/coupons"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops cs_secret_value_42"))
        .mount(&server)
        .await;

    let mut config = config(&server)
        .secret_header(
            HeaderName::from_static("x-shopify-access-token"),
            "shpat_token_value_42",
        )
        .unwrap();
    config.redactor.add_secret("cs_secret_value_42");
    let client = HttpClient::new(config).unwrap();

    let mut messages = Vec::new();
    let err = client
        .send(ApiRequest::get("products").query("consumer_secret", "cs_secret_value_42"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::Unauthorized { .. }),
        "{err:?}"
    );
    messages.push(format!("{err} {err:?}"));
    let err = client
        .send(
            ApiRequest::get("orders")
                .bearer_auth("bearer_value_42")
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Rejected { .. }), "{err:?}");
    messages.push(format!("{err} {err:?}"));
    let err = client.send(ApiRequest::get("coupons")).await.unwrap_err();
    messages.push(format!("{err} {err:?}"));

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("retrying"),
        "expected retry logs, got:\n{logged}"
    );
    // Span fields name the call without its query string.
    for field in [
        "platform=woocommerce",
        "method=GET",
        "path=/wp-json/wc/v3/coupons",
        "status=500",
        "attempt=2",
    ] {
        assert!(logged.contains(field), "no {field} in:\n{logged}");
    }
    for text in messages.iter().chain(std::iter::once(&logged)) {
        for secret in [
            "cs_secret_value_42",
            "shpat_token_value_42",
            "bearer_value_42",
        ] {
            assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
        }
    }
    assert!(messages[0].contains("[REDACTED]"), "{}", messages[0]);
    let _ = std::io::stderr().flush();
}

/// A server that answers every connection with `answer`, raw, then hangs up; counts requests.
async fn raw_server(answer: &'static [u8]) -> (Url, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut request = [0u8; 8192];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(answer).await;
            let _ = socket.shutdown().await;
        }
    });
    (Url::parse(&format!("http://{addr}/")).unwrap(), seen)
}

fn assert_maybe_applied(err: &ConnectorError, says: &str) {
    match err {
        ConnectorError::Transient {
            maybe_applied: true,
            message,
            ..
        } => assert!(message.contains(says), "{message}"),
        other => panic!("expected Transient with maybe_applied, got {other:?}"),
    }
    assert!(err.to_string().contains("may have been applied"), "{err}");
}

#[tokio::test]
async fn an_oversized_answer_to_a_create_is_maybe_applied_not_fatal() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string("x".repeat(4096)))
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.max_body_bytes = 1024;
    let client = HttpClient::new(config).unwrap();

    let err = client
        .send(
            ApiRequest::post("products", Idempotency::NonIdempotent)
                .json(&json!({"name": "T-Shirt", "sku": "TSHIRT-001"}))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_maybe_applied(&err, "1024-byte limit");
    assert_eq!(requests_seen(&server).await, 1, "a create was repeated");

    // The same answer to an idempotent request stays Fatal: asking again gets it again.
    let err = client
        .send(ApiRequest::post("graphql.json", Idempotency::Idempotent))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Fatal { .. }), "{err:?}");
    assert_eq!(requests_seen(&server).await, 2);
}

#[tokio::test]
async fn an_oversized_chunked_answer_to_a_create_is_maybe_applied() {
    // No Content-Length: the cap trips while streaming.
    static ANSWER: std::sync::LazyLock<&'static [u8]> = std::sync::LazyLock::new(|| {
        let mut answer =
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        for _ in 0..16 {
            answer.extend_from_slice(b"200\r\n");
            answer.extend_from_slice(&[b'x'; 512]);
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"0\r\n\r\n");
        answer.leak()
    });
    let (base, seen) = raw_server(*ANSWER).await;
    let mut config = HttpClientConfig::new(PlatformKind::Woocommerce, base);
    config.max_body_bytes = 2048;
    let err = HttpClient::new(config)
        .unwrap()
        .send(ApiRequest::post(
            "products/batch",
            Idempotency::NonIdempotent,
        ))
        .await
        .unwrap_err();
    assert_maybe_applied(&err, "2048-byte limit");
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_cut_off_answer_to_a_create_is_maybe_applied_and_not_repeated() {
    // Promises 1000 bytes, sends 12 and hangs up.
    let (base, seen) = raw_server(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\": 794,",
    )
    .await;
    let mut config = HttpClientConfig::new(PlatformKind::Woocommerce, base);
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    };
    let client = HttpClient::new(config).unwrap();
    let err = client
        .send(ApiRequest::post("products", Idempotency::NonIdempotent))
        .await
        .unwrap_err();
    assert_maybe_applied(&err, "failed");
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A read is simply retried.
    let err = client.send(ApiRequest::get("products")).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectorError::Transient {
                maybe_applied: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1 + 3);
}

#[tokio::test]
async fn an_undecodable_answer_to_a_create_is_maybe_applied() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string("<html>Created</html>"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
        .mount(&server)
        .await;
    let client = client(&server);

    let err = client
        .send_json::<serde_json::Value>(ApiRequest::post("products", Idempotency::NonIdempotent))
        .await
        .unwrap_err();
    assert_maybe_applied(&err, "not the expected JSON");
    assert_eq!(requests_seen(&server).await, 1);

    let err = client
        .send_json::<serde_json::Value>(ApiRequest::get("products"))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Fatal { .. }), "{err:?}");
}

#[tokio::test]
async fn a_transient_verdict_on_a_2xx_write_is_maybe_applied() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "errors": [{"message": "Internal error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]
        })))
        .mount(&server)
        .await;
    let err = client(&server)
        .send(
            ApiRequest::post("graphql.json", Idempotency::NonIdempotent)
                .inspect(|_| Err(ConnectorError::transient("INTERNAL_SERVER_ERROR"))),
        )
        .await
        .unwrap_err();
    assert_maybe_applied(&err, "INTERNAL_SERVER_ERROR");
    assert_eq!(requests_seen(&server).await, 1);
}

#[tokio::test]
async fn retry_after_on_a_503_longer_than_the_cap_stays_on_the_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "3600"))
        .mount(&server)
        .await;
    let start = Instant::now();
    let err = client(&server)
        .send(ApiRequest::get("products"))
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(
            err,
            ConnectorError::Transient {
                maybe_applied: false,
                retry_after: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.retry_hint(), Some(Duration::from_secs(3600)));
    assert_eq!(requests_seen(&server).await, 1);
}

#[tokio::test]
async fn retry_after_on_a_5xx_to_a_create_is_kept_though_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "2"))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(408).insert_header("Retry-After", "7200"))
        .mount(&server)
        .await;
    let client = client(&server);

    let err = client
        .send(ApiRequest::post("products", Idempotency::NonIdempotent))
        .await
        .unwrap_err();
    assert!(err.is_maybe_applied(), "{err:?}");
    assert_eq!(err.retry_hint(), Some(Duration::from_secs(2)));
    assert_eq!(requests_seen(&server).await, 1);

    let err = client
        .send(ApiRequest::put("products/794"))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Transient { .. }), "{err:?}");
    assert_eq!(err.retry_hint(), Some(Duration::from_secs(7200)));
    assert_eq!(requests_seen(&server).await, 2);
}

#[tokio::test]
async fn retry_after_on_a_503_is_waited_out_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let start = Instant::now();
    client(&server)
        .send(ApiRequest::get("products"))
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(requests_seen(&server).await, 2);
}

#[tokio::test]
async fn absurd_retry_after_values_are_clamped_not_panicking() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/products"))
        .respond_with(
            ResponseTemplate::new(429).insert_header("Retry-After", "18446744073709551615"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/orders"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "1e308"))
        .mount(&server)
        .await;
    let client = client(&server);
    let err = client.send(ApiRequest::get("products")).await.unwrap_err();
    assert_eq!(err.retry_hint(), Some(MAX_RETRY_AFTER));
    let err = client.send(ApiRequest::get("orders")).await.unwrap_err();
    assert_eq!(err.retry_hint(), Some(MAX_RETRY_AFTER));
    assert!(SystemTime::now().checked_add(MAX_RETRY_AFTER).is_some());
}

#[tokio::test]
async fn debug_of_a_configured_client_shows_no_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("set-cookie", "session=cookie_value_42")
                .set_body_json(json!({"access_token": "APP_USR-new_token_42"})),
        )
        .mount(&server)
        .await;
    let mut config = HttpClientConfig::new(
        PlatformKind::Woocommerce,
        Url::parse(&format!(
            "http://ck_user_value_42:cs_pass_value_42@{}/wp-json/wc/v3/",
            server.address()
        ))
        .unwrap(),
    )
    .secret_header(
        HeaderName::from_static("x-shopify-access-token"),
        "shpat_token_value_42",
    )
    .unwrap()
    .secret_header(
        http::header::AUTHORIZATION,
        "Basic Y2tfdmFsdWVfNDI6Y3NfdmFsdWVfNDI=",
    )
    .unwrap();
    config.redactor.add_secret("cs_secret_value_42");
    config.redactor.add_secret("cs_pass_value_42");
    config.rate = Some(Rate::per_second(5.0));
    // A header inserted by hand, not marked sensitive, is still not shown.
    config.default_headers.insert(
        HeaderName::from_static("x-api-key"),
        http::HeaderValue::from_static("plain_key_value_42"),
    );
    let client = HttpClient::new(config.clone()).unwrap();

    let request = ApiRequest::post(
        "https://auth.example/oauth/token?client_secret=client_secret_value_42",
        Idempotency::NonIdempotent,
    )
    .bearer_auth("bearer_value_42")
    .unwrap()
    .form(&[("refresh_token", "refresh_value_42")]);
    let answer = client
        .send(ApiRequest::post("token", Idempotency::NonIdempotent))
        .await
        .unwrap();

    let text = format!(
        "{config:?}\n{config:#?}\n{client:?}\n{client:#?}\n{request:?}\n{answer:?}\n{:?}",
        config.redactor
    );
    for secret in [
        "shpat_token_value_42",
        "Y2tfdmFsdWVfNDI6Y3NfdmFsdWVfNDI=",
        "cs_secret_value_42",
        "cs_pass_value_42",
        "plain_key_value_42",
        "bearer_value_42",
        "client_secret_value_42",
        "refresh_value_42",
        "cookie_value_42",
        "new_token_42",
    ] {
        assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
    }
    // What is shown is still useful.
    for shown in [
        "x-shopify-access-token",
        "authorization",
        "secrets: 4",
        "woocommerce",
        "body_bytes",
    ] {
        assert!(text.contains(shown), "no {shown} in:\n{text}");
    }
}

#[test]
fn an_invalid_configured_rate_is_refused() {
    let mut config = HttpClientConfig::new(
        PlatformKind::Mercadolibre,
        Url::parse("https://api.mercadolibre.com/").unwrap(),
    );
    for bad in [0.0, -5.0, f64::NAN, f64::INFINITY] {
        config.rate = Some(Rate::per_second(bad));
        let err = HttpClient::new(config.clone()).unwrap_err();
        assert!(matches!(err, ConnectorError::Fatal { .. }), "{err:?}");
    }
    config.rate = Some(Rate::per_second(1e-300));
    HttpClient::new(config).unwrap();
}
