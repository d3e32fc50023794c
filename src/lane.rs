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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::budget::{Budget, BudgetError};
use crate::shared_quota::SharedQuota;
use crate::throttle::{Answer, Change, Throttle};

#[derive(Debug, Clone, Error)]
pub enum LaneError {
    /// The day's budget for this host is spent.
    #[error("daily request budget of {host} exhausted; it resets at {}", .resets_at.to_rfc3339())]
    Exhausted {
        host: String,
        resets_at: DateTime<Utc>,
    },
    /// The budget file cannot be updated: nothing may be sent uncounted.
    #[error("{0}")]
    Budget(String),
}

impl From<BudgetError> for LaneError {
    fn from(e: BudgetError) -> Self {
        LaneError::Budget(e.to_string())
    }
}

pub struct Lane {
    /// The budget entry: the site's host, or `api:` and the API's host.
    pub key: String,
    pub throttle: Throttle,
    budget: Arc<Mutex<Budget>>,
    /// One permit: requests go one at a time (the API).
    serial: Option<Arc<Semaphore>>,
    /// Requests counted and not handed back: what reached the server.
    requests: AtomicU64,
    /// Requests left today, as of this lane's last take or refund (other
    /// processes may have spent some since): the status line's figure,
    /// kept so that reading it costs no query on the event loop.
    left: AtomicU64,
    /// The end of the pause last written to the budget file, in Unix
    /// seconds: the same pause is not written twice.
    pause_recorded: Mutex<i64>,
    /// When each request of the last minute went out, for the status line.
    recent: Mutex<VecDeque<Instant>>,
    /// The IP's quota, when processes sharing the IP share it.
    shared: Option<SharedQuota>,
}

