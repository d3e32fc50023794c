//! Supervisor: owns the frontier and decides what is fetched next. Receives
//! `Submit`ted page jobs, leases pages from a store a fleet shares before
//! they go out (`ClaimPages`: the frontier's next pages offered in one
//! claim, of which the store leases the first free ones to the idle
//! fetchers; awaited off its handlers; a fetcher kept waiting renews its
//! lease through `RenewLease`; a page another process holds waits for its
//! write or release to be announced, `Heard`), hands one `PageJob`
//! at a time to each idle fetcher (so no mailbox grows without bound), and
//! on `JobEnded` resolves the job's future, requeues a retryable
//! failure with exponential backoff and jitter, pauses the pool when the
//! server asks, and stops a tag's pages after its first empty page. Where a
//! tag ended is forgotten at each new pass (`NewPass`).
//!
//! Jobs marked `after_previous` (API pages, and the pages of an incremental
//! pass) are paged one at a time per tag: page N+1 is handed out only once
//! page N said there is more (`has_more`, or new and changed questions), so
//! nothing is spent past the end; when page N is lost, the pages after it
//! fail unfetched (`not_reached`). The budget is spent by the fetchers
//! through their lanes; the supervisor stops the crawl when a lane says it
//! is spent.
//!
//! API pages follow the API's rules on top: a `throttle_violation` pauses the API pool, the
//! quota the API reports is kept and stops the crawl cleanly when it runs
//! low, and an error no retry can cure (a bad parameter, a refused key)
//! stops the whole crawl at once.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, MailboxError, Message,
    MessageResult, Recipient, ResponseActFuture, SpawnHandle, WrapFuture,
};
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::engine::aggregator::{Aggregator, ClaimPage, ClaimPages, ReleasePage};
use crate::engine::fetcher::{JobEnded, RenewLease};
use crate::engine::frontier::{Entry, Frontier, Unfetched};
use crate::engine::plan::PageJob;
use crate::engine::retry::{Decision, RetryPolicy, Stop};
use crate::lane::budget::Budget;
use crate::lane::LaneError;
use crate::model::{FailedPage, PageContext, PageReport, QuotaUsage, Signals};

use crate::source::fetch::FetchError;
use crate::source::{JobError, Lanes, Source};
use crate::store::output::OutputError;
use crate::store::pg::Announcement;
use crate::store::{Claim, LeaseToken};

/// How a submitted page ended.
#[derive(Debug, Clone)]
pub enum PageOutcome {
    Done(PageReport),
    /// Failed after its retries, or at once when not retryable.
    Failed(FailedPage),
    /// Not fetched: its tag ran out before it, or the crawl was drained.
    Skipped {
        ctx: PageContext,
        url: String,
        why: &'static str,
        /// The requests it had before it was skipped: a page waiting out
        /// a retry when the crawl stopped had one or more.
        attempts: u32,
    },
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

/// A new pass begins: where each tag ended in the last one says nothing
/// about where it ends now (new questions push every tag's end further).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct NewPass;

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
    /// Pages another process of the fleet fetched (they count as skipped
    /// here, done in the store).
    pub elsewhere: u64,
    /// Jobs waiting for a fetcher, and jobs being fetched.
    pub queued: usize,
    pub in_flight: usize,
    /// Jobs waiting out a retry's wait (a backoff, a Retry-After that may
    /// be an hour): neither queued nor in flight.
    pub retrying: usize,
    /// The most jobs held at once, waiting or being fetched: what the
    /// supervisor's memory grows with. A crawl submits a window at a time,
    /// so this stays a few per fetcher however long the plan.
    pub most_held: usize,
    pub budget_left: u64,
    /// Set when the daily budget (or the API's quota) ran out: when it
    /// resets.
    pub budget_resets_at: Option<DateTime<Utc>>,
    pub effective_rate: f64,
    /// Requests handed out in the last 60 s, to compare with the quota.
    pub requests_last_minute: usize,
    /// From the first request of any lane to the latest: what a crawl's
    /// request rate is measured over. Zero before a second request.
    pub sending: Duration,
    /// Of the sources that keep a quota of their own: requests, pauses
    /// and the quota they report.
    pub quota: QuotaUsage,
    /// The page whose failure stopped the crawl, if one did.
    pub fatal: Option<FatalPage>,
}

/// A failure no retry can cure and every other page would meet too (a
/// source's refusal: a bad parameter, a refused key; records that cannot
/// be written), with the page that met it.
#[derive(Debug, Clone)]
pub struct FatalPage {
    pub source: Source,
    pub ctx: PageContext,
    /// Without any key, like every URL a job carries.
    pub url: String,
    pub error: JobError,
}

/// Why pages were skipped when the crawl stopped handing them out.
const WHY_DRAINED: &str = "crawl drained";
const WHY_BUDGET: &str = "daily budget exhausted";
const WHY_QUOTA: &str = "the source's quota is exhausted";
const WHY_REFUSED: &str = "the source refused: crawl stopped";
const WHY_UNWRITABLE: &str = "records cannot be written: crawl stopped";
const WHY_BUDGET_BROKEN: &str = "request budget cannot be counted";
/// Why a page was not fetched: another process of the fleet did it.
pub const WHY_ELSEWHERE: &str = "fetched by another process";

