//! Pure cleaning: a `ParsedPage` of raw strings in, typed `Question`s and
//! counted `Rejection`s out. No actix, no I/O.
//!
//! Exact figures win over abbreviated ones: a stat's `title` ("1,605,109
//! views") is preferred to its visible text ("1.6m"), and `views_exact`
//! records which one a record got. A summary whose id, title or counts cannot
//! be read is rejected with a reason rather than recorded with a made-up
//! number.
//!
//! INTERFACE (relied on by the actors; keep these names and shapes):
//! - `clean_page(page: &ParsedPage, ctx: &PageContext, fetched_at: DateTime<Utc>) -> Listing`
//!   (`model::Listing`, the shape the API reader returns too)

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::model::{
    AuthorAction, Listing, PageContext, PostKind, Question, QuestionStatus, Rejection,
};
use crate::source::html::parse::{collapse, ParsedPage, RawStat, RawSummary};

pub fn clean_page(page: &ParsedPage, ctx: &PageContext, fetched_at: DateTime<Utc>) -> Listing {
    let mut out = Listing {
        layout: page.layout.name(),
        layout_drift: page.drift.as_ref().map(ToString::to_string),
        ..Listing::default()
    };
    for raw in &page.summaries {
        match clean_summary(raw, ctx, fetched_at) {
            Ok(q) => out.questions.push(q),
            Err(reason) => out.rejections.push(Rejection {
                question_id: raw.question_id.clone(),
                reason,
            }),
        }
    }
    out
}

/// Types one summary, or says why it cannot be trusted.
pub fn clean_summary(
    raw: &RawSummary,
    ctx: &PageContext,
    fetched_at: DateTime<Utc>,
) -> Result<Question, String> {
    let question_id = raw
        .question_id
        .as_deref()
        .and_then(|id| id.trim().parse::<u64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("bad question id {}", brief(&raw.question_id)))?;

    let full_title = raw.title.as_deref().map(collapse).unwrap_or_default();
    let (title, status) = split_status(&full_title);
    if title.is_empty() {
        return Err("missing title".into());
    }

    let votes = stat_value(&raw.votes)
        .map(|(v, _)| v)
        .ok_or_else(|| format!("unreadable votes {}", brief(&raw.votes)))?;

    let advice = raw.replies.is_some()
        || raw
            .kind_label
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case("advice"));
    let (answers, replies) = match &raw.replies {
        Some(r) if raw.answers.is_missing() => {
            let n = stat_count(r).ok_or_else(|| format!("unreadable replies {}", brief(r)))?;
            (0, Some(n))
        }
        _ => {
            let n = stat_count(&raw.answers)
                .ok_or_else(|| format!("unreadable answers {}", brief(&raw.answers)))?;
            (n, None)
        }
    };

    let (views, views_exact) = stat_value(&raw.views)
        .and_then(|(v, exact)| Some((u64::try_from(v).ok()?, exact)))
        .ok_or_else(|| format!("unreadable views {}", brief(&raw.views)))?;

    // The name as shown, community wiki or not; a reputation only with a
    // name (a community-wiki post shows none of its own).
    let author_name = raw
        .author_name
        .as_deref()
        .map(collapse)
        .filter(|n| !n.is_empty());
    let author_reputation = author_name
        .as_ref()
        .filter(|_| !raw.community_wiki)
        .and_then(|_| stat_value(&raw.author_reputation))
        .and_then(|(v, _)| u64::try_from(v).ok());
    let author_has_profile = author_name.is_some() && raw.author_linked;
    let author_user_id = raw
        .author_user_id
        .as_deref()
        .filter(|_| author_has_profile)
        .and_then(|id| id.trim().parse::<i64>().ok());
    let author_action = author_name
        .as_ref()
        .and(raw.author_action.as_deref())
        .and_then(action_of);

    let mut asked_at = None;
    let mut modified_at = None;
    let mut answered_at = None;
    for t in &raw.times {
        let Some(at) = parse_iso(&t.iso) else {
            continue;
        };
        let slot = match action_of(&t.label) {
            Some(AuthorAction::Asked) => &mut asked_at,
            Some(AuthorAction::Modified) => &mut modified_at,
            Some(AuthorAction::Answered) => &mut answered_at,
            None => continue,
        };
        slot.get_or_insert(at);
    }

    let bounty = raw
        .bounty
        .as_deref()
        .and_then(decode_count)
        .and_then(|(v, _)| u32::try_from(v).ok())
        .filter(|b| *b > 0);

    Ok(Question {
        site: ctx.site.clone(),
        question_id,
        url: absolute_url(&ctx.base_url, raw.href.as_deref(), question_id),
        title: title.to_owned(),
        excerpt: raw.excerpt.as_deref().map(collapse).unwrap_or_default(),
        votes,
        answers,
        replies,
        views,
        views_exact,
        tags: raw
            .tags
            .iter()
            .map(|t| collapse(t))
            .filter(|t| !t.is_empty())
            .collect(),
        has_accepted_answer: raw.accepted,
        author_name,
        author_reputation,
        asked_at,
        modified_at,
        answered_at,
        bounty,
        status,
        post_kind: if advice {
            PostKind::Advice
        } else {
            PostKind::Question
        },
        community_wiki: raw.community_wiki,
        tag: ctx.tag.clone(),
        tab: ctx.tab.clone(),
        page: ctx.page,
        fetched_at,
        author_user_id,
        author_has_profile,
        author_action,
    })
}

