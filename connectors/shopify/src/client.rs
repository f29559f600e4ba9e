//! The Shopify connector: GraphQL calls through the shared HTTP client, products paged in
//! `updatedAt` order (variants and media beyond the first page fetched per product) or, for
//! full scans of large shops, read from a streamed bulk operation result; orders; writes
//! (whole products and list replaces by `productSet`, variant fields by
//! `productVariantsBulkUpdate`, stock by compare-and-set `inventorySetQuantities`, image detach
//! by `fileUpdate`); and cost-aware pacing.
//!
//! Pacing: every request declares its *requested* cost (computed from the document's page
//! sizes exactly as Shopify computes it); after every answer, `extensions.cost.throttleStatus`
//! resets the pacer's model of the platform bucket. The pacer then holds each request until the
//! bucket covers its requested cost, so no answer after the first is THROTTLED, and the refund
//! of `requested − actual` is spent by the next request instead of left idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tidemark_connector::http::{
    ApiRequest, ApiResponse, Budget, HttpClient, HttpClientConfig, Idempotency, Pacer,
};
use tidemark_connector::{
    Capabilities, Confirmed, Connector, ConnectorError, Cursor, IncrementalFilter,
    KindCapabilities, ScanPage, ScanScope, SettingsSchema, WebhookEvent, WebhookSupport, Write,
    WriteOp, WriteResult,
};
use tidemark_core::{
    Currency, ExternalId, ExternalRecord, Field, PlatformKind, Product, RecordContent, ScanKind,
    Sku, StockChange, Timestamp,
};
use url::Url;

use crate::config::{Keys, Settings};
use crate::documents::{self, MEDIA_NODE_COST, PRODUCT_OWN_COST, VARIANT_NODE_COST};
use crate::mapping;

/// The largest requested cost of one query.
pub const MAX_QUERY_COST: u32 = 1000;
/// Media and variants read with each product of a page; more are paged per product.
pub const MEDIA_FIRST: u32 = 10;
pub const VARIANTS_FIRST: u32 = 10;
/// Orders per page (each with up to 50 lines and 10 fulfilments): 3 keeps the requested cost
/// under 1,000 (see [`orders_page_cost`]).
pub const ORDERS_FIRST: u32 = 3;
/// The most extra pages of variants, media or order lines read for one record: a platform
/// that keeps answering `hasNextPage` beyond this is treated as broken, not followed forever.
pub const MAX_PAGES_PER_PRODUCT: usize = 100;

/// Requested cost of one product with `media_first` media and `variants_first` variants.
pub fn product_cost(media_first: u32, variants_first: u32) -> u32 {
    PRODUCT_OWN_COST
        + (2 + media_first * MEDIA_NODE_COST)
        + (2 + variants_first * VARIANT_NODE_COST)
}

/// Requested cost of a products page of `first`.
pub fn products_page_cost(first: u32) -> u32 {
    2 + first * product_cost(MEDIA_FIRST, VARIANTS_FIRST)
}

/// The largest products page whose requested cost stays within [`MAX_QUERY_COST`].
pub fn products_page_size() -> u32 {
    ((MAX_QUERY_COST - 2) / product_cost(MEDIA_FIRST, VARIANTS_FIRST)).clamp(1, 250)
}

/// Requested cost of an orders page: order (1) + customer, shippingAddress, four money sets
/// (2 each) + lineItems (2 + 50 × (1 + variant 1 + price set 2)) + fulfillments (2 + 10 × (1 +
/// trackingInfo 2 + 5 × 1)).
pub const fn orders_page_cost(first: u32) -> u32 {
    let per_order = 1 + 1 + 1 + 4 * 2 + (2 + 50 * 4) + (2 + 10 * (1 + 2 + 5));
    2 + first * per_order
}

const _: () = assert!(orders_page_cost(ORDERS_FIRST) <= MAX_QUERY_COST);

