//! Send (DESIGN §4 "Send"): drain a connection's due pending rows in platform-sized batches.
//! Each row is re-planned from the canonical record and the connection's snapshot when it is
//! sent (the row names the operation; what to write is computed now, so a row that waited
//! sends current values, and one with nothing left to do goes without a write). After the
//! platform confirms, the snapshot advances for the fields sent and the row goes, in one
//! transaction. Creates that may already have happened (an earlier attempt failed after
//! sending) are looked up by SKU or order number first and adopted. Refusals become issues;
//! transient failures back off, honouring the platform's retry hints. Never a delete of a
//! product or order: [`WriteOp`] has none.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tidemark_connector::{
    Confirmed, Connector, ConnectorError, Write, WriteKey, WriteOp, WriteResult,
};
use tidemark_core::diff::match_variants;
use tidemark_core::hash::{order_hash, product_hash};
use tidemark_core::normalize::{normalize_order, normalize_product};
use tidemark_core::plan::{outbound_for_insert, plan_order, plan_product};
use tidemark_core::snapshot::{
    advance_snapshot, snapshot_after_image_delete, snapshot_after_insert, stock_changes,
};
use tidemark_core::transform::{outbound_order, outbound_product};
use tidemark_core::{
    Binding, Connection, ConnectionId, ContentHash, ExternalId, ExternalRecord, FieldSet,
    PendingOp, Product, RecordContent, RecordKind, RecordRef, SalesOrder, ScanKind, Severity,
    Snapshot, Timestamp,
};
use tidemark_store::{NewIssue, PendingRow, StoreError, Tx};

use crate::absorb::{self, RunCtx};
use crate::control::{Counts, RunControl};
use crate::propagate::Targets;
use crate::{Engine, EngineError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    pub counts: Counts,
}

/// What one row will write, and what the engine needs to settle it afterwards.
#[derive(Debug, Clone)]
enum Plan {
    InsertProduct {
        desired: Product,
    },
    UpdateProduct {
        desired: Product,
        fields: FieldSet,
        has_stock: bool,
    },
    DeleteImage {
        hash: ContentHash,
    },
    InsertOrder {
        desired: SalesOrder,
        /// The platform takes the lines out of its stock itself (see
        /// `Connector::order_create_moves_stock`).
        moves_stock: bool,
    },
    UpdateOrder {
        desired: SalesOrder,
        fields: FieldSet,
    },
}

enum Prepared {
    Write(Box<(Write, Plan)>),
    /// Nothing left to write: the row goes.
    Settle,
    /// The row was dealt with while planning (adopted, or parked with an issue).
    Done,
}

fn planned(write: Write, plan: Plan) -> Prepared {
    Prepared::Write(Box::new((write, plan)))
}

