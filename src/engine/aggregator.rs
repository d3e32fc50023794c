//! Aggregator: receives each page's cleaned `Records`, drops questions the
//! run already recorded, writes the rest to the sink and/or the store, keeps
//! running totals and answers with the page's `PageReport`. `BeginPass` and
//! `EndPass` bracket a pass of `run`; `Flush` ends the run's output.
//!
//! It is the store's only user, on a thread of its own (a `SyncArbiter`):
//! every file and database call blocks that thread and no other, so the
//! SQLite connection needs no lock and a store that stops answering stalls
//! only the writes. Whoever sends it a message awaits the answer alongside
//! its shutdown and patience; what the status line needs of it (the pass's
//! counts, the store's totals, whether a call is stuck) it publishes in a
//! [`StoreView`] that is read without asking.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, Handler, Message, SyncContext};
use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

use crate::config::FleetSettings;
use crate::engine::plan::PageJob;
use crate::lane::stall::{Stalled, Stalls};
use crate::model::{Listing, PageContext, PageReport, PostKind, TagTotals};
use crate::store::output::{OutputError, Sink};
use crate::store::{
    Claim, ExportFormat, LeaseToken, PageWrite, PassStore, PassTotals, StoreError, StoreStats,
};

#[derive(Debug, Message)]
#[rtype(result = "Result<PageReport, OutputError>")]
pub struct Records {
    pub job: PageJob,
    pub listing: Listing,
    /// When the page's request was sent: its report's `elapsed` runs
    /// from here to its records written.
    pub sent: Instant,
}

/// Starts (or resumes) a pass of a tag set in the store.
#[derive(Debug, Message)]
#[rtype(result = "Result<OpenedPass, OutputError>")]
pub struct BeginPass {
    pub tag_set: String,
    /// Whether a Newest pass may stop at pages of already-stored questions.
    pub newest: bool,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct OpenedPass {
    pub pass_id: i64,
    pub resumed: bool,
    /// (tag, tab, page) already done in this pass before a crash.
    pub done: HashSet<(String, String, u32)>,
    /// Per (tag, tab), the page where the tag ended before a crash.
    pub ends: HashMap<(String, String), u32>,
    pub incremental: bool,
    /// Per (tag, tab), the highest page done in the tag set's finished
    /// passes: an archive tag's bookmark.
    pub last_pages: HashMap<(String, String), u32>,
}

/// Ends the current pass: `finished` marks it complete in the store; a pass
/// cut short by shutdown stays open so the next start resumes it.
#[derive(Debug, Message)]
#[rtype(result = "Result<PassTotals, OutputError>")]
pub struct EndPass {
    pub finished: bool,
    pub now: DateTime<Utc>,
}

/// When the tag set's latest pass started, if a shared store says it is
/// finished: `run` waits for the next one to fall due.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<DateTime<Utc>>, OutputError>")]
pub struct FinishedPassStarted {
    pub tag_set: String,
}

/// A fetcher asks for a page before fetching it: on a store a fleet
/// shares, the page may be another process's.
#[derive(Debug, Message)]
#[rtype(result = "Result<Claim, OutputError>")]
pub struct ClaimPage {
    pub ctx: PageContext,
}

/// The supervisor leases pages for its free fetchers in one go: up to
/// `want` of the candidate `pages`, the first ones free (see
/// `PassStore::claim_pages`), one answer per candidate.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Option<Claim>>, OutputError>")]
pub struct ClaimPages {
    pub pages: Vec<PageContext>,
    pub want: usize,
}

/// The supervisor will not fetch a page it leased (it failed after its
/// retries, or the crawl stopped before it went out): its lease goes back
/// at once, so another process may take it now.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ReleasePage {
    pub ctx: PageContext,
    pub lease: LeaseToken,
    /// Why the page is handed back, for the log.
    pub why: &'static str,
}

/// `run`, after a finished pass: the file output, rewritten with the
/// latest state of every question in the store. Returns records written.
#[derive(Debug, Message)]
#[rtype(result = "Result<u64, OutputError>")]
pub struct RewriteOutput {
    pub path: std::path::PathBuf,
    pub format: ExportFormat,
}

