//! The one request quota of the process, shared by every fetcher.
//!
//! A governor GCRA limiter enforces the configured rate and burst; on top of
//! it a pool-wide pause lets one fetcher's 429 or 503 with `Retry-After`
//! (or a block page) stop every fetcher until the server's time is up.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

pub struct Throttle {
    limiter: DefaultDirectRateLimiter,
    /// Until when no request may start, whatever the limiter says. A plain
    /// mutex: it is held for a comparison, never across an await.
    paused_until: Mutex<Option<Instant>>,
}

impl Throttle {
    /// `rate` requests per second (fractional rates allowed) with `burst`
    /// requests allowed back to back.
    pub fn new(rate: f64, burst: u32) -> Throttle {
        let period = Duration::from_secs_f64(1.0 / rate.max(1e-6));
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Throttle {
            limiter: RateLimiter::direct(quota),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits until the pool is not paused and the quota has a slot.
    pub async fn acquire(&self) {
        loop {
            if let Some(until) = self.paused_until() {
                tokio::time::sleep_until(until).await;
                continue;
            }
            self.limiter.until_ready().await;
            // A pause may have begun while this fetcher waited for its slot;
            // the slot is given up rather than spent against the server's wish.
            if self.paused_until().is_none() {
                return;
            }
        }
    }

    /// Pauses every fetcher for `wait`; an existing longer pause stands.
    /// Returns the instant the pool resumes.
    pub fn pause_for(&self, wait: Duration) -> Instant {
        let until = Instant::now() + wait;
        let mut guard = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        let until = match *guard {
            Some(existing) if existing > until => existing,
            _ => until,
        };
        *guard = Some(until);
        until
    }

    /// The end of the current pause, if one is still running.
    pub fn paused_until(&self) -> Option<Instant> {
        let guard = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        guard.filter(|until| *until > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pause_extends_but_never_shortens() {
        let t = Throttle::new(10.0, 1);
        let long = t.pause_for(Duration::from_secs(60));
        let short = t.pause_for(Duration::from_secs(1));
        assert_eq!(long, short);
        assert_eq!(t.paused_until(), Some(long));
    }

    #[tokio::test]
    async fn burst_is_available_at_once_then_the_rate_applies() {
        let t = Throttle::new(5.0, 3);
        for _ in 0..3 {
            assert!(t.limiter.check().is_ok());
        }
        assert!(t.limiter.check().is_err(), "a fourth request must wait");
    }
}
