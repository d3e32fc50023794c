//! Web archives' indexes as a tag set's source (`source = "wayback"`,
//! `source = "commoncrawl"`): for each tag, the archive's CDX index lists
//! the captures of the tag's listing URLs in a time range; each capture is
//! one page of the pass, fetched raw (Wayback's `id_` form, or one gzip
//! member of a Common Crawl WARC file by byte range) and parsed like
//! `stackcrawl parse` reads an archived page, its questions seen at the
//! capture time.
//!
//! A capture's page number is its capture time in Unix seconds: stable
//! whatever else the index lists, so a resumed pass skips the captures it
//! already stored, and the largest stored one is where the next pass's
//! index query starts (the bookmark, kept in the store's pages of the tag
//! set's finished passes).

pub mod discover;
pub mod index;

use chrono::{DateTime, Datelike, Utc};
use thiserror::Error;

use crate::config::archive::parse_timestamp;
use crate::config::{ArchiveQuery, ArchiveSettings, Collapse, Config, Source};
use crate::model::{Archive, PageContext};
use crate::source::archive::{http, warc, MAX_BODY_BYTES};
use crate::source::fetch::{Body, HttpClient};
use crate::source::{JobError, PageJob};

/// Where a Common Crawl capture sits: one gzip member of a WARC file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarcSpan {
    pub filename: String,
    pub offset: u64,
    pub length: u64,
}

/// One capture of a listing page, as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub at: DateTime<Utc>,
    /// The URL the archive captured.
    pub original: String,
    /// Common Crawl only: where its record is.
    pub warc: Option<WarcSpan>,
}

impl Capture {
    /// Its page number in a pass: the capture time in Unix seconds, which
    /// fits a `u32` until 2106.
    pub fn page(&self) -> u32 {
        u32::try_from(self.at.timestamp()).unwrap_or(0)
    }

    /// The URL its bytes are fetched from. A Common Crawl record's byte
    /// range rides in the fragment, which no HTTP request carries: the
    /// failures file and the logs name the capture exactly.
    pub fn fetch_url(&self, settings: &ArchiveSettings) -> String {
        match &self.warc {
            None => format!(
                "{}/web/{}id_/{}",
                settings.wayback_url,
                timestamp14(self.at),
                self.original
            ),
            Some(w) => format!(
                "{}/{}#bytes={}-{}",
                settings.commoncrawl_data_url,
                w.filename,
                w.offset,
                w.offset + w.length.max(1) - 1
            ),
        }
    }
}

/// The capture a fetch URL names (a failures-file entry's), taken at
/// `page` (its Unix time); `None` for any other URL. A Common Crawl
/// capture's original URL is not in its fetch URL and not needed: the
/// record it fetches names it.
pub fn capture_of_url(
    settings: &ArchiveSettings,
    archive: Archive,
    url: &str,
    page: u32,
) -> Option<Capture> {
    let at = DateTime::from_timestamp(i64::from(page), 0)?;
    match archive {
        Archive::Wayback => {
            let rest = url.strip_prefix(&format!("{}/web/", settings.wayback_url))?;
            let (ts, original) = rest.split_once("id_/")?;
            (parse_timestamp(ts)? == at).then(|| Capture {
                at,
                original: original.to_string(),
                warc: None,
            })
        }
        Archive::CommonCrawl => {
            let (base, (first, last)) = match split_range(url) {
                (base, Some(range)) => (base, range),
                _ => return None,
            };
            let filename = base.strip_prefix(&format!("{}/", settings.commoncrawl_data_url))?;
            (last >= first).then(|| Capture {
                at,
                original: String::new(),
                warc: Some(WarcSpan {
                    filename: filename.to_string(),
                    offset: first,
                    length: last - first + 1,
                }),
            })
        }
    }
}

/// A fetch URL split into what is requested and the byte range asked for.
pub fn split_range(url: &str) -> (&str, Option<(u64, u64)>) {
    let Some((base, frag)) = url.split_once("#bytes=") else {
        return (url, None);
    };
    let range = frag
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    (base, range)
}

/// The capture time a Wayback fetch URL names (`/web/{timestamp}id_/`).
pub fn wayback_time(url: &str) -> Option<DateTime<Utc>> {
    let rest = &url[url.find("/web/")? + 5..];
    parse_timestamp(rest.split("id_/").next()?)
}

pub fn timestamp14(at: DateTime<Utc>) -> String {
    at.format("%Y%m%d%H%M%S").to_string()
}

/// The period a capture falls in for `collapse`: at most one capture of a
/// URL per period is kept.
pub fn period(at: DateTime<Utc>, collapse: Collapse) -> (i32, u32, u32) {
    match collapse {
        Collapse::Day => (at.year(), at.month(), at.day()),
        Collapse::Week => {
            let w = at.iso_week();
            (w.year(), w.week(), 0)
        }
        Collapse::Month => (at.year(), at.month(), 0),
    }
}

/// Why a capture's bytes are no listing page.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CaptureError {
    #[error("broken gzip member: {0}")]
    Gzip(String),
    #[error("broken WARC record: {0}")]
    Warc(String),
    #[error("WARC record is a {0}, not a response")]
    NotResponse(String),
    #[error("archived response: {0}")]
    Http(#[from] http::HttpError),
    #[error("archived status {0}, not 200")]
    Status(u16),
    #[error("the captured listing shows no questions")]
    Empty,
    #[error("the archive served {got} bytes for a {want}-byte record")]
    Short { got: usize, want: u64 },
}

