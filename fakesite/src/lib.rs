//! FakeSite: a Stack Exchange site on 127.0.0.1 for stackcrawl's
//! integration tests, benchmarks and `examples/fake_site.rs`. It serves tag listings built from the real 2025 fixture
//! page (its head, sidebar and footer, with summaries in the same markup),
//! `robots.txt`, configurable latency and scripted or random faults, and it
//! logs every request with its arrival time so tests assert at the server.
//! It also answers as the Stack Exchange API 2.3 (`/2.3/questions`, see
//! [`api`]) over the same questions.
//!
//! Also here, shared by the tests and benches: [`config`] builds a config
//! for a site and runs a crawl with it, [`browser`] renders HTML in
//! headless Chromium, [`service`] runs the real binary and
//! reads its JSON log lines, and [`sim`] is the evolving-site simulation
//! (one process on SQLite, and [`sim::fleet`], a fleet on PostgreSQL). Whatever needs `env!("CARGO_BIN_EXE_stackcrawl")` takes the
//! path from its caller, since only stackcrawl's own targets have it.

pub mod api;
pub mod archive;
pub mod browser;
pub mod config;
pub mod limit;
pub mod lock;
pub mod pg;
pub mod proxy;
pub mod service;
pub mod sim;

pub use config::{budget_used, crawl_site, TestConfig};
pub use limit::{Limiter, Shape, Shift};

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The fixtures stay in stackcrawl's `tests/fixtures`, beside this crate.
pub const FIXTURE_2025: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/so-html/tagged-python-newest-2025.html"
);

/// One question as the fake site knows it: what a crawled record must equal.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeQuestion {
    pub id: u64,
    pub title: String,
    pub excerpt: String,
    pub votes: i64,
    pub answers: u64,
    pub accepted: bool,
    pub views: u64,
    pub tags: Vec<String>,
    pub author: String,
    pub reputation: u64,
    pub asked: DateTime<Utc>,
}

impl FakeQuestion {
    /// A varied, deterministic question: titles with entities, negative
    /// scores, views and reputations that the page abbreviates.
    pub fn generated(tag: &str, tag_no: u64, i: u64) -> FakeQuestion {
        let id = 70_000_000 + tag_no * 100_000 + (99_999 - i);
        let views = match i % 5 {
            0 => 7 + i,
            1 => 1_234 + i * 17,
            2 => 56_789 + i,
            3 => 2_293_587 + i,
            _ => 999,
        };
        FakeQuestion {
            id,
            title: format!("How do I use <{tag}> & \"quotes\" in case #{i}?"),
            excerpt: format!("I tried {tag} with x < y && y > z, question {i} ..."),
            votes: (i as i64 % 7) - 2,
            answers: i % 4,
            accepted: i % 4 == 1,
            views,
            tags: vec![tag.to_string(), format!("topic-{}", i % 3)],
            author: format!("User {i} O'Brien"),
            reputation: [1, 17, 1_977, 60_634][(i % 4) as usize],
            asked: Utc.with_ymd_and_hms(2025, 11, 17, 3, 46, 46).unwrap()
                - chrono::Duration::minutes(i as i64 * 7),
        }
    }

    pub fn url_path(&self) -> String {
        format!("/questions/{}/q-{}", self.id, self.id)
    }
}

/// Something the server does instead of serving a page normally.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Respond with this status, with an optional `Retry-After` value.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// Close the connection without a response.
    Drop,
    /// Send the headers with the full length but only part of the body.
    Truncate,
    /// Wait this long before answering normally.
    Stall(Duration),
    /// A valid 200 response whose body is this many bytes.
    Huge(usize),
    /// A 200 with a captcha page.
    Captcha,
    /// A 200 whose body is the page cut short, with a matching
    /// Content-Length: the transport sees a whole response.
    CutPage,
    /// A 302 to this location.
    Redirect(String),
    /// A 200 whose body is this text instead of the page.
    Body(String),
    /// This fault, once this long has passed.
    Late(Duration, Box<Fault>),
}

impl Fault {
    /// A `status` answer (429, 503) asking to come back in `secs` seconds.
    pub fn retry_after(status: u16, secs: u64) -> Fault {
        Fault::Status {
            status,
            retry_after: Some(secs.to_string()),
        }
    }

