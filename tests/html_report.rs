//! `stackcrawl report --html` on a store of three passes of the fake site,
//! SQLite and PostgreSQL alike: one self-contained file (nothing it would
//! fetch), its charts present (and rendered by headless Chromium), its
//! figures those of the store.

use std::path::Path;
use std::process::Command;

use stackcrawl::engine::plan::Plan;
use stackcrawl::store::{self, StoreLocation};
use stackcrawl::{crawl, Sink};
use stackcrawl_fakesite::browser::chromium_dom;
use stackcrawl_fakesite::pg::TestDb;
use stackcrawl_fakesite::{FakeSite, TestConfig};

fn site() -> FakeSite {
    FakeSite::builder()
        .tag("python", 80)
        .tag("rust", 60)
        .start()
}

/// Three finished `crawl --store` passes; between them the site's
/// questions gain views and answers, so growth and the unanswered share
/// move.
async fn three_passes(site: &FakeSite, dir: &Path, location: &StoreLocation) {
    passes(site, dir, location, 3).await
}

/// `n` finished `crawl --store` passes, as [`three_passes`].
async fn passes(site: &FakeSite, dir: &Path, location: &StoreLocation, n: u64) {
    for pass in 0..n {
        let cfg = TestConfig::new(site, dir)
            .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
            .tag_set("a", &["python", "rust"], 2)
            .build();
        let plan = Plan::from_config(&cfg);
        let sink = Sink::create(&cfg.output, cfg.output_format).unwrap();
        let store = store::open(location).unwrap();
        let summary = crawl(cfg, plan, sink, Some(store), std::future::pending())
            .await
            .expect("crawl runs");
        assert_eq!(summary.pages_failed, 0);
        for tag in ["python", "rust"] {
            site.edit(tag, |qs| {
                for (i, q) in qs.iter_mut().enumerate() {
                    q.views += (i as u64 + 1) * 10 * (pass + 1);
                    if i % 3 == 0 {
                        q.answers += 1;
                    }
                }
            });
        }
    }
}

/// `report --store STORE --html FILE`, which must succeed; the HTML.
fn report_html(store: &str, html_path: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_stackcrawl"))
        .args(["report", "--store", store, "--html"])
        .arg(html_path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The text report still prints.
    assert!(String::from_utf8_lossy(&out.stdout).contains("python"));
    std::fs::read_to_string(html_path).unwrap()
}

/// Rows of a label and a count, from `SELECT label, count` run on the store.
type Rows = Vec<(String, u64)>;

fn sqlite_rows(path: &Path, sql: &str) -> Rows {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut stmt = db.prepare(sql).unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The sync client runs its own runtime, so it is used off the test's.
fn postgres_rows(url: &str, sql: &str) -> Rows {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        db.query(&sql, &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap()))
            .collect()
    })
    .join()
    .unwrap()
}

/// The text of every `<td class="CLASS">` in rows of the table with `id`.
fn column(doc: &scraper::Html, table: &str, class: &str) -> Vec<String> {
    let sel = scraper::Selector::parse(&format!("#{table} td.{class}")).unwrap();
    doc.select(&sel)
        .map(|c| c.text().collect::<String>().trim().to_string())
        .collect()
}

