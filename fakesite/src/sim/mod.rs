//! The evolving-site simulation: one `stackcrawl run` process (the real
//! binary) keeps a store current while the fake site changes under it.
//!
//! Between two passes of a tag set, new questions arrive on top of its tags
//! (pushing others to later pages), votes, answers and views change, and
//! questions are closed or deleted; one tag never gets new posts and may run
//! dry.
//! Faults (5xx, dropped connections, truncated bodies, 429 with Retry-After,
//! API `backoff` and errors) and signals (SIGHUP with a good and a bad
//! config, SIGTERM, kill -9, each followed by a restart) and locks (another
//! connection holding the budget file's or the store's write lock for a few
//! seconds, as a backup would; longer than a reader's busy timeout) come at
//! seeded random moments.
//!
//! The truth is known at every instant: the test holds a model of what the
//! store must contain and, from it, works out which pages each pass must
//! read (an incremental pass stops at a tag's first page with nothing new or
//! changed). After every pass it checks, against the store and the server's
//! own log:
//! - the pass's snapshots are exactly the questions its pages held, with the
//!   figures the site served, and the store's latest state agrees;
//! - no page was served twice in the pass, except pages in flight at a kill;
//! - the daily budget counts every request that reached the server (exactly
//!   after a clean exit, and no more than the fetchers' in-flight requests
//!   over after a kill -9);
//! - no API request arrived inside a `backoff`.
//!
//! Every failure names the seed; `Sim::run(seed, passes)` replays it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{budget_used, TestConfig};
use crate::service::Service;
use crate::FakeSite;

pub mod fleet;
mod world;

use world::{set_named, Figures};

const FETCHERS: u64 = 3;

/// What a run checked, for the long sweep's report.
#[derive(Debug, Default, Clone)]
pub struct Checked {
    pub passes: u64,
    pub incremental_passes: u64,
    pub questions_checked: u64,
    pub snapshots_checked: u64,
    pub pages_served: u64,
    pub faults: u64,
    pub reloads_good: u64,
    pub reloads_bad: u64,
    pub sigterms: u64,
    pub kills: u64,
    pub restarts: u64,
    /// Times another connection held the budget file locked mid-pass.
    pub budget_locks: u64,
    /// Times another connection held the store locked mid-pass.
    pub store_locks: u64,
    pub budget_checks: u64,
    pub requests: u64,
    /// API requests inside a backoff that a kill kept every process from
    /// knowing of (the backoff response was in flight at the kill).
    pub backoffs_unknowable: u64,
}

/// A signal or a lock waiting for its moment: the n-th "page done" line
/// from now.
enum Pending {
    Kill(u32),
    Term(u32),
    /// Hold the budget file's write lock for this long.
    LockBudget(u32, Duration),
    /// Hold the store's write lock for this long.
    LockStore(u32, Duration),
}

pub struct Sim {
    seed: u64,
    rng: fastrand::Rng,
    site: FakeSite,
    dir: tempfile::TempDir,
    config: PathBuf,
    rate: u32,
    svc: Service,
    /// What the store must hold: each question's latest figures.
    model: HashMap<u64, Figures>,
    next_id: u64,
    /// Per set, how many kills cut its current pass (pages in flight then
    /// may be served twice).
    killed_in: HashMap<&'static str, usize>,
    /// The "pass starting" line of the pass that is running.
    running: Option<serde_json::Value>,
    pending: Option<Pending>,
    awaiting_reject: bool,
    /// Lines of the current process the driver has handled.
    consumed: usize,
    /// When each kill -9 was sent, each restart began, each good SIGHUP
    /// was sent, and the run began: for a failure's account of events.
    kills: Vec<Instant>,
    restarts: Vec<Instant>,
    reloads: Vec<Instant>,
    started: Instant,
    /// Requests counted and never sent because a kill came between the two:
    /// the budget errs on the safe side, by at most the fetchers at a kill.
    overcount: u64,
    pub checked: Checked,
}

