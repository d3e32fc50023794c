//! Headless Chromium for the tests of what stackcrawl serves or writes as
//! HTML (the status page, `report --html`): Debian's `chromium`, which
//! .ci/run installs, started with the flags this machine's closed network
//! needs and a fresh profile each time.

use std::process::Command;

/// The DOM Chromium built from `url` (`http://…` or `file://…`), after
/// its parser and layout, as `--dump-dom` prints it.
pub fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("a profile directory");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            url,
        ])
        .output()
        .expect("chromium runs (Debian's package `chromium`; .ci/run installs it)");
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("a UTF-8 DOM")
}
