//! Supervisor: owns the frontier. Receives `Submit`ted page jobs, hands one
//! `PageJob` at a time to each idle fetcher (so no mailbox grows without
//! bound), and on `JobEnded` resolves the job's future, requeues a retryable
//! failure with exponential backoff and jitter, pauses the pool when the
//! server asks, and stops a tag's pages after its first empty page.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use crate::actors::fetcher::{Fetcher, JobEnded, JobError};
use crate::budget::Budget;
use crate::fetch::FetchError;
use crate::model::{PageContext, PageReport};
use crate::plan::PageJob;
use crate::throttle::Throttle;

/// How a submitted page ended.
#[derive(Debug, Clone)]
pub enum PageOutcome {
    Done(PageReport),
    /// Failed after its retries, or at once when not retryable.
    Failed(PageFailure),
    /// Not fetched: its tag ran out before it, or the crawl was drained.
    Skipped {
        ctx: PageContext,
        url: String,
        why: &'static str,
    },
}

#[derive(Debug, Clone)]
pub struct PageFailure {
    pub ctx: PageContext,
    pub url: String,
    pub attempts: u32,
    pub kind: &'static str,
    pub error: String,
}

/// One page job with the future waiting on it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Submit {
    pub job: PageJob,
    pub reply: oneshot::Sender<PageOutcome>,
}

/// Stop handing out jobs: pending ones end as skipped, in-flight ones finish.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Drain;

#[derive(Debug, Message)]
#[rtype(result = "SupervisorStats")]
pub struct GetStats;

#[derive(Debug, Clone, Default)]
pub struct SupervisorStats {
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
    pub done: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Jobs waiting for a fetcher, and jobs being fetched.
    pub queued: usize,
    pub in_flight: usize,
    pub budget_left: u64,
    /// Set when the daily budget ran out: when it resets.
    pub budget_resets_at: Option<DateTime<Utc>>,
    pub effective_rate: f64,
}

struct Pending {
    job: PageJob,
    reply: oneshot::Sender<PageOutcome>,
}

/// Politeness settings the supervisor needs from the config.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    /// A block page gets a long pause: hammering it only makes things worse.
    pub block_pause: Duration,
}

impl RetryPolicy {
    /// Exponential backoff with full jitter in [0.5, 1.5) of the step, so
    /// failed pages do not come back in lockstep.
    fn backoff(&self, attempt: u32) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        step.mul_f64(0.5 + fastrand::f64())
    }
}

pub struct Supervisor {
    policy: RetryPolicy,
    throttle: Arc<Throttle>,
    /// Shared with the robots.txt check, which spends from it too.
    budget: Arc<Mutex<Budget>>,
    host: String,
    fetchers: Vec<Addr<Fetcher>>,
    idle: Vec<usize>,
    frontier: VecDeque<Pending>,
    in_flight: HashMap<usize, Pending>,
    /// Per (tag, tab): the first page found empty.
    exhausted: HashMap<(String, String), u32>,
    draining: bool,
    stats: SupervisorStats,
}

impl Supervisor {
    pub fn new(
        policy: RetryPolicy,
        throttle: Arc<Throttle>,
        budget: Arc<Mutex<Budget>>,
        host: String,
    ) -> Supervisor {
        Supervisor {
            policy,
            throttle,
            budget,
            host,
            fetchers: Vec::new(),
            idle: Vec::new(),
            frontier: VecDeque::new(),
            in_flight: HashMap::new(),
            exhausted: HashMap::new(),
            draining: false,
            stats: SupervisorStats::default(),
        }
    }

    /// Fetchers are started after the supervisor (they need its address).
    pub fn add_fetcher(&mut self, fetcher: Addr<Fetcher>) {
        self.idle.push(self.fetchers.len());
        self.fetchers.push(fetcher);
    }

    fn is_past_end(&self, job: &PageJob) -> bool {
        self.exhausted
            .get(&(job.ctx.tag.clone(), job.ctx.tab.clone()))
            .is_some_and(|&empty| job.ctx.page > empty)
    }

    fn skip(&mut self, p: Pending, why: &'static str) {
        self.stats.skipped += 1;
        let _ = p.reply.send(PageOutcome::Skipped {
            ctx: p.job.ctx,
            url: p.job.url,
            why,
        });
    }

    fn dispatch(&mut self) {
        while !self.draining {
            let Some(&fetcher) = self.idle.last() else {
                break;
            };
            let Some(p) = self.frontier.pop_front() else {
                break;
            };
            if self.is_past_end(&p.job) {
                self.skip(p, "tag exhausted");
                continue;
            }
            if !self.spend_budget() {
                self.frontier.push_front(p);
                self.stop_for_budget();
                break;
            }
            self.idle.pop();
            self.stats.requests += 1;
            // At most one job per fetcher at a time: bounded by construction.
            self.fetchers[fetcher].do_send(p.job.clone());
            self.in_flight.insert(fetcher, p);
        }
    }

    /// Takes one request from the persisted daily budget.
    fn spend_budget(&mut self) -> bool {
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        let now = Utc::now();
        if !budget.take(&self.host, now) {
            return false;
        }
        if let Err(e) = budget.save() {
            warn!(error = %e, "request budget not saved; the count may restart");
        }
        self.stats.budget_left = budget.remaining(&self.host, now);
        true
    }

