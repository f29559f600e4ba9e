//! The simulated shop's state: products (with variants, media and stock at one location),
//! media files and their bytes, orders, deletion events, and the search index that may lag
//! writes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tidemark_core::sample;

use super::graphql::obj;

/// Seconds since the Unix epoch (Shopify timestamps have second precision).
pub type Secs = i64;

/// 2025-01-01T00:00:00Z: seeded products were last updated at or after this.
pub const SEED_EPOCH: Secs = 1_735_689_600;

/// Ids start above 2^53, as real Shopify ids do: a client reading them as f64 loses them.
pub const ID_BASE: u64 = 9_007_199_254_740_992;

pub const LOCATION_GID: &str = "gid://shopify/Location/1";

#[derive(Debug, Clone)]
pub struct SimVariant {
    pub id: u64,
    pub title: String,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    pub price: String,
    pub compare_at_price: Option<String>,
    pub options: Vec<(String, String)>,
    pub inventory_item_id: u64,
    pub available: i64,
    pub weight_grams: Option<f64>,
    pub image_url: Option<String>,
    pub updated_at: Secs,
}

/// Where a media file's bytes stand.
#[derive(Debug, Clone)]
pub enum MediaBytes {
    /// Seeded media: `images::png(seed, SEEDED_IMAGE_SIZE)`, made when asked for.
    Seeded(u64),
    /// Being downloaded from its `originalSource`.
    Downloading,
    /// Downloaded from its `originalSource`.
    Fetched(Arc<Vec<u8>>),
    /// The download failed: the media is FAILED with this `mediaErrors` entry.
    Failed {
        code: &'static str,
        message: String,
        details: String,
    },
}

/// Side of the seeded PNGs (small: thousands are served in a scan test).
pub const SEEDED_IMAGE_SIZE: u32 = 16;

/// A media file (always an image here). Files are the shop's; products reference them, so one
/// file can be on several products and `fileDelete` removes it from all of them. Clones share
/// the bytes.
#[derive(Debug, Clone)]
pub struct SimMedia {
    pub id: u64,
    pub alt: String,
    /// The `originalSource` it was created from (`None` for seeded media).
    pub source: Option<String>,
    /// Until then the media is PROCESSING even once its bytes are in (media added by API).
    pub ready_at: Option<Instant>,
    pub bytes: Arc<Mutex<MediaBytes>>,
}

/// `MediaStatus` of a media file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaStatus {
    Processing,
    Ready,
    Failed,
}

impl MediaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "PROCESSING",
            Self::Ready => "READY",
            Self::Failed => "FAILED",
        }
    }
}

/// A `DeletionEvent`: a product (or collection) deleted at `occurred_at`.
#[derive(Debug, Clone)]
pub struct Deletion {
    /// Keeps events that share a second in a stable order (cursor tie-break).
    pub seq: u64,
    pub subject_id: u64,
    pub subject_type: &'static str,
    pub occurred_at: Secs,
}

#[derive(Debug, Clone)]
pub struct SimProduct {
    pub id: u64,
    pub handle: String,
    pub title: String,
    pub status: String,
    pub vendor: String,
    pub product_type: String,
    pub tags: Vec<String>,
    pub description_html: String,
    pub created_at: Secs,
    pub updated_at: Secs,
    pub options: Vec<String>,
    pub media: Vec<SimMedia>,
    pub variants: Vec<SimVariant>,
}

#[derive(Debug, Clone)]
pub struct SimOrder {
    pub id: u64,
    pub updated_at: Secs,
    pub node: Value,
}

/// What search (`query:` listings) sees of a product, when it lags the primary store.
#[derive(Debug, Clone)]
struct Lagged {
    until: Instant,
    before: Option<SimProduct>,
}

#[derive(Debug, Default)]
pub struct Shop {
    pub products: BTreeMap<u64, SimProduct>,
    pub orders: BTreeMap<u64, SimOrder>,
    /// Every media file of the shop (products hold clones of the ones they reference).
    pub files: BTreeMap<u64, SimMedia>,
    pub deletions: Vec<Deletion>,
    /// `http://127.0.0.1:PORT` once served: media URLs are absolute, as Shopify's CDN URLs are.
    pub base_url: String,
    lagged: BTreeMap<u64, Lagged>,
    next_id: u64,
}

pub fn iso(secs: Secs) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub fn parse_iso(text: &str) -> Option<Secs> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

