//! Fleet benchmark: what a fleet of `stackcrawl run` processes (the real
//! binary) sharing one PostgreSQL store buys, against one fake site that
//! allows each client address 10 requests a second.
//!
//! 1. One process, a 300-page pass, at 10 requests/s: the baseline.
//! 2. Three processes on 127.0.0.2–4, the same pass: wall time and speed-up,
//!    and how often each page was fetched.
//! 3. Three processes, one killed (-9) a third of the way in: how long the
//!    other two take to finish after the kill, with a 5 s lease.
//! 4. The shared per-second quota (`[fleet] shared_quota`): the cost of one
//!    GCRA reservation per request, against a bare round trip.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (as the tests). Run:
//! `cargo bench --bench fleet` (about a minute); `FLEET_PAGES` sets the
//! pass's length (300 pages by default). `FLEET_SIZES=1,3,5,10`
//! measures only those fleet sizes (one process on 127.0.0.2 upwards each),
//! and skips 3. and 4.; each size's line also gives the CPU time the
//! database's backends spent per page (read from /proc, so the server must
//! run on this machine; backends that had exited by the pass's end are
//! not counted). `FLEET_TIMELINE=1` prints, per process, when it logged
//! its start, its pass's start and end, and its first and last page
//! requests (seconds from the first spawn); `FLEET_DEBUG_LOG` sets the
//! processes' `RUST_LOG` and `FLEET_DEBUG_DIR` writes their log lines
//! there (`w0.jsonl`…), with the timeline.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use stackcrawl::lane::shared_quota::SharedQuota;
use stackcrawl::store::PgStore;
use stackcrawl_fakesite::pg::TestDb;
use stackcrawl_fakesite::service::Service;
use stackcrawl_fakesite::{FakeSite, TestConfig};

