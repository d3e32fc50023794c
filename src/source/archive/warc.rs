//! WARC 1.0/1.1 records read one at a time from a byte stream: a header of
//! `Name: value` lines up to a blank line, `Content-Length` bytes of block,
//! then two CRLFs. Pure and streaming: memory holds one record's header and
//! at most one block no longer than the caller's cap, whatever the file's
//! size. Bad input never panics; a broken record is returned as an error and
//! the next call looks for the next `WARC/1.` line, so the rest of the file
//! is still read.

use std::io::{self, BufRead, Read};

use flate2::bufread::GzDecoder;
use thiserror::Error;

/// A header line longer than this is no WARC header: resync.
const MAX_LINE: usize = 64 * 1024;
/// Real headers have a dozen fields; thousands means garbage.
const MAX_FIELDS: usize = 256;
/// Failed reads in a row after which the stream is given up.
const MAX_FAILED_READS: u32 = 16;

/// Why one record could not be read. The reader goes on after it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WarcError {
    /// Where a record should start was something else (garbage, a record
    /// whose length was wrong).
    #[error("no WARC record where one should start")]
    NotARecord,
    #[error("bad header: {0}")]
    BadHeader(String),
    #[error("bad Content-Length: {0}")]
    BadLength(String),
    /// The block is not followed by a line end: its length was wrong.
    #[error("block of {0} bytes not followed by CRLF CRLF")]
    BadEnd(u64),
    #[error("truncated: the file ends inside a record")]
    Truncated,
    /// The bytes could not be read: a broken gzip member, an I/O error.
    #[error("unreadable: {0}")]
    Io(String),
}

/// A record's header: its version line and fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub version: String,
    pub fields: Vec<(String, String)>,
    pub content_length: u64,
}

impl Head {
    /// A field's value; names are case-insensitive (WARC 1.1 §5).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn record_type(&self) -> &str {
        self.get("WARC-Type").unwrap_or("")
    }

    /// The target URI, without the angle brackets WARC 1.0 writers put
    /// around it.
    pub fn target_uri(&self) -> Option<&str> {
        self.get("WARC-Target-URI")
            .map(|u| u.trim_start_matches('<').trim_end_matches('>'))
    }
}

/// What became of a record's block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Read(Vec<u8>),
    /// The caller did not want it: passed over unread.
    Passed,
    /// Longer than the cap: passed over unread.
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub head: Head,
    pub block: Block,
}

/// Reads records from `R`, which must already be decompressed (see
/// [`GzMembers`]).
pub struct WarcReader<R> {
    inner: R,
    max_block: u64,
    /// The last record was broken: skip to the next `WARC/1.` line.
    resync: bool,
    /// Reads that failed in a row.
    failed_reads: u32,
    line: Vec<u8>,
}

