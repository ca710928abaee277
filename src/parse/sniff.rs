//! Reading what a document is from its first bytes, without parsing it: where it starts
//! (after a BOM and whitespace), its root element, an HTML page's `<title>`, and the hint a
//! [`ParseError::NotAFeed`](super::ParseError::NotAFeed) carries. Also the byte-search
//! helpers the other byte-level code of this stage shares. Looks at most [`SNIFF_BYTES`]
//! into a document, so it stays cheap on huge ones.

use super::SNIFF_BYTES;
use super::html::reduce;

/// Longest page title quoted in a "not a feed" hint.
const MAX_HINT_TITLE_BYTES: usize = 100;

/// A hint naming what the document is, for a document without a feed root.
pub(super) fn not_a_feed_hint(body: &[u8]) -> String {
    let start = skip_bom_and_space(body);
    let head = &body[start..];
    match head.first() {
        None => "empty document".into(),
        Some(b'<') if looks_like_html_page(head) => html_page_hint(head),
        Some(b'<') => match root_element(head) {
            Some((_, name)) => {
                let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                match name.as_str() {
                    "opml" => "an OPML subscription list, not a feed".into(),
                    "rss" => "an <rss> document without a readable <channel>".into(),
                    "feed" | "rdf" | "entry" => format!(
                        "the <{name}> root element cannot be read (ill-formed, or in the \
                         wrong letter case?)"
                    ),
                    _ => format!("root element <{name}> is not rss, rdf or atom"),
                }
            }
            None => "no xml root element found".into(),
        },
        Some(b'{') => "a json document that is not a json feed".into(),
        Some(_) => "neither xml nor json".into(),
    }
}

/// Offset of the first byte that is not a UTF-8 BOM or ASCII whitespace.
pub(super) fn skip_bom_and_space(body: &[u8]) -> usize {
    let mut i = 0;
    loop {
        if body[i..].starts_with(&[0xEF, 0xBB, 0xBF]) {
            i += 3;
        } else if i < body.len() && body[i].is_ascii_whitespace() {
            i += 1;
        } else {
            return i;
        }
    }
}

/// True when the root element is `<html>`, or the DOCTYPE says HTML and the root element is
/// not a feed's (feed generators have been seen emitting an XHTML DOCTYPE before `<rss>`).
pub(super) fn looks_like_html_page(head: &[u8]) -> bool {
    let (html_doctype, root) = prolog(head);
    match root {
        Some((_, name))
            if [&b"rss"[..], b"feed", b"rdf"]
                .iter()
                .any(|feed| name.eq_ignore_ascii_case(feed)) =>
        {
            false
        }
        Some((_, name)) => html_doctype || name.eq_ignore_ascii_case(b"html"),
        None => html_doctype,
    }
}

/// The reason given for an HTML page: names the page by its `<title>`, which usually says
/// what went wrong ("Access denied", "Just a moment...", "404 Not Found").
pub(super) fn html_page_hint(page: &[u8]) -> String {
    match html_title(page) {
        Some(title) => format!("an HTML page (\"{title}\")"),
        None => "an HTML page".into(),
    }
}

/// The text of the first `<title>` within [`SNIFF_BYTES`], entities decoded, whitespace
/// collapsed, at most [`MAX_HINT_TITLE_BYTES`].
fn html_title(page: &[u8]) -> Option<String> {
    let b = &page[..page.len().min(SNIFF_BYTES)];
    let is_title_tag = |at: usize, closing: bool| {
        let name = at + 1 + usize::from(closing);
        (!closing || b.get(at + 1) == Some(&b'/'))
            && b.get(name..name + 5)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"title"))
            && b.get(name + 5)
                .is_some_and(|c| *c == b'>' || *c == b'/' || c.is_ascii_whitespace())
    };
    let mut from = 0;
    let text_start = loop {
        let lt = find_byte(b, from, b'<')?;
        from = lt + 1;
        if is_title_tag(lt, false) {
            break find_byte(b, lt + 6, b'>')? + 1;
        }
    };
    let mut from = text_start;
    let text_end = loop {
        match find_byte(b, from, b'<') {
            Some(lt) if is_title_tag(lt, true) => break lt,
            Some(lt) => from = lt + 1,
            None => break b.len(),
        }
    };
    let raw = &b[text_start..text_end.min(text_start + 4 * MAX_HINT_TITLE_BYTES)];
    // The title is text, not markup: only entities and whitespace are handled.
    let title = reduce(&String::from_utf8_lossy(raw), false, MAX_HINT_TITLE_BYTES);
    (!title.is_empty()).then_some(title)
}

