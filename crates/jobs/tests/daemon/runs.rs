//! Runs through the queue: the worker's path, auto-send, deduplication, pause and resume,
//! cancellation, leases across two daemons, cooldowns.

use std::time::Duration;

use tidemark_core::{ExternalId, JobRunId, ScanKind};
use tidemark_engine::{FetchRequest, FetchScope};
use tidemark_jobs::{Daemon, JobsError, Outcome, Resync, ResyncWindow, Roles, Runner, RunnerStats};
use tidemark_store::{JobKind, JobRunFilter, JobState, NewJobRun};

use crate::backend_test;
use crate::common::*;

fn full() -> FetchRequest {
    FetchRequest::new(FetchScope::Full)
}

backend_test! {
    async fn a_fetch_runs_through_the_queue_and_the_target_is_sent_to_by_itself(backend) {
        let shops = Shops::new(&backend.store, 30, 10).await;
        let jobs = shops.jobs(&backend, backend.config()).await;
        let daemon = Daemon::start(jobs.clone(), shops.engine(), Roles::ALL).await.unwrap();

        let fetch = jobs.fetch(shops.account, shops.source, &full(), "user").await.unwrap();
        assert!(fetch.created);
        let done = finished(&jobs, shops.account, &fetch.run, Duration::from_secs(60)).await;
        assert_succeeded(&done);
        assert_eq!((done.attempts, done.progress["scanned"].as_u64()), (1, Some(30)));
        assert_eq!(done.counts["new"].as_u64(), Some(30), "{}", done.counts);

        // The fetch left inserts for the target, which sends by itself (auto-send).
        eventually("the target holds every product", Duration::from_secs(60), || async {
            shops.target_sim.product_count() == 30
        })
        .await;
        let sends = jobs
            .store()
            .list_job_runs(shops.account, &JobRunFilter { connection: Some(shops.target), kind: Some(JobKind::Send), ..Default::default() })
            .await
            .unwrap();
        assert!(!sends.is_empty());
        assert!(sends.iter().all(|s| s.trigger == "auto_send" || s.trigger == "reconciler"), "{sends:?}");
        eventually("the send finished", Duration::from_secs(30), || async {
            let runs = jobs.store().list_job_runs(shops.account, &JobRunFilter { connection: Some(shops.target), kind: Some(JobKind::Send), ..Default::default() }).await.unwrap();
            runs.iter().all(|r| r.state == JobState::Succeeded)
        })
        .await;
        assert_eq!(shops.target_sim.harness.stats.snapshot().duplicate_creates, 0);
        assert!(RunnerStats::get(&daemon.stats().succeeded) >= 2);
        assert_eq!(RunnerStats::get(&daemon.stats().worker_restarts), 0);
        daemon.shutdown().await;
    }
}

backend_test! {
    async fn asking_twice_stacks_nothing_and_a_repeated_message_does_nothing(backend) {
        let shops = Shops::new(&backend.store, 5, 10).await;
        let jobs = shops.jobs(&backend, backend.config()).await;
        // No daemon yet: the runs wait in the queue.
        let first = jobs.fetch(shops.account, shops.source, &full(), "user").await.unwrap();
        let again = jobs.fetch(shops.account, shops.source, &full(), "user").await.unwrap();
        assert!(first.created && !again.created);
        assert_eq!(again.run.id, first.run.id);
        let other = jobs.fetch(shops.account, shops.source, &FetchRequest::new(FetchScope::Incremental), "user").await.unwrap();
        assert!(other.created, "a different scope is a different job");
        let send = jobs.send(shops.account, shops.target, "user").await.unwrap();
        assert!(jobs.send(shops.account, shops.target, "user").await.unwrap().run.id == send.run.id);
        let bad = jobs.submit(shops.account, shops.source, JobKind::Send, serde_json::json!({ "scope": "full" }), "user").await;
        assert!(matches!(bad, Err(JobsError::Invalid(_))), "{bad:?}");

        // A worker handles the run once; the same message again finds it finished.
        let (_stop, signal) = tokio::sync::watch::channel(false);
        let runner = Runner::new(jobs.clone(), shops.engine(), "test-process".into(), signal);
        assert_eq!(runner.run(first.run.id).await, Outcome::Succeeded);
        assert_eq!(runner.run(first.run.id).await, Outcome::Skipped("finished"));
        assert_eq!(runner.run(JobRunId(999_999)).await, Outcome::Skipped("no such run"));
        let run = jobs.store().get_job_run(first.run.id).await.unwrap().unwrap();
        assert_eq!((run.state, run.attempts), (JobState::Succeeded, 1));
    }
}

