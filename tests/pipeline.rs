//! The whole actor pipeline against FakeSite on 127.0.0.1: pages fetched
//! exactly once, records equal to what the server served, the quota held at
//! the server, tags ending at their first empty page, odd tags encoded,
//! server signals honoured, and the futures-style API.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use stackcrawl::config::Tab;
use stackcrawl::engine::clock::status_timer;
use stackcrawl::engine::crawler::shutdown_flag;
use stackcrawl::engine::drive::JOBS_AHEAD_PER_FETCHER;
use stackcrawl::engine::plan::Plan;
use stackcrawl::model::Question;
use stackcrawl::{as_completed, gather, Crawler, PageOutcome, Sink};
use stackcrawl_fakesite::{
    budget_used, crawl_site, hits_per_page, read_jsonl, FakeQuestion, FakeSite, Fault, TestConfig,
};

use futures_util::StreamExt;

/// Every field a listing shows must equal what the server served.
fn assert_record_matches(r: &Question, q: &FakeQuestion, base: &str) {
    assert_eq!(r.title, q.title, "title of {}", q.id);
    assert_eq!(r.url, format!("{base}{}", q.url_path()));
    assert_eq!(r.votes, q.votes, "votes of {}", q.id);
    assert_eq!(r.answers, q.answers, "answers of {}", q.id);
    assert_eq!(r.has_accepted_answer, q.accepted, "accepted of {}", q.id);
    assert_eq!(r.views, q.views, "views of {}", q.id);
    assert!(r.views_exact, "views of {} come from the exact title", q.id);
    assert_eq!(r.tags, q.tags);
    assert_eq!(r.excerpt, q.excerpt);
    assert_eq!(r.author_name.as_deref(), Some(q.author.as_str()));
    assert_eq!(
        r.author_reputation,
        Some(q.reputation),
        "reputation of {}",
        q.id
    );
    assert_eq!(r.asked_at, Some(q.asked));
}

/// A crawler's shutdown flag that never turns.
fn never_stopped() -> tokio::sync::watch::Receiver<bool> {
    shutdown_flag(std::future::pending())
}

#[actix::test]
async fn every_planned_page_fetched_once_and_records_equal_the_server() {
    let site = FakeSite::builder()
        .tag("python", 120)
        .tag("rust", 100)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 4\nrate = 30.0\nburst = 5")
        .tag_set("a", &["python", "rust"], 3)
        .build();
    let out = cfg.output.clone();
    let summary = crawl_site(cfg).await.expect("crawl runs");

    let hits = hits_per_page(&site.page_hits());
    for tag in ["python", "rust"] {
        for page in 1..=3 {
            assert_eq!(
                hits.get(&(tag.to_string(), page)),
                Some(&1),
                "{tag} page {page}"
            );
        }
    }
    assert_eq!(hits.len(), 6);
    assert!(site.page_hits().iter().all(|h| h
        .user_agent
        .as_deref()
        .is_some_and(|ua| ua.contains("stackcrawl"))));

    let records = read_jsonl(&out);
    assert_eq!(records.len(), 220);
    let base = site.base_url();
    for tag in ["python", "rust"] {
        let served = site.questions(tag);
        let by_id: HashMap<u64, &Question> = records
            .iter()
            .filter(|r| r.tag == tag)
            .map(|r| (r.question_id, r))
            .collect();
        assert_eq!(by_id.len(), served.len(), "{tag}");
        for (i, q) in served.iter().enumerate() {
            let r = by_id[&q.id];
            assert_record_matches(r, q, &base);
            assert_eq!(r.page as usize, i / 50 + 1);
            assert_eq!(r.site, "127.0.0.1");
            assert_eq!(r.tab, "Newest");
        }
    }
    assert_eq!(summary.pages_done, 6);
    assert_eq!(summary.pages_failed, 0);
    assert_eq!(summary.questions, 220);
    let py = &summary.per_tag["python"];
    let served = site.questions("python");
    assert_eq!(py.views, served.iter().map(|q| q.views).sum::<u64>());
    assert_eq!(py.votes, served.iter().map(|q| q.votes).sum::<i64>());
    assert_eq!(
        py.unanswered,
        served.iter().filter(|q| q.answers == 0).count() as u64
    );
}

