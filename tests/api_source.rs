//! The Stack Exchange API as a source (issue 6), against the fake API on
//! 127.0.0.1: paging by `has_more`, records equal to what the server served,
//! `backoff` and `throttle_violation` honoured (asserted at the server), a
//! fatal error stopping the crawl with nothing retried, a clean stop before
//! the quota runs out, and the app key reaching the server but no log line
//! or file.
//!
//! Every test prints its figures (`issue-6 figures: ...`) for the closing
//! note; `cargo test --test api_source -- --nocapture` shows them.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use stackcrawl::model::{FailedPage, Question};
use stackcrawl::source::api::ApiError;
use stackcrawl::source::JobError;
use stackcrawl::CrawlError;
use stackcrawl_fakesite::api::{api_link, last_activity, query_param, ApiFault};
use stackcrawl_fakesite::{
    budget_used, crawl_site, hits_per_page, read_jsonl, FakeQuestion, FakeSite, Hit, TestConfig,
};

/// Every field the API gives must equal what the server served, decoded.
fn assert_api_record(r: &Question, q: &FakeQuestion) {
    assert_eq!(r.title, q.title, "title of {}", q.id);
    assert_eq!(r.url, api_link(q), "url of {}", q.id);
    assert_eq!(r.votes, q.votes, "votes of {}", q.id);
    assert_eq!(r.answers, q.answers, "answers of {}", q.id);
    assert_eq!(r.has_accepted_answer, q.accepted, "accepted of {}", q.id);
    assert_eq!(r.views, q.views, "views of {}", q.id);
    assert!(r.views_exact, "the API's view counts are exact");
    assert_eq!(r.tags, q.tags, "tags of {}", q.id);
    assert_eq!(r.author_name.as_deref(), Some(q.author.as_str()));
    assert_eq!(r.author_reputation, Some(q.reputation), "rep of {}", q.id);
    assert_eq!(r.asked_at, Some(q.asked), "asked_at of {}", q.id);
    assert_eq!(
        r.modified_at,
        Some(last_activity(q)),
        "activity of {}",
        q.id
    );
    assert_eq!(r.excerpt, "", "the default filter sends no body");
}

/// Records equal, one for one, the questions the server holds for `tag`
/// up to `n`.
fn assert_served(records: &[Question], site: &FakeSite, tag: &str, n: usize) {
    let mine: HashMap<u64, &Question> = records
        .iter()
        .filter(|r| r.tag == tag)
        .map(|r| (r.question_id, r))
        .collect();
    let served = site.questions(tag);
    assert_eq!(mine.len(), n.min(served.len()), "records of {tag}");
    for q in served.iter().take(n) {
        let r = mine
            .get(&q.id)
            .unwrap_or_else(|| panic!("{tag}: {} missing", q.id));
        assert_api_record(r, q);
    }
}

/// Requests that arrived in `(from, from + len)`.
fn arrivals_within(hits: &[Hit], from: std::time::Instant, len: Duration) -> Vec<&Hit> {
    hits.iter()
        .filter(|h| h.at > from && h.at < from + len)
        .collect()
}