/// How often a page another process holds is asked about again, at most,
/// while the fleet's announcements are not heard: a live holder finishes
/// in about a request's time, and a dead one's lease expires on its own
/// clock. While they are heard, a held page waits for its announcement
/// (written, or handed back) or for its lease to expire.
const RECHECK_HELD: Duration = Duration::from_secs(1);
/// The shortest wait for a held page: one locked by another process's
/// claim or write this instant is asked about again after it.
const RECHECK_LOCKED: Duration = Duration::from_millis(100);

/// On a store a fleet shares, how many of the frontier's next pages one
/// claim offers per idle fetcher. The store leases the first free ones, so
/// pages that other processes did or are doing are passed over in the
/// same round trip, where a claim per page asked about each in turn.
const CANDIDATES_PER_FETCHER: usize = 4;

/// How many pages one claim looks at (leasing none) while their lane is
/// paused.
const LOOKED_AT_IN_A_PAUSE: usize = 64;

/// A job with the future waiting on it.
type Pending = Entry<oneshot::Sender<PageOutcome>>;

/// Where pages are leased on a store a fleet shares: the aggregator's
/// store, through the three messages the supervisor sends it (which is
/// all it needs of the aggregator; its tests answer them themselves).
#[derive(Clone)]
pub struct Leases {
    pub claim_pages: Recipient<ClaimPages>,
    pub claim_page: Recipient<ClaimPage>,
    pub release: Recipient<ReleasePage>,
}

impl Leases {
    pub fn of(aggregator: &Addr<Aggregator>) -> Leases {
        Leases {
            claim_pages: aggregator.clone().recipient(),
            claim_page: aggregator.clone().recipient(),
            release: aggregator.clone().recipient(),
        }
    }
}

/// A job being fetched, with the count of announcements heard when its
/// claim was last looked up (at the claim that leased it, or at a
/// renewal): what an `Elsewhere` answer for it is measured against.
struct InFlight {
    pending: Pending,
    heard: u64,
}

/// A page as the fleet's announcements name it: tag, tab, page.
type PageKey = (String, String, u32);

fn key_of(ctx: &PageContext) -> PageKey {
    (ctx.tag.clone(), ctx.tab.clone(), ctx.page)
}

/// The requests a job not going out (again) had: its attempt is the one
/// it would have made next (a retry waits with the next attempt's number).
fn tried(job: &PageJob) -> u32 {
    job.attempt.saturating_sub(1)
}

/// A page another process holds, waiting to be asked about again: on its
/// announcement, or when `timer` fires.
struct HeldPage {
    pending: Pending,
    timer: SpawnHandle,
}

/// What the supervisor knows of the fleet's announcements (see
/// `store::pg::announce`).
#[derive(Default)]
struct Announced {
    /// Whether they are heard now: if not, held pages are asked about on
    /// a short timer.
    listening: bool,
    /// Announcements heard so far; a claim notes the count when it is sent.
    heard: u64,
    /// Per page of the pass, the count at its latest announcement: a claim
    /// that saw the page held, sent before that announcement, saw it
    /// before it settled.
    settled: HashMap<PageKey, u64>,
}

pub struct Supervisor {
    policy: RetryPolicy,
    /// This process's name in the fleet (`[fleet] name`).
    worker: String,
    /// The hosts' quotas and budgets, shared with the fetchers and the
    /// robots.txt check.
    lanes: Lanes,
    /// Where pages are leased before they go out: a store a fleet shares.
    leases: Option<Leases>,
    /// The API quota left at which the crawl stops cleanly.
    stop_at_quota_remaining: u64,
    fetchers: Vec<Recipient<PageJob>>,
    idle: Vec<usize>,
    frontier: Frontier<oneshot::Sender<PageOutcome>>,
    in_flight: HashMap<usize, InFlight>,
    /// Pages waiting out a retry's wait, by the number their timer holds:
    /// a stop settles them at once rather than when the wait ends (a
    /// Retry-After can be an hour).
    retrying: HashMap<u64, Pending>,
    next_retry: u64,
    /// Pages offered in claims not yet answered.
    claiming: usize,
    /// Pages other processes hold, waiting to be asked about again.
    held: HashMap<PageKey, HeldPage>,
    announced: Announced,
    /// Every page submitted and not yet resolved, with the futures of the
    /// copies submitted after it (a failures file that lists a page twice,
    /// a library caller): one job per page, so one claim never offers a
    /// page twice and the frontier never holds it twice; each copy's
    /// future resolves with the job's outcome.
    live: HashMap<PageKey, Vec<oneshot::Sender<PageOutcome>>>,
    stats: SupervisorStats,
    /// Whether any request has reached a server: until one has, a refused
    /// connection is the host being unreachable, said once, not per page.
    answered: bool,
    unreachable_said: bool,
}

impl Supervisor {
    pub fn new(
        policy: RetryPolicy,
        worker: String,
        lanes: Lanes,
        leases: Option<Leases>,
        stop_at_quota_remaining: u64,
    ) -> Supervisor {
        Supervisor {
            policy,
            worker,
            lanes,
            leases,
            stop_at_quota_remaining,
            fetchers: Vec::new(),
            idle: Vec::new(),
            frontier: Frontier::default(),
            in_flight: HashMap::new(),
            retrying: HashMap::new(),
            next_retry: 0,
            claiming: 0,
            held: HashMap::new(),
            announced: Announced::default(),
            live: HashMap::new(),
            stats: SupervisorStats::default(),
            answered: false,
            unreachable_said: false,
        }
    }

