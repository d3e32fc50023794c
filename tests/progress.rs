//! The progress display as a person sees it: the real binary crawls the
//! fake site inside a tmux pane (a real terminal), and the pane's text is
//! captured once the crawl has ended. Not a terminal, or `--quiet`: no
//! display at all.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use stackcrawl_fakesite::{FakeSite, TestConfig};

fn tmux(socket: &Path, args: &[&str]) -> Output {
    let out = Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(args)
        .env("TERM", "xterm-256color")
        .output()
        .expect("tmux runs (Debian's package `tmux`; .ci/run installs it)");
    assert!(
        out.status.success(),
        "tmux {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `stackcrawl crawl --config CONFIG EXTRA…` in a 150×40 tmux pane and
/// returns the pane's text after the crawl ended. The pane is kept open
/// until captured: the command signals a tmux channel when it is done and
/// then waits on another, so no sleep is needed.
fn crawl_in_a_terminal(dir: &Path, config: &Path, extra: &str) -> String {
    // A server per call: `kill-server` returns before the old server has
    // let go of its socket, and a new session on that socket can meet the
    // dying server ("server exited unexpectedly").
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let socket = dir.join(format!(
        "tmux-{}.sock",
        CALLS.fetch_add(1, Ordering::Relaxed)
    ));
    let command = format!(
        "{bin} crawl --config {config} {extra}; tmux -S {sock} wait-for -S crawled; tmux -S {sock} wait-for captured",
        bin = env!("CARGO_BIN_EXE_stackcrawl"),
        config = config.display(),
        sock = socket.display(),
    );
    tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-x",
            "150",
            "-y",
            "40",
            "-s",
            "crawl",
            &command,
        ],
    );
    tmux(&socket, &["wait-for", "crawled"]);
    let pane = tmux(&socket, &["capture-pane", "-p", "-t", "crawl"]);
    tmux(&socket, &["wait-for", "-S", "captured"]);
    let _ = Command::new("tmux")
        .arg("-S")
        .arg(&socket)
        .arg("kill-server")
        .output();
    String::from_utf8_lossy(&pane.stdout).into_owned()
}

fn site_and_config(dir: &Path) -> (FakeSite, std::path::PathBuf) {
    let site = FakeSite::builder()
        .tag("python", 200)
        .tag("rust", 120)
        .start();
    let config = TestConfig::new(&site, dir)
        .fetch("fetchers = 2\nrate = 20.0\nburst = 1")
        .tag_set("a", &["python", "rust"], 4)
        .write();
    (site, config)
}

#[test]
fn a_crawl_on_a_terminal_shows_pages_per_tag_and_overall_with_logs_above() {
    let dir = tempfile::tempdir().unwrap();
    let (_site, config) = site_and_config(dir.path());
    let pane = crawl_in_a_terminal(dir.path(), &config, "");
    let line = |needle: &str| {
        pane.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{pane}"))
            .to_string()
    };
    // The overall bar: every page accounted for, questions, rate vs quota.
    let total = line("8/8 pages");
    assert!(total.contains("crawl"), "{pane}");
    assert!(total.contains("320 questions"), "{pane}");
    assert!(total.contains("/20 req/s"), "{pane}");
    assert!(
        total.contains("0 retries") && total.contains("0 429s"),
        "{pane}"
    );
    // One bar per tag; rust's fourth page is past its end (empty).
    assert!(line(" python [").contains("4/4 pages"), "{pane}");
    assert!(line(" python [").contains("200 questions"), "{pane}");
    assert!(line(" rust [").contains("120 questions"), "{pane}");
    // Log lines printed above the bars, not through them.
    let finished = pane
        .lines()
        .position(|l| l.contains("crawl finished"))
        .expect("the summary line");
    let bar = pane.lines().position(|l| l.contains("8/8 pages")).unwrap();
    assert!(finished < bar, "{pane}");
}

#[test]
fn quiet_or_json_logs_or_no_terminal_show_no_progress_display() {
    let dir = tempfile::tempdir().unwrap();
    let (_site, config) = site_and_config(dir.path());
    for extra in ["--quiet", "--log-format json"] {
        let pane = crawl_in_a_terminal(dir.path(), &config, extra);
        assert!(!pane.contains("pages  "), "{extra}:\n{pane}");
        assert!(pane.contains("crawl finished"), "{extra}:\n{pane}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_stackcrawl"))
        .args(["crawl", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("crawl finished"), "{err}");
    assert!(!err.contains("pages  ") && !err.contains('\r'), "{err}");
}
