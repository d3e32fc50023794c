//! stackcrawl: a polite, actor-based crawler for Stack Overflow and Stack
//! Exchange tag listings.
//!
//! ```text
//!  TOML config ──► Plan (lazy: the pages to fetch, nothing fetched yet)
//!                    │
//!                    ▼
//!               Supervisor ──PageJob──► Fetcher × N ──RawPage──► Cleaner ──Records──► Aggregator ──► JSONL / CSV
//!                    ▲          (each waits on the ONE shared quota)                       │
//!                    └────────────────────── JobEnded ◄─────────────────────────────────────┘
//! ```
//!
//! Modules, in the order data flows:
//! - [`config`]: TOML → validated `Config` (key and line in every error)
//! - [`plan`]: `Plan` and `PageJob` (what `--dry-run` prints)
//! - [`throttle`]: the one governor quota and the pool-wide pause
//! - [`fetch`]: the HTTP client and `FetchError`
//! - [`parse`], [`clean`]: pure HTML → raw strings → typed `Question`s
//! - [`actors`]: supervisor, fetchers, cleaner, aggregator
//! - [`output`]: JSONL and CSV sinks
//! - [`model`]: `Question`, `PageReport`, `RunSummary`
//!
//! The futures-style API mirrors the Dask tutorial this descends from:
//! [`Crawler::submit`] one page and get a future of its outcome,
//! [`Crawler::map`] a tag over a page range, [`gather`] them, or take them
//! in completion order with [`as_completed`].

pub mod actors;
pub mod clean;
pub mod config;
pub mod fetch;
pub mod model;
pub mod output;
pub mod parse;
pub mod plan;
pub mod throttle;

use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::{join_all, BoxFuture};
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use thiserror::Error;
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use actors::aggregator::Flush;
use actors::supervisor::{Drain, GetStats, Submit};
pub use actors::supervisor::{PageFailure, PageOutcome};
use actors::Pipeline;
use config::{Config, Tab};
use fetch::{FetchError, HttpClient};
use model::RunSummary;
use output::{Sink, SinkError};
use plan::{PageJob, Plan};
use throttle::Throttle;

#[derive(Debug, Error)]
pub enum CrawlError {
    #[error(transparent)]
    Output(#[from] SinkError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] FetchError),
    #[error("the crawler's actors stopped before the run ended")]
    Stopped,
}

/// A page's outcome, once it has one. Resolves even if the crawler stops.
pub type PageFuture = BoxFuture<'static, PageOutcome>;

/// A running pipeline: submit page jobs to it, then `finish` it.
pub struct Crawler {
    config: Arc<Config>,
    pipeline: Pipeline,
    started: Instant,
    submitted: u64,
}

impl Crawler {
    /// Starts the actors. Must be called from within a running actix System.
    pub fn start(config: Config, write_output: bool) -> Result<Crawler, CrawlError> {
        let http = HttpClient::new(&config)?;
        let sink = if write_output {
            Some(Sink::create(&config.output, config.output_format)?)
        } else {
            None
        };
        let started = Instant::now();
        let pipeline = Pipeline::start(&config, http, sink, started);
        Ok(Crawler {
            config: Arc::new(config),
            pipeline,
            started,
            submitted: 0,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The shared quota, for callers that want to observe pauses.
    pub fn throttle(&self) -> &Arc<Throttle> {
        &self.pipeline.throttle
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

    /// Flushes the output and returns the run's summary. Await every
    /// submitted future first: pages still in flight would be cut short.
    pub async fn finish(self) -> Result<RunSummary, CrawlError> {
        let stats = self
            .pipeline
            .supervisor
            .send(GetStats)
            .await
            .map_err(|_| CrawlError::Stopped)?;
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
            wall_time: self.started.elapsed(),
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

/// One pass over the configured tags: the `crawl` command. Logs a line per
/// page as it completes and returns the summary. When `shutdown` resolves,
/// no further pages are handed out and in-flight pages finish.
pub async fn crawl(
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary, CrawlError> {
    let plan = Plan::from_config(&config);
    info!(
        pages = plan.len(),
        tags = config.tag_sets.iter().map(|s| s.tags.len()).sum::<usize>(),
        fetchers = config.fetchers,
        rate = config.rate,
        burst = config.burst,
        base_url = %config.base_url,
        output = %config.output.display(),
        "crawl starting"
    );
    let mut crawler = Crawler::start(config, true)?;
    let mut pending = as_completed(crawler.submit_plan(&plan));
    let mut failures = Vec::new();
    let mut shutdown = std::pin::pin!(shutdown.fuse());
    let mut drained = false;
    loop {
        let outcome = tokio::select! {
            next = pending.next() => match next {
                Some(o) => o,
                None => break,
            },
            () = &mut shutdown, if !drained => {
                warn!("shutdown requested: draining");
                crawler.drain();
                drained = true;
                continue;
            }
        };
        match outcome {
            PageOutcome::Done(r) => info!(
                tag = %r.ctx.tag,
                page = r.ctx.page,
                questions = r.questions,
                duplicates = r.duplicates,
                rejected = r.rejected,
                tag_views_total = r.tag_views_total,
                attempts = r.attempts,
                elapsed_ms = r.elapsed.as_millis() as u64,
                "page done"
            ),
            PageOutcome::Failed(f) => {
                failures.push((
                    f.ctx.clone(),
                    format!("{} after {} attempts: {}", f.kind, f.attempts, f.error),
                ));
            }
            PageOutcome::Skipped { .. } => {}
        }
    }
    let mut summary = crawler.finish().await?;
    summary.failures = failures;
    log_summary(&summary);
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
        wall_secs = round3(s.wall_time.as_secs_f64()),
        request_rate = round3(s.request_rate()),
        "crawl finished"
    );
}

/// Log fields stay numbers (for log tools) but without float noise.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
