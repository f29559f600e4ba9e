//! What the API answers with, and what it accepts. Times are milliseconds since the Unix
//! epoch (UTC), like everywhere in tidemark; ids are numbers, platform ids are text.
//! Credentials appear only in request bodies, never in a view.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tidemark_core::{Connection, Issue, PendingOp, RecordRef};
use tidemark_store::{JobRun, PendingCounts, Schedule};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::Body;

/// Changes queued for a connection (its outbox), by operation.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct QueuedChanges {
    pub inserts: i64,
    pub updates: i64,
    pub image_deletes: i64,
    pub total: i64,
}

impl From<PendingCounts> for QueuedChanges {
    fn from(c: PendingCounts) -> Self {
        Self {
            total: c.total(),
            inserts: c.inserts,
            updates: c.updates,
            image_deletes: c.image_deletes,
        }
    }
}

/// One job run: what it is, where it stands, what it did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    pub connection: i64,
    /// fetch, send, sync or integrity_fix.
    pub kind: String,
    /// What the run covers (for a fetch: incremental, full, a window, one record).
    #[schema(value_type = Object)]
    pub scope: serde_json::Value,
    /// Who asked: user, schedule, webhook, auto_send, reconciler.
    pub trigger: String,
    /// queued, running, succeeded, failed or cancelled.
    pub state: String,
    /// Records scanned and sent so far, and the total when the platform says.
    #[schema(value_type = Object)]
    pub progress: serde_json::Value,
    /// The engine's counts: new, changed, unchanged, inserted, updated, …
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_attempt_at: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl From<&JobRun> for JobView {
    fn from(run: &JobRun) -> Self {
        Self {
            id: run.id.0,
            connection: run.connection.0,
            kind: run.kind.as_str().to_owned(),
            scope: run.scope.clone(),
            trigger: run.trigger.clone(),
            state: run.state.as_str().to_owned(),
            progress: run.progress.clone(),
            counts: run.counts.clone(),
            attempts: run.attempts,
            max_attempts: run.max_attempts,
            next_attempt_at: run.next_attempt_at.0,
            error: run.error.clone(),
            created_at: run.created_at.0,
            started_at: run.started_at.map(|t| t.0),
            finished_at: run.finished_at.map(|t| t.0),
        }
    }
}

/// A job asked for: 202 with the run that will do it. `created` is false when an equal run
/// was already waiting (asking twice does not stack work).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Accepted {
    pub job: JobView,
    pub created: bool,
}

/// When a connection's scans are due.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleView {
    pub fetch_interval_ms: Option<i64>,
    pub full_scan_cron: Option<String>,
    pub next_fetch_at: Option<i64>,
    pub next_full_scan_at: Option<i64>,
}

impl From<&Schedule> for ScheduleView {
    fn from(s: &Schedule) -> Self {
        Self {
            fetch_interval_ms: s.fetch_interval_ms,
            full_scan_cron: s.full_scan_cron.clone(),
            next_fetch_at: s.next_fetch_at.map(|t| t.0),
            next_full_scan_at: s.next_full_scan_at.map(|t| t.0),
        }
    }
}

/// A connection as the console shows it. Never its credentials: only whether it has some.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectionView {
    pub id: i64,
    pub name: String,
    /// shopify, woocommerce, mercadolibre or csv.
    pub platform: String,
    /// paused, running (a job is running), queued (a job waits) or idle.
    pub state: String,
    pub paused: bool,
    pub queued_changes: QueuedChanges,
    pub open_issues: i64,
    pub last_fetch_at: Option<i64>,
    pub last_send_at: Option<i64>,
    /// The high-water line per scan kind (products, orders).
    pub clocks: BTreeMap<String, i64>,
    /// The common settings (field policies, margins, currency, categories, schedule, …).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// The platform's own settings (shop URL, site, API version, …).
    #[schema(value_type = Object)]
    pub platform_settings: serde_json::Value,
    pub has_credentials: bool,
    /// Runs queued or running, oldest first.
    pub jobs: Vec<JobView>,
    pub schedule: Option<ScheduleView>,
    pub created_at: i64,
}

impl ConnectionView {
    pub fn new(
        connection: &Connection,
        queued: PendingCounts,
        open_issues: i64,
        has_credentials: bool,
        mut jobs: Vec<JobView>,
        schedule: Option<&Schedule>,
    ) -> Self {
        jobs.sort_by_key(|j| j.id);
        let state = if connection.paused {
            "paused"
        } else if jobs.iter().any(|j| j.state == "running") {
            "running"
        } else if jobs.is_empty() {
            "idle"
        } else {
            "queued"
        };
        Self {
            id: connection.id.0,
            name: connection.name.clone(),
            platform: connection.platform.as_str().to_owned(),
            state: state.to_owned(),
            paused: connection.paused,
            queued_changes: queued.into(),
            open_issues,
            last_fetch_at: connection.last_fetch_at.map(|t| t.0),
            last_send_at: connection.last_send_at.map(|t| t.0),
            clocks: connection
                .clocks
                .iter()
                .map(|(k, t)| (k.as_str().to_owned(), t.0))
                .collect(),
            settings: serde_json::to_value(&connection.settings).unwrap_or_default(),
            platform_settings: connection.platform_settings.clone(),
            has_credentials,
            jobs,
            schedule: schedule.map(ScheduleView::from),
            created_at: connection.created_at.0,
        }
    }
}