    /// A page's outcome: its future resolves, and so does every copy's.
    fn answer(&mut self, reply: oneshot::Sender<PageOutcome>, outcome: PageOutcome) {
        let ctx = match &outcome {
            PageOutcome::Done(report) => &report.ctx,
            PageOutcome::Failed(failed) => &failed.ctx,
            PageOutcome::Skipped { ctx, .. } => ctx,
        };
        for copy in self.live.remove(&key_of(ctx)).unwrap_or_default() {
            let _ = copy.send(outcome.clone());
        }
        let _ = reply.send(outcome);
    }

    /// A page not fetched, for `why`.
    fn skipped(&mut self, p: Pending, why: &'static str) {
        self.stats.skipped += 1;
        self.answer(
            p.reply,
            PageOutcome::Skipped {
                attempts: tried(&p.job),
                ctx: p.job.ctx,
                url: p.job.url,
                why,
            },
        );
    }

    /// Carries out what the frontier settled: every future resolves.
    fn deliver(&mut self, unfetched: Vec<Unfetched<oneshot::Sender<PageOutcome>>>) {
        for u in unfetched {
            match u {
                Unfetched::Skipped { entry, why } => self.skipped(entry, why),
                Unfetched::NotReached { entry, failed_page } => {
                    self.stats.failed += 1;
                    warn!(tag = %entry.job.ctx.tag, page = entry.job.ctx.page, failed_page, "page not fetched after an earlier page failed");
                    self.answer(entry.reply, PageOutcome::Failed(FailedPage {
                        attempts: tried(&entry.job),
                        ctx: entry.job.ctx,
                        url: entry.job.url,
                        kind: "not_reached".into(),
                        error: format!(
                            "not fetched: page {failed_page} of the tag failed, so whether this page exists is unknown"
                        ),
                    }));
                }
            }
        }
    }

    /// No further page is handed out; in-flight pages still finish.
    fn stop(&mut self, why: &'static str) {
        let out = self.frontier.stop(why);
        self.deliver(out);
        // Pages waiting on another process are not waited for any more
        // (their timers find nothing when they fire).
        for (_, h) in std::mem::take(&mut self.held) {
            let out = self.frontier.retry(h.pending);
            self.deliver(out);
        }
        let waiting: Vec<Pending> = self.retrying.drain().map(|(_, p)| p).collect();
        for p in waiting {
            self.settle_stopped(p);
        }
    }

    /// A page that would wait for a retry after the crawl stopped: not
    /// fetched, and its lease handed back for the rest of the fleet.
    fn settle_stopped(&mut self, p: Pending) {
        if let Some(lease) = p.job.lease {
            self.release(&p.job, lease, "crawl stopped");
        }
        let out = self.frontier.retry(p);
        self.deliver(out);
    }

    /// Fetchers are started after the supervisor (they need its address).
    pub fn add_fetcher(&mut self, fetcher: Recipient<PageJob>) {
        self.idle.push(self.fetchers.len());
        self.fetchers.push(fetcher);
    }

