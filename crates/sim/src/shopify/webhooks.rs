//! Webhook deliveries: REST-shaped JSON bodies POSTed to `ShopifyConfig::webhook_url` with
//! `X-Shopify-Topic`, `X-Shopify-Hmac-Sha256` (base64 HMAC-SHA256 of the body with
//! `webhook_secret`), `X-Shopify-Webhook-Id`, `X-Shopify-Shop-Domain` and
//! `X-Shopify-API-Version`. Each delivery is sent `1 + duplicates` times with the same id.
//! Plain HTTP/1.1 over TCP (loopback receivers only).

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ShopifySim;

static NEXT_DELIVERY: AtomicU64 = AtomicU64::new(1);

/// The base64 HMAC-SHA256 of `body` with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Sends `topic` with `body` to the configured URL (if any), in the background.
pub(super) fn deliver(sim: &ShopifySim, topic: &str, body: &Value) {
    let Some(url) = sim.config.webhook_url.clone() else {
        return;
    };
    let Ok(bytes) = serde_json::to_vec(body) else {
        return;
    };
    let signature = sign(sim.config.webhook_secret.as_bytes(), &bytes);
    let id = format!(
        "b54557e4-bdd9-4b37-8a5f-{:012x}",
        NEXT_DELIVERY.fetch_add(1, Ordering::Relaxed)
    );
    let copies = 1 + sim.webhook_duplicates.load(Ordering::Relaxed);
    let topic = topic.to_owned();
    let version = sim.config.api_version.clone();
    let delivered = sim.webhooks_sent.clone();
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        for _ in 0..copies {
            if post(&url, &topic, &id, &signature, &version, &bytes)
                .await
                .is_ok()
            {
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}

async fn post(
    url: &str,
    topic: &str,
    id: &str,
    signature: &str,
    version: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("only http:// webhook URLs"))?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Shopify-Topic: {topic}\r\nX-Shopify-Hmac-Sha256: {signature}\r\nX-Shopify-Webhook-Id: {id}\r\nX-Shopify-Shop-Domain: sim.myshopify.com\r\nX-Shopify-API-Version: {version}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    if answer.starts_with(b"HTTP/1.1 2") || answer.starts_with(b"HTTP/1.0 2") {
        Ok(())
    } else {
        Err(std::io::Error::other("webhook not accepted"))
    }
}