/// What the client saw of the platform's cost accounting (for tests and metrics).
#[derive(Debug, Default)]
pub struct CostStats {
    pub answers: AtomicU64,
    pub throttled: AtomicU64,
    /// Answers THROTTLED after the first answer of the connection.
    pub throttled_after_first: AtomicU64,
    pub actual_points: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostFigures {
    pub answers: u64,
    pub throttled: u64,
    pub throttled_after_first: u64,
    pub actual_points: u64,
}

/// Products served per page of a bulk full scan.
pub const BULK_PAGE: usize = 250;
/// The longest a write waits for the images it added to be processed (READY or FAILED).
pub const MEDIA_SETTLE: Duration = Duration::from_secs(10);
/// Compare-and-set attempts of one stock write before it is left for later (each one lost to a
/// sale landing between its read and its set).
pub const STOCK_SET_ATTEMPTS: usize = 5;
/// Polling a running bulk operation: first wait, and the longest wait between polls.
const BULK_POLL_FIRST: Duration = Duration::from_millis(100);
const BULK_POLL_MAX: Duration = Duration::from_secs(10);

/// Position in a bulk full scan: the operation and how many products (root lines, in file
/// order) were served.
#[derive(Debug, Serialize, Deserialize)]
struct BulkCursor {
    bulk: String,
    offset: usize,
}

/// A bulk result being read by a full scan: the operation and the open download, positioned
/// after the products already served (products reassembled from their `__parentId` lines are
/// shaped like the nodes of [`documents::PRODUCTS_PAGE`]).
#[derive(Debug)]
struct BulkStream {
    id: String,
    reader: crate::bulk::BulkReader,
}

/// Paging state of a products or orders scan.
#[derive(Debug, Serialize, Deserialize)]
struct ScanState {
    after: String,
}

pub struct Shopify {
    http: HttpClient,
    pacer: Arc<Pacer>,
    settings: Settings,
    keys: Keys,
    currency: Currency,
    target: String,
    location: tokio::sync::OnceCell<String>,
    stats: Arc<CostStats>,
    /// Inventory item gid → product gid, learnt from every product read (webhooks name only
    /// the inventory item and cannot wait for a lookup).
    item_products: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The bulk result being served by a full scan.
    bulk_stream: tokio::sync::Mutex<Option<BulkStream>>,
    /// Downloads bulk result files (no credentials, no limit on the whole download).
    bulk_client: reqwest::Client,
}

impl std::fmt::Debug for Shopify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shopify")
            .field("settings", &self.settings)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Shopify {
    pub fn new(settings: Settings, keys: Keys) -> Result<Self, ConnectorError> {
        let base = Url::parse(&settings.shop_url).map_err(|e| {
            ConnectorError::fatal(format!(
                "shop URL {:?} is not a URL: {e}",
                settings.shop_url
            ))
        })?;
        let currency = Currency::parse(&settings.currency)
            .map_err(|e| ConnectorError::fatal(format!("shop currency: {e}")))?;
        let config = HttpClientConfig::new(PlatformKind::Shopify, base).secret_header(
            HeaderName::from_static("x-shopify-access-token"),
            &keys.access_token,
        )?;
        let pacer = Arc::new(Pacer::unlimited());
        let http = HttpClient::with_pacer(config, pacer.clone())?;
        let target = format!("/admin/api/{}/graphql.json", settings.api_version);
        Ok(Self {
            http,
            pacer,
            settings,
            keys,
            currency,
            target,
            location: tokio::sync::OnceCell::new(),
            stats: Arc::new(CostStats::default()),
            item_products: std::sync::Mutex::default(),
            bulk_stream: tokio::sync::Mutex::default(),
            bulk_client: crate::bulk::client()?,
        })
    }

    pub fn cost_figures(&self) -> CostFigures {
        CostFigures {
            answers: self.stats.answers.load(Ordering::Relaxed),
            throttled: self.stats.throttled.load(Ordering::Relaxed),
            throttled_after_first: self.stats.throttled_after_first.load(Ordering::Relaxed),
            actual_points: self.stats.actual_points.load(Ordering::Relaxed),
        }
    }

    /// Sends one document; `cost` is its requested cost. Returns `data`.
    pub async fn graphql(
        &self,
        document: &'static str,
        variables: Value,
        cost: u32,
        idempotency: Idempotency,
        what: &str,
    ) -> Result<Value, ConnectorError> {
        let pacer = self.pacer.clone();
        let stats = self.stats.clone();
        let request = ApiRequest::post(self.target.clone(), idempotency)
            .json(&json!({ "query": document, "variables": variables }))?
            .cost(cost)
            .context(what.to_owned())
            .inspect(move |response| observe(&pacer, &stats, response, cost));
        let response = self.http.send(request).await?;
        let body: Value = response.json()?;
        if let Some(errors) = body.get("errors").and_then(Value::as_array)
            && let Some(first) = errors.first()
        {
            let code = first["extensions"]["code"]
                .as_str()
                .unwrap_or("GRAPHQL_ERROR");
            let message = first["message"].as_str().unwrap_or("GraphQL error");
            return Err(match code {
                "ACCESS_DENIED" => ConnectorError::unauthorized(message.to_owned()),
                // The document ran (or partly ran) before the error: a mutation that is not
                // safe to repeat may have taken effect.
                "INTERNAL_SERVER_ERROR" if idempotency == Idempotency::NonIdempotent => {
                    ConnectorError::maybe_applied(format!("{what}: {message}"))
                }
                "INTERNAL_SERVER_ERROR" => ConnectorError::transient(message.to_owned()),
                _ => ConnectorError::fatal(format!("shopify answered {code} to {what}: {message}")),
            });
        }
        Ok(body.get("data").cloned().unwrap_or(Value::Null))
    }

    fn query_filter(scope: &ScanScope) -> Option<String> {
        scope.since().and_then(|since| {
            let dt = since.to_datetime()?;
            let text = dt
                .replace_nanosecond(0)
                .ok()?
                .format(&time::format_description::well_known::Rfc3339)
                .ok()?;
            Some(format!("updated_at:>='{text}'"))
        })
    }

    async fn scan_products(
        &self,
        scope: &ScanScope,
        cursor: Option<&Cursor>,
    ) -> Result<ScanPage, ConnectorError> {
        if let Some(c) = cursor
            && let Ok(bulk) = c.decode::<BulkCursor>()
        {
            return self.serve_bulk(&bulk.bulk, bulk.offset).await;
        }
        if cursor.is_none() && matches!(scope, ScanScope::Full) && self.bulk_wanted().await? {
            let id = self.start_bulk().await?;
            return self.serve_bulk(&id, 0).await;
        }
        let after = cursor.map(|c| c.decode::<ScanState>()).transpose()?;
        let first = products_page_size();
        let data = self
            .graphql(
                documents::PRODUCTS_PAGE,
                json!({
                    "first": first, "after": after.map(|a| a.after),
                    "query": Self::query_filter(scope),
                    "mediaFirst": MEDIA_FIRST, "variantsFirst": VARIANTS_FIRST,
                }),
                products_page_cost(first),
                Idempotency::Idempotent,
                "a page of products",
            )
            .await?;
        let connection = &data["products"];
        let mut records = Vec::new();
        for node in connection["nodes"].as_array().into_iter().flatten() {
            let mut node = node.clone();
            self.complete_product(&mut node).await?;
            records.push(mapping::product_from_graphql(&node, self.currency)?);
        }
        let next = next_cursor(connection)?;
        Ok(ScanPage::new(records, next, None))
    }

    /// Whether a full scan should run as a bulk operation: the shop has at least
    /// `bulk_threshold` products.
    async fn bulk_wanted(&self) -> Result<bool, ConnectorError> {
        let threshold = self.settings.bulk_threshold;
        if threshold == 0 {
            return Ok(false);
        }
        // `limit` is a GraphQL Int (32 bits).
        let limit = i32::try_from(threshold).unwrap_or(i32::MAX);
        let data = self
            .graphql(
                documents::PRODUCTS_COUNT,
                json!({ "limit": limit }),
                1,
                Idempotency::Idempotent,
                "the number of products",
            )
            .await?;
        let count = &data["productsCount"]["count"];
        let count = count
            .as_u64()
            .or_else(|| count.as_str().and_then(|t| t.parse().ok()))
            .ok_or_else(|| {
                ConnectorError::fatal("shopify answered productsCount without a count")
            })?;
        Ok(count >= threshold)
    }

    /// Starts the bulk query of every product; returns its gid. A job already running (one
    /// per shop and app before 2026-01) is `Transient`: the scan is retried later.
    pub async fn start_bulk(&self) -> Result<String, ConnectorError> {
        let data = self
            .graphql(
                documents::BULK_RUN_QUERY,
                json!({ "query": documents::BULK_PRODUCTS }),
                12,
                Idempotency::NonIdempotent,
                "starting a bulk query",
            )
            .await?;
        let payload = &data["bulkOperationRunQuery"];
        if let Some(error) = payload["userErrors"].as_array().and_then(|e| e.first()) {
            let message = error["message"].as_str().unwrap_or("bulk query refused");
            return Err(match error["code"].as_str() {
                Some("OPERATION_IN_PROGRESS") => ConnectorError::transient(format!(
                    "a bulk operation is already running: {message}"
                ))
                .with_retry_after(Some(Duration::from_secs(60))),
                code => ConnectorError::fatal(format!(
                    "shopify refused the bulk query ({}): {message}",
                    code.unwrap_or("no code")
                )),
            });
        }
        payload["bulkOperation"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ConnectorError::fatal("shopify started a bulk query without an id"))
    }

    /// Polls the bulk operation `id` (backing off) until it ends; the URL of its file
    /// (`None`: completed without objects). FAILED, CANCELED, EXPIRED or unknown →
    /// `CursorExpired` (the scan restarts).
    async fn await_bulk(&self, id: &str) -> Result<Option<String>, ConnectorError> {
        let mut wait = BULK_POLL_FIRST;
        loop {
            let data = self
                .graphql(
                    documents::BULK_OPERATION,
                    json!({ "id": id }),
                    1,
                    Idempotency::Idempotent,
                    "a bulk operation's status",
                )
                .await?;
            let node = &data["node"];
            match node["status"].as_str() {
                Some("COMPLETED") => return Ok(node["url"].as_str().map(str::to_owned)),
                Some("CREATED" | "RUNNING") => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(BULK_POLL_MAX);
                }
                status => {
                    return Err(ConnectorError::CursorExpired {
                        message: format!(
                            "bulk operation {id} ended {} ({}); the full scan restarts",
                            status.unwrap_or("unknown"),
                            node["errorCode"].as_str().unwrap_or("no error code"),
                        ),
                    });
                }
            }
        }
    }

    /// Opens the result of bulk operation `id` (waiting for it to end) positioned after
    /// `offset` products. A file that is gone restarts the scan.
    async fn open_bulk(&self, id: &str, offset: usize) -> Result<BulkStream, ConnectorError> {
        let gone = |e: ConnectorError| match e {
            ConnectorError::NotFound { .. } => ConnectorError::CursorExpired {
                message: format!("the result file of bulk operation {id} is gone"),
            },
            other => other,
        };
        let mut reader = match self.await_bulk(id).await? {
            Some(url) => crate::bulk::BulkReader::open(&self.bulk_client, &url)
                .await
                .map_err(gone)?,
            None => crate::bulk::BulkReader::empty(),
        };
        reader.skip(offset).await?;
        Ok(BulkStream {
            id: id.to_owned(),
            reader,
        })
    }