pub fn gid(kind: &str, id: u64) -> String {
    format!("gid://shopify/{kind}/{id}")
}

/// The numeric id of a gid of `kind`.
pub fn parse_gid(kind: &str, text: &str) -> Option<u64> {
    text.strip_prefix("gid://shopify/")?
        .strip_prefix(kind)?
        .strip_prefix('/')?
        .parse()
        .ok()
}

impl Shop {
    pub fn new() -> Self {
        Self {
            next_id: ID_BASE,
            ..Self::default()
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Registers `media` as a file of the shop; returns it for a product to reference.
    pub fn add_file(&mut self, media: SimMedia) -> SimMedia {
        self.files.insert(media.id, media.clone());
        media
    }

    /// A new media file downloaded from `source` (see [`SimMedia::download`]), PROCESSING for
    /// at least `processing`.
    pub fn new_media(&mut self, source: &str, alt: &str, processing: Duration) -> SimMedia {
        let id = self.next_id();
        self.add_file(SimMedia {
            id,
            alt: alt.to_owned(),
            source: Some(source.to_owned()),
            ready_at: Some(Instant::now() + processing),
            bytes: Arc::new(Mutex::new(MediaBytes::Downloading)),
        })
    }

    /// Deletes product `id` (as the merchant would): records a `DeletionEvent`. Search sees
    /// it after `lag`.
    pub fn delete_product(&mut self, id: u64, now: Secs, lag: Duration) -> bool {
        self.before_write(id, lag);
        if self.products.remove(&id).is_none() {
            return false;
        }
        let seq = u64::try_from(self.deletions.len()).unwrap_or(u64::MAX);
        self.deletions.push(Deletion {
            seq,
            subject_id: id,
            subject_type: "PRODUCT",
            occurred_at: now,
        });
        true
    }

    /// Product `index` (0-based) from `sample::product(seed)`; every few share an update second.
    /// Shopify's handle for a title: lower-cased, runs of anything but ASCII letters and digits
    /// as one `-`, then `-1`, `-2`, … while taken.
    pub fn unique_handle(&self, title: &str, id: u64) -> String {
        let mut base = String::new();
        for c in title.to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                base.push(c);
            } else if !base.is_empty() && !base.ends_with('-') {
                base.push('-');
            }
        }
        let base = base.trim_end_matches('-').to_owned();
        let base = if base.is_empty() {
            format!("product-{id}")
        } else {
            base
        };
        let taken = |h: &str| self.products.values().any(|p| p.handle == h);
        if !taken(&base) {
            return base;
        }
        (1u64..)
            .map(|n| format!("{base}-{n}"))
            .find(|h| !taken(h))
            .unwrap_or(base)
    }

