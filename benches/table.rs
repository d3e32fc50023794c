//! Issue 12's table, measured: the release `stackcrawl` binary and Scrapy
//! side by side, each crawling the same fake site (FakeSite on 127.0.0.1,
//! served from this process so that a crawler's CPU and memory are its own).
//!
//! Rows:
//! - quota-bound crawl: 2 tags × 32 pages, quota 20/s, 300 ms latency;
//!   wall time against (pages − burst) / rate + two round trips (robots.txt
//!   and the last page)
//! - slow site: the site serves 8 requests in any second (429 +
//!   Retry-After beyond), quota 20/s, 60 pages, 100 ms latency; stackcrawl
//!   5 runs (ratio of each to the 60 / 8 = 7.5 s minimum: min, median, max;
//!   429 share; pages lost), Scrapy one run with AutoThrottle
//! - marginal CPU per 50-question page: (CPU at 400 pages − CPU at 40) / 360,
//!   user + system time of the crawler process (wait4), at 30 requests/s
//! - peak RSS of the crawler process at 400 pages (the soak bench follows
//!   stackcrawl over 50,000)
//! - the release binary's size
//!
//! Scrapy runs from a venv this bench makes under the target directory
//! (`pip install scrapy`; `SCRAPY_VENV=DIR` uses another). When it cannot be
//! set up, the bench says why and reports stackcrawl's figures alone.
//!
//! Run: `cargo bench --bench table` (about 3 minutes, plus the venv once).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stackcrawl_fakesite::{FakeSite, TestConfig};

const SPIDER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/peer/scrapy_listing.py"
);

/// One crawl, as the site and the operating system saw it.
struct Run {
    wall: f64,
    /// Scrapy's own elapsed time, spider opened to closed: the wall time
    /// less the interpreter's start (seconds on a loaded machine).
    crawl_secs: Option<f64>,
    /// User + system seconds of the crawler process.
    cpu: f64,
    peak_rss_mib: f64,
    planned: usize,
    /// Pages the site never served whole.
    lost: usize,
    requests: usize,
    refused: usize,
}

/// A crawl to run: which tags, pages and limits.
struct Crawl {
    tags: Vec<String>,
    pages: u32,
    rate: f64,
    burst: u32,
    latency: Duration,
    site_limit: Option<usize>,
}

impl Crawl {
    fn site(&self) -> FakeSite {
        let mut b = FakeSite::builder().latency(self.latency);
        for t in &self.tags {
            b = b.synthetic_tag(t, u64::from(self.pages) * 50);
        }
        if let Some(n) = self.site_limit {
            b = b.limit(n);
        }
        b.start()
    }

    fn planned(&self) -> usize {
        self.tags.len() * self.pages as usize
    }
}

/// What the operating system saw of one crawler process.
struct Measured {
    wall: f64,
    cpu: f64,
    peak_rss_mib: f64,
    stdout: String,
}

/// Runs `cmd` to its end.
// wait4 below reaps the child; clippy cannot see it.
#[allow(clippy::zombie_processes)]
fn measure(mut cmd: Command) -> Measured {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn crawler");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // Read to the end first: a full pipe would stall the child.
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 rather than Child::wait: it gives the child's own CPU and peak
    // RSS. SAFETY: the pid is our own child, the pointers live locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(waited, pid, "wait4");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = secs(usage.ru_utime) + secs(usage.ru_stime);
    Measured {
        wall,
        cpu,
        peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        stdout,
    }
}

fn outcome(crawl: &Crawl, site: &FakeSite, m: Measured) -> Run {
    let hits = site.page_hits();
    let served: HashSet<(String, u32)> = hits
        .iter()
        .filter(|h| h.status == 200)
        .filter_map(|h| Some((h.tag.clone()?, h.page?)))
        .collect();
    // Scrapy's stats, the last line it prints.
    let crawl_secs = m
        .stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["elapsed_time_seconds"].as_f64());
    Run {
        wall: m.wall,
        crawl_secs,
        cpu: m.cpu,
        peak_rss_mib: m.peak_rss_mib,
        planned: crawl.planned(),
        lost: crawl.planned().saturating_sub(served.len()),
        requests: site.hits().len(),
        refused: site.hits().iter().filter(|h| h.status == 429).count(),
    }
}

fn stackcrawl(crawl: &Crawl) -> Run {
    let site = crawl.site();
    let dir = tempfile::tempdir().expect("tempdir");
    let quoted: Vec<String> = crawl.tags.iter().map(|t| format!("\"{t}\"")).collect();
    let config = TestConfig::new(&site, dir.path())
        .output("out.jsonl")
        .fetch(format!(
            "fetchers = 8\nrate = {}\nburst = {}\ndaily_budget = 100000",
            crawl.rate, crawl.burst
        ))
        .sets(format!(
            "[tag_sets.bench]\ntags = [{}]\npages = {}\npagesize = 50\n",
            quoted.join(", "),
            crawl.pages
        ))
        .write();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackcrawl"));
    cmd.args(["--log-format", "json", "crawl", "--config"])
        .arg(config);
    let measured = measure(cmd);
    outcome(crawl, &site, measured)
}

fn scrapy(python: &Path, crawl: &Crawl, autothrottle: bool) -> Run {
    let site = crawl.site();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(python);
    cmd.arg(SPIDER)
        .arg(site.base_url())
        .arg(crawl.tags.join(","))
        .arg(crawl.pages.to_string())
        .arg("50")
        .arg(crawl.rate.to_string())
        .arg(dir.path().join("out.jsonl"));
    if autothrottle {
        cmd.arg("autothrottle");
    }
    let measured = measure(cmd);
    outcome(crawl, &site, measured)
}

