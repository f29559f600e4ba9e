//! `GET /metrics` in the Prometheus (OpenMetrics) text format: jobs by kind and state, records
//! scanned and sent, platform errors (open issues by platform and severity, job retries and
//! failures), queue depth, lease losses, webhooks. Counts only, never merchant data.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tidemark_jobs::RunnerStats;

use crate::state::Api;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

/// Prometheus metrics of this process and of the store it shares.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Metrics in the OpenMetrics text format", content_type = "application/openmetrics-text", body = String),
        (status = 503, description = "The store did not answer", body = String),
    ))]
pub async fn metrics(State(api): State<Api>) -> Response {
    match render(&api).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "metrics: the store did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, format!("store: {error}\n")).into_response()
        }
    }
}

async fn render(api: &Api) -> Result<String, String> {
    let store = api.store();
    let mut registry = Registry::with_prefix("tidemark");

    let jobs = Family::<Labels, Gauge>::default();
    for (kind, state, n) in store.job_run_counts().await.map_err(|e| e.to_string())? {
        jobs.get_or_create(&labels(&[
            ("kind", kind.as_str()),
            ("state", state.as_str()),
        ]))
        .set(n);
    }
    registry.register("jobs", "Job runs in the history by kind and state", jobs);

    let issues = Family::<Labels, Gauge>::default();
    for (platform, severity, n) in store
        .open_issue_counts_by_platform()
        .await
        .map_err(|e| e.to_string())?
    {
        issues
            .get_or_create(&labels(&[
                ("platform", platform.as_str()),
                ("severity", severity.as_str()),
            ]))
            .set(n);
    }
    registry.register(
        "platform_errors",
        "Open issues (errors platforms answered) by platform and severity",
        issues,
    );

    match api.jobs().queue().backlog().await {
        Ok(depth) => registry.register(
            "queue_depth",
            "Messages waiting in the job queue",
            gauge(i64::try_from(depth).unwrap_or(i64::MAX)),
        ),
        Err(error) => tracing::warn!(%error, "metrics: the queue did not answer"),
    }

    if let Some(stats) = api.runner_stats() {
        let n = RunnerStats::get;
        registry.register(
            "records_scanned",
            "Records read from platforms by runs that succeeded in this process",
            counter(n(&stats.records_scanned)),
        );
        registry.register(
            "records_sent",
            "Writes settled by runs that succeeded in this process",
            counter(n(&stats.records_sent)),
        );
        registry.register(
            "lease_losses",
            "Runs that lost their connection lease to another worker",
            counter(n(&stats.lease_lost)),
        );
        let outcomes = Family::<Labels, Counter>::default();
        for (outcome, value) in [
            ("started", n(&stats.started)),
            ("succeeded", n(&stats.succeeded)),
            ("retried", n(&stats.retried)),
            ("failed", n(&stats.failed)),
            ("stopped", n(&stats.stopped)),
            ("errors", n(&stats.errors)),
        ] {
            outcomes
                .get_or_create(&labels(&[("outcome", outcome)]))
                .inc_by(value);
        }
        registry.register(
            "job_outcomes",
            "Job runs handled by this process's workers, by outcome",
            outcomes,
        );
        registry.register(
            "worker_restarts",
            "Queue workers restarted after they stopped",
            counter(n(&stats.worker_restarts)),
        );
    }
    registry.register(
        "webhooks",
        "Webhook deliveries by outcome",
        api.metrics().webhooks.clone(),
    );
    registry.register(
        "auth_failures",
        "API requests refused for a missing or unknown token",
        api.metrics().auth_failures.clone(),
    );
    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| e.to_string())?;
    Ok(text)
}
