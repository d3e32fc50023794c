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
//! whole, so the shortcut changes the cost, never the result.
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

mod region;

use std::collections::HashSet;
use std::sync::LazyLock;

use ego_tree::{NodeId, NodeRef};
use scraper::node::Element;
use scraper::{ElementRef, Html, Node, Selector};
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
/// elements (see [`own_nodes`]).
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
    check_text(html)?;
    check_complete(html)?;
    check_depth(html)?;
    // Most pages: a tree of the question list alone (see `region`).
    if let Some(list) = region::list_region(html) {
        let doc = Html::parse_document(&region::region_document(html, list));
        if let Some(page) = read_summaries(&doc)? {
            return Ok(page);
        }
    }
    // No list found by the scan, or a list without summaries: the whole
    // page decides what it is (the end of a tag, a block, another page).
    read_page(&Html::parse_document(html), html)
}

/// Reads a page from its whole tree.
fn read_page(doc: &Html, html: &str) -> Result<ParsedPage, ParseError> {
    match read_summaries(doc)? {
        Some(page) => Ok(page),
        None => {
            let mut page = empty_page(doc, html)?;
            page.drift = layout_drift(doc, &[]);
            Ok(page)
        }
    }
}

/// The summaries of a tree, in the newest layout it has, with the drift of
/// its list; `None` when it has none.
fn read_summaries(doc: &Html) -> Result<Option<ParsedPage>, ParseError> {
    let s = &*SEL;
    let modern = all_summaries(doc, &s.post_summary)?;
    let (layout, found) = if !modern.is_empty() {
        (Layout::PostSummary, modern)
    } else {
        let old = all_summaries(doc, &s.question_summary)?;
        if old.is_empty() {
            return Ok(None);
        }
        let layout = if old.iter().any(|e| has_class(e, "narrow")) {
            Layout::QuestionSummaryNarrow
        } else {
            Layout::QuestionSummary
        };
        (layout, old)
    };
    let summaries: Vec<RawSummary> = found.iter().map(|el| summary(*el)).collect();
    let drift = layout_drift(doc, &summaries);
    Ok(Some(ParsedPage {
        layout,
        summaries,
        drift,
    }))
}

/// Every summary of a page, nested ones included. Real markup never nests
/// them on purpose, but an unclosed tag (a 2014 template typo left a `div`
/// open) makes the tree builder put every following summary inside the one
/// before it; each is still a question of its own, and [`own_nodes`] keeps a
/// summary from reading the fields of those nested in it.
fn all_summaries<'a>(
    doc: &'a Html,
    selector: &Selector,
) -> Result<Vec<ElementRef<'a>>, ParseError> {
    let found: Vec<ElementRef> = doc.select(selector).collect();
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

fn check_text(html: &str) -> Result<(), ParseError> {
    if html.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    // Decoded binary (an image, gzip the client did not undo) is full of
    // control characters and U+FFFD from lossy decoding; real HTML has
    // almost none. Sampling the start keeps this cheap on big bodies.
    let mut sampled = 0usize;
    let mut bad = 0usize;
    for c in html.chars().take(4096) {
        sampled += 1;
        let control = c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}');
        if control || c == '\u{fffd}' {
            bad += 1;
        }
    }
    if html.contains('\0') || bad * 20 > sampled {
        return Err(ParseError::Binary { bad, sampled });
    }
    Ok(())
}

fn check_depth(html: &str) -> Result<(), ParseError> {
    let depth = block_depth(html, MAX_BLOCK_DEPTH);
    if depth > MAX_BLOCK_DEPTH {
        return Err(ParseError::TooDeep {
            depth,
            limit: MAX_BLOCK_DEPTH,
        });
    }
    Ok(())
}

/// Block elements whose start tag makes html5ever scan the open-element
/// stack ("close a p element in button scope").
const BLOCK_TAGS: [&str; 24] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "header",
    "hgroup",
    "main",
    "menu",
    "nav",
    "ol",
    "search",
    "section",
    "summary",
    "ul",
];

