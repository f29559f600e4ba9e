//! Scan schedules: set and read per account, rescheduled at run time, listed when due and
//! claimed once across daemons. Each test runs on SQLite and (when
//! TIDEMARK_TEST_DATABASE_URL is set) on PostgreSQL; see `tidemark_testkit::store`.

use crate::fixtures;
use tidemark_testkit::store_test;

use fixtures::*;
use tidemark_core::{PlatformKind, Timestamp};
use tidemark_store::{Schedule, ScheduledScan, StoreError};

const MINUTE: i64 = 60_000;
const CRON: &str = "0 3 * * *";

fn at(offset: i64) -> Timestamp {
    Timestamp(T0.0 + offset)
}

store_test! {
    async fn schedule_round_trip(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        assert_eq!(store.get_schedule(acme, shop.id).await.unwrap(), None);

        let set = store
            .set_schedule(acme, shop.id, Some(15 * MINUTE), Some(CRON), Some(at(60 * MINUTE)), T0)
            .await
            .unwrap();
        let expected = Schedule {
            connection: shop.id,
            fetch_interval_ms: Some(15 * MINUTE),
            full_scan_cron: Some(CRON.to_owned()),
            next_fetch_at: Some(at(15 * MINUTE)),
            next_full_scan_at: Some(at(60 * MINUTE)),
            updated_at: T0,
        };
        assert_eq!(set, expected);
        assert_eq!(store.get_schedule(acme, shop.id).await.unwrap(), Some(expected));

        // No interval and no cron: nothing scheduled (a next full scan without a cron is dropped).
        let cleared = store
            .set_schedule(acme, shop.id, None, None, Some(at(5)), at(1))
            .await
            .unwrap();
        assert_eq!((cleared.next_fetch_at, cleared.next_full_scan_at), (None, None));
        assert_eq!(cleared.full_scan_cron, None);
        assert_eq!(cleared.updated_at, at(1));

        // Deleting the connection deletes its schedule.
        store.delete_connection(acme, shop.id).await.unwrap();
        assert!(store.due_schedules(at(i64::from(u32::MAX)), 10).await.unwrap().is_empty());
    }
}

store_test! {
    async fn schedules_are_scoped_by_account(store) {
        let acme = account(&store, "Acme").await;
        let other = account(&store, "Other").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        store.set_schedule(acme, shop.id, Some(MINUTE), None, None, T0).await.unwrap();

        let read = store.get_schedule(other, shop.id).await;
        assert!(matches!(read, Err(StoreError::NotFound { .. })), "{read:?}");
        let write = store.set_schedule(other, shop.id, Some(5 * MINUTE), None, None, T0).await;
        assert!(matches!(write, Err(StoreError::NotFound { .. })), "{write:?}");
        let unchanged = store.get_schedule(acme, shop.id).await.unwrap().unwrap();
        assert_eq!(unchanged.fetch_interval_ms, Some(MINUTE));
    }
}

store_test! {
    async fn changing_the_interval_reschedules(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        store.set_schedule(acme, shop.id, Some(60 * MINUTE), None, None, T0).await.unwrap();

        // The same interval again keeps the due time.
        let same = store
            .set_schedule(acme, shop.id, Some(60 * MINUTE), None, None, at(MINUTE))
            .await
            .unwrap();
        assert_eq!(same.next_fetch_at, Some(at(60 * MINUTE)));

        // A shorter one is due one new interval from now, not at the old time.
        let shorter = store
            .set_schedule(acme, shop.id, Some(5 * MINUTE), None, None, at(2 * MINUTE))
            .await
            .unwrap();
        assert_eq!(shorter.next_fetch_at, Some(at(7 * MINUTE)));
        let due = store.due_schedules(at(7 * MINUTE), 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1, ScheduledScan::Fetch);

        // A claim made from the old listing loses against the reschedule.
        store.set_schedule(acme, shop.id, Some(10 * MINUTE), None, None, at(7 * MINUTE)).await.unwrap();
        assert!(!store
            .claim_scheduled_scan(shop.id, ScheduledScan::Fetch, at(7 * MINUTE), at(12 * MINUTE), at(8 * MINUTE))
            .await
            .unwrap());

        // No interval: no periodic fetch.
        let off = store.set_schedule(acme, shop.id, None, None, None, at(8 * MINUTE)).await.unwrap();
        assert_eq!(off.next_fetch_at, None);
        assert!(store.due_schedules(at(1000 * MINUTE), 10).await.unwrap().is_empty());
    }
}