#[actix::test]
async fn quota_is_never_exceeded_whatever_the_pool_size() {
    let site = FakeSite::builder()
        .tag("a", 500)
        .tag("b", 500)
        .latency(Duration::from_millis(20))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let (rate, burst) = (10, 3);
    let cfg = TestConfig::new(&site, dir.path())
        .fetch(format!("fetchers = 16\nrate = {rate}.0\nburst = {burst}"))
        .tag_set("a", &["a", "b"], 10)
        .build();
    let summary = crawl_site(cfg).await.expect("crawl runs");
    assert_eq!(summary.pages_done, 20);
    let max = site.max_in_window(Duration::from_secs(1));
    assert!(
        max <= rate + burst,
        "{max} requests in one second, quota {rate}/s + burst {burst}"
    );
}

#[actix::test]
async fn a_tag_stops_at_its_first_empty_page() {
    let site = FakeSite::builder().tag("short", 120).start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 1\nrate = 30.0\nburst = 5")
        .tag_set("a", &["short"], 10)
        .build();
    let out = cfg.output.clone();
    let summary = crawl_site(cfg).await.expect("crawl runs");
    let mut pages: Vec<u32> = site.page_hits().iter().map(|h| h.page.unwrap()).collect();
    pages.sort();
    assert_eq!(pages, [1, 2, 3, 4], "page 4 is the first empty one");
    assert_eq!(summary.pages_done, 4);
    assert_eq!(summary.pages_skipped, 6);
    assert_eq!(read_jsonl(&out).len(), 120);
}

#[actix::test]
async fn a_tag_stops_early_with_many_fetchers_too() {
    let site = FakeSite::builder().tag("short", 60).start();
    let dir = tempfile::tempdir().unwrap();
    let fetchers = 3;
    let cfg = TestConfig::new(&site, dir.path())
        .fetch(format!("fetchers = {fetchers}\nrate = 5.0\nburst = 1"))
        .tag_set("a", &["short"], 30)
        .build();
    let out = cfg.output.clone();
    let summary = crawl_site(cfg).await.expect("crawl runs");
    let fetched = site.page_hits().len() as u64;
    // Page 3 is the first empty one; at most the fetchers already busy
    // when it came back may have started a later page.
    assert!(fetched <= 3 + fetchers, "{fetched} pages fetched");
    assert_eq!(summary.pages_done + summary.pages_skipped, 30);
    assert_eq!(read_jsonl(&out).len(), 60);
}

#[actix::test]
async fn odd_tag_names_are_url_encoded() {
    let tags = ["c++", "c#", ".net", "node.js"];
    let mut b = FakeSite::builder();
    for t in tags {
        b = b.tag(t, 10);
    }
    let site = b.start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .tag_set("a", &["c++", "c#", ".net", "node.js"], 1)
        .build();
    let out = cfg.output.clone();
    crawl_site(cfg).await.expect("crawl runs");
    let paths: HashSet<String> = site
        .page_hits()
        .iter()
        .map(|h| h.raw_path.clone())
        .collect();
    for p in [
        "/questions/tagged/c%2B%2B?tab=Newest&page=1&pagesize=50",
        "/questions/tagged/c%23?tab=Newest&page=1&pagesize=50",
        "/questions/tagged/.net?tab=Newest&page=1&pagesize=50",
        "/questions/tagged/node.js?tab=Newest&page=1&pagesize=50",
    ] {
        assert!(paths.contains(p), "{p} not requested; got {paths:?}");
    }
    let records = read_jsonl(&out);
    for t in tags {
        assert_eq!(records.iter().filter(|r| r.tag == t).count(), 10, "{t}");
    }
}

#[actix::test]
async fn retry_after_pauses_the_whole_pool() {
    let site = FakeSite::builder()
        .tag("a", 200)
        .tag("b", 200)
        .fault(
            "a",
            2,
            Fault::Status {
                status: 429,
                retry_after: Some("1".into()),
            },
        )
        .start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 4\nrate = 20.0\nburst = 2")
        .tag_set("a", &["a", "b"], 4)
        .build();
    let out = cfg.output.clone();
    let summary = crawl_site(cfg).await.expect("crawl runs");
    assert_eq!(summary.pages_done, 8);
    assert_eq!(summary.rate_limited, 1);
    assert_eq!(summary.retries, 1);
    let hits = site.page_hits();
    let limited = hits
        .iter()
        .find(|h| h.status == 429)
        .expect("the 429 was served");
    // Requests already on the wire when the 429 arrived are not the pool's
    // choice; every request that *started* after it must wait a second.
    let after: Vec<_> = hits.iter().filter(|h| h.at > limited.at).collect();
    let in_flight_at_429 = 4;
    let early = after
        .iter()
        .filter(|h| h.at.duration_since(limited.at) < Duration::from_millis(950))
        .count();
    assert!(
        early < in_flight_at_429,
        "{early} requests arrived during the pause"
    );
    assert_eq!(read_jsonl(&out).len(), 400);
}

