//! The simulated shop: products (simple and variable, with variations), media attachments and
//! orders, kept as WooCommerce REST v3 JSON with the bookkeeping WordPress keeps beside it
//! (one id space for posts, creation and modification times, the listing index view).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Map, Value, json};
use tidemark_core::{Product, SalesOrder, sample};

/// Seconds since the epoch (UTC).
pub type Secs = i64;

/// 2025-01-01T00:00:00Z: seeded products were imported in batches from here on.
pub const SEED_EPOCH: Secs = 1_735_689_600;
/// Seeded products imported in one batch share their creation second (the `orderby=date` trap).
pub const IMPORT_BATCH: u64 = 100;

/// The file behind an attachment.
#[derive(Debug, Clone)]
pub enum MediaFile {
    /// A PNG generated from this seed when served (seeded catalogue, merchant uploads): no
    /// bytes kept for thousands of seeded images.
    Generated { seed: u64 },
    /// What WordPress downloaded from an image `src`, served as it came.
    Downloaded(Bytes),
}

impl MediaFile {
    /// The file's bytes.
    pub fn bytes(&self) -> Bytes {
        match self {
            Self::Generated { seed } => Bytes::from(crate::images::png(*seed, GENERATED_PX)),
            Self::Downloaded(bytes) => bytes.clone(),
        }
    }

    /// Its extension by content (WordPress gives a sideloaded image whose name does not
    /// match its type the right extension).
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Generated { .. } => "png",
            Self::Downloaded(bytes) => image_extension(bytes),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub alt: String,
    pub file: MediaFile,
    pub created: Secs,
}

/// Side of the generated PNGs.
const GENERATED_PX: u32 = 32;

impl Attachment {
    /// `/wp-content/uploads/2025/01/tm-{id}.{ext}`.
    pub fn path(&self, id: u64) -> String {
        format!(
            "/wp-content/uploads/2025/01/tm-{id}.{}",
            self.file.extension()
        )
    }
}

/// `png`, `jpg`, `gif` or `webp` by magic bytes; `png` otherwise (downloads are checked to be
/// one of these before they are kept).
pub fn image_extension(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "jpg"
    } else if bytes.starts_with(b"GIF8") {
        "gif"
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "webp"
    } else {
        "png"
    }
}

/// The `Content-Type` of an extension [`image_extension`] gives.
pub fn content_type(extension: &str) -> &'static str {
    match extension {
        "jpg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => "image/png",
    }
}

#[derive(Debug, Clone)]
pub struct Variation {
    /// Own fields (sku, prices, stock, weight, attributes, global_unique_id, status…).
    pub fields: Map<String, Value>,
    pub image: Option<u64>,
    pub created: Secs,
    pub modified: Secs,
}

/// What listings see of a product: the index catches up `index_lag` after a write.
#[derive(Debug, Clone, Default)]
pub struct IndexView {
    /// When the last write happened; `None` when the index is known to be current (seeded).
    pub written_at: Option<Instant>,
    /// The modification time listings used before that write; `None` if the product did not
    /// exist (a new product is invisible to listings until indexed).
    pub before: Option<Secs>,
}

#[derive(Debug, Clone)]
pub struct ProductEntry {
    /// Own fields (name, type, status, sku, description, prices, stock, categories, tags,
    /// brands, attributes, weight, global_unique_id, meta_data…).
    pub fields: Map<String, Value>,
    pub images: Vec<u64>,
    pub variations: BTreeMap<u64, Variation>,
    pub created: Secs,
    pub modified: Secs,
    pub index: IndexView,
}

impl ProductEntry {
    pub fn sku(&self) -> &str {
        self.fields.get("sku").and_then(Value::as_str).unwrap_or("")
    }

    pub fn status(&self) -> &str {
        self.fields
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("publish")
    }

    pub fn is_variable(&self) -> bool {
        self.fields.get("type").and_then(Value::as_str) == Some("variable")
    }

