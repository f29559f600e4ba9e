//! Fetches that meet a moving platform or do not finish (issue acceptance of the engine, item
//! 7): an edit made while a fetch is paging is caught by the next incremental fetch; a fetch
//! stopped by its supervisor, failed by the platform or dropped mid-page loses nothing when it
//! is resumed from its checkpoint or run again. Item 8: a create whose answer is lost after
//! the platform made the product is not repeated into a duplicate, also under random faults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tidemark_testkit::store_test;

use std::sync::Arc;
use std::time::Duration;

use crate::shops::{Options, Pages, Shops, products};
use tidemark_core::{ExternalId, ProductId, RecordKind, ScanKind};
use tidemark_engine::{EngineConfig, EngineError, FetchScope, StopReason};
use tidemark_sim::FaultConfig;
use tidemark_sim::woocommerce::{Edit, Scripted};

const PRODUCTS: u64 = 25;

/// Five WooCommerce pages of five products.
fn options() -> Options {
    Options {
        woo_per_page: 5,
        ..Options::new(PRODUCTS)
    }
}

/// Renames every WooCommerce product `"{sku} {suffix}"`, returning (WooCommerce id,
/// canonical id, new title) in WooCommerce id order (the order its pages come in).
async fn rename_all(shops: &Shops, suffix: &str) -> Vec<(u64, ProductId, String)> {
    let mut out = Vec::new();
    for (woo_id, shape) in shops.woo.shapes() {
        let title = format!("{} {suffix}", shape.sku);
        assert!(shops.woo.edit_product(
            woo_id,
            &Edit {
                title: Some(title.clone()),
                ..Edit::default()
            }
        ));
        out.push((woo_id, shops.canonical_id(&shape.sku).await, title));
    }
    out
}

async fn assert_titles(shops: &Shops, expected: &[(u64, ProductId, String)]) {
    for (_, id, title) in expected {
        assert_eq!(&shops.canonical(*id).await.title, title, "{id}");
    }
}

async fn products_clock(shops: &Shops) -> Option<tidemark_core::Timestamp> {
    shops
        .store()
        .get_clocks(shops.w)
        .await
        .unwrap()
        .get(&ScanKind::Products)
        .copied()
}

store_test! {
    async fn an_edit_made_while_a_fetch_is_paging_is_caught_by_the_next_incremental_fetch(store) {
        let shops = Shops::synced(store, options()).await;
        let renamed = rename_all(&shops, "v2").await;
        let (first, _, _) = renamed[0].clone();
        let (last, _, _) = renamed[renamed.len() - 1].clone();
        let woo = shops.woo.clone();
        // After the first page: the first product (already read) is edited, then, a second
        // later, the last one (not read yet): this scan sees a platform time later than the
        // first edit.
        let control = Pages::new(move |page| {
            if page == 1 {
                let edit = |title: &str| Edit { title: Some(title.into()), ..Edit::default() };
                assert!(woo.edit_product(first, &edit("first, edited while paging")));
                std::thread::sleep(Duration::from_millis(1_100));
                assert!(woo.edit_product(last, &edit("last, edited while paging")));
            }
            Ok(())
        });
        let fetched = shops
            .engine
            .fetch(shops.w, &products(FetchScope::Incremental), None, &control)
            .await
            .unwrap();
        assert!(control.pages() >= 5, "{} pages", control.pages());
        assert_eq!(fetched.counts.changed, PRODUCTS, "{:?}", fetched.counts);
        assert_eq!(shops.canonical(renamed[0].1).await.title, renamed[0].2, "read before its edit");
        assert_eq!(shops.canonical(renamed[renamed.len() - 1].1).await.title, "last, edited while paging");

        let fetched = shops.fetch(shops.w).await;
        assert_eq!(fetched.counts.changed, 1, "{:?}", fetched.counts);
        assert_eq!(shops.canonical(renamed[0].1).await.title, "first, edited while paging");
        shops.send_all().await;
        shops.assert_quiet().await;
        shops.stop().await;
    }
}

