//! The live status server against a real crawl of the fake site:
//! `/status.json` and `/metrics` during the crawl and at its end, checked
//! against the crawl's own summary, and `/` rendered by headless Chromium
//! showing the per-tag figures `/status.json` gives.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use stackcrawl::config::{Config, Environment, Overrides};
use stackcrawl::engine::plan::Plan;
use stackcrawl::model::RunSummary;
use stackcrawl::observe::monitor::Monitor;
use stackcrawl::observe::status::StatusServer;
use stackcrawl::{crawl_watched, Sink, CRAWL_PASS};
use stackcrawl_fakesite::browser::chromium_dom;
use stackcrawl_fakesite::config::CRAWL_BOUND;
use stackcrawl_fakesite::{FakeSite, Fault, TestConfig};

async fn get(server: &StatusServer, path: &str) -> (String, String) {
    let r = reqwest::get(format!("http://{}{path}", server.addr))
        .await
        .expect("status server answers");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (content_type, r.text().await.expect("body"))
}

async fn status_json(server: &StatusServer) -> Value {
    let (content_type, body) = get(server, "/status.json").await;
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    serde_json::from_str(&body).expect("status.json is JSON")
}

/// `name{labels} value` lines of the Prometheus text format.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

fn site_and_config(dir: &Path) -> (FakeSite, Config) {
    let site = FakeSite::builder()
        .tag("python", 200)
        .tag("rust", 120)
        .start();
    let cfg = TestConfig::new(&site, dir)
        .fetch("fetchers = 2\nrate = 20.0\nburst = 1")
        .tag_set("a", &["python", "rust"], 4)
        .build();
    (site, cfg)
}

/// Starts a monitored crawl of `cfg` with a status server on a free port.
/// One fetcher crawling the first page of [python].
fn first_python_page(site: &FakeSite, dir: &Path) -> Config {
    TestConfig::new(site, dir)
        .fetch("fetchers = 1")
        .tag_set("a", &["python"], 1)
        .build()
}

fn start(
    cfg: Config,
) -> (
    Monitor,
    StatusServer,
    actix_rt::task::JoinHandle<Result<RunSummary, stackcrawl::CrawlError>>,
) {
    start_until(cfg, std::future::pending())
}

/// [`start`], the crawl stopping when `shutdown` resolves.
fn start_until(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + 'static,
) -> (
    Monitor,
    StatusServer,
    actix_rt::task::JoinHandle<Result<RunSummary, stackcrawl::CrawlError>>,
) {
    let monitor = Monitor::new("crawl", cfg.rate);
    let server = StatusServer::start("127.0.0.1:0".parse().unwrap(), monitor.clone())
        .expect("status server starts");
    let plan = Plan::from_config(&cfg);
    let sink = Sink::create(&cfg.output, cfg.output_format).unwrap();
    let crawl = actix_rt::spawn(crawl_watched(
        cfg,
        plan,
        sink,
        None,
        shutdown,
        Some(monitor.clone()),
    ));
    (monitor, server, crawl)
}

async fn finish(
    crawl: actix_rt::task::JoinHandle<Result<RunSummary, stackcrawl::CrawlError>>,
) -> RunSummary {
    tokio::time::timeout(CRAWL_BOUND, crawl)
        .await
        .expect("the crawl ends in bounded time")
        .expect("crawl task")
        .expect("crawl runs")
}

#[actix::test]
async fn status_json_and_metrics_follow_the_crawl_and_end_at_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (_site, cfg) = site_and_config(dir.path());
    let (monitor, server, crawl) = start(cfg);

    // During: once two pages are done (an event, not a wait), the figures
    // served are consistent with a crawl under way.
    monitor
        .wait_for(|s| s.passes.get(CRAWL_PASS).is_some_and(|p| p.pages_done >= 2))
        .await;
    let during = status_json(&server).await;
    let pass = &during["passes"][CRAWL_PASS];
    assert_eq!(pass["pages_planned"], 8, "{during:#}");
    let done = pass["pages_done"].as_u64().unwrap();
    assert!((2..=8).contains(&done), "{during:#}");
    for tag in ["python", "rust"] {
        assert_eq!(pass["tags"][tag]["pages_planned"], 4, "{during:#}");
    }
    assert_eq!(during["mode"], "crawl");
    assert_eq!(during["requests"]["quota_per_second"], 20.0);
    let (content_type, text) = get(&server, "/metrics").await;
    assert!(content_type.contains("openmetrics-text"), "{content_type}");
    assert!(metric(&text, "stackcrawl_pages_total{outcome=\"done\"}") >= 2.0);
    assert_eq!(metric(&text, "stackcrawl_quota_per_second"), 20.0);

    // At the end: exactly the crawl's own summary.
    let summary = finish(crawl).await;
    assert_eq!(summary.pages_done, 8, "{summary:?}");
    let after = status_json(&server).await;
    let pass = &after["passes"][CRAWL_PASS];
    assert_eq!(pass["pages_done"], summary.pages_done, "{after:#}");
    assert_eq!(pass["pages_failed"], summary.pages_failed);
    assert_eq!(pass["questions"], summary.questions);
    assert!(pass["finished_at"].is_string(), "{after:#}");
    assert_eq!(after["current_pass"], Value::Null);
    for (tag, t) in &summary.per_tag {
        assert_eq!(pass["tags"][tag]["questions"], t.questions, "{tag}");
        assert_eq!(pass["tags"][tag]["pages_done"], t.pages, "{tag}");
    }
    assert_eq!(after["requests"]["total"], summary.requests);
    assert_eq!(after["requests"]["retries"], summary.retries);
    assert_eq!(after["requests"]["rate_limited"], summary.rate_limited);
    assert_eq!(after["budget"]["remaining"], summary.budget_left);
    assert!(after["budget"]["resets_at"].is_string());
    assert_eq!(after["recent_pages"].as_array().unwrap().len(), 8);

    let (_, text) = get(&server, "/metrics").await;
    let counts = [
        ("stackcrawl_requests_total", summary.requests),
        ("stackcrawl_questions_total", summary.questions),
        (
            "stackcrawl_pages_total{outcome=\"done\"}",
            summary.pages_done,
        ),
        (
            "stackcrawl_pages_total{outcome=\"failed\"}",
            summary.pages_failed,
        ),
        ("stackcrawl_retries_total", summary.retries),
        ("stackcrawl_rate_limited_total", summary.rate_limited),
        ("stackcrawl_budget_remaining", summary.budget_left),
        ("stackcrawl_pass_duration_seconds_count", 1),
    ];
    for (name, want) in counts {
        assert_eq!(metric(&text, name), want as f64, "{name}\n{text}");
    }
    assert!(
        text.contains("# TYPE stackcrawl_requests counter"),
        "{text}"
    );
    server.stop().await;
}

