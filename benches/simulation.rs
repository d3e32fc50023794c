//! The long sweep of the evolving-site simulation (`fakesite/src/sim/mod.rs`):
//! several seeds, hundreds of passes in all, each seed a `stackcrawl run`
//! process against its own fake site. Prints what each seed checked; a
//! failure names its seed.
//!
//! `cargo bench --bench simulation [-- SEEDS PASSES [FIRST]]` (default: 6
//! seeds of 40 passes from seed 1, two at a time); `-- 1 40 4` replays seed 4.

use stackcrawl_fakesite::sim::{sweep, Sim};

const BIN: &str = env!("CARGO_BIN_EXE_stackcrawl");

fn main() {
    let started = std::time::Instant::now();
    let mut total = stackcrawl_fakesite::sim::Checked::default();
    let (seeds, _) = sweep(
        "simulation",
        (6, 40),
        |seed, passes| Sim::run(BIN, seed, passes),
        |seed, c| {
            println!(
                "seed {seed}: passes={} incremental={} questions_checked={} snapshots={} pages_served={} faults={} \
                 reloads_good={} reloads_bad={} sigterms={} kills={} restarts={} budget_locks={} store_locks={} budget_checks={} requests={} backoffs_unknowable={}",
                c.passes, c.incremental_passes, c.questions_checked, c.snapshots_checked, c.pages_served,
                c.faults, c.reloads_good, c.reloads_bad, c.sigterms, c.kills, c.restarts, c.budget_locks, c.store_locks,
                c.budget_checks, c.requests,
                c.backoffs_unknowable
            );
            total.passes += c.passes;
            total.kills += c.kills;
            total.sigterms += c.sigterms;
            total.reloads_good += c.reloads_good;
            total.reloads_bad += c.reloads_bad;
            total.faults += c.faults;
            total.questions_checked += c.questions_checked;
            total.requests += c.requests;
            total.backoffs_unknowable += c.backoffs_unknowable;
            total.budget_locks += c.budget_locks;
            total.store_locks += c.store_locks;
        },
    );
    println!(
        "simulation sweep: {seeds} seeds, {} passes checked, {} questions checked, {} faults, {} kill -9, {} SIGTERM, {} good + {} bad SIGHUP, {} budget-file and {} store locks, {} requests, \
         {} requests inside a backoff that a kill hid from every process, all correct, in {:.0} s",
        total.passes,
        total.questions_checked,
        total.faults,
        total.kills,
        total.sigterms,
        total.reloads_good,
        total.reloads_bad,
        total.budget_locks,
        total.store_locks,
        total.requests,
        total.backoffs_unknowable,
        started.elapsed().as_secs_f64()
    );
}
