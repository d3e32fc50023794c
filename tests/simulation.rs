//! The evolving-site simulation (see `fakesite/src/sim/mod.rs`): a small seed
//! sweep, bounded to well under a minute. The long sweep is
//! `cargo bench --bench simulation`.

use stackcrawl_fakesite::sim::Sim;

const BIN: &str = env!("CARGO_BIN_EXE_stackcrawl");

/// Seeds run side by side, each with its own site, store and process.
const SEEDS: [u64; 3] = [1, 2, 3];
const PASSES: u64 = 8;

#[test]
fn a_run_stays_correct_over_many_passes_of_an_evolving_site() {
    let runs: Vec<_> = SEEDS
        .iter()
        .map(|&seed| std::thread::spawn(move || (seed, Sim::run(BIN, seed, PASSES))))
        .collect();
    for run in runs {
        let (seed, checked) = run.join().expect("a seed failed: its panic names it");
        assert!(checked.passes >= PASSES, "seed {seed}: {checked:?}");
        assert!(
            checked.incremental_passes > 0,
            "seed {seed}: no incremental pass ran: {checked:?}"
        );
        eprintln!("seed {seed}: {checked:?}");
    }
}
