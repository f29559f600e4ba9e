//! The domain model of DESIGN §3: what a product, an order, a binding, a snapshot, a pending
//! change and an issue are. Every type here is plain data, serde-serialisable, and free of I/O.
//!
//! A [`Product`] is *content*: the same shape serves as the canonical record, as a normalised
//! platform record from a scan, and as the acknowledged snapshot of a connection. Identity and
//! bookkeeping (internal ids, external ids, timestamps) live beside it, never inside its hash,
//! except for the `external_id` of variants and images, which the hash deliberately skips.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. Core never reads a clock: callers pass time in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Converts from `time`; sub-millisecond precision is dropped (platforms give seconds).
    pub fn from_datetime(dt: time::OffsetDateTime) -> Self {
        Self((dt.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn to_datetime(self) -> Option<time::OffsetDateTime> {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000).ok()
    }

    /// Parses an RFC 3339 timestamp such as `2025-01-02T03:04:05Z` or `…+02:00`.
    pub fn parse_rfc3339(text: &str) -> Result<Self, time::error::Parse> {
        let dt = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)?;
        Ok(Self::from_datetime(dt))
    }

    pub fn saturating_sub_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_sub(millis))
    }

    pub fn saturating_add_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime().and_then(|dt| {
            dt.format(&time::format_description::well_known::Rfc3339)
                .ok()
        }) {
            Some(text) => f.write_str(&text),
            None => write!(f, "{}ms", self.0),
        }
    }
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A merchant's account; every query is scoped by it.
    AccountId
);
id_type!(
    /// A configured connection to one platform account (a shop, a seller, a CSV feed).
    ConnectionId
);
id_type!(
    /// Internal id of a canonical product.
    ProductId
);
id_type!(
    /// Internal id of a canonical sales order.
    OrderId
);
id_type!(
    /// A row of `job_runs`.
    JobRunId
);
id_type!(
    /// An outbox row.
    PendingChangeId
);
id_type!(
    /// A stored issue.
    IssueId
);

/// An id as the platform spells it (`gid://shopify/Product/1`, `794`, `MLA600190449`).
/// Kept as text: Shopify ids exceed 2^53 and must never pass through a float.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExternalId(pub String);