    pub fn seed_product(&mut self, seed: u64, index: u64) {
        let p = sample::product(seed);
        let id = self.next_id();
        let stamp = SEED_EPOCH + i64::try_from(index / 3).unwrap_or(0);
        let mut option_names: Vec<String> = Vec::new();
        for v in &p.variants {
            for k in v.options.keys() {
                if !option_names.contains(k) {
                    option_names.push(k.clone());
                }
            }
        }
        let media: Vec<SimMedia> = p
            .images
            .iter()
            .map(|i| {
                let id = self.next_id();
                self.add_file(SimMedia {
                    id,
                    alt: i.alt.clone().unwrap_or_default(),
                    source: None,
                    ready_at: None,
                    bytes: Arc::new(Mutex::new(MediaBytes::Seeded(seed.wrapping_mul(31) ^ id))),
                })
            })
            .collect();
        let variants = p
            .variants
            .iter()
            .map(|v| SimVariant {
                id: self.next_id(),
                title: v.options.values().cloned().collect::<Vec<_>>().join(" / "),
                sku: v.sku.as_ref().map(|s| s.0.clone()),
                barcode: v.barcode.as_ref().map(|b| b.0.clone()),
                price: v
                    .price
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "0.00".into()),
                compare_at_price: v.compare_at_price.map(|d| d.to_string()),
                options: v
                    .options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                inventory_item_id: self.next_id(),
                available: v.stock.unwrap_or(0),
                weight_grams: v.weight_grams.and_then(|w| w.to_string().parse().ok()),
                image_url: None,
                updated_at: stamp,
            })
            .collect();
        // Merchants' handles come from titles, as Shopify derives them.
        let handle = self.unique_handle(&p.title, id);
        let product = SimProduct {
            id,
            handle,
            title: p.title.clone(),
            status: match p.status {
                tidemark_core::ProductStatus::Draft => "DRAFT",
                tidemark_core::ProductStatus::Active => "ACTIVE",
                _ => "ARCHIVED",
            }
            .into(),
            vendor: p.vendor.clone().unwrap_or_default(),
            product_type: p.category.clone().unwrap_or_default(),
            tags: p.tags.iter().cloned().collect(),
            description_html: p.description.clone(),
            created_at: stamp,
            updated_at: stamp,
            options: option_names,
            media,
            variants,
        };
        self.products.insert(id, product);
    }

    pub fn seed_order(&mut self, seed: u64, index: u64) {
        let o = sample::order(seed);
        let id = self.next_id();
        let stamp = SEED_EPOCH + i64::try_from(index).unwrap_or(0) * 60;
        let money = |d: rust_decimal::Decimal| json!({ "shopMoney": { "amount": d.to_string(), "currencyCode": o.currency.as_str() } });
        let lines: Vec<Value> = o
            .lines
            .iter()
            .map(|l| {
                let line_id = self.next_id();
                json!({
                    "__typename": "LineItem", "id": gid("LineItem", line_id),
                    "sku": l.sku.as_ref().map(|s| s.0.clone()), "title": l.title,
                    "quantity": l.quantity, "variant": null,
                    "originalUnitPriceSet": money(l.unit_price),
                })
            })
            .collect();
        let node = json!({
            "__typename": "Order", "id": gid("Order", id), "legacyResourceId": id.to_string(),
            "name": format!("#{}", 1000 + index), "createdAt": iso(stamp), "updatedAt": iso(stamp),
            "cancelledAt": null, "email": o.buyer.email, "note": o.note,
            "displayFinancialStatus": "PAID", "displayFulfillmentStatus": "UNFULFILLED",
            "currencyCode": o.currency.as_str(),
            "customer": { "firstName": o.buyer.name, "lastName": "", "email": o.buyer.email, "phone": o.buyer.phone },
            "shippingAddress": null,
            "subtotalPriceSet": money(o.subtotal), "totalShippingPriceSet": money(o.shipping_total),
            "totalTaxSet": money(o.tax_total), "totalPriceSet": money(o.total),
            "lineItems": { "__connection": lines },
            "fulfillments": [],
        });
        self.orders.insert(
            id,
            SimOrder {
                id,
                updated_at: stamp,
                node,
            },
        );
    }

    /// Places an order for `lines` (variant id, quantity) as a buyer would: stock of each
    /// variant goes down, but the product's `updatedAt` does not move and search does not see a
    /// product change (an inventory change, platforms.md §1.3 pitfall 3). Returns the order id
    /// and the inventory items whose stock changed, or `None` if a variant is unknown or a
    /// quantity is not positive.
    pub fn place_order(
        &mut self,
        lines: &[(u64, i64)],
        now: Secs,
    ) -> Option<(u64, Vec<(u64, i64)>)> {
        let mut priced = Vec::new();
        for &(variant_id, quantity) in lines {
            if quantity <= 0 {
                return None;
            }
            let (_, v) = self.products.values().find_map(|p| {
                p.variants
                    .iter()
                    .find(|v| v.id == variant_id)
                    .map(|v| (p, v))
            })?;
            let price: rust_decimal::Decimal = v.price.parse().ok()?;
            priced.push((v.clone(), quantity, price));
        }
        if priced.is_empty() {
            return None;
        }
        let id = self.next_id();
        let index = u64::try_from(self.orders.len()).unwrap_or(0);
        let money = |d: rust_decimal::Decimal| {
            obj([(
                "shopMoney",
                obj([
                    ("amount", json!(d.round_dp(2).to_string())),
                    ("currencyCode", json!("USD")),
                ]),
            )])
        };
        let mut subtotal = rust_decimal::Decimal::ZERO;
        let mut line_nodes = Vec::new();
        let mut moved = Vec::new();
        for (v, quantity, price) in &priced {
            subtotal += *price * rust_decimal::Decimal::from(*quantity);
            let line_id = self.next_id();
            line_nodes.push(obj([
                ("__typename", json!("LineItem")),
                ("id", json!(gid("LineItem", line_id))),
                ("sku", json!(v.sku)),
                ("title", json!(v.title)),
                ("quantity", json!(quantity)),
                (
                    "variant",
                    obj([
                        ("__typename", json!("ProductVariant")),
                        ("id", json!(gid("ProductVariant", v.id))),
                    ]),
                ),
                ("originalUnitPriceSet", money(*price)),
            ]));
            for p in self.products.values_mut() {
                for var in &mut p.variants {
                    if var.id == v.id {
                        var.available -= quantity;
                        moved.push((var.inventory_item_id, var.available));
                    }
                }
            }
        }
        let zero = rust_decimal::Decimal::ZERO;
        let node = obj([
            ("__typename", json!("Order")),
            ("id", json!(gid("Order", id))),
            ("legacyResourceId", json!(id.to_string())),
            ("name", json!(format!("#{}", 1000 + index))),
            ("createdAt", json!(iso(now))),
            ("updatedAt", json!(iso(now))),
            ("cancelledAt", Value::Null),
            ("email", json!("buyer@example.com")),
            ("note", Value::Null),
            ("displayFinancialStatus", json!("PAID")),
            ("displayFulfillmentStatus", json!("UNFULFILLED")),
            ("currencyCode", json!("USD")),
            (
                "customer",
                obj([
                    ("firstName", json!("Sim")),
                    ("lastName", json!("Buyer")),
                    ("email", json!("buyer@example.com")),
                    ("phone", Value::Null),
                ]),
            ),
            ("shippingAddress", Value::Null),
            ("subtotalPriceSet", money(subtotal)),
            ("totalShippingPriceSet", money(zero)),
            ("totalTaxSet", money(zero)),
            ("totalPriceSet", money(subtotal)),
            (
                "lineItems",
                obj([("__connection", Value::Array(line_nodes))]),
            ),
            ("fulfillments", json!([])),
        ]);
        self.orders.insert(
            id,
            SimOrder {
                id,
                updated_at: now,
                node,
            },
        );
        Some((id, moved))
    }

    /// Edits an order as a merchant would (its note); `updatedAt` moves to `now`.
    pub fn edit_order_note(&mut self, id: u64, note: &str, now: Secs) -> bool {
        let Some(o) = self.orders.get_mut(&id) else {
            return false;
        };
        o.node["note"] = json!(note);
        o.node["updatedAt"] = json!(iso(now));
        o.updated_at = now;
        true
    }

    /// Remembers what search saw of product `id` before a write, for `lag`.
    pub fn before_write(&mut self, id: u64, lag: Duration) {
        if lag.is_zero() {
            return;
        }
        let before = self.products.get(&id).cloned();
        let entry = self.lagged.entry(id).or_insert(Lagged {
            until: Instant::now(),
            before,
        });
        entry.until = Instant::now() + lag;
    }

    /// Search does not see product `id`, just created, until `lag` has passed.
    pub fn created(&mut self, id: u64, lag: Duration) {
        if lag.is_zero() {
            return;
        }
        self.lagged.insert(
            id,
            Lagged {
                until: Instant::now() + lag,
                before: None,
            },
        );
    }

    /// Products as search sees them (index lag applied).
    pub fn searchable(&self) -> Vec<&SimProduct> {
        let now = Instant::now();
        let mut out = Vec::with_capacity(self.products.len());
        for (id, p) in &self.products {
            match self.lagged.get(id) {
                Some(l) if l.until > now => out.extend(l.before.as_ref()),
                _ => out.push(p),
            }
        }
        for (id, l) in &self.lagged {
            if l.until > now && !self.products.contains_key(id) {
                out.extend(l.before.as_ref());
            }
        }
        out
    }

    pub fn variant_by_inventory_item(&self, item: u64) -> Option<(&SimProduct, &SimVariant)> {
        self.products.values().find_map(|p| {
            p.variants
                .iter()
                .find(|v| v.inventory_item_id == item)
                .map(|v| (p, v))
        })
    }
}

