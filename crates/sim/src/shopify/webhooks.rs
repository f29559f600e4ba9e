//! Webhook deliveries (platforms.md §1.7): REST-shaped JSON bodies POSTed to the configured URL
//! with `X-Shopify-Topic`, `X-Shopify-Hmac-Sha256` (base64 HMAC-SHA256 of the raw body with
//! `webhook_secret`), `X-Shopify-Webhook-Id` (the dedupe key: the same for copies and retries of
//! one delivery), `X-Shopify-Event-Id`, `X-Shopify-Triggered-At`, `X-Shopify-Shop-Domain` and
//! `X-Shopify-API-Version`. Plain HTTP/1.1 over TCP to loopback receivers.
//!
//! Delivery is configurable ([`WebhookBehaviour`]): duplicates, a fraction dropped, reordering
//! (deliveries held for a window and sent shuffled), retries of attempts answered non-2xx or
//! timed out (up to 8, Shopify's hours scaled down to milliseconds), and the 5 s timeout of an
//! attempt (1 s to connect).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::shop::{SimOrder, SimProduct, gid, iso};
use crate::faults::SplitMix;

/// How deliveries behave; changed at run time with `ShopifySim::set_webhook_behaviour` or
/// `PUT /_sim/shopify/webhooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookBehaviour {
    /// Extra copies of every delivery (same `X-Shopify-Webhook-Id`).
    pub duplicates: u64,
    /// Fraction (0–1) of deliveries never sent.
    pub drop: f64,
    /// Deliveries are held this long and then sent in a shuffled order (0: in order, at once).
    pub reorder_window_ms: u64,
    /// Retries of an attempt answered non-2xx or timed out (Shopify: 8, over 4 hours).
    pub max_retries: u32,
    /// Wait before the first retry, doubling for each next one (Shopify's schedule scaled down
    /// so tests stay fast).
    pub retry_base_ms: u64,
    /// The longest one attempt may take (Shopify: 5 s in all, 1 s to connect).
    pub timeout_ms: u64,
    /// Seed of the generator that drops and shuffles.
    pub seed: u64,
}

impl Default for WebhookBehaviour {
    fn default() -> Self {
        Self {
            duplicates: 0,
            drop: 0.0,
            reorder_window_ms: 0,
            max_retries: 8,
            retry_base_ms: 50,
            timeout_ms: 5_000,
            seed: 0,
        }
    }
}

impl WebhookBehaviour {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.drop) {
            return Err(format!("drop = {} is not between 0 and 1", self.drop));
        }
        if self.max_retries > 8 {
            return Err(format!(
                "max_retries = {} is more than Shopify's 8",
                self.max_retries
            ));
        }
        Ok(())
    }
}

/// What deliveries have done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WebhookStats {
    /// Deliveries made (each event once, before drops and copies).
    pub deliveries: u64,
    /// Attempts answered 2xx (copies counted).
    pub delivered: u64,
    /// Every attempt, retries included.
    pub attempts: u64,
    /// Attempts answered non-2xx, refused or timed out.
    pub failed_attempts: u64,
    /// Deliveries dropped (never sent).
    pub dropped: u64,
    /// Copies given up after the last retry.
    pub given_up: u64,
}

#[derive(Debug, Default)]
struct Counters {
    deliveries: AtomicU64,
    delivered: AtomicU64,
    attempts: AtomicU64,
    failed_attempts: AtomicU64,
    dropped: AtomicU64,
    given_up: AtomicU64,
}

/// One delivery: an event of one topic.
#[derive(Debug)]
struct Delivery {
    topic: String,
    body: Vec<u8>,
    signature: String,
    webhook_id: String,
    event_id: String,
    triggered_at: String,
}

