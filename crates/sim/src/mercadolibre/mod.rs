//! MercadoLibre simulator (`reference/platforms.md` §3 and the §5 checklist).
//!
//! Serves the calls tidemark's MercadoLibre connector makes: OAuth with 6 h access tokens and
//! single-use rotating refresh tokens, `/users/me`, the seller's item search (IDs only, offset
//! paging capped at 1,000, scan mode with expiring `scroll_id`s, `seller_sku` and `status`
//! filters), multiget of at most 20 items with a per-element `code`, item reads and updates
//! with list-replace semantics for variations and pictures, item creates, picture sources
//! downloaded before a write (an unreachable one fails the whole write), picture uploads,
//! picture bytes served re-encoded (never byte-identical to what was sent), order search by
//! `order.date_last_updated.from/to` (unknown parameters ignored silently), orders, shipments,
//! a token bucket (about 5 req/s and 18k/h) answering 429 `too_many_requests`, unsigned
//! notifications and `/missed_feeds`. Admin calls under `/_sim/mercadolibre/…`. Every route,
//! limit and trap is in `crates/sim/mercadolibre.md`.

mod admin;
pub use admin::{ItemEdit, OrderEdit, PlaceOrder, Tracking};
mod api;
pub mod market;
mod notify;
pub mod pictures;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::FaultConfig;
use crate::harness::{Harness, RunningSim};
use market::{Market, RateLimit};

/// How the simulated seller account starts.
#[derive(Debug, Clone)]
pub struct MlConfig {
    pub items: u64,
    pub orders: u64,
    /// Item `i` (1-based) is built from `sample::product(seed + i)`.
    pub seed: u64,
    pub site_id: String,
    pub user_id: u64,
    pub client_id: String,
    pub client_secret: String,
    /// Valid from the start (as if the seller had already authorised the app).
    pub access_token: String,
    pub refresh_token: String,
    /// What `grant_type=authorization_code` accepts.
    pub authorization_code: String,
    /// Requests per second the token bucket refills at; `None`: no limit.
    pub rate_per_second: Option<f64>,
    /// Bucket size.
    pub rate_burst: u32,
    /// Requests per rolling hour; `None`: no hourly cap.
    pub hourly_limit: Option<u64>,
    /// A scan's `scroll_id` expires after this long without use.
    pub scroll_ttl: Duration,
    /// Access tokens live this long.
    pub token_ttl: Duration,
    /// Notifications are POSTed here (no signature, as MercadoLibre does).
    pub notification_url: Option<String>,
    pub application_id: u64,
    /// `/orders/search` refuses an `offset` above this (about 10,000 on MercadoLibre).
    pub order_offset_cap: usize,
}

impl Default for MlConfig {
    fn default() -> Self {
        Self {
            items: 100,
            orders: 20,
            seed: 0,
            site_id: "MLA".into(),
            user_id: 207_035_636,
            client_id: "5503910054141466".into(),
            client_secret: "ml_secret_test".into(),
            access_token: "APP_USR-initial".into(),
            refresh_token: "TG-initial".into(),
            authorization_code: "TG-code".into(),
            rate_per_second: Some(5.0),
            rate_burst: 10,
            hourly_limit: Some(18_000),
            scroll_ttl: Duration::from_secs(300),
            token_ttl: Duration::from_secs(6 * 3600),
            notification_url: None,
            application_id: 5_503_910_054_141_466,
            order_offset_cap: 10_000,
        }
    }
}

/// The simulator: its market, its harness (faults, counters) and its configuration.
#[derive(Debug, Clone)]
pub struct MlSim {
    pub(crate) market: Arc<Mutex<Market>>,
    pub harness: Harness,
    pub(crate) config: Arc<MlConfig>,
}

