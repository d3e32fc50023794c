//! Cleaner: parses and cleans a fetched page on a sync-arbiter thread, so
//! CPU work never stalls the fetchers' event loop. Receives `RawPage`,
//! replies with the typed `CleanedListing` or the reason the page is unusable.

use actix::{Actor, Handler, Message, SyncContext};
use chrono::{DateTime, Utc};

use crate::clean::clean_page;
use crate::model::{PageContext, Question, Rejection};
use crate::parse::{parse_listing, ParseError};

/// A fetched body with the identity of its page.
#[derive(Debug, Message)]
#[rtype(result = "Result<CleanedListing, ParseError>")]
pub struct RawPage {
    pub ctx: PageContext,
    pub body: String,
    pub fetched_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct CleanedListing {
    pub layout: &'static str,
    pub questions: Vec<Question>,
    pub rejections: Vec<Rejection>,
}

pub struct Cleaner;

impl Actor for Cleaner {
    type Context = SyncContext<Self>;
}

impl Handler<RawPage> for Cleaner {
    type Result = Result<CleanedListing, ParseError>;

    fn handle(&mut self, msg: RawPage, _: &mut Self::Context) -> Self::Result {
        let parsed = parse_listing(&msg.body)?;
        let cleaned = clean_page(&parsed, &msg.ctx, msg.fetched_at);
        Ok(CleanedListing {
            layout: parsed.layout.name(),
            questions: cleaned.questions,
            rejections: cleaned.rejections,
        })
    }
}
