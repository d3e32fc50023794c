//! Edges of the `crawl` command as a user meets them, with the real binary
//! against FakeSite on 127.0.0.1: an existing output is never wiped by a
//! crawl that fetches nothing, a resumed `crawl --store` writes every record
//! of its pass, an interrupted crawl says so and lists what it did not fetch.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use stackcrawl::store::parquet::read_questions;
use stackcrawl_fakesite::service::Service;
use stackcrawl_fakesite::{read_jsonl, FakeSite, Fault, TestConfig};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackcrawl"));
    cmd.env_remove("STACKCRAWL_API_KEY")
        .env("RUST_LOG", "info")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn crawl(config: &Path, extra: &[&str]) -> std::process::Output {
    bin()
        .args(["crawl", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .expect("run stackcrawl crawl")
}

const OLD_OUTPUT: &str = "{\"an\":\"earlier crawl's record\"}\n";

/// Runs a crawl that fetches nothing over an existing output and checks the
/// output is exactly as it was.
fn assert_output_kept(site: &FakeSite, fetch: &str, prepare: impl FnOnce(&Path)) -> i32 {
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(site, dir.path())
        .fetch(fetch)
        .tag_set("a", &["a"], 2)
        .write();
    let out = dir.path().join("q.jsonl");
    std::fs::write(&out, OLD_OUTPUT).unwrap();
    prepare(dir.path());
    let run = crawl(&config, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_ne!(run.status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        OLD_OUTPUT,
        "the output was touched: {stderr}"
    );
    run.status.code().unwrap()
}

#[test]
fn robots_forbidding_the_crawl_leaves_the_output_as_it_was() {
    let site = FakeSite::builder()
        .tag("a", 100)
        .robots("User-agent: *\nDisallow: /\n")
        .start();
    assert_eq!(assert_output_kept(&site, "", |_| {}), 2);
}

#[test]
fn unreachable_robots_leaves_the_output_as_it_was() {
    let site = FakeSite::builder()
        .tag("a", 100)
        .robots_fault(Fault::Status {
            status: 503,
            retry_after: None,
        })
        .start();
    // The site failed, not the usage: exit 1.
    assert_eq!(assert_output_kept(&site, "max_retries = 0", |_| {}), 1);
}

#[test]
fn a_corrupt_budget_file_leaves_the_output_as_it_was() {
    let site = FakeSite::builder().tag("a", 100).start();
    assert_output_kept(&site, "", |dir| {
        std::fs::write(
            dir.join("budget.sqlite"),
            "{not a budget, not a database at all}",
        )
        .unwrap();
    });
    assert!(site.hits().is_empty());
}

#[test]
fn a_crawl_whose_every_page_is_missing_leaves_the_output_as_it_was() {
    let mut b = FakeSite::builder().tag("a", 100);
    for page in 1..=2 {
        b = b.fault(
            "a",
            page,
            Fault::Status {
                status: 404,
                retry_after: None,
            },
        );
    }
    let site = b.start();
    assert_eq!(assert_output_kept(&site, "max_retries = 0", |_| {}), 1);
    assert_eq!(site.page_hits().len(), 2);
}

#[test]
fn a_corrupt_store_leaves_the_output_as_it_was() {
    let site = FakeSite::builder().tag("a", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .tag_set("a", &["a"], 2)
        .write();
    let out = dir.path().join("q.jsonl");
    std::fs::write(&out, OLD_OUTPUT).unwrap();
    let db = dir.path().join("store.db");
    std::fs::write(&db, vec![b'x'; 8192]).unwrap();
    let run = crawl(&config, &["--store", db.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), OLD_OUTPUT);
}

fn json_crawl(config: &Path, extra: &[&str]) -> Command {
    let mut cmd = bin();
    cmd.args(["--log-format", "json", "crawl", "--config"])
        .arg(config)
        .args(extra);
    cmd
}

/// The ids in an output, JSONL or Parquet by its extension.
fn ids(path: &Path) -> Vec<u64> {
    let records = if path.extension().is_some_and(|e| e == "parquet") {
        read_questions(std::fs::File::open(path).expect("output written")).unwrap()
    } else {
        read_jsonl(path)
    };
    records.iter().map(|q| q.question_id).collect()
}

#[test]
fn crawl_store_killed_mid_crawl_then_rerun_outputs_every_record() {
    killed_then_rerun("q.jsonl");
}

/// A killed crawl leaves a Parquet `.partial` without its footer; the
/// rerun writes the whole pass from the store.
#[test]
fn crawl_store_killed_mid_crawl_then_rerun_outputs_every_record_in_parquet() {
    killed_then_rerun("q.parquet");
}

fn killed_then_rerun(output: &str) {
    let site = FakeSite::builder()
        .tag("a", 1000)
        .latency(Duration::from_millis(50))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2\nburst = 1")
        .tag_set("a", &["a"], 20)
        .output(output)
        .write();
    let db = dir.path().join("store.db");
    let out = dir.path().join(output);
    let store = ["--store", db.to_str().unwrap()];

    let mut first = Service::from_command(json_crawl(&config, &store));
    for _ in 0..5 {
        first.wait_for("page done");
    }
    first.signal("-KILL");
    first.wait_exit();
    // What the killed crawl left: its records so far in the partial file,
    // which for Parquet lacks the footer that makes it readable.
    let partial = dir.path().join(format!(".{output}.partial"));
    assert!(partial.exists());
    if output.ends_with(".parquet") {
        assert!(read_questions(std::fs::File::open(&partial).unwrap()).is_err());
    }

    let mut second = Service::from_command(json_crawl(&config, &store));
    let resumed = second.wait_for("pass starting");
    assert_eq!(resumed["resumed"], true);
    assert!(resumed["pages_already_done"].as_u64().unwrap() >= 5);
    let status = second.wait_exit();
    assert_eq!(status, Some(0), "{:#?}", second.seen);

    let got = ids(&out);
    let unique: HashSet<u64> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "no record twice");
    let served: HashSet<u64> = site.questions("a").iter().map(|q| q.id).collect();
    assert_eq!(unique, served, "every record of the pass");
}

#[test]
fn sigterm_mid_crawl_exits_3_listing_the_unfetched_pages_for_retry() {
    interrupted_then_retried("q.jsonl");
}

/// The interrupted crawl writes its Parquet footer; the retry rewrites
/// the file with its records first.
#[test]
fn sigterm_mid_crawl_then_retry_completes_a_parquet_output() {
    interrupted_then_retried("q.parquet");
}

fn interrupted_then_retried(output: &str) {
    let site = FakeSite::builder()
        .tag("a", 2000)
        .latency(Duration::from_millis(100))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2\nburst = 1")
        .tag_set("a", &["a"], 40)
        .output(output)
        .write();
    let out = dir.path().join(output);
    let failures = dir.path().join("q.failed.jsonl");

    let mut crawl = Service::from_command(json_crawl(&config, &[]));
    crawl.wait_for("page done");
    crawl.signal("-TERM");
    let status = crawl.wait_exit();
    assert_eq!(status, Some(3), "{:#?}", crawl.seen);
    assert!(crawl.saw("crawl interrupted"));
    assert!(!crawl.saw("crawl finished"));

    let served: HashSet<u32> = site.page_hits().iter().filter_map(|h| h.page).collect();
    assert!(served.len() < 40, "interrupted mid-crawl");
    let listed: Vec<serde_json::Value> = std::fs::read_to_string(&failures)
        .expect("a failures file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let listed_pages: HashSet<u32> = listed
        .iter()
        .map(|f| f["page"].as_u64().unwrap() as u32)
        .collect();
    let unfetched: HashSet<u32> = (1..=40).filter(|p| !served.contains(p)).collect();
    assert_eq!(listed_pages, unfetched);
    assert_eq!(listed.len(), unfetched.len());
    assert!(listed.iter().all(|f| f["kind"] == "interrupted"));
    let first = ids(&out);
    assert!(
        !first.is_empty(),
        "the interrupted crawl's records are in the output"
    );

    let retry = crawl_retry(&config, &failures);
    assert_eq!(
        retry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&retry.stderr)
    );
    let got = ids(&out);
    let unique: HashSet<u64> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "no record twice");
    let all: HashSet<u64> = site.questions("a").iter().map(|q| q.id).collect();
    assert_eq!(unique, all, "every record of the site");
    assert!(!failures.exists(), "nothing left to retry");
}

fn crawl_retry(config: &Path, failures: &Path) -> std::process::Output {
    bin()
        .args(["crawl", "--config"])
        .arg(config)
        .arg("--retry-failed")
        .arg(failures)
        .output()
        .expect("run stackcrawl crawl --retry-failed")
}

/// The config is a FIFO, so `run` is held inside its config load, past its
/// first instruction but before its runtime exists, until the test writes
/// the config: the window where a SIGHUP used to kill it.
#[test]
fn sighup_while_run_is_starting_does_not_kill_it() {
    let site = FakeSite::builder().tag("a", 60).start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    let c_path = std::ffi::CString::new(config.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let text = TestConfig::new(&site, dir.path())
        .store()
        .sets("[tag_sets.s]\ntags = [\"a\"]\npages = 2\nevery = \"1h\"\n")
        .toml();

    let mut cmd = bin();
    cmd.args(["--log-format", "json", "run", "--config"])
        .arg(&config);
    let mut run = Service::from_command(cmd);
    // Opening a FIFO for writing returns once the reader has opened it.
    let (tx, rx) = mpsc::channel();
    let fifo = config.clone();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::OpenOptions::new().write(true).open(fifo));
    });
    let mut writer = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("run opened its config")
        .expect("open the FIFO");
    for _ in 0..3 {
        run.signal("-HUP");
    }
    // It may be dead already (the bug): the write then fails, which the
    // exit status below reports.
    let _ = std::io::Write::write_all(&mut writer, text.as_bytes());
    drop(writer);

    run.wait_for("pass finished");
    run.signal("-TERM");
    let status = run.wait_exit();
    assert_eq!(status, Some(0), "{status:?}: {:#?}", run.seen);
}

