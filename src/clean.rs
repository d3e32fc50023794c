//! Pure cleaning: a `ParsedPage` of raw strings in, typed `Question`s and
//! counted `Rejection`s out. No actix, no I/O.
//!
//! INTERFACE (relied on by the actors; keep these names and shapes):
//! - `clean_page(page: &ParsedPage, ctx: &PageContext, fetched_at: DateTime<Utc>) -> CleanedPage`
//! - `CleanedPage { questions: Vec<Question>, rejections: Vec<Rejection> }`

use chrono::{DateTime, Utc};

use crate::model::{PageContext, Question, Rejection};
use crate::parse::ParsedPage;

#[derive(Debug, Clone, Default)]
pub struct CleanedPage {
    pub questions: Vec<Question>,
    pub rejections: Vec<Rejection>,
}

pub fn clean_page(_page: &ParsedPage, _ctx: &PageContext, _fetched_at: DateTime<Utc>) -> CleanedPage {
    CleanedPage::default()
}
