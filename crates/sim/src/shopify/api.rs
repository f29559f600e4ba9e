//! `POST /admin/api/{version}/graphql.json`: auth, cost and bucket, root fields, mutations.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::graphql::{self, Ctx, Fld, MAX_COST, MUTATION_COST};
use super::shop::{
    LOCATION_GID, Shop, SimMedia, SimProduct, SimVariant, gid, iso, order_matches, parse_gid,
    parse_query, product_matches,
};
use super::{ShopifySim, admin, lock};

pub(super) fn routes(sim: ShopifySim) -> Router {
    Router::new()
        .route("/admin/api/{version}/graphql.json", post(graphql_endpoint))
        .with_state(sim)
}

async fn graphql_endpoint(
    State(sim): State<ShopifySim>,
    Path(_version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok());
    if token != Some(sim.config.access_token.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)" })),
        )
            .into_response();
    }
    let mut response = Json(scripted(&sim, &body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&sim.config.api_version) {
        response.headers_mut().insert("x-shopify-api-version", v);
    }
    response
}

/// Runs `execute` unless a scripted failure answers instead (see `ShopifySim::fail_after`).
fn scripted(sim: &ShopifySim, body: &[u8]) -> Value {
    let internal = || json!({ "errors": [error("Internal error. Looks like something went wrong on our end.", "INTERNAL_SERVER_ERROR")] });
    {
        let mut script = lock(&sim.scripted);
        if let Some(s) = script.as_mut()
            && s.armed
        {
            if s.count == 0 {
                *script = None;
            } else {
                s.count -= 1;
                return internal();
            }
        }
    }
    let mut answer = execute(sim, body);
    if sim
        .stuck_media_paging
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        stick_media_paging(&mut answer, body);
    }
    let mut script = lock(&sim.scripted);
    if let Some(s) = script.as_mut()
        && !s.armed
        && String::from_utf8_lossy(body).contains(s.trigger.as_str())
    {
        s.armed = true;
        if s.including_trigger {
            return internal();
        }
    }
    answer
}

/// A broken platform (see `ShopifySim::set_stuck_media_paging`): every media connection claims
/// a next page, and a media page of one product repeats the request's cursor with no nodes.
fn stick_media_paging(answer: &mut Value, body: &[u8]) {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if let Some(info) = m.get_mut("media").and_then(|x| x.get_mut("pageInfo")) {
                    info["hasNextPage"] = json!(true);
                    if info["endCursor"].is_null() {
                        info["endCursor"] = json!("stuck");
                    }
                }
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(answer);
    let after = serde_json::from_slice::<Value>(body)
        .ok()
        .map(|r| r["variables"]["after"].clone())
        .unwrap_or(Value::Null);
    if let Some(media) = answer.pointer_mut("/data/product/media")
        && media.is_object()
    {
        media["nodes"] = json!([]);
        media["pageInfo"]["endCursor"] = after;
    }
}

fn error(message: &str, code: &str) -> Value {
    json!({ "message": message, "extensions": { "code": code } })
}

