//! Fetcher: takes one `PageJob` at a time from the supervisor, waits on the
//! shared quota, GETs the page, has the cleaner parse it, hands the records
//! to the aggregator, and tells the supervisor how the attempt ended
//! (`JobEnded`). A 429/503 pauses the whole pool, not just this fetcher.

use std::sync::Arc;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, Recipient, WrapFuture,
};
use thiserror::Error;
use tracing::{debug, info_span, Instrument};

use crate::actors::aggregator::{Aggregator, Records};
use crate::actors::cleaner::{Cleaner, RawPage};
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
            JobError::Output(_) | JobError::Stopped => false,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            JobError::Fetch(e) => e.kind(),
            JobError::Page(e) if e.is_block() => "blocked",
            JobError::Page(_) => "page",
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
}

pub struct Fetcher {
    pub id: usize,
    pub http: HttpClient,
    pub throttle: Arc<Throttle>,
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
        let http = self.http.clone();
        let throttle = self.throttle.clone();
        let cleaner = self.cleaner.clone();
        let aggregator = self.aggregator.clone();
        let span =
            info_span!("page", tag = %job.ctx.tag, page = job.ctx.page, attempt = job.attempt);
        let task_job = job.clone();
        let work = async move {
            throttle.acquire().await;
            debug!(url = %task_job.url, "GET");
            let body = http.get(&task_job.url).await?;
            let listing = cleaner
                .send(RawPage {
                    ctx: task_job.ctx.clone(),
                    body: body.text,
                    fetched_at: body.fetched_at,
                })
                .await
                .map_err(|_| JobError::Stopped)??;
            aggregator
                .send(Records {
                    job: task_job,
                    listing,
                })
                .await
                .map_err(|_| JobError::Stopped)?
                .map_err(|e| JobError::Output(e.to_string()))
        }
        .instrument(span);
        let fetcher = self.id;
        let supervisor = self.supervisor.clone();
        ctx.spawn(work.into_actor(self).map(move |result, _, _| {
            if let Err(e) = &result {
                debug!(url = %job.url, error = %e, "attempt failed");
            }
            // One JobEnded per PageJob: bounded by construction.
            supervisor.do_send(JobEnded {
                fetcher,
                job,
                result,
            });
        }));
    }
}