/// The deepest nesting of block elements, by a linear scan of the tags
/// (skipping comments and script/style text, where `<` is not markup).
/// Stops counting once past `limit`. Mismatched end tags make this an
/// over-estimate, which only matters far beyond what real pages do.
fn block_depth(html: &str, limit: usize) -> usize {
    let mut rest = html;
    let mut depth = 0usize;
    let mut max = 0usize;
    while let Some(lt) = rest.find('<') {
        rest = rest.get(lt + 1..).unwrap_or("");
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = comment
                .find("-->")
                .and_then(|e| comment.get(e + 3..))
                .unwrap_or("");
            continue;
        }
        let (closing, tag) = match rest.strip_prefix('/') {
            Some(t) => (true, t),
            None => (false, rest),
        };
        let name_len = tag
            .bytes()
            .take(16)
            .take_while(u8::is_ascii_alphanumeric)
            .count();
        let name = tag.get(..name_len).unwrap_or("");
        if !closing && (name.eq_ignore_ascii_case("script") || name.eq_ignore_ascii_case("style")) {
            rest = skip_past_end_tag(tag, name);
            continue;
        }
        if BLOCK_TAGS.iter().any(|b| b.eq_ignore_ascii_case(name)) {
            if closing {
                depth = depth.saturating_sub(1);
            } else {
                depth += 1;
                max = max.max(depth);
                if max > limit {
                    break;
                }
            }
        }
    }
    max
}

/// The text after `</name`, ignoring case; empty when it never closes.
fn skip_past_end_tag<'a>(text: &'a str, name: &str) -> &'a str {
    let mut rest = text;
    while let Some(lt) = rest.find("</") {
        let after = rest.get(lt + 2..).unwrap_or("");
        let matches = after
            .get(..name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name));
        if matches {
            return after.get(name.len()..).unwrap_or("");
        }
        rest = after;
    }
    ""
}

/// Complete pages end with `</html>` (maybe followed by whitespace or a
/// comment); looking only at the tail keeps this O(1) in the body size, and
/// doing it before parsing means a cut-off body costs nothing. A listing cut
/// short would still have summaries, but only some of them and maybe a last
/// one missing its fields: refetching beats recording half a page.
fn check_complete(html: &str) -> Result<(), ParseError> {
    let mut start = html.len().saturating_sub(1024);
    while !html.is_char_boundary(start) {
        start += 1;
    }
    let tail = html.get(start..).unwrap_or("").to_ascii_lowercase();
    if tail.contains("</html>") {
        Ok(())
    } else if let Some(reason) = raw_block_reason(html) {
        // A cut-off challenge page is still a block: retrying it page by
        // page would only dig the hole deeper.
        Err(ParseError::Blocked { reason })
    } else if !html
        .trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n'])
        .starts_with('<')
    {
        // Only a page that began as markup can have been cut short.
        let start: String = html.trim_start().chars().take(20).collect();
        Err(ParseError::NotHtml {
            start: format!("{start:?}"),
        })
    } else {
        Err(ParseError::Truncated { len: html.len() })
    }
}

/// Block markers found in the raw text of a body that cannot be parsed as a
/// whole. Skipped when the text shows listing markup, where "recaptcha" may
/// simply be a tag or a word in an excerpt.
fn raw_block_reason(html: &str) -> Option<String> {
    const MARKERS: [&str; 8] = [
        "human verification",
        "g-recaptcha",
        "h-captcha",
        "/nocaptcha",
        "_cf_chl_opt",
        "cf-challenge",
        "challenge-running",
        "are you a human",
    ];
    let mut end = html.len().min(64 * 1024);
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    let head = html.get(..end).unwrap_or("").to_ascii_lowercase();
    if [
        "s-post-summary",
        "question-summary",
        "id=\"questions\"",
        "id=\"question\"",
    ]
    .iter()
    .any(|m| head.contains(m))
    {
        return None;
    }
    MARKERS
        .iter()
        .find(|m| head.contains(*m))
        .map(|m| format!("{m:?} in a body without </html>"))
}

/// The nodes of `root`'s subtree in document order, `root` first, leaving
/// out every summary nested inside it with its whole subtree. Each node of a
/// page is visited by the walk of exactly one summary, so extracting every
/// summary of even a pathologically nested page stays linear.
fn own_nodes(root: ElementRef<'_>) -> Walk<'_> {
    Walk {
        stack: vec![*root],
        root: root.id(),
        prune: is_summary,
    }
}

/// A pre-order walk of a subtree that leaves out every element (other
/// than the root) for which `prune` holds, with all of its descendants.
struct Walk<'a> {
    stack: Vec<NodeRef<'a, Node>>,
    root: NodeId,
    prune: fn(&Element) -> bool,
}

