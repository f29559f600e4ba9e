//! WooCommerce REST API v3 simulator (`reference/platforms.md` §2 and the §5 checklist).
//!
//! Serves `/wp-json/wc/v3/…` with Basic or query-string consumer key/secret auth, a seeded shop
//! of simple and variable products (with variations and image attachments whose bytes it serves
//! under `/wp-content/uploads/`), orders, batch endpoints, webhooks, and the traps tidemark must
//! live with. Admin calls under `/_sim/woocommerce/…`. Every route, limit and trap is in
//! `crates/sim/woocommerce.md`.

mod admin;
pub use admin::{Edit, PlaceOrder, WebhookConfig};
mod api;
pub mod shop;
mod webhooks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::faults::FaultConfig;
use crate::harness::{Harness, RunningSim};
use shop::{SEED_EPOCH, Secs, Shop};

/// What [`WooSim::shapes`] reports of one product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductShape {
    pub sku: String,
    pub status: String,
    /// Variation SKUs in variation-id order; empty for a simple product.
    pub variation_skus: Vec<String>,
    /// Gallery attachment ids, featured first.
    pub images: Vec<u64>,
    /// `date_modified_gmt` in seconds since the epoch.
    pub modified: Secs,
}

/// How the simulated shop starts.
#[derive(Debug, Clone)]
pub struct WooConfig {
    pub products: u64,
    pub orders: u64,
    /// Product `i` (1-based) is `sample::product(seed + i)`.
    pub seed: u64,
    /// Every `simple_every`-th product is simple (its first variant only); the rest are
    /// variable. 0: none simple.
    pub simple_every: u64,
    pub consumer_key: String,
    pub consumer_secret: String,
    /// Site time = UTC + this (dates without `_gmt` are in site time).
    pub utc_offset_secs: i64,
    /// Webhook deliveries go here, signed with `webhook_secret`.
    pub webhook_url: Option<String>,
    pub webhook_secret: String,
}

impl Default for WooConfig {
    fn default() -> Self {
        Self {
            products: 100,
            orders: 20,
            seed: 0,
            simple_every: 8,
            consumer_key: "ck_test".into(),
            consumer_secret: "cs_test".into(),
            utc_offset_secs: -3 * 3600,
            webhook_url: None,
            webhook_secret: "whsec_test".into(),
        }
    }
}

/// A fault a test asks for on one chosen request, beside the harness's random ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripted {
    /// Answered with this status (a 5xx) before the request is handled: nothing is applied.
    Before(u16),
    /// Handled (a write is applied), then answered 504 instead: the client cannot tell.
    AfterApply,
}

#[derive(Debug, Clone)]
struct ScriptRule {
    method: String,
    /// Path under `/wp-json/wc/v3/`, `*` matching one segment (`products/*/variations/batch`).
    pattern: String,
    /// Matching requests to let through first.
    skip: u32,
    fault: Scripted,
}

impl ScriptRule {
    fn matches(&self, method: &str, path: &str) -> bool {
        let Some(rest) = path.strip_prefix("/wp-json/wc/v3/") else {
            return false;
        };
        let want: Vec<&str> = self.pattern.trim_matches('/').split('/').collect();
        let got: Vec<&str> = rest.trim_matches('/').split('/').collect();
        self.method.eq_ignore_ascii_case(method)
            && want.len() == got.len()
            && want.iter().zip(&got).all(|(w, g)| *w == "*" || w == g)
    }
}

/// The simulator: its shop, its harness (faults, counters) and its credentials.
#[derive(Debug, Clone)]
pub struct WooSim {
    pub(crate) shop: Arc<Mutex<Shop>>,
    pub harness: Harness,
    pub(crate) config: Arc<WooConfig>,
    script: Arc<Mutex<Vec<ScriptRule>>>,
}

impl WooSim {
    pub fn new(config: WooConfig, faults: FaultConfig) -> Self {
        let mut shop = Shop::new(config.utc_offset_secs);
        for i in 1..=config.products {
            let simple = config.simple_every > 0 && i % config.simple_every == 0;
            shop.seed_product(config.seed.wrapping_add(i), i - 1, simple);
        }
        shop.index_skus_for_seeding();
        for i in 0..config.orders {
            shop.seed_order(
                config.seed.wrapping_add(i),
                SEED_EPOCH + 86_400 + i as Secs * 60,
            );
        }
        shop.seed_sku_index = None;
        shop.webhook.url = config.webhook_url.clone();
        shop.webhook.secret = config.webhook_secret.clone();
        Self {
            shop: Arc::new(Mutex::new(shop)),
            harness: Harness::new(faults, Harness::plain_429()),
            config: Arc::new(config),
            script: Arc::default(),
        }
    }

