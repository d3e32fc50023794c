//! Web archives' indexes as a tag set's source (issue 23 §2), against the
//! fake archive on 127.0.0.1 (`stackcrawl_fakesite::archive`): captures
//! built from the saved fixture pages, listed by a paged CDX index and
//! fetched raw (Wayback `id_`) or by byte range from a WARC file (Common
//! Crawl), with 429s (`Retry-After`), 5xx and a broken gzip member among
//! them. Every question of every capture must reach the output with its
//! capture time, a broken member must be a failed page (not a crash), and
//! a second pass on a store must ask only for newer captures.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use stackcrawl::engine::plan::Plan;
use stackcrawl::model::{FailedPage, PageContext, Question};
use stackcrawl::observe::monitor::Monitor;
use stackcrawl::source::Source;
use stackcrawl::{crawl_watched, Sink};
use stackcrawl_fakesite::archive::{ArchivedCapture, FakeArchive};
use stackcrawl_fakesite::config::CRAWL_BOUND;
use stackcrawl_fakesite::{read_jsonl, TestConfig};

const SO: &str = "https://stackoverflow.com";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/so-html/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 30, 5).unwrap()
}

/// The saved python listings, as captures of the tag's listing URLs.
fn python_captures() -> Vec<ArchivedCapture> {
    let c = |when, url: &str, file| ArchivedCapture {
        at: when,
        original: format!("{SO}/questions/tagged/python{url}"),
        html: fixture(file),
    };
    vec![
        c(at(2013, 6, 1), "", "tagged-python-newest-2013.html"),
        c(
            at(2020, 2, 3),
            "?tab=votes",
            "tagged-python-votes-2020.html",
        ),
        c(
            at(2025, 11, 17),
            "?tab=newest&page=1",
            "tagged-python-newest-2025.html",
        ),
    ]
}

/// The question ids a capture's page lists, read as `parse` reads it.
fn ids_of(c: &ArchivedCapture) -> HashSet<u64> {
    let ctx = PageContext {
        site: "stackoverflow.com".into(),
        base_url: SO.into(),
        tag: "python".into(),
        tab: String::new(),
        page: 1,
    };
    Source::Html
        .read(&ctx, &c.html, c.at)
        .expect("the fixture is a listing")
        .questions
        .iter()
        .map(|q| q.question_id)
        .collect()
}

/// Every question of every capture is in `records`, seen at its capture
/// time (the captures share no question, so each has one time).
fn assert_every_question_at_its_capture_time(records: &[Question], captures: &[ArchivedCapture]) {
    let by_id: BTreeMap<u64, &Question> = records.iter().map(|r| (r.question_id, r)).collect();
    let mut expected = 0;
    for c in captures {
        let ids = ids_of(c);
        assert!(!ids.is_empty());
        expected += ids.len();
        for id in ids {
            let r = by_id
                .get(&id)
                .unwrap_or_else(|| panic!("question {id} of the capture at {} missing", c.at));
            assert_eq!(
                r.fetched_at, c.at,
                "question {id} is seen at its capture time"
            );
            assert_eq!(r.tag, "python");
        }
    }
    assert_eq!(records.len(), expected, "no record from anywhere else");
}

fn config(archive: &FakeArchive, dir: &Path, set: &str) -> TestConfig {
    TestConfig::at(SO, dir)
        .fetch("max_retries = 3")
        .sets(archive.config_table())
        .sets(set)
}

async fn crawl_once(t: &TestConfig, with_store: bool) -> stackcrawl::model::RunSummary {
    crawl_watched_once(t, with_store, None).await
}

async fn crawl_watched_once(
    t: &TestConfig,
    with_store: bool,
    monitor: Option<Monitor>,
) -> stackcrawl::model::RunSummary {
    let config = t.build();
    let plan = Plan::from_config(&config);
    let sink = Sink::create(&config.output, config.output_format).expect("output");
    let store = with_store.then(|| stackcrawl::store::open(&config.store).expect("store"));
    tokio::time::timeout(
        CRAWL_BOUND,
        crawl_watched(config, plan, sink, store, std::future::pending(), monitor),
    )
    .await
    .expect("the crawl ends in bounded time")
    .expect("the crawl runs")
}

