//! The part of a listing page that holds its question list, found by a
//! cheap scan of the raw text so that html5ever builds a tree of that part
//! alone. The head's scripts, the header, the sidebar and the footer are
//! half of a 250 KB page, none of them holds a question, and building their
//! tree was most of the cost of parsing a page.
//!
//! The region is the list container's `div` from its start tag to the end
//! tag that balances it. Parsed inside a bare `<body>`, it gives the same
//! subtree as in the whole page: the container's ancestors on real pages
//! are plain `div`s, which no end tag inside a balanced region can reach.
//! Whenever the scan cannot vouch for that (no container, a container that
//! never closes, a summary class anywhere outside the region), the caller
//! parses the whole page, so odd markup costs time, never questions.

use std::ops::Range;

/// The ids `SEL.listing_container` looks for, in the same roles.
pub(super) const CONTAINER_IDS: [&str; 3] = ["questions", "question-mini-list", "qlist-wrapper"];

/// The classes of a summary element (see `is_summary`).
const SUMMARY_CLASSES: [&str; 2] = ["s-post-summary", "question-summary"];

/// Elements whose content the tokenizer reads as text (scripting is on, so
/// `noscript` too): a `<div` inside them is not markup.
const RAW_TEXT: [&str; 9] = [
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
];

/// The byte range of the list container, or `None` when the page must be
/// parsed whole.
pub(super) fn list_region(html: &str) -> Option<Range<usize>> {
    let mut tags = Tags { html, pos: 0 };
    // The first element carrying one of the ids is the one the whole-page
    // parse would take as the container; it must be a `div` to be balanced.
    let container =
        tags.find(|t| !t.closing && t.id.is_some_and(|id| CONTAINER_IDS.contains(&id)))?;
    if !container.name.eq_ignore_ascii_case("div") {
        return None;
    }
    let mut depth = 1usize;
    let end = tags.find_map(|t| {
        if !t.name.eq_ignore_ascii_case("div") {
            return None;
        }
        if t.closing {
            depth -= 1;
        } else {
            depth += 1;
        }
        (depth == 0).then_some(t.end)
    })?;
    let region = container.start..end;
    let outside = [html.get(..region.start)?, html.get(region.end..)?];
    (!outside.iter().any(|text| mentions_summary_class(text))).then_some(region)
}

/// A document of the region alone, under the page's own doctype so that
/// the tree builder runs in the same (quirks or standards) mode.
pub(super) fn region_document(html: &str, region: Range<usize>) -> String {
    let list = html.get(region).unwrap_or("");
    let doctype = doctype(html);
    let mut doc = String::with_capacity(doctype.len() + list.len() + 40);
    doc.push_str(doctype);
    doc.push_str("<html><body>");
    doc.push_str(list);
    doc.push_str("</body></html>");
    doc
}

/// The leading `<!DOCTYPE …>`, after any whitespace and comments (saved
/// pages often start with a "saved from" comment); empty when there is none.
fn doctype(html: &str) -> &str {
    let mut rest = html.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n', '\u{c}']);
    while let Some(comment) = rest.strip_prefix("<!--") {
        let Some(end) = comment.find("-->") else {
            return "";
        };
        rest = comment
            .get(end + 3..)
            .unwrap_or("")
            .trim_start_matches([' ', '\t', '\r', '\n', '\u{c}']);
    }
    let is_doctype = rest
        .get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("<!doctype"));
    match rest.find('>') {
        Some(end) if is_doctype => rest.get(..=end).unwrap_or(""),
        _ => "",
    }
}

/// Whether `text` holds a summary class as a whole token anywhere (in
/// markup, script or prose alike: a false alarm only costs a full parse).
/// Both classes end in `-summary`: one vectorised search for that serves
/// both, over the half of the page outside the list.
fn mentions_summary_class(text: &str) -> bool {
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let bytes = text.as_bytes();
    memchr::memmem::find_iter(bytes, b"-summary").any(|hit| {
        let after = bytes.get(hit + "-summary".len()).copied();
        SUMMARY_CLASSES.iter().any(|class| {
            let head = class.len() - "-summary".len();
            let Some(at) = hit.checked_sub(head) else {
                return false;
            };
            let before = at.checked_sub(1).map(|i| bytes[i]);
            bytes.get(at..hit) == Some(&class.as_bytes()[..head])
                && !before.is_some_and(is_name)
                && !after.is_some_and(is_name)
        })
    })
}

