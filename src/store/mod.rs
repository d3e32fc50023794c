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
//!
//! This file holds what every part shares: opening a `Store`, its errors,
//! how values are encoded in columns, and [`PassStore`], the interface the
//! crawl needs from any store. The rest is split by concern: `schema` (the
//! migrations), `writes` (a pass and its pages), `import` (captured pages
//! of the past, `parse --store`), `report`, `history`, `export` (and
//! `parquet`, its columnar format).

mod export;
mod history;
mod import;
mod location;
pub mod output;
pub mod parquet;
pub(crate) mod pg;
mod report;
mod schema;
pub mod writable;
pub mod writer_lock;
mod writes;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod fixtures;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;
use tracing::warn;

use crate::model::{PageContext, Question};

pub use export::{ExportFormat, HistoryRow, OutputFormat};
pub use history::{Bucket, DayCount, History, PassShare, QuestionViews};
pub use import::{Capture, CaptureWrite, Import, IMPORT_TAG_SET};
pub use location::{StoreLocation, UnknownScheme};
pub(crate) use pg::legacy_key;
pub use pg::{CountError, PgStore, SharedCounter};
pub use report::{CoTag, Growth, Report, TagReport};
pub use writes::{PageWrite, PassStart, PassTotals};

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
    /// A reader found a file from an older stackcrawl: only a writer
    /// migrates it.
    #[error(
        "the store is at schema version {found}, older than this stackcrawl's \
         {supported}: `report` and `export` only read; a `crawl --store` or \
         `run` on it brings it up to date"
    )]
    Outdated { found: i64, supported: i64 },
    #[error("the store {path}: {source}")]
    File {
        path: PathBuf,
        source: Box<StoreError>,
    },
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot reach the store {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the store {name}: {source}")]
    Named {
        name: String,
        source: Box<StoreError>,
    },
    #[error("store: {}", pg::describe(.0))]
    Postgres(#[from] postgres::Error),
    #[error("store TLS: {0}")]
    Tls(String),
    #[error("pass {0} is not in the store")]
    UnknownPass(i64),
    #[error("pass {0} is finished and takes no more pages")]
    PassFinished(i64),
    /// The page's lease passed to another process (this one stalled past
    /// it) since the writer claimed it: its records are older than what
    /// the new holder fetched, and are not written.
    #[error(
        "page {page} of [{tag}] ({tab}): lease {stale} was taken over ({current:?}): write dropped"
    )]
    Fenced {
        tag: String,
        tab: String,
        page: u32,
        stale: LeaseToken,
        /// The page as the store has it now: done by another process, or
        /// held (or free) to be claimed again.
        current: Claim,
    },
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
    #[error("export: {0}")]
    Parquet(#[from] parquet::ParquetError),
}

impl StoreError {
    /// Whether the store refuses writes for good, not only this one: its
    /// disk is full, it is read-only, it cannot be opened or written at
    /// all, or this user may not write to it. See
    /// [`OutputError::refuses_every_write`](output::OutputError::refuses_every_write).
    pub fn refuses_every_write(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::File { source, .. } | StoreError::Named { source, .. } => {
                source.refuses_every_write()
            }
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(DiskFull | ReadOnly | SystemIoFailure | CannotOpen | PermissionDenied)
            ),
            // 53100: the server's disk is full (not the rest of class 53:
            // out of memory, too many connections pass); 25006: a
            // read-only transaction (a standby); 42501: no privilege to
            // write.
            StoreError::Postgres(e) => e
                .code()
                .is_some_and(|c| matches!(c.code(), "53100" | "25006" | "42501")),
            StoreError::Io(e) => output::is_lasting(e),
            _ => false,
        }
    }
}

