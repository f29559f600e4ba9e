//! The platform routes: OAuth, users, item search and multiget, item reads, updates and
//! creates, pictures, orders, shipments and missed notifications.

// The `Err` of these helpers is the HTTP answer itself, handed straight back to axum.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::str::FromStr as _;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::market::{
    AttrCombo, Item, Market, Scroll, TITLE_MAX, Variation, now_millis, parse_time,
};
use super::pictures::{self, MAX_PICTURE_BYTES, Processed};
use super::{MlSim, base_of, ml_error, ml_error_with, notify, validation_error};
use crate::images;

type Params = Query<Vec<(String, String)>>;

pub fn routes(sim: MlSim) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/users/me", get(users_me))
        .route("/users/{id}/items/search", get(search_items))
        .route("/items", get(multiget).post(create_item))
        .route("/items/{id}", get(get_item).put(update_item))
        .route("/items/{id}/pictures", post(link_picture))
        .route(
            "/pictures/items/upload",
            // Room for a 10 MB file plus the multipart framing (axum's default is 2 MB).
            post(upload_picture).layer(DefaultBodyLimit::max(MAX_PICTURE_BYTES + 64 * 1024)),
        )
        .route(
            "/items/{id}/description",
            get(get_description)
                .put(put_description)
                .post(put_description),
        )
        .route("/orders/search", get(search_orders))
        .route("/orders/{id}", get(get_order))
        .route("/shipments/{id}", get(get_shipment).put(update_shipment))
        .route("/missed_feeds", get(missed_feeds))
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            rate_limit,
        ))
        .with_state(sim)
}

/// Picture bytes come from a CDN, apart from the API: outside its rate limit, its faults and
/// its request counters, so another simulator copying a picture always gets its bytes.
pub fn cdn_routes(sim: MlSim) -> Router {
    Router::new()
        .route("/pictures/{file}", get(picture))
        .with_state(sim)
}

async fn rate_limit(State(sim): State<MlSim>, request: Request, next: Next) -> Response {
    let admitted = sim.lock().rate.admit();
    if admitted {
        next.run(request).await
    } else {
        sim.harness.rate_limited()
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The bearer token's validity; `Err` is the 401 to answer.
fn authorise(sim: &MlSim, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let now = Instant::now();
    let valid = token.is_some_and(|t| {
        sim.lock()
            .access_tokens
            .get(t)
            .is_some_and(|expiry| *expiry > now)
    });
    if valid {
        Ok(())
    } else {
        Err(ml_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "invalid access token",
        ))
    }
}

macro_rules! guard {
    ($sim:expr, $headers:expr) => {
        if let Err(answer) = authorise(&$sim, &$headers) {
            return answer;
        }
    };
}

async fn token(State(sim): State<MlSim>, body: Bytes) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded_pairs(&body);
    let get = |name: &str| param(&form, name).unwrap_or("");
    if get("client_id") != sim.config.client_id || get("client_secret") != sim.config.client_secret
    {
        return ml_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "invalid client_id or client_secret",
        );
    }
    let mut market = sim.lock();
    match get("grant_type") {
        "authorization_code" if get("code") == sim.config.authorization_code => {}
        "refresh_token" if get("refresh_token") == market.refresh_token => {
            market.refreshes += 1;
        }
        "authorization_code" | "refresh_token" => {
            return ml_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Error validating grant. Your authorization code or refresh token may be expired or it was already used",
            );
        }
        other => {
            return ml_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("unsupported grant_type {other:?}"),
            );
        }
    }
    market.token_counter += 1;
    let n = market.token_counter;
    let access = format!("APP_USR-{}-{n:06}-{}", sim.config.client_id, market.user_id);
    let refresh = format!("TG-{n:06}-{}", market.user_id);
    market
        .access_tokens
        .insert(access.clone(), Instant::now() + sim.config.token_ttl);
    // Single use: only the newest refresh token works from now on.
    market.refresh_token = refresh.clone();
    Json(json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": sim.config.token_ttl.as_secs(),
        "scope": "offline_access read write",
        "user_id": market.user_id,
        "refresh_token": refresh,
    }))
    .into_response()
}

fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    url_decode_pairs(&String::from_utf8_lossy(body))
}

