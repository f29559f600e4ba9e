//! The integrity fix (engine issue, acceptance 12): a store seeded with old-version
//! snapshots, wrong hashes, orphan bindings and lost pending rows is repaired; a second run
//! reports nothing changed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{self, World, now, woo_connector};
use tidemark_core::{
    Binding, ConnectionSettings, ContentHash, ExternalId, PlatformKind, RecordKind,
};
use tidemark_engine::{FetchRequest, FetchScope, Unsupervised};
use tidemark_testkit::store_test;

store_test! {
    async fn a_damaged_store_is_repaired_and_a_second_run_changes_nothing(store) {
        let (_source, source_run) = common::woo_shop(12).await;
        let (target, target_run) = common::woo_shop(0).await;
        let mut world = World::new(store.clone()).await;
        let a = world.connect("Source", PlatformKind::Woocommerce, ConnectionSettings::default(), woo_connector(&source_run.base_url, |_| {})).await;
        let b = world
            .connect(
                "Target",
                PlatformKind::Woocommerce,
                ConnectionSettings { clone_new_products: true, ..ConnectionSettings::default() },
                woo_connector(&target_run.base_url, |_| {}),
            )
            .await;
        let engine = world.engine();
        let fetched = engine.fetch(a, &FetchRequest::new(FetchScope::Full), None, &Unsupervised).await.unwrap();
        assert_eq!(fetched.counts.new, 12);

        // A clean store needs nothing.
        for connection in [a, b] {
            let clean = engine.integrity_fix(connection, &Unsupervised).await.unwrap();
            assert!(!clean.changed(), "{clean:?}");
        }

        // The damage: snapshots of an older schema version and with a wrong hash, a binding to
        // a product that does not exist, and pending creates lost from the outbox.
        let snapshots = store.list_snapshots(a, RecordKind::Product, None, 100).await.unwrap();
        for mut snapshot in snapshots.iter().take(3).cloned() {
            snapshot.schema_version = 0;
            store.put_snapshot(&snapshot, now()).await.unwrap();
        }
        let mut wrong = snapshots[5].clone();
        wrong.content_hash = ContentHash(42);
        store.put_snapshot(&wrong, now()).await.unwrap();
        store
            .bind(
                &Binding {
                    connection: a,
                    kind: RecordKind::Product,
                    external_id: ExternalId::new("999999"),
                    internal_id: 987_654,
                    internal_key: String::new(),
                },
                now(),
            )
            .await
            .unwrap();
        let queued = store.due_pending_changes(b, now(), None, 100).await.unwrap();
        assert_eq!(queued.len(), 12, "a create per product waits for the target");
        for row in queued.iter().take(4) {
            assert!(store.remove_pending_change(row.change.id, row.revision).await.unwrap());
        }

        let fixed_a = engine.integrity_fix(a, &Unsupervised).await.unwrap();
        assert_eq!(fixed_a.orphan_bindings_removed, 1, "{fixed_a:?}");
        assert_eq!(fixed_a.snapshots_upgraded, 3, "{fixed_a:?}");
        assert_eq!(fixed_a.snapshot_hashes_fixed, 1, "{fixed_a:?}");
        assert_eq!(fixed_a.pending_added, 0, "{fixed_a:?}");
        let fixed_b = engine.integrity_fix(b, &Unsupervised).await.unwrap();
        assert_eq!(fixed_b.pending_added, 4, "{fixed_b:?}");
        assert_eq!(store.due_pending_changes(b, now(), None, 100).await.unwrap().len(), 12);
        assert!(
            store.list_snapshots(a, RecordKind::Product, None, 100).await.unwrap().iter().all(|s| s.schema_version == tidemark_core::normalize::SCHEMA_VERSION)
        );

        for connection in [a, b] {
            let again = engine.integrity_fix(connection, &Unsupervised).await.unwrap();
            assert!(!again.changed(), "second run: {again:?}");
        }
        // The repaired store syncs as before: the target gets every product, once.
        let sent = engine.send(b, &Unsupervised).await.unwrap();
        assert_eq!(sent.counts.inserted, 12, "{:?}", sent.counts);
        assert_eq!(target.harness.stats.snapshot().duplicate_creates, 0);
        source_run.stop().await;
        target_run.stop().await;
    }
}
