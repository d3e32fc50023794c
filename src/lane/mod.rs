//! A host's lane: everything that stands between a fetcher and one request
//! to that host. Its quota and pool-wide pause ([`Throttle`]), its entry in
//! the daily budget, and, for the Stack Exchange API, one request in flight
//! at a time. Built once per host and used by the fetchers and the robots.txt
//! check alike, so every request that reaches the server is counted once.
//!
//! Why the API goes one request at a time: a `backoff` arrives in a response
//! body and binds every request after it. With several requests in flight,
//! some are on the wire before the backoff can be known, and the API counts
//! them as violations. One at a time, each request is sent only after the
//! previous response was read and its backoff applied. The API's daily quota,
//! not its latency, is what bounds an API crawl, so this costs no data.

pub mod budget;
pub mod departures;
pub mod ledger;
pub mod robots;
pub mod shared_quota;
pub mod stall;
pub mod throttle;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Addr;
use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};

use crate::lane::budget::Budget;
use crate::lane::departures::Departures;
use crate::lane::ledger::{Counted, Ledger, RecordPause, Refund, Settled, Take};
use crate::lane::shared_quota::SharedQuota;
use crate::lane::stall::{Stalled, Stalls};
use crate::lane::throttle::{Answer, Change, RateLimits, Throttle};

#[derive(Debug, Clone, Error)]
pub enum LaneError {
    /// The day's budget for this host is spent.
    #[error("daily request budget of {host} exhausted; it resets at {}", .resets_at.to_rfc3339())]
    Exhausted {
        host: String,
        resets_at: DateTime<Utc>,
    },
    /// The budget could not count the request, and waiting did not cure
    /// it: nothing may be sent uncounted.
    #[error("{0}")]
    Budget(String),
    /// The crawl is stopping: a request not yet sent is not sent.
    #[error("not sent: the crawl is stopping")]
    Closed,
    /// The lane paused while the request waited for its turn or was
    /// counted, and the request gave way (see [`Lane::admit_or_give_way`]):
    /// not sent, and its count handed back.
    #[error("not sent: the lane paused while the request waited for its turn")]
    Paused,
}

/// How a lane reaches the budget, shared by every lane of a crawler.
#[derive(Clone)]
pub struct Counting {
    pub ledger: Addr<Ledger>,
    /// Where a wait for the budget is reported.
    pub stalls: Stalls,
    /// How long a budget that cannot count is waited for before the crawl
    /// stops (`[store] give_up_secs`).
    pub give_up: Duration,
}

/// What the budget said of a lane's key when the crawler started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Opening {
    pub limit: u64,
    pub left: u64,
    /// A pause the server asked for, recorded by an earlier process or
    /// before a reload, and still running.
    pub paused_until: Option<DateTime<Utc>>,
}

impl Opening {
    /// Read from the budget before it moves to its ledger: a budget that
    /// cannot answer now opens as "nothing left known, no pause", and the
    /// first request asks again.
    pub fn read(budget: &Budget, key: &str) -> Opening {
        let now = Utc::now();
        Opening {
            limit: budget.limit_for(key),
            left: budget.remaining(key, now).unwrap_or(0),
            paused_until: budget.paused_until(key, now).ok().flatten(),
        }
    }
}

pub struct Lane {
    /// The budget entry: the site's host, or `api:` and the API's host.
    pub key: String,
    pub throttle: Throttle,
    counting: Counting,
    limit: u64,
    /// One permit: requests go one at a time (the API).
    serial: Option<Arc<Semaphore>>,
    /// Set when the crawl stops: requests waiting for their turn give up.
    closed: watch::Sender<bool>,
    /// Woken each time a pause starts, for the requests that give way to
    /// one.
    pause_started: tokio::sync::Notify,
    /// Requests counted and not handed back: what reached the server.
    requests: AtomicU64,
    /// Requests left today, as of this lane's last take or refund (other
    /// processes may have spent some since): the status line's figure,
    /// kept so that reading it costs no query on the event loop.
    left: AtomicU64,
    /// The end of the pause last sent to the budget, in Unix seconds: the
    /// same pause is not written twice.
    pause_recorded: Mutex<i64>,
    /// When each request of the last minute went out, for the status line.
    recent: Mutex<VecDeque<Instant>>,
    /// When the first request went out: with the last of `recent`, the
    /// span a crawl's request rate is measured over.
    first_sent: std::sync::OnceLock<Instant>,
    /// The IP's quota, when processes sharing the IP share it.
    shared: Option<SharedQuota>,
    /// The quota held to the instants requests leave at, after their
    /// count (see [`departures`]).
    departures: Mutex<Departures>,
}

