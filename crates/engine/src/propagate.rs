//! Propagation (DESIGN §4 step 4): a canonical record that changed is planned onto every
//! connection of its account — desired state = the canonical record through that
//! connection's outbound transforms, diffed against that connection's snapshot and filtered
//! by its field policy — and the operations become pending rows, in the caller's transaction.

use std::collections::BTreeSet;
use std::sync::Arc;

use tidemark_connector::Connector;

use tidemark_core::plan::{plan_order, plan_product};
use tidemark_core::{
    CanonicalOrder, CanonicalProduct, Connection, ConnectionId, PendingOp, PlatformKind, Product,
    RecordContent, RecordKind, RecordRef, SalesOrder, ScanKind, Severity, Timestamp,
};
use tidemark_store::{NewIssue, Tx};

use crate::{Engine, EngineError};

/// A connection records can be written to, with what propagation needs to know of it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub connection: Connection,
    pub connector: Option<Arc<dyn Connector>>,
    pub writes_products: bool,
    pub writes_orders: bool,
}

impl Target {
    /// The canonical product as this platform would hold it (see `Connector::as_stored`).
    fn view(&self, product: &Product) -> Product {
        match &self.connector {
            Some(connector) => connector.as_stored(product.clone()),
            None => product.clone(),
        }
    }
}

/// Every connection of an account, read once per procedure run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Targets {
    pub list: Vec<Target>,
}

impl Engine {
    pub(crate) async fn targets(
        &self,
        account: tidemark_core::AccountId,
    ) -> Result<Targets, EngineError> {
        let mut list = Vec::new();
        for connection in self.inner.store.list_connections(account).await? {
            // A connector that cannot be built (credentials missing) still gets its rows:
            // they wait until it can send. The platform kind then decides what it takes.
            let (connection, connector, writes_products, writes_orders) =
                match self.connector_of(&connection).await {
                    Ok(connector) => {
                        let caps = connector.capabilities();
                        (
                            crate::effective(connection, &*connector),
                            Some(connector),
                            caps.writes(ScanKind::Products),
                            caps.writes(ScanKind::Orders),
                        )
                    }
                    Err(_) => {
                        let orders = connection.platform != PlatformKind::Csv;
                        (connection, None, true, orders)
                    }
                };
            list.push(Target {
                connection,
                connector,
                writes_products,
                writes_orders,
            });
        }
        Ok(Targets { list })
    }
}

/// Plans `product` onto the targets (all of them, or only `only`) and queues the operations.
/// Connections where the merchant deleted the product get no new copy.
pub(crate) async fn propagate_product(
    tx: &mut Tx,
    targets: &Targets,
    product: &CanonicalProduct,
    only: Option<ConnectionId>,
    now: Timestamp,
    touched: &mut BTreeSet<ConnectionId>,
) -> Result<(), EngineError> {
    propagate_as(tx, targets, product, only, now, touched, Queue::Merge)
        .await
        .map(drop)
}

/// How planned operations are queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queue {
    /// Merged into the rows already queued (due at once): a change happened.
    Merge,
    /// Only where no row of that kind is queued yet, leaving queued rows (and their backoff)
    /// alone: the integrity fix rebuilding what is missing.
    OnlyMissing,
}

/// The pending rows already queued for a record, as (connection, image): `None` stands for
/// the record's one insert-or-update row, `Some(hash)` for an image delete.
async fn queued(
    tx: &mut Tx,
    record: RecordRef,
) -> Result<BTreeSet<(ConnectionId, Option<tidemark_core::ContentHash>)>, EngineError> {
    Ok(tx
        .pending_changes_of_record(record)
        .await?
        .into_iter()
        .map(|row| {
            let image = match row.change.op {
                PendingOp::ImageDelete { content_hash, .. } => Some(content_hash),
                _ => None,
            };
            (row.change.connection, image)
        })
        .collect())
}

async fn enqueue(
    tx: &mut Tx,
    connection: ConnectionId,
    record: RecordRef,
    op: &PendingOp,
    now: Timestamp,
    already: Option<&BTreeSet<(ConnectionId, Option<tidemark_core::ContentHash>)>>,
) -> Result<bool, EngineError> {
    if let Some(already) = already {
        let image = match op {
            PendingOp::ImageDelete { content_hash, .. } => Some(*content_hash),
            _ => None,
        };
        if already.contains(&(connection, image)) {
            return Ok(false);
        }
    }
    tx.enqueue_pending_change(connection, record, op, now)
        .await?;
    Ok(true)
}