/// The event a listing's word before a time names, in the languages of the
/// Stack Exchange sites: English, Russian, Portuguese, Spanish, Japanese.
/// Stems, matched anywhere in the word, so inflections ("задан",
/// "задано"; "perguntada", "perguntado") and glued CJK labels all count.
pub fn action_of(label: &str) -> Option<AuthorAction> {
    const STEMS: [(&str, AuthorAction); 17] = [
        ("ask", AuthorAction::Asked),
        ("задан", AuthorAction::Asked),
        ("pergunt", AuthorAction::Asked),
        ("pregunt", AuthorAction::Asked),
        ("質問", AuthorAction::Asked),
        ("answer", AuthorAction::Answered),
        ("ответ", AuthorAction::Answered),
        ("respond", AuthorAction::Answered),
        ("contest", AuthorAction::Answered),
        ("回答", AuthorAction::Answered),
        ("modif", AuthorAction::Modified),
        ("edit", AuthorAction::Modified),
        ("active", AuthorAction::Modified),
        ("измен", AuthorAction::Modified),
        ("редакт", AuthorAction::Modified),
        ("更新", AuthorAction::Modified),
        ("編集", AuthorAction::Modified),
    ];
    let word = label.trim().to_lowercase();
    if word.is_empty() {
        return None;
    }
    STEMS
        .iter()
        .find(|(stem, _)| word.contains(stem))
        .map(|(_, action)| *action)
}

/// A raw value for a rejection reason, cut short: the reason is logged and
/// stored, and a hostile page could make the raw text megabytes long.
fn brief(value: &impl std::fmt::Debug) -> String {
    const MAX: usize = 120;
    let mut text = format!("{value:?}");
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// The value of a stat and whether it is exact: the number in its `title`
/// if it has one, else its visible text decoded.
pub fn stat_value(stat: &RawStat) -> Option<(i64, bool)> {
    if let Some(n) = stat.title.as_deref().and_then(exact_number) {
        return Some((n, true));
    }
    stat.text.as_deref().and_then(decode_count)
}

fn stat_count(stat: &RawStat) -> Option<u64> {
    stat_value(stat).and_then(|(v, _)| u64::try_from(v).ok())
}

/// The first integer written out in full in a `title` such as "Score of -5",
/// "2,293,587 views", "reputation score 11,102" or, on localized sites,
/// "1 234 просмотра" and "1.234 visualizações": a separator counts as a
/// thousands separator only between groups of three digits. `None` when
/// the title has no digits ("reputation score ", "# replies").
pub fn exact_number(title: &str) -> Option<i64> {
    let start = title.find(|c: char| c.is_ascii_digit())?;
    let before = title.get(..start).unwrap_or("");
    let negative = before.ends_with('-') || before.ends_with('\u{2212}');
    let rest = title.get(start..).unwrap_or("");
    let mut digits = String::new();
    for (i, c) in rest.char_indices() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if is_group_separator(c) && three_digits_follow(rest.get(i + c.len_utf8()..)) {
            continue;
        } else {
            break;
        }
    }
    signed(negative, digits.parse().ok()?)
}

/// Thousands separators of the sites' languages: `,` (English), `.`
/// (Portuguese, Spanish), spaces (Russian, often no-break), `'`.
fn is_group_separator(c: char) -> bool {
    matches!(c, ',' | '.' | '\'' | ' ' | '\u{a0}' | '\u{202f}')
}

/// Exactly three digits, then no further digit: the group after a
/// thousands separator.
fn three_digits_follow(rest: Option<&str>) -> bool {
    let b = rest.unwrap_or("").as_bytes();
    b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && !b.get(3).is_some_and(u8::is_ascii_digit)
}

/// Applies a sign to a magnitude, reaching `i64::MIN` but refusing anything
/// that does not fit.
fn signed(negative: bool, magnitude: u64) -> Option<i64> {
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Decodes a count as Stack Exchange sites display it: "12", "1,234",
/// "1 234", "-5", "+50", "1k", "14k", "3.1m", "1.2b", and localized
/// abbreviations ("1,2 тыс.", "3 млн", "1,5 mil", "1.2万"), with any
/// surrounding whitespace or a trailing unit word ("2.3m views",
/// "5 ответов"). The flag is false when an abbreviation made the figure
/// approximate. `None` for anything else, including values that do not fit
/// an `i64`; never panics.
pub fn decode_count(text: &str) -> Option<(i64, bool)> {
    let s = text.trim();
    let (negative, s) =
        if let Some(rest) = s.strip_prefix('-').or_else(|| s.strip_prefix('\u{2212}')) {
            (true, rest)
        } else {
            (false, s.strip_prefix('+').unwrap_or(s))
        };
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || is_group_separator(*c)))
        .map_or(s.len(), |(i, _)| i);
    let number = s
        .get(..end)
        .unwrap_or("")
        .trim_end_matches(is_group_separator);
    let word: String = s
        .get(number.len()..)
        .unwrap_or("")
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphabetic())
        .take(8)
        .collect();
    let multiplier = abbreviation(&word.to_lowercase());
    if number.is_empty() || !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }

    let value = if multiplier == 1 {
        // Whole numbers: every separator must split off a group of three.
        let mut groups = number.split(is_group_separator);
        let first = groups.next()?;
        let mut digits = first.to_owned();
        for g in groups {
            if g.len() != 3 || !g.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.push_str(g);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok()?
    } else {
        // Abbreviated: one decimal separator, `.` or `,` by language.
        let (int_part, frac_part) = match number.split_once(['.', ',']) {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if int_part.is_empty()
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let int: u64 = int_part.parse().ok()?;
        let mut value = int.checked_mul(multiplier)?;
        // Fractions are summed digit by digit in integers: "3.1m" must be
        // 3_100_000 exactly, which floating point does not promise.
        let mut place = multiplier;
        for d in frac_part.chars() {
            place /= 10;
            if place == 0 {
                break;
            }
            let digit = u64::from(d.to_digit(10)?);
            value = value.checked_add(digit.checked_mul(place)?)?;
        }
        value
    };
    Some((signed(negative, value)?, multiplier == 1))
}

/// The factor of an abbreviation after a number, or 1 for none (a unit
/// word such as "views" or "ответов").
fn abbreviation(word: &str) -> u64 {
    match word {
        "k" | "тыс" | "mil" | "千" => 1_000,
        "万" => 10_000,
        "m" | "млн" | "mi" | "mio" => 1_000_000,
        "億" => 100_000_000,
        "b" | "млрд" | "bi" => 1_000_000_000,
        _ => 1,
    }
}

/// Timestamps in `relativetime` titles (`2025-11-17 03:46:46Z`) and
/// `datetime` attributes (`2015-05-01T02:25:16`), all UTC.
pub fn parse_iso(iso: &str) -> Option<DateTime<Utc>> {
    let s = iso.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%SZ")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .map(|t| t.and_utc())
}

const STATUS_SUFFIXES: [(&str, QuestionStatus); 5] = [
    ("[closed]", QuestionStatus::Closed),
    ("[on hold]", QuestionStatus::OnHold),
    ("[duplicate]", QuestionStatus::Duplicate),
    ("[migrated]", QuestionStatus::Migrated),
    ("[deleted]", QuestionStatus::Deleted),
];

/// Removes the `[closed]`-style suffixes Stack Overflow appends to titles.
/// With several (`[duplicate] [closed]`), the most specific one is kept.
pub fn split_status(title: &str) -> (&str, QuestionStatus) {
    let mut rest = title.trim();
    let mut status = QuestionStatus::Open;
    'strip: loop {
        for (suffix, s) in STATUS_SUFFIXES {
            let Some(cut) = rest.len().checked_sub(suffix.len()) else {
                continue;
            };
            let matched = rest
                .get(cut..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix));
            if matched {
                rest = rest.get(..cut).unwrap_or("").trim_end();
                if rank(s) > rank(status) {
                    status = s;
                }
                continue 'strip;
            }
        }
        break;
    }
    (rest, status)
}

