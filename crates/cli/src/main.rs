//! `tidemark`: the command line. `serve` runs the daemon (workers, scheduler, reconciler, HTTP);
//! `worker` only workers; `migrate`, `connection`, `token` administer the store; `fetch`, `send`
//! and `sync` queue work and follow it; `demo` runs everything against simulators; `sim` runs
//! one simulator alone.

mod admin;
mod config;
mod context;
mod demo;
mod http;
mod run;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use tidemark_jobs::Roles;
use tidemark_sim::FaultConfig;
use tidemark_sim::RunningSim;
use tidemark_sim::mercadolibre::{MlConfig, MlSim};
use tidemark_sim::shopify::{ShopifyConfig, ShopifySim};
use tidemark_sim::woocommerce::{WooConfig, WooSim};

#[derive(Debug, Parser)]
#[command(
    name = "tidemark",
    version,
    about = "Keeps a merchant's products and orders in step across selling platforms."
)]
struct Cli {
    /// The configuration file (default: config/tidemark.toml when it exists). Every key can
    /// also be set by a TIDEMARK_* environment variable.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The account the command acts for (created on first use).
    #[arg(long, global = true, default_value = "default")]
    account: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: workers, scheduler, reconciler and the HTTP listener, until SIGTERM.
    Serve,
    /// Run workers (and the reconciler) without the scheduler or HTTP: scale-out next to a
    /// `serve`, until SIGTERM.
    Worker,
    /// Bring the store's schema up to date.
    Migrate,
    /// Add, list, show, pause, resume or configure connections.
    #[command(subcommand)]
    Connection(admin::ConnectionCommand),
    /// Fetch a connection's changes (or everything with --full) into tidemark.
    Fetch(WorkArgs),
    /// Send a connection its queued changes.
    Send(WorkArgs),
    /// Fetch and send at once.
    Sync(WorkArgs),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The embedded daemon with three simulated platforms: a sync to watch, then the console.
    Demo(demo::DemoArgs),
    /// Run one platform simulator standalone on a loopback address until interrupted.
    Sim(SimArgs),
    /// Benchmarks (loopback only, bounded in time).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// No-op jobs through the queue as the daemon runs it: jobs/s and enqueue-to-start
    /// latency on SQLite and (with --redis) Redis, beside a raw LPUSH/BRPOP loop.
    Queue(QueueBenchArgs),
}

