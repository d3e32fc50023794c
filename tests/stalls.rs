//! A store or a budget that stops answering stalls the crawl, never stops
//! it from reporting or from obeying a signal: the real binary against the
//! fake site, its PostgreSQL store behind a TCP proxy the test owns (a
//! partition that forwards nothing, a server that refuses), and a budget
//! file another connection holds locked. Every test has its own database
//! and directory.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use stackcrawl_fakesite::lock::WriteLock;
use stackcrawl_fakesite::pg::TestDb;
use stackcrawl_fakesite::proxy::Proxy;
use stackcrawl_fakesite::service::Service;
use stackcrawl_fakesite::{config::TestConfig, read_jsonl, FakeSite};

const BIN: &str = env!("CARGO_BIN_EXE_stackcrawl");
const PAGES: u32 = 40;

fn site() -> FakeSite {
    FakeSite::builder()
        .tag("a", u64::from(PAGES) * 50)
        .latency(Duration::from_millis(20))
        .start()
}

/// `run` on a PostgreSQL store reached through `proxy`.
fn run_through(site: &FakeSite, db: &TestDb, proxy: &Proxy, dir: &std::path::Path) -> Service {
    let config = TestConfig::service(site, dir)
        .store_at(&db.url_through(proxy.addr))
        .fetch("fetchers = 2\nrate = 10.0\nburst = 2")
        .tag_set("s", &["a"], PAGES)
        .write();
    Service::start(BIN, &config)
}

/// Waits for `n` status lines that say the store is waiting.
fn status_lines_waiting_on(svc: &mut Service, field: &str, n: usize) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    while lines.len() < n {
        let line = svc.wait_for("status");
        if line[field].as_u64().is_some_and(|secs| secs >= 1) {
            lines.push(line);
        }
    }
    lines
}

/// SIGTERM, and how long the process took to exit, with its code.
fn terminate(svc: &mut Service) -> (Duration, Option<i32>) {
    let asked = Instant::now();
    svc.signal("-TERM");
    let code = svc.wait_exit();
    (asked.elapsed(), code)
}

/// After the fault, the pass completes on a healthy connection: every
/// question of the site in the store, each with one snapshot of the pass.
fn restart_completes(site: &FakeSite, db: &TestDb, proxy: &Proxy, dir: &std::path::Path) {
    let mut again = run_through(site, db, proxy, dir);
    again.wait_for("pass finished");
    let (_, code) = terminate(&mut again);
    assert_eq!(code, Some(0), "{:#?}", again.seen);
    let served: HashSet<u64> = site.questions("a").iter().map(|q| q.id).collect();
    assert_eq!(
        db.count("SELECT COUNT(*) FROM questions") as usize,
        served.len()
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM snapshots") as usize,
        served.len(),
        "one snapshot per question: none written twice"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM passes WHERE finished_at IS NOT NULL"),
        1
    );
}

/// A run stopped by SIGTERM while its store was faulted, and what it left.
struct Fault {
    site: FakeSite,
    db: TestDb,
    proxy: Proxy,
    dir: tempfile::TempDir,
    svc: Service,
    took: Duration,
}

/// `run` through a proxy, a few pages in, when `fault` strikes the store:
/// the status line keeps coming and says the store is waiting, and SIGTERM
/// ends the run within seconds, interrupted and resumable.
fn sigterm_while_the_store_is(fault: impl FnOnce(&Proxy)) -> Fault {
    let site = site();
    let db = TestDb::create();
    let proxy = Proxy::start(TestDb::server_addr());
    let dir = tempfile::tempdir().unwrap();
    let mut svc = run_through(&site, &db, &proxy, dir.path());
    for _ in 0..3 {
        svc.wait_for("page done");
    }
    fault(&proxy);
    status_lines_waiting_on(&mut svc, "store_waiting_secs", 2);
    let (took, code) = terminate(&mut svc);
    assert_eq!(code, Some(3), "interrupted, resumable: {:#?}", svc.seen);
    assert!(took < Duration::from_secs(15), "SIGTERM took {took:?}");
    Fault {
        site,
        db,
        proxy,
        dir,
        svc,
        took,
    }
}

#[test]
fn a_blackholed_database_is_reported_and_sigterm_still_stops_the_run() {
    let f = sigterm_while_the_store_is(Proxy::blackhole);
    assert!(
        f.svc.seen.iter().any(|l| l["waiting_on"] == "store"),
        "a warning names the store: {:#?}",
        f.svc.seen
    );
    let last = f
        .svc
        .seen
        .iter()
        .find(|l| l["pages_not_written"].is_u64() && l["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no final line naming pages not written: {:#?}", f.svc.seen));
    eprintln!("SIGTERM latency, blackholed store: {:?}; {last}", f.took);
    // The partition heals; its old connections did not survive it.
    f.proxy.cut();
    f.proxy.heal();
    restart_completes(&f.site, &f.db, &f.proxy, f.dir.path());
}

#[test]
fn a_refusing_database_is_reported_and_sigterm_still_stops_the_run() {
    let f = sigterm_while_the_store_is(Proxy::refuse);
    assert!(f
        .svc
        .saw("PostgreSQL unreachable: waiting to reconnect; fetched pages are kept until written"));
    eprintln!("SIGTERM latency, refusing store: {:?}", f.took);
    f.proxy.heal();
    restart_completes(&f.site, &f.db, &f.proxy, f.dir.path());
}

