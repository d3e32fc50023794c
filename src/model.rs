//! The typed records stackcrawl produces and the reports it gives about them.
//!
//! `Question` is the one record shape every source (HTML listing, later the
//! API) turns into, so exports and reports never care where a row came from.
//! Its field names are the JSONL keys and the CSV columns.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a page sits in the crawl: carried by every job, report and failure
/// so that nothing is ever anonymous.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PageContext {
    /// Host name of the site, e.g. `stackoverflow.com`.
    pub site: String,
    /// Scheme and host the relative links of the page resolve against.
    pub base_url: String,
    pub tag: String,
    pub tab: String,
    pub page: u32,
}

impl PageContext {
    /// The web archive this page is a capture of, if it is one: its tab
    /// then names the archive. Such a page is a sighting in the past, which
    /// the store keeps as an imported capture is kept (a snapshot per
    /// capture time; the latest state only if newer).
    pub fn archive(&self) -> Option<Archive> {
        Archive::ALL.into_iter().find(|a| a.as_str() == self.tab)
    }
}

/// Which web archive a page was captured by: an archive tag set's source,
/// and the `tab` its pages record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Archive {
    Wayback,
    CommonCrawl,
}

impl Archive {
    pub const ALL: [Archive; 2] = [Archive::Wayback, Archive::CommonCrawl];

    pub fn as_str(self) -> &'static str {
        match self {
            Archive::Wayback => "wayback",
            Archive::CommonCrawl => "commoncrawl",
        }
    }
}

/// Whether a listing shows the question open or with a closing marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QuestionStatus {
    #[default]
    Open,
    Closed,
    OnHold,
    Duplicate,
    Migrated,
    Deleted,
}

/// Stack Overflow lists ordinary questions and, since 2025, "Advice" posts
/// whose second stat is replies rather than answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PostKind {
    #[default]
    Question,
    Advice,
}

/// What the user a listing names did. Newest listings name the asker;
/// Active tabs and home pages name whoever acted last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorAction {
    Asked,
    Answered,
    Modified,
}

/// One question as a listing shows it, cleaned and typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub site: String,
    pub question_id: u64,
    /// Absolute URL of the question.
    pub url: String,
    /// Title with entities decoded and any `[closed]`-style suffix removed.
    pub title: String,
    pub excerpt: String,
    pub votes: i64,
    /// Answers; for an Advice post its replies are not answers, so 0.
    pub answers: u64,
    /// Replies of an Advice post, `None` for a question.
    pub replies: Option<u64>,
    pub views: u64,
    /// True when `views` came from an exact figure (a `title` attribute),
    /// false when it was decoded from abbreviated text such as "3.1m".
    pub views_exact: bool,
    pub tags: Vec<String>,
    pub has_accepted_answer: bool,
    /// The user as the listing shows them: a profile's name, a deleted or
    /// anonymous user's plain-text name, or a community-wiki post's
    /// revision summary ("22 revs, 18 users 14%"). `None` only when the
    /// listing shows no one.
    pub author_name: Option<String>,
    pub author_reputation: Option<u64>,
    pub asked_at: Option<DateTime<Utc>>,
    pub modified_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub bounty: Option<u32>,
    pub status: QuestionStatus,
    pub post_kind: PostKind,
    pub community_wiki: bool,
    // The crawl's own context.
    pub tag: String,
    pub tab: String,
    pub page: u32,
    pub fetched_at: DateTime<Utc>,
    // Added with schema 3; `default` keeps older JSONL readable.
    /// The profile id the name links to (`-1` is the Community user).
    #[serde(default)]
    pub author_user_id: Option<i64>,
    /// Whether the name links to a user profile: false for deleted and
    /// anonymous users and for a revision summary.
    #[serde(default)]
    pub author_has_profile: bool,
    /// What the named user did, when the listing says.
    #[serde(default)]
    pub author_action: Option<AuthorAction>,
}

/// A summary the cleaner could not turn into a `Question`, kept so that it
/// is counted and logged instead of silently dropped or made up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub question_id: Option<String>,
    pub reason: String,
}

/// A page read into records, whichever its source: what both pure readers
/// (`clean::clean_page`, `api::parse_api_page`) return and the cleaner hands
/// on to the aggregator.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    /// How the page was read: the listing markup's generation, e.g.
    /// `s-post-summary`, or the API version.
    pub layout: &'static str,
    pub questions: Vec<Question>,
    pub rejections: Vec<Rejection>,
    /// What the source said beyond its items (paging, its own quota, a
    /// pause it asked for); `None` for a source that says nothing more.
    pub signals: Option<Signals>,
    /// An HTML listing that refers to more questions than it yielded: what
    /// the parser saw, for the ERROR that says the layout may have changed.
    pub layout_drift: Option<String>,
}

/// What a source says of a page beyond its records, in the terms the
/// engine acts on: paging (whether the tag goes on), the source's own quota
/// (how much is left of it), and a pause it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signals {
    /// False ends the tag: there is no further page.
    pub has_more: bool,
    pub quota_remaining: Option<u64>,
    pub quota_max: Option<u64>,
    /// The pause the source asked for after this page, as it said it; the
    /// source's `pause_after` gives the pause to take.
    pub backoff: Option<Duration>,
}

