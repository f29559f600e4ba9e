//! [`CsvConnector`]: the [`Connector`] implementation over one file.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use tidemark_connector::{
    Capabilities, Confirmed, Connector, ConnectorError, Cursor, KindCapabilities, ScanPage,
    ScanScope, SettingsSchema, WebhookEvent, WebhookSupport, Write, WriteOp, WriteResult,
};
use tidemark_core::diff::find_variant;
use tidemark_core::normalize::{normalize_product, sku_key};
use tidemark_core::{
    ExternalId, ExternalRecord, Field, FieldSet, PlatformKind, Product, RecordContent, ScanKind,
    Sku, StockChange, Variant,
};

use crate::client::{self, FailPoint};
use crate::config::{CsvConfig, Mode};
use crate::mapping::{self, Catalog, ReadOptions, writer};
use crate::webhook;

/// Writes per [`Connector::apply_writes`] call: each call rewrites the whole file once.
pub const MAX_BATCH_SIZE: usize = 250;

/// Unreadable records logged one by one each time a file is parsed; the rest are counted.
const LOGGED_PROBLEMS: usize = 100;

/// A CSV connection: the file at [`CsvConfig::path`], read as a source or written as a target.
///
/// The parsed file is cached by content fingerprint: every call re-reads the bytes (cheap next
/// to a platform round trip) and parses them again only when they changed.
pub struct CsvConnector {
    config: CsvConfig,
    label: String,
    cache: Mutex<Option<Loaded>>,
    /// One batch of writes at a time: each is read-modify-write of the whole file.
    write_lock: tokio::sync::Mutex<()>,
    fail_next_write: AtomicBool,
}

#[derive(Debug, Clone)]
struct Loaded {
    fingerprint: u128,
    catalog: Arc<Catalog>,
}

/// The scan cursor: where the next page starts in the parsed product list, and which file
/// content that offset is into.
#[derive(Debug, Serialize, Deserialize)]
struct ScanCursor {
    /// Hex content fingerprint of the file the scan started on.
    file: String,
    offset: usize,
}

impl fmt::Debug for CsvConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsvConnector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CsvConnector {
    pub fn new(config: CsvConfig) -> Self {
        Self {
            label: config.file_label(),
            config,
            cache: Mutex::new(None),
            write_lock: tokio::sync::Mutex::new(()),
            fail_next_write: AtomicBool::new(false),
        }
    }

    pub fn config(&self) -> &CsvConfig {
        &self.config
    }

    /// The file as it is now: products, and the records skipped with their reasons.
    pub async fn catalog(&self) -> Result<Arc<Catalog>, ConnectorError> {
        Ok(self.load().await?.catalog)
    }

    /// Makes the next file write stop after the temporary file is written and before the
    /// rename, as a crash there would. For tests of atomicity only.
    #[doc(hidden)]
    pub fn fail_next_write_before_rename(&self) {
        self.fail_next_write.store(true, Ordering::SeqCst);
    }

    fn cached(&self) -> Option<Loaded> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn remember(&self, loaded: &Loaded) {
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = Some(loaded.clone());
    }

    fn read_options(&self) -> ReadOptions {
        ReadOptions {
            layout: self.config.layout,
            currency: self.config.currency,
        }
    }

