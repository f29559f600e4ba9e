//! `/connections`: the connections of the caller's account and the buttons on each (fetch,
//! send, sync, pause, resume, resync, reset clocks, stats, integrity fix). Every handler
//! reads the connection through the caller's account first: another account's id is a 404.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tidemark_connector::Credentials;
use tidemark_connector::sealing;
use tidemark_core::{
    AccountId, Connection, ConnectionId, ConnectionSettings, ExternalId, PlatformKind, RecordKind,
    ScanKind,
};
use tidemark_engine::{FetchRequest, FetchScope};
use tidemark_jobs::{Resync, ResyncWindow, Submission};
use tidemark_store::{
    ConnectionPatch, IssueFilter, JobKind, JobRunFilter, JobState, NewConnection,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Caller, JsonBody, PathId};
use crate::state::Api;
use crate::views::{
    Accepted, ConnectionView, CreateConnection, EmptyBody, FetchBody, FetchScopeName, IssueView,
    JobView, PatchConnection, ResetClocksBody, ResyncBody, StatsView,
};

pub fn router() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_connections, create_connection))
        .routes(routes!(get_connection, patch_connection, delete_connection))
        .routes(routes!(fetch))
        .routes(routes!(send))
        .routes(routes!(sync))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(resync))
        .routes(routes!(reset_clocks))
        .routes(routes!(stats))
        .routes(routes!(integrity_fix))
}

/// The caller's connection `id`, or 404 (also for another account's).
pub async fn connection_of(api: &Api, account: AccountId, id: i64) -> ApiResult<Connection> {
    api.store()
        .get_connection(account, ConnectionId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("connection {id}")))
}

/// The account's runs queued or running (oldest last), as the console shows them.
pub async fn active_runs(api: &Api, account: AccountId) -> ApiResult<Vec<JobView>> {
    let runs = api
        .store()
        .list_job_runs(
            account,
            &JobRunFilter {
                connection: None,
                kind: None,
                states: vec![JobState::Queued, JobState::Running],
                before: None,
                limit: 1000,
            },
        )
        .await?;
    Ok(runs.iter().map(JobView::from).collect())
}

/// Active runs of the account, by connection.
async fn active_jobs(api: &Api, account: AccountId) -> ApiResult<BTreeMap<i64, Vec<JobView>>> {
    let mut out: BTreeMap<i64, Vec<JobView>> = BTreeMap::new();
    for run in active_runs(api, account).await? {
        out.entry(run.connection).or_default().push(run);
    }
    Ok(out)
}

/// The view of one connection, with its counts, active jobs and schedule.
pub async fn view(
    api: &Api,
    account: AccountId,
    connection: &Connection,
) -> ApiResult<ConnectionView> {
    let store = api.store();
    let queued = store.pending_counts(account, connection.id).await?;
    let issues = store
        .open_issue_counts(account)
        .await?
        .get(&connection.id)
        .copied()
        .unwrap_or(0);
    let sealed = store.connection_credentials(connection.id).await?;
    let jobs = active_jobs(api, account)
        .await?
        .remove(&connection.id.0)
        .unwrap_or_default();
    let schedule = store.get_schedule(account, connection.id).await?;
    Ok(ConnectionView::new(
        connection,
        queued,
        issues,
        sealed.is_some(),
        jobs,
        schedule.as_ref(),
    ))
}

