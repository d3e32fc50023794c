//! Issue 12's table, measured: the release `stackcrawl` binary and Scrapy
//! side by side, each crawling the same fake site (FakeSite on 127.0.0.1,
//! served from this process so that a crawler's CPU and memory are its own).
//!
//! Rows:
//! - quota-bound crawl: 2 tags × 32 pages, quota 20/s, 300 ms latency;
//!   wall time against (pages − burst) / rate + two round trips (robots.txt
//!   and the last page)
//! - the site's limiter: a site that allows 8 requests/s (429 +
//!   Retry-After beyond), shaped as a token bucket of burst 16, 8, 4 and 1,
//!   a sliding one-second window and a fixed one-second window, and a
//!   sliding window whose limit halves or grows by half after the 60th
//!   request; quota 20/s burst 5, 8 fetchers, 60 pages (120 for the
//!   changing limits), 100 ± 50 ms latency. stackcrawl 5 runs each: wall
//!   time against the site-bound minimum (pages at the site's rate, plus
//!   one latency), min / median / max, and the 429 share; for a changing
//!   limit, how long after the change the crawl ran at the new limit.
//!   Scrapy one run with AutoThrottle against the sliding window
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
//! Run: `cargo bench --bench table` (about 12 minutes, plus the venv
//! once). `TABLE_ROWS=limiters` (or `quota`, `cpu`, comma-separated; `cpu`
//! brings the RSS and binary-size rows) runs only those rows,
//! `TABLE_RUNS=N` each limiter row N times, `TABLE_PAGES=N` crawls N pages
//! a limiter row (2N when the limit changes), `TABLE_ONLY="NAME;NAME"`
//! only the limiter rows so named, and `TABLE_TRACE=1` prints each run's
//! requests as the site saw them (seconds from the first, R for a 429).

use std::cell::OnceCell;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stackcrawl_fakesite::limit::{measured_shapes, Limiter, Shape, Shift};
use stackcrawl_fakesite::{FakeSite, Hit, RateHeaders, TestConfig};

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
    /// For a limit that changed: seconds from the change until the crawl
    /// ran at the new limit (the last 429 after a drop; the first second
    /// with 90% of the new rate served after a rise).
    settled_after: Option<f64>,
}

/// A crawl to run: which tags, pages and limits.
struct Crawl {
    tags: Vec<String>,
    pages: u32,
    rate: f64,
    burst: u32,
    latency: Duration,
    /// Each response's latency varies by up to this either way.
    jitter: Duration,
    site_limit: Option<SiteLimit>,
}

/// How the site limits its client.
#[derive(Clone, Copy)]
struct SiteLimit {
    shape: Shape,
    /// The rate is multiplied by `.1` after the `.0`th request.
    shift: Option<(u64, f64)>,
    headers: RateHeaders,
}

impl Crawl {
    fn site(&self) -> FakeSite {
        let mut b = FakeSite::builder().latency(self.latency);
        if !self.jitter.is_zero() {
            b = b.latency_jitter(self.jitter, fastrand::u64(..));
        }
        for t in &self.tags {
            b = b.synthetic_tag(t, u64::from(self.pages) * 50);
        }
        if let Some(l) = self.site_limit {
            let mut limiter = Limiter::new(l.shape, Instant::now());
            if let Some((n, factor)) = l.shift {
                limiter = limiter.shifting(Shift::AtRequest(n), factor);
            }
            b = b.limiter(limiter).rate_headers(l.headers);
        }
        b.start()
    }

    /// The site-bound minimum: every page at the rate the site allows at
    /// the time, plus one latency for the last answer.
    fn site_bound(&self) -> Option<f64> {
        let l = self.site_limit?;
        let pages = self.planned() as f64;
        let rate = l.shape.rate();
        let wire = match l.shift {
            None => pages / rate,
            Some((n, factor)) => {
                let before = (n as f64).min(pages);
                before / rate + (pages - before) / (rate * factor)
            }
        };
        Some(wire + self.latency.as_secs_f64())
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
    if std::env::var_os("TABLE_TRACE").is_some() {
        // What the site saw, for a row that needs explaining.
        let all = site.hits();
        if let Some(first) = all.first().map(|h| h.at) {
            let line: Vec<String> = all
                .iter()
                .map(|h| {
                    format!(
                        "{:.3}{}",
                        (h.at - first).as_secs_f64(),
                        if h.status == 429 { "R" } else { "" }
                    )
                })
                .collect();
            eprintln!("  trace: {}", line.join(" "));
        }
    }
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
        settled_after: settled_after(crawl, &site.hits()),
    }
}