/// Ends the output and returns the totals.
#[derive(Debug, Message)]
#[rtype(result = "Result<Totals, OutputError>")]
pub struct Flush;

/// What the status line reports of the current pass (the last one, between
/// `run`'s passes; the whole run of a `crawl`): summaries rejected, and
/// listing pages whose markup referred to questions the parser did not read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassCounts {
    pub rejected: u64,
    pub layout_drift_pages: u64,
}

/// What the aggregator last knew, for readers that must not wait on it.
#[derive(Clone, Default)]
pub struct StoreView(Arc<ViewInner>);

#[derive(Default)]
struct ViewInner {
    latest: Mutex<Viewed>,
    /// Pages fetched and sent to be written, not yet answered.
    unwritten: AtomicU64,
}

#[derive(Debug, Clone, Default)]
pub struct Viewed {
    pub pass: PassCounts,
    /// The store's totals as of `stats_at`; `None` without a store.
    pub stats: Option<StoreStats>,
    stats_at: Option<Instant>,
}

impl StoreView {
    pub fn latest(&self) -> Viewed {
        self.0
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut Viewed)) {
        f(&mut self.0.latest.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// A fetcher sends a page's records: counted until they are answered.
    pub fn page_sent(&self) {
        self.0.unwritten.fetch_add(1, Ordering::Relaxed);
    }

    pub fn page_answered(&self) {
        self.0.unwritten.fetch_sub(1, Ordering::Relaxed);
    }

    /// Fetched pages whose records the aggregator has not yet answered for:
    /// what an exit now would leave unwritten (and the next start refetch).
    pub fn unwritten(&self) -> u64 {
        self.0.unwritten.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub questions: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub layout_drift_pages: u64,
    pub per_tag: BTreeMap<String, TagTotals>,
}

struct ActivePass {
    id: i64,
    incremental: bool,
}

pub struct Aggregator {
    sink: Option<Sink>,
    /// Any backend: the actors see only the interface.
    store: Option<Box<dyn PassStore>>,
    pass: Option<ActivePass>,
    /// (site, question_id) of every question written to the file output in
    /// this run: a new question can push another onto the next page
    /// mid-crawl. Only with a file output; a long run writes to the store
    /// alone, which is keyed, so memory stays flat.
    seen: Option<HashSet<(String, u64)>>,
    /// A pass picked up after a crash or a signal: this run fetches only
    /// its remaining pages, so the file output is rewritten from the store,
    /// which holds the records of the whole pass.
    resumed_pass: Option<i64>,
    totals: Totals,
    /// Since the last `BeginPass`.
    pass_counts: PassCounts,
    /// This process's name and lease, for claiming pages.
    fleet: FleetSettings,
    view: StoreView,
    stalls: Stalls,
    /// How stale the store's totals in the view may grow (they cost a
    /// count over the store): the status line's interval.
    stats_every: Duration,
}

impl Aggregator {
    pub fn new(
        sink: Option<Sink>,
        store: Option<Box<dyn PassStore>>,
        fleet: FleetSettings,
        view: StoreView,
        stalls: Stalls,
        stats_every: Duration,
    ) -> Aggregator {
        // A file output must hold each question once per run; `run` writes
        // only to the store, which is keyed, so it keeps no set.
        let seen = sink.as_ref().map(|_| HashSet::new());
        Aggregator {
            sink,
            store,
            pass: None,
            seen,
            resumed_pass: None,
            totals: Totals::default(),
            pass_counts: PassCounts::default(),
            fleet,
            view,
            stalls,
            stats_every,
        }
    }

    /// The store is busy for the caller until the guard drops: past
    /// `STALL_AFTER`, the status line says it waits on the store.
    fn busy(&self, doing: impl Into<String>) -> crate::lane::stall::StallGuard {
        self.stalls.guard(Stalled::Store, doing)
    }

    /// Publishes the pass's counts, and the store's totals when they are
    /// older than `stats_every` (or `now_too`: a pass began or ended).
    fn publish(&self, now_too: bool) {
        let stale = self
            .view
            .latest()
            .stats_at
            .is_none_or(|at| at.elapsed() >= self.stats_every);
        let stats = match &self.store {
            Some(store) if now_too || stale => {
                let _busy = self.busy("counting the store's totals");
                store.stats().ok()
            }
            _ => None,
        };
        let pass = self.pass_counts;
        self.view.update(|v| {
            v.pass = pass;
            if stats.is_some() {
                v.stats = stats;
                v.stats_at = Some(Instant::now());
            }
        });
    }
}

impl Actor for Aggregator {
    type Context = SyncContext<Self>;
}

impl Handler<Records> for Aggregator {
    type Result = Result<PageReport, OutputError>;

    fn handle(&mut self, msg: Records, _: &mut SyncContext<Self>) -> Self::Result {
        let Records { job, listing, sent } = msg;
        if let Some(drift) = &listing.layout_drift {
            // Noticed on the first page of a layout change, not weeks later
            // in an empty store.
            error!(
                url = %job.url,
                tag = %job.ctx.tag,
                page = job.ctx.page,
                %drift,
                "listing page yielded fewer question summaries than it holds: the site's layout may have changed"
            );
        }
        let drifted = u64::from(listing.layout_drift.is_some());
        let rejected = listing.rejections.len() as u64;
        self.totals.layout_drift_pages += drifted;
        self.pass_counts.rejected += rejected;
        self.pass_counts.layout_drift_pages += drifted;
        for r in &listing.rejections {
            warn!(
                url = %job.url,
                question_id = r.question_id.as_deref().unwrap_or(""),
                reason = %r.reason,
                "summary rejected"
            );
        }
        let total = listing.questions.len();
        let no_more = listing.is_last();
        let fresh: Vec<_> = match &mut self.seen {
            Some(seen) => listing
                .questions
                .into_iter()
                .filter(|q| seen.insert((q.site.clone(), q.question_id)))
                .collect(),
            None => listing.questions,
        };
        let duplicates = total - fresh.len();
        // A page whose summaries went unread is not the end of its tag.
        let empty = total == 0 && listing.rejections.is_empty() && listing.layout_drift.is_none();
        if empty && job.ctx.page == 1 {
            // A misspelled tag is no error to the site: it lists nothing.
            // The tab is named too: a real tag may have nothing Bountied.
            warn!(tag = %job.ctx.tag, tab = %job.ctx.tab, url = %job.url, "no questions: does the tag exist?");
        }
        // Where the tag ends: an empty listing, the API's `has_more: false`,
        // or, in an incremental pass, a page with nothing new or changed.
        let (mut new, mut updated, mut ends_tag) = (0, 0, empty || no_more);
        let busy = self.busy(format!(
            "writing page {} of [{}]",
            job.ctx.page, job.ctx.tag
        ));
        if let (Some(store), Some(pass)) = (&mut self.store, &self.pass) {
            let incremental = pass.incremental;
            let ends = |w: &PageWrite| empty || no_more || (incremental && w.all_unchanged());
            let write = match job.lease {
                Some(lease) => {
                    store.record_leased_page(pass.id, &job.ctx, lease, &fresh, Utc::now(), &ends)
                }
                None => store.record_page_ending(pass.id, &job.ctx, &fresh, Utc::now(), &ends),
            };
            if let Err(StoreError::Fenced { stale, current, .. }) = &write {
                let holder = match current {
                    Claim::Done { by, .. } => by.as_deref().unwrap_or("unknown"),
                    Claim::Held { by, .. } => by,
                    Claim::Leased { .. } => "this process",
                };
                warn!(
                    tag = %job.ctx.tag,
                    tab = %job.ctx.tab,
                    page = job.ctx.page,
                    stale_token = %stale,
                    holder,
                    worker = %self.fleet.name,
                    "lease taken over while this process held the page: its records are dropped"
                );
            }
            let write = write?;
            new = write.new;
            updated = write.updated;
            ends_tag = write.ends_tag;
        }
        if let Some(sink) = &mut self.sink {
            sink.write_page(&fresh)?;
        }
        drop(busy);
        self.publish(false);
        let tag = self.totals.per_tag.entry(job.ctx.tag.clone()).or_default();
        tag.pages += 1;
        for q in &fresh {
            tag.questions += 1;
            tag.views += q.views;
            tag.votes += q.votes;
            tag.answers += q.answers;
            if q.answers == 0 && q.post_kind == PostKind::Question {
                tag.unanswered += 1;
            }
        }
        let tag_views_total = tag.views;
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
            elapsed: sent.elapsed(),
            layout: listing.layout,
            ends_tag,
            new,
            updated,
        })
    }
}

