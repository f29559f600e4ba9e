//! The REST v3 routes under `/wp-json/wc/v3` and the media route under `/wp-content/uploads`.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::images::SourceError;

use super::shop::{
    IndexView, OrderEntry, ProductEntry, Secs, Shop, Variation, content_type, parse_date,
};
use super::webhooks::{self, Delivery};
use super::{WooSim, authorised, base_of, now_secs, url_pairs, wc_error};

const V3: &str = "/wp-json/wc/v3";
pub const BATCH_LIMIT: usize = 100;

pub fn routes(sim: WooSim) -> Router {
    Router::new()
        .route(
            &format!("{V3}/products"),
            get(list_products).post(create_product),
        )
        .route(
            &format!("{V3}/products/batch"),
            axum::routing::post(batch_products),
        )
        .route(
            &format!("{V3}/products/{{id}}"),
            get(get_product).put(update_product).delete(delete_product),
        )
        .route(
            &format!("{V3}/products/{{id}}/variations"),
            get(list_variations).post(create_variation),
        )
        .route(
            &format!("{V3}/products/{{id}}/variations/batch"),
            axum::routing::post(batch_variations),
        )
        .route(
            &format!("{V3}/products/{{id}}/variations/{{vid}}"),
            get(get_variation).put(update_variation),
        )
        .route(&format!("{V3}/orders"), get(list_orders).post(create_order))
        .route(
            &format!("{V3}/orders/{{id}}"),
            get(get_order).put(update_order),
        )
        .with_state(sim)
}

/// The media files under `/wp-content/uploads`, served as a web server serves static files
/// (WordPress's PHP is not involved): outside the harness, so never faulted nor counted. A copy
/// of an image by another simulator therefore always gets its bytes.
pub fn media_routes(sim: WooSim) -> Router {
    Router::new()
        .route("/wp-content/uploads/{*path}", get(media))
        .with_state(sim)
}

/// A WooCommerce error: an HTTP answer, or an item of a batch answer.
#[derive(Debug, Clone)]
pub struct WcErr {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub data: Value,
}

impl WcErr {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            data: json!({}),
        }
    }

    fn invalid_id() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "woocommerce_rest_product_invalid_id",
            "Invalid ID.",
        )
    }

    fn param(name: &str, why: &str) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "rest_invalid_param",
            format!("Invalid parameter(s): {name}"),
        );
        e.data = json!({"params": {name: why}});
        e
    }

    fn item(&self, id: u64) -> Value {
        let mut data = self.data.as_object().cloned().unwrap_or_default();
        data.insert("status".into(), json!(self.status.as_u16()));
        json!({"id": id, "error": {"code": self.code, "message": self.message, "data": data}})
    }
}

impl IntoResponse for WcErr {
    fn into_response(self) -> Response {
        wc_error(self.status, self.code, &self.message, self.data)
    }
}

type Answer = Result<Response, WcErr>;

fn guard(sim: &WooSim, headers: &HeaderMap, query: &Option<String>) -> Result<(), WcErr> {
    if authorised(&sim.config, headers, query.as_deref()) {
        Ok(())
    } else {
        Err(WcErr::new(
            StatusCode::UNAUTHORIZED,
            "woocommerce_rest_cannot_view",
            "Sorry, you cannot list resources.",
        ))
    }
}

fn body_object(body: &Bytes) -> Result<Map<String, Value>, WcErr> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(WcErr::new(
            StatusCode::BAD_REQUEST,
            "rest_invalid_json",
            "Invalid JSON body passed.",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct ListParams {
    page: u64,
    per_page: u64,
    offset: Option<u64>,
    orderby: String,
    asc: bool,
    modified_after: Option<Secs>,
    modified_before: Option<Secs>,
    sku: Option<String>,
    status: Option<String>,
    search: Option<String>,
    pairs: Vec<(String, String)>,
}

fn parse_list(
    query: &Option<String>,
    utc_offset: Secs,
    allowed_orderby: &[&str],
) -> Result<ListParams, WcErr> {
    let pairs = query.as_deref().map(url_pairs).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let number = |k: &str, default: u64| -> Result<u64, WcErr> {
        match get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| WcErr::param(k, &format!("{k} is not of type integer."))),
        }
    };
    let per_page = number("per_page", 10)?;
    if !(1..=100).contains(&per_page) {
        return Err(WcErr::param(
            "per_page",
            "per_page must be between 1 (inclusive) and 100 (inclusive)",
        ));
    }
    let page = number("page", 1)?;
    if page < 1 {
        return Err(WcErr::param(
            "page",
            "page must be greater than or equal to 1",
        ));
    }
    let offset = get("offset")
        .map(|v| v.parse::<u64>())
        .transpose()
        .map_err(|_| WcErr::param("offset", "offset is not of type integer."))?;
    let orderby = get("orderby").unwrap_or_else(|| "date".into());
    if !allowed_orderby.contains(&orderby.as_str()) {
        return Err(WcErr::param(
            "orderby",
            &format!("orderby is not one of {}.", allowed_orderby.join(", ")),
        ));
    }
    let asc = match get("order").as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(WcErr::param("order", "order is not one of asc, desc.")),
    };
    let gmt = matches!(get("dates_are_gmt").as_deref(), Some("true" | "1"));
    let date = |k: &str| -> Result<Option<Secs>, WcErr> {
        match get(k) {
            None => Ok(None),
            Some(v) => parse_date(&v, gmt, utc_offset)
                .map(Some)
                .ok_or_else(|| WcErr::param(k, "Invalid date.")),
        }
    };
    Ok(ListParams {
        page,
        per_page,
        offset,
        orderby,
        asc,
        modified_after: date("modified_after")?,
        modified_before: date("modified_before")?,
        sku: get("sku"),
        status: get("status"),
        search: get("search").filter(|s| !s.trim().is_empty()),
        pairs,
    })
}

/// One row a listing sorts and filters.
struct Row {
    id: u64,
    created: Secs,
    modified: Option<Secs>,
    title: String,
}

