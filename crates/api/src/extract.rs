//! Extractors that answer in the API's error shape: the caller's account from a bearer token,
//! JSON bodies (unknown fields refused, size capped), query strings and path ids.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tidemark_core::AccountId;

use crate::error::ApiError;
use crate::state::Api;

/// The account whose bearer token came with the request.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub account: AccountId,
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Api: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let api = Api::from_ref(state);
        let refused = |message: &str| {
            api.metrics().auth_failures.inc();
            ApiError::unauthorized(message)
        };
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| refused("an Authorization: Bearer token is required"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or_else(|| refused("the Authorization header must be \"Bearer <token>\""))?;
        match api.store().authenticate_api_token(token, api.now()).await {
            Ok(Some(found)) => Ok(Caller {
                account: found.account,
            }),
            Ok(None) => Err(refused(
                "the token is not valid (revoked, mistyped or from another installation)",
            )),
            Err(error) => Err(error.into()),
        }
    }
}

/// A JSON body: `application/json`, at most the configured size, every field known. An empty
/// body reads as `T::default()` for requests whose body is optional.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// A request body type. `when_empty` is what an empty body means: nothing (the body is
/// required, the default) or a value (the body is optional).
pub trait Body: Sized {
    fn when_empty() -> Option<Self> {
        None
    }
}

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned + Body,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return T::when_empty().map(JsonBody).ok_or_else(|| {
                ApiError::bad_request("missing_body", "this request needs a JSON body")
            });
        }
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body, telling malformed JSON (400) from JSON of the wrong shape (422).
/// Deep nesting is refused by serde_json's recursion limit as malformed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::unprocessable(
            "invalid_body",
            format!("the body does not fit this request: {e}"),
        ),
        _ => ApiError::bad_request("malformed_json", format!("the body is not JSON: {e}")),
    })
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than this server accepts",
        )
    } else {
        ApiError::bad_request("unreadable_body", rejection.body_text())
    }
}

/// A query string, refused with 400 naming what is wrong.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e: QueryRejection| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// A numeric id in the path; anything else is a 404 (no such record), never a 500.
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<i64>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| PathId(id))
            .map_err(|_: PathRejection| ApiError::not_found("the record named in the path"))
    }
}
