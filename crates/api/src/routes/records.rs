//! The product and order browsers: set filters (their intersection), keyset pages, and each
//! record's state on every connection, down to fields, variants and images.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use tidemark_core::diff::{self, ImageChange, VariantChange};
use tidemark_core::sets::{
    self, OrderSet, ProductSet, SetContext, SetTarget, Vocabulary, parse_order_set,
    parse_product_set,
};
use tidemark_core::{
    AccountId, Connection, ConnectionId, Field, IssueId, OrderId, PendingOp, ProductId,
    RecordContent, RecordKind, RecordRef, plan, transform,
};
use tidemark_store::{IssueFilter, PendingRow};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Caller, PathId};
use crate::state::Api;
use crate::views::{
    IssueView, OrderRow, Page, ProductRow, RecordDetail, RecordDetailState, RecordState,
    SuggestionView, paging, record_state,
};

pub fn router() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_products))
        .routes(routes!(get_product))
        .routes(routes!(list_orders))
        .routes(routes!(get_order))
        .routes(routes!(suggest))
}

/// The sets to intersect and the page to read.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BrowseQuery {
    /// A set phrase ("on Woo", "with issues", "of brand Acme"); repeat for an intersection.
    pub set: Vec<String>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// Records per page (1–200, default 50).
    pub limit: Option<i64>,
    /// The merchant's offset from UTC in minutes, for "today", "this month", …
    pub utc_offset_minutes: Option<i32>,
}

/// `?set=a&set=b` as axum's query extractor reads repeated keys: through a list of pairs.
fn browse_query(pairs: Vec<(String, String)>) -> ApiResult<BrowseQuery> {
    let mut query = BrowseQuery {
        set: Vec::new(),
        cursor: None,
        limit: None,
        utc_offset_minutes: None,
    };
    for (key, value) in pairs {
        match key.as_str() {
            "set" | "set[]" => {
                if !value.trim().is_empty() {
                    query.set.push(value);
                }
            }
            "cursor" => query.cursor = Some(value).filter(|v| !v.is_empty()),
            "limit" => {
                query.limit = Some(value.parse().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!("limit {value:?} is not a number"),
                    )
                })?)
            }
            "utc_offset_minutes" => {
                query.utc_offset_minutes = Some(value.parse().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!("utc_offset_minutes {value:?} is not a number"),
                    )
                })?)
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown query parameter {other:?}"),
                ));
            }
        }
    }
    Ok(query)
}

fn context(api: &Api, query: &BrowseQuery) -> ApiResult<SetContext> {
    let mut ctx = SetContext::new(api.now());
    if let Some(offset) = query.utc_offset_minutes {
        if !(-14 * 60..=14 * 60).contains(&offset) {
            return Err(ApiError::bad_request(
                "invalid_query",
                "utc_offset_minutes must be within ±840",
            ));
        }
        ctx.utc_offset_minutes = offset;
    }
    Ok(ctx)
}

/// What the parser and autocomplete know of the account: its connections, and for
/// suggestions its brands, categories, colours and sizes.
async fn vocabulary(api: &Api, account: AccountId, values: bool) -> ApiResult<Vocabulary> {
    let connections = api.store().list_connections(account).await?;
    let vocab = Vocabulary::new(connections.iter().map(|c| c.name.clone()));
    if !values {
        return Ok(vocab);
    }
    let known = api.store().set_vocabulary(account, 500).await?;
    Ok(vocab
        .with_brands(known.brands)
        .with_categories(known.categories)
        .with_colors(known.colors)
        .with_sizes(known.sizes))
}

fn set_error(input: &str, error: &sets::SetParseError) -> ApiError {
    ApiError::unprocessable("invalid_set", format!("{input:?}: {error}")).with_details(
        serde_json::json!({
            "set": input,
            "did_you_mean": error.corrected_input(),
        }),
    )
}

