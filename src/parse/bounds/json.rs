//! The JSON pass of the caps (see the parent module): one serde_json pass over the document
//! that walks only what feed-rs reads into its model — the top-level object, its `items`,
//! `author` and `authors`, and each item's `authors`, `tags` and `attachments` — and skips
//! every other value with [`IgnoredAny`], as feed-rs's own deserializer does (so a deeply
//! nested extension stays as harmless here as there). Values to cut are read as
//! [`RawValue`]s, which borrow the document and so give their byte range without copying
//! anything: the pass allocates nothing until a cap is exceeded, and then only one edit per
//! capped array. The copy drops the cut entries of an array with the comma before them, and
//! keeps every other byte as it is.
//!
//! The feed's own `author` and `authors` are capped in bytes too ([`MAX_FEED_AUTHOR_BYTES`]):
//! feed-rs copies them into every item that names no author of its own, so a few kilobytes
//! of feed authors would cost gigabytes over [`MAX_ITEMS`] items. An `author` past the cap
//! becomes `null`.
//!
//! Values of an unexpected type are walked past, not refused: feed-rs reports them. A
//! document serde_json cannot read to the end is cut up to the error (arrays capped so far)
//! and left for feed-rs to report the same error; with nothing to cut, it is returned as it
//! is, so malformed JSON fails exactly as it would without this pass.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::super::{MAX_ITEMS, MAX_NAMES};
use super::{Bounded, Edit, MAX_FEED_AUTHOR_BYTES, edited};

/// Applies the caps to a JSON document (see the module docs).
pub(in crate::parse) fn bound_json(json: &[u8]) -> Bounded<'_> {
    let mut walk = Walk {
        json,
        feed_author_bytes: 0,
        dropped_items: 0,
        dropped_elements: 0,
        edits: Vec::new(),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    // An error is feed-rs's to report; what was capped before it stays capped.
    let _ = (&mut deserializer).deserialize_map(Value {
        walk: &mut walk,
        kind: Kind::Feed,
    });
    walk.finish()
}

/// What the pass has found so far.
struct Walk<'a> {
    json: &'a [u8],
    /// Bytes of the feed's `author` and `authors` entries kept so far.
    feed_author_bytes: usize,
    dropped_items: usize,
    dropped_elements: usize,
    edits: Vec<Edit>,
}

impl<'a> Walk<'a> {
    /// The byte range in the document of a value borrowed from it.
    fn range_of(&self, raw: &RawValue) -> Option<Range<usize>> {
        let text = raw.get().as_bytes();
        let start = (text.as_ptr() as usize).checked_sub(self.json.as_ptr() as usize)?;
        (start + text.len() <= self.json.len()).then(|| start..start + text.len())
    }

    /// Whether a feed author of `bytes` fits what is left of [`MAX_FEED_AUTHOR_BYTES`];
    /// if so it is counted.
    fn fits_feed_authors(&mut self, bytes: usize) -> bool {
        let fits = self.feed_author_bytes + bytes <= MAX_FEED_AUTHOR_BYTES;
        if fits {
            self.feed_author_bytes += bytes;
        }
        fits
    }

    /// Cuts the array entries spanning `entries` (up to the array's last), with the comma
    /// that separates them from the entries kept before, if any.
    fn cut_entries(&mut self, entries: Range<usize>) {
        let before = &self.json[..entries.start];
        let start = match before.iter().rposition(|b| !b.is_ascii_whitespace()) {
            Some(comma) if before[comma] == b',' => comma,
            _ => entries.start,
        };
        self.edits.push((start..entries.end, b""));
    }

    fn finish(mut self) -> Bounded<'a> {
        let doc = if self.edits.is_empty() {
            Cow::Borrowed(self.json)
        } else {
            // Inner arrays finish (and are recorded) before the arrays that hold them.
            self.edits.sort_unstable_by_key(|(range, _)| range.start);
            Cow::Owned(edited(self.json, &self.edits))
        };
        Bounded {
            doc,
            dropped_items: self.dropped_items,
            dropped_elements: self.dropped_elements,
        }
    }
}

/// Which value of the JSON Feed model is being walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The top-level object.
    Feed,
    /// An entry of the top-level `items`.
    Item,
    /// An array feed-rs reads.
    Array(Array),
}

/// The arrays feed-rs reads, each with its caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Array {
    /// The top-level `items`: [`MAX_ITEMS`] entries, each walked.
    Items,
    /// The top-level `authors`: [`MAX_NAMES`] entries within [`MAX_FEED_AUTHOR_BYTES`].
    FeedAuthors,
    /// An item's `authors`, `tags` or `attachments`: [`MAX_NAMES`] entries.
    Names,
}