    /// Hands the next pages to idle fetchers, at most one job per fetcher
    /// at a time (bounded by construction). On a shared store the pages
    /// are leased first, a claim for all idle fetchers at once, and go out
    /// only once the store says they are ours.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let mut out = Vec::new();
        let Some(store) = self.leases.clone() else {
            while let Some(&fetcher) = self.idle.last() {
                let Some(p) = self.frontier.next(&mut out) else {
                    break;
                };
                self.idle.pop();
                self.fetchers[fetcher].do_send(p.job.clone());
                // Without a shared store nothing is announced.
                self.in_flight.insert(
                    fetcher,
                    InFlight {
                        pending: p,
                        heard: 0,
                    },
                );
            }
            self.deliver(out);
            return;
        };
        // While the next page's lane is paused, nothing is leased: the
        // pages are only looked at (done or held elsewhere, they settle
        // now), and the free ones wait for the pause's end, when another
        // process may have fetched them.
        let mut batch = Vec::new();
        let mut resume = None;
        loop {
            let enough = match resume {
                None => batch.len() >= self.idle.len() * CANDIDATES_PER_FETCHER,
                Some(_) => batch.len() >= LOOKED_AT_IN_A_PAUSE,
            };
            if enough {
                break;
            }
            let Some(p) = self.frontier.next(&mut out) else {
                break;
            };
            let paused = self.lanes.for_job(&p.job).throttle.paused_until();
            match (paused, batch.is_empty(), resume.is_some()) {
                (Some(until), true, _) => resume = Some(until),
                (Some(_), false, true) | (None, _, false) => {}
                // The batch is of the other kind: this page waits for
                // the next one.
                _ => {
                    self.frontier.put_back(p);
                    break;
                }
            }
            batch.push(p);
        }
        self.deliver(out);
        if batch.is_empty() {
            return;
        }
        // The fetchers the claim is for wait for its answer, out of `idle`.
        let free = match resume {
            None => self.idle.len().min(batch.len()),
            Some(_) => 0,
        };
        let fetchers = self.idle.split_off(self.idle.len() - free);
        self.claiming += batch.len();
        let heard = self.announced.heard;
        let claim = store.claim_pages.send(ClaimPages {
            pages: batch.iter().map(|p| p.job.ctx.clone()).collect(),
            want: fetchers.len(),
        });
        ctx.spawn(
            claim.into_actor(self).map(move |claims, act, ctx| {
                act.claimed(fetchers, batch, claims, heard, resume, ctx)
            }),
        );
    }

    /// The store's answer to a claim sent at dispatch: each leased page
    /// goes to one of the claim's fetchers, a page done or held elsewhere
    /// is settled as such, and one not claimed goes back to the front of
    /// the queue, in order (or, looked at during a lane's pause, waits
    /// for its end, `resume`). `heard` is the count of announcements when
    /// the claim was sent.
    fn claimed(
        &mut self,
        fetchers: Vec<usize>,
        batch: Vec<Pending>,
        claims: Result<Result<Vec<Option<Claim>>, OutputError>, MailboxError>,
        heard: u64,
        resume: Option<tokio::time::Instant>,
        ctx: &mut Context<Self>,
    ) {
        self.claiming -= batch.len();
        let mut fetchers = fetchers.into_iter();
        let claims = match claims {
            Ok(Ok(claims)) => claims,
            failed => {
                let e = match failed {
                    Ok(Err(e)) => JobError::Output(std::sync::Arc::new(e)),
                    _ => JobError::Stopped,
                };
                // As many pages as the claim was for fail as one page's
                // claim did (retried with backoff); the rest were only
                // candidates, and go back as they were.
                let tried = fetchers.len();
                self.idle.extend(fetchers);
                let mut batch = batch.into_iter();
                for p in batch.by_ref().take(tried) {
                    self.outcome(p, Err(e.clone()), None, heard, ctx);
                }
                for p in batch.rev() {
                    let out = self.frontier.retry(p);
                    self.deliver(out);
                }
                match resume {
                    // Looked at during a pause: asked about again when it
                    // ends, not at once, or a claim that keeps failing
                    // would be sent again in a loop until then.
                    Some(at) => {
                        let wait = at.saturating_duration_since(tokio::time::Instant::now());
                        ctx.run_later(wait, |act, ctx| act.dispatch(ctx));
                    }
                    None => self.dispatch(ctx),
                }
                return;
            }
        };
        let mut back = Vec::new();
        for (mut p, claim) in batch
            .into_iter()
            .zip(claims.into_iter().chain(std::iter::repeat(None)))
        {
            match claim {
                Some(Claim::Leased { token, .. }) => {
                    // Kept with the job in flight too: a page given up
                    // hands back the lease it was claimed with.
                    p.job.lease = Some(token);
                    let fetcher = match self.frontier.stopped() {
                        None => fetchers.next(),
                        Some(_) => None,
                    };
                    match fetcher {
                        Some(f) => {
                            self.fetchers[f].do_send(p.job.clone());
                            self.in_flight.insert(f, InFlight { pending: p, heard });
                        }
                        // The crawl stopped while the claim was out: the
                        // page is not fetched, and its lease goes back now
                        // rather than when it expires.
                        None => {
                            self.release(&p.job, token, "crawl stopped before the page went out");
                            back.push(p);
                        }
                    }
                }
                Some(claim) => self.elsewhere(p, claim, heard, ctx),
                None => match resume {
                    Some(until) => {
                        let wait = until.saturating_duration_since(tokio::time::Instant::now());
                        self.park(p, wait, ctx);
                    }
                    None => back.push(p),
                },
            }
        }
        for p in back.into_iter().rev() {
            let out = self.frontier.retry(p);
            self.deliver(out);
        }
        self.idle.extend(fetchers);
        self.dispatch(ctx);
    }

    /// Hands a lease back to the store, for a page this process will not
    /// fetch under it.
    fn release(&self, job: &PageJob, lease: LeaseToken, why: &'static str) {
        if let Some(store) = &self.leases {
            store.release.do_send(ReleasePage {
                ctx: job.ctx.clone(),
                lease,
                why,
            });
        }
    }

    fn stop_for_budget(&mut self, key: &str, resets: DateTime<Utc>) {
        if self.frontier.stopped() == Some(WHY_BUDGET) {
            return;
        }
        let limit = self.lanes.by_key(key).map(|l| l.budget_limit());
        error!(
            host = %key,
            daily_budget = limit,
            resets_at = %resets.to_rfc3339(),
            pages_queued = self.frontier.pending(),
            "daily request budget exhausted: crawl stops; it resets at {}",
            resets.to_rfc3339()
        );
        self.stats.budget_resets_at = Some(resets);
        self.stop(WHY_BUDGET);
    }

    /// Keeps what a source said of a page beyond its records and acts on
    /// it. A pause it asked for was already applied by the fetcher the
    /// moment it read the body.
    fn note_signals(&mut self, w: &Signals, job: &PageJob) {
        if w.quota_remaining.is_some() {
            self.stats.quota.quota_remaining = w.quota_remaining;
        }
        if w.quota_max.is_some() {
            self.stats.quota.quota_max = w.quota_max;
        }
        if let Some(asked) = w.backoff {
            self.stats.quota.backoffs += 1;
            let lane = self.lanes.for_job(job);
            let resume_in = lane
                .throttle
                .paused_until()
                .map_or(Duration::ZERO, |until| {
                    until.saturating_duration_since(tokio::time::Instant::now())
                });
            warn!(
                tag = %job.ctx.tag,
                page = job.ctx.page,
                source = %job.source,
                backoff_secs = asked.as_secs(),
                resume_in_secs = resume_in.as_secs_f64(),
                host = %lane.key,
                "the source asked to back off: every request of its lane paused"
            );
        }
        if let Some(left) = w.quota_remaining {
            if left <= self.stop_at_quota_remaining && self.frontier.stopped().is_none() {
                self.stop_for_quota(Budget::resets_at(Utc::now()), left);
            }
        }
    }

    /// A source's own quota is (nearly) spent: stop cleanly, keeping every
    /// record so far, rather than have every request refused until it resets.
    fn stop_for_quota(&mut self, resets: DateTime<Utc>, left: u64) {
        error!(
            quota_remaining = left,
            stop_at_quota_remaining = self.stop_at_quota_remaining,
            quota_max = self.stats.quota.quota_max,
            resets_at = %resets.to_rfc3339(),
            pages_queued = self.frontier.pending(),
            "the source's quota is exhausted: crawl stops; it resets at {}",
            resets.to_rfc3339()
        );
        self.stats.quota.quota_resets_at = Some(resets);
        self.stats.budget_resets_at = Some(resets);
        self.stop(WHY_QUOTA);
    }

    /// Carries out a retry: the pause the server asked for, on the page's
    /// whole lane, then the page again after `wait`.
    fn retry_later(
        &mut self,
        mut p: Pending,
        err: &JobError,
        wait: Duration,
        pause: Option<Duration>,
        ctx: &mut Context<Self>,
    ) {
        if let Some(pause) = pause {
            let lane = self.lanes.for_job(&p.job).clone();
            let until = match err {
                JobError::Fetch(FetchError::RateLimited { status: 429, .. }) => {
                    lane.refused_for(pause)
                }
                _ => Some(lane.pause_for(pause)),
            };
            let Some(until) = until else {
                debug!(
                    url = %p.job.url,
                    retry_after_secs = pause.as_secs_f64(),
                    "the site serves again at the rate measured: its Retry-After holds this page only"
                );
                return self.retry_later(p, err, wait, None, ctx);
            };
            let resume_in = until.saturating_duration_since(tokio::time::Instant::now());
            match err {
                JobError::Page(_) => error!(
                    url = %p.job.url,
                    pause_secs = pause.as_secs_f64(),
                    "BLOCK PAGE: the site served a captcha/verification page; whole pool paused"
                ),
                _ if err.is_source_pause() => warn!(
                    error = %err,
                    pause_secs = pause.as_secs_f64(),
                    url = %p.job.url,
                    "the source refused a request for going too fast: every request of its lane paused"
                ),
                _ => warn!(
                    pause_secs = pause.as_secs_f64(),
                    resume_in_secs = resume_in.as_secs_f64(),
                    url = %p.job.url,
                    why = %err,
                    "server asked to slow down: whole pool paused"
                ),
            }
        }
        // In flight when the crawl stopped: nothing will fetch it again.
        // (Its pause above still binds the lane, and processes started
        // later.)
        if self.frontier.stopped().is_some() {
            // Its request was made: listed with it, as a page waiting for
            // its retry would be.
            p.job.attempt += 1;
            return self.settle_stopped(p);
        }
        self.stats.retries += 1;
        if self.quiet_about(err) {
            debug!(tag = %p.job.ctx.tag, page = p.job.ctx.page, attempt = p.job.attempt, why = %err, "retrying page");
        } else {
            warn!(
                tag = %p.job.ctx.tag,
                page = p.job.ctx.page,
                attempt = p.job.attempt,
                why = %err,
                wait_ms = wait.as_millis() as u64,
                "retrying page"
            );
        }
        p.job.attempt += 1;
        // On a store a fleet shares, the page is not this process's while
        // it waits: handed back, another process may fetch it meanwhile;
        // it is claimed again when the wait is over (and found done, if
        // so). It waits the whole backoff or Retry-After: not parked with
        // the pages held elsewhere, which any announcement wakes.
        if let Some(lease) = p.job.lease.take() {
            self.release(&p.job, lease, "page retried later");
        }
        let id = self.next_retry;
        self.next_retry += 1;
        self.retrying.insert(id, p);
        ctx.run_later(wait, move |act, ctx| {
            // Gone if a stop settled it meanwhile.
            if let Some(p) = act.retrying.remove(&id) {
                let out = act.frontier.retry(p);
                act.deliver(out);
                act.dispatch(ctx);
            }
        });
    }

    /// Keeps a page out of the queue for `wait`, or until another process
    /// is announced to have settled it.
    fn park(&mut self, p: Pending, wait: Duration, ctx: &mut Context<Self>) {
        // After a stop nothing asks about it again: settled now, not when
        // a lease or a pause ends.
        if self.frontier.stopped().is_some() {
            let out = self.frontier.retry(p);
            self.deliver(out);
            return;
        }
        // One job per page (`live`): none of this page is parked already.
        let key = key_of(&p.job.ctx);
        let timer = ctx.run_later(wait, {
            let key = key.clone();
            move |act, ctx| act.ask_again(&key, ctx)
        });
        self.held.insert(key, HeldPage { pending: p, timer });
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

impl Handler<Submit> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) {
        // A copy of a page already queued, held or in flight waits for
        // that job's outcome rather than being a second job: two jobs for
        // one page would be offered in one claim (both leased under one
        // token) and would wait for each other in the frontier.
        match self.live.entry(key_of(&msg.job.ctx)) {
            std::collections::hash_map::Entry::Occupied(mut copies) => {
                debug!(tag = %msg.job.ctx.tag, page = msg.job.ctx.page, "page submitted again while its job is unresolved: waits for that job");
                copies.get_mut().push(msg.reply);
                return;
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Vec::new());
            }
        }
        let out = self.frontier.submit(Entry {
            job: msg.job,
            reply: msg.reply,
        });
        let held = self.frontier.pending() + self.claiming + self.in_flight.len();
        self.stats.most_held = self.stats.most_held.max(held);
        self.deliver(out);
        self.dispatch(ctx);
    }
}

