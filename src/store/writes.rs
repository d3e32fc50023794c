//! Writing passes: starting or resuming one, storing its pages, finishing
//! it, and the totals and resume state read back from what was written.
//!
//! This is what a crawl does to the store, page after page for weeks, so it
//! is kept apart from the one-off reads (`report`, `export`): each page is
//! one transaction, and the per-page bookkeeping (`pass_pages`) is what lets
//! a pass cut short by a crash resume without refetching or double-counting.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;

use super::{enum_text, ts, Store, StoreError};
use crate::model::{PageContext, Question};

/// The pass `begin_pass` handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassStart {
    pub pass_id: i64,
    /// True when an unfinished pass (a crash, a `kill -9`) was picked up.
    pub resumed: bool,
}

/// What one page did to the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PageWrite {
    /// Questions stored for the first time.
    pub new: usize,
    /// Stored before, and votes, answers, replies, views, title, status or
    /// the accepted mark changed.
    pub updated: usize,
    /// Stored before with the same figures. A Newest page made only of these
    /// ends an incremental pass for its tag.
    pub unchanged: usize,
    /// The tag's pass ends at this page.
    pub ends_tag: bool,
}

impl PageWrite {
    pub fn all_unchanged(&self) -> bool {
        self.new == 0 && self.updated == 0
    }
}

