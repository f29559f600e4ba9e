//! The store suite: every test runs on SQLite and (when TIDEMARK_TEST_DATABASE_URL is set)
//! on PostgreSQL; see `tidemark_testkit::store`.

// A failing test panics; its helpers may too.

use crate::fixtures;
use tidemark_testkit::store_test;

use std::collections::{BTreeMap, BTreeSet};

use fixtures::*;
use tidemark_core::sets::{ConnectionRef, OrderSet, ProductSet, SetContext};
use tidemark_core::{
    Barcode, Binding, ConnectionId, ExternalId, Field, OrderId, PendingOp, PlatformKind, ProductId,
    ProductStatus, RecordContent, RecordKind, RecordRef, ScanKind, Severity, Sku, Snapshot,
    Timestamp,
};
use tidemark_store::{
    ConflictKind, ConnectionPatch, Cooldown, IssueFilter, JobKind, JobRunFilter, JobState,
    NewIssue, NewJobRun, StoreError,
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

store_test! {
    async fn accounts_and_tokens(store) {
        let acme = store.create_account("Acme", T0).await.unwrap();
        assert_eq!(store.get_account(acme.id).await.unwrap(), Some(acme.clone()));
        let other = account(&store, "Other").await;
        let _namesake = store.create_account("Acme", T0).await.unwrap();
        assert_eq!(store.account_named("Acme").await.unwrap(), Some(acme.clone()), "the oldest of that name");
        assert_eq!(store.account_named("Nobody").await.unwrap(), None);

        let issued = store.create_api_token(acme.id, "console", T0).await.unwrap();
        assert!(issued.plaintext.starts_with("tmk_"));
        assert_eq!(issued.plaintext.len(), 4 + 64);
        let second = store.create_api_token(acme.id, "cli", T0).await.unwrap();
        assert_ne!(issued.plaintext, second.plaintext);

        let later = Timestamp(T0.0 + 1000);
        let found = store.authenticate_api_token(&issued.plaintext, later).await.unwrap().unwrap();
        assert_eq!(found.account, acme.id);
        assert_eq!(found.last_used_at, Some(later));
        // Within the minute the last use stands; after it, it moves.
        let soon = Timestamp(later.0 + 30_000);
        let again = store.authenticate_api_token(&issued.plaintext, soon).await.unwrap().unwrap();
        assert_eq!(again.last_used_at, Some(later));
        let after = Timestamp(later.0 + 61_000);
        let again = store.authenticate_api_token(&issued.plaintext, after).await.unwrap().unwrap();
        assert_eq!(again.last_used_at, Some(after));
        let listed = store.list_api_tokens(acme.id).await.unwrap();
        assert_eq!(listed.iter().find(|t| t.id == found.id).unwrap().last_used_at, Some(after));
        assert_eq!(store.authenticate_api_token("tmk_nope", later).await.unwrap(), None);

        assert_eq!(store.list_api_tokens(acme.id).await.unwrap().len(), 2);
        assert!(store.list_api_tokens(other).await.unwrap().is_empty());
        // Another account cannot revoke it.
        assert!(!store.revoke_api_token(other, found.id).await.unwrap());
        assert!(store.revoke_api_token(acme.id, found.id).await.unwrap());
        assert_eq!(store.authenticate_api_token(&issued.plaintext, later).await.unwrap(), None);
    }
}

store_test! {
    async fn connections_are_scoped_by_account(store) {
        let acme = account(&store, "Acme").await;
        let other = account(&store, "Other").await;
        let shop = connection(&store, acme, "Shop A", PlatformKind::Shopify).await;
        let woo = connection(&store, acme, "Woo B", PlatformKind::Woocommerce).await;
        let theirs = connection(&store, other, "Shop A", PlatformKind::Shopify).await;

        let got = store.get_connection(acme, shop.id).await.unwrap().unwrap();
        assert_eq!(got, shop);
        assert_eq!(store.get_connection(other, shop.id).await.unwrap(), None);
        assert_eq!(store.load_connection(theirs.id).await.unwrap().unwrap().account, other);
        let listed: Vec<_> = store.list_connections(acme).await.unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(listed, vec![shop.id, woo.id]);
        assert_eq!(store.list_all_connections().await.unwrap().len(), 3);

        // Names are unique per account.
        let dup = tidemark_store::NewConnection {
            account: acme,
            platform: PlatformKind::Csv,
            name: "Shop A".to_owned(),
            settings: Default::default(),
            platform_settings: serde_json::Value::Null,
            credentials: None,
        };
        assert!(store.create_connection(&dup, T0).await.unwrap_err().is_conflict());

        // Update, pause, credentials.
        let mut settings = shop.settings.clone();
        settings.clone_new_products = true;
        let patch = ConnectionPatch { name: Some("Shop Main".to_owned()), settings: Some(settings.clone()), platform_settings: None };
        let updated = store.update_connection(acme, shop.id, &patch, T0).await.unwrap();
        assert_eq!(updated.name, "Shop Main");
        assert_eq!(updated.settings, settings);
        assert_eq!(updated.platform_settings, shop.platform_settings);
        assert!(matches!(
            store.update_connection(other, shop.id, &patch, T0).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(store.set_connection_paused(acme, shop.id, true, T0).await.unwrap());
        assert!(!store.set_connection_paused(other, shop.id, true, T0).await.unwrap());
        assert!(store.get_connection(acme, shop.id).await.unwrap().unwrap().paused);

        assert_eq!(store.connection_credentials(shop.id).await.unwrap(), Some(vec![1, 2, 3]));
        assert!(store.set_connection_credentials(acme, shop.id, Some(&[9, 9][..]), T0).await.unwrap());
        assert!(!store.set_connection_credentials(other, shop.id, None, T0).await.unwrap());
        assert_eq!(store.connection_credentials(shop.id).await.unwrap(), Some(vec![9, 9]));
        assert!(matches!(
            store.connection_credentials(ConnectionId(999_999)).await,
            Err(StoreError::NotFound { .. })
        ));

        store.record_fetch(shop.id, Timestamp(5)).await.unwrap();
        store.record_send(shop.id, Timestamp(6)).await.unwrap();
        let got = store.get_connection(acme, shop.id).await.unwrap().unwrap();
        assert_eq!((got.last_fetch_at, got.last_send_at), (Some(Timestamp(5)), Some(Timestamp(6))));

        // Name resolution: exact, then case-insensitive; unknown names are typed errors.
        assert_eq!(store.resolve_connection_name(acme, "woo b").await.unwrap(), woo.id);
        assert!(matches!(
            store.resolve_connection_name(acme, "Nope").await,
            Err(StoreError::UnknownConnection { name }) if name == "Nope"
        ));

        assert!(!store.delete_connection(other, shop.id).await.unwrap());
        assert!(store.delete_connection(acme, shop.id).await.unwrap());
        assert_eq!(store.get_connection(acme, shop.id).await.unwrap(), None);
    }
}

store_test! {
    async fn clocks_get_set_reset(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        assert!(store.get_clocks(shop.id).await.unwrap().is_empty());
        store.set_clock(shop.id, ScanKind::Products, Timestamp(100)).await.unwrap();
        store.set_clock(shop.id, ScanKind::Orders, Timestamp(200)).await.unwrap();
        store.set_clock(shop.id, ScanKind::Products, Timestamp(150)).await.unwrap();
        let clocks = store.get_clocks(shop.id).await.unwrap();
        assert_eq!(clocks, BTreeMap::from([(ScanKind::Products, Timestamp(150)), (ScanKind::Orders, Timestamp(200))]));
        assert_eq!(store.get_connection(acme, shop.id).await.unwrap().unwrap().clocks, clocks);
        store.reset_clocks(acme, shop.id, &[ScanKind::Products]).await.unwrap();
        assert_eq!(store.get_clocks(shop.id).await.unwrap(), BTreeMap::from([(ScanKind::Orders, Timestamp(200))]));
    }
}

store_test! {
    async fn products_round_trip(store) {
        let acme = account(&store, "Acme").await;
        let other = account(&store, "Other").await;
        let content = realistic(7);
        let times = BTreeMap::from([(Field::Title, Timestamp(42))]);
        let created = store.create_product(acme, &content, hash(77), &times, T0).await.unwrap();
        let got = store.get_product(acme, created.id).await.unwrap().unwrap();
        assert_eq!(got, created);
        assert_eq!(got.content, content);
        assert_eq!(got.field_times, times);
        assert_eq!(store.get_product(other, created.id).await.unwrap(), None);
        assert_eq!(store.product_content_hash(acme, created.id).await.unwrap(), Some(hash(77)));

        // Update replaces content and the filter rows.
        let mut changed = got.clone();
        changed.content.title = "Renamed".to_owned();
        changed.content.variants.truncate(1);
        changed.updated_at = Timestamp(T0.0 + 5);
        assert_eq!(store.update_product(&changed, hash(78), changed.revision).await.unwrap(), 2);
        let got = store.get_product(acme, created.id).await.unwrap().unwrap();
        assert_eq!((&got.record, got.revision), (&changed.record, 2));
        assert_eq!(store.product_content_hash(acme, created.id).await.unwrap(), Some(hash(78)));
        assert_eq!(
            store.match_candidates(acme, &[Sku("SKU-7-M".to_owned())], &[]).await.unwrap(),
            Vec::<ProductId>::new(),
            "the removed variant's SKU no longer matches"
        );

        // An update in the wrong account is NotFound.
        let mut foreign = changed.clone();
        foreign.account = other;
        assert!(matches!(store.update_product(&foreign, hash(1), 2).await, Err(StoreError::NotFound { .. })));

        // Match candidates: SKU (product or variant level) first, barcode only if no SKU matched.
        let second = store.create_product(acme, &realistic(8), hash(88), &BTreeMap::new(), T0).await.unwrap();
        assert_eq!(store.match_candidates(acme, &[Sku("SKU-8".to_owned())], &[]).await.unwrap(), vec![second.id]);
        assert_eq!(store.match_candidates(acme, &[Sku("SKU-8-L".to_owned())], &[]).await.unwrap(), vec![second.id]);
        let barcode_7 = content.variants[0].barcode.clone().unwrap();
        assert_eq!(
            store.match_candidates(acme, &[Sku("SKU-8-S".to_owned())], std::slice::from_ref(&barcode_7)).await.unwrap(),
            vec![second.id],
            "a SKU match wins over a barcode match"
        );
        assert_eq!(
            store.match_candidates(acme, &[Sku("nope".to_owned())], std::slice::from_ref(&barcode_7)).await.unwrap(),
            vec![created.id]
        );
        assert!(store.match_candidates(other, &[Sku("SKU-8".to_owned())], &[barcode_7]).await.unwrap().is_empty());
        assert!(store.match_candidates(acme, &[], &[Barcode("0".to_owned())]).await.unwrap().is_empty());

        let many = store.get_products(acme, &[second.id, created.id, ProductId(999_999)]).await.unwrap();
        assert_eq!(many.iter().map(|p| p.id).collect::<Vec<_>>(), vec![created.id, second.id]);
        assert_eq!(store.count_products(acme).await.unwrap(), 2);
    }
}

store_test! {
    /// A product whose third variant repeats a SKU violates UNIQUE(product_id, sku): the
    /// product row and the first two variant rows must not remain.
    async fn failed_product_write_leaves_nothing(store) {
        let acme = account(&store, "Acme").await;
        let mut bad = product("Broken");
        bad.variants = vec![variant("A"), variant("B"), variant("A")];
        bad.images = vec![image(1)];
        let err = store.create_product(acme, &bad, hash(1), &BTreeMap::new(), T0).await.unwrap_err();
        assert!(matches!(&err, StoreError::Conflict { table: "product_variants", .. }), "{err}");
        assert_eq!(store.count_products(acme).await.unwrap(), 0);
        assert!(store.match_candidates(acme, &[Sku("B".to_owned())], &[]).await.unwrap().is_empty());

        // The same failure inside a caller's transaction: the savepoint undoes only the failed
        // product; the transaction stays usable and commits the rest.
        let mut tx = store.begin().await.unwrap();
        let good = tx.create_product(acme, &realistic(1), hash(2), &BTreeMap::new(), T0).await.unwrap();
        assert!(tx.create_product(acme, &bad, hash(3), &BTreeMap::new(), T0).await.unwrap_err().is_conflict());
        // An update that fails on its images leaves the old rows in place.
        let mut broken_update = good.clone();
        broken_update.content.images = vec![image(5), image(5)];
        broken_update.content.title = "Should not stick".to_owned();
        assert!(tx.update_product(&broken_update, hash(4), good.revision).await.unwrap_err().is_conflict());
        tx.commit().await.unwrap();
        assert_eq!(store.count_products(acme).await.unwrap(), 1);
        let stored = store.get_product(acme, good.id).await.unwrap().unwrap();
        assert_eq!(stored, good);
        assert_eq!(store.match_candidates(acme, &[Sku("SKU-1-M".to_owned())], &[]).await.unwrap(), vec![good.id]);
    }
}

store_test! {
    /// A transaction that errors midway and is dropped leaves no row of it behind.
    async fn failed_transaction_leaves_nothing(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let mut tx = store.begin().await.unwrap();
        let p = tx.create_product(acme, &realistic(1), hash(1), &BTreeMap::new(), T0).await.unwrap();
        tx.bind(&binding(shop.id, RecordKind::Product, "ext-1", p.id.0), T0).await.unwrap();
        tx.enqueue_pending_change(shop.id, RecordRef::Product(p.id), &PendingOp::Insert, T0).await.unwrap();
        let dup = tidemark_store::NewConnection {
            account: acme,
            platform: PlatformKind::Csv,
            name: "Shop".to_owned(),
            settings: Default::default(),
            platform_settings: serde_json::Value::Null,
            credentials: None,
        };
        assert!(tx.create_connection(&dup, T0).await.unwrap_err().is_conflict());
        drop(tx);
        assert_eq!(store.count_products(acme).await.unwrap(), 0);
        assert_eq!(store.count_bindings(shop.id, RecordKind::Product).await.unwrap(), 0);
        assert_eq!(store.pending_counts(acme, shop.id).await.unwrap().total(), 0);

        // And an explicit rollback.
        let mut tx = store.begin().await.unwrap();
        tx.create_product(acme, &realistic(2), hash(2), &BTreeMap::new(), T0).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(store.count_products(acme).await.unwrap(), 0);
    }
}

store_test! {
    async fn orders_round_trip(store) {
        let acme = account(&store, "Acme").await;
        let other = account(&store, "Other").await;
        let ml = connection(&store, acme, "ML", PlatformKind::Mercadolibre).await;
        let content = order("2000003508419013", Timestamp(T0.0 - 10));
        let created = store.create_order(acme, ml.id, &content, hash(5), &BTreeMap::new(), T0).await.unwrap();
        assert_eq!(store.get_order(acme, created.id).await.unwrap(), Some(created.clone()));
        assert_eq!(store.get_order(other, created.id).await.unwrap(), None);
        assert_eq!(
            store.find_order_by_number(acme, ml.id, "2000003508419013").await.unwrap().map(|o| o.id),
            Some(created.id)
        );
        // The same number from the same origin is the same order.
        assert!(store.create_order(acme, ml.id, &content, hash(5), &BTreeMap::new(), T0).await.unwrap_err().is_conflict());

        let mut shipped = created.clone();
        shipped.content.shipments.push(tidemark_core::Shipment {
            carrier: Some("UPS".to_owned()),
            tracking_number: Some("1Z999".to_owned()),
            status: tidemark_core::ShipmentStatus::Shipped,
        });
        shipped.content.status = tidemark_core::OrderStatus::Completed;
        shipped.field_times.insert(Field::Shipments, Timestamp(T0.0 + 9));
        shipped.updated_at = Timestamp(T0.0 + 10);
        assert_eq!(store.update_order(&shipped, hash(6), shipped.revision).await.unwrap(), 2);
        shipped.revision = 2;
        assert_eq!(store.get_order(acme, created.id).await.unwrap(), Some(shipped));
    }
}

store_test! {
    async fn bindings_are_unique_on_both_sides(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let woo = connection(&store, acme, "Woo", PlatformKind::Woocommerce).await;
        let b = binding(shop.id, RecordKind::Product, "gid://shopify/Product/1", 10);
        store.bind(&b, T0).await.unwrap();
        // Idempotent for the identical pair.
        store.bind(&b, T0).await.unwrap();

        // External side taken.
        let err = store.bind(&binding(shop.id, RecordKind::Product, "gid://shopify/Product/1", 11), T0).await.unwrap_err();
        match err {
            StoreError::Conflict { table: "bindings", kind: ConflictKind::ExternalIdBound { bound_to_internal_id, .. } } => {
                assert_eq!(bound_to_internal_id, 10)
            }
            other => panic!("expected an external-side conflict, got {other:?}"),
        }
        // Internal side taken.
        let err = store.bind(&binding(shop.id, RecordKind::Product, "gid://shopify/Product/2", 10), T0).await.unwrap_err();
        match err {
            StoreError::Conflict { kind: ConflictKind::InternalRecordBound { bound_to_external_id, .. }, .. } => {
                assert_eq!(bound_to_external_id.as_str(), "gid://shopify/Product/1")
            }
            other => panic!("expected an internal-side conflict, got {other:?}"),
        }
        // Other connections, kinds and keys are independent.
        store.bind(&binding(woo.id, RecordKind::Product, "gid://shopify/Product/1", 11), T0).await.unwrap();
        store.bind(&binding(shop.id, RecordKind::Order, "gid://shopify/Product/1", 10), T0).await.unwrap();
        let v1 = Binding { internal_key: "SKU-1".to_owned(), ..binding(shop.id, RecordKind::Variant, "v1", 10) };
        let v2 = Binding { internal_key: "SKU-2".to_owned(), ..binding(shop.id, RecordKind::Variant, "v2", 10) };
        store.bind(&v1, T0).await.unwrap();
        store.bind(&v2, T0).await.unwrap();
        assert!(store.bind(&Binding { external_id: ExternalId::new("v3"), ..v2.clone() }, T0).await.unwrap_err().is_conflict());

        // Lookups both ways.
        assert_eq!(store.binding_by_external(shop.id, RecordKind::Product, &b.external_id).await.unwrap(), Some(b.clone()));
        assert_eq!(store.binding_by_internal(shop.id, RecordKind::Variant, 10, "SKU-2").await.unwrap(), Some(v2.clone()));
        assert_eq!(store.bindings_of_record(acme, RecordKind::Variant, 10).await.unwrap(), vec![v1.clone(), v2.clone()]);
        assert_eq!(store.count_bindings(shop.id, RecordKind::Product).await.unwrap(), 1);
        let listed = store.list_bindings(acme, shop.id, RecordKind::Variant, Some(&ExternalId::new("v1")), 10).await.unwrap();
        assert_eq!(listed, vec![v2]);

        assert!(store.unbind(shop.id, RecordKind::Product, &b.external_id).await.unwrap());
        assert!(!store.unbind(shop.id, RecordKind::Product, &b.external_id).await.unwrap());
        // Once unbound, the internal side is free again.
        store.bind(&binding(shop.id, RecordKind::Product, "gid://shopify/Product/2", 10), T0).await.unwrap();
    }
}

store_test! {
    /// Two transactions race to bind the same external id, each after creating its own
    /// canonical product: one wins, the loser gets a Conflict and its product is rolled back.
    async fn bind_race_has_one_clean_winner(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let rounds = 10;
        let mut winners = 0;
        for round in 0..rounds {
            let ext = format!("race-{round}");
            let contenders: Vec<_> = (0..2u64)
                .map(|who| {
                    let store = store.clone();
                    let ext = ext.clone();
                    tokio::spawn(async move {
                        let mut tx = store.begin().await?;
                        let p = tx
                            .create_product(acme, &realistic(round * 10 + who), hash(1), &BTreeMap::new(), T0)
                            .await?;
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        tx.bind(&binding(shop.id, RecordKind::Product, &ext, p.id.0), T0).await?;
                        tx.commit().await?;
                        Ok::<ProductId, StoreError>(p.id)
                    })
                })
                .collect();
            let mut won = Vec::new();
            for contender in contenders {
                match contender.await.unwrap() {
                    Ok(id) => won.push(id),
                    Err(StoreError::Conflict { kind: ConflictKind::ExternalIdBound { .. }, .. }) => {}
                    Err(other) => panic!("the loser must get a Conflict, got {other}"),
                }
            }
            assert_eq!(won.len(), 1, "exactly one contender wins round {round}");
            let bound = store.binding_by_external(shop.id, RecordKind::Product, &ExternalId::new(&ext)).await.unwrap().unwrap();
            assert_eq!(bound.internal_id, won[0].0);
            winners += 1;
        }
        // Nothing half-written: one product per round, each bound.
        assert_eq!(store.count_products(acme).await.unwrap(), winners);
        assert_eq!(store.count_bindings(shop.id, RecordKind::Product).await.unwrap(), winners);
    }
}

store_test! {
    async fn snapshots_and_mark_and_sweep(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let mut content = realistic(1);
        content.category = Some("Tops".to_owned());
        let snap = |ext: &str, internal: i64, generation: i64| Snapshot {
            connection: shop.id,
            external_id: ExternalId::new(ext),
            internal_id: internal,
            schema_version: 1,
            content: RecordContent::Product(content.clone()),
            content_hash: hash(internal as u128),
            platform_updated_at: Some(Timestamp(500)),
            seen_generation: generation,
        };
        // A snapshot needs its binding.
        assert!(matches!(store.put_snapshot(&snap("p1", 1, 0), T0).await, Err(StoreError::NotFound { .. })));
        for (ext, id) in [("p1", 1), ("p2", 2), ("p3", 3)] {
            store.bind(&binding(shop.id, RecordKind::Product, ext, id), T0).await.unwrap();
        }
        store.bind(&binding(shop.id, RecordKind::Product, "p4", 4), T0).await.unwrap(); // never snapshotted
        for (ext, id) in [("p1", 1), ("p2", 2), ("p3", 3)] {
            store.put_snapshot(&snap(ext, id, 0), T0).await.unwrap();
        }
        assert!(matches!(store.put_snapshot(&snap("p1", 2, 0), T0).await, Err(StoreError::Invalid { .. })));
        assert_eq!(store.get_snapshot(shop.id, RecordKind::Product, &ExternalId::new("p2")).await.unwrap(), Some(snap("p2", 2, 0)));
        assert_eq!(store.snapshot_of_record(shop.id, RecordKind::Product, 3).await.unwrap(), Some(snap("p3", 3, 0)));
        // Replace.
        let mut newer = snap("p2", 2, 0);
        newer.schema_version = 2;
        newer.content_hash = hash(222);
        store.put_snapshot(&newer, T0).await.unwrap();
        assert_eq!(store.get_snapshot(shop.id, RecordKind::Product, &ExternalId::new("p2")).await.unwrap(), Some(newer));

        assert_eq!(store.scan_generation(shop.id, ScanKind::Products).await.unwrap(), 0);
        // Bindings made before the scan started are sweep candidates.
        let scan_start = Timestamp(T0.0 + 1);
        let g1 = store.next_scan_generation(shop.id, ScanKind::Products, scan_start).await.unwrap();
        let g2 = store.next_scan_generation(shop.id, ScanKind::Products, scan_start).await.unwrap();
        assert_eq!((g1, g2), (1, 2));
        assert_eq!(store.next_scan_generation(shop.id, ScanKind::Orders, T0).await.unwrap(), 1);
        let marked = store.mark_seen(shop.id, ScanKind::Products, &[ExternalId::new("p1"), ExternalId::new("p3"), ExternalId::new("zz")], g2).await.unwrap();
        assert_eq!(marked, 2);
        let unseen: Vec<String> = store.list_unseen(shop.id, ScanKind::Products, g2, None, 100).await.unwrap()
            .into_iter().map(|b| b.external_id.0).collect();
        assert_eq!(unseen, vec!["p2", "p4"]);
        let page: Vec<String> = store.list_unseen(shop.id, ScanKind::Products, g2, Some(&ExternalId::new("p2")), 100).await.unwrap()
            .into_iter().map(|b| b.external_id.0).collect();
        assert_eq!(page, vec!["p4"]);
        let all = store.list_snapshots(shop.id, RecordKind::Product, None, 2).await.unwrap();
        assert_eq!(all.iter().map(|s| s.external_id.as_str()).collect::<Vec<_>>(), vec!["p1", "p2"]);

        // Unbinding drops the snapshot with it.
        assert!(store.unbind(shop.id, RecordKind::Product, &ExternalId::new("p1")).await.unwrap());
        assert_eq!(store.get_snapshot(shop.id, RecordKind::Product, &ExternalId::new("p1")).await.unwrap(), None);
        assert!(store.delete_snapshot(shop.id, RecordKind::Product, &ExternalId::new("p3")).await.unwrap());
        assert!(store.binding_by_external(shop.id, RecordKind::Product, &ExternalId::new("p3")).await.unwrap().is_some());
    }
}

store_test! {
    async fn pending_changes_merge(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let woo = connection(&store, acme, "Woo", PlatformKind::Woocommerce).await;
        let p1 = RecordRef::Product(ProductId(1));
        let p2 = RecordRef::Product(ProductId(2));
        let update = |fields: &[Field]| PendingOp::Update { fields: fields.iter().copied().collect() };

        let first = store.enqueue_pending_change(shop.id, p1, &update(&[Field::Title]), Timestamp(10)).await.unwrap();
        store.retry_pending_change(first.change.id, Timestamp(1_000), "timeout", Timestamp(11)).await.unwrap();
        let merged = store.enqueue_pending_change(shop.id, p1, &update(&[Field::Price, Field::Stock]), Timestamp(20)).await.unwrap();
        assert_eq!(merged.change.id, first.change.id, "one row per (connection, record)");
        assert_eq!(merged.change.op, update(&[Field::Title, Field::Price, Field::Stock]));
        assert_eq!(merged.change.attempts, 0, "a new change resets the backoff");
        assert_eq!(merged.change.next_attempt_at, Timestamp(20));
        assert_eq!(merged.change.created_at, Timestamp(10));
        assert!(merged.revision > first.revision);

        // An insert absorbs updates, before or after.
        let ins = store.enqueue_pending_change(shop.id, p2, &PendingOp::Insert, Timestamp(10)).await.unwrap();
        let after = store.enqueue_pending_change(shop.id, p2, &update(&[Field::Title]), Timestamp(11)).await.unwrap();
        assert_eq!((after.change.id, after.change.op.clone()), (ins.change.id, PendingOp::Insert));
        let upgraded = store.enqueue_pending_change(shop.id, p1, &PendingOp::Insert, Timestamp(21)).await.unwrap();
        assert_eq!(upgraded.change.op, PendingOp::Insert);

        // Image deletes are separate rows, one per image.
        let del = PendingOp::ImageDelete { external_id: Some(ExternalId::new("img-9")), content_hash: hash(9) };
        let d1 = store.enqueue_pending_change(shop.id, p1, &del, Timestamp(12)).await.unwrap();
        let d2 = store.enqueue_pending_change(shop.id, p1, &PendingOp::ImageDelete { external_id: None, content_hash: hash(9) }, Timestamp(13)).await.unwrap();
        assert_eq!(d1.change.id, d2.change.id);
        assert_eq!(d2.change.op, del, "a known external id is kept");
        store.enqueue_pending_change(shop.id, p1, &PendingOp::ImageDelete { external_id: None, content_hash: hash(10) }, Timestamp(13)).await.unwrap();
        store.enqueue_pending_change(woo.id, p1, &update(&[Field::Title]), Timestamp(13)).await.unwrap();

        let counts = store.pending_counts(acme, shop.id).await.unwrap();
        assert_eq!((counts.inserts, counts.updates, counts.image_deletes), (2, 0, 2));
        let by_connection = store.pending_counts_by_connection(acme).await.unwrap();
        assert_eq!(by_connection[&woo.id].updates, 1);
        assert_eq!(store.pending_changes_of_record(p1).await.unwrap().len(), 4);

        // Due rows in batches, honouring next_attempt_at.
        let row = store.due_pending_changes(shop.id, Timestamp(100), None, 100).await.unwrap()[0].clone();
        store.retry_pending_change(row.change.id, Timestamp(5_000), "HTTP 503", Timestamp(100)).await.unwrap();
        let due = store.due_pending_changes(shop.id, Timestamp(100), None, 2).await.unwrap();
        assert_eq!(due.len(), 2);
        let rest = store.due_pending_changes(shop.id, Timestamp(100), Some(due[1].change.id), 2).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert!(due.iter().chain(&rest).all(|r| r.change.id != row.change.id));
        let later = store.due_pending_changes(shop.id, Timestamp(5_000), None, 100).await.unwrap();
        let retried = later.iter().find(|r| r.change.id == row.change.id).unwrap();
        assert_eq!((retried.change.attempts, retried.change.last_error.as_deref()), (1, Some("HTTP 503")));
        assert_eq!(store.connections_with_due_changes(Timestamp(100)).await.unwrap(), vec![shop.id, woo.id]);

        // Removal checks the revision: a row merged since it was read stays.
        let stale = store.due_pending_changes(woo.id, Timestamp(100), None, 10).await.unwrap()[0].clone();
        store.enqueue_pending_change(woo.id, p1, &update(&[Field::Price]), Timestamp(30)).await.unwrap();
        assert!(!store.remove_pending_change(stale.change.id, stale.revision).await.unwrap());
        let fresh = store.due_pending_changes(woo.id, Timestamp(100), None, 10).await.unwrap()[0].clone();
        assert_eq!(fresh.change.op, update(&[Field::Title, Field::Price]));
        assert!(store.remove_pending_change(fresh.change.id, fresh.revision).await.unwrap());
        assert_eq!(store.pending_counts(acme, woo.id).await.unwrap().total(), 0);
    }
}

store_test! {
    async fn issues_bump_and_resolve(store) {
        let acme = account(&store, "Acme").await;
        let other = account(&store, "Other").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let record = RecordRef::Product(ProductId(7));
        let new = |code: &str, message: &str| NewIssue {
            connection: shop.id,
            record: Some(record),
            external_id: Some(ExternalId::new("gid://shopify/Product/7")),
            severity: Severity::Warning,
            code: code.to_owned(),
            message: message.to_owned(),
            field: Some("sku".to_owned()),
            payload: serde_json::json!({ "errors": [message] }),
        };
        let first = store.raise_issue(&new("TAKEN", "SKU taken"), Timestamp(10)).await.unwrap();
        assert_eq!((first.count, first.first_seen, first.last_seen), (1, Timestamp(10), Timestamp(10)));
        let bumped = store.raise_issue(&new("TAKEN", "SKU already taken"), Timestamp(20)).await.unwrap();
        assert_eq!(bumped.id, first.id, "an open issue is bumped, not duplicated");
        assert_eq!((bumped.count, bumped.first_seen, bumped.last_seen), (2, Timestamp(10), Timestamp(20)));
        assert_eq!(bumped.message, "SKU already taken");
        let other_code = store.raise_issue(&new("INVALID", "bad price"), Timestamp(20)).await.unwrap();
        assert_ne!(other_code.id, first.id);
        // Connection-level issues (no record) bump too.
        let guard = NewIssue { record: None, external_id: None, severity: Severity::Alert, code: "mass_delete_guard".to_owned(), ..new("x", "scan returned nothing") };
        let g1 = store.raise_issue(&guard, Timestamp(30)).await.unwrap();
        let g2 = store.raise_issue(&guard, Timestamp(31)).await.unwrap();
        assert_eq!((g1.id, g2.count, g2.record), (g2.id, 2, None));

        assert_eq!(store.open_issue_counts(acme).await.unwrap(), BTreeMap::from([(shop.id, 3)]));
        assert!(store.open_issue_counts(other).await.unwrap().is_empty());
        assert_eq!(store.get_issue(acme, first.id).await.unwrap().unwrap(), bumped);
        assert_eq!(store.get_issue(other, first.id).await.unwrap(), None);

        assert!(!store.resolve_issue(other, first.id, Timestamp(40)).await.unwrap());
        assert!(store.resolve_issue(acme, first.id, Timestamp(40)).await.unwrap());
        // A new occurrence after resolution opens a new issue.
        let again = store.raise_issue(&new("TAKEN", "SKU taken"), Timestamp(50)).await.unwrap();
        assert_ne!(again.id, first.id);
        assert_eq!(again.count, 1);
        assert_eq!(store.resolve_record_issues(shop.id, record, Some("INVALID"), Timestamp(60)).await.unwrap(), 1);
        assert_eq!(store.resolve_record_issues(shop.id, record, None, Timestamp(60)).await.unwrap(), 1);

        let open = store.list_issues(acme, &IssueFilter { open_only: true, ..Default::default() }).await.unwrap();
        assert_eq!(open.iter().map(|i| i.id).collect::<Vec<_>>(), vec![g1.id]);
        let all = store.list_issues(acme, &IssueFilter { record: Some(record), ..Default::default() }).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        let page = store.list_issues(acme, &IssueFilter { record: Some(record), before: Some(all[0].id), limit: 1, ..Default::default() }).await.unwrap();
        assert_eq!(page.iter().map(|i| i.id).collect::<Vec<_>>(), vec![all[1].id]);
    }
}

store_test! {
    async fn job_runs_compare_and_set(store) {
        let acme = account(&store, "Acme").await;
        let other = account(&store, "Other").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let new = NewJobRun { connection: shop.id, kind: JobKind::Fetch, scope: serde_json::json!({ "scope": "full" }), trigger: "user".to_owned(), max_attempts: 2 };
        let run = store.create_job_run(acme, &new, Timestamp(10)).await.unwrap();
        assert_eq!((run.state, run.attempts, run.next_attempt_at), (JobState::Queued, 0, Timestamp(10)));
        assert_eq!(store.active_job_run(shop.id, JobKind::Fetch).await.unwrap().map(|r| r.id), Some(run.id));
        assert_eq!(store.active_job_run(shop.id, JobKind::Send).await.unwrap(), None);
        assert_eq!(store.due_job_runs(Timestamp(10), 10).await.unwrap().len(), 1);

        // Two workers race to start it: exactly one wins.
        let (a, b) = tokio::join!(
            store.start_job_run(run.id, "worker-a", Timestamp(11)),
            store.start_job_run(run.id, "worker-b", Timestamp(11)),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.is_some() ^ b.is_some(), "one start wins");
        let (owner, loser) = if a.is_some() { ("worker-a", "worker-b") } else { ("worker-b", "worker-a") };
        let running = a.or(b).unwrap();
        assert_eq!((running.state, running.attempts, running.lease_owner.as_deref()), (JobState::Running, 1, Some(owner)));

        // Only the owner writes progress, checkpoints and heartbeats.
        let progress = serde_json::json!({ "scanned": 50, "total": 100 });
        let counts = serde_json::json!({ "new": 3 });
        assert!(!store.set_job_progress(run.id, loser, &progress, &counts, Timestamp(12)).await.unwrap());
        assert!(store.set_job_progress(run.id, owner, &progress, &counts, Timestamp(12)).await.unwrap());
        assert!(store.save_job_checkpoint(run.id, owner, &serde_json::json!({ "cursor": "abc" }), Timestamp(13)).await.unwrap());
        assert!(!store.heartbeat_job_run(run.id, loser, Timestamp(14)).await.unwrap());
        assert!(store.heartbeat_job_run(run.id, owner, Timestamp(14)).await.unwrap());

        // Retry: back to queued with the checkpoint kept, then the last attempt fails.
        assert_eq!(store.retry_job_run(run.id, owner, Timestamp(100), "HTTP 503", Timestamp(15)).await.unwrap(), Some(JobState::Queued));
        let queued = store.get_job_run(run.id).await.unwrap().unwrap();
        assert_eq!((queued.state, queued.lease_owner.clone(), queued.checkpoint.clone()), (JobState::Queued, None, Some(serde_json::json!({ "cursor": "abc" }))));
        assert_eq!((queued.progress.clone(), queued.counts.clone()), (progress, counts));
        assert!(store.due_job_runs(Timestamp(50), 10).await.unwrap().is_empty());
        assert!(store.start_job_run(run.id, "worker-c", Timestamp(100)).await.unwrap().is_some());
        assert_eq!(store.retry_job_run(run.id, "worker-c", Timestamp(200), "again", Timestamp(101)).await.unwrap(), Some(JobState::Failed));
        let failed = store.get_job_run(run.id).await.unwrap().unwrap();
        assert_eq!((failed.state, failed.attempts, failed.error.as_deref(), failed.finished_at), (JobState::Failed, 2, Some("again"), Some(Timestamp(101))));
        assert!(store.start_job_run(run.id, "worker-d", Timestamp(300)).await.unwrap().is_none(), "finished runs never restart");
        assert!(!store.cancel_job_run(acme, run.id, Timestamp(300)).await.unwrap());

        // Succeed by owner only; cancel; stale heartbeats are requeued.
        let second = store.create_job_run(acme, &NewJobRun { kind: JobKind::Send, ..new.clone() }, Timestamp(20)).await.unwrap();
        store.start_job_run(second.id, "w1", Timestamp(21)).await.unwrap().unwrap();
        assert!(!store.finish_job_run(second.id, "w2", JobState::Succeeded, None, Timestamp(22)).await.unwrap());
        assert!(matches!(store.finish_job_run(second.id, "w1", JobState::Queued, None, Timestamp(22)).await, Err(StoreError::Invalid { .. })));
        assert!(store.finish_job_run(second.id, "w1", JobState::Succeeded, None, Timestamp(22)).await.unwrap());
        assert!(!store.finish_job_run(second.id, "w1", JobState::Failed, Some("late"), Timestamp(23)).await.unwrap());

        let third = store.create_job_run(acme, &NewJobRun { kind: JobKind::Sync, ..new.clone() }, Timestamp(30)).await.unwrap();
        assert!(store.cancel_job_run(acme, third.id, Timestamp(31)).await.unwrap());
        assert!(store.start_job_run(third.id, "w1", Timestamp(32)).await.unwrap().is_none());

        let fourth = store.create_job_run(acme, &NewJobRun { kind: JobKind::IntegrityFix, ..new.clone() }, Timestamp(40)).await.unwrap();
        store.start_job_run(fourth.id, "dead-worker", Timestamp(41)).await.unwrap().unwrap();
        assert_eq!(store.requeue_stale_job_runs(Timestamp(41), Timestamp(60)).await.unwrap(), Default::default());
        assert_eq!(store.requeue_stale_job_runs(Timestamp(42), Timestamp(60)).await.unwrap().requeued, vec![fourth.id]);
        assert!(!store.heartbeat_job_run(fourth.id, "dead-worker", Timestamp(61)).await.unwrap(), "a requeued run is lost to its old worker");
        assert_eq!(store.get_job_run(fourth.id).await.unwrap().unwrap().state, JobState::Queued);

        // Yield (paused, shutting down): back to queued, due now, the attempt given back;
        // only by its owner.
        let fifth = store.create_job_run(acme, &NewJobRun { kind: JobKind::Fetch, ..new.clone() }, Timestamp(70)).await.unwrap();
        store.start_job_run(fifth.id, "w1", Timestamp(71)).await.unwrap().unwrap();
        assert!(!store.yield_job_run(fifth.id, "w2", Timestamp(72)).await.unwrap());
        assert!(store.yield_job_run(fifth.id, "w1", Timestamp(72)).await.unwrap());
        let yielded = store.get_job_run(fifth.id).await.unwrap().unwrap();
        assert_eq!((yielded.state, yielded.attempts, yielded.lease_owner, yielded.next_attempt_at), (JobState::Queued, 0, None, Timestamp(72)));
        assert!(!store.yield_job_run(fifth.id, "w1", Timestamp(73)).await.unwrap(), "a queued run has nothing to yield");
        store.start_job_run(fifth.id, "w1", Timestamp(74)).await.unwrap().unwrap();
        assert!(store.finish_job_run(fifth.id, "w1", JobState::Succeeded, None, Timestamp(75)).await.unwrap());

        // Listing is scoped by account, newest first, filterable.
        let all = store.list_job_runs(acme, &JobRunFilter::default()).await.unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![fifth.id, fourth.id, third.id, second.id, run.id]);
        let finished = store.list_job_runs(acme, &JobRunFilter { states: vec![JobState::Succeeded, JobState::Cancelled], ..Default::default() }).await.unwrap();
        assert_eq!(finished.iter().map(|r| r.id).collect::<Vec<_>>(), vec![fifth.id, third.id, second.id]);
        let sends = store.list_job_runs(acme, &JobRunFilter { kind: Some(JobKind::Send), connection: Some(shop.id), ..Default::default() }).await.unwrap();
        assert_eq!(sends.len(), 1);
        assert!(store.list_job_runs(other, &JobRunFilter::default()).await.unwrap().is_empty());
        assert!(store.get_account_job_run(other, run.id).await.unwrap().is_none());
        assert!(store.get_account_job_run(acme, run.id).await.unwrap().is_some());
        assert_eq!(store.prune_job_runs(Timestamp(1_000)).await.unwrap(), 4);
    }
}

store_test! {
    async fn leases_acquire_steal_renew_release(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let c = shop.id;
        assert!(store.acquire_lease(c, "fetch", "a", Timestamp(0), 1_000).await.unwrap());
        assert!(!store.acquire_lease(c, "fetch", "b", Timestamp(500), 1_000).await.unwrap(), "held and unexpired");
        assert!(store.acquire_lease(c, "send", "b", Timestamp(500), 1_000).await.unwrap(), "kinds are independent");
        assert!(store.acquire_lease(c, "fetch", "a", Timestamp(600), 1_000).await.unwrap(), "the owner re-acquires");
        assert_eq!(store.get_lease(c, "fetch").await.unwrap().unwrap().expires_at, Timestamp(1_600));

        assert!(!store.renew_lease(c, "fetch", "b", Timestamp(700), 1_000).await.unwrap(), "only the owner renews");
        assert!(store.renew_lease(c, "fetch", "a", Timestamp(700), 1_000).await.unwrap());
        assert!(!store.acquire_lease(c, "fetch", "b", Timestamp(1_600), 1_000).await.unwrap());
        // Expired: another worker takes it over, and the old owner can no longer renew.
        assert!(store.acquire_lease(c, "fetch", "b", Timestamp(1_700), 1_000).await.unwrap());
        let lease = store.get_lease(c, "fetch").await.unwrap().unwrap();
        assert_eq!((lease.owner.as_str(), lease.acquired_at, lease.expires_at), ("b", Timestamp(1_700), Timestamp(2_700)));
        assert!(!store.renew_lease(c, "fetch", "a", Timestamp(1_800), 1_000).await.unwrap());
        assert!(!store.release_lease(c, "fetch", "a").await.unwrap(), "only the owner releases");
        assert!(store.release_lease(c, "fetch", "b").await.unwrap());
        assert!(store.get_lease(c, "fetch").await.unwrap().is_none());

        // Many concurrent acquirers: exactly one holds it.
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.acquire_lease(c, "race", &format!("w{i}"), Timestamp(10), 1_000).await })
            })
            .collect();
        let mut holders = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() {
                holders += 1;
            }
        }
        assert_eq!(holders, 1);
        // A global lease (connection 0) works without a connection row.
        assert!(store.acquire_lease(ConnectionId(0), "scheduler", "a", Timestamp(0), 10).await.unwrap());
    }
}

