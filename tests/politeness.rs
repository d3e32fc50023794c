//! Politeness against FakeSite on 127.0.0.1: robots.txt honoured before any
//! page, the daily budget counted across restarts, server pauses and block
//! pages, timeouts, size caps and redirects.

use std::process::Command;
use std::time::Duration;

use stackcrawl::robots::RobotsError;
use stackcrawl::CrawlError;
use stackcrawl_fakesite::{crawl_site, FakeSite, Fault, TestConfig};

const DISALLOW_ALL: &str = "User-agent: *\nDisallow: /\n";

#[actix::test]
async fn robots_disallow_stops_before_any_page_is_fetched() {
    let site = FakeSite::builder()
        .tag("a", 100)
        .robots(DISALLOW_ALL)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let err = crawl_site(
        TestConfig::new(&site, dir.path())
            .tag_set("a", &["a"], 2)
            .build(),
    )
    .await
    .expect_err("robots.txt forbids the crawl");
    match &err {
        CrawlError::Robots(RobotsError::Disallowed {
            forbidden, planned, ..
        }) => {
            assert_eq!((*forbidden, *planned), (2, 2));
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("API"),
        "points to the API source: {message}"
    );
    assert_eq!(site.robots_hits(), 1);
    assert!(site.page_hits().is_empty(), "no page fetched");
}

#[test]
fn robots_disallow_exits_2_from_the_command_line() {
    let site = FakeSite::builder()
        .tag("a", 10)
        .robots(DISALLOW_ALL)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stackcrawl"))
        .args([
            "crawl",
            "--tag",
            "a",
            "--base-url",
            &site.base_url(),
            "--output",
        ])
        .arg(dir.path().join("q.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("robots.txt") && stderr.contains("forbids"),
        "{stderr}"
    );
    assert!(site.page_hits().is_empty());
}

#[actix::test]
async fn obey_robots_false_crawls_with_a_warning() {
    let site = FakeSite::builder()
        .tag("a", 60)
        .robots(DISALLOW_ALL)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .site("obey_robots = false")
            .tag_set("a", &["a"], 2)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!(s.pages_done, 2);
    assert_eq!(site.robots_hits(), 0, "not even fetched");
}

#[actix::test]
async fn unreachable_robots_is_retried_then_denied_by_default() {
    let mut b = FakeSite::builder().tag("a", 60);
    for _ in 0..3 {
        b = b.robots_fault(Fault::Status {
            status: 500,
            retry_after: None,
        });
    }
    let site = b.start();
    let dir = tempfile::tempdir().unwrap();
    let err = crawl_site(
        TestConfig::new(&site, dir.path())
            .fetch("max_retries = 2")
            .tag_set("a", &["a"], 1)
            .build(),
    )
    .await
    .expect_err("denied");
    assert!(
        matches!(err, CrawlError::Robots(RobotsError::Unreachable { .. })),
        "{err:?}"
    );
    assert_eq!(site.robots_hits(), 3, "first try and two retries");
    assert!(site.page_hits().is_empty());
}

#[actix::test]
async fn unreachable_robots_can_be_configured_to_allow() {
    let site = FakeSite::builder()
        .tag("a", 60)
        .robots_fault(Fault::Status {
            status: 503,
            retry_after: None,
        })
        .robots_fault(Fault::Status {
            status: 503,
            retry_after: None,
        })
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .fetch("max_retries = 1")
            .site("robots_unreachable = \"allow\"")
            .tag_set("a", &["a"], 2)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!(s.pages_done, 2);
}

#[actix::test]
async fn daily_budget_stops_the_crawl_and_counts_across_restarts() {
    let site = FakeSite::builder().tag("a", 1000).start();
    let dir = tempfile::tempdir().unwrap();
    // 6 requests a day: robots.txt and 5 pages.
    let cfg = || {
        TestConfig::new(&site, dir.path())
            .fetch("fetchers = 2\ndaily_budget = 6")
            .tag_set("a", &["a"], 10)
            .build()
    };
    let first = crawl_site(cfg()).await.unwrap();
    assert_eq!(first.pages_done, 5);
    assert_eq!(first.pages_skipped, 5);
    assert_eq!(first.budget_left, 0);
    let resets = first.budget_resets_at.expect("stopped for the budget");
    assert_eq!(
        resets.time(),
        chrono::NaiveTime::MIN,
        "resets at UTC midnight"
    );
    assert_eq!(site.hits().len(), 6);

    // A restart the same day finds the budget spent and fetches nothing.
    let err = crawl_site(cfg())
        .await
        .expect_err("no budget for robots.txt");
    assert!(err.to_string().contains("budget"), "{err}");
    assert_eq!(site.hits().len(), 6, "nothing more was requested");
}

#[actix::test]
async fn retry_after_as_an_http_date_pauses_the_pool() {
    let when = chrono::Utc::now() + chrono::Duration::seconds(3);
    let site = FakeSite::builder()
        .tag("a", 500)
        .fault(
            "a",
            1,
            Fault::Status {
                status: 503,
                retry_after: Some(when.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
            },
        )
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .fetch("burst = 1\nfetchers = 1")
            .tag_set("a", &["a"], 3)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!(s.pages_done, 3);
    let hits = site.page_hits();
    let limited = hits.iter().position(|h| h.status == 503).unwrap();
    let next = &hits[limited + 1];
    // The date has one-second resolution, so it names a moment 2 to 3 s
    // after the test began; page 1 was served within moments of the start.
    assert!(
        next.at.duration_since(hits[limited].at) >= Duration::from_millis(1500),
        "next request after {:?}",
        next.at.duration_since(hits[limited].at)
    );
}

#[actix::test]
async fn a_block_page_pauses_the_pool_and_is_retried() {
    let site = FakeSite::builder()
        .tag("a", 200)
        .fault("a", 2, Fault::Captcha)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .fetch("fetchers = 2\nblock_pause_secs = 1.0")
            .tag_set("a", &["a"], 4)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!(s.pages_done, 4);
    assert_eq!(s.retries, 1);
    let hits = site.page_hits();
    let blocked = hits.iter().position(|h| h.page == Some(2)).unwrap();
    let block_at = hits[blocked].at;
    // At most the one other fetcher's request may already have been on its way.
    let early = hits
        .iter()
        .filter(|h| h.at > block_at && h.at.duration_since(block_at) < Duration::from_millis(950))
        .count();
    assert!(early <= 1, "{early} requests during the block pause");
}

#[actix::test]
async fn a_stalled_response_times_out_and_is_retried() {
    let site = FakeSite::builder()
        .tag("a", 100)
        .fault("a", 1, Fault::Stall(Duration::from_secs(5)))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .fetch("timeout_secs = 0.5\nread_timeout_secs = 0.5")
            .tag_set("a", &["a"], 2)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!(s.pages_done, 2);
    assert_eq!(s.retries, 1);
    assert_eq!(
        site.page_hits()
            .iter()
            .filter(|h| h.page == Some(1))
            .count(),
        2
    );
}

#[actix::test]
async fn a_huge_body_is_refused_not_buffered() {
    let site = FakeSite::builder()
        .tag("a", 100)
        .fault("a", 2, Fault::Huge(50 * 1024 * 1024))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .fetch("max_body_bytes = 1048576")
            .tag_set("a", &["a"], 2)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!(s.pages_done, 1);
    assert_eq!(s.pages_failed, 1);
    assert!(
        s.failures[0].to_string().contains("too_large"),
        "{}",
        s.failures[0]
    );
    assert_eq!(
        site.page_hits().len(),
        2,
        "a refused body is not fetched again"
    );
}

#[actix::test]
async fn a_page_cut_short_with_a_matching_length_is_retried() {
    let site = FakeSite::builder()
        .tag("a", 100)
        .fault("a", 1, Fault::CutPage)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .tag_set("a", &["a"], 2)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!(s.pages_done, 2);
    assert_eq!(s.retries, 1);
    assert_eq!(
        s.questions, 100,
        "the short page was not accepted as a short page"
    );
}

#[actix::test]
async fn a_body_that_is_not_html_is_fetched_once() {
    let site = FakeSite::builder()
        .tag("a", 100)
        .fault(
            "a",
            1,
            Fault::Body("Service temporarily unavailable.\n".into()),
        )
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .tag_set("a", &["a"], 2)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!((s.pages_done, s.pages_failed, s.retries), (1, 1, 0));
    assert!(
        s.failures[0].to_string().contains("not HTML"),
        "{}",
        s.failures[0]
    );
    let page_1 = site
        .page_hits()
        .iter()
        .filter(|h| h.page == Some(1))
        .count();
    assert_eq!(page_1, 1, "not fetched again");
}

#[actix::test]
async fn redirects_off_the_host_are_not_followed() {
    let site = FakeSite::builder()
        .tag("a", 100)
        .fault(
            "a",
            1,
            Fault::Redirect("http://192.0.2.1/questions/tagged/a".into()),
        )
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .fetch("max_retries = 0")
            .tag_set("a", &["a"], 1)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!(s.pages_failed, 1);
    assert!(
        s.failures[0].to_string().contains("host"),
        "{}",
        s.failures[0]
    );
}

#[actix::test]
async fn lost_pages_go_to_a_failures_file_that_a_rerun_takes() {
    let mut b = FakeSite::builder().tag("a", 150);
    for _ in 0..2 {
        b = b.fault(
            "a",
            2,
            Fault::Status {
                status: 500,
                retry_after: None,
            },
        );
    }
    let site = b.start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("max_retries = 1")
        .tag_set("a", &["a"], 3)
        .build();
    let failures = cfg.failures_path.clone();
    let output = cfg.output.clone();
    let s = crawl_site(cfg).await.unwrap();
    assert_eq!(s.pages_failed, 1);
    let listed = std::fs::read_to_string(&failures).unwrap();
    assert_eq!(listed.lines().count(), 1);
    assert!(listed.contains("\"page\":2"), "{listed}");

    // The re-run fetches only page 2 and adds its records to the output.
    let out = Command::new(env!("CARGO_BIN_EXE_stackcrawl"))
        .args(["crawl", "--base-url", &site.base_url(), "--retry-failed"])
        .arg(&failures)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pages: Vec<u32> = site.page_hits().iter().map(|h| h.page.unwrap()).collect();
    assert_eq!(pages.iter().filter(|p| **p == 2).count(), 3);
    assert_eq!(pages.len(), 5);
    let records = std::fs::read_to_string(&output).unwrap();
    assert_eq!(
        records.lines().count(),
        150,
        "all pages' records, once each"
    );
    assert!(!failures.exists(), "nothing failed this time");
}

#[actix::test]
async fn repeated_429s_lower_the_request_rate() {
    let mut b = FakeSite::builder().tag("a", 1000);
    for _ in 0..3 {
        b = b.fault(
            "a",
            1,
            Fault::Status {
                status: 429,
                retry_after: Some("0".into()),
            },
        );
    }
    let site = b.start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .fetch("rate = 20.0\nburst = 1\nfetchers = 1")
            .tag_set("a", &["a"], 8)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!(s.pages_done, 8);
    assert_eq!(s.rate_limited, 3);
    let hits = site.page_hits();
    let last = hits.iter().rposition(|h| h.status == 429).unwrap();
    let after = &hits[last + 1..];
    // Pages 2 and 3 went out between the 429s of page 1.
    assert!(
        after.len() >= 5,
        "{} requests after the last 429",
        after.len()
    );
    // At the configured 20/s five requests span 0.2 s; after three 429s
    // the effective rate is 20/8 = 2.5/s, so they span 1.6 s.
    let span = after[4].at.duration_since(after[0].at);
    assert!(span >= Duration::from_millis(1500), "{span:?}");
}
