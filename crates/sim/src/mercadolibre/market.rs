//! The simulated seller account: items, orders, shipments, tokens, scans, the token bucket and
//! the notification feed. Plain data behind the simulator's mutex; the routes render it.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tidemark_core::{ProductStatus, sample};

use super::MlConfig;
use super::pictures::{Format, Processed, SEEDED_SIDE};

/// Milliseconds since the epoch.
pub type Millis = i64;

/// Seeded records are stamped from here on (2025-06-01T00:00:00Z).
pub const SEED_EPOCH: Millis = 1_748_736_000_000;

/// Items' titles are cut to this many characters (MercadoLibre's usual limit).
pub const TITLE_MAX: usize = 60;

#[derive(Debug, Clone)]
pub struct Picture {
    pub id: String,
    pub image: PictureImage,
}

/// What the CDN serves for a picture.
#[derive(Debug, Clone)]
pub enum PictureImage {
    /// A seeded picture (the catalogue's own, or one a seller added on the site): the PNG
    /// `images::png(seed, SEEDED_SIDE)`, made when asked for.
    Seeded(u64),
    /// An image taken in by URL or upload, as re-encoded (`pictures::process`).
    Processed(Processed),
}

impl Picture {
    pub fn bytes(&self) -> Vec<u8> {
        match &self.image {
            PictureImage::Seeded(seed) => crate::images::png(*seed, SEEDED_SIDE),
            PictureImage::Processed(p) => p.bytes.to_vec(),
        }
    }

    pub fn format(&self) -> Format {
        match &self.image {
            PictureImage::Seeded(_) => Format::Png,
            PictureImage::Processed(p) => p.format,
        }
    }

    /// `WIDTHxHEIGHT`.
    pub fn size(&self) -> String {
        match &self.image {
            PictureImage::Seeded(_) => format!("{SEEDED_SIDE}x{SEEDED_SIDE}"),
            PictureImage::Processed(p) => format!("{}x{}", p.width, p.height),
        }
    }

    /// Where the CDN serves it: `{base}/pictures/{id}.png` (`.jpg` for a JPEG).
    pub fn url(&self, base: &str) -> String {
        format!("{base}/pictures/{}.{}", self.id, self.format().extension())
    }
}

#[derive(Debug, Clone)]
pub struct AttrCombo {
    pub id: String,
    pub name: String,
    pub value_name: String,
}

#[derive(Debug, Clone)]
pub struct Variation {
    pub id: u64,
    pub price: Decimal,
    pub available_quantity: i64,
    pub sold_quantity: i64,
    pub combos: Vec<AttrCombo>,
    pub picture_ids: Vec<String>,
    pub seller_sku: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub title: String,
    pub category_id: String,
    pub price: Decimal,
    pub currency_id: String,
    /// Without variations: the item's quantity. With: the sum of theirs (kept in step).
    pub available_quantity: i64,
    pub sold_quantity: i64,
    pub status: String,
    pub seller_sku: Option<String>,
    pub brand: Option<String>,
    pub pictures: Vec<Picture>,
    pub variations: Vec<Variation>,
    pub description: String,
    pub date_created: Millis,
    pub last_updated: Millis,
}

impl Item {
    pub fn sync_quantity(&mut self) {
        if !self.variations.is_empty() {
            // Saturating: tests set absurd quantities.
            self.available_quantity = self
                .variations
                .iter()
                .fold(0i64, |sum, v| sum.saturating_add(v.available_quantity));
            self.sold_quantity = self
                .variations
                .iter()
                .fold(0i64, |sum, v| sum.saturating_add(v.sold_quantity));
        }
    }

    /// Every SKU the item answers a `seller_sku` search to.
    pub fn skus(&self) -> impl Iterator<Item = &str> {
        self.seller_sku.as_deref().into_iter().chain(
            self.variations
                .iter()
                .filter_map(|v| v.seller_sku.as_deref()),
        )
    }
}

