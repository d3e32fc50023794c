//! Pure HTML extraction: a listing page's text in, a `ParsedPage` of raw
//! strings out. No actix, no I/O, no typing of numbers (that is clean.rs).
//!
//! Three generations of listing markup are recognised per page (see
//! [`Layout`]); whatever the generation, each summary becomes the same
//! [`RawSummary`], so the cleaner has one shape to type. A body that is not a
//! listing at all (empty, binary, truncated, a captcha, another kind of page)
//! is a [`ParseError`], while a listing with no summaries is a valid, empty
//! page: that is how the crawler learns a tag is exhausted.
//!
//! Bodies are vetted before html5ever sees them (binary content,
//! block-element nesting, the closing `</html>`), so a hostile or cut-off
//! body costs a scan, not a parse, and no input takes more than linear time.
//! Their size has one cap, `fetch.max_body_bytes`, enforced by the fetcher
//! while it reads: refusing a body after reading it whole would be too late.
//!
//! Building the tree is most of a page's cost, so html5ever sees only the
//! list container when a scan of the raw text can find it and vouch for it
//! (see `region`); any other page, and a list without summaries, is parsed
//! whole, so the shortcut changes the cost, never the result. Most lists
//! need no tree at all: `stream` reads the container's markup into a flat
//! tape, and hands any markup it does not reproduce exactly back to the
//! tree. Both are read by one reader (`dom`, `summary`, `drift`);
//! [`parse_listing_tree`] is the tree alone, the reference of the tests.
//!
//! INTERFACE (relied on by the actors; keep these names and shapes):
//! - `parse_listing(html: &str) -> Result<ParsedPage, ParseError>`
//! - `ParsedPage { layout: Layout, summaries: Vec<RawSummary>, drift: Option<LayoutDrift> }`
//!
//! Broken markup is the real site's too: an unclosed tag makes the tree
//! builder nest every later summary inside an earlier one. Every summary is
//! a record of its own, and each is read from its own elements only (see
//! `own_nodes`), so none borrows the tags or figures of those nested in it.
//! - `Layout::name(&self) -> &'static str`
//! - `ParseError::is_retryable(&self) -> bool` (truncated body: true),
//!   `ParseError::is_block(&self) -> bool` (captcha / human verification).

mod charref;
mod checks;
mod dom;
mod drift;
mod region;
mod stream;
mod summary;
mod tags;

use std::ops::Range;
use std::sync::LazyLock;

use ego_tree::NodeRef;
use scraper::{ElementRef, Html, Node, Selector};
use thiserror::Error;

use dom::Dom;

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

/// A figure as the page shows it: the visible, possibly abbreviated text
/// ("3.1m") and the `title` attribute that often carries the exact count
/// ("3,101,234 views").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawStat {
    pub text: Option<String>,
    pub title: Option<String>,
}

impl RawStat {
    pub fn is_missing(&self) -> bool {
        self.text.is_none() && self.title.is_none()
    }
}

/// A `span.relativetime`: the word in front of it ("asked", "modified",
/// "answered") says which event it dates; `iso` is its `title`, e.g.
/// `2025-11-17 03:46:46Z`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawTime {
    pub label: String,
    pub iso: String,
}

/// One question summary exactly as the page spells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSummary {
    /// `data-post-id`, or the digits of the `question-summary-N` id.
    pub question_id: Option<String>,
    /// The question link's `href`, usually relative.
    pub href: Option<String>,
    pub title: Option<String>,
    pub excerpt: Option<String>,
    pub votes: RawStat,
    pub answers: RawStat,
    /// The replies stat of an Advice post (which has no answers stat).
    pub replies: Option<RawStat>,
    pub views: RawStat,
    pub accepted: bool,
    /// A stats item without a number, e.g. "Advice".
    pub kind_label: Option<String>,
    pub tags: Vec<String>,
    /// The user as the page shows them: a profile link's text, or plain
    /// text for deleted and anonymous users ("user12345", "anon") and for
    /// community-wiki posts that show only their revisions ("22 revs, 18
    /// users 14%"). `None` only when the summary shows no one.
    pub author_name: Option<String>,
    /// The id in the profile link (`/users/123/…`), when the name links.
    pub author_user_id: Option<String>,
    pub author_linked: bool,
    /// The word before the user area's time ("asked", "answered",
    /// "modified", or the page language's word for them): on Active and
    /// home pages the user shown is whoever acted last.
    pub author_action: Option<String>,
    pub author_reputation: RawStat,
    pub times: Vec<RawTime>,
    /// Bounty badge text, e.g. "+50".
    pub bounty: Option<String>,
    pub community_wiki: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPage {
    pub layout: Layout,
    pub summaries: Vec<RawSummary>,
    /// Set when the list holds questions the parser did not read: the
    /// site's markup may have changed.
    pub drift: Option<LayoutDrift>,
}

/// A listing whose list container refers to more questions than the parser
/// read as summaries: on the real site, the sign of a layout change, to be
/// noticed on the first page rather than weeks later in an empty store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutDrift {
    /// Distinct questions the list container refers to: summary ids and
    /// `data-post-id`s, or its question links when no summary was read.
    pub expected: usize,
    pub found: usize,
    /// Tag and classes of the first element of the list holding a question
    /// that was not read, e.g. `div.s-post-card.js-post-card`.
    pub first_unrecognised: Option<String>,
}

