//! Properties of the pure stages: whatever text a fetcher hands over,
//! `parse_listing`, `clean_page` and the number
//! decoders return a value or an error and never panic, and what they return
//! keeps its invariants (every summary is either a question or a counted
//! rejection).
//!
//! Case counts: the cheap properties run 2000 cases, the ones that parse a
//! whole fixture page (~20–80 ms each in a debug build) fewer, so the file
//! stays well under 20 s. `PROPTEST_CASES` scales every property at once,
//! e.g. `PROPTEST_CASES=20000` for a long soak.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

use stackcrawl::model::PageContext;
use stackcrawl::source::html::clean::{
    absolute_url, clean_page, decode_count, exact_number, parse_iso, split_status,
};
use stackcrawl::source::html::parse::{
    parse_listing, parse_listing_traced, parse_listing_tree, ParseError, ParsedPage, RawStat,
    RawSummary, RawTime,
};

const LISTINGS: [&str; 8] = [
    "tagged-python-newest-2013.html",
    "tagged-webcam-newest-2014-bounty-closed.html",
    "homepage-narrow-2018.html",
    "tagged-python-votes-2020.html",
    "tagged-command-newest-2020.html",
    "tagged-python-newest-2025.html",
    "questions-newest-2026-resaved.html",
    "meta-homepage-2026-resaved.html",
];

const QUESTIONS: [&str; 2] = ["question-29980798-2020.html", "question-19687421-2021.html"];

const CHEAP: u32 = 2000;
const WHOLE_PAGE: u32 = 64;

static PAGES: LazyLock<Vec<String>> = LazyLock::new(|| load("so-html", &LISTINGS));
static QUESTION_PAGES: LazyLock<Vec<String>> = LazyLock::new(|| load("so-question", &QUESTIONS));

fn load(dir: &str, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|name| {
            let path = format!("{}/tests/fixtures/{dir}/{name}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        })
        .collect()
}

/// `cases` unless `PROPTEST_CASES` asks for another count; no regression
/// files are written next to the sources.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn ctx() -> PageContext {
    PageContext {
        site: "stackoverflow.com".into(),
        base_url: "https://stackoverflow.com".into(),
        tag: "c++".into(),
        tab: "Newest".into(),
        page: 3,
    }
}

/// Cleans a parsed page and checks what must hold for any input.
fn check_cleaned(page: &ParsedPage) -> Result<(), TestCaseError> {
    let cleaned = clean_page(page, &ctx(), DateTime::<Utc>::UNIX_EPOCH);
    prop_assert_eq!(
        cleaned.questions.len() + cleaned.rejections.len(),
        page.summaries.len()
    );
    for q in &cleaned.questions {
        prop_assert!(q.question_id > 0);
        prop_assert!(!q.title.is_empty());
        prop_assert!(q.url.starts_with("http"), "{}", q.url);
        prop_assert_eq!(split_status(&q.title).0, q.title.as_str());
        prop_assert!(q.replies.is_none() || q.answers == 0);
        // A community-wiki post keeps the name it shows, never a reputation.
        prop_assert!(!q.community_wiki || q.author_reputation.is_none());
        prop_assert!(!q.author_has_profile || q.author_name.is_some());
        prop_assert!(q.author_user_id.is_none() || q.author_has_profile);
        prop_assert!(q.author_action.is_none() || q.author_name.is_some());
    }
    for r in &cleaned.rejections {
        prop_assert!(!r.reason.is_empty());
    }
    Ok(())
}

fn check_listing(html: &str) -> Result<(), TestCaseError> {
    match parse_listing(html) {
        Ok(page) => check_cleaned(&page),
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            Ok(())
        }
    }
}

/// The fast reader gives what the reference tree gives, whatever the input.
fn check_same(html: &str) -> Result<(), TestCaseError> {
    let (fast, path) = parse_listing_traced(html);
    prop_assert_eq!(fast, parse_listing_tree(html), "path {:?}", path);
    Ok(())
}