const BIN: &str = env!("CARGO_BIN_EXE_stackcrawl");
/// The pass's pages: 300, or `FLEET_PAGES` (a longer pass makes each
/// process's start-up and the pass's closing a smaller share of the time).
fn pages() -> u32 {
    std::env::var("FLEET_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}
const PAGESIZE: u32 = 15;
const RATE: u32 = 10;

fn member(site: &FakeSite, db: &TestDb, dir: &Path, i: usize) -> Service {
    let dir = dir.join(format!("w{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = TestConfig::service(site, &dir)
        .store_at(&db.url)
        .fetch(format!("rate = {RATE}.0\nburst = 1\nfetchers = 3\nstatus_every_secs = 60"))
        .fleet(format!(
            "name = \"w{i}\"\nlocal_address = \"127.0.0.{}\"\nlease_secs = 5",
            i + 2
        ))
        .sets(format!(
            "[tag_sets.fleet]\ntags = [\"fleet\"]\npages = {}\npagesize = {PAGESIZE}\nevery = \"1h\"\n",
            pages()
        ))
        .write();
    if let Ok(filter) = std::env::var("FLEET_DEBUG_LOG") {
        let mut cmd = stackcrawl_fakesite::service::command(BIN, config.parent().unwrap());
        cmd.args(["--log-format", "json", "run", "--config"])
            .arg(&config)
            .env("RUST_LOG", filter);
        return Service::from_command(cmd);
    }
    Service::start(BIN, &config)
}

struct Pass {
    wall: Duration,
    /// From the fleet's first request for a page to its last: the wall
    /// time without the processes' start-up and the pass's closing.
    walk: Duration,
    /// CPU seconds of the database's backends per page, if /proc shows them.
    db_cpu_per_page: Option<f64>,
    fetched_once: usize,
    fetched_twice: usize,
    refused: usize,
    after_kill: Option<Duration>,
}

/// `n` processes crawl one pass; with `kill_after`, process 0 is killed
/// once it has written that many pages.
fn pass(n: usize, kill_after: Option<usize>) -> Pass {
    let db = TestDb::create();
    drop(PgStore::open(&db.url).unwrap());
    let site = FakeSite::builder()
        .tag("fleet", u64::from(pages() * PAGESIZE))
        .per_client_rate(RATE)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let started_wall = std::time::SystemTime::now();
    let mut fleet: Vec<Service> = (0..n).map(|i| member(&site, &db, dir.path(), i)).collect();
    let mut killed_at = None;
    if let Some(pages) = kill_after {
        for _ in 0..pages {
            fleet[0].wait_for("page done");
        }
        fleet[0].signal("-KILL");
        fleet[0].wait_exit();
        killed_at = Some(Instant::now());
    }
    let survivors = usize::from(kill_after.is_some());
    for svc in &mut fleet[survivors..] {
        svc.next("pass finished", Duration::from_secs(120))
            .expect("pass finished");
    }
    let wall = started.elapsed();
    let finished_at = Instant::now();
    let db_cpu_per_page = backends_cpu(&db).map(|s| s / f64::from(pages()));
    for svc in &mut fleet[survivors..] {
        svc.signal("-TERM");
        svc.wait_exit();
    }
    let hits = site.page_hits();
    if std::env::var_os("FLEET_TIMELINE").is_some() {
        timeline(&fleet, &site.hits(), started, started_wall);
    }
    let mut per_page: HashMap<u32, usize> = HashMap::new();
    for h in hits.iter().filter(|h| h.status == 200) {
        *per_page.entry(h.page.unwrap_or(0)).or_default() += 1;
    }
    assert_eq!(per_page.len(), pages() as usize, "every page fetched");
    let pages = || hits.iter().filter(|h| h.page.is_some());
    let walk = match (pages().map(|h| h.at).min(), pages().map(|h| h.at).max()) {
        (Some(first), Some(last)) => last.duration_since(first),
        _ => Duration::ZERO,
    };
    Pass {
        wall,
        walk,
        db_cpu_per_page,
        fetched_once: per_page.values().filter(|&&c| c == 1).count(),
        fetched_twice: per_page.values().filter(|&&c| c > 1).count(),
        refused: hits.iter().filter(|h| h.status == 429).count(),
        after_kill: killed_at.map(|k| finished_at.duration_since(k)),
    }
}

/// Where each process's time went (`FLEET_TIMELINE=1`): seconds from the
/// first spawn to its log lines and to its first and last requests.
fn timeline(
    fleet: &[Service],
    hits: &[stackcrawl_fakesite::Hit],
    started: Instant,
    started_wall: std::time::SystemTime,
) {
    let since = |line: &serde_json::Value| -> Option<f64> {
        let at = chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str()?).ok()?;
        let at = std::time::SystemTime::from(at);
        Some(at.duration_since(started_wall).ok()?.as_secs_f64())
    };
    let logged = |svc: &Service, message: &str| -> String {
        svc.seen
            .iter()
            .find(|l| l["message"] == message)
            .and_then(since)
            .map_or("-".into(), |s| format!("{s:.2}"))
    };
    for (i, svc) in fleet.iter().enumerate() {
        if let Ok(dir) = std::env::var("FLEET_DEBUG_DIR") {
            let lines: Vec<String> = svc.seen.iter().map(|l| l.to_string()).collect();
            std::fs::write(format!("{dir}/w{i}.jsonl"), lines.join("\n")).unwrap();
        }
        let client: std::net::IpAddr = format!("127.0.0.{}", i + 2).parse().unwrap();
        let own: Vec<&stackcrawl_fakesite::Hit> =
            hits.iter().filter(|h| h.client == client).collect();
        let at = |h: Option<&&stackcrawl_fakesite::Hit>| {
            h.map_or("-".into(), |h| {
                format!("{:.2}", h.at.duration_since(started).as_secs_f64())
            })
        };
        let pages: Vec<&&stackcrawl_fakesite::Hit> =
            own.iter().filter(|h| h.page.is_some()).collect();
        println!(
            "  w{i}: run starting {}, pass starting {}, first request {}, first page {}, last page {}, pages {}, pass finished {}",
            logged(svc, "run starting"),
            logged(svc, "pass starting"),
            at(own.first()),
            at(pages.first().copied()),
            at(pages.last().copied()),
            pages.len(),
            logged(svc, "pass finished"),
        );
    }
}

/// User + system CPU seconds of the server processes serving `db`, from
/// /proc/<pid>/stat (fields 14 and 15, in clock ticks; 100 a second on
/// Linux). This process's own connection is left out.
fn backends_cpu(db: &TestDb) -> Option<f64> {
    let pids: Vec<i32> = {
        let mut c = postgres::Client::connect(&db.url, postgres::NoTls).ok()?;
        c.query(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .ok()?
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    let mut ticks = 0u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces: fields count from its ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        ticks += f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    }
    Some(ticks as f64 / 100.0)
}

fn cpu(p: &Pass) -> String {
    p.db_cpu_per_page
        .map(|s| format!("{:.2} ms", s * 1e3))
        .unwrap_or_else(|| "n/a".into())
}

fn quota_cost() -> (f64, f64) {
    let db = TestDb::create();
    drop(PgStore::open(&db.url).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // A rate no request waits for: what is left is the reservation.
        let quota = SharedQuota::new(&db.url, "bench", "h", 1e6, 1).unwrap();
        quota.reserve().await.unwrap();
        let n = 2000;
        let t = Instant::now();
        for _ in 0..n {
            quota.until_ready().await;
        }
        let per_reservation = t.elapsed().as_secs_f64() / f64::from(n) * 1e6;
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let t = Instant::now();
        for _ in 0..n {
            client.query_one("SELECT 1", &[]).await.unwrap();
        }
        let per_round_trip = t.elapsed().as_secs_f64() / f64::from(n) * 1e6;
        (per_reservation, per_round_trip)
    })
}

fn main() {
    let minimum = f64::from(pages()) / f64::from(RATE);
    println!("fleet bench: a {}-page pass, {RATE} requests/s per client address, PostgreSQL store on 127.0.0.1", pages());
    if let Ok(sizes) = std::env::var("FLEET_SIZES") {
        let (mut one, mut one_walk): (Option<f64>, Option<f64>) = (None, None);
        for n in sizes
            .split(',')
            .filter_map(|n| n.trim().parse::<usize>().ok())
        {
            let p = pass(n, None);
            let wall = p.wall.as_secs_f64();
            let walk = p.walk.as_secs_f64();
            let base = *one.get_or_insert(wall * n as f64);
            let base_walk = *one_walk.get_or_insert(walk * n as f64);
            println!(
                "{n:>2} processes: {wall:>6.2} s (minimum {:.1} s); speed-up {:.2}x = {:.0}% of linear; first to last request {walk:.2} s: {:.2}x = {:.0}% of linear, {:.0}% of the quota's pace; database CPU {} per page; pages fetched once {}, twice {}, 429s {}",
                minimum / n as f64,
                base / wall,
                base / wall / n as f64 * 100.0,
                base_walk / walk,
                base_walk / walk / n as f64 * 100.0,
                minimum / n as f64 / walk * 100.0,
                cpu(&p),
                p.fetched_once,
                p.fetched_twice,
                p.refused
            );
        }
        return;
    }
    let one = pass(1, None);
    println!(
        "1 process:   {:>6.2} s  (quota-bound minimum {minimum:.1} s); pages fetched once {}, twice {}, 429s {}",
        one.wall.as_secs_f64(),
        one.fetched_once,
        one.fetched_twice,
        one.refused
    );
    let three = pass(3, None);
    println!(
        "3 processes: {:>6.2} s  (minimum {:.1} s) = {:.2}x one process's time ({:.2}x speed-up); pages fetched once {}, twice {}, 429s {}",
        three.wall.as_secs_f64(),
        minimum / 3.0,
        three.wall.as_secs_f64() / one.wall.as_secs_f64(),
        one.wall.as_secs_f64() / three.wall.as_secs_f64(),
        three.fetched_once,
        three.fetched_twice,
        three.refused
    );
    let killed = pass(3, Some(pages() as usize / 9));
    println!(
        "3 processes, one kill -9'd after {} of its pages: pass {:.2} s, the other two finished {:.2} s after the kill (lease 5 s); pages fetched twice {} (on the wire at the kill), 429s {}",
        pages() / 9,
        killed.wall.as_secs_f64(),
        killed.after_kill.unwrap_or_default().as_secs_f64(),
        killed.fetched_twice,
        killed.refused
    );
    let (reservation, round_trip) = quota_cost();
    println!(
        "shared quota: {reservation:.0} µs per request (one GCRA reservation), against {round_trip:.0} µs for a bare SELECT 1 round trip; at 30 requests/s that is {:.2}% of one core's second",
        reservation * 30.0 / 1e4
    );
}