    /// The fault a late one comes to, and how late: the delays of nested
    /// ones add up.
    fn unlate(self) -> (Duration, Fault) {
        let mut late = Duration::ZERO;
        let mut fault = self;
        while let Fault::Late(d, inner) = fault {
            late += d;
            fault = *inner;
        }
        (late, fault)
    }
}

/// Random faults, applied with a seeded generator so runs are repeatable.
#[derive(Debug, Clone, Default)]
pub struct RandomFaults {
    pub seed: u64,
    pub server_error: f64,
    pub drop: f64,
    pub truncate: f64,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub raw_path: String,
    pub tag: Option<String>,
    pub page: Option<u32>,
    pub pagesize: Option<u32>,
    pub tab: Option<String>,
    pub user_agent: Option<String>,
    pub status: u16,
    /// How many times the tag's content had been edited when this was served.
    pub version: u64,
    /// The page went out whole, as the site holds it (no fault).
    pub clean: bool,
    /// The client's address: each process of a fleet leaves from its own.
    pub client: IpAddr,
}

#[derive(Default)]
struct State {
    tags: BTreeMap<String, Vec<FakeQuestion>>,
    /// Tags whose `n` questions are generated on request: (tag number, n).
    synthetic: BTreeMap<String, (u64, u64)>,
    latency: Duration,
    script: HashMap<(String, u32), VecDeque<Fault>>,
    random: Option<(RandomFaults, fastrand::Rng)>,
    hits: Vec<Hit>,
    /// Woken at each hit, for the tests that wait for one.
    hit_made: Arc<tokio::sync::Notify>,
    robots: String,
    api: api::ApiState,
    /// Compress 200 bodies for clients that accept gzip.
    gzip: bool,
    gzipped: usize,
    /// Edits per tag, for tests that change the site between passes.
    versions: HashMap<String, u64>,
    /// The whole site's limit, as one client sees it (`limit`, `limiter`).
    limit: Option<Limiter>,
    /// Requests per second each client address may make, as Stack Exchange
    /// limits per IP (`per_client_rate`): one window per address.
    per_client: Option<u32>,
    client_limits: HashMap<IpAddr, Limiter>,
    /// Which rate-limit headers go with every answer a limiter decided.
    rate_headers: RateHeaders,
    /// Each response's latency varies by up to this much either way.
    jitter: Duration,
    jitter_rng: Option<fastrand::Rng>,
    /// Client addresses whose requests are read and then dropped
    /// unanswered: one machine's network to the site failing.
    refused: HashSet<IpAddr>,
}

/// The rate-limit headers a site sends, in the styles sites use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RateHeaders {
    /// `Retry-After` on a refusal, nothing else (nginx, most sites).
    #[default]
    RetryAfterOnly,
    /// The IETF draft's `RateLimit-Policy: "fake";q=N;w=S` and
    /// `RateLimit: "fake";r=N;t=S` on every answer.
    Ietf,
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
    /// (seconds until the reset) on every answer.
    XRateLimit,
}

impl RateHeaders {
    /// The header lines for a limiter's verdict, `Retry-After` aside.
    fn lines(self, v: &limit::Verdict) -> String {
        let reset = v.retry_after_secs();
        match self {
            RateHeaders::RetryAfterOnly => String::new(),
            RateHeaders::Ietf => format!(
                "RateLimit-Policy: \"fake\";q={};w={}\r\nRateLimit: \"fake\";r={};t={reset}\r\n",
                v.limit,
                v.window.as_secs().max(1),
                v.remaining
            ),
            RateHeaders::XRateLimit => format!(
                "X-RateLimit-Limit: {}\r\nX-RateLimit-Remaining: {}\r\nX-RateLimit-Reset: {reset}\r\n",
                v.limit, v.remaining
            ),
        }
    }
}

