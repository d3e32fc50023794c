//! The frontier: which page goes out next, as a plain state machine with no
//! actors, clocks or I/O, so every paging rule is a unit test. The
//! supervisor is the shell around it: it owns the fetchers, the timers and
//! the replies, and carries out what the frontier decides.
//!
//! The rules:
//! - pages go out in the order submitted; a retry goes ahead of them (it is
//!   older than anything queued);
//! - a page marked `after_previous` (an API page, a page of an incremental
//!   pass) waits while the page before it of the same tag is unresolved, and
//!   goes first once that page comes back done;
//! - once a page ends its tag (an empty listing, `has_more: false`, nothing
//!   new in an incremental pass), every later page of that tag is skipped,
//!   until the next pass;
//! - once a page is lost after its retries, the later pages of its tag that
//!   wait on it are not reached, whether already submitted or submitted
//!   later in the pass: whether they exist is unknown;
//! - once the crawl stops (drained, budget or quota spent, a fatal API
//!   error), every page not handed out is skipped with the first reason.
//!
//! Each job travels with a reply handle `R` that the frontier only carries:
//! a page it settles without fetching comes back as [`Unfetched`].

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::engine::plan::PageJob;
use crate::model::PageContext;

/// Why a page was skipped because its tag had ended before it.
pub const WHY_TAG_ENDED: &str = "tag exhausted";

/// A job and its reply handle.
#[derive(Debug)]
pub struct Entry<R> {
    pub job: PageJob,
    pub reply: R,
}

/// A page the frontier settled without fetching it.
#[derive(Debug)]
pub enum Unfetched<R> {
    /// Its tag ended before it, or the crawl stopped.
    Skipped { entry: Entry<R>, why: &'static str },
    /// The page before it of its tag was lost, so whether it exists is
    /// unknown.
    NotReached { entry: Entry<R>, failed_page: u32 },
}

/// A tag as one listing pages it: (tag, tab) or (tag, API sort).
type TagLane = (String, String);

fn lane_of(ctx: &PageContext) -> TagLane {
    (ctx.tag.clone(), ctx.tab.clone())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Done,
    Failed,
    Skipped,
}

#[derive(Debug)]
pub struct Frontier<R> {
    queue: VecDeque<Entry<R>>,
    /// Pages waiting for the page before them, per tag lane.
    parked: HashMap<TagLane, BTreeMap<u32, Entry<R>>>,
    /// `after_previous` pages submitted and unresolved, which the next page
    /// of their tag may wait for.
    open: HashMap<(TagLane, u32), usize>,
    /// Per tag lane, the first page where the tag ended in this pass.
    ends: HashMap<TagLane, u32>,
    /// Per tag lane, the first `after_previous` page lost in this pass: the
    /// pages after it are submitted a window at a time, so some come after
    /// the loss.
    lost: HashMap<TagLane, u32>,
    stopped: Option<&'static str>,
}

impl<R> Default for Frontier<R> {
    fn default() -> Self {
        Frontier {
            queue: VecDeque::new(),
            parked: HashMap::new(),
            open: HashMap::new(),
            ends: HashMap::new(),
            lost: HashMap::new(),
            stopped: None,
        }
    }
}

impl<R> Frontier<R> {
    /// A new pass: where each tag ended in the last one says nothing about
    /// where it ends now.
    pub fn new_pass(&mut self) {
        self.ends.clear();
        self.lost.clear();
    }

    /// Why nothing more is handed out, once that is so.
    pub fn stopped(&self) -> Option<&'static str> {
        self.stopped
    }

    /// Pages waiting to be handed out, parked ones included.
    pub fn pending(&self) -> usize {
        self.queue.len() + self.parked.values().map(BTreeMap::len).sum::<usize>()
    }

    /// A job joins the queue; after a stop it is skipped at once.
    pub fn submit(&mut self, entry: Entry<R>) -> Vec<Unfetched<R>> {
        if entry.job.after_previous {
            *self.open.entry(open_key(&entry.job)).or_default() += 1;
        }
        let mut out = Vec::new();
        match self.stopped {
            Some(why) => self.skip(entry, why, &mut out),
            None => self.queue.push_back(entry),
        }
        out
    }

