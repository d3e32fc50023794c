//! A page as the Wayback Machine replays it, built from the page as the
//! site served it: what its replay adds, so tests can check that the
//! parser reads the same records with and without it. Modelled on real
//! replays (2017-2024): scripts and styles injected at the top of
//! `<head>`, the toolbar between `<!-- BEGIN WAYBACK TOOLBAR INSERT -->`
//! and `<!-- END … -->` at the top of `<body>`, every link rewritten into
//! the archive (`/web/{timestamp}/{original}`, with `im_`, `js_` or `cs_`
//! for images, scripts and stylesheets; absolute links with the archive's
//! host), and the `FILE ARCHIVED ON … AND RETRIEVED FROM THE INTERNET
//! ARCHIVE ON …` and playback timing comments after `</html>`.

/// `html`, served from `page_url` and captured at `timestamp`
/// (`YYYYMMDDhhmmss`), as the Wayback Machine replays it.
pub fn replayed(html: &str, page_url: &str, timestamp: &str) -> String {
    let origin = origin(page_url);
    let mut out = rewrite_links(html, &origin, timestamp);
    let head = format!(
        "\n<script src=\"//archive.org/includes/analytics.js?v=cf34f82\" type=\"text/javascript\"></script>\n\
<script type=\"text/javascript\">window.addEventListener('DOMContentLoaded',function(){{var v=archive_analytics.values;v.service='wb';v.server_name='wwwb-app212.us.archive.org';v.server_ms=151;archive_analytics.send_pageview({{}});}});</script>\n\
<script type=\"text/javascript\" src=\"/_static/js/bundle-playback.js?v=1WaXNDFE\" charset=\"utf-8\"></script>\n\
<script type=\"text/javascript\" src=\"/_static/js/wombat.js?v=txqj7nKC\" charset=\"utf-8\"></script>\n\
<script type=\"text/javascript\">\n  __wm.init(\"https://web.archive.org/web\");\n  __wm.wombat(\"{page_url}\",\"{timestamp}\",\"https://web.archive.org/\",\"web\",\"/_static/\",\"1551675967\");\n</script>\n\
<link rel=\"stylesheet\" type=\"text/css\" href=\"/_static/css/banner-styles.css?v=S1zqJCYt\" />\n\
<link rel=\"stylesheet\" type=\"text/css\" href=\"/_static/css/iconochive.css?v=qtvMKcIJ\" />\n\
{INJECTED_END}\n"
    );
    insert_after_open_tag(&mut out, "head", &head);
    let toolbar = format!(
        "\n<!-- BEGIN WAYBACK TOOLBAR INSERT -->\n<script>__wm.rw(0);</script>\n\
<div id=\"wm-ipp-base\" lang=\"en\" style=\"display:none;direction:ltr;\">\n\
<div id=\"wm-ipp\" style=\"position:fixed;left:0;top:0;right:0;\">\n\
<div id=\"wm-ipp-inside\"><div id=\"wm-logo\"><a href=\"/web/\" title=\"Wayback Machine home page\"><img src=\"/_static/images/toolbar/wayback-toolbar-logo-200.png\" alt=\"Wayback Machine\" width=\"100\" height=\"27\" border=\"0\"></a></div>\n\
<form target=\"_top\" method=\"get\" action=\"/web/submit\" id=\"wm-ipp-form\"><input type=\"text\" name=\"url\" value=\"{page_url}\"></form>\n\
<div id=\"wm-capinfo\"><a href=\"/web/{timestamp}*/{page_url}\" class=\"wm-btn\">1,234 captures</a>\n\
<div class=\"summary\">12 Jan 2009 - 01 Dec 2024</div>\n\
<table><tr><td class=\"c\"><a href=\"https://web.archive.org/web/20190101000000/{page_url}\" title=\"questions\">Jan</a></td></tr></table></div>\n\
<div id=\"wm-expand\" class=\"wm-btn\" title=\"Show the toolbar\"><span class=\"iconochive-down-solid\"></span></div>\n\
</div></div></div>\n\
<div id=\"wm-ipp-print\">The Wayback Machine - https://web.archive.org/web/{timestamp}/{page_url}</div>\n\
<script type=\"text/javascript\">//<![CDATA[\n__wm.bt(700,27,25,2,\"web\",\"{page_url}\",\"{timestamp}\",1996,\"/_static/\",[\"/_static/css/banner-styles.css?v=S1zqJCYt\",\"/_static/css/iconochive.css?v=qtvMKcIJ\"], false);\n  __wm.rw(1);\n//]]></script>\n\
<!-- END WAYBACK TOOLBAR INSERT -->\n"
    );
    insert_after_open_tag(&mut out, "body", &toolbar);
    let archived = chrono::NaiveDateTime::parse_from_str(timestamp, "%Y%m%d%H%M%S")
        .map(|t| t.format("%H:%M:%S %b %d, %Y").to_string())
        .unwrap_or_else(|_| timestamp.to_string());
    out.push_str(&format!(
        "\n<!--\n     FILE ARCHIVED ON {archived} AND RETRIEVED FROM THE\n     INTERNET ARCHIVE ON 12:34:56 Dec 07, 2026.\n     JAVASCRIPT APPENDED BY WAYBACK MACHINE, COPYRIGHT INTERNET ARCHIVE.\n\n     ALL OTHER CONTENT MAY ALSO BE PROTECTED BY COPYRIGHT (17 U.S.C.\n     SECTION 108(a)(3)).\n-->\n\
<!--\nplayback timings (ms):\n  captures_list: 0.61\n  exclusion.robots: 0.023\n  exclusion.robots.policy: 0.011\n  esindex: 0.009\n  cdx.remote: 5.66\n  LoadShardBlock: 121.4 (3)\n  PetaboxLoader3.datanode: 140.2 (4)\n  load_resource: 91.7\n  PetaboxLoader3.resolve: 55.3\n-->"
    ));
    out
}

