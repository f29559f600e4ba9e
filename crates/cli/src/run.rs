//! The daemon commands (`serve`, `worker`) and the commands that queue work and follow it
//! (`fetch`, `send`, `sync`).

use std::time::Duration;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tidemark_engine::{FetchRequest, FetchScope};
use tidemark_jobs::{Daemon, Jobs, Roles};
use tidemark_store::Account;
use tidemark_store::{JobRun, JobState};

use crate::admin::find;
use crate::context::App;

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "SIGTERM cannot be watched; Ctrl-C still stops the daemon");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// `tidemark serve` (every role and the HTTP server) and `tidemark worker` (workers and the reconciler),
/// until SIGTERM or Ctrl-C; running jobs stop at their next checkpoint and go back to queued.
pub async fn daemon(app: &App, roles: Roles, http: bool) -> Result<()> {
    let jobs = app.jobs().await?;
    let daemon = Daemon::start(jobs.clone(), app.engine()?, roles).await?;
    let server = if http {
        Some(
            crate::http::serve(app.config.listen, app, jobs.clone(), daemon.stats().clone())
                .await?,
        )
    } else {
        None
    };
    if let Some(server) = &server {
        tracing::info!(url = %server.url, "serving console");
    }
    shutdown_signal().await;
    tracing::info!("shutting down: running jobs stop at their next checkpoint");
    if let Some(server) = server {
        server.stop().await;
    }
    daemon.shutdown().await;
    Ok(())
}

/// What `fetch`, `send` and `sync` queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Fetch { full: bool },
    Send,
    Sync { full: bool },
}

/// Queues the work on a connection and, with `wait`, follows it with a progress bar; fails
/// (non-zero exit) when the run fails or is cancelled.
pub async fn enqueue(
    app: &App,
    account: &Account,
    name: &str,
    work: Work,
    wait: bool,
) -> Result<()> {
    let connection = find(app, account, name).await?;
    let jobs = app.jobs().await?;
    let request = |full: bool| {
        FetchRequest::new(if full {
            FetchScope::Full
        } else {
            FetchScope::Incremental
        })
    };
    let submitted = match work {
        Work::Fetch { full } => {
            jobs.fetch(account.id, connection.id, &request(full), "cli")
                .await?
        }
        Work::Sync { full } => {
            jobs.sync(account.id, connection.id, &request(full), "cli")
                .await?
        }
        Work::Send => jobs.send(account.id, connection.id, "cli").await?,
    };
    let run = submitted.run;
    println!(
        "{} {} run {} on {name}{}",
        if submitted.created {
            "queued"
        } else {
            "already queued:"
        },
        run.kind.as_str(),
        run.id,
        if connection.paused {
            " (the connection is paused: it runs after resume)"
        } else {
            ""
        }
    );
    if !wait {
        return Ok(());
    }
    let done = follow(&jobs, account, &run, name).await?;
    match done.state {
        JobState::Succeeded => Ok(()),
        state => bail!(
            "{} run {} {}: {}",
            done.kind.as_str(),
            done.id,
            state.as_str(),
            done.error.as_deref().unwrap_or("no error recorded")
        ),
    }
}

/// A progress bar for one run, until it finishes.
pub async fn follow(jobs: &Jobs, account: &Account, run: &JobRun, label: &str) -> Result<JobRun> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix:<28} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} {label}", run.kind.as_str()));
    bar.enable_steady_tick(Duration::from_millis(120));
    let started = std::time::Instant::now();
    let mut hinted = false;
    let done = jobs
        .wait(account.id, run.id, Duration::from_millis(200), |current| {
            let scanned = current.progress["scanned"].as_u64().unwrap_or(0);
            let sent = current.progress["sent"].as_u64().unwrap_or(0);
            match current.progress["total"].as_u64() {
                Some(total) => {
                    bar.set_length(total);
                    bar.set_position(scanned.min(total));
                }
                None => bar.set_position(scanned),
            }
            bar.set_message(format!("{} · scanned {scanned} · sent {sent}", current.state.as_str()));
            if current.state == JobState::Queued && !hinted && started.elapsed() > Duration::from_secs(10) {
                hinted = true;
                bar.println("no worker has started it yet: is `tidemark serve` (or `tidemark worker`) running?");
            }
        })
        .await?;
    bar.finish_and_clear();
    // One line that stays, on a terminal or in a log.
    println!(
        "{} {label}: {} in {:.1} s (scanned {}, sent {}){}",
        done.kind.as_str(),
        done.state.as_str(),
        started.elapsed().as_secs_f64(),
        done.progress["scanned"].as_u64().unwrap_or(0),
        done.progress["sent"].as_u64().unwrap_or(0),
        done.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    Ok(done)
}
