//! Shopify Admin GraphQL simulator (`reference/platforms.md` §1 and the §5 checklist).
//!
//! Serves `POST /admin/api/{version}/graphql.json` with `X-Shopify-Access-Token` auth. It runs
//! the GraphQL documents the connector sends against an in-memory shop: a generic executor
//! (`graphql`) picks the requested fields over JSON nodes and pages connections, root fields
//! and mutations are resolved by name (`api`). Calculated query cost with a leaky bucket per
//! token, THROTTLED as HTTP 200, `extensions.cost` on every answer. Admin calls under
//! `/_sim/shopify/…` (`admin`). Every route, limit and trap is in `crates/sim/shopify.md`.

mod admin;
mod api;
mod bulk;
pub mod graphql;
pub mod shop;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::response::IntoResponse;
use serde_json::json;

use crate::faults::FaultConfig;
use crate::harness::{Harness, RunningSim};
use shop::Shop;

/// How the simulated shop starts.
#[derive(Debug, Clone)]
pub struct ShopifyConfig {
    pub products: u64,
    pub orders: u64,
    /// Product `i` (1-based) is `sample::product(seed + i)`.
    pub seed: u64,
    pub access_token: String,
    /// The version answered in `X-Shopify-API-Version`.
    pub api_version: String,
    /// Leaky bucket size (`maximumAvailable`).
    pub bucket_max: f64,
    /// Points restored per second (`restoreRate`).
    pub restore_rate: f64,
    pub webhook_url: Option<String>,
    pub webhook_secret: String,
    /// How long media added by `productSet` stay PROCESSING (`image: null`) before READY.
    pub media_processing_ms: u64,
}

impl Default for ShopifyConfig {
    fn default() -> Self {
        Self {
            products: 100,
            orders: 20,
            seed: 0,
            access_token: "shpat_test".into(),
            api_version: "2025-01".into(),
            bucket_max: 2000.0,
            restore_rate: 100.0,
            webhook_url: None,
            webhook_secret: "whsec_test".into(),
            media_processing_ms: 200,
        }
    }
}

/// The leaky bucket of calculated query cost (one token: the simulator has one).
#[derive(Debug)]
pub struct Bucket {
    pub max: f64,
    pub restore: f64,
    available: f64,
    at: Instant,
}

impl Bucket {
    fn new(max: f64, restore: f64) -> Self {
        Self {
            max,
            restore,
            available: max,
            at: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.at).as_secs_f64();
        self.available = (self.available + dt * self.restore).min(self.max);
        self.at = now;
    }

    /// Debits `cost` if the bucket covers it.
    pub fn try_debit(&mut self, cost: f64) -> bool {
        self.refill();
        if cost > self.available {
            return false;
        }
        self.available -= cost;
        true
    }

    pub fn refund(&mut self, points: f64) {
        self.refill();
        self.available = (self.available + points).min(self.max);
    }

    pub fn status(&mut self) -> serde_json::Value {
        self.refill();
        json!({
            "maximumAvailable": self.max,
            "currentlyAvailable": self.available.floor(),
            "restoreRate": self.restore,
        })
    }
}

/// The simulator: its shop, bucket, harness (faults, counters) and configuration.
#[derive(Debug, Clone)]
pub struct ShopifySim {
    pub(crate) shop: Arc<Mutex<Shop>>,
    pub(crate) bucket: Arc<Mutex<Bucket>>,
    pub harness: Harness,
    pub(crate) config: Arc<ShopifyConfig>,
    /// Extra copies of every webhook delivery (same `X-Shopify-Webhook-Id`).
    pub(crate) webhook_duplicates: Arc<std::sync::atomic::AtomicU64>,
    /// Deliveries answered 2xx.
    pub(crate) webhooks_sent: Arc<std::sync::atomic::AtomicU64>,
    /// A scripted failure (see [`ShopifySim::fail_after`]).
    pub(crate) scripted: Arc<Mutex<Option<Scripted>>>,
    /// See [`ShopifySim::set_stuck_media_paging`].
    pub(crate) stuck_media_paging: Arc<std::sync::atomic::AtomicBool>,
    /// Bulk query jobs (see `bulk`).
    pub(crate) bulk: Arc<Mutex<bulk::BulkState>>,
    /// How long a bulk job stays RUNNING (default 200 ms).
    pub(crate) bulk_delay_ms: Arc<std::sync::atomic::AtomicU64>,
    /// Bulk jobs started from now on end FAILED with a `partialDataUrl`.
    pub(crate) bulk_fail: Arc<std::sync::atomic::AtomicBool>,
}

