//! The fast path: the list region read by one forward scan of its bytes
//! into a tape, a flat array of its nodes in document order (each element
//! followed by its descendants), instead of html5ever's tokenizer, tree
//! builder and DOM, which were most of a page's CPU. The scan follows the
//! HTML tokenizer's rules for tags, attributes, comments and character
//! references (decoded from the tokenizer's own table), and the tree
//! builder's where they are plain nesting: an end tag closing the current
//! element, a stray end tag no open element answers (ignored), an `a`
//! inside the `a` that is the current element (closed first).
//!
//! It is exact by refusing, not by knowing everything: markup whose tree
//! the tree builder shapes by rules of its own (an end tag closing more
//! than the current element, a block meeting an open `p`, tables, forms,
//! raw text other than `script` and `style`, SVG holding anything but
//! drawing elements, a legacy reference without its `;`, an element left
//! open at the region's end, …) makes [`read_region`] return `None`, and
//! the caller builds html5ever's tree as before. Whatever it accepts, its
//! tape has the nodes, text and attributes of that tree, and the summaries
//! are read from it by the same code (see `dom`); the differential tests
//! (`tests/parse_differential.rs`, `tests/parser_props.rs`) hold it to the
//! tree on every fixture and on generated pages.

use std::borrow::Cow;
use std::ops::Range;

use super::charref::{decode, Step, Unhandled};
#[cfg(test)]
use super::dom::is_summary;
use super::dom::{is_summary_class, Dom};
use super::tags::{is_drawing, is_heading, is_phrasing, is_refused, is_void};
use super::{read_found, ParseError, ParsedPage};

/// Reads the summaries of the region `region` of `html`, as
/// `read_summaries` does from the region's tree; `None` when the region
/// holds markup this scan does not reproduce exactly (see the module
/// comment): the caller then builds the tree.
pub(super) fn read_region(
    html: &str,
    region: Range<usize>,
) -> Option<Result<Option<ParsedPage>, ParseError>> {
    let tape = Tape::of(html.get(region)?)?;
    let root = TapeNode { tape: &tape, at: 0 };
    // The tree's container would be the region's parent when the list
    // itself names a question (see `child_holding`): left to the tree.
    if root.attr("data-post-id").is_some() {
        return None;
    }
    let nodes = (0..tape.nodes.len()).map(|at| TapeNode { tape: &tape, at });
    let with = |class: &str| {
        nodes
            .clone()
            .filter(|n| n.name() == Some("div") && n.has_class(class))
            .collect::<Vec<_>>()
    };
    Some(read_found(
        with("s-post-summary"),
        || with("question-summary"),
        Some(root),
    ))
}

/// The nodes of a region, in document order: each element is followed by
/// its descendants, and `end` says where they stop.
struct Tape<'a> {
    nodes: Vec<TapeEntry<'a>>,
    attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

struct TapeEntry<'a> {
    kind: Kind<'a>,
    parent: Option<usize>,
    prev: Option<usize>,
    /// One past the last of its descendants.
    end: usize,
}

enum Kind<'a> {
    Element {
        name: Cow<'a, str>,
        attrs: Range<usize>,
        /// Where in `Tape::attrs` its class attribute is.
        class: Option<usize>,
        /// Whether a class is a summary's (see `dom::is_summary`).
        summary: bool,
        /// In the SVG namespace.
        foreign: bool,
    },
    Text(Cow<'a, str>),
    Comment,
}

#[derive(Clone, Copy)]
struct TapeNode<'t, 'a> {
    tape: &'t Tape<'a>,
    at: usize,
}

impl PartialEq for TapeNode<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && std::ptr::eq(self.tape, other.tape)
    }
}

impl Eq for TapeNode<'_, '_> {}

impl<'t, 'a: 't> TapeNode<'t, 'a> {
    fn entry(self) -> &'t TapeEntry<'a> {
        // `at` is always an index of this tape (see the constructors).
        &self.tape.nodes[self.at]
    }

    fn at(self, at: usize) -> Self {
        TapeNode {
            tape: self.tape,
            at,
        }
    }

    fn own_attrs(self) -> &'t [(Cow<'a, str>, Cow<'a, str>)] {
        match &self.entry().kind {
            Kind::Element { attrs, .. } => self.tape.attrs.get(attrs.clone()).unwrap_or(&[]),
            _ => &[],
        }
    }
}