impl ExternalId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stock keeping unit, in normalised form once it has passed [`crate::normalize`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sku(pub String);

impl Sku {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A GTIN / EAN / UPC / ISBN, in normalised form once it has passed [`crate::normalize`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Barcode(pub String);

impl Barcode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Barcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ISO 4217 currency code, upper case (`USD`, `ARS`, `JPY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");

    /// Accepts three ASCII letters in any case.
    pub fn parse(code: &str) -> Result<Self, crate::CoreError> {
        let trimmed = code.trim();
        let bytes = trimmed.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(crate::CoreError::InvalidCurrency(code.to_owned()));
        }
        Ok(Self([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    pub fn as_str(&self) -> &str {
        // Always three ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Minor-unit digits of ISO 4217 (2 unless listed otherwise).
    pub fn minor_units(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            "CLF" | "UYW" => 4,
            _ => 2,
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = crate::CoreError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}

impl Default for Currency {
    fn default() -> Self {
        Self::USD
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 128-bit content hash of a record's canonical form (see [`crate::hash`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentHash(pub u128);

impl ContentHash {
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self, crate::CoreError> {
        if text.len() != 32 {
            return Err(crate::CoreError::InvalidHash(text.to_owned()));
        }
        u128::from_str_radix(text, 16)
            .map(Self)
            .map_err(|_| crate::CoreError::InvalidHash(text.to_owned()))
    }
}

impl TryFrom<String> for ContentHash {
    type Error = crate::CoreError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_hex(&value)
    }
}

impl From<ContentHash> for String {
    fn from(value: ContentHash) -> Self {
        value.to_hex()
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The platforms tidemark has connectors for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformKind {
    Shopify,
    Woocommerce,
    Mercadolibre,
    Csv,
}

impl PlatformKind {
    pub const ALL: [PlatformKind; 4] = [
        PlatformKind::Shopify,
        PlatformKind::Woocommerce,
        PlatformKind::Mercadolibre,
        PlatformKind::Csv,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PlatformKind::Shopify => "shopify",
            PlatformKind::Woocommerce => "woocommerce",
            PlatformKind::Mercadolibre => "mercadolibre",
            PlatformKind::Csv => "csv",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of record a binding, snapshot, pending change or issue is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Product,
    Variant,
    Image,
    Order,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Product => "product",
            RecordKind::Variant => "variant",
            RecordKind::Image => "image",
            RecordKind::Order => "order",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Product, Self::Variant, Self::Image, Self::Order]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// The two kinds a connection scans and keeps a clock for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanKind {
    Products,
    Orders,
}

impl ScanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanKind::Products => "products",
            ScanKind::Orders => "orders",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Products, Self::Orders]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

// ---------------------------------------------------------------------------------------------
// Products
// ---------------------------------------------------------------------------------------------

/// Publication state of a product on a platform.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    /// Listed and selling (Shopify ACTIVE, WooCommerce publish, MercadoLibre active).
    #[default]
    Active,
    /// Temporarily not selling (MercadoLibre paused, WooCommerce private).
    Paused,
    /// Not yet published (Shopify DRAFT, WooCommerce draft/pending).
    Draft,
    /// Retired (Shopify ARCHIVED, MercadoLibre closed).
    Archived,
}

impl ProductStatus {
    /// Visible to buyers.
    pub fn is_published(self) -> bool {
        matches!(self, ProductStatus::Active)
    }
}

/// Where an image's content hash came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ImageHashSource {
    /// The downloaded bytes: survives re-uploads that change the URL.
    Bytes,
    /// The URL, until the bytes are downloaded.
    #[default]
    Url,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The platform's id of this image (media id, attachment id, picture id). Not content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<ExternalId>,
    pub src: String,
    /// Images are matched by this hash, never by URL alone.
    pub content_hash: ContentHash,
    #[serde(default)]
    pub hash_source: ImageHashSource,
    /// 0-based; position 0 is the main image.
    pub position: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// The platform's id of this variant. Not content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<ExternalId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<Barcode>,
    /// Option name → value (`color` → `Red`, `size` → `M`). Names are normalised to the
    /// canonical `color` / `size` where the connection's settings say which attribute means
    /// which; a variant without options is the product's only variant.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_at_price: Option<Decimal>,
    /// Units available; `None` when the platform does not track stock for this variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<Decimal>,
    /// Content hashes of this variant's images (which must be among the product's images).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_hashes: Vec<ContentHash>,
}

/// Product content. Money amounts are in `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The product-level SKU (parent SKU); variants carry their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    pub title: String,
    /// HTML.
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default)]
    pub tags: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<Barcode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<Decimal>,
    #[serde(default)]
    pub status: ProductStatus,
    /// Custom attributes (name → value), e.g. `material` → `cotton`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub currency: Currency,
    /// Ordered by `position`.
    #[serde(default)]
    pub images: Vec<Image>,
    /// At least one for a sellable product.
    #[serde(default)]
    pub variants: Vec<Variant>,
}

/// The fields a policy, a diff, a pending update or a filter can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    // product fields
    Sku,
    Title,
    Description,
    Brand,
    Vendor,
    Category,
    Tags,
    Barcode,
    Weight,
    Status,
    Attributes,
    Images,
    /// The variant list itself (added or removed variants, option values).
    Variants,
    Price,
    CompareAtPrice,
    Stock,
    // order fields
    OrderStatus,
    PaymentStatus,
    Shipments,
    OrderNote,
}

impl Field {
    pub const PRODUCT_FIELDS: [Field; 16] = [
        Field::Sku,
        Field::Title,
        Field::Description,
        Field::Brand,
        Field::Vendor,
        Field::Category,
        Field::Tags,
        Field::Barcode,
        Field::Weight,
        Field::Status,
        Field::Attributes,
        Field::Images,
        Field::Variants,
        Field::Price,
        Field::CompareAtPrice,
        Field::Stock,
    ];

