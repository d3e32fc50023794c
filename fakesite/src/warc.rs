//! WARC files built in tests: records as a web archive writes them, HTTP
//! responses for their blocks, gzip members.

use std::io::Write;

/// A WARC record of `kind` for `uri` captured at `date` (RFC 3339).
pub fn record(kind: &str, uri: &str, date: &str, block: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Record-ID: <urn:uuid:{}>\r\nWARC-Target-URI: {uri}\r\nWARC-Date: {date}\r\nContent-Type: application/http; msgtype=response\r\nContent-Length: {}\r\n\r\n",
        block.len(),
        block.len()
    )
    .into_bytes();
    r.extend_from_slice(block);
    r.extend_from_slice(b"\r\n\r\n");
    r
}

/// An HTTP response: status line (`200 OK`), header lines each ending in
/// CRLF, body.
pub fn http_response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\n{headers}\r\n").into_bytes();
    r.extend_from_slice(body);
    r
}

/// `bytes` as one gzip member (a record of a per-record gzipped file).
pub fn gzipped(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("writing to memory");
    e.finish().expect("writing to memory")
}