/// A start or end tag as the tokenizer would see it.
struct Tag<'a> {
    /// Offset of the `<`.
    start: usize,
    /// Offset just past the `>`.
    end: usize,
    closing: bool,
    name: &'a str,
    /// The value of its `id` attribute, as written.
    id: Option<&'a str>,
}

/// The tags of a page in order, skipping comments, doctypes and the text of
/// raw-text elements, with attribute values quoted as the tokenizer quotes
/// them (a `>` inside `title="a > b"` does not end the tag).
struct Tags<'a> {
    html: &'a str,
    pos: usize,
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        let bytes = self.html.as_bytes();
        loop {
            let start = self.pos + self.html.get(self.pos..)?.find('<')?;
            let after = bytes.get(start + 1..)?;
            if after.starts_with(b"!--") {
                self.pos = find(self.html, start + 4, "-->").map_or(bytes.len(), |e| e + 3);
                continue;
            }
            let closing = after.first() == Some(&b'/');
            let name_start = start + 1 + usize::from(closing);
            if !bytes.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
                // `<!DOCTYPE …>`, `<?…>` and `</ …>` end at the next `>`;
                // any other `<` is text.
                let bogus = matches!(after.first(), Some(b'!' | b'?')) || closing;
                self.pos = if bogus {
                    find_char(self.html, start + 1, '>').map_or(bytes.len(), |e| e + 1)
                } else {
                    start + 1
                };
                continue;
            }
            let name_end = name_start
                + bytes[name_start..]
                    .iter()
                    .take_while(|b| !b.is_ascii_whitespace() && !matches!(b, b'/' | b'>'))
                    .count();
            let (end, id) = read_attributes(self.html, name_end)?;
            let name = self.html.get(name_start..name_end)?;
            self.pos = end;
            if !closing && is_raw_text(name) {
                self.pos = raw_text_end(self.html, end, name);
            }
            return Some(Tag {
                start,
                end,
                closing,
                name,
                id,
            });
        }
    }
}

fn is_raw_text(name: &str) -> bool {
    // Most tags are `div`, `span` and `a`: the length rules them out first.
    (3..=8).contains(&name.len()) && RAW_TEXT.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// Reads a tag's attributes from `i` (just past its name) to its `>`, as
/// the tokenizer does: the offset past the `>` and the `id` value, if any.
/// Quotes count only where a value starts (`title="a > b"` is one value).
fn read_attributes(html: &str, mut i: usize) -> Option<(usize, Option<&str>)> {
    let b = html.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let mut id = None;
    loop {
        while at(i)?.is_ascii_whitespace() || at(i)? == b'/' {
            i += 1;
        }
        if at(i)? == b'>' {
            return Some((i + 1, id));
        }
        let name_start = i;
        // A name may start with `=`; it ends at a space, `/`, `>` or `=`.
        i += 1;
        while !at(i)?.is_ascii_whitespace() && !matches!(at(i)?, b'/' | b'>' | b'=') {
            i += 1;
        }
        let name = html.get(name_start..i)?;
        while at(i)?.is_ascii_whitespace() {
            i += 1;
        }
        if at(i)? != b'=' {
            continue;
        }
        i += 1;
        while at(i)?.is_ascii_whitespace() {
            i += 1;
        }
        let value = match at(i)? {
            b'>' => continue,
            q @ (b'"' | b'\'') => {
                let end = find_char(html, i + 1, char::from(q))?;
                let value = html.get(i + 1..end)?;
                i = end + 1;
                value
            }
            _ => {
                let start = i;
                while !at(i)?.is_ascii_whitespace() && at(i)? != b'>' {
                    i += 1;
                }
                html.get(start..i)?
            }
        };
        if name.eq_ignore_ascii_case("id") {
            id.get_or_insert(value);
        }
    }
}

/// Where the text of a raw-text element opened before `from` ends: at its
/// end tag, or at the end of the page when it never closes.
fn raw_text_end(html: &str, from: usize, name: &str) -> usize {
    let bytes = html.as_bytes();
    let mut i = from;
    while let Some(lt) = find(html, i, "</") {
        let after = lt + 2 + name.len();
        let named = bytes
            .get(lt + 2..after)
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()));
        let ends = bytes
            .get(after)
            .is_none_or(|b| b.is_ascii_whitespace() || matches!(b, b'/' | b'>'));
        if named && ends {
            return lt;
        }
        i = lt + 2;
    }
    bytes.len()
}