    pub const ORDER_FIELDS: [Field; 4] = [
        Field::OrderStatus,
        Field::PaymentStatus,
        Field::Shipments,
        Field::OrderNote,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Sku => "sku",
            Field::Title => "title",
            Field::Description => "description",
            Field::Brand => "brand",
            Field::Vendor => "vendor",
            Field::Category => "category",
            Field::Tags => "tags",
            Field::Barcode => "barcode",
            Field::Weight => "weight",
            Field::Status => "status",
            Field::Attributes => "attributes",
            Field::Images => "images",
            Field::Variants => "variants",
            Field::Price => "price",
            Field::CompareAtPrice => "compare_at_price",
            Field::Stock => "stock",
            Field::OrderStatus => "order_status",
            Field::PaymentStatus => "payment_status",
            Field::Shipments => "shipments",
            Field::OrderNote => "order_note",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::PRODUCT_FIELDS
            .into_iter()
            .chain(Self::ORDER_FIELDS)
            .find(|field| field.as_str() == text)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of fields, ordered, for pending updates and diffs.
pub type FieldSet = BTreeSet<Field>;

/// The canonical product: content plus the bookkeeping the merge rules need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanonicalProduct {
    pub id: ProductId,
    pub account: AccountId,
    pub content: Product,
    /// For each field, the platform timestamp of the change that set its current value: a
    /// later change wins (DESIGN §4). Fields never changed since creation are absent and take
    /// `created_at`.
    #[serde(default)]
    pub field_times: BTreeMap<Field, Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    #[default]
    Pending,
    Processing,
    OnHold,
    Completed,
    Cancelled,
    Refunded,
    Failed,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    #[default]
    Pending,
    Paid,
    PartiallyPaid,
    Refunded,
    PartiallyRefunded,
    Voided,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    #[default]
    Pending,
    Shipped,
    InTransit,
    Delivered,
    Returned,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Buyer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Free-form postal address lines, as the platform gives them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    pub title: String,
    pub quantity: i64,
    pub unit_price: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub status: ShipmentStatus,
}

/// Sales order content. Orders are never deleted anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesOrder {
    /// The order number as the buyer sees it on the origin platform.
    pub number: String,
    #[serde(default)]
    pub buyer: Buyer,
    pub lines: Vec<OrderLine>,
    pub currency: Currency,
    pub subtotal: Decimal,
    #[serde(default)]
    pub shipping_total: Decimal,
    #[serde(default)]
    pub tax_total: Decimal,
    pub total: Decimal,
    #[serde(default)]
    pub status: OrderStatus,
    #[serde(default)]
    pub payment_status: PaymentStatus,
    #[serde(default)]
    pub shipments: Vec<Shipment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the buyer placed the order (platform time).
    pub placed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanonicalOrder {
    pub id: OrderId,
    pub account: AccountId,
    /// The connection the order was placed on.
    pub origin: ConnectionId,
    pub content: SalesOrder,
    #[serde(default)]
    pub field_times: BTreeMap<Field, Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

// ---------------------------------------------------------------------------------------------
// Records as a connector sees them
// ---------------------------------------------------------------------------------------------

/// Content of either kind, for snapshots and scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub enum RecordContent {
    Product(Product),
    Order(SalesOrder),
}

/// A record as scanned from (or confirmed by) a platform: its id there, the platform's own
/// last-modified time, and its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalRecord {
    pub external_id: ExternalId,
    /// The platform's `updated_at` / `date_modified` / `last_updated`, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    pub content: RecordContent,
}

// ---------------------------------------------------------------------------------------------
// Bindings, snapshots, pending changes, issues
// ---------------------------------------------------------------------------------------------

/// (connection, kind, external id) ↔ internal id; unique on both sides.
/// For variants and images `internal_id` is the owning product's id and `internal_key` names
/// the variant (its match key) or image (its content hash) inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Binding {
    pub connection: ConnectionId,
    pub kind: RecordKind,
    pub external_id: ExternalId,
    pub internal_id: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub internal_key: String,
}

/// The acknowledged state of one bound record on one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub connection: ConnectionId,
    pub external_id: ExternalId,
    /// The canonical record it is bound to (product id or order id, by `content`'s kind).
    pub internal_id: i64,
    /// The normalisation schema version `content` was written under
    /// ([`crate::normalize::SCHEMA_VERSION`] when current).
    pub schema_version: u32,
    pub content: RecordContent,
    pub content_hash: ContentHash,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_updated_at: Option<Timestamp>,
    /// The full-scan generation that last saw this record (mark and sweep).
    pub seen_generation: i64,
}

