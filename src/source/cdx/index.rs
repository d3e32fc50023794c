//! The archives' CDX indexes: the query for a tag's listing captures, one
//! page of it at a time, and what an answer says (its captures, and where
//! the next page starts).
//!
//! Wayback (`/cdx/search/cdx`, JSON): rows as arrays under a header row,
//! paged by `showResumeKey=true` and `resumeKey`. Common Crawl
//! (`/{crawl}-index`, pywb): one JSON object a line, paged by `page=`
//! (0-based) up to the `pages` that `showNumPages=true` gives.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;
use thiserror::Error;

use super::{
    parse_timestamp, period, timestamp14, ArchiveQuery, ArchiveSettings, Capture, WarcSpan,
};
use crate::source::archive::listing_context;

/// Why an index answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IndexError {
    #[error("index answer is not JSON: {0}")]
    NotJson(String),
    #[error("index answer has no header row")]
    NoHeader,
}

/// Where a tag's index query is in its paging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Wayback: the first page, or the resume key the last one gave.
    Wayback(Option<String>),
    /// Common Crawl: crawl `crawl` (an index into the query's crawls),
    /// page `page` of `pages` (unknown until `showNumPages` answers).
    CommonCrawl {
        crawl: usize,
        page: u32,
        pages: Option<u32>,
    },
}

