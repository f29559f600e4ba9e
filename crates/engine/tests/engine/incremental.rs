//! An incremental fetch costs what changed, not what exists (engine issue, acceptance 11):
//! with 10,000 products and 10 edited, it reads only the changed records' pages and takes
//! under 5 % of the full scan's time, both measured in the same run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::common::{self, World};
use tidemark_core::{ConnectionSettings, PlatformKind};
use tidemark_engine::{FetchRequest, FetchScope, Unsupervised};
use tidemark_sim::FaultConfig;
use tidemark_sim::woocommerce::{Edit, WooConfig, WooSim};
use tidemark_testkit::store_test;

/// Runs the scenario over `n` products on `store`.
async fn ten_edits_among(store: tidemark_store::Store, n: u64) {
    {
        let products = n;
        let sim = WooSim::new(
            WooConfig {
                products,
                orders: 0,
                ..WooConfig::default()
            },
            FaultConfig::none(),
        );
        let run = sim.serve().await.unwrap();
        let connector = common::woo_connector(&run.base_url, |_| {});
        let mut world = World::new(store.clone()).await;
        let woo = world
            .connect(
                "Woo",
                PlatformKind::Woocommerce,
                ConnectionSettings::default(),
                connector,
            )
            .await;
        let engine = world.engine();

        let started = Instant::now();
        let full = engine
            .fetch(
                woo,
                &FetchRequest::new(FetchScope::Full),
                None,
                &Unsupervised,
            )
            .await
            .unwrap();
        let full_time = started.elapsed();
        let full_requests = sim.harness.stats.snapshot().requests;
        assert_eq!(full.counts.new, products, "{:?}", full.counts);

        // Steady state: one incremental fetch after an edit moves the clock past the seeded
        // catalogue (whose last import batch sits within the overlap of the full scan's clock).
        let ids = sim.product_ids();
        assert!(sim.edit_product(
            ids[1],
            &Edit {
                title: Some("Warm-up edit".into()),
                ..Edit::default()
            }
        ));
        let warm = engine
            .fetch(
                woo,
                &FetchRequest::new(FetchScope::Incremental),
                None,
                &Unsupervised,
            )
            .await
            .unwrap();
        assert_eq!(warm.counts.changed, 1, "{:?}", warm.counts);

        // WooCommerce times have whole seconds and `modified_after` is strict.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let edited: Vec<u64> = ids
            .iter()
            .skip(2)
            .step_by(ids.len() / 10)
            .take(10)
            .copied()
            .collect();
        assert_eq!(edited.len(), 10);
        for id in &edited {
            assert!(sim.edit_product(
                *id,
                &Edit {
                    title: Some(format!("Edited {id}")),
                    ..Edit::default()
                }
            ));
        }
        let before = sim.harness.stats.snapshot().requests;
        let started = Instant::now();
        let incremental = engine
            .fetch(
                woo,
                &FetchRequest::new(FetchScope::Incremental),
                None,
                &Unsupervised,
            )
            .await
            .unwrap();
        let incremental_time = started.elapsed();
        let incremental_requests = sim.harness.stats.snapshot().requests - before;
        assert_eq!(incremental.counts.changed, 10, "{:?}", incremental.counts);
        // One page of products (the 10 edited and the warm-up edit, within the overlap), the
        // variations of those that are variable, and one page of orders: nothing of the other
        // products.
        assert!(incremental.counts.scanned <= 11, "{:?}", incremental.counts);
        assert!(
            incremental_requests <= 1 + 11 + 1,
            "{incremental_requests} requests"
        );
        let share = incremental_time.as_secs_f64() / full_time.as_secs_f64();
        println!(
            "full scan of {products}: {full_requests} requests in {full_time:.1?}; incremental after 10 \
             edits: {incremental_requests} requests in {incremental_time:.2?} ({:.2} % of the full scan)",
            share * 100.0
        );
        assert!(
            share < 0.05,
            "incremental took {:.1} % of the full scan",
            share * 100.0
        );
        run.stop().await;
    }
}

store_test! {
    /// The scale: 10,000 products, 10 edited.
    async fn ten_edits_among_ten_thousand_cost_ten_records(store) {
        ten_edits_among(store, 10_000).await;
    }
}
