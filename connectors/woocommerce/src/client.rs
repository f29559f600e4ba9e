//! The WooCommerce connector: HTTP calls through the shared client, paging, writes.
//!
//! Paging: `orderby=id&order=asc` (never by date: ties make date pages unstable), by `offset`.
//! Each page after the first starts one record *before* where the last one ended and must
//! contain the last id seen: if it does not, records were deleted before the cursor and the
//! offset steps back until it does, so a delete during a scan never makes it skip a record. An
//! empty page there is such a case too (deletes pushed the offset past the end), not the end:
//! the offset goes to the last record `X-WP-Total` counts and steps back from there.
//! Incremental scans use `modified_after` (strict) with `dates_are_gmt=true` at the caller's
//! `since`, which already has the overlap subtracted.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use futures::{StreamExt as _, TryStreamExt as _};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tidemark_connector::http::{ApiRequest, HttpClient, HttpClientConfig, Idempotency};
use tidemark_connector::{
    Capabilities, Confirmed, Connector, ConnectorError, Cursor, IncrementalFilter,
    KindCapabilities, ScanPage, ScanScope, SettingsSchema, WebhookEvent, WebhookSupport, Write,
    WriteOp, WriteResult,
};
use tidemark_core::{
    ContentHash, Currency, ExternalId, ExternalRecord, FieldSet, PlatformKind, Product, ScanKind,
    Sku, StockChange,
};
use url::Url;

use crate::config::{Keys, Settings};
use crate::mapping;

/// How many times one scan page steps back looking for where the last page ended (deletes
/// before the cursor) before giving up with a transient error.
const MAX_STEP_BACKS: u32 = 1_000;
/// Pages of 100 variations read for one product at most (10,000 variations).
const MAX_VARIATION_PAGES: u32 = 100;
/// WooCommerce's batch limit (`woocommerce_rest_batch_items_limit`).
pub const MAX_BATCH: usize = 100;
/// How many of the newest orders (in pages of 100) `find_order_by_number` reads when the
/// shop's search does not know the number (tidemark's number lives in meta data, which
/// WooCommerce's order search does not read).
const RECENT_ORDER_PAGES: u32 = 5;
/// Attempts of one logical call when the answer was transient (the shared client already
/// retries statuses; this also covers cut bodies).
const ATTEMPTS: usize = 6;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
struct PageState {
    offset: u64,
    last_id: u64,
}

/// One WooCommerce connection.
#[derive(Debug, Clone)]
pub struct WooCommerce {
    http: HttpClient,
    settings: Settings,
    keys: Keys,
    currency: Currency,
}

fn numeric(id: &ExternalId) -> Result<u64, ConnectorError> {
    id.as_str()
        .parse()
        .map_err(|_| ConnectorError::fatal(format!("`{id}` is not a WooCommerce id")))
}

fn id_u64(v: &Value) -> u64 {
    v.get("id").and_then(Value::as_u64).unwrap_or(0)
}

impl WooCommerce {
    pub fn new(settings: Settings, keys: Keys) -> Result<Self, ConnectorError> {
        let base = format!(
            "{}/{}/",
            settings.base_url.trim_end_matches('/'),
            settings.api_path.trim_matches('/')
        );
        let base = Url::parse(&base)
            .map_err(|e| ConnectorError::fatal(format!("bad WooCommerce URL `{base}`: {e}")))?;
        let mut config = HttpClientConfig::new(PlatformKind::Woocommerce, base);
        let timeout = Duration::from_secs(u64::from(settings.timeout_secs.max(1)));
        config.read_timeout = timeout;
        config.total_timeout = config.total_timeout.max(timeout);
        config.redactor.add_secret(&keys.consumer_key);
        config.redactor.add_secret(&keys.consumer_secret);
        if !settings.query_string_auth {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", keys.consumer_key, keys.consumer_secret));
            config =
                config.secret_header(http::header::AUTHORIZATION, &format!("Basic {basic}"))?;
        }
        // A wrong currency would mislabel every price: refused, never replaced by a default.
        let currency = Currency::parse(&settings.currency).map_err(|e| {
            ConnectorError::fatal(format!(
                "woocommerce currency setting {:?} is not a currency code: {e}",
                settings.currency
            ))
        })?;
        Ok(Self {
            http: HttpClient::new(config)?,
            settings,
            keys,
            currency,
        })
    }

    /// Another retry policy for the shared HTTP client, for tests that fault chosen requests.
    pub fn with_retry(
        mut self,
        retry: tidemark_connector::http::RetryPolicy,
    ) -> Result<Self, ConnectorError> {
        let mut config = self.http.config().clone();
        config.retry = retry;
        self.http = HttpClient::new(config)?;
        Ok(self)
    }

