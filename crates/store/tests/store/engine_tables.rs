//! The tables the engine added: unlinked records, platform deletions, page-sized snapshot
//! reads and savepoints inside a caller's transaction. Each test runs on SQLite and (when
//! TIDEMARK_TEST_DATABASE_URL is set) on PostgreSQL; see `tidemark_testkit::store`.

use crate::fixtures;
use tidemark_testkit::store_test;

use fixtures::*;
use tidemark_core::{
    Binding, ExternalId, PlatformKind, RecordContent, RecordKind, ScanKind, Snapshot, Timestamp,
};
use tidemark_store::{PlatformDeletion, UnlinkedRecord};

fn at(offset: i64) -> Timestamp {
    Timestamp(T0.0 + offset)
}

store_test! {
    async fn unlinked_records_are_listed_refreshed_and_removed(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let record = |ext: &str, title: &str, seen: i64| UnlinkedRecord {
            connection: shop.id,
            kind: ScanKind::Products,
            external_id: ExternalId::new(ext),
            sku: Some(format!("SKU-{ext}")),
            title: title.into(),
            platform_updated_at: Some(at(seen)),
            first_seen: at(seen),
            last_seen: at(seen),
        };
        store.put_unlinked(&record("b", "Bag", 1)).await.unwrap();
        store.put_unlinked(&record("a", "Anorak", 2)).await.unwrap();
        store.put_unlinked(&record("b", "Big bag", 5)).await.unwrap();
        let listed = store.list_unlinked(shop.id, ScanKind::Products, None, 10).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].title, "Big bag");
        assert_eq!(listed[1].first_seen, at(1), "first sight is kept");
        assert_eq!(listed[1].last_seen, at(5));
        let after = store
            .list_unlinked(shop.id, ScanKind::Products, Some(&ExternalId::new("a")), 10)
            .await
            .unwrap();
        assert_eq!(after.len(), 1);
        assert!(store.list_unlinked(shop.id, ScanKind::Orders, None, 10).await.unwrap().is_empty());
        assert!(store.remove_unlinked(shop.id, ScanKind::Products, &ExternalId::new("a")).await.unwrap());
        assert!(!store.remove_unlinked(shop.id, ScanKind::Products, &ExternalId::new("a")).await.unwrap());
    }
}

store_test! {
    async fn platform_deletions_are_remembered_per_connection(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let woo = connection(&store, acme, "Woo", PlatformKind::Woocommerce).await;
        for (connection, ext) in [(woo.id, "w7"), (shop.id, "s7")] {
            store
                .record_platform_deletion(&PlatformDeletion {
                    connection,
                    kind: RecordKind::Product,
                    internal_id: 7,
                    external_id: ExternalId::new(ext),
                    deleted_at: at(3),
                })
                .await
                .unwrap();
        }
        assert_eq!(store.platform_deletions_of(RecordKind::Product, 7).await.unwrap(), vec![shop.id, woo.id]);
        assert!(store.platform_deletions_of(RecordKind::Order, 7).await.unwrap().is_empty());
        assert!(store.clear_platform_deletion(woo.id, RecordKind::Product, 7).await.unwrap());
        assert_eq!(store.platform_deletions_of(RecordKind::Product, 7).await.unwrap(), vec![shop.id]);
    }
}

store_test! {
    async fn page_snapshots_and_savepoints(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let mut ids = Vec::new();
        for n in 0..700i64 {
            let ext = ExternalId::new(format!("p{n}"));
            store
                .bind(&Binding { connection: shop.id, kind: RecordKind::Product, external_id: ext.clone(), internal_id: n + 1, internal_key: String::new() }, at(0))
                .await
                .unwrap();
            store
                .put_snapshot(&Snapshot { connection: shop.id, external_id: ext.clone(), internal_id: n + 1, schema_version: 1, content: RecordContent::Product(realistic(n as u64)), content_hash: hash(n as u128), platform_updated_at: None, seen_generation: 0 }, at(0))
                .await
                .unwrap();
            ids.push(ext);
        }
        ids.push(ExternalId::new("missing"));
        let got = store.snapshots_by_external(shop.id, RecordKind::Product, &ids).await.unwrap();
        assert_eq!(got.len(), 700, "more than one chunk, the missing id left out");

        // A savepoint rolls back one record's writes and keeps the rest of the transaction.
        let mut tx = store.begin().await.unwrap();
        tx.unbind(shop.id, RecordKind::Product, &ExternalId::new("p1")).await.unwrap();
        tx.savepoint().await.unwrap();
        let failed: Result<(), tidemark_store::StoreError> = async {
            tx.unbind(shop.id, RecordKind::Product, &ExternalId::new("p2")).await?;
            Err(tidemark_store::StoreError::NotFound { entity: "product", id: "x".into() })
        }
        .await;
        assert!(tx.end_savepoint(failed).await.is_err());
        tx.savepoint().await.unwrap();
        let kept: Result<bool, tidemark_store::StoreError> = tx.unbind(shop.id, RecordKind::Product, &ExternalId::new("p3")).await;
        tx.end_savepoint(kept).await.unwrap();
        tx.commit().await.unwrap();
        let bound = |ext: &'static str| {
            let store = store.clone();
            async move { store.binding_by_external(shop.id, RecordKind::Product, &ExternalId::new(ext)).await.unwrap().is_some() }
        };
        assert!(!bound("p1").await);
        assert!(bound("p2").await, "rolled back to the savepoint");
        assert!(!bound("p3").await);
    }
}

store_test! {
    async fn issues_about_unbound_records_are_kept_apart_by_external_id(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let issue = |ext: &str| tidemark_store::NewIssue {
            connection: shop.id,
            record: None,
            external_id: Some(ExternalId::new(ext)),
            severity: tidemark_core::Severity::Warning,
            code: "unreadable_record".into(),
            message: format!("{ext} cannot be read"),
            field: None,
            payload: serde_json::Value::Null,
        };
        let a = store.raise_issue(&issue("a"), at(1)).await.unwrap();
        let b = store.raise_issue(&issue("b"), at(2)).await.unwrap();
        let a_again = store.raise_issue(&issue("a"), at(3)).await.unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(a.id, a_again.id);
        assert_eq!(a_again.count, 2);
    }
}
