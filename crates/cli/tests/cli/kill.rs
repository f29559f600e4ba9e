//! Real processes, real Redis and PostgreSQL. Two `tidemark worker` processes share the work;
//! the one running the job is killed with SIGKILL twenty times at random points of a full
//! fetch and twenty times during the send that follows, and started again each time. The
//! other one (or the restarted one) finishes the work: the target shop ends up holding every
//! product of the source, exactly once. And with the default settings, two workers share
//! fetches of three connections without ever running two of one connection at once, and a
//! run whose worker is killed is running again within a minute. Needs
//! `TIDEMARK_TEST_DATABASE_URL` and `TIDEMARK_TEST_REDIS_URL`; skips with a printed reason
//! without them.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use sqlx::Connection;
use tidemark_core::{JobRunId, Timestamp};
use tidemark_engine::{FetchRequest, FetchScope};
use tidemark_jobs::{Queue, QueueSpec};
use tidemark_sim::woocommerce::{WooConfig, WooSim};
use tidemark_sim::{FaultConfig, RunningSim};
use tidemark_store::{JobKind, JobState, NewJobRun, Store};

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

    /// Adds a WooCommerce connection to `sim`.
    fn add_woo(&self, name: &str, sim: &RunningSim, extra: &[&str]) {
        let credentials = self.dir.path().join("woo.json");
        std::fs::write(
            &credentials,
            r#"{"consumer_key": "ck_test", "consumer_secret": "cs_test"}"#,
        )
        .unwrap();
        let credentials = credentials.display().to_string();
        let base_url = format!("base_url={}", sim.base_url);
        let mut args = vec![
            "connection",
            "add",
            name,
            "--platform",
            "woocommerce",
            "--platform-setting",
            &base_url,
            "--credentials-file",
            &credentials,
        ];
        args.extend_from_slice(extra);
        self.run(&args);
    }
}

/// The run id in `queued fetch run 12 …`.
fn run_id(out: &str) -> JobRunId {
    out.split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .map(JobRunId)
        .unwrap_or_else(|| panic!("no run id in {out:?}"))
}

/// A PostgreSQL database and a queue name of one test's own, on the shared servers, and the
/// environment of the `tidemark` processes that use them.
struct Scratch {
    env: Env,
    name: String,
    url: url::Url,
    redis: String,
    admin: sqlx::PgConnection,
}

