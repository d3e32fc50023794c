//! The Stack Exchange API 2.3 `/questions` source, as pure code: an
//! [`ApiQuery`] in, a request URL out ([`api_url`]); a response body in, typed
//! [`Question`]s, counted [`Rejection`]s and the wrapper's paging and quota
//! fields out ([`parse_api_page`]); an error body in, a classified
//! [`ApiError`] out ([`parse_api_error`]). No actix, no I/O.
//!
//! Records come out in exactly the shape the HTML source gives, so the store,
//! exports and reports never care where a row came from; the API's figures are
//! exact, so `views_exact` is always true.
//!
//! Politeness, as the API documents it:
//! - `backoff: N` in a wrapper means no further request to the same method for
//!   N seconds; [`throttle_pause`] turns that into the pause to take.
//! - Errors come as HTTP 400 (or another status) with
//!   `{"error_id", "error_name", "error_message"}` in the body. Fatal ones
//!   stop the crawl and are never retried ([`ApiError::is_fatal`]); a 502
//!   `throttle_violation` pauses the whole pool for [`ApiError::pause`].
//! - The app key raises the daily quota but must never be logged: URLs are
//!   built without it and [`with_key`] adds it only for the request itself;
//!   anything that may quote a keyed URL (an error body) goes through
//!   [`redact_key`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{ApiSort, MAX_PAGESIZE};
use crate::model::{
    AuthorAction, Listing, PageContext, PostKind, Question, QuestionStatus, Rejection, Signals,
};
use crate::source::html::parse::collapse;

mod error;
pub use error::{available_in, parse_api_error, ApiError};
use error::{error_from_wrapper, snippet};

/// An excerpt made from a question body is cut to this many characters,
/// about what a tag listing shows.
pub const EXCERPT_MAX_CHARS: usize = 200;

/// One `/questions` request: a page of one tag on one site. It has no app
/// key: [`with_key`] adds that right before sending, so no query, job or
/// plan can print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiQuery {
    pub tag: String,
    pub sort: ApiSort,
    /// 1-based.
    pub page: u32,
    /// At most [`MAX_PAGESIZE`].
    pub pagesize: u32,
    /// The API's name for the site: `stackoverflow`, `serverfault`, ...
    pub site: String,
    pub filter: Option<String>,
}

/// Everything but the unreserved characters is escaped, so tags such as
/// `c++` and `c#` and keys full of `*` and `(` reach the API unchanged.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// `{api_base}/2.3/questions?tagged=T&site=S&sort=creation&order=desc&page=N&pagesize=100[&filter=F]`.
///
/// `page` and `pagesize` are clamped to what the API accepts (config
/// validation should already have refused worse): a `bad_parameter` error
/// would be fatal and still cost a unit of quota.
pub fn api_url(api_base: &str, q: &ApiQuery) -> String {
    let base = api_base.trim().trim_end_matches('/');
    let mut url = format!(
        "{base}/2.3/questions?tagged={}&site={}&sort={}&order=desc&page={}&pagesize={}",
        enc(&q.tag),
        enc(&q.site),
        q.sort.as_str(),
        q.page.max(1),
        q.pagesize.clamp(1, MAX_PAGESIZE),
    );
    if let Some(filter) = q.filter.as_deref().filter(|f| !f.is_empty()) {
        url.push_str("&filter=");
        url.push_str(&enc(filter));
    }
    url
}

/// `url` (built by [`api_url`] without a key) with the app key added. The
/// fetcher calls this right before the request, so the keyed URL is never
/// stored, logged or written anywhere.
pub fn with_key(url: &str, key: &str) -> String {
    if key.is_empty() {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}key={}", enc(key))
}

const REDACTED: &str = "REDACTED";

/// Query parameters whose values are secrets.
const SECRET_PARAMS: [&str; 2] = ["key", "access_token"];

/// The URL (or any text quoting one) with the value of every `key=` and
/// `access_token=` parameter replaced by `REDACTED`, for logs and errors.
/// `monkey=` and the like are left alone.
pub fn redact_key(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    let mut prev: Option<char> = None;
    'scan: while !rest.is_empty() {
        if prev.is_none_or(|c| !is_name_char(c)) {
            for name in SECRET_PARAMS {
                let Some((head, tail)) = rest.split_at_checked(name.len()) else {
                    continue;
                };
                let Some(value) = tail.strip_prefix('=') else {
                    continue;
                };
                if !head.eq_ignore_ascii_case(name) {
                    continue;
                }
                let end = value.find(ends_value).unwrap_or(value.len());
                out.push_str(head);
                out.push('=');
                out.push_str(REDACTED);
                rest = value.get(end..).unwrap_or("");
                prev = Some('=');
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
            prev = Some(c);
        }
        rest = chars.as_str();
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// A raw key may hold `*`, `(` and `)`; only these end a value.
fn ends_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, '&' | '#' | '"' | '\'' | '<' | '>')
}

/// The `layout` an API page reports.
pub const API_LAYOUT: &str = "api-2.3";

