//! HTTP calls: item scans (scan search + multiget), orders, item writes, OAuth refresh.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tidemark_connector::http::{
    ApiRequest, ApiResponse, HttpClient, HttpClientConfig, Idempotency, Rate,
};
use tidemark_connector::{
    Capabilities, Confirmed, Connector, ConnectorError, CredentialSink, Cursor, IncrementalFilter,
    KindCapabilities, ScanPage, ScanScope, SettingsSchema, WebhookEvent, WebhookSupport, Write,
    WriteOp, WriteResult,
};
use tidemark_core::{
    ConnectionId, ExternalId, ExternalRecord, Field, Image, PlatformKind, Product, ScanKind, Sku,
    Timestamp,
};
use tokio::sync::Mutex;
use url::Url;

use crate::config::{Settings, Tokens, schema};
use crate::mapping::{
    self, MlItem, MlOrder, MlShipment, MultigetEntry, attributes_json, combo_json, price_json,
};

/// Item ids per scan page (MercadoLibre allows up to 100 in scan mode).
pub const SCAN_LIMIT: usize = 100;
/// Items per multiget (MercadoLibre's maximum).
pub const MULTIGET_LIMIT: usize = 20;
/// Orders per search page (MercadoLibre's default and maximum).
pub const ORDERS_LIMIT: usize = 50;

/// One MercadoLibre seller account.
pub struct MercadoLibre {
    settings: Settings,
    http: HttpClient,
    /// The current OAuth pair; held across a refresh so two tasks never refresh at once.
    tokens: Mutex<Tokens>,
    connection: ConnectionId,
    sink: Arc<dyn CredentialSink>,
    /// The pair in `tokens` came from a refresh but the sink has not stored it yet: every call
    /// tries to store it again before its request.
    unsaved: std::sync::atomic::AtomicBool,
    /// Creates of this process by SKU: the item id when the answer arrived, or when a create
    /// whose outcome is unknown was sent. The `seller_sku` search lags writes, so it alone
    /// cannot tell a repeated create that the first one happened.
    journal: std::sync::Mutex<std::collections::HashMap<String, Journalled>>,
}

#[derive(Debug, Clone)]
enum Journalled {
    Created(String),
    InDoubt(std::time::Instant),
}

/// SKUs the create journal holds at most (it is cleared when full).
const JOURNAL_MAX: usize = 100_000;

/// Attempts at storing a rotated pair before giving up for this refresh.
const SAVE_ATTEMPTS: u32 = 3;

impl fmt::Debug for MercadoLibre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MercadoLibre")
            .field("settings", &self.settings)
            .field("http", &self.http)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

/// A window scan's position in the newest-first offset search.
#[derive(Debug, Serialize, Deserialize)]
struct WindowCursor {
    window_offset: usize,
}

/// Offset searches stop here (`offset + limit ≤ 1000`).
const SEARCH_OFFSET_CAP: usize = 1_000;

#[derive(Debug, Serialize, Deserialize)]
struct ItemCursor {
    scroll_id: String,
    /// Pages read so far, against `MAX_SCAN_PAGES`.
    #[serde(default)]
    pages: u64,
}

/// A scan that has not ended after this many pages (ten million items at 100 a page) is one
/// whose scroll never empties: it fails instead of running forever.
pub const MAX_SCAN_PAGES: u64 = 100_000;

/// An order scan's position: the window `[lo, hi]` (milliseconds, both inclusive) being paged
/// by `offset`, and where the scan ends (`until`, fixed when it started).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderCursor {
    lo: i64,
    hi: i64,
    until: i64,
    offset: usize,
    /// Ids of the orders the previous page of this window ended with: the next page starts
    /// `ORDER_PAGE_OVERLAP` places early and leaves these out.
    #[serde(default)]
    recent: Vec<String>,
}

/// How many places each order page after the first starts early. Orders are sorted by
/// creation but filtered on the mutable `last_updated`: an order updated during the scan leaves
/// the window and every later one moves a place towards the start, so without an overlap the
/// one at a page boundary would be skipped. Up to this many departures between two pages are
/// absorbed; the ids already returned are dropped.
pub const ORDER_PAGE_OVERLAP: usize = 10;

