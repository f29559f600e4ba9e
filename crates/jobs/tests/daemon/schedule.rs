//! The scheduler: a fetch fires at its interval; a changed interval applies without a
//! restart; a scan due while a fetch runs is skipped, not stacked.

use std::time::Duration;

use tidemark_jobs::{Daemon, Roles};
use tidemark_store::{JobKind, JobRunFilter};

use crate::backend_test;
use crate::common::*;

async fn scheduled(shops: &Shops) -> usize {
    shops
        .store
        .list_job_runs(
            shops.account,
            &JobRunFilter {
                connection: Some(shops.source),
                kind: Some(JobKind::Fetch),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .iter()
        .filter(|r| r.trigger == "schedule")
        .count()
}

backend_test! {
    async fn a_scheduled_fetch_fires_at_its_interval_and_a_new_interval_applies_at_once(backend) {
        let shops = Shops::new(&backend.store, 4, 10).await;
        let jobs = shops.jobs(&backend, backend.config()).await;
        let daemon = Daemon::start(jobs.clone(), shops.engine(), Roles::ALL).await.unwrap();
        jobs.set_schedule(shops.account, shops.source, Some(Duration::from_secs(1)), None).await.unwrap();
        eventually("two scheduled fetches", Duration::from_secs(20), || async { scheduled(&shops).await >= 2 }).await;

        // An hour: nothing more fires.
        jobs.set_schedule(shops.account, shops.source, Some(Duration::from_secs(3600)), None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = scheduled(&shops).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(scheduled(&shops).await, before, "an hour's interval fired within seconds");

        // Back to fast, without a restart.
        jobs.set_schedule(shops.account, shops.source, Some(Duration::from_millis(700)), None).await.unwrap();
        eventually("fires again", Duration::from_secs(20), || async { scheduled(&shops).await >= before + 2 }).await;
        // A schedule needs sane input.
        assert!(jobs.set_schedule(shops.account, shops.source, None, Some("every night")).await.is_err());
        let with_cron = jobs.set_schedule(shops.account, shops.source, None, Some("0 3 * * *")).await.unwrap();
        assert!(with_cron.next_full_scan_at.is_some() && with_cron.fetch_interval_ms.is_none());
        daemon.shutdown().await;
    }
}

backend_test! {
    async fn a_scan_due_while_a_fetch_runs_is_skipped_not_stacked(backend) {
        let shops = Shops::new(&backend.store, 60, 3).await;
        shops.source_sim.harness.faults.set(tidemark_sim::FaultConfig { slow: 1.0, slow_ms: 60, ..tidemark_sim::FaultConfig::none() });
        let jobs = shops.jobs(&backend, backend.config()).await;
        let daemon = Daemon::start(jobs.clone(), shops.engine(), Roles::ALL).await.unwrap();
        let long = jobs.fetch(shops.account, shops.source, &tidemark_engine::FetchRequest::new(tidemark_engine::FetchScope::Full), "user").await.unwrap();
        jobs.set_schedule(shops.account, shops.source, Some(Duration::from_millis(300)), None).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let run = jobs.store().get_job_run(long.run.id).await.unwrap().unwrap();
        assert_eq!(run.state, tidemark_store::JobState::Running, "the long fetch is still running");
        assert_eq!(scheduled(&shops).await, 0, "nothing stacked behind the running fetch");
        jobs.set_schedule(shops.account, shops.source, None, None).await.unwrap();
        daemon.shutdown().await;
    }
}