#[derive(Debug, clap::Args)]
struct QueueBenchArgs {
    /// No-op jobs per throughput repetition.
    #[arg(long, default_value_t = 20_000)]
    jobs: u64,
    /// Enqueue-to-start latency samples.
    #[arg(long, default_value_t = 200)]
    samples: u64,
    #[arg(long, default_value_t = 3)]
    repetitions: u32,
    /// A Redis server to measure too (keys under a fresh prefix, deleted afterwards).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

#[derive(Debug, clap::Args)]
struct WorkArgs {
    /// The connection's name.
    connection: String,
    /// Scan everything (with deletion detection) instead of what changed (fetch and sync).
    #[arg(long)]
    full: bool,
    /// Follow the run with a progress bar until it ends; exit non-zero if it fails (default).
    #[arg(long, overrides_with = "no_wait")]
    wait: bool,
    /// Queue the run and exit.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token for the account; it is printed once.
    Create {
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SimPlatform {
    Shopify,
    Woocommerce,
    Mercadolibre,
}

#[derive(Debug, clap::Args)]
struct SimArgs {
    /// Which platform to simulate.
    platform: SimPlatform,
    /// Where to listen; loopback addresses only (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Products (listings) in the seeded catalogue.
    #[arg(long, default_value_t = 1_000)]
    products: u64,
    /// Orders in the seeded catalogue.
    #[arg(long, default_value_t = 20)]
    orders: u64,
    /// Seed of the catalogue: the same seed gives the same catalogue.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fault configuration as JSON (see crates/sim/README.md), e.g. '{"server_error":0.05}'.
    #[arg(long)]
    faults: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::Sim(args) = cli.command {
        init_tracing(config::LogFormat::Human);
        return run_sim(args).await;
    }
    if let Command::Bench(BenchCommand::Queue(args)) = cli.command {
        init_tracing(config::LogFormat::Human);
        return bench_queue(args).await;
    }
    let config = config::Config::load(cli.config.as_deref())?;
    init_tracing(config.log_format);
    if let Command::Demo(args) = cli.command {
        return demo::run(config, args).await;
    }
    let app = context::App::open(config).await?;
    let mut out = std::io::stdout();
    let result = match cli.command {
        Command::Serve => run::daemon(&app, Roles::ALL, true).await,
        Command::Worker => run::daemon(&app, Roles::WORKER, false).await,
        // Opening the store migrated it.
        Command::Migrate => {
            println!(
                "the store at {} is up to date",
                context::redact(&app.config.database_url())
            );
            Ok(())
        }
        Command::Connection(command) => {
            let account = app.account(&cli.account).await?;
            admin::connection(&app, &account, command, &mut out).await
        }
        Command::Token(TokenCommand::Create { name }) => {
            let account = app.account(&cli.account).await?;
            admin::token_create(&app, &account, &name, &mut out).await
        }
        Command::Fetch(args) => {
            work(&app, &cli.account, args, |full| run::Work::Fetch { full }).await
        }
        Command::Sync(args) => {
            work(&app, &cli.account, args, |full| run::Work::Sync { full }).await
        }
        Command::Send(args) => work(&app, &cli.account, args, |_| run::Work::Send).await,
        Command::Demo(_) | Command::Sim(_) | Command::Bench(_) => Ok(()),
    };
    app.store.close().await;
    result
}

async fn work(
    app: &context::App,
    account: &str,
    args: WorkArgs,
    work: impl FnOnce(bool) -> run::Work,
) -> Result<()> {
    let account = app.account(account).await?;
    run::enqueue(
        app,
        &account,
        &args.connection,
        work(args.full),
        !args.no_wait,
    )
    .await
}

async fn bench_queue(args: QueueBenchArgs) -> Result<()> {
    let jobs_config = tidemark_jobs::JobsConfig::default();
    let options = tidemark_jobs::bench::QueueBenchOptions {
        jobs: args.jobs,
        latency_samples: args.samples,
        repetitions: args.repetitions,
        ..tidemark_jobs::bench::QueueBenchOptions::default()
    };
    let scratch = tempfile::tempdir().context("cannot make a scratch directory")?;
    let name = format!("tidemark-bench-{}", std::process::id());
    let mut specs = vec![tidemark_jobs::QueueSpec::Sqlite(
        scratch.path().join("queue.db"),
    )];
    if let Some(url) = &args.redis {
        specs.push(tidemark_jobs::QueueSpec::parse(url, scratch.path())?);
    }
    println!(
        "daemon settings: concurrency {}, poll every {} ms",
        options.concurrency,
        jobs_config.poll_interval.as_millis()
    );
    for spec in specs {
        let report = tidemark_jobs::bench::queue_bench(&spec, &name, &options).await?;
        println!("{}", report.table());
    }
    Ok(())
}

fn init_tracing(format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TIDEMARK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,apalis=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Json => builder.json().init(),
        config::LogFormat::Human => builder.init(),
    }
}

async fn run_sim(args: SimArgs) -> Result<()> {
    // The simulators answer anyone who asks; they stay on this machine.
    if !args.addr.ip().is_loopback() {
        bail!(
            "--addr {} is not a loopback address: simulators serve only on 127.0.0.0/8 or ::1",
            args.addr
        );
    }
    let faults = match &args.faults {
        Some(json) => {
            let config: FaultConfig = serde_json::from_str(json)
                .context("--faults is not a valid fault configuration")?;
            config
                .validate()
                .map_err(anyhow::Error::msg)
                .context("--faults")?;
            config
        }
        None => FaultConfig::none(),
    };
    let (running, credentials) = match args.platform {
        SimPlatform::Shopify => {
            let config = ShopifyConfig {
                products: args.products,
                orders: args.orders,
                seed: args.seed,
                ..ShopifyConfig::default()
            };
            let credentials = format!(
                "X-Shopify-Access-Token {}, API version {}, cost bucket {} points restoring {}/s",
                config.access_token, config.api_version, config.bucket_max, config.restore_rate
            );
            let sim = ShopifySim::new(config, faults);
            let running = RunningSim::serve(args.addr, sim.router()).await?;
            // Bulk operation files and media are served from the simulator's own address.
            sim.set_base_url(&running.base_url);
            (running, credentials)
        }
        SimPlatform::Woocommerce => {
            let config = WooConfig {
                products: args.products,
                orders: args.orders,
                seed: args.seed,
                ..WooConfig::default()
            };
            let credentials = format!(
                "consumer key {}, consumer secret {}",
                config.consumer_key, config.consumer_secret
            );
            let sim = WooSim::new(config, faults);
            (
                RunningSim::serve(args.addr, sim.router()).await?,
                credentials,
            )
        }
        SimPlatform::Mercadolibre => {
            let config = MlConfig {
                items: args.products,
                orders: args.orders,
                seed: args.seed,
                ..MlConfig::default()
            };
            let credentials = format!(
                "user id {}, access token {}, refresh token {}, client id {}, client secret {}",
                config.user_id,
                config.access_token,
                config.refresh_token,
                config.client_id,
                config.client_secret
            );
            let sim = MlSim::new(config, faults);
            (
                RunningSim::serve(args.addr, sim.router()).await?,
                credentials,
            )
        }
    };
    println!(
        "{:?} simulator serving on {} ({} products, seed {})",
        args.platform, running.base_url, args.products, args.seed
    );
    println!("credentials: {credentials}");
    println!(
        "admin: {}/_sim/stats, {}/_sim/faults",
        running.base_url, running.base_url
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    running.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_parses() {
        for platform in ["shopify", "woocommerce", "mercadolibre"] {
            let cli = Cli::try_parse_from(["tidemark", "sim", platform, "--products", "7"]);
            assert!(
                matches!(
                    cli,
                    Ok(Cli {
                        command: Command::Sim(SimArgs { products: 7, .. }),
                        ..
                    })
                ),
                "{platform}"
            );
        }
        assert!(Cli::try_parse_from(["tidemark", "sim", "amazon"]).is_err());
    }

    #[tokio::test]
    async fn simulators_stay_on_loopback() {
        let cli = Cli::try_parse_from(["tidemark", "sim", "shopify", "--addr", "0.0.0.0:8080"]);
        let Ok(Cli {
            command: Command::Sim(args),
            ..
        }) = cli
        else {
            panic!("arguments should parse");
        };
        let error = run_sim(args).await.err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("not a loopback address")));
    }

    #[tokio::test]
    async fn bad_fault_settings_are_refused() {
        let cli = Cli::try_parse_from([
            "tidemark",
            "sim",
            "woocommerce",
            "--faults",
            r#"{"slow":2}"#,
        ]);
        let Ok(Cli {
            command: Command::Sim(args),
            ..
        }) = cli
        else {
            panic!("arguments should parse");
        };
        assert!(run_sim(args).await.is_err());
    }
}
