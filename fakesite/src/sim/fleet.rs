//! The fleet simulation: several `stackcrawl run` processes (the real
//! binary), each leaving from its own loopback address and reaching one
//! PostgreSQL database through a TCP proxy the simulation owns, keep that
//! store current while the evolving site (`world`) changes under them.
//!
//! At seeded moments (the n-th "page done" line of the victim after a
//! pass), one fault from a seeded cycle of them: kill -9 and a restart a
//! moment later; SIGSTOP past the lease, then SIGCONT; one process's
//! connection to the database blackholed (healed with its old connections
//! kept or cut) or refused; the server terminating every connection of the
//! database (`pg_terminate_backend`); one process's requests to the site
//! dropped unanswered. The site also scripts 5xx, drops, truncations, 429s
//! and API backoffs on the first pages of a pass, as in the one-process
//! simulation.
//!
//! After every pass (the first `pass finished` line of any process), it
//! checks against the store and the site's own log:
//! - the pass's snapshots are exactly the questions its pages held, one
//!   each, with the figures the site served; every stored question of the
//!   set holds the latest figures a finished pass saw (a stale write from a
//!   process that stalled would put older ones back);
//! - no page was served whole twice in the pass, unless the first fetch was
//!   by a process under a fault then, or the second by one under a fault or
//!   just out of it (any process, for a termination of every connection):
//!   each such page is counted under its fault;
//! - the API key's budget, shared in the database, counted every API
//!   request the site saw (never fewer).
//!
//! At the end, after every process exited cleanly: each process's budget
//! file equals the HTML requests the site saw from its address (plus what
//! its kills counted and never sent, measured at each kill), and the shared
//! key budget equals the API requests plus at most what faults explain.
//!
//! Every failure names the seed and how to replay it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::world::{self, set_named, Figures, Set};
use crate::api::QUESTIONS_PATH;
use crate::config::{budget_used, TestConfig};
use crate::pg::TestDb;
use crate::proxy::Proxy;
use crate::{FakeSite, Hit};

/// The app key the fleet shares: its budget is one row in the database.
const KEY: &str = "fleet-sim-key";
const FETCHERS: u64 = 2;
/// Long enough that a live holder on a loaded machine keeps its pages
/// (3 s was seen to expire under one in tests/fleet.rs), short enough that
/// a stalled holder's pages are taken over within a pass.
const LEASE_SECS: u64 = 5;
/// Longer than a pass takes under any one fault (a takeover waits a
/// lease, a database blackhole lasts up to 8 s), so the site changes before
/// the set's next pass begins: a pass that overran its interval would
/// rightly start the next one at once.
const EVERY: &str = "20s";
/// A request on the wire when a fault began: the client's timeout.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long the process that got an API backoff takes to write it where
/// the fleet reads it: a request another process counted meanwhile is on
/// its way and cannot be called back.
const TELL_THE_FLEET: Duration = Duration::from_millis(250);
/// The most any wait of the driver may take before the run is called stuck.
const STUCK: Duration = Duration::from_secs(90);

/// The faults, one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// kill -9, restarted a moment later.
    Kill,
    /// SIGSTOP past the lease, then SIGCONT.
    Stop,
    /// The process's database connections forward nothing, then heal.
    DbBlackhole,
    /// The process's database connections are cut and new ones refused.
    DbRefuse,
    /// The server terminates every connection to the database.
    Terminate,
    /// The site drops the process's requests unanswered.
    SiteDown,
}

const KINDS: [FaultKind; 6] = [
    FaultKind::Kill,
    FaultKind::Stop,
    FaultKind::DbBlackhole,
    FaultKind::DbRefuse,
    FaultKind::Terminate,
    FaultKind::SiteDown,
];