/// Decodes `a=b&c=d` (percent-decoding and `+` as space).
fn url_decode_pairs(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(
                        std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or(""),
                        16,
                    ) {
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
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn users_me(State(sim): State<MlSim>, headers: HeaderMap) -> Response {
    guard!(sim, headers);
    let market = sim.lock();
    Json(json!({
        "id": market.user_id,
        "nickname": "TIDEMARK_TEST_SELLER",
        "site_id": market.site_id,
        "country_id": "AR",
        "user_type": "normal",
        "tags": ["normal"],
    }))
    .into_response()
}

async fn search_items(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Path(user): Path<String>,
    Query(params): Params,
) -> Response {
    guard!(sim, headers);
    let mut market = sim.lock();
    if user != market.user_id.to_string() {
        return ml_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "caller.id does not match user_id",
        );
    }
    let limit = match param(&params, "limit").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return ml_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "limit must be between 1 and 100",
            );
        }
    };
    let scan = param(&params, "search_type") == Some("scan");
    let scroll_ttl = sim.config.scroll_ttl;
    let (ids, total, scroll_id) = if scan {
        let now = Instant::now();
        market
            .scrolls
            .retain(|_, s| now.duration_since(s.last_used) < scroll_ttl);
        let (mut scroll, total) = match param(&params, "scroll_id") {
            Some(id) => match market.scrolls.get(id) {
                Some(s) => (s.clone(), s.ids.len()),
                None => {
                    return ml_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scroll_id",
                        "scroll_id is invalid or expired",
                    );
                }
            },
            None => {
                let ids = matching(&market, &params);
                let total = ids.len();
                (
                    Scroll {
                        ids,
                        position: 0,
                        last_used: now,
                        pages: 0,
                    },
                    total,
                )
            }
        };
        // A short page mid-scroll (real search answers them): the rest follows on later pages.
        let limit = match market.short_scan_page {
            Some((page, size)) if page == scroll.pages => size.min(limit),
            _ => limit,
        };
        let end = (scroll.position + limit).min(scroll.ids.len());
        let page = scroll.ids[scroll.position..end].to_vec();
        scroll.position = end;
        scroll.last_used = now;
        scroll.pages += 1;
        market.scroll_counter += 1;
        let next_id = format!(
            "{:x}{:016x}",
            market.scroll_counter,
            market.scroll_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        );
        market.scrolls.insert(next_id.clone(), scroll);
        (page, total, Some(next_id))
    } else {
        let offset = match param(&params, "offset").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                return ml_error(StatusCode::BAD_REQUEST, "bad_request", "invalid offset");
            }
        };
        if offset + limit > 1000 {
            return ml_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The sum of offset and limit cannot exceed 1000; use search_type=scan",
            );
        }
        let ids = matching(&market, &params);
        let total = ids.len();
        let page = ids.into_iter().skip(offset).take(limit).collect();
        (page, total, None)
    };
    let mut body = json!({
        "seller_id": market.user_id.to_string(),
        "query": null,
        "paging": {"limit": limit, "offset": param(&params, "offset").unwrap_or("0").parse::<u64>().unwrap_or(0), "total": total},
        "results": ids,
        "orders": [{"id": "stop_time_asc", "name": "Order by stop time asc"}],
        "available_orders": [],
    });
    if let Some(id) = scroll_id {
        body["scroll_id"] = json!(id);
    }
    Json(body).into_response()
}

/// Item ids matching `seller_sku` and `status`, in id order, or newest `last_updated` first
/// (ties by id) with `orders=last_updated_desc`. Other `orders` values are ignored. The search
/// index lags writes by `FaultConfig::index_lag_ms`: filters and order use what the index
/// knows (`Market::indexed`), and an item created within the lag is not found at all.
fn matching(market: &Market, params: &[(String, String)]) -> Vec<String> {
    let sku = param(params, "seller_sku");
    let status = param(params, "status");
    let mut items: Vec<(&Item, super::market::Indexed)> = market
        .items
        .values()
        .filter_map(|i| market.indexed(i).map(|x| (i, x)))
        .filter(|(_, x)| sku.is_none_or(|s| x.skus.iter().any(|k| k == s)))
        .filter(|(_, x)| status.is_none_or(|s| x.status == s))
        .collect();
    if param(params, "orders") == Some("last_updated_desc") {
        items.sort_by(|(a, x), (b, y)| y.last_updated.cmp(&x.last_updated).then(a.id.cmp(&b.id)));
    }
    items.into_iter().map(|(i, _)| i.id.clone()).collect()
}

async fn multiget(State(sim): State<MlSim>, headers: HeaderMap, Query(params): Params) -> Response {
    guard!(sim, headers);
    let ids: Vec<&str> = param(&params, "ids")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() || ids.len() > 20 {
        return ml_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "ids must name between 1 and 20 items",
        );
    }
    let attributes: Option<Vec<&str>> =
        param(&params, "attributes").map(|a| a.split(',').collect());
    let base = base_of(&headers);
    let market = sim.lock();
    let answer: Vec<Value> = ids
        .iter()
        .map(|id| match market.items.get(*id) {
            Some(item) => {
                let mut body = market.render_item(&base, item);
                if let (Some(keep), Some(obj)) = (&attributes, body.as_object_mut()) {
                    obj.retain(|k, _| keep.contains(&k.as_str()));
                }
                json!({"code": 200, "body": body})
            }
            None => json!({"code": 404, "body": {
                "message": format!("Item with id {id} not found"),
                "error": "not_found", "status": 404, "cause": []}}),
        })
        .collect();
    Json(Value::Array(answer)).into_response()
}

