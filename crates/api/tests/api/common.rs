//! The API tests' set-up: the whole HTTP application on a loopback port over a fresh store and
//! queue (SQLite for both; PostgreSQL with Redis as well when `TIDEMARK_TEST_DATABASE_URL` and
//! `TIDEMARK_TEST_REDIS_URL` are set), two accounts with a token each, and every log line of
//! the test binary captured so a test can look for secrets in it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidemark_api::{Api, ApiConfig};
use tidemark_connector::sealing::SecretKey;
use tidemark_core::Timestamp;
use tidemark_engine::SystemClock;
use tidemark_jobs::{Jobs, JobsConfig, Queue, QueueSpec, RegistryConnectors, builtin_registry};
use tidemark_store::{Account, Store};

pub const REDIS_URL_VAR: &str = "TIDEMARK_TEST_REDIS_URL";

pub fn now() -> Timestamp {
    Timestamp::from_datetime(time::OffsetDateTime::now_utc())
}

/// Everything the test binary logged (every crate, debug level and up).
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (once per binary).
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buffer.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
        buffer
    });
}

/// What has been logged so far, as text.
pub fn logs() -> String {
    LOGS.get()
        .map(|b| String::from_utf8_lossy(&b.lock().unwrap_or_else(|p| p.into_inner())).into_owned())
        .unwrap_or_default()
}

/// The application on a loopback port, with two accounts.
pub struct Harness {
    pub url: String,
    pub http: reqwest::Client,
    pub store: Store,
    pub jobs: Jobs,
    pub api: Api,
    pub key: Arc<SecretKey>,
    pub alice: Account,
    pub alice_token: String,
    pub bob: Account,
    pub bob_token: String,
    pub backend: &'static str,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn test_jobs_config(queue_name: &str) -> JobsConfig {
    JobsConfig {
        concurrency: 2,
        poll_interval: Duration::from_millis(20),
        lease_ttl: Duration::from_secs(3),
        heartbeat: Duration::from_millis(500),
        scheduler_tick: Duration::from_millis(200),
        reconcile_interval: Duration::from_millis(300),
        requeue_grace: Duration::from_secs(1),
        max_attempts: 3,
        retry_base: Duration::from_millis(300),
        retry_max: Duration::from_secs(2),
        busy_delay: Duration::from_millis(300),
        queue_name: queue_name.to_owned(),
        ..JobsConfig::default()
    }
}

impl Harness {
    pub async fn start(
        store: Store,
        queue: QueueSpec,
        queue_name: &str,
        backend: &'static str,
    ) -> Self {
        Self::start_with(
            store,
            queue,
            queue_name,
            backend,
            ApiConfig {
                events_interval: Duration::from_millis(100),
                ..ApiConfig::default()
            },
        )
        .await
    }

    pub async fn start_with(
        store: Store,
        queue: QueueSpec,
        queue_name: &str,
        backend: &'static str,
        config: ApiConfig,
    ) -> Self {
        capture_logs();
        let jobs_config = test_jobs_config(queue_name);
        let queue = Queue::connect(&queue, queue_name, Duration::from_secs(2))
            .await
            .expect("connect the queue");
        let jobs = Jobs::new(store.clone(), queue, jobs_config, Arc::new(SystemClock));
        let key = Arc::new(SecretKey::from_bytes(rand::random()));
        let connectors = Arc::new(RegistryConnectors::new(
            builtin_registry(),
            store.clone(),
            key.clone(),
        ));
        let api = Api::new(
            jobs.clone(),
            connectors,
            builtin_registry(),
            key.clone(),
            None,
            config,
        );
        let router = tidemark_api::app(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let alice = store.create_account("alice", now()).await.unwrap();
        let bob = store.create_account("bob", now()).await.unwrap();
        let alice_token = store
            .create_api_token(alice.id, "test", now())
            .await
            .unwrap()
            .plaintext;
        let bob_token = store
            .create_api_token(bob.id, "test", now())
            .await
            .unwrap()
            .plaintext;
        Self {
            url,
            http: tidemark_connector::http::client_builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            store,
            jobs,
            api,
            key,
            alice,
            alice_token,
            bob,
            bob_token,
            backend,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A request as alice.
    pub fn alice(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.alice_token)
    }

    /// A request as bob.
    pub fn bob(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.bob_token)
    }

    /// A WooCommerce connection of alice's, created through the API.
    pub async fn woo_connection(&self, name: &str, secret: &str) -> Value {
        let (status, body) = send(self.alice(reqwest::Method::POST, "/api/v1/connections").json(
            &json!({
                "name": name,
                "platform": "woocommerce",
                "platform_settings": {"base_url": "http://127.0.0.1:9"},
                "credentials": {"consumer_key": "ck_test", "consumer_secret": secret, "webhook_secret": secret},
                "settings": {"clone_new_products": true},
            }),
        ))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

/// Sends a request and reads its answer as JSON (`Value::Null` for an empty body, the text
/// as a string otherwise).
pub async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Asserts the error shape and returns its code.
pub fn error_code(body: &Value) -> String {
    let error = &body["error"];
    assert!(error.is_object(), "not the error shape: {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error.get("details").is_some(), "{body}");
    error["code"].as_str().expect("error.code").to_owned()
}

fn unique_queue() -> String {
    format!("tm-api-{}", hex::encode(rand::random::<[u8; 6]>()))
}

pub async fn run_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Harness) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tidemark_testkit::store::run_sqlite(move |store| async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = unique_queue();
        let harness = Harness::start(
            store,
            QueueSpec::Sqlite(dir.path().join("queue.db")),
            &name,
            "sqlite",
        )
        .await;
        body(harness).await;
        drop(dir);
    })
    .await;
}

pub async fn run_redis_postgres<F, Fut>(body: F)
where
    F: FnOnce(Harness) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Ok(url) = std::env::var(REDIS_URL_VAR) else {
        println!("skipped: {REDIS_URL_VAR} unset");
        return;
    };
    if std::env::var(tidemark_testkit::store::DATABASE_URL_VAR).is_err() {
        println!(
            "skipped: {} unset",
            tidemark_testkit::store::DATABASE_URL_VAR
        );
        return;
    }
    let name = unique_queue();
    let cleanup = (url.clone(), name.clone());
    tidemark_testkit::store::run_postgres(move |store| async move {
        let harness = Harness::start(store, QueueSpec::Redis(url), &name, "redis+postgres").await;
        body(harness).await;
    })
    .await;
    tidemark_testkit::redis_queue::delete_keys(&cleanup.0, &cleanup.1).await;
}

/// One body, two tests: `<name>::sqlite` and `<name>::redis_postgres`.
#[macro_export]
macro_rules! api_test {
    ($(#[$meta:meta])* async fn $name:ident($h:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($h: $crate::common::Harness) $body

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run_sqlite(body).await;
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis_postgres() {
                $crate::common::run_redis_postgres(body).await;
            }
        }
    };
}

/// A request announcing a body of `length` bytes: above the limit it is answered 413 from its headers, before
/// the body is read (written over a raw socket so no client race hides the answer).
pub async fn oversized(
    h: &Harness,
    method: &reqwest::Method,
    path: &str,
    token: Option<&str>,
    length: usize,
) -> (StatusCode, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = h.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // The body may be chunked: take the JSON object inside.
    let json = body
        .find('{')
        .and_then(|a| body.rfind('}').map(|b| &body[a..=b]))
        .unwrap_or("null");
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        serde_json::from_str(json).unwrap_or(Value::String(body.to_owned())),
    )
}
