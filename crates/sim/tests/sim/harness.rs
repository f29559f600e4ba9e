//! The shared harness over real HTTP: faults that answer before handling apply nothing, faults
//! after handling apply the write and lose or cut the answer, and the counters see it all.

// A test that cannot set up its loopback server should fail loudly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use tidemark_sim::{FaultConfig, Harness, RunningSim};

async fn start(applied: Arc<AtomicU64>) -> (RunningSim, Harness) {
    let harness = Harness::new(FaultConfig::none(), Harness::plain_429());
    let routes = Router::new()
        .route(
            "/items",
            post(|State(applied): State<Arc<AtomicU64>>| async move {
                applied.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({ "id": 1, "title": "a long enough answer body" }))
            }),
        )
        .with_state(applied);
    let router = harness.wrap(routes);
    let sim = RunningSim::serve("127.0.0.1:0".parse().expect("loopback address"), router)
        .await
        .expect("bind loopback");
    (sim, harness)
}

fn faults(edit: impl FnOnce(&mut FaultConfig)) -> FaultConfig {
    let mut config = FaultConfig::none();
    edit(&mut config);
    config
}

#[tokio::test]
async fn faults_before_and_after_handling() {
    let applied = Arc::new(AtomicU64::new(0));
    let (sim, harness) = start(applied.clone()).await;
    let client = tidemark_sim::http_client_builder().build().unwrap();
    let url = format!("{}/items", sim.base_url);

    // No faults: handled.
    let ok = client.post(&url).send().await.expect("request");
    assert_eq!(ok.status(), 200);
    assert_eq!(applied.load(Ordering::SeqCst), 1);

    // Rate limited: answered 429 with Retry-After, nothing applied.
    let put = client
        .put(format!("{}/_sim/faults", sim.base_url))
        .json(&faults(|f| f.rate_limit = 1.0))
        .send()
        .await
        .expect("admin call");
    assert_eq!(put.status(), 200);
    let limited = client.post(&url).send().await.expect("request");
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");
    assert_eq!(applied.load(Ordering::SeqCst), 1);

    // Server error: nothing applied.
    harness.faults.set(faults(|f| f.server_error = 1.0));
    let failed = client.post(&url).send().await.expect("request");
    assert!(failed.status().is_server_error());
    assert_eq!(applied.load(Ordering::SeqCst), 1);

    // Truncated: applied, and the body is cut so it no longer parses.
    harness.faults.set(faults(|f| f.truncated = 1.0));
    let cut = client.post(&url).send().await.expect("request");
    let text = cut.text().await.expect("body");
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err(),
        "{text}"
    );
    assert_eq!(applied.load(Ordering::SeqCst), 2);

    // Timeout after apply: the client gives up, yet the write happened.
    harness.faults.set(faults(|f| {
        f.timeout = 1.0;
        f.timeout_hold_ms = 600;
    }));
    let impatient = tidemark_sim::http_client_builder()
        .timeout(Duration::from_millis(150))
        .build()
        .expect("client");
    let lost = impatient.post(&url).send().await;
    assert!(lost.is_err_and(|e| e.is_timeout()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(applied.load(Ordering::SeqCst), 3);

    // Bad fault settings are refused by the admin call.
    let refused = client
        .put(format!("{}/_sim/faults", sim.base_url))
        .json(&faults(|f| f.slow = 1.5))
        .send()
        .await
        .expect("admin call");
    assert_eq!(refused.status(), 422);

    let stats: serde_json::Value = client
        .get(format!("{}/_sim/stats", sim.base_url))
        .send()
        .await
        .expect("admin call")
        .json()
        .await
        .expect("stats json");
    assert_eq!(stats["requests"], 5, "{stats}");
    assert_eq!(stats["throttled"], 1, "{stats}");
    for kind in ["rate_limit", "server_error", "truncated", "timeout"] {
        assert_eq!(stats["faults"][kind], 1, "{kind}: {stats}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn concurrent_requests_are_counted() {
    let applied = Arc::new(AtomicU64::new(0));
    let (sim, harness) = start(applied.clone()).await;
    harness.faults.set(faults(|f| {
        f.slow = 1.0;
        f.slow_ms = 300;
    }));
    let client = tidemark_sim::http_client_builder().build().unwrap();
    let url = format!("{}/items", sim.base_url);
    let answers = futures::future::join_all((0..4).map(|_| client.post(url.clone()).send())).await;
    assert!(
        answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|r| r.status() == 200))
    );
    let stats = harness.stats.snapshot();
    assert_eq!(stats.max_in_flight, 4);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(applied.load(Ordering::SeqCst), 4);
    sim.stop().await;
}