/// One page as it completed: what the futures-style API yields.
#[derive(Debug, Clone)]
pub struct PageReport {
    pub ctx: PageContext,
    pub url: String,
    /// Questions on the page after cleaning.
    pub questions: usize,
    /// Questions already recorded earlier in the run (pushed down a page).
    pub duplicates: usize,
    pub rejected: usize,
    /// Attempts it took (1 when the first fetch succeeded).
    pub attempts: u32,
    /// Running total of views of the tag's questions recorded so far.
    pub tag_views_total: u64,
    /// The page's own time: from its request (once the quota let it go)
    /// to its records written.
    pub elapsed: Duration,
    /// Layout the parser detected, e.g. `s-post-summary`.
    pub layout: &'static str,
    /// Nothing further to page through for this tag: the page was empty, or
    /// (in an incremental pass) it held only questions already stored,
    /// unchanged.
    pub ends_tag: bool,
    /// With a store: questions stored for the first time, and stored ones
    /// whose figures changed.
    pub new: usize,
    pub updated: usize,
}

/// A page lost for this run, with the reason of its last attempt: what a
/// failed page's future resolves to, what the summary lists, and one line
/// of the failures file, so `--retry-failed` can fetch it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "FailureLine", from = "FailureLine")]
pub struct FailedPage {
    pub ctx: PageContext,
    /// Without the app key, like every URL a job carries.
    pub url: String,
    /// The requests made for the page this run: 0 for one never requested
    /// (`not_reached`; `interrupted` before its first request), else at
    /// least 1 (an `interrupted` page may have been requested, answered
    /// with a retryable error, and not retried as the crawl stopped).
    pub attempts: u32,
    /// A short name for what went wrong, e.g. `server_error`.
    pub kind: String,
    pub error: String,
}

impl fmt::Display for FailedPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} after {} attempts: {}",
            self.kind, self.attempts, self.error
        )
    }
}

/// A failures-file line. It stays flat and without the site fields, as
/// files written by earlier versions are: reading one back, those come from
/// the URL.
#[derive(Serialize, Deserialize)]
struct FailureLine {
    tag: String,
    tab: String,
    page: u32,
    url: String,
    attempts: u32,
    kind: String,
    error: String,
}

impl From<FailedPage> for FailureLine {
    fn from(f: FailedPage) -> Self {
        FailureLine {
            tag: f.ctx.tag,
            tab: f.ctx.tab,
            page: f.ctx.page,
            url: f.url,
            attempts: f.attempts,
            kind: f.kind,
            error: f.error,
        }
    }
}

impl From<FailureLine> for FailedPage {
    fn from(l: FailureLine) -> Self {
        let parsed = reqwest::Url::parse(&l.url).ok();
        FailedPage {
            ctx: PageContext {
                site: parsed
                    .as_ref()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default(),
                base_url: parsed
                    .as_ref()
                    .map(|u| format!("{}://{}", u.scheme(), u.authority()))
                    .unwrap_or_default(),
                tag: l.tag,
                tab: l.tab,
                page: l.page,
            },
            url: l.url,
            attempts: l.attempts,
            kind: l.kind,
            error: l.error,
        }
    }
}

/// Per-tag totals kept by the aggregator.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TagTotals {
    pub pages: u64,
    pub questions: u64,
    pub views: u64,
    pub votes: i64,
    pub answers: u64,
    pub unanswered: u64,
}

impl TagTotals {
    pub fn unanswered_share(&self) -> f64 {
        if self.questions == 0 {
            0.0
        } else {
            self.unanswered as f64 / self.questions as f64
        }
    }
}

/// What a run spent of a source that keeps a quota of its own (the Stack
/// Exchange API) and what the source said about it, for the status line
/// and the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QuotaUsage {
    /// Requests sent (every attempt: each costs one unit of quota).
    pub requests: u64,
    /// Responses that asked for a pause; each paused the source's lane.
    pub backoffs: u64,
    pub throttle_violations: u64,
    /// The API's latest figures, from the last response that had them.
    pub quota_remaining: Option<u64>,
    pub quota_max: Option<u64>,
    /// Set when the run stopped because the quota (nearly) ran out: when it
    /// is available again (the next UTC midnight, or the time a
    /// `throttle_violation` named).
    pub quota_resets_at: Option<DateTime<Utc>>,
}

/// How one run ended: what the final log line and `gather` give.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub pages_planned: u64,
    pub pages_done: u64,
    pub pages_failed: u64,
    pub pages_skipped: u64,
    pub questions: u64,
    pub duplicates_dropped: u64,
    pub rejected: u64,
    pub retries: u64,
    pub rate_limited: u64,
    pub requests: u64,
    pub per_tag: BTreeMap<String, TagTotals>,
    /// Pages lost after their retries.
    pub failures: Vec<FailedPage>,
    /// Requests left in today's budget for the host.
    pub budget_left: u64,
    /// Set when the run stopped because the daily budget ran out.
    pub budget_resets_at: Option<DateTime<Utc>>,
    pub wall_time: Duration,
    /// From the first request to the last: what [`RunSummary::request_rate`]
    /// is measured over.
    pub sending_time: Duration,
    /// Requests, pauses and quota of a source with a quota of its own (the
    /// Stack Exchange API), when the run used one.
    #[serde(rename = "api")]
    pub quota: Option<QuotaUsage>,
    /// A signal stopped the run before every page was reached.
    pub interrupted: bool,
}