/// A value of the given kind, walked.
struct Value<'w, 'a> {
    walk: &'w mut Walk<'a>,
    kind: Kind,
}

impl<'de> DeserializeSeed<'de> for Value<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Value<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let array = match (self.kind, key) {
                (Kind::Feed, Key::Items) => Array::Items,
                (Kind::Feed, Key::Authors) => Array::FeedAuthors,
                (Kind::Item, Key::Authors | Key::Tags | Key::Attachments) => Array::Names,
                (Kind::Feed, Key::Author) => {
                    let author: &RawValue = map.next_value()?;
                    if let Some(range) = self.walk.range_of(author)
                        && !self.walk.fits_feed_authors(range.len())
                    {
                        self.walk.edits.push((range, b"null"));
                        self.walk.dropped_elements += 1;
                    }
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            map.next_value_seed(Value {
                walk: &mut *self.walk,
                kind: Kind::Array(array),
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Kind::Array(array) = self.kind else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let cap = match array {
            Array::Items => MAX_ITEMS,
            Array::FeedAuthors | Array::Names => MAX_NAMES,
        };
        let (mut kept, mut cut, mut cut_count) = (0usize, None::<Range<usize>>, 0usize);
        let outcome = loop {
            let walking = cut.is_none() && kept < cap;
            let next = match array {
                Array::Items if walking => seq
                    .next_element_seed(Value {
                        walk: &mut *self.walk,
                        kind: Kind::Item,
                    })
                    .map(|entry| entry.map(|()| None)),
                Array::Names if walking => seq
                    .next_element::<IgnoredAny>()
                    .map(|entry| entry.map(|_| None)),
                // Read whole, to keep or cut: feed authors within the bytes left, and every
                // entry past a cap.
                _ => seq.next_element::<&RawValue>().map(|entry| {
                    entry.map(|raw| {
                        let range = self.walk.range_of(raw)?;
                        let keep = walking
                            && array == Array::FeedAuthors
                            && self.walk.fits_feed_authors(range.len());
                        (!keep).then_some(range)
                    })
                }),
            };
            match next {
                Ok(Some(None)) => kept += 1,
                Ok(Some(Some(range))) => {
                    let start = cut.as_ref().map_or(range.start, |c| c.start);
                    cut = Some(start..range.end);
                    cut_count += 1;
                }
                Ok(None) => break Ok(()),
                Err(err) => break Err(err),
            }
        };
        if let Some(cut) = cut {
            self.walk.cut_entries(cut);
        }
        if array == Array::Items {
            self.walk.dropped_items += cut_count;
        } else {
            self.walk.dropped_elements += cut_count;
        }
        outcome
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The object keys that hold what is capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Items,
    Author,
    Authors,
    Tags,
    Attachments,
    Other,
}

/// Reads a key without keeping it.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "items" => Key::Items,
            "author" => Key::Author,
            "authors" => Key::Authors,
            "tags" => Key::Tags,
            "attachments" => Key::Attachments,
            _ => Key::Other,
        })
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::parse::{ParseError, parse_feed};

    const HEAD: &str = "{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \"j\"";

    fn list(unit: &str, count: usize) -> String {
        (0..count)
            .map(|n| unit.replace("{n}", &n.to_string()))
            .collect::<Vec<_>>()
            .join(",\n  ")
    }

    #[test]
    fn item_arrays_are_capped() {
        let over = MAX_NAMES + 8;
        let doc = format!(
            "{HEAD}, \"items\": [{{\"id\": \"1\", \"tags\": [{}], \"authors\": [{}], \
\"attachments\": [{}]}}]}}",
            list("\"t{n}\"", over),
            list("{\"name\": \"a{n}\"}", over),
            list(
                "{\"url\": \"https://j.example/{n}.mp3\", \"mime_type\": \"audio/mpeg\"}",
                over
            ),
        );
        let feed = parse_feed(doc.as_bytes(), None).expect("parses");
        let item = &feed.items[0];
        assert_eq!(item.categories.len(), MAX_NAMES);
        assert_eq!(
            item.categories[MAX_NAMES - 1],
            format!("t{}", MAX_NAMES - 1)
        );
        assert_eq!(item.authors.len(), MAX_NAMES);
        assert_eq!(feed.dropped_elements, 3 * (over - MAX_NAMES));
        assert_eq!(feed.dropped_items, 0);
    }