/// The account's connections with their state, queued changes and last fetch and send.
#[utoipa::path(get, path = "/connections", tag = "connections",
    responses(
        (status = 200, description = "The account's connections", body = Vec<ConnectionView>),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_connections(
    State(api): State<Api>,
    caller: Caller,
) -> ApiResult<Json<Vec<ConnectionView>>> {
    let store = api.store();
    let account = caller.account;
    let connections = store.list_connections(account).await?;
    let pending = store.pending_counts_by_connection(account).await?;
    let issues = store.open_issue_counts(account).await?;
    let mut jobs = active_jobs(&api, account).await?;
    let mut out = Vec::with_capacity(connections.len());
    for c in &connections {
        let sealed = store.connection_credentials(c.id).await?;
        let schedule = store.get_schedule(account, c.id).await?;
        out.push(ConnectionView::new(
            c,
            pending.get(&c.id).cloned().unwrap_or_default(),
            issues.get(&c.id).copied().unwrap_or(0),
            sealed.is_some(),
            jobs.remove(&c.id.0).unwrap_or_default(),
            schedule.as_ref(),
        ));
    }
    Ok(Json(out))
}

fn object_or_empty(value: serde_json::Value, what: &str) -> ApiResult<serde_json::Value> {
    match value {
        serde_json::Value::Null => Ok(serde_json::json!({})),
        serde_json::Value::Object(_) => Ok(value),
        _ => Err(ApiError::unprocessable(
            "invalid_body",
            format!("{what} must be a JSON object"),
        )),
    }
}

/// Reads and checks the common settings: unknown keys and bad values are named.
fn parse_settings(value: serde_json::Value) -> ApiResult<ConnectionSettings> {
    let settings: ConnectionSettings = serde_json::from_value(value)
        .map_err(|e| ApiError::unprocessable("invalid_settings", format!("settings: {e}")))?;
    settings
        .validate()
        .map_err(|e| ApiError::unprocessable("invalid_settings", format!("settings: {e}")))?;
    Ok(settings)
}

/// Checks platform settings and credentials against the connector kind's schema.
fn check_platform(
    api: &Api,
    platform: PlatformKind,
    platform_settings: &serde_json::Value,
    credentials: &serde_json::Value,
) -> ApiResult<()> {
    let credentials = Credentials::from_json(credentials.clone())
        .map_err(|e| ApiError::unprocessable("invalid_credentials", e.to_string()))?;
    api.registry()
        .settings_schema(platform)
        .map_err(|e| ApiError::unprocessable("invalid_platform", e.to_string()))?
        .check(platform_settings, &credentials)
        .map_err(|e| {
            ApiError::unprocessable(
                "invalid_platform_settings",
                format!("the {} settings: {e}", platform.as_str()),
            )
        })
}

fn seal(api: &Api, credentials: &serde_json::Value) -> ApiResult<Vec<u8>> {
    sealing::seal_json(api.key(), credentials)
        .map_err(|e| ApiError::unprocessable("invalid_credentials", e.to_string()))
}

fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "a connection's name must have 1 to 100 characters",
        ));
    }
    Ok(name.to_owned())
}

/// The connection's schedule as its settings say (`fetch_interval_secs`, `daily_full_scan`).
async fn apply_schedule(api: &Api, account: AccountId, connection: &Connection) -> ApiResult<()> {
    let interval = connection
        .settings
        .fetch_interval_secs
        .map(Duration::from_secs);
    api.jobs()
        .set_schedule(
            account,
            connection.id,
            interval,
            connection.settings.daily_full_scan.as_deref(),
        )
        .await?;
    Ok(())
}

/// Adds a connection. Its credentials are sealed before they reach the store.
#[utoipa::path(post, path = "/connections", tag = "connections",
    request_body = CreateConnection,
    responses(
        (status = 201, description = "Created", body = ConnectionView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "A field or setting is invalid", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn create_connection(
    State(api): State<Api>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateConnection>,
) -> ApiResult<(StatusCode, Json<ConnectionView>)> {
    let name = check_name(&body.name)?;
    let platform = PlatformKind::parse(&body.platform).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_platform",
            format!(
                "unknown platform {:?}: expected shopify, woocommerce, mercadolibre or csv",
                body.platform
            ),
        )
    })?;
    let settings = parse_settings(object_or_empty(body.settings, "settings")?)?;
    let platform_settings = object_or_empty(body.platform_settings, "platform_settings")?;
    let credentials = object_or_empty(body.credentials, "credentials")?;
    check_platform(&api, platform, &platform_settings, &credentials)?;
    let sealed = seal(&api, &credentials)?;
    let connection = api
        .store()
        .create_connection(
            &NewConnection {
                account: caller.account,
                platform,
                name,
                settings,
                platform_settings,
                credentials: Some(sealed),
            },
            api.now(),
        )
        .await?;
    apply_schedule(&api, caller.account, &connection).await?;
    tracing::info!(connection = %connection.id, platform = platform.as_str(), "connection added");
    let view = view(&api, caller.account, &connection).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One connection: settings, state, queued changes, schedule (never its credentials).