/// Each record's state on every connection of the account, from its bindings and rows.
async fn states(
    api: &Api,
    account: AccountId,
    kind: RecordKind,
    ids: &[i64],
    connections: &[Connection],
) -> ApiResult<HashMap<i64, Vec<RecordState>>> {
    let store = api.store();
    let bindings = store.bindings_of_records(account, kind, ids).await?;
    let rows = store.pending_changes_of_records(account, kind, ids).await?;
    let mut bound: HashMap<(i64, ConnectionId), String> = HashMap::new();
    for b in bindings.into_iter().filter(|b| b.internal_key.is_empty()) {
        bound.insert(
            (b.internal_id, b.connection),
            b.external_id.as_str().to_owned(),
        );
    }
    let mut ops: HashMap<(i64, ConnectionId), Vec<PendingOp>> = HashMap::new();
    for row in rows {
        let id = match row.change.record {
            RecordRef::Product(p) => p.0,
            RecordRef::Order(o) => o.0,
        };
        ops.entry((id, row.change.connection))
            .or_default()
            .push(row.change.op);
    }
    let mut out = HashMap::new();
    for &id in ids {
        let list = connections
            .iter()
            .map(|c| {
                let key = (id, c.id);
                let ops: Vec<&PendingOp> = ops
                    .get(&key)
                    .map(|v| v.iter().collect())
                    .unwrap_or_default();
                record_state(c.id.0, bound.get(&key).cloned(), &ops)
            })
            .collect();
        out.insert(id, list);
    }
    Ok(out)
}