fn execute(sim: &ShopifySim, body: &[u8]) -> Value {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return json!({ "errors": [error(&format!("Invalid JSON: {e}"), "BAD_REQUEST")] }),
    };
    let Some(text) = request["query"].as_str() else {
        return json!({ "errors": [error("Parameter Missing or Invalid", "BAD_REQUEST")] });
    };
    let doc = match graphql_parser::query::parse_query::<String>(text) {
        Ok(d) => d,
        Err(e) => return json!({ "errors": [error(&e.to_string(), "PARSE_ERROR")] }),
    };
    let vars = request["variables"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut op = match graphql::operation(&doc, request["operationName"].as_str(), vars) {
        Ok(op) => op,
        Err(e) => return json!({ "errors": [error(&e, "BAD_REQUEST")] }),
    };
    let requested = if op.is_mutation {
        let roots = op.selection.items.len() as u64;
        match op.ctx.requested_cost(op.selection) {
            Ok(c) => roots * MUTATION_COST + c.saturating_sub(roots),
            Err(e) => return json!({ "errors": [error(&e, "BAD_REQUEST")] }),
        }
    } else {
        match op.ctx.requested_cost(op.selection) {
            Ok(c) => c,
            Err(e) => return json!({ "errors": [error(&e, "BAD_REQUEST")] }),
        }
    };
    if requested > MAX_COST {
        return json!({ "errors": [{
            "message": format!("Query cost is {requested}, which exceeds the single query max cost limit ({MAX_COST})."),
            "extensions": { "code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_COST } }] });
    }
    let debited = lock(&sim.bucket).try_debit(requested as f64);
    if !debited {
        sim.harness.stats.record_throttled();
        let status = lock(&sim.bucket).status();
        return json!({
            "errors": [{ "message": "Throttled", "extensions": { "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits" } }],
            "extensions": { "cost": { "requestedQueryCost": requested, "actualQueryCost": null,
                "throttleStatus": status } },
        });
    }
    let result = if op.is_mutation {
        run_mutations(sim, &mut op.ctx, op.selection)
    } else {
        run_query(sim, &mut op.ctx, op.selection)
    };
    let actual = if op.is_mutation {
        requested
    } else {
        op.ctx.actual.min(requested)
    };
    let status = {
        let mut bucket = lock(&sim.bucket);
        bucket.refund((requested - actual) as f64);
        bucket.status()
    };
    let cost = json!({ "requestedQueryCost": requested, "actualQueryCost": actual,
        "throttleStatus": status });
    match result {
        Ok(data) => json!({ "data": data, "extensions": { "cost": cost } }),
        Err(e) => json!({ "errors": [error(&e, "BAD_REQUEST")], "extensions": { "cost": cost } }),
    }
}

fn root_fields<'a>(sel: &'a graphql::Sel<'a>) -> Vec<&'a Fld<'a>> {
    sel.items
        .iter()
        .filter_map(|i| match i {
            graphql_parser::query::Selection::Field(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn run_query<'a>(
    sim: &ShopifySim,
    ctx: &mut Ctx<'a>,
    sel: &'a graphql::Sel<'a>,
) -> Result<Value, String> {
    let mut data = Map::new();
    for f in root_fields(sel) {
        let args = ctx.args(f);
        let value = match f.name.as_str() {
            "currentBulkOperation" => super::bulk::current(sim),
            "node" => super::bulk::node(sim, args.get("id").and_then(Value::as_str).unwrap_or("")),
            _ => {
                let shop = sim.lock();
                resolve_root(&shop, f.name.as_str(), &args)?
            }
        };
        let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
        data.insert(key, project_root(ctx, f, value)?);
    }
    Ok(Value::Object(data))
}

/// Projects a root field's resolved `value` onto `f`'s selection.
fn project_root<'a>(ctx: &mut Ctx<'a>, f: &'a Fld<'a>, value: Value) -> Result<Value, String> {
    let mut holder = Map::new();
    holder.insert(f.name.clone(), value);
    let projected = ctx.project(&Value::Object(holder), &single(f))?;
    Ok(match projected {
        Value::Object(mut m) => m.remove(&f.name).unwrap_or(Value::Null),
        _ => Value::Null,
    })
}

/// A selection set holding only `f` (without its alias, so the holder's key matches).
fn single<'a>(f: &Fld<'a>) -> graphql::Sel<'a> {
    let mut copy = f.clone();
    copy.alias = None;
    graphql_parser::query::SelectionSet {
        span: (f.position, f.position),
        items: vec![graphql_parser::query::Selection::Field(copy)],
    }
}

/// Keyset cursor of a product in `updatedAt` (or id) order.
fn key_cursor(value: i64, id: u64) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("{{\"last_id\":{id},\"last_value\":{value}}}"))
}

fn decode_key(cursor: &str) -> Result<(i64, u64), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .map_err(|_| "Invalid cursor".to_owned())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| "Invalid cursor".to_owned())?;
    match (v["last_value"].as_i64(), v["last_id"].as_u64()) {
        (Some(value), Some(id)) => Ok((value, id)),
        _ => Err("Invalid cursor".to_owned()),
    }
}