store_test! {
    async fn a_fetch_stopped_or_failed_mid_way_and_resumed_from_its_checkpoint_loses_nothing(store) {
        let shops = Shops::synced(store, options()).await;
        let clock = products_clock(&shops).await;

        // Stopped by its supervisor after two pages.
        let renamed = rename_all(&shops, "v2").await;
        let stop = Pages::new(|page| if page == 2 { Err(StopReason::Cancelled) } else { Ok(()) });
        let stopped = shops
            .engine
            .fetch(shops.w, &products(FetchScope::Incremental), None, &stop)
            .await;
        assert!(matches!(stopped, Err(EngineError::Stopped(StopReason::Cancelled))), "{stopped:?}");
        assert_eq!(products_clock(&shops).await, clock, "a stopped scan does not move the clock");
        let checkpoint = stop.checkpoint().expect("a checkpoint");
        assert!(
            (1..PRODUCTS).contains(&checkpoint.counts.changed),
            "{:?}",
            checkpoint.counts
        );
        let resumed = shops
            .engine
            .fetch(shops.w, &products(FetchScope::Incremental), Some(checkpoint), &Pages::new(|_| Ok(())))
            .await
            .unwrap();
        assert_eq!(resumed.counts.changed, PRODUCTS, "{:?}", resumed.counts);
        assert_titles(&shops, &renamed).await;
        let clock = products_clock(&shops).await;

        // Failed by the platform on its third page (an engine that tries each page once).
        let renamed = rename_all(&shops, "v3").await;
        let engine = shops.engine_with(EngineConfig { page_attempts: 1, ..EngineConfig::default() });
        let woo = shops.woo.clone();
        let failing = Pages::new(move |page| {
            if page == 2 {
                woo.harness.faults.set(FaultConfig { server_error: 1.0, ..FaultConfig::none() });
            }
            Ok(())
        });
        let failed = engine
            .fetch(shops.w, &products(FetchScope::Incremental), None, &failing)
            .await;
        assert!(matches!(failed, Err(EngineError::Platform { .. })), "{failed:?}");
        assert_eq!(products_clock(&shops).await, clock, "a failed scan does not move the clock");
        shops.woo.harness.faults.set(FaultConfig::none());
        let checkpoint = failing.checkpoint().expect("a checkpoint");
        let resumed = engine
            .fetch(shops.w, &products(FetchScope::Incremental), Some(checkpoint), &Pages::new(|_| Ok(())))
            .await
            .unwrap();
        assert_eq!(resumed.counts.changed, PRODUCTS, "{:?}", resumed.counts);
        assert_titles(&shops, &renamed).await;

        shops.send_all().await;
        for (_, id, title) in &renamed {
            for connection in [shops.s, shops.m] {
                assert_eq!(&shops.on_platform(connection, *id).await.title, title);
            }
        }
        shops.assert_quiet().await;
        shops.stop().await;
    }
}

store_test! {
    async fn a_full_scan_stopped_mid_way_and_resumed_sweeps_only_what_is_gone(store) {
        let shops = Shops::synced(store, options()).await;
        let woo_ids: Vec<u64> = shops.woo.product_ids();
        let stop = Pages::new(|page| if page == 2 { Err(StopReason::Cancelled) } else { Ok(()) });
        let stopped = shops
            .engine
            .fetch(shops.w, &products(FetchScope::Full), None, &stop)
            .await;
        assert!(matches!(stopped, Err(EngineError::Stopped(_))), "{stopped:?}");
        // While it is stopped the merchant deletes a product the scan has read (first page)
        // and one it has not (fourth page).
        let (read, unread) = (woo_ids[1], woo_ids[16]);
        let mut gone = Vec::new();
        for woo_id in [read, unread] {
            let sku = shops.woo.sku_of(woo_id);
            gone.push(shops.canonical_id(&sku).await);
            assert!(shops.woo.admin_delete_product(woo_id));
        }
        let resumed = shops
            .engine
            .fetch(shops.w, &products(FetchScope::Full), stop.checkpoint(), &Pages::new(|_| Ok(())))
            .await
            .unwrap();
        // The scan saw the first before it went: only the unread one is let go now (and
        // archived, WooCommerce being the master); the next full scan lets the other go.
        assert_eq!(resumed.counts.deleted, 1, "{:?}", resumed.counts);
        assert!(resumed.alerts.is_empty(), "{:?}", resumed.alerts);
        assert_eq!(shops.external(shops.w, gone[1]).await, None);
        assert!(shops.external(shops.w, gone[0]).await.is_some());
        let fetched = shops.fetch_scope(shops.w, FetchScope::Full).await;
        assert_eq!(fetched.counts.deleted, 1, "{:?}", fetched.counts);
        assert_eq!(shops.external(shops.w, gone[0]).await, None);
        let bound = shops.store().count_bindings(shops.w, RecordKind::Product).await.unwrap();
        assert_eq!(bound, PRODUCTS as i64 - 2);
        for (id, product) in shops.all_canonical().await {
            let archived = product.status == tidemark_core::ProductStatus::Archived;
            assert_eq!(archived, gone.contains(&id), "{id}");
        }
        shops.send_all().await;
        shops.assert_quiet().await;
        shops.stop().await;
    }
}

