//! `tidemark`: the command line. Today it runs the platform simulators standalone; the daemon's
//! commands (`serve`, `worker`, `migrate`, `connection`, `fetch`/`send`/`sync`, `token`, `demo`,
//! `bench`) join it with the daemon.

mod config;

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one platform simulator standalone on a loopback address until interrupted.
    Sim(SimArgs),
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TIDEMARK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Sim(args) => run_sim(args).await,
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
            (
                RunningSim::serve(args.addr, sim.router()).await?,
                credentials,
            )
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
                        command: Command::Sim(SimArgs { products: 7, .. })
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
        }) = cli
        else {
            panic!("arguments should parse");
        };
        assert!(run_sim(args).await.is_err());
    }
}
