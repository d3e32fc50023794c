//! The embedded store: every question's latest state, a snapshot of its
//! figures per pass, and which pages of each pass are done.
//!
//! It receives cleaned `Question`s a page at a time and answers the
//! questions a long-running crawler asks: "seen before?", "changed?",
//! "which pages of this pass are already done?", "what grew?". It also
//! streams the latest state or the history out as JSONL or CSV.
//!
//! Why SQLite: a service that runs for weeks needs state that survives
//! `kill -9` and a power cut uncorrupted, without a server to install. One
//! page is one transaction, so a crash loses at most the page being written
//! and never leaves half a page behind; WAL mode lets `report` and `export` read the
//! file while `run` keeps writing. The store answers "seen?" from the file,
//! so memory stays flat however long the run.
//!
//! Pure library code: a `Store` owns one `rusqlite::Connection` and is used
//! from one thread (the aggregator's arbiter), hence no pool and no mutex.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{info, warn};

use crate::model::{PageContext, PostKind, Question, QuestionStatus};
use crate::output::CsvRow;

/// Schema migrations, applied in order. `PRAGMA user_version` is the number
/// applied so far, so a migration is never edited once released: append.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "
    CREATE TABLE passes (
        pass_id     INTEGER PRIMARY KEY,
        tag_set     TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT
    );
    -- At most one running pass per tag set: resume relies on it.
    CREATE UNIQUE INDEX passes_one_running ON passes (tag_set) WHERE finished_at IS NULL;
    CREATE INDEX passes_by_tag_set ON passes (tag_set, finished_at);

    CREATE TABLE pass_pages (
        pass_id   INTEGER NOT NULL REFERENCES passes (pass_id),
        tag       TEXT NOT NULL,
        tab       TEXT NOT NULL,
        page      INTEGER NOT NULL,
        done_at   TEXT NOT NULL,
        questions INTEGER NOT NULL,
        new       INTEGER NOT NULL,
        updated   INTEGER NOT NULL,
        unchanged INTEGER NOT NULL,
        PRIMARY KEY (pass_id, tag, tab, page)
    ) WITHOUT ROWID;

    CREATE TABLE questions (
        site                TEXT NOT NULL,
        question_id         INTEGER NOT NULL,
        url                 TEXT NOT NULL,
        title               TEXT NOT NULL,
        excerpt             TEXT NOT NULL,
        votes               INTEGER NOT NULL,
        answers             INTEGER NOT NULL,
        replies             INTEGER,
        views               INTEGER NOT NULL,
        views_exact         INTEGER NOT NULL,
        tags                TEXT NOT NULL,
        has_accepted_answer INTEGER NOT NULL,
        author_name         TEXT,
        author_reputation   INTEGER,
        asked_at            TEXT,
        modified_at         TEXT,
        answered_at         TEXT,
        bounty              INTEGER,
        status              TEXT NOT NULL,
        post_kind           TEXT NOT NULL,
        community_wiki      INTEGER NOT NULL,
        tag                 TEXT NOT NULL,
        tab                 TEXT NOT NULL,
        page                INTEGER NOT NULL,
        fetched_at          TEXT NOT NULL,
        first_seen_at       TEXT NOT NULL,
        last_seen_at        TEXT NOT NULL,
        PRIMARY KEY (site, question_id)
    );

    -- The question's own tags, for co-occurrence queries; `questions.tags`
    -- keeps them as listed (a JSON array) for export.
    CREATE TABLE question_tags (
        site        TEXT NOT NULL,
        question_id INTEGER NOT NULL,
        tag         TEXT NOT NULL,
        PRIMARY KEY (site, question_id, tag),
        FOREIGN KEY (site, question_id) REFERENCES questions (site, question_id)
    ) WITHOUT ROWID;

    -- Every crawl tag whose listing showed the question. Reports group by
    -- it rather than by question_tags because a listing can show questions
    -- not carrying its tag by name (tag synonyms), and rather than by
    -- questions.tag because that keeps only the latest sighting.
    CREATE TABLE question_crawl_tags (
        crawl_tag   TEXT NOT NULL,
        site        TEXT NOT NULL,
        question_id INTEGER NOT NULL,
        PRIMARY KEY (crawl_tag, site, question_id),
        FOREIGN KEY (site, question_id) REFERENCES questions (site, question_id)
    ) WITHOUT ROWID;

    CREATE TABLE snapshots (
        site        TEXT NOT NULL,
        question_id INTEGER NOT NULL,
        pass_id     INTEGER NOT NULL REFERENCES passes (pass_id),
        seen_at     TEXT NOT NULL,
        votes       INTEGER NOT NULL,
        answers     INTEGER NOT NULL,
        views       INTEGER NOT NULL,
        -- One snapshot per question per pass, so a resumed pass never
        -- duplicates one.
        PRIMARY KEY (site, question_id, pass_id),
        FOREIGN KEY (site, question_id) REFERENCES questions (site, question_id)
    ) WITHOUT ROWID;
    ",
    // 2: where each tag's pass ended, so a pass resumed after a crash does
    // not fetch pages past the end its first run found.
    "
    ALTER TABLE pass_pages ADD COLUMN ends_tag INTEGER NOT NULL DEFAULT 0;
    ",
];