    /// One page of a bulk full scan from product `offset`. The download stays open between
    /// pages; a resumed scan (another process, or after an error) downloads the file again
    /// and skips the products already served.
    async fn serve_bulk(&self, id: &str, offset: usize) -> Result<ScanPage, ConnectorError> {
        let mut slot = self.bulk_stream.lock().await;
        let reusable = slot
            .as_ref()
            .is_some_and(|s| s.id == id && s.reader.served == offset);
        let mut stream = match slot.take() {
            Some(stream) if reusable => stream,
            _ => self.open_bulk(id, offset).await?,
        };
        let mut nodes = Vec::with_capacity(BULK_PAGE);
        while nodes.len() < BULK_PAGE {
            let next = match stream.reader.next_product().await {
                Ok(next) => next,
                // A download held open between pages may have been closed by the other end:
                // start it again once, at this page.
                Err(ConnectorError::Transient { .. }) if reusable && nodes.is_empty() => {
                    stream = self.open_bulk(id, offset).await?;
                    stream.reader.next_product().await?
                }
                Err(e) => return Err(e),
            };
            match next {
                Some(node) => nodes.push(node),
                None => break,
            }
        }
        let mut records = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let product_id = node["id"].as_str().unwrap_or_default();
            self.learn_items(product_id, node);
            records.push(mapping::product_from_graphql(node, self.currency)?);
        }
        let next = if stream.reader.at_end() {
            None
        } else {
            let cursor = Cursor::encode(&BulkCursor {
                bulk: id.to_owned(),
                offset: stream.reader.served,
            })?;
            *slot = Some(stream);
            Some(cursor)
        };
        Ok(ScanPage::new(records, next, None))
    }

    /// Appends the variants and media beyond the first page to a product node.
    async fn complete_product(&self, node: &mut Value) -> Result<(), ConnectorError> {
        let id = node["id"].as_str().unwrap_or_default().to_owned();
        for (field, document, per_node) in [
            (
                "variants",
                documents::PRODUCT_VARIANTS_PAGE,
                VARIANT_NODE_COST,
            ),
            ("media", documents::PRODUCT_MEDIA_PAGE, MEDIA_NODE_COST),
        ] {
            let first = ((MAX_QUERY_COST - 3) / per_node).min(250);
            let mut pages = 0;
            while node[field]["pageInfo"]["hasNextPage"] == json!(true) {
                let after = node[field]["pageInfo"]["endCursor"].clone();
                pages += 1;
                if after.is_null() || pages > MAX_PAGES_PER_PRODUCT {
                    return Err(ConnectorError::fatal(format!(
                        "{field} of product {id} do not end (no cursor or over \
                         {MAX_PAGES_PER_PRODUCT} pages)"
                    )));
                }
                let data = self
                    .graphql(
                        document,
                        json!({ "id": id, "first": first, "after": after }),
                        3 + first * per_node,
                        Idempotency::Idempotent,
                        &format!("{field} of product {id}"),
                    )
                    .await?;
                let more = &data["product"][field];
                if more.is_null() {
                    break;
                }
                let extra = more["nodes"].as_array().cloned().unwrap_or_default();
                let more_next = more["pageInfo"]["hasNextPage"] == json!(true);
                if more_next && (extra.is_empty() || more["pageInfo"]["endCursor"] == after) {
                    return Err(ConnectorError::fatal(format!(
                        "{field} of product {id}: a page without progress (no nodes or the \
                         same cursor) claims more pages"
                    )));
                }
                if let Some(nodes) = node[field]["nodes"].as_array_mut() {
                    nodes.extend(extra);
                }
                node[field]["pageInfo"] = more["pageInfo"].clone();
            }
        }
        self.learn_items(&id, node);
        Ok(())
    }

    /// Remembers which product each of `node`'s variants' inventory items belongs to.
    fn learn_items(&self, product: &str, node: &Value) {
        let mut map = self
            .item_products
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for v in node["variants"]["nodes"].as_array().into_iter().flatten() {
            if let Some(item) = v["inventoryItem"]["id"].as_str() {
                map.insert(item.to_owned(), product.to_owned());
            }
        }
    }

    /// The product gid of an inventory item this connection has read, if any.
    pub fn product_of_item(&self, item: &str) -> Option<String> {
        self.item_products
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(item)
            .cloned()
    }

    /// The product of an inventory item, looked up on the platform.
    async fn product_by_item(&self, item: &str) -> Result<Option<ExternalRecord>, ConnectorError> {
        let data = self
            .graphql(
                documents::INVENTORY_ITEM_PRODUCT,
                json!({ "id": item }),
                3,
                Idempotency::Idempotent,
                "the product of an inventory item",
            )
            .await?;
        match data["inventoryItem"]["variant"]["product"]["id"].as_str() {
            Some(product) => self.product_by_id(product).await,
            None => Ok(None),
        }
    }

    async fn scan_orders(
        &self,
        scope: &ScanScope,
        cursor: Option<&Cursor>,
    ) -> Result<ScanPage, ConnectorError> {
        let after = cursor.map(|c| c.decode::<ScanState>()).transpose()?;
        let data = self
            .graphql(
                documents::ORDERS_PAGE,
                json!({ "first": ORDERS_FIRST, "after": after.map(|a| a.after),
                        "query": Self::query_filter(scope) }),
                orders_page_cost(ORDERS_FIRST),
                Idempotency::Idempotent,
                "a page of orders",
            )
            .await?;
        let connection = &data["orders"];
        let mut records = Vec::new();
        for node in connection["nodes"].as_array().into_iter().flatten() {
            let mut node = node.clone();
            self.complete_order(&mut node).await?;
            records.push(mapping::order_from_graphql(&node, self.currency)?);
        }
        Ok(ScanPage::new(records, next_cursor(connection)?, None))
    }

    /// Appends the line items beyond the first page to an order node.
    async fn complete_order(&self, node: &mut Value) -> Result<(), ConnectorError> {
        let id = node["id"].as_str().unwrap_or_default().to_owned();
        let per_node = documents::LINE_ITEM_NODE_COST;
        let first = ((MAX_QUERY_COST - 3) / per_node).min(250);
        let mut pages = 0;
        while node["lineItems"]["pageInfo"]["hasNextPage"] == json!(true) {
            let after = node["lineItems"]["pageInfo"]["endCursor"].clone();
            pages += 1;
            if after.is_null() || pages > MAX_PAGES_PER_PRODUCT {
                return Err(ConnectorError::fatal(format!(
                    "line items of order {id} do not end (no cursor or over \
                     {MAX_PAGES_PER_PRODUCT} pages)"
                )));
            }
            let data = self
                .graphql(
                    documents::ORDER_LINE_ITEMS_PAGE,
                    json!({ "id": id, "first": first, "after": after }),
                    3 + first * per_node,
                    Idempotency::Idempotent,
                    &format!("line items of order {id}"),
                )
                .await?;
            let more = &data["order"]["lineItems"];
            if more.is_null() {
                return Err(ConnectorError::transient(format!(
                    "order {id} vanished while its line items were read"
                )));
            }
            let extra = more["nodes"].as_array().cloned().unwrap_or_default();
            if more["pageInfo"]["hasNextPage"] == json!(true)
                && (extra.is_empty() || more["pageInfo"]["endCursor"] == after)
            {
                return Err(ConnectorError::fatal(format!(
                    "line items of order {id}: a page without progress claims more pages"
                )));
            }
            if let Some(nodes) = node["lineItems"]["nodes"].as_array_mut() {
                nodes.extend(extra);
            }
            node["lineItems"]["pageInfo"] = more["pageInfo"].clone();
        }
        Ok(())
    }

    async fn product_by_id(&self, id: &str) -> Result<Option<ExternalRecord>, ConnectorError> {
        let data = self
            .graphql(
                documents::PRODUCT_BY_ID,
                json!({ "id": id, "mediaFirst": MEDIA_FIRST, "variantsFirst": VARIANTS_FIRST }),
                1 + product_cost(MEDIA_FIRST, VARIANTS_FIRST),
                Idempotency::Idempotent,
                "one product",
            )
            .await?;
        let mut node = data["product"].clone();
        if node.is_null() {
            return Ok(None);
        }
        self.complete_product(&mut node).await?;
        mapping::product_from_graphql(&node, self.currency).map(Some)
    }

    async fn primary_location(&self) -> Result<String, ConnectorError> {
        self.location
            .get_or_try_init(|| async {
                let data = self
                    .graphql(
                        documents::PRIMARY_LOCATION,
                        json!({}),
                        1,
                        Idempotency::Idempotent,
                        "the primary location",
                    )
                    .await?;
                data["location"]["id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ConnectorError::fatal("shopify shop has no primary location"))
            })
            .await
            .cloned()
    }

    async fn product_id_by_handle(&self, handle: &str) -> Result<Option<String>, ConnectorError> {
        let data = self
            .graphql(
                documents::PRODUCT_BY_HANDLE,
                json!({ "handle": handle }),
                1,
                Idempotency::Idempotent,
                "a product by handle",
            )
            .await?;
        Ok(data["productByHandle"]["id"].as_str().map(str::to_owned))
    }

    async fn apply_one(&self, op: &WriteOp) -> Result<Confirmed, ConnectorError> {
        op.check()?;
        match op {
            WriteOp::CreateProduct { product } => self.create_product(product).await,
            WriteOp::UpdateProduct {
                external_id,
                product,
                fields,
                ..
            } => {
                self.update_product(external_id.as_str(), product, fields, op)
                    .await
            }
            WriteOp::DeleteProductImage {
                product_id,
                image_id,
                content_hash,
            } => {
                let image_id =
                    match image_id {
                        Some(id) => id.as_str().to_owned(),
                        None => {
                            // Find the media by content hash on the current product.
                            let record =
                                self.product_by_id(product_id.as_str()).await?.ok_or_else(
                                    || ConnectorError::not_found(format!("product {product_id}")),
                                )?;
                            let RecordContent::Product(p) = record.content else {
                                return Err(ConnectorError::fatal("not a product"));
                            };
                            p.images
                                .iter()
                                .find(|i| i.content_hash == *content_hash)
                                .and_then(|i| i.external_id.clone())
                                .map(|id| id.0)
                                .ok_or_else(|| {
                                    ConnectorError::not_found(format!(
                                        "image {} on product {product_id}",
                                        content_hash.to_hex()
                                    ))
                                })?
                        }
                    };
                let data = self
                    .graphql(
                        documents::FILE_UPDATE,
                        json!({ "files": [{ "id": image_id, "referencesToRemove": [product_id.as_str()] }] }),
                        10,
                        Idempotency::Idempotent,
                        "an image detach",
                    )
                    .await?;
                // A repeated detach (the first answer was lost) finds the file gone: done.
                match user_errors(&data["fileUpdate"]) {
                    Err(ConnectorError::Rejected { code, .. }) if code == "FILE_DOES_NOT_EXIST" => {
                    }
                    other => other?,
                }
                self.confirm(product_id.as_str()).await
            }
            WriteOp::CreateOrder { .. } | WriteOp::UpdateOrder { .. } => Err(
                ConnectorError::rejected("unsupported", "shopify orders are read-only here"),
            ),
        }
    }

    async fn confirm(&self, id: &str) -> Result<Confirmed, ConnectorError> {
        let record = self
            .product_by_id(id)
            .await?
            .ok_or_else(|| ConnectorError::not_found(format!("product {id} after writing it")))?;
        Ok(Confirmed {
            record,
            adopted: false,
        })
    }

    /// A create is a `productSet` with a handle derived from the SKU: a repeat after an
    /// ambiguous failure finds the handle (HANDLE_NOT_UNIQUE, or `productByHandle` first) and adopts the
    /// product, updating it to `product`. A product found by handle is ours only if it carries
    /// one of `product`'s SKUs (merchants' handles come from titles, and distinct SKUs can map
    /// to one handle); otherwise the create uses the handle with a short hash of the SKU
    /// appended. (2025-01 has no `identifier` upsert; `productByHandle` reads the primary
    /// store, so no search-index lag.)
    async fn create_product(&self, product: &Product) -> Result<Confirmed, ConnectorError> {
        let Some(base) = handle_for(product) else {
            return self.create_with_handle(product, None).await;
        };
        let mut chosen = None;
        for handle in [base.clone(), hashed_handle(&base, product)] {
            match self.product_id_by_handle(&handle).await? {
                None => {
                    chosen = Some(handle);
                    break;
                }
                Some(id) => {
                    if let Some(record) = self.carries_sku_of(&id, product).await? {
                        return self.adopt(record, product).await;
                    }
                }
            }
        }
        let Some(handle) = chosen else {
            return Err(ConnectorError::rejected(
                "handle_taken",
                format!(
                    "handles {base:?} and {:?} are held by products without this product's SKUs",
                    hashed_handle(&base, product)
                ),
            ));
        };
        self.create_with_handle(product, Some(handle)).await
    }

    /// The product `id` when it carries one of `product`'s SKUs.
    async fn carries_sku_of(
        &self,
        id: &str,
        product: &Product,
    ) -> Result<Option<ExternalRecord>, ConnectorError> {
        let Some(record) = self.product_by_id(id).await? else {
            return Ok(None);
        };
        let RecordContent::Product(found) = &record.content else {
            return Ok(None);
        };
        let ours = skus_of(product);
        let matches = skus_of(found).iter().any(|s| ours.contains(s));
        Ok(matches.then_some(record))
    }

    async fn create_with_handle(
        &self,
        product: &Product,
        handle: Option<String>,
    ) -> Result<Confirmed, ConnectorError> {
        let location = self.primary_location().await?;
        let input = product_set_input(product, None, handle.as_deref(), Some(&location));
        let data = self
            .graphql(
                documents::PRODUCT_SET,
                json!({ "input": input, "mediaFirst": MEDIA_FIRST, "variantsFirst": VARIANTS_FIRST }),
                10 + product_cost(MEDIA_FIRST, VARIANTS_FIRST),
                Idempotency::NonIdempotent,
                "a product create",
            )
            .await?;
        let set = &data["productSet"];
        if let Err(e) = user_errors(set) {
            if let (ConnectorError::Rejected { code, .. }, Some(handle)) = (&e, &handle)
                // 2025-01's ProductSetUserErrorCode is HANDLE_NOT_UNIQUE; TAKEN is the generic code.
                && (code == "HANDLE_NOT_UNIQUE" || code == "TAKEN")
                && let Some(id) = self.product_id_by_handle(handle).await?
                && let Some(record) = self.carries_sku_of(&id, product).await?
            {
                return self.adopt(record, product).await;
            }
            return Err(e);
        }
        let id = set["product"]["id"]
            .as_str()
            .ok_or_else(|| ConnectorError::maybe_applied("productSet answered no product id"))?;
        self.settle_media(id, product).await?;
        self.confirm(id).await
    }

    /// Waits (up to [`MEDIA_SETTLE`]) for the media a write has just added from `product`'s new
    /// images (those without an external id) to leave PROCESSING: Shopify downloads them after
    /// answering. A FAILED one ends the write as `Rejected` with Shopify's `mediaErrors` code
    /// and message and the field `images.N`, so it becomes an issue on the record instead of a
    /// write that is repeated for ever (a FAILED media is not an image of the product, so the
    /// next diff would add it again). Media still processing at the deadline are left to
    /// finish; they read as pending images meanwhile.
    async fn settle_media(&self, id: &str, product: &Product) -> Result<(), ConnectorError> {
        let kept: std::collections::HashSet<&str> = product
            .images
            .iter()
            .filter_map(|i| i.external_id.as_ref().map(ExternalId::as_str))
            .collect();
        if kept.len() == product.images.len() {
            return Ok(());
        }
        let first = u32::try_from(product.images.len())
            .unwrap_or(250)
            .clamp(1, 250);
        let deadline = tokio::time::Instant::now() + MEDIA_SETTLE;
        let mut wait = Duration::from_millis(50);
        loop {
            let data = self
                .graphql(
                    documents::PRODUCT_MEDIA_STATUS,
                    json!({ "id": id, "first": first }),
                    3 + first * documents::MEDIA_STATUS_NODE_COST,
                    Idempotency::Idempotent,
                    "the processing state of new images",
                )
                .await?;
            if data["product"].is_null() {
                return Err(ConnectorError::not_found(format!(
                    "product {id} after writing it"
                )));
            }
            let mut pending = false;
            let nodes = data["product"]["media"]["nodes"].as_array();
            for (position, media) in nodes.into_iter().flatten().enumerate() {
                if media["id"].as_str().is_some_and(|m| kept.contains(m)) {
                    continue;
                }
                match media["status"].as_str() {
                    Some("FAILED") => return Err(failed_media(media, position, product)),
                    Some("UPLOADED" | "PROCESSING") => pending = true,
                    _ => {}
                }
            }
            if !pending || tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }

    /// Adopts `existing` (ours by SKU): writes `product` to it, keeping its variants (matched by
    /// SKU) and media (matched by content hash), and sets matched variants' stock to
    /// `product`'s absolute quantities (as moves from the quantity just read).
    async fn adopt(
        &self,
        existing: ExternalRecord,
        product: &Product,
    ) -> Result<Confirmed, ConnectorError> {
        let RecordContent::Product(found) = &existing.content else {
            return Err(ConnectorError::fatal("adopted record is not a product"));
        };
        let mut merged = product.clone();
        let mut stock = Vec::new();
        for v in &mut merged.variants {
            let Some(sku) = &v.sku else { continue };
            let Some(there) = found.variants.iter().find(|f| f.sku.as_ref() == Some(sku)) else {
                continue;
            };
            v.external_id = there.external_id.clone();
            if let (Some(variant), Some(to)) = (&there.external_id, v.stock) {
                let from = there.stock.unwrap_or(0);
                if from != to && !stock.iter().any(|c: &StockChange| c.variant == *variant) {
                    stock.push(StockChange {
                        variant: variant.clone(),
                        sku: Some(sku.clone()),
                        from,
                        to,
                    });
                }
            }
        }
        for image in &mut merged.images {
            if let Some(there) = found
                .images
                .iter()
                .find(|f| f.content_hash == image.content_hash)
            {
                image.external_id = there.external_id.clone();
            }
        }
        let fields: tidemark_core::FieldSet = WRITABLE_PRODUCT_FIELDS.into_iter().collect();
        let op = WriteOp::UpdateProduct {
            external_id: existing.external_id.clone(),
            product: merged.clone(),
            fields: fields.clone(),
            stock,
        };
        let mut confirmed = self
            .update_product(existing.external_id.as_str(), &merged, &fields, &op)
            .await?;
        confirmed.adopted = true;
        Ok(confirmed)
    }

    async fn update_product(
        &self,
        id: &str,
        product: &Product,
        fields: &tidemark_core::FieldSet,
        op: &WriteOp,
    ) -> Result<Confirmed, ConnectorError> {
        // Scalar product fields: productSet with the id and no list fields (lists replace).
        // Refuse, before sending anything, a field this connector cannot write: it must never
        // be confirmed as written.
        if let Some(field) = fields.iter().find(|f| !WRITABLE_PRODUCT_FIELDS.contains(f)) {
            return Err(ConnectorError::rejected(
                "unsupported_field",
                format!("shopify cannot write {field:?} of a product"),
            )
            .with_field(format!("{field:?}")));
        }
        let mut input = serde_json::Map::new();
        input.insert("id".into(), json!(id));
        for field in fields {
            match field {
                Field::Title => {
                    input.insert("title".into(), json!(product.title));
                }
                Field::Description => {
                    input.insert("descriptionHtml".into(), json!(product.description));
                }
                Field::Vendor => {
                    input.insert("vendor".into(), json!(product.vendor));
                }
                Field::Category => {
                    input.insert("productType".into(), json!(product.category));
                }
                Field::Tags => {
                    input.insert("tags".into(), json!(product.tags));
                }
                Field::Status => {
                    input.insert("status".into(), json!(mapping::status_enum(product.status)));
                }
                // Written per variant below (Sku, Barcode, Weight, Price, CompareAtPrice), as
                // lists (Variants, Images) or as moves (Stock).
                Field::Sku
                | Field::Barcode
                | Field::Weight
                | Field::Price
                | Field::CompareAtPrice
                | Field::Variants
                | Field::Images
                | Field::Stock => {}
                // Refused above.
                Field::Brand
                | Field::Attributes
                | Field::OrderStatus
                | Field::PaymentStatus
                | Field::Shipments
                | Field::OrderNote => {}
            }
        }
        // List fields: productSet replaces the whole list, so every kept variant and media id
        // is sent, new ones without an id; left-out entries are deleted (variants) or
        // detached (media). Kept variants carry only the fields this write changes.
        if fields.contains(&Field::Variants) {
            let location = self.primary_location().await?;
            let (options, variants) = variants_input(product, fields, &location);
            input.insert("productOptions".into(), options);
            input.insert("variants".into(), variants);
        }
        if fields.contains(&Field::Images) {
            input.insert("files".into(), files_input(product));
        }
        if input.len() > 1 {
            let data = self
                .graphql(
                    documents::PRODUCT_SET,
                    json!({ "input": input, "mediaFirst": MEDIA_FIRST, "variantsFirst": VARIANTS_FIRST }),
                    10 + product_cost(MEDIA_FIRST, VARIANTS_FIRST),
                    Idempotency::Idempotent,
                    "a product update",
                )
                .await?;
            user_errors(&data["productSet"])?;
            if fields.contains(&Field::Images) {
                self.settle_media(id, product).await?;
            }
        }
        // Prices, SKUs and barcodes of existing variants.
        let variant_fields = [
            Field::Price,
            Field::CompareAtPrice,
            Field::Sku,
            Field::Barcode,
            Field::Weight,
        ];
        if !fields.contains(&Field::Variants) && variant_fields.iter().any(|f| fields.contains(f)) {
            let variants: Vec<Value> = product
                .variants
                .iter()
                .filter_map(|v| {
                    let vid = v.external_id.as_ref()?;
                    let mut input = serde_json::Map::new();
                    input.insert("id".into(), json!(vid.as_str()));
                    if fields.contains(&Field::Price) {
                        input.insert("price".into(), json!(v.price.map(|p| p.to_string())));
                    }
                    if fields.contains(&Field::CompareAtPrice) {
                        input.insert(
                            "compareAtPrice".into(),
                            json!(v.compare_at_price.map(|p| p.to_string())),
                        );
                    }
                    let mut item = serde_json::Map::new();
                    if fields.contains(&Field::Sku) {
                        item.insert("sku".into(), json!(v.sku.as_ref().map(|s| s.as_str())));
                    }
                    if fields.contains(&Field::Weight) {
                        item.insert("measurement".into(), weight_input(v.weight_grams));
                    }
                    if !item.is_empty() {
                        input.insert("inventoryItem".into(), Value::Object(item));
                    }
                    if fields.contains(&Field::Barcode) {
                        input.insert(
                            "barcode".into(),
                            json!(v.barcode.as_ref().map(|b| b.as_str())),
                        );
                    }
                    Some(Value::Object(input))
                })
                .collect();
            for chunk in variants.chunks(250) {
                let data = self
                    .graphql(
                        documents::PRODUCT_VARIANTS_BULK_UPDATE,
                        json!({ "productId": id, "variants": chunk }),
                        10,
                        Idempotency::Idempotent,
                        "a variants update",
                    )
                    .await?;
                user_errors(&data["productVariantsBulkUpdate"])?;
            }
        }
        // Stock moves last, as compare-and-set writes of the current quantity plus the delta.
        // Everything before the first set is safe to repeat; once a set was sent, a failure
        // must not make the engine repeat it.
        let moves = op.stock_changes();
        let moves: Vec<_> = moves.iter().filter(|c| c.delta() != 0).collect();
        if moves.is_empty() {
            return self.confirm(id).await;
        }
        let location = self.primary_location().await?;
        let items = inventory_items_of(id, self).await?;
        let mut deltas: Vec<(String, i64)> = Vec::new();
        for change in moves {
            let item = items
                .iter()
                .find(|(v, _)| *v == change.variant.as_str())
                .map(|(_, i)| i.clone())
                .ok_or_else(|| {
                    ConnectorError::not_found(format!("variant {} of product {id}", change.variant))
                })?;
            deltas.push((item, change.delta()));
        }
        let mut sent = false;
        for chunk in deltas.chunks(250) {
            self.set_stock(chunk, &location, &mut sent)
                .await
                .map_err(|e| if sent { after_moves(e) } else { e })?;
        }
        self.confirm(id).await.map_err(after_moves)
    }

    /// Moves the stock of `deltas` (inventory item, delta; at most 250) at `location` by
    /// compare-and-set: reads each item's `available`, sets it to that plus the delta with the
    /// read value as `compareQuantity`. When a sale (or any other change) lands between the
    /// read and the set, Shopify answers `COMPARE_QUANTITY_STALE` and sets nothing: the
    /// quantities are read again and the set repeated, at most [`STOCK_SET_ATTEMPTS`] times.
    /// `sent` becomes true once a set was applied.
    async fn set_stock(
        &self,
        deltas: &[(String, i64)],
        location: &str,
        sent: &mut bool,
    ) -> Result<(), ConnectorError> {
        let mut last = None;
        for _ in 0..STOCK_SET_ATTEMPTS {
            let current = self.available_at(deltas, location).await?;
            let quantities: Vec<Value> = deltas
                .iter()
                .zip(&current)
                .map(|((item, delta), now)| {
                    json!({ "inventoryItemId": item, "locationId": location,
                            "quantity": now + delta, "compareQuantity": now })
                })
                .collect();
            // An error of this request is classified by the client (an ambiguous failure of
            // a non-idempotent request is maybe_applied); earlier chunks are the caller's.
            let data = self
                .graphql(
                    documents::INVENTORY_SET_QUANTITIES,
                    json!({ "input": { "name": "available", "reason": "correction",
                                       "ignoreCompareQuantity": false, "quantities": quantities } }),
                    10,
                    Idempotency::NonIdempotent,
                    "a stock set",
                )
                .await?;
            match user_errors(&data["inventorySetQuantities"]) {
                Ok(()) => {
                    *sent = true;
                    return Ok(());
                }
                // Nothing was set: the quantity moved since it was read.
                Err(ConnectorError::Rejected { code, message, .. })
                    if code == "COMPARE_QUANTITY_STALE" =>
                {
                    tracing::debug!(%message, "stock moved between read and set; reading again");
                    last = Some(message);
                }
                Err(e) => return Err(e),
            }
        }
        Err(ConnectorError::transient(format!(
            "the stock of {} inventory item(s) kept changing between read and set \
             ({STOCK_SET_ATTEMPTS} attempts; last: {})",
            deltas.len(),
            last.unwrap_or_default()
        )))
    }

    /// The `available` quantity of each item of `deltas` at `location`, in order.
    async fn available_at(
        &self,
        deltas: &[(String, i64)],
        location: &str,
    ) -> Result<Vec<i64>, ConnectorError> {
        let ids: Vec<&str> = deltas.iter().map(|(item, _)| item.as_str()).collect();
        let count = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        let data = self
            .graphql(
                documents::INVENTORY_LEVELS,
                json!({ "ids": ids, "locationId": location }),
                2 + count.saturating_mul(3),
                Idempotency::Idempotent,
                "stock levels",
            )
            .await?;
        let nodes = data["nodes"].as_array().cloned().unwrap_or_default();
        ids.iter()
            .map(|item| {
                nodes
                    .iter()
                    .find(|n| n["id"].as_str() == Some(item))
                    .and_then(|n| {
                        n["inventoryLevel"]["quantities"]
                            .as_array()?
                            .iter()
                            .find(|q| q["name"] == "available")?["quantity"]
                            .as_i64()
                    })
                    .ok_or_else(|| {
                        ConnectorError::not_found(format!(
                            "inventory item {item} is not stocked at {location}"
                        ))
                    })
            })
            .collect()
    }
}

/// The `Rejected` of a media Shopify could not process (FAILED), for the image at `position`.
fn failed_media(media: &Value, position: usize, product: &Product) -> ConnectorError {
    let error = &media["mediaErrors"][0];
    let src = product.images.get(position).map_or("", |i| i.src.as_str());
    ConnectorError::rejected(
        error["code"].as_str().unwrap_or("MEDIA_FAILED"),
        error["message"]
            .as_str()
            .unwrap_or("Shopify could not process the image"),
    )
    .with_field(format!("images.{position}"))
    .with_payload(media.clone())
    .context(format!("image {src}"))
}

/// A failure after a stock set was sent: the write as a whole must not be repeated blindly
/// (the move would be added twice), so it is reported as maybe applied.
fn after_moves(e: ConnectorError) -> ConnectorError {
    if e.is_maybe_applied() {
        return e;
    }
    ConnectorError::maybe_applied(format!("after a stock move was applied: {e}"))
}

/// Variant gid → inventory item gid of a product (read from the platform, every page).
async fn inventory_items_of(
    id: &str,
    client: &Shopify,
) -> Result<Vec<(String, String)>, ConnectorError> {
    let mut items = Vec::new();
    let mut after = Value::Null;
    for _ in 0..MAX_PAGES_PER_PRODUCT {
        let data = client
            .graphql(
                documents::PRODUCT_VARIANTS_PAGE,
                json!({ "id": id, "first": 160, "after": after }),
                3 + 160 * VARIANT_NODE_COST,
                Idempotency::Idempotent,
                "inventory items",
            )
            .await?;
        let variants = &data["product"]["variants"];
        items.extend(
            variants["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| {
                    Some((
                        v["id"].as_str()?.to_owned(),
                        v["inventoryItem"]["id"].as_str()?.to_owned(),
                    ))
                }),
        );
        let next = &variants["pageInfo"]["endCursor"];
        if variants["pageInfo"]["hasNextPage"] != json!(true) || next.is_null() || *next == after {
            return Ok(items);
        }
        after = next.clone();
    }
    Err(ConnectorError::fatal(format!(
        "variants of product {id} did not end within {MAX_PAGES_PER_PRODUCT} pages"
    )))
}

