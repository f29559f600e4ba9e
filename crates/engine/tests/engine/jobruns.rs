//! A run supervised through its `job_runs` row (engine issue, "progress and counts written to
//! the job-run row as the work goes"): each page's counts, progress and checkpoint are in the
//! row when the next page starts, and the row decides when the run stops — cancelled, taken
//! over, or its connection paused — with the checkpoint of the last page it applied.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use crate::common::{self, World, now};
use async_trait::async_trait;
use tidemark_core::{ConnectionId, ConnectionSettings, JobRunId, PlatformKind};
use tidemark_engine::{
    Counts, EngineError, FetchCheckpoint, FetchRequest, FetchScope, JobRunControl, RunControl,
    StopReason, SystemClock,
};
use tidemark_sim::woocommerce::WooSim;
use tidemark_store::{JobKind, JobRun, JobState, NewJobRun, Store};
use tidemark_testkit::store_test;

const PRODUCTS: u64 = 230;
const PER_PAGE: u32 = 50;

struct Setup {
    world: World,
    woo: ConnectionId,
    _sim: WooSim,
    run: tidemark_sim::RunningSim,
}

async fn setup(store: Store) -> Setup {
    let (sim, run) = common::woo_shop(PRODUCTS).await;
    let connector = common::woo_connector(&run.base_url, |s| s.per_page = PER_PAGE);
    let mut world = World::new(store).await;
    let woo = world
        .connect(
            "Woo",
            PlatformKind::Woocommerce,
            ConnectionSettings::default(),
            connector,
        )
        .await;
    Setup {
        world,
        woo,
        _sim: sim,
        run,
    }
}

async fn started_run(store: &Store, connection: ConnectionId, kind: JobKind) -> JobRun {
    let run = store
        .create_job_run(
            store
                .load_connection(connection)
                .await
                .unwrap()
                .unwrap()
                .account,
            &NewJobRun {
                connection,
                kind,
                scope: serde_json::json!("full"),
                trigger: "user".into(),
                max_attempts: 3,
            },
            now(),
        )
        .await
        .unwrap();
    store
        .start_job_run(run.id, "worker-1", now())
        .await
        .unwrap()
        .expect("the queued run starts")
}

/// What a test does to the run's row after a checkpoint.
#[derive(Clone, Copy)]
enum After {
    Nothing,
    Pause(usize),
    Cancel(usize),
    TakeOver(usize),
}

/// The run's control, observed: after each checkpoint the test reads the row back (what a
/// progress bar would show at that moment) and may act on it.
struct Observed {
    inner: JobRunControl,
    store: Store,
    run: JobRunId,
    connection: ConnectionId,
    after: After,
    rows: Mutex<Vec<JobRun>>,
}

impl Observed {
    fn new(store: &Store, run: &JobRun, after: After) -> Self {
        Self {
            inner: JobRunControl::new(
                store.clone(),
                run.id,
                run.connection,
                "worker-1",
                Arc::new(SystemClock),
            ),
            store: store.clone(),
            run: run.id,
            connection: run.connection,
            after,
            rows: Mutex::new(Vec::new()),
        }
    }

    fn rows(&self) -> Vec<JobRun> {
        self.rows.lock().unwrap().clone()
    }
}

#[async_trait]
impl RunControl for Observed {
    async fn checkpoint(
        &self,
        counts: &Counts,
        checkpoint: &serde_json::Value,
    ) -> Result<(), StopReason> {
        let answer = self.inner.checkpoint(counts, checkpoint).await;
        let row = self.store.get_job_run(self.run).await.unwrap().unwrap();
        let n = {
            let mut rows = self.rows.lock().unwrap();
            rows.push(row);
            rows.len()
        };
        let account = self
            .store
            .load_connection(self.connection)
            .await
            .unwrap()
            .unwrap()
            .account;
        match self.after {
            After::Pause(at) if at == n => {
                assert!(
                    self.store
                        .set_connection_paused(account, self.connection, true, now())
                        .await
                        .unwrap()
                );
            }
            After::Cancel(at) if at == n => {
                assert!(
                    self.store
                        .cancel_job_run(account, self.run, now())
                        .await
                        .unwrap()
                );
            }
            After::TakeOver(at) if at == n => {
                // The heartbeat went stale: the reconciler requeued the run and another
                // worker started it.
                let later = tidemark_core::Timestamp(now().0 + 3_600_000);
                let stale = self
                    .store
                    .requeue_stale_job_runs(later, later)
                    .await
                    .unwrap();
                assert_eq!(stale.requeued, vec![self.run]);
                assert!(
                    self.store
                        .start_job_run(self.run, "worker-2", later)
                        .await
                        .unwrap()
                        .is_some()
                );
            }
            _ => {}
        }
        answer
    }
}