#[test]
fn export_into_a_pipe_closed_early_exits_0_quietly() {
    let site = FakeSite::builder().tag("a", 1000).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .fetch("burst = 5")
        .tag_set("a", &["a"], 20)
        .write();
    let db = dir.path().join("store.db");
    let run = crawl(&config, &["--store", db.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0));

    // Far more than a pipe buffer, so the writer meets the closed pipe.
    let mut export = bin()
        .args(["export", "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(export.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("question_id"), "{first}");
    drop(stdout);
    let out = export.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

/// A file the crawl would write but cannot is found before the first
/// request, named, as bad usage. Each case is one root cannot write either:
/// a directory that takes no new file (/proc), or a path under a file.
#[test]
fn every_path_the_crawl_writes_is_checked_before_the_first_request() {
    let site = FakeSite::builder().tag("a", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let afile = dir.path().join("afile");
    std::fs::write(&afile, "").unwrap();
    let under_file = |name: &str| afile.join(name).display().to_string();
    let base = || {
        TestConfig::new(&site, dir.path())
            .tag_set("a", &["a"], 2)
            .output("q.jsonl")
    };
    let cases: Vec<(&str, String, TestConfig, Vec<String>)> = vec![
        (
            "output",
            "/proc/self/q.jsonl".into(),
            base(),
            vec!["--output".into(), "/proc/self/q.jsonl".into()],
        ),
        ("failures file", under_file("f.jsonl"), base(), vec![]),
        (
            "store",
            under_file("s.db"),
            base(),
            vec!["--store".into(), under_file("s.db")],
        ),
        (
            "budget file",
            under_file("state/budget.sqlite"),
            base().fetch(format!(
                "budget_file = \"{}\"",
                under_file("state/budget.sqlite")
            )),
            vec![],
        ),
    ];
    for (what, path, config, extra) in cases {
        let mut toml = config.toml();
        if what == "failures file" {
            toml = toml.replace("[output]\n", &format!("[output]\nfailures = \"{path}\"\n"));
        }
        let file = dir.path().join("stackcrawl.toml");
        std::fs::write(&file, toml).unwrap();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let run = crawl(&file, &extra);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot write the {what} {path}")),
            "{what}: {stderr}"
        );
        assert!(site.hits().is_empty(), "{what}: {:?}", site.hits());
    }
}

/// A retry from a failures file kept somewhere else than the default path
/// consumes that file: a second retry finds nothing to fetch and so never
/// adds the same records twice.
#[test]
fn a_retry_from_a_failures_file_at_another_path_never_duplicates_records() {
    let site = FakeSite::builder()
        .tag("a", 100)
        .fault(
            "a",
            2,
            Fault::Status {
                status: 404,
                retry_after: None,
            },
        )
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .fetch("max_retries = 0")
        .tag_set("a", &["a"], 2)
        .write();
    let out = dir.path().join("q.jsonl");
    let first = crawl(&config, &[]);
    assert_eq!(first.status.code(), Some(1));
    let kept = dir.path().join("kept").join("lost-pages.jsonl");
    std::fs::create_dir(kept.parent().unwrap()).unwrap();
    std::fs::rename(dir.path().join("q.failed.jsonl"), &kept).unwrap();

    let retry = crawl_retry(&config, &kept);
    assert_eq!(
        retry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&retry.stderr)
    );
    let all: HashSet<u64> = site.questions("a").iter().map(|q| q.id).collect();
    assert_eq!(ids(&out).len(), all.len());
    assert!(!kept.exists(), "the consumed failures file is gone");

    let again = crawl_retry(&config, &kept);
    assert_ne!(again.status.code(), Some(0));
    let got = ids(&out);
    assert_eq!(got.len(), all.len(), "no record twice");
    assert_eq!(got.into_iter().collect::<HashSet<u64>>(), all);
}

/// A tag the site lists nothing for (misspelled, say) is a warning naming
/// it, and the output is still written, empty, so a reader finds a file:
/// JSONL with no line, CSV with its header.
#[test]
fn a_tag_that_lists_nothing_warns_naming_it_and_still_writes_the_output() {
    let site = FakeSite::builder().tag("pandas", 100).start();
    for (name, header) in [("q.jsonl", false), ("q.csv", true)] {
        let dir = tempfile::tempdir().unwrap();
        let config = TestConfig::new(&site, dir.path())
            .tag_set("a", &["pnadas"], 2)
            .output(name)
            .write();
        let run = crawl(&config, &[]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(0), "{stderr}");
        let warning = stderr
            .lines()
            .find(|l| l.contains("no questions: does the tag exist?"))
            .unwrap_or_else(|| panic!("no warning: {stderr}"));
        assert!(
            warning.contains("WARN") && warning.contains("pnadas"),
            "{warning}"
        );
        let text = std::fs::read_to_string(dir.path().join(name)).expect("an output file");
        if header {
            assert!(text.starts_with("site,question_id,"), "{text}");
            assert_eq!(text.lines().count(), 1, "{text}");
        } else {
            assert_eq!(text, "");
        }
    }
}

/// A loopback port nothing listens on: connections to it are refused.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A site that refuses every connection is a failure of the run (exit 1),
/// not bad usage (2), and is said once: at robots.txt when it is checked,
/// else after the pages, never as each page "lost after retries".
#[test]
fn an_unreachable_site_is_exit_1_and_said_once() {
    let url = closed_port_url();
    for site_lines in ["", "obey_robots = false"] {
        let dir = tempfile::tempdir().unwrap();
        let config = TestConfig::at(&url, dir.path())
            .site(site_lines)
            .fetch("max_retries = 1")
            .tag_set("a", &["a", "b"], 3)
            .write();
        let run = crawl(&config, &[]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{site_lines}: {stderr}");
        let said: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("ERROR") && l.contains("cannot be reached"))
            .collect();
        assert_eq!(said.len(), 1, "{site_lines}: {stderr}");
        assert!(
            !stderr.contains("lost after retries") && !stderr.contains("after 0 attempts"),
            "{site_lines}: {stderr}"
        );
        // Not a line per page and attempt either.
        assert!(
            !stderr.contains("retrying page") && !stderr.contains("page failed"),
            "{site_lines}: {stderr}"
        );
    }
}

/// `run` checks the files it writes (store, failures file, budget file)
/// before its first request too.
#[test]
fn run_checks_the_files_it_writes_before_the_first_request() {
    let site = FakeSite::builder().tag("a", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let afile = dir.path().join("afile");
    std::fs::write(&afile, "").unwrap();
    let store = afile.join("store.db").display().to_string();
    let config = TestConfig::service(&site, dir.path())
        .store_at(&store)
        .sets("[tag_sets.s]\ntags = [\"a\"]\npages = 2\nevery = \"1h\"\n")
        .write();
    let run = bin()
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("run stackcrawl run");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot write the store {store}")),
        "{stderr}"
    );
    assert!(site.hits().is_empty(), "{:?}", site.hits());
}

/// A disk that fills mid-crawl (here a file-size limit on the process,
/// which fails writes past it as a full disk does): the crawl stops at the
/// first page whose records it cannot write, says why, and exits 1, rather
/// than fetch (and spend quota on) pages it could not keep either. The
/// output keeps every page written whole, and once there is room a
/// `--retry-failed` run completes it: every question once.
#[test]
fn an_output_that_cannot_be_written_stops_the_crawl_and_a_retry_completes_it() {
    const PAGES: usize = 20;
    const FETCHERS: usize = 2;
    let site = FakeSite::builder().tag("a", 500).tag("b", 500).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .fetch(format!("fetchers = {FETCHERS}\nrate = 20.0\nburst = 5"))
        .tag_set("s", &["a", "b"], PAGES as u32 / 2)
        .write();
    let mut cmd = bin();
    cmd.args(["crawl", "--config"]).arg(&config);
    // A page of 50 questions is about 35 KB of JSON lines: the second page
    // written does not fit.
    stackcrawl_fakesite::service::limit_file_size(&mut cmd, 64 * 1024);
    let out = cmd.output().expect("run stackcrawl crawl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("could not be written, crawl stopped") && stderr.contains("File too large"),
        "{stderr}"
    );
    // The pages written, the one that could not be, and what the fetchers
    // had in hand when it failed: not the rest of the plan.
    let fetched = site.page_hits().iter().filter(|h| h.page.is_some()).count();
    assert!(
        fetched <= 2 + 2 * FETCHERS,
        "{fetched} of {PAGES} pages fetched: {stderr}"
    );
    let failures_file = dir.path().join("q.failed.jsonl");
    let failures = std::fs::read_to_string(&failures_file).unwrap();
    assert!(
        failures.lines().count() >= PAGES - fetched,
        "the pages not fetched are listed for a retry: {failures}"
    );
    // Whole pages only: every line a record, 50 to a page.
    let kept = read_jsonl(&dir.path().join("q.jsonl"));
    let done = stderr.matches("page done").count();
    assert!(done >= 1, "{stderr}");
    assert_eq!(kept.len(), 50 * done, "{stderr}");

    let retry = bin()
        .args(["crawl", "--config"])
        .arg(&config)
        .arg("--retry-failed")
        .arg(&failures_file)
        .output()
        .expect("run stackcrawl crawl --retry-failed");
    assert_eq!(
        retry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&retry.stderr)
    );
    let all = read_jsonl(&dir.path().join("q.jsonl"));
    let ids: HashSet<u64> = all.iter().map(|q| q.question_id).collect();
    assert_eq!((all.len(), ids.len()), (50 * PAGES, 50 * PAGES));
}

/// A site that accepts connections and never answers: each request waits
/// out its timeout.
fn silent_site() -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for conn in listener.incoming().take(16) {
            open.push(conn);
        }
    });
    (url, held)
}