impl<'a> Iterator for Walk<'a> {
    type Item = NodeRef<'a, Node>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let node = self.stack.pop()?;
            if node.id() != self.root {
                if let Node::Element(e) = node.value() {
                    if (self.prune)(e) {
                        continue;
                    }
                }
            }
            self.stack.extend(node.children().rev());
            return Some(node);
        }
    }
}

fn is_summary(e: &Element) -> bool {
    e.classes()
        .any(|c| c == "s-post-summary" || c == "question-summary")
}

/// The elements of `root`'s own subtree (see [`own_nodes`]), `root` first.
fn own_elements(root: ElementRef<'_>) -> impl Iterator<Item = ElementRef<'_>> {
    own_nodes(root).filter_map(ElementRef::wrap)
}

/// The text of `el`, without the text of any summary nested in it.
fn own_text(el: &ElementRef) -> String {
    let mut out = String::new();
    for node in own_nodes(*el) {
        if let Node::Text(t) = node.value() {
            out.push_str(t);
        }
    }
    out
}

/// Classes whose text is not the user's name: the action and its time,
/// reputation, badges, avatars, the community-wiki marker.
const NOT_NAME: [&str; 17] = [
    "started-link",
    "user-action-time",
    "relativetime",
    "reputation-score",
    "-flair",
    "badge1",
    "badge2",
    "badge3",
    "badgecount",
    "v-visible-sr",
    "community-wiki",
    "user-gravatar32",
    "s-avatar",
    "s-user-card--time",
    "s-user-card--awards",
    "s-user-card--rep",
    "s-user-card--avatar",
];

/// The text a reader sees as a name in a user area: everything but the
/// parts listed in [`NOT_NAME`] (and `time`, `script`, `style`), collapsed.
fn shown_name(area: ElementRef<'_>) -> String {
    fn hidden(e: &Element) -> bool {
        is_summary(e)
            || matches!(e.name(), "time" | "script" | "style" | "img" | "svg")
            || e.classes().any(|c| NOT_NAME.contains(&c))
    }
    let walk = Walk {
        stack: vec![*area],
        root: area.id(),
        prune: hidden,
    };
    let mut out = String::new();
    for node in walk {
        if let Node::Text(t) = node.value() {
            out.push_str(t);
        }
    }
    collapse(&out)
}

/// The profile a link points to: the id in `/users/123/name` (absolute or
/// relative; `-1` is the Community user).
fn profile_id(href: &str) -> Option<String> {
    let rest = href.split("/users/").nth(1)?;
    let id: String = rest
        .chars()
        .enumerate()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '-'))
        .map(|(_, c)| c)
        .collect();
    id.trim_start_matches('-')
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit())
        .then_some(id)
}

/// Who a summary names and what they did, as the page shows it.
fn read_author(area: ElementRef<'_>, raw: &mut RawSummary) {
    let mut details: Option<String> = None;
    let mut linked: Option<(String, String)> = None;
    for el in own_elements(area).skip(1) {
        let v = el.value();
        if linked.is_none() && v.name() == "a" {
            let id = v
                .attr("href")
                .and_then(profile_id)
                .or_else(|| v.attr("data-user-id").map(str::to_owned));
            if let Some(id) = id {
                let name = collapse(&own_text(&el));
                if !name.is_empty() {
                    linked = Some((name, id));
                }
            }
        }
        if details.is_none()
            && v.classes()
                .any(|c| c == "user-details" || c == "s-user-card--link")
        {
            details = Some(shown_name(el)).filter(|n| !n.is_empty());
        }
        if has_class(&el, "relativetime") && raw.author_action.is_none() {
            raw.author_action = Some(label_before(&el)).filter(|l| !l.is_empty());
        }
    }
    match linked {
        Some((name, id)) => {
            raw.author_name = Some(name);
            raw.author_user_id = Some(id);
            raw.author_linked = true;
        }
        None => {
            raw.author_name = details.or_else(|| Some(shown_name(area)).filter(|n| !n.is_empty()));
        }
    }
}

