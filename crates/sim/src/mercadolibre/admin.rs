//! Admin calls under `/_sim/mercadolibre/…`: edit the account as a seller would on the site,
//! and read state for assertions. Never faulted, never rate limited, never counted.

use std::str::FromStr as _;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::market::{now_millis, seed_for_new_picture};
use super::{MlSim, base_of, notify};

/// A seller's edit of one item (or of one of its variations, named by `variation_sku` or
/// `variation_id`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemEdit {
    pub title: Option<String>,
    /// A decimal string.
    pub price: Option<String>,
    /// An absolute quantity.
    pub stock: Option<i64>,
    pub variation_sku: Option<String>,
    pub variation_id: Option<u64>,
    /// Adds a new picture at the end.
    pub add_picture: bool,
    pub remove_picture: Option<String>,
    /// `active`, `paused` or `closed`.
    pub status: Option<String>,
    /// The description's new `plain_text`.
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub item_id: String,
    #[serde(default)]
    pub variation_id: Option<u64>,
    #[serde(default = "one")]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderEdit {
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tracking {
    pub tracking_number: String,
    #[serde(default)]
    pub tracking_method: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub per_second: Option<f64>,
    #[serde(default = "ten")]
    pub burst: u32,
    #[serde(default)]
    pub hourly: Option<u64>,
}

fn ten() -> u32 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationConfig {
    pub url: Option<String>,
}

impl MlSim {
    /// Applies a seller edit and bumps `last_updated`. `Err` says why it could not.
    pub fn edit_item(&self, id: &str, edit: &ItemEdit) -> Result<(), String> {
        {
            let lag = self.harness.faults.index_lag();
            let mut market = self.lock();
            market.before_write(id, lag);
            let new_picture = edit
                .add_picture
                .then(|| market.new_picture(seed_for_new_picture(now_millis())));
            let item = market
                .items
                .get_mut(id)
                .ok_or_else(|| format!("no item {id}"))?;
            let variation = match (&edit.variation_id, &edit.variation_sku) {
                (Some(vid), _) => Some(
                    item.variations
                        .iter()
                        .position(|v| v.id == *vid)
                        .ok_or_else(|| format!("no variation {vid}"))?,
                ),
                (None, Some(sku)) => Some(
                    item.variations
                        .iter()
                        .position(|v| v.seller_sku.as_deref() == Some(sku))
                        .ok_or_else(|| format!("no variation with SKU {sku}"))?,
                ),
                (None, None) => None,
            };
            if let Some(title) = &edit.title {
                item.title = title.clone();
            }
            if let Some(price) = &edit.price {
                let price = Decimal::from_str(price).map_err(|e| e.to_string())?;
                match variation {
                    Some(n) => item.variations[n].price = price,
                    None if item.variations.is_empty() => item.price = price,
                    None => {
                        item.price = price;
                        for v in &mut item.variations {
                            v.price = price;
                        }
                    }
                }
            }
            if let Some(stock) = edit.stock {
                match variation {
                    Some(n) => item.variations[n].available_quantity = stock,
                    None if item.variations.is_empty() => item.available_quantity = stock,
                    None => item.variations[0].available_quantity = stock,
                }
            }
            if let Some(picture) = new_picture {
                item.pictures.push(picture);
            }
            if let Some(remove) = &edit.remove_picture {
                item.pictures.retain(|p| &p.id != remove);
                for v in &mut item.variations {
                    v.picture_ids.retain(|p| p != remove);
                }
            }
            if let Some(status) = &edit.status {
                item.status = status.clone();
            }
            if let Some(description) = &edit.description {
                item.description = description.clone();
            }
            item.sync_quantity();
            item.last_updated = now_millis().max(item.last_updated + 1);
        }
        notify::send(self, "items", &format!("/items/{id}"));
        Ok(())
    }

    /// The seller deletes an item (MercadoLibre lets a seller delete a closed listing; the
    /// simulator takes any): it leaves searches and reads answer 404. Not an API deletion, so
    /// `product_deletes` does not count it. Returns whether the item existed.
    pub fn delete_item(&self, id: &str) -> bool {
        let removed = {
            let lag = self.harness.faults.index_lag();
            let mut market = self.lock();
            market.before_write(id, lag);
            market.items.remove(id).is_some()
        };
        if removed {
            notify::send(self, "items", &format!("/items/{id}"));
        }
        removed
    }

    /// Places an order as a buyer would: decrements stock and notifies `orders_v2`.
    pub fn place_order(&self, order: &PlaceOrder) -> Option<u64> {
        let id = self.lock().add_order(
            &order.item_id,
            order.variation_id,
            order.quantity,
            now_millis(),
            "Test Buyer",
        )?;
        notify::send(self, "orders_v2", &format!("/orders/{id}"));
        Some(id)
    }

    /// Edits an order (its status) and bumps its `last_updated`.
    pub fn edit_order(&self, id: u64, edit: &OrderEdit) -> bool {
        {
            let mut market = self.lock();
            let Some(order) = market.orders.get_mut(&id) else {
                return false;
            };
            if let Some(status) = &edit.status {
                order.status = status.clone();
            }
            order.last_updated = now_millis().max(order.last_updated + 1);
        }
        notify::send(self, "orders_v2", &format!("/orders/{id}"));
        true
    }

