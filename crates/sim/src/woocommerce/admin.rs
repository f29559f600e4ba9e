//! Admin calls under `/_sim/woocommerce/…`: edit the shop as a merchant would in wp-admin, and
//! read state for assertions. Never faulted, never counted as platform requests.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::touch;
use super::webhooks::{self, Delivery};
use super::{WooSim, base_of, now_secs};

/// A merchant's edit of one product (or of one of its variations, named by `variation_sku`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Edit {
    pub title: Option<String>,
    /// The regular price (of the simple product, or of the named variation).
    pub price: Option<String>,
    /// An absolute quantity.
    pub stock: Option<i64>,
    pub variation_sku: Option<String>,
    /// Adds a new image (a new attachment) at the end of the gallery.
    pub add_image: bool,
    /// Removes this attachment from the gallery.
    pub remove_image: Option<u64>,
    /// Gives the variation named by `variation_sku` a newly uploaded image: an attachment of
    /// its own, not added to the gallery (as wp-admin's variation image picker does).
    pub variation_image: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub sku: String,
    #[serde(default = "one")]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
}

impl WooSim {
    /// Applies a merchant edit; bumps `date_modified` (a wp-admin save does). `false` when the
    /// product (or the named variation) does not exist.
    pub fn edit_product(&self, id: u64, edit: &Edit) -> bool {
        let lag = self.harness.faults.index_lag();
        let now = now_secs();
        if edit.variation_image && edit.variation_sku.is_none() {
            return false;
        }
        let mut shop = self.lock();
        let new_image = edit
            .add_image
            .then(|| shop.add_attachment("merchant upload", "", now));
        let variation_image = edit
            .variation_image
            .then(|| shop.add_attachment("merchant variation upload", "", now));
        let Some(p) = shop.products.get_mut(&id) else {
            return false;
        };
        if let Some(title) = &edit.title {
            p.fields.insert("name".into(), json!(title));
        }
        let target =
            match &edit.variation_sku {
                Some(sku) => match p.variations.iter_mut().find(|(_, v)| {
                    v.fields.get("sku").and_then(Value::as_str) == Some(sku.as_str())
                }) {
                    Some((_, v)) => {
                        v.modified = now;
                        if variation_image.is_some() {
                            v.image = variation_image;
                        }
                        &mut v.fields
                    }
                    None => return false,
                },
                None => &mut p.fields,
            };
        if let Some(price) = &edit.price {
            target.insert("regular_price".into(), json!(price));
            target.insert("sale_price".into(), json!(""));
        }
        if let Some(stock) = edit.stock {
            target.insert("manage_stock".into(), json!(true));
            target.insert("stock_quantity".into(), json!(stock));
        }
        if let Some(image) = new_image {
            p.images.push(image);
        }
        if let Some(remove) = edit.remove_image {
            p.images.retain(|a| *a != remove);
            for v in p.variations.values_mut() {
                if v.image == Some(remove) {
                    v.image = None;
                }
            }
        }
        touch(p, now, lag);
        true
    }

    /// A merchant deletes a product for good (not counted as an API delete).
    pub fn admin_delete_product(&self, id: u64) -> bool {
        let mut shop = self.lock();
        match shop.products.remove(&id) {
            Some(p) => {
                for vid in p.variations.keys() {
                    shop.variation_parent.remove(vid);
                }
                true
            }
            None => false,
        }
    }