fn first_of(args: &Map<String, Value>) -> usize {
    args.get("first")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}

/// The keyed items after `after`, sorted, at most `first + 1` of them.
fn keyset<T>(
    mut items: Vec<(i64, u64, T)>,
    args: &Map<String, Value>,
    node: impl Fn(&T) -> Value,
) -> Result<Value, String> {
    let reverse = args.get("reverse").and_then(Value::as_bool) == Some(true);
    let after = match args.get("after").and_then(Value::as_str) {
        Some(c) => Some(decode_key(c)?),
        None => None,
    };
    // Only the items past the cursor, and of those only the first `first + 1` are sorted:
    // a page costs O(n), not O(n log n), over a large catalogue.
    items.retain(|(v, id, _)| {
        after.is_none_or(|a| {
            if reverse {
                (*v, *id) < a
            } else {
                (*v, *id) > a
            }
        })
    });
    let order = |a: &(i64, u64, T), b: &(i64, u64, T)| {
        let ord = (a.0, a.1).cmp(&(b.0, b.1));
        if reverse { ord.reverse() } else { ord }
    };
    let take = first_of(args) + 1;
    if items.len() > take {
        items.select_nth_unstable_by(take - 1, order);
        items.truncate(take);
    }
    items.sort_unstable_by(order);
    let page = items
        .iter()
        .map(|(v, id, t)| (key_cursor(*v, *id), node(t)))
        .collect();
    Ok(graphql::page(page))
}