impl Scratch {
    /// `None` (after saying why) without a test database and Redis.
    async fn new(settings: &[(&str, &str)]) -> Option<Self> {
        let (Ok(database), Ok(redis)) = (
            std::env::var("TIDEMARK_TEST_DATABASE_URL"),
            std::env::var("TIDEMARK_TEST_REDIS_URL"),
        ) else {
            println!("skipped: TIDEMARK_TEST_DATABASE_URL and TIDEMARK_TEST_REDIS_URL are needed");
            return None;
        };
        let name = format!("tm_kill_{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut admin = sqlx::PgConnection::connect(&database).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut url = url::Url::parse(&database).unwrap();
        url.set_path(&name);
        let dir = tempfile::tempdir().unwrap();
        let mut vars: Vec<(String, String)> = vec![
            ("TIDEMARK_DATABASE_URL".into(), url.to_string()),
            ("TIDEMARK_QUEUE_URL".into(), redis.clone()),
            ("TIDEMARK_QUEUE__NAME".into(), name.clone()),
            (
                "TIDEMARK_DATA_DIR".into(),
                dir.path().join("data").display().to_string(),
            ),
            ("TIDEMARK_SECRET_KEY".into(), hex::encode([7u8; 32])),
            ("TIDEMARK_IMAGES__ALLOW_PRIVATE".into(), "true".into()),
        ];
        vars.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Some(Self {
            env: Env { vars, dir },
            name,
            url,
            redis,
            admin,
        })
    }

    async fn count(&self, sql: &str) -> i64 {
        let mut conn = sqlx::PgConnection::connect(self.url.as_str())
            .await
            .unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }

    /// Stops the workers, drops the database and deletes the queue's keys.
    async fn finish(mut self, store: Store, workers: BTreeMap<u32, Child>) {
        for (_, mut child) in workers {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        store.close().await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await;
        let mut redis_conn = redis::Client::open(self.redis.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.name))
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
    let Some(scratch) = Scratch::new(&[
        ("TIDEMARK_LEASES__TTL_MS", "1500"),
        ("TIDEMARK_LEASES__HEARTBEAT_MS", "400"),
        ("TIDEMARK_RECONCILER__INTERVAL_MS", "300"),
        ("TIDEMARK_WORKERS__POLL_INTERVAL_MS", "20"),
        ("TIDEMARK_RETRIES__BASE_DELAY_MS", "200"),
        ("TIDEMARK_RETRIES__MAX_ATTEMPTS", "100"),
    ])
    .await
    else {
        return;
    };
    let env = &scratch.env;

    // The source: 300 products, a few a page, every answer a little slow, so a full fetch
    // has many page boundaries to be killed between. Slow enough that the work done between
    // two kills (a page, then up to 400 ms) cannot get through all 75 pages in fewer than
    // twenty kills: at 15 ms an answer it once did, in 18. The target: empty, slow to write.
    let source = WooSim::new(
        WooConfig {
            products: PRODUCTS,
            orders: 0,
            ..WooConfig::default()
        },
        FaultConfig {
            slow: 1.0,
            slow_ms: 40,
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

    env.add_woo("Source", &source_run, &["--platform-setting", "per_page=4"]);
    env.add_woo(
        "Target",
        &target_run,
        &[
            "--set",
            "clone_new_products=true",
            "--set",
            "auto_send=false",
        ],
    );

    let store = Store::connect(scratch.url.as_str()).await.unwrap();
    let mut workers = BTreeMap::new();
    for _ in 0..2 {
        let child = env.worker();
        workers.insert(child.id(), child);
    }

    // Twenty kills during the full fetch.
    let fetch = run_id(&env.run(&["fetch", "Source", "--full", "--no-wait"]));
    // The target sends only when asked (auto-send off) until the kills are over.
    let kills = kill_while_running(&store, env, &mut workers, fetch, true).await;
    assert_eq!(kills, KILLS, "the fetch ended before {KILLS} kills");
    // Every product absorbed, once. A page killed after its records committed but before its
    // checkpoint is read again on resume and finds them unchanged.
    let done = store.get_job_run(fetch).await.unwrap().unwrap();
    let counted = |key: &str| done.counts[key].as_u64().unwrap_or(0);
    assert_eq!(
        counted("new") + counted("unchanged"),
        PRODUCTS,
        "{}",
        done.counts
    );
    let canonical = scratch.count("SELECT COUNT(*) FROM products").await;
    assert_eq!(canonical, PRODUCTS as i64, "canonical products");

    // Twenty kills during the send: slow writes, killed at random points of a batch.
    target.harness.faults.set(FaultConfig {
        slow: 1.0,
        slow_ms: 40,
        ..FaultConfig::none()
    });
    let send = run_id(&env.run(&["send", "Target", "--no-wait"]));
    let kills = kill_while_running(&store, env, &mut workers, send, false).await;
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
        let stuck = scratch
            .count("SELECT COUNT(*) FROM job_runs WHERE state IN ('queued', 'running')")
            .await;
        if stuck == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{stuck} runs still queued or running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    scratch.finish(store, workers).await;
}

/// With the default settings (20 s leases, a reconciler pass every 5 s), as an operator runs
/// them: two worker processes share twelve fetches of three connections, both do some, and
/// no two fetches of one connection ever overlap; then the worker running a fetch is killed,
/// and the run is running again under the other one within a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_worker_processes_share_fetches_one_per_connection_and_take_over_a_killed_one() {
    let Some(scratch) = Scratch::new(&[]).await else {
        return;
    };
    let env = &scratch.env;
    // Three shops, every answer a little slow, so that a fetch takes a while.
    let mut sims = Vec::new();
    for (i, name) in ["A", "B", "C"].into_iter().enumerate() {
        let sim = WooSim::new(
            WooConfig {
                products: 24,
                orders: 0,
                seed: 1_000 * i as u64,
                ..WooConfig::default()
            },
            FaultConfig {
                slow: 1.0,
                slow_ms: 20,
                ..FaultConfig::none()
            },
        );
        let running = sim.serve().await.unwrap();
        env.add_woo(name, &running, &["--platform-setting", "per_page=4"]);
        sims.push((sim, running));
    }
    let store = Store::connect(scratch.url.as_str()).await.unwrap();
    let account = store.account_named("default").await.unwrap().unwrap();
    let connections = store.list_connections(account.id).await.unwrap();
    assert_eq!(connections.len(), 3);
    let mut workers = BTreeMap::new();
    for _ in 0..2 {
        let child = env.worker();
        workers.insert(child.id(), child);
    }

    // Four fetches of each connection at once, made as rows (asking for them would rightly
    // return the one already waiting) and pushed onto the workers' queue.
    let queue = Queue::connect(
        &QueueSpec::Redis(scratch.redis.clone()),
        &scratch.name,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let scope = serde_json::to_value(FetchRequest::new(FetchScope::Full)).unwrap();
    let mut runs = Vec::new();
    for connection in &connections {
        for _ in 0..4 {
            let new = NewJobRun {
                connection: connection.id,
                kind: JobKind::Fetch,
                scope: scope.clone(),
                trigger: "test".into(),
                max_attempts: 3,
            };
            let run = store.create_job_run(account.id, &new, now()).await.unwrap();
            queue.push(run.id, None).await.unwrap();
            runs.push(run.id);
        }
    }
    // The lease log: which worker process each run was seen running under.
    let mut ran_by: BTreeMap<JobRunId, BTreeSet<u32>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = loop {
        assert!(
            Instant::now() < deadline,
            "the fetches did not finish in 5 minutes"
        );
        let mut done = Vec::new();
        for &id in &runs {
            let run = store.get_job_run(id).await.unwrap().unwrap();
            if let Some(pid) = run.lease_owner.as_deref().and_then(owner_pid) {
                ran_by.entry(id).or_default().insert(pid);
            }
            if matches!(run.state, JobState::Succeeded | JobState::Failed) {
                done.push(run);
            }
        }
        if done.len() == runs.len() {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for connection in &connections {
        let mut mine: Vec<_> = done
            .iter()
            .filter(|r| r.connection == connection.id)
            .collect();
        for run in &mine {
            assert_eq!(run.state, JobState::Succeeded, "{:?}", run.error);
        }
        mine.sort_by_key(|r| r.started_at);
        for pair in mine.windows(2) {
            assert!(
                pair[0].finished_at <= pair[1].started_at,
                "fetches {} and {} of {} overlapped",
                pair[0].id,
                pair[1].id,
                connection.name
            );
        }
    }
    let pids: BTreeSet<u32> = ran_by.values().flatten().copied().collect();
    let both: BTreeSet<u32> = workers.keys().copied().collect();
    assert_eq!(pids, both, "both workers ran fetches: {ran_by:?}");

    // Kill the worker running a slow fetch: the other takes it over once its lease expires.
    sims[0].0.harness.faults.set(FaultConfig {
        slow: 1.0,
        slow_ms: 200,
        ..FaultConfig::none()
    });
    let slow = run_id(&env.run(&["fetch", "A", "--full", "--no-wait"]));
    let victim = loop {
        let run = store.get_job_run(slow).await.unwrap().unwrap();
        assert!(
            run.finished_at.is_none(),
            "the slow fetch ended before the kill"
        );
        if let Some(pid) = run.lease_owner.as_deref().and_then(owner_pid)
            && run.progress["scanned"].as_u64().unwrap_or(0) > 0
        {
            break pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut child = workers.remove(&victim).unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed = Instant::now();
    let taken_over = loop {
        let run = store.get_job_run(slow).await.unwrap().unwrap();
        let owner = run.lease_owner.as_deref().and_then(owner_pid);
        if run.state == JobState::Succeeded || owner.is_some_and(|pid| pid != victim) {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "the killed fetch was not taken over within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("a killed worker's fetch was running again after {taken_over:.1?}");
    sims[0].0.harness.faults.set(FaultConfig::none());
    let finished_by = Instant::now() + Duration::from_secs(120);
    loop {
        let run = store.get_job_run(slow).await.unwrap().unwrap();
        if run.state == JobState::Succeeded {
            break;
        }
        assert!(
            Instant::now() < finished_by,
            "the slow fetch did not finish: {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    scratch.finish(store, workers).await;
}

fn now() -> Timestamp {
    Timestamp::from_datetime(time::OffsetDateTime::now_utc())
}