/// A page waiting out a long Retry-After is neither queued nor in flight:
/// `/status.json` counts it apart, until a stop settles it.
#[actix::test]
async fn a_page_waiting_out_a_retry_after_is_shown_until_a_stop_settles_it() {
    let site = FakeSite::builder()
        .tag("python", 100)
        .fault("python", 1, Fault::retry_after(429, 3600))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = first_python_page(&site, dir.path());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (monitor, server, crawl) = start_until(cfg, async {
        let _ = stopped.await;
    });
    // The report that counts the 429 is the one the page is waiting in.
    tokio::time::timeout(
        CRAWL_BOUND,
        monitor.wait_for(|s| s.requests.rate_limited == 1),
    )
    .await
    .expect("the 429 is reported");
    let waiting = status_json(&server).await;
    assert_eq!(waiting["requests"]["pages_retrying"], 1, "{waiting:#}");
    let (_, text) = get(&server, "/metrics").await;
    assert_eq!(metric(&text, "stackcrawl_pages_retrying"), 1.0, "{text}");

    stop.send(()).unwrap();
    let summary = finish(crawl).await;
    assert!(summary.interrupted, "{summary:?}");
    let after = status_json(&server).await;
    assert_eq!(after["requests"]["pages_retrying"], 0, "{after:#}");
    server.stop().await;
}

#[actix::test]
async fn the_page_never_shows_the_api_key_and_the_json_has_no_key_field() {
    const KEY: &str = "SeCrEtAppKey((";
    let dir = tempfile::tempdir().unwrap();
    let site = FakeSite::builder().tag("python", 200).start();
    // A crawl that holds a key, as a user's would: nothing served may show it.
    let path = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2\nrate = 20.0\nburst = 1")
        .tag_set("a", &["python"], 2)
        .write();
    let env = Environment {
        api_key: Some(KEY.into()),
        ..Environment::default()
    };
    let cfg = Config::load(&path, &Overrides::default(), &env).unwrap();
    assert_eq!(cfg.api.key.as_ref().map(|k| k.expose()), Some(KEY));
    let (_monitor, server, crawl) = start(cfg);
    finish(crawl).await;
    let (content_type, page) = get(&server, "/").await;
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.contains("http-equiv=\"refresh\""), "refreshes itself");
    assert!(page.contains("<svg"), "the request-rate chart is drawn");
    assert!(!page.contains(KEY), "{page}");
    let (_, metrics) = get(&server, "/metrics").await;
    assert!(!metrics.contains(KEY), "{metrics}");
    let json = status_json(&server).await.to_string();
    assert!(!json.contains("key") && !json.contains(KEY), "{json}");
    server.stop().await;
}