impl std::fmt::Display for LayoutDrift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "read {} question summaries of the {} the list refers to; the layout may have changed",
            self.found, self.expected
        )?;
        match &self.first_unrecognised {
            Some(el) => write!(f, " (first unrecognised element: {el})"),
            None => Ok(()),
        }
    }
}

/// Listings show at most 50 questions and home pages under 100; more
/// summaries than this means the page is not what it claims to be.
pub const MAX_SUMMARIES: usize = 500;

/// Real pages nest block elements a few dozen deep. html5ever spends time
/// proportional to the open-element stack on every block start tag, so a
/// body of thousands of unclosed `<div>`s would take seconds to minutes:
/// such a body is refused before parsing.
pub const MAX_BLOCK_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("empty body")]
    Empty,
    #[error("body is binary or not text ({bad} suspicious characters in the first {sampled})")]
    Binary { bad: usize, sampled: usize },
    #[error("markup nested {depth} block elements deep (limit {limit})")]
    TooDeep { depth: usize, limit: usize },
    #[error("{found} question summaries on one page (limit {limit})")]
    TooManySummaries { found: usize, limit: usize },
    #[error("truncated body: {len} bytes and no closing </html>")]
    Truncated { len: usize },
    #[error("blocked by the site: {reason}")]
    Blocked { reason: String },
    /// Plain text, JSON, anything not starting with markup: no refetch
    /// turns it into a listing.
    #[error("not a listing: the body is not HTML (it starts with {start})")]
    NotHtml { start: String },
    #[error("not a question listing ({})", title_note(.title))]
    NotListing { title: Option<String> },
}

fn title_note(title: &Option<String>) -> String {
    match title {
        Some(t) => format!("page title \"{t}\""),
        None => "no page title".into(),
    }
}

impl ParseError {
    /// Worth fetching again: a cut-off or empty body is a transport accident,
    /// and a block page lifts after a pause (the caller also checks
    /// [`ParseError::is_block`] to pause the whole pool, not one page).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ParseError::Empty | ParseError::Truncated { .. } | ParseError::Blocked { .. }
        )
    }

    pub fn is_block(&self) -> bool {
        matches!(self, ParseError::Blocked { .. })
    }
}

/// Compiled once per process, not per page: the set never changes and
/// fetchers parse pages concurrently from several threads. Only page-level
/// questions use selectors; a summary's fields come from one walk of its own
/// elements (see [`own_nodes`](dom::own_nodes)).
struct Selectors {
    post_summary: Selector,
    question_summary: Selector,
    title_el: Selector,
    h1: Selector,
    body: Selector,
    listing_container: Selector,
    mainbar: Selector,
    question_page_marker: Selector,
    block_marker: Selector,
}

fn sel(css: &str) -> Selector {
    // The selectors are constants; `selectors_compile` in the tests proves
    // every one parses, so this cannot fail on any input.
    Selector::parse(css).unwrap_or_else(|e| panic!("bad built-in selector {css:?}: {e:?}"))
}

static SEL: LazyLock<Selectors> = LazyLock::new(|| Selectors {
    post_summary: sel("div.s-post-summary"),
    question_summary: sel("div.question-summary"),
    title_el: sel("title"),
    h1: sel("h1"),
    body: sel("body"),
    listing_container: sel("#questions, #question-mini-list, #qlist-wrapper"),
    mainbar: sel("#mainbar"),
    question_page_marker: sel("#question, #answers, #question-header"),
    // Not `challenge-platform`: Cloudflare's bot-detection script of that
    // name is on every ordinary Stack Overflow page.
    block_marker: sel(
        "form[action*=\"captcha\"], .g-recaptcha, .h-captcha, #challenge-form, \
         #cf-challenge-running, #challenge-running, #challenge-error-text, .cf-turnstile",
    ),
});

/// Parses one listing page. Never panics, whatever the input.
pub fn parse_listing(html: &str) -> Result<ParsedPage, ParseError> {
    parse_listing_traced(html).0
}

/// Which reader gave a page its result (see [`parse_listing_traced`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsePath {
    /// Refused by the checks of the raw text, before any reader.
    Checks,
    /// The list region's tape (`stream`), without a tree.
    Stream,
    /// html5ever's tree of the list region: the stream met markup it does
    /// not reproduce exactly.
    RegionTree,
    /// html5ever's tree of the whole page: no region, or no summary in it.
    WholePage,
}

/// [`parse_listing`], with the reader that decided: for the tests and the
/// bench, which check that the fast path is the one ordinary pages take.
pub fn parse_listing_traced(html: &str) -> (Result<ParsedPage, ParseError>, ParsePath) {
    if let Err(e) = check(html) {
        return (Err(e), ParsePath::Checks);
    }
    if let Some(list) = region::list_region(html) {
        match stream::read_region(html, list.clone()) {
            Some(Ok(Some(page))) => return (Ok(page), ParsePath::Stream),
            Some(Err(e)) => return (Err(e), ParsePath::Stream),
            // No summary in the list: the whole page decides what it is.
            Some(Ok(None)) => {}
            None => match region_tree(html, list) {
                Ok(Some(page)) => return (Ok(page), ParsePath::RegionTree),
                Err(e) => return (Err(e), ParsePath::RegionTree),
                Ok(None) => {}
            },
        }
    }
    (
        read_page(&Html::parse_document(html), html),
        ParsePath::WholePage,
    )
}