/// The largest char boundary at or below `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ends_complete(s: &str) -> bool {
    let start = s.len().saturating_sub(1024);
    s.as_bytes().get(start..).is_some_and(|tail| {
        tail.to_ascii_lowercase()
            .windows(7)
            .any(|w| w == b"</html>")
    })
}

/// Pieces of listing markup, so that random documents reach the summary
/// extraction and not only the "is this HTML" checks.
fn markup_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<div class=\"s-post-summary\" data-post-id=\"12\">".to_owned()),
        Just("<div class=\"question-summary narrow\" id=\"question-summary-9\">".to_owned()),
        Just("<div class=\"question-summary\" id=\"question-summary-\">".to_owned()),
        Just("<div class=\"s-post-summary--stats-item has-accepted-answer\" title=\"Score of -9223372036854775808\">".to_owned()),
        Just("<span class=\"s-post-summary--stats-item-number\">".to_owned()),
        Just("<span class=\"s-post-summary--stats-item-unit\">views</span>".to_owned()),
        Just("<span class=\"s-post-summary--stats-item-unit\">replies</span>".to_owned()),
        Just("<div class=\"views\" title=\"99,999,999,999,999,999,999 views\">".to_owned()),
        Just("<div class=\"mini-counts\"><span title=\"\">".to_owned()),
        Just("<div class=\"status answered-accepted\"><strong>".to_owned()),
        Just("<span class=\"vote-count-post\">".to_owned()),
        Just("<h3 class=\"s-post-summary--content-title\"><a href=\"//x/q\" class=\"question-hyperlink\">".to_owned()),
        Just("<a class=\"post-tag\">".to_owned()),
        Just("<a href=\"/users/1/x\">".to_owned()),
        Just("<span class=\"reputation-score\" title=\"reputation score 1,1\">".to_owned()),
        Just("asked <span class=\"relativetime\" title=\"2025-13-45 99:99:99Z\">".to_owned()),
        Just("modified <span class='relativetime' title='2020-02-29 23:59:59Z'>".to_owned()),
        Just("<div class=\"bounty-indicator\">+".to_owned()),
        Just("<span class=\"community-wiki\">community wiki</span>".to_owned()),
        Just("<div id=\"questions\">".to_owned()),
        Just("<div id=\"mainbar\">".to_owned()),
        Just("<title>Human verification</title>".to_owned()),
        Just("</div>".to_owned()),
        Just("</span></a></h3>".to_owned()),
        Just(" [closed]".to_owned()),
        Just("&#xFFFFFF;&amp;&lt;".to_owned()),
        "-?[0-9]{0,25}(\\.[0-9]{0,4})?[kmbKMB]?",
        "[ \n\t]{0,3}",
        any::<String>(),
    ]
}

fn soup() -> impl Strategy<Value = String> {
    (prop::collection::vec(markup_token(), 0..16), any::<bool>()).prop_map(|(tokens, close)| {
        let mut html = String::from("<html><body>");
        html.extend(tokens);
        if close {
            html.push_str("</body></html>");
        }
        html
    })
}