impl<R: BufRead> WarcReader<R> {
    pub fn new(inner: R, max_block: u64) -> WarcReader<R> {
        WarcReader {
            inner,
            max_block,
            resync: false,
            failed_reads: 0,
            line: Vec::new(),
        }
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The next record, `None` at the end. `want` sees the header and says
    /// whether the block is read (a block not wanted costs no memory).
    pub fn next_record(
        &mut self,
        want: impl FnOnce(&Head) -> bool,
    ) -> Option<Result<Record, WarcError>> {
        // A reader that fails every time (a dying disk) would otherwise
        // give broken records for ever.
        if self.failed_reads >= MAX_FAILED_READS {
            return None;
        }
        let r = self.read_record(want).transpose();
        match &r {
            Some(Err(WarcError::Io(_))) => self.failed_reads += 1,
            _ => self.failed_reads = 0,
        }
        if matches!(r, Some(Err(_))) {
            self.resync = true;
        }
        r
    }

    fn read_record(
        &mut self,
        want: impl FnOnce(&Head) -> bool,
    ) -> Result<Option<Record>, WarcError> {
        // The version line: skip blank lines (and, after a broken record,
        // anything) before it.
        // A disk that fails every read must not keep us here.
        let mut io_errors = 0;
        let version = loop {
            let line = match read_line(&mut self.inner, &mut self.line) {
                // The break that sent us looking, seen by the layer below
                // (a gzip member's checksum): not another broken record.
                Err(WarcError::Io(_)) if self.resync && io_errors < 16 => {
                    io_errors += 1;
                    continue;
                }
                line => line?,
            };
            match line {
                Line::End => return Ok(None),
                Line::TooLong => {
                    if !self.resync {
                        return Err(WarcError::NotARecord);
                    }
                }
                Line::Full => {
                    let text = trim_eol(&self.line);
                    if text.starts_with(b"WARC/1.") {
                        self.resync = false;
                        break String::from_utf8_lossy(text).into_owned();
                    }
                    if !text.is_empty() && !self.resync {
                        return Err(WarcError::NotARecord);
                    }
                }
            }
        };
        let mut fields = Vec::new();
        loop {
            match read_line(&mut self.inner, &mut self.line)? {
                Line::End => return Err(WarcError::Truncated),
                Line::TooLong => return Err(WarcError::BadHeader("line too long".into())),
                Line::Full => {}
            }
            let text = trim_eol(&self.line);
            if text.is_empty() {
                break;
            }
            if fields.len() >= MAX_FIELDS {
                return Err(WarcError::BadHeader("too many fields".into()));
            }
            let text = String::from_utf8_lossy(text);
            let Some((name, value)) = text.split_once(':') else {
                return Err(WarcError::BadHeader(format!(
                    "no colon in `{}`",
                    clip(&text)
                )));
            };
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
        let length = fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| WarcError::BadLength("missing".into()))?;
        let content_length: u64 = length
            .parse()
            .map_err(|_| WarcError::BadLength(format!("`{}`", clip(length))))?;
        let head = Head {
            version,
            fields,
            content_length,
        };
        // Asked first, so a big record nobody wants is passed over as such.
        let wanted = want(&head);
        let block = if !wanted {
            skip(&mut self.inner, content_length)?;
            Block::Passed
        } else if content_length > self.max_block {
            skip(&mut self.inner, content_length)?;
            Block::TooLarge
        } else {
            let mut block = Vec::with_capacity(content_length as usize);
            let got = (&mut self.inner)
                .take(content_length)
                .read_to_end(&mut block)
                .map_err(io_error)?;
            if (got as u64) < content_length {
                return Err(WarcError::Truncated);
            }
            Block::Read(block)
        };
        self.end_of_block(content_length)?;
        Ok(Some(Record { head, block }))
    }

    /// Consumes the CRLF CRLF after a block. A lone LF is taken too, and a
    /// file may end without them; anything else right after the block means
    /// its length was wrong.
    fn end_of_block(&mut self, length: u64) -> Result<(), WarcError> {
        for i in 0..2 {
            let buf = self.inner.fill_buf().map_err(io_error)?;
            match buf.first() {
                None => return Ok(()),
                Some(b'\n') => self.inner.consume(1),
                Some(b'\r') => {
                    self.inner.consume(1);
                    let buf = self.inner.fill_buf().map_err(io_error)?;
                    if buf.first() == Some(&b'\n') {
                        self.inner.consume(1);
                    }
                }
                // One line end then the next record: a lax writer.
                Some(_) if i == 1 => return Ok(()),
                Some(_) => return Err(WarcError::BadEnd(length)),
            }
        }
        // A gzip member's checksum is checked at its end, just past these
        // bytes: a broken one belongs to this record, not the next.
        self.inner.fill_buf().map_err(io_error)?;
        Ok(())
    }
}

fn clip(s: &str) -> &str {
    let end = s.char_indices().nth(60).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

fn io_error(e: io::Error) -> WarcError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => WarcError::Truncated,
        _ => WarcError::Io(e.to_string()),
    }
}

fn skip(r: &mut impl BufRead, n: u64) -> Result<(), WarcError> {
    let got = io::copy(&mut r.take(n), &mut io::sink()).map_err(io_error)?;
    if got < n {
        return Err(WarcError::Truncated);
    }
    Ok(())
}

enum Line {
    Full,
    /// Longer than [`MAX_LINE`]: consumed up to its end, `buf` cleared.
    TooLong,
    End,
}

/// One line into `buf` (with its line end), never holding more than
/// [`MAX_LINE`] bytes of it: a file of garbage without newlines costs no
/// memory. A last line without a line end counts as a line.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> Result<Line, WarcError> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let avail = r.fill_buf().map_err(io_error)?;
        if avail.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => Line::End,
                (true, true) => Line::TooLong,
                (true, false) => Line::Full,
            });
        }
        any = true;
        let (take, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if !too_long {
            if buf.len() + take > MAX_LINE {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&avail[..take]);
            }
        }
        r.consume(take);
        if done {
            return Ok(if too_long { Line::TooLong } else { Line::Full });
        }
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A file's bytes, gunzipped when they are gzip: one member after another
/// (Common Crawl and the Wayback Machine write one per record). A broken
/// member is reported once as an `InvalidData` error and reading goes on at
/// the next gzip header, so one bad member costs the records in it, not
/// the rest of the file.
pub struct GzMembers<R: BufRead> {
    state: Member<Counted<R>>,
    /// Where the member being read started.
    member_start: u64,
    /// Members that could not be decoded.
    pub broken: u64,
    /// The bytes since the last break have not yet made a whole member:
    /// further failures are the same break, not counted again.
    recovering: bool,
}

