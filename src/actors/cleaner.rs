//! Cleaner: parses and cleans a fetched page on a sync-arbiter thread, so
//! CPU work never stalls the fetchers' event loop. Receives `RawPage` (HTML)
//! or `RawApiPage` (API JSON), replies with the typed `CleanedListing` or the
//! reason the page is unusable.

use std::time::Duration;

use actix::{Actor, Handler, Message, SyncContext};
use chrono::{DateTime, Utc};

use crate::api::{parse_api_page, ApiError};
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

/// A 2xx body from the API's `/questions`, with the identity of its page.
#[derive(Debug, Message)]
#[rtype(result = "Result<CleanedListing, ApiError>")]
pub struct RawApiPage {
    pub ctx: PageContext,
    pub body: String,
    pub fetched_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct CleanedListing {
    pub layout: &'static str,
    pub questions: Vec<Question>,
    pub rejections: Vec<Rejection>,
    /// The API wrapper's paging and quota fields; `None` for an HTML page.
    pub api: Option<ApiWrapper>,
}

/// What an API response says beyond its items: whether the tag goes on,
/// how much quota is left, and whether to back off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiWrapper {
    pub has_more: bool,
    pub quota_remaining: Option<u64>,
    pub quota_max: Option<u64>,
    pub backoff: Option<Duration>,
}

/// The `layout` an API page reports.
pub const API_LAYOUT: &str = "api-2.3";

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
            api: None,
        })
    }
}

impl Handler<RawApiPage> for Cleaner {
    type Result = Result<CleanedListing, ApiError>;

    fn handle(&mut self, msg: RawApiPage, _: &mut Self::Context) -> Self::Result {
        let page = parse_api_page(&msg.body, &msg.ctx, msg.fetched_at)?;
        Ok(CleanedListing {
            layout: API_LAYOUT,
            questions: page.questions,
            rejections: page.rejections,
            api: Some(ApiWrapper {
                has_more: page.has_more,
                quota_remaining: page.quota_remaining,
                quota_max: page.quota_max,
                backoff: page.backoff,
            }),
        })
    }
}