store_test! {
    async fn cooldowns(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let hour = 3_600_000;
        assert_eq!(store.start_cooldown(shop.id, "resync_window", Timestamp(0), hour).await.unwrap(), Cooldown::Started { until: Timestamp(hour) });
        assert_eq!(store.start_cooldown(shop.id, "resync_window", Timestamp(1_000), hour).await.unwrap(), Cooldown::Active { until: Timestamp(hour) });
        assert!(matches!(store.start_cooldown(shop.id, "resync_record:1", Timestamp(1_000), 300_000).await.unwrap(), Cooldown::Started { .. }));
        assert_eq!(store.cooldown_until(shop.id, "resync_window", Timestamp(5)).await.unwrap(), Some(Timestamp(hour)));
        assert_eq!(store.cooldown_until(shop.id, "resync_window", Timestamp(hour)).await.unwrap(), None);
        assert_eq!(store.start_cooldown(shop.id, "resync_window", Timestamp(hour), hour).await.unwrap(), Cooldown::Started { until: Timestamp(2 * hour) });
        assert!(store.clear_cooldown(shop.id, "resync_window").await.unwrap());
        assert!(matches!(store.start_cooldown(shop.id, "resync_window", Timestamp(hour + 1), hour).await.unwrap(), Cooldown::Started { .. }));
    }
}