/// The handle a created product gets: its SKU (or first variant's), lower-cased.
pub fn handle_for(product: &Product) -> Option<String> {
    let sku = product
        .sku
        .as_ref()
        .or_else(|| product.variants.iter().find_map(|v| v.sku.as_ref()))?;
    let handle: String = sku
        .as_str()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Some(handle)
}

/// Every SKU of a product (its own and its variants').
fn skus_of(product: &Product) -> Vec<&Sku> {
    product
        .sku
        .iter()
        .chain(product.variants.iter().filter_map(|v| v.sku.as_ref()))
        .collect()
}

/// `base` with a short, stable hash of the product's exact SKU appended (FNV-1a), for when
/// `base` is held by a product that is not this one: `AB_1`, `ab.1` and `AB 1` differ here.
pub fn hashed_handle(base: &str, product: &Product) -> String {
    let sku = product
        .sku
        .as_ref()
        .or_else(|| product.variants.iter().find_map(|v| v.sku.as_ref()))
        .map_or("", |s| s.as_str());
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sku.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{base}-{:08x}", hash >> 32)
}

/// `ProductSetInput` for a whole product (creates: variants with initial quantities).
pub fn product_set_input(
    product: &Product,
    id: Option<&str>,
    handle: Option<&str>,
    location: Option<&str>,
) -> Value {
    let (options, variants) = {
        let all: tidemark_core::FieldSet =
            [Field::Price, Field::Sku, Field::Barcode, Field::Weight]
                .into_iter()
                .collect();
        variants_input(product, &all, location.unwrap_or_default())
    };
    let mut input = json!({
        "title": product.title,
        "descriptionHtml": product.description,
        "vendor": product.vendor,
        "productType": product.category,
        "tags": product.tags,
        "status": mapping::status_enum(product.status),
        "productOptions": options,
        "variants": variants,
        "files": files_input(product),
    });
    if let Some(id) = id {
        input["id"] = json!(id);
    }
    if let Some(handle) = handle {
        input["handle"] = json!(handle);
    }
    input
}

