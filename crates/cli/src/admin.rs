//! `tidemark connection …` and `tidemark token create`: an operator's view of the store. Output
//! goes to the writer given, so tests read what a person would see. Credentials are sealed
//! before they reach the store and never printed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow, bail};
use tidemark_connector::Credentials;
use tidemark_connector::sealing;
use tidemark_core::{Connection, ConnectionSettings, PlatformKind};
use tidemark_jobs::builtin_registry;
use tidemark_store::Account;
use tidemark_store::{ConnectionPatch, NewConnection};

use crate::context::{App, now};

#[derive(Debug, clap::Subcommand)]
pub enum ConnectionCommand {
    /// Add a connection to a platform.
    Add(AddArgs),
    /// List the account's connections with their state and queued changes.
    List,
    /// Show one connection: settings, schedule, clocks, queued changes (never credentials).
    Show { name: String },
    /// Pause a connection: its running jobs stop at their next page, queued ones wait.
    Pause { name: String },
    /// Resume a paused connection; the jobs that waited run.
    Resume { name: String },
    /// Change a connection's settings.
    Settings(SettingsArgs),
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The connection's name (unique within the account).
    pub name: String,
    /// shopify, woocommerce, mercadolibre or csv.
    #[arg(long)]
    pub platform: String,
    /// A platform setting, KEY=VALUE (e.g. base_url=https://shop.example), repeatable.
    #[arg(long = "platform-setting", value_name = "KEY=VALUE")]
    pub platform_settings: Vec<String>,
    /// A sync setting, KEY=VALUE (e.g. clone_new_products=true, price.margin_percent=15),
    /// repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// A JSON file holding the credentials object (e.g. {"access_token": "…"}); `-` reads
    /// standard input. Keeps secrets out of shell history.
    #[arg(long)]
    pub credentials_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SettingsArgs {
    pub name: String,
    /// A sync setting, KEY=VALUE; dotted keys reach into sections (price.margin_percent=15).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// A platform setting, KEY=VALUE.
    #[arg(long = "platform-setting", value_name = "KEY=VALUE")]
    pub platform_settings: Vec<String>,
    /// Replace the credentials with the JSON object in this file (`-` for standard input).
    #[arg(long)]
    pub credentials_file: Option<PathBuf>,
}

pub async fn connection(
    app: &App,
    account: &Account,
    command: ConnectionCommand,
    out: &mut dyn Write,
) -> Result<()> {
    match command {
        ConnectionCommand::Add(args) => add(app, account, args, out).await,
        ConnectionCommand::List => list(app, account, out).await,
        ConnectionCommand::Show { name } => show(app, account, &name, out).await,
        ConnectionCommand::Pause { name } => {
            let connection = find(app, account, &name).await?;
            app.jobs().await?.pause(account.id, connection.id).await?;
            writeln!(out, "{name}: paused (running jobs stop at their next page)")?;
            Ok(())
        }
        ConnectionCommand::Resume { name } => {
            let connection = find(app, account, &name).await?;
            let waiting = app.jobs().await?.resume(account.id, connection.id).await?;
            writeln!(
                out,
                "{name}: resumed; {} waiting job(s) sent to the workers",
                waiting.len()
            )?;
            Ok(())
        }
        ConnectionCommand::Settings(args) => settings(app, account, args, out).await,
    }
}

/// Creates an API token for the account and prints it, once.
pub async fn token_create(
    app: &App,
    account: &Account,
    name: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let token = app.store.create_api_token(account.id, name, now()).await?;
    writeln!(out, "{}", token.plaintext)?;
    writeln!(
        out,
        "(token {name:?} for account {:?}; shown once: only its hash is stored)",
        account.name
    )?;
    Ok(())
}

pub async fn find(app: &App, account: &Account, name: &str) -> Result<Connection> {
    let id = app
        .store
        .resolve_connection_name(account.id, name)
        .await
        .map_err(|_| anyhow!("no connection named {name:?} in account {:?}", account.name))?;
    app.store
        .get_connection(account.id, id)
        .await?
        .ok_or_else(|| anyhow!("no connection named {name:?} in account {:?}", account.name))
}

async fn add(app: &App, account: &Account, args: AddArgs, out: &mut dyn Write) -> Result<()> {
    let platform = PlatformKind::parse(&args.platform).ok_or_else(|| {
        anyhow!(
            "unknown platform {:?}: expected shopify, woocommerce, mercadolibre or csv",
            args.platform
        )
    })?;
    let platform_settings = assignments(serde_json::json!({}), &args.platform_settings)
        .context("--platform-setting")?;
    let settings = apply_settings(ConnectionSettings::default(), &args.settings)?;
    let credentials = match &args.credentials_file {
        Some(path) => read_credentials(path)?,
        None => serde_json::json!({}),
    };
    let registry = builtin_registry();
    registry
        .settings_schema(platform)?
        .check(
            &platform_settings,
            &Credentials::from_json(credentials.clone())?,
        )
        .with_context(|| format!("the {} settings", platform.as_str()))?;
    let sealed = sealing::seal_json(&app.key, &credentials)?;
    let connection = app
        .store
        .create_connection(
            &NewConnection {
                account: account.id,
                platform,
                name: args.name.clone(),
                settings,
                platform_settings,
                credentials: Some(sealed),
            },
            now(),
        )
        .await?;
    apply_schedule(app, account, &connection).await?;
    writeln!(
        out,
        "added {} connection {:?} (id {})",
        platform.as_str(),
        connection.name,
        connection.id
    )?;
    Ok(())
}

async fn settings(
    app: &App,
    account: &Account,
    args: SettingsArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let connection = find(app, account, &args.name).await?;
    let settings = if args.settings.is_empty() {
        None
    } else {
        Some(apply_settings(connection.settings.clone(), &args.settings)?)
    };
    let platform_settings = if args.platform_settings.is_empty() {
        None
    } else {
        Some(
            assignments(
                connection.platform_settings.clone(),
                &args.platform_settings,
            )
            .context("--platform-setting")?,
        )
    };
    let registry = builtin_registry();
    if let Some(path) = &args.credentials_file {
        let credentials = read_credentials(path)?;
        registry
            .settings_schema(connection.platform)?
            .check(
                platform_settings
                    .as_ref()
                    .unwrap_or(&connection.platform_settings),
                &Credentials::from_json(credentials.clone())?,
            )
            .context("the new credentials")?;
        let sealed = sealing::seal_json(&app.key, &credentials)?;
        app.store
            .set_connection_credentials(account.id, connection.id, Some(&sealed), now())
            .await?;
    }
    let updated = if settings.is_some() || platform_settings.is_some() {
        app.store
            .update_connection(
                account.id,
                connection.id,
                &ConnectionPatch {
                    name: None,
                    settings,
                    platform_settings,
                },
                now(),
            )
            .await?
    } else {
        connection
    };
    apply_schedule(app, account, &updated).await?;
    writeln!(out, "{}: settings saved", updated.name)?;
    writeln!(out, "{}", serde_json::to_string_pretty(&updated.settings)?)?;
    Ok(())
}

async fn list(app: &App, account: &Account, out: &mut dyn Write) -> Result<()> {
    let connections = app.store.list_connections(account.id).await?;
    let pending = app.store.pending_counts_by_connection(account.id).await?;
    writeln!(
        out,
        "{:<24} {:<13} {:<8} {:>8} {:>8} {:>8}  {:<20} {:<20}",
        "NAME", "PLATFORM", "STATE", "INSERTS", "UPDATES", "IMG DEL", "LAST FETCH", "LAST SEND"
    )?;
    for c in connections {
        let p = pending.get(&c.id).cloned().unwrap_or_default();
        writeln!(
            out,
            "{:<24} {:<13} {:<8} {:>8} {:>8} {:>8}  {:<20} {:<20}",
            c.name,
            c.platform.as_str(),
            if c.paused { "paused" } else { "active" },
            p.inserts,
            p.updates,
            p.image_deletes,
            c.last_fetch_at
                .map(|t| t.to_string())
                .unwrap_or_else(|| "never".into()),
            c.last_send_at
                .map(|t| t.to_string())
                .unwrap_or_else(|| "never".into()),
        )?;
    }
    Ok(())
}

async fn show(app: &App, account: &Account, name: &str, out: &mut dyn Write) -> Result<()> {
    let c = find(app, account, name).await?;
    let pending = app.store.pending_counts(account.id, c.id).await?;
    let schedule = app.store.get_schedule(account.id, c.id).await?;
    let sealed = app.store.connection_credentials(c.id).await?;
    let view = serde_json::json!({
        "id": c.id,
        "name": c.name,
        "platform": c.platform.as_str(),
        "paused": c.paused,
        "platform_settings": c.platform_settings,
        "settings": c.settings,
        "credentials": if sealed.is_some() { "set (sealed; never shown)" } else { "none" },
        "clocks": c.clocks,
        "last_fetch_at": c.last_fetch_at,
        "last_send_at": c.last_send_at,
        "queued_changes": { "inserts": pending.inserts, "updates": pending.updates, "image_deletes": pending.image_deletes },
        "schedule": schedule.map(|s| serde_json::json!({
            "fetch_interval_ms": s.fetch_interval_ms,
            "full_scan_cron": s.full_scan_cron,
            "next_fetch_at": s.next_fetch_at,
            "next_full_scan_at": s.next_full_scan_at,
        })),
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&view)?)?;
    Ok(())
}

/// The connection's schedule as its settings say (`fetch_interval_secs`, `daily_full_scan`).
async fn apply_schedule(app: &App, account: &Account, connection: &Connection) -> Result<()> {
    let interval = connection
        .settings
        .fetch_interval_secs
        .map(std::time::Duration::from_secs);
    let cron = connection.settings.daily_full_scan.as_deref();
    app.jobs()
        .await?
        .set_schedule(account.id, connection.id, interval, cron)
        .await
        .context("the schedule settings")?;
    Ok(())
}

/// Applies `KEY=VALUE` assignments to the settings, through their JSON form, so every key
/// and value is checked by the same rules the API uses.
fn apply_settings(
    settings: ConnectionSettings,
    assignments_: &[String],
) -> Result<ConnectionSettings> {
    let json = serde_json::to_value(&settings)?;
    let json = assignments(json, assignments_).context("--set")?;
    serde_json::from_value(json).map_err(|e| anyhow!("--set: {e}"))
}

/// `KEY=VALUE` pairs applied to a JSON object; dotted keys reach into objects; a value that
/// reads as JSON (a number, `true`, an object) is taken as such, anything else as a string.
fn assignments(mut target: serde_json::Value, pairs: &[String]) -> Result<serde_json::Value> {
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("{pair:?} is not KEY=VALUE"))?;
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        let mut node = &mut target;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() {
                bail!("{key:?} has an empty part");
            }
            let object = node
                .as_object_mut()
                .ok_or_else(|| anyhow!("{key:?}: {} is not a section", parts[..i].join(".")))?;
            if i + 1 == parts.len() {
                object.insert((*part).to_owned(), value.clone());
                break;
            }
            node = object
                .entry((*part).to_owned())
                .or_insert_with(|| serde_json::json!({}));
        }
    }
    Ok(target)
}

