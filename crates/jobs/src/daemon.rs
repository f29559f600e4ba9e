//! The daemon's processes: apalis workers under a Monitor, the scheduler, the reconciler and
//! (on Redis) the promoter of due messages, until shutdown.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use tidemark_core::JobRunId;
use tidemark_engine::Engine;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::runner::{Runner, RunnerStats};
use crate::{Jobs, JobsError, Queue, RunMessage};

/// Which loops this process runs. `tidemark serve` runs them all; `tidemark worker` runs the
/// workers and the reconciler (every daemon reconciles, DESIGN §2), not the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub workers: bool,
    pub scheduler: bool,
    pub reconciler: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        workers: true,
        scheduler: true,
        reconciler: true,
    };
    /// `tidemark worker`.
    pub const WORKER: Roles = Roles {
        workers: true,
        scheduler: false,
        reconciler: true,
    };
    /// Workers alone (tests that play the reconciler's part themselves).
    pub const WORKERS_ONLY: Roles = Roles {
        workers: true,
        scheduler: false,
        reconciler: false,
    };
}

/// This process's name among the daemons: `{host}-{pid}-{start}`. Worker names add the role
/// and the restart count, since apalis refuses a name it saw alive within a heartbeat.
pub fn process_name() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let start = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000 % 100_000_000;
    // Several daemons in one process (tests) get names of their own.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{host}-{}-{start}-{n}", std::process::id())
}

/// A running daemon. Dropping it does not stop it; call [`Daemon::shutdown`].
#[derive(Debug)]
pub struct Daemon {
    stats: Arc<RunnerStats>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    process: String,
}

/// Delay before a worker's `restarts`-th restart: 1, 2, 4 … 30 s (Monitor restarts at once).
fn restart_backoff(restarts: usize) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    let exp = u32::try_from(restarts - 1).unwrap_or(u32::MAX).min(5);
    Duration::from_secs(1u64 << exp).min(Duration::from_secs(30))
}

async fn handle(message: RunMessage, runner: Data<Arc<Runner>>) -> Result<(), BoxDynError> {
    // Spawned: a queue worker that dies (Redis flushed, connection lost) drops its in-flight
    // handlers, and a run dropped half way would hold its lease until it expired, unsettled.
    // The run goes on to its end and settles its row; the queue message is only a trigger.
    let runner = Arc::clone(&runner);
    if let Err(error) = tokio::spawn(async move { runner.run(JobRunId(message.run)).await }).await {
        tracing::error!(run = message.run, %error, "job run handler ended badly");
    }
    Ok(())
}

/// The workers of one backend under a Monitor that restarts them, with a backoff and a
/// fresh name each time, whatever made them stop.
macro_rules! monitor {
    ($storage:expr, $runner:expr, $poll:expr, $concurrency:expr, $name:expr, $signal:expr) => {{
        let storage = $storage;
        let runner = $runner;
        let poll: Duration = $poll;
        let concurrency: usize = $concurrency;
        let name: String = $name;
        let stats = runner.stats().clone();
        Monitor::new()
            .register(move |restarts| {
                let backoff = restart_backoff(restarts);
                WorkerBuilder::new(format!("worker-{name}-{restarts}"))
                    .backend(
                        storage
                            .clone()
                            .poll_with_interval(poll)
                            .before_start(move |_| async move {
                                tokio::time::sleep(backoff).await;
                                Ok(())
                            }),
                    )
                    .data(runner.clone())
                    .concurrency(concurrency)
                    .build(handle)
            })
            .should_restart(move |worker, error| {
                stats.worker_restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(worker = worker.name(), %error, "queue worker stopped; restarting it");
                true
            })
            .shutdown_timeout(Duration::from_secs(120))
            .run_with_signal($signal)
            .await
    }};
}

