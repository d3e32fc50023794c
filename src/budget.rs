//! The daily request budget per host, counted across restarts in a small
//! JSON file (the Stack Exchange API allows 10,000 requests a day per IP
//! with a key; the same figure bounds HTML crawling by default). Days are
//! UTC days, as the API's quota is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BudgetError {
    #[error("cannot read request budget {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write request budget {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct HostDay {
    day: NaiveDate,
    used: u64,
}

pub struct Budget {
    path: PathBuf,
    limit: u64,
    /// Hosts with a limit of their own: the API's documented quota is not
    /// the budget chosen for HTML pages.
    limits: BTreeMap<String, u64>,
    hosts: BTreeMap<String, HostDay>,
    /// When the counts last reached the file: saves are spaced so that the
    /// supervisor, which shares a thread with the fetchers, does not write
    /// a file for every request.
    saved_at: Option<std::time::Instant>,
}

impl Budget {
    /// Loads the counts, or starts empty when the file does not exist yet.
    pub fn load(path: &Path, limit: u64) -> Result<Budget, BudgetError> {
        let hosts = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| BudgetError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(BudgetError::Read {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
            }
        };
        Ok(Budget {
            path: path.to_path_buf(),
            limit,
            limits: BTreeMap::new(),
            hosts,
            saved_at: None,
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Gives `host` its own daily limit instead of the default one.
    pub fn set_limit(&mut self, host: &str, limit: u64) {
        self.limits.insert(host.to_string(), limit);
    }

    /// The daily limit that applies to `host`.
    pub fn limit_for(&self, host: &str) -> u64 {
        self.limits.get(host).copied().unwrap_or(self.limit)
    }

    /// Requests left today for `host`.
    pub fn remaining(&self, host: &str, now: DateTime<Utc>) -> u64 {
        let today = now.date_naive();
        let used = self
            .hosts
            .get(host)
            .filter(|d| d.day == today)
            .map_or(0, |d| d.used);
        self.limit_for(host).saturating_sub(used)
    }

    /// Takes one request from today's budget; false when none is left.
    pub fn take(&mut self, host: &str, now: DateTime<Utc>) -> bool {
        let today = now.date_naive();
        let entry = self.hosts.entry(host.to_string()).or_insert(HostDay {
            day: today,
            used: 0,
        });
        if entry.day != today {
            *entry = HostDay {
                day: today,
                used: 0,
            };
        }
        let limit = self.limits.get(host).copied().unwrap_or(self.limit);
        if entry.used >= limit {
            return false;
        }
        entry.used += 1;
        true
    }

    /// When the budget starts afresh: the next UTC midnight.
    pub fn resets_at(now: DateTime<Utc>) -> DateTime<Utc> {
        let tomorrow = now
            .date_naive()
            .checked_add_days(Days::new(1))
            .unwrap_or(now.date_naive());
        tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }

    /// Saves unless the last save is more recent than `every`. A crash may
    /// then forget the requests of that last stretch; `save` at the end of
    /// a run records everything.
    pub fn save_if_due(&mut self, every: std::time::Duration) -> Result<(), BudgetError> {
        if self.saved_at.is_some_and(|at| at.elapsed() < every) {
            return Ok(());
        }
        self.save()
    }

    /// Writes the counts atomically (temp file, then rename), so a crash
    /// never leaves a half-written file that would reset the count.
    pub fn save(&mut self) -> Result<(), BudgetError> {
        self.saved_at = Some(std::time::Instant::now());
        let err = |e: String| BudgetError::Write {
            path: self.path.clone(),
            reason: e,
        };
        let text = serde_json::to_string_pretty(&self.hosts).map_err(|e| err(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| err(e.to_string()))
    }
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
        let path = dir.path().join("budget.json");
        let mut b = Budget::load(&path, 3).unwrap();
        let now = at("2026-11-25T23:59:00Z");
        assert!(b.take("a", now) && b.take("a", now) && b.take("a", now));
        assert!(!b.take("a", now), "the fourth request is over budget");
        assert_eq!(b.remaining("b", now), 3, "budgets are per host");
        assert_eq!(Budget::resets_at(now), at("2026-11-26T00:00:00Z"));
        assert!(b.take("a", at("2026-11-26T00:00:01Z")));
    }

    #[test]
    fn a_host_can_have_its_own_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Budget::load(&dir.path().join("budget.json"), 5).unwrap();
        b.set_limit("api:api.stackexchange.com", 2);
        let now = at("2026-11-25T10:00:00Z");
        assert!(b.take("api:api.stackexchange.com", now));
        assert!(b.take("api:api.stackexchange.com", now));
        assert!(!b.take("api:api.stackexchange.com", now));
        assert_eq!(b.remaining("stackoverflow.com", now), 5);
        assert_eq!(b.limit_for("api:api.stackexchange.com"), 2);
    }

    #[test]
    fn counts_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.json");
        let now = at("2026-11-25T10:00:00Z");
        let mut b = Budget::load(&path, 10).unwrap();
        for _ in 0..4 {
            b.take("h", now);
        }
        b.save().unwrap();
        let again = Budget::load(&path, 10).unwrap();
        assert_eq!(again.remaining("h", now), 6);
    }

    #[test]
    fn saves_are_spaced_but_the_final_save_records_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.json");
        let now = at("2026-11-25T10:00:00Z");
        let mut b = Budget::load(&path, 10).unwrap();
        b.take("h", now);
        b.save_if_due(std::time::Duration::from_secs(3600)).unwrap();
        b.take("h", now);
        b.save_if_due(std::time::Duration::from_secs(3600)).unwrap();
        assert_eq!(
            Budget::load(&path, 10).unwrap().remaining("h", now),
            9,
            "second save skipped"
        );
        b.save().unwrap();
        assert_eq!(Budget::load(&path, 10).unwrap().remaining("h", now), 8);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_fresh_budget() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.json");
        std::fs::write(&path, "{not json").unwrap();
        assert!(Budget::load(&path, 10).is_err());
    }
}
