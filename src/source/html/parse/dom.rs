//! What summary reading needs of a document, so that one reading serves
//! both html5ever's tree (the reference) and the stream's tape (the fast
//! path): the two can then differ only in the nodes they build, which the
//! differential test compares, never in how a summary is read from them.

use ego_tree::NodeRef;
use scraper::Node;

/// A node of a parsed document: an element, a text or anything else
/// (comments), with the tree's links. `'t` is the document's lifetime.
pub(super) trait Dom<'t>: Copy + Eq {
    /// The element's local name, lowercase; `None` for other nodes.
    fn name(self) -> Option<&'t str>;
    /// The text of a text node.
    fn text(self) -> Option<&'t str>;
    fn attr(self, name: &str) -> Option<&'t str>;
    fn attrs(self) -> impl Iterator<Item = (&'t str, &'t str)>;
    /// The class tokens, in any order, maybe repeated.
    fn classes(self) -> impl Iterator<Item = &'t str>;
    fn parent(self) -> Option<Self>;
    fn first_child(self) -> Option<Self>;
    fn next_sibling(self) -> Option<Self>;
    fn prev_sibling(self) -> Option<Self>;

    fn is_element(self) -> bool {
        self.name().is_some()
    }

    fn has_class(self, class: &str) -> bool {
        self.classes().any(|c| c == class)
    }

    /// Whether the node is a summary, of either layout (any element with
    /// the class: what `own_nodes` leaves out).
    fn is_summary(self) -> bool {
        self.classes().any(is_summary_class)
    }
}

pub(super) fn is_summary_class(class: &str) -> bool {
    class == "s-post-summary" || class == "question-summary"
}

impl<'t> Dom<'t> for NodeRef<'t, Node> {
    fn name(self) -> Option<&'t str> {
        match self.value() {
            Node::Element(e) => Some(e.name()),
            _ => None,
        }
    }

    fn text(self) -> Option<&'t str> {
        match self.value() {
            Node::Text(t) => Some(t),
            _ => None,
        }
    }

    fn attr(self, name: &str) -> Option<&'t str> {
        match self.value() {
            Node::Element(e) => e.attr(name),
            _ => None,
        }
    }

    fn attrs(self) -> impl Iterator<Item = (&'t str, &'t str)> {
        let element = match self.value() {
            Node::Element(e) => Some(e),
            _ => None,
        };
        element.into_iter().flat_map(|e| e.attrs())
    }

    fn classes(self) -> impl Iterator<Item = &'t str> {
        let element = match self.value() {
            Node::Element(e) => Some(e),
            _ => None,
        };
        element.into_iter().flat_map(|e| e.classes())
    }

    fn parent(self) -> Option<Self> {
        NodeRef::parent(&self)
    }

    fn first_child(self) -> Option<Self> {
        NodeRef::first_child(&self)
    }

    fn next_sibling(self) -> Option<Self> {
        NodeRef::next_sibling(&self)
    }

    fn prev_sibling(self) -> Option<Self> {
        NodeRef::prev_sibling(&self)
    }
}

/// A pre-order walk of `root`'s subtree, `root` first, that leaves out
/// every other element for which `prune` holds, with all of its
/// descendants.
///
/// It climbs back by the ancestors it went down through, never by a
/// node's parent link: ego_tree's `reparent_from_id_append` (which
/// html5ever's adoption agency uses on misnested formatting tags) leaves
/// the parent links of all but the first and last moved children stale.
pub(crate) struct Walk<N> {
    next: Option<N>,
    root: N,
    /// The ancestors of `next` below `root`'s parent, outermost first.
    path: Vec<N>,
    prune: fn(N) -> bool,
}

impl<N: Copy> Walk<N> {
    pub(crate) fn new(root: N, prune: fn(N) -> bool) -> Self {
        Walk {
            next: Some(root),
            root,
            path: Vec::new(),
            prune,
        }
    }
}

impl<'t, N: Dom<'t>> Iterator for Walk<N> {
    type Item = N;

    fn next(&mut self) -> Option<N> {
        loop {
            let node = self.next.take()?;
            let pruned = node != self.root && (self.prune)(node);
            if !pruned {
                if let Some(child) = node.first_child() {
                    self.path.push(node);
                    self.next = Some(child);
                    return Some(node);
                }
            }
            self.next = self.climb(node);
            if !pruned {
                return Some(node);
            }
        }
    }
}

impl<'t, N: Dom<'t>> Walk<N> {
    /// The next sibling of `node` or of its nearest ancestor that has one,
    /// within the root's subtree.
    fn climb(&mut self, node: N) -> Option<N> {
        let mut at = node;
        loop {
            if at == self.root {
                return None;
            }
            if let Some(sibling) = at.next_sibling() {
                return Some(sibling);
            }
            at = self.path.pop()?;
        }
    }
}

pub(super) fn is_summary<'t, N: Dom<'t>>(n: N) -> bool {
    n.is_summary()
}

/// The nodes of `root`'s subtree in document order, `root` first, leaving
/// out every summary nested inside it with its whole subtree. Each node of a
/// page is visited by the walk of exactly one summary, so extracting every
/// summary of even a pathologically nested page stays linear.
pub(super) fn own_nodes<'t, N: Dom<'t>>(root: N) -> Walk<N> {
    Walk::new(root, is_summary)
}

/// The elements of `root`'s own subtree (see [`own_nodes`]), `root` first.
pub(super) fn own_elements<'t, N: Dom<'t>>(root: N) -> impl Iterator<Item = N> {
    own_nodes(root).filter(|n| n.is_element())
}

/// The text of `el`, without the text of any summary nested in it.
pub(super) fn own_text<'t, N: Dom<'t>>(el: N) -> String {
    let mut out = String::new();
    for node in own_nodes(el) {
        if let Some(t) = node.text() {
            out.push_str(t);
        }
    }
    out
}

pub(super) fn attr<'t, N: Dom<'t>>(el: N, name: &str) -> Option<String> {
    el.attr(name).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scraper::Html;

    /// The walk's nodes against the order a stack of children gives.
    fn same_as_children_order(html: &str) {
        let doc = Html::parse_document(html);
        for node in doc.tree.nodes() {
            let mut stack = vec![node];
            let mut want = Vec::new();
            while let Some(n) = stack.pop() {
                want.push(n.id());
                stack.extend(n.children().rev());
            }
            let got: Vec<_> = Walk::new(node, |_| false).map(|n| n.id()).collect();
            assert_eq!(got, want, "{html}: from {:?}", node.value());
        }
    }

    #[test]
    fn the_walk_survives_the_adoption_agency() {
        // A second `<a>` while one is open makes the tree builder move the
        // block's children into a new `a`, leaving the middle ones' parent
        // links stale; the second `p` closes the first, the last of them.
        same_as_children_order("<a><div>xx<p></i><p><a>");
        same_as_children_order("<a href=x><div>1<b>2</b>3<i>4</i>5<a>6</a></div>7</a>");
    }
}