/// `html` in the encoding `label` names (`windows-1252`, `shift_jis`…),
/// declared by a `<meta charset>` at the top of the page's own `<head>`
/// (after what a replay injected there); characters the encoding lacks
/// become character references, as browsers write them.
pub fn reencoded(html: &str, label: &str) -> Vec<u8> {
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes())
        .unwrap_or_else(|| panic!("{label} is no encoding"));
    let meta = format!("\n<meta charset=\"{label}\">");
    let mut page = html.to_string();
    match page.find(INJECTED_END) {
        Some(at) => page.insert_str(at + INJECTED_END.len(), &meta),
        None => insert_after_open_tag(&mut page, "head", &meta),
    }
    encoding.encode(&page).0.into_owned()
}

/// The comment that closes what a replay injects at the top of `<head>`.
const INJECTED_END: &str = "<!-- End Wayback Rewrite JS Include -->";

/// `scheme://host` of a URL.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// Inserts `text` after the first `<NAME …>` tag, if there is one.
fn insert_after_open_tag(html: &mut String, name: &str, text: &str) {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{name}");
    let mut from = 0;
    while let Some(at) = lower[from..].find(&open).map(|i| i + from) {
        let next = lower.as_bytes().get(at + open.len()).copied();
        if matches!(next, Some(b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/')) {
            if let Some(end) = lower[at..].find('>') {
                html.insert_str(at + end + 1, text);
            }
            return;
        }
        from = at + open.len();
    }
}

/// Every `href`, `src` and `action` attribute pointing at the web, into
/// the archive, as the replay's server-side rewriter does.
fn rewrite_links(html: &str, origin: &str, timestamp: &str) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / 8);
    let mut rest = html;
    let mut in_tag: Option<String> = None;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            let name: String = rest[1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            in_tag = (!name.is_empty()).then_some(name);
        } else if c == '>' {
            in_tag = None;
        }
        if let Some(tag) = &in_tag {
            if let Some((attr_len, quote)) = link_attribute(rest) {
                out.push_str(&rest[..attr_len]);
                rest = &rest[attr_len..];
                let end = rest.find(quote).unwrap_or(rest.len());
                out.push_str(&archived(&rest[..end], flag(tag), origin, timestamp));
                rest = &rest[end..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// ` href="`-like start at `s`: its length up to the value, and the quote.
fn link_attribute(s: &str) -> Option<(usize, char)> {
    let space = s.chars().next().filter(|c| c.is_ascii_whitespace())?;
    let after = &s[space.len_utf8()..];
    ["href=", "src=", "action="].iter().find_map(|a| {
        let head = after.get(..a.len())?;
        if !head.eq_ignore_ascii_case(a) {
            return None;
        }
        let quote = after[a.len()..]
            .chars()
            .next()
            .filter(|&q| q == '"' || q == '\'')?;
        Some((space.len_utf8() + a.len() + 1, quote))
    })
}

/// The replay's flag for what a tag loads.
fn flag(tag: &str) -> &'static str {
    match tag {
        "img" | "source" | "input" => "im_",
        "script" => "js_",
        "link" => "cs_",
        _ => "",
    }
}

/// One link's value as the replay writes it.
fn archived(value: &str, flag: &str, origin: &str, timestamp: &str) -> String {
    let scheme = origin.split("://").next().unwrap_or("https");
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        format!("https://web.archive.org/web/{timestamp}{flag}/{value}")
    } else if let Some(rest) = value.strip_prefix("//") {
        format!("/web/{timestamp}{flag}/{scheme}://{rest}")
    } else if value.starts_with('/') {
        format!("/web/{timestamp}{flag}/{origin}{value}")
    } else {
        // Fragments, javascript:, mailto:, data: and paths relative to
        // the page are left as they are.
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_go_into_the_archive_and_the_additions_are_there() {
        let page = "<html><head><title>t</title></head><body class=\"x\">\
                    <a href=\"/questions/1/a\">a</a><img src=\"https://i.sstatic.net/x.png\">\
                    <a href='#top'>top</a><script src=\"//cdn.sstatic.net/j.js\"></script></body></html>";
        let out = replayed(
            page,
            "https://stackoverflow.com/questions",
            "20190304050607",
        );
        assert!(
            out.contains("href=\"/web/20190304050607/https://stackoverflow.com/questions/1/a\"")
        );
        assert!(out.contains(
            "src=\"https://web.archive.org/web/20190304050607im_/https://i.sstatic.net/x.png\""
        ));
        assert!(out.contains("src=\"/web/20190304050607js_/https://cdn.sstatic.net/j.js\""));
        assert!(out.contains("href='#top'"));
        assert!(out.contains("<body class=\"x\">\n<!-- BEGIN WAYBACK TOOLBAR INSERT -->"));
        assert!(out.contains("<head>\n<script src=\"//archive.org/includes/analytics.js"));
        assert!(out.contains("FILE ARCHIVED ON 05:06:07 Mar 04, 2019 AND RETRIEVED"));
    }
}