    fn stop_for_budget(&mut self) {
        let now = Utc::now();
        let resets = Budget::resets_at(now);
        let limit = self
            .budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .limit();
        error!(
            host = %self.host,
            daily_budget = limit,
            resets_at = %resets.to_rfc3339(),
            pages_not_fetched = self.frontier.len(),
            "daily request budget exhausted: crawl stops; it resets at {}",
            resets.to_rfc3339()
        );
        self.stats.budget_resets_at = Some(resets);
        self.draining = true;
        for p in std::mem::take(&mut self.frontier) {
            self.skip(p, "daily budget exhausted");
        }
    }

    fn mark_exhausted(&mut self, ctx: &PageContext) {
        let key = (ctx.tag.clone(), ctx.tab.clone());
        let first_empty = self.exhausted.entry(key).or_insert(ctx.page);
        if ctx.page < *first_empty {
            *first_empty = ctx.page;
        }
        info!(tag = %ctx.tag, tab = %ctx.tab, page = ctx.page, "tag exhausted: no further pages handed out");
        let (past, keep): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.frontier)
            .into_iter()
            .partition(|p| self.is_past_end(&p.job));
        self.frontier = keep;
        for p in past {
            self.skip(p, "tag exhausted");
        }
    }

    fn retry_later(&mut self, mut p: Pending, err: &JobError, ctx: &mut Context<Self>) {
        let mut wait = self.policy.backoff(p.job.attempt);
        match err {
            JobError::Fetch(FetchError::RateLimited {
                status,
                retry_after,
            }) => {
                self.stats.rate_limited += 1;
                // The server's own figure wins; without one, the backoff.
                let pause = retry_after.unwrap_or(wait);
                let until = self.throttle.pause_for(pause);
                wait = wait.max(pause);
                warn!(
                    status,
                    pause_secs = pause.as_secs_f64(),
                    resume_in_secs = until.saturating_duration_since(tokio::time::Instant::now()).as_secs_f64(),
                    url = %p.job.url,
                    "server asked to slow down: whole pool paused"
                );
            }
            JobError::Page(e) if e.is_block() => {
                let pause = self.policy.block_pause;
                self.throttle.pause_for(pause);
                wait = wait.max(pause);
                error!(
                    url = %p.job.url,
                    pause_secs = pause.as_secs_f64(),
                    "BLOCK PAGE: the site served a captcha/verification page; whole pool paused"
                );
            }
            _ => {}
        }
        self.stats.retries += 1;
        warn!(
            tag = %p.job.ctx.tag,
            page = p.job.ctx.page,
            attempt = p.job.attempt,
            why = %err,
            wait_ms = wait.as_millis() as u64,
            "retrying page"
        );
        p.job.attempt += 1;
        ctx.run_later(wait, move |act, _| {
            if act.draining {
                act.skip(p, "crawl drained");
            } else {
                // A retry goes first: its page is older than anything queued.
                act.frontier.push_front(p);
                act.dispatch();
            }
        });
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

impl Handler<Submit> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Submit, _: &mut Context<Self>) {
        let p = Pending {
            job: msg.job,
            reply: msg.reply,
        };
        if self.draining {
            let why = if self.stats.budget_resets_at.is_some() {
                "daily budget exhausted"
            } else {
                "crawl drained"
            };
            self.skip(p, why);
        } else {
            self.frontier.push_back(p);
            self.dispatch();
        }
    }
}

impl Handler<JobEnded> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: JobEnded, ctx: &mut Context<Self>) {
        self.idle.push(msg.fetcher);
        let Some(p) = self.in_flight.remove(&msg.fetcher) else {
            error!(
                fetcher = msg.fetcher,
                "outcome for a job the supervisor did not hand out"
            );
            self.dispatch();
            return;
        };
        match msg.result {
            Ok(report) => {
                self.stats.done += 1;
                if let Some(rate) = self.throttle.record_success() {
                    info!(effective_rate = rate, "adaptive rate recovering");
                }
                if report.ends_tag {
                    self.mark_exhausted(&report.ctx);
                }
                let _ = p.reply.send(PageOutcome::Done(report));
            }
            Err(e) if e.is_retryable() && p.job.attempt <= self.policy.max_retries => {
                self.retry_later(p, &e, ctx);
            }
            Err(e) => {
                if let JobError::Fetch(FetchError::RateLimited { .. }) = e {
                    self.stats.rate_limited += 1;
                }
                self.stats.failed += 1;
                error!(
                    tag = %p.job.ctx.tag,
                    page = p.job.ctx.page,
                    attempts = p.job.attempt,
                    url = %p.job.url,
                    error = %e,
                    "page failed"
                );
                let _ = p.reply.send(PageOutcome::Failed(PageFailure {
                    ctx: p.job.ctx,
                    url: p.job.url,
                    attempts: p.job.attempt,
                    kind: e.kind(),
                    error: e.to_string(),
                }));
            }
        }
        self.dispatch();
    }
}

impl Handler<Drain> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) {
        if !self.draining {
            info!(
                pending = self.frontier.len(),
                in_flight = self.in_flight.len(),
                "draining: no new pages handed out, in-flight pages finish"
            );
        }
        self.draining = true;
        for p in std::mem::take(&mut self.frontier) {
            self.skip(p, "crawl drained");
        }
    }
}

impl Handler<GetStats> for Supervisor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        let mut stats = self.stats.clone();
        stats.queued = self.frontier.len();
        stats.in_flight = self.in_flight.len();
        stats.effective_rate = self.throttle.effective_rate();
        stats.budget_left = self
            .budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remaining(&self.host, Utc::now());
        MessageResult(stats)
    }
}
