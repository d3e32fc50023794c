//! Fetcher: takes one `PageJob` at a time from the supervisor, waits on the
//! shared quota of the job's host (the site's, or the API's), GETs the page,
//! has the cleaner parse it, hands the records to the aggregator, and tells
//! the supervisor how the attempt ended (`JobEnded`). A 429/503 pauses the
//! whole pool, not just this fetcher; an API `backoff` pauses every API
//! request the moment it is read.

use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, Recipient, WrapFuture,
};
use thiserror::Error;
use tracing::{debug, info_span, warn, Instrument};

use crate::actors::aggregator::{Aggregator, Records};
use crate::actors::cleaner::{ApiWrapper, CleanedListing, Cleaner, RawApiPage, RawPage};
use crate::api::{self, ApiError};
use crate::config::{ApiKey, Source};
use crate::fetch::{FetchError, HttpClient};
use crate::lane::{Lane, LaneError, Ticket};
use crate::model::PageReport;
use crate::parse::ParseError;
use crate::plan::PageJob;

impl Message for PageJob {
    type Result = ();
}

/// Why one attempt at a page did not produce a report.
#[derive(Debug, Clone, Error)]
pub enum JobError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("unusable page: {0}")]
    Page(#[from] ParseError),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// No request could be sent: the budget is spent or cannot be counted.
    #[error(transparent)]
    Lane(#[from] LaneError),
    #[error("output failed: {0}")]
    Output(String),
    #[error("crawler stopped")]
    Stopped,
}

impl JobError {
    pub fn is_retryable(&self) -> bool {
        match self {
            JobError::Fetch(e) => e.is_retryable(),
            JobError::Page(e) => e.is_retryable() || e.is_block(),
            JobError::Api(e) => e.is_retryable(),
            JobError::Lane(_) | JobError::Output(_) | JobError::Stopped => false,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            JobError::Fetch(e) => e.kind(),
            JobError::Page(e) if e.is_block() => "blocked",
            JobError::Page(_) => "page",
            JobError::Api(e) => e.kind(),
            JobError::Lane(LaneError::Exhausted { .. }) => "budget_exhausted",
            JobError::Lane(LaneError::Budget(_)) => "budget",
            JobError::Output(_) => "output",
            JobError::Stopped => "stopped",
        }
    }
}

/// How one attempt ended, reported to the supervisor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct JobEnded {
    pub fetcher: usize,
    pub job: PageJob,
    pub result: Result<PageReport, JobError>,
    /// For an API page that was read: has_more, quota and backoff.
    pub api: Option<ApiWrapper>,
}

pub struct Fetcher {
    pub id: usize,
    pub http: HttpClient,
    pub lanes: Lanes,
    pub api_key: Option<ApiKey>,
    /// The shortest pause after an API `throttle_violation`.
    pub violation_pause: Duration,
    pub cleaner: Addr<Cleaner>,
    pub aggregator: Addr<Aggregator>,
    pub supervisor: Recipient<JobEnded>,
}

/// The two hosts' lanes. The API's `backoff` must not stall HTML pages, nor a
/// site's 429 stall the API.
#[derive(Clone)]
pub struct Lanes {
    pub html: Arc<Lane>,
    pub api: Arc<Lane>,
}

impl Lanes {
    pub fn for_job(&self, job: &PageJob) -> &Arc<Lane> {
        match job.source {
            Source::Html => &self.html,
            Source::Api => &self.api,
        }
    }
}

impl Actor for Fetcher {
    type Context = Context<Self>;
}

impl Handler<PageJob> for Fetcher {
    type Result = ();

    fn handle(&mut self, job: PageJob, ctx: &mut Context<Self>) {
        let tools = Tools {
            http: self.http.clone(),
            lane: self.lanes.for_job(&job).clone(),
            api_key: self.api_key.clone(),
            violation_pause: self.violation_pause,
            cleaner: self.cleaner.clone(),
            aggregator: self.aggregator.clone(),
        };
        let span =
            info_span!("page", tag = %job.ctx.tag, page = job.ctx.page, attempt = job.attempt);
        let task_job = job.clone();
        let work = async move {
            match task_job.source {
                Source::Html => (html_page(tools, task_job).await, None),
                Source::Api => api_page(tools, task_job).await,
            }
        }
        .instrument(span);
        let fetcher = self.id;
        let supervisor = self.supervisor.clone();
        ctx.spawn(work.into_actor(self).map(move |(result, api), _, _| {
            if let Err(e) = &result {
                debug!(url = %job.url, error = %e, "attempt failed");
            }
            // One JobEnded per PageJob: bounded by construction.
            supervisor.do_send(JobEnded {
                fetcher,
                job,
                result,
                api,
            });
        }));
    }
}