/// Totals of one pass, summed from its done pages, so they survive a resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassTotals {
    pub pages: u64,
    pub questions: u64,
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl Store {
    /// Resumes the tag set's unfinished pass, or starts a new one.
    pub fn begin_pass(
        &mut self,
        tag_set: &str,
        now: DateTime<Utc>,
    ) -> Result<PassStart, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let running: Option<i64> = tx
            .query_row(
                "SELECT pass_id FROM passes
                 WHERE tag_set = ?1 AND finished_at IS NULL AND NOT imported",
                [tag_set],
                |r| r.get(0),
            )
            .optional()?;
        let start = match running {
            Some(pass_id) => PassStart {
                pass_id,
                resumed: true,
            },
            None => {
                tx.execute(
                    "INSERT INTO passes (tag_set, started_at) VALUES (?1, ?2)",
                    params![tag_set, ts(now)],
                )?;
                PassStart {
                    pass_id: tx.last_insert_rowid(),
                    resumed: false,
                }
            }
        };
        tx.commit()?;
        Ok(start)
    }

    /// Per (tag, tab), the first page of the pass where the tag ended: a
    /// resumed pass fetches nothing past it.
    pub fn tag_ends(&self, pass_id: i64) -> Result<HashMap<(String, String), u32>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT tag, tab, MIN(page) FROM pass_pages
             WHERE pass_id = ?1 AND ends_tag GROUP BY tag, tab",
        )?;
        let rows = stmt.query_map([pass_id], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (tag, tab, page) already done in the pass: a restart skips them.
    pub fn done_pages(&self, pass_id: i64) -> Result<HashSet<(String, String, u32)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT tag, tab, page FROM pass_pages WHERE pass_id = ?1")?;
        let rows = stmt.query_map([pass_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// See [`PassStore::last_pages`](super::PassStore::last_pages).
    pub fn last_pages(&self, tag_set: &str) -> Result<HashMap<(String, String), u32>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT pp.tag, pp.tab, MAX(pp.page) FROM pass_pages pp
             JOIN passes p ON p.pass_id = pp.pass_id
             WHERE p.tag_set = ?1 AND p.finished_at IS NOT NULL
             GROUP BY pp.tag, pp.tab",
        )?;
        let rows = stmt.query_map([tag_set], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores one page that does not end its tag: see [`Store::record_page_ending`].
    pub fn record_page(
        &mut self,
        pass_id: i64,
        ctx: &PageContext,
        questions: &[Question],
        now: DateTime<Utc>,
    ) -> Result<PageWrite, StoreError> {
        self.record_page_ending(pass_id, ctx, questions, now, |_| false)
    }

    /// Stores one page in one transaction: every question upserted, its
    /// snapshot for this pass added unless it has one, the page marked done,
    /// and whether the tag's pass ends here, as `ends_tag` decides from what
    /// the write found.
    pub fn record_page_ending(
        &mut self,
        pass_id: i64,
        ctx: &PageContext,
        questions: &[Question],
        now: DateTime<Utc>,
        ends_tag: impl FnOnce(&PageWrite) -> bool,
    ) -> Result<PageWrite, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        check_running(&tx, pass_id)?;
        let now = ts(now);
        let mut write = PageWrite::default();
        let sighting = Sighting::of_page(ctx);
        for q in questions {
            let seen = match sighting {
                Sighting::Live => now.clone(),
                Sighting::Past => ts(q.fetched_at),
            };
            write.count(&upsert_question(&tx, q, &seen, sighting)?);
            // One snapshot per question per live pass, so a page fetched
            // again in a resumed pass (at another time) adds none; one per
            // capture time for an archive's capture, as in an import.
            tx.prepare_cached(match sighting {
                Sighting::Live => {
                    "INSERT INTO snapshots
                     (site, question_id, pass_id, seen_at, votes, answers, views)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
                     WHERE NOT EXISTS (SELECT 1 FROM snapshots
                                       WHERE site = ?1 AND question_id = ?2 AND pass_id = ?3)"
                }
                Sighting::Past => {
                    "INSERT OR IGNORE INTO snapshots
                     (site, question_id, pass_id, seen_at, votes, answers, views)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                }
            })?
            .execute(params![
                q.site,
                q.question_id,
                pass_id,
                // When the figures were observed, not when they were stored.
                ts(q.fetched_at),
                q.votes,
                q.answers,
                q.views
            ])?;
        }
        // A page recorded twice in a pass (fetched again around a crash)
        // keeps its first counts: its questions were new then, not now.
        write.ends_tag = ends_tag(&write);
        tx.execute(
            "INSERT INTO pass_pages
             (pass_id, tag, tab, page, done_at, questions, new, updated, unchanged, ends_tag)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT DO NOTHING",
            params![
                pass_id,
                ctx.tag,
                ctx.tab,
                ctx.page,
                now,
                questions.len(),
                write.new,
                write.updated,
                write.unchanged,
                write.ends_tag
            ],
        )?;
        tx.commit()?;
        Ok(write)
    }

    /// Marks the pass finished. Finishing a finished pass is a no-op, so a
    /// retried shutdown does no harm.
    pub fn finish_pass(&mut self, pass_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let changed = self.conn.execute(
            "UPDATE passes SET finished_at = ?2 WHERE pass_id = ?1 AND finished_at IS NULL",
            params![pass_id, ts(now)],
        )?;
        if changed == 0 && !self.pass_exists(pass_id)? {
            return Err(StoreError::UnknownPass(pass_id));
        }
        Ok(())
    }

    /// The tag set's most recently finished pass: with one, a Newest pass
    /// can be incremental. An import is none: it saw the past, not what
    /// the last live pass left.
    pub fn previous_finished_pass(&self, tag_set: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT pass_id FROM passes
                 WHERE tag_set = ?1 AND finished_at IS NOT NULL AND NOT imported
                 ORDER BY finished_at DESC, pass_id DESC LIMIT 1",
                [tag_set],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The pass's totals over its done pages, for the per-pass log line.
    pub fn pass_totals(&self, pass_id: i64) -> Result<PassTotals, StoreError> {
        if !self.pass_exists(pass_id)? {
            return Err(StoreError::UnknownPass(pass_id));
        }
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(questions), 0), COALESCE(SUM(new), 0),
                    COALESCE(SUM(updated), 0), COALESCE(SUM(unchanged), 0)
             FROM pass_pages WHERE pass_id = ?1",
            [pass_id],
            |r| {
                Ok(PassTotals {
                    pages: r.get(0)?,
                    questions: r.get(1)?,
                    new: r.get(2)?,
                    updated: r.get(3)?,
                    unchanged: r.get(4)?,
                })
            },
        )?)
    }

    /// Folds the WAL back into the database file, for a clean shutdown: the
    /// file is then complete on its own, should someone copy it.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    fn pass_exists(&self, pass_id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM passes WHERE pass_id = ?1")?
            .exists([pass_id])?)
    }
}