/// `productOptions` and `variants` of a `ProductSetInput`. Variants with an external id are
/// kept (their id sent, plus only the fields in `fields`); variants without one are created
/// with every field and their stock as an initial quantity at `location` (no stock is ever
/// written as an absolute quantity on an existing variant).
pub fn variants_input(
    product: &Product,
    fields: &tidemark_core::FieldSet,
    location: &str,
) -> (Value, Value) {
    let mut option_names: Vec<&String> = Vec::new();
    for v in &product.variants {
        for k in v.options.keys() {
            if !option_names.contains(&k) {
                option_names.push(k);
            }
        }
    }
    let options: Vec<Value> = option_names
        .iter()
        .map(|name| {
            let mut values: Vec<&String> = Vec::new();
            for v in &product.variants {
                if let Some(value) = v.options.get(*name)
                    && !values.contains(&value)
                {
                    values.push(value);
                }
            }
            json!({ "name": name, "values": values.iter().map(|v| json!({ "name": v })).collect::<Vec<_>>() })
        })
        .collect();
    let variants: Vec<Value> = product
        .variants
        .iter()
        .map(|v| {
            let mut input = serde_json::Map::new();
            input.insert(
                "optionValues".into(),
                json!(
                    v.options
                        .iter()
                        .map(|(n, val)| json!({ "optionName": n, "name": val }))
                        .collect::<Vec<_>>()
                ),
            );
            let new = v.external_id.is_none();
            if let Some(id) = &v.external_id {
                input.insert("id".into(), json!(id.as_str()));
            }
            if new || fields.contains(&Field::Sku) {
                input.insert("sku".into(), json!(v.sku.as_ref().map(|s| s.as_str())));
            }
            if new || fields.contains(&Field::Barcode) {
                input.insert(
                    "barcode".into(),
                    json!(v.barcode.as_ref().map(|b| b.as_str())),
                );
            }
            if new || fields.contains(&Field::Price) {
                input.insert("price".into(), json!(v.price.map(|p| p.to_string())));
            }
            // A compare-at price is written only when asked (it may be readonly here).
            if new || fields.contains(&Field::CompareAtPrice) {
                input.insert(
                    "compareAtPrice".into(),
                    json!(v.compare_at_price.map(|p| p.to_string())),
                );
            }
            if new
                && !location.is_empty()
                && let Some(stock) = v.stock
            {
                input.insert(
                    "inventoryQuantities".into(),
                    json!([{ "locationId": location, "name": "available", "quantity": stock }]),
                );
            }
            if new || fields.contains(&Field::Weight) {
                input.insert(
                    "inventoryItem".into(),
                    json!({ "tracked": true, "measurement": weight_input(v.weight_grams) }),
                );
            }
            Value::Object(input)
        })
        .collect();
    (Value::Array(options), Value::Array(variants))
}

