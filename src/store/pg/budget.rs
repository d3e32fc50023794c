//! The daily budget of an API key, kept in the fleet's database: the
//! budget file's counting statements (`crate::lane::budget`) on PostgreSQL, so
//! that every process spending one key's quota, on any machine, takes from
//! one row with one atomic statement and none can take the last request
//! twice.
//!
//! The row is named by the lane's key and a fingerprint of the app key (a
//! SHA-256 prefix, never the key): two keys sharing a database keep two
//! budgets.

use std::fmt;
use std::sync::Mutex;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use postgres::Client;
use sha2::{Digest, Sha256};

use super::{connect_migrated, describe, is_lost, off_runtime, SyncClient};
use crate::store::StoreError;

/// The entry a budget written before keys had ports used for `key`: the
/// key without its port (`host:8080` was `host`, `api:host:8080` was
/// `api:host`). What was counted or paused there, by an older version or a
/// process of the fleet not yet upgraded, counts for `key` too: an upgrade
/// neither restarts the day's count nor forgets a pause the server asked
/// for. `None` for a key without a port. Both counters (this one and the
/// budget file) read it.
pub(crate) fn legacy_key(key: &str) -> Option<&str> {
    let (bare, port) = key.rsplit_once(':')?;
    let is_port = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    // `api:` alone is no host.
    (is_port && !bare.is_empty() && !bare.ends_with(':') && bare != "api").then_some(bare)
}

/// Why a count failed, as far as waiting is concerned: the answer of both
/// counters, this one and the budget file's (which maps SQLite's errors onto
/// it), so that the budget tells a wait from a failure in one place.
#[derive(Debug)]
pub enum CountError {
    /// Another connection holds the file's lock.
    Locked(String),
    /// The fleet's database did not answer or dropped the connection.
    Unreachable(String),
    Failed(String),
}

pub struct SharedCounter {
    client: Mutex<SyncClient>,
    /// Appended to each budget's name: whose quota it is.
    fingerprint: String,
    shown: String,
    /// To reconnect; never shown (it may hold a password).
    url: String,
}

impl fmt::Display for SharedCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl SharedCounter {
    /// Connects to the database `url` names (migrating it if this process
    /// is the first), for the budgets of the app key `key`.
    pub fn open(url: &str, key: &str) -> Result<SharedCounter, StoreError> {
        let (client, shown) = connect_migrated(url)?;
        let digest = Sha256::digest(key.as_bytes());
        let fingerprint = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Ok(SharedCounter {
            client: Mutex::new(SyncClient::new(client)),
            fingerprint,
            shown,
            url: url.to_string(),
        })
    }

    fn budget(&self, host: &str) -> String {
        format!("{host}#{}", self.fingerprint)
    }

    /// The row the key had before keys had ports
    /// ([`legacy_key`]), whose counts and pauses still
    /// hold for it.
    fn legacy_budget(&self, host: &str) -> Option<String> {
        legacy_key(host).map(|legacy| self.budget(legacy))
    }

    /// Runs one statement; a connection the server closed is reopened
    /// first. A budget that cannot be counted is an error, never a request
    /// sent uncounted: an unreachable database is `Unreachable`, which the
    /// lane waits out (asking again) until its patience runs out.
    fn call<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, CountError> {
        let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let client: &mut Client = &mut guard;
        off_runtime(move || {
            if client.is_closed() {
                *client = connect_migrated(&self.url)
                    .map_err(|e| CountError::Unreachable(e.to_string()))?
                    .0;
            }
            f(client).map_err(|e| {
                if client.is_closed() || is_lost(&e) {
                    CountError::Unreachable(describe(&e))
                } else {
                    CountError::Failed(describe(&e))
                }
            })
        })
    }

    pub(crate) fn used(&self, host: &str, day: &str) -> Result<u64, CountError> {
        let (budget, legacy) = (self.budget(host), self.legacy_budget(host));
        let used: i64 = self.call(|c| {
            c.query_one(
                "SELECT COALESCE(SUM(used), 0)::bigint FROM budget_requests
                 WHERE (budget = $1 OR budget = $3) AND day = $2",
                &[&budget, &day, &legacy],
            )?
            .try_get(0)
        })?;
        Ok(used.max(0) as u64)
    }

