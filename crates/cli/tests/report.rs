//! Report renderings: golden files for text and Markdown, and the HTML page opened in
//! headless Chromium (screenshot, plots present and sized, no network request).
//!
//! Golden files live in `tests/golden/`; after an intended change, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test -p canary-gate-cli --test report`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn canary_gate(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Piped, the progress steps stay quiet: nothing on stderr.
    assert!(
        out.stderr.is_empty(),
        "{args:?} wrote to stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("output dir");
    dir
}

fn golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with UPDATE_GOLDEN=1)", path.display()));
    assert!(
        expected == actual,
        "{name} differs from its golden file:\n{actual}"
    );
}

fn analyze_regression(dir: &Path) -> PathBuf {
    let decision = canary_gate(&[
        "analyze",
        "--config",
        "examples/canary-monitor-hook.json",
        "--window",
        "examples/windows/regression.json",
    ]);
    let path = dir.join("decision.json");
    std::fs::write(&path, decision).expect("write decision");
    path
}

#[test]
fn text_and_markdown_match_their_golden_files() {
    let dir = out_dir("report-golden");
    let input = analyze_regression(&dir);
    for (format, file) in [("text", "regression.txt"), ("markdown", "regression.md")] {
        let rendered = canary_gate(&[
            "report",
            "--input",
            input.to_str().expect("path"),
            "--config",
            "examples/canary-monitor-hook.json",
            "--format",
            format,
        ]);
        golden(file, &rendered);
    }
    let timeline = canary_gate(&[
        "simulate",
        "--config",
        "examples/demo-config.json",
        "--scenario",
        "errors",
        "--looks",
        "15",
        "--seed",
        "4",
    ]);
    let tl = dir.join("errors.jsonl");
    std::fs::write(&tl, timeline).expect("write timeline");
    let backtest = canary_gate(&[
        "backtest",
        "--config",
        "examples/demo-config.json",
        "--timeline",
        tl.to_str().expect("path"),
    ]);
    let bt = dir.join("backtest.jsonl");
    std::fs::write(&bt, backtest).expect("write backtest");
    let md = canary_gate(&[
        "report",
        "--input",
        bt.to_str().expect("path"),
        "--config",
        "examples/demo-config.json",
        "--format",
        "markdown",
    ]);
    golden("backtest-errors.md", &md);
}

#[test]
fn report_needs_a_config_for_analyze_results_and_names_bad_input() {
    let dir = out_dir("report-errors");
    let input = analyze_regression(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .args(["report", "--input", input.to_str().expect("path")])
        .current_dir(root())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

/// Opens the HTML report of a rolled-back canary in headless Chromium (Debian's `chromium`,
/// which `tests/run.sh` installs): saves a screenshot, checks the SVG plots in the rendered
/// DOM, and reads Chromium's network log to prove the page fetched nothing.
#[test]
#[ignore = "needs Chromium; tests/run.sh runs it"]
fn html_report_renders_in_headless_chromium_without_network() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_string());
    let dir = out_dir("report-html");
    let exec = dir.join("execution.json");
    canary_gate(&[
        "demo",
        "--scenario",
        "late",
        "--save",
        exec.to_str().expect("path"),
    ]);
    let html = dir.join("report.html");
    canary_gate(&[
        "report",
        "--input",
        exec.to_str().expect("path"),
        "--format",
        "html",
        "--output",
        html.to_str().expect("path"),
    ]);
    let page = std::fs::read_to_string(&html).expect("html");
    for forbidden in [
        "<script",
        "<link",
        "@import",
        "url(",
        "src=\"http",
        "href=\"http",
    ] {
        assert!(
            !page.contains(forbidden),
            "the page must be self-contained: found {forbidden}"
        );
    }
    let png = dir.join("report.png");
    let shot_log = dir.join("netlog-screenshot.json");
    run_chromium(
        &chromium,
        &dir,
        &html,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1240,2400".to_string(),
            format!("--log-net-log={}", shot_log.display()),
        ],
    );
    let shot = std::fs::read(&png).expect("screenshot written");
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 20_000,
        "screenshot of {} bytes",
        shot.len()
    );
    let dom_log = dir.join("netlog-dom.json");
    let dom = run_chromium(
        &chromium,
        &dir,
        &html,
        &[
            "--dump-dom".to_string(),
            format!("--log-net-log={}", dom_log.display()),
        ],
    );
    let plots = dom.matches("<svg width=\"560\" height=\"260\"").count();
    assert!(
        plots >= 3,
        "expected the CDF, rate and timeline plots, found {plots} sized SVGs"
    );
    assert!(
        dom.contains("class=\"canary\"") && dom.contains("class=\"weight\""),
        "plot series missing"
    );
    assert!(dom.contains("ROLLED BACK"), "verdict missing");
    for log in [&shot_log, &dom_log] {
        let fetched = page_requests(log);
        assert!(
            fetched.is_empty(),
            "the page made network requests: {fetched:?}"
        );
    }
    // The check itself must be able to fail: a copy of the page with one remote image (a
    // loopback address, so nothing leaves the machine) is caught.
    let leaky = dir.join("leaky.html");
    std::fs::write(
        &leaky,
        page.replace(
            "</body>",
            "<img src=\"http://127.0.0.1:9/pixel.png\"></body>",
        ),
    )
    .expect("write");
    let leaky_log = dir.join("netlog-leaky.json");
    run_chromium(
        &chromium,
        &dir,
        &leaky,
        &[
            "--dump-dom".to_string(),
            format!("--log-net-log={}", leaky_log.display()),
        ],
    );
    assert!(
        !page_requests(&leaky_log).is_empty(),
        "the network check missed a request the page made"
    );
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::copy(&png, root().join("docs/report.png")).expect("copy screenshot to docs");
    }
}

/// Runs headless Chromium on a local page with the flags that keep it from phoning home;
/// returns its standard output.
fn run_chromium(chromium: &str, dir: &Path, page: &Path, extra: &[String]) -> String {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {chromium}: {e} (apt-get install chromium)"));
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Network requests the page itself started, from Chromium's net log: URL requests with an
/// initiator origin (the browser's own background traffic has none) to a network scheme.
fn page_requests(netlog: &Path) -> Vec<String> {
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(netlog).expect("net log"))
            .expect("net log JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_i64()
        .expect("event type id");
    log["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"].as_i64() == Some(start_job))
        .filter(|e| {
            e["params"]["initiator"]
                .as_str()
                .is_some_and(|i| i != "not an origin")
        })
        .filter_map(|e| e["params"]["url"].as_str())
        .filter(|u| {
            ["http:", "https:", "ws:", "wss:"]
                .iter()
                .any(|s| u.starts_with(s))
        })
        .map(str::to_string)
        .collect()
}
