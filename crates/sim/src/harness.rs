//! What every simulator shares: fault injection and counters wrapped around its platform
//! routes, the `/_sim/faults` and `/_sim/stats` admin calls, and a loopback server runner.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::faults::{Fault, FaultConfig, Faults};
use crate::stats::{Stats, StatsSnapshot};

/// Builds the platform's own rate-limit answer (Shopify's differs from a plain 429).
pub type RateLimitAnswer = Arc<dyn Fn() -> Response + Send + Sync>;

/// Faults, counters and the platform's rate-limit answer, shared by a simulator's routes.
#[derive(Clone)]
pub struct Harness {
    pub faults: Arc<Faults>,
    pub stats: Arc<Stats>,
    rate_limit_answer: RateLimitAnswer,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("faults", &self.faults)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Bodies above this are not truncated by the fault layer but passed whole (no simulator
/// answer is near it).
const MAX_FAULT_BODY: usize = 64 * 1024 * 1024;

impl Harness {
    pub fn new(faults: FaultConfig, rate_limit_answer: RateLimitAnswer) -> Self {
        Self {
            faults: Arc::new(Faults::new(faults)),
            stats: Arc::new(Stats::default()),
            rate_limit_answer,
        }
    }

    /// A plain `429 Too Many Requests` with `Retry-After: 1` and a JSON body.
    pub fn plain_429() -> RateLimitAnswer {
        Arc::new(|| {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                Json(serde_json::json!({
                    "code": "too_many_requests",
                    "message": "Too many requests, retry later",
                    "status": 429
                })),
            )
                .into_response()
        })
    }

    pub fn rate_limited(&self) -> Response {
        self.stats.record_throttled();
        (self.rate_limit_answer)()
    }

    /// Wraps platform routes with counting and fault injection, and adds the shared admin
    /// routes (which are never faulted).
    pub fn wrap(&self, platform_routes: Router) -> Router {
        let faulted =
            platform_routes.layer(axum::middleware::from_fn_with_state(self.clone(), inject));
        let admin = Router::new()
            .route("/_sim/faults", get(get_faults).put(put_faults))
            .route("/_sim/stats", get(get_stats))
            .with_state(self.clone());
        faulted.merge(admin)
    }
}

async fn inject(State(harness): State<Harness>, request: Request, next: Next) -> Response {
    let _in_flight = harness.stats.begin_request();
    let Some(fault) = harness.faults.draw() else {
        return next.run(request).await;
    };
    harness.stats.record_fault(fault.name());
    match fault {
        Fault::RateLimit => harness.rate_limited(),
        Fault::ServerError { status } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(serde_json::json!({ "error": "simulated server error" })),
        )
            .into_response(),
        Fault::Slow { delay } => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Fault::TimeoutAfterApply { hold } => {
            // The write happens; the client waits past its timeout and never learns of it.
            let _applied = next.run(request).await;
            tokio::time::sleep(hold).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Fault::Truncated => {
            let response = next.run(request).await;
            let (mut parts, body) = response.into_parts();
            match axum::body::to_bytes(body, MAX_FAULT_BODY).await {
                Ok(bytes) => {
                    parts.headers.remove(header::CONTENT_LENGTH);
                    let cut = bytes.slice(..bytes.len() / 2);
                    Response::from_parts(parts, Body::from(cut))
                }
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    }
}

async fn get_faults(State(harness): State<Harness>) -> Json<FaultConfig> {
    Json(harness.faults.config())
}

async fn put_faults(State(harness): State<Harness>, Json(config): Json<FaultConfig>) -> Response {
    match config.validate() {
        Ok(()) => {
            harness.faults.set(config.clone());
            Json(config).into_response()
        }
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "error": message })),
        )
            .into_response(),
    }
}

async fn get_stats(State(harness): State<Harness>) -> Json<StatsSnapshot> {
    Json(harness.stats.snapshot())
}

/// A simulator serving on loopback until stopped (or dropped).
#[derive(Debug)]
pub struct RunningSim {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningSim {
    /// Serves `router` on `addr` (port 0 picks a free port).
    pub async fn serve(addr: SocketAddr, router: Router) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "simulator server stopped with an error");
            }
        });
        Ok(Self {
            addr,
            base_url: format!("http://{addr}"),
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Stops accepting, lets answers in progress finish, and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