/// How long a statement waits on a lock held by another connection (a
/// `report` or `export` reading the file) before failing with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the store is at schema version {found}, newer than the {supported} \
         this stackcrawl knows: upgrade stackcrawl"
    )]
    Schema { found: i64, supported: i64 },
    #[error("the store {path}: {source}")]
    File {
        path: PathBuf,
        source: Box<StoreError>,
    },
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("pass {0} is not in the store")]
    UnknownPass(i64),
    #[error("pass {0} is finished and takes no more pages")]
    PassFinished(i64),
    #[error("store column {column} holds {value:?}: {reason}")]
    Decode {
        column: &'static str,
        value: String,
        reason: String,
    },
    #[error("export: {0}")]
    Io(#[from] std::io::Error),
    #[error("export: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("export: {0}")]
    Csv(#[from] csv::Error),
}

impl StoreError {
    /// The export's reader went away (a closed pipe).
    pub fn is_broken_pipe(&self) -> bool {
        let kind = match self {
            StoreError::Io(e) => Some(e.kind()),
            StoreError::Serialize(e) => e.io_error_kind(),
            StoreError::Csv(e) => match e.kind() {
                csv::ErrorKind::Io(e) => Some(e.kind()),
                _ => None,
            },
            _ => None,
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    }
}

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

/// Sizes for the periodic status line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub questions: u64,
    pub snapshots: u64,
    pub passes: u64,
    /// Main database file (page_count × page_size); the WAL is not counted.
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// One entry per crawl tag, by name.
    pub tags: Vec<TagReport>,
    /// Questions by views gained between their two latest snapshots, most
    /// first; only questions that gained views.
    pub growth: Vec<Growth>,
}

/// Latest state of the questions a crawl tag's listing showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagReport {
    pub tag: String,
    pub questions: u64,
    pub views: u64,
    pub votes: i64,
    pub answers: u64,
    /// Questions with no answer; Advice posts have replies, not answers,
    /// and are not counted (as the aggregator's `TagTotals`).
    pub unanswered: u64,
    pub unanswered_share: f64,
    /// Other tags on these questions, most frequent first.
    pub co_tags: Vec<CoTag>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoTag {
    pub tag: String,
    pub questions: u64,
    /// Share of the crawl tag's questions that carry this tag too.
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Growth {
    pub site: String,
    pub question_id: u64,
    pub title: String,
    pub url: String,
    pub from_pass: i64,
    pub to_pass: i64,
    pub from_seen_at: DateTime<Utc>,
    pub to_seen_at: DateTime<Utc>,
    pub views_gained: i64,
    pub votes_gained: i64,
    pub answers_gained: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl From<crate::config::OutputFormat> for ExportFormat {
    fn from(f: crate::config::OutputFormat) -> Self {
        match f {
            crate::config::OutputFormat::Jsonl => ExportFormat::Jsonl,
            crate::config::OutputFormat::Csv => ExportFormat::Csv,
        }
    }
}

/// One snapshot, as the history export writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub site: String,
    pub question_id: u64,
    pub pass_id: i64,
    pub seen_at: DateTime<Utc>,
    pub votes: i64,
    pub answers: u64,
    pub views: u64,
}

pub struct Store {
    conn: Connection,
    /// The file, or `None` in memory.
    path: Option<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // SQLite reads the file only now ("file is not a database"), and a
        // schema error is about this file too: both name it.
        let mut store = Store::init(conn).map_err(|e| match e {
            StoreError::Sqlite(source) => StoreError::Open {
                path: path.to_path_buf(),
                source,
            },
            StoreError::Schema { found, supported } => StoreError::File {
                path: path.to_path_buf(),
                source: Box::new(StoreError::Schema { found, supported }),
            },
            other => other,
        })?;
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// The store's file; `None` for a store in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A throwaway store, for tests and dry runs.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers (`report`, `export`) never block the writer. Some
        // file systems cannot do WAL; SQLite then keeps its rollback journal,
        // which is slower but as safe, so that is a warning, not an error.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            warn!(journal_mode = %mode, "store cannot use WAL mode");
        }
        // NORMAL in WAL mode survives a process crash; a power cut may lose
        // the last transactions, never corrupt the file. FULL would fsync on
        // every page for no gain a re-crawl cannot give back.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let mut store = Store { conn, path: None };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let supported = MIGRATIONS.len() as i64;
        // IMMEDIATE takes the write lock before reading the version, so two
        // processes opening a new file cannot both apply a migration.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > supported {
            return Err(StoreError::Schema { found, supported });
        }
        if found == supported {
            return Ok(());
        }
        for sql in MIGRATIONS.iter().skip(found.max(0) as usize) {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", supported)?;
        tx.commit()?;
        info!(from = found, to = supported, "store schema migrated");
        Ok(())
    }

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
                "SELECT pass_id FROM passes WHERE tag_set = ?1 AND finished_at IS NULL",
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
        for q in questions {
            match upsert_question(&tx, q, &now)? {
                Change::New => write.new += 1,
                Change::Updated => write.updated += 1,
                Change::Unchanged => write.unchanged += 1,
            }
            tx.prepare_cached(
                "INSERT OR IGNORE INTO snapshots
                 (site, question_id, pass_id, seen_at, votes, answers, views)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
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
    /// can be incremental.
    pub fn previous_finished_pass(&self, tag_set: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT pass_id FROM passes
                 WHERE tag_set = ?1 AND finished_at IS NOT NULL
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

    /// Whether the question has ever been stored.
    pub fn is_seen(&self, site: &str, question_id: u64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM questions WHERE site = ?1 AND question_id = ?2")?
            .exists(params![site, question_id])?)
    }

    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let count = |table: &str| -> Result<u64, StoreError> {
            Ok(self
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
        };
        let page_count: u64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))?;
        let page_size: u64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))?;
        Ok(StoreStats {
            questions: count("questions")?,
            snapshots: count("snapshots")?,
            passes: count("passes")?,
            size_bytes: page_count.saturating_mul(page_size),
        })
    }

    /// Folds the WAL back into the database file, for a clean shutdown: the
    /// file is then complete on its own, should someone copy it.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Per crawl tag totals and co-occurring tags, and the questions that
    /// gained the most views; `top_n` bounds both lists.
    pub fn report(&self, top_n: usize) -> Result<Report, StoreError> {
        let mut tags = Vec::new();
        {
            let mut stmt = self.conn.prepare(
                "SELECT c.crawl_tag, COUNT(*), COALESCE(SUM(q.views), 0),
                        COALESCE(SUM(q.votes), 0), COALESCE(SUM(q.answers), 0),
                        COALESCE(SUM(q.answers = 0 AND q.post_kind = ?1), 0)
                 FROM question_crawl_tags c JOIN questions q USING (site, question_id)
                 GROUP BY c.crawl_tag ORDER BY c.crawl_tag",
            )?;
            let mut rows = stmt.query([enum_text(&PostKind::Question)?])?;
            while let Some(r) = rows.next()? {
                let questions: u64 = r.get(1)?;
                let unanswered: u64 = r.get(5)?;
                tags.push(TagReport {
                    tag: r.get(0)?,
                    questions,
                    views: r.get(2)?,
                    votes: r.get(3)?,
                    answers: r.get(4)?,
                    unanswered,
                    unanswered_share: share(unanswered, questions),
                    co_tags: Vec::new(),
                });
            }
        }
        let mut co = self.conn.prepare(
            "SELECT t.tag, COUNT(*) AS n
             FROM question_crawl_tags c JOIN question_tags t USING (site, question_id)
             WHERE c.crawl_tag = ?1 AND t.tag <> ?1
             GROUP BY t.tag ORDER BY n DESC, t.tag LIMIT ?2",
        )?;
        for t in &mut tags {
            let mut rows = co.query(params![t.tag, top_n])?;
            while let Some(r) = rows.next()? {
                let n: u64 = r.get(1)?;
                t.co_tags.push(CoTag {
                    tag: r.get(0)?,
                    questions: n,
                    share: share(n, t.questions),
                });
            }
        }
        // Latest and previous snapshot by observation time: a resumed pass
        // can observe a question after a later-numbered pass of another set.
        let mut stmt = self.conn.prepare(
            "WITH w AS (
                 SELECT site, question_id, pass_id, seen_at, votes, answers, views,
                        ROW_NUMBER() OVER win AS rn,
                        LEAD(pass_id) OVER win AS prev_pass,
                        LEAD(seen_at) OVER win AS prev_seen_at,
                        LEAD(votes) OVER win AS prev_votes,
                        LEAD(answers) OVER win AS prev_answers,
                        LEAD(views) OVER win AS prev_views
                 FROM snapshots
                 WINDOW win AS (PARTITION BY site, question_id ORDER BY seen_at DESC, pass_id DESC)
             )
             SELECT w.site, w.question_id, q.title, q.url, w.prev_pass, w.pass_id,
                    w.prev_seen_at, w.seen_at, w.views - w.prev_views AS gained,
                    w.votes - w.prev_votes, w.answers - w.prev_answers
             FROM w JOIN questions q USING (site, question_id)
             WHERE w.rn = 1 AND w.prev_views IS NOT NULL AND w.views > w.prev_views
             ORDER BY gained DESC, w.site, w.question_id
             LIMIT ?1",
        )?;
        let mut rows = stmt.query([top_n])?;
        let mut growth = Vec::new();
        while let Some(r) = rows.next()? {
            growth.push(Growth {
                site: r.get(0)?,
                question_id: r.get(1)?,
                title: r.get(2)?,
                url: r.get(3)?,
                from_pass: r.get(4)?,
                to_pass: r.get(5)?,
                from_seen_at: parse_ts("snapshots.seen_at", r.get(6)?)?,
                to_seen_at: parse_ts("snapshots.seen_at", r.get(7)?)?,
                views_gained: r.get(8)?,
                votes_gained: r.get(9)?,
                answers_gained: r.get(10)?,
            });
        }
        Ok(Report { tags, growth })
    }

    /// Streams the latest state of every question (or, with `history`,
    /// every snapshot) to `w`, ordered by site and id. Returns rows written.
    pub fn export(
        &self,
        w: impl Write,
        format: ExportFormat,
        history: bool,
    ) -> Result<u64, StoreError> {
        let sql = if history {
            "SELECT site, question_id, pass_id, seen_at, votes, answers, views
             FROM snapshots ORDER BY site, question_id, pass_id"
        } else {
            "SELECT * FROM questions ORDER BY site, question_id"
        };
        self.write_rows(sql, [], w, format, history)
    }

    /// Streams the questions seen in one pass (those with a snapshot in
    /// it), latest state, in the export's formats, which are the crawl
    /// output's: a resumed `crawl --store` rewrites its output with these,
    /// so the output holds the records of the whole pass, not only of the
    /// part fetched after the restart. Returns rows written.
    pub fn export_pass(
        &self,
        pass_id: i64,
        w: impl Write,
        format: ExportFormat,
    ) -> Result<u64, StoreError> {
        self.write_rows(
            "SELECT q.* FROM questions q
             JOIN snapshots s ON s.site = q.site AND s.question_id = q.question_id
             WHERE s.pass_id = ?1
             ORDER BY q.site, q.question_id",
            [pass_id],
            w,
            format,
            false,
        )
    }

    fn write_rows(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        w: impl Write,
        format: ExportFormat,
        history: bool,
    ) -> Result<u64, StoreError> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query(params)?;
        let mut n = 0;
        match format {
            ExportFormat::Jsonl => {
                let mut w = std::io::BufWriter::new(w);
                while let Some(r) = rows.next()? {
                    if history {
                        serde_json::to_writer(&mut w, &history_from_row(r)?)?;
                    } else {
                        serde_json::to_writer(&mut w, &question_from_row(r)?)?;
                    }
                    w.write_all(b"\n")?;
                    n += 1;
                }
                w.flush()?;
            }
            ExportFormat::Csv => {
                let mut w = csv::Writer::from_writer(w);
                while let Some(r) = rows.next()? {
                    if history {
                        w.serialize(HistoryCsvRow::from(history_from_row(r)?))?;
                    } else {
                        w.serialize(CsvRow::from(&question_from_row(r)?))?;
                    }
                    n += 1;
                }
                // An empty export still gets its header, so tools reading it
                // see the columns.
                if n == 0 {
                    if history {
                        w.write_record(HISTORY_COLUMNS)?;
                    } else {
                        w.write_record(CSV_COLUMNS)?;
                    }
                }
                w.flush()?;
            }
        }
        Ok(n)
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