    async fn load(&self) -> Result<Loaded, ConnectorError> {
        let path = self.config.path.clone();
        let options = self.read_options();
        let target = self.config.mode == Mode::Target;
        let limit = self.config.max_file_bytes;
        let cached = self.cached();
        let (loaded, fresh) = tokio::task::spawn_blocking(move || {
            let Some(bytes) = client::read(&path, limit)? else {
                if target {
                    return Ok((
                        Loaded {
                            fingerprint: client::fingerprint(b""),
                            catalog: Arc::new(Catalog::empty()),
                        },
                        false,
                    ));
                }
                return Err(crate::CsvError::Read {
                    path: path.clone(),
                    message: "the file does not exist".to_owned(),
                });
            };
            let fingerprint = client::fingerprint(&bytes);
            if let Some(cached) = cached.filter(|c| c.fingerprint == fingerprint) {
                return Ok((cached, false));
            }
            // A target created empty (`touch`) holds no products yet; an empty source is an
            // error, not "every product is gone".
            if target && bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok((
                    Loaded {
                        fingerprint,
                        catalog: Arc::new(Catalog::empty()),
                    },
                    false,
                ));
            }
            let catalog = mapping::read_catalog(&path, &bytes, options)?;
            Ok((
                Loaded {
                    fingerprint,
                    catalog: Arc::new(catalog),
                },
                true,
            ))
        })
        .await
        .map_err(|e| ConnectorError::fatal(format!("reading {} failed: {e}", self.label)))?
        .map_err(ConnectorError::from)?;
        if fresh {
            let problems = &loaded.catalog.problems;
            // One line per record, up to a bound (a file of a million bad rows must not flood
            // the log), then a count.
            if problems.len() > LOGGED_PROBLEMS {
                tracing::warn!(
                    file = %self.label,
                    unreadable = problems.len(),
                    logged = LOGGED_PROBLEMS,
                    "csv records skipped"
                );
            }
            for problem in problems.iter().take(LOGGED_PROBLEMS) {
                tracing::warn!(
                    file = %self.label,
                    line = problem.line,
                    column = %problem.column,
                    record = %problem.external_id,
                    reason = %problem.message,
                    "csv record skipped"
                );
            }
        }
        self.remember(&loaded);
        Ok(loaded)
    }

    fn no_orders(&self) -> ConnectorError {
        ConnectorError::fatal(format!(
            "{} is a product CSV: csv connections hold no orders",
            self.label
        ))
    }
}

#[async_trait]
impl Connector for CsvConnector {
    fn platform(&self) -> PlatformKind {
        PlatformKind::Csv
    }

