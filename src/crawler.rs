//! The crawler: a running pipeline (supervisor, fetchers, cleaner,
//! aggregator) behind the futures-style API of the Dask tutorial this
//! descends from. [`Crawler::submit`] one page and get a future of its
//! outcome, [`Crawler::map`] a tag over a page range, [`gather`] them, or
//! take them in completion order with [`as_completed`]; [`Crawler::drive`]
//! awaits a batch with the log lines an operator reads.

use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::{join_all, BoxFuture};
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use crate::actors::aggregator::{
    BeginPass, EndPass, FinishedPassStarted, Flush, GetPassCounts, GetStoreStats, OpenedPass,
};
use crate::actors::supervisor::{Drain, GetStats, NewPass, Submit, SupervisorStats};
use crate::actors::supervisor::{PageOutcome, WHY_ELSEWHERE};
use crate::actors::Pipeline;
use crate::budget::Budget;
use crate::config::{Config, Tab};
use crate::error::CrawlError;
use crate::fetch::{FetchError, HttpClient};
use crate::frontier::WHY_TAG_ENDED;
use crate::lane::{Lane, LaneError};
use crate::model::FailedPage;
use crate::model::RunSummary;
use crate::monitor::Monitor;
use crate::output::Sink;
use crate::plan::{PageJob, Plan};
use crate::retry::RetryPolicy;
use crate::robots::{self, RobotsError, RobotsPolicy};
use crate::shared_quota::SharedQuota;
use crate::source::{honour_retry_after, Lanes};
use crate::store::{PassStore, PassTotals, SharedCounter, StoreLocation};
use crate::throttle::{Answer, Throttle};

/// A page's outcome, once it has one. Resolves even if the crawler stops.
pub type PageFuture = BoxFuture<'static, PageOutcome>;

/// A running pipeline: submit page jobs to it, then `finish` it.
pub struct Crawler {
    config: Arc<Config>,
    pipeline: Pipeline,
    http: HttpClient,
    started: Instant,
    submitted: u64,
    /// Records go to a store too: pages have new and updated counts.
    stored: bool,
    monitor: Option<Watched>,
}

/// A monitor and the task that passes it the supervisor's counters; the
/// task ends with the crawler, so a replaced crawler's figures never
/// reach the monitor late.
struct Watched {
    monitor: Monitor,
    feeder: tokio::task::JoinHandle<()>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.feeder.abort();
    }
}

