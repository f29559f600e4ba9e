//! The measuring half of `tidemark bench queue`: what the daemon's queue does with no-op
//! messages. Two numbers matter (issue #8): how many messages a worker starts per second when
//! a backlog waits, and how long one message waits between its push and its start when the
//! worker is idle (what a console button feels). Workers are built as the daemon builds them
//! (the same [`Queue`] storages, poll interval and concurrency); on Redis a raw
//! `LPUSH`/`BRPOP` loop on the same server is measured beside them for scale.
//!
//! Every phase uses a queue of its own named after the caller's (`{name}-1`, `{name}-latency`,
//! `{name}-baseline`). On Redis every key under `{name}` is deleted afterwards, so a name that
//! already has keys is refused; on SQLite the phases' rows are deleted from the given file.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apalis::prelude::*;
use tidemark_core::JobRunId;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant as Deadline;

use crate::{JobsConfig, JobsError, Queue, QueueSpec, RunMessage, process_name};

/// No phase may take longer: a stuck worker fails the benchmark instead of hanging it.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Latency samples are pushed this far apart, at random, so they land at every point of the
/// worker's poll cycle rather than in step with it.
const SPACING: (Duration, Duration) = (Duration::from_millis(5), Duration::from_millis(20));

/// Issue #8's targets, shown beside the measurements.
const TARGET_LATENCY_P99: Duration = Duration::from_millis(50);
fn target_jobs_per_sec(backend: &str) -> f64 {
    if backend == "redis" { 2_000.0 } else { 1_000.0 }
}

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueBenchOptions {
    /// No-op messages per throughput repetition. Compare runs of equal size: on Redis the
    /// rate falls as the backlog grows (apalis-redis's lease script `LREM`s the whole ready
    /// list for every message it starts).
    pub jobs: u64,
    /// Messages pushed one at a time to an idle worker.
    pub latency_samples: u64,
    /// The worker's concurrency (the daemon's `concurrency`).
    pub concurrency: usize,
    /// How often an idle worker asks the queue for work (the daemon's `poll_interval`).
    pub poll_interval: Duration,
    /// Throughput runs; the report gives their median.
    pub repetitions: u32,
}

impl Default for QueueBenchOptions {
    /// The daemon's own settings, 20,000 jobs three times, 200 latency samples.
    fn default() -> Self {
        let config = JobsConfig::default();
        Self {
            jobs: 20_000,
            latency_samples: 200,
            concurrency: config.concurrency,
            poll_interval: config.poll_interval,
            repetitions: 3,
        }
    }
}

/// What one backend measured.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueBenchReport {
    pub backend: &'static str,
    pub jobs: u64,
    pub concurrency: usize,
    pub poll_interval: Duration,
    /// Median of the repetitions' rates.
    pub jobs_per_sec: f64,
    /// Every throughput repetition, in order.
    pub repetitions: Vec<ThroughputRun>,
    pub latency_samples: u64,
    /// Push to handler start, idle worker, nearest-rank percentiles.
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    pub latency_max: Duration,
    /// Latency messages whose handler started more than once.
    pub latency_repeats: u64,
    /// Raw `LPUSH`/`BRPOP` on the same server (Redis only).
    pub baseline: Option<BaselineReport>,
}

/// One throughput repetition: `jobs` messages pushed, then drained by a fresh worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputRun {
    pub queue: String,
    /// `jobs` ÷ (last first start − worker start).
    pub jobs_per_sec: f64,
    pub elapsed: Duration,
    /// How fast `Queue::push_many` filled the queue.
    pub push_per_sec: f64,
    /// Handler starts, repeats included: `jobs` when every message ran exactly once.
    pub starts: u64,
    /// Starts of a message that had already started.
    pub repeats: u64,
}

/// A raw Redis list as a queue: one producer `LPUSH`ing, one consumer `BRPOP`ing, each
/// message a round trip of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineReport {
    /// Messages streamed from the producer to the consumer at once.
    pub jobs: u64,
    /// `jobs` ÷ (last pop − start).
    pub jobs_per_sec: f64,
    /// Messages pushed one at a time to the idle consumer, spaced as apalis's samples.
    pub latency_samples: u64,
    /// Push to pop of those, nearest-rank.
    pub latency_p50: Duration,
    pub latency_p99: Duration,
}

