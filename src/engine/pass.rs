//! One pass, the same for `crawl` (one pass into a sink) and `run` (passes
//! on a schedule): opened in the store, driven, its failures written, closed.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use tracing::{error, info};

use super::crawler::Crawler;
use super::plan::{self, Plan};
use super::retry::RetryPolicy;
use crate::config::{Order, TagSet};
use crate::error::CrawlError;
use crate::model::FailedPage;
use crate::source::cdx::{self, discover};
use crate::source::JobError;
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
/// The failures file's kind for a page not fetched because the crawl
/// stopped when records could not be written.
pub const KIND_UNWRITTEN: &str = "not_written";

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
        // A shutdown ends the listing at once (an index that does not
        // answer waits out every retry): the pass then submits nothing.
        let mut shutdown = self.shutdown.clone();
        let unlisted = tokio::select! {
            unlisted = self.list_captures(
                spec.name,
                &mut plan,
                opened.as_ref().map(|p| (&p.done, &p.last_pages)),
            ) => unlisted,
            Ok(_) = shutdown.wait_for(|stop| *stop) => Vec::new(),
        };
        // The captures an index listed join the display's plan now.
        if let (false, Some(m)) = (plan.index_lanes().is_empty(), self.monitor()) {
            let per_tag = plan.pages_per_tag();
            m.pass_started(spec.name, &per_tag, &per_tag);
        }
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
        listed.extend(unlisted.iter().cloned());
        // Pages not fetched because the crawl stopped short are listed for
        // `--retry-failed`: after a signal, or once records could not be
        // written (the disk freed, the retry fetches them).
        let unwritable = stats
            .fatal
            .as_ref()
            .is_some_and(|f| matches!(f.error, JobError::Output(_)));
        if (driven.interrupted || unwritable) && spec.list_unfetched {
            let (kind, error) = if driven.interrupted {
                (KIND_INTERRUPTED, "not fetched: the crawl was interrupted")
            } else {
                (KIND_UNWRITTEN, "not fetched: records could not be written")
            };
            listed.extend(
                plan.jobs()
                    .zip(driven.ended.iter().zip(&driven.tried))
                    .filter(|(_, (&ended, _))| !ended)
                    .map(|(j, (_, &tried))| FailedPage {
                        ctx: j.ctx.clone(),
                        url: j.url.clone(),
                        attempts: tried,
                        kind: kind.to_string(),
                        error: error.to_string(),
                    }),
            );
        }
        report_failures(&self.config.failures_path, &listed)?;
        let end = if driven.interrupted {
            PassEnd::Interrupted
        } else if let Some(f) = stats.fatal {
            PassEnd::Fatal(match f.error {
                JobError::Output(error) => CrawlError::Unwritable {
                    tag: f.ctx.tag,
                    page: f.ctx.page,
                    error,
                },
                error => CrawlError::Refused {
                    source_name: f.source.title(),
                    tag: f.ctx.tag,
                    page: f.ctx.page,
                    error: Box::new(error),
                },
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
        let mut failures = driven.failures;
        failures.extend(unlisted);
        Ok(PassReport {
            end,
            planned: plan.len(),
            failures,
            totals,
        })
    }

    /// Asks each archive lane's index for its captures and adds them to
    /// the plan, after the bookmark (the last capture the tag set's
    /// finished passes stored) and without the ones this pass already did.
    /// A tag whose index cannot be read is a failed page of its own (the
    /// index URL, kind `index`): the next pass asks again.
    async fn list_captures(
        &self,
        pass: &str,
        plan: &mut Plan,
        stored: Option<(&Done, &LastPages)>,
    ) -> Vec<FailedPage> {
        let retry = RetryPolicy::from_config(&self.config);
        let backoff = |attempt: u32| retry.backoff(attempt, fastrand::f64());
        let mut failed = Vec::new();
        for (tag, order) in plan.index_lanes() {
            let set = archive_set(&self.config.tag_sets, pass, &tag, order);
            let (Order::Archive(archive), Some((Some(query), cap))) =
                (order, set.map(|s| (s.archive.as_ref(), s.pages as usize)))
            else {
                continue;
            };
            let after = stored
                .and_then(|(_, last)| last.get(&(tag.clone(), order.as_str().to_string())))
                .and_then(|&page| chrono::DateTime::from_timestamp(i64::from(page), 0));
            let asker = discover::Asker {
                http: &self.http,
                lane: self.pipeline.lanes.for_source(order.source()),
                settings: &self.config.archive,
                max_retries: retry.max_retries,
                backoff: &backoff,
            };
            match discover::captures(&asker, archive, query, &self.config.site, &tag, after, cap)
                .await
            {
                Ok(captures) => plan.add_captures(&tag, order, captures),
                Err(e) => {
                    error!(tag = %tag, archive = archive.as_str(), error = %e, "archive index could not be read; the next pass asks again");
                    failed.push(FailedPage {
                        ctx: cdx::context(
                            &self.config.site,
                            &self.config.base_url,
                            &tag,
                            archive,
                            0,
                        ),
                        url: e.url().unwrap_or_default().to_string(),
                        attempts: retry.max_retries + 1,
                        kind: plan::KIND_INDEX.to_string(),
                        error: e.to_string(),
                    });
                }
            }
        }
        if let Some((done, _)) = stored {
            plan.retain(|p| {
                !p.source.pages_from_index()
                    || !done.contains(&(p.tag.to_string(), p.tab.to_string(), p.page))
            });
        }
        failed
    }
}

/// The archive tag set a lane of the pass belongs to: the one the pass is
/// named after (`run` plans one at a time), else the first that has the
/// tag (`crawl` plans every set as one pass).
fn archive_set<'a>(sets: &'a [TagSet], pass: &str, tag: &str, order: Order) -> Option<&'a TagSet> {
    let has = |s: &&TagSet| s.order == order && s.tags.iter().any(|t| t == tag);
    sets.iter()
        .filter(has)
        .find(|s| s.name == pass)
        .or_else(|| sets.iter().find(has))
}