enum Member<R: BufRead> {
    Reading(GzDecoder<R>),
    Between(R),
    /// Only while a state change is under way.
    Gone,
}

const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

impl<R: BufRead> GzMembers<R> {
    pub fn new(inner: R) -> GzMembers<R> {
        GzMembers {
            state: Member::Between(Counted { inner, pos: 0 }),
            member_start: 0,
            broken: 0,
            recovering: false,
        }
    }

    /// After a break: drops everything up to the next gzip header, and at
    /// least one byte if the broken member consumed none (so every attempt
    /// makes progress); a member that failed only at its checksum leaves
    /// the next one's header right here.
    fn resync(r: &mut Counted<R>, member_start: u64) -> io::Result<()> {
        let mut first = r.pos == member_start;
        loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            let from = usize::from(first);
            first = false;
            let found = memchr::memchr_iter(0x1f, &buf[from.min(buf.len())..])
                .map(|i| i + from)
                .find(|&i| {
                    let rest = &buf[i..];
                    let n = rest.len().min(3);
                    // A header cut by the buffer's edge: stop there and look
                    // again once the buffer is refilled from it.
                    rest[..n] == GZIP_MAGIC[..n]
                });
            match found {
                Some(0) => return Ok(()),
                Some(i) => {
                    r.consume(i);
                    // Whole header in view: done; else refill from here.
                    if r.fill_buf()?.len() >= 3 {
                        return Ok(());
                    }
                }
                None => {
                    let n = buf.len();
                    r.consume(n);
                }
            }
        }
    }
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match std::mem::replace(&mut self.state, Member::Gone) {
                Member::Gone => return Ok(0),
                Member::Between(mut r) => {
                    if r.fill_buf()?.is_empty() {
                        self.state = Member::Between(r);
                        return Ok(0);
                    }
                    self.member_start = r.pos;
                    self.state = Member::Reading(GzDecoder::new(r));
                }
                Member::Reading(mut d) => match d.read(out) {
                    Ok(0) => {
                        self.recovering = false;
                        self.state = Member::Between(d.into_inner());
                    }
                    Ok(n) => {
                        self.state = Member::Reading(d);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                        self.state = Member::Reading(d);
                    }
                    Err(e) => {
                        let mut r = d.into_inner();
                        Self::resync(&mut r, self.member_start)?;
                        self.state = Member::Between(r);
                        if !self.recovering {
                            self.recovering = true;
                            self.broken += 1;
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("broken gzip member: {e}"),
                            ));
                        }
                    }
                },
            }
        }
    }
}

/// A reader that knows how far it has been read.
struct Counted<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.pos += n as u64;
        self.inner.consume(n);
    }
}

/// The file's first bytes say gzip.
pub fn is_gzip(start: &[u8]) -> bool {
    start.starts_with(&GZIP_MAGIC[..2])
}