/// What a run checked, for the sweep's report.
#[derive(Debug, Default, Clone)]
pub struct FleetChecked {
    pub processes: usize,
    pub passes: u64,
    pub incremental_passes: u64,
    pub questions_checked: u64,
    pub snapshots_checked: u64,
    pub pages_served: u64,
    /// Scripted site faults (5xx, drops, truncations, 429, API faults).
    pub site_faults: u64,
    pub faults: BTreeMap<FaultKind, u64>,
    /// Pages served whole a second time, by the fault that explains it.
    pub twice: BTreeMap<FaultKind, u64>,
    /// Log lines of the fleet: pages taken over, writes fenced, pages
    /// given up and handed back.
    pub taken_over: u64,
    pub fenced: u64,
    pub given_up: u64,
    pub requests: u64,
    pub api_requests: u64,
    /// The shared key budget's count above the API requests the site saw
    /// at the end: requests counted and never sent at a fault.
    pub key_budget_over: u64,
}

/// A fault begun at `from`, over at `to` (open while `None`), on one
/// process or (`None`) on all.
#[derive(Debug, Clone)]
struct Window {
    kind: FaultKind,
    member: Option<usize>,
    from: Instant,
    to: Option<Instant>,
}

/// What a fault leaves to do later.
#[derive(Debug, Clone, Copy)]
enum Undo {
    Restart(usize),
    Cont(usize),
    /// Forward again; `true`: cut the old connections first.
    HealDb(usize, bool),
    Admit(usize),
}

/// A log line of process `member`'s `generation`-th start; `None` when its
/// standard error closed.
type Event = (usize, u64, Option<serde_json::Value>);

struct Member {
    name: String,
    ip: IpAddr,
    dir: PathBuf,
    config: PathBuf,
    proxy: Proxy,
    child: Option<Child>,
    generation: u64,
    /// This start said `run starting`: its signal handlers are set.
    ready: bool,
    /// Every line but status lines, of all its starts: a failure quotes
    /// the last ones, and those about the page it concerns.
    log: Vec<serde_json::Value>,
    /// Requests its budget file may have counted and never sent, measured
    /// at its last kill.
    overcount: u64,
}

pub struct FleetSim {
    seed: u64,
    bin: String,
    rng: fastrand::Rng,
    site: FakeSite,
    /// Declared before the database, so the processes die before it drops.
    members: Vec<Member>,
    _db: TestDb,
    check: postgres::Client,
    _dir: tempfile::TempDir,
    events: mpsc::Receiver<Event>,
    sender: mpsc::Sender<Event>,
    /// Per set, each stored question's latest figures a finished pass saw.
    model: HashMap<&'static str, HashMap<u64, Figures>>,
    checked_passes: HashSet<i64>,
    next_id: u64,
    /// The next fault, its victim, and how many of the victim's "page
    /// done" lines before it.
    pending: Option<(u32, FaultKind, usize)>,
    cycle: Vec<FaultKind>,
    windows: Vec<Window>,
    undo: Option<(Instant, Undo)>,
    started: Instant,
    pub checked: FleetChecked,
}

impl FleetSim {
    /// Runs one seed with `processes` processes until `passes` passes have
    /// been checked; panics naming the seed on any failure.
    pub fn run(bin: &str, seed: u64, processes: usize, passes: u64) -> FleetChecked {
        let mut sim = FleetSim::start(bin, seed, processes);
        sim.drive(passes);
        sim.finish();
        std::mem::take(&mut sim.checked)
    }