#[derive(Debug, Clone)]
pub struct OrderItem {
    pub item_id: String,
    pub title: String,
    pub variation_id: Option<u64>,
    pub seller_sku: Option<String>,
    pub combos: Vec<AttrCombo>,
    pub quantity: i64,
    pub unit_price: Decimal,
    pub currency_id: String,
}

#[derive(Debug, Clone)]
pub struct Order {
    pub id: u64,
    pub status: String,
    pub date_created: Millis,
    pub last_updated: Millis,
    pub items: Vec<OrderItem>,
    pub currency_id: String,
    pub buyer_id: u64,
    pub buyer_nickname: String,
    pub buyer_first_name: String,
    pub buyer_last_name: String,
    pub shipping_id: Option<u64>,
}

impl Order {
    pub fn total(&self) -> Decimal {
        self.items
            .iter()
            .map(|i| i.unit_price * Decimal::from(i.quantity))
            .sum()
    }
}

#[derive(Debug, Clone)]
pub struct Shipment {
    pub id: u64,
    pub order_id: u64,
    pub status: String,
    pub tracking_number: Option<String>,
    pub tracking_method: Option<String>,
    pub last_updated: Millis,
    /// `me2` (Mercado Envíos: the carrier sets tracking) or `me1`/`custom` (the seller ships
    /// and may set tracking with `PUT /shipments/{id}`).
    pub mode: String,
}

/// A scan in progress: the matching ids as they were when it started, and when it was last
/// used. Each answer names a fresh scroll id for the next page, so repeating a request after a
/// lost answer repeats its page rather than skipping one.
#[derive(Debug, Clone)]
pub struct Scroll {
    pub ids: Vec<String>,
    pub position: usize,
    pub last_used: Instant,
    /// Pages served so far (for `Market::short_scan_page`).
    pub pages: usize,
}

/// A token bucket plus an hourly cap.
#[derive(Debug, Clone)]
pub struct RateLimit {
    per_second: Option<f64>,
    burst: f64,
    tokens: f64,
    refilled: Instant,
    hourly: Option<u64>,
    hour_start: Instant,
    hour_count: u64,
}

impl RateLimit {
    pub fn new(per_second: Option<f64>, burst: u32, hourly: Option<u64>) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_second: per_second.filter(|r| r.is_finite() && *r > 0.0),
            burst,
            tokens: burst,
            refilled: Instant::now(),
            hourly,
            hour_start: Instant::now(),
            hour_count: 0,
        }
    }

    /// Spends one request; `false` when the bucket or the hour is exhausted.
    pub fn admit(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.hour_start) >= Duration::from_secs(3600) {
            self.hour_start = now;
            self.hour_count = 0;
        }
        if let Some(cap) = self.hourly
            && self.hour_count >= cap
        {
            return false;
        }
        if let Some(rate) = self.per_second {
            let elapsed = now.duration_since(self.refilled).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(self.burst);
            self.refilled = now;
            if self.tokens < 1.0 {
                return false;
            }
            self.tokens -= 1.0;
        }
        self.hour_count += 1;
        true
    }
}

/// One notification as MercadoLibre sends it, kept for `/missed_feeds`.
#[derive(Debug, Clone)]
pub struct Notification {
    pub id: String,
    pub resource: String,
    pub topic: String,
    pub sent: Millis,
    pub delivered: bool,
}