#[derive(Debug, Deserialize)]
struct Paging {
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ItemSearch {
    #[serde(default)]
    results: Vec<String>,
    #[serde(default)]
    scroll_id: Option<String>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
struct OrderSearch {
    #[serde(default)]
    results: Vec<MlOrder>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
struct MissedFeeds {
    #[serde(default)]
    messages: Vec<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    paging: Option<Paging>,
}

/// `GET /items/{id}/description`: MercadoLibre keeps the description apart from the item.
#[derive(Debug, Deserialize)]
struct MlDescription {
    #[serde(default)]
    plain_text: Option<String>,
}

/// Description reads in flight at once during a scan (each still waits for the pacer).
pub const DESCRIPTION_CONCURRENCY: usize = 4;

/// Runs `futures` concurrently and returns their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Notifications per `/missed_feeds` page (MercadoLibre's default).
pub const MISSED_FEEDS_LIMIT: usize = 10;
/// `/missed_feeds` pages read at most (10,000 notifications; they are kept two days).
pub const MAX_MISSED_FEEDS_PAGES: usize = 1_000;

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
}

/// `2025-06-01T00:00:00.000-00:00`, the form MercadoLibre's order filters take.
pub fn format_since(at: Timestamp) -> String {
    match at.to_datetime() {
        Some(dt) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}-00:00",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        ),
        None => "1970-01-01T00:00:00.000-00:00".to_owned(),
    }
}

/// Answers that are not JSON (cut off on the way) are `Transient`, so reads are retried and
/// writes come back `maybe_applied`.
fn readable(answer: &ApiResponse) -> Result<(), ConnectorError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(&answer.body)
        .map(|_| ())
        .map_err(|e| ConnectorError::transient(format!("answer is not complete JSON: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(answer: &ApiResponse) -> Result<T, ConnectorError> {
    answer.json()
}

impl MercadoLibre {
    pub fn new(
        settings: Settings,
        tokens: Tokens,
        connection: ConnectionId,
        sink: Arc<dyn CredentialSink>,
    ) -> Result<Self, ConnectorError> {
        let base = Url::parse(&settings.base_url).map_err(|e| {
            ConnectorError::fatal(format!(
                "mercadolibre base_url {:?} is not a URL: {e}",
                settings.base_url
            ))
        })?;
        let mut config = HttpClientConfig::new(PlatformKind::Mercadolibre, base);
        config.rate = Some(Rate::per_second(settings.requests_per_second));
        config.redactor.add_secret(&tokens.client_secret);
        config.redactor.add_secret(&tokens.refresh_token);
        let http = HttpClient::new(config)?;
        Ok(Self {
            settings,
            http,
            tokens: Mutex::new(tokens),
            connection,
            sink,
            unsaved: std::sync::atomic::AtomicBool::new(false),
            journal: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Sends a request with the current access token; a 401 refreshes the pair once (under the
    /// lock) and sends it again.
    async fn call(&self, build: impl Fn() -> ApiRequest) -> Result<ApiResponse, ConnectorError> {
        if self.unsaved.load(std::sync::atomic::Ordering::Acquire) {
            let tokens = self.tokens.lock().await;
            if let Err(e) = self.save(&tokens, 1).await {
                tracing::error!(
                    connection = %self.connection,
                    error = %e,
                    "the rotated mercadolibre tokens are still held in memory only"
                );
            }
        }
        let token = self.tokens.lock().await.access_token.clone();
        let request = build().inspect(readable).bearer_auth(&token)?;
        match self.http.send(request).await {
            Err(ConnectorError::Unauthorized { .. }) => {
                let fresh = self.refresh(&token).await?;
                let request = build().inspect(readable).bearer_auth(&fresh)?;
                self.http.send(request).await
            }
            other => other,
        }
    }

    /// Refreshes the OAuth pair unless another task already did since `stale` was read. The
    /// new pair is persisted through the credential sink before anything uses it: the old
    /// refresh token no longer works.
    pub async fn refresh(&self, stale: &str) -> Result<String, ConnectorError> {
        let mut tokens = self.tokens.lock().await;
        if tokens.access_token != stale {
            return Ok(tokens.access_token.clone());
        }
        let request = ApiRequest::post("oauth/token", Idempotency::NonIdempotent)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &self.settings.client_id),
                ("client_secret", &tokens.client_secret),
                ("refresh_token", &tokens.refresh_token),
            ])
            .scrub(&tokens.client_secret)
            .scrub(&tokens.refresh_token)
            .context("access token refresh");
        let answer: TokenAnswer = match self.http.send_json(request).await {
            Ok(answer) => answer,
            Err(ConnectorError::Rejected { code, message, .. }) => {
                return Err(ConnectorError::unauthorized(format!(
                    "mercadolibre refused the refresh token ({code}: {message}); the seller \
                     must authorise tidemark again"
                )));
            }
            Err(other) => return Err(other),
        };
        // The old refresh token is spent: the new pair is kept in memory before anything
        // else can fail, so this process keeps working even if it cannot be stored.
        *tokens = Tokens {
            client_secret: tokens.client_secret.clone(),
            access_token: answer.access_token,
            refresh_token: answer.refresh_token,
        };
        self.unsaved
            .store(true, std::sync::atomic::Ordering::Release);
        self.save(&tokens, SAVE_ATTEMPTS).await.map_err(|e| {
            ConnectorError::transient(format!(
                "mercadolibre rotated the OAuth tokens; the new pair is held in memory and in                  use, but it could not be saved ({e}); it will be saved again before the next                  request, and if this process stops first the seller must authorise tidemark                  again"
            ))
        })?;
        Ok(tokens.access_token.clone())
    }

    /// Stores `tokens` through the sink, trying up to `attempts` times; clears `unsaved` once
    /// stored.
    async fn save(&self, tokens: &Tokens, attempts: u32) -> Result<(), ConnectorError> {
        let mut last = None;
        for attempt in 0..attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(4))).await;
            }
            match self
                .sink
                .save(self.connection, &tokens.to_credentials())
                .await
            {
                Ok(()) => {
                    self.unsaved
                        .store(false, std::sync::atomic::Ordering::Release);
                    return Ok(());
                }
                Err(e) => last = Some(e.context("storing the rotated mercadolibre tokens")),
            }
        }
        Err(last.unwrap_or_else(|| ConnectorError::fatal("no attempt to store the tokens")))
    }

    /// The refresh token in use now (for tests and diagnostics; never logged).
    pub async fn current_tokens(&self) -> Tokens {
        self.tokens.lock().await.clone()
    }