    fn start(bin: &str, seed: u64, processes: usize) -> FleetSim {
        let site = world::site(Duration::from_millis(5), Some(KEY));
        let db = TestDb::create();
        let check = postgres::Client::connect(&db.url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", db.url));
        let dir = tempfile::tempdir().expect("tempdir");
        let members = (0..processes)
            .map(|i| {
                let name = format!("w{i}");
                let ip: IpAddr = format!("127.0.0.{}", i + 2).parse().expect("address");
                let dir = dir.path().join(&name);
                std::fs::create_dir_all(&dir).expect("member directory");
                let proxy = Proxy::start(TestDb::server_addr());
                let config = TestConfig::service(&site, &dir)
                    .store_at(&db.url_through(proxy.addr))
                    .fetch(format!(
                        "fetchers = {FETCHERS}\nrate = 10.0\nburst = 2\nmax_retries = 8\ntimeout_secs = {}",
                        TIMEOUT.as_secs_f64()
                    ))
                    .api("")
                    .fleet(format!(
                        "name = \"{name}\"\nlocal_address = \"{ip}\"\nlease_secs = {LEASE_SECS}"
                    ))
                    .sets(world::sets_toml(EVERY))
                    .write();
                Member {
                    name,
                    ip,
                    dir,
                    config,
                    proxy,
                    child: None,
                    generation: 0,
                    ready: false,
                    log: Vec::new(),
                    overcount: 0,
                }
            })
            .collect();
        let (sender, events) = mpsc::channel();
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut cycle = KINDS.to_vec();
        rng.shuffle(&mut cycle);
        let mut sim = FleetSim {
            seed,
            bin: bin.to_string(),
            rng,
            site,
            members,
            _db: db,
            check,
            _dir: dir,
            events,
            sender,
            model: HashMap::new(),
            checked_passes: HashSet::new(),
            next_id: 0,
            pending: None,
            cycle,
            windows: Vec::new(),
            undo: None,
            started: Instant::now(),
            checked: FleetChecked {
                processes,
                ..FleetChecked::default()
            },
        };
        for m in 0..processes {
            sim.spawn(m);
        }
        sim
    }

    fn fail(&self, what: String) -> ! {
        let tails: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                let last: Vec<String> = m
                    .log
                    .iter()
                    .rev()
                    .take(8)
                    .rev()
                    .map(|l| l.to_string())
                    .collect();
                format!("{} last lines:\n  {}", m.name, last.join("\n  "))
            })
            .collect();
        let ms = |t: Instant| t.saturating_duration_since(self.started).as_millis();
        let faults: Vec<String> = self
            .windows
            .iter()
            .map(|w| {
                format!(
                    "{:?} on {:?} {}..{:?} ms",
                    w.kind,
                    w.member.map(|m| &self.members[m].name),
                    ms(w.from),
                    w.to.map(ms)
                )
            })
            .collect();
        panic!(
            "fleet simulation seed {} failed: {what}\nfaults: {faults:?}\n{}\n\
             (replay: `cargo bench --bench fleet_sim -- 1 PASSES {}`, or FleetSim::run(bin, {}, {}, passes))",
            self.seed,
            tails.join("\n"),
            self.seed,
            self.seed,
            self.members.len()
        )
    }

    /// Starts (or restarts) process `m`; its lines come to the driver's
    /// one channel, tagged with the start they belong to.
    fn spawn(&mut self, m: usize) {
        let member = &mut self.members[m];
        member.generation += 1;
        member.ready = false;
        let generation = member.generation;
        let mut cmd = crate::service::command(&self.bin, &member.dir);
        cmd.args(["--log-format", "json", "run", "--config"])
            .arg(&member.config)
            // The supervisor's debug lines say which page another process
            // had, for a failure's account of a page.
            .env("RUST_LOG", "info,stackcrawl::engine::supervisor=debug")
            .env("STACKCRAWL_API_KEY", KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start stackcrawl");
        let stderr = child.stderr.take().expect("stderr");
        let tx = self.sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
                if tx.send((m, generation, Some(value))).is_err() {
                    return;
                }
            }
            let _ = tx.send((m, generation, None));
        });
        member.child = Some(child);
    }

    fn signal(&self, m: usize, signo: libc::c_int) {
        let Some(child) = &self.members[m].child else {
            return;
        };
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) only sends a signal to our own child process.
        let rc = unsafe { libc::kill(pid, signo) };
        if rc != 0 {
            self.fail(format!("signal {signo} to {}", self.members[m].name));
        }
    }

    /// Waits (bounded) for process `m` to exit, and returns its code.
    fn wait_exit(&mut self, m: usize) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut child = self.members[m].child.take()?;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.fail(format!("{} did not exit", self.members[m].name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn drive(&mut self, passes: u64) {
        let mut progress = (self.checked.passes, Instant::now());
        while self.checked.passes < passes {
            if let Some((at, undo)) = self.undo {
                if at <= Instant::now() {
                    self.undo = None;
                    self.run_undo(undo);
                }
            }
            if self.checked.passes != progress.0 {
                progress = (self.checked.passes, Instant::now());
            } else if progress.1.elapsed() > STUCK {
                self.fail(format!("no pass finished for {} s", STUCK.as_secs()));
            }
            let wait = match self.undo {
                Some((at, _)) => at.saturating_duration_since(Instant::now()),
                None => STUCK,
            };
            let Ok((m, generation, line)) = self.events.recv_timeout(wait) else {
                continue;
            };
            if generation != self.members[m].generation {
                continue;
            }
            match line {
                Some(line) => self.on_line(m, line),
                // Its standard error closed: expected after a kill, which
                // took the child already.
                None if self.members[m].child.is_some() => {
                    let code = self.wait_exit(m);
                    self.fail(format!(
                        "{} exited on its own with {code:?}",
                        self.members[m].name
                    ));
                }
                None => {}
            }
        }
    }

    fn on_line(&mut self, m: usize, line: serde_json::Value) {
        if line["message"] != "status" {
            self.members[m].log.push(line.clone());
        }
        match line["message"].as_str().unwrap_or_default() {
            "run starting" => self.members[m].ready = true,
            "pass finished" => {
                let pass_id = line["pass_id"].as_i64().expect("pass_id");
                if self.checked_passes.insert(pass_id) {
                    self.verify_pass(&line);
                    self.evolve(&line);
                    self.schedule_fault();
                }
            }
            // Counted on the victim's own lines: it is mid-pass then, with
            // pages leased and on the wire, where a fault bites.
            "page done" => {
                let counts = matches!(&self.pending, Some((_, kind, victim))
                    if *victim == m || *kind == FaultKind::Terminate);
                if let (true, Some((n, kind, victim))) = (counts, &mut self.pending) {
                    if *n > 1 {
                        *n -= 1;
                    } else {
                        let (kind, victim) = (*kind, *victim);
                        self.pending = None;
                        self.begin_fault(kind, victim);
                    }
                }
            }
            "lease of another process expired: page taken over" => self.checked.taken_over += 1,
            "lease taken over while this process held the page: its records are dropped" => {
                self.checked.fenced += 1
            }
            "page given up: lease released for another process" => self.checked.given_up += 1,
            "run failed" => self.fail(format!("{}: {line}", self.members[m].name)),
            _ => {}
        }
    }

    /// The next fault of the cycle, a few pages into what comes next; none
    /// while one is under way.
    fn schedule_fault(&mut self) {
        if self.pending.is_some() || self.undo.is_some() {
            return;
        }
        let n = self.checked.passes as usize;
        let kind = self.cycle[n % self.cycle.len()];
        let victim = self.rng.usize(..self.members.len());
        self.pending = Some((self.rng.u32(1..=3), kind, victim));
    }

    fn begin_fault(&mut self, kind: FaultKind, m: usize) {
        let now = Instant::now();
        // The fault's length, drawn whatever the kind so a seed's draws
        // stay in step.
        let roll = self.rng.f64();
        let cut = self.rng.bool();
        let ms = |lo: u64, hi: u64| Duration::from_millis(lo + ((hi - lo) as f64 * roll) as u64);
        let (member, undo) = match kind {
            FaultKind::Kill => {
                self.signal(m, libc::SIGKILL);
                self.wait_exit(m);
                self.check_member_budget(m, false);
                let after = ms(0, 3000);
                (Some(m), Some((now + after, Undo::Restart(m))))
            }
            FaultKind::Stop => {
                self.signal(m, libc::SIGSTOP);
                let after = Duration::from_secs(LEASE_SECS) + ms(1000, 3000);
                (Some(m), Some((now + after, Undo::Cont(m))))
            }
            FaultKind::DbBlackhole => {
                self.members[m].proxy.blackhole();
                let after = ms(1000, 8000);
                (Some(m), Some((now + after, Undo::HealDb(m, cut))))
            }
            FaultKind::DbRefuse => {
                self.members[m].proxy.refuse();
                let after = ms(1000, 4000);
                (Some(m), Some((now + after, Undo::HealDb(m, false))))
            }
            FaultKind::Terminate => {
                let ended = self
                    .check
                    .query_one(
                        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
                        &[],
                    )
                    .map(|r| r.get::<_, i64>(0))
                    .unwrap_or_else(|e| self.fail(format!("pg_terminate_backend: {e}")));
                eprintln!(
                    "fleet seed {}: the server terminated {ended} connections",
                    self.seed
                );
                (None, None)
            }
            FaultKind::SiteDown => {
                self.site.refuse_client(self.members[m].ip);
                let after = ms(1000, 4000);
                (Some(m), Some((now + after, Undo::Admit(m))))
            }
        };
        eprintln!(
            "fleet seed {}: {kind:?} on {:?} at {} ms",
            self.seed,
            member.map(|m| &self.members[m].name),
            now.saturating_duration_since(self.started).as_millis()
        );
        *self.checked.faults.entry(kind).or_default() += 1;
        self.windows.push(Window {
            kind,
            member,
            from: now,
            to: if undo.is_some() { None } else { Some(now) },
        });
        self.undo = undo;
    }

    fn run_undo(&mut self, undo: Undo) {
        match undo {
            Undo::Restart(m) => self.spawn(m),
            Undo::Cont(m) => self.signal(m, libc::SIGCONT),
            Undo::HealDb(m, cut) => {
                if cut {
                    self.members[m].proxy.cut();
                }
                self.members[m].proxy.heal();
            }
            Undo::Admit(m) => self.site.admit_client(self.members[m].ip),
        }
        if let Some(w) = self.windows.last_mut() {
            w.to = Some(Instant::now());
        }
    }

    /// Checks one finished pass against the model, then brings the model up
    /// to date with what the store must now hold.
    fn verify_pass(&mut self, line: &serde_json::Value) {
        let Some(set) = set_named(&line["tag_set"]) else {
            self.fail(format!("pass of an unknown tag set: {line}"));
        };
        let pass_id = line["pass_id"].as_i64().expect("pass_id");
        let incremental = line["incremental"].as_bool().expect("incremental");
        let finished: bool = self
            .check
            .query_one(
                "SELECT finished_at IS NOT NULL FROM passes WHERE pass_id = $1",
                &[&pass_id],
            )
            .map(|r| r.get(0))
            .unwrap_or_else(|e| self.fail(format!("pass {pass_id}: {e}")));
        if !finished {
            self.fail(format!("pass {pass_id} said finished, open in the store"));
        }
        let model = self.model.remove(set.name).unwrap_or_default();
        let (epoch, expected) =
            world::expected(&self.site, set, &model, incremental).unwrap_or_else(|e| self.fail(e));
        self.check_served_once(set, pass_id, epoch);
        self.check_snapshots(set, pass_id, incremental, &expected);
        let mut model = model;
        model.extend(expected.iter().map(|(id, f)| (*id, *f)));
        self.check_latest(set, pass_id, &model);
        self.check_key_budget(false);
        self.checked.passes += 1;
        self.checked.incremental_passes += u64::from(incremental);
        self.checked.questions_checked += expected.len() as u64;
        self.model.insert(set.name, model);
    }

    /// Each page of the pass served whole once, but where a fault explains
    /// the second fetch: the first went to a process under a fault then
    /// (from a client timeout before it began to a lease after it ended),
    /// or the second came from one under a fault or a lease out of it.
    fn check_served_once(&mut self, set: &Set, pass_id: i64, epoch: u64) {
        let mut served: BTreeMap<(String, u32), Vec<Hit>> = BTreeMap::new();
        for h in self.site.hits() {
            let ours = h.tag.as_deref().is_some_and(|t| set.tags.contains(&t));
            if ours && h.version == epoch && h.clean && h.page.is_some() {
                served
                    .entry((h.tag.clone().unwrap_or_default(), h.page.unwrap_or(0)))
                    .or_default()
                    .push(h);
            }
        }
        self.checked.pages_served += served.len() as u64;
        for (page, hits) in &mut served {
            hits.sort_by_key(|h| h.at);
            for pair in hits.windows(2) {
                let (first, second) = (&pair[0], &pair[1]);
                let member = |h: &Hit| self.members.iter().position(|m| m.ip == h.client);
                let (holder, again) = (member(first), member(second));
                let lease = Duration::from_secs(LEASE_SECS);
                // The first fetch went to a process under the fault (on the
                // wire when it began, or before its lease ran out after), or
                // the second came from one just out of it, acting on what it
                // knew before (a claim it sent into a partition).
                let explained = self.windows.iter().find(|w| {
                    let until = |t: Instant| w.to.is_none_or(|to| t <= to + lease);
                    let on = |m: Option<usize>| w.member.is_none() || w.member == m;
                    (on(holder) && first.at + TIMEOUT >= w.from && until(first.at))
                        || (on(again) && second.at >= w.from && until(second.at))
                });
                match explained {
                    Some(w) => *self.checked.twice.entry(w.kind).or_default() += 1,
                    None => {
                        let ms = |t: Instant| t.saturating_duration_since(self.started).as_millis();
                        let who: Vec<String> = hits
                            .iter()
                            .map(|h| format!("{} at {} ms", h.client, ms(h.at)))
                            .collect();
                        let about: Vec<String> = self
                            .members
                            .iter()
                            .flat_map(|m| {
                                m.log
                                    .iter()
                                    .filter(|l| l["tag"] == page.0.as_str() && l["page"] == page.1)
                                    .map(move |l| format!("{}: {l}", m.name))
                            })
                            .collect();
                        self.fail(format!(
                            "pass {pass_id} of {}: page {page:?} served whole twice with no fault to explain it: {who:?}\nthe fleet's lines about it:\n{}",
                            set.name,
                            about.join("\n")
                        ));
                    }
                }
            }
        }
    }

    /// The pass's snapshots: exactly the questions its pages held, one
    /// each, with the figures served.
    fn check_snapshots(
        &mut self,
        set: &Set,
        pass_id: i64,
        incremental: bool,
        expected: &BTreeMap<u64, Figures>,
    ) {
        let rows = self
            .check
            .query(
                "SELECT question_id, votes, answers, views FROM snapshots WHERE pass_id = $1",
                &[&pass_id],
            )
            .unwrap_or_else(|e| self.fail(format!("snapshots of pass {pass_id}: {e}")));
        let mut snaps: BTreeMap<u64, Figures> = BTreeMap::new();
        for r in &rows {
            let id = r.get::<_, i64>(0) as u64;
            let f = Figures {
                votes: r.get(1),
                answers: r.get::<_, i64>(2) as u64,
                views: r.get::<_, i64>(3) as u64,
                accepted: false,
                closed: false,
            };
            if snaps.insert(id, f).is_some() {
                self.fail(format!("question {id}: two snapshots in pass {pass_id}"));
            }
        }
        if let Some(differ) = world::differ(expected, &snaps) {
            self.fail(format!(
                "pass {pass_id} of {} (incremental {incremental}): {differ}",
                set.name
            ));
        }
        for (id, want) in expected {
            if snaps[id] != want.in_snapshot() {
                self.fail(format!(
                    "question {id} in pass {pass_id}: served {want:?}, snapshot {:?}",
                    snaps[id]
                ));
            }
        }
        self.checked.snapshots_checked += snaps.len() as u64;
    }

    /// Every stored question of the set holds the latest figures a finished
    /// pass saw: none older (a stale write), none missing.
    fn check_latest(&mut self, set: &Set, pass_id: i64, model: &HashMap<u64, Figures>) {
        let tags: Vec<String> = set.tags.iter().map(|t| t.to_string()).collect();
        let rows = self
            .check
            .query(
                "SELECT q.question_id, q.votes, q.answers, q.views, q.has_accepted_answer,
                        q.status = 'closed'
                 FROM questions q
                 WHERE EXISTS (SELECT 1 FROM question_crawl_tags c
                               WHERE c.site = q.site AND c.question_id = q.question_id
                                 AND c.crawl_tag = ANY($1))",
                &[&tags],
            )
            .unwrap_or_else(|e| self.fail(format!("questions of {}: {e}", set.name)));
        let stored: HashMap<u64, Figures> = rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, i64>(0) as u64,
                    Figures {
                        votes: r.get(1),
                        answers: r.get::<_, i64>(2) as u64,
                        views: r.get::<_, i64>(3) as u64,
                        accepted: r.get(4),
                        closed: r.get(5),
                    },
                )
            })
            .collect();
        let wrong: Vec<String> = model
            .iter()
            .filter(|(id, want)| stored.get(id) != Some(want))
            .map(|(id, want)| format!("{id}: seen {want:?}, stored {:?}", stored.get(id)))
            .collect();
        let unknown: Vec<_> = stored.keys().filter(|id| !model.contains_key(id)).collect();
        if !wrong.is_empty() || !unknown.is_empty() {
            self.fail(format!(
                "after pass {pass_id} of {}: {} stored questions not at their latest figures {wrong:?}; {} never served {unknown:?}",
                set.name,
                wrong.len(),
                unknown.len()
            ));
        }
    }

    /// The key's budget, shared in the database, against the API requests
    /// the site saw: never fewer (a request is counted before it goes);
    /// at the end exactly, but for what faults counted and never sent.
    fn check_key_budget(&mut self, end: bool) {
        let served = self.site.api_hits().len() as u64;
        let counted = self
            .check
            .query_one(
                "SELECT COALESCE(SUM(used), 0)::BIGINT FROM budget_requests",
                &[],
            )
            .map(|r| r.get::<_, i64>(0) as u64)
            .unwrap_or_else(|e| self.fail(format!("key budget: {e}")));
        if counted < served {
            self.fail(format!(
                "the key's budget counted {counted} requests, the API saw {served}"
            ));
        }
        if end {
            // A request counted and then not sent: at a kill, or when the
            // database's answer to the count was lost (at most one per
            // fetcher each time).
            let faults: u64 = self
                .checked
                .faults
                .iter()
                .filter(|(k, _)| **k != FaultKind::SiteDown)
                .map(|(_, n)| n)
                .sum();
            let allowed = faults * FETCHERS * self.members.len() as u64;
            if counted > served + allowed {
                self.fail(format!(
                    "the key's budget counted {counted} requests, the API saw {served}: \
                     more over than {faults} faults explain"
                ));
            }
            self.checked.key_budget_over = counted - served;
            self.checked.api_requests = served;
        }
    }

    /// Process `m`'s budget file against the HTML requests (robots.txt
    /// included) the site saw from its address: never fewer; over by no more
    /// than its kills explain (one request per fetcher each, counted and
    /// never sent). A request sent just before a kill may reach the site
    /// after this check: the overcount measured here is an upper bound,
    /// and the checks after allow up to it.
    fn check_member_budget(&mut self, m: usize, clean: bool) {
        let ip = self.members[m].ip;
        let served = self
            .site
            .hits()
            .iter()
            .filter(|h| h.client == ip && !h.raw_path.starts_with(QUESTIONS_PATH))
            .count() as u64;
        let path = self.members[m].dir.join("budget.sqlite");
        let counted = if path.exists() { budget_used(&path) } else { 0 };
        let allowed = self.members[m].overcount + if clean { 0 } else { FETCHERS };
        if counted < served || counted > served + allowed {
            self.fail(format!(
                "{}'s budget file counted {counted} requests; the site saw {served} from {ip}, \
                 and earlier kills explain up to {} more (clean exit: {clean})",
                self.members[m].name, self.members[m].overcount
            ));
        }
        if !clean {
            self.members[m].overcount = counted - served;
        }
    }

    /// Changes the set's tags for its next pass, and scripts its faults.
    fn evolve(&mut self, line: &serde_json::Value) {
        let Some(set) = set_named(&line["tag_set"]) else {
            return;
        };
        self.checked.site_faults +=
            world::next_version(&self.site, &mut self.rng, set, &mut self.next_id)
                .unwrap_or_else(|e| self.fail(e));
    }

    /// Ends every fault, stops the fleet with SIGTERM and checks the
    /// budgets against the site's log.
    fn finish(&mut self) {
        self.pending = None;
        if let Some((_, undo)) = self.undo.take() {
            self.run_undo(undo);
        }
        // A process restarted a moment ago may not handle SIGTERM yet.
        let deadline = Instant::now() + STUCK;
        while !self.members.iter().all(|m| m.ready) {
            match self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok((m, generation, Some(line))) if generation == self.members[m].generation => {
                    if line["message"] != "pass finished" {
                        self.on_line(m, line);
                    }
                }
                Ok(_) => {}
                Err(_) => self.fail("a restarted process never said `run starting`".into()),
            }
        }
        for m in 0..self.members.len() {
            self.signal(m, libc::SIGTERM);
        }
        for m in 0..self.members.len() {
            let code = self.wait_exit(m);
            if code != Some(0) {
                self.fail(format!(
                    "{}: the final SIGTERM exited {code:?}",
                    self.members[m].name
                ));
            }
            self.check_member_budget(m, true);
        }
        // The lines the fleet wrote after the last pass checked.
        while let Ok((m, generation, Some(line))) = self.events.try_recv() {
            if generation == self.members[m].generation && line["message"] != "pass finished" {
                self.on_line(m, line);
            }
        }
        self.check_key_budget(true);
        self.checked.requests = self.site.hits().len() as u64;
        let violations = self.site.api_violation_times();
        // A backoff is known to the fleet once the process that got it
        // wrote it to the database: one whose database or life was cut
        // short by a fault cannot have told the others.
        let unknowable = |asked: Instant| {
            self.windows
                .iter()
                .any(|w| asked + TIMEOUT >= w.from && w.to.is_none_or(|to| asked <= to))
        };
        let unexplained: Vec<_> = violations
            .iter()
            .filter(|(asked, at)| !unknowable(*asked) && *at > *asked + TELL_THE_FLEET)
            .collect();
        if !unexplained.is_empty() {
            let ms = |t: Instant| t.saturating_duration_since(self.started).as_millis();
            let hits = self.site.api_hits();
            let client = |at: Instant| {
                hits.iter()
                    .find(|h| h.at == at)
                    .map_or("?".to_string(), |h| h.client.to_string())
            };
            let detail: Vec<String> = unexplained
                .iter()
                .map(|(asked, at)| {
                    format!(
                        "backoff asked by {} at {} ms, request from {} at {} ms",
                        client(*asked),
                        ms(*asked),
                        client(*at),
                        ms(*at)
                    )
                })
                .collect();
            self.fail(format!(
                "API requests inside a backoff the fleet knew of: {detail:?}"
            ));
        }
    }
}

impl Drop for FleetSim {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