/// What became of one request, as far as its lane is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reply {
    /// Answered, and not asked to slow down.
    Served(RateLimits),
    /// A 429 or 503: slow down, for `retry_after` if it says; a 429 also
    /// tells the rate controller the site's limit was passed.
    SlowDown {
        status: u16,
        retry_after: Option<Duration>,
        limits: RateLimits,
    },
    /// It never reached the server (a refused connection, DNS).
    NeverSent,
    /// Anything else (a timeout, a 5xx): nothing for the lane to learn.
    Failed,
}

/// Leave to send one request. Hold it until the response is read: for a
/// serial lane, the next request waits for it.
pub struct Ticket {
    taken_at: DateTime<Utc>,
    /// When the request went out, for the rate controller.
    sent: tokio::time::Instant,
    _permit: Option<OwnedSemaphorePermit>,
}

/// How long a closing lane waits for a count already sent to the ledger.
const CLOSING_COUNT_WAIT: Duration = Duration::from_secs(1);

/// The longest wait between two attempts to count a request the budget
/// could not count.
const RECOUNT_MAX_WAIT: Duration = Duration::from_secs(2);

impl Lane {
    /// A lane for `key`; a pause the server asked for and that is still
    /// running holds from the start.
    pub fn new(
        key: String,
        throttle: Throttle,
        counting: Counting,
        opening: Opening,
        serial: bool,
    ) -> Lane {
        if let Some(until) = opening.paused_until {
            throttle.pause_for((until - Utc::now()).to_std().unwrap_or_default());
        }
        Lane {
            key,
            departures: Mutex::new(Departures::new(throttle.quota())),
            throttle,
            counting,
            limit: opening.limit,
            serial: serial.then(|| Arc::new(Semaphore::new(1))),
            closed: watch::channel(false).0,
            pause_started: tokio::sync::Notify::new(),
            requests: AtomicU64::new(0),
            left: AtomicU64::new(opening.left),
            pause_recorded: Mutex::new(0),
            recent: Mutex::new(VecDeque::new()),
            first_sent: std::sync::OnceLock::new(),
            shared: None,
        }
    }

    /// Requests also wait for their slot under a quota shared with other
    /// processes on this IP, once counted (see `depart`).
    pub fn with_shared_quota(mut self, quota: SharedQuota) -> Lane {
        self.shared = Some(quota);
        self
    }

    /// The crawl stops: every request waiting for its turn, its quota slot
    /// or its count gives up with [`LaneError::Closed`], and none is sent.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves once the lane is closed.
    async fn until_closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Stops every request of this lane for `wait` (the server asked), in
    /// this process at once and, through the budget, in any process started
    /// before it is over. Returns when the lane resumes.
    ///
    /// The fetcher applies a pause the moment it reads it and the supervisor
    /// applies the same one a moment later when it decides the retry. The
    /// record is kept in whole seconds, rounded up (never shorter than the
    /// pause), so the second application sends nothing.
    pub fn pause_for(&self, wait: Duration) -> tokio::time::Instant {
        let until = self.throttle.pause_for(wait);
        self.pause_started.notify_waiters();
        self.record_pause(until)
    }

    /// A 429's `Retry-After` of `wait`: the lane's pause as
    /// [`Lane::pause_for`], unless the site was found serving again at the
    /// rate the lane now goes at (`None`: only the refused page waits).
    pub fn refused_for(&self, wait: Duration) -> Option<tokio::time::Instant> {
        let until = self.throttle.refused_for(wait)?;
        self.pause_started.notify_waiters();
        Some(self.record_pause(until))
    }

