//! [`RateControl`]: the congestion controller of one host, a pure state
//! machine fed with what the site answered to each request and when that
//! request was sent. How it compares with its references:
//! - TCP (Reno/NewReno, RFC 5681/6582): multiplicative decrease, and one
//!   decrease per window: a 429 for a request that was already on the wire
//!   when the rate was cut is the same congestion event, not a new one
//!   (NewReno's recovery point). Unlike TCP's blind halving, the decrease
//!   goes to a measured figure, as BBR does, less a margin. Which figure
//!   depends on what the evidence can tell. First, once room came free
//!   twice while the site refused (a refusal followed by an acceptance,
//!   see `RateControl::refill_rate`) with no pause between (a pause idles
//!   the crawl, and a bucket keeps no more than its burst of what came
//!   free meanwhile), the rate it came free at: what the site accepted
//!   between those instants, whatever its burst or window.
//!   Else (see `RateControl::estimate`):
//!   while the requests on the wire with the refused one are partly served
//!   (a bucket letting one through per period), the rate they are served
//!   at; after a whole window of accepted requests (a refusal at the edge
//!   of the limit), the spacing of the last few; else what the site
//!   accepted over the span its `Retry-After` names. A measured figure is
//!   bracketed from above by the refusals: one that came soon after an
//!   acceptance says a bucket's period is longer than that gap, and the
//!   figure moves halfway to that bound when it is close
//!   (`RateControl::narrowed`). Answers to requests on the wire arrive
//!   during the pause the 429 brings, and each refines the event's figure.
//! - A 429's `Retry-After` pauses the lane, but one of a second or two is
//!   often the site rounding "a few ms" up to whole seconds (a bucket's
//!   next token): once a request sent after the refused one is served,
//!   the pause is lifted and the lane goes on at the rate just set
//!   ([`RateControl::waits_out`]). The refused page itself still waits
//!   the whole `Retry-After`; a window that stays full refuses the wire
//!   too, and its pause holds.
//! - CUBIC (RFC 9438): after a decrease the rate holds near the figure the
//!   site was measured to allow, then probes upward ever faster the longer
//!   it stays free of 429s (CUBIC's convex region): a site that raised its
//!   limit is found within seconds, while a site at its old limit sees no
//!   probe for as long as the hold lasts, twice as long each time a 429
//!   confirms the figure. A decrease the evidence could not measure (a
//!   sample too short) holds briefly and probes fast: it is a guess, and
//!   the probe corrects it. A blind one (clamped to the deepest cut, with
//!   nothing to go by) holds half a second and probes faster still. Every
//!   guess probes only up to just under the lowest rate the site refused,
//!   until the rate has been safe for as long as a measured one holds
//!   (then that bound probes as a measured rate does). A guess refused
//!   again with nothing measured is halved rather than trimmed, as TCP
//!   does, and bounds the next probe in turn. A probe refused well above
//!   the rate it had a second before (with no pause since) cuts no lower
//!   than that rate: the site took it for a second.
//! - TCP's slow start, reduced to what a pacer needs: until the site has
//!   taken the quota for a second, requests are spaced at the quota without
//!   the governor's burst. A site that refuses bursts (nginx's `limit_req`
//!   without `burst=`) would refuse most of it, each refusal a retry.
//! - Scrapy's AutoThrottle sets a download delay from response latency
//!   and treats a 429 like any slow response: it never learns the site's
//!   limit. Latency says nothing about a rate limit on a fast server; the
//!   answers (429 and what was accepted before it) do.
//! - A site that states its policy (`RateLimit-Policy`, see
//!   [`RateLimits`]) is taken at its word: the rate goes just under it at
//!   once, and never probes above it.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::headers::RateLimits;

/// The settled rate is this share of the rate the site was seen to accept:
/// room for the jitter between when a request is sent and when it arrives.
/// Against "8 in any second", 0.97 spaces requests 129 ms apart, so a
/// request may arrive 4 ms late before two fall closer than the site's
/// 125 ms.
const MARGIN: f64 = 0.97;
/// The share of a rate the site states that requests go at...
const STATED_MARGIN: f64 = 0.98;
/// ...and the least cut of a 429 despite it.
const STATED_CUT: f64 = 0.97;
/// One congestion signal lowers the rate to at most this share of it...
const LEAST_CUT: f64 = 0.9;
/// ...and to no less than this share (two TCP halvings), however few
/// requests were accepted before it: a short sample is not a measurement.
const DEEPEST_CUT: f64 = 0.25;
/// A refusal of a probe at more than this multiple of the rate it had a
/// [`SAFE_SPAN`] before cuts no lower than that rate.
const PROBED: f64 = 1.1;
const SAFE_SPAN: Duration = Duration::from_secs(1);
/// A guess the site refused, with nothing measured since, is halved (TCP's
/// decrease): trimming it by the least cut again costs a 429 a step.
const REFUTED_CUT: f64 = 0.5;
/// The rate never falls below this share of the quota.
const FLOOR: f64 = 1.0 / 64.0;
/// After a measured decrease the rate holds this long before probing...
const HOLD: Duration = Duration::from_secs(6);
/// ...then rises by half in this long again, slowly at first: rate =
/// base × (1 + ½ (t / RISE)³), t counted from the end of the hold.
const RISE: Duration = Duration::from_secs(6);
/// The hold doubles each time a 429 confirms the rate measured before
/// (within this share of it), up to [`LONGEST_HOLD`]: a probe into a limit
/// already known costs a 429 and its pause, so a stable site is probed
/// ever more rarely.
const CONFIRMED: f64 = 0.1;
const LONGEST_HOLD: Duration = Duration::from_secs(48);
/// After a decrease the evidence could not measure, the hold is this much
/// shorter...
const GUESS_HOLD: u32 = 5;
/// ...and the rise this much faster.
const GUESS_RISE: u32 = 4;
/// A blind cut (clamped, or a guess halved) holds and rises faster still:
/// it says least of all where the site's rate is, and its probe stops
/// under the rate the site refused.
const BLIND_HOLD: u32 = 12;
const BLIND_RISE: u32 = 6;
/// The refusal at the edge of what the site allows is measured by the
/// spacing of this many accepted requests before it.
const EDGE_SAMPLE: usize = 4;
/// How far before a refusal the evidence of the site's refill rate
/// reaches: long enough for two refills of a strict bucket, short enough
/// that a limit the site changed is measured anew.
const REFILL_SPAN: Duration = Duration::from_secs(1);
/// The refusals' bound on a bucket's rate narrows the refill measured
/// when it is within this factor of it.
const TIGHT_BOUND: f64 = 1.5;
/// A `Retry-After` no longer than this is the site rounding "shortly" up
/// to whole seconds; once the evidence shows the site serving again at a
/// measured rate within it, the lane goes on below that rate instead of
/// waiting it out. Longer ones (a window's reset, a quota) are always
/// waited out.
const SHORT_RETRY: Duration = Duration::from_secs(2);
/// The opening ends once the site has accepted requests sent this far
/// apart without refusing any.
const OPENING: Duration = Duration::from_secs(1);
/// The span over which accepted requests are counted when a 429 arrives:
/// what `Retry-After` names, within these bounds.
const MIN_WINDOW: Duration = Duration::from_secs(1);
const MAX_WINDOW: Duration = Duration::from_secs(60);
/// A probe is reported once it has raised the rate by this share since
/// the last report.
const REPORT_STEP: f64 = 0.05;