impl Handler<BeginPass> for Aggregator {
    type Result = Result<OpenedPass, OutputError>;

    fn handle(&mut self, msg: BeginPass, _: &mut SyncContext<Self>) -> Self::Result {
        let _busy = self.busy(format!("starting a pass of {}", msg.tag_set));
        let store = self.store.as_mut().ok_or(OutputError::NoStore)?;
        // Incremental only once a full pass of this tag set is on record:
        // the first pass must see every configured page.
        let incremental = msg.newest && store.previous_finished_pass(&msg.tag_set)?.is_some();
        let start = store.begin_pass(&msg.tag_set, msg.now)?;
        let done = store.done_pages(start.pass_id)?;
        let ends = store.tag_ends(start.pass_id)?;
        let last_pages = store.last_pages(&msg.tag_set)?;
        self.resumed_pass = start.resumed.then_some(start.pass_id);
        self.pass = Some(ActivePass {
            id: start.pass_id,
            incremental,
        });
        self.pass_counts = PassCounts::default();
        // A page's tag figures (`tag_views_total`) are the pass's, not the
        // sum over every pass a long run made.
        self.totals.per_tag.clear();
        self.publish(true);
        Ok(OpenedPass {
            pass_id: start.pass_id,
            resumed: start.resumed,
            done,
            ends,
            incremental,
            last_pages,
        })
    }
}

