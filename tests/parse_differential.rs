//! The fast reader of a listing (the list region's tape, `parse/stream.rs`)
//! against the reference (html5ever's tree, `parse_listing_tree`), on
//! every saved page: the same `ParsedPage` or the same error, and the fast
//! path actually taken on every listing. Generated pages are compared in
//! `parser_props.rs`, with the property tests' generators.

use stackcrawl::source::html::parse::{parse_listing_traced, parse_listing_tree, ParsePath};

/// Every file of a fixture folder, by name.
fn fixtures(dir: &str) -> Vec<(String, String)> {
    let path = format!("{}/tests/fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<(String, String)> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().expect("a file name");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            (name.to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_listing_fixture_is_read_by_the_stream_exactly_as_by_the_tree() {
    let listings = fixtures("so-html");
    assert_eq!(listings.len(), 19, "a fixture was added or lost");
    for (name, html) in &listings {
        let (fast, path) = parse_listing_traced(html);
        assert_eq!(fast, parse_listing_tree(html), "{name}");
        assert!(fast.is_ok_and(|p| !p.summaries.is_empty()), "{name}");
        assert_eq!(path, ParsePath::Stream, "{name}: fell back");
    }
}

#[test]
fn question_pages_and_api_bodies_are_refused_alike() {
    for dir in ["so-question", "se-api"] {
        for (name, body) in fixtures(dir) {
            let (fast, _) = parse_listing_traced(&body);
            assert_eq!(fast, parse_listing_tree(&body), "{name}");
            assert!(fast.is_err(), "{name}");
        }
    }
}

/// A listing page around a list region of `items`.
fn page(items: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><title>t</title></head><body>\
         <div id=\"mainbar\"><div id=\"questions\" class=\"flush-left\">{items}</div></div>\
         </body></html>"
    )
}

fn summary(id: u32, inner: &str) -> String {
    format!(
        "<div class=\"s-post-summary js-post-summary\" data-post-id=\"{id}\">\
         <div class=\"s-post-summary--stats\">\
         <div class=\"s-post-summary--stats-item\" title=\"Score of 3\">\
         <span class=\"s-post-summary--stats-item-number\">3</span>\
         <span class=\"s-post-summary--stats-item-unit\">votes</span></div></div>\
         <h3 class=\"s-post-summary--content-title\"><a href=\"/questions/{id}/q\">{inner}</a></h3>\
         <div class=\"s-user-card\"><a href=\"/users/7/u\">user</a> \
         asked <span class=\"relativetime\" title=\"2025-01-02 03:04:05Z\">x</span></div>\
         </div>"
    )
}

/// Reads a page both ways and returns the path the fast reader took.
fn both(html: &str) -> ParsePath {
    let (fast, path) = parse_listing_traced(html);
    assert_eq!(fast, parse_listing_tree(html), "{html}");
    path
}

#[test]
fn character_references_are_decoded_as_the_tokenizer_decodes_them() {
    for title in [
        "a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#x27; &nbsp;&hellip;&eacute;&NotNestedLessLess;",
        // Numbers the tokenizer replaces or passes with a parse error.
        "&#0; &#x80; &#x9F; &#128512; &#xD800; &#1114112; &#99999999999; &#x41 &#65x &#; &#x;",
        // Not references: the `&` stays.
        "AT&T &; & b &=a &#-1; &zzzz; &zzzz",
        "tab\tcr\r\ncr\rend",
    ] {
        let html = page(&summary(1, title));
        assert_eq!(both(&html), ParsePath::Stream, "{title}");
    }
    // Legacy names without a semicolon read differently in text and in
    // attributes: left to the tree builder, which gives the same result.
    for title in ["&copy 2020", "&notit;", "&amp", "x&ampy"] {
        let html = page(&summary(1, title));
        assert_eq!(both(&html), ParsePath::RegionTree, "{title}");
    }
    let in_attribute = page(&summary(1, "t").replace("/q\"", "/q?a=1&copy=2&amp;b\""));
    assert_eq!(both(&in_attribute), ParsePath::RegionTree);
}

