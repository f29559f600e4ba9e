//! The `tidemark` binary as an operator runs it: the demo reaches its console, and the
//! administration commands keep secrets out of their output and refuse bad input by name.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tidemark(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    command
        .current_dir(dir)
        .env("TIDEMARK_DATA_DIR", dir.join("data"))
        .env("TIDEMARK_LOG", "warn")
        .env_remove("TIDEMARK_DATABASE_URL")
        .env_remove("TIDEMARK_QUEUE_URL")
        .env_remove("TIDEMARK_SECRET_KEY");
    command
}

/// Runs a command to its end: (success, stdout, stderr).
fn run(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = tidemark(dir).args(args).output().expect("run tidemark");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_demo_syncs_prints_its_summary_and_serves_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tidemark(dir.path())
        .args([
            "demo",
            "--products",
            "60",
            "--orders",
            "5",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut lines = Vec::new();
    let url = loop {
        let line = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let mut stderr = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                panic!("no console after 300 s; stdout: {lines:#?}\nstderr: {stderr}");
            }
        };
        lines.push(line.clone());
        if let Some(url) = line.strip_prefix("serving console at ") {
            break url.to_owned();
        }
    };
    let text = lines.join("\n");
    let products: usize = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("products on WooCommerce:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no product count in the summary:\n{text}"));
    assert!(products >= 50, "the products reached WooCommerce:\n{text}");
    assert!(text.contains("orders moved to WooCommerce: 5"), "{text}");
    assert!(text.contains("sync Shopify: succeeded"), "{text}");

    // The console's address answers, and says the store and queue are ready.
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // SIGTERM: a clean stop.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop within 60 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn connections_are_administered_by_name_and_their_secrets_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("woo.json");
    std::fs::write(
        &credentials,
        r#"{"consumer_key": "ck_live_SECRET1", "consumer_secret": "cs_live_SECRET2"}"#,
    )
    .unwrap();
    let credentials = credentials.to_str().unwrap();

    let (ok, out, err) = run(
        dir.path(),
        &[
            "connection",
            "add",
            "Shop",
            "--platform",
            "woocommerce",
            "--platform-setting",
            "base_url=http://127.0.0.1:9",
            "--set",
            "clone_new_products=true",
            "--credentials-file",
            credentials,
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("added woocommerce connection \"Shop\""),
        "{out}"
    );

    let (ok, out, _) = run(dir.path(), &["connection", "list"]);
    assert!(
        ok && out.contains("Shop") && out.contains("woocommerce") && out.contains("active"),
        "{out}"
    );
    let (ok, out, _) = run(dir.path(), &["connection", "show", "Shop"]);
    assert!(ok && out.contains("set (sealed; never shown)"), "{out}");
    assert!(!out.contains("SECRET"), "credentials shown: {out}");
    let sealed = std::fs::read(dir.path().join("data/tidemark.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&sealed).contains("SECRET"),
        "credentials stored in the clear"
    );

    // Bad input is refused by name, and nothing changes.
    let (ok, _, err) = run(
        dir.path(),
        &["connection", "settings", "Shop", "--set", "bogus=1"],
    );
    assert!(!ok && err.contains("bogus"), "{err}");
    let (ok, _, err) = run(
        dir.path(),
        &["connection", "add", "Other", "--platform", "amazon"],
    );
    assert!(!ok && err.contains("unknown platform"), "{err}");
    let (ok, _, err) = run(
        dir.path(),
        &[
            "connection",
            "add",
            "Other",
            "--platform",
            "woocommerce",
            "--platform-setting",
            "base_url=http://x",
        ],
    );
    assert!(
        !ok && err.contains("consumer_key"),
        "a missing credential is named: {err}"
    );
    let (ok, _, err) = run(dir.path(), &["connection", "show", "Nope"]);
    assert!(!ok && err.contains("no connection named \"Nope\""), "{err}");

    let (ok, out, err) = run(
        dir.path(),
        &[
            "connection",
            "settings",
            "Shop",
            "--set",
            "price.margin_percent=12.5",
            "--set",
            "fetch_interval_secs=600",
        ],
    );
    assert!(
        ok && out.contains("\"margin_percent\": \"12.5\""),
        "{out}{err}"
    );
    let (_, out, _) = run(dir.path(), &["connection", "show", "Shop"]);
    assert!(
        out.contains("\"fetch_interval_ms\": 600000"),
        "the schedule follows the settings: {out}"
    );

    let (ok, out, _) = run(dir.path(), &["connection", "pause", "Shop"]);
    assert!(ok && out.contains("paused"), "{out}");
    let (ok, out, _) = run(dir.path(), &["fetch", "Shop", "--no-wait"]);
    assert!(
        ok && out.contains("queued fetch run") && out.contains("paused"),
        "{out}"
    );
    let (ok, out, _) = run(dir.path(), &["connection", "resume", "Shop"]);
    assert!(ok && out.contains("1 waiting job(s)"), "{out}");

    let (ok, out, _) = run(dir.path(), &["token", "create", "--name", "console"]);
    assert!(ok && out.starts_with("tmk_"), "{out}");
    let (ok, out, _) = run(dir.path(), &["migrate"]);
    assert!(ok && out.contains("up to date"), "{out}");
}
