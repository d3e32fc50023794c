//! The daily request budget per host, counted across restarts and across
//! processes (the Stack Exchange API allows 10,000 requests a day per IP
//! with a key; the same figure bounds HTML crawling by default). Days are
//! UTC days, as the API's quota is.
//!
//! Why a small SQLite file rather than JSON: every request is one atomic
//! `UPDATE ... WHERE used < limit`, so two crawls sharing the file (two
//! `crawl`s in one directory, a `run` beside a `crawl`) never lose each
//! other's counts, and a `kill -9` forgets nothing that was counted. A
//! request is counted just before it is sent and handed back when it never
//! reached the server (a refused connection, a DNS failure), so the count
//! is what the server saw.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Days, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use thiserror::Error;

use crate::store::legacy_key;
pub use crate::store::{CountError, SharedCounter};

#[derive(Debug, Error)]
pub enum BudgetError {
    #[error("cannot open request budget {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("cannot update request budget {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    /// The count cannot be taken right now: another program holds the
    /// file's lock, or the fleet's database does not answer. Worth waiting
    /// for; nothing is sent meanwhile.
    #[error("request budget {path} cannot count right now: {reason}")]
    Busy { path: PathBuf, reason: String },
}

impl BudgetError {
    pub fn is_busy(&self) -> bool {
        matches!(self, BudgetError::Busy { .. })
    }
}

/// Where the counts are kept: the user's file, or the fleet's database.
enum Counter {
    File(Connection),
    Shared(Box<SharedCounter>),
}

/// Other processes may hold the file's write lock for one statement: a few
/// microseconds. Past this, the lock is someone else's long transaction (a
/// backup, a person in `sqlite3`): the call says `Busy` and the lane waits
/// and asks again, rather than holding its thread in SQLite's busy loop.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

pub struct Budget {
    path: PathBuf,
    counter: Counter,
    limit: u64,
    /// Hosts with a limit of their own: the API's documented quota is not
    /// the budget chosen for HTML pages.
    limits: BTreeMap<String, u64>,
}