/// Sizes for the periodic status line. Every figure is exact, and cheap on
/// a store of millions of snapshots: SQLite counts (one writer, a local
/// file); PostgreSQL reads the totals its page writes keep, since every
/// process of a fleet asks at every status interval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub questions: u64,
    pub snapshots: u64,
    pub passes: u64,
    /// SQLite: the main database file (page_count × page_size), the WAL
    /// not counted. PostgreSQL: the database's files, indexes included.
    pub size_bytes: u64,
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

    /// Opens the file only to read it (`report`, `export`): nothing is
    /// written, not even the schema, so a store in a folder the reader may
    /// not write (another user's, a read-only mount) reads as well, and no
    /// `-wal`/`-shm` files owned by the reader are left beside it. A store
    /// whose writer is gone has no `-wal` file, and is opened immutable (no
    /// lock or shared-memory file needed); with a writer at work its WAL
    /// files exist and are used read-only.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let immutable = || {
            let uri = format!(
                "file:{}?immutable=1",
                percent_encoding::utf8_percent_encode(
                    &path.to_string_lossy(),
                    percent_encoding::NON_ALPHANUMERIC
                )
                .to_string()
                .replace("%2F", "/")
            );
            Connection::open_with_flags(uri, flags)
        };
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let conn = if Path::new(&wal).exists() {
            // A writer at work, or one that died: its log is read, which
            // needs the shared-memory file beside it. Where that cannot be
            // had, the file is read as it is, without the log's last
            // transactions, and the reader says so.
            Connection::open_with_flags(path, flags)
                .and_then(|c| c.query_row("SELECT 1", [], |_| Ok(())).map(|()| c))
                .or_else(|e| {
                    warn!(store = %path.display(), error = %e, "the store's write-ahead log cannot be read without writing beside it: reading the file without its last transactions");
                    immutable()
                })
        } else {
            immutable()
        }
        .map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        let supported = schema::MIGRATIONS.len() as i64;
        let outdated = match found.cmp(&supported) {
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some(StoreError::Schema { found, supported }),
            std::cmp::Ordering::Less => Some(StoreError::Outdated { found, supported }),
        };
        if let Some(e) = outdated {
            return Err(StoreError::File {
                path: path.to_path_buf(),
                source: Box::new(e),
            });
        }
        Ok(Store {
            conn,
            path: Some(path.to_path_buf()),
        })
    }

    /// A throwaway store, for tests and dry runs.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
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
        schema::migrate(&mut conn)?;
        Ok(Store { conn, path: None })
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

/// What the crawl needs from a store, and all it needs: the calls the
/// aggregator and the crawler make on the store between opening it and
/// dropping it. It is the seam for a second backend (PostgreSQL): a type
/// implementing it can replace the SQLite [`Store`] under the actors without
/// touching them. `report` and `export`, run from the command line against
/// a store opened for the purpose, are not part of it.
///
/// Object safe, so the actors can hold a `Box<dyn PassStore>`: where the
/// inherent methods of [`Store`] take generic arguments, these take trait
/// objects. `Send` because the store is moved onto the aggregator's arbiter.
pub trait PassStore: Send {
    /// The store's file, which the one-writer lock guards; `None` for a
    /// store that is not a file (in memory, or on a server).
    fn path(&self) -> Option<&Path>;

    /// The tag set's most recently finished pass: with one, a Newest pass
    /// can be incremental.
    fn previous_finished_pass(&self, tag_set: &str) -> Result<Option<i64>, StoreError>;

    /// When the tag set's latest pass started, if it is finished and the
    /// store is shared: a process of a fleet that starts (or restarts)
    /// after the others finished a pass waits for the next one to fall
    /// due instead of opening one at once. A store with one writer says
    /// `None`, and its `run` starts every tag set at once, as it always has.
    fn finished_pass_started(&self, _tag_set: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(None)
    }

    /// How long a call may wait for a store that does not answer before it
    /// fails (`[store] give_up_secs`); a local file has nothing to wait for.
    fn set_give_up(&mut self, _after: Duration) {}

    /// Whether pages must be leased before they are fetched: the store is
    /// shared by a fleet. A store with one writer leases every page at once.
    fn leases_pages(&self) -> bool {
        false
    }

    /// Leases a page of the pass to `worker` for `lease` before it is
    /// fetched, unless another process did or is doing it: a batch of one
    /// (see [`claim_pages`](PassStore::claim_pages)). A page lost to
    /// another process's claim at the same instant is held by it.
    fn claim_page(
        &mut self,
        pass_id: i64,
        ctx: &PageContext,
        worker: &str,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let claim = self
            .claim_pages(pass_id, std::slice::from_ref(ctx), 1, worker, lease)?
            .pop()
            .flatten();
        Ok(claim.unwrap_or_else(|| Claim::Held {
            by: "another process".into(),
            until: Utc::now(),
        }))
    }

