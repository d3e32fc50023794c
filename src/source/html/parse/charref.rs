//! Character references in text and attribute values, decoded as
//! html5ever's tokenizer decodes them, from its own table, for the list
//! region's scan (`stream`).

use std::borrow::Cow;

use markup5ever::data::{C1_REPLACEMENTS, NAMED_ENTITIES};

/// Why the list region's scan gave up (here, or in `stream`); never shown,
/// the tree is built instead.
pub(super) struct Unhandled;

pub(super) type Step<T = ()> = Result<T, Unhandled>;

/// Text or an attribute value as the tree holds it: character references
/// decoded, line breaks normalized; `Unhandled` for the few references
/// whose reading depends on more than their own characters.
pub(super) fn decode(raw: &str) -> Step<Cow<'_, str>> {
    if !raw.bytes().any(|b| b == b'&' || b == b'\r') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '\r']) {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if rest.as_bytes()[i] == b'\r' {
            out.push('\n');
            rest = after.strip_prefix('\n').unwrap_or(after);
            continue;
        }
        rest = match after.as_bytes().first() {
            Some(b'#') => match numeric_reference(&after[1..]) {
                Some((c, used)) => {
                    out.push(c);
                    &after[1 + used..]
                }
                None => {
                    out.push('&');
                    after
                }
            },
            Some(b) if b.is_ascii_alphanumeric() => match named_reference(after)? {
                Some((text, used)) => {
                    out.push_str(&text);
                    &after[used..]
                }
                None => {
                    out.push('&');
                    after
                }
            },
            Some(b'\r') => return Err(Unhandled),
            // Not a reference: the `&` is text.
            _ => {
                out.push('&');
                after
            }
        };
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// A named reference at the start of `s` (just past the `&`, at an ASCII
/// letter or digit): its text and the length read, or `None` when the
/// tokenizer reads the `&` as text. Names ending in `;` are decoded from
/// the tokenizer's own table; a name without one that the table knows
/// (`&copy`, whose reading depends on what follows and on being in an
/// attribute) is left to the tree builder.
fn named_reference(s: &str) -> Step<Option<(String, usize)>> {
    let run = s.bytes().take_while(u8::is_ascii_alphanumeric).count();
    // The longest name in the table has 32 characters.
    if run > 40 {
        return Err(Unhandled);
    }
    // The table's keys are names without the `&`.
    let mut key = String::with_capacity(run + 1);
    key.push_str(&s[..run]);
    let next = s.as_bytes().get(run).copied();
    if next == Some(b';') {
        key.push(';');
        if let Some(&(c1, c2)) = NAMED_ENTITIES.get(&key) {
            if c1 != 0 {
                let text = [c1, c2]
                    .into_iter()
                    .filter(|&c| c != 0)
                    .map(|c| char::from_u32(c).ok_or(Unhandled))
                    .collect::<Step<String>>()?;
                return Ok(Some((text, run + 1)));
            }
        }
        key.pop();
    }
    let complete_prefix = (1..=key.len()).any(|end| {
        NAMED_ENTITIES
            .get(&key[..end])
            .is_some_and(|&(c1, _)| c1 != 0)
    });
    // A carriage return right after the name reaches the tokenizer before
    // its line ending is normalized.
    if complete_prefix || next == Some(b'\r') {
        return Err(Unhandled);
    }
    Ok(None)
}

/// A numeric reference at the start of `s` (just past the `&#`): the
/// character and the length read, as the tokenizer decodes it (a missing
/// `;` and a disallowed number are parse errors, not failures); `None`
/// when no digit follows and the `&#` is text.
fn numeric_reference(s: &str) -> Option<(char, usize)> {
    let (digits, radix, skip) = match s.as_bytes().first() {
        Some(b'x' | b'X') => (&s[1..], 16, 1),
        _ => (s, 10, 0),
    };
    let len = digits.chars().take_while(|c| c.is_digit(radix)).count();
    if len == 0 {
        return None;
    }
    let n = digits[..len]
        .chars()
        .try_fold(0u32, |n, c| {
            let n = n.checked_mul(radix)?.checked_add(c.to_digit(radix)?)?;
            (n <= 0x10ffff).then_some(n)
        })
        .unwrap_or(u32::MAX);
    let c = match n {
        0 | 0xd800..=0xdfff | 0x110000.. => '\u{fffd}',
        0x80..=0x9f => C1_REPLACEMENTS
            .get((n - 0x80) as usize)
            .copied()
            .flatten()
            .or_else(|| char::from_u32(n))?,
        _ => char::from_u32(n)?,
    };
    let semicolon = usize::from(digits.as_bytes().get(len) == Some(&b';'));
    Some((c, skip + len + semicolon))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: &str) -> Option<String> {
        decode(raw).ok().map(Cow::into_owned)
    }

    #[test]
    fn references_read_as_the_tokenizer_reads_them() {
        assert_eq!(text("a &amp; b").as_deref(), Some("a & b"));
        assert_eq!(
            text("&acE;&nbsp;").as_deref(),
            Some("\u{223e}\u{333}\u{a0}")
        );
        assert_eq!(text("&#65;&#x42&#X43;").as_deref(), Some("ABC"));
        assert_eq!(
            text("&#0;&#xD800;&#1114112;").as_deref(),
            Some("\u{fffd}".repeat(3).as_str())
        );
        assert_eq!(text("&#128;&#x81;").as_deref(), Some("\u{20ac}\u{81}"));
        assert_eq!(text("&#3#39;").as_deref(), Some("\u{3}#39;"));
        assert_eq!(
            text("AT&T &; &# &x=1 &zz;").as_deref(),
            Some("AT&T &; &# &x=1 &zz;")
        );
        assert_eq!(text("a\r\nb\rc").as_deref(), Some("a\nb\nc"));
        assert_eq!(text("plain").as_deref(), Some("plain"));
    }

    #[test]
    fn legacy_names_without_semicolon_are_left_to_the_tree() {
        for raw in ["&copy 2020", "&amp", "&notit;", "&ampx", "&\r", "&d\r"] {
            assert_eq!(text(raw), None, "{raw:?}");
        }
        // A name of 41 characters or more is none of the table's.
        assert_eq!(text(&format!("&{};", "a".repeat(41))), None);
    }
}
