//! A fleet: several `stackcrawl run` processes (the real binary), each
//! leaving from its own loopback address, sharing one PostgreSQL store and
//! one pass, against one fake site that allows each client address 10
//! requests a second. Every test has a database of its own, dropped after.
//!
//! These tests assert what a fleet must get right (each page fetched once,
//! a dead process's pages taken over, the store equal to what the site
//! served); how much faster three processes are is measured by
//! `benches/fleet.rs`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use stackcrawl_fakesite::pg::TestDb;
use stackcrawl_fakesite::service::Service;
use stackcrawl_fakesite::{config::TestConfig, FakeSite, Fault, Hit};

const BIN: &str = env!("CARGO_BIN_EXE_stackcrawl");
const PAGESIZE: u32 = 15;

/// The site: one tag of `pages` full pages, 10 requests/s per client.
fn site(pages: u32) -> FakeSite {
    FakeSite::builder()
        .tag("fleet", u64::from(pages * PAGESIZE))
        .per_client_rate(10)
        .start()
}

/// The config of process `i` of a fleet on `db`, in a directory of its own.
fn member_config(site: &FakeSite, db: &TestDb, dir: &Path, i: usize) -> TestConfig {
    let dir = dir.join(format!("w{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    TestConfig::service(site, &dir).store_at(&db.url)
}

/// The fleet's tag set: `pages` pages of the `fleet` tag, due hourly.
fn fleet_set(pages: u32) -> String {
    format!(
        "[tag_sets.fleet]\ntags = [\"fleet\"]\npages = {pages}\npagesize = {PAGESIZE}\nevery = \"1h\"\n"
    )
}

/// Process `i` of a fleet: named `w{i}`, leaving from 127.0.0.{i + 2}.
/// Each runs a little under its address's 10/s: at exactly the limit, a
/// request that leaves late and the next that leaves on time share one
/// window, and the 429 and its retry fetch a page twice (seen on an idle
/// machine, where nothing slows the processes below the limit).
fn member(site: &FakeSite, db: &TestDb, dir: &Path, i: usize, pages: u32) -> Service {
    let config = member_config(site, db, dir, i)
        .fetch("rate = 8.0\nburst = 1\nfetchers = 2")
        .fleet(format!(
            // Leases long enough that a holder slowed by a loaded machine
            // (five fleet tests at once) keeps its page; with 3 s a lease
            // expired under a live holder and a page was fetched twice.
            "name = \"w{i}\"\nlocal_address = \"127.0.0.{}\"\nlease_secs = 10",
            i + 2
        ))
        .sets(fleet_set(pages))
        .write();
    Service::start(BIN, &config)
}

/// One tag of `pages` full pages, as `site`, but the first answer for page
/// 1 is a 429 asking for `retry_after` seconds of quiet.
fn site_pausing_at_page_one(pages: u32, retry_after: &str) -> FakeSite {
    FakeSite::builder()
        .tag("fleet", u64::from(pages * PAGESIZE))
        .fault(
            "fleet",
            1,
            Fault::Status {
                status: 429,
                retry_after: Some(retry_after.into()),
            },
        )
        .start()
}

/// The config of process `i` with `fetchers` fetchers at 8 requests/s and
/// leases of ten minutes: a lease never expires within a test, so a page
/// held elsewhere is fetched only once its holder settles it.
fn long_lease_member(
    site: &FakeSite,
    db: &TestDb,
    dir: &Path,
    i: usize,
    pages: u32,
    fetchers: u32,
) -> std::path::PathBuf {
    member_config(site, db, dir, i)
        .fetch(format!("rate = 8.0\nburst = 1\nfetchers = {fetchers}"))
        .fleet(format!(
            "name = \"w{i}\"\nlocal_address = \"127.0.0.{}\"\nlease_secs = 600",
            i + 2
        ))
        .sets(fleet_set(pages))
        .write()
}

/// `n` processes of a fleet on a database and a site of their own, crawling
/// a pass of `pages` pages.
fn start_fleet(n: usize, pages: u32) -> (TestDb, FakeSite, tempfile::TempDir, Vec<Service>) {
    let db = TestDb::create();
    let site = site(pages);
    let dir = tempfile::tempdir().unwrap();
    let fleet = (0..n)
        .map(|i| member(&site, &db, dir.path(), i, pages))
        .collect();
    (db, site, dir, fleet)
}

fn listing_hits(site: &FakeSite) -> Vec<Hit> {
    site.page_hits()
        .into_iter()
        .filter(|h| h.tag.as_deref() == Some("fleet"))
        .collect()
}

/// Per page of the `fleet` tag, each answer the site gave, in order, as
/// "CLIENT STATUS".
fn answers_per_page(site: &FakeSite) -> HashMap<u32, Vec<String>> {
    let mut per_page: HashMap<u32, Vec<String>> = HashMap::new();
    for h in listing_hits(site) {
        per_page
            .entry(h.page.unwrap())
            .or_default()
            .push(format!("{} {}", h.client, h.status));
    }
    per_page
}

/// Question ids `stackcrawl export` finds in the store.
fn exported_ids(db: &TestDb) -> BTreeSet<u64> {
    let out = Command::new(BIN)
        .args(["export", "--db", &db.url])
        .output()
        .expect("run export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["question_id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn served_ids(site: &FakeSite) -> BTreeSet<u64> {
    site.questions("fleet").iter().map(|q| q.id).collect()
}

#[test]
fn three_processes_share_one_pass_and_fetch_each_page_once() {
    const PAGES: u32 = 45;
    let (db, site, dir, mut fleet) = start_fleet(3, PAGES);
    let mut pass_ids = BTreeSet::new();
    for svc in &mut fleet {
        let started = svc.wait_for("run starting");
        assert!(started["worker"].as_str().unwrap().starts_with('w'));
        let finished = svc.wait_for("pass finished");
        pass_ids.insert(finished["pass_id"].as_i64().unwrap());
        svc.signal("-TERM");
        assert_eq!(svc.wait_exit(), Some(0));
    }
    assert_eq!(pass_ids.len(), 1, "one pass for the fleet");
    // A process started after the fleet finished its pass waits for the
    // next one to fall due rather than repeat it.
    let mut late = member(&site, &db, dir.path(), 3, PAGES);
    let idle = late.wait_until("status", |v| v["next_pass"].is_string());
    assert!(
        idle["next_pass_in_secs"].as_f64().unwrap() > 3000.0,
        "{idle}"
    );
    assert!(!late.saw("pass starting"));
    late.signal("-TERM");
    assert_eq!(late.wait_exit(), Some(0));

    let hits = listing_hits(&site);
    let mut per_page: HashMap<u32, usize> = HashMap::new();
    for h in &hits {
        *per_page.entry(h.page.unwrap()).or_default() += 1;
    }
    assert_eq!(per_page.len(), PAGES as usize, "every page fetched");
    assert!(
        per_page.values().all(|&n| n == 1),
        "a page fetched twice: {per_page:?}"
    );
    assert!(
        hits.iter().all(|h| h.status == 200),
        "the per-address limit was never hit"
    );
    let clients: BTreeSet<String> = hits.iter().map(|h| h.client.to_string()).collect();
    assert_eq!(
        clients,
        BTreeSet::from(["127.0.0.2".into(), "127.0.0.3".into(), "127.0.0.4".into()]),
        "every process fetched from its own address"
    );

    assert_eq!(
        db.count("SELECT COUNT(*) FROM pass_pages"),
        i64::from(PAGES)
    );
    assert_eq!(
        db.count("SELECT COUNT(DISTINCT fetched_by) FROM pass_pages WHERE fetched_by LIKE 'w%'"),
        3,
        "the store says which process fetched which page"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM page_leases"),
        0,
        "no lease outlives its page"
    );
    assert_eq!(exported_ids(&db), served_ids(&site));
    let report = Command::new(BIN)
        .args(["report", "--db", &db.url, "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["tags"][0]["questions"], u64::from(PAGES * PAGESIZE));
}

#[test]
fn a_killed_process_pages_are_taken_over_when_its_leases_expire() {
    const PAGES: u32 = 60;
    let (db, site, _dir, mut fleet) = start_fleet(3, PAGES);
    // Mid-pass: the victim has written pages and holds leases on more.
    for _ in 0..5 {
        fleet[0].wait_for("page done");
    }
    fleet[0].signal("-KILL");
    fleet[0].wait_exit();
    for svc in &mut fleet[1..] {
        svc.wait_for("pass finished");
        svc.signal("-TERM");
        assert_eq!(svc.wait_exit(), Some(0));
    }

    assert_eq!(
        db.count("SELECT COUNT(*) FROM pass_pages"),
        i64::from(PAGES)
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM passes WHERE finished_at IS NOT NULL"),
        1
    );
    assert_eq!(
        exported_ids(&db),
        served_ids(&site),
        "the store is what the site served"
    );
    // Each page once, but those the victim had on the wire when it died
    // (at most one per fetcher), which another process fetched again.
    let per_page = answers_per_page(&site);
    let twice: Vec<_> = per_page.iter().filter(|(_, c)| c.len() > 1).collect();
    assert!(twice.len() <= 2, "{twice:?}");
    for (page, clients) in &twice {
        assert_eq!(clients.len(), 2, "page {page}");
        assert_eq!(
            clients[0], "127.0.0.2 200",
            "page {page}: only the victim's pages are refetched: {twice:?}"
        );
    }
    let taken_over = fleet[1..]
        .iter()
        .flat_map(|s| &s.seen)
        .filter(|v| v["message"] == "lease of another process expired: page taken over")
        .count();
    assert!(taken_over >= twice.len(), "{taken_over} take-overs logged");
}

/// A process that claimed a page and then waits past its lease for the
/// quota (here a Retry-After that pauses its whole pool) must not fetch the
/// page once another process has fetched it.
#[test]
fn a_holder_kept_waiting_past_its_lease_does_not_fetch_a_page_taken_over() {
    const PAGES: u32 = 20;
    let db = TestDb::create();
    // Page 1's first answer pauses the holder for 12 s. (One fetcher: page
    // 1 goes first for sure, where a second fetcher could get ahead of it.)
    // The other process has those 12 s to start and take the pass over
    // (about 3 s on an idle machine).
    let site = site_pausing_at_page_one(PAGES, "12");
    let dir = tempfile::tempdir().unwrap();
    let config = member_config(&site, &db, dir.path(), 0)
        .fetch("rate = 8.0\nburst = 1\nfetchers = 1")
        .fleet("name = \"w0\"\nlocal_address = \"127.0.0.2\"\nlease_secs = 1")
        .sets(fleet_set(PAGES))
        .write();
    let mut holder = Service::start(BIN, &config);
    holder.wait_for("server asked to slow down: whole pool paused");
    // Its leases run out while it waits; another process takes the pass.
    let mut other = member(&site, &db, dir.path(), 1, PAGES);
    other.wait_for("pass finished");
    holder.wait_for("pass finished");
    for svc in [&mut holder, &mut other] {
        svc.signal("-TERM");
        assert_eq!(svc.wait_exit(), Some(0));
    }

    let per_page = answers_per_page(&site);
    let fetched: Vec<_> = per_page
        .iter()
        .map(|(page, c)| (page, c.iter().filter(|c| c.ends_with("200")).count()))
        .filter(|&(_, n)| n != 1)
        .collect();
    assert!(fetched.is_empty(), "each page once: {per_page:?}");
    // Issue 20 §1: the holder handed page 1 back as it began to wait, and
    // leased nothing while paused: the other process fetched page 1
    // without waiting for a lease to expire.
    assert!(holder.saw("page retried later: lease released for another process"));
    assert_eq!(
        per_page.get(&1).map(Vec::as_slice),
        Some(&["127.0.0.2 429".to_string(), "127.0.0.3 200".to_string()][..])
    );
    // The request the holder was admitted for and did not send is not
    // counted against its budget.
    let stopped = holder
        .seen
        .iter()
        .find(|v| v["message"] == "run stopped; store flushed")
        .expect("final line");
    let sent = site
        .hits()
        .iter()
        .filter(|h| h.client.to_string() == "127.0.0.2")
        .count();
    assert_eq!(stopped["requests"], sent as u64, "{stopped}");
    assert_eq!(
        exported_ids(&db),
        served_ids(&site),
        "the store is what the site served"
    );
}

/// Issue 20 §2: a holder stopped (SIGSTOP) with a page on the wire past
/// its lease wakes with the figures the site showed before; meanwhile
/// another process took the page over and wrote the newer figures. The
/// woken holder's write is fenced: the store keeps the newer figures.
#[test]
fn a_holder_stopped_past_its_lease_cannot_write_over_the_newer_figures() {
    const PAGES: u32 = 20;
    let db = TestDb::create();
    // Page 1's first answer leaves 2 s after the request came: long enough
    // to stop the holder with the request on the wire.
    let site = FakeSite::builder()
        .tag("fleet", u64::from(PAGES * PAGESIZE))
        .fault("fleet", 1, Fault::Stall(std::time::Duration::from_secs(2)))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = member_config(&site, &db, dir.path(), 0)
        .fetch("rate = 8.0\nburst = 1\nfetchers = 1")
        .fleet("name = \"w0\"\nlocal_address = \"127.0.0.2\"\nlease_secs = 1")
        .sets(fleet_set(PAGES))
        .write();
    let mut holder = Service::start(BIN, &config);
    // The site renders page 1 (old figures) the moment the request comes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !listing_hits(&site).iter().any(|h| h.page == Some(1)) {
        assert!(std::time::Instant::now() < deadline, "page 1 never asked");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    holder.signal("-STOP");
    // The site changes; the other process takes page 1 over once the
    // stopped holder's lease runs out, and writes the newer figures.
    site.edit("fleet", |qs| {
        for q in qs.iter_mut() {
            q.votes += 100;
        }
    });
    let mut other = member(&site, &db, dir.path(), 1, PAGES);
    let taken = other.wait_for("lease of another process expired: page taken over");
    assert_eq!(
        (taken["page"].as_u64(), taken["from"].as_str()),
        (Some(1), Some("w0"))
    );
    // Woken once page 1 is written and while the pass is still open:
    // unfenced, its write would go through and put the old figures back.
    other.wait_until("page done", |v| v["page"] == 1);
    holder.signal("-CONT");
    let fenced = holder
        .wait_for("lease taken over while this process held the page: its records are dropped");
    assert_eq!(
        (fenced["page"].as_u64(), fenced["holder"].as_str()),
        (Some(1), Some("w1")),
        "{fenced}"
    );
    assert!(fenced["stale_token"].is_string(), "{fenced}");
    for svc in [&mut holder, &mut other] {
        svc.wait_for("pass finished");
        svc.signal("-TERM");
        assert_eq!(svc.wait_exit(), Some(0));
    }

    let page1 = answers_per_page(&site).remove(&1).unwrap_or_default();
    assert_eq!(page1, ["127.0.0.2 200", "127.0.0.3 200"], "fetched by both");
    let out = Command::new(BIN)
        .args(["export", "--db", &db.url])
        .output()
        .expect("run export");
    let stored: HashMap<u64, i64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["question_id"].as_u64().unwrap(),
                v["votes"].as_i64().unwrap(),
            )
        })
        .collect();
    let served: HashMap<u64, i64> = site
        .questions("fleet")
        .iter()
        .map(|q| (q.id, q.votes))
        .collect();
    assert_eq!(stored, served, "the newer figures are kept");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM pass_pages WHERE page = 1 AND fetched_by = 'w1'"),
        1
    );
}

/// Issue 20 §1: a page one process gives up (failed after its retries)
/// hands its lease back at once, and another process fetches it without
/// waiting for the lease (here 10 minutes) to expire.
#[test]
fn a_page_given_up_is_released_and_fetched_by_another_process_at_once() {
    const PAGES: u32 = 40;
    let db = TestDb::create();
    // Page 1 fails both attempts the first process makes.
    let site = FakeSite::builder()
        .tag("fleet", u64::from(PAGES * PAGESIZE))
        .fault(
            "fleet",
            1,
            Fault::Status {
                status: 500,
                retry_after: None,
            },
        )
        .fault(
            "fleet",
            1,
            Fault::Status {
                status: 500,
                retry_after: None,
            },
        )
        .start();
    let dir = tempfile::tempdir().unwrap();
    // Slow enough that its share of the pass outlasts the other's start:
    // a process ends the pass without waiting for a page it gave up.
    let config = member_config(&site, &db, dir.path(), 0)
        .fetch("rate = 4.0\nburst = 1\nfetchers = 1\nmax_retries = 1\nretry_base_ms = 100")
        .fleet("name = \"w0\"\nlocal_address = \"127.0.0.2\"\nlease_secs = 600")
        .sets(fleet_set(PAGES))
        .write();
    let mut giver = Service::start(BIN, &config);
    // Alone until it gives the page up: a page waiting for its retry is
    // handed back too, and another process could fetch it meanwhile.
    let released = giver.wait_for("page given up: lease released for another process");
    assert_eq!(released["page"], 1, "{released}");
    let mut other = member(&site, &db, dir.path(), 1, PAGES);
    // Bounded by a minute a wait: the lease had ten left.
    other.wait_until("page done", |v| v["page"] == 1);
    for svc in [&mut giver, &mut other] {
        svc.wait_for("pass finished");
        svc.signal("-TERM");
        assert_eq!(svc.wait_exit(), Some(0));
    }
    let page1 = answers_per_page(&site).remove(&1).unwrap_or_default();
    assert_eq!(
        page1,
        ["127.0.0.2 500", "127.0.0.2 500", "127.0.0.3 200"],
        "given up by w0, then fetched by w1"
    );
    assert!(
        !other
            .seen
            .iter()
            .any(|v| v["message"] == "lease of another process expired: page taken over"),
        "claimed as a free page, not taken over"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM pass_pages WHERE page = 1 AND fetched_by = 'w1'"),
        1
    );
    assert_eq!(exported_ids(&db), served_ids(&site));
}

/// Issue 20 §1: the pass's end is announced, not polled. A process whose
/// last page of the pass is one another process holds waits on it; the
/// holder's write of it is announced, and the waiting process finishes
/// the pass then. With leases of ten minutes, a process that asked again
/// only on a timer or at the lease's expiry would not finish within the
/// minute `wait_for` allows.
#[test]
fn a_page_held_elsewhere_is_taken_as_done_when_its_write_is_announced() {
    const PAGES: u32 = 12;
    let db = TestDb::create();
    let site = site(PAGES);
    let dir = tempfile::tempdir().unwrap();
    let member = |i| long_lease_member(&site, &db, dir.path(), i, PAGES, 1);
    let mut holder = Service::start(BIN, &member(0));
    // Stopped with its first page on the wire: it holds that page's lease.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let held = loop {
        let first = listing_hits(&site)
            .iter()
            .find(|h| h.client.to_string() == "127.0.0.2")
            .and_then(|h| h.page);
        if let Some(page) = first {
            break page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "w0 never asked a page"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    holder.signal("-STOP");
    let config = member(1);
    let mut cmd = stackcrawl_fakesite::service::command(BIN, config.parent().unwrap());
    cmd.args(["--log-format", "json", "run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info,stackcrawl::engine::supervisor=debug");
    let mut waiter = Service::from_command(cmd);
    // The waiter did the rest and found the held page held.
    waiter.wait_until("page held by another process", |v| {
        v["page"] == held && v["by"] == "w0"
    });
    holder.signal("-CONT");
    holder.wait_until("page done", |v| v["page"] == held);
    waiter.wait_for("pass finished");
    holder.wait_for("pass finished");
    for svc in [&mut holder, &mut waiter] {
        svc.signal("-TERM");
        assert_eq!(svc.wait_exit(), Some(0));
    }
    assert!(!waiter.saw("lease of another process expired: page taken over"));
    let answers = answers_per_page(&site);
    assert_eq!(answers.len(), PAGES as usize);
    assert!(answers.values().all(|a| a.len() == 1), "{answers:?}");
    assert_eq!(exported_ids(&db), served_ids(&site));
}

/// Issue 20 §1: a process the site pauses (a 429 with a Retry-After of ten
/// minutes) holds none of the pass's pages while it waits: the refused
/// page's lease and those of the pages its other fetchers were waiting to
/// send are handed back, and another process fetches them all. Holding
/// them, the pass would wait for the pause or the leases (ten minutes
/// too), past the minute `wait_for` allows.
#[test]
fn a_process_paused_by_the_site_hands_back_the_pages_it_holds() {
    const PAGES: u32 = 12;
    let db = TestDb::create();
    let site = site_pausing_at_page_one(PAGES, "600");
    let dir = tempfile::tempdir().unwrap();
    let member = |i| Service::start(BIN, &long_lease_member(&site, &db, dir.path(), i, PAGES, 3));
    let mut paused = member(0);
    paused.wait_until("retrying page", |v| v["page"] == 1);
    paused.wait_until(
        "page retried later: lease released for another process",
        |v| v["page"] == 1,
    );
    let mut other = member(1);
    other.wait_for("pass finished");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM page_leases"),
        0,
        "no lease left with the paused process"
    );
    paused.signal("-TERM");
    other.signal("-TERM");
    assert_eq!(paused.wait_exit(), Some(0));
    assert_eq!(other.wait_exit(), Some(0));
    let answers = answers_per_page(&site);
    assert_eq!(
        answers.get(&1).map(Vec::as_slice),
        Some(&["127.0.0.2 429".to_string(), "127.0.0.3 200".to_string()][..])
    );
    assert_eq!(answers.len(), PAGES as usize);
    assert!(
        answers.iter().all(|(&p, a)| p == 1 || a.len() == 1),
        "{answers:?}"
    );
    assert_eq!(exported_ids(&db), served_ids(&site));
}

/// Issue 20 §1: a process leases pages for its idle fetchers in one claim;
/// the pages it leased but never sent (waiting for their turn under a slow
/// rate when it is told to stop) hand their leases back as it drains, so
/// no lease outlives a process that did not get to its page.
#[test]
fn leases_of_pages_never_sent_are_released_when_a_process_stops() {
    const PAGES: u32 = 20;
    let db = TestDb::create();
    let site = site(PAGES);
    let dir = tempfile::tempdir().unwrap();
    let config = member_config(&site, &db, dir.path(), 0)
        .fetch("rate = 0.5\nburst = 1\nfetchers = 4")
        .fleet("name = \"w0\"\nlocal_address = \"127.0.0.2\"\nlease_secs = 600")
        .sets(fleet_set(PAGES))
        .write();
    let mut svc = Service::start(BIN, &config);
    svc.wait_for("page done");
    assert!(
        db.count("SELECT COUNT(*) FROM page_leases") > 0,
        "fetchers waiting for their turn hold leases"
    );
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
    assert_eq!(
        db.count("SELECT COUNT(*) FROM page_leases"),
        0,
        "every lease written or handed back"
    );
    assert!(svc.saw("crawl drained before the page went out: lease released for another process"));
    assert!(db.count("SELECT COUNT(*) FROM pass_pages") < i64::from(PAGES));
}

#[test]
fn processes_sharing_an_app_key_spend_one_budget_counted_exactly() {
    const KEY: &str = "fleet-key-1";
    const QUOTA: i64 = 7;
    let db = TestDb::create();
    let site = FakeSite::builder().tag("api", 200).api_key(KEY).start();
    let dir = tempfile::tempdir().unwrap();
    let mut fleet: Vec<Service> = (0..2)
        .map(|i| {
            let config = member_config(&site, &db, dir.path(), i)
                .fleet(format!("name = \"w{i}\"\nlease_secs = 2"))
                .api_set(&["api"], 10, 20)
                .api(format!(
                    "daily_quota = {QUOTA}\nstop_at_quota_remaining = 0"
                ))
                .write();
            let mut cmd = Command::new(BIN);
            cmd.args(["--log-format", "json", "run", "--config"])
                .arg(&config)
                .env("RUST_LOG", "info")
                .env("STACKCRAWL_API_KEY", KEY);
            Service::from_command(cmd)
        })
        .collect();
    for svc in &mut fleet {
        svc.wait_for("request budget spent: waiting for it to reset");
    }
    for svc in &mut fleet {
        svc.signal("-TERM");
        assert_eq!(svc.wait_exit(), Some(0));
    }
    // Each process alone would have spent the whole quota.
    assert_eq!(site.api_hits().len() as i64, QUOTA, "requests the API saw");
    assert_eq!(
        db.count("SELECT SUM(used)::BIGINT FROM budget_requests"),
        QUOTA
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM budget_requests"),
        1,
        "one budget, the key's, in the database"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM pass_pages"), QUOTA);
}

#[test]
fn processes_behind_one_address_share_its_quota_through_the_database() {
    const PAGES: u32 = 30;
    let db = TestDb::create();
    let site = site(PAGES);
    let dir = tempfile::tempdir().unwrap();
    // Two processes on one address, each allowed most of the address's
    // 10/s: together, unshared, they would send 16/s; only the shared quota
    // keeps them under the limit. (Not the whole 10/s: requests leave a
    // moment after their slot, and at exactly the limit that jitter alone
    // puts an eleventh request into some one-second window.)
    let mut fleet: Vec<Service> = (0..2)
        .map(|i| {
            let config = member_config(&site, &db, dir.path(), i)
                .fetch("rate = 8.0\nburst = 1\nfetchers = 2")
                .fleet(format!(
                    "name = \"w{i}\"\nlocal_address = \"127.0.0.5\"\nshared_quota = \"ip5\""
                ))
                .sets(fleet_set(PAGES))
                .write();
            Service::start(BIN, &config)
        })
        .collect();
    for svc in &mut fleet {
        svc.wait_for("pass finished");
        svc.signal("-TERM");
        assert_eq!(svc.wait_exit(), Some(0));
    }
    let hits = site.hits();
    assert!(
        hits.iter().all(|h| h.status != 429),
        "the address's limit was hit"
    );
    assert_eq!(listing_hits(&site).len(), PAGES as usize);
    assert_eq!(
        db.count("SELECT COUNT(DISTINCT fetched_by) FROM pass_pages"),
        2,
        "both processes fetched"
    );
}

/// `crawl --store` takes a PostgreSQL URL as it takes a file, and `export`
/// reads back what the crawl wrote to its output.
#[test]
fn a_crawl_keeps_its_records_in_a_postgresql_store() {
    let db = TestDb::create();
    let site = FakeSite::builder().tag("pg", 45).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .sets("[tag_sets.pg]\ntags = [\"pg\"]\npages = 3\npagesize = 15\n")
        .write();
    let out = Command::new(BIN)
        .args(["crawl", "--config"])
        .arg(&config)
        .args(["--store", &db.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: BTreeSet<u64> = stackcrawl_fakesite::read_jsonl(&dir.path().join("q.jsonl"))
        .iter()
        .map(|q| q.question_id)
        .collect();
    assert_eq!(written.len(), 45);
    assert_eq!(exported_ids(&db), written);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM passes WHERE finished_at IS NOT NULL"),
        1
    );
}