/// After a request whose document contains `trigger` is handled, answer it (when
/// `including_trigger`) and the next `count` requests with a GraphQL INTERNAL_SERVER_ERROR.
#[derive(Debug, Clone)]
pub(crate) struct Scripted {
    pub(crate) trigger: String,
    pub(crate) including_trigger: bool,
    pub(crate) count: u64,
    pub(crate) armed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ShopifySim {
    pub fn new(config: ShopifyConfig, faults: FaultConfig) -> Self {
        let mut shop = Shop::new();
        for i in 1..=config.products {
            shop.seed_product(config.seed.wrapping_add(i), i - 1);
        }
        for i in 0..config.orders {
            shop.seed_order(config.seed.wrapping_add(i), i);
        }
        let bucket = Arc::new(Mutex::new(Bucket::new(
            config.bucket_max,
            config.restore_rate,
        )));
        let for_answer = bucket.clone();
        let harness = Harness::new(
            faults,
            Arc::new(move || {
                let status = lock(&for_answer).status();
                Json(json!({
                    "errors": [{ "message": "Throttled", "extensions": {
                        "code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits" } }],
                    "extensions": { "cost": {
                        "requestedQueryCost": 0, "actualQueryCost": null, "throttleStatus": status } },
                }))
                .into_response()
            }),
        );
        Self {
            shop: Arc::new(Mutex::new(shop)),
            bucket,
            harness,
            config: Arc::new(config),
            webhook_duplicates: Arc::default(),
            webhooks_sent: Arc::default(),
            scripted: Arc::default(),
            stuck_media_paging: Arc::default(),
            bulk: Arc::default(),
            bulk_delay_ms: Arc::new(std::sync::atomic::AtomicU64::new(200)),
            bulk_fail: Arc::default(),
        }
    }

    /// Makes media paging broken: every media connection claims a next page, and a product's
    /// media page answers no nodes and the cursor it was asked for.
    pub fn set_stuck_media_paging(&self, on: bool) {
        self.stuck_media_paging
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Scripts a failure: once a request whose document contains `trigger` has been handled
    /// (its writes applied), that request's answer (when `including_trigger`) and the next
    /// `count` requests' answers are a GraphQL `INTERNAL_SERVER_ERROR` (HTTP 200). The later
    /// requests are not handled.
    pub fn fail_after(&self, trigger: &str, including_trigger: bool, count: u64) {
        *lock(&self.scripted) = Some(Scripted {
            trigger: trigger.to_owned(),
            including_trigger,
            count,
            armed: false,
        });
    }

    /// Platform routes (faulted, counted) plus the shared and Shopify admin routes.
    pub fn router(&self) -> Router {
        self.harness
            .wrap(api::routes(self.clone()))
            .merge(admin::routes(self.clone()))
            .merge(bulk::routes(self.clone()))
    }

    pub async fn serve(&self) -> std::io::Result<RunningSim> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let running = RunningSim::serve(addr, self.router()).await?;
        self.set_base_url(&running.base_url);
        Ok(running)
    }

    /// Where bulk operation files are served from (set by [`ShopifySim::serve`]; call it when
    /// serving [`ShopifySim::router`] yourself).
    pub fn set_base_url(&self, base_url: &str) {
        lock(&self.bulk).base_url = Some(base_url.trim_end_matches('/').to_owned());
    }

    /// How long bulk jobs started from now stay RUNNING.
    pub fn set_bulk_delay_ms(&self, ms: u64) {
        self.bulk_delay_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bulk jobs started from now end FAILED (with half their lines at `partialDataUrl`).
    pub fn set_bulk_fail(&self, on: bool) {
        self.bulk_fail
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every bulk job becomes EXPIRED and its files are gone.
    pub fn expire_bulk_operations(&self) {
        bulk::expire_all(self);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Shop> {
        lock(&self.shop)
    }

    /// Adds a merchant's product titled `title` (handle derived from it) whose first variant's
    /// SKU is `sku`; returns its gid.
    pub fn add_merchant_product(&self, title: &str, sku: &str) -> Option<String> {
        let mut shop = self.lock();
        let index = shop.products.len() as u64;
        shop.seed_product(self.config.seed.wrapping_add(10_000 + index), index);
        let id = shop.products.keys().copied().max()?;
        let handle = shop.unique_handle(title, id);
        let p = shop.products.get_mut(&id)?;
        p.title = title.to_owned();
        p.handle = handle;
        if let Some(v) = p.variants.first_mut() {
            v.sku = Some(sku.to_owned());
        }
        Some(shop::gid("Product", id))
    }

    pub fn product_count(&self) -> usize {
        self.lock().products.len()
    }

    /// Every product's gid.
    pub fn product_gids(&self) -> Vec<String> {
        self.lock()
            .products
            .keys()
            .map(|id| shop::gid("Product", *id))
            .collect()
    }

    /// A product as its GraphQL node (every field), for assertions.
    pub fn product_node(&self, gid: &str) -> Option<serde_json::Value> {
        let id = shop::parse_gid("Product", gid)?;
        self.lock().products.get(&id).map(shop::SimProduct::node)
    }

    /// A product's title and its numbers of variants and media (cheap, for assertions over
    /// large catalogues).
    pub fn product_shape(&self, gid: &str) -> Option<(String, usize, usize)> {
        let id = shop::parse_gid("Product", gid)?;
        self.lock()
            .products
            .get(&id)
            .map(|p| (p.title.clone(), p.variants.len(), p.media.len()))
    }

    /// Changes a product's title as a merchant would (bumps `updatedAt`).
    pub fn edit_title(&self, gid: &str, title: &str) -> bool {
        admin::edit(self, gid, |p| p.title = title.to_owned())
    }

    /// Places an order for `lines` (variant gid, quantity): stock goes down, no product edit
    /// (no `updatedAt` change, no `products/update`). Returns the order's gid.
    pub fn place_order(&self, lines: &[(&str, i64)]) -> Option<String> {
        let parsed: Option<Vec<(u64, i64)>> = lines
            .iter()
            .map(|(g, q)| shop::parse_gid("ProductVariant", g).map(|id| (id, *q)))
            .collect();
        let (id, moved) = self.lock().place_order(&parsed?, admin::now())?;
        self.inventory_changed(&moved);
        Some(shop::gid("Order", id))
    }

    /// Changes an order's note as a merchant would (bumps the order's `updatedAt`).
    pub fn edit_order_note(&self, gid: &str, note: &str) -> bool {
        shop::parse_gid("Order", gid)
            .is_some_and(|id| self.lock().edit_order_note(id, note, admin::now()))
    }

    /// Edits an order's stored node as the merchant or a fulfilment app would (line items are
    /// `lineItems.__connection`, fulfilments a plain list); its `updatedAt` moves.
    pub fn edit_order_node(&self, gid: &str, edit: impl FnOnce(&mut serde_json::Value)) -> bool {
        let Some(id) = shop::parse_gid("Order", gid) else {
            return false;
        };
        let now = admin::now();
        let mut shop = self.lock();
        let Some(order) = shop.orders.get_mut(&id) else {
            return false;
        };
        edit(&mut order.node);
        order.updated_at = now;
        order.node["updatedAt"] = serde_json::json!(shop::iso(now));
        true
    }

    /// Every order's gid.
    pub fn order_gids(&self) -> Vec<String> {
        self.lock()
            .orders
            .keys()
            .map(|id| shop::gid("Order", *id))
            .collect()
    }

    /// Stock changed on these inventory items (item id, new available): one
    /// `inventory_levels/update` each (and no `products/update`).
    pub(crate) fn inventory_changed(&self, moved: &[(u64, i64)]) {
        for (item, available) in moved {
            let body = json!({
                "inventory_item_id": item, "location_id": 1, "available": available,
                "updated_at": shop::iso(admin::now()),
                "admin_graphql_api_id": format!("gid://shopify/InventoryLevel/1?inventory_item_id={item}"),
            });
            webhooks::deliver(self, "inventory_levels/update", &body);
        }
    }

    /// A product was edited: `products/update` with its REST-shaped body.
    pub(crate) fn product_changed(&self, id: u64) {
        let body = {
            let shop = self.lock();
            let Some(p) = shop.products.get(&id) else {
                return;
            };
            json!({
                "id": p.id, "admin_graphql_api_id": shop::gid("Product", p.id),
                "title": p.title, "handle": p.handle, "status": p.status.to_lowercase(),
                "updated_at": shop::iso(p.updated_at),
                "variants": p.variants.iter().map(|v| json!({
                    "id": v.id, "admin_graphql_api_id": shop::gid("ProductVariant", v.id),
                    "sku": v.sku, "price": v.price, "inventory_item_id": v.inventory_item_id,
                })).collect::<Vec<_>>(),
            })
        };
        webhooks::deliver(self, "products/update", &body);
    }

    /// Sends every webhook delivery `1 + n` times (same webhook id).
    pub fn set_webhook_duplicates(&self, n: u64) {
        self.webhook_duplicates
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Webhook deliveries the receiver answered 2xx (copies counted).
    pub fn webhooks_delivered(&self) -> u64 {
        self.webhooks_sent
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the bucket holds now.
    pub fn bucket_available(&self) -> f64 {
        lock(&self.bucket).status()["currentlyAvailable"]
            .as_f64()
            .unwrap_or(0.0)
    }

    /// Sets the bucket's restore rate and size (and fills it).
    pub fn set_rate(&self, maximum: f64, restore: f64) {
        *lock(&self.bucket) = Bucket::new(maximum, restore);
    }
}
