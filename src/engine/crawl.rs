//! The `crawl` command: one pass over a plan, with robots.txt checked first,
//! a line per page, the failures file written and the summary logged. With
//! a store, the pass is kept there too and resumes after an interruption.

use std::future::Future;

use tracing::{error, info};

use crate::config::Config;
use crate::engine::clock::status_timer;
use crate::engine::crawler::{round3, shutdown_flag, Crawler};
use crate::engine::pass::{PassEnd, PassSpec};
use crate::engine::plan::Plan;
use crate::error::CrawlError;
use crate::model::RunSummary;
use crate::observe::monitor::Monitor;
use crate::source::fetch::FetchError;
use crate::store::output::Sink;
use crate::store::writable::{self, NotWritable};
use crate::store::writer_lock;
use crate::store::{PassStore, StoreLocation};

/// The store's name for the pass of a one-off `crawl --store`.
pub const CRAWL_PASS: &str = "crawl";

/// Checks every file a `crawl` (with `output`) or a `run` (with `output`
/// when its config names one) will write, before its first request: the output and the `.partial` file
/// beside it, the failures file, a SQLite store and the budget file.
pub fn check_written_paths(
    config: &Config,
    output: bool,
    store: Option<&StoreLocation>,
) -> Result<(), NotWritable> {
    if output {
        writable::check("output", &config.output)?;
    }
    writable::check("failures file", &config.failures_path)?;
    if let Some(path) = store.and_then(StoreLocation::sqlite_path) {
        writable::check("store", path)?;
    }
    writable::check("budget file", &config.budget_file)
}

/// One pass over `plan`: the `crawl` command. Checks robots.txt, logs a
/// line per page as it completes and a status line periodically, writes
/// the failures file, and returns the summary. When `shutdown` resolves, no
/// further pages are handed out and in-flight pages finish.
///
/// With a `store`, the records are kept there too, as one pass named
/// [`CRAWL_PASS`]: a crawl cut short (a crash, a signal) leaves the pass
/// open, and the next `crawl --store` resumes it without fetching its done
/// pages again.
pub async fn crawl(
    config: Config,
    plan: Plan,
    sink: Sink,
    store: Option<Box<dyn PassStore>>,
    shutdown: impl Future<Output = ()> + 'static,
) -> Result<RunSummary, CrawlError> {
    crawl_watched(config, plan, sink, store, shutdown, None).await
}

/// [`crawl`], reporting to `monitor` (the status page, the progress
/// display) as it goes.
pub async fn crawl_watched(
    config: Config,
    plan: Plan,
    sink: Sink,
    store: Option<Box<dyn PassStore>>,
    shutdown: impl Future<Output = ()> + 'static,
    monitor: Option<Monitor>,
) -> Result<RunSummary, CrawlError> {
    info!(
        pages = plan.len(),
        fetchers = config.fetchers,
        rate = config.rate,
        burst = config.burst,
        base_url = %config.base_url,
        output = %sink.path().display(),
        "crawl starting"
    );
    let shutdown = shutdown_flag(shutdown);
    // A store has one writer; a second `crawl --store` or a `run` beside
    // this one is refused before anything is fetched.
    let _lock = match &store {
        Some(s) => s.path().map(writer_lock::WriterLock::acquire).transpose()?,
        None => None,
    };
    let mut crawler = Crawler::start(config, Some(sink), store, shutdown).await?;
    if let Some(m) = monitor {
        crawler.watch(m);
    }
    crawler.check_robots(&plan).await?;
    let mut status = status_timer(crawler.config().status_every);
    let spec = PassSpec {
        name: CRAWL_PASS,
        newest: false,
        list_unfetched: true,
    };
    let mut pass = crawler.pass(spec, plan, &mut status).await?;
    let quota = (crawler.config().rate, crawler.config().burst);
    let mut summary = match (crawler.finish().await, pass.end) {
        (Ok(summary), end) => {
            pass.end = end;
            summary
        }
        // Records that could not be written cannot be flushed either: the
        // page that met the error first says what stopped the crawl.
        (Err(flush), PassEnd::Fatal(e @ CrawlError::Unwritable { .. })) => {
            error!(error = %flush, "the output could not be completed either");
            return Err(e);
        }
        (Err(e), _) => return Err(e),
    };
    // Pages are submitted a window at a time: an interrupted crawl
    // submitted fewer than it planned.
    summary.pages_planned = pass.planned as u64;
    summary.failures = pass.failures;
    summary.interrupted = matches!(pass.end, PassEnd::Interrupted);
    log_summary(&summary, quota);
    // Records so far are flushed and the summary logged; the run still
    // failed, and says why in the API's own words.
    if let PassEnd::Fatal(e) = pass.end {
        return Err(e);
    }
    Ok(summary)
}

