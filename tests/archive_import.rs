//! `stackcrawl parse --store STORE FILE…` on WARC files built from the
//! saved fixture pages, captured years apart, SQLite and PostgreSQL alike:
//! every question goes in as a snapshot at its capture time, importing the
//! files again adds nothing, `export --history` shows the past, and
//! `report --html` draws a tag's questions and a question's views over the
//! years the captures span.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use stackcrawl_fakesite::pg::TestDb;
use stackcrawl_fakesite::warc::{gzipped, http_response, record};

/// The years the python listing is captured in.
const YEARS: [i32; 4] = [2013, 2015, 2017, 2019];

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/so-html/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn capture_time(i: usize) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(YEARS[i], 3, 4, 5, 6, 7).unwrap()
}

/// The 2013 python listing as captured in `YEARS[i]`: every question's
/// views (the exact figure in the `title`) times `i + 1`, so each
/// question's views grow over the years.
fn python_page(i: usize) -> String {
    let mut page = fixture("tagged-python-newest-2013.html");
    let mut out = String::new();
    while let Some(at) = page.find("title=\"") {
        out.push_str(&page[..at + 7]);
        page = page[at + 7..].to_string();
        let digits: String = page.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && page[digits.len()..].starts_with(" views\"") {
            let views: u64 = digits.parse().unwrap();
            out.push_str(&(views * (i as u64 + 1)).to_string());
            page = page[digits.len()..].to_string();
        }
    }
    out.push_str(&page);
    out
}

fn response(body: &str) -> Vec<u8> {
    http_response(
        "200 OK",
        "Content-Type: text/html; charset=utf-8\r\n",
        body.as_bytes(),
    )
}

/// Two WARC files: the python listing's four captures spread over both
/// (one file plain, one gzipped per record), among a request, metadata, a
/// revisit and a question page; the 2020 command listing in the second.
fn warc_files(dir: &Path) -> Vec<PathBuf> {
    let uri = "https://stackoverflow.com/questions/tagged/python?tab=Newest";
    let mut plain = Vec::new();
    let mut gz = Vec::new();
    for i in 0..YEARS.len() {
        let date = capture_time(i).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let file = if i % 2 == 0 { &mut plain } else { &mut gz };
        let records = [
            record(
                "request",
                uri,
                &date,
                b"GET /questions/tagged/python HTTP/1.1\r\n\r\n",
            ),
            record("response", uri, &date, &response(&python_page(i))),
            record("metadata", uri, &date, b"via: test"),
            record("revisit", uri, &date, b""),
            record(
                "response",
                "https://stackoverflow.com/questions/1/a-question",
                &date,
                &response("<html></html>"),
            ),
        ];
        for r in records {
            if i % 2 == 0 {
                file.extend(r);
            } else {
                file.extend(gzipped(&r));
            }
        }
    }
    gz.extend(gzipped(&record(
        "response",
        "https://stackoverflow.com/questions/tagged/command?tab=Newest",
        "2020-06-01T00:00:00Z",
        &response(&fixture("tagged-command-newest-2020.html")),
    )));
    let paths = vec![dir.join("a.warc"), dir.join("b.warc.gz")];
    std::fs::write(&paths[0], plain).unwrap();
    std::fs::write(&paths[1], gz).unwrap();
    paths
}

