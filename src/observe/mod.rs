//! Watching a crawl: [`monitor`] (what a running crawl is doing, fed by
//! its events), read by [`status`] (the live page, `/status.json`,
//! `/metrics`) and [`progress`] (the terminal display); [`charts`] (SVG,
//! plotters) for the status page and [`html_report`] (`report --html`).

pub mod charts;
pub mod html_report;
pub mod monitor;
pub mod progress;
pub mod status;
#[cfg(unix)]
pub mod systemd;
/// systemd exists only where Unix sockets do.
#[cfg(not(unix))]
pub mod systemd {
    pub fn notify(_state: &str) {}
    pub fn watchdog_every() -> Option<std::time::Duration> {
        None
    }
}