    /// Keeps the pause until `until` for processes started before it ends.
    fn record_pause(&self, until: tokio::time::Instant) -> tokio::time::Instant {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        // The pause's end on the wall clock, rounded up to the second the
        // record holds: the same end gives the same second whenever it is
        // recorded (whole seconds of now plus rounded-up seconds left would
        // not, once a second boundary passes between two calls).
        let end = Utc::now() + chrono::Duration::from_std(left).unwrap_or_default();
        let wall_secs = end.timestamp() + i64::from(end.timestamp_subsec_nanos() > 0);
        let mut recorded = self
            .pause_recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *recorded >= wall_secs {
            return until;
        }
        *recorded = wall_secs;
        // Sent, not awaited: the pause binds this process already, and the
        // ledger writes it on its own thread for processes started later.
        self.counting.ledger.do_send(RecordPause {
            key: self.key.clone(),
            until: DateTime::from_timestamp(wall_secs, 0).unwrap_or_default(),
        });
        until
    }

    /// Waits for this lane's turn (the previous request of a serial lane,
    /// any pause, the learned rate's spacing, the quota), then counts the
    /// request in the daily budget, then lets it leave no sooner than the
    /// quota, the learned rate and an IP's shared quota allow after the
    /// requests before it left (a count may take longer than the next
    /// one; see `depart`). The
    /// budget comes after the turn, so a request is counted only when it is
    /// about to be sent; one a pause overtakes while it is counted is
    /// handed back and waits for its turn again. Every wait ends when the
    /// lane closes.
    pub async fn admit(&self) -> Result<Ticket, LaneError> {
        self.admit_or_give_way(false).await
    }

    /// [`Lane::admit`]; with `give_way`, a pause that starts while the
    /// request waits for its turn ends the wait with [`LaneError::Paused`]
    /// (a fleet's page: another process may fetch it meanwhile), as does
    /// one that starts while it is counted (the count handed back once
    /// taken). A count under way is never abandoned.
    pub async fn admit_or_give_way(&self, give_way: bool) -> Result<Ticket, LaneError> {
        let paused = self.pause_started.notified();
        tokio::pin!(paused);
        paused.as_mut().enable();
        // A pause that started before this request came (a page leased
        // by a claim sent just before it) ends the wait as well.
        if give_way && self.throttle.paused_until().is_some() {
            return Err(LaneError::Paused);
        }
        loop {
            let turn = async {
                let permit = match &self.serial {
                    Some(s) => Some(
                        s.clone()
                            .acquire_owned()
                            .await
                            .map_err(|_| LaneError::Closed)?,
                    ),
                    None => None,
                };
                self.throttle.acquire().await;
                Ok(permit)
            };
            let permit = tokio::select! {
                permit = turn => permit?,
                _ = self.until_closed() => return Err(LaneError::Closed),
                _ = &mut paused, if give_way => return Err(LaneError::Paused),
            };
            let now = Utc::now();
            match self.count(now).await? {
                Ok(left) => match self.depart().await {
                    Ok(sent) => return Ok(self.admitted(now, left, sent, permit)),
                    // Counted, not sent: handed back.
                    Err(e) => {
                        self.hand_back(now);
                        match e {
                            LaneError::Paused if !give_way => {}
                            e => return Err(e),
                        }
                    }
                },
                Err(until) => {
                    // Another process of the fleet was asked to leave the
                    // host alone: this one waits as if it had been asked.
                    let wait = (until - Utc::now()).to_std().unwrap_or_default();
                    if self.throttle.paused_until().is_none() {
                        info!(host = %self.key, resume_in_secs = wait.as_secs_f64(), "another process of the fleet was asked to pause: this one pauses too");
                    }
                    self.throttle.pause_for(wait);
                }
            }
        }
    }