/// What the site answered to one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    /// Served (whatever the body held), with the rate-limit headers it had.
    Accepted(RateLimits),
    /// A 429: too many requests.
    Throttled {
        retry_after: Option<Duration>,
        limits: RateLimits,
    },
}

impl Answer {
    /// Served, with no rate-limit headers.
    pub const ACCEPTED: Answer = Answer::Accepted(RateLimits {
        limit: None,
        window: None,
        remaining: None,
        reset: None,
    });
}

/// How one answer moved the rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// A congestion signal, or a policy the site stated: `accepted`
    /// requests/s is what the site was measured (or said) to allow; the
    /// rate is now `rate`.
    Lowered { rate: f64, accepted: f64 },
    /// A probe upward after a quiet spell, or a higher stated policy.
    Raised { rate: f64 },
}

/// The last decrease, which the probe starts from.
#[derive(Debug, Clone, Copy)]
struct Cut {
    at: Instant,
    rate: f64,
    /// The evidence measured the site's rate (it was not a clamped guess).
    measured: bool,
    /// Not measured, but some evidence gave the figure (a sample too
    /// short to trust): it probes at a guess's pace. Else it is blind (a
    /// clamped cut, a halving) and probes faster.
    informed: bool,
    /// How long a measured rate holds before probing.
    hold: Duration,
    /// The lowest rate the site refused in this event and in the guesses
    /// that led to it: the evidence's upper bound on its rate.
    refused: f64,
}

impl Cut {
    /// The rate `now`: held, then rising ever faster. A guess probes soon
    /// and fast, but not past the rate the site refused until the rate
    /// has been safe as long as a measured one holds: that bound is
    /// evidence, the guess is not.
    fn probe(&self, now: Instant) -> f64 {
        let safe = now.saturating_duration_since(self.at);
        let rising = |base: f64, hold: Duration, rise: Duration| {
            let t = safe.saturating_sub(hold).as_secs_f64() / rise.as_secs_f64();
            base * (1.0 + 0.5 * t * t * t)
        };
        if self.measured {
            return rising(self.rate, self.hold, RISE);
        }
        let guess = if self.informed {
            rising(self.rate, HOLD / GUESS_HOLD, RISE / GUESS_RISE)
        } else {
            rising(self.rate, HOLD / BLIND_HOLD, RISE / BLIND_RISE)
        };
        let bound = rising(self.refused * LEAST_CUT, HOLD, RISE);
        guess.min(bound.max(self.rate))
    }
}

/// One congestion event: the first 429 sent after the last decrease, and
/// the requests that were on the wire with it. Their answers keep coming
/// during the pause it brings, and each refines the estimate.
#[derive(Debug, Clone, Copy)]
struct Event {
    /// The rate before the event; every estimate is bounded by it.
    before: f64,
    /// When the first refused request was sent.
    refused: Instant,
    /// The span its Retry-After names.
    window: Duration,
    /// Not refused soon after a pause: the requests before it measure.
    measurable: bool,
    /// The evidence covers the whole window (not the opening, not just
    /// after a pause).
    observed: bool,
    /// Where the evidence starts: the first request, or the end of the
    /// last pause before the refusal.
    evidence_from: Instant,
    /// The site was seen serving again, at a measured rate, within a short
    /// `Retry-After`: the lane need not wait it out.
    lifted: bool,
    /// The rate before it was a guess, which the site refused: the next
    /// guess halves it rather than trimming it.
    refuted: bool,
    /// A rate the site took for [`SAFE_SPAN`] before the probe went on
    /// past it and was refused: no cut goes below it.
    safe: f64,
}