/// A sweep as a bench runs it, from its command line `SEEDS PASSES
/// [FIRST]` (`seeds` and `passes` by default, from seed 1): `run(seed,
/// passes)` for each seed, two at a time, each result handed to `each` in
/// seed order. A failed seed (its panic names what failed) is named with
/// the command that replays it, the sweep goes on, and it ends with exit 1.
/// Returns the seeds and passes it ran.
pub fn sweep<T: Send + 'static>(
    bench: &str,
    (seeds, passes): (u64, u64),
    run: fn(u64, u64) -> T,
    mut each: impl FnMut(u64, T),
) -> (u64, u64) {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seeds = args.first().copied().unwrap_or(seeds);
    let passes = args.get(1).copied().unwrap_or(passes);
    let first = args.get(2).copied().unwrap_or(1);
    let mut failed = Vec::new();
    for pair in (first..first + seeds).collect::<Vec<_>>().chunks(2) {
        let runs: Vec<_> = pair
            .iter()
            .map(|&seed| std::thread::spawn(move || run(seed, passes)))
            .collect();
        for (run, &seed) in runs.into_iter().zip(pair) {
            match run.join() {
                Ok(result) => each(seed, result),
                Err(_) => {
                    println!(
                        "{bench}: seed {seed} FAILED (its panic is on standard error); replay: cargo bench --bench {bench} -- 1 {passes} {seed}"
                    );
                    failed.push(seed);
                }
            }
        }
    }
    if !failed.is_empty() {
        println!("{bench}: seeds {failed:?} of {seeds} FAILED");
        std::process::exit(1);
    }
    (seeds, passes)
}

impl Sim {
    /// Runs one seed until `passes` passes have been checked.
    pub fn run(bin: &str, seed: u64, passes: u64) -> Checked {
        let mut sim = Sim::start(bin, seed);
        sim.drive(bin, passes);
        sim.checked
    }