/// `InventoryItemMeasurementInput` of a weight in grams (none is written as zero: Shopify has
/// no empty weight).
fn weight_input(grams: Option<rust_decimal::Decimal>) -> Value {
    let value = grams
        .and_then(|w| w.to_string().parse::<f64>().ok())
        .unwrap_or(0.0);
    json!({ "weight": { "unit": "GRAMS", "value": value } })
}

/// The product fields an update can write here. Brand and attributes have no Shopify field
/// this connector writes (vendor is its own field; metafields are not supported).
pub const WRITABLE_PRODUCT_FIELDS: [Field; 14] = [
    Field::Sku,
    Field::Title,
    Field::Description,
    Field::Vendor,
    Field::Category,
    Field::Tags,
    Field::Barcode,
    Field::Weight,
    Field::Status,
    Field::Images,
    Field::Variants,
    Field::Price,
    Field::CompareAtPrice,
    Field::Stock,
];

/// `files` of a `ProductSetInput`: kept media by id, new images by source URL.
pub fn files_input(product: &Product) -> Value {
    product
        .images
        .iter()
        .map(|i| match &i.external_id {
            Some(id) => json!({ "id": id.as_str() }),
            None => json!({ "originalSource": i.src, "alt": i.alt.clone().unwrap_or_default(), "contentType": "IMAGE" }),
        })
        .collect()
}

