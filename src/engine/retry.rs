//! What becomes of an attempt that failed: the retry rules as one pure
//! function, so each rule is a unit test. The supervisor carries the
//! decision out (timers, pauses, logs, replies); the frontier then puts a
//! retried page ahead of everything queued.

use std::time::Duration;

use crate::config::Config;
use crate::lane::LaneError;
use crate::source::fetch::FetchError;
use crate::source::JobError;

/// The longest pause a source's refusal for speed (the API's
/// `throttle_violation`) is waited out. A longer one means the day's quota
/// is spent: the crawl stops and says when it resets.
pub const MAX_VIOLATION_WAIT: Duration = Duration::from_secs(15 * 60);

/// Politeness settings the retry rules need from the config.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    /// A block page gets a long pause: hammering it only makes things worse.
    pub block_pause: Duration,
    /// The shortest pause after a source refused a request for going too
    /// fast (the API's `throttle_violation`).
    pub source_pause: Duration,
}

/// What to do with a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Try the page again after `wait`. First pause the page's whole lane
    /// for `pause` when the server asked. (A 429's lesson for the lane's
    /// rate was learned when it was read, in the lane's `Lane::answered`.)
    Retry {
        wait: Duration,
        pause: Option<Duration>,
    },
    /// The page is lost; with `stop`, the whole crawl stops too.
    GiveUp { stop: Option<Stop> },
}

/// Why a lost page stops the whole crawl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The source refused for good (a bad parameter, a refused key): every
    /// other page would get the same answer.
    Refused,
    /// The source's own quota is gone for this long.
    QuotaSpent(Duration),
    /// The daily budget cannot be counted: nothing may be sent uncounted.
    BudgetBroken,
    /// The page's records could not be written (a full disk, a store that
    /// refuses the write): every other page would be fetched, and its
    /// quota spent, for records that cannot be kept either.
    Unwritable,
}

impl RetryPolicy {
    pub fn from_config(config: &Config) -> RetryPolicy {
        RetryPolicy {
            max_retries: config.max_retries,
            base: config.retry_base,
            block_pause: config.block_pause,
            source_pause: config.api.throttle_violation_pause,
        }
    }

    /// Decides for an attempt numbered `attempt` (1 for the first) that
    /// failed with `err`. `jitter` in [0, 1) spreads retries so pages do not
    /// come back in lockstep.
    pub fn decide(&self, err: &JobError, attempt: u32, jitter: f64) -> Decision {
        let violation = err.source_pause(self.source_pause);
        let stop = match err {
            e if e.is_refusal() => Some(Stop::Refused),
            JobError::Lane(LaneError::Budget(_)) => Some(Stop::BudgetBroken),
            JobError::Output(e) if e.refuses_every_write() => Some(Stop::Unwritable),
            _ => violation
                .filter(|p| *p > MAX_VIOLATION_WAIT)
                .map(Stop::QuotaSpent),
        };
        if stop.is_some() || !err.is_retryable() || attempt > self.max_retries {
            return Decision::GiveUp { stop };
        }
        let backoff = self.backoff(attempt, jitter);
        let pause = match err {
            // The server's own figure wins; without one, the backoff.
            JobError::Fetch(FetchError::RateLimited { retry_after, .. }) => {
                Some(retry_after.unwrap_or(backoff))
            }
            JobError::Page(e) if e.is_block() => Some(self.block_pause),
            _ => violation,
        };
        Decision::Retry {
            wait: pause.map_or(backoff, |p| backoff.max(p)),
            pause,
        }
    }

