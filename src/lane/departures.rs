//! The quota once more, on the instants requests leave at.
//!
//! The throttle grants a request its turn under the quota; the budget then
//! counts it, and only then does it leave. A count's latency varies (the
//! first one opens the file, a locked file is waited for), so two turns
//! granted 1/rate apart could leave closer than that: a first count slower
//! than the second by 3 ms was 3 ms too close, a budget file locked for a
//! second sent two requests back to back. This gate holds the departures
//! themselves to the same quota (GCRA: `burst` at once, then one every
//! 1/rate), so the quota is a ceiling on the wire whatever the budget's
//! latency. It waits only as long as a count was slower than the one
//! before it, which is nothing in the common case.

use std::time::Duration;

use governor::Quota;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Departures {
    period: Duration,
    /// How far ahead of its theoretical time a request may leave: the
    /// burst, less the request itself.
    tolerance: Duration,
    /// The theoretical departure of the next request, once one has left.
    next: Option<Instant>,
}

impl Departures {
    pub fn new(quota: Quota) -> Departures {
        let period = quota.replenish_interval();
        Departures {
            period,
            tolerance: period.saturating_mul(quota.burst_size().get() - 1),
            next: None,
        }
    }

    /// When a request ready to leave at `now` may leave, if not now.
    /// Nothing is booked: the lane books with [`Departures::book`] once
    /// every departure gate lets the request go.
    pub fn due(&self, now: Instant) -> Option<Instant> {
        let next = self.next?;
        let earliest = next.checked_sub(self.tolerance).unwrap_or(now);
        (earliest > now).then_some(earliest)
    }

    /// A request left at `now`.
    pub fn book(&mut self, now: Instant) {
        self.next = Some(self.next.map_or(now, |next| next.max(now)) + self.period);
    }

    /// A request ready to leave at `now`: `None` when it may, and its
    /// departure is booked; else when to ask again.
    pub fn leave(&mut self, now: Instant) -> Option<Instant> {
        if let Some(at) = self.due(now) {
            return Some(at);
        }
        self.book(now);
        None
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn quota(period: Duration, burst: u32) -> Quota {
        Quota::with_period(period)
            .unwrap()
            .allow_burst(NonZeroU32::new(burst).unwrap())
    }

    #[test]
    fn without_a_burst_each_leaves_a_period_after_the_one_before_really_left() {
        let mut d = Departures::new(quota(ms(500), 1));
        let t0 = Instant::now();
        // Its count took 40 ms more than the next one's will.
        assert_eq!(d.leave(t0 + ms(40)), None);
        assert_eq!(d.leave(t0 + ms(500)), Some(t0 + ms(540)));
        assert_eq!(d.leave(t0 + ms(540)), None);
        // Late is always allowed, and the next is spaced from it.
        assert_eq!(d.leave(t0 + ms(2000)), None);
        assert_eq!(d.leave(t0 + ms(2400)), Some(t0 + ms(2500)));
    }

    #[test]
    fn a_burst_leaves_at_once_then_the_period_applies() {
        let mut d = Departures::new(quota(ms(100), 3));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(d.leave(t0), None);
        }
        assert_eq!(d.leave(t0), Some(t0 + ms(100)));
        assert_eq!(d.leave(t0 + ms(100)), None);
        // Idle long enough, the whole burst is back.
        let later = t0 + ms(1000);
        for _ in 0..3 {
            assert_eq!(d.leave(later), None);
        }
        assert_eq!(d.leave(later), Some(later + ms(100)));
    }
}