store_test! {
    async fn deleting_a_connection_cascades_but_keeps_orders(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let p = store.create_product(acme, &realistic(1), hash(1), &BTreeMap::new(), T0).await.unwrap();
        let o = store.create_order(acme, shop.id, &order("1001", T0), hash(2), &BTreeMap::new(), T0).await.unwrap();
        store.bind(&binding(shop.id, RecordKind::Product, "x", p.id.0), T0).await.unwrap();
        store.enqueue_pending_change(shop.id, RecordRef::Product(p.id), &PendingOp::Insert, T0).await.unwrap();
        store.set_clock(shop.id, ScanKind::Products, T0).await.unwrap();
        store.create_job_run(acme, &NewJobRun { connection: shop.id, kind: JobKind::Fetch, scope: serde_json::Value::Null, trigger: "user".to_owned(), max_attempts: 1 }, T0).await.unwrap();
        assert!(store.delete_connection(acme, shop.id).await.unwrap());
        assert_eq!(store.bindings_of_record(acme, RecordKind::Product, p.id.0).await.unwrap(), vec![]);
        assert!(store.pending_changes_of_record(RecordRef::Product(p.id)).await.unwrap().is_empty());
        assert!(store.list_job_runs(acme, &JobRunFilter::default()).await.unwrap().is_empty());
        assert!(store.get_product(acme, p.id).await.unwrap().is_some());
        assert_eq!(store.get_order(acme, o.id).await.unwrap().map(|o| o.origin), Some(shop.id));
    }
}