    fn start(bin: &str, seed: u64) -> Sim {
        let site = world::site(Duration::from_millis(5), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let config = test_config(&site, dir.path(), 30).write();
        let svc = Service::start(bin, &config);
        Sim {
            seed,
            rng: fastrand::Rng::with_seed(seed),
            site,
            config,
            rate: 30,
            svc,
            dir,
            model: HashMap::new(),
            next_id: 0,
            killed_in: HashMap::new(),
            running: None,
            pending: None,
            awaiting_reject: false,
            consumed: 0,
            kills: Vec::new(),
            restarts: Vec::new(),
            reloads: Vec::new(),
            started: Instant::now(),
            overcount: 0,
            checked: Checked::default(),
        }
    }

    fn write_config(&self) {
        test_config(&self.site, self.dir.path(), self.rate).write();
    }

    fn store_path(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    fn budget_path(&self) -> PathBuf {
        self.dir.path().join("budget.sqlite")
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "simulation seed {} failed: {what}\n(replay: Sim::run(bin, {}, passes))",
            self.seed, self.seed
        )
    }

    fn drive(&mut self, bin: &str, passes: u64) {
        while self.checked.passes < passes {
            let Some(line) = self.svc.line(Duration::from_secs(60)) else {
                self.fail(format!(
                    "no log line for 60 s; last: {:?}",
                    self.svc.seen.last()
                ));
            };
            self.consumed = self.svc.seen.len();
            let message = line["message"].as_str().unwrap_or_default().to_string();
            match message.as_str() {
                "pass starting" | "pass finished" => self.on_pass_line(&line, true),
                "page done" => match &mut self.pending {
                    Some(
                        Pending::Kill(n)
                        | Pending::Term(n)
                        | Pending::LockBudget(n, _)
                        | Pending::LockStore(n, _),
                    ) if *n > 1 => *n -= 1,
                    Some(Pending::LockBudget(_, hold)) => {
                        let hold = *hold;
                        self.pending = None;
                        self.hold_lock(self.budget_path(), hold);
                        self.checked.budget_locks += 1;
                    }
                    Some(Pending::LockStore(_, hold)) => {
                        let hold = *hold;
                        self.pending = None;
                        self.hold_lock(self.store_path(), hold);
                        self.checked.store_locks += 1;
                    }
                    Some(Pending::Kill(_)) => {
                        self.pending = None;
                        self.kill_and_restart(bin);
                    }
                    Some(Pending::Term(_)) => {
                        self.pending = None;
                        self.term_and_restart(bin);
                    }
                    None => {}
                },
                "SIGHUP: config rejected; the running config stays" if self.awaiting_reject => {
                    self.awaiting_reject = false;
                    self.write_config();
                }
                "run failed" | "page failed" => {
                    self.fail(format!("unexpected `{message}`: {line}"));
                }
                _ => {}
            }
        }
        self.pending = None;
        self.svc.signal("-TERM");
        let code = self.svc.wait_exit();
        if code != Some(0) {
            self.fail(format!("final SIGTERM exited {code:?}"));
        }
        self.check_budget(true);
        // A process killed after its request reached the server and before
        // it read the backoff in the answer cannot know of the backoff, and
        // neither can the one started after it: no crawler can avoid that.
        // Any other request inside a backoff is a violation.
        let unknowable = |asked: Instant| {
            self.kills
                .iter()
                .any(|k| *k >= asked && *k <= asked + Duration::from_millis(250))
        };
        let violations: Vec<_> = self
            .site
            .api_violation_times()
            .into_iter()
            .filter(|(asked, _)| !unknowable(*asked))
            .collect();
        if !violations.is_empty() {
            let base = self.started;
            let ms = |t: Instant| t.saturating_duration_since(base).as_millis();
            let detail: Vec<String> = violations
                .iter()
                .map(|(asked, arrived)| {
                    format!(
                        "backoff asked for at {} ms, request at {} ms",
                        ms(*asked),
                        ms(*arrived)
                    )
                })
                .collect();
            self.fail(format!(
                "{} API requests arrived inside a backoff the crawler knew of: {detail:?}; \
                 kills at {:?} ms, restarts at {:?} ms, reloads at {:?} ms",
                violations.len(),
                self.kills.iter().map(|k| ms(*k)).collect::<Vec<_>>(),
                self.restarts.iter().map(|k| ms(*k)).collect::<Vec<_>>(),
                self.reloads.iter().map(|k| ms(*k)).collect::<Vec<_>>(),
            ));
        }
        self.checked.backoffs_unknowable = self.site.api_violations() - violations.len() as u64;
    }

    /// A pass began, or ended: an ended pass is checked, then the site
    /// changes for its next one, and (if the process still runs) a signal
    /// may be planned.
    fn on_pass_line(&mut self, line: &serde_json::Value, live: bool) {
        if line["message"] == "pass starting" {
            self.running = Some(line.clone());
            return;
        }
        self.running = None;
        self.verify_pass(line);
        self.evolve(line);
        if live {
            self.maybe_signal();
        }
    }

    /// The lines a stopped process wrote after the one that triggered the
    /// signal: a pass may have finished just before the signal landed, and
    /// it must be checked (and the site changed) before the restart.
    fn catch_up(&mut self) {
        let tail: Vec<serde_json::Value> = self.svc.seen[self.consumed..].to_vec();
        for line in &tail {
            if line["message"] == "pass starting" || line["message"] == "pass finished" {
                self.on_pass_line(line, false);
            }
        }
        // A kill can land after the store closed the pass and before the
        // process said so: the store, not the log, says whether it finished.
        if let Some(start) = self.running.clone() {
            let pass_id = start["pass_id"].as_i64().expect("pass_id");
            let conn = rusqlite::Connection::open(self.store_path()).expect("read the store");
            let finished: bool = conn
                .query_row(
                    "SELECT finished_at IS NOT NULL FROM passes WHERE pass_id = ?1",
                    [pass_id],
                    |r| r.get(0),
                )
                .expect("the running pass is in the store");
            if finished {
                let mut line = start;
                line["message"] = "pass finished".into();
                self.on_pass_line(&line, false);
            }
        }
    }

    /// The tag set whose pass is running.
    fn running_set(&self) -> Option<&'static str> {
        self.running
            .as_ref()
            .and_then(|l| set_named(&l["tag_set"]))
            .map(|s| s.name)
    }

