//! Regression tests for the store review findings; every test runs on SQLite and (when
//! TIDEMARK_TEST_DATABASE_URL is set) on PostgreSQL; see `tidemark_testkit::store`.

// A failing test panics; its helpers may too.

use crate::fixtures;
use tidemark_testkit::store_test;

use std::collections::BTreeMap;

use fixtures::*;
use tidemark_core::{
    Binding, ConnectionId, ExternalId, Field, PendingOp, PlatformKind, ProductId, RecordContent,
    RecordKind, RecordRef, ScanKind, Snapshot, Timestamp,
};
use tidemark_store::{ConflictKind, InsertCompletion, StoreError};

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

fn all_product_fields() -> tidemark_core::FieldSet {
    Field::PRODUCT_FIELDS.iter().copied().collect()
}

store_test! {
    async fn an_insert_completed_during_a_merge_becomes_an_update(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let p1 = RecordRef::Product(ProductId(1));
        let p2 = RecordRef::Product(ProductId(2));

        // Plain path: nothing merged, the insert row goes.
        let row = store.enqueue_pending_change(shop.id, p2, &PendingOp::Insert, at(0)).await.unwrap();
        store.bind(&binding(shop.id, RecordKind::Product, "ext-2", 2), at(1)).await.unwrap();
        assert_eq!(store.complete_pending_insert(row.change.id, row.revision, at(1)).await.unwrap(), InsertCompletion::Removed);
        assert!(store.pending_changes_of_record(p2).await.unwrap().is_empty());

        // The send reads the insert and creates the record; meanwhile a plan merges into it.
        let read = store.enqueue_pending_change(shop.id, p1, &PendingOp::Insert, at(0)).await.unwrap();
        let update = PendingOp::Update { fields: [Field::Price].into_iter().collect() };
        store.enqueue_pending_change(shop.id, p1, &update, at(2)).await.unwrap();
        // The create is acknowledged: bind, then complete, in one transaction.
        let mut tx = store.begin().await.unwrap();
        tx.bind(&binding(shop.id, RecordKind::Product, "ext-1", 1), at(3)).await.unwrap();
        let done = tx.complete_pending_insert(read.change.id, read.revision, at(3)).await.unwrap();
        tx.commit().await.unwrap();
        let InsertCompletion::ConvertedToUpdate(row) = done else { panic!("expected a conversion, got {done:?}") };
        assert_eq!(row.change.op, PendingOp::Update { fields: all_product_fields() });
        let queued = store.pending_changes_of_record(p1).await.unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].change.op, PendingOp::Update { fields: all_product_fields() });
        assert_eq!(store.pending_counts(acme, shop.id).await.unwrap().inserts, 0);
        // Completing it again (a repeated message) leaves the update alone.
        assert!(matches!(
            store.complete_pending_insert(read.change.id, read.revision, at(4)).await.unwrap(),
            InsertCompletion::Kept(_)
        ));
    }
}

store_test! {
    async fn an_insert_for_a_bound_record_is_queued_as_an_update(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let p1 = RecordRef::Product(ProductId(1));
        store.bind(&binding(shop.id, RecordKind::Product, "ext-1", 1), at(0)).await.unwrap();
        // A plan made from a stale snapshot asks for an insert of a record already created.
        let row = store.enqueue_pending_change(shop.id, p1, &PendingOp::Insert, at(1)).await.unwrap();
        assert_eq!(row.change.op, PendingOp::Update { fields: all_product_fields() });

        // An insert row left behind for a record that is now bound merges as an update.
        let p2 = RecordRef::Product(ProductId(2));
        store.enqueue_pending_change(shop.id, p2, &PendingOp::Insert, at(1)).await.unwrap();
        store.bind(&binding(shop.id, RecordKind::Product, "ext-2", 2), at(2)).await.unwrap();
        let update = PendingOp::Update { fields: [Field::Title].into_iter().collect() };
        let merged = store.enqueue_pending_change(shop.id, p2, &update, at(3)).await.unwrap();
        assert_eq!(merged.change.op, PendingOp::Update { fields: all_product_fields() });
        // Unbound records still get inserts.
        let p3 = RecordRef::Product(ProductId(3));
        let row = store.enqueue_pending_change(shop.id, p3, &PendingOp::Insert, at(1)).await.unwrap();
        assert_eq!(row.change.op, PendingOp::Insert);
    }
}