/// Measures the queue `spec` names: `options.repetitions` throughput runs, then the latency
/// samples, then (Redis) the raw baseline.
pub async fn queue_bench(
    spec: &QueueSpec,
    queue_name: &str,
    options: &QueueBenchOptions,
) -> Result<QueueBenchReport, JobsError> {
    if options.jobs == 0
        || options.latency_samples == 0
        || options.repetitions == 0
        || options.concurrency == 0
    {
        return Err(JobsError::Invalid(
            "a queue benchmark needs at least one job, latency sample, repetition and \
             concurrent handler"
                .into(),
        ));
    }
    if queue_name.is_empty() {
        return Err(JobsError::Invalid(
            "a queue benchmark needs a queue name".into(),
        ));
    }
    match spec {
        QueueSpec::Sqlite(_) => measure(spec, queue_name, options, None).await,
        QueueSpec::Redis(url) => {
            let mut admin = redis_connection(url).await?;
            let prefix = key_pattern(queue_name);
            let taken = scan_keys(&mut admin, &prefix).await.map_err(redis_error)?;
            if !taken.is_empty() {
                return Err(JobsError::queue(
                    "redis",
                    format!(
                        "{} keys already start with {queue_name:?}; the benchmark deletes every \
                         key under its queue name, so give it a fresh one",
                        taken.len()
                    ),
                ));
            }
            let result = measure(spec, queue_name, options, Some(url)).await;
            // Also after a failure: the keys are ours and nobody else will remove them.
            if let Err(error) = delete_keys(&mut admin, queue_name).await {
                tracing::warn!(%error, prefix = %prefix, "benchmark keys left on the Redis server");
            }
            result
        }
    }
}

async fn measure(
    spec: &QueueSpec,
    queue_name: &str,
    options: &QueueBenchOptions,
    redis_url: Option<&str>,
) -> Result<QueueBenchReport, JobsError> {
    let mut repetitions = Vec::new();
    for i in 1..=options.repetitions {
        repetitions.push(throughput(spec, &format!("{queue_name}-{i}"), options).await?);
    }
    let latency = latency(spec, &format!("{queue_name}-latency"), options).await?;
    let baseline = match redis_url {
        Some(url) => Some(
            baseline(
                url,
                &format!("{queue_name}-baseline"),
                options.jobs,
                options.latency_samples,
            )
            .await?,
        ),
        None => None,
    };
    let backend = match spec {
        QueueSpec::Sqlite(_) => "sqlite",
        QueueSpec::Redis(_) => "redis",
    };
    let rates: Vec<f64> = repetitions.iter().map(|r| r.jobs_per_sec).collect();
    Ok(QueueBenchReport {
        backend,
        jobs: options.jobs,
        concurrency: options.concurrency,
        poll_interval: options.poll_interval,
        jobs_per_sec: median(&rates),
        repetitions,
        latency_samples: options.latency_samples,
        latency_p50: nanos(nearest_rank(&latency.sorted, 50.0)),
        latency_p99: nanos(nearest_rank(&latency.sorted, 99.0)),
        latency_max: nanos(latency.sorted.last().copied().unwrap_or(0)),
        latency_repeats: latency.repeats,
        baseline,
    })
}

/// What the handler writes down: when each message started, and whether it had before.
struct Probe {
    base: Instant,
    mode: Mode,
    starts: AtomicU64,
    firsts: AtomicU64,
    /// Nanoseconds since `base` of the latest first start.
    last_first: AtomicU64,
    progress: Notify,
}

enum Mode {
    /// Messages carry their index.
    Throughput(Vec<AtomicBool>),
    /// Messages carry their push time (ns since `base`); each maps to its push-to-start
    /// latency. Negative messages are warm-ups.
    Latency(Mutex<HashMap<i64, u64>>),
}