    /// The next job to hand out, if any; pages settled on the way (past
    /// their tag's end, or everything once stopped) go to `out`.
    pub fn next(&mut self, out: &mut Vec<Unfetched<R>>) -> Option<Entry<R>> {
        if let Some(why) = self.stopped {
            self.skip_all(why, out);
            return None;
        }
        while let Some(entry) = self.queue.pop_front() {
            if self.is_past_end(&entry.job) {
                self.skip(entry, WHY_TAG_ENDED, out);
            } else if let Some(failed_page) = self.lost_before(&entry.job) {
                self.close(&entry.job);
                out.push(Unfetched::NotReached { entry, failed_page });
            } else if self.waits_for_previous(&entry.job) {
                self.parked
                    .entry(lane_of(&entry.job.ctx))
                    .or_default()
                    .insert(entry.job.ctx.page, entry);
            } else {
                return Some(entry);
            }
        }
        None
    }

    /// A job came back done; with `ends_tag`, no later page of its tag is
    /// worth a request in this pass.
    pub fn done(&mut self, job: &PageJob, ends_tag: bool) -> Vec<Unfetched<R>> {
        let mut out = Vec::new();
        if ends_tag {
            self.end_tag(&job.ctx, &mut out);
        }
        self.settle(job, Ended::Done, &mut out);
        out
    }

    /// A job was lost after its retries.
    pub fn failed(&mut self, job: &PageJob) -> Vec<Unfetched<R>> {
        let mut out = Vec::new();
        self.settle(job, Ended::Failed, &mut out);
        out
    }

    /// A job to try again: ahead of everything queued, or skipped if the
    /// crawl stopped while it waited.
    pub fn retry(&mut self, entry: Entry<R>) -> Vec<Unfetched<R>> {
        let mut out = Vec::new();
        match self.stopped {
            Some(why) => self.skip(entry, why, &mut out),
            None => self.queue.push_front(entry),
        }
        out
    }

    /// A job handed out that could not be sent (no budget left): back at
    /// the front, unfetched.
    pub fn put_back(&mut self, entry: Entry<R>) {
        self.queue.push_front(entry);
    }

    /// Nothing more is handed out: every pending page is skipped. The first
    /// reason given stands.
    pub fn stop(&mut self, why: &'static str) -> Vec<Unfetched<R>> {
        let why = *self.stopped.get_or_insert(why);
        let mut out = Vec::new();
        self.skip_all(why, &mut out);
        out
    }

    fn is_past_end(&self, job: &PageJob) -> bool {
        self.ends
            .get(&lane_of(&job.ctx))
            .is_some_and(|&end| job.ctx.page > end)
    }

    /// The lost page of its tag this page waits on, if one was lost.
    fn lost_before(&self, job: &PageJob) -> Option<u32> {
        let lost = *self.lost.get(&lane_of(&job.ctx))?;
        (job.after_previous && job.ctx.page > lost).then_some(lost)
    }

    /// Only the page before says whether this one is worth a request; a
    /// page whose predecessor is not in this run (page 1, a page done before
    /// a restart) never waits, so nothing waits forever.
    fn waits_for_previous(&self, job: &PageJob) -> bool {
        job.after_previous
            && job.ctx.page > 1
            && self
                .open
                .contains_key(&(lane_of(&job.ctx), job.ctx.page - 1))
    }

    fn skip(&mut self, entry: Entry<R>, why: &'static str, out: &mut Vec<Unfetched<R>>) {
        self.settle(&entry.job, Ended::Skipped, out);
        out.push(Unfetched::Skipped { entry, why });
    }

    /// Skips everything queued or parked, and what settling them releases.
    fn skip_all(&mut self, why: &'static str, out: &mut Vec<Unfetched<R>>) {
        loop {
            let mut batch: Vec<Entry<R>> = self.queue.drain(..).collect();
            for (_, waiting) in self.parked.drain() {
                batch.extend(waiting.into_values());
            }
            if batch.is_empty() {
                return;
            }
            for entry in batch {
                self.skip(entry, why, out);
            }
        }
    }

