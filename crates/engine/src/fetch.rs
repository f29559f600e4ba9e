//! Fetch (DESIGN §4 "Fetch"): scan pages, prepare each record outside any transaction
//! (normalise, download and hash new images), absorb a page in one transaction (one savepoint
//! per record, so one bad record becomes an issue without losing the page), checkpoint, and
//! when a scan completes move the clock to the largest platform time it saw and, after a full
//! product scan, sweep deletions under the mass-delete guard.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tidemark_connector::{Capabilities, Connector, ConnectorError, Cursor, ScanPage, ScanScope};
use tidemark_core::hash::{order_hash, product_hash};
use tidemark_core::merge::{GuardDecision, mass_delete_guard};
use tidemark_core::normalize::{normalize_order, normalize_product_with_warnings};
use tidemark_core::{
    Connection, ConnectionId, ContentHash, ExternalId, ExternalRecord, ImageHashSource, Product,
    RecordContent, RecordKind, ScanKind, Severity, Snapshot, Timestamp,
};
use tidemark_store::{NewIssue, StoreError};

use crate::absorb::{self, ApplyError, Outcome, Prepared, RunCtx};
use crate::control::{Counts, RunControl};
use crate::propagate::Targets;
use crate::{Engine, EngineError};

/// Which records a fetch covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum FetchScope {
    /// Changed since the clock (minus the connector's overlap); a full scan when there is no
    /// clock yet.
    Incremental,
    /// Everything, with deletion detection.
    Full,
    /// A manual resync of records changed since `since`.
    Window { since: Timestamp },
    /// One record (a webhook or a single-record resync). `deleted` when the platform said so
    /// (a delete webhook): the record is not fetched, its binding goes.
    One {
        kind: ScanKind,
        external_id: ExternalId,
        #[serde(default)]
        deleted: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    pub scope: FetchScope,
    /// The kinds to scan; empty for every kind the connector scans.
    #[serde(default)]
    pub kinds: Vec<ScanKind>,
}

impl FetchRequest {
    pub fn new(scope: FetchScope) -> Self {
        Self {
            scope,
            kinds: Vec::new(),
        }
    }
}

/// Where a fetch stands, saved at every page boundary; a fetch given it resumes there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchCheckpoint {
    pub kinds: BTreeMap<ScanKind, KindState>,
    pub counts: Counts,
}

/// One kind's scan within a fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindState {
    /// Decided when the scan started, so a resumed scan covers the same records.
    pub scope: ScanScope,
    /// The full scan's generation (mark and sweep of products).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seen: Option<Timestamp>,
    pub scanned: u64,
    /// Whether a completed scan may move the clock (it covered everything after the clock).
    pub moves_clock: bool,
    pub done: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    pub counts: Counts,
    /// Connections that got pending rows from this fetch (to auto-send).
    pub pending_for: BTreeSet<ConnectionId>,
    /// Alerts raised (the mass-delete guard refusing deletions).
    pub alerts: Vec<String>,
}

impl Engine {
    /// Runs a fetch of one connection (module docs). `resume` is the checkpoint a stopped run
    /// saved; `control` is told about every page and may stop the run.
    pub async fn fetch(
        &self,
        connection: ConnectionId,
        request: &FetchRequest,
        resume: Option<FetchCheckpoint>,
        control: &dyn RunControl,
    ) -> Result<FetchReport, EngineError> {
        let connection = self.load(connection).await?;
        if connection.paused {
            return Err(EngineError::Paused(connection.id));
        }
        let connector = self.connector_of(&connection).await?;
        let connection = crate::effective(connection, &*connector);
        let caps = connector.capabilities();
        let targets = self.targets(connection.account).await?;
        let mut checkpoint = resume.unwrap_or_default();
        let mut report = FetchReport {
            counts: checkpoint.counts.clone(),
            ..FetchReport::default()
        };
        if let FetchScope::One {
            kind,
            external_id,
            deleted,
        } = &request.scope
        {
            self.fetch_one(
                &connection,
                &*connector,
                &targets,
                *kind,
                external_id,
                *deleted,
                &mut report,
            )
            .await?;
            self.inner
                .store
                .record_fetch(connection.id, self.now())
                .await?;
            return Ok(report);
        }
        let kinds: Vec<ScanKind> = if request.kinds.is_empty() {
            vec![ScanKind::Products, ScanKind::Orders]
        } else {
            request.kinds.clone()
        };
        for kind in kinds.into_iter().filter(|k| caps.scans(*k)) {
            if let std::collections::btree_map::Entry::Vacant(entry) = checkpoint.kinds.entry(kind)
            {
                let state = self
                    .start_scan(&connection, &caps, kind, &request.scope)
                    .await?;
                entry.insert(state);
            }
            self.scan_kind(
                &connection,
                &*connector,
                &targets,
                kind,
                &mut checkpoint,
                &mut report,
                control,
            )
            .await?;
        }
        self.inner
            .store
            .record_fetch(connection.id, self.now())
            .await?;
        Ok(report)
    }