#[derive(Debug)]
pub struct Market {
    pub user_id: u64,
    pub site_id: String,
    pub items: BTreeMap<String, Item>,
    pub orders: BTreeMap<u64, Order>,
    pub shipments: BTreeMap<u64, Shipment>,
    /// Access token → expiry.
    pub access_tokens: HashMap<String, Instant>,
    /// The only refresh token that works.
    pub refresh_token: String,
    pub refreshes: u64,
    pub token_counter: u64,
    pub scrolls: HashMap<String, Scroll>,
    pub scroll_counter: u64,
    pub rate: RateLimit,
    pub next_item: u64,
    pub next_variation: u64,
    pub next_picture: u64,
    pub next_order: u64,
    pub next_shipment: u64,
    pub notifications: Vec<Notification>,
    pub notification_url: Option<String>,
    pub notification_counter: u64,
    /// Topics switched off because the receiver answered too slowly; nothing is sent on
    /// them until the seller subscribes again (`set_notification_url`).
    pub disabled_topics: std::collections::BTreeSet<String>,
    /// Search index lag (`FaultConfig::index_lag_ms`): for an item written less than the lag
    /// ago, what searches still see of it — its state before the write(s), `None` for an item
    /// not yet indexed (created within the lag) — and when the index catches up.
    pub index_behind: HashMap<String, (Instant, Option<Indexed>)>,
    /// Search answers short pages: `(page_number, size)` makes scan page `page_number`
    /// (0-based) of every scroll hold only `size` ids, the rest following on later pages.
    pub short_scan_page: Option<(usize, usize)>,
    /// The next this many `POST /items` create the item, then answer 502.
    pub lose_create_answers: u32,
    /// Item `PUT`s still to be applied and then answered 502 (`MlSim::lose_update_answers`).
    pub lose_update_answers: u32,
    /// Every picture the CDN serves, by id: those of items (also after they leave an item,
    /// as CDN URLs outlive listings) and uploaded ones not yet on any item. An item write may
    /// name any of them by `{id}`.
    pub pictures: HashMap<String, Picture>,
}

/// What the search index knows of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    pub skus: Vec<String>,
    pub status: String,
    pub last_updated: Millis,
}

impl Indexed {
    pub fn of(item: &Item) -> Self {
        Self {
            skus: item.skus().map(str::to_owned).collect(),
            status: item.status.clone(),
            last_updated: item.last_updated,
        }
    }
}

pub fn now_millis() -> Millis {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as Millis
}

/// `2025-06-02T14:30:00.000Z`.
pub fn format_utc(ms: Millis) -> String {
    format_offset(ms, 0)
}

/// An ISO time with a fixed offset in hours (orders use −04:00, as Argentina).
pub fn format_offset(ms: Millis, offset_hours: i8) -> String {
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return String::new();
    };
    let Ok(offset) = time::UtcOffset::from_hms(offset_hours, 0, 0) else {
        return String::new();
    };
    let dt = dt.to_offset(offset);
    let zone = if offset_hours == 0 {
        "Z".to_owned()
    } else {
        format!(
            "{}{:02}:00",
            if offset_hours < 0 { '-' } else { '+' },
            offset_hours.unsigned_abs()
        )
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{zone}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

pub fn parse_time(text: &str) -> Option<Millis> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|dt| (dt.unix_timestamp_nanos() / 1_000_000) as Millis)
}