/// SIGTERM while robots.txt is still being asked (a site that does not
/// answer, retried with backoff) stops the crawl at once as an interrupted
/// one: exit 3, every page listed for --retry-failed, nothing fetched.
/// Before, the signal waited for every robots.txt retry to time out, then
/// the crawl failed with exit 1 as if robots.txt were unreachable.
#[test]
fn sigterm_while_robots_txt_does_not_answer_interrupts_the_crawl() {
    let (url, _held) = silent_site();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::at(&url, dir.path())
        .fetch("timeout_secs = 1.0\nmax_retries = 20")
        .tag_set("a", &["a"], 3)
        .write();
    let mut crawl = Service::from_command(json_crawl(&config, &[]));
    crawl.wait_for("robots.txt fetch failed; retrying");
    crawl.signal("-TERM");
    assert_eq!(crawl.wait_exit(), Some(3), "{:#?}", crawl.seen);
    assert!(crawl.saw("crawl interrupted"), "{:#?}", crawl.seen);
    let failures = std::fs::read_to_string(dir.path().join("q.failed.jsonl")).unwrap();
    assert_eq!(
        failures.matches("\"kind\":\"interrupted\"").count(),
        3,
        "{failures}"
    );
}

/// The same for `run`: a SIGTERM while robots.txt does not answer stops
/// the service as any SIGTERM does (exit 0, the run stopped), not after
/// every retry.
#[test]
fn sigterm_while_robots_txt_does_not_answer_stops_run() {
    let (url, _held) = silent_site();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::at(&url, dir.path())
        .fetch("timeout_secs = 1.0\nmax_retries = 20")
        .store()
        .tag_set("a", &["a"], 3)
        .write();
    let mut run = Service::start(env!("CARGO_BIN_EXE_stackcrawl"), &config);
    run.wait_for("robots.txt fetch failed; retrying");
    run.signal("-TERM");
    assert_eq!(run.wait_exit(), Some(0), "{:#?}", run.seen);
    assert!(run.saw("run stopped; store flushed"), "{:#?}", run.seen);
}

