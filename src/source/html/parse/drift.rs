//! Noticing a layout change: the questions a list refers to against the
//! summaries read from it, in any document (see `dom`).

use std::collections::HashSet;

use super::dom::{Dom, Walk};
use super::{LayoutDrift, RawSummary};
use crate::source::html::archived::original_url;

/// Compares the summaries read with the questions the list container
/// refers to, in a language-independent way: ids and links, not words.
pub(super) fn layout_drift<'t, N: Dom<'t>>(
    container: Option<N>,
    summaries: &[RawSummary],
) -> Option<LayoutDrift> {
    let container = container?;
    let read: HashSet<&str> = summaries
        .iter()
        .filter_map(|s| s.question_id.as_deref())
        .map(str::trim)
        .collect();
    let mut expected: HashSet<&str> = HashSet::new();
    let mut first = None;
    let descendants = Walk::new(container, |_| false).filter(|n| n.is_element());
    for e in descendants {
        // One pass over the attributes: this runs on every element of the list.
        let (mut post_id, mut summary_id, mut href) = (None, None, None);
        for (name, value) in e.attrs() {
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
            first = Some(describe(child_holding(container, e)));
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
/// `/questions/123/slug`, but not `/questions/tagged/…`; a link a Wayback
/// replay rewrote into the archive is the site's link it was.
fn question_id_in_href(href: &str) -> Option<&str> {
    let original = original_url(href);
    let path = if original == href {
        href
    } else {
        let (_, after_scheme) = original.split_once("://")?;
        &after_scheme[after_scheme.find('/')?..]
    };
    let rest = path.strip_prefix("/questions/")?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let id = rest.get(..end)?;
    let after = rest.get(end..).unwrap_or("");
    (!id.is_empty() && (after.is_empty() || after.starts_with(['/', '?', '#']))).then_some(id)
}

/// The child of the list container that holds `el` (or `el` itself).
fn child_holding<'t, N: Dom<'t>>(container: N, el: N) -> N {
    let mut top = el;
    let ancestors = std::iter::successors(el.parent(), |n| n.parent());
    for a in ancestors {
        if a == container {
            break;
        }
        if a.is_element() {
            top = a;
        }
    }
    top
}

/// `div.class1.class2`, as a log names an element.
fn describe<'t, N: Dom<'t>>(el: N) -> String {
    let mut out = el.name().unwrap_or("").to_owned();
    // As written in the page: `classes()` does not keep the order.
    for c in el.attr("class").unwrap_or("").split_whitespace() {
        out.push('.');
        out.push_str(c);
    }
    out
}