    /// Shorter timeouts, for tests against a simulator that holds answers.
    pub fn with_timeouts(mut self, total: Duration) -> Result<Self, ConnectorError> {
        let mut config = self.http.config().clone();
        config.total_timeout = total;
        config.read_timeout = total;
        self.http = HttpClient::new(config)?;
        Ok(self)
    }

    fn variation_concurrency(&self) -> usize {
        let n = self
            .settings
            .variation_concurrency
            .clamp(1, crate::config::MAX_VARIATION_CONCURRENCY);
        usize::try_from(n).unwrap_or(1)
    }

    fn per_page(&self) -> u64 {
        u64::from(self.settings.per_page.clamp(1, 100))
    }

    fn auth(&self, request: ApiRequest) -> ApiRequest {
        if self.settings.query_string_auth {
            request
                .query("consumer_key", &self.keys.consumer_key)
                .query("consumer_secret", &self.keys.consumer_secret)
        } else {
            request
        }
    }

    /// Sends a request built by `build`, decoding JSON. A body that does not parse (cut on the
    /// way) is transient; idempotent calls are repeated on transient answers.
    async fn call(
        &self,
        build: impl Fn() -> Result<ApiRequest, ConnectorError>,
    ) -> Result<(Value, HeaderMap), ConnectorError> {
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let request = self.auth(build()?);
            let idempotent = request.is_idempotent();
            let outcome: Result<(), ConnectorError> = match self.http.send(request).await {
                Ok(answer) => match serde_json::from_slice::<Value>(&answer.body) {
                    Ok(v) => return Ok((v, answer.headers)),
                    Err(e) => Err(ConnectorError::Transient {
                        message: format!(
                            "{} answered a body that is not JSON: {e}",
                            answer.description
                        ),
                        maybe_applied: !idempotent,
                        retry_after: None,
                    }),
                },
                Err(e) => Err(e),
            };
            let Err(error) = outcome else { continue };
            let again = idempotent && error.is_retryable() && attempt + 1 < ATTEMPTS;
            if !again {
                return Err(mapping::name_field(error));
            }
            let wait = error.retry_hint().unwrap_or(Duration::from_millis(20));
            tokio::time::sleep(wait).await;
            last = Some(error);
        }
        Err(last.unwrap_or_else(|| ConnectorError::transient("no attempt made")))
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(Value, HeaderMap), ConnectorError> {
        self.call(|| {
            let mut r = ApiRequest::get(path.to_owned());
            for (k, v) in query {
                r = r.query(*k, v);
            }
            Ok(r)
        })
        .await
    }