fn read_credentials(path: &PathBuf) -> Result<serde_json::Value> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .context("reading credentials from standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON object of credentials", path.display()))?;
    if !value.is_object() {
        bail!("{} must hold a JSON object of credentials", path.display());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_reach_into_sections_and_read_json_values() {
        let json = assignments(
            serde_json::json!({ "price": { "margin_percent": "0" } }),
            &[
                "price.margin_percent=15".into(),
                "clone_new_products=true".into(),
                "base_url=https://x.example".into(),
            ],
        )
        .unwrap();
        assert_eq!(json["price"]["margin_percent"], 15);
        assert_eq!(json["clone_new_products"], true);
        assert_eq!(json["base_url"], "https://x.example");
        assert!(assignments(serde_json::json!({}), &["novalue".into()]).is_err());
        assert!(assignments(serde_json::json!({ "a": 1 }), &["a.b=2".into()]).is_err());
    }

    #[test]
    fn unknown_or_mistyped_settings_are_refused_by_name() {
        let error = apply_settings(
            ConnectionSettings::default(),
            &["clone_new_products=maybe".into()],
        )
        .err()
        .map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("--set")));
        let margin = apply_settings(
            ConnectionSettings::default(),
            &["price.margin_percent=12.5".into()],
        )
        .unwrap();
        assert_eq!(margin.price.margin_percent.to_string(), "12.5");
    }
}