/// Leave to send one request. Hold it until the response is read: for a
/// serial lane, the next request waits for it.
pub struct Ticket {
    taken_at: DateTime<Utc>,
    /// When the request went out, for the rate controller.
    sent: tokio::time::Instant,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Lane {
    /// A lane for `key`; a pause the server asked for and that is still
    /// running (recorded by an earlier process, or before a reload) holds
    /// from the start.
    pub fn new(key: String, throttle: Throttle, budget: Arc<Mutex<Budget>>, serial: bool) -> Lane {
        let now = Utc::now();
        let (pending, left) = {
            let b = budget.lock().unwrap_or_else(|p| p.into_inner());
            (
                b.paused_until(&key, now).ok().flatten(),
                b.remaining(&key, now).unwrap_or(0),
            )
        };
        if let Some(until) = pending {
            throttle.pause_for((until - now).to_std().unwrap_or_default());
        }
        Lane {
            key,
            throttle,
            budget,
            serial: serial.then(|| Arc::new(Semaphore::new(1))),
            requests: AtomicU64::new(0),
            left: AtomicU64::new(left),
            pause_recorded: Mutex::new(0),
            recent: Mutex::new(VecDeque::new()),
            shared: None,
        }
    }

    /// Requests also wait for their turn under a quota shared with other
    /// processes on this IP.
    pub fn with_shared_quota(mut self, quota: SharedQuota) -> Lane {
        self.shared = Some(quota);
        self
    }

    /// Runs `f` on the budget file off the event loop: a statement may wait
    /// on another process's write lock, and the fetchers must not wait with it.
    async fn with_budget<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Budget) -> Result<T, BudgetError> + Send + 'static,
    ) -> Result<T, LaneError> {
        let budget = self.budget.clone();
        tokio::task::spawn_blocking(move || f(&budget.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .map_err(|e| LaneError::Budget(format!("budget update did not finish: {e}")))?
            .map_err(LaneError::from)
    }

    /// Stops every request of this lane for `wait` (the server asked), in
    /// this process at once and, through the budget file, in any process
    /// started before it is over. Returns when the lane resumes.
    ///
    /// The fetcher applies a pause the moment it reads it and the supervisor
    /// applies the same one a moment later when it decides the retry. The
    /// record is kept in whole seconds, rounded up (never shorter than the
    /// pause), so the second application finds it recorded and writes
    /// nothing.
    pub fn pause_for(&self, wait: Duration) -> tokio::time::Instant {
        let until = self.throttle.pause_for(wait);
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let now = Utc::now().timestamp();
        let wall_secs = now + left.as_secs() as i64 + i64::from(left.subsec_nanos() > 0);
        let mut recorded = self
            .pause_recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *recorded >= wall_secs {
            return until;
        }
        let wall = DateTime::from_timestamp(wall_secs, 0).unwrap_or_default();
        // Written at once, on the caller's thread: pauses are rare (the
        // server asked), and a process started a moment later must see it.
        let budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        match budget.pause_until(&self.key, wall) {
            Ok(()) => *recorded = wall_secs,
            Err(e) => {
                tracing::warn!(error = %e, host = %self.key, "pause not recorded for later processes")
            }
        }
        until
    }

    /// Waits for this lane's turn (the previous request of a serial lane,
    /// any pause, the quota), then counts the request in the daily budget.
    /// The budget is the last step, so a request is counted only when it is
    /// about to be sent.
    pub async fn admit(&self) -> Result<Ticket, LaneError> {
        let permit = match &self.serial {
            Some(s) => Some(
                s.clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| LaneError::Budget("lane closed".into()))?,
            ),
            None => None,
        };
        self.throttle.acquire().await;
        if let Some(shared) = &self.shared {
            shared.until_ready().await;
        }
        let now = Utc::now();
        let key = self.key.clone();
        let Some(left) = self.with_budget(move |b| b.take(&key, now)).await? else {
            return Err(LaneError::Exhausted {
                host: self.key.clone(),
                resets_at: Budget::resets_at(now),
            });
        };
        self.left.store(left, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back(Instant::now());
        forget_older_than_a_minute(&mut recent);
        Ok(Ticket {
            taken_at: now,
            sent: tokio::time::Instant::now(),
            _permit: permit,
        })
    }

    /// What the server answered to the request of `ticket`: the lane's
    /// rate follows what the site accepts.
    pub fn answered(&self, ticket: &Ticket, answer: Answer) {
        match self.throttle.answered(ticket.sent, answer) {
            Some(Change::Lowered { rate, accepted }) => tracing::warn!(
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
    /// costs no budget and is not counted.
    pub async fn refund(&self, ticket: &Ticket) -> Result<(), LaneError> {
        self.requests.fetch_sub(1, Ordering::Relaxed);
        self.left.fetch_add(1, Ordering::Relaxed);
        let (key, taken_at) = (self.key.clone(), ticket.taken_at);
        self.with_budget(move |b| b.refund(&key, taken_at)).await
    }

    /// Requests this lane sent that reached the server.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
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
        let budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        budget.limit_for(&self.key)
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
    use super::*;

    fn lane(dir: &std::path::Path, limit: u64, serial: bool) -> Lane {
        let budget = Arc::new(Mutex::new(
            Budget::open(&dir.join("budget.sqlite"), limit).unwrap(),
        ));
        Lane::new("h".into(), Throttle::new(1000.0, 100), budget, serial)
    }

    #[tokio::test]
    async fn every_admitted_request_is_counted_and_a_refund_hands_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let l = lane(dir.path(), 3, false);
        let a = l.admit().await.unwrap();
        let _b = l.admit().await.unwrap();
        l.refund(&a).await.unwrap();
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

    #[tokio::test]
    async fn a_lane_started_during_a_pause_waits_it_out() {
        let dir = tempfile::tempdir().unwrap();
        let first = lane(dir.path(), 10, true);
        first.pause_for(Duration::from_secs(30));
        let second = lane(dir.path(), 10, true);
        let resumes = second
            .throttle
            .paused_until()
            .expect("paused from the start");
        assert!(resumes > tokio::time::Instant::now() + Duration::from_secs(29));
    }

    #[tokio::test]
    async fn the_same_pause_applied_twice_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let l = lane(dir.path(), 10, false);
        l.pause_for(Duration::from_secs(30));
        // Forget the record behind the lane's back: a second write would
        // bring it back.
        let raw = rusqlite::Connection::open(dir.path().join("budget.sqlite")).unwrap();
        raw.execute("DELETE FROM pauses", []).unwrap();
        l.pause_for(Duration::from_secs(30));
        let rows: i64 = raw
            .query_row("SELECT COUNT(*) FROM pauses", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "the same pause was written again");
        l.pause_for(Duration::from_secs(90));
        let rows: i64 = raw
            .query_row("SELECT COUNT(*) FROM pauses", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1, "a longer pause is written");
    }

    #[tokio::test]
    async fn a_serial_lane_admits_the_next_request_only_after_the_last_ticket_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let l = Arc::new(lane(dir.path(), 10, true));
        let first = l.admit().await.unwrap();
        let mut second = tokio::spawn({
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
}
