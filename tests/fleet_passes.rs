//! Races between processes of a fleet over one tag set's pass, found by
//! the fleet simulation (`tests/fleet_sim.rs`) and pinned here in a fixed
//! order: the PostgreSQL store on a database of the test's own, and a
//! trigger that holds one process at the racy moment until the test has
//! made the other move.

use std::time::{Duration, Instant};

use chrono::Utc;
use stackcrawl::store::{PassStore, PgStore};
use stackcrawl_fakesite::pg::TestDb;

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
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
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