store_test! {
    async fn stale_updates_are_refused(store) {
        let acme = account(&store, "Acme").await;
        let ml = connection(&store, acme, "ML", PlatformKind::Mercadolibre).await;
        let created = store.create_product(acme, &realistic(1), hash(1), &BTreeMap::new(), at(0)).await.unwrap();
        assert_eq!(created.revision, 1);
        // Two fetches read the same version on different connections.
        let mut first = store.get_product(acme, created.id).await.unwrap().unwrap();
        let mut second = store.get_product(acme, created.id).await.unwrap().unwrap();
        first.content.variants[0].stock = Some(4);
        second.content.variants[0].stock = Some(9);
        let new_revision = store.update_product(&first, hash(2), first.revision).await.unwrap();
        assert_eq!(new_revision, 2);
        // The second writer is refused and nothing of it is written, also inside a transaction,
        // which stays usable.
        let mut tx = store.begin().await.unwrap();
        let err = tx.update_product(&second, hash(3), second.revision).await.unwrap_err();
        assert!(err.is_stale(), "{err}");
        assert!(matches!(
            &err,
            StoreError::Conflict { kind: ConflictKind::StaleRecord { expected_revision: 1, current_revision: 2, .. }, .. }
        ));
        let reread = tx.get_product(acme, created.id).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        assert_eq!(reread.content.variants[0].stock, Some(4));
        assert_eq!(store.product_content_hash(acme, created.id).await.unwrap(), Some(hash(2)));
        // Re-read and re-apply succeeds.
        let mut retry = store.get_product(acme, created.id).await.unwrap().unwrap();
        retry.content.variants[0].stock = Some(7);
        assert_eq!(store.update_product(&retry, hash(4), retry.revision).await.unwrap(), 3);

        // Orders likewise.
        let order_row = store.create_order(acme, ml.id, &order("1001", at(0)), hash(5), &BTreeMap::new(), at(0)).await.unwrap();
        let mut a = order_row.clone();
        let mut b = order_row.clone();
        a.content.status = tidemark_core::OrderStatus::Completed;
        b.content.status = tidemark_core::OrderStatus::Cancelled;
        assert_eq!(store.update_order(&a, hash(6), a.revision).await.unwrap(), 2);
        assert!(store.update_order(&b, hash(7), b.revision).await.unwrap_err().is_stale());
        let stored = store.get_order(acme, order_row.id).await.unwrap().unwrap();
        assert_eq!((stored.content.status, stored.revision), (tidemark_core::OrderStatus::Completed, 2));
        // A missing record is NotFound, not stale.
        let mut missing = stored.clone();
        missing.id = tidemark_core::OrderId(999_999);
        assert!(matches!(store.update_order(&missing, hash(8), 1).await, Err(StoreError::NotFound { .. })));
    }
}

store_test! {
    async fn coincidences_match_by_sku_key_and_barcode_key(store) {
        use tidemark_core::{Barcode, Sku};
        let acme = account(&store, "Acme").await;
        let mut shirt = product("Shirt");
        shirt.sku = Some(Sku("AB-1".to_owned()));
        shirt.variants = vec![variant("AB-1 Red"), variant("ab-1-blue")];
        let shirt = store.create_product(acme, &shirt, hash(1), &BTreeMap::new(), at(0)).await.unwrap();
        let mut mug = product("Mug");
        mug.barcode = Some(Barcode("7501234567890".to_owned()));
        let mug = store.create_product(acme, &mug, hash(2), &BTreeMap::new(), at(0)).await.unwrap();
        let sku = |s: &str| Sku(s.to_owned());

        for probe in ["ab-1", "AB-1", " Ab - 1 ", "ab-1red", "AB-1\tRED", "AB-1-BLUE"] {
            assert_eq!(
                store.match_candidates(acme, &[sku(probe)], &[]).await.unwrap(),
                vec![shirt.id],
                "{probe:?} matches by SKU key"
            );
        }
        assert!(store.match_candidates(acme, &[sku("ab-2")], &[]).await.unwrap().is_empty());
        assert!(store.match_candidates(acme, &[sku("  ")], &[]).await.unwrap().is_empty());
        // Barcodes by their normalised key (spaces, hyphens, a spreadsheet's leading quote).
        for probe in ["7501234567890", "750 1234 567890", "'7501234567890", "750-1234567890"] {
            assert_eq!(
                store.match_candidates(acme, &[], &[Barcode(probe.to_owned())]).await.unwrap(),
                vec![mug.id],
                "{probe:?} matches by barcode key"
            );
        }
        // Keys follow updates.
        let mut renamed = store.get_product(acme, shirt.id).await.unwrap().unwrap();
        renamed.content.sku = Some(sku("XY-9"));
        renamed.content.variants.clear();
        store.update_product(&renamed, hash(3), renamed.revision).await.unwrap();
        assert!(store.match_candidates(acme, &[sku("ab-1")], &[]).await.unwrap().is_empty());
        assert_eq!(store.match_candidates(acme, &[sku("xy -9")], &[]).await.unwrap(), vec![shirt.id]);
    }
}