    /// Platform routes (faulted, counted) plus the media files (static: never faulted) and the
    /// shared and WooCommerce admin routes.
    pub fn router(&self) -> Router {
        let platform = api::routes(self.clone()).layer(axum::middleware::from_fn_with_state(
            self.clone(),
            scripted_fault,
        ));
        self.harness
            .wrap(platform)
            .merge(api::media_routes(self.clone()))
            .merge(admin::routes(self.clone()))
    }

    /// Faults the request after `skip` others matching `method` and `pattern` (a path under
    /// `/wp-json/wc/v3/`, `*` for one segment) with `fault`, once. Rules fire in the order
    /// they were added; a request is matched against the first rule that fits.
    pub fn script(&self, method: &str, pattern: &str, skip: u32, fault: Scripted) {
        self.script_lock().push(ScriptRule {
            method: method.to_owned(),
            pattern: pattern.to_owned(),
            skip,
            fault,
        });
    }

    /// How many scripted faults have not fired yet.
    pub fn scripted_left(&self) -> usize {
        self.script_lock().len()
    }

    fn script_lock(&self) -> MutexGuard<'_, Vec<ScriptRule>> {
        self.script
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take_scripted(&self, method: &str, path: &str) -> Option<Scripted> {
        let mut rules = self.script_lock();
        let index = rules.iter().position(|r| r.matches(method, path))?;
        let rule = &mut rules[index];
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        Some(rules.remove(index).fault)
    }