async fn get_item(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guard!(sim, headers);
    let base = base_of(&headers);
    let market = sim.lock();
    match market.items.get(&id) {
        Some(item) => Json(market.render_item(&base, item)).into_response(),
        None => not_found_item(&id),
    }
}

fn not_found_item(id: &str) -> Response {
    ml_error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("Item with id {id} not found"),
    )
}

async fn get_description(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guard!(sim, headers);
    match sim.lock().items.get(&id) {
        Some(item) => Json(json!({"text": "", "plain_text": item.description})).into_response(),
        None => not_found_item(&id),
    }
}

/// `PUT` or `POST /items/{id}/description` `{"plain_text": …}`: both set the text (the
/// simulator does not distinguish a first description from a later one), bump the item's
/// `last_updated` and send an `items` notification.
async fn put_description(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    guard!(sim, headers);
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let Some(text) = body.get("plain_text").and_then(Value::as_str) else {
        return validation_error(
            "item.description.plain_text.missing",
            "description.plain_text",
            "plain_text is required and must be text",
        );
    };
    let text = text.to_owned();
    let lag = sim.harness.faults.index_lag();
    {
        let mut market = sim.lock();
        if !market.items.contains_key(&id) {
            return not_found_item(&id);
        }
        market.before_write(&id, lag);
        let Some(item) = market.items.get_mut(&id) else {
            return not_found_item(&id);
        };
        item.description = text.clone();
        item.last_updated = now_millis().max(item.last_updated + 1);
    }
    notify::send(&sim, "items", &format!("/items/{id}"));
    Json(json!({"text": "", "plain_text": text})).into_response()
}