impl Probe {
    fn new(mode: Mode) -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            mode,
            starts: AtomicU64::new(0),
            firsts: AtomicU64::new(0),
            last_first: AtomicU64::new(0),
            progress: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn record(&self, run: i64, at: u64) {
        self.starts.fetch_add(1, Ordering::Relaxed);
        let first = match &self.mode {
            Mode::Throughput(seen) => usize::try_from(run)
                .ok()
                .and_then(|i| seen.get(i))
                .is_some_and(|flag| !flag.swap(true, Ordering::AcqRel)),
            Mode::Latency(samples) => match u64::try_from(run) {
                Ok(pushed) => {
                    let mut samples = samples.lock().unwrap_or_else(|p| p.into_inner());
                    match samples.entry(run) {
                        Entry::Vacant(entry) => {
                            entry.insert(at.saturating_sub(pushed));
                            true
                        }
                        Entry::Occupied(_) => false,
                    }
                }
                Err(_) => false,
            },
        };
        if first {
            self.last_first.fetch_max(at, Ordering::Relaxed);
            self.firsts.fetch_add(1, Ordering::AcqRel);
        }
        self.progress.notify_one();
    }

    fn starts(&self) -> u64 {
        self.starts.load(Ordering::Acquire)
    }

    fn firsts(&self) -> u64 {
        self.firsts.load(Ordering::Acquire)
    }
}

async fn probe(message: RunMessage, probe: Data<Arc<Probe>>) -> Result<(), BoxDynError> {
    let at = probe.now();
    probe.record(message.run, at);
    Ok(())
}

/// The daemon's worker chain (`daemon.rs`), with the probe as handler.
macro_rules! bench_worker {
    ($storage:expr, $name:expr, $probe:expr, $concurrency:expr, $poll:expr, $stop:expr) => {
        WorkerBuilder::new($name)
            .backend($storage.poll_with_interval($poll))
            .data($probe)
            .concurrency($concurrency)
            .build(probe)
            .run_until($stop)
            .await
    };
}

async fn run_worker(
    queue: Queue,
    name: String,
    probe: Arc<Probe>,
    concurrency: usize,
    poll: Duration,
    stop: oneshot::Receiver<()>,
) -> Result<(), String> {
    let stop = async move {
        // A dropped sender stops the worker too.
        let _ = stop.await;
        Ok::<(), std::io::Error>(())
    };
    let result = match queue {
        Queue::Sqlite { storage, .. } => {
            bench_worker!(storage, name, probe, concurrency, poll, stop)
        }
        Queue::Redis { storage, .. } => {
            bench_worker!(storage, name, probe, concurrency, poll, stop)
        }
    };
    result.map_err(|e| e.to_string())
}

/// A spawned task that is aborted if dropped before it was awaited (an error path).
struct Spawned<T>(Option<JoinHandle<T>>);

impl<T> Spawned<T> {
    /// Waits for the task; if this future is dropped first, the task is still aborted.
    async fn join(&mut self) -> Result<T, String> {
        let Some(task) = self.0.as_mut() else {
            return Err("already awaited".to_owned());
        };
        let ended = task.await;
        self.0 = None;
        ended.map_err(|e| e.to_string())
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// A worker draining one queue into a probe.
struct RunningWorker {
    backend: &'static str,
    stop: Option<oneshot::Sender<()>>,
    task: Spawned<Result<(), String>>,
    /// When it was started, in the probe's nanoseconds.
    started: u64,
}

impl RunningWorker {
    fn start(queue: &Queue, probe: &Arc<Probe>, options: &QueueBenchOptions) -> Self {
        let (stop, signal) = oneshot::channel();
        // apalis refuses a worker name it saw alive within a heartbeat.
        let name = format!("bench-{}", process_name());
        let started = probe.now();
        let task = tokio::spawn(run_worker(
            queue.clone(),
            name,
            Arc::clone(probe),
            options.concurrency,
            options.poll_interval,
            signal,
        ));
        Self {
            backend: queue.backend(),
            stop: Some(stop),
            task: Spawned(Some(task)),
            started,
        }
    }

    /// Waits until `done` holds, failing if the worker stops first or `deadline` passes.
    async fn wait_until(
        &mut self,
        probe: &Probe,
        deadline: Deadline,
        what: &str,
        done: impl Fn(&Probe) -> bool,
    ) -> Result<(), JobsError> {
        let backend = self.backend;
        loop {
            if done(probe) {
                return Ok(());
            }
            tokio::select! {
                _ = probe.progress.notified() => {}
                ended = self.task.join() => {
                    let why = match ended {
                        Ok(Ok(())) => "without an error".to_owned(),
                        Ok(Err(error)) | Err(error) => error,
                    };
                    return Err(JobsError::queue(
                        backend,
                        format!("the benchmark worker stopped while {what}: {why}"),
                    ));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(timed_out(backend, what, probe));
                }
            }
        }
    }

    /// Stops the worker gracefully and waits for it.
    async fn stop(mut self) -> Result<(), JobsError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if self.task.0.is_none() {
            return Ok(());
        }
        // On timeout the task is still held, and aborted when `self` drops.
        match tokio::time::timeout(PHASE_TIMEOUT, self.task.join()).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(JobsError::queue(
                self.backend,
                format!("the benchmark worker failed: {error}"),
            )),
            Ok(Err(error)) => Err(JobsError::queue(
                self.backend,
                format!("the benchmark worker ended badly: {error}"),
            )),
            Err(_) => Err(JobsError::queue(
                self.backend,
                format!(
                    "the benchmark worker did not stop within {} s",
                    PHASE_TIMEOUT.as_secs()
                ),
            )),
        }
    }
}

