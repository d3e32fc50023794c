//! The tree builder's categories of tags, as far as the list region's
//! own scan (`stream`) needs them: what it refuses, what has no children,
//! what an open `p` allows, which SVG elements it reads.

/// Start tags whose tree the builder shapes by rules of its own: the
/// document's frame, tables, forms, raw and escapable text other than
/// `script` and `style`, and the elements with scoping or reparenting
/// rules (`button`, `nobr`, `applet`, `marquee`, `object`, `select`, ruby).
pub(super) fn is_refused(name: &str) -> bool {
    matches!(
        name,
        "html"
            | "head"
            | "body"
            | "frameset"
            | "frame"
            | "base"
            | "basefont"
            | "bgsound"
            | "noframes"
            | "template"
            | "title"
            | "pre"
            | "listing"
            | "form"
            | "plaintext"
            | "button"
            | "nobr"
            | "applet"
            | "marquee"
            | "object"
            | "table"
            | "caption"
            | "col"
            | "colgroup"
            | "tbody"
            | "td"
            | "tfoot"
            | "th"
            | "thead"
            | "tr"
            | "image"
            | "textarea"
            | "xmp"
            | "iframe"
            | "noembed"
            | "noscript"
            | "select"
            | "optgroup"
            | "option"
            | "rb"
            | "rtc"
            | "rp"
            | "rt"
            | "math"
            | "menuitem"
    )
}

/// Elements that never have children.
pub(super) fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "br"
            | "embed"
            | "img"
            | "keygen"
            | "wbr"
            | "input"
            | "param"
            | "source"
            | "track"
            | "hr"
            | "meta"
            | "link"
    )
}

/// Start tags that leave an open `p` open; any other closes it, which is
/// left to the tree builder.
pub(super) fn is_phrasing(name: &str) -> bool {
    matches!(
        name,
        "a" | "abbr"
            | "b"
            | "bdi"
            | "bdo"
            | "br"
            | "cite"
            | "code"
            | "data"
            | "dfn"
            | "em"
            | "i"
            | "img"
            | "kbd"
            | "label"
            | "mark"
            | "q"
            | "s"
            | "samp"
            | "small"
            | "span"
            | "strong"
            | "sub"
            | "sup"
            | "time"
            | "u"
            | "var"
    )
}

/// SVG elements whose names the tree builder keeps lowercase and that hold
/// no HTML: icons are made of these. Anything else inside an `svg`
/// (HTML breaking out, `foreignObject`, camel-cased names) is refused.
pub(super) fn is_drawing(name: &str) -> bool {
    matches!(
        name,
        "svg"
            | "g"
            | "path"
            | "circle"
            | "rect"
            | "line"
            | "polyline"
            | "polygon"
            | "ellipse"
            | "defs"
            | "symbol"
            | "use"
            | "stop"
            | "mask"
            | "pattern"
            | "tspan"
    )
}

pub(super) fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}