/// The same while an archive's index does not answer: SIGTERM interrupts
/// the crawl at once (exit 3), rather than after every index retry.
#[test]
fn sigterm_while_an_archive_index_does_not_answer_interrupts_the_crawl() {
    let (url, _held) = silent_site();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::at("https://stackoverflow.com", dir.path())
        .fetch("timeout_secs = 1.0\nmax_retries = 20")
        .sets(format!("[archive]\nwayback_url = \"{url}\"\nrate = 30.0\n"))
        .sets("[tag_sets.past]\nsource = \"wayback\"\ntags = [\"python\"]\n")
        .write();
    let mut crawl = Service::from_command(json_crawl(&config, &[]));
    crawl.wait_for("archive index request failed; retrying");
    crawl.signal("-TERM");
    assert_eq!(crawl.wait_exit(), Some(3), "{:#?}", crawl.seen);
    assert!(crawl.saw("crawl interrupted"), "{:#?}", crawl.seen);
}

/// A page waiting out a long Retry-After is not in flight: the status line
/// counts it as retrying, and SIGTERM stops the crawl at once (exit 3, the
/// page listed for --retry-failed with the one attempt it had) rather than
/// when the drain's time for in-flight requests runs out.
#[test]
fn sigterm_while_a_page_waits_out_a_long_retry_after_interrupts_at_once() {
    let site = FakeSite::builder()
        .tag("a", 150)
        .fault("a", 2, Fault::retry_after(429, 3600))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 1\nstatus_every_secs = 1")
        .tag_set("a", &["a"], 3)
        .write();
    let mut crawl = Service::from_command(json_crawl(&config, &[]));
    crawl.wait_for("retrying page");
    // The status that counts the 429 is one the page is waiting in.
    let status = crawl.wait_until("status", |v| v["rate_limited"] == 1);
    assert_eq!(status["retrying"], 1, "{status:#}");
    crawl.signal("-TERM");
    assert_eq!(crawl.wait_exit(), Some(3), "{:#?}", crawl.seen);
    let failures = std::fs::read_to_string(dir.path().join("q.failed.jsonl")).unwrap();
    let attempts: Vec<(u64, u64)> = failures
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|f| (f["page"].as_u64().unwrap(), f["attempts"].as_u64().unwrap()))
        .collect();
    // Page 3 waited for its turn behind the pause, never sent.
    assert_eq!(attempts, [(2, 1), (3, 0)], "{failures}");
}

