//! The progress display of `crawl` on a terminal (indicatif): one bar for
//! the whole crawl (pages, questions, request rate against the quota,
//! retries and 429s, ETA) and one per tag. It redraws from the
//! [`Monitor`] whenever that changes; log lines print above it through
//! [`LogWriter`], which suspends the bars while a line is written.
//!
//! Not a terminal, `--log-format json` or `--quiet`: main.rs starts none,
//! and the logs are exactly as without it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::observe::monitor::{Monitor, Status};

/// The bars on screen, while a display runs: the log writer needs them.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// A `tracing` writer to standard error that keeps log lines above the
/// progress bars instead of through them.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// A running display; [`Progress::finish`] leaves its last state on screen.
pub struct Progress {
    monitor: Monitor,
    /// Hands its bars back when stopped.
    task: tokio::task::JoinHandle<View>,
    stop: tokio::sync::oneshot::Sender<()>,
}

struct View {
    bars: MultiProgress,
    total: ProgressBar,
    tags: BTreeMap<String, ProgressBar>,
}

impl View {
    fn new(bars: MultiProgress) -> View {
        let total = bars.add(ProgressBar::new(0).with_style(style(
            "{prefix:>14.bold} [{bar:30.cyan/blue}] {pos}/{len} pages  {msg}  ETA {eta}",
        )));
        total.set_prefix("crawl");
        View {
            bars,
            total,
            tags: BTreeMap::new(),
        }
    }

    /// Draws `s`: the running pass, or the last one once it ended.
    fn draw(&mut self, s: &Status) {
        let pass = s
            .current_pass
            .as_ref()
            .and_then(|name| s.passes.get(name))
            .or_else(|| s.passes.values().next());
        let Some(pass) = pass else { return };
        let r = &s.requests;
        self.total.set_length(pass.pages_planned);
        self.total
            .set_position(pass.pages_done + pass.pages_failed + pass.pages_skipped);
        let mut msg = format!(
            "{} questions  {:.1}/{} req/s  {} retries  {} 429s",
            pass.questions,
            r.rate_history.last().map_or(0.0, |p| p.per_second),
            r.quota_per_second,
            r.retries,
            r.rate_limited
        );
        if pass.pages_failed > 0 {
            msg.push_str(&format!("  {} failed", pass.pages_failed));
        }
        if r.pages_retrying > 0 {
            msg.push_str(&format!("  {} waiting to retry", r.pages_retrying));
        }
        self.total.set_message(msg);
        for (tag, t) in &pass.tags {
            let bar = self.tags.entry(tag.clone()).or_insert_with(|| {
                let bar = self.bars.add(
                    ProgressBar::new(0)
                        .with_style(style("{prefix:>14} [{bar:30}] {pos}/{len} pages  {msg}")),
                );
                bar.set_prefix(tag.clone());
                bar
            });
            bar.set_length(t.pages_planned);
            bar.set_position(t.pages_done + t.pages_failed + t.pages_skipped);
            let mut msg = format!("{} questions", t.questions);
            if t.pages_skipped > 0 {
                msg.push_str(&format!(", {} past the tag's end", t.pages_skipped));
            }
            if t.pages_failed > 0 {
                msg.push_str(&format!(", {} failed", t.pages_failed));
            }
            bar.set_message(msg);
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants: a bad one is a programming error caught
    // by the tests, and the default style is a fine fallback anyway.
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Progress {
    /// Starts drawing `monitor` on standard error. Must be called from
    /// within a running actix System.
    pub fn start(monitor: Monitor) -> Progress {
        let bars = BARS
            .get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(5)))
            .clone();
        let mut live = View::new(bars);
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let m = monitor.clone();
        let task = actix_rt::spawn(async move {
            let mut changes = m.subscribe();
            loop {
                live.draw(&m.status());
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { break },
                    _ = &mut stopped => break,
                }
            }
            live
        });
        Progress {
            monitor,
            task,
            stop,
        }
    }

    /// Draws the final figures and leaves them on screen.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let Ok(mut view) = self.task.await else {
            return;
        };
        view.draw(&self.monitor.status());
        for bar in view.tags.values() {
            bar.abandon();
        }
        view.total.abandon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_are_valid() {
        for t in [
            "{prefix:>14.bold} [{bar:30.cyan/blue}] {pos}/{len} pages  {msg}  ETA {eta}",
            "{prefix:>14} [{bar:30}] {pos}/{len} pages  {msg}",
        ] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn the_bars_follow_the_monitor() {
        let config = crate::config::Config::from_toml(
            "[tag_sets.a]\ntags = [\"x\", \"y\"]\npages = 2\n",
            "test",
            &crate::config::Overrides::default(),
        )
        .unwrap();
        let plan = crate::engine::plan::Plan::from_config(&config);
        let m = Monitor::new("crawl", 2.0);
        let per_tag = plan.pages_per_tag();
        m.pass_started("crawl", &per_tag, &per_tag);
        let mut view = View::new(MultiProgress::with_draw_target(ProgressDrawTarget::hidden()));
        view.draw(&m.status());
        assert_eq!(view.total.length(), Some(4));
        assert_eq!(view.tags.len(), 2);
        assert_eq!(view.tags["x"].length(), Some(2));
        assert_eq!(view.total.position(), 0);
    }
}
