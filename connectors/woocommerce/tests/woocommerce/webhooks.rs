//! Webhook verification: WooCommerce's own signature test vector (read from the shared data
//! folder, never copied: it is GPL) and real deliveries from the simulator to a loopback
//! receiver.

use crate::common;

use std::time::Duration;

use common::setup;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tidemark_connector::{Authenticity, Connector, ConnectorError};
use tidemark_core::ScanKind;
use tidemark_sim::FaultConfig;
use tidemark_woocommerce::{Keys, Settings, WooCommerce};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;

fn connector(secret: &str) -> WooCommerce {
    WooCommerce::new(
        Settings::new("http://127.0.0.1:9"),
        Keys {
            consumer_key: "ck".into(),
            consumer_secret: "cs".into(),
            webhook_secret: Some(secret.into()),
        },
    )
    .unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn woocommerce_signature_vector_verifies_and_a_changed_byte_fails() {
    let Some(path) =
        tidemark_testkit::shared_data_file("signatures/woocommerce_webhook_signature_vector.json")
    else {
        return;
    };
    let vector: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let secret = vector["secret"].as_str().unwrap();
    let payload = vector["payload"].as_str().unwrap().as_bytes().to_vec();
    let header_name = vector["header_name"].as_str().unwrap();
    let expected = vector["expected_header_value"].as_str().unwrap();
    let wc = connector(secret);
    let signed = headers(&[
        (header_name, expected),
        ("X-WC-Webhook-Topic", "product.updated"),
        ("X-WC-Webhook-Delivery-ID", "1"),
    ]);
    let event = wc.verify_webhook(&signed, &payload).unwrap();
    assert_eq!(event.authenticity, Authenticity::Signed);
    assert_eq!(event.delivery_id, "1");

    // One byte changed in the body, or in the signature: refused.
    for i in 0..payload.len() {
        let mut changed = payload.clone();
        changed[i] ^= 0x01;
        let err = wc.verify_webhook(&signed, &changed).unwrap_err();
        assert!(matches!(err, ConnectorError::Unauthorized { .. }), "{err}");
    }
    let mut sig = expected.as_bytes().to_vec();
    sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
    let bad = headers(&[
        (header_name, std::str::from_utf8(&sig).unwrap()),
        ("X-WC-Webhook-Delivery-ID", "1"),
    ]);
    assert!(matches!(
        wc.verify_webhook(&bad, &payload).unwrap_err(),
        ConnectorError::Unauthorized { .. }
    ));
    // Another secret: refused.
    assert!(
        connector("not-the-secret")
            .verify_webhook(&signed, &payload)
            .is_err()
    );
}

/// A loopback receiver that answers 200 and hands over each delivery's headers and body.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(HeaderMap, Vec<u8>)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hooks/woocommerce",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 8192];
                let (head_end, length) = loop {
                    let n = stream.read(&mut buf).await.unwrap();
                    assert!(n > 0, "delivery cut short");
                    raw.extend_from_slice(&buf[..n]);
                    if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&raw[..end]).to_string();
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while raw.len() < head_end + length {
                    let n = stream.read(&mut buf).await.unwrap();
                    assert!(n > 0, "body cut short");
                    raw.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
                let mut map = HeaderMap::new();
                for line in head.lines().skip(1) {
                    if let Some((k, v)) = line.split_once(':')
                        && let (Ok(k), Ok(v)) = (
                            HeaderName::from_bytes(k.trim().as_bytes()),
                            HeaderValue::from_str(v.trim()),
                        )
                    {
                        map.insert(k, v);
                    }
                }
                let body = raw[head_end..head_end + length].to_vec();
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tx.send((map, body));
            });
        }
    });
    (url, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(HeaderMap, Vec<u8>)>) -> (HeaderMap, Vec<u8>) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a delivery within 10 s")
        .expect("receiver open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_from_the_simulator_verify_with_topic_resource_and_delivery_id() {
    let (sim, _running, wc) = setup(10, FaultConfig::none()).await;
    let (url, mut rx) = receiver().await;
    sim.set_webhook(Some(url), Some("whsec_test".into()));

    // A buyer's order: order.created.
    let sku = sim.all_skus()[0].clone();
    let order_id = sim.place_order(&sku, 1).unwrap();
    let (headers, body) = next(&mut rx).await;
    let event = wc.verify_webhook(&headers, &body).unwrap();
    assert_eq!(event.topic, "order.created");
    assert_eq!(event.authenticity, Authenticity::Signed);
    let resource = event.resource.unwrap();
    assert_eq!(resource.kind, ScanKind::Orders);
    assert_eq!(resource.external_id.as_str(), order_id.to_string());
    assert!(!resource.deleted);
    assert_eq!(
        event.delivery_id,
        headers["x-wc-webhook-delivery-id"].to_str().unwrap()
    );
    let first_delivery = event.delivery_id.clone();

    // A product update through the API: product.updated, a new delivery id.
    let product_id = sim.product_ids()[2];
    let id = tidemark_core::ExternalId::new(product_id.to_string());
    let record = wc
        .fetch_one(ScanKind::Products, &id)
        .await
        .unwrap()
        .unwrap();
    let tidemark_core::RecordContent::Product(mut p) = record.content else {
        panic!()
    };
    p.title = "Hooked".into();
    let results = wc
        .apply_writes(&[tidemark_connector::Write {
            key: "w".into(),
            op: tidemark_connector::WriteOp::UpdateProduct {
                external_id: id.clone(),
                product: p,
                fields: [tidemark_core::Field::Title].into_iter().collect(),
                stock: vec![],
            },
        }])
        .await
        .unwrap();
    results[0].outcome.as_ref().unwrap();
    let (headers, body) = next(&mut rx).await;
    let event = wc.verify_webhook(&headers, &body).unwrap();
    assert_eq!(event.topic, "product.updated");
    let resource = event.resource.unwrap();
    assert_eq!(resource.kind, ScanKind::Products);
    assert_eq!(resource.external_id, id);
    assert_ne!(event.delivery_id, first_delivery);

    // The same delivery with one body byte changed is refused.
    let mut tampered = body.clone();
    tampered[body.len() / 2] ^= 0x20;
    assert!(matches!(
        wc.verify_webhook(&headers, &tampered).unwrap_err(),
        ConnectorError::Unauthorized { .. }
    ));
    // The simulator counts a delivery once its answer is back, which can be just after the
    // receiver here has the body.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let (delivered, failures, disabled) = loop {
        let state = sim.webhook_state();
        if state.0 >= 2 || tokio::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(delivered >= 2, "{delivered} deliveries counted");
    assert_eq!((failures, disabled), (0, false));
}
