//! End-to-end crawl benchmark against FakeSite on 127.0.0.1: 2 tags × 32
//! pages × 50 questions, 300 ms of server latency, 8 fetchers under a quota
//! of 20 requests/s. Reports the wall time against the quota-bound minimum
//! ((pages − burst) / rate + one request's latency) and checks every record.
//!
//! Run: `cargo bench --bench crawl`

use std::collections::HashSet;
use std::time::Duration;

use stackcrawl_fakesite::{crawl_site, read_jsonl, FakeSite, TestConfig};

fn main() {
    let (tags, pages, pagesize) = (2u64, 32u64, 50u64);
    let (fetchers, rate, burst) = (8, 20.0, 5u64);
    let latency = Duration::from_millis(300);
    let site = FakeSite::builder()
        .tag("python", pages * pagesize)
        .tag("c++", pages * pagesize)
        .latency(latency)
        .start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = TestConfig::new(&site, dir.path())
        .output("bench.jsonl")
        .fetch(format!(
            "fetchers = {fetchers}\nrate = {rate}\nburst = {burst}"
        ))
        .sets(format!(
            "[tag_sets.bench]\ntags = [\"python\", \"c++\"]\npages = {pages}\npagesize = {pagesize}\n"
        ))
        .build();
    let out = config.output.clone();
    let summary = actix_rt::System::new()
        .block_on(crawl_site(config))
        .expect("crawl");

    let total_pages = tags * pages;
    let bound = (total_pages - burst) as f64 / rate + latency.as_secs_f64();
    let wall = summary.wall_time.as_secs_f64();
    let records = read_jsonl(&out);
    let ids: HashSet<u64> = records.iter().map(|r| r.question_id).collect();
    let mut wrong = 0;
    for tag in ["python", "c++"] {
        for q in site.questions(tag) {
            match records.iter().find(|r| r.question_id == q.id) {
                Some(r)
                    if r.title == q.title
                        && r.views == q.views
                        && r.votes == q.votes
                        && r.answers == q.answers
                        && r.tags == q.tags => {}
                _ => wrong += 1,
            }
        }
    }
    let max_window = site.max_in_window(Duration::from_secs(1));
    println!(
        "crawl benchmark: {tags} tags x {pages} pages x {pagesize} questions, latency {latency:?}"
    );
    println!("  fetchers {fetchers}, quota {rate}/s burst {burst}");
    println!(
        "  pages done        {} of {total_pages}",
        summary.pages_done
    );
    println!("  requests at site  {}", site.page_hits().len());
    println!(
        "  records           {} ({} unique, {} wrong or missing)",
        records.len(),
        ids.len(),
        wrong
    );
    println!(
        "  max in any 1 s    {max_window} (quota allows {})",
        rate as u64 + burst
    );
    println!("  wall time         {wall:.3} s");
    // robots.txt is fetched (one token, one round trip) before any page.
    let with_robots = latency.as_secs_f64() + bound;
    println!("  quota-bound min   {bound:.3} s ((pages - burst) / rate + one latency)");
    println!("  ratio             {:.3} (goal <= 1.10)", wall / bound);
    println!(
        "  min with the robots.txt round trip first: {with_robots:.3} s, ratio {:.3}",
        wall / with_robots
    );
}