/// `userErrors` of a mutation payload as a `Rejected` (the first one; the payload kept).
fn user_errors(payload: &Value) -> Result<(), ConnectorError> {
    let Some(first) = payload["userErrors"].as_array().and_then(|e| e.first()) else {
        return Ok(());
    };
    let field = first["field"].as_array().map(|f| {
        f.iter()
            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(".")
    });
    let mut error = ConnectorError::rejected(
        first["code"].as_str().unwrap_or("USER_ERROR"),
        first["message"].as_str().unwrap_or(""),
    )
    .with_payload(payload["userErrors"].clone());
    if let Some(field) = field {
        error = error.with_field(field);
    }
    Err(error)
}

/// Reassembles the products of a whole bulk result held in memory (see [`crate::bulk`]).
pub fn parse_bulk_lines(body: &[u8]) -> Result<Vec<Value>, ConnectorError> {
    crate::bulk::parse_bulk_lines(body)
}

fn next_cursor(connection: &Value) -> Result<Option<Cursor>, ConnectorError> {
    if connection["pageInfo"]["hasNextPage"] != json!(true) {
        return Ok(None);
    }
    let after = connection["pageInfo"]["endCursor"]
        .as_str()
        .ok_or_else(|| ConnectorError::fatal("shopify page with a next page but no endCursor"))?;
    Cursor::encode(&ScanState {
        after: after.to_owned(),
    })
    .map(Some)
}

