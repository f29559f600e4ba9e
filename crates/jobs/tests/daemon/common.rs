//! The jobs tests' set-up: each body runs twice, on the embedded backends (SQLite store and
//! SQLite queue) and on the scale-out ones (PostgreSQL store and Redis queue, when
//! `TIDEMARK_TEST_DATABASE_URL` and `TIDEMARK_TEST_REDIS_URL` are set). WooCommerce
//! simulators stand in for the platforms.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tidemark_connector::Connector;
use tidemark_core::{AccountId, ConnectionId, ConnectionSettings, PlatformKind, Timestamp};
use tidemark_engine::{Engine, EngineConfig, ImagePolicy, StaticConnectors, SystemClock};
use tidemark_jobs::{Jobs, JobsConfig, Queue, QueueSpec};
use tidemark_sim::RunningSim;
use tidemark_sim::woocommerce::{WooConfig, WooSim};
use tidemark_store::{JobRun, JobState, NewConnection, Store};

pub const REDIS_URL_VAR: &str = "TIDEMARK_TEST_REDIS_URL";

/// Tests that flush the whole Redis server take this exclusively; the others share it.
pub static REDIS_SERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A store and a queue of one backend pair, fresh for the test.
pub struct Backend {
    pub store: Store,
    pub queue: QueueSpec,
    pub queue_name: String,
    pub name: &'static str,
}

impl Backend {
    pub fn is_redis(&self) -> bool {
        matches!(self.queue, QueueSpec::Redis(_))
    }

    /// A configuration with every interval short enough for a test.
    pub fn config(&self) -> JobsConfig {
        JobsConfig {
            concurrency: 4,
            poll_interval: Duration::from_millis(20),
            lease_ttl: Duration::from_secs(3),
            heartbeat: Duration::from_millis(500),
            scheduler_tick: Duration::from_millis(200),
            reconcile_interval: Duration::from_millis(300),
            requeue_grace: Duration::from_secs(1),
            max_attempts: 3,
            retry_base: Duration::from_millis(300),
            retry_max: Duration::from_secs(2),
            busy_delay: Duration::from_secs(1),
            queue_name: self.queue_name.clone(),
            ..JobsConfig::default()
        }
    }

    pub async fn queue(&self, config: &JobsConfig) -> Queue {
        Queue::connect(&self.queue, &config.queue_name, Duration::from_secs(2))
            .await
            .expect("connect the queue")
    }
}

fn unique_queue() -> String {
    format!("tm-test-{}", hex::encode(rand::random::<[u8; 6]>()))
}

pub async fn run_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Backend) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tidemark_testkit::store::run_sqlite(move |store| async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = Backend {
            store,
            queue: QueueSpec::Sqlite(dir.path().join("queue.db")),
            queue_name: unique_queue(),
            name: "sqlite",
        };
        body(backend).await;
        drop(dir);
    })
    .await;
}

pub async fn run_redis_postgres<F, Fut>(exclusive: bool, body: F)
where
    F: FnOnce(Backend) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Ok(url) = std::env::var(REDIS_URL_VAR) else {
        println!("skipped: {REDIS_URL_VAR} unset");
        return;
    };
    if std::env::var(tidemark_testkit::store::DATABASE_URL_VAR).is_err() {
        println!(
            "skipped: {} unset",
            tidemark_testkit::store::DATABASE_URL_VAR
        );
        return;
    }
    let (_shared, _exclusive) = if exclusive {
        (None, Some(REDIS_SERVER.write().await))
    } else {
        (Some(REDIS_SERVER.read().await), None)
    };
    let name = unique_queue();
    let cleanup = (url.clone(), name.clone());
    tidemark_testkit::store::run_postgres(move |store| async move {
        body(Backend {
            store,
            queue: QueueSpec::Redis(url),
            queue_name: name,
            name: "redis+postgres",
        })
        .await;
    })
    .await;
    tidemark_testkit::redis_queue::delete_keys(&cleanup.0, &cleanup.1).await;
}