fn timed_out(backend: &'static str, what: &str, probe: &Probe) -> JobsError {
    JobsError::queue(
        backend,
        format!(
            "timed out after {} s {what} ({} messages started)",
            PHASE_TIMEOUT.as_secs(),
            probe.firsts()
        ),
    )
}

/// Runs `phase` on a fresh queue named `name`, then deletes that queue's SQLite rows (Redis
/// keys are deleted all at once at the end).
async fn on_queue<T, F, Fut>(spec: &QueueSpec, name: &str, phase: F) -> Result<T, JobsError>
where
    F: FnOnce(Queue) -> Fut,
    Fut: Future<Output = Result<T, JobsError>>,
{
    let queue = Queue::connect(spec, name, JobsConfig::default().heartbeat).await?;
    if let Queue::Sqlite { pool, .. } = &queue {
        // The rows are deleted afterwards: they must be ours.
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM Jobs WHERE job_type = ?1")
            .bind(name)
            .fetch_one(pool)
            .await
            .map_err(|e| JobsError::queue("sqlite", e))?;
        if existing > 0 {
            pool.close().await;
            return Err(JobsError::queue(
                "sqlite",
                format!("queue {name:?} already holds {existing} messages; use a fresh name"),
            ));
        }
    }
    let result = phase(queue.clone()).await;
    if let Queue::Sqlite { pool, .. } = &queue {
        // Repetitions start from the same table, not from the previous ones' finished rows.
        if let Err(error) = sqlx::query("DELETE FROM Jobs WHERE job_type = ?1")
            .bind(name)
            .execute(pool)
            .await
        {
            tracing::warn!(%error, queue = name, "benchmark rows left in the SQLite queue");
        }
        pool.close().await;
    }
    result
}

async fn throughput(
    spec: &QueueSpec,
    name: &str,
    options: &QueueBenchOptions,
) -> Result<ThroughputRun, JobsError> {
    let jobs = options.jobs;
    let count = usize::try_from(jobs)
        .ok()
        .filter(|&n| i64::try_from(n).is_ok())
        .ok_or_else(|| JobsError::Invalid(format!("{jobs} jobs are too many")))?;
    on_queue(spec, name, |queue| async move {
        let backend = queue.backend();
        let deadline = Deadline::now() + PHASE_TIMEOUT;
        let runs: Vec<JobRunId> = (0..count)
            .map(|i| JobRunId(i64::try_from(i).unwrap_or(i64::MAX)))
            .collect();
        let pushing = Instant::now();
        tokio::time::timeout_at(deadline, queue.push_many(&runs))
            .await
            .map_err(|_| {
                JobsError::queue(
                    backend,
                    format!(
                        "pushing {jobs} messages took over {} s",
                        PHASE_TIMEOUT.as_secs()
                    ),
                )
            })??;
        let pushed_in = pushing.elapsed();

        let probe = Probe::new(Mode::Throughput(
            (0..count).map(|_| AtomicBool::new(false)).collect(),
        ));
        let deadline = Deadline::now() + PHASE_TIMEOUT;
        let mut worker = RunningWorker::start(&queue, &probe, options);
        worker
            .wait_until(&probe, deadline, "draining the backlog", |p| {
                p.firsts() >= jobs
            })
            .await?;
        let started = worker.started;
        worker.stop().await?;
        let elapsed = nanos(
            probe
                .last_first
                .load(Ordering::Acquire)
                .saturating_sub(started),
        );
        let starts = probe.starts();
        Ok(ThroughputRun {
            queue: name.to_owned(),
            jobs_per_sec: rate(jobs, elapsed),
            elapsed,
            push_per_sec: rate(jobs, pushed_in),
            starts,
            repeats: starts.saturating_sub(probe.firsts()),
        })
    })
    .await
}