/// What a pending change asks of a platform. Never a product or order delete: the type has
/// no such variant, so no plan can contain one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PendingOp {
    /// Create the record on the platform (green in the console).
    Insert,
    /// Write exactly these fields (yellow).
    Update { fields: FieldSet },
    /// Remove one image from a product (red).
    ImageDelete {
        /// The image's id on the target platform, when bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_id: Option<ExternalId>,
        content_hash: ContentHash,
    },
}

impl PendingOp {
    pub fn name(&self) -> &'static str {
        match self {
            PendingOp::Insert => "insert",
            PendingOp::Update { .. } => "update",
            PendingOp::ImageDelete { .. } => "image_delete",
        }
    }
}

/// A stock write to one variant, as a move from what tidemark last knew of the platform (`from`,
/// the snapshot's quantity) to what it wants there (`to`).
///
/// Connectors apply the difference `to - from` to the platform's *current* quantity, atomically
/// where the platform allows it (Shopify `inventoryAdjustQuantities`, or `inventorySetQuantities`
/// with `compareQuantity`), else by reading the quantity just before writing. Writing `to` as an
/// absolute value would erase a sale made on the platform since its snapshot; applying the
/// difference keeps it, and the next fetch sees it as a difference against the snapshot (which
/// advances to `to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockChange {
    /// The variant's id on the target platform.
    pub variant: ExternalId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    pub from: i64,
    pub to: i64,
}

impl StockChange {
    /// The quantity to add on the platform (negative to remove), saturating.
    pub fn delta(&self) -> i64 {
        self.to.saturating_sub(self.from)
    }
}

/// Which canonical record a pending change or issue is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum RecordRef {
    Product(ProductId),
    Order(OrderId),
}

/// An outbox row: written in the same transaction as the canonical change that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    pub id: PendingChangeId,
    pub connection: ConnectionId,
    pub record: RecordRef,
    pub op: PendingOp,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Notice,
    Warning,
    Alert,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Alert => "alert",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Notice, Self::Warning, Self::Alert]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A problem on one record of one connection, with the platform's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub id: IssueId,
    pub connection: ConnectionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<ExternalId>,
    pub severity: Severity,
    /// The platform's error code (`product_invalid_sku`, `TAKEN`, `item.price.invalid`), or
    /// tidemark's own (`mass_delete_guard`).
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The platform's answer as received, for troubleshooting.
    #[serde(default)]
    pub payload: serde_json::Value,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
}

// ---------------------------------------------------------------------------------------------
// Connections and their settings
// ---------------------------------------------------------------------------------------------

/// What a connection does with one field (DESIGN §4).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FieldPolicy {
    /// Absorb changes from this platform and write changes to it.
    #[default]
    Both,
    /// Absorb changes from this platform; never write this field to it.
    AbsorbOnly,
    /// Write this field to the platform; ignore the platform's changes to it.
    SendOnly,
    /// Neither: never written to this platform, never absorbed from it.
    Readonly,
}

impl FieldPolicy {
    pub fn absorbs(self) -> bool {
        matches!(self, FieldPolicy::Both | FieldPolicy::AbsorbOnly)
    }

    pub fn sends(self) -> bool {
        matches!(self, FieldPolicy::Both | FieldPolicy::SendOnly)
    }
}

/// How a computed price is rounded after margin and conversion.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rounding {
    /// To the currency's minor unit, half away from zero.
    #[default]
    MinorUnit,
    /// To the nearest multiple of `step` (e.g. 0.05, 1, 10), half away from zero.
    Nearest { step: Decimal },
    /// Up to the next multiple of `step`.
    Up { step: Decimal },
    /// Down to the previous multiple of `step`.
    Down { step: Decimal },
    /// Up to the next whole unit, minus `ending` (0.01 gives 9.99, 19.99, …).
    Charm { ending: Decimal },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRule {
    /// Added as a percentage of the canonical price: 15 means ×1.15.
    #[serde(default)]
    pub margin_percent: Decimal,
    /// Added after the percentage, in the target currency.
    #[serde(default)]
    pub margin_fixed: Decimal,
    #[serde(default)]
    pub rounding: Rounding,
}