/// One body, two tests: `<name>::sqlite` and `<name>::redis_postgres`.
#[macro_export]
macro_rules! backend_test {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        $crate::backend_test!(@ false $(#[$meta])* async fn $name($backend) $body);
    };
    ($(#[$meta:meta])* exclusive async fn $name:ident($backend:ident) $body:block) => {
        $crate::backend_test!(@ true $(#[$meta])* async fn $name($backend) $body);
    };
    (@ $exclusive:literal $(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($backend: $crate::common::Backend) $body

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::common::run_sqlite(body).await;
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redis_postgres() {
                $crate::common::run_redis_postgres($exclusive, body).await;
            }
        }
    };
}

pub fn now() -> Timestamp {
    Timestamp::from_datetime(time::OffsetDateTime::now_utc())
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TIDEMARK_TEST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
}

/// A WooCommerce simulator with `products` seeded, served on loopback, and a connector to it
/// reading `per_page` products a page.
pub async fn woo(products: u64, per_page: u32) -> (WooSim, RunningSim, Arc<dyn Connector>) {
    let sim = WooSim::new(
        WooConfig {
            products,
            orders: 0,
            ..WooConfig::default()
        },
        tidemark_sim::FaultConfig::none(),
    );
    let running = sim.serve().await.expect("serve the WooCommerce simulator");
    let mut settings = tidemark_woocommerce::Settings::new(running.base_url.clone());
    settings.variation_concurrency = 8;
    settings.per_page = per_page;
    let connector: Arc<dyn Connector> = Arc::new(
        tidemark_woocommerce::WooCommerce::new(
            settings,
            tidemark_woocommerce::Keys {
                consumer_key: "ck_test".into(),
                consumer_secret: "cs_test".into(),
                webhook_secret: None,
            },
        )
        .expect("a WooCommerce connector"),
    );
    (sim, running, connector)
}

/// Two shops: a source with products and an empty target that clones new products.
pub struct Shops {
    pub store: Store,
    pub account: AccountId,
    pub source: ConnectionId,
    pub target: ConnectionId,
    pub source_sim: WooSim,
    pub target_sim: WooSim,
    pub connectors: StaticConnectors,
    _running: (RunningSim, RunningSim),
}

impl Shops {
    pub async fn new(store: &Store, products: u64, per_page: u32) -> Self {
        init_tracing();
        let account = store.create_account("Acme", now()).await.unwrap().id;
        let (source_sim, source_run, source_conn) = woo(products, per_page).await;
        let (target_sim, target_run, target_conn) = woo(0, per_page).await;
        let mut connectors = StaticConnectors::new();
        let mut add = async |name: &str, settings: ConnectionSettings, conn: Arc<dyn Connector>| {
            let id = store
                .create_connection(
                    &NewConnection {
                        account,
                        platform: PlatformKind::Woocommerce,
                        name: name.into(),
                        settings,
                        platform_settings: serde_json::json!({}),
                        credentials: None,
                    },
                    now(),
                )
                .await
                .unwrap()
                .id;
            connectors.insert(id, conn);
            id
        };
        let source = add("Source", ConnectionSettings::default(), source_conn).await;
        let target = add(
            "Target",
            ConnectionSettings {
                clone_new_products: true,
                ..ConnectionSettings::default()
            },
            target_conn,
        )
        .await;
        Self {
            store: store.clone(),
            account,
            source,
            target,
            source_sim,
            target_sim,
            connectors,
            _running: (source_run, target_run),
        }
    }

    pub fn engine(&self) -> Engine {
        Engine::new(
            self.store.clone(),
            Arc::new(self.connectors.clone()),
            EngineConfig {
                images: ImagePolicy {
                    allow_private: true,
                    ..ImagePolicy::default()
                },
                ..EngineConfig::default()
            },
        )
        .unwrap()
    }

    pub async fn jobs(&self, backend: &Backend, config: JobsConfig) -> Jobs {
        let queue = backend.queue(&config).await;
        Jobs::new(self.store.clone(), queue, config, Arc::new(SystemClock))
    }
}

/// Polls `check` every 50 ms until it holds, failing the test after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for `run` to finish (up to `limit`) and returns it.
pub async fn finished(jobs: &Jobs, account: AccountId, run: &JobRun, limit: Duration) -> JobRun {
    tokio::time::timeout(
        limit,
        jobs.wait(account, run.id, Duration::from_millis(50), |_| {}),
    )
    .await
    .unwrap_or_else(|_| panic!("run {} did not finish within {limit:?}", run.id))
    .unwrap()
}

pub fn assert_succeeded(run: &JobRun) {
    assert_eq!(
        run.state,
        JobState::Succeeded,
        "run {} ({}) ended {:?}: {:?}",
        run.id,
        run.kind.as_str(),
        run.state,
        run.error
    );
}
