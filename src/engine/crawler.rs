//! The crawler: a running pipeline (supervisor, fetchers, cleaner,
//! aggregator) behind the futures-style API of the Dask tutorial this
//! descends from. [`Crawler::submit`] one page and get a future of its
//! outcome, [`Crawler::map`] a tag over a page range, [`gather`] them, or
//! take them in completion order with [`as_completed`]; [`Crawler::drive`]
//! awaits a batch with the log lines an operator reads.

use std::collections::HashMap;
use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::{join_all, BoxFuture};
use futures_util::stream::FuturesUnordered;
use futures_util::FutureExt;
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use actix::{Handler, Message};

use crate::config::{Config, Tab};
use crate::engine::aggregator::{
    Aggregator, BeginPass, EndPass, FinishedPassStarted, Flush, OpenedPass, RewriteOutput,
};
use crate::engine::patience::Patience;
use crate::engine::pipeline::Pipeline;
use crate::engine::plan::{PageJob, Plan};
use crate::engine::retry::RetryPolicy;
use crate::engine::supervisor::PageOutcome;
use crate::engine::supervisor::{Drain, GetStats, NewPass, Submit, SupervisorStats};
use crate::error::CrawlError;
use crate::lane::budget::Budget;
use crate::lane::ledger::Ledger;
use crate::lane::robots::{self, RobotsError, RobotsPolicy};
use crate::lane::shared_quota::SharedQuota;
use crate::lane::stall::Stalls;
use crate::lane::throttle::Throttle;
use crate::lane::{Counting, Lane, LaneError, Opening};
use crate::model::RunSummary;
use crate::observe::monitor::Monitor;
use crate::source::fetch::{FetchError, HttpClient};
use crate::source::{Lanes, Source};
use crate::store::output::{OutputError, Sink};
use crate::store::{self, ExportFormat, PassStore, PassTotals, SharedCounter, StoreLocation};

/// A page's outcome, once it has one. Resolves even if the crawler stops.
pub type PageFuture = BoxFuture<'static, PageOutcome>;

/// A running pipeline: submit page jobs to it, then `finish` it.
pub struct Crawler {
    pub(super) config: Arc<Config>,
    pub(super) pipeline: Pipeline,
    pub(super) http: HttpClient,
    pub(super) started: Instant,
    submitted: u64,
    /// Records go to a store too: pages have new and updated counts.
    pub(super) stored: bool,
    monitor: Option<Watched>,
    /// What the crawl waits on that does not answer (store, budget).
    pub(super) stalls: Stalls,
    /// Set once shutdown is requested (see [`Crawler::stop_on`]).
    pub(super) shutdown: watch::Receiver<bool>,
}

/// An app key's daily quota is the key's, wherever it is spent: a fleet
/// sharing a PostgreSQL store spends it from one row there. Without a key
/// (or a shared store) the quota is the IP's, which the budget file keeps.
struct KeyBudget {
    /// The lane's budget entry.
    key: String,
    budget: Budget,
    opening: Opening,
}

