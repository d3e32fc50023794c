//! A fake web archive on 127.0.0.1: the Wayback Machine's CDX server and
//! raw captures (`/cdx/search/cdx`, `/web/{timestamp}id_/{url}`) and Common
//! Crawl's index server and WARC files (`/{crawl}-index`, byte ranges of
//! `/crawl-data/…`), serving captures the test gives it (saved fixture
//! pages). Index answers are paged a few rows at a time (Wayback by
//! `resumeKey`, Common Crawl by `page=`), so paging is exercised; scripted
//! faults answer the next requests on a path with a status (and a
//! `Retry-After`); a capture can be stored as a broken gzip member. Every
//! request is logged (path, query, `Range`) for tests to assert on.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where the fake Common Crawl keeps its one WARC file per crawl.
fn warc_file(crawl: &str) -> String {
    format!("crawl-data/{crawl}/segments/1/warc/fake-00000.warc.gz")
}

/// One capture the archive holds.
#[derive(Debug, Clone)]
pub struct ArchivedCapture {
    pub at: DateTime<Utc>,
    /// The captured URL, e.g. `https://stackoverflow.com/questions/tagged/python`.
    pub original: String,
    pub html: String,
}

/// A Common Crawl index row: the capture and its record's place.
#[derive(Debug, Clone)]
struct CcRow {
    capture: ArchivedCapture,
    offset: u64,
    length: u64,
}

/// A request as the archive saw it.
#[derive(Debug, Clone)]
pub struct ArchiveHit {
    pub path: String,
    pub query: String,
    pub range: Option<String>,
    pub status: u16,
    pub at: std::time::Instant,
}

#[derive(Default)]
struct State {
    wayback: Vec<ArchivedCapture>,
    cc: HashMap<String, Vec<CcRow>>,
    files: HashMap<String, Vec<u8>>,
    /// (path prefix, status, Retry-After seconds) for the next requests.
    faults: VecDeque<(String, u16, Option<u64>)>,
    hits: Vec<ArchiveHit>,
    rows_per_page: usize,
    /// Wayback captures the index lists from its Nth request on.
    later: Vec<(usize, ArchivedCapture)>,
    index_requests: usize,
}