/// The pause a `backoff` asks for. The API says "wait at least N seconds";
/// its N is whole seconds and our clock is not its clock, so one second is
/// added to be safe.
pub fn throttle_pause(backoff: Option<Duration>) -> Option<Duration> {
    backoff.map(|b| b.saturating_add(Duration::from_secs(1)))
}

/// Reads one page of `/questions`. An item that cannot be typed is a counted
/// [`Rejection`]; only a body that is not a wrapper at all, or a wrapper
/// carrying an error, is an `Err`.
///
/// A wrapper without `has_more` reads as `false`: stopping a tag early costs
/// records, paging on blindly costs quota.
pub fn parse_api_page(
    body: &str,
    ctx: &PageContext,
    fetched_at: DateTime<Utc>,
) -> Result<Listing, ApiError> {
    let map = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(ApiError::Malformed(format!(
                "not a JSON object: {}",
                snippet(body)
            )))
        }
        Err(e) => {
            return Err(ApiError::Malformed(format!(
                "not JSON ({e}): {}",
                snippet(body)
            )))
        }
    };
    if let Some(err) = error_from_wrapper(200, &map) {
        return Err(err);
    }
    let items = match map.get("items") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::Malformed("`items` is not an array".into())),
        None => return Err(ApiError::Malformed("no `items` in the wrapper".into())),
    };
    let mut page = Listing {
        layout: API_LAYOUT,
        signals: Some(Signals {
            has_more: map
                .get("has_more")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            quota_remaining: map.get("quota_remaining").and_then(Value::as_u64),
            quota_max: map.get("quota_max").and_then(Value::as_u64),
            backoff: map.get("backoff").and_then(whole_seconds),
        }),
        ..Listing::default()
    };
    for item in items {
        match question_from_item(item, ctx, fetched_at) {
            Ok(q) => page.questions.push(q),
            Err(reason) => page.rejections.push(Rejection {
                question_id: raw_id(item),
                reason,
            }),
        }
    }
    Ok(page)
}

/// `backoff` is documented as whole seconds; a fraction is rounded up so
/// that we never come back early.
fn whole_seconds(v: &Value) -> Option<Duration> {
    if let Some(secs) = v.as_u64() {
        return Some(Duration::from_secs(secs));
    }
    let secs = v.as_f64().filter(|s| s.is_finite() && *s >= 0.0)?;
    Duration::try_from_secs_f64(secs.ceil()).ok()
}