impl RunSummary {
    /// Requests per second past the first `burst`, from the first request
    /// to the last: the figure to hold against the quota, which allows
    /// `burst` at once and then `rate` a second. Requests over the wall
    /// time would not do: 2 requests 0.2 s apart at a quota of 5/s, over
    /// the 0.26 s the crawl took, read as 7.6/s. `None` while the crawl
    /// sent no more than its burst, when there is no rate to speak of.
    pub fn request_rate(&self, burst: u32) -> Option<f64> {
        let paced = self.requests.checked_sub(u64::from(burst.max(1)))?;
        let secs = self.sending_time.as_secs_f64();
        (paced > 0 && secs > 0.0).then(|| paced as f64 / secs)
    }
}

/// The CSV row: `Question` flattened, since CSV has no lists. Shared with
/// the store's export so that both read alike.
#[derive(Serialize)]
pub(crate) struct CsvRow<'a> {
    site: &'a str,
    question_id: u64,
    url: &'a str,
    title: &'a str,
    excerpt: &'a str,
    votes: i64,
    answers: u64,
    replies: Option<u64>,
    views: u64,
    views_exact: bool,
    tags: String,
    has_accepted_answer: bool,
    author_name: Option<&'a str>,
    author_reputation: Option<u64>,
    asked_at: Option<String>,
    modified_at: Option<String>,
    answered_at: Option<String>,
    bounty: Option<u32>,
    status: crate::model::QuestionStatus,
    post_kind: crate::model::PostKind,
    community_wiki: bool,
    tag: &'a str,
    tab: &'a str,
    page: u32,
    fetched_at: String,
    author_user_id: Option<i64>,
    author_has_profile: bool,
    author_action: Option<AuthorAction>,
}

/// A time in CSV exactly as in JSONL (chrono's serde form: RFC 3339 in UTC
/// with `Z`, fractional seconds only when there are any), so the two
/// outputs of one crawl compare equal as text.
pub(crate) fn csv_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl<'a> From<&'a Question> for CsvRow<'a> {
    fn from(q: &'a Question) -> Self {
        let ts = |t: &Option<chrono::DateTime<chrono::Utc>>| t.as_ref().map(csv_time);
        CsvRow {
            site: &q.site,
            question_id: q.question_id,
            url: &q.url,
            title: &q.title,
            excerpt: &q.excerpt,
            votes: q.votes,
            answers: q.answers,
            replies: q.replies,
            views: q.views,
            views_exact: q.views_exact,
            tags: q.tags.join(";"),
            has_accepted_answer: q.has_accepted_answer,
            author_name: q.author_name.as_deref(),
            author_reputation: q.author_reputation,
            asked_at: ts(&q.asked_at),
            modified_at: ts(&q.modified_at),
            answered_at: ts(&q.answered_at),
            bounty: q.bounty,
            status: q.status,
            post_kind: q.post_kind,
            community_wiki: q.community_wiki,
            tag: &q.tag,
            tab: &q.tab,
            page: q.page,
            fetched_at: csv_time(&q.fetched_at),
            author_user_id: q.author_user_id,
            author_has_profile: q.author_has_profile,
            author_action: q.author_action,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_rate_leaves_out_the_burst_and_needs_requests_past_it() {
        let run = |requests, millis| RunSummary {
            requests,
            sending_time: Duration::from_millis(millis),
            // What the rate once was measured over: not used.
            wall_time: Duration::from_millis(260),
            ..RunSummary::default()
        };
        // Two requests 0.2 s apart at 5/s with a burst of 1: 5/s, not 7.6.
        assert_eq!(run(2, 200).request_rate(1), Some(5.0));
        // A burst of 3 sent at once, then 2 more at 5/s.
        assert_eq!(run(5, 400).request_rate(3), Some(5.0));
        assert_eq!(run(3, 0).request_rate(3), None);
        assert_eq!(run(1, 0).request_rate(1), None);
        assert_eq!(run(0, 0).request_rate(0), None);
    }

    #[test]
    fn only_a_page_whose_tab_names_an_archive_is_a_capture() {
        let page = |tab: &str| PageContext {
            site: "stackoverflow.com".into(),
            base_url: "https://stackoverflow.com".into(),
            tag: "rust".into(),
            tab: tab.into(),
            page: 1,
        };
        assert_eq!(page("wayback").archive(), Some(Archive::Wayback));
        assert_eq!(page("commoncrawl").archive(), Some(Archive::CommonCrawl));
        for live in ["Newest", "creation", "", "Wayback"] {
            assert_eq!(page(live).archive(), None, "{live:?}");
        }
    }
}
