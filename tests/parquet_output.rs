//! The Parquet output read back: every saved fixture page's questions
//! through the crawl's sink, a crawl of the fake site with `--output
//! x.parquet`, and (where Python has pandas, pyarrow and Dask) each export
//! format read by pandas and Dask with the documented recipes, dtypes
//! checked. The schema itself is asserted in `src/store/parquet.rs`.

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Utc};
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use stackcrawl::engine::plan::Plan;
use stackcrawl::model::{PageContext, Question};
use stackcrawl::source::html::clean::clean_page;
use stackcrawl::source::html::parse::parse_listing;
use stackcrawl::store::parquet::read_questions;
use stackcrawl::store::{self, OutputFormat, StoreLocation};
use stackcrawl::{crawl, Sink};
use stackcrawl_fakesite::{FakeSite, TestConfig};

/// Every saved listing page, each as one page's records.
fn fixture_pages() -> Vec<Vec<Question>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/so-html");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    names.sort();
    names
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let html = std::fs::read_to_string(path).unwrap();
            let page = parse_listing(&html).unwrap();
            let ctx = PageContext {
                site: "stackoverflow.com".into(),
                base_url: "https://stackoverflow.com".into(),
                tag: "saved".into(),
                tab: "Newest".into(),
                page: i as u32 + 1,
            };
            clean_page(&page, &ctx, DateTime::<Utc>::UNIX_EPOCH).questions
        })
        .collect()
}

#[test]
fn the_saved_pages_come_back_from_parquet_field_for_field() {
    let pages = fixture_pages();
    let written: Vec<Question> = pages.iter().flatten().cloned().collect();
    assert_eq!(pages.len(), 19);
    assert_eq!(written.len(), 678);
    // The fixtures hold what the schema must carry: nulls and values in
    // nullable columns, bounties, closed questions, Advice posts.
    assert!(written.iter().any(|q| q.bounty.is_some()));
    assert!(written.iter().any(|q| q.author_reputation.is_none()));
    assert!(written.iter().any(|q| q.answered_at.is_some()));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved.parquet");
    let mut sink = Sink::create(&path, OutputFormat::Parquet).unwrap();
    for page in &pages {
        sink.write_page(page).unwrap();
    }
    assert!(!path.exists(), "the output appears only when finished");
    assert!(sink.finish().unwrap());
    assert!(!sink.partial_path().exists());

    let back = read_questions(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(back.len(), written.len());
    for (b, w) in back.iter().zip(&written) {
        assert_eq!(b, w, "question {}", w.question_id);
    }
}

#[test]
fn a_retry_adds_to_a_parquet_output_by_rewriting_it() {
    let pages = fixture_pages();
    let (first, retried) = pages.split_at(15);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    let mut sink = Sink::create(&path, OutputFormat::Parquet).unwrap();
    for page in first {
        sink.write_page(page).unwrap();
    }
    sink.finish().unwrap();
    let before = std::fs::read(&path).unwrap();

    // A retry that gets nothing leaves the file as it was.
    let mut sink = Sink::append(&path, OutputFormat::Parquet).unwrap();
    sink.write_page(&[]).unwrap();
    assert!(!sink.finish().unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let mut sink = Sink::append(&path, OutputFormat::Parquet).unwrap();
    for page in retried {
        sink.write_page(page).unwrap();
    }
    // Until the retry ends, the output is the first run's, whole.
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(sink.finish().unwrap());
    assert!(!sink.partial_path().exists());

    let back = read_questions(std::fs::File::open(&path).unwrap()).unwrap();
    let want: Vec<Question> = pages.iter().flatten().cloned().collect();
    assert_eq!(back, want);
    // The first run's row group is kept as it was, the retry's follows.
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let groups: Vec<i64> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    let first_rows = first.iter().map(Vec::len).sum::<usize>() as i64;
    assert_eq!(groups, [first_rows, want.len() as i64 - first_rows]);
}

#[test]
fn a_parquet_file_of_other_rows_is_not_added_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.parquet");
    let store =
        store::open(&StoreLocation::parse(&dir.path().join("s.db").display().to_string()).unwrap())
            .unwrap();
    store
        .export(
            &mut std::fs::File::create(&path).unwrap(),
            OutputFormat::Parquet,
            true,
        )
        .unwrap();
    let err = Sink::append(&path, OutputFormat::Parquet)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("not a question's"), "{err}");

    std::fs::write(&path, "not parquet").unwrap();
    assert!(Sink::append(&path, OutputFormat::Parquet).is_err());
}

fn site() -> FakeSite {
    FakeSite::builder()
        .tag("pandas", 120)
        .tag("dask", 60)
        .start()
}

