//! Admin calls under `/_sim/shopify/…`: edit as a merchant would (products, images, stock,
//! orders), configure webhooks, read state.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use super::shop::{SimProduct, gid, parse_gid};
use super::{Event, ShopifySim, WebhookBehaviour};

pub(super) fn routes(sim: ShopifySim) -> Router {
    Router::new()
        .route("/_sim/shopify/products", get(list).post(create_product))
        .route(
            "/_sim/shopify/products/{id}",
            get(one).patch(patch).delete(delete_product),
        )
        .route("/_sim/shopify/products/{id}/images", post(add_image))
        .route(
            "/_sim/shopify/products/{id}/images/{media}",
            delete(remove_image),
        )
        .route("/_sim/shopify/deletions", get(deletions))
        .route("/_sim/shopify/webhooks", get(webhooks).put(put_webhooks))
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

/// Applies `change` to the product `gid_text` as a merchant edit: `updatedAt` moves to now,
/// search sees it after the index lag, `products/update` is sent.
pub(super) fn edit(sim: &ShopifySim, gid_text: &str, change: impl FnOnce(&mut SimProduct)) -> bool {
    let Some(id) = parse_gid("Product", gid_text) else {
        return false;
    };
    edit_if(sim, id, |p| {
        change(p);
        true
    })
}

/// Like [`edit`], for a change that may find nothing to do (`change` answers whether it
/// changed the product); nothing moves when it did not.
pub(super) fn edit_if(
    sim: &ShopifySim,
    id: u64,
    change: impl FnOnce(&mut SimProduct) -> bool,
) -> bool {
    let lag = sim.harness.faults.index_lag();
    {
        let mut shop = sim.lock();
        let Some(mut edited) = shop.products.get(&id).cloned() else {
            return false;
        };
        if !change(&mut edited) {
            return false;
        }
        shop.before_write(id, lag);
        edited.updated_at = now();
        shop.products.insert(id, edited);
    }
    sim.emit(vec![Event::ProductUpdated(id)]);
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
        let variant = sim
            .lock()
            .products
            .get(&id)
            .and_then(|p| p.variants.first())
            .map(|v| gid("ProductVariant", v.id));
        match variant {
            Some(v) => {
                sim.set_stock(&v, stock);
            }
            None => return StatusCode::NOT_FOUND.into_response(),
        }
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProduct {
    title: String,
    /// The first variant's SKU.
    sku: String,
    /// The first variant's price.
    price: Option<String>,
    /// The first variant's stock.
    stock: Option<i64>,
}

/// `POST /_sim/shopify/products {"title","sku","price"?,"stock"?}`: a merchant's new product
/// (`products/create`).
async fn create_product(State(sim): State<ShopifySim>, Json(new): Json<NewProduct>) -> Response {
    let Some(product) = sim.add_merchant_product(&new.title, &new.sku) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Some(price) = &new.price {
        sim.edit_price(&product, price);
    }
    if let Some(stock) = new.stock {
        let variant = sim.product_node(&product).and_then(|n| {
            n["variants"]["__connection"][0]["id"]
                .as_str()
                .map(str::to_owned)
        });
        if let Some(v) = variant {
            sim.set_stock(&v, stock);
        }
    }
    let node = sim.product_node(&product).unwrap_or_default();
    (StatusCode::CREATED, Json(node)).into_response()
}

async fn delete_product(State(sim): State<ShopifySim>, Path(id): Path<u64>) -> StatusCode {
    if sim.delete_product(&gid("Product", id)) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewImage {
    src: String,
    #[serde(default)]
    alt: String,
}

/// `POST /_sim/shopify/products/{id}/images {"src","alt"?}`: the merchant adds an image by URL.
async fn add_image(
    State(sim): State<ShopifySim>,
    Path(id): Path<u64>,
    Json(image): Json<NewImage>,
) -> Response {
    match sim.add_image(&gid("Product", id), &image.src, &image.alt) {
        Some(media) => (StatusCode::CREATED, Json(json!({ "id": media }))).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `DELETE /_sim/shopify/products/{id}/images/{media id}`.
async fn remove_image(
    State(sim): State<ShopifySim>,
    Path((id, media)): Path<(u64, u64)>,
) -> StatusCode {
    if sim.remove_image(&gid("Product", id), &gid("MediaImage", media)) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn deletions(State(sim): State<ShopifySim>) -> Json<serde_json::Value> {
    let events: Vec<serde_json::Value> = sim
        .deletion_events()
        .into_iter()
        .map(|(subject, at)| json!({ "subjectId": subject, "occurredAt": super::shop::iso(at) }))
        .collect();
    Json(json!(events))
}

async fn webhooks(State(sim): State<ShopifySim>) -> Json<serde_json::Value> {
    Json(json!({ "behaviour": sim.webhook_behaviour(), "stats": sim.webhook_stats() }))
}

async fn put_webhooks(
    State(sim): State<ShopifySim>,
    Json(behaviour): Json<WebhookBehaviour>,
) -> Response {
    match behaviour.validate() {
        Ok(()) => {
            sim.set_webhook_behaviour(behaviour.clone());
            Json(behaviour).into_response()
        }
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": message })),
        )
            .into_response(),
    }
}