/// The listing URLs of `tag` on `site` as an index prefix: every query
/// form of `/questions/tagged/{tag}` (tabs, pages, sizes). The prefix also
/// matches longer tags (`rust` → `rust-cargo`); [`keep`] drops those.
fn url_prefix(site: &str, tag: &str) -> String {
    let tag = utf8_percent_encode(tag, NON_ALPHANUMERIC).to_string();
    format!("{site}/questions/tagged/{tag}")
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// The range asked for: `after` (the bookmark) wins over `from` when later.
fn range(q: &ArchiveQuery, after: Option<DateTime<Utc>>) -> (Option<String>, Option<String>) {
    let from = match (q.from, after) {
        (Some(f), Some(a)) => Some(f.max(a + Duration::seconds(1))),
        (f, a) => f.or(a.map(|a| a + Duration::seconds(1))),
    };
    (from.map(timestamp14), q.to.map(timestamp14))
}

/// The request for the cursor's page of `tag`'s index; `None` once every
/// page is read.
pub fn request_url(
    s: &ArchiveSettings,
    q: &ArchiveQuery,
    site: &str,
    tag: &str,
    after: Option<DateTime<Utc>>,
    cursor: &Cursor,
) -> Option<String> {
    let (from, to) = range(q, after);
    let mut url = match cursor {
        Cursor::Wayback(key) => {
            let mut u = format!(
                "{}/cdx/search/cdx?url={}&matchType=prefix&output=json&filter=statuscode:200&showResumeKey=true&limit={}",
                s.wayback_url,
                enc(&url_prefix(site, tag)),
                s.index_page_rows
            );
            if let Some(c) = q.collapse {
                u.push_str(&format!("&collapse=timestamp:{}", c.timestamp_digits()));
            }
            if let Some(k) = key {
                u.push_str(&format!("&resumeKey={}", enc(k)));
            }
            u
        }
        Cursor::CommonCrawl { crawl, page, pages } => {
            let id = q.crawls.get(*crawl)?;
            let mut u = format!(
                "{}/{id}-index?url={}&matchType=prefix&output=json&filter=%3Dstatus%3A200",
                s.commoncrawl_index_url,
                enc(&url_prefix(site, tag)),
            );
            match pages {
                None => u.push_str("&showNumPages=true"),
                Some(_) => u.push_str(&format!("&page={page}")),
            }
            u
        }
    };
    if let Some(f) = from {
        url.push_str(&format!("&from={f}"));
    }
    if let Some(t) = to {
        url.push_str(&format!("&to={t}"));
    }
    Some(url)
}

/// What one index answer held.
#[derive(Debug, Default, PartialEq)]
pub struct IndexPage {
    pub captures: Vec<Capture>,
    /// The next page's cursor; `None` at the end.
    pub next: Option<Cursor>,
}

/// Reads one index answer for `cursor`. An answer of 404 from Common Crawl
/// ("No Captures found") is handled by the caller as an empty page.
pub fn read_answer(cursor: &Cursor, crawls: usize, body: &str) -> Result<IndexPage, IndexError> {
    match cursor {
        Cursor::Wayback(_) => read_wayback(body),
        Cursor::CommonCrawl { crawl, page, pages } => {
            let next_crawl = |c: usize| {
                (c + 1 < crawls).then_some(Cursor::CommonCrawl {
                    crawl: c + 1,
                    page: 0,
                    pages: None,
                })
            };
            match pages {
                None => {
                    let v: Value = serde_json::from_str(body.trim())
                        .map_err(|e| IndexError::NotJson(e.to_string()))?;
                    let n = v.get("pages").and_then(Value::as_u64).unwrap_or(0) as u32;
                    let next = if n == 0 {
                        next_crawl(*crawl)
                    } else {
                        Some(Cursor::CommonCrawl {
                            crawl: *crawl,
                            page: 0,
                            pages: Some(n),
                        })
                    };
                    Ok(IndexPage {
                        captures: Vec::new(),
                        next,
                    })
                }
                Some(n) => {
                    let captures = read_commoncrawl(body)?;
                    let next = if page + 1 < *n {
                        Some(Cursor::CommonCrawl {
                            crawl: *crawl,
                            page: page + 1,
                            pages: Some(*n),
                        })
                    } else {
                        next_crawl(*crawl)
                    };
                    Ok(IndexPage { captures, next })
                }
            }
        }
    }
}

/// What follows an index that has no captures at all (Common Crawl's 404).
pub fn after_empty(cursor: &Cursor, crawls: usize) -> Option<Cursor> {
    match cursor {
        Cursor::Wayback(_) => None,
        Cursor::CommonCrawl { crawl, .. } => (crawl + 1 < crawls).then_some(Cursor::CommonCrawl {
            crawl: crawl + 1,
            page: 0,
            pages: None,
        }),
    }
}

fn read_wayback(body: &str) -> Result<IndexPage, IndexError> {
    if body.trim().is_empty() {
        return Ok(IndexPage::default());
    }
    let rows: Vec<Vec<String>> =
        serde_json::from_str(body.trim()).map_err(|e| IndexError::NotJson(e.to_string()))?;
    let Some((header, rest)) = rows.split_first() else {
        return Ok(IndexPage::default());
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(ts), Some(orig)) = (col("timestamp"), col("original")) else {
        return Err(IndexError::NoHeader);
    };
    let (status, mime) = (col("statuscode"), col("mimetype"));
    let mut captures = Vec::new();
    let mut next = None;
    let mut after_blank = false;
    for row in rest {
        if row.is_empty() {
            // An empty row separates the rows from the resume key.
            after_blank = true;
            continue;
        }
        if after_blank {
            next = row.first().map(|k| Cursor::Wayback(Some(k.clone())));
            continue;
        }
        let field = |i: Option<usize>| i.and_then(|i| row.get(i)).map(String::as_str);
        if field(status).is_some_and(|s| s != "200")
            || field(mime).is_some_and(|m| !m.contains("html"))
        {
            continue;
        }
        let (Some(at), Some(original)) =
            (field(Some(ts)).and_then(parse_timestamp), field(Some(orig)))
        else {
            continue;
        };
        captures.push(Capture {
            at,
            original: original.to_string(),
            warc: None,
        });
    }
    Ok(IndexPage { captures, next })
}

fn read_commoncrawl(body: &str) -> Result<Vec<Capture>, IndexError> {
    let mut captures = Vec::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).map_err(|e| IndexError::NotJson(e.to_string()))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        let n = |k: &str| s(k).and_then(|x| x.parse::<u64>().ok());
        if s("status").is_some_and(|x| x != "200") || s("mime").is_some_and(|m| !m.contains("html"))
        {
            continue;
        }
        let (Some(at), Some(original), Some(filename), Some(offset), Some(length)) = (
            s("timestamp").and_then(parse_timestamp),
            s("url"),
            s("filename"),
            n("offset"),
            n("length"),
        ) else {
            continue;
        };
        // The file name becomes part of a URL path on the data host.
        if filename.contains("..") || filename.starts_with('/') || filename.contains('#') {
            continue;
        }
        captures.push(Capture {
            at,
            original: original.to_string(),
            warc: Some(WarcSpan {
                filename: filename.to_string(),
                offset,
                length,
            }),
        });
    }
    Ok(captures)
}

