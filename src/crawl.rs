//! The `crawl` command: one pass over a plan, with robots.txt checked first,
//! a line per page, the failures file written and the summary logged. With
//! a store, the pass is kept there too and resumes after an interruption.

use std::future::Future;

use tracing::{error, info};

use crate::config::Config;
use crate::crawler::{round3, shutdown_flag, status_timer, Crawler};
use crate::error::CrawlError;
use crate::model::{FailedPage, RunSummary};
use crate::monitor::Monitor;
use crate::output::Sink;
use crate::plan::{self, Plan};
use crate::store::PassStore;
use crate::writer_lock;

/// The store's name for the pass of a one-off `crawl --store`.
pub const CRAWL_PASS: &str = "crawl";

/// The failures-file kind of a page an interrupted crawl did not fetch.
pub const KIND_INTERRUPTED: &str = "interrupted";

/// Writes the failures file (or clears a stale one) and says where it is.
pub(crate) fn report_failures(
    path: &std::path::Path,
    failures: &[FailedPage],
) -> Result<(), CrawlError> {
    plan::write_failures(path, failures)?;
    let not_fetched = failures
        .iter()
        .filter(|f| f.kind == KIND_INTERRUPTED)
        .count();
    if not_fetched > 0 {
        error!(
            failures_file = %path.display(),
            pages = failures.len(),
            not_fetched,
            "pages lost or not fetched before the interruption are listed; complete the crawl with --retry-failed"
        );
    } else if !failures.is_empty() {
        error!(
            failures_file = %path.display(),
            pages = failures.len(),
            "pages lost after their retries are listed; re-run them with --retry-failed"
        );
    }
    Ok(())
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
    mut plan: Plan,
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
    let failures_path = config.failures_path.clone();
    let mut shutdown = shutdown_flag(shutdown);
    let with_store = store.is_some();
    // A store has one writer; a second `crawl --store` or a `run` beside
    // this one is refused before anything is fetched.
    let _lock = match &store {
        Some(s) => s.path().map(writer_lock::WriterLock::acquire).transpose()?,
        None => None,
    };
    let mut crawler = Crawler::start(config, Some(sink), store)?;
    if let Some(m) = monitor {
        crawler.watch(m);
    }
    if with_store {
        let planned = plan.len();
        let pass = crawler.begin_pass(CRAWL_PASS, false, &mut plan).await?;
        info!(
            pass_id = pass.pass_id,
            resumed = pass.resumed,
            pages_already_done = planned - plan.len(),
            "store pass starting"
        );
    } else if let Some(m) = crawler.monitor() {
        let per_tag = plan.pages_per_tag();
        m.pass_started(CRAWL_PASS, &per_tag, &per_tag);
    }
    crawler.check_robots(&plan).await?;
    let mut status = status_timer(crawler.config().status_every);
    let driven = crawler.drive(&plan, &mut shutdown, &mut status).await?;
    let stats = crawler.stats().await?;
    let api_fatal = stats.api_fatal;
    // Only a crawl that reached every page closes its pass.
    let finished = !driven.interrupted && stats.budget_resets_at.is_none() && api_fatal.is_none();
    if with_store {
        crawler.end_pass(finished).await?;
    } else if let Some(m) = crawler.monitor() {
        m.pass_ended(finished);
    }
    let mut summary = crawler.finish().await?;
    // Pages are submitted a window at a time: an interrupted crawl
    // submitted fewer than it planned.
    summary.pages_planned = plan.len() as u64;
    summary.failures = driven.failures.clone();
    // An interrupted crawl lists what it did not reach beside what it
    // lost, so `--retry-failed` completes it.
    let mut listed = driven.failures;
    if driven.interrupted {
        summary.interrupted = true;
        listed.extend(
            plan.jobs()
                .zip(&driven.ended)
                .filter(|(_, &ended)| !ended)
                .map(|(j, _)| FailedPage {
                    ctx: j.ctx.clone(),
                    url: j.url.clone(),
                    attempts: 0,
                    kind: KIND_INTERRUPTED.to_string(),
                    error: "not fetched: the crawl was interrupted".to_string(),
                }),
        );
    }
    report_failures(&failures_path, &listed)?;
    log_summary(&summary);
    // Records so far are flushed and the summary logged; the run still
    // failed, and says why in the API's own words.
    if let Some(f) = api_fatal {
        return Err(CrawlError::Api {
            tag: f.ctx.tag,
            page: f.ctx.page,
            error: f.error,
        });
    }
    Ok(summary)
}

fn log_summary(s: &RunSummary) {
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
    for f in &s.failures {
        error!(tag = %f.ctx.tag, page = f.ctx.page, why = %f, "page lost after retries");
    }
    if let Some(api) = &s.api {
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
    let quota_stop = s.api.as_ref().is_some_and(|a| a.quota_resets_at.is_some());
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
        request_rate = round3(s.request_rate()),
        "{message}"
    );
}
