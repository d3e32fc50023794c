//! `stackcrawl run` as a user runs it: the real binary against FakeSite on
//! 127.0.0.1, synchronised on its JSON log lines. Incremental passes,
//! kill -9 and resume, SIGTERM drain, SIGHUP reload.

const BIN: &str = env!("CARGO_BIN_EXE_stackcrawl");

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use stackcrawl_fakesite::service::{command, Service};
use stackcrawl_fakesite::{budget_used, FakeQuestion, FakeSite, Fault, TestConfig};

fn query_u64(db: &Path, sql: &str) -> u64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64
}

fn done_pages(db: &Path) -> HashSet<u32> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT page FROM pass_pages").unwrap();
    let pages = stmt
        .query_map([], |r| r.get::<_, u32>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    pages
}

#[test]
fn second_pass_is_incremental_and_adds_snapshots() {
    let site = FakeSite::builder().tag("a", 500).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 1\nrate = 30.0\nburst = 5")
        .sets("[tag_sets.s]\ntags = [\"a\"]\npages = 10\nevery = \"2s\"\n")
        .write();
    let mut svc = Service::start(BIN, &config);
    let first = svc.wait_for("pass finished");
    assert_eq!(first["new"], 500);
    assert_eq!(site.page_hits().len(), 10);

    for i in 0..3 {
        let mut q = FakeQuestion::generated("a", 7, i);
        q.id = 90_000_000 + i;
        site.add_newest("a", q);
    }
    let second = svc.wait_for("pass finished");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));

    assert_eq!(second["incremental"], true);
    assert_eq!(second["new"], 3);
    // Page 1 holds the 3 new questions; page 2 holds only known ones and
    // ends the pass: 2 pages instead of 10.
    assert_eq!(second["pages"], 2);
    assert_eq!(site.page_hits().len(), 12);
    let db = dir.path().join("store.db");
    assert_eq!(query_u64(&db, "SELECT COUNT(*) FROM questions"), 503);
    assert_eq!(query_u64(&db, "SELECT COUNT(*) FROM snapshots"), 500 + 100);
}

#[test]
fn kill_9_mid_pass_then_restart_refetches_no_done_page() {
    let site = FakeSite::builder()
        .tag("a", 2000)
        .latency(Duration::from_millis(50))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 2\nrate = 20.0\nburst = 1")
        .tag_set("s", &["a"], 40)
        .write();
    let db = dir.path().join("store.db");
    let mut svc = Service::start(BIN, &config);
    for _ in 0..8 {
        svc.wait_for("page done");
    }
    svc.signal("-KILL");
    svc.wait_exit();
    let done_before = done_pages(&db);
    assert!(done_before.len() >= 8, "{done_before:?}");
    assert!(done_before.len() < 40, "killed mid-pass");
    let hits_before = site.page_hits().len();

    let mut svc = Service::start(BIN, &config);
    let resumed = svc.wait_for("pass starting");
    assert_eq!(resumed["resumed"], true);
    assert_eq!(resumed["pages_already_done"], done_before.len() as u64);
    svc.wait_for("pass finished");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));

    let refetched: Vec<u32> = site.page_hits()[hits_before..]
        .iter()
        .filter_map(|h| h.page)
        .filter(|p| done_before.contains(p))
        .collect();
    assert!(
        refetched.is_empty(),
        "done pages fetched again: {refetched:?}"
    );
    assert_eq!(done_pages(&db).len(), 40);
    assert_eq!(query_u64(&db, "SELECT COUNT(*) FROM questions"), 2000);
    assert_eq!(
        query_u64(&db, "SELECT COUNT(*) FROM snapshots"),
        2000,
        "no duplicate snapshot"
    );
}

#[test]
fn sigterm_drains_in_flight_pages_and_exits_0() {
    let site = FakeSite::builder()
        .tag("a", 2000)
        .latency(Duration::from_millis(300))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 4\nrate = 10.0\nburst = 4")
        .tag_set("s", &["a"], 40)
        .write();
    let db = dir.path().join("store.db");
    let mut svc = Service::start(BIN, &config);
    // The periodic status line carries what an operator charts.
    let status = svc.wait_for("status");
    let last_minute = status["requests_last_minute"].as_u64().unwrap();
    assert!((1..=14).contains(&last_minute), "{status}");
    assert_eq!(status["quota_per_minute"], 600.0);
    assert!(status["in_flight"].as_u64().unwrap() <= 4);
    assert!(status["store_questions"].as_u64().is_some(), "{status}");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
    assert!(svc.saw("pass interrupted; the next start resumes it"));
    assert!(svc.saw("run stopped; store flushed"));
    // Every page the server answered was drained into the store.
    let served: HashSet<u32> = site.page_hits().iter().filter_map(|h| h.page).collect();
    assert_eq!(done_pages(&db), served);
    assert!(served.len() < 40);
}