impl Budget {
    /// Opens the budget file, creating it (and its directory) if needed.
    pub fn open(path: &Path, limit: u64) -> Result<Budget, BudgetError> {
        let err = |reason: String| BudgetError::Open {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| err(e.to_string()))?;
        let init = || -> rusqlite::Result<()> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // WAL with NORMAL sync: a commit is a write to the log, no fsync,
            // and it survives the process being killed.
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS requests (
                     host TEXT NOT NULL,
                     day  TEXT NOT NULL,
                     used INTEGER NOT NULL,
                     PRIMARY KEY (host, day)
                 ) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS pauses (
                     host  TEXT PRIMARY KEY,
                     until TEXT NOT NULL
                 ) WITHOUT ROWID;",
            )
        };
        init().map_err(|e| err(e.to_string()))?;
        Ok(Budget {
            path: path.to_path_buf(),
            counter: Counter::File(conn),
            limit,
            limits: BTreeMap::new(),
        })
    }

    /// A budget kept in the fleet's PostgreSQL database rather than a file:
    /// every process spending from it, on any machine, counts in one row.
    pub fn shared(counter: SharedCounter, limit: u64) -> Budget {
        Budget {
            path: PathBuf::from(counter.to_string()),
            counter: Counter::Shared(Box::new(counter)),
            limit,
            limits: BTreeMap::new(),
        }
    }

    /// Whether other processes (a fleet) count in the same place, and so
    /// may record a pause this one must keep while it runs.
    pub fn pauses_are_shared(&self) -> bool {
        matches!(self.counter, Counter::Shared(_))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives `host` its own daily limit instead of the default one.
    pub fn set_limit(&mut self, host: &str, limit: u64) {
        self.limits.insert(host.to_string(), limit);
    }

    /// The daily limit that applies to `host`.
    pub fn limit_for(&self, host: &str) -> u64 {
        self.limits.get(host).copied().unwrap_or(self.limit)
    }

    /// A failed statement: `Busy` when waiting may cure it (the file is
    /// locked; the fleet's database did not answer), else `Write`.
    fn write_err(&self, e: impl Into<CountError>) -> BudgetError {
        let (path, e) = (self.path.clone(), e.into());
        match e {
            CountError::Locked(reason) | CountError::Unreachable(reason) => {
                BudgetError::Busy { path, reason }
            }
            CountError::Failed(reason) => BudgetError::Write { path, reason },
        }
    }

    /// Requests counted today for `host`, by every process sharing the file.
    pub fn used(&self, host: &str, now: DateTime<Utc>) -> Result<u64, BudgetError> {
        let conn = match &self.counter {
            Counter::File(conn) => conn,
            Counter::Shared(s) => return s.used(host, &day(now)).map_err(|e| self.write_err(e)),
        };
        let used: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(used), 0) FROM requests
                 WHERE (host = ?1 OR host = ?3) AND day = ?2",
            )
            .and_then(|mut s| s.query_row(params![host, day(now), legacy_key(host)], |r| r.get(0)))
            .map_err(|e| self.write_err(e))?;
        Ok(used.max(0) as u64)
    }

    /// Requests left today for `host`.
    pub fn remaining(&self, host: &str, now: DateTime<Utc>) -> Result<u64, BudgetError> {
        Ok(self.limit_for(host).saturating_sub(self.used(host, now)?))
    }

    /// Takes one request from today's budget and says how many are left
    /// after it; `None` when none was left to take. One statement, so
    /// concurrent processes can never both take the last one.
    pub fn take(&self, host: &str, now: DateTime<Utc>) -> Result<Option<u64>, BudgetError> {
        let limit = self.limit_for(host);
        if limit == 0 {
            return Ok(None);
        }
        let conn = match &self.counter {
            Counter::File(conn) => conn,
            Counter::Shared(s) => {
                let used = s
                    .take(host, &day(now), limit)
                    .map_err(|e| self.write_err(e))?;
                return Ok(used.map(|u| limit.saturating_sub(u)));
            }
        };
        // Counted in `host`'s row, against what it and the key's legacy
        // row (see [`legacy_key`]) used together; one statement, so the
        // file's lock covers both rows.
        let used: Option<i64> = conn
            .prepare_cached(
                "INSERT INTO requests (host, day, used)
                 SELECT ?1, ?2, 1
                 WHERE COALESCE((SELECT used FROM requests WHERE host = ?4 AND day = ?2), 0) < ?3
                 ON CONFLICT (host, day) DO UPDATE SET used = used + 1
                 WHERE used + COALESCE((SELECT used FROM requests WHERE host = ?4 AND day = ?2), 0) < ?3
                 RETURNING used + COALESCE((SELECT used FROM requests WHERE host = ?4 AND day = ?2), 0)",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![host, day(now), limit as i64, legacy_key(host)],
                    |r| r.get(0),
                )
                .optional()
            })
            .map_err(|e| self.write_err(e))?;
        Ok(used.map(|u| limit.saturating_sub(u.max(0) as u64)))
    }

    /// Hands back a request taken on `taken_at` that never reached the server.
    pub fn refund(&self, host: &str, taken_at: DateTime<Utc>) -> Result<(), BudgetError> {
        let conn = match &self.counter {
            Counter::File(conn) => conn,
            Counter::Shared(s) => {
                return s
                    .refund(host, &day(taken_at))
                    .map_err(|e| self.write_err(e))
            }
        };
        conn.prepare_cached(
            "UPDATE requests SET used = used - 1 WHERE host = ?1 AND day = ?2 AND used > 0",
        )
        .and_then(|mut s| s.execute(params![host, day(taken_at)]))
        .map_err(|e| self.write_err(e))?;
        Ok(())
    }

    /// Records that the server asked `host` to be left alone until `until`
    /// (a Retry-After, an API backoff): a process started meanwhile, or
    /// another one sharing the file, waits too. A later pause never shortens
    /// an earlier one.
    pub fn pause_until(&self, host: &str, until: DateTime<Utc>) -> Result<(), BudgetError> {
        let conn = match &self.counter {
            Counter::File(conn) => conn,
            Counter::Shared(s) => return s.pause_until(host, until).map_err(|e| self.write_err(e)),
        };
        conn.prepare_cached(
            "INSERT INTO pauses (host, until) VALUES (?1, ?2)
                 ON CONFLICT (host) DO UPDATE SET until = MAX(until, excluded.until)",
        )
        .and_then(|mut s| s.execute(params![host, stamp(until)]))
        .map_err(|e| self.write_err(e))?;
        Ok(())
    }

    /// Until when `host` must be left alone, if that is still ahead of `now`.
    pub fn paused_until(
        &self,
        host: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, BudgetError> {
        let until: Option<String> = match &self.counter {
            Counter::File(conn) => conn,
            Counter::Shared(s) => {
                return Ok(s
                    .paused_until(host)
                    .map_err(|e| self.write_err(e))?
                    .filter(|u| *u > now))
            }
        }
        // The later of the key's pause and its legacy row's.
        .prepare_cached("SELECT MAX(until) FROM pauses WHERE host = ?1 OR host = ?2")
        .and_then(|mut s| s.query_row(params![host, legacy_key(host)], |r| r.get(0)))
        .map_err(|e| self.write_err(e))?;
        Ok(until
            .and_then(|u| DateTime::parse_from_rfc3339(&u).ok())
            .map(|u| u.with_timezone(&Utc))
            .filter(|u| *u > now))
    }

    /// When the budget starts afresh: the next UTC midnight.
    pub fn resets_at(now: DateTime<Utc>) -> DateTime<Utc> {
        let tomorrow = now
            .date_naive()
            .checked_add_days(Days::new(1))
            .unwrap_or(now.date_naive());
        tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }
}