fn check_running(tx: &Transaction, pass_id: i64) -> Result<(), StoreError> {
    let finished: Option<Option<String>> = tx
        .query_row(
            "SELECT finished_at FROM passes WHERE pass_id = ?1",
            [pass_id],
            |r| r.get(0),
        )
        .optional()?;
    match finished {
        None => Err(StoreError::UnknownPass(pass_id)),
        Some(Some(_)) => Err(StoreError::PassFinished(pass_id)),
        Some(None) => Ok(()),
    }
}

/// A stored question takes every listed field of a new sighting but its
/// first-seen time: one clause for both backends' upserts.
macro_rules! question_upsert_set {
    () => {
        "ON CONFLICT (site, question_id) DO UPDATE SET
             url = excluded.url, title = excluded.title, excerpt = excluded.excerpt,
             votes = excluded.votes, answers = excluded.answers,
             replies = excluded.replies, views = excluded.views,
             views_exact = excluded.views_exact, tags = excluded.tags,
             has_accepted_answer = excluded.has_accepted_answer,
             author_name = excluded.author_name,
             author_reputation = excluded.author_reputation,
             asked_at = excluded.asked_at, modified_at = excluded.modified_at,
             answered_at = excluded.answered_at, bounty = excluded.bounty,
             status = excluded.status, post_kind = excluded.post_kind,
             community_wiki = excluded.community_wiki, tag = excluded.tag,
             tab = excluded.tab, page = excluded.page, fetched_at = excluded.fetched_at,
             last_seen_at = excluded.last_seen_at,
             author_user_id = excluded.author_user_id,
             author_has_profile = excluded.author_has_profile,
             author_action = excluded.author_action"
    };
}
pub(super) use question_upsert_set;

/// Whether a sighting is the newest the store will have of a question (a
/// live pass) or may be older than what it holds (an imported capture).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Sighting {
    Live,
    Past,
}

impl Sighting {
    /// A page of a pass is live, unless it is an archive's capture.
    pub(super) fn of_page(ctx: &PageContext) -> Sighting {
        if ctx.archive().is_some() {
            Sighting::Past
        } else {
            Sighting::Live
        }
    }
}

/// The latest state is the newest sighting's: a past capture imported
/// after it updates nothing.
pub(super) const ONLY_IF_NEWER: &str = " WHERE excluded.fetched_at >= questions.fetched_at";

pub(super) enum Change {
    New,
    Updated,
    Unchanged,
}

/// The figures that decide "changed?", as stored.
#[derive(PartialEq)]
pub(super) struct Figures {
    pub votes: i64,
    pub answers: u64,
    pub replies: Option<u64>,
    pub views: u64,
    pub title: String,
    pub status: String,
    pub has_accepted_answer: bool,
}

/// A question compared with what the store holds of it: one rule for
/// every backend.
pub(super) struct Compared {
    pub change: Change,
    pub tags_changed: bool,
    /// The status and tags as stored (serde names, a JSON array).
    pub status: String,
    pub tags: String,
}

/// `stored` is the question's figures and tags in the store, if it is there.
pub(super) fn compare(
    stored: Option<(Figures, String)>,
    q: &Question,
) -> Result<Compared, StoreError> {
    let status = enum_text(&q.status)?;
    let tags = serde_json::to_string(&q.tags)?;
    let seen = Figures {
        votes: q.votes,
        answers: q.answers,
        replies: q.replies,
        views: q.views,
        title: q.title.clone(),
        status: status.clone(),
        has_accepted_answer: q.has_accepted_answer,
    };
    let (change, tags_changed) = match &stored {
        None => (Change::New, true),
        Some((before, old_tags)) => {
            let change = if *before == seen {
                Change::Unchanged
            } else {
                Change::Updated
            };
            (change, *old_tags != tags)
        }
    };
    Ok(Compared {
        change,
        tags_changed,
        status,
        tags,
    })
}