store_test! {
    async fn a_fetch_dropped_mid_page_and_run_again_loses_nothing(store) {
        let shops = Shops::synced(store, options()).await;
        let clock = products_clock(&shops).await;
        let renamed = rename_all(&shops, "v2").await;

        // The fetch's future is dropped a moment after its second page is committed, most
        // likely with the third page read or half absorbed.
        let reached = Arc::new(tokio::sync::Notify::new());
        let signal = reached.clone();
        let control = Pages::new(move |page| {
            if page == 2 {
                signal.notify_one();
            }
            Ok(())
        });
        let request = products(FetchScope::Incremental);
        tokio::select! {
            done = shops.engine.fetch(shops.w, &request, None, &control) => {
                panic!("the fetch ended before it was dropped: {done:?}");
            }
            () = async {
                reached.notified().await;
                tokio::time::sleep(Duration::from_millis(15)).await;
            } => {}
        }
        assert_eq!(products_clock(&shops).await, clock, "an unfinished scan does not move the clock");

        // Run again from scratch (the checkpoint lost with the process).
        let fetched = shops.fetch(shops.w).await;
        assert_eq!(fetched.counts.failed, 0, "{:?}", fetched.counts);
        assert_titles(&shops, &renamed).await;
        shops.send_all().await;
        for (_, id, title) in &renamed {
            for connection in [shops.s, shops.m] {
                assert_eq!(&shops.on_platform(connection, *id).await.title, title);
            }
        }
        shops.assert_quiet().await;
        shops.stop().await;
    }
}

store_test! {
    async fn a_create_whose_answer_is_lost_is_retried_without_a_duplicate(store) {
        const N: u64 = 20;
        let shops = Shops::start(store, Options::new(N)).await;
        // Shopify applies the first product create and answers an internal error; the
        // answers of MercadoLibre's first two item creates are lost after the items exist.
        shops.shopify.fail_after("productSet", true, 0);
        shops.ml.lose_create_answers(2);
        let fetched = shops.fetch(shops.w).await;
        assert_eq!(fetched.counts.new, N, "{:?}", fetched.counts);
        for (connection, lost) in [(shops.s, 1), (shops.m, 2)] {
            let sent = shops.send(connection).await.counts;
            assert_eq!(sent.inserted, N - lost, "{}: {sent:?}", shops.name(connection));
            assert_eq!(sent.send_failed, lost, "{}: {sent:?}", shops.name(connection));
        }
        // The failed rows back off: once they are due, the send finds the products the lost
        // creates made and binds them instead of creating them again.
        shops.clock.advance(Duration::from_secs(3_600));
        for connection in [shops.s, shops.m] {
            let sent = shops.send(connection).await.counts;
            assert_eq!(sent.inserted + sent.send_failed, 0, "{}: {sent:?}", shops.name(connection));
            let bound = shops
                .store()
                .count_bindings(connection, RecordKind::Product)
                .await
                .unwrap();
            assert_eq!(bound, N as i64, "{}", shops.name(connection));
        }
        assert_eq!(shops.shopify.product_count() as u64, N);
        assert_eq!(shops.ml.item_ids().len() as u64, N);
        shops.assert_no_deletes_nor_duplicates();
        // The adopted products were whole: nothing differs.
        for connection in [shops.s, shops.m] {
            let fetched = shops.fetch_scope(connection, FetchScope::Full).await;
            assert_eq!(fetched.counts.changed, 0, "{}: {:?}", shops.name(connection), fetched.counts);
        }

        // A product the merchant adds on Shopify is cloned to WooCommerce, whose create is
        // applied and answered 504 once: the repeat is refused as a duplicate SKU and the
        // product adopted, whole.
        shops.set_settings(shops.w, |s| s.clone_new_products = true).await;
        let gid = shops.shopify.add_merchant_product("Added on Shopify", "TM-ADDED").unwrap();
        shops.woo.script("POST", "products", 0, Scripted::AfterApply);
        let fetched = shops.fetch(shops.s).await;
        assert_eq!(fetched.counts.new, 1, "{:?}", fetched.counts);
        let added = shops
            .store()
            .binding_by_external(shops.s, RecordKind::Product, &ExternalId::new(gid))
            .await
            .unwrap()
            .unwrap();
        let added = ProductId(added.internal_id);
        let sent = shops.send(shops.w).await.counts;
        assert_eq!(sent.inserted, 1, "{sent:?}");
        assert_eq!(shops.woo.scripted_left(), 0, "the fault fired");
        assert_eq!(shops.woo.product_count() as u64, N + 1);
        assert_eq!(
            shops.on_platform(shops.w, added).await.variants.len(),
            shops.canonical(added).await.variants.len()
        );
        shops.assert_no_deletes_nor_duplicates();
        shops.stop().await;
    }
}

