//! What a site says of its own rate limit in its response headers, read
//! into one typed value: the IETF draft's fields (`RateLimit-Policy` and
//! `RateLimit` in their structured form, and the older drafts' separate
//! `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`) and the
//! widespread `X-RateLimit-*` trio.
//!
//! Headers come from servers we do not control: a value that does not
//! read as a sane number is as good as absent, never an error.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// The longest reset or window believed: beyond a day a value is more
/// likely garbage than a policy, and no crawl waits that long on one.
const LONGEST: f64 = 24.0 * 3600.0;
/// An `X-RateLimit-Reset` this large is a Unix time (GitHub's form), not
/// a count of seconds.
const EPOCH_FROM: f64 = 1.0e9;

/// A site's own account of its limit; every field is optional, as sites
/// send any subset.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateLimits {
    /// Requests the policy allows per `window`.
    pub limit: Option<u64>,
    /// The policy's window (`w=`), when the site names it.
    pub window: Option<Duration>,
    /// Requests left in the current window.
    pub remaining: Option<u64>,
    /// Until the quota is restored.
    pub reset: Option<Duration>,
}

impl RateLimits {
    /// Reads the headers of one response; `now_unix` (seconds) turns an
    /// absolute reset time into a wait.
    pub fn from_headers(headers: &HeaderMap, now_unix: i64) -> RateLimits {
        let get = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(",")
        };
        RateLimits::read(&get, now_unix)
    }

    /// The parser behind [`RateLimits::from_headers`], over a lookup that
    /// gives a header's value (its repeats joined by commas) or "".
    pub fn read(get: &dyn Fn(&str) -> String, now_unix: i64) -> RateLimits {
        let mut out = RateLimits::default();
        // The IETF draft's current form: the policy and the state, each a
        // list of items with parameters.
        if let Some((q, w)) = tightest_policy(&get("ratelimit-policy")) {
            out.limit = Some(q);
            out.window = w;
        }
        // Of several policies' states, the one with the fewest requests
        // left binds, with its own reset. Draft 06 spreads one state over
        // the list ("limit=100, remaining=50, reset=30").
        let mut state: Option<(u64, Option<Duration>)> = None;
        for item in get("ratelimit").split(',') {
            let (mut r, mut t) = (None, None);
            for (key, value) in params(item) {
                match key {
                    "r" | "remaining" => r = count(value),
                    "t" | "reset" => t = seconds(value),
                    "limit" | "q" => out.limit = out.limit.or(count(value)),
                    _ => {}
                }
            }
            match (r, state) {
                (Some(r), Some((least, _))) if r >= least => {}
                (Some(r), _) => state = Some((r, t)),
                (None, _) => out.reset = out.reset.or(t),
            }
        }
        if let Some((r, t)) = state {
            out.remaining = Some(r);
            out.reset = t.or(out.reset);
        }
        // The older drafts' separate fields; `RateLimit-Limit` may carry a
        // policy of its own after the number ("10, 10;w=1").
        if out.limit.is_none() {
            if let Some((q, w)) = tightest_policy(&get("ratelimit-limit")) {
                out.limit = Some(q);
                out.window = out.window.or(w);
            }
        }
        out.remaining = out
            .remaining
            .or_else(|| first_count(&get("ratelimit-remaining")));
        out.reset = out
            .reset
            .or_else(|| seconds(first(&get("ratelimit-reset"))));
        // The de facto headers, where the IETF ones are absent.
        out.limit = out.limit.or_else(|| first_count(&get("x-ratelimit-limit")));
        out.remaining = out
            .remaining
            .or_else(|| first_count(&get("x-ratelimit-remaining")));
        out.reset = out.reset.or_else(|| {
            let raw = number(first(&get("x-ratelimit-reset")))?;
            let wait = if raw >= EPOCH_FROM {
                raw - now_unix as f64
            } else {
                raw
            };
            seconds_f(wait.max(0.0))
        });
        out
    }

    /// The rate the site states, in requests a second: its limit over its
    /// window, when it names both.
    pub fn stated_rate(&self) -> Option<f64> {
        let (limit, window) = (self.limit?, self.window?);
        (limit > 0 && !window.is_zero()).then(|| limit as f64 / window.as_secs_f64())
    }

    /// The site says no request is left until `reset`, longer than its
    /// pacing window. Within the window, pacing at the stated rate already
    /// waits: a bucket without burst says "none left" after every request,
    /// with a reset rounded up to the whole second.
    pub fn exhausted_for(&self) -> Option<Duration> {
        (self.remaining == Some(0))
            .then_some(self.reset)
            .flatten()
            .filter(|r| !r.is_zero())
            .filter(|r| self.stated_rate().is_none() || self.window.is_none_or(|w| *r > w))
    }

    pub fn is_empty(&self) -> bool {
        *self == RateLimits::default()
    }
}

