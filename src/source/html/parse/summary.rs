//! Reading one summary's fields from its own elements, whatever document
//! holds them (see `dom`): the tree of html5ever or the stream's tape.

use super::dom::{attr, is_summary, own_elements, own_text, Dom, Walk};
use super::{collapse, RawStat, RawSummary, RawTime};

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
fn shown_name<'t, N: Dom<'t>>(area: N) -> String {
    fn hidden<'t, N: Dom<'t>>(e: N) -> bool {
        is_summary(e)
            || matches!(e.name(), Some("time" | "script" | "style" | "img" | "svg"))
            || e.classes().any(|c| NOT_NAME.contains(&c))
    }
    let mut out = String::new();
    for node in Walk::new(area, hidden::<N>) {
        if let Some(t) = node.text() {
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
fn read_author<'t, N: Dom<'t>>(area: N, raw: &mut RawSummary) {
    let mut details: Option<String> = None;
    let mut linked: Option<(String, String)> = None;
    for el in own_elements(area).skip(1) {
        if linked.is_none() && el.name() == Some("a") {
            let id = el
                .attr("href")
                .and_then(profile_id)
                .or_else(|| el.attr("data-user-id").map(str::to_owned));
            if let Some(id) = id {
                let name = collapse(&own_text(el));
                if !name.is_empty() {
                    linked = Some((name, id));
                }
            }
        }
        if details.is_none()
            && el
                .classes()
                .any(|c| c == "user-details" || c == "s-user-card--link")
        {
            details = Some(shown_name(el)).filter(|n| !n.is_empty());
        }
        if el.has_class("relativetime") && raw.author_action.is_none() {
            raw.author_action = Some(label_before(el)).filter(|l| !l.is_empty());
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
pub(super) fn summary<'t, N: Dom<'t>>(el: N) -> RawSummary {
    let mut raw = RawSummary {
        question_id: attr(el, "data-post-id").or_else(|| {
            el.attr("id")
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
    // html5ever's tree hands out an element's classes sorted and without
    // repeats, and the order decides what a repeated class pushes: every
    // document is read in that order.
    let mut classes: Vec<&str> = Vec::new();

    for e in own_elements(el).skip(1) {
        let name = e.name().unwrap_or("");
        if name == "h3" {
            h3.get_or_insert(e);
        }
        classes.clear();
        classes.extend(e.classes());
        classes.sort_unstable();
        classes.dedup();
        for &class in &classes {
            match class {
                "s-post-summary--stats-item" => modern_stats.push(e),
                "s-post-summary--content-title" => {
                    modern_title.get_or_insert(e);
                }
                "question-hyperlink" if name == "a" => {
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
                "post-tag" if name == "a" => {
                    let tag = collapse(&own_text(e));
                    if !tag.is_empty() {
                        raw.tags.push(tag);
                    }
                }
                // A summary dates at most three events; the cap bounds the
                // sibling walk in `label_before` on hostile markup.
                "relativetime" if name == "span" && raw.times.len() < 8 => {
                    if let Some(iso) = e.attr("title") {
                        raw.times.push(RawTime {
                            label: label_before(e),
                            iso: iso.trim().to_owned(),
                        });
                    }
                }
                "s-post-summary--content-excerpt" | "excerpt" if raw.excerpt.is_none() => {
                    raw.excerpt = Some(own_text(e));
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
                    wiki_text |= own_text(e).to_lowercase().contains("community wiki");
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
        .and_then(|t| own_elements(t).find(|a| a.name() == Some("a")))
        .or(hyperlink)
        .or_else(|| h3.and_then(|h| own_elements(h).find(|a| a.name() == Some("a"))));
    if let Some(a) = title_link {
        raw.href = attr(a, "href");
        raw.title = Some(own_text(a));
    }
    if raw.votes.is_missing() {
        if let Some(v) = vote_count {
            raw.votes = own_stat(v);
        } else if let Some(v) = votes {
            raw.votes = mini_stat(v);
        }
    }
    if let Some(st) = status {
        raw.accepted = st.has_class("answered-accepted");
        raw.answers = match own_elements(st).find(|e| e.name() == Some("strong")) {
            Some(n) => RawStat {
                text: Some(own_text(n)),
                title: None,
            },
            None => mini_stat(st),
        };
    }
    if let Some(v) = views {
        // The `.views` box of the wide layout carries text and title itself;
        // the narrow one nests them in `.mini-counts span`.
        raw.views = if own_elements(v).any(|e| e.has_class("mini-counts")) {
            mini_stat(v)
        } else {
            own_stat(v)
        };
    }
    raw.bounty = bounties
        .iter()
        .map(|b| collapse(&own_text(*b)))
        .find(|t| t.chars().any(|c| c.is_ascii_digit()));
    if let Some(rep) = reputation {
        raw.author_reputation = own_stat(rep);
    } else if let Some(rep) = modern_rep {
        // `.s-user-card--rep` holds the number in a span with the title.
        let span = own_elements(rep)
            .skip(1)
            .find(|e| e.attr("title").is_some())
            .unwrap_or(rep);
        raw.author_reputation = own_stat(span);
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
fn modern_stat_items<'t, N: Dom<'t>>(items: &[N], raw: &mut RawSummary) {
    let mut position = 0usize;
    for &item in items {
        let mut number = None;
        let mut unit = String::new();
        for e in own_elements(item).skip(1) {
            if number.is_none() && e.has_class("s-post-summary--stats-item-number") {
                number = Some(own_text(e));
            } else if unit.is_empty() && e.has_class("s-post-summary--stats-item-unit") {
                unit = collapse(&own_text(e)).to_lowercase();
            }
        }
        let Some(number) = number else {
            if !item.has_class("has-bounty") {
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
        let answers_hint = item.has_class("has-answers") || item.has_class("has-accepted-answer");
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
                raw.accepted = item.has_class("has-accepted-answer");
                raw.answers = stat;
            }
            2 => raw.views = stat,
            _ => {}
        }
    }
}

/// A stat whose element holds the number itself, with the exact count in
/// its `title` when the page gives one.
fn own_stat<'t, N: Dom<'t>>(el: N) -> RawStat {
    RawStat {
        text: Some(own_text(el)),
        title: attr(el, "title"),
    }
}

/// A `.mini-counts` stat of the narrow home-page layout: the number is the
/// text of its span, the exact count the span's title ("20050 views" for a
/// shown "20k").
fn mini_stat<'t, N: Dom<'t>>(container: N) -> RawStat {
    let mini = own_elements(container).find(|e| e.has_class("mini-counts"));
    if let Some(span) =
        mini.and_then(|m| own_elements(m).skip(1).find(|e| e.name() == Some("span")))
    {
        return own_stat(span);
    }
    RawStat {
        text: Some(own_text(mini.unwrap_or(container))),
        title: None,
    }
}

/// The last word of the nearest non-blank text before a `relativetime`
/// span: "asked" in `asked <span …>`, or in `<a>asked</a> <span …>`.
fn label_before<'t, N: Dom<'t>>(span: N) -> String {
    let siblings = std::iter::successors(span.prev_sibling(), |n| n.prev_sibling());
    for node in siblings.take(8) {
        let text = if let Some(t) = node.text() {
            t.to_owned()
        } else if node.is_element() {
            // A summary nested by broken markup is not this one's label.
            if is_summary(node) {
                break;
            }
            own_text(node)
        } else {
            continue;
        };
        if let Some(word) = text.split_whitespace().last() {
            return word.to_lowercase();
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_ids() {
        assert_eq!(profile_id("/users/123/x").as_deref(), Some("123"));
        assert_eq!(profile_id("https://so/users/-1/c").as_deref(), Some("-1"));
        assert_eq!(profile_id("/users/x/123"), None);
    }
}
