//! The daemon's HTTP listener. Today it answers health and readiness and shows the daemon's
//! own status (no merchant data, so no login); the API and the console join it on the same
//! address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tidemark_jobs::{Jobs, RunnerStats};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Clone)]
struct Ctx {
    jobs: Jobs,
    stats: Arc<RunnerStats>,
}

pub struct Server {
    pub url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

pub async fn serve(addr: SocketAddr, jobs: Jobs, stats: Arc<RunnerStats>) -> Result<Server> {
    let app = Router::new()
        .route("/", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(Ctx { jobs, stats });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = result {
            tracing::error!(%error, "HTTP server stopped");
        }
    });
    Ok(Server {
        url: format!("http://{local}"),
        stop,
        task,
    })
}

/// Ready when the store and the queue answer.
async fn ready(State(ctx): State<Ctx>) -> impl IntoResponse {
    let store = ctx.jobs.store().ping().await;
    let queue = ctx.jobs.queue().ping().await;
    match (store, queue) {
        (Ok(()), Ok(())) => (StatusCode::OK, "ready".to_owned()),
        (store, queue) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "store: {}\nqueue: {}\n",
                store
                    .map(|_| "ok".to_owned())
                    .unwrap_or_else(|e| e.to_string()),
                queue
                    .map(|_| "ok".to_owned())
                    .unwrap_or_else(|e| e.to_string())
            ),
        ),
    }
}

async fn status(State(ctx): State<Ctx>) -> Html<String> {
    let s = &ctx.stats;
    let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let backlog = ctx
        .jobs
        .queue()
        .backlog()
        .await
        .map(|b| b.to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"));
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tidemark</title>\
         <style>body{{font:16px system-ui,sans-serif;margin:2rem;max-width:40rem}}\
         td{{padding:.2rem 1rem .2rem 0}}</style></head><body><h1>tidemark is running</h1>\
         <p>Queue: {queue}, {backlog} message(s) waiting.</p>\
         <table><tr><td>runs started</td><td>{started}</td></tr>\
         <tr><td>succeeded</td><td>{succeeded}</td></tr>\
         <tr><td>retrying</td><td>{retried}</td></tr><tr><td>failed</td><td>{failed}</td></tr>\
         <tr><td>stopped at a checkpoint</td><td>{stopped}</td></tr>\
         <tr><td>leases lost</td><td>{lost}</td></tr></table>\
         <p>Health: <a href=\"/healthz\">/healthz</a>, <a href=\"/readyz\">/readyz</a>.</p>\
         </body></html>",
        queue = ctx.jobs.queue().backend(),
        started = n(&s.started),
        succeeded = n(&s.succeeded),
        retried = n(&s.retried),
        failed = n(&s.failed),
        stopped = n(&s.stopped),
        lost = n(&s.lease_lost),
    ))
}
