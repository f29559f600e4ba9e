//! The integrity fix (DESIGN §4 "Maintenance"): for one connection, drop bindings whose
//! canonical record is gone, upgrade snapshots stored under an older schema version and
//! recompute their hashes, recompute the content hashes of the canonical products bound here,
//! and queue the pending rows that planning canonical against snapshot says are missing (rows
//! already queued, with their backoff, are left alone). It reports what it changed; a second
//! run changes nothing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tidemark_core::hash::{product_hash, record_hash};
use tidemark_core::normalize::{SCHEMA_VERSION, upgrade};
use tidemark_core::{ConnectionId, ExternalId, OrderId, ProductId, RecordKind, Severity};
use tidemark_store::NewIssue;

use crate::control::{Counts, RunControl};
use crate::propagate::{Queue, propagate_as};
use crate::{Engine, EngineError};

/// What an integrity fix changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityReport {
    /// Bindings (with their snapshots) whose canonical record no longer exists.
    pub orphan_bindings_removed: u64,
    /// Snapshots stored under an older schema version, upgraded.
    pub snapshots_upgraded: u64,
    /// Snapshots whose stored hash did not match their content.
    pub snapshot_hashes_fixed: u64,
    /// Canonical products whose stored hash did not match their content.
    pub product_hashes_fixed: u64,
    /// Pending rows queued because planning found them missing.
    pub pending_added: u64,
    /// Snapshots that could not be read or upgraded (each raised as an issue), left as they
    /// are.
    pub unreadable: u64,
}

impl IntegrityReport {
    /// Whether the run changed anything.
    pub fn changed(&self) -> bool {
        self.orphan_bindings_removed
            + self.snapshots_upgraded
            + self.snapshot_hashes_fixed
            + self.product_hashes_fixed
            + self.pending_added
            > 0
    }
}

const BATCH: i64 = 200;

impl Engine {
    /// Runs the integrity fix for one connection (module docs).
    pub async fn integrity_fix(
        &self,
        connection: ConnectionId,
        control: &dyn RunControl,
    ) -> Result<IntegrityReport, EngineError> {
        let connection = self.load(connection).await?;
        let connection = match self.connector_of(&connection).await {
            Ok(connector) => crate::effective(connection, &*connector),
            Err(_) => connection,
        };
        let store = &self.inner.store;
        let mut report = IntegrityReport::default();

        // Orphans: a binding whose canonical record is gone can only mislead a later fetch.
        loop {
            let orphans = store.list_orphan_bindings(connection.id, BATCH).await?;
            if orphans.is_empty() {
                break;
            }
            let mut tx = store.begin().await?;
            for binding in &orphans {
                tx.unbind(connection.id, binding.kind, &binding.external_id)
                    .await?;
            }
            tx.commit().await?;
            report.orphan_bindings_removed += orphans.len() as u64;
            checkpoint(control, &report).await?;
        }

        // Snapshots: current schema, honest hashes.
        let now = self.now();
        for kind in [RecordKind::Product, RecordKind::Order] {
            let mut after: Option<ExternalId> = None;
            loop {
                let batch = store
                    .list_snapshots(connection.id, kind, after.as_ref(), BATCH)
                    .await?;
                let Some(last) = batch.last() else { break };
                after = Some(last.external_id.clone());
                let mut tx = store.begin().await?;
                for snapshot in batch {
                    let old_version = snapshot.schema_version < SCHEMA_VERSION;
                    let content = match upgrade(snapshot.content.clone(), snapshot.schema_version) {
                        Ok(content) => content,
                        Err(e) => {
                            report.unreadable += 1;
                            tx.raise_issue(
                                &NewIssue {
                                    connection: connection.id,
                                    record: None,
                                    external_id: Some(snapshot.external_id.clone()),
                                    severity: Severity::Warning,
                                    code: "unreadable_snapshot".into(),
                                    message: format!(
                                        "the stored snapshot cannot be brought to schema version \
                                         {SCHEMA_VERSION}: {e}; a full fetch replaces it"
                                    ),
                                    field: None,
                                    payload: serde_json::Value::Null,
                                },
                                now,
                            )
                            .await?;
                            continue;
                        }
                    };
                    let hash = record_hash(&content);
                    if !old_version && hash == snapshot.content_hash && content == snapshot.content
                    {
                        continue;
                    }
                    if old_version {
                        report.snapshots_upgraded += 1;
                    } else {
                        report.snapshot_hashes_fixed += 1;
                    }
                    let mut fixed = snapshot;
                    fixed.content = content;
                    fixed.content_hash = hash;
                    fixed.schema_version = SCHEMA_VERSION;
                    tx.put_snapshot(&fixed, now).await?;
                }
                tx.commit().await?;
                checkpoint(control, &report).await?;
            }
        }

        // Canonical hashes, and the pending rows planning says are missing here.
        let targets = self.targets(connection.account).await?;
        let mut touched = BTreeSet::new();
        let mut after: Option<ProductId> = None;
        loop {
            let ids = store
                .list_product_ids(connection.account, after, BATCH)
                .await?;
            let Some(last) = ids.last() else { break };
            after = Some(*last);
            let mut tx = store.begin().await?;
            for product in tx.get_products(connection.account, &ids).await? {
                let hash = product_hash(&product.content);
                let stored = tx
                    .product_content_hash(connection.account, product.id)
                    .await?;
                if stored != Some(hash) {
                    tx.update_product(&product, hash, product.revision).await?;
                    report.product_hashes_fixed += 1;
                }
                report.pending_added += propagate_as(
                    &mut tx,
                    &targets,
                    &*product,
                    Some(connection.id),
                    now,
                    &mut touched,
                    Queue::OnlyMissing,
                )
                .await? as u64;
            }
            tx.commit().await?;
            checkpoint(control, &report).await?;
        }
        let mut after: Option<OrderId> = None;
        loop {
            let ids = store
                .list_order_ids(connection.account, after, BATCH)
                .await?;
            let Some(last) = ids.last() else { break };
            after = Some(*last);
            let mut tx = store.begin().await?;
            for id in ids {
                let Some(order) = tx.get_order(connection.account, id).await? else {
                    continue;
                };
                report.pending_added += propagate_as(
                    &mut tx,
                    &targets,
                    &*order,
                    Some(connection.id),
                    now,
                    &mut touched,
                    Queue::OnlyMissing,
                )
                .await? as u64;
            }
            tx.commit().await?;
            checkpoint(control, &report).await?;
        }
        Ok(report)
    }
}

async fn checkpoint(control: &dyn RunControl, report: &IntegrityReport) -> Result<(), EngineError> {
    let counts = Counts {
        changed: report.snapshots_upgraded
            + report.snapshot_hashes_fixed
            + report.product_hashes_fixed,
        deleted: report.orphan_bindings_removed,
        failed: report.unreadable,
        ..Counts::default()
    };
    let saved = serde_json::to_value(report)
        .map_err(|e| EngineError::Internal(format!("cannot save a checkpoint: {e}")))?;
    control
        .checkpoint(&counts, &saved)
        .await
        .map_err(EngineError::Stopped)
}
