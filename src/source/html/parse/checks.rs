//! Checks of the raw text before any parse: a body that is empty, binary,
//! cut off or nested absurdly deep costs a scan, not a tree.

use super::{ParseError, MAX_BLOCK_DEPTH};

pub(super) fn check_text(html: &str) -> Result<(), ParseError> {
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

pub(super) fn check_depth(html: &str) -> Result<(), ParseError> {
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
pub(super) fn block_depth(html: &str, limit: usize) -> usize {
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
pub(super) fn check_complete(html: &str) -> Result<(), ParseError> {
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
