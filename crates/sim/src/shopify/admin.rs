//! Admin calls under `/_sim/shopify/…`: edit as a merchant would, read state.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::ShopifySim;
use super::shop::{SimProduct, gid, parse_gid};

pub(super) fn routes(sim: ShopifySim) -> Router {
    Router::new()
        .route("/_sim/shopify/products", get(list))
        .route("/_sim/shopify/products/{id}", get(one).patch(patch))
        .route("/_sim/shopify/orders", get(orders).post(place_order))
        .route(
            "/_sim/shopify/orders/{id}",
            axum::routing::patch(patch_order),
        )
        .route("/_sim/shopify/bucket", get(bucket))
        .route("/_sim/shopify/rate", post(rate))
        .with_state(sim)
}

pub(super) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Applies `change` to the product `gid_text` as a merchant edit: `updatedAt` moves to now
/// and search sees it after the index lag.
pub(super) fn edit(sim: &ShopifySim, gid_text: &str, change: impl FnOnce(&mut SimProduct)) -> bool {
    let Some(id) = parse_gid("Product", gid_text) else {
        return false;
    };
    let lag = sim.harness.faults.index_lag();
    let mut shop = sim.lock();
    shop.before_write(id, lag);
    let Some(p) = shop.products.get_mut(&id) else {
        return false;
    };
    change(p);
    p.updated_at = now();
    drop(shop);
    sim.product_changed(id);
    true
}

async fn list(State(sim): State<ShopifySim>) -> Json<Vec<String>> {
    Json(sim.product_gids())
}

async fn one(State(sim): State<ShopifySim>, Path(id): Path<u64>) -> Response {
    match sim.product_node(&gid("Product", id)) {
        Some(node) => Json(node).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    title: Option<String>,
    /// Sets the first variant's price.
    price: Option<String>,
    /// Sets the first variant's stock (an inventory change: `updatedAt` does not move).
    stock: Option<i64>,
}

async fn patch(
    State(sim): State<ShopifySim>,
    Path(id): Path<u64>,
    Json(patch): Json<Patch>,
) -> Response {
    let gid_text = gid("Product", id);
    if let Some(stock) = patch.stock {
        let moved = {
            let mut shop = sim.lock();
            shop.products
                .get_mut(&id)
                .and_then(|p| p.variants.first_mut())
                .map(|v| {
                    v.available = stock;
                    (v.inventory_item_id, stock)
                })
        };
        sim.inventory_changed(moved.as_slice());
    }
    if patch.title.is_some() || patch.price.is_some() {
        let ok = edit(&sim, &gid_text, |p| {
            if let Some(t) = patch.title {
                p.title = t;
            }
            if let (Some(price), Some(v)) = (patch.price, p.variants.first_mut()) {
                v.price = price;
            }
        });
        if !ok {
            return StatusCode::NOT_FOUND.into_response();
        }
    }
    one(State(sim), Path(id)).await
}

async fn bucket(State(sim): State<ShopifySim>) -> Json<serde_json::Value> {
    Json(super::lock(&sim.bucket).status())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rate {
    maximum: f64,
    restore: f64,
}

async fn rate(State(sim): State<ShopifySim>, Json(rate): Json<Rate>) -> Json<serde_json::Value> {
    sim.set_rate(rate.maximum, rate.restore);
    Json(json!({ "ok": true }))
}

async fn orders(State(sim): State<ShopifySim>) -> Json<Vec<String>> {
    Json(sim.order_gids())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderLineIn {
    /// A variant gid.
    variant_id: String,
    quantity: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrder {
    lines: Vec<OrderLineIn>,
}

async fn place_order(State(sim): State<ShopifySim>, Json(order): Json<PlaceOrder>) -> Response {
    let lines: Vec<(&str, i64)> = order
        .lines
        .iter()
        .map(|l| (l.variant_id.as_str(), l.quantity))
        .collect();
    match sim.place_order(&lines) {
        Some(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        None => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": "unknown variant or quantity not positive" })),
        )
            .into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderPatch {
    note: String,
}

async fn patch_order(
    State(sim): State<ShopifySim>,
    Path(id): Path<u64>,
    Json(patch): Json<OrderPatch>,
) -> Response {
    if sim.edit_order_note(&gid("Order", id), &patch.note) {
        Json(json!({ "id": gid("Order", id) })).into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}