/// Products in the intersection of the sets, a page at a time, with their state on every
/// connection.
#[utoipa::path(get, path = "/products", tag = "records",
    params(BrowseQuery),
    responses(
        (status = 200, description = "A page of products", body = Page<ProductRow>),
        (status = 400, description = "A bad query parameter or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "A set names a connection the account does not have", body = ErrorBody),
        (status = 422, description = "A set that does not parse; details.did_you_mean may help", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_products(
    State(api): State<Api>,
    caller: Caller,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Page<ProductRow>>> {
    let query = browse_query(pairs)?;
    let (limit, after) = paging(query.limit, query.cursor.as_deref(), 50)?;
    let account = caller.account;
    let vocab = vocabulary(&api, account, false).await?;
    let sets: Vec<ProductSet> = query
        .set
        .iter()
        .map(|s| parse_product_set(s, &vocab).map_err(|e| set_error(s, &e)))
        .collect::<ApiResult<_>>()?;
    let page = api
        .store()
        .list_products(
            account,
            &sets,
            &context(&api, &query)?,
            after.map(ProductId),
            limit,
        )
        .await?;
    let connections = api.store().list_connections(account).await?;
    let ids: Vec<i64> = page.items.iter().map(|p| p.id.0).collect();
    let mut states = states(&api, account, RecordKind::Product, &ids, &connections).await?;
    let items = page
        .items
        .into_iter()
        .map(|p| ProductRow {
            connections: states.remove(&p.id.0).unwrap_or_default(),
            id: p.id.0,
            sku: p.sku.map(|s| s.as_str().to_owned()),
            title: p.title,
            brand: p.brand,
            category: p.category,
            status: enum_text(&p.status),
            updated_at: p.updated_at.0,
        })
        .collect();
    Ok(Json(Page {
        items,
        next: page.next.map(|id| id.0.to_string()),
    }))
}

/// A serde enum's name (`active`, `paid`).
fn enum_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Orders in the intersection of the sets, a page at a time.
#[utoipa::path(get, path = "/orders", tag = "records",
    params(BrowseQuery),
    responses(
        (status = 200, description = "A page of orders", body = Page<OrderRow>),
        (status = 400, description = "A bad query parameter or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "A set names a connection the account does not have", body = ErrorBody),
        (status = 422, description = "A set that does not parse", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_orders(
    State(api): State<Api>,
    caller: Caller,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Page<OrderRow>>> {
    let query = browse_query(pairs)?;
    let (limit, after) = paging(query.limit, query.cursor.as_deref(), 50)?;
    let account = caller.account;
    let vocab = vocabulary(&api, account, false).await?;
    let sets: Vec<OrderSet> = query
        .set
        .iter()
        .map(|s| parse_order_set(s, &vocab).map_err(|e| set_error(s, &e)))
        .collect::<ApiResult<_>>()?;
    let page = api
        .store()
        .list_orders(
            account,
            &sets,
            &context(&api, &query)?,
            after.map(OrderId),
            limit,
        )
        .await?;
    let connections = api.store().list_connections(account).await?;
    let ids: Vec<i64> = page.items.iter().map(|o| o.id.0).collect();
    let mut states = states(&api, account, RecordKind::Order, &ids, &connections).await?;
    let items = page
        .items
        .into_iter()
        .map(|o| OrderRow {
            connections: states.remove(&o.id.0).unwrap_or_default(),
            id: o.id.0,
            origin: o.origin.0,
            number: o.number,
            placed_at: o.placed_at.0,
            status: enum_text(&o.status),
            payment_status: enum_text(&o.payment_status),
            currency: o.currency.as_str().to_owned(),
            total: o.total.to_string(),
            updated_at: o.updated_at.0,
        })
        .collect();
    Ok(Json(Page {
        items,
        next: page.next.map(|id| id.0.to_string()),
    }))
}

/// Which fields, variants and images of a product a connection's queued rows touch.
fn product_detail(
    connection: &Connection,
    canonical: &tidemark_core::Product,
    snapshot: Option<&tidemark_core::Product>,
    rows: &[&PendingRow],
) -> (
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
) {
    let mut fields = BTreeMap::new();
    let mut variants = BTreeMap::new();
    let mut images = BTreeMap::new();
    let insert = rows
        .iter()
        .any(|r| matches!(r.change.op, PendingOp::Insert));
    let mut updating: Vec<Field> = Vec::new();
    for row in rows {
        match &row.change.op {
            PendingOp::Update { fields: f } => updating.extend(f.iter().copied()),
            PendingOp::ImageDelete { content_hash, .. } => {
                images.insert(content_hash.to_hex(), "image_delete".to_owned());
            }
            PendingOp::Insert => {}
        }
    }
    if insert {
        for field in plan::insert_fields(&connection.settings).iter() {
            fields.insert(field.as_str().to_owned(), "insert".to_owned());
        }
        for variant in &canonical.variants {
            variants.insert(diff::variant_key(variant).to_string(), "insert".to_owned());
        }
        for image in &canonical.images {
            images.insert(image.content_hash.to_hex(), "insert".to_owned());
        }
        return (fields, variants, images);
    }
    for field in &updating {
        fields.insert(field.as_str().to_owned(), "update".to_owned());
    }
    // Down to variants and images: what the connection should hold against what it holds.
    if let (Some(snapshot), Ok(desired)) = (
        snapshot,
        transform::outbound_product(canonical, &connection.settings),
    ) && !updating.is_empty()
    {
        let changes = diff::diff_products(snapshot, &desired);
        for change in &changes.variants {
            match change {
                VariantChange::Added { variant } if updating.contains(&Field::Variants) => {
                    variants.insert(diff::variant_key(variant).to_string(), "insert".to_owned());
                }
                VariantChange::Changed { key, changes }
                    if changes.fields().iter().any(|f| updating.contains(f)) =>
                {
                    variants.insert(key.to_string(), "update".to_owned());
                }
                _ => {}
            }
        }
        if updating.contains(&Field::Images) {
            for change in &changes.images {
                match change {
                    ImageChange::Added { image } => {
                        images.insert(image.content_hash.to_hex(), "insert".to_owned());
                    }
                    ImageChange::Changed { content_hash, .. } => {
                        images
                            .entry(content_hash.to_hex())
                            .or_insert_with(|| "update".to_owned());
                    }
                    ImageChange::Removed { .. } => {}
                }
            }
        }
    }
    (fields, variants, images)
}

async fn open_issues_of(
    api: &Api,
    account: AccountId,
    record: RecordRef,
) -> ApiResult<Vec<IssueView>> {
    let issues = api
        .store()
        .list_issues(
            account,
            &IssueFilter {
                connection: None,
                record: Some(record),
                open_only: true,
                before: None::<IssueId>,
                limit: 100,
            },
        )
        .await?;
    Ok(issues.iter().map(IssueView::from).collect())
}

/// One product with its state on every connection, down to fields, variants and images.
#[utoipa::path(get, path = "/products/{id}", tag = "records",
    params(("id" = i64, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = RecordDetail),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such product in this account", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn get_product(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<RecordDetail>> {
    let account = caller.account;
    let store = api.store();
    let product = store
        .get_product(account, ProductId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("product {id}")))?;
    let connections = store.list_connections(account).await?;
    let bindings = store
        .bindings_of_records(account, RecordKind::Product, &[id])
        .await?;
    let rows = store
        .pending_changes_of_records(account, RecordKind::Product, &[id])
        .await?;
    let mut out = Vec::with_capacity(connections.len());
    for connection in &connections {
        let external_id = bindings
            .iter()
            .find(|b| b.connection == connection.id && b.internal_key.is_empty())
            .map(|b| b.external_id.as_str().to_owned());
        let mine: Vec<&PendingRow> = rows
            .iter()
            .filter(|r| r.change.connection == connection.id)
            .collect();
        let ops: Vec<&PendingOp> = mine.iter().map(|r| &r.change.op).collect();
        let summary = record_state(connection.id.0, external_id.clone(), &ops);
        let snapshot = match &external_id {
            Some(_) => {
                store
                    .snapshot_of_record(connection.id, RecordKind::Product, id)
                    .await?
            }
            None => None,
        };
        let snapshot_product = snapshot.as_ref().and_then(|s| match &s.content {
            RecordContent::Product(p) => Some(p),
            RecordContent::Order(_) => None,
        });
        let (fields, variants, images) =
            product_detail(connection, &product.record.content, snapshot_product, &mine);
        out.push(RecordDetailState {
            connection: connection.id.0,
            connection_name: connection.name.clone(),
            platform: connection.platform.as_str().to_owned(),
            state: summary.state,
            external_id,
            fields,
            variants,
            images,
            platform_updated_at: snapshot.and_then(|s| s.platform_updated_at).map(|t| t.0),
        });
    }
    let issues = open_issues_of(&api, account, RecordRef::Product(ProductId(id))).await?;
    Ok(Json(RecordDetail {
        id,
        revision: product.revision,
        record: serde_json::to_value(&product.record)
            .map_err(|e| ApiError::internal("product not serialisable", &e))?,
        connections: out,
        issues,
    }))
}

/// One order with its state on every connection.
#[utoipa::path(get, path = "/orders/{id}", tag = "records",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = RecordDetail),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such order in this account", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn get_order(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<RecordDetail>> {
    let account = caller.account;
    let store = api.store();
    let order = store
        .get_order(account, OrderId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("order {id}")))?;
    let connections = store.list_connections(account).await?;
    let mut states = states(&api, account, RecordKind::Order, &[id], &connections).await?;
    let mut out = Vec::with_capacity(connections.len());
    for (connection, state) in connections
        .iter()
        .zip(states.remove(&id).unwrap_or_default())
    {
        let fill = if state.state == "insert" {
            "insert"
        } else {
            "update"
        };
        let snapshot = match &state.external_id {
            Some(_) => {
                store
                    .snapshot_of_record(connection.id, RecordKind::Order, id)
                    .await?
            }
            None => None,
        };
        out.push(RecordDetailState {
            connection: connection.id.0,
            connection_name: connection.name.clone(),
            platform: connection.platform.as_str().to_owned(),
            fields: state
                .fields
                .iter()
                .map(|f| (f.clone(), fill.to_owned()))
                .collect(),
            state: state.state,
            external_id: state.external_id,
            variants: BTreeMap::new(),
            images: BTreeMap::new(),
            platform_updated_at: snapshot.and_then(|s| s.platform_updated_at).map(|t| t.0),
        });
    }
    let issues = open_issues_of(&api, account, RecordRef::Order(OrderId(id))).await?;
    Ok(Json(RecordDetail {
        id,
        revision: order.revision,
        record: serde_json::to_value(&order.record)
            .map_err(|e| ApiError::internal("order not serialisable", &e))?,
        connections: out,
        issues,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuggestQuery {
    /// What has been typed so far.
    #[serde(default)]
    pub q: String,
    /// products (default) or orders.
    pub target: Option<String>,
    /// At most this many (default 10, at most 50).
    pub limit: Option<usize>,
}

/// Autocomplete for the set search bar.
#[utoipa::path(get, path = "/sets/suggest", tag = "records",
    params(SuggestQuery),
    responses(
        (status = 200, description = "Completions, best first", body = Vec<SuggestionView>),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn suggest(
    State(api): State<Api>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SuggestQuery>,
) -> ApiResult<Json<Vec<SuggestionView>>> {
    let target = match query.target.as_deref() {
        None | Some("products") => SetTarget::Products,
        Some("orders") => SetTarget::Orders,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("target {other:?}: expected products or orders"),
            ));
        }
    };
    if query.q.chars().count() > 500 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "q is longer than 500 characters",
        ));
    }
    let vocab = vocabulary(&api, caller.account, true).await?;
    let limit = query.limit.unwrap_or(10).clamp(1, 50);
    let suggestions = sets::suggest(&query.q, &vocab, target, limit)
        .into_iter()
        .map(|s| SuggestionView {
            phrase: s.phrase,
            label: s.label,
        })
        .collect();
    Ok(Json(suggestions))
}