/// The reference reader: html5ever's tree of the list region, or of the
/// whole page, as every page was read before the stream. The differential
/// tests hold [`parse_listing`] to it.
pub fn parse_listing_tree(html: &str) -> Result<ParsedPage, ParseError> {
    check(html)?;
    // Most pages: a tree of the question list alone (see `region`).
    if let Some(list) = region::list_region(html) {
        if let Some(page) = region_tree(html, list)? {
            return Ok(page);
        }
    }
    // No list found by the scan, or a list without summaries: the whole
    // page decides what it is (the end of a tag, a block, another page).
    read_page(&Html::parse_document(html), html)
}

fn check(html: &str) -> Result<(), ParseError> {
    checks::check_text(html)?;
    checks::check_complete(html)?;
    checks::check_depth(html)
}

fn region_tree(html: &str, list: Range<usize>) -> Result<Option<ParsedPage>, ParseError> {
    read_summaries(&Html::parse_document(&region::region_document(html, list)))
}

/// Reads a page from its whole tree.
fn read_page(doc: &Html, html: &str) -> Result<ParsedPage, ParseError> {
    match read_summaries(doc)? {
        Some(page) => Ok(page),
        None => {
            let mut page = empty_page(doc, html)?;
            page.drift = drift::layout_drift(list_container(doc), &[]);
            Ok(page)
        }
    }
}

fn list_container(doc: &Html) -> Option<NodeRef<'_, Node>> {
    doc.select(&SEL.listing_container).next().map(|e| *e)
}

/// The summaries of a tree, in the newest layout it has, with the drift of
/// its list; `None` when it has none.
fn read_summaries(doc: &Html) -> Result<Option<ParsedPage>, ParseError> {
    let s = &*SEL;
    let select = |selector: &Selector| doc.select(selector).map(|e| *e).collect::<Vec<_>>();
    read_found(
        select(&s.post_summary),
        || select(&s.question_summary),
        list_container(doc),
    )
}

/// The page of the summaries found in a document (`modern`, else `old`
/// when there are none), each read from its own elements, with the drift
/// of its list `container`; `None` when it has no summary.
///
/// Every summary is read, nested ones included. Real markup never nests
/// them on purpose, but an unclosed tag (a 2014 template typo left a `div`
/// open) makes the tree builder put every following summary inside the one
/// before it; each is still a question of its own, and `own_nodes` keeps a
/// summary from reading the fields of those nested in it.
fn read_found<'t, N: Dom<'t>>(
    modern: Vec<N>,
    old: impl FnOnce() -> Vec<N>,
    container: Option<N>,
) -> Result<Option<ParsedPage>, ParseError> {
    let (layout, found) = if !at_most_max(&modern)?.is_empty() {
        (Layout::PostSummary, modern)
    } else {
        let old = old();
        if at_most_max(&old)?.is_empty() {
            return Ok(None);
        }
        let layout = if old.iter().any(|e| e.has_class("narrow")) {
            Layout::QuestionSummaryNarrow
        } else {
            Layout::QuestionSummary
        };
        (layout, old)
    };
    let summaries: Vec<RawSummary> = found.iter().map(|el| summary::summary(*el)).collect();
    let drift = drift::layout_drift(container, &summaries);
    Ok(Some(ParsedPage {
        layout,
        summaries,
        drift,
    }))
}

fn at_most_max<T>(found: &[T]) -> Result<&[T], ParseError> {
    if found.len() > MAX_SUMMARIES {
        return Err(ParseError::TooManySummaries {
            found: found.len(),
            limit: MAX_SUMMARIES,
        });
    }
    Ok(found)
}

/// A page without summaries: the end of a tag, or something else entirely.
/// The explicit list containers are checked before block markers so that
/// the last page of the `captcha` tag is not taken for a captcha.
fn empty_page(doc: &Html, html: &str) -> Result<ParsedPage, ParseError> {
    let s = &*SEL;
    let has_list = doc.select(&s.listing_container).next().is_some();
    if !has_list {
        if let Some(reason) = block_reason(doc) {
            return Err(ParseError::Blocked { reason });
        }
    }
    if has_list || is_listing_mainbar(doc) {
        return Ok(ParsedPage {
            layout: guess_layout(html),
            summaries: Vec::new(),
            drift: None,
        });
    }
    Err(ParseError::NotListing {
        title: page_title(doc),
    })
}

/// A question page also has `#mainbar`; its question and answers tell it
/// apart from a listing whose page number ran past the last question.
fn is_listing_mainbar(doc: &Html) -> bool {
    let s = &*SEL;
    let question_page = doc.select(&s.question_page_marker).next().is_some()
        || doc
            .select(&s.body)
            .next()
            .is_some_and(|b| has_class(&b, "question-page"));
    doc.select(&s.mainbar).next().is_some() && !question_page
}