fn counts_of(row: &JobRun) -> Counts {
    serde_json::from_value(row.counts.clone()).unwrap()
}

fn checkpoint_of(row: &JobRun) -> FetchCheckpoint {
    serde_json::from_value(row.checkpoint.clone().expect("a checkpoint")).unwrap()
}

store_test! {
    async fn a_fetch_writes_counts_progress_and_checkpoint_to_its_run_page_by_page(store) {
        let s = setup(store.clone()).await;
        let engine = s.world.engine();
        let run = started_run(&store, s.woo, JobKind::Fetch).await;
        let control = Observed::new(&store, &run, After::Nothing);
        let report = engine
            .fetch(s.woo, &FetchRequest::new(FetchScope::Full), None, &control)
            .await
            .unwrap();
        assert_eq!(report.counts.new, PRODUCTS, "{:?}", report.counts);

        let rows = control.rows();
        // A checkpoint per product page (and the orders' scan): the row grew as pages landed.
        let pages = PRODUCTS.div_ceil(u64::from(PER_PAGE)) as usize;
        assert!(rows.len() >= pages, "{} checkpoints", rows.len());
        let scanned: Vec<u64> = rows.iter().map(|r| counts_of(r).scanned).collect();
        assert!(scanned.windows(2).all(|w| w[0] <= w[1]), "{scanned:?}");
        assert_eq!(scanned[0], u64::from(PER_PAGE), "{scanned:?}");
        assert!(scanned[1] > scanned[0] && scanned[2] > scanned[1], "{scanned:?}");
        for row in &rows {
            let counts = counts_of(row);
            assert_eq!(row.progress["scanned"], counts.scanned);
            assert_eq!(counts.new, counts.scanned, "every record is new: {counts:?}");
            assert_eq!(checkpoint_of(row).counts, counts);
            assert!(row.heartbeat_at.is_some());
        }
        let last = rows.last().unwrap();
        assert_eq!(counts_of(last), report.counts);
        assert!(checkpoint_of(last).kinds.values().all(|k| k.done));
        s.run.stop().await;
    }
}

store_test! {
    async fn pausing_the_connection_stops_its_fetch_at_the_next_page_and_a_resumed_run_finishes(store) {
        let s = setup(store.clone()).await;
        let engine = s.world.engine();
        let run = started_run(&store, s.woo, JobKind::Fetch).await;
        let control = Observed::new(&store, &run, After::Pause(2));
        let err = engine
            .fetch(s.woo, &FetchRequest::new(FetchScope::Full), None, &control)
            .await
            .unwrap_err();
        assert!(
            matches!(err, EngineError::Stopped(StopReason::Paused)),
            "{err:?}"
        );
        // Stopped at the third page's checkpoint, with that page applied and saved.
        let rows = control.rows();
        assert_eq!(rows.len(), 3);
        let row = store.get_job_run(run.id).await.unwrap().unwrap();
        let saved = checkpoint_of(&row);
        assert_eq!(saved, checkpoint_of(&rows[2]));
        assert!(saved.counts.scanned > counts_of(&rows[1]).scanned, "{:?}", saved.counts);
        assert!(saved.counts.scanned < PRODUCTS, "{:?}", saved.counts);
        assert_eq!(counts_of(&row), saved.counts);

        // Resumed after the merchant plays the connection again: the rest, nothing twice.
        let account = s.world.account;
        store.set_connection_paused(account, s.woo, false, now()).await.unwrap();
        let control = Observed::new(&store, &row, After::Nothing);
        let report = engine
            .fetch(s.woo, &FetchRequest::new(FetchScope::Full), Some(saved), &control)
            .await
            .unwrap();
        assert_eq!(report.counts.new, PRODUCTS, "{:?}", report.counts);
        assert_eq!(report.counts.scanned, PRODUCTS, "{:?}", report.counts);
        s.run.stop().await;
    }
}