    /// Adds a tracking number to an order's shipment (and bumps the order's `last_updated`).
    pub fn set_tracking(&self, order_id: u64, tracking: &Tracking) -> bool {
        let shipment = {
            let mut market = self.lock();
            let now = now_millis();
            let Some(order) = market.orders.get_mut(&order_id) else {
                return false;
            };
            order.last_updated = now.max(order.last_updated + 1);
            let Some(sid) = order.shipping_id else {
                return false;
            };
            let Some(s) = market.shipments.get_mut(&sid) else {
                return false;
            };
            s.tracking_number = Some(tracking.tracking_number.clone());
            s.tracking_method = tracking.tracking_method.clone();
            s.status = "shipped".into();
            s.last_updated = now;
            sid
        };
        notify::send(self, "shipments", &format!("/shipments/{shipment}"));
        true
    }

    /// Sets the shipping mode of an order's shipment (`me1`, `me2`, `custom`); `false` when the
    /// order has no shipment.
    pub fn set_shipping_mode(&self, order_id: u64, mode: &str) -> bool {
        let mut market = self.lock();
        let Some(sid) = market.orders.get(&order_id).and_then(|o| o.shipping_id) else {
            return false;
        };
        match market.shipments.get_mut(&sid) {
            Some(s) => {
                s.mode = mode.to_owned();
                true
            }
            None => false,
        }
    }

    /// Order ids, ascending.
    pub fn order_ids(&self) -> Vec<u64> {
        self.lock().orders.keys().copied().collect()
    }

    /// Subscribes (again): sets the callback URL and re-enables every disabled topic, as a
    /// seller re-subscribing in the application manager would.
    pub fn set_notification_url(&self, url: Option<String>) {
        let mut market = self.lock();
        market.notification_url = url;
        market.disabled_topics.clear();
    }

    /// Topics disabled because the receiver answered slower than 500 ms.
    pub fn disabled_topics(&self) -> Vec<String> {
        self.lock().disabled_topics.iter().cloned().collect()
    }

    /// Notifications sent so far as `(topic, resource, delivered)`.
    pub fn notifications(&self) -> Vec<(String, String, bool)> {
        self.lock()
            .notifications
            .iter()
            .map(|n| (n.topic.clone(), n.resource.clone(), n.delivered))
            .collect()
    }
}

pub fn routes(sim: MlSim) -> Router {
    Router::new()
        .route("/_sim/mercadolibre/items/{id}", get(read_item))
        .route("/_sim/mercadolibre/items/{id}/edit", post(edit_item))
        .route("/_sim/mercadolibre/items/{id}/delete", post(delete_item))
        .route("/_sim/mercadolibre/orders", post(place_order))
        .route("/_sim/mercadolibre/orders/{id}/edit", post(edit_order))
        .route(
            "/_sim/mercadolibre/orders/{id}/tracking",
            post(set_tracking),
        )
        .route("/_sim/mercadolibre/rate", put(set_rate))
        .route("/_sim/mercadolibre/expire_tokens", post(expire_tokens))
        .route("/_sim/mercadolibre/notifications", put(set_notifications))
        .route("/_sim/mercadolibre/state", get(state))
        .with_state(sim)
}

fn refused(message: String) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": message}))).into_response()
}

async fn read_item(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match sim.item_json(&base_of(&headers), &id) {
        Some(item) => Json(item).into_response(),
        None => refused(format!("no item {id}")),
    }
}

async fn delete_item(State(sim): State<MlSim>, Path(id): Path<String>) -> Response {
    if sim.delete_item(&id) {
        Json(json!({"ok": true})).into_response()
    } else {
        refused(format!("no item {id}"))
    }
}

async fn edit_item(
    State(sim): State<MlSim>,
    Path(id): Path<String>,
    Json(edit): Json<ItemEdit>,
) -> Response {
    match sim.edit_item(&id, &edit) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(message) => refused(message),
    }
}

async fn place_order(State(sim): State<MlSim>, Json(order): Json<PlaceOrder>) -> Response {
    match sim.place_order(&order) {
        Some(id) => Json(json!({"id": id})).into_response(),
        None => refused(format!("no item {} (or variation)", order.item_id)),
    }
}

async fn edit_order(
    State(sim): State<MlSim>,
    Path(id): Path<u64>,
    Json(edit): Json<OrderEdit>,
) -> Response {
    if sim.edit_order(id, &edit) {
        Json(json!({"ok": true})).into_response()
    } else {
        refused(format!("no order {id}"))
    }
}

async fn set_tracking(
    State(sim): State<MlSim>,
    Path(id): Path<u64>,
    Json(t): Json<Tracking>,
) -> Response {
    if sim.set_tracking(id, &t) {
        Json(json!({"ok": true})).into_response()
    } else {
        refused(format!("no order {id} with a shipment"))
    }
}

async fn set_rate(State(sim): State<MlSim>, Json(rate): Json<RateConfig>) -> Response {
    sim.set_rate_limit(rate.per_second, rate.burst, rate.hourly);
    Json(json!({"ok": true})).into_response()
}

async fn expire_tokens(State(sim): State<MlSim>) -> Response {
    sim.expire_access_tokens();
    Json(json!({"ok": true})).into_response()
}

async fn set_notifications(
    State(sim): State<MlSim>,
    Json(c): Json<NotificationConfig>,
) -> Response {
    sim.set_notification_url(c.url);
    Json(json!({"ok": true})).into_response()
}

async fn state(State(sim): State<MlSim>) -> Json<Value> {
    let market = sim.lock();
    Json(json!({
        "items": market.items.len(),
        "orders": market.orders.len(),
        "refreshes": market.refreshes,
        "notifications": market.notifications.len(),
    }))
}
