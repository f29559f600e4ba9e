//! What the queue forgets and workers that die: the reconciler restores queued work after
//! the queue is wiped, takes over runs whose worker stopped heartbeating, and a backlog far
//! past apalis-redis's 8,000-message limit drains without a worker crash.

use std::time::Duration;

use tidemark_core::JobRunId;
use tidemark_engine::{FetchRequest, FetchScope};
use tidemark_jobs::{Daemon, Queue, Roles, RunnerStats};
use tidemark_store::JobState;

use crate::backend_test;
use crate::common::*;

/// Wipes the queue as `redis-cli FLUSHALL` would (the whole server on Redis: the test holds
/// it exclusively), or every message on SQLite.
async fn wipe(queue: &Queue) {
    match queue {
        Queue::Redis { conn, .. } => {
            let mut conn = conn.clone();
            let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
        }
        Queue::Sqlite { pool, .. } => {
            sqlx::query("DELETE FROM Jobs").execute(pool).await.unwrap();
        }
    }
    assert_eq!(queue.backlog().await.unwrap(), 0);
}

backend_test! {
    exclusive async fn the_reconciler_restores_queued_work_after_the_queue_is_wiped(backend) {
        let shops = Shops::new(&backend.store, 20, 5).await;
        let jobs = shops.jobs(&backend, backend.config()).await;
        let fetch = jobs.fetch(shops.account, shops.source, &FetchRequest::new(FetchScope::Full), "user").await.unwrap();
        let send = jobs.send(shops.account, shops.target, "user").await.unwrap();
        wipe(jobs.queue()).await;
        let daemon = Daemon::start(jobs.clone(), shops.engine(), Roles::ALL).await.unwrap();
        for run in [&fetch.run, &send.run] {
            assert_succeeded(&finished(&jobs, shops.account, run, Duration::from_secs(60)).await);
        }
        eventually("the target holds every product", Duration::from_secs(60), || async {
            shops.target_sim.product_count() == 20
        })
        .await;

        // Wiped again in the middle of a run: the running run is not the queue's any more;
        // what was queued behind it comes back.
        shops.source_sim.harness.faults.set(tidemark_sim::FaultConfig { slow: 1.0, slow_ms: 30, ..tidemark_sim::FaultConfig::none() });
        let full = jobs.fetch(shops.account, shops.source, &FetchRequest::new(FetchScope::Full), "user").await.unwrap();
        let next = jobs.fetch(shops.account, shops.source, &FetchRequest::new(FetchScope::Incremental), "user").await.unwrap();
        eventually("the full fetch runs", Duration::from_secs(30), || async {
            jobs.store().get_job_run(full.run.id).await.unwrap().unwrap().state == JobState::Running
        })
        .await;
        wipe(jobs.queue()).await;
        for run in [&full.run, &next.run] {
            assert_succeeded(&finished(&jobs, shops.account, run, Duration::from_secs(60)).await);
        }
        daemon.shutdown().await;
    }
}

backend_test! {
    async fn a_run_whose_worker_died_is_taken_over_and_resumes_from_its_checkpoint(backend) {
        let shops = Shops::new(&backend.store, 10, 5).await;
        let config = backend.config();
        let jobs = shops.jobs(&backend, config.clone()).await;
        let fetch = jobs.fetch(shops.account, shops.source, &FetchRequest::new(FetchScope::Full), "user").await.unwrap();
        // A worker took it, leased the connection and died without a word.
        let store = jobs.store();
        let t = now();
        assert!(store.acquire_lease(shops.source, "fetch", "dead-worker/1", t, config.lease_ttl.as_millis() as i64).await.unwrap());
        assert!(store.start_job_run(fetch.run.id, "dead-worker/1", t).await.unwrap().is_some());
        let started = tokio::time::Instant::now();
        let daemon = Daemon::start(jobs.clone(), shops.engine(), Roles::ALL).await.unwrap();
        let done = finished(&jobs, shops.account, &fetch.run, Duration::from_secs(60)).await;
        assert_succeeded(&done);
        let took = started.elapsed();
        assert!(took >= config.lease_ttl - Duration::from_millis(500), "not before its lease expired: {took:?}");
        assert!(took < config.lease_ttl + Duration::from_secs(10), "soon after: {took:?}");
        assert_eq!(done.attempts, 2);
        daemon.shutdown().await;
    }
}

backend_test! {
    async fn a_backlog_of_twenty_thousand_messages_drains_without_a_worker_crash(backend) {
        init_tracing();
        let config = tidemark_jobs::JobsConfig { concurrency: 16, ..backend.config() };
        let queue = backend.queue(&config).await;
        // Messages for runs that do not exist: the worker reads the row and moves on, so the
        // test measures the queue, not the engine.
        let ids: Vec<JobRunId> = (1_000_000..1_020_000).map(JobRunId).collect();
        if let Queue::Redis { conn, config: redis_config, .. } = &queue {
            // Pushed one by one, as twenty thousand clicks would be: every push lands in the
            // delayed set, which apalis's fetch would promote in one `unpack` and die.
            for chunk in ids.chunks(500) {
                futures::future::try_join_all(chunk.iter().map(|id| queue.push(*id, None))).await.unwrap();
            }
            let mut conn = conn.clone();
            let delayed: u64 = redis::cmd("ZCARD").arg(redis_config.scheduled_jobs_set()).query_async(&mut conn).await.unwrap();
            assert_eq!(delayed, 20_000);
        } else {
            queue.push_many(&ids).await.unwrap();
        }
        assert_eq!(queue.backlog().await.unwrap(), 20_000);
        let engine = Shops::new(&backend.store, 0, 10).await.engine();
        let jobs = tidemark_jobs::Jobs::new(backend.store.clone(), queue.clone(), config, std::sync::Arc::new(tidemark_engine::SystemClock));
        let daemon = Daemon::start(jobs.clone(), engine, Roles::WORKERS_ONLY).await.unwrap();
        eventually("the backlog drained", Duration::from_secs(240), || async {
            RunnerStats::get(&daemon.stats().skipped) >= 20_000
        })
        .await;
        assert_eq!(queue.backlog().await.unwrap(), 0);
        assert_eq!(RunnerStats::get(&daemon.stats().worker_restarts), 0, "no worker stopped");
        daemon.shutdown().await;
    }
}
