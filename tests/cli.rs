//! The command line as a user meets it: exit codes, `--dry-run`, `parse`.
//! Nothing here touches the network.

use std::process::Command;

fn stackcrawl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stackcrawl"))
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