    /// Checks one finished pass against the model, then brings the model up
    /// to date with what the store must now hold.
    fn verify_pass(&mut self, line: &serde_json::Value) {
        let Some(set) = set_named(&line["tag_set"]) else {
            self.fail(format!("pass of an unknown tag set: {line}"));
        };
        let pass_id = line["pass_id"].as_i64().expect("pass_id");
        let incremental = line["incremental"].as_bool().expect("incremental");
        let (epoch, expected) = world::expected(&self.site, set, &self.model, incremental)
            .unwrap_or_else(|e| self.fail(e));
        // The pages the server served in this pass: this set's tags at
        // this version (the site changes only between passes).
        let hits: Vec<_> = self
            .site
            .hits()
            .into_iter()
            .filter(|h| {
                h.tag.as_deref().is_some_and(|t| set.tags.contains(&t))
                    && h.version == epoch
                    && h.page.is_some()
            })
            .collect();
        let mut served: HashMap<(String, u32), u64> = HashMap::new();
        for h in hits.iter().filter(|h| h.clean) {
            *served
                .entry((h.tag.clone().unwrap_or_default(), h.page.unwrap_or(0)))
                .or_default() += 1;
        }
        let twice: Vec<_> = served.iter().filter(|(_, n)| **n > 1).collect();
        let kills = self.killed_in.remove(set.name).unwrap_or(0);
        let extra: u64 = served.values().map(|n| n - 1).sum();
        if extra > kills as u64 * FETCHERS {
            self.fail(format!(
                "pass {pass_id} of {}: pages served twice: {twice:?}",
                set.name
            ));
        }
        self.checked.pages_served += served.len() as u64;

        let conn = rusqlite::Connection::open(self.store_path()).expect("read the store");
        let mut stmt = conn
            .prepare(
                "SELECT s.question_id, s.votes, s.answers, s.views,
                        q.votes, q.answers, q.views, q.has_accepted_answer, q.status = 'closed'
                 FROM snapshots s JOIN questions q
                   ON q.site = s.site AND q.question_id = s.question_id
                 WHERE s.pass_id = ?1",
            )
            .expect("query");
        let rows: BTreeMap<u64, (Figures, Figures)> = stmt
            .query_map([pass_id], |r| {
                let snap = Figures {
                    votes: r.get(1)?,
                    answers: r.get(2)?,
                    views: r.get(3)?,
                    accepted: false,
                    closed: false,
                };
                let latest = Figures {
                    votes: r.get(4)?,
                    answers: r.get(5)?,
                    views: r.get(6)?,
                    accepted: r.get(7)?,
                    closed: r.get(8)?,
                };
                Ok((r.get::<_, i64>(0)? as u64, (snap, latest)))
            })
            .expect("rows")
            .map(Result::unwrap)
            .collect();
        if let Some(differ) = world::differ(&expected, &rows) {
            self.fail(format!(
                "pass {pass_id} of {} (incremental {incremental}): {differ}",
                set.name
            ));
        }
        for (id, want) in &expected {
            let (snap, latest) = rows[id];
            let snap_want = want.in_snapshot();
            if snap != snap_want || latest != *want {
                self.fail(format!(
                    "question {id} in pass {pass_id}: served {want:?}, snapshot {snap:?}, stored {latest:?}"
                ));
            }
        }
        self.checked.passes += 1;
        self.checked.incremental_passes += u64::from(incremental);
        self.checked.questions_checked += expected.len() as u64;
        self.checked.snapshots_checked += rows.len() as u64;
        self.model.extend(expected);
    }

    /// Changes the set's tags for its next pass, and scripts its faults.
    fn evolve(&mut self, line: &serde_json::Value) {
        let Some(set) = set_named(&line["tag_set"]) else {
            return;
        };
        self.checked.faults +=
            world::next_version(&self.site, &mut self.rng, set, &mut self.next_id)
                .unwrap_or_else(|e| self.fail(e));
    }

