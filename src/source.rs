//! The source boundary: the one place that knows whether a page comes from
//! a site's HTML listing or from the Stack Exchange API. Everything a source
//! decides lives here, one `match` per decision: the page's URL, which lane
//! (quota, pause, budget) its request goes through, whether robots.txt
//! governs it, how it is requested and what each status means, how its body
//! becomes records, and its paging rules (an API tag is paged by `has_more`;
//! a listing ends at its first empty page). Outside this module no code asks
//! which source a page is; adding a source is a variant here, its pure
//! module (like [`crate::api`]) and its config section.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::api::{self, ApiError, ApiQuery, ApiSort};
use crate::clean::clean_page;
use crate::config::{ApiKey, Config, Order, Tab};
use crate::fetch::{Body, FetchError, HttpClient};
use crate::lane::{Lane, LaneError};
use crate::model::{Listing, PageContext};
use crate::output::OutputError;
use crate::parse::{parse_listing, ParseError};
use crate::store::Claim;

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
            JobError::Lane(_)
            | JobError::Output(_)
            | JobError::Stopped
            | JobError::Elsewhere(_) => false,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            JobError::Fetch(e) => e.kind(),
            JobError::Page(e) if e.is_block() => "blocked",
            JobError::Page(_) => "page",
            JobError::Api(e) => e.kind(),
            JobError::Lane(LaneError::Exhausted { .. }) => "budget_exhausted",
            JobError::Lane(LaneError::Budget(_)) => "budget",
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
        self.api.is_some_and(|w| !w.has_more)
    }

    /// How long the source asked to be left alone after this page.
    pub fn pause_after(&self) -> Option<Duration> {
        api::throttle_pause(self.api.and_then(|w| w.backoff))
    }
}

/// The two hosts' lanes. The API's `backoff` must not stall HTML pages, nor
/// a site's 429 stall the API.
#[derive(Clone)]
pub struct Lanes {
    pub html: Arc<Lane>,
    pub api: Arc<Lane>,
}

impl Lanes {
    pub fn for_job(&self, job: &PageJob) -> &Arc<Lane> {
        match job.source {
            Source::Html => &self.html,
            Source::Api => &self.api,
        }
    }
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
        }
    }
}

impl Source {
    /// robots.txt governs crawlers of the site's pages; the API is a
    /// documented interface with its own rules, on another host.
    pub fn obeys_robots(self) -> bool {
        match self {
            Source::Html => true,
            Source::Api => false,
        }
    }

    /// The source a failures-file URL belongs to: an API page is listed
    /// without the key, under the configured API base.
    pub fn of_url(config: &Config, url: &str) -> Source {
        if url.starts_with(&format!("{}/2.3/", config.api.base_url)) {
            Source::Api
        } else {
            Source::Html
        }
    }

    /// The order a failures-file entry names, checked: an order (tab or
    /// sort) and a page size this source knows, or an error saying which is
    /// wrong.
    pub fn order_named(self, order: &str, pagesize: u32) -> Result<Order, String> {
        match self {
            Source::Api => {
                let sort = ApiSort::ALL
                    .into_iter()
                    .find(|s| s.as_str() == order)
                    .ok_or_else(|| {
                        format!("sort `{}` is not one of creation, activity, votes", order)
                    })?;
                if !(1..=api::MAX_PAGESIZE).contains(&pagesize) {
                    return Err(format!(
                        "pagesize {pagesize} is outside the API's 1 to {}",
                        api::MAX_PAGESIZE
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
            Source::Html => {
                let body = r.http.get_ok(&job.url).await;
                if let Err(e) = &body {
                    honour_retry_after(lane, e);
                }
                Ok(body?)
            }
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
                honour_retry_after(lane, &err);
                Err(err.into())
            }
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

/// A server's "slow down" binds every request from the moment it is read,
/// not from when the supervisor gets to it.
pub(crate) fn honour_retry_after(lane: &Lane, err: &FetchError) {
    if let FetchError::RateLimited {
        retry_after: Some(wait),
        ..
    } = err
    {
        lane.pause_for(*wait);
    }
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
        assert_eq!((api.questions.len(), api.api.is_some()), (9, true));
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
        assert_eq!((html.questions.len(), html.api.is_none()), (15, true));
        // A JSON error wrapper is the API's error, not a truncated page.
        let err = read_saved("{\"error_id\": 502, \"error_name\": \"throttle_violation\", \"error_message\": \"too many requests\"}", &ctx, at)
            .unwrap_err();
        assert!(matches!(err, JobError::Api(_)), "{err}");
        assert!(!err.to_string().contains("truncated"), "{err}");
    }

    use super::*;
    use crate::config::Overrides;
    use crate::plan::Plan;

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
