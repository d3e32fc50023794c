//! The archive sources' config: the `[archive]` table (where the archives
//! live, how fast they are asked) and an archive tag set's query (`from`,
//! `to`, `collapse`, `crawl`), with the CDX timestamps `from` and `to` may
//! be written as. The archive source (`source::cdx`) reads them from here.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use toml::Spanned;

/// The Wayback Machine: its CDX server and its captures.
pub const DEFAULT_WAYBACK_URL: &str = "https://web.archive.org";
/// Common Crawl's index server (one index per crawl).
pub const DEFAULT_CC_INDEX_URL: &str = "https://index.commoncrawl.org";
/// Common Crawl's WARC files, read by byte range.
pub const DEFAULT_CC_DATA_URL: &str = "https://data.commoncrawl.org";
/// Requests per second to an archive, at most (and never more than
/// `fetch.rate`). The Wayback CDX server allows about 60 requests a minute
/// per IP averaged over 5 minutes; Common Crawl asks for no more than one
/// retry a second and slows down whoever ignores its 503s (README, "Web
/// archives"). Half a request a second stays under both.
pub const DEFAULT_ARCHIVE_RATE: f64 = 0.5;
/// Captures fetched per tag and pass at most, unless `pages` says: a
/// decade of daily captures of one listing URL.
pub const DEFAULT_CAPTURES_PER_PASS: i64 = 5000;
/// Index rows asked for per request (Wayback's `limit`).
pub const DEFAULT_INDEX_PAGE_ROWS: u32 = 1000;

/// `[archive]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArchive {
    pub wayback_url: Option<Spanned<String>>,
    pub commoncrawl_index_url: Option<Spanned<String>>,
    pub commoncrawl_data_url: Option<Spanned<String>>,
    pub rate: Option<Spanned<f64>>,
    pub index_page_rows: Option<Spanned<i64>>,
}

/// `crawl = "CC-MAIN-2019-13"` or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawCrawls {
    One(String),
    Many(Vec<String>),
}

/// The validated `[archive]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveSettings {
    pub wayback_url: String,
    pub commoncrawl_index_url: String,
    pub commoncrawl_data_url: String,
    pub rate: f64,
    pub index_page_rows: u32,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings {
            wayback_url: DEFAULT_WAYBACK_URL.into(),
            commoncrawl_index_url: DEFAULT_CC_INDEX_URL.into(),
            commoncrawl_data_url: DEFAULT_CC_DATA_URL.into(),
            rate: DEFAULT_ARCHIVE_RATE,
            index_page_rows: DEFAULT_INDEX_PAGE_ROWS,
        }
    }
}

impl ArchiveSettings {
    /// The archives' hosts: redirects may lead there.
    pub fn hosts(&self) -> Vec<String> {
        [
            &self.wayback_url,
            &self.commoncrawl_index_url,
            &self.commoncrawl_data_url,
        ]
        .iter()
        .filter_map(|u| reqwest::Url::parse(u).ok()?.host_str().map(str::to_string))
        .collect()
    }
}

/// At most one capture of a URL per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collapse {
    Day,
    Week,
    Month,
}

impl Collapse {
    pub fn parse(s: &str) -> Result<Collapse, String> {
        match s.trim() {
            "day" => Ok(Collapse::Day),
            "week" => Ok(Collapse::Week),
            "month" => Ok(Collapse::Month),
            other => Err(format!(
                "must be \"day\", \"week\" or \"month\", got `{other}`"
            )),
        }
    }

    /// Wayback's own `collapse=timestamp:N`, where it has one: a week is
    /// no prefix of a timestamp, so it is collapsed by day there and by
    /// week here.
    pub fn timestamp_digits(self) -> usize {
        match self {
            Collapse::Day | Collapse::Week => 8,
            Collapse::Month => 6,
        }
    }
}

/// What an archive tag set asks its index for.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub collapse: Option<Collapse>,
    /// Common Crawl's crawl ids; empty for Wayback.
    pub crawls: Vec<String>,
}

/// A CDX timestamp (`YYYYMMDDhhmmss`, or a prefix of it) as UTC.
pub fn parse_timestamp(ts: &str) -> Option<DateTime<Utc>> {
    if ts.len() < 4 || ts.len() > 14 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A prefix stands for the start of the period it names.
    let full = format!("{ts}{}", &"00000101000000"[ts.len()..]);
    let t = NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S").ok()?;
    Some(Utc.from_utc_datetime(&t))
}

/// A `from`/`to` value: a date (`2019-03-01`), or a CDX timestamp or a
/// prefix of one (`2019`, `201903`, `20190301120000`).
pub fn parse_when(s: &str) -> Result<DateTime<Utc>, String> {
    let digits: String = s.trim().chars().filter(|c| *c != '-').collect();
    parse_timestamp(&digits).ok_or_else(|| {
        format!("`{s}` is not a date like \"2019-03-01\" or a timestamp like \"20190301120000\"")
    })
}

/// A crawl id as Common Crawl spells them (`CC-MAIN-2019-13`): it becomes
/// part of a URL path, so nothing else is let through.
pub fn check_crawl(id: &str) -> Result<String, String> {
    let ok = id.starts_with("CC-")
        && id.len() <= 40
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(id.to_string())
    } else {
        Err(format!("`{id}` is not a crawl id like \"CC-MAIN-2019-13\""))
    }
}

impl RawCrawls {
    pub fn ids(&self) -> Vec<&str> {
        match self {
            RawCrawls::One(s) => vec![s.as_str()],
            RawCrawls::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_crawls_and_collapse_are_checked() {
        assert_eq!(
            parse_when("2019-03-01").unwrap(),
            parse_when("20190301").unwrap()
        );
        assert!(parse_when("March").is_err());
        assert!(check_crawl("CC-MAIN-2019-13").is_ok());
        assert!(check_crawl("CC-MAIN/../x").is_err());
        assert_eq!(Collapse::parse("week"), Ok(Collapse::Week));
        assert!(Collapse::parse("year").is_err());
    }
}
