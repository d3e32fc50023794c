//! The fake Stack Exchange API's response bodies: a `/2.3/questions` wrapper
//! built from [`FakeQuestion`]s and the API's error body. Field names and
//! nesting follow the real sample
//! `tests/fixtures/se-api/questions-search-php-2017.json` (default filter, no
//! `body`), and titles and display names are HTML-entity-encoded as the real
//! API's safe filters send them, so the crawler's decoding is exercised.
//!
//! What a crawled record gets from these bodies that `FakeQuestion` does not
//! hold: `url` is [`api_link`], `modified_at` is [`last_activity`], and the
//! excerpt is empty (the default filter sends no body).
//!
//! The route: `/2.3/questions?tagged=T&site=S&sort=..&page=N&pagesize=N[&key=K]`
//! pages through the same `FakeQuestion` lists the HTML listing serves, with
//! `has_more` true while questions remain after the page and
//! `quota_remaining` falling by one per request from a configurable
//! `quota_max`. Once the quota is spent every request gets the real API's
//! `throttle_violation`. Scripted [`ApiFault`]s add a `backoff` or answer
//! with an error body. Hits are logged like listing hits, with the tag
//! decoded, `page` set and `tab` holding the sort.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{decode, FakeQuestion, FakeSite, Hit, Request, SiteBuilder, State};

/// The one API method the fake serves.
pub const QUESTIONS_PATH: &str = "/2.3/questions";

/// The API's default page size, when a request names none.
const DEFAULT_PAGESIZE: usize = 30;

/// The real API links to the site, not to itself.
pub const API_SITE_URL: &str = "https://stackoverflow.com";

/// The `link` the fake API gives a question.
pub fn api_link(q: &FakeQuestion) -> String {
    format!("{API_SITE_URL}{}", q.url_path())
}

/// The `last_activity_date` the fake API gives a question: a minute after it
/// was asked per answer, so it never precedes `creation_date`.
pub fn last_activity(q: &FakeQuestion) -> DateTime<Utc> {
    q.asked + Duration::minutes(q.answers as i64)
}

/// A `/2.3/questions` response body holding `questions`, in order.
pub fn render_api_page(
    questions: &[FakeQuestion],
    has_more: bool,
    quota_remaining: u64,
    quota_max: u64,
    backoff: Option<u64>,
) -> String {
    let items: Vec<Value> = questions.iter().map(render_item).collect();
    let mut wrapper = json!({
        "items": items,
        "has_more": has_more,
        "quota_max": quota_max,
        "quota_remaining": quota_remaining,
    });
    // The API sends `backoff` only when it wants one.
    if let Some(secs) = backoff {
        wrapper["backoff"] = json!(secs);
    }
    wrapper.to_string()
}

/// The body of an API error, which the real API sends with HTTP 400.
pub fn render_api_error(error_id: u16, error_name: &str, error_message: &str) -> String {
    json!({
        "error_id": error_id,
        "error_message": error_message,
        "error_name": error_name,
    })
    .to_string()
}

fn render_item(q: &FakeQuestion) -> Value {
    let user_id = user_id(&q.author);
    let mut item = json!({
        "tags": q.tags,
        "owner": {
            "account_id": user_id + 7_000_000,
            "reputation": q.reputation,
            "user_id": user_id,
            "user_type": "registered",
            "profile_image": format!(
                "https://www.gravatar.com/avatar/{:016x}{:016x}?s=256&d=identicon&r=PG",
                user_id,
                q.id
            ),
            "display_name": encode_entities(&q.author),
            "link": format!("{API_SITE_URL}/users/{user_id}/{}", slug(&q.author)),
        },
        "is_answered": q.accepted || q.answers > 0,
        "view_count": q.views,
        "answer_count": q.answers,
        "score": q.votes,
        "last_activity_date": last_activity(q).timestamp(),
        "creation_date": q.asked.timestamp(),
        "question_id": q.id,
        "link": api_link(q),
        "title": encode_entities(&q.title),
    });
    // Present only when an answer was accepted, as in the real responses.
    if q.accepted {
        item["accepted_answer_id"] = json!(q.id + 1);
    }
    item
}