/// What one attempt needs, moved into its future.
struct Tools {
    http: HttpClient,
    lane: Arc<Lane>,
    api_key: Option<ApiKey>,
    violation_pause: Duration,
    cleaner: Addr<Cleaner>,
    aggregator: Addr<Aggregator>,
}

impl Tools {
    async fn record(&self, job: PageJob, listing: CleanedListing) -> Result<PageReport, JobError> {
        self.aggregator
            .send(Records { job, listing })
            .await
            .map_err(|_| JobError::Stopped)?
            .map_err(|e| JobError::Output(e.to_string()))
    }

    /// A request that never reached the server is not counted.
    fn settle_ticket<T>(&self, ticket: &Ticket, result: &Result<T, FetchError>) {
        if let Err(FetchError::Connect(_)) = result {
            if let Err(e) = self.lane.refund(ticket) {
                warn!(error = %e, "request budget not handed back");
            }
        }
    }

    /// A server's "slow down" binds every request from the moment it is
    /// read, not from when the supervisor gets to it.
    fn honour_retry_after(&self, err: &FetchError) {
        if let FetchError::RateLimited {
            retry_after: Some(wait),
            ..
        } = err
        {
            self.lane.pause_for(*wait);
        }
    }
}

async fn html_page(t: Tools, job: PageJob) -> Result<PageReport, JobError> {
    let ticket = t.lane.admit().await?;
    debug!(url = %job.url, "GET");
    let body = t.http.get(&job.url).await;
    t.settle_ticket(&ticket, &body);
    if let Err(e) = &body {
        t.honour_retry_after(e);
    }
    drop(ticket);
    let body = body?;
    let listing = t
        .cleaner
        .send(RawPage {
            ctx: job.ctx.clone(),
            body: body.text,
            fetched_at: body.fetched_at,
        })
        .await
        .map_err(|_| JobError::Stopped)??;
    t.record(job, listing).await
}

/// An API page: any status is read, since the API explains its errors in
/// the body; the wrapper's fields go back to the supervisor even when the
/// records cannot be written.
async fn api_page(t: Tools, job: PageJob) -> (Result<PageReport, JobError>, Option<ApiWrapper>) {
    let mut wrapper = None;
    let result = async {
        // Held until the response's backoff is applied: the lane is serial.
        let ticket = t.lane.admit().await?;
        // `job.url` has no key; the keyed URL lives only in this call.
        debug!(url = %job.url, "GET");
        let resp = match &t.api_key {
            Some(key) => t.http.get_any(&api::with_key(&job.url, key.expose())).await,
            None => t.http.get_any(&job.url).await,
        };
        t.settle_ticket(&ticket, &resp);
        let resp = resp?;
        if !(200..300).contains(&resp.status) {
            let err = api::parse_api_error(resp.status, &resp.text);
            if let Some(pause) = err.pause(t.violation_pause) {
                t.lane.pause_for(pause);
            }
            if matches!(err, ApiError::Malformed(_)) {
                // Not the API's own words but something's in front of it: a
                // 429 or 503 still means slow down (its Retry-After is
                // honoured), and another 4xx (a wrong api.base_url) will not
                // change on a retry.
                let err = match resp.status {
                    429 | 503 => FetchError::RateLimited {
                        status: resp.status,
                        retry_after: resp.retry_after,
                    },
                    status @ 400..=499 if status != 408 => FetchError::Status { status },
                    _ => return Err(err.into()),
                };
                t.honour_retry_after(&err);
                return Err(err.into());
            }
            return Err(err.into());
        }
        let listing = t
            .cleaner
            .send(RawApiPage {
                ctx: job.ctx.clone(),
                body: resp.text,
                fetched_at: resp.fetched_at,
            })
            .await
            .map_err(|_| JobError::Stopped)??;
        wrapper = listing.api;
        // No request to the method may start until the backoff has passed;
        // the next API request waits for this ticket, so none can slip out
        // between reading the body and pausing.
        if let Some(pause) = api::throttle_pause(listing.api.and_then(|w| w.backoff)) {
            t.lane.pause_for(pause);
        }
        drop(ticket);
        t.record(job, listing).await
    }
    .await;
    (result, wrapper)
}