store_test! {
    async fn a_lost_item_create_adopted_on_mercadolibre_changes_no_canonical_record(store) {
        let shops = Shops::start(store, Options::new(5)).await;
        shops.ml.lose_create_answers(1);
        shops.fetch(shops.w).await;
        shops.send(shops.s).await;
        let sent = shops.send(shops.m).await.counts;
        assert_eq!(sent.send_failed, 1, "{sent:?}");
        shops.clock.advance(Duration::from_secs(3_600));
        shops.send(shops.m).await;
        assert_eq!(shops.ml.item_ids().len(), 5);
        let before = shops.all_canonical().await;
        shops.fetch_scope(shops.m, FetchScope::Full).await;
        let after = shops.all_canonical().await;
        for (id, product) in &before {
            assert_eq!(
                tidemark_core::diff::diff_products(product, &after[id]).changed_fields(),
                Default::default(),
                "{id}"
            );
        }
        shops.assert_quiet().await;
        shops.stop().await;
    }
}

store_test! {
    async fn a_lost_create_that_landed_partly_is_completed_after_adoption(store) {
        let mut options = Options::new(0);
        options.woo.clone_new_products = true;
        let shops = Shops::synced(store, options).await;
        // A product the merchant adds on Shopify is cloned to WooCommerce, whose product
        // create is applied and then answered 504 every time the connector tries it: the
        // product exists there, its variations were never made.
        let gid = shops.shopify.add_merchant_product("Added on Shopify", "TM-ADDED").unwrap();
        for _ in 0..8 {
            shops.woo.script("POST", "products", 0, Scripted::AfterApply);
        }
        let fetched = shops.fetch(shops.s).await;
        assert_eq!(fetched.counts.new, 1, "{:?}", fetched.counts);
        let added = shops
            .store()
            .binding_by_external(shops.s, RecordKind::Product, &ExternalId::new(gid))
            .await
            .unwrap()
            .unwrap();
        let added = ProductId(added.internal_id);
        let variants = shops.canonical(added).await.variants.len();
        let sent = shops.send(shops.w).await.counts;
        assert_eq!(sent.send_failed, 1, "{sent:?}");
        shops.clock.advance(Duration::from_secs(3_600));
        shops.send(shops.w).await;
        assert!(shops.external(shops.w, added).await.is_some());
        assert_eq!(shops.woo.product_count(), 1);
        assert_eq!(
            shops.on_platform(shops.w, added).await.variants.len(),
            variants,
            "the adopted product has every variant after the send that adopted it"
        );
        shops.send(shops.m).await;
        shops.assert_quiet().await;
        shops.stop().await;
    }
}

/// A first sync under random faults (3 % of each kind) on the platforms named, synced until
/// nothing is left to send: everything ends bound once, nothing is created twice, and the
/// shops then agree.
async fn sync_under_faults(store: tidemark_store::Store, woo: bool, shopify: bool, ml: bool) {
    const N: u64 = 30;
    let shops = Shops::start(store, Options::new(N)).await;
    let faults = |seed| FaultConfig {
        timeout_hold_ms: 300,
        ..FaultConfig::uniform(0.03, seed)
    };
    for (on, harness, seed) in [
        (woo, &shops.woo.harness, 1),
        (shopify, &shops.shopify.harness, 2),
        (ml, &shops.ml.harness, 3),
    ] {
        if on {
            harness.faults.set(faults(seed));
        }
    }
    // Syncs until nothing is left to send, moving the clock past every backoff.
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 8, "still sending after {rounds} rounds");
        let mut busy = 0;
        for connection in shops.connections() {
            if let Ok(fetched) = shops
                .engine
                .fetch(
                    connection,
                    &products(FetchScope::Incremental),
                    None,
                    &tidemark_engine::Unsupervised,
                )
                .await
            {
                assert_eq!(fetched.counts.failed, 0, "{:?}", fetched.counts);
            }
        }
        for connection in shops.connections() {
            let sent = shops.send(connection).await.counts;
            busy += sent.inserted + sent.updated + sent.image_deletes + sent.send_failed;
        }
        shops.clock.advance(Duration::from_secs(3_600));
        if busy == 0 {
            break;
        }
    }
    for sim in [
        &shops.woo.harness,
        &shops.shopify.harness,
        &shops.ml.harness,
    ] {
        sim.faults.set(FaultConfig::none());
    }
    for connection in [shops.s, shops.m] {
        let bound = shops
            .store()
            .count_bindings(connection, RecordKind::Product)
            .await
            .unwrap();
        assert_eq!(bound, N as i64, "{}", shops.name(connection));
    }
    assert_eq!(shops.shopify.product_count() as u64, N);
    assert_eq!(shops.ml.item_ids().len() as u64, N);
    shops.assert_quiet().await;
    shops.stop().await;
}

store_test! {
    async fn a_first_sync_under_random_faults_on_woocommerce_and_shopify_ends_whole_without_duplicates(store) {
        sync_under_faults(store, true, true, false).await;
    }
}

store_test! {
    async fn a_first_sync_under_random_faults_on_every_platform_ends_whole_without_duplicates(store) {
        sync_under_faults(store, true, true, true).await;
    }
}
