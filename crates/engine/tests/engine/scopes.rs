//! The fetch scopes besides incremental and full: one record (a webhook or a single-record
//! resync, including the platform's "not found" and a delete webhook) and a window resync.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::{self, World, now, woo_connector};
use tidemark_core::{
    ConnectionId, ConnectionSettings, ExternalId, PlatformKind, ProductId, RecordKind, ScanKind,
    Timestamp,
};
use tidemark_engine::{Engine, FetchReport, FetchRequest, FetchScope, Unsupervised};
use tidemark_sim::RunningSim;
use tidemark_sim::woocommerce::{Edit, WooSim};
use tidemark_store::Store;
use tidemark_testkit::store_test;

const PRODUCTS: u64 = 30;

struct Shop {
    world: World,
    engine: Engine,
    woo: ConnectionId,
    sim: WooSim,
    run: RunningSim,
}

impl Shop {
    /// A WooCommerce shop of [`PRODUCTS`], fetched in full once.
    async fn fetched(store: Store) -> Self {
        let (sim, run) = common::woo_shop(PRODUCTS).await;
        let mut world = World::new(store).await;
        let woo = world
            .connect(
                "Woo",
                PlatformKind::Woocommerce,
                ConnectionSettings::default(),
                woo_connector(&run.base_url, |_| {}),
            )
            .await;
        let engine = world.engine();
        let shop = Self {
            world,
            engine,
            woo,
            sim,
            run,
        };
        let full = shop.fetch(FetchScope::Full).await;
        assert_eq!(full.counts.new, PRODUCTS, "{:?}", full.counts);
        shop
    }

    async fn fetch(&self, scope: FetchScope) -> FetchReport {
        self.engine
            .fetch(self.woo, &FetchRequest::new(scope), None, &Unsupervised)
            .await
            .unwrap()
    }

    fn one(id: u64, deleted: bool) -> FetchScope {
        FetchScope::One {
            kind: ScanKind::Products,
            external_id: ExternalId::new(id.to_string()),
            deleted,
        }
    }

    async fn bound(&self, id: u64) -> Option<ProductId> {
        self.world
            .store
            .binding_by_external(
                self.woo,
                RecordKind::Product,
                &ExternalId::new(id.to_string()),
            )
            .await
            .unwrap()
            .map(|b| ProductId(b.internal_id))
    }

    async fn title(&self, id: ProductId) -> String {
        self.world
            .store
            .get_product(self.world.account, id)
            .await
            .unwrap()
            .unwrap()
            .content
            .title
            .clone()
    }

    fn retitle(&self, id: u64, title: &str) {
        assert!(self.sim.edit_product(
            id,
            &Edit {
                title: Some(title.into()),
                ..Edit::default()
            }
        ));
    }

    async fn clock(&self) -> Option<Timestamp> {
        self.world
            .store
            .get_clocks(self.woo)
            .await
            .unwrap()
            .get(&ScanKind::Products)
            .copied()
    }
}

store_test! {
    async fn a_one_record_fetch_absorbs_that_record_alone(store) {
        let shop = Shop::fetched(store).await;
        let ids = shop.sim.product_ids();
        let (a, b) = (ids[3], ids[7]);
        shop.retitle(a, "Fetched alone");
        shop.retitle(b, "Left for later");
        let clock = shop.clock().await;

        let one = shop.fetch(Shop::one(a, false)).await;
        assert_eq!((one.counts.scanned, one.counts.changed), (1, 1), "{:?}", one.counts);
        assert_eq!(shop.title(shop.bound(a).await.unwrap()).await, "Fetched alone");
        assert_ne!(shop.title(shop.bound(b).await.unwrap()).await, "Left for later");
        // One record says nothing of the others: the clock stays.
        assert_eq!(shop.clock().await, clock);

        // The next incremental fetch finds the other edit; the first is already absorbed.
        let next = shop.fetch(FetchScope::Incremental).await;
        assert_eq!(next.counts.changed, 1, "{:?}", next.counts);
        assert_eq!(shop.title(shop.bound(b).await.unwrap()).await, "Left for later");
        shop.run.stop().await;
    }
}

store_test! {
    async fn a_record_not_found_or_named_by_a_delete_webhook_is_let_go_and_its_product_kept(store) {
        let shop = Shop::fetched(store).await;
        let ids = shop.sim.product_ids();
        let (gone, webhook) = (ids[2], ids[5]);

        // A single-record fetch the platform answers "not found".
        let product = shop.bound(gone).await.unwrap();
        assert!(shop.sim.admin_delete_product(gone));
        let fetched = shop.fetch(Shop::one(gone, false)).await;
        assert_eq!(fetched.counts.deleted, 1, "{:?}", fetched.counts);
        assert_eq!(shop.bound(gone).await, None);
        let deleted_on = shop
            .world
            .store
            .platform_deletions_of(RecordKind::Product, product.0)
            .await
            .unwrap();
        assert_eq!(deleted_on, vec![shop.woo]);
        // The canonical product stays (this connection is not the master).
        shop.title(product).await;

        // A delete webhook: believed without a read.
        let requests = shop.sim.harness.stats.snapshot().requests;
        let fetched = shop.fetch(Shop::one(webhook, true)).await;
        assert_eq!(fetched.counts.deleted, 1, "{:?}", fetched.counts);
        assert_eq!(shop.bound(webhook).await, None);
        assert_eq!(shop.sim.harness.stats.snapshot().requests, requests);

        // Again, or for a record never bound: nothing to do.
        let fetched = shop.fetch(Shop::one(webhook, true)).await;
        assert_eq!(fetched.counts.deleted, 0, "{:?}", fetched.counts);
        let fetched = shop.fetch(Shop::one(999_999_999, false)).await;
        assert_eq!(fetched.counts, Default::default());
        assert_eq!(shop.world.store.count_products(shop.world.account).await.unwrap(), PRODUCTS as i64);
        shop.run.stop().await;
    }
}

store_test! {
    async fn a_window_resync_reads_what_changed_since_its_start_and_keeps_the_clock(store) {
        let shop = Shop::fetched(store).await;
        let ids = shop.sim.product_ids();
        let clock = shop.clock().await.expect("a full scan sets the clock");

        // WooCommerce times have whole seconds and `modified_after` is strict.
        let since = now();
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        for id in &ids[..3] {
            shop.retitle(*id, &format!("Window {id}"));
        }
        let window = shop.fetch(FetchScope::Window { since }).await;
        assert_eq!(window.counts.scanned, 3, "{:?}", window.counts);
        assert_eq!(window.counts.changed, 3, "{:?}", window.counts);
        for id in &ids[..3] {
            assert_eq!(shop.title(shop.bound(*id).await.unwrap()).await, format!("Window {id}"));
        }
        // The window began after the clock: what changed between them was not read, so the
        // clock stays where it was.
        assert!(since > clock);
        assert_eq!(shop.clock().await, Some(clock));

        // A window reaching back past the clock covers everything after it and moves it.
        let wide = shop
            .fetch(FetchScope::Window {
                since: Timestamp(clock.0 - 86_400_000),
            })
            .await;
        assert_eq!(wide.counts.changed, 0, "{:?}", wide.counts);
        assert!(shop.clock().await.unwrap() > clock);
        shop.run.stop().await;
    }
}