backend_test! {
    async fn pause_stops_a_fetch_at_its_next_page_and_resume_finishes_it_without_repeating(backend) {
        // 60 products, 3 a page, each page slowed: time to pause in the middle.
        let shops = Shops::new(&backend.store, 60, 3).await;
        shops.source_sim.harness.faults.set(tidemark_sim::FaultConfig { slow: 1.0, slow_ms: 40, ..tidemark_sim::FaultConfig::none() });
        let jobs = shops.jobs(&backend, backend.config()).await;
        let daemon = Daemon::start(jobs.clone(), shops.engine(), Roles::ALL).await.unwrap();
        let fetch = jobs.fetch(shops.account, shops.source, &full(), "user").await.unwrap();
        let scanned = async || {
            let run = jobs.store().get_job_run(fetch.run.id).await.unwrap().unwrap();
            (run.state, run.progress["scanned"].as_u64().unwrap_or(0))
        };
        eventually("the fetch is half way", Duration::from_secs(60), || async { scanned().await.1 >= 9 }).await;

        jobs.pause(shops.account, shops.source).await.unwrap();
        let at_pause = scanned().await.1;
        eventually("the fetch stopped", Duration::from_secs(30), || async { scanned().await.0 == JobState::Queued }).await;
        let (_, at_stop) = scanned().await;
        assert!(at_stop <= at_pause + 3, "stopped within one page: {at_pause} at the pause, {at_stop} at the stop");
        assert!(at_stop < 60);
        // Paused: the run waits, however often its message comes.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(scanned().await, (JobState::Queued, at_stop));
        let waiting = jobs.store().get_job_run(fetch.run.id).await.unwrap().unwrap();
        assert_eq!(waiting.attempts, 0, "a pause does not use up an attempt");
        assert!(waiting.checkpoint.is_some());

        shops.source_sim.harness.faults.set(tidemark_sim::FaultConfig::none());
        let resumed = jobs.resume(shops.account, shops.source).await.unwrap();
        assert_eq!(resumed, vec![fetch.run.id]);
        let done = finished(&jobs, shops.account, &fetch.run, Duration::from_secs(60)).await;
        assert_succeeded(&done);
        // Resumed from the checkpoint: every product seen once, none twice.
        assert_eq!((done.counts["scanned"].as_u64(), done.counts["new"].as_u64()), (Some(60), Some(60)), "{}", done.counts);
        eventually("the target holds every product", Duration::from_secs(60), || async {
            shops.target_sim.product_count() == 60
        })
        .await;
        assert_eq!(shops.target_sim.harness.stats.snapshot().duplicate_creates, 0);
        daemon.shutdown().await;
    }
}

backend_test! {
    async fn a_cancelled_run_never_starts_and_a_running_one_stops(backend) {
        let shops = Shops::new(&backend.store, 60, 3).await;
        shops.source_sim.harness.faults.set(tidemark_sim::FaultConfig { slow: 1.0, slow_ms: 40, ..tidemark_sim::FaultConfig::none() });
        let jobs = shops.jobs(&backend, backend.config()).await;
        let queued = jobs.send(shops.account, shops.target, "user").await.unwrap();
        assert!(jobs.cancel(shops.account, queued.run.id).await.unwrap());
        let daemon = Daemon::start(jobs.clone(), shops.engine(), Roles::WORKERS_ONLY).await.unwrap();
        let fetch = jobs.fetch(shops.account, shops.source, &full(), "user").await.unwrap();
        eventually("the fetch runs", Duration::from_secs(30), || async {
            jobs.store().get_job_run(fetch.run.id).await.unwrap().unwrap().progress["scanned"].as_u64().unwrap_or(0) >= 3
        })
        .await;
        assert!(jobs.cancel(shops.account, fetch.run.id).await.unwrap());
        eventually("the worker let go of it", Duration::from_secs(30), || async {
            RunnerStats::get(&daemon.stats().stopped) + RunnerStats::get(&daemon.stats().lease_lost) >= 1
        })
        .await;
        let run = jobs.store().get_job_run(fetch.run.id).await.unwrap().unwrap();
        assert_eq!(run.state, JobState::Cancelled);
        assert!(run.progress["scanned"].as_u64().unwrap_or(0) < 60);
        let never = jobs.store().get_job_run(queued.run.id).await.unwrap().unwrap();
        assert_eq!((never.state, never.started_at), (JobState::Cancelled, None));
        daemon.shutdown().await;
    }
}

