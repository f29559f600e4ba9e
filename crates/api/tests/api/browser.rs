//! The console in a real headless Chromium, driven over WebDriver (chromedriver), against the
//! whole daemon (SQLite store and queue, workers, scheduler, reconciler) and three simulated
//! platforms. A screenshot of every step goes to `target/screenshots/` in the workspace.
//!
//! Chromium and chromedriver come from Debian (`.ci/run` installs them). Without them the test
//! says so and skips, unless `CI` is set: there their absence fails it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tidemark_connector::sealing;
use tidemark_core::{ConnectionSettings, PlatformKind};
use tidemark_engine::{Engine, EngineConfig, FetchRequest, FetchScope, ImagePolicy};
use tidemark_jobs::{Daemon, QueueSpec, RegistryConnectors, Roles, builtin_registry};
use tidemark_sim::FaultConfig;
use tidemark_sim::mercadolibre::{MlConfig, MlSim};
use tidemark_sim::shopify::{ShopifyConfig, ShopifySim};
use tidemark_sim::woocommerce::{WooConfig, WooSim};
use tidemark_store::{JobState, NewConnection};

use crate::common::{Harness, now, send};
use crate::routes::urlencode;

const SHOPIFY_PRODUCTS: u64 = 24;
const ML_ITEMS: u64 = 6;
const STEP: Duration = Duration::from_secs(90);

fn screenshots_dir() -> PathBuf {
    // The workspace's target/, whatever CARGO_TARGET_DIR says: CI collects it from there.
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/screenshots"
    ))
}

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file())
}

struct Browser {
    client: Client,
    driver: std::process::Child,
    shots: usize,
}