/// The report is self-contained, draws every chart and shows the store's
/// figures; `rows` runs SQL (written for both backends) on the store.
fn assert_report_shows_the_store(html: &str, rows: impl Fn(&str) -> Rows) {
    // Self-contained: nothing to fetch.
    let lower = html.to_lowercase();
    for needle in [
        "src=\"http",
        "src='http",
        "href=\"http",
        "href='http",
        "<script",
        "<link",
        "@import",
        "url(",
    ] {
        assert!(!lower.contains(needle), "{needle} in the report");
    }
    // A chart per section, and one per crawl tag's co-occurring tags.
    assert!(html.matches("<svg").count() >= 7, "{html}");
    assert!(!html.contains("chart not drawn"), "{html}");

    let doc = scraper::Html::parse_document(html);
    // Questions per crawl tag.
    let want = rows(
        "SELECT crawl_tag, COUNT(*) FROM question_crawl_tags GROUP BY crawl_tag ORDER BY crawl_tag",
    );
    assert_eq!(want, [("python".into(), 80), ("rust".into(), 60)]);
    let shown: Vec<u64> = column(&doc, "tags", "questions")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(shown, want.iter().map(|w| w.1).collect::<Vec<_>>());
    // Unanswered per pass: three passes, each saw every question, and the
    // site answered a third of them between passes.
    let want = rows(
        "SELECT CAST(pass_id AS TEXT), COUNT(CASE WHEN answers = 0 THEN 1 END) FROM snapshots
         GROUP BY pass_id ORDER BY pass_id",
    );
    assert_eq!(want.len(), 3);
    let shown: Vec<u64> = column(&doc, "passes", "unanswered")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(shown, want.iter().map(|w| w.1).collect::<Vec<_>>());
    assert!(shown[0] > shown[2], "answers came in: {shown:?}");
    // Fastest-growing: views gained first to latest snapshot, most first.
    let want = rows(
        "SELECT CAST(question_id AS TEXT), MAX(views) - MIN(views) AS g FROM snapshots
         GROUP BY site, question_id ORDER BY g DESC, question_id LIMIT 10",
    );
    let shown: Vec<u64> = column(&doc, "growth-table", "views-gained")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(shown, want.iter().map(|w| w.1).collect::<Vec<_>>());
}

#[actix::test]
async fn an_html_report_of_three_passes_is_self_contained_and_matches_the_store() {
    let site = site();
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("store.db");
    three_passes(
        &site,
        dir.path(),
        &StoreLocation::Sqlite(store_path.clone()),
    )
    .await;
    let html_path = dir.path().join("report.html");
    let html = report_html(store_path.to_str().unwrap(), &html_path);
    assert_report_shows_the_store(&html, |sql| sqlite_rows(&store_path, sql));

    // Chromium renders it, charts included.
    let url = format!("file://{}", html_path.display());
    let dom = tokio::task::spawn_blocking(move || chromium_dom(&url))
        .await
        .unwrap();
    let rendered = scraper::Html::parse_document(&dom);
    let svgs = scraper::Selector::parse("svg").unwrap();
    assert!(rendered.select(&svgs).count() >= 7, "{dom}");
    let text = scraper::Selector::parse("svg text").unwrap();
    assert!(rendered.select(&text).any(|t| t
        .text()
        .collect::<String>()
        .contains("Questions asked per day")));
}

/// The same report from a PostgreSQL store (`report --store postgres://…`).
#[actix::test]
async fn an_html_report_of_a_postgresql_store_draws_its_charts() {
    let db = TestDb::create();
    let site = site();
    let dir = tempfile::tempdir().unwrap();
    three_passes(&site, dir.path(), &StoreLocation::Postgres(db.url.clone())).await;
    let html = report_html(&db.url, &dir.path().join("report.html"));
    assert_report_shows_the_store(&html, |sql| postgres_rows(&db.url, sql));
}

/// A store of one pass: its per-pass line is a point, and where growth
/// would be the report says it needs two passes instead of an empty table.
#[actix::test]
async fn a_report_of_one_pass_draws_its_point_and_says_growth_needs_two_passes() {
    let site = site();
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("store.db");
    let location = StoreLocation::Sqlite(store_path.clone());
    passes(&site, dir.path(), &location, 1).await;
    let html = report_html(
        store_path.to_str().unwrap(),
        &dir.path().join("report.html"),
    );
    let doc = scraper::Html::parse_document(&html);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let unanswered_chart = doc
        .select(&sel("h2#unanswered + svg"))
        .next()
        .expect("the unanswered share chart");
    assert_eq!(
        unanswered_chart.select(&sel("circle")).count(),
        1,
        "one pass, one point: {html}"
    );
    let said: String = doc
        .select(&sel("#growth-empty"))
        .flat_map(|p| p.text())
        .collect();
    assert!(said.starts_with("Needs two passes"), "{html}");
    assert_eq!(doc.select(&sel("#growth-table")).count(), 0, "{html}");
}
