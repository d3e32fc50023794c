//! Aggregator: receives each page's cleaned `Records`, drops questions the
//! run already recorded, writes the rest to the sink, keeps running totals
//! and answers with the page's `PageReport`. `Flush` ends the run's output.
//!
//! It runs on its own arbiter so that file writes stay off the fetchers'
//! event loop.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use actix::{Actor, Context, Handler, Message};
use tracing::warn;

use crate::actors::cleaner::CleanedListing;
use crate::model::{PageReport, TagTotals};
use crate::output::{Sink, SinkError};
use crate::plan::PageJob;

#[derive(Debug, Message)]
#[rtype(result = "Result<PageReport, SinkError>")]
pub struct Records {
    pub job: PageJob,
    pub listing: CleanedListing,
}

/// Ends the output and returns the totals.
#[derive(Debug, Message)]
#[rtype(result = "Result<Totals, SinkError>")]
pub struct Flush;

#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub questions: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub per_tag: BTreeMap<String, TagTotals>,
}

pub struct Aggregator {
    sink: Option<Sink>,
    /// (site, question_id) of every question written in this run: a new
    /// question can push another onto the next page mid-crawl.
    seen: HashSet<(String, u64)>,
    totals: Totals,
    started: Instant,
}

impl Aggregator {
    pub fn new(sink: Option<Sink>, started: Instant) -> Aggregator {
        Aggregator {
            sink,
            seen: HashSet::new(),
            totals: Totals::default(),
            started,
        }
    }
}

impl Actor for Aggregator {
    type Context = Context<Self>;
}

impl Handler<Records> for Aggregator {
    type Result = Result<PageReport, SinkError>;

    fn handle(&mut self, msg: Records, _: &mut Context<Self>) -> Self::Result {
        let Records { job, listing } = msg;
        for r in &listing.rejections {
            warn!(
                url = %job.url,
                question_id = r.question_id.as_deref().unwrap_or(""),
                reason = %r.reason,
                "summary rejected"
            );
        }
        let total = listing.questions.len();
        let fresh: Vec<_> = listing
            .questions
            .into_iter()
            .filter(|q| self.seen.insert((q.site.clone(), q.question_id)))
            .collect();
        if let Some(sink) = &mut self.sink {
            sink.write_page(&fresh)?;
        }
        let tag = self.totals.per_tag.entry(job.ctx.tag.clone()).or_default();
        tag.pages += 1;
        for q in &fresh {
            tag.questions += 1;
            tag.views += q.views;
            tag.votes += q.votes;
            tag.answers += q.answers;
            if q.answers == 0 && q.post_kind == crate::model::PostKind::Question {
                tag.unanswered += 1;
            }
        }
        let tag_views_total = tag.views;
        let duplicates = total - fresh.len();
        self.totals.questions += fresh.len() as u64;
        self.totals.duplicates += duplicates as u64;
        self.totals.rejected += listing.rejections.len() as u64;
        Ok(PageReport {
            url: job.url,
            ctx: job.ctx,
            questions: fresh.len(),
            duplicates,
            rejected: listing.rejections.len(),
            attempts: job.attempt,
            tag_views_total,
            elapsed: self.started.elapsed(),
            layout: listing.layout,
        })
    }
}

impl Handler<Flush> for Aggregator {
    type Result = Result<Totals, SinkError>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        if let Some(sink) = &mut self.sink {
            sink.write_page(&[])?;
        }
        Ok(self.totals.clone())
    }
}
