//! Notifications: `{_id, resource, user_id, topic, application_id, attempts, sent, received}`
//! POSTed to the configured URL with no signature, as MercadoLibre sends them. Deliveries that
//! fail (or are not answered 2xx within 500 ms) stay readable from `/missed_feeds`.
//!
//! A receiver slower than 500 ms gets its topic disabled: later notifications of that topic
//! are not POSTed (only listed by `/missed_feeds`) until the URL is set again.
//!
//! The HTTP/1.1 request is written by hand on a tokio socket (plain `http://` only).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::MlSim;
use super::market::{Notification, format_utc, now_millis};

/// MercadoLibre expects an answer within this long.
const ANSWER_WITHIN: Duration = Duration::from_millis(500);

pub fn render(sim: &MlSim, n: &Notification) -> Value {
    json!({
        "_id": n.id,
        "resource": n.resource,
        "user_id": sim.config.user_id,
        "topic": n.topic,
        "application_id": sim.config.application_id,
        "attempts": 1,
        "sent": format_utc(n.sent),
        "received": format_utc(n.sent),
    })
}

/// Records a notification and, when a URL is configured, delivers it in the background.
pub fn send(sim: &MlSim, topic: &str, resource: &str) {
    let (notification, url) = {
        let mut market = sim.lock();
        market.notification_counter += 1;
        let n = Notification {
            id: format!(
                "{:08x}-sim-{:012x}",
                market.notification_counter, market.notification_counter
            ),
            resource: resource.to_owned(),
            topic: topic.to_owned(),
            sent: now_millis(),
            delivered: false,
        };
        market.notifications.push(n.clone());
        // A disabled topic sends nothing: the notification is only in `/missed_feeds`.
        let url = if market.disabled_topics.contains(topic) {
            None
        } else {
            market.notification_url.clone()
        };
        (n, url)
    };
    let Some(url) = url else {
        return;
    };
    let body = serde_json::to_vec(&render(sim, &notification)).unwrap_or_default();
    let sim = sim.clone();
    tokio::spawn(async move {
        let answer = tokio::time::timeout(ANSWER_WITHIN, post(&url, &body)).await;
        if answer.is_err() {
            // Slower than 500 ms: MercadoLibre disables the topic (no retries are modelled;
            // the notification stays in `/missed_feeds`).
            sim.lock()
                .disabled_topics
                .insert(notification.topic.clone());
        }
        if matches!(answer, Ok(Ok(true))) {
            let mut market = sim.lock();
            if let Some(n) = market
                .notifications
                .iter_mut()
                .find(|n| n.id == notification.id)
            {
                n.delivered = true;
            }
        }
    });
}

/// POSTs JSON to an `http://host:port/path` URL; `Ok(true)` on a 2xx answer.
async fn post(url: &str, body: &[u8]) -> std::io::Result<bool> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let status = String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    Ok((200..300).contains(&status))
}