store_test! {
    async fn due_schedules_skip_paused_and_not_yet_due(store) {
        let acme = account(&store, "Acme").await;
        let early = connection(&store, acme, "Early", PlatformKind::Shopify).await;
        let later = connection(&store, acme, "Later", PlatformKind::Woocommerce).await;
        let paused = connection(&store, acme, "Paused", PlatformKind::Shopify).await;
        let future = connection(&store, acme, "Future", PlatformKind::Shopify).await;
        store.set_schedule(acme, early.id, Some(MINUTE), Some(CRON), Some(at(3 * MINUTE)), T0).await.unwrap();
        store.set_schedule(acme, later.id, Some(2 * MINUTE), None, None, T0).await.unwrap();
        store.set_schedule(acme, paused.id, Some(MINUTE), None, None, T0).await.unwrap();
        store.set_schedule(acme, future.id, Some(60 * MINUTE), None, None, T0).await.unwrap();
        assert!(store.set_connection_paused(acme, paused.id, true, T0).await.unwrap());

        let due = |now| {
            let store = store.clone();
            async move {
                store
                    .due_schedules(now, 10)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(s, scan)| (s.connection, scan))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(due(at(MINUTE - 1)).await, vec![]);
        assert_eq!(due(at(MINUTE)).await, vec![(early.id, ScheduledScan::Fetch)]);
        // Oldest due first; a schedule with both scans due is listed once for each.
        assert_eq!(
            due(at(3 * MINUTE)).await,
            vec![
                (early.id, ScheduledScan::Fetch),
                (later.id, ScheduledScan::Fetch),
                (early.id, ScheduledScan::FullScan),
            ]
        );
        let limited = store.due_schedules(at(3 * MINUTE), 1).await.unwrap();
        assert_eq!(limited.len(), 1);

        // Resumed, the paused connection's scan is due again.
        assert!(store.set_connection_paused(acme, paused.id, false, T0).await.unwrap());
        assert!(due(at(MINUTE)).await.contains(&(paused.id, ScheduledScan::Fetch)));
    }
}

store_test! {
    async fn concurrent_claims_fire_once(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        store.set_schedule(acme, shop.id, Some(MINUTE), Some(CRON), Some(at(MINUTE)), T0).await.unwrap();
        let now = at(MINUTE);

        for scan in [ScheduledScan::Fetch, ScheduledScan::FullScan] {
            let (a, b) = (store.clone(), store.clone());
            let (first, second) = tokio::join!(
                a.claim_scheduled_scan(shop.id, scan, at(MINUTE), at(2 * MINUTE), now),
                b.claim_scheduled_scan(shop.id, scan, at(MINUTE), at(2 * MINUTE), now),
            );
            assert!(first.unwrap() ^ second.unwrap(), "{scan:?}: exactly one claim wins");
        }
        let after = store.get_schedule(acme, shop.id).await.unwrap().unwrap();
        assert_eq!(after.next_fetch_at, Some(at(2 * MINUTE)));
        assert_eq!(after.next_full_scan_at, Some(at(2 * MINUTE)));
        assert!(store.due_schedules(now, 10).await.unwrap().is_empty());

        // A scan not yet due cannot be claimed.
        assert!(!store
            .claim_scheduled_scan(shop.id, ScheduledScan::Fetch, at(2 * MINUTE), at(3 * MINUTE), now)
            .await
            .unwrap());
    }
}

store_test! {
    async fn invalid_schedule_is_refused_and_changes_nothing(store) {
        let acme = account(&store, "Acme").await;
        let shop = connection(&store, acme, "Shop", PlatformKind::Shopify).await;
        let before = store.set_schedule(acme, shop.id, Some(MINUTE), Some(CRON), Some(at(MINUTE)), T0).await.unwrap();

        for interval in [0, -MINUTE] {
            let refused = store
                .set_schedule(acme, shop.id, Some(interval), None, None, at(1))
                .await;
            match refused {
                Err(StoreError::Invalid { operation, detail }) => {
                    assert_eq!(operation, "set_schedule");
                    assert!(detail.contains("fetch interval"), "{detail}");
                }
                other => panic!("interval {interval} accepted: {other:?}"),
            }
        }
        let blank_cron = store.set_schedule(acme, shop.id, Some(MINUTE), Some("  "), None, at(1)).await;
        assert!(matches!(blank_cron, Err(StoreError::Invalid { .. })), "{blank_cron:?}");
        assert_eq!(store.get_schedule(acme, shop.id).await.unwrap(), Some(before));
    }
}