#[actix::test]
async fn server_errors_and_broken_bodies_are_retried() {
    let site = FakeSite::builder()
        .tag("a", 150)
        .fault(
            "a",
            1,
            Fault::Status {
                status: 500,
                retry_after: None,
            },
        )
        .fault("a", 2, Fault::Drop)
        .fault("a", 3, Fault::Truncate)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .tag_set("a", &["a"], 3)
        .build();
    let out = cfg.output.clone();
    let summary = crawl_site(cfg).await.expect("crawl runs");
    assert_eq!(summary.pages_done, 3);
    assert_eq!(summary.retries, 3);
    assert_eq!(hits_per_page(&site.page_hits()).values().sum::<usize>(), 6);
    let records = read_jsonl(&out);
    assert_eq!(records.len(), 150);
}

#[actix::test]
async fn a_page_failing_every_retry_is_named_in_the_summary() {
    let mut b = FakeSite::builder().tag("a", 100);
    for _ in 0..3 {
        b = b.fault(
            "a",
            2,
            Fault::Status {
                status: 502,
                retry_after: None,
            },
        );
    }
    let site = b.start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5\nmax_retries = 2")
        .tag_set("a", &["a"], 2)
        .build();
    let out = cfg.output.clone();
    let summary = crawl_site(cfg).await.expect("crawl runs");
    assert_eq!(summary.pages_failed, 1);
    assert_eq!(summary.failures.len(), 1);
    assert_eq!(summary.failures[0].ctx.page, 2);
    assert!(
        summary.failures[0].to_string().contains("502"),
        "{}",
        summary.failures[0]
    );
    assert_eq!(hits_per_page(&site.page_hits())[&("a".to_string(), 2)], 3);
    assert_eq!(read_jsonl(&out).len(), 50, "page 1 is kept");
}

