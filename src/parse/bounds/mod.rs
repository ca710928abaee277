//! Caps applied to a document before feed-rs reads it, so that what feed-rs builds stays
//! bounded however the document is shaped.
//!
//! feed-rs builds its whole model (every entry, category, author, media object, every
//! attribute of every element) before the parse stage keeps [`MAX_ITEMS`] items and
//! [`MAX_NAMES`] names of each: 16 MiB of empty `<item/>` elements cost 3 GB, a JSON Feed of
//! `{}` items 8 GB. So one streaming pass over the document first (quick-xml for XML,
//! serde_json for JSON: the tokenizers feed-rs itself uses, so both agree on what an element
//! or a value is) counts what feed-rs would build and cuts what is past a cap:
//!
//! - items (RSS `<item>`, Atom `<entry>`, JSON Feed `items`) past [`MAX_ITEMS`], counted in
//!   [`Bounded::dropped_items`]; the first ones, in document order, are kept;
//! - XML: children of one parent past [`MAX_NAMES`] of the same name, or whose name would
//!   be the parent's [`MAX_DISTINCT_NAMES`]+1st. Text constructs (`title`, `description`,
//!   `summary`, `content`, `content:encoded`, ...: what feed-rs reads as text or serializes
//!   as XHTML markup) are never cut into, so an article keeps all its paragraphs; nor are
//!   elements in namespaces feed-rs does not know, which it skips whole;
//! - XML, Media RSS inside items: `media:group` elements past [`MAX_MEDIA_GROUPS`] per item
//!   and Media RSS elements past [`MAX_MEDIA_ELEMENTS`] per document (feed-rs copies the
//!   media metadata around a group into the media object it builds for each);
//! - JSON: the entries of every other array feed-rs reads (feed and item `authors`, `tags`,
//!   `attachments`) past [`MAX_NAMES`], and the feed's own authors past
//!   [`MAX_FEED_AUTHOR_BYTES`] (feed-rs copies them into every item without authors);
//!
//! these counted in [`Bounded::dropped_elements`]. An XML element with more than
//! [`MAX_ATTRIBUTES`] attributes, more than [`MAX_NAMESPACES`] namespace declarations in
//! scope, or nesting deeper than [`MAX_DEPTH`], makes the document
//! [`ParseError::Malformed`]. When nothing is cut the document is returned as it is
//! (borrowed), so an ordinary feed parses exactly as it would without this pass; otherwise a
//! copy without the cut bytes. A document the tokenizer cannot read to the end is cut up to
//! that point and left for feed-rs to report.
//!
//! What remains is bounded by the caps times what feed-rs builds per element: about ten
//! times the bytes of the elements kept (BENCHMARKS.md has the figures for 16 MiB documents).
//!
//! Input: the document as UTF-8 (see `encoding`). Output: [`Bounded`].

use std::borrow::Cow;
use std::ops::Range;

#[cfg(doc)]
use super::{MAX_ITEMS, MAX_NAMES, ParseError};

mod json;
mod xml;

pub(super) use json::bound_json;
pub(super) use xml::bound_xml;

/// Deepest element nesting accepted. Real feeds nest a dozen levels, XHTML content a few
/// dozen more; feed-rs recurses once per level in places (nested `<media:group>`,
/// `<itunes:category>`), and handles this many on a 2 MiB stack even in a debug build.
pub const MAX_DEPTH: usize = 256;
/// Most attributes accepted on one XML element; feed-rs collects every attribute of every
/// element it reads. Real elements carry a handful (the most in the corpus: 14).
pub const MAX_ATTRIBUTES: usize = 256;
/// Most XML namespace declarations in scope at once. Resolving an element's prefix walks
/// them (here and in feed-rs's reader alike), so `MAX_DEPTH` levels of `MAX_ATTRIBUTES`
/// declarations each would make every element of a 16 MiB document cost 65,536
/// comparisons: minutes of CPU. Real feeds declare a few dozen, on the root.
pub const MAX_NAMESPACES: usize = 1024;
/// Distinct child names tracked under one XML parent; a child with a name past these is
/// cut. Names feed-rs knows are few: beyond this many, a parent is a name flood. (The
/// corpus's busiest parent, a test feed using every namespace there is, has 271: all its
/// item-level names fit.)
pub const MAX_DISTINCT_NAMES: usize = 256;
/// `media:group` elements kept per item, at any depth. feed-rs gives each group its own
/// media object holding a copy of the metadata around it (title, description, thumbnails,
/// texts, credits). Real items have one at most.
pub const MAX_MEDIA_GROUPS: usize = 4;
/// Media RSS elements kept per document inside items (the busiest real item has about 30).
pub const MAX_MEDIA_ELEMENTS: usize = 32_768;
/// Bytes of a JSON Feed's own `author` and `authors` entries kept, as written in the
/// document. feed-rs copies the feed's authors into every item without any of its own;
/// real feeds name one or two in a few hundred bytes.
pub const MAX_FEED_AUTHOR_BYTES: usize = 2048;

/// A document within the caps, and what was cut to get there.
#[derive(Debug)]
pub(super) struct Bounded<'a> {
    /// The document itself when nothing was cut, else a copy without the cut elements or
    /// array entries.
    pub doc: Cow<'a, [u8]>,
    /// Items past [`MAX_ITEMS`].
    pub dropped_items: usize,
    /// Other elements or JSON array entries cut by a cap.
    pub dropped_elements: usize,
}