impl<'t, 'a: 't> Dom<'t> for TapeNode<'t, 'a> {
    fn name(self) -> Option<&'t str> {
        match &self.entry().kind {
            Kind::Element { name, .. } => Some(name),
            _ => None,
        }
    }

    fn text(self) -> Option<&'t str> {
        match &self.entry().kind {
            Kind::Text(t) => Some(t),
            _ => None,
        }
    }

    fn attr(self, name: &str) -> Option<&'t str> {
        self.own_attrs()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| &**v)
    }

    fn attrs(self) -> impl Iterator<Item = (&'t str, &'t str)> {
        self.own_attrs().iter().map(|(n, v)| (&**n, &**v))
    }

    fn classes(self) -> impl Iterator<Item = &'t str> {
        let class = match &self.entry().kind {
            Kind::Element {
                class: Some(at), ..
            } => self.tape.attrs.get(*at),
            _ => None,
        };
        class
            .into_iter()
            .flat_map(|(_, value)| value.split_ascii_whitespace())
    }

    fn is_summary(self) -> bool {
        matches!(self.entry().kind, Kind::Element { summary: true, .. })
    }

    fn parent(self) -> Option<Self> {
        self.entry().parent.map(|p| self.at(p))
    }

    fn first_child(self) -> Option<Self> {
        (self.entry().end > self.at + 1).then(|| self.at(self.at + 1))
    }

    fn next_sibling(self) -> Option<Self> {
        let parent = self.entry().parent?;
        let next = self.entry().end;
        (next < self.tape.nodes.get(parent)?.end).then(|| self.at(next))
    }

    fn prev_sibling(self) -> Option<Self> {
        self.entry().prev.map(|p| self.at(p))
    }
}

/// An open element on the builder's stack.
struct Open {
    at: usize,
    last_child: Option<usize>,
}

struct Builder<'a> {
    src: &'a str,
    pos: usize,
    tape: Tape<'a>,
    open: Vec<Open>,
    /// Open HTML elements the tree builder's rules look for, counted so
    /// that no rule walks the stack (a hostile page may nest deep).
    open_count: OpenCount,
    /// The attributes of the last tag read (names lowercased, values as
    /// written): one buffer for all tags rather than one per tag.
    attrs: Vec<(Cow<'a, str>, &'a str)>,
}

/// A start or end tag as the tokenizer emits it; its attributes are in
/// `Builder::attrs`.
struct Tag<'a> {
    name: Cow<'a, str>,
    self_closing: bool,
}

impl<'a> Tape<'a> {
    /// The tape of a region that must be one element, from its start tag
    /// to the end tag that closes it.
    fn of(src: &'a str) -> Option<Tape<'a>> {
        let mut b = Builder {
            src,
            pos: 0,
            tape: Tape {
                nodes: Vec::with_capacity(src.len() / 48),
                attrs: Vec::with_capacity(src.len() / 64),
            },
            open: Vec::new(),
            open_count: OpenCount::default(),
            attrs: Vec::new(),
        };
        b.run().ok()?;
        Some(b.tape)
    }
}

impl<'a> Builder<'a> {
    fn byte(&self, i: usize) -> Step<u8> {
        self.src.as_bytes().get(i).copied().ok_or(Unhandled)
    }

    fn run(&mut self) -> Step {
        let root = self.start_tag_at(0)?;
        let is_container = root.name == "div"
            && self
                .attrs
                .iter()
                .find(|(n, _)| n == "id")
                .is_some_and(|(_, id)| super::region::CONTAINER_IDS.contains(&&**id));
        if !is_container {
            return Err(Unhandled);
        }
        self.start(root)?;
        while !self.open.is_empty() {
            self.step()?;
        }
        // The root closed: the region must end right there.
        if self.pos == self.src.len() {
            Ok(())
        } else {
            Err(Unhandled)
        }
    }