    #[test]
    fn distinct_feed_authors_and_many_items_finish_quickly_with_capped_authors() {
        // feed-rs de-duplicates authors with a linear scan and copies the feed's authors into
        // every item without any: quadratic in time and memory without the caps.
        let doc = format!(
            "{HEAD}, \"authors\": [{}], \"items\": [{}]}}",
            list("{\"name\": \"author {n}\"}", 20_000),
            list("{\"id\": \"{n}\"}", MAX_ITEMS * 3),
        );
        let feed = parse_feed(doc.as_bytes(), None).expect("parses");
        assert_eq!(feed.items.len(), MAX_ITEMS);
        assert_eq!(feed.dropped_items, 2 * MAX_ITEMS);
        assert_eq!(feed.dropped_elements, 20_000 - MAX_NAMES);
        assert_eq!(feed.items[0].authors.len(), MAX_NAMES);
        assert_eq!(feed.items[0].authors[0], "author 0");
    }

    #[test]
    fn feed_authors_are_capped_in_bytes() {
        // Each entry is 1,014 bytes: two fit in MAX_FEED_AUTHOR_BYTES, the third does not.
        let long = |n: usize| format!("{{\"name\": \"{n}{}\"}}", "x".repeat(1000));
        let doc = format!(
            "{HEAD}, \"authors\": [{}, {}, {}], \"author\": {}, \"items\": [{{\"id\": \"1\"}}]}}",
            long(1),
            long(2),
            long(3),
            long(4)
        );
        let bounded = bound_json(doc.as_bytes());
        assert_eq!(bounded.dropped_elements, 2);
        let copy = String::from_utf8_lossy(&bounded.doc);
        assert!(
            copy.contains(&format!("[{}, {}], \"author\": null,", long(1), long(2))),
            "{copy}"
        );
        let feed = parse_feed(doc.as_bytes(), None).expect("parses");
        assert_eq!(feed.items[0].authors.len(), 2);
        assert!(feed.items[0].authors[0].starts_with("1xxx"));
        // The singular author is read first when it comes first, and fits.
        let doc = format!(
            "{HEAD}, \"author\": {}, \"authors\": [{}, {}], \"items\": [{{\"id\": \"1\"}}]}}",
            long(1),
            long(2),
            long(3)
        );
        let bounded = bound_json(doc.as_bytes());
        assert_eq!(bounded.dropped_elements, 1);
        assert!(String::from_utf8_lossy(&bounded.doc).contains(&format!("[{}]", long(2))));
    }

    #[test]
    fn unread_values_are_not_walked_or_cut() {
        let doc = format!(
            "{HEAD}, \"_ext\": {{\"deep\": {}{}, \"many\": [{}]}}, \"items\": [{{\"id\": \"1\", \"_x\": [{}]}}]}}",
            "[".repeat(10_000),
            "]".repeat(10_000),
            list("0", 1000),
            list("0", 1000),
        );
        let bounded = bound_json(doc.as_bytes());
        assert!(matches!(bounded.doc, Cow::Borrowed(_)));
        assert_eq!(
            parse_feed(doc.as_bytes(), None).map(|f| f.items.len()).ok(),
            Some(1)
        );
    }

    #[test]
    fn the_copy_is_the_document_without_the_cut_entries() {
        let doc = format!(
            "{HEAD}, \"items\": [{{\"id\": \"1\", \"tags\" : [ {} ] }}]}}",
            list("\"t{n}\"", MAX_NAMES + 2)
        );
        let bounded = bound_json(doc.as_bytes());
        let expected = format!(
            "{HEAD}, \"items\": [{{\"id\": \"1\", \"tags\" : [ {} ] }}]}}",
            list("\"t{n}\"", MAX_NAMES)
        );
        assert_eq!(String::from_utf8_lossy(&bounded.doc), expected);
        assert_eq!(bounded.dropped_elements, 2);
    }

    #[test]
    fn malformed_json_is_malformed_whether_or_not_something_was_cut() {
        for items in [3, MAX_ITEMS + 3] {
            let doc = format!(
                "{HEAD}, \"items\": [{}, {{\"id\": ",
                list("{\"id\": \"{n}\"}", items)
            );
            let bounded = bound_json(doc.as_bytes());
            assert_eq!(matches!(bounded.doc, Cow::Borrowed(_)), items == 3);
            match parse_feed(doc.as_bytes(), None) {
                Err(err @ ParseError::Malformed(_)) => assert!(
                    err.to_string()
                        .starts_with("malformed feed: unable to parse JSON: EOF"),
                    "{err}"
                ),
                other => panic!("{items} items: expected malformed, got {other:?}"),
            }
        }
    }
}
