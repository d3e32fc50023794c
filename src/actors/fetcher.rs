//! Fetcher: takes one `PageJob` at a time from the supervisor, waits on the
//! shared quota of the job's host (the site's, or the API's), GETs the page,
//! has the cleaner parse it, hands the records to the aggregator, and tells
//! the supervisor how the attempt ended (`JobEnded`). A 429/503 pauses the
//! whole pool, not just this fetcher; an API `backoff` pauses every API
//! request the moment it is read.

use std::sync::Arc;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, Recipient, WrapFuture,
};
use thiserror::Error;
use tracing::{debug, info_span, Instrument};

use crate::actors::aggregator::{Aggregator, Records};
use crate::actors::cleaner::{ApiWrapper, CleanedListing, Cleaner, RawApiPage, RawPage};
use crate::api::{self, ApiError};
use crate::config::{ApiKey, Source};
use crate::fetch::{FetchError, HttpClient};
use crate::model::PageReport;
use crate::parse::ParseError;
use crate::plan::PageJob;
use crate::throttle::Throttle;

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
            JobError::Output(_) | JobError::Stopped => false,
        }
    }

    /// An API error no retry can cure (a bad parameter, a refused key): the
    /// whole crawl stops, since every other page would get the same answer.
    pub fn is_fatal(&self) -> bool {
        matches!(self, JobError::Api(e) if e.is_fatal())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            JobError::Fetch(e) => e.kind(),
            JobError::Page(e) if e.is_block() => "blocked",
            JobError::Page(_) => "page",
            JobError::Api(e) => e.kind(),
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
    pub throttle: Arc<Throttle>,
    /// The API host's own quota: its `backoff` must not stall HTML pages,
    /// nor a site's 429 stall the API.
    pub api_throttle: Arc<Throttle>,
    pub api_key: Option<ApiKey>,
    pub cleaner: Addr<Cleaner>,
    pub aggregator: Addr<Aggregator>,
    pub supervisor: Recipient<JobEnded>,
}

impl Actor for Fetcher {
    type Context = Context<Self>;
}

impl Handler<PageJob> for Fetcher {
    type Result = ();

    fn handle(&mut self, job: PageJob, ctx: &mut Context<Self>) {
        let tools = Tools {
            http: self.http.clone(),
            throttle: self.throttle.clone(),
            api_throttle: self.api_throttle.clone(),
            api_key: self.api_key.clone(),
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
    throttle: Arc<Throttle>,
    api_throttle: Arc<Throttle>,
    api_key: Option<ApiKey>,
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
}

async fn html_page(t: Tools, job: PageJob) -> Result<PageReport, JobError> {
    t.throttle.acquire().await;
    debug!(url = %job.url, "GET");
    let body = t.http.get(&job.url).await?;
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
        t.api_throttle.acquire().await;
        // `job.url` has no key; the keyed URL lives only in this call.
        debug!(url = %job.url, "GET");
        let resp = match &t.api_key {
            Some(key) => t.http.get_any(&api::with_key(&job.url, key.expose())).await,
            None => t.http.get_any(&job.url).await,
        }?;
        if !(200..300).contains(&resp.status) {
            let err = api::parse_api_error(resp.status, &resp.text);
            if matches!(err, ApiError::Malformed(_)) {
                // Not the API's own words but something's in front of it: a
                // 429 or 503 still means slow down (its Retry-After is
                // honoured), and another 4xx (a wrong api.base_url) will not
                // change on a retry.
                return Err(match resp.status {
                    429 | 503 => FetchError::RateLimited {
                        status: resp.status,
                        retry_after: resp.retry_after,
                    },
                    status @ 400..=499 if status != 408 => FetchError::Status { status },
                    _ => return Err(err.into()),
                }
                .into());
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
        // No request to the method may start until the backoff has passed:
        // pausing here, as soon as the body is read, leaves the smallest
        // window for another fetcher to start one.
        if let Some(pause) = api::throttle_pause(listing.api.and_then(|w| w.backoff)) {
            t.api_throttle.pause_for(pause);
        }
        t.record(job, listing).await
    }
    .await;
    (result, wrapper)
}
