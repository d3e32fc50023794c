//! Web archives as a source: WARC files (what the Wayback Machine and
//! Common Crawl keep) read for the Stack Exchange listing pages they hold.
//! A record's questions carry the capture time (`WARC-Date`) as the time
//! they were seen, and the page's own URL says its site, tag, tab and page.
//!
//! A file is read as a stream, one record at a time; only listing pages'
//! blocks are kept, a window of them at a time, and parsed on every core.

pub mod http;
pub mod warc;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use thiserror::Error;

use self::warc::{Block, GzMembers, Head, WarcReader};
use crate::model::{Listing, PageContext};
use crate::source::Source;

/// The fetcher's default cap on a body (`fetch.max_body_bytes`): an
/// archived page is held to what a live one would be.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// A block is the body plus the HTTP status line and headers.
const MAX_BLOCK_BYTES: u64 = MAX_BODY_BYTES as u64 + 256 * 1024;
/// Listing records parsed at once per core: enough to keep every core
/// busy, few enough that a window's blocks stay a few megabytes.
const RECORDS_PER_WORKER: usize = 8;
const READ_BUFFER: usize = 256 * 1024;

/// Why a WARC file could not be read at all (a broken record is counted,
/// not an error).
#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
}

/// One listing page found in an archive.
#[derive(Debug)]
pub struct ArchivedPage {
    pub uri: String,
    pub captured_at: DateTime<Utc>,
    /// Its records, or why the page could not be read as a listing.
    pub read: Result<Listing, String>,
}

/// What a WARC file held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WarcCounts {
    pub records: u64,
    /// Listing pages read.
    pub pages: u64,
    pub questions: u64,
    /// Listing pages (200, HTML) the listing reader did not accept.
    pub unreadable: u64,
    /// Question summaries the listing reader rejected.
    pub rejected: u64,
    /// Pages that refer to more questions than were read: the layout may
    /// be one the parser does not know (each such page's ERROR would be
    /// one per page of a file that may hold thousands, so counted here).
    pub drifted: u64,
    /// Records passed over, by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    pub broken_records: u64,
    pub broken_members: u64,
}

impl WarcCounts {
    fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
    }
}

impl std::fmt::Display for WarcCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records, {} listing pages, {} questions, {} pages unreadable, {} summaries rejected, {} pages with layout drift, {} broken records, {} broken gzip members; skipped:",
            self.records,
            self.pages,
            self.questions,
            self.unreadable,
            self.rejected,
            self.drifted,
            self.broken_records,
            self.broken_members
        )?;
        if self.skipped.is_empty() {
            return write!(f, " none");
        }
        for (i, (reason, n)) in self.skipped.iter().enumerate() {
            write!(f, "{} {reason} {n}", if i == 0 { "" } else { "," })?;
        }
        Ok(())
    }
}

/// The start of a file says WARC (after gzip, if gzipped).
pub fn is_warc(start: &[u8]) -> bool {
    warc::looks_like_warc(start)
}

/// Reads the WARC file at `path`, handing each listing page to `each` in
/// the file's order; `workers` threads parse. Stops at the first error
/// `each` returns (the outer one); the inner says whether the file could be
/// read at all.
pub fn read_warc_file<E>(
    path: &Path,
    workers: usize,
    each: impl FnMut(ArchivedPage) -> Result<(), E>,
) -> Result<Result<WarcCounts, ArchiveError>, E> {
    let open = || -> std::io::Result<_> {
        let mut file = BufReader::with_capacity(READ_BUFFER, File::open(path)?);
        let gzip = warc::is_gzip(file.fill_buf()?);
        Ok((file, gzip))
    };
    let (file, gzip) = match open() {
        Ok(opened) => opened,
        Err(e) => return Ok(Err(e.into())),
    };
    if gzip {
        let mut r = WarcReader::new(
            BufReader::with_capacity(READ_BUFFER, GzMembers::new(file)),
            MAX_BLOCK_BYTES,
        );
        let mut counts = read_records(&mut r, workers, each)?;
        counts.broken_members = r.get_ref().get_ref().broken;
        Ok(Ok(counts))
    } else {
        let mut r = WarcReader::new(file, MAX_BLOCK_BYTES);
        Ok(Ok(read_records(&mut r, workers, each)?))
    }
}

