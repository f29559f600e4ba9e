//! `POST /webhooks/{connection_id}`: platform deliveries, without a bearer token. The
//! signature is verified over the raw body before anything else is done (Shopify and
//! WooCommerce: HMAC-SHA256, compared in constant time by the connector); a forged one is a
//! 401 and causes no work. A delivery already acted on (same delivery id) is answered 200 and
//! causes no work either, and a signed delivery older than the time delivery ids are kept is
//! refused, so a replay cannot outlive its id. What remains queues a one-record fetch.
//! MercadoLibre's notifications are unsigned hints: they are answered within the platform's
//! 500 ms and only ever queue a fetch of the record they name.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tidemark_connector::{Authenticity, ConnectorError, WebhookEvent};
use tidemark_core::{Connection, ConnectionId, Timestamp};
use tidemark_engine::{FetchRequest, FetchScope};
use tidemark_jobs::reconciler::WEBHOOK_DELIVERY_RETENTION;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::PathId;
use crate::state::Api;
use crate::views::WebhookAnswer;

/// The largest delivery accepted: platforms send whole products with every variant.
pub const WEBHOOK_BODY_LIMIT: usize = 8 * 1024 * 1024;

fn refused() -> ApiError {
    // The same answer for an unknown connection and a bad signature: nothing to probe.
    ApiError::unauthorized("the delivery's signature does not verify for this connection")
}

/// A platform's webhook delivery for one connection.
#[utoipa::path(post, path = "/webhooks/{connection_id}", tag = "webhooks",
    params(("connection_id" = i64, Path, description = "The connection the webhook was registered for")),
    request_body(content = Object, description = "The platform's delivery, signed in its headers (X-Shopify-Hmac-Sha256, X-WC-Webhook-Signature)"),
    responses(
        (status = 200, description = "Nothing to do: a repeated delivery, or a topic tidemark ignores", body = WebhookAnswer),
        (status = 202, description = "A fetch of the record is queued", body = WebhookAnswer),
        (status = 400, description = "The delivery cannot be read", body = ErrorBody),
        (status = 401, description = "Unknown connection, bad signature or a stale delivery", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    ))]
pub async fn webhook(
    State(api): State<Api>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match handle(&api, id, &headers, body).await {
        Ok((status, answer)) => {
            api.metrics().webhook(&answer.status);
            (status, Json(answer)).into_response()
        }
        Err(error) => {
            api.metrics().webhook("rejected");
            error.into_response()
        }
    }
}

async fn handle(
    api: &Api,
    id: i64,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, WebhookAnswer)> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the delivery is larger than this server accepts",
            )
        } else {
            ApiError::bad_request("unreadable_body", rejection.body_text())
        }
    })?;
    let connection = api
        .store()
        .load_connection(ConnectionId(id))
        .await?
        .ok_or_else(refused)?;
    let connector = api.connectors().connector(&connection).await.map_err(|e| {
        tracing::error!(connection = %connection.id, error = %e, "webhook: the connector cannot be built");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "connector_unavailable",
            "the connection cannot verify deliveries right now",
        )
    })?;
    let event = connector
        .verify_webhook(headers, &body)
        .map_err(|e| match e {
            ConnectorError::Unauthorized { .. } => {
                tracing::warn!(connection = %connection.id, "webhook refused: bad signature");
                refused()
            }
            other => ApiError::bad_request("unreadable_delivery", other.to_string()),
        })?;
    if event.authenticity == Authenticity::Signed && too_old(api, headers) {
        tracing::warn!(connection = %connection.id, delivery = %event.delivery_id, "webhook refused: older than delivery ids are kept");
        return Err(ApiError::unauthorized(
            "the delivery is older than this server remembers deliveries",
        ));
    }
    match event.authenticity {
        Authenticity::Signed => act(api, &connection, &event).await,
        Authenticity::HintOnly => {
            // Answer within the platform's deadline; the queueing goes on if it is slow.
            let task = {
                let api = api.clone();
                let connection = connection.clone();
                let event = event.clone();
                tokio::spawn(async move {
                    let result = act(&api, &connection, &event).await;
                    // The answer may have gone already: the log is where a failure shows.
                    if let Err(error) = &result {
                        tracing::warn!(connection = %connection.id, delivery = %event.delivery_id, error = %error.message, "webhook hint: the fetch was not queued");
                    }
                    result
                })
            };
            match tokio::time::timeout(api.config().hint_answer_within, task).await {
                Ok(Ok(result)) => result.map(|(_, answer)| (StatusCode::OK, answer)),
                Ok(Err(panic)) => Err(ApiError::internal("the webhook task failed", &panic)),
                Err(_) => Ok((
                    StatusCode::OK,
                    WebhookAnswer {
                        status: "accepted".into(),
                        job: None,
                    },
                )),
            }
        }
    }
}

/// Shopify stamps each delivery (`X-Shopify-Triggered-At`); one older than the delivery ids
/// are kept could be a replay whose id was already forgotten.
fn too_old(api: &Api, headers: &HeaderMap) -> bool {
    let Some(stamp) = headers
        .get("x-shopify-triggered-at")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Timestamp::parse_rfc3339(v).ok())
    else {
        return false;
    };
    let retention = i64::try_from(WEBHOOK_DELIVERY_RETENTION.as_millis()).unwrap_or(i64::MAX);
    api.now().0.saturating_sub(stamp.0) > retention
}

/// Dedupes the delivery and queues the one-record fetch it asks for.
async fn act(
    api: &Api,
    connection: &Connection,
    event: &WebhookEvent,
) -> ApiResult<(StatusCode, WebhookAnswer)> {
    let store = api.store();
    let delivery = event.delivery_id.trim();
    if !delivery.is_empty() && store.webhook_delivery_seen(connection.id, delivery).await? {
        tracing::debug!(connection = %connection.id, delivery, "webhook: repeated delivery, nothing to do");
        return Ok((
            StatusCode::OK,
            WebhookAnswer {
                status: "duplicate".into(),
                job: None,
            },
        ));
    }
    let Some(resource) = &event.resource else {
        if !delivery.is_empty() {
            store
                .record_webhook_delivery(connection.id, delivery, api.now())
                .await?;
        }
        return Ok((
            StatusCode::OK,
            WebhookAnswer {
                status: "ignored".into(),
                job: None,
            },
        ));
    };
    let request = FetchRequest::new(FetchScope::One {
        kind: resource.kind,
        external_id: resource.external_id.clone(),
        // An unsigned hint never says "deleted" with authority: the fetch finds out.
        deleted: resource.deleted && event.authenticity == Authenticity::Signed,
    });
    // Queued first, remembered second: a crash between the two repeats a fetch (harmless),
    // never loses one.
    let submission = api
        .jobs()
        .fetch(connection.account, connection.id, &request, "webhook")
        .await?;
    if !delivery.is_empty() {
        store
            .record_webhook_delivery(connection.id, delivery, api.now())
            .await?;
    }
    tracing::info!(connection = %connection.id, topic = %event.topic, job = %submission.run.id, "webhook: fetch queued");
    Ok((
        StatusCode::ACCEPTED,
        WebhookAnswer {
            status: "queued".into(),
            job: Some(submission.run.id.0),
        },
    ))
}