/// A JSON number or numeric string as a decimal (the SDK examples send `"350"`).
fn decimal(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        Value::String(s) => Decimal::from_str(s.trim()).ok(),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `SELLER_SKU` and `BRAND` from an `attributes` list.
fn attribute(list: &Value, id: &str) -> Option<Option<String>> {
    let list = list.as_array()?;
    list.iter()
        .find(|a| a["id"].as_str() == Some(id))
        .map(|a| a["value_name"].as_str().map(str::to_owned))
}

type Invalid = Response;

/// Applies the writable fields of `body` to `item` (a PUT, or the rest of a create). `taken`
/// holds the images of the write's picture sources, downloaded beforehand (`take_sources`).
fn apply(
    market: &mut Market,
    item: &mut Item,
    body: &Map<String, Value>,
    taken: &HashMap<String, Processed>,
) -> Result<(), Invalid> {
    if let Some(title) = body.get("title") {
        let title = title.as_str().ok_or_else(|| {
            validation_error("item.title.invalid", "item.title", "title must be text")
        })?;
        if title.trim().is_empty() || title.chars().count() > TITLE_MAX {
            return Err(validation_error(
                "item.title.length.invalid",
                "item.title",
                &format!("title must have between 1 and {TITLE_MAX} characters"),
            ));
        }
        if title != item.title && item.sold_quantity > 0 {
            return Err(validation_error(
                "item.title.not_modifiable",
                "item.title",
                "The title cannot be modified once the item has sales",
            ));
        }
        item.title = title.to_owned();
    }
    if let Some(price) = body.get("price") {
        item.price = decimal(price)
            .filter(|p| *p > Decimal::ZERO)
            .ok_or_else(|| validation_error("item.price.invalid", "item.price", "invalid price"))?;
    }
    if let Some(currency) = body.get("currency_id").and_then(Value::as_str) {
        item.currency_id = currency.to_owned();
    }
    if let Some(category) = body.get("category_id").and_then(Value::as_str) {
        item.category_id = category.to_owned();
    }
    if let Some(status) = body.get("status") {
        let status = status.as_str().unwrap_or("");
        if !["active", "paused", "closed"].contains(&status) {
            return Err(validation_error(
                "item.status.invalid",
                "item.status",
                &format!("invalid status {status:?}"),
            ));
        }
        if item.status == "closed" && status != "closed" {
            return Err(validation_error(
                "item.status.not_modifiable",
                "item.status",
                "A closed item cannot be reactivated",
            ));
        }
        item.status = status.to_owned();
    }
    if let Some(attrs) = body.get("attributes") {
        if let Some(sku) = attribute(attrs, "SELLER_SKU") {
            item.seller_sku = sku;
        }
        if let Some(brand) = attribute(attrs, "BRAND") {
            item.brand = brand;
        }
    }
    // Pictures made from a source URL by this write, for variations naming the same URL.
    let mut made: HashMap<String, String> = HashMap::new();
    if let Some(pictures) = body.get("pictures") {
        let list = pictures.as_array().ok_or_else(|| {
            validation_error(
                "item.pictures.invalid",
                "item.pictures",
                "pictures must be a list",
            )
        })?;
        let mut next = Vec::with_capacity(list.len());
        for (n, p) in list.iter().enumerate() {
            if let Some(id) = p["id"].as_str() {
                // The item's own, or any picture MercadoLibre serves (an uploaded one).
                let Some(kept) = item
                    .pictures
                    .iter()
                    .find(|x| x.id == id)
                    .or_else(|| market.pictures.get(id))
                else {
                    return Err(validation_error(
                        "item.pictures.id.invalid",
                        &format!("item.pictures[{n}].id"),
                        &format!("picture {id} does not exist"),
                    ));
                };
                next.push(kept.clone());
            } else if let Some(source) = p["source"].as_str() {
                let picture = market.processed_picture(taken_image(
                    taken,
                    source,
                    &format!("item.pictures[{n}].source"),
                )?);
                made.entry(source.to_owned()).or_insert(picture.id.clone());
                next.push(picture);
            } else {
                return Err(validation_error(
                    "item.pictures.invalid",
                    &format!("item.pictures[{n}]"),
                    "a picture needs an id or a source",
                ));
            }
        }
        item.pictures = next;
    }
    let has_variations_now = body.get("variations").is_some() || !item.variations.is_empty();
    if let Some(variations) = body.get("variations") {
        let list = variations.as_array().ok_or_else(|| {
            validation_error(
                "item.variations.invalid",
                "item.variations",
                "variations must be a list",
            )
        })?;
        let mut next: Vec<Variation> = Vec::with_capacity(list.len());
        for (n, v) in list.iter().enumerate() {
            let at = |f: &str| format!("item.variations[{n}].{f}");
            // Variations left out are deleted; those with an id are updated in place.
            let mut variation = match v.get("id").and_then(integer).map(|id| id as u64) {
                Some(id) => item
                    .variations
                    .iter()
                    .find(|x| x.id == id)
                    .cloned()
                    .ok_or_else(|| {
                        validation_error(
                            "item.variations.id.invalid",
                            &at("id"),
                            &format!("variation {id} does not exist"),
                        )
                    })?,
                None => Variation {
                    id: market.new_variation_id(),
                    price: item.price,
                    available_quantity: 0,
                    sold_quantity: 0,
                    combos: Vec::new(),
                    picture_ids: Vec::new(),
                    seller_sku: None,
                },
            };
            if let Some(price) = v.get("price") {
                variation.price =
                    decimal(price)
                        .filter(|p| *p > Decimal::ZERO)
                        .ok_or_else(|| {
                            validation_error(
                                "item.variations.price.invalid",
                                &at("price"),
                                "invalid price",
                            )
                        })?;
            }
            if let Some(q) = v.get("available_quantity") {
                variation.available_quantity = integer(q).filter(|q| *q >= 0).ok_or_else(|| {
                    validation_error(
                        "item.variations.available_quantity.invalid",
                        &at("available_quantity"),
                        "invalid quantity",
                    )
                })?;
            }
            if let Some(combos) = v.get("attribute_combinations").and_then(Value::as_array) {
                variation.combos = combos
                    .iter()
                    .map(|c| AttrCombo {
                        id: c["id"].as_str().unwrap_or("").to_owned(),
                        name: c["name"].as_str().unwrap_or("").to_owned(),
                        value_name: c["value_name"].as_str().unwrap_or("").to_owned(),
                    })
                    .collect();
            }
            if let Some(ids) = v.get("picture_ids").and_then(Value::as_array) {
                // An id, or a source URL: the item picture made from that URL by this write,
                // else a new item picture downloaded from it.
                let mut picture_ids = Vec::with_capacity(ids.len());
                for (j, entry) in ids.iter().filter_map(Value::as_str).enumerate() {
                    if !is_url(entry) {
                        picture_ids.push(entry.to_owned());
                    } else if let Some(id) = made.get(entry) {
                        picture_ids.push(id.clone());
                    } else {
                        let picture = market.processed_picture(taken_image(
                            taken,
                            entry,
                            &at(&format!("picture_ids[{j}]")),
                        )?);
                        made.insert(entry.to_owned(), picture.id.clone());
                        picture_ids.push(picture.id.clone());
                        item.pictures.push(picture);
                    }
                }
                variation.picture_ids = picture_ids;
            }
            if let Some(attrs) = v.get("attributes")
                && let Some(sku) = attribute(attrs, "SELLER_SKU")
            {
                variation.seller_sku = sku;
            }
            if variation.combos.is_empty() {
                return Err(validation_error(
                    "item.variations.attribute_combinations.missing",
                    &at("attribute_combinations"),
                    "a variation needs attribute_combinations",
                ));
            }
            next.push(variation);
        }
        // Every variation must use the same set of attribute ids.
        let key = |v: &Variation| {
            let mut ids: Vec<String> = v.combos.iter().map(|c| c.id.clone()).collect();
            ids.sort();
            ids
        };
        if let Some(first) = next.first().map(key)
            && next.iter().any(|v| key(v) != first)
        {
            return Err(validation_error(
                "item.variations.attribute_combinations.invalid",
                "item.variations",
                "every variation must use the same attribute_combinations ids",
            ));
        }
        item.variations = next;
    }
    // Variation pictures must be item pictures.
    for (n, v) in item.variations.iter().enumerate() {
        if let Some(bad) = v
            .picture_ids
            .iter()
            .find(|p| !item.pictures.iter().any(|x| &x.id == *p))
        {
            return Err(validation_error(
                "item.variations.picture_ids.invalid",
                &format!("item.variations[{n}].picture_ids"),
                &format!("picture {bad} is not one of the item's pictures"),
            ));
        }
    }
    if let Some(q) = body.get("available_quantity") {
        if has_variations_now && !item.variations.is_empty() {
            if body.get("variations").is_none() {
                return Err(validation_error(
                    "item.available_quantity.invalid",
                    "item.available_quantity",
                    "an item with variations takes quantities per variation",
                ));
            }
        } else {
            item.available_quantity = integer(q).filter(|q| *q >= 0).ok_or_else(|| {
                validation_error(
                    "item.available_quantity.invalid",
                    "item.available_quantity",
                    "invalid quantity",
                )
            })?;
        }
    }
    item.sync_quantity();
    Ok(())
}

fn is_url(text: &str) -> bool {
    text.starts_with("http://") || text.starts_with("https://")
}

/// The image taken from `source` before the write began.
fn taken_image(
    taken: &HashMap<String, Processed>,
    source: &str,
    reference: &str,
) -> Result<Processed, Invalid> {
    taken.get(source).cloned().ok_or_else(|| {
        validation_error(
            SOURCE_INVALID,
            reference,
            &format!("picture source {source} could not be downloaded"),
        )
    })
}

/// The cause code of a picture source that cannot be downloaded. MercadoLibre's own code for
/// it is not published; this one follows the shape of its `item.pictures.*` codes.
const SOURCE_INVALID: &str = "item.pictures.source.invalid";
/// The cause code of a downloaded file that is not a JPEG or PNG MercadoLibre can take.
const FORMAT_INVALID: &str = "item.pictures.format.invalid";

/// Every picture source URL an item write names, with where: `pictures[n].source`, and URLs
/// in a variation's `picture_ids` (which take an id or a URL).
fn sources_of(body: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(list) = body.get("pictures").and_then(Value::as_array) {
        for (n, p) in list.iter().enumerate() {
            if p.get("id").and_then(Value::as_str).is_none()
                && let Some(source) = p.get("source").and_then(Value::as_str)
            {
                out.push((source.to_owned(), format!("item.pictures[{n}].source")));
            }
        }
    }
    if let Some(list) = body.get("variations").and_then(Value::as_array) {
        for (k, v) in list.iter().enumerate() {
            let ids = v.get("picture_ids").and_then(Value::as_array);
            for (j, entry) in ids
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .enumerate()
            {
                if is_url(entry) {
                    out.push((
                        entry.to_owned(),
                        format!("item.variations[{k}].picture_ids[{j}]"),
                    ));
                }
            }
        }
    }
    out
}

/// Downloads (`images::fetch_source`, all at once) and re-encodes every picture source of an
/// item write before anything of it is applied. `Err` is the 400 `validation_error` with one
/// blocking cause per source that could not be taken, so a failed write changes nothing.
async fn take_sources(body: &Map<String, Value>) -> Result<HashMap<String, Processed>, Invalid> {
    let sources = sources_of(body);
    let mut downloads = tokio::task::JoinSet::new();
    let mut asked = std::collections::HashSet::new();
    for (url, _) in &sources {
        if asked.insert(url.clone()) {
            let url = url.clone();
            downloads.spawn(async move {
                let got = images::fetch_source(&url).await;
                (url, got)
            });
        }
    }
    let mut fetched = HashMap::new();
    while let Some(done) = downloads.join_next().await {
        // A download task that panicked leaves its URL out: reported as not downloaded.
        if let Ok((url, got)) = done {
            fetched.insert(url, got);
        }
    }
    let mut taken = HashMap::new();
    let mut causes = Vec::new();
    for (url, reference) in &sources {
        if taken.contains_key(url) {
            continue;
        }
        let outcome = match fetched.get(url) {
            Some(Ok(bytes)) => pictures::process(bytes)
                .map_err(|e| (FORMAT_INVALID, format!("picture source {url}: {e}"))),
            Some(Err(e @ images::SourceError::NotAnImage { .. })) => {
                Err((FORMAT_INVALID, format!("picture source {e}")))
            }
            Some(Err(e)) => Err((SOURCE_INVALID, format!("picture source {e}"))),
            None => Err((
                SOURCE_INVALID,
                format!("picture source {url} could not be downloaded"),
            )),
        };
        match outcome {
            Ok(image) => {
                taken.insert(url.clone(), image);
            }
            Err((code, message)) => causes.push(json!({
                "department": "pictures",
                "cause_id": 1001,
                "type": "error",
                "code": code,
                "references": [reference],
                "message": message,
            })),
        }
    }
    if causes.is_empty() {
        Ok(taken)
    } else {
        Err(ml_error_with(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "Validation error",
            causes,
        ))
    }
}

fn body_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ml_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "body must be a JSON object",
        )),
    }
}