/// A listing record to parse.
struct Capture {
    uri: String,
    ctx: PageContext,
    captured_at: DateTime<Utc>,
    block: Vec<u8>,
}

enum Outcome {
    Page(ArchivedPage),
    Skip(&'static str),
}

/// Reads every record of `r`; see [`read_warc_file`].
pub fn read_records<R: BufRead, E>(
    r: &mut WarcReader<R>,
    workers: usize,
    mut each: impl FnMut(ArchivedPage) -> Result<(), E>,
) -> Result<WarcCounts, E> {
    let workers = workers.max(1);
    let mut counts = WarcCounts::default();
    let mut end = false;
    while !end {
        let mut window = Vec::new();
        while window.len() < workers * RECORDS_PER_WORKER {
            let mut wanted = None;
            let Some(record) = r.next_record(|head| {
                let w = wanted_capture(head);
                let keep = w.is_ok();
                wanted = Some(w);
                keep
            }) else {
                end = true;
                break;
            };
            counts.records += 1;
            let record = match record {
                Ok(record) => record,
                Err(_) => {
                    counts.broken_records += 1;
                    continue;
                }
            };
            match (wanted, record.block) {
                (Some(Err(reason)), _) => counts.skip(reason),
                (_, Block::TooLarge) => counts.skip("too_large"),
                (Some(Ok((uri, ctx, captured_at))), Block::Read(block)) => window.push(Capture {
                    uri,
                    ctx,
                    captured_at,
                    block,
                }),
                // `want` runs for every record that gets a block.
                (None, _) | (Some(Ok(_)), Block::Passed) => counts.skip("other"),
            }
        }
        let mut outcomes: Vec<Option<Outcome>> = Vec::new();
        outcomes.resize_with(window.len(), || None);
        let per = window.len().div_ceil(workers).max(1);
        std::thread::scope(|s| {
            for (slots, captures) in outcomes.chunks_mut(per).zip(window.chunks(per)) {
                s.spawn(move || {
                    for (slot, c) in slots.iter_mut().zip(captures) {
                        *slot = Some(read_capture(c));
                    }
                });
            }
        });
        for outcome in outcomes.into_iter().flatten() {
            match outcome {
                Outcome::Skip(reason) => counts.skip(reason),
                Outcome::Page(page) => {
                    match &page.read {
                        Ok(listing) => {
                            counts.pages += 1;
                            counts.questions += listing.questions.len() as u64;
                            counts.rejected += listing.rejections.len() as u64;
                            counts.drifted += u64::from(listing.layout_drift.is_some());
                        }
                        Err(_) => counts.unreadable += 1,
                    }
                    each(page)?;
                }
            }
        }
    }
    Ok(counts)
}

/// A record worth reading: a response for a listing page, with its capture
/// time; or why not.
type Wanted = Result<(String, PageContext, DateTime<Utc>), &'static str>;

fn wanted_capture(head: &Head) -> Wanted {
    match head.record_type() {
        "response" => {}
        "request" => return Err("request"),
        "metadata" => return Err("metadata"),
        "revisit" => return Err("revisit"),
        "warcinfo" => return Err("warcinfo"),
        _ => return Err("other_type"),
    }
    let uri = head.target_uri().ok_or("not_listing")?;
    let ctx = listing_context(uri).ok_or("not_listing")?;
    let captured_at = head
        .get("WARC-Date")
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        .ok_or("no_date")?
        .with_timezone(&Utc);
    Ok((uri.to_string(), ctx, captured_at))
}

fn read_capture(c: &Capture) -> Outcome {
    let resp = match http::parse_response(&c.block, MAX_BODY_BYTES) {
        Ok(resp) => resp,
        Err(http::HttpError::TooLarge(_)) => return Outcome::Skip("too_large"),
        Err(http::HttpError::Encoding(_)) => return Outcome::Skip("encoding"),
        Err(_) => return Outcome::Skip("bad_http"),
    };
    if resp.status != 200 {
        return Outcome::Skip("not_200");
    }
    if !resp.is_html() {
        return Outcome::Skip("not_html");
    }
    let body = crate::source::charset::decode(&resp.body, resp.header("Content-Type"));
    Outcome::Page(ArchivedPage {
        uri: c.uri.clone(),
        captured_at: c.captured_at,
        read: Source::Html
            .read(&c.ctx, &body, c.captured_at)
            .map_err(|e| format!("not a listing page: {e}")),
    })
}

/// Hosts of the Stack Exchange network whose listings we read; their
/// subdomains (meta., ru., pt.…) are sites too.
const NETWORK: [&str; 6] = [
    "stackoverflow.com",
    "serverfault.com",
    "superuser.com",
    "askubuntu.com",
    "mathoverflow.net",
    "stackapps.com",
];
/// Subdomains that are no Q&A site.
const NOT_SITES: [&str; 7] = ["api", "chat", "data", "openid", "blog", "area51", "careers"];

fn is_network_site(host: &str) -> bool {
    let sub_ok =
        |sub: &str| !sub.is_empty() && !NOT_SITES.contains(&sub.rsplit('.').next().unwrap_or(""));
    if NETWORK.contains(&host) {
        return true;
    }
    if let Some(sub) = host.strip_suffix(".stackexchange.com") {
        return sub_ok(sub);
    }
    NETWORK.iter().any(|site| {
        host.strip_suffix(site)
            .and_then(|s| s.strip_suffix('.'))
            .is_some_and(sub_ok)
    })
}

/// The page a listing URL names: its site, tag, tab and page; `None` for
/// any other URL (a question page, robots.txt, another site).
pub fn listing_context(uri: &str) -> Option<PageContext> {
    let url = reqwest::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let site = host.strip_prefix("www.").unwrap_or(&host).to_string();
    if !is_network_site(&site) {
        return None;
    }
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let (tag, default_tab) = match segments[..] {
        [] | ["questions"] => ("", ""),
        ["unanswered"] => ("", "Unanswered"),
        ["questions", "tagged", tag] => (tag, ""),
        ["unanswered", "tagged", tag] => (tag, "Unanswered"),
        _ => return None,
    };
    let tag = percent_encoding::percent_decode_str(tag)
        .decode_utf8_lossy()
        .to_lowercase();
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.into_owned())
    };
    let tab = query("tab")
        .or_else(|| query("sort"))
        .map(|t| crate::config::Tab::parse(&t).map_or(t, |t| t.as_str().to_string()))
        .unwrap_or_else(|| default_tab.to_string());
    let page = query("page")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|&p| p > 0)
        .unwrap_or(1);
    Some(PageContext {
        base_url: format!("{}://{}", url.scheme(), host),
        site,
        tag,
        tab,
        page,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::archive::warc::tests::{gz, record};

    /// More listing records than one window, among others: any number of
    /// workers gives the same pages in the file's order, and the counts.
    #[test]
    fn every_worker_count_gives_the_pages_in_the_file_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/so-html");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        let mut file = Vec::new();
        let mut want = Vec::new();
        for (i, path) in names.iter().cycle().take(names.len() * 3).enumerate() {
            let uri = format!("https://stackoverflow.com/questions/tagged/t{i}");
            let mut block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n".to_vec();
            block.extend(std::fs::read(path).unwrap());
            file.extend(gz(&record("request", &uri, b"GET")));
            file.extend(gz(&record("response", &uri, &block)));
            want.push(uri);
        }
        file.extend(gz(&record(
            "response",
            "https://stackoverflow.com/robots.txt",
            b"",
        )));
        // A page whose summaries' class the parser no longer knows.
        let html = std::fs::read_to_string(dir.join("tagged-command-newest-2020.html"))
            .unwrap()
            .replacen("class=\"question-summary\"", "class=\"question-card\"", 2);
        let mut block = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        block.extend(html.into_bytes());
        let drifted = "https://stackoverflow.com/questions/tagged/command";
        file.extend(gz(&record("response", drifted, &block)));
        want.push(drifted.to_string());
        let read = |workers| {
            let mut r = WarcReader::new(BufReader::new(GzMembers::new(&file[..])), MAX_BLOCK_BYTES);
            let mut pages = Vec::new();
            let counts = read_records(&mut r, workers, |p| {
                assert_eq!(p.captured_at.to_rfc3339(), "2019-03-04T05:06:07+00:00");
                pages.push((p.uri, p.read.map(|l| l.questions.len())));
                Ok::<_, ()>(())
            })
            .unwrap();
            (pages, counts)
        };
        let (one, counts) = read(1);
        assert_eq!(one.iter().map(|p| p.0.clone()).collect::<Vec<_>>(), want);
        assert!(one.iter().all(|p| p.1.as_ref().is_ok_and(|&n| n > 0)));
        assert_eq!(
            (counts.records, counts.pages, counts.skipped.len()),
            (want.len() as u64 * 2, want.len() as u64, 2)
        );
        assert_eq!(
            (counts.drifted, counts.rejected, counts.unreadable),
            (1, 0, 0)
        );
        assert_eq!(read(3), (one, counts));
    }

    #[test]
    fn listing_urls_of_every_site_are_told_from_the_rest() {
        let ctx = |u| listing_context(u).map(|c| (c.site, c.tag, c.tab, c.page));
        let c = |site: &str, tag: &str, tab: &str, page| {
            Some((site.to_string(), tag.to_string(), tab.to_string(), page))
        };
        assert_eq!(
            ctx("https://stackoverflow.com/questions/tagged/c%2b%2b?tab=newest&page=3&pagesize=50"),
            c("stackoverflow.com", "c++", "Newest", 3)
        );
        assert_eq!(
            ctx("http://www.stackoverflow.com/questions/tagged/Python/?sort=votes"),
            c("stackoverflow.com", "python", "Votes", 1)
        );
        assert_eq!(
            ctx("https://stackoverflow.com/"),
            c("stackoverflow.com", "", "", 1)
        );
        assert_eq!(
            ctx("https://superuser.com/?tab=hot"),
            c("superuser.com", "", "hot", 1)
        );
        assert_eq!(
            ctx("https://dba.stackexchange.com/questions?page=2"),
            c("dba.stackexchange.com", "", "", 2)
        );
        assert_eq!(
            ctx("https://meta.stackoverflow.com/unanswered/tagged/bug"),
            c("meta.stackoverflow.com", "bug", "Unanswered", 1)
        );
        assert_eq!(
            ctx("https://meta.serverfault.com/unanswered"),
            c("meta.serverfault.com", "", "Unanswered", 1)
        );
        assert_eq!(
            ctx("https://math.meta.stackexchange.com/questions"),
            c("math.meta.stackexchange.com", "", "", 1)
        );
        assert!(ctx("https://mathoverflow.net/questions/tagged/ag.algebraic-geometry").is_some());
        for not in [
            "https://stackoverflow.com/questions/29980798/where-does-pip-install",
            "https://stackoverflow.com/robots.txt",
            "https://stackoverflow.com/questions/ask",
            "https://stackoverflow.com/users",
            "https://api.stackexchange.com/2.3/questions",
            "https://chat.stackoverflow.com/",
            "https://stackexchange.com/",
            "https://example.com/questions",
            "https://notstackoverflow.com/questions",
            "ftp://stackoverflow.com/questions",
            "not a url",
        ] {
            assert_eq!(ctx(not), None, "{not}");
        }
    }
}
