//! stackcrawl: a polite, actor-based crawler for Stack Overflow and Stack
//! Exchange tag listings.
//!
//! ```text
//!  TOML config ──► Plan (lazy: the pages to fetch, nothing fetched yet)
//!                    │
//!                    ▼
//!               Supervisor ──PageJob──► Fetcher × N ──RawPage──► Cleaner ──Records──► Aggregator ──► JSONL / CSV
//!                    ▲          (each waits on its host's ONE shared quota)                │
//!                    └────────────────────── JobEnded ◄─────────────────────────────────────┘
//! ```
//!
//! Modules, in the order data flows:
//! - [`config`]: TOML → validated `Config` (key and line in every error)
//! - [`plan`]: `Plan` and `PageJob` (what `--dry-run` prints)
//! - [`throttle`]: a host's governor quota and the pool-wide pause (the site
//!   and the Stack Exchange API each have one)
//! - [`fetch`]: the HTTP client and `FetchError`
//! - [`parse`], [`clean`]: pure HTML → raw strings → typed `Question`s
//! - [`api`]: pure API 2.3 → URLs, typed `Question`s, paging and quota
//!   fields, classified `ApiError`s (tag sets with `source = "api"`)
//! - [`actors`]: supervisor, fetchers, cleaner, aggregator
//! - [`output`]: JSONL and CSV sinks
//! - [`model`]: `Question`, `PageReport`, `RunSummary`
//!
//! The futures-style API mirrors the Dask tutorial this descends from:
//! [`Crawler::submit`] one page and get a future of its outcome,
//! [`Crawler::map`] a tag over a page range, [`gather`] them, or take them
//! in completion order with [`as_completed`].

pub mod actors;
pub mod api;
pub mod budget;
pub mod clean;
pub mod config;
pub mod fetch;
pub mod lane;
pub mod model;
pub mod output;
pub mod parse;
pub mod plan;
pub mod robots;
pub mod runner;
pub mod store;
pub mod throttle;
pub mod writer_lock;

use std::collections::HashSet;
use std::future::Future;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::{join_all, BoxFuture};
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use thiserror::Error;
use tokio::sync::{oneshot, watch};
use tracing::{debug, error, info, warn};

use actors::aggregator::Flush;
use actors::aggregator::{BeginPass, EndPass, GetStoreStats, OutputError, PassPlan};
use actors::fetcher::Lanes;
use actors::supervisor::{Drain, GetStats, NewPass, Submit, SupervisorStats};
pub use actors::supervisor::{PageFailure, PageOutcome};
use actors::Pipeline;
use budget::{Budget, BudgetError};
use config::{Config, Tab};
use fetch::{FetchError, HttpClient};
use lane::{Lane, LaneError};
use model::RunSummary;
pub use output::Sink;
use plan::{FailedPage, PageJob, Plan};
use robots::{RobotsError, RobotsPolicy};
use store::PassTotals;
use store::Store;
use throttle::Throttle;