impl SimVariant {
    pub fn node(&self, product_id: u64) -> Value {
        let options: Vec<Value> = self
            .options
            .iter()
            .map(|(n, v)| obj([("name", json!(n)), ("value", json!(v))]))
            .collect();
        let weight = self.weight_grams.map_or(Value::Null, |w| {
            obj([("unit", json!("GRAMS")), ("value", json!(w))])
        });
        obj([
            ("__typename", json!("ProductVariant")),
            ("id", json!(gid("ProductVariant", self.id))),
            ("title", json!(self.title)),
            ("sku", json!(self.sku)),
            ("barcode", json!(self.barcode)),
            ("price", json!(self.price)),
            ("compareAtPrice", json!(self.compare_at_price)),
            ("updatedAt", json!(iso(self.updated_at))),
            ("inventoryQuantity", json!(self.available)),
            ("selectedOptions", Value::Array(options)),
            (
                "image",
                self.image_url.as_ref().map_or(Value::Null, |u| {
                    obj([("__typename", json!("Image")), ("url", json!(u))])
                }),
            ),
            (
                "inventoryItem",
                obj([
                    ("__typename", json!("InventoryItem")),
                    ("id", json!(gid("InventoryItem", self.inventory_item_id))),
                    ("tracked", json!(true)),
                    ("sku", json!(self.sku)),
                    ("measurement", obj([("weight", weight)])),
                ]),
            ),
            (
                "product",
                obj([
                    ("__typename", json!("Product")),
                    ("id", json!(gid("Product", product_id))),
                ]),
            ),
        ])
    }
}