    /// Leases to `worker`, in one go, up to `want` of the candidate
    /// `pages` (in the order the paging rules hand them out): the first
    /// ones neither done nor held by another process, so that processes
    /// sharing the store take disjoint pages instead of asking for the
    /// same ones. One answer per candidate, in order: `Some` for a page
    /// leased, done, or held by another process; `None` for one not
    /// claimed this time (past the `want` leased, or lost to another
    /// process's claim in the same instant), to be offered again. A store
    /// with one writer (SQLite, under its lock) leases the first `want`.
    fn claim_pages(
        &mut self,
        _pass_id: i64,
        pages: &[PageContext],
        want: usize,
        _worker: &str,
        _lease: Duration,
    ) -> Result<Vec<Option<Claim>>, StoreError> {
        Ok(Claim::first_leased(pages.len(), want))
    }

    /// [`record_page_ending`](PassStore::record_page_ending) for a page
    /// claimed with `lease`: the page is written only if the lease is still
    /// the writer's, checked in the write's transaction; otherwise
    /// [`StoreError::Fenced`] and nothing is written. A store with one
    /// writer has no one to lose a lease to: every write goes through.
    fn record_leased_page(
        &mut self,
        pass_id: i64,
        ctx: &PageContext,
        _lease: LeaseToken,
        questions: &[Question],
        now: DateTime<Utc>,
        ends_tag: &(dyn Fn(&PageWrite) -> bool + Sync),
    ) -> Result<PageWrite, StoreError> {
        self.record_page_ending(pass_id, ctx, questions, now, ends_tag)
    }