async fn update_item(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    guard!(sim, headers);
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    if !sim.lock().items.contains_key(&id) {
        return not_found_item(&id);
    }
    let taken = match take_sources(&body).await {
        Ok(taken) => taken,
        Err(answer) => return answer,
    };
    let base = base_of(&headers);
    let lag = sim.harness.faults.index_lag();
    let (answer, lost) = {
        let mut market = sim.lock();
        let Some(mut item) = market.items.get(&id).cloned() else {
            return not_found_item(&id);
        };
        market.before_write(&id, lag);
        if let Err(answer) = apply(&mut market, &mut item, &body, &taken) {
            return answer;
        }
        for picture in &item.pictures {
            market.register(picture);
        }
        item.last_updated = now_millis().max(item.last_updated + 1);
        let rendered = market.render_item(&base, &item);
        market.items.insert(id.clone(), item);
        let lost = market.lose_update_answers > 0;
        market.lose_update_answers = market.lose_update_answers.saturating_sub(1);
        (rendered, lost)
    };
    notify::send(&sim, "items", &format!("/items/{id}"));
    if lost {
        // Applied, but the caller hears a gateway failure.
        return ml_error(StatusCode::BAD_GATEWAY, "bad_gateway", "Bad Gateway");
    }
    Json(answer).into_response()
}