fn failures(dir: &Path) -> Vec<FailedPage> {
    match std::fs::read_to_string(dir.join("q.failed.jsonl")) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a failures line"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[actix::test]
async fn wayback_captures_are_paged_fetched_raw_and_seen_at_capture_time() {
    let dir = tempfile::tempdir().unwrap();
    // Two index rows per answer: three captures and one of another tag
    // take two resume keys.
    let archive = FakeArchive::start(2).await;
    let captures = python_captures();
    for c in &captures {
        archive.add_wayback(c.clone());
    }
    archive.add_wayback(ArchivedCapture {
        at: at(2021, 1, 1),
        original: format!("{SO}/questions/tagged/python-3.x"),
        html: fixture("tagged-command-newest-2020.html"),
    });
    archive.fail_next("/cdx/search/cdx", 429, Some(1));
    archive.fail_next("/web/", 503, None);
    let t = config(
        &archive,
        dir.path(),
        "[tag_sets.past]\nsource = \"wayback\"\ntags = [\"python\"]\nfrom = \"2010-01-01\"\ncollapse = \"day\"\n",
    );
    let monitor = Monitor::new("crawl", 30.0);
    let summary = crawl_watched_once(&t, false, Some(monitor.clone())).await;
    assert_eq!(summary.pages_failed, 0, "{:?}", failures(dir.path()));
    // The status page counts the captures the index listed as the plan.
    let pass = &monitor.status().passes["crawl"];
    assert_eq!((pass.pages_planned, pass.pages_done), (3, 3));
    assert_every_question_at_its_capture_time(&read_jsonl(&dir.path().join("q.jsonl")), &captures);

    let hits = archive.hits();
    let index: Vec<_> = hits
        .iter()
        .filter(|h| h.path == "/cdx/search/cdx")
        .collect();
    assert_eq!(index[0].status, 429);
    assert_eq!(
        index.iter().filter(|h| h.status == 200).count(),
        2,
        "two pages of the index: {index:?}"
    );
    assert!(index.last().unwrap().query.contains("resumeKey=key%2D2"));
    assert!(index
        .iter()
        .all(|h| h.query.contains("from=20100101000000")));
    let raw: Vec<_> = hits
        .iter()
        .filter(|h| h.path.starts_with("/web/"))
        .collect();
    assert!(
        raw.iter().all(|h| h.path.contains("id_/")),
        "raw captures only"
    );
    assert_eq!(raw.iter().filter(|h| h.status == 200).count(), 3);
    assert!(
        !raw.iter().any(|h| h.path.contains("python-3.x")),
        "another tag's capture is not fetched"
    );
    // The 429's Retry-After paused the lane: the retry came a second later.
    let waited = index[1].at - index[0].at;
    assert!(
        waited >= std::time::Duration::from_millis(990),
        "Retry-After: 1 honoured, waited {waited:?}"
    );
    println!(
        "issue-23 figures: wayback requests={} (index {} incl. one 429, retried after {:?}; captures {} incl. one 503)",
        hits.len(),
        index.len(),
        waited,
        raw.len()
    );
}

#[actix::test]
async fn commoncrawl_reads_byte_ranges_and_a_broken_member_is_a_failed_page() {
    let dir = tempfile::tempdir().unwrap();
    let archive = FakeArchive::start(1).await;
    let mut captures = python_captures();
    let broken = captures.remove(1);
    archive.add_commoncrawl("CC-MAIN-2013-20", captures[0].clone(), false);
    archive.add_commoncrawl("CC-MAIN-2013-20", broken.clone(), true);
    archive.add_commoncrawl("CC-MAIN-2025-47", captures[1].clone(), false);
    archive.fail_next("/CC-MAIN-2025-47-index", 500, None);
    archive.fail_next("/crawl-data/", 503, Some(1));
    let t = config(
        &archive,
        dir.path(),
        "[tag_sets.cc]\nsource = \"commoncrawl\"\ncrawl = [\"CC-MAIN-2013-20\", \"CC-MAIN-2025-47\"]\ntags = [\"python\"]\n",
    );
    let summary = crawl_once(&t, false).await;
    assert_every_question_at_its_capture_time(&read_jsonl(&dir.path().join("q.jsonl")), &captures);
    assert_eq!(summary.pages_failed, 1);
    let failed = failures(dir.path());
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].kind, "capture");
    assert!(failed[0].error.contains("gzip"), "{}", failed[0].error);
    assert_eq!(failed[0].ctx.page as i64, broken.at.timestamp());
    assert!(failed[0].url.contains("#bytes="), "{}", failed[0].url);

    let hits = archive.hits();
    let ranged: Vec<_> = hits
        .iter()
        .filter(|h| h.path.starts_with("/crawl-data/"))
        .collect();
    assert!(
        ranged.iter().all(|h| h.range.is_some()),
        "every WARC read is a byte range"
    );
    assert_eq!(ranged.iter().filter(|h| h.status == 206).count(), 3);
    // One row per index page: the first crawl's two captures took pages 0, 1.
    assert!(hits
        .iter()
        .any(|h| h.path == "/CC-MAIN-2013-20-index" && h.query.contains("page=1")));
    // --retry-failed asks for that one record again, by the same range.
    let config = t.build();
    let retry = Plan::from_failures(&dir.path().join("q.failed.jsonl"), &config)
        .expect("the failures file names a capture");
    let jobs: Vec<_> = retry.jobs().collect();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].url, failed[0].url);
    let before = archive.hits().len();
    let sink = Sink::append(&config.output, config.output_format).expect("output");
    let again = tokio::time::timeout(
        CRAWL_BOUND,
        crawl_watched(config, retry, sink, None, std::future::pending(), None),
    )
    .await
    .expect("bounded")
    .expect("the retry runs");
    assert_eq!(again.pages_failed, 1, "the member is still broken");
    let retried = &archive.hits()[before..];
    assert_eq!(retried.len(), 1, "no index request, one range: {retried:?}");
    let asked = failed[0].url.split("#bytes=").nth(1).unwrap();
    assert_eq!(retried[0].range, Some(format!("bytes={asked}")));
    println!(
        "issue-23 figures: commoncrawl requests={} (ranges {}), failed pages={}",
        hits.len(),
        ranged.len(),
        failed.len()
    );
}

