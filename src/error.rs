//! The crate's one error type at its boundary: why a crawl, a pass or a run
//! could not go on. main.rs turns each into an exit code.

use thiserror::Error;

use crate::engine::plan::PlanError;
use crate::lane::budget::BudgetError;
use crate::lane::robots::RobotsError;
use crate::lane::LaneError;
use crate::source::fetch::FetchError;
use crate::store::output::OutputError;
use crate::store::writer_lock;

#[derive(Debug, Error)]
pub enum CrawlError {
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Only building the client: a failed request is a page's outcome,
    /// never the crawl's error.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(FetchError),
    #[error(transparent)]
    Budget(#[from] BudgetError),
    #[error(transparent)]
    Lane(#[from] LaneError),
    /// Another process writes to the store: a usage problem.
    #[error(transparent)]
    Locked(#[from] writer_lock::LockError),
    /// robots.txt forbids the plan: a usage problem, not a crawl failure.
    /// An unreachable robots.txt is a failure of the run, not of usage.
    #[error(transparent)]
    Robots(#[from] RobotsError),
    /// Not even a connection to the site: said once, rather than as every
    /// page's error, and nothing is fetched.
    #[error("the site cannot be reached at {url}: {reason}; nothing was fetched")]
    Unreachable { url: String, reason: String },
    #[error(transparent)]
    Failures(#[from] PlanError),
    #[error("daily request budget exhausted; it resets at {}", .resets_at.to_rfc3339())]
    BudgetExhausted {
        resets_at: chrono::DateTime<chrono::Utc>,
    },
    /// A source refused a request for good (the API: a bad parameter, key
    /// errors, access denied): the crawl stopped at once, records so far
    /// kept.
    #[error("{source_name} refused tag {tag} page {page}, crawl stopped: {error}")]
    Refused {
        source_name: &'static str,
        tag: String,
        page: u32,
        error: Box<crate::source::JobError>,
    },
    /// A page's records could not be written (a full disk, a store that
    /// refuses the write): the crawl stopped rather than fetch pages whose
    /// records could not be kept either; records so far kept.
    #[error("the records of tag {tag} page {page} could not be written, crawl stopped: {error}")]
    Unwritable {
        tag: String,
        page: u32,
        error: std::sync::Arc<OutputError>,
    },
    #[error("the crawler's actors stopped before the run ended")]
    Stopped,
    /// The store did not answer: within `[store] give_up_secs`, or within
    /// the grace after a shutdown request (`interrupted`). Pages not
    /// written are not marked done, so the next start fetches them.
    #[error("the store did not answer ({what}) for {waited_secs} s; {pages_not_written} fetched pages were not written")]
    StoreNotAnswering {
        what: &'static str,
        waited_secs: u64,
        pages_not_written: u64,
        interrupted: bool,
    },
}
