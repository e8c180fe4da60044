//! Opens a rendered report in headless Chromium: every figure loads, and the first screen shows
//! Table 1 with its baseline rows.
//!
//! Skips (with a message) when no Chromium is installed; CI installs Debian's `chromium`.
//! Set RECX_CHROMIUM to use another binary.

use crate::report_support;
use crate::skip_support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use recx::report::{ReportOptions, render_report};

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("RECX_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
}

/// What Chromium printed; stdout goes to a file (a pipe would fill up with the DOM and block).
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs Chromium headless on `page` with `mode_args`, killing it after 90 s.
fn run_chromium(bin: &Path, page: &Path, mode_args: &[String]) -> Run {
    let profile = tempfile::tempdir().unwrap();
    let out_path = profile.path().join("stdout.txt");
    let err_path = profile.path().join("stderr.txt");
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(mode_args)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(File::create(&out_path).unwrap())
    .stderr(File::create(&err_path).unwrap());
    let mut child = cmd.spawn().expect("start chromium");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(90) {
            child.kill().ok();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = child.wait().unwrap();
    Run {
        success: status.success(),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// An attribute the report's load script set on `<body>`.
fn body_attr(dom: &str, name: &str) -> String {
    let key = format!("{name}=\"");
    let start = dom
        .find(&key)
        .unwrap_or_else(|| panic!("{name} not in the DOM; did the page script run?"))
        + key.len();
    dom[start..].split('"').next().unwrap().to_string()
}

/// (loaded, broken) as the report's own load script counted them.
fn figure_counts(dom: &str) -> (usize, usize) {
    let count = |name: &str| body_attr(dom, name).parse().unwrap();
    (count("data-figures-loaded"), count("data-figures-broken"))
}

/// The Chromium binary, or `None` after saying it is missing (a failure under CI).
fn chromium_or_skip() -> Option<PathBuf> {
    let bin = chromium();
    if bin.is_none() {
        skip_support::missing(
            "no chromium on PATH (apt-get install -y chromium); report not opened in a browser",
        );
    }
    bin
}

#[test]
fn every_figure_loads_in_headless_chromium() {
    let Some(bin) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = ReportOptions {
        paper: true,
        ..ReportOptions::default()
    };
    let summary =
        render_report(&report_support::three_seeds_two_modes(), &opts, dir.path()).unwrap();
    let index = dir.path().join("index.html");

    let out = run_chromium(&bin, &index, &["--dump-dom".into()]);
    assert!(out.success, "chromium failed: {}", out.stderr);
    let dom = out.stdout;
    let (loaded, broken) = figure_counts(&dom);
    assert_eq!(broken, 0, "broken figures in the report");
    assert_eq!(loaded, summary.figures.len());
    assert!(loaded >= 4);
    assert_eq!(dom.matches("data-natural-width=\"960\"").count(), loaded);

    // The check can fail: a page with a corrupt image is flagged.
    let html = std::fs::read_to_string(&index).unwrap();
    let corrupt = html.replacen(
        "data:image/png;base64,iVBOR",
        "data:image/png;base64,AAAA",
        1,
    );
    let bad_page = dir.path().join("corrupt.html");
    std::fs::write(&bad_page, corrupt).unwrap();
    let out = run_chromium(&bin, &bad_page, &["--dump-dom".into()]);
    assert_eq!(figure_counts(&out.stdout).1, 1);

    // A screenshot of the page renders (RECX_KEEP_SCREENSHOT=path keeps it for a look).
    let shot = dir.path().join("shot.png");
    let out = run_chromium(
        &bin,
        &index,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,2400".into(),
        ],
    );
    assert!(out.success, "screenshot failed: {}", out.stderr);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot is {} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("RECX_KEEP_SCREENSHOT") {
        std::fs::write(keep, &png).unwrap();
    }
}

#[test]
fn the_first_screen_shows_table_1_with_its_baselines() {
    let Some(bin) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let runs = report_support::with_baselines(report_support::three_seeds_two_modes());
    render_report(&runs, &ReportOptions::default(), dir.path()).unwrap();
    let index = dir.path().join("index.html");
    let md = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    assert!(
        md.find("Table 1: alignment effect").unwrap() < md.find("Every metric").unwrap(),
        "Table 1 leads, bookkeeping follows"
    );

    // A laptop's first screen: Table 1 (baselines and both modes) ends inside it, uncut.
    let window = "--window-size=1280,800".to_string();
    let out = run_chromium(&bin, &index, &[window.clone(), "--dump-dom".into()]);
    assert!(out.success, "chromium failed: {}", out.stderr);
    let dom = out.stdout;
    assert_eq!(body_attr(&dom, "data-first-table-id"), "table-table1");
    let num = |name: &str| -> i64 { body_attr(&dom, name).parse().unwrap() };
    assert!(
        num("data-first-table-bottom") <= num("data-window-height"),
        "Table 1 ends at {} px, below the first screen ({} px)",
        num("data-first-table-bottom"),
        num("data-window-height")
    );
    assert!(num("data-first-table-right") <= num("data-window-width"));
    let table1 = &dom[dom.find("id=\"table-table1\"").unwrap()..];
    let table1 = &table1[..table1.find("</table>").unwrap()];
    for row in [
        "Random",
        "Popularity",
        "aligned, behaviour",
        "aligned, both",
    ] {
        assert!(table1.contains(row), "{row} missing from Table 1");
    }

    // The first screen as a picture (RECX_KEEP_FIRST_SCREEN=path keeps it for a look).
    let shot = dir.path().join("first.png");
    let out = run_chromium(
        &bin,
        &index,
        &[format!("--screenshot={}", shot.display()), window],
    );
    assert!(out.success, "screenshot failed: {}", out.stderr);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"));
    if let Ok(keep) = std::env::var("RECX_KEEP_FIRST_SCREEN") {
        std::fs::write(keep, &png).unwrap();
    }
}
