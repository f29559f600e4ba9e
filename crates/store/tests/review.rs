//! Regression tests for the store review findings; every test runs on SQLite and (when
//! TIDEMARK_TEST_DATABASE_URL is set) on PostgreSQL; see `common`.

// A failing test panics; its helpers may too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fixtures;

use fixtures::*;
use tidemark_core::{
    Binding, ConnectionId, ExternalId, PlatformKind, RecordContent, RecordKind, ScanKind, Snapshot,
    Timestamp,
};

fn binding(connection: ConnectionId, kind: RecordKind, ext: &str, internal: i64) -> Binding {
    Binding {
        connection,
        kind,
        external_id: ExternalId::new(ext),
        internal_id: internal,
        internal_key: String::new(),
    }
}

fn at(offset: i64) -> Timestamp {
    Timestamp(T0.0 + offset)
}

store_test! {
    async fn sweep_never_drops_records_touched_during_a_scan(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let snap = |ext: &str, internal: i64, generation: i64| Snapshot {
            connection: shop.id,
            external_id: ExternalId::new(ext),
            internal_id: internal,
            schema_version: 1,
            content: RecordContent::Product(realistic(internal as u64)),
            content_hash: hash(internal as u128),
            platform_updated_at: None,
            seen_generation: generation,
        };
        for (ext, id) in [("p1", 1), ("p2", 2), ("gone", 3)] {
            store.bind(&binding(shop.id, RecordKind::Product, ext, id), at(0)).await.unwrap();
            store.put_snapshot(&snap(ext, id, 0), at(0)).await.unwrap();
        }
        let generation = store.next_scan_generation(shop.id, ScanKind::Products, at(10)).await.unwrap();
        // The scan sees p1 and p2.
        store.mark_seen(shop.id, ScanKind::Products, &[ExternalId::new("p1"), ExternalId::new("p2")], generation).await.unwrap();
        // A send during the scan writes p1's snapshot back with the generation it read (older).
        store.put_snapshot(&snap("p1", 1, generation - 1), at(11)).await.unwrap();
        let got = store.get_snapshot(shop.id, RecordKind::Product, &ExternalId::new("p1")).await.unwrap().unwrap();
        assert_eq!(got.seen_generation, generation, "seen_generation never decreases");
        // A late mark of an older generation does not lower it either.
        store.mark_seen(shop.id, ScanKind::Products, &[ExternalId::new("p2")], generation - 1).await.unwrap();
        // A send creates p9 during the scan (bound, snapshot with generation 0), and a webhook
        // binds p10 without a snapshot, both after the scan started.
        store.bind(&binding(shop.id, RecordKind::Product, "p9", 9), at(12)).await.unwrap();
        store.put_snapshot(&snap("p9", 9, 0), at(12)).await.unwrap();
        store.bind(&binding(shop.id, RecordKind::Product, "p10", 10), at(10)).await.unwrap();

        let unseen: Vec<String> = store.list_unseen(shop.id, ScanKind::Products, generation, None, 100).await.unwrap()
            .into_iter().map(|b| b.external_id.0).collect();
        assert_eq!(unseen, vec!["gone"], "only the record the scan really missed");

        // A superseded generation sweeps nothing.
        let next = store.next_scan_generation(shop.id, ScanKind::Products, at(20)).await.unwrap();
        assert!(store.list_unseen(shop.id, ScanKind::Products, generation, None, 100).await.unwrap().is_empty());
        // In the next generation everything made before it started and not seen is a candidate.
        let unseen: Vec<String> = store.list_unseen(shop.id, ScanKind::Products, next, None, 100).await.unwrap()
            .into_iter().map(|b| b.external_id.0).collect();
        assert_eq!(unseen, vec!["gone", "p1", "p10", "p2", "p9"]);
    }
}
