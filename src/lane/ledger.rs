//! The request budget's actor: the only user of the budget (its SQLite
//! file, or the fleet's PostgreSQL row for an API key), on a thread of its
//! own. Lanes send it what to count and await the answer alongside their
//! shutdown and patience, so a budget that another program holds locked,
//! or a database that does not answer, stalls only the requests waiting to
//! be counted: never an event loop, a signal or a status line.

use std::sync::Mutex;

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};
use chrono::{DateTime, Utc};
use tracing::warn;

use crate::lane::budget::{Budget, BudgetError};

pub struct Ledger {
    /// `None` once closed: the crawl that used it has ended.
    budget: Option<Budget>,
}

impl Actor for Ledger {
    type Context = SyncContext<Self>;
}

impl Ledger {
    /// Moves `budget` onto a thread of its own; the System must be running.
    pub fn start(budget: Budget) -> Addr<Ledger> {
        // One thread, so the factory runs once; SyncArbiter wants an `Fn`.
        let budget = Mutex::new(Some(budget));
        SyncArbiter::start(1, move || Ledger {
            budget: Some(
                budget
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .expect("a ledger runs on exactly one thread"),
            ),
        })
    }
}

/// Count one request of `key` about to be sent.
#[derive(Debug, Message)]
#[rtype(result = "Result<Counted, BudgetError>")]
pub struct Take {
    pub key: String,
    pub now: DateTime<Utc>,
    /// The latest pause this process recorded for `key`: it binds this
    /// process already (and may have been lifted here), so a recorded
    /// pause that ends no later is not another process's.
    pub own_pause: Option<DateTime<Utc>>,
}

/// What a [`Take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Counted: the requests left after it.
    Left(u64),
    /// Not counted: none was left today.
    Exhausted,
    /// Not counted: the fleet was asked to leave `key` alone until then
    /// (another process got the Retry-After or API backoff).
    Paused(DateTime<Utc>),
}

/// Hand back a request taken at `taken_at` that never reached the server.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Refund {
    pub key: String,
    pub taken_at: DateTime<Utc>,
}

/// Keep a pause the server asked for, for processes started before it ends.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordPause {
    pub key: String,
    pub until: DateTime<Utc>,
}

/// Answers once every message sent before it is handled: the refunds and
/// pauses sent and not awaited are then written; then the budget is
/// closed (the crawl has ended), its file's connection with it, rather
/// than left to the process's exit, which would leave SQLite's -wal and
/// -shm files behind.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Settled;

impl Handler<Settled> for Ledger {
    type Result = ();

    fn handle(&mut self, _: Settled, _: &mut SyncContext<Self>) {
        self.budget = None;
    }
}

impl Ledger {
    fn budget(&self) -> Result<&Budget, BudgetError> {
        self.budget.as_ref().ok_or_else(|| BudgetError::Write {
            path: "(closed)".into(),
            reason: "the crawl has ended".into(),
        })
    }
}

impl Handler<Take> for Ledger {
    type Result = Result<Counted, BudgetError>;

    fn handle(&mut self, msg: Take, _: &mut SyncContext<Self>) -> Self::Result {
        let budget = self.budget()?;
        // A fleet's processes share their pauses: one read per request, as
        // the pause another process records can begin at any moment (a
        // process reads them at start too, which is all a single one needs).
        if budget.pauses_are_shared() {
            if let Some(until) = budget.paused_until(&msg.key, msg.now)? {
                if msg.own_pause.is_none_or(|own| until > own) {
                    return Ok(Counted::Paused(until));
                }
            }
        }
        Ok(match budget.take(&msg.key, msg.now)? {
            Some(left) => Counted::Left(left),
            None => Counted::Exhausted,
        })
    }
}

impl Handler<Refund> for Ledger {
    type Result = ();

    fn handle(&mut self, msg: Refund, _: &mut SyncContext<Self>) {
        // A refund lost leaves the count one high: never a request uncounted.
        if let Err(e) = self.budget().and_then(|b| b.refund(&msg.key, msg.taken_at)) {
            warn!(error = %e, host = %msg.key, "request budget not handed back");
        }
    }
}

impl Handler<RecordPause> for Ledger {
    type Result = ();

    fn handle(&mut self, msg: RecordPause, _: &mut SyncContext<Self>) {
        if let Err(e) = self
            .budget()
            .and_then(|b| b.pause_until(&msg.key, msg.until))
        {
            warn!(error = %e, host = %msg.key, "pause not recorded for later processes");
        }
    }
}