#[actix::test]
async fn a_second_pass_asks_only_for_captures_after_the_last_one_stored() {
    let dir = tempfile::tempdir().unwrap();
    let archive = FakeArchive::start(10).await;
    let captures = python_captures();
    archive.add_wayback(captures[0].clone());
    archive.add_wayback(captures[1].clone());
    let t = config(
        &archive,
        dir.path(),
        "[tag_sets.past]\nsource = \"wayback\"\ntags = [\"python\"]\n",
    )
    .store();
    crawl_once(&t, true).await;
    let first = archive.hits().len();

    archive.add_wayback(captures[2].clone());
    let summary = crawl_once(&t, true).await;
    assert_eq!(summary.pages_done, 1, "only the new capture");
    let second = &archive.hits()[first..];
    let index: Vec<_> = second
        .iter()
        .filter(|h| h.path == "/cdx/search/cdx")
        .collect();
    let bookmark = (captures[1].at + chrono::Duration::seconds(1))
        .format("%Y%m%d%H%M%S")
        .to_string();
    assert_eq!(index.len(), 1);
    assert!(
        index[0].query.contains(&format!("from={bookmark}")),
        "the index is asked from the last stored capture on: {}",
        index[0].query
    );
    let raw: Vec<_> = second
        .iter()
        .filter(|h| h.path.starts_with("/web/"))
        .collect();
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert!(raw[0]
        .path
        .contains(&captures[2].at.format("%Y%m%d%H%M%S").to_string()));
    assert_every_question_at_its_capture_time(
        &read_jsonl(&dir.path().join("q.jsonl")),
        &captures[2..],
    );
}

/// Runs the service until `until` resolves.
async fn run_until(
    config: stackcrawl::config::Config,
    until: impl std::future::Future<Output = ()> + 'static,
) {
    let (_reload, reloads) = tokio::sync::mpsc::unbounded_channel();
    tokio::time::timeout(
        CRAWL_BOUND,
        stackcrawl::engine::run::run(config, reloads, until),
    )
    .await
    .expect("the run stops in bounded time")
    .expect("the run runs");
}