/// One summary's fields, read in one walk of its own elements: the first
/// element of each kind wins, as a reader's eye would take it.
fn summary(el: ElementRef<'_>) -> RawSummary {
    let mut raw = RawSummary {
        question_id: attr(&el, "data-post-id").or_else(|| {
            el.value()
                .attr("id")
                .and_then(|id| id.strip_prefix("question-summary-"))
                .map(str::to_owned)
        }),
        ..RawSummary::default()
    };
    let mut modern_title = None;
    let mut hyperlink = None;
    let mut h3 = None;
    let mut vote_count = None;
    let mut votes = None;
    let mut status = None;
    let mut views = None;
    let mut reputation = None;
    let mut modern_rep = None;
    let mut user_area = None;
    let mut modern_stats = Vec::new();
    let mut bounties = Vec::new();
    let mut wiki_text = false;

    for e in own_elements(el).skip(1) {
        let v = e.value();
        if v.name() == "h3" {
            h3.get_or_insert(e);
        }
        for class in v.classes() {
            match class {
                "s-post-summary--stats-item" => modern_stats.push(e),
                "s-post-summary--content-title" => {
                    modern_title.get_or_insert(e);
                }
                "question-hyperlink" if v.name() == "a" => {
                    hyperlink.get_or_insert(e);
                }
                "vote-count-post" => {
                    vote_count.get_or_insert(e);
                }
                "votes" => {
                    votes.get_or_insert(e);
                }
                "status" => {
                    status.get_or_insert(e);
                }
                "views" => {
                    views.get_or_insert(e);
                }
                "post-tag" if v.name() == "a" => {
                    let tag = collapse(&own_text(&e));
                    if !tag.is_empty() {
                        raw.tags.push(tag);
                    }
                }
                // A summary dates at most three events; the cap bounds the
                // sibling walk in `label_before` on hostile markup.
                "relativetime" if v.name() == "span" && raw.times.len() < 8 => {
                    if let Some(iso) = v.attr("title") {
                        raw.times.push(RawTime {
                            label: label_before(&e),
                            iso: iso.trim().to_owned(),
                        });
                    }
                }
                "s-post-summary--content-excerpt" | "excerpt" if raw.excerpt.is_none() => {
                    raw.excerpt = Some(own_text(&e));
                }
                "bounty-indicator" | "s-badge__bounty" | "bounty-award" | "has-bounty" => {
                    bounties.push(e);
                }
                "community-wiki" => raw.community_wiki = true,
                "reputation-score" => {
                    reputation.get_or_insert(e);
                }
                "s-user-card--rep" => {
                    modern_rep.get_or_insert(e);
                }
                "started" | "s-user-card" => {
                    user_area.get_or_insert(e);
                }
                "user-details" | "s-user-card--info" => {
                    wiki_text |= own_text(&e).to_lowercase().contains("community wiki");
                }
                _ => {}
            }
        }
    }
    raw.community_wiki |= wiki_text;

    if !modern_stats.is_empty() {
        modern_stat_items(&modern_stats, &mut raw);
    }
    let title_link = modern_title
        .and_then(|t| own_elements(t).find(|a| a.value().name() == "a"))
        .or(hyperlink)
        .or_else(|| h3.and_then(|h| own_elements(h).find(|a| a.value().name() == "a")));
    if let Some(a) = title_link {
        raw.href = attr(&a, "href");
        raw.title = Some(own_text(&a));
    }
    if raw.votes.is_missing() {
        if let Some(v) = vote_count {
            raw.votes = own_stat(&v);
        } else if let Some(v) = votes {
            raw.votes = mini_stat(v);
        }
    }
    if let Some(st) = status {
        raw.accepted = has_class(&st, "answered-accepted");
        raw.answers = match own_elements(st).find(|e| e.value().name() == "strong") {
            Some(n) => RawStat {
                text: Some(own_text(&n)),
                title: None,
            },
            None => mini_stat(st),
        };
    }
    if let Some(v) = views {
        // The `.views` box of the wide layout carries text and title itself;
        // the narrow one nests them in `.mini-counts span`.
        raw.views = if own_elements(v).any(|e| has_class(&e, "mini-counts")) {
            mini_stat(v)
        } else {
            own_stat(&v)
        };
    }
    raw.bounty = bounties
        .iter()
        .map(|b| collapse(&own_text(b)))
        .find(|t| t.chars().any(|c| c.is_ascii_digit()));
    if let Some(rep) = reputation {
        raw.author_reputation = own_stat(&rep);
    } else if let Some(rep) = modern_rep {
        // `.s-user-card--rep` holds the number in a span with the title.
        let span = own_elements(rep)
            .skip(1)
            .find(|e| e.value().attr("title").is_some())
            .unwrap_or(rep);
        raw.author_reputation = own_stat(&span);
    }
    if let Some(area) = user_area {
        read_author(area, &mut raw);
    }
    raw
}