    /// Products only; writable only as a target; no incremental filter (an incremental or
    /// window scan reads the whole file, like a full one, and the engine's hashes tell what
    /// changed); no webhooks.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_size: MAX_BATCH_SIZE,
            kinds: BTreeMap::from([(
                ScanKind::Products,
                KindCapabilities {
                    incremental: None,
                    writable: self.config.mode == Mode::Target,
                },
            )]),
            webhooks: WebhookSupport::None,
            bulk_full_scan: false,
            upsert_by_sku: self.config.mode == Mode::Target,
            recommended_overlap: Duration::ZERO,
        }
    }

    fn settings_schema(&self) -> SettingsSchema {
        crate::config::settings_schema()
    }

    /// Pages through the file's products in file order. Every scope reads the whole file: a
    /// CSV has no modification times. The cursor holds the offset and the file's content
    /// fingerprint; if the file changed since the scan started the cursor is expired and the
    /// scan restarts, so no product is skipped or repeated by a shifted offset.
    ///
    /// Records that cannot be read (a bad cell; see [`Catalog::problems`]) are never served as
    /// if the file did not hold them:
    /// - a `Full` scan serves every readable product, then, instead of completing, fails with
    ///   [`crate::error::incomplete_full_scan`] (`Fatal`, naming the records, lines and
    ///   columns). A full scan that does not complete sweeps nothing, so an unreadable record
    ///   never looks deleted. Once the file is fixed its fingerprint changes, the stored cursor
    ///   expires and the next full scan starts over and completes;
    /// - `Incremental` and `Window` scans infer no deletions: they serve the readable products
    ///   and complete; the problems are logged when the file is read.
    async fn scan_page(
        &self,
        kind: ScanKind,
        scope: &ScanScope,
        cursor: Option<&Cursor>,
    ) -> Result<ScanPage, ConnectorError> {
        if kind != ScanKind::Products {
            return Err(self.no_orders());
        }
        let loaded = self.load().await?;
        let file = format!("{:032x}", loaded.fingerprint);
        let products = &loaded.catalog.products;
        let offset = match cursor {
            None => 0,
            Some(cursor) => {
                let state: ScanCursor = cursor.decode()?;
                if state.file != file {
                    return Err(ConnectorError::CursorExpired {
                        message: format!(
                            "{} changed since the scan started; scan it again from the start",
                            self.label
                        ),
                    });
                }
                if state.offset > products.len() {
                    return Err(ConnectorError::CursorExpired {
                        message: format!(
                            "offset {} is past the {} products of {}",
                            state.offset,
                            products.len(),
                            self.label
                        ),
                    });
                }
                state.offset
            }
        };
        let problems = &loaded.catalog.problems;
        let incomplete = matches!(scope, ScanScope::Full) && !problems.is_empty();
        if incomplete && offset == products.len() {
            return Err(crate::error::incomplete_full_scan(&self.label, problems));
        }
        let end = offset
            .saturating_add(self.config.page_size)
            .min(products.len());
        // An incomplete full scan never ends with a last page: its last call is the error.
        let next = (end < products.len() || incomplete)
            .then(|| Cursor::encode(&ScanCursor { file, offset: end }))
            .transpose()?;
        Ok(ScanPage::new(
            products[offset..end].to_vec(),
            next,
            Some(products.len() as u64),
        ))
    }

    /// The product whose handle (Shopify CSV) or ID/SKU (WooCommerce) is `id`. A record the
    /// file holds but that could not be read answers `Rejected` with the line and column.
    async fn fetch_one(
        &self,
        kind: ScanKind,
        id: &ExternalId,
    ) -> Result<Option<ExternalRecord>, ConnectorError> {
        if kind != ScanKind::Products {
            return Err(self.no_orders());
        }
        let loaded = self.load().await?;
        if let Some(record) = loaded.catalog.get(id) {
            return Ok(Some(record.clone()));
        }
        match loaded.catalog.problem(id) {
            Some(problem) => Err(problem.to_error(&self.label)),
            None => Ok(None),
        }
    }

    async fn find_by_sku(&self, sku: &Sku) -> Result<Option<ExternalRecord>, ConnectorError> {
        let loaded = self.load().await?;
        let key = sku_key(sku);
        Ok(loaded
            .catalog
            .products
            .iter()
            .find(|record| match &record.content {
                RecordContent::Product(p) => sku_keys(p).contains(&key),
                RecordContent::Order(_) => false,
            })
            .cloned())
    }

    async fn apply_writes(&self, writes: &[Write]) -> Result<Vec<WriteResult>, ConnectorError> {
        if self.config.mode != Mode::Target {
            return Err(ConnectorError::fatal(format!(
                "{} is a source: set `mode` to `target` for tidemark to write it",
                self.label
            )));
        }
        if writes.len() > MAX_BATCH_SIZE {
            return Err(ConnectorError::fatal(format!(
                "a batch of {} writes; at most {MAX_BATCH_SIZE}",
                writes.len()
            )));
        }
        let _one_writer = self.write_lock.lock().await;
        // The file may change under us (a merchant saving it): re-apply on the new content.
        for _ in 0..3 {
            let loaded = self.load().await?;
            let catalog = &loaded.catalog;
            if !catalog.layout.is_shopify() {
                return Err(ConnectorError::fatal(format!(
                    "{} is a {:?} export; a target is written as Shopify CSV, so point the \
                     connection at another file",
                    self.label, catalog.layout
                )));
            }
            if let Some(problem) = catalog.problems.first() {
                return Err(ConnectorError::fatal(format!(
                    "{} has {} record(s) tidemark cannot read ({problem}); fix them first, or \
                     rewriting the file would drop them",
                    self.label,
                    catalog.problems.len()
                )));
            }
            let mut records = catalog.products.clone();
            let mut outcomes = Vec::with_capacity(writes.len());
            let mut changed = false;
            for write in writes {
                let outcome = self.apply_one(&mut records, &write.op);
                changed |= matches!(outcome, Ok((_, _, true)));
                outcomes.push(outcome);
            }
            let current = if changed {
                let bytes = writer::write_file(&records, self.config.currency)?;
                match self.replace_file(loaded.fingerprint, bytes).await? {
                    Some(written) => written,
                    None => continue,
                }
            } else {
                loaded.clone()
            };
            return writes
                .iter()
                .zip(outcomes)
                .map(|(write, outcome)| {
                    let outcome = match outcome {
                        Ok((id, adopted, _)) => match current.catalog.get(&id) {
                            Some(record) => Ok(Confirmed {
                                record: record.clone(),
                                adopted,
                            }),
                            None => Err(ConnectorError::fatal(format!(
                                "product {id} is not in {} after writing it",
                                self.label
                            ))),
                        },
                        Err(e) => Err(e),
                    };
                    Ok(WriteResult {
                        key: write.key.clone(),
                        outcome,
                    })
                })
                .collect();
        }
        Err(ConnectorError::transient(format!(
            "{} kept changing while tidemark wrote it; nothing was written",
            self.label
        )))
    }

    fn verify_webhook(
        &self,
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<WebhookEvent, ConnectorError> {
        Err(webhook::not_supported())
    }
}