/// The item's id as it was sent, for a rejection.
fn raw_id(item: &Value) -> Option<String> {
    match item.get("question_id")? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The fields of a question we read. Unknown fields are ignored: the API
/// adds some over time (`content_license`), and filters add others.
#[derive(Debug, Deserialize)]
struct RawItem {
    question_id: Option<u64>,
    title: Option<String>,
    link: Option<String>,
    tags: Option<Vec<String>>,
    score: Option<i64>,
    view_count: Option<u64>,
    answer_count: Option<u64>,
    accepted_answer_id: Option<u64>,
    owner: Option<RawOwner>,
    creation_date: Option<i64>,
    last_activity_date: Option<i64>,
    bounty_amount: Option<u32>,
    closed_date: Option<i64>,
    closed_reason: Option<String>,
    community_owned_date: Option<i64>,
    migrated_to: Option<Value>,
    body: Option<String>,
    body_markdown: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawOwner {
    user_id: Option<i64>,
    display_name: Option<String>,
    reputation: Option<u64>,
    user_type: Option<String>,
}

/// Types one item, or says why it cannot be trusted. As in the HTML source,
/// a missing count is a rejection, never a made-up zero.
fn question_from_item(
    item: &Value,
    ctx: &PageContext,
    fetched_at: DateTime<Utc>,
) -> Result<Question, String> {
    let raw = RawItem::deserialize(item).map_err(|e| format!("unreadable item: {e}"))?;
    let question_id = raw
        .question_id
        .filter(|id| *id > 0)
        .ok_or_else(|| "missing question_id".to_owned())?;
    let title = raw
        .title
        .as_deref()
        .map(|t| collapse(&decode_entities(t)))
        .unwrap_or_default();
    if title.is_empty() {
        return Err("missing title".into());
    }
    let votes = raw.score.ok_or("missing score")?;
    let answers = raw.answer_count.ok_or("missing answer_count")?;
    let views = raw.view_count.ok_or("missing view_count")?;

    let community_wiki = raw.community_owned_date.is_some();
    // A community-wiki post shows no author on a listing; a deleted user's
    // old name is no longer an author either.
    let (author_name, author_reputation, author_user_id) = match &raw.owner {
        Some(owner) if !community_wiki && owner.user_type.as_deref() != Some("does_not_exist") => {
            let name = owner
                .display_name
                .as_deref()
                .map(|n| collapse(&decode_entities(n)))
                .filter(|n| !n.is_empty());
            let rep = name.as_ref().and(owner.reputation);
            let id = name.as_ref().and(owner.user_id);
            (name, rep, id)
        }
        _ => (None, None, None),
    };

    // The API's owner is the asker.
    let author_action = author_name.as_ref().map(|_| AuthorAction::Asked);

    let url = raw
        .link
        .as_deref()
        .map(str::trim)
        .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
        .map_or_else(
            || format!("https://{}/questions/{question_id}", ctx.site),
            str::to_owned,
        );

    let excerpt = match (&raw.body, &raw.body_markdown) {
        (Some(html), _) => excerpt_of(&strip_tags(html)),
        (None, Some(markdown)) => excerpt_of(&decode_entities(markdown)),
        (None, None) => String::new(),
    };

    Ok(Question {
        site: ctx.site.clone(),
        question_id,
        url,
        title,
        excerpt,
        votes,
        answers,
        replies: None,
        views,
        views_exact: true,
        tags: raw
            .tags
            .iter()
            .flatten()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        has_accepted_answer: raw.accepted_answer_id.is_some(),
        author_name,
        author_reputation,
        asked_at: raw.creation_date.and_then(unix_time),
        modified_at: raw.last_activity_date.and_then(unix_time),
        answered_at: None,
        bounty: raw.bounty_amount.filter(|b| *b > 0),
        status: status_of(&raw),
        post_kind: PostKind::Question,
        community_wiki,
        tag: ctx.tag.clone(),
        tab: ctx.tab.clone(),
        page: ctx.page,
        fetched_at,
        author_has_profile: author_user_id.is_some(),
        author_action,
        author_user_id,
    })
}

/// Listings mark duplicates, migrations and closures; the API says the same
/// with `closed_reason` ("duplicate", or "exact duplicate" in older data),
/// `migrated_to` and `closed_date`.
fn status_of(raw: &RawItem) -> QuestionStatus {
    let reason = raw
        .closed_reason
        .as_deref()
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if reason.contains("duplicate") {
        QuestionStatus::Duplicate
    } else if raw.migrated_to.is_some() || reason.contains("migrated") {
        QuestionStatus::Migrated
    } else if raw.closed_date.is_some() || raw.closed_reason.is_some() {
        QuestionStatus::Closed
    } else {
        QuestionStatus::Open
    }
}

fn unix_time(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

/// At most [`EXCERPT_MAX_CHARS`] characters of plain text, cut at a word
/// boundary and marked with `…` when cut.
fn excerpt_of(text: &str) -> String {
    let flat = collapse(text);
    if flat.chars().count() <= EXCERPT_MAX_CHARS {
        return flat;
    }
    let head: String = flat.chars().take(EXCERPT_MAX_CHARS - 1).collect();
    let cut = match head.rfind(' ') {
        Some(space) if space > head.len() / 2 => head.get(..space).unwrap_or(&head),
        _ => head.as_str(),
    };
    let mut out = cut.trim_end().to_owned();
    out.push('…');
    out
}

/// Inline elements join the text around them; any other tag separates words.
const INLINE_TAGS: [&str; 16] = [
    "a", "abbr", "b", "code", "del", "em", "i", "kbd", "mark", "s", "span", "strike", "strong",
    "sub", "sup", "u",
];

/// The text of an HTML fragment (a question `body`), entities decoded.
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some((before, after)) = rest.split_once('<') {
        text.push_str(before);
        let Some((tag, tail)) = after.split_once('>') else {
            // An unclosed `<` is text, as a browser shows it.
            text.push('<');
            rest = after;
            continue;
        };
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if !INLINE_TAGS.contains(&name.as_str()) {
            text.push(' ');
        }
        rest = tail;
    }
    text.push_str(rest);
    decode_entities(&text)
}

/// Decodes HTML character references: `&amp;`-style names (the common ones)
/// and numeric `&#39;` / `&#x27;`. Unknown names and malformed references are
/// kept as written; a numeric one that is no character becomes U+FFFD. One
/// pass only, so `&amp;lt;` becomes `&lt;`, as a browser shows it.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some((before, after)) = rest.split_once('&') {
        out.push_str(before);
        match decode_reference(after) {
            Some((c, tail)) => {
                out.push(c);
                rest = tail;
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The longest reference we decode is `&#x10FFFF;`; named ones are shorter.
const MAX_REFERENCE_LEN: usize = 10;

/// The character of the reference `after` starts with (the text after an
/// `&`), and the text after its `;`.
fn decode_reference(after: &str) -> Option<(char, &str)> {
    let (name, tail) = after.split_once(';')?;
    if name.is_empty() || name.len() > MAX_REFERENCE_LEN {
        return None;
    }
    let c = match name.strip_prefix('#') {
        Some(num) => {
            let (digits, radix) = match num.strip_prefix(['x', 'X']) {
                Some(hex) => (hex, 16),
                None => (num, 10),
            };
            // from_str_radix would also take a leading `+`.
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            u32::from_str_radix(digits, radix)
                .ok()
                .filter(|n| *n != 0)
                .and_then(char::from_u32)
                .unwrap_or(char::REPLACEMENT_CHARACTER)
        }
        None => named_entity(name)?,
    };
    Some((c, tail))
}

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "times" => '×',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "para" => '¶',
        "shy" => '\u{ad}',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{UnknownSort, DEFAULT_API_BASE, THROTTLE_VIOLATION_MIN_PAUSE};
    use chrono::TimeZone;

    const PHP_2017: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/se-api/questions-search-php-2017.json"
    );
    const GOSO_2024: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/se-api/questions-withbody-goso-2024.json"
    );

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(path).expect("fixture file")
    }

    fn ctx(tag: &str) -> PageContext {
        PageContext {
            site: "stackoverflow.com".into(),
            base_url: "https://stackoverflow.com".into(),
            tag: tag.into(),
            tab: "creation".into(),
            page: 1,
        }
    }

    fn fetched() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap())
    }

    fn parse(path: &str, tag: &str) -> Listing {
        parse_api_page(&fixture(path), &ctx(tag), fetched()).expect("fixture parses")
    }

    fn wrapper(page: &Listing) -> Signals {
        page.signals.expect("an API page has a wrapper")
    }

    fn query(tag: &str) -> ApiQuery {
        ApiQuery {
            tag: tag.into(),
            sort: ApiSort::Creation,
            page: 1,
            pagesize: 100,
            site: "stackoverflow".into(),
            filter: None,
        }
    }

    // Expected values below were read off the fixture JSON by hand; dates
    // were converted with `date -u -d @SECONDS`.

    #[test]
    fn fixture_php_2017_wrapper() {
        let page = parse(PHP_2017, "php");
        assert_eq!(page.questions.len(), 9);
        assert!(page.rejections.is_empty());
        assert!(!wrapper(&page).has_more);
        assert_eq!(wrapper(&page).quota_max, Some(300));
        assert_eq!(wrapper(&page).quota_remaining, Some(299));
        assert_eq!(wrapper(&page).backoff, None);
    }

    #[test]
    fn fixture_php_2017_first_item() {
        let page = parse(PHP_2017, "php");
        let q = &page.questions[0];
        assert_eq!(q.question_id, 9401019);
        assert_eq!(q.title, "Writing merge sort in PHP");
        assert_eq!(
            q.url,
            "https://stackoverflow.com/questions/9401019/writing-merge-sort-in-php"
        );
        assert_eq!(q.votes, 2);
        assert_eq!(q.views, 9109);
        assert!(q.views_exact);
        assert_eq!(q.answers, 5);
        assert_eq!(q.replies, None);
        assert!(q.has_accepted_answer);
        assert_eq!(q.author_name.as_deref(), Some("jweb"));
        assert_eq!(q.author_reputation, Some(15));
        assert_eq!(q.tags, ["php", "sorting", "mergesort"]);
        assert_eq!(q.asked_at, utc(2012, 2, 22, 18, 45, 43));
        assert_eq!(q.status, QuestionStatus::Open);
        assert_eq!(q.excerpt, "");
        assert_eq!(q.bounty, None);
        assert!(!q.community_wiki);
        assert_eq!(q.post_kind, PostKind::Question);
        assert_eq!(q.site, "stackoverflow.com");
        assert_eq!(
            (q.tag.as_str(), q.tab.as_str(), q.page),
            ("php", "creation", 1)
        );
        assert_eq!(q.fetched_at, fetched());
    }

    #[test]
    fn fixture_php_2017_last_item() {
        let page = parse(PHP_2017, "php");
        let q = page.questions.last().unwrap();
        assert_eq!(q.question_id, 43169004);
        assert_eq!(q.title, "PHP merge sort not working");
        assert_eq!(q.votes, -1);
        assert_eq!(q.views, 25);
        assert_eq!(q.answers, 1);
        assert!(q.has_accepted_answer);
        assert_eq!(q.author_name.as_deref(), Some("BeMu"));
        assert_eq!(q.author_reputation, Some(3));
        assert_eq!(q.asked_at, utc(2017, 4, 2, 13, 39, 50));
    }

    #[test]
    fn fixture_php_2017_middle_items() {
        let page = parse(PHP_2017, "php");
        // Item 2: no accepted_answer_id, an unregistered owner.
        let q = &page.questions[1];
        assert_eq!(q.question_id, 1975520);
        assert!(!q.has_accepted_answer);
        assert_eq!(q.author_name.as_deref(), Some("lordlinier"));
        assert_eq!(q.author_reputation, Some(28));
        // Item 7 is tagged c++.
        assert_eq!(page.questions[6].tags, ["php", "c++", "sorting"]);
        // Item 8's title is sent as "PHP Merge &amp; Sort ...".
        assert_eq!(
            page.questions[7].title,
            "PHP Merge & Sort Several Different Arrays of Objects"
        );
    }

    #[test]
    fn fixture_goso_2024_wrapper() {
        let page = parse(GOSO_2024, "c");
        assert_eq!(page.questions.len(), 10);
        assert!(page.rejections.is_empty());
        assert!(!wrapper(&page).has_more);
        assert_eq!(wrapper(&page).quota_max, Some(300));
        assert_eq!(wrapper(&page).quota_remaining, Some(292));
    }

    #[test]
    fn fixture_goso_2024_first_item() {
        let page = parse(GOSO_2024, "c");
        let q = &page.questions[0];
        assert_eq!(q.question_id, 10468128);
        assert_eq!(q.title, "How do you make an array of structs in C?");
        assert_eq!(q.votes, 141);
        assert_eq!(q.views, 773527);
        assert_eq!(q.answers, 10);
        assert!(q.has_accepted_answer);
        assert_eq!(q.author_name.as_deref(), Some("Amndeep7"));
        assert_eq!(q.author_reputation, Some(2091));
        assert_eq!(q.asked_at, utc(2012, 5, 6, 4, 35, 23));
        assert_eq!(q.modified_at, utc(2024, 4, 4, 5, 2, 46));
        // The body is long: the excerpt is its plain-text start, cut short.
        assert!(q.excerpt.starts_with(
            "I'm trying to make an array of structs where each struct represents a \
             celestial body. I don't have that much experience with structs,"
        ));
        assert!(q.excerpt.chars().count() <= EXCERPT_MAX_CHARS);
        assert!(q.excerpt.ends_with('…'));
        assert!(!q.excerpt.contains('<'));
    }

    #[test]
    fn fixture_goso_2024_last_item() {
        let page = parse(GOSO_2024, "c");
        let q = page.questions.last().unwrap();
        assert_eq!(q.question_id, 16091848);
        assert_eq!(
            q.title,
            "Making an Array to Hold Arrays of Character Arrays in C"
        );
        assert_eq!(q.votes, 15);
        assert_eq!(q.views, 90040);
        assert_eq!(q.answers, 5);
        assert!(q.has_accepted_answer);
        assert_eq!(q.author_name.as_deref(), Some("Daemeo"));
        assert_eq!(q.author_reputation, Some(405));
        assert_eq!(q.asked_at, utc(2013, 4, 18, 19, 50, 49));
    }

    #[test]
    fn fixture_goso_2024_deleted_owner_closed_and_quoted_title() {
        let page = parse(GOSO_2024, "c");
        // Item 3: owner {"user_type": "does_not_exist", "display_name": "Charles"}.
        let q = &page.questions[2];
        assert_eq!(q.question_id, 1088622);
        assert_eq!(q.author_name, None);
        assert_eq!(q.author_reputation, None);
        assert!(!q.has_accepted_answer);
        assert_eq!(
            q.excerpt,
            "I am trying to create an array of strings in C. If I use this code: \
             char (*a[2])[14]; a[0]=\"blah\"; a[1]=\"hmm\"; gcc gives me \"warning: \
             assignment from incompatible pointer type\". What is the correct…"
        );
        // Item 8: closed_reason "exact duplicate".
        let q = &page.questions[7];
        assert_eq!(q.question_id, 15161774);
        assert_eq!(q.status, QuestionStatus::Duplicate);
        // Item 9's title is sent as "fixed-length &quot;strings&quot; in C?".
        assert_eq!(
            page.questions[8].title,
            "How to create array of fixed-length \"strings\" in C?"
        );
        let open = page
            .questions
            .iter()
            .filter(|q| q.status == QuestionStatus::Open)
            .count();
        assert_eq!(open, 9);
    }

    #[test]
    fn wrapper_backoff_is_read_and_padded() {
        let body = r#"{"items": [], "has_more": true, "quota_max": 10000,
                       "quota_remaining": 9876, "backoff": 10}"#;
        let page = parse_api_page(body, &ctx("rust"), fetched()).unwrap();
        assert!(wrapper(&page).has_more);
        assert_eq!(wrapper(&page).quota_max, Some(10_000));
        assert_eq!(wrapper(&page).quota_remaining, Some(9_876));
        assert_eq!(wrapper(&page).backoff, Some(Duration::from_secs(10)));
        assert_eq!(
            throttle_pause(wrapper(&page).backoff),
            Some(Duration::from_secs(11))
        );
        assert_eq!(throttle_pause(None), None);
        assert_eq!(
            throttle_pause(Some(Duration::MAX)),
            Some(Duration::MAX),
            "saturates rather than overflowing"
        );
    }

    #[test]
    fn item_fields_closed_bounty_wiki_migrated() {
        let body = r#"{"items": [
            {"question_id": 1, "title": "a", "score": 0, "answer_count": 0, "view_count": 1,
             "bounty_amount": 50, "closed_date": 1, "closed_reason": "Needs more focus"},
            {"question_id": 2, "title": "b", "score": 0, "answer_count": 0, "view_count": 1,
             "closed_reason": "Duplicate"},
            {"question_id": 3, "title": "c", "score": 0, "answer_count": 0, "view_count": 1,
             "community_owned_date": 5, "owner": {"display_name": "x", "reputation": 9,
             "user_type": "registered"}},
            {"question_id": 4, "title": "d", "score": 0, "answer_count": 0, "view_count": 1,
             "migrated_to": {"other_site": {}}, "closed_date": 1},
            {"question_id": 5, "title": "e", "score": 0, "answer_count": 0, "view_count": 1,
             "body_markdown": "Use `a &amp;&amp; b`\n\nplease"}
        ], "has_more": false}"#;
        let page = parse_api_page(body, &ctx("rust"), fetched()).unwrap();
        let q = &page.questions;
        assert_eq!(q.len(), 5);
        assert_eq!(q[0].bounty, Some(50));
        assert_eq!(q[0].status, QuestionStatus::Closed);
        assert_eq!(q[1].status, QuestionStatus::Duplicate);
        assert!(q[2].community_wiki);
        assert_eq!(
            (q[2].author_name.clone(), q[2].author_reputation),
            (None, None)
        );
        assert_eq!(q[3].status, QuestionStatus::Migrated);
        assert_eq!(q[4].excerpt, "Use `a && b` please");
        // No link: the question's canonical address on the site.
        assert_eq!(q[0].url, "https://stackoverflow.com/questions/1");
    }

    #[test]
    fn items_that_cannot_be_typed_are_counted_rejections() {
        let body = r#"{"items": [
            {"title": "no id", "score": 1, "answer_count": 0, "view_count": 1},
            {"question_id": "abc", "title": "t", "score": 1, "answer_count": 0, "view_count": 1},
            {"question_id": 7, "title": "t", "score": "high", "answer_count": 0, "view_count": 1},
            {"question_id": 8, "title": "t", "answer_count": 0, "view_count": 1},
            {"question_id": 9, "title": "t", "score": 1, "answer_count": 0, "view_count": -3},
            {"question_id": 10, "title": "  ", "score": 1, "answer_count": 0, "view_count": 1},
            {"question_id": 11, "title": "t", "score": 1, "answer_count": 0, "view_count": 1,
             "owner": "nobody"},
            42,
            null,
            {"question_id": 12, "title": "fine", "score": 1, "answer_count": 0, "view_count": 1}
        ], "has_more": false}"#;
        let page = parse_api_page(body, &ctx("rust"), fetched()).unwrap();
        assert_eq!(page.questions.len(), 1);
        assert_eq!(page.questions[0].question_id, 12);
        let ids: Vec<Option<&str>> = page
            .rejections
            .iter()
            .map(|r| r.question_id.as_deref())
            .collect();
        assert_eq!(
            ids,
            [
                None,
                Some("abc"),
                Some("7"),
                Some("8"),
                Some("9"),
                Some("10"),
                Some("11"),
                None,
                None
            ]
        );
        assert_eq!(page.rejections[0].reason, "missing question_id");
        assert_eq!(page.rejections[3].reason, "missing score");
        assert_eq!(page.rejections[5].reason, "missing title");
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let fixture = fixture(GOSO_2024);
        let truncated = String::from_utf8_lossy(&fixture.as_bytes()[..fixture.len() / 2]);
        for body in [
            "",
            "   ",
            "{}",
            "[]",
            "null",
            "42",
            "\"items\"",
            r#"{"items": "none"}"#,
            r#"{"items": {}}"#,
            "<!DOCTYPE html><html><body>Cloudflare</body></html>",
            &truncated,
            "{\"items\": [",
            "\u{0}\u{1}\u{2}",
        ] {
            let err = parse_api_page(body, &ctx("c"), fetched()).unwrap_err();
            assert!(matches!(err, ApiError::Malformed(_)), "{body:?} -> {err:?}");
            assert!(err.is_retryable());
        }
        // Wrong types in the wrapper's own fields are read as absent.
        let odd = r#"{"items": [], "has_more": "yes", "quota_remaining": -1, "backoff": "x"}"#;
        let page = parse_api_page(odd, &ctx("c"), fetched()).unwrap();
        assert_eq!(page.signals, Some(Signals::default()));
        assert!(page.questions.is_empty() && page.rejections.is_empty());
        // Deep nesting hits serde_json's recursion limit, not the stack.
        let deep = "[".repeat(100_000);
        assert!(parse_api_page(&deep, &ctx("c"), fetched()).is_err());
        assert!(matches!(
            parse_api_error(400, &deep),
            ApiError::Malformed(_)
        ));
    }

    #[test]
    fn an_error_wrapper_in_a_200_is_still_an_error() {
        let body = r#"{"error_id": 502, "error_name": "throttle_violation",
                       "error_message": "too many requests from this IP, more requests available in 82216 seconds"}"#;
        let err = parse_api_page(body, &ctx("c"), fetched()).unwrap_err();
        assert!(matches!(err, ApiError::ThrottleViolation { .. }));
        assert_eq!(
            err.pause(THROTTLE_VIOLATION_MIN_PAUSE),
            Some(Duration::from_secs(82217)),
            "the message's figure plus one second"
        );
    }

    fn error_body(id: u64, name: &str) -> String {
        format!(r#"{{"error_id": {id}, "error_name": "{name}", "error_message": "m"}}"#)
    }

    #[test]
    fn every_documented_error_id_is_classified() {
        // (id, name, fatal, retryable)
        let table = [
            (400, "bad_parameter", true, false),
            (401, "access_token_required", true, false),
            (402, "invalid_access_token", true, false),
            (403, "access_denied", true, false),
            (404, "no_method", true, false),
            (405, "key_required", true, false),
            (406, "access_token_compromised", true, false),
            (407, "write_failed", false, false),
            (409, "duplicate_request", false, true),
            (500, "internal_error", false, true),
            (502, "throttle_violation", false, true),
            (503, "temporarily_unavailable", false, true),
        ];
        for (id, name, fatal, retryable) in table {
            let err = parse_api_error(400, &error_body(id, name));
            assert_eq!(err.error_id(), Some(id), "{name}");
            assert_eq!(err.kind(), name);
            assert_eq!(err.is_fatal(), fatal, "{name} fatal");
            assert_eq!(err.is_retryable(), retryable, "{name} retryable");
            assert_eq!(
                err.pause(Duration::ZERO).is_some(),
                id == 502,
                "{name} pauses the pool"
            );
            assert!(!(err.is_fatal() && err.is_retryable()));
            assert!(err.to_string().contains(name));
        }
        let err = parse_api_error(400, &error_body(400, "bad_parameter"));
        assert_eq!(
            err,
            ApiError::BadParameter {
                message: "m".into()
            }
        );
    }

    #[test]
    fn errors_without_an_id_or_with_an_unknown_one() {
        // The name stands in for a missing id.
        let err = parse_api_error(400, r#"{"error_name": "key_required"}"#);
        assert!(matches!(err, ApiError::KeyRequired { .. }));
        let err = parse_api_error(503, &error_body(599, "new_thing"));
        assert_eq!(
            err,
            ApiError::Other {
                status: 503,
                error_id: 599,
                error_name: "new_thing".into(),
                message: "m".into()
            }
        );
        assert!(err.is_retryable() && !err.is_fatal());
        assert!(!parse_api_error(400, &error_body(599, "x")).is_retryable());
        for (status, body) in [
            (400, ""),
            (400, "{}"),
            (400, "[]"),
            (502, "<html>Bad Gateway</html>"),
            (400, r#"{"error_id": 4"#),
        ] {
            let err = parse_api_error(status, body);
            assert!(matches!(err, ApiError::Malformed(_)), "{body:?} -> {err:?}");
            assert!(err.to_string().contains(&format!("HTTP {status}")));
        }
    }

    #[test]
    fn throttle_violation_pauses_longer() {
        let body = r#"{"error_id":502,"error_message":"too many requests from this IP, more requests available in 46472 seconds","error_name":"throttle_violation"}"#;
        let err = parse_api_error(400, body);
        assert_eq!(
            err,
            ApiError::ThrottleViolation {
                message: "too many requests from this IP, more requests available in 46472 seconds"
                    .into(),
                available_in: Some(Duration::from_secs(46472)),
            }
        );
        assert_eq!(
            err.pause(THROTTLE_VIOLATION_MIN_PAUSE),
            Some(Duration::from_secs(46473))
        );
        // Without a figure, or with a small one, the minimum pause holds.
        let err = parse_api_error(400, &error_body(502, "throttle_violation"));
        assert_eq!(
            err.pause(THROTTLE_VIOLATION_MIN_PAUSE),
            Some(THROTTLE_VIOLATION_MIN_PAUSE)
        );
        assert_eq!(
            available_in("more requests available in 3 seconds"),
            Some(Duration::from_secs(3))
        );
        assert_eq!(available_in("available in soon seconds"), None);
        assert_eq!(available_in("available in 5 minutes"), None);
        assert_eq!(
            parse_api_error(400, &error_body(500, "internal_error"))
                .pause(THROTTLE_VIOLATION_MIN_PAUSE),
            None
        );
    }

    #[test]
    fn error_messages_are_decoded_and_keys_redacted() {
        let body = r#"{"error_id": 400, "error_name": "bad_parameter",
                       "error_message": "key=S3cr3t(( is not valid &amp; was refused"}"#;
        let err = parse_api_error(400, body);
        assert_eq!(
            err,
            ApiError::BadParameter {
                message: "key=REDACTED is not valid & was refused".into()
            }
        );
        let err = parse_api_error(
            502,
            "<html>GET /2.3/questions?site=so&key=S3cr3t(( failed</html>",
        );
        assert!(!err.to_string().contains("S3cr3t"), "{err}");
    }

    #[test]
    fn entities_are_decoded_once() {
        assert_eq!(decode_entities("plain"), "plain");
        assert_eq!(
            decode_entities(
                "&lt;b&gt; &amp; &quot;q&quot; &apos;a&apos; &#39;b&#39; &#x27;c&#X27;"
            ),
            "<b> & \"q\" 'a' 'b' 'c'"
        );
        assert_eq!(decode_entities("a&nbsp;b"), "a\u{a0}b");
        assert_eq!(
            decode_entities("&hellip;&ndash;&mdash;&rsquo;&euro;"),
            "…–—’€"
        );
        assert_eq!(decode_entities("&#8364;&#x1F600;"), "€😀");
        // One pass: a double-encoded entity stays encoded once.
        assert_eq!(decode_entities("&amp;lt;"), "&lt;");
        // Not references: kept as written.
        for s in [
            "AT&T",
            "a & b",
            "&;",
            "&unknown;",
            "&#;",
            "&#x;",
            "&#+5;",
            "&#xZZ;",
            "&amp",
            "&#99999999999;",
            "trailing &",
        ] {
            assert_eq!(decode_entities(s), s);
        }
        // No such character: the replacement character.
        assert_eq!(
            decode_entities("&#0;&#xD800;&#x110000;"),
            "\u{fffd}\u{fffd}\u{fffd}"
        );
        // Multi-byte text around references.
        assert_eq!(decode_entities("é&amp;ü&#233;"), "é&üé");
    }

    #[test]
    fn bodies_become_plain_text() {
        assert_eq!(
            strip_tags("<p>Use <code>x &lt; y</code> and <a href=\"u\">this</a>.</p><p>Next</p>"),
            " Use x < y and this.  Next "
        );
        assert_eq!(strip_tags("a < b"), "a < b");
        assert_eq!(strip_tags("<br/>x<br />"), " x ");
        assert_eq!(excerpt_of("  short   text "), "short text");
        let long = "word ".repeat(100);
        let cut = excerpt_of(&long);
        assert!(cut.chars().count() <= EXCERPT_MAX_CHARS);
        assert!(cut.ends_with("word…"));
        let unbroken = "x".repeat(500);
        assert_eq!(excerpt_of(&unbroken).chars().count(), EXCERPT_MAX_CHARS);
    }

    #[test]
    fn urls_encode_every_value() {
        let q = query("c++");
        assert_eq!(
            api_url(DEFAULT_API_BASE, &q),
            "https://api.stackexchange.com/2.3/questions?tagged=c%2B%2B&site=stackoverflow\
             &sort=creation&order=desc&page=1&pagesize=100"
        );
        let q = ApiQuery {
            sort: ApiSort::Votes,
            page: 3,
            pagesize: 50,
            filter: Some("!9_bDDxJY5".into()),
            ..query("c#")
        };
        assert_eq!(
            with_key(
                &api_url("http://127.0.0.1:8080/", &q),
                "U4DMV*8nvpm3EOpvf69Rxw(("
            ),
            "http://127.0.0.1:8080/2.3/questions?tagged=c%23&site=stackoverflow&sort=votes\
             &order=desc&page=3&pagesize=50&filter=%219_bDDxJY5\
             &key=U4DMV%2A8nvpm3EOpvf69Rxw%28%28"
        );
        let q = ApiQuery {
            pagesize: 500,
            page: 0,
            ..query("asp.net-core")
        };
        assert_eq!(
            api_url(DEFAULT_API_BASE, &q),
            "https://api.stackexchange.com/2.3/questions?tagged=asp.net-core&site=stackoverflow\
             &sort=creation&order=desc&page=1&pagesize=100"
        );
    }

    #[test]
    fn with_key_adds_the_encoded_key_to_a_keyless_url() {
        let url = api_url(DEFAULT_API_BASE, &query("c++"));
        let keyed = with_key(&url, "k(ey)*1");
        assert_eq!(keyed, format!("{url}&key=k%28ey%29%2A1"));
        assert_eq!(with_key(&url, ""), url);
        assert_eq!(redact_key(&keyed), format!("{url}&key=REDACTED"));
    }

    #[test]
    fn keys_are_redacted_and_never_part_of_a_query() {
        let q = query("rust");
        let url = with_key(&api_url(DEFAULT_API_BASE, &q), "S3cr3t((");
        assert!(url.contains("key=S3cr3t%28%28"));
        let redacted = redact_key(&url);
        assert_eq!(
            redacted,
            "https://api.stackexchange.com/2.3/questions?tagged=rust&site=stackoverflow\
             &sort=creation&order=desc&page=1&pagesize=100&key=REDACTED"
        );
        assert!(!format!("{q:?}").contains("key"), "a query holds no key");
        assert_eq!(redact_key("/x?key=abc&page=2"), "/x?key=REDACTED&page=2");
        assert_eq!(redact_key("/x?KEY=abc#frag"), "/x?KEY=REDACTED#frag");
        assert_eq!(
            redact_key("/x?access_token=t0k&key=k&monkey=banana&key_id=1"),
            "/x?access_token=REDACTED&key=REDACTED&monkey=banana&key_id=1"
        );
        assert_eq!(redact_key("no secrets here"), "no secrets here");
        assert_eq!(redact_key("key="), "key=REDACTED");
        assert_eq!(redact_key("ключ key=é"), "ключ key=REDACTED");
    }

    #[test]
    fn sorts_parse_and_print() {
        for sort in ApiSort::ALL {
            assert_eq!(sort.as_str().parse::<ApiSort>(), Ok(sort));
            assert_eq!(sort.to_string(), sort.as_str());
        }
        assert_eq!(" Votes ".parse::<ApiSort>(), Ok(ApiSort::Votes));
        assert_eq!("hot".parse::<ApiSort>(), Err(UnknownSort("hot".into())));
        assert_eq!(
            serde_json::from_str::<ApiSort>("\"activity\"").unwrap(),
            ApiSort::Activity
        );
        assert_eq!(
            serde_json::to_string(&ApiSort::Creation).unwrap(),
            "\"creation\""
        );
        assert!(serde_json::from_str::<ApiSort>("\"newest\"").is_err());
        assert_eq!(ApiSort::default(), ApiSort::Creation);
    }
}