    fn end_tag(&mut self, ctx: &PageContext, out: &mut Vec<Unfetched<R>>) {
        let lane = lane_of(ctx);
        let end = self.ends.entry(lane.clone()).or_insert(ctx.page);
        *end = (*end).min(ctx.page);
        let end = *end;
        let mut past: Vec<Entry<R>> = Vec::new();
        if let Some(waiting) = self.parked.get_mut(&lane) {
            past.extend(waiting.split_off(&(end + 1)).into_values());
            if waiting.is_empty() {
                self.parked.remove(&lane);
            }
        }
        let (gone, keep): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|e| self.is_past_end(&e.job));
        self.queue = keep;
        past.extend(gone);
        for entry in past {
            self.skip(entry, WHY_TAG_ENDED, out);
        }
    }

    /// A job got its outcome: it no longer holds up the next page of its
    /// tag, which goes next after a success and is not reached after a loss.
    fn settle(&mut self, job: &PageJob, ended: Ended, out: &mut Vec<Unfetched<R>>) {
        if !job.after_previous {
            return;
        }
        let key = open_key(job);
        match self.open.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                return;
            }
            Some(_) => {
                self.open.remove(&key);
            }
            None => return,
        }
        let lane = key.0;
        if ended == Ended::Failed {
            let lost = self.lost.entry(lane.clone()).or_insert(job.ctx.page);
            *lost = (*lost).min(job.ctx.page);
        }
        let Some(waiting) = self.parked.get_mut(&lane) else {
            return;
        };
        let released: Vec<Entry<R>> = if ended == Ended::Failed {
            waiting
                .split_off(&(job.ctx.page + 1))
                .into_values()
                .collect()
        } else {
            waiting.remove(&(job.ctx.page + 1)).into_iter().collect()
        };
        if waiting.is_empty() {
            self.parked.remove(&lane);
        }
        for entry in released {
            if ended == Ended::Failed {
                self.close(&entry.job);
                out.push(Unfetched::NotReached {
                    entry,
                    failed_page: job.ctx.page,
                });
            } else {
                // Older than anything queued behind it.
                self.queue.push_front(entry);
            }
        }
    }

    /// Forgets an unresolved page without releasing anything behind it.
    fn close(&mut self, job: &PageJob) {
        let key = open_key(job);
        if let Some(n) = self.open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&key);
            }
        }
    }
}

