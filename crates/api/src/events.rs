//! `GET /api/v1/events`: server-sent events for the console. The store is the truth (any
//! process may be running the jobs), so each stream looks at it every
//! [`crate::ApiConfig::events_interval`] and sends what changed:
//! - `job`: a run of the account queued, progressing or finished (a [`JobView`]); a run that
//!   started and ended between two looks is reported too, finished;
//! - `connections`: per connection its queued changes, open issues, pause and last fetch and
//!   send, whenever any of them changed;
//! - `issue`: an issue raised since the stream began (an [`IssueView`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tidemark_core::{AccountId, IssueId, JobRunId};
use tidemark_store::{IssueFilter, JobRunFilter};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Caller;
use crate::routes::connections::active_runs;
use crate::state::Api;
use crate::views::{IssueView, JobView, QueuedChanges};

/// Live job progress, queued-change counts and new issues, as `text/event-stream`.
#[utoipa::path(get, path = "/events", tag = "events",
    responses(
        (status = 200, description = "An event stream: `job`, `connections` and `issue` events with JSON data", content_type = "text/event-stream", body = String),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn events(
    State(api): State<Api>,
    caller: Caller,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let watch = Watch {
        api,
        account: caller.account,
        jobs: HashMap::new(),
        active: HashSet::new(),
        connections: None,
        last_issue: None,
        out: VecDeque::new(),
        first: true,
        looked: false,
    };
    let stream = futures::stream::unfold(watch, |mut watch| async move {
        loop {
            if let Some(event) = watch.out.pop_front() {
                return Some((Ok(event), watch));
            }
            if !watch.first {
                tokio::time::sleep(watch.api.config().events_interval).await;
            }
            watch.first = false;
            if let Err(error) = watch.look().await {
                tracing::warn!(error = %error.message, "events: the store did not answer; trying again");
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// How many of the newest runs each look reads besides the active ones, so a run that started
/// and finished between two looks is still reported.
const RECENT_RUNS: i64 = 50;

struct Watch {
    api: Api,
    account: AccountId,
    /// The JSON last sent (or, at the first look, seen) for each run still followed.
    jobs: HashMap<i64, String>,
    /// Runs queued or running at the last look.
    active: HashSet<i64>,
    connections: Option<String>,
    last_issue: Option<i64>,
    out: VecDeque<Event>,
    first: bool,
    /// Whether a look has set the baseline of runs.
    looked: bool,
}

impl Watch {
    fn send(&mut self, name: &str, data: String) {
        self.out.push_back(Event::default().event(name).data(data));
    }

    async fn look(&mut self) -> Result<(), ApiError> {
        let store = self.api.store().clone();
        let account = self.account;
        let first = !self.looked;
        let mut runs = active_runs(&self.api, account).await?;
        let now_active: HashSet<i64> = runs.iter().map(|r| r.id).collect();
        let recent = store
            .list_job_runs(
                account,
                &JobRunFilter {
                    limit: RECENT_RUNS,
                    ..JobRunFilter::default()
                },
            )
            .await?;
        runs.extend(
            recent
                .iter()
                .filter(|r| !now_active.contains(&r.id.0))
                .map(JobView::from),
        );
        // Runs that left the active set beyond the newest ones: their final state, once.
        for id in self.active.difference(&now_active) {
            if !runs.iter().any(|r| r.id == *id)
                && let Some(run) = store.get_account_job_run(account, JobRunId(*id)).await?
            {
                runs.push(JobView::from(&run));
            }
        }
        runs.sort_by_key(|r| r.id);
        let mut followed = HashMap::with_capacity(runs.len());
        for run in runs {
            let json = serde_json::to_string(&run).unwrap_or_default();
            let finished_before = first && !now_active.contains(&run.id);
            // History that had finished before the stream began is not news.
            if self.jobs.get(&run.id) != Some(&json) && !finished_before {
                self.send("job", json.clone());
            }
            followed.insert(run.id, json);
        }
        self.jobs = followed;
        self.active = now_active;
        self.looked = true;

        let connections = store.list_connections(account).await?;
        let pending = store.pending_counts_by_connection(account).await?;
        let issues = store.open_issue_counts(account).await?;
        let summary: Vec<serde_json::Value> = connections
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.id.0,
                    "paused": c.paused,
                    "queued_changes": QueuedChanges::from(pending.get(&c.id).cloned().unwrap_or_default()),
                    "open_issues": issues.get(&c.id).copied().unwrap_or(0),
                    "last_fetch_at": c.last_fetch_at.map(|t| t.0),
                    "last_send_at": c.last_send_at.map(|t| t.0),
                })
            })
            .collect();
        let json = serde_json::Value::Array(summary).to_string();
        if self.connections.as_ref() != Some(&json) {
            self.connections = Some(json.clone());
            self.send("connections", json);
        }

        let newest = store
            .list_issues(
                account,
                &IssueFilter {
                    connection: None,
                    record: None,
                    open_only: true,
                    before: None::<IssueId>,
                    limit: 50,
                },
            )
            .await?;
        let top = newest.first().map(|i| i.id.0).unwrap_or(0);
        match self.last_issue {
            None => self.last_issue = Some(top),
            Some(last) => {
                for issue in newest.iter().rev().filter(|i| i.id.0 > last) {
                    let json = serde_json::to_string(&IssueView::from(issue)).unwrap_or_default();
                    self.send("issue", json);
                }
                self.last_issue = Some(last.max(top));
            }
        }
        Ok(())
    }
}
