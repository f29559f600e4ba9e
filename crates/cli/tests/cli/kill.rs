//! Real processes, real Redis and PostgreSQL: two `tidemark worker` processes share the work;
//! the one running the job is killed with SIGKILL twenty times at random points of a full
//! fetch and twenty times during the send that follows, and started again each time. The
//! other one (or the restarted one) finishes the work: the target shop ends up holding every
//! product of the source, exactly once. Needs `TIDEMARK_TEST_DATABASE_URL` and
//! `TIDEMARK_TEST_REDIS_URL`; skips with a printed reason without them.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use sqlx::Connection;
use tidemark_core::JobRunId;
use tidemark_sim::FaultConfig;
use tidemark_sim::woocommerce::{WooConfig, WooSim};
use tidemark_store::{JobState, Store};

const KILLS: usize = 20;
const PRODUCTS: u64 = 300;

struct Env {
    vars: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Env {
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidemark"));
        command
            .current_dir(self.dir.path())
            .env("TIDEMARK_LOG", "warn");
        for (k, v) in &self.vars {
            command.env(k, v);
        }
        command
    }

    fn run(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().unwrap();
        assert!(
            output.status.success(),
            "tidemark {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn worker(&self) -> Child {
        self.command()
            .arg("worker")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

/// The pid in a run's owner, `{host}-{pid}-{start}-{n}/{run}`.
fn owner_pid(owner: &str) -> Option<u32> {
    let process = owner.split('/').next()?;
    let mut parts = process.rsplit('-');
    let _n = parts.next()?;
    let _start = parts.next()?;
    parts.next()?.parse().ok()
}

/// Kills the process running `run` `KILLS` times at random moments while it runs, starting
/// a fresh worker each time; returns when the run has finished.
async fn kill_while_running(
    store: &Store,
    env: &Env,
    workers: &mut BTreeMap<u32, Child>,
    run: JobRunId,
    wait_progress: bool,
) -> usize {
    let mut kills = 0;
    let mut last_scanned = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(
            Instant::now() < deadline,
            "run {run} did not finish in 10 minutes"
        );
        let current = store.get_job_run(run).await.unwrap().unwrap();
        if matches!(
            current.state,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        ) {
            assert_eq!(current.state, JobState::Succeeded, "{:?}", current.error);
            return kills;
        }
        let progress = (
            current.progress["scanned"].as_u64(),
            current.progress["sent"].as_u64(),
        );
        let moved = !wait_progress || last_scanned != Some(progress);
        if kills < KILLS
            && current.state == JobState::Running
            && moved
            && let Some(pid) = current.lease_owner.as_deref().and_then(owner_pid)
        {
            let pause = rand::rng().random_range(0..400);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            if let Some(mut child) = workers.remove(&pid) {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                last_scanned = Some(progress);
                let fresh = env.worker();
                workers.insert(fresh.id(), fresh);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_killed_mid_fetch_and_mid_send_lose_nothing_and_duplicate_nothing() {
    let (Ok(database), Ok(redis)) = (
        std::env::var("TIDEMARK_TEST_DATABASE_URL"),
        std::env::var("TIDEMARK_TEST_REDIS_URL"),
    ) else {
        println!("skipped: TIDEMARK_TEST_DATABASE_URL and TIDEMARK_TEST_REDIS_URL are needed");
        return;
    };
    // A database of its own, and a queue name of its own on the shared Redis.
    let name = format!("tm_kill_{}", hex::encode(rand::random::<[u8; 6]>()));
    let mut admin = sqlx::PgConnection::connect(&database).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&database).unwrap();
    url.set_path(&name);

    // The source: 300 products, a few a page, every answer a little slow, so a full fetch
    // has many page boundaries to be killed between. The target: empty, slow to write.
    let source = WooSim::new(
        WooConfig {
            products: PRODUCTS,
            orders: 0,
            ..WooConfig::default()
        },
        FaultConfig {
            slow: 1.0,
            slow_ms: 15,
            ..FaultConfig::none()
        },
    );
    let source_run = source.serve().await.unwrap();
    let target = WooSim::new(
        WooConfig {
            products: 0,
            orders: 0,
            ..WooConfig::default()
        },
        FaultConfig::none(),
    );
    let target_run = target.serve().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        vars: vec![
            ("TIDEMARK_DATABASE_URL".into(), url.to_string()),
            ("TIDEMARK_QUEUE_URL".into(), redis.clone()),
            ("TIDEMARK_QUEUE__NAME".into(), name.clone()),
            (
                "TIDEMARK_DATA_DIR".into(),
                dir.path().join("data").display().to_string(),
            ),
            ("TIDEMARK_SECRET_KEY".into(), hex::encode([7u8; 32])),
            ("TIDEMARK_IMAGES__ALLOW_PRIVATE".into(), "true".into()),
            ("TIDEMARK_LEASES__TTL_MS".into(), "1500".into()),
            ("TIDEMARK_LEASES__HEARTBEAT_MS".into(), "400".into()),
            ("TIDEMARK_RECONCILER__INTERVAL_MS".into(), "300".into()),
            ("TIDEMARK_WORKERS__POLL_INTERVAL_MS".into(), "20".into()),
            ("TIDEMARK_RETRIES__BASE_DELAY_MS".into(), "200".into()),
            ("TIDEMARK_RETRIES__MAX_ATTEMPTS".into(), "100".into()),
        ],
        dir,
    };
    let credentials = env.dir.path().join("woo.json");
    std::fs::write(
        &credentials,
        r#"{"consumer_key": "ck_test", "consumer_secret": "cs_test"}"#,
    )
    .unwrap();
    let credentials = credentials.display().to_string();
    env.run(&[
        "connection",
        "add",
        "Source",
        "--platform",
        "woocommerce",
        "--platform-setting",
        &format!("base_url={}", source_run.base_url),
        "--platform-setting",
        "per_page=4",
        "--credentials-file",
        &credentials,
    ]);
    env.run(&[
        "connection",
        "add",
        "Target",
        "--platform",
        "woocommerce",
        "--platform-setting",
        &format!("base_url={}", target_run.base_url),
        "--set",
        "clone_new_products=true",
        "--set",
        "auto_send=false",
        "--credentials-file",
        &credentials,
    ]);

    let store = Store::connect(url.as_str()).await.unwrap();
    let mut workers = BTreeMap::new();
    for _ in 0..2 {
        let child = env.worker();
        workers.insert(child.id(), child);
    }

    // Twenty kills during the full fetch.
    let out = env.run(&["fetch", "Source", "--full", "--no-wait"]);
    let fetch: i64 = out
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no run id in {out:?}"));
    // The target sends only when asked (auto-send off) until the kills are over.
    let kills = kill_while_running(&store, &env, &mut workers, JobRunId(fetch), true).await;
    assert_eq!(kills, KILLS, "the fetch ended before {KILLS} kills");
    // Every product absorbed, once. A page killed after its records committed but before its
    // checkpoint is read again on resume and finds them unchanged.
    let done = store.get_job_run(JobRunId(fetch)).await.unwrap().unwrap();
    let counted = |key: &str| done.counts[key].as_u64().unwrap_or(0);
    assert_eq!(
        counted("new") + counted("unchanged"),
        PRODUCTS,
        "{}",
        done.counts
    );
    let canonical: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(&mut sqlx::PgConnection::connect(url.as_str()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(canonical, PRODUCTS as i64, "canonical products");

    // Twenty kills during the send: slow writes, killed at random points of a batch.
    target.harness.faults.set(FaultConfig {
        slow: 1.0,
        slow_ms: 40,
        ..FaultConfig::none()
    });
    let out = env.run(&["send", "Target", "--no-wait"]);
    let send: i64 = out
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no run id in {out:?}"));
    let kills = kill_while_running(&store, &env, &mut workers, JobRunId(send), false).await;
    assert_eq!(kills, KILLS, "the send ended before {KILLS} kills");
    target.harness.faults.set(FaultConfig::none());

    // Whatever the kills left for later (rows whose answer was lost, retried after a backoff)
    // is sent by the reconciler once the target sends by itself again.
    env.run(&[
        "connection",
        "settings",
        "Target",
        "--set",
        "auto_send=true",
    ]);
    let deadline = Instant::now() + Duration::from_secs(300);
    while target.product_count() < PRODUCTS as usize {
        assert!(
            Instant::now() < deadline,
            "the target holds {} of {PRODUCTS}",
            target.product_count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every product exactly once, with its variations; no duplicate create, nothing deleted.
    let want: BTreeMap<String, Vec<String>> = source
        .shapes()
        .into_values()
        .map(|s| (s.sku, s.variation_skus))
        .collect();
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for shape in target.shapes().into_values() {
        assert!(
            got.insert(shape.sku.clone(), shape.variation_skus)
                .is_none(),
            "{} twice",
            shape.sku
        );
    }
    assert_eq!(got.len(), want.len());
    for (sku, variations) in &want {
        let mut a = variations.clone();
        let mut b = got
            .get(sku)
            .cloned()
            .unwrap_or_else(|| panic!("{sku} missing on the target"));
        a.sort();
        b.sort();
        assert_eq!(a, b, "variations of {sku}");
    }
    let stats = target.harness.stats.snapshot();
    assert_eq!((stats.duplicate_creates, stats.product_deletes), (0, 0));
    // The history accounts for every run: none stuck running.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stuck: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM job_runs WHERE state IN ('queued', 'running')",
        )
        .fetch_one(&mut sqlx::PgConnection::connect(url.as_str()).await.unwrap())
        .await
        .unwrap();
        if stuck == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{stuck} runs still queued or running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for (_, mut child) in workers {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    store.close().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
    let mut redis_conn = redis::Client::open(redis.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{name}*"))
        .query_async(&mut redis_conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut redis_conn)
            .await
            .unwrap();
    }
}