impl SimMedia {
    /// Where the simulator serves this file's bytes (its "CDN" URL).
    pub fn url(&self, base: &str) -> String {
        format!("{base}/_sim/shopify/cdn/files/{}.png", self.id)
    }

    fn lock_bytes(&self) -> std::sync::MutexGuard<'_, MediaBytes> {
        self.bytes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn status(&self) -> MediaStatus {
        match &*self.lock_bytes() {
            MediaBytes::Failed { .. } => MediaStatus::Failed,
            MediaBytes::Downloading => MediaStatus::Processing,
            MediaBytes::Seeded(_) | MediaBytes::Fetched(_) => {
                if self.ready_at.is_some_and(|at| Instant::now() < at) {
                    MediaStatus::Processing
                } else {
                    MediaStatus::Ready
                }
            }
        }
    }

    /// The bytes the simulator serves for this file (none while downloading or once failed).
    pub fn content(&self) -> Option<Arc<Vec<u8>>> {
        match &*self.lock_bytes() {
            MediaBytes::Seeded(seed) => {
                Some(Arc::new(crate::images::png(*seed, SEEDED_IMAGE_SIZE)))
            }
            MediaBytes::Fetched(bytes) => Some(bytes.clone()),
            MediaBytes::Downloading | MediaBytes::Failed { .. } => None,
        }
    }

    /// Downloads the file from its `originalSource` in the background, as Shopify does after
    /// accepting the URL: loopback URLs are really fetched, others yield stand-in PNGs, hosts
    /// under `.invalid` fail (`images::fetch_source`). A failed download makes the media FAILED.
    pub fn download(&self) {
        let Some(source) = self.source.clone() else {
            return;
        };
        let bytes = self.bytes.clone();
        let set = move |state: MediaBytes| {
            *bytes.lock().unwrap_or_else(PoisonError::into_inner) = state;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            set(MediaBytes::Failed {
                code: "UNKNOWN",
                message: "Media processing is unavailable.".into(),
                details: "the simulator runs outside a Tokio runtime".into(),
            });
            return;
        };
        runtime.spawn(async move {
            let state = match crate::images::fetch_source(&source).await {
                Ok(body) => MediaBytes::Fetched(Arc::new(body)),
                Err(e) => {
                    use crate::images::SourceError;
                    let (code, message) = match &e {
                        SourceError::TooLarge { .. } => {
                            ("INVALID_IMAGE_FILE_SIZE", "Image file size is too large.")
                        }
                        SourceError::NotAnImage { .. } => (
                            "UNSUPPORTED_IMAGE_FILE_TYPE",
                            "Image file type is not supported.",
                        ),
                        _ => (
                            "IMAGE_DOWNLOAD_FAILURE",
                            "Image could not be downloaded from the source URL.",
                        ),
                    };
                    MediaBytes::Failed {
                        code,
                        message: message.to_owned(),
                        details: e.to_string(),
                    }
                }
            };
            set(state);
        });
    }

