//! Soak benchmark for `stackcrawl run`: the release binary keeps a store
//! current over a 50,000-page pass (100 tags × 500 pages × 50 questions,
//! 2.5 M questions) against an unthrottled FakeSite on 127.0.0.1, then one
//! incremental pass. Samples the crawler process's resident memory (VmRSS)
//! every second and reports the curve, with the page counts of the full and
//! the incremental pass, and the growth from the first tenth of the run to
//! its end (flat memory is the goal).
//!
//! Run: `cargo bench --bench soak` (about 30 minutes: 50,000 pages at the
//! 30 requests/s ceiling). `SOAK_PAGES=50` (pages per tag) runs a shorter
//! soak of 100 × 50 pages; `SOAK_RATE` sets a lower quota; `SOAK_BIN` runs
//! another build of `stackcrawl` (an older commit's, to compare).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use stackcrawl_fakesite::{FakeSite, TestConfig};

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let tags = 100u64;
    let pages: u64 = std::env::var("SOAK_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let rate: f64 = std::env::var("SOAK_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30.0);
    let mut builder = FakeSite::builder();
    let names: Vec<String> = (0..tags).map(|i| format!("soak-{i}")).collect();
    for name in &names {
        builder = builder.synthetic_tag(name, pages * 50);
    }
    let site = builder.start();
    let dir = tempfile::tempdir().expect("tempdir");
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let config = TestConfig::new(&site, dir.path())
        .fetch(
            format!("fetchers = 8\nrate = {rate:.1}\nburst = 10\nstatus_every_secs = 10\ndaily_budget = 10000000"),
        )
        .store()
        .sets(format!(
            "[tag_sets.soak]\ntags = [{}]\npages = {pages}\nevery = \"1s\"\n",
            quoted.join(", ")
        ))
        .write();
    // `SOAK_BIN` runs another build of the crawler (an older commit's, to
    // compare) against the same site and config.
    let bin = std::env::var("SOAK_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_stackcrawl").into());
    let mut child = Command::new(&bin)
        .args(["--log-format", "json", "run", "--config"])
        .arg(&config)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn stackcrawl");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if v["message"] == "pass finished" && tx.send(v).is_err() {
                    return;
                }
            }
        }
    });

    let started = Instant::now();
    let mut samples = Vec::new();
    let mut passes = Vec::new();
    while passes.len() < 2
        && started.elapsed() < Duration::from_secs_f64((pages * tags) as f64 * 2.0 / rate + 600.0)
    {
        // Under a MiB is the moment around exec, before the crawler runs.
        if let Some(kib) = rss_kib(pid).filter(|&kib| kib >= 1024) {
            samples.push((started.elapsed().as_secs(), kib));
        }
        if let Ok(v) = rx.recv_timeout(Duration::from_secs(1)) {
            passes.push((v, started.elapsed()));
        }
    }
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) only sends SIGTERM to our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let _ = child.wait();

    println!(
        "soak: {tags} tags x {pages} pages x 50 questions, 8 fetchers, quota {rate} requests/s"
    );
    for (i, (v, at)) in passes.iter().enumerate() {
        println!(
            "  pass {}: pages {} questions {} new {} updated {} unchanged {} incremental {} (finished at {:.0} s)",
            i + 1,
            v["pages"],
            v["questions"],
            v["new"],
            v["updated"],
            v["unchanged"],
            v["incremental"],
            at.as_secs_f64()
        );
    }
    println!("  pages requested at the site: {}", site.page_hits().len());
    println!("  RSS over time (s: MiB):");
    let step = (samples.len() / 24).max(1);
    for (t, kib) in samples.iter().step_by(step) {
        println!("    {t:>4}: {:.1}", *kib as f64 / 1024.0);
    }
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
        println!(
            "  RSS start {:.1} MiB, end {:.1} MiB, peak {:.1} MiB",
            first.1 as f64 / 1024.0,
            last.1 as f64 / 1024.0,
            peak as f64 / 1024.0
        );
        // Warm-up (caches, pools, the store's pages) is over after the first
        // tenth; what grows after it grows with the length of the run.
        let settled = samples[samples.len() / 10].1;
        println!(
            "  RSS after the first tenth {:.1} MiB; growth to the end {:+.1} MiB",
            settled as f64 / 1024.0,
            (last.1 as f64 - settled as f64) / 1024.0
        );
        // Growth that slows quarter by quarter is filling caches and
        // allocator pools; growth that does not is a leak.
        let quarter = |q: usize| samples[(samples.len() - 1) * q / 4].1 as f64 / 1024.0;
        println!(
            "  RSS growth per quarter of the run: {:+.1}, {:+.1}, {:+.1}, {:+.1} MiB",
            quarter(1) - quarter(0),
            quarter(2) - quarter(1),
            quarter(3) - quarter(2),
            quarter(4) - quarter(3)
        );
    }
}
