//! Every saved listing page as the Wayback Machine replays it (toolbar,
//! injected scripts and styles, links rewritten into the archive, its
//! closing comments; `stackcrawl_fakesite::wayback`), and re-encoded in a
//! charset other than UTF-8: both parsers read it alike, and the records
//! are those of the page as the site served it, URLs the site's own.

use chrono::{TimeZone, Utc};
use stackcrawl::model::{PageContext, Question};
use stackcrawl::source::html::parse::{parse_listing_traced, parse_listing_tree};
use stackcrawl::source::Source;
use stackcrawl_fakesite::warc::{gzipped, http_response, record};
use stackcrawl_fakesite::wayback::{reencoded, replayed};

const TIMESTAMP: &str = "20190304050607";
const PAGE_URL: &str = "https://stackoverflow.com/questions/tagged/python?tab=Newest";

/// Every listing fixture, by name.
fn listings() -> Vec<(String, String)> {
    let dir = format!("{}/tests/fixtures/so-html", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 19, "a fixture was added or lost");
    files
}

fn ctx() -> PageContext {
    stackcrawl::source::archive::listing_context(PAGE_URL).unwrap()
}

fn records(html: &str) -> Vec<Question> {
    let t = Utc.with_ymd_and_hms(2019, 3, 4, 5, 6, 7).unwrap();
    Source::Html.read(&ctx(), html, t).unwrap().questions
}

#[test]
fn a_replayed_page_gives_the_records_of_the_page_as_served() {
    for (name, html) in listings() {
        let archived = replayed(&html, PAGE_URL, TIMESTAMP);
        assert!(archived.contains("web.archive.org/web/") && archived.len() > html.len());
        let (fast, _) = parse_listing_traced(&archived);
        assert_eq!(
            fast,
            parse_listing_tree(&archived),
            "{name}: the parsers differ"
        );
        let want = records(&html);
        assert!(!want.is_empty(), "{name}");
        assert_same(&name, &records(&archived), &want);
    }
}

/// The records alike, or the first that differs (a page's records in
/// full would bury it).
fn assert_same(name: &str, got: &[Question], want: &[Question]) {
    assert_eq!(got.len(), want.len(), "{name}: number of records");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w, "{name}: question {}", w.question_id);
    }
}

/// Re-encoded in windows-1252 (its characters outside it as references)
/// and declared by a `<meta>` after the replay's injected scripts, or in
/// Shift_JIS: decoded by what the page declares, the records are the same.
#[test]
fn a_replayed_page_in_another_charset_gives_the_same_records() {
    for (name, html) in listings() {
        let want = records(&html);
        for label in ["windows-1252", "shift_jis"] {
            let bytes = reencoded(&replayed(&html, PAGE_URL, TIMESTAMP), label);
            assert!(
                std::str::from_utf8(&bytes).is_err() || html.is_ascii(),
                "{name}: {label}"
            );
            let text = stackcrawl::source::charset::decode(&bytes, None);
            let (fast, _) = parse_listing_traced(&text);
            assert_eq!(
                fast,
                parse_listing_tree(&text),
                "{name} in {label}: the parsers differ"
            );
            assert_same(&format!("{name} in {label}"), &records(&text), &want);
        }
    }
}

/// The same through WARC files, as `parse` reads them: replays in
/// windows-1252 declared by the HTTP header alone (gzipped per record) or
/// by their `<meta>` alone (plain), every page's records those of the page
/// as served, at the capture time.
#[test]
fn replayed_pages_in_a_warc_give_the_records_of_the_pages_as_served() {
    let dir = tempfile::tempdir().unwrap();
    let date = "2019-03-04T05:06:07Z";
    let mut want = Vec::new();
    let (mut plain, mut gz) = (Vec::new(), Vec::new());
    for (i, (_, html)) in listings().into_iter().enumerate() {
        want.push(records(&html));
        let replay = replayed(&html, PAGE_URL, TIMESTAMP);
        if i % 2 == 0 {
            let page = reencoded(&replay, "windows-1252");
            let block = http_response("200 OK", "Content-Type: text/html\r\n", &page);
            plain.extend(record("response", PAGE_URL, date, &block));
        } else {
            // The header alone says windows-1252: no <meta> does.
            let page = encoding_rs::WINDOWS_1252.encode(&replay).0;
            let block = http_response(
                "200 OK",
                "Content-Type: text/html; charset=windows-1252\r\n",
                &page,
            );
            gz.extend(gzipped(&record("response", PAGE_URL, date, &block)));
        }
    }
    let files = [dir.path().join("a.warc"), dir.path().join("b.warc.gz")];
    std::fs::write(&files[0], plain).unwrap();
    std::fs::write(&files[1], gz).unwrap();
    let mut got: Vec<Vec<Question>> = Vec::new();
    for file in &files {
        stackcrawl::source::archive::read_warc_file(file, 2, |page| {
            got.push(page.read.unwrap().questions);
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
    }
    // Even pages from the plain file first, then odd ones.
    let order: Vec<usize> = (0..want.len())
        .step_by(2)
        .chain((1..want.len()).step_by(2))
        .collect();
    assert_eq!(got.len(), want.len());
    for (got, i) in got.iter().zip(order) {
        assert_same(&format!("page {i}"), got, &want[i]);
    }
}
