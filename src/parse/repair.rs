//! Getting a feed out of feed-rs: the call itself (panics caught: feed-rs 3 can panic on
//! some inputs), the few byte-level repairs that make real-world documents feed-rs refuses
//! readable (`<rss>` without a version, empty `media:` text, unknown text `type`s, old JSON
//! Feed version URLs), and the classification of what still fails ("not a feed" or
//! "malformed"). Input: the document as UTF-8 (see `encoding`).

use std::panic::{AssertUnwindSafe, catch_unwind};

use feed_rs::model::Feed;
use feed_rs::parser::{ParseErrorKind, ParseFeedError};
use url::Url;

use super::ParseError;
use super::sniff::{
    find_attr_value, find_byte, find_bytes, is_name_byte, not_a_feed_hint, root_element,
};

/// What a feed-rs attempt produced when it did not produce a feed.
enum Failure {
    FeedRs(ParseFeedError),
    Panicked(String),
}

fn run_feed_rs(body: &[u8], base: Option<&Url>) -> Result<Feed, Failure> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        feed_rs::parser::Builder::new()
            .base_uri(base.map(Url::as_str))
            // An empty id tells us the document gave none: feed-rs only calls the generator
            // for entries without an id, and keeps whatever it returns.
            .id_generator(|_, _, _| String::new())
            .sanitize_content(false)
            .build()
            .parse(body)
    }));
    match outcome {
        Ok(Ok(feed)) => Ok(feed),
        Ok(Err(err)) => Err(Failure::FeedRs(err)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure::Panicked(message))
        }
    }
}

/// Runs feed-rs; on an error that a known, harmless quirk of real feeds explains, repairs
/// the bytes and tries again (each repair once, except those in [`REPEATABLE`], and never
/// more than [`MAX_ATTEMPTS`] runs). One quirk feed-rs does not report is repaired
/// up front: see [`strip_rss_namespace`].
pub(super) fn parse_with_repairs(body: &[u8], base: Option<&Url>) -> Result<Feed, ParseError> {
    let mut repaired: Option<Vec<u8>> = strip_rss_namespace(body);
    let mut applied: Vec<&'static str> = Vec::new();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let current: &[u8] = repaired.as_deref().unwrap_or(body);
        let failure = match run_feed_rs(current, base) {
            Ok(feed) => return Ok(feed),
            Err(failure) => failure,
        };
        let fix = (attempts < MAX_ATTEMPTS)
            .then(|| repair(current, &failure, &applied))
            .flatten();
        match fix {
            Some((name, fixed)) if fixed != current => {
                if !REPEATABLE.contains(&name) {
                    applied.push(name);
                }
                repaired = Some(fixed);
            }
            _ => return Err(classify(current, failure)),
        }
    }
}

/// A repair: given the bytes and feed-rs's error, the repaired bytes when it applies.
type Repair = fn(&[u8], &ParseFeedError) -> Option<Vec<u8>>;

/// Known, harmless quirks of real feeds that feed-rs refuses, in the order they are tried.
const REPAIRS: [(&str, Repair); 4] = [
    // `<rss>` without a version, or with one feed-rs does not list (0.90, 0.93, 2.0.1...).
    ("rss-version", |body, err| match err {
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot) => repair_rss_version(body),
        _ => None,
    }),
    // Early JSON feeds announced "http://jsonfeed.org/version/1".
    ("jsonfeed-version", |body, err| match err {
        ParseFeedError::JsonUnsupportedVersion(v)
            if v.starts_with("http://jsonfeed.org/version/1") =>
        {
            repair_jsonfeed_version(body)
        }
        _ => None,
    }),
    // feed-rs rejects the whole document for one empty `<media:title/>` or
    // `<media:description/>`, which real feeds (NYT) carry.
    ("empty-media-text", |body, err| match err {
        ParseFeedError::ParseError(ParseErrorKind::MissingContent {
            reference: "text", ..
        }) => repair_empty_media_text(body),
        _ => None,
    }),
    // A text element with a `type` feed-rs does not know (`<media:title type="text">`,
    // `<title type="text/plain">`) sinks the whole document: drop that attribute.
    ("unknown-text-type", |body, err| match err {
        ParseFeedError::ParseError(ParseErrorKind::UnknownMimeType { mime, .. }) => {
            repair_text_type(body, mime)
        }
        _ => None,
    }),
];

/// Repairs that may apply again with a different error (each run must change the bytes).
const REPEATABLE: &[&str] = &["unknown-text-type"];
/// Attempts per document, repairs included.
const MAX_ATTEMPTS: usize = 8;