    /// The instant a counted request leaves: no sooner than the quota
    /// allows after the request before it left, nor than the rate the site
    /// was learned to accept (its spacing and its one-second window, see
    /// [`Throttle::window_gate`]) allows after the requests before it left;
    /// with a quota shared by the processes on this IP, no sooner than its
    /// slot there, taken once the local gates would let it go. All are
    /// held here, after the count, on the instants requests really leave
    /// at: a count slower than the next one cannot bring two requests
    /// closer on the wire. A pause that began while it was counted or
    /// waited here binds it (`Paused`: it waits for its turn again), and so
    /// does the lane closing.
    async fn depart(&self) -> Result<tokio::time::Instant, LaneError> {
        loop {
            if self.throttle.paused_until().is_some() {
                return Err(LaneError::Paused);
            }
            let due = {
                let now = tokio::time::Instant::now();
                let departures = self.departures.lock().unwrap_or_else(|p| p.into_inner());
                departures
                    .due(now)
                    .or_else(|| self.throttle.window_due(now))
            };
            if let Some(at) = due {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = self.until_closed() => return Err(LaneError::Closed),
                }
                continue;
            }
            if let Some(shared) = &self.shared {
                tokio::select! {
                    _ = shared.until_ready() => {}
                    _ = self.until_closed() => return Err(LaneError::Closed),
                }
                if self.throttle.paused_until().is_some() {
                    return Err(LaneError::Paused);
                }
            }
            let now = tokio::time::Instant::now();
            // Held across both gates: the window gate records the
            // departure when it lets it go, and so the quota must too.
            let mut departures = self.departures.lock().unwrap_or_else(|p| p.into_inner());
            if departures.due(now).is_none() && self.throttle.window_gate(now).is_none() {
                departures.book(now);
                return Ok(now);
            }
            // Another request of this lane left while this one waited for
            // its shared slot: the slot goes unused (the fleet runs a
            // little below its quota, never above it).
        }
    }

    /// A request counted at `now` with `left` after it, leaving at `sent`.
    fn admitted(
        &self,
        now: DateTime<Utc>,
        left: u64,
        sent: tokio::time::Instant,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Ticket {
        self.left.store(left, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        // The departure's own instant: the span a crawl's rate is
        // measured over is the one the quota was held to.
        let sent_std = sent.into_std();
        self.first_sent.get_or_init(|| sent_std);
        recent.push_back(sent_std);
        forget_older_than_a_minute(&mut recent);
        Ticket {
            taken_at: now,
            sent,
            _permit: permit,
        }
    }

    /// Hands back a request counted at `taken_at` that was not sent. Sent
    /// to the ledger, not awaited.
    fn hand_back(&self, taken_at: DateTime<Utc>) {
        self.counting.ledger.do_send(Refund {
            key: self.key.clone(),
            taken_at,
        });
    }

    /// Counts one request: what is left after it. A budget that cannot
    /// count (its file locked by another program, the fleet's database not
    /// answering) is asked again until it can, reported as a stall, for as
    /// long as `give_up`; nothing is sent meanwhile. `Err(until)`: not
    /// counted, as the fleet was asked to leave the host alone until then.
    async fn count(&self, now: DateTime<Utc>) -> Result<Result<u64, DateTime<Utc>>, LaneError> {
        let stalls = &self.counting.stalls;
        let give_up_at = tokio::time::Instant::now() + self.counting.give_up;
        let mut wait = Duration::from_millis(100);
        loop {
            let own_pause = *self
                .pause_recorded
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let take = self.counting.ledger.send(Take {
                key: self.key.clone(),
                now,
                own_pause: DateTime::from_timestamp(own_pause, 0).filter(|_| own_pause > 0),
            });
            tokio::pin!(take);
            let answer = tokio::select! {
                a = &mut take => a,
                _ = self.until_closed() => {
                    // The count may be under way: once it is taken, it is
                    // handed back, so the budget stays what the server saw.
                    // A ledger that does not answer in time leaves it one
                    // high, never one low.
                    if let Ok(Ok(Ok(Counted::Left(_)))) = tokio::time::timeout(CLOSING_COUNT_WAIT, take).await {
                        self.hand_back(now);
                    }
                    return Err(LaneError::Closed);
                }
                _ = tokio::time::sleep_until(give_up_at) => return Err(self.gave_up("did not answer")),
            };
            let why = match answer {
                Ok(Ok(Counted::Left(left))) => {
                    stalls.end(Stalled::Budget);
                    return Ok(Ok(left));
                }
                Ok(Ok(Counted::Paused(until))) => {
                    stalls.end(Stalled::Budget);
                    return Ok(Err(until));
                }
                Ok(Ok(Counted::Exhausted)) => {
                    stalls.end(Stalled::Budget);
                    return Err(LaneError::Exhausted {
                        host: self.key.clone(),
                        resets_at: Budget::resets_at(now),
                    });
                }
                Ok(Err(e)) if e.is_busy() => e.to_string(),
                Ok(Err(e)) => return Err(LaneError::Budget(e.to_string())),
                Err(_) => return Err(LaneError::Budget("the budget's ledger stopped".into())),
            };
            // One line when the wait starts; the status line says the rest.
            if stalls.begin(Stalled::Budget, why.clone()) {
                warn!(host = %self.key, reason = %why, give_up_secs = self.counting.give_up.as_secs(), "the request budget cannot count: requests wait until it can");
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.until_closed() => return Err(LaneError::Closed),
                _ = tokio::time::sleep_until(give_up_at) => return Err(self.gave_up("could not count")),
            }
            wait = (wait * 2).min(RECOUNT_MAX_WAIT);
        }
    }

    fn gave_up(&self, how: &str) -> LaneError {
        self.counting.stalls.end(Stalled::Budget);
        LaneError::Budget(format!(
            "the request budget of {} {how} for {} s ([store] give_up_secs)",
            self.key,
            self.counting.give_up.as_secs()
        ))
    }

    /// Settles the request of `ticket` with what became of it: the rate
    /// controller learns from an answer, a Retry-After binds the whole lane
    /// at once, and a request that never reached the server is handed back
    /// to the budget. Every request through a lane (pages, robots.txt) is
    /// settled here.
    pub fn settle(&self, ticket: &Ticket, reply: Reply) {
        match reply {
            Reply::Served(limits) => self.answered(ticket, Answer::Accepted(limits)),
            Reply::SlowDown {
                status,
                retry_after,
                limits,
            } => {
                if status == 429 {
                    self.answered(
                        ticket,
                        Answer::Throttled {
                            retry_after,
                            limits,
                        },
                    );
                }
                match retry_after {
                    Some(wait) if status == 429 => {
                        self.refused_for(wait);
                    }
                    Some(wait) => {
                        self.pause_for(wait);
                    }
                    None => {}
                }
            }
            Reply::NeverSent => self.refund(ticket),
            Reply::Failed => {}
        }
    }

    /// What the server answered to the request of `ticket`: the lane's
    /// rate follows what the site accepts.
    fn answered(&self, ticket: &Ticket, answer: Answer) {
        match self.throttle.answered(ticket.sent, answer) {
            Some(Change::Lowered { rate, accepted }) => warn!(
                host = %self.key,
                rate = rate,
                accepted_per_sec = accepted,
                "the site throttles: request rate lowered to just under what it accepted"
            ),
            Some(Change::Raised { rate }) => {
                tracing::info!(host = %self.key, rate = rate, "request rate probing upward")
            }
            None => {}
        }
    }

    /// The request never reached the server (refused connection, DNS): it
    /// costs no budget and is not counted. Sent to the ledger, not awaited.
    pub fn refund(&self, ticket: &Ticket) {
        self.requests.fetch_sub(1, Ordering::Relaxed);
        self.left.fetch_add(1, Ordering::Relaxed);
        self.hand_back(ticket.taken_at);
    }

    /// The crawl has ended: resolves once every refund and pause this lane
    /// sent to the budget is written (the ledger answers in order), and the
    /// budget is closed; the lane counts nothing after this.
    pub async fn finish(&self) {
        let _ = self.counting.ledger.send(Settled).await;
    }

    /// Requests this lane sent that reached the server.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// When this lane's first and latest requests went out, once it sent one.
    pub fn sending_span(&self) -> Option<(Instant, Instant)> {
        let first = *self.first_sent.get()?;
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        Some((first, recent.back().copied().unwrap_or(first)))
    }

    /// Requests sent in the last 60 s.
    pub fn requests_last_minute(&self) -> usize {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        forget_older_than_a_minute(&mut recent);
        recent.len()
    }

    /// Requests left today in this lane's budget (shared with other
    /// processes), as of this lane's last request.
    pub fn budget_left(&self) -> u64 {
        self.left.load(Ordering::Relaxed)
    }

    pub fn budget_limit(&self) -> u64 {
        self.limit
    }
}

/// The window stays bounded by the quota (at most 60 × 30 entries).
fn forget_older_than_a_minute(recent: &mut VecDeque<Instant>) {
    let now = Instant::now();
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        recent.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use stackcrawl_fakesite::lock::WriteLock;

    use super::*;

    fn lane_with(dir: &std::path::Path, limit: u64, serial: bool, give_up: Duration) -> Lane {
        let budget = Budget::open(&dir.join("budget.sqlite"), limit).unwrap();
        let opening = Opening::read(&budget, "h");
        let counting = Counting {
            ledger: Ledger::start(budget),
            stalls: Stalls::default(),
            give_up,
        };
        Lane::new(
            "h".into(),
            Throttle::new(1000.0, 100),
            counting,
            opening,
            serial,
        )
    }

    fn lane(dir: &std::path::Path, limit: u64, serial: bool) -> Lane {
        lane_with(dir, limit, serial, Duration::from_secs(300))
    }

    /// The ledger answers in order: once a later count is answered, every
    /// refund and pause sent before it is written.
    async fn settled(l: &Lane) {
        l.counting
            .ledger
            .send(Take {
                key: "settle".into(),
                now: Utc::now(),
                own_pause: None,
            })
            .await
            .unwrap()
            .unwrap();
    }

    #[actix_rt::test]
    async fn every_admitted_request_is_counted_and_a_refund_hands_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let l = lane(dir.path(), 3, false);
        let a = l.admit().await.unwrap();
        let _b = l.admit().await.unwrap();
        l.refund(&a);
        assert_eq!(l.requests(), 1);
        assert_eq!(l.budget_left(), 2);
        l.admit().await.unwrap();
        l.admit().await.unwrap();
        match l.admit().await {
            Err(LaneError::Exhausted { host, .. }) => assert_eq!(host, "h"),
            other => panic!("expected exhausted, got {:?}", other.map(|_| ())),
        }
        assert_eq!(l.requests(), 3, "a refused request is not counted");
    }

    #[actix_rt::test]
    async fn a_lane_started_during_a_pause_waits_it_out() {
        let dir = tempfile::tempdir().unwrap();
        let first = lane(dir.path(), 10, true);
        first.pause_for(Duration::from_secs(30));
        settled(&first).await;
        let second = lane(dir.path(), 10, true);
        let resumes = second
            .throttle
            .paused_until()
            .expect("paused from the start");
        assert!(resumes > tokio::time::Instant::now() + Duration::from_secs(29));
    }

    /// A lane of host `h` counting in the fleet's database, as each
    /// process of a fleet has one.
    fn fleet_lane(db: &stackcrawl_fakesite::pg::TestDb) -> Lane {
        let counter = crate::lane::budget::SharedCounter::open(&db.url, "key").unwrap();
        let budget = Budget::shared(counter, 100);
        let opening = Opening::read(&budget, "h");
        let counting = Counting {
            ledger: Ledger::start(budget),
            stalls: Stalls::default(),
            give_up: Duration::from_secs(300),
        };
        Lane::new(
            "h".into(),
            Throttle::new(1000.0, 100),
            counting,
            opening,
            false,
        )
    }

    #[actix_rt::test]
    async fn a_running_lane_of_a_fleet_keeps_a_pause_another_process_was_asked_for() {
        let db = stackcrawl_fakesite::pg::TestDb::create();
        // Both running, neither paused, when one is asked to pause.
        let (asked, other) = (fleet_lane(&db), fleet_lane(&db));
        other.admit().await.unwrap();
        asked.pause_for(Duration::from_secs(30));
        settled(&asked).await;
        // The other's next request waits out the pause rather than going.
        let next = tokio::time::timeout(Duration::from_secs(2), other.admit()).await;
        assert!(next.is_err(), "a request went out inside the fleet's pause");
        let resumes = other.throttle.paused_until().expect("paused by the fleet");
        assert!(resumes > tokio::time::Instant::now() + Duration::from_secs(25));
        assert_eq!(other.requests(), 1, "nothing counted while paused");
    }

    #[actix_rt::test]
    async fn a_lane_of_a_fleet_is_not_paused_again_by_its_own_record() {
        let db = stackcrawl_fakesite::pg::TestDb::create();
        let l = fleet_lane(&db);
        // A pause this lane recorded for the fleet but no longer keeps (a
        // short Retry-After lifted once the site served again).
        l.record_pause(tokio::time::Instant::now() + Duration::from_secs(30));
        settled(&l).await;
        let ticket = tokio::time::timeout(Duration::from_secs(5), l.admit()).await;
        assert!(matches!(ticket, Ok(Ok(_))), "paused by its own record");
        assert!(l.throttle.paused_until().is_none());
    }

    #[actix_rt::test]
    async fn the_same_pause_applied_twice_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let l = lane(dir.path(), 10, false);
        l.pause_for(Duration::from_secs(30));
        settled(&l).await;
        // Forget the record behind the lane's back: a second write would
        // bring it back.
        let raw = rusqlite::Connection::open(dir.path().join("budget.sqlite")).unwrap();
        raw.execute("DELETE FROM pauses", []).unwrap();
        // Within the pause already kept, whenever it comes.
        l.pause_for(Duration::from_secs(20));
        settled(&l).await;
        let rows: i64 = raw
            .query_row("SELECT COUNT(*) FROM pauses", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "the same pause was written again");
        l.pause_for(Duration::from_secs(90));
        settled(&l).await;
        let rows: i64 = raw
            .query_row("SELECT COUNT(*) FROM pauses", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1, "a longer pause is written");
    }

    #[actix_rt::test]
    async fn a_serial_lane_admits_the_next_request_only_after_the_last_ticket_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let l = Arc::new(lane(dir.path(), 10, true));
        let first = l.admit().await.unwrap();
        let mut second = actix_rt::spawn({
            let l = l.clone();
            async move { l.admit().await.map(|_| ()) }
        });
        // An unheld lane admits in microseconds (one budget statement); a
        // serial one holds the second request for as long as the first
        // ticket lives, however long that is.
        let early = tokio::time::timeout(Duration::from_millis(200), &mut second).await;
        assert!(early.is_err(), "held while the first response is read");
        assert_eq!(l.requests(), 1);
        drop(first);
        second.await.unwrap().unwrap();
        assert_eq!(l.requests(), 2);
    }

    #[actix_rt::test]
    async fn a_locked_budget_file_holds_requests_back_until_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let l = Arc::new(lane(dir.path(), 10, false));
        l.admit().await.unwrap();
        let release = WriteLock::hold(&dir.path().join("budget.sqlite"));
        let mut waiting = actix_rt::spawn({
            let l = l.clone();
            async move { l.admit().await.map(|_| ()) }
        });
        // Past the file's busy timeout and a few recounts: still waiting,
        // not failed, and the wait is reported.
        let early = tokio::time::timeout(Duration::from_secs(2), &mut waiting).await;
        assert!(early.is_err(), "held while the file is locked: {early:?}");
        let stalls = l.counting.stalls.current();
        assert_eq!(stalls.len(), 1, "{stalls:?}");
        assert_eq!(stalls[0].what, Stalled::Budget);
        assert_eq!(l.requests(), 1, "nothing counted, so nothing sent");
        drop(release);
        waiting.await.unwrap().unwrap();
        assert_eq!(l.requests(), 2);
        assert!(l.counting.stalls.current().is_empty(), "the wait is over");
    }

    #[actix_rt::test]
    async fn a_budget_locked_past_the_give_up_time_stops_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let l = lane_with(dir.path(), 10, false, Duration::from_millis(600));
        l.admit().await.unwrap();
        let _release = WriteLock::hold(&dir.path().join("budget.sqlite"));
        match l.admit().await {
            Err(LaneError::Budget(why)) => assert!(why.contains("give_up_secs"), "{why}"),
            other => panic!("expected a budget error, got {:?}", other.map(|_| ())),
        }
    }

    /// A lane of host `h` under `throttle`, counting in `dir`'s budget file.
    fn timed_lane(dir: &std::path::Path, throttle: Throttle) -> Lane {
        let budget = Budget::open(&dir.join("budget.sqlite"), 10).unwrap();
        Lane::new(
            "h".into(),
            throttle,
            Counting {
                ledger: Ledger::start(budget),
                stalls: Stalls::default(),
                give_up: Duration::from_secs(300),
            },
            Opening::default(),
            false,
        )
    }

    /// Admits one request whose count takes `slow` longer than usual: the
    /// budget file is locked until `slow` after the count found it locked
    /// (so after the request's turn). When the request left.
    async fn admitted_after_a_slow_count(
        l: &Arc<Lane>,
        dir: &std::path::Path,
        slow: Duration,
    ) -> tokio::time::Instant {
        let release = WriteLock::hold(&dir.join("budget.sqlite"));
        let begun = l.counting.stalls.begun();
        let first = actix_rt::spawn({
            let l = l.clone();
            async move { l.admit().await.map(|t| t.sent) }
        });
        begun.await;
        // The count's extra latency itself, not a wait for an event.
        tokio::time::sleep(slow).await;
        drop(release);
        first.await.unwrap().unwrap()
    }

    /// How long after a request whose count took `slow` longer than usual
    /// the next one left.
    async fn next_departure_after_a_slow_count(
        l: &Arc<Lane>,
        dir: &std::path::Path,
        slow: Duration,
    ) -> Duration {
        let first = admitted_after_a_slow_count(l, dir, slow).await;
        l.admit().await.unwrap().sent - first
    }

    /// The quota's turns are granted before the count; a count slower than
    /// the next one (here: the budget file locked for a second) must not
    /// bring two requests closer on the wire than the quota allows.
    #[actix_rt::test]
    async fn requests_leave_no_closer_than_the_quota_however_slow_a_count_was() {
        let dir = tempfile::tempdir().unwrap();
        let period = Duration::from_secs(1);
        let l = Arc::new(timed_lane(dir.path(), Throttle::new(1.0, 1)));
        // By the time the first is counted, the quota grants the second
        // its turn at once.
        let gap = next_departure_after_a_slow_count(&l, dir.path(), period).await;
        assert!(
            gap >= period,
            "two requests left {gap:?} apart under a quota of one a second"
        );
        assert_eq!(l.requests(), 2);
    }

    /// The rate the site was learned to accept (here stated at 1/s under a
    /// quota of 10/s) is held on the instants requests leave at too, not
    /// only at their turn, before the count.
    #[actix_rt::test]
    async fn the_learned_rate_is_held_at_departure_however_slow_a_count_was() {
        let dir = tempfile::tempdir().unwrap();
        let l = Arc::new(timed_lane(dir.path(), Throttle::new(10.0, 1)));
        let t = l.admit().await.unwrap();
        l.settle(
            &t,
            Reply::Served(RateLimits {
                limit: Some(1),
                window: Some(Duration::from_secs(1)),
                ..RateLimits::default()
            }),
        );
        let rate = l.throttle.effective_rate();
        assert!(rate <= 1.0, "{rate}");
        let period = Duration::from_secs_f64(1.0 / rate);
        let gap = next_departure_after_a_slow_count(&l, dir.path(), period).await;
        assert!(
            gap >= period,
            "two requests left {gap:?} apart at a learned rate of {rate}/s"
        );
    }

    /// Two processes sharing an IP's quota of one a second (each with its
    /// own budget file and a quota of its own of 10/s): the first one's
    /// count slower than the second's must not bring their requests closer
    /// on the wire than the shared quota allows.
    #[actix_rt::test]
    async fn processes_sharing_an_ips_quota_leave_no_closer_than_it_however_slow_a_count_was() {
        let db = stackcrawl_fakesite::pg::TestDb::create();
        drop(crate::store::PgStore::open(&db.url).unwrap());
        let period = Duration::from_secs(1);
        let shared = || SharedQuota::new(&db.url, "ip", "h", 1.0, 1).unwrap();
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a =
            Arc::new(timed_lane(dir_a.path(), Throttle::new(10.0, 1)).with_shared_quota(shared()));
        let b = timed_lane(dir_b.path(), Throttle::new(10.0, 1)).with_shared_quota(shared());
        let first = admitted_after_a_slow_count(&a, dir_a.path(), period).await;
        let second = b.admit().await.unwrap().sent;
        // The slots are a period apart on the database's clock; each
        // process leaves once its slot's answer is back, so the two
        // departures may differ from that by the answers' round trips,
        // which a loaded machine stretches: half a period is allowed (the
        // gate's absence sent them about 20 ms apart).
        let round_trips = period / 2;
        assert!(
            second - first >= period - round_trips,
            "two processes sent {:?} apart under an IP's quota of one a second",
            second - first
        );
    }

    #[actix_rt::test]
    async fn closing_a_lane_ends_every_wait_and_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let l = Arc::new(lane(dir.path(), 10, false));
        // Paused for an hour: the request would wait all of it.
        l.pause_for(Duration::from_secs(3600));
        let waiting = actix_rt::spawn({
            let l = l.clone();
            async move { l.admit().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        l.close();
        assert!(matches!(waiting.await.unwrap(), Err(LaneError::Closed)));
        assert_eq!(l.requests(), 0);
    }
}