#[test]
fn tags_and_attributes_are_tokenized_as_html5ever_does() {
    for markup in [
        // Case, repeated attributes (the first wins), odd quoting.
        "<A HREF='/questions/9/x' href=\"/other\" Class=question-hyperlink>t</a>",
        "<a href=/questions/9/x?b=c title=a>b>t</a>",
        "<a title=\"x > y\" href=\"/q\"/ data-x = 'y' =z >t</a>",
        "<a href=\"/q\"title='t'>t</a>",
        "<span/>t</span>",
        "<br/><img src=x alt=\"<div>\"><hr>",
        "<!-- <div class=\"s-post-summary\"> --> after <!---->",
        "<script>if (a < b && c) { x('</div>') }</script>",
        "<style>.s-post-summary { }</style>",
        "<svg class=\"svg-icon\" viewBox=\"0 0 1 1\"><path d=\"M0\"/><g><rect/></g></svg>",
        "<ul><li>a</li><li>b<ul><li>c</li></ul></li></ul>",
        "<p>para <b>bold</b> <code>c</code><br></p>",
        "< not a tag <3",
        // An `a` in an `a`, then its end tag: the first is closed, the
        // second end tag ignored.
        "<a href=\"/posts/1/revisions\">2 revs<br><a href=\"/users/5/x\">x</a></a>",
        // Stray end tags nothing answers.
        "</span></b></li></em></table>text",
        // Text on both sides of an ignored end tag is one text: the label
        // search, eight siblings deep, finds "asked" past it.
        "asked<i></i> </b> </b> </b> </b> </b> </b> </b> </b> \
         <span class=\"relativetime\" title=\"2020-01-01 00:00:00Z\">x</span>",
    ] {
        let html = page(&summary(1, markup));
        assert_eq!(both(&html), ParsePath::Stream, "{markup}");
    }
}

#[test]
fn markup_the_stream_does_not_reproduce_falls_back_to_the_tree() {
    for markup in [
        "<p>a<div>block</div>",
        "<b>a<i>b</b>c</i>",
        "<table><tr><td>x</td></tr></table>",
        "<a href=\"/1\">a<div>b<a href=\"/2\">c</a></div></a>",
        "<li>a<li>b",
        "<h3>a<h4>b</h4></h3>",
        "</h2>",
        "</p>",
        "<br></br>",
        "<form><input></form>",
        "<noscript><div>x</div></noscript>",
        "<textarea><div></textarea>",
        "<svg><foreignObject><div>x</div></foreignObject></svg>",
        "<svg><use xlink:href=\"#i\"/></svg>",
        "<svg><div>x</div></svg>",
        "<math><mi>x</mi></math>",
        "<!DOCTYPE html>",
        "<?php ?>",
        "<!--> <!--->",
        "<script><!-- </script> --></script>",
        "</ x>",
    ] {
        let html = page(&summary(1, markup));
        assert_eq!(both(&html), ParsePath::RegionTree, "{markup}");
    }
    // An element left open at the region's end.
    let html = page(&format!("{}<span>", summary(1, "t")));
    assert_eq!(both(&html), ParsePath::RegionTree);
}

#[test]
fn deep_nesting_and_many_attributes_cost_no_walk_of_the_stack() {
    let after = |markup: &str| page(&format!("{}{markup}", summary(1, "t")));
    // A stray end tag is looked up under at most 64 open elements.
    let shallow = format!("{}</b>{}", "<span>".repeat(10), "</span>".repeat(10));
    assert_eq!(both(&after(&shallow)), ParsePath::Stream);
    let deep = format!("{}</b>{}", "<span>".repeat(70), "</span>".repeat(70));
    assert_eq!(both(&after(&deep)), ParsePath::RegionTree);
    // Links and list items under deep nesting are counted, not looked up.
    let links = format!(
        "{}{}<ul>{}</ul>{}",
        "<span>".repeat(2000),
        "<a href=\"/x\">x</a>".repeat(2000),
        "<li>i</li>".repeat(2000),
        "</span>".repeat(2000)
    );
    assert_eq!(both(&after(&links)), ParsePath::Stream);
    // Each attribute is checked against those before it: at most 64.
    let attrs: String = (0..64).map(|i| format!(" data-x{i}=\"{i}\"")).collect();
    assert_eq!(
        both(&after(&format!("<span{attrs}>x</span>"))),
        ParsePath::Stream
    );
    let attrs = format!("{attrs} data-last=1");
    assert_eq!(
        both(&after(&format!("<span{attrs}>x</span>"))),
        ParsePath::RegionTree
    );
}

#[test]
fn an_empty_list_and_too_many_summaries_are_decided_alike() {
    assert_eq!(both(&page("")), ParsePath::WholePage);
    let many: String = (0..501).map(|i| summary(i, "t")).collect();
    let html = page(&many);
    assert!(parse_listing_tree(&html).is_err());
    assert_eq!(both(&html), ParsePath::Stream);
}