impl KeyBudget {
    /// Blocking: connects to the fleet's database when there is one.
    fn open(config: &Config) -> Result<Vec<KeyBudget>, CrawlError> {
        let StoreLocation::Postgres(url) = &config.store else {
            return Ok(Vec::new());
        };
        Source::ALL
            .into_iter()
            .map(|s| s.lane_spec(config))
            .filter_map(|spec| Some((spec.app_key.clone()?, spec)))
            .map(|(app_key, spec)| {
                let counter = SharedCounter::open(url, app_key.expose())
                    .map_err(|e| CrawlError::Output(e.into()))?;
                let limit = spec.daily_limit.unwrap_or(config.daily_budget);
                let budget = Budget::shared(counter, limit);
                let opening = Opening::read(&budget, &spec.key);
                Ok(KeyBudget {
                    key: spec.key,
                    budget,
                    opening,
                })
            })
            .collect()
    }
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
    /// Starts the actors, writing records to `sink` and/or `store` (`crawl`:
    /// a file and perhaps a store), stopping when `shutdown` turns true.
    /// Must be called from within a running actix System. A fleet's key
    /// budget is opened as [`Crawler::open`] opens `run`'s: off the loop,
    /// under the store's [`Patience`].
    pub async fn start(
        config: Config,
        sink: Option<Sink>,
        store: Option<Box<dyn PassStore>>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Crawler, CrawlError> {
        let cfg = config.clone();
        let key_budgets = Crawler::patience_opening(&config, &shutdown)
            .off_loop("opening the fleet's key budget", move || {
                KeyBudget::open(&cfg)
            })
            .await??;
        let mut crawler = Crawler::start_opened(config, sink, store, key_budgets)?;
        crawler.stop_on(shutdown);
        Ok(crawler)
    }

    /// How a crawler waits on what it opens before its actors run.
    fn patience_opening<'a>(config: &Config, shutdown: &'a watch::Receiver<bool>) -> Patience<'a> {
        Patience {
            give_up: config.store_give_up,
            status_every: config.status_every,
            shutdown,
            view: None,
        }
    }

    /// [`Crawler::start`] for `run`: its store (and a fleet's key budget)
    /// are opened on a thread of their own under the store's [`Patience`],
    /// so a database that does not answer at a start, a reload or after a
    /// budget reset never holds the loop that sees signals.
    pub async fn open(
        config: Config,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Crawler, CrawlError> {
        let cfg = config.clone();
        let (store, key_budgets) = Crawler::patience_opening(&config, shutdown)
            .off_loop("opening the store", move || {
                let store = store::open(&cfg.store).map_err(|e| CrawlError::Output(e.into()))?;
                Ok::<_, CrawlError>((store, KeyBudget::open(&cfg)?))
            })
            .await??;
        let mut crawler = Crawler::start_opened(config, None, Some(store), key_budgets)?;
        crawler.stop_on(shutdown.clone());
        Ok(crawler)
    }

    fn start_opened(
        config: Config,
        sink: Option<Sink>,
        store: Option<Box<dyn PassStore>>,
        key_budgets: Vec<KeyBudget>,
    ) -> Result<Crawler, CrawlError> {
        let http = HttpClient::new(&config).map_err(CrawlError::HttpClient)?;
        let stalls = Stalls::default();
        let mut budget = Budget::open(&config.budget_file, config.daily_budget)?;
        for spec in Source::ALL.map(|s| s.lane_spec(&config)) {
            if let Some(limit) = spec.daily_limit {
                budget.set_limit(&spec.key, limit);
            }
        }
        // A source spending an app key's quota in a fleet counts in the key's
        // own budget; every other counts in the file. What the file says of
        // each key is read before the file moves onto its ledger.
        let mut keyed: HashMap<String, KeyBudget> = key_budgets
            .into_iter()
            .map(|k| (k.key.clone(), k))
            .collect();
        let from_file: HashMap<String, Opening> = Source::ALL
            .map(|s| s.lane_spec(&config).key)
            .into_iter()
            .filter(|key| !keyed.contains_key(key))
            .map(|key| (key.clone(), Opening::read(&budget, &key)))
            .collect();
        let file = Ledger::start(budget);
        let lanes = Lanes::build(&config, |spec| -> Result<Arc<Lane>, CrawlError> {
            let (ledger, opening) = match keyed.remove(&spec.key) {
                Some(k) => (Ledger::start(k.budget), k.opening),
                None => (
                    file.clone(),
                    from_file.get(&spec.key).copied().unwrap_or_default(),
                ),
            };
            let counting = Counting {
                ledger,
                stalls: stalls.clone(),
                give_up: config.store_give_up,
            };
            let rate = spec.rate.map_or(config.rate, |r| r.min(config.rate));
            let lane = Lane::new(
                spec.key,
                Throttle::new(rate, config.burst),
                counting,
                opening,
                spec.serial,
            );
            // Processes behind one egress IP share its per-second quota.
            Ok(Arc::new(
                match (&config.fleet.shared_quota, &config.store) {
                    (Some(name), StoreLocation::Postgres(url)) => {
                        let quota = SharedQuota::new(url, name, &lane.key, rate, config.burst)
                            .map_err(|e| CrawlError::Output(e.into()))?;
                        lane.with_shared_quota(quota)
                    }
                    _ => lane,
                },
            ))
        })?;
        let started = Instant::now();
        let stored = store.is_some();
        let pipeline = Pipeline::start(&config, http.clone(), lanes, sink, store, stalls.clone());
        Ok(Crawler {
            config: Arc::new(config),
            pipeline,
            http,
            started,
            submitted: 0,
            stored,
            monitor: None,
            stalls,
            shutdown: shutdown_flag(std::future::pending()),
        })
    }

    /// Stops when `shutdown` turns true: a batch being driven drains, and
    /// a store that does not answer is waited for
    /// [`SHUTDOWN_GRACE`](super::patience::SHUTDOWN_GRACE) more.
    pub fn stop_on(&mut self, shutdown: watch::Receiver<bool>) {
        self.shutdown = shutdown;
    }

    /// Asks the aggregator (the store's thread) and waits for its answer
    /// under the one policy for a store that does not answer: a warning at
    /// every status interval naming what waits, for how long and how many
    /// fetched pages are not written; after a shutdown request, the answer
    /// is waited for [`SHUTDOWN_GRACE`](super::patience::SHUTDOWN_GRACE)
    /// more; after `[store] give_up_secs`, the crawl stops.
    async fn ask<M>(&self, msg: M, what: &'static str) -> Result<M::Result, CrawlError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        Aggregator: Handler<M>,
    {
        let reply = self.pipeline.aggregator.send(msg);
        self.patience()
            .wait(what, reply)
            .await?
            .map_err(|_| CrawlError::Stopped)
    }

    /// How this crawler waits on its store and budget (see [`Patience`]).
    fn patience(&self) -> Patience<'_> {
        Patience {
            give_up: self.config.store_give_up,
            status_every: self.config.status_every,
            shutdown: &self.shutdown,
            view: Some(&self.pipeline.view),
        }
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
            .ask(
                BeginPass {
                    tag_set: tag_set.to_string(),
                    newest,
                    now: chrono::Utc::now(),
                },
                "starting the pass",
            )
            .await??;
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
            self.report_store_stats(m);
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
            .ask(
                FinishedPassStarted {
                    tag_set: tag_set.to_string(),
                },
                "reading when the tag set's last pass started",
            )
            .await??)
    }

    /// Ends the current store pass; only a `finished` one is closed, so an
    /// interrupted pass is resumed next time.
    pub async fn end_pass(&self, finished: bool) -> Result<PassTotals, CrawlError> {
        let totals = self
            .ask(
                EndPass {
                    finished,
                    now: chrono::Utc::now(),
                },
                "ending the pass",
            )
            .await??;
        if let Some(m) = self.monitor() {
            // A report taken now counts every page of the pass, so the
            // pass is shown whole as it ends, not at the next tick.
            if let Ok(stats) = self.stats().await {
                m.supervisor_stats(&stats);
            }
            m.pass_ended(finished);
            self.report_store_stats(m);
        }
        Ok(totals)
    }

    /// Rewrites the file output `path` with the store's latest records
    /// (`run`, after each finished pass). The outer error is the crawl's
    /// (stopped, the store gave up); the inner one the file's.
    pub async fn rewrite_output(
        &self,
        path: &std::path::Path,
        format: ExportFormat,
    ) -> Result<Result<u64, OutputError>, CrawlError> {
        let path = path.to_path_buf();
        self.ask(RewriteOutput { path, format }, "rewriting the output")
            .await
    }

    /// The store's totals for the monitor, at the moments they change most
    /// (a pass's start and end); pages add their new questions between.
    fn report_store_stats(&self, m: &Monitor) {
        if let Some(st) = self.pipeline.view.latest().stats {
            m.store_stats(&st);
        }
    }

    /// Fetches robots.txt once (through the shared quota and budget) and
    /// checks every planned URL against it. Unreachable robots.txt is
    /// retried, then treated as the config says. A shutdown request ends
    /// the check at once, whatever it waits on (the quota, a site that does
    /// not answer, a retry's backoff): a pass driven after it submits no
    /// page, so nothing unchecked is fetched.
    pub async fn check_robots(&self, plan: &Plan) -> Result<(), CrawlError> {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            checked = self.ask_robots(plan) => checked,
            // Only a shutdown asked for (a flag whose sender is gone says
            // nothing): the pass then submits nothing.
            Ok(_) = shutdown.wait_for(|stop| *stop) => {
                warn!("shutdown requested before robots.txt was checked: no page is fetched");
                Ok(())
            }
        }
    }

    async fn ask_robots(&self, plan: &Plan) -> Result<(), CrawlError> {
        let url = robots::robots_url(&self.config.base_url);
        // robots.txt governs crawlers of the site's pages; the API is a
        // documented interface with its own rules (quota, backoff), on
        // another host, so API pages are neither checked nor counted.
        // The URLs are built as they are checked: a plan holds none.
        let pages = || plan.jobs().filter(|j| j.source.obeys_robots());
        let planned = plan.pages().filter(|p| p.source.obeys_robots()).count();
        // Pages an archive's index lists are not in the plan yet, and none
        // of them is the site's.
        if planned == 0 && !(plan.is_empty() && plan.index_lanes().is_empty()) {
            debug!(
                api_pages = plan.len(),
                "robots.txt not fetched: the plan has only API or archive pages, and robots.txt governs neither"
            );
            return Ok(());
        }
        if !self.config.obey_robots {
            warn!(robots_url = %url, "site.obey_robots = false: robots.txt is NOT checked; crawl only sites you may crawl");
            return Ok(());
        }
        let lane = self.pipeline.lanes.site();
        let retry = RetryPolicy::from_config(&self.config);
        let mut attempt = 0;
        let policy = loop {
            attempt += 1;
            let ticket = lane.admit().await.map_err(|e| match e {
                LaneError::Exhausted { resets_at, .. } => CrawlError::BudgetExhausted { resets_at },
                e => e.into(),
            })?;
            let response = self.http.get_response(&url).await;
            // Settled like a page's: a site that throttles counts robots.txt
            // among the requests it allows, and its Retry-After binds every
            // request.
            lane.settle(
                &ticket,
                match &response {
                    Ok(r) => r.reply(),
                    Err(e) => e.reply(),
                },
            );
            drop(ticket);
            let unreachable = matches!(response, Err(FetchError::Connect(_)));
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
                // No connection at all: every page would fail the same way,
                // whatever robots_unreachable allows.
                if unreachable {
                    return Err(CrawlError::Unreachable {
                        url: self.config.base_url.clone(),
                        reason,
                    });
                }
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
                attempts: 0,
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
        let totals = self.ask(Flush, "flushing the output").await??;
        // Refunds and pauses go to the budget unawaited: the budget must
        // hold them before the run says it ended.
        let lanes = self.pipeline.lanes.clone();
        let settled = futures_util::future::join_all(lanes.all().map(|l| l.finish()));
        self.patience()
            .wait("writing the request budget", settled)
            .await?;
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
            sending_time: stats.sending,
            quota: (stats.quota.requests > 0).then_some(stats.quota),
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
        crate::observe::systemd::notify("STOPPING=1");
        let _ = tx.send(true);
    });
    rx
}

/// Log fields stay numbers (for log tools) but without float noise.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
