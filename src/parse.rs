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
//! INTERFACE (relied on by the actors; keep these names and shapes):
//! - `parse_listing(html: &str) -> Result<ParsedPage, ParseError>`
//! - `ParsedPage { layout: Layout, summaries: Vec<RawSummary> }`
//! - `Layout::name(&self) -> &'static str`
//! - `ParseError::is_retryable(&self) -> bool` (truncated body: true),
//!   `ParseError::is_block(&self) -> bool` (captcha / human verification).

use std::sync::LazyLock;

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
    pub author_name: Option<String>,
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
/// fetchers parse pages concurrently from several threads.
struct Selectors {
    post_summary: Selector,
    question_summary: Selector,
    title_el: Selector,
    h1: Selector,
    body: Selector,
    // Modern layout.
    stats_item: Selector,
    stats_number: Selector,
    stats_unit: Selector,
    modern_title: Selector,
    modern_rep: Selector,
    // Older layouts.
    old_title: Selector,
    vote_count: Selector,
    mini_count: Selector,
    mini_count_span: Selector,
    votes: Selector,
    status: Selector,
    strong: Selector,
    views: Selector,
    community_wiki: Selector,
    reputation: Selector,
    user_details: Selector,
    // Shared.
    excerpt: Selector,
    post_tag: Selector,
    user_link: Selector,
    relativetime: Selector,
    bounty: Selector,
    // Page kinds.
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
    stats_item: sel(".s-post-summary--stats-item"),
    stats_number: sel(".s-post-summary--stats-item-number"),
    stats_unit: sel(".s-post-summary--stats-item-unit"),
    modern_title: sel(".s-post-summary--content-title a"),
    modern_rep: sel(".s-user-card--rep span, .s-user-card--rep"),
    old_title: sel("a.question-hyperlink, h3 a"),
    vote_count: sel(".vote-count-post"),
    mini_count: sel(".mini-counts"),
    mini_count_span: sel(".mini-counts span"),
    votes: sel(".votes"),
    status: sel(".status"),
    strong: sel("strong"),
    views: sel(".views"),
    community_wiki: sel(".community-wiki"),
    reputation: sel(".reputation-score"),
    user_details: sel(".user-details, .s-user-card--info, .started"),
    excerpt: sel(".s-post-summary--content-excerpt, .excerpt"),
    post_tag: sel("a.post-tag"),
    user_link: sel("a[href*=\"/users/\"]"),
    relativetime: sel("span.relativetime"),
    bounty: sel(".bounty-indicator, .s-badge__bounty, .bounty-award"),
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
    let doc = Html::parse_document(html);
    let s = &*SEL;

    let modern = outermost(&doc, &s.post_summary, "s-post-summary")?;
    let (layout, summaries) = if !modern.is_empty() {
        let summaries = modern.into_iter().map(modern_summary).collect();
        (Layout::PostSummary, summaries)
    } else {
        let old = outermost(&doc, &s.question_summary, "question-summary")?;
        if old.is_empty() {
            return empty_page(&doc, html);
        }
        let narrow = old.iter().any(|e| has_class(e, "narrow"));
        let layout = if narrow {
            Layout::QuestionSummaryNarrow
        } else {
            Layout::QuestionSummary
        };
        (layout, old.into_iter().map(old_summary).collect())
    };
    Ok(ParsedPage { layout, summaries })
}

/// The summaries of a page, leaving out any nested inside another: real
/// pages never nest them, and extracting each nested one would rescan its
/// container's subtree, quadratic in the nesting.
fn outermost<'a>(
    doc: &'a Html,
    selector: &Selector,
    class: &str,
) -> Result<Vec<ElementRef<'a>>, ParseError> {
    let found: Vec<ElementRef> = doc
        .select(selector)
        .filter(|e| {
            !e.ancestors()
                .filter_map(ElementRef::wrap)
                .any(|a| has_class(&a, class))
        })
        .collect();
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

fn modern_summary(el: ElementRef) -> RawSummary {
    let s = &*SEL;
    let mut raw = common_fields(&el);

    for item in el.select(&s.stats_item) {
        let number = item.select(&s.stats_number).next().map(|n| text_of(&n));
        let unit = item
            .select(&s.stats_unit)
            .next()
            .map(|u| collapse(&text_of(&u)).to_lowercase())
            .unwrap_or_default();
        let stat = RawStat {
            text: number.clone(),
            title: attr(&item, "title"),
        };
        if number.is_none() {
            let label = collapse(&text_of(&item));
            if !label.is_empty() {
                raw.kind_label = Some(label);
            }
        } else if unit.starts_with("vote") {
            raw.votes = stat;
        } else if unit.starts_with("answer") {
            raw.accepted = has_class(&item, "has-accepted-answer");
            raw.answers = stat;
        } else if unit.starts_with("repl") {
            raw.replies = Some(stat);
        } else if unit.starts_with("view") {
            raw.views = stat;
        }
    }

    raw.title = el
        .select(&s.modern_title)
        .next()
        .or_else(|| el.select(&s.old_title).next())
        .map(|a| {
            raw.href = attr(&a, "href");
            text_of(&a)
        });

    // `.s-user-card--rep` holds the number in a span; the first of the two
    // alternatives in document order is the `li`, so prefer a titled span.
    let rep = el
        .select(&s.modern_rep)
        .find(|e| e.value().attr("title").is_some())
        .or_else(|| el.select(&s.modern_rep).last());
    if let Some(rep) = rep {
        raw.author_reputation = RawStat {
            text: Some(text_of(&rep)),
            title: attr(&rep, "title"),
        };
    }
    raw
}

