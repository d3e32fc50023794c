//! Fetcher: takes one `PageJob` at a time from the supervisor (leased
//! already, on a store a fleet shares), waits on its host's lane (quota,
//! pause, budget), has the page's source request it,
//! has the cleaner read it, hands the records to the aggregator, and tells
//! the supervisor how the attempt ended (`JobEnded`). A pause the server
//! asks for (a 429's Retry-After, an API `backoff`) binds the whole lane the
//! moment it is read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, Recipient, WrapFuture,
};
use tracing::{debug, info_span, Instrument};

use crate::engine::aggregator::{Aggregator, Records, StoreView};
use crate::engine::cleaner::{Cleaner, RawPage};
use crate::engine::plan::PageJob;
use crate::lane::Lane;
use crate::lane::Reply;
use crate::model::{PageContext, PageReport, Signals};
use crate::source::{JobError, Lanes, Requester};
use crate::store::output::OutputError;
use crate::store::{Claim, StoreError};

impl Message for PageJob {
    type Result = ();
}

/// How one attempt ended, reported to the supervisor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct JobEnded {
    pub fetcher: usize,
    pub result: Result<PageReport, JobError>,
    /// What the page's source said beyond its records (paging, its quota,
    /// a pause), when the page was read.
    pub signals: Option<Signals>,
}

/// A fetcher kept waiting (the quota, a pause) past a third of its lease
/// asks for the lease again before it sends the request.
#[derive(Debug, Message)]
#[rtype(result = "Result<Claim, JobError>")]
pub struct RenewLease {
    pub ctx: PageContext,
}

pub struct Fetcher {
    pub id: usize,
    pub requester: Requester,
    pub lanes: Lanes,
    pub cleaner: Addr<Cleaner>,
    pub aggregator: Addr<Aggregator>,
    pub supervisor: Recipient<JobEnded>,
    /// Where a lease is renewed when the wait for the lane outlasts a
    /// third of it.
    pub leases: Recipient<RenewLease>,
    /// How long a page claimed on a shared store stays this process's.
    pub lease: Duration,
    /// Counts the pages sent to be written and not yet answered.
    pub view: StoreView,
}

impl Actor for Fetcher {
    type Context = Context<Self>;
}

impl Handler<PageJob> for Fetcher {
    type Result = ();

    fn handle(&mut self, job: PageJob, ctx: &mut Context<Self>) {
        let attempt = Attempt {
            requester: self.requester.clone(),
            lane: self.lanes.for_job(&job).clone(),
            cleaner: self.cleaner.clone(),
            aggregator: self.aggregator.clone(),
            leases: self.leases.clone(),
            lease: self.lease,
            view: self.view.clone(),
        };
        let span =
            info_span!("page", tag = %job.ctx.tag, page = job.ctx.page, attempt = job.attempt);
        let url = job.url.clone();
        let work = attempt.run(job).instrument(span);
        let fetcher = self.id;
        let supervisor = self.supervisor.clone();
        ctx.spawn(work.into_actor(self).map(move |(result, signals), _, _| {
            if let Err(e) = &result {
                debug!(url = %url, error = %e, "attempt failed");
            }
            // One JobEnded per PageJob: bounded by construction. The
            // supervisor knows which job it was from `fetcher`.
            supervisor.do_send(JobEnded {
                fetcher,
                result,
                signals,
            });
        }));
    }
}

/// One attempt at a page: the handles it uses, owned, because its future
/// outlives the `handle` call that starts it.
struct Attempt {
    requester: Requester,
    lane: Arc<Lane>,
    cleaner: Addr<Cleaner>,
    aggregator: Addr<Aggregator>,
    leases: Recipient<RenewLease>,
    lease: Duration,
    view: StoreView,
}

impl Attempt {
    /// Writes the page's records; until the aggregator answers, the page
    /// counts as fetched and not written.
    async fn write(&self, records: Records) -> Result<PageReport, JobError> {
        self.view.page_sent();
        let written = self.aggregator.send(records).await;
        self.view.page_answered();
        match written.map_err(|_| JobError::Stopped)? {
            Ok(report) => Ok(report),
            // Fenced: the page is the process's that took it over, as if
            // the claim had found it so; not a failure, not retried.
            Err(OutputError::Store(StoreError::Fenced { current, .. })) => {
                Err(JobError::Elsewhere(current))
            }
            Err(e) => Err(JobError::Output(std::sync::Arc::new(e))),
        }
    }

    /// Whatever the page's source: the lane's leave, the request, the body
    /// read into records on the cleaner's threads, the records written. What
    /// the page said about quota and paging goes back to the supervisor even
    /// when its records cannot be written.
    async fn run(self, mut job: PageJob) -> (Result<PageReport, JobError>, Option<Signals>) {
        let mut signals = None;
        // The supervisor leased the page just before handing it out.
        let claimed = Instant::now();
        let result = async {
            // Held until the response is read and any pause it asks for is
            // applied: the next request of a serial lane waits for it.
            // A leased page gives way to a pause: handed back, another
            // process fetches it while this one waits.
            let ticket = self.lane.admit_or_give_way(job.lease.is_some()).await?;
            // A wait for the quota or a pause the server asked for can
            // outlast the lease, and another process may have taken the
            // page over meanwhile: the lease is renewed (or found lost)
            // before the request, which then costs nothing.
            if claimed.elapsed() > self.lease / 3 {
                let renewed = self
                    .leases
                    .send(RenewLease {
                        ctx: job.ctx.clone(),
                    })
                    .await
                    .unwrap_or(Err(JobError::Stopped));
                match renewed {
                    // The records go with the renewed lease's token.
                    Ok(Claim::Leased { token, .. }) => job.lease = Some(token),
                    other => {
                        self.lane.refund(&ticket);
                        return Err(other.map_or_else(|e| e, JobError::Elsewhere));
                    }
                }
            }
            let sent = Instant::now();
            debug!(url = %job.url, "GET");
            let body = job.source.request(&self.requester, &self.lane, &job).await;
            self.lane.settle(
                &ticket,
                match &body {
                    Ok(body) => Reply::Served(body.limits),
                    Err(JobError::Fetch(e)) => e.reply(),
                    Err(_) => Reply::Failed,
                },
            );
            let body = body?;
            let listing = self
                .cleaner
                .send(RawPage {
                    source: job.source,
                    ctx: job.ctx.clone(),
                    body: body.text,
                    fetched_at: body.fetched_at,
                })
                .await
                .map_err(|_| JobError::Stopped)??;
            signals = listing.signals;
            if let Some(pause) = listing.pause_after() {
                self.lane.pause_for(pause);
            }
            drop(ticket);
            self.write(Records { job, listing, sent }).await
        }
        .await;
        (result, signals)
    }
}