/// Of a policy list ("100;w=60, 10;w=1" or `"name";q=100;w=60`), the
/// item with the shortest window: the one that paces requests (an hour's
/// or a day's quota is a budget, met through `remaining` and `reset`). An
/// item without a window counts only when no item has one.
fn tightest_policy(list: &str) -> Option<(u64, Option<Duration>)> {
    let mut best: Option<(u64, Option<Duration>)> = None;
    for item in list.split(',') {
        let mut q = count(item.split(';').next().unwrap_or("").trim());
        let mut w = None;
        for (key, value) in params(item) {
            match key {
                "q" | "limit" => q = count(value),
                "w" | "window" => w = seconds(value),
                _ => {}
            }
        }
        let Some(q) = q else { continue };
        best = match best {
            None => Some((q, w)),
            Some((bq, bw)) => match (w, bw) {
                (Some(new), Some(old)) if (new, q) < (old, bq) => Some((q, w)),
                (Some(_), None) => Some((q, w)),
                _ => Some((bq, bw)),
            },
        };
    }
    best
}

/// `key=value` parameters of one list item, keys lowercased by the caller's
/// header names being case-insensitive and the drafts' keys lowercase.
fn params(item: &str) -> impl Iterator<Item = (&str, &str)> {
    item.split(';').filter_map(|p| {
        let (k, v) = p.split_once('=')?;
        Some((k.trim(), v.trim().trim_matches('"')))
    })
}

fn first(list: &str) -> &str {
    list.split([',', ';']).next().unwrap_or("").trim()
}

fn first_count(list: &str) -> Option<u64> {
    count(first(list))
}