    /// One text run or one piece of markup.
    fn step(&mut self) -> Step {
        let from = self.pos;
        let mut lt = from;
        loop {
            lt += self
                .src
                .get(lt..)
                .ok_or(Unhandled)?
                .find('<')
                .ok_or(Unhandled)?;
            let next = self.byte(lt + 1)?;
            if next.is_ascii_alphabetic() || matches!(next, b'/' | b'!' | b'?') {
                break;
            }
            // Any other `<` is text.
            lt += 1;
        }
        if lt > from {
            let text = decode(self.src.get(from..lt).ok_or(Unhandled)?)?;
            self.append_text(text);
        }
        self.pos = lt;
        match self.byte(lt + 1)? {
            b'/' => {
                if !self.byte(lt + 2)?.is_ascii_alphabetic() {
                    return Err(Unhandled);
                }
                let tag = self.tag(lt + 2)?;
                self.end(&tag.name)
            }
            b'!' => self.comment(lt),
            b'?' => Err(Unhandled),
            _ => {
                let tag = self.start_tag_at(lt)?;
                self.start(tag)
            }
        }
    }

    fn start_tag_at(&mut self, lt: usize) -> Step<Tag<'a>> {
        if self.byte(lt)? != b'<' || !self.byte(lt + 1)?.is_ascii_alphabetic() {
            return Err(Unhandled);
        }
        self.tag(lt + 1)
    }

    /// `<!-- … -->`; any other `<!` (a doctype, CDATA, a bogus comment)
    /// is left to the tree builder.
    fn comment(&mut self, lt: usize) -> Step {
        let body = lt + 4;
        let rest = self.src.get(lt..).ok_or(Unhandled)?;
        if !rest.starts_with("<!--") {
            return Err(Unhandled);
        }
        let text = &rest[4..];
        // `<!-->`, `<!--->` and `--!>` end a comment early.
        if text.starts_with('>') || text.starts_with("->") {
            return Err(Unhandled);
        }
        let end = text.find("-->").ok_or(Unhandled)?;
        if text[..end].contains("--!>") || text[..end].ends_with("--!") {
            return Err(Unhandled);
        }
        self.append(Kind::Comment, true);
        self.pos = body + end + 3;
        Ok(())
    }