// ---------------------------------------------------------------------------------------------
// Set filters on a hand-made catalogue
// ---------------------------------------------------------------------------------------------

fn on(name: &str) -> ConnectionRef {
    ConnectionRef(name.to_owned())
}

store_test! {
    async fn product_sets_select_exactly(store) {
        use ProductSet as S;
        let acme = account(&store, "Acme").await;
        let other = account(&store, "Other").await;
        let a = connection(&store, acme, "Shop A", PlatformKind::Shopify).await.id;
        let b = connection(&store, acme, "Woo B", PlatformKind::Woocommerce).await.id;

        // P1: Acme, described, tagged, two red variants (S stock 3 → low; M stock 20), one image.
        let mut p1 = product("Tee");
        p1.sku = Some(Sku("P1".to_owned()));
        p1.brand = Some("Acme".to_owned());
        p1.description = "<p>Soft</p>".to_owned();
        p1.tags.insert("summer".to_owned());
        p1.category = Some("Shirts".to_owned());
        p1.images = vec![image(11)];
        p1.variants = vec![
            { let mut v = with_options(variant("P1-S"), Some("Red"), Some("S")); v.compare_at_price = Some(dec("12.00")); v.stock = Some(3); v },
            { let mut v = with_options(variant("P1-M"), Some("Red"), Some("M")); v.stock = Some(20); v },
        ];
        // P2: " acme " brand, no SKU of its own, one blue M variant at 0.50 with no stock.
        let mut p2 = product("Cap");
        p2.brand = Some(" acme ".to_owned());
        p2.variants = vec![{ let mut v = with_options(variant("P2-1"), Some("Blue"), Some("M")); v.price = Some(dec("0.50")); v.stock = Some(0); v }];
        // P3: no brand, a vendor, a barcode, one untracked variant without price.
        let mut p3 = product("Mug");
        p3.vendor = Some("Mugs Inc".to_owned());
        p3.barcode = Some(Barcode("0123456789012".to_owned()));
        p3.variants = vec![{ let mut v = variant("P3-1"); v.price = None; v.stock = None; v }];
        // P4: Zeta, attributes, a green L variant whose compare-at is below its price (bad),
        //     an XL variant oversold; variant weight.
        let mut p4 = product("Jacket");
        p4.brand = Some("Zeta".to_owned());
        p4.attributes.insert("material".to_owned(), "wool".to_owned());
        p4.variants = vec![
            { let mut v = with_options(variant("P4-L"), Some("Green"), Some("L")); v.price = Some(dec("20")); v.compare_at_price = Some(dec("15")); v.stock = Some(0); v.weight_grams = Some(dec("800")); v },
            { let mut v = with_options(variant("P4-XL"), None, Some("XL")); v.price = Some(dec("20")); v.stock = Some(-1); v },
        ];
        // P5: Zeta, two images, no variants.
        let mut p5 = product("Poster");
        p5.brand = Some("Zeta".to_owned());
        p5.images = vec![image(51), { let mut i = image(52); i.position = 1; i }];
        // P6: Acme, a red small variant at 5 with stock 5 (low), product weight.
        let mut p6 = product("Socks");
        p6.sku = Some(Sku("P6".to_owned()));
        p6.brand = Some("ACME".to_owned());
        p6.weight_grams = Some(dec("100"));
        p6.variants = vec![{ let mut v = with_options(variant("P6-1"), Some("red"), Some("s")); v.price = Some(dec("5")); v.stock = Some(5); v }];
        // Another account's product that matches everything brand-wise.
        let mut foreign = p1.clone();
        foreign.title = "Foreign".to_owned();
        store.create_product(other, &foreign, hash(99), &BTreeMap::new(), T0).await.unwrap();

        let mut ids = Vec::new();
        for (i, content) in [p1, p2, p3, p4, p5, p6].iter().enumerate() {
            ids.push(store.create_product(acme, content, hash(i as u128), &BTreeMap::new(), T0).await.unwrap().id);
        }
        let [p1, p2, p3, p4, p5, p6] = [ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]];

        // Platform state: bindings and snapshots (status, category as the platform has them).
        let snapshot = |conn: ConnectionId, ext: &str, id: ProductId, status: ProductStatus, category: Option<&str>| {
            let mut content = product("snap");
            content.status = status;
            content.category = category.map(str::to_owned);
            Snapshot { connection: conn, external_id: ExternalId::new(ext), internal_id: id.0, schema_version: 1, content: RecordContent::Product(content), content_hash: hash(0), platform_updated_at: None, seen_generation: 0 }
        };
        for (conn, ext, id, status, category) in [
            (a, "a1", p1, ProductStatus::Active, Some("Tops")),
            (b, "b1", p1, ProductStatus::Draft, None),
            (a, "a2", p2, ProductStatus::Paused, Some("tops")),
            (b, "b3", p3, ProductStatus::Active, Some("Kitchen")),
            (a, "a6", p6, ProductStatus::Archived, None),
        ] {
            store.bind(&binding(conn, RecordKind::Product, ext, id.0), T0).await.unwrap();
            store.put_snapshot(&snapshot(conn, ext, id, status, category), T0).await.unwrap();
        }
        // Bound on B without a snapshot yet: "on Woo B" but no status or category there.
        store.bind(&binding(b, RecordKind::Product, "b4", p4.0), T0).await.unwrap();

        // Issues: P1 open on A; P3 resolved.
        let issue = |id: ProductId| NewIssue { connection: a, record: Some(RecordRef::Product(id)), external_id: None, severity: Severity::Warning, code: "INVALID".to_owned(), message: "m".to_owned(), field: None, payload: serde_json::Value::Null };
        store.raise_issue(&issue(p1), T0).await.unwrap();
        let resolved = store.raise_issue(&issue(p3), T0).await.unwrap();
        store.resolve_issue(acme, resolved.id, T0).await.unwrap();

        // Pending: P2 update on B, P4 image delete on A, P3 insert on A, P5 insert on B.
        let update = PendingOp::Update { fields: BTreeSet::from([Field::Title]) };
        let delete = PendingOp::ImageDelete { external_id: None, content_hash: hash(1) };
        store.enqueue_pending_change(b, RecordRef::Product(p2), &update, T0).await.unwrap();
        store.enqueue_pending_change(a, RecordRef::Product(p4), &delete, T0).await.unwrap();
        store.enqueue_pending_change(a, RecordRef::Product(p3), &PendingOp::Insert, T0).await.unwrap();
        store.enqueue_pending_change(b, RecordRef::Product(p5), &PendingOp::Insert, T0).await.unwrap();

        let ctx = SetContext::new(T0); // low stock ≤ 5, low price < 1
        let check = |sets: Vec<ProductSet>, expected: Vec<ProductId>| {
            let store = store.clone();
            let ctx = ctx.clone();
            async move {
                let page = store.list_products(acme, &sets, &ctx, None, 100).await.unwrap();
                let got: Vec<ProductId> = page.items.iter().map(|p| p.id).collect();
                assert_eq!(got, expected, "sets {sets:?}");
                assert_eq!(page.next, None);
            }
        };

        check(vec![], vec![p1, p2, p3, p4, p5, p6]).await;
        check(vec![S::OnConnection { connection: on("Shop A") }], vec![p1, p2, p6]).await;
        check(vec![S::OnConnection { connection: on("woo b") }], vec![p1, p3, p4]).await;
        check(vec![S::OfBrand { brand: "ACME".to_owned() }], vec![p1, p2, p6]).await;
        check(vec![S::OfBrand { brand: "zeta".to_owned() }], vec![p4, p5]).await;
        check(vec![S::OfColor { color: "red".to_owned() }], vec![p1, p6]).await;
        check(vec![S::OfColor { color: "Green".to_owned() }], vec![p4]).await;
        check(vec![S::OfSize { size: "m".to_owned() }], vec![p1, p2]).await;
        check(vec![S::OfSize { size: "S".to_owned() }], vec![p1, p6]).await;
        check(vec![S::ActiveOn { connection: on("Shop A") }], vec![p1]).await;
        check(vec![S::PublishedOn { connection: on("Woo B") }], vec![p3]).await;
        check(vec![S::PausedOn { connection: on("Shop A") }], vec![p2]).await;
        check(vec![S::UnpublishedOn { connection: on("Shop A") }], vec![p2, p6]).await;
        check(vec![S::UnpublishedOn { connection: on("Woo B") }], vec![p1]).await;
        check(vec![S::WithIssues], vec![p1]).await;
        check(vec![S::WithoutIssues], vec![p2, p3, p4, p5, p6]).await;
        check(vec![S::LowStock], vec![p1, p6]).await;
        check(vec![S::OutOfStock], vec![p2, p4]).await;
        check(vec![S::WithStock], vec![p1, p6]).await;
        check(vec![S::LowPrice], vec![p2]).await;
        check(vec![S::BadPrice], vec![p3, p4]).await;
        check(vec![S::InCategory { connection: on("Shop A"), category: "TOPS".to_owned() }], vec![p1, p2]).await;
        check(vec![S::InCategory { connection: on("Woo B"), category: "kitchen".to_owned() }], vec![p3]).await;
        check(vec![S::WithoutCategory { connection: on("Shop A") }], vec![p6]).await;
        check(vec![S::WithoutCategory { connection: on("Woo B") }], vec![p1]).await;
        check(vec![S::PendingUpdates { connection: on("Shop A") }], vec![p4]).await;
        check(vec![S::PendingUpdates { connection: on("Woo B") }], vec![p2]).await;
        check(vec![S::PendingCreates { connection: on("Shop A") }], vec![p3]).await;
        check(vec![S::PendingCreates { connection: on("Woo B") }], vec![p5]).await;

        // With / without FIELD.
        let with = |field| S::WithField { field };
        let without = |field| S::WithoutField { field };
        check(vec![with(Field::Sku)], vec![p1, p2, p3, p4, p6]).await;
        check(vec![without(Field::Sku)], vec![p5]).await;
        check(vec![with(Field::Brand)], vec![p1, p2, p4, p5, p6]).await;
        check(vec![without(Field::Brand)], vec![p3]).await;
        check(vec![with(Field::Description)], vec![p1]).await;
        check(vec![with(Field::Vendor)], vec![p3]).await;
        check(vec![with(Field::Category)], vec![p1]).await;
        check(vec![with(Field::Tags)], vec![p1]).await;
        check(vec![with(Field::Attributes)], vec![p4]).await;
        check(vec![with(Field::Barcode)], vec![p3]).await;
        check(vec![with(Field::Weight)], vec![p4, p6]).await;
        check(vec![with(Field::Images)], vec![p1, p5]).await;
        check(vec![without(Field::Images)], vec![p2, p3, p4, p6]).await;
        check(vec![without(Field::Variants)], vec![p5]).await;
        check(vec![with(Field::Price)], vec![p1, p2, p4, p6]).await;
        check(vec![without(Field::Price)], vec![p3, p5]).await;
        check(vec![with(Field::CompareAtPrice)], vec![p1, p4]).await;
        check(vec![without(Field::Stock)], vec![p3, p5]).await;
        check(vec![with(Field::Title)], vec![p1, p2, p3, p4, p5, p6]).await;
        check(vec![with(Field::Status)], vec![p1, p2, p3, p4, p5, p6]).await;
        check(vec![with(Field::OrderStatus)], vec![]).await;

        // Intersections.
        check(vec![S::OfBrand { brand: "acme".to_owned() }, S::LowStock], vec![p1, p6]).await;
        check(vec![S::OfBrand { brand: "acme".to_owned() }, S::OnConnection { connection: on("Woo B") }], vec![p1]).await;
        check(vec![S::OfColor { color: "red".to_owned() }, S::WithoutIssues], vec![p6]).await;
        check(vec![S::OnConnection { connection: on("Shop A") }, S::OnConnection { connection: on("Woo B") }], vec![p1]).await;
        check(vec![S::BadPrice, S::OutOfStock, S::OfBrand { brand: "Zeta".to_owned() }], vec![p4]).await;

        // Unknown connection names are typed errors.
        let err = store.list_products(acme, &[S::OnConnection { connection: on("Amazon") }], &ctx, None, 10).await.unwrap_err();
        assert!(matches!(err, StoreError::UnknownConnection { name } if name == "Amazon"));
        // Another account's connection names do not resolve.
        let err = store.list_products(other, &[S::ActiveOn { connection: on("Shop A") }], &ctx, None, 10).await.unwrap_err();
        assert!(matches!(err, StoreError::UnknownConnection { .. }));

        // Thresholds come from the context.
        let strict = SetContext { low_stock_threshold: 3, low_price_threshold: dec("6"), ..ctx.clone() };
        let low: Vec<_> = store.list_products(acme, &[S::LowStock], &strict, None, 10).await.unwrap().items.into_iter().map(|p| p.id).collect();
        assert_eq!(low, vec![p1]);
        let cheap: Vec<_> = store.list_products(acme, &[S::LowPrice], &strict, None, 10).await.unwrap().items.into_iter().map(|p| p.id).collect();
        assert_eq!(cheap, vec![p2, p6]);

        // Summaries carry what the browser shows.
        let page = store.list_products(acme, &[S::OfBrand { brand: "zeta".to_owned() }], &ctx, None, 1).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!((page.items[0].title.as_str(), page.items[0].brand.as_deref(), page.next), ("Jacket", Some("Zeta"), Some(p4)));
        let rest = store.list_products(acme, &[S::OfBrand { brand: "zeta".to_owned() }], &ctx, page.next, 1).await.unwrap();
        assert_eq!((rest.items.iter().map(|p| p.id).collect::<Vec<_>>(), rest.next), (vec![p5], None));
    }
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("RFC 3339 literal")
}

