//! `tidemark demo`: the embedded daemon (SQLite store and queue in a scratch directory) with
//! three simulators standing in for the platforms — a Shopify shop with products, an empty
//! WooCommerce shop and a MercadoLibre account with orders — connected with sensible
//! settings, synced with progress bars, summarised, and then served until Ctrl-C.
//!
//! The connections are made as an operator would make them: platform settings and sealed
//! credentials in the store, connectors built from the registry, work through the queue.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use rust_decimal::Decimal;
use tidemark_connector::sealing;
use tidemark_core::{ConnectionSettings, OrderDefaults, OrderStatus, PlatformKind};
use tidemark_engine::{FetchRequest, FetchScope};
use tidemark_jobs::{Daemon, Roles};
use tidemark_sim::mercadolibre::{MlConfig, MlSim};
use tidemark_sim::shopify::{ShopifyConfig, ShopifySim};
use tidemark_sim::woocommerce::{WooConfig, WooSim};
use tidemark_sim::{FaultConfig, RunningSim};
use tidemark_store::Account;
use tidemark_store::{JobRunFilter, JobState, NewConnection};

use crate::config::Config;
use crate::context::{App, now};
use crate::run::{follow, shutdown_signal};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Products in the simulated Shopify shop.
    #[arg(long, default_value_t = 2_000)]
    pub products: u64,
    /// Orders in the simulated MercadoLibre account.
    #[arg(long, default_value_t = 25)]
    pub orders: u64,
    /// Where the console listens (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Keep the demo's data here instead of a scratch directory removed at exit.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

struct Sims {
    shopify: (ShopifySim, RunningSim, ShopifyConfig),
    woo: (WooSim, RunningSim, WooConfig),
    ml: (MlSim, RunningSim, MlConfig),
}

async fn start_sims(args: &DemoArgs) -> Result<Sims> {
    let shopify_config = ShopifyConfig {
        products: args.products,
        orders: 0,
        seed: 1,
        ..ShopifyConfig::default()
    };
    let shopify = ShopifySim::new(shopify_config.clone(), FaultConfig::none());
    let shopify_run = shopify.serve().await?;
    let woo_config = WooConfig {
        products: 0,
        orders: 0,
        ..WooConfig::default()
    };
    let woo = WooSim::new(woo_config.clone(), FaultConfig::none());
    let woo_run = woo.serve().await?;
    let ml_config = MlConfig {
        items: 40,
        orders: args.orders,
        seed: 2,
        rate_per_second: Some(50.0),
        rate_burst: 20,
        ..MlConfig::default()
    };
    let ml = MlSim::new(ml_config.clone(), FaultConfig::none());
    let ml_run = ml.serve().await?;
    Ok(Sims {
        shopify: (shopify, shopify_run, shopify_config),
        woo: (woo, woo_run, woo_config),
        ml: (ml, ml_run, ml_config),
    })
}

async fn connect(
    app: &App,
    account: &Account,
    name: &str,
    platform: PlatformKind,
    settings: ConnectionSettings,
    platform_settings: serde_json::Value,
    credentials: serde_json::Value,
) -> Result<tidemark_core::ConnectionId> {
    let sealed = sealing::seal_json(&app.key, &credentials)?;
    let connection = app
        .store
        .create_connection(
            &NewConnection {
                account: account.id,
                platform,
                name: name.to_owned(),
                settings,
                platform_settings,
                credentials: Some(sealed),
            },
            now(),
        )
        .await
        .with_context(|| format!("creating the {name} connection"))?;
    Ok(connection.id)
}