#[derive(Debug, Error)]
pub enum CrawlError {
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] FetchError),
    #[error(transparent)]
    Budget(#[from] BudgetError),
    #[error(transparent)]
    Lane(#[from] LaneError),
    /// Another process writes to the store: a usage problem.
    #[error(transparent)]
    Locked(#[from] writer_lock::LockError),
    /// robots.txt forbids the plan: a usage problem, not a crawl failure.
    #[error(transparent)]
    Robots(#[from] RobotsError),
    #[error("cannot write the failures file {path}: {reason}")]
    Failures { path: PathBuf, reason: String },
    #[error("daily request budget exhausted; it resets at {}", .resets_at.to_rfc3339())]
    BudgetExhausted {
        resets_at: chrono::DateTime<chrono::Utc>,
    },
    /// The API refused a request for good (bad parameter, key errors,
    /// access denied): the crawl stopped at once, records so far kept.
    #[error("the Stack Exchange API refused tag {tag} page {page}, crawl stopped: {error}")]
    Api {
        tag: String,
        page: u32,
        error: api::ApiError,
    },
    #[error("the crawler's actors stopped before the run ended")]
    Stopped,
}

/// A page's outcome, once it has one. Resolves even if the crawler stops.
pub type PageFuture = BoxFuture<'static, PageOutcome>;

/// A running pipeline: submit page jobs to it, then `finish` it.
pub struct Crawler {
    config: Arc<Config>,
    pipeline: Pipeline,
    http: HttpClient,
    started: Instant,
    submitted: u64,
}

impl Crawler {
    /// Starts the actors, writing records to `sink` if one is given. Must be
    /// called from within a running actix System.
    pub fn start(config: Config, sink: Option<Sink>) -> Result<Crawler, CrawlError> {
        Crawler::start_with_store(config, sink, None)
    }

    /// Starts the actors with records going to a store as well (the `run`
    /// command), which then also answers "seen before?".
    pub fn start_with_store(
        config: Config,
        sink: Option<Sink>,
        store: Option<Store>,
    ) -> Result<Crawler, CrawlError> {
        let http = HttpClient::new(&config)?;
        let mut budget = Budget::open(&config.budget_file, config.daily_budget)?;
        budget.set_limit(&config.api.budget_key(), config.api.daily_quota);
        let budget = Arc::new(Mutex::new(budget));
        // The API host has a quota of its own, apart from the site's.
        let lanes = Lanes {
            html: Arc::new(Lane::new(
                config.site.clone(),
                Throttle::new(config.rate, config.burst),
                budget.clone(),
                false,
            )),
            api: Arc::new(Lane::new(
                config.api.budget_key(),
                Throttle::new(config.rate, config.burst),
                budget,
                true,
            )),
        };
        let started = Instant::now();
        let pipeline = Pipeline::start(&config, http.clone(), lanes, sink, store, started);
        Ok(Crawler {
            config: Arc::new(config),
            pipeline,
            http,
            started,
            submitted: 0,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Starts (or resumes) a store pass of `tag_set` and drops from `plan`
    /// the pages that pass already did, so a resumed pass never refetches.
    /// An incremental pass pages each tag one page at a time: page N+1 only
    /// once page N showed new or changed questions.
    pub async fn begin_pass(
        &self,
        tag_set: &str,
        newest: bool,
        plan: &mut Plan,
    ) -> Result<PassPlan, CrawlError> {
        let pass = self
            .pipeline
            .aggregator
            .send(BeginPass {
                tag_set: tag_set.to_string(),
                newest,
                now: chrono::Utc::now(),
            })
            .await
            .map_err(|_| CrawlError::Stopped)??;
        plan.jobs.retain(|j| {
            let lane = (j.ctx.tag.clone(), j.ctx.tab.clone());
            let past_end = pass.ends.get(&lane).is_some_and(|&end| j.ctx.page > end);
            !past_end
                && !pass
                    .done
                    .contains(&(j.ctx.tag.clone(), j.ctx.tab.clone(), j.ctx.page))
        });
        if pass.incremental {
            for job in &mut plan.jobs {
                job.after_previous = true;
            }
        }
        self.pipeline.supervisor.do_send(NewPass);
        Ok(pass)
    }

    /// Ends the current store pass; only a `finished` one is closed, so an
    /// interrupted pass is resumed next time.
    pub async fn end_pass(&self, finished: bool) -> Result<PassTotals, CrawlError> {
        Ok(self
            .pipeline
            .aggregator
            .send(EndPass {
                finished,
                now: chrono::Utc::now(),
            })
            .await
            .map_err(|_| CrawlError::Stopped)??)
    }

    /// Fetches robots.txt once (through the shared quota and budget) and
    /// checks every planned URL against it. Unreachable robots.txt is
    /// retried, then treated as the config says.
    pub async fn check_robots(&self, plan: &Plan) -> Result<(), CrawlError> {
        let url = robots::robots_url(&self.config.base_url);
        // robots.txt governs crawlers of the site's pages; the API is a
        // documented interface with its own rules (quota, backoff), on
        // another host, so API pages are neither checked nor counted.
        let pages: Vec<&str> = plan
            .jobs
            .iter()
            .filter(|j| j.source == config::Source::Html)
            .map(|j| j.url.as_str())
            .collect();
        if pages.is_empty() && !plan.is_empty() {
            debug!(
                api_pages = plan.len(),
                "robots.txt not fetched: the plan has only API pages, and robots.txt does not apply to the API"
            );
            return Ok(());
        }
        if !self.config.obey_robots {
            warn!(robots_url = %url, "site.obey_robots = false: robots.txt is NOT checked; crawl only sites you may crawl");
            return Ok(());
        }
        let lane = &self.pipeline.lanes.html;
        let mut attempt = 0;
        let policy = loop {
            attempt += 1;
            let ticket = lane.admit().await.map_err(|e| match e {
                LaneError::Exhausted { resets_at, .. } => CrawlError::BudgetExhausted { resets_at },
                e => e.into(),
            })?;
            let response = self.http.get_any(&url).await;
            if let Err(FetchError::Connect(_)) = &response {
                lane.refund(&ticket)?;
            }
            drop(ticket);
            let reason = match response {
                Ok(r) if r.status < 500 => break RobotsPolicy::from_response(r.status, &r.text),
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => e.to_string(),
            };
            if attempt > self.config.max_retries {
                if self.config.robots_unreachable_allows {
                    warn!(robots_url = %url, reason = %reason, "robots.txt unreachable; site.robots_unreachable = \"allow\": crawling");
                    return Ok(());
                }
                return Err(RobotsError::Unreachable {
                    robots_url: url,
                    reason,
                }
                .into());
            }
            let wait = self.config.retry_base.saturating_mul(1 << attempt.min(10));
            warn!(robots_url = %url, reason = %reason, attempt, wait_ms = wait.as_millis() as u64, "robots.txt fetch failed; retrying");
            tokio::time::sleep(wait).await;
        };
        let forbidden = policy.forbidden(pages.iter().copied());
        if let Some(first) = forbidden.first() {
            return Err(RobotsError::Disallowed {
                robots_url: url,
                url: first.to_string(),
                forbidden: forbidden.len(),
                planned: pages.len(),
            }
            .into());
        }
        info!(robots_url = %url, planned = pages.len(), "robots.txt allows the planned pages");
        Ok(())
    }

    /// Submits one page job; the future resolves when the page is done,
    /// failed after its retries, or skipped.
    pub fn submit(&mut self, job: PageJob) -> PageFuture {
        let (reply, rx) = oneshot::channel();
        let ctx = job.ctx.clone();
        let url = job.url.clone();
        self.submitted += 1;
        self.pipeline.supervisor.do_send(Submit { job, reply });
        rx.map(move |r| {
            r.unwrap_or(PageOutcome::Skipped {
                ctx,
                url,
                why: "crawler stopped",
            })
        })
        .boxed()
    }

    /// Submits pages `pages` of one tag: the tutorial's `client.map`.
    pub fn map(
        &mut self,
        tag: &str,
        tab: Tab,
        pages: RangeInclusive<u32>,
        pagesize: u32,
    ) -> Vec<PageFuture> {
        let config = self.config.clone();
        pages
            .map(|page| self.submit(PageJob::new(&config, tag, tab, page, pagesize)))
            .collect()
    }

    /// Submits every page of a plan.
    pub fn submit_plan(&mut self, plan: &Plan) -> Vec<PageFuture> {
        plan.jobs
            .iter()
            .map(|job| self.submit(job.clone()))
            .collect()
    }

    /// Stops handing out jobs; in-flight pages still finish.
    pub fn drain(&self) {
        self.pipeline.supervisor.do_send(Drain);
    }

    /// The supervisor's counters right now (for the periodic status line).
    pub async fn stats(&self) -> Result<SupervisorStats, CrawlError> {
        self.pipeline
            .supervisor
            .send(GetStats)
            .await
            .map_err(|_| CrawlError::Stopped)
    }

    /// Flushes the output and returns the run's summary. Await every
    /// submitted future first: pages still in flight would be cut short.
    pub async fn finish(self) -> Result<RunSummary, CrawlError> {
        let stats = self.stats().await?;
        let totals = self
            .pipeline
            .aggregator
            .send(Flush)
            .await
            .map_err(|_| CrawlError::Stopped)??;
        self.pipeline.stop();
        Ok(RunSummary {
            pages_planned: self.submitted,
            pages_done: stats.done,
            pages_failed: stats.failed,
            pages_skipped: stats.skipped,
            questions: totals.questions,
            duplicates_dropped: totals.duplicates,
            rejected: totals.rejected,
            retries: stats.retries,
            rate_limited: stats.rate_limited,
            requests: stats.requests,
            per_tag: totals.per_tag,
            failures: Vec::new(),
            budget_left: stats.budget_left,
            budget_resets_at: stats.budget_resets_at,
            wall_time: self.started.elapsed(),
            api: (stats.api.requests > 0).then_some(stats.api),
            interrupted: false,
        })
    }
}

/// Outcomes in the order pages complete: the tutorial's `as_completed`.
pub fn as_completed(futures: Vec<PageFuture>) -> FuturesUnordered<PageFuture> {
    futures.into_iter().collect()
}

/// Every outcome, in submission order: the tutorial's `gather`.
pub async fn gather(futures: Vec<PageFuture>) -> Vec<PageOutcome> {
    join_all(futures).await
}

/// The store's name for the pass of a one-off `crawl --store`.
pub const CRAWL_PASS: &str = "crawl";

/// Turns a shutdown future into a flag every waiting point can watch.
pub fn shutdown_flag(shutdown: impl Future<Output = ()> + 'static) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    actix_rt::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    rx
}

/// How a batch of submitted pages ended.
#[derive(Debug, Default)]
pub struct Driven {
    /// Pages lost after their retries, as the failures file lists them.
    pub failures: Vec<FailedPage>,
    /// Shutdown was requested while the batch ran.
    pub interrupted: bool,
    /// (tag, tab, page) of every page that ended, done, failed or past its
    /// tag's end: after an interruption, the others were never fetched.
    pub ended: HashSet<(String, String, u32)>,
}

/// The failures-file kind of a page an interrupted crawl did not fetch.
pub const KIND_INTERRUPTED: &str = "interrupted";

impl Crawler {
    /// Awaits a batch of pages in completion order, logging a line per page
    /// and a status line every `status_every`; on shutdown, stops handing
    /// out jobs and lets in-flight pages finish.
    pub async fn drive(
        &self,
        futures: Vec<PageFuture>,
        shutdown: &mut watch::Receiver<bool>,
        status: &mut tokio::time::Interval,
    ) -> Result<Driven, CrawlError> {
        let mut pending = as_completed(futures);
        let mut driven = Driven::default();
        // In-flight pages get this long to finish after a shutdown request;
        // pages cut off are not recorded done, so a resume fetches them.
        let drain_limit = self.config.timeout + self.config.retry_base;
        let mut drain_deadline = None;
        loop {
            let outcome = tokio::select! {
                next = pending.next() => match next {
                    Some(o) => o,
                    None => break,
                },
                _ = shutdown.wait_for(|stop| *stop), if !driven.interrupted => {
                    let s = self.stats().await?;
                    warn!(in_flight = s.in_flight, pending = s.queued, "shutdown requested: draining");
                    self.drain();
                    driven.interrupted = true;
                    drain_deadline = Some(tokio::time::Instant::now() + drain_limit);
                    continue;
                }
                _ = sleep_until_opt(drain_deadline) => {
                    warn!(abandoned = pending.len(), "drain timed out; unfinished pages are left for the next run");
                    break;
                }
                _ = status.tick() => {
                    self.log_status(None).await?;
                    continue;
                }
            };
            match &outcome {
                PageOutcome::Done(r) => {
                    driven.ended.insert(page_key(&r.ctx));
                }
                PageOutcome::Failed(f) => {
                    driven.ended.insert(page_key(&f.ctx));
                }
                // The supervisor's words for a page past its tag's last:
                // there is nothing to fetch there, interrupted or not.
                PageOutcome::Skipped { ctx, why, .. } if *why == "tag exhausted" => {
                    driven.ended.insert(page_key(ctx));
                }
                PageOutcome::Skipped { .. } => {}
            }
            match outcome {
                PageOutcome::Done(r) => info!(
                    tag = %r.ctx.tag,
                    page = r.ctx.page,
                    questions = r.questions,
                    duplicates = r.duplicates,
                    rejected = r.rejected,
                    new = r.new,
                    updated = r.updated,
                    tag_views_total = r.tag_views_total,
                    attempts = r.attempts,
                    elapsed_ms = r.elapsed.as_millis() as u64,
                    "page done"
                ),
                PageOutcome::Failed(f) => driven.failures.push(FailedPage::from(&f)),
                PageOutcome::Skipped { .. } => {}
            }
        }
        Ok(driven)
    }

    /// The periodic status line; between passes of `run`, `next_pass` says
    /// which tag set is due next and when.
    pub async fn log_status(
        &self,
        next_pass: Option<(&str, std::time::Duration)>,
    ) -> Result<(), CrawlError> {
        let s = self.stats().await?;
        let store = self
            .pipeline
            .aggregator
            .send(GetStoreStats)
            .await
            .map_err(|_| CrawlError::Stopped)?;
        info!(
            pages_done = s.done,
            pages_failed = s.failed,
            queued = s.queued,
            in_flight = s.in_flight,
            requests = s.requests,
            retries = s.retries,
            rate_limited = s.rate_limited,
            effective_rate = round3(s.effective_rate),
            quota_rate = self.config.rate,
            requests_last_minute = s.requests_last_minute,
            quota_per_minute = round3(self.config.rate * 60.0),
            budget_left = s.budget_left,
            api_requests = (s.api.requests > 0).then_some(s.api.requests),
            api_quota_remaining = s.api.quota_remaining,
            api_backoffs = (s.api.backoffs > 0).then_some(s.api.backoffs),
            pages_per_sec = round3(s.done as f64 / self.started.elapsed().as_secs_f64()),
            store_questions = store.as_ref().map(|st| st.questions),
            store_bytes = store.as_ref().map(|st| st.size_bytes),
            next_pass = next_pass.map(|(name, _)| name),
            next_pass_in_secs = next_pass.map(|(_, wait)| round3(wait.as_secs_f64())),
            "status"
        );
        Ok(())
    }
}

/// The status line's clock: its first tick is one interval from now, and a
/// late tick is not made up for with a burst of lines.
pub fn status_timer(every: std::time::Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

fn page_key(ctx: &model::PageContext) -> (String, String, u32) {
    (ctx.tag.clone(), ctx.tab.clone(), ctx.page)
}

pub(crate) async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Writes the failures file (or clears a stale one) and says where it is.
pub(crate) fn report_failures(
    path: &std::path::Path,
    failures: &[FailedPage],
) -> Result<(), CrawlError> {
    plan::write_failures(path, failures).map_err(|reason| CrawlError::Failures {
        path: path.to_path_buf(),
        reason,
    })?;
    let not_fetched = failures
        .iter()
        .filter(|f| f.kind == KIND_INTERRUPTED)
        .count();
    if not_fetched > 0 {
        error!(
            failures_file = %path.display(),
            pages = failures.len(),
            not_fetched,
            "pages lost or not fetched before the interruption are listed; complete the crawl with --retry-failed"
        );
    } else if !failures.is_empty() {
        error!(
            failures_file = %path.display(),
            pages = failures.len(),
            "pages lost after their retries are listed; re-run them with --retry-failed"
        );
    }
    Ok(())
}

/// One pass over `plan`: the `crawl` command. Checks robots.txt, logs a
/// line per page as it completes and a status line periodically, writes
/// the failures file, and returns the summary. When `shutdown` resolves, no
/// further pages are handed out and in-flight pages finish.
pub async fn crawl(
    config: Config,
    plan: Plan,
    sink: Sink,
    shutdown: impl Future<Output = ()> + 'static,
) -> Result<RunSummary, CrawlError> {
    crawl_with_store(config, plan, sink, None, shutdown).await
}

/// `crawl` that also keeps its records in the SQLite store, as one pass
/// named [`CRAWL_PASS`]: a crawl cut short (a crash, a signal) leaves the
/// pass open, and the next `crawl --store` resumes it without fetching its
/// done pages again.
pub async fn crawl_with_store(
    config: Config,
    mut plan: Plan,
    sink: Sink,
    store: Option<Store>,
    shutdown: impl Future<Output = ()> + 'static,
) -> Result<RunSummary, CrawlError> {
    info!(
        pages = plan.len(),
        fetchers = config.fetchers,
        rate = config.rate,
        burst = config.burst,
        base_url = %config.base_url,
        output = %sink.path().display(),
        "crawl starting"
    );
    let failures_path = config.failures_path.clone();
    let mut shutdown = shutdown_flag(shutdown);
    let with_store = store.is_some();
    // A store has one writer; a second `crawl --store` or a `run` beside
    // this one is refused before anything is fetched.
    let _lock = match &store {
        Some(s) => s.path().map(writer_lock::WriterLock::acquire).transpose()?,
        None => None,
    };
    let mut crawler = Crawler::start_with_store(config, Some(sink), store)?;
    if with_store {
        let planned = plan.len();
        let pass = crawler.begin_pass(CRAWL_PASS, false, &mut plan).await?;
        info!(
            pass_id = pass.pass_id,
            resumed = pass.resumed,
            pages_already_done = planned - plan.len(),
            "store pass starting"
        );
    }
    crawler.check_robots(&plan).await?;
    let futures = crawler.submit_plan(&plan);
    let mut status = status_timer(crawler.config().status_every);
    let driven = crawler.drive(futures, &mut shutdown, &mut status).await?;
    let stats = crawler.stats().await?;
    let api_fatal = stats.api_fatal;
    if with_store {
        // Only a crawl that reached every page closes its pass.
        let finished =
            !driven.interrupted && stats.budget_resets_at.is_none() && api_fatal.is_none();
        crawler.end_pass(finished).await?;
    }
    let mut summary = crawler.finish().await?;
    summary.failures = driven
        .failures
        .iter()
        .map(|f| {
            (
                f.ctx(),
                format!("{} after {} attempts: {}", f.kind, f.attempts, f.error),
            )
        })
        .collect();
    // An interrupted crawl lists what it did not reach beside what it
    // lost, so `--retry-failed` completes it.
    let mut listed = driven.failures;
    if driven.interrupted {
        summary.interrupted = true;
        listed.extend(
            plan.jobs
                .iter()
                .filter(|j| !driven.ended.contains(&page_key(&j.ctx)))
                .map(|j| FailedPage {
                    tag: j.ctx.tag.clone(),
                    tab: j.ctx.tab.clone(),
                    page: j.ctx.page,
                    url: j.url.clone(),
                    attempts: 0,
                    kind: KIND_INTERRUPTED.to_string(),
                    error: "not fetched: the crawl was interrupted".to_string(),
                }),
        );
    }
    report_failures(&failures_path, &listed)?;
    log_summary(&summary);
    // Records so far are flushed and the summary logged; the run still
    // failed, and says why in the API's own words.
    if let Some(f) = api_fatal {
        return Err(CrawlError::Api {
            tag: f.ctx.tag,
            page: f.ctx.page,
            error: f.error,
        });
    }
    Ok(summary)
}

fn log_summary(s: &RunSummary) {
    for (tag, t) in &s.per_tag {
        info!(
            tag = %tag,
            pages = t.pages,
            questions = t.questions,
            views = t.views,
            votes = t.votes,
            answers = t.answers,
            unanswered_share = round3(t.unanswered_share()),
            "tag totals"
        );
    }
    for (ctx, why) in &s.failures {
        error!(tag = %ctx.tag, page = ctx.page, why = %why, "page lost after retries");
    }
    if let Some(api) = &s.api {
        info!(
            api_requests = api.requests,
            api_backoffs = api.backoffs,
            api_throttle_violations = api.throttle_violations,
            api_quota_remaining = api.quota_remaining,
            api_quota_max = api.quota_max,
            "API usage"
        );
        if let Some(at) = api.quota_resets_at {
            error!(
                resets_at = %at.to_rfc3339(),
                quota_remaining = api.quota_remaining,
                pages_skipped = s.pages_skipped,
                "stopped: the API quota ran out; it resets at {}",
                at.to_rfc3339()
            );
        }
    }
    // An API quota stop also sets budget_resets_at (so the exit code says
    // "incomplete"); it was reported above in its own words.
    let quota_stop = s.api.as_ref().is_some_and(|a| a.quota_resets_at.is_some());
    if let Some(at) = s.budget_resets_at.filter(|_| !quota_stop) {
        error!(resets_at = %at.to_rfc3339(), pages_skipped = s.pages_skipped, "stopped: the daily request budget ran out");
    }
    let message = if s.interrupted {
        "crawl interrupted"
    } else {
        "crawl finished"
    };
    info!(
        pages_planned = s.pages_planned,
        pages_done = s.pages_done,
        pages_failed = s.pages_failed,
        pages_skipped = s.pages_skipped,
        questions = s.questions,
        duplicates_dropped = s.duplicates_dropped,
        rejected = s.rejected,
        retries = s.retries,
        rate_limited = s.rate_limited,
        requests = s.requests,
        budget_left = s.budget_left,
        wall_secs = round3(s.wall_time.as_secs_f64()),
        request_rate = round3(s.request_rate()),
        "{message}"
    );
}

/// Log fields stay numbers (for log tools) but without float noise.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
