//! Wiring only: starts the cleaner pool, the aggregator on a thread of its
//! own (every store call blocks that thread and no other), the supervisor
//! and its fetchers, all sharing one `Lane` per host (the site's, and the
//! API's).

use std::sync::Mutex;

use actix::{Actor, Addr, AsyncContext, SyncArbiter};

use super::aggregator::{Aggregator, StoreView};
use super::cleaner::Cleaner;
use super::fetcher::Fetcher;
use super::supervisor::{Heard, Leases, Supervisor};
use crate::config::Config;
use crate::engine::retry::RetryPolicy;
use crate::lane::stall::Stalls;
use crate::source::fetch::HttpClient;
use crate::source::{Lanes, Requester};
use crate::store::output::Sink;
use crate::store::{PassStore, StoreLocation};

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
    /// What the aggregator last published, read without asking it.
    pub view: StoreView,
    /// The task listening for pages the rest of the fleet settles, on a
    /// store a fleet shares; it ends with the pipeline.
    _listener: Option<Listener>,
}

/// A spawned task that ends when this is dropped.
struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Pipeline {
    /// Must be called from within a running actix System.
    pub fn start(
        config: &Config,
        http: HttpClient,
        lanes: Lanes,
        sink: Option<Sink>,
        mut store: Option<Box<dyn PassStore>>,
        stalls: Stalls,
    ) -> Pipeline {
        if let Some(store) = &mut store {
            store.set_give_up(config.store_give_up);
        }
        let cleaner = SyncArbiter::start(cleaner_threads(), || Cleaner);
        let view = StoreView::default();
        let leases_pages = store.as_ref().is_some_and(|s| s.leases_pages());
        // One thread, so the factory runs once; SyncArbiter wants an `Fn`.
        let aggregator = Mutex::new(Some(Aggregator::new(
            sink,
            store,
            config.fleet.clone(),
            view.clone(),
            stalls,
            config.status_every,
        )));
        let aggregator = SyncArbiter::start(1, move || {
            aggregator
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .expect("the aggregator runs on exactly one thread")
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
        let worker = config.fleet.name.clone();
        let leases = leases_pages.then(|| Leases::of(&aggregator));
        let fetcher_view = view.clone();
        let supervisor = Supervisor::create(move |ctx| {
            let mut sup = Supervisor::new(
                policy,
                worker,
                shared.clone(),
                leases,
                stop_at_quota_remaining,
            );
            for id in 0..fetchers {
                sup.add_fetcher(
                    Fetcher {
                        id,
                        requester: requester.clone(),
                        lanes: shared.clone(),
                        cleaner: cleaner.clone(),
                        aggregator: agg.clone(),
                        supervisor: ctx.address().recipient(),
                        leases: ctx.address().recipient(),
                        lease,
                        view: fetcher_view.clone(),
                    }
                    .start()
                    .recipient(),
                );
            }
            sup
        });
        // Pages written or handed back by other processes are announced:
        // a page held elsewhere is asked about again when it settles.
        let listener = match (&config.store, leases_pages) {
            (StoreLocation::Postgres(url), true) => {
                let to = supervisor.clone();
                let heard = move |a| {
                    to.connected() && {
                        to.do_send(Heard(a));
                        true
                    }
                };
                match crate::store::pg::listen(url, heard) {
                    Ok(task) => Some(Listener(actix_rt::spawn(task))),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for pages settled elsewhere: pages held by other processes are asked about on a timer");
                        None
                    }
                }
            }
            _ => None,
        };
        Pipeline {
            supervisor,
            aggregator,
            lanes,
            view,
            _listener: listener,
        }
    }
}
