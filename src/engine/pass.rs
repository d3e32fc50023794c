//! One pass, the same for `crawl` (one pass into a sink) and `run` (passes
//! on a schedule): opened in the store, driven, its failures written, closed.

use std::time::Instant;

use tracing::{error, info};

use super::crawler::Crawler;
use super::plan::{self, Plan};
use crate::error::CrawlError;
use crate::model::FailedPage;
use crate::store::{PassTotals, StoreLocation};

/// One pass as the engine runs it, for `crawl` (one pass into a sink) and
/// `run` (passes on a schedule) alike.
pub struct PassSpec<'a> {
    /// The tag set's name; the store keeps its passes under it.
    pub name: &'a str,
    /// Whether a Newest pass may stop at pages of already-stored questions.
    pub newest: bool,
    /// The failures file lists the pages an interruption left unfetched
    /// too, so that `--retry-failed` completes the pass (`crawl`, which has
    /// no other way to resume without a store); `run` resumes from its store.
    pub list_unfetched: bool,
}

/// How a pass ended.
pub enum PassEnd {
    Finished,
    /// A shutdown request cut it short; the store keeps it open.
    Interrupted,
    /// The daily budget or the API quota ran out; it resets then.
    OutOfBudget(chrono::DateTime<chrono::Utc>),
    /// The API refused for good (bad key, bad parameter): no pass can succeed.
    Fatal(CrawlError),
}

/// What a pass did, for the command that ran it.
pub struct PassReport {
    pub end: PassEnd,
    /// Pages planned once the store's done pages were dropped.
    pub planned: usize,
    pub failures: Vec<FailedPage>,
    /// The store's totals of the pass; `None` without a store.
    pub totals: Option<PassTotals>,
}

/// The failures-file kind of a page an interrupted pass did not fetch.
pub const KIND_INTERRUPTED: &str = "interrupted";

impl Crawler {
    /// One pass over `plan`: opened in the store (dropping the pages it
    /// already did), driven, its failures file written, and closed in the
    /// store only if it reached every page. The failures file is written
    /// before the store is asked to close the pass, so a store that does not
    /// answer cannot cost the list of what is left.
    pub async fn pass(
        &mut self,
        spec: PassSpec<'_>,
        mut plan: Plan,
        status: &mut tokio::time::Interval,
    ) -> Result<PassReport, CrawlError> {
        let started = Instant::now();
        let planned = plan.len();
        let opened = if self.stored {
            Some(self.begin_pass(spec.name, spec.newest, &mut plan).await?)
        } else {
            if let Some(m) = self.monitor() {
                let per_tag = plan.pages_per_tag();
                m.pass_started(spec.name, &per_tag, &per_tag);
            }
            None
        };
        // Only a store a fleet shares has others walking the same pages.
        if matches!(self.config.store, StoreLocation::Postgres(_)) {
            plan.start_at(&self.config.fleet.name);
        }
        info!(
            worker = %self.config.fleet.name,
            tag_set = spec.name,
            pass_id = opened.as_ref().map(|p| p.pass_id),
            resumed = opened.as_ref().map(|p| p.resumed),
            incremental = opened.as_ref().map(|p| p.incremental),
            pages_planned = planned,
            pages_already_done = planned - plan.len(),
            "pass starting"
        );
        let driven = self.drive(&plan, status).await?;
        let stats = self.stats().await?;
        let mut listed = driven.failures.clone();
        if driven.interrupted && spec.list_unfetched {
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
        report_failures(&self.config.failures_path, &listed)?;
        let end = if driven.interrupted {
            PassEnd::Interrupted
        } else if let Some(f) = stats.refusal {
            PassEnd::Fatal(CrawlError::Refused {
                source_name: f.source.title(),
                tag: f.ctx.tag,
                page: f.ctx.page,
                error: Box::new(f.error),
            })
        } else if let Some(at) = stats.budget_resets_at {
            PassEnd::OutOfBudget(at)
        } else {
            PassEnd::Finished
        };
        // A pass whose pages were skipped for want of budget stays open, so
        // the next attempt resumes it rather than calling it complete.
        let finished = matches!(end, PassEnd::Finished);
        let totals = match &opened {
            Some(_) => Some(self.end_pass(finished).await?),
            None => {
                if let Some(m) = self.monitor() {
                    m.pass_ended(finished);
                }
                None
            }
        };
        if finished {
            info!(
                worker = %self.config.fleet.name,
                tag_set = spec.name,
                pass_id = opened.as_ref().map(|p| p.pass_id),
                pages = totals.as_ref().map_or(stats.done, |t| t.pages),
                questions = totals.as_ref().map(|t| t.questions),
                new = totals.as_ref().map(|t| t.new),
                updated = totals.as_ref().map(|t| t.updated),
                unchanged = totals.as_ref().map(|t| t.unchanged),
                failed = driven.failures.len(),
                incremental = opened.as_ref().map(|p| p.incremental),
                wall_secs = started.elapsed().as_secs_f64(),
                "pass finished"
            );
        } else if let Some(t) = &totals {
            error!(
                tag_set = spec.name,
                pass_id = opened.as_ref().map(|p| p.pass_id),
                pages_done = t.pages,
                "pass interrupted; the next start resumes it"
            );
        }
        Ok(PassReport {
            end,
            planned: plan.len(),
            failures: driven.failures,
            totals,
        })
    }
}

/// Writes the failures file (or clears a stale one) and says where it is.
fn report_failures(path: &std::path::Path, failures: &[FailedPage]) -> Result<(), CrawlError> {
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
