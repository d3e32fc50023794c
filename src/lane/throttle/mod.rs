//! The request rate of one host, shared by every fetcher of its lane.
//!
//! Three gates, in the order a request passes them: a pool-wide pause (a
//! 429's or 503's `Retry-After`, a block page, an API `backoff`, a
//! `RateLimit` header saying nothing is left until its reset; a 429's
//! short `Retry-After` is lifted once the controller finds the site
//! serving again at a measured rate, see [`RateControl::waits_out`]), the rate
//! the site was learned to accept ([`RateControl`], in [`control`]), and
//! the configured quota (a governor GCRA limiter, the hard ceiling: the
//! controller only ever spaces requests further apart). These grant a
//! request its turn; the lane then counts it in the budget, and holds the
//! learned rate ([`Throttle::window_gate`]) and the quota once more on the
//! instant it really leaves, since a count's latency varies.
//!
//! What a site says of its own limit is read by [`RateLimits`] (in
//! [`headers`]) where responses are read, and handed to the controller with
//! each [`Answer`].

pub mod control;
pub mod headers;

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;
use tokio::time::Instant;

pub use control::{Answer, Change, RateControl};
pub use headers::RateLimits;

pub struct Throttle {
    limiter: DefaultDirectRateLimiter,
    /// The limiter's quota, which governor does not give back: the lane
    /// applies it once more to the instants requests leave at.
    quota: Quota,
    control: Mutex<Spacing>,
    /// Until when no request may start, whatever the limiter says. A plain
    /// mutex: it is held for a comparison, never across an await.
    paused_until: Mutex<Pause>,
    /// Wakes the fetchers asleep on a start time when the rate changes:
    /// slots booked at the old spacing would hold them seconds too long
    /// after a rise (and the window gate would hold back those booked too
    /// early after a cut anyway).
    respaced: Notify,
}

#[derive(Default)]
struct Pause {
    until: Option<Instant>,
    /// The end of the pauses no answer lifts (all but a 429's short
    /// `Retry-After`).
    firm: Option<Instant>,
}

/// The controller and the start time it has handed out last: governor's
/// quota is fixed at construction, so a lower rate is enforced by spacing.
struct Spacing {
    control: RateControl,
    next_start: Instant,
    /// When the requests of the last second went out while the controller
    /// limits. Spacing alone lets a request woken late bunch up with the
    /// next ones on time; sites count what arrives in a window.
    sent: VecDeque<Instant>,
    /// When the last request went out, limited or not: the first request
    /// after a cut keeps the new spacing from it.
    last_sent: Option<Instant>,
}