fn stackcrawl(args: &[&str], files: &[PathBuf]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_stackcrawl"))
        .args(args)
        .args(files)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The questions of the python listing, and of the command one.
fn listed(name: &str, uri: &str) -> Vec<u64> {
    let ctx = stackcrawl::source::archive::listing_context(uri).unwrap();
    stackcrawl::source::Source::Html
        .read(&ctx, &fixture(name), Utc::now())
        .unwrap()
        .questions
        .iter()
        .map(|q| q.question_id)
        .collect()
}

fn imports_years_of_captures_once_and_reports_over_them(store: &str, dir: &Path) {
    let files = warc_files(dir);
    let python = listed(
        "tagged-python-newest-2013.html",
        "https://stackoverflow.com/questions/tagged/python",
    );
    let command = listed(
        "tagged-command-newest-2020.html",
        "https://stackoverflow.com/questions/tagged/command",
    );
    assert!(python.len() >= 15 && !command.is_empty());

    let first = stackcrawl(&["parse", "--store", store], &files);
    assert!(
        first.stdout.is_empty(),
        "records go to the store, not stdout"
    );
    let export = |history: bool| -> Vec<Value> {
        let mut args = vec!["export", "--store", store];
        if history {
            args.push("--history");
        }
        String::from_utf8(stackcrawl(&args, &[]).stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let history = export(true);
    // Every python question once per capture year, at its capture time,
    // with that year's views; every command question at its one capture.
    assert_eq!(history.len(), python.len() * YEARS.len() + command.len());
    let pass = history[0]["pass_id"].clone();
    assert!(
        history.iter().all(|r| r["pass_id"] == pass),
        "one import, one pass"
    );
    let id = python[0];
    let seen: Vec<(String, u64)> = history
        .iter()
        .filter(|r| r["question_id"] == id)
        .map(|r| {
            (
                r["seen_at"].as_str().unwrap().to_string(),
                r["views"].as_u64().unwrap(),
            )
        })
        .collect();
    let base = seen[0].1;
    let want: Vec<(String, u64)> = (0..YEARS.len())
        .map(|i| {
            (
                capture_time(i).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                base * (i as u64 + 1),
            )
        })
        .collect();
    assert_eq!(seen, want);
    // The latest state is the newest capture's.
    let latest = export(false);
    assert_eq!(latest.len(), python.len() + command.len());
    let q = latest.iter().find(|q| q["question_id"] == id).unwrap();
    assert_eq!(q["views"].as_u64(), Some(base * YEARS.len() as u64));
    assert_eq!(q["fetched_at"], "2019-03-04T05:06:07Z");

    // The same files again add nothing: no snapshot, no pass.
    let again = stackcrawl(&["parse", "--store", store], &files);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("captures_imported=0"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(export(true), history);

    let html_path = dir.join("report.html");
    stackcrawl(
        &["report", "--store", store, "--html"],
        std::slice::from_ref(&html_path),
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        html.contains("<td>archive (imported)</td>"),
        "the passes table says so"
    );
    let doc = scraper::Html::parse_document(&html);
    let cells = |sel: &str| -> Vec<Vec<String>> {
        let rows = scraper::Selector::parse(&format!("{sel} tr")).unwrap();
        let td = scraper::Selector::parse("td").unwrap();
        doc.select(&rows)
            .map(|r| {
                r.select(&td)
                    .map(|c| c.text().collect())
                    .collect::<Vec<String>>()
            })
            .filter(|r| !r.is_empty())
            .collect()
    };
    // A tag's questions over the years: python at each capture day.
    let seen = cells("#seen-per-day");
    let python_days: Vec<(String, String)> = seen
        .iter()
        .filter(|r| r[0] == "python")
        .map(|r| (r[1].clone(), r[2].clone()))
        .collect();
    let want: Vec<(String, String)> = (0..YEARS.len())
        .map(|i| {
            (
                capture_time(i).format("%Y-%m-%d").to_string(),
                python.len().to_string(),
            )
        })
        .collect();
    assert_eq!(python_days, want);
    // A question's views over the years: its line has a point per capture.
    // (The fastest-growing ones are drawn: every python question grew.)
    let views = cells("#views-over-time-table");
    assert!(!views.is_empty());
    let top = &views[0][0];
    assert!(python.iter().any(|id| id.to_string() == *top));
    let years: Vec<&str> = views
        .iter()
        .filter(|r| r[0] == *top)
        .map(|r| &r[1][..4])
        .collect();
    assert_eq!(years, ["2013", "2015", "2017", "2019"]);
    // Both charts are drawn, and their axes run over the years.
    for section in ["seen", "views-over-time"] {
        let svg = svg_after(&html, &format!("id=\"{section}\""));
        // The x labels are dates (YYYY-MM-DD), each on a line of its own.
        let labelled: Vec<i32> = (2010..2030)
            .filter(|y| svg.contains(&format!("\n{y}-")))
            .collect();
        assert!(
            labelled.first() <= Some(&2014) && labelled.last() >= Some(&2017),
            "{section}: the axis labels {labelled:?} span the years: {svg}"
        );
        // A line has a point per capture year, across the chart.
        let xs: Vec<f64> = svg
            .split("stroke-width=\"2\" points=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(|points| {
                points
                    .split_whitespace()
                    .map(|p| p.split(',').next().unwrap().parse().unwrap())
                    .collect::<Vec<f64>>()
            })
            .max_by_key(Vec::len)
            .unwrap_or_default();
        assert!(xs.len() >= YEARS.len(), "{section}: {xs:?}");
        assert!(xs[xs.len() - 1] - xs[0] > 400.0, "{section}: {xs:?}");
    }
}

/// The `<svg>` element of the section that `marker` opens.
fn svg_after<'a>(html: &'a str, marker: &str) -> &'a str {
    let section = &html[html.find(marker).unwrap()..];
    let start = section.find("<svg").unwrap();
    let end = section.find("</svg>").unwrap();
    assert!(start < end, "{marker}: no chart");
    &section[start..end]
}

#[test]
fn warc_import_into_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    imports_years_of_captures_once_and_reports_over_them(store.to_str().unwrap(), dir.path());
}

#[test]
fn warc_import_into_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create();
    imports_years_of_captures_once_and_reports_over_them(&db.url, dir.path());
}

/// A saved page goes in at its file's modification time, once per time:
/// the same file again adds nothing, the file saved anew (a later time)
/// adds its figures. A SQLite store another process writes is refused.
#[test]
fn saved_pages_import_at_their_file_time_and_a_held_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let store = store.to_str().unwrap();
    let page = dir.path().join("python.html");
    std::fs::write(&page, fixture("tagged-python-newest-2013.html")).unwrap();
    let save_at = |y: i32| {
        let t = Utc.with_ymd_and_hms(y, 1, 2, 3, 4, 5).unwrap();
        let file = std::fs::File::options().write(true).open(&page).unwrap();
        file.set_modified(t.into()).unwrap();
    };
    let args = ["parse", "--store", store, "--tag", "python"];
    let snapshots = || -> Vec<String> {
        String::from_utf8(stackcrawl(&["export", "--store", store, "--history"], &[]).stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["seen_at"].to_string())
            .collect()
    };
    save_at(2016);
    stackcrawl(&args, std::slice::from_ref(&page));
    stackcrawl(&args, std::slice::from_ref(&page));
    let once = snapshots();
    assert_eq!(once.len(), 15);
    assert!(
        once.iter().all(|t| t == "\"2016-01-02T03:04:05Z\""),
        "{once:?}"
    );
    save_at(2017);
    stackcrawl(&args, std::slice::from_ref(&page));
    assert_eq!(snapshots().len(), 30);

    let _held = stackcrawl::store::writer_lock::WriterLock::acquire(Path::new(store)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stackcrawl"))
        .args(args)
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another stackcrawl process"));
}