/// The start of a file (as many bytes as are at hand) is the start of a
/// WARC file, gzipped or not.
pub fn looks_like_warc(start: &[u8]) -> bool {
    const MAGIC: &[u8] = b"WARC/1.";
    if is_gzip(start) {
        let mut head = Vec::with_capacity(MAGIC.len());
        let _ = GzDecoder::new(start)
            .take(MAGIC.len() as u64)
            .read_to_end(&mut head);
        head == MAGIC
    } else {
        start.starts_with(MAGIC)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    pub(crate) fn record(kind: &str, uri: &str, block: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Target-URI: {uri}\r\nWARC-Date: 2019-03-04T05:06:07Z\r\nContent-Length: {}\r\n\r\n",
            block.len()
        )
        .into_bytes();
        r.extend_from_slice(block);
        r.extend_from_slice(b"\r\n\r\n");
        r
    }

    pub(crate) fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Every record's (type, block or what became of it), and the errors.
    fn read_all(bytes: &[u8], max: u64) -> Vec<Result<(String, Block), WarcError>> {
        let mut out = Vec::new();
        let reader: Box<dyn BufRead> = if is_gzip(bytes) {
            Box::new(io::BufReader::new(GzMembers::new(bytes)))
        } else {
            Box::new(bytes)
        };
        let mut r = WarcReader::new(reader, max);
        while let Some(rec) = r.next_record(|h| h.record_type() != "request") {
            out.push(rec.map(|r| (r.head.record_type().to_string(), r.block)));
            assert!(out.len() < 1000, "no end");
        }
        out
    }

    fn ok(kind: &str, block: &[u8]) -> Result<(String, Block), WarcError> {
        Ok((kind.to_string(), Block::Read(block.to_vec())))
    }

    #[test]
    fn records_come_out_in_order_plain_and_gzipped_per_record() {
        let recs = [
            record("warcinfo", "", b"software: test\r\n"),
            record(
                "request",
                "https://stackoverflow.com/",
                b"GET / HTTP/1.1\r\n\r\n",
            ),
            record(
                "response",
                "<https://stackoverflow.com/>",
                b"HTTP/1.1 200 OK\r\n\r\nhi",
            ),
            record("metadata", "https://stackoverflow.com/", b""),
        ];
        let want = vec![
            ok("warcinfo", b"software: test\r\n"),
            Ok(("request".into(), Block::Passed)),
            ok("response", b"HTTP/1.1 200 OK\r\n\r\nhi"),
            ok("metadata", b""),
        ];
        assert_eq!(read_all(&recs.concat(), 1 << 20), want);
        let per_record: Vec<u8> = recs.iter().flat_map(|r| gz(r)).collect();
        assert_eq!(read_all(&per_record, 1 << 20), want);
        // A whole file as one gzip member reads the same.
        assert_eq!(read_all(&gz(&recs.concat()), 1 << 20), want);
        let mut r = WarcReader::new(&recs[2][..], 100);
        let head = r.next_record(|_| true).unwrap().unwrap().head;
        assert_eq!(head.target_uri(), Some("https://stackoverflow.com/"));
        assert_eq!(head.get("warc-date"), Some("2019-03-04T05:06:07Z"));
        assert_eq!(head.version, "WARC/1.1");
    }

    #[test]
    fn a_block_over_the_cap_is_passed_over() {
        let recs = [
            record("response", "u", &[b'x'; 500]),
            record("response", "u", b"small"),
        ]
        .concat();
        assert_eq!(
            read_all(&recs, 100),
            vec![
                Ok(("response".into(), Block::TooLarge)),
                ok("response", b"small")
            ]
        );
    }

    #[test]
    fn broken_records_are_reported_and_the_rest_still_read() {
        let good = record("response", "u", b"fine");
        let bad_length =
            b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: lots\r\n\r\nxx\r\n\r\n";
        let wrong_length =
            b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 2\r\n\r\nfour\r\n\r\n";
        let no_colon = b"WARC/1.0\r\nWARC-Type response\r\nContent-Length: 2\r\n\r\nxx\r\n\r\n";
        let file = [
            &b"garbage\nmore garbage\n"[..],
            &good,
            bad_length,
            &good,
            wrong_length,
            no_colon,
            &good,
            &good[..good.len() - 10],
        ]
        .concat();
        let got = read_all(&file, 1 << 20);
        assert_eq!(
            got,
            vec![
                Err(WarcError::NotARecord),
                ok("response", b"fine"),
                Err(WarcError::BadLength("`lots`".into())),
                ok("response", b"fine"),
                Err(WarcError::BadEnd(2)),
                Err(WarcError::BadHeader(
                    "no colon in `WARC-Type response`".into()
                )),
                ok("response", b"fine"),
                Err(WarcError::Truncated),
            ]
        );
    }

    #[test]
    fn a_broken_gzip_member_costs_its_records_only() {
        let recs: Vec<Vec<u8>> = (0..4)
            .map(|i| record("response", "u", format!("block {i}").as_bytes()))
            .collect();
        let mut members: Vec<Vec<u8>> = recs.iter().map(|r| gz(r)).collect();
        // Corrupt member 1's compressed data, and cut the last one short.
        let mid = members[1].len() / 2;
        members[1][mid] ^= 0xff;
        members[1][mid + 1] ^= 0x55;
        let cut = members[3].len() - 12;
        members[3].truncate(cut);
        let file = members.concat();
        let mut reader = WarcReader::new(io::BufReader::new(GzMembers::new(&file[..])), 1 << 20);
        let mut got = Vec::new();
        while let Some(r) = reader.next_record(|_| true) {
            got.push(r.map(|r| r.block));
        }
        let read: Vec<_> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(
            read,
            [
                &Block::Read(b"block 0".to_vec()),
                &Block::Read(b"block 2".to_vec())
            ],
            "{got:?}"
        );
        assert_eq!(got[0], Ok(Block::Read(b"block 0".to_vec())));
        assert!(got[1].is_err(), "{got:?}");
        assert!(got.last().unwrap().is_err(), "{got:?}");
        assert_eq!(reader.get_ref().get_ref().broken, 2);
    }

    #[test]
    fn no_input_makes_it_panic_or_loop() {
        // Every prefix of a real file, plain and gzipped, and bytes of
        // every value: each read ends, with errors at worst.
        let file = [
            record("response", "u", b"HTTP/1.1 200 OK\r\n\r\nbody"),
            record("request", "u", b"GET"),
        ]
        .concat();
        let zipped: Vec<u8> = [gz(&file[..40]), gz(&file[40..])].concat();
        for source in [&file, &zipped] {
            for n in 0..=source.len() {
                let got = read_all(&source[..n], 1 << 20);
                assert!(got.len() <= 3, "{n}: {got:?}");
                let mut flipped = source.clone();
                flipped[n.min(source.len() - 1)] ^= 0x5a;
                read_all(&flipped, 1 << 20);
            }
        }
        let noise: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        read_all(&noise, 1 << 20);
        let mut gz_noise = vec![0x1f, 0x8b, 0x08];
        gz_noise.extend_from_slice(&noise);
        read_all(&gz_noise, 1 << 20);
    }

    #[test]
    fn a_reader_that_always_fails_ends_the_file() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        for gzip in [false, true] {
            let inner: Box<dyn BufRead> = if gzip {
                Box::new(io::BufReader::new(GzMembers::new(io::BufReader::new(
                    Failing,
                ))))
            } else {
                Box::new(io::BufReader::new(Failing))
            };
            let mut r = WarcReader::new(inner, 100);
            let mut n = 0;
            while let Some(rec) = r.next_record(|_| true) {
                assert!(matches!(rec, Err(WarcError::Io(_))), "{rec:?}");
                n += 1;
            }
            assert!(n <= 16, "{n}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Whatever the blocks (line ends, `WARC/1.` lines, binary), records
        /// written come back as written, plain or gzipped per record.
        #[test]
        fn records_round_trip(
            blocks in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..8),
            prefix in proptest::prelude::any::<bool>(),
        ) {
            let recs: Vec<Vec<u8>> = blocks
                .iter()
                .map(|b| {
                    let mut b = b.clone();
                    if prefix {
                        b.splice(0..0, b"\r\n\r\nWARC/1.0\r\n".iter().copied());
                    }
                    record("response", "u", &b)
                })
                .collect();
            let want: Vec<_> = recs
                .iter()
                .map(|r| {
                    let start = memchr::memmem::find(r, b"\r\n\r\n").unwrap() + 4;
                    ok("response", &r[start..r.len() - 4])
                })
                .collect();
            proptest::prop_assert_eq!(read_all(&recs.concat(), 1 << 20), want.clone());
            let zipped: Vec<u8> = recs.iter().flat_map(|r| gz(r)).collect();
            proptest::prop_assert_eq!(read_all(&zipped, 1 << 20), want);
        }

        /// Arbitrary bytes, and arbitrary bytes after a gzip header: an end,
        /// with errors at worst.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
            gzip in proptest::prelude::any::<bool>(),
        ) {
            let mut input = if gzip { vec![0x1f, 0x8b, 0x08] } else { Vec::new() };
            input.extend(bytes);
            read_all(&input, 1 << 20);
            let _ = crate::source::archive::http::parse_response(&input, 1000);
        }
    }

    #[test]
    fn a_warc_is_told_by_its_first_bytes() {
        let rec = record("warcinfo", "", b"x");
        assert!(looks_like_warc(&rec));
        assert!(looks_like_warc(&gz(&rec)));
        assert!(!looks_like_warc(b"<!DOCTYPE html>"));
        assert!(!looks_like_warc(&gz(b"<!DOCTYPE html>")));
        assert!(!looks_like_warc(&[0x1f, 0x8b]));
        assert!(!looks_like_warc(b""));
    }
}