impl Spacing {
    /// The window gate's answer for a request ready at `now`: `None` when
    /// it may go (not recorded here), else when to ask again.
    fn window_due(&mut self, now: Instant) -> Option<Instant> {
        if !self.control.is_limiting() {
            return None;
        }
        let window = Duration::from_secs(1);
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.sent.pop_front();
        }
        let allowed = (self.control.rate().ceil() as usize).max(1);
        if self.sent.len() >= allowed {
            return Some(self.sent[self.sent.len() - allowed] + window);
        }
        let gap = Duration::from_secs_f64(1.0 / self.control.rate());
        self.last_sent
            .map(|last| last + gap)
            .filter(|due| *due > now)
    }
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
            quota,
            control: Mutex::new(Spacing {
                control: RateControl::new(rate),
                next_start: Instant::now(),
                sent: VecDeque::new(),
                last_sent: None,
            }),
            paused_until: Mutex::new(Pause::default()),
            respaced: Notify::new(),
        }
    }

    /// The configured quota: the hard ceiling.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Waits until the pool is not paused and the quota has a slot.
    pub async fn acquire(&self) {
        'turn: loop {
            if let Some(until) = self.paused_until() {
                // A lifted pause wakes its sleepers.
                let lifted = self.respaced.notified();
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = lifted => {}
                }
                continue;
            }
            // The governor is the last gate: whatever the controller's
            // spacing held back is then released no faster than the quota.
            // Made before the slot is booked: a change after the booking
            // wakes it.
            let respaced = self.respaced.notified();
            if let Some(slot) = self.reserve_spacing() {
                tokio::select! {
                    _ = tokio::time::sleep_until(slot) => {}
                    _ = respaced => continue 'turn,
                }
            }
            self.limiter.until_ready().await;
            // A pause may have begun while this fetcher waited for its slot;
            // the slot is given up rather than spent against the server's wish.
            if self.paused_until().is_some() {
                continue;
            }
            // The window gate is the lane's, at departure, once the
            // request is counted ([`Throttle::window_gate`]).
            return;
        }
    }

    /// While the controller limits: requests really went out at least
    /// 1/rate apart, and no more than the rate, rounded up, in any second.
    /// Spacing alone hands out start times; a fetcher woken late, or a
    /// count slower than the next one, would send a request closer to the
    /// next one than the site's period, which a bucket without burst
    /// refuses. So the lane asks this at the instant a counted request is
    /// about to leave, not at its turn. `None`: this request leaves at
    /// `now` (and is recorded as sent then); else when to ask again.
    pub fn window_gate(&self, now: Instant) -> Option<Instant> {
        let mut s = self.control.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = s.window_due(now) {
            return Some(at);
        }
        if s.control.is_limiting() {
            s.sent.push_back(now);
        } else {
            s.sent.clear();
        }
        s.last_sent = Some(now);
        None
    }

    /// When [`Throttle::window_gate`] would let a request ready at `now`
    /// go, if not now; nothing is recorded.
    pub fn window_due(&self, now: Instant) -> Option<Instant> {
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .window_due(now)
    }

    /// While the controller limits (below the quota, or opening), the start
    /// time this request may go at: one every 1/rate, never in a burst.
    fn reserve_spacing(&self) -> Option<Instant> {
        let mut s = self.control.lock().unwrap_or_else(|p| p.into_inner());
        if !s.control.is_limiting() {
            return None;
        }
        let slot = s.next_start.max(Instant::now());
        s.next_start = slot + Duration::from_secs_f64(1.0 / s.control.rate());
        Some(slot)
    }

    /// The rate requests go out at now: the quota, or less when the site
    /// accepts less.
    pub fn effective_rate(&self) -> f64 {
        let s = self.control.lock().unwrap_or_else(|p| p.into_inner());
        s.control.rate()
    }

    /// What the site answered to a request sent at `sent`. A site that
    /// says nothing is left until its reset is left alone until then; a
    /// site seen serving again at a measured rate ends a 429's short pause.
    pub fn answered(&self, sent: Instant, answer: Answer) -> Option<Change> {
        let (change, lift) = {
            let mut s = self.control.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let change = s.control.answered(sent, now, answer);
            if change.is_some() {
                s.next_start = s.next_start.min(now);
            }
            (change, !s.control.waits_out(Duration::ZERO))
        };
        if change.is_some() {
            self.respaced.notify_waiters();
        }
        if lift && self.lift() {
            self.respaced.notify_waiters();
        }
        if let Answer::Accepted(limits) = answer {
            if let Some(wait) = limits.exhausted_for() {
                self.pause_for(wait);
            }
        }
        change
    }

    /// Pauses every fetcher for `wait`; an existing longer pause stands.
    /// Returns the instant the pool resumes.
    pub fn pause_for(&self, wait: Duration) -> Instant {
        self.pause(wait, true)
    }

    /// A 429's `Retry-After` of `wait`: pauses every fetcher as
    /// [`Throttle::pause_for`] does, unless the controller has found the
    /// site serving again at the rate it now goes at (`None`). A short
    /// pause ends early once it does.
    pub fn refused_for(&self, wait: Duration) -> Option<Instant> {
        let waits = {
            let s = self.control.lock().unwrap_or_else(|p| p.into_inner());
            s.control.waits_out(wait)
        };
        waits.then(|| self.pause(wait, !RateControl::is_short(wait)))
    }

    fn pause(&self, wait: Duration, firm: bool) -> Instant {
        let until = Instant::now() + wait;
        let mut guard = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if firm {
            guard.firm = guard.firm.max(Some(until));
        }
        let until = guard.until.max(Some(until)).unwrap_or(until);
        guard.until = Some(until);
        let mut s = self.control.lock().unwrap_or_else(|p| p.into_inner());
        s.control.paused(until, Instant::now());
        until
    }

    /// Ends a 429's short pause: what is left is the firm pauses'. Whether
    /// there was one to end.
    fn lift(&self) -> bool {
        let now = Instant::now();
        let mut guard = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if guard.until.is_none_or(|u| u <= now) || guard.until == guard.firm {
            return false;
        }
        guard.until = guard.firm.filter(|f| *f > now);
        let resumes = guard.until.unwrap_or(now);
        let mut s = self.control.lock().unwrap_or_else(|p| p.into_inner());
        s.control.resumed(resumes, now);
        true
    }

    /// The end of the current pause, if one is still running.
    pub fn paused_until(&self) -> Option<Instant> {
        let guard = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        guard.until.filter(|until| *until > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::control::testing::{ms, throttled};
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
    async fn a_throttle_below_its_quota_spaces_requests_without_a_burst() {
        let t = Throttle::new(10.0, 10);
        assert!(t.reserve_spacing().is_some(), "no burst while opening");
        t.answered(Instant::now(), throttled(1));
        assert_eq!(t.effective_rate(), 2.5);
        let first = t.reserve_spacing().unwrap();
        let second = t.reserve_spacing().unwrap();
        assert_eq!(second - first, ms(400));
    }

    #[tokio::test]
    async fn below_its_quota_a_throttle_sends_no_more_than_its_rate_in_any_second() {
        let t = Throttle::new(20.0, 1);
        let t0 = Instant::now();
        t.answered(t0, throttled(1));
        assert_eq!(t.effective_rate(), 5.0);
        // Each waits 200 ms after the one before really went out, however
        // late that one was woken.
        assert_eq!(t.window_gate(t0), None);
        assert_eq!(t.window_gate(t0 + ms(150)), Some(t0 + ms(200)));
        assert_eq!(t.window_gate(t0 + ms(230)), None, "30 ms late");
        assert_eq!(t.window_gate(t0 + ms(400)), Some(t0 + ms(430)));
        for i in 0..3 {
            assert_eq!(t.window_gate(t0 + ms(430 + 200 * i)), None);
        }
        // Five in the second since t0: the sixth waits for the first to
        // leave it.
        assert_eq!(t.window_gate(t0 + ms(980)), Some(t0 + ms(1000)));
        assert_eq!(t.window_gate(t0 + ms(1030)), None);
    }

    #[tokio::test]
    async fn after_a_cut_the_next_request_waits_the_new_spacing_from_the_last_one_sent() {
        let t = Throttle::new(20.0, 5);
        let t0 = Instant::now() - Duration::from_secs(5);
        // The site took the quota for a second: no longer limiting.
        t.answered(t0, Answer::ACCEPTED);
        t.answered(t0 + ms(1000), Answer::ACCEPTED);
        assert_eq!(t.window_gate(t0 + ms(1100)), None);
        // A 429 cuts the rate to 5/s: the next request goes 200 ms after
        // the one sent at 1.1 s, not at once.
        t.answered(t0 + ms(1050), throttled(1));
        assert_eq!(t.effective_rate(), 5.0);
        assert_eq!(t.window_gate(t0 + ms(1110)), Some(t0 + ms(1300)));
        assert_eq!(t.window_gate(t0 + ms(1300)), None);
    }

    #[tokio::test]
    async fn a_429s_short_pause_ends_when_the_site_serves_again_and_a_firm_one_stays() {
        let t = Throttle::new(20.0, 1);
        let t0 = Instant::now() - ms(500);
        t.answered(t0, Answer::ACCEPTED);
        t.answered(t0 + ms(100), throttled(1));
        assert!(t.refused_for(Duration::from_secs(1)).is_some());
        assert!(t.paused_until().is_some());
        // Sent after the refused one, before its 429 was read: served.
        t.answered(t0 + ms(150), Answer::ACCEPTED);
        assert_eq!(t.paused_until(), None, "lifted");
        assert_eq!(t.refused_for(Duration::from_secs(1)), None);
        // A block page's pause is no 429's to lift.
        let t = Throttle::new(20.0, 1);
        t.answered(t0, Answer::ACCEPTED);
        t.answered(t0 + ms(100), throttled(1));
        let firm = t.pause_for(Duration::from_secs(60));
        t.refused_for(Duration::from_secs(1));
        t.answered(t0 + ms(150), Answer::ACCEPTED);
        assert_eq!(t.paused_until(), Some(firm));
    }

    #[tokio::test]
    async fn a_rate_change_gives_up_the_slots_booked_at_the_old_spacing() {
        let t = Throttle::new(20.0, 1);
        t.answered(Instant::now(), throttled(1));
        assert_eq!(t.effective_rate(), 5.0);
        let booked: Vec<Instant> = (0..4).filter_map(|_| t.reserve_spacing()).collect();
        assert_eq!(booked[3] - booked[0], ms(600));
        // The site states 12/s: the next slot is now, not 800 ms on.
        let policy = RateLimits {
            limit: Some(12),
            window: Some(Duration::from_secs(1)),
            ..RateLimits::default()
        };
        assert!(t
            .answered(Instant::now(), Answer::Accepted(policy))
            .is_some());
        let next = t.reserve_spacing().expect("spaced below the quota");
        assert!(next < booked[3], "{:?}", next - booked[0]);
    }

    #[tokio::test]
    async fn burst_is_available_at_once_then_the_rate_applies() {
        let t = Throttle::new(5.0, 3);
        for _ in 0..3 {
            assert!(t.limiter.check().is_ok());
        }
        assert!(t.limiter.check().is_err(), "a fourth request must wait");
    }

    #[tokio::test]
    async fn a_site_that_says_nothing_is_left_pauses_the_pool_until_its_reset() {
        let t = Throttle::new(10.0, 1);
        let exhausted = RateLimits {
            remaining: Some(0),
            reset: Some(Duration::from_secs(3)),
            ..RateLimits::default()
        };
        t.answered(Instant::now(), Answer::Accepted(exhausted));
        let until = t.paused_until().expect("paused");
        assert!(until > Instant::now() + Duration::from_millis(2900));
    }
}