enum Change {
    New,
    Updated,
    Unchanged,
}

/// The figures that decide "changed?", as stored.
#[derive(PartialEq)]
struct Figures {
    votes: i64,
    answers: u64,
    replies: Option<u64>,
    views: u64,
    title: String,
    status: String,
    has_accepted_answer: bool,
}

fn upsert_question(tx: &Transaction, q: &Question, now: &str) -> Result<Change, StoreError> {
    let stored = tx
        .prepare_cached(
            "SELECT votes, answers, replies, views, title, status, has_accepted_answer, tags
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
            ))
        })
        .optional()?;
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
    tx.prepare_cached(
        "INSERT INTO questions (
             site, question_id, url, title, excerpt, votes, answers, replies, views,
             views_exact, tags, has_accepted_answer, author_name, author_reputation,
             asked_at, modified_at, answered_at, bounty, status, post_kind,
             community_wiki, tag, tab, page, fetched_at, first_seen_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?26)
         ON CONFLICT (site, question_id) DO UPDATE SET
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
             last_seen_at = excluded.last_seen_at",
    )?
    .execute(params![
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
        ts(q.fetched_at),
        now
    ])?;
    // Retags are rare: rewrite the side table only when the list changed.
    if tags_changed {
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

fn question_from_row(r: &Row) -> Result<Question, StoreError> {
    let tags: String = r.get("tags")?;
    Ok(Question {
        site: r.get("site")?,
        question_id: r.get("question_id")?,
        url: r.get("url")?,
        title: r.get("title")?,
        excerpt: r.get("excerpt")?,
        votes: r.get("votes")?,
        answers: r.get("answers")?,
        replies: r.get("replies")?,
        views: r.get("views")?,
        views_exact: r.get("views_exact")?,
        tags: serde_json::from_str(&tags).map_err(|e| StoreError::Decode {
            column: "questions.tags",
            value: tags.clone(),
            reason: e.to_string(),
        })?,
        has_accepted_answer: r.get("has_accepted_answer")?,
        author_name: r.get("author_name")?,
        author_reputation: r.get("author_reputation")?,
        asked_at: parse_opt_ts("questions.asked_at", r.get("asked_at")?)?,
        modified_at: parse_opt_ts("questions.modified_at", r.get("modified_at")?)?,
        answered_at: parse_opt_ts("questions.answered_at", r.get("answered_at")?)?,
        bounty: r.get("bounty")?,
        status: parse_enum::<QuestionStatus>("questions.status", r.get("status")?)?,
        post_kind: parse_enum::<PostKind>("questions.post_kind", r.get("post_kind")?)?,
        community_wiki: r.get("community_wiki")?,
        tag: r.get("tag")?,
        tab: r.get("tab")?,
        page: r.get("page")?,
        fetched_at: parse_ts("questions.fetched_at", r.get("fetched_at")?)?,
    })
}

fn history_from_row(r: &Row) -> Result<HistoryRow, StoreError> {
    Ok(HistoryRow {
        site: r.get(0)?,
        question_id: r.get(1)?,
        pass_id: r.get(2)?,
        seen_at: parse_ts("snapshots.seen_at", r.get(3)?)?,
        votes: r.get(4)?,
        answers: r.get(5)?,
        views: r.get(6)?,
    })
}

/// Timestamps are stored as fixed-width RFC 3339 text in UTC with
/// nanoseconds: readable in the sqlite3 shell, lossless, and ordered as text
/// the way they are in time, which the growth query relies on.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn parse_ts(column: &'static str, s: String) -> Result<DateTime<Utc>, StoreError> {
    match DateTime::parse_from_rfc3339(&s) {
        Ok(t) => Ok(t.with_timezone(&Utc)),
        Err(e) => Err(StoreError::Decode {
            column,
            value: s,
            reason: e.to_string(),
        }),
    }
}