/// Feeds `throttleStatus` into the pacer and turns THROTTLED into `RateLimited` with the wait
/// the bucket needs to cover `requested`.
fn observe(
    pacer: &Pacer,
    stats: &CostStats,
    response: &ApiResponse,
    requested: u32,
) -> Result<(), ConnectorError> {
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        // A cut-off answer: a read is repeated; a write is reported as maybe applied.
        return Err(ConnectorError::transient(format!(
            "{} answered a body that is not JSON",
            response.description
        )));
    };
    let first_answer = stats.answers.fetch_add(1, Ordering::Relaxed) == 0;
    let cost = &body["extensions"]["cost"];
    let status = &cost["throttleStatus"];
    let budget = Budget {
        maximum: status["maximumAvailable"].as_f64().unwrap_or(0.0),
        available: status["currentlyAvailable"].as_f64().unwrap_or(0.0),
        restore_per_second: status["restoreRate"].as_f64().unwrap_or(0.0),
    };
    if status.is_object()
        && let Err(e) = pacer.set_budget(budget)
    {
        tracing::warn!(error = %e, "shopify throttleStatus ignored");
    }
    if let Some(actual) = cost["actualQueryCost"].as_u64() {
        stats.actual_points.fetch_add(actual, Ordering::Relaxed);
    }
    let throttled = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["extensions"]["code"] == json!("THROTTLED"));
    if throttled {
        stats.throttled.fetch_add(1, Ordering::Relaxed);
        if !first_answer {
            stats.throttled_after_first.fetch_add(1, Ordering::Relaxed);
        }
        let wait = if budget.restore_per_second > 0.0 {
            ((f64::from(requested) - budget.available) / budget.restore_per_second).max(0.05)
        } else {
            1.0
        };
        return Err(ConnectorError::rate_limited(
            Some(Duration::from_secs_f64(wait.min(60.0))),
            "shopify answered THROTTLED",
        ));
    }
    Ok(())
}

#[async_trait]
impl Connector for Shopify {
    fn platform(&self) -> PlatformKind {
        PlatformKind::Shopify
    }

    fn capabilities(&self) -> Capabilities {
        let incremental = Some(IncrementalFilter {
            granularity: Duration::from_secs(1),
            inclusive: true,
        });
        Capabilities {
            max_batch_size: 50,
            kinds: [
                (
                    ScanKind::Products,
                    KindCapabilities {
                        incremental,
                        writable: true,
                    },
                ),
                (
                    ScanKind::Orders,
                    KindCapabilities {
                        incremental,
                        writable: false,
                    },
                ),
            ]
            .into_iter()
            .collect(),
            webhooks: WebhookSupport::Signed,
            bulk_full_scan: true,
            // A repeated create adopts only what it made under its SKU-derived handle; a
            // product holding the SKU under another handle is not found by the create.
            upsert_by_sku: false,
            recommended_overlap: Duration::from_secs(60),
        }
    }

    fn settings_schema(&self) -> SettingsSchema {
        crate::config::schema()
    }

    /// Brand and custom attributes have no Shopify field (metafields are not written).
    fn carries(&self) -> tidemark_core::FieldSet {
        use tidemark_core::Field;
        Field::PRODUCT_FIELDS
            .into_iter()
            .chain(Field::ORDER_FIELDS)
            .filter(|f| !matches!(f, Field::Brand | Field::Attributes))
            .collect()
    }

    /// No paused status: a paused product is stored as a draft. A product has no SKU of its
    /// own (its variants do), and variant image links are not read back.
    fn as_stored(&self, mut product: tidemark_core::Product) -> tidemark_core::Product {
        if product.status == tidemark_core::ProductStatus::Paused {
            product.status = tidemark_core::ProductStatus::Draft;
        }
        product.sku = None;
        for variant in &mut product.variants {
            variant.image_hashes.clear();
        }
        product
    }

    fn currency(&self) -> Option<Currency> {
        Some(self.currency)
    }

    async fn scan_page(
        &self,
        kind: ScanKind,
        scope: &ScanScope,
        cursor: Option<&Cursor>,
    ) -> Result<ScanPage, ConnectorError> {
        match kind {
            ScanKind::Products => self.scan_products(scope, cursor).await,
            ScanKind::Orders => self.scan_orders(scope, cursor).await,
        }
    }

    async fn fetch_one(
        &self,
        kind: ScanKind,
        id: &ExternalId,
    ) -> Result<Option<ExternalRecord>, ConnectorError> {
        match kind {
            // An inventory item named by an `inventory_levels/update` delivery the connection
            // could not resolve from what it had read: the record is its product.
            ScanKind::Products if id.as_str().starts_with("gid://shopify/InventoryItem/") => {
                self.product_by_item(id.as_str()).await
            }
            ScanKind::Products => self.product_by_id(id.as_str()).await,
            ScanKind::Orders => {
                let data = self
                    .graphql(
                        documents::ORDER_BY_ID,
                        json!({ "id": id.as_str() }),
                        orders_page_cost(1) - 2,
                        Idempotency::Idempotent,
                        "one order",
                    )
                    .await?;
                let mut node = data["order"].clone();
                if node.is_null() {
                    return Ok(None);
                }
                self.complete_order(&mut node).await?;
                mapping::order_from_graphql(&node, self.currency).map(Some)
            }
        }
    }

    async fn find_by_sku(&self, sku: &Sku) -> Result<Option<ExternalRecord>, ConnectorError> {
        let escaped = sku.as_str().replace('\\', "\\\\").replace('\'', "\\'");
        let data = self
            .graphql(
                documents::VARIANTS_BY_SKU,
                json!({ "query": format!("sku:'{escaped}'") }),
                2 + 5 * 2,
                Idempotency::Idempotent,
                "variants by SKU",
            )
            .await?;
        let product = data["productVariants"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["sku"].as_str() == Some(sku.as_str()))
            .and_then(|v| v["product"]["id"].as_str().map(str::to_owned));
        match product {
            Some(id) => self.product_by_id(&id).await,
            None => Ok(None),
        }
    }

    async fn apply_writes(&self, writes: &[Write]) -> Result<Vec<WriteResult>, ConnectorError> {
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            let outcome = self.apply_one(&write.op).await;
            results.push(WriteResult {
                key: write.key.clone(),
                outcome,
            });
        }
        Ok(results)
    }

    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, ConnectorError> {
        let secret = self.keys.webhook_secret.as_deref().ok_or_else(|| {
            ConnectorError::unauthorized("no webhook secret is configured for this connection")
        })?;
        let mut event = crate::webhook::parse(headers, body, [secret.as_bytes()])?;
        // `inventory_levels/update` names an inventory item: name its product where known
        // (otherwise `fetch_one` resolves the inventory item gid to its product).
        if let Some(resource) = event.resource.as_mut()
            && resource
                .external_id
                .as_str()
                .starts_with("gid://shopify/InventoryItem/")
            && let Some(product) = self.product_of_item(resource.external_id.as_str())
        {
            resource.external_id = ExternalId::new(product);
        }
        Ok(event)
    }
}

/// When a scan's clock may move: never past `now − 60 s` (search-index lag).
pub fn capped_clock(max_seen: Timestamp, now: Timestamp) -> Timestamp {
    max_seen.min(now.saturating_sub_millis(60_000))
}
