//! Sync (DESIGN §4 "Sync"): fetch and send of one connection together. The send starts at once
//! and keeps draining what becomes due — including what the fetch plans for this connection —
//! until the fetch has finished and a pass that began after it found nothing left to send.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tidemark_core::ConnectionId;

use async_trait::async_trait;

use crate::control::{Counts, RunControl, StopReason};
use crate::fetch::{FetchCheckpoint, FetchReport, FetchRequest};
use crate::send::SendReport;
use crate::{Engine, EngineError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub fetch: FetchReport,
    pub send: SendReport,
}

impl SyncReport {
    pub fn counts(&self) -> Counts {
        let mut counts = self.fetch.counts.clone();
        counts.add(&self.send.counts);
        counts
    }
}

/// Pause between send passes while the fetch runs.
const SEND_PASS_INTERVAL: Duration = Duration::from_millis(250);

impl Engine {
    /// Fetch and send of one connection at once (module docs). A fetch failure ends the sync
    /// with that error once the send has drained what was due; a send failure ends it too.
    pub async fn sync(
        &self,
        connection: ConnectionId,
        request: &FetchRequest,
        resume: Option<FetchCheckpoint>,
        control: &dyn RunControl,
    ) -> Result<SyncReport, EngineError> {
        let fetch_done = AtomicBool::new(false);
        let shared = SyncControl {
            inner: control,
            state: tokio::sync::Mutex::new(SyncProgress {
                fetch: resume
                    .as_ref()
                    .map(|r| r.counts.clone())
                    .unwrap_or_default(),
                send: Counts::default(),
                checkpoint: match &resume {
                    Some(r) => serde_json::to_value(r).map_err(|e| {
                        EngineError::Internal(format!("cannot save a checkpoint: {e}"))
                    })?,
                    None => serde_json::Value::Null,
                },
            }),
        };
        let fetch = async {
            let part = Part {
                sync: &shared,
                send_base: None,
            };
            let result = self.fetch(connection, request, resume, &part).await;
            fetch_done.store(true, Ordering::SeqCst);
            result
        };
        let send = async {
            let mut total = SendReport::default();
            loop {
                // Read before the pass: a pass that starts after the fetch ended sees every row
                // the fetch wrote.
                let finished = fetch_done.load(Ordering::SeqCst);
                let part = Part {
                    sync: &shared,
                    send_base: Some(total.counts.clone()),
                };
                let pass = self.send(connection, &part).await?;
                total.counts.add(&pass.counts);
                if finished {
                    return Ok::<_, EngineError>(total);
                }
                tokio::time::sleep(SEND_PASS_INTERVAL).await;
            }
        };
        let (fetched, sent) = tokio::join!(fetch, send);
        Ok(SyncReport {
            fetch: fetched?,
            send: sent?,
        })
    }
}

/// The one control a sync's fetch and send report through: the run's counts are the sum of
/// both parts', and its checkpoint is the fetch's (a send needs none: it resumes from the
/// pending rows themselves). Checkpoints reach the run's control one at a time, in order.
struct SyncControl<'a> {
    inner: &'a dyn RunControl,
    state: tokio::sync::Mutex<SyncProgress>,
}

struct SyncProgress {
    fetch: Counts,
    send: Counts,
    checkpoint: serde_json::Value,
}

/// One part's view of the sync's control.
struct Part<'a> {
    sync: &'a SyncControl<'a>,
    /// For a send pass, what the passes before it counted; `None` for the fetch.
    send_base: Option<Counts>,
}

#[async_trait]
impl RunControl for Part<'_> {
    async fn checkpoint(
        &self,
        counts: &Counts,
        checkpoint: &serde_json::Value,
    ) -> Result<(), StopReason> {
        let mut state = self.sync.state.lock().await;
        match &self.send_base {
            None => {
                state.fetch = counts.clone();
                state.checkpoint = checkpoint.clone();
            }
            Some(base) => {
                let mut send = base.clone();
                send.add(counts);
                state.send = send;
            }
        }
        let mut total = state.fetch.clone();
        total.add(&state.send);
        self.sync.inner.checkpoint(&total, &state.checkpoint).await
    }
}