impl Handler<EndPass> for Aggregator {
    type Result = Result<PassTotals, OutputError>;

    fn handle(&mut self, msg: EndPass, _: &mut SyncContext<Self>) -> Self::Result {
        let busy = self.busy("ending the pass");
        let store = self.store.as_mut().ok_or(OutputError::NoStore)?;
        let pass = self.pass.take().ok_or(OutputError::NoStore)?;
        if msg.finished {
            store.finish_pass(pass.id, msg.now)?;
        }
        let totals = store.pass_totals(pass.id)?;
        drop(busy);
        self.publish(true);
        Ok(totals)
    }
}

impl Handler<FinishedPassStarted> for Aggregator {
    type Result = Result<Option<DateTime<Utc>>, OutputError>;

    fn handle(&mut self, msg: FinishedPassStarted, _: &mut SyncContext<Self>) -> Self::Result {
        let _busy = self.busy("reading when the last pass started");
        match &self.store {
            Some(store) => Ok(store.finished_pass_started(&msg.tag_set)?),
            None => Ok(None),
        }
    }
}

impl Handler<ClaimPage> for Aggregator {
    type Result = Result<Claim, OutputError>;

    fn handle(&mut self, msg: ClaimPage, _: &mut SyncContext<Self>) -> Self::Result {
        let _busy = self.busy(format!(
            "leasing page {} of [{}]",
            msg.ctx.page, msg.ctx.tag
        ));
        let (Some(store), Some(pass)) = (&mut self.store, &self.pass) else {
            // No pass (a crawl without a store): nobody else to ask.
            return Ok(Claim::Leased {
                taken_over_from: None,
                token: LeaseToken::UNFENCED,
            });
        };
        let claim = store.claim_page(pass.id, &msg.ctx, &self.fleet.name, self.fleet.lease)?;
        if let Claim::Leased {
            taken_over_from: Some(from),
            ..
        } = &claim
        {
            warn!(
                tag = %msg.ctx.tag,
                page = msg.ctx.page,
                from = %from,
                worker = %self.fleet.name,
                "lease of another process expired: page taken over"
            );
        }
        Ok(claim)
    }
}