impl Daemon {
    /// Starts the loops of `roles`. The engine is only used by workers.
    pub async fn start(jobs: Jobs, engine: Engine, roles: Roles) -> Result<Self, JobsError> {
        let (shutdown, signal) = watch::channel(false);
        let process = process_name();
        let mut tasks = Vec::new();
        let runner = Arc::new(Runner::new(
            jobs.clone(),
            engine,
            process.clone(),
            signal.clone(),
        ));
        let stats = runner.stats().clone();
        if roles.workers {
            // A backlog left while no worker ran must not reach the worker's fetch in one go.
            jobs.queue().promote_due().await?;
            let config = jobs.config().clone();
            let queue = jobs.queue().clone();
            let name = process.clone();
            let stop = wait_for(signal.clone());
            tasks.push((
                "workers",
                tokio::spawn(async move {
                    let result = match queue {
                        Queue::Sqlite { storage, .. } => monitor!(
                            storage,
                            runner,
                            config.poll_interval,
                            config.concurrency,
                            name,
                            stop
                        ),
                        Queue::Redis { storage, .. } => monitor!(
                            storage,
                            runner,
                            config.poll_interval,
                            config.concurrency,
                            name,
                            stop
                        ),
                    };
                    if let Err(error) = result {
                        tracing::error!(%error, "queue workers stopped");
                    }
                }),
            ));
            if matches!(jobs.queue(), Queue::Redis { .. }) {
                let jobs = jobs.clone();
                tasks.push((
                    "promoter",
                    every(Duration::from_secs(1), signal.clone(), move || {
                        let jobs = jobs.clone();
                        async move {
                            if let Err(error) = jobs.queue().promote_due().await {
                                tracing::warn!(%error, "due messages not promoted");
                            }
                        }
                    }),
                ));
            }
        }
        if roles.scheduler {
            let jobs = jobs.clone();
            let tick = jobs.config().scheduler_tick;
            tasks.push((
                "scheduler",
                every(tick, signal.clone(), move || {
                    let jobs = jobs.clone();
                    async move {
                        if let Err(error) = crate::schedule::schedule_pass(&jobs).await {
                            tracing::warn!(%error, "scheduler pass failed");
                        }
                    }
                }),
            ));
        }
        if roles.reconciler {
            let jobs = jobs.clone();
            let interval = jobs.config().reconcile_interval;
            let mut passes = 0u64;
            tasks.push((
                "reconciler",
                every(interval, signal.clone(), move || {
                    let jobs = jobs.clone();
                    passes += 1;
                    // Pruning is housekeeping: once a few minutes is plenty.
                    let prune = passes % 60 == 1;
                    async move {
                        match crate::reconciler::reconcile_pass(&jobs).await {
                            Ok(pass) if pass != Default::default() => {
                                tracing::info!(?pass, "reconciler pass");
                            }
                            Ok(_) => {}
                            Err(error) => tracing::warn!(%error, "reconciler pass failed"),
                        }
                        if prune {
                            match crate::reconciler::prune(&jobs).await {
                                Ok((entries, runs)) if entries + runs > 0 => {
                                    tracing::info!(
                                        entries,
                                        runs,
                                        "pruned finished queue entries and old job runs"
                                    );
                                }
                                Ok(_) => {}
                                Err(error) => tracing::warn!(%error, "pruning failed"),
                            }
                        }
                    }
                }),
            ));
        }
        tracing::info!(process = %process, queue = jobs.queue().backend(), ?roles, "daemon started");
        Ok(Self {
            stats,
            shutdown,
            tasks,
            process,
        })
    }

    /// What this daemon's workers did.
    pub fn stats(&self) -> &Arc<RunnerStats> {
        &self.stats
    }

    pub fn process(&self) -> &str {
        &self.process
    }

    /// Stops every loop: running jobs stop at their next checkpoint (saved) and go back to
    /// queued; the workers wait for them, up to two minutes.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for (name, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::warn!(task = name, %error, "daemon task ended badly");
            }
        }
        tracing::info!(process = %self.process, "daemon stopped");
    }
}

async fn wait_for(mut signal: watch::Receiver<bool>) -> std::io::Result<()> {
    while !*signal.borrow() {
        if signal.changed().await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Runs `pass` every `period` until the signal; a pass is never run twice at once.
fn every<F, Fut>(period: Duration, signal: watch::Receiver<bool>, mut pass: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = wait_for(signal);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => pass().await,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_up_to_half_a_minute() {
        let delays: Vec<u64> = (0..8).map(|n| restart_backoff(n).as_secs()).collect();
        assert_eq!(delays, vec![0, 1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn process_names_are_safe_for_queue_keys() {
        let name = process_name();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{name}"
        );
        assert!(name.contains(&std::process::id().to_string()));
    }
}