async fn create_item(State(sim): State<MlSim>, headers: HeaderMap, body: Bytes) -> Response {
    guard!(sim, headers);
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    for required in ["title", "category_id", "price", "currency_id"] {
        if body.get(required).is_none_or(Value::is_null) {
            return validation_error(
                &format!("item.{required}.missing"),
                &format!("item.{required}"),
                &format!("{required} is required"),
            );
        }
    }
    let taken = match take_sources(&body).await {
        Ok(taken) => taken,
        Err(answer) => return answer,
    };
    let base = base_of(&headers);
    let now = now_millis();
    let lag = sim.harness.faults.index_lag();
    let (id, answer, sku, lost) = {
        let mut market = sim.lock();
        let id = market.new_item_id();
        market.before_write(&id, lag);
        let mut item = Item {
            id: id.clone(),
            title: String::new(),
            category_id: String::new(),
            price: Decimal::ZERO,
            currency_id: String::new(),
            available_quantity: 0,
            sold_quantity: 0,
            status: "active".into(),
            seller_sku: None,
            brand: None,
            pictures: Vec::new(),
            variations: Vec::new(),
            description: body
                .get("description")
                .and_then(|d| d.as_str().or_else(|| d["plain_text"].as_str()))
                .unwrap_or("")
                .to_owned(),
            date_created: now,
            last_updated: now,
        };
        let mut fields = body.clone();
        fields.remove("status");
        if let Err(answer) = apply(&mut market, &mut item, &fields, &taken) {
            return answer;
        }
        for picture in &item.pictures {
            market.register(picture);
        }
        let sku = item
            .seller_sku
            .clone()
            .or_else(|| item.variations.iter().find_map(|v| v.seller_sku.clone()));
        let rendered = market.render_item(&base, &item);
        market.items.insert(id.clone(), item);
        let lost = market.lose_create_answers > 0;
        market.lose_create_answers = market.lose_create_answers.saturating_sub(1);
        (id, rendered, sku, lost)
    };
    sim.harness.stats.record_create(sku.as_deref());
    notify::send(&sim, "items", &format!("/items/{id}"));
    if lost {
        // Created, but the caller hears a gateway failure.
        return ml_error(StatusCode::BAD_GATEWAY, "bad_gateway", "Bad Gateway");
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// The CDN: `/pictures/{id}.png` (`.jpg`), also with a size suffix (`{id}-F.png`, as the
/// upload answer names them). Every size serves the same bytes: the simulator does not resize.
async fn picture(State(sim): State<MlSim>, Path(file): Path<String>) -> Response {
    let stem = file
        .rsplit_once('.')
        .map_or(file.as_str(), |(stem, _)| stem);
    let picture = {
        let market = sim.lock();
        market.pictures.get(stem).cloned().or_else(|| {
            let (id, size) = stem.rsplit_once('-')?;
            (size.len() == 1 && size.bytes().all(|b| b.is_ascii_uppercase()))
                .then(|| market.pictures.get(id).cloned())
                .flatten()
        })
    };
    match picture {
        Some(p) => (
            [(header::CONTENT_TYPE, p.format().content_type())],
            p.bytes(),
        )
            .into_response(),
        None => ml_error(StatusCode::NOT_FOUND, "not_found", "picture not found"),
    }
}

/// Size suffixes of the upload answer's `variations` (MercadoLibre lists several sizes).
const UPLOAD_SIZES: [&str; 2] = ["F", "O"];

/// `POST /pictures/items/upload`, multipart with the image as `file`: the picture is taken in
/// (JPEG or PNG, ≤ 10 MB, re-encoded) and answered as MercadoLibre does, `{id, max_size,
/// variations: [{size, url, secure_url}]}`, for an item write to name by `{"id": …}`.
async fn upload_picture(State(sim): State<MlSim>, headers: HeaderMap, body: Bytes) -> Response {
    guard!(sim, headers);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let file = match pictures::multipart_part(content_type, &body, "file") {
        Ok(file) => file,
        Err(e) => {
            return ml_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("a multipart body with the image as \"file\" is required: {e}"),
            );
        }
    };
    let image = match pictures::process(file) {
        Ok(image) => image,
        Err(e) => {
            return ml_error_with(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The picture could not be processed",
                vec![json!({
                    "department": "pictures",
                    "cause_id": 1002,
                    "type": "error",
                    "code": "picture.file.invalid",
                    "references": ["file"],
                    "message": e.to_string(),
                })],
            );
        }
    };
    let base = base_of(&headers);
    let picture = {
        let mut market = sim.lock();
        let picture = market.processed_picture(image);
        market.register(&picture);
        picture
    };
    let size = picture.size();
    let extension = picture.format().extension();
    let variations: Vec<Value> = UPLOAD_SIZES
        .iter()
        .map(|suffix| {
            let url = format!("{base}/pictures/{}-{suffix}.{extension}", picture.id);
            json!({"size": size, "url": url, "secure_url": url})
        })
        .collect();
    (
        StatusCode::CREATED,
        Json(json!({
            "id": picture.id,
            "max_size": size,
            "dominant_color": null,
            "crop": {"y_offset": null, "y_size": null, "x_offset": null, "x_size": null},
            "variations": variations,
        })),
    )
        .into_response()
}

/// `POST /items/{id}/pictures` `{"id": …}`: adds a picture MercadoLibre already serves (an
/// uploaded one) at the end of the item's pictures; one the item has already is left as is.
async fn link_picture(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    guard!(sim, headers);
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let Some(picture_id) = body.get("id").and_then(Value::as_str) else {
        return validation_error(
            "item.pictures.id.invalid",
            "picture.id",
            "the id of an uploaded picture is required",
        );
    };
    let lag = sim.harness.faults.index_lag();
    let answer = {
        let mut market = sim.lock();
        if !market.items.contains_key(&id) {
            return not_found_item(&id);
        }
        let Some(picture) = market.pictures.get(picture_id).cloned() else {
            return validation_error(
                "item.pictures.id.invalid",
                "picture.id",
                &format!("picture {picture_id} does not exist"),
            );
        };
        market.before_write(&id, lag);
        let Some(item) = market.items.get_mut(&id) else {
            return not_found_item(&id);
        };
        if !item.pictures.iter().any(|p| p.id == picture.id) {
            item.pictures.push(picture.clone());
            item.last_updated = now_millis().max(item.last_updated + 1);
        }
        json!({"id": picture.id, "max_size": picture.size(), "quality": ""})
    };
    notify::send(&sim, "items", &format!("/items/{id}"));
    Json(answer).into_response()
}

async fn search_orders(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    guard!(sim, headers);
    let market = sim.lock();
    if param(&params, "seller") != Some(market.user_id.to_string().as_str()) {
        return ml_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "seller does not match the caller",
        );
    }
    let limit = match param(&params, "limit").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=50).contains(&n) => n,
        Some(_) => {
            return ml_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "limit must be between 1 and 50",
            );
        }
    };
    let offset = param(&params, "offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let cap = sim.config.order_offset_cap;
    if offset > cap {
        return ml_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("offset must be at most {cap}"),
        );
    }
    let bound = |name: &str| param(&params, name).map(parse_time);
    let (from, to) = (
        bound("order.date_last_updated.from"),
        bound("order.date_last_updated.to"),
    );
    if matches!(from, Some(None)) || matches!(to, Some(None)) {
        return ml_error(StatusCode::BAD_REQUEST, "bad_request", "invalid date");
    }
    let (from, to) = (from.flatten(), to.flatten());
    let status = param(&params, "order.status");
    // Unknown parameters (`order.last_updated.from`, a common typo) are ignored silently.
    let mut orders: Vec<&super::market::Order> = market
        .orders
        .values()
        .filter(|o| from.is_none_or(|f| o.last_updated >= f))
        .filter(|o| to.is_none_or(|t| o.last_updated <= t))
        .filter(|o| status.is_none_or(|s| o.status == s))
        .collect();
    // `date_asc` sorts by creation date, not by last update.
    orders.sort_by_key(|o| (o.date_created, o.id));
    if param(&params, "sort") == Some("date_desc") {
        orders.reverse();
    }
    let total = orders.len();
    let results: Vec<Value> = orders
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|o| market.render_order(o))
        .collect();
    Json(json!({
        "query": "",
        "display": "complete",
        "paging": {"total": total, "offset": offset, "limit": limit},
        "results": results,
        "sort": {"id": param(&params, "sort").unwrap_or("date_asc"), "name": "Date"},
        "available_sorts": [],
        "filters": [],
        "available_filters": [],
    }))
    .into_response()
}