#[actix::test]
async fn a_question_pushed_to_the_next_page_is_recorded_once() {
    let site = FakeSite::builder().tag("a", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 1\nrate = 30.0\nburst = 1")
        .sets("[tag_sets.a]\ntags = [\"a\"]\n")
        .build();
    let out = cfg.output.clone();
    let sink = Sink::create(&cfg.output, cfg.output_format).unwrap();
    let mut crawler = Crawler::start(cfg, Some(sink), None, never_stopped())
        .await
        .expect("start");
    let first = gather(crawler.map("a", Tab::Newest, 1..=1, 50)).await;
    assert!(matches!(first[0], PageOutcome::Done(_)));
    // A new question arrives: the last of page 1 moves to page 2.
    let mut newest = FakeQuestion::generated("a", 9, 0);
    newest.id = 99_999_999;
    site.add_newest("a", newest);
    let second = gather(crawler.map("a", Tab::Newest, 2..=2, 50)).await;
    let PageOutcome::Done(report) = &second[0] else {
        panic!("page 2 failed: {second:?}")
    };
    assert_eq!(report.duplicates, 1);
    assert_eq!(report.questions, 49);
    let summary = crawler.finish().await.unwrap();
    assert_eq!(summary.duplicates_dropped, 1);
    let records = read_jsonl(&out);
    let ids: HashSet<u64> = records.iter().map(|r| r.question_id).collect();
    assert_eq!(ids.len(), records.len(), "no question twice");
    assert_eq!(records.len(), 99);
}

#[actix::test]
async fn futures_api_submit_map_gather_as_completed() {
    let site = FakeSite::builder()
        .tag("a", 120)
        .latency(Duration::from_millis(10))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 3\nrate = 30.0\nburst = 3")
        .sets("[tag_sets.a]\ntags = [\"a\"]\n")
        .build();
    let out = cfg.output.clone();
    let mut crawler = Crawler::start(cfg, None, None, never_stopped())
        .await
        .expect("start");
    let futures = crawler.map("a", Tab::Newest, 1..=3, 50);
    let mut seen = Vec::new();
    let mut stream = as_completed(futures);
    while let Some(outcome) = stream.next().await {
        match outcome {
            PageOutcome::Done(r) => seen.push((r.ctx.page, r.questions)),
            other => panic!("{other:?}"),
        }
    }
    seen.sort();
    assert_eq!(seen, [(1, 50), (2, 50), (3, 20)]);
    let summary = crawler.finish().await.unwrap();
    assert_eq!(summary.questions, 120);
    assert!(!out.exists(), "no output asked for");
}

#[actix::test]
async fn gzip_compressed_pages_are_decoded() {
    let site = FakeSite::builder().tag("a", 100).gzip().start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .tag_set("a", &["a"], 2)
        .build();
    let out = cfg.output.clone();
    let summary = crawl_site(cfg).await.expect("crawl runs");
    assert_eq!(summary.pages_done, 2);
    assert!(site.gzipped() >= 2, "the pages went out compressed");
    let records = read_jsonl(&out);
    assert_eq!(records.len(), 100);
    for q in site.questions("a") {
        let r = records
            .iter()
            .find(|r| r.question_id == q.id)
            .expect("recorded");
        assert_record_matches(r, &q, &site.base_url());
    }
}

#[actix::test]
async fn requests_count_robots_txt_as_the_budget_does() {
    let site = FakeSite::builder().tag("a", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_site(
        TestConfig::new(&site, dir.path())
            .tag_set("a", &["a"], 2)
            .build(),
    )
    .await
    .expect("crawl runs");
    assert_eq!(site.hits().len(), 3, "robots.txt and two pages");
    assert_eq!(s.requests, 3, "every request the server saw");
}

#[actix::test]
async fn two_crawls_sharing_a_budget_file_count_every_request() {
    // Regression: each crawl kept its own copy of the counts and rewrote
    // the file from it (through one fixed temp name), so the file counted
    // 205 of 357 requests and one crawl failed on the rename.
    let site = FakeSite::builder().tag("a", 500).tag("b", 500).start();
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared.sqlite");
    let cfg = |tag: &str| {
        TestConfig::new(&site, dir.path())
            .output(format!("{tag}.jsonl"))
            // Both name the same budget file, as two crawls in one
            // directory did by default.
            .fetch(format!(
                "rate = 30.0\nfetchers = 3\nbudget_file = \"{}\"",
                shared.display()
            ))
            .tag_set("s", &[tag], 10)
            .build()
    };
    let (a, b) = tokio::join!(crawl_site(cfg("a")), crawl_site(cfg("b")));
    let (a, b) = (a.expect("crawl a runs"), b.expect("crawl b runs"));
    assert_eq!((a.pages_done, b.pages_done), (10, 10));
    let used = budget_used(&shared);
    assert_eq!(used as usize, site.hits().len(), "22 requests, 22 counted");
}

/// A pass of any length holds a few jobs per fetcher, not the whole plan:
/// the crawler submits a window at a time as pages come back.
#[actix::test]
async fn a_long_plan_is_held_a_few_jobs_per_fetcher_at_a_time() {
    let site = FakeSite::builder()
        .synthetic_tag("a", 20 * 50)
        .synthetic_tag("b", 20 * 50)
        .synthetic_tag("c", 20 * 50)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 10")
        .tag_set("s", &["a", "b", "c"], 20)
        .build();
    let plan = Plan::from_config(&cfg);
    assert_eq!(plan.len(), 60);
    let sink = Sink::create(&cfg.output, cfg.output_format).unwrap();
    let mut crawler = Crawler::start(cfg, Some(sink), None, never_stopped())
        .await
        .expect("start");
    let mut status = status_timer(Duration::from_secs(3600));
    let driven = crawler.drive(&plan, &mut status).await.expect("drive");
    assert!(driven.ended.iter().all(|&ended| ended) && !driven.interrupted);
    let stats = crawler.stats().await.unwrap();
    assert_eq!(stats.done, 60);
    assert!(
        stats.most_held <= 2 * JOBS_AHEAD_PER_FETCHER,
        "the supervisor held {} jobs at once",
        stats.most_held
    );
    let hits = hits_per_page(&site.page_hits());
    assert_eq!(hits.len(), 60);
    assert!(hits.values().all(|&n| n == 1), "{hits:?}");
    crawler.finish().await.unwrap();
}