/// Markup at the edges of what the list region's own scan reproduces
/// (`parse/stream.rs`): references, odd tags and attributes, raw text,
/// SVG, and the tree builder's own rules (misnesting, `p`, lists, tables).
fn region_token() -> impl Strategy<Value = String> {
    const TOKENS: [&str; 55] = [
        "<div class=\"s-post-summary js-post-summary\" data-post-id=\"7\">",
        "<div class=\"question-summary\" id=\"question-summary-8\">",
        "<div>",
        "</div>",
        "<div class=\"s-user-card\">",
        "<div class=\"started\">",
        "<span>",
        "</span>",
        "<a href=\"/users/3/x\">",
        "<a href=\"/questions/5/q\">",
        "</a>",
        "<b>",
        "</b>",
        "<i>",
        "</i>",
        "<p>",
        "</p>",
        "<ul>",
        "</ul>",
        "<li>",
        "</li>",
        "<h3>",
        "</h3>",
        "<h4>",
        "<br>",
        "</br>",
        "<img src=x/>",
        "<span/>",
        "<svg class=\"svg-icon\"><path d=\"M0\"/>",
        "</svg>",
        "<svg><use xlink:href=\"#a\"/>",
        "<table><tr><td>",
        "<!-- c -->",
        "<!-->",
        "<!DOCTYPE x>",
        "<?x>",
        "</ x>",
        "<script>a</div>b</script>",
        "<style>p{}</style>",
        "<noscript>",
        "<textarea>",
        "&amp;",
        "&copy",
        "&copy;",
        "&#128;",
        "&#3#9;",
        "&eacute;",
        "&zz;",
        "\r\n",
        "\r",
        "<SPAN CLASS=\"relativetime\" TITLE=\"2020-01-01 00:00:00Z\">",
        "<a title='a > b'>",
        // Ignored end tags between texts and siblings before a date.
        " </b> ",
        "<i></i>",
        " asked ",
    ];
    prop_oneof![
        4 => (0..TOKENS.len()).prop_map(|i| TOKENS.get(i).copied().unwrap_or("").to_owned()),
        2 => markup_token(),
        1 => "[a-z &;#<>/\"'=]{0,8}",
    ]
}

/// A complete page whose list container holds random region markup.
fn region_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(region_token(), 0..24).prop_map(|tokens| {
        let mut html = String::from(
            "<!DOCTYPE html><html><head><title>t</title></head><body>\
             <div id=\"mainbar\"><div id=\"questions\">",
        );
        html.extend(tokens);
        html.push_str("</div></div></body></html>");
        html
    })
}

/// Stat text as pages spell it, built from numbers rather than regexes:
/// generating from a regex costs more than cleaning in a debug build.
fn raw_text() -> impl Strategy<Value = Option<String>> {
    const SUFFIXES: [&str; 6] = ["", "k", "m", "b", ".5k", " views"];
    const PREFIXES: [&str; 5] = ["", "Score of ", "reputation score ", "# replies", " \n "];
    prop::option::of(prop_oneof![
        (any::<i64>(), 0..SUFFIXES.len(), 0..PREFIXES.len()).prop_map(|(n, s, p)| format!(
            "{}{n}{}",
            PREFIXES.get(p).unwrap_or(&""),
            SUFFIXES.get(s).unwrap_or(&"")
        )),
        (0u32..100_000).prop_map(|n| format!("{},{:03}", n / 1000, n % 1000)),
        any::<String>(),
    ])
}

fn raw_stat() -> impl Strategy<Value = RawStat> {
    (raw_text(), raw_text()).prop_map(|(text, title)| RawStat { text, title })
}

fn raw_summary() -> impl Strategy<Value = RawSummary> {
    let ids = prop::option::of(prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<String>()
    ]);
    let titles = prop::option::of(prop_oneof![
        (any::<String>(), prop::collection::vec(0..4usize, 0..3)).prop_map(|(t, marks)| {
            let mut title = t;
            for m in marks {
                title.push_str(
                    [" [closed]", " [on hold]", " [duplicate]", "[migrated]"]
                        .get(m)
                        .unwrap_or(&""),
                );
            }
            title
        }),
        any::<String>(),
    ]);
    let times = prop::collection::vec(
        (
            prop_oneof![
                prop::sample::select(vec!["asked", "modified", "answered", "edited"])
                    .prop_map(str::to_owned),
                any::<String>()
            ],
            prop_oneof![
                (0u32..10_000, 0u32..14, 0u32..33, 0u32..25, 0u32..61).prop_map(
                    |(y, mo, d, h, mi)| format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{mi:02}Z")
                ),
                any::<String>()
            ],
        )
            .prop_map(|(label, iso)| RawTime { label, iso }),
        0..4,
    );
    (
        (ids, prop::option::of(any::<String>()), titles, raw_text()),
        (
            raw_stat(),
            raw_stat(),
            prop::option::of(raw_stat()),
            raw_stat(),
        ),
        (
            any::<bool>(),
            raw_text(),
            prop::collection::vec(any::<String>(), 0..4),
        ),
        (raw_text(), raw_stat(), times, raw_text(), any::<bool>()),
        (raw_text(), raw_text(), any::<bool>()),
    )
        .prop_map(
            |(
                (question_id, href, title, excerpt),
                (votes, answers, replies, views),
                (accepted, kind_label, tags),
                (author_name, author_reputation, times, bounty, community_wiki),
                (author_user_id, author_action, author_linked),
            )| RawSummary {
                question_id,
                href,
                title,
                excerpt,
                votes,
                answers,
                replies,
                views,
                accepted,
                kind_label,
                tags,
                author_name,
                author_user_id,
                author_linked,
                author_action,
                author_reputation,
                times,
                bounty,
                community_wiki,
            },
        )
}

