//! A per-second quota shared by the processes behind one egress IP,
//! through the fleet's PostgreSQL database.
//!
//! Stack Exchange limits requests per IP. One process per IP keeps its own
//! quota (the lane's governor) and needs nothing here; processes that share
//! an IP (`[fleet] shared_quota = NAME`, the same NAME on each) must also
//! share its quota, or they would send N times the rate between them.
//!
//! The quota is a GCRA cell: one row holding the theoretical arrival time
//! (TAT) of the next request. Each request, once counted in the budget and
//! past its lane's own gates (so that nothing slow stands between its slot
//! and its departure), reserves the next slot with one
//! atomic `UPDATE … RETURNING` (TAT = max(TAT, now) + 1/rate) and sleeps
//! until its slot, less the burst tolerance; the database serialises the
//! updates, so the fleet never exceeds the rate however many processes
//! share it. One round trip per request, on an async connection (no thread
//! hop); `benches/fleet.rs` measures it. The server's clock is the only
//! clock, so the machines' clocks need not agree. A reserved slot whose
//! process dies before using it is simply unused: the fleet runs a little
//! below the rate, never above it.

use std::time::Duration;

use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::store::pg::{async_settings, describe, Tls};
use crate::store::StoreError;

pub struct SharedQuota {
    config: tokio_postgres::Config,
    tls: Tls,
    shown: String,
    /// The cell's name: the configured quota name and the lane's host.
    cell: String,
    /// 1/rate and (burst − 1)/rate, in seconds.
    interval: f64,
    tolerance: f64,
    client: Mutex<Option<tokio_postgres::Client>>,
}

/// While the database is unreachable a request waits rather than go out
/// unmetered: the IP's quota is what keeps the fleet welcome.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// A reservation is one short statement: one that takes this long is on a
/// connection that no longer reaches the server.
const RESERVE_DEADLINE: Duration = Duration::from_secs(10);

impl SharedQuota {
    /// A quota of `rate` requests a second with bursts of `burst`, named
    /// `name` for the host `host`, in the database `url` names. Connects on
    /// first use.
    pub fn new(
        url: &str,
        name: &str,
        host: &str,
        rate: f64,
        burst: u32,
    ) -> Result<SharedQuota, StoreError> {
        let (config, tls, shown) = async_settings(url)?;
        let interval = 1.0 / rate;
        Ok(SharedQuota {
            config,
            tls,
            shown,
            cell: format!("{name}:{host}"),
            interval,
            tolerance: f64::from(burst.saturating_sub(1)) * interval,
            client: Mutex::new(None),
        })
    }

    /// Waits for this process's turn under the shared quota.
    pub async fn until_ready(&self) {
        loop {
            // A blackholed connection would keep a reservation waiting
            // forever: past the deadline it is dropped and reopened.
            let reserved = tokio::time::timeout(RESERVE_DEADLINE, self.reserve()).await;
            let reserved = match reserved {
                Ok(r) => r.map_err(|e| describe(&e)),
                Err(_) => Err(format!("no answer in {} s", RESERVE_DEADLINE.as_secs())),
            };
            match reserved {
                Ok(wait) => {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    return;
                }
                Err(e) => {
                    warn!(store = %self.shown, cell = %self.cell, error = %e, retry_in_secs = RETRY_EVERY.as_secs(), "shared quota unreachable: request held until PostgreSQL answers");
                    *self.client.lock().await = None;
                    tokio::time::sleep(RETRY_EVERY).await;
                }
            }
        }
    }

    /// Reserves the next slot; returns how long until it may be used.
    pub async fn reserve(&self) -> Result<Duration, tokio_postgres::Error> {
        let mut guard = self.client.lock().await;
        let client = match guard.take() {
            Some(c) if !c.is_closed() => c,
            _ => {
                let c = self.tls.connect_async(&self.config).await?;
                // A slot reservation lost in a server crash costs nothing
                // (the fleet runs a moment below its rate): no flush to
                // disk per request.
                c.batch_execute("SET synchronous_commit = off").await?;
                info!(store = %self.shown, cell = %self.cell, "shared quota connected");
                c
            }
        };
        let row = client
            .query_one(
                "INSERT INTO rate_cells AS c (name, tat)
                 VALUES ($1, clock_timestamp() + make_interval(secs => $2))
                 ON CONFLICT (name) DO UPDATE
                     SET tat = GREATEST(c.tat, clock_timestamp()) + make_interval(secs => $2)
                 RETURNING EXTRACT(EPOCH FROM (c.tat - clock_timestamp()))::float8",
                &[&self.cell, &self.interval],
            )
            .await;
        *guard = Some(client);
        let row = row?;
        // The slot starts one interval before the new TAT; a burst may
        // run ahead of it by the tolerance.
        let ahead: f64 = row.try_get(0)?;
        let wait = ahead - self.interval - self.tolerance;
        Ok(Duration::from_secs_f64(wait.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use stackcrawl_fakesite::pg::TestDb;
    use tokio::time::Instant;

    use super::*;

    /// Three processes' worth of requests under one quota of 20/s: however
    /// they interleave, no second holds more than 20 (slowness under load
    /// only spreads them further).
    #[tokio::test]
    async fn processes_sharing_a_quota_stay_under_it_together() {
        let db = TestDb::create();
        drop(crate::store::PgStore::open(&db.url).unwrap());
        let quotas: Vec<Arc<SharedQuota>> = (0..3)
            .map(|_| Arc::new(SharedQuota::new(&db.url, "ip", "h", 20.0, 1).unwrap()))
            .collect();
        let mut tasks = Vec::new();
        for q in &quotas {
            for _ in 0..10 {
                let q = q.clone();
                tasks.push(tokio::spawn(async move {
                    q.until_ready().await;
                    Instant::now()
                }));
            }
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        let busiest = times
            .iter()
            .map(|start| {
                times
                    .iter()
                    .filter(|t| **t >= *start && t.duration_since(*start) < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap();
        assert!(busiest <= 21, "{busiest} requests in one second");
        assert!(times[29].duration_since(times[0]) >= Duration::from_millis(1400));
    }
}