/// (tag, tab, page) done in the pass.
type Done = HashSet<(String, String, u32)>;
/// Per (tag, tab), the highest page the tag set's finished passes did.
type LastPages = HashMap<(String, String), u32>;

/// Writes the failures file (or clears a stale one) and says where it is.
fn report_failures(path: &std::path::Path, failures: &[FailedPage]) -> Result<(), CrawlError> {
    plan::write_failures(path, failures)?;
    let not_fetched = failures
        .iter()
        .filter(|f| f.kind == KIND_INTERRUPTED || f.kind == KIND_UNWRITTEN)
        .count();
    if not_fetched > 0 {
        error!(
            failures_file = %path.display(),
            pages = failures.len(),
            not_fetched,
            "pages lost or not fetched before the crawl stopped are listed; complete the crawl with --retry-failed"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};
    use crate::model::Archive;

    #[test]
    fn a_pass_asks_the_index_with_its_own_tag_sets_range() {
        let text = "[tag_sets.a]\nsource = \"wayback\"\ntags = [\"rust\"]\nfrom = \"2015\"\n\
                    [tag_sets.b]\nsource = \"wayback\"\ntags = [\"rust\"]\nfrom = \"2020\"\n";
        let c = Config::from_toml(text, "t", &Overrides::default()).unwrap();
        let order = Order::Archive(Archive::Wayback);
        let from = |pass| {
            archive_set(&c.tag_sets, pass, "rust", order)
                .and_then(|s| s.archive.as_ref()?.from)
                .map(|f| f.format("%Y").to_string())
        };
        assert_eq!(from("b").as_deref(), Some("2020"));
        assert_eq!(from("a").as_deref(), Some("2015"));
        assert_eq!(
            from("crawl").as_deref(),
            Some("2015"),
            "crawl: the first set"
        );
        assert!(archive_set(&c.tag_sets, "b", "go", order).is_none());
    }
}