#[utoipa::path(get, path = "/connections/{id}", tag = "connections",
    params(("id" = i64, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The connection", body = ConnectionView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn get_connection(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<ConnectionView>> {
    let connection = connection_of(&api, caller.account, id).await?;
    Ok(Json(view(&api, caller.account, &connection).await?))
}

/// RFC 7396 merge patch of `patch` into `target`.
fn merge_patch(target: &mut serde_json::Value, patch: serde_json::Value) {
    match patch {
        serde_json::Value::Object(entries) => {
            if !target.is_object() {
                *target = serde_json::json!({});
            }
            if let Some(object) = target.as_object_mut() {
                for (key, value) in entries {
                    if value.is_null() {
                        object.remove(&key);
                    } else {
                        merge_patch(object.entry(key).or_insert(serde_json::Value::Null), value);
                    }
                }
            }
        }
        other => *target = other,
    }
}

/// Renames a connection, changes its settings (merge patch) or replaces its credentials.
#[utoipa::path(patch, path = "/connections/{id}", tag = "connections",
    params(("id" = i64, Path, description = "Connection id")),
    request_body = PatchConnection,
    responses(
        (status = 200, description = "The updated connection", body = ConnectionView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "A field or setting is invalid", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn patch_connection(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody<PatchConnection>,
) -> ApiResult<Json<ConnectionView>> {
    let account = caller.account;
    let connection = connection_of(&api, account, id).await?;
    let name = body.name.as_deref().map(check_name).transpose()?;
    let settings = match body.settings {
        Some(patch) => {
            let mut current = serde_json::to_value(&connection.settings)
                .map_err(|e| ApiError::internal("stored settings unreadable", &e))?;
            merge_patch(&mut current, object_or_empty(patch, "settings")?);
            Some(parse_settings(current)?)
        }
        None => None,
    };
    let platform_settings = match body.platform_settings {
        Some(patch) => {
            let mut current = connection.platform_settings.clone();
            merge_patch(&mut current, object_or_empty(patch, "platform_settings")?);
            Some(current)
        }
        None => None,
    };
    let sealed = match &body.credentials {
        Some(credentials) => {
            let credentials = object_or_empty(credentials.clone(), "credentials")?;
            check_platform(
                &api,
                connection.platform,
                platform_settings
                    .as_ref()
                    .unwrap_or(&connection.platform_settings),
                &credentials,
            )?;
            Some(seal(&api, &credentials)?)
        }
        None => None,
    };
    if let (Some(platform_settings), None) = (&platform_settings, &sealed) {
        // New platform settings must still fit the stored credentials.
        let stored = api.store().connection_credentials(connection.id).await?;
        let credentials = match stored {
            Some(blob) => sealing::open(api.key(), &blob)
                .map_err(|e| ApiError::internal("stored credentials unreadable", &e))?,
            None => Credentials::new(),
        };
        api.registry()
            .settings_schema(connection.platform)
            .map_err(|e| ApiError::unprocessable("invalid_platform", e.to_string()))?
            .check(platform_settings, &credentials)
            .map_err(|e| ApiError::unprocessable("invalid_platform_settings", e.to_string()))?;
    }
    let store = api.store();
    let now = api.now();
    let mut tx = store.begin().await?;
    if let Some(sealed) = &sealed {
        tx.set_connection_credentials(account, connection.id, Some(sealed), now)
            .await?;
    }
    let updated = if name.is_some() || settings.is_some() || platform_settings.is_some() {
        tx.update_connection(
            account,
            connection.id,
            &ConnectionPatch {
                name,
                settings,
                platform_settings,
            },
            now,
        )
        .await?
    } else {
        connection
    };
    tx.commit().await?;
    apply_schedule(&api, account, &updated).await?;
    if sealed.is_some() {
        tracing::info!(connection = %updated.id, "connection re-authenticated");
    }
    Ok(Json(view(&api, account, &updated).await?))
}

/// Removes a connection from tidemark (its bindings, snapshots and queued changes). Nothing is
/// deleted on the platform.
#[utoipa::path(delete, path = "/connections/{id}", tag = "connections",
    params(("id" = i64, Path, description = "Connection id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn delete_connection(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    if api
        .store()
        .delete_connection(caller.account, ConnectionId(id))
        .await?
    {
        tracing::info!(connection = id, "connection removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("connection {id}")))
    }
}

fn accepted(submission: Submission) -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            job: JobView::from(&submission.run),
            created: submission.created,
        }),
    )
}

fn scan_kinds(kinds: &[String]) -> ApiResult<Vec<ScanKind>> {
    kinds
        .iter()
        .map(|k| {
            ScanKind::parse(k).ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_kind",
                    format!("unknown kind {k:?}: expected products or orders"),
                )
            })
        })
        .collect()
}

fn fetch_request(body: &FetchBody) -> ApiResult<FetchRequest> {
    let scope = match body.scope {
        FetchScopeName::Incremental => FetchScope::Incremental,
        FetchScopeName::Full => FetchScope::Full,
    };
    Ok(FetchRequest {
        scope,
        kinds: scan_kinds(&body.kinds)?,
    })
}

