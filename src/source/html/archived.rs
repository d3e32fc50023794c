//! What a web archive's replay does to a page, undone where it would change
//! a record: the Wayback Machine rewrites every link into the archive
//! (`https://web.archive.org/web/20190304050607/https://stackoverflow.com/questions/…`,
//! `/web/20190304050607/https://…` relative to the archive, `…im_/` for
//! images). Its toolbar, injected scripts and closing comments lie outside
//! the listing and are passed over as any other markup is.

/// The URL an archived link points to: the link itself unless it is a
/// Wayback Machine replay link (`[https://web.archive.org]/web/{timestamp}
/// [flags]/{original}`).
pub fn original_url(href: &str) -> &str {
    let trimmed = href.trim();
    let after_host = ["https://", "http://", "//"]
        .iter()
        .find_map(|scheme| trimmed.strip_prefix(scheme))
        .and_then(|rest| {
            let host_end = rest.find('/').unwrap_or(rest.len());
            ARCHIVE_HOSTS
                .contains(&rest[..host_end].to_ascii_lowercase().as_str())
                .then(|| &rest[host_end..])
        })
        .unwrap_or(trimmed);
    let Some(rest) = after_host.strip_prefix("/web/") else {
        return href;
    };
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let Some((flags, target)) = rest[digits..].split_once('/') else {
        return href;
    };
    // A timestamp of 1 to 14 digits, then flags such as `im_`, `id_`, `*`.
    let flags_ok = flags
        .chars()
        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '*');
    let is_url = ["http://", "https://"]
        .iter()
        .any(|s| target.len() > s.len() && target[..s.len()].eq_ignore_ascii_case(s));
    if (1..=14).contains(&digits) && flags_ok && is_url {
        target
    } else {
        href
    }
}

/// The Wayback Machine's hosts, past and present.
const ARCHIVE_HOSTS: [&str; 3] = [
    "web.archive.org",
    "wayback.archive.org",
    "web-beta.archive.org",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_links_give_the_original_and_others_are_left_alone() {
        let so = "https://stackoverflow.com/questions/1/a";
        for archived in [
            "https://web.archive.org/web/20190304050607/https://stackoverflow.com/questions/1/a",
            "http://web.archive.org/web/20190304050607/https://stackoverflow.com/questions/1/a",
            "//web.archive.org/web/2019/https://stackoverflow.com/questions/1/a",
            "/web/20190304050607/https://stackoverflow.com/questions/1/a",
            "/web/20190304050607id_/https://stackoverflow.com/questions/1/a",
            " /web/20190304050607im_/https://stackoverflow.com/questions/1/a ",
            "https://wayback.archive.org/web/20100101000000*/https://stackoverflow.com/questions/1/a",
        ] {
            assert_eq!(original_url(archived), so, "{archived}");
        }
        for not in [
            "/questions/1/a",
            "https://stackoverflow.com/web/2019/https://x.org/",
            "/web/",
            "/web/2019/",
            "/web/2019/questions/1",
            "/web/abc/https://stackoverflow.com/",
            "/web/123456789012345/https://stackoverflow.com/",
            "/web/2019IM_/https://stackoverflow.com/",
            "https://web.archive.org/details/x",
            "",
        ] {
            assert_eq!(original_url(not), not, "{not}");
        }
    }
}