    /// Hands back the lease of a page given up (failed after its retries),
    /// so another process may try it at once rather than when the lease
    /// expires. A lease the page no longer has (taken over) is left alone.
    fn release_page(
        &mut self,
        _pass_id: i64,
        _ctx: &PageContext,
        _lease: LeaseToken,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Resumes the tag set's unfinished pass, or starts a new one.
    fn begin_pass(&mut self, tag_set: &str, now: DateTime<Utc>) -> Result<PassStart, StoreError>;

    /// (tag, tab, page) already done in the pass: a restart skips them.
    fn done_pages(&self, pass_id: i64) -> Result<HashSet<(String, String, u32)>, StoreError>;

    /// Per (tag, tab), the highest page done in the tag set's finished
    /// passes: for an archive source, the last capture stored (a page is
    /// a capture's time), where the next pass's index query starts.
    fn last_pages(&self, tag_set: &str) -> Result<HashMap<(String, String), u32>, StoreError>;

    /// Per (tag, tab), the first page of the pass where the tag ended.
    fn tag_ends(&self, pass_id: i64) -> Result<HashMap<(String, String), u32>, StoreError>;

    /// Stores one page atomically, all of it or none; `ends_tag` decides from
    /// what the write found whether the tag's pass ends at this page.
    fn record_page_ending(
        &mut self,
        pass_id: i64,
        ctx: &PageContext,
        questions: &[Question],
        now: DateTime<Utc>,
        ends_tag: &(dyn Fn(&PageWrite) -> bool + Sync),
    ) -> Result<PageWrite, StoreError>;

    /// Marks the pass finished; finishing a finished pass is a no-op.
    fn finish_pass(&mut self, pass_id: i64, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Writes a listing page captured in the past into the import's pass,
    /// in one transaction; a capture the store has adds nothing. See
    /// `store::import`.
    fn import_capture(
        &mut self,
        import: &mut Import,
        capture: &Capture,
    ) -> Result<CaptureWrite, StoreError>;

    /// The pass's totals over its done pages.
    fn pass_totals(&self, pass_id: i64) -> Result<PassTotals, StoreError>;

    /// Sizes for the periodic status line.
    fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Streams the questions seen in one pass, latest state, in the crawl
    /// output's format. Returns rows written.
    fn export_pass(
        &self,
        pass_id: i64,
        w: &mut dyn Write,
        format: OutputFormat,
    ) -> Result<u64, StoreError>;

    /// Makes what was written durable on its own, for a clean shutdown.
    fn checkpoint(&self) -> Result<(), StoreError>;

    /// `stackcrawl report`: per crawl tag totals, co-occurring tags and
    /// the questions that grew most; `top_n` bounds both lists.
    fn report(&self, top_n: usize) -> Result<Report, StoreError>;

    /// `stackcrawl report --html`: the figures behind its charts.
    fn history(&self, top_n: usize) -> Result<History, StoreError>;

    /// `stackcrawl export`: every question's latest state (or, with
    /// `history`, every snapshot) as JSONL or CSV. Returns rows written.
    fn export(
        &self,
        w: &mut dyn Write,
        format: OutputFormat,
        history: bool,
    ) -> Result<u64, StoreError>;
}

/// What a process found when it claimed a page of a pass before fetching
/// it: on a store a fleet shares, each page is fetched by one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The page is this process's until its lease expires: fetch it, and
    /// write it with `token`.
    Leased {
        /// The process whose lease had expired (it died, or stalled).
        taken_over_from: Option<String>,
        token: LeaseToken,
    },
    /// Another process fetched and wrote it; `ends_tag` as it found.
    Done { ends_tag: bool, by: Option<String> },
    /// Another process holds it (fetching it now) until `until`.
    Held { by: String, until: DateTime<Utc> },
}

impl Claim {
    /// A batch's answers where nobody else can hold a page: the first
    /// `want` of `candidates` leased, unfenced, the rest not claimed.
    pub fn first_leased(candidates: usize, want: usize) -> Vec<Option<Claim>> {
        (0..candidates)
            .map(|i| {
                (i < want).then_some(Claim::Leased {
                    taken_over_from: None,
                    token: LeaseToken::UNFENCED,
                })
            })
            .collect()
    }
}

/// The generation of a page's lease: every claim of the page, a takeover
/// included, gets a greater one. A write carries the token of the claim
/// that fetched the page and commits only while the lease still has it, so
/// a holder that stalled past its lease cannot write over the figures of
/// the process that took the page over (fencing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseToken(pub i64);

impl LeaseToken {
    /// What a store with one writer hands out: it never fences.
    pub const UNFENCED: LeaseToken = LeaseToken(0);
}

impl std::fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Opens (creating and migrating if needed) the store `location` names.
/// Opens the store only to read it (`report`, `export`).
pub fn open_read_only(location: &StoreLocation) -> Result<Box<dyn PassStore>, StoreError> {
    Ok(match location {
        StoreLocation::Sqlite(path) => Box::new(Store::open_read_only(path)?),
        // A database server keeps its own files: a reader writes nothing.
        StoreLocation::Postgres(url) => Box::new(PgStore::open(url)?),
    })
}

pub fn open(location: &StoreLocation) -> Result<Box<dyn PassStore>, StoreError> {
    Ok(match location {
        StoreLocation::Sqlite(path) => Box::new(Store::open(path)?),
        StoreLocation::Postgres(url) => Box::new(PgStore::open(url)?),
    })
}

/// Each method forwards to the inherent one of the same name, which keeps
/// the generic signatures the rest of the crate calls.
impl PassStore for Store {
    fn path(&self) -> Option<&Path> {
        Store::path(self)
    }

    /// Another connection holding the file's lock (a backup, `sqlite3`, a
    /// long `export`) is waited out as long as the crawl's patience, not
    /// the few seconds that suit a reader: the engine reports the wait
    /// meanwhile and answers SIGTERM without it.
    fn set_give_up(&mut self, after: Duration) {
        if let Err(e) = self.conn.busy_timeout(after) {
            warn!(error = %e, "the store's busy timeout could not be set");
        }
    }

    fn previous_finished_pass(&self, tag_set: &str) -> Result<Option<i64>, StoreError> {
        Store::previous_finished_pass(self, tag_set)
    }

    fn begin_pass(&mut self, tag_set: &str, now: DateTime<Utc>) -> Result<PassStart, StoreError> {
        Store::begin_pass(self, tag_set, now)
    }

    fn done_pages(&self, pass_id: i64) -> Result<HashSet<(String, String, u32)>, StoreError> {
        Store::done_pages(self, pass_id)
    }

    fn tag_ends(&self, pass_id: i64) -> Result<HashMap<(String, String), u32>, StoreError> {
        Store::tag_ends(self, pass_id)
    }

    fn last_pages(&self, tag_set: &str) -> Result<HashMap<(String, String), u32>, StoreError> {
        Store::last_pages(self, tag_set)
    }

