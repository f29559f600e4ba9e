//! The reconciler, on every daemon, every few seconds: what the queue forgot is sent again
//! (DESIGN §2). Runs whose worker died (heartbeat stale) go back to queued; queued, due runs
//! that no message will bring are sent again; connections with due pending changes and
//! auto-send but no send queued get one; old queue entries and history are pruned.

use std::collections::BTreeMap;
use std::time::Duration;

use tidemark_core::{ConnectionId, Timestamp};
use tidemark_store::JobKind;

use crate::{Jobs, JobsError};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcilePass {
    /// Runs whose worker stopped heartbeating, queued again.
    pub stale_requeued: u64,
    /// Of those, runs that had used up their attempts: failed.
    pub stale_failed: u64,
    /// Queued runs sent to the queue again because it had lost them.
    pub resent: u64,
    /// Sends queued for connections owed one.
    pub sends_queued: u64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One pass of the reconciler.
pub async fn reconcile_pass(jobs: &Jobs) -> Result<ReconcilePass, JobsError> {
    let store = jobs.store();
    let config = jobs.config();
    let now = jobs.now();
    let mut pass = ReconcilePass::default();

    let stale = store
        .requeue_stale_job_runs(
            Timestamp(now.0.saturating_sub(millis(config.stale_after()))),
            now,
        )
        .await?;
    pass.stale_requeued = stale.requeued.len() as u64;
    pass.stale_failed = stale.failed.len() as u64;
    if !stale.requeued.is_empty() {
        tracing::warn!(runs = ?stale.requeued, "runs of a dead worker queued again");
        jobs.queue().push_many(&stale.requeued).await?;
    }

    // Queued runs due for a while that no worker took: either the queue is busy (it holds at
    // least as many messages) or it lost them (flushed, or a push failed).
    let due_before = Timestamp(now.0.saturating_sub(millis(config.requeue_grace)));
    let mut paused: BTreeMap<ConnectionId, bool> = BTreeMap::new();
    let mut waiting = Vec::new();
    for run in store.due_job_runs(due_before, 5_000).await? {
        let is_paused = match paused.get(&run.connection) {
            Some(p) => *p,
            None => {
                let p = store
                    .load_connection(run.connection)
                    .await?
                    .is_none_or(|c| c.paused);
                paused.insert(run.connection, p);
                p
            }
        };
        if !is_paused && !stale.requeued.contains(&run.id) {
            waiting.push(run.id);
        }
    }
    if !waiting.is_empty() {
        let backlog = jobs.queue().backlog().await?;
        if backlog < waiting.len() as u64 {
            tracing::warn!(
                waiting = waiting.len(),
                backlog,
                "the queue lost messages; sending the waiting runs again"
            );
            jobs.queue().push_many(&waiting).await?;
            pass.resent = waiting.len() as u64;
        }
    }

    for id in store.connections_with_due_changes(now).await? {
        let Some(connection) = store.load_connection(id).await? else {
            continue;
        };
        if !connection.settings.auto_send || connection.paused {
            continue;
        }
        if store.active_job_run(id, JobKind::Send).await?.is_some()
            || store.active_job_run(id, JobKind::Sync).await?.is_some()
        {
            continue;
        }
        let submitted = jobs.send(connection.account, id, "reconciler").await?;
        if submitted.created {
            pass.sends_queued += 1;
        }
    }
    Ok(pass)
}

/// How long a webhook delivery id is remembered, so a repeat of it causes no work: longer
/// than Shopify's 48-hour retry window. The webhook endpoint refuses signed deliveries older
/// than this, so a replay cannot outlive its id.
pub const WEBHOOK_DELIVERY_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Housekeeping: finished queue entries, old history and forgotten webhook deliveries.
pub async fn prune(jobs: &Jobs) -> Result<(u64, u64), JobsError> {
    let config = jobs.config();
    let entries = jobs.queue().prune(config.prune_after).await?;
    let now = jobs.now().0;
    let before = Timestamp(now.saturating_sub(millis(config.history)));
    let runs = jobs.store().prune_job_runs(before).await?;
    let deliveries = Timestamp(now.saturating_sub(millis(WEBHOOK_DELIVERY_RETENTION)));
    jobs.store().prune_webhook_deliveries(deliveries).await?;
    Ok((entries, runs))
}