/// An empty listing shows no summary to tell its generation; the page's
/// stylesheet classes still do, and the modern one is the safe default.
fn guess_layout(html: &str) -> Layout {
    if html.contains("s-post-summary") || !html.contains("question-summary") {
        Layout::PostSummary
    } else if html.contains("mini-counts") {
        Layout::QuestionSummaryNarrow
    } else {
        Layout::QuestionSummary
    }
}

fn page_title(doc: &Html) -> Option<String> {
    doc.select(&SEL.title_el)
        .next()
        .map(|t| collapse(&text_of(&t)))
        .filter(|t| !t.is_empty())
}

/// Captcha, "human verification" and CDN challenge pages, recognised by
/// their title, heading or challenge markup. Only consulted when a page has
/// no summaries and no list container, so a question *about* captchas
/// never trips it.
fn block_reason(doc: &Html) -> Option<String> {
    // Bare "captcha" would match the `captcha` tag's own pages.
    const PHRASES: [&str; 6] = [
        "human verification",
        "are you a human",
        "just a moment",
        "attention required",
        "access denied",
        "unusual traffic",
    ];
    let s = &*SEL;
    let headings = doc
        .select(&s.title_el)
        .chain(doc.select(&s.h1))
        .map(|e| collapse(&text_of(&e)));
    for heading in headings {
        let lower = heading.to_lowercase();
        if PHRASES.iter().any(|p| lower.contains(p)) {
            return Some(heading);
        }
    }
    doc.select(&s.block_marker)
        .next()
        .map(|e| format!("challenge markup <{}>", e.value().name()))
}

fn text_of(el: &ElementRef) -> String {
    el.text().collect()
}

fn has_class(el: &ElementRef, class: &str) -> bool {
    el.value().classes().any(|c| c == class)
}