#[actix::test]
async fn api_tags_page_until_has_more_is_false_and_records_equal_the_server() {
    let site = FakeSite::builder()
        .tag("c++", 250)
        .tag("rust", 100)
        .tag("haskell", 7)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 3")
        .api_set(&["c++", "rust", "haskell", "nosuchtag"], 100, 20)
        .build();
    let output = cfg.output.clone();
    let s = crawl_site(cfg).await.expect("crawl runs");

    let hits = site.api_hits();
    let per_page = hits_per_page(&hits);
    // Exactly the pages that hold questions, plus one for an empty tag: no
    // request past a `has_more: false`, none twice.
    let mut expected: Vec<(String, u32)> = vec![
        ("c++".into(), 1),
        ("c++".into(), 2),
        ("c++".into(), 3),
        ("rust".into(), 1),
        ("haskell".into(), 1),
        ("nosuchtag".into(), 1),
    ];
    expected.sort();
    let mut got: Vec<_> = per_page.keys().cloned().collect();
    got.sort();
    assert_eq!(got, expected);
    assert!(per_page.values().all(|&n| n == 1), "{per_page:?}");
    assert!(
        site.hits().iter().all(|h| h.raw_path != "/robots.txt"),
        "robots.txt does not apply to the API"
    );
    for h in &hits {
        let q = |name| query_param(&h.raw_path, name);
        assert_eq!(q("site").as_deref(), Some("stackoverflow"));
        assert_eq!(q("sort").as_deref(), Some("creation"));
        assert_eq!(q("order").as_deref(), Some("desc"));
        assert_eq!(q("pagesize").as_deref(), Some("100"));
        assert_eq!(q("key"), None, "no key configured, none sent");
        if h.tag.as_deref() == Some("c++") {
            assert!(h.raw_path.contains("tagged=c%2B%2B&"), "{}", h.raw_path);
        }
    }

    let records = read_jsonl(&output);
    assert_served(&records, &site, "c++", 250);
    assert_served(&records, &site, "rust", 100);
    assert_served(&records, &site, "haskell", 7);
    assert_eq!(records.len(), 357);
    assert!(records.iter().all(|r| r.site == "127.0.0.1"));

    assert_eq!(s.pages_done, 6);
    assert_eq!(s.pages_failed, 0);
    assert_eq!(
        s.pages_skipped,
        4 * 20 - 6,
        "pages past has_more never fetched"
    );
    assert_eq!(s.questions, 357);
    let api = s.quota.expect("the run used the API");
    assert_eq!(api.requests, 6);
    assert_eq!(api.backoffs, 0);
    assert_eq!(api.quota_remaining, Some(10_000 - 6));
    assert_eq!(api.quota_max, Some(10_000));
    assert_eq!(api.quota_resets_at, None);
    eprintln!(
        "issue-6 figures: paging: requests={} records={} served={} pages_skipped={}",
        api.requests,
        records.len(),
        250 + 100 + 7,
        s.pages_skipped
    );
}

#[actix::test]
async fn backoff_pauses_every_api_request_for_backoff_plus_one_seconds() {
    const BACKOFF: u64 = 1;
    let site = FakeSite::builder()
        .tag("a", 300)
        .tag("b", 300)
        .api_fault("a", 2, ApiFault::Backoff(BACKOFF))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let fetchers = 2;
    let cfg = TestConfig::new(&site, dir.path())
        .fetch(format!("fetchers = {fetchers}"))
        .api_set(&["a", "b"], 50, 6)
        .build();
    let output = cfg.output.clone();
    let s = crawl_site(cfg).await.expect("crawl runs");

    let hits = site.api_hits();
    let told = hits
        .iter()
        .find(|h| h.tag.as_deref() == Some("a") && h.page == Some(2))
        .expect("page 2 of a was requested");
    let pause = Duration::from_secs(BACKOFF + 1);
    // The pause starts when the response is read, after it arrived, so no
    // request may arrive within `pause` of it, except one that another
    // fetcher had already started: at most fetchers - 1.
    let early = arrivals_within(&hits, told.at, pause);
    assert!(
        early.len() < fetchers,
        "{} requests within the backoff: {:?}",
        early.len(),
        early.iter().map(|h| &h.raw_path).collect::<Vec<_>>()
    );
    let after: Vec<_> = hits.iter().filter(|h| h.at > told.at).collect();
    let resumed = after.iter().filter(|h| h.at >= told.at + pause).count();
    assert_eq!(resumed + early.len(), after.len());
    assert!(resumed > 0, "the crawl went on after the backoff");

    assert_eq!(s.pages_done, 12);
    assert_eq!(s.pages_failed, 0);
    let records = read_jsonl(&output);
    assert_served(&records, &site, "a", 300);
    assert_served(&records, &site, "b", 300);
    let api = s.quota.expect("API used");
    assert_eq!(api.backoffs, 1);
    assert_eq!(api.requests, 12);
    let first_after = after
        .iter()
        .map(|h| h.at.duration_since(told.at))
        .filter(|d| *d >= pause)
        .min()
        .unwrap_or_default();
    eprintln!(
        "issue-6 figures: backoff: requests={} backoffs_received={} in_flight_at_backoff={} next_request_after={:.3}s (pause {}s) records={} served=600",
        api.requests,
        api.backoffs,
        early.len(),
        first_after.as_secs_f64(),
        pause.as_secs(),
        records.len()
    );
}