/// Sorts, filters by modification time and pages `rows`; answers with the WP headers.
fn page_answer(
    params: &ListParams,
    mut rows: Vec<Row>,
    tie_salt: u64,
    path: &str,
    base: &str,
    render: impl Fn(u64) -> Option<Value>,
) -> Response {
    rows.retain(|r| match r.modified {
        None => false,
        Some(m) => {
            params.modified_after.is_none_or(|after| m > after)
                && params.modified_before.is_none_or(|before| m < before)
        }
    });
    match params.orderby.as_str() {
        "id" => rows.sort_by_key(|r| r.id),
        "title" => rows.sort_by(|a, b| a.title.cmp(&b.title).then(a.id.cmp(&b.id))),
        "modified" => rows.sort_by_key(|r| (r.modified, r.id)),
        // Ties on the (second-granularity) date come back in no particular order, and in a
        // different one on every request: the trap of woocommerce #33386.
        _ => rows.sort_by_key(|r| (r.created, mix(r.id ^ tie_salt))),
    }
    if !params.asc {
        rows.reverse();
    }
    let total = rows.len() as u64;
    let pages = total.div_ceil(params.per_page);
    let start = params.offset.unwrap_or((params.page - 1) * params.per_page);
    let items: Vec<Value> = rows
        .iter()
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(params.per_page as usize)
        .filter_map(|r| render(r.id))
        .collect();
    let mut response = Json(Value::Array(items)).into_response();
    let headers = response.headers_mut();
    headers.insert("x-wp-total", HeaderValue::from(total));
    headers.insert("x-wp-totalpages", HeaderValue::from(pages));
    let link = |page: u64| {
        let mut pairs: Vec<String> = params
            .pairs
            .iter()
            .filter(|(k, _)| k != "page" && k != "consumer_key" && k != "consumer_secret")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.push(format!("page={page}"));
        format!("<{base}{path}?{}>", pairs.join("&"))
    };
    let mut links = Vec::new();
    if params.page > 1 && params.offset.is_none() {
        links.push(format!("{}; rel=\"prev\"", link(params.page - 1)));
    }
    if params.page < pages && params.offset.is_none() {
        links.push(format!("{}; rel=\"next\"", link(params.page + 1)));
    }
    if !links.is_empty()
        && let Ok(value) = HeaderValue::from_str(&links.join(", "))
    {
        headers.insert(header::LINK, value);
    }
    response
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn status_matches(filter: Option<&str>, status: &str) -> bool {
    match filter {
        None | Some("any") => status != "trash",
        Some(wanted) => wanted.split(',').any(|w| w == status),
    }
}

async fn list_products(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let base = base_of(&headers);
    let mut shop = sim.lock();
    let params = parse_list(
        &query,
        shop.utc_offset,
        &[
            "date",
            "id",
            "include",
            "title",
            "slug",
            "price",
            "popularity",
            "rating",
            "modified",
        ],
    )?;
    shop.list_requests += 1;
    let salt = mix(shop.list_requests);
    let lag = sim.harness.faults.index_lag();
    let now = Instant::now();
    let by_title = params.orderby == "title";
    let rows: Vec<Row> = shop
        .products
        .iter()
        .filter(|(_, p)| status_matches(params.status.as_deref(), p.status()))
        .filter(|(_, p)| params.sku.as_deref().is_none_or(|s| p.sku() == s))
        .map(|(id, p)| Row {
            id: *id,
            created: p.created,
            modified: p.listed_modified(lag, now),
            // Only a title sort reads it: skip the copy otherwise (listings are hot).
            title: if by_title {
                p.fields
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            } else {
                String::new()
            },
        })
        .collect();
    Ok(page_answer(
        &params,
        rows,
        salt,
        &format!("{V3}/products"),
        &base,
        |id| shop.render_product(&base, id),
    ))
}

async fn get_product(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(id): Path<u64>,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let base = base_of(&headers);
    let shop = sim.lock();
    if let Some(parent) = shop.variation_parent.get(&id) {
        return shop
            .render_variation(&base, *parent, id)
            .map(|v| Json(v).into_response())
            .ok_or_else(WcErr::invalid_id);
    }
    shop.render_product(&base, id)
        .map(|v| Json(v).into_response())
        .ok_or_else(WcErr::invalid_id)
}

// ---------------------------------------------------------------------------------------------
// Product writes
// ---------------------------------------------------------------------------------------------

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn check_price(key: &str, value: &Value) -> Result<(), WcErr> {
    let t =
        text(value).ok_or_else(|| WcErr::param(key, &format!("{key} is not of type string.")))?;
    if t.is_empty() || t.parse::<rust_decimal::Decimal>().is_ok() {
        Ok(())
    } else {
        Err(WcErr::param(key, &format!("{key} is not a valid price.")))
    }
}

fn terms(value: &Value) -> Value {
    let items = value.as_array().cloned().unwrap_or_default();
    Value::Array(
        items
            .into_iter()
            .map(|t| {
                json!({"id": t.get("id").and_then(Value::as_u64).unwrap_or(0),
                       "name": t.get("name").and_then(Value::as_str).unwrap_or(""),
                       "slug": t.get("slug").and_then(Value::as_str).or_else(|| t.get("name").and_then(Value::as_str)).unwrap_or("")})
            })
            .collect(),
    )
}

/// Validates what a product or variation body would do, before anything changes.
fn check_common(shop: &Shop, own_id: Option<u64>, body: &Map<String, Value>) -> Result<(), WcErr> {
    if let Some(sku) = body.get("sku") {
        let sku = text(sku).ok_or_else(|| WcErr::param("sku", "sku is not of type string."))?;
        if let Some(owner) = shop.sku_owner(&sku, own_id) {
            let mut e = WcErr::new(
                StatusCode::BAD_REQUEST,
                "product_invalid_sku",
                "Invalid or duplicated SKU.",
            );
            e.data = json!({"resource_id": owner, "unique_sku": sku.trim()});
            return Err(e);
        }
    }
    for key in ["regular_price", "sale_price"] {
        if let Some(v) = body.get(key) {
            check_price(key, v)?;
        }
    }
    if let Some(v) = body.get("stock_quantity")
        && !(v.is_null() || v.is_i64())
    {
        return Err(WcErr::param(
            "stock_quantity",
            "stock_quantity is not of type integer.",
        ));
    }
    if let Some(status) = body.get("status").and_then(Value::as_str)
        && !["draft", "pending", "private", "publish", "future", "trash"].contains(&status)
    {
        return Err(WcErr::param(
            "status",
            "status is not one of draft, pending, private, publish, future, trash.",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

/// Which body an image list belongs to: a product's `images` or a variation's `image`. They
/// answer the same failures with their own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageOwner {
    Product,
    Variation,
}

impl ImageOwner {
    fn upload_error(self, message: String) -> WcErr {
        let code = match self {
            Self::Product => "woocommerce_product_image_upload_error",
            Self::Variation => "woocommerce_variation_image_upload_error",
        };
        WcErr::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn invalid_image_id(self, id: u64) -> WcErr {
        let code = match self {
            Self::Product => "woocommerce_product_invalid_image_id",
            Self::Variation => "woocommerce_variation_invalid_image_id",
        };
        WcErr::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("#{id} is an invalid image ID."),
        )
    }
}

/// An image object's attachment id; 0 when it has none (an upload by `src`).
fn image_id(image: &Value) -> u64 {
    image.get("id").and_then(Value::as_u64).unwrap_or(0)
}

/// The image URLs a product or variation body asks WordPress to download: the `src` of every
/// image object without an id.
fn sources_of(body: &Map<String, Value>) -> impl Iterator<Item = &str> {
    let gallery = body.get("images").and_then(Value::as_array);
    let single = body.get("image").filter(|i| i.is_object());
    gallery
        .into_iter()
        .flatten()
        .chain(single)
        .filter(|image| image_id(image) == 0)
        .filter_map(|image| image.get("src").and_then(Value::as_str))
}

/// What the shop got from each image URL of one request. Downloaded before the shop is locked:
/// a download takes time, and it may be of this simulator's own media.
#[derive(Debug, Default)]
struct Downloads(HashMap<String, Result<Bytes, String>>);

impl Downloads {
    /// Downloads every source of `bodies`.
    async fn of<'a>(bodies: impl IntoIterator<Item = &'a Map<String, Value>>) -> Self {
        // Collected first: the futures below must not borrow the bodies' iterator.
        let mut sources: Vec<String> = bodies
            .into_iter()
            .flat_map(sources_of)
            .map(str::to_owned)
            .collect();
        sources.sort();
        sources.dedup();
        let mut out = HashMap::with_capacity(sources.len());
        for src in sources {
            let got = crate::images::fetch_source(&src)
                .await
                .map(Bytes::from)
                .map_err(|e| upload_message(&src, &e));
            out.insert(src, got);
        }
        Self(out)
    }

    /// Downloads every source of the object items of batch lists.
    async fn of_items(lists: &[&[Value]]) -> Self {
        let bodies: Vec<&Map<String, Value>> = lists
            .iter()
            .flat_map(|items| items.iter())
            .filter_map(Value::as_object)
            .collect();
        Self::of(bodies).await
    }

    fn get(&self, src: &str) -> Result<Bytes, String> {
        self.0
            .get(src)
            .cloned()
            .unwrap_or_else(|| Err(format!("Error getting remote image {src}.")))
    }
}

/// WordPress's words for a failed sideload (`wc_rest_upload_image_from_url`): a download
/// failure, or a file that is not an allowed image type.
fn upload_message(src: &str, error: &SourceError) -> String {
    let reason = match error {
        SourceError::NotAnImage { .. } => {
            return "Invalid image: Sorry, you are not allowed to upload this file type.".into();
        }
        SourceError::BadUrl { .. } => "A valid URL was not provided.".to_owned(),
        SourceError::Unreachable { .. } => {
            let host = src
                .split_once("://")
                .map_or(src, |(_, rest)| rest)
                .split(['/', '?', '#', ':'])
                .next()
                .unwrap_or("");
            format!("cURL error 6: Could not resolve host: {host}")
        }
        SourceError::Status { status, .. } => StatusCode::from_u16(*status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .map_or_else(|| format!("HTTP {status}"), str::to_owned),
        SourceError::TooLarge { limit, .. } => format!("The file is larger than {limit} bytes."),
        SourceError::Fetch { reason, .. } => reason.clone(),
    };
    format!("Error getting remote image {src}. Error: {reason}")
}

/// The attachments a body's images resolve to: the product's new gallery, or the variation's
/// new image (`Some(None)` clears it); `None` when the body leaves them alone.
#[derive(Debug, Default)]
struct StagedImages {
    gallery: Option<Vec<u64>>,
    image: Option<Option<u64>>,
}

/// Resolves the images of a body in order, as WooCommerce does before it saves anything:
/// `{id}` must name an attachment (its `alt`/`name` are updated), `{src}` is downloaded into a
/// new attachment. The first image that fails fails the whole write; the attachments made for
/// sources before it stay in the media library, attached to nothing, as WordPress leaves them.
fn stage_images(
    shop: &mut Shop,
    owner: ImageOwner,
    body: &Map<String, Value>,
    downloads: &Downloads,
    now: Secs,
) -> Result<StagedImages, WcErr> {
    let mut staged = StagedImages::default();
    match owner {
        ImageOwner::Product => {
            // `null` leaves the gallery alone (PHP's `isset`); empty entries are skipped.
            let Some(list) = body.get("images").and_then(Value::as_array) else {
                return Ok(staged);
            };
            let mut gallery = Vec::with_capacity(list.len());
            for image in list.iter().filter(|i| !is_empty_image(i)) {
                gallery.push(attachment_for(shop, owner, image, downloads, now)?);
            }
            staged.gallery = Some(gallery);
        }
        // As `WC_REST_Product_Variations_Controller::prepare_object_for_database` and
        // `set_variation_image` do: `null` leaves the image alone (PHP's `isset`); an object
        // naming an attachment or a source sets it; anything else clears it (an object naming
        // neither, such as `{}` or `{"id": 0}`, or a value that is not an object). Simplified:
        // a single PUT of most non-objects fails WordPress's schema check first (batch items
        // are not checked against the schema).
        ImageOwner::Variation => match body.get("image") {
            None | Some(Value::Null) => {}
            Some(image) if image_id(image) > 0 || has_src(image) => {
                staged.image = Some(Some(attachment_for(shop, owner, image, downloads, now)?));
            }
            Some(_) => staged.image = Some(None),
        },
    }
    Ok(staged)
}

/// Whether an image object has a `src` (PHP's `isset`: a `null` one is none).
fn has_src(image: &Value) -> bool {
    image.get("src").is_some_and(|src| !src.is_null())
}

fn is_empty_image(image: &Value) -> bool {
    match image {
        Value::Null | Value::Bool(false) => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(list) => list.is_empty(),
        _ => false,
    }
}

/// The attachment one image object names: `{id}` keeps one, updating its `alt`/`name`;
/// `{src}` always makes a new one from what was downloaded, as WordPress sideloads the URL
/// again.
fn attachment_for(
    shop: &mut Shop,
    owner: ImageOwner,
    image: &Value,
    downloads: &Downloads,
    now: Secs,
) -> Result<u64, WcErr> {
    let alt = image.get("alt").and_then(Value::as_str);
    let name = image.get("name").and_then(Value::as_str);
    let id = image_id(image);
    if id > 0 {
        let a = shop
            .attachments
            .get_mut(&id)
            .ok_or_else(|| owner.invalid_image_id(id))?;
        if let Some(alt) = alt {
            alt.clone_into(&mut a.alt);
        }
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            name.clone_into(&mut a.name);
        }
        return Ok(id);
    }
    let Some(src) = image.get("src") else {
        return Err(owner.invalid_image_id(0));
    };
    let src = src.as_str().unwrap_or("");
    let bytes = downloads
        .get(src)
        .map_err(|message| owner.upload_error(message))?;
    // Titled after the file unless a name is given (`wc_rest_set_uploaded_image_as_attachment`).
    let file = src.split(['?', '#']).next().unwrap_or("");
    let title = name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| file.rsplit('/').next().unwrap_or("image"));
    Ok(shop.add_downloaded(title, alt.unwrap_or(""), bytes, now))
}

const PRODUCT_KEYS: &[&str] = &[
    "name",
    "slug",
    "type",
    "status",
    "featured",
    "catalog_visibility",
    "description",
    "short_description",
    "sku",
    "regular_price",
    "sale_price",
    "manage_stock",
    "stock_quantity",
    "backorders",
    "weight",
    "dimensions",
    "global_unique_id",
    "meta_data",
    "menu_order",
];

/// Checks a product body and resolves its images; nothing of the product changes on an error.
fn check_product(
    shop: &mut Shop,
    own_id: Option<u64>,
    body: &Map<String, Value>,
    downloads: &Downloads,
    now: Secs,
) -> Result<StagedImages, WcErr> {
    check_common(shop, own_id, body)?;
    stage_images(shop, ImageOwner::Product, body, downloads, now)
}

/// Updates product `id` with a body: checked, images resolved, then applied.
fn save_product(
    shop: &mut Shop,
    id: u64,
    body: &Map<String, Value>,
    downloads: &Downloads,
    now: Secs,
    lag: std::time::Duration,
) -> Result<(), WcErr> {
    let staged = check_product(shop, Some(id), body, downloads, now)?;
    apply_product(shop, id, body, staged, now, lag);
    Ok(())
}

fn apply_product(
    shop: &mut Shop,
    id: u64,
    body: &Map<String, Value>,
    staged: StagedImages,
    now: Secs,
    lag: std::time::Duration,
) {
    let Some(p) = shop.products.get_mut(&id) else {
        return;
    };
    for key in PRODUCT_KEYS {
        if let Some(v) = body.get(*key) {
            let v = match *key {
                "sku" | "regular_price" | "sale_price" | "weight" | "global_unique_id" => {
                    json!(text(v).unwrap_or_default().trim())
                }
                _ => v.clone(),
            };
            p.fields.insert((*key).to_owned(), v);
        }
    }
    for key in ["categories", "tags", "brands"] {
        if let Some(v) = body.get(key) {
            p.fields.insert(key.to_owned(), terms(v));
        }
    }
    if let Some(Value::Array(attributes)) = body.get("attributes") {
        let normalised: Vec<Value> = attributes
            .iter()
            .map(|a| {
                json!({"id": a.get("id").and_then(Value::as_u64).unwrap_or(0),
                       "name": a.get("name").and_then(Value::as_str).unwrap_or(""),
                       "position": a.get("position").and_then(Value::as_u64).unwrap_or(0),
                       "visible": a.get("visible").and_then(Value::as_bool).unwrap_or(true),
                       "variation": a.get("variation").and_then(Value::as_bool).unwrap_or(false),
                       "options": a.get("options").cloned().unwrap_or(json!([]))})
            })
            .collect();
        p.fields
            .insert("attributes".into(), Value::Array(normalised));
    }
    if let Some(gallery) = staged.gallery {
        p.images = gallery;
    }
    touch(p, now, lag);
}

pub(crate) fn touch(p: &mut ProductEntry, now: Secs, lag: std::time::Duration) {
    let instant = Instant::now();
    let before = p.listed_modified(lag, instant);
    p.modified = now;
    p.index = IndexView {
        written_at: Some(instant),
        before,
    };
}

fn new_product(
    shop: &mut Shop,
    body: &Map<String, Value>,
    downloads: &Downloads,
    now: Secs,
    lag: std::time::Duration,
) -> Result<u64, WcErr> {
    let staged = check_product(shop, None, body, downloads, now)?;
    let id = shop.alloc();
    let mut fields = Map::new();
    for (k, v) in [
        ("name", json!("")),
        ("slug", json!("")),
        ("type", json!("simple")),
        ("status", json!("publish")),
        ("description", json!("")),
        ("short_description", json!("")),
        ("sku", json!("")),
        ("regular_price", json!("")),
        ("sale_price", json!("")),
        ("manage_stock", json!(false)),
        ("stock_quantity", Value::Null),
        ("weight", json!("")),
        ("global_unique_id", json!("")),
        ("categories", json!([])),
        ("tags", json!([])),
        ("brands", json!([])),
        ("attributes", json!([])),
        ("meta_data", json!([])),
    ] {
        fields.insert(k.to_owned(), v);
    }
    shop.products.insert(
        id,
        ProductEntry {
            fields,
            images: Vec::new(),
            variations: Default::default(),
            created: now,
            modified: now,
            index: IndexView::default(),
        },
    );
    apply_product(shop, id, body, staged, now, lag);
    if let Some(p) = shop.products.get_mut(&id) {
        // New: invisible to listings until indexed.
        p.index.before = None;
    }
    Ok(id)
}

/// What a create is counted by: its SKU, or for a product created without one its name and
/// description (the same product sent twice has both the same), so that a repeated create of
/// a SKU-less product shows as a duplicate too.
fn create_identity(p: &ProductEntry) -> String {
    let sku = p.sku().trim();
    if !sku.is_empty() {
        return sku.to_owned();
    }
    let text = |k: &str| p.fields.get(k).and_then(Value::as_str).unwrap_or("");
    format!("(no sku) {} | {}", text("name"), text("description"))
}

fn respond_product(
    sim: &WooSim,
    base: &str,
    id: u64,
    status: StatusCode,
    topic: &str,
    event: &str,
) -> Response {
    let shop = sim.lock();
    let body = shop.render_product(base, id).unwrap_or(Value::Null);
    drop(shop);
    webhooks::send(
        sim,
        Delivery::new(topic, "product", event, id, body.clone()),
    );
    (status, Json(body)).into_response()
}

async fn create_product(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let body = body_object(&body)?;
    let base = base_of(&headers);
    let lag = sim.harness.faults.index_lag();
    let downloads = Downloads::of([&body]).await;
    let id = {
        let mut shop = sim.lock();
        let id = new_product(&mut shop, &body, &downloads, now_secs(), lag)?;
        let identity = shop.products.get(&id).map(create_identity);
        sim.harness.stats.record_create(identity.as_deref());
        id
    };
    Ok(respond_product(
        &sim,
        &base,
        id,
        StatusCode::CREATED,
        "product.created",
        "created",
    ))
}

async fn update_product(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(id): Path<u64>,
    body: Bytes,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let body = body_object(&body)?;
    let base = base_of(&headers);
    let lag = sim.harness.faults.index_lag();
    if !sim.lock().products.contains_key(&id) {
        return Err(WcErr::invalid_id());
    }
    let downloads = Downloads::of([&body]).await;
    {
        let mut shop = sim.lock();
        if !shop.products.contains_key(&id) {
            return Err(WcErr::invalid_id());
        }
        save_product(&mut shop, id, &body, &downloads, now_secs(), lag)?;
    }
    Ok(respond_product(
        &sim,
        &base,
        id,
        StatusCode::OK,
        "product.updated",
        "updated",
    ))
}

fn remove_product(
    sim: &WooSim,
    shop: &mut Shop,
    base: &str,
    id: u64,
    force: bool,
) -> Result<Value, WcErr> {
    let body = shop
        .render_product(base, id)
        .ok_or_else(WcErr::invalid_id)?;
    sim.harness.stats.record_product_delete();
    if force {
        if let Some(p) = shop.products.remove(&id) {
            for vid in p.variations.keys() {
                shop.variation_parent.remove(vid);
            }
        }
    } else if let Some(p) = shop.products.get_mut(&id) {
        p.fields.insert("status".into(), json!("trash"));
    }
    Ok(body)
}

async fn delete_product(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(id): Path<u64>,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let base = base_of(&headers);
    let force = query
        .as_deref()
        .map(url_pairs)
        .unwrap_or_default()
        .iter()
        .any(|(k, v)| k == "force" && (v == "true" || v == "1"));
    let body = {
        let mut shop = sim.lock();
        remove_product(&sim, &mut shop, &base, id, force)?
    };
    webhooks::send(
        &sim,
        Delivery::new(
            "product.deleted",
            "product",
            "deleted",
            id,
            json!({"id": id}),
        ),
    );
    Ok(Json(body).into_response())
}

/// (create, update, delete) items of a batch body.
type BatchLists = (Vec<Value>, Vec<Value>, Vec<Value>);

fn batch_lists(body: &Map<String, Value>) -> Result<BatchLists, WcErr> {
    let list = |k: &str| {
        body.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (create, update, delete) = (list("create"), list("update"), list("delete"));
    if create.len() + update.len() + delete.len() > BATCH_LIMIT {
        return Err(WcErr::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "woocommerce_rest_request_entity_too_large",
            format!("Unable to accept more than {BATCH_LIMIT} items for this request."),
        ));
    }
    Ok((create, update, delete))
}

async fn batch_products(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let body = body_object(&body)?;
    let (create, update, delete) = batch_lists(&body)?;
    let base = base_of(&headers);
    let lag = sim.harness.faults.index_lag();
    let downloads = Downloads::of_items(&[&create, &update]).await;
    let mut deliveries = Vec::new();
    let mut out = Map::new();
    {
        let mut shop = sim.lock();
        let now = now_secs();
        let mut created = Vec::new();
        for item in &create {
            let Some(item) = item.as_object() else {
                created.push(WcErr::param("create", "not an object").item(0));
                continue;
            };
            match new_product(&mut shop, item, &downloads, now, lag) {
                Ok(id) => {
                    let identity = shop.products.get(&id).map(create_identity);
                    sim.harness.stats.record_create(identity.as_deref());
                    let json = shop.render_product(&base, id).unwrap_or(Value::Null);
                    deliveries.push(Delivery::new(
                        "product.created",
                        "product",
                        "created",
                        id,
                        json.clone(),
                    ));
                    created.push(json);
                }
                Err(e) => created.push(e.item(0)),
            }
        }
        let mut updated = Vec::new();
        for item in &update {
            let id = item.get("id").and_then(Value::as_u64).unwrap_or(0);
            let Some(item) = item.as_object().filter(|_| shop.products.contains_key(&id)) else {
                updated.push(WcErr::invalid_id().item(id));
                continue;
            };
            match save_product(&mut shop, id, item, &downloads, now, lag) {
                Ok(()) => {
                    let json = shop.render_product(&base, id).unwrap_or(Value::Null);
                    deliveries.push(Delivery::new(
                        "product.updated",
                        "product",
                        "updated",
                        id,
                        json.clone(),
                    ));
                    updated.push(json);
                }
                Err(e) => updated.push(e.item(id)),
            }
        }
        let mut deleted = Vec::new();
        for item in &delete {
            let id = item.as_u64().unwrap_or(0);
            match remove_product(&sim, &mut shop, &base, id, true) {
                Ok(json) => deleted.push(json),
                Err(e) => deleted.push(e.item(id)),
            }
        }
        if body.contains_key("create") {
            out.insert("create".into(), Value::Array(created));
        }
        if body.contains_key("update") {
            out.insert("update".into(), Value::Array(updated));
        }
        if body.contains_key("delete") {
            out.insert("delete".into(), Value::Array(deleted));
        }
    }
    for d in deliveries {
        webhooks::send(&sim, d);
    }
    Ok(Json(Value::Object(out)).into_response())
}

// ---------------------------------------------------------------------------------------------
// Variations
// ---------------------------------------------------------------------------------------------

const VARIATION_KEYS: &[&str] = &[
    "sku",
    "regular_price",
    "sale_price",
    "manage_stock",
    "stock_quantity",
    "backorders",
    "weight",
    "dimensions",
    "global_unique_id",
    "status",
    "meta_data",
    "menu_order",
    "description",
];

/// Checks a variation body and resolves its image; nothing of the variation changes on an
/// error.
fn check_variation(
    shop: &mut Shop,
    own_id: Option<u64>,
    body: &Map<String, Value>,
    downloads: &Downloads,
    now: Secs,
) -> Result<StagedImages, WcErr> {
    check_common(shop, own_id, body)?;
    stage_images(shop, ImageOwner::Variation, body, downloads, now)
}

/// Updates variation `vid` of `parent` with a body: checked, image resolved, then applied.
fn save_variation(
    shop: &mut Shop,
    parent: u64,
    vid: u64,
    body: &Map<String, Value>,
    downloads: &Downloads,
    now: Secs,
    lag: std::time::Duration,
) -> Result<(), WcErr> {
    let staged = check_variation(shop, Some(vid), body, downloads, now)?;
    apply_variation(shop, parent, vid, body, staged, now, lag);
    Ok(())
}

fn apply_variation(
    shop: &mut Shop,
    parent: u64,
    vid: u64,
    body: &Map<String, Value>,
    staged: StagedImages,
    now: Secs,
    lag: std::time::Duration,
) {
    let Some(p) = shop.products.get_mut(&parent) else {
        return;
    };
    let Some(v) = p.variations.get_mut(&vid) else {
        return;
    };
    for key in VARIATION_KEYS {
        if let Some(value) = body.get(*key) {
            let value = match *key {
                "sku" | "regular_price" | "sale_price" | "weight" | "global_unique_id" => {
                    json!(text(value).unwrap_or_default().trim())
                }
                _ => value.clone(),
            };
            v.fields.insert((*key).to_owned(), value);
        }
    }
    if let Some(Value::Array(attributes)) = body.get("attributes") {
        let normalised: Vec<Value> = attributes
            .iter()
            .map(|a| {
                json!({"id": a.get("id").and_then(Value::as_u64).unwrap_or(0),
                       "name": a.get("name").and_then(Value::as_str).unwrap_or(""),
                       "option": a.get("option").and_then(Value::as_str).unwrap_or("")})
            })
            .collect();
        v.fields
            .insert("attributes".into(), Value::Array(normalised));
    }
    if let Some(image) = staged.image {
        v.image = image;
    }
    v.modified = now;
    // A variation saved through the API saves its parent too here (documented simplification).
    touch(p, now, lag);
}

fn new_variation(
    shop: &mut Shop,
    parent: u64,
    body: &Map<String, Value>,
    downloads: &Downloads,
    now: Secs,
    lag: std::time::Duration,
) -> Result<u64, WcErr> {
    if !shop.products.contains_key(&parent) {
        return Err(WcErr::invalid_id());
    }
    let staged = check_variation(shop, None, body, downloads, now)?;
    let vid = shop.alloc();
    let mut fields = Map::new();
    for (k, v) in [
        ("sku", json!("")),
        ("regular_price", json!("")),
        ("sale_price", json!("")),
        ("manage_stock", json!(false)),
        ("stock_quantity", Value::Null),
        ("weight", json!("")),
        ("global_unique_id", json!("")),
        ("status", json!("publish")),
        ("attributes", json!([])),
        ("meta_data", json!([])),
    ] {
        fields.insert(k.to_owned(), v);
    }
    if let Some(p) = shop.products.get_mut(&parent) {
        p.variations.insert(
            vid,
            Variation {
                fields,
                image: None,
                created: now,
                modified: now,
            },
        );
    }
    shop.variation_parent.insert(vid, parent);
    apply_variation(shop, parent, vid, body, staged, now, lag);
    Ok(vid)
}

fn invalid_variation_id() -> WcErr {
    WcErr::new(
        StatusCode::NOT_FOUND,
        "woocommerce_rest_product_variation_invalid_id",
        "Invalid ID.",
    )
}

async fn list_variations(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(id): Path<u64>,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let base = base_of(&headers);
    let mut shop = sim.lock();
    let mut params = parse_list(
        &query,
        shop.utc_offset,
        &[
            "date",
            "id",
            "include",
            "title",
            "slug",
            "menu_order",
            "modified",
        ],
    )?;
    if shop.variation_paging_ignored {
        params.page = 1;
        params.offset = None;
    }
    shop.list_requests += 1;
    let salt = mix(shop.list_requests);
    let p = shop.products.get(&id).ok_or_else(WcErr::invalid_id)?;
    let rows: Vec<Row> = p
        .variations
        .iter()
        .filter(|(_, v)| {
            params
                .sku
                .as_deref()
                .is_none_or(|s| v.fields.get("sku").and_then(Value::as_str) == Some(s))
        })
        .map(|(vid, v)| Row {
            id: *vid,
            created: v.created,
            modified: Some(v.modified),
            title: String::new(),
        })
        .collect();
    Ok(page_answer(
        &params,
        rows,
        salt,
        &format!("{V3}/products/{id}/variations"),
        &base,
        |vid| shop.render_variation(&base, id, vid),
    ))
}

async fn get_variation(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path((id, vid)): Path<(u64, u64)>,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let base = base_of(&headers);
    let shop = sim.lock();
    shop.render_variation(&base, id, vid)
        .map(|v| Json(v).into_response())
        .ok_or_else(WcErr::invalid_id)
}

async fn create_variation(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(id): Path<u64>,
    body: Bytes,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let body = body_object(&body)?;
    let base = base_of(&headers);
    let lag = sim.harness.faults.index_lag();
    if !sim.lock().products.contains_key(&id) {
        return Err(WcErr::invalid_id());
    }
    let downloads = Downloads::of([&body]).await;
    let mut shop = sim.lock();
    let vid = new_variation(&mut shop, id, &body, &downloads, now_secs(), lag)?;
    let json = shop.render_variation(&base, id, vid).unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

async fn update_variation(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path((id, vid)): Path<(u64, u64)>,
    body: Bytes,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let body = body_object(&body)?;
    let base = base_of(&headers);
    let lag = sim.harness.faults.index_lag();
    let exists = |shop: &Shop| {
        shop.products
            .get(&id)
            .is_some_and(|p| p.variations.contains_key(&vid))
    };
    if !exists(&sim.lock()) {
        return Err(invalid_variation_id());
    }
    let downloads = Downloads::of([&body]).await;
    let mut shop = sim.lock();
    if !exists(&shop) {
        return Err(invalid_variation_id());
    }
    save_variation(&mut shop, id, vid, &body, &downloads, now_secs(), lag)?;
    let json = shop.render_variation(&base, id, vid).unwrap_or(Value::Null);
    Ok(Json(json).into_response())
}

async fn batch_variations(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(id): Path<u64>,
    body: Bytes,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let body = body_object(&body)?;
    let (create, update, delete) = batch_lists(&body)?;
    let base = base_of(&headers);
    let lag = sim.harness.faults.index_lag();
    if !sim.lock().products.contains_key(&id) {
        return Err(WcErr::invalid_id());
    }
    let downloads = Downloads::of_items(&[&create, &update]).await;
    let mut shop = sim.lock();
    if !shop.products.contains_key(&id) {
        return Err(WcErr::invalid_id());
    }
    let now = now_secs();
    let mut out = Map::new();
    let mut created = Vec::new();
    for item in &create {
        let item = item.as_object().cloned().unwrap_or_default();
        match new_variation(&mut shop, id, &item, &downloads, now, lag) {
            Ok(vid) => created.push(shop.render_variation(&base, id, vid).unwrap_or(Value::Null)),
            Err(e) => created.push(e.item(0)),
        }
    }
    let mut updated = Vec::new();
    for item in &update {
        let vid = item.get("id").and_then(Value::as_u64).unwrap_or(0);
        let exists = shop
            .products
            .get(&id)
            .is_some_and(|p| p.variations.contains_key(&vid));
        let item = item.as_object().cloned().unwrap_or_default();
        if !exists {
            updated.push(invalid_variation_id().item(vid));
            continue;
        }
        match save_variation(&mut shop, id, vid, &item, &downloads, now, lag) {
            Ok(()) => {
                updated.push(shop.render_variation(&base, id, vid).unwrap_or(Value::Null));
            }
            Err(e) => updated.push(e.item(vid)),
        }
    }
    let mut deleted = Vec::new();
    for item in &delete {
        let vid = item.as_u64().unwrap_or(0);
        let json = shop.render_variation(&base, id, vid);
        match json {
            Some(json) => {
                if let Some(p) = shop.products.get_mut(&id) {
                    p.variations.remove(&vid);
                }
                shop.variation_parent.remove(&vid);
                deleted.push(json);
            }
            None => deleted.push(WcErr::invalid_id().item(vid)),
        }
    }
    if body.contains_key("create") {
        out.insert("create".into(), Value::Array(created));
    }
    if body.contains_key("update") {
        out.insert("update".into(), Value::Array(updated));
    }
    if body.contains_key("delete") {
        out.insert("delete".into(), Value::Array(deleted));
    }
    Ok(Json(Value::Object(out)).into_response())
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

async fn list_orders(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let base = base_of(&headers);
    let mut shop = sim.lock();
    let params = parse_list(
        &query,
        shop.utc_offset,
        &["date", "id", "include", "title", "slug", "modified"],
    )?;
    shop.list_requests += 1;
    let salt = mix(shop.list_requests);
    let lag = sim.harness.faults.index_lag();
    let now = Instant::now();
    let rows: Vec<Row> = shop
        .orders
        .iter()
        .filter(|(_, o)| {
            let status = o.fields.get("status").and_then(Value::as_str).unwrap_or("");
            params
                .status
                .as_deref()
                .is_none_or(|s| s == "any" || s.split(',').any(|w| w == status))
        })
        .filter(|(id, o)| {
            params
                .search
                .as_deref()
                .is_none_or(|term| order_matches_search(**id, &o.fields, term))
        })
        .map(|(id, o)| Row {
            id: *id,
            created: o.created,
            modified: match o.index.written_at {
                Some(at) if now.duration_since(at) < lag => o.index.before,
                _ => Some(o.modified),
            },
            title: String::new(),
        })
        .collect();
    Ok(page_answer(
        &params,
        rows,
        salt,
        &format!("{V3}/orders"),
        &base,
        |id| shop.render_order(id),
    ))
}

/// What WooCommerce's order search reads: the order id, its number (sequential-number plugins
/// hook their number into search), billing names and email, and line item names. Meta data is
/// not searched.
fn order_matches_search(id: u64, fields: &Map<String, Value>, term: &str) -> bool {
    let term = term.trim();
    if id.to_string() == term || fields.get("number").and_then(Value::as_str) == Some(term) {
        return true;
    }
    let needle = term.to_lowercase();
    let contains = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| s.to_lowercase().contains(&needle))
    };
    let billing = fields.get("billing");
    ["first_name", "last_name", "email"]
        .iter()
        .any(|k| contains(billing.and_then(|b| b.get(*k))))
        || fields
            .get("line_items")
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(|l| contains(l.get("name"))))
}

async fn get_order(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(id): Path<u64>,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let shop = sim.lock();
    shop.render_order(id)
        .map(|v| Json(v).into_response())
        .ok_or_else(|| {
            WcErr::new(
                StatusCode::NOT_FOUND,
                "woocommerce_rest_shop_order_invalid_id",
                "Invalid ID.",
            )
        })
}

const ORDER_STATUSES: &[&str] = &[
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "trash",
];

fn check_order(body: &Map<String, Value>) -> Result<(), WcErr> {
    if let Some(status) = body.get("status").and_then(Value::as_str)
        && !ORDER_STATUSES.contains(&status)
    {
        return Err(WcErr::param(
            "status",
            "status is not one of pending, processing, on-hold, completed, cancelled, refunded, failed and trash.",
        ));
    }
    Ok(())
}

/// Applies status, notes, addresses, shipping lines and meta data (merged by key).
fn apply_order(o: &mut OrderEntry, body: &Map<String, Value>, now: Secs, lag: std::time::Duration) {
    for key in [
        "status",
        "customer_note",
        "billing",
        "shipping",
        "shipping_lines",
        "currency",
        "payment_method",
        "payment_method_title",
        "number",
    ] {
        if let Some(v) = body.get(key) {
            o.fields.insert(key.to_owned(), v.clone());
        }
    }
    if body.get("set_paid").and_then(Value::as_bool) == Some(true) {
        o.fields.insert("date_paid_secs".into(), json!(now));
    }
    if let Some(Value::Array(items)) = body.get("meta_data") {
        let mut meta = o
            .fields
            .get("meta_data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for item in items {
            let key = item.get("key").and_then(Value::as_str).unwrap_or("");
            match meta.iter_mut().find(|m| m.get("key").and_then(Value::as_str) == Some(key)) {
                Some(existing) => existing["value"] = item.get("value").cloned().unwrap_or(Value::Null),
                None => meta.push(json!({"id": meta.len() + 1, "key": key, "value": item.get("value").cloned().unwrap_or(Value::Null)})),
            }
        }
        o.fields.insert("meta_data".into(), Value::Array(meta));
    }
    let instant = Instant::now();
    let before = match o.index.written_at {
        Some(at) if instant.duration_since(at) < lag => o.index.before,
        _ => Some(o.modified),
    };
    o.modified = now;
    o.index = IndexView {
        written_at: Some(instant),
        before,
    };
}

async fn create_order(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let body = body_object(&body)?;
    check_order(&body)?;
    let lag = sim.harness.faults.index_lag();
    let (id, json) = {
        let mut shop = sim.lock();
        let now = now_secs();
        let id = shop.alloc();
        shop.next_order_number += 1;
        let number = shop.next_order_number.to_string();
        let mut lines = Vec::new();
        let mut sold: Vec<(u64, u64, i64)> = Vec::new();
        let mut subtotal = rust_decimal::Decimal::ZERO;
        for (n, item) in body
            .get("line_items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let mut product_id = item.get("product_id").and_then(Value::as_u64).unwrap_or(0);
            let mut variation_id = item
                .get("variation_id")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let mut sku = item
                .get("sku")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if product_id == 0 && !sku.is_empty() {
                (product_id, variation_id) = shop.ids_for_sku(&sku);
            }
            if sku.is_empty() {
                let owner = if variation_id > 0 {
                    variation_id
                } else {
                    product_id
                };
                let parent = shop.variation_parent.get(&owner).copied().unwrap_or(owner);
                if let Some(p) = shop.products.get(&parent) {
                    sku = if owner == parent {
                        p.sku().to_owned()
                    } else {
                        p.variations
                            .get(&owner)
                            .and_then(|v| v.fields.get("sku"))
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned()
                    };
                }
            }
            let quantity = item.get("quantity").and_then(Value::as_i64).unwrap_or(1);
            sold.push((product_id, variation_id, quantity));
            let total: rust_decimal::Decimal = item
                .get("total")
                .and_then(text)
                .and_then(|t| t.parse().ok())
                .unwrap_or_default();
            subtotal += total;
            let price = if quantity == 0 {
                rust_decimal::Decimal::ZERO
            } else {
                total / rust_decimal::Decimal::from(quantity)
            };
            lines.push(json!({
                "id": id * 100 + n as u64, "name": item.get("name").and_then(Value::as_str).unwrap_or(""),
                "product_id": product_id, "variation_id": variation_id, "quantity": quantity,
                "tax_class": "", "subtotal": total.to_string(), "subtotal_tax": "0.00",
                "total": total.to_string(), "total_tax": "0.00", "taxes": [], "meta_data": [],
                "sku": sku, "price": price.to_string().parse::<f64>().unwrap_or(0.0),
            }));
        }
        // WooCommerce reduces stock when an order is paid or enters processing, completed or
        // on-hold (wc_maybe_reduce_stock_levels), also for orders made through the API — a
        // sync tool that copies an order here must give that stock back. The product's
        // `date_modified` does not move (woocommerce #40060).
        let status = body
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("pending");
        if body.get("set_paid").and_then(Value::as_bool) == Some(true)
            || matches!(status, "processing" | "completed" | "on-hold")
        {
            for (product_id, variation_id, quantity) in &sold {
                let Some(p) = shop.products.get_mut(product_id) else {
                    continue;
                };
                let fields = if *variation_id > 0 {
                    match p.variations.get_mut(variation_id) {
                        Some(v) => &mut v.fields,
                        None => continue,
                    }
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
            }
        }
        let shipping: rust_decimal::Decimal = body
            .get("shipping_lines")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|s| s.get("total").and_then(text))
                    .filter_map(|t| t.parse::<rust_decimal::Decimal>().ok())
                    .sum()
            })
            .unwrap_or_default();
        let mut fields = Map::new();
        for (k, v) in [
            ("parent_id", json!(0)),
            ("number", json!(number)),
            ("order_key", json!(format!("wc_order_{id}"))),
            ("created_via", json!("rest-api")),
            ("status", json!("pending")),
            ("currency", json!("USD")),
            ("discount_total", json!("0.00")),
            ("shipping_total", json!(shipping.to_string())),
            ("total_tax", json!("0.00")),
            ("total", json!((subtotal + shipping).to_string())),
            ("customer_id", json!(0)),
            ("customer_note", json!("")),
            ("billing", json!({})),
            ("shipping", json!({})),
            ("payment_method", json!("")),
            ("payment_method_title", json!("")),
            ("date_paid_secs", Value::Null),
            ("date_created_secs", json!(now)),
            ("line_items", Value::Array(lines)),
            ("shipping_lines", json!([])),
            ("tax_lines", json!([])),
            ("meta_data", json!([])),
        ] {
            fields.insert(k.to_owned(), v);
        }
        let mut entry = OrderEntry {
            fields,
            created: now,
            modified: now,
            index: IndexView::default(),
        };
        apply_order(&mut entry, &body, now, lag);
        entry.index.before = None;
        shop.orders.insert(id, entry);
        (id, shop.render_order(id).unwrap_or(Value::Null))
    };
    webhooks::send(
        &sim,
        Delivery::new("order.created", "order", "created", id, json.clone()),
    );
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