/// Whitespace runs (including the newlines templates indent with, and the
/// no-break spaces of decoded API text) become one space. The API reader
/// uses it too, so both sources' text compares equal.
pub fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/so-html/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn page(name: &str) -> ParsedPage {
        parse_listing(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn stat(text: &str, title: Option<&str>) -> RawStat {
        RawStat {
            text: Some(text.to_owned()),
            title: title.map(str::to_owned),
        }
    }

    fn trimmed(s: &RawStat) -> RawStat {
        RawStat {
            text: s.text.as_deref().map(collapse),
            title: s.title.clone(),
        }
    }

    /// What a reader checks of a summary: everything but the excerpt, whose
    /// text a broken tag may legitimately cut or extend.
    fn essentials(s: &RawSummary) -> RawSummary {
        RawSummary {
            excerpt: None,
            ..s.clone()
        }
    }

    /// Breaks one summary's markup (`from` → `to`, first occurrence after
    /// the `nth` summary starts) and checks that the page still yields every
    /// summary, each with exactly the fields of the intact page.
    fn survives_broken_markup(name: &str, nth: usize, from: &str, to: &str) -> String {
        let html = fixture(name);
        let intact = page(name);
        let marker = match intact.layout {
            Layout::PostSummary => "s-post-summary ",
            _ => "class=\"question-summary",
        };
        let start = html
            .match_indices(marker)
            .nth(nth)
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("{name}: no summary {nth}"));
        let at = start
            + html[start..]
                .find(from)
                .unwrap_or_else(|| panic!("{name}: no {from:?} in summary {nth}"));
        let broken = format!("{}{to}{}", &html[..at], &html[at + from.len()..]);
        let p = parse_listing(&broken).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            p.summaries.len(),
            intact.summaries.len(),
            "{name}: {from:?}"
        );
        for (got, want) in p.summaries.iter().zip(&intact.summaries) {
            assert_eq!(essentials(got), essentials(want), "{name}: {from:?}");
        }
        assert_eq!(p.drift, None, "{name}");
        broken
    }

    /// Summaries the tree builder put inside another summary.
    fn nested_summaries(html: &str) -> usize {
        let doc = Html::parse_document(html);
        doc.select(&SEL.question_summary)
            .chain(doc.select(&SEL.post_summary))
            .filter(|e| e.ancestors().any(dom::is_summary))
            .count()
    }

    const ALL_FIXTURES: [&str; 19] = [
        "tagged-python-newest-2013.html",
        "quantse-tagged-equities-newest-2014.html",
        "tagged-webcam-newest-2014-bounty-closed.html",
        "csse-tagged-complexity-theory-newest-2014.html",
        "dbase-tagged-database-administration-newest-2014.html",
        "electronicsse-tagged-integrated-circuit-newest-2014.html",
        "serverfault-tagged-bash-newest-2014.html",
        "so-home-interesting-2016.html",
        "homepage-narrow-2018.html",
        "so-questions-active-2020.html",
        "so-questions-bounties-featured-2020.html",
        "so-questions-unanswered-2020.html",
        "so-tagged-gitlab-newest-2020.html",
        "so-tagged-odoo-server-2020.html",
        "tagged-command-newest-2020.html",
        "tagged-python-votes-2020.html",
        "tagged-python-newest-2025.html",
        "questions-newest-2026-resaved.html",
        "meta-homepage-2026-resaved.html",
    ];

    #[test]
    fn the_real_2014_template_typo_loses_no_question_and_mixes_no_tags() {
        // `<div>votes/div>`: the typo of the 2014 home pages, a div that
        // never closes, nests every later summary inside this one.
        let broken = survives_broken_markup(
            "homepage-narrow-2018.html",
            0,
            "<div>votes</div>",
            "<div>votes/div>",
        );
        // Every summary after the first now sits inside the one before.
        assert_eq!(nested_summaries(&broken), 95);
        let broken = survives_broken_markup(
            "so-home-interesting-2016.html",
            3,
            "<div>votes</div>",
            "<div>votes/div>",
        );
        assert!(nested_summaries(&broken) > 90);
    }

    #[test]
    fn unclosed_tags_in_every_layout() {
        // Old wide layout: an excerpt and a stats box left open.
        survives_broken_markup("tagged-python-newest-2013.html", 2, "</div>", "");
        survives_broken_markup(
            "so-questions-active-2020.html",
            0,
            "<div class=\"viewcount\">votes</div>",
            "<div class=\"viewcount\">votes",
        );
        survives_broken_markup(
            "tagged-webcam-newest-2014-bounty-closed.html",
            5,
            "<div class=\"excerpt\">",
            "<div class=\"excerpt\"><div>",
        );
        // Narrow home-page layout: an unclosed stat box.
        survives_broken_markup(
            "homepage-narrow-2018.html",
            10,
            "<div>answers</div>",
            "<div>answers",
        );
        // Modern layout: an unclosed excerpt and an unclosed stats item.
        survives_broken_markup(
            "tagged-python-newest-2025.html",
            4,
            "<div class=\"s-post-summary--meta\">",
            "<div><div class=\"s-post-summary--meta\">",
        );
        survives_broken_markup(
            "questions-newest-2026-resaved.html",
            0,
            "</h3>",
            "</h3><div>",
        );
        survives_broken_markup(
            "meta-homepage-2026-resaved.html",
            7,
            "</h3>",
            "</h3><div><div>",
        );
    }

    /// What the whole page's tree reads, without the list-region shortcut.
    fn whole_page(html: &str) -> Result<ParsedPage, ParseError> {
        read_page(&Html::parse_document(html), html)
    }

    #[test]
    fn the_list_region_reads_what_the_whole_page_reads() {
        for name in ALL_FIXTURES {
            let html = fixture(name);
            assert!(region::list_region(&html).is_some(), "{name}: no region");
            assert_eq!(parse_listing(&html), whole_page(&html), "{name}");
        }
        // Broken markup of every layout, whether the region survives it or
        // the page is parsed whole.
        for (name, nth, from, to) in BROKEN {
            let broken = survives_broken_markup(name, nth, from, to);
            assert_eq!(parse_listing(&broken), whole_page(&broken), "{name}");
        }
    }

    /// The broken-markup class of every layout: unclosed and stray tags
    /// that make the tree builder nest summaries in one another.
    const BROKEN: [(&str, usize, &str, &str); 9] = [
        (
            "homepage-narrow-2018.html",
            0,
            "<div>votes</div>",
            "<div>votes/div>",
        ),
        (
            "so-home-interesting-2016.html",
            3,
            "<div>votes</div>",
            "<div>votes/div>",
        ),
        (
            "homepage-narrow-2018.html",
            10,
            "<div>answers</div>",
            "<div>answers",
        ),
        ("tagged-python-newest-2013.html", 2, "</div>", ""),
        (
            "so-questions-active-2020.html",
            0,
            "<div class=\"viewcount\">votes</div>",
            "<div class=\"viewcount\">votes",
        ),
        (
            "tagged-webcam-newest-2014-bounty-closed.html",
            5,
            "<div class=\"excerpt\">",
            "<div class=\"excerpt\"><div>",
        ),
        (
            "tagged-python-newest-2025.html",
            4,
            "<div class=\"s-post-summary--meta\">",
            "<div><div class=\"s-post-summary--meta\">",
        ),
        (
            "questions-newest-2026-resaved.html",
            0,
            "</h3>",
            "</h3><div>",
        ),
        (
            "meta-homepage-2026-resaved.html",
            7,
            "</h3>",
            "</h3><div><div>",
        ),
    ];

    #[test]
    fn broken_markup_reads_the_same_by_the_stream_and_the_tree() {
        let mut nested = 0;
        for (name, nth, from, to) in BROKEN {
            let broken = survives_broken_markup(name, nth, from, to);
            let (fast, path) = parse_listing_traced(&broken);
            assert_eq!(fast, parse_listing_tree(&broken), "{name}: {to:?}");
            // Unclosed `div`s are plain nesting: the stream reads them.
            assert_eq!(path, ParsePath::Stream, "{name}: {to:?}");
            nested += usize::from(stream::nests_summaries(&broken) == Some(true));
        }
        // All but the `</h3><div>` page have summaries inside summaries.
        assert_eq!(nested, BROKEN.len() - 1);
    }

    #[test]
    fn summaries_that_stray_end_tags_push_out_of_the_list_are_all_read() {
        let name = "tagged-python-votes-2020.html";
        let html = fixture(name);
        let intact = page(name);
        // End tags between two summaries close the list (and the main bar)
        // early: the rest of the summaries follow it, outside the region.
        let at = html
            .match_indices("<div class=\"question-summary\"")
            .nth(3)
            .map(|(i, _)| i)
            .expect("a fourth summary");
        let broken = format!("{}</div></div>{}", &html[..at], &html[at..]);
        assert_eq!(region::list_region(&broken), None);
        let p = parse_listing(&broken).expect("a listing");
        assert_eq!(Ok(&p), whole_page(&broken).as_ref());
        assert_eq!(p.summaries, intact.summaries);
    }

    #[test]
    fn selectors_compile() {
        LazyLock::force(&SEL);
    }

    #[test]
    fn tagged_python_newest_2025_first_and_last() {
        let p = page("tagged-python-newest-2025.html");
        assert_eq!(p.layout, Layout::PostSummary);
        assert_eq!(p.summaries.len(), 15);

        let first = &p.summaries[0];
        assert_eq!(first.question_id.as_deref(), Some("79821892"));
        assert_eq!(
            first.href.as_deref(),
            Some("/questions/79821892/how-to-automate-extraction-and-standardization-of-multilingual-name-username-dat")
        );
        assert_eq!(first.kind_label.as_deref(), Some("Advice"));
        assert_eq!(trimmed(&first.votes), stat("0", Some("Score of 0")));
        assert!(first.answers.is_missing());
        assert_eq!(
            first.replies.as_ref().map(trimmed),
            Some(stat("0", Some("# replies")))
        );
        assert_eq!(trimmed(&first.views), stat("12", Some("12 views")));
        assert_eq!(first.tags, ["python", "sql-server", "data-cleaning"]);
        assert_eq!(first.author_name.as_deref(), Some("John Doe"));
        assert_eq!(
            first.author_reputation,
            stat("17", Some("reputation score "))
        );
        assert_eq!(
            first.times,
            [RawTime {
                label: "asked".into(),
                iso: "2025-11-17 03:46:46Z".into()
            }]
        );
        assert!(!first.accepted);

        let last = &p.summaries[14];
        assert_eq!(last.question_id.as_deref(), Some("79821480"));
        assert_eq!(trimmed(&last.answers), stat("2", Some("2 answers")));
        assert!(!last.accepted);
        assert_eq!(last.author_name.as_deref(), Some("TTM"));
    }

    #[test]
    fn empty_listing_is_ok_and_empty() {
        let html =
            "<html><body><div id=\"mainbar\"><div id=\"questions\">\n</div></div></body></html>\n";
        let p = parse_listing(html).expect("empty listing");
        assert!(p.summaries.is_empty());
        assert_eq!(p.drift, None);
        let mainbar_only = "<!DOCTYPE html><html><body class=\"tagged-questions-page\"><div id=\"mainbar\"></div></body></HTML>  \n";
        assert_eq!(
            parse_listing(mainbar_only).map(|p| p.summaries.len()),
            Ok(0)
        );
    }

    #[test]
    fn last_page_of_a_tag_from_a_real_page() {
        // The 2025 page with its summaries removed is what a tag's page past
        // the end looks like: still a listing, nothing on it.
        let html = fixture("tagged-python-newest-2025.html").replace("s-post-summary ", "gone ");
        let p = parse_listing(&html).expect("still a listing");
        assert!(p.summaries.is_empty());
        // ...but its list still holds 15 questions by id: a layout change,
        // not the end of the tag.
        assert_eq!(
            p.drift,
            Some(LayoutDrift {
                expected: 15,
                found: 0,
                first_unrecognised: Some("div.gone.js-post-summary".into())
            })
        );
    }

    #[test]
    fn a_layout_change_is_reported_with_the_first_unrecognised_element() {
        // Three summaries of a 2020 page renamed: 47 of 50 read.
        let html = fixture("tagged-command-newest-2020.html").replacen(
            "class=\"question-summary\"",
            "class=\"question-card js-card\"",
            3,
        );
        let p = parse_listing(&html).expect("listing");
        assert_eq!(p.summaries.len(), 47);
        let drift = p.drift.expect("drift");
        assert_eq!((drift.expected, drift.found), (50, 47));
        assert_eq!(
            drift.first_unrecognised.as_deref(),
            Some("div.question-card.js-card")
        );
        assert!(
            drift.to_string().contains("layout may have changed"),
            "{drift}"
        );
        // Ids gone too: the question links still tell.
        let bare = "<html><body><div id=\"mainbar\"><div id=\"questions\">\
            <article class=\"q-card\"><a href=\"/questions/11/a\">a</a></article>\
            <article class=\"q-card\"><a href=\"/questions/12/b\">b</a> <a href=\"/questions/tagged/x\">x</a></article>\
            </div></div></body></html>";
        let p = parse_listing(bare).expect("listing");
        let want = Some(LayoutDrift {
            expected: 2,
            found: 0,
            first_unrecognised: Some("article.q-card".into()),
        });
        assert_eq!(p.drift, want);
        // The same links as a Wayback replay rewrote them.
        let replayed = bare
            .replacen(
                "\"/questions/11",
                "\"/web/2019/https://stackoverflow.com/questions/11",
                1,
            )
            .replacen(
                "\"/questions/12",
                "\"https://web.archive.org/web/2019/https://stackoverflow.com/questions/12",
                1,
            );
        assert_eq!(parse_listing(&replayed).expect("listing").drift, want);
    }

    #[test]
    fn every_fixture_reads_every_question_it_lists() {
        for name in ALL_FIXTURES {
            assert_eq!(page(name).drift, None, "{name}");
        }
    }

    #[test]
    fn empty_and_blank_bodies() {
        assert_eq!(parse_listing(""), Err(ParseError::Empty));
        assert_eq!(parse_listing(" \r\n\t "), Err(ParseError::Empty));
        assert!(ParseError::Empty.is_retryable());
    }

    #[test]
    fn binary_body() {
        let png = "\u{89}PNG\r\n\u{1a}\n\0\0\0\rIHDR\0\0\0\u{10}";
        assert!(matches!(parse_listing(png), Err(ParseError::Binary { .. })));
        let lossy =
            String::from_utf8_lossy(&[0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe, 0x9c, 0x01]).repeat(50);
        let err = parse_listing(&lossy).unwrap_err();
        assert!(matches!(err, ParseError::Binary { .. }), "{err:?}");
        assert!(!err.is_retryable() && !err.is_block());
    }

    #[test]
    fn a_body_that_is_not_html_is_not_a_listing_and_not_retried() {
        for body in [
            "Service temporarily unavailable, try later.",
            "{\"error\": \"not found\"}",
            "\u{feff}  plain text after a BOM",
        ] {
            let err = parse_listing(body).unwrap_err();
            assert!(matches!(err, ParseError::NotHtml { .. }), "{body}: {err:?}");
            assert!(!err.is_retryable(), "{body}");
            assert!(err.to_string().starts_with("not a listing"), "{err}");
        }
        // Markup after a BOM and blank lines, cut short, is still truncated.
        let cut = "\u{feff}\n  <!DOCTYPE html><html><body><div id=\"questions\">";
        assert!(matches!(
            parse_listing(cut),
            Err(ParseError::Truncated { .. })
        ));
    }

    #[test]
    fn not_a_listing_names_the_title_in_words() {
        let err = ParseError::NotListing {
            title: Some("Home".into()),
        };
        assert_eq!(
            err.to_string(),
            "not a question listing (page title \"Home\")"
        );
        let err = ParseError::NotListing { title: None };
        assert_eq!(err.to_string(), "not a question listing (no page title)");
    }

    #[test]
    fn truncated_body_is_retryable() {
        let html = fixture("tagged-python-newest-2025.html");
        let cut = html.get(..html.len() / 2).unwrap_or_default();
        let err = parse_listing(cut).unwrap_err();
        assert_eq!(err, ParseError::Truncated { len: cut.len() });
        assert!(err.is_retryable() && !err.is_block());
    }

    #[test]
    fn human_verification_page_is_a_block() {
        let html = "<!DOCTYPE html><html><head><title>Human verification - Stack Overflow</title></head>\
            <body class=\"floating-content\"><div id=\"content\"><h1>Human verification</h1>\
            <form action=\"/nocaptcha\" method=\"post\"><div class=\"g-recaptcha\"></div></form></div></body></html>";
        let err = parse_listing(html).unwrap_err();
        assert!(err.is_block(), "{err:?}");
        let challenge = "<html><head><title>Just a moment...</title></head><body>\
            <div id=\"challenge-error-text\"></div><script>window._cf_chl_opt={cType: 'managed'};</script></body></html>";
        assert!(parse_listing(challenge).is_err_and(|e| e.is_block()));
        let markup_only = "<html><body><div class=\"h-captcha\"></div></body></html>";
        assert!(parse_listing(markup_only).is_err_and(|e| e.is_block()));
        let cut_captcha = "<html><head><title>Human verification</title></head><body><form action=\"/nocaptcha\">";
        assert!(parse_listing(cut_captcha).is_err_and(|e| e.is_block()));
        let captcha_tag_end = "<html><head><title>Newest 'captcha' Questions - Stack Overflow</title></head>\
            <body><div id=\"mainbar\"><h1>Questions tagged [captcha]</h1><div id=\"questions\"></div></div></body></html>";
        assert_eq!(
            parse_listing(captcha_tag_end).map(|p| p.summaries.len()),
            Ok(0)
        );
    }

    #[test]
    fn question_page_is_not_a_listing() {
        let path = format!(
            "{}/tests/fixtures/so-question/question-29980798-2020.html",
            env!("CARGO_MANIFEST_DIR")
        );
        let html = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let err = parse_listing(&html).unwrap_err();
        assert!(matches!(err, ParseError::NotListing { .. }), "{err:?}");
        assert!(!err.is_retryable() && !err.is_block());
        let plain = "<html><head><title>Hello</title></head><body><p>hi</p></body></html>";
        assert_eq!(
            parse_listing(plain),
            Err(ParseError::NotListing {
                title: Some("Hello".into())
            })
        );
        assert!(matches!(
            parse_listing("just some text, no markup at all </html>"),
            Err(ParseError::NotListing { title: None })
        ));
    }

    #[test]
    fn a_fetched_question_page_that_is_empty_or_cut_is_worth_a_retry() {
        assert_eq!(parse_listing(""), Err(ParseError::Empty));
        let path = format!(
            "{}/tests/fixtures/so-question/question-29980798-2020.html",
            env!("CARGO_MANIFEST_DIR")
        );
        let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let cut = page
            .get(..page.len().saturating_sub(2000))
            .unwrap_or_default();
        assert!(parse_listing(cut).is_err_and(|e| e.is_retryable()));
    }

    #[test]
    fn layout_of_every_fixture() {
        let expected = [
            (
                "tagged-python-newest-2013.html",
                Layout::QuestionSummary,
                15,
            ),
            (
                "tagged-webcam-newest-2014-bounty-closed.html",
                Layout::QuestionSummary,
                15,
            ),
            (
                "homepage-narrow-2018.html",
                Layout::QuestionSummaryNarrow,
                96,
            ),
            ("tagged-python-votes-2020.html", Layout::QuestionSummary, 50),
            (
                "tagged-command-newest-2020.html",
                Layout::QuestionSummary,
                50,
            ),
            ("tagged-python-newest-2025.html", Layout::PostSummary, 15),
            (
                "questions-newest-2026-resaved.html",
                Layout::PostSummary,
                15,
            ),
            ("meta-homepage-2026-resaved.html", Layout::PostSummary, 48),
        ];
        for (name, layout, count) in expected {
            let p = page(name);
            assert_eq!((p.layout, p.summaries.len()), (layout, count), "{name}");
        }
    }

    #[test]
    fn modern_bounty_badge() {
        let html = "<html><body><div id=\"questions\"><div class=\"s-post-summary\" data-post-id=\"7\">\
            <div class=\"s-post-summary--stats\">\
            <div class=\"s-post-summary--stats-item\" title=\"Score of 1\"><span class=\"s-post-summary--stats-item-number\">1</span><span class=\"s-post-summary--stats-item-unit\">vote</span></div>\
            </div><div class=\"s-post-summary--content\">\
            <div class=\"s-post-summary--meta\"><div class=\"s-badge s-badge__bounty\" title=\"This question has an open bounty worth 100 reputation\">+100</div></div>\
            </div></div></div></body></html>";
        let p = parse_listing(html).expect("listing");
        assert_eq!(
            p.summaries.first().and_then(|s| s.bounty.as_deref()),
            Some("+100")
        );
    }
    #[test]
    fn fixtures_nest_far_below_the_depth_limit() {
        for name in [
            "tagged-python-newest-2013.html",
            "homepage-narrow-2018.html",
            "tagged-python-votes-2020.html",
            "tagged-python-newest-2025.html",
            "meta-homepage-2026-resaved.html",
        ] {
            let depth = checks::block_depth(&fixture(name), MAX_BLOCK_DEPTH);
            assert!((5..MAX_BLOCK_DEPTH / 4).contains(&depth), "{name}: {depth}");
        }
        assert_eq!(
            checks::block_depth("<div><!-- <div> --><script>a<div</script></div>", 10),
            1
        );
        assert_eq!(checks::block_depth("<DIV><Section></section><ul>", 10), 2);
    }

    /// Markup that would make parsing quadratic is refused or bounded:
    /// each of these took seconds to minutes before the guards.
    #[test]
    fn hostile_markup_is_bounded() {
        let wrap = |body: String| format!("<html><body><div id=\"questions\">{body}</body></html>");
        let summary = "<div class=\"s-post-summary\" data-post-id=\"1\">\
            <h3 class=\"s-post-summary--content-title\"><a href=\"/q/1\">t</a></h3>";

        let unclosed = wrap("<div>".repeat(100_000));
        assert_eq!(
            parse_listing(&unclosed),
            Err(ParseError::TooDeep {
                depth: MAX_BLOCK_DEPTH + 1,
                limit: MAX_BLOCK_DEPTH
            })
        );
        // Nested summaries are records of their own, each reading only
        // its own fields, in one linear walk.
        let nested = wrap(summary.repeat(200));
        let page = parse_listing(&nested).expect("nested summaries");
        assert_eq!(page.summaries.len(), 200);
        assert!(page
            .summaries
            .iter()
            .all(|s| s.title.as_deref() == Some("t") && s.tags.is_empty()));
        let flat = wrap(format!("{summary}</div>").repeat(MAX_SUMMARIES + 1));
        assert!(matches!(
            parse_listing(&flat),
            Err(ParseError::TooManySummaries { .. })
        ));
        let times = wrap(format!(
            "{summary}{}</div>",
            "<span class=\"relativetime\" title=\"2020-01-01 00:00:00Z\"></span>".repeat(20_000)
        ));
        let page = parse_listing(&times).expect("one summary");
        assert_eq!(page.summaries.first().map(|s| s.times.len()), Some(8));
    }
}