impl From<rusqlite::Error> for CountError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
        match e.sqlite_error_code() {
            Some(DatabaseBusy | DatabaseLocked) => CountError::Locked(e.to_string()),
            _ => CountError::Failed(e.to_string()),
        }
    }
}

fn day(now: DateTime<Utc>) -> String {
    now.date_naive().to_string()
}

/// Fixed width, so that text order is time order (`MAX` compares text).
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn budget_runs_out_and_resets_the_next_utc_day() {
        let dir = tempfile::tempdir().unwrap();
        let b = Budget::open(&dir.path().join("budget.sqlite"), 3).unwrap();
        let now = at("2026-11-25T23:59:00Z");
        let left: Vec<_> = (0..3).map(|_| b.take("a", now).unwrap()).collect();
        assert_eq!(
            left,
            [Some(2), Some(1), Some(0)],
            "each take says what is left"
        );
        assert!(
            b.take("a", now).unwrap().is_none(),
            "the fourth request is over budget"
        );
        assert_eq!(b.remaining("b", now).unwrap(), 3, "budgets are per host");
        assert_eq!(Budget::resets_at(now), at("2026-11-26T00:00:00Z"));
        assert!(b.take("a", at("2026-11-26T00:00:01Z")).unwrap().is_some());
    }

    #[test]
    fn a_host_can_have_its_own_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Budget::open(&dir.path().join("budget.sqlite"), 5).unwrap();
        b.set_limit("api:api.stackexchange.com", 2);
        let now = at("2026-11-25T10:00:00Z");
        assert!(b.take("api:api.stackexchange.com", now).unwrap().is_some());
        assert!(b.take("api:api.stackexchange.com", now).unwrap().is_some());
        assert!(b.take("api:api.stackexchange.com", now).unwrap().is_none());
        assert_eq!(b.remaining("stackoverflow.com", now).unwrap(), 5);
        assert_eq!(b.limit_for("api:api.stackexchange.com"), 2);
    }

    #[test]
    fn every_count_is_on_disk_at_once_as_a_crash_would_find_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.sqlite");
        let now = at("2026-11-25T10:00:00Z");
        let b = Budget::open(&path, 10).unwrap();
        for _ in 0..4 {
            b.take("h", now).unwrap();
        }
        // No save, no drop: another connection sees every request.
        let other = Budget::open(&path, 10).unwrap();
        assert_eq!(other.remaining("h", now).unwrap(), 6);
        drop(b);
    }

    #[test]
    fn a_refund_gives_back_a_request_that_never_left() {
        let dir = tempfile::tempdir().unwrap();
        let b = Budget::open(&dir.path().join("budget.sqlite"), 2).unwrap();
        let now = at("2026-11-25T10:00:00Z");
        assert!(b.take("h", now).unwrap().is_some());
        assert!(b.take("h", now).unwrap().is_some());
        b.refund("h", now).unwrap();
        assert_eq!(b.used("h", now).unwrap(), 1);
        assert!(b.take("h", now).unwrap().is_some());
        b.refund("other", now).unwrap();
        assert_eq!(b.used("other", now).unwrap(), 0, "never below zero");
    }

    #[test]
    fn concurrent_processes_never_lose_a_count_nor_overspend() {
        // Threads with their own connections stand in for processes: the
        // file's locking is what keeps them apart either way.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.sqlite");
        let now = at("2026-11-25T10:00:00Z");
        Budget::open(&path, 300).unwrap();
        let taken: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let b = Budget::open(&path, 300).unwrap();
                        (0..50)
                            .filter(|_| b.take("h", now).unwrap().is_some())
                            .count() as u64
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(taken, 300, "400 asked, exactly the limit granted");
        assert_eq!(
            Budget::open(&path, 300).unwrap().used("h", now).unwrap(),
            300
        );
    }

    #[test]
    fn a_pause_outlives_the_process_and_is_never_shortened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.sqlite");
        let now = at("2026-11-25T10:00:00Z");
        let b = Budget::open(&path, 10).unwrap();
        b.pause_until("api:h", at("2026-11-25T10:00:05Z")).unwrap();
        b.pause_until("api:h", at("2026-11-25T10:00:02Z")).unwrap();
        drop(b);
        let again = Budget::open(&path, 10).unwrap();
        assert_eq!(
            again.paused_until("api:h", now).unwrap(),
            Some(at("2026-11-25T10:00:05Z"))
        );
        assert_eq!(
            again
                .paused_until("api:h", at("2026-11-25T10:00:06Z"))
                .unwrap(),
            None
        );
        assert_eq!(again.paused_until("other", now).unwrap(), None);
    }

    /// A key with a port was its bare host before keys had ports: what an
    /// older version (or a process of the fleet not yet upgraded) counted
    /// or paused there still holds after the upgrade.
    #[test]
    fn a_key_with_a_port_honours_what_was_recorded_under_its_bare_host() {
        let dir = tempfile::tempdir().unwrap();
        let b = Budget::open(&dir.path().join("budget.sqlite"), 5).unwrap();
        let now = at("2026-11-25T10:00:00Z");
        // Recorded under the old key.
        b.take("h", now).unwrap();
        b.take("h", now).unwrap();
        b.pause_until("h", at("2026-11-25T10:00:30Z")).unwrap();
        b.pause_until("h:8080", at("2026-11-25T10:00:10Z")).unwrap();
        assert_eq!(b.used("h:8080", now).unwrap(), 2);
        assert_eq!(b.remaining("h:8080", now).unwrap(), 3);
        let left: Vec<_> = (0..4).map(|_| b.take("h:8080", now).unwrap()).collect();
        assert_eq!(left, [Some(2), Some(1), Some(0), None]);
        assert_eq!(b.used("h:8080", now).unwrap(), 5);
        assert_eq!(b.used("h", now).unwrap(), 2, "the old key counts its own");
        // The later end wins, whichever key recorded it.
        assert_eq!(
            b.paused_until("h:8080", now).unwrap(),
            Some(at("2026-11-25T10:00:30Z"))
        );
        b.pause_until("h:8080", at("2026-11-25T10:01:00Z")).unwrap();
        assert_eq!(
            b.paused_until("h:8080", now).unwrap(),
            Some(at("2026-11-25T10:01:00Z"))
        );
        // An old key spent on its own leaves nothing to the new one.
        for _ in 0..5 {
            b.take("api:h", now).unwrap();
        }
        assert_eq!(b.take("api:h:8080", now).unwrap(), None);
    }

    #[test]
    fn the_legacy_key_is_the_key_without_its_port() {
        assert_eq!(legacy_key("h:8080"), Some("h"));
        assert_eq!(legacy_key("api:h:8080"), Some("api:h"));
        assert_eq!(legacy_key("[::1]:8080"), Some("[::1]"));
        for none in ["h", "api:h", "[::1]", "h:", ":8080", "api:8080"] {
            assert_eq!(legacy_key(none), None, "{none}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_budget_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.sqlite");
        std::fs::write(&path, "{not a database, not even close, at all}").unwrap();
        let err = Budget::open(&path, 10).err().expect("refused");
        assert!(err.to_string().contains("budget.sqlite"), "{err}");
    }
}