    /// Now and then, a signal: a reload at once, or a kill or a SIGTERM a
    /// few pages into what comes next.
    fn maybe_signal(&mut self) {
        if self.pending.is_some() || self.awaiting_reject {
            return;
        }
        let roll = self.rng.f64();
        if roll < 0.15 {
            self.rate = if self.rate == 30 { 25 } else { 30 };
            self.write_config();
            self.svc.signal("-HUP");
            self.reloads.push(Instant::now());
            self.checked.reloads_good += 1;
        } else if roll < 0.25 {
            std::fs::write(&self.config, "[fetch]\nrate = 99.0\n").expect("bad config");
            self.svc.signal("-HUP");
            self.awaiting_reject = true;
            self.checked.reloads_bad += 1;
        } else if roll < 0.40 {
            self.pending = Some(Pending::Kill(self.rng.u32(1..=4)));
        } else if roll < 0.50 {
            self.pending = Some(Pending::Term(self.rng.u32(1..=4)));
        } else if roll < 0.60 {
            let hold = Duration::from_millis(self.rng.u64(1000..=3000));
            self.pending = Some(Pending::LockBudget(self.rng.u32(1..=4), hold));
        } else if roll < 0.68 {
            // Past the 5 s a reader of the store waits for a lock.
            let hold = Duration::from_millis(self.rng.u64(2000..=7000));
            self.pending = Some(Pending::LockStore(self.rng.u32(1..=4), hold));
        }
    }

    /// Another connection takes the write lock of the SQLite file at `path`
    /// (the budget or the store) and holds it for `hold`: the crawl must
    /// wait, send nothing uncounted, lose nothing, and go on.
    fn hold_lock(&mut self, path: PathBuf, hold: Duration) {
        eprintln!(
            "seed {}: {} locked for {hold:?} during {:?}",
            self.seed,
            path.display(),
            self.running_set()
        );
        let lock = crate::lock::WriteLock::hold(&path);
        std::thread::spawn(move || {
            // The fault's length, not a synchronisation: the crawl must
            // cope with a lock of any length.
            std::thread::sleep(hold);
            drop(lock);
        });
    }

    fn kill_and_restart(&mut self, bin: &str) {
        let set = self.running_set();
        eprintln!("seed {}: kill -9 during {set:?}", self.seed);
        if let Some(set) = set {
            *self.killed_in.entry(set).or_default() += 1;
        }
        self.kills.push(Instant::now());
        self.svc.signal("-KILL");
        self.svc.wait_exit();
        self.checked.kills += 1;
        self.check_budget(false);
        self.catch_up();
        self.restart(bin);
    }

    fn term_and_restart(&mut self, bin: &str) {
        eprintln!(
            "seed {}: SIGTERM during {:?}",
            self.seed,
            self.running_set()
        );
        self.svc.signal("-TERM");
        let code = self.svc.wait_exit();
        if code != Some(0) {
            self.fail(format!("SIGTERM exited {code:?}"));
        }
        self.checked.sigterms += 1;
        self.check_budget(true);
        self.catch_up();
        self.restart(bin);
    }

    fn restart(&mut self, bin: &str) {
        if self.awaiting_reject {
            self.awaiting_reject = false;
            self.write_config();
        }
        self.running = None;
        self.restarts.push(Instant::now());
        self.svc = Service::start(bin, &self.config);
        self.consumed = 0;
        self.checked.restarts += 1;
    }

    /// The budget against the server's log: exact after a clean exit; after
    /// a kill, over by at most the requests being sent at that moment.
    fn check_budget(&mut self, clean: bool) {
        let served = self.site.hits().len() as u64 + self.overcount;
        let counted = budget_used(&self.budget_path());
        let slack = if clean { 0 } else { FETCHERS };
        if counted < served || counted > served + slack {
            self.fail(format!(
                "budget counted {counted} requests, the server saw {} and {} were counted unsent at kills (clean exit: {clean})",
                served - self.overcount,
                self.overcount
            ));
        }
        self.overcount += counted - served;
        self.checked.budget_checks += 1;
        self.checked.requests = served;
    }
}

/// The simulated service's config; `rate` flips between reloads.
fn test_config(site: &FakeSite, dir: &Path, rate: u32) -> TestConfig {
    TestConfig::service(site, dir)
        .fetch(format!(
            "fetchers = {FETCHERS}\nrate = {rate}.0\nburst = 5\nmax_retries = 8\ntimeout_secs = 10.0"
        ))
        .api("")
        .sets(world::sets_toml("4s"))
}