fn rank(s: QuestionStatus) -> u8 {
    match s {
        QuestionStatus::Open => 0,
        QuestionStatus::OnHold => 1,
        QuestionStatus::Closed => 2,
        QuestionStatus::Migrated => 3,
        QuestionStatus::Duplicate => 4,
        QuestionStatus::Deleted => 5,
    }
}

/// Joins a question link to the site's base URL. A summary without a link
/// still has its id, and `/questions/{id}` is where Stack Exchange serves it.
/// A link an archive rewrote is the original site's.
pub fn absolute_url(base: &str, href: Option<&str>, question_id: u64) -> String {
    let base = base.trim().trim_end_matches('/');
    let href = href
        .map(|h| super::archived::original_url(h).trim())
        .filter(|h| !h.is_empty());
    match href {
        Some(h) if h.starts_with("http://") || h.starts_with("https://") => h.to_owned(),
        Some(h) if h.starts_with("//") => {
            let scheme = base.split_once("://").map_or("https", |(s, _)| s);
            format!("{scheme}:{h}")
        }
        Some(h) => {
            // Saved copies rewrite links as "../questions/…"; the site path
            // is what matters.
            let mut path = h;
            while let Some(p) = path.strip_prefix("../").or_else(|| path.strip_prefix("./")) {
                path = p;
            }
            format!("{base}/{}", path.trim_start_matches('/'))
        }
        None => format!("{base}/questions/{question_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::html::parse::parse_listing;
    use chrono::TimeZone;

    fn ctx() -> PageContext {
        PageContext {
            site: "stackoverflow.com".into(),
            base_url: "https://stackoverflow.com".into(),
            tag: "python".into(),
            tab: "Newest".into(),
            page: 1,
        }
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<DateTime<Utc>> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single()
    }

    fn fetched() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    fn cleaned(name: &str) -> Listing {
        cleaned_edited(name, "", "")
    }

    /// A fixture page with its first `from` replaced by `to`, read.
    fn cleaned_edited(name: &str, from: &str, to: &str) -> Listing {
        let path = format!(
            "{}/tests/fixtures/so-html/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut html = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        if !from.is_empty() {
            assert!(html.contains(from), "{name}: no {from:?}");
            html = html.replacen(from, to, 1);
        }
        let page = parse_listing(&html).unwrap_or_else(|e| panic!("{name}: {e}"));
        clean_page(&page, &ctx(), fetched())
    }

    /// A user without a profile link, as deleted and anonymous users and
    /// revision-only community-wiki posts are shown, in every layout: the
    /// name as shown, no profile, no id.
    #[test]
    fn authors_without_a_profile_keep_the_name_the_page_shows() {
        let cases = [
            (
                "tagged-python-newest-2013.html",
                19524072,
                "<a href=\"/users/2147331/jack\">Jack</a>",
                "user2147331",
                "user2147331",
                Some(AuthorAction::Asked),
            ),
            (
                "homepage-narrow-2018.html",
                52418095,
                "<a href=\"/users/560299/ibu\">Ibu</a>",
                "anon",
                "anon",
                Some(AuthorAction::Modified),
            ),
            (
                "tagged-python-newest-2025.html",
                79821892,
                "<a href=\"/users/20197103/john-doe\" class=\"flex--item\"><span itemprop=\"name\">John Doe</span></a>",
                "<span itemprop=\"name\">user20197103</span>",
                "user20197103",
                Some(AuthorAction::Asked),
            ),
            (
                "tagged-python-votes-2020.html",
                394809,
                "<a href=\"/users/51518\">Devoted</a>",
                "",
                "20 revs, 16 users 43%",
                None,
            ),
        ];
        for (name, id, from, to, shown, action) in cases {
            let page = cleaned_edited(name, from, to);
            let q = find(&page, id);
            assert_eq!(q.author_name.as_deref(), Some(shown), "{name}");
            assert!(!q.author_has_profile, "{name}");
            assert_eq!(q.author_user_id, None, "{name}");
            assert_eq!(q.author_action, action, "{name}");
        }
        // The same summaries with their links, for contrast.
        let q = find(&cleaned("tagged-python-newest-2025.html"), 79821892).clone();
        assert_eq!(
            (
                q.author_name.as_deref(),
                q.author_user_id,
                q.author_has_profile
            ),
            (Some("John Doe"), Some(20197103), true)
        );
    }

    /// A localized modern summary (the markup of ru.stackoverflow.com,
    /// with its own words and number format): nothing English is needed.
    #[test]
    fn a_localized_summary_reads_without_english_words() {
        let html = "<html><body><div id=\"mainbar\"><div id=\"questions\">\
            <div id=\"question-summary-1501\" class=\"s-post-summary js-post-summary\" data-post-id=\"1501\">\
            <div class=\"s-post-summary--stats\">\
            <div class=\"s-post-summary--stats-item s-post-summary--stats-item__emphasized\" title=\"Оценка: -2\">\
              <span class=\"s-post-summary--stats-item-number\">-2</span><span class=\"s-post-summary--stats-item-unit\">голоса</span></div>\
            <div class=\"s-post-summary--stats-item has-answers has-accepted-answer\" title=\"3 ответа\">\
              <span class=\"s-post-summary--stats-item-number\">3</span><span class=\"s-post-summary--stats-item-unit\">ответа</span></div>\
            <div class=\"s-post-summary--stats-item\" title=\"12\u{a0}345 показов\">\
              <span class=\"s-post-summary--stats-item-number\">12 тыс.</span><span class=\"s-post-summary--stats-item-unit\">показов</span></div>\
            </div><div class=\"s-post-summary--content\">\
            <h3 class=\"s-post-summary--content-title\"><a href=\"/questions/1501/как\" class=\"s-link\">Как прочитать файл?</a></h3>\
            <div class=\"s-post-summary--meta\"><div class=\"s-post-summary--meta-tags tags\">\
              <a href=\"/questions/tagged/python\" class=\"post-tag\">python</a><a href=\"/questions/tagged/файлы\" class=\"post-tag\">файлы</a></div>\
            <div class=\"s-user-card s-user-card__minimal\"><div class=\"s-user-card--info\">\
              <div class=\"s-user-card--link d-flex gs4\"><a href=\"/users/77/иван\">Иван</a></div>\
              <ul class=\"s-user-card--awards\"><li class=\"s-user-card--rep\"><span title=\"репутация 1\u{a0}024\">1 024</span></li></ul></div>\
            <time class=\"s-user-card--time\">задан <span title=\"2024-05-06 07:08:09Z\" class=\"relativetime\">вчера</span></time></div>\
            </div></div></div></div></div></body></html>";
        let page = parse_listing(html).expect("listing");
        assert_eq!(page.drift, None);
        let listing = clean_page(&page, &ctx(), fetched());
        assert_eq!(listing.rejections, []);
        let q = &listing.questions[0];
        assert_eq!(q.question_id, 1501);
        assert_eq!(q.title, "Как прочитать файл?");
        assert_eq!(
            (q.votes, q.answers, q.views, q.views_exact),
            (-2, 3, 12_345, true)
        );
        assert!(q.has_accepted_answer);
        assert_eq!(q.tags, ["python", "файлы"]);
        assert_eq!(q.author_name.as_deref(), Some("Иван"));
        assert_eq!(
            (q.author_user_id, q.author_reputation),
            (Some(77), Some(1024))
        );
        assert_eq!(q.author_action, Some(AuthorAction::Asked));
        assert_eq!(q.asked_at, at(2024, 5, 6, 7, 8, 9));
        assert_eq!(q.url, "https://stackoverflow.com/questions/1501/как");
    }

    #[test]
    fn action_words_of_every_language() {
        for (label, action) in [
            ("asked", Some(AuthorAction::Asked)),
            ("Answered", Some(AuthorAction::Answered)),
            ("modified", Some(AuthorAction::Modified)),
            ("edited", Some(AuthorAction::Modified)),
            ("задан", Some(AuthorAction::Asked)),
            ("изменён", Some(AuthorAction::Modified)),
            ("ответил", Some(AuthorAction::Answered)),
            ("perguntada", Some(AuthorAction::Asked)),
            ("respondida", Some(AuthorAction::Answered)),
            ("preguntado", Some(AuthorAction::Asked)),
            ("modificada", Some(AuthorAction::Modified)),
            ("質問日時", Some(AuthorAction::Asked)),
            ("回答", Some(AuthorAction::Answered)),
            ("更新", Some(AuthorAction::Modified)),
            ("", None),
            ("views", None),
        ] {
            assert_eq!(action_of(label), action, "{label}");
        }
    }

    fn find(page: &Listing, id: u64) -> &Question {
        page.questions
            .iter()
            .find(|q| q.question_id == id)
            .unwrap_or_else(|| panic!("question {id} missing"))
    }

    #[test]
    fn decode_count_cases() {
        assert_eq!(decode_count("12"), Some((12, true)));
        assert_eq!(decode_count("  \n 12\n  "), Some((12, true)));
        assert_eq!(decode_count("1,234"), Some((1234, true)));
        assert_eq!(decode_count("-5"), Some((-5, true)));
        assert_eq!(decode_count("+50"), Some((50, true)));
        assert_eq!(decode_count("1k"), Some((1000, false)));
        assert_eq!(decode_count("1.5k"), Some((1500, false)));
        assert_eq!(decode_count("14k"), Some((14_000, false)));
        assert_eq!(decode_count("3.1m"), Some((3_100_000, false)));
        assert_eq!(decode_count("1.6m"), Some((1_600_000, false)));
        assert_eq!(decode_count("2.3m views"), Some((2_300_000, false)));
        assert_eq!(decode_count("0answers"), Some((0, true)));
        assert_eq!(decode_count(""), None);
        assert_eq!(decode_count("k"), None);
        assert_eq!(decode_count("-"), None);
        assert_eq!(decode_count("1.5"), None);
        assert_eq!(decode_count("abc"), None);
        assert_eq!(decode_count("99999999999999999999"), None);
        assert_eq!(decode_count("9999999999999999b"), None);
        assert_eq!(decode_count("-9223372036854775808"), Some((i64::MIN, true)));
        assert_eq!(decode_count("9223372036854775808"), None);
        assert_eq!(decode_count("12,34"), None);
        assert_eq!(decode_count("−7"), Some((-7, true)));
        // Localized pages.
        assert_eq!(decode_count("1 234"), Some((1234, true)));
        assert_eq!(decode_count("1\u{a0}234 просмотра"), Some((1234, true)));
        assert_eq!(decode_count("1.234"), Some((1234, true)));
        assert_eq!(decode_count("5 ответов"), Some((5, true)));
        assert_eq!(decode_count("1,2 тыс."), Some((1200, false)));
        assert_eq!(decode_count("3 млн"), Some((3_000_000, false)));
        assert_eq!(decode_count("1,5 mil"), Some((1500, false)));
        assert_eq!(decode_count("2,5 mi"), Some((2_500_000, false)));
        assert_eq!(decode_count("1.2万"), Some((12_000, false)));
        assert_eq!(decode_count("12回答"), Some((12, true)));
        assert_eq!(decode_count("тыс"), None);
    }

    #[test]
    fn exact_number_cases() {
        assert_eq!(exact_number("Score of -5"), Some(-5));
        assert_eq!(exact_number("1605109 views"), Some(1_605_109));
        assert_eq!(exact_number("2,293,587 views"), Some(2_293_587));
        assert_eq!(exact_number("reputation score 11,102"), Some(11_102));
        assert_eq!(exact_number("reputation score "), None);
        assert_eq!(exact_number("# replies"), None);
        assert_eq!(
            exact_number("Score of -9223372036854775808"),
            Some(i64::MIN)
        );
        assert_eq!(exact_number("Score of 9223372036854775808"), None);
        // Localized titles.
        assert_eq!(exact_number("1 234 просмотра"), Some(1234));
        assert_eq!(
            exact_number("12\u{a0}345\u{a0}678 просмотров"),
            Some(12_345_678)
        );
        assert_eq!(exact_number("1.234 visualizações"), Some(1234));
        assert_eq!(exact_number("Pontuação de 12"), Some(12));
        assert_eq!(exact_number("閲覧数 5,432 回"), Some(5432));
        assert_eq!(exact_number("12 views 2020"), Some(12));
        assert_eq!(exact_number("1.5 views"), Some(1));
    }

    #[test]
    fn rejections_say_why_briefly() {
        let raw = RawSummary {
            question_id: Some("12".into()),
            title: Some("A title".into()),
            votes: RawStat {
                text: Some("x".repeat(10_000)),
                title: None,
            },
            ..RawSummary::default()
        };
        let page = ParsedPage {
            layout: crate::source::html::parse::Layout::PostSummary,
            summaries: vec![raw, RawSummary::default()],
            drift: None,
        };
        let cleaned = clean_page(&page, &ctx(), fetched());
        assert!(cleaned.questions.is_empty());
        let reasons: Vec<&str> = cleaned
            .rejections
            .iter()
            .map(|r| r.reason.as_str())
            .collect();
        assert!(reasons[0].starts_with("unreadable votes RawStat { text: Some(\"xxx"));
        assert!(reasons[0].chars().count() < 160);
        assert_eq!(reasons[1], "bad question id None");
        assert_eq!(cleaned.rejections[0].question_id.as_deref(), Some("12"));
    }

    #[test]
    fn split_status_cases() {
        assert_eq!(split_status("A [closed]"), ("A", QuestionStatus::Closed));
        assert_eq!(split_status("A [on hold] "), ("A", QuestionStatus::OnHold));
        assert_eq!(
            split_status("A [duplicate] [closed]"),
            ("A", QuestionStatus::Duplicate)
        );
        assert_eq!(split_status("[closed]"), ("", QuestionStatus::Closed));
        assert_eq!(
            split_status("Why [closed] here"),
            ("Why [closed] here", QuestionStatus::Open)
        );
    }

    #[test]
    fn absolute_url_cases() {
        let b = "https://stackoverflow.com/";
        assert_eq!(
            absolute_url(b, Some("/questions/1/a"), 1),
            "https://stackoverflow.com/questions/1/a"
        );
        assert_eq!(
            absolute_url(b, Some("../questions/1/a"), 1),
            "https://stackoverflow.com/questions/1/a"
        );
        assert_eq!(
            absolute_url(b, Some("//meta.stackoverflow.com/questions/2"), 2),
            "https://meta.stackoverflow.com/questions/2"
        );
        assert_eq!(
            absolute_url(b, None, 3),
            "https://stackoverflow.com/questions/3"
        );
    }

    #[test]
    fn tagged_python_newest_2025() {
        let page = cleaned("tagged-python-newest-2025.html");
        assert_eq!(page.questions.len(), 15);
        assert!(page.rejections.is_empty(), "{:?}", page.rejections);

        let first = &page.questions[0];
        assert_eq!(first.question_id, 79821892);
        assert_eq!(
            first.url,
            "https://stackoverflow.com/questions/79821892/how-to-automate-extraction-and-standardization-of-multilingual-name-username-dat"
        );
        assert_eq!(
            first.title,
            "How to Automate Extraction and Standardization of Multilingual Name/Username Data Without Modifying the Original Database?"
        );
        assert!(first
            .excerpt
            .starts_with("We’re working with a user table populated"));
        assert!(first
            .excerpt
            .ends_with("I need a persistent, automated way to extract and ..."));
        assert_eq!(first.votes, 0);
        assert_eq!(first.post_kind, PostKind::Advice);
        assert_eq!((first.answers, first.replies), (0, Some(0)));
        assert_eq!((first.views, first.views_exact), (12, true));
        assert_eq!(first.tags, ["python", "sql-server", "data-cleaning"]);
        assert!(!first.has_accepted_answer);
        assert_eq!(first.author_name.as_deref(), Some("John Doe"));
        assert_eq!(first.author_reputation, Some(17));
        assert_eq!(first.asked_at, at(2025, 11, 17, 3, 46, 46));
        assert_eq!((first.modified_at, first.answered_at), (None, None));
        assert_eq!(first.status, QuestionStatus::Open);
        assert_eq!(first.bounty, None);
        assert!(!first.community_wiki);
        assert_eq!((first.tag.as_str(), first.page), ("python", 1));

        let last = &page.questions[14];
        assert_eq!(last.question_id, 79821480);
        assert_eq!(
            last.title,
            "Horizontal and vertical scrollbars using TKinter and Python almost working"
        );
        assert!(last
            .excerpt
            .contains("It needed some text in a \"table\" and because"));
        assert_eq!((last.votes, last.answers, last.replies), (0, 2, None));
        assert_eq!(last.post_kind, PostKind::Question);
        assert_eq!((last.views, last.views_exact), (47, true));
        assert_eq!(last.tags, ["python", "tkinter"]);
        assert!(!last.has_accepted_answer);
        assert_eq!(last.author_name.as_deref(), Some("TTM"));
        assert_eq!(last.author_reputation, Some(21));
        assert_eq!(last.asked_at, at(2025, 11, 16, 13, 10, 48));

        let closed = find(&page, 79821529);
        assert_eq!(closed.title, "pretrained NTU60 of VPN");
        assert_eq!(closed.status, QuestionStatus::Closed);

        let accepted = find(&page, 79821639);
        assert!(accepted.has_accepted_answer);
        assert_eq!(
            (accepted.votes, accepted.answers, accepted.views),
            (3, 3, 63)
        );
        assert_eq!(accepted.author_name.as_deref(), Some("panji"));
        assert_eq!(accepted.asked_at, at(2025, 11, 16, 17, 50, 15));
        assert_eq!(
            page.questions
                .iter()
                .filter(|q| q.has_accepted_answer)
                .count(),
            3
        );
        assert_eq!(
            page.questions
                .iter()
                .filter(|q| q.post_kind == PostKind::Advice)
                .count(),
            3
        );
    }

    #[test]
    fn questions_newest_2026_resaved() {
        let page = cleaned("questions-newest-2026-resaved.html");
        assert_eq!(page.questions.len(), 15);
        assert!(page.rejections.is_empty(), "{:?}", page.rejections);

        let first = &page.questions[0];
        assert_eq!(first.question_id, 79898520);
        assert_eq!(
            first.url,
            "https://stackoverflow.com/questions/79898520/gitlab-docker-image-private-project"
        );
        assert_eq!(first.title, "Gitlab - Docker image - private project");
        assert!(first
            .excerpt
            .starts_with("I run gitlab/gitlab-ee:18.9.0-ee.0 under Docker When I log in"));
        assert_eq!((first.votes, first.answers, first.views), (0, 0, 5));
        assert!(first.views_exact);
        assert_eq!(first.tags, ["docker", "docker-compose", "gitlab"]);
        assert_eq!(first.author_name.as_deref(), Some("Rick"));
        assert_eq!(first.author_reputation, Some(142));
        assert_eq!(first.asked_at, at(2026, 2, 28, 17, 20, 32));

        let last = &page.questions[14];
        assert_eq!(last.question_id, 79898452);
        assert_eq!(
            last.title,
            "IntelliJ plugin action not showing in Commit toolbar"
        );
        assert!(last
            .excerpt
            .contains("<action id=\"CommitCraft.GenerateMessage\""));
        assert_eq!((last.votes, last.answers, last.views), (-2, 1, 26));
        assert_eq!(last.tags, ["intellij-idea", "intellij-plugin"]);
        assert_eq!(last.author_name.as_deref(), Some("oksymisbah"));
        assert_eq!(last.author_reputation, Some(1));
        assert_eq!(last.asked_at, at(2026, 2, 28, 14, 50, 35));

        // Reputation shown as "60.6k" but titled with the exact figure.
        let exact_rep = find(&page, 79898491);
        assert_eq!(
            exact_rep.author_name.as_deref(),
            Some("Wernfried Domscheit")
        );
        assert_eq!(exact_rep.author_reputation, Some(60_634));
        assert_eq!(
            (exact_rep.votes, exact_rep.answers, exact_rep.views),
            (-2, 0, 43)
        );

        // A "Tooling" discussion post counts replies, not answers.
        let tooling = find(&page, 79898489);
        assert_eq!(tooling.post_kind, PostKind::Advice);
        assert_eq!((tooling.answers, tooling.replies), (0, Some(2)));
        assert_eq!((tooling.views, tooling.votes), (33, 0));
    }

    #[test]
    fn meta_homepage_2026_resaved() {
        let page = cleaned("meta-homepage-2026-resaved.html");
        assert_eq!(page.questions.len(), 48);
        assert!(page.rejections.is_empty(), "{:?}", page.rejections);

        let first = &page.questions[0];
        assert_eq!(first.question_id, 438369);
        assert_eq!(
            first.title,
            "I’m Jody, the Chief Product and Technology Officer at Stack Overflow, let’s talk about the site redesign"
        );
        assert_eq!(first.excerpt, "");
        assert_eq!((first.votes, first.answers), (12, 17));
        // Shown as "1k", titled "1034 views".
        assert_eq!((first.views, first.views_exact), (1034, true));
        assert_eq!(
            first.tags,
            ["discussion", "company-update", "featured", "redesign-2026"]
        );
        assert_eq!(first.author_name.as_deref(), Some("David Maze"));
        assert_eq!(first.author_reputation, Some(165_658));
        assert_eq!(first.answered_at, at(2026, 2, 28, 16, 27, 16));
        assert_eq!((first.asked_at, first.modified_at), (None, None));

        let last = &page.questions[47];
        assert_eq!(last.question_id, 430451);
        assert_eq!(last.url, "https://stackoverflow.com/questions/430451/notification-clearing-for-followed-questions");
        assert_eq!(last.title, "Notification clearing for followed questions");
        assert_eq!((last.votes, last.answers, last.views), (14, 0, 172));
        assert_eq!(
            last.tags,
            ["feature-request", "notifications", "follow-posts"]
        );
        assert_eq!(last.author_name.as_deref(), Some("wjandrea"));
        assert_eq!(last.author_reputation, Some(34_147));
        assert_eq!(last.modified_at, at(2026, 2, 21, 15, 5, 36));

        let million = find(&page, 421831);
        assert_eq!(
            million.title,
            "Policy: Generative AI (e.g., ChatGPT) is banned"
        );
        assert_eq!((million.views, million.views_exact), (1_605_109, true));
        assert_eq!((million.votes, million.answers), (5435, 64));
        assert_eq!(million.answered_at, at(2026, 2, 26, 7, 58, 38));

        let duplicate = find(&page, 438321);
        assert_eq!(
            duplicate.title,
            "The link to Staging Ground is missing in the Beta left navigation"
        );
        assert_eq!(duplicate.status, QuestionStatus::Duplicate);
        assert_eq!(duplicate.votes, -5);

        let accepted = find(&page, 438287);
        assert!(accepted.has_accepted_answer);
        assert_eq!(
            (accepted.votes, accepted.answers, accepted.views),
            (14, 2, 281)
        );
        assert_eq!(accepted.author_reputation, Some(22_952));

        // No number in the title: the visible "9,080" is exact anyway.
        assert_eq!(find(&page, 438284).author_reputation, Some(9_080));
    }
    #[test]
    fn tagged_python_newest_2013() {
        let page = cleaned("tagged-python-newest-2013.html");
        assert_eq!(page.questions.len(), 15);
        assert!(page.rejections.is_empty(), "{:?}", page.rejections);

        let first = &page.questions[0];
        assert_eq!(first.question_id, 19524072);
        assert_eq!(
            first.url,
            "https://stackoverflow.com/questions/19524072/creating-a-mouse-over-text-box-in-tkinter"
        );
        assert_eq!(first.title, "Creating a mouse over text box in tkinter");
        assert!(first
            .excerpt
            .starts_with("I'm trying to implement system where when the user points"));
        assert_eq!((first.votes, first.answers, first.views), (0, 0, 2));
        assert!(first.views_exact && !first.has_accepted_answer);
        assert_eq!(first.tags, ["python", "tkinter"]);
        assert_eq!(first.author_name.as_deref(), Some("Jack"));
        assert_eq!(first.author_reputation, Some(57));
        assert_eq!(first.asked_at, at(2013, 10, 22, 17, 3, 31));

        let last = &page.questions[14];
        assert_eq!(last.question_id, 19523257);
        assert_eq!(last.title, "Pandas equivalent to SQL where");
        assert_eq!((last.votes, last.answers, last.views), (1, 1, 12));
        assert!(last.has_accepted_answer);
        assert_eq!(last.author_name.as_deref(), Some("user1893354"));
        assert_eq!(last.author_reputation, Some(166));
        assert_eq!(last.asked_at, at(2013, 10, 22, 16, 21, 53));

        assert_eq!(find(&page, 19523591).votes, -3);
        assert!(page.questions.iter().all(|q| q.bounty.is_none()));
    }

    #[test]
    fn tagged_webcam_newest_2014_bounty_closed() {
        let page = cleaned("tagged-webcam-newest-2014-bounty-closed.html");
        assert_eq!(page.questions.len(), 15);
        assert!(page.rejections.is_empty(), "{:?}", page.rejections);

        let first = &page.questions[0];
        assert_eq!(first.question_id, 21250307);
        assert_eq!(
            first.title,
            "When to use ImageEncodingProperties vs. VIdeoEncodingProperties"
        );
        assert_eq!((first.votes, first.answers, first.views), (0, 0, 4));
        assert_eq!(
            first.tags,
            [
                "c#",
                "video",
                "windows-runtime",
                "windows-store-apps",
                "webcam"
            ]
        );
        assert_eq!(first.author_name.as_deref(), Some("Thaine Norris"));
        assert_eq!(first.author_reputation, Some(16));
        assert_eq!(first.asked_at, at(2014, 1, 21, 6, 0, 41));

        let last = &page.questions[14];
        assert_eq!(last.question_id, 21002836);
        assert_eq!(last.title, "take screen from webcam and support by cmd");
        assert_eq!((last.votes, last.answers, last.views), (-4, 0, 39));
        assert_eq!(last.author_name.as_deref(), Some("user3141844"));
        assert_eq!(last.author_reputation, Some(1));
        assert_eq!(last.asked_at, at(2014, 1, 8, 17, 45, 25));

        let bounty = find(&page, 21186550);
        assert_eq!(bounty.bounty, Some(50));
        assert_eq!(bounty.title, "java capturing webcam images macbook");
        assert_eq!((bounty.votes, bounty.answers, bounty.views), (0, 1, 58));
        assert_eq!(bounty.author_name.as_deref(), Some("Thijser"));
        assert_eq!(bounty.author_reputation, Some(409));
        assert_eq!(find(&page, 21182518).bounty, Some(50));
        assert_eq!(
            page.questions.iter().filter(|q| q.bounty.is_some()).count(),
            2
        );

        let closed = find(&page, 21105650);
        assert_eq!(
            closed.title,
            "How can I programatically get high resolution images from a webcamera"
        );
        assert_eq!(closed.status, QuestionStatus::Closed);
        // Shown as "16.4k", titled "reputation score 16396".
        assert_eq!(closed.author_reputation, Some(16_396));
        assert_eq!(find(&page, 21051848).status, QuestionStatus::Closed);

        let on_hold = find(&page, 21166845);
        assert_eq!(
            on_hold.title,
            "Detecting a users presence on webcam in Java"
        );
        assert_eq!(on_hold.status, QuestionStatus::OnHold);
        let marked = page
            .questions
            .iter()
            .filter(|q| q.status != QuestionStatus::Open)
            .count();
        assert_eq!(marked, 3);
    }

    #[test]
    fn homepage_narrow_2018() {
        let page = cleaned("homepage-narrow-2018.html");
        assert_eq!(page.questions.len(), 96);
        assert!(page.rejections.is_empty(), "{:?}", page.rejections);

        let first = &page.questions[0];
        assert_eq!(first.question_id, 52418095);
        assert_eq!(first.title, "Larave Where Collection");
        assert_eq!(first.excerpt, "");
        assert_eq!((first.votes, first.answers, first.views), (0, 0, 12));
        assert_eq!(
            first.tags,
            ["arrays", "json", "laravel", "lumen", "laravel-collection"]
        );
        assert_eq!(first.author_name.as_deref(), Some("Ibu"));
        assert_eq!(first.author_reputation, Some(30_971));
        assert_eq!(first.modified_at, at(2018, 9, 20, 5, 26, 54));
        assert_eq!(first.asked_at, None);

        let last = &page.questions[95];
        assert_eq!(last.question_id, 52397450);
        assert_eq!(
            last.title,
            "Celery worker running tensorflow unable to create CUDA event"
        );
        assert_eq!((last.votes, last.answers, last.views), (5, 0, 26));
        assert_eq!(last.author_name.as_deref(), Some("talonmies"));
        assert_eq!(last.author_reputation, Some(58_308));
        assert_eq!(last.modified_at, at(2018, 9, 20, 4, 24, 46));

        // Shown as "20k", titled "20050 views".
        let hot = find(&page, 50718018);
        assert_eq!((hot.views, hot.views_exact), (20_050, true));
        assert_eq!((hot.votes, hot.answers), (105, 20));
        assert!(hot.has_accepted_answer);
        assert_eq!(hot.answered_at, at(2018, 9, 20, 5, 17, 48));
    }

    #[test]
    fn tagged_python_votes_2020() {
        let page = cleaned("tagged-python-votes-2020.html");
        assert_eq!(page.questions.len(), 50);
        assert!(page.rejections.is_empty(), "{:?}", page.rejections);

        let first = &page.questions[0];
        assert_eq!(first.question_id, 231767);
        assert_eq!(first.title, "What does the “yield” keyword do?");
        assert_eq!((first.votes, first.answers), (10491, 42));
        // Shown as "2.3m", titled "2,293,587 views".
        assert_eq!((first.views, first.views_exact), (2_293_587, true));
        assert!(first.has_accepted_answer);
        assert_eq!(
            first.tags,
            ["python", "iterator", "generator", "yield", "coroutine"]
        );
        assert_eq!(first.author_name.as_deref(), Some("Alex. S."));
        assert_eq!(first.author_reputation, Some(118_720));
        assert_eq!(first.asked_at, at(2008, 10, 23, 22, 21, 11));

        let last = &page.questions[49];
        assert_eq!(last.question_id, 930397);
        assert_eq!(last.title, "Getting the last element of a list");
        assert_eq!(
            (last.votes, last.answers, last.views),
            (2160, 12, 2_235_117)
        );
        assert_eq!(last.author_name.as_deref(), Some("Janusz"));
        assert_eq!(last.author_reputation, Some(169_340));
        assert_eq!(last.asked_at, at(2009, 5, 30, 19, 28, 53));

        let wiki = find(&page, 394809);
        assert!(wiki.community_wiki);
        assert_eq!(
            wiki.title,
            "Does Python have a ternary conditional operator?"
        );
        // The page shows "20 revs, 16 users 43%" and the main editor's
        // linked name: the name is kept, a wiki post has no reputation.
        assert_eq!(
            (wiki.author_name.as_deref(), wiki.author_reputation),
            (Some("Devoted"), None)
        );
        assert_eq!(
            (wiki.author_user_id, wiki.author_has_profile),
            (Some(51518), true)
        );
        assert_eq!(
            (wiki.votes, wiki.answers, wiki.views),
            (6218, 26, 1_969_833)
        );
        assert!(find(&page, 4750806).community_wiki);
        assert_eq!(
            page.questions.iter().filter(|q| q.community_wiki).count(),
            2
        );

        let duplicate = find(&page, 510348);
        assert_eq!(duplicate.title, "How can I make a time delay in Python?");
        assert_eq!(duplicate.status, QuestionStatus::Duplicate);
        assert!(!duplicate.has_accepted_answer);
        assert_eq!(duplicate.views, 3_112_716);
    }

    #[test]
    fn tagged_command_newest_2020() {
        let page = cleaned("tagged-command-newest-2020.html");
        assert_eq!(page.questions.len(), 50);
        assert!(page.rejections.is_empty(), "{:?}", page.rejections);

        let first = &page.questions[0];
        assert_eq!(first.question_id, 63892575);
        assert_eq!(
            first.title,
            "Weird error in Command Prompt, trying to install package with PIP"
        );
        assert_eq!((first.votes, first.answers, first.views), (0, 0, 6));
        assert_eq!(first.author_name.as_deref(), Some("Samuel DiSorbo"));
        assert_eq!(first.author_reputation, Some(1));
        assert_eq!(first.asked_at, at(2020, 9, 14, 22, 27, 55));

        let last = &page.questions[49];
        assert_eq!(last.question_id, 63670957);
        assert_eq!(
            last.title,
            "How to log every single command executed from shell script"
        );
        assert_eq!((last.votes, last.answers, last.views), (0, 2, 49));
        assert!(last.has_accepted_answer);
        assert_eq!(last.author_name.as_deref(), Some("Manikant Singh"));
        assert_eq!(last.author_reputation, Some(3));
        assert_eq!(last.asked_at, at(2020, 8, 31, 12, 36, 59));

        let closed = find(&page, 63863289);
        assert_eq!(
            closed.title,
            "Command to list available webcam/video devices?"
        );
        assert_eq!(closed.status, QuestionStatus::Closed);
        assert_eq!(closed.author_name.as_deref(), Some("esljkfgh"));
    }
}