impl CsvConnector {
    /// Writes `bytes` over the file if it still has the content `expected` (else `None`: the
    /// caller re-reads and re-applies), then reads back what was written.
    async fn replace_file(
        &self,
        expected: u128,
        bytes: Vec<u8>,
    ) -> Result<Option<Loaded>, ConnectorError> {
        let path = self.config.path.clone();
        let options = self.read_options();
        let limit = self.config.max_file_bytes;
        if u64::try_from(bytes.len()).map_or(true, |len| len > limit) {
            return Err(crate::CsvError::TooLarge {
                path,
                size: u64::try_from(bytes.len()).ok(),
                limit,
            }
            .into());
        }
        let fail = if self.fail_next_write.swap(false, Ordering::SeqCst) {
            FailPoint::BeforeRename
        } else {
            FailPoint::None
        };
        let written = tokio::task::spawn_blocking(move || {
            let now = client::read(&path, limit)?.unwrap_or_default();
            if client::fingerprint(&now) != expected {
                return Ok(None);
            }
            client::write_atomically(&path, &bytes, fail)?;
            let catalog = mapping::read_catalog(&path, &bytes, options)?;
            Ok::<_, crate::CsvError>(Some(Loaded {
                fingerprint: client::fingerprint(&bytes),
                catalog: Arc::new(catalog),
            }))
        })
        .await
        .map_err(|e| ConnectorError::fatal(format!("writing {} failed: {e}", self.label)))?
        .map_err(ConnectorError::from)?;
        if let Some(loaded) = &written {
            self.remember(loaded);
        }
        Ok(written)
    }