fn resolve_root(shop: &Shop, name: &str, args: &Map<String, Value>) -> Result<Value, String> {
    let query = args.get("query").and_then(Value::as_str).unwrap_or("");
    let terms = parse_query(query);
    let id_arg = |kind: &str| {
        args.get("id")
            .and_then(Value::as_str)
            .and_then(|t| parse_gid(kind, t))
    };
    Ok(match name {
        "products" => {
            let by_id = args.get("sortKey").and_then(Value::as_str) == Some("ID");
            let items = shop
                .searchable()
                .into_iter()
                .filter(|p| product_matches(p, &terms))
                .map(|p| (if by_id { 0 } else { p.updated_at }, p.id, p))
                .collect();
            keyset(items, args, |p: &&SimProduct| p.node())?
        }
        "productsCount" => {
            let n = shop
                .searchable()
                .into_iter()
                .filter(|p| product_matches(p, &terms))
                .count() as u64;
            let limit = match args.get("limit") {
                Some(Value::Null) => None,
                Some(v) => v.as_u64(),
                None => Some(10_000),
            };
            match limit {
                Some(l) if n > l => json!({ "count": l, "precision": "AT_LEAST" }),
                _ => json!({ "count": n, "precision": "EXACT" }),
            }
        }
        "product" => id_arg("Product")
            .and_then(|id| shop.products.get(&id))
            .map_or(Value::Null, SimProduct::node),
        "productByHandle" => {
            let handle = args.get("handle").and_then(Value::as_str).unwrap_or("");
            shop.products
                .values()
                .find(|p| p.handle == handle)
                .map_or(Value::Null, SimProduct::node)
        }
        "productVariants" => {
            let mut items = Vec::new();
            for p in shop.searchable() {
                for v in &p.variants {
                    let ok = terms.iter().all(|t| match t.field.as_str() {
                        "sku" => v.sku.as_deref() == Some(t.value.as_str()),
                        "product_id" => t.value == p.id.to_string(),
                        _ => true,
                    });
                    if ok {
                        items.push((0, v.id, v.node(p.id)));
                    }
                }
            }
            keyset(items, args, Clone::clone)?
        }
        "inventoryItem" => id_arg("InventoryItem")
            .and_then(|item| shop.variant_by_inventory_item(item))
            .map_or(Value::Null, |(p, v)| {
                json!({ "__typename": "InventoryItem", "id": gid("InventoryItem", v.inventory_item_id),
                        "variant": v.node(p.id) })
            }),
        "location" => json!({ "__typename": "Location", "id": LOCATION_GID }),
        "nodes" => {
            let ids = args
                .get("ids")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let nodes: Vec<Value> = ids
                .iter()
                .map(|i| {
                    let text = i.as_str().unwrap_or("");
                    if let Some(item) = parse_gid("InventoryItem", text) {
                        shop.variant_by_inventory_item(item).map_or(Value::Null, |(_, v)| {
                            json!({ "__typename": "InventoryItem", "id": text,
                                "inventoryLevel": { "__typename": "InventoryLevel",
                                "quantities": [{ "name": "available", "quantity": v.available }] } })
                        })
                    } else if let Some(id) = parse_gid("Product", text) {
                        shop.products.get(&id).map_or(Value::Null, SimProduct::node)
                    } else {
                        Value::Null
                    }
                })
                .collect();
            Value::Array(nodes)
        }
        "orders" => {
            let items = shop
                .orders
                .values()
                .filter(|o| order_matches(o, &terms))
                .map(|o| (o.updated_at, o.id, o.node.clone()))
                .collect();
            keyset(items, args, Clone::clone)?
        }
        "order" => id_arg("Order")
            .and_then(|id| shop.orders.get(&id))
            .map_or(Value::Null, |o| o.node.clone()),
        other => return Err(format!("Field '{other}' doesn't exist on type 'QueryRoot'")),
    })
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

fn user_error(field: &[&str], message: &str, code: &str) -> Value {
    json!({ "field": field, "message": message, "code": code })
}

fn run_mutations<'a>(
    sim: &ShopifySim,
    ctx: &mut Ctx<'a>,
    sel: &'a graphql::Sel<'a>,
) -> Result<Value, String> {
    let mut data = Map::new();
    for f in root_fields(sel) {
        let args = ctx.args(f);
        let value = match f.name.as_str() {
            "productSet" => product_set(sim, &args),
            "productVariantsBulkUpdate" => variants_bulk_update(sim, &args),
            "inventoryAdjustQuantities" => inventory_adjust(sim, &args),
            "fileUpdate" => file_update(sim, &args),
            "bulkOperationRunQuery" => super::bulk::run(sim, &args),
            other => return Err(format!("Field '{other}' doesn't exist on type 'Mutation'")),
        };
        let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
        data.insert(key, project_root(ctx, f, value)?);
    }
    Ok(Value::Object(data))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn product_set(sim: &ShopifySim, args: &Map<String, Value>) -> Value {
    let input = args.get("input").cloned().unwrap_or(Value::Null);
    let variants_in = input.get("variants").and_then(Value::as_array).cloned();
    if variants_in.as_ref().is_some_and(|v| v.len() > 250) {
        return json!({ "product": null, "userErrors": [user_error(&["input", "variants"],
            "Input array exceeds the maximum of 250 items", "INVALID_INPUT")] });
    }
    let lag = sim.harness.faults.index_lag();
    let mut shop = sim.lock();
    let existing = match text(&input, "id") {
        Some(g) => match parse_gid("Product", &g).filter(|id| shop.products.contains_key(id)) {
            Some(id) => Some(id),
            None => {
                return json!({ "product": null, "userErrors": [user_error(&["input", "id"],
                    "Product does not exist", "PRODUCT_DOES_NOT_EXIST")] });
            }
        },
        None => None,
    };
    if existing.is_none()
        && let Some(h) = text(&input, "handle")
        && shop.products.values().any(|p| p.handle == h)
    {
        return json!({ "product": null, "userErrors": [user_error(&["input", "handle"],
            &format!("Handle '{h}' has already been taken"), "TAKEN")] });
    }
    for (i, v) in variants_in.iter().flatten().enumerate() {
        if let Some(p) = v.get("price").and_then(Value::as_str)
            && p.parse::<f64>().map_or(true, |x| x < 0.0)
        {
            return json!({ "product": null, "userErrors": [user_error(
                &["input", "variants", &i.to_string(), "price"],
                "Price must be greater than or equal to 0", "GREATER_THAN_OR_EQUAL_TO")] });
        }
    }
    let now = admin::now();
    let id = match existing {
        Some(id) => id,
        None => {
            let id = shop.next_id();
            let first_sku = variants_in
                .as_ref()
                .and_then(|v| v.first())
                .and_then(|v| text(v, "sku"));
            sim.harness.stats.record_create(first_sku.as_deref());
            shop.products.insert(
                id,
                SimProduct {
                    id,
                    handle: text(&input, "handle").unwrap_or_else(|| format!("product-{id}")),
                    title: String::new(),
                    status: "ACTIVE".into(),
                    vendor: String::new(),
                    product_type: String::new(),
                    tags: Vec::new(),
                    description_html: String::new(),
                    created_at: now,
                    updated_at: now,
                    options: Vec::new(),
                    media: Vec::new(),
                    variants: Vec::new(),
                },
            );
            id
        }
    };
    shop.before_write(id, lag);
    // New ids drawn before the product is borrowed.
    let new_ids: Vec<(u64, u64)> = (0..variants_in.as_ref().map_or(0, Vec::len))
        .map(|_| (shop.next_id(), shop.next_id()))
        .collect();
    let file_ids: Vec<u64> = (0..input
        .get("files")
        .and_then(Value::as_array)
        .map_or(0, Vec::len))
        .map(|_| shop.next_id())
        .collect();
    let Some(p) = shop.products.get_mut(&id) else {
        return json!({ "product": null, "userErrors": [] });
    };
    if let Some(t) = text(&input, "title") {
        p.title = t;
    }
    if let Some(t) = text(&input, "descriptionHtml") {
        p.description_html = t;
    }
    if let Some(t) = text(&input, "vendor") {
        p.vendor = t;
    }
    if let Some(t) = text(&input, "productType") {
        p.product_type = t;
    }
    if let Some(t) = text(&input, "status") {
        p.status = t;
    }
    if let Some(t) = text(&input, "handle") {
        p.handle = t;
    }
    if let Some(tags) = input.get("tags").and_then(Value::as_array) {
        p.tags = tags
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
    }
    if let Some(options) = input.get("productOptions").and_then(Value::as_array) {
        p.options = options.iter().filter_map(|o| text(o, "name")).collect();
    }
    if let Some(files) = input.get("files").and_then(Value::as_array) {
        // List-replace: files left out are detached.
        let mut media = Vec::new();
        for (f, new_id) in files.iter().zip(&file_ids) {
            let kept = text(f, "id")
                .and_then(|g| parse_gid("MediaImage", &g))
                .and_then(|mid| p.media.iter().find(|m| m.id == mid).cloned());
            match kept {
                Some(m) => media.push(m),
                None => media.push(SimMedia {
                    id: *new_id,
                    url: text(f, "originalSource").unwrap_or_default(),
                    alt: text(f, "alt").unwrap_or_default(),
                    ready_at: Some(
                        std::time::Instant::now()
                            + std::time::Duration::from_millis(sim.config.media_processing_ms),
                    ),
                }),
            }
        }
        p.media = media;
    }
    if let Some(variants) = variants_in {
        // List-replace: variants left out are deleted.
        let mut out = Vec::new();
        for (v, (new_id, new_item)) in variants.iter().zip(new_ids) {
            let old = text(v, "id")
                .and_then(|g| parse_gid("ProductVariant", &g))
                .and_then(|vid| p.variants.iter().find(|x| x.id == vid).cloned());
            let is_new = old.is_none();
            let mut var = old.unwrap_or(SimVariant {
                id: new_id,
                title: String::new(),
                sku: None,
                barcode: None,
                price: "0.00".into(),
                compare_at_price: None,
                options: Vec::new(),
                inventory_item_id: new_item,
                available: 0,
                weight_grams: None,
                image_url: None,
                updated_at: now,
            });
            if let Some(s) = text(v, "sku") {
                var.sku = Some(s);
            }
            if v.get("barcode").is_some() {
                var.barcode = text(v, "barcode");
            }
            if let Some(s) = text(v, "price") {
                var.price = s;
            }
            if v.get("compareAtPrice").is_some() {
                var.compare_at_price = text(v, "compareAtPrice");
            }
            if let Some(opts) = v.get("optionValues").and_then(Value::as_array) {
                var.options = opts
                    .iter()
                    .map(|o| {
                        (
                            text(o, "optionName").unwrap_or_default(),
                            text(o, "name").unwrap_or_default(),
                        )
                    })
                    .collect();
                var.title = var
                    .options
                    .iter()
                    .map(|(_, v)| v.clone())
                    .collect::<Vec<_>>()
                    .join(" / ");
            }
            if let Some(w) = v
                .pointer("/inventoryItem/measurement/weight/value")
                .and_then(Value::as_f64)
            {
                var.weight_grams = Some(w);
            }
            if is_new
                && let Some(q) = v
                    .get("inventoryQuantities")
                    .and_then(Value::as_array)
                    .and_then(|q| q.first())
                    .and_then(|q| q.get("quantity"))
                    .and_then(Value::as_i64)
            {
                var.available = q;
            }
            var.updated_at = now;
            out.push(var);
        }
        p.variants = out;
    }
    p.updated_at = now;
    json!({ "product": p.node(), "userErrors": [] })
}

fn variants_bulk_update(sim: &ShopifySim, args: &Map<String, Value>) -> Value {
    let Some(pid) = args
        .get("productId")
        .and_then(Value::as_str)
        .and_then(|g| parse_gid("Product", g))
    else {
        return json!({ "productVariants": null, "userErrors": [user_error(&["productId"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")] });
    };
    let variants = args
        .get("variants")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let lag = sim.harness.faults.index_lag();
    let mut shop = sim.lock();
    if !shop.products.contains_key(&pid) {
        return json!({ "productVariants": null, "userErrors": [user_error(&["productId"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")] });
    }
    shop.before_write(pid, lag);
    let Some(p) = shop.products.get_mut(&pid) else {
        return json!({ "productVariants": null, "userErrors": [] });
    };
    // All or nothing (allowPartialUpdates: false): check first.
    for (i, v) in variants.iter().enumerate() {
        let idx = i.to_string();
        let found = text(v, "id")
            .and_then(|g| parse_gid("ProductVariant", &g))
            .is_some_and(|vid| p.variants.iter().any(|x| x.id == vid));
        if !found {
            return json!({ "productVariants": null, "userErrors": [user_error(&["variants", &idx, "id"], "Product variant does not exist", "PRODUCT_VARIANT_DOES_NOT_EXIST")] });
        }
        if let Some(price) = text(v, "price")
            && price.parse::<f64>().map_or(true, |x| x < 0.0)
        {
            return json!({ "productVariants": null, "userErrors": [user_error(&["variants", &idx, "price"], "Price must be greater than or equal to 0", "GREATER_THAN_OR_EQUAL_TO")] });
        }
    }
    let now = admin::now();
    let mut out = Vec::new();
    for v in &variants {
        let vid = text(v, "id")
            .and_then(|g| parse_gid("ProductVariant", &g))
            .unwrap_or(0);
        if let Some(var) = p.variants.iter_mut().find(|x| x.id == vid) {
            if let Some(s) = text(v, "price") {
                var.price = s;
            }
            if v.get("compareAtPrice").is_some() {
                var.compare_at_price = text(v, "compareAtPrice");
            }
            if v.get("barcode").is_some() {
                var.barcode = text(v, "barcode");
            }
            if let Some(s) = v.pointer("/inventoryItem/sku").and_then(Value::as_str) {
                var.sku = Some(s.to_owned());
            }
            if let Some(w) = v
                .pointer("/inventoryItem/measurement/weight/value")
                .and_then(Value::as_f64)
            {
                var.weight_grams = Some(w);
            }
            var.updated_at = now;
            out.push(json!({ "__typename": "ProductVariant", "id": gid("ProductVariant", vid) }));
        }
    }
    p.updated_at = now;
    json!({ "productVariants": out, "userErrors": [] })
}

/// Stock moves: an inventory change, so the product's `updatedAt` does not move.
fn inventory_adjust(sim: &ShopifySim, args: &Map<String, Value>) -> Value {
    let input = args.get("input").cloned().unwrap_or(Value::Null);
    let changes = input
        .get("changes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut shop = sim.lock();
    for (i, c) in changes.iter().enumerate() {
        let idx = i.to_string();
        let item = text(c, "inventoryItemId").and_then(|g| parse_gid("InventoryItem", &g));
        if item.is_none_or(|item| shop.variant_by_inventory_item(item).is_none()) {
            return json!({ "inventoryAdjustmentGroup": null, "userErrors": [user_error(&["input", "changes", &idx, "inventoryItemId"], "The specified inventory item could not be found.", "ITEM_NOT_FOUND")] });
        }
        if text(c, "locationId").as_deref() != Some(LOCATION_GID) {
            return json!({ "inventoryAdjustmentGroup": null, "userErrors": [user_error(&["input", "changes", &idx, "locationId"], "The specified location could not be found.", "LOCATION_NOT_FOUND")] });
        }
    }
    let mut applied = Vec::new();
    let mut moved = Vec::new();
    for c in &changes {
        let item = text(c, "inventoryItemId")
            .and_then(|g| parse_gid("InventoryItem", &g))
            .unwrap_or(0);
        let delta = c.get("delta").and_then(Value::as_i64).unwrap_or(0);
        for p in shop.products.values_mut() {
            for v in &mut p.variants {
                if v.inventory_item_id == item {
                    v.available += delta;
                    moved.push((item, v.available));
                }
            }
        }
        applied.push(json!({ "name": "available", "delta": delta }));
    }
    drop(shop);
    sim.inventory_changed(&moved);
    json!({ "inventoryAdjustmentGroup": { "changes": applied, "createdAt": iso(admin::now()) }, "userErrors": [] })
}

/// `referencesToRemove`: detaches a media file from products.
fn file_update(sim: &ShopifySim, args: &Map<String, Value>) -> Value {
    let files = args
        .get("files")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let lag = sim.harness.faults.index_lag();
    let mut shop = sim.lock();
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let Some(mid) = text(f, "id").and_then(|g| parse_gid("MediaImage", &g)) else {
            return json!({ "files": null, "userErrors": [user_error(&["files", &i.to_string(), "id"], "File id is invalid", "INVALID")] });
        };
        let refs: Vec<u64> = f
            .get("referencesToRemove")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|g| g.as_str().and_then(|g| parse_gid("Product", g)))
                    .collect()
            })
            .unwrap_or_default();
        let known = shop
            .products
            .values()
            .any(|p| p.media.iter().any(|m| m.id == mid));
        if !known {
            return json!({ "files": null, "userErrors": [user_error(&["files", &i.to_string(), "id"], "File does not exist", "FILE_DOES_NOT_EXIST")] });
        }
        for pid in refs {
            shop.before_write(pid, lag);
            if let Some(p) = shop.products.get_mut(&pid) {
                p.media.retain(|m| m.id != mid);
                p.updated_at = admin::now();
            }
        }
        out.push(json!({ "__typename": "MediaImage", "id": gid("MediaImage", mid) }));
    }
    json!({ "files": out, "userErrors": [] })
}