store_test! {
    async fn order_sets_select_exactly(store) {
        use OrderSet as S;
        let acme = account(&store, "Acme").await;
        let a = connection(&store, acme, "Shop A", PlatformKind::Shopify).await.id;
        let b = connection(&store, acme, "ML B", PlatformKind::Mercadolibre).await.id;
        // Now: Wednesday 2025-06-18 15:00 UTC. Last ISO week: Mon 06-09 .. Sun 06-15.
        let now = at("2025-06-18T15:00:00Z");
        let placed = [
            ("O1", a, "2025-06-18T10:00:00Z"), // today
            ("O2", b, "2025-06-17T23:30:00Z"), // yesterday
            ("O3", b, "2025-06-10T12:00:00Z"), // last week
            ("O4", a, "2025-06-16T08:00:00Z"), // this week's Monday
            ("O5", b, "2024-12-31T23:59:00Z"), // last year
            ("O6", a, "2025-02-03T09:00:00Z"), // this year, February
            ("O7", b, "2025-06-08T23:59:59Z"), // the Sunday before last week
            ("O8", a, "2025-06-15T23:59:59Z"), // the last second of last week
        ];
        let mut ids = Vec::new();
        for (number, origin, when) in placed {
            ids.push(store.create_order(acme, origin, &order(number, at(when)), hash(1), &BTreeMap::new(), now).await.unwrap().id);
        }
        let [o1, o2, o3, o4, o5, o6, o7, o8] = [ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6], ids[7]];
        // O2 was created on A too; pending rows for B and A.
        store.bind(&binding(a, RecordKind::Order, "a-o2", o2.0), now).await.unwrap();
        store.enqueue_pending_change(b, RecordRef::Order(o1), &PendingOp::Update { fields: BTreeSet::from([Field::Shipments]) }, now).await.unwrap();
        store.enqueue_pending_change(a, RecordRef::Order(o3), &PendingOp::Insert, now).await.unwrap();

        let ctx = SetContext::new(now);
        let check = |sets: Vec<OrderSet>, ctx: SetContext, expected: Vec<OrderId>| {
            let store = store.clone();
            async move {
                let page = store.list_orders(acme, &sets, &ctx, None, 100).await.unwrap();
                let got: Vec<OrderId> = page.items.iter().map(|o| o.id).collect();
                assert_eq!(got, expected, "sets {sets:?}");
            }
        };
        check(vec![S::OnConnection { connection: on("Shop A") }], ctx.clone(), vec![o1, o2, o4, o6, o8]).await;
        check(vec![S::OnConnection { connection: on("ML B") }], ctx.clone(), vec![o2, o3, o5, o7]).await;
        check(vec![S::PendingUpdates { connection: on("ML B") }], ctx.clone(), vec![o1]).await;
        check(vec![S::PendingCreates { connection: on("Shop A") }], ctx.clone(), vec![o3]).await;
        check(vec![S::PendingCreates { connection: on("ML B") }], ctx.clone(), vec![]).await;
        check(vec![S::Today], ctx.clone(), vec![o1]).await;
        check(vec![S::Yesterday], ctx.clone(), vec![o2]).await;
        check(vec![S::LastWeek], ctx.clone(), vec![o3, o8]).await;
        check(vec![S::ThisMonth], ctx.clone(), vec![o1, o2, o3, o4, o7, o8]).await;
        check(vec![S::ThisYear], ctx.clone(), vec![o1, o2, o3, o4, o6, o7, o8]).await;
        check(vec![S::OfYear { year: 2024 }], ctx.clone(), vec![o5]).await;
        check(vec![S::OfMonth { year: 2024, month: 12 }], ctx.clone(), vec![o5]).await;
        check(vec![S::OfMonth { year: 2025, month: 2 }], ctx.clone(), vec![o6]).await;
        check(vec![S::OfMonth { year: 2025, month: 13 }], ctx.clone(), vec![]).await;
        // Intersections.
        check(vec![S::ThisMonth, S::OnConnection { connection: on("ML B") }], ctx.clone(), vec![o2, o3, o7]).await;
        check(vec![S::LastWeek, S::PendingCreates { connection: on("Shop A") }], ctx.clone(), vec![o3]).await;

        // Local time: at UTC-03:00 it is 12:00 on the 18th; O2 (20:30 local on the 17th) is
        // yesterday, and O5 (20:59 local on 12-31) is still 2024.
        let west = SetContext { utc_offset_minutes: -180, ..ctx.clone() };
        check(vec![S::Yesterday], west.clone(), vec![o2]).await;
        check(vec![S::Today], west.clone(), vec![o1]).await;
        // At UTC+03:00 it is 18:00 on the 18th; O2 is 02:30 on the 18th (today) and O5 is
        // 02:59 on 2025-01-01; O8 (02:59 Monday the 16th) leaves last week and O7 (02:59
        // Monday the 9th) enters it.
        let east = SetContext { utc_offset_minutes: 180, ..ctx.clone() };
        check(vec![S::Today], east.clone(), vec![o1, o2]).await;
        check(vec![S::OfYear { year: 2024 }], east.clone(), vec![]).await;
        check(vec![S::LastWeek], east, vec![o3, o7]).await;

        assert!(matches!(
            store.list_orders(acme, &[S::OnConnection { connection: on("Nope") }], &ctx, None, 10).await,
            Err(StoreError::UnknownConnection { .. })
        ));
        // Summaries.
        let page = store.list_orders(acme, &[S::Today], &ctx, None, 10).await.unwrap();
        assert_eq!((page.items[0].number.as_str(), page.items[0].total, page.items[0].origin), ("O1", dec("25.00"), a));
    }
}