    /// Exponential backoff, scaled into [0.5, 1.5) of the step by `jitter`.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        step.mul_f64(0.5 + jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::api::ApiError;
    use crate::source::html::parse::ParseError;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(100),
            block_pause: Duration::from_secs(300),
            source_pause: Duration::from_secs(30),
        }
    }

    fn retry_wait(d: Decision) -> Duration {
        match d {
            Decision::Retry { wait, .. } => wait,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    fn violation(secs: Option<u64>) -> JobError {
        JobError::Api(ApiError::ThrottleViolation {
            message: "too many requests".into(),
            available_in: secs.map(Duration::from_secs),
        })
    }

    #[test]
    fn backoff_doubles_per_attempt_within_its_jitter() {
        let p = policy();
        let e = JobError::Fetch(FetchError::Timeout);
        assert_eq!(retry_wait(p.decide(&e, 1, 0.5)), Duration::from_millis(100));
        assert_eq!(retry_wait(p.decide(&e, 2, 0.5)), Duration::from_millis(200));
        assert_eq!(retry_wait(p.decide(&e, 3, 0.0)), Duration::from_millis(200));
        assert_eq!(retry_wait(p.decide(&e, 3, 1.0)), Duration::from_millis(600));
    }

    #[test]
    fn a_page_is_given_up_after_max_retries_or_at_once_when_not_retryable() {
        let p = policy();
        let timeout = JobError::Fetch(FetchError::Timeout);
        assert!(matches!(p.decide(&timeout, 3, 0.5), Decision::Retry { .. }));
        assert_eq!(p.decide(&timeout, 4, 0.5), Decision::GiveUp { stop: None });
        let not_found = JobError::Fetch(FetchError::Status { status: 404 });
        assert_eq!(
            p.decide(&not_found, 1, 0.5),
            Decision::GiveUp { stop: None }
        );
    }

    #[test]
    fn records_that_cannot_be_written_stop_the_crawl_unless_the_pass_moved_on() {
        use crate::store::output::{OutputError, SinkError};
        use crate::store::StoreError;
        use std::sync::Arc;
        let p = policy();
        let full = JobError::Output(Arc::new(OutputError::Sink(SinkError::Refused {
            path: "q.jsonl".into(),
            reason: "No space left on device (os error 28)".into(),
        })));
        assert_eq!(
            p.decide(&full, 1, 0.5),
            Decision::GiveUp {
                stop: Some(Stop::Unwritable)
            }
        );
        // Only this page's pass is closed to it: the next pass's pages are
        // written as ever.
        let finished = JobError::Output(Arc::new(OutputError::Store(StoreError::PassFinished(7))));
        assert_eq!(p.decide(&finished, 1, 0.5), Decision::GiveUp { stop: None });
        // One page's data the store would not take: that page fails alone.
        let data = JobError::Output(Arc::new(OutputError::Store(StoreError::Decode {
            column: "title",
            value: "\0".into(),
            reason: "invalid byte sequence".into(),
        })));
        assert_eq!(p.decide(&data, 1, 0.5), Decision::GiveUp { stop: None });
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let busy = JobError::Output(Arc::new(OutputError::Store(StoreError::Sqlite(busy))));
        assert_eq!(p.decide(&busy, 1, 0.5), Decision::GiveUp { stop: None });
        let disk_full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let disk_full =
            JobError::Output(Arc::new(OutputError::Store(StoreError::Sqlite(disk_full))));
        assert_eq!(
            p.decide(&disk_full, 1, 0.5),
            Decision::GiveUp {
                stop: Some(Stop::Unwritable)
            }
        );
    }

    #[test]
    fn a_429_pauses_the_lane_for_its_retry_after() {
        let p = policy();
        let e = JobError::Fetch(FetchError::RateLimited {
            status: 429,
            retry_after: Some(Duration::from_secs(2)),
            limits: Default::default(),
        });
        assert_eq!(
            p.decide(&e, 1, 0.5),
            Decision::Retry {
                wait: Duration::from_secs(2),
                pause: Some(Duration::from_secs(2)),
            }
        );
    }

    #[test]
    fn a_503_without_retry_after_pauses_for_the_backoff() {
        let p = policy();
        let e = JobError::Fetch(FetchError::RateLimited {
            status: 503,
            retry_after: None,
            limits: Default::default(),
        });
        assert_eq!(
            p.decide(&e, 2, 0.5),
            Decision::Retry {
                wait: Duration::from_millis(200),
                pause: Some(Duration::from_millis(200)),
            }
        );
    }

    #[test]
    fn a_block_page_pauses_the_lane_for_the_block_pause() {
        let p = policy();
        let e = JobError::Page(ParseError::Blocked {
            reason: "Human verification".into(),
        });
        assert_eq!(
            p.decide(&e, 1, 0.5),
            Decision::Retry {
                wait: Duration::from_secs(300),
                pause: Some(Duration::from_secs(300)),
            }
        );
    }

    #[test]
    fn a_throttle_violation_pauses_for_what_it_names_plus_one_at_least_the_minimum() {
        let p = policy();
        assert_eq!(
            p.decide(&violation(Some(45)), 1, 0.5),
            Decision::Retry {
                wait: Duration::from_secs(46),
                pause: Some(Duration::from_secs(46)),
            }
        );
        let d = p.decide(&violation(None), 1, 0.5);
        assert_eq!(
            retry_wait(d),
            Duration::from_secs(30),
            "the configured minimum"
        );
    }

    #[test]
    fn a_violation_longer_than_fifteen_minutes_stops_the_crawl_for_the_quota() {
        let p = policy();
        assert_eq!(
            p.decide(&violation(Some(40_000)), 1, 0.5),
            Decision::GiveUp {
                stop: Some(Stop::QuotaSpent(Duration::from_secs(40_001)))
            }
        );
    }

    #[test]
    fn a_fatal_api_error_or_an_uncountable_budget_stops_the_crawl_at_once() {
        let p = policy();
        let bad = JobError::Api(ApiError::BadParameter {
            message: "site".into(),
        });
        assert_eq!(
            p.decide(&bad, 1, 0.5),
            Decision::GiveUp {
                stop: Some(Stop::Refused)
            }
        );
        let budget = JobError::Lane(LaneError::Budget("disk full".into()));
        assert_eq!(
            p.decide(&budget, 1, 0.5),
            Decision::GiveUp {
                stop: Some(Stop::BudgetBroken)
            }
        );
    }
}