/// The output holds every question of the site's tag, each once.
fn every_question_once(site: &FakeSite, output: &std::path::Path) {
    let records = read_jsonl(output);
    let unique: HashSet<u64> = records.iter().map(|r| r.question_id).collect();
    assert_eq!(unique.len(), records.len(), "no record twice");
    assert_eq!(unique.len(), site.questions("a").len(), "every question");
}

fn crawl_with_budget(site: &FakeSite, dir: &std::path::Path) -> Service {
    let config = TestConfig::new(site, dir)
        .fetch("fetchers = 2\nrate = 10.0\nburst = 2\nstatus_every_secs = 1")
        .tag_set("s", &["a"], PAGES)
        .write();
    Service::spawn(BIN, &["crawl", "--config"], &config)
}

#[test]
fn a_locked_budget_file_pauses_the_crawl_which_then_finishes_every_page() {
    let site = site();
    let dir = tempfile::tempdir().unwrap();
    let mut svc = crawl_with_budget(&site, dir.path());
    for _ in 0..3 {
        svc.wait_for("page done");
    }
    let release = WriteLock::hold(&dir.path().join("budget.sqlite"));
    let first = status_lines_waiting_on(&mut svc, "budget_waiting_secs", 1);
    let hits = site.page_hits().len();
    let later = status_lines_waiting_on(&mut svc, "budget_waiting_secs", 1);
    assert_eq!(
        site.page_hits().len(),
        hits,
        "no request while the budget cannot count: {first:#?} {later:#?}"
    );
    assert!(svc.saw("the request budget cannot count: requests wait until it can"));
    drop(release);
    assert_eq!(svc.wait_exit(), Some(0), "{:#?}", svc.seen);
    every_question_once(&site, &dir.path().join("q.jsonl"));
}

#[test]
fn sigterm_during_a_budget_lock_stops_at_once_and_lists_what_was_not_fetched() {
    let site = site();
    let dir = tempfile::tempdir().unwrap();
    let mut svc = crawl_with_budget(&site, dir.path());
    svc.wait_for("page done");
    let _release = WriteLock::hold(&dir.path().join("budget.sqlite"));
    status_lines_waiting_on(&mut svc, "budget_waiting_secs", 1);
    let (took, code) = terminate(&mut svc);
    assert_eq!(code, Some(3), "interrupted: {:#?}", svc.seen);
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} while the budget file was locked"
    );
    eprintln!("SIGTERM latency, locked budget file: {took:?}");
    let failures = std::fs::read_to_string(dir.path().join("q.failed.jsonl")).unwrap();
    assert!(failures.lines().count() > 0);
}

#[test]
fn a_store_file_locked_past_a_readers_timeout_pauses_the_crawl_which_loses_nothing() {
    let site = site();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2\nrate = 10.0\nburst = 2\nstatus_every_secs = 1")
        .tag_set("s", &["a"], PAGES)
        .write();
    let db = dir.path().join("store.db");
    let mut svc = Service::spawn(
        BIN,
        &["crawl", "--store", db.to_str().unwrap(), "--config"],
        &config,
    );
    for _ in 0..3 {
        svc.wait_for("page done");
    }
    // Another program holds the store's write lock longer than the 5 s a
    // reader waits for one.
    let release = WriteLock::hold(&db);
    let mut waited = 0;
    while waited < 6 {
        let line = svc.wait_for("status");
        waited = line["store_waiting_secs"].as_u64().unwrap_or(waited);
    }
    drop(release);
    assert_eq!(svc.wait_exit(), Some(0), "{:#?}", svc.seen);
    assert!(!svc.saw("page failed"), "{:#?}", svc.seen);
    every_question_once(&site, &dir.path().join("q.jsonl"));
}

#[test]
fn a_reload_while_the_database_is_blackholed_still_answers_sigterm() {
    let site = site();
    let db = TestDb::create();
    let proxy = Proxy::start(TestDb::server_addr());
    let dir = tempfile::tempdir().unwrap();
    let mut svc = run_through(&site, &db, &proxy, dir.path());
    svc.wait_for("pass finished");
    // The pass's last use of the store: the configured output rewritten.
    svc.wait_for("output rewritten with the store's latest records");
    proxy.blackhole();
    // A reload opens the store again: through the partition, that never
    // answers.
    svc.signal("-HUP");
    // The reload retires the old crawler (its output flushed), then opens
    // the store again. Either waits on the partition: opening always; the
    // flush too when the old crawler had a call on the wire as the link
    // went dark (a status line's store figures, once a second here), which
    // holds its store thread until the link heals. A SIGTERM must be
    // answered in either.
    let reloading = ["opening the store", "flushing the output"];
    let mut other_waits = Vec::new();
    loop {
        let waiting = svc
            .wait_for("the store has not answered: waiting; fetched pages are kept until written");
        if reloading.iter().any(|w| waiting["waiting_for"] == *w) {
            break;
        }
        other_waits.push(waiting);
        assert!(
            other_waits.len() < 10,
            "never waited on the reload: {other_waits:#?}"
        );
    }
    let (took, code) = terminate(&mut svc);
    assert_eq!(code, Some(3), "interrupted: {:#?}", svc.seen);
    assert!(
        took < Duration::from_secs(15),
        "SIGTERM took {took:?} while a reload waited on the store"
    );
    eprintln!("SIGTERM latency, reload on a blackholed store: {took:?}");
}