/// A byte range of the document to replace, and what with (usually nothing).
type Edit = (Range<usize>, &'static [u8]);

/// `doc` with the `edits` (sorted, not overlapping) applied.
fn edited(doc: &[u8], edits: &[Edit]) -> Vec<u8> {
    let removed: usize = edits.iter().map(|(range, _)| range.len()).sum();
    let mut copy = Vec::with_capacity(doc.len().saturating_sub(removed) + 16);
    let mut from = 0;
    for (range, with) in edits {
        copy.extend_from_slice(&doc[from..range.start]);
        copy.extend_from_slice(with);
        from = range.end;
    }
    copy.extend_from_slice(&doc[from..]);
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{MAX_ITEMS, ParseError, parse_feed};

    #[test]
    fn edits_replace_their_ranges_and_keep_the_rest() {
        assert_eq!(edited(b"0123456789", &[]), b"0123456789");
        let cuts = [(1..3, &b""[..]), (5..6, b""), (9..10, b"")];
        assert_eq!(edited(b"0123456789", &cuts), b"034678");
        assert_eq!(edited(b"0123456789", &[(0..10, b"")]), b"");
        assert_eq!(edited(b"0123456789", &[(2..8, b"null")]), b"01null89");
    }

    /// `count` copies of `unit` (with `{n}` replaced by the index) between `head` and `tail`.
    fn doc(head: &str, unit: &str, count: usize, tail: &str) -> String {
        let mut doc = String::from(head);
        for n in 0..count {
            doc.push_str(&unit.replace("{n}", &n.to_string()));
        }
        doc.push_str(tail);
        doc
    }

    #[test]
    fn items_past_the_cap_are_dropped_and_counted_in_every_format() {
        // (format, head, repeated item, count, tail): MAX_ITEMS + 7 items each.
        let cases = [
            (
                "rss 2.0",
                "<rss version=\"2.0\"><channel><title>cap</title>",
                "<item><guid>g{n}</guid><title>t{n}</title></item>\n",
                MAX_ITEMS + 7,
                "</channel></rss>",
            ),
            (
                "rss 1.0",
                "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" \
xmlns=\"http://purl.org/rss/1.0/\"><channel><title>cap</title></channel>",
                "<item><title>t{n}</title><link>https://r.example/{n}</link></item>",
                MAX_ITEMS + 7,
                "</rdf:RDF>",
            ),
            (
                "atom",
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>cap</title>",
                "<entry><id>e{n}</id><title>t{n}</title></entry>",
                MAX_ITEMS + 7,
                "</feed>",
            ),
            (
                "json",
                "{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \"cap\", \"items\": [",
                "{\"id\": \"j{n}\", \"title\": \"t{n}\"}, ",
                MAX_ITEMS + 6,
                "{\"id\": \"last\", \"title\": \"last\"}\n]}",
            ),
        ];
        for (format, head, unit, count, tail) in cases {
            let body = doc(head, unit, count, tail);
            let feed =
                parse_feed(body.as_bytes(), None).unwrap_or_else(|err| panic!("{format}: {err}"));
            assert_eq!(feed.items.len(), MAX_ITEMS, "{format}");
            assert_eq!(feed.dropped_items, 7, "{format}");
            assert_eq!(feed.dropped_elements, 0, "{format}");
            let titles: Vec<String> = (0..MAX_ITEMS).map(|n| format!("t{n}")).collect();
            let kept: Vec<&str> = feed.items.iter().map(|i| i.title.as_str()).collect();
            assert_eq!(kept, titles, "{format}: the first items, in document order");
        }
    }

    #[test]
    fn a_feed_within_the_caps_is_not_copied() {
        for body in [
            "<rss version=\"2.0\"><channel><title>t</title><item><title>a</title></item></channel></rss>",
            "{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \"t\", \"items\": [{\"id\": \"1\"}]}",
        ] {
            let bounded = if body.starts_with('{') {
                bound_json(body.as_bytes())
            } else {
                bound_xml(body.as_bytes()).expect("within the caps")
            };
            assert!(matches!(bounded.doc, Cow::Borrowed(_)), "{body}");
            assert_eq!((bounded.dropped_items, bounded.dropped_elements), (0, 0));
        }
    }

    #[test]
    fn the_attribute_cap_makes_the_document_malformed() {
        let attributes: String = (0..=MAX_ATTRIBUTES)
            .map(|n| format!(" a{n}=\"\""))
            .collect();
        let body = format!(
            "<rss version=\"2.0\"><channel><title>t</title><item{attributes}><title>x</title></item></channel></rss>"
        );
        match parse_feed(body.as_bytes(), None) {
            Err(err @ ParseError::Malformed(_)) => assert_eq!(
                err.to_string(),
                format!("malformed feed: an element with more than {MAX_ATTRIBUTES} attributes")
            ),
            other => panic!("expected malformed, got {other:?}"),
        }
        // At the cap, and with `=` inside values, the document is read.
        let attributes: String = (1..MAX_ATTRIBUTES)
            .map(|n| format!(" a{n}=\"x=y\""))
            .collect();
        let body = format!(
            "<rss version=\"2.0\"><channel><title>t</title><item a0=\"\"{attributes}><title>x</title></item></channel></rss>"
        );
        assert_eq!(
            parse_feed(body.as_bytes(), None)
                .map(|f| f.items.len())
                .ok(),
            Some(1)
        );
    }
}