/// One edit to a page: insert listing markup, delete a stretch, or copy a
/// stretch elsewhere (duplicated summaries, dangling close tags).
#[derive(Debug, Clone)]
enum Mutation {
    Insert(Index, String),
    Delete(Index, usize),
    Copy(Index, usize, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), markup_token()).prop_map(|(at, s)| Mutation::Insert(at, s)),
        (any::<Index>(), 0usize..400).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<Index>(), 0usize..3000, any::<Index>())
            .prop_map(|(a, n, b)| Mutation::Copy(a, n, b)),
    ]
}

fn apply(page: &str, edits: &[Mutation]) -> String {
    let mut s = page.to_owned();
    for edit in edits {
        match edit {
            Mutation::Insert(at, text) => {
                let i = floor_boundary(&s, at.index(s.len() + 1));
                s.insert_str(i, text);
            }
            Mutation::Delete(at, n) => {
                let a = floor_boundary(&s, at.index(s.len() + 1));
                let b = floor_boundary(&s, a + n);
                s.replace_range(a..b, "");
            }
            Mutation::Copy(from, n, to) => {
                let a = floor_boundary(&s, from.index(s.len() + 1));
                let b = floor_boundary(&s, a + n);
                let piece = s.get(a..b).unwrap_or("").to_owned();
                let t = floor_boundary(&s, to.index(s.len() + 1));
                s.insert_str(t, &piece);
            }
        }
    }
    s
}

