//! How a listing page's URL is spelled: the tag percent-encoded as one path
//! segment, then tab, page and page size.
//!
//! This is the HTML source's concern rather than configuration's; it sits
//! here, on its own and depending only on `Tab`, until URL building moves
//! into the source module.

use super::Tab;

/// The listing URL of one page under `base_url` (no trailing slash).
pub fn listing_url(base_url: &str, tag: &str, tab: Tab, page: u32, pagesize: u32) -> String {
    format!(
        "{}/questions/tagged/{}?tab={}&page={}&pagesize={}",
        base_url,
        encode_tag(tag),
        tab.as_str(),
        page,
        pagesize
    )
}

/// Percent-encodes everything but the characters Stack Exchange tags are
/// spelled with, so `+` and `#` never turn into a space or a fragment.
pub fn encode_tag(tag: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    const KEEP: &percent_encoding::AsciiSet =
        &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');
    utf8_percent_encode(tag, KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_characters_survive_and_plus_and_hash_are_escaped() {
        assert_eq!(encode_tag("c++"), "c%2B%2B");
        assert_eq!(encode_tag("c#"), "c%23");
        assert_eq!(encode_tag(".net"), ".net");
        assert_eq!(encode_tag("node.js"), "node.js");
    }
}