/// A new connection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    pub name: String,
    /// shopify, woocommerce, mercadolibre or csv.
    pub platform: String,
    /// The platform's credentials (write-only: sealed at once, never returned or logged).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub credentials: serde_json::Value,
    /// Common settings; absent keys take their defaults.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// The platform's own settings (shop_url, base_url, site_id, …).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub platform_settings: serde_json::Value,
}

impl Body for CreateConnection {}

/// A change to a connection. `settings` and `platform_settings` are merge patches (RFC 7396):
/// the keys given replace the stored ones, `null` removes one. `credentials` replaces the
/// stored credentials whole (re-authentication).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchConnection {
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub platform_settings: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<serde_json::Value>,
}

impl Body for PatchConnection {}

/// Which records a fetch (or a sync's fetch) reads.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FetchScopeName {
    /// What changed since the clock (a full scan when there is none yet).
    #[default]
    Incremental,
    /// Everything, with deletion detection.
    Full,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchBody {
    #[serde(default)]
    pub scope: FetchScopeName,
    /// products, orders; empty or absent for every kind the platform has.
    #[serde(default)]
    pub kinds: Vec<String>,
}

impl Body for FetchBody {
    fn when_empty() -> Option<Self> {
        Some(Self::default())
    }
}

/// A send takes no parameters; an empty body or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

impl Body for EmptyBody {
    fn when_empty() -> Option<Self> {
        Some(Self {})
    }
}

/// A manual resync: a window of recent changes, or one record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResyncBody {
    /// today, 1d, 7d, 30d or 60d (at most once an hour per connection).
    pub window: Option<String>,
    /// One record (at most once every five minutes per record).
    pub record: Option<ResyncRecord>,
}

impl Body for ResyncBody {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResyncRecord {
    /// products or orders.
    pub kind: String,
    /// The record's id on the platform.
    pub external_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetClocksBody {
    /// products, orders; the next fetch of each is a full scan.
    pub kinds: Vec<String>,
}

impl Body for ResetClocksBody {}

/// A page of a listing; `next` is the cursor of the following page, absent on the last.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// An issue: a problem on one record of one connection, in the platform's own words.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssueView {
    pub id: i64,
    pub connection: i64,
    /// product or order, with `record_id`.
    pub record_kind: Option<String>,
    pub record_id: Option<i64>,
    pub external_id: Option<String>,
    /// alert, warning or notice.
    pub severity: String,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    /// The platform's answer as received.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub first_seen: i64,
    pub last_seen: i64,
    pub count: u32,
    pub resolved_at: Option<i64>,
}

pub fn record_parts(record: Option<RecordRef>) -> (Option<String>, Option<i64>) {
    match record {
        Some(RecordRef::Product(id)) => (Some("product".into()), Some(id.0)),
        Some(RecordRef::Order(id)) => (Some("order".into()), Some(id.0)),
        None => (None, None),
    }
}

impl From<&Issue> for IssueView {
    fn from(issue: &Issue) -> Self {
        let (record_kind, record_id) = record_parts(issue.record);
        Self {
            id: issue.id.0,
            connection: issue.connection.0,
            record_kind,
            record_id,
            external_id: issue.external_id.as_ref().map(|e| e.as_str().to_owned()),
            severity: issue.severity.as_str().to_owned(),
            code: issue.code.clone(),
            message: issue.message.clone(),
            field: issue.field.clone(),
            payload: issue.payload.clone(),
            first_seen: issue.first_seen.0,
            last_seen: issue.last_seen.0,
            count: issue.count,
            resolved_at: issue.resolved_at.map(|t| t.0),
        }
    }
}

/// A record's state on one connection. The console colours: `synced` neutral, `insert`
/// green, `update` yellow, `image_delete` red; `unbound` when the record is not on it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordState {
    pub connection: i64,
    /// synced, insert, update, image_delete or unbound.
    pub state: String,
    /// The record's id on the platform, when bound.
    pub external_id: Option<String>,
    /// For an update: the fields it writes.
    pub fields: Vec<String>,
}

