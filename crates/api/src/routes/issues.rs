//! `/issues`: platform errors stored per record, and troubleshoot (grouped patterns with what
//! usually fixes them).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use tidemark_core::sets::{ConnectionRef, OrderSet, ProductSet};
use tidemark_core::troubleshoot::group_issues;
use tidemark_core::{ConnectionId, IssueId, RecordKind, RecordRef};
use tidemark_store::IssueFilter;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Caller, PathId};
use crate::state::Api;
use crate::views::{
    GroupConnection, IssueGroupView, IssueView, Page, RecordLink, paging, record_parts,
};

pub fn router() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_issues))
        .routes(routes!(troubleshoot))
        .routes(routes!(resolve_issue))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IssuesQuery {
    /// Only this connection's issues.
    pub connection: Option<i64>,
    /// Open issues only (default true).
    pub open: Option<bool>,
    /// The `next` of the previous page (newest first).
    pub cursor: Option<String>,
    /// Issues per page (1–200, default 50).
    pub limit: Option<i64>,
}

/// The account's issues, newest first.
#[utoipa::path(get, path = "/issues", tag = "issues",
    params(IssuesQuery),
    responses(
        (status = 200, description = "A page of issues", body = Page<IssueView>),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_issues(
    State(api): State<Api>,
    caller: Caller,
    ApiQuery(query): ApiQuery<IssuesQuery>,
) -> ApiResult<Json<Page<IssueView>>> {
    let (limit, before) = paging(query.limit, query.cursor.as_deref(), 50)?;
    let issues = api
        .store()
        .list_issues(
            caller.account,
            &IssueFilter {
                connection: query.connection.map(ConnectionId),
                record: None,
                open_only: query.open.unwrap_or(true),
                before: before.map(IssueId),
                limit: limit + 1,
            },
        )
        .await?;
    let items: Vec<IssueView> = issues.iter().map(IssueView::from).collect();
    Ok(Json(Page::of(items, limit, |i| i.id)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TroubleshootQuery {
    /// Only this connection's issues.
    pub connection: Option<i64>,
}

/// The most open issues troubleshoot reads; beyond that the groups are counted on these.
const TROUBLESHOOT_LIMIT: i64 = 10_000;

/// Open issues grouped by platform, code and message pattern, largest first, with the sets
/// that list the affected records and what usually fixes each group.
#[utoipa::path(get, path = "/issues/troubleshoot", tag = "issues",
    params(TroubleshootQuery),
    responses(
        (status = 200, description = "Groups of issues", body = Vec<IssueGroupView>),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn troubleshoot(
    State(api): State<Api>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TroubleshootQuery>,
) -> ApiResult<Json<Vec<IssueGroupView>>> {
    let store = api.store();
    let connections = store.list_connections(caller.account).await?;
    let by_id: BTreeMap<ConnectionId, _> = connections.iter().map(|c| (c.id, c)).collect();
    let issues = store
        .list_issues(
            caller.account,
            &IssueFilter {
                connection: query.connection.map(ConnectionId),
                record: None,
                open_only: true,
                before: None,
                limit: TROUBLESHOOT_LIMIT,
            },
        )
        .await?;
    let groups = group_issues(&issues, |id| by_id.get(&id).map(|c| c.platform));
    let mut views = Vec::with_capacity(groups.len());
    for g in groups {
        let orders =
            !g.records.is_empty() && g.records.iter().all(|r| matches!(r, RecordRef::Order(_)));
        let kind = if orders {
            RecordKind::Order
        } else {
            RecordKind::Product
        };
        let ids: Vec<i64> = g
            .records
            .iter()
            .map(|r| match r {
                RecordRef::Product(p) => p.0,
                RecordRef::Order(o) => o.0,
            })
            .collect();
        let bound = store
            .bindings_of_records(caller.account, kind, &ids)
            .await?;
        let mut affected = Vec::new();
        for id in &g.connections {
            let Some(c) = by_id.get(id) else { continue };
            // "on X" only narrows the list when the records are on X: a record whose
            // create failed there is not, and would drop out of the intersection.
            let all_bound = !ids.is_empty()
                && ids.iter().all(|record| {
                    bound
                        .iter()
                        .any(|b| b.connection == c.id && b.internal_id == *record)
                });
            let on = ConnectionRef(c.name.clone());
            let sets = match (orders, all_bound) {
                (true, true) => vec![OrderSet::OnConnection { connection: on }.to_string()],
                (true, false) => Vec::new(),
                (false, true) => vec![
                    ProductSet::OnConnection { connection: on }.to_string(),
                    ProductSet::WithIssues.to_string(),
                ],
                (false, false) => vec![ProductSet::WithIssues.to_string()],
            };
            affected.push(GroupConnection {
                id: c.id.0,
                name: c.name.clone(),
                sets,
            });
        }
        views.push(IssueGroupView {
            platform: g.platform.as_str().to_owned(),
            connections: affected,
            records: g
                .records
                .iter()
                .filter_map(|r| {
                    let (kind, id) = record_parts(Some(*r));
                    Some(RecordLink {
                        kind: kind?,
                        id: id?,
                    })
                })
                .collect(),
            code: g.code,
            pattern: g.pattern,
            example: g.example,
            severity: g.severity.as_str().to_owned(),
            issues: g.issues,
            occurrences: g.occurrences,
            first_seen: g.first_seen.0,
            last_seen: g.last_seen.0,
            advice: g.advice,
        });
    }
    Ok(Json(views))
}

/// Marks an issue resolved (it comes back if the platform says it again).
#[utoipa::path(post, path = "/issues/{id}/resolve", tag = "issues",
    params(("id" = i64, Path, description = "Issue id")),
    responses(
        (status = 200, description = "Resolved", body = IssueView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such open issue in this account", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn resolve_issue(
    State(api): State<Api>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<IssueView>> {
    let store = api.store();
    if !store
        .resolve_issue(caller.account, IssueId(id), api.now())
        .await?
    {
        return Err(ApiError::not_found(format!("open issue {id}")));
    }
    let issue = store
        .get_issue(caller.account, IssueId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("issue {id}")))?;
    Ok(Json(IssueView::from(&issue)))
}
