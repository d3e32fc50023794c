//! The fake site's rate limiters, one per shape real sites use: a token
//! bucket (GCRA, as nginx's `limit_req` and most API gateways keep it), a
//! sliding one-window log, and a fixed window (a counter reset at each
//! boundary, as a Redis `INCR` with an expiry). Each may change its limit
//! once, at a request count or some time into the crawl, as real sites
//! tighten and relax over a day.
//!
//! A limiter is pure: every instant is passed in, so its tests step
//! through any history without waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How a limiter counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// `rate` tokens a second, at most `burst` kept: `burst` requests back
    /// to back, then one per 1/`rate` (burst 1 is nginx's `limit_req`
    /// without `burst=`).
    TokenBucket { rate: f64, burst: u32 },
    /// At most `limit` requests in any `window`.
    SlidingWindow { limit: u32, window: Duration },
    /// At most `limit` requests from one boundary to the next, the
    /// boundaries `window` apart at a phase of their own.
    FixedWindow { limit: u32, window: Duration },
}

impl Shape {
    /// The shape with its rate multiplied by `factor` (the bucket keeps its
    /// burst, a window its length).
    pub fn scaled(self, factor: f64) -> Shape {
        let count = |n: u32| ((f64::from(n) * factor).round() as u32).max(1);
        match self {
            Shape::TokenBucket { rate, burst } => Shape::TokenBucket {
                rate: rate * factor,
                burst,
            },
            Shape::SlidingWindow { limit, window } => Shape::SlidingWindow {
                limit: count(limit),
                window,
            },
            Shape::FixedWindow { limit, window } => Shape::FixedWindow {
                limit: count(limit),
                window,
            },
        }
    }

    /// Requests a second, in the long run.
    pub fn rate(&self) -> f64 {
        match *self {
            Shape::TokenBucket { rate, .. } => rate,
            Shape::SlidingWindow { limit, window } | Shape::FixedWindow { limit, window } => {
                f64::from(limit) / window.as_secs_f64()
            }
        }
    }
}

/// The limiters the rate controller is measured against (issue 21), each
/// at 8 requests/s: a name, the shape, and the factor its limit changes by
/// after the 60th request, if it does. The table bench crawls them in real
/// time, `tests/rate_sim.rs` in simulated time.
pub fn measured_shapes() -> Vec<(&'static str, Shape, Option<f64>)> {
    let second = Duration::from_secs(1);
    let bucket = |burst| Shape::TokenBucket { rate: 8.0, burst };
    let sliding = Shape::SlidingWindow {
        limit: 8,
        window: second,
    };
    let fixed = Shape::FixedWindow {
        limit: 8,
        window: second,
    };
    vec![
        ("token bucket, burst 16", bucket(16), None),
        ("token bucket, burst 8", bucket(8), None),
        ("token bucket, burst 4", bucket(4), None),
        ("token bucket, burst 1", bucket(1), None),
        ("sliding 1 s window", sliding, None),
        ("fixed 1 s window", fixed, None),
        (
            "sliding window, halved after 60 requests",
            sliding,
            Some(0.5),
        ),
        ("sliding window, x1.5 after 60 requests", sliding, Some(1.5)),
    ]
}

/// When the limit changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shift {
    /// Once this many requests were answered (served or refused).
    AtRequest(u64),
    /// This long after the first request.
    After(Duration),
}

/// What the limiter decided for one request, with what a site that sends
/// rate-limit headers would say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub served: bool,
    /// Requests the policy allows per `window`.
    pub limit: u32,
    pub window: Duration,
    /// Requests left now.
    pub remaining: u32,
    /// Until the next request would be served (a refusal's Retry-After)
    /// or the quota is whole again (a success's reset).
    pub reset: Duration,
}

impl Verdict {
    /// `Retry-After` in whole seconds, rounded up: never earlier than the
    /// limiter would serve again.
    pub fn retry_after_secs(&self) -> u64 {
        self.reset.as_secs() + u64::from(self.reset.subsec_nanos() > 0)
    }
}

#[derive(Debug, Clone)]
pub struct Limiter {
    shape: Shape,
    shift: Option<(Shift, f64)>,
    /// The fixed windows' phase: the site's own clock, not the crawl's.
    origin: Instant,
    first: Option<Instant>,
    answered: u64,
    /// The token bucket's theoretical arrival time (GCRA).
    tat: Option<Instant>,
    /// The sliding window's served requests; the fixed window's of the
    /// current window.
    served: VecDeque<Instant>,
}