/// The state of a record from its binding and its queued rows on one connection.
pub fn record_state(
    connection: i64,
    external_id: Option<String>,
    ops: &[&PendingOp],
) -> RecordState {
    let mut fields: Vec<String> = Vec::new();
    let mut state = if external_id.is_some() {
        "synced"
    } else {
        "unbound"
    };
    for op in ops {
        match op {
            PendingOp::Insert => state = "insert",
            PendingOp::Update { fields: f } => {
                if state != "insert" {
                    state = "update";
                }
                fields.extend(f.iter().map(|f| f.as_str().to_owned()));
            }
            PendingOp::ImageDelete { .. } => {
                if state == "synced" || state == "unbound" {
                    state = "image_delete";
                }
                fields.push("images".to_owned());
            }
        }
    }
    fields.sort();
    fields.dedup();
    RecordState {
        connection,
        state: state.to_owned(),
        external_id,
        fields,
    }
}

/// A product in the browser's list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProductRow {
    pub id: i64,
    pub sku: Option<String>,
    pub title: String,
    pub brand: Option<String>,
    pub category: Option<String>,
    /// active, draft, archived or paused.
    pub status: String,
    pub updated_at: i64,
    /// Its state on each of the account's connections.
    pub connections: Vec<RecordState>,
}

/// An order in the browser's list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderRow {
    pub id: i64,
    pub origin: i64,
    pub number: String,
    pub placed_at: i64,
    pub status: String,
    pub payment_status: String,
    pub currency: String,
    /// A decimal, as text (never a float).
    pub total: String,
    pub updated_at: i64,
    pub connections: Vec<RecordState>,
}

/// A record's state on one connection, down to fields, variants and images.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordDetailState {
    pub connection: i64,
    pub connection_name: String,
    pub platform: String,
    /// synced, insert, update, image_delete or unbound.
    pub state: String,
    pub external_id: Option<String>,
    /// Field → insert or update, for the fields a queued change writes.
    pub fields: BTreeMap<String, String>,
    /// Variants (by SKU, else by options) → insert, update or image_delete.
    pub variants: BTreeMap<String, String>,
    /// Images (by content hash) → insert or image_delete.
    pub images: BTreeMap<String, String>,
    /// When the platform last changed the record, as tidemark saw it.
    pub platform_updated_at: Option<i64>,
}

/// A canonical record with its state everywhere.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordDetail {
    pub id: i64,
    pub revision: i64,
    /// The canonical record (title, description, variants, images, … or an order's lines).
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
    pub connections: Vec<RecordDetailState>,
    /// Open issues of the record.
    pub issues: Vec<IssueView>,
}

/// One autocomplete suggestion for the set search bar.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuggestionView {
    /// The phrase to put in the bar (ends with a space when a value is still to be typed).
    pub phrase: String,
    pub label: String,
}

/// A connection's counts and history (the Stats dialog).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatsView {
    pub connection: i64,
    /// Records bound on this connection, by kind.
    pub bound: BTreeMap<String, i64>,
    pub queued_changes: QueuedChanges,
    /// Open issues by severity.
    pub open_issues: BTreeMap<String, i64>,
    /// Runs in the history by state.
    pub jobs_by_state: BTreeMap<String, i64>,
    /// The latest runs, newest first.
    pub history: Vec<JobView>,
    /// The latest open issues, newest first.
    pub issues: Vec<IssueView>,
}

/// Issues that share a platform, a code and a message pattern, and what fixes them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssueGroupView {
    pub platform: String,
    pub code: String,
    pub pattern: String,
    pub example: String,
    pub severity: String,
    pub issues: u64,
    pub occurrences: u64,
    pub connections: Vec<GroupConnection>,
    /// Example records (kind and id).
    pub records: Vec<RecordLink>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub advice: String,
}

/// A connection a group touches, with the sets that list its affected records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupConnection {
    pub id: i64,
    pub name: String,
    /// Set phrases for the product or order browser ("on Woo", "with issues").
    pub sets: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordLink {
    pub kind: String,
    pub id: i64,
}

/// The account the token belongs to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    pub id: i64,
    pub name: String,
}

/// The answer to a webhook delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// queued (a fetch of the record), duplicate (already acted on), ignored (a topic
    /// tidemark does not act on) or accepted (a hint being queued).
    pub status: String,
    pub job: Option<i64>,
}

/// Parses a listing's `limit` (1–200, `default` when absent) and `cursor` (the id a previous
/// page's `next` named).
pub fn paging(
    limit: Option<i64>,
    cursor: Option<&str>,
    default: i64,
) -> ApiResult<(i64, Option<i64>)> {
    let limit = limit.unwrap_or(default);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and 200, not {limit}"),
        ));
    }
    let cursor = cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                ApiError::bad_request("invalid_cursor", "the cursor is not one this API gave")
            })
        })
        .transpose()?;
    Ok((limit, cursor))
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` items read (one more than shown tells that more follow);
    /// `next` is the id of the last item shown.
    pub fn of(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Self {
        let more = items.len() as i64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(0));
        let next = if more {
            items.last().map(|item| id(item).to_string())
        } else {
            None
        };
        Self { items, next }
    }
}
