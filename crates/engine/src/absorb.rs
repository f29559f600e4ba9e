//! Absorbing one scanned record (DESIGN §4 steps 2–4) inside the page's transaction: compare
//! with the snapshot, bind or match or create the canonical record, merge by field policy and
//! later-wins, store the new snapshot, and propagate. Also the effect of a record deleted on
//! the platform.

use std::collections::{BTreeMap, BTreeSet};

use tidemark_core::hash::{order_hash, product_hash};
use tidemark_core::merge::{
    AbsorbWarning, DeletionEffect, absorb_order, absorb_product, archive_product, deletion_effect,
};
use tidemark_core::normalize::NormalizeWarning;
use tidemark_core::transform::inbound_product_lenient;
use tidemark_core::{
    Barcode, Binding, CanonicalOrder, CanonicalProduct, Connection, ConnectionId, ContentHash,
    Currency, ExternalId, Field, OrderId, Product, ProductId, RecordContent, RecordKind, RecordRef,
    SalesOrder, ScanKind, Severity, Sku, Snapshot, Timestamp,
};
use tidemark_store::{NewIssue, PlatformDeletion, StoreError, Tx, UnlinkedRecord};

use crate::EngineError;
use crate::propagate::{Targets, propagate_order, propagate_product};

/// What one procedure run knows while it absorbs records of one connection.
pub(crate) struct RunCtx<'a> {
    pub connection: &'a Connection,
    pub targets: &'a Targets,
    /// The full scan's generation, when this is one (mark and sweep).
    pub generation: Option<i64>,
    pub now: Timestamp,
    pub canonical_currency: Option<Currency>,
}

/// A scanned record, normalised and hashed (images resolved), ready to absorb.
#[derive(Debug, Clone)]
pub(crate) enum Prepared {
    Product {
        external_id: ExternalId,
        updated_at: Option<Timestamp>,
        product: Product,
        hash: ContentHash,
        warnings: Vec<NormalizeWarning>,
    },
    Order {
        external_id: ExternalId,
        updated_at: Option<Timestamp>,
        order: SalesOrder,
        hash: ContentHash,
    },
    /// The snapshot read before the page's transaction already holds this state (or a newer
    /// one a send wrote): nothing to absorb, and nothing to read again (a snapshot exists only
    /// with its binding).
    Settled { external_id: ExternalId },
    /// The platform sent something that cannot be a record (an issue, not a failure).
    Unreadable {
        external_id: ExternalId,
        message: String,
    },
}

impl Prepared {
    pub fn external_id(&self) -> &ExternalId {
        match self {
            Self::Product { external_id, .. }
            | Self::Order { external_id, .. }
            | Self::Settled { external_id }
            | Self::Unreadable { external_id, .. } => external_id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    New,
    Changed,
    Unchanged,
    Unlinked,
}

/// A problem with one record: it becomes an issue and the page goes on.
#[derive(Debug, Clone)]
pub(crate) struct RecordProblem {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug)]
pub(crate) enum ApplyError {
    Record(RecordProblem),
    Engine(EngineError),
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        Self::Engine(EngineError::Store(e))
    }
}

impl From<EngineError> for ApplyError {
    fn from(e: EngineError) -> Self {
        Self::Engine(e)
    }
}

fn problem(code: &'static str, message: impl std::fmt::Display) -> ApplyError {
    ApplyError::Record(RecordProblem {
        code,
        message: message.to_string(),
    })
}

/// Absorbs one prepared record; everything it writes is in `tx`.
pub(crate) async fn apply(
    tx: &mut Tx,
    ctx: &RunCtx<'_>,
    record: &Prepared,
    touched: &mut BTreeSet<ConnectionId>,
) -> Result<Outcome, ApplyError> {
    match record {
        Prepared::Product {
            external_id,
            updated_at,
            product,
            hash,
            warnings,
        } => {
            let outcome =
                apply_product(tx, ctx, external_id, *updated_at, product, *hash, touched).await?;
            if !warnings.is_empty() && matches!(outcome, Outcome::New | Outcome::Changed) {
                let id = tx
                    .binding_by_external(ctx.connection.id, RecordKind::Product, external_id)
                    .await?
                    .map(|b| RecordRef::Product(ProductId(b.internal_id)));
                for warning in warnings {
                    warn(tx, ctx, id, external_id, "normalized", warning.to_string()).await?;
                }
            }
            Ok(outcome)
        }
        Prepared::Order {
            external_id,
            updated_at,
            order,
            hash,
        } => apply_order(tx, ctx, external_id, *updated_at, order, *hash, touched).await,
        Prepared::Settled { .. } => Ok(Outcome::Unchanged),
        Prepared::Unreadable { message, .. } => Err(problem("unreadable_record", message)),
    }
}

