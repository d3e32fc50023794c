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
    rate: f64,
    /// AutoThrottle-style slowdown on top of the quota: governor's quota is
    /// fixed at construction, so a lowered rate is enforced by spacing.
    adaptive: Mutex<Adaptive>,
    /// Until when no request may start, whatever the limiter says. A plain
    /// mutex: it is held for a comparison, never across an await.
    paused_until: Mutex<Option<Instant>>,
}

struct Adaptive {
    /// Effective rate = configured rate / factor; 1.0 is full speed.
    factor: f64,
    next_start: Instant,
    healthy: u32,
}

/// Each 429 halves the effective rate, down to 1/64 of the quota.
const MAX_SLOWDOWN: f64 = 64.0;
/// Healthy responses it takes to recover one step (of 25%).
const RECOVERY_STREAK: u32 = 10;

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
            rate,
            adaptive: Mutex::new(Adaptive {
                factor: 1.0,
                next_start: Instant::now(),
                healthy: 0,
            }),
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
            // The governor is the last gate: whatever the slowdown spacing
            // held back is then released no faster than the quota allows.
            if let Some(slot) = self.reserve_spacing() {
                tokio::time::sleep_until(slot).await;
            }
            self.limiter.until_ready().await;
            // A pause may have begun while this fetcher waited for its slot;
            // the slot is given up rather than spent against the server's wish.
            if self.paused_until().is_none() {
                return;
            }
        }
    }

    /// While slowed down, the start time this request may go at.
    fn reserve_spacing(&self) -> Option<Instant> {
        let mut a = self.adaptive.lock().unwrap_or_else(|p| p.into_inner());
        if a.factor <= 1.0 {
            return None;
        }
        let now = Instant::now();
        let slot = a.next_start.max(now);
        a.next_start = slot + Duration::from_secs_f64(a.factor / self.rate);
        Some(slot)
    }

    /// The rate requests go out at now, after any slowdown.
    pub fn effective_rate(&self) -> f64 {
        let a = self.adaptive.lock().unwrap_or_else(|p| p.into_inner());
        self.rate / a.factor
    }

    /// A 429: halve the effective rate. Returns the new rate.
    pub fn slow_down(&self) -> f64 {
        let mut a = self.adaptive.lock().unwrap_or_else(|p| p.into_inner());
        a.factor = (a.factor * 2.0).min(MAX_SLOWDOWN);
        a.healthy = 0;
        self.rate / a.factor
    }

    /// A healthy response: after a streak of them, recover a quarter step.
    /// Returns the new rate when it changed.
    pub fn record_success(&self) -> Option<f64> {
        let mut a = self.adaptive.lock().unwrap_or_else(|p| p.into_inner());
        if a.factor <= 1.0 {
            return None;
        }
        a.healthy += 1;
        if a.healthy < RECOVERY_STREAK {
            return None;
        }
        a.healthy = 0;
        a.factor = (a.factor * 0.75).max(1.0);
        Some(self.rate / a.factor)
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
    async fn repeated_429s_lower_the_rate_and_health_recovers_it_slowly() {
        let t = Throttle::new(8.0, 1);
        assert_eq!(t.slow_down(), 4.0);
        assert_eq!(t.slow_down(), 2.0);
        for _ in 0..RECOVERY_STREAK - 1 {
            assert_eq!(t.record_success(), None);
        }
        assert_eq!(
            t.record_success(),
            Some(8.0 / 3.0),
            "factor 4 recovers to 3"
        );
        for _ in 0..10 * RECOVERY_STREAK {
            t.record_success();
        }
        assert_eq!(
            t.effective_rate(),
            8.0,
            "back to the configured rate, never above"
        );
    }

    #[tokio::test]
    async fn a_slowed_down_throttle_spaces_requests() {
        let t = Throttle::new(10.0, 10);
        t.slow_down();
        let first = t.reserve_spacing().unwrap();
        let second = t.reserve_spacing().unwrap();
        assert_eq!(second - first, Duration::from_millis(200));
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