/// The simulator's webhook subscription and its delivery machinery.
#[derive(Debug)]
pub(crate) struct Webhooks {
    url: Mutex<Option<String>>,
    secret: String,
    version: String,
    behaviour: Mutex<WebhookBehaviour>,
    counters: Counters,
    next_id: AtomicU64,
    queue: OnceLock<mpsc::UnboundedSender<Delivery>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The base64 HMAC-SHA256 of `body` with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl Webhooks {
    pub(crate) fn new(url: Option<String>, secret: String, version: String) -> Self {
        Self {
            url: Mutex::new(url),
            secret,
            version,
            behaviour: Mutex::new(WebhookBehaviour::default()),
            counters: Counters::default(),
            next_id: AtomicU64::new(1),
            queue: OnceLock::new(),
        }
    }

    pub(crate) fn behaviour(&self) -> WebhookBehaviour {
        lock(&self.behaviour).clone()
    }

    pub(crate) fn set_behaviour(&self, behaviour: WebhookBehaviour) {
        *lock(&self.behaviour) = behaviour;
    }

    pub(crate) fn set_url(&self, url: Option<String>) {
        *lock(&self.url) = url;
    }

    pub(crate) fn stats(&self) -> WebhookStats {
        let c = &self.counters;
        WebhookStats {
            deliveries: c.deliveries.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            attempts: c.attempts.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            given_up: c.given_up.load(Ordering::Relaxed),
        }
    }

    /// Queues `topic` with `body` (when a URL is set and a Tokio runtime runs).
    pub(crate) fn deliver(self: &Arc<Self>, topic: &str, body: &Value) {
        if lock(&self.url).is_none() {
            return;
        }
        let Ok(bytes) = serde_json::to_vec(body) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let delivery = Delivery {
            topic: topic.to_owned(),
            signature: sign(self.secret.as_bytes(), &bytes),
            body: bytes,
            webhook_id: format!("b54557e4-bdd9-4b37-8a5f-{n:012x}"),
            event_id: format!("98880550-7158-44d4-b7cd-{n:012x}"),
            triggered_at: now_rfc3339(),
        };
        self.counters.deliveries.fetch_add(1, Ordering::Relaxed);
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            runtime.spawn(dispatch(self.clone(), rx));
            tx
        });
        let _ = queue.send(delivery);
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Sends queued deliveries: in order, or held for the reorder window and shuffled; drops a
/// fraction; each copy's first attempt in turn, its retries in the background.
async fn dispatch(hooks: Arc<Webhooks>, mut rx: mpsc::UnboundedReceiver<Delivery>) {
    let mut rng = SplitMix(hooks.behaviour().seed);
    while let Some(first) = rx.recv().await {
        let behaviour = hooks.behaviour();
        let mut batch = vec![first];
        if behaviour.reorder_window_ms > 0 {
            let deadline =
                tokio::time::Instant::now() + Duration::from_millis(behaviour.reorder_window_ms);
            while let Ok(Some(next)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                batch.push(next);
            }
            // Fisher–Yates.
            for i in (1..batch.len()).rev() {
                let j = usize::try_from(rng.next_u64() % (i as u64 + 1)).unwrap_or(0);
                batch.swap(i, j);
            }
        }
        for delivery in batch {
            if behaviour.drop > 0.0 && rng.next_f64() < behaviour.drop {
                hooks.counters.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let delivery = Arc::new(delivery);
            for _ in 0..=behaviour.duplicates {
                if !attempt(&hooks, &delivery, &behaviour).await {
                    tokio::spawn(retry(hooks.clone(), delivery.clone(), behaviour.clone()));
                }
            }
        }
    }
}

/// Retries a failed copy with doubling waits; gives up after `max_retries`.
async fn retry(hooks: Arc<Webhooks>, delivery: Arc<Delivery>, behaviour: WebhookBehaviour) {
    for n in 0..behaviour.max_retries {
        let wait = behaviour.retry_base_ms.saturating_mul(1 << n.min(20));
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if attempt(&hooks, &delivery, &behaviour).await {
            return;
        }
    }
    hooks.counters.given_up.fetch_add(1, Ordering::Relaxed);
}

/// One attempt; whether it was answered 2xx in time.
async fn attempt(hooks: &Webhooks, delivery: &Delivery, behaviour: &WebhookBehaviour) -> bool {
    let Some(url) = lock(&hooks.url).clone() else {
        return false;
    };
    hooks.counters.attempts.fetch_add(1, Ordering::Relaxed);
    let sent = tokio::time::timeout(
        Duration::from_millis(behaviour.timeout_ms),
        post(&url, &hooks.version, delivery),
    )
    .await;
    let ok = matches!(sent, Ok(Ok(())));
    let counter = if ok {
        &hooks.counters.delivered
    } else {
        &hooks.counters.failed_attempts
    };
    counter.fetch_add(1, Ordering::Relaxed);
    ok
}

async fn post(url: &str, version: &str, d: &Delivery) -> std::io::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("only http:// webhook URLs"))?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream =
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(host))
            .await
            .map_err(|_| std::io::Error::other("connect timed out"))??;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         X-Shopify-Topic: {}\r\nX-Shopify-Hmac-Sha256: {}\r\nX-Shopify-Webhook-Id: {}\r\n\
         X-Shopify-Event-Id: {}\r\nX-Shopify-Triggered-At: {}\r\nX-Shopify-Shop-Domain: sim.myshopify.com\r\n\
         X-Shopify-API-Version: {version}\r\nConnection: close\r\n\r\n",
        d.body.len(),
        d.topic,
        d.signature,
        d.webhook_id,
        d.event_id,
        d.triggered_at,
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&d.body).await?;
    // The status line is all that matters.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 256];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    let status = answer
        .split(|b| *b == b' ')
        .nth(1)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse::<u16>().ok());
    match status {
        Some(200..=299) => Ok(()),
        _ => Err(std::io::Error::other("webhook not accepted")),
    }
}