/// The venv's python with Scrapy importable, made on first use.
fn scrapy_python() -> Result<PathBuf, String> {
    let venv = std::env::var_os("SCRAPY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("scrapy-venv"));
    let python = venv.join("bin/python");
    let has_scrapy = |p: &Path| {
        Command::new(p)
            .args(["-c", "import scrapy"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_scrapy(&python) {
        return Ok(python);
    }
    println!(
        "  setting up Scrapy in {} (pip install scrapy) ...",
        venv.display()
    );
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    if !made.success() {
        return Err(format!("python3 -m venv exited {made}"));
    }
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "scrapy"])
        .status()
        .map_err(|e| format!("pip: {e}"))?;
    if !pip.success() || !has_scrapy(&python) {
        return Err(format!("pip install scrapy exited {pip}"));
    }
    Ok(python)
}

fn tags(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn main() {
    let python = scrapy_python();
    if let Err(why) = &python {
        println!("Scrapy not measured: {why}");
    }
    let python = python.ok();

    println!("\n1. quota-bound crawl: 2 tags x 32 pages, quota 20/s burst 5, 300 ms latency, 8 in flight");
    let quota = Crawl {
        tags: tags("q", 2),
        pages: 32,
        rate: 20.0,
        burst: 5,
        latency: Duration::from_millis(300),
        site_limit: None,
    };
    // robots.txt first (one round trip), then the quota, then the last
    // page's round trip.
    let bound = (quota.planned() - 5) as f64 / quota.rate + 2.0 * quota.latency.as_secs_f64();
    let ours = stackcrawl(&quota);
    println!(
        "  stackcrawl  {:.2} s = {:.3} x the quota bound of {bound:.2} s; lost {}",
        ours.wall,
        ours.wall / bound,
        ours.lost
    );
    if let Some(py) = &python {
        let theirs = scrapy(py, &quota, false);
        let crawl = theirs.crawl_secs.unwrap_or(theirs.wall);
        println!(
            "  Scrapy      {crawl:.2} s spider open to close = {:.3} x ({:.2} s with the interpreter's start); lost {}",
            crawl / bound,
            theirs.wall,
            theirs.lost
        );
    }

    println!("\n2. slow site: it serves 8 requests in any second; quota 20/s burst 5, 60 pages, 100 ms latency");
    let slow = Crawl {
        tags: tags("s", 2),
        pages: 30,
        rate: 20.0,
        burst: 5,
        latency: Duration::from_millis(100),
        site_limit: Some(8),
    };
    let minimum = slow.planned() as f64 / 8.0;
    let mut ratios = Vec::new();
    for i in 1..=5 {
        let r = stackcrawl(&slow);
        println!(
            "  stackcrawl run {i}: {:.2} s = {:.3} x the {minimum:.1} s minimum; {} of {} requests 429 ({:.1}%); lost {}",
            r.wall,
            r.wall / minimum,
            r.refused,
            r.requests,
            100.0 * r.refused as f64 / r.requests as f64,
            r.lost
        );
        ratios.push(r.wall / minimum);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "  stackcrawl ratio over 5 runs: min {:.3}, median {:.3}, max {:.3} (goal <= 1.15)",
        ratios[0], ratios[2], ratios[4]
    );
    if let Some(py) = &python {
        let r = scrapy(py, &slow, true);
        let crawl = r.crawl_secs.unwrap_or(r.wall);
        println!(
            "  Scrapy (AutoThrottle): {crawl:.2} s spider open to close = {:.3} x; {} of {} requests 429; lost {} of {}",
            crawl / minimum,
            r.refused,
            r.requests,
            r.lost,
            r.planned
        );
    }

    println!(
        "\n3-4. marginal CPU per 50-question page (400 - 40 pages) and peak RSS, at 30 requests/s"
    );
    let small = Crawl {
        tags: tags("c", 1),
        pages: 40,
        rate: 30.0,
        burst: 5,
        latency: Duration::ZERO,
        site_limit: None,
    };
    let large = Crawl {
        tags: tags("c", 8),
        pages: 50,
        ..small
    };
    let marginal = |a: &Run, b: &Run| 1000.0 * (b.cpu - a.cpu) / (b.planned - a.planned) as f64;
    let (s40, s400) = (stackcrawl(&small), stackcrawl(&large));
    let ours = marginal(&s40, &s400);
    println!(
        "  stackcrawl  CPU {:.2} s at 40 pages, {:.2} s at 400: {ours:.2} ms a page; peak RSS {:.1} MiB at 400 pages (lost {})",
        s40.cpu, s400.cpu, s400.peak_rss_mib, s400.lost
    );
    if let Some(py) = &python {
        let (p40, p400) = (scrapy(py, &small, false), scrapy(py, &large, false));
        let theirs = marginal(&p40, &p400);
        println!(
            "  Scrapy      CPU {:.2} s at 40 pages, {:.2} s at 400: {theirs:.2} ms a page; peak RSS {:.1} MiB at 400 pages (lost {})",
            p40.cpu, p400.cpu, p400.peak_rss_mib, p400.lost
        );
        println!(
            "  stackcrawl / Scrapy CPU per page: {:.3} (goal <= 0.15)",
            ours / theirs
        );
    }

    let bin = std::fs::metadata(env!("CARGO_BIN_EXE_stackcrawl")).map(|m| m.len());
    println!(
        "\n5. release binary: {:.1} MiB (goal <= 20 MB)",
        bin.unwrap_or(0) as f64 / (1024.0 * 1024.0)
    );
}
