//! The long-running service (`stackcrawl run`): repeats each tag set on its
//! own interval, keeping the SQLite store current, until shutdown.
//!
//! Passes run one at a time. All tag sets share one quota, so running two
//! passes at once would fetch no faster; one at a time keeps each pass's
//! bookkeeping (resume, incremental stop) simple. A pass cut short by a
//! shutdown or a crash stays open in the store and is resumed at the next
//! start without refetching its done pages.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::engine::clock::{sleep_until_opt, status_timer};
use crate::engine::crawler::{round3, shutdown_flag, Crawler};
use crate::engine::pass::{PassEnd, PassSpec};
use crate::engine::plan::Plan;
use crate::error::CrawlError;
use crate::model::RunSummary;
use crate::observe::monitor::Monitor;
use crate::observe::systemd;
use crate::store::writer_lock::WriterLock;

/// What a run did, over every crawler it started (a reload or a spent
/// budget starts a new one), for the final log line.
#[derive(Debug, Clone)]
pub struct RunTotals {
    pub passes: u64,
    pub interrupted: bool,
    pub pages_done: u64,
    pub pages_failed: u64,
    pub questions: u64,
    pub requests: u64,
    started: Instant,
}

impl Default for RunTotals {
    fn default() -> Self {
        RunTotals {
            passes: 0,
            interrupted: false,
            pages_done: 0,
            pages_failed: 0,
            questions: 0,
            requests: 0,
            started: Instant::now(),
        }
    }
}

impl RunTotals {
    fn add(&mut self, s: &RunSummary) {
        self.pages_done += s.pages_done;
        self.pages_failed += s.pages_failed;
        self.questions += s.questions;
        self.requests += s.requests;
    }

    /// Finishes a crawler, keeping its counts.
    async fn retire(&mut self, crawler: Crawler) -> Result<(), CrawlError> {
        let summary = crawler.finish().await?;
        self.add(&summary);
        Ok(())
    }
}

/// Runs until `shutdown` resolves. `reloads` delivers validated configs
/// (main.rs re-reads the file on SIGHUP); each applies from the next pass.
pub async fn run(
    config: Config,
    reloads: mpsc::UnboundedReceiver<Config>,
    shutdown: impl Future<Output = ()> + 'static,
) -> Result<RunTotals, CrawlError> {
    run_watched(config, reloads, shutdown, None).await
}

/// [`run`], reporting to `monitor` (the status page) as it goes.
pub async fn run_watched(
    config: Config,
    mut reloads: mpsc::UnboundedReceiver<Config>,
    shutdown: impl Future<Output = ()> + 'static,
    monitor: Option<Monitor>,
) -> Result<RunTotals, CrawlError> {
    let mut shutdown = shutdown_flag(shutdown);
    // Each crawler started stops on the same request.
    let stop = shutdown.clone();
    // First, before any request: a store has one writer.
    // A PostgreSQL store has many writers, the fleet: no lock there.
    let _lock = config
        .store
        .sqlite_path()
        .map(WriterLock::acquire)
        .transpose()?;
    let mut config = config;
    let mut totals = RunTotals::default();
    let mut crawler = start(&config, &monitor, &stop).await?;
    // The store is open and main.rs set the signal handlers before this
    // started: a `systemctl reload` from now on is heard.
    systemd::notify("READY=1\nSTATUS=running; no pass finished yet");
    // Pinged from the engine's own event loop: if it stops turning, the
    // pings stop and systemd restarts the service. The pings end with this
    // function, whichever way it returns.
    let _watchdog = systemd::watchdog_every().map(|every| {
        AbortOnDrop(actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                systemd::notify("WATCHDOG=1");
            }
        }))
    });
    // One clock for status lines, in passes and between them alike.
    let mut status = status_timer(config.status_every);
    // Every tag set is due at once on start, and an unfinished pass
    // resumes; but a fleet's pass that others finished is not repeated
    // before its interval is up.
    let mut due: BTreeMap<String, Instant> = BTreeMap::new();
    for set in &config.tag_sets {
        let at = fleet_due(&crawler, &set.name, set.every).await?;
        due.insert(set.name.clone(), at.unwrap_or_else(Instant::now));
    }
    info!(
        worker = %config.fleet.name,
        store = %config.store,
        local_address = config.fleet.local_address.map(|a| a.to_string()),
        tag_sets = due.len(),
        "run starting"
    );
    loop {
        let next = due
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(n, a)| (n.clone(), *a));
        if next.is_none() {
            warn!("no tag sets configured; waiting for a reload or shutdown");
        }
        let wake = next.as_ref().map(|(_, at)| *at);
        if let (Some(m), Some((name, at))) = (&monitor, &next) {
            m.next_pass(name, at.saturating_duration_since(Instant::now()));
        }
        tokio::select! {
            _ = sleep_until_opt(wake) => {}
            _ = shutdown.wait_for(|s| *s) => break,
            Some(new) = reloads.recv() => {
                if new.status_every != config.status_every {
                    status = status_timer(new.status_every);
                }
                (config, crawler) = reload(config, new, crawler, &mut due, &mut totals, &monitor, &stop).await?;
                continue;
            }
            _ = status.tick() => {
                let next = next.as_ref().map(|(name, at)| {
                    (name.as_str(), at.saturating_duration_since(Instant::now()))
                });
                crawler.log_status(next).await?;
                continue;
            }
        }
        let Some((name, _)) = next else { continue };
        let Some(set) = config.tag_sets.iter().find(|s| s.name == name).cloned() else {
            due.remove(&name);
            continue;
        };
        // While this process ran another set's pass, the rest of the fleet
        // may have run this one: its interval counts from that pass.
        if let Some(at) = fleet_due(&crawler, &set.name, set.every).await? {
            if at > Instant::now() {
                due.insert(name, at);
                continue;
            }
        }
        let started = Instant::now();
        let spec = PassSpec {
            name: &set.name,
            newest: set.is_newest_first(),
            list_unfetched: false,
        };
        let plan = Plan::from_tag_sets(&config, std::slice::from_ref(&set));
        let pass = crawler.pass(spec, plan, &mut status).await?;
        match pass.end {
            PassEnd::Finished => {}
            PassEnd::Interrupted => {
                totals.interrupted = true;
                break;
            }
            PassEnd::Fatal(e) => {
                totals.retire(crawler).await?;
                return Err(e);
            }
            PassEnd::OutOfBudget(resets_at) => {
                // The supervisor stays stopped once its budget is gone; wait
                // for the reset, then start afresh and resume this pass.
                warn!(resets_at = %resets_at.to_rfc3339(), tag_set = %name, "request budget spent: waiting for it to reset");
                let wait = (resets_at - Utc::now()).to_std().unwrap_or_default();
                totals.retire(crawler).await?;
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|s| *s) => {
                        totals.interrupted = true;
                        log_run_stopped(&totals);
                        return Ok(totals);
                    }
                }
                crawler = start(&config, &monitor, &stop).await?;
                continue;
            }
        }
        totals.passes += 1;
        if config.output_named {
            rewrite_output(&crawler, &config).await?;
        }
        if let Some(t) = &pass.totals {
            systemd::notify(&format!(
                "STATUS={} passes done; the last, of {name}: {} pages, {} questions, {} new",
                totals.passes, t.pages, t.questions, t.new
            ));
        }
        // Start to start, so a pass's own length does not stretch the interval.
        due.insert(name, (started + set.every).max(Instant::now()));
    }
    totals.retire(crawler).await?;
    log_run_stopped(&totals);
    Ok(totals)
}