/// A price as a JSON number written from the decimal's own digits (never through f64).
pub fn money(value: Decimal) -> Value {
    let text = value.normalize().to_string();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

impl Market {
    pub fn new(config: &MlConfig) -> Self {
        let mut access_tokens = HashMap::new();
        access_tokens.insert(
            config.access_token.clone(),
            Instant::now() + config.token_ttl,
        );
        Self {
            user_id: config.user_id,
            site_id: config.site_id.clone(),
            items: BTreeMap::new(),
            orders: BTreeMap::new(),
            shipments: BTreeMap::new(),
            access_tokens,
            refresh_token: config.refresh_token.clone(),
            refreshes: 0,
            token_counter: 0,
            scrolls: HashMap::new(),
            scroll_counter: 0,
            rate: RateLimit::new(
                config.rate_per_second,
                config.rate_burst,
                config.hourly_limit,
            ),
            next_item: 1_000_000_000,
            next_variation: 170_000_000_000,
            next_picture: 100_000,
            next_order: 2_000_000_000_000_000,
            next_shipment: 41_000_000_000,
            notifications: Vec::new(),
            notification_url: config.notification_url.clone(),
            notification_counter: 0,
            disabled_topics: std::collections::BTreeSet::new(),
            index_behind: HashMap::new(),
            short_scan_page: None,
            lose_create_answers: 0,
            lose_update_answers: 0,
            pictures: HashMap::new(),
        }
    }

    /// Call before writing item `id` (or creating it): with a lag, searches keep seeing the
    /// item as it was until `lag` after this write. A write within the lag of an earlier one
    /// keeps the older state and pushes the catch-up back.
    pub fn before_write(&mut self, id: &str, lag: Duration) {
        if lag.is_zero() {
            return;
        }
        let now = Instant::now();
        let before = self.items.get(id).map(Indexed::of);
        let until = now + lag;
        match self.index_behind.get_mut(id) {
            Some((at, _)) if *at > now => *at = until,
            _ => {
                self.index_behind.insert(id.to_owned(), (until, before));
            }
        }
    }

    /// What searches see of `item` now.
    pub fn indexed(&self, item: &Item) -> Option<Indexed> {
        match self.index_behind.get(&item.id) {
            Some((until, before)) if *until > Instant::now() => before.clone(),
            _ => Some(Indexed::of(item)),
        }
    }

    pub fn new_item_id(&mut self) -> String {
        self.next_item += 1;
        format!("{}{}", self.site_id, self.next_item)
    }

    pub fn new_variation_id(&mut self) -> u64 {
        self.next_variation += 1;
        self.next_variation
    }

    /// A picture id shaped like MercadoLibre's (`959699-MLA43299127002_092020`).
    fn new_picture_id(&mut self, tag: u64) -> String {
        self.next_picture += 1;
        format!(
            "{}-{}{}_062025",
            self.next_picture,
            self.site_id,
            tag % 100_000_000_000
        )
    }

    /// A seeded picture, served from now on.
    pub fn new_picture(&mut self, seed: u64) -> Picture {
        let picture = Picture {
            id: self.new_picture_id(seed),
            image: PictureImage::Seeded(seed),
        };
        self.register(&picture);
        picture
    }

    /// A picture of an image taken in by URL or upload. Not served until `register`ed: a
    /// write that fails after making it leaves nothing behind.
    pub fn processed_picture(&mut self, image: Processed) -> Picture {
        let tag = image.bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        Picture {
            id: self.new_picture_id(tag),
            image: PictureImage::Processed(image),
        }
    }

    pub fn register(&mut self, picture: &Picture) {
        if !self.pictures.contains_key(&picture.id) {
            self.pictures.insert(picture.id.clone(), picture.clone());
        }
    }

    /// Item `index` (1-based) from `sample::product(seed)`.
    pub fn seed_item(&mut self, seed: u64, index: u64) {
        let p = sample::product(seed);
        let id = self.new_item_id();
        let pictures: Vec<Picture> = p
            .images
            .iter()
            .enumerate()
            .map(|(n, _)| self.new_picture(seed.wrapping_mul(16).wrapping_add(n as u64)))
            .collect();
        let variations: Vec<Variation> = p
            .variants
            .iter()
            .map(|v| {
                let picture_ids = v
                    .image_hashes
                    .iter()
                    .filter_map(|h| p.images.iter().position(|i| i.content_hash == *h))
                    .filter_map(|pos| pictures.get(pos).map(|pic| pic.id.clone()))
                    .collect();
                let mut combos = Vec::new();
                if let Some(color) = v.options.get("color") {
                    combos.push(AttrCombo {
                        id: "COLOR".into(),
                        name: "Color".into(),
                        value_name: color.clone(),
                    });
                }
                if let Some(size) = v.options.get("size") {
                    combos.push(AttrCombo {
                        id: "SIZE".into(),
                        name: "Talle".into(),
                        value_name: size.clone(),
                    });
                }
                Variation {
                    id: self.new_variation_id(),
                    price: v.price.unwrap_or_default(),
                    available_quantity: v.stock.unwrap_or(0),
                    sold_quantity: 0,
                    combos,
                    picture_ids,
                    seller_sku: v.sku.as_ref().map(|s| s.0.clone()),
                }
            })
            .collect();
        let price = variations.iter().map(|v| v.price).min().unwrap_or_default();
        let stamp = SEED_EPOCH + index as Millis * 1000;
        let mut item = Item {
            id: id.clone(),
            title: p.title.chars().take(TITLE_MAX).collect(),
            category_id: format!("{}1234", self.site_id),
            price,
            currency_id: p.currency.as_str().to_owned(),
            available_quantity: 0,
            sold_quantity: 0,
            status: match p.status {
                ProductStatus::Active => "active",
                _ => "paused",
            }
            .into(),
            seller_sku: p.sku.as_ref().map(|s| s.0.clone()),
            brand: p.brand.clone(),
            pictures,
            variations,
            description: p.description.clone(),
            date_created: stamp,
            last_updated: stamp,
        };
        item.sync_quantity();
        self.items.insert(id, item);
    }

    /// Order `j` (0-based): one unit of the first variation of an item, paid, with a shipment.
    pub fn seed_order(&mut self, j: u64) {
        let Some(item) = self
            .items
            .values()
            .nth((j as usize) % self.items.len().max(1))
            .cloned()
        else {
            return;
        };
        let stamp = SEED_EPOCH + 86_400_000 + j as Millis * 60_000;
        let buyer = sample::order(j).buyer;
        self.add_order(&item.id, None, 1, stamp, &buyer.name);
    }

    /// Places an order for `quantity` of the item's variation (its first when `variation` is
    /// `None`), decrementing stock. `None` when the item does not exist.
    pub fn add_order(
        &mut self,
        item_id: &str,
        variation: Option<u64>,
        quantity: i64,
        at: Millis,
        buyer_name: &str,
    ) -> Option<u64> {
        let item = self.items.get_mut(item_id)?;
        let line = if item.variations.is_empty() {
            item.available_quantity -= quantity;
            item.sold_quantity += quantity;
            OrderItem {
                item_id: item.id.clone(),
                title: item.title.clone(),
                variation_id: None,
                seller_sku: item.seller_sku.clone(),
                combos: Vec::new(),
                quantity,
                unit_price: item.price,
                currency_id: item.currency_id.clone(),
            }
        } else {
            let v = match variation {
                Some(vid) => item.variations.iter_mut().find(|v| v.id == vid)?,
                None => item.variations.first_mut()?,
            };
            v.available_quantity -= quantity;
            v.sold_quantity += quantity;
            let line = OrderItem {
                item_id: item.id.clone(),
                title: item.title.clone(),
                variation_id: Some(v.id),
                seller_sku: v.seller_sku.clone(),
                combos: v.combos.clone(),
                quantity,
                unit_price: v.price,
                currency_id: item.currency_id.clone(),
            };
            item.sync_quantity();
            line
        };
        item.last_updated = item.last_updated.max(at);
        self.next_order += 1;
        self.next_shipment += 1;
        let id = self.next_order;
        let (first, last) = buyer_name.split_once(' ').unwrap_or((buyer_name, ""));
        self.orders.insert(
            id,
            Order {
                id,
                status: "paid".into(),
                date_created: at,
                last_updated: at,
                currency_id: line.currency_id.clone(),
                items: vec![line],
                buyer_id: 100_000 + id % 1_000_000,
                buyer_nickname: buyer_name.to_uppercase().replace(' ', ""),
                buyer_first_name: first.to_owned(),
                buyer_last_name: last.to_owned(),
                shipping_id: Some(self.next_shipment),
            },
        );
        self.shipments.insert(
            self.next_shipment,
            Shipment {
                id: self.next_shipment,
                order_id: id,
                status: "ready_to_ship".into(),
                tracking_number: None,
                tracking_method: None,
                last_updated: at,
                mode: "me2".into(),
            },
        );
        Some(id)
    }

    pub fn render_item(&self, base: &str, item: &Item) -> Value {
        let pictures: Vec<Value> = item
            .pictures
            .iter()
            .map(|p| {
                let url = p.url(base);
                let size = p.size();
                json!({"id": p.id, "url": url, "secure_url": url, "size": size,
                       "max_size": size, "quality": ""})
            })
            .collect();
        let mut attributes = Vec::new();
        if let Some(sku) = &item.seller_sku {
            attributes.push(json!({"id": "SELLER_SKU", "name": "SKU", "value_id": null,
                                   "value_name": sku}));
        }
        if let Some(brand) = &item.brand {
            attributes.push(json!({"id": "BRAND", "name": "Marca", "value_id": null,
                                   "value_name": brand}));
        }
        let variations: Vec<Value> = item
            .variations
            .iter()
            .map(|v| {
                let attributes: Vec<Value> = v
                    .seller_sku
                    .iter()
                    .map(|sku| json!({"id": "SELLER_SKU", "value_name": sku}))
                    .collect();
                json!({
                    "id": v.id,
                    "price": money(v.price),
                    "available_quantity": v.available_quantity,
                    "sold_quantity": v.sold_quantity,
                    "attribute_combinations": combos_json(&v.combos),
                    "picture_ids": v.picture_ids,
                    "seller_custom_field": null,
                    "attributes": attributes,
                })
            })
            .collect();
        json!({
            "id": item.id,
            "site_id": self.site_id,
            "title": item.title,
            "seller_id": self.user_id,
            "category_id": item.category_id,
            "price": money(item.price),
            "base_price": money(item.price),
            "currency_id": item.currency_id,
            "initial_quantity": item.available_quantity + item.sold_quantity,
            "available_quantity": item.available_quantity,
            "sold_quantity": item.sold_quantity,
            "buying_mode": "buy_it_now",
            "listing_type_id": "gold_special",
            "condition": "new",
            "permalink": format!("{base}/item/{}", item.id),
            "thumbnail": item.pictures.first().map(|p| p.url(base)),
            "pictures": pictures,
            "attributes": attributes,
            "variations": variations,
            "status": item.status,
            "sub_status": [],
            "tags": [],
            "seller_custom_field": null,
            "family_name": null,
            "user_product_id": null,
            "date_created": format_utc(item.date_created),
            "last_updated": format_utc(item.last_updated),
        })
    }

    pub fn render_order(&self, order: &Order) -> Value {
        let total = money(order.total());
        let items: Vec<Value> = order
            .items
            .iter()
            .map(|i| {
                json!({
                    "item": {
                        "id": i.item_id,
                        "title": i.title,
                        "variation_id": i.variation_id,
                        "seller_sku": i.seller_sku,
                        "seller_custom_field": null,
                        "variation_attributes": combos_json(&i.combos),
                    },
                    "quantity": i.quantity,
                    "unit_price": money(i.unit_price),
                    "full_unit_price": money(i.unit_price),
                    "currency_id": i.currency_id,
                    "sale_fee": 0,
                })
            })
            .collect();
        json!({
            "id": order.id,
            "status": order.status,
            "date_created": format_offset(order.date_created, -4),
            "date_closed": format_offset(order.date_created, -4),
            "last_updated": format_offset(order.last_updated, -4),
            "date_last_updated": format_offset(order.last_updated, -4),
            "pack_id": null,
            "tags": [order.status.clone()],
            "order_items": items,
            "total_amount": total,
            "paid_amount": total,
            "currency_id": order.currency_id,
            "buyer": {
                "id": order.buyer_id,
                "nickname": order.buyer_nickname,
                "first_name": order.buyer_first_name,
                "last_name": order.buyer_last_name,
            },
            "seller": {"id": self.user_id},
            "payments": [{"id": order.id % 10_000_000_000, "status": "approved",
                          "transaction_amount": total}],
            "shipping": {"id": order.shipping_id},
        })
    }

    pub fn render_shipment(&self, s: &Shipment) -> Value {
        json!({
            "id": s.id,
            "order_id": s.order_id,
            "status": s.status,
            "tracking_number": s.tracking_number,
            "tracking_method": s.tracking_method,
            "mode": s.mode,
            "last_updated": format_offset(s.last_updated, -4),
        })
    }
}

fn combos_json(combos: &[AttrCombo]) -> Vec<Value> {
    combos
        .iter()
        .map(|c| json!({"id": c.id, "name": c.name, "value_id": null, "value_name": c.value_name}))
        .collect()
}

/// A picture seed for a picture a seller adds by hand.
pub fn seed_for_new_picture(now: Millis) -> u64 {
    (now as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