/// A log that cannot be written (standard error on a full disk) costs the
/// log lines, not the crawl: every record is written and the exit code is
/// the crawl's. Before, the first failed line panicked (exit 101) and the
/// output was never written.
#[test]
fn a_log_that_cannot_be_written_does_not_stop_the_crawl() {
    let site = FakeSite::builder().tag("a", 100).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .tag_set("a", &["a"], 2)
        .write();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let status = bin()
        .args(["crawl", "--config"])
        .arg(&config)
        .stderr(full)
        .status()
        .expect("run stackcrawl crawl");
    assert_eq!(status.code(), Some(0));
    assert_eq!(read_jsonl(&dir.path().join("q.jsonl")).len(), 100);
}

/// A page in flight when the crawl stops (here: records that cannot be
/// written) that then meets a long Retry-After is settled at once, not
/// after the wait: a stop other than a signal has no drain deadline, and
/// the crawl waited out the whole Retry-After before it could end.
#[test]
fn a_page_refused_after_the_crawl_stopped_does_not_wait_out_its_retry_after() {
    let site = FakeSite::builder()
        .tag("a", 100)
        .tag("b", 50)
        .fault(
            "b",
            1,
            Fault::Late(
                Duration::from_secs(1),
                Box::new(Fault::Status {
                    status: 429,
                    retry_after: Some("3600".into()),
                }),
            ),
        )
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 4\nburst = 4")
        .sets("[tag_sets.s]\ntags = [\"a\", \"b\"]\npages = 2\n")
        .write();
    let mut cmd = json_crawl(&config, &[]);
    // All four pages go out at once; the first written (about 35 KB)
    // fits, the next does not and stops the crawl while b/1 is still on
    // the wire.
    stackcrawl_fakesite::service::limit_file_size(&mut cmd, 64 * 1024);
    let mut crawl = Service::from_command(cmd);
    assert_eq!(crawl.wait_exit(), Some(1), "{:#?}", crawl.seen);
    assert!(
        crawl.saw("the page's records cannot be written: crawl stops, no further page is fetched")
    );
    assert!(
        site.page_hits()
            .iter()
            .any(|h| h.tag.as_deref() == Some("b") && h.status == 429),
        "b/1 was refused after the stop"
    );
}