async fn update_order(
    State(sim): State<WooSim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(id): Path<u64>,
    body: Bytes,
) -> Answer {
    guard(&sim, &headers, &query)?;
    let body = body_object(&body)?;
    check_order(&body)?;
    let lag = sim.harness.faults.index_lag();
    let json = {
        let mut shop = sim.lock();
        let o = shop.orders.get_mut(&id).ok_or_else(|| {
            WcErr::new(
                StatusCode::NOT_FOUND,
                "woocommerce_rest_shop_order_invalid_id",
                "Invalid ID.",
            )
        })?;
        apply_order(o, &body, now_secs(), lag);
        shop.render_order(id).unwrap_or(Value::Null)
    };
    webhooks::send(
        &sim,
        Delivery::new("order.updated", "order", "updated", id, json.clone()),
    );
    Ok(Json(json).into_response())
}

// ---------------------------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------------------------

async fn media(State(sim): State<WooSim>, Path(path): Path<String>) -> Response {
    let file = path.rsplit('/').next().unwrap_or("");
    let named = file
        .strip_prefix("tm-")
        .and_then(|f| f.split_once('.'))
        .and_then(|(n, ext)| Some((n.parse::<u64>().ok()?, ext)));
    let found = named.and_then(|(id, ext)| {
        let shop = sim.lock();
        let a = shop.attachments.get(&id)?;
        (a.file.extension() == ext).then(|| a.file.clone())
    });
    match found {
        Some(file) => (
            [(header::CONTENT_TYPE, content_type(file.extension()))],
            file.bytes(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
