//! The fleet simulation (see `fakesite/src/sim/fleet.rs`): a few seeds of a
//! fleet of `stackcrawl run` processes on one PostgreSQL database, with
//! kills, stops, database and network faults, bounded to about a minute
//! (three seeds of 3 processes, 4 passes each: 30-50 s on this machine).
//! The long sweep is `cargo bench --bench fleet_sim`.

use stackcrawl_fakesite::sim::fleet::FleetSim;

const BIN: &str = env!("CARGO_BIN_EXE_stackcrawl");

/// Seeds run side by side, each with its own site, database and fleet.
const SEEDS: [u64; 3] = [1, 2, 3];
const PROCESSES: usize = 3;
const PASSES: u64 = 4;

#[test]
fn a_fleet_stays_correct_over_many_passes_under_faults() {
    let runs: Vec<_> = SEEDS
        .iter()
        .map(|&seed| {
            std::thread::spawn(move || (seed, FleetSim::run(BIN, seed, PROCESSES, PASSES)))
        })
        .collect();
    let mut faults = 0;
    for run in runs {
        let (seed, checked) = run.join().expect("a seed failed: its panic names it");
        assert!(checked.passes >= PASSES, "seed {seed}: {checked:?}");
        assert!(
            checked.incremental_passes > 0,
            "seed {seed}: no incremental pass ran: {checked:?}"
        );
        faults += checked.faults.values().sum::<u64>();
        eprintln!("seed {seed}: {checked:?}");
    }
    assert!(faults >= SEEDS.len() as u64, "too few faults ran: {faults}");
}