fn open_key(job: &PageJob) -> (TagLane, u32) {
    (lane_of(&job.ctx), job.ctx.page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn job(tag: &str, page: u32, after_previous: bool) -> Entry<()> {
        Entry {
            job: PageJob {
                ctx: PageContext {
                    site: "example.com".into(),
                    base_url: "https://example.com".into(),
                    tag: tag.into(),
                    tab: "Newest".into(),
                    page,
                },
                url: format!("https://example.com/questions/tagged/{tag}?page={page}"),
                attempt: 1,
                source: Source::Html,
                after_previous,
                lease: None,
            },
            reply: (),
        }
    }

    /// Submits every job and returns the frontier.
    fn with(jobs: Vec<Entry<()>>) -> Frontier<()> {
        let mut f = Frontier::default();
        for j in jobs {
            assert!(f.submit(j).is_empty());
        }
        f
    }

    /// Hands out jobs until none is ready: (tag, page) in order.
    fn drain(f: &mut Frontier<()>, out: &mut Vec<Unfetched<()>>) -> Vec<(String, u32)> {
        std::iter::from_fn(|| f.next(out))
            .map(|e| (e.job.ctx.tag, e.job.ctx.page))
            .collect()
    }

    fn pages(v: &[(String, u32)]) -> Vec<(&str, u32)> {
        v.iter().map(|(t, p)| (t.as_str(), *p)).collect()
    }

    fn skipped(out: &[Unfetched<()>]) -> Vec<(&str, u32, &'static str)> {
        out.iter()
            .filter_map(|u| match u {
                Unfetched::Skipped { entry, why } => {
                    Some((entry.job.ctx.tag.as_str(), entry.job.ctx.page, *why))
                }
                Unfetched::NotReached { .. } => None,
            })
            .collect()
    }

    fn not_reached(out: &[Unfetched<()>]) -> Vec<(u32, u32)> {
        out.iter()
            .filter_map(|u| match u {
                Unfetched::NotReached { entry, failed_page } => {
                    Some((entry.job.ctx.page, *failed_page))
                }
                Unfetched::Skipped { .. } => None,
            })
            .collect()
    }

    #[test]
    fn pages_go_out_in_the_order_submitted() {
        let mut f = with(vec![
            job("a", 1, false),
            job("b", 1, false),
            job("a", 2, false),
        ]);
        let mut out = Vec::new();
        assert_eq!(
            pages(&drain(&mut f, &mut out)),
            [("a", 1), ("b", 1), ("a", 2)]
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_page_after_previous_waits_for_its_predecessor_then_goes_first() {
        let mut f = with(vec![
            job("a", 1, true),
            job("a", 2, true),
            job("b", 1, false),
            job("b", 2, false),
        ]);
        let mut out = Vec::new();
        let first = drain(&mut f, &mut out);
        assert_eq!(pages(&first), [("a", 1), ("b", 1), ("b", 2)], "a/2 waits");
        assert_eq!(f.pending(), 1, "a/2 is parked");
        let a1 = job("a", 1, true).job;
        assert!(f.done(&a1, false).is_empty());
        assert_eq!(pages(&drain(&mut f, &mut out)), [("a", 2)]);
        assert!(out.is_empty());
    }

    #[test]
    fn a_page_whose_predecessor_is_not_in_the_run_goes_at_once() {
        // Page 2 was done before a restart: page 3 does not wait for it.
        let mut f = with(vec![job("a", 3, true), job("a", 4, true)]);
        let mut out = Vec::new();
        assert_eq!(pages(&drain(&mut f, &mut out)), [("a", 3)]);
        f.done(&job("a", 3, true).job, false);
        assert_eq!(pages(&drain(&mut f, &mut out)), [("a", 4)]);
    }

    #[test]
    fn a_tag_that_ends_skips_its_later_pages_and_no_other_tags() {
        let mut f = with(vec![
            job("a", 1, true),
            job("a", 2, true),
            job("a", 3, true),
            job("b", 1, false),
            job("b", 2, false),
        ]);
        let mut out = Vec::new();
        assert_eq!(
            pages(&drain(&mut f, &mut out)),
            [("a", 1), ("b", 1), ("b", 2)]
        );
        let ended = f.done(&job("a", 1, true).job, true);
        assert_eq!(
            skipped(&ended),
            [("a", 2, WHY_TAG_ENDED), ("a", 3, WHY_TAG_ENDED)]
        );
        assert_eq!(f.pending(), 0);
        // A page of the tag submitted later in the pass is past the end too.
        f.submit(job("a", 5, false));
        assert!(drain(&mut f, &mut out).is_empty());
        assert_eq!(skipped(&out), [("a", 5, WHY_TAG_ENDED)]);
    }

    #[test]
    fn a_listing_that_ends_skips_only_pages_past_the_first_empty_one() {
        // Pages handed out side by side: page 2 comes back empty, page 1
        // after it still counts and page 3 is never sent.
        let mut f = with(vec![
            job("a", 1, false),
            job("a", 2, false),
            job("a", 3, false),
        ]);
        let mut out = Vec::new();
        let a1 = f.next(&mut out).unwrap();
        let a2 = f.next(&mut out).unwrap();
        assert_eq!(skipped(&f.done(&a2.job, true)), [("a", 3, WHY_TAG_ENDED)]);
        assert!(f.done(&a1.job, false).is_empty());
        assert!(f.next(&mut out).is_none());
        assert!(out.is_empty());
    }

    #[test]
    fn a_new_pass_forgets_where_tags_ended() {
        let mut f = with(vec![job("a", 1, false)]);
        let mut out = Vec::new();
        let a1 = f.next(&mut out).unwrap();
        f.done(&a1.job, true);
        f.new_pass();
        for p in 1..=3 {
            f.submit(job("a", p, true));
        }
        assert_eq!(pages(&drain(&mut f, &mut out)), [("a", 1)]);
        f.done(&job("a", 1, true).job, false);
        assert_eq!(
            pages(&drain(&mut f, &mut out)),
            [("a", 2)],
            "page 2 is past no end"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_lost_page_leaves_the_pages_waiting_on_it_not_reached() {
        let mut f = with(vec![
            job("a", 1, true),
            job("a", 2, true),
            job("a", 3, true),
            job("b", 1, true),
            job("b", 2, true),
        ]);
        let mut out = Vec::new();
        assert_eq!(pages(&drain(&mut f, &mut out)), [("a", 1), ("b", 1)]);
        let lost = f.failed(&job("a", 1, true).job);
        assert_eq!(not_reached(&lost), [(2, 1), (3, 1)]);
        assert_eq!(f.pending(), 1, "b/2 still waits for b/1");
        f.done(&job("b", 1, true).job, false);
        assert_eq!(pages(&drain(&mut f, &mut out)), [("b", 2)]);
    }

    #[test]
    fn a_page_submitted_after_a_loss_it_waits_on_is_not_reached() {
        // Jobs go to the frontier a window at a time: a/3 arrives after
        // a/1 was lost, when a/2 had already been settled unfetched.
        let mut f = with(vec![job("a", 1, true), job("a", 2, true)]);
        let mut out = Vec::new();
        assert_eq!(pages(&drain(&mut f, &mut out)), [("a", 1)]);
        assert_eq!(not_reached(&f.failed(&job("a", 1, true).job)), [(2, 1)]);
        assert!(f.submit(job("a", 3, true)).is_empty());
        assert!(f.submit(job("b", 1, true)).is_empty());
        assert_eq!(pages(&drain(&mut f, &mut out)), [("b", 1)]);
        assert_eq!(not_reached(&out), [(3, 1)]);
        assert_eq!(f.pending(), 0);
        // The next pass starts afresh.
        f.new_pass();
        f.submit(job("a", 3, true));
        assert_eq!(pages(&drain(&mut f, &mut out)), [("a", 3)]);
    }

    #[test]
    fn a_lost_page_that_others_do_not_wait_on_changes_nothing() {
        let mut f = with(vec![job("a", 1, false), job("a", 2, false)]);
        let mut out = Vec::new();
        let a1 = f.next(&mut out).unwrap();
        assert!(f.failed(&a1.job).is_empty());
        assert_eq!(pages(&drain(&mut f, &mut out)), [("a", 2)]);
    }

    #[test]
    fn a_retry_goes_ahead_of_everything_queued_and_keeps_its_successor_waiting() {
        let mut f = with(vec![
            job("a", 1, true),
            job("a", 2, true),
            job("b", 1, false),
        ]);
        let mut out = Vec::new();
        let a1 = f.next(&mut out).unwrap();
        // a/1 failed once and comes back: a/2 still waits for it.
        assert!(f.retry(a1).is_empty());
        assert_eq!(pages(&drain(&mut f, &mut out)), [("a", 1), ("b", 1)]);
        assert_eq!(f.pending(), 1);
    }

    #[test]
    fn a_stop_skips_every_pending_page_and_every_later_one_with_the_first_reason() {
        let mut f = with(vec![
            job("a", 1, true),
            job("a", 2, true),
            job("b", 1, false),
        ]);
        let mut out = Vec::new();
        let a1 = f.next(&mut out).unwrap();
        let stopped = f.stop("crawl drained");
        assert_eq!(
            skipped(&stopped),
            [("a", 2, "crawl drained"), ("b", 1, "crawl drained")]
        );
        assert!(f.stop("daily budget exhausted").is_empty());
        assert_eq!(f.stopped(), Some("crawl drained"));
        // The page in flight comes back for a retry: skipped, not queued.
        assert_eq!(skipped(&f.retry(a1)), [("a", 1, "crawl drained")]);
        assert_eq!(
            skipped(&f.submit(job("c", 1, false))),
            [("c", 1, "crawl drained")]
        );
        assert!(f.next(&mut out).is_none());
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn a_page_put_back_unsent_goes_out_first() {
        let mut f = with(vec![job("a", 1, false), job("b", 1, false)]);
        let mut out = Vec::new();
        let a1 = f.next(&mut out).unwrap();
        f.put_back(a1);
        assert_eq!(pages(&drain(&mut f, &mut out)), [("a", 1), ("b", 1)]);
    }
}