/// A task that ends when its handle is dropped (a dropped `JoinHandle`
/// only detaches it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// When the tag set falls due by the fleet's latest finished pass of it
/// (start to start); `None` with no such pass, or a store with one writer.
async fn fleet_due(
    crawler: &Crawler,
    tag_set: &str,
    every: std::time::Duration,
) -> Result<Option<Instant>, CrawlError> {
    Ok(crawler
        .finished_pass_started(tag_set)
        .await?
        .map(|started| {
            let wait = (started + every - Utc::now()).to_std().unwrap_or_default();
            Instant::now() + wait
        }))
}

/// `[output] path` (or `--output`) in `run`: after each finished pass the
/// file holds the latest state of every question in the store, as
/// `stackcrawl export` would write it. A file that cannot be written is
/// logged, not fatal: the store holds every record, and the next pass
/// tries again.
async fn rewrite_output(crawler: &Crawler, config: &Config) -> Result<(), CrawlError> {
    let path = &config.output;
    match crawler.rewrite_output(path, config.output_format).await? {
        Ok(records) => info!(
            records,
            output = %path.display(),
            "output rewritten with the store's latest records"
        ),
        Err(e) => error!(
            output = %path.display(),
            error = %e,
            "the output could not be rewritten; the store keeps every record, the next pass tries again"
        ),
    }
    Ok(())
}

fn log_run_stopped(t: &RunTotals) {
    info!(
        passes = t.passes,
        interrupted = t.interrupted,
        pages_done = t.pages_done,
        pages_failed = t.pages_failed,
        questions = t.questions,
        requests = t.requests,
        wall_secs = round3(t.started.elapsed().as_secs_f64()),
        "run stopped; store flushed"
    );
}

/// Opens the store, starts the actors and checks robots.txt for every
/// configured page (once per start and per reload, not per pass).
async fn start(
    config: &Config,
    monitor: &Option<Monitor>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Crawler, CrawlError> {
    let mut crawler = Crawler::open(config.clone(), shutdown).await?;
    if let Some(m) = monitor {
        crawler.watch(m.clone());
    }
    crawler.check_robots(&Plan::from_config(config)).await?;
    Ok(crawler)
}

/// Applies a new config between passes: the crawler is rebuilt so a new
/// quota takes effect; added tag sets are due at once, removed ones dropped.
async fn reload(
    old: Config,
    new: Config,
    crawler: Crawler,
    due: &mut BTreeMap<String, Instant>,
    totals: &mut RunTotals,
    monitor: &Option<Monitor>,
    shutdown: &watch::Receiver<bool>,
) -> Result<(Config, Crawler), CrawlError> {
    totals.retire(crawler).await?;
    let crawler = start(&new, monitor, shutdown).await?;
    due.retain(|name, _| new.tag_sets.iter().any(|s| &s.name == name));
    for set in &new.tag_sets {
        due.entry(set.name.clone()).or_insert_with(Instant::now);
    }
    info!(
        tag_sets = new.tag_sets.len(),
        rate = new.rate,
        previous_rate = old.rate,
        "config reloaded; applies from the next pass"
    );
    Ok((new, crawler))
}
