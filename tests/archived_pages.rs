//! Every saved listing page as the Wayback Machine replays it (toolbar,
//! injected scripts and styles, links rewritten into the archive, its
//! closing comments; `stackcrawl_fakesite::wayback`), and re-encoded in a
//! charset other than UTF-8: both parsers read it alike, and the records
//! are those of the page as the site served it, URLs the site's own.

use chrono::{TimeZone, Utc};
use stackcrawl::model::{PageContext, Question};
use stackcrawl::source::html::parse::{parse_listing_traced, parse_listing_tree};
use stackcrawl::source::Source;
use stackcrawl_fakesite::wayback::replayed;

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