/// One Common Crawl record's bytes (a single gzip member) read into the
/// archived page's HTML and its capture time (`WARC-Date`).
pub fn read_warc_member(bytes: &[u8]) -> Result<(String, DateTime<Utc>), CaptureError> {
    use std::io::Read;
    // A record's headers and a page: what a member may inflate to. A small
    // range that inflates past it (a gzip bomb) stops there.
    let cap = MAX_BODY_BYTES as u64 + 256 * 1024;
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(cap + 1)
        .read_to_end(&mut raw)
        .map_err(|e| CaptureError::Gzip(e.to_string()))?;
    if raw.len() as u64 > cap {
        return Err(CaptureError::Warc(format!("record over {cap} bytes")));
    }
    let mut reader = warc::WarcReader::new(&raw[..], cap);
    let record = reader
        .next_record(|_| true)
        .ok_or_else(|| CaptureError::Warc("no record".into()))?
        .map_err(|e| CaptureError::Warc(e.to_string()))?;
    if record.head.record_type() != "response" {
        return Err(CaptureError::NotResponse(
            record.head.record_type().to_string(),
        ));
    }
    let at = record
        .head
        .get("WARC-Date")
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        .ok_or_else(|| CaptureError::Warc("no WARC-Date".into()))?
        .with_timezone(&Utc);
    let warc::Block::Read(block) = record.block else {
        return Err(CaptureError::Warc("block over the size cap".into()));
    };
    let resp = http::parse_response(&block, MAX_BODY_BYTES)?;
    if resp.status != 200 {
        return Err(CaptureError::Status(resp.status));
    }
    // In the charset the page declares, as `stackcrawl parse` reads it.
    let text = crate::source::charset::decode(&resp.body, resp.header("Content-Type"));
    Ok((text.into_owned(), at))
}

/// Fetches a capture job's bytes: the archived page's HTML, with its
/// capture time as the time it was fetched (what its questions record as
/// seen). A status that is no success maps as for any page (a 429 or 503
/// pauses the lane by its `Retry-After`).
pub async fn request(http: &HttpClient, job: &PageJob) -> Result<Body, JobError> {
    let (url, range) = split_range(&job.url);
    match range {
        None => {
            let mut body = http.get_ok(url).await?;
            if let Some(at) = wayback_time(url) {
                body.fetched_at = at;
            }
            Ok(body)
        }
        Some((first, last)) => {
            let (resp, bytes) = http.get_bytes(url, Some((first, last))).await?;
            if !(200..300).contains(&resp.status) {
                return Err(resp.status_error().into());
            }
            let want = last - first + 1;
            // A server that ignores `Range` sends the whole file: not the
            // record asked for.
            if bytes.len() as u64 != want {
                return Err(CaptureError::Short {
                    got: bytes.len(),
                    want,
                }
                .into());
            }
            let (text, at) = read_warc_member(&bytes)?;
            Ok(Body {
                text,
                fetched_at: at,
                limits: resp.limits,
            })
        }
    }
}

impl PageJob {
    /// The job that fetches one capture of `tag`'s listing.
    pub fn capture(config: &Config, archive: Archive, tag: &str, capture: &Capture) -> PageJob {
        PageJob {
            ctx: context(&config.site, &config.base_url, tag, archive, capture.page()),
            url: capture.fetch_url(&config.archive),
            attempt: 1,
            source: match archive {
                Archive::Wayback => Source::Wayback,
                Archive::CommonCrawl => Source::CommonCrawl,
            },
            // Captures are independent pages: a lost one costs no other.
            after_previous: false,
            lease: None,
        }
    }
}

/// The context a capture's records carry: the tag set's tag, the archive
/// as the "tab", the capture's page number.
pub fn context(site: &str, base_url: &str, tag: &str, archive: Archive, page: u32) -> PageContext {
    PageContext {
        site: site.to_string(),
        base_url: base_url.to_string(),
        tag: tag.to_string(),
        tab: archive.as_str().to_string(),
        page,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_ranges_round_trip() {
        let at = parse_timestamp("20190301123456").unwrap();
        assert_eq!(timestamp14(at), "20190301123456");
        assert_eq!(
            parse_timestamp("201903").unwrap(),
            parse_timestamp("20190301000000").unwrap()
        );
        assert!(parse_timestamp("2019x3").is_none());
        let s = ArchiveSettings::default();
        let c = Capture {
            at,
            original: "https://stackoverflow.com/questions/tagged/rust".into(),
            warc: None,
        };
        assert_eq!(wayback_time(&c.fetch_url(&s)), Some(at));
        let cc = Capture {
            warc: Some(WarcSpan {
                filename: "crawl-data/x.warc.gz".into(),
                offset: 100,
                length: 50,
            }),
            ..c
        };
        let url = cc.fetch_url(&s);
        assert_eq!(
            split_range(&url),
            (
                "https://data.commoncrawl.org/crawl-data/x.warc.gz",
                Some((100, 149))
            )
        );
    }

    #[test]
    fn a_broken_gzip_member_is_an_error_not_a_panic() {
        assert!(matches!(
            read_warc_member(b"\x1f\x8b\x08\0garbage"),
            Err(CaptureError::Gzip(_))
        ));
        assert!(read_warc_member(b"").is_err());
    }

    #[test]
    fn a_member_that_inflates_past_a_page_stops_at_the_cap() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(MAX_BODY_BYTES >> 20) + 2 {
            gz.write_all(&zeros).unwrap();
        }
        let member = gz.finish().unwrap();
        assert!(member.len() < 64 * 1024, "a small range");
        assert!(matches!(
            read_warc_member(&member),
            Err(CaptureError::Warc(why)) if why.starts_with("record over")
        ));
    }
}
