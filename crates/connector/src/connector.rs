//! The `Connector` trait and the types that cross it (DESIGN §5).
//!
//! A connector translates between one platform's API and tidemark's records. It never touches
//! the store: bindings, snapshots and clocks are the engine's. It is shared as
//! `Arc<dyn Connector>` by every job of its connection, so it is `Send + Sync` and keeps its
//! mutable state (tokens, pacing) behind its own locks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderMap;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tidemark_core::{
    ContentHash, ExternalId, ExternalRecord, Field, FieldSet, PendingChangeId, PlatformKind,
    Product, SalesOrder, ScanKind, Sku, StockChange, Timestamp,
};

use crate::error::ConnectorError;
use crate::settings::SettingsSchema;

/// One connection's view of one platform.
///
/// `Debug` is required for logs and test failures; implementations must leave credentials
/// out of it (hold them as [`crate::Secret`]).
#[async_trait]
pub trait Connector: Send + Sync + fmt::Debug {
    fn platform(&self) -> PlatformKind;

    fn capabilities(&self) -> Capabilities;

    /// The platform settings and credentials fields the console renders for this kind.
    fn settings_schema(&self) -> SettingsSchema;

    /// The record fields this platform stores. A field it does not carry (WooCommerce has no
    /// vendor) is treated as readonly on this connection: never written there (every send
    /// would write it again, since the platform never shows it back) and never absorbed
    /// from there (its absence is not a deletion). All fields by default.
    fn carries(&self) -> FieldSet {
        Field::PRODUCT_FIELDS
            .into_iter()
            .chain(Field::ORDER_FIELDS)
            .collect()
    }

    /// `product` as this platform would read it back after storing it, where it cannot hold
    /// a value as given (WooCommerce has no archived status: it stores an archived product as
    /// private, which reads back as paused). The engine plans against this, so a value the
    /// platform cannot hold is not written again on every send, nor read back as a change.
    /// Unchanged by default.
    fn as_stored(&self, product: Product) -> Product {
        product
    }

    /// The one currency every price on this platform is in, when the platform has one
    /// (a WooCommerce or Shopify shop); `None` where each record names its own (MercadoLibre).
    /// A connection whose settings name no currency writes in this one, so a product priced
    /// in another currency needs a conversion rate instead of being written with the wrong
    /// unit.
    fn currency(&self) -> Option<tidemark_core::Currency> {
        None
    }

    /// Whether creating `order` here makes the platform take its lines out of stock itself
    /// (WooCommerce does for a paid or processing order). The engine then gives that stock
    /// back: the sale happened elsewhere and was already counted there. False by default.
    fn order_create_moves_stock(&self, order: &SalesOrder) -> bool {
        let _ = order;
        false
    }

    /// One page of records of `kind`. `cursor` is `None` for the first page and the previous
    /// page's `next` afterwards (possibly from a checkpoint stored before a crash). Pages are
    /// ordered by a unique, stable key, so resuming neither skips nor repeats a record the
    /// platform did not change in between. A cursor the platform no longer accepts yields
    /// [`ConnectorError::CursorExpired`].
    async fn scan_page(
        &self,
        kind: ScanKind,
        scope: &ScanScope,
        cursor: Option<&Cursor>,
    ) -> Result<ScanPage, ConnectorError>;

    /// One record by its id on the platform; `Ok(None)` when the platform says it does not exist.
    async fn fetch_one(
        &self,
        kind: ScanKind,
        id: &ExternalId,
    ) -> Result<Option<ExternalRecord>, ConnectorError>;

    /// The product whose own or one of whose variants' SKU is `sku`, if any. Used before a
    /// create that might already have happened. Platforms' SKU search may lag writes by
    /// seconds, so `None` is a hint, not proof.
    async fn find_by_sku(&self, sku: &Sku) -> Result<Option<ExternalRecord>, ConnectorError>;

    /// The order whose number (as the buyer sees it on this platform, `number_prefix`
    /// included) is `number`, if any. Used before an order create that might already have
    /// happened. The default refuses: a connector that cannot look orders up must not claim
    /// "not found", or a repeated create would duplicate the order.
    async fn find_order_by_number(
        &self,
        number: &str,
    ) -> Result<Option<ExternalRecord>, ConnectorError> {
        Err(ConnectorError::fatal(format!(
            "{} cannot look orders up by number (wanted {number:?})",
            self.platform()
        )))
    }

