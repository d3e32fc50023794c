//! The request rate of one host, shared by every fetcher of its lane.
//!
//! Three gates, in the order a request passes them: a pool-wide pause (a
//! 429's or 503's `Retry-After`, a block page, an API `backoff`), the rate
//! the site was learned to accept ([`RateControl`]), and the configured
//! quota (a governor GCRA limiter, the hard ceiling).
//!
//! [`RateControl`] is the congestion controller: a pure state machine fed
//! with what the site answered to each request and when that request was
//! sent. How it compares with its references:
//! - TCP (Reno/NewReno, RFC 5681/6582): additive increase, multiplicative
//!   decrease, and one decrease per window: a 429 for a request that was
//!   already on the wire when the rate was cut is the same congestion
//!   event, not a new one (NewReno's recovery point). Unlike TCP's blind
//!   halving, the decrease goes to a measured figure, as BBR and CUBIC's
//!   remembered `W_max` do: what the site accepted over the span it names
//!   in `Retry-After`, less a margin; and after a decrease the rate holds
//!   still for a while before probing, as CUBIC plateaus near `W_max`.
//! - Scrapy's AutoThrottle sets a download delay from response latency
//!   (delay = latency / target concurrency, smoothed) and treats a 429 like
//!   any slow response: it never learns the site's limit, so against a
//!   site that refuses fast clients it keeps hitting 429s and loses pages
//!   when its retries run out. Latency says nothing about a rate limit on
//!   a fast server; the answers (429 and what was accepted before it) do.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// The settled rate is this share of the rate the site was seen to accept:
/// room for the jitter between when a request is sent and when it arrives.
/// Against "8 in any second", 0.97 spaces requests 129 ms apart, so a
/// request may arrive 31 ms late before nine fall into one second.
const MARGIN: f64 = 0.97;
/// One congestion signal lowers the rate to at most this share of it...
const LEAST_CUT: f64 = 0.9;
/// ...and to no less than this share (two TCP halvings), however few
/// requests were accepted before it: a short sample is not a measurement.
const DEEPEST_CUT: f64 = 0.25;
/// The rate never falls below this share of the quota.
const FLOOR: f64 = 1.0 / 64.0;
/// After a decrease, the rate holds this long before probing upward.
const HOLD: Duration = Duration::from_secs(20);
/// Then it probes one step per this interval of answers without a 429...
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// ...by this share of the rate.
const PROBE_STEP: f64 = 0.02;
/// The span over which accepted requests are counted when a 429 arrives:
/// what `Retry-After` names, within these bounds.
const MIN_WINDOW: Duration = Duration::from_secs(1);
const MAX_WINDOW: Duration = Duration::from_secs(60);

/// What the site answered to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Served (whatever the body held).
    Accepted,
    /// A 429: too many requests.
    Throttled { retry_after: Option<Duration> },
}

/// How one answer moved the rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// A congestion signal: `accepted` requests/s went through in the span
    /// before it; the rate is now `rate`.
    Lowered { rate: f64, accepted: f64 },
    /// A probe upward after a quiet spell.
    Raised { rate: f64 },
}

/// The rate a host accepts, learned from its answers. Pure: every instant
/// is passed in, so a test drives it through any history without waiting.
#[derive(Debug, Clone)]
pub struct RateControl {
    ceiling: f64,
    rate: f64,
    /// A 429 for a request sent before this instant belongs to the
    /// congestion event already answered.
    cut_at: Option<Instant>,
    /// When the next probe upward may happen; `None` at the ceiling.
    next_probe: Option<Instant>,
    /// Send times of the accepted requests of the last [`MAX_WINDOW`],
    /// oldest first (at most the quota × 60 entries).
    accepted: VecDeque<Instant>,
    /// When the pool's recent pauses end (those of the last
    /// [`MAX_WINDOW`]): a 429 soon after one is not a measurement.
    resumes: VecDeque<Instant>,
}

impl RateControl {
    /// Starts at the configured quota, `ceiling` requests/s.
    pub fn new(ceiling: f64) -> RateControl {
        RateControl {
            ceiling,
            rate: ceiling,
            cut_at: None,
            next_probe: None,
            accepted: VecDeque::new(),
            resumes: VecDeque::new(),
        }
    }

    /// The rate requests may go out at now.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Below the quota: the controller, not the governor, spaces requests.
    pub fn is_limiting(&self) -> bool {
        self.rate < self.ceiling
    }