fn old_summary(el: ElementRef) -> RawSummary {
    let s = &*SEL;
    let mut raw = common_fields(&el);

    raw.votes = match el.select(&s.vote_count).next() {
        Some(v) => RawStat {
            text: Some(text_of(&v)),
            title: attr(&v, "title"),
        },
        None => el
            .select(&s.votes)
            .next()
            .map(|v| mini_stat(&v))
            .unwrap_or_default(),
    };

    if let Some(status) = el.select(&s.status).next() {
        raw.accepted = has_class(&status, "answered-accepted");
        raw.answers = match status.select(&s.strong).next() {
            Some(n) => RawStat {
                text: Some(text_of(&n)),
                title: None,
            },
            None => mini_stat(&status),
        };
    }

    if let Some(v) = el.select(&s.views).next() {
        // The `.views` box of the wide layout carries text and title itself;
        // the narrow one nests them in `.mini-counts span`.
        let own = RawStat {
            text: Some(text_of(&v)),
            title: attr(&v, "title"),
        };
        raw.views = if v.select(&s.mini_count).next().is_some() {
            mini_stat(&v)
        } else {
            own
        };
    }

    raw.title = el.select(&s.old_title).next().map(|a| {
        raw.href = attr(&a, "href");
        text_of(&a)
    });

    if let Some(rep) = el.select(&s.reputation).next() {
        raw.author_reputation = RawStat {
            text: Some(text_of(&rep)),
            title: attr(&rep, "title"),
        };
    }
    raw
}

/// A `.mini-counts` stat of the narrow home-page layout: the number is the
/// text of its span, the exact count the span's title ("20050 views" for a
/// shown "20k").
fn mini_stat(container: &ElementRef) -> RawStat {
    let s = &*SEL;
    if let Some(span) = container.select(&s.mini_count_span).next() {
        return RawStat {
            text: Some(text_of(&span)),
            title: attr(&span, "title"),
        };
    }
    let text = container
        .select(&s.mini_count)
        .next()
        .map_or_else(|| text_of(container), |m| text_of(&m));
    RawStat {
        text: Some(text),
        title: None,
    }
}

/// Fields spelled the same way in every generation.
fn common_fields(el: &ElementRef) -> RawSummary {
    let s = &*SEL;
    let question_id = attr(el, "data-post-id").or_else(|| {
        el.value()
            .attr("id")
            .and_then(|id| id.strip_prefix("question-summary-"))
            .map(str::to_owned)
    });
    let tags = el
        .select(&s.post_tag)
        .map(|t| collapse(&text_of(&t)))
        .filter(|t| !t.is_empty())
        .collect();
    // A summary dates at most three events; the cap bounds the sibling walk
    // in `label_before` on hostile markup.
    let times = el
        .select(&s.relativetime)
        .take(8)
        .filter_map(|span| {
            let iso = span.value().attr("title")?.trim().to_owned();
            Some(RawTime {
                label: label_before(&span),
                iso,
            })
        })
        .collect();
    let author_name = el
        .select(&s.user_link)
        .map(|a| collapse(&text_of(&a)))
        .find(|name| !name.is_empty());
    let community_wiki = el.select(&s.community_wiki).next().is_some()
        || el
            .select(&s.user_details)
            .any(|d| text_of(&d).to_lowercase().contains("community wiki"));
    let bounty = el
        .select(&s.bounty)
        .map(|b| collapse(&text_of(&b)))
        .find(|t| t.chars().any(|c| c.is_ascii_digit()));
    RawSummary {
        question_id,
        excerpt: el.select(&s.excerpt).next().map(|e| text_of(&e)),
        tags,
        author_name,
        times,
        bounty,
        community_wiki,
        ..RawSummary::default()
    }
}

/// The last word of the nearest non-blank text before a `relativetime`
/// span: "asked" in `asked <span …>`, or in `<a>asked</a> <span …>`.
fn label_before(span: &ElementRef) -> String {
    for node in span.prev_siblings().take(8) {
        let text = match node.value() {
            Node::Text(t) => t.to_string(),
            Node::Element(_) => ElementRef::wrap(node)
                .map(|e| text_of(&e))
                .unwrap_or_default(),
            _ => continue,
        };
        if let Some(word) = text.split_whitespace().last() {
            return word.to_lowercase();
        }
    }
    String::new()
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
        let nested = wrap(summary.repeat(200));
        assert_eq!(parse_listing(&nested).map(|p| p.summaries.len()), Ok(1));
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