pub async fn run(mut config: Config, args: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let scratch = match &args.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().context("cannot make a scratch directory")?),
    };
    config.data_dir = match (&args.data_dir, &scratch) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => dir.path().to_path_buf(),
        (None, None) => bail!("no data directory"),
    };
    config.database_url = None;
    config.queue_url = "sqlite".into();
    config.listen = args.listen;
    // The simulators serve their images on loopback.
    config.images.allow_private = true;
    println!("tidemark demo: data in {}", config.data_dir.display());

    let sims = start_sims(&args).await?;
    let app = App::open(config).await?;
    let account = app.account("demo").await?;
    if !app.store.list_connections(account.id).await?.is_empty() {
        bail!(
            "{} already holds a demo; pass another --data-dir or none",
            app.config.data_dir.display()
        );
    }
    let (_, shopify_run, shopify_config) = &sims.shopify;
    let (woo, woo_run, woo_config) = &sims.woo;
    let (_, ml_run, ml_config) = &sims.ml;
    let shopify_id = connect(
        &app,
        &account,
        "Shopify",
        PlatformKind::Shopify,
        ConnectionSettings {
            master: true,
            ..ConnectionSettings::default()
        },
        // A full scan of a shop this size runs as one bulk operation, as it should on Shopify.
        serde_json::json!({
            "shop_url": shopify_run.base_url,
            "api_version": shopify_config.api_version,
            "bulk_threshold": 500,
        }),
        serde_json::json!({ "access_token": shopify_config.access_token }),
    )
    .await?;
    let mut woo_settings = ConnectionSettings {
        clone_new_products: true,
        clone_new_orders: true,
        order_defaults: OrderDefaults {
            status: Some(OrderStatus::Processing),
            number_prefix: Some("ML-".into()),
            note: Some("Sold on MercadoLibre".into()),
            ..OrderDefaults::default()
        },
        ..ConnectionSettings::default()
    };
    woo_settings.price.margin_percent = Decimal::from(10);
    let woo_id = connect(
        &app,
        &account,
        "WooCommerce",
        PlatformKind::Woocommerce,
        woo_settings,
        serde_json::json!({ "base_url": woo_run.base_url }),
        serde_json::json!({ "consumer_key": woo_config.consumer_key, "consumer_secret": woo_config.consumer_secret }),
    )
    .await?;
    let ml_id = connect(
        &app,
        &account,
        "MercadoLibre",
        PlatformKind::Mercadolibre,
        ConnectionSettings::default(),
        serde_json::json!({
            "site_id": ml_config.site_id,
            "user_id": ml_config.user_id,
            "client_id": ml_config.client_id,
            "base_url": ml_run.base_url,
            "default_category_id": format!("{}1055", ml_config.site_id),
            "requests_per_second": 40,
        }),
        serde_json::json!({
            "client_secret": ml_config.client_secret,
            "access_token": ml_config.access_token,
            "refresh_token": ml_config.refresh_token,
        }),
    )
    .await?;
    println!(
        "connections: Shopify ({} products) → WooCommerce (empty; clones new products and orders, 10 % margin), MercadoLibre (40 items, {} orders)",
        args.products, args.orders
    );

    let jobs = app.jobs().await?;
    let daemon = Daemon::start(jobs.clone(), app.engine()?, Roles::ALL).await?;
    let full = FetchRequest::new(FetchScope::Full);
    let shopify_sync = jobs.sync(account.id, shopify_id, &full, "demo").await?.run;
    let ml_sync = jobs.sync(account.id, ml_id, &full, "demo").await?.run;
    let mut failed = Vec::new();
    for (run, label) in [(&shopify_sync, "Shopify"), (&ml_sync, "MercadoLibre")] {
        let done = follow(&jobs, &account, run, label).await?;
        if done.state != JobState::Succeeded {
            failed.push(format!("{label}: {}", done.error.unwrap_or_default()));
        }
    }
    // The WooCommerce sends the syncs queued (auto-send), until none is left.
    loop {
        let active = app
            .store
            .list_job_runs(
                account.id,
                &JobRunFilter {
                    connection: Some(woo_id),
                    states: vec![JobState::Queued, JobState::Running],
                    ..JobRunFilter::default()
                },
            )
            .await?;
        // Oldest first: the send the syncs queued before any the reconciler added.
        match active.last() {
            Some(run) => {
                let done = follow(&jobs, &account, run, "WooCommerce").await?;
                if done.state != JobState::Succeeded {
                    failed.push(format!("WooCommerce: {}", done.error.unwrap_or_default()));
                }
            }
            None => break,
        }
    }

    let shapes = woo.shapes();
    let variants: usize = shapes.values().map(|s| s.variation_skus.len()).sum();
    println!();
    println!("summary ({:.1} s)", started.elapsed().as_secs_f64());
    println!("  products on WooCommerce:  {}", woo.product_count());
    println!("  variants on WooCommerce:  {variants}");
    println!("  images on WooCommerce:    {}", woo.attachment_count());
    println!("  orders moved to WooCommerce: {}", woo.order_count());
    let issues: i64 = app
        .store
        .open_issue_counts(account.id)
        .await?
        .values()
        .sum();
    println!("  open issues: {issues}");
    for failure in &failed {
        println!("  failed: {failure}");
    }

    let server = match crate::http::serve(
        app.config.listen,
        &app,
        jobs.clone(),
        daemon.stats().clone(),
    )
    .await
    {
        Ok(server) => server,
        Err(error) => {
            // Another program holds the port: any free one will do for a demo.
            println!("{error:#}; using a free port instead");
            crate::http::serve(
                ([127, 0, 0, 1], 0).into(),
                &app,
                jobs.clone(),
                daemon.stats().clone(),
            )
            .await?
        }
    };
    let token = app
        .store
        .create_api_token(account.id, "demo", now())
        .await?;
    println!();
    println!("serving console at {}", server.url);
    println!("login token: {}", token.plaintext);
    println!("Ctrl-C stops the demo.");
    shutdown_signal().await;
    server.stop().await;
    daemon.shutdown().await;
    drop(scratch);
    Ok(())
}