/// A stable user id per display name (FNV-1a), so one author keeps one id
/// across questions.
fn user_id(name: &str) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    1 + hash % 30_000_000
}

/// The real API's (safe filter) encoding of strings.
fn encode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The URL slug of a user's name, as in `/users/397494/leroy-miller`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Something the fake API does instead of serving a page normally.
#[derive(Debug, Clone)]
pub enum ApiFault {
    /// The page as usual, with `backoff: N` in the wrapper.
    Backoff(u64),
    /// An error body (`render_api_error`) with this HTTP status; the real
    /// API sends 400 for every error, whatever its `error_id`.
    Error {
        status: u16,
        error_id: u16,
        error_name: &'static str,
        message: String,
    },
}

impl ApiFault {
    /// A `throttle_violation` naming when requests are available again.
    pub fn throttle_violation(available_in_secs: u64) -> ApiFault {
        ApiFault::Error {
            status: 400,
            error_id: 502,
            error_name: "throttle_violation",
            message: violation_message(available_in_secs),
        }
    }

    pub fn error(error_id: u16, error_name: &'static str, message: &str) -> ApiFault {
        ApiFault::Error {
            status: 400,
            error_id,
            error_name,
            message: message.to_string(),
        }
    }
}

/// The fake API's own state inside the site's.
#[derive(Debug)]
pub(super) struct ApiState {
    quota_max: u64,
    requests: u64,
    /// When set, any other key (or none) is refused as the real API does.
    valid_key: Option<String>,
    script: HashMap<(String, u32), VecDeque<ApiFault>>,
    /// The last `backoff` sent: from when the response went out, until when
    /// no request may arrive.
    /// With when the request that got it arrived.
    backoff: Option<(Instant, Instant, Instant)>,
    /// Requests that arrived inside a backoff window, answered as the real
    /// API does with a `throttle_violation`: when the backoff response went
    /// out, and when the request arrived.
    violations: Vec<(Instant, Instant)>,
}

impl Default for ApiState {
    fn default() -> Self {
        ApiState {
            quota_max: 10_000,
            requests: 0,
            valid_key: None,
            script: HashMap::new(),
            backoff: None,
            violations: Vec::new(),
        }
    }
}

impl SiteBuilder {
    /// The daily quota: `quota_remaining` starts one below it and the
    /// request after the last unit gets a `throttle_violation`.
    pub fn api_quota(mut self, quota_max: u64) -> Self {
        self.state.api.quota_max = quota_max;
        self
    }

    /// Only this app key is accepted; any other gets `400 bad_parameter`.
    pub fn api_key(mut self, key: &str) -> Self {
        self.state.api.valid_key = Some(key.to_string());
        self
    }

    /// The next API request for this page gets `fault` (faults queue up).
    pub fn api_fault(mut self, tag: &str, page: u32, fault: ApiFault) -> Self {
        self.state
            .api
            .script
            .entry((tag.to_string(), page))
            .or_default()
            .push_back(fault);
        self
    }
}

impl FakeSite {
    /// Requests that arrived while a `backoff` the API had sent was running.
    pub fn api_violations(&self) -> u64 {
        self.state.lock().unwrap().api.violations.len() as u64
    }

    /// Each violation: when the request that got the backoff it broke
    /// arrived, and when the violating request arrived.
    pub fn api_violation_times(&self) -> Vec<(Instant, Instant)> {
        self.state.lock().unwrap().api.violations.clone()
    }

    /// Scripts an API fault after the start, for tests that change the site
    /// as they go.
    pub fn push_api_fault(&self, tag: &str, page: u32, fault: ApiFault) {
        self.state
            .lock()
            .unwrap()
            .api
            .script
            .entry((tag.to_string(), page))
            .or_default()
            .push_back(fault);
    }

    /// The API requests only, in arrival order.
    pub fn api_hits(&self) -> Vec<Hit> {
        let mut hits: Vec<Hit> = self
            .hits()
            .into_iter()
            .filter(|h| h.raw_path.starts_with(QUESTIONS_PATH))
            .collect();
        hits.sort_by_key(|h| h.at);
        hits
    }
}

/// A query parameter of a logged request, decoded.
pub fn query_param(raw_path: &str, name: &str) -> Option<String> {
    let (_, query) = raw_path.split_once('?')?;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decode(v))
}

