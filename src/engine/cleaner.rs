//! Cleaner: reads a fetched page into records on a sync-arbiter thread, so
//! CPU work never stalls the fetchers' event loop. Receives a `RawPage` and
//! replies with the page's `Listing`, or why it is unusable; how a
//! body is read is its source's business.

use actix::{Actor, Handler, Message, SyncContext};
use chrono::{DateTime, Utc};

use crate::model::{Listing, PageContext};
use crate::source::{JobError, Source};

/// A fetched body with the identity of its page and where it came from.
#[derive(Debug, Message)]
#[rtype(result = "Result<Listing, JobError>")]
pub struct RawPage {
    pub source: Source,
    pub ctx: PageContext,
    pub body: String,
    pub fetched_at: DateTime<Utc>,
}

pub struct Cleaner;

impl Actor for Cleaner {
    type Context = SyncContext<Self>;
}

impl Handler<RawPage> for Cleaner {
    type Result = Result<Listing, JobError>;

    fn handle(&mut self, msg: RawPage, _: &mut Self::Context) -> Self::Result {
        msg.source.read(&msg.ctx, &msg.body, msg.fetched_at)
    }
}
