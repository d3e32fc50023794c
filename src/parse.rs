//! Pure HTML extraction: a listing page's text in, a `ParsedPage` of raw
//! strings out. No actix, no I/O, no typing of numbers (that is clean.rs).
//!
//! INTERFACE (relied on by the actors; keep these names and shapes):
//! - `parse_listing(html: &str) -> Result<ParsedPage, ParseError>`
//! - `ParsedPage { layout: Layout, summaries: Vec<RawSummary> }`
//! - `Layout::name(&self) -> &'static str`
//! - `ParseError::is_retryable(&self) -> bool` (truncated body: true),
//!   `ParseError::is_block(&self) -> bool` (captcha / human verification).

use thiserror::Error;

/// Which generation of Stack Overflow's listing markup a page uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `div.s-post-summary` (2021 onwards).
    PostSummary,
    /// `div.question-summary` with `.statscontainer` (up to 2021).
    QuestionSummary,
    /// `div.question-summary.narrow` with `.mini-counts` (home page).
    QuestionSummaryNarrow,
}

impl Layout {
    pub fn name(&self) -> &'static str {
        match self {
            Layout::PostSummary => "s-post-summary",
            Layout::QuestionSummary => "question-summary",
            Layout::QuestionSummaryNarrow => "question-summary-narrow",
        }
    }
}

/// One question summary exactly as the page spells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSummary {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPage {
    pub layout: Layout,
    pub summaries: Vec<RawSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("empty body")]
    Empty,
}

impl ParseError {
    pub fn is_retryable(&self) -> bool {
        false
    }
    pub fn is_block(&self) -> bool {
        false
    }
}

pub fn parse_listing(_html: &str) -> Result<ParsedPage, ParseError> {
    Err(ParseError::Empty)
}
