//! `/jobs`: the account's job runs (history and progress), and cancelling one.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use tidemark_core::{ConnectionId, JobRunId};
use tidemark_store::{JobKind, JobRunFilter, JobState};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Caller, PathId};
use crate::state::Api;
use crate::views::{JobView, Page, paging};

pub fn router() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(cancel_job))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// Only this connection's runs.
    pub connection: Option<i64>,
    /// queued, running, succeeded, failed or cancelled; comma-separated for several.
    pub state: Option<String>,
    /// fetch, send, sync or integrity_fix.
    pub kind: Option<String>,
    /// The `next` of the previous page (runs are newest first).
    pub cursor: Option<String>,
    /// Runs per page (1–200, default 50).
    pub limit: Option<i64>,
}

/// The account's job runs, newest first.
#[utoipa::path(get, path = "/jobs", tag = "jobs",
    params(JobsQuery),
    responses(
        (status = 200, description = "A page of runs", body = Page<JobView>),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_jobs(
    State(api): State<Api>,
    caller: Caller,
    ApiQuery(query): ApiQuery<JobsQuery>,
) -> ApiResult<Json<Page<JobView>>> {
    let states = match &query.state {
        None => Vec::new(),
        Some(text) => text
            .split(',')
            .map(|s| {
                JobState::parse(s.trim()).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!(
                            "state {s:?}: expected queued, running, succeeded, failed or cancelled"
                        ),
                    )
                })
            })
            .collect::<ApiResult<_>>()?,
    };
    let kind = query
        .kind
        .as_deref()
        .map(|k| {
            JobKind::parse(k).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("kind {k:?}: expected fetch, send, sync or integrity_fix"),
                )
            })
        })
        .transpose()?;
    let (limit, before) = paging(query.limit, query.cursor.as_deref(), 50)?;
    let runs = api
        .store()
        .list_job_runs(
            caller.account,
            &JobRunFilter {
                connection: query.connection.map(ConnectionId),
                kind,
                states,
                before: before.map(JobRunId),
                limit: limit + 1,
            },
        )
        .await?;
    let items: Vec<JobView> = runs.iter().map(JobView::from).collect();
    Ok(Json(Page::of(items, limit, |j| j.id)))
}

/// One run: its state, progress and counts.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "Job run id")),
    responses(
        (status = 200, description = "The run", body = JobView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such run in this account", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn get_job(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<JobView>> {
    let run = api
        .store()
        .get_account_job_run(caller.account, JobRunId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    Ok(Json(JobView::from(&run)))
}

/// Cancels a run: a queued one never starts, a running one stops at its next page.
#[utoipa::path(post, path = "/jobs/{id}/cancel", tag = "jobs",
    params(("id" = i64, Path, description = "Job run id")),
    responses(
        (status = 200, description = "Cancelled", body = JobView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such run in this account", body = ErrorBody),
        (status = 409, description = "The run has already finished", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn cancel_job(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<JobView>> {
    let store = api.store();
    let run = store
        .get_account_job_run(caller.account, JobRunId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    if !api.jobs().cancel(caller.account, run.id).await? {
        return Err(ApiError::conflict(format!(
            "job {id} has already finished ({})",
            run.state.as_str()
        )));
    }
    let run = store
        .get_account_job_run(caller.account, run.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    Ok(Json(JobView::from(&run)))
}