/// The fake archive; it serves until dropped with the test's runtime.
#[derive(Clone)]
pub struct FakeArchive {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeArchive {
    /// Starts on a free port of 127.0.0.1, answering `rows_per_page` index
    /// rows per request. Needs a Tokio runtime (the test's).
    pub async fn start(rows_per_page: usize) -> FakeArchive {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            rows_per_page: rows_per_page.max(1),
            ..State::default()
        }));
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, s).await;
                });
            }
        });
        FakeArchive { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `[archive]` table pointing every archive here.
    pub fn config_table(&self) -> String {
        let b = self.base_url();
        format!(
            "[archive]\nwayback_url = \"{b}\"\ncommoncrawl_index_url = \"{b}\"\ncommoncrawl_data_url = \"{b}\"\nrate = 30.0\n"
        )
    }

    /// Adds a Wayback capture.
    pub fn add_wayback(&self, capture: ArchivedCapture) {
        self.state.lock().unwrap().wayback.push(capture);
    }

    /// Adds a Wayback capture that appears from the index's `nth` request
    /// on (1-based): a capture made while `run` waits for its next pass.
    pub fn add_wayback_from_index_request(&self, nth: usize, capture: ArchivedCapture) {
        self.state.lock().unwrap().later.push((nth, capture));
    }

    /// Adds a Common Crawl capture to `crawl`'s WARC file, one gzip member
    /// per record, with a request and a metadata record around its
    /// response (not indexed, as Common Crawl's). `broken` stores its
    /// member corrupted: a gzip header, then bytes that inflate to nothing.
    pub fn add_commoncrawl(&self, crawl: &str, capture: ArchivedCapture, broken: bool) {
        let mut st = self.state.lock().unwrap();
        let file = st.files.entry(warc_file(crawl)).or_default();
        let date = capture
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let request = b"GET / HTTP/1.1\r\nHost: stackoverflow.com\r\n\r\n";
        file.extend(gzip(&warc_record(
            "request",
            &capture.original,
            &date,
            request,
        )));
        let offset = file.len() as u64;
        let member = if broken {
            let mut m = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
            m.extend_from_slice(b"\xde\xad\xbe\xef not deflate at all \xff\xff\xff\xff");
            m
        } else {
            let http = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n{}",
                capture.html.len(),
                capture.html
            );
            gzip(&warc_record(
                "response",
                &capture.original,
                &date,
                http.as_bytes(),
            ))
        };
        file.extend(&member);
        let length = member.len() as u64;
        file.extend(gzip(&warc_record(
            "metadata",
            &capture.original,
            &date,
            b"fetchTimeMs: 12\r\n",
        )));
        st.cc.entry(crawl.to_string()).or_default().push(CcRow {
            capture,
            offset,
            length,
        });
    }

    /// The next request whose path starts with `prefix` is answered with
    /// `status` (and `Retry-After: secs`), once per call.
    pub fn fail_next(&self, prefix: &str, status: u16, retry_after: Option<u64>) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push_back((prefix.to_string(), status, retry_after));
    }

    pub fn hits(&self) -> Vec<ArchiveHit> {
        self.state.lock().unwrap().hits.clone()
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

fn warc_record(kind: &str, uri: &str, date: &str, block: &[u8]) -> Vec<u8> {
    let content_type = match kind {
        "response" => "application/http; msgtype=response",
        "request" => "application/http; msgtype=request",
        _ => "application/warc-fields",
    };
    let mut r = format!(
        "WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Target-URI: {uri}\r\nWARC-Date: {date}\r\nWARC-Record-ID: <urn:uuid:{kind}-{date}>\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        block.len()
    )
    .into_bytes();
    r.extend_from_slice(block);
    r.extend_from_slice(b"\r\n\r\n");
    r
}

fn ts14(at: DateTime<Utc>) -> String {
    at.format("%Y%m%d%H%M%S").to_string()
}

/// A CDX `from`/`to` value padded to 14 digits (`to` to the period's end).
fn padded(v: &str, end: bool) -> String {
    let pad = if end {
        "99991231235959"
    } else {
        "00000101000000"
    };
    format!("{v}{}", &pad[v.len().min(14)..])
}

fn params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
        .collect()
}

/// The captures of `all` the query's `url` prefix, `from` and `to` select,
/// in index order (URL, then time).
fn select<'a>(
    all: impl Iterator<Item = &'a ArchivedCapture>,
    p: &HashMap<String, String>,
) -> Vec<&'a ArchivedCapture> {
    let prefix = p.get("url").cloned().unwrap_or_default();
    let from = p.get("from").map(|f| padded(f, false));
    let to = p.get("to").map(|t| padded(t, true));
    let mut rows: Vec<&ArchivedCapture> = all
        .filter(|c| {
            let bare = c
                .original
                .split_once("://")
                .map_or(&c.original[..], |(_, r)| r);
            let bare = bare.strip_prefix("www.").unwrap_or(bare);
            let ts = ts14(c.at);
            bare.starts_with(&prefix)
                && from.as_ref().is_none_or(|f| ts >= *f)
                && to.as_ref().is_none_or(|t| ts <= *t)
        })
        .collect();
    rows.sort_by(|a, b| (&a.original, a.at).cmp(&(&b.original, b.at)));
    rows
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let (status, headers, body) = answer(&head, &state);
        let reason = match status {
            200 => "OK",
            206 => "Partial Content",
            404 => "Not Found",
            429 => "Too Many Requests",
            _ => "Error",
        };
        let mut out = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        stream.write_all(out.as_bytes()).await?;
        stream.write_all(&body).await?;
    }
}

type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

fn answer(head: &str, state: &Mutex<State>) -> Answer {
    let mut lines = head.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_string();
    let range = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.trim().to_string());
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut st = state.lock().unwrap();
    let fault = st
        .faults
        .iter()
        .position(|(prefix, _, _)| path.starts_with(prefix.as_str()))
        .and_then(|i| st.faults.remove(i));
    let (status, headers, body) = match fault {
        Some((_, status, retry_after)) => {
            let headers = retry_after
                .map(|s| vec![("Retry-After", s.to_string())])
                .unwrap_or_default();
            (status, headers, b"slow down".to_vec())
        }
        None => route(&mut st, path, query, range.as_deref()),
    };
    st.hits.push(ArchiveHit {
        path: path.to_string(),
        query: query.to_string(),
        range,
        status,
        at: std::time::Instant::now(),
    });
    (status, headers, body)
}