    /// Requests used after this one, or `None` when none was left.
    pub(crate) fn take(
        &self,
        host: &str,
        day: &str,
        limit: u64,
    ) -> Result<Option<u64>, CountError> {
        let (budget, limit) = (self.budget(host), i64::try_from(limit).unwrap_or(i64::MAX));
        let legacy = self.legacy_budget(host);
        // Counted in the key's row, against what it and its legacy row
        // used together.
        let used: Option<i64> = self.call(|c| {
            c.query_opt(
                "WITH legacy AS (
                     SELECT COALESCE((SELECT used FROM budget_requests
                                      WHERE budget = $4 AND day = $2), 0) AS used
                 )
                 INSERT INTO budget_requests AS b (budget, day, used)
                 SELECT $1, $2, 1 FROM legacy WHERE legacy.used < $3
                 ON CONFLICT (budget, day) DO UPDATE SET used = b.used + 1
                 WHERE b.used + (SELECT used FROM legacy) < $3
                 RETURNING b.used + (SELECT used FROM legacy)",
                &[&budget, &day, &limit, &legacy],
            )?
            .map(|r| r.try_get(0))
            .transpose()
        })?;
        Ok(used.map(|u| u.max(0) as u64))
    }

    pub(crate) fn refund(&self, host: &str, day: &str) -> Result<(), CountError> {
        let budget = self.budget(host);
        self.call(|c| {
            c.execute(
                "UPDATE budget_requests SET used = used - 1
                 WHERE budget = $1 AND day = $2 AND used > 0",
                &[&budget, &day],
            )
        })?;
        Ok(())
    }

    /// The later of two pauses stands: the server compares them as times.
    pub(crate) fn pause_until(&self, host: &str, until: DateTime<Utc>) -> Result<(), CountError> {
        let budget = self.budget(host);
        let until = SystemTime::from(until);
        self.call(|c| {
            c.execute(
                "INSERT INTO budget_pauses AS p (budget, until) VALUES ($1, $2)
                 ON CONFLICT (budget) DO UPDATE SET until = GREATEST(p.until, excluded.until)",
                &[&budget, &until],
            )
        })?;
        Ok(())
    }

    pub(crate) fn paused_until(&self, host: &str) -> Result<Option<DateTime<Utc>>, CountError> {
        let (budget, legacy) = (self.budget(host), self.legacy_budget(host));
        // The later of the key's pause and its legacy row's.
        self.call(|c| {
            c.query_one(
                "SELECT MAX(until) FROM budget_pauses WHERE budget = $1 OR budget = $2",
                &[&budget, &legacy],
            )?
            .try_get::<_, Option<SystemTime>>(0)
            .map(|u| u.map(DateTime::from))
        })
    }
}

#[cfg(test)]
mod tests {
    use stackcrawl_fakesite::pg::TestDb;

    use super::*;

    #[test]
    fn processes_sharing_a_key_never_lose_a_count_nor_overspend() {
        let db = TestDb::create();
        let taken: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        let c = SharedCounter::open(&db.url, "k").unwrap();
                        (0..30)
                            .filter(|_| c.take("api:h", "2026-11-26", 100).unwrap().is_some())
                            .count() as u64
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(taken, 100, "180 asked, exactly the limit granted");
        let c = SharedCounter::open(&db.url, "k").unwrap();
        assert_eq!(c.used("api:h", "2026-11-26").unwrap(), 100);
        c.refund("api:h", "2026-11-26").unwrap();
        assert_eq!(c.used("api:h", "2026-11-26").unwrap(), 99);
        let other_key = SharedCounter::open(&db.url, "another key").unwrap();
        assert_eq!(
            other_key.used("api:h", "2026-11-26").unwrap(),
            0,
            "a budget per key"
        );
    }

    /// A key with a port was its bare host before keys had ports: what a
    /// process of the fleet not yet upgraded counts or pauses there holds
    /// for the upgraded ones.
    #[test]
    fn a_key_with_a_port_honours_what_was_recorded_under_its_bare_host() {
        let db = TestDb::create();
        let c = SharedCounter::open(&db.url, "k").unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let day = "2026-11-26";
        c.take("api:h", day, 5).unwrap();
        c.take("api:h", day, 5).unwrap();
        c.pause_until("api:h", at("2026-11-26T10:00:30Z")).unwrap();
        c.pause_until("api:h:8080", at("2026-11-26T10:00:10Z"))
            .unwrap();
        assert_eq!(c.used("api:h:8080", day).unwrap(), 2);
        // Used after each take: the old row's two and the new row's own.
        let used: Vec<_> = (0..4)
            .map(|_| c.take("api:h:8080", day, 5).unwrap())
            .collect();
        assert_eq!(used, [Some(3), Some(4), Some(5), None]);
        assert_eq!(
            c.used("api:h", day).unwrap(),
            2,
            "the old key counts its own"
        );
        assert_eq!(
            c.paused_until("api:h:8080").unwrap(),
            Some(at("2026-11-26T10:00:30Z"))
        );
        c.pause_until("api:h:8080", at("2026-11-26T10:01:00Z"))
            .unwrap();
        assert_eq!(
            c.paused_until("api:h:8080").unwrap(),
            Some(at("2026-11-26T10:01:00Z"))
        );
        assert_eq!(c.paused_until("api:other:8080").unwrap(), None);
    }

    #[test]
    fn a_pause_is_shared_and_never_shortened() {
        let db = TestDb::create();
        let (a, b) = (
            SharedCounter::open(&db.url, "k").unwrap(),
            SharedCounter::open(&db.url, "k").unwrap(),
        );
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        a.pause_until("api:h", at("2026-11-26T10:00:05.000000Z"))
            .unwrap();
        // Earlier as a time, though later as text.
        b.pause_until("api:h", at("2026-11-26T11:00:02.000000+02:00"))
            .unwrap();
        assert_eq!(
            b.paused_until("api:h").unwrap(),
            Some(at("2026-11-26T10:00:05Z"))
        );
    }
}