/// The first repair, not applied yet, that fits the failure.
fn repair(body: &[u8], failure: &Failure, applied: &[&str]) -> Option<(&'static str, Vec<u8>)> {
    let Failure::FeedRs(err) = failure else {
        return None; // a crash says nothing about what to repair
    };
    REPAIRS
        .iter()
        .filter(|(name, _)| !applied.contains(name))
        .find_map(|(name, repair)| Some((*name, repair(body, err)?)))
}

fn classify(body: &[u8], failure: Failure) -> ParseError {
    let err = match failure {
        Failure::Panicked(message) => {
            return ParseError::Malformed(format!("feed parser crashed: {message}"));
        }
        Failure::FeedRs(err) => err,
    };
    match err {
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot) => {
            ParseError::NotAFeed(not_a_feed_hint(body))
        }
        ParseFeedError::JsonUnsupportedVersion(version) => {
            ParseError::NotAFeed(format!("unsupported json feed version {version:?}"))
        }
        ParseFeedError::JsonSerde(ref json)
            if json.to_string().contains("missing field `version`") =>
        {
            ParseError::NotAFeed("a json document without a json feed \"version\"".into())
        }
        // Well-formed JSON of the wrong shape that never names a JSON Feed version is some
        // other JSON (an API response, an error object), not a broken feed.
        ParseFeedError::JsonSerde(ref json)
            if json.is_data() && find_bytes(body, 0, b"jsonfeed.org").is_none() =>
        {
            ParseError::NotAFeed("a json document that is not a json feed".into())
        }
        other => ParseError::Malformed(other.to_string()),
    }
}

/// Gives a versionless or oddly versioned `<rss>` root the version feed-rs expects.
fn repair_rss_version(body: &[u8]) -> Option<Vec<u8>> {
    let (name_end, name) = root_element(body)?;
    if !name.eq_ignore_ascii_case(b"rss") {
        return None;
    }
    let tag_end = find_byte(body, name_end, b'>')?;
    let tag = &body[name_end..tag_end];
    let mut fixed = Vec::with_capacity(body.len() + 16);
    match find_attr_value(tag, b"version") {
        Some((value_start, value_end)) => {
            let value = &tag[value_start..value_end];
            if matches!(value, b"2.0" | b"0.91" | b"0.92" | b"") {
                return None; // not the cause
            }
            fixed.extend_from_slice(&body[..name_end + value_start]);
            fixed.extend_from_slice(b"2.0");
            fixed.extend_from_slice(&body[name_end + value_end..]);
        }
        None => {
            fixed.extend_from_slice(&body[..name_end]);
            fixed.extend_from_slice(b" version=\"2.0\"");
            fixed.extend_from_slice(&body[name_end..]);
        }
    }
    Some(fixed)
}

/// Drops a default namespace from an `<rss>` root (`xmlns="http://backend.userland.com/rss2"`,
/// a Userland-era habit that live feeds, such as a Russian regional news wire in the
/// corpus, still carry). RSS 0.9x/2.0 has no namespace, and
/// feed-rs skips every element in one it does not know: without this it returns the feed
/// without a title or a single item, and no error.
fn strip_rss_namespace(body: &[u8]) -> Option<Vec<u8>> {
    let (name_end, name) = root_element(body)?;
    if name != b"rss" {
        return None;
    }
    let tag_end = find_byte(body, name_end, b'>')?;
    let tag = &body[name_end..tag_end];
    let (value_start, value_end) = find_attr_value(tag, b"xmlns")?;
    // find_attr_value only matches a name after whitespace: remove from that whitespace to
    // the closing quote.
    let name_start = tag[..value_start].windows(5).rposition(|w| w == b"xmlns")?;
    let space = name_start.checked_sub(1)?;
    let mut fixed = Vec::with_capacity(body.len());
    fixed.extend_from_slice(&body[..name_end + space]);
    fixed.extend_from_slice(&body[name_end + value_end + 1..]);
    Some(fixed)
}

/// Rewrites the first `"http://jsonfeed.org/version/` (slashes escaped or not) to https.
fn repair_jsonfeed_version(body: &[u8]) -> Option<Vec<u8>> {
    for pattern in [
        &b"\"http://jsonfeed.org/version/"[..],
        b"\"http:\\/\\/jsonfeed.org\\/version\\/",
    ] {
        if let Some(pos) = find_bytes(body, 0, pattern) {
            let mut fixed = Vec::with_capacity(body.len() + 1);
            fixed.extend_from_slice(&body[..pos + 5]); // `"http`
            fixed.push(b's');
            fixed.extend_from_slice(&body[pos + 5..]);
            return Some(fixed);
        }
    }
    None
}

