//! The one policy for waiting on the store (or anything that may block on
//! a database) from the engine's event loop: wait, with a warning at every
//! status interval naming what waits, for how long and how many fetched
//! pages are not written; after a shutdown request, [`SHUTDOWN_GRACE`]
//! more; after `[store] give_up_secs`, stop with
//! [`CrawlError::StoreNotAnswering`]. Nothing the engine awaits from a
//! database escapes this policy.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, warn};

use super::aggregator::StoreView;
use super::clock::status_timer;
use crate::error::CrawlError;

/// After a shutdown request, a store that has not answered gets this long
/// more: what it has not written by then, the next start fetches again.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long to wait and how to report it.
pub struct Patience<'a> {
    pub give_up: Duration,
    pub status_every: Duration,
    pub shutdown: &'a watch::Receiver<bool>,
    /// Where fetched pages not yet written are counted, for the log lines.
    pub view: Option<&'a StoreView>,
}

impl Patience<'_> {
    fn unwritten(&self) -> u64 {
        self.view.map_or(0, StoreView::unwritten)
    }

    /// Awaits `answer` under the policy; `what` says what waits.
    pub async fn wait<T>(
        &self,
        what: &'static str,
        answer: impl Future<Output = T>,
    ) -> Result<T, CrawlError> {
        let started = Instant::now();
        tokio::pin!(answer);
        let mut shutdown = self.shutdown.clone();
        let mut stopping = *shutdown.borrow();
        let grace = |at: Instant| at.min(Instant::now() + SHUTDOWN_GRACE);
        let mut give_up_at = started + self.give_up;
        if stopping {
            give_up_at = grace(give_up_at);
        }
        let mut every = status_timer(self.status_every);
        loop {
            tokio::select! {
                answer = &mut answer => return Ok(answer),
                _ = shutdown.wait_for(|s| *s), if !stopping => {
                    stopping = true;
                    give_up_at = grace(give_up_at);
                }
                _ = every.tick() => warn!(
                    waiting_for = what,
                    waited_secs = started.elapsed().as_secs(),
                    pages_not_written = self.unwritten(),
                    give_up_in_secs = give_up_at.saturating_duration_since(Instant::now()).as_secs(),
                    "the store has not answered: waiting; fetched pages are kept until written"
                ),
                _ = tokio::time::sleep_until(give_up_at) => {
                    let unwritten = self.unwritten();
                    error!(
                        waiting_for = what,
                        waited_secs = started.elapsed().as_secs(),
                        pages_not_written = unwritten,
                        "stopping without the store's answer: {unwritten} fetched pages were not written; they are not marked done, so the next start fetches them again"
                    );
                    return Err(CrawlError::StoreNotAnswering {
                        what,
                        waited_secs: started.elapsed().as_secs(),
                        pages_not_written: unwritten,
                        interrupted: stopping,
                    });
                }
            }
        }
    }

    /// Runs blocking work (opening a database) on a thread of its own and
    /// awaits it under the policy: a database that does not answer holds
    /// that thread, never the event loop. A thread given up on is left to
    /// finish or to end with the process.
    pub async fn off_loop<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CrawlError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(what.into())
            .spawn(move || {
                let _ = tx.send(work());
            })
            .map_err(|_| CrawlError::Stopped)?;
        self.wait(what, rx).await?.map_err(|_| CrawlError::Stopped)
    }
}