/// The stats items of the modern layout: votes, answers (or an Advice
/// post's replies) and views, in that order on every site and language.
/// English units confirm the slot where present; elsewhere the position
/// decides, since localized pages spell the units their own way. Items
/// without a number are labels ("Advice") or a bounty.
fn modern_stat_items(items: &[ElementRef<'_>], raw: &mut RawSummary) {
    let mut position = 0usize;
    for item in items {
        let mut number = None;
        let mut unit = String::new();
        for e in own_elements(*item).skip(1) {
            if number.is_none() && has_class(&e, "s-post-summary--stats-item-number") {
                number = Some(own_text(&e));
            } else if unit.is_empty() && has_class(&e, "s-post-summary--stats-item-unit") {
                unit = collapse(&own_text(&e)).to_lowercase();
            }
        }
        let Some(number) = number else {
            if !has_class(item, "has-bounty") {
                let label = collapse(&own_text(item));
                if !label.is_empty() {
                    raw.kind_label = Some(label);
                }
            }
            continue;
        };
        let title = attr(item, "title");
        let replies_hint =
            unit.starts_with("repl") || title.as_deref().is_some_and(|t| t.contains("repl"));
        let answers_hint = has_class(item, "has-answers") || has_class(item, "has-accepted-answer");
        let slot = if unit.starts_with("vote") {
            0
        } else if unit.starts_with("answer") || unit.starts_with("repl") || answers_hint {
            1
        } else if unit.starts_with("view") {
            2
        } else {
            position
        };
        position = slot + 1;
        let stat = RawStat {
            text: Some(number),
            title,
        };
        match slot {
            0 => raw.votes = stat,
            1 if replies_hint => raw.replies = Some(stat),
            1 => {
                raw.accepted = has_class(item, "has-accepted-answer");
                raw.answers = stat;
            }
            2 => raw.views = stat,
            _ => {}
        }
    }
}

/// A stat whose element holds the number itself, with the exact count in
/// its `title` when the page gives one.
fn own_stat(el: &ElementRef) -> RawStat {
    RawStat {
        text: Some(own_text(el)),
        title: attr(el, "title"),
    }
}

/// A `.mini-counts` stat of the narrow home-page layout: the number is the
/// text of its span, the exact count the span's title ("20050 views" for a
/// shown "20k").
fn mini_stat(container: ElementRef<'_>) -> RawStat {
    let mini = own_elements(container).find(|e| has_class(e, "mini-counts"));
    if let Some(span) =
        mini.and_then(|m| own_elements(m).skip(1).find(|e| e.value().name() == "span"))
    {
        return own_stat(&span);
    }
    RawStat {
        text: Some(own_text(&mini.unwrap_or(container))),
        title: None,
    }
}

/// The last word of the nearest non-blank text before a `relativetime`
/// span: "asked" in `asked <span …>`, or in `<a>asked</a> <span …>`.
fn label_before(span: &ElementRef) -> String {
    for node in span.prev_siblings().take(8) {
        let text = match node.value() {
            Node::Text(t) => t.to_string(),
            // A summary nested by broken markup is not this one's label.
            Node::Element(e) if is_summary(e) => break,
            Node::Element(_) => ElementRef::wrap(node)
                .map(|e| own_text(&e))
                .unwrap_or_default(),
            _ => continue,
        };
        if let Some(word) = text.split_whitespace().last() {
            return word.to_lowercase();
        }
    }
    String::new()
}

/// Compares the summaries read with the questions the list container
/// refers to, in a language-independent way: ids and links, not words.
fn layout_drift(doc: &Html, summaries: &[RawSummary]) -> Option<LayoutDrift> {
    let container = doc.select(&SEL.listing_container).next()?;
    let read: HashSet<&str> = summaries
        .iter()
        .filter_map(|s| s.question_id.as_deref())
        .map(str::trim)
        .collect();
    let mut expected: HashSet<&str> = HashSet::new();
    let mut first = None;
    for e in container.descendants().filter_map(ElementRef::wrap) {
        // One pass over the attributes: this runs on every element of the list.
        let (mut post_id, mut summary_id, mut href) = (None, None, None);
        for (name, value) in e.value().attrs() {
            match name {
                "data-post-id" => post_id = Some(value),
                "id" => summary_id = value.strip_prefix("question-summary-"),
                "href" => href = Some(value),
                _ => {}
            }
        }
        // Links count only when nothing was read: other lists (a page's
        // featured or hot questions) can sit inside the same container.
        let id = post_id
            .or(summary_id)
            .or_else(|| {
                href.filter(|_| summaries.is_empty())
                    .and_then(question_id_in_href)
            })
            .map(str::trim)
            .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()));
        let Some(id) = id else { continue };
        if first.is_none() && !read.contains(id) {
            first = Some(describe(&child_holding(container, e)));
        }
        expected.insert(id);
    }
    (expected.len() > summaries.len()).then_some(LayoutDrift {
        expected: expected.len(),
        found: summaries.len(),
        first_unrecognised: first,
    })
}