impl PageWrite {
    pub(super) fn count(&mut self, change: &Change) {
        match change {
            Change::New => self.new += 1,
            Change::Updated => self.updated += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

/// Writes one sighting of `q`; `now` is when the store first saw it.
pub(super) fn upsert_question(
    tx: &Transaction,
    q: &Question,
    now: &str,
    sighting: Sighting,
) -> Result<Change, StoreError> {
    let seen = ts(q.fetched_at);
    let mut older = false;
    let stored = tx
        .prepare_cached(
            "SELECT votes, answers, replies, views, title, status, has_accepted_answer, tags,
                    fetched_at
             FROM questions WHERE site = ?1 AND question_id = ?2",
        )?
        .query_row(params![q.site, q.question_id], |r| {
            Ok((
                Figures {
                    votes: r.get(0)?,
                    answers: r.get(1)?,
                    replies: r.get(2)?,
                    views: r.get(3)?,
                    title: r.get(4)?,
                    status: r.get(5)?,
                    has_accepted_answer: r.get(6)?,
                },
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
            ))
        })
        .optional()?
        .map(|(figures, tags, fetched_at)| {
            older = sighting == Sighting::Past && fetched_at > seen;
            (figures, tags)
        });
    let Compared {
        change,
        tags_changed,
        status,
        tags,
    } = compare(stored, q)?;
    let upsert = concat!(
        "INSERT INTO questions (
             site, question_id, url, title, excerpt, votes, answers, replies, views,
             views_exact, tags, has_accepted_answer, author_name, author_reputation,
             asked_at, modified_at, answered_at, bounty, status, post_kind,
             community_wiki, tag, tab, page, fetched_at, first_seen_at, last_seen_at,
             author_user_id, author_has_profile, author_action)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?26, ?27, ?28, ?29) ",
        question_upsert_set!()
    );
    let upsert = match sighting {
        Sighting::Live => upsert.to_string(),
        Sighting::Past => format!("{upsert}{ONLY_IF_NEWER}"),
    };
    tx.prepare_cached(&upsert)?.execute(params![
        q.site,
        q.question_id,
        q.url,
        q.title,
        q.excerpt,
        q.votes,
        q.answers,
        q.replies,
        q.views,
        q.views_exact,
        tags,
        q.has_accepted_answer,
        q.author_name,
        q.author_reputation,
        q.asked_at.map(ts),
        q.modified_at.map(ts),
        q.answered_at.map(ts),
        q.bounty,
        status,
        enum_text(&q.post_kind)?,
        q.community_wiki,
        q.tag,
        q.tab,
        q.page,
        seen,
        now,
        q.author_user_id,
        q.author_has_profile,
        q.author_action.as_ref().map(enum_text).transpose()?,
    ])?;
    if sighting == Sighting::Past {
        // A capture older than any sighting stored is the first sighting.
        tx.prepare_cached(
            "UPDATE questions SET first_seen_at = ?3
             WHERE site = ?1 AND question_id = ?2 AND first_seen_at > ?3",
        )?
        .execute(params![q.site, q.question_id, seen])?;
    }
    // Retags are rare: rewrite the side table only when the list changed
    // (and the listing is the newest the store has seen).
    if tags_changed && !older {
        tx.prepare_cached("DELETE FROM question_tags WHERE site = ?1 AND question_id = ?2")?
            .execute(params![q.site, q.question_id])?;
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO question_tags (site, question_id, tag) VALUES (?1, ?2, ?3)",
        )?;
        for t in &q.tags {
            insert.execute(params![q.site, q.question_id, t])?;
        }
    }
    tx.prepare_cached(
        "INSERT OR IGNORE INTO question_crawl_tags (crawl_tag, site, question_id)
         VALUES (?1, ?2, ?3)",
    )?
    .execute(params![q.tag, q.site, q.question_id])?;
    Ok(change)
}