/// A canonical record as propagation sees it: which targets take its kind, and its plan onto
/// one of them.
pub(crate) trait Propagated {
    type Content;
    const KIND: RecordKind;
    fn record(&self) -> RecordRef;
    fn internal_id(&self) -> i64;
    fn takes(target: &Target) -> bool;
    fn content_of(snapshot: RecordContent) -> Option<Self::Content>;
    fn plan(
        &self,
        target: &Target,
        snapshot: Option<&Self::Content>,
    ) -> Result<Vec<PendingOp>, tidemark_core::plan::PlanError>;
}

impl Propagated for CanonicalProduct {
    type Content = Product;
    const KIND: RecordKind = RecordKind::Product;
    fn record(&self) -> RecordRef {
        RecordRef::Product(self.id)
    }
    fn internal_id(&self) -> i64 {
        self.id.0
    }
    fn takes(target: &Target) -> bool {
        target.writes_products
    }
    fn content_of(snapshot: RecordContent) -> Option<Product> {
        match snapshot {
            RecordContent::Product(p) => Some(p),
            RecordContent::Order(_) => None,
        }
    }
    fn plan(
        &self,
        target: &Target,
        snapshot: Option<&Product>,
    ) -> Result<Vec<PendingOp>, tidemark_core::plan::PlanError> {
        plan_product(
            &target.view(&self.content),
            &target.connection.settings,
            snapshot,
        )
    }
}

impl Propagated for CanonicalOrder {
    type Content = SalesOrder;
    const KIND: RecordKind = RecordKind::Order;
    fn record(&self) -> RecordRef {
        RecordRef::Order(self.id)
    }
    fn internal_id(&self) -> i64 {
        self.id.0
    }
    fn takes(target: &Target) -> bool {
        target.writes_orders
    }
    fn content_of(snapshot: RecordContent) -> Option<SalesOrder> {
        match snapshot {
            RecordContent::Order(o) => Some(o),
            RecordContent::Product(_) => None,
        }
    }
    fn plan(
        &self,
        target: &Target,
        snapshot: Option<&SalesOrder>,
    ) -> Result<Vec<PendingOp>, tidemark_core::plan::PlanError> {
        let is_origin = target.connection.id == self.origin;
        plan_order(
            &self.content,
            &target.connection.settings,
            is_origin,
            snapshot,
        )
    }
}

/// Plans `order` onto the targets (all, or only `only`) and queues the operations.
pub(crate) async fn propagate_order(
    tx: &mut Tx,
    targets: &Targets,
    order: &CanonicalOrder,
    only: Option<ConnectionId>,
    now: Timestamp,
    touched: &mut BTreeSet<ConnectionId>,
) -> Result<(), EngineError> {
    propagate_as(tx, targets, order, only, now, touched, Queue::Merge)
        .await
        .map(drop)
}

/// Plans `record` onto the targets taking its kind (all, or only `only`) and queues the
/// operations as `queue` says; connections where the merchant deleted it get no new copy.
pub(crate) async fn propagate_as<R: Propagated + Sync>(
    tx: &mut Tx,
    targets: &Targets,
    record: &R,
    only: Option<ConnectionId>,
    now: Timestamp,
    touched: &mut BTreeSet<ConnectionId>,
    queue: Queue,
) -> Result<usize, EngineError> {
    let reference = record.record();
    let id = record.internal_id();
    let mut count = 0;
    let already = match queue {
        Queue::Merge => None,
        Queue::OnlyMissing => Some(queued(tx, reference).await?),
    };
    let deleted_on = tx.platform_deletions_of(R::KIND, id).await?;
    for target in &targets.list {
        let connection = &target.connection;
        if only.is_some_and(|o| o != connection.id) || !R::takes(target) {
            continue;
        }
        let snapshot = tx
            .snapshot_of_record(connection.id, R::KIND, id)
            .await?
            .and_then(|s| R::content_of(s.content));
        if snapshot.is_none() && deleted_on.contains(&connection.id) {
            continue;
        }
        match record.plan(target, snapshot.as_ref()) {
            Ok(ops) => {
                for op in ops {
                    if enqueue(tx, connection.id, reference, &op, now, already.as_ref()).await? {
                        count += 1;
                        touched.insert(connection.id);
                    }
                }
            }
            Err(e) => cannot_plan(tx, connection.id, reference, e.to_string(), now).await?,
        }
    }
    Ok(count)
}

async fn cannot_plan(
    tx: &mut Tx,
    connection: ConnectionId,
    record: RecordRef,
    message: String,
    now: Timestamp,
) -> Result<(), EngineError> {
    tx.raise_issue(
        &NewIssue {
            connection,
            record: Some(record),
            external_id: None,
            severity: Severity::Warning,
            code: "cannot_plan".into(),
            message: format!("cannot compute the record as it should be here: {message}"),
            field: None,
            payload: serde_json::Value::Null,
        },
        now,
    )
    .await?;
    Ok(())
}