store_test! {
    async fn a_cancelled_or_taken_over_run_stops_at_its_next_checkpoint(store) {
        let s = setup(store.clone()).await;
        let engine = s.world.engine();
        let run = started_run(&store, s.woo, JobKind::Fetch).await;
        let control = Observed::new(&store, &run, After::Cancel(1));
        let err = engine
            .fetch(s.woo, &FetchRequest::new(FetchScope::Full), None, &control)
            .await
            .unwrap_err();
        assert!(
            matches!(err, EngineError::Stopped(StopReason::Cancelled)),
            "{err:?}"
        );
        let row = store.get_job_run(run.id).await.unwrap().unwrap();
        assert_eq!(row.state, JobState::Cancelled);
        // The cancelled run's row keeps what the first page recorded: the second page's
        // checkpoint was refused.
        assert_eq!(counts_of(&row).scanned, u64::from(PER_PAGE));

        let run = started_run(&store, s.woo, JobKind::Fetch).await;
        let control = Observed::new(&store, &run, After::TakeOver(1));
        let err = engine
            .fetch(s.woo, &FetchRequest::new(FetchScope::Full), None, &control)
            .await
            .unwrap_err();
        assert!(
            matches!(err, EngineError::Stopped(StopReason::LeaseLost)),
            "{err:?}"
        );
        let row = store.get_job_run(run.id).await.unwrap().unwrap();
        assert_eq!(row.lease_owner.as_deref(), Some("worker-2"));
        s.run.stop().await;
    }
}

store_test! {
    async fn a_sync_run_counts_what_both_parts_did_and_keeps_the_fetch_checkpoint(store) {
        let mut s = setup(store.clone()).await;
        // An empty second shop that clones new products: the sync of it fetches nothing new
        // and sends every product the first shop's fetch queued for it.
        let (target, target_run) = common::woo_shop(0).await;
        let connector = common::woo_connector(&target_run.base_url, |_| {});
        let copy = s
            .world
            .connect(
                "Woo copy",
                PlatformKind::Woocommerce,
                ConnectionSettings {
                    clone_new_products: true,
                    ..ConnectionSettings::default()
                },
                connector,
            )
            .await;
        let engine = s.world.engine();
        engine
            .fetch(
                s.woo,
                &FetchRequest::new(FetchScope::Full),
                None,
                &tidemark_engine::Unsupervised,
            )
            .await
            .unwrap();

        let run = started_run(&store, copy, JobKind::Sync).await;
        let control = Observed::new(&store, &run, After::Nothing);
        let report = engine
            .sync(copy, &FetchRequest::new(FetchScope::Full), None, &control)
            .await
            .unwrap();
        assert_eq!(report.send.counts.inserted, PRODUCTS, "{:?}", report.send);
        let rows = control.rows();
        let inserted: Vec<u64> = rows.iter().map(|r| counts_of(r).inserted).collect();
        assert!(inserted.windows(2).all(|w| w[0] <= w[1]), "{inserted:?}");
        let last = rows.last().unwrap();
        assert_eq!(counts_of(last), report.counts());
        assert_eq!(last.progress["sent"], PRODUCTS);
        // Whatever part reported last, the row's checkpoint is the fetch's, whole.
        for row in rows.iter().filter(|r| r.checkpoint.is_some()) {
            assert!(!checkpoint_of(row).kinds.is_empty());
        }
        assert!(checkpoint_of(last).kinds.values().all(|k| k.done));
        assert_eq!(target.product_count() as u64, PRODUCTS);
        target_run.stop().await;
        s.run.stop().await;
    }
}