pub struct FakeSite {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Template {
    head: String,
    tail: String,
}

fn template() -> Template {
    let page = std::fs::read_to_string(FIXTURE_2025).expect("fixture page");
    let start = page
        .find("<div id=\"question-summary-")
        .expect("first summary");
    let pager = page.find("<br class=\"clear-both\" />").expect("pager");
    let close = page[..pager].rfind("</div>").expect("end of #questions");
    Template {
        head: page[..start].to_string(),
        tail: page[close..].to_string(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page abbreviates like Stack Overflow: 999, 1.2k, 57k, 2.3m.
pub fn abbreviate(n: u64) -> String {
    if n < 1_000 {
        n.to_string()
    } else if n < 10_000 {
        format!("{:.1}k", n as f64 / 1_000.0)
    } else if n < 1_000_000 {
        format!("{}k", (n as f64 / 1_000.0).round())
    } else {
        format!("{:.1}m", n as f64 / 1_000_000.0)
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One summary in the markup of the 2025/2026 pages.
fn render_summary(q: &FakeQuestion) -> String {
    let answers_item = if q.accepted {
        format!(
            r#"<div class="s-post-summary--stats-item has-answers has-accepted-answer" title="one of the answers was accepted as the correct answer">
<svg aria-hidden="true" class="svg-icon iconCheckmarkSm" width="14" height="14"  viewBox="0 0 14 14"><path  d="M13 3.41 11.59 2 5 8.59 2.41 6 1 7.41l4 4z"/></svg>            <span 
                class="s-post-summary--stats-item-number"
                >
                {}
            </span>
            <span class="s-post-summary--stats-item-unit">answers</span>
        </div>"#,
            q.answers
        )
    } else {
        let class = if q.answers > 0 { "has-answers" } else { " " };
        let unit = if q.answers == 1 { "answer" } else { "answers" };
        format!(
            r#"<div class="s-post-summary--stats-item {class} " title="{n} {unit}">
            <span 
                class="s-post-summary--stats-item-number"
                >
                {n}
            </span>
            <span class="s-post-summary--stats-item-unit">{unit}</span>
        </div>"#,
            n = q.answers
        )
    };
    let tags: String = q
        .tags
        .iter()
        .map(|t| {
            format!(
                r#"<li class='d-inline mr4 js-post-tag-list-item'><a href="/questions/tagged/{t}" class="s-tag post-tag flex--item mt0 js-tagname-{t}" title="show questions tagged &#39;{t}&#39;" rel="tag">{t}</a></li>"#,
                t = esc(t)
            )
        })
        .collect();
    let (rep_title, rep_text) = if q.reputation >= 10_000 {
        (
            thousands(q.reputation),
            format!("{:.1}k", q.reputation as f64 / 1000.0),
        )
    } else {
        (String::new(), thousands(q.reputation))
    };
    format!(
        r#"
        <div id="question-summary-{id}"
            class="s-post-summary    js-post-summary"
            data-post-id="{id}"
            data-post-type-id="1"
            
            >
        <div class="s-post-summary--stats js-post-summary-stats">
        <div class="s-post-summary--stats-item s-post-summary--stats-item__emphasized" title="Score of {votes}">
            <span 
                class="s-post-summary--stats-item-number"
                >
                {votes}
            </span>
            <span class="s-post-summary--stats-item-unit">votes</span>
        </div>
        {answers_item}
        <div class="s-post-summary--stats-item " title="{views_title} views">
            <span 
                class="s-post-summary--stats-item-number"
                >
                {views_text}
            </span>
            <span class="s-post-summary--stats-item-unit">views</span>
        </div>
        </div>
        <div class="s-post-summary--content">
            <h3 class="s-post-summary--content-title">
                <a href="{path}" class="s-link">{title}</a>
            </h3>
                <div 
                    class="s-post-summary--content-excerpt"
                    >
                    {excerpt}
                </div>
            <div class="s-post-summary--meta">
                <div class="s-post-summary--meta-tags d-inline-block tags js-tags">
<ul class='ml0 list-ls-none js-post-tag-list-wrapper d-inline'>{tags}</ul>
                </div>
<div class="s-user-card s-user-card__minimal" aria-live="polite">
    <div class="s-user-card--info">
            <div class="s-user-card--link d-flex gs4" >
                <a href="/users/{id}/u" class="flex--item"><span itemprop="name">{author}</span></a>
            </div>
                <ul class="s-user-card--awards">
            <li class="s-user-card--rep"><span class="todo-no-class-here" title="reputation score {rep_title}" dir="ltr">{rep_text}</span></li>
        </ul>
    </div>
        <time class="s-user-card--time">asked <span title='{asked}' class='relativetime'>26 mins ago</span></time>
</div>
            </div>
        </div>
        </div>
"#,
        id = q.id,
        votes = q.votes,
        views_title = q.views,
        views_text = abbreviate(q.views),
        path = q.url_path(),
        title = esc(&q.title),
        excerpt = esc(&q.excerpt),
        author = esc(&q.author),
        asked = q.asked.format("%Y-%m-%d %H:%M:%SZ"),
    )
}

pub struct SiteBuilder {
    state: State,
}

impl SiteBuilder {
    /// `n` generated questions for `tag`, newest first.
    pub fn tag(mut self, tag: &str, n: u64) -> Self {
        let tag_no = (self.state.tags.len() + self.state.synthetic.len()) as u64;
        let qs = (0..n)
            .map(|i| FakeQuestion::generated(tag, tag_no, i))
            .collect();
        self.state.tags.insert(tag.to_string(), qs);
        self
    }

    /// `n` questions for `tag`, generated per request instead of stored.
    pub fn synthetic_tag(mut self, tag: &str, n: u64) -> Self {
        let tag_no = (self.state.tags.len() + self.state.synthetic.len()) as u64;
        self.state.synthetic.insert(tag.to_string(), (tag_no, n));
        self
    }

    pub fn latency(mut self, d: Duration) -> Self {
        self.state.latency = d;
        self
    }

    /// The next request for this page gets `fault` (faults queue up).
    pub fn fault(mut self, tag: &str, page: u32, fault: Fault) -> Self {
        self.state
            .script
            .entry((tag.to_string(), page))
            .or_default()
            .push_back(fault);
        self
    }

    /// The next robots.txt request gets `fault`.
    pub fn robots_fault(self, fault: Fault) -> Self {
        self.fault("", 0, fault)
    }

    pub fn random_faults(mut self, f: RandomFaults) -> Self {
        let rng = fastrand::Rng::with_seed(f.seed);
        self.state.random = Some((f, rng));
        self
    }

    /// Each client address may make `rate` requests in any one-second
    /// window; one more is answered 429 with a `Retry-After`.
    pub fn per_client_rate(mut self, rate: u32) -> Self {
        self.state.per_client = Some(rate);
        self
    }

    /// Throttle the client to `per_second` requests in any one-second window
    /// (listings and robots.txt alike): one more gets a 429 with a
    /// `Retry-After`.
    pub fn limit(self, per_second: usize) -> Self {
        let limit = u32::try_from(per_second).unwrap_or(u32::MAX);
        self.limiter(Limiter::new(
            Shape::SlidingWindow {
                limit,
                window: Duration::from_secs(1),
            },
            Instant::now(),
        ))
    }

    /// Throttle the client with this limiter (listings and robots.txt
    /// alike): a refused request gets a 429 with a `Retry-After`.
    pub fn limiter(mut self, limiter: Limiter) -> Self {
        self.state.limit = Some(limiter);
        self
    }

    /// Send these rate-limit headers with every answer a limiter decided.
    pub fn rate_headers(mut self, style: RateHeaders) -> Self {
        self.state.rate_headers = style;
        self
    }

    /// Vary each response's latency uniformly by up to `d` either way,
    /// from a seeded generator so runs are repeatable.
    pub fn latency_jitter(mut self, d: Duration, seed: u64) -> Self {
        self.state.jitter = d;
        self.state.jitter_rng = Some(fastrand::Rng::with_seed(seed));
        self
    }

    /// Serve every plain 200 gzip-compressed to clients that accept it.
    pub fn gzip(mut self) -> Self {
        self.state.gzip = true;
        self
    }

    pub fn robots(mut self, body: &str) -> Self {
        self.state.robots = body.to_string();
        self
    }

    pub fn start(self) -> FakeSite {
        self.start_on(0)
    }

    /// Starts on a given loopback port (0: any free one).
    pub fn start_on(mut self, port: u16) -> FakeSite {
        if self.state.robots.is_empty() {
            self.state.robots = "User-agent: *\nAllow: /\n".to_string();
        }
        let state = Arc::new(Mutex::new(self.state));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let template = Arc::new(template());
                let mut stop_rx = stop_rx;
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((sock, peer)) = accepted else { continue };
                            tokio::spawn(serve(sock, peer.ip(), shared.clone(), template.clone()));
                        }
                    }
                }
            });
        });
        let addr = addr_rx.recv().expect("server address");
        FakeSite {
            addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl FakeSite {
    pub fn builder() -> SiteBuilder {
        SiteBuilder {
            state: State::default(),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many responses went out gzip-compressed.
    pub fn gzipped(&self) -> usize {
        self.state.lock().unwrap().gzipped
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }

    /// The listing requests only (not robots.txt).
    pub fn page_hits(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.tag.is_some())
            .collect()
    }

    /// Resolves once `n` listing requests have reached the site.
    pub async fn until_page_hits(&self, n: usize) {
        let hit_made = self.state.lock().unwrap().hit_made.clone();
        loop {
            // Registered before the count is read: a hit in between wakes it.
            let hit = hit_made.notified();
            if self.page_hits().len() >= n {
                return;
            }
            hit.await;
        }
    }

    pub fn questions(&self, tag: &str) -> Vec<FakeQuestion> {
        self.state
            .lock()
            .unwrap()
            .tags
            .get(tag)
            .cloned()
            .unwrap_or_default()
    }

    /// Puts a new question at the top of a tag, as a new post would.
    pub fn add_newest(&self, tag: &str, q: FakeQuestion) {
        self.edit(tag, |qs| qs.insert(0, q));
    }

    /// Changes a tag's questions (new posts, votes, deletions) in one step,
    /// counted as one version of the tag.
    pub fn edit(&self, tag: &str, f: impl FnOnce(&mut Vec<FakeQuestion>)) {
        let mut st = self.state.lock().unwrap();
        f(st.tags.entry(tag.to_string()).or_default());
        *st.versions.entry(tag.to_string()).or_default() += 1;
    }

    /// How many times the tag was edited so far.
    pub fn version(&self, tag: &str) -> u64 {
        let st = self.state.lock().unwrap();
        st.versions.get(tag).copied().unwrap_or(0)
    }

    /// Scripts a fault after the start, for tests that change the site as
    /// they go.
    pub fn push_fault(&self, tag: &str, page: u32, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .script
            .entry((tag.to_string(), page))
            .or_default()
            .push_back(fault);
    }

    /// From now on, requests from `client` are read and dropped without an
    /// answer (logged with status 0, never clean), as when that machine's
    /// route to the site fails mid-request.
    pub fn refuse_client(&self, client: IpAddr) {
        self.state.lock().unwrap().refused.insert(client);
    }

    /// Answers `client` again.
    pub fn admit_client(&self, client: IpAddr) {
        self.state.lock().unwrap().refused.remove(&client);
    }

    /// How many times robots.txt was requested.
    pub fn robots_hits(&self) -> usize {
        self.hits()
            .iter()
            .filter(|h| h.raw_path == "/robots.txt")
            .count()
    }

    /// The most requests that arrived in any window of `window` (half-open).
    pub fn max_in_window(&self, window: Duration) -> usize {
        let times: Vec<Instant> = self.page_hits().iter().map(|h| h.at).collect();
        max_in_window(&times, window)
    }
}

/// The records of a JSONL output, as a user would load them.
pub fn read_jsonl(path: &std::path::Path) -> Vec<stackcrawl::model::Question> {
    std::fs::read_to_string(path)
        .expect("output written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a record"))
        .collect()
}

/// How many of `hits` asked for each (tag, page).
pub fn hits_per_page(hits: &[Hit]) -> HashMap<(String, u32), usize> {
    let mut m = HashMap::new();
    for h in hits {
        *m.entry((h.tag.clone().unwrap_or_default(), h.page.unwrap_or(0)))
            .or_insert(0) += 1;
    }
    m
}

pub fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut t = times.to_vec();
    t.sort();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..t.len() {
        while t[hi].duration_since(t[lo]) >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

impl Drop for FakeSite {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

struct Request {
    raw_path: String,
    /// For an API request, the decoded `tagged` parameter.
    tag: Option<String>,
    page: Option<u32>,
    pagesize: Option<u32>,
    tab: Option<String>,
    user_agent: Option<String>,
    robots: bool,
    accepts_gzip: bool,
    /// `/2.3/questions`: answered by [`api::serve_api`].
    api: bool,
}

impl Request {
    /// The log entry of this request, answered with `status`.
    fn hit(&self, st: &State, client: IpAddr, at: Instant, status: u16, clean: bool) -> Hit {
        Hit {
            at,
            raw_path: self.raw_path.clone(),
            tag: self.tag.clone(),
            page: self.page,
            pagesize: self.pagesize,
            tab: self.tab.clone(),
            user_agent: self.user_agent.clone(),
            status,
            version: self
                .tag
                .as_ref()
                .and_then(|t| st.versions.get(t))
                .copied()
                .unwrap_or(0),
            clean,
            client,
        }
    }
}

fn parse_request(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let _method = first.next()?;
    let target = first.next()?.to_string();
    let headers: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once(':')).collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let user_agent = header("user-agent");
    let accepts_gzip = header("accept-encoding").is_some_and(|v| v.contains("gzip"));
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut params: HashMap<&str, &str> = HashMap::new();
    for kv in query.split('&') {
        if let Some((k, v)) = kv.split_once('=') {
            params.insert(k, v);
        }
    }
    let tag = match path.strip_prefix("/questions/tagged/") {
        Some(t) => Some(decode(t)),
        None if path == api::QUESTIONS_PATH => params.get("tagged").map(|t| decode(t)),
        None => None,
    };
    Some(Request {
        tag,
        page: params.get("page").and_then(|p| p.parse().ok()),
        pagesize: params.get("pagesize").and_then(|p| p.parse().ok()),
        tab: params.get("tab").map(|t| t.to_string()),
        user_agent,
        accepts_gzip,
        robots: path == "/robots.txt",
        api: path == api::QUESTIONS_PATH,
        raw_path: target,
    })
}

/// Logs a request from a refused client, which gets no answer.
fn refused(state: &Mutex<State>, client: IpAddr, req: &Request, arrived: Instant) -> bool {
    let mut st = state.lock().unwrap();
    if !st.refused.contains(&client) {
        return false;
    }
    let hit = req.hit(&st, client, arrived, 0, false);
    st.hits.push(hit);
    st.hit_made.notify_waiters();
    true
}

async fn serve(
    mut sock: TcpStream,
    client: IpAddr,
    state: Arc<Mutex<State>>,
    template: Arc<Template>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 64 * 1024 {
            break;
        }
    }
    let arrived = Instant::now();
    let head = String::from_utf8_lossy(&buf).into_owned();
    let Some(req) = parse_request(&head) else {
        return;
    };
    if refused(&state, client, &req, arrived) {
        return;
    }
    if req.api {
        return api::serve_api(sock, client, state, req, arrived).await;
    }

    // Decide the response under the lock, then sleep and write without it.
    let (fault, latency, body, gzip, limit_lines) = {
        let mut st = state.lock().unwrap();
        let key = (req.tag.clone().unwrap_or_default(), req.page.unwrap_or(0));
        // A late fault is its inner fault, after the delay.
        let (late, mut fault) = match st.script.get_mut(&key).and_then(|q| q.pop_front()) {
            Some(f) => {
                let (late, f) = f.unlate();
                (late, Some(f))
            }
            None => (Duration::ZERO, None),
        };
        let mut limit_lines = String::new();
        if fault.is_none() {
            let st = &mut *st;
            let verdict = match st.per_client {
                Some(n) => Some(
                    st.client_limits
                        .entry(client)
                        .or_insert_with(|| {
                            Limiter::new(
                                Shape::SlidingWindow {
                                    limit: n,
                                    window: Duration::from_secs(1),
                                },
                                arrived,
                            )
                        })
                        .admit(arrived),
                ),
                None => st.limit.as_mut().map(|l| l.admit(arrived)),
            };
            if let Some(v) = verdict {
                limit_lines = st.rate_headers.lines(&v);
                if !v.served {
                    fault = Some(Fault::Status {
                        status: 429,
                        retry_after: Some(v.retry_after_secs().to_string()),
                    });
                }
            }
        }
        if fault.is_none() && req.tag.is_some() {
            if let Some((f, rng)) = &mut st.random {
                let r = rng.f64();
                fault = if r < f.server_error {
                    Some(Fault::Status {
                        status: if rng.bool() { 500 } else { 503 },
                        retry_after: None,
                    })
                } else if r < f.server_error + f.drop {
                    Some(Fault::Drop)
                } else if r < f.server_error + f.drop + f.truncate {
                    Some(Fault::Truncate)
                } else {
                    None
                };
            }
        }
        let body = if req.robots {
            st.robots.clone()
        } else if let Some(tag) = &req.tag {
            let size = req.pagesize.unwrap_or(50).max(1) as usize;
            let page = req.page.unwrap_or(1).max(1) as usize;
            // Synthetic tags generate their questions per request, so a
            // soak of thousands of pages costs the server no memory.
            let generated: Vec<FakeQuestion>;
            let qs: &[FakeQuestion] = match st.synthetic.get(tag) {
                Some(&(tag_no, n)) => {
                    let from = ((page - 1) * size) as u64;
                    generated = (from..(from + size as u64).min(n))
                        .map(|i| FakeQuestion::generated(tag, tag_no, i))
                        .collect();
                    &generated
                }
                None => {
                    let all = st.tags.get(tag).map(Vec::as_slice).unwrap_or(&[]);
                    let start = (page - 1).saturating_mul(size).min(all.len());
                    &all[start..(start + size).min(all.len())]
                }
            };
            let mut html =
                String::with_capacity(template.head.len() + template.tail.len() + 4096 * qs.len());
            html.push_str(&template.head);
            for q in qs {
                html.push_str(&render_summary(q));
            }
            html.push_str(&template.tail);
            html
        } else {
            String::new()
        };
        let status = match (&fault, req.tag.is_some() || req.robots) {
            (Some(Fault::Status { status, .. }), _) => *status,
            (Some(Fault::Drop), _) => 0,
            (_, true) => 200,
            (_, false) => 404,
        };
        let clean = status == 200 && matches!(fault, None | Some(Fault::Stall(_)));
        let hit = req.hit(&st, client, arrived, status, clean);
        st.hits.push(hit);
        st.hit_made.notify_waiters();
        let gzip = st.gzip && req.accepts_gzip && fault.is_none();
        if gzip {
            st.gzipped += 1;
        }
        let st = &mut *st;
        let latency = match &mut st.jitter_rng {
            Some(rng) if !st.jitter.is_zero() => {
                let spread = st.jitter.as_secs_f64();
                let d = st.latency.as_secs_f64() + spread * (2.0 * rng.f64() - 1.0);
                Duration::from_secs_f64(d.max(0.0))
            }
            _ => st.latency,
        };
        (fault, latency + late, body, gzip, limit_lines)
    };

    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let content_type = if req.robots {
        "text/plain"
    } else {
        "text/html; charset=utf-8"
    };
    let compressed;
    let (body, encoding) = if gzip {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body.as_bytes()).expect("gzip");
        compressed = enc.finish().expect("gzip");
        (compressed.as_slice(), "Content-Encoding: gzip\r\n")
    } else {
        (body.as_bytes(), "")
    };
    let response = |status: u16, reason: &str, extra: &str, body: &[u8]| -> Vec<u8> {
        let extra = format!("{extra}{limit_lines}{encoding}");
        let mut out = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    let bytes = match fault {
        // Taken apart when it was popped (`Fault::unlate`).
        Some(Fault::Late(..)) | Some(Fault::Drop) => return,
        Some(Fault::Status { status, retry_after }) => {
            let extra = retry_after.map(|r| format!("Retry-After: {r}\r\n")).unwrap_or_default();
            response(status, "Error", &extra, b"<html><body>error</body></html>")
        }
        Some(Fault::Truncate) => {
            let full = response(200, "OK", "", body);
            let cut = full.len() * 2 / 3;
            let _ = sock.write_all(&full[..cut]).await;
            return;
        }
        Some(Fault::Stall(d)) => {
            tokio::time::sleep(d).await;
            response(200, "OK", "", body)
        }
        Some(Fault::Huge(n)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
            );
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'a'; 64 * 1024];
            let mut sent = 0;
            while sent < n {
                let k = block.len().min(n - sent);
                if sock.write_all(&block[..k]).await.is_err() {
                    return;
                }
                sent += k;
            }
            return;
        }
        Some(Fault::CutPage) => {
            let cut = body.len() / 2;
            response(200, "OK", "", &body[..cut])
        }
        Some(Fault::Redirect(to)) => response(302, "Found", &format!("Location: {to}\r\n"), b""),
        Some(Fault::Body(text)) => response(200, "OK", "", text.as_bytes()),
        Some(Fault::Captcha) => response(
            200,
            "OK",
            "",
            b"<!DOCTYPE html><html><head><title>Human verification - Stack Overflow</title></head><body><h1>Human verification</h1><p>Are you a human being? We detected unusual traffic from your network. Please complete the captcha below.</p><div class=\"g-recaptcha\"></div></body></html>",
        ),
        None if req.tag.is_some() || req.robots => response(200, "OK", "", body),
        None => response(404, "Not Found", "", b"<html><body>Page not found</body></html>"),
    };
    let _ = sock.write_all(&bytes).await;
    let _ = sock.shutdown().await;
}
pub mod warc;
pub mod wayback;