    /// Applies a batch of at most `capabilities().max_batch_size` writes.
    ///
    /// `Ok` holds exactly one [`WriteResult`] per write, correlated by [`WriteKey`] (order is
    /// not significant); an item the platform refused carries its own error. `Err` means the
    /// batch as a whole failed and no item's outcome is known: if it is a
    /// [`ConnectorError::Transient`] with `maybe_applied`, creates must be looked up by SKU
    /// before they are repeated.
    ///
    /// Stock is written as moves, never as absolute quantities of existing variants (see
    /// [`WriteOp::UpdateProduct`]). A move is not idempotent: requests carrying one are sent as
    /// [`crate::http::Idempotency::NonIdempotent`], so a failure after sending surfaces as
    /// `maybe_applied` rather than being repeated by the client.
    async fn apply_writes(&self, writes: &[Write]) -> Result<Vec<WriteResult>, ConnectorError>;

    /// Verifies a webhook delivery (signature over the raw body, before any parsing) and names
    /// the record it is about. Platforms without signatures (MercadoLibre) check what they can
    /// and return an event with [`Authenticity::HintOnly`]: the caller only fetches the record.
    /// A bad signature is [`ConnectorError::Unauthorized`].
    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, ConnectorError>;
}

// ---------------------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------------------

/// What a platform can do; the engine plans around it rather than discovering it by failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// The most writes one [`Connector::apply_writes`] call accepts (WooCommerce 100, Shopify
    /// input arrays 250, one for platforms without batch endpoints).
    pub max_batch_size: usize,
    /// Scannable kinds and how each can be filtered. A kind absent here is not scanned (CSV
    /// has no orders).
    pub kinds: BTreeMap<ScanKind, KindCapabilities>,
    pub webhooks: WebhookSupport,
    /// A full scan runs as a bulk export (Shopify bulk operations) rather than paging.
    pub bulk_full_scan: bool,
    /// Creating a product whose SKU exists updates (or adopts) the existing one, so a repeated
    /// create cannot duplicate (Shopify `productSet` with an identifier).
    pub upsert_by_sku: bool,
    /// How far before the clock an incremental scan should start, to cover search-index lag
    /// and same-second edits (60 s for Shopify, 2 min for WooCommerce and MercadoLibre).
    #[serde(with = "duration_secs")]
    pub recommended_overlap: Duration,
}

impl Capabilities {
    pub fn scans(&self, kind: ScanKind) -> bool {
        self.kinds.contains_key(&kind)
    }

    pub fn writes(&self, kind: ScanKind) -> bool {
        self.kinds.get(&kind).is_some_and(|k| k.writable)
    }

