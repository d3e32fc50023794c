//! A body's text in the charset it declares. Live Stack Exchange pages and
//! API responses are UTF-8, but archived and saved copies may have been
//! re-encoded (a page saved as windows-1252, an archive serving a capture in
//! its original charset): read as UTF-8 their non-ASCII text would turn to
//! replacement characters, and the records would differ from the page's.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8};

/// How far into a body a `<meta>` charset is looked for. Browsers look at
/// the first 1024 bytes; an archive's replay injects its own scripts and
/// styles at the top of `<head>`, before the page's `<meta>`.
const PRESCAN_BYTES: usize = 16 * 1024;

/// `body` decoded by its byte-order mark, else the `charset` of
/// `content_type` (an HTTP header), else a `<meta>` charset near its
/// start; UTF-8 (invalid bytes replaced) when none says otherwise.
pub fn decode<'a>(body: &'a [u8], content_type: Option<&str>) -> Cow<'a, str> {
    let declared = Encoding::for_bom(body)
        .map(|(encoding, _)| encoding)
        .or_else(|| content_type.and_then(charset_in).and_then(label))
        .or_else(|| meta_charset(body));
    match declared {
        Some(encoding) if encoding != UTF_8 => encoding.decode_with_bom_removal(body).0,
        _ => String::from_utf8_lossy(body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body)),
    }
}

/// The encoding a charset label names; a page cannot declare UTF-16 in
/// its own ASCII-compatible bytes, so that label means UTF-8 (as in
/// browsers).
fn label(name: &str) -> Option<&'static Encoding> {
    Encoding::for_label(name.as_bytes()).map(|e| e.output_encoding())
}

/// The value of a `charset=` parameter in `text` (`text/html; charset=x`).
fn charset_in(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("charset")?;
    let rest = text[at + "charset".len()..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let rest = rest.trim_start_matches(['"', '\'']);
    let end = rest
        .find(|c: char| {
            c == '"' || c == '\'' || c == ';' || c == '>' || c == '/' || c.is_whitespace()
        })
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|l| !l.is_empty())
}

/// The charset of the first `<meta>` near the start of `body` that
/// declares one (`<meta charset=…>`, `<meta http-equiv="Content-Type"
/// content="…; charset=…">`).
fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let start = &body[..body.len().min(PRESCAN_BYTES)];
    let text = String::from_utf8_lossy(start);
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("<meta").map(|i| i + from) {
        let end = lower[at..].find('>').map_or(lower.len(), |i| at + i);
        if let Some(encoding) = charset_in(&text[at..end]).and_then(label) {
            return Some(encoding);
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_charset_decides() {
        // "café" in windows-1252.
        let latin = b"<html><head><meta charset=\"windows-1252\"></head>caf\xe9</html>";
        assert!(decode(latin, None).contains("café"));
        let bare = b"<html>caf\xe9</html>";
        assert!(decode(bare, Some("text/html; charset=ISO-8859-1")).contains("café"));
        assert!(
            decode(bare, None).contains("caf\u{fffd}"),
            "UTF-8 unless declared"
        );
        let http_equiv = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\" />caf\xe9";
        assert!(decode(http_equiv, None).contains("café"));
        // The header wins over the page; a BOM over both.
        let utf8 = "<meta charset=\"windows-1252\">café".as_bytes();
        assert!(decode(utf8, Some("text/html; charset=utf-8")).contains("café"));
        let bom = [b"\xef\xbb\xbf".as_slice(), utf8].concat();
        assert_eq!(
            decode(&bom, Some("text/html; charset=windows-1252")),
            "<meta charset=\"windows-1252\">café"
        );
        // Shift_JIS, and a label no encoding has.
        assert_eq!(
            decode(b"\x93\xfa\x96\x7b", Some("text/html;charset=Shift_JIS")),
            "日本"
        );
        assert!(decode(b"caf\xe9", Some("text/html; charset=no-such")).contains('\u{fffd}'));
        // A page cannot declare UTF-16 in ASCII: read as UTF-8.
        assert_eq!(
            decode("é".as_bytes(), Some("text/html; charset=utf-16")),
            "é"
        );
    }
}