/// The rate a host accepts, learned from its answers. Pure: every instant
/// is passed in, so a test drives it through any history without waiting.
#[derive(Debug, Clone)]
pub struct RateControl {
    ceiling: f64,
    rate: f64,
    /// Nothing shows yet that the site takes the quota: no burst.
    opening: bool,
    /// Since when the quota has been offered without a burst (`None`:
    /// since the first request).
    opened_at: Option<Instant>,
    first_sent: Option<Instant>,
    /// A 429 for a request sent before this instant belongs to the
    /// congestion event already answered.
    cut_at: Option<Instant>,
    cut: Option<Cut>,
    /// The last measured cut's rate and hold, kept after the probe ends.
    last_measured: Option<(f64, Duration)>,
    event: Option<Event>,
    /// The rate the site states in its headers: a ceiling of its own.
    stated: Option<f64>,
    /// The rate last reported by a [`Change`].
    reported: f64,
    /// Send times of the answered requests of the last [`MAX_WINDOW`],
    /// oldest first, and whether each was accepted (at most the quota ×
    /// 60 entries).
    answers: VecDeque<(Instant, bool)>,
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
            opening: true,
            opened_at: None,
            first_sent: None,
            cut_at: None,
            cut: None,
            last_measured: None,
            event: None,
            stated: None,
            reported: ceiling,
            answers: VecDeque::new(),
            resumes: VecDeque::new(),
        }
    }

    /// The rate requests may go out at now.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Requests are spaced by the controller (below the quota, or at it
    /// without a burst while opening), not only by the governor.
    pub fn is_limiting(&self) -> bool {
        self.opening || self.rate < self.ceiling
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

    /// A pause ended early at `now`, `until` (now, or the end of the firm
    /// pauses that remain).
    pub fn resumed(&mut self, until: Instant, now: Instant) {
        self.resumes.retain(|end| *end <= now);
        self.paused(until, now);
    }

    /// The site answered a request sent at `sent`; `now` is when the answer
    /// was read.
    pub fn answered(&mut self, sent: Instant, now: Instant, answer: Answer) -> Option<Change> {
        let first = *self.first_sent.get_or_insert(sent);
        self.first_sent = Some(first.min(sent));
        let ok = matches!(answer, Answer::Accepted(_));
        // Answers arrive out of order; keep the log sorted by send time.
        let at = self.answers.partition_point(|(t, _)| *t <= sent);
        self.answers.insert(at, (sent, ok));
        while self
            .answers
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > MAX_WINDOW)
        {
            self.answers.pop_front();
        }
        let limits = match answer {
            Answer::Accepted(limits) | Answer::Throttled { limits, .. } => limits,
        };
        if let Some(stated) = limits.stated_rate() {
            if let Some(change) = self.told(stated, now) {
                return Some(change);
            }
        }
        if self.cut_at.is_some_and(|cut| sent < cut) {
            // On the wire with the last 429: its answer refines that
            // event's estimate rather than making one of its own, while
            // the pause it brought lasts (later, the probe has moved on).
            let open = self
                .event
                .zip(self.cut)
                .is_some_and(|(ev, cut)| now < cut.at + ev.window);
            return if open { self.refine() } else { None };
        }
        match answer {
            Answer::Accepted(_) => self.accepted(sent, now),
            Answer::Throttled {
                retry_after,
                limits,
            } => self.throttled(sent, now, retry_after.or(limits.reset)),
        }
    }

    fn accepted(&mut self, sent: Instant, now: Instant) -> Option<Change> {
        if self.opening
            && self.cut.is_none()
            && self
                .opened_at
                .or(self.first_sent)
                .is_some_and(|from| sent.saturating_duration_since(from) >= OPENING)
        {
            self.opening = false;
        }
        let cut = self.cut?;
        let cap = self
            .stated
            .map_or(self.ceiling, |s| (s * STATED_MARGIN).min(self.ceiling));
        let probed = cut.probe(now).min(cap);
        if probed <= self.rate {
            return None;
        }
        self.rate = probed;
        if self.rate >= self.ceiling {
            // Back at the quota: its burst waits until the site has taken
            // the quota for a while again.
            self.opening = true;
            self.opened_at = Some(now);
        }
        if self.rate >= cap {
            self.cut = None;
        }
        if self.rate >= self.reported * (1.0 + REPORT_STEP) || self.cut.is_none() {
            self.reported = self.rate;
            return Some(Change::Raised { rate: self.rate });
        }
        None
    }

    /// The site states its rate: go just under it, at once.
    fn told(&mut self, stated: f64, now: Instant) -> Option<Change> {
        self.opening = false;
        if self.stated == Some(stated) {
            return None;
        }
        self.stated = Some(stated);
        let target = (stated * STATED_MARGIN).min(self.ceiling);
        let was = self.rate;
        self.rate = target;
        self.reported = target;
        // A policy replaces what was measured; a 429 despite it measures
        // anew.
        self.cut = None;
        self.event = None;
        self.cut_at = Some(now);
        match target.total_cmp(&was) {
            std::cmp::Ordering::Less => Some(Change::Lowered {
                rate: target,
                accepted: stated,
            }),
            std::cmp::Ordering::Greater => Some(Change::Raised { rate: target }),
            std::cmp::Ordering::Equal => None,
        }
    }

    fn throttled(
        &mut self,
        sent: Instant,
        now: Instant,
        retry_after: Option<Duration>,
    ) -> Option<Change> {
        self.opening = false;
        // The site's memory spans about as long as it asks us to wait: what
        // it accepted over that span before refusing is what it allows.
        let window = retry_after
            .unwrap_or(MIN_WINDOW)
            .clamp(MIN_WINDOW, MAX_WINDOW);
        // Refused soon after a pause the site asked for, the requests since
        // are too few to measure a rate by: its memory outlasted the
        // Retry-After it gave, or the refusal is not about the rate at all.
        let resumed = self.resumes.iter().filter(|end| **end <= sent).max();
        let measurable = resumed.is_none_or(|r| sent.duration_since(*r) >= window / 2);
        let evidence_from = resumed.copied().max(self.first_sent).unwrap_or(sent);
        // A guess refused again bounds the site's rate with its own.
        let guess = self.cut.filter(|cut| !cut.measured);
        // The probe's rate a second ago was taken since (unless a pause
        // stopped the requests): a refusal well above it is the probe's,
        // and the cut stops there. Near it, the site may have lowered its
        // limit.
        let safe = self
            .cut
            .zip(now.checked_sub(SAFE_SPAN))
            .filter(|(cut, t)| *t >= cut.at && self.resumes.iter().all(|r| r <= t))
            .map(|(cut, t)| cut.probe(t))
            .filter(|safe| self.rate > safe * PROBED)
            .unwrap_or(0.0);
        self.event = Some(Event {
            before: self.rate,
            refused: sent,
            window,
            measurable,
            observed: sent.saturating_duration_since(evidence_from) >= window,
            evidence_from,
            lifted: false,
            refuted: guess.is_some(),
            safe,
        });
        let refused = guess.map_or(self.rate, |cut| cut.refused.min(self.rate));
        self.cut_at = Some(now);
        self.cut = Some(Cut {
            at: now,
            rate: self.rate,
            measured: false,
            informed: false,
            hold: HOLD,
            refused,
        });
        let change = self.refine();
        if let Some(cut) = self.cut.as_mut().filter(|c| c.measured) {
            cut.hold = match self.last_measured {
                Some((rate, hold)) if (cut.rate / rate - 1.0).abs() <= CONFIRMED => {
                    (hold * 2).min(LONGEST_HOLD)
                }
                _ => HOLD,
            };
            self.last_measured = Some((cut.rate, cut.hold));
        }
        change
    }

    /// Sets the rate from the current event's evidence.
    fn refine(&mut self) -> Option<Change> {
        let ev = self.event?;
        let refill = self.refill_rate(&ev);
        let (accepted, measured) = match refill {
            Some(rate) => (Some(rate), true),
            None => self.estimate(&ev),
        };
        let served_since = self.answers.iter().any(|(t, ok)| *ok && *t > ev.refused);
        if served_since && ev.window <= SHORT_RETRY {
            self.event = Some(Event { lifted: true, ..ev });
        }
        let lowest = (ev.before * DEEPEST_CUT).max(ev.safe);
        // Refused just under a rate the site states, the request was most
        // likely bunched on its way; the policy still stands.
        let least = match self.stated {
            Some(_) => STATED_CUT,
            None => LEAST_CUT,
        };
        let target = match accepted {
            Some(a) => a * MARGIN,
            None if ev.refuted && self.stated.is_none() => ev.before * REFUTED_CUT,
            None => ev.before * least,
        };
        let target = match self.stated {
            Some(stated) => target.min(stated * STATED_MARGIN),
            None => target,
        };
        // A refill measured corrects a guess made earlier, upward too.
        let highest = match refill {
            Some(_) => self.ceiling * least,
            None => ev.before * least,
        };
        let rate = target
            .clamp(lowest.min(highest), highest)
            .max(self.ceiling * FLOOR);
        let cut = self.cut.as_mut()?;
        cut.rate = rate;
        cut.measured = measured && target > lowest;
        cut.informed = accepted.is_some() && target > lowest;
        if rate == self.rate && self.reported == rate {
            return None;
        }
        self.rate = rate;
        self.reported = rate;
        Some(Change::Lowered {
            rate,
            accepted: accepted.unwrap_or(0.0),
        })
    }

    /// The rate the site hands out room at again while it refuses, by the
    /// answers from [`REFILL_SPAN`] before the event's refusal on: each
    /// acceptance that follows a refusal (in send order) marks room come
    /// free between the two sends, and from the first such instant to the
    /// last the site accepted exactly what came free (a bucket's tokens, a
    /// window's expiring slots), whatever was offered. Unlike a count over
    /// a span, a bucket's burst does not inflate it, nor a window's edge
    /// deflate it. `None`: room came free fewer than twice, or not since
    /// the refusal (a window still full).
    fn refill_rate(&self, ev: &Event) -> Option<f64> {
        let from = ev.refused.checked_sub(REFILL_SPAN).unwrap_or(ev.refused);
        let mut freed: Vec<(Instant, usize)> = Vec::new();
        let mut accepted = 0;
        let mut refused: Option<Instant> = None;
        for &(sent, ok) in self.answers.iter().filter(|(t, _)| *t >= from) {
            if !ok {
                refused = Some(sent);
                continue;
            }
            accepted += 1;
            if let Some(x) = refused.take() {
                freed.push((x + sent.saturating_duration_since(x) / 2, accepted));
            }
        }
        let (&(first, n0), &(last, n1)) = (freed.first()?, freed.last()?);
        let span = last.saturating_duration_since(first).as_secs_f64();
        if last < ev.refused || n1 <= n0 || span <= 0.0 {
            return None;
        }
        // A pause between the two instants idled the crawl: a bucket kept
        // no more than its burst of what came free meanwhile.
        if self.resumes.iter().any(|r| *r > first && *r < last) {
            return None;
        }
        let refill = (n1 - n0) as f64 / span;
        // Against a bucket the refill reads low when requests came late for
        // their token (one without burst restarts its period at each
        // acceptance).
        Some(self.narrowed(refill, from))
    }

    /// A measured `rate` narrowed by the refusals' bound from `from` on:
    /// the longest a refusal followed the acceptance just before it says
    /// a bucket's period is longer than that, whatever its burst. Between
    /// the two when the bound is close enough to narrow it; a window's
    /// refusals bound nothing.
    fn narrowed(&self, rate: f64, from: Instant) -> f64 {
        let mut unrefilled = Duration::ZERO;
        let mut last_ok: Option<Instant> = None;
        for &(sent, ok) in self.answers.iter().filter(|(t, _)| *t >= from) {
            if ok {
                last_ok = Some(sent);
            } else if let Some(a) = last_ok.take() {
                unrefilled = unrefilled.max(sent.saturating_duration_since(a));
            }
        }
        let bound = 1.0 / unrefilled.as_secs_f64();
        if bound > rate && bound <= rate * TIGHT_BOUND {
            (rate + bound) / 2.0
        } else {
            rate
        }
    }

    /// Whether a 429's `Retry-After` of `wait` should hold the whole lane:
    /// not once the site was seen serving again at a measured rate within
    /// a short one (the rate is then set just under that), always for a
    /// long one.
    pub fn waits_out(&self, wait: Duration) -> bool {
        !(Self::is_short(wait) && self.event.is_some_and(|ev| ev.lifted))
    }

    /// A `Retry-After` short enough to be lifted by what the site serves.
    pub fn is_short(wait: Duration) -> bool {
        wait <= SHORT_RETRY
    }

    /// What the site allows, in requests/s, by the event's evidence, and
    /// whether that is a measurement rather than a guess. `None`: nothing
    /// to measure by.
    fn estimate(&self, ev: &Event) -> (Option<f64>, bool) {
        if !ev.measurable {
            return (None, false);
        }
        let in_span = |from: Instant, to: Instant| {
            self.answers
                .iter()
                .filter(move |(t, _)| *t >= from && *t < to)
        };
        // The requests on the wire with the refused one: while the site
        // refuses some, the ones it still serves come at its rate, however
        // fast they were offered (a bucket that lets one through per
        // period). Each stands for one gap of the span.
        let cut_at = self.cut_at.unwrap_or(ev.refused);
        let wire: Vec<(Instant, bool)> = in_span(ev.refused, cut_at).copied().collect();
        let served = wire.iter().filter(|(_, ok)| *ok).count();
        // One refusal beside a served request is a crawl at the edge of the
        // limit, not one far above it.
        if served > 0 && wire.len() - served >= 2 {
            if let Some(last) = wire.last().map(|(t, _)| *t) {
                let span = last.saturating_duration_since(ev.refused).as_secs_f64();
                let gap = span / (wire.len() - 1).max(1) as f64;
                return (Some(served as f64 / (span + gap)), served >= 3);
            }
        }
        // Else what it accepted over the span it names.
        let from = ev.refused.checked_sub(ev.window).unwrap_or(ev.refused);
        let before: Vec<(Instant, bool)> = in_span(from, ev.refused).copied().collect();
        let accepted = before.iter().filter(|(_, ok)| *ok).count() as f64 / ev.window.as_secs_f64();
        // The whole window was seen and the site refused nothing else in
        // it: it took all that was offered, and the refusal is at the edge
        // of what it allows. The count reads low when the rate was still
        // rising; the spacing of the last few requests does not.
        if ev.observed && before.iter().all(|(_, ok)| *ok) {
            // The last few since the evidence starts, though older than the
            // window: a slow site's second holds too few to space.
            let last: Vec<(Instant, bool)> = in_span(ev.evidence_from, ev.refused)
                .rev()
                .take(EDGE_SAMPLE)
                .copied()
                .collect();
            let edge = last
                .last()
                .filter(|_| last.len() == EDGE_SAMPLE && last.iter().all(|(_, ok)| *ok))
                .map(|(oldest, _)| {
                    EDGE_SAMPLE as f64 / ev.refused.saturating_duration_since(*oldest).as_secs_f64()
                })
                .filter(|r| r.is_finite())
                // Reaching back, it may find a burst sent before a quiet
                // window: never more than one request above what the window
                // held.
                .map(|r| match before.len() < EDGE_SAMPLE {
                    true => r.min((before.len() + 1) as f64 / ev.window.as_secs_f64()),
                    false => r,
                });
            let measured = accepted.max(edge.unwrap_or(0.0));
            return (Some(self.narrowed(measured, from)), true);
        }
        // Not the whole window seen (the opening, or soon after a pause):
        // the count is what a window limit allows, and reads low for a
        // bucket, which the probe corrects.
        (Some(accepted), true)
    }
}

