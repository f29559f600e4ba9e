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
use super::mutations::{self, MAX_INPUT_ARRAY};
use super::shop::{
    LOCATION_GID, Shop, SimProduct, gid, iso, order_matches, parse_gid, parse_iso, parse_query,
    product_matches,
};
use super::{ShopifySim, lock};

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

/// Runs `execute` unless a scripted failure answers instead (see `ShopifySim::fail_after`),
/// after the action hooked on this request if any (see `ShopifySim::before_next`).
fn scripted(sim: &ShopifySim, body: &[u8]) -> Value {
    let hooked = {
        let mut hook = lock(&sim.hook);
        let fires = hook
            .as_ref()
            .is_some_and(|h| String::from_utf8_lossy(body).contains(h.trigger.as_str()));
        if fires { hook.take() } else { None }
    };
    if let Some(h) = hooked {
        (h.action)(sim);
    }
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
    for f in root_fields(op.selection) {
        if let Some((path, len)) = mutations::oversized_array(&op.ctx.args(f)) {
            let mut at = vec![f.name.clone()];
            at.extend(path);
            return json!({ "errors": [{
                "message": format!("The input array size of {len} is greater than the maximum allowed of {MAX_INPUT_ARRAY}."),
                "path": at,
                "extensions": { "code": "MAX_INPUT_SIZE_EXCEEDED" } }] });
        }
    }
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

/// `deletionEvents(subjectTypes:, query: "occurred_at:>…", sortKey: CREATED_AT|ID, reverse)`:
/// product deletions in `occurredAt` order (ties by record order), keyset-paged.
fn deletion_events(
    shop: &Shop,
    args: &Map<String, Value>,
    terms: &[super::shop::Term],
) -> Result<Value, String> {
    let types: Option<Vec<&str>> = args
        .get("subjectTypes")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect());
    let by_id = args.get("sortKey").and_then(Value::as_str) == Some("ID");
    let items = shop
        .deletions
        .iter()
        .filter(|d| types.as_ref().is_none_or(|t| t.contains(&d.subject_type)))
        .filter(|d| {
            terms.iter().all(|t| match t.field.as_str() {
                "occurred_at" | "created_at" => parse_iso(&t.value).is_some_and(|v| {
                    let at = d.occurred_at;
                    match t.op {
                        ">=" => at >= v,
                        "<=" => at <= v,
                        ">" => at > v,
                        "<" => at < v,
                        _ => at == v,
                    }
                }),
                "id" => t.value.parse::<u64>().is_ok_and(|id| id == d.subject_id),
                _ => true,
            })
        })
        .map(|d| {
            let key = if by_id {
                i64::try_from(d.subject_id).unwrap_or(i64::MAX)
            } else {
                d.occurred_at
            };
            (key, d.seq, d)
        })
        .collect();
    keyset(items, args, |d: &&super::shop::Deletion| {
        json!({ "__typename": "DeletionEvent", "subjectId": gid("Product", d.subject_id),
            "subjectType": d.subject_type, "occurredAt": iso(d.occurred_at) })
    })
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
            keyset(items, args, |p: &&SimProduct| p.node(&shop.base_url))?
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
            .map_or(Value::Null, |p| p.node(&shop.base_url)),
        "productByHandle" => {
            let handle = args.get("handle").and_then(Value::as_str).unwrap_or("");
            shop.products
                .values()
                .find(|p| p.handle == handle)
                .map_or(Value::Null, |p| p.node(&shop.base_url))
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
                        shop.products
                            .get(&id)
                            .map_or(Value::Null, |p| p.node(&shop.base_url))
                    } else if let Some(id) = parse_gid("MediaImage", text) {
                        shop.files
                            .get(&id)
                            .map_or(Value::Null, |m| m.node(&shop.base_url))
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
        "deletionEvents" => deletion_events(shop, args, &terms)?,
        "order" => id_arg("Order")
            .and_then(|id| shop.orders.get(&id))
            .map_or(Value::Null, |o| o.node.clone()),
        other => return Err(format!("Field '{other}' doesn't exist on type 'QueryRoot'")),
    })
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

fn run_mutations<'a>(
    sim: &ShopifySim,
    ctx: &mut Ctx<'a>,
    sel: &'a graphql::Sel<'a>,
) -> Result<Value, String> {
    let mut data = Map::new();
    for f in root_fields(sel) {
        let args = ctx.args(f);
        let (value, events) = mutations::run(sim, f.name.as_str(), &args)?;
        // Webhooks go out once the shop is unlocked (mutations release it before returning).
        sim.emit(events);
        let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
        data.insert(key, project_root(ctx, f, value)?);
    }
    Ok(Value::Object(data))
}