#[test]
fn sighup_applies_a_good_config_and_rejects_a_bad_one() {
    let site = FakeSite::builder().tag("a", 100).tag("b", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let one = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .sets("[tag_sets.one]\ntags = [\"a\"]\npages = 2\nevery = \"1h\"\n");
    let config = one.write();
    let mut svc = Service::start(BIN, &config);
    let first = svc.wait_for("pass finished");
    assert_eq!(first["tag_set"], "one");

    std::fs::write(&config, "[fetch]\nrate = 99.0\n").unwrap();
    svc.signal("-HUP");
    let rejected = svc.wait_for("SIGHUP: config rejected; the running config stays");
    assert!(
        rejected["error"].as_str().unwrap().contains("fetch.rate"),
        "{rejected}"
    );

    one.sets("[tag_sets.two]\ntags = [\"b\"]\npages = 2\nevery = \"1h\"\n")
        .write();
    svc.signal("-HUP");
    svc.wait_for("config reloaded; applies from the next pass");
    let second = svc.wait_for("pass finished");
    assert_eq!(second["tag_set"], "two");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
    let tags: HashSet<String> = site
        .page_hits()
        .iter()
        .filter_map(|h| h.tag.clone())
        .collect();
    assert_eq!(tags, HashSet::from(["a".to_string(), "b".to_string()]));
}

#[test]
fn report_and_export_read_the_store() {
    let site = FakeSite::builder().tag("a", 120).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .tag_set("s", &["a"], 3)
        .write();
    let mut svc = Service::start(BIN, &config);
    svc.wait_for("pass finished");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));

    let bin = env!("CARGO_BIN_EXE_stackcrawl");
    let out = Command::new(bin)
        .args(["report", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let served = site.questions("a");
    assert_eq!(report["tags"][0]["tag"], "a");
    assert_eq!(report["tags"][0]["questions"], 120);
    assert_eq!(
        report["tags"][0]["views"],
        served.iter().map(|q| q.views).sum::<u64>()
    );

    let csv = dir.path().join("export.csv");
    let out = Command::new(bin)
        .args(["export", "--format", "csv", "--config"])
        .arg(&config)
        .arg("--output")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 121, "header and 120 rows");
    assert!(text
        .lines()
        .next()
        .unwrap()
        .starts_with("site,question_id,url,title"));
}

#[test]
fn a_spent_budget_keeps_the_pass_open_and_waits_for_the_reset() {
    let site = FakeSite::builder().tag("a", 500).start();
    let dir = tempfile::tempdir().unwrap();
    // robots.txt and three pages, then the day's budget is gone.
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 1\nrate = 30.0\nburst = 5\ndaily_budget = 4")
        .tag_set("s", &["a"], 10)
        .write();
    let db = dir.path().join("store.db");
    let mut svc = Service::start(BIN, &config);
    let waiting = svc.wait_for("request budget spent: waiting for it to reset");
    assert!(
        waiting["resets_at"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00+00:00"),
        "{waiting}"
    );
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
    assert!(!svc.saw("pass finished"));
    assert_eq!(done_pages(&db), HashSet::from([1, 2, 3]));
    assert_eq!(
        query_u64(&db, "SELECT COUNT(*) FROM passes WHERE finished_at IS NULL"),
        1,
        "the pass stays open for the next day"
    );
    assert_eq!(site.page_hits().len(), 3);
}

#[test]
fn a_second_signal_exits_at_once_and_the_store_stays_sound() {
    let site = FakeSite::builder()
        .tag("a", 2000)
        .latency(Duration::from_millis(500))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 4\nrate = 10.0\nburst = 4")
        .tag_set("s", &["a"], 40)
        .write();
    let db = dir.path().join("store.db");
    let mut svc = Service::start(BIN, &config);
    svc.wait_for("page done");
    svc.signal("-TERM");
    svc.wait_for("shutdown requested: draining");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(1));
    assert!(svc.saw("second signal: exiting at once"));
    assert!(
        !svc.saw("run stopped; store flushed"),
        "it did not wait for the drain"
    );

    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    // Every page marked done has all its questions and snapshots: each page
    // was written in one transaction.
    let pages = done_pages(&db).len() as u64;
    assert!(pages >= 1);
    assert_eq!(query_u64(&db, "SELECT COUNT(*) FROM questions"), pages * 50);
    assert_eq!(query_u64(&db, "SELECT COUNT(*) FROM snapshots"), pages * 50);
}