impl Browser {
    async fn start() -> Option<Browser> {
        let (Some(driver), Some(chromium)) = (
            find_program("chromedriver"),
            find_program("chromium").or_else(|| find_program("chromium-browser")),
        ) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "chromium and chromedriver must be installed in CI (.ci/run installs them)"
            );
            println!(
                "skipped: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--lang=en-GB"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        };
        // This run's screenshots only.
        let _ = std::fs::remove_dir_all(screenshots_dir());
        std::fs::create_dir_all(screenshots_dir()).unwrap();
        Some(Browser {
            client,
            driver: child,
            shots: 0,
        })
    }

    async fn shot(&mut self, name: &str) {
        self.shots += 1;
        let png = self.client.screenshot().await.unwrap();
        let path = screenshots_dir().join(format!("{:02}-{name}.png", self.shots));
        std::fs::write(&path, png).unwrap();
    }

    /// The value of a JavaScript expression in the page.
    async fn js(&self, expression: &str) -> Value {
        self.client
            .execute(&format!("return ({expression});"), vec![])
            .await
            .unwrap_or(Value::Null)
    }

    /// Waits until the expression is truthy; on time-out, a screenshot and the page's text.
    async fn wait(&mut self, what: &str, expression: &str) {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let value = self.js(expression).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                self.shot(&format!("timeout-{}", what.replace(' ', "-")))
                    .await;
                let text = self.js("document.body.innerText").await;
                panic!("waited {STEP:?} for {what} ({expression}); the page says:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        let input = self.client.find(Locator::Css(css)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Also on a failed step: no chromedriver outlives the test.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn card(name: &str) -> String {
    format!(".connection[data-name=\"{name}\"]")
}

/// `document.querySelector(css)` as a JS expression.
fn q(css: &str) -> String {
    format!(
        "document.querySelector({})",
        serde_json::to_string(css).unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_drives_a_whole_sync_in_a_real_browser() {
    tidemark_testkit::store::run_sqlite(|store| async move {
        let Some(mut browser) = Browser::start().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let h = Harness::start(
            store.clone(),
            QueueSpec::Sqlite(dir.path().join("queue.db")),
            "browser",
            "sqlite",
        )
        .await;

        // Three simulated platforms, connected as an operator would.
        let shopify_config = ShopifyConfig {
            products: SHOPIFY_PRODUCTS,
            orders: 0,
            seed: 7,
            ..ShopifyConfig::default()
        };
        let shopify = ShopifySim::new(shopify_config.clone(), FaultConfig::none());
        let shopify_run = shopify.serve().await.unwrap();
        let woo_config = WooConfig { products: 0, orders: 0, ..WooConfig::default() };
        let woo = WooSim::new(woo_config.clone(), FaultConfig::none());
        let woo_run = woo.serve().await.unwrap();
        let ml_config = MlConfig {
            items: ML_ITEMS,
            orders: 0,
            seed: 2,
            rate_per_second: Some(50.0),
            rate_burst: 20,
            ..MlConfig::default()
        };
        let ml = MlSim::new(ml_config.clone(), FaultConfig::none());
        let ml_run = ml.serve().await.unwrap();
        let connect = |name: &str, platform, settings: ConnectionSettings, platform_settings: Value, credentials: Value| {
            let store = store.clone();
            let key = h.key.clone();
            let account = h.alice.id;
            let name = name.to_owned();
            async move {
                store
                    .create_connection(
                        &NewConnection {
                            account,
                            platform,
                            name,
                            settings,
                            platform_settings,
                            credentials: Some(sealing::seal_json(&key, &credentials).unwrap()),
                        },
                        now(),
                    )
                    .await
                    .unwrap()
                    .id
            }
        };
        let _shopify = connect(
            "Shopify",
            PlatformKind::Shopify,
            ConnectionSettings { master: true, ..ConnectionSettings::default() },
            json!({"shop_url": shopify_run.base_url, "api_version": shopify_config.api_version, "bulk_threshold": 100_000}),
            json!({"access_token": shopify_config.access_token}),
        )
        .await;
        let mut woo_settings = ConnectionSettings {
            clone_new_products: true,
            // Sends wait for the button, so the badge can be watched.
            auto_send: false,
            ..ConnectionSettings::default()
        };
        woo_settings.price.margin_percent = Decimal::from(10);
        let woo_id = connect(
            "WooCommerce",
            PlatformKind::Woocommerce,
            woo_settings,
            json!({"base_url": woo_run.base_url, "per_page": 5}),
            json!({"consumer_key": woo_config.consumer_key, "consumer_secret": woo_config.consumer_secret}),
        )
        .await;
        let ml_id = connect(
            "MercadoLibre",
            PlatformKind::Mercadolibre,
            ConnectionSettings::default(),
            json!({
                "site_id": ml_config.site_id, "user_id": ml_config.user_id, "client_id": ml_config.client_id,
                "base_url": ml_run.base_url, "default_category_id": format!("{}1055", ml_config.site_id),
                "requests_per_second": 40,
            }),
            json!({"client_secret": ml_config.client_secret, "access_token": ml_config.access_token, "refresh_token": ml_config.refresh_token}),
        )
        .await;

        // The daemon: workers, scheduler and reconciler over the same store and queue.
        let engine = Engine::new(
            store.clone(),
            Arc::new(RegistryConnectors::new(builtin_registry(), store.clone(), h.key.clone())),
            EngineConfig {
                images: ImagePolicy { allow_private: true, ..ImagePolicy::default() },
                ..EngineConfig::default()
            },
        )
        .unwrap();
        let daemon = Daemon::start(h.jobs.clone(), engine, Roles::ALL).await.unwrap();

        // 1. Log in with a token.
        browser.client.goto(&h.url("/")).await.unwrap();
        browser.wait("the login form", &q("#login-token")).await;
        browser.type_into("#login-token", "tmk_wrong").await;
        browser.click("#login-submit").await;
        browser.wait("the refusal", &format!("{}.textContent.length > 0", q("#login-error"))).await;
        browser.shot("login-refused").await;
        browser.type_into("#login-token", &h.alice_token).await;
        browser.click("#login-submit").await;
        browser.wait("the app", &format!("!{}.hidden && {}.textContent === 'alice'", q("#app"), q("#account-name"))).await;
        browser.wait("three connections", "document.querySelectorAll('.connection').length === 3").await;
        browser.shot("logged-in").await;

        // 2. Sync on Shopify: progress to completion.
        browser.click(&format!("{} .btn-sync", card("Shopify"))).await;
        browser.wait("a sync job on the card", &q(&format!("{} .job[data-kind=\"sync\"]", card("Shopify")))).await;
        browser.shot("sync-running").await;
        browser.wait("the sync to succeed", &format!("{}?.dataset.state === 'succeeded'", q(&format!("{} .job[data-kind=\"sync\"]", card("Shopify"))))).await;
        browser.shot("sync-done").await;

        // 3. The badge counts WooCommerce's queued changes, and reaches zero after Send.
        let queued = store.pending_counts(h.alice.id, woo_id).await.unwrap().total();
        assert_eq!(queued, SHOPIFY_PRODUCTS as i64, "every Shopify product is queued for WooCommerce");
        let badge = q(&format!("{} .btn-send .badge", card("WooCommerce")));
        browser.wait("the badge to count the queued creates", &format!("{badge}?.textContent.trim() === '{queued}'")).await;
        browser.shot("badge-counts-queued-changes").await;
        browser.click(&format!("{} .btn-send", card("WooCommerce"))).await;
        browser.wait("the badge to reach zero", &format!("{badge}?.textContent.trim() === '0' && {}.disabled", q(&format!("{} .btn-send", card("WooCommerce"))))).await;
        assert_eq!(woo.product_count(), SHOPIFY_PRODUCTS as usize);
        browser.shot("badge-zero-after-send").await;

        // 4. Pause stops a fetch: WooCommerce answers slowly, a full scan is under way.
        woo.harness.faults.set(FaultConfig { slow: 1.0, slow_ms: 400, ..FaultConfig::none() });
        h.store.reset_clocks(h.alice.id, woo_id, &[tidemark_core::ScanKind::Products]).await.unwrap();
        browser.click(&format!("{} .btn-fetch", card("WooCommerce"))).await;
        let fetch_job = q(&format!("{} .job[data-kind=\"fetch\"]", card("WooCommerce")));
        browser.wait("the fetch to run", &format!("{fetch_job}?.dataset.state === 'running'")).await;
        browser.click(&format!("{} .btn-play-pause", card("WooCommerce"))).await;
        browser.wait("the pause", &format!("{}.dataset.paused === 'true'", q(&format!("{} .btn-play-pause", card("WooCommerce"))))).await;
        browser.wait("the fetch to stop at a page and wait", &format!("{fetch_job}?.dataset.state === 'queued'")).await;
        let runs = store.list_job_runs(h.alice.id, &tidemark_store::JobRunFilter {
            connection: Some(woo_id),
            kind: Some(tidemark_store::JobKind::Fetch),
            ..Default::default()
        }).await.unwrap();
        let run = &runs[0];
        assert_eq!(run.state, JobState::Queued, "the paused fetch waits: {run:?}");
        let scanned = run.progress["scanned"].as_u64().unwrap_or(0);
        assert!(scanned < SHOPIFY_PRODUCTS, "the fetch stopped before its end ({scanned} scanned)");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let still = store.get_account_job_run(h.alice.id, run.id).await.unwrap().unwrap();
        assert_eq!(still.state, JobState::Queued, "a paused connection ran its fetch");
        browser.shot("paused-fetch-waits").await;
        woo.harness.faults.set(FaultConfig::none());
        browser.click(&format!("{} .btn-play-pause", card("WooCommerce"))).await;
        browser.wait("the fetch to finish after Play", &format!("{fetch_job}?.dataset.state === 'succeeded'")).await;
        browser.shot("resumed-fetch-done").await;

        // 5. An edit on Shopify: fetched, queued for WooCommerce as a title update.
        let gid = shopify.product_gids()[3].clone();
        assert!(shopify.edit_title(&gid, "Renamed on Shopify"));
        browser.click(&format!("{} .btn-fetch", card("Shopify"))).await;
        browser.wait("Shopify's fetch", &format!("{}?.dataset.state === 'succeeded'", q(&format!("{} .job[data-kind=\"fetch\"]", card("Shopify"))))).await;

        // 6. Products in two sets: their intersection.
        browser.click("#nav-products").await;
        browser.wait("the product browser", &format!("!{}.hidden", q("#view-browse"))).await;
        // Autocomplete: "on Sh" offers the Shopify connection.
        browser.type_into("#set-input", "on Sh").await;
        browser.wait("a suggestion", "[...document.querySelectorAll('#set-suggestions li')].some(li => li.textContent.includes('Shopify'))").await;
        browser.shot("autocomplete").await;
        for phrase in ["on Shopify", "with pending updates to WooCommerce"] {
            browser.type_into("#set-input", phrase).await;
            // Let the suggestions settle, then Enter adds the phrase as typed.
            tokio::time::sleep(Duration::from_millis(400)).await;
            browser.js(&format!("{}.hidden = true", q("#set-suggestions"))).await;
            browser.client.find(Locator::Css("#set-input")).await.unwrap().send_keys("\u{E007}").await.unwrap();
            browser.wait("the chip", &q(&format!("#set-chips .chip[data-phrase={}]", serde_json::to_string(phrase).unwrap()))).await;
        }
        let (_, expected) = send(h.alice(Method::GET, &format!(
            "/api/v1/products?set={}&set={}", urlencode("on Shopify"), urlencode("with pending updates to WooCommerce")
        ))).await;
        let expected: Vec<i64> = expected["items"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect();
        assert_eq!(expected.len(), 1, "one product has a pending update: {expected:?}");
        let (_, on_shopify) = send(h.alice(Method::GET, &format!("/api/v1/products?set={}", urlencode("on Shopify")))).await;
        assert_eq!(on_shopify["items"].as_array().unwrap().len() as u64, SHOPIFY_PRODUCTS);
        browser.wait("the intersection", &format!(
            "document.querySelectorAll('#results tr.record-row').length === 1 && {}?.dataset.recordId === '{}'",
            q("#results tr.record-row"), expected[0]
        )).await;
        browser.shot("two-sets-intersection").await;

        // 7. The record: its title is yellow (a queued update) on WooCommerce.
        browser.click("#results tr.record-row").await;
        let title = q(&format!("#record-view .conn-state[data-connection-id=\"{}\"] .field[data-field=\"title\"]", woo_id.0));
        browser.wait("the record view", &format!("!!{} && {}.open !== false", q("#record-view"), q("#record-view"))).await;
        browser.wait("a yellow title on WooCommerce", &format!("{title}?.dataset.state === 'update' && {title}.classList.contains('state-update')")).await;
        let colour = browser.js(&format!("getComputedStyle({title}).backgroundColor")).await;
        assert_ne!(colour, json!("rgba(0, 0, 0, 0)"), "the update is coloured");
        browser.js(&format!("{title}.scrollIntoView({{block: 'center'}})")).await;
        browser.shot("record-yellow-title").await;
        browser.click("#record-close").await;

        // 8. Troubleshoot: MercadoLibre's items reach WooCommerce; the ones it cannot take
        // become issues, grouped.
        let ml_sync = h.jobs.sync(h.alice.id, ml_id, &FetchRequest::new(FetchScope::Full), "test").await.unwrap().run;
        h.jobs.wait(h.alice.id, ml_sync.id, Duration::from_millis(100), |_| {}).await.unwrap();
        let send_run = h.jobs.send(h.alice.id, woo_id, "test").await.unwrap().run;
        let done = h.jobs.wait(h.alice.id, send_run.id, Duration::from_millis(100), |_| {}).await.unwrap();
        assert_eq!(done.state, JobState::Succeeded, "{done:?}");
        let (_, groups) = send(h.alice(Method::GET, "/api/v1/issues/troubleshoot")).await;
        let groups = groups.as_array().unwrap().clone();
        assert!(!groups.is_empty(), "the simulators' traps raise issues");
        browser.wait("the issues count", &format!("{}.textContent.trim() !== '0'", q("#issues-count"))).await;
        browser.click("#issues-button").await;
        browser.wait("the issues popover", &format!("!{}.hidden", q("#issues-popover"))).await;
        browser.shot("issues-popover").await;
        browser.click("#troubleshoot-button").await;
        browser.wait("the groups", &format!("document.querySelectorAll('#troubleshoot .issue-group').length === {}", groups.len())).await;
        let first_count = browser.js(&format!("{}.textContent", q("#troubleshoot .issue-group .group-count"))).await;
        assert!(first_count.as_str().unwrap_or("").contains(&groups[0]["issues"].to_string()), "{first_count} vs {}", groups[0]);
        let advice = browser.js(&format!("{}.textContent", q("#troubleshoot .issue-group .group-advice"))).await;
        assert!(advice.as_str().unwrap_or("").contains(groups[0]["advice"].as_str().unwrap()), "{advice}");
        browser.shot("troubleshoot-groups").await;

        browser.click("#troubleshoot .modal-close, dialog[open] .modal-close").await;

        // 9. Settings: a new margin for WooCommerce, saved through the modal.
        browser.click("#nav-connections").await;
        browser.wait("the connections view", &format!("!{}.hidden", q("#view-connections"))).await;
        browser.click(&format!("{} .btn-settings", card("WooCommerce"))).await;
        browser.wait("the settings modal", &format!("{}.open", q("#settings-modal"))).await;
        browser.click("#settings-modal [data-tab=\"prices\"]").await;
        browser.type_into("#s-margin_percent", "15").await;
        browser.shot("settings-prices").await;
        browser.click("#settings-save").await;
        browser.wait("the settings to save", &format!("!{}.open", q("#settings-modal"))).await;
        let saved = store.get_connection(h.alice.id, woo_id).await.unwrap().unwrap();
        assert_eq!(saved.settings.price.margin_percent, Decimal::from(15));
        assert!(saved.settings.clone_new_products, "the other settings stay");

        // 10. Stats, Maintenance: the integrity fix runs and reports.
        browser.click(&format!("{} .btn-stats", card("WooCommerce"))).await;
        browser.wait("the stats modal", &format!("{}.open", q("#stats-modal"))).await;
        browser.click("#stats-modal [data-tab=\"maintenance\"]").await;
        browser.click("#integrity-fix-button").await;
        browser.wait("the integrity fix's report", &format!("{}.textContent.includes('Integrity fix succeeded')", q("#integrity-report"))).await;
        let runs = store.list_job_runs(h.alice.id, &tidemark_store::JobRunFilter {
            connection: Some(woo_id),
            kind: Some(tidemark_store::JobKind::IntegrityFix),
            ..Default::default()
        }).await.unwrap();
        assert_eq!(runs[0].state, JobState::Succeeded, "{:?}", runs[0]);
        browser.shot("integrity-fix-report").await;

        // Nothing the browser did duplicated or deleted a product.
        assert_eq!(shopify.product_count(), SHOPIFY_PRODUCTS as usize);
        browser.close().await;
        daemon.shutdown().await;
        drop(h);
        drop(dir);
    })
    .await;
}
