//! What the crawl is waiting on that does not answer: the store, the
//! request budget. Whoever waits registers the wait here; the status line,
//! the status page and the final line of an interrupted run read it, so an
//! operator sees *what* waits and for how long without anything asking the
//! stalled party (which, stalled, could not answer).
//!
//! It sits with the lanes because a lane is the lowest layer that waits
//! (on the budget) and this module needs nothing of the crate; the engine
//! registers the store's waits here too, and `observe` reads them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// What can stall the crawl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stalled {
    /// The store (SQLite file or PostgreSQL) has not answered a call.
    Store,
    /// The request budget (its file, or the fleet's database) cannot count
    /// a request: no request goes out until it can.
    Budget,
}

impl Stalled {
    pub fn name(self) -> &'static str {
        match self {
            Stalled::Store => "store",
            Stalled::Budget => "budget",
        }
    }
}

/// One wait as the status line reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stall {
    pub what: Stalled,
    pub waited: Duration,
    /// What is waiting, in words ("writing page 3 of \[rust\]", "the budget
    /// file is locked by another process").
    pub why: String,
}

/// A call shorter than this is work, not a stall.
pub const STALL_AFTER: Duration = Duration::from_secs(1);

/// The shared registry; cheap to clone.
#[derive(Clone, Default)]
pub struct Stalls(Arc<Registry>);

#[derive(Default)]
struct Registry {
    waits: Mutex<BTreeMap<Stalled, (Instant, String)>>,
    /// Woken when a new wait begins.
    begun: Notify,
}

impl Stalls {
    /// `what` is being waited on from now, unless it already was (the
    /// earlier start stands: the wait is one wait). True when the wait is
    /// new.
    pub fn begin(&self, what: Stalled, why: impl Into<String>) -> bool {
        let new = {
            let mut map = self.0.waits.lock().unwrap_or_else(|p| p.into_inner());
            let new = !map.contains_key(&what);
            let entry = map
                .entry(what)
                .or_insert_with(|| (Instant::now(), String::new()));
            entry.1 = why.into();
            new
        };
        if new {
            self.0.begun.notify_waiters();
        }
        new
    }

    /// Resolves once a wait begins after this call (even if it is not
    /// polled until later): what a caller that provokes a wait, such as a
    /// test holding a file locked, waits for instead of polling.
    pub fn begun(&self) -> Notified<'_> {
        self.0.begun.notified()
    }

    pub fn end(&self, what: Stalled) {
        self.0
            .waits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&what);
    }

    /// Waits on `what` until the guard is dropped.
    pub fn guard(&self, what: Stalled, why: impl Into<String>) -> StallGuard {
        self.begin(what, why);
        StallGuard {
            stalls: self.clone(),
            what,
        }
    }

    /// The waits that have lasted at least [`STALL_AFTER`], longest first.
    pub fn current(&self) -> Vec<Stall> {
        let map = self.0.waits.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Stall> = map
            .iter()
            .map(|(&what, (since, why))| Stall {
                what,
                waited: since.elapsed(),
                why: why.clone(),
            })
            .filter(|s| s.waited >= STALL_AFTER)
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.waited));
        out
    }
}

/// Ends its wait when dropped, however the call ended.
pub struct StallGuard {
    stalls: Stalls,
    what: Stalled,
}

impl Drop for StallGuard {
    fn drop(&mut self) {
        self.stalls.end(self.what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_wait_is_not_a_stall_and_a_guard_ends_its_wait() {
        let stalls = Stalls::default();
        let g = stalls.guard(Stalled::Store, "writing");
        assert!(stalls.current().is_empty(), "just begun: work, not a stall");
        // Backdate the wait instead of sleeping through STALL_AFTER.
        stalls
            .0
            .waits
            .lock()
            .unwrap()
            .get_mut(&Stalled::Store)
            .unwrap()
            .0 -= STALL_AFTER;
        let now = stalls.current();
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].what, Stalled::Store);
        assert_eq!(now[0].why, "writing");
        drop(g);
        assert!(stalls.current().is_empty());
    }

    #[test]
    fn a_wait_begun_again_keeps_its_first_start() {
        let stalls = Stalls::default();
        stalls.begin(Stalled::Budget, "locked");
        stalls
            .0
            .waits
            .lock()
            .unwrap()
            .get_mut(&Stalled::Budget)
            .unwrap()
            .0 -= STALL_AFTER * 5;
        stalls.begin(Stalled::Budget, "still locked");
        let now = stalls.current();
        assert!(now[0].waited >= STALL_AFTER * 5);
        assert_eq!(now[0].why, "still locked");
    }
}