impl Limiter {
    /// A limiter whose fixed windows start at `origin`.
    pub fn new(shape: Shape, origin: Instant) -> Limiter {
        Limiter {
            shape,
            shift: None,
            origin,
            first: None,
            answered: 0,
            tat: None,
            served: VecDeque::new(),
        }
    }

    /// The rate is multiplied by `factor` at `when`.
    pub fn shifting(mut self, when: Shift, factor: f64) -> Limiter {
        self.shift = Some((when, factor));
        self
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Decides a request arriving at `at`; arrivals come in order.
    pub fn admit(&mut self, at: Instant) -> Verdict {
        let first = *self.first.get_or_insert(at);
        if let Some((when, factor)) = self.shift {
            let due = match when {
                Shift::AtRequest(n) => self.answered >= n,
                Shift::After(d) => at.saturating_duration_since(first) >= d,
            };
            if due {
                self.shape = self.shape.scaled(factor);
                self.shift = None;
            }
        }
        self.answered += 1;
        match self.shape {
            Shape::TokenBucket { rate, burst } => self.bucket(at, rate, burst),
            Shape::SlidingWindow { limit, window } => self.sliding(at, limit, window),
            Shape::FixedWindow { limit, window } => self.fixed(at, limit, window),
        }
    }

    fn bucket(&mut self, at: Instant, rate: f64, burst: u32) -> Verdict {
        let period = Duration::from_secs_f64(1.0 / rate.max(1e-3));
        // How far ahead of `at` the bucket may be booked: burst − 1 periods.
        let tolerance = period * burst.saturating_sub(1);
        let tat = self.tat.unwrap_or(at).max(at);
        let earliest = tat.checked_sub(tolerance).unwrap_or(at);
        let policy = |served, remaining, reset| Verdict {
            served,
            limit: rate.round().max(1.0) as u32,
            window: Duration::from_secs(1),
            remaining,
            reset,
        };
        if at < earliest {
            return policy(false, 0, earliest - at);
        }
        let tat = tat + period;
        self.tat = Some(tat);
        let booked = tat.saturating_duration_since(at);
        let room = tolerance + period;
        let left = room.saturating_sub(booked).as_secs_f64() / period.as_secs_f64();
        policy(true, left.floor() as u32, booked)
    }

    fn sliding(&mut self, at: Instant, limit: u32, window: Duration) -> Verdict {
        while self
            .served
            .front()
            .is_some_and(|t| at.saturating_duration_since(*t) >= window)
        {
            self.served.pop_front();
        }
        let limit_n = limit.max(1) as usize;
        let served = self.served.len() < limit_n;
        if served {
            self.served.push_back(at);
        }
        let len = self.served.len();
        // Whole again when the newest leaves; a request may go when the
        // one `limit` back leaves.
        let reset = if served {
            self.served.back().map_or(Duration::ZERO, |t| {
                (*t + window).saturating_duration_since(at)
            })
        } else {
            (self.served[len - limit_n] + window).saturating_duration_since(at)
        };
        Verdict {
            served,
            limit,
            window,
            remaining: (limit_n - len.min(limit_n)) as u32,
            reset,
        }
    }

    fn fixed(&mut self, at: Instant, limit: u32, window: Duration) -> Verdict {
        let since = at.saturating_duration_since(self.origin);
        let n = since.as_nanos() / window.as_nanos().max(1);
        let start = self.origin + window * u32::try_from(n).unwrap_or(u32::MAX);
        self.served.retain(|t| *t >= start);
        let served = self.served.len() < limit.max(1) as usize;
        if served {
            self.served.push_back(at);
        }
        Verdict {
            served,
            limit,
            window,
            remaining: limit.saturating_sub(self.served.len() as u32),
            reset: (start + window).saturating_duration_since(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Requests every `gap` from `t0`: which were served.
    fn run(l: &mut Limiter, t0: Instant, n: u32, gap: Duration) -> Vec<bool> {
        (0..n).map(|i| l.admit(t0 + gap * i).served).collect()
    }

    #[test]
    fn a_bucket_serves_its_burst_at_once_then_one_per_period() {
        let t0 = Instant::now();
        let mut l = Limiter::new(
            Shape::TokenBucket {
                rate: 8.0,
                burst: 4,
            },
            t0,
        );
        let served = run(&mut l, t0, 6, Duration::ZERO);
        assert_eq!(served, [true, true, true, true, false, false]);
        let refused = l.admit(t0);
        assert_eq!(refused.reset, ms(125), "the next token");
        assert_eq!(refused.retry_after_secs(), 1);
        assert!(l.admit(t0 + ms(125)).served);
        assert!(!l.admit(t0 + ms(130)).served);
        // Idle, it fills up to its burst and no more.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            run(&mut l, later, 5, Duration::ZERO),
            [true, true, true, true, false]
        );
    }

    #[test]
    fn a_bucket_of_one_refuses_anything_closer_than_its_period() {
        let t0 = Instant::now();
        let mut l = Limiter::new(
            Shape::TokenBucket {
                rate: 8.0,
                burst: 1,
            },
            t0,
        );
        // 124 ms apart: every other one is refused, and a refusal books
        // nothing.
        assert_eq!(run(&mut l, t0, 4, ms(124)), [true, false, true, false]);
        let mut l = Limiter::new(
            Shape::TokenBucket {
                rate: 8.0,
                burst: 1,
            },
            t0,
        );
        assert!(run(&mut l, t0, 16, ms(125)).iter().all(|s| *s));
        let v = l.admit(t0 + ms(2000));
        assert_eq!((v.served, v.remaining), (true, 0));
    }

    #[test]
    fn a_sliding_window_serves_its_limit_in_any_window() {
        let t0 = Instant::now();
        let mut l = Limiter::new(
            Shape::SlidingWindow {
                limit: 8,
                window: Duration::from_secs(1),
            },
            t0,
        );
        let served = run(&mut l, t0, 10, ms(50));
        assert_eq!(served.iter().filter(|s| **s).count(), 8);
        let refused = l.admit(t0 + ms(500));
        assert!(!refused.served);
        assert_eq!(refused.reset, ms(500), "until the first leaves");
        assert!(l.admit(t0 + ms(1000)).served);
        assert!(!l.admit(t0 + ms(1001)).served);
    }

    #[test]
    fn a_fixed_window_resets_its_count_at_each_boundary() {
        let origin = Instant::now();
        let mut l = Limiter::new(
            Shape::FixedWindow {
                limit: 8,
                window: Duration::from_secs(1),
            },
            origin,
        );
        // Eight at the end of one window and eight at the start of the
        // next: sixteen within 200 ms, all served.
        let t0 = origin + ms(900);
        let served = run(&mut l, t0, 18, ms(10));
        assert_eq!(served.iter().filter(|s| **s).count(), 16);
        assert!(!served[8] && served[10]);
        let refused = l.admit(origin + ms(1200));
        assert_eq!((refused.served, refused.reset), (false, ms(800)));
        assert_eq!(refused.retry_after_secs(), 1);
    }

    #[test]
    fn a_limit_changes_at_a_request_count_or_a_time() {
        let t0 = Instant::now();
        let shape = Shape::SlidingWindow {
            limit: 8,
            window: Duration::from_secs(1),
        };
        let mut l = Limiter::new(shape, t0).shifting(Shift::AtRequest(3), 0.5);
        run(&mut l, t0, 3, ms(300));
        assert_eq!(l.shape().rate(), 8.0);
        l.admit(t0 + ms(900));
        assert_eq!(l.shape().rate(), 4.0);
        let bucket = Shape::TokenBucket {
            rate: 8.0,
            burst: 1,
        };
        let mut l = Limiter::new(bucket, t0).shifting(Shift::After(Duration::from_secs(5)), 1.5);
        l.admit(t0 + ms(1000));
        l.admit(t0 + ms(5999));
        assert_eq!(l.shape().rate(), 8.0, "counted from the first request");
        l.admit(t0 + ms(6000));
        assert_eq!(l.shape().rate(), 12.0);
    }

    #[test]
    fn what_a_served_request_is_told() {
        let t0 = Instant::now();
        let mut l = Limiter::new(
            Shape::SlidingWindow {
                limit: 3,
                window: Duration::from_secs(1),
            },
            t0,
        );
        let v = l.admit(t0);
        assert_eq!(
            (v.limit, v.window, v.remaining, v.reset),
            (3, Duration::from_secs(1), 2, Duration::from_secs(1))
        );
        let mut b = Limiter::new(
            Shape::TokenBucket {
                rate: 10.0,
                burst: 5,
            },
            t0,
        );
        let v = b.admit(t0);
        assert_eq!((v.limit, v.remaining), (10, 4));
    }
}