    /// Reads a tag from its name (at `i`) to its `>`, as the tokenizer's
    /// tag, attribute and value states do.
    fn tag(&mut self, mut i: usize) -> Step<Tag<'a>> {
        let src = self.src;
        let delimits = |b: u8| is_space(b) || b == b'/' || b == b'>';
        let name_start = i;
        while !delimits(self.byte(i)?) {
            i += 1;
        }
        let mut tag = Tag {
            name: lower(src.get(name_start..i).ok_or(Unhandled)?),
            self_closing: false,
        };
        self.attrs.clear();
        loop {
            while is_space(self.byte(i)?) {
                i += 1;
            }
            match self.byte(i)? {
                b'>' => break,
                b'/' => {
                    i += 1;
                    if self.byte(i)? == b'>' {
                        tag.self_closing = true;
                        break;
                    }
                    continue;
                }
                _ => {}
            }
            // A name's first character is taken whatever it is (even `=`).
            let start = i;
            i += 1;
            while !delimits(self.byte(i)?) && self.byte(i)? != b'=' {
                i += 1;
            }
            let name = src.get(start..i).ok_or(Unhandled)?;
            while is_space(self.byte(i)?) {
                i += 1;
            }
            let mut value = "";
            if self.byte(i)? == b'=' {
                i += 1;
                while is_space(self.byte(i)?) {
                    i += 1;
                }
                match self.byte(i)? {
                    q @ (b'"' | b'\'') => {
                        let close = src.get(i + 1..).ok_or(Unhandled)?;
                        let len = close.find(char::from(q)).ok_or(Unhandled)?;
                        value = &close[..len];
                        i += len + 2;
                    }
                    // `a=>`: an empty value, and the tag ends.
                    b'>' => {}
                    _ => {
                        let start = i;
                        while !is_space(self.byte(i)?) && self.byte(i)? != b'>' {
                            i += 1;
                        }
                        value = src.get(start..i).ok_or(Unhandled)?;
                    }
                }
            }
            let name = lower(name);
            // The first of repeated attributes wins.
            if self.attrs.len() == MAX_ATTRIBUTES {
                return Err(Unhandled);
            }
            if !self.attrs.iter().any(|(n, _)| *n == name) {
                self.attrs.push((name, value));
            }
        }
        self.pos = i + 1;
        Ok(tag)
    }

    /// A start tag, by the tree builder's rules for the body.
    fn start(&mut self, tag: Tag<'a>) -> Step {
        if self.in_foreign() {
            if !is_drawing(&tag.name) {
                return Err(Unhandled);
            }
            return self.open_foreign(tag);
        }
        let name = &*tag.name;
        if name == "svg" {
            return self.open_foreign(tag);
        }
        let counts = self.open_count;
        if is_refused(name) || (counts.p > 0 && !is_phrasing(name)) {
            return Err(Unhandled);
        }
        // An `a` inside an `a` (community-wiki posts link their revisions
        // around the author's link): when the open one is the current
        // element, the adoption agency closes it and opens a sibling.
        if name == "a" && self.current_name() == Some("a") {
            self.close();
        }
        let current = self.current_name();
        // A new list item closes an open one unless a list stands between
        // them; only the plain case (none open, or a list the current
        // element) is read here.
        let in_list = matches!(current, Some("ul" | "ol" | "dl" | "menu" | "dir"));
        let refused = match name {
            "a" => self.open_count.a > 0,
            "li" => counts.li > 0 && !in_list,
            "dd" | "dt" => counts.dd_dt > 0 && !in_list,
            _ if is_heading(name) => current.is_some_and(is_heading),
            _ => false,
        };
        if refused {
            return Err(Unhandled);
        }
        let void = is_void(name);
        let raw = matches!(name, "script" | "style");
        let raw_name = if raw { Some(tag.name.clone()) } else { None };
        self.open_element(tag, false)?;
        if void {
            self.close();
        } else if let Some(name) = raw_name {
            self.raw_text(&name)?;
        }
        Ok(())
    }

    fn open_foreign(&mut self, tag: Tag<'a>) -> Step {
        // Namespaced attributes (`xlink:href`) are stored under another
        // name by the tree builder.
        if self
            .attrs
            .iter()
            .any(|(n, _)| n.contains(':') || n == "xmlns")
        {
            return Err(Unhandled);
        }
        let self_closing = tag.self_closing;
        self.open_element(tag, true)?;
        if self_closing {
            self.close();
        }
        Ok(())
    }

    /// An end tag: the current element's closes it; one that no open
    /// element answers is ignored by the tree builder (but for the few it
    /// turns into elements or uses to leave the body); any other closes
    /// more than one element, by rules left to the tree builder.
    fn end(&mut self, name: &str) -> Step {
        if self.current_name() != Some(name) {
            // Real lists nest a few dozen deep; the walk is bounded.
            if self.open.len() > MAX_WALK {
                return Err(Unhandled);
            }
            let answered = self.open_names().any(|n| n == name)
                || (is_heading(name) && self.open_count.heading > 0);
            let special = matches!(name, "p" | "br" | "body" | "html" | "form" | "template");
            let stray = !(self.in_foreign() || special || answered);
            return if stray { Ok(()) } else { Err(Unhandled) };
        }
        self.close();
        Ok(())
    }

    /// The text of a `script` or `style` up to its end tag, which the
    /// next step reads.
    fn raw_text(&mut self, name: &str) -> Step {
        let rest = self.src.get(self.pos..).ok_or(Unhandled)?;
        let bytes = rest.as_bytes();
        let mut from = 0;
        let end = loop {
            let lt = from
                + rest
                    .get(from..)
                    .ok_or(Unhandled)?
                    .find("</")
                    .ok_or(Unhandled)?;
            let after = lt + 2 + name.len();
            let named = bytes
                .get(lt + 2..after)
                .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()));
            if named
                && bytes
                    .get(after)
                    .is_some_and(|&b| is_space(b) || b == b'/' || b == b'>')
            {
                break lt;
            }
            from = lt + 2;
        };
        let text = rest.get(..end).ok_or(Unhandled)?;
        // Script text has escape states of its own around `<!--`.
        if name == "script" && text.contains("<!--") {
            return Err(Unhandled);
        }
        if !text.is_empty() {
            let text = if text.contains('\r') {
                Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
            } else {
                Cow::Borrowed(text)
            };
            self.append_text(text);
        }
        self.pos += end;
        Ok(())
    }

    fn current(&self) -> Option<&TapeEntry<'a>> {
        self.tape.nodes.get(self.open.last()?.at)
    }

    fn current_name(&self) -> Option<&str> {
        match &self.current()?.kind {
            Kind::Element { name, .. } => Some(name),
            _ => None,
        }
    }

    fn in_foreign(&self) -> bool {
        matches!(
            self.current().map(|e| &e.kind),
            Some(Kind::Element { foreign: true, .. })
        )
    }

    fn open_names(&self) -> impl Iterator<Item = &str> {
        self.open
            .iter()
            .rev()
            .filter_map(|o| match &self.tape.nodes.get(o.at)?.kind {
                Kind::Element { name, .. } => Some(&**name),
                _ => None,
            })
    }

    fn open_element(&mut self, tag: Tag<'a>, foreign: bool) -> Step {
        let start = self.tape.attrs.len();
        let mut class = None;
        for (name, value) in self.attrs.drain(..) {
            if name == "class" {
                class = Some(self.tape.attrs.len());
            }
            self.tape.attrs.push((name, decode(value)?));
        }
        // The prune test of every walk: worked out once per element.
        let summary = class
            .and_then(|at| self.tape.attrs.get(at))
            .is_some_and(|(_, value)| value.split_ascii_whitespace().any(is_summary_class));
        if !foreign {
            self.open_count.add(&tag.name, 1);
        }
        let kind = Kind::Element {
            name: tag.name,
            attrs: start..self.tape.attrs.len(),
            class,
            summary,
            foreign,
        };
        let at = self.append(kind, false);
        self.open.push(Open {
            at,
            last_child: None,
        });
        Ok(())
    }

    /// Appends text to the current element: to its last child when that
    /// is text already (the tree builder's rule, met after an ignored end
    /// tag), else as a new node.
    fn append_text(&mut self, text: Cow<'a, str>) {
        let last = self.open.last().and_then(|open| open.last_child);
        if let Some(entry) = last.and_then(|at| self.tape.nodes.get_mut(at)) {
            if let Kind::Text(before) = &mut entry.kind {
                before.to_mut().push_str(&text);
                return;
            }
        }
        self.append(Kind::Text(text), true);
    }

    /// Appends a node as the current element's last child; `leaf` nodes
    /// end where they start.
    fn append(&mut self, kind: Kind<'a>, leaf: bool) -> usize {
        let at = self.tape.nodes.len();
        let (parent, prev) = match self.open.last_mut() {
            Some(open) => (Some(open.at), open.last_child.replace(at)),
            None => (None, None),
        };
        self.tape.nodes.push(TapeEntry {
            kind,
            parent,
            prev,
            end: if leaf { at + 1 } else { usize::MAX },
        });
        at
    }

    fn close(&mut self) {
        let end = self.tape.nodes.len();
        if let Some(open) = self.open.pop() {
            if let Some(entry) = self.tape.nodes.get_mut(open.at) {
                entry.end = end;
                if let Kind::Element {
                    name,
                    foreign: false,
                    ..
                } = &entry.kind
                {
                    self.open_count.add(name, -1);
                }
            }
        }
    }
}