    async fn start_scan(
        &self,
        connection: &Connection,
        caps: &Capabilities,
        kind: ScanKind,
        scope: &FetchScope,
    ) -> Result<KindState, EngineError> {
        let clock = connection.clocks.get(&kind).copied();
        let overlap = i64::try_from(caps.recommended_overlap.as_millis()).unwrap_or(i64::MAX);
        let (scope, moves_clock) = match (scope, clock) {
            (FetchScope::Incremental, Some(clock)) => {
                let since = clock.saturating_sub_millis(overlap);
                if caps.incremental(kind).is_some() {
                    (ScanScope::Incremental { since }, true)
                } else {
                    // No modification filter (MercadoLibre items): newest first until older.
                    (ScanScope::Window { since }, true)
                }
            }
            (FetchScope::Incremental | FetchScope::Full, _) => (ScanScope::Full, true),
            (FetchScope::Window { since }, clock) => (
                ScanScope::Window { since: *since },
                clock.is_some_and(|c| *since <= c),
            ),
            (FetchScope::One { .. }, _) => {
                return Err(EngineError::Internal(
                    "a one-record fetch has no scan".into(),
                ));
            }
        };
        let generation = if scope == ScanScope::Full && kind == ScanKind::Products {
            Some(
                self.inner
                    .store
                    .next_scan_generation(connection.id, kind, self.now())
                    .await?,
            )
        } else {
            None
        };
        Ok(KindState {
            scope,
            generation,
            cursor: None,
            max_seen: None,
            scanned: 0,
            moves_clock,
            done: false,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn scan_kind(
        &self,
        connection: &Connection,
        connector: &dyn Connector,
        targets: &Targets,
        kind: ScanKind,
        checkpoint: &mut FetchCheckpoint,
        report: &mut FetchReport,
        control: &dyn RunControl,
    ) -> Result<(), EngineError> {
        let mut restarts = 0;
        loop {
            let Some(state) = checkpoint.kinds.get(&kind).cloned() else {
                return Ok(());
            };
            if state.done {
                return Ok(());
            }
            let page = match self
                .scan_page(
                    connection.id,
                    connector,
                    kind,
                    &state.scope,
                    state.cursor.as_ref(),
                )
                .await
            {
                Ok(page) => page,
                Err(EngineError::Platform { source, .. })
                    if matches!(*source, ConnectorError::CursorExpired { .. }) && restarts < 3 =>
                {
                    // The platform forgot where the scan was: start it again (hashes make
                    // the repeated pages cheap).
                    restarts += 1;
                    if let Some(state) = checkpoint.kinds.get_mut(&kind) {
                        state.cursor = None;
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if page.total.is_some() {
                report.counts.total = page.total;
            }
            let scanned = page.records.len() as u64;
            let max = page.max_updated_at;
            let next = page.next.clone();
            self.apply_page(
                connection,
                targets,
                kind,
                state.generation,
                page.records,
                report,
            )
            .await?;
            let mut finished = None;
            if let Some(state) = checkpoint.kinds.get_mut(&kind) {
                state.scanned += scanned;
                state.max_seen = state.max_seen.max(max);
                state.cursor = next.clone();
                if next.is_none() {
                    finished = Some(state.clone());
                    state.done = true;
                }
            }
            report.counts.scanned += scanned;
            if let Some(state) = finished {
                self.finish_scan(connection, targets, kind, &state, report)
                    .await?;
            }
            checkpoint.counts = report.counts.clone();
            let saved = serde_json::to_value(&*checkpoint)
                .map_err(|e| EngineError::Internal(format!("cannot save a checkpoint: {e}")))?;
            control
                .checkpoint(&report.counts, &saved)
                .await
                .map_err(EngineError::Stopped)?;
            if next.is_none() {
                return Ok(());
            }
        }
    }

    /// One page, retried while the platform is throttling or failing (the connector's client
    /// has already retried the request itself).
    async fn scan_page(
        &self,
        connection: ConnectionId,
        connector: &dyn Connector,
        kind: ScanKind,
        scope: &ScanScope,
        cursor: Option<&Cursor>,
    ) -> Result<ScanPage, EngineError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match connector.scan_page(kind, scope, cursor).await {
                Ok(page) => return Ok(page),
                Err(e) if e.is_retryable() && attempt < self.inner.config.page_attempts => {
                    let wait = e.retry_hint().unwrap_or_else(|| {
                        Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6)))
                    });
                    tracing::warn!(connection = %connection, kind = kind.as_str(), attempt, error = %e, "scan page failed; retrying");
                    tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
                }
                Err(e) => {
                    return Err(EngineError::platform(
                        connection,
                        format!("scanning {}", kind.as_str()),
                        e,
                    ));
                }
            }
        }
    }

    /// After the last page: the clock moves to the largest platform time seen (never to
    /// wall-clock now), and a full product scan sweeps what it did not see.
    async fn finish_scan(
        &self,
        connection: &Connection,
        targets: &Targets,
        kind: ScanKind,
        state: &KindState,
        report: &mut FetchReport,
    ) -> Result<(), EngineError> {
        let store = &self.inner.store;
        if state.moves_clock
            && let Some(max) = state.max_seen
        {
            let clock = store.get_clocks(connection.id).await?.get(&kind).copied();
            if clock.is_none_or(|c| max > c) {
                store.set_clock(connection.id, kind, max).await?;
            }
        }
        if let Some(generation) = state.generation {
            self.sweep(connection, targets, kind, generation, state.scanned, report)
                .await?;
        }
        Ok(())
    }

    async fn sweep(
        &self,
        connection: &Connection,
        targets: &Targets,
        kind: ScanKind,
        generation: i64,
        scanned: u64,
        report: &mut FetchReport,
    ) -> Result<(), EngineError> {
        let store = &self.inner.store;
        let bound = store
            .count_bindings(connection.id, RecordKind::Product)
            .await?;
        let mut unseen = Vec::new();
        let mut after: Option<ExternalId> = None;
        loop {
            let batch = store
                .list_unseen(connection.id, kind, generation, after.as_ref(), 1000)
                .await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.external_id.clone());
            unseen.extend(batch);
        }
        let decision = mass_delete_guard(
            u64::try_from(bound).unwrap_or(0),
            scanned,
            unseen.len() as u64,
            connection.settings.mass_delete_share,
        );
        let now = self.now();
        match decision {
            GuardDecision::Refuse { reason } => {
                store
                    .raise_issue(
                        &NewIssue {
                            connection: connection.id,
                            record: None,
                            external_id: None,
                            severity: Severity::Alert,
                            code: "mass_delete_guard".into(),
                            message: format!(
                                "{reason}; {} product(s) not seen by the full scan are kept \
                                 bound until this is confirmed",
                                unseen.len()
                            ),
                            field: None,
                            payload: serde_json::json!({ "unseen": unseen.len(), "bound": bound, "scanned": scanned }),
                        },
                        now,
                    )
                    .await?;
                report.alerts.push(reason);
            }
            GuardDecision::Apply => {
                let ctx = RunCtx {
                    connection,
                    targets,
                    generation: Some(generation),
                    now,
                    canonical_currency: self.inner.config.canonical_currency,
                };
                for chunk in unseen.chunks(200) {
                    let mut tx = store.begin().await?;
                    let mut touched = BTreeSet::new();
                    for binding in chunk {
                        absorb::apply_deletion(&mut tx, &ctx, binding, &mut touched).await?;
                    }
                    tx.commit().await?;
                    report.counts.deleted += chunk.len() as u64;
                    report.pending_for.extend(touched);
                }
            }
        }
        Ok(())
    }