    /// Catch-up after notifications were lost (a topic disabled for answering slower than
    /// 500 ms, the receiver down): every notification of `topic` that MercadoLibre could not
    /// deliver, read from `GET /missed_feeds?app_id=&topic=` (kept two days), as the same
    /// hint-only events `verify_webhook` makes. Messages for another seller or application are
    /// left out. The caller fetches each named record, exactly as for a delivered one.
    pub async fn missed_notifications(
        &self,
        topic: &str,
    ) -> Result<Vec<WebhookEvent>, ConnectorError> {
        let mut events = Vec::new();
        let mut delivered = std::collections::BTreeSet::new();
        let mut offset = 0usize;
        for _ in 0..MAX_MISSED_FEEDS_PAGES {
            let answer = self
                .call(|| {
                    ApiRequest::get("missed_feeds")
                        .query("app_id", &self.settings.client_id)
                        .query("topic", topic)
                        .query("offset", offset)
                        .query("limit", MISSED_FEEDS_LIMIT)
                        .context("missed notifications")
                })
                .await?;
            let page: MissedFeeds = decode(&answer)?;
            let count = page.messages.len();
            let mut new = 0usize;
            for message in &page.messages {
                new += 1;
                match crate::webhook::parse_notification(
                    message.get().as_bytes(),
                    self.settings.user_id,
                    &self.settings.client_id,
                ) {
                    // The same notification twice (a page repeated): counted once.
                    Ok(event) if !delivered.insert(event.delivery_id.clone()) => new -= 1,
                    Ok(event) => events.push(event),
                    Err(ConnectorError::Unauthorized { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            offset = offset.saturating_add(count);
            let total = page.paging.and_then(|p| p.total);
            // The end: an empty page, the total reached, or a page with nothing new (an answer
            // that ignores `offset` would otherwise be read forever).
            if count == 0 || new == 0 || total.is_some_and(|t| offset as u64 >= t) {
                return Ok(events);
            }
        }
        Err(ConnectorError::transient(format!(
            "mercadolibre /missed_feeds for {topic} did not end after {MAX_MISSED_FEEDS_PAGES} \
             pages"
        )))
    }

    fn search_path(&self) -> String {
        format!("users/{}/items/search", self.settings.user_id)
    }

    async fn scan_items(&self, cursor: Option<&Cursor>) -> Result<ScanPage, ConnectorError> {
        let scroll = cursor.map(Cursor::decode::<ItemCursor>).transpose()?;
        let path = self.search_path();
        let answer = self
            .call(|| {
                let r = ApiRequest::get(path.as_str())
                    .query("search_type", "scan")
                    .query("limit", SCAN_LIMIT);
                match &scroll {
                    Some(s) => r.query("scroll_id", &s.scroll_id),
                    None => r,
                }
            })
            .await;
        let answer = match answer {
            Err(e @ (ConnectorError::Rejected { .. } | ConnectorError::NotFound { .. }))
                if scroll.is_some() =>
            {
                return Err(ConnectorError::CursorExpired {
                    message: format!("mercadolibre no longer accepts the scan's scroll_id: {e}"),
                });
            }
            other => other?,
        };
        let search: ItemSearch = decode(&answer)?;
        let pages = scroll.as_ref().map_or(0, |s| s.pages) + 1;
        // Scan mode ends with an empty page, not a short one: search answers short pages
        // mid-scroll, and ending there would make a full scan report the rest as deleted.
        let next = if search.results.is_empty() {
            None
        } else {
            let Some(scroll_id) = search.scroll_id.clone() else {
                return Err(ConnectorError::transient(
                    "mercadolibre answered a scan page with results but no scroll_id",
                ));
            };
            let total = search.paging.as_ref().and_then(|p| p.total);
            if pages >= MAX_SCAN_PAGES || total.is_some_and(|t| pages > t.saturating_add(1)) {
                return Err(ConnectorError::fatal(format!(
                    "mercadolibre item scan did not end after {pages} pages"
                )));
            }
            Some(Cursor::encode(&ItemCursor { scroll_id, pages })?)
        };
        let records = self.multiget(&search.results).await?;
        Ok(ScanPage::new(
            records,
            next,
            search.paging.and_then(|p| p.total),
        ))
    }

    /// Items modified at or after `since`: the seller's items newest first
    /// (`orders=last_updated_desc`, offset paging), stopping at the first item older than
    /// `since`. Offset searches end at 1,000 results; a window that reaches that without
    /// getting older than `since` goes on as a full scan (the engine's content hashes find what
    /// changed).
    async fn scan_window(
        &self,
        since: Timestamp,
        cursor: Option<&Cursor>,
    ) -> Result<ScanPage, ConnectorError> {
        let offset = match cursor {
            None => 0,
            Some(c) => match c.decode::<WindowCursor>() {
                Ok(w) => w.window_offset,
                // Past the offset cap: the scan mode cursor of a full scan.
                Err(_) => return self.scan_items(cursor).await,
            },
        };
        if offset.saturating_add(SCAN_LIMIT) > SEARCH_OFFSET_CAP {
            return self.scan_items(None).await;
        }
        let path = self.search_path();
        let answer = self
            .call(|| {
                ApiRequest::get(path.as_str())
                    .query("orders", "last_updated_desc")
                    .query("offset", offset)
                    .query("limit", SCAN_LIMIT)
            })
            .await?;
        let search: ItemSearch = decode(&answer)?;
        let count = search.results.len();
        let mut items = self.multiget_items(&search.results).await?;
        let before = items.len();
        // Older items are dropped before their descriptions are read.
        items.retain(|i| mapping::item_updated_at(i).is_none_or(|at| at >= since));
        let reached_older = items.len() < before;
        let records = self.described(items).await?;
        let total = search.paging.and_then(|p| p.total);
        let seen = offset + count;
        let next = if reached_older || count < SCAN_LIMIT || total.is_some_and(|t| seen as u64 >= t)
        {
            None
        } else {
            Some(Cursor::encode(&WindowCursor {
                window_offset: seen,
            })?)
        };
        Ok(ScanPage::new(records, next, None))
    }

    /// Items by id, twenty per request, in the order asked; ids the platform no longer knows
    /// are left out.
    pub async fn multiget(&self, ids: &[String]) -> Result<Vec<ExternalRecord>, ConnectorError> {
        let items = self.multiget_items(ids).await?;
        self.described(items).await
    }

    /// Items by id without their descriptions.
    async fn multiget_items(&self, ids: &[String]) -> Result<Vec<MlItem>, ConnectorError> {
        let mut items = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MULTIGET_LIMIT) {
            let joined = chunk.join(",");
            let answer = self
                .call(|| ApiRequest::get("items").query("ids", &joined))
                .await?;
            let entries: Vec<MultigetEntry> = decode(&answer)?;
            for entry in entries {
                match entry.code {
                    200 => {
                        let item = mapping::parse_item(entry.body.get()).map_err(|e| {
                            ConnectorError::fatal(format!(
                                "mercadolibre multiget element is not an item: {e}"
                            ))
                        })?;
                        items.push(item);
                    }
                    404 => {}
                    code => {
                        return Err(ConnectorError::transient(format!(
                            "mercadolibre multiget answered {code} for an element: {}",
                            entry.body.get()
                        )));
                    }
                }
            }
        }
        Ok(items)
    }

    /// `items` as records, each with its description read.
    async fn described(
        &self,
        mut items: Vec<MlItem>,
    ) -> Result<Vec<ExternalRecord>, ConnectorError> {
        // Descriptions are one request per item (there is no multiget for them): a few in
        // flight at once, each paced by the client.
        for chunk in items.chunks_mut(DESCRIPTION_CONCURRENCY) {
            let ids: Vec<String> = chunk
                .iter()
                .map(|item| item.id.clone().unwrap_or_default())
                .collect();
            let texts = join_all(ids.iter().map(|id| self.description(id)).collect()).await;
            for (item, text) in chunk.iter_mut().zip(texts) {
                item.description = Some(text?);
            }
        }
        items.iter().map(mapping::item_to_record).collect()
    }

    /// An item with its description.
    async fn get_item(&self, id: &str) -> Result<Option<MlItem>, ConnectorError> {
        let path = format!("items/{id}");
        let mut item: MlItem = match self.call(|| ApiRequest::get(path.as_str())).await {
            Ok(answer) => decode(&answer)?,
            Err(ConnectorError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        item.description = Some(self.description(id).await?);
        Ok(Some(item))
    }

    /// `GET /items/{id}/description` → its `plain_text`; an item without one (404) has "".
    async fn description(&self, id: &str) -> Result<String, ConnectorError> {
        if id.is_empty() {
            return Err(ConnectorError::fatal("mercadolibre item without an id"));
        }
        let path = format!("items/{id}/description");
        match self
            .call(|| ApiRequest::get(path.as_str()).context("item description"))
            .await
        {
            Ok(answer) => Ok(decode::<MlDescription>(&answer)?
                .plain_text
                .unwrap_or_default()),
            Err(ConnectorError::NotFound { .. }) => Ok(String::new()),
            Err(e) => Err(e),
        }
    }

    /// Writes an item's description: `POST` for a new item, `PUT` for an existing one (a `PUT`
    /// answered 404, an item that never had a description, is repeated as a `POST`). Setting
    /// the same text twice changes nothing, so both are idempotent.
    async fn write_description(
        &self,
        id: &str,
        text: &str,
        new_item: bool,
    ) -> Result<(), ConnectorError> {
        let path = format!("items/{id}/description");
        let body = json!({ "plain_text": text });
        let (path, body) = (path.as_str(), &body);
        let send = |method: http::Method| {
            self.call(move || {
                let bare = || ApiRequest::new(method.clone(), path, Idempotency::Idempotent);
                bare()
                    .json(body)
                    .unwrap_or_else(|_| bare())
                    .context("write item description")
            })
        };
        if new_item {
            return send(http::Method::POST).await.map(|_| ());
        }
        match send(http::Method::PUT).await {
            Err(ConnectorError::NotFound { .. }) => send(http::Method::POST).await.map(|_| ()),
            other => other.map(|_| ()),
        }
    }

    /// Orders with `last_updated` in `[since, now]`, oldest window first. MercadoLibre refuses
    /// offsets beyond about 10,000 (`orders_offset_cap`), so the range is cut into windows of
    /// `order.date_last_updated.from/to` that each hold at most the cap: a window that answers
    /// a larger `paging.total` is halved (the oversized answer is dropped) before paging it by
    /// offset. Windows are closed millisecond ranges that meet without overlapping, so every
    /// order that does not change during the scan is returned exactly once. The width that
    /// fitted is reused (doubled) for the next window.
    async fn scan_orders(
        &self,
        scope: &ScanScope,
        cursor: Option<&Cursor>,
    ) -> Result<ScanPage, ConnectorError> {
        let mut state = match cursor {
            Some(c) => c.decode::<OrderCursor>()?,
            None => {
                let until = Timestamp::from_datetime(time::OffsetDateTime::now_utc()).millis();
                let lo = scope.since().map_or(0, Timestamp::millis);
                OrderCursor {
                    lo,
                    hi: until,
                    until,
                    offset: 0,
                    recent: Vec::new(),
                }
            }
        };
        let cap = self.settings.orders_offset_cap.max(ORDERS_LIMIT);
        let seller = self.settings.user_id.to_string();
        let search = loop {
            let (from, to) = (
                format_since(Timestamp::from_millis(state.lo)),
                format_since(Timestamp::from_millis(state.hi)),
            );
            let offset = state.offset;
            let answer = self
                .call(|| {
                    ApiRequest::get("orders/search")
                        .query("seller", &seller)
                        .query("sort", "date_asc")
                        .query("order.date_last_updated.from", &from)
                        .query("order.date_last_updated.to", &to)
                        .query("offset", offset)
                        .query("limit", ORDERS_LIMIT)
                })
                .await?;
            let search: OrderSearch = decode(&answer)?;
            let total = search.paging.as_ref().and_then(|p| p.total).unwrap_or(0);
            if state.offset == 0 && total > cap as u64 && state.hi > state.lo {
                // Too many to reach by offset: halve the window and ask again.
                state.hi = state.lo + (state.hi - state.lo) / 2;
                continue;
            }
            if total > cap as u64 && state.offset == 0 {
                tracing::warn!(
                    at = state.lo,
                    total,
                    "more mercadolibre orders share one millisecond than the offset cap reaches"
                );
            }
            break search;
        };
        let total = search.paging.as_ref().and_then(|p| p.total);
        let count = search.results.len();
        let mut records = Vec::with_capacity(count);
        for order in &search.results {
            if state.recent.contains(&order.id.0) {
                continue; // returned by the previous page (the overlap)
            }
            records.push(self.order_record(order).await?);
        }
        let seen = state.offset + count;
        // The next page starts `ORDER_PAGE_OVERLAP` places early; a page no longer than the
        // overlap would not move on, so it ends the window (a full page always moves on).
        let window_left =
            count > ORDER_PAGE_OVERLAP && seen <= cap && total.is_some_and(|t| (seen as u64) < t);
        let next = if window_left {
            Some(OrderCursor {
                offset: seen - ORDER_PAGE_OVERLAP,
                recent: search
                    .results
                    .iter()
                    .map(|o| o.id.0.clone())
                    .skip(count.saturating_sub(2 * ORDER_PAGE_OVERLAP))
                    .collect(),
                ..state.clone()
            })
        } else if state.hi < state.until {
            let width = (state.hi - state.lo).saturating_mul(2).max(1);
            let lo = state.hi + 1;
            Some(OrderCursor {
                lo,
                hi: lo.saturating_add(width).min(state.until),
                until: state.until,
                offset: 0,
                recent: Vec::new(),
            })
        } else {
            None
        };
        let next = next.map(|n| Cursor::encode(&n)).transpose()?;
        // `total` is the current window's, not the scan's: give none rather than a wrong one.
        let whole = (state.lo == scope.since().map_or(0, Timestamp::millis)
            && state.hi == state.until)
            .then_some(total)
            .flatten();
        Ok(ScanPage::new(records, next, whole))
    }

    async fn order_record(&self, order: &MlOrder) -> Result<ExternalRecord, ConnectorError> {
        let shipment = match order.shipment_id() {
            Some(id) => {
                let path = format!("shipments/{id}");
                match self.call(|| ApiRequest::get(path.as_str())).await {
                    Ok(answer) => Some(decode::<MlShipment>(&answer)?),
                    Err(ConnectorError::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        mapping::order_to_record(order, shipment.as_ref())
    }

    /// The id of the item holding `sku` (item or variation `SELLER_SKU`), if the search finds one.
    async fn find_item_id(&self, sku: &str) -> Result<Option<String>, ConnectorError> {
        let path = self.search_path();
        let answer = self
            .call(|| ApiRequest::get(path.as_str()).query("seller_sku", sku))
            .await?;
        let search: ItemSearch = decode(&answer)?;
        Ok(search.results.into_iter().next())
    }

    fn category_for(&self, product: &Product) -> Result<String, ConnectorError> {
        let site = &self.settings.site_id;
        let own = product.category.as_deref().filter(|c| {
            c.strip_prefix(site.as_str())
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        });
        own.map(str::to_owned)
            .or_else(|| self.settings.default_category_id.clone())
            .ok_or_else(|| {
                ConnectorError::rejected(
                    "mercadolibre_category_missing",
                    "the product has no MercadoLibre category and the connection sets no \
                     default_category_id",
                )
                .with_field("category")
            })
    }

    async fn create(&self, product: &Product) -> Result<Confirmed, ConnectorError> {
        // No idempotency key exists: an earlier attempt may have created the item already
        // (an answer lost after the platform applied it), so look the SKU up first.
        let sku = product
            .sku
            .as_ref()
            .or_else(|| product.variants.iter().find_map(|v| v.sku.as_ref()));
        if let Some(sku) = sku {
            // This process's own earlier create first (the search lags), then the search.
            let journalled = self.journalled(&sku.0);
            let known = match &journalled {
                Some(Journalled::Created(id)) => Some(id.clone()),
                _ => None,
            };
            let found = match known {
                Some(id) => Some(id),
                None => self.find_item_id(&sku.0).await?,
            };
            if let Some(id) = found
                && let Some(item) = self.get_item(&id).await?
            {
                return self.adopt(product, item).await;
            }
            if let Some(Journalled::InDoubt(at)) = journalled {
                let lag = Duration::from_millis(self.settings.sku_search_lag_ms);
                let waited = at.elapsed();
                if waited < lag {
                    // The earlier create may exist without the search showing it yet: a new
                    // create now could duplicate it. Retry once the search can be trusted.
                    return Err(ConnectorError::transient(format!(
                        "an earlier create of SKU {} may have been applied and the SKU search \
                         may not show it yet; not creating again for another {} ms",
                        sku.0,
                        (lag - waited).as_millis()
                    ))
                    .with_retry_after(Some(lag - waited)));
                }
            }
        }
        let body = mapping::create_body(product, &self.category_for(product)?);
        let answer = self
            .call(|| {
                ApiRequest::post("items", Idempotency::NonIdempotent)
                    .json(&body)
                    .unwrap_or_else(|_| ApiRequest::post("items", Idempotency::NonIdempotent))
                    .context("create item")
            })
            .await;
        let answer = match answer {
            Err(e) if e.is_maybe_applied() => {
                if let Some(sku) = sku {
                    self.journal(&sku.0, Journalled::InDoubt(std::time::Instant::now()));
                }
                return Err(e);
            }
            other => other?,
        };
        let mut item: MlItem = match decode(&answer) {
            Ok(item) => item,
            Err(e) => {
                if let Some(sku) = sku {
                    self.journal(&sku.0, Journalled::InDoubt(std::time::Instant::now()));
                }
                return Err(e);
            }
        };
        let id = item.id.clone().ok_or_else(|| {
            ConnectorError::maybe_applied("mercadolibre created an item without an id")
        })?;
        if let Some(sku) = sku {
            self.journal(&sku.0, Journalled::Created(id.clone()));
        }
        if !product.description.is_empty()
            && let Err(e) = self
                .write_description(&id, &product.description, true)
                .await
        {
            // The item exists: a repeated create finds it by SKU and writes the description.
            return Err(ConnectorError::maybe_applied(format!(
                "mercadolibre item {id} was created but its description was not written: {e}"
            )));
        }
        item.description = Some(product.description.clone());
        let item = self.finish_create(product, item).await.map_err(|e| {
            // The item exists and is journalled: a repeated create adopts it and writes the
            // rest to it.
            ConnectorError::maybe_applied(format!(
                "mercadolibre item {id} was created but not finished: {e}"
            ))
        })?;
        Ok(Confirmed {
            record: mapping::item_to_record(&item)?,
            adopted: false,
        })
    }

    /// What a create cannot send in its `POST`: variation pictures (their ids exist only once
    /// the item does), then the status. MercadoLibre creates every item `active`; a product
    /// that is not gets a status write last (a paused or closed item may refuse other edits).
    async fn finish_create(
        &self,
        product: &Product,
        item: MlItem,
    ) -> Result<MlItem, ConnectorError> {
        let item = self.link_variation_pictures(product, item).await?;
        let wanted = mapping::status_to_ml(product.status);
        if item.status.as_deref().unwrap_or("active") == wanted {
            return Ok(item);
        }
        let Some(id) = item.id.clone() else {
            return Err(ConnectorError::fatal("mercadolibre item without an id"));
        };
        let body = json!({ "status": wanted });
        self.put_item(
            &id,
            &body,
            Idempotency::Idempotent,
            "set the created item's status",
            item.description,
        )
        .await
    }

    /// `PUT /items/{id}` with `body`, answered by the item after the write; `description` is
    /// given it (the item does not carry its description).
    async fn put_item(
        &self,
        id: &str,
        body: &Value,
        idempotency: Idempotency,
        what: &str,
        description: Option<String>,
    ) -> Result<MlItem, ConnectorError> {
        let path = format!("items/{id}");
        let answer = self
            .call(|| {
                let bare = || ApiRequest::new(http::Method::PUT, path.as_str(), idempotency);
                bare().json(body).unwrap_or_else(|_| bare()).context(what)
            })
            .await?;
        let mut item: MlItem = decode(&answer)?;
        item.description = description;
        Ok(item)
    }

    fn journalled(&self, sku: &str) -> Option<Journalled> {
        self.journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(sku)
            .cloned()
    }

    fn journal(&self, sku: &str, entry: Journalled) {
        let mut journal = self
            .journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Entries of creates whose search has long caught up are of no further use.
        let keep = Duration::from_millis(self.settings.sku_search_lag_ms).saturating_mul(2);
        journal.retain(|_, e| match e {
            Journalled::InDoubt(at) => at.elapsed() < keep,
            Journalled::Created(_) => true,
        });
        if journal.len() >= JOURNAL_MAX {
            journal.clear();
        }
        journal.insert(sku.to_owned(), entry);
    }

    /// A create found the item already there (an earlier attempt): the product is written to
    /// it as a create would have, so the adopted record is the product. Variants are matched to
    /// variations by SKU (an item without variations is the single variant), pictures by
    /// position when their numbers agree; stock is set to the product's quantities (a create
    /// sets absolute stock). The title is sent only when it differs (it locks after a sale), and
    /// so is the status. Variation pictures are linked by the same write.
    async fn adopt(&self, product: &Product, item: MlItem) -> Result<Confirmed, ConnectorError> {
        let id = item
            .id
            .clone()
            .ok_or_else(|| ConnectorError::fatal("mercadolibre item without an id"))?;
        let mut bound = product.clone();
        let mut stock = Vec::new();
        if item.variations.is_empty() {
            if let [only] = bound.variants.as_mut_slice() {
                only.external_id = Some(ExternalId(id.clone()));
                let now = item.available_quantity.map_or(0, |c| c.0);
                stock.push(tidemark_core::StockChange {
                    variant: ExternalId(id.clone()),
                    sku: only.sku.clone(),
                    from: now,
                    to: only.stock.unwrap_or(0).max(0),
                });
            }
        } else {
            for v in &mut bound.variants {
                let Some(sku) = v.sku.as_ref() else { continue };
                let Some(found) = item
                    .variations
                    .iter()
                    .find(|w| mapping::variation_sku(w).as_ref() == Some(sku))
                else {
                    continue;
                };
                let Some(vid) = found.id.as_ref() else {
                    continue;
                };
                v.external_id = Some(ExternalId(vid.0.clone()));
                stock.push(tidemark_core::StockChange {
                    variant: ExternalId(vid.0.clone()),
                    sku: v.sku.clone(),
                    from: found.available_quantity.map_or(0, |c| c.0),
                    to: v.stock.unwrap_or(0).max(0),
                });
            }
        }
        if item.pictures.len() == bound.images.len() {
            for (image, picture) in bound.images.iter_mut().zip(&item.pictures) {
                image.external_id = picture.id.clone().map(ExternalId);
            }
        }
        let mut fields: tidemark_core::FieldSet = [
            Field::Description,
            Field::Price,
            Field::Sku,
            Field::Brand,
            Field::Images,
            Field::Variants,
            Field::Stock,
        ]
        .into_iter()
        .collect();
        if item.title != product.title {
            fields.insert(Field::Title);
        }
        // Created `active` (or changed since): a status that differs is written like any other
        // field (a closed item refuses to be reopened, which is then this write's error).
        if item.status.as_deref().unwrap_or("active") != mapping::status_to_ml(product.status) {
            fields.insert(Field::Status);
        }
        stock.retain(|c| c.from != c.to);
        let external_id = ExternalId(id.clone());
        // The update links variation pictures too (`Field::Images`).
        let written = self.update(&external_id, &bound, &fields, &stock).await?;
        Ok(Confirmed {
            adopted: true,
            ..written
        })
    }

    /// A create sends pictures by `source`, so their ids exist only once the item does, and
    /// variation `picture_ids` must name item pictures: a second `PUT` gives each variation the
    /// ids of the pictures its variant uses. Pictures come back in the order they were sent;
    /// variations are matched by `SELLER_SKU`, else by position. Nothing is sent when no
    /// variant names an image.
    async fn link_variation_pictures(
        &self,
        product: &Product,
        item: MlItem,
    ) -> Result<MlItem, ConnectorError> {
        if item.variations.is_empty()
            || item.pictures.len() != product.images.len()
            || product.variants.iter().all(|v| v.image_hashes.is_empty())
        {
            return Ok(item);
        }
        let Some(item_id) = item.id.clone() else {
            return Ok(item);
        };
        // Pictures come back in the order they were sent: image `at` is picture `at`.
        let picture_of = |at: usize, _: &Image| item.pictures.get(at).and_then(|p| p.id.clone());
        let mut variations = Vec::with_capacity(item.variations.len());
        let mut changed = false;
        for (n, v) in item.variations.iter().enumerate() {
            let Some(id) = v.id.as_ref() else {
                return Ok(item);
            };
            let sku = mapping::variation_sku(v);
            let variant = sku
                .and_then(|s| product.variants.iter().find(|w| w.sku.as_ref() == Some(&s)))
                .or_else(|| product.variants.get(n));
            let wanted: Vec<String> = variant
                .map(|w| variant_pictures(product, w, picture_of))
                .unwrap_or_default();
            let ids = if wanted.is_empty() {
                v.picture_ids.clone()
            } else {
                changed |= wanted != v.picture_ids;
                wanted
            };
            variations.push(json!({"id": id_json(&id.0), "picture_ids": ids}));
        }
        if !changed {
            return Ok(item);
        }
        let body = json!({ "variations": variations });
        self.put_item(
            &item_id,
            &body,
            Idempotency::Idempotent,
            "link variation pictures",
            item.description,
        )
        .await
    }

    async fn update(
        &self,
        external_id: &ExternalId,
        product: &Product,
        fields: &tidemark_core::FieldSet,
        stock: &[tidemark_core::StockChange],
    ) -> Result<Confirmed, ConnectorError> {
        // Read just before writing: stock moves apply to the quantity the platform has now.
        let current = self
            .get_item(external_id.as_str())
            .await?
            .ok_or_else(|| ConnectorError::not_found(format!("mercadolibre item {external_id}")))?;
        let mut body = Map::new();
        if fields.contains(&Field::Title) {
            body.insert("title".into(), json!(product.title));
        }
        if fields.contains(&Field::Status) {
            body.insert(
                "status".into(),
                json!(mapping::status_to_ml(product.status)),
            );
        }
        if fields.contains(&Field::Sku) || fields.contains(&Field::Brand) {
            body.insert("attributes".into(), Value::Array(attributes_json(product)));
        }
        if fields.contains(&Field::Category)
            && let Ok(category) = self.category_for(product)
        {
            body.insert("category_id".into(), json!(category));
        }
        if fields.contains(&Field::Images) {
            let pictures: Vec<Value> = product
                .images
                .iter()
                .map(|i| match &i.external_id {
                    Some(_) => json!({"id": picture_ref(i)}),
                    None => json!({"source": picture_ref(i)}),
                })
                .collect();
            body.insert("pictures".into(), Value::Array(pictures));
        }
        let moves: BTreeMap<&str, i64> = stock
            .iter()
            .map(|c| (c.variant.as_str(), c.delta()))
            .collect();
        if current.variations.is_empty() {
            if fields.contains(&Field::Price)
                && let Some(price) = product.variants.first().and_then(|v| v.price)
            {
                body.insert("price".into(), price_json(price));
            }
            if let Some(delta) = moves
                .get(external_id.as_str())
                .or_else(|| moves.values().next())
                .filter(|d| **d != 0)
            {
                let now = current.available_quantity.map_or(0, |c| c.0);
                body.insert(
                    "available_quantity".into(),
                    json!(moved(external_id.as_str(), now, *delta)?),
                );
            }
        } else if fields.contains(&Field::Price)
            || fields.contains(&Field::Sku)
            || fields.contains(&Field::Variants)
            || fields.contains(&Field::Images)
            || moves.values().any(|d| *d != 0)
        {
            body.insert(
                "variations".into(),
                Value::Array(variations_body(&current, product, fields, &moves)?),
            );
        }
        let mut current = current;
        if fields.contains(&Field::Description)
            && current.description.as_deref() != Some(product.description.as_str())
        {
            self.write_description(external_id.as_str(), &product.description, false)
                .await?;
            current.description = Some(product.description.clone());
        }
        if body.is_empty() {
            return Ok(Confirmed {
                record: mapping::item_to_record(&current)?,
                adopted: false,
            });
        }
        // Stock moves are deltas, and a variation sent without an id is created: sent twice,
        // either would apply twice. Such a PUT is never repeated blindly; after a lost answer
        // the write is repeated from a fresh read (which finds a created variation by SKU).
        let creates_variations = body
            .get("variations")
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|v| v.get("id").is_none()));
        let idempotency = if moves.values().any(|d| *d != 0) || creates_variations {
            Idempotency::NonIdempotent
        } else {
            Idempotency::Idempotent
        };
        let item = self
            .put_item(
                external_id.as_str(),
                &Value::Object(body),
                idempotency,
                "update item",
                current.description,
            )
            .await?;
        Ok(Confirmed {
            record: mapping::item_to_record(&item)?,
            adopted: false,
        })
    }

    async fn delete_image(
        &self,
        product_id: &ExternalId,
        image_id: Option<&ExternalId>,
        content_hash: tidemark_core::ContentHash,
    ) -> Result<Confirmed, ConnectorError> {
        let current = self
            .get_item(product_id.as_str())
            .await?
            .ok_or_else(|| ConnectorError::not_found(format!("mercadolibre item {product_id}")))?;
        let canonical = mapping::item_to_product(&current)?;
        let gone: Option<String> = canonical
            .images
            .iter()
            .find(|i| match image_id {
                Some(id) => i.external_id.as_ref() == Some(id),
                None => i.content_hash == content_hash,
            })
            .and_then(|i| i.external_id.as_ref().map(|e| e.0.clone()));
        let Some(gone) = gone else {
            return Ok(Confirmed {
                record: mapping::item_to_record(&current)?,
                adopted: false,
            });
        };
        let pictures: Vec<Value> = current
            .pictures
            .iter()
            .filter_map(|p| p.id.as_deref())
            .filter(|id| *id != gone)
            .map(|id| json!({"id": id}))
            .collect();
        let mut body = json!({ "pictures": pictures });
        if !current.variations.is_empty() {
            body["variations"] = Value::Array(
                current
                    .variations
                    .iter()
                    .filter_map(|v| v.id.as_ref())
                    .zip(current.variations.iter())
                    .map(|(id, v)| {
                        let ids: Vec<&String> =
                            v.picture_ids.iter().filter(|p| **p != gone).collect();
                        json!({"id": id_json(&id.0), "picture_ids": ids})
                    })
                    .collect(),
            );
        }
        let item = self
            .put_item(
                product_id.as_str(),
                &body,
                Idempotency::Idempotent,
                "remove a picture",
                current.description,
            )
            .await?;
        Ok(Confirmed {
            record: mapping::item_to_record(&item)?,
            adopted: false,
        })
    }

    /// Only shipment tracking can be written: `PUT /shipments/{id}` with `tracking_number`
    /// (and the carrier as `tracking_method`), which MercadoLibre accepts for shipments the
    /// seller ships (`me1`, custom); Mercado Envíos (`me2`) shipments answer a validation
    /// error, passed on as `Rejected` with its code. Every other order field is the buyer's or
    /// MercadoLibre's: `Rejected` with `mercadolibre_order_field_read_only`.
    async fn update_order(
        &self,
        external_id: &ExternalId,
        order: &tidemark_core::SalesOrder,
        fields: &tidemark_core::FieldSet,
    ) -> Result<Confirmed, ConnectorError> {
        if let Some(other) = fields.iter().find(|f| **f != Field::Shipments) {
            return Err(ConnectorError::rejected(
                "mercadolibre_order_field_read_only",
                format!(
                    "MercadoLibre orders accept only shipment tracking from a seller; {other:?} \
                     cannot be written"
                ),
            )
            .with_field(format!("{other:?}").to_lowercase()));
        }
        let path = format!("orders/{external_id}");
        let current: MlOrder = match self.call(|| ApiRequest::get(path.as_str())).await {
            Ok(answer) => decode(&answer)?,
            Err(ConnectorError::NotFound { .. }) => {
                return Err(ConnectorError::not_found(format!(
                    "mercadolibre order {external_id}"
                )));
            }
            Err(e) => return Err(e),
        };
        let tracked = order.shipments.iter().find(|s| {
            s.tracking_number
                .as_deref()
                .is_some_and(|t| !t.trim().is_empty())
        });
        if let (Some(shipment_id), Some(tracked)) = (current.shipment_id(), tracked) {
            let mut body = json!({
                "tracking_number": tracked.tracking_number.as_deref().unwrap_or_default().trim(),
            });
            if let Some(carrier) = &tracked.carrier {
                body["tracking_method"] = json!(carrier);
            }
            let path = format!("shipments/{shipment_id}");
            self.call(|| {
                ApiRequest::put(path.as_str())
                    .json(&body)
                    .unwrap_or_else(|_| ApiRequest::put(path.as_str()))
                    .context("set shipment tracking")
            })
            .await?;
        } else if tracked.is_some() {
            return Err(ConnectorError::rejected(
                "mercadolibre_order_without_shipment",
                format!("MercadoLibre order {external_id} has no shipment to carry tracking"),
            )
            .with_field("shipments"));
        }
        let current: MlOrder = match self.call(|| ApiRequest::get(path.as_str())).await {
            Ok(answer) => decode(&answer)?,
            Err(e) => return Err(e),
        };
        Ok(Confirmed {
            record: self.order_record(&current).await?,
            adopted: false,
        })
    }

    async fn apply_one(&self, op: &WriteOp) -> Result<Confirmed, ConnectorError> {
        op.check()?;
        match op {
            WriteOp::CreateProduct { product } => self.create(product).await,
            WriteOp::UpdateProduct {
                external_id,
                product,
                fields,
                ..
            } => {
                self.update(external_id, product, fields, op.stock_changes())
                    .await
            }
            WriteOp::DeleteProductImage {
                product_id,
                image_id,
                content_hash,
            } => {
                self.delete_image(product_id, image_id.as_ref(), *content_hash)
                    .await
            }
            WriteOp::CreateOrder { .. } => Err(ConnectorError::rejected(
                "mercadolibre_orders_read_only",
                "orders are placed by buyers on MercadoLibre; tidemark does not create them",
            )),
            WriteOp::UpdateOrder {
                external_id,
                order,
                fields,
            } => self.update_order(external_id, order, fields).await,
        }
    }
}

/// A variation id as a JSON number when it is one (MercadoLibre's own form).
fn id_json(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n))
}

/// How an item write names a product image: its picture id when it has one, else its URL,
/// which `pictures` sends as a `source` and a variation's `picture_ids` may name (MercadoLibre
/// links the picture the same write makes from that URL).
fn picture_ref(image: &Image) -> &str {
    image
        .external_id
        .as_ref()
        .map_or(image.src.as_str(), ExternalId::as_str)
}

/// The pictures `variant` shows, in the order of its `image_hashes`, as `reference` names the
/// product image at an index of `product.images`; hashes of no image, or of an image without
/// a reference, are left out.
fn variant_pictures(
    product: &Product,
    variant: &tidemark_core::Variant,
    reference: impl Fn(usize, &Image) -> Option<String>,
) -> Vec<String> {
    variant
        .image_hashes
        .iter()
        .filter_map(|hash| {
            let (at, image) = product
                .images
                .iter()
                .enumerate()
                .find(|(_, i)| i.content_hash == *hash)?;
            reference(at, image)
        })
        .collect()
}

/// The full `variations` list of a PUT: MercadoLibre deletes variations left out, so every
/// kept one is named by id, with the fields this write changes. A new variant (no id the item
/// knows) whose SKU an otherwise unclaimed variation already has is that variation: an earlier
/// attempt of this write, whose answer was lost, created it, and sending it again without its
/// id would create it twice.
///
/// When the write replaces the pictures (`Field::Images`), each variation's `picture_ids`
/// become its variant's images as the `pictures` list names them ([`picture_ref`]), none for
/// a variant that names none; a variation no variant claims keeps those of its pictures that
/// stay (`picture_ids` must name item pictures).
fn variations_body(
    current: &MlItem,
    product: &Product,
    fields: &tidemark_core::FieldSet,
    moves: &BTreeMap<&str, i64>,
) -> Result<Vec<Value>, ConnectorError> {
    let images = fields.contains(&Field::Images);
    let pictures_of = |variant: &tidemark_core::Variant| {
        variant_pictures(product, variant, |_, image| {
            Some(picture_ref(image).to_owned())
        })
    };
    let kept: std::collections::BTreeSet<&str> = product
        .images
        .iter()
        .filter_map(|i| i.external_id.as_ref().map(ExternalId::as_str))
        .collect();
    let current_ids: std::collections::BTreeSet<&str> = current
        .variations
        .iter()
        .filter_map(|c| c.id.as_ref().map(|i| i.0.as_str()))
        .collect();
    let mut by_id: BTreeMap<&str, &tidemark_core::Variant> = product
        .variants
        .iter()
        .filter_map(|v| v.external_id.as_ref().map(|e| (e.as_str(), v)))
        .collect();
    let replace = fields.contains(&Field::Variants);
    let is_new = |v: &tidemark_core::Variant| {
        v.external_id
            .as_ref()
            .is_none_or(|e| !current_ids.contains(e.as_str()))
    };
    // Indexes of new variants bound to an existing variation by SKU.
    let mut bound = std::collections::BTreeSet::new();
    if replace {
        for (n, v) in product.variants.iter().enumerate() {
            let Some(sku) = v.sku.as_ref().filter(|_| is_new(v)) else {
                continue;
            };
            let found = current.variations.iter().find_map(|c| {
                let id = c.id.as_ref()?.0.as_str();
                (!by_id.contains_key(id) && mapping::variation_sku(c).as_ref() == Some(sku))
                    .then_some(id)
            });
            if let Some(id) = found {
                by_id.insert(id, v);
                bound.insert(n);
            }
        }
    }
    let mut out = Vec::new();
    for v in &current.variations {
        let Some(id) = v.id.as_ref().map(|i| i.0.as_str()) else {
            continue;
        };
        let wanted = by_id.get(id);
        if replace && wanted.is_none() {
            continue; // removed from the product: left out, so deleted
        }
        let mut entry = json!({"id": id_json(id)});
        if fields.contains(&Field::Price)
            && let Some(price) = wanted.and_then(|w| w.price)
        {
            entry["price"] = price_json(price);
        }
        // A variant's SKU changes under `Sku` (one gained) or `Variants` (a renamed variant is
        // another variant key, still bound to this variation).
        if (fields.contains(&Field::Sku) || replace)
            && let Some(sku) = wanted.and_then(|w| w.sku.as_ref())
            && mapping::variation_sku(v).as_ref() != Some(sku)
        {
            entry["attributes"] = json!([{"id": "SELLER_SKU", "value_name": sku.0}]);
        }
        if let Some(delta) = moves.get(id).filter(|d| **d != 0) {
            let now = v.available_quantity.map_or(0, |c| c.0);
            entry["available_quantity"] = json!(moved(id, now, *delta)?);
        }
        if images {
            entry["picture_ids"] = match wanted {
                Some(w) => json!(pictures_of(w)),
                None => json!(
                    v.picture_ids
                        .iter()
                        .filter(|p| kept.contains(p.as_str()))
                        .collect::<Vec<_>>()
                ),
            };
        }
        out.push(entry);
    }
    if replace {
        for (_, v) in product
            .variants
            .iter()
            .enumerate()
            .filter(|(n, v)| is_new(v) && !bound.contains(n))
        {
            let mut entry = json!({
                "available_quantity": v.stock.unwrap_or(0).max(0),
                "attribute_combinations": v.options.iter()
                    .map(|(k, val)| combo_json(k, val)).collect::<Vec<_>>(),
            });
            if let Some(price) = v.price {
                entry["price"] = price_json(price);
            }
            if let Some(sku) = &v.sku {
                entry["attributes"] = json!([{"id": "SELLER_SKU", "value_name": sku.0}]);
            }
            if images {
                entry["picture_ids"] = json!(pictures_of(v));
            }
            out.push(entry);
        }
    }
    Ok(out)
}

/// `now + delta`, at least zero; a sum beyond `i64` (an absurd platform quantity) is refused
/// for this record rather than wrapped or panicking.
fn moved(variant: &str, now: i64, delta: i64) -> Result<i64, ConnectorError> {
    now.checked_add(delta).map(|q| q.max(0)).ok_or_else(|| {
        ConnectorError::rejected(
            "mercadolibre_quantity_overflow",
            format!("quantity {now} of {variant} moved by {delta} does not fit a whole number"),
        )
        .with_field("stock")
    })
}

#[async_trait]
impl Connector for MercadoLibre {
    fn platform(&self) -> PlatformKind {
        PlatformKind::Mercadolibre
    }

    /// Items have no "updated since" filter: an incremental scan of products reads every item
    /// (scan + multiget) and relies on content hashes to find what changed
    /// (`incremental: None`). Orders filter on `order.date_last_updated.from` (inclusive).
    fn capabilities(&self) -> Capabilities {
        let mut kinds = BTreeMap::new();
        kinds.insert(
            ScanKind::Products,
            KindCapabilities {
                incremental: None,
                writable: true,
            },
        );
        kinds.insert(
            ScanKind::Orders,
            KindCapabilities {
                incremental: Some(IncrementalFilter {
                    granularity: Duration::from_millis(1),
                    inclusive: true,
                }),
                // Shipment tracking only (see `update_order`).
                writable: true,
            },
        );
        Capabilities {
            max_batch_size: MULTIGET_LIMIT,
            kinds,
            webhooks: WebhookSupport::HintOnly,
            bulk_full_scan: false,
            upsert_by_sku: false,
            recommended_overlap: Duration::from_secs(120),
        }
    }

    fn settings_schema(&self) -> SettingsSchema {
        schema()
    }

    /// Items have no vendor, tags, barcode, weight or compare-at price here (promotions and
    /// shipping dimensions live elsewhere in MercadoLibre), and custom attributes are not
    /// written (MercadoLibre attributes are its category's, by id).
    fn carries(&self) -> tidemark_core::FieldSet {
        use tidemark_core::Field;
        Field::PRODUCT_FIELDS
            .into_iter()
            .chain(Field::ORDER_FIELDS)
            .filter(|f| {
                !matches!(
                    f,
                    Field::Vendor
                        | Field::Tags
                        | Field::Barcode
                        | Field::Weight
                        | Field::CompareAtPrice
                        | Field::Attributes
                )
            })
            .collect()
    }

    /// No draft: a draft is listed paused. Archived is `closed`, which MercadoLibre keeps.
    /// Pictures have no alt text. An item without variations has one SKU
    /// ([`mapping::item_sku`]), the product's and its variant's.
    fn as_stored(&self, mut product: Product) -> Product {
        if product.status == tidemark_core::ProductStatus::Draft {
            product.status = tidemark_core::ProductStatus::Paused;
        }
        if !mapping::has_variations(&product) {
            let sku = mapping::item_sku(&product).cloned();
            if let Some(only) = product.variants.first_mut() {
                only.sku.clone_from(&sku);
            }
            product.sku = sku;
        }
        for image in &mut product.images {
            image.alt = None;
        }
        product
    }

    async fn scan_page(
        &self,
        kind: ScanKind,
        scope: &ScanScope,
        cursor: Option<&Cursor>,
    ) -> Result<ScanPage, ConnectorError> {
        match kind {
            // No modification filter: a window walks newest first and stops at `since`;
            // every other scope reads every item.
            ScanKind::Products => match scope {
                ScanScope::Window { since } => self.scan_window(*since, cursor).await,
                ScanScope::Incremental { .. } | ScanScope::Full => self.scan_items(cursor).await,
            },
            ScanKind::Orders => self.scan_orders(scope, cursor).await,
        }
    }

    async fn fetch_one(
        &self,
        kind: ScanKind,
        id: &ExternalId,
    ) -> Result<Option<ExternalRecord>, ConnectorError> {
        match kind {
            ScanKind::Products => match self.get_item(id.as_str()).await? {
                Some(item) => mapping::item_to_record(&item).map(Some),
                None => Ok(None),
            },
            ScanKind::Orders => {
                let path = format!("orders/{id}");
                let order: MlOrder = match self.call(|| ApiRequest::get(path.as_str())).await {
                    Ok(answer) => decode(&answer)?,
                    Err(ConnectorError::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                };
                self.order_record(&order).await.map(Some)
            }
        }
    }

    async fn find_by_sku(&self, sku: &Sku) -> Result<Option<ExternalRecord>, ConnectorError> {
        match self.find_item_id(&sku.0).await? {
            Some(id) => match self.get_item(&id).await? {
                Some(item) => mapping::item_to_record(&item).map(Some),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    async fn apply_writes(&self, writes: &[Write]) -> Result<Vec<WriteResult>, ConnectorError> {
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            results.push(WriteResult {
                key: write.key.clone(),
                outcome: self.apply_one(&write.op).await,
            });
        }
        Ok(results)
    }

    fn verify_webhook(
        &self,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, ConnectorError> {
        crate::webhook::parse_notification(body, self.settings.user_id, &self.settings.client_id)
    }
}