/// The captures worth fetching, oldest first: listing pages of exactly
/// `tag` on `site`, in the range and after the bookmark, at most one per
/// URL and collapse period, at most one per second (a capture's page
/// number), at most `cap`.
pub fn keep(
    mut all: Vec<Capture>,
    q: &ArchiveQuery,
    site: &str,
    tag: &str,
    after: Option<DateTime<Utc>>,
    cap: usize,
) -> Vec<Capture> {
    all.sort_by(|a, b| (a.at, &a.original).cmp(&(b.at, &b.original)));
    let mut periods = HashSet::new();
    let mut seconds = HashSet::new();
    let mut kept = Vec::new();
    for c in all {
        let Some(ctx) = listing_context(&c.original) else {
            continue;
        };
        let on_site = ctx.site == site.strip_prefix("www.").unwrap_or(site);
        if !on_site || ctx.tag != tag.to_lowercase() || !c.original.contains("/questions/tagged/") {
            continue;
        }
        if q.from.is_some_and(|f| c.at < f)
            || q.to.is_some_and(|t| c.at > t)
            || after.is_some_and(|a| c.at <= a)
        {
            continue;
        }
        if let Some(collapse) = q.collapse {
            if !periods.insert((ctx.tab.clone(), ctx.page, period(c.at, collapse))) {
                continue;
            }
        }
        if !seconds.insert(c.at.timestamp()) {
            continue;
        }
        kept.push(c);
        if kept.len() >= cap {
            break;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Collapse;

    fn query() -> ArchiveQuery {
        ArchiveQuery {
            from: parse_timestamp("2019"),
            to: None,
            collapse: Some(Collapse::Month),
            crawls: vec!["CC-MAIN-2019-13".into()],
        }
    }

    #[test]
    fn wayback_rows_and_resume_key_are_read() {
        let body = r#"[["urlkey","timestamp","original","mimetype","statuscode","digest","length"],
["com,stackoverflow)/questions/tagged/rust","20190301000000","https://stackoverflow.com/questions/tagged/rust","text/html","200","X","1"],
["com,stackoverflow)/questions/tagged/rust","20190302000000","https://stackoverflow.com/questions/tagged/rust","warc/revisit","-","X","1"],
[],
["com,stackoverflow)/questions/tagged/rust 20190302000000"]]"#;
        let page = read_answer(&Cursor::Wayback(None), 0, body).unwrap();
        assert_eq!(page.captures.len(), 1);
        assert_eq!(
            page.next,
            Some(Cursor::Wayback(Some(
                "com,stackoverflow)/questions/tagged/rust 20190302000000".into()
            )))
        );
        assert_eq!(
            read_answer(&Cursor::Wayback(None), 0, "[]").unwrap(),
            IndexPage::default()
        );
        assert!(read_answer(&Cursor::Wayback(None), 0, "<html>").is_err());
    }

    #[test]
    fn keep_drops_other_tags_old_captures_and_collapses_per_url() {
        let c = |ts: &str, url: &str| Capture {
            at: parse_timestamp(ts).unwrap(),
            original: url.into(),
            warc: None,
        };
        let base = "https://stackoverflow.com/questions/tagged/";
        let all = vec![
            c("20190301000000", &format!("{base}rust")),
            c("20190315000000", &format!("{base}rust")),
            c("20190316000000", &format!("{base}rust?tab=votes")),
            c("20190317000000", &format!("{base}rust-cargo")),
            c("20180101000000", &format!("{base}rust")),
            c("20190401000000", &format!("{base}rust")),
        ];
        let kept = keep(all, &query(), "stackoverflow.com", "rust", None, 100);
        let got: Vec<_> = kept.iter().map(|c| timestamp14(c.at)).collect();
        assert_eq!(got, ["20190301000000", "20190316000000", "20190401000000"]);
        let after = parse_timestamp("20190316000000");
        let kept = keep(
            vec![
                c("20190316000000", &format!("{base}rust")),
                c("20190401000000", &format!("{base}rust")),
            ],
            &query(),
            "stackoverflow.com",
            "rust",
            after,
            100,
        );
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn the_bookmark_moves_the_query_past_the_last_capture() {
        let s = ArchiveSettings::default();
        let after = parse_timestamp("20200101000000");
        let url = request_url(
            &s,
            &query(),
            "stackoverflow.com",
            "c++",
            after,
            &Cursor::Wayback(None),
        )
        .unwrap();
        assert!(url.contains("from=20200101000001"), "{url}");
        // The tag as the listing's path has it (`c%2B%2B`), then the whole
        // URL as one query value.
        assert!(
            url.contains("url=stackoverflow%2Ecom%2Fquestions%2Ftagged%2Fc%252B%252B"),
            "{url}"
        );
        assert!(url.contains("collapse=timestamp:6"), "{url}");
        let cc = Cursor::CommonCrawl {
            crawl: 0,
            page: 0,
            pages: None,
        };
        let url = request_url(&s, &query(), "stackoverflow.com", "c++", None, &cc).unwrap();
        assert!(
            url.starts_with("https://index.commoncrawl.org/CC-MAIN-2019-13-index?"),
            "{url}"
        );
        assert!(
            url.contains("showNumPages=true") && url.contains("from=20190101000000"),
            "{url}"
        );
        let p = read_answer(&cc, 1, r#"{"pages": 2, "pageSize": 5, "blocks": 7}"#).unwrap();
        assert_eq!(
            p.next,
            Some(Cursor::CommonCrawl {
                crawl: 0,
                page: 0,
                pages: Some(2)
            })
        );
        let last = Cursor::CommonCrawl {
            crawl: 0,
            page: 1,
            pages: Some(2),
        };
        assert_eq!(read_answer(&last, 1, "").unwrap().next, None);
    }
}