    /// Every variation of a variable product, in pages of 100 until a short page. Each page
    /// must bring variations not seen yet (a cache that ignores `page` would repeat the first
    /// forever), and at most [`MAX_VARIATION_PAGES`] are read.
    async fn variations(&self, product_id: u64) -> Result<Vec<Value>, ConnectorError> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for page in 1..=MAX_VARIATION_PAGES {
            let (v, _) = self
                .get(
                    &format!("products/{product_id}/variations"),
                    &[
                        ("per_page", "100".into()),
                        ("page", page.to_string()),
                        ("orderby", "id".into()),
                        ("order", "asc".into()),
                    ],
                )
                .await?;
            let items = v.as_array().cloned().unwrap_or_default();
            let n = items.len();
            let before = out.len();
            out.extend(items.into_iter().filter(|item| seen.insert(id_u64(item))));
            if n < 100 {
                return Ok(out);
            }
            if out.len() == before {
                return Err(ConnectorError::fatal(format!(
                    "variations of product {product_id}: page {page} repeats variations already \
                     read (the shop or a cache in front of it ignores `page`)"
                )));
            }
        }
        Err(ConnectorError::fatal(format!(
            "product {product_id} has more than {} variations (or its listing never ends)",
            MAX_VARIATION_PAGES * 100
        )))
    }

    async fn product_record(&self, product: &Value) -> Result<ExternalRecord, ConnectorError> {
        let variations = if product.get("type").and_then(Value::as_str) == Some("variable") {
            self.variations(id_u64(product)).await?
        } else {
            Vec::new()
        };
        mapping::product_from_wc(product, &variations, self.currency)
    }

    async fn product_by_id(&self, id: u64) -> Result<Option<ExternalRecord>, ConnectorError> {
        match self.get(&format!("products/{id}"), &[]).await {
            Ok((v, _)) => {
                let parent = v.get("parent_id").and_then(Value::as_u64).unwrap_or(0);
                if parent != 0 {
                    // A variation id: answer its product.
                    return Box::pin(self.product_by_id(parent)).await;
                }
                Ok(Some(self.product_record(&v).await?))
            }
            Err(ConnectorError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Writes
    // -----------------------------------------------------------------------------------------

    async fn write(&self, op: &WriteOp) -> Result<Confirmed, ConnectorError> {
        op.check()?;
        match op {
            WriteOp::CreateProduct { product } => self.create_product(product).await,
            WriteOp::UpdateProduct {
                external_id,
                product,
                fields,
                ..
            } => {
                let id = numeric(external_id)?;
                self.update_product(id, product, fields, op.stock_changes())
                    .await
                    .map(|record| Confirmed {
                        record,
                        adopted: false,
                    })
            }
            WriteOp::DeleteProductImage {
                product_id,
                image_id,
                content_hash,
            } => {
                let id = numeric(product_id)?;
                let record = self
                    .delete_image(id, image_id.as_ref(), *content_hash)
                    .await?;
                Ok(Confirmed {
                    record,
                    adopted: false,
                })
            }
            WriteOp::CreateOrder { order } => {
                let body = mapping::order_body(order)?;
                let (v, _) = self
                    .call(|| ApiRequest::post("orders", Idempotency::NonIdempotent).json(&body))
                    .await?;
                Ok(Confirmed {
                    record: mapping::order_from_wc(&v)?,
                    adopted: false,
                })
            }
            WriteOp::UpdateOrder {
                external_id,
                order,
                fields,
            } => {
                let body = mapping::order_update_body(order, fields);
                let path = format!("orders/{}", numeric(external_id)?);
                let (v, _) = self
                    .call(|| ApiRequest::put(path.clone()).json(&body))
                    .await?;
                Ok(Confirmed {
                    record: mapping::order_from_wc(&v)?,
                    adopted: false,
                })
            }
        }
    }

    /// Creates a product. The parent is sent with a SKU whenever the product has one anywhere
    /// ([`mapping::parent_sku`]), so a repeat of a create that may have applied is refused by
    /// WooCommerce's unique-SKU rule and the existing product adopted (and updated to
    /// `product`), never duplicated. A product without any SKU is posted once: when that post
    /// may have applied, the `maybe_applied` error goes back to the caller instead of a repeat.
    ///
    /// Once the parent exists, a later failure (a variation refused or not created, the read
    /// back) does not fail the create: the record as far as it exists is confirmed, so the
    /// caller binds the product and a later update (under `Field::Variants`) adds the variants
    /// the record lacks.
    async fn create_product(&self, product: &Product) -> Result<Confirmed, ConnectorError> {
        let body = mapping::product_body(product, None);
        let protected = mapping::parent_sku(product).is_some();
        let mut adopted = None;
        let mut created = None;
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let answer = self
                .call(|| ApiRequest::post("products", Idempotency::NonIdempotent).json(&body))
                .await;
            match answer {
                Ok((v, _)) => {
                    created = Some(v);
                    break;
                }
                Err(ConnectorError::Rejected { code, payload, .. })
                    if code == "product_invalid_sku" =>
                {
                    let resource = payload
                        .get("data")
                        .and_then(|d| d.get("resource_id"))
                        .and_then(Value::as_u64);
                    match resource {
                        Some(id) => {
                            adopted = Some(id);
                            break;
                        }
                        None => {
                            return Err(ConnectorError::rejected(
                                "product_invalid_sku",
                                "Invalid or duplicated SKU.",
                            )
                            .with_field("sku"));
                        }
                    }
                }
                // Without a SKU nothing can tell a repeat from a new product: hand the
                // ambiguity to the caller rather than risk a second product.
                Err(e) if e.is_maybe_applied() && !protected => return Err(e),
                // With one, a repeat that finds the first attempt applied is refused as a
                // duplicate SKU and adopts it.
                Err(e) if e.is_retryable() && attempt + 1 < ATTEMPTS => {
                    tokio::time::sleep(e.retry_hint().unwrap_or(Duration::from_millis(20))).await;
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(id) = adopted {
            return self.adopt(id, product).await;
        }
        let created = created.ok_or_else(|| {
            last.unwrap_or_else(|| ConnectorError::transient("product create did not complete"))
        })?;
        let id = id_u64(&created);
        if id == 0 {
            return Err(ConnectorError::maybe_applied(
                "woocommerce answered a product create without an id",
            ));
        }
        if !mapping::is_simple(product) {
            let image_ids = image_ids(product, &created);
            if let Err(e) = self
                .create_missing_variations(id, product, &image_ids)
                .await
            {
                tracing::warn!(
                    product = id,
                    error = %e,
                    "woocommerce product created without all its variations; an update adds them"
                );
            }
        }
        let record = match self.product_by_id(id).await {
            Ok(Some(record)) => record,
            other => {
                if let Err(e) = &other {
                    tracing::warn!(product = id, error = %e, "woocommerce product not read back after create");
                }
                // The create answer is the record as far as it is known.
                mapping::product_from_wc(&created, &[], self.currency)?
            }
        };
        Ok(Confirmed {
            record,
            adopted: false,
        })
    }

    /// Adopts the existing product (or the product of the variation) `id` that holds the SKU
    /// of a create, updating it to `product`. Images the product already has are matched and
    /// kept by id rather than uploaded again.
    async fn adopt(&self, id: u64, product: &Product) -> Result<Confirmed, ConnectorError> {
        let (v, _) = self.get(&format!("products/{id}"), &[]).await?;
        let parent = v.get("parent_id").and_then(Value::as_u64).unwrap_or(0);
        let (id, existing) = if parent != 0 {
            (
                parent,
                self.get(&format!("products/{parent}"), &[]).await?.0,
            )
        } else {
            (id, v)
        };
        let mut product = product.clone();
        mapping::bind_existing_images(&mut product, &existing);
        let all: FieldSet = tidemark_core::Field::PRODUCT_FIELDS
            .into_iter()
            .filter(|f| *f != tidemark_core::Field::Stock)
            .collect();
        let record = self.update_product(id, &product, &all, &[]).await?;
        Ok(Confirmed {
            record,
            adopted: true,
        })
    }

    /// Creates the variants of `product` that have no external id and that the product does
    /// not have yet (matched by SKU, or by attribute options for a variant without SKU), in
    /// batches of at most 100; repeats after an ambiguous failure only for what is still
    /// missing. A duplicate-SKU answer counts as created only when the variation holding the
    /// SKU belongs to this product; otherwise it is the refusal returned.
    async fn create_missing_variations(
        &self,
        id: u64,
        product: &Product,
        image_ids: &BTreeMap<ContentHash, u64>,
    ) -> Result<(), ConnectorError> {
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let existing = self.variations(id).await?;
            let missing: Vec<&tidemark_core::Variant> = product
                .variants
                .iter()
                .filter(|v| v.external_id.is_none())
                .filter(|v| !existing.iter().any(|e| mapping::is_variation_of(e, v)))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            let mut refused = None;
            let mut failed = None;
            for chunk in missing.chunks(MAX_BATCH) {
                let items: Vec<Value> = chunk
                    .iter()
                    .map(|v| mapping::variation_body(product, v, None, image_ids))
                    .collect();
                let body = json!({"create": items});
                let path = format!("products/{id}/variations/batch");
                match self
                    .call(|| ApiRequest::post(path.clone(), Idempotency::NonIdempotent).json(&body))
                    .await
                {
                    Ok((answer, _)) => {
                        let answered = answer.get("create").and_then(Value::as_array);
                        for item in answered.into_iter().flatten() {
                            let Some(error) = mapping::item_error(item) else {
                                continue;
                            };
                            let resource = item
                                .pointer("/error/data/resource_id")
                                .and_then(Value::as_u64);
                            let ours = match (&error, resource) {
                                (ConnectorError::Rejected { code, .. }, Some(r))
                                    if code == "product_invalid_sku" =>
                                {
                                    self.variation_belongs_to(r, id).await?
                                }
                                _ => false,
                            };
                            if !ours && refused.is_none() {
                                refused = Some(
                                    error.context(format!("creating variations of product {id}")),
                                );
                            }
                        }
                    }
                    Err(e) if e.is_retryable() && attempt + 1 < ATTEMPTS => {
                        failed = Some(e);
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some(refused) = refused {
                return Err(refused);
            }
            match failed {
                None => return Ok(()),
                Some(e) => {
                    tokio::time::sleep(e.retry_hint().unwrap_or(Duration::from_millis(20))).await;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            ConnectorError::transient(format!("variations of product {id} could not be created"))
        }))
    }

    /// Deletes the variations of product `id` that `product` no longer has: neither bound to
    /// one of its variants (by external id) nor matching one of its new variants (by SKU, or
    /// options without SKU). A variation is not a product: removing one the canonical record
    /// dropped is a variant removal. Sent before new variations are created, so a new variant
    /// may take a removed one's SKU. Nothing is deleted when `product` has no variants.
    async fn delete_removed_variations(
        &self,
        id: u64,
        product: &Product,
    ) -> Result<(), ConnectorError> {
        if product.variants.is_empty() {
            return Ok(());
        }
        let bound: std::collections::BTreeSet<u64> = product
            .variants
            .iter()
            .filter_map(|v| v.external_id.as_ref()?.as_str().parse().ok())
            .collect();
        let existing = self.variations(id).await?;
        let removed: Vec<u64> = existing
            .iter()
            .filter(|e| {
                !bound.contains(&id_u64(e))
                    && !product
                        .variants
                        .iter()
                        .filter(|v| v.external_id.is_none())
                        .any(|v| mapping::is_variation_of(e, v))
            })
            .map(id_u64)
            .filter(|n| *n > 0)
            .collect();
        for chunk in removed.chunks(MAX_BATCH) {
            let body = json!({"delete": chunk});
            let path = format!("products/{id}/variations/batch");
            // Repeatable: a variation already deleted answers a per-item "invalid id".
            let (answer, _) = self
                .call(|| ApiRequest::post(path.clone(), Idempotency::Idempotent).json(&body))
                .await?;
            let refused = answer
                .get("delete")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(mapping::item_error)
                .find(|e| {
                    !matches!(e, ConnectorError::Rejected { code, .. } if code.ends_with("invalid_id"))
                });
            if let Some(error) = refused {
                return Err(error.context(format!("deleting removed variations of product {id}")));
            }
        }
        Ok(())
    }

    /// Whether `resource` (from a duplicate-SKU answer) is a variation of product `parent`.
    async fn variation_belongs_to(
        &self,
        resource: u64,
        parent: u64,
    ) -> Result<bool, ConnectorError> {
        match self.get(&format!("products/{resource}"), &[]).await {
            Ok((v, _)) => Ok(v.get("parent_id").and_then(Value::as_u64) == Some(parent)),
            Err(ConnectorError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn update_product(
        &self,
        id: u64,
        product: &Product,
        fields: &FieldSet,
        stock: &[StockChange],
    ) -> Result<ExternalRecord, ConnectorError> {
        let body = mapping::product_body(product, Some(fields));
        let path = format!("products/{id}");
        let answer = if body.as_object().is_some_and(|o| !o.is_empty()) {
            self.put_product(id, product, fields).await?
        } else {
            self.get(&path, &[]).await?.0
        };
        let variable = answer.get("type").and_then(Value::as_str) == Some("variable");
        if variable {
            let image_ids = image_ids(product, &answer);
            let updates: Vec<Value> = product
                .variants
                .iter()
                .filter_map(|v| {
                    let vid: u64 = v.external_id.as_ref()?.as_str().parse().ok()?;
                    let mut body = mapping::variation_body(product, v, Some(fields), &image_ids);
                    let obj = body.as_object_mut()?;
                    if obj.is_empty() {
                        return None;
                    }
                    obj.insert("id".into(), json!(vid));
                    Some(body)
                })
                .collect();
            for chunk in updates.chunks(MAX_BATCH) {
                let body = json!({"update": chunk});
                let path = format!("products/{id}/variations/batch");
                let (answer, _) = self
                    .call(|| ApiRequest::post(path.clone(), Idempotency::Idempotent).json(&body))
                    .await?;
                if let Some(error) = answer
                    .get("update")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find_map(mapping::item_error)
                {
                    return Err(error);
                }
            }
            if fields.contains(&tidemark_core::Field::Variants) {
                self.delete_removed_variations(id, product).await?;
                self.create_missing_variations(id, product, &image_ids)
                    .await?;
            }
        }
        // Stock moves come last: once one is sent, nothing may make the caller repeat the
        // whole write (a repeat reads the moved quantity and adds the delta again).
        let mut moved = 0usize;
        for change in stock {
            match self.move_stock(id, variable, change).await {
                Ok(sent) => moved += usize::from(sent),
                Err(e) if moved > 0 => return Err(after_stock_moves(id, moved, e)),
                Err(e) => return Err(e),
            }
        }
        match self.product_by_id(id).await {
            Ok(Some(record)) => Ok(record),
            Ok(None) => Err(ConnectorError::not_found(format!("product {id}"))),
            Err(e) if moved > 0 => Err(after_stock_moves(id, moved, e)),
            Err(e) => Err(e),
        }
    }

    /// PUTs the product-level `fields` of `product` to product `id`. A body that uploads images
    /// by `src` is not repeated as it is after an ambiguous failure (each `src` would make one
    /// more attachment): the product is read first, the images the failed attempt uploaded
    /// (found by their [`mapping::image_marker`] name) are kept by id, and only the rest is
    /// sent by `src` again.
    async fn put_product(
        &self,
        id: u64,
        product: &Product,
        fields: &FieldSet,
    ) -> Result<Value, ConnectorError> {
        let path = format!("products/{id}");
        let mut product = std::borrow::Cow::Borrowed(product);
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let body = mapping::product_body(&product, Some(fields));
            if !mapping::uploads_images(&body) {
                return Ok(self
                    .call(|| ApiRequest::put(path.clone()).json(&body))
                    .await?
                    .0);
            }
            let answer = self
                .call(|| {
                    ApiRequest::new(http::Method::PUT, path.clone(), Idempotency::NonIdempotent)
                        .json(&body)
                })
                .await;
            match answer {
                Ok((v, _)) => return Ok(v),
                Err(e) if e.is_retryable() && attempt + 1 < ATTEMPTS => {
                    tokio::time::sleep(e.retry_hint().unwrap_or(Duration::from_millis(20))).await;
                    let (current, _) = self.get(&path, &[]).await?;
                    mapping::bind_uploaded_images(product.to_mut(), &current);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            ConnectorError::transient(format!("PUT of product {id} did not complete"))
        }))
    }

    /// Adds `to - from` to the platform's current quantity, read just before the write.
    /// `Ok(false)` when there was nothing to move (a zero delta).
    async fn move_stock(
        &self,
        id: u64,
        variable: bool,
        change: &StockChange,
    ) -> Result<bool, ConnectorError> {
        let delta = change.delta();
        if delta == 0 {
            return Ok(false);
        }
        let vid = numeric(&change.variant)?;
        let path = if variable && vid != id {
            format!("products/{id}/variations/{vid}")
        } else {
            format!("products/{id}")
        };
        let (current, _) = self.get(&path, &[]).await?;
        let quantity = current
            .get("stock_quantity")
            .and_then(Value::as_i64)
            .unwrap_or(change.from);
        let body = json!({"manage_stock": true, "stock_quantity": quantity + delta});
        self.call(|| {
            ApiRequest::new(http::Method::PUT, path.clone(), Idempotency::NonIdempotent).json(&body)
        })
        .await?;
        Ok(true)
    }

    /// Removes an image from product `id`: from its gallery, and from the variations showing
    /// it (a variation's image is read as one of the product's images, so one left there would
    /// read back as if the delete had not happened), cleared as
    /// [`mapping::cleared_variation_image`] says.
    async fn delete_image(
        &self,
        id: u64,
        image_id: Option<&ExternalId>,
        hash: ContentHash,
    ) -> Result<ExternalRecord, ConnectorError> {
        let is_it = |img: &Value| {
            let same_id = image_id.is_some_and(|x| x.as_str() == id_u64(img).to_string());
            let same_hash = img
                .get("src")
                .and_then(Value::as_str)
                .is_some_and(|s| tidemark_core::hash::image_hash_url(s) == hash);
            same_id || same_hash
        };
        let (current, _) = self.get(&format!("products/{id}"), &[]).await?;
        let keep: Vec<Value> = current
            .get("images")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|img| !is_it(img))
            .map(|img| json!({"id": id_u64(img)}))
            .collect();
        let body = json!({"images": keep});
        let path = format!("products/{id}");
        self.call(|| ApiRequest::put(path.clone()).json(&body))
            .await?;
        if current.get("type").and_then(Value::as_str) == Some("variable") {
            let cleared: Vec<Value> = self
                .variations(id)
                .await?
                .iter()
                .filter(|v| {
                    v.get("image")
                        .is_some_and(|img| img.is_object() && is_it(img))
                })
                .map(|v| json!({"id": id_u64(v), "image": mapping::cleared_variation_image()}))
                .collect();
            for chunk in cleared.chunks(MAX_BATCH) {
                let body = json!({"update": chunk});
                let path = format!("products/{id}/variations/batch");
                // Repeatable: clearing an image twice leaves it cleared.
                let (answer, _) = self
                    .call(|| ApiRequest::post(path.clone(), Idempotency::Idempotent).json(&body))
                    .await?;
                if let Some(error) = answer
                    .get("update")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find_map(mapping::item_error)
                {
                    return Err(error.context(format!(
                        "clearing the deleted image from variations of product {id}"
                    )));
                }
            }
        }
        self.product_by_id(id)
            .await?
            .ok_or_else(|| ConnectorError::not_found(format!("product {id}")))
    }
}

/// A failure after `moved` stock moves of product `id` were sent: whatever it was, the write
/// must not be repeated as it is (the moves would apply twice), so it is reported as possibly
/// applied; the caller re-fetches the product and reconciles.
fn after_stock_moves(id: u64, moved: usize, error: ConnectorError) -> ConnectorError {
    let retry_after = error.retry_hint();
    ConnectorError::Transient {
        message: format!(
            "{moved} stock move(s) of product {id} were sent before this failure; re-fetch the \
             product rather than repeating the write, which would move stock again: {error}"
        ),
        maybe_applied: true,
        retry_after,
    }
}

/// Attachment ids by content hash: sent images come back in the order they were sent.
fn image_ids(product: &Product, answer: &Value) -> BTreeMap<ContentHash, u64> {
    let answered = answer.get("images").and_then(Value::as_array);
    let mut out = BTreeMap::new();
    for (i, image) in product.images.iter().enumerate() {
        let id = image
            .external_id
            .as_ref()
            .and_then(|e| e.as_str().parse::<u64>().ok())
            .or_else(|| answered.and_then(|a| a.get(i)).map(id_u64));
        if let Some(id) = id.filter(|n| *n > 0) {
            out.insert(image.content_hash, id);
        }
    }
    out
}

#[async_trait]
impl Connector for WooCommerce {
    fn platform(&self) -> PlatformKind {
        PlatformKind::Woocommerce
    }

    fn capabilities(&self) -> Capabilities {
        let kind = KindCapabilities {
            incremental: Some(IncrementalFilter {
                granularity: Duration::from_secs(1),
                inclusive: false,
            }),
            writable: true,
        };
        Capabilities {
            max_batch_size: MAX_BATCH,
            kinds: [(ScanKind::Products, kind), (ScanKind::Orders, kind)].into(),
            webhooks: WebhookSupport::Signed,
            bulk_full_scan: false,
            upsert_by_sku: false,
            recommended_overlap: Duration::from_secs(120),
        }
    }

    fn settings_schema(&self) -> SettingsSchema {
        crate::config::schema()
    }

    /// WooCommerce has no vendor field.
    fn carries(&self) -> FieldSet {
        tidemark_core::Field::PRODUCT_FIELDS
            .into_iter()
            .chain(tidemark_core::Field::ORDER_FIELDS)
            .filter(|f| *f != tidemark_core::Field::Vendor)
            .collect()
    }

    fn currency(&self) -> Option<Currency> {
        Some(self.currency)
    }

    /// A paid order, or one created processing, completed or on hold, reduces stock
    /// (`wc_maybe_reduce_stock_levels`), also when made through the API.
    fn order_create_moves_stock(&self, order: &tidemark_core::SalesOrder) -> bool {
        order.payment_status == tidemark_core::PaymentStatus::Paid
            || matches!(
                order.status,
                tidemark_core::OrderStatus::Processing
                    | tidemark_core::OrderStatus::Completed
                    | tidemark_core::OrderStatus::OnHold
            )
    }

    /// See [`mapping::as_stored`].
    fn as_stored(&self, product: Product) -> Product {
        mapping::as_stored(product)
    }

    async fn scan_page(
        &self,
        kind: ScanKind,
        scope: &ScanScope,
        cursor: Option<&Cursor>,
    ) -> Result<ScanPage, ConnectorError> {
        let mut state: PageState = match cursor {
            Some(c) => c.decode()?,
            None => PageState::default(),
        };
        let per_page = self.per_page();
        let path = match kind {
            ScanKind::Products => "products",
            ScanKind::Orders => "orders",
        };
        let mut steps = 0u32;
        let (items, total, request_offset, raw_len) = loop {
            let request_offset = if state.last_id > 0 {
                state.offset.saturating_sub(1)
            } else {
                state.offset
            };
            let mut query = vec![
                ("per_page", per_page.to_string()),
                ("offset", request_offset.to_string()),
                ("orderby", "id".to_owned()),
                ("order", "asc".to_owned()),
            ];
            if kind == ScanKind::Products {
                query.push(("status", "any".to_owned()));
            }
            if let Some(since) = scope.since() {
                query.push(("modified_after", mapping::gmt_text(since)));
                query.push(("dates_are_gmt", "true".to_owned()));
            }
            let (answer, headers) = self.get(path, &query).await?;
            let items = answer.as_array().cloned().ok_or_else(|| {
                ConnectorError::fatal(format!("woocommerce {path} listing is not an array"))
            })?;
            let total = headers
                .get("x-wp-total")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            // A resumed page must start at or before the last record seen. An empty one does
            // not: records before the cursor were deleted and pushed it past the end.
            let resumed = state.last_id > 0 && request_offset > 0;
            let continuous = !resumed
                || items
                    .first()
                    .is_some_and(|first| id_u64(first) <= state.last_id);
            if continuous {
                let raw_len = items.len() as u64;
                break (items, total, request_offset, raw_len);
            }
            steps += 1;
            if steps > MAX_STEP_BACKS {
                return Err(ConnectorError::transient(format!(
                    "woocommerce {path} listing: could not find where the scan stopped \
                     (id {}) after {MAX_STEP_BACKS} steps back",
                    state.last_id
                )));
            }
            // Records before the cursor disappeared: step back until the page overlaps. Past
            // the end, go straight to the last record the listing has (X-WP-Total), which
            // is at or after where the scan stopped unless everything after it went too.
            state.offset = match total {
                Some(t) if items.is_empty() && t <= request_offset => t,
                _ => request_offset.saturating_sub(per_page),
            };
        };
        let fresh: Vec<Value> = items
            .into_iter()
            .filter(|v| id_u64(v) > state.last_id)
            .collect();
        let max_id = fresh.iter().map(id_u64).max().unwrap_or(state.last_id);
        let records = match kind {
            ScanKind::Orders => fresh
                .iter()
                .map(mapping::order_from_wc)
                .collect::<Result<Vec<_>, _>>()?,
            ScanKind::Products => {
                futures::stream::iter(
                    fresh
                        .into_iter()
                        .map(|p| async move { self.product_record(&p).await }),
                )
                .buffered(self.variation_concurrency())
                .try_collect()
                .await?
            }
        };
        let next = if raw_len < per_page {
            None
        } else {
            Some(Cursor::encode(&PageState {
                offset: request_offset + raw_len,
                last_id: max_id,
            })?)
        };
        Ok(ScanPage::new(records, next, total))
    }

    async fn fetch_one(
        &self,
        kind: ScanKind,
        id: &ExternalId,
    ) -> Result<Option<ExternalRecord>, ConnectorError> {
        let n = numeric(id)?;
        match kind {
            ScanKind::Products => self.product_by_id(n).await,
            ScanKind::Orders => match self.get(&format!("orders/{n}"), &[]).await {
                Ok((v, _)) => Ok(Some(mapping::order_from_wc(&v)?)),
                Err(ConnectorError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// `?sku=` matches product-level SKUs only, so after the SKU itself this also asks for the
    /// SKU a variable product without one of its own was created with when `sku` is its first
    /// variant's ([`mapping::parent_sku`]): the lookup the engine makes before repeating such a
    /// create finds the product even before its variations exist.
    async fn find_by_sku(&self, sku: &Sku) -> Result<Option<ExternalRecord>, ConnectorError> {
        let sku = sku.0.trim();
        if sku.is_empty() {
            return Ok(None);
        }
        let mut candidates = vec![sku.to_owned()];
        if !sku.ends_with(mapping::PARENT_SKU_SUFFIX) {
            candidates.push(format!("{sku}{}", mapping::PARENT_SKU_SUFFIX));
        }
        for candidate in candidates {
            let (answer, _) = self
                .get(
                    "products",
                    &[("sku", candidate), ("status", "any".to_owned())],
                )
                .await?;
            if let Some(product) = answer.as_array().and_then(|a| a.first()) {
                return Ok(Some(self.product_record(product).await?));
            }
        }
        Ok(None)
    }

    async fn find_order_by_number(
        &self,
        number: &str,
    ) -> Result<Option<ExternalRecord>, ConnectorError> {
        let number = number.trim();
        if number.is_empty() {
            return Ok(None);
        }
        let found = |answer: &Value| {
            answer
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| mapping::order_has_number(o, number))
                .cloned()
        };
        // The shop's own number or id (sequential-number plugins hook theirs into search).
        let (answer, _) = self
            .get(
                "orders",
                &[
                    ("search", number.to_owned()),
                    ("per_page", "100".to_owned()),
                    ("status", "any".to_owned()),
                ],
            )
            .await?;
        if let Some(order) = found(&answer) {
            return mapping::order_from_wc(&order).map(Some);
        }
        // An order tidemark created carries its number in meta data: look through the newest
        // orders, where one whose create might have applied is.
        for page in 1..=RECENT_ORDER_PAGES {
            let (answer, _) = self
                .get(
                    "orders",
                    &[
                        ("orderby", "id".to_owned()),
                        ("order", "desc".to_owned()),
                        ("per_page", "100".to_owned()),
                        ("page", page.to_string()),
                        ("status", "any".to_owned()),
                    ],
                )
                .await?;
            if let Some(order) = found(&answer) {
                return mapping::order_from_wc(&order).map(Some);
            }
            if answer.as_array().is_none_or(|a| a.len() < 100) {
                break;
            }
        }
        Ok(None)
    }

    async fn apply_writes(&self, writes: &[Write]) -> Result<Vec<WriteResult>, ConnectorError> {
        if writes.len() > MAX_BATCH {
            return Err(ConnectorError::fatal(format!(
                "a batch of {} writes is over WooCommerce's {MAX_BATCH}",
                writes.len()
            )));
        }
        let mut out = Vec::with_capacity(writes.len());
        for write in writes {
            let outcome = self.write(&write.op).await;
            out.push(WriteResult {
                key: write.key.clone(),
                outcome,
            });
        }
        Ok(out)
    }

    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, ConnectorError> {
        let secret = self.keys.webhook_secret.as_deref().ok_or_else(|| {
            ConnectorError::unauthorized("no webhook secret is configured for this connection")
        })?;
        crate::webhook::verify(headers, body, secret)
    }
}