    pub fn node(&self, base: &str) -> Value {
        let status = self.status();
        let errors: Vec<Value> = match &*self.lock_bytes() {
            MediaBytes::Failed {
                code,
                message,
                details,
            } => vec![obj([
                ("__typename", json!("MediaError")),
                ("code", json!(code)),
                ("message", json!(message)),
                ("details", json!(details)),
            ])],
            _ => Vec::new(),
        };
        let image = if status == MediaStatus::Ready {
            let (width, height) = self
                .content()
                .and_then(|b| png_size(&b))
                .unwrap_or((SEEDED_IMAGE_SIZE, SEEDED_IMAGE_SIZE));
            obj([
                ("__typename", json!("Image")),
                ("url", json!(self.url(base))),
                ("width", json!(width)),
                ("height", json!(height)),
                ("altText", json!(self.alt)),
            ])
        } else {
            Value::Null
        };
        obj([
            ("__typename", json!("MediaImage")),
            ("id", json!(gid("MediaImage", self.id))),
            ("alt", json!(self.alt)),
            ("mediaContentType", json!("IMAGE")),
            ("status", json!(status.as_str())),
            ("mediaErrors", Value::Array(errors)),
            ("mediaWarnings", json!([])),
            ("image", image),
        ])
    }
}

/// Width and height of a PNG (from its IHDR chunk).
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    Some((word(16)?, word(20)?))
}

impl SimProduct {
    /// The product as a GraphQL node. Built without `json!` around nested values (which
    /// would copy them by serialising): this runs for every product of every page.
    pub fn node(&self, base: &str) -> Value {
        let media: Vec<Value> = self.media.iter().map(|m| m.node(base)).collect();
        let variants: Vec<Value> = self
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut n = v.node(self.id);
                n["position"] = json!(i + 1);
                n
            })
            .collect();
        let options: Vec<Value> = self
            .options
            .iter()
            .enumerate()
            .map(|(i, n)| {
                obj([
                    ("__typename", json!("ProductOption")),
                    ("name", json!(n)),
                    ("position", json!(i + 1)),
                ])
            })
            .collect();
        obj([
            ("__typename", json!("Product")),
            ("id", json!(gid("Product", self.id))),
            ("legacyResourceId", json!(self.id.to_string())),
            ("handle", json!(self.handle)),
            ("title", json!(self.title)),
            ("status", json!(self.status)),
            ("vendor", json!(self.vendor)),
            ("productType", json!(self.product_type)),
            ("tags", json!(self.tags)),
            ("updatedAt", json!(iso(self.updated_at))),
            ("createdAt", json!(iso(self.created_at))),
            ("descriptionHtml", json!(self.description_html)),
            ("options", Value::Array(options)),
            ("media", obj([("__connection", Value::Array(media))])),
            ("variants", obj([("__connection", Value::Array(variants))])),
        ])
    }
}

/// One term of a search query: `field`, comparator, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub field: String,
    pub op: &'static str,
    pub value: String,
}

/// Parses `updated_at:>='2025-01-01T00:00:00Z' sku:ABC status:active` (AND implied; `AND`
/// words skipped; quotes single or double).
pub fn parse_query(text: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => word.push(c),
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c.is_whitespace() => break,
                None => word.push(c),
            }
            chars.next();
        }
        if word == "AND" {
            continue;
        }
        let Some((field, rest)) = word.split_once(':') else {
            continue;
        };
        let (op, value) = [">=", "<=", ">", "<"]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v)))
            .unwrap_or(("=", rest));
        terms.push(Term {
            field: field.to_owned(),
            op,
            value: value.to_owned(),
        });
    }
    terms
}

fn compare(op: &str, left: Secs, right: Secs) -> bool {
    match op {
        ">=" => left >= right,
        "<=" => left <= right,
        ">" => left > right,
        "<" => left < right,
        _ => left == right,
    }
}

/// Whether a product matches every term.
pub fn product_matches(p: &SimProduct, terms: &[Term]) -> bool {
    terms.iter().all(|t| match t.field.as_str() {
        "updated_at" => parse_iso(&t.value).is_some_and(|v| compare(t.op, p.updated_at, v)),
        "created_at" => parse_iso(&t.value).is_some_and(|v| compare(t.op, p.created_at, v)),
        "sku" => p
            .variants
            .iter()
            .any(|v| v.sku.as_deref() == Some(t.value.as_str())),
        "status" => p.status.eq_ignore_ascii_case(&t.value),
        "handle" => p.handle == t.value,
        "id" => t.value.parse::<u64>().is_ok_and(|id| id == p.id),
        _ => true,
    })
}

pub fn order_matches(o: &SimOrder, terms: &[Term]) -> bool {
    terms.iter().all(|t| match t.field.as_str() {
        "updated_at" => parse_iso(&t.value).is_some_and(|v| compare(t.op, o.updated_at, v)),
        _ => true,
    })
}