struct LatencyRun {
    /// Push to start, nanoseconds, ascending.
    sorted: Vec<u64>,
    repeats: u64,
}

async fn latency(
    spec: &QueueSpec,
    name: &str,
    options: &QueueBenchOptions,
) -> Result<LatencyRun, JobsError> {
    let samples = options.latency_samples;
    on_queue(spec, name, |queue| async move {
        let backend = queue.backend();
        let deadline = Deadline::now() + PHASE_TIMEOUT;
        let probe = Probe::new(Mode::Latency(Mutex::new(HashMap::new())));
        let mut worker = RunningWorker::start(&queue, &probe, options);
        // The first message also waits for the worker to register: not a sample.
        queue.push(JobRunId(-1), None).await?;
        worker
            .wait_until(&probe, deadline, "waiting for the worker", |p| {
                p.starts() >= 1
            })
            .await?;
        let mut spacing = Jitter::new();
        let pushing = async {
            for _ in 0..samples {
                tokio::time::sleep(spacing.between(SPACING.0, SPACING.1)).await;
                let pushed = i64::try_from(probe.now()).unwrap_or(i64::MAX);
                queue.push(JobRunId(pushed), None).await?;
            }
            Ok::<(), JobsError>(())
        };
        tokio::time::timeout_at(deadline, pushing)
            .await
            .map_err(|_| timed_out(backend, "pushing latency samples", &probe))??;
        worker
            .wait_until(&probe, deadline, "waiting for latency samples", |p| {
                p.firsts() >= samples
            })
            .await?;
        worker.stop().await?;
        let mut sorted: Vec<u64> = match &probe.mode {
            Mode::Latency(map) => map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .copied()
                .collect(),
            Mode::Throughput(_) => Vec::new(),
        };
        sorted.sort_unstable();
        Ok(LatencyRun {
            sorted,
            // The warm-up message started once and is no sample.
            repeats: probe
                .starts()
                .saturating_sub(probe.firsts())
                .saturating_sub(1),
        })
    })
    .await
}

/// A raw Redis list on the same server: `jobs` messages streamed from one producer to one
/// consumer for the rate, then `samples` messages pushed one at a time to the idle consumer
/// (spaced as apalis's samples) for the latency floor.
async fn baseline(
    url: &str,
    key: &str,
    jobs: u64,
    samples: u64,
) -> Result<BaselineReport, JobsError> {
    let (_, last) = list_run(url, key, jobs, false).await?;
    let (mut latencies, _) = list_run(url, key, samples, true).await?;
    latencies.sort_unstable();
    Ok(BaselineReport {
        jobs,
        jobs_per_sec: rate(jobs, nanos(last)),
        latency_samples: samples,
        latency_p50: nanos(nearest_rank(&latencies, 50.0)),
        latency_p99: nanos(nearest_rank(&latencies, 99.0)),
    })
}

