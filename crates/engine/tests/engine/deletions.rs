//! Deletions end to end (issue acceptance of the engine, items 5 and 6): an image removed on
//! the master platform is deleted, alone, on the others; a product the merchant deleted on a
//! platform is let go after a full scan (and archived everywhere when that platform is the
//! master), never deleted elsewhere; a full scan that sees nothing, or too little, deletes
//! nothing and raises an alert.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tidemark_testkit::store_test;

use crate::shops::{Options, Shops};
use tidemark_core::{
    ContentHash, ExternalId, Product, ProductId, ProductStatus, RecordContent, RecordKind,
    ScanKind, Severity,
};
use tidemark_engine::FetchScope;
use tidemark_sim::woocommerce::Edit;
use tidemark_store::IssueFilter;

/// The snapshot `connection` holds of `id` (what tidemark last knew of it there).
async fn snapshot(
    shops: &Shops,
    connection: tidemark_core::ConnectionId,
    id: ProductId,
) -> Product {
    let snapshot = shops
        .store()
        .snapshot_of_record(connection, RecordKind::Product, id.0)
        .await
        .unwrap()
        .expect("a snapshot");
    match snapshot.content {
        RecordContent::Product(p) => p,
        RecordContent::Order(_) => panic!("not a product"),
    }
}

/// The platform ids of the images of `id` on `connection`, in order.
async fn image_ids(
    shops: &Shops,
    connection: tidemark_core::ConnectionId,
    id: ProductId,
) -> Vec<ExternalId> {
    let mut images = shops.on_platform(connection, id).await.images;
    images.sort_by_key(|i| i.position);
    images
        .into_iter()
        .map(|i| i.external_id.expect("an image id"))
        .collect()
}

/// The platform id `connection` knows the image `hash` of `id` by.
async fn image_id(
    shops: &Shops,
    connection: tidemark_core::ConnectionId,
    id: ProductId,
    hash: ContentHash,
) -> ExternalId {
    snapshot(shops, connection, id)
        .await
        .images
        .into_iter()
        .find(|i| i.content_hash == hash)
        .and_then(|i| i.external_id)
        .unwrap_or_else(|| panic!("{} does not know the image", shops.name(connection)))
}

async fn open_issues(
    shops: &Shops,
    connection: tidemark_core::ConnectionId,
) -> Vec<tidemark_core::Issue> {
    shops
        .store()
        .list_issues(
            shops.world.account,
            &IssueFilter {
                connection: Some(connection),
                record: None,
                open_only: true,
                before: None,
                limit: 100,
            },
        )
        .await
        .unwrap()
}