    fn record_page_ending(
        &mut self,
        pass_id: i64,
        ctx: &PageContext,
        questions: &[Question],
        now: DateTime<Utc>,
        ends_tag: &(dyn Fn(&PageWrite) -> bool + Sync),
    ) -> Result<PageWrite, StoreError> {
        Store::record_page_ending(self, pass_id, ctx, questions, now, ends_tag)
    }

    fn finish_pass(&mut self, pass_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        Store::finish_pass(self, pass_id, now)
    }

    fn import_capture(
        &mut self,
        import: &mut Import,
        capture: &Capture,
    ) -> Result<CaptureWrite, StoreError> {
        Store::import_capture(self, import, capture)
    }

    fn pass_totals(&self, pass_id: i64) -> Result<PassTotals, StoreError> {
        Store::pass_totals(self, pass_id)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        Store::stats(self)
    }

    fn export_pass(
        &self,
        pass_id: i64,
        w: &mut dyn Write,
        format: OutputFormat,
    ) -> Result<u64, StoreError> {
        Store::export_pass(self, pass_id, w, format)
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        Store::checkpoint(self)
    }

    fn report(&self, top_n: usize) -> Result<Report, StoreError> {
        Store::report(self, top_n)
    }

    fn history(&self, top_n: usize) -> Result<History, StoreError> {
        Store::history(self, top_n)
    }

    fn export(
        &self,
        w: &mut dyn Write,
        format: OutputFormat,
        history: bool,
    ) -> Result<u64, StoreError> {
        Store::export(self, w, format, history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::*;

    #[test]
    fn a_snapshot_of_a_question_not_stored_is_refused() {
        // The schema's foreign keys are enforced (the pragma turns them on
        // whatever SQLite's compiled-in default).
        let s = Store::open_in_memory().unwrap();
        let orphan = s.conn.execute(
            "INSERT INTO snapshots (site, question_id, pass_id, seen_at, votes, answers, views)
             VALUES ('nowhere', 1, 1, '2026-01-01T00:00:00Z', 0, 0, 0)",
            [],
        );
        let err = orphan.expect_err("a snapshot without its question was kept");
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
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

    /// A whole pass driven through the trait object the actors will hold,
    /// as the aggregator drives it: the interface covers their calls.
    #[test]
    fn a_pass_runs_through_a_boxed_pass_store() {
        let mut s: Box<dyn PassStore> = Box::new(Store::open_in_memory().unwrap());
        assert_eq!(s.path(), None);
        assert_eq!(s.previous_finished_pass("langs").unwrap(), None);
        let start = s.begin_pass("langs", at(1)).unwrap();
        assert!(!start.resumed);
        let page = [
            q(1, "rust", &["rust"], 0, 0, 1),
            q(2, "rust", &["rust"], 0, 0, 2),
        ];
        let w = s
            .record_page_ending(start.pass_id, &ctx("rust", 1), &page, at(1), &|w| {
                w.all_unchanged()
            })
            .unwrap();
        assert_eq!((w.new, w.ends_tag), (2, false));
        let w = s
            .record_page_ending(start.pass_id, &ctx("rust", 2), &page[..1], at(1), &|w| {
                w.all_unchanged()
            })
            .unwrap();
        assert!(w.ends_tag);
        assert_eq!(s.done_pages(start.pass_id).unwrap().len(), 2);
        assert_eq!(
            s.tag_ends(start.pass_id).unwrap(),
            HashMap::from([(("rust".to_string(), "newest".to_string()), 2)])
        );
        let mut out = Vec::new();
        let n = s
            .export_pass(start.pass_id, &mut out, ExportFormat::Jsonl)
            .unwrap();
        assert_eq!((n, String::from_utf8(out).unwrap().lines().count()), (2, 2));
        s.finish_pass(start.pass_id, at(2)).unwrap();
        let totals = s.pass_totals(start.pass_id).unwrap();
        assert_eq!((totals.pages, totals.new, totals.unchanged), (2, 2, 1));
        assert_eq!(
            s.previous_finished_pass("langs").unwrap(),
            Some(start.pass_id)
        );
        assert_eq!(s.stats().unwrap().questions, 2);
        s.checkpoint().unwrap();
    }
}