    /// The pool is paused until `until` (a `Retry-After`, a block page, an
    /// API backoff); `now` is when the pause was applied.
    pub fn paused(&mut self, until: Instant, now: Instant) {
        while self
            .resumes
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > MAX_WINDOW)
        {
            self.resumes.pop_front();
        }
        self.resumes.push_back(until);
    }

    /// The site answered a request sent at `sent`; `now` is when the answer
    /// was read.
    pub fn answered(&mut self, sent: Instant, now: Instant, answer: Answer) -> Option<Change> {
        match answer {
            Answer::Accepted => self.accepted(sent, now),
            Answer::Throttled { retry_after } => self.throttled(sent, now, retry_after),
        }
    }

    fn accepted(&mut self, sent: Instant, now: Instant) -> Option<Change> {
        // Answers arrive out of order; keep the log sorted by send time.
        let at = self.accepted.partition_point(|t| *t <= sent);
        self.accepted.insert(at, sent);
        while self
            .accepted
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > MAX_WINDOW)
        {
            self.accepted.pop_front();
        }
        self.next_probe.filter(|due| now >= *due)?;
        self.rate = (self.rate * (1.0 + PROBE_STEP)).min(self.ceiling);
        self.next_probe = self.is_limiting().then(|| now + PROBE_EVERY);
        Some(Change::Raised { rate: self.rate })
    }

    fn throttled(
        &mut self,
        sent: Instant,
        now: Instant,
        retry_after: Option<Duration>,
    ) -> Option<Change> {
        if self.cut_at.is_some_and(|cut| sent < cut) {
            return None;
        }
        // The site's memory spans about as long as it asks us to wait: what
        // it accepted over that span before refusing is what it allows.
        let window = retry_after
            .unwrap_or(MIN_WINDOW)
            .clamp(MIN_WINDOW, MAX_WINDOW);
        let from = sent.checked_sub(window);
        let served = self
            .accepted
            .iter()
            .filter(|t| from.is_none_or(|from| **t >= from) && **t < sent)
            .count();
        let accepted = served as f64 / window.as_secs_f64();
        // Refused soon after a pause the site asked for, the requests since
        // are too few to measure a rate by: its memory outlasted the
        // Retry-After it gave, or the refusal is not about the rate at all.
        // The decrease is the least one, as for any loss.
        let resumed = self.resumes.iter().filter(|end| **end <= sent).max();
        let measured = resumed.is_none_or(|r| sent.duration_since(*r) >= window / 2);
        let target = if measured {
            accepted * MARGIN
        } else {
            self.rate * LEAST_CUT
        };
        self.rate = target
            .clamp(self.rate * DEEPEST_CUT, self.rate * LEAST_CUT)
            .max(self.ceiling * FLOOR);
        self.cut_at = Some(now);
        self.next_probe = Some(now + HOLD);
        Some(Change::Lowered {
            rate: self.rate,
            accepted,
        })
    }
}

