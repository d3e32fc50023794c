//! Wiring only: starts the cleaner pool, the aggregator on its own arbiter,
//! the supervisor and its fetchers, all sharing one `Lane` per host (the
//! site's, and the API's).

pub mod aggregator;
pub mod cleaner;
pub mod fetcher;
pub mod supervisor;

use actix::{Actor, Addr, Arbiter, AsyncContext, SyncArbiter};

use crate::config::Config;
use crate::fetch::HttpClient;
use crate::output::Sink;
use crate::retry::RetryPolicy;
use crate::source::{Lanes, Requester};
use crate::store::PassStore;
use aggregator::Aggregator;
use cleaner::Cleaner;
use fetcher::Fetcher;
use supervisor::Supervisor;

/// Parsing threads: CPU-bound work, so as many as there are cores, capped
/// because a crawl's rate is bounded by the quota, not by parsing.
fn cleaner_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

pub struct Pipeline {
    pub supervisor: Addr<Supervisor>,
    pub aggregator: Addr<Aggregator>,
    pub lanes: Lanes,
    aggregator_arbiter: Arbiter,
}

impl Pipeline {
    /// Must be called from within a running actix System.
    pub fn start(
        config: &Config,
        http: HttpClient,
        lanes: Lanes,
        sink: Option<Sink>,
        store: Option<Box<dyn PassStore>>,
    ) -> Pipeline {
        let cleaner = SyncArbiter::start(cleaner_threads(), || Cleaner);
        let aggregator_arbiter = Arbiter::new();
        let fleet = config.fleet.clone();
        let aggregator = Aggregator::start_in_arbiter(&aggregator_arbiter.handle(), move |_| {
            Aggregator::new(sink, store, fleet)
        });
        let policy = RetryPolicy::from_config(config);
        let fetchers = config.fetchers;
        let agg = aggregator.clone();
        let stop_at_quota_remaining = config.api.stop_at_quota_remaining;
        let requester = Requester {
            http,
            api_key: config.api.key.clone(),
            violation_pause: config.api.throttle_violation_pause,
        };
        let shared = lanes.clone();
        let lease = config.fleet.lease;
        let supervisor = Supervisor::create(move |ctx| {
            let mut sup = Supervisor::new(policy, shared.clone(), stop_at_quota_remaining);
            for id in 0..fetchers {
                sup.add_fetcher(
                    Fetcher {
                        id,
                        requester: requester.clone(),
                        lanes: shared.clone(),
                        cleaner: cleaner.clone(),
                        aggregator: agg.clone(),
                        supervisor: ctx.address().recipient(),
                        lease,
                    }
                    .start(),
                );
            }
            sup
        });
        Pipeline {
            supervisor,
            aggregator,
            lanes,
            aggregator_arbiter,
        }
    }

    /// Stops the aggregator's thread once its output is flushed.
    pub fn stop(self) {
        self.aggregator_arbiter.stop();
    }
}
