//! Images against the WooCommerce simulator: a source the shop cannot download refuses that
//! product's write alone, as an issue on the record naming `images`; a variation image outside
//! the gallery is read as one of the product's images and reads the same on every scan; images
//! copied between shops keep their bytes; a variation left without an image is cleared (`{}`),
//! as WooCommerce reads that form.

use crate::common;

use common::{scan, setup, write_one};
use serde_json::{Value, json};
use tidemark_connector::http::{ApiRequest, HttpClient, HttpClientConfig, Idempotency};
use tidemark_connector::{Connector, ConnectorError, ScanScope, Write, WriteKey, WriteOp};
use tidemark_core::hash::{image_hash_url, product_hash};
use tidemark_core::{
    ExternalId, ExternalRecord, Field, FieldSet, Image, ImageHashSource, PlatformKind, Product,
    RecordContent, ScanKind, sample,
};
use tidemark_sim::FaultConfig;
use tidemark_sim::woocommerce::Edit;
use tidemark_woocommerce::{WooCommerce, mapping};

const UNREACHABLE: &str = "https://images.invalid/gone/front.jpg";

fn product(record: &ExternalRecord) -> &Product {
    match &record.content {
        RecordContent::Product(p) => p,
        _ => panic!("not a product"),
    }
}

async fn fetch(wc: &WooCommerce, id: &ExternalId) -> ExternalRecord {
    wc.fetch_one(ScanKind::Products, id).await.unwrap().unwrap()
}

fn image(src: &str, position: usize) -> Image {
    Image {
        external_id: None,
        content_hash: image_hash_url(src),
        src: src.to_owned(),
        hash_source: ImageHashSource::Url,
        position: position as u32,
        alt: None,
    }
}

fn new_simple(seed: u64) -> Product {
    let mut p = sample::product(seed);
    p.variants.truncate(1);
    p.variants[0].options.clear();
    p.sku = p.variants[0].sku.clone();
    p
}

/// The product as another platform would hand it over: no ids of this shop.
fn unbound(mut p: Product) -> Product {
    for image in &mut p.images {
        image.external_id = None;
    }
    for variant in &mut p.variants {
        variant.external_id = None;
    }
    p
}