/// How long after the limit changed the crawl ran at the new limit; `None`
/// when it did not change (or never settled).
fn settled_after(crawl: &Crawl, hits: &[Hit]) -> Option<f64> {
    let l = crawl.site_limit?;
    let (n, factor) = l.shift?;
    let changed = hits.get(usize::try_from(n).ok()?)?.at;
    let after = || hits.iter().filter(|h| h.at >= changed);
    if factor < 1.0 {
        // The 429s the drop brought: those before the first 3 s without
        // one (a later probe above the new limit is not the drop's).
        let refused: Vec<Instant> = after().filter(|h| h.status == 429).map(|h| h.at).collect();
        let last = refused
            .windows(2)
            .find(|w| w[1] - w[0] >= Duration::from_secs(3))
            .map(|w| w[0])
            .or(refused.last().copied());
        return Some(last.map_or(0.0, |t| (t - changed).as_secs_f64()));
    }
    let served: Vec<Instant> = after().filter(|h| h.status == 200).map(|h| h.at).collect();
    let goal = (0.9 * l.shape.rate() * factor).floor() as usize;
    (goal..served.len())
        .find(|&i| served[i] - served[i - goal] <= Duration::from_secs(1))
        .map(|i| (served[i] - changed).as_secs_f64())
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

/// The limiter rows: each measured shape, then a bucket of burst 1 that
/// states its policy in `RateLimit` headers.
fn limiter_rows() -> Vec<(&'static str, SiteLimit)> {
    let plain = |shape| SiteLimit {
        shape,
        shift: None,
        headers: RateHeaders::RetryAfterOnly,
    };
    let mut rows: Vec<_> = measured_shapes()
        .into_iter()
        .map(|(name, shape, shift)| {
            let shift = shift.map(|factor| (60, factor));
            (
                name,
                SiteLimit {
                    shift,
                    ..plain(shape)
                },
            )
        })
        .collect();
    rows.push((
        "token bucket, burst 1, with RateLimit headers",
        SiteLimit {
            headers: RateHeaders::Ietf,
            ..plain(Shape::TokenBucket {
                rate: 8.0,
                burst: 1,
            })
        },
    ));
    rows
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn main() {
    let rows = std::env::var("TABLE_ROWS").unwrap_or_else(|_| "quota,limiters,cpu".into());
    let wants = |row: &str| rows.split(',').any(|r| r.trim() == row);
    let scrapy_cell = OnceCell::new();
    let python = || {
        scrapy_cell
            .get_or_init(|| {
                let python = scrapy_python();
                if let Err(why) = &python {
                    println!("Scrapy not measured: {why}");
                }
                python.ok()
            })
            .clone()
    };
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the start: {}", load().trim());

    if wants("quota") {
        println!("\n1. quota-bound crawl: 2 tags x 32 pages, quota 20/s burst 5, 300 ms latency, 8 in flight");
        let quota = Crawl {
            tags: tags("q", 2),
            pages: 32,
            rate: 20.0,
            burst: 5,
            latency: Duration::from_millis(300),
            jitter: Duration::ZERO,
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
        if let Some(py) = python() {
            let theirs = scrapy(&py, &quota, false);
            let crawl = theirs.crawl_secs.unwrap_or(theirs.wall);
            println!(
                "  Scrapy      {crawl:.2} s spider open to close = {:.3} x ({:.2} s with the interpreter's start); lost {}",
                crawl / bound,
                theirs.wall,
                theirs.lost
            );
        }
    }

    if wants("limiters") {
        let runs = env_number("TABLE_RUNS", 5) as usize;
        let pages = env_number("TABLE_PAGES", 60);
        println!(
            "\n2. the site's limiter: 8 requests/s; quota 20/s burst 5, 8 fetchers, {pages} pages ({} when the limit changes), 100 +- 50 ms latency, {runs} runs each",
            2 * pages
        );
        println!("| the site's limiter | wall / minimum (min / median / max) | 429s (min / median / max) | settled after a change | lost | load average |");
        println!("|---|---|---|---|---|---|");
        let only = std::env::var("TABLE_ONLY").unwrap_or_default();
        for (name, limit) in limiter_rows()
            .into_iter()
            .filter(|(n, _)| only.is_empty() || only.split(";").any(|o| o == *n))
        {
            let pages = if limit.shift.is_some() {
                2 * pages
            } else {
                pages
            };
            let crawl = Crawl {
                tags: tags("s", 2),
                pages: pages / 2,
                rate: 20.0,
                burst: 5,
                latency: Duration::from_millis(100),
                jitter: Duration::from_millis(50),
                site_limit: Some(limit),
            };
            let minimum = crawl.site_bound().expect("a limited site");
            let mut ratios = Vec::new();
            let mut shares = Vec::new();
            let mut settled = Vec::new();
            let mut lost = 0;
            let before = load();
            for i in 1..=runs {
                let r = stackcrawl(&crawl);
                let share = r.refused as f64 / r.requests as f64;
                eprintln!(
                    "  {name} run {i}: {:.2} s = {:.3} x the {minimum:.2} s minimum; {} of {} requests 429 ({:.1}%); lost {}; settled {:?}",
                    r.wall,
                    r.wall / minimum,
                    r.refused,
                    r.requests,
                    100.0 * share,
                    r.lost,
                    r.settled_after
                );
                ratios.push(r.wall / minimum);
                shares.push(share);
                settled.extend(r.settled_after);
                lost += r.lost;
            }
            let spread = |v: &mut Vec<f64>, f: &dyn Fn(f64) -> String| {
                v.sort_by(f64::total_cmp);
                format!(
                    "{} / {} / {}",
                    f(v[0]),
                    f(v[v.len() / 2]),
                    f(v[v.len() - 1])
                )
            };
            let settled = if settled.is_empty() {
                "".to_string()
            } else {
                format!("{} s", spread(&mut settled, &|x| format!("{x:.1}")))
            };
            println!(
                "| {name} | {} | {} | {settled} | {lost} | {} .. {} |",
                spread(&mut ratios, &|x| format!("{x:.2}x")),
                spread(&mut shares, &|x| format!("{:.1}%", 100.0 * x)),
                first_field(&before),
                first_field(&load()),
            );
        }
        if let Some(py) = python() {
            let (_, sliding) = limiter_rows()[4];
            let slow = Crawl {
                tags: tags("s", 2),
                pages: pages / 2,
                rate: 20.0,
                burst: 5,
                latency: Duration::from_millis(100),
                jitter: Duration::from_millis(50),
                site_limit: Some(sliding),
            };
            let minimum = slow.site_bound().expect("a limited site");
            let r = scrapy(&py, &slow, true);
            let crawl = r.crawl_secs.unwrap_or(r.wall);
            println!(
                "  Scrapy (AutoThrottle) against the sliding window: {crawl:.2} s spider open to close = {:.3} x; {} of {} requests 429; lost {} of {}",
                crawl / minimum,
                r.refused,
                r.requests,
                r.lost,
                r.planned
            );
        }
    }

    if !wants("cpu") {
        return;
    }
    let python = python();
    println!(
        "\n3-4. marginal CPU per 50-question page (400 - 40 pages) and peak RSS, at 30 requests/s"
    );
    let small = Crawl {
        tags: tags("c", 1),
        pages: 40,
        rate: 30.0,
        burst: 5,
        latency: Duration::ZERO,
        jitter: Duration::ZERO,
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

/// The one-minute figure of a /proc/loadavg line.
fn first_field(loadavg: &str) -> &str {
    loadavg.split_whitespace().next().unwrap_or("?")
}
