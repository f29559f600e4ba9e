//! Records the store hands out besides those of the core model: accounts, tokens, job runs,
//! pages of set results, and the arguments of the write methods.

use serde::{Deserialize, Serialize};
use tidemark_core::{
    AccountId, ConnectionId, ConnectionSettings, ContentHash, Currency, ExternalId, IssueId,
    JobRunId, OrderId, OrderStatus, PaymentStatus, PendingChange, PlatformKind, ProductId,
    ProductStatus, RecordRef, Severity, Sku, Timestamp,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub created_at: Timestamp,
}

/// An API token as stored: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub account: AccountId,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// A canonical record with the revision it was read at. Updates name the revision they
/// were computed from and are refused (`Conflict { kind: StaleRecord }`) when another writer
/// changed the record since: the caller re-reads and re-applies. Derefs to the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned<T> {
    pub record: T,
    pub revision: i64,
}

impl<T> Versioned<T> {
    pub fn into_inner(self) -> T {
        self.record
    }
}

impl<T> std::ops::Deref for Versioned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.record
    }
}

impl<T> std::ops::DerefMut for Versioned<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.record
    }
}

/// A freshly created token: the plaintext is shown once and never stored. Its `Debug`
/// leaves the plaintext out.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub token: ApiToken,
    pub plaintext: String,
}

impl std::fmt::Debug for NewApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiToken")
            .field("token", &self.token)
            .field("plaintext", &"<redacted>")
            .finish()
    }
}

/// What creating a connection needs. Its `Debug` shows only the length of the credentials
/// ciphertext.
#[derive(Clone, PartialEq)]
pub struct NewConnection {
    pub account: AccountId,
    pub platform: PlatformKind,
    pub name: String,
    pub settings: ConnectionSettings,
    pub platform_settings: serde_json::Value,
    /// Ciphertext; the store never sees plaintext credentials.
    pub credentials: Option<Vec<u8>>,
}

impl std::fmt::Debug for NewConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewConnection")
            .field("account", &self.account)
            .field("platform", &self.platform)
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("platform_settings", &self.platform_settings)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|c| format!("<{} bytes redacted>", c.len())),
            )
            .finish()
    }
}

/// A partial update of a connection; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionPatch {
    pub name: Option<String>,
    pub settings: Option<ConnectionSettings>,
    pub platform_settings: Option<serde_json::Value>,
}

/// One page of a keyset-paginated listing: `next` is the cursor of the following page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// What the set search bar can complete, besides connection names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetVocabulary {
    pub brands: Vec<String>,
    pub categories: Vec<String>,
    pub colors: Vec<String>,
    pub sizes: Vec<String>,
}

/// A product row for the browser; the full record is [`crate::Store::get_product`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSummary {
    pub id: ProductId,
    pub sku: Option<Sku>,
    pub title: String,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub status: ProductStatus,
    pub content_hash: ContentHash,
    pub updated_at: Timestamp,
}

/// An order row for the browser; the full record is [`crate::Store::get_order`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub id: OrderId,
    pub origin: ConnectionId,
    pub number: String,
    pub placed_at: Timestamp,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub currency: Currency,
    pub total: rust_decimal::Decimal,
    pub updated_at: Timestamp,
}

/// A pending change with the revision that [`crate::Store::remove_pending_change`] checks, so
/// that a row merged with new fields while a send was in flight is not deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRow {
    pub change: PendingChange,
    pub revision: i64,
}

/// What [`crate::Store::complete_pending_insert`] did with an insert row whose create
/// succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InsertCompletion {
    /// Nothing merged into it since it was read: removed.
    Removed,
    /// A change merged into it while the create was in flight: it is now an update of every
    /// field of the record, due at once.
    ConvertedToUpdate(PendingRow),
    /// It is already an update (an earlier completion or an enqueue converted it): kept as is.
    Kept(PendingRow),
    /// No such row any more.
    Gone,
}

/// Pending rows of one connection by operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCounts {
    pub inserts: i64,
    pub updates: i64,
    pub image_deletes: i64,
}

impl PendingCounts {
    pub fn total(&self) -> i64 {
        self.inserts + self.updates + self.image_deletes
    }
}

/// An issue to raise; an open issue with the same (connection, record, code) is bumped.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIssue {
    pub connection: ConnectionId,
    pub record: Option<RecordRef>,
    pub external_id: Option<ExternalId>,
    pub severity: Severity,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    pub payload: serde_json::Value,
}