store_test! {
    /// 10,000 products paged through 250 at a time: each exactly once, with and without a
    /// filter, and no page boundary loses or repeats one.
    async fn pagination_over_ten_thousand_products(store) {
        let acme = account(&store, "Acme").await;
        let mut tx = store.begin().await.unwrap();
        let mut created = Vec::with_capacity(10_000);
        for n in 0..10_000u64 {
            created.push(tx.create_product(acme, &realistic(n), hash(u128::from(n)), &BTreeMap::new(), T0).await.unwrap().id);
        }
        tx.commit().await.unwrap();

        let ctx = SetContext::new(T0);
        let walk = |sets: Vec<ProductSet>| {
            let store = store.clone();
            let ctx = ctx.clone();
            async move {
                let mut seen = Vec::new();
                let mut cursor = None;
                loop {
                    let page = store.list_products(acme, &sets, &ctx, cursor, 250).await.unwrap();
                    assert!(page.items.len() <= 250);
                    seen.extend(page.items.iter().map(|p| p.id));
                    match page.next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                seen
            }
        };
        let all = walk(vec![]).await;
        assert_eq!(all, created, "every product exactly once, in id order");
        let acme_brand = walk(vec![ProductSet::OfBrand { brand: "acme".to_owned() }]).await;
        let expected: Vec<ProductId> = created.iter().enumerate().filter(|(n, _)| n % 3 == 0).map(|(_, id)| *id).collect();
        assert_eq!(acme_brand.len(), 3_334);
        assert_eq!(acme_brand, expected);
        let unique: BTreeSet<_> = acme_brand.iter().collect();
        assert_eq!(unique.len(), acme_brand.len());
    }
}

store_test! {
    async fn deleting_a_product_removes_its_platform_state(store) {
        let acme = account(&store, "Acme").await;
        let other = account(&store, "Other").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let keep = store.create_product(acme, &realistic(1), hash(1), &BTreeMap::new(), T0).await.unwrap();
        let gone = store.create_product(acme, &realistic(2), hash(2), &BTreeMap::new(), T0).await.unwrap();
        for (ext, id) in [("k", keep.id), ("g", gone.id)] {
            store.bind(&binding(shop.id, RecordKind::Product, ext, id.0), T0).await.unwrap();
            store.bind(&Binding { internal_key: "SKU-x".to_owned(), ..binding(shop.id, RecordKind::Variant, &format!("{ext}-v"), id.0) }, T0).await.unwrap();
            store.enqueue_pending_change(shop.id, RecordRef::Product(id), &PendingOp::Insert, T0).await.unwrap();
        }
        let issue = NewIssue { connection: shop.id, record: Some(RecordRef::Product(gone.id)), external_id: None, severity: Severity::Notice, code: "c".to_owned(), message: "m".to_owned(), field: None, payload: serde_json::Value::Null };
        store.raise_issue(&issue, T0).await.unwrap();

        assert!(!store.delete_product(other, gone.id, T0).await.unwrap(), "scoped by account");
        assert!(store.delete_product(acme, gone.id, T0).await.unwrap());
        assert!(!store.delete_product(acme, gone.id, T0).await.unwrap());
        assert_eq!(store.get_product(acme, gone.id).await.unwrap(), None);
        assert!(store.bindings_of_record(acme, RecordKind::Product, gone.id.0).await.unwrap().is_empty());
        assert!(store.bindings_of_record(acme, RecordKind::Variant, gone.id.0).await.unwrap().is_empty());
        assert!(store.pending_changes_of_record(RecordRef::Product(gone.id)).await.unwrap().is_empty());
        assert!(store.open_issue_counts(acme).await.unwrap().is_empty());
        assert_eq!(store.bindings_of_record(acme, RecordKind::Product, keep.id.0).await.unwrap().len(), 1);
        assert_eq!(store.pending_counts(acme, shop.id).await.unwrap().total(), 1);

        assert_eq!(store.list_unbound_products(acme, shop.id, None, 10).await.unwrap(), vec![]);
        let fresh = store.create_product(acme, &realistic(3), hash(3), &BTreeMap::new(), T0).await.unwrap();
        assert_eq!(store.list_unbound_products(acme, shop.id, None, 10).await.unwrap(), vec![fresh.id]);
        assert_eq!(store.list_unbound_products(acme, shop.id, Some(fresh.id), 10).await.unwrap(), vec![]);
        assert!(store.list_unbound_products(other, shop.id, None, 10).await.unwrap().is_empty());

        // Orphans: bindings whose internal record does not exist.
        store.bind(&binding(shop.id, RecordKind::Product, "orphan", 999_999), T0).await.unwrap();
        store.bind(&binding(shop.id, RecordKind::Order, "orphan-order", 999_998), T0).await.unwrap();
        let orphans: Vec<String> = store.list_orphan_bindings(shop.id, 10).await.unwrap().into_iter().map(|b| b.external_id.0).collect();
        assert_eq!(orphans, vec!["orphan", "orphan-order"]);
        store.ping().await.unwrap();
    }
}

/// A row whose JSON cannot be read is reported as corrupt, naming the table and the row.
#[tokio::test]
async fn corrupt_rows_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = tidemark_store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let acme = account(&store, "Acme").await;
    let p = store
        .create_product(acme, &realistic(1), hash(1), &BTreeMap::new(), T0)
        .await
        .unwrap();
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE products SET content = '{not json' WHERE id = $1")
        .bind(p.id.0)
        .execute(&raw)
        .await
        .unwrap();
    match store.get_product(acme, p.id).await {
        Err(StoreError::Corrupt {
            table: "products",
            row,
            detail,
        }) => {
            assert_eq!(row, format!("id {}", p.id));
            assert!(detail.contains("content"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// `sqlite::memory:` works (one connection, so every query sees the same database).
#[tokio::test]
async fn in_memory_sqlite() {
    let store = tidemark_store::Store::connect("sqlite::memory:")
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let acme = account(&store, "Acme").await;
    assert_eq!(
        store.get_account(acme).await.unwrap().map(|a| a.name),
        Some("Acme".to_owned())
    );
    // A plain file URL creates the file.
    let dir = tempfile::tempdir().unwrap();
    let plain = format!("sqlite://{}", dir.path().join("plain.db").display());
    let file_store = tidemark_store::Store::connect(&plain).await.unwrap();
    file_store.migrate().await.unwrap();
    file_store.ping().await.unwrap();
    assert!(matches!(
        tidemark_store::Store::connect("mysql://nope").await,
        Err(StoreError::InvalidUrl { .. })
    ));
}