    /// A webhook or single-record resync: fetch the record and absorb it, or, when the
    /// platform says it is gone, apply the deletion.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_one(
        &self,
        connection: &Connection,
        connector: &dyn Connector,
        targets: &Targets,
        kind: ScanKind,
        external_id: &ExternalId,
        deleted: bool,
        report: &mut FetchReport,
    ) -> Result<(), EngineError> {
        let found = if deleted {
            None
        } else {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match connector.fetch_one(kind, external_id).await {
                    Ok(found) => break found,
                    Err(e) if e.is_retryable() && attempt < self.inner.config.page_attempts => {
                        let wait = e.retry_hint().unwrap_or(Duration::from_millis(500));
                        tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
                    }
                    Err(ConnectorError::NotFound { .. }) => break None,
                    Err(e) => {
                        return Err(EngineError::platform(
                            connection.id,
                            format!("fetching {} {external_id}", kind.as_str()),
                            e,
                        ));
                    }
                }
            }
        };
        match found {
            Some(record) => {
                report.counts.scanned += 1;
                self.apply_page(connection, targets, kind, None, vec![record], report)
                    .await
            }
            None => {
                let record_kind = match kind {
                    ScanKind::Products => RecordKind::Product,
                    ScanKind::Orders => RecordKind::Order,
                };
                let store = &self.inner.store;
                let Some(binding) = store
                    .binding_by_external(connection.id, record_kind, external_id)
                    .await?
                else {
                    store
                        .remove_unlinked(connection.id, kind, external_id)
                        .await?;
                    return Ok(());
                };
                let ctx = RunCtx {
                    connection,
                    targets,
                    generation: None,
                    now: self.now(),
                    canonical_currency: self.inner.config.canonical_currency,
                };
                let mut tx = store.begin().await?;
                let mut touched = BTreeSet::new();
                absorb::apply_deletion(&mut tx, &ctx, &binding, &mut touched).await?;
                tx.commit().await?;
                report.counts.deleted += 1;
                report.pending_for.extend(touched);
                Ok(())
            }
        }
    }

    /// Prepares a page's records (outside any transaction: image downloads take time) and
    /// absorbs them in one transaction, retrying it when the database asks to.
    async fn apply_page(
        &self,
        connection: &Connection,
        targets: &Targets,
        kind: ScanKind,
        generation: Option<i64>,
        records: Vec<ExternalRecord>,
        report: &mut FetchReport,
    ) -> Result<(), EngineError> {
        if records.is_empty() {
            return Ok(());
        }
        let prepared = self.prepare(connection, kind, records).await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .commit_page(connection, targets, kind, generation, &prepared)
                .await
            {
                Ok((counts, touched)) => {
                    report.counts.add(&counts);
                    report.pending_for.extend(touched);
                    return Ok(());
                }
                Err(EngineError::Store(e)) if attempt < 3 && transient_store_error(&e) => {
                    tracing::warn!(connection = %connection.id, error = %e, "page transaction failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn commit_page(
        &self,
        connection: &Connection,
        targets: &Targets,
        kind: ScanKind,
        generation: Option<i64>,
        prepared: &[Prepared],
    ) -> Result<(Counts, BTreeSet<ConnectionId>), EngineError> {
        let ctx = RunCtx {
            connection,
            targets,
            generation,
            now: self.now(),
            canonical_currency: self.inner.config.canonical_currency,
        };
        let mut counts = Counts::default();
        let mut touched = BTreeSet::new();
        let mut seen = Vec::with_capacity(prepared.len());
        if generation.is_none()
            && prepared
                .iter()
                .all(|r| matches!(r, Prepared::Settled { .. }))
        {
            counts.unchanged = prepared.len() as u64;
            return Ok((counts, touched));
        }
        let mut tx = self.inner.store.begin().await?;
        for record in prepared {
            if let Prepared::Settled { external_id } = record {
                counts.unchanged += 1;
                seen.push(external_id.clone());
                continue;
            }
            let mut tries = 0;
            loop {
                tries += 1;
                let mut local = BTreeSet::new();
                tx.savepoint().await?;
                match absorb::apply(&mut tx, &ctx, record, &mut local).await {
                    Ok(outcome) => {
                        tx.end_savepoint(Ok(())).await?;
                        match outcome {
                            Outcome::New => counts.new += 1,
                            Outcome::Changed => counts.changed += 1,
                            Outcome::Unchanged => counts.unchanged += 1,
                            Outcome::Unlinked => counts.unlinked += 1,
                        }
                        touched.extend(local);
                        seen.push(record.external_id().clone());
                        break;
                    }
                    // Another writer changed the canonical record since it was read:
                    // undo this record and absorb it again over the new state.
                    Err(ApplyError::Engine(EngineError::Store(e))) if e.is_stale() && tries < 4 => {
                        let _ = tx.end_savepoint::<()>(Err(e)).await;
                    }
                    Err(ApplyError::Engine(e)) => return Err(e),
                    Err(ApplyError::Record(problem)) => {
                        let undo = StoreError::Invalid {
                            operation: "absorb",
                            detail: problem.message.clone(),
                        };
                        let _ = tx.end_savepoint::<()>(Err(undo)).await;
                        let record_ref = tx
                            .binding_by_external(
                                connection.id,
                                record_kind(kind),
                                record.external_id(),
                            )
                            .await?
                            .map(|b| match kind {
                                ScanKind::Products => tidemark_core::RecordRef::Product(
                                    tidemark_core::ProductId(b.internal_id),
                                ),
                                ScanKind::Orders => tidemark_core::RecordRef::Order(
                                    tidemark_core::OrderId(b.internal_id),
                                ),
                            });
                        tx.raise_issue(
                            &NewIssue {
                                connection: connection.id,
                                record: record_ref,
                                external_id: Some(record.external_id().clone()),
                                severity: Severity::Warning,
                                code: problem.code.into(),
                                message: problem.message,
                                field: None,
                                payload: serde_json::Value::Null,
                            },
                            ctx.now,
                        )
                        .await?;
                        counts.failed += 1;
                        // Seen all the same: a record the scan returned is not deleted.
                        seen.push(record.external_id().clone());
                        break;
                    }
                }
            }
        }
        if let Some(generation) = generation {
            tx.mark_seen(connection.id, kind, &seen, generation).await?;
        }
        tx.commit().await?;
        Ok((counts, touched))
    }

    /// Normalises and hashes a page's records. Images whose URL the snapshot already knows
    /// keep the hash it holds; new URLs are downloaded (a few at a time) and hashed by their
    /// bytes, or keep the URL hash when the download fails.
    async fn prepare(
        &self,
        connection: &Connection,
        kind: ScanKind,
        records: Vec<ExternalRecord>,
    ) -> Result<Vec<Prepared>, EngineError> {
        let ids: Vec<ExternalId> = records.iter().map(|r| r.external_id.clone()).collect();
        let snapshots: HashMap<ExternalId, Snapshot> = self
            .inner
            .store
            .snapshots_by_external(connection.id, record_kind(kind), &ids)
            .await?
            .into_iter()
            .map(|s| (s.external_id.clone(), s))
            .collect();
        // Image URLs → hash, from snapshots first, then downloads.
        let mut known: HashMap<String, (ContentHash, ImageHashSource)> = HashMap::new();
        for snapshot in snapshots.values() {
            if let RecordContent::Product(p) = &snapshot.content {
                for image in &p.images {
                    known.insert(image.src.clone(), (image.content_hash, image.hash_source));
                }
            }
        }
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for record in &records {
            if let RecordContent::Product(p) = &record.content {
                for image in &p.images {
                    if image.hash_source == ImageHashSource::Url && !known.contains_key(&image.src)
                    {
                        wanted.insert(image.src.clone());
                    }
                }
            }
        }
        let fetcher = &self.inner.images;
        let downloads: Vec<(String, Result<ContentHash, crate::ImageError>)> =
            futures::stream::iter(wanted)
                .map(|src| async move {
                    let result = fetcher.hash(&src).await;
                    (src, result)
                })
                .buffer_unordered(fetcher.policy().concurrency.max(1))
                .collect()
                .await;
        for (src, result) in downloads {
            match result {
                Ok(hash) => {
                    known.insert(src, (hash, ImageHashSource::Bytes));
                }
                Err(e) => {
                    tracing::info!(connection = %connection.id, error = %e, "image not downloaded; matched by its URL");
                }
            }
        }
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let external_id = record.external_id;
            let updated_at = record.updated_at;
            let prepared = match record.content {
                RecordContent::Product(product) => {
                    let product = resolve_images(product, &known);
                    match normalize_product_with_warnings(product) {
                        Ok((product, warnings)) => Prepared::Product {
                            hash: product_hash(&product),
                            external_id,
                            updated_at,
                            product,
                            warnings,
                        },
                        Err(e) => Prepared::Unreadable {
                            external_id,
                            message: format!("the product cannot be read: {e}"),
                        },
                    }
                }
                RecordContent::Order(order) => match normalize_order(order) {
                    Ok(order) => Prepared::Order {
                        hash: order_hash(&order),
                        external_id,
                        updated_at,
                        order,
                    },
                    Err(e) => Prepared::Unreadable {
                        external_id,
                        message: format!("the order cannot be read: {e}"),
                    },
                },
            };
            let settled = match &prepared {
                Prepared::Product {
                    external_id, hash, ..
                }
                | Prepared::Order {
                    external_id, hash, ..
                } => snapshots
                    .get(external_id)
                    .is_some_and(|s| absorb::settled(s, *hash, updated_at)),
                Prepared::Settled { .. } | Prepared::Unreadable { .. } => false,
            };
            out.push(if settled {
                Prepared::Settled {
                    external_id: prepared.external_id().clone(),
                }
            } else {
                prepared
            });
        }
        Ok(out)
    }
}

/// Puts the known hashes on a product's images and on the variants that point at them.
fn resolve_images(
    mut product: Product,
    known: &HashMap<String, (ContentHash, ImageHashSource)>,
) -> Product {
    let mut remap: HashMap<ContentHash, ContentHash> = HashMap::new();
    for image in &mut product.images {
        if let Some((hash, source)) = known.get(&image.src) {
            remap.insert(image.content_hash, *hash);
            image.content_hash = *hash;
            image.hash_source = *source;
        }
    }
    if !remap.is_empty() {
        for variant in &mut product.variants {
            for hash in &mut variant.image_hashes {
                if let Some(new) = remap.get(hash) {
                    *hash = *new;
                }
            }
        }
    }
    product
}

fn record_kind(kind: ScanKind) -> RecordKind {
    match kind {
        ScanKind::Products => RecordKind::Product,
        ScanKind::Orders => RecordKind::Order,
    }
}

/// Errors a repeated transaction may not meet (a busy SQLite file, a PostgreSQL deadlock or
/// serialisation failure, a dropped connection).
fn transient_store_error(e: &StoreError) -> bool {
    !matches!(
        e,
        StoreError::Corrupt { .. }
            | StoreError::Invalid { .. }
            | StoreError::Migrate(_)
            | StoreError::NotFound { .. }
            | StoreError::UnknownConnection { .. }
    )
}