/// Queues a fetch or a sync (a fetch with its send) of the caller's connection.
async fn scan(
    api: &Api,
    caller: Caller,
    id: i64,
    body: &FetchBody,
    kind: JobKind,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let connection = connection_of(api, caller.account, id).await?;
    let request = fetch_request(body)?;
    let jobs = api.jobs();
    let submission = if kind == JobKind::Sync {
        jobs.sync(caller.account, connection.id, &request, "user")
            .await?
    } else {
        jobs.fetch(caller.account, connection.id, &request, "user")
            .await?
    };
    Ok(accepted(submission))
}

/// Fetch updates: queue a fetch (incremental by default, or full).
#[utoipa::path(post, path = "/connections/{id}/fetch", tag = "jobs",
    params(("id" = i64, Path, description = "Connection id")),
    request_body(content = FetchBody, description = "Optional; incremental by default"),
    responses(
        (status = 202, description = "Queued (or the equal run already waiting)", body = Accepted),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
        (status = 422, description = "Invalid scope or kind", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn fetch(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody<FetchBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    scan(&api, caller, id, &body, JobKind::Fetch).await
}

/// Send updates: queue a send of the connection's queued changes.
#[utoipa::path(post, path = "/connections/{id}/send", tag = "jobs",
    params(("id" = i64, Path, description = "Connection id")),
    request_body(content = EmptyBody, description = "Optional; no parameters"),
    responses(
        (status = 202, description = "Queued", body = Accepted),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
        (status = 422, description = "Unknown fields in the body", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn send(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
    _body: JsonBody<EmptyBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let connection = connection_of(&api, caller.account, id).await?;
    let submission = api
        .jobs()
        .send(caller.account, connection.id, "user")
        .await?;
    Ok(accepted(submission))
}

/// Sync: fetch and send together.
#[utoipa::path(post, path = "/connections/{id}/sync", tag = "jobs",
    params(("id" = i64, Path, description = "Connection id")),
    request_body(content = FetchBody, description = "Optional; the fetch's scope"),
    responses(
        (status = 202, description = "Queued", body = Accepted),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
        (status = 422, description = "Invalid scope or kind", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn sync(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody<FetchBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    scan(&api, caller, id, &body, JobKind::Sync).await
}

/// Pauses or resumes (the jobs that waited are sent to the workers) the caller's connection.
async fn set_paused(
    api: &Api,
    caller: Caller,
    id: i64,
    paused: bool,
) -> ApiResult<Json<ConnectionView>> {
    let connection = connection_of(api, caller.account, id).await?;
    if paused {
        api.jobs().pause(caller.account, connection.id).await?;
    } else {
        api.jobs().resume(caller.account, connection.id).await?;
    }
    let connection = connection_of(api, caller.account, id).await?;
    Ok(Json(view(api, caller.account, &connection).await?))
}

/// Pause: running jobs stop at their next page; queued ones wait for resume.
#[utoipa::path(post, path = "/connections/{id}/pause", tag = "connections",
    params(("id" = i64, Path, description = "Connection id")),
    responses(
        (status = 200, description = "Paused", body = ConnectionView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn pause(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<ConnectionView>> {
    set_paused(&api, caller, id, true).await
}

/// Resume (Play): the jobs that waited run.
#[utoipa::path(post, path = "/connections/{id}/resume", tag = "connections",
    params(("id" = i64, Path, description = "Connection id")),
    responses(
        (status = 200, description = "Resumed", body = ConnectionView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn resume(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<ConnectionView>> {
    set_paused(&api, caller, id, false).await
}

/// Resync a window of recent changes (once an hour) or one record (once every 5 minutes);
/// inside the cooldown: 429 with the time left.
#[utoipa::path(post, path = "/connections/{id}/resync", tag = "jobs",
    params(("id" = i64, Path, description = "Connection id")),
    request_body = ResyncBody,
    responses(
        (status = 202, description = "Queued", body = Accepted),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
        (status = 422, description = "Neither or both of window and record, or unknown values", body = ErrorBody),
        (status = 429, description = "Inside the cooldown; details.retry_after_secs says how long", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn resync(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody<ResyncBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let connection = connection_of(&api, caller.account, id).await?;
    let resync = match (&body.window, &body.record) {
        (Some(window), None) => Resync::Window(ResyncWindow::parse(window)?),
        (None, Some(record)) => {
            let kind = scan_kinds(std::slice::from_ref(&record.kind))?
                .into_iter()
                .next()
                .unwrap_or(ScanKind::Products);
            let external_id = record.external_id.trim();
            if external_id.is_empty() {
                return Err(ApiError::unprocessable(
                    "invalid_body",
                    "record.external_id must not be empty",
                ));
            }
            Resync::Record {
                kind,
                external_id: ExternalId::new(external_id),
            }
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_body",
                "give either a window (today, 1d, 7d, 30d, 60d) or a record, not both",
            ));
        }
    };
    let submission = api
        .jobs()
        .resync(caller.account, connection.id, &resync, "user")
        .await?;
    Ok(accepted(submission))
}

/// Reset clocks: the next fetch of each kind is a full scan.
#[utoipa::path(post, path = "/connections/{id}/reset-clocks", tag = "connections",
    params(("id" = i64, Path, description = "Connection id")),
    request_body = ResetClocksBody,
    responses(
        (status = 200, description = "The connection with its clocks reset", body = ConnectionView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
        (status = 422, description = "Unknown kind", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn reset_clocks(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody<ResetClocksBody>,
) -> ApiResult<Json<ConnectionView>> {
    let connection = connection_of(&api, caller.account, id).await?;
    let kinds = scan_kinds(&body.kinds)?;
    if kinds.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "kinds must name products, orders or both",
        ));
    }
    api.store()
        .reset_clocks(caller.account, connection.id, &kinds)
        .await?;
    let connection = connection_of(&api, caller.account, id).await?;
    Ok(Json(view(&api, caller.account, &connection).await?))
}

/// Counts by state, open issues and job history of a connection.
#[utoipa::path(get, path = "/connections/{id}/stats", tag = "connections",
    params(("id" = i64, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The connection's stats", body = StatsView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn stats(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<StatsView>> {
    let account = caller.account;
    let connection = connection_of(&api, account, id).await?;
    let store = api.store();
    let mut bound = BTreeMap::new();
    for (name, kind) in [
        ("products", RecordKind::Product),
        ("orders", RecordKind::Order),
    ] {
        bound.insert(
            name.to_owned(),
            store.count_bindings(connection.id, kind).await?,
        );
    }
    let queued = store.pending_counts(account, connection.id).await?;
    let history = store
        .list_job_runs(
            account,
            &JobRunFilter {
                connection: Some(connection.id),
                kind: None,
                states: Vec::new(),
                before: None,
                limit: 500,
            },
        )
        .await?;
    let mut jobs_by_state = BTreeMap::new();
    for run in &history {
        *jobs_by_state
            .entry(run.state.as_str().to_owned())
            .or_insert(0) += 1;
    }
    let issues = store
        .list_issues(
            account,
            &IssueFilter {
                connection: Some(connection.id),
                record: None,
                open_only: true,
                before: None,
                limit: 1000,
            },
        )
        .await?;
    let mut open_issues = BTreeMap::new();
    for issue in &issues {
        *open_issues
            .entry(issue.severity.as_str().to_owned())
            .or_insert(0) += 1;
    }
    Ok(Json(StatsView {
        connection: connection.id.0,
        bound,
        queued_changes: queued.into(),
        open_issues,
        jobs_by_state,
        history: history.iter().take(25).map(JobView::from).collect(),
        issues: issues.iter().take(25).map(IssueView::from).collect(),
    }))
}

/// Maintenance: queue the integrity fix (re-normalise snapshots, fix hashes, drop orphan
/// bindings, rebuild missing queued changes); its report is the job's counts.
#[utoipa::path(post, path = "/connections/{id}/maintenance/integrity-fix", tag = "jobs",
    params(("id" = i64, Path, description = "Connection id")),
    request_body(content = EmptyBody, description = "Optional; no parameters"),
    responses(
        (status = 202, description = "Queued", body = Accepted),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection in this account", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn integrity_fix(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
    _body: JsonBody<EmptyBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let connection = connection_of(&api, caller.account, id).await?;
    let submission = api
        .jobs()
        .integrity_fix(caller.account, connection.id, "user")
        .await?;
    Ok(accepted(submission))
}

#[cfg(test)]
mod tests {
    use super::merge_patch;

    #[test]
    fn merge_patch_replaces_adds_and_removes_keys() {
        let mut target = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        merge_patch(
            &mut target,
            serde_json::json!({"a": 5, "b": {"c": null, "x": true}, "e": [2], "n": "new"}),
        );
        assert_eq!(
            target,
            serde_json::json!({"a": 5, "b": {"d": 3, "x": true}, "e": [2], "n": "new"})
        );
    }
}
