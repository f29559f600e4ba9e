//! The versioned API's routes, one module per resource.

pub mod connections;
pub mod issues;
pub mod jobs;
pub mod records;

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Caller;
use crate::state::Api;
use crate::views::AccountView;

pub fn router() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(account))
        .merge(connections::router())
        .merge(jobs::router())
        .merge(records::router())
        .merge(issues::router())
}

/// The account the token belongs to (what the console's login checks).
#[utoipa::path(get, path = "/account", tag = "account",
    responses(
        (status = 200, description = "The caller's account", body = AccountView),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn account(State(api): State<Api>, caller: Caller) -> ApiResult<Json<AccountView>> {
    let account = api
        .store()
        .get_account(caller.account)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token's account is gone"))?;
    Ok(Json(AccountView {
        id: account.id.0,
        name: account.name,
    }))
}
