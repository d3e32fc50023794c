//! The HTTP response a WARC `response` record's block holds: status line,
//! headers, body, with the body's transfer and content encodings undone
//! where the archive kept them.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    #[error("no HTTP status line")]
    NoStatusLine,
    #[error("no end of headers")]
    NoHeaderEnd,
    #[error("bad chunked body")]
    BadChunks,
    #[error("bad gzip body: {0}")]
    BadGzip(String),
    /// An encoding other than gzip (brotli, deflate…): not read.
    #[error("content encoding `{0}` not read")]
    Encoding(String),
    #[error("body over {0} bytes")]
    TooLarge(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// An HTML page, by its Content-Type or, without one, by its first byte.
    pub fn is_html(&self) -> bool {
        match self.header("Content-Type") {
            Some(t) => t.to_ascii_lowercase().contains("html"),
            None => self
                .body
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|&b| b == b'<'),
        }
    }
}

/// Reads `block` as an HTTP response whose decoded body is at most
/// `max_body` bytes.
pub fn parse_response(block: &[u8], max_body: usize) -> Result<Response, HttpError> {
    let (head_len, body_start) = memchr::memmem::find(block, b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| memchr::memmem::find(block, b"\n\n").map(|i| (i, i + 2)))
        .ok_or(HttpError::NoHeaderEnd)?;
    let head = String::from_utf8_lossy(&block[..head_len]);
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or("");
    let mut words = status_line.split_whitespace();
    let status = match (words.next(), words.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => {
            code.parse().map_err(|_| HttpError::NoStatusLine)?
        }
        _ => return Err(HttpError::NoStatusLine),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let raw = &block[body_start..];
    let chunked = resp
        .header("Transfer-Encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let body = if chunked { dechunk(raw)? } else { raw.to_vec() };
    let encoding = resp
        .header("Content-Encoding")
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    resp.body = match encoding.as_str() {
        "" | "identity" => body,
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            MultiGzDecoder::new(&body[..])
                .take(max_body as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| HttpError::BadGzip(e.to_string()))?;
            out
        }
        other => return Err(HttpError::Encoding(other.to_string())),
    };
    if resp.body.len() > max_body {
        return Err(HttpError::TooLarge(max_body));
    }
    Ok(resp)
}

/// Undoes `Transfer-Encoding: chunked`: hex size lines, each chunk followed
/// by a line end, a zero size at the end (trailers ignored).
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    loop {
        let eol = memchr::memchr(b'\n', raw).ok_or(HttpError::BadChunks)?;
        let line = String::from_utf8_lossy(&raw[..eol]);
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| HttpError::BadChunks)?;
        raw = &raw[eol + 1..];
        if size == 0 {
            return Ok(out);
        }
        if size > raw.len() {
            return Err(HttpError::BadChunks);
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size..];
        raw = raw
            .strip_prefix(b"\r\n")
            .or_else(|| raw.strip_prefix(b"\n"))
            .ok_or(HttpError::BadChunks)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_headers_and_body() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html>",
            100,
        )
        .unwrap();
        assert_eq!(
            (r.status, r.is_html(), &r.body[..]),
            (200, true, &b"<html>"[..])
        );
        let r = parse_response(b"HTTP/1.0 404 Not Found\n\n", 100).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(parse_response(b"garbage", 100), Err(HttpError::NoHeaderEnd));
        assert_eq!(
            parse_response(b"hello\r\n\r\n", 100),
            Err(HttpError::NoStatusLine)
        );
        let json = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}",
            100,
        )
        .unwrap();
        assert!(!json.is_html());
    }

    #[test]
    fn chunked_and_gzip_bodies_are_undone() {
        let html = b"<html><body>listing</body></html>";
        let gz = crate::source::archive::warc::tests::gz(html);
        let mut block =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
                .to_vec();
        let (a, b) = gz.split_at(10);
        for part in [a, b] {
            block.extend_from_slice(format!("{:x};ext=1\r\n", part.len()).as_bytes());
            block.extend_from_slice(part);
            block.extend_from_slice(b"\r\n");
        }
        block.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(parse_response(&block, 100).unwrap().body, html);
        assert_eq!(
            parse_response(&block, 10),
            Err(HttpError::TooLarge(10)),
            "a gzip bomb stops at the cap"
        );
        let cut = &block[..block.len() - 20];
        assert_eq!(parse_response(cut, 100), Err(HttpError::BadChunks));
        let br = b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\nxx";
        assert_eq!(
            parse_response(br, 100),
            Err(HttpError::Encoding("br".into()))
        );
    }
}
