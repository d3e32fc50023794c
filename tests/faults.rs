//! Fault injection against FakeSite on 127.0.0.1, bounded in pages and
//! time: random 5xx, dropped connections and truncated bodies, with a burst
//! of 429s on top. Every page must end fetched or reported failed, no
//! question may be recorded twice, and the quota must hold at the server.

use std::collections::HashSet;
use std::time::Duration;

use stackcrawl::engine::plan::Plan;
use stackcrawl_fakesite::{crawl_site, read_jsonl, FakeSite, Fault, RandomFaults, TestConfig};

#[actix::test]
async fn no_page_lost_and_no_duplicate_under_random_faults() {
    let (tags, pages, rate, burst) = (4u32, 40u32, 30u64, 5u64);
    let mut b = FakeSite::builder()
        .latency(Duration::from_millis(5))
        .random_faults(RandomFaults {
            seed: 7,
            server_error: 0.05,
            drop: 0.02,
            truncate: 0.01,
        });
    let names: Vec<String> = (0..tags).map(|i| format!("t{i}")).collect();
    for name in &names {
        b = b.tag(name, u64::from(pages) * 50);
    }
    // A burst of 429s on one page, each asking for a 1-second pause.
    for _ in 0..3 {
        b = b.fault(
            "t0",
            5,
            Fault::Status {
                status: 429,
                retry_after: Some("1".into()),
            },
        );
    }
    let site = b.start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .fetch(format!(
            "fetchers = 8\nrate = {rate}.0\nburst = {burst}\nretry_base_ms = 50\nmax_retries = 6"
        ))
        .tag_set("all", &names, pages)
        .build();
    let out = config.output.clone();
    let planned = Plan::from_config(&config).len() as u64;
    let summary = crawl_site(config).await.unwrap();

    // Every page ends fetched or reported failed: none missing.
    assert_eq!(summary.pages_done + summary.pages_failed, planned);
    assert_eq!(summary.pages_skipped, 0);
    assert!(summary.retries > 0, "faults were injected");
    assert!(summary.rate_limited >= 3);

    let records = read_jsonl(&out);
    let ids: HashSet<u64> = records.iter().map(|r| r.question_id).collect();
    assert_eq!(ids.len(), records.len(), "no question recorded twice");
    assert_eq!(records.len() as u64, summary.pages_done * 50);

    let max = site.max_in_window(Duration::from_secs(1));
    assert!(max as u64 <= rate + burst, "{max} requests in one second");

    // After each 429, no request started before its Retry-After ran out,
    // but those already in flight (one per other fetcher at most).
    let hits = site.page_hits();
    for limited in hits.iter().filter(|h| h.status == 429) {
        let early = hits
            .iter()
            .filter(|h| {
                h.at > limited.at && h.at.duration_since(limited.at) < Duration::from_millis(950)
            })
            .count();
        assert!(early < 8, "{early} requests during a Retry-After pause");
    }
}