/// The pages lost. When not one page was fetched and every page tried
/// failed to connect, the site cannot be reached: that is said once, not as
/// each page's error. A page never requested (not reached after an earlier
/// page of its tag was lost, interrupted) was not lost after retries, and
/// says why it was not fetched.
fn log_failures(s: &RunSummary) {
    let tried: Vec<_> = s.failures.iter().filter(|f| f.attempts > 0).collect();
    let connect = FetchError::Connect(String::new()).kind();
    if s.pages_done == 0 && !tried.is_empty() && tried.iter().all(|f| f.kind == connect) {
        let f = tried[0];
        error!(
            url = %f.url,
            pages_failed = s.failures.len(),
            why = %f.error,
            "the site cannot be reached: no page was fetched"
        );
        return;
    }
    for f in &s.failures {
        if f.attempts == 0 {
            error!(tag = %f.ctx.tag, page = f.ctx.page, kind = %f.kind, why = %f.error, "page not fetched");
        } else {
            error!(tag = %f.ctx.tag, page = f.ctx.page, why = %f, "page lost after retries");
        }
    }
}

/// The crawl's last lines; `(rate, burst)` is the quota its request rate
/// is held against.
fn log_summary(s: &RunSummary, (rate, burst): (f64, u32)) {
    for (tag, t) in &s.per_tag {
        info!(
            tag = %tag,
            pages = t.pages,
            questions = t.questions,
            views = t.views,
            votes = t.votes,
            answers = t.answers,
            unanswered_share = round3(t.unanswered_share()),
            "tag totals"
        );
    }
    log_failures(s);
    if let Some(api) = &s.quota {
        info!(
            api_requests = api.requests,
            api_backoffs = api.backoffs,
            api_throttle_violations = api.throttle_violations,
            api_quota_remaining = api.quota_remaining,
            api_quota_max = api.quota_max,
            "API usage"
        );
        if let Some(at) = api.quota_resets_at {
            error!(
                resets_at = %at.to_rfc3339(),
                quota_remaining = api.quota_remaining,
                pages_skipped = s.pages_skipped,
                "stopped: the API quota ran out; it resets at {}",
                at.to_rfc3339()
            );
        }
    }
    // An API quota stop also sets budget_resets_at (so the exit code says
    // "incomplete"); it was reported above in its own words.
    let quota_stop = s
        .quota
        .as_ref()
        .is_some_and(|a| a.quota_resets_at.is_some());
    if let Some(at) = s.budget_resets_at.filter(|_| !quota_stop) {
        error!(resets_at = %at.to_rfc3339(), pages_skipped = s.pages_skipped, "stopped: the daily request budget ran out");
    }
    let message = if s.interrupted {
        "crawl interrupted"
    } else {
        "crawl finished"
    };
    info!(
        pages_planned = s.pages_planned,
        pages_done = s.pages_done,
        pages_failed = s.pages_failed,
        pages_skipped = s.pages_skipped,
        questions = s.questions,
        duplicates_dropped = s.duplicates_dropped,
        rejected = s.rejected,
        retries = s.retries,
        rate_limited = s.rate_limited,
        requests = s.requests,
        budget_left = s.budget_left,
        wall_secs = round3(s.wall_time.as_secs_f64()),
        request_rate = s.request_rate(burst).map(round3),
        quota_rate = rate,
        "{message}"
    );
}
