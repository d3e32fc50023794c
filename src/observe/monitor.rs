//! What a running crawl is doing, for eyes other than the log's: the live
//! status page, `/status.json`, `/metrics` ([`crate::observe::status`]) and the
//! terminal progress display ([`crate::observe::progress`]) all read one [`Monitor`].
//!
//! It is fed by the events the crawler already has (a pass planned, each
//! page's outcome, the supervisor's counters, the store's totals at a
//! status line), never by a reader: serving the page or a scrape only
//! copies what is here, so watching costs the crawl nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::watch;

use crate::engine::supervisor::{PageOutcome, SupervisorStats};
use crate::lane::budget::Budget;
use crate::lane::stall::Stall;
use crate::store::StoreStats;

/// Pages listed under "last pages completed".
const RECENT_PAGES: usize = 20;
/// The request-rate chart covers this long, in buckets of `RATE_BUCKET`.
const RATE_WINDOW: Duration = Duration::from_secs(10 * 60);
const RATE_BUCKET: Duration = Duration::from_secs(10);

/// Everything the status page shows, as `/status.json` serves it. Holds
/// no secret: the API key never reaches the monitor.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `crawl` or `run`.
    pub mode: String,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The tag set whose pass is running, if one is.
    pub current_pass: Option<String>,
    /// The latest pass of each tag set, by name.
    pub passes: BTreeMap<String, PassStatus>,
    pub requests: RequestStatus,
    pub budget: BudgetStatus,
    /// Present once the process has spent any of a source that keeps a
    /// quota of its own (the Stack Exchange API); `api` in `/status.json`.
    #[serde(rename = "api")]
    pub quota: Option<QuotaStatus>,
    /// The store's totals; absent without a store.
    pub store: Option<StoreTotals>,
    /// Most recent first.
    pub recent_pages: VecDeque<RecentPage>,
    pub next_pass: Option<NextPass>,
    /// What the crawl waits on that has not answered (the store, the
    /// budget), as of the last status line: empty when nothing stalls.
    pub waiting: Vec<Waiting>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    /// `store` or `budget`.
    pub on: &'static str,
    pub secs: u64,
    /// What waits, in words.
    pub doing: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PassStatus {
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_secs: Option<f64>,
    pub pages_planned: u64,
    pub pages_done: u64,
    /// Of `pages_done`, those a resumed pass had done before this process
    /// started: none of this process's requests went to them, so they are
    /// shown apart from the requests sent.
    pub pages_done_before: u64,
    pub pages_failed: u64,
    pub pages_skipped: u64,
    pub questions: u64,
    /// By crawl tag.
    pub tags: BTreeMap<String, TagStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TagStatus {
    pub pages_planned: u64,
    /// Includes the pages a resumed pass had already done.
    pub pages_done: u64,
    pub pages_failed: u64,
    /// Not fetched: past the tag's last page, or the crawl stopped.
    pub pages_skipped: u64,
    pub questions: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestStatus {
    /// Every request sent since the process started (robots.txt, retries).
    pub total: u64,
    pub retries: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// Pages lost after their retries.
    pub pages_failed: u64,
    /// Pages waiting out a retry's wait (a backoff, a Retry-After): neither
    /// queued nor being fetched.
    pub pages_retrying: u64,
    /// The configured quota, and the rate the adaptive throttle allows now.
    pub quota_per_second: f64,
    pub effective_rate: f64,
    pub last_minute: u64,
    /// Requests per second over the last minutes, oldest first.
    pub rate_history: Vec<RateSample>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateSample {
    pub at: DateTime<Utc>,
    pub per_second: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BudgetStatus {
    /// Requests left today in the budget that will stop the crawl first;
    /// unknown (`null`) until the crawl has opened its budget and reported.
    pub remaining: Option<u64>,
    pub resets_at: Option<DateTime<Utc>>,
    /// The crawl stopped because it ran out.
    pub exhausted: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct QuotaStatus {
    pub requests: u64,
    pub quota_remaining: Option<u64>,
    pub quota_max: Option<u64>,
    pub resets_at: Option<DateTime<Utc>>,
    pub backoffs: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StoreTotals {
    pub questions: u64,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecentPage {
    pub tag: String,
    pub page: u32,
    /// `done`, `failed` or `skipped`.
    pub outcome: &'static str,
    pub questions: u64,
    pub new: u64,
    pub updated: u64,
    pub attempts: u32,
    pub completed_at: DateTime<Utc>,
    /// Why a page failed or was skipped.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NextPass {
    pub tag_set: String,
    pub at: DateTime<Utc>,
}

/// A handle on the shared status; cheap to clone, safe to share between
/// the crawl, the status server and the progress display.
#[derive(Clone)]
pub struct Monitor {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Bumped on every change: the progress display and tests wait on it.
    changed: watch::Sender<u64>,
    metrics: Metrics,
}

struct State {
    status: Status,
    /// Counters of crawlers already retired (a `run` rebuilds its crawler
    /// on reload and after a spent budget), added to the live one's.
    retired: Counts,
    live: Counts,
    /// (time, requests so far), one per supervisor report, for the chart.
    samples: VecDeque<(DateTime<Utc>, u64)>,
    /// The pass running now, by tag set name.
    current: Option<String>,
    /// Pages that ended but are not shown yet: a page is shown with the
    /// supervisor report that counted it, so that one refresh never shows
    /// more pages done than the requests it shows (the requests come only
    /// with a report).
    staged: VecDeque<Ended>,
    /// Pages of the live crawler shown so far.
    shown: u64,
}

/// A page's outcome as the monitor shows it, with the pass it ended in.
struct Ended {
    pass: String,
    recent: RecentPage,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    requests: u64,
    retries: u64,
    rate_limited: u64,
    quota_requests: u64,
}

impl Counts {
    fn plus(self, o: Counts) -> Counts {
        Counts {
            requests: self.requests + o.requests,
            retries: self.retries + o.retries,
            rate_limited: self.rate_limited + o.rate_limited,
            quota_requests: self.quota_requests + o.quota_requests,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// The Prometheus view, named after Prometheus conventions (`_total` for
/// counters, base units in the name).
struct Metrics {
    registry: Registry,
    requests: Counter,
    retries: Counter,
    rate_limited: Counter,
    pages: Family<OutcomeLabel, Counter>,
    pages_retrying: Gauge,
    questions: Counter,
    quota_per_second: Gauge<f64, AtomicU64>,
    /// A family for the same reason as `quota_remaining`: before the
    /// crawl has read its budget, a 0 would read as "budget spent".
    budget_remaining: Family<Vec<(String, String)>, Gauge>,
    /// No label; a family so that no sample is exported before the API
    /// has reported a quota (a 0 would read as "quota spent").
    quota_remaining: Family<Vec<(String, String)>, Gauge>,
    store_questions: Gauge,
    pass_duration: Histogram,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("stackcrawl");
        let m = Metrics {
            requests: Counter::default(),
            retries: Counter::default(),
            rate_limited: Counter::default(),
            pages: Family::default(),
            pages_retrying: Gauge::default(),
            questions: Counter::default(),
            quota_per_second: Gauge::default(),
            budget_remaining: Family::default(),
            quota_remaining: Family::default(),
            store_questions: Gauge::default(),
            // 1 s to about 9 h.
            pass_duration: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "HTTP requests sent (pages, retries, robots.txt, API calls)",
            m.requests.clone(),
        );
        registry.register("retries", "Page retries scheduled", m.retries.clone());
        registry.register(
            "rate_limited",
            "Responses with status 429 Too Many Requests",
            m.rate_limited.clone(),
        );
        registry.register(
            "pages",
            "Pages by outcome: done, failed (after retries) or skipped",
            m.pages.clone(),
        );
        registry.register(
            "pages_retrying",
            "Pages waiting out a retry's wait (a backoff, a Retry-After)",
            m.pages_retrying.clone(),
        );
        registry.register(
            "questions",
            "Questions recorded (after de-duplication)",
            m.questions.clone(),
        );
        registry.register(
            "quota_per_second",
            "Configured request quota in requests per second",
            m.quota_per_second.clone(),
        );
        registry.register(
            "budget_remaining",
            "Requests left in today's budget",
            m.budget_remaining.clone(),
        );
        registry.register(
            "api_quota_remaining",
            "Stack Exchange API quota left, as the API last reported it",
            m.quota_remaining.clone(),
        );
        registry.register(
            "store_questions",
            "Questions in the store",
            m.store_questions.clone(),
        );
        registry.register(
            "pass_duration_seconds",
            "Duration of finished passes",
            m.pass_duration.clone(),
        );
        // Every outcome is exported from the start, as 0, so a rate()
        // over it has a first sample.
        for outcome in ["done", "failed", "skipped"] {
            let _ = m.pages.get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            });
        }
        Metrics { registry, ..m }
    }

    fn page(&self, outcome: &str) {
        self.pages
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }
}

/// Raises a counter to `total` (counters only go up; a lower total, from a
/// crawler just replaced, is caught up by the retired counts instead).
fn raise_to(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

impl Monitor {
    /// `mode` is the command: `crawl` or `run`.
    pub fn new(mode: &str, quota_per_second: f64) -> Monitor {
        let now = Utc::now();
        let metrics = Metrics::new();
        metrics.quota_per_second.set(quota_per_second);
        let status = Status {
            mode: mode.to_string(),
            started_at: now,
            updated_at: now,
            current_pass: None,
            passes: BTreeMap::new(),
            requests: RequestStatus {
                quota_per_second,
                effective_rate: quota_per_second,
                ..RequestStatus::default()
            },
            budget: BudgetStatus::default(),
            quota: None,
            store: None,
            recent_pages: VecDeque::new(),
            next_pass: None,
            waiting: Vec::new(),
        };
        Monitor {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    status,
                    retired: Counts::default(),
                    live: Counts::default(),
                    samples: VecDeque::new(),
                    current: None,
                    staged: VecDeque::new(),
                    shown: 0,
                }),
                changed: watch::channel(0).0,
                metrics,
            }),
        }
    }

    /// A copy of the status as it is now.
    pub fn status(&self) -> Status {
        let state = self.lock();
        let mut status = state.status.clone();
        status.requests.rate_history = rate_history(&state.samples);
        status
    }

    /// The metrics in Prometheus' text format.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.shared.metrics.registry);
        out
    }

    /// Resolves once `ready` holds for the status (checked now and after
    /// every change); the progress display and tests wait on this.
    pub async fn wait_for(&self, ready: impl Fn(&Status) -> bool) {
        let mut rx = self.shared.changed.subscribe();
        loop {
            if ready(&self.status()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// A receiver that sees every change (its value is a change counter).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves figures that are
        // still worth showing.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State, &Metrics)) {
        {
            let mut state = self.lock();
            f(&mut state, &self.shared.metrics);
            state.status.updated_at = Utc::now();
        }
        self.shared.changed.send_modify(|n| *n += 1);
    }

    /// A new crawler starts: the last one's counters are kept.
    pub fn crawler_started(&self, quota_per_second: f64) {
        self.update(|s, m| {
            // The last crawler's final report was its last word: whatever
            // it did not count (futures it dropped) is shown now.
            while let Some(ended) = s.staged.pop_front() {
                show_page(s, m, ended);
            }
            s.shown = 0;
            s.retired = s.retired.plus(s.live);
            s.live = Counts::default();
            s.status.requests.quota_per_second = quota_per_second;
            m.quota_per_second.set(quota_per_second);
        });
    }

    /// A pass of `tag_set` starts: `full` is every page it covers,
    /// `remaining` what is left to fetch (a resumed pass did the rest).
    pub fn pass_started(
        &self,
        tag_set: &str,
        planned: &BTreeMap<String, u64>,
        remaining: &BTreeMap<String, u64>,
    ) {
        let tags: BTreeMap<String, TagStatus> = planned
            .iter()
            .map(|(tag, &n)| {
                let left = remaining.get(tag).copied().unwrap_or(0);
                let t = TagStatus {
                    pages_planned: n,
                    pages_done: n.saturating_sub(left),
                    ..TagStatus::default()
                };
                (tag.clone(), t)
            })
            .collect();
        let before = tags.values().map(|t| t.pages_done).sum();
        let pass = PassStatus {
            started_at: Some(Utc::now()),
            pages_planned: planned.values().sum(),
            pages_done: before,
            pages_done_before: before,
            tags,
            ..PassStatus::default()
        };
        self.update(|s, _| {
            s.status.passes.insert(tag_set.to_string(), pass);
            s.status.current_pass = Some(tag_set.to_string());
            s.current = Some(tag_set.to_string());
            s.status.next_pass = None;
        });
    }

    /// The running pass ended; `finished` when it reached every page.
    pub fn pass_ended(&self, finished: bool) {
        self.update(|s, m| {
            let Some(name) = s.current.take() else {
                return;
            };
            s.status.current_pass = None;
            if let Some(p) = s.status.passes.get_mut(&name) {
                let now = Utc::now();
                if finished {
                    p.finished_at = Some(now);
                }
                let secs = p
                    .started_at
                    .and_then(|at| (now - at).to_std().ok())
                    .map(|d| d.as_secs_f64());
                if let (true, Some(secs)) = (finished, secs) {
                    p.duration_secs = Some(secs);
                    m.pass_duration.observe(secs);
                }
            }
        });
    }

    /// A page's outcome, as the crawler's futures deliver it; shown with
    /// the supervisor's report that counts it ([`Monitor::supervisor_stats`]).
    pub fn page_ended(&self, outcome: &PageOutcome) {
        let now = Utc::now();
        let recent = match outcome {
            PageOutcome::Done(r) => RecentPage {
                tag: r.ctx.tag.clone(),
                page: r.ctx.page,
                outcome: "done",
                questions: r.questions as u64,
                new: r.new as u64,
                updated: r.updated as u64,
                attempts: r.attempts,
                completed_at: now,
                detail: None,
            },
            PageOutcome::Failed(f) => RecentPage {
                tag: f.ctx.tag.clone(),
                page: f.ctx.page,
                outcome: "failed",
                questions: 0,
                new: 0,
                updated: 0,
                attempts: f.attempts,
                completed_at: now,
                detail: Some(f.to_string()),
            },
            PageOutcome::Skipped {
                ctx, why, attempts, ..
            } => RecentPage {
                tag: ctx.tag.clone(),
                page: ctx.page,
                outcome: "skipped",
                questions: 0,
                new: 0,
                updated: 0,
                attempts: *attempts,
                completed_at: now,
                detail: Some(why.to_string()),
            },
        };
        // Nothing shown changes until the supervisor's next report.
        let mut s = self.lock();
        let pass = s.current.clone().unwrap_or_default();
        s.staged.push_back(Ended { pass, recent });
    }

    /// The supervisor's counters, as its status report gives them.
    pub fn supervisor_stats(&self, st: &SupervisorStats) {
        let now = Utc::now();
        self.update(|s, m| {
            s.live = Counts {
                requests: st.requests,
                retries: st.retries,
                rate_limited: st.rate_limited,
                quota_requests: st.quota.requests,
            };
            let total = s.retired.plus(s.live);
            let r = &mut s.status.requests;
            r.total = total.requests;
            r.retries = total.retries;
            r.rate_limited = total.rate_limited;
            r.effective_rate = st.effective_rate;
            r.last_minute = st.requests_last_minute as u64;
            r.pages_retrying = st.retrying as u64;
            m.pages_retrying.set(st.retrying as i64);
            raise_to(&m.requests, total.requests);
            raise_to(&m.retries, total.retries);
            raise_to(&m.rate_limited, total.rate_limited);
            s.status.budget = BudgetStatus {
                remaining: Some(st.budget_left),
                resets_at: Some(
                    st.budget_resets_at
                        .unwrap_or_else(|| Budget::resets_at(now)),
                ),
                exhausted: st.budget_resets_at.is_some(),
            };
            m.budget_remaining
                .get_or_create(&Vec::new())
                .set(st.budget_left as i64);
            if total.quota_requests > 0 {
                let q = s.status.quota.get_or_insert_with(QuotaStatus::default);
                q.requests = total.quota_requests;
                q.backoffs = st.quota.backoffs;
                if st.quota.quota_remaining.is_some() {
                    q.quota_remaining = st.quota.quota_remaining;
                }
                if st.quota.quota_max.is_some() {
                    q.quota_max = st.quota.quota_max;
                }
                q.resets_at = Some(
                    st.quota
                        .quota_resets_at
                        .unwrap_or_else(|| Budget::resets_at(now)),
                );
                if let Some(left) = q.quota_remaining {
                    m.quota_remaining
                        .get_or_create(&Vec::new())
                        .set(left as i64);
                }
            }
            // The pages this report counted, and no others: the outcomes
            // that reached the monitor after the report was taken wait for
            // the next one.
            let ended = st.done + st.failed + st.skipped;
            while s.shown < ended {
                let Some(e) = s.staged.pop_front() else { break };
                show_page(s, m, e);
                s.shown += 1;
            }
            s.samples.push_back((now, total.requests));
            while s
                .samples
                .front()
                .is_some_and(|(at, _)| now - *at > chrono_span(RATE_WINDOW + RATE_BUCKET))
            {
                s.samples.pop_front();
            }
        });
    }

    /// What the crawl waits on, as the status line reports it.
    pub fn stalls(&self, stalls: &[Stall]) {
        let waiting = stalls
            .iter()
            .map(|s| Waiting {
                on: s.what.name(),
                secs: s.waited.as_secs(),
                doing: s.why.clone(),
            })
            .collect();
        self.update(|s, _| s.status.waiting = waiting);
    }

    /// The store's totals, as a status line or a pass's end reads them.
    pub fn store_stats(&self, st: &StoreStats) {
        self.update(|s, m| {
            s.status.store = Some(StoreTotals {
                questions: st.questions,
                size_bytes: st.size_bytes,
            });
            m.store_questions.set(st.questions as i64);
        });
    }

    /// Between passes of `run`: which tag set is due next, and when.
    pub fn next_pass(&self, tag_set: &str, in_: Duration) {
        let at = Utc::now() + chrono_span(in_);
        self.update(|s, _| {
            s.status.next_pass = Some(NextPass {
                tag_set: tag_set.to_string(),
                at,
            })
        });
    }
}

/// A page's outcome into the figures shown: its tag and pass, the page
/// counters, the store's questions, the last pages completed.
fn show_page(s: &mut State, m: &Metrics, ended: Ended) {
    let Ended { pass, recent } = ended;
    m.page(recent.outcome);
    m.questions.inc_by(recent.questions);
    if let Some(store) = &mut s.status.store {
        store.questions += recent.new;
        m.store_questions.set(store.questions as i64);
    }
    if recent.outcome == "failed" {
        s.status.requests.pages_failed += 1;
    }
    let pass = s.status.passes.entry(pass).or_default();
    let tag = pass.tags.entry(recent.tag.clone()).or_default();
    match recent.outcome {
        "done" => {
            tag.pages_done += 1;
            tag.questions += recent.questions;
            pass.pages_done += 1;
            pass.questions += recent.questions;
        }
        "failed" => {
            tag.pages_failed += 1;
            pass.pages_failed += 1;
        }
        _ => {
            tag.pages_skipped += 1;
            pass.pages_skipped += 1;
        }
    }
    s.status.recent_pages.push_front(recent);
    s.status.recent_pages.truncate(RECENT_PAGES);
}

fn chrono_span(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

/// Requests per second in each `RATE_BUCKET` of the window, from the
/// samples' running totals: the difference across a bucket over its
/// length. The oldest bucket starts at the first sample, so a crawl of a
/// few seconds has a point too.
fn rate_history(samples: &VecDeque<(DateTime<Utc>, u64)>) -> Vec<RateSample> {
    let (Some(&(first_at, _)), Some(&(last_at, _))) = (samples.front(), samples.back()) else {
        return Vec::new();
    };
    let bucket = chrono_span(RATE_BUCKET);
    let buckets = (RATE_WINDOW.as_secs() / RATE_BUCKET.as_secs()) as i32;
    let total_at = |t: DateTime<Utc>| {
        samples
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map(|&(_, n)| n)
    };
    let mut out = Vec::new();
    for i in (0..buckets).rev() {
        let end = last_at - bucket * i;
        let start = (end - bucket).max(first_at);
        let secs = (end - start).num_milliseconds() as f64 / 1000.0;
        let (Some(a), Some(b)) = (total_at(start), total_at(end)) else {
            continue;
        };
        if secs <= 0.0 {
            continue;
        }
        out.push(RateSample {
            at: end,
            per_second: b.saturating_sub(a) as f64 / secs,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_difference_of_running_totals_over_each_bucket() {
        let t0 = Utc::now();
        let samples: VecDeque<_> = (0..=30)
            .map(|s| (t0 + chrono::TimeDelta::seconds(s), 2 * s as u64))
            .collect();
        let h = rate_history(&samples);
        // 30 s of samples fill three 10 s buckets; older ones are empty.
        assert_eq!(h.len(), 3);
        assert!(h.iter().all(|r| (r.per_second - 2.0).abs() < 1e-9), "{h:?}");
        assert!(rate_history(&VecDeque::new()).is_empty());
        // A crawl shorter than a bucket still has its rate.
        let short: VecDeque<_> = [(t0, 0), (t0 + chrono::TimeDelta::milliseconds(500), 5)].into();
        let h = rate_history(&short);
        assert_eq!(h.len(), 1);
        assert!((h[0].per_second - 10.0).abs() < 1e-9, "{h:?}");
    }

    #[test]
    fn counters_survive_a_crawler_replaced_on_reload() {
        let m = Monitor::new("run", 1.0);
        let stats = |requests| SupervisorStats {
            requests,
            retries: 1,
            ..SupervisorStats::default()
        };
        m.supervisor_stats(&stats(5));
        m.crawler_started(2.0);
        m.supervisor_stats(&stats(3));
        let s = m.status();
        assert_eq!((s.requests.total, s.requests.retries), (8, 2));
        assert_eq!(s.requests.quota_per_second, 2.0);
        let text = m.metrics_text();
        assert!(text.contains("stackcrawl_requests_total 8"), "{text}");
        assert!(text.contains("stackcrawl_quota_per_second 2.0"), "{text}");
        assert!(
            text.contains("stackcrawl_pages_total{outcome=\"failed\"} 0"),
            "{text}"
        );
        assert!(!text.contains("stackcrawl_api_quota_remaining "), "{text}");
        m.supervisor_stats(&SupervisorStats {
            requests: 4,
            quota: crate::model::QuotaUsage {
                requests: 1,
                quota_remaining: Some(299),
                ..Default::default()
            },
            ..SupervisorStats::default()
        });
        let text = m.metrics_text();
        assert!(
            text.contains("stackcrawl_api_quota_remaining 299"),
            "{text}"
        );
        assert_eq!(m.status().quota.unwrap().quota_remaining, Some(299));
    }

    fn done(tag: &str, page: u32) -> PageOutcome {
        PageOutcome::Done(crate::model::PageReport {
            ctx: crate::model::PageContext {
                site: "127.0.0.1".into(),
                base_url: "http://127.0.0.1".into(),
                tag: tag.into(),
                tab: "Newest".into(),
                page,
            },
            url: String::new(),
            questions: 50,
            duplicates: 0,
            rejected: 0,
            attempts: 1,
            tag_views_total: 0,
            elapsed: Duration::ZERO,
            layout: "",
            ends_tag: false,
            new: 50,
            updated: 0,
        })
    }

    fn pages_done(s: &Status) -> u64 {
        s.passes.values().map(|p| p.pages_done).sum()
    }

    #[test]
    fn a_refresh_shows_the_pages_its_request_count_covers_and_no_more() {
        let m = Monitor::new("crawl", 5.0);
        let stats = |requests, done| SupervisorStats {
            requests,
            done,
            ..SupervisorStats::default()
        };
        let mut planned = BTreeMap::new();
        planned.insert("a".to_string(), 8);
        m.pass_started("s", &planned, &planned);
        // 8 outcomes reach the monitor, then a report the supervisor took
        // when it had counted 4 of them, and 5 requests.
        for page in 1..=8 {
            m.page_ended(&done("a", page));
        }
        m.supervisor_stats(&stats(5, 4));
        let s = m.status();
        assert_eq!((s.requests.total, pages_done(&s)), (5, 4));
        assert_eq!(s.passes["s"].tags["a"].pages_done, 4);
        assert_eq!(s.recent_pages.len(), 4);
        let text = m.metrics_text();
        assert!(text.contains("stackcrawl_requests_total 5"), "{text}");
        assert!(
            text.contains("stackcrawl_pages_total{outcome=\"done\"} 4"),
            "{text}"
        );
        assert!(text.contains("stackcrawl_questions_total 200"), "{text}");
        m.supervisor_stats(&stats(9, 8));
        let s = m.status();
        assert_eq!((s.requests.total, pages_done(&s)), (9, 8));
        assert_eq!(s.passes["s"].questions, 400);
        // A crawler replaced keeps its pages: outcomes it never reported
        // are shown when the next one starts, in the pass they ended in.
        m.pass_ended(true);
        m.page_ended(&done("a", 9));
        m.crawler_started(5.0);
        assert_eq!(pages_done(&m.status()), 9);
    }

    #[test]
    fn the_budget_is_absent_until_the_crawl_has_read_it_never_zero() {
        let m = Monitor::new("run", 5.0);
        let sample = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("stackcrawl_budget_remaining"))
                .map(str::to_owned)
        };
        assert_eq!(sample(&m.metrics_text()), None);
        assert_eq!(m.status().budget.remaining, None);
        let json = serde_json::to_value(m.status()).unwrap();
        assert!(json["budget"]["remaining"].is_null(), "{json}");
        m.supervisor_stats(&SupervisorStats {
            budget_left: 9_995,
            ..SupervisorStats::default()
        });
        assert_eq!(
            sample(&m.metrics_text()).as_deref(),
            Some("stackcrawl_budget_remaining 9995")
        );
        assert_eq!(m.status().budget.remaining, Some(9_995));
    }

    #[test]
    fn a_resumed_pass_names_the_pages_done_before_this_process_started() {
        let m = Monitor::new("run", 5.0);
        let planned = BTreeMap::from([("a".to_string(), 8)]);
        let remaining = BTreeMap::from([("a".to_string(), 5)]);
        m.pass_started("s", &planned, &remaining);
        for page in 4..=5 {
            m.page_ended(&done("a", page));
        }
        m.supervisor_stats(&SupervisorStats {
            requests: 3,
            done: 2,
            ..SupervisorStats::default()
        });
        let s = m.status();
        assert_eq!(
            (s.passes["s"].pages_done, s.passes["s"].pages_done_before),
            (5, 3)
        );
        let page = crate::observe::status::render_page(&s);
        assert!(
            page.contains("5 <span class=\"before\">(3 before this start)</span>"),
            "{page}"
        );
    }
}