fn money_set(amount: &Value, currency: &Value) -> Value {
    let money = json!({ "amount": amount, "currency_code": currency });
    json!({ "shop_money": money, "presentment_money": money })
}

/// A product as its REST webhook body (`products/create`, `products/update`), shaped like
/// Shopify's example `Product.json`; ids are numbers (exact here, as u64).
pub(crate) fn product_body(p: &SimProduct, base: &str) -> Value {
    let grams = |w: Option<f64>| w.map_or(0, |w| w.round() as i64);
    let variants: Vec<Value> = p
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let option = |n: usize| {
                p.options
                    .get(n)
                    .and_then(|name| v.options.iter().find(|(k, _)| k == name))
                    .map(|(_, value)| value.clone())
            };
            json!({
                "admin_graphql_api_id": gid("ProductVariant", v.id), "id": v.id,
                "product_id": p.id, "title": v.title, "price": v.price,
                "compare_at_price": v.compare_at_price, "sku": v.sku, "barcode": v.barcode,
                "position": i + 1, "inventory_policy": "deny", "fulfillment_service": "manual",
                "inventory_management": "shopify", "taxable": true, "requires_shipping": true,
                "option1": option(0), "option2": option(1), "option3": option(2),
                "grams": grams(v.weight_grams), "weight": grams(v.weight_grams), "weight_unit": "g",
                "image_id": null, "inventory_item_id": v.inventory_item_id,
                "inventory_quantity": v.available, "old_inventory_quantity": v.available,
                "created_at": iso(p.created_at), "updated_at": iso(v.updated_at),
            })
        })
        .collect();
    let options: Vec<Value> = p
        .options
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut values: Vec<&str> = Vec::new();
            for v in &p.variants {
                if let Some((_, value)) = v.options.iter().find(|(k, _)| k == name)
                    && !values.contains(&value.as_str())
                {
                    values.push(value);
                }
            }
            json!({ "product_id": p.id, "name": name, "position": i + 1, "values": values })
        })
        .collect();
    // Only READY media have an image URL, as on Shopify.
    let images: Vec<Value> = p
        .media
        .iter()
        .filter(|m| m.status() == super::shop::MediaStatus::Ready)
        .enumerate()
        .map(|(i, m)| {
            json!({
                "id": m.id, "admin_graphql_api_id": gid("MediaImage", m.id), "product_id": p.id,
                "position": i + 1, "alt": m.alt, "src": m.url(base), "variant_ids": [],
                "created_at": iso(p.created_at), "updated_at": iso(p.updated_at),
            })
        })
        .collect();
    json!({
        "admin_graphql_api_id": gid("Product", p.id), "id": p.id,
        "title": p.title, "body_html": p.description_html, "vendor": p.vendor,
        "product_type": p.product_type, "handle": p.handle, "status": p.status.to_lowercase(),
        "tags": p.tags.join(", "), "template_suffix": null, "published_scope": "web",
        "created_at": iso(p.created_at), "updated_at": iso(p.updated_at),
        "published_at": iso(p.created_at),
        "variants": variants, "options": options,
        "image": images.first().cloned().unwrap_or(Value::Null), "images": images,
    })
}