fn route(st: &mut State, path: &str, query: &str, range: Option<&str>) -> Answer {
    let p = params(query);
    let json = || vec![("Content-Type", "application/json".to_string())];
    if path == "/cdx/search/cdx" {
        st.index_requests += 1;
        let n = st.index_requests;
        let (due, later): (Vec<_>, Vec<_>) = st.later.drain(..).partition(|(at, _)| *at <= n);
        st.later = later;
        st.wayback.extend(due.into_iter().map(|(_, c)| c));
        let rows = select(st.wayback.iter(), &p);
        let start: usize = p
            .get("resumeKey")
            .and_then(|k| k.strip_prefix("key-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let limit: usize = p
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(usize::MAX);
        let take = st.rows_per_page.min(limit);
        let mut out = vec![serde_json::json!([
            "urlkey",
            "timestamp",
            "original",
            "mimetype",
            "statuscode",
            "digest",
            "length"
        ])];
        for c in rows.iter().skip(start).take(take) {
            out.push(serde_json::json!([
                "com,stackoverflow)/questions/tagged",
                ts14(c.at),
                c.original,
                "text/html",
                "200",
                "DIGEST",
                c.html.len().to_string()
            ]));
        }
        if start + take < rows.len() {
            out.push(serde_json::json!([]));
            out.push(serde_json::json!([format!("key-{}", start + take)]));
        }
        return (200, json(), serde_json::to_vec(&out).unwrap_or_default());
    }
    if let Some(rest) = path.strip_prefix("/web/") {
        let Some((ts, url)) = rest.split_once("id_/") else {
            return (404, vec![], b"not raw".to_vec());
        };
        // The captured URL's own query arrives as the request's.
        let url = if query.is_empty() {
            url.to_string()
        } else {
            format!("{url}?{query}")
        };
        let found = st
            .wayback
            .iter()
            .find(|c| ts14(c.at) == ts && c.original == url);
        return match found {
            Some(c) => (
                200,
                vec![("Content-Type", "text/html; charset=utf-8".to_string())],
                c.html.clone().into_bytes(),
            ),
            None => (404, vec![], b"no such capture".to_vec()),
        };
    }
    if let Some(crawl) = path
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix("-index"))
    {
        let rows = st.cc.get(crawl).map(|r| r.as_slice()).unwrap_or_default();
        let selected = select(rows.iter().map(|r| &r.capture), &p);
        if selected.is_empty() {
            return (404, vec![], b"No Captures found for: the url".to_vec());
        }
        let per = st.rows_per_page;
        if p.contains_key("showNumPages") {
            let body = serde_json::json!({
                "pages": selected.len().div_ceil(per),
                "pageSize": per,
                "blocks": selected.len(),
            });
            return (200, json(), body.to_string().into_bytes());
        }
        let page: usize = p.get("page").and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut body = String::new();
        for c in selected.iter().skip(page * per).take(per) {
            let row = rows
                .iter()
                .find(|r| std::ptr::eq(&r.capture, *c))
                .expect("a selected row is a row");
            body.push_str(
                &serde_json::json!({
                    "urlkey": "com,stackoverflow)/questions/tagged",
                    "timestamp": ts14(c.at),
                    "url": c.original,
                    "mime": "text/html",
                    "status": "200",
                    "digest": "DIGEST",
                    "length": row.length.to_string(),
                    "offset": row.offset.to_string(),
                    "filename": warc_file(crawl),
                })
                .to_string(),
            );
            body.push('\n');
        }
        return (200, json(), body.into_bytes());
    }
    if let Some(file) = path.strip_prefix('/').and_then(|f| st.files.get(f)) {
        let Some((first, last)) = range
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        else {
            return (200, vec![], file.clone());
        };
        if first > last || last >= file.len() {
            return (416, vec![], Vec::new());
        }
        return (
            206,
            vec![(
                "Content-Range",
                format!("bytes {first}-{last}/{}", file.len()),
            )],
            file[first..=last].to_vec(),
        );
    }
    (404, vec![], b"not found".to_vec())
}