/// The offset of `needle` in `html` at or after `from` (always the offset
/// of an ASCII character, so a character boundary).
fn find(html: &str, from: usize, needle: &str) -> Option<usize> {
    html.get(from..)?.find(needle).map(|p| from + p)
}

/// [`find`] for one character: a memchr, where a one-character `&str`
/// would be a TwoWay search (a quarter of the scan's time on real pages).
fn find_char(html: &str, from: usize, needle: char) -> Option<usize> {
    html.get(from..)?.find(needle).map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region_text(html: &str) -> Option<&str> {
        list_region(html).and_then(|r| html.get(r))
    }

    #[test]
    fn the_region_is_the_balanced_container() {
        let page = "<!DOCTYPE html><html><head><title>t</title></head><body>\
            <div id=\"mainbar\"><div id=\"questions\" class=\"flush-left\">\
            <div class=\"s-post-summary\" title=\"a > b\"><!-- </div> -->\
            <script>if (a</div>) {}</script></div></div>\
            <div id=\"sidebar\"></div></div></body></html>";
        assert_eq!(
            region_text(page),
            Some(
                "<div id=\"questions\" class=\"flush-left\">\
                 <div class=\"s-post-summary\" title=\"a > b\"><!-- </div> -->\
                 <script>if (a</div>) {}</script></div></div>"
            )
        );
    }

    #[test]
    fn no_region_when_the_scan_cannot_vouch_for_it() {
        // No container.
        assert_eq!(list_region("<div class=\"s-post-summary\"></div>"), None);
        // A container that never closes.
        assert_eq!(list_region("<div id='questions'><div></div>"), None);
        // A container that is not a div, before one that is.
        assert_eq!(
            list_region("<ul id=\"questions\"></ul><div id=\"questions\"></div>"),
            None
        );
        // A summary outside the container, before or after it.
        let after = "<div id=\"questions\"></div><div class=\"question-summary narrow\">";
        assert_eq!(list_region(after), None);
        let before = "<div class='x s-post-summary'></div><div id=\"qlist-wrapper\"></div>";
        assert_eq!(list_region(before), None);
        // An id that merely contains the name is no container.
        assert_eq!(list_region("<div data-id=\"questions\"></div>"), None);
    }

    #[test]
    fn summary_ids_and_longer_classes_are_not_summary_classes() {
        assert!(!mentions_summary_class(
            "<div id=\"question-summary-12\" class=\"s-post-summary--stats\">"
        ));
        assert!(mentions_summary_class("<div class=\"question-summary\">"));
        assert!(mentions_summary_class(".s-post-summary{color:red}"));
        assert!(mentions_summary_class("s-post-summary"));
        assert!(!mentions_summary_class("-summary summary x-post-summary"));
        assert!(!mentions_summary_class(
            "<p class=\"big-question-summary\">"
        ));
    }

    #[test]
    fn the_region_document_keeps_the_doctype() {
        let page = "\u{feff}<!-- saved from url=(0014)about:internet -->\n\
            <!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\">\
            <html><body><div id=\"questions\">q</div></body></html>";
        let region = list_region(page).expect("region");
        assert_eq!(
            region_document(page, region),
            "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\">\
             <html><body><div id=\"questions\">q</div></body></html>"
        );
        assert_eq!(doctype("<html><!DOCTYPE html>"), "");
    }
}
