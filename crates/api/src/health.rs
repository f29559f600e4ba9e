//! `/healthz` (the process answers) and `/readyz` (its store and queue answer).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::Api;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "ok", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// "ok" or what failed.
    pub store: String,
    pub queue: String,
}

/// Ready when the store and the queue both answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Store and queue answer", body = Readiness),
        (status = 503, description = "One of them does not", body = Readiness),
    ))]
pub async fn readyz(State(api): State<Api>) -> (StatusCode, Json<Readiness>) {
    let store = api.store().ping().await.map_err(|e| e.to_string());
    let queue = api.jobs().queue().ping().await.map_err(|e| e.to_string());
    let ready = store.is_ok() && queue.is_ok();
    let text = |r: Result<(), String>| r.map(|_| "ok".to_owned()).unwrap_or_else(|e| e);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            store: text(store),
            queue: text(queue),
        }),
    )
}