impl Handler<JobEnded> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: JobEnded, ctx: &mut Context<Self>) {
        self.job_ended(msg.fetcher, msg.result, msg.signals, ctx);
    }
}

impl Supervisor {
    /// A page's failure to connect while no request has ever reached the
    /// host is the host being unreachable: one warning says so, and each
    /// page's own lines go to debug (the run's end says it once more).
    fn quiet_about(&mut self, err: &JobError) -> bool {
        if self.answered || !matches!(err, JobError::Fetch(FetchError::Connect(_))) {
            return false;
        }
        if !self.unreachable_said {
            self.unreachable_said = true;
            warn!(error = %err, "the host cannot be reached: its pages are retried quietly (RUST_LOG=stackcrawl=debug shows each)");
        }
        true
    }

    fn job_ended(
        &mut self,
        fetcher: usize,
        result: Result<PageReport, JobError>,
        signals: Option<Signals>,
        ctx: &mut Context<Self>,
    ) {
        self.idle.push(fetcher);
        let Some(f) = self.in_flight.remove(&fetcher) else {
            error!(fetcher, "outcome for a job the supervisor did not hand out");
            self.dispatch(ctx);
            return;
        };
        self.outcome(f.pending, result, signals, f.heard, ctx);
        self.dispatch(ctx);
    }