/// The real API's message for a `throttle_violation`.
fn violation_message(available_in_secs: u64) -> String {
    format!(
        "too many requests from this IP, more requests available in {available_in_secs} seconds"
    )
}

/// Seconds until the next UTC midnight, when the real API's quota resets.
fn secs_to_midnight(now: DateTime<Utc>) -> u64 {
    let tomorrow = now.date_naive().succ_opt().unwrap_or(now.date_naive());
    let midnight = tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    (midnight - now).num_seconds().max(1) as u64
}

/// Answers one `/2.3/questions` request. The response is decided under the
/// lock and written without it, like the listing route.
pub(super) async fn serve_api(
    mut sock: TcpStream,
    client: std::net::IpAddr,
    state: Arc<Mutex<State>>,
    req: Request,
    arrived: Instant,
) {
    let (status, body, latency) = {
        let mut st = state.lock().unwrap();
        let tag = req.tag.clone().unwrap_or_default();
        let page = req.page.unwrap_or(1).max(1);
        let size = req.pagesize.map_or(DEFAULT_PAGESIZE, |s| s as usize);
        let key = query_param(&req.raw_path, "key");
        let site = query_param(&req.raw_path, "site").unwrap_or_default();
        st.api.requests += 1;
        let used = st.api.requests;
        let quota_max = st.api.quota_max;
        let fault = st
            .api
            .script
            .get_mut(&(tag.clone(), page))
            .and_then(VecDeque::pop_front);
        let error = |id: u16, name: &str, message: &str| (400, render_api_error(id, name, message));
        let in_backoff = st
            .api
            .backoff
            .filter(|(_, from, until)| *from <= arrived && arrived < *until);
        if let Some((asked, _, _)) = in_backoff {
            st.api.violations.push((asked, arrived));
        }
        let in_backoff = in_backoff.is_some();
        let (status, body) = if in_backoff {
            let until = st.api.backoff.map_or(arrived, |(_, _, u)| u);
            let secs = until.saturating_duration_since(arrived).as_secs() + 1;
            error(502, "throttle_violation", &violation_message(secs))
        } else if used > quota_max {
            let secs = secs_to_midnight(Utc::now());
            error(502, "throttle_violation", &violation_message(secs))
        } else if st.api.valid_key.is_some() && key != st.api.valid_key {
            error(400, "bad_parameter", "key")
        } else if site.is_empty() {
            error(400, "bad_parameter", "site is required")
        } else if !(1..=100).contains(&size) {
            error(400, "bad_parameter", "pagesize")
        } else if let Some(ApiFault::Error {
            status,
            error_id,
            error_name,
            message,
        }) = &fault
        {
            (*status, render_api_error(*error_id, error_name, message))
        } else {
            let backoff = match fault {
                Some(ApiFault::Backoff(n)) => Some(n),
                _ => None,
            };
            if let Some(n) = backoff {
                // The window opens when the response leaves, after the
                // latency: a request on the wire before then cannot know.
                let sent = arrived + st.latency;
                st.api.backoff = Some((arrived, sent, sent + std::time::Duration::from_secs(n)));
            }
            let all = st.tags.get(&tag).map(Vec::as_slice).unwrap_or(&[]);
            let start = ((page - 1) as usize).saturating_mul(size).min(all.len());
            let end = (start + size).min(all.len());
            let body = render_api_page(
                &all[start..end],
                end < all.len(),
                quota_max - used,
                quota_max,
                backoff,
            );
            (200, body)
        };
        let version = st.versions.get(&tag).copied().unwrap_or(0);
        st.hits.push(Hit {
            at: arrived,
            raw_path: req.raw_path.clone(),
            tag: req.tag.clone(),
            page: Some(page),
            pagesize: req.pagesize,
            tab: query_param(&req.raw_path, "sort"),
            user_agent: req.user_agent.clone(),
            status,
            version,
            clean: status == 200,
            client,
        });
        (status, body, st.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let reason = if status == 200 { "OK" } else { "Bad Request" };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    let _ = sock.write_all(&out).await;
    let _ = sock.shutdown().await;
}