#[actix::test]
async fn a_throttle_violation_pauses_the_api_pool_then_the_page_succeeds() {
    let site = FakeSite::builder()
        .tag("a", 150)
        .tag("b", 150)
        // "available in 0 seconds": the configured minimum decides.
        .api_fault("a", 2, ApiFault::throttle_violation(0))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let fetchers = 2;
    let cfg = TestConfig::new(&site, dir.path())
        .fetch(format!("fetchers = {fetchers}"))
        .api("throttle_violation_pause_secs = 1.5")
        .api_set(&["a", "b"], 50, 3)
        .build();
    let output = cfg.output.clone();
    let s = crawl_site(cfg).await.expect("crawl runs");

    let hits = site.api_hits();
    let a2: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.tag.as_deref() == Some("a") && h.page == Some(2))
        .collect();
    assert_eq!(a2.len(), 2, "refused once, then served");
    assert_eq!((a2[0].status, a2[1].status), (400, 200));
    let pause = Duration::from_millis(1500);
    assert!(
        a2[1].at.duration_since(a2[0].at) >= pause,
        "retried after {:?}",
        a2[1].at.duration_since(a2[0].at)
    );
    let early = arrivals_within(&hits, a2[0].at, pause);
    assert!(
        early.len() < fetchers,
        "{} requests in the pause",
        early.len()
    );

    assert_eq!(s.pages_done, 6);
    assert_eq!(s.pages_failed, 0);
    assert_eq!(s.retries, 1);
    let api = s.quota.expect("API used");
    assert_eq!(api.throttle_violations, 1);
    assert_eq!(api.requests, 7);
    let records = read_jsonl(&output);
    assert_served(&records, &site, "a", 150);
    assert_served(&records, &site, "b", 150);
    eprintln!(
        "issue-6 figures: throttle_violation: requests={} violations={} retry_after={:.3}s (min pause 1.5s) in_flight={} records={} served=300",
        api.requests,
        api.throttle_violations,
        a2[1].at.duration_since(a2[0].at).as_secs_f64(),
        early.len(),
        records.len()
    );
}

#[actix::test]
async fn a_bad_parameter_stops_the_crawl_at_once_and_nothing_is_retried() {
    let site = FakeSite::builder()
        .tag("a", 300)
        .tag("b", 300)
        .api_fault(
            "a",
            2,
            ApiFault::error(400, "bad_parameter", "tagged is not a valid tag"),
        )
        .start();
    let dir = tempfile::tempdir().unwrap();
    // One fetcher: nothing is in flight when the error arrives, so the
    // server log shows exactly what the crawl did after it.
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 1\nmax_retries = 4")
        .api_set(&["a", "b"], 100, 3)
        .build();
    let output = cfg.output.clone();
    let failures = cfg.failures_path.clone();
    let err = crawl_site(cfg)
        .await
        .expect_err("the API refused the crawl");
    match &err {
        CrawlError::Refused {
            tag, page, error, ..
        } => {
            assert_eq!((tag.as_str(), *page), ("a", 2));
            let JobError::Api(error) = error.as_ref() else {
                panic!("an API refusal: {error:?}")
            };
            assert_eq!(
                error,
                &ApiError::BadParameter {
                    message: "tagged is not a valid tag".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("bad_parameter"), "{message}");
    assert!(message.contains("tagged is not a valid tag"), "{message}");

    let hits = site.api_hits();
    let order: Vec<_> = hits
        .iter()
        .map(|h| (h.tag.clone().unwrap_or_default(), h.page.unwrap_or(0)))
        .collect();
    assert_eq!(
        order,
        [("a".into(), 1), ("b".into(), 1), ("a".into(), 2)],
        "no retry of a/2 and no request after it"
    );
    // What was fetched before the error is kept.
    let records = read_jsonl(&output);
    assert_served(&records, &site, "a", 100);
    assert_served(&records, &site, "b", 100);
    let listed: Vec<FailedPage> = std::fs::read_to_string(&failures)
        .expect("failures file written")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].ctx.tag.as_str(), listed[0].ctx.page), ("a", 2));
    assert_eq!(listed[0].kind, "bad_parameter");
    assert_eq!(listed[0].attempts, 1);
    eprintln!(
        "issue-6 figures: bad_parameter: requests={} retries_of_refused_page=0 records_kept={}",
        hits.len(),
        records.len()
    );
}