#[test]
fn crawl_can_keep_its_records_in_the_store_too() {
    let site = FakeSite::builder().tag("a", 120).start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crawl.db");
    let out = dir.path().join("q.csv");
    let crawl = || {
        command(env!("CARGO_BIN_EXE_stackcrawl"), dir.path())
            .args([
                "crawl",
                "--tag",
                "a",
                "--pages",
                "3",
                "--rate",
                "30",
                "--base-url",
                &site.base_url(),
            ])
            .arg("--output")
            .arg(&out)
            .arg("--store")
            .arg(&db)
            .output()
            .unwrap()
    };
    let first = crawl();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 121);
    assert_eq!(query_u64(&db, "SELECT COUNT(*) FROM questions"), 120);
    let second = crawl();
    assert_eq!(second.status.code(), Some(0));
    // A second crawl is a second pass: the same questions, a snapshot each.
    assert_eq!(query_u64(&db, "SELECT COUNT(*) FROM questions"), 120);
    assert_eq!(query_u64(&db, "SELECT COUNT(*) FROM snapshots"), 240);
    assert_eq!(
        query_u64(
            &db,
            "SELECT COUNT(*) FROM passes WHERE finished_at IS NOT NULL"
        ),
        2
    );
}

#[test]
fn an_api_tag_set_is_kept_current_incrementally_too() {
    let site = FakeSite::builder().tag("a", 250).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .api("")
        .sets(
            "[tag_sets.so]\nsource = \"api\"\ntags = [\"a\"]\nsort = \"creation\"\npagesize = 100\npages = 5\nevery = \"2s\"\n",
        )
        .write();
    let mut svc = Service::start(BIN, &config);
    let first = svc.wait_for("pass finished");
    // Pages 1-3; page 3 said has_more = false.
    assert_eq!(
        (first["pages"].as_u64(), first["new"].as_u64()),
        (Some(3), Some(250))
    );
    for i in 0..2 {
        let mut q = FakeQuestion::generated("a", 7, i);
        q.id = 91_000_000 + i;
        site.add_newest("a", q);
    }
    let second = svc.wait_for("pass finished");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
    assert_eq!(second["incremental"], true);
    assert_eq!(
        (second["pages"].as_u64(), second["new"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(site.page_hits().len(), 5, "3 pages, then 2");
    let db = dir.path().join("store.db");
    assert_eq!(query_u64(&db, "SELECT COUNT(*) FROM questions"), 252);
}

/// A question with an id of its own, for tests that add posts on top.
fn fresh(tag: &str, n: u64) -> FakeQuestion {
    let mut q = FakeQuestion::generated(tag, 9, n % 1000);
    q.id = 95_000_000 + n;
    q
}

#[test]
fn every_later_pass_of_one_process_finds_all_new_questions() {
    // Regression: the tag's end found by one incremental pass (page 1 of an
    // unchanged site) was kept for the life of the process, so a later pass
    // with 80 new questions fetched page 1 only: 50 stored, 30 missed.
    let site = FakeSite::builder().tag("a", 200).tag("b", 200).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .sets("[tag_sets.s]\ntags = [\"a\", \"b\"]\npages = 6\nevery = \"1s\"\n")
        .write();
    let db = dir.path().join("store.db");
    let mut svc = Service::start(BIN, &config);
    let first = svc.wait_for("pass finished");
    assert_eq!(first["new"], 400);
    let hits_after_first = site.page_hits().len();

    // An unchanged site costs exactly one request per tag.
    let unchanged = svc.wait_for("pass finished");
    assert_eq!(unchanged["pages"], 2, "{unchanged}");
    assert_eq!(site.page_hits().len(), hits_after_first + 2);

    for n in 0..80 {
        site.add_newest("a", fresh("a", n));
    }
    let grown = svc.wait_for("pass finished");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
    assert_eq!(grown["new"], 80, "{grown}");
    let stored = query_u64(
        &db,
        "SELECT COUNT(*) FROM questions WHERE question_id >= 95000000",
    );
    assert_eq!(stored, 80, "every new question stored by the same process");
    // Pages 1 and 2 held new questions, page 3 only known ones: a's pass
    // ended there, and b's at its unchanged page 1.
    assert_eq!(grown["pages"], 4, "{grown}");
}

#[test]
fn a_second_run_on_one_store_exits_2_naming_the_process_that_holds_it() {
    let site = FakeSite::builder()
        .tag("a", 500)
        .latency(Duration::from_millis(20))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .sets("[tag_sets.s]\ntags = [\"a\"]\npages = 10\nevery = \"1h\"\n")
        .write();
    let mut first = Service::start(BIN, &config);
    first.wait_for("pass finished");
    let hits = site.hits().len();

    let mut second = Service::start(BIN, &config);
    assert_eq!(second.wait_exit(), Some(2));
    let refused = second
        .seen
        .iter()
        .find(|v| v["message"] == "store in use")
        .unwrap_or_else(|| panic!("no `store in use` line: {:#?}", second.seen))
        .clone();
    let why = refused["error"].as_str().unwrap();
    assert!(
        why.contains(&format!("pid {}", first.child.id())) && why.contains("store.db"),
        "{why}"
    );
    assert_eq!(site.hits().len(), hits, "the second writer sent nothing");

    // Readers still read while the writer runs.
    let report = Command::new(BIN)
        .args(["report", "--store"])
        .arg(dir.path().join("store.db"))
        .output()
        .unwrap();
    assert!(report.status.success(), "{report:?}");
    first.signal("-TERM");
    assert_eq!(first.wait_exit(), Some(0));
}

#[test]
fn status_lines_come_between_passes_and_name_the_next_one() {
    // Regression: the status timer lived inside a pass, so a service
    // waiting for its next pass said nothing at all.
    let site = FakeSite::builder().tag("a", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .sets("[tag_sets.s]\ntags = [\"a\"]\npages = 2\nevery = \"1h\"\n")
        .write();
    let mut svc = Service::start(BIN, &config);
    svc.wait_for("pass finished");
    let idle = svc.wait_until("status", |v| v["next_pass"].is_string());
    assert_eq!(idle["next_pass"], "s");
    let wait = idle["next_pass_in_secs"].as_f64().unwrap();
    assert!(wait > 3000.0 && wait <= 3600.0, "{idle}");
    // And they keep coming, at their interval.
    svc.wait_until("status", |v| v["next_pass"].is_string());
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
}

#[test]
fn the_final_totals_cover_the_whole_run_across_reloads() {
    // Regression: after a SIGHUP the final line counted only what the
    // crawler built by the reload had done.
    let site = FakeSite::builder().tag("a", 100).tag("b", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let one = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .sets("[tag_sets.one]\ntags = [\"a\"]\npages = 2\nevery = \"1h\"\n");
    let config = one.write();
    let mut svc = Service::start(BIN, &config);
    let first = svc.wait_for("pass finished");
    one.sets("[tag_sets.two]\ntags = [\"b\"]\npages = 2\nevery = \"1h\"\n")
        .write();
    svc.signal("-HUP");
    svc.wait_for("config reloaded; applies from the next pass");
    let second = svc.wait_for("pass finished");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
    let stopped = svc
        .seen
        .iter()
        .find(|v| v["message"] == "run stopped; store flushed")
        .expect("final line")
        .clone();
    assert_eq!(stopped["passes"], 2, "{stopped}");
    let pages = first["pages"].as_u64().unwrap() + second["pages"].as_u64().unwrap();
    assert_eq!(stopped["pages_done"], pages, "{stopped}");
    assert_eq!(stopped["questions"], 200, "{stopped}");
    assert_eq!(
        stopped["requests"],
        site.hits().len() as u64,
        "robots.txt at start and at the reload counts too: {stopped}"
    );
}

#[test]
fn the_drain_line_tells_in_flight_pages_from_pending_ones() {
    let site = FakeSite::builder()
        .tag("a", 3000)
        .latency(Duration::from_millis(200))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 4\nrate = 30.0\nburst = 4")
        .tag_set("s", &["a"], 60)
        .write();
    let mut svc = Service::start(BIN, &config);
    svc.wait_for("page done");
    svc.signal("-TERM");
    let drain = svc.wait_for("shutdown requested: draining");
    assert_eq!(svc.wait_exit(), Some(0));
    let in_flight = drain["in_flight"].as_u64().unwrap();
    let pending = drain["pending"].as_u64().unwrap();
    assert!(in_flight <= 4, "at most one page per fetcher: {drain}");
    assert!(pending >= 40, "{drain}");
}

#[test]
fn after_kill_9_the_budget_has_counted_every_request_the_server_saw() {
    // Regression: the budget file was saved at most once a second, so a
    // kill -9 forgot up to a second of requests.
    let site = FakeSite::builder()
        .tag("a", 3000)
        .latency(Duration::from_millis(20))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 4\nrate = 30.0\nburst = 10")
        .tag_set("s", &["a"], 60)
        .write();
    let mut svc = Service::start(BIN, &config);
    for _ in 0..15 {
        svc.wait_for("page done");
    }
    svc.signal("-KILL");
    svc.wait_exit();
    let served = site.hits().len() as u64;
    let counted = budget_used(&dir.path().join("budget.sqlite"));
    // A request is counted just before it is sent: at most the ones being
    // sent at the kill can be counted and not yet have arrived.
    assert!(
        counted >= served && counted <= served + 4,
        "counted {counted}, the server saw {served}"
    );
}

#[test]
fn a_layout_change_is_an_error_on_its_first_page_and_the_status_line_counts_rejections() {
    // Page 2 comes back as a real 2020 listing whose first three summaries
    // carry a class the parser does not know, and whose last has a vote
    // count it cannot read.
    let mut html = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/so-html/tagged-command-newest-2020.html"
    ))
    .unwrap()
    .replacen("class=\"question-summary\"", "class=\"question-card\"", 3);
    let last_votes = html.rfind("vote-count-post \"><strong>").unwrap();
    html.insert(last_votes + "vote-count-post \"><strong>".len(), 'x');
    let site = FakeSite::builder()
        .tag("a", 100)
        .fault("a", 2, Fault::Body(html))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .sets("[tag_sets.s]\ntags = [\"a\"]\npages = 2\nevery = \"1h\"\n")
        .write();
    let mut svc = Service::start(BIN, &config);
    let error = svc.wait_for(
        "listing page yielded fewer question summaries than it holds: the site's layout may have changed",
    );
    assert_eq!(error["level"], "ERROR", "{error}");
    assert!(error["url"].as_str().unwrap().contains("page=2"), "{error}");
    assert!(
        error["drift"]
            .as_str()
            .unwrap()
            .contains("read 47 question summaries of the 50 the list refers to; the layout may have changed (first unrecognised element: div.question-card)"),
        "{error}"
    );
    let status = svc.wait_until("status", |v| v["layout_drift_pages"] == 1);
    assert_eq!(status["rejected"], 1, "{status}");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
}

#[test]
fn a_pages_tag_views_total_is_its_pass_s_not_the_whole_run_s() {
    let site = FakeSite::builder().tag("a", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 1\nrate = 30.0\nburst = 5")
        .sets("[tag_sets.s]\ntags = [\"a\"]\npages = 2\nevery = \"1s\"\n")
        .write();
    let mut svc = Service::start(BIN, &config);
    svc.wait_for("pass finished");
    svc.wait_for("pass finished");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
    let views: u64 = site.questions("a").iter().map(|q| q.views).sum();
    let totals: Vec<u64> = svc
        .seen
        .iter()
        .filter(|l| l["message"] == "page done")
        .map(|l| l["tag_views_total"].as_u64().unwrap())
        .collect();
    assert!(totals.len() >= 3, "{totals:?}");
    assert!(
        totals.iter().all(|&t| t <= views),
        "a tag's views in one pass are at most {views}: {totals:?}"
    );
}

/// The notify protocol as systemd runs it (`Type=notify`, `WatchdogSec`):
/// READY=1 once the store is open and the reload handler is in place (a
/// reload sent the moment READY arrives is heard), WATCHDOG=1 while the
/// engine turns, STATUS= after a pass, STOPPING=1 on SIGTERM.
#[test]
fn run_speaks_systemds_notify_protocol() {
    let site = FakeSite::builder().tag("a", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .sets("[tag_sets.s]\ntags = [\"a\"]\npages = 2\nevery = \"1h\"\n")
        .write();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let next = || {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a notification within 30 s");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let mut cmd = command(BIN, dir.path());
    cmd.args(["--log-format", "json", "run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000");
    let mut svc = Service::from_command(cmd);
    let first = next();
    assert!(first.starts_with("READY=1"), "{first}");
    svc.signal("-HUP");
    svc.wait_for("SIGHUP: new config accepted");
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|s: &String| s.starts_with("STATUS=1 passes done"))
    {
        seen.push(next());
    }
    assert!(seen.iter().any(|s| s == "WATCHDOG=1"), "{seen:?}");
    svc.signal("-TERM");
    while next() != "STOPPING=1" {}
    assert_eq!(svc.wait_exit(), Some(0));
}

/// Clears the immutable attribute it set, however the test ends, so the
/// temporary directory can be removed.
struct Immutable(Vec<std::path::PathBuf>);

impl Immutable {
    fn set(paths: &[&Path]) -> Immutable {
        for p in paths {
            let ok = Command::new("chattr").arg("+i").arg(p).status().unwrap();
            assert!(ok.success(), "chattr +i {}", p.display());
        }
        Immutable(paths.iter().map(|p| p.to_path_buf()).collect())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(p).status();
        }
    }
}

/// `report` and `export` only read: a store nobody may write, in a folder
/// nobody may write (immutable, so even root cannot: the tests run as
/// root), reads as well, and nothing is created beside it.
#[test]
fn report_and_export_read_a_store_they_cannot_write() {
    let site = FakeSite::builder().tag("a", 60).start();
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let db = ro.join("store.db");
    let config = TestConfig::new(&site, dir.path())
        .tag_set("s", &["a"], 2)
        .write();
    let crawl = command(BIN, dir.path())
        .args(["crawl", "--store"])
        .arg(&db)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        crawl.status.success(),
        "{}",
        String::from_utf8_lossy(&crawl.stderr)
    );
    let before: Vec<_> = std::fs::read_dir(&ro)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // A crawl that ended closes its store: nothing of SQLite's is left.
    assert_eq!(before.len(), 2, "the store and its lock file: {before:?}");
    let _frozen = Immutable::set(&[&db, &ro]);
    let report = command(BIN, dir.path())
        .args(["report", "--json", "--store"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["tags"][0]["questions"], 60);
    let export = command(BIN, dir.path())
        .args(["export", "--store"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count(), 60);
    let after: Vec<_> = std::fs::read_dir(&ro)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "nothing created beside the store");
}

/// What `stackcrawl export` writes of the store, for comparing with the
/// file `run` keeps.
fn exported(dir: &Path, format: &str) -> Vec<u8> {
    let out = command(BIN, dir)
        .args(["export", "--format", format, "--store"])
        .arg(dir.join("store.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    out.stdout
}

#[test]
fn run_rewrites_the_configured_output_with_the_stores_records_after_each_pass() {
    let site = FakeSite::builder().tag("a", 60).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .output("latest.csv")
        .fetch("fetchers = 1\nrate = 30.0\nburst = 5")
        .sets("[tag_sets.s]\ntags = [\"a\"]\npages = 3\nevery = \"1s\"\n")
        .write();
    let output = dir.path().join("latest.csv");
    let mut svc = Service::start(BIN, &config);
    let first = svc.wait_for("output rewritten with the store's latest records");
    assert_eq!(first["records"], 60, "{first}");
    assert_eq!(std::fs::read(&output).unwrap(), exported(dir.path(), "csv"));

    let mut q = FakeQuestion::generated("a", 7, 0);
    q.id = 90_000_000;
    site.add_newest("a", q);
    let second = svc.wait_for("output rewritten with the store's latest records");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
    // An incremental pass read one page, but the file holds every question.
    assert_eq!(second["records"], 61, "{second}");
    let written = std::fs::read(&output).unwrap();
    assert_eq!(written, exported(dir.path(), "csv"));
    assert!(String::from_utf8_lossy(&written).contains("90000000"));
    // Only the renamed file is left: no temporary beside it.
    assert!(!dir.path().join(".latest.csv.partial").exists());
}

/// The output `run` will rewrite is checked with the files it writes
/// before any request, on its own (the failures file is elsewhere here).
#[test]
fn run_refuses_an_output_it_could_not_write_before_any_request() {
    let site = FakeSite::builder().tag("a", 50).start();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("q.jsonl");
    let config = TestConfig::service(&site, dir.path())
        .output(&missing)
        .tag_set("s", &["a"], 1)
        .write();
    let text = std::fs::read_to_string(&config).unwrap();
    let failures = dir.path().join("failed.jsonl");
    let text = text.replacen(
        "[output]\n",
        &format!("[output]\nfailures = \"{}\"\n", failures.display()),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let mut svc = Service::start(BIN, &config);
    assert_eq!(svc.wait_exit(), Some(2), "{:#?}", svc.seen);
    let said = format!("{:?}", svc.seen);
    assert!(
        said.contains("output") && said.contains("no-such-dir"),
        "{said}"
    );
    assert!(site.page_hits().is_empty(), "{said}");
}
