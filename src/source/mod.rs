//! The source boundary: the one place that knows whether a page comes from
//! a site's HTML listing or from the Stack Exchange API. Everything a source
//! decides lives here, one `match` per decision: the page's URL, which lane
//! (quota, pause, budget) its request goes through, whether robots.txt
//! governs it, how it is requested and what each status means, how its body
//! becomes records, and its paging rules (an API tag is paged by `has_more`;
//! a listing ends at its first empty page). Outside this module no code asks
//! which source a page is; adding a source is a variant here, its pure
//! module (like [`crate::source::api`]) and its config section.

pub mod api;
pub mod archive;
pub mod cdx;
pub mod charset;
pub mod fetch;
pub mod html;
pub mod saved;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;

use self::api::{ApiError, ApiQuery};
use crate::config::{ApiKey, ApiSort, Config, Order, Tab, MAX_PAGESIZE};
use crate::lane::{Lane, LaneError};
use crate::model::{Archive, Listing, PageContext};
use crate::source::fetch::{Body, FetchError, HttpClient};
use crate::source::html::clean::clean_page;
use crate::source::html::parse::{parse_listing, ParseError};
use crate::store::output::OutputError;
use crate::store::{Claim, LeaseToken};

pub use crate::config::Source;

/// Why one attempt at a page did not produce a report.
#[derive(Debug, Clone, Error)]
pub enum JobError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("unusable page: {0}")]
    Page(#[from] ParseError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("unusable capture: {0}")]
    Capture(#[from] cdx::CaptureError),
    /// No request could be sent: the budget is spent or cannot be counted.
    #[error(transparent)]
    Lane(#[from] LaneError),
    /// The records could not be written (shared: an attempt's outcome is
    /// cloned, an I/O error is not).
    #[error("output failed: {0}")]
    Output(std::sync::Arc<OutputError>),
    #[error("crawler stopped")]
    Stopped,
    /// Another process of the fleet fetched the page or is fetching it:
    /// nothing was sent.
    #[error("page is another process's: {0:?}")]
    Elsewhere(Claim),
}

impl JobError {
    pub fn is_retryable(&self) -> bool {
        match self {
            JobError::Fetch(e) => e.is_retryable(),
            JobError::Page(e) => e.is_retryable() || e.is_block(),
            JobError::Api(e) => e.is_retryable(),
            // The archive serves the same bytes again.
            JobError::Capture(_) => false,
            JobError::Lane(_)
            | JobError::Output(_)
            | JobError::Stopped
            | JobError::Elsewhere(_) => false,
        }
    }

    /// The source refused for good (a bad parameter, a refused key): no
    /// retry can cure it, and every other page would get the same answer.
    pub fn is_refusal(&self) -> bool {
        matches!(self, JobError::Api(e) if e.is_fatal())
    }

    /// The source refused the request for going too fast and named (or
    /// implied) a pause for its whole lane (the API's `throttle_violation`).
    pub fn is_source_pause(&self) -> bool {
        self.source_pause(Duration::ZERO).is_some()
    }

    /// How long such a refusal pauses the lane: what the source said plus
    /// one second, never less than `min`.
    pub fn source_pause(&self, min: Duration) -> Option<Duration> {
        match self {
            JobError::Api(e) => e.pause(min),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            JobError::Fetch(e) => e.kind(),
            JobError::Page(e) if e.is_block() => "blocked",
            JobError::Page(_) => "page",
            JobError::Api(e) => e.kind(),
            JobError::Capture(_) => "capture",
            JobError::Lane(LaneError::Exhausted { .. }) => "budget_exhausted",
            JobError::Lane(LaneError::Budget(_)) => "budget",
            JobError::Lane(LaneError::Closed | LaneError::Paused) => "not_sent",
            JobError::Output(_) => "output",
            JobError::Stopped => "stopped",
            JobError::Elsewhere(_) => "elsewhere",
        }
    }
}

// The sources' paging rules, kept here with the rest of what differs
// between sources (an inherent impl may live in any module of the crate).
impl Listing {
    /// The source says no page of this tag comes after this one.
    pub fn is_last(&self) -> bool {
        self.signals.is_some_and(|w| !w.has_more)
    }

    /// How long the source asked to be left alone after this page.
    pub fn pause_after(&self) -> Option<Duration> {
        api::throttle_pause(self.signals.and_then(|w| w.backoff))
    }
}

/// One lane per source, each on its own host: an API `backoff` must not
/// stall HTML pages, nor a site's 429 stall the API.
#[derive(Clone)]
pub struct Lanes(Vec<(Source, Arc<Lane>)>);

impl Lanes {
    /// The lanes `lane` builds from each source's [`LaneSpec`].
    pub fn build<E>(
        config: &Config,
        mut lane: impl FnMut(LaneSpec) -> Result<Arc<Lane>, E>,
    ) -> Result<Lanes, E> {
        Source::ALL
            .into_iter()
            .map(|source| Ok((source, lane(source.lane_spec(config))?)))
            .collect::<Result<_, E>>()
            .map(Lanes)
    }

    pub fn for_job(&self, job: &PageJob) -> &Arc<Lane> {
        self.for_source(job.source)
    }

    pub fn for_source(&self, source: Source) -> &Arc<Lane> {
        &self
            .0
            .iter()
            .find(|(s, _)| *s == source)
            .expect("Lanes::build makes a lane for every source")
            .1
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Lane>> {
        self.0.iter().map(|(_, lane)| lane)
    }

    /// The lane whose budget entry is `key`.
    pub fn by_key(&self, key: &str) -> Option<&Arc<Lane>> {
        self.all().find(|l| l.key == key)
    }

    /// The lanes of sources that keep a quota of their own: their requests
    /// and what they say of that quota are reported apart.
    pub fn with_own_quota(&self) -> impl Iterator<Item = &Arc<Lane>> {
        self.0
            .iter()
            .filter(|(s, _)| s.keeps_own_quota())
            .map(|(_, lane)| lane)
    }

    /// The lane robots.txt is requested through: the site's own.
    pub fn site(&self) -> &Arc<Lane> {
        self.for_source(Source::Html)
    }
}

/// How a source's requests are spaced and counted.
#[derive(Debug, Clone)]
pub struct LaneSpec {
    /// The budget entry: the host, or a name of the source's own quota.
    pub key: String,
    /// A daily limit of the source's own instead of `fetch.daily_budget`.
    pub daily_limit: Option<u64>,
    /// Requests go one at a time: each waits for the previous answer (an
    /// answer may carry a pause that binds the next request).
    pub serial: bool,
    /// The app key whose quota the source spends, if any: a fleet keeps
    /// that budget in its database, since it is the key's wherever it is
    /// spent.
    pub app_key: Option<ApiKey>,
    /// A rate of the source's own, below `fetch.rate` (which caps it).
    pub rate: Option<f64>,
}

/// What a request needs besides its lane.
#[derive(Clone)]
pub struct Requester {
    pub http: HttpClient,
    pub api_key: Option<ApiKey>,
    /// The shortest pause after an API `throttle_violation`.
    pub violation_pause: Duration,
}

/// One page to fetch. It carries its identity from the supervisor to the
/// fetcher and back, so no outcome is ever anonymous.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageJob {
    pub ctx: PageContext,
    /// For an API page, the URL without the app key: the fetcher adds the
    /// key, so no log line, failures file or dry run can show it.
    pub url: String,
    /// 1 for the first try; a retry is the same job with a higher attempt.
    pub attempt: u32,
    pub source: Source,
    /// Handed out only after the page before it of the same tag came back
    /// saying there is more: an API page (`has_more`), or a page of an
    /// incremental pass (the page before showed new or changed questions).
    /// Every request past a tag's end would be wasted.
    pub after_previous: bool,
    /// The token of the lease the page was claimed with on a store a fleet
    /// shares, set by the supervisor (and by a renewal): its records are
    /// written only while the lease still has it.
    pub lease: Option<LeaseToken>,
}

impl PageJob {
    /// Page `page` of `tag`'s listing in `tab`.
    pub fn new(config: &Config, tag: &str, tab: Tab, page: u32, pagesize: u32) -> PageJob {
        PageJob {
            ctx: context(config, tag, tab.as_str(), page),
            url: config.listing_url(tag, tab, page, pagesize),
            attempt: 1,
            source: Source::Html,
            after_previous: false,
            lease: None,
        }
    }

    /// A page of the API's `/questions` for one tag; `ctx.tab` is the sort.
    /// Page N+1 goes out only once page N said `has_more`.
    pub fn api(config: &Config, tag: &str, sort: ApiSort, page: u32, pagesize: u32) -> PageJob {
        let query = ApiQuery {
            tag: tag.to_string(),
            sort,
            page,
            pagesize,
            site: config.api.site.clone().unwrap_or_default(),
            // None unless the config names one: the API's default filter
            // returns every field we read; a custom one saves bandwidth, not quota.
            filter: config.api.filter.clone(),
        };
        PageJob {
            ctx: context(config, tag, sort.as_str(), page),
            url: api::api_url(&config.api.base_url, &query),
            attempt: 1,
            source: Source::Api,
            after_previous: true,
            lease: None,
        }
    }
}

fn context(config: &Config, tag: &str, order: &str, page: u32) -> PageContext {
    PageContext {
        site: config.site.clone(),
        base_url: config.base_url.clone(),
        tag: tag.to_string(),
        tab: order.to_string(),
        page,
    }
}

impl PageJob {
    /// Page `page` of `tag` in `order`, from the source that order belongs to.
    pub fn of(config: &Config, order: Order, tag: &str, page: u32, pagesize: u32) -> PageJob {
        match order {
            Order::Listing(tab) => PageJob::new(config, tag, tab, page, pagesize),
            Order::Api(sort) => PageJob::api(config, tag, sort, page, pagesize),
            // A capture's job is built from what the index listed
            // (`PageJob::capture`); without that, the page number is all
            // there is: the tag's listing as the archive held it at that
            // second (Wayback answers with the nearest capture).
            Order::Archive(archive) => {
                let capture = cdx::Capture {
                    at: DateTime::from_timestamp(i64::from(page), 0).unwrap_or_default(),
                    original: config.listing_url(tag, Tab::Newest, 1, pagesize.max(15)),
                    warc: None,
                };
                PageJob::capture(config, archive, tag, &capture)
            }
        }
    }
}

impl Source {
    /// Every source; one line per source added.
    pub const ALL: [Source; 4] = [
        Source::Html,
        Source::Api,
        Source::Wayback,
        Source::CommonCrawl,
    ];

    /// The source as a sentence names it.
    pub fn title(self) -> &'static str {
        match self {
            Source::Html => "the site",
            Source::Api => "the Stack Exchange API",
            Source::Wayback => "the Wayback Machine",
            Source::CommonCrawl => "Common Crawl",
        }
    }

    /// How this source's requests are spaced and counted.
    pub fn lane_spec(self, config: &Config) -> LaneSpec {
        match self {
            Source::Html => LaneSpec {
                key: config.budget_key(),
                daily_limit: None,
                serial: false,
                app_key: None,
                rate: None,
            },
            // One request at a time: see `crate::lane` for why.
            Source::Api => LaneSpec {
                key: config.api.budget_key(),
                daily_limit: Some(config.api.daily_quota),
                serial: true,
                app_key: config.api.key.clone(),
                rate: None,
            },
            // A public archive, asked gently: one request at a time, at the
            // archive rate (see `cdx::settings`).
            Source::Wayback | Source::CommonCrawl => LaneSpec {
                key: self.as_str().to_string(),
                daily_limit: None,
                serial: true,
                app_key: None,
                rate: Some(config.archive.rate),
            },
        }
    }

    /// The source keeps a quota of its own and reports it with its pages
    /// (`Signals::quota_remaining`).
    pub fn keeps_own_quota(self) -> bool {
        match self {
            Source::Html | Source::Wayback | Source::CommonCrawl => false,
            Source::Api => true,
        }
    }

    /// The source's pages are the captures its index lists, known only
    /// once the index is asked (before the pass), not page numbers.
    pub fn pages_from_index(self) -> bool {
        matches!(self, Source::Wayback | Source::CommonCrawl)
    }

    /// robots.txt governs crawlers of the site's pages; the API is a
    /// documented interface with its own rules, on another host.
    pub fn obeys_robots(self) -> bool {
        match self {
            Source::Html => true,
            // The archive's own pages, not the site's: the site's robots.txt
            // governs the site, and the archives publish their own limits.
            Source::Api | Source::Wayback | Source::CommonCrawl => false,
        }
    }

    /// The source a failures-file URL belongs to: an API page is listed
    /// without the key, under the configured API base.
    pub fn of_url(config: &Config, url: &str) -> Source {
        if url.starts_with(&format!("{}/2.3/", config.api.base_url)) {
            Source::Api
        } else if url.starts_with(&format!("{}/web/", config.archive.wayback_url)) {
            Source::Wayback
        } else if url.starts_with(&format!("{}/", config.archive.commoncrawl_data_url)) {
            Source::CommonCrawl
        } else {
            Source::Html
        }
    }

    /// The order a failures-file entry names, checked: an order (tab or
    /// sort) and a page size this source knows, or an error saying which is
    /// wrong.
    pub fn order_named(self, order: &str, pagesize: u32) -> Result<Order, String> {
        match self {
            Source::Wayback | Source::CommonCrawl => {
                let archive = match self {
                    Source::Wayback => Archive::Wayback,
                    _ => Archive::CommonCrawl,
                };
                if order != archive.as_str() {
                    return Err(format!("tab `{order}` is not `{}`", archive.as_str()));
                }
                Ok(Order::Archive(archive))
            }
            Source::Api => {
                let sort = ApiSort::ALL
                    .into_iter()
                    .find(|s| s.as_str() == order)
                    .ok_or_else(|| {
                        format!("sort `{}` is not one of creation, activity, votes", order)
                    })?;
                if !(1..=MAX_PAGESIZE).contains(&pagesize) {
                    return Err(format!(
                        "pagesize {pagesize} is outside the API's 1 to {}",
                        MAX_PAGESIZE
                    ));
                }
                Ok(Order::Api(sort))
            }
            Source::Html => {
                let tab = Tab::parse(order)
                    .filter(|t| t.as_str() == order)
                    .ok_or_else(|| {
                        format!(
                            "tab `{}` is not one of {}",
                            order,
                            Tab::ALL.map(|t| t.as_str()).join(", ")
                        )
                    })?;
                if ![15, 30, 50].contains(&pagesize) {
                    return Err(format!("pagesize {pagesize} is not 15, 30 or 50"));
                }
                Ok(Order::Listing(tab))
            }
        }
    }

    /// Requests the job's page and maps its status to what it means. Any
    /// pause the server asks for is applied to `lane` before this returns,
    /// so it binds every request from the moment it is read.
    pub async fn request(
        self,
        r: &Requester,
        lane: &Lane,
        job: &PageJob,
    ) -> Result<Body, JobError> {
        match self {
            // A Retry-After binds the lane when the fetcher settles the
            // request (`Lane::settle`).
            Source::Html => Ok(r.http.get_ok(&job.url).await?),
            Source::Api => {
                // `job.url` has no key; the keyed URL lives only in this call.
                let resp = match &r.api_key {
                    Some(key) => {
                        r.http
                            .get_response(&api::with_key(&job.url, key.expose()))
                            .await
                    }
                    None => r.http.get_response(&job.url).await,
                }?;
                if (200..300).contains(&resp.status) {
                    return Ok(Body {
                        text: resp.text,
                        fetched_at: resp.fetched_at,
                        limits: resp.limits,
                    });
                }
                let err = api::parse_api_error(resp.status, &resp.text);
                if let Some(pause) = err.pause(r.violation_pause) {
                    lane.pause_for(pause);
                }
                if !matches!(err, ApiError::Malformed(_)) {
                    return Err(err.into());
                }
                // Not the API's own words but something's in front of it: a
                // 429 or 503 still means slow down (its Retry-After is
                // honoured), and another 4xx (a wrong api.base_url) will not
                // change on a retry.
                let err = match resp.status {
                    429 | 503 => resp.status_error(),
                    400..=499 if resp.status != 408 => resp.status_error(),
                    _ => return Err(err.into()),
                };
                Err(err.into())
            }
            Source::Wayback | Source::CommonCrawl => Ok(cdx::request(&r.http, job).await?),
        }
    }

    /// Reads a fetched body into records: pure CPU work, run on the
    /// cleaner's threads.
    pub fn read(
        self,
        ctx: &PageContext,
        body: &str,
        fetched_at: DateTime<Utc>,
    ) -> Result<Listing, JobError> {
        match self {
            Source::Html => Ok(clean_page(&parse_listing(body)?, ctx, fetched_at)),
            Source::Api => Ok(api::parse_api_page(body, ctx, fetched_at)?),
            // `request` left the archived page's HTML, and its capture time
            // as the time it was fetched.
            Source::Wayback | Source::CommonCrawl => {
                let listing = clean_page(&parse_listing(body)?, ctx, fetched_at);
                // An empty listing ends a tag's pages; one capture of an
                // empty listing (a page past the end, say) must not end
                // the captures after it.
                if listing.questions.is_empty() && listing.rejections.is_empty() {
                    return Err(cdx::CaptureError::Empty.into());
                }
                Ok(listing)
            }
        }
    }
}

/// Reads a saved body whose source nobody recorded (`stackcrawl parse`):
/// a JSON object is an API 2.x response, anything else is read as an HTML
/// listing. Told apart by content, never by the file's name.
pub fn read_saved(
    body: &str,
    ctx: &PageContext,
    fetched_at: DateTime<Utc>,
) -> Result<Listing, JobError> {
    if is_json_object(body) {
        // Editors save JSON with a BOM that serde_json does not skip.
        Source::Api.read(ctx, body.trim_start_matches('\u{feff}'), fetched_at)
    } else {
        Source::Html.read(ctx, body, fetched_at)
    }
}

/// Starts (after a BOM and whitespace) with `{` and a quoted key or `}`:
/// markup never does.
fn is_json_object(body: &str) -> bool {
    let rest = body.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    rest.strip_prefix('{')
        .map(|r| r.trim_start())
        .is_some_and(|r| r.starts_with('"') || r.starts_with('}'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_saved_body_is_told_html_or_api_by_content() {
        let ctx = PageContext {
            site: "stackoverflow.com".into(),
            base_url: "https://stackoverflow.com".into(),
            tag: String::new(),
            tab: String::new(),
            page: 0,
        };
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let fixture = |p: &str| {
            std::fs::read_to_string(format!("{}/tests/fixtures/{p}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
        };
        let api = read_saved(&fixture("se-api/questions-search-php-2017.json"), &ctx, at)
            .expect("API response");
        assert_eq!((api.questions.len(), api.signals.is_some()), (9, true));
        let pretty = read_saved(
            &format!(
                "\u{feff}\n  {}",
                fixture("se-api/questions-withbody-goso-2024.json")
            ),
            &ctx,
            at,
        )
        .expect("pretty-printed API response");
        assert_eq!(pretty.questions.len(), 10);
        let html = read_saved(&fixture("so-html/tagged-python-newest-2025.html"), &ctx, at)
            .expect("HTML listing");
        assert_eq!((html.questions.len(), html.signals.is_none()), (15, true));
        // A JSON error wrapper is the API's error, not a truncated page.
        let err = read_saved("{\"error_id\": 502, \"error_name\": \"throttle_violation\", \"error_message\": \"too many requests\"}", &ctx, at)
            .unwrap_err();
        assert!(matches!(err, JobError::Api(_)), "{err}");
        assert!(!err.to_string().contains("truncated"), "{err}");
    }

    use super::*;
    use crate::config::Overrides;
    use crate::engine::plan::Plan;

    #[test]
    fn api_jobs_carry_the_sort_and_no_key() {
        let text = r#"
[tag_sets.web]
tags = ["c++"]
pages = 2
[tag_sets.api]
source = "api"
tags = ["c++"]
sort = "activity"
pages = 2
"#;
        let raw = toml::from_str(text).unwrap();
        let c =
            Config::from_raw_with_key(raw, text, "t", &Overrides::default(), Some("K3Y")).unwrap();
        let jobs: Vec<_> = Plan::from_config(&c).jobs().collect();
        let got: Vec<_> = jobs
            .iter()
            .map(|j| (j.source, j.ctx.tab.as_str(), j.ctx.page))
            .collect();
        assert_eq!(
            got,
            [
                (Source::Api, "activity", 1),
                (Source::Html, "Newest", 1),
                (Source::Api, "activity", 2),
                (Source::Html, "Newest", 2),
            ],
            "the same tag from both sources is two lanes, not a duplicate"
        );
        assert_eq!(
            jobs[2].url,
            "https://api.stackexchange.com/2.3/questions?tagged=c%2B%2B&site=stackoverflow&sort=activity&order=desc&page=2&pagesize=100"
        );
        assert_eq!(jobs[2].ctx.site, "stackoverflow.com");
        assert!(jobs.iter().all(|j| !j.url.contains("K3Y")));
    }
}