#[actix::test]
async fn running_out_of_quota_stops_cleanly_and_keeps_the_records() {
    // 8 requests a day; stop when 3 are left: after the 5th response.
    let site = FakeSite::builder().tag("a", 1_000).api_quota(8).start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2")
        .api("stop_at_quota_remaining = 3")
        .api_set(&["a"], 100, 10)
        .build();
    let output = cfg.output.clone();
    let s = crawl_site(cfg).await.expect("a quota stop is a clean end");

    let hits = site.api_hits();
    assert_eq!(hits.len(), 5, "paging by has_more leaves nothing in flight");
    assert!(hits.iter().all(|h| h.status == 200));
    assert_eq!(s.pages_done, 5);
    assert_eq!(s.pages_skipped, 5);
    assert_eq!(s.pages_failed, 0);
    let api = s.quota.clone().expect("API used");
    assert_eq!(api.quota_remaining, Some(3));
    assert_eq!(api.quota_max, Some(8));
    let resets = api
        .quota_resets_at
        .expect("the summary says why it stopped");
    assert_eq!(resets.time(), chrono::NaiveTime::MIN, "UTC midnight");
    assert!(resets > chrono::Utc::now());
    assert_eq!(s.budget_resets_at, Some(resets));
    let records = read_jsonl(&output);
    assert_served(&records, &site, "a", 500);
    eprintln!(
        "issue-6 figures: quota: requests={} quota_remaining={:?} pages_skipped={} records_kept={} resets_at={}",
        api.requests,
        api.quota_remaining,
        s.pages_skipped,
        records.len(),
        resets.to_rfc3339()
    );
}

#[actix::test]
async fn html_and_api_tag_sets_share_one_crawl_and_robots_covers_only_html() {
    // A robots.txt that would forbid the API path if it applied to it.
    let site = FakeSite::builder()
        .tag("python", 60)
        .tag("rust", 120)
        .robots("User-agent: *\nDisallow: /2.3/\n")
        .start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2")
        .api_set(&["rust"], 100, 3)
        .sets("[tag_sets.web]\ntags = [\"python\"]\npagesize = 50\npages = 3\n")
        .build();
    let output = cfg.output.clone();
    let s = crawl_site(cfg).await.expect("crawl runs");
    assert_eq!(site.robots_hits(), 1, "checked once, for the HTML pages");
    assert_eq!(site.api_hits().len(), 2, "rust: 120 questions, 2 API pages");
    let records = read_jsonl(&output);
    assert_served(&records, &site, "rust", 120);
    assert_eq!(records.iter().filter(|r| r.tag == "python").count(), 60);
    assert_eq!(s.quota.map(|a| a.requests), Some(2));
}

/// Runs the CLI with the app key in its environment and debug logs in JSON.
fn run_cli(config_path: &Path, key: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stackcrawl"))
        .args(["--log-format", "json", "crawl", "--config"])
        .arg(config_path)
        .env("STACKCRAWL_API_KEY", key)
        .env("RUST_LOG", "debug")
        .output()
        .expect("the binary runs")
}

#[test]
fn the_app_key_reaches_the_server_but_no_log_line_output_or_failures_file() {
    let key = "s3cr3tK3y*(x)";
    let site = FakeSite::builder()
        .tag("a", 120)
        .api_key(key)
        // Page 2 fails for good, so the failures file is written.
        .api_fault("a", 2, ApiFault::error(500, "internal_error", "boom"))
        .api_fault("a", 2, ApiFault::error(500, "internal_error", "boom"))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config_path = TestConfig::new(&site, dir.path())
        .fetch("max_retries = 1")
        .api_set(&["a"], 50, 5)
        .write();
    let out = run_cli(&config_path, key);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a page was lost: {stderr}");

    let hits = site.api_hits();
    // Page 3 is not asked for: page 2 never said whether there is more.
    assert_eq!(hits.len(), 3, "a/1, a/2 twice");
    for h in &hits {
        assert_eq!(query_param(&h.raw_path, "key").as_deref(), Some(key));
    }
    assert!(stderr.lines().count() > 10, "debug logs were captured");
    assert!(stderr.contains("quota_remaining"), "{stderr}");
    let encoded = "s3cr3tK3y%2A%28x%29";
    for (what, text) in [
        ("log", stderr.to_string()),
        (
            "failures file",
            std::fs::read_to_string(dir.path().join("q.failed.jsonl")).expect("written"),
        ),
        (
            "output",
            std::fs::read_to_string(dir.path().join("q.jsonl")).expect("written"),
        ),
    ] {
        assert!(!text.contains("s3cr3tK3y"), "the key is in the {what}");
        assert!(!text.contains(encoded), "the encoded key is in the {what}");
    }
    let failures = std::fs::read_to_string(dir.path().join("q.failed.jsonl")).unwrap();
    assert!(failures.contains("\"page\":2"), "{failures}");
    assert!(
        failures.contains("\"page\":3") && failures.contains("not_reached"),
        "the page after the lost one is listed for a retry: {failures}"
    );
}

