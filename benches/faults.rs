//! Fault-injection benchmark: a 2,000-page crawl (40 tags × 50 pages)
//! against FakeSite on 127.0.0.1 with every fault on: 5% 500/503, 2%
//! dropped connections, 1% truncated bodies, a burst of 429s with
//! Retry-After, stalls past the timeout, a page cut short, a 50 MB body.
//! Reports pages planned, fetched, failed and lost, duplicates, the busiest
//! one-second window against the quota, and the wall time against the
//! quota-bound minimum.
//!
//! Run: `cargo bench --bench faults` (about 80 seconds).

use std::collections::HashSet;
use std::time::Duration;

use stackcrawl::engine::plan::Plan;
use stackcrawl_fakesite::{read_jsonl, FakeSite, Fault, RandomFaults, TestConfig};

fn main() {
    let (tags, pages, rate, burst, fetchers) = (40u64, 50u32, 30u64, 5u64, 8);
    let names: Vec<String> = (0..tags).map(|i| format!("f{i}")).collect();
    let mut b = FakeSite::builder()
        .latency(Duration::from_millis(20))
        .random_faults(RandomFaults {
            seed: 2026,
            server_error: 0.05,
            drop: 0.02,
            truncate: 0.01,
        });
    for name in &names {
        b = b.synthetic_tag(name, u64::from(pages) * 50);
    }
    for _ in 0..5 {
        b = b.fault(
            "f1",
            10,
            Fault::Status {
                status: 429,
                retry_after: Some("2".into()),
            },
        );
    }
    b = b
        .fault("f2", 20, Fault::Stall(Duration::from_secs(5)))
        .fault("f3", 30, Fault::Stall(Duration::from_secs(5)))
        .fault("f4", 40, Fault::CutPage)
        .fault("f5", 45, Fault::Huge(50 * 1024 * 1024));
    let site = b.start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = TestConfig::new(&site, dir.path())
        .output("faults.jsonl")
        .fetch(format!(
            "fetchers = {fetchers}\nrate = {rate}.0\nburst = {burst}\n\
             timeout_secs = 2.0\nread_timeout_secs = 2.0\nmax_retries = 6\nretry_base_ms = 200\n\
             daily_budget = 100000"
        ))
        .tag_set("all", &names, pages)
        .build();
    let out = config.output.clone();
    // Not crawl_site: this crawl takes longer than a test's bound.
    let plan = Plan::from_config(&config);
    let planned = plan.len() as u64;
    let sink = stackcrawl::Sink::create(&config.output, config.output_format).expect("output");
    let summary = actix_rt::System::new()
        .block_on(stackcrawl::crawl(
            config,
            plan,
            sink,
            None,
            std::future::pending(),
        ))
        .expect("crawl");

    let records = read_jsonl(&out);
    let unique: HashSet<u64> = records.iter().map(|r| r.question_id).collect();
    let hits = site.page_hits();
    let lost = planned - summary.pages_done - summary.pages_failed - summary.pages_skipped;
    let min_wall = (hits.len() as u64 - burst) as f64 / rate as f64;
    println!("fault benchmark: {tags} tags x {pages} pages, {fetchers} fetchers, quota {rate}/s burst {burst}");
    println!("  pages planned      {planned}");
    println!("  pages fetched      {}", summary.pages_done);
    println!(
        "  pages failed       {} {:?}",
        summary.pages_failed, summary.failures
    );
    println!("  pages skipped      {}", summary.pages_skipped);
    println!("  pages lost         {lost}");
    println!(
        "  records            {} ({} duplicates)",
        records.len(),
        records.len() - unique.len()
    );
    println!(
        "  requests at site   {} (retries {}, 429/503 pauses {})",
        hits.len(),
        summary.retries,
        summary.rate_limited
    );
    println!(
        "  faults served      {} 5xx, {} 429",
        hits.iter().filter(|h| h.status >= 500).count(),
        hits.iter().filter(|h| h.status == 429).count()
    );
    println!(
        "  max in any 1 s     {} (quota allows {})",
        site.max_in_window(Duration::from_secs(1)),
        rate + burst
    );
    println!(
        "  wall time          {:.2} s",
        summary.wall_time.as_secs_f64()
    );
    println!(
        "  quota-bound min    {min_wall:.2} s for the {} requests made",
        hits.len()
    );
}