/// Removes empty `<media:title/>`, `<media:description/>` (self-closed or with an empty
/// body) for the prefix the document binds to the Media RSS namespace.
fn repair_empty_media_text(body: &[u8]) -> Option<Vec<u8>> {
    let prefix = namespace_prefix(body, b"http://search.yahoo.com/mrss")?;
    let mut fixed = Vec::with_capacity(body.len());
    let mut copied = 0;
    let mut i = 0;
    let mut changed = false;
    while let Some(lt) = find_byte(body, i, b'<') {
        i = lt + 1;
        let Some(rest) = body.get(lt + 1..) else {
            break;
        };
        if !rest.starts_with(prefix) || rest.get(prefix.len()) != Some(&b':') {
            continue;
        }
        let local_start = lt + 1 + prefix.len() + 1;
        let local = [&b"description"[..], b"title"]
            .into_iter()
            .find(|n| body[local_start..].starts_with(n));
        let Some(local) = local else {
            continue;
        };
        let after_name = local_start + local.len();
        match body.get(after_name) {
            Some(b) if b.is_ascii_whitespace() || *b == b'/' || *b == b'>' => {}
            _ => continue,
        }
        let Some(gt) = find_byte(body, after_name, b'>') else {
            break;
        };
        let end = if body[gt - 1] == b'/' {
            gt + 1
        } else {
            // `<media:title ...></media:title>`: only an immediately closed element is empty.
            let close_start = gt + 1;
            let close = body.get(close_start..).filter(|r| {
                r.starts_with(b"</")
                    && r[2..].starts_with(prefix)
                    && r.get(2 + prefix.len()) == Some(&b':')
                    && r[3 + prefix.len()..].starts_with(local)
            });
            if close.is_none() {
                continue;
            }
            match find_byte(body, close_start, b'>') {
                Some(p) => p + 1,
                None => break,
            }
        };
        fixed.extend_from_slice(&body[copied..lt]);
        copied = end;
        i = end;
        changed = true;
    }
    if !changed {
        return None;
    }
    fixed.extend_from_slice(&body[copied..]);
    Some(fixed)
}

/// Removes ` type="<mime>"` from the start tags of text elements (title, subtitle, summary,
/// rights, description, any prefix).
fn repair_text_type(body: &[u8], mime: &str) -> Option<Vec<u8>> {
    let mut fixed = Vec::with_capacity(body.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(pos) = find_bytes(body, from, b"type=") {
        from = pos + 5;
        let quote = match body.get(pos + 5) {
            Some(q @ (b'"' | b'\'')) => *q,
            _ => continue,
        };
        let Some(value_end) = find_byte(body, pos + 6, quote) else {
            break;
        };
        let removable = pos > 0
            && body[pos - 1].is_ascii_whitespace()
            && &body[pos + 6..value_end] == mime.as_bytes()
            && in_text_element_tag(body, pos);
        if removable {
            fixed.extend_from_slice(&body[copied..pos - 1]);
            copied = value_end + 1;
            from = copied;
        }
    }
    if copied == 0 {
        return None;
    }
    fixed.extend_from_slice(&body[copied..]);
    Some(fixed)
}

/// True when offset `at` lies inside the start tag of a title, subtitle, summary, rights or
/// description element (any prefix).
fn in_text_element_tag(body: &[u8], at: usize) -> bool {
    let window_start = at.saturating_sub(1024);
    let Some(lt) = body[window_start..at].iter().rposition(|b| *b == b'<') else {
        return false;
    };
    let tag = &body[window_start + lt + 1..at];
    if tag.contains(&b'>') {
        return false;
    }
    let name_len = tag.iter().take_while(|c| is_name_byte(**c)).count();
    let qualified = &tag[..name_len];
    let local = qualified
        .iter()
        .rposition(|c| *c == b':')
        .map_or(qualified, |colon| &qualified[colon + 1..]);
    [
        &b"title"[..],
        b"subtitle",
        b"summary",
        b"rights",
        b"description",
    ]
    .iter()
    .any(|name| local.eq_ignore_ascii_case(name))
}

/// The prefix bound by `xmlns:PREFIX="<uri>..."` (the URI compared without a trailing `/`).
fn namespace_prefix<'a>(body: &'a [u8], uri: &[u8]) -> Option<&'a [u8]> {
    let mut from = 0;
    while let Some(pos) = find_bytes(body, from, b"xmlns:") {
        from = pos + 6;
        let name_end = from
            + body[from..]
                .iter()
                .position(|b| *b == b'=' || b.is_ascii_whitespace())?;
        let mut j = name_end;
        while j < body.len() && (body[j].is_ascii_whitespace() || body[j] == b'=') {
            j += 1;
        }
        let quote = *body.get(j)?;
        if quote != b'"' && quote != b'\'' {
            continue;
        }
        if body[j + 1..].starts_with(uri) {
            return Some(&body[from..name_end]);
        }
    }
    None
}