#[actix::test]
async fn a_crawl_writes_its_records_to_x_parquet() {
    let site = site();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .tag_set("a", &["pandas", "dask"], 3)
        .output("x.parquet")
        .build();
    assert_eq!(cfg.output_format, OutputFormat::Parquet);
    let out = cfg.output.clone();
    let location = StoreLocation::parse(&dir.path().join("s.db").display().to_string()).unwrap();
    let plan = Plan::from_config(&cfg);
    let sink = Sink::create(&cfg.output, cfg.output_format).unwrap();
    let summary = crawl(
        cfg,
        plan,
        sink,
        Some(store::open(&location).unwrap()),
        std::future::pending(),
    )
    .await
    .expect("crawl runs");
    assert_eq!(summary.questions, 180);

    let mut records = read_questions(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(records.len(), 180);
    for tag in ["pandas", "dask"] {
        for (i, served) in site.questions(tag).iter().enumerate() {
            let r = records
                .iter()
                .find(|r| r.question_id == served.id)
                .unwrap_or_else(|| panic!("{tag} {}", served.id));
            assert_eq!(r.title, served.title);
            assert_eq!(r.votes, served.votes);
            assert_eq!(r.views, served.views);
            assert_eq!(r.tags, served.tags);
            assert_eq!(r.author_reputation, Some(served.reputation));
            assert_eq!(r.asked_at, Some(served.asked));
            assert_eq!((r.tag.as_str(), r.page as usize), (tag, i / 50 + 1));
        }
    }

    // `export --format parquet` is the same records, fetched_at included
    // (to the microsecond the file keeps).
    let exported = dir.path().join("e.parquet");
    let out = Command::new(env!("CARGO_BIN_EXE_stackcrawl"))
        .args(["export", "--format", "parquet", "--store"])
        .arg(dir.path().join("s.db"))
        .arg("--output")
        .arg(&exported)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = store::open_read_only(&location).unwrap();
    let mut from_store = read_questions(std::fs::File::open(&exported).unwrap()).unwrap();
    records.sort_by_key(|r| r.question_id);
    from_store.sort_by_key(|r| r.question_id);
    assert_eq!(from_store, records);

    // A resumed `crawl --store` rewrites its output from the pass's
    // records in the store, through the same partial file and rename.
    let resumed = dir.path().join("resumed.parquet");
    let mut sink = Sink::create(&resumed, OutputFormat::Parquet).unwrap();
    let n = sink
        .replace_with(|w, format| reader.export_pass(1, w, format))
        .unwrap();
    assert_eq!(n, 180);
    let mut rewritten = read_questions(std::fs::File::open(&resumed).unwrap()).unwrap();
    rewritten.sort_by_key(|r| r.question_id);
    assert_eq!(rewritten, records);

    python_reads_every_format(reader.as_ref(), dir.path());
}

/// The Python that the check runs: `python3` if it has pandas, pyarrow
/// and Dask, or `STACKCRAWL_PYTHON` (a venv's, say), which must have them:
/// a Python named for the check that cannot run it is a failure, not a
/// skip.
fn python_with_dataframes() -> Option<String> {
    let named = std::env::var("STACKCRAWL_PYTHON").ok();
    let python = named.clone().unwrap_or_else(|| "python3".into());
    let out = Command::new(&python)
        .args(["-c", "import pandas, pyarrow, dask.dataframe"])
        .output();
    let ok = out.as_ref().is_ok_and(|o| o.status.success());
    if !ok && named.is_some() {
        panic!("STACKCRAWL_PYTHON={python} cannot import pandas, pyarrow and dask: {out:?}");
    }
    ok.then_some(python)
}

/// Each export format of `store`, read by pandas and by Dask as
/// docs/outputs.md says to, every column's dtype checked
/// (tests/python/read_outputs.py).
fn python_reads_every_format(store: &dyn store::PassStore, dir: &Path) {
    let Some(python) = python_with_dataframes() else {
        eprintln!(
            "SKIPPED the pandas and Dask reads: no Python with pandas, pyarrow and dask \
             (set STACKCRAWL_PYTHON)"
        );
        return;
    };
    let mut paths = Vec::new();
    for (format, name) in [
        (OutputFormat::Jsonl, "e.jsonl"),
        (OutputFormat::Csv, "e.csv"),
        (OutputFormat::Parquet, "e.parquet"),
    ] {
        let path = dir.join(name);
        store
            .export(&mut std::fs::File::create(&path).unwrap(), format, false)
            .unwrap();
        paths.push(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_outputs.py");
    let out = Command::new(python)
        .arg(script)
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.matches(" ok ").count(), 6, "{said}");
}
