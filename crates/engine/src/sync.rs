//! Sync (DESIGN §4 "Sync"): fetch and send of one connection together. The send starts at once
//! and keeps draining what becomes due — including what the fetch plans for this connection —
//! until the fetch has finished and a pass that began after it found nothing left to send.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tidemark_core::ConnectionId;

use crate::control::{Counts, RunControl};
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
        let fetch = async {
            let result = self.fetch(connection, request, resume, control).await;
            fetch_done.store(true, Ordering::SeqCst);
            result
        };
        let send = async {
            let mut total = SendReport::default();
            loop {
                // Read before the pass: a pass that starts after the fetch ended sees every row
                // the fetch wrote.
                let finished = fetch_done.load(Ordering::SeqCst);
                let pass = self.send(connection, control).await?;
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