    /// What a job's outcome does: its future resolves, or it is retried,
    /// put back or asked about again. `heard`: the count of announcements
    /// when the job's claim was last looked up.
    fn outcome(
        &mut self,
        p: Pending,
        result: Result<PageReport, JobError>,
        signals: Option<Signals>,
        heard: u64,
        ctx: &mut Context<Self>,
    ) {
        if let Some(w) = &signals {
            self.note_signals(w, &p.job);
        }
        // Anything but a refused connection means a server answered.
        self.answered |= !matches!(
            &result,
            Err(JobError::Fetch(FetchError::Connect(_))
                | JobError::Lane(_)
                | JobError::Elsewhere(_))
        );
        match result {
            // Never sent: the crawl is stopping.
            Err(JobError::Lane(LaneError::Closed)) => {
                if let Some(lease) = p.job.lease {
                    self.release(&p.job, lease, "crawl drained before the page went out");
                }
                self.skipped(p, WHY_DRAINED);
            }
            // Gave way to a pause of its lane, unsent: handed back, and
            // claimed again (if nobody else did it) once the pause is over.
            Err(JobError::Lane(LaneError::Paused)) => {
                let mut p = p;
                if let Some(lease) = p.job.lease.take() {
                    self.release(&p.job, lease, "lane paused before the page went out");
                }
                let out = self.frontier.retry(p);
                self.deliver(out);
            }
            Err(JobError::Lane(LaneError::Exhausted { host, resets_at })) => {
                // Nothing was sent: the page waits, unfetched, with the
                // rest, and another process may fetch it meanwhile.
                if let Some(lease) = p.job.lease {
                    self.release(&p.job, lease, "budget spent before the page went out");
                }
                self.frontier.put_back(p);
                self.stop_for_budget(&host, resets_at);
            }
            Ok(report) => {
                self.stats.done += 1;
                // An API tag ends where the API says there is no more, like
                // a listing at its first empty page.
                if report.ends_tag {
                    info!(tag = %report.ctx.tag, tab = %report.ctx.tab, page = report.ctx.page, "tag exhausted: no further pages handed out");
                }
                let out = self.frontier.done(&p.job, report.ends_tag);
                self.answer(p.reply, PageOutcome::Done(report));
                self.deliver(out);
            }
            // Not the count now: an announcement heard between the lookup
            // and this answer found nothing parked, and is not heard again.
            Err(JobError::Elsewhere(claim)) => self.elsewhere(p, claim, heard, ctx),
            Err(e) => {
                if let JobError::Fetch(FetchError::RateLimited { .. }) = e {
                    self.stats.rate_limited += 1;
                }
                if e.is_source_pause() {
                    self.stats.quota.throttle_violations += 1;
                }
                match self.policy.decide(&e, p.job.attempt, fastrand::f64()) {
                    Decision::Retry { wait, pause } => self.retry_later(p, &e, wait, pause, ctx),
                    Decision::GiveUp { stop } => self.give_up(p, &e, stop),
                }
            }
        }
    }
}