    /// The modification time listings filter on, given the index lag.
    pub fn listed_modified(&self, lag: Duration, now: Instant) -> Option<Secs> {
        match self.index.written_at {
            Some(at) if now.duration_since(at) < lag => self.index.before,
            _ => Some(self.modified),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OrderEntry {
    pub fields: Map<String, Value>,
    pub created: Secs,
    pub modified: Secs,
    pub index: IndexView,
}

/// Where and how webhooks are delivered.
#[derive(Debug, Clone, Default)]
pub struct WebhookState {
    pub url: Option<String>,
    pub secret: String,
    pub id: u64,
    pub consecutive_failures: u32,
    pub disabled: bool,
    pub delivered: u64,
    pub next_delivery: u64,
}

#[derive(Debug, Default)]
pub struct Shop {
    pub next_id: u64,
    pub products: BTreeMap<u64, ProductEntry>,
    /// Variation id → parent product id.
    pub variation_parent: HashMap<u64, u64>,
    pub attachments: HashMap<u64, Attachment>,
    pub orders: BTreeMap<u64, OrderEntry>,
    pub next_order_number: u64,
    /// Counts list requests, so each one orders `orderby=date` ties differently.
    pub list_requests: u64,
    pub webhook: WebhookState,
    /// A caching layer that ignores `page` and `offset` on variation listings (the first page
    /// every time): the trap of a paging loop that waits for a short page.
    pub variation_paging_ignored: bool,
    /// Site-local time = UTC + this (WordPress "timezone" setting).
    pub utc_offset: Secs,
    /// SKU → (product, variation) while seeding orders, so that naming products does not scan
    /// the whole catalogue per line; `None` otherwise (writes do not maintain it).
    pub seed_sku_index: Option<HashMap<String, (u64, u64)>>,
}

fn money_text(value: Option<rust_decimal::Decimal>) -> String {
    value.map(|d| d.normalize().to_string()).unwrap_or_default()
}

fn kg_text(grams: Option<rust_decimal::Decimal>) -> String {
    grams
        .map(|g| {
            (g / rust_decimal::Decimal::from(1000))
                .normalize()
                .to_string()
        })
        .unwrap_or_default()
}

impl Shop {
    pub fn new(utc_offset: Secs) -> Self {
        Self {
            next_id: 10,
            next_order_number: 1000,
            utc_offset,
            webhook: WebhookState {
                id: 1,
                ..WebhookState::default()
            },
            ..Self::default()
        }
    }

    pub fn alloc(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A new attachment with a generated PNG.
    pub fn add_attachment(&mut self, name: &str, alt: &str, created: Secs) -> u64 {
        let id = self.alloc();
        self.insert_attachment(id, name, alt, MediaFile::Generated { seed: id }, created);
        id
    }

    /// A new attachment holding `bytes`, as sideloaded from an image URL.
    pub fn add_downloaded(&mut self, name: &str, alt: &str, bytes: Bytes, created: Secs) -> u64 {
        let id = self.alloc();
        self.insert_attachment(id, name, alt, MediaFile::Downloaded(bytes), created);
        id
    }

    fn insert_attachment(
        &mut self,
        id: u64,
        name: &str,
        alt: &str,
        file: MediaFile,
        created: Secs,
    ) {
        self.attachments.insert(
            id,
            Attachment {
                name: name.to_owned(),
                alt: alt.to_owned(),
                file,
                created,
            },
        );
    }

    /// The product or variation that holds `sku`, other than `except`.
    pub fn sku_owner(&self, sku: &str, except: Option<u64>) -> Option<u64> {
        let sku = sku.trim();
        if sku.is_empty() {
            return None;
        }
        for (id, p) in &self.products {
            if Some(*id) != except && p.sku() == sku {
                return Some(*id);
            }
            for (vid, v) in &p.variations {
                if Some(*vid) != except && v.fields.get("sku").and_then(Value::as_str) == Some(sku)
                {
                    return Some(*vid);
                }
            }
        }
        None
    }

    /// Seeds one product from `sample::product(seed)`: simple when `simple`, else variable.
    pub fn seed_product(&mut self, seed: u64, index: u64, simple: bool) -> u64 {
        let p = sample::product(seed);
        let created = SEED_EPOCH + (index / IMPORT_BATCH) as Secs * 3600;
        let modified = created + (index % IMPORT_BATCH) as Secs;
        self.insert_product(&p, simple, created, modified, None)
    }

    /// Inserts a canonical product as a WooCommerce one (images become attachments).
    pub fn insert_product(
        &mut self,
        p: &Product,
        simple: bool,
        created: Secs,
        modified: Secs,
        written_at: Option<Instant>,
    ) -> u64 {
        let id = self.alloc();
        let mut images = Vec::new();
        let mut image_of_hash = HashMap::new();
        for image in &p.images {
            let name = format!("{}-{}", p.title, image.position + 1);
            let aid = self.add_attachment(&name, image.alt.as_deref().unwrap_or(""), created);
            image_of_hash.insert(image.content_hash, aid);
            images.push(aid);
        }
        let mut fields = Map::new();
        fields.insert("name".into(), json!(p.title));
        fields.insert(
            "slug".into(),
            json!(p.title.to_lowercase().replace(' ', "-")),
        );
        fields.insert(
            "type".into(),
            json!(if simple { "simple" } else { "variable" }),
        );
        let status = match p.status {
            tidemark_core::ProductStatus::Active => "publish",
            tidemark_core::ProductStatus::Draft => "draft",
            tidemark_core::ProductStatus::Paused => "private",
            tidemark_core::ProductStatus::Archived => "trash",
        };
        fields.insert("status".into(), json!(status));
        fields.insert("description".into(), json!(p.description));
        fields.insert("short_description".into(), json!(""));
        fields.insert(
            "sku".into(),
            json!(p.sku.as_ref().map(|s| s.0.clone()).unwrap_or_default()),
        );
        fields.insert(
            "categories".into(),
            json!(
                p.category
                    .iter()
                    .map(|c| json!({"id": 0, "name": c, "slug": c.to_lowercase()}))
                    .collect::<Vec<_>>()
            ),
        );
        fields.insert(
            "tags".into(),
            json!(
                p.tags
                    .iter()
                    .map(|t| json!({"id": 0, "name": t, "slug": t}))
                    .collect::<Vec<_>>()
            ),
        );
        fields.insert(
            "brands".into(),
            json!(
                p.brand
                    .iter()
                    .map(|b| json!({"id": 0, "name": b}))
                    .collect::<Vec<_>>()
            ),
        );
        let mut attributes: Vec<Value> = p
            .attributes
            .iter()
            .map(|(name, value)| {
                json!({"id": 0, "name": name, "position": 0, "visible": true, "variation": false, "options": [value]})
            })
            .collect();
        let mut variations = BTreeMap::new();
        if simple {
            let v = p.variants.first();
            fields.insert(
                "regular_price".into(),
                json!(money_text(v.and_then(|v| v.compare_at_price.or(v.price)))),
            );
            fields.insert(
                "sale_price".into(),
                json!(money_text(v.and_then(|v| v.compare_at_price.and(v.price)))),
            );
            fields.insert(
                "manage_stock".into(),
                json!(v.and_then(|v| v.stock).is_some()),
            );
            fields.insert("stock_quantity".into(), json!(v.and_then(|v| v.stock)));
            fields.insert(
                "weight".into(),
                json!(kg_text(v.and_then(|v| v.weight_grams))),
            );
            fields.insert(
                "global_unique_id".into(),
                json!(
                    v.and_then(|v| v.barcode.as_ref())
                        .map(|b| b.0.clone())
                        .unwrap_or_default()
                ),
            );
        } else {
            let mut option_values: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for v in &p.variants {
                for (name, value) in &v.options {
                    let values = option_values.entry(name.clone()).or_default();
                    if !values.contains(value) {
                        values.push(value.clone());
                    }
                }
            }
            for (name, values) in option_values {
                attributes.push(json!({"id": 0, "name": name, "position": 0, "visible": true, "variation": true, "options": values}));
            }
            fields.insert("regular_price".into(), json!(""));
            fields.insert("sale_price".into(), json!(""));
            fields.insert("manage_stock".into(), json!(false));
            fields.insert("stock_quantity".into(), Value::Null);
            fields.insert("weight".into(), json!(""));
            fields.insert("global_unique_id".into(), json!(""));
            for v in &p.variants {
                let vid = self.alloc();
                let mut vf = Map::new();
                vf.insert(
                    "sku".into(),
                    json!(v.sku.as_ref().map(|s| s.0.clone()).unwrap_or_default()),
                );
                vf.insert(
                    "regular_price".into(),
                    json!(money_text(v.compare_at_price.or(v.price))),
                );
                vf.insert(
                    "sale_price".into(),
                    json!(money_text(v.compare_at_price.and(v.price))),
                );
                vf.insert("manage_stock".into(), json!(v.stock.is_some()));
                vf.insert("stock_quantity".into(), json!(v.stock));
                vf.insert("weight".into(), json!(kg_text(v.weight_grams)));
                vf.insert(
                    "global_unique_id".into(),
                    json!(v.barcode.as_ref().map(|b| b.0.clone()).unwrap_or_default()),
                );
                vf.insert("status".into(), json!("publish"));
                vf.insert(
                    "attributes".into(),
                    json!(
                        v.options
                            .iter()
                            .map(|(n, o)| json!({"id": 0, "name": n, "option": o}))
                            .collect::<Vec<_>>()
                    ),
                );
                let image = v
                    .image_hashes
                    .first()
                    .and_then(|h| image_of_hash.get(h).copied());
                variations.insert(
                    vid,
                    Variation {
                        fields: vf,
                        image,
                        created,
                        modified,
                    },
                );
                self.variation_parent.insert(vid, id);
            }
        }
        fields.insert("attributes".into(), json!(attributes));
        fields.insert("meta_data".into(), json!([]));
        self.products.insert(
            id,
            ProductEntry {
                fields,
                images,
                variations,
                created,
                modified,
                index: IndexView {
                    written_at,
                    before: None,
                },
            },
        );
        id
    }

    /// Builds the SKU index used while seeding orders (see `seed_sku_index`).
    pub fn index_skus_for_seeding(&mut self) {
        let mut index = HashMap::new();
        for (id, p) in &self.products {
            if !p.sku().is_empty() {
                index.entry(p.sku().to_owned()).or_insert((*id, 0));
            }
            for (vid, v) in &p.variations {
                if let Some(sku) = v.fields.get("sku").and_then(Value::as_str)
                    && !sku.is_empty()
                {
                    index.entry(sku.to_owned()).or_insert((*id, *vid));
                }
            }
        }
        self.seed_sku_index = Some(index);
    }

    /// Seeds one order from `sample::order(seed)`, naming this shop's products where it can.
    pub fn seed_order(&mut self, seed: u64, created: Secs) -> u64 {
        let o = sample::order(seed);
        self.insert_order(&o, created, None)
    }

    pub fn insert_order(
        &mut self,
        o: &SalesOrder,
        created: Secs,
        written_at: Option<Instant>,
    ) -> u64 {
        let id = self.alloc();
        self.next_order_number += 1;
        let mut names = o.buyer.name.splitn(2, ' ');
        let first = names.next().unwrap_or("").to_owned();
        let last = names.next().unwrap_or("").to_owned();
        let address = |i: usize| o.buyer.address.get(i).cloned().unwrap_or_default();
        let status = match o.status {
            tidemark_core::OrderStatus::Pending => "pending",
            tidemark_core::OrderStatus::Processing => "processing",
            tidemark_core::OrderStatus::OnHold => "on-hold",
            tidemark_core::OrderStatus::Completed => "completed",
            tidemark_core::OrderStatus::Cancelled => "cancelled",
            tidemark_core::OrderStatus::Refunded => "refunded",
            tidemark_core::OrderStatus::Failed => "failed",
        };
        let mut line_items = Vec::new();
        for (n, line) in o.lines.iter().enumerate() {
            let sku = line.sku.as_ref().map(|s| s.0.clone()).unwrap_or_default();
            let (product_id, variation_id) = self.ids_for_sku(&sku);
            let total = line.unit_price * rust_decimal::Decimal::from(line.quantity);
            line_items.push(json!({
                "id": id * 100 + n as u64, "name": line.title, "product_id": product_id,
                "variation_id": variation_id, "quantity": line.quantity, "tax_class": "",
                "subtotal": total.to_string(), "subtotal_tax": "0.00", "total": total.to_string(),
                "total_tax": "0.00", "taxes": [], "meta_data": [], "sku": sku,
                "price": line.unit_price.to_string().parse::<f64>().unwrap_or(0.0),
            }));
        }
        let tracking: Vec<Value> = o
            .shipments
            .iter()
            .map(|s| {
                json!({"tracking_provider": s.carrier.clone().unwrap_or_default(),
                       "tracking_number": s.tracking_number.clone().unwrap_or_default()})
            })
            .collect();
        let meta = if tracking.is_empty() {
            json!([])
        } else {
            json!([{"id": id, "key": "_wc_shipment_tracking_items", "value": tracking}])
        };
        let paid = matches!(o.payment_status, tidemark_core::PaymentStatus::Paid);
        let placed = o.placed_at.millis() / 1000;
        let fields = json!({
            "parent_id": 0,
            "number": o.number,
            "order_key": format!("wc_order_{id}"),
            "created_via": "checkout",
            "status": status,
            "currency": o.currency.as_str(),
            "discount_total": "0.00",
            "shipping_total": o.shipping_total.to_string(),
            "total_tax": o.tax_total.to_string(),
            "total": o.total.to_string(),
            "customer_id": 0,
            "customer_note": o.note.clone().unwrap_or_default(),
            "billing": {"first_name": first, "last_name": last, "company": "",
                        "address_1": address(0), "address_2": "", "city": address(1),
                        "state": "", "postcode": "", "country": "",
                        "email": o.buyer.email.clone().unwrap_or_default(),
                        "phone": o.buyer.phone.clone().unwrap_or_default()},
            "shipping": {"first_name": first, "last_name": last, "company": "",
                         "address_1": address(0), "address_2": "", "city": address(1),
                         "state": "", "postcode": "", "country": ""},
            "payment_method": "bacs",
            "payment_method_title": "Direct bank transfer",
            "date_paid_secs": if paid { json!(placed) } else { Value::Null },
            "date_created_secs": placed,
            "line_items": line_items,
            "shipping_lines": [],
            "tax_lines": [],
            "meta_data": meta,
        });
        let Value::Object(fields) = fields else {
            return id;
        };
        self.orders.insert(
            id,
            OrderEntry {
                fields,
                created,
                modified: created,
                index: IndexView {
                    written_at,
                    before: None,
                },
            },
        );
        id
    }

    /// (product id, variation id) holding `sku`; zeros when none.
    pub fn ids_for_sku(&self, sku: &str) -> (u64, u64) {
        if let Some(index) = &self.seed_sku_index {
            return index.get(sku.trim()).copied().unwrap_or((0, 0));
        }
        match self.sku_owner(sku, None) {
            Some(id) => match self.variation_parent.get(&id) {
                Some(parent) => (*parent, id),
                None => (id, 0),
            },
            None => (0, 0),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Rendering
    // -----------------------------------------------------------------------------------------

    pub fn local(&self, secs: Secs) -> String {
        fmt_secs(secs + self.utc_offset)
    }

    fn image_json(&self, base: &str, id: u64, position: usize) -> Value {
        let Some(a) = self.attachments.get(&id) else {
            return Value::Null;
        };
        json!({
            "id": id,
            "date_created": self.local(a.created), "date_created_gmt": fmt_secs(a.created),
            "date_modified": self.local(a.created), "date_modified_gmt": fmt_secs(a.created),
            "src": format!("{base}{}", a.path(id)),
            "name": a.name, "alt": a.alt, "position": position,
        })
    }

    pub fn render_product(&self, base: &str, id: u64) -> Option<Value> {
        let p = self.products.get(&id)?;
        let mut out = Map::new();
        out.insert("id".into(), json!(id));
        out.insert("parent_id".into(), json!(0));
        for (k, v) in &p.fields {
            out.insert(k.clone(), v.clone());
        }
        out.insert(
            "permalink".into(),
            json!(format!(
                "{base}/product/{}/",
                p.fields.get("slug").and_then(Value::as_str).unwrap_or("")
            )),
        );
        out.insert("date_created".into(), json!(self.local(p.created)));
        out.insert("date_created_gmt".into(), json!(fmt_secs(p.created)));
        out.insert("date_modified".into(), json!(self.local(p.modified)));
        out.insert("date_modified_gmt".into(), json!(fmt_secs(p.modified)));
        let (price, stock_status) = if p.is_variable() {
            let min = p
                .variations
                .values()
                .filter_map(|v| effective_price(&v.fields))
                .min();
            let any_in_stock = p.variations.values().any(|v| in_stock(&v.fields));
            (
                min.map(|d| d.normalize().to_string()).unwrap_or_default(),
                if any_in_stock {
                    "instock"
                } else {
                    "outofstock"
                },
            )
        } else {
            (
                effective_price(&p.fields)
                    .map(|d| d.normalize().to_string())
                    .unwrap_or_default(),
                if in_stock(&p.fields) {
                    "instock"
                } else {
                    "outofstock"
                },
            )
        };
        out.insert("price".into(), json!(price));
        out.insert("stock_status".into(), json!(stock_status));
        out.insert("backorders".into(), json!("no"));
        out.insert(
            "on_sale".into(),
            json!(
                !p.fields
                    .get("sale_price")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
            ),
        );
        out.insert(
            "images".into(),
            json!(
                p.images
                    .iter()
                    .enumerate()
                    .map(|(i, a)| self.image_json(base, *a, i))
                    .collect::<Vec<_>>()
            ),
        );
        out.insert(
            "variations".into(),
            json!(p.variations.keys().collect::<Vec<_>>()),
        );
        Some(Value::Object(out))
    }

    pub fn render_variation(&self, base: &str, parent: u64, vid: u64) -> Option<Value> {
        let p = self.products.get(&parent)?;
        let v = p.variations.get(&vid)?;
        let mut out = Map::new();
        out.insert("id".into(), json!(vid));
        out.insert("parent_id".into(), json!(parent));
        out.insert("type".into(), json!("variation"));
        for (k, val) in &v.fields {
            out.insert(k.clone(), val.clone());
        }
        out.insert("date_created".into(), json!(self.local(v.created)));
        out.insert("date_created_gmt".into(), json!(fmt_secs(v.created)));
        out.insert("date_modified".into(), json!(self.local(v.modified)));
        out.insert("date_modified_gmt".into(), json!(fmt_secs(v.modified)));
        out.insert(
            "price".into(),
            json!(
                effective_price(&v.fields)
                    .map(|d| d.normalize().to_string())
                    .unwrap_or_default()
            ),
        );
        out.insert(
            "stock_status".into(),
            json!(if in_stock(&v.fields) {
                "instock"
            } else {
                "outofstock"
            }),
        );
        out.insert(
            "image".into(),
            v.image
                .map(|a| self.image_json(base, a, 0))
                .unwrap_or(Value::Null),
        );
        Some(Value::Object(out))
    }

    pub fn render_order(&self, id: u64) -> Option<Value> {
        let o = self.orders.get(&id)?;
        let mut out = Map::new();
        out.insert("id".into(), json!(id));
        for (k, v) in &o.fields {
            match k.as_str() {
                "date_paid_secs" => {
                    let paid = v.as_i64();
                    out.insert("date_paid".into(), json!(paid.map(|s| self.local(s))));
                    out.insert("date_paid_gmt".into(), json!(paid.map(fmt_secs)));
                }
                "date_created_secs" => {
                    let at = v.as_i64().unwrap_or(o.created);
                    out.insert("date_created".into(), json!(self.local(at)));
                    out.insert("date_created_gmt".into(), json!(fmt_secs(at)));
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        out.insert("date_modified".into(), json!(self.local(o.modified)));
        out.insert("date_modified_gmt".into(), json!(fmt_secs(o.modified)));
        Some(Value::Object(out))
    }
}

fn decimal_field(fields: &Map<String, Value>, key: &str) -> Option<rust_decimal::Decimal> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

fn effective_price(fields: &Map<String, Value>) -> Option<rust_decimal::Decimal> {
    decimal_field(fields, "sale_price").or_else(|| decimal_field(fields, "regular_price"))
}

fn in_stock(fields: &Map<String, Value>) -> bool {
    if fields.get("manage_stock").and_then(Value::as_bool) == Some(true) {
        fields
            .get("stock_quantity")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
    } else {
        true
    }
}

/// `2025-06-02T14:30:00` (no zone, second granularity), as WordPress writes dates.
pub fn fmt_secs(secs: Secs) -> String {
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Parses a WordPress date: `2025-06-01T00:00:00` (read in UTC when `gmt`, else site time)
/// or RFC 3339 with a zone.
pub fn parse_date(text: &str, gmt: bool, utc_offset: Secs) -> Option<Secs> {
    if let Ok(dt) =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Some(dt.unix_timestamp());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let dt = time::PrimitiveDateTime::parse(text, format).ok()?;
    let secs = dt.assume_utc().unix_timestamp();
    Some(if gmt { secs } else { secs - utc_offset })
}
