//! Politeness against FakeSite on 127.0.0.1: robots.txt honoured before any
//! page, the daily budget counted across restarts, server pauses and block
//! pages, timeouts, size caps and redirects.

use std::time::Duration;

use stackcrawl::lane::robots::RobotsError;
use stackcrawl::CrawlError;
use stackcrawl_fakesite::service::command;
use stackcrawl_fakesite::{
    crawl_site, FakeSite, Fault, Hit, Limiter, RateHeaders, Shape, TestConfig,
};

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
    let out = command(env!("CARGO_BIN_EXE_stackcrawl"), dir.path())
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

/// A robots.txt that keeps answering 5xx, or 429 (which asks us to slow
/// down, not that anything goes), is unreachable: denied after retries.
#[actix::test]
async fn unreachable_robots_is_retried_then_denied_by_default() {
    for status in [500, 429] {
        let mut b = FakeSite::builder().tag("a", 60);
        for _ in 0..3 {
            b = b.robots_fault(Fault::Status {
                status,
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
            "HTTP {status}: {err:?}"
        );
        assert_eq!(
            site.robots_hits(),
            3,
            "HTTP {status}: first try and two retries"
        );
        assert!(site.page_hits().is_empty(), "HTTP {status}");
    }
}

/// A 429 on robots.txt asks us to slow down; it does not say the site has
/// no rules (RFC 9309 lets a 4xx mean "no rules", and Google treats a 429
/// like a 5xx): the crawler waits as asked, asks again and obeys the answer.
#[actix::test]
async fn a_robots_txt_429_is_waited_out_and_its_rules_obeyed() {
    let site = FakeSite::builder()
        .tag("a", 60)
        .robots(DISALLOW_ALL)
        .robots_fault(Fault::Status {
            status: 429,
            retry_after: Some("1".into()),
        })
        .start();
    let dir = tempfile::tempdir().unwrap();
    let err = crawl_site(
        TestConfig::new(&site, dir.path())
            .tag_set("a", &["a"], 2)
            .build(),
    )
    .await
    .expect_err("robots.txt forbids the pages");
    assert!(
        matches!(err, CrawlError::Robots(RobotsError::Disallowed { .. })),
        "{err:?}"
    );
    let robots: Vec<_> = site
        .hits()
        .into_iter()
        .filter(|h| h.tag.is_none())
        .collect();
    assert_eq!(robots.len(), 2, "asked again after the 429");
    assert!(
        robots[1].at - robots[0].at >= Duration::from_secs(1),
        "Retry-After waited out: {:?}",
        robots[1].at - robots[0].at
    );
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

/// Two sites on one host, on different ports, sharing a budget file: a
/// Retry-After from one is kept for it alone, and each is counted apart.
#[actix::test]
async fn a_pause_asked_by_a_site_on_one_port_does_not_hold_a_site_on_another() {
    let refusing = FakeSite::builder()
        .tag("a", 100)
        .fault("a", 1, Fault::retry_after(429, 3600))
        .start();
    let other = FakeSite::builder().tag("a", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = |site: &FakeSite, pages| {
        TestConfig::new(site, dir.path())
            .fetch("fetchers = 1\nmax_retries = 0")
            .tag_set("a", &["a"], pages)
            .build()
    };
    // Its one page is refused for an hour, the pause kept in the file;
    // given up at once (no retries), the crawl ends.
    let refused = crawl_site(cfg(&refusing, 1)).await.unwrap();
    assert_eq!(refused.pages_failed, 1);
    // The other site is crawled at once, not an hour later.
    let served = crawl_site(cfg(&other, 2)).await.unwrap();
    assert_eq!(served.pages_done, 2);

    let port = |site: &FakeSite| site.base_url().rsplit(':').next().unwrap().to_string();
    let (refusing_key, other_key) = (
        format!("127.0.0.1:{}", port(&refusing)),
        format!("127.0.0.1:{}", port(&other)),
    );
    let file = rusqlite::Connection::open(dir.path().join("budget.sqlite")).unwrap();
    let paused: Vec<String> = file
        .prepare("SELECT host FROM pauses")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(paused, std::slice::from_ref(&refusing_key));
    let counted: Vec<(String, i64)> = file
        .prepare("SELECT host, used FROM requests ORDER BY host")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut expected = vec![
        (refusing_key, refusing.hits().len() as i64),
        (other_key, other.hits().len() as i64),
    ];
    expected.sort();
    assert_eq!(counted, expected, "each site's requests counted apart");
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
    let out = command(env!("CARGO_BIN_EXE_stackcrawl"), dir.path())
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

/// The shortest time between two consecutive requests at the site.
fn closest_gap(hits: &[Hit]) -> Duration {
    hits.windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .min()
        .expect("two requests or more")
}

#[actix::test]
async fn the_429s_of_requests_in_flight_together_lower_the_rate_once() {
    // Four requests go out before any answer comes back (50 ms apart: no
    // burst before the site has shown it takes the quota; 300 ms of
    // latency) and all four come back 429: one congestion event. The lane
    // cuts its rate once (to a quarter of 20/s at most, as nothing was
    // accepted before), not once per 429.
    let mut b = FakeSite::builder()
        .tag("a", 20 * 50)
        .latency(Duration::from_millis(300));
    for page in 1..=4 {
        b = b.fault(
            "a",
            page,
            Fault::Status {
                status: 429,
                retry_after: Some("1".into()),
            },
        );
    }
    let site = b.start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .fetch("rate = 20.0\nburst = 4\nfetchers = 4")
            .tag_set("a", &["a"], 20)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!((s.pages_done, s.pages_failed, s.rate_limited), (20, 0, 4));
    let hits = site.page_hits();
    let last = hits.iter().rposition(|h| h.status == 429).unwrap();
    assert_eq!(last, 3, "the four went out before any answer came back");
    // At 5/s the rest go 200 ms apart (a loaded machine widens some gaps,
    // not all: the fetchers queue at the lane); four cuts would have made
    // it 1.25/s, 800 ms apart.
    let closest = closest_gap(&hits[last + 1..]);
    assert!(
        closest < Duration::from_millis(500),
        "requests at least {closest:?} apart after the 429s"
    );
}

#[actix::test]
async fn a_site_that_throttles_below_the_quota_is_crawled_just_under_its_limit() {
    // The site serves 8 requests in any second; the quota allows 20/s. With
    // 200 ms of latency, four requests are on the wire when the first 429
    // comes back: their 429s are one congestion signal, not four halvings.
    let site = FakeSite::builder()
        .tag("a", 40 * 50)
        .latency(Duration::from_millis(200))
        .limit(8)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .fetch("rate = 20.0\nburst = 1\nfetchers = 8\nmax_retries = 3")
            .tag_set("a", &["a"], 40)
            .build(),
    )
    .await
    .unwrap();
    assert_eq!((s.pages_done, s.pages_failed), (40, 0), "nothing lost");
    let hits = site.page_hits();
    let refused = hits.iter().filter(|h| h.status == 429).count();
    assert_eq!(hits.len(), 40 + refused, "one request per page and per 429");
    assert!(
        (1..=8).contains(&refused),
        "{refused} 429s: one episode with the requests in flight"
    );
    // After the last 429 the crawl runs just under the site's limit. Load
    // on the machine can only slow it down, so a floor of half the limit
    // stays far from flaky while a controller that cut once per 429 (to
    // 20/2^4 = 1.25/s) falls far below it.
    // After the last 429 the lane spaces requests just under the site's
    // limit (8 × 0.97/s: 129 ms apart). A slow machine can only widen the
    // gaps, not all of them: the fetchers queue at the lane, so some go out
    // at the spacing itself. A controller that cut once per 429 (to
    // 20/2^4 = 1.25/s) would space every one 800 ms apart.
    let last = hits.iter().rposition(|h| h.status == 429).unwrap();
    let served = &hits[last + 1..];
    assert!(
        served.len() >= 10,
        "{} served after the last 429",
        served.len()
    );
    let closest = closest_gap(served);
    assert!(
        closest < Duration::from_millis(300),
        "requests at least {closest:?} apart after the last 429"
    );
}

/// A crawl of `pages` pages at quota 20/s burst 5, 8 fetchers, against
/// `site`; what the site saw of it.
async fn crawl_limited(site: &FakeSite, pages: u32) -> (stackcrawl::model::RunSummary, Vec<Hit>) {
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(site, dir.path())
            .fetch("rate = 20.0\nburst = 5\nfetchers = 8\nmax_retries = 5")
            .tag_set("a", &["a"], pages)
            .build(),
    )
    .await
    .unwrap();
    (s, site.hits())
}

fn bucket_without_burst() -> Limiter {
    // nginx's `limit_req` without `burst=`: one request per 125 ms, and
    // one any closer is refused.
    Limiter::new(
        Shape::TokenBucket {
            rate: 8.0,
            burst: 1,
        },
        std::time::Instant::now(),
    )
}

#[actix::test]
async fn a_bucket_without_burst_is_crawled_whole_with_a_few_429s() {
    let site = FakeSite::builder()
        .tag("a", 30 * 50)
        .latency(Duration::from_millis(50))
        .limiter(bucket_without_burst())
        .start();
    let (s, hits) = crawl_limited(&site, 30).await;
    assert_eq!((s.pages_done, s.pages_failed), (30, 0), "nothing lost");
    let refused = hits.iter().filter(|h| h.status == 429).count();
    assert_eq!(
        hits.len(),
        1 + 30 + refused,
        "robots.txt, one request per page and one per 429"
    );
    // The quota's burst of five would be refused four times over at the
    // start, and a rate left above 8/s would be refused over and over.
    // Opening without the burst, a congestion event costs the requests on
    // the wire with it; a loaded machine bunches a few more.
    assert!(refused <= 8, "{refused} 429s in {} requests", hits.len());
}

#[actix::test]
async fn a_site_that_states_its_policy_is_paced_by_it_from_the_first_answer() {
    let site = FakeSite::builder()
        .tag("a", 30 * 50)
        .latency(Duration::from_millis(50))
        .limiter(bucket_without_burst())
        .rate_headers(RateHeaders::Ietf)
        .start();
    let (s, hits) = crawl_limited(&site, 30).await;
    assert_eq!((s.pages_done, s.pages_failed), (30, 0));
    // robots.txt's answer says "8 a second": every page is spaced by it,
    // so only a request bunched by a loaded machine can be refused.
    let refused = hits.iter().filter(|h| h.status == 429).count();
    assert!(refused <= 2, "{refused} 429s in {} requests", hits.len());
}