store_test! {
    async fn an_image_removed_on_the_master_is_deleted_alone_on_the_others(store) {
        let shops = Shops::synced(store, Options::new(20)).await;
        // Two products with at least three images: on one the removed image is shown by a
        // variant, on the other by none.
        let mut shown = None;
        let mut unshown = None;
        for (woo_id, shape) in shops.woo.shapes() {
            if shape.images.len() < 3 {
                continue;
            }
            let id = shops.canonical_id(&shape.sku).await;
            let canonical = shops.canonical(id).await;
            let woo = snapshot(&shops, shops.w, id).await;
            for image in woo.images.iter().filter(|i| i.position > 0) {
                let used = canonical
                    .variants
                    .iter()
                    .any(|v| v.image_hashes.contains(&image.content_hash));
                let slot = if used { &mut shown } else { &mut unshown };
                if slot.is_none() {
                    let attachment: u64 = image.external_id.as_ref().unwrap().as_str().parse().unwrap();
                    *slot = Some((woo_id, id, attachment, image.content_hash));
                    break;
                }
            }
            if shown.is_some() && unshown.is_some() && shown.unwrap().1 != unshown.unwrap().1 {
                break;
            }
        }
        let removals = [shown.expect("an image a variant shows"), unshown.expect("an image no variant shows")];

        let mut expected = Vec::new();
        for (woo_id, id, attachment, hash) in removals {
            for connection in [shops.s, shops.m] {
                let before = image_ids(&shops, connection, id).await;
                let gone = image_id(&shops, connection, id, hash).await;
                assert!(before.contains(&gone));
                let after: Vec<ExternalId> = before.into_iter().filter(|i| *i != gone).collect();
                expected.push((connection, id, after));
            }
            assert!(shops.woo.edit_product(woo_id, &Edit {
                remove_image: Some(attachment),
                ..Edit::default()
            }));
        }

        let fetched = shops.fetch(shops.w).await;
        assert_eq!(fetched.counts.changed, 2, "{:?}", fetched.counts);
        for (_, id, _, hash) in removals {
            let canonical = shops.canonical(id).await;
            assert!(canonical.images.iter().all(|i| i.content_hash != hash), "still canonical");
            assert!(canonical.variants.iter().all(|v| !v.image_hashes.contains(&hash)));
        }
        let sent = shops.send_all().await;
        for connection in [shops.s, shops.m] {
            let counts = &sent[&connection].counts;
            assert_eq!(counts.image_deletes, 2, "{}: {counts:?}", shops.name(connection));
            assert_eq!(counts.send_failed, 0, "{}: {counts:?}", shops.name(connection));
        }
        for (connection, id, after) in expected {
            assert_eq!(image_ids(&shops, connection, id).await, after, "{id} on {}", shops.name(connection));
        }

        // Removed on Shopify, not the master: the canonical product keeps the image, and the
        // next send to Shopify gives it back; nothing changes elsewhere.
        let (_, id, _, _) = removals[0];
        let kept = shops.canonical(id).await;
        let image = &kept.images[0];
        let media = image_id(&shops, shops.s, id, image.content_hash).await;
        let gid = shops.external(shops.s, id).await.unwrap();
        let before = image_ids(&shops, shops.s, id).await.len();
        assert!(shops.shopify.remove_image(gid.as_str(), media.as_str()));
        let fetched = shops.fetch(shops.s).await;
        assert_eq!(fetched.counts.changed, 1, "{:?}", fetched.counts);
        assert_eq!(shops.canonical(id).await, kept);
        let sent = shops.send_all().await;
        assert_eq!(sent[&shops.s].counts.updated, 1, "{:?}", sent[&shops.s].counts);
        for connection in [shops.w, shops.m] {
            let counts = &sent[&connection].counts;
            assert_eq!(counts.updated + counts.image_deletes, 0, "{}: {counts:?}", shops.name(connection));
        }
        assert_eq!(image_ids(&shops, shops.s, id).await.len(), before);
        assert!(snapshot(&shops, shops.s, id).await.images.iter().any(|i| i.content_hash == image.content_hash));

        // Shopify made the master instead: the same removal there now deletes the image on
        // WooCommerce and MercadoLibre.
        shops.set_settings(shops.w, |s| s.master = false).await;
        shops.set_settings(shops.s, |s| s.master = true).await;
        let media = image_id(&shops, shops.s, id, image.content_hash).await;
        let mut expected = Vec::new();
        for connection in [shops.w, shops.m] {
            let gone = image_id(&shops, connection, id, image.content_hash).await;
            let after: Vec<ExternalId> = image_ids(&shops, connection, id)
                .await
                .into_iter()
                .filter(|i| *i != gone)
                .collect();
            expected.push((connection, after));
        }
        assert!(shops.shopify.remove_image(gid.as_str(), media.as_str()));
        shops.fetch(shops.s).await;
        assert!(shops.canonical(id).await.images.iter().all(|i| i.content_hash != image.content_hash));
        let sent = shops.send_all().await;
        for (connection, after) in expected {
            let counts = &sent[&connection].counts;
            assert_eq!(counts.image_deletes, 1, "{}: {counts:?}", shops.name(connection));
            assert_eq!(image_ids(&shops, connection, id).await, after, "{}", shops.name(connection));
        }
        shops.assert_quiet().await;
        shops.stop().await;
    }
}