/// A finite, non-negative number.
fn number(s: &str) -> Option<f64> {
    let n: f64 = s.trim().parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// A whole count of requests, of a believable size.
fn count(s: &str) -> Option<u64> {
    let n = number(s)?;
    (n <= 1.0e9 && n.fract() == 0.0).then_some(n as u64)
}

fn seconds(s: &str) -> Option<Duration> {
    seconds_f(number(s)?)
}

fn seconds_f(secs: f64) -> Option<Duration> {
    (secs <= LONGEST).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(headers: &[(&str, &str)]) -> RateLimits {
        let get = |name: &str| {
            headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
                .collect::<Vec<_>>()
                .join(",")
        };
        RateLimits::read(&get, 1_700_000_000)
    }

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn the_ietf_structured_fields_give_the_policy_and_the_state() {
        let l = read(&[
            (
                "RateLimit-Policy",
                "\"burst\";q=100;w=60, \"day\";q=1000;w=86400",
            ),
            ("RateLimit", "\"day\";r=900;t=3000, \"burst\";r=50;t=30"),
        ]);
        // The minute's policy paces; the day's is a budget.
        assert_eq!((l.limit, l.window), (Some(100), secs(60)));
        assert_eq!((l.remaining, l.reset), (Some(50), secs(30)));
        let l = read(&[("RateLimit-Policy", "\"fake\";q=8;w=1")]);
        assert_eq!(l.stated_rate(), Some(8.0));
    }

    #[test]
    fn the_older_drafts_separate_fields_and_their_combined_form() {
        let l = read(&[
            ("RateLimit-Limit", "10, 10;w=1, 50;w=60"),
            ("RateLimit-Remaining", "3"),
            ("RateLimit-Reset", "2"),
        ]);
        assert_eq!((l.limit, l.window), (Some(10), secs(1)));
        assert_eq!((l.remaining, l.reset), (Some(3), secs(2)));
        let l = read(&[
            ("RateLimit", "\"p\";r=0;t=1"),
            ("RateLimit-Policy", "\"p\";q=8;w=1"),
        ]);
        assert_eq!(l.exhausted_for(), None, "paced within its window");
        let l = read(&[("RateLimit", "limit=100, remaining=0, reset=7")]);
        assert_eq!(
            (l.limit, l.remaining, l.reset),
            (Some(100), Some(0), secs(7))
        );
        assert_eq!(l.exhausted_for(), secs(7));
        let l = read(&[("RateLimit-Policy", "100;w=10")]);
        assert_eq!(l.stated_rate(), Some(10.0));
    }

    #[test]
    fn x_ratelimit_reset_is_seconds_or_a_unix_time() {
        let l = read(&[
            ("X-RateLimit-Limit", "60"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "1700000042"),
        ]);
        assert_eq!(
            (l.limit, l.remaining, l.reset),
            (Some(60), Some(0), secs(42))
        );
        assert_eq!(l.stated_rate(), None, "no window named");
        let l = read(&[("x-ratelimit-reset", "1.5")]);
        assert_eq!(l.reset, Some(Duration::from_millis(1500)));
        // A reset already past is "now".
        let l = read(&[("X-RateLimit-Reset", "1600000000")]);
        assert_eq!(l.reset, Some(Duration::ZERO));
        assert_eq!(l.exhausted_for(), None);
    }

    #[test]
    fn the_ietf_fields_win_over_the_de_facto_ones() {
        let l = read(&[
            ("X-RateLimit-Limit", "5000"),
            ("RateLimit-Policy", "\"p\";q=8;w=1"),
            ("RateLimit", "\"p\";r=4;t=1"),
            ("X-RateLimit-Remaining", "4999"),
        ]);
        assert_eq!((l.limit, l.remaining), (Some(8), Some(4)));
    }

    #[test]
    fn garbage_huge_and_negative_values_are_ignored() {
        for bad in [
            "soon",
            "-1",
            "1e400",
            "NaN",
            "inf",
            "99999999999999999999999",
            "",
            ";;;==,,",
            "\"unterminated",
            "1.5e12",
        ] {
            let l = read(&[
                ("RateLimit-Policy", bad),
                ("RateLimit", bad),
                ("RateLimit-Limit", bad),
                ("RateLimit-Remaining", bad),
                ("RateLimit-Reset", bad),
                ("X-RateLimit-Limit", bad),
                ("X-RateLimit-Remaining", bad),
            ]);
            assert!(l.limit.is_none() && l.remaining.is_none(), "{bad}: {l:?}");
            assert!(l.reset.is_none(), "{bad}: {l:?}");
        }
        // A reset of years, or a fractional count, is not believed.
        let l = read(&[
            ("RateLimit", "\"p\";r=2.5;t=99999999"),
            ("RateLimit-Policy", "\"p\";q=0;w=0"),
        ]);
        assert_eq!((l.remaining, l.reset), (None, None));
        assert_eq!(l.stated_rate(), None, "a zero policy states no rate");
        assert!(read(&[]).is_empty());
    }

    #[test]
    fn real_header_maps_are_read_case_insensitively_with_repeats() {
        let mut h = HeaderMap::new();
        h.append("ratelimit-policy", "\"a\";q=100;w=60".parse().unwrap());
        h.append("ratelimit-policy", "\"b\";q=5;w=1".parse().unwrap());
        h.insert("X-RateLimit-Remaining", "7".parse().unwrap());
        let l = RateLimits::from_headers(&h, 0);
        assert_eq!(
            (l.limit, l.window, l.remaining),
            (Some(5), secs(1), Some(7))
        );
    }
}