async fn warn(
    tx: &mut Tx,
    ctx: &RunCtx<'_>,
    record: Option<RecordRef>,
    external_id: &ExternalId,
    code: &str,
    message: String,
) -> Result<(), StoreError> {
    tx.raise_issue(
        &NewIssue {
            connection: ctx.connection.id,
            record,
            external_id: Some(external_id.clone()),
            severity: Severity::Warning,
            code: code.into(),
            message,
            field: None,
            payload: serde_json::Value::Null,
        },
        ctx.now,
    )
    .await
    .map(drop)
}

fn snapshot_of(
    ctx: &RunCtx<'_>,
    external_id: &ExternalId,
    internal_id: i64,
    content: RecordContent,
    hash: ContentHash,
    updated_at: Option<Timestamp>,
    previous: Option<&Snapshot>,
) -> Snapshot {
    let seen = previous.map_or(0, |s| s.seen_generation);
    Snapshot {
        connection: ctx.connection.id,
        external_id: external_id.clone(),
        internal_id,
        schema_version: tidemark_core::normalize::SCHEMA_VERSION,
        content,
        content_hash: hash,
        // Never moves back: a send may have stored a newer platform time than this scan's.
        platform_updated_at: match (updated_at, previous.and_then(|s| s.platform_updated_at)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
        seen_generation: ctx.generation.unwrap_or(0).max(seen),
    }
}

/// The scan read the record before a send wrote it: the snapshot already holds a newer
/// state, and absorbing the older one would undo what was just sent.
fn older_than_snapshot(snapshot: &Snapshot, updated_at: Option<Timestamp>) -> bool {
    matches!((snapshot.platform_updated_at, updated_at), (Some(known), Some(read)) if read < known)
}

/// Whether a scanned state needs no absorbing: the snapshot holds it, or a newer one.
pub(crate) fn settled(
    snapshot: &Snapshot,
    hash: ContentHash,
    updated_at: Option<Timestamp>,
) -> bool {
    snapshot.content_hash == hash || older_than_snapshot(snapshot, updated_at)
}

async fn apply_product(
    tx: &mut Tx,
    ctx: &RunCtx<'_>,
    external_id: &ExternalId,
    updated_at: Option<Timestamp>,
    scanned: &Product,
    hash: ContentHash,
    touched: &mut BTreeSet<ConnectionId>,
) -> Result<Outcome, ApplyError> {
    let connection = ctx.connection;
    let binding = tx
        .binding_by_external(connection.id, RecordKind::Product, external_id)
        .await?;
    let snapshot = tx
        .get_snapshot(connection.id, RecordKind::Product, external_id)
        .await?;
    let Some(binding) = binding else {
        return apply_new_product(tx, ctx, external_id, updated_at, scanned, hash, touched).await;
    };
    if let Some(s) = &snapshot
        && settled(s, hash, updated_at)
    {
        return Ok(Outcome::Unchanged);
    }
    let id = ProductId(binding.internal_id);
    let Some(canonical) = tx.get_product(connection.account, id).await? else {
        // A binding to a record that is gone (an orphan): drop it, then this is a new record.
        tx.unbind(connection.id, RecordKind::Product, external_id)
            .await?;
        return apply_new_product(tx, ctx, external_id, updated_at, scanned, hash, touched).await;
    };
    let base = snapshot.as_ref().and_then(|s| match &s.content {
        RecordContent::Product(p) => Some(p),
        RecordContent::Order(_) => None,
    });
    if tracing::enabled!(tracing::Level::DEBUG)
        && let Some(base) = base
    {
        let diff = tidemark_core::diff::diff_products(base, scanned);
        tracing::debug!(connection = %connection.id, record = %external_id, fields = ?diff.changed_fields(), "changed on the platform");
    }
    let current = absorb_into(tx, ctx, canonical, base, scanned, updated_at, external_id).await?;
    tx.put_snapshot(
        &snapshot_of(
            ctx,
            external_id,
            id.0,
            RecordContent::Product(scanned.clone()),
            hash,
            updated_at,
            snapshot.as_ref(),
        ),
        ctx.now,
    )
    .await?;
    let only = (!current.1).then_some(connection.id);
    propagate_product(tx, ctx.targets, &current.0, only, ctx.now, touched).await?;
    Ok(Outcome::Changed)
}

/// Merges `scanned` into `canonical` and stores it when it changed. Returns the canonical
/// record as it now is and whether anything canonical changed.
async fn absorb_into(
    tx: &mut Tx,
    ctx: &RunCtx<'_>,
    canonical: tidemark_store::Versioned<CanonicalProduct>,
    base: Option<&Product>,
    scanned: &Product,
    updated_at: Option<Timestamp>,
    external_id: &ExternalId,
) -> Result<(CanonicalProduct, bool), ApplyError> {
    let changed_at = updated_at.unwrap_or(ctx.now);
    let absorbed = absorb_product(
        &canonical,
        base,
        scanned,
        changed_at,
        &ctx.connection.settings,
    )
    .map_err(|e| problem("cannot_absorb", e))?;
    let record = Some(RecordRef::Product(canonical.id));
    for warning in &absorbed.warnings {
        let (code, message) = match warning {
            AbsorbWarning::UnreadablePrice {
                sku,
                field,
                price,
                reason,
            } => (
                "unreadable_price",
                format!(
                    "{} {price} of variant {} cannot be read back as a canonical price ({reason}); kept unchanged",
                    field.as_str(),
                    sku.as_ref().map_or("without SKU", |s| s.as_str())
                ),
            ),
            AbsorbWarning::Normalize(w) => ("normalized", w.to_string()),
        };
        warn(tx, ctx, record, external_id, code, message).await?;
    }
    let changed = !absorbed.changed.is_empty();
    let revision = canonical.revision;
    let mut current = canonical.into_inner();
    if changed || absorbed.field_times != current.field_times {
        current.content = without_locators(absorbed.content);
        current.field_times = absorbed.field_times;
        current.updated_at = ctx.now;
        let hash = product_hash(&current.content);
        tx.update_product(&current, hash, revision).await?;
    }
    Ok((current, changed))
}

/// A canonical record carries no platform's ids: each connection's ids live in its snapshot
/// (a create elsewhere must not mistake them for its own).
fn without_locators(mut product: Product) -> Product {
    for variant in &mut product.variants {
        variant.external_id = None;
    }
    for image in &mut product.images {
        image.external_id = None;
    }
    product
}

/// Every SKU and barcode a product carries, for coincidence detection.
fn match_keys(product: &Product) -> (Vec<Sku>, Vec<Barcode>) {
    let skus = product
        .sku
        .iter()
        .chain(product.variants.iter().filter_map(|v| v.sku.as_ref()))
        .cloned()
        .collect();
    let barcodes = product
        .barcode
        .iter()
        .chain(product.variants.iter().filter_map(|v| v.barcode.as_ref()))
        .cloned()
        .collect();
    (skus, barcodes)
}

async fn apply_new_product(
    tx: &mut Tx,
    ctx: &RunCtx<'_>,
    external_id: &ExternalId,
    updated_at: Option<Timestamp>,
    scanned: &Product,
    hash: ContentHash,
    touched: &mut BTreeSet<ConnectionId>,
) -> Result<Outcome, ApplyError> {
    let connection = ctx.connection;
    let account = connection.account;
    let (skus, barcodes) = match_keys(scanned);
    let candidates = if skus.is_empty() && barcodes.is_empty() {
        Vec::new()
    } else {
        tx.match_candidates(account, &skus, &barcodes).await?
    };
    let mut matched = None;
    for candidate in candidates {
        let bound = tx
            .binding_by_internal(connection.id, RecordKind::Product, candidate.0, "")
            .await?;
        if bound.is_none() {
            matched = Some(candidate);
            break;
        }
    }
    let id = match matched {
        Some(id) => id,
        None if !connection.settings.absorb_new_products => {
            tx.put_unlinked(&UnlinkedRecord {
                connection: connection.id,
                kind: ScanKind::Products,
                external_id: external_id.clone(),
                sku: scanned
                    .sku
                    .as_ref()
                    .or_else(|| scanned.variants.iter().find_map(|v| v.sku.as_ref()))
                    .map(|s| s.as_str().to_owned()),
                title: scanned.title.clone(),
                platform_updated_at: updated_at,
                first_seen: ctx.now,
                last_seen: ctx.now,
            })
            .await?;
            return Ok(Outcome::Unlinked);
        }
        None => {
            let currency = canonical_currency(ctx, scanned.currency)?;
            let (content, _) = inbound_product_lenient(scanned, &connection.settings, currency)
                .map_err(|e| problem("cannot_absorb", e))?;
            let content = without_locators(content);
            // Every field carries the platform's time of this version, so a later edit
            // elsewhere wins over it and an older one does not.
            let changed_at = updated_at.unwrap_or(ctx.now);
            let times: BTreeMap<Field, Timestamp> = Field::PRODUCT_FIELDS
                .into_iter()
                .map(|f| (f, changed_at))
                .collect();
            let created = tx
                .create_product(account, &content, product_hash(&content), &times, ctx.now)
                .await?;
            created.id
        }
    };
    tx.bind(
        &Binding {
            connection: connection.id,
            kind: RecordKind::Product,
            external_id: external_id.clone(),
            internal_id: id.0,
            internal_key: String::new(),
        },
        ctx.now,
    )
    .await?;
    tx.clear_platform_deletion(connection.id, RecordKind::Product, id.0)
        .await?;
    tx.remove_unlinked(connection.id, ScanKind::Products, external_id)
        .await?;
    let canonical = tx
        .get_product(account, id)
        .await?
        .ok_or_else(|| EngineError::Internal(format!("product {id} vanished while bound")))?;
    let (current, _) =
        absorb_into(tx, ctx, canonical, None, scanned, updated_at, external_id).await?;
    tx.put_snapshot(
        &snapshot_of(
            ctx,
            external_id,
            id.0,
            RecordContent::Product(scanned.clone()),
            hash,
            updated_at,
            None,
        ),
        ctx.now,
    )
    .await?;
    propagate_product(tx, ctx.targets, &current, None, ctx.now, touched).await?;
    Ok(Outcome::New)
}

fn canonical_currency(ctx: &RunCtx<'_>, platform: Currency) -> Result<Currency, ApplyError> {
    let settings = &ctx.connection.settings;
    if settings.currency.is_none() || settings.conversion_rate.is_none() {
        // No conversion: canonical prices are in the platform's currency.
        return Ok(platform);
    }
    ctx.canonical_currency.ok_or_else(|| {
        problem(
            "no_canonical_currency",
            "this connection converts prices, but no canonical currency is configured \
             (engine setting canonical_currency)",
        )
    })
}

async fn apply_order(
    tx: &mut Tx,
    ctx: &RunCtx<'_>,
    external_id: &ExternalId,
    updated_at: Option<Timestamp>,
    scanned: &SalesOrder,
    hash: ContentHash,
    touched: &mut BTreeSet<ConnectionId>,
) -> Result<Outcome, ApplyError> {
    let connection = ctx.connection;
    let account = connection.account;
    let changed_at = updated_at.unwrap_or(ctx.now);
    let binding = tx
        .binding_by_external(connection.id, RecordKind::Order, external_id)
        .await?;
    let snapshot = tx
        .get_snapshot(connection.id, RecordKind::Order, external_id)
        .await?;
    if let Some(binding) = binding {
        if let Some(s) = &snapshot
            && settled(s, hash, updated_at)
        {
            return Ok(Outcome::Unchanged);
        }
        let id = OrderId(binding.internal_id);
        if let Some(canonical) = tx.get_order(account, id).await? {
            let base = snapshot.as_ref().and_then(|s| match &s.content {
                RecordContent::Order(o) => Some(o),
                RecordContent::Product(_) => None,
            });
            let absorbed =
                absorb_order(&canonical, base, scanned, changed_at, &connection.settings);
            let changed = !absorbed.changed.is_empty();
            let revision = canonical.revision;
            let mut current = canonical.into_inner();
            if changed {
                current.content = absorbed.content;
                current.field_times = absorbed.field_times;
                current.updated_at = ctx.now;
                tx.update_order(&current, order_hash(&current.content), revision)
                    .await?;
            }
            tx.put_snapshot(
                &snapshot_of(
                    ctx,
                    external_id,
                    id.0,
                    RecordContent::Order(scanned.clone()),
                    hash,
                    updated_at,
                    snapshot.as_ref(),
                ),
                ctx.now,
            )
            .await?;
            let only = (!changed).then_some(connection.id);
            propagate_order(tx, ctx.targets, &current, only, ctx.now, touched).await?;
            return Ok(Outcome::Changed);
        }
        tx.unbind(connection.id, RecordKind::Order, external_id)
            .await?;
    }
    // An order placed here that tidemark knows by number (its binding was lost) is bound
    // again rather than absorbed twice.
    let known = tx
        .find_order_by_number(account, connection.id, &scanned.number)
        .await?;
    let canonical: CanonicalOrder = match known {
        Some(order) => order.into_inner(),
        None if !connection.settings.absorb_new_orders => {
            tx.put_unlinked(&UnlinkedRecord {
                connection: connection.id,
                kind: ScanKind::Orders,
                external_id: external_id.clone(),
                sku: None,
                title: format!("order {}", scanned.number),
                platform_updated_at: updated_at,
                first_seen: ctx.now,
                last_seen: ctx.now,
            })
            .await?;
            return Ok(Outcome::Unlinked);
        }
        None => {
            let times: BTreeMap<Field, Timestamp> = Field::ORDER_FIELDS
                .into_iter()
                .map(|f| (f, changed_at))
                .collect();
            tx.create_order(account, connection.id, scanned, hash, &times, ctx.now)
                .await?
                .into_inner()
        }
    };
    tx.bind(
        &Binding {
            connection: connection.id,
            kind: RecordKind::Order,
            external_id: external_id.clone(),
            internal_id: canonical.id.0,
            internal_key: String::new(),
        },
        ctx.now,
    )
    .await?;
    tx.remove_unlinked(connection.id, ScanKind::Orders, external_id)
        .await?;
    tx.put_snapshot(
        &snapshot_of(
            ctx,
            external_id,
            canonical.id.0,
            RecordContent::Order(scanned.clone()),
            hash,
            updated_at,
            None,
        ),
        ctx.now,
    )
    .await?;
    propagate_order(tx, ctx.targets, &canonical, None, ctx.now, touched).await?;
    Ok(Outcome::New)
}

/// The merchant deleted a bound record on this connection's platform (a full scan no longer
/// saw it, a delete webhook, or a single fetch answered not found). The binding goes and the
/// deletion is remembered; a product deleted on the master connection is archived canonically
/// and that propagates as a status update. Nothing is ever deleted on another platform.
pub(crate) async fn apply_deletion(
    tx: &mut Tx,
    ctx: &RunCtx<'_>,
    binding: &Binding,
    touched: &mut BTreeSet<ConnectionId>,
) -> Result<(), EngineError> {
    let connection = ctx.connection;
    if binding.kind == RecordKind::Product
        && deletion_effect(binding.kind, &connection.settings) == DeletionEffect::ArchiveAndUnbind
        && let Some(canonical) = tx
            .get_product(connection.account, ProductId(binding.internal_id))
            .await?
    {
        let archived = archive_product(&canonical, ctx.now);
        if !archived.changed.is_empty() {
            let revision = canonical.revision;
            let mut current = canonical.into_inner();
            current.content = archived.content;
            current.field_times = archived.field_times;
            current.updated_at = ctx.now;
            tx.update_product(&current, product_hash(&current.content), revision)
                .await?;
            tx.unbind(connection.id, binding.kind, &binding.external_id)
                .await?;
            propagate_product(tx, ctx.targets, &current, None, ctx.now, touched).await?;
        }
    }
    tx.unbind(connection.id, binding.kind, &binding.external_id)
        .await?;
    tx.record_platform_deletion(&PlatformDeletion {
        connection: connection.id,
        kind: binding.kind,
        internal_id: binding.internal_id,
        external_id: binding.external_id.clone(),
        deleted_at: ctx.now,
    })
    .await?;
    Ok(())
}