fn parse_opt_ts(
    column: &'static str,
    s: Option<String>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| parse_ts(column, s)).transpose()
}

/// Enums are stored under their serde names, the same words as in JSONL.
fn enum_text<T: Serialize>(v: &T) -> Result<String, StoreError> {
    match serde_json::to_value(v)? {
        serde_json::Value::String(s) => Ok(s),
        other => Err(StoreError::Decode {
            column: "enum",
            value: other.to_string(),
            reason: "not a unit variant".into(),
        }),
    }
}

fn parse_enum<T: DeserializeOwned>(column: &'static str, s: String) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.clone())).map_err(|e| StoreError::Decode {
        column,
        value: s,
        reason: e.to_string(),
    })
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The crawl's CSV columns (`output::CsvRow`), in order.
const CSV_COLUMNS: [&str; 25] = [
    "site",
    "question_id",
    "url",
    "title",
    "excerpt",
    "votes",
    "answers",
    "replies",
    "views",
    "views_exact",
    "tags",
    "has_accepted_answer",
    "author_name",
    "author_reputation",
    "asked_at",
    "modified_at",
    "answered_at",
    "bounty",
    "status",
    "post_kind",
    "community_wiki",
    "tag",
    "tab",
    "page",
    "fetched_at",
];

const HISTORY_COLUMNS: [&str; 7] = [
    "site",
    "question_id",
    "pass_id",
    "seen_at",
    "votes",
    "answers",
    "views",
];