backend_test! {
    async fn two_daemons_share_the_work_but_never_fetch_one_connection_twice_at_once(backend) {
        let shops = Shops::new(&backend.store, 12, 3).await;
        shops.source_sim.harness.faults.set(tidemark_sim::FaultConfig { slow: 1.0, slow_ms: 20, ..tidemark_sim::FaultConfig::none() });
        // Exclusion is what this test is about, not takeover: a lease long enough that a
        // heartbeat starved by a loaded CI machine does not expire it (with the suite's 3 s
        // one, a worker held off the CPU for 3 s lost its lease mid-run and the next fetch
        // started beside it). Takeover after expiry is `lost.rs`'s.
        let config = tidemark_jobs::JobsConfig { lease_ttl: Duration::from_secs(15), ..backend.config() };
        let jobs_a = shops.jobs(&backend, config.clone()).await;
        let jobs_b = shops.jobs(&backend, config).await;
        // Eight fetches of one connection at once (made as rows directly: asking for them
        // would rightly return the one already waiting).
        let mut runs = Vec::new();
        for _ in 0..8 {
            let new = NewJobRun { connection: shops.source, kind: JobKind::Fetch, scope: serde_json::to_value(full()).unwrap(), trigger: "test".into(), max_attempts: 3 };
            let run = jobs_a.store().create_job_run(shops.account, &new, now()).await.unwrap();
            jobs_a.queue().push(run.id, None).await.unwrap();
            runs.push(run);
        }
        let a = Daemon::start(jobs_a.clone(), shops.engine(), Roles::WORKERS_ONLY).await.unwrap();
        let b = Daemon::start(jobs_b.clone(), shops.engine(), Roles::WORKERS_ONLY).await.unwrap();
        let mut done = Vec::new();
        for run in &runs {
            let run = finished(&jobs_a, shops.account, run, Duration::from_secs(120)).await;
            assert_succeeded(&run);
            done.push(run);
        }
        // The fetches ran one after another: no two of them overlap in time.
        done.sort_by_key(|r| r.started_at);
        for pair in done.windows(2) {
            assert!(pair[0].finished_at <= pair[1].started_at, "runs {} and {} overlapped", pair[0].id, pair[1].id);
        }
        let (sa, sb) = (RunnerStats::get(&a.stats().started), RunnerStats::get(&b.stats().started));
        // The eight fetches and the target's send (auto-send after the first), once each.
        assert_eq!(sa + sb, 9, "each run started once: {:?} {:?}", a.stats(), b.stats());
        assert!(sa > 0 && sb > 0, "both daemons did work: {sa} and {sb}");
        assert!(RunnerStats::get(&a.stats().deferred) + RunnerStats::get(&b.stats().deferred) > 0, "busy leases sent messages back");
        a.shutdown().await;
        b.shutdown().await;
    }
}

backend_test! {
    async fn resyncs_are_refused_inside_their_cooldown_with_the_time_left(backend) {
        let shops = Shops::new(&backend.store, 3, 10).await;
        let jobs = shops.jobs(&backend, backend.config()).await;
        let week = Resync::Window(ResyncWindow::parse("7d").unwrap());
        let first = jobs.resync(shops.account, shops.source, &week, "user").await.unwrap();
        let scope: FetchRequest = serde_json::from_value(first.run.scope.clone()).unwrap();
        assert!(matches!(scope.scope, FetchScope::Window { .. }));
        match jobs.resync(shops.account, shops.source, &Resync::Window(ResyncWindow::Today), "user").await {
            Err(JobsError::Cooldown { left, .. }) => {
                assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600), "{left:?}");
            }
            other => panic!("expected a cooldown, got {other:?}"),
        }
        // Windows of another connection and single records have cooldowns of their own.
        jobs.resync(shops.account, shops.target, &week, "user").await.unwrap();
        let record = |id: &str| Resync::Record { kind: ScanKind::Products, external_id: ExternalId::new(id) };
        jobs.resync(shops.account, shops.source, &record("1"), "user").await.unwrap();
        jobs.resync(shops.account, shops.source, &record("2"), "user").await.unwrap();
        let again = jobs.resync(shops.account, shops.source, &record("1"), "user").await.err();
        let message = again.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("try again in 4 min") || message.contains("try again in 5 min"), "{message}");
        let strangers = jobs.store().create_account("Other", now()).await.unwrap().id;
        assert!(jobs.resync(strangers, shops.source, &week, "user").await.is_err());
        let cancel_all = jobs.store().list_job_runs(shops.account, &JobRunFilter::default()).await.unwrap();
        assert_eq!(cancel_all.len(), 4);
        assert!(cancel_all.iter().all(|r| r.state == JobState::Queued));
    }
}
