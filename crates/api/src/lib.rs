//! tidemark-api: the HTTP side of tidemark (DESIGN §7, §8) — the versioned JSON API under
//! `/api/v1`, platform webhooks, live events, health and metrics, and the web console.
//!
//! * Every `/api/v1` route takes a bearer token (hashed at rest, scoped to an account) and
//!   reads only that account's records: another account's id is a 404, never its data.
//! * Bodies are JSON with unknown fields refused and a size cap; every error is
//!   `{"error": {"code", "message", "details"}}` ([`ApiError`]).
//! * Credentials are write-only: sealed (AES-256-GCM) before they reach the store, never in
//!   an answer or a log line.
//! * The OpenAPI document (`/api/v1/openapi.json`) is generated from the same route
//!   registrations that build the router ([`openapi`]), so it cannot miss a route.
//!
//! Boundary: the API asks the job system ([`tidemark_jobs::Jobs`]) for work and reads the
//! store; it runs no engine procedure itself.

pub mod console;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod routes;
pub mod state;
pub mod views;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ApiResult};
pub use state::{Api, ApiConfig};

/// The path of the API's version 1.
pub const API_PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tidemark",
        description = "Keeps a merchant's products and sales orders in step across selling \
                       platforms. Times are milliseconds since the Unix epoch (UTC); money is \
                       decimal text. Errors are {\"error\": {\"code\", \"message\", \"details\"}}."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "account", description = "Who the token belongs to"),
        (name = "connections", description = "Connections to platforms and their settings"),
        (name = "jobs", description = "Fetch, send, sync and maintenance runs"),
        (name = "records", description = "The product and order browsers"),
        (name = "issues", description = "Platform errors and troubleshoot"),
        (name = "events", description = "Live progress"),
        (name = "webhooks", description = "Platform deliveries (signed; no token)"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from `tidemark token create` (shown once)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Caps bodies at `limit`: a declared length above it is refused from the headers, before
/// any of the body is read; a body that grows past it is refused when it does.
fn body_limit<S: Clone + Send + Sync + 'static>(
    router: OpenApiRouter<S>,
    limit: usize,
) -> OpenApiRouter<S> {
    router
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(DefaultBodyLimit::max(limit))
}

/// Every documented route, registered once for both the router and the document.
fn documented(api_body_limit: usize) -> OpenApiRouter<Api> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            API_PREFIX,
            body_limit(
                routes::router().routes(routes!(events::events)),
                api_body_limit,
            ),
        )
        // Platforms send whole products: webhooks get a larger cap than API requests.
        .merge(body_limit(
            OpenApiRouter::new().routes(routes!(webhooks::webhook)),
            webhooks::WEBHOOK_BODY_LIMIT,
        ))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
}

/// The OpenAPI 3.1 document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = documented(ApiConfig::default().body_limit).into_openapi();
    doc.paths.paths.insert(
        format!("{API_PREFIX}/openapi.json"),
        utoipa::openapi::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .tag("operations")
                .summary(Some("This document"))
                .operation_id(Some("openapi"))
                .response(
                    "200",
                    utoipa::openapi::ResponseBuilder::new()
                        .description("The OpenAPI document")
                        .content(
                            "application/json",
                            utoipa::openapi::ContentBuilder::new()
                                .schema(Some(utoipa::openapi::ObjectBuilder::new()))
                                .build(),
                        ),
                ),
        ),
    );
    doc
}

/// The whole HTTP application: API, webhooks, health, metrics and the console.
pub fn app(api: Api) -> Router {
    let body_limit = api.config().body_limit;
    let (router, _) = documented(body_limit).split_for_parts();
    let document: Arc<String> =
        Arc::new(serde_json::to_string(&openapi()).unwrap_or_else(|_| "{}".to_owned()));
    router
        .route(
            &format!("{API_PREFIX}/openapi.json"),
            get(move || {
                let document = document.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        document.as_str().to_owned(),
                    )
                }
            }),
        )
        .merge(console::router())
        .fallback(|| async { ApiError::not_found("this path") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not take that method",
            )
            .into_response()
        })
        .layer(axum::middleware::map_response(error_shape_413))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(api)
}

/// The body-limit layer answers 413 in plain text: give it the API's error shape.
async fn error_shape_413(response: axum::response::Response) -> axum::response::Response {
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| !v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && plain {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than this server accepts",
        )
        .into_response();
    }
    response
}