/// The deepest stack a stray end tag is looked up in.
const MAX_WALK: usize = 64;

/// The most attributes a tag may have here: each is checked against the
/// ones before it (the first of repeated attributes wins).
const MAX_ATTRIBUTES: usize = 64;

/// Open elements of the names the tree builder's rules look for.
#[derive(Debug, Default, Clone, Copy)]
struct OpenCount {
    p: usize,
    a: usize,
    li: usize,
    dd_dt: usize,
    heading: usize,
}

impl OpenCount {
    fn add(&mut self, name: &str, delta: isize) {
        let count = match name {
            "p" => &mut self.p,
            "a" => &mut self.a,
            "li" => &mut self.li,
            "dd" | "dt" => &mut self.dd_dt,
            _ if is_heading(name) => &mut self.heading,
            _ => return,
        };
        *count = count.saturating_add_signed(delta);
    }
}

/// The tokenizer's whitespace; a carriage return is a line feed once the
/// input stream is normalized.
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// Tag and attribute names are lowercased by the tokenizer.
fn lower(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Whether any node of the tape is a summary nested in another: used by
/// the tests to tell the broken-markup pages the stream reads itself.
#[cfg(test)]
pub(super) fn nests_summaries(html: &str) -> Option<bool> {
    let region = super::region::list_region(html)?;
    let tape = Tape::of(html.get(region)?)?;
    Some((0..tape.nodes.len()).any(|at| {
        let node = TapeNode { tape: &tape, at };
        is_summary(node) && std::iter::successors(node.parent(), |n| n.parent()).any(is_summary)
    }))
}