impl Supervisor {
    /// A page another process of the fleet has: done there, it counts as
    /// done for the paging rules here (the next page of an incremental or
    /// API tag goes out, or none after a tag's end); held there, it waits
    /// without spending an attempt until it is announced settled (written
    /// or handed back) or its lease expires (its holder died), and is
    /// asked about again then. `heard`: the count of announcements when
    /// the claim that saw it was sent.
    fn elsewhere(&mut self, p: Pending, claim: Claim, heard: u64, ctx: &mut Context<Self>) {
        match claim {
            Claim::Done { ends_tag, by } => {
                self.stats.elsewhere += 1;
                debug!(tag = %p.job.ctx.tag, page = p.job.ctx.page, by = by.as_deref().unwrap_or(""), ends_tag, "page done by another process");
                let out = self.frontier.done(&p.job, ends_tag);
                self.skipped(p, WHY_ELSEWHERE);
                self.deliver(out);
            }
            Claim::Held { by, until } => {
                let key = key_of(&p.job.ctx);
                // Settled after the claim looked: its announcement came
                // before this answer, and is not heard again.
                if self
                    .announced
                    .settled
                    .get(&key)
                    .is_some_and(|&at| at > heard)
                {
                    let out = self.frontier.retry(p);
                    self.deliver(out);
                    return;
                }
                let left = (until - Utc::now()).to_std().unwrap_or_default();
                let wait = if self.announced.listening {
                    left.max(RECHECK_LOCKED)
                } else {
                    left.clamp(RECHECK_LOCKED, RECHECK_HELD)
                };
                debug!(tag = %p.job.ctx.tag, page = p.job.ctx.page, by = %by, wait_ms = wait.as_millis() as u64, "page held by another process");
                self.park(p, wait, ctx);
            }
            Claim::Leased { .. } => {
                error!(tag = %p.job.ctx.tag, page = p.job.ctx.page, "a leased page came back unfetched");
                let out = self.frontier.retry(p);
                self.deliver(out);
            }
        }
    }

    /// A held page goes back to the front of the queue to be claimed again.
    fn ask_again(&mut self, key: &PageKey, ctx: &mut Context<Self>) {
        if let Some(h) = self.held.remove(key) {
            ctx.cancel_future(h.timer);
            let out = self.frontier.retry(h.pending);
            self.deliver(out);
            self.dispatch(ctx);
        }
    }

    /// Every held page is asked about again: announcements may have been
    /// missed, or the wait they allowed no longer holds.
    fn ask_all_again(&mut self, ctx: &mut Context<Self>) {
        let keys: Vec<PageKey> = self.held.keys().cloned().collect();
        for key in keys {
            self.ask_again(&key, ctx);
        }
    }

    /// A page lost after its retries (or at once): its future resolves as
    /// failed, the pages waiting on it are not reached, and with `stop` the
    /// whole crawl stops.
    fn give_up(&mut self, p: Pending, e: &JobError, stop: Option<Stop>) {
        self.stats.failed += 1;
        if let Some(lease) = p.job.lease {
            self.release(&p.job, lease, "page given up");
        }
        if self.quiet_about(e) {
            debug!(tag = %p.job.ctx.tag, page = p.job.ctx.page, error = %e, "page failed");
        } else {
            error!(
                tag = %p.job.ctx.tag,
                page = p.job.ctx.page,
                attempts = p.job.attempt,
                url = %p.job.url,
                error = %e,
                "page failed"
            );
        }
        match (stop, e) {
            (Some(Stop::Refused), _) => self.stop_for_refusal(&p.job, e),
            (Some(Stop::Unwritable), _) => {
                error!(
                    tag = %p.job.ctx.tag,
                    page = p.job.ctx.page,
                    error = %e,
                    "the page's records cannot be written: crawl stops, no further page is fetched"
                );
                self.keep_fatal(&p.job, e);
                self.stop(WHY_UNWRITABLE);
            }
            (Some(Stop::QuotaSpent(pause)), _) => {
                let left = self.stats.quota.quota_remaining.unwrap_or(0);
                self.stop_for_quota(Utc::now() + pause, left);
            }
            (Some(Stop::BudgetBroken), _) => {
                error!(error = %e, "the request budget cannot be counted: crawl stops");
                self.stop(WHY_BUDGET_BROKEN);
            }
            _ => {}
        }
        let out = self.frontier.failed(&p.job);
        self.answer(
            p.reply,
            PageOutcome::Failed(FailedPage {
                ctx: p.job.ctx,
                url: p.job.url,
                attempts: p.job.attempt,
                kind: e.kind().into(),
                error: e.to_string(),
            }),
        );
        self.deliver(out);
    }