/// History in CSV: `seen_at` written as the crawl's CSV writes times.
#[derive(Serialize)]
struct HistoryCsvRow {
    site: String,
    question_id: u64,
    pass_id: i64,
    seen_at: String,
    votes: i64,
    answers: u64,
    views: u64,
}

impl From<HistoryRow> for HistoryCsvRow {
    fn from(h: HistoryRow) -> Self {
        HistoryCsvRow {
            site: h.site,
            question_id: h.question_id,
            pass_id: h.pass_id,
            seen_at: crate::output::csv_time(&h.seen_at),
            votes: h.votes,
            answers: h.answers,
            views: h.views,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, hour, 0, 0).unwrap()
    }

    fn ctx(tag: &str, page: u32) -> PageContext {
        PageContext {
            site: "stackoverflow.com".into(),
            base_url: "https://stackoverflow.com".into(),
            tag: tag.into(),
            tab: "newest".into(),
            page,
        }
    }

    /// A question as the crawl tag's listing showed it at `fetched`.
    fn q(
        id: u64,
        crawl_tag: &str,
        tags: &[&str],
        votes: i64,
        answers: u64,
        views: u64,
    ) -> Question {
        Question {
            site: "stackoverflow.com".into(),
            question_id: id,
            url: format!("https://stackoverflow.com/questions/{id}"),
            title: format!("Question {id}"),
            excerpt: "How do I...".into(),
            votes,
            answers,
            replies: None,
            views,
            views_exact: true,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            has_accepted_answer: false,
            author_name: Some("ferris".into()),
            author_reputation: Some(1234),
            asked_at: Some(at(0)),
            modified_at: None,
            answered_at: None,
            bounty: None,
            status: QuestionStatus::Open,
            post_kind: PostKind::Question,
            community_wiki: false,
            tag: crawl_tag.into(),
            tab: "newest".into(),
            page: 1,
            fetched_at: at(1),
        }
    }

    fn seen_at(mut q: Question, hour: u32) -> Question {
        q.fetched_at = at(hour);
        q
    }