/// Answers the throttle's tests feed the controller with.
#[cfg(test)]
pub(super) mod testing {
    use super::*;

    pub fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A 429 whose `Retry-After` names `secs`.
    pub fn throttled(secs: u64) -> Answer {
        Answer::Throttled {
            retry_after: Some(Duration::from_secs(secs)),
            limits: RateLimits::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{ms, throttled};
    use super::*;

    const OK: Answer = Answer::ACCEPTED;

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
            c.answered(sent, sent + latency, OK);
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
        // A crawler at 5/s meets the same site: now it measures the limit.
        let mut c = RateControl::new(5.0);
        let refused = accept_run(&mut c, t0, 60, 5.0, ms(10));
        c.answered(refused, refused + ms(10), throttled(40));
        let rate = c.rate();
        assert!((rate - 60.0 / 40.0 * MARGIN).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn a_measured_rate_holds_then_probes_ever_faster_to_the_quota_at_most() {
        // Measured: 10/s accepted for three seconds, every request, and
        // then one refused.
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        let refused = accept_run(&mut c, t0, 30, 10.0, ms(1));
        let cut = refused + ms(1);
        c.answered(refused, cut, throttled(1));
        let low = c.rate();
        assert!((low - 10.0 * MARGIN).abs() < 1e-9, "{low}");
        // Quiet answers during the hold change nothing.
        let mut now = cut;
        while now < cut + HOLD {
            assert_eq!(c.answered(now, now, OK), None);
            now += ms(100);
        }
        assert_eq!(c.rate(), low);
        // Then each second safe adds more than the one before.
        let mut gains = Vec::new();
        let mut last = low;
        for s in 1..=6 {
            let at = cut + HOLD + Duration::from_secs(s);
            c.answered(at, at, OK);
            gains.push(c.rate() - last);
            last = c.rate();
        }
        assert!(gains.windows(2).all(|g| g[1] > g[0]), "{gains:?}");
        // Up by half one RISE after the hold: a site that raised its limit
        // by half is found within HOLD + RISE of the last 429.
        assert!((c.rate() - low * 1.5).abs() < 1e-9, "{}", c.rate());
        // And never past the quota.
        let late = cut + Duration::from_secs(600);
        assert_eq!(
            c.answered(late, late, OK),
            Some(Change::Raised { rate: 20.0 })
        );
        // The quota's burst comes back once the site has taken the quota
        // for a second again.
        assert!(c.is_limiting());
        let later = late + OPENING;
        c.answered(later, later, OK);
        assert!(!c.is_limiting());
    }

    #[test]
    fn a_guess_probes_sooner_and_faster_than_a_measurement() {
        // Refused at once, nothing accepted: a clamped guess at a quarter,
        // blind.
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        c.answered(t0, t0, throttled(1));
        assert_eq!(c.rate(), 5.0);
        let soon = t0 + HOLD / BLIND_HOLD + RISE / BLIND_RISE;
        c.answered(soon, soon, OK);
        assert!((c.rate() - 7.5).abs() < 1e-9, "{}", c.rate());
    }

    #[test]
    fn a_guess_from_a_short_sample_probes_slower_than_a_blind_one() {
        // One served beside two refused on the wire: 6.5/s, not a
        // measurement, but not nothing either (a bucket with burst serves
        // the probe from its tokens for seconds past its rate).
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        c.answered(t0, t0 + ms(50), OK);
        c.answered(t0 + ms(100), t0 + ms(210), throttled(1));
        c.answered(t0 + ms(150), t0 + ms(250), OK);
        c.answered(t0 + ms(200), t0 + ms(300), throttled(1));
        let guess = c.rate();
        assert!((guess - 1.0 / 0.15 * MARGIN).abs() < 1e-9, "{guess}");
        // Counted from the first 429 read.
        let soon = t0 + ms(210) + HOLD / GUESS_HOLD + RISE / GUESS_RISE;
        c.answered(soon, soon, OK);
        assert!((c.rate() - guess * 1.5).abs() < 1e-9, "{}", c.rate());
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
        let before = c.rate();
        c.answered(again, again + ms(5), throttled(1));
        assert_eq!(c.rate(), before * LEAST_CUT);
        // Half a window after the pause, a 429 is a measurement again.
        let late = resumed + ms(600);
        c.answered(late, late + ms(5), throttled(1));
        assert_eq!(c.rate(), before * LEAST_CUT * DEEPEST_CUT);
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
    fn the_opening_spaces_requests_until_the_site_took_the_quota_for_a_second() {
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        assert!(c.is_limiting(), "no burst before any answer");
        accept_run(&mut c, t0, 20, 20.0, ms(100));
        assert!(c.is_limiting(), "19 gaps of 50 ms: 950 ms");
        c.answered(t0 + ms(1000), t0 + ms(1100), OK);
        assert!(!c.is_limiting());
        assert_eq!(c.rate(), 20.0);
    }

    #[test]
    fn a_stated_policy_sets_the_rate_at_once_and_caps_the_probe() {
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        let policy = |q: u64| {
            Answer::Accepted(RateLimits {
                limit: Some(q),
                window: Some(Duration::from_secs(1)),
                ..RateLimits::default()
            })
        };
        assert_eq!(
            c.answered(t0, t0, policy(8)),
            Some(Change::Lowered {
                rate: 8.0 * STATED_MARGIN,
                accepted: 8.0
            })
        );
        assert_eq!(c.answered(t0, t0, policy(8)), None, "said again");
        // A 429 despite it measures; the probe never passes the policy.
        let refused = accept_run(&mut c, t0 + ms(10), 6, 7.0, ms(1));
        c.answered(refused, refused, throttled(1));
        assert_eq!(c.rate(), 8.0 * STATED_MARGIN * STATED_CUT, "a small cut");
        let late = refused + Duration::from_secs(600);
        c.answered(late, late, OK);
        assert_eq!(c.rate(), 8.0 * STATED_MARGIN);
        // The site raises its policy: followed at once.
        assert_eq!(
            c.answered(late, late, policy(12)),
            Some(Change::Raised {
                rate: 12.0 * STATED_MARGIN
            })
        );
    }

    #[test]
    fn reset_stands_in_for_a_missing_retry_after() {
        // 80 accepted in the last 40 s, then a refusal whose
        // RateLimit-Reset names a 45-second memory.
        let mut c = RateControl::new(3.0);
        let t0 = Instant::now();
        let refused = accept_run(&mut c, t0, 80, 2.0, ms(1));
        c.answered(
            refused,
            refused,
            Answer::Throttled {
                retry_after: None,
                limits: RateLimits {
                    reset: Some(Duration::from_secs(45)),
                    ..RateLimits::default()
                },
            },
        );
        // Over one second it would read 2/s.
        let rate = c.rate();
        assert!((rate - 80.0 / 45.0 * MARGIN).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn the_answers_on_the_wire_with_a_429_refine_its_estimate() {
        // A bucket without burst, 8/s, met at 20/s: robots.txt served, then
        // pages 50 ms apart, refused, served, refused.
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        c.answered(t0, t0 + ms(50), OK);
        c.answered(t0 + ms(100), t0 + ms(210), throttled(1));
        assert_eq!(c.rate(), 5.0, "one served in the second: a guess");
        // On the wire when the 429 was read: they refine, not cut again.
        c.answered(t0 + ms(150), t0 + ms(250), OK);
        assert_eq!(c.rate(), 5.0, "one refusal beside a served one says little");
        let change = c.answered(t0 + ms(200), t0 + ms(300), throttled(1));
        // One served in the 150 ms the three stand for: 6.7/s.
        let expected = 1.0 / 0.15 * MARGIN;
        assert!((c.rate() - expected).abs() < 1e-9, "{}", c.rate());
        assert!(matches!(change, Some(Change::Lowered { .. })));
    }

    /// Feeds answers to requests sent at `t0` + each offset (ms), in send
    /// order, each answered `latency` later: `true` served, `false` a 429
    /// with Retry-After: 1.
    fn feed(c: &mut RateControl, t0: Instant, sends: &[(u64, bool)], latency: Duration) {
        for &(at, ok) in sends {
            let sent = t0 + ms(at);
            let answer = if ok { OK } else { throttled(1) };
            c.answered(sent, sent + latency, answer);
        }
    }

    #[test]
    fn a_bucket_is_measured_by_how_fast_its_refusals_turn_back_to_acceptances() {
        // A bucket of 8/s without burst (GCRA, as nginx's `limit_req`):
        // robots.txt served, then pages 50 ms apart from 108 ms on. It
        // serves one in three, 6.7/s, as its period restarts at each
        // acceptance; but a request 108 ms after a served one was refused,
        // so its period is longer than that, 9.3/s at most. The rate is
        // set between the two: neither a quarter of the quota nor 6.7.
        let sends = [
            (0, true),
            (108, false),
            (158, true),
            (208, false),
            (258, false),
            (308, true),
            (358, false),
            (408, false),
            (458, true),
        ];
        // Every page on the wire when the first 429 is read.
        let mut c = RateControl::new(20.0);
        feed(&mut c, Instant::now(), &sends, ms(400));
        let rate = c.rate();
        assert!((7.5..8.0).contains(&rate), "{rate}");
    }

    #[test]
    fn a_bucket_with_burst_is_not_read_as_a_window_of_its_burst() {
        // Burst 4 at 8/s offered 20/s: five served back to back, then one
        // in two or three as tokens come (GCRA). Counted over the second
        // of its Retry-After, 7 served read as 7/s and held for seconds.
        let sends = [
            (0, true),
            (108, true),
            (158, true),
            (208, true),
            (258, true),
            (308, true),
            (358, false),
            (408, true),
            (458, false),
            (508, true),
            (558, false),
            (608, false),
            (658, true),
        ];
        let mut c = RateControl::new(20.0);
        feed(&mut c, Instant::now(), &sends, ms(100));
        let rate = c.rate();
        assert!((7.0..8.0).contains(&rate), "{rate}");
    }

    #[test]
    fn a_short_retry_after_is_lifted_once_the_site_serves_again() {
        // The 429 for the request at 100 ms is read at 200 ms, when the
        // one sent at 150 ms is still on the wire.
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        c.answered(t0, t0 + ms(100), OK);
        c.answered(t0 + ms(100), t0 + ms(200), throttled(1));
        assert!(c.waits_out(Duration::from_secs(1)), "nothing served since");
        c.answered(t0 + ms(150), t0 + ms(250), OK);
        assert!(!c.waits_out(Duration::from_secs(1)));
        assert!(
            c.waits_out(Duration::from_secs(30)),
            "a long one always holds"
        );
        // A window full to its end refuses everything on the wire: its
        // Retry-After holds.
        let mut c = RateControl::new(20.0);
        let served = accept_run(&mut c, t0, 8, 20.0, ms(100));
        c.answered(served, served + ms(100), throttled(1));
        c.answered(served + ms(50), served + ms(150), throttled(1));
        assert!(c.waits_out(Duration::from_secs(1)));
    }

    #[test]
    fn a_refusal_after_a_window_of_accepted_requests_is_measured_by_their_spacing() {
        // Two seconds at 5/s, then 10/s: all accepted until one is refused.
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        let faster = accept_run(&mut c, t0, 10, 5.0, ms(1));
        let refused = accept_run(&mut c, faster, 6, 10.0, ms(1));
        c.answered(refused, refused + ms(1), throttled(1));
        // Counted over its second, 8 were accepted; they went 100 ms apart
        // at the end.
        let rate = c.rate();
        assert!((rate - 10.0 * MARGIN).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn a_refusal_at_a_slow_sites_edge_is_measured_by_spacing_older_than_its_window() {
        // Ten seconds at 2.9/s under a quota of 3.2, all accepted, then one
        // refused: a second holds two or three of them, so a count over it
        // reads 2 or 3/s; their spacing reads 2.9/s (and the cut is the
        // least one, from 3.2).
        let mut c = RateControl::new(3.2);
        let t0 = Instant::now();
        let refused = accept_run(&mut c, t0, 30, 2.9, ms(100));
        c.answered(refused, refused + ms(100), throttled(1));
        let rate = c.rate();
        assert!((rate - 2.9 * MARGIN).abs() < 1e-6, "{rate}");
    }

    #[test]
    fn a_burst_before_a_quiet_window_is_not_read_as_the_rate() {
        let mut c = RateControl::new(10.0);
        let t0 = Instant::now();
        // The opening: accepted a second apart.
        c.answered(t0, t0 + ms(50), OK);
        c.answered(t0 + ms(1000), t0 + ms(1050), OK);
        assert!(!c.is_limiting());
        // Four at once (the governor's burst), accepted, then nothing for
        // over a second, then one refused with Retry-After: 1: the site
        // allows less than one a second after a burst of four.
        for i in 0..4 {
            let s = t0 + ms(2000 + i * 10);
            c.answered(s, s + ms(50), OK);
        }
        let refused = t0 + ms(3100);
        c.answered(refused, refused + ms(50), throttled(1));
        let rate = c.rate();
        assert!(rate <= 10.0 * DEEPEST_CUT + 1e-9, "{rate}");
    }

    #[test]
    fn a_429_that_confirms_the_measured_rate_doubles_the_hold() {
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        let refused = accept_run(&mut c, t0, 30, 10.0, ms(1));
        c.answered(refused, refused, throttled(1));
        let first = c.rate();
        // The site keeps its limit: held for HOLD, the probe passes it two
        // seconds later and is refused near the same figure.
        let probe = accept_run(&mut c, refused, 80, first, ms(1));
        assert!(c.rate() > first, "probing");
        c.answered(probe, probe, throttled(1));
        let second = c.rate();
        assert!(
            (second / first - 1.0).abs() <= CONFIRMED,
            "{first} {second}"
        );
        // Now it holds twice as long.
        let held = probe + HOLD + ms(1500);
        c.answered(held, held, OK);
        assert_eq!(c.rate(), second, "still holding after HOLD");
        let rising = probe + 2 * HOLD + ms(1500);
        c.answered(rising, rising, OK);
        assert!(c.rate() > second);
    }

    #[test]
    fn the_accepted_log_forgets_what_no_window_can_reach() {
        let mut c = RateControl::new(30.0);
        let t0 = Instant::now();
        let end = accept_run(&mut c, t0, 30 * 300, 30.0, ms(1));
        assert!(c.answers.len() <= 30 * 61, "{}", c.answers.len());
        assert!(c
            .answers
            .iter()
            .all(|(t, _)| end.duration_since(*t) <= MAX_WINDOW + ms(40)));
    }

    #[test]
    fn a_refusal_at_a_buckets_edge_is_narrowed_by_how_soon_it_followed_an_acceptance() {
        // A second at 5/s, then a probe closing in on a bucket of about 8/s
        // without burst: 150, 140, 130, 128 ms apart, all served, and the
        // next request, 120 ms after the last, refused. The last four's
        // spacing reads 7.7/s; the refusal says the period is longer than
        // 120 ms, 8.3/s at most. The rate goes between the two.
        let sends = [
            (0, true),
            (200, true),
            (400, true),
            (600, true),
            (800, true),
            (1000, true),
            (1150, true),
            (1290, true),
            (1420, true),
            (1548, true),
            (1668, false),
        ];
        let mut c = RateControl::new(20.0);
        feed(&mut c, Instant::now(), &sends, ms(1));
        let rate = c.rate();
        assert!((7.7..8.1).contains(&rate), "{rate}");
    }

    #[test]
    fn a_guess_probes_fast_but_not_past_the_rate_the_site_refused_until_it_has_held() {
        // Refused at the quota at once: a guess of a quarter.
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        c.answered(t0, t0, throttled(1));
        assert_eq!(c.rate(), 5.0);
        // Three seconds safe: the guess has probed up to just under the
        // rate the site refused, and no further...
        let safe = t0 + ms(3000);
        c.answered(safe, safe, OK);
        assert_eq!(c.rate(), 20.0 * LEAST_CUT);
        let held = t0 + HOLD - ms(1);
        c.answered(held, held, OK);
        assert_eq!(c.rate(), 20.0 * LEAST_CUT);
        // ...until it has held as long as a measured rate does: then it
        // probes past it, as a site that raised its limit needs.
        let late = t0 + HOLD + RISE;
        c.answered(late, late, OK);
        assert_eq!(c.rate(), 20.0);
    }

    #[test]
    fn a_guess_refused_again_with_nothing_measured_is_halved_and_bounds_the_probe() {
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        c.answered(t0, t0, throttled(1));
        c.paused(t0 + ms(1000), t0);
        // Refused again among the first requests after the pause: too few
        // to measure by, and the guess itself was too high.
        let resumed = t0 + ms(1000);
        c.answered(resumed, resumed + ms(10), OK);
        let guess = c.rate();
        c.answered(resumed + ms(200), resumed + ms(210), throttled(1));
        assert_eq!(c.rate(), guess * REFUTED_CUT);
        // The probe from there stops under the guess the site refused.
        let safe = resumed + ms(3000);
        c.answered(safe, safe, OK);
        assert_eq!(c.rate(), guess * LEAST_CUT);
    }

    #[test]
    fn a_probe_refused_well_above_the_rate_it_had_a_second_before_cuts_no_lower() {
        // A guess probing fast, each request sent at the rate the probe
        // allows; then a refusal whose Retry-After (3 s) reaches back past
        // the guess: counted over that span, the site took 3.5/s.
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        c.answered(t0, t0, throttled(1));
        let mut sent = t0 + ms(100);
        let mut rates = Vec::new();
        while sent < t0 + ms(2000) {
            c.answered(sent, sent + ms(1), OK);
            rates.push((sent + ms(1), c.rate()));
            sent += Duration::from_secs_f64(1.0 / c.rate());
        }
        let refused_at = sent + ms(1);
        let a_second_before = rates
            .iter()
            .rev()
            .find(|(at, _)| *at + SAFE_SPAN <= refused_at)
            .map_or(0.0, |(_, rate)| *rate);
        assert!(c.rate() > a_second_before * PROBED, "still probing");
        c.answered(sent, refused_at, throttled(3));
        assert!(
            c.rate() >= a_second_before,
            "{} < {a_second_before}",
            c.rate()
        );
    }

    #[test]
    fn room_freed_on_either_side_of_a_pause_is_not_read_as_the_refill() {
        // A bucket of 8/s without burst met by a probe: refused, a pause
        // (lifted early), then one served, one refused and one served on
        // the wire with it. One acceptance between the two instants room
        // came free, 200 ms apart, reads 5/s; the pause idled the crawl in
        // between, and a bucket keeps no more than its burst.
        let mut c = RateControl::new(20.0);
        let t0 = Instant::now();
        let probe = accept_run(&mut c, t0, 24, 8.0, ms(1));
        let first = probe + ms(120);
        c.answered(first, first + ms(110), throttled(1));
        let measured = c.rate();
        c.paused(first + ms(1110), first + ms(110));
        c.resumed(first + ms(225), first + ms(225));
        c.answered(first + ms(230), first + ms(330), OK);
        c.answered(first + ms(350), first + ms(450), throttled(1));
        c.answered(first + ms(400), first + ms(500), OK);
        assert!(c.rate() > measured * 0.8, "{} after {measured}", c.rate());
    }
}
