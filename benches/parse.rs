//! Parse + clean throughput per fixture page, on one core: how much of a
//! fetcher's time the pure stages take next to the network and the quota.
//! Each page is parsed and cleaned repeatedly for about a second after a
//! warm-up; the table gives the mean time per page and the pages per second
//! one core sustains, the reader that decided (`stream`, or a tree when the
//! stream fell back), and beside it the same page read by the reference
//! tree reader (`parse_listing_tree`, what every page cost before the
//! stream), measured in the same run.
//!
//! Run: `cargo bench --bench parse` (or `-- NAME` to run the fixtures whose
//! file name contains NAME).

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::Utc;
use stackcrawl::model::PageContext;
use stackcrawl::source::html::clean::clean_page;
use stackcrawl::source::html::parse::{
    parse_listing, parse_listing_traced, parse_listing_tree, ParsePath,
};

const LISTINGS: [&str; 8] = [
    "tagged-python-newest-2013.html",
    "tagged-webcam-newest-2014-bounty-closed.html",
    "homepage-narrow-2018.html",
    "tagged-python-votes-2020.html",
    "tagged-command-newest-2020.html",
    "tagged-python-newest-2025.html",
    "questions-newest-2026-resaved.html",
    "meta-homepage-2026-resaved.html",
];

const WARM_UP: Duration = Duration::from_millis(200);
const MEASURE: Duration = Duration::from_secs(1);

struct Row {
    name: &'static str,
    kb: usize,
    questions: usize,
    iterations: u32,
    per_page: Duration,
    path: ParsePath,
    tree_per_page: Duration,
}

/// Runs `work` for `WARM_UP`, then for at least `MEASURE`, and returns the
/// iteration count and mean time per call.
fn measure(mut work: impl FnMut()) -> (u32, Duration) {
    let start = Instant::now();
    while start.elapsed() < WARM_UP {
        work();
    }
    let start = Instant::now();
    let mut iterations = 0u32;
    while iterations == 0 || start.elapsed() < MEASURE {
        work();
        iterations += 1;
    }
    (iterations, start.elapsed() / iterations)
}

fn read(dir: &str, name: &str) -> Option<String> {
    let path = format!("{}/tests/fixtures/{dir}/{name}", env!("CARGO_MANIFEST_DIR"));
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => {
            eprintln!("skipping {path}: {e}");
            None
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let ctx = PageContext {
        site: "stackoverflow.com".into(),
        base_url: "https://stackoverflow.com".into(),
        tag: "python".into(),
        tab: "Newest".into(),
        page: 1,
    };
    let fetched_at = Utc::now();
    let mut rows = Vec::new();

    for name in LISTINGS.into_iter().filter(|n| wanted(n)) {
        let Some(html) = read("so-html", name) else {
            continue;
        };
        let questions = match parse_listing(&html) {
            Ok(page) => clean_page(&page, &ctx, fetched_at).questions.len(),
            Err(e) => {
                eprintln!("skipping {name}: {e}");
                continue;
            }
        };
        let (iterations, per_page) = measure(|| {
            if let Ok(page) = parse_listing(black_box(&html)) {
                black_box(clean_page(&page, &ctx, fetched_at));
            }
        });
        let (_, tree_per_page) = measure(|| {
            if let Ok(page) = parse_listing_tree(black_box(&html)) {
                black_box(clean_page(&page, &ctx, fetched_at));
            }
        });
        rows.push(Row {
            name,
            kb: html.len() / 1024,
            questions,
            iterations,
            per_page,
            path: parse_listing_traced(&html).1,
            tree_per_page,
        });
    }
    println!(
        "{:<46} {:>6} {:>5} {:>7} {:>9} {:>12} {:>12} {:>12} {:>13}",
        "page (parse + clean)",
        "KiB",
        "qs",
        "iters",
        "ms/page",
        "pages/s/core",
        "qs/s/core",
        "path",
        "tree ms/page"
    );
    for r in &rows {
        let secs = r.per_page.as_secs_f64();
        let pages_per_s = if secs > 0.0 {
            1.0 / secs
        } else {
            f64::INFINITY
        };
        println!(
            "{:<46} {:>6} {:>5} {:>7} {:>9.3} {:>12.1} {:>12.0} {:>12} {:>13.3}",
            r.name,
            r.kb,
            r.questions,
            r.iterations,
            secs * 1e3,
            pages_per_s,
            pages_per_s * r.questions as f64,
            format!("{:?}", r.path),
            r.tree_per_page.as_secs_f64() * 1e3
        );
    }
}