/// One producer `LPUSH`ing `count` messages (each its push time, ns since the start), spaced
/// like the latency samples if `spaced`, and one consumer `BRPOP`ing them, each on its own
/// connection. Returns each message's push-to-pop time and the last pop's time.
async fn list_run(
    url: &str,
    key: &str,
    count: u64,
    spaced: bool,
) -> Result<(Vec<u64>, u64), JobsError> {
    let mut producer = redis_connection(url).await?;
    let mut consumer = redis_connection(url).await?;
    let base = Instant::now();
    let now = move || u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut popping = {
        let key = key.to_owned();
        Spawned(Some(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
            let mut last = 0;
            for _ in 0..count {
                let popped: Option<(String, u64)> = redis::cmd("BRPOP")
                    .arg(&key)
                    .arg(5)
                    .query_async(&mut consumer)
                    .await
                    .map_err(redis_error)?;
                last = now();
                let Some((_, pushed)) = popped else {
                    return Err(JobsError::queue("redis", "baseline: no message within 5 s"));
                };
                latencies.push(last.saturating_sub(pushed));
            }
            Ok((latencies, last))
        })))
    };
    let mut pushing = {
        let key = key.to_owned();
        Spawned(Some(tokio::spawn(async move {
            let mut spacing = Jitter::new();
            for _ in 0..count {
                if spaced {
                    tokio::time::sleep(spacing.between(SPACING.0, SPACING.1)).await;
                }
                let _: u64 = redis::cmd("LPUSH")
                    .arg(&key)
                    .arg(now())
                    .query_async(&mut producer)
                    .await
                    .map_err(redis_error)?;
            }
            Ok::<(), JobsError>(())
        })))
    };
    let both = async { (pushing.join().await, popping.join().await) };
    // On timeout the guards drop, which aborts both tasks.
    let (pushed, popped) = tokio::time::timeout(PHASE_TIMEOUT, both)
        .await
        .map_err(|_| {
            JobsError::queue(
                "redis",
                format!("baseline: took over {} s", PHASE_TIMEOUT.as_secs()),
            )
        })?;
    let join = |e: String| JobsError::queue("redis", format!("baseline: {e}"));
    pushed.map_err(join)??;
    popped.map_err(join)?
}

fn redis_error(error: redis::RedisError) -> JobsError {
    JobsError::queue("redis", error)
}

async fn redis_connection(url: &str) -> Result<redis::aio::MultiplexedConnection, JobsError> {
    let client = redis::Client::open(url).map_err(redis_error)?;
    // Longer than a `BRPOP`'s 5 s: redis-rs's default would cut it short.
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_connection_timeout(Some(Duration::from_secs(5)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(redis_error)
}

/// `SCAN` pattern for every key that starts with `prefix`.
fn key_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

async fn scan_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> Result<Vec<String>, redis::RedisError> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// apalis-redis lists every queue's workers key in this global sorted set.
const APALIS_QUEUES: &str = "core:apalis:queues:list";

/// Deletes every key under `queue_name` and its queues' entries in apalis's global list.
async fn delete_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    queue_name: &str,
) -> Result<(), redis::RedisError> {
    let keys = scan_keys(conn, &key_pattern(queue_name)).await?;
    for chunk in keys.chunks(500) {
        // UNLINK: a 20,000-entry hash is freed off the server's main thread.
        let _: u64 = redis::cmd("UNLINK").arg(chunk).query_async(conn).await?;
    }
    let listed: Vec<String> = redis::cmd("ZRANGE")
        .arg(APALIS_QUEUES)
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await?;
    let ours: Vec<&String> = listed
        .iter()
        .filter(|q| q.starts_with(queue_name))
        .collect();
    if !ours.is_empty() {
        let _: u64 = redis::cmd("ZREM")
            .arg(APALIS_QUEUES)
            .arg(ours)
            .query_async(conn)
            .await?;
    }
    Ok(())
}

/// A small xorshift generator: the spacing of samples needs no more than that.
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        Self(0x9E37_79B9_7F4A_7C15)
    }

    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        let span = u64::try_from(high.saturating_sub(low).as_micros()).unwrap_or(0);
        low + Duration::from_micros(x % (span + 1))
    }
}

fn nanos(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}

fn rate(jobs: u64, elapsed: Duration) -> f64 {
    // Clamped so a degenerate run reads as very fast rather than as infinity.
    jobs as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The value at rank ⌈p/100 · n⌉ of ascending `sorted` (0 when empty).
fn nearest_rank(sorted: &[u64], p: f64) -> u64 {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, n.max(1)) - 1)
        .copied()
        .unwrap_or(0)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// `12,345`
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_sec(rate: f64) -> String {
    format!("{} jobs/s", thousands(rate.round() as u64))
}

/// `0.42 ms`, `12.3 ms`, `105 ms`
fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