/// How often the supervisor's counters reach a monitor: the page and the
/// progress display are as fresh as this.
const MONITOR_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Crawler {
    /// Starts the actors, writing records to `sink` and/or `store` (`run`
    /// has only a store, `crawl` a file and perhaps a store). Must be called
    /// from within a running actix System.
    pub fn start(
        config: Config,
        sink: Option<Sink>,
        store: Option<Box<dyn PassStore>>,
    ) -> Result<Crawler, CrawlError> {
        let http = HttpClient::new(&config).map_err(CrawlError::HttpClient)?;
        let mut budget = Budget::open(&config.budget_file, config.daily_budget)?;
        budget.set_limit(&config.api.budget_key(), config.api.daily_quota);
        let budget = Arc::new(Mutex::new(budget));
        // An app key's daily quota is the key's, wherever it is spent: a
        // fleet sharing a PostgreSQL store spends it from one row there.
        // Without a key the quota is the IP's, which the file keeps.
        let api_budget = match (&config.store, &config.api.key) {
            (StoreLocation::Postgres(url), Some(key)) => {
                let counter = SharedCounter::open(url, key.expose())
                    .map_err(|e| CrawlError::Output(e.into()))?;
                Arc::new(Mutex::new(Budget::shared(counter, config.api.daily_quota)))
            }
            _ => budget.clone(),
        };
        // The API host has a quota of its own, apart from the site's.
        let shared = |lane: Lane| -> Result<Arc<Lane>, CrawlError> {
            Ok(Arc::new(
                match (&config.fleet.shared_quota, &config.store) {
                    (Some(name), StoreLocation::Postgres(url)) => {
                        let quota =
                            SharedQuota::new(url, name, &lane.key, config.rate, config.burst)
                                .map_err(|e| CrawlError::Output(e.into()))?;
                        lane.with_shared_quota(quota)
                    }
                    _ => lane,
                },
            ))
        };
        let lanes = Lanes {
            html: shared(Lane::new(
                config.site.clone(),
                Throttle::new(config.rate, config.burst),
                budget.clone(),
                false,
            ))?,
            api: shared(Lane::new(
                config.api.budget_key(),
                Throttle::new(config.rate, config.burst),
                api_budget,
                true,
            ))?,
        };
        let started = Instant::now();
        let stored = store.is_some();
        let pipeline = Pipeline::start(&config, http.clone(), lanes, sink, store);
        Ok(Crawler {
            config: Arc::new(config),
            pipeline,
            http,
            started,
            submitted: 0,
            stored,
            monitor: None,
        })
    }

    /// Reports to `monitor` from now on: every page's outcome, and the
    /// supervisor's counters each second and at the end.
    pub fn watch(&mut self, monitor: Monitor) {
        monitor.crawler_started(self.config.rate);
        let supervisor = self.pipeline.supervisor.downgrade();
        let m = monitor.clone();
        let feeder = actix_rt::spawn(async move {
            let mut every = tokio::time::interval(MONITOR_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(sup) = supervisor.upgrade() else {
                    return;
                };
                match sup.send(GetStats).await {
                    Ok(stats) => m.supervisor_stats(&stats),
                    Err(_) => return,
                }
            }
        });
        self.monitor = Some(Watched { monitor, feeder });
    }

    /// The monitor this crawler reports to, if any.
    pub fn monitor(&self) -> Option<&Monitor> {
        self.monitor.as_ref().map(|w| &w.monitor)
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
    ) -> Result<OpenedPass, CrawlError> {
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
        let planned = self.monitor().map(|_| plan.pages_per_tag());
        plan.retain(|p| {
            let (tag, tab) = (p.tag.to_string(), p.tab.to_string());
            let past_end = pass
                .ends
                .get(&(tag.clone(), tab.clone()))
                .is_some_and(|&end| p.page > end);
            !past_end && !pass.done.contains(&(tag, tab, p.page))
        });
        if pass.incremental {
            plan.wait_for_previous();
        }
        self.pipeline.supervisor.do_send(NewPass);
        if let (Some(m), Some(planned)) = (self.monitor(), planned) {
            m.pass_started(tag_set, &planned, &plan.pages_per_tag());
            self.report_store_stats(m).await;
        }
        Ok(pass)
    }

    /// When the tag set's latest pass started, if the fleet's shared store
    /// has it finished (see `PassStore::finished_pass_started`).
    pub async fn finished_pass_started(
        &self,
        tag_set: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, CrawlError> {
        Ok(self
            .pipeline
            .aggregator
            .send(FinishedPassStarted {
                tag_set: tag_set.to_string(),
            })
            .await
            .map_err(|_| CrawlError::Stopped)??)
    }

    /// Ends the current store pass; only a `finished` one is closed, so an
    /// interrupted pass is resumed next time.
    pub async fn end_pass(&self, finished: bool) -> Result<PassTotals, CrawlError> {
        let totals = self
            .pipeline
            .aggregator
            .send(EndPass {
                finished,
                now: chrono::Utc::now(),
            })
            .await
            .map_err(|_| CrawlError::Stopped)??;
        if let Some(m) = self.monitor() {
            m.pass_ended(finished);
            self.report_store_stats(m).await;
        }
        Ok(totals)
    }

    /// The store's totals for the monitor, at the moments they change most
    /// (a pass's start and end); pages add their new questions between.
    async fn report_store_stats(&self, m: &Monitor) {
        if let Ok(Some(st)) = self.pipeline.aggregator.send(GetStoreStats).await {
            m.store_stats(&st);
        }
    }

    /// Fetches robots.txt once (through the shared quota and budget) and
    /// checks every planned URL against it. Unreachable robots.txt is
    /// retried, then treated as the config says.
    pub async fn check_robots(&self, plan: &Plan) -> Result<(), CrawlError> {
        let url = robots::robots_url(&self.config.base_url);
        // robots.txt governs crawlers of the site's pages; the API is a
        // documented interface with its own rules (quota, backoff), on
        // another host, so API pages are neither checked nor counted.
        // The URLs are built as they are checked: a plan holds none.
        let pages = || plan.jobs().filter(|j| j.source.obeys_robots());
        let planned = plan.pages().filter(|p| p.source.obeys_robots()).count();
        if planned == 0 && !plan.is_empty() {
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
        let retry = RetryPolicy::from_config(&self.config);
        let mut attempt = 0;
        let policy = loop {
            attempt += 1;
            let ticket = lane.admit().await.map_err(|e| match e {
                LaneError::Exhausted { resets_at, .. } => CrawlError::BudgetExhausted { resets_at },
                e => e.into(),
            })?;
            let response = self.http.get_response(&url).await;
            if let Err(FetchError::Connect(_)) = &response {
                lane.refund(&ticket).await?;
            }
            // A site that throttles counts robots.txt among the requests it
            // allows; so does the lane's rate controller.
            match &response {
                Ok(r) if r.status < 400 => lane.answered(&ticket, Answer::Accepted(r.limits)),
                // Too many requests: the site's quota speaks, as for a
                // page, and its Retry-After binds every request.
                Ok(r) if r.status == 429 => {
                    lane.answered(
                        &ticket,
                        Answer::Throttled {
                            retry_after: r.retry_after,
                            limits: r.limits,
                        },
                    );
                    honour_retry_after(lane, &r.status_error());
                }
                _ => {}
            }
            drop(ticket);
            let reason = match response {
                // A 429 says "slow down", not "no rules here" (RFC 9309
                // lets other 4xx mean no rules; Google treats a 429 as a
                // 5xx): it is asked again, and if it never answers, it is
                // unreachable.
                Ok(r) if r.status == 429 => "HTTP 429".to_string(),
                Ok(r) if r.status < 500 => break RobotsPolicy::from_response(r.status, &r.text),
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => e.to_string(),
            };
            if attempt > retry.max_retries {
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
            // The pages' own backoff: robots.txt is a request like theirs.
            let wait = retry.backoff(attempt, fastrand::f64());
            warn!(robots_url = %url, reason = %reason, attempt, wait_ms = wait.as_millis() as u64, "robots.txt fetch failed; retrying");
            tokio::time::sleep(wait).await;
        };
        let forbidden = policy.forbidden(pages().map(|j| j.url));
        if let Some(first) = forbidden.first() {
            return Err(RobotsError::Disallowed {
                robots_url: url,
                url: first.clone(),
                forbidden: forbidden.len(),
                planned,
            }
            .into());
        }
        info!(robots_url = %url, planned, "robots.txt allows the planned pages");
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
    pub async fn finish(mut self) -> Result<RunSummary, CrawlError> {
        let stats = self.stats().await?;
        // The last figures, after the feeder's last tick.
        if let Some(w) = self.monitor.take() {
            w.feeder.abort();
            w.monitor.supervisor_stats(&stats);
        }
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
pub struct BatchEnd {
    /// Pages lost after their retries, as the failures file lists them.
    pub failures: Vec<FailedPage>,
    /// Shutdown was requested while the batch ran.
    pub interrupted: bool,
    /// Per page of the plan, in plan order: whether it ended, done, failed
    /// or past its tag's end. After an interruption, the others were never
    /// fetched.
    pub ended: Vec<bool>,
}

/// How many jobs per fetcher the crawler keeps submitted ahead of the
/// fetchers: enough that a fetcher never waits for the next job, few enough
/// that a pass of any length holds a few dozen jobs, not all of them.
pub const JOBS_AHEAD_PER_FETCHER: usize = 4;

impl Crawler {
    /// Crawls a plan: submits its pages in order, a window at a time (a
    /// few per fetcher), and awaits them in completion order, logging a line
    /// per page and a status line every `status_every`. On shutdown it
    /// submits no more, stops handing out jobs and lets in-flight pages
    /// finish.
    pub async fn drive(
        &mut self,
        plan: &Plan,
        shutdown: &mut watch::Receiver<bool>,
        status: &mut tokio::time::Interval,
    ) -> Result<BatchEnd, CrawlError> {
        let window = self.config.fetchers.max(1) * JOBS_AHEAD_PER_FETCHER;
        let mut jobs = plan.jobs().enumerate();
        let mut pending = FuturesUnordered::new();
        let mut driven = BatchEnd {
            ended: vec![false; plan.len()],
            ..BatchEnd::default()
        };
        // In-flight pages get this long to finish after a shutdown request;
        // pages cut off are not recorded done, so a resume fetches them.
        let drain_limit = self.config.timeout + self.config.retry_base;
        let mut drain_deadline = None;
        loop {
            while !driven.interrupted && pending.len() < window {
                let Some((i, job)) = jobs.next() else { break };
                pending.push(self.submit(job).map(move |outcome| (i, outcome)));
            }
            let (i, outcome) = tokio::select! {
                next = pending.next() => match next {
                    Some(o) => o,
                    None => break,
                },
                _ = shutdown.wait_for(|stop| *stop), if !driven.interrupted => {
                    let s = self.stats().await?;
                    // Pending: queued at the supervisor, or not yet submitted.
                    let pending = s.queued + jobs.len();
                    warn!(in_flight = s.in_flight, pending, "shutdown requested: draining");
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
            if let Some(m) = self.monitor() {
                m.page_ended(&outcome);
            }
            driven.ended[i] = match &outcome {
                PageOutcome::Done(_) | PageOutcome::Failed(_) => true,
                // The supervisor's words for a page past its tag's last:
                // there is nothing to fetch there, interrupted or not.
                PageOutcome::Skipped { why, .. } => *why == WHY_TAG_ENDED || *why == WHY_ELSEWHERE,
            };
            match outcome {
                PageOutcome::Done(r) => info!(
                    tag = %r.ctx.tag,
                    page = r.ctx.page,
                    questions = r.questions,
                    duplicates = r.duplicates,
                    rejected = r.rejected,
                    new = self.stored.then_some(r.new),
                    updated = self.stored.then_some(r.updated),
                    tag_views_total = r.tag_views_total,
                    attempts = r.attempts,
                    elapsed_ms = r.elapsed.as_millis() as u64,
                    "page done"
                ),
                PageOutcome::Failed(f) => driven.failures.push(f),
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
        let pass = self
            .pipeline
            .aggregator
            .send(GetPassCounts)
            .await
            .map_err(|_| CrawlError::Stopped)?;
        if let Some(m) = self.monitor() {
            m.supervisor_stats(&s);
            if let Some(st) = &store {
                m.store_stats(st);
            }
            if let Some((name, wait)) = next_pass {
                m.next_pass(name, wait);
            }
        }
        info!(
            worker = %self.config.fleet.name,
            pages_done = s.done,
            pages_elsewhere = (s.elsewhere > 0).then_some(s.elsewhere),
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
            rejected = pass.rejected,
            layout_drift_pages = pass.layout_drift_pages,
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

pub(crate) async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Log fields stay numbers (for log tools) but without float noise.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
