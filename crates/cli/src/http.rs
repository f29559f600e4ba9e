//! The daemon's HTTP listener: the API, webhooks, events, health, metrics and the console
//! (`tidemark_api::app`), until stopped.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use tidemark_api::{Api, ApiConfig};
use tidemark_jobs::{Jobs, RegistryConnectors, RunnerStats, builtin_registry};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::context::App;

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

pub async fn serve(
    addr: SocketAddr,
    app: &App,
    jobs: Jobs,
    stats: Arc<RunnerStats>,
) -> Result<Server> {
    // Its own connectors: the API only verifies webhooks with them, it never calls a platform.
    let connectors = Arc::new(RegistryConnectors::new(
        builtin_registry(),
        app.store.clone(),
        app.key.clone(),
    ));
    let api = Api::new(
        jobs,
        connectors,
        builtin_registry(),
        app.key.clone(),
        Some(stats),
        ApiConfig::default(),
    );
    let router = tidemark_api::app(api);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, router)
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
