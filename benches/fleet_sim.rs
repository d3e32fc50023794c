//! The long sweep of the fleet simulation (`fakesite/src/sim/fleet.rs`):
//! several seeds, each a fleet of 3 to 5 `stackcrawl run` processes on a
//! PostgreSQL database of its own, under kills, stops, database and network
//! faults. Prints what each seed checked and the sweep's totals; a failure
//! names its seed.
//!
//! `cargo bench --bench fleet_sim [-- SEEDS PASSES [FIRST]]` (default: 6
//! seeds of 20 passes from seed 1, two at a time); `-- 1 20 4` replays
//! seed 4.

use std::collections::BTreeMap;

use stackcrawl_fakesite::sim::fleet::{FleetChecked, FleetSim};
use stackcrawl_fakesite::sim::sweep;

const BIN: &str = env!("CARGO_BIN_EXE_stackcrawl");

/// 3, 4 or 5 processes, by seed.
fn processes(seed: u64) -> usize {
    3 + (seed % 3) as usize
}

fn main() {
    let started = std::time::Instant::now();
    let mut total = FleetChecked::default();
    let (seeds, _) = sweep(
        "fleet_sim",
        (6, 20),
        |seed, passes| FleetSim::run(BIN, seed, processes(seed), passes),
        |seed, c| {
            println!(
                "seed {seed}: processes={} passes={} incremental={} questions_checked={} snapshots={} pages_served={} \
                 site_faults={} faults={:?} pages_twice={:?} taken_over={} fenced={} given_up={} requests={} api_requests={} key_budget_over={}",
                c.processes, c.passes, c.incremental_passes, c.questions_checked, c.snapshots_checked, c.pages_served,
                c.site_faults, c.faults, c.twice, c.taken_over, c.fenced, c.given_up, c.requests, c.api_requests,
                c.key_budget_over
            );
            add(&mut total, &c);
        },
    );
    println!(
        "fleet simulation sweep: {seeds} seeds, {} passes checked, {} questions checked, {} snapshots, {} pages served, \
         {} scripted site faults, faults {:?}, pages served twice by the fault that explains them {:?}, \
         {} pages taken over, {} writes fenced, {} pages given up and handed back, {} requests ({} API; the key's budget over by {}), all correct, in {:.0} s",
        total.passes,
        total.questions_checked,
        total.snapshots_checked,
        total.pages_served,
        total.site_faults,
        total.faults,
        total.twice,
        total.taken_over,
        total.fenced,
        total.given_up,
        total.requests,
        total.api_requests,
        total.key_budget_over,
        started.elapsed().as_secs_f64()
    );
}

fn add(total: &mut FleetChecked, c: &FleetChecked) {
    let sum = |a: &mut BTreeMap<_, u64>, b: &BTreeMap<_, u64>| {
        for (k, v) in b {
            *a.entry(*k).or_default() += v;
        }
    };
    total.passes += c.passes;
    total.incremental_passes += c.incremental_passes;
    total.questions_checked += c.questions_checked;
    total.snapshots_checked += c.snapshots_checked;
    total.pages_served += c.pages_served;
    total.site_faults += c.site_faults;
    sum(&mut total.faults, &c.faults);
    sum(&mut total.twice, &c.twice);
    total.taken_over += c.taken_over;
    total.fenced += c.fenced;
    total.given_up += c.given_up;
    total.requests += c.requests;
    total.api_requests += c.api_requests;
    total.key_budget_over += c.key_budget_over;
}
