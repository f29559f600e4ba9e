//! Webhook deliveries: the REST v3 JSON of the resource, POSTed to the configured URL with
//! `X-WC-Webhook-Signature` = base64(HMAC-SHA256(secret, body)) and the other `X-WC-Webhook-*`
//! headers. After 5 consecutive failed deliveries the webhook is disabled, as WooCommerce does.
//!
//! The simulator writes its HTTP/1.1 request by hand on a tokio socket (plain `http://` only):
//! it needs no HTTP client crate for one POST.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::WooSim;

/// Deliveries disable the webhook after this many consecutive failures.
pub const MAX_FAILURES: u32 = 5;

#[derive(Debug, Clone)]
pub struct Delivery {
    pub topic: String,
    pub resource: String,
    pub event: String,
    pub body: Value,
}

impl Delivery {
    /// `_resource_id` names the record (kept at call sites for readability).
    pub fn new(topic: &str, resource: &str, event: &str, _resource_id: u64, body: Value) -> Self {
        Self {
            topic: topic.to_owned(),
            resource: resource.to_owned(),
            event: event.to_owned(),
            body,
        }
    }
}

/// base64(HMAC-SHA256(secret, body)).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let Ok(mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    base64::engine::general_purpose::STANDARD.encode(mac.chain_update(body).finalize().into_bytes())
}

/// Queues a delivery if a webhook URL is configured and enabled (asynchronously, as
/// WooCommerce's Action Scheduler does).
pub fn send(sim: &WooSim, delivery: Delivery) {
    let (url, secret, webhook_id, delivery_id) = {
        let mut shop = sim.lock();
        let hook = &mut shop.webhook;
        let Some(url) = hook.url.clone().filter(|_| !hook.disabled) else {
            return;
        };
        hook.next_delivery += 1;
        (url, hook.secret.clone(), hook.id, hook.next_delivery)
    };
    let body = serde_json::to_vec(&delivery.body).unwrap_or_default();
    let headers = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        (
            "X-WC-Webhook-Source".to_owned(),
            "http://127.0.0.1/".to_owned(),
        ),
        ("X-WC-Webhook-Topic".to_owned(), delivery.topic.clone()),
        (
            "X-WC-Webhook-Resource".to_owned(),
            delivery.resource.clone(),
        ),
        ("X-WC-Webhook-Event".to_owned(), delivery.event.clone()),
        (
            "X-WC-Webhook-Signature".to_owned(),
            signature(&secret, &body),
        ),
        ("X-WC-Webhook-ID".to_owned(), webhook_id.to_string()),
        (
            "X-WC-Webhook-Delivery-ID".to_owned(),
            delivery_id.to_string(),
        ),
    ];
    let sim = sim.clone();
    tokio::spawn(async move {
        let ok = post(&url, &headers, &body).await.unwrap_or(false);
        let mut shop = sim.lock();
        let hook = &mut shop.webhook;
        if ok {
            hook.consecutive_failures = 0;
            hook.delivered += 1;
        } else {
            hook.consecutive_failures += 1;
            if hook.consecutive_failures >= MAX_FAILURES {
                hook.disabled = true;
            }
        }
    });
}

/// POSTs `body` to an `http://host:port/path` URL; `Ok(true)` on a 2xx answer.
async fn post(url: &str, headers: &[(String, String)], body: &[u8]) -> std::io::Result<bool> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    if read.is_err() {
        return Ok(false);
    }
    let status = String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    Ok((200..300).contains(&status))
}