    /// Serves on a free loopback port.
    pub async fn serve(&self) -> std::io::Result<RunningSim> {
        let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        RunningSim::serve(addr, self.router()).await
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Shop> {
        self.shop
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of products (any status, trash included).
    pub fn product_count(&self) -> usize {
        self.lock().products.len()
    }

    /// A product as the REST API renders it, with its variations inline under `_variations`.
    pub fn product_json(&self, base: &str, id: u64) -> Option<Value> {
        let shop = self.lock();
        let mut product = shop.render_product(base, id)?;
        let variations: Vec<Value> = shop
            .products
            .get(&id)
            .map(|p| {
                p.variations
                    .keys()
                    .filter_map(|vid| shop.render_variation(base, id, *vid))
                    .collect()
            })
            .unwrap_or_default();
        product["_variations"] = Value::Array(variations);
        Some(product)
    }

    /// Every product's shape without rendering it (cheap enough to check thousands): its
    /// variation SKUs (in id order) and its gallery's attachment ids, by product id.
    pub fn shapes(&self) -> BTreeMap<u64, ProductShape> {
        let shop = self.lock();
        shop.products
            .iter()
            .map(|(id, p)| {
                let variation_skus = p
                    .variations
                    .values()
                    .map(|v| {
                        v.fields
                            .get("sku")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned()
                    })
                    .collect();
                let shape = ProductShape {
                    sku: p.sku().to_owned(),
                    status: p.status().to_owned(),
                    variation_skus,
                    images: p.images.clone(),
                    modified: p.modified,
                };
                (*id, shape)
            })
            .collect()
    }

    /// Every product id, ascending.
    pub fn product_ids(&self) -> Vec<u64> {
        self.lock().products.keys().copied().collect()
    }

    /// The product (not variation) id holding `sku`.
    pub fn product_id_by_sku(&self, sku: &str) -> Option<u64> {
        let shop = self.lock();
        let (product, _) = shop.ids_for_sku(sku);
        (product != 0).then_some(product)
    }
}

async fn scripted_fault(
    axum::extract::State(sim): axum::extract::State<WooSim>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let fault = sim.take_scripted(request.method().as_str(), request.uri().path());
    match fault {
        None => next.run(request).await,
        Some(Scripted::Before(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            wc_error(status, "internal_server_error", "scripted fault", json!({}))
        }
        Some(Scripted::AfterApply) => {
            let _applied = next.run(request).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

/// Now, in whole seconds (WordPress stores dates to the second).
pub(crate) fn now_secs() -> Secs {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `{"code","message","data":{"status"…}}` with that HTTP status.
pub(crate) fn wc_error(status: StatusCode, code: &str, message: &str, data: Value) -> Response {
    let mut data = match data {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    data.insert("status".into(), json!(status.as_u16()));
    (
        status,
        Json(json!({"code": code, "message": message, "data": data})),
    )
        .into_response()
}

/// Basic auth or `consumer_key`/`consumer_secret` query parameters.
pub(crate) fn authorised(config: &WooConfig, headers: &HeaderMap, query: Option<&str>) -> bool {
    if let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(encoded) = value.strip_prefix("Basic ")
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(encoded.trim())
        && let Ok(text) = String::from_utf8(raw)
        && let Some((key, secret)) = text.split_once(':')
    {
        return key == config.consumer_key && secret == config.consumer_secret;
    }
    let pairs: Vec<(String, String)> = query
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .filter(|(k, _)| k == "consumer_key" || k == "consumer_secret")
                .collect()
        })
        .unwrap_or_default();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    get("consumer_key") == Some(config.consumer_key.as_str())
        && get("consumer_secret") == Some(config.consumer_secret.as_str())
}

/// Decodes `a=b&c=d` (percent-decoding and `+` as space).
pub(crate) fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The scheme and host the client used, for absolute URLs in answers.
pub(crate) fn base_of(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

impl WooSim {
    /// How many media attachments exist (a `src` upload adds one; keeping by `id` does not).
    pub fn attachment_count(&self) -> usize {
        self.lock().attachments.len()
    }

    /// The bytes a download of attachment `id`'s `src` gets.
    pub fn attachment_bytes(&self, id: u64) -> Option<Vec<u8>> {
        let file = self.lock().attachments.get(&id)?.file.clone();
        Some(file.bytes().to_vec())
    }

    /// How many orders exist.
    pub fn order_count(&self) -> usize {
        self.lock().orders.len()
    }

    /// An order as the REST API renders it.
    pub fn order_json(&self, id: u64) -> Option<Value> {
        self.lock().render_order(id)
    }

    /// The current `stock_quantity` of the product or variation holding `sku`.
    pub fn stock_of(&self, sku: &str) -> Option<i64> {
        let shop = self.lock();
        let (product, variation) = shop.ids_for_sku(sku);
        let p = shop.products.get(&product)?;
        let fields = if variation > 0 {
            &p.variations.get(&variation)?.fields
        } else {
            &p.fields
        };
        fields.get("stock_quantity").and_then(Value::as_i64)
    }

    /// Makes variation listings ignore `page` and `offset` (a cache in front of the shop that
    /// keys on the path only): every page answers the first.
    pub fn set_variation_paging_ignored(&self, ignored: bool) {
        self.lock().variation_paging_ignored = ignored;
    }

    /// Sets one raw field of a product (or, with `variation`, of one of its variations) as
    /// stored, without validation: for tests of values the API would refuse or that a plugin
    /// wrote (`"weight": "79228162514264337593543950335"`). `false` when it does not exist.
    pub fn set_raw_field(&self, id: u64, variation: Option<u64>, key: &str, value: Value) -> bool {
        let mut shop = self.lock();
        let Some(p) = shop.products.get_mut(&id) else {
            return false;
        };
        let fields = match variation {
            Some(vid) => match p.variations.get_mut(&vid) {
                Some(v) => &mut v.fields,
                None => return false,
            },
            None => &mut p.fields,
        };
        fields.insert(key.to_owned(), value);
        true
    }

    /// Sets one raw field of an order as stored (see [`WooSim::set_raw_field`]).
    pub fn set_raw_order_field(&self, id: u64, key: &str, value: Value) -> bool {
        let mut shop = self.lock();
        match shop.orders.get_mut(&id) {
            Some(o) => {
                o.fields.insert(key.to_owned(), value);
                true
            }
            None => false,
        }
    }

    /// The SKU of product `id` (empty when none), for tests.
    pub fn sku_of(&self, id: u64) -> String {
        self.lock()
            .products
            .get(&id)
            .map(|p| p.sku().to_owned())
            .unwrap_or_default()
    }
}