    /// A buyer orders `quantity` of `sku`: a processing order is made and stock decremented.
    /// The trap: the product's (and variation's) `date_modified` is NOT bumped
    /// (woocommerce #40060), so a `modified_after` poll does not see the stock change.
    pub fn place_order(&self, sku: &str, quantity: i64) -> Option<u64> {
        let now = now_secs();
        let (id, body) = {
            let mut shop = self.lock();
            let (product_id, variation_id) = shop.ids_for_sku(sku);
            if product_id == 0 {
                return None;
            }
            let (name, price) = {
                let p = shop.products.get_mut(&product_id)?;
                let name = p
                    .fields
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let fields = if variation_id > 0 {
                    &mut p.variations.get_mut(&variation_id)?.fields
                } else {
                    &mut p.fields
                };
                if fields.get("manage_stock").and_then(Value::as_bool) == Some(true) {
                    let stock = fields
                        .get("stock_quantity")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    fields.insert("stock_quantity".into(), json!(stock - quantity));
                }
                let price = ["sale_price", "regular_price"]
                    .iter()
                    .filter_map(|k| fields.get(*k).and_then(Value::as_str))
                    .find(|s| !s.is_empty())
                    .and_then(|s| s.parse::<rust_decimal::Decimal>().ok())
                    .unwrap_or_default();
                (name, price)
            };
            let order = tidemark_core::SalesOrder {
                number: String::new(),
                buyer: tidemark_core::Buyer {
                    name: "Walk In".into(),
                    email: Some("buyer@example.com".into()),
                    phone: None,
                    address: vec!["1 Main St".into(), "Springfield".into()],
                },
                lines: vec![tidemark_core::OrderLine {
                    sku: Some(tidemark_core::Sku(sku.to_owned())),
                    title: name,
                    quantity,
                    unit_price: price,
                }],
                currency: tidemark_core::Currency::USD,
                subtotal: price * rust_decimal::Decimal::from(quantity),
                shipping_total: rust_decimal::Decimal::ZERO,
                tax_total: rust_decimal::Decimal::ZERO,
                total: price * rust_decimal::Decimal::from(quantity),
                status: tidemark_core::OrderStatus::Processing,
                payment_status: tidemark_core::PaymentStatus::Paid,
                shipments: vec![],
                note: None,
                placed_at: tidemark_core::Timestamp::from_millis(now * 1000),
            };
            let id = shop.insert_order(&order, now, Some(std::time::Instant::now()));
            let number = shop.next_order_number.to_string();
            if let Some(o) = shop.orders.get_mut(&id) {
                o.fields.insert("number".into(), json!(number));
            }
            (id, shop.render_order(id).unwrap_or(Value::Null))
        };
        webhooks::send(
            self,
            Delivery::new("order.created", "order", "created", id, body),
        );
        Some(id)
    }

    /// Every SKU in the shop (products and variations), sorted.
    pub fn all_skus(&self) -> Vec<String> {
        let shop = self.lock();
        let mut out: Vec<String> = shop
            .products
            .values()
            .flat_map(|p| {
                std::iter::once(p.sku().to_owned()).chain(p.variations.values().filter_map(|v| {
                    v.fields
                        .get("sku")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }))
            })
            .filter(|s| !s.is_empty())
            .collect();
        out.sort();
        out
    }

    /// Points webhook deliveries at `url` (re-enabling a disabled webhook).
    pub fn set_webhook(&self, url: Option<String>, secret: Option<String>) {
        let mut shop = self.lock();
        shop.webhook.url = url;
        if let Some(secret) = secret {
            shop.webhook.secret = secret;
        }
        shop.webhook.disabled = false;
        shop.webhook.consecutive_failures = 0;
    }

    /// (delivered, consecutive failures, disabled).
    pub fn webhook_state(&self) -> (u64, u32, bool) {
        let shop = self.lock();
        (
            shop.webhook.delivered,
            shop.webhook.consecutive_failures,
            shop.webhook.disabled,
        )
    }
}

pub fn routes(sim: WooSim) -> Router {
    Router::new()
        .route(
            "/_sim/woocommerce/products/{id}",
            get(admin_get).delete(admin_delete),
        )
        .route("/_sim/woocommerce/products/{id}/edit", post(admin_edit))
        .route("/_sim/woocommerce/count", get(admin_count))
        .route("/_sim/woocommerce/skus", get(admin_skus))
        .route("/_sim/woocommerce/orders", post(admin_order))
        .route(
            "/_sim/woocommerce/webhook",
            put(admin_webhook).get(admin_webhook_state),
        )
        .with_state(sim)
}

async fn admin_get(State(sim): State<WooSim>, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    match sim.product_json(&base_of(&headers), id) {
        Some(json) => Json(json).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn admin_delete(State(sim): State<WooSim>, Path(id): Path<u64>) -> StatusCode {
    if sim.admin_delete_product(id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn admin_edit(
    State(sim): State<WooSim>,
    Path(id): Path<u64>,
    Json(edit): Json<Edit>,
) -> StatusCode {
    if sim.edit_product(id, &edit) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn admin_count(State(sim): State<WooSim>) -> Json<Value> {
    let shop = sim.lock();
    Json(json!({"products": shop.products.len(), "orders": shop.orders.len()}))
}

async fn admin_skus(State(sim): State<WooSim>) -> Json<Vec<String>> {
    Json(sim.all_skus())
}

async fn admin_order(State(sim): State<WooSim>, Json(order): Json<PlaceOrder>) -> Response {
    match sim.place_order(&order.sku, order.quantity) {
        Some(id) => (StatusCode::CREATED, Json(json!({"id": id}))).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn admin_webhook(State(sim): State<WooSim>, Json(config): Json<WebhookConfig>) -> StatusCode {
    sim.set_webhook(config.url, config.secret);
    StatusCode::NO_CONTENT
}

async fn admin_webhook_state(State(sim): State<WooSim>) -> Json<Value> {
    let (delivered, failures, disabled) = sim.webhook_state();
    Json(json!({"delivered": delivered, "consecutive_failures": failures, "disabled": disabled}))
}
