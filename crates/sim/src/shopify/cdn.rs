//! Media bytes at each file's own URL (`/_sim/shopify/cdn/files/{id}.png`), as Shopify's CDN
//! serves them: unauthenticated and never faulted. Seeded files are small PNGs; files made
//! from an `originalSource` serve exactly the bytes downloaded from it.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ShopifySim;

pub(super) fn routes(sim: ShopifySim) -> Router {
    Router::new()
        .route("/_sim/shopify/cdn/files/{file}", get(file))
        .with_state(sim)
}

async fn file(State(sim): State<ShopifySim>, Path(file): Path<String>) -> Response {
    let Some(id) = file
        .strip_suffix(".png")
        .and_then(|id| id.parse::<u64>().ok())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let media = sim.lock().files.get(&id).cloned();
    match media.and_then(|m| m.content()) {
        Some(bytes) => {
            let kind = if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
                "image/jpeg"
            } else if bytes.starts_with(b"GIF8") {
                "image/gif"
            } else if bytes.starts_with(b"RIFF") {
                "image/webp"
            } else {
                "image/png"
            };
            ([(header::CONTENT_TYPE, kind)], bytes.as_ref().clone()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