#[test]
fn a_bad_key_exits_1_with_the_apis_message_and_nothing_is_retried() {
    let site = FakeSite::builder()
        .tag("a", 300)
        .api_key("the-right-key")
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config_path = TestConfig::new(&site, dir.path())
        .api_set(&["a"], 100, 3)
        .write();
    let out = run_cli(&config_path, "a-wrong-key-123");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("API error 400 bad_parameter: key"),
        "the API's error_name and message: {stderr}"
    );
    assert!(!stderr.contains("a-wrong-key-123"), "the key is logged");
    assert_eq!(site.api_hits().len(), 1, "refused once, never retried");
}

#[actix::test]
async fn three_tags_paging_side_by_side_never_send_inside_a_backoff() {
    // Regression: with tags paging side by side, requests already handed to
    // other fetchers went out 2 ms after a `backoff` response was read; the
    // server counted throttle violations. The server here answers any
    // request arriving inside a backoff window with a violation.
    let mut b = FakeSite::builder()
        .tag("a", 200)
        .tag("b", 200)
        .tag("c", 200)
        .latency(Duration::from_millis(15));
    for (tag, page) in [("a", 1), ("b", 2), ("c", 3), ("a", 3), ("b", 4)] {
        b = b.api_fault(tag, page, ApiFault::Backoff(1));
    }
    let site = b.start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 6\nburst = 6")
        .api_set(&["a", "b", "c"], 50, 4)
        .build();
    let output = cfg.output.clone();
    let s = crawl_site(cfg).await.expect("crawl runs");
    assert_eq!(site.api_violations(), 0, "requests sent inside a backoff");
    let api = s.quota.expect("API used");
    assert_eq!(api.backoffs, 5);
    assert_eq!(api.throttle_violations, 0);
    assert_eq!(api.requests, 12, "each page once");
    let records = read_jsonl(&output);
    for tag in ["a", "b", "c"] {
        assert_served(&records, &site, tag, 200);
    }
    eprintln!(
        "issue-9 figures: three API tags, 5 backoffs: violations={} requests={} wall={:.2}s",
        site.api_violations(),
        api.requests,
        s.wall_time.as_secs_f64()
    );
}

#[actix::test]
async fn with_the_network_down_page_2_waits_for_page_1_and_no_budget_is_spent() {
    // Regression: page 1 failed on connection errors, and pages 2-5 were
    // requested anyway (has_more unknown), each retried, each charged to
    // the daily budget though none reached a server.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::at(&format!("http://127.0.0.1:{port}"), dir.path())
        .fetch("retry_base_ms = 10\nmax_retries = 2")
        .api_set(&["a"], 50, 5)
        .build();
    let failures_path = cfg.failures_path.clone();
    let s = crawl_site(cfg).await.expect("crawl ends");
    assert_eq!(s.pages_done, 0);
    assert_eq!(s.pages_failed, 5);
    assert_eq!(s.requests, 0, "no request reached a server");
    let used = budget_used(&dir.path().join("budget.sqlite"));
    assert_eq!(used, 0, "nothing charged for requests that never left");
    let lines = std::fs::read_to_string(failures_path).unwrap();
    let failed: Vec<FailedPage> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = failed
        .iter()
        .find(|f| f.ctx.page == 1)
        .expect("page 1 listed");
    assert_eq!(first.attempts, 3, "page 1 tried 1 + max_retries times");
    for page in 2..=5 {
        let f = failed.iter().find(|f| f.ctx.page == page).expect("listed");
        assert_eq!(
            (f.attempts, f.kind.as_str()),
            (0, "not_reached"),
            "page {page} was never requested"
        );
    }
}
