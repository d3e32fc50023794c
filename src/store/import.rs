//! Imports (`parse --store`): listing pages captured in the past (a web
//! archive's WARC records, saved pages) written into the store as
//! snapshots at their capture time, beside the live passes.
//!
//! One import is one pass, marked `imported`: its start and finish are its
//! earliest and latest capture, not when it ran, and it is created
//! finished, so it is never resumed, never joined by a fleet, never leased,
//! and never a live tag set's "previous finished pass" (a Newest pass
//! compared with years-old figures would find every page changed). A live
//! pass keeps one snapshot per question; an import holds captures of years,
//! so there a question has a snapshot per capture time.
//!
//! A capture is keyed by (site, URL, capture time): importing it again adds
//! nothing, whichever import brought it first, and an import that finds
//! nothing new opens no pass. A capture older than what the store holds of
//! a question adds its snapshot but leaves the question's latest state (and
//! tags) as the newer sighting left them.

use chrono::{DateTime, Utc};
use rusqlite::{params, TransactionBehavior};
use serde::Serialize;

use super::writes::{upsert_question, Change, Sighting};
use super::{ts, Store, StoreError};
use crate::model::{PageContext, Question};

/// The tag set an import's pass is recorded under, unless given.
pub const IMPORT_TAG_SET: &str = "archive";

/// One import under way: the pass it opened, once a capture was new.
#[derive(Debug, Clone)]
pub struct Import {
    pub tag_set: String,
    pub(super) pass_id: Option<i64>,
}

impl Import {
    pub fn new(tag_set: &str) -> Import {
        Import {
            tag_set: tag_set.to_string(),
            pass_id: None,
        }
    }

    /// The import's pass; `None` while it has written nothing.
    pub fn pass_id(&self) -> Option<i64> {
        self.pass_id
    }
}

/// One captured listing page: where and when it was captured, and its
/// questions as read (their `fetched_at` the capture time).
#[derive(Debug, Clone, Copy)]
pub struct Capture<'a> {
    /// The captured URL as the archive names it: with the site and the
    /// capture time, the key that makes an import idempotent.
    pub url: &'a str,
    pub ctx: &'a PageContext,
    pub captured_at: DateTime<Utc>,
    pub questions: &'a [Question],
}

/// What one capture added to the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CaptureWrite {
    /// False: the store had the capture already, and nothing was written.
    pub imported: bool,
    /// Questions stored for the first time.
    pub new: usize,
    pub snapshots: usize,
}

impl Store {
    /// Writes one capture in one transaction, into the import's pass
    /// (opened by its first new capture); nothing if the store has it.
    pub fn import_capture(
        &mut self,
        import: &mut Import,
        c: &Capture,
    ) -> Result<CaptureWrite, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at = ts(c.captured_at);
        let known = tx
            .prepare_cached(
                "SELECT 1 FROM captures WHERE site = ?1 AND url = ?2 AND captured_at = ?3",
            )?
            .exists(params![c.ctx.site, c.url, at])?;
        if known {
            return Ok(CaptureWrite::default());
        }
        let pass_id = match import.pass_id {
            Some(pass_id) => {
                tx.execute(
                    "UPDATE passes SET started_at = MIN(started_at, ?2),
                                       finished_at = MAX(finished_at, ?2)
                     WHERE pass_id = ?1",
                    params![pass_id, at],
                )?;
                pass_id
            }
            None => {
                tx.execute(
                    "INSERT INTO passes (tag_set, started_at, finished_at, imported)
                     VALUES (?1, ?2, ?2, 1)",
                    params![import.tag_set, at],
                )?;
                tx.last_insert_rowid()
            }
        };
        tx.execute(
            "INSERT INTO captures (site, url, captured_at, pass_id, tag, tab, page, questions)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                c.ctx.site,
                c.url,
                at,
                pass_id,
                c.ctx.tag,
                c.ctx.tab,
                c.ctx.page,
                c.questions.len()
            ],
        )?;
        let mut write = CaptureWrite {
            imported: true,
            ..CaptureWrite::default()
        };
        for q in c.questions {
            let seen = ts(q.fetched_at);
            if let Change::New = upsert_question(&tx, q, &seen, Sighting::Past)? {
                write.new += 1;
            }
            write.snapshots += tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO snapshots
                     (site, question_id, pass_id, seen_at, votes, answers, views)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    q.site,
                    q.question_id,
                    pass_id,
                    seen,
                    q.votes,
                    q.answers,
                    q.views
                ])?;
        }
        tx.commit()?;
        // Only now: a capture rolled back must not leave a pass id behind.
        import.pass_id = Some(pass_id);
        Ok(write)
    }
}
