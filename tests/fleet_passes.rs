//! What the processes of a fleet do about one tag set's pass, where the
//! fleet simulation (`tests/fleet_sim.rs`) found them wrong, pinned here in
//! a fixed order: a race between beginning a pass and another process
//! finishing it (held at the racy moment by a trigger until the test has
//! made the other move), and a set's interval across the fleet. Each test
//! has a PostgreSQL database of its own.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use stackcrawl::store::{PassStore, PgStore};
use stackcrawl_fakesite::pg::TestDb;
use stackcrawl_fakesite::service::Service;
use stackcrawl_fakesite::{config::TestConfig, FakeSite};

const BIN: &str = env!("CARGO_BIN_EXE_stackcrawl");

/// The advisory lock the trigger waits on while the test holds it.
const GATE: i64 = 2_020_003;

/// A process found the tag set due while another was writing the last page
/// of its open pass: its INSERT ran into that pass, which finished before
/// its SELECT read it (seen as `run failed: store: query returned an
/// unexpected number of rows` in seed 1 of the fleet simulation). It must
/// open the next pass instead of failing.
#[test]
fn a_process_beginning_a_pass_another_finishes_meanwhile_opens_the_next() {
    let db = TestDb::create();
    let mut finisher = PgStore::open(&db.url).expect("open the store");
    let running = finisher.begin_pass("s", Utc::now()).expect("first pass");
    assert!(!running.resumed);
    // Every INSERT into passes waits, once it is done, for the gate.
    db.execute(&format!(
        "CREATE FUNCTION wait_at_gate() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_advisory_lock({GATE}); PERFORM pg_advisory_unlock({GATE}); RETURN NULL; END $$;
         CREATE TRIGGER wait_at_gate AFTER INSERT ON passes
         FOR EACH STATEMENT EXECUTE FUNCTION wait_at_gate();"
    ));
    let mut gate = postgres::Client::connect(&db.url, postgres::NoTls).expect("connect");
    gate.execute("SELECT pg_advisory_lock($1)", &[&GATE])
        .expect("hold the gate");

    let url = db.url.clone();
    let joiner = std::thread::spawn(move || {
        let mut store = PgStore::open(&url).expect("open the store");
        store.begin_pass("s", Utc::now())
    });
    // The joiner's INSERT met the running pass and waits at the gate.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = gate
            .query_one(
                // This test's database only: other tests on the server
                // (a migration's advisory lock) wait on locks of their own.
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .expect("pg_locks")
            .get(0);
        if waiting == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the joiner never reached the gate"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    finisher
        .finish_pass(running.pass_id, Utc::now())
        .expect("the other process finishes the pass");
    gate.execute("SELECT pg_advisory_unlock($1)", &[&GATE])
        .expect("open the gate");

    let next = joiner
        .join()
        .expect("the joiner's thread")
        .expect("beginning a pass while another finished it");
    assert!(!next.resumed, "{next:?}");
    assert_ne!(next.pass_id, running.pass_id);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM passes WHERE finished_at IS NULL"),
        1,
        "the next pass is open"
    );
}

/// A process that was busy (here: idle until its own timer) while the rest
/// of the fleet ran a set's pass does not run the set again as soon as its
/// own timer says so: the interval counts from the fleet's latest pass
/// (seen in seed 5 of the fleet simulation as a second pass right after
/// the fleet's, by a process that had been running the other set).
#[test]
fn a_set_the_fleet_passed_meanwhile_waits_its_interval_from_that_pass() {
    const EVERY_SECS: i64 = 10;
    let db = TestDb::create();
    let site = FakeSite::builder().tag("a", 15).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::service(&site, dir.path())
        .store_at(&db.url)
        .fleet("name = \"w0\"")
        .sets(format!(
            "[tag_sets.s]\ntags = [\"a\"]\npages = 1\npagesize = 15\nevery = \"{EVERY_SECS}s\"\n"
        ))
        .write();
    let mut svc = Service::start(BIN, &config);
    let first = svc.wait_for("pass finished");
    assert_eq!(first["pass_id"], 1, "{first}");
    // Another process of the fleet runs the set's next pass meanwhile.
    let mut other = PgStore::open(&db.url).expect("open the store");
    let began = Utc::now();
    let second = other.begin_pass("s", began).expect("the fleet's pass");
    assert_eq!(second.pass_id, 2);
    other
        .finish_pass(second.pass_id, Utc::now())
        .expect("finished");

    let next = svc.wait_for("pass starting");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
    assert_eq!(next["pass_id"], 3, "{next}");
    let at: DateTime<Utc> = next["timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("timestamp");
    assert!(
        at >= began + chrono::Duration::seconds(EVERY_SECS),
        "pass 3 began at {at}, before the interval after the fleet's pass 2 (begun {began}) was up"
    );
}