store_test! {
    async fn a_transaction_continues_after_a_unique_conflict(store) {
        let acme = account(&store, "Acme").await;
        let ml = connection(&store, acme, "ML", PlatformKind::Mercadolibre).await;
        let woo = connection(&store, acme, "Woo", PlatformKind::Woocommerce).await;
        store.create_order(acme, ml.id, &order("1001", at(0)), hash(1), &BTreeMap::new(), at(0)).await.unwrap();

        let mut tx = store.begin().await.unwrap();
        // A known order number.
        let err = tx.create_order(acme, ml.id, &order("1001", at(0)), hash(1), &BTreeMap::new(), at(1)).await.unwrap_err();
        assert!(err.is_conflict(), "{err}");
        // A taken connection name, on create and on rename.
        let dup = tidemark_store::NewConnection {
            account: acme,
            platform: PlatformKind::Csv,
            name: "ML".to_owned(),
            settings: Default::default(),
            platform_settings: serde_json::Value::Null,
            credentials: None,
        };
        assert!(tx.create_connection(&dup, at(1)).await.unwrap_err().is_conflict());
        let rename = tidemark_store::ConnectionPatch { name: Some("ML".to_owned()), ..Default::default() };
        assert!(tx.update_connection(acme, woo.id, &rename, at(1)).await.unwrap_err().is_conflict());
        // A variant SKU repeated inside one product.
        let mut bad = product("Broken");
        bad.variants = vec![variant("A"), variant("A")];
        assert!(tx.create_product(acme, &bad, hash(2), &BTreeMap::new(), at(1)).await.unwrap_err().is_conflict());
        // The transaction is still usable: later writes succeed and commit.
        let second = tx.create_order(acme, ml.id, &order("1002", at(1)), hash(3), &BTreeMap::new(), at(1)).await.unwrap();
        let token = tx.create_api_token(acme, "cli", at(1)).await.unwrap();
        tx.commit().await.unwrap();
        assert!(store.get_order(acme, second.id).await.unwrap().is_some());
        assert_eq!(store.list_api_tokens(acme).await.unwrap().iter().map(|t| t.id).collect::<Vec<_>>(), vec![token.token.id]);
        assert_eq!(store.get_connection(acme, woo.id).await.unwrap().unwrap().name, "Woo");
    }
}

store_test! {
    async fn job_runs_honour_backoff_and_attempt_limits(store) {
        use tidemark_store::{JobKind, JobState, NewJobRun};
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let new = NewJobRun { connection: shop.id, kind: JobKind::Fetch, scope: serde_json::json!({}), trigger: "user".to_owned(), max_attempts: 2 };
        let run = store.create_job_run(acme, &new, Timestamp(10)).await.unwrap();
        store.start_job_run(run.id, "w1", Timestamp(11)).await.unwrap().unwrap();
        assert_eq!(store.retry_job_run(run.id, "w1", Timestamp(100), "HTTP 503", Timestamp(12)).await.unwrap(), Some(JobState::Queued));
        // A repeated queue message before the backoff ends does not start it.
        assert!(store.start_job_run(run.id, "w2", Timestamp(50)).await.unwrap().is_none());
        let waiting = store.get_job_run(run.id).await.unwrap().unwrap();
        assert_eq!((waiting.state, waiting.attempts), (JobState::Queued, 1));
        assert!(store.start_job_run(run.id, "w2", Timestamp(100)).await.unwrap().is_some());

        // The second (last) attempt crashes its worker: it fails instead of looping forever.
        let stale = store.requeue_stale_job_runs(Timestamp(200), Timestamp(300)).await.unwrap();
        assert_eq!((stale.requeued, stale.failed), (vec![], vec![run.id]));
        let failed = store.get_job_run(run.id).await.unwrap().unwrap();
        assert_eq!((failed.state, failed.finished_at, failed.lease_owner.clone()), (JobState::Failed, Some(Timestamp(300)), None));
        assert!(failed.error.unwrap().contains("heartbeat"));
        assert!(store.start_job_run(run.id, "w3", Timestamp(400)).await.unwrap().is_none());

        // One with attempts left is requeued, due now.
        let other = store.create_job_run(acme, &NewJobRun { kind: JobKind::Send, ..new.clone() }, Timestamp(10)).await.unwrap();
        store.start_job_run(other.id, "w1", Timestamp(11)).await.unwrap().unwrap();
        let stale = store.requeue_stale_job_runs(Timestamp(200), Timestamp(300)).await.unwrap();
        assert_eq!((stale.requeued, stale.failed), (vec![other.id], vec![]));
        let queued = store.get_job_run(other.id).await.unwrap().unwrap();
        assert_eq!((queued.state, queued.next_attempt_at), (JobState::Queued, Timestamp(300)));
    }
}