impl Engine {
    /// Sends what is due for one connection, until nothing due is left or `control` stops it.
    pub async fn send(
        &self,
        connection: ConnectionId,
        control: &dyn RunControl,
    ) -> Result<SendReport, EngineError> {
        let connection = self.load(connection).await?;
        if connection.paused {
            return Err(EngineError::Paused(connection.id));
        }
        let connector = self.connector_of(&connection).await?;
        let connection = crate::effective(connection, &*connector);
        let batch = connector.capabilities().max_batch_size.max(1);
        let targets = self.targets(connection.account).await?;
        let mut report = SendReport::default();
        let store = &self.inner.store;
        let mut after = None;
        loop {
            let rows = store
                .due_pending_changes(connection.id, self.now(), after, batch as i64)
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.change.id);
            self.send_batch(&connection, &*connector, &targets, rows, &mut report)
                .await?;
            control
                .checkpoint(&report.counts, &serde_json::json!({ "after": after }))
                .await
                .map_err(EngineError::Stopped)?;
        }
        store.record_send(connection.id, self.now()).await?;
        Ok(report)
    }

    async fn send_batch(
        &self,
        connection: &Connection,
        connector: &dyn Connector,
        targets: &Targets,
        rows: Vec<PendingRow>,
        report: &mut SendReport,
    ) -> Result<(), EngineError> {
        let mut writes = Vec::new();
        let mut plans: BTreeMap<WriteKey, (PendingRow, Plan)> = BTreeMap::new();
        for row in rows {
            match self.prepare_write(connection, connector, &row).await? {
                Prepared::Write(planned) => {
                    let (write, plan) = *planned;
                    plans.insert(write.key.clone(), (row, plan));
                    writes.push(write);
                }
                Prepared::Settle => {
                    let store = &self.inner.store;
                    store
                        .remove_pending_change(row.change.id, row.revision)
                        .await?;
                    report.counts.settled += 1;
                }
                Prepared::Done => {}
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        let results = match connector.apply_writes(&writes).await {
            Ok(results) => results,
            Err(e) => {
                // The batch as a whole failed: every write's outcome is unknown.
                writes
                    .iter()
                    .map(|w| WriteResult {
                        key: w.key.clone(),
                        outcome: Err(e.clone()),
                    })
                    .collect()
            }
        };
        let mut unauthorized = None;
        for result in results {
            let Some((row, plan)) = plans.remove(&result.key) else {
                continue;
            };
            if let Err(ConnectorError::Unauthorized { message }) = &result.outcome {
                unauthorized = Some(message.clone());
            }
            self.settle(
                connection,
                connector,
                targets,
                &row,
                plan,
                result.outcome,
                report,
            )
            .await?;
        }
        // A write the connector did not answer for: its outcome is unknown.
        for (_, (row, _)) in plans {
            let e = ConnectorError::maybe_applied("the connector gave no result for this write");
            self.retry_later(connection, &row, &e).await?;
            report.counts.send_failed += 1;
        }
        if let Some(message) = unauthorized {
            self.inner
                .store
                .raise_issue(
                    &NewIssue {
                        connection: connection.id,
                        record: None,
                        external_id: None,
                        severity: Severity::Alert,
                        code: "unauthorized".into(),
                        message: format!("the platform refused the credentials: {message}"),
                        field: None,
                        payload: serde_json::Value::Null,
                    },
                    self.now(),
                )
                .await?;
            return Err(EngineError::platform(
                connection.id,
                "sending",
                ConnectorError::Unauthorized { message },
            ));
        }
        Ok(())
    }

    async fn prepare_write(
        &self,
        connection: &Connection,
        connector: &dyn Connector,
        row: &PendingRow,
    ) -> Result<Prepared, EngineError> {
        let store = &self.inner.store;
        let settings = &connection.settings;
        let key = WriteKey::from(row.change.id);
        match row.change.record {
            RecordRef::Product(id) => {
                let Some(mut canonical) = store.get_product(connection.account, id).await? else {
                    return Ok(Prepared::Settle);
                };
                // As this platform would hold it (see `Connector::as_stored`).
                canonical.content = connector.as_stored(canonical.content.clone());
                let snapshot = store
                    .snapshot_of_record(connection.id, RecordKind::Product, id.0)
                    .await?;
                let Some(snapshot) = snapshot else {
                    let deleted = store
                        .platform_deletions_of(RecordKind::Product, id.0)
                        .await?
                        .contains(&connection.id);
                    if deleted || !matches!(row.change.op, PendingOp::Insert) {
                        return Ok(Prepared::Settle);
                    }
                    let desired = match outbound_for_insert(&canonical.content, settings) {
                        Ok(desired) => desired,
                        Err(e) => return self.park(connection, row, "cannot_plan", e).await,
                    };
                    if row.change.attempts > 0
                        && let Some(found) = self.look_up_product(connector, &desired).await?
                    {
                        return self.adopt(connection, row, &desired, found).await;
                    }
                    let write = Write {
                        key,
                        op: WriteOp::CreateProduct {
                            product: desired.clone(),
                        },
                    };
                    return Ok(planned(write, Plan::InsertProduct { desired }));
                };
                let RecordContent::Product(on_platform) = &snapshot.content else {
                    return Ok(Prepared::Settle);
                };
                let ops = match plan_product(&canonical.content, settings, Some(on_platform)) {
                    Ok(ops) => ops,
                    Err(e) => return self.park(connection, row, "cannot_plan", e).await,
                };
                match &row.change.op {
                    PendingOp::Insert | PendingOp::Update { .. } => {
                        let Some(fields) = ops.iter().find_map(|op| match op {
                            PendingOp::Update { fields } => Some(fields.clone()),
                            _ => None,
                        }) else {
                            return Ok(Prepared::Settle);
                        };
                        let mut desired = match outbound_product(&canonical.content, settings) {
                            Ok(desired) => desired,
                            Err(e) => return self.park(connection, row, "cannot_plan", e).await,
                        };
                        with_locators(&mut desired, on_platform);
                        let stock = if fields.contains(&tidemark_core::Field::Stock) {
                            stock_changes(on_platform, &desired)
                        } else {
                            Vec::new()
                        };
                        let has_stock = !stock.is_empty();
                        let write = Write {
                            key,
                            op: WriteOp::UpdateProduct {
                                external_id: snapshot.external_id.clone(),
                                product: desired.clone(),
                                fields: fields.clone(),
                                stock,
                            },
                        };
                        Ok(planned(
                            write,
                            Plan::UpdateProduct {
                                desired,
                                fields,
                                has_stock,
                            },
                        ))
                    }
                    PendingOp::ImageDelete { content_hash, .. } => {
                        let still_wanted = ops.iter().any(|op| {
                            matches!(op, PendingOp::ImageDelete { content_hash: h, .. } if h == content_hash)
                        });
                        let Some(image) = on_platform
                            .images
                            .iter()
                            .find(|i| i.content_hash == *content_hash)
                        else {
                            return Ok(Prepared::Settle);
                        };
                        if !still_wanted {
                            return Ok(Prepared::Settle);
                        }
                        let write = Write {
                            key,
                            op: WriteOp::DeleteProductImage {
                                product_id: snapshot.external_id.clone(),
                                image_id: image.external_id.clone(),
                                content_hash: *content_hash,
                            },
                        };
                        Ok(planned(
                            write,
                            Plan::DeleteImage {
                                hash: *content_hash,
                            },
                        ))
                    }
                }
            }
            RecordRef::Order(id) => {
                let Some(canonical) = store.get_order(connection.account, id).await? else {
                    return Ok(Prepared::Settle);
                };
                let is_origin = canonical.origin == connection.id;
                let snapshot = store
                    .snapshot_of_record(connection.id, RecordKind::Order, id.0)
                    .await?;
                let on_platform = snapshot.as_ref().and_then(|s| match &s.content {
                    RecordContent::Order(o) => Some(o.clone()),
                    RecordContent::Product(_) => None,
                });
                let ops = match plan_order(
                    &canonical.content,
                    settings,
                    is_origin,
                    on_platform.as_ref(),
                ) {
                    Ok(ops) => ops,
                    Err(e) => return self.park(connection, row, "cannot_plan", e).await,
                };
                let desired = if is_origin {
                    canonical.content.clone()
                } else {
                    outbound_order(&canonical.content, settings)
                };
                match (snapshot, ops.first()) {
                    (None, Some(PendingOp::Insert)) => {
                        if row.change.attempts > 0 {
                            match connector.find_order_by_number(&desired.number).await {
                                Ok(Some(found)) => {
                                    return self.adopt_order(connection, row, found).await;
                                }
                                Ok(None) => {}
                                Err(e) if e.is_retryable() => {
                                    self.retry_later(connection, row, &e).await?;
                                    return Ok(Prepared::Done);
                                }
                                Err(e) => {
                                    // Without a look-up a repeated create could duplicate
                                    // the order: it waits for a person instead.
                                    return self.park(connection, row, "cannot_look_up", e).await;
                                }
                            }
                        }
                        let write = Write {
                            key,
                            op: WriteOp::CreateOrder {
                                order: desired.clone(),
                            },
                        };
                        Ok(planned(
                            write,
                            Plan::InsertOrder {
                                moves_stock: connector.order_create_moves_stock(&desired),
                                desired,
                            },
                        ))
                    }
                    (Some(snapshot), Some(PendingOp::Update { fields })) => {
                        let write = Write {
                            key,
                            op: WriteOp::UpdateOrder {
                                external_id: snapshot.external_id.clone(),
                                order: desired.clone(),
                                fields: fields.clone(),
                            },
                        };
                        Ok(planned(
                            write,
                            Plan::UpdateOrder {
                                desired,
                                fields: fields.clone(),
                            },
                        ))
                    }
                    _ => Ok(Prepared::Settle),
                }
            }
        }
    }

    /// The product a create that may have happened made, if the platform has it.
    async fn look_up_product(
        &self,
        connector: &dyn Connector,
        desired: &Product,
    ) -> Result<Option<ExternalRecord>, EngineError> {
        let skus: Vec<_> = desired
            .sku
            .iter()
            .chain(desired.variants.iter().filter_map(|v| v.sku.as_ref()))
            .collect();
        for sku in skus {
            match connector.find_by_sku(sku).await {
                Ok(Some(found)) => return Ok(Some(found)),
                Ok(None) => {}
                // A failed look-up is not proof of absence; the create repeats and the
                // connector's own duplicate handling (adoption, upsert) applies.
                Err(e) => {
                    tracing::info!(error = %e, "look-up before a repeated create failed");
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    /// Binds a product the platform already has (a create that happened before its answer
    /// was lost) and plans what still differs as an update.
    async fn adopt(
        &self,
        connection: &Connection,
        row: &PendingRow,
        desired: &Product,
        found: ExternalRecord,
    ) -> Result<Prepared, EngineError> {
        let RecordRef::Product(id) = row.change.record else {
            return Ok(Prepared::Done);
        };
        let RecordContent::Product(platform) = found.content else {
            return Ok(Prepared::Done);
        };
        // The snapshot is what the platform has, not what the lost create meant to write:
        // variations or fields it never made are then planned as an update. Its images are
        // paired with the written ones by position (a platform may re-encode them).
        let content = match normalize_product(platform) {
            Ok(platform) => align_images(desired, platform),
            Err(_) => snapshot_after_insert(desired, None),
        };
        let mut tx = self.inner.store.begin().await?;
        let bound = tx
            .bind(
                &Binding {
                    connection: connection.id,
                    kind: RecordKind::Product,
                    external_id: found.external_id.clone(),
                    internal_id: id.0,
                    internal_key: String::new(),
                },
                self.now(),
            )
            .await;
        if let Err(e) = bound {
            drop(tx);
            return self
                .park(
                    connection,
                    row,
                    "bound_elsewhere",
                    format!(
                        "the platform's product {} carrying this SKU is already linked to \
                         another record ({e})",
                        found.external_id
                    ),
                )
                .await;
        }
        let generation = tx
            .scan_generation(connection.id, ScanKind::Products)
            .await?;
        tx.put_snapshot(
            &Snapshot {
                connection: connection.id,
                external_id: found.external_id.clone(),
                internal_id: id.0,
                schema_version: tidemark_core::normalize::SCHEMA_VERSION,
                content_hash: product_hash(&content),
                content: RecordContent::Product(content),
                platform_updated_at: found.updated_at,
                seen_generation: generation,
            },
            self.now(),
        )
        .await?;
        // Bound now, the insert row becomes an update of every field: what still differs
        // goes on the next batch.
        tx.complete_pending_insert(row.change.id, row.revision, self.now())
            .await?;
        tx.enqueue_pending_change(
            connection.id,
            row.change.record,
            &PendingOp::Insert,
            self.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(Prepared::Done)
    }

    async fn adopt_order(
        &self,
        connection: &Connection,
        row: &PendingRow,
        found: ExternalRecord,
    ) -> Result<Prepared, EngineError> {
        let RecordRef::Order(id) = row.change.record else {
            return Ok(Prepared::Done);
        };
        let RecordContent::Order(order) = found.content else {
            return Ok(Prepared::Done);
        };
        let Ok(order) = normalize_order(order) else {
            return Ok(Prepared::Done);
        };
        let mut tx = self.inner.store.begin().await?;
        tx.bind(
            &Binding {
                connection: connection.id,
                kind: RecordKind::Order,
                external_id: found.external_id.clone(),
                internal_id: id.0,
                internal_key: String::new(),
            },
            self.now(),
        )
        .await?;
        tx.put_snapshot(
            &Snapshot {
                connection: connection.id,
                external_id: found.external_id.clone(),
                internal_id: id.0,
                schema_version: tidemark_core::normalize::SCHEMA_VERSION,
                content_hash: order_hash(&order),
                content: RecordContent::Order(order),
                platform_updated_at: found.updated_at,
                seen_generation: 0,
            },
            self.now(),
        )
        .await?;
        tx.complete_pending_insert(row.change.id, row.revision, self.now())
            .await?;
        tx.commit().await?;
        Ok(Prepared::Done)
    }

    /// A row that cannot be sent as things are: an issue, and the row waits for a change to
    /// the record (which makes it due at once) or for the retry interval.
    async fn park(
        &self,
        connection: &Connection,
        row: &PendingRow,
        code: &str,
        message: impl std::fmt::Display,
    ) -> Result<Prepared, EngineError> {
        let now = self.now();
        let store = &self.inner.store;
        store
            .raise_issue(
                &NewIssue {
                    connection: connection.id,
                    record: Some(row.change.record),
                    external_id: None,
                    severity: Severity::Warning,
                    code: code.into(),
                    message: message.to_string(),
                    field: None,
                    payload: serde_json::Value::Null,
                },
                now,
            )
            .await?;
        store
            .retry_pending_change(
                row.change.id,
                later(now, self.inner.config.rejected_retry),
                &message.to_string(),
                now,
            )
            .await?;
        Ok(Prepared::Done)
    }

    async fn retry_later(
        &self,
        connection: &Connection,
        row: &PendingRow,
        error: &ConnectorError,
    ) -> Result<(), EngineError> {
        let now = self.now();
        let exponent = row.change.attempts.min(16);
        let backoff = Duration::from_secs(2u64.saturating_mul(1 << exponent))
            .min(self.inner.config.max_backoff);
        let wait = error.retry_hint().map_or(backoff, |hint| hint.max(backoff));
        tracing::info!(connection = %connection.id, row = %row.change.id, error = %error, wait_ms = wait.as_millis() as u64, "write will be retried");
        self.inner
            .store
            .retry_pending_change(row.change.id, later(now, wait), &error.to_string(), now)
            .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        connection: &Connection,
        connector: &dyn Connector,
        targets: &Targets,
        row: &PendingRow,
        plan: Plan,
        outcome: Result<Confirmed, ConnectorError>,
        report: &mut SendReport,
    ) -> Result<(), EngineError> {
        let now = self.now();
        let confirmed = match outcome {
            Ok(confirmed) => Some(confirmed),
            Err(e) => {
                return self
                    .settle_failure(connection, connector, targets, row, plan, e, report)
                    .await;
            }
        };
        let mut tx = self.inner.store.begin().await?;
        let done = self
            .advance(&mut tx, connection, row, &plan, confirmed.as_ref(), now)
            .await;
        match done {
            Ok(()) => {}
            Err(EngineError::Store(StoreError::Conflict { .. })) => {
                drop(tx);
                self.park(
                    connection,
                    row,
                    "bound_elsewhere",
                    "the record the platform answered with is already linked to another one",
                )
                .await?;
                report.counts.send_failed += 1;
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        if let Plan::InsertOrder {
            desired,
            moves_stock: true,
        } = &plan
        {
            give_back_stock(&mut tx, connection, targets, desired, now).await?;
        }
        tx.resolve_record_issues(connection.id, row.change.record, None, now)
            .await?;
        tx.commit().await?;
        match plan {
            Plan::InsertProduct { .. } | Plan::InsertOrder { .. } => report.counts.inserted += 1,
            Plan::UpdateProduct { .. } | Plan::UpdateOrder { .. } => report.counts.updated += 1,
            Plan::DeleteImage { .. } => report.counts.image_deletes += 1,
        }
        Ok(())
    }

    /// The snapshot after a confirmed write, and the row settled, in `tx`.
    async fn advance(
        &self,
        tx: &mut Tx,
        connection: &Connection,
        row: &PendingRow,
        plan: &Plan,
        confirmed: Option<&Confirmed>,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let internal_id = match row.change.record {
            RecordRef::Product(id) => id.0,
            RecordRef::Order(id) => id.0,
        };
        let kind = match row.change.record {
            RecordRef::Product(_) => RecordKind::Product,
            RecordRef::Order(_) => RecordKind::Order,
        };
        let updated_at = confirmed.and_then(|c| c.record.updated_at);
        let platform_product = confirmed.and_then(|c| match &c.record.content {
            RecordContent::Product(p) => normalize_product(p.clone()).ok(),
            RecordContent::Order(_) => None,
        });
        match plan {
            Plan::InsertProduct { .. } | Plan::InsertOrder { .. } => {
                let Some(confirmed) = confirmed else {
                    return Ok(());
                };
                let external_id = confirmed.record.external_id.clone();
                tx.bind(
                    &Binding {
                        connection: connection.id,
                        kind,
                        external_id: external_id.clone(),
                        internal_id,
                        internal_key: String::new(),
                    },
                    now,
                )
                .await?;
                let content = match (plan, &confirmed.record.content) {
                    (_, RecordContent::Order(order)) => {
                        // The platform's own order (its number, its ids) is what later scans
                        // compare with.
                        let order = normalize_order(order.clone()).map_err(|e| {
                            EngineError::Internal(format!(
                                "the created order does not read back: {e}"
                            ))
                        })?;
                        RecordContent::Order(order)
                    }
                    (Plan::InsertProduct { desired }, _) => {
                        let aligned = platform_product
                            .as_ref()
                            .map(|p| align_images(desired, p.clone()));
                        let mut content = snapshot_after_insert(desired, aligned.as_ref());
                        if let Some(platform) = &aligned {
                            keep_confirmed_variants(&mut content, platform);
                        }
                        RecordContent::Product(content)
                    }
                    (_, RecordContent::Product(_)) => {
                        return Err(EngineError::Internal(
                            "an order create answered with a product".into(),
                        ));
                    }
                };
                let generation = tx
                    .scan_generation(connection.id, ScanKind::Products)
                    .await?;
                tx.put_snapshot(
                    &Snapshot {
                        connection: connection.id,
                        external_id: external_id.clone(),
                        internal_id,
                        schema_version: tidemark_core::normalize::SCHEMA_VERSION,
                        content_hash: content_hash(&content),
                        content,
                        platform_updated_at: updated_at,
                        seen_generation: generation,
                    },
                    now,
                )
                .await?;
                tx.clear_platform_deletion(connection.id, kind, internal_id)
                    .await?;
                let scan_kind = match kind {
                    RecordKind::Order => ScanKind::Orders,
                    _ => ScanKind::Products,
                };
                tx.remove_unlinked(connection.id, scan_kind, &external_id)
                    .await?;
                tx.complete_pending_insert(row.change.id, row.revision, now)
                    .await?;
            }
            Plan::UpdateProduct {
                desired, fields, ..
            } => {
                let Some(old) = tx
                    .snapshot_of_record(connection.id, kind, internal_id)
                    .await?
                else {
                    tx.remove_pending_change(row.change.id, row.revision)
                        .await?;
                    return Ok(());
                };
                let RecordContent::Product(old_product) = &old.content else {
                    return Ok(());
                };
                let aligned = platform_product
                    .as_ref()
                    .map(|p| align_images(desired, p.clone()));
                let content = RecordContent::Product(advance_snapshot(
                    old_product,
                    desired,
                    aligned.as_ref(),
                    fields,
                ));
                put_advanced(tx, &old, content, updated_at, now).await?;
                tx.remove_pending_change(row.change.id, row.revision)
                    .await?;
            }
            Plan::UpdateOrder { desired, fields } => {
                let Some(old) = tx
                    .snapshot_of_record(connection.id, kind, internal_id)
                    .await?
                else {
                    tx.remove_pending_change(row.change.id, row.revision)
                        .await?;
                    return Ok(());
                };
                let RecordContent::Order(old_order) = &old.content else {
                    return Ok(());
                };
                let content = RecordContent::Order(advance_order(old_order, desired, fields));
                put_advanced(tx, &old, content, updated_at, now).await?;
                tx.remove_pending_change(row.change.id, row.revision)
                    .await?;
            }
            Plan::DeleteImage { hash } => {
                if let Some(old) = tx
                    .snapshot_of_record(connection.id, kind, internal_id)
                    .await?
                    && let RecordContent::Product(old_product) = &old.content
                {
                    let content =
                        RecordContent::Product(snapshot_after_image_delete(old_product, *hash));
                    put_advanced(tx, &old, content, updated_at, now).await?;
                }
                tx.remove_pending_change(row.change.id, row.revision)
                    .await?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn settle_failure(
        &self,
        connection: &Connection,
        connector: &dyn Connector,
        targets: &Targets,
        row: &PendingRow,
        plan: Plan,
        error: ConnectorError,
        report: &mut SendReport,
    ) -> Result<(), EngineError> {
        let now = self.now();
        report.counts.send_failed += 1;
        match (&error, &plan) {
            (
                ConnectorError::Rejected {
                    code,
                    message,
                    field,
                    payload,
                    ..
                },
                _,
            ) => {
                let mut tx = self.inner.store.begin().await?;
                tx.raise_issue(
                    &NewIssue {
                        connection: connection.id,
                        record: Some(row.change.record),
                        external_id: None,
                        severity: Severity::Warning,
                        code: code.clone(),
                        message: message.clone(),
                        field: field.clone(),
                        payload: (**payload).clone(),
                    },
                    now,
                )
                .await?;
                tx.retry_pending_change(
                    row.change.id,
                    later(now, self.inner.config.rejected_retry),
                    &error.to_string(),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }
            // The image is already gone from the product: what the row wanted.
            (ConnectorError::NotFound { .. }, Plan::DeleteImage { .. }) => {
                report.counts.send_failed -= 1;
                let mut tx = self.inner.store.begin().await?;
                self.advance(&mut tx, connection, row, &plan, None, now)
                    .await?;
                tx.commit().await?;
                report.counts.image_deletes += 1;
                Ok(())
            }
            // The record is gone from the platform: the merchant deleted it there.
            (
                ConnectorError::NotFound { .. },
                Plan::UpdateProduct { .. } | Plan::UpdateOrder { .. },
            ) => {
                let kind = match row.change.record {
                    RecordRef::Product(_) => RecordKind::Product,
                    RecordRef::Order(_) => RecordKind::Order,
                };
                let internal_id = match row.change.record {
                    RecordRef::Product(id) => id.0,
                    RecordRef::Order(id) => id.0,
                };
                let store = &self.inner.store;
                let binding = match store
                    .snapshot_of_record(connection.id, kind, internal_id)
                    .await?
                {
                    Some(s) => {
                        store
                            .binding_by_external(connection.id, kind, &s.external_id)
                            .await?
                    }
                    None => None,
                };
                let mut tx = store.begin().await?;
                if let Some(binding) = binding {
                    let ctx = RunCtx {
                        connection,
                        targets,
                        generation: None,
                        now,
                        canonical_currency: self.inner.config.canonical_currency,
                    };
                    let mut touched = BTreeSet::new();
                    absorb::apply_deletion(&mut tx, &ctx, &binding, &mut touched).await?;
                    report.counts.deleted += 1;
                }
                tx.remove_pending_change(row.change.id, row.revision)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
            // Stock moves may have been applied: find out from the platform rather than
            // repeat them (a repeat would move the stock twice).
            (
                e,
                Plan::UpdateProduct {
                    has_stock: true, ..
                },
            ) if e.is_maybe_applied() => {
                self.reconcile_stock(connection, connector, row, plan, &error)
                    .await
            }
            (ConnectorError::Fatal { .. }, _) => {
                self.park(connection, row, "write_failed", &error).await?;
                Ok(())
            }
            _ => self.retry_later(connection, row, &error).await,
        }
    }

    /// After an update whose stock moves may have been applied: read the product back. When
    /// every moved variant stands at its target (`to`), or anywhere but its start (`from`),
    /// the write is taken as applied and the snapshot advances; when all stand where they
    /// started it is retried. A mixed or moved-elsewhere answer is taken as applied, with a
    /// notice to check the stock there.
    async fn reconcile_stock(
        &self,
        connection: &Connection,
        connector: &dyn Connector,
        row: &PendingRow,
        plan: Plan,
        error: &ConnectorError,
    ) -> Result<(), EngineError> {
        let Plan::UpdateProduct { desired, .. } = &plan else {
            return self.retry_later(connection, row, error).await;
        };
        let now = self.now();
        let store = &self.inner.store;
        let RecordRef::Product(id) = row.change.record else {
            return self.retry_later(connection, row, error).await;
        };
        let Some(old) = store
            .snapshot_of_record(connection.id, RecordKind::Product, id.0)
            .await?
        else {
            return self.retry_later(connection, row, error).await;
        };
        let RecordContent::Product(old_product) = &old.content else {
            return self.retry_later(connection, row, error).await;
        };
        let moves = stock_changes(old_product, desired);
        let current = match connector
            .fetch_one(ScanKind::Products, &old.external_id)
            .await
        {
            Ok(Some(record)) => record,
            // Cannot tell yet: try the reconciliation again later (the row stays, its
            // attempt counted, and the next send re-plans it from the same snapshot).
            _ => return self.retry_later(connection, row, error).await,
        };
        let RecordContent::Product(platform) = &current.content else {
            return self.retry_later(connection, row, error).await;
        };
        let stock_of = |variant: &ExternalId| {
            platform
                .variants
                .iter()
                .find(|v| v.external_id.as_ref() == Some(variant))
                .and_then(|v| v.stock)
        };
        let at_start = moves.iter().all(|m| stock_of(&m.variant) == Some(m.from));
        if at_start && !moves.is_empty() {
            return self.retry_later(connection, row, error).await;
        }
        let at_target = moves.iter().all(|m| stock_of(&m.variant) == Some(m.to));
        let mut tx = store.begin().await?;
        self.advance(&mut tx, connection, row, &plan, None, now)
            .await?;
        if !at_target {
            tx.raise_issue(
                &NewIssue {
                    connection: connection.id,
                    record: Some(row.change.record),
                    external_id: Some(old.external_id.clone()),
                    severity: Severity::Notice,
                    code: "stock_uncertain".into(),
                    message: format!(
                        "a stock update's answer was lost and the stock moved meanwhile; it was \
                         taken as applied: check the stock on this platform ({error})"
                    ),
                    field: Some("stock".into()),
                    payload: serde_json::Value::Null,
                },
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn put_advanced(
    tx: &mut Tx,
    old: &Snapshot,
    content: RecordContent,
    updated_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<(), EngineError> {
    tx.put_snapshot(
        &Snapshot {
            connection: old.connection,
            external_id: old.external_id.clone(),
            internal_id: old.internal_id,
            schema_version: tidemark_core::normalize::SCHEMA_VERSION,
            content_hash: content_hash(&content),
            content,
            platform_updated_at: old.platform_updated_at.max(updated_at),
            seen_generation: old.seen_generation,
        },
        now,
    )
    .await?;
    Ok(())
}

fn content_hash(content: &RecordContent) -> ContentHash {
    match content {
        RecordContent::Product(p) => product_hash(p),
        RecordContent::Order(o) => order_hash(o),
    }
}

fn later(now: Timestamp, wait: Duration) -> Timestamp {
    now.saturating_add_millis(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

/// Puts the platform's ids on the desired record: variants as the diff pairs them, images by
/// content hash, so list-replace APIs keep what exists.
fn with_locators(desired: &mut Product, snapshot: &Product) {
    for pair in match_variants(&snapshot.variants, &desired.variants) {
        if let (Some(s), Some(d)) = pair
            && let Some(id) = snapshot.variants.get(s).and_then(|v| v.external_id.clone())
            && let Some(variant) = desired.variants.get_mut(d)
        {
            variant.external_id = Some(id);
        }
    }
    for image in &mut desired.images {
        if let Some(known) = snapshot
            .images
            .iter()
            .find(|i| i.content_hash == image.content_hash)
        {
            image.external_id = known.external_id.clone();
        }
    }
}

/// The platform's answer after a write lists images by its own URLs, hashed by URL until
/// downloaded, and a platform may re-encode what it was sent. It keeps the order it was given,
/// so when it answers as many images as were written, image `i` is the one written `i`-th:
/// it takes that content hash (and variants pointing at it follow).
fn align_images(desired: &Product, mut platform: Product) -> Product {
    if platform.images.len() != desired.images.len() {
        return platform;
    }
    let mut wanted: Vec<&tidemark_core::Image> = desired.images.iter().collect();
    wanted.sort_by_key(|i| i.position);
    platform.images.sort_by_key(|i| i.position);
    let mut remap = BTreeMap::new();
    for (image, want) in platform.images.iter_mut().zip(wanted) {
        remap.insert(image.content_hash, want.content_hash);
        image.content_hash = want.content_hash;
        image.hash_source = want.hash_source;
    }
    for variant in &mut platform.variants {
        for hash in &mut variant.image_hashes {
            if let Some(new) = remap.get(hash) {
                *hash = *new;
            }
        }
    }
    platform
}

/// A platform that took an order's lines out of its stock when tidemark created the order
/// there (the sale was made, and counted, elsewhere): its snapshots of those products take the
/// decrement as the platform's own state, and the products are planned again for this
/// connection, which queues the stock moves that give the units back.
async fn give_back_stock(
    tx: &mut Tx,
    connection: &Connection,
    targets: &Targets,
    order: &SalesOrder,
    now: Timestamp,
) -> Result<(), EngineError> {
    let mut touched = BTreeSet::new();
    for line in &order.lines {
        let Some(sku) = &line.sku else { continue };
        let key = tidemark_core::normalize::sku_key(sku);
        for id in tx
            .match_candidates(connection.account, std::slice::from_ref(sku), &[])
            .await?
        {
            let Some(snapshot) = tx
                .snapshot_of_record(connection.id, RecordKind::Product, id.0)
                .await?
            else {
                continue;
            };
            let RecordContent::Product(mut product) = snapshot.content.clone() else {
                continue;
            };
            let Some(variant) = product.variants.iter_mut().find(|v| {
                v.sku
                    .as_ref()
                    .is_some_and(|s| tidemark_core::normalize::sku_key(s) == key)
            }) else {
                continue;
            };
            let Some(stock) = variant.stock else { continue };
            variant.stock = Some(stock.saturating_sub(line.quantity));
            let content = RecordContent::Product(product);
            put_advanced(tx, &snapshot, content, None, now).await?;
            if let Some(canonical) = tx.get_product(connection.account, id).await? {
                crate::propagate::propagate_product(
                    tx,
                    targets,
                    &canonical,
                    Some(connection.id),
                    now,
                    &mut touched,
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// A create may leave some variants out (the platform refused them after creating the
/// product): the snapshot holds only the variants the platform answered with, so the next plan
/// adds the missing ones as an update.
fn keep_confirmed_variants(snapshot: &mut Product, platform: &Product) {
    let keep: BTreeSet<usize> = match_variants(&snapshot.variants, &platform.variants)
        .into_iter()
        .filter_map(|pair| match pair {
            (Some(s), Some(_)) => Some(s),
            _ => None,
        })
        .collect();
    let mut index = 0;
    snapshot.variants.retain(|_| {
        let kept = keep.contains(&index);
        index += 1;
        kept
    });
}

/// An order snapshot after an update of `fields`: those take the values written.
fn advance_order(old: &SalesOrder, desired: &SalesOrder, fields: &FieldSet) -> SalesOrder {
    use tidemark_core::Field;
    let mut out = old.clone();
    if fields.contains(&Field::OrderStatus) {
        out.status = desired.status;
    }
    if fields.contains(&Field::PaymentStatus) {
        out.payment_status = desired.payment_status;
    }
    if fields.contains(&Field::Shipments) {
        out.shipments = desired.shipments.clone();
    }
    if fields.contains(&Field::OrderNote) {
        out.note = desired.note.clone();
    }
    out
}