    /// The incremental filter for `kind`, if the platform has one.
    pub fn incremental(&self, kind: ScanKind) -> Option<IncrementalFilter> {
        self.kinds.get(&kind).and_then(|k| k.incremental)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCapabilities {
    /// `None` when the platform cannot filter by modification time for this kind
    /// (MercadoLibre items): the engine then asks for a full or window scan.
    pub incremental: Option<IncrementalFilter>,
    /// Records of this kind can be created and updated here.
    pub writable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalFilter {
    /// The resolution of the platform's modification times (one second for all three).
    #[serde(with = "duration_millis")]
    pub granularity: Duration,
    /// `>=` (Shopify) rather than a strict `>` (WooCommerce `modified_after`): with a strict
    /// filter, records stamped in the boundary unit are only caught by the overlap.
    pub inclusive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookSupport {
    None,
    /// Deliveries carry an HMAC signature that is verified before any work.
    Signed,
    /// Deliveries are unsigned pointers (MercadoLibre): only hints to fetch a record.
    HintOnly,
}

mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

mod duration_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

// ---------------------------------------------------------------------------------------------
// Scans
// ---------------------------------------------------------------------------------------------

/// Which records a scan covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum ScanScope {
    /// Records modified at or after `since`. The caller already subtracted the overlap from
    /// the clock; the connector applies `since` as the platform allows (see
    /// [`IncrementalFilter`]) and never moves it.
    Incremental { since: Timestamp },
    /// Every record: the basis of mark-and-sweep deletion detection.
    Full,
    /// A manual resync of records modified since `since` (today, 1, 7, 30, 60 days). Unlike
    /// `Incremental` it is also served where the platform has no modification filter, by
    /// walking newest-first until older records appear.
    Window { since: Timestamp },
}

impl ScanScope {
    pub fn since(&self) -> Option<Timestamp> {
        match self {
            Self::Incremental { since } | Self::Window { since } => Some(*since),
            Self::Full => None,
        }
    }
}

/// Where a scan stopped: opaque to everyone but the connector that made it. It is plain text
/// so a checkpoint can store it and a later process resume from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

impl Cursor {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Encodes a connector's own paging state as a cursor (JSON text).
    pub fn encode<T: Serialize>(state: &T) -> Result<Self, ConnectorError> {
        serde_json::to_string(state)
            .map(Self)
            .map_err(|e| ConnectorError::fatal(format!("cannot encode a scan cursor: {e}")))
    }

    /// Decodes what [`Cursor::encode`] made. A cursor that does not decode (a checkpoint
    /// written by an older version) is expired: the scan restarts.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_str(&self.0).map_err(|e| ConnectorError::CursorExpired {
            message: format!("stored cursor is not one this connector understands: {e}"),
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanPage {
    pub records: Vec<ExternalRecord>,
    /// The cursor of the next page; `None` when this was the last.
    pub next: Option<Cursor>,
    /// How many records the whole scan will return, when the platform says (X-WP-Total,
    /// `paging.total`); for progress only.
    pub total: Option<u64>,
    /// The largest platform `updated_at` among `records`: the clock moves to the maximum of
    /// these over a completed scan, never to wall-clock now.
    pub max_updated_at: Option<Timestamp>,
}

impl ScanPage {
    /// A page whose `max_updated_at` is computed from its records.
    pub fn new(records: Vec<ExternalRecord>, next: Option<Cursor>, total: Option<u64>) -> Self {
        let max_updated_at = records.iter().filter_map(|r| r.updated_at).max();
        Self {
            records,
            next,
            total,
            max_updated_at,
        }
    }

    pub fn is_last(&self) -> bool {
        self.next.is_none()
    }
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

/// The caller's name for one write, echoed in its result.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WriteKey(pub String);

impl From<PendingChangeId> for WriteKey {
    fn from(id: PendingChangeId) -> Self {
        Self(id.to_string())
    }
}

impl From<&str> for WriteKey {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl fmt::Display for WriteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    pub key: WriteKey,
    pub op: WriteOp,
}

/// What one write asks of the platform. There is deliberately no product or order delete:
/// tidemark never deletes them anywhere, and the type makes that impossible to ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WriteOp {
    /// Create a product. Connectors without upsert handle a duplicate-SKU answer by adopting
    /// the existing record ([`Confirmed::adopted`]).
    ///
    /// Stock: a create sets each variant's `stock` as an absolute quantity; there is no earlier
    /// platform quantity tidemark knew of to move from. That holds for an adopted record too.
    CreateProduct {
        product: Product,
    },
    /// Write exactly `fields` of `product` to the existing record. Variants and images carry
    /// their external ids where bound, so list-replace APIs can keep them.
    ///
    /// Stock is the exception to "write what `product` says". [`Field::Stock`] in `fields` means
    /// "apply the moves in `stock`", and nothing else: the connector never writes a variant's
    /// `stock` (nor a [`StockChange::to`]) as an absolute quantity on a variant that already
    /// exists, because a sale made on the platform since the snapshot would be erased. For each
    /// [`StockChange`] it adds [`StockChange::delta`] to the platform's *current* quantity of
    /// [`StockChange::variant`]:
    /// - atomically where the platform allows it (Shopify `inventoryAdjustQuantities` with the
    ///   delta, or `inventorySetQuantities` to `current + delta` with `compareQuantity: current`,
    ///   re-reading and repeating on a compare mismatch);
    /// - otherwise by reading the variant's current quantity immediately before writing
    ///   `current + delta` (WooCommerce, MercadoLibre), keeping the race window to one round trip.
    ///
    /// A change whose delta is zero needs no request. A variant *created* by this update (one
    /// without an external id, under [`Field::Variants`]) has no platform quantity yet: its
    /// `stock` in `product` is its initial, absolute quantity, and it has no entry in `stock`.
    /// `stock` is empty unless `fields` holds [`Field::Stock`] ([`WriteOp::check`]).
    UpdateProduct {
        external_id: ExternalId,
        product: Product,
        fields: FieldSet,
        /// One move per existing variant whose quantity this write changes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        stock: Vec<StockChange>,
    },
    /// Detach one image from a product.
    DeleteProductImage {
        product_id: ExternalId,
        /// The image's id on this platform, when bound.
        image_id: Option<ExternalId>,
        content_hash: ContentHash,
    },
    CreateOrder {
        order: SalesOrder,
    },
    UpdateOrder {
        external_id: ExternalId,
        order: SalesOrder,
        fields: FieldSet,
    },
}

impl WriteOp {
    pub fn name(&self) -> &'static str {
        match self {
            Self::CreateProduct { .. } => "create_product",
            Self::UpdateProduct { .. } => "update_product",
            Self::DeleteProductImage { .. } => "delete_product_image",
            Self::CreateOrder { .. } => "create_order",
            Self::UpdateOrder { .. } => "update_order",
        }
    }

    pub fn kind(&self) -> ScanKind {
        match self {
            Self::CreateProduct { .. }
            | Self::UpdateProduct { .. }
            | Self::DeleteProductImage { .. } => ScanKind::Products,
            Self::CreateOrder { .. } | Self::UpdateOrder { .. } => ScanKind::Orders,
        }
    }

    pub fn is_create(&self) -> bool {
        matches!(self, Self::CreateProduct { .. } | Self::CreateOrder { .. })
    }

    /// The stock moves to apply: those of an `UpdateProduct` whose `fields` hold
    /// [`Field::Stock`], empty for every other write.
    pub fn stock_changes(&self) -> &[StockChange] {
        match self {
            Self::UpdateProduct { fields, stock, .. } if fields.contains(&Field::Stock) => stock,
            _ => &[],
        }
    }

    /// Checks the stock part of the contract, so a connector can refuse a malformed write
    /// before sending anything: stock moves only with [`Field::Stock`], at most one per
    /// variant. A violation is a bug in the caller, hence `Fatal`.
    pub fn check(&self) -> Result<(), ConnectorError> {
        let Self::UpdateProduct {
            external_id,
            fields,
            stock,
            ..
        } = self
        else {
            return Ok(());
        };
        if !stock.is_empty() && !fields.contains(&Field::Stock) {
            return Err(ConnectorError::fatal(format!(
                "update of product {external_id} carries {} stock change(s) but its fields do \
                 not include stock",
                stock.len()
            )));
        }
        let mut seen = BTreeSet::new();
        if let Some(twice) = stock.iter().find(|c| !seen.insert(&c.variant)) {
            return Err(ConnectorError::fatal(format!(
                "update of product {external_id} carries two stock changes for variant {}",
                twice.variant
            )));
        }
        Ok(())
    }
}

/// The outcome of one write of a batch.
///
/// The engine acts on `outcome`: on `Ok` it advances the snapshot for the fields it *sent*
/// (core's `advance_snapshot`; stock to each [`StockChange::to`]), not to the confirmed record,
/// so a change made on the platform meanwhile is still seen as a difference by the next fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteResult {
    pub key: WriteKey,
    pub outcome: Result<Confirmed, ConnectorError>,
}

/// A write the platform accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// The record as the platform answered after the write. The engine reads from it what the
    /// write created (the external id of a new product or order, ids of new variants and
    /// images, to bind them) and otherwise keeps it for information and troubleshooting: it
    /// does *not* become the snapshot. The snapshot advances only for the fields that were
    /// sent, to the values that were sent.
    ///
    /// For stock it holds the platform's quantity after the move, which differs from
    /// [`StockChange::to`] when the platform sold (or was restocked) since the snapshot. The
    /// snapshot still advances to `to`: the difference is a change made on the platform, and
    /// the next fetch picks it up as one.
    pub record: ExternalRecord,
    /// For creates: the platform answered "duplicate SKU" and the existing record was adopted
    /// (and updated) instead of a new one being made.
    pub adopted: bool,
}

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

/// A verified webhook delivery, reduced to what the engine acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The platform's delivery id (`X-Shopify-Webhook-Id`, `X-WC-Webhook-Delivery-ID`,
    /// MercadoLibre `_id`): duplicates carry the same one.
    pub delivery_id: String,
    /// The platform's topic as sent (`products/update`, `product.updated`, `orders_v2`).
    pub topic: String,
    /// The record the delivery is about; `None` for pings and topics tidemark ignores.
    pub resource: Option<WebhookResource>,
    pub authenticity: Authenticity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookResource {
    pub kind: ScanKind,
    pub external_id: ExternalId,
    /// The topic says the record was deleted on the platform.
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Authenticity {
    /// The signature verified.
    Signed,
    /// Unsigned: only a reason to fetch the named record, never trusted content.
    HintOnly,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_core::RecordContent;

    #[test]
    fn cursor_round_trips_and_rejects_garbage_as_expired() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct State {
            page: u32,
        }
        let c = Cursor::encode(&State { page: 3 }).unwrap();
        assert_eq!(c.decode::<State>().unwrap(), State { page: 3 });
        let err = Cursor::new("not json").decode::<State>().unwrap_err();
        assert!(matches!(err, ConnectorError::CursorExpired { .. }));
    }

    #[test]
    fn page_max_updated_at_is_the_largest_seen() {
        let order = |id: &str, at: Option<i64>| ExternalRecord {
            external_id: ExternalId::new(id),
            updated_at: at.map(Timestamp::from_millis),
            content: RecordContent::Order(SalesOrder {
                number: id.into(),
                buyer: Default::default(),
                lines: vec![],
                currency: Default::default(),
                subtotal: Default::default(),
                shipping_total: Default::default(),
                tax_total: Default::default(),
                total: Default::default(),
                status: Default::default(),
                payment_status: Default::default(),
                shipments: vec![],
                note: None,
                placed_at: Timestamp::from_millis(0),
            }),
        };
        let page = ScanPage::new(
            vec![order("1", Some(5)), order("2", None), order("3", Some(9))],
            None,
            None,
        );
        assert_eq!(page.max_updated_at, Some(Timestamp::from_millis(9)));
        assert!(page.is_last());
    }

    fn mug() -> Product {
        serde_json::from_value(serde_json::json!({"title": "Mug"})).unwrap()
    }

    fn change(variant: &str, from: i64, to: i64) -> StockChange {
        StockChange {
            variant: ExternalId::new(variant),
            sku: None,
            from,
            to,
        }
    }

    fn update(fields: &[Field], stock: Vec<StockChange>) -> WriteOp {
        WriteOp::UpdateProduct {
            external_id: ExternalId::new("p1"),
            product: mug(),
            fields: fields.iter().copied().collect(),
            stock,
        }
    }

    #[test]
    fn stock_moves_travel_with_the_stock_field_only() {
        let op = update(&[Field::Stock], vec![change("v1", 10, 7)]);
        op.check().unwrap();
        assert_eq!(op.stock_changes(), [change("v1", 10, 7)]);
        assert_eq!(op.stock_changes()[0].delta(), -3);

        let op = update(&[Field::Title], vec![change("v1", 10, 7)]);
        let err = op.check().unwrap_err();
        assert!(matches!(err, ConnectorError::Fatal { .. }), "{err}");
        assert!(op.stock_changes().is_empty());

        let op = update(
            &[Field::Stock],
            vec![change("v1", 10, 7), change("v1", 7, 5)],
        );
        assert!(
            op.check()
                .unwrap_err()
                .to_string()
                .contains("two stock changes")
        );

        update(&[Field::Title], vec![]).check().unwrap();
        let create = WriteOp::CreateProduct { product: mug() };
        create.check().unwrap();
        assert!(create.stock_changes().is_empty());
    }

    #[test]
    fn update_serialises_its_stock_moves_and_reads_old_rows_without_them() {
        let op = update(&[Field::Stock], vec![change("v1", 10, 7)]);
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(json["op"], "update_product");
        assert_eq!(json["stock"][0]["variant"], "v1");
        assert_eq!(json["stock"][0]["from"], 10);
        assert_eq!(json["stock"][0]["to"], 7);
        assert_eq!(serde_json::from_value::<WriteOp>(json).unwrap(), op);

        let without = update(&[Field::Title], vec![]);
        let json = serde_json::to_value(&without).unwrap();
        assert!(json.get("stock").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<WriteOp>(json).unwrap(), without);
    }

    #[test]
    fn connector_is_object_safe() {
        fn takes(_: Option<std::sync::Arc<dyn Connector>>) {}
        takes(None);
    }
}