    /// A bad parameter or a refused key: every other page of the source
    /// would get the same answer and spend quota on it, so the whole crawl
    /// stops now.
    fn stop_for_refusal(&mut self, job: &PageJob, err: &JobError) {
        error!(
            tag = %job.ctx.tag,
            page = job.ctx.page,
            url = %job.url,
            source = %job.source,
            error_name = err.kind(),
            error = %err,
            "the source refused the request: crawl stops, nothing is retried"
        );
        self.keep_fatal(job, err);
        self.stop(WHY_REFUSED);
    }

    /// The first page that stopped the crawl is the one its end names.
    fn keep_fatal(&mut self, job: &PageJob, err: &JobError) {
        if self.stats.fatal.is_none() {
            self.stats.fatal = Some(FatalPage {
                source: job.source,
                ctx: job.ctx.clone(),
                url: job.url.clone(),
                error: err.clone(),
            });
        }
    }
}

impl Handler<Drain> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) {
        if self.frontier.stopped().is_none() {
            info!(
                pending = self.frontier.pending(),
                in_flight = self.in_flight.len(),
                "draining: no new pages handed out, in-flight pages finish"
            );
        }
        self.stop(WHY_DRAINED);
        // Pages waiting for their turn, their quota slot or their count are
        // not in flight: they are not sent.
        for lane in self.lanes.all() {
            lane.close();
        }
    }
}

impl Handler<RenewLease> for Supervisor {
    type Result = ResponseActFuture<Self, Result<Claim, JobError>>;

    fn handle(&mut self, msg: RenewLease, _: &mut Context<Self>) -> Self::Result {
        let store = self.leases.clone();
        let ctx = msg.ctx.clone();
        // The lookup is sent now: an announcement heard from here on may
        // be one its answer does not reflect.
        let heard = self.announced.heard;
        for f in self.in_flight.values_mut() {
            if f.pending.job.ctx == ctx {
                f.heard = heard;
            }
        }
        let renew = async move {
            let Some(store) = store else {
                return Ok(Claim::Leased {
                    taken_over_from: None,
                    token: LeaseToken::UNFENCED,
                });
            };
            store
                .claim_page
                .send(ClaimPage { ctx: msg.ctx })
                .await
                .map_err(|_| JobError::Stopped)?
                .map_err(|e| JobError::Output(std::sync::Arc::new(e)))
        };
        // The job in flight takes the renewed token, which is the one a
        // page given up must hand back.
        Box::pin(renew.into_actor(self).map(move |renewed, act, _| {
            if let Ok(Claim::Leased { token, .. }) = &renewed {
                for f in act.in_flight.values_mut() {
                    if f.pending.job.ctx == ctx {
                        f.pending.job.lease = Some(*token);
                    }
                }
            }
            renewed
        }))
    }
}

impl Handler<NewPass> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: NewPass, _: &mut Context<Self>) {
        self.frontier.new_pass();
        self.announced.settled.clear();
    }
}

/// What the fleet's listening connection heard, for the supervisor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Heard(pub Announcement);

impl Handler<Heard> for Supervisor {
    type Result = ();

    fn handle(&mut self, Heard(a): Heard, ctx: &mut Context<Self>) {
        match a {
            // This process's own writes and releases settle nothing it
            // waits on (a page it retries later waits out its backoff).
            Announcement::Settled { by: Some(by), .. } if by == self.worker => {}
            // Whatever its pass: a page of another pass with the same tag,
            // tab and page (a tag set sharing a tag, run by another process
            // meanwhile) wakes this one too, which costs one claim that
            // finds it still held and parks it again (at the count now, so
            // the same announcement does not wake it twice). Nothing is
            // settled on an announcement alone; the claim decides.
            Announcement::Settled { tag, tab, page, .. } => {
                self.announced.heard += 1;
                let key = (tag, tab, page);
                self.announced
                    .settled
                    .insert(key.clone(), self.announced.heard);
                self.ask_again(&key, ctx);
            }
            Announcement::Listening => {
                self.announced.listening = true;
                self.ask_all_again(ctx);
            }
            Announcement::Deaf => {
                self.announced.listening = false;
                self.ask_all_again(ctx);
            }
        }
    }
}

impl Handler<GetStats> for Supervisor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        let mut stats = self.stats.clone();
        let lanes = &self.lanes;
        stats.in_flight = self.in_flight.len();
        stats.retrying = self.retrying.len();
        stats.requests = lanes.all().map(|l| l.requests()).sum();
        stats.quota.requests = lanes.with_own_quota().map(|l| l.requests()).sum();
        stats.requests_last_minute = lanes.all().map(|l| l.requests_last_minute()).sum();
        let mut span = None;
        for (first, last) in lanes.all().filter_map(|l| l.sending_span()) {
            span = Some(match span {
                Some((f, l)) => (first.min(f), last.max(l)),
                None => (first, last),
            });
        }
        stats.sending = span.map_or(Duration::ZERO, |(f, l)| l.saturating_duration_since(f));
        stats.effective_rate = lanes.site().throttle.effective_rate();
        stats.queued = self.frontier.pending() + self.claiming;
        // The budget that will stop the crawl first, among those it spends.
        stats.budget_left = lanes
            .all()
            .filter(|l| l.requests() > 0)
            .map(|l| l.budget_left())
            .min()
            .unwrap_or_else(|| lanes.site().budget_left());
        MessageResult(stats)
    }
}

#[cfg(test)]
mod tests;