store_test! {
    async fn user_reachable_calls_are_scoped_by_account(store) {
        use tidemark_store::{JobKind, JobState, NewJobRun};
        let acme = account(&store, "Acme").await;
        let other = account(&store, "Other").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let new = NewJobRun { connection: shop.id, kind: JobKind::Fetch, scope: serde_json::json!({}), trigger: "user".to_owned(), max_attempts: 1 };
        let run = store.create_job_run(acme, &new, at(0)).await.unwrap();
        store.bind(&binding(shop.id, RecordKind::Product, "ext-1", 1), at(0)).await.unwrap();
        store.enqueue_pending_change(shop.id, RecordRef::Product(ProductId(1)), &PendingOp::Insert, at(0)).await.unwrap();
        store.set_clock(shop.id, ScanKind::Products, at(5)).await.unwrap();

        let not_found = |r: Result<_, StoreError>| matches!(r, Err(StoreError::NotFound { .. }));
        // Another account sees nothing and changes nothing.
        assert!(not_found(store.create_job_run(other, &new, at(1)).await.map(drop)));
        assert!(!store.cancel_job_run(other, run.id, at(1)).await.unwrap());
        assert_eq!(store.get_job_run(run.id).await.unwrap().unwrap().state, JobState::Queued);
        assert!(not_found(store.reset_clocks(other, shop.id, &[ScanKind::Products]).await));
        assert_eq!(store.get_clocks(shop.id).await.unwrap().len(), 1);
        assert!(not_found(store.pending_counts(other, shop.id).await.map(drop)));
        assert!(not_found(store.list_bindings(other, shop.id, RecordKind::Product, None, 10).await.map(drop)));
        assert!(store.bindings_of_record(other, RecordKind::Product, 1).await.unwrap().is_empty());

        // The owner does.
        assert_eq!(store.pending_counts(acme, shop.id).await.unwrap().total(), 1);
        assert_eq!(store.list_bindings(acme, shop.id, RecordKind::Product, None, 10).await.unwrap().len(), 1);
        assert_eq!(store.bindings_of_record(acme, RecordKind::Product, 1).await.unwrap().len(), 1);
        store.reset_clocks(acme, shop.id, &[ScanKind::Products]).await.unwrap();
        assert!(store.get_clocks(shop.id).await.unwrap().is_empty());
        assert!(store.cancel_job_run(acme, run.id, at(2)).await.unwrap());
    }
}

store_test! {
    async fn debug_output_holds_no_secrets(store) {
        let acme = account(&store, "Acme").await;
        let issued = store.create_api_token(acme, "cli", at(0)).await.unwrap();
        let shown = format!("{issued:?}");
        assert!(!shown.contains(&issued.plaintext), "{shown}");
        assert!(!shown.contains(&issued.plaintext[4..20]), "{shown}");
        assert!(shown.contains("redacted"));
        let new = tidemark_store::NewConnection {
            account: acme,
            platform: PlatformKind::Shopify,
            name: "Shop".to_owned(),
            settings: Default::default(),
            platform_settings: serde_json::Value::Null,
            credentials: Some(vec![0xde, 0xad, 0xbe, 0xef]),
        };
        let shown = format!("{new:?}");
        assert!(!shown.contains("222") && !shown.contains("173") && !shown.contains("deadbeef"), "{shown}");
        assert!(shown.contains("4 bytes redacted"), "{shown}");
    }
}
