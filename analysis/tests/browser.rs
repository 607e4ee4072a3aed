//! The HTML report in a real headless browser (Debian chromium): it loads, every
//! figure decodes, and the screenshot shows them. Fails (does not skip) without
//! chromium, since CI installs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("chromium is not installed: run `apt-get install -y chromium` (CI installs it; this test needs a real browser)"))
}

/// Chromium with the flags that keep it offline and quiet in a container.
fn browser(profile: &Path) -> Command {
    let mut command = Command::new(chromium());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

#[test]
fn report_loads_in_chromium_with_every_figure_visible() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = common::study_tree(root.path());
    let summary =
        analysis::analyze(&results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    let page = std::fs::canonicalize(&summary.report_html).unwrap_or_else(|e| panic!("{e}"));
    let url = format!("file://{}", page.display());

    // 1. The DOM after the load event: every figure is there and decoded.
    let dom = browser(&root.path().join("profile-dom"))
        .args([
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            &url,
        ])
        .output()
        .unwrap_or_else(|e| panic!("running chromium: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&dom.stdout),
        String::from_utf8_lossy(&dom.stderr),
    );
    assert!(dom.status.success(), "chromium failed: {stderr}");
    for figure in &summary.figures {
        assert!(
            stdout.contains(&format!("id=\"img-{}\"", figure.name)),
            "figure {} missing from the DOM",
            figure.name
        );
    }
    let loaded = stdout.matches("data-loaded=\"true\"").count();
    assert_eq!(
        loaded,
        summary.figures.len(),
        "figures decoded by the browser\n{stderr}"
    );
    assert!(stdout.contains(&format!("data-figures-loaded=\"{loaded}\"")));
    assert!(
        !stdout.contains("<p class=\"error\">"),
        "a figure failed to load"
    );
    let console_errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("net::ERR_"))
        .collect();
    assert!(
        console_errors.is_empty(),
        "console errors: {console_errors:#?}"
    );

    // 2. A screenshot: not blank, and the red and blue curves are on it.
    let shot = root.path().join("report.png");
    let run = browser(&root.path().join("profile-shot"))
        .args([
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,3000".into(),
            url,
        ])
        .output()
        .unwrap_or_else(|e| panic!("running chromium: {e}"));
    assert!(
        run.status.success() && shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (width, height, pixels) = common::png_pixels(&shot);
    assert_eq!((width, height), (1400, 3000));
    assert!(
        common::luminance_spread(&pixels) > 10.0,
        "the screenshot looks blank"
    );
    let (red, blue) = common::red_and_blue(&pixels);
    assert!(
        red > 1000 && blue > 1000,
        "figures not visible in the screenshot: {red} red, {blue} blue pixels"
    );
}
