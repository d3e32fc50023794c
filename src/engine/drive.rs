//! Driving a batch of pages through the pipeline: the loop that submits a
//! window at a time, sees every outcome, the shutdown request, the drain
//! deadline and the status timer, and never waits on the store.

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use tracing::{info, warn};

use super::clock::sleep_until_opt;
use super::crawler::{round3, Crawler};
use super::frontier::WHY_TAG_ENDED;
use super::patience::SHUTDOWN_GRACE;
use super::plan::Plan;
use super::supervisor::{PageOutcome, WHY_ELSEWHERE};
use crate::error::CrawlError;
use crate::lane::stall::Stalled;
use crate::model::FailedPage;
use crate::store::StoreLocation;

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
    /// Per page of the plan, in plan order: the requests a page that did
    /// not end had (one waiting out a retry when the crawl stopped had some).
    pub tried: Vec<u32>,
}

/// How many jobs per fetcher the crawler keeps submitted ahead of the
/// fetchers: enough that a fetcher never waits for the next job, few enough
/// that a pass of any length holds a few dozen jobs, not all of them.
pub const JOBS_AHEAD_PER_FETCHER: usize = 4;

/// On a store a fleet shares, how many times [`JOBS_AHEAD_PER_FETCHER`]
/// the window holds. Where processes meet, a page another one holds stays
/// in the window, parked until it is asked about again (when its write is
/// announced, or its lease expires),
/// while the fetchers go on to the next; with the plain window the parked
/// pages filled it and the fetchers waited (issue 20 §1). A parked page
/// costs no request, and a job is a URL and a context: a few dozen more
/// are nothing to hold.
pub const FLEET_WINDOW_FACTOR: usize = 4;

impl Crawler {
    /// Crawls a plan: submits its pages in order, a window at a time (a
    /// few per fetcher), and awaits them in completion order, logging a line
    /// per page and a status line every `status` tick. On shutdown it
    /// submits no more, stops handing out jobs and lets in-flight pages
    /// finish, for as long as a request may take, or [`SHUTDOWN_GRACE`]
    /// when the store does not answer (nothing in flight could be written).
    /// Nothing in this loop waits on the store.
    pub async fn drive(
        &mut self,
        plan: &Plan,
        status: &mut tokio::time::Interval,
    ) -> Result<BatchEnd, CrawlError> {
        let shared = matches!(self.config.store, StoreLocation::Postgres(_));
        let window = self.config.fetchers.max(1)
            * JOBS_AHEAD_PER_FETCHER
            * if shared { FLEET_WINDOW_FACTOR } else { 1 };
        let mut jobs = plan.jobs().enumerate();
        let mut pending = FuturesUnordered::new();
        let mut driven = BatchEnd {
            ended: vec![false; plan.len()],
            tried: vec![0; plan.len()],
            ..BatchEnd::default()
        };
        let mut shutdown = self.shutdown.clone();
        // Asked before the first page went out (while robots.txt was
        // checked, say): the pass submits nothing, and lists every page as
        // not fetched.
        driven.interrupted = *shutdown.borrow();
        // In-flight pages get this long to finish after a shutdown request;
        // pages cut off are not recorded done, so a resume fetches them.
        let drain_limit = self.config.timeout + self.config.retry_base;
        let mut drain_deadline = None;
        // While draining, whether the store still answers is looked at
        // this often: a stalled store writes nothing more, so waiting the
        // whole drain for it would only delay the exit.
        let mut drain_check = tokio::time::interval(std::time::Duration::from_millis(250));
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
                    warn!(in_flight = s.in_flight, pending, retrying = s.retrying, "shutdown requested: draining");
                    self.drain();
                    driven.interrupted = true;
                    drain_deadline = Some(tokio::time::Instant::now() + drain_limit);
                    continue;
                }
                _ = drain_check.tick(), if driven.interrupted => {
                    if self.stalls.current().iter().any(|s| s.what == Stalled::Store) {
                        let grace = tokio::time::Instant::now() + SHUTDOWN_GRACE;
                        drain_deadline = drain_deadline.map(|d| d.min(grace));
                    }
                    continue;
                }
                _ = sleep_until_opt(drain_deadline) => {
                    warn!(
                        abandoned = pending.len(),
                        pages_not_written = self.pipeline.view.unwritten(),
                        "drain timed out; unfinished pages are left for the next run"
                    );
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
            if let PageOutcome::Skipped { attempts, .. } = &outcome {
                driven.tried[i] = *attempts;
            }
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
    /// which tag set is due next and when. It reads what the store last
    /// published and never asks it, so a stalled store cannot hold it up;
    /// a stall is named in the line and in a warning of its own.
    pub async fn log_status(
        &self,
        next_pass: Option<(&str, std::time::Duration)>,
    ) -> Result<(), CrawlError> {
        let s = self.stats().await?;
        let viewed = self.pipeline.view.latest();
        let store = viewed.stats.as_ref();
        let stalls = self.stalls.current();
        let waited = |what: Stalled| {
            stalls
                .iter()
                .find(|s| s.what == what)
                .map(|s| s.waited.as_secs())
        };
        if let Some(m) = self.monitor() {
            m.supervisor_stats(&s);
            if let Some(st) = store {
                m.store_stats(st);
            }
            m.stalls(&stalls);
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
            retrying = s.retrying,
            requests = s.requests,
            retries = s.retries,
            rate_limited = s.rate_limited,
            effective_rate = round3(s.effective_rate),
            quota_rate = self.config.rate,
            requests_last_minute = s.requests_last_minute,
            quota_per_minute = round3(self.config.rate * 60.0),
            budget_left = s.budget_left,
            rejected = viewed.pass.rejected,
            layout_drift_pages = viewed.pass.layout_drift_pages,
            api_requests = (s.quota.requests > 0).then_some(s.quota.requests),
            api_quota_remaining = s.quota.quota_remaining,
            api_backoffs = (s.quota.backoffs > 0).then_some(s.quota.backoffs),
            pages_per_sec = round3(s.done as f64 / self.started.elapsed().as_secs_f64()),
            store_questions = store.map(|st| st.questions),
            store_bytes = store.map(|st| st.size_bytes),
            store_waiting_secs = waited(Stalled::Store),
            budget_waiting_secs = waited(Stalled::Budget),
            pages_not_written = (self.pipeline.view.unwritten() > 0).then(|| self.pipeline.view.unwritten()),
            next_pass = next_pass.map(|(name, _)| name),
            next_pass_in_secs = next_pass.map(|(_, wait)| round3(wait.as_secs_f64())),
            "status"
        );
        for stall in &stalls {
            warn!(
                waiting_on = stall.what.name(),
                waited_secs = stall.waited.as_secs(),
                doing = %stall.why,
                give_up_secs = self.config.store_give_up.as_secs(),
                "waiting: the {} has not answered for {} s; fetched pages are kept until written and no request goes out uncounted",
                stall.what.name(),
                stall.waited.as_secs()
            );
        }
        Ok(())
    }
}