/// An order as its REST webhook body (`orders/create`, `orders/updated`), from its stored
/// GraphQL node, shaped like Shopify's example `Order.json`.
pub(crate) fn order_body(o: &SimOrder) -> Value {
    let n = &o.node;
    let currency = n["currencyCode"].clone();
    let amount = |key: &str| n[key]["shopMoney"]["amount"].clone();
    let customer = &n["customer"];
    let lines: Vec<Value> = n["lineItems"]["__connection"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let numeric = |v: &Value| {
                v.as_str()
                    .and_then(|g| g.rsplit('/').next())
                    .and_then(|id| id.parse::<u64>().ok())
            };
            let price = l["originalUnitPriceSet"]["shopMoney"]["amount"].clone();
            json!({
                "id": numeric(&l["id"]), "admin_graphql_api_id": l["id"],
                "variant_id": numeric(&l["variant"]["id"]), "sku": l["sku"], "title": l["title"],
                "name": l["title"], "quantity": l["quantity"], "price": price,
                "price_set": money_set(&price, &currency),
            })
        })
        .collect();
    let fulfillments: Vec<Value> = n["fulfillments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let tracking = &f["trackingInfo"][0];
            json!({
                "status": f["status"].as_str().map(str::to_lowercase),
                "shipment_status": f["displayStatus"].as_str().map(str::to_lowercase),
                "tracking_company": tracking["company"], "tracking_number": tracking["number"],
            })
        })
        .collect();
    let address = &n["shippingAddress"];
    let shipping_address = if address.is_object() {
        json!({ "address1": address["address1"], "address2": address["address2"],
            "city": address["city"], "province": address["province"], "zip": address["zip"],
            "country": address["country"] })
    } else {
        Value::Null
    };
    let fulfillment_status = match n["displayFulfillmentStatus"].as_str() {
        Some("FULFILLED") => json!("fulfilled"),
        Some("PARTIALLY_FULFILLED") => json!("partial"),
        _ => Value::Null,
    };
    json!({
        "id": o.id, "admin_graphql_api_id": gid("Order", o.id), "name": n["name"],
        "order_number": n["name"].as_str().and_then(|s| s.trim_start_matches('#').parse::<u64>().ok()),
        "email": n["email"], "contact_email": n["email"], "note": n["note"],
        "created_at": n["createdAt"], "updated_at": n["updatedAt"], "cancelled_at": n["cancelledAt"],
        "currency": currency, "presentment_currency": currency,
        "financial_status": n["displayFinancialStatus"].as_str().map(str::to_lowercase),
        "fulfillment_status": fulfillment_status,
        "subtotal_price": amount("subtotalPriceSet"), "total_tax": amount("totalTaxSet"),
        "total_price": amount("totalPriceSet"), "current_total_price": amount("totalPriceSet"),
        "subtotal_price_set": money_set(&amount("subtotalPriceSet"), &currency),
        "total_tax_set": money_set(&amount("totalTaxSet"), &currency),
        "total_price_set": money_set(&amount("totalPriceSet"), &currency),
        "total_shipping_price_set": money_set(&amount("totalShippingPriceSet"), &currency),
        "customer": { "first_name": customer["firstName"], "last_name": customer["lastName"],
            "email": customer["email"], "phone": customer["phone"] },
        "shipping_address": shipping_address,
        "line_items": lines, "fulfillments": fulfillments,
    })
}

/// `inventory_levels/update`, shaped like Shopify's example `InventoryLevel.json`.
pub(crate) fn inventory_body(item: u64, available: i64, updated_at: i64) -> Value {
    json!({
        "inventory_item_id": item, "location_id": 1, "available": available,
        "updated_at": iso(updated_at),
        "admin_graphql_api_id": format!("gid://shopify/InventoryLevel/1?inventory_item_id={item}"),
    })
}