    /// Applies one write to `records`: the id it touched, whether it adopted an existing
    /// product, and whether anything changed.
    fn apply_one(
        &self,
        records: &mut Vec<ExternalRecord>,
        op: &WriteOp,
    ) -> Result<(ExternalId, bool, bool), ConnectorError> {
        op.check()?;
        let currency = self.config.currency;
        match op {
            WriteOp::CreateProduct { product } => {
                let product = normalized(product.clone(), "product")?;
                let keys = sku_keys(&product);
                let existing = records.iter().position(|r| match &r.content {
                    RecordContent::Product(p) => !keys.is_disjoint(&sku_keys(p)),
                    RecordContent::Order(_) => false,
                });
                let (id, adopted) = match existing {
                    Some(at) => (records[at].external_id.clone(), true),
                    None => (unique_handle(&product.title, records), false),
                };
                writer::product_rows(id.as_str(), &product, currency)?;
                let record = ExternalRecord {
                    external_id: id.clone(),
                    updated_at: None,
                    content: RecordContent::Product(product),
                };
                match existing {
                    Some(at) => records[at] = record,
                    None => records.push(record),
                }
                Ok((id, adopted, true))
            }
            WriteOp::UpdateProduct {
                external_id,
                product,
                fields,
                stock,
            } => {
                let at = find(records, external_id)?;
                let current = product_of(&records[at])?;
                let updated = update(
                    normalized(current.clone(), "stored product")?,
                    &normalized(product.clone(), "product")?,
                    fields,
                    stock,
                )?;
                writer::product_rows(external_id.as_str(), &updated, currency)?;
                let changed = updated != *current;
                records[at].content = RecordContent::Product(updated);
                Ok((external_id.clone(), false, changed))
            }
            WriteOp::DeleteProductImage {
                product_id,
                image_id,
                content_hash,
            } => {
                let at = find(records, product_id)?;
                let mut product = product_of(&records[at])?.clone();
                let before = product.images.len();
                product.images.retain(|image| {
                    let by_id = image_id.is_some() && image.external_id == *image_id;
                    let by_hash = image.content_hash == *content_hash
                        || tidemark_core::hash::image_hash_url(&image.src) == *content_hash;
                    !(by_id || by_hash)
                });
                // Already gone is success: the write is idempotent.
                let changed = product.images.len() != before;
                if changed {
                    prune_variant_images(&mut product);
                    for (position, image) in (0u32..).zip(product.images.iter_mut()) {
                        image.position = position;
                    }
                    writer::product_rows(product_id.as_str(), &product, currency)?;
                    records[at].content = RecordContent::Product(product);
                }
                Ok((product_id.clone(), false, changed))
            }
            WriteOp::CreateOrder { .. } | WriteOp::UpdateOrder { .. } => Err(
                ConnectorError::rejected("csv_no_orders", "csv connections hold no orders"),
            ),
        }
    }
}

fn find(records: &[ExternalRecord], id: &ExternalId) -> Result<usize, ConnectorError> {
    records
        .iter()
        .position(|r| r.external_id == *id)
        .ok_or_else(|| ConnectorError::not_found(format!("no product with handle {id}")))
}

fn product_of(record: &ExternalRecord) -> Result<&Product, ConnectorError> {
    match &record.content {
        RecordContent::Product(p) => Ok(p),
        RecordContent::Order(_) => Err(ConnectorError::fatal(format!(
            "record {} is an order",
            record.external_id
        ))),
    }
}

fn normalized(product: Product, what: &str) -> Result<Product, ConnectorError> {
    normalize_product(product)
        .map_err(|e| ConnectorError::rejected("csv_invalid_product", format!("{what}: {e}")))
}

/// [`sku_key`]s of a product's own SKU and its variants'.
fn sku_keys(product: &Product) -> BTreeSet<String> {
    product
        .sku
        .iter()
        .chain(product.variants.iter().filter_map(|v| v.sku.as_ref()))
        .map(sku_key)
        .collect()
}

/// A Shopify-style handle from the title (`Blue Shirt` → `blue-shirt`), unique in `records`.
fn unique_handle(title: &str, records: &[ExternalRecord]) -> ExternalId {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let base = if slug.is_empty() { "product" } else { slug };
    // A set, not a search per candidate: a file holding `x`, `x-2`, … `x-N` would otherwise
    // make one create cost N² comparisons. At most `records.len() + 1` candidates are tried.
    let taken: HashSet<&str> = records.iter().map(|r| r.external_id.as_str()).collect();
    let mut candidate = base.to_owned();
    let mut n: usize = 1;
    while taken.contains(candidate.as_str()) {
        n = n.saturating_add(1);
        candidate = format!("{base}-{n}");
    }
    ExternalId::new(candidate)
}