/// Finds the root element of an XML/HTML document: skips the declaration, processing
/// instructions, comments, DOCTYPE and stray text. Returns the offset just past its
/// qualified name, and its local name (`RDF` for `<rdf:RDF>`). Looks at most
/// [`SNIFF_BYTES`] far.
pub(super) fn root_element(body: &[u8]) -> Option<(usize, &[u8])> {
    prolog(body).1
}

/// Whether a DOCTYPE names `html`, and the root element as [`root_element`] returns it.
fn prolog(body: &[u8]) -> (bool, Option<(usize, &[u8])>) {
    let limit = body.len().min(SNIFF_BYTES);
    let b = &body[..limit];
    let mut html_doctype = false;
    let mut i = 0;
    while let Some(lt) = find_byte(b, i, b'<') {
        let rest = &b[lt..];
        let next = if rest.starts_with(b"<?") {
            find_bytes(b, lt + 2, b"?>").map(|end| end + 2)
        } else if rest.starts_with(b"<!--") {
            find_bytes(b, lt + 4, b"-->").map(|end| end + 3)
        } else if rest.len() >= 9 && rest[..9].eq_ignore_ascii_case(b"<!doctype") {
            let name_start = lt
                + 9
                + b[lt + 9..]
                    .iter()
                    .take_while(|c| c.is_ascii_whitespace())
                    .count();
            let name_len = b[name_start..]
                .iter()
                .take_while(|c| is_name_byte(**c))
                .count();
            html_doctype |= b[name_start..name_start + name_len].eq_ignore_ascii_case(b"html");
            doctype_end(b, name_start + name_len)
        } else if rest.len() > 1 && rest[1].is_ascii_alphabetic() {
            let len = rest[1..].iter().take_while(|c| is_name_byte(**c)).count();
            let qualified = &rest[1..1 + len];
            // `<rdf:RDF>`: report the local name.
            let local = match qualified.iter().rposition(|c| *c == b':') {
                Some(colon) => &qualified[colon + 1..],
                None => qualified,
            };
            return (html_doctype, Some((lt + 1 + len, local)));
        } else {
            Some(lt + 1)
        };
        match next {
            Some(next) => i = next,
            None => break,
        }
    }
    (html_doctype, None)
}

/// Offset just past a DOCTYPE's closing `>`, skipping an internal subset `[ ... ]`.
fn doctype_end(b: &[u8], from: usize) -> Option<usize> {
    let mut in_subset = false;
    for (j, c) in b.iter().enumerate().skip(from) {
        match c {
            b'[' => in_subset = true,
            b']' => in_subset = false,
            b'>' if !in_subset => return Some(j + 1),
            _ => {}
        }
    }
    None
}

pub(super) fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b':' | b'.')
}

/// Where `needle` first occurs in `haystack` at or after `from`.
pub(super) fn find_byte(haystack: &[u8], from: usize, needle: u8) -> Option<usize> {
    memchr::memchr(needle, haystack.get(from..)?).map(|p| p + from)
}

/// Where `needle` first occurs in `haystack` at or after `from` (an empty needle: never).
pub(super) fn find_bytes(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(haystack.get(from..)?, needle).map(|p| p + from)
}

/// Finds `name="value"` (or single quotes) in the inside of a start tag; returns the value's
/// byte range within `tag`.
pub(super) fn find_attr_value(tag: &[u8], name: &[u8]) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(pos) = find_bytes(tag, from, name) {
        from = pos + name.len();
        let preceded_by_space = pos > 0 && tag[pos - 1].is_ascii_whitespace();
        if !preceded_by_space {
            continue;
        }
        let mut j = from;
        while j < tag.len() && tag[j].is_ascii_whitespace() {
            j += 1;
        }
        if tag.get(j) != Some(&b'=') {
            continue;
        }
        j += 1;
        while j < tag.len() && tag[j].is_ascii_whitespace() {
            j += 1;
        }
        let quote = *tag.get(j)?;
        if quote != b'"' && quote != b'\'' {
            continue;
        }
        let end = find_byte(tag, j + 1, quote)?;
        return Some((j + 1, end));
    }
    None
}