/// `run` with a wayback tag set due every second: the capture made after
/// the first pass is the only one the second pass fetches, and its index
/// query starts one second after the last capture stored.
async fn run_asks_only_for_newer_captures(store: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let archive = FakeArchive::start(10).await;
    let captures = python_captures();
    archive.add_wayback(captures[0].clone());
    archive.add_wayback(captures[1].clone());
    archive.add_wayback_from_index_request(2, captures[2].clone());
    let t = config(
        &archive,
        dir.path(),
        "[tag_sets.past]\nsource = \"wayback\"\ntags = [\"python\"]\nevery = \"1s\"\n",
    );
    let t = match store {
        Some(url) => t.store_at(url),
        None => t.store(),
    };
    let newest = format!("/web/{}id_/", captures[2].at.format("%Y%m%d%H%M%S"));
    let watched = archive.clone();
    let fetched_newest = async move {
        // The run stops once the second pass fetched the new capture.
        while !watched
            .hits()
            .iter()
            .any(|h| h.path.starts_with(&newest) && h.status == 200)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    run_until(t.build(), fetched_newest).await;

    let hits = archive.hits();
    let index: Vec<_> = hits
        .iter()
        .filter(|h| h.path == "/cdx/search/cdx")
        .collect();
    assert!(index.len() >= 2, "{index:?}");
    assert!(
        !index[0].query.contains("from="),
        "the first pass asks for every capture"
    );
    let bookmark = (captures[1].at + chrono::Duration::seconds(1))
        .format("%Y%m%d%H%M%S")
        .to_string();
    assert!(
        index[1].query.contains(&format!("from={bookmark}")),
        "{}",
        index[1].query
    );
    let mut fetched: Vec<_> = hits
        .iter()
        .filter(|h| h.path.starts_with("/web/"))
        .map(|h| h.path.as_str())
        .collect();
    fetched.sort();
    let before = fetched.len();
    fetched.dedup();
    assert_eq!(
        (before, fetched.len()),
        (3, 3),
        "each capture once: {fetched:?}"
    );
}

#[actix::test]
async fn run_keeps_an_archive_tag_set_current_in_sqlite() {
    run_asks_only_for_newer_captures(None).await;
}

#[actix::test]
async fn run_keeps_an_archive_tag_set_current_in_postgres() {
    let db = stackcrawl_fakesite::pg::TestDb::create();
    run_asks_only_for_newer_captures(Some(&db.url)).await;
}

/// `run` over two captures of one listing a day apart: every question on it
/// gets a snapshot at each capture time, as `parse --store` imports them.
async fn run_keeps_a_snapshot_per_capture(store: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let archive = FakeArchive::start(10).await;
    let page = &python_captures()[2];
    let days: Vec<ArchivedCapture> = [0, 1]
        .iter()
        .map(|d| ArchivedCapture {
            at: page.at + chrono::Duration::days(*d),
            ..page.clone()
        })
        .collect();
    for c in &days {
        archive.add_wayback(c.clone());
    }
    let t = config(
        &archive,
        dir.path(),
        "[tag_sets.past]\nsource = \"wayback\"\ntags = [\"python\"]\n",
    );
    let t = match store {
        Some(url) => t.store_at(url),
        None => t.store(),
    };
    let config = t.build();
    let location = config.store.clone();
    let watched = archive.clone();
    let fetched_both = async move {
        while watched
            .hits()
            .iter()
            .filter(|h| h.path.starts_with("/web/") && h.status == 200)
            .count()
            < 2
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    run_until(config, fetched_both).await;

    let mut history = Vec::new();
    stackcrawl::store::open_read_only(&location)
        .expect("store")
        .export(&mut history, stackcrawl::store::OutputFormat::Jsonl, true)
        .expect("export --history");
    let mut seen: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8(history).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["question_id"].as_u64().unwrap();
        seen.entry(id)
            .or_default()
            .push(v["seen_at"].as_str().unwrap().to_string());
    }
    let ids = ids_of(page);
    assert_eq!(seen.len(), ids.len());
    let want: Vec<DateTime<Utc>> = days.iter().map(|c| c.at).collect();
    for (id, times) in &seen {
        let mut got: Vec<DateTime<Utc>> = times
            .iter()
            .map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc))
            .collect();
        got.sort();
        assert_eq!(got, want, "question {id}: a snapshot per capture");
    }
}

#[actix::test]
async fn run_keeps_a_snapshot_per_capture_in_sqlite() {
    run_keeps_a_snapshot_per_capture(None).await;
}

#[actix::test]
async fn run_keeps_a_snapshot_per_capture_in_postgres() {
    let db = stackcrawl_fakesite::pg::TestDb::create();
    run_keeps_a_snapshot_per_capture(Some(&db.url)).await;
}
