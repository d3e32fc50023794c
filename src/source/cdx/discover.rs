//! Asking an archive's index for a tag's captures, before the pass: every
//! index request goes through the archive's lane (its quota, pauses and
//! daily budget) like a page, and is retried like one (429, 5xx, network
//! trouble; a `Retry-After` pauses the lane).

use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;
use tracing::{info, warn};

use super::index::{self, Cursor};
use super::{ArchiveQuery, ArchiveSettings, Capture};
use crate::lane::{Lane, LaneError};
use crate::model::Archive;
use crate::source::fetch::{FetchError, HttpClient};

/// Why a tag's captures could not be listed.
#[derive(Debug, Error)]
pub enum DiscoverError {
    #[error("{url}: {error}")]
    Fetch { url: String, error: FetchError },
    #[error("{url}: {error}")]
    Index {
        url: String,
        error: index::IndexError,
    },
    #[error(transparent)]
    Lane(#[from] LaneError),
}

impl DiscoverError {
    /// The index request that failed, if one did.
    pub fn url(&self) -> Option<&str> {
        match self {
            DiscoverError::Fetch { url, .. } | DiscoverError::Index { url, .. } => Some(url),
            DiscoverError::Lane(_) => None,
        }
    }
}

/// What asking the index needs.
pub struct Asker<'a> {
    pub http: &'a HttpClient,
    pub lane: &'a Lane,
    pub settings: &'a ArchiveSettings,
    pub max_retries: u32,
    /// The wait before retry `n` (1-based).
    pub backoff: &'a (dyn Fn(u32) -> Duration + Sync),
}

/// Every capture of `tag`'s listing pages on `site` that `query` and the
/// bookmark `after` let through, oldest first, at most `cap`.
pub async fn captures(
    a: &Asker<'_>,
    archive: Archive,
    query: &ArchiveQuery,
    site: &str,
    tag: &str,
    after: Option<DateTime<Utc>>,
    cap: usize,
) -> Result<Vec<Capture>, DiscoverError> {
    let mut cursor = Some(match archive {
        Archive::Wayback => Cursor::Wayback(None),
        Archive::CommonCrawl => Cursor::CommonCrawl {
            crawl: 0,
            page: 0,
            pages: None,
        },
    });
    let mut all = Vec::new();
    let mut requests = 0;
    while let Some(c) = cursor.take() {
        let Some(url) = index::request_url(a.settings, query, site, tag, after, &c) else {
            break;
        };
        requests += 1;
        let body = ask(a, &url).await?;
        cursor = match body {
            None => index::after_empty(&c, query.crawls.len()),
            Some(text) => {
                let page = index::read_answer(&c, query.crawls.len(), &text)
                    .map_err(|error| DiscoverError::Index { url, error })?;
                all.extend(page.captures);
                page.next
            }
        };
    }
    let kept = index::keep(all, query, site, tag, after, cap);
    info!(
        archive = archive.as_str(),
        tag,
        after = after.map(|a| a.to_rfc3339()),
        index_requests = requests,
        captures = kept.len(),
        "archive index read"
    );
    Ok(kept)
}

/// One index request, retried; `None` for an index that holds nothing
/// (Common Crawl answers 404).
async fn ask(a: &Asker<'_>, url: &str) -> Result<Option<String>, DiscoverError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ticket = a.lane.admit().await?;
        let response = a.http.get_response(url).await;
        a.lane.settle(
            &ticket,
            match &response {
                Ok(r) => r.reply(),
                Err(e) => e.reply(),
            },
        );
        drop(ticket);
        let error = match response {
            Ok(r) if (200..300).contains(&r.status) => return Ok(Some(r.text)),
            Ok(r) if r.status == 404 => return Ok(None),
            Ok(r) => r.status_error(),
            Err(e) => e,
        };
        if !error.is_retryable() || attempt > a.max_retries {
            return Err(DiscoverError::Fetch {
                url: url.to_string(),
                error,
            });
        }
        let wait = (a.backoff)(attempt);
        warn!(url, error = %error, attempt, wait_ms = wait.as_millis() as u64, "archive index request failed; retrying");
        tokio::time::sleep(wait).await;
    }
}
