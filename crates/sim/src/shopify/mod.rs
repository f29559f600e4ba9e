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
mod cdn;
pub mod graphql;
mod mutations;
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
use shop::{Shop, SimMedia};
pub use webhooks::{WebhookBehaviour, WebhookStats};

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
    /// How long media added through the API stay PROCESSING (`image: null`) at least, even once
    /// their bytes are downloaded.
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
    /// The webhook subscription and its deliveries.
    pub(crate) webhooks: Arc<webhooks::Webhooks>,
    /// A scripted failure (see [`ShopifySim::fail_after`]).
    pub(crate) scripted: Arc<Mutex<Option<Scripted>>>,
    /// An action run before a request (see [`ShopifySim::before_next`]).
    pub(crate) hook: Arc<Mutex<Option<Hook>>>,
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

/// An action run once, just before the next request whose document contains `trigger` is
/// handled (see [`ShopifySim::before_next`]).
pub(crate) struct Hook {
    pub(crate) trigger: String,
    pub(crate) action: Box<dyn FnOnce(&ShopifySim) + Send>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("trigger", &self.trigger)
            .finish_non_exhaustive()
    }
}

/// Something that happened to the shop and is announced by webhook.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    ProductCreated(u64),
    ProductUpdated(u64),
    ProductDeleted(u64),
    /// Stock changed on these inventory items (item id, new available).
    Inventory(Vec<(u64, i64)>),
    OrderCreated(u64),
    OrderUpdated(u64),
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
        let webhooks = Arc::new(webhooks::Webhooks::new(
            config.webhook_url.clone(),
            config.webhook_secret.clone(),
            config.api_version.clone(),
        ));
        Self {
            shop: Arc::new(Mutex::new(shop)),
            bucket,
            harness,
            config: Arc::new(config),
            webhooks,
            scripted: Arc::default(),
            hook: Arc::default(),
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

    /// Runs `action` once, just before the next request whose document contains `trigger` is
    /// handled: a sale landing between a client's read and its write, for instance.
    pub fn before_next(&self, trigger: &str, action: impl FnOnce(&ShopifySim) + Send + 'static) {
        *lock(&self.hook) = Some(Hook {
            trigger: trigger.to_owned(),
            action: Box::new(action),
        });
    }

    /// Platform routes (faulted, counted) plus the shared and Shopify admin routes, bulk files
    /// and media bytes (the "CDN": unauthenticated, never faulted).
    pub fn router(&self) -> Router {
        self.harness
            .wrap(api::routes(self.clone()))
            .merge(admin::routes(self.clone()))
            .merge(bulk::routes(self.clone()))
            .merge(cdn::routes(self.clone()))
    }

    pub async fn serve(&self) -> std::io::Result<RunningSim> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let running = RunningSim::serve(addr, self.router()).await?;
        self.set_base_url(&running.base_url);
        Ok(running)
    }

    /// Where bulk operation files and media bytes are served from (set by
    /// [`ShopifySim::serve`]; call it when serving [`ShopifySim::router`] yourself).
    pub fn set_base_url(&self, base_url: &str) {
        let base = base_url.trim_end_matches('/').to_owned();
        lock(&self.bulk).base_url = Some(base.clone());
        self.lock().base_url = base;
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
    /// SKU is `sku`, as the merchant would in the admin (`products/create`; seeded variants,
    /// media and stock, updated now); returns its gid.
    pub fn add_merchant_product(&self, title: &str, sku: &str) -> Option<String> {
        let lag = self.harness.faults.index_lag();
        let id = {
            let mut shop = self.lock();
            let index = shop.products.len() as u64;
            shop.seed_product(self.config.seed.wrapping_add(10_000 + index), index);
            let id = shop.products.keys().copied().max()?;
            let handle = shop.unique_handle(title, id);
            // Search sees the new product after the index lag.
            shop.created(id, lag);
            let now = admin::now();
            let p = shop.products.get_mut(&id)?;
            p.title = title.to_owned();
            p.handle = handle;
            p.created_at = now;
            p.updated_at = now;
            if let Some(v) = p.variants.first_mut() {
                v.sku = Some(sku.to_owned());
            }
            id
        };
        self.emit(vec![Event::ProductCreated(id)]);
        Some(shop::gid("Product", id))
    }

    /// Adds an image from `source` to a product, as the merchant would in the admin: the
    /// media is PROCESSING while the simulator downloads it (`images::fetch_source`), then
    /// READY with those bytes at its own URL, or FAILED. Returns the media gid.
    pub fn add_image(&self, product: &str, source: &str, alt: &str) -> Option<String> {
        let id = shop::parse_gid("Product", product)?;
        let lag = self.harness.faults.index_lag();
        let processing = std::time::Duration::from_millis(self.config.media_processing_ms);
        let media = {
            let mut shop = self.lock();
            if !shop.products.contains_key(&id) {
                return None;
            }
            let media = shop.new_media(source, alt, processing);
            shop.before_write(id, lag);
            let p = shop.products.get_mut(&id)?;
            p.media.push(media.clone());
            p.updated_at = admin::now();
            media
        };
        media.download();
        self.emit(vec![Event::ProductUpdated(id)]);
        Some(shop::gid("MediaImage", media.id))
    }

    /// Removes an image from a product, as the merchant would (the file stays in the shop's
    /// files). False when the product or the image on it is unknown.
    pub fn remove_image(&self, product: &str, media: &str) -> bool {
        let (Some(id), Some(mid)) = (
            shop::parse_gid("Product", product),
            shop::parse_gid("MediaImage", media),
        ) else {
            return false;
        };
        admin::edit_if(self, id, |p| {
            let before = p.media.len();
            p.media.retain(|m: &SimMedia| m.id != mid);
            p.media.len() != before
        })
    }

    /// Deletes a product as the merchant would: a `DeletionEvent` (PRODUCT) is recorded and
    /// `products/delete` sent. (Not counted in `product_deletes`, which counts deletes made
    /// through the platform API.)
    pub fn delete_product(&self, product: &str) -> bool {
        let Some(id) = shop::parse_gid("Product", product) else {
            return false;
        };
        let lag = self.harness.faults.index_lag();
        let deleted = self.lock().delete_product(id, admin::now(), lag);
        if deleted {
            self.emit(vec![Event::ProductDeleted(id)]);
        }
        deleted
    }

    /// Changes the first variant's price as a merchant would (bumps `updatedAt`).
    pub fn edit_price(&self, product: &str, price: &str) -> bool {
        admin::edit(self, product, |p| {
            if let Some(v) = p.variants.first_mut() {
                v.price = price.to_owned();
                v.updated_at = admin::now();
            }
        })
    }

    /// Sets a variant's stock as a merchant would: an inventory change (no `updatedAt` move,
    /// only `inventory_levels/update`).
    pub fn set_stock(&self, variant: &str, available: i64) -> bool {
        let Some(vid) = shop::parse_gid("ProductVariant", variant) else {
            return false;
        };
        let moved = {
            let mut shop = self.lock();
            shop.products
                .values_mut()
                .flat_map(|p| p.variants.iter_mut())
                .find(|v| v.id == vid)
                .map(|v| {
                    v.available = available;
                    (v.inventory_item_id, available)
                })
        };
        let found = moved.is_some();
        self.emit(vec![Event::Inventory(moved.into_iter().collect())]);
        found
    }

    /// The bytes served for a media file (`None` while downloading, once failed or deleted).
    pub fn media_bytes(&self, media: &str) -> Option<Vec<u8>> {
        let mid = shop::parse_gid("MediaImage", media)?;
        let file = self.lock().files.get(&mid).cloned()?;
        file.content().map(|b| b.as_ref().clone())
    }

    /// Every `DeletionEvent` recorded: (subject gid, occurred at, Unix seconds).
    pub fn deletion_events(&self) -> Vec<(String, i64)> {
        self.lock()
            .deletions
            .iter()
            .map(|d| (shop::gid("Product", d.subject_id), d.occurred_at))
            .collect()
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
        let shop = self.lock();
        shop.products.get(&id).map(|p| p.node(&shop.base_url))
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
        self.emit(vec![Event::OrderCreated(id), Event::Inventory(moved)]);
        Some(shop::gid("Order", id))
    }

    /// Changes an order's note as a merchant would (bumps the order's `updatedAt`; sends
    /// `orders/updated`).
    pub fn edit_order_note(&self, gid: &str, note: &str) -> bool {
        let Some(id) = shop::parse_gid("Order", gid) else {
            return false;
        };
        let edited = self.lock().edit_order_note(id, note, admin::now());
        if edited {
            self.emit(vec![Event::OrderUpdated(id)]);
        }
        edited
    }

    /// Edits an order's stored node as the merchant or a fulfilment app would (line items are
    /// `lineItems.__connection`, fulfilments a plain list); its `updatedAt` moves.
    pub fn edit_order_node(&self, gid: &str, edit: impl FnOnce(&mut serde_json::Value)) -> bool {
        let Some(id) = shop::parse_gid("Order", gid) else {
            return false;
        };
        let now = admin::now();
        {
            let mut shop = self.lock();
            let Some(order) = shop.orders.get_mut(&id) else {
                return false;
            };
            edit(&mut order.node);
            order.updated_at = now;
            order.node["updatedAt"] = serde_json::json!(shop::iso(now));
        }
        self.emit(vec![Event::OrderUpdated(id)]);
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

    /// Sends the webhooks of `events` (the shop must not be locked by the caller). Product
    /// changes send `products/create` / `products/update` (never for stock alone), stock
    /// changes one `inventory_levels/update` per item.
    pub(crate) fn emit(&self, events: Vec<Event>) {
        for event in events {
            let (topic, body) = {
                let shop = self.lock();
                match event {
                    Event::ProductCreated(id) | Event::ProductUpdated(id) => {
                        let Some(p) = shop.products.get(&id) else {
                            continue;
                        };
                        let topic = if matches!(event, Event::ProductCreated(_)) {
                            "products/create"
                        } else {
                            "products/update"
                        };
                        (topic, webhooks::product_body(p, &shop.base_url))
                    }
                    Event::ProductDeleted(id) => ("products/delete", json!({ "id": id })),
                    Event::OrderCreated(id) | Event::OrderUpdated(id) => {
                        let Some(o) = shop.orders.get(&id) else {
                            continue;
                        };
                        let topic = if matches!(event, Event::OrderCreated(_)) {
                            "orders/create"
                        } else {
                            "orders/updated"
                        };
                        (topic, webhooks::order_body(o))
                    }
                    Event::Inventory(moved) => {
                        drop(shop);
                        for (item, available) in moved {
                            let body = webhooks::inventory_body(item, available, admin::now());
                            self.webhooks.deliver("inventory_levels/update", &body);
                        }
                        continue;
                    }
                }
            };
            self.webhooks.deliver(topic, &body);
        }
    }

    /// Sends every webhook delivery `1 + n` times (same webhook id).
    pub fn set_webhook_duplicates(&self, n: u64) {
        let mut behaviour = self.webhooks.behaviour();
        behaviour.duplicates = n;
        self.webhooks.set_behaviour(behaviour);
    }

    /// Replaces how webhooks are delivered (duplicates, drops, reordering, retries, timeout).
    pub fn set_webhook_behaviour(&self, behaviour: WebhookBehaviour) {
        self.webhooks.set_behaviour(behaviour);
    }

    pub fn webhook_behaviour(&self) -> WebhookBehaviour {
        self.webhooks.behaviour()
    }

    /// Points deliveries at `url` (or stops them).
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.webhooks.set_url(url);
    }

    /// Webhook deliveries the receiver answered 2xx (copies counted).
    pub fn webhooks_delivered(&self) -> u64 {
        self.webhooks.stats().delivered
    }

    /// What webhook deliveries have done so far.
    pub fn webhook_stats(&self) -> WebhookStats {
        self.webhooks.stats()
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