store_test! {
    async fn a_product_deleted_on_a_platform_is_let_go_after_a_full_scan_and_never_deleted_elsewhere(store) {
        let shops = Shops::synced(store, Options::new(20)).await;
        let shapes: Vec<_> = shops.woo.shapes().into_iter().take(3).collect();
        let on_shopify = shops.canonical_id(&shapes[0].1.sku).await;
        let on_master = shops.canonical_id(&shapes[1].1.sku).await;

        // Deleted on Shopify (not the master): an incremental fetch cannot see it; after
        // the clocks are reset the next fetch is a full scan, which lets it go there only.
        let gid = shops.external(shops.s, on_shopify).await.unwrap();
        assert!(shops.shopify.delete_product(gid.as_str()));
        let fetched = shops.fetch(shops.s).await;
        assert_eq!(fetched.counts.deleted, 0, "{:?}", fetched.counts);
        shops
            .store()
            .reset_clocks(shops.world.account, shops.s, &[ScanKind::Products])
            .await
            .unwrap();
        let fetched = shops.fetch(shops.s).await;
        assert_eq!(fetched.counts.deleted, 1, "{:?}", fetched.counts);
        assert!(fetched.alerts.is_empty(), "{:?}", fetched.alerts);
        assert_eq!(shops.external(shops.s, on_shopify).await, None);
        let canonical = shops.canonical(on_shopify).await;
        assert_ne!(canonical.status, ProductStatus::Archived);
        for connection in [shops.w, shops.m] {
            assert!(shops.external(connection, on_shopify).await.is_some());
        }

        // Deleted on MercadoLibre (which has no modification filter): let go there by a full
        // scan too.
        let on_ml = shops.canonical_id(&shapes[2].1.sku).await;
        let item = shops.external(shops.m, on_ml).await.unwrap();
        assert!(shops.ml.delete_item(item.as_str()));
        let fetched = shops.fetch_scope(shops.m, FetchScope::Full).await;
        assert_eq!(fetched.counts.deleted, 1, "{:?}", fetched.counts);
        assert_eq!(shops.external(shops.m, on_ml).await, None);
        assert_ne!(shops.canonical(on_ml).await.status, ProductStatus::Archived);

        // Deleted on WooCommerce, the master: a full scan archives it everywhere else.
        let woo_id = shapes[1].0;
        assert!(shops.woo.admin_delete_product(woo_id));
        let fetched = shops.fetch_scope(shops.w, FetchScope::Full).await;
        assert_eq!(fetched.counts.deleted, 1, "{:?}", fetched.counts);
        assert_eq!(shops.external(shops.w, on_master).await, None);
        assert_eq!(shops.canonical(on_master).await.status, ProductStatus::Archived);

        let sent = shops.send_all().await;
        for (connection, report) in &sent {
            assert_eq!(report.counts.inserted, 0, "{}: nothing deleted is created again: {:?}", shops.name(*connection), report.counts);
        }
        // Shopify's copy of the master's product is archived, MercadoLibre's closed (its
        // archive).
        assert_eq!(shops.on_platform(shops.s, on_master).await.status, ProductStatus::Archived);
        assert_eq!(shops.on_platform(shops.m, on_master).await.status, ProductStatus::Archived);
        assert_eq!(shops.shopify.product_count(), 19);
        assert_eq!(shops.woo.product_count(), 19);
        assert_eq!(shops.ml.item_ids().len(), 19);
        shops.assert_quiet().await;
        shops.stop().await;
    }
}

store_test! {
    async fn a_full_scan_seeing_nothing_or_too_little_deletes_nothing_and_raises_an_alert(store) {
        let shops = Shops::synced(store, Options::new(20)).await;

        // Every product gone from Shopify's answers: nothing is let go.
        for gid in shops.shopify.product_gids() {
            assert!(shops.shopify.delete_product(&gid));
        }
        let fetched = shops.fetch_scope(shops.s, FetchScope::Full).await;
        assert_eq!(fetched.counts.scanned, 0, "{:?}", fetched.counts);
        assert_eq!(fetched.counts.deleted, 0, "{:?}", fetched.counts);
        assert_eq!(fetched.alerts.len(), 1, "{:?}", fetched.alerts);
        let bound = shops.store().count_bindings(shops.s, RecordKind::Product).await.unwrap();
        assert_eq!(bound, 20);
        let issues = open_issues(&shops, shops.s).await;
        let alert = issues
            .iter()
            .find(|i| i.code == "mass_delete_guard")
            .unwrap_or_else(|| panic!("no alert: {issues:?}"));
        assert_eq!(alert.severity, Severity::Alert);

        // Twelve of twenty gone from the master: more than half, so nothing is let go (let go
        // on the master, they would be archived everywhere).
        let gone: Vec<u64> = shops.woo.product_ids().into_iter().take(12).collect();
        for id in &gone {
            assert!(shops.woo.admin_delete_product(*id));
        }
        let fetched = shops.fetch_scope(shops.w, FetchScope::Full).await;
        assert_eq!(fetched.counts.scanned, 8, "{:?}", fetched.counts);
        assert_eq!(fetched.counts.deleted, 0, "{:?}", fetched.counts);
        assert_eq!(fetched.alerts.len(), 1, "{:?}", fetched.alerts);
        assert!(fetched.pending_for.is_empty(), "{:?}", fetched.pending_for);
        let bound = shops.store().count_bindings(shops.w, RecordKind::Product).await.unwrap();
        assert_eq!(bound, 20);
        assert!(open_issues(&shops, shops.w).await.iter().any(|i| i.code == "mass_delete_guard"));
        for product in shops.all_canonical().await.values() {
            assert_ne!(product.status, ProductStatus::Archived, "{}", product.title);
        }
        for connection in shops.connections() {
            let sent = shops.send(connection).await;
            assert_eq!(sent.counts.inserted + sent.counts.updated + sent.counts.image_deletes, 0, "{:?}", sent.counts);
        }
        shops.stop().await;
    }
}