impl MlSim {
    pub fn new(config: MlConfig, faults: FaultConfig) -> Self {
        let mut market = Market::new(&config);
        for i in 1..=config.items {
            market.seed_item(config.seed.wrapping_add(i), i);
        }
        for j in 0..config.orders {
            market.seed_order(j);
        }
        Self {
            market: Arc::new(Mutex::new(market)),
            harness: Harness::new(faults, Arc::new(too_many_requests)),
            config: Arc::new(config),
        }
    }

    /// Platform routes (faulted, counted, rate limited) plus the picture CDN (none of those)
    /// and the shared and MercadoLibre admin routes.
    pub fn router(&self) -> Router {
        self.harness
            .wrap(api::routes(self.clone()))
            .merge(api::cdn_routes(self.clone()))
            .merge(admin::routes(self.clone()))
    }

    /// Serves on a free loopback port.
    pub async fn serve(&self) -> std::io::Result<RunningSim> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        RunningSim::serve(addr, self.router()).await
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Market> {
        self.market
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the token bucket (requests per second, bucket size, hourly cap).
    pub fn set_rate_limit(&self, per_second: Option<f64>, burst: u32, hourly: Option<u64>) {
        self.lock().rate = RateLimit::new(per_second, burst, hourly);
    }

    /// Makes scan page `page` (0-based) of every scroll hold only `size` ids (the others follow
    /// on later pages), as MercadoLibre's search sometimes does; `None` turns it off.
    pub fn set_short_scan_page(&self, short: Option<(usize, usize)>) {
        self.lock().short_scan_page = short;
    }

    /// The next `count` item creates are applied, then answered 502 `bad_gateway` (the caller
    /// cannot tell whether the item exists).
    pub fn lose_create_answers(&self, count: u32) {
        self.lock().lose_create_answers = count;
    }

    /// The next `count` item updates (`PUT /items/{id}`) are applied, then answered 502
    /// `bad_gateway` (the caller cannot tell whether they happened).
    pub fn lose_update_answers(&self, count: u32) {
        self.lock().lose_update_answers = count;
    }

    /// Every item id, in creation order.
    pub fn item_ids(&self) -> Vec<String> {
        self.lock().items.keys().cloned().collect()
    }

    /// An item as `GET /items/{id}` renders it.
    pub fn item_json(&self, base: &str, id: &str) -> Option<Value> {
        let market = self.lock();
        market
            .items
            .get(id)
            .map(|item| market.render_item(base, item))
    }

    /// The refresh token that works now (only the newest does).
    pub fn current_refresh_token(&self) -> String {
        self.lock().refresh_token.clone()
    }

    /// Expires every access token at once (as 6 h passing would).
    pub fn expire_access_tokens(&self) {
        self.lock().access_tokens.clear();
    }

    /// How many refresh grants succeeded.
    pub fn refreshes(&self) -> u64 {
        self.lock().refreshes
    }
}

/// `{"message","error","status","cause":[]}` with that HTTP status.
pub(crate) fn ml_error(status: StatusCode, error: &str, message: &str) -> Response {
    ml_error_with(status, error, message, Vec::new())
}

pub(crate) fn ml_error_with(
    status: StatusCode,
    error: &str,
    message: &str,
    cause: Vec<Value>,
) -> Response {
    (
        status,
        Json(json!({
            "message": message,
            "error": error,
            "status": status.as_u16(),
            "cause": cause,
        })),
    )
        .into_response()
}

/// A validation error whose one blocking cause names `code`, `references` and `message`.
pub(crate) fn validation_error(code: &str, reference: &str, message: &str) -> Response {
    ml_error_with(
        StatusCode::BAD_REQUEST,
        "validation_error",
        "Validation error",
        vec![json!({
            "department": "items",
            "cause_id": 1000,
            "type": "error",
            "code": code,
            "references": [reference],
            "message": message,
        })],
    )
}

/// MercadoLibre's 429: no `Retry-After` (none is documented).
fn too_many_requests() -> Response {
    ml_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Too Many Requests",
    )
}

/// The scheme and host the client used, for absolute URLs in answers.
pub(crate) fn base_of(headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}