/// The variant of `old` that `probe` is: by external id when it carries one, else by core's
/// matching rules (SKU, then options).
fn match_variant(old: &[Variant], probe: &Variant) -> Option<usize> {
    probe
        .external_id
        .as_ref()
        .and_then(|id| old.iter().position(|v| v.external_id.as_ref() == Some(id)))
        .or_else(|| find_variant(old, probe))
}

/// Variant-level parts of `fields`, except stock (moved only by [`StockChange`]s).
fn apply_variant_fields(variant: &mut Variant, new: &Variant, fields: &FieldSet) {
    for field in fields {
        match field {
            Field::Sku => variant.sku = new.sku.clone(),
            Field::Barcode => variant.barcode = new.barcode.clone(),
            Field::Price => variant.price = new.price,
            Field::CompareAtPrice => variant.compare_at_price = new.compare_at_price,
            Field::Weight => variant.weight_grams = new.weight_grams,
            Field::Images => variant.image_hashes = new.image_hashes.clone(),
            _ => {}
        }
    }
}

/// `current` with exactly `fields` of `new` written, and `stock` moves applied.
fn update(
    mut current: Product,
    new: &Product,
    fields: &FieldSet,
    stock: &[StockChange],
) -> Result<Product, ConnectorError> {
    for field in fields {
        match field {
            Field::Sku => current.sku = new.sku.clone(),
            Field::Title => current.title = new.title.clone(),
            Field::Description => current.description = new.description.clone(),
            Field::Brand => current.brand = new.brand.clone(),
            Field::Vendor => current.vendor = new.vendor.clone(),
            Field::Category => current.category = new.category.clone(),
            Field::Tags => current.tags = new.tags.clone(),
            Field::Barcode => current.barcode = new.barcode.clone(),
            Field::Weight => current.weight_grams = new.weight_grams,
            Field::Status => current.status = new.status,
            Field::Attributes => current.attributes = new.attributes.clone(),
            Field::Images => current.images = new.images.clone(),
            Field::Price | Field::CompareAtPrice => current.currency = new.currency,
            _ => {}
        }
    }
    if fields.contains(&Field::Variants) {
        let old = std::mem::take(&mut current.variants);
        current.variants = new
            .variants
            .iter()
            .map(|probe| match match_variant(&old, probe) {
                Some(at) => {
                    let mut variant = old[at].clone();
                    variant.options = probe.options.clone();
                    apply_variant_fields(&mut variant, probe, fields);
                    variant
                }
                // A variant created by this update: its stock is its initial quantity.
                None => probe.clone(),
            })
            .collect();
    } else {
        for probe in &new.variants {
            if let Some(at) = match_variant(&current.variants, probe) {
                apply_variant_fields(&mut current.variants[at], probe, fields);
            }
        }
    }
    for change in stock {
        let at = current
            .variants
            .iter()
            .position(|v| v.external_id.as_ref() == Some(&change.variant))
            .or_else(|| {
                let key = sku_key(change.sku.as_ref()?);
                current
                    .variants
                    .iter()
                    .position(|v| v.sku.as_ref().is_some_and(|s| sku_key(s) == key))
            })
            .ok_or_else(|| {
                ConnectorError::rejected(
                    "csv_unknown_variant",
                    format!("no variant {} to move stock on", change.variant),
                )
                .with_field("stock")
            })?;
        let variant = &mut current.variants[at];
        let now = variant.stock.unwrap_or(change.from);
        variant.stock = Some(now.saturating_add(change.delta()));
    }
    prune_variant_images(&mut current);
    Ok(current)
}

/// Drops variant image references to images the product no longer has.
fn prune_variant_images(product: &mut Product) {
    let hashes: BTreeSet<_> = product.images.iter().map(|i| i.content_hash).collect();
    for variant in &mut product.variants {
        variant.image_hashes.retain(|h| hashes.contains(h));
    }
}