proptest! {
    #![proptest_config(config(CHEAP))]

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>(), close in any::<bool>()) {
        // Without a closing tag nearly everything stops at the truncation
        // check; with one, the text reaches the HTML parser.
        let html = if close { format!("{s}</html>") } else { s };
        check_listing(&html)?;
    }

    #[test]
    fn markup_soup_never_panics(html in soup()) {
        check_listing(&html)?;
    }

    #[test]
    fn the_stream_reads_soup_as_the_tree_does(html in soup()) {
        check_same(&html)?;
    }

    #[test]
    fn the_stream_reads_region_soup_as_the_tree_does(html in region_soup()) {
        check_listing(&html)?;
        check_same(&html)?;
    }

    #[test]
    fn decoders_never_panic(s in any::<String>(), href in prop::option::of(any::<String>()), id in any::<u64>()) {
        let _ = decode_count(&s);
        let _ = exact_number(&s);
        let _ = parse_iso(&s);
        let (title, _) = split_status(&s);
        prop_assert!(s.contains(title));
        prop_assert!(!absolute_url(&s, href.as_deref(), id).is_empty() || s.trim().is_empty());
    }

    #[test]
    fn decode_count_reads_plain_integers(n in any::<i64>(), pad in "[ \n\t]{0,4}") {
        prop_assert_eq!(decode_count(&format!("{pad}{n}{pad}")), Some((n, true)));
        prop_assert_eq!(exact_number(&format!("Score of {n}")), Some(n));
    }

    #[test]
    fn decode_count_reads_thousands_separators(n in 0u64..=i64::MAX as u64) {
        let digits = n.to_string();
        let grouped: Vec<String> = digits
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let grouped = grouped.join(",");
        let expected = i64::try_from(n).ok();
        prop_assert_eq!(decode_count(&grouped).map(|(v, _)| v), expected);
        prop_assert_eq!(exact_number(&format!("{grouped} views")), expected);
    }

    #[test]
    fn decode_count_reads_abbreviations(a in 0u64..100_000, d in 0u64..10, upper in any::<bool>(), m in any::<bool>()) {
        let (suffix, scale) = if m { ("m", 1_000_000) } else { ("k", 1_000) };
        let suffix = if upper { suffix.to_uppercase() } else { suffix.to_owned() };
        let expected = i64::try_from(a * scale + d * scale / 10).ok();
        prop_assert_eq!(decode_count(&format!("{a}.{d}{suffix}")).map(|(v, _)| v), expected);
        prop_assert_eq!(decode_count(&format!("{a}.{d}{suffix}")).map(|(_, exact)| exact), Some(false));
        prop_assert_eq!(decode_count(&format!(" -{a}{suffix} views")).map(|(v, _)| v), i64::try_from(a * scale).ok().map(|v| -v));
    }

    #[test]
    fn decode_count_rejects_overflow(extra in 1u64..1000) {
        let too_big = u128::from(i64::MAX as u64) + u128::from(extra);
        prop_assert_eq!(decode_count(&too_big.to_string()), None);
        prop_assert_eq!(decode_count(&format!("{}b", u64::MAX / 1000 + extra)), None);
    }

    #[test]
    fn clean_page_never_panics(summaries in prop::collection::vec(raw_summary(), 0..4)) {
        let page = ParsedPage { layout: stackcrawl::source::html::parse::Layout::PostSummary, summaries, drift: None };
        check_cleaned(&page)?;
    }

    #[test]
    fn truncated_fixture_is_retryable(which in any::<Index>(), at in any::<Index>()) {
        let page: &String = which.get(&PAGES);
        let cut = page.get(..floor_boundary(page, at.index(page.len() + 1))).unwrap_or("");
        let result = parse_listing(cut);
        if !ends_complete(cut) {
            match result {
                Err(ParseError::Truncated { len }) => prop_assert_eq!(len, cut.len()),
                Err(ParseError::Empty) => prop_assert!(cut.trim().is_empty()),
                other => prop_assert!(false, "cut at {} gave {:?}", cut.len(), other),
            }
        } else if let Ok(page) = result {
            check_cleaned(&page)?;
        }
    }
}

proptest! {
    #![proptest_config(config(WHOLE_PAGE))]

    #[test]
    fn fixture_with_a_range_cut_out(which in any::<Index>(), at in any::<Index>(), len in 0usize..20_000) {
        let page: &String = which.get(&PAGES);
        let a = floor_boundary(page, at.index(page.len() + 1));
        let b = floor_boundary(page, a + len);
        let html = format!("{}{}", page.get(..a).unwrap_or(""), page.get(b..).unwrap_or(""));
        check_listing(&html)?;
    }

    #[test]
    fn fixture_with_mutated_markup(which in any::<Index>(), edits in prop::collection::vec(mutation(), 1..12)) {
        let html = apply(which.get::<String>(&PAGES), &edits);
        check_listing(&html)?;
    }

    #[test]
    fn the_stream_reads_mutated_fixtures_as_the_tree_does(which in any::<Index>(), edits in prop::collection::vec(mutation(), 1..12)) {
        check_same(&apply(which.get::<String>(&PAGES), &edits))?;
    }

    #[test]
    fn the_stream_reads_fixtures_cut_short_as_the_tree_does(which in any::<Index>(), at in any::<Index>(), len in 0usize..20_000) {
        let page: &String = which.get(&PAGES);
        let a = floor_boundary(page, at.index(page.len() + 1));
        let b = floor_boundary(page, a + len);
        check_same(&format!("{}{}", page.get(..a).unwrap_or(""), page.get(b..).unwrap_or("")))?;
    }

    #[test]
    fn question_page_with_mutated_markup(which in any::<Index>(), edits in prop::collection::vec(mutation(), 0..12)) {
        let html = apply(which.get::<String>(&QUESTION_PAGES), &edits);
        // A question page is what a listing URL may serve instead.
        check_listing(&html)?;
    }
}
