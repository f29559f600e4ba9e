//! The web console: plain HTML, CSS and JavaScript embedded in the binary (no CDN; it works
//! offline), served at `/`. It logs in with an API token kept in the tab's session storage
//! and talks to `/api/v1` like any other client.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use crate::state::Api;

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");

/// Only the console's own script and style run; images may come from the platforms.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: http: https:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn router() -> Router<Api> {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style))
}

fn with_policy(response: impl IntoResponse) -> impl IntoResponse {
    let mut response = response.into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn index() -> impl IntoResponse {
    with_policy(Html(INDEX))
}

async fn script() -> impl IntoResponse {
    with_policy((
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    ))
}

async fn style() -> impl IntoResponse {
    with_policy(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE))
}