fn assert_image_refusal(
    outcome: &Result<tidemark_connector::Confirmed, ConnectorError>,
    code: &str,
) {
    match outcome {
        Err(ConnectorError::Rejected {
            code: got,
            message,
            field,
            ..
        }) => {
            assert_eq!(got, code);
            assert_eq!(field.as_deref(), Some("images"));
            assert!(message.contains(UNREACHABLE), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_downloaded_is_an_issue_on_that_record_alone() {
    let (sim, _running, wc) = setup(10, FaultConfig::none()).await;
    let good = new_simple(91_001);
    let mut bad = new_simple(91_002);
    bad.images.push(image(UNREACHABLE, bad.images.len()));
    let existing = ExternalId::new(sim.product_ids()[1].to_string());
    let before = sim.product_json("", sim.product_ids()[1]).unwrap();
    let mut renamed = product(&fetch(&wc, &existing).await).clone();
    renamed.title = "Renamed with a broken image".into();
    renamed
        .images
        .push(image(UNREACHABLE, renamed.images.len()));
    let also_good = new_simple(91_003);

    let write = |key: &str, op| Write {
        key: WriteKey::from(key),
        op,
    };
    let results = wc
        .apply_writes(&[
            write(
                "good",
                WriteOp::CreateProduct {
                    product: good.clone(),
                },
            ),
            write(
                "bad",
                WriteOp::CreateProduct {
                    product: bad.clone(),
                },
            ),
            write(
                "renamed",
                WriteOp::UpdateProduct {
                    external_id: existing.clone(),
                    product: renamed,
                    fields: [Field::Title, Field::Images].into_iter().collect(),
                    stock: vec![],
                },
            ),
            write(
                "also_good",
                WriteOp::CreateProduct {
                    product: also_good.clone(),
                },
            ),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    assert!(results[0].outcome.is_ok(), "{:?}", results[0].outcome);
    assert_image_refusal(
        &results[1].outcome,
        "woocommerce_product_image_upload_error",
    );
    assert_image_refusal(
        &results[2].outcome,
        "woocommerce_product_image_upload_error",
    );
    assert!(results[3].outcome.is_ok(), "{:?}", results[3].outcome);

    // Nothing of the refused writes exists or changed; the others are there.
    let sku = |p: &Product| p.sku.clone().unwrap();
    assert!(sim.product_id_by_sku(&sku(&bad).0).is_none());
    assert!(wc.find_by_sku(&sku(&bad)).await.unwrap().is_none());
    assert_eq!(sim.product_json("", sim.product_ids()[1]).unwrap(), before);
    assert!(sim.product_id_by_sku(&sku(&good).0).is_some());
    assert!(sim.product_id_by_sku(&sku(&also_good).0).is_some());
}

#[test]
fn image_refusals_in_batch_items_and_answers_name_images() {
    // A variation batch item refused for its image (the connector sends variation images by
    // id, but a shop's answer is read whatever it holds).
    let item = json!({"id": 0, "error": {"code": "woocommerce_variation_image_upload_error",
        "message": format!("Error getting remote image {UNREACHABLE}. Error: cURL error 6"),
        "data": {"status": 400}}});
    let Some(ConnectorError::Rejected { code, field, .. }) = mapping::item_error(&item) else {
        panic!("not a rejection");
    };
    assert_eq!(code, "woocommerce_variation_image_upload_error");
    assert_eq!(field.as_deref(), Some("images"));
    for code in [
        "woocommerce_product_image_upload_error",
        "woocommerce_product_invalid_image_id",
        "woocommerce_variation_invalid_image_id",
    ] {
        let named = mapping::name_field(ConnectorError::rejected(code, "refused"));
        assert!(
            matches!(&named, ConnectorError::Rejected { field: Some(f), .. } if f == "images"),
            "{named:?}"
        );
    }
    // A field the answer names is kept.
    let named = mapping::name_field(
        ConnectorError::rejected("woocommerce_product_image_upload_error", "x").with_field("other"),
    );
    assert!(matches!(&named, ConnectorError::Rejected { field: Some(f), .. } if f == "other"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variation_image_outside_the_gallery_is_read_alike_by_every_scan_kept_and_deleted() {
    let (sim, _running, wc) = setup(3, FaultConfig::none()).await;
    let pid = sim.product_ids()[0];
    let id = ExternalId::new(pid.to_string());
    let shape = sim.product_json("", pid).unwrap();
    let gallery = shape["images"].as_array().unwrap().len();
    let last_sku = shape["_variations"].as_array().unwrap().last().unwrap()["sku"]
        .as_str()
        .unwrap()
        .to_owned();
    let edit = Edit {
        variation_sku: Some(last_sku.clone()),
        variation_image: true,
        ..Edit::default()
    };
    assert!(sim.edit_product(pid, &edit));
    let shape = sim.product_json("", pid).unwrap();
    let own = shape["_variations"].as_array().unwrap().last().unwrap()["image"]["id"]
        .as_u64()
        .unwrap();
    assert!(
        !sim.shapes()[&pid].images.contains(&own),
        "outside the gallery"
    );

    let read = fetch(&wc, &id).await;
    let p = product(&read);
    assert_eq!(
        p.images.len(),
        gallery + 1,
        "the variation's image is reported"
    );
    let reported = p.images.last().unwrap();
    assert_eq!(reported.external_id, Some(ExternalId::new(own.to_string())));
    assert_eq!(reported.position as usize, gallery);
    let variant = p
        .variants
        .iter()
        .find(|v| v.sku.as_ref().is_some_and(|s| s.0 == last_sku))
        .unwrap();
    assert_eq!(variant.image_hashes, vec![reported.content_hash]);

    // Scans read it the same way, every time.
    for _ in 0..2 {
        let scanned = scan(&wc, ScanScope::Full).await;
        let again = &scanned.records[&pid].1;
        assert_eq!(product(again), p);
        assert_eq!(product_hash(product(again)), product_hash(p));
    }

    // Written back as read (gallery and variants), nothing is lost or changes.
    let fields: FieldSet = [Field::Images, Field::Variants].into_iter().collect();
    let results = wc
        .apply_writes(&[Write {
            key: WriteKey::from("w"),
            op: WriteOp::UpdateProduct {
                external_id: id.clone(),
                product: p.clone(),
                fields,
                stock: vec![],
            },
        }])
        .await
        .unwrap();
    let written = results[0].outcome.clone().unwrap();
    assert_eq!(product_hash(product(&written.record)), product_hash(p));
    assert_eq!(product(&fetch(&wc, &id).await), p);

    // Deleted, it is gone from the record: from the gallery it was written to, and from the
    // variation.
    let results = wc
        .apply_writes(&[Write {
            key: WriteKey::from("d"),
            op: WriteOp::DeleteProductImage {
                product_id: id.clone(),
                image_id: reported.external_id.clone(),
                content_hash: reported.content_hash,
            },
        }])
        .await
        .unwrap();
    let deleted = results[0].outcome.clone().unwrap().record;
    let left = product(&deleted);
    assert_eq!(left.images.len(), gallery);
    assert!(
        !left
            .images
            .iter()
            .any(|i| i.content_hash == reported.content_hash)
    );
    assert!(
        left.variants
            .iter()
            .all(|v| !v.image_hashes.contains(&reported.content_hash))
    );
    assert_eq!(product(&fetch(&wc, &id).await), left);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_copied_between_shops_keeps_its_image_bytes() {
    let (from, _from_running, from_wc) = setup(3, FaultConfig::none()).await;
    let (to, _to_running, to_wc) = setup(0, FaultConfig::none()).await;
    let source = fetch(
        &from_wc,
        &ExternalId::new(from.product_ids()[0].to_string()),
    )
    .await;
    let original = product(&source);
    assert!(!original.images.is_empty());
    let results = to_wc
        .apply_writes(&[Write {
            key: WriteKey::from("copy"),
            op: WriteOp::CreateProduct {
                product: unbound(original.clone()),
            },
        }])
        .await
        .unwrap();
    let copy = results[0].outcome.clone().unwrap().record;
    let copied = product(&copy);
    assert_eq!(copied.images.len(), original.images.len());
    let id = |i: &Image| {
        i.external_id
            .as_ref()
            .unwrap()
            .as_str()
            .parse::<u64>()
            .unwrap()
    };
    for (a, b) in original.images.iter().zip(&copied.images) {
        let bytes = to.attachment_bytes(id(b)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"));
        assert_eq!(
            bytes,
            from.attachment_bytes(id(a)).unwrap(),
            "{} → {}",
            a.src,
            b.src
        );
    }
}

/// A new variable product whose variations each show one of its gallery images.
fn new_variable(seed: u64) -> Product {
    let mut p = sample::product(seed);
    p.variants.truncate(3);
    assert!(p.variants.len() >= 2, "sample {seed} has one variant");
    assert!(p.variants.iter().all(|v| !v.image_hashes.is_empty()));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_of_images_clears_the_image_of_a_variation_left_without_one() {
    let (sim, _running, wc) = setup(0, FaultConfig::none()).await;
    let created = write_one(
        &wc,
        WriteOp::CreateProduct {
            product: new_variable(91_101),
        },
    )
    .await;
    let id = created.external_id.clone();
    let mut p = product(&fetch(&wc, &id).await).clone();
    assert!(p.variants.iter().all(|v| v.image_hashes.len() == 1));
    let kept: Vec<_> = p.variants[1..]
        .iter()
        .map(|v| v.image_hashes.clone())
        .collect();

    p.variants[0].image_hashes.clear();
    let written = write_one(
        &wc,
        WriteOp::UpdateProduct {
            external_id: id.clone(),
            product: p.clone(),
            fields: [Field::Images].into_iter().collect(),
            stock: vec![],
        },
    )
    .await;
    let back = fetch(&wc, &id).await;
    assert_eq!(product(&written), product(&back));
    let got = product(&back);
    assert!(
        got.variants[0].image_hashes.is_empty(),
        "the variation's image is cleared: {:?}",
        got.variants[0].image_hashes
    );
    let vid: u64 = got.variants[0]
        .external_id
        .as_ref()
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    let shape = sim.product_json("", id.as_str().parse().unwrap()).unwrap();
    let variation = shape["_variations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"].as_u64() == Some(vid))
        .unwrap();
    assert!(variation["image"].is_null(), "{}", variation["image"]);
    let others: Vec<_> = got.variants[1..]
        .iter()
        .map(|v| v.image_hashes.clone())
        .collect();
    assert_eq!(others, kept, "the other variations keep theirs");
    assert_eq!(got.images, p.images, "the gallery is as written");
    assert_eq!(got, &p);
}

/// The forms of a variation's `image` in a batch update, as WooCommerce reads them
/// (`prepare_object_for_database`, `set_variation_image`): `null` leaves the image (PHP's
/// `isset`), `{}` and `{"id": 0}` clear it. The connector clears with `{}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variation_image_is_cleared_by_an_image_naming_nothing_and_left_by_null() {
    let (sim, running, wc) = setup(0, FaultConfig::none()).await;
    assert_eq!(mapping::cleared_variation_image(), json!({}));
    let created = write_one(
        &wc,
        WriteOp::CreateProduct {
            product: new_variable(91_102),
        },
    )
    .await;
    let pid: u64 = created.external_id.as_str().parse().unwrap();
    let base = url::Url::parse(&format!("{}/wp-json/wc/v3/", running.base_url)).unwrap();
    let raw = HttpClient::new(HttpClientConfig::new(PlatformKind::Woocommerce, base)).unwrap();
    let image_of = |vid: u64| {
        let shape = sim.product_json("", pid).unwrap();
        shape["_variations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"].as_u64() == Some(vid))
            .unwrap()["image"]
            .clone()
    };
    let vid = |n: usize| -> u64 {
        product(&created).variants[n]
            .external_id
            .as_ref()
            .unwrap()
            .as_str()
            .parse()
            .unwrap()
    };
    let shown: Vec<Value> = (0..3).map(|n| image_of(vid(n))).collect();
    assert!(shown.iter().all(Value::is_object), "{shown:?}");

    let body = json!({"update": [
        {"id": vid(0), "image": null},
        {"id": vid(1), "image": {}},
        {"id": vid(2), "image": {"id": 0}},
    ]});
    let answer = raw
        .send(
            ApiRequest::post(
                format!("products/{pid}/variations/batch"),
                Idempotency::Idempotent,
            )
            .query("consumer_key", "ck_test")
            .query("consumer_secret", "cs_test")
            .json(&body)
            .unwrap(),
        )
        .await
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert!(
        answer["update"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item.get("error").is_none()),
        "{answer}"
    );
    assert_eq!(image_of(vid(0)), shown[0], "null leaves the image");
    assert!(image_of(vid(1)).is_null(), "{{}} clears it");
    assert!(image_of(vid(2)).is_null(), "{{\"id\": 0}} clears it");
}

#[test]
fn a_variation_body_says_the_image_whenever_it_writes_images() {
    let mut p = new_variable(91_103);
    p.variants[0].image_hashes.clear();
    let bound = p.variants[1].image_hashes[0];
    assert_ne!(p.variants[2].image_hashes[0], bound);
    let ids = [(bound, 7_001u64)].into_iter().collect();
    let images: FieldSet = [Field::Images].into_iter().collect();
    let prices: FieldSet = [Field::Price].into_iter().collect();
    let body = |n: usize, fields: Option<&FieldSet>| {
        mapping::variation_body(&p, &p.variants[n], fields, &ids)
    };
    // Written: cleared, by id, or uploaded by source (on a create as on an update).
    for fields in [None, Some(&images)] {
        assert_eq!(body(0, fields)["image"], json!({}));
        assert_eq!(body(1, fields)["image"], json!({"id": 7_001}));
        assert!(body(2, fields)["image"]["src"].is_string());
    }
    // Not written: left alone.
    assert!(body(0, Some(&prices)).get("image").is_none());
    assert!(body(1, Some(&prices)).get("image").is_none());
}