impl QueueBenchReport {
    /// A plain-text table: apalis as the daemon runs it, the raw baseline on Redis, and
    /// issue #8's targets.
    pub fn table(&self) -> String {
        let target_rate = target_jobs_per_sec(self.backend);
        let verdict = |met: bool| if met { "met" } else { "MISSED" };
        let starts: u64 = self.repetitions.iter().map(|r| r.starts).sum();
        let repeats: u64 = self.repetitions.iter().map(|r| r.repeats).sum();
        let expected = self.jobs.saturating_mul(self.repetitions.len() as u64);
        let each: Vec<String> = self
            .repetitions
            .iter()
            .map(|r| thousands(r.jobs_per_sec.round() as u64))
            .collect();
        let pushes: Vec<f64> = self.repetitions.iter().map(|r| r.push_per_sec).collect();
        let baseline = self.baseline.as_ref();
        let base = |f: fn(&BaselineReport) -> String| baseline.map(f).unwrap_or_default();
        let mut rows: Vec<[String; 4]> = vec![
            [
                String::new(),
                "apalis, as the daemon runs it".into(),
                "raw LPUSH/BRPOP, 1 per round trip".into(),
                "issue #8 target".into(),
            ],
            [
                "throughput (median)".into(),
                per_sec(self.jobs_per_sec),
                base(|b| per_sec(b.jobs_per_sec)),
                format!(
                    ">= {} ({})",
                    per_sec(target_rate),
                    verdict(self.jobs_per_sec >= target_rate)
                ),
            ],
            [
                "  each repetition".into(),
                each.join(" / "),
                String::new(),
                String::new(),
            ],
            [
                "  push_many (median)".into(),
                per_sec(median(&pushes)),
                String::new(),
                String::new(),
            ],
            [
                "  jobs started".into(),
                format!(
                    "{} of {}, {} twice",
                    thousands(starts),
                    thousands(expected),
                    thousands(repeats)
                ),
                base(|b| format!("{} of {}", thousands(b.jobs), thousands(b.jobs))),
                String::new(),
            ],
            [
                "enqueue-to-start p50".into(),
                millis(self.latency_p50),
                base(|b| millis(b.latency_p50)),
                String::new(),
            ],
            [
                "enqueue-to-start p99".into(),
                millis(self.latency_p99),
                base(|b| millis(b.latency_p99)),
                format!(
                    "<= {} ({})",
                    millis(TARGET_LATENCY_P99),
                    verdict(self.latency_p99 <= TARGET_LATENCY_P99)
                ),
            ],
            [
                "enqueue-to-start max".into(),
                millis(self.latency_max),
                String::new(),
                String::new(),
            ],
            [
                "  latency samples".into(),
                format!(
                    "{}, idle worker, {}-{} ms apart",
                    thousands(self.latency_samples),
                    SPACING.0.as_millis(),
                    SPACING.1.as_millis()
                ),
                base(|b| {
                    format!(
                        "{}, idle consumer, same spacing",
                        thousands(b.latency_samples)
                    )
                }),
                String::new(),
            ],
        ];
        if self.latency_repeats > 0 {
            rows.push([
                "  samples started twice".into(),
                thousands(self.latency_repeats),
                String::new(),
                String::new(),
            ]);
        }
        let columns: Vec<usize> = if baseline.is_some() {
            vec![0, 1, 2, 3]
        } else {
            vec![0, 1, 3]
        };
        let widths: Vec<usize> = columns
            .iter()
            .map(|&c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let repetitions = self.repetitions.len();
        let mut out = format!(
            "queue benchmark: {}, {} no-op jobs x {repetitions} repetition{}, concurrency {}, \
             poll every {} ms\n\n",
            self.backend,
            thousands(self.jobs),
            if repetitions == 1 { "" } else { "s" },
            self.concurrency,
            self.poll_interval.as_millis(),
        );
        for row in &rows {
            let mut line = String::new();
            for (&c, &width) in columns.iter().zip(&widths) {
                let _ = write!(line, "{:<width$}   ", row[c]);
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn small() -> QueueBenchOptions {
        QueueBenchOptions {
            jobs: 500,
            latency_samples: 30,
            concurrency: 4,
            poll_interval: Duration::from_millis(20),
            repetitions: 1,
        }
    }

    fn check(report: &QueueBenchReport, options: &QueueBenchOptions, backend: &str) {
        assert_eq!(report.backend, backend);
        assert_eq!(report.repetitions.len(), options.repetitions as usize);
        for run in &report.repetitions {
            assert_eq!(
                run.starts, options.jobs,
                "every job ran exactly once: {run:?}"
            );
            assert_eq!(run.repeats, 0, "{run:?}");
            assert!(run.jobs_per_sec > 0.0 && run.push_per_sec > 0.0, "{run:?}");
        }
        assert!(report.jobs_per_sec > 0.0);
        assert_eq!(report.latency_repeats, 0);
        assert!(report.latency_p50 > Duration::ZERO);
        assert!(report.latency_p50 <= report.latency_p99);
        assert!(report.latency_p99 <= report.latency_max);
        let table = report.table();
        println!("{table}");
        assert!(table.contains(backend), "{table}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_runs_every_job_once() {
        let dir = tempfile::tempdir().unwrap();
        let spec = QueueSpec::Sqlite(dir.path().join("bench.db"));
        let options = small();
        let report = queue_bench(&spec, "tm-bench", &options).await.unwrap();
        check(&report, &options, "sqlite");
        assert!(report.baseline.is_none());
        assert!(!report.table().contains("LPUSH"));
        // The phases' rows are gone; a second run on the same names starts clean.
        queue_bench(&spec, "tm-bench", &options).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_runs_every_job_once_and_leaves_no_keys() {
        let Ok(url) = std::env::var("TIDEMARK_TEST_REDIS_URL") else {
            println!("skipped: TIDEMARK_TEST_REDIS_URL unset");
            return;
        };
        let name = format!("tm-bench-{}", hex::encode(rand::random::<[u8; 6]>()));
        let spec = QueueSpec::Redis(url.clone());
        let options = small();
        let report = queue_bench(&spec, &name, &options).await.unwrap();
        check(&report, &options, "redis");
        let baseline = report.baseline.as_ref().expect("a baseline on Redis");
        assert_eq!(baseline.jobs, options.jobs);
        assert_eq!(baseline.latency_samples, options.latency_samples);
        assert!(baseline.jobs_per_sec > 0.0);
        assert!(baseline.latency_p50 > Duration::ZERO);
        assert!(baseline.latency_p50 <= baseline.latency_p99);
        assert!(report.table().contains("LPUSH"));

        let mut conn = redis_connection(&url).await.unwrap();
        assert!(
            scan_keys(&mut conn, &key_pattern(&name))
                .await
                .unwrap()
                .is_empty()
        );
        let listed: Vec<String> = redis::cmd("ZRANGE")
            .arg(APALIS_QUEUES)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!listed.iter().any(|q| q.starts_with(&name)), "{listed:?}");

        // A name that already has keys is refused, and its keys are left alone.
        let taken = format!("{name}:someone-elses");
        let _: () = redis::cmd("SET")
            .arg(&taken)
            .arg(1)
            .query_async(&mut conn)
            .await
            .unwrap();
        let refused = queue_bench(&spec, &name, &options).await.unwrap_err();
        assert!(refused.to_string().contains("fresh"), "{refused}");
        let kept: u64 = redis::cmd("EXISTS")
            .arg(&taken)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(kept, 1);
        let _: u64 = redis::cmd("DEL")
            .arg(&taken)
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    #[test]
    fn percentiles_are_nearest_rank_and_the_median_is_the_middle() {
        let sorted: Vec<u64> = (1..=200).collect();
        assert_eq!(nearest_rank(&sorted, 50.0), 100);
        assert_eq!(nearest_rank(&sorted, 99.0), 198);
        assert_eq!(nearest_rank(&sorted, 100.0), 200);
        assert_eq!(nearest_rank(&[7], 99.0), 7);
        assert_eq!(nearest_rank(&[], 50.0), 0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5);
    }

    #[test]
    fn keys_patterns_escape_globs_and_numbers_read_well() {
        assert_eq!(key_pattern("tm-bench"), "tm-bench*");
        assert_eq!(key_pattern("a*b?[c]"), "a\\*b\\?\\[c\\]*");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(millis(Duration::from_micros(420)), "0.42 ms");
        assert_eq!(millis(Duration::from_millis(105)), "105 ms");
        let mut jitter = Jitter::new();
        for _ in 0..1000 {
            let d = jitter.between(SPACING.0, SPACING.1);
            assert!(SPACING.0 <= d && d <= SPACING.1);
        }
    }
}