pub struct Throttle {
    limiter: DefaultDirectRateLimiter,
    control: Mutex<Spacing>,
    /// Until when no request may start, whatever the limiter says. A plain
    /// mutex: it is held for a comparison, never across an await.
    paused_until: Mutex<Option<Instant>>,
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
            control: Mutex::new(Spacing {
                control: RateControl::new(rate),
                next_start: Instant::now(),
                sent: VecDeque::new(),
            }),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits until the pool is not paused and the quota has a slot.
    pub async fn acquire(&self) {
        'turn: loop {
            if let Some(until) = self.paused_until() {
                tokio::time::sleep_until(until).await;
                continue;
            }
            // The governor is the last gate: whatever the controller's
            // spacing held back is then released no faster than the quota.
            if let Some(slot) = self.reserve_spacing() {
                tokio::time::sleep_until(slot).await;
            }
            self.limiter.until_ready().await;
            // A pause may have begun while this fetcher waited for its slot;
            // the slot is given up rather than spent against the server's wish.
            if self.paused_until().is_some() {
                continue;
            }
            while let Some(at) = self.window_gate(Instant::now()) {
                tokio::time::sleep_until(at).await;
                if self.paused_until().is_some() {
                    continue 'turn;
                }
            }
            return;
        }
    }

    /// While the controller limits: no more than the rate, rounded up, in
    /// any second, counted by when requests really went out. `None`: this
    /// request may go now (and is counted); else when to ask again.
    fn window_gate(&self, now: Instant) -> Option<Instant> {
        let window = Duration::from_secs(1);
        let mut s = self.control.lock().unwrap_or_else(|p| p.into_inner());
        if !s.control.is_limiting() {
            s.sent.clear();
            return None;
        }
        while s
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            s.sent.pop_front();
        }
        let allowed = (s.control.rate().ceil() as usize).max(1);
        if s.sent.len() >= allowed {
            return Some(s.sent[s.sent.len() - allowed] + window);
        }
        s.sent.push_back(now);
        None
    }

    /// While the controller holds the rate below the quota, the start time
    /// this request may go at: one every 1/rate, never in a burst.
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

    /// What the site answered to a request sent at `sent`.
    pub fn answered(&self, sent: Instant, answer: Answer) -> Option<Change> {
        let mut s = self.control.lock().unwrap_or_else(|p| p.into_inner());
        s.control.answered(sent, Instant::now(), answer)
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
        let mut s = self.control.lock().unwrap_or_else(|p| p.into_inner());
        s.control.paused(until, Instant::now());
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn throttled(secs: u64) -> Answer {
        Answer::Throttled {
            retry_after: Some(Duration::from_secs(secs)),
        }
    }

    /// Sends `n` requests from `from` at `rate`/s, each answered `latency`
    /// later and accepted; returns the instant after the last send.
    fn accept_run(
        c: &mut RateControl,
        from: Instant,
        n: u32,
        rate: f64,
        latency: Duration,
    ) -> Instant {
        let gap = Duration::from_secs_f64(1.0 / rate);
        let mut sent = from;
        for _ in 0..n {
            c.answered(sent, sent + latency, Answer::Accepted);
            sent += gap;
        }
        sent
    }

    #[test]
    fn a_429_settles_the_rate_just_under_what_the_site_accepted() {
        // Quota 20/s against a site that serves 8 in any second: at 20/s the
        // ninth request, 0.4 s in, is refused with Retry-After: 1.
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        let ninth = accept_run(&mut c, t0, 8, 20.0, ms(100));
        let change = c.answered(ninth, ninth + ms(100), throttled(1));
        assert_eq!(
            change,
            Some(Change::Lowered {
                rate: 8.0 * MARGIN,
                accepted: 8.0
            })
        );
        assert!(c.is_limiting());
    }

    #[test]
    fn the_429s_of_requests_already_in_flight_are_one_signal() {
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        let ninth = accept_run(&mut c, t0, 8, 20.0, ms(100));
        let answered = ninth + ms(100);
        assert!(c.answered(ninth, answered, throttled(1)).is_some());
        // The tenth and eleventh went out before the first 429 was read.
        assert_eq!(
            c.answered(ninth + ms(50), answered + ms(50), throttled(1)),
            None
        );
        assert_eq!(
            c.answered(ninth + ms(99), answered + ms(99), throttled(1)),
            None
        );
        assert_eq!(c.rate(), 8.0 * MARGIN, "one decrease for the one event");
        // A request sent after the decrease was decided is news.
        let later = answered + ms(1500);
        accept_run(&mut c, answered + ms(1000), 7, 7.6, ms(100));
        assert!(matches!(
            c.answered(later, later + ms(100), throttled(1)),
            Some(Change::Lowered { .. })
        ));
    }

    #[test]
    fn a_short_sample_cuts_at_most_to_a_quarter_and_a_long_one_at_least_a_tenth() {
        let t0 = Instant::now();
        // Refused at the very first request: nothing accepted to measure.
        let mut c = RateControl::new(20.0);
        c.answered(t0, t0 + ms(10), throttled(1));
        assert_eq!(c.rate(), 5.0);
        // Everything sent in the last second was accepted, at 20/s: the
        // limit is just below that, and the cut is the least one.
        let mut c = RateControl::new(20.0);
        let next = accept_run(&mut c, t0, 40, 20.0, ms(10));
        c.answered(next, next + ms(10), throttled(1));
        assert_eq!(c.rate(), 20.0 * LEAST_CUT);
    }

    #[test]
    fn retry_after_sets_the_span_the_accepted_requests_are_counted_over() {
        // A site that allows 60 a minute: at 20/s it refuses the 61st,
        // 3 s in, and asks for the rest of its minute.
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        let sixty_first = accept_run(&mut c, t0, 60, 20.0, ms(10));
        c.answered(sixty_first, sixty_first + ms(10), throttled(57));
        assert_eq!(
            c.rate(),
            5.0,
            "60/57 per second, but no deeper than a quarter at once"
        );
        // Once more, an hour later, at 5/s: now it measures the limit.
        let t1 = t0 + Duration::from_secs(3600);
        let refused = accept_run(&mut c, t1, 60, 5.0, ms(10));
        c.answered(refused, refused + ms(10), throttled(40));
        let rate = c.rate();
        assert!((rate - 60.0 / 40.0 * MARGIN).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn the_rate_holds_after_a_decrease_then_probes_up_gently_to_the_quota_at_most() {
        let mut c = RateControl::new(10.0);
        let t0 = Instant::now();
        c.answered(t0, t0, throttled(1));
        let low = c.rate();
        assert_eq!(low, 2.5);
        // Quiet answers during the hold change nothing.
        let mut now = t0;
        while now < t0 + HOLD - ms(1) {
            assert_eq!(c.answered(now, now, Answer::Accepted), None);
            now += ms(100);
        }
        now = t0 + HOLD;
        assert_eq!(
            c.answered(now, now, Answer::Accepted),
            Some(Change::Raised {
                rate: low * (1.0 + PROBE_STEP)
            })
        );
        // The next step only after PROBE_EVERY more.
        assert_eq!(c.answered(now + ms(1), now + ms(1), Answer::Accepted), None);
        let mut steps = 1;
        while c.is_limiting() {
            now += PROBE_EVERY;
            assert!(c.answered(now, now, Answer::Accepted).is_some());
            steps += 1;
        }
        assert_eq!(c.rate(), 10.0, "the quota is the ceiling");
        // 2.5 → 10 at 2% a step: ln 4 / ln 1.02 = 70 steps, 140 s.
        assert_eq!(steps, 71);
        assert_eq!(c.answered(now + HOLD, now + HOLD, Answer::Accepted), None);
    }

    #[test]
    fn a_429_soon_after_a_pause_lowers_the_rate_by_the_least_step_only() {
        // A 429 at full speed is measured: 20 accepted in its second.
        let mut c = RateControl::new(30.0);
        let t0 = Instant::now();
        let refused = accept_run(&mut c, t0, 20, 30.0, ms(5));
        c.answered(refused, refused + ms(5), throttled(1));
        c.paused(refused + ms(1005), refused + ms(5));
        assert_eq!(c.rate(), 20.0 * MARGIN);
        // The same page again, among the first requests after the pause:
        // two were accepted in its second, which says nothing of the rate.
        let resumed = refused + ms(1005);
        let again = accept_run(&mut c, resumed, 2, 20.0 * MARGIN, ms(5));
        c.answered(again, again + ms(5), throttled(1));
        assert_eq!(c.rate(), 20.0 * MARGIN * LEAST_CUT);
        // Half a window after the pause, a 429 is a measurement again.
        let late = resumed + ms(600);
        c.answered(late, late + ms(5), throttled(1));
        assert_eq!(c.rate(), 20.0 * MARGIN * LEAST_CUT * DEEPEST_CUT);
    }

    #[test]
    fn the_rate_never_falls_below_its_floor() {
        let mut c = RateControl::new(16.0);
        let mut now = Instant::now();
        for _ in 0..20 {
            c.answered(now, now, throttled(1));
            now += ms(10);
        }
        assert_eq!(c.rate(), 16.0 * FLOOR);
    }

    #[test]
    fn the_accepted_log_forgets_what_no_window_can_reach() {
        let mut c = RateControl::new(30.0);
        let t0 = Instant::now();
        let end = accept_run(&mut c, t0, 30 * 300, 30.0, ms(1));
        assert!(c.accepted.len() <= 30 * 61, "{}", c.accepted.len());
        assert!(c
            .accepted
            .iter()
            .all(|t| end.duration_since(*t) <= MAX_WINDOW + ms(40)));
    }

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
        assert_eq!(t.reserve_spacing(), None, "at the quota the governor gates");
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
        assert_eq!(t.window_gate(t0), None, "at the quota the governor gates");
        t.answered(t0, throttled(1));
        assert_eq!(t.effective_rate(), 5.0);
        // Five went out late and bunched (a loaded machine woke them
        // together): the sixth waits for the first to leave the window.
        for i in 0..5 {
            assert_eq!(t.window_gate(t0 + ms(10 * i)), None);
        }
        assert_eq!(t.window_gate(t0 + ms(60)), Some(t0 + ms(1000)));
        assert_eq!(t.window_gate(t0 + ms(1000)), None);
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