impl Handler<ClaimPages> for Aggregator {
    type Result = Result<Vec<Option<Claim>>, OutputError>;

    fn handle(&mut self, msg: ClaimPages, _: &mut SyncContext<Self>) -> Self::Result {
        let _busy = self.busy(format!("leasing {} pages", msg.want));
        let (Some(store), Some(pass)) = (&mut self.store, &self.pass) else {
            // No pass (a crawl without a store): nobody else to ask.
            return Ok(Claim::first_leased(msg.pages.len(), msg.want));
        };
        let claims = store.claim_pages(
            pass.id,
            &msg.pages,
            msg.want,
            &self.fleet.name,
            self.fleet.lease,
        )?;
        for (ctx, claim) in msg.pages.iter().zip(&claims) {
            if let Some(Claim::Leased {
                taken_over_from: Some(from),
                ..
            }) = claim
            {
                warn!(
                    tag = %ctx.tag,
                    page = ctx.page,
                    from = %from,
                    worker = %self.fleet.name,
                    "lease of another process expired: page taken over"
                );
            }
        }
        Ok(claims)
    }
}

impl Handler<ReleasePage> for Aggregator {
    type Result = ();

    /// A lease that cannot be handed back expires on its own: worth a
    /// warning, not a failure.
    fn handle(&mut self, msg: ReleasePage, _: &mut SyncContext<Self>) {
        let _busy = self.busy(format!(
            "releasing page {} of [{}]",
            msg.ctx.page, msg.ctx.tag
        ));
        let (Some(store), Some(pass)) = (&mut self.store, &self.pass) else {
            return;
        };
        match store.release_page(pass.id, &msg.ctx, msg.lease) {
            Ok(()) => info!(
                tag = %msg.ctx.tag,
                tab = %msg.ctx.tab,
                page = msg.ctx.page,
                token = %msg.lease,
                "{}: lease released for another process",
                msg.why
            ),
            Err(e) => warn!(
                tag = %msg.ctx.tag,
                page = msg.ctx.page,
                error = %e,
                why = msg.why,
                "a lease could not be released: it expires on its own"
            ),
        }
    }
}

impl Handler<RewriteOutput> for Aggregator {
    type Result = Result<u64, OutputError>;

    fn handle(&mut self, msg: RewriteOutput, _: &mut SyncContext<Self>) -> Self::Result {
        let _busy = self.busy(format!("rewriting the output {}", msg.path.display()));
        let store = self.store.as_ref().ok_or(OutputError::NoStore)?;
        // Through the crawl output's temporary file and rename: a reader
        // of the file sees the last pass's records or this one's, never
        // half of them.
        let mut sink = Sink::create(&msg.path, msg.format)?;
        Ok(sink.replace_with(|w, format| store.export(w, format, false))?)
    }
}

impl Handler<Flush> for Aggregator {
    type Result = Result<Totals, OutputError>;

    fn handle(&mut self, _: Flush, _: &mut SyncContext<Self>) -> Self::Result {
        let _busy = self.busy("flushing the output");
        if let Some(sink) = &mut self.sink {
            match (self.resumed_pass, &self.store) {
                // An appending run adds its pages to an output the store
                // knows nothing about: no rewrite.
                (Some(pass_id), Some(store)) if !sink.is_append() => {
                    let records = sink.replace_with(|w, format| {
                        store.export_pass(pass_id, w, ExportFormat::from(format))
                    })?;
                    info!(
                        pass_id,
                        records,
                        output = %sink.path().display(),
                        "resumed pass: output rewritten with every record of the pass from the store"
                    );
                }
                _ => {
                    sink.finish()?;
                }
            }
        }
        if let Some(store) = &self.store {
            store.checkpoint()?;
        }
        // The last call: the store's connection is closed here, not left to
        // the process's exit, which ends this thread without dropping it
        // (SQLite would leave its -wal and -shm files behind).
        self.store = None;
        Ok(self.totals.clone())
    }
}
