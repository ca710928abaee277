//! Getting a feed out of feed-rs: the call itself (panics caught: feed-rs 3 can panic on
//! some inputs), the few byte-level repairs that make real-world documents feed-rs refuses
//! readable (`<rss>` without a version, stray windows-1252 bytes in UTF-8, empty
//! `media:` text, unknown text `type`s, old JSON Feed version URLs), UTF-16 transcoding,
//! and the classification of what still fails ("not a feed" or "malformed").

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use feed_rs::model::Feed;
use feed_rs::parser::{ParseErrorKind, ParseFeedError};
use url::Url;

use super::html::CP1252_C1;
use super::{ParseError, SNIFF_BYTES};

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
/// more than [`MAX_ATTEMPTS`] runs).
pub(super) fn parse_with_repairs(body: &[u8], base: Option<&Url>) -> Result<Feed, ParseError> {
    let mut repaired: Option<Vec<u8>> = None;
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
const REPAIRS: [(&str, Repair); 5] = [
    // `<rss>` without a version, or with one feed-rs does not list (0.90, 0.93, 2.0.1...).
    ("rss-version", |body, err| match err {
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot) => repair_rss_version(body),
        _ => None,
    }),
    // Bytes that are not UTF-8 in a document that declares UTF-8 or nothing: read the
    // offending bytes as windows-1252, as browsers do.
    ("utf8-fallback", |body, err| {
        let xml_side = !matches!(
            err,
            ParseFeedError::JsonSerde(_) | ParseFeedError::JsonUnsupportedVersion(_)
        );
        (xml_side && std::str::from_utf8(body).is_err() && declares_utf8_or_nothing(body))
            .then(|| decode_utf8_or_cp1252(body))
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
        other => ParseError::Malformed(other.to_string()),
    }
}

/// A hint naming what the document is, for a document without a feed root.
fn not_a_feed_hint(body: &[u8]) -> String {
    let start = skip_bom_and_space(body);
    let head = &body[start..];
    match head.first() {
        None => "empty document".into(),
        Some(b'<') => match root_element(head) {
            Some((_, name)) => {
                let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                match name.as_str() {
                    "html" => "looks like an HTML page".into(),
                    "opml" => "an OPML subscription list, not a feed".into(),
                    "rss" => "an <rss> document without a readable <channel>".into(),
                    "feed" | "rdf" | "entry" => {
                        format!("the <{name}> root element cannot be read (bad encoding?)")
                    }
                    _ => format!("root element <{name}> is not rss, rdf or atom"),
                }
            }
            None => "no xml root element found".into(),
        },
        Some(b'{') => "a json document that is not a json feed".into(),
        Some(_) => "neither xml nor json".into(),
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

/// Finds `name="value"` (or single quotes) in the inside of a start tag; returns the value's
/// byte range within `tag`.
fn find_attr_value(tag: &[u8], name: &[u8]) -> Option<(usize, usize)> {
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

/// True when the XML declaration names UTF-8, or there is no declaration or no encoding in it.
fn declares_utf8_or_nothing(body: &[u8]) -> bool {
    let head = &body[skip_bom_and_space(body)..];
    if !head.starts_with(b"<?xml") {
        return true;
    }
    let Some(end) = find_bytes(head, 0, b"?>") else {
        return true;
    };
    match find_attr_value(&head[5..end], b"encoding") {
        Some((from, to)) => {
            let name = &head[5 + from..5 + to];
            name.eq_ignore_ascii_case(b"utf-8") || name.eq_ignore_ascii_case(b"utf8")
        }
        None => true,
    }
}

/// Keeps every valid UTF-8 sequence and reads each invalid byte as windows-1252.
fn decode_utf8_or_cp1252(body: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(body.len() + body.len() / 8);
    let mut rest = body;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                break;
            }
            Err(err) => {
                let (valid, invalid) = rest.split_at(err.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let Some((&byte, after)) = invalid.split_first() else {
                    break;
                };
                out.push(match byte {
                    0x80..=0x9F => CP1252_C1[usize::from(byte - 0x80)],
                    _ => char::from(byte),
                });
                rest = after;
            }
        }
    }
    out.into_bytes()
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

/// UTF-16 documents (with a BOM, or recognisable by `<` next to a NUL) become UTF-8 with
/// their declaration rewritten; quick-xml mishandles (and can panic on) some of them.
pub(super) fn transcode_utf16(body: &[u8]) -> Cow<'_, [u8]> {
    let (big_endian, skip) = match body {
        [0xFE, 0xFF, ..] => (true, 2),
        [0xFF, 0xFE, ..] => (false, 2),
        [0x00, b'<', 0x00, x, ..] if *x != 0 => (true, 0),
        [b'<', 0x00, x, 0x00, ..] if *x != 0 => (false, 0),
        _ => return Cow::Borrowed(body),
    };
    let units = body[skip..].chunks_exact(2).map(|pair| {
        if big_endian {
            u16::from_be_bytes([pair[0], pair[1]])
        } else {
            u16::from_le_bytes([pair[0], pair[1]])
        }
    });
    let mut text = String::with_capacity(body.len());
    for unit in char::decode_utf16(units) {
        text.push(unit.unwrap_or(char::REPLACEMENT_CHARACTER));
    }
    let mut text = text.as_str().trim_start_matches('\u{FEFF}');
    let mut out = Vec::with_capacity(text.len() + 40);
    if text.starts_with("<?xml")
        && let Some(end) = text.find("?>")
    {
        text = &text[end + 2..];
        out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    }
    out.extend_from_slice(text.as_bytes());
    Cow::Owned(out)
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

/// True when the first element (or the DOCTYPE) says HTML.
pub(super) fn looks_like_html_page(head: &[u8]) -> bool {
    match root_element(head) {
        Some((_, name)) => name.eq_ignore_ascii_case(b"html"),
        None => false,
    }
}

/// Finds the root element of an XML/HTML document: skips the declaration, processing
/// instructions, comments, DOCTYPE (reported as `html` for an HTML doctype) and stray text.
/// Returns the offset just past its qualified name, and its local name (`RDF` for
/// `<rdf:RDF>`). Looks at most [`SNIFF_BYTES`] far.
fn root_element(body: &[u8]) -> Option<(usize, &[u8])> {
    let limit = body.len().min(SNIFF_BYTES);
    let b = &body[..limit];
    let mut i = 0;
    while let Some(lt) = find_byte(b, i, b'<') {
        let rest = &b[lt..];
        if rest.starts_with(b"<?") {
            i = find_bytes(b, lt + 2, b"?>")? + 2;
        } else if rest.starts_with(b"<!--") {
            i = find_bytes(b, lt + 4, b"-->")? + 3;
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
            let name = &b[name_start..name_start + name_len];
            if name.eq_ignore_ascii_case(b"html") {
                return Some((name_start + name_len, name));
            }
            // Skip an internal subset `[ ... ]` before the closing `>`.
            let mut j = name_start + name_len;
            let mut in_subset = false;
            loop {
                match b.get(j)? {
                    b'[' => in_subset = true,
                    b']' => in_subset = false,
                    b'>' if !in_subset => break,
                    _ => {}
                }
                j += 1;
            }
            i = j + 1;
        } else if rest.len() > 1 && rest[1].is_ascii_alphabetic() {
            let len = rest[1..].iter().take_while(|c| is_name_byte(**c)).count();
            let qualified = &rest[1..1 + len];
            // `<rdf:RDF>`: report the local name.
            let local = match qualified.iter().rposition(|c| *c == b':') {
                Some(colon) => &qualified[colon + 1..],
                None => qualified,
            };
            return Some((lt + 1 + len, local));
        } else {
            i = lt + 1;
        }
    }
    None
}

pub(super) fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b':' | b'.')
}

pub(super) fn find_byte(haystack: &[u8], from: usize, needle: u8) -> Option<usize> {
    haystack
        .get(from..)?
        .iter()
        .position(|b| *b == needle)
        .map(|p| p + from)
}

pub(super) fn find_bytes(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while let Some(p) = find_byte(haystack, i, first) {
        if haystack[p..].starts_with(needle) {
            return Some(p);
        }
        i = p + 1;
    }
    None
}