    fn count(store: &Store, sql: &str) -> i64 {
        store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn upsert_keeps_latest_state_and_one_snapshot_per_pass() {
        let mut s = Store::open_in_memory().unwrap();
        let p1 = s.begin_pass("langs", at(1)).unwrap().pass_id;
        let page = [
            q(1, "rust", &["rust"], 1, 0, 10),
            q(2, "rust", &["rust"], 0, 0, 5),
        ];
        s.record_page(p1, &ctx("rust", 1), &page, at(1)).unwrap();
        s.finish_pass(p1, at(2)).unwrap();

        let p2 = s.begin_pass("langs", at(3)).unwrap().pass_id;
        assert_ne!(p1, p2);
        let mut later = seen_at(q(1, "rust", &["rust"], 3, 1, 40), 3);
        later.title = "Question 1, edited".into();
        s.record_page(p2, &ctx("rust", 1), &[later], at(3)).unwrap();

        let st = s.stats().unwrap();
        assert_eq!((st.questions, st.snapshots, st.passes), (2, 3, 2));
        let (votes, views, title, first, last): (i64, i64, String, String, String) = s
            .conn
            .query_row(
                "SELECT votes, views, title, first_seen_at, last_seen_at
                 FROM questions WHERE question_id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(
            (votes, views, title.as_str()),
            (3, 40, "Question 1, edited")
        );
        assert_eq!((first, last), (ts(at(1)), ts(at(3))));
        assert_eq!(
            count(
                &s,
                "SELECT views FROM snapshots WHERE question_id = 1 AND pass_id = 1"
            ),
            10
        );
        assert!(s.is_seen("stackoverflow.com", 2).unwrap());
        assert!(!s.is_seen("stackoverflow.com", 3).unwrap());
        assert!(!s.is_seen("superuser.com", 1).unwrap());
    }

    #[test]
    fn page_recorded_twice_in_a_pass_adds_no_snapshot() {
        let mut s = Store::open_in_memory().unwrap();
        let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
        let page = [
            q(1, "rust", &["rust"], 1, 0, 10),
            q(2, "rust", &["rust"], 0, 0, 5),
        ];
        let first = s.record_page(p, &ctx("rust", 1), &page, at(1)).unwrap();
        let again = s.record_page(p, &ctx("rust", 1), &page, at(2)).unwrap();
        assert_eq!(first.new, 2);
        assert_eq!(again.unchanged, 2);
        assert_eq!(count(&s, "SELECT COUNT(*) FROM snapshots"), 2);
        assert_eq!(count(&s, "SELECT COUNT(*) FROM pass_pages"), 1);
        // The pass's totals keep the first recording.
        let t = s.pass_totals(p).unwrap();
        assert_eq!((t.pages, t.questions, t.new, t.unchanged), (1, 2, 2, 0));
    }

    #[test]
    fn page_write_counts_new_updated_unchanged() {
        let mut s = Store::open_in_memory().unwrap();
        let p1 = s.begin_pass("langs", at(1)).unwrap().pass_id;
        let base: Vec<_> = (1..=6)
            .map(|id| q(id, "rust", &["rust"], 0, 0, 10))
            .collect();
        let w = s.record_page(p1, &ctx("rust", 1), &base, at(1)).unwrap();
        assert_eq!(
            w,
            PageWrite {
                new: 6,
                updated: 0,
                unchanged: 0,
                ends_tag: false
            }
        );
        s.finish_pass(p1, at(1)).unwrap();

        let p2 = s.begin_pass("langs", at(2)).unwrap().pass_id;
        let mut next = base.clone();
        next[0].votes = 1;
        next[1].answers = 1;
        next[2].views = 11;
        next[3].status = QuestionStatus::Closed;
        next[4].has_accepted_answer = true;
        // Not a figure: a new excerpt or fetch time alone is "unchanged".
        next[5].excerpt = "How do I, now?".into();
        next[5].fetched_at = at(2);
        next.push(q(7, "rust", &["rust"], 0, 0, 1));
        let w = s.record_page(p2, &ctx("rust", 1), &next, at(2)).unwrap();
        assert_eq!(
            w,
            PageWrite {
                new: 1,
                updated: 5,
                unchanged: 1,
                ends_tag: false
            }
        );
        assert!(!w.all_unchanged());

        let p3_page = s
            .record_page(p2, &ctx("rust", 2), &next[5..6], at(2))
            .unwrap();
        assert!(p3_page.all_unchanged());
        let t = s.pass_totals(p2).unwrap();
        assert_eq!(
            t,
            PassTotals {
                pages: 2,
                questions: 8,
                new: 1,
                updated: 5,
                unchanged: 2
            }
        );
    }

    #[test]
    fn begin_pass_resumes_the_unfinished_pass_and_lists_done_pages() {
        let mut s = Store::open_in_memory().unwrap();
        assert_eq!(s.previous_finished_pass("langs").unwrap(), None);
        let start = s.begin_pass("langs", at(1)).unwrap();
        assert!(!start.resumed);
        s.record_page(
            start.pass_id,
            &ctx("rust", 1),
            &[q(1, "rust", &["rust"], 0, 0, 1)],
            at(1),
        )
        .unwrap();
        s.record_page(start.pass_id, &ctx("go", 2), &[], at(1))
            .unwrap();

        // A restart after kill -9: same pass, and its done pages.
        let again = s.begin_pass("langs", at(2)).unwrap();
        assert_eq!(
            again,
            PassStart {
                pass_id: start.pass_id,
                resumed: true
            }
        );
        let done = s.done_pages(start.pass_id).unwrap();
        let expected: HashSet<_> = [
            ("rust".to_string(), "newest".to_string(), 1),
            ("go".to_string(), "newest".to_string(), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(done, expected);

        // Another tag set has passes of its own.
        let other = s.begin_pass("dbs", at(2)).unwrap();
        assert!(!other.resumed);
        assert_ne!(other.pass_id, start.pass_id);

        s.finish_pass(start.pass_id, at(3)).unwrap();
        s.finish_pass(start.pass_id, at(4)).unwrap();
        assert_eq!(
            s.previous_finished_pass("langs").unwrap(),
            Some(start.pass_id)
        );
        assert_eq!(s.previous_finished_pass("dbs").unwrap(), None);
        let next = s.begin_pass("langs", at(5)).unwrap();
        assert!(!next.resumed);
        assert!(s.done_pages(next.pass_id).unwrap().is_empty());
    }

    #[test]
    fn a_resumed_pass_knows_where_each_tag_ended() {
        let mut s = Store::open_in_memory().unwrap();
        let pass = s.begin_pass("set", at(1)).unwrap().pass_id;
        s.record_page(
            pass,
            &ctx("rust", 1),
            &[q(1, "rust", &["rust"], 0, 0, 1)],
            at(1),
        )
        .unwrap();
        let w = s
            .record_page_ending(pass, &ctx("rust", 2), &[], at(1), |_| true)
            .unwrap();
        assert!(w.ends_tag);
        s.record_page_ending(pass, &ctx("rust", 4), &[], at(1), |_| true)
            .unwrap();
        let again = s.begin_pass("set", at(2)).unwrap();
        assert!(again.resumed);
        let ends = s.tag_ends(again.pass_id).unwrap();
        assert_eq!(
            ends.get(&("rust".to_string(), "newest".to_string())),
            Some(&2)
        );
        assert_eq!(ends.len(), 1);
    }

    #[test]
    fn pages_of_finished_or_unknown_passes_are_refused() {
        let mut s = Store::open_in_memory().unwrap();
        let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
        s.finish_pass(p, at(2)).unwrap();
        let page = [q(1, "rust", &["rust"], 0, 0, 1)];
        assert!(matches!(
            s.record_page(p, &ctx("rust", 1), &page, at(3)),
            Err(StoreError::PassFinished(id)) if id == p
        ));
        assert!(matches!(
            s.record_page(99, &ctx("rust", 1), &page, at(3)),
            Err(StoreError::UnknownPass(99))
        ));
        assert!(matches!(
            s.finish_pass(99, at(3)),
            Err(StoreError::UnknownPass(99))
        ));
        // The refused page left nothing behind.
        assert_eq!(s.stats().unwrap().questions, 0);
    }

    #[test]
    fn reopening_a_file_keeps_everything_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        {
            let mut s = Store::open(&path).unwrap();
            let mode: String = s
                .conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
            s.record_page(
                p,
                &ctx("rust", 1),
                &[q(1, "rust", &["rust"], 0, 0, 1)],
                at(1),
            )
            .unwrap();
        }
        for _ in 0..2 {
            let mut s = Store::open(&path).unwrap();
            assert_eq!(count(&s, "PRAGMA user_version"), MIGRATIONS.len() as i64);
            let st = s.stats().unwrap();
            assert_eq!((st.questions, st.snapshots, st.passes), (1, 1, 1));
            assert!(st.size_bytes > 0);
            assert!(s.begin_pass("langs", at(2)).unwrap().resumed);
            s.checkpoint().unwrap();
        }
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        drop(Store::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        match Store::open(&path) {
            Err(StoreError::File { path: p, source }) => {
                assert_eq!(p, path);
                match *source {
                    StoreError::Schema { found, supported } => {
                        assert_eq!((found, supported), (99, MIGRATIONS.len() as i64))
                    }
                    e => panic!("wrong error: {e}"),
                }
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a newer schema was opened"),
        }
    }

    #[test]
    fn a_file_that_is_not_a_store_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.db");
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let err = Store::open(&path).err().expect("not a database");
        let message = err.to_string();
        assert!(
            message.contains(&path.display().to_string()) && message.contains("not a database"),
            "{message}"
        );
    }

    /// Two passes over two crawl tags, figures chosen by hand:
    ///
    /// | id | listed under | tags             | views, pass 1 → 2 | votes | answers     |
    /// |----|--------------|------------------|-------------------|-------|-------------|
    /// | 1  | rust, tokio  | rust tokio       | 100 → 160         | 5     | 2           |
    /// | 2  | rust         | rust serde       | 50 → 55           | -1    | 0           |
    /// | 3  | rust         | rust tokio async | 10 → (not seen)   | 0     | 0, Advice   |
    /// | 4  | tokio        | tokio            | 20 → 100          | 1     | 1           |
    fn report_fixture() -> Store {
        let mut s = Store::open_in_memory().unwrap();
        let mut advice = q(3, "rust", &["rust", "tokio", "async"], 0, 0, 10);
        advice.post_kind = PostKind::Advice;
        advice.replies = Some(4);
        let p1 = s.begin_pass("async", at(1)).unwrap().pass_id;
        let rust1 = [
            q(1, "rust", &["rust", "tokio"], 5, 2, 100),
            q(2, "rust", &["rust", "serde"], -1, 0, 50),
            advice,
        ];
        s.record_page(p1, &ctx("rust", 1), &rust1, at(1)).unwrap();
        let tokio1 = [
            q(1, "tokio", &["rust", "tokio"], 5, 2, 100),
            q(4, "tokio", &["tokio"], 1, 1, 20),
        ];
        s.record_page(p1, &ctx("tokio", 1), &tokio1, at(1)).unwrap();
        s.finish_pass(p1, at(2)).unwrap();

        let p2 = s.begin_pass("async", at(5)).unwrap().pass_id;
        let rust2 = [
            seen_at(q(1, "rust", &["rust", "tokio"], 5, 2, 160), 5),
            seen_at(q(2, "rust", &["rust", "serde"], -1, 0, 55), 5),
        ];
        s.record_page(p2, &ctx("rust", 1), &rust2, at(5)).unwrap();
        let tokio2 = [seen_at(q(4, "tokio", &["tokio"], 1, 1, 100), 5)];
        s.record_page(p2, &ctx("tokio", 1), &tokio2, at(5)).unwrap();
        s.finish_pass(p2, at(6)).unwrap();
        s
    }

    #[test]
    fn report_totals_growth_and_co_tags() {
        let r = report_fixture().report(2).unwrap();
        assert_eq!(r.tags.len(), 2);
        let rust = &r.tags[0];
        assert_eq!(rust.tag, "rust");
        // 160 + 55 + 10 views, 5 - 1 + 0 votes, one unanswered (the Advice
        // post has replies, not answers, and does not count).
        assert_eq!(
            (
                rust.questions,
                rust.views,
                rust.votes,
                rust.answers,
                rust.unanswered
            ),
            (3, 225, 4, 2, 1)
        );
        assert!((rust.unanswered_share - 1.0 / 3.0).abs() < 1e-12);
        let co: Vec<_> = rust
            .co_tags
            .iter()
            .map(|c| (c.tag.as_str(), c.questions))
            .collect();
        // tokio on 2 questions; async and serde tie at 1, by name; top 2.
        assert_eq!(co, [("tokio", 2), ("async", 1)]);
        assert!((rust.co_tags[0].share - 2.0 / 3.0).abs() < 1e-12);

        let tokio = &r.tags[1];
        assert_eq!(tokio.tag, "tokio");
        assert_eq!(
            (
                tokio.questions,
                tokio.views,
                tokio.votes,
                tokio.answers,
                tokio.unanswered
            ),
            (2, 260, 6, 3, 0)
        );
        let co: Vec<_> = tokio
            .co_tags
            .iter()
            .map(|c| (c.tag.as_str(), c.questions))
            .collect();
        assert_eq!(co, [("rust", 1)]);

        // Gains between the two latest snapshots: #4 +80, #1 +60, #2 +5;
        // #3 has one snapshot only. Top 2.
        let g: Vec<_> = r
            .growth
            .iter()
            .map(|g| (g.question_id, g.views_gained, g.from_pass, g.to_pass))
            .collect();
        assert_eq!(g, [(4, 80, 1, 2), (1, 60, 1, 2)]);
        assert_eq!(
            (r.growth[0].from_seen_at, r.growth[0].to_seen_at),
            (at(1), at(5))
        );
        assert_eq!(
            (r.growth[0].votes_gained, r.growth[0].answers_gained),
            (0, 0)
        );
    }

    #[test]
    fn report_of_an_empty_store_is_empty() {
        let r = Store::open_in_memory().unwrap().report(10).unwrap();
        assert!(r.tags.is_empty() && r.growth.is_empty());
    }

    #[test]
    fn jsonl_export_round_trips_into_question() {
        let mut s = Store::open_in_memory().unwrap();
        let mut full = q(7, "rust", &["rust", "c#", "c++"], -2, 0, 3_100_000);
        full.title = "Quotes \" and, commas; here".into();
        full.views_exact = false;
        full.replies = Some(3);
        full.post_kind = PostKind::Advice;
        full.status = QuestionStatus::OnHold;
        full.has_accepted_answer = true;
        full.author_name = None;
        full.author_reputation = None;
        full.modified_at = Some(Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap());
        full.answered_at = Some(at(3));
        full.bounty = Some(50);
        full.community_wiki = true;
        full.fetched_at = Utc.timestamp_opt(1_740_000_000, 1).unwrap();
        let plain = q(3, "rust", &["rust"], 1, 1, 1);
        let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
        s.record_page(p, &ctx("rust", 1), &[full.clone(), plain.clone()], at(1))
            .unwrap();
        // A later sighting under another tab and page is the latest state.
        let mut moved = full.clone();
        moved.tab = "active".into();
        moved.page = 4;
        moved.views = 3_200_000;
        s.record_page(p, &ctx("rust", 4), &[moved.clone()], at(2))
            .unwrap();

        let mut out = Vec::new();
        let n = s.export(&mut out, ExportFormat::Jsonl, false).unwrap();
        assert_eq!(n, 2);
        let text = String::from_utf8(out).unwrap();
        let back: Vec<Question> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, [plain, moved]);
    }

    #[test]
    fn csv_export_has_the_crawl_columns() {
        let s = report_fixture();
        let mut out = Vec::new();
        let n = s.export(&mut out, ExportFormat::Csv, false).unwrap();
        assert_eq!(n, 4);
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "site,question_id,url,title,excerpt,votes,answers,replies,views,views_exact,\
             tags,has_accepted_answer,author_name,author_reputation,asked_at,modified_at,\
             answered_at,bounty,status,post_kind,community_wiki,tag,tab,page,fetched_at"
        );
        assert!(lines.next().unwrap().contains(",rust;tokio,"));
        assert_eq!(text.lines().count(), 5);

        let mut empty = Vec::new();
        let n = Store::open_in_memory()
            .unwrap()
            .export(&mut empty, ExportFormat::Csv, false)
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            String::from_utf8(empty).unwrap(),
            CSV_COLUMNS.join(",") + "\n"
        );
    }

    #[test]
    fn csv_and_jsonl_write_times_alike() {
        let s = report_fixture();
        for history in [false, true] {
            let (mut jsonl, mut csv) = (Vec::new(), Vec::new());
            s.export(&mut jsonl, ExportFormat::Jsonl, history).unwrap();
            s.export(&mut csv, ExportFormat::Csv, history).unwrap();
            let json_rows: Vec<serde_json::Value> = String::from_utf8(jsonl)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let mut reader = csv::Reader::from_reader(csv.as_slice());
            let headers = reader.headers().unwrap().clone();
            let columns = ["asked_at", "fetched_at", "seen_at"];
            let mut compared = 0;
            for (row, json) in reader.records().zip(&json_rows) {
                let row = row.unwrap();
                for (name, field) in headers.iter().zip(row.iter()) {
                    if columns.contains(&name) {
                        let want = json[name].as_str().unwrap();
                        assert!(want.ends_with('Z'), "{want}");
                        assert_eq!(field, want, "{name}, history {history}");
                        compared += 1;
                    }
                }
            }
            assert!(compared >= json_rows.len(), "history {history}");
        }
    }

    #[test]
    fn history_export_writes_one_row_per_snapshot() {
        let s = report_fixture();
        // Pass 1: #1 (once, though listed twice), #2, #3, #4; pass 2: #1, #2, #4.
        let mut out = Vec::new();
        assert_eq!(s.export(&mut out, ExportFormat::Jsonl, true).unwrap(), 7);
        let rows: Vec<HistoryRow> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 7);
        assert_eq!(
            rows[0],
            HistoryRow {
                site: "stackoverflow.com".into(),
                question_id: 1,
                pass_id: 1,
                seen_at: at(1),
                votes: 5,
                answers: 2,
                views: 100,
            }
        );

        let mut out = Vec::new();
        assert_eq!(s.export(&mut out, ExportFormat::Csv, true).unwrap(), 7);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "site,question_id,pass_id,seen_at,votes,answers,views"
        );
        assert_eq!(text.lines().count(), 8);
    }
}