impl Default for PriceRule {
    fn default() -> Self {
        Self {
            margin_percent: Decimal::ZERO,
            margin_fixed: Decimal::ZERO,
            rounding: Rounding::MinorUnit,
        }
    }
}

/// Fields given to sales orders created on this connection.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OrderStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<PaymentStatus>,
    /// Prefixed to the origin's order number (`ML-` gives `ML-2000003508419013`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Common settings of every connection (DESIGN §4 "Field policy and transforms").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    /// Per field; absent fields are [`FieldPolicy::Both`].
    #[serde(default)]
    pub field_policies: BTreeMap<Field, FieldPolicy>,
    #[serde(default = "yes")]
    pub absorb_new_products: bool,
    #[serde(default = "yes")]
    pub absorb_new_orders: bool,
    #[serde(default)]
    pub clone_new_products: bool,
    #[serde(default)]
    pub clone_new_orders: bool,
    /// The master platform's deletions win over edits elsewhere.
    #[serde(default)]
    pub master: bool,
    #[serde(default)]
    pub price: PriceRule,
    /// The currency prices are written in on this platform; `None` keeps the canonical one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    /// Target units per canonical unit; required when `currency` differs from the canonical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_rate: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_category: Option<String>,
    /// Canonical category → this platform's category.
    #[serde(default)]
    pub category_map: BTreeMap<String, String>,
    /// This platform's option name that means colour (`Color`, `Colour`, `COLOR`, `pa_color`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_attribute: Option<String>,
    /// This platform's option name that means size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_attribute: Option<String>,
    #[serde(default)]
    pub order_defaults: OrderDefaults,
    #[serde(default = "default_low_stock")]
    pub low_stock_threshold: i64,
    /// Scheduled fetch interval; `None` for manual fetches only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_interval_secs: Option<u64>,
    /// Cron expression for a daily full scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_full_scan: Option<String>,
    /// A fetch elsewhere queues a send here.
    #[serde(default = "yes")]
    pub auto_send: bool,
    /// The mass-delete guard's share: a full scan that would drop more than this share of
    /// the bindings applies no deletions. 0.5 by default.
    #[serde(default = "default_mass_delete_share")]
    pub mass_delete_share: Decimal,
}

fn yes() -> bool {
    true
}

fn default_low_stock() -> i64 {
    5
}

fn default_mass_delete_share() -> Decimal {
    Decimal::new(5, 1)
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            field_policies: BTreeMap::new(),
            absorb_new_products: true,
            absorb_new_orders: true,
            clone_new_products: false,
            clone_new_orders: false,
            master: false,
            price: PriceRule::default(),
            currency: None,
            conversion_rate: None,
            default_category: None,
            category_map: BTreeMap::new(),
            color_attribute: None,
            size_attribute: None,
            order_defaults: OrderDefaults::default(),
            low_stock_threshold: default_low_stock(),
            fetch_interval_secs: None,
            daily_full_scan: None,
            auto_send: true,
            mass_delete_share: default_mass_delete_share(),
        }
    }
}

impl ConnectionSettings {
    pub fn policy(&self, field: Field) -> FieldPolicy {
        self.field_policies.get(&field).copied().unwrap_or_default()
    }
}

/// A connection as the store keeps it. Credentials are not here: they stay encrypted in the
/// store and are handed only to the connector that needs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub id: ConnectionId,
    pub account: AccountId,
    pub platform: PlatformKind,
    pub name: String,
    pub settings: ConnectionSettings,
    /// Platform-specific settings (shop domain, API version, site id…), validated by the connector.
    #[serde(default)]
    pub platform_settings: serde_json::Value,
    pub paused: bool,
    /// The high-water line per scan kind: the largest platform timestamp a completed scan saw.
    #[serde(default)]
    pub clocks: BTreeMap<ScanKind, Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetch_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_send_at: Option<Timestamp>,
    pub created_at: Timestamp,
}
