//! The command line as a user meets it: exit codes, `--dry-run`, `parse`.
//! Nothing here touches the network.

use std::process::{Command, Stdio};

/// Whatever a command keeps of its own (the default budget file) goes into
/// this directory, never the user's.
fn state() -> &'static std::path::Path {
    static STATE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    STATE.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn stackcrawl(args: &[&str]) -> std::process::Output {
    stackcrawl_fakesite::service::command(env!("CARGO_BIN_EXE_stackcrawl"), state())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run stackcrawl")
}

#[test]
fn dry_run_prints_every_planned_url_and_fetches_nothing() {
    let out = stackcrawl(&[
        "crawl",
        "--tag",
        "c#",
        "--tag",
        "c++",
        "--pages",
        "2",
        "--base-url",
        "http://127.0.0.1:9",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let urls: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:9/questions/tagged/c%23?tab=Newest&page=1&pagesize=50",
            "http://127.0.0.1:9/questions/tagged/c%2B%2B?tab=Newest&page=1&pagesize=50",
            "http://127.0.0.1:9/questions/tagged/c%23?tab=Newest&page=2&pagesize=50",
            "http://127.0.0.1:9/questions/tagged/c%2B%2B?tab=Newest&page=2&pagesize=50",
        ]
    );
}

#[test]
fn bad_config_exits_2_naming_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[fetch]\nrate = 45.0\n[tag_sets.a]\ntags = [\"rust\"]\n",
    )
    .unwrap();
    let out = stackcrawl(&["crawl", "--config", path.to_str().unwrap(), "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fetch.rate") && err.contains("line 2"),
        "{err}"
    );
    let out = stackcrawl(&["crawl", "--tag", "../admin", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    let out = stackcrawl(&["crawl", "--frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn parse_prints_records_of_saved_pages() {
    let out = stackcrawl(&[
        "parse",
        "tests/fixtures/so-html/tagged-python-newest-2025.html",
        "tests/fixtures/so-html/homepage-narrow-2018.html",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 15 + 96);
    assert_eq!(records[0]["question_id"], 79821892);
    // A saved file does not say its tag (no --tag), tab or page.
    for key in ["tag", "tab", "page"] {
        assert!(records[0][key].is_null(), "{key}: {}", records[0]);
    }
    assert_eq!(records[0]["url"].as_str().unwrap(), "https://stackoverflow.com/questions/79821892/how-to-automate-extraction-and-standardization-of-multilingual-name-username-dat");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("layout s-post-summary, 15 questions"), "{err}");
    assert!(
        err.contains("layout question-summary-narrow, 96 questions"),
        "{err}"
    );
}

#[test]
fn parse_reads_saved_api_responses_by_content_and_reports_layout_drift() {
    let dir = tempfile::tempdir().unwrap();
    // An API response saved under an HTML name is still an API response.
    let api = dir.path().join("saved.html");
    std::fs::copy("tests/fixtures/se-api/questions-search-php-2017.json", &api).unwrap();
    // A listing whose summaries' class the parser no longer knows.
    let drifted = dir.path().join("drifted.html");
    let html = std::fs::read_to_string("tests/fixtures/so-html/tagged-command-newest-2020.html")
        .unwrap()
        .replacen("class=\"question-summary\"", "class=\"question-card\"", 2);
    std::fs::write(&drifted, html).unwrap();
    let out = stackcrawl(&["parse", api.to_str().unwrap(), drifted.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 9 + 48);
    assert!(!err.contains("truncated"), "{err}");
    assert!(err.contains("saved.html: layout api"), "{err}");
    assert!(err.contains("ERROR"), "{err}");
    assert!(
        err.contains("read 48 question summaries of the 50 the list refers to; the layout may have changed (first unrecognised element: div.question-card)"),
        "{err}"
    );
}

#[test]
fn parse_exits_1_on_a_page_that_is_not_a_listing() {
    let out = stackcrawl(&[
        "parse",
        "tests/fixtures/so-question/question-29980798-2020.html",
        "tests/fixtures/so-html/tagged-python-newest-2013.html",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        15,
        "the listing still prints"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a listing page"));
}

#[test]
fn retry_failed_refuses_tag_and_bad_entries() {
    let dir = tempfile::tempdir().unwrap();
    let failures = dir.path().join("failed.jsonl");
    std::fs::write(
        &failures,
        r#"{"tag":"../admin","tab":"Newest","page":1,"url":"http://127.0.0.1:9/questions/admin?tab=Newest&page=1&pagesize=50","attempts":5,"kind":"server_error","error":"HTTP 500"}"#,
    )
    .unwrap();
    let retry = |extra: &[&str]| {
        let mut args = vec![
            "crawl",
            "--base-url",
            "http://127.0.0.1:9",
            "--dry-run",
            "--retry-failed",
            failures.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        stackcrawl(&args)
    };
    let out = retry(&["--tag", "rust"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--retry-failed") && err.contains("--tag"),
        "{err}"
    );

    let out = retry(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("../admin") && err.contains("line 1"), "{err}");
    assert!(out.stdout.is_empty(), "no URL planned");
}

#[test]
fn with_json_logs_a_bad_config_is_reported_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[fetch]\nrate = 45.0\n[tag_sets.a]\ntags = [\"rust\"]\n",
    )
    .unwrap();
    for command in ["crawl", "run"] {
        let out = stackcrawl(&[
            "--log-format",
            "json",
            command,
            "--config",
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.trim().is_empty(), "{command}");
        for line in err.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {line}"));
            assert_eq!(v["level"], "ERROR", "{line}");
            assert!(
                v["message"].as_str().unwrap().contains("fetch.rate"),
                "{line}"
            );
        }
    }
}

#[test]
fn every_flag_of_every_command_has_a_help_text() {
    for command in ["crawl", "run", "report", "export", "parse", "completions"] {
        let out = stackcrawl(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{command}");
        let help = String::from_utf8_lossy(&out.stdout);
        let bare: Vec<&str> = help
            .lines()
            .filter(|l| l.trim_start().starts_with('-'))
            .filter(|l| {
                // `  -q, --quiet   text`: the flag, then its help after spaces.
                let flag_and_value = l.trim_start().split("  ").next().unwrap_or("");
                l.trim() == flag_and_value.trim()
            })
            .collect();
        assert!(bare.is_empty(), "{command}: no help for {bare:?}\n{help}");
    }
}

#[test]
fn a_dry_run_on_stack_overflow_html_says_robots_txt_refuses_it_before_the_urls() {
    // Both streams in one pipe, to see what comes first.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} crawl --tag pandas --pages 2 --dry-run 2>&1",
            env!("CARGO_BIN_EXE_stackcrawl")
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let warning = text.find("robots.txt refuses").expect(&text);
    let first_url = text
        .find("https://stackoverflow.com/questions/")
        .expect(&text);
    assert!(warning < first_url, "{text}");
    assert!(text.contains("source = \"api\""), "{text}");
    // A mirror, or the API source, is not warned about.
    let mirror = stackcrawl(&[
        "crawl",
        "--tag",
        "pandas",
        "--base-url",
        "http://127.0.0.1:9",
        "--dry-run",
    ]);
    assert!(!String::from_utf8_lossy(&mirror.stderr).contains("robots.txt refuses"));
    let api = stackcrawl(&[
        "crawl",
        "--config",
        "config/stackoverflow-api.toml",
        "--dry-run",
    ]);
    assert_eq!(api.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&api.stderr).contains("robots.txt refuses"));
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = stackcrawl(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("stackcrawl") && script.contains("status-addr"),
            "{shell}: {script}"
        );
    }
    assert_eq!(stackcrawl(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn report_and_export_take_store_like_crawl_and_db_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    stackcrawl::store::Store::open(&path).unwrap();
    for flag in ["--store", "--db"] {
        let out = stackcrawl(&["report", flag, path.to_str().unwrap(), "--json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let help = String::from_utf8_lossy(&stackcrawl(&["report", "--help"]).stdout).into_owned();
    assert!(help.contains("--store") && !help.contains("--db"), "{help}");
    let out = stackcrawl(&["export"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--store STORE"));
}

/// The JSON log lines of a `crawl --config CONFIG EXTRA…` that exits 0.
fn crawl_log(config: &std::path::Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "--log-format",
        "json",
        "crawl",
        "--config",
        config.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = stackcrawl(&args);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    log.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn page_lines_give_the_page_own_time_and_new_counts_only_with_a_store() {
    use stackcrawl_fakesite::{FakeSite, TestConfig};
    let site = FakeSite::builder().tag("python", 150).start();
    let dir = tempfile::tempdir().unwrap();
    // One request a second: the third page cannot end before two seconds
    // of quota have passed, whatever its own time.
    let config = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 1\nrate = 1.0\nburst = 1")
        .tag_set("a", &["python"], 3)
        .write();
    let pages = |extra: &[&str]| -> Vec<serde_json::Value> {
        crawl_log(&config, extra)
            .into_iter()
            .filter(|v| v["message"] == "page done")
            .collect()
    };
    let without = pages(&[]);
    assert_eq!(without.len(), 3);
    for p in &without {
        assert!(p.get("new").is_none() && p.get("updated").is_none(), "{p}");
        assert!(p["elapsed_ms"].as_u64().unwrap() < 2000, "{p}");
    }
    let store = dir.path().join("s.db");
    let with = pages(&["--store", store.to_str().unwrap()]);
    assert_eq!(with.len(), 3);
    assert!(
        with.iter().all(|p| p["new"] == 50 && p["updated"] == 0),
        "{with:?}"
    );
}

/// A crawl of two requests (robots.txt and one page) at a quota of one a
/// second: its request rate is the quota's pace, never above it, however
/// short the crawl after its last request.
#[test]
fn a_tiny_crawls_request_rate_is_not_faster_than_its_quota() {
    use stackcrawl_fakesite::{FakeSite, TestConfig};
    let site = FakeSite::builder().tag("python", 50).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 1\nrate = 1.0\nburst = 1")
        .tag_set("a", &["python"], 1)
        .write();
    let finished = crawl_log(&config, &[])
        .into_iter()
        .find(|v| v["message"] == "crawl finished")
        .expect("a crawl finished line");
    assert_eq!(finished["requests"], 2, "{finished}");
    assert_eq!(finished["quota_rate"], 1.0, "{finished}");
    let rate = finished["request_rate"].as_f64().expect("a rate");
    // Requests leave no closer than the quota allows, however long each
    // one's count in the budget file took (the first takes longer), so the
    // rate is at most the quota's, but for float noise. The rate this
    // guards against was 1.747.
    assert!(rate > 0.0 && rate <= 1.0 + 1e-9, "{finished}");
}

/// One rule for every command that prints: a closed standard output (the
/// reader of `| head` is gone) ends quietly with 0; a full disk
/// (`> /dev/full`) is exit 1 in one line. Never a panic (101).
#[test]
fn a_closed_or_full_stdout_is_exit_0_quietly_or_exit_1_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    stackcrawl::store::Store::open(&db).unwrap();
    let db = db.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &[
            "crawl",
            "--tag",
            "a",
            "--pages",
            "3",
            "--base-url",
            "http://127.0.0.1:9",
            "--dry-run",
        ],
        &["report", "--store", db, "--json"],
        &["export", "--store", db, "--format", "csv"],
        &[
            "parse",
            "tests/fixtures/so-html/tagged-python-newest-2025.html",
        ],
        &["completions", "bash"],
    ];
    let run = |args: &[&str], stdout: Stdio| {
        stackcrawl_fakesite::service::command(env!("CARGO_BIN_EXE_stackcrawl"), state())
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("RUST_LOG")
            .stdout(stdout)
            .output()
            .expect("run stackcrawl")
    };
    for args in commands {
        // A pipe whose reader is gone before the command starts: every
        // write meets EPIPE, with no race against the reader.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = run(args, writer.into());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?} | head: {stderr}");
        assert!(
            !stderr.contains("ERROR") && !stderr.contains("panicked"),
            "{args:?} | head: {stderr}"
        );

        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = run(args, full.into());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} > /dev/full: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 1, "{args:?} > /dev/full: {stderr}");
        assert!(
            errors[0].contains("cannot write to standard output") && !stderr.contains("panicked"),
            "{args:?} > /dev/full: {stderr}"
        );
    }
}

/// A PostgreSQL store that refuses the connection says why in the server's
/// words (the password still hidden), and a store URL of a scheme
/// stackcrawl does not speak is refused rather than taken for a file name.
#[test]
fn a_store_error_keeps_the_server_message_and_an_unknown_scheme_is_refused() {
    let server = stackcrawl_fakesite::pg::server_url();
    let host = server
        .rsplit('@')
        .next()
        .unwrap()
        .trim_start_matches("postgres://");
    let db = format!("stackcrawl_no_such_db_{}", std::process::id());
    for (url, said) in [
        (
            format!("postgres://postgres:s3cret@{host}/{db}"),
            format!("database \"{db}\" does not exist"),
        ),
        (
            format!("postgres://stackcrawl_no_such_role:s3cret@{host}/postgres"),
            "role \"stackcrawl_no_such_role\" does not exist".to_string(),
        ),
    ] {
        let out = stackcrawl(&["report", "--store", &url]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&said), "{said}: {stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }

    let out = stackcrawl(&["export", "--store", "mysql://u:s3cret@h/db"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`mysql://` is not a store") && !stderr.contains("s3cret"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[store]\npath = \"mysql://u@h/db\"\n[tag_sets.a]\ntags = [\"rust\"]\n",
    )
    .unwrap();
    let out = stackcrawl(&["crawl", "--config", config.to_str().unwrap(), "--dry-run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("store.path") && stderr.contains("`mysql://`"),
        "{stderr}"
    );
}

/// A PostgreSQL store opened again (its schema already there) leaves the
/// log clean even with every crate's INFO lines on: the server is not
/// made to send a NOTICE about a table that exists.
#[test]
fn reopening_a_postgresql_store_logs_no_notice_from_the_server() {
    let db = stackcrawl_fakesite::pg::TestDb::create();
    for open in ["creates the schema", "finds it"] {
        let out = stackcrawl_fakesite::service::command(env!("CARGO_BIN_EXE_stackcrawl"), state())
            .env("RUST_LOG", "info")
            .args(["export", "--store", &db.url])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{open}: {log}");
        assert!(
            !log.contains("NOTICE") && !log.contains("already exists"),
            "{open}: {log}"
        );
    }
}

/// README's offline quick start: the shipped `config/fake-site.toml`,
/// pointed at a fake site on a free port instead of 8080, crawls every page
/// of both tags into `questions.jsonl` beside it.
#[test]
fn the_offline_quick_start_config_crawls_the_fake_site() {
    let site = stackcrawl_fakesite::FakeSite::builder()
        .tag("pandas", 120)
        .tag("dask", 60)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string("config/fake-site.toml").unwrap();
    assert!(shipped.contains("http://127.0.0.1:8080"), "{shipped}");
    let config = dir.path().join("fake-site.toml");
    std::fs::write(
        &config,
        shipped.replace("http://127.0.0.1:8080", &site.base_url()),
    )
    .unwrap();
    let out = stackcrawl_fakesite::service::command(env!("CARGO_BIN_EXE_stackcrawl"), dir.path())
        .current_dir(dir.path())
        .args(["crawl", "--config", "fake-site.toml"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = std::fs::read_to_string(dir.path().join("questions.jsonl")).unwrap();
    assert_eq!(records.lines().count(), 180, "every question of both tags");
    // `parse` writes its records with the same columns in the same order,
    // so a DataFrame of saved pages lines up with one of a crawl.
    let keys = |line: &str| serde_json::from_str::<Keys>(line).unwrap().0;
    let parsed = stackcrawl(&[
        "parse",
        "tests/fixtures/so-html/tagged-python-newest-2025.html",
    ]);
    assert!(parsed.status.success());
    let parsed = String::from_utf8(parsed.stdout).unwrap();
    assert_eq!(
        keys(parsed.lines().next().unwrap()),
        keys(records.lines().next().unwrap())
    );
}

/// `run` takes the same flags over its config as `crawl`: the shipped
/// offline config, unchanged, kept current from a fake site that
/// `--base-url` names.
#[test]
fn run_takes_the_base_url_and_the_rate_from_flags_too() {
    let site = stackcrawl_fakesite::FakeSite::builder()
        .tag("pandas", 120)
        .tag("dask", 60)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fake-site.toml");
    std::fs::copy("config/fake-site.toml", &config).unwrap();
    let url = site.base_url();
    let mut cmd =
        stackcrawl_fakesite::service::command(env!("CARGO_BIN_EXE_stackcrawl"), dir.path());
    cmd.current_dir(dir.path())
        .args(["--log-format", "json", "run", "--base-url", &url])
        .args(["--rate", "20", "--config", "fake-site.toml"])
        .env("RUST_LOG", "info");
    let mut svc = stackcrawl_fakesite::service::Service::from_command(cmd);
    let finished = svc.wait_for("pass finished");
    assert_eq!(finished["questions"], 180, "{finished}");
    svc.signal("-TERM");
    assert_eq!(svc.wait_exit(), Some(0));
}

/// The keys of a JSON object in the order the text has them (a
/// `serde_json::Value` may sort them).
struct Keys(Vec<String>);

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
        struct InOrder;
        impl<'de> serde::de::Visitor<'de> for InOrder {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(InOrder)
    }
}

use stackcrawl_fakesite::warc::{gzipped, http_response, record as warc_record};

/// Every saved fixture page, put into two WARC files (one plain, one
/// gzipped per record) among requests, metadata, revisits, non-listing
/// pages, a 404, a truncated record and a broken gzip member: every
/// question of every listing record comes out with its capture time and
/// the page's URL, in the files' order, and each file's counts are logged.
#[test]
fn parse_reads_listing_pages_out_of_warc_files() {
    use chrono::{DateTime, Duration, Utc};
    let pages = [
        (
            "csse-tagged-complexity-theory-newest-2014.html",
            "https://cs.stackexchange.com/questions/tagged/complexity-theory?tab=Newest",
        ),
        (
            "dbase-tagged-database-administration-newest-2014.html",
            "https://dba.stackexchange.com/questions/tagged/database-administration?sort=newest",
        ),
        (
            "electronicsse-tagged-integrated-circuit-newest-2014.html",
            "https://electronics.stackexchange.com/questions/tagged/integrated-circuit",
        ),
        ("homepage-narrow-2018.html", "https://stackoverflow.com/"),
        (
            "meta-homepage-2026-resaved.html",
            "https://meta.stackoverflow.com/",
        ),
        (
            "quantse-tagged-equities-newest-2014.html",
            "https://quant.stackexchange.com/questions/tagged/equities?tab=newest&page=2",
        ),
        (
            "questions-newest-2026-resaved.html",
            "https://stackoverflow.com/questions",
        ),
        (
            "serverfault-tagged-bash-newest-2014.html",
            "http://serverfault.com/questions/tagged/bash",
        ),
        (
            "so-home-interesting-2016.html",
            "https://stackoverflow.com/?tab=interesting",
        ),
        (
            "so-questions-active-2020.html",
            "https://stackoverflow.com/questions?tab=Active",
        ),
        (
            "so-questions-bounties-featured-2020.html",
            "https://stackoverflow.com/questions?tab=Bounties",
        ),
        (
            "so-questions-unanswered-2020.html",
            "https://stackoverflow.com/unanswered",
        ),
        (
            "so-tagged-gitlab-newest-2020.html",
            "https://stackoverflow.com/questions/tagged/gitlab?tab=Newest&page=3&pagesize=50",
        ),
        (
            "so-tagged-odoo-server-2020.html",
            "https://stackoverflow.com/questions/tagged/odoo-server",
        ),
        (
            "tagged-command-newest-2020.html",
            "https://stackoverflow.com/questions/tagged/command?tab=Newest",
        ),
        (
            "tagged-python-newest-2013.html",
            "http://stackoverflow.com/questions/tagged/python?sort=newest",
        ),
        (
            "tagged-python-newest-2025.html",
            "https://www.stackoverflow.com/questions/tagged/python",
        ),
        (
            "tagged-python-votes-2020.html",
            "https://stackoverflow.com/questions/tagged/python?tab=Votes",
        ),
        (
            "tagged-webcam-newest-2014-bounty-closed.html",
            "https://stackoverflow.com/questions/tagged/webcam?page=1",
        ),
    ];
    let fixture = |dir: &str, name: &str| {
        std::fs::read(format!(
            "{}/tests/fixtures/{dir}/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let start = DateTime::parse_from_rfc3339("2010-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let date = |i: usize| start + Duration::days(97 * i as i64) + Duration::seconds(i as i64);
    let stamp = |i: usize| date(i).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // What each page's questions must be: (id, site, tag, tab, page, seen).
    type Row = (
        u64,
        String,
        Option<String>,
        Option<String>,
        u64,
        DateTime<Utc>,
    );
    let expected = |i: usize| -> Vec<Row> {
        let (name, uri) = pages[i];
        let ctx = stackcrawl::source::archive::listing_context(uri).unwrap();
        let body = String::from_utf8(fixture("so-html", name)).unwrap();
        let listing = stackcrawl::source::Source::Html
            .read(&ctx, &body, date(i))
            .unwrap();
        assert!(!listing.questions.is_empty(), "{name}");
        listing
            .questions
            .iter()
            .map(|q| {
                let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
                (
                    q.question_id,
                    q.site.clone(),
                    opt(&q.tag),
                    opt(&q.tab),
                    q.page as u64,
                    date(i),
                )
            })
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();

    // The plain file: the even pages, each with its request and metadata.
    let mut plain = warc_record("warcinfo", "", &stamp(0), b"software: test\r\n");
    let mut want_plain = Vec::new();
    for i in (0..pages.len()).step_by(2) {
        let (name, uri) = pages[i];
        plain.extend(warc_record(
            "request",
            uri,
            &stamp(i),
            b"GET / HTTP/1.1\r\n\r\n",
        ));
        let body = http_response(
            "200 OK",
            "Content-Type: text/html; charset=utf-8\r\n",
            &fixture("so-html", name),
        );
        plain.extend(warc_record("response", uri, &stamp(i), &body));
        plain.extend(warc_record(
            "metadata",
            uri,
            &stamp(i),
            b"fetchTimeMs: 12\r\n",
        ));
        want_plain.extend(expected(i));
    }
    let listing = pages[0].1;
    plain.extend(warc_record(
        "revisit",
        listing,
        &stamp(1),
        b"HTTP/1.1 200 OK\r\n\r\n",
    ));
    let question = http_response(
        "200 OK",
        "Content-Type: text/html\r\n",
        &fixture("so-question", "question-29980798-2020.html"),
    );
    plain.extend(warc_record(
        "response",
        "https://stackoverflow.com/questions/29980798/where-does-pip-install-its-packages",
        &stamp(1),
        &question,
    ));
    plain.extend(warc_record(
        "response",
        "https://stackoverflow.com/robots.txt",
        &stamp(1),
        &http_response(
            "200 OK",
            "Content-Type: text/plain\r\n",
            b"User-agent: *\nDisallow: /\n",
        ),
    ));
    plain.extend(warc_record(
        "response",
        listing,
        &stamp(1),
        &http_response(
            "404 Not Found",
            "Content-Type: text/html\r\n",
            b"<html>gone</html>",
        ),
    ));
    plain.extend(warc_record(
        "response",
        listing,
        &stamp(1),
        &http_response("200 OK", "Content-Type: application/json\r\n", b"{}"),
    ));
    // The last record cut in the middle of its page.
    let last = warc_record(
        "response",
        listing,
        &stamp(1),
        &http_response(
            "200 OK",
            "Content-Type: text/html\r\n",
            &fixture("so-html", pages[0].0),
        ),
    );
    plain.extend_from_slice(&last[..last.len() / 2]);
    let plain_path = dir.path().join("plain.warc");
    std::fs::write(&plain_path, &plain).unwrap();

    // A saved page between the two archives.
    let saved_path = dir.path().join("saved.html");
    std::fs::write(&saved_path, fixture("so-html", pages[1].0)).unwrap();

    // The gzipped file, named as nothing in particular: the odd pages, some
    // chunked and gzip-encoded as a crawler may have kept them, and one
    // more page whose gzip member's checksum is broken.
    let mut members = vec![gzipped(&warc_record(
        "warcinfo",
        "",
        &stamp(1),
        b"software: test\r\n",
    ))];
    let mut want_gz = Vec::new();
    for i in (1..pages.len()).step_by(2) {
        let (name, uri) = pages[i];
        members.push(gzipped(&warc_record(
            "request",
            uri,
            &stamp(i),
            b"GET / HTTP/1.1\r\n\r\n",
        )));
        let page = fixture("so-html", name);
        let body = if i % 4 == 1 {
            let zipped = gzipped(&page);
            let (a, b) = zipped.split_at(zipped.len() / 3);
            let mut chunked = Vec::new();
            for part in [a, b] {
                chunked.extend(format!("{:x}\r\n", part.len()).into_bytes());
                chunked.extend_from_slice(part);
                chunked.extend_from_slice(b"\r\n");
            }
            chunked.extend_from_slice(b"0\r\n\r\n");
            http_response("200 OK", "Content-Type: text/html\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n", &chunked)
        } else {
            http_response("200 OK", "Content-Type: text/html\r\n", &page)
        };
        members.push(gzipped(&warc_record("response", uri, &stamp(i), &body)));
        want_gz.extend(expected(i));
    }
    let mut broken = gzipped(&warc_record(
        "response",
        listing,
        &stamp(2),
        &http_response(
            "200 OK",
            "Content-Type: text/html\r\n",
            &fixture("so-html", pages[0].0),
        ),
    ));
    let crc = broken.len() - 8;
    broken[crc] ^= 0xff;
    members.insert(3, broken);
    let gz_path = dir.path().join("capture.bin");
    std::fs::write(&gz_path, members.concat()).unwrap();

    let out = stackcrawl(&[
        "parse",
        "--jobs",
        "2",
        plain_path.to_str().unwrap(),
        saved_path.to_str().unwrap(),
        gz_path.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let got: Vec<Row> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().map(str::to_string);
            (
                v["question_id"].as_u64().unwrap(),
                s("site").unwrap(),
                s("tag"),
                s("tab"),
                v["page"].as_u64().unwrap_or(0),
                DateTime::parse_from_rfc3339(v["fetched_at"].as_str().unwrap())
                    .unwrap()
                    .with_timezone(&Utc),
            )
        })
        .collect();
    let saved_count = 15;
    let n = want_plain.len();
    assert_eq!(got[..n], want_plain[..], "the plain file's questions");
    assert_eq!(
        got[n + saved_count..],
        want_gz[..],
        "the gzipped file's questions"
    );
    assert_eq!(got.len(), n + saved_count + want_gz.len());
    // The URL's parts, spelled out for a few pages.
    assert!(got.contains(&(
        want_plain[0].0,
        "cs.stackexchange.com".into(),
        Some("complexity-theory".into()),
        Some("Newest".into()),
        1,
        date(0)
    )));
    let gitlab = &want_plain
        .iter()
        .find(|r| r.2.as_deref() == Some("gitlab"))
        .unwrap();
    assert_eq!((gitlab.3.as_deref(), gitlab.4), (Some("Newest"), 3));
    assert!(want_gz
        .iter()
        .any(|r| r.1 == "quant.stackexchange.com" && r.4 == 2));

    let plain_line = stderr
        .lines()
        .find(|l| l.contains("plain.warc: WARC file:"))
        .expect(&stderr);
    let questions: usize = want_plain.len();
    assert!(
        plain_line.contains(&format!(
            "37 records, 10 listing pages, {questions} questions, 0 pages unreadable, 0 summaries rejected, 0 pages with layout drift, 1 broken records, 0 broken gzip members; skipped: metadata 10, not_200 1, not_html 1, not_listing 2, request 10, revisit 1, warcinfo 1"
        )),
        "{plain_line}"
    );
    let gz_line = stderr
        .lines()
        .find(|l| l.contains("capture.bin: WARC file:"))
        .expect(&stderr);
    let questions = want_gz.len();
    assert!(
        gz_line.contains(&format!(
            "20 records, 9 listing pages, {questions} questions, 0 pages unreadable, 0 summaries rejected, 0 pages with layout drift, 1 broken records, 1 broken gzip members; skipped: request 9, warcinfo 1"
        )),
        "{gz_line}"
    );
}