/// Which issues to list (always within one account).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueFilter {
    pub connection: Option<ConnectionId>,
    pub record: Option<RecordRef>,
    /// Only unresolved issues.
    pub open_only: bool,
    /// Keyset cursor: issues with a smaller id than this (newest first).
    pub before: Option<IssueId>,
    pub limit: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Fetch,
    Send,
    Sync,
    IntegrityFix,
}

impl JobKind {
    pub const ALL: [JobKind; 4] = [
        JobKind::Fetch,
        JobKind::Send,
        JobKind::Sync,
        JobKind::IntegrityFix,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Fetch => "fetch",
            JobKind::Send => "send",
            JobKind::Sync => "sync",
            JobKind::IntegrityFix => "integrity_fix",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Succeeded, failed or cancelled: nothing more happens to the run.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A row of `job_runs`: the truth about a job; the queue message only carries its id.
/// `scope`, `progress`, `counts` and `checkpoint` are JSON whose shape the engine owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    pub id: JobRunId,
    pub connection: ConnectionId,
    pub kind: JobKind,
    pub scope: serde_json::Value,
    /// Who or what asked for it: `user`, `schedule`, `webhook`, `auto_send`, `reconciler`…
    pub trigger: String,
    pub state: JobState,
    pub progress: serde_json::Value,
    pub counts: serde_json::Value,
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_attempt_at: Timestamp,
    pub lease_owner: Option<String>,
    pub checkpoint: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub heartbeat_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewJobRun {
    pub connection: ConnectionId,
    pub kind: JobKind,
    pub scope: serde_json::Value,
    pub trigger: String,
    pub max_attempts: u32,
}

/// What [`crate::Store::requeue_stale_job_runs`] did with runs whose worker died.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleJobRuns {
    /// Back to queued, due now (the reconciler enqueues them again).
    pub requeued: Vec<JobRunId>,
    /// Attempts used up: failed, with an error.
    pub failed: Vec<JobRunId>,
}

/// Which job runs to list (always within one account), newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRunFilter {
    pub connection: Option<ConnectionId>,
    pub kind: Option<JobKind>,
    /// Any of these states; empty means all.
    pub states: Vec<JobState>,
    pub before: Option<JobRunId>,
    pub limit: i64,
}

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub connection: ConnectionId,
    pub kind: String,
    pub owner: String,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The answer of [`crate::Store::start_cooldown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cooldown", rename_all = "snake_case")]
pub enum Cooldown {
    /// No cooldown was running: one now runs until `until`; go ahead.
    Started { until: Timestamp },
    /// A cooldown runs until `until`; refuse and say how long is left.
    Active { until: Timestamp },
}

/// A record seen on a platform that has no canonical counterpart: the connection does not
/// absorb new records and nothing canonical matched it by SKU or barcode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlinkedRecord {
    pub connection: ConnectionId,
    pub kind: tidemark_core::ScanKind,
    pub external_id: ExternalId,
    pub sku: Option<String>,
    pub title: String,
    pub platform_updated_at: Option<Timestamp>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// A canonical record its merchant deleted on one platform: tidemark does not create it there
/// again on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformDeletion {
    pub connection: ConnectionId,
    pub kind: tidemark_core::RecordKind,
    pub internal_id: i64,
    pub external_id: ExternalId,
    pub deleted_at: Timestamp,
}

/// A connection's scan schedule (table `schedules`): a periodic fetch every
/// `fetch_interval_ms` and a full scan per `full_scan_cron` (kept as text; the scheduler
/// parses it), with when each is next due. `None` means that scan is not scheduled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub connection: ConnectionId,
    pub fetch_interval_ms: Option<i64>,
    pub full_scan_cron: Option<String>,
    pub next_fetch_at: Option<Timestamp>,
    pub next_full_scan_at: Option<Timestamp>,
    /// When the schedule was last set (claims do not change it).
    pub updated_at: Timestamp,
}

/// Which scan of a [`Schedule`] is due or claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduledScan {
    /// The periodic fetch (`next_fetch_at`).
    Fetch,
    /// The full scan (`next_full_scan_at`).
    FullScan,
}

impl ScheduledScan {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduledScan::Fetch => "fetch",
            ScheduledScan::FullScan => "full_scan",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "fetch" => Some(ScheduledScan::Fetch),
            "full_scan" => Some(ScheduledScan::FullScan),
            _ => None,
        }
    }
}