/// The question id of a link to a question on this site,
/// `/questions/123/slug`, but not `/questions/tagged/…`.
fn question_id_in_href(href: &str) -> Option<&str> {
    let rest = href.strip_prefix("/questions/")?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let id = rest.get(..end)?;
    let after = rest.get(end..).unwrap_or("");
    (!id.is_empty() && (after.is_empty() || after.starts_with(['/', '?', '#']))).then_some(id)
}

/// The child of the list container that holds `el` (or `el` itself).
fn child_holding<'a>(container: ElementRef<'a>, el: ElementRef<'a>) -> ElementRef<'a> {
    let mut top = el;
    for a in el.ancestors() {
        if a.id() == container.id() {
            break;
        }
        if let Some(e) = ElementRef::wrap(a) {
            top = e;
        }
    }
    top
}

/// `div.class1.class2`, as a log names an element.
fn describe(el: &ElementRef) -> String {
    let mut out = el.value().name().to_owned();
    // As written in the page: `classes()` does not keep the order.
    for c in el.value().attr("class").unwrap_or("").split_whitespace() {
        out.push('.');
        out.push_str(c);
    }
    out
}

fn text_of(el: &ElementRef) -> String {
    el.text().collect()
}

fn attr(el: &ElementRef, name: &str) -> Option<String> {
    el.value().attr(name).map(str::to_owned)
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
            .filter(|e| {
                e.ancestors()
                    .filter_map(ElementRef::wrap)
                    .any(|a| is_summary(a.value()))
            })
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
        for (name, nth, from, to) in [
            (
                "homepage-narrow-2018.html",
                0,
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
                "meta-homepage-2026-resaved.html",
                7,
                "</h3>",
                "</h3><div><div>",
            ),
        ] {
            let broken = survives_broken_markup(name, nth, from, to);
            assert_eq!(parse_listing(&broken), whole_page(&broken), "{name}");
        }
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
        assert_eq!(
            p.drift,
            Some(LayoutDrift {
                expected: 2,
                found: 0,
                first_unrecognised: Some("article.q-card".into())
            })
        );
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
            let depth = block_depth(&fixture(name), MAX_BLOCK_DEPTH);
            assert!((5..MAX_BLOCK_DEPTH / 4).contains(&depth), "{name}: {depth}");
        }
        assert_eq!(
            block_depth("<div><!-- <div> --><script>a<div</script></div>", 10),
            1
        );
        assert_eq!(block_depth("<DIV><Section></section><ul>", 10), 2);
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