#[actix::test]
async fn chromium_renders_the_page_with_the_per_tag_figures_of_status_json() {
    let dir = tempfile::tempdir().unwrap();
    let (_site, cfg) = site_and_config(dir.path());
    let (_monitor, server, crawl) = start(cfg);
    finish(crawl).await;
    let json = status_json(&server).await;
    let url = format!("http://{}/", server.addr);
    let dom = tokio::task::spawn_blocking(move || chromium_dom(&url))
        .await
        .unwrap();

    let doc = scraper::Html::parse_document(&dom);
    let row = scraper::Selector::parse("tr.tag").unwrap();
    let cell = |r: &scraper::ElementRef, class: &str| -> u64 {
        let sel = scraper::Selector::parse(&format!("td.{class}")).unwrap();
        let text: String = r.select(&sel).next().expect(class).text().collect();
        text.trim().parse().expect(class)
    };
    let mut shown = BTreeMap::new();
    for r in doc.select(&row) {
        let tag = r.value().attr("data-tag").unwrap().to_string();
        let set = r.value().attr("data-tag-set").unwrap();
        assert_eq!(set, CRAWL_PASS);
        shown.insert(
            tag,
            (
                cell(&r, "pages-done"),
                cell(&r, "pages-planned"),
                cell(&r, "questions"),
            ),
        );
    }
    let tags = json["passes"][CRAWL_PASS]["tags"].as_object().unwrap();
    assert_eq!(shown.len(), tags.len(), "{dom}");
    for (tag, t) in tags {
        let want = (
            t["pages_done"].as_u64().unwrap(),
            t["pages_planned"].as_u64().unwrap(),
            t["questions"].as_u64().unwrap(),
        );
        assert_eq!(shown[tag], want, "{tag}");
    }
    assert!(
        shown["python"].2 == 200 && shown["rust"].2 == 120,
        "{shown:?}"
    );
    // The chart survived the browser's parser as SVG.
    assert!(doc
        .select(&scraper::Selector::parse("svg").unwrap())
        .next()
        .is_some());
    server.stop().await;
}

#[actix::test]
async fn a_run_serves_its_passes_store_totals_and_next_pass() {
    let site = FakeSite::builder().tag("python", 120).start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::service(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .sets("[tag_sets.s]\ntags = [\"python\"]\npages = 3\nevery = \"1h\"\n")
        .build();
    let monitor = Monitor::new("run", cfg.rate);
    let server = StatusServer::start("127.0.0.1:0".parse().unwrap(), monitor.clone()).unwrap();
    let (_reload, reloads) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = actix_rt::spawn(stackcrawl::engine::run::run_watched(
        cfg,
        reloads,
        async move {
            let _ = stopped.await;
        },
        Some(monitor.clone()),
    ));
    // The pass ends and the next is scheduled: both events the run reports.
    monitor
        .wait_for(|s| {
            s.passes.get("s").is_some_and(|p| p.finished_at.is_some()) && s.next_pass.is_some()
        })
        .await;
    let status = status_json(&server).await;
    assert_eq!(status["mode"], "run");
    let pass = &status["passes"]["s"];
    assert_eq!(pass["pages_done"], 3, "{status:#}");
    assert_eq!(pass["tags"]["python"]["questions"], 120, "{status:#}");
    assert_eq!(status["store"]["questions"], 120, "{status:#}");
    assert_eq!(status["next_pass"]["tag_set"], "s");
    let (_, page) = get(&server, "/").await;
    assert!(page.contains("id=\"next-pass\""), "{page}");
    let (_, metrics) = get(&server, "/metrics").await;
    assert_eq!(metric(&metrics, "stackcrawl_store_questions"), 120.0);
    assert_eq!(
        metric(&metrics, "stackcrawl_pass_duration_seconds_count"),
        1.0
    );

    stop.send(()).unwrap();
    let totals = tokio::time::timeout(CRAWL_BOUND, run)
        .await
        .expect("run stops")
        .unwrap()
        .expect("run ends cleanly");
    assert_eq!(totals.passes, 1);
    let after = status_json(&server).await;
    assert_eq!(after["requests"]["total"], totals.requests);
    server.stop().await;
}

#[test]
fn the_status_servers_own_lines_stay_out_of_the_default_log() {
    let site = FakeSite::builder().tag("a", 50).start();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&site, dir.path())
        .tag_set("s", &["a"], 1)
        .write();
    let out = stackcrawl_fakesite::service::command(env!("CARGO_BIN_EXE_stackcrawl"), dir.path())
        .env_remove("RUST_LOG")
        .args(["crawl", "--status-addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("crawl finished"), "{log}");
    assert!(!log.contains("actix_server"), "{log}");
}

/// A page in flight when the crawl stops, whose request reached the
/// server and was answered with a retryable error during the drain, is
/// listed with the requests it had (one), not zero.
#[actix::test]
async fn a_page_answered_503_during_the_drain_lists_its_one_attempt() {
    let site = FakeSite::builder()
        .tag("python", 100)
        .fault(
            "python",
            1,
            Fault::Late(
                std::time::Duration::from_secs(3),
                Box::new(Fault::Status {
                    status: 503,
                    retry_after: None,
                }),
            ),
        )
        .start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = first_python_page(&site, dir.path());
    let failures_path = cfg.failures_path.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (_monitor, server, crawl) = start_until(cfg, async {
        let _ = stopped.await;
    });
    // The request is counted (sent) while its answer is 3 s away.
    site.until_page_hits(1).await;
    stop.send(()).unwrap();
    let summary = finish(crawl).await;
    assert!(summary.interrupted, "{summary:?}");
    assert_eq!(site.page_hits().len(), 1, "one request reached the server");
    let failures = std::fs::read_to_string(&failures_path).unwrap();
    let attempts: Vec<u64> = failures
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["attempts"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(attempts, [1], "{failures}");
    server.stop().await;
}