async fn get_order(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guard!(sim, headers);
    let market = sim.lock();
    match id.parse::<u64>().ok().and_then(|id| market.orders.get(&id)) {
        Some(order) => Json(market.render_order(order)).into_response(),
        None => ml_error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Order {id} not found"),
        ),
    }
}

async fn get_shipment(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guard!(sim, headers);
    let market = sim.lock();
    match id
        .parse::<u64>()
        .ok()
        .and_then(|id| market.shipments.get(&id))
    {
        Some(s) => Json(market.render_shipment(s)).into_response(),
        None => ml_error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Shipment {id} not found"),
        ),
    }
}

/// `PUT /shipments/{id}` `{tracking_number, tracking_method?, status?}`: only for shipments the
/// seller ships (`me1`, `custom`); Mercado Envíos (`me2`) tracking belongs to the carrier.
async fn update_shipment(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    guard!(sim, headers);
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let Some(tracking) = body
        .get("tracking_number")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return validation_error(
            "shipment.tracking_number.required",
            "shipment.tracking_number",
            "tracking_number is required",
        );
    };
    let shipment = {
        let mut market = sim.lock();
        let Some(sid) = id
            .parse::<u64>()
            .ok()
            .filter(|sid| market.shipments.contains_key(sid))
        else {
            return ml_error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("Shipment {id} not found"),
            );
        };
        let now = now_millis();
        let Some(s) = market.shipments.get_mut(&sid) else {
            return ml_error(StatusCode::NOT_FOUND, "not_found", "shipment not found");
        };
        if s.mode == "me2" {
            return validation_error(
                "shipment.mode.not_allowed",
                "shipment.tracking_number",
                "tracking of Mercado Envios (me2) shipments is set by the carrier",
            );
        }
        s.tracking_number = Some(tracking.to_owned());
        if let Some(method) = body.get("tracking_method").and_then(Value::as_str) {
            s.tracking_method = Some(method.to_owned());
        }
        s.status = body
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("shipped")
            .to_owned();
        s.last_updated = now;
        let order_id = s.order_id;
        let snapshot = s.clone();
        if let Some(order) = market.orders.get_mut(&order_id) {
            order.last_updated = now.max(order.last_updated + 1);
        }
        market.render_shipment(&snapshot)
    };
    notify::send(&sim, "shipments", &format!("/shipments/{id}"));
    Json(shipment).into_response()
}

async fn missed_feeds(
    State(sim): State<MlSim>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    guard!(sim, headers);
    let market = sim.lock();
    let topic = param(&params, "topic");
    let offset = param(&params, "offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = param(&params, "limit")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(10);
    // Kept two days.
    let since = now_millis() - 2 * 86_400_000;
    let missed: Vec<Value> = market
        .notifications
        .iter()
        .filter(|n| !n.delivered && n.sent >= since)
        .filter(|n| topic.is_none_or(|t| n.topic == t))
        .map(|n| notify::render(&sim, n))
        .collect();
    let total = missed.len();
    let page: Vec<Value> = missed.into_iter().skip(offset).take(limit).collect();
    Json(json!({"messages": page, "paging": {"total": total, "offset": offset, "limit": limit}}))
        .into_response()
}
