//! Parse stage: turns the raw bytes of one fetched document into normalized items.
//!
//! Input: the body exactly as fetched (RSS 0.9x/1.0/2.0, Atom or JSON Feed, in any encoding
//! the XML declaration names; UTF-16 is transcoded here) and the URL it came from, used to
//! resolve relative links. Output: a [`ParsedFeed`] whose [`Item`]s are in document order,
//! carry plain text only (HTML reduced by [`html_to_text`], entities decoded, whitespace
//! collapsed to single spaces), absolute http(s) links, and the id the document itself gave
//! (never one invented by feed-rs, which makes random UUIDs for items without a link).
//! Every field is capped ([`MAX_ITEMS`], [`MAX_TITLE_BYTES`], [`MAX_TEXT_BYTES`], ...) so a
//! hostile document stays bounded. A document that is not a feed, or that feed-rs cannot
//! read even after the few repairs below, is a [`ParseError`]. The work is synchronous and
//! CPU-bound: callers run it on a blocking thread.

use std::borrow::Cow;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};
use feed_rs::model::{Feed, FeedType, Link, Person, Text};
use feed_rs::parser::{ParseErrorKind, ParseFeedError};
use url::Url;

/// Items kept from one document; later ones are dropped.
pub const MAX_ITEMS: usize = 10_000;
/// Cap on a title (feed or item), in bytes of plain text, cut on a char boundary.
pub const MAX_TITLE_BYTES: usize = 1024;
/// Cap on an item's summary and on its content, in bytes of plain text.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Cap on a guid; longer ones are cut (collisions need 2 KiB of identical prefix).
pub const MAX_GUID_BYTES: usize = 2048;
/// Links longer than this (after resolution) are ignored.
pub const MAX_LINK_BYTES: usize = 4096;
/// Cap on one author name or category.
pub const MAX_NAME_BYTES: usize = 256;
/// Authors and categories kept per item.
pub const MAX_NAMES: usize = 32;
/// Longest language tag kept (BCP 47 tags in practice stay far below).
const MAX_LANGUAGE_BYTES: usize = 35;
/// How far into a document the root element is looked for when classifying it.
const SNIFF_BYTES: usize = 64 * 1024;

/// One parsed document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedFeed {
    /// The feed's own title, plain text; `None` when absent or empty.
    pub title: Option<String>,
    /// Items in document order, duplicates of an earlier guid removed.
    pub items: Vec<Item>,
}

/// One normalized item.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    /// The id the document gave (RSS guid, Atom id, JSON Feed id), trimmed; `None` when
    /// absent. Never an id invented by feed-rs.
    pub guid: Option<String>,
    /// Plain text.
    pub title: String,
    /// Absolute http(s) link: the alternate link, else the first usable http(s) link, else
    /// (RSS) the guid when it is an http(s) URL.
    pub link: Option<Url>,
    /// Published, else updated.
    pub published: Option<DateTime<Utc>>,
    /// Plain text (RSS description, Atom summary, JSON Feed summary; media:description
    /// when there is none of those).
    pub summary: String,
    /// Plain text (content:encoded, Atom content, JSON Feed content_html/content_text).
    pub content: String,
    pub authors: Vec<String>,
    /// Category label, else term; plain text.
    pub categories: Vec<String>,
    /// Entry language, else the feed's; lower-cased, `_` written as `-`.
    pub language: Option<String>,
}

/// Why a document yielded no items.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The document is something else: an HTML page, an OPML list, another JSON document,
    /// plain text, nothing at all. The message is a hint for the operator.
    #[error("not a feed: {0}")]
    NotAFeed(String),
    /// The document looks like a feed but cannot be read; carries feed-rs's message.
    #[error("malformed feed: {0}")]
    Malformed(String),
}

impl ParseError {
    /// A stable, metric-friendly name for the error class.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::NotAFeed(_) => "not_a_feed",
            ParseError::Malformed(_) => "malformed",
        }
    }
}

/// Parses one feed document.
///
/// `base` is the URL the body was fetched from (after redirects); relative links resolve
/// against `xml:base`, then `base`, then the feed's own home-page link.
pub fn parse_feed(body: &[u8], base: Option<&Url>) -> Result<ParsedFeed, ParseError> {
    let body = transcode_utf16(body);
    let body: &[u8] = &body;
    let start = skip_bom_and_space(body);
    if start == body.len() {
        return Err(ParseError::NotAFeed("empty document".into()));
    }
    let head = &body[start..];
    if head[0] == b'[' {
        return Err(ParseError::NotAFeed(
            "a json array, not a json feed object".into(),
        ));
    }
    if head[0] == b'<' && looks_like_html_page(head) {
        return Err(ParseError::NotAFeed("looks like an HTML page".into()));
    }
    let feed = parse_with_repairs(body, base)?;
    Ok(normalize(feed, base))
}

/// Reduces HTML to one line of plain text.
///
/// Tags are dropped (their attributes never reach the text), the contents of `script`,
/// `style`, `template`, `noscript`, `iframe` and `svg` are dropped, block-level tags (and
/// unknown ones) separate words while inline ones (`b`, `a`, `span`, ...) do not, comments
/// and declarations vanish, CDATA sections become text, and every HTML entity is decoded
/// (named, decimal, hex, and the legacy forms without `;` such as `&amp` and `&nbsp`).
/// All whitespace, including NBSP and line breaks, collapses to single spaces, and the
/// result is trimmed: the output is a single line. Invisible characters (BOM, soft hyphen,
/// bidi marks, control characters) are removed. Malformed markup degrades to text: a `<`
/// that does not start a tag is kept literally. Runs in one pass over the input.
pub fn html_to_text(html: &str) -> String {
    reduce(html, true, usize::MAX)
}

// ---------------------------------------------------------------------------------------
// feed-rs invocation, repairs and error classification
// ---------------------------------------------------------------------------------------

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
fn parse_with_repairs(body: &[u8], base: Option<&Url>) -> Result<Feed, ParseError> {
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
fn transcode_utf16(body: &[u8]) -> Cow<'_, [u8]> {
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
fn skip_bom_and_space(body: &[u8]) -> usize {
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
fn looks_like_html_page(head: &[u8]) -> bool {
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

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b':' | b'.')
}

fn find_byte(haystack: &[u8], from: usize, needle: u8) -> Option<usize> {
    haystack
        .get(from..)?
        .iter()
        .position(|b| *b == needle)
        .map(|p| p + from)
}

fn find_bytes(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
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

// ---------------------------------------------------------------------------------------
// feed-rs model -> items
// ---------------------------------------------------------------------------------------

fn normalize(feed: Feed, base: Option<&Url>) -> ParsedFeed {
    let home = pick_link(&feed.links, base);
    // Relative item links resolve against the fetch URL; without one (a local file), against
    // the feed's home page.
    let link_base = base.or(home.as_ref());
    let title = feed
        .title
        .as_ref()
        .map(|t| text_plain(t, MAX_TITLE_BYTES))
        .filter(|t| !t.is_empty());
    let feed_language = feed.language.as_deref().and_then(normalize_language);
    let feed_authors = names(feed.authors.iter().map(person_name), MAX_NAMES);
    let guid_is_permalink = matches!(feed.feed_type, FeedType::RSS0 | FeedType::RSS2);

    let mut seen_guids: HashSet<String> = HashSet::new();
    let mut items = Vec::with_capacity(feed.entries.len().min(MAX_ITEMS));
    for entry in feed.entries {
        if items.len() >= MAX_ITEMS {
            break;
        }
        let guid = Some(entry.id.trim())
            .filter(|id| !id.is_empty())
            .map(|id| truncated(id, MAX_GUID_BYTES).to_string());
        if let Some(guid) = &guid
            && !seen_guids.insert(guid.clone())
        {
            continue; // keep the first of duplicate guids
        }
        let title = entry
            .title
            .as_ref()
            .map(|t| text_plain(t, MAX_TITLE_BYTES))
            .unwrap_or_default();
        let mut summary = entry
            .summary
            .as_ref()
            .map(|t| text_plain(t, MAX_TEXT_BYTES))
            .unwrap_or_default();
        if summary.is_empty()
            && let Some(description) = entry.media.iter().find_map(|m| m.description.as_ref())
        {
            summary = text_plain(description, MAX_TEXT_BYTES);
        }
        let content = entry
            .content
            .as_ref()
            .and_then(|c| {
                Some(typed_text(
                    c.body.as_deref()?,
                    c.content_type.as_str(),
                    MAX_TEXT_BYTES,
                ))
            })
            .unwrap_or_default();
        let mut link = pick_link(&entry.links, link_base);
        if link.is_none() && guid_is_permalink {
            // RSS guids are permalinks unless isPermaLink="false" (which feed-rs does not
            // report); a guid that is an http(s) URL is the best link there is.
            link = guid.as_deref().and_then(|g| resolve_link(g, None));
        }
        if guid.is_none()
            && link.is_none()
            && title.is_empty()
            && summary.is_empty()
            && content.is_empty()
        {
            continue; // nothing to show, match or key on
        }
        let authors = if entry.authors.is_empty() {
            feed_authors.clone()
        } else {
            names(entry.authors.iter().map(person_name), MAX_NAMES)
        };
        let categories = names(
            entry.categories.iter().map(|c| match c.label.as_deref() {
                Some(label) if !label.trim().is_empty() => label,
                _ => c.term.as_str(),
            }),
            MAX_NAMES,
        );
        let language = entry
            .language
            .as_deref()
            .and_then(normalize_language)
            .or_else(|| feed_language.clone());
        items.push(Item {
            guid,
            title,
            link,
            published: entry.published.or(entry.updated),
            summary,
            content,
            authors,
            categories,
            language,
        });
    }
    ParsedFeed { title, items }
}

/// The link an item (or feed) points at: the first alternate http(s) link, else the first
/// http(s) link that is not about the document itself (self, edit, replies, paging...).
fn pick_link(links: &[Link], base: Option<&Url>) -> Option<Url> {
    let mut fallback = None;
    for link in links {
        if link.target.is_some() {
            continue; // comments, comment feeds
        }
        let rel = link.rel.as_deref().map(str::trim);
        let alternate = match rel {
            Some(rel) => rel.eq_ignore_ascii_case("alternate"),
            // RSS <link> and JSON Feed url/external_url carry no rel; JSON attachments
            // carry a media type.
            None => link.media_type.is_none(),
        };
        let excluded = rel.is_some_and(|rel| {
            [
                "self",
                "edit",
                "edit-media",
                "replies",
                "hub",
                "license",
                "next",
                "previous",
                "prev",
                "first",
                "last",
                "payment",
                "search",
            ]
            .iter()
            .any(|r| rel.eq_ignore_ascii_case(r))
        });
        if !alternate && (excluded || fallback.is_some()) {
            continue;
        }
        let Some(url) = resolve_link(&link.href, base) else {
            continue;
        };
        if alternate {
            return Some(url);
        }
        fallback = Some(url);
    }
    fallback
}

/// An absolute http(s) URL from an href (resolved against `base` when relative).
fn resolve_link(href: &str, base: Option<&Url>) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() || href.len() > MAX_LINK_BYTES {
        return None;
    }
    let url = match Url::parse(href) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => match base {
            Some(base) => base.join(href).ok()?,
            // A scheme-relative link with nothing to resolve it against: assume https.
            None if href.starts_with("//") => Url::parse(&format!("https:{href}")).ok()?,
            None => return None,
        },
        Err(_) => return None,
    };
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.as_str().len() <= MAX_LINK_BYTES;
    usable.then_some(url)
}

fn person_name(person: &Person) -> &str {
    match person.name.as_deref() {
        Some(name) if !name.trim().is_empty() => name,
        _ => person.email.as_deref().unwrap_or(""),
    }
}

/// Plain, capped, non-empty, de-duplicated names (authors, categories), in order.
fn names<'a>(raw: impl Iterator<Item = &'a str>, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in raw {
        if out.len() >= max {
            break;
        }
        let mut text = plain_or_html(name, MAX_NAME_BYTES);
        // RSS authors read "jane@example.org (Jane Doe)"; feed-rs leaves the parentheses.
        if text.starts_with('(') && text.ends_with(')') && text.len() >= 2 {
            text = text[1..text.len() - 1].trim().to_string();
        }
        if !text.is_empty() && !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

fn normalize_language(raw: &str) -> Option<String> {
    let tag = raw.trim();
    let valid = !tag.is_empty()
        && tag.len() <= MAX_LANGUAGE_BYTES
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then(|| tag.to_ascii_lowercase().replace('_', "-"))
}

fn text_plain(text: &Text, cap: usize) -> String {
    typed_text(&text.content, text.content_type.as_str(), cap)
}

/// Plain text from a body of the given media type: HTML and XML are reduced, other text
/// types are reduced only when they visibly carry markup (RSS titles and descriptions have
/// no declared type and often hold escaped HTML), binary types give nothing.
fn typed_text(body: &str, media_type: &str, cap: usize) -> String {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (ty, subty) = essence.split_once('/').unwrap_or((essence.as_str(), ""));
    // feed-rs labels Atom `type="xhtml"` as `application/xhtml`.
    if matches!(subty, "html" | "xhtml" | "xml") || subty.ends_with("+xml") {
        reduce(body, true, cap)
    } else if ty == "text" {
        plain_or_html(body, cap)
    } else {
        String::new()
    }
}

fn plain_or_html(text: &str, cap: usize) -> String {
    reduce(text, looks_like_markup(text), cap)
}

fn truncated(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

// ---------------------------------------------------------------------------------------
// HTML -> text
// ---------------------------------------------------------------------------------------

/// How a tag affects the text around it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TagKind {
    /// Formatting inside a line: `a<b>b</b>` reads "ab".
    Inline,
    /// Separates what is before from what is after (block, line break, embedded object).
    Block,
    /// Its content is not text (script, style...): dropped up to the closing tag.
    Raw,
    /// Not an HTML element we know: separates words, but is no evidence of markup.
    Unknown,
}

fn tag_kind(name: &[u8]) -> TagKind {
    let mut lower = [0u8; 12];
    if name.len() > lower.len() {
        return TagKind::Unknown;
    }
    for (dst, src) in lower.iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    match &lower[..name.len()] {
        b"a" | b"abbr" | b"acronym" | b"b" | b"bdi" | b"bdo" | b"big" | b"blink" | b"cite"
        | b"code" | b"data" | b"del" | b"dfn" | b"em" | b"font" | b"i" | b"ins" | b"kbd"
        | b"label" | b"mark" | b"nobr" | b"q" | b"rp" | b"rt" | b"rtc" | b"ruby" | b"s"
        | b"samp" | b"small" | b"span" | b"strike" | b"strong" | b"sub" | b"sup" | b"time"
        | b"tt" | b"u" | b"var" | b"wbr" => TagKind::Inline,
        b"script" | b"style" | b"template" | b"noscript" | b"iframe" | b"svg" => TagKind::Raw,
        b"address" | b"area" | b"article" | b"aside" | b"audio" | b"base" | b"blockquote"
        | b"body" | b"br" | b"button" | b"canvas" | b"caption" | b"center" | b"col"
        | b"colgroup" | b"dd" | b"details" | b"dialog" | b"dir" | b"div" | b"dl" | b"dt"
        | b"embed" | b"fieldset" | b"figcaption" | b"figure" | b"footer" | b"form" | b"frame"
        | b"frameset" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" | b"head" | b"header"
        | b"hgroup" | b"hr" | b"html" | b"img" | b"input" | b"legend" | b"li" | b"link"
        | b"main" | b"map" | b"menu" | b"meta" | b"nav" | b"object" | b"ol" | b"optgroup"
        | b"option" | b"p" | b"param" | b"picture" | b"pre" | b"section" | b"select"
        | b"source" | b"summary" | b"table" | b"tbody" | b"td" | b"textarea" | b"tfoot" | b"th"
        | b"thead" | b"title" | b"tr" | b"track" | b"ul" | b"video" => TagKind::Block,
        _ => TagKind::Unknown,
    }
}

/// True when text declared plain visibly carries HTML: a known tag or a comment.
fn looks_like_markup(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(lt) = find_byte(b, i, b'<') {
        i = lt + 1;
        let (name_start, closing) = match b.get(lt + 1) {
            Some(b'/') => (lt + 2, true),
            Some(b'!') => {
                if b[lt + 2..].starts_with(b"--") {
                    return true;
                }
                continue;
            }
            Some(_) => (lt + 1, false),
            None => break,
        };
        let len = b[name_start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if len == 0 || !b[name_start].is_ascii_alphabetic() {
            continue;
        }
        let follows = b.get(name_start + len).copied();
        let ends_name = match follows {
            Some(c) => c == b'>' || c == b'/' || (!closing && c.is_ascii_whitespace()),
            None => false,
        };
        if ends_name && tag_kind(&b[name_start..name_start + len]) != TagKind::Unknown {
            return true;
        }
    }
    false
}

/// The text being built: whitespace collapses into one pending space, emitted only before
/// the next visible character, so the result is trimmed by construction.
struct TextOut {
    buf: String,
    pending_space: bool,
    cap: usize,
}

impl TextOut {
    fn space(&mut self) {
        if !self.buf.is_empty() {
            self.pending_space = true;
        }
    }

    fn push(&mut self, c: char) {
        if c.is_whitespace() || c == '\u{200B}' {
            self.space();
            return;
        }
        if is_invisible(c) {
            return;
        }
        if self.pending_space {
            self.buf.push(' ');
            self.pending_space = false;
        }
        self.buf.push(c);
    }

    fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            self.push(c);
        }
    }

    fn full(&self) -> bool {
        self.buf.len() >= self.cap
    }

    fn finish(mut self) -> String {
        if self.buf.len() > self.cap {
            let keep = truncated(&self.buf, self.cap).trim_end().len();
            self.buf.truncate(keep);
        }
        self.buf
    }
}

/// Characters with no visible form that would split words for matching: BOM, soft hyphen,
/// bidi controls, control characters. (ZWJ/ZWNJ stay: Persian and Indic words need them.)
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{FEFF}' | '\u{00AD}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Searches that failed once cannot succeed later from a further offset: remembering that
/// keeps hostile input (`<a<a<a...` without any `>`) linear.
struct Scanner<'a> {
    b: &'a [u8],
    no_gt_from: usize,
    no_quote_from: [usize; 2],
}

impl Scanner<'_> {
    fn find_gt(&mut self, from: usize) -> Option<usize> {
        if from >= self.no_gt_from {
            return None;
        }
        let found = find_byte(self.b, from, b'>');
        if found.is_none() {
            self.no_gt_from = from;
        }
        found
    }

    fn find_quote(&mut self, from: usize, quote: u8) -> Option<usize> {
        let slot = usize::from(quote == b'\'');
        if from >= self.no_quote_from[slot] {
            return None;
        }
        let found = find_byte(self.b, from, quote);
        if found.is_none() {
            self.no_quote_from[slot] = from;
        }
        found
    }

    /// End of a start tag whose name ends at `from`: the offset of its `>` (quoted attribute
    /// values may contain `>`) and whether it is self-closed (`/>`).
    fn find_tag_end(&mut self, from: usize) -> Option<(usize, bool)> {
        let b = self.b;
        // Without any `>` ahead there is no tag; checking first keeps `<a<a<a...` linear.
        let first_gt = self.find_gt(from)?;
        let mut j = from;
        let mut last = 0u8; // last significant byte seen
        while j < b.len() {
            match b[j] {
                b'>' => return Some((j, last == b'/')),
                q @ (b'"' | b'\'') if last == b'=' => match self.find_quote(j + 1, q) {
                    Some(close) => {
                        j = close + 1;
                        last = q;
                        continue;
                    }
                    None => break, // unbalanced quote: fall back to the first `>`
                },
                c if c.is_ascii_whitespace() => {}
                c => last = c,
            }
            j += 1;
        }
        Some((first_gt, b[first_gt - 1] == b'/'))
    }

    /// Offset just past `</name ...>` (ASCII case-insensitive), searching from `from`.
    fn find_close_tag(&mut self, from: usize, name: &[u8]) -> Option<usize> {
        let b = self.b;
        let mut i = from;
        while let Some(lt) = find_byte(b, i, b'<') {
            i = lt + 1;
            let rest = &b[lt..];
            if rest.len() >= 2 + name.len()
                && rest[1] == b'/'
                && rest[2..2 + name.len()].eq_ignore_ascii_case(name)
                && rest
                    .get(2 + name.len())
                    .is_none_or(|c| *c == b'>' || *c == b'/' || c.is_ascii_whitespace())
            {
                return Some(self.find_gt(lt).map_or(b.len(), |gt| gt + 1));
            }
        }
        None
    }
}

/// The one-pass reducer behind [`html_to_text`]; with `markup` false, `<` is plain text and
/// only entities and whitespace are handled. Stops once `cap` bytes are written.
fn reduce(input: &str, markup: bool, cap: usize) -> String {
    let b = input.as_bytes();
    let mut out = TextOut {
        buf: String::with_capacity(input.len().min(cap.saturating_add(8))),
        pending_space: false,
        cap,
    };
    let mut scan = Scanner {
        b,
        no_gt_from: usize::MAX,
        no_quote_from: [usize::MAX; 2],
    };
    let mut i = 0;
    while i < b.len() && !out.full() {
        match b[i] {
            b'<' if markup => i = markup_at(input, i, &mut scan, &mut out),
            b'&' => i = entity_at(input, i, &mut out),
            c if c.is_ascii() => {
                out.push(char::from(c));
                i += 1;
            }
            _ => match input.get(i..).and_then(|rest| rest.chars().next()) {
                Some(c) => {
                    out.push(c);
                    i += c.len_utf8();
                }
                None => break, // unreachable: `i` always sits on a char boundary
            },
        }
    }
    out.finish()
}

/// Handles the `<` at `i`; returns where to continue.
fn markup_at(input: &str, i: usize, scan: &mut Scanner<'_>, out: &mut TextOut) -> usize {
    let b = input.as_bytes();
    let literal = |out: &mut TextOut| {
        out.push('<');
        i + 1
    };
    match b.get(i + 1).copied() {
        Some(b'!') => {
            let rest = &b[i..];
            if rest.starts_with(b"<!--") {
                // An unclosed comment runs to the end, as in browsers.
                return find_bytes(b, i + 4, b"-->").map_or(b.len(), |p| p + 3);
            }
            if rest.starts_with(b"<![CDATA[") {
                let start = i + 9;
                let end = find_bytes(b, start, b"]]>");
                let text_end = end.unwrap_or(b.len());
                out.push_str(input.get(start..text_end).unwrap_or(""));
                return end.map_or(b.len(), |p| p + 3);
            }
            match scan.find_gt(i + 2) {
                Some(gt) => gt + 1, // <!DOCTYPE ...>
                None => literal(out),
            }
        }
        Some(b'?') => match scan.find_gt(i + 2) {
            Some(gt) => gt + 1, // <?xml ...?>
            None => literal(out),
        },
        Some(b'/') if b.get(i + 2).is_some_and(u8::is_ascii_alphabetic) => {
            let name_len = b[i + 2..].iter().take_while(|c| is_name_byte(**c)).count();
            match scan.find_gt(i + 2 + name_len) {
                Some(gt) => {
                    if tag_kind(&b[i + 2..i + 2 + name_len]) != TagKind::Inline {
                        out.space();
                    }
                    gt + 1
                }
                None => literal(out),
            }
        }
        Some(c) if c.is_ascii_alphabetic() => {
            let name_len = b[i + 1..].iter().take_while(|c| is_name_byte(**c)).count();
            let name = &b[i + 1..i + 1 + name_len];
            let Some((gt, self_closed)) = scan.find_tag_end(i + 1 + name_len) else {
                return literal(out);
            };
            match tag_kind(name) {
                TagKind::Inline => gt + 1,
                TagKind::Raw if !self_closed => {
                    out.space();
                    // Unclosed script/style swallows the rest, as in browsers.
                    scan.find_close_tag(gt + 1, name).unwrap_or(b.len())
                }
                _ => {
                    out.space();
                    gt + 1
                }
            }
        }
        _ => literal(out),
    }
}

/// Decodes the entity at `i` (an `&`); returns where to continue. Unknown or malformed
/// references stay as they are.
fn entity_at(input: &str, i: usize, out: &mut TextOut) -> usize {
    let b = input.as_bytes();
    let literal = |out: &mut TextOut| {
        out.push('&');
        i + 1
    };
    if b.get(i + 1) == Some(&b'#') {
        let hex = matches!(b.get(i + 2), Some(b'x' | b'X'));
        let digits_start = if hex { i + 3 } else { i + 2 };
        let digits = b[digits_start.min(b.len())..]
            .iter()
            .take_while(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 {
            return literal(out);
        }
        let text = &input[digits_start..digits_start + digits];
        let value = u32::from_str_radix(text, if hex { 16 } else { 10 }).unwrap_or(u32::MAX);
        out.push(numeric_reference(value));
        let end = digits_start + digits;
        return if b.get(end) == Some(&b';') {
            end + 1
        } else {
            end
        };
    }
    let name_len = b[i + 1..]
        .iter()
        .take(40)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    if name_len == 0 {
        return literal(out);
    }
    let name_end = i + 1 + name_len;
    if b.get(name_end) == Some(&b';') {
        let reference = &input[i..=name_end];
        let decoded = html_escape::decode_html_entities(reference);
        if decoded != reference {
            out.push_str(&decoded);
            return name_end + 1;
        }
        return literal(out);
    }
    // Legacy references browsers still accept without `;`.
    let legacy = match &input[i + 1..name_end] {
        "amp" | "AMP" => "&",
        "lt" | "LT" => "<",
        "gt" | "GT" => ">",
        "quot" | "QUOT" => "\"",
        "nbsp" => "\u{A0}",
        "copy" | "COPY" => "\u{A9}",
        "reg" | "REG" => "\u{AE}",
        _ => return literal(out),
    };
    out.push_str(legacy);
    name_end
}

/// A numeric character reference as HTML reads it: 0x80-0x9F are windows-1252 (as
/// `&#146;` means a right quote), invalid code points become U+FFFD.
fn numeric_reference(value: u32) -> char {
    match value {
        0 => char::REPLACEMENT_CHARACTER,
        0x80..=0x9F => CP1252_C1[(value - 0x80) as usize],
        _ => char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER),
    }
}

/// What windows-1252 puts at 0x80-0x9F (the five undefined bytes stay C1 controls).
const CP1252_C1: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}', '\u{017D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{9D}', '\u{017E}', '\u{0178}',
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::item_key;
    use chrono::TimeZone;
    use std::path::{Path, PathBuf};

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test url")
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid date")
    }

    fn parse(doc: &[u8], base: Option<&str>) -> ParsedFeed {
        let base = base.map(url);
        match parse_feed(doc, base.as_ref()) {
            Ok(feed) => feed,
            Err(err) => panic!("document should parse: {err}"),
        }
    }

    const RSS2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>Wire &amp; Co &lt;b&gt;World&lt;/b&gt;</title>
  <link>https://news.example.org/</link>
  <description>World news</description>
  <language>en-US</language>
  <item>
    <title>Iran &amp;amp; China sign &lt;em&gt;deal&lt;/em&gt;</title>
    <link>https://news.example.org/world/iran-china?utm_source=rss&amp;id=7#top</link>
    <guid isPermaLink="false">  wire-0001  </guid>
    <pubDate>Tue, 10 Jun 2025 08:30:00 GMT</pubDate>
    <description><![CDATA[<p>The <b>SCO</b> summit&nbsp;opened.</p><p>Talks&#8217; end.</p>]]></description>
    <content:encoded><![CDATA[<div><script>var x = "<p>hidden</p>";</script><p>Full</p><p>text</p></div>]]></content:encoded>
    <category>World</category>
    <category>Middle East</category>
    <category>World</category>
    <author>desk@example.org (Wire Desk)</author>
  </item>
  <item>
    <title>Second</title>
    <link>/world/second</link>
    <description>Plain &amp;amp; simple</description>
  </item>
  <item>
    <title>Third, without guid or link</title>
    <description>Only text</description>
    <pubDate>Wed, 11 Jun 2025 07:00:00 +0000</pubDate>
  </item>
  <item>
    <guid>wire-0001</guid>
    <title>Duplicate of the first</title>
  </item>
  <item>
    <guid isPermaLink="true">https://news.example.org/permalink/5</guid>
    <title>Permalink only</title>
  </item>
  <item>
    <guid>   </guid>
    <title>Blank guid</title>
    <link>https://news.example.org/blank</link>
  </item>
</channel>
</rss>"#;

    #[test]
    fn rss2_items_are_normalized_in_document_order() {
        let feed = parse(RSS2.as_bytes(), Some("https://news.example.org/feed.xml"));
        assert_eq!(feed.title.as_deref(), Some("Wire & Co World"));
        let titles: Vec<&str> = feed.items.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Iran & China sign deal",
                "Second",
                "Third, without guid or link",
                "Permalink only",
                "Blank guid"
            ]
        );

        let first = &feed.items[0];
        assert_eq!(first.guid.as_deref(), Some("wire-0001"));
        assert_eq!(
            first.link.as_ref().map(Url::as_str),
            Some("https://news.example.org/world/iran-china?utm_source=rss&id=7#top")
        );
        assert_eq!(first.published, Some(utc(2025, 6, 10, 8, 30)));
        assert_eq!(first.summary, "The SCO summit opened. Talks\u{2019} end.");
        assert_eq!(first.content, "Full text");
        assert_eq!(first.categories, ["World", "Middle East"]);
        assert_eq!(first.authors, ["Wire Desk"]);
        assert_eq!(first.language.as_deref(), Some("en-us"));
    }

    #[test]
    fn rss2_item_without_guid_is_keyed_by_its_resolved_link() {
        let feed = parse(RSS2.as_bytes(), Some("https://news.example.org/feed.xml"));
        let second = &feed.items[1];
        assert_eq!(second.guid, None);
        assert_eq!(second.summary, "Plain & simple");
        assert_eq!(
            item_key(second),
            "link:https://news.example.org/world/second"
        );
        // A permalink guid is the link when there is no other.
        let permalink = &feed.items[3];
        assert_eq!(
            permalink.link.as_ref().map(Url::as_str),
            Some("https://news.example.org/permalink/5")
        );
        assert_eq!(
            item_key(permalink),
            "guid:https://news.example.org/permalink/5"
        );
        // A blank guid is no guid.
        assert_eq!(feed.items[4].guid, None);
        assert_eq!(
            item_key(&feed.items[4]),
            "link:https://news.example.org/blank"
        );
    }

    #[test]
    fn item_without_guid_or_link_gets_a_hash_key_stable_across_parses() {
        let once = parse(RSS2.as_bytes(), Some("https://news.example.org/feed.xml"));
        let twice = parse(RSS2.as_bytes(), Some("https://news.example.org/feed.xml"));
        assert_eq!(once, twice);
        let keys = |f: &ParsedFeed| f.items.iter().map(item_key).collect::<Vec<_>>();
        assert_eq!(keys(&once), keys(&twice));

        let third = &once.items[2];
        assert_eq!((third.guid.as_ref(), third.link.as_ref()), (None, None));
        let key = item_key(third);
        assert!(key.starts_with("hash:") && key.len() == 5 + 64, "{key}");

        let retitled = RSS2.replace("Third, without guid or link", "Third, retitled");
        let other = parse(
            retitled.as_bytes(),
            Some("https://news.example.org/feed.xml"),
        );
        assert_ne!(item_key(&other.items[2]), key);
    }

    #[test]
    fn duplicate_guids_keep_the_first_item() {
        let feed = parse(RSS2.as_bytes(), None);
        let firsts: Vec<&Item> = feed
            .items
            .iter()
            .filter(|i| i.guid.as_deref() == Some("wire-0001"))
            .collect();
        assert_eq!(firsts.len(), 1);
        assert_eq!(firsts[0].title, "Iran & China sign deal");
    }

    #[test]
    fn relative_links_resolve_against_the_home_page_without_a_fetch_url() {
        let feed = parse(RSS2.as_bytes(), None);
        assert_eq!(
            feed.items[1].link.as_ref().map(Url::as_str),
            Some("https://news.example.org/world/second")
        );
    }

    #[test]
    fn rss1_rdf_document_is_parsed() {
        let doc = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://rdf.example.org/">
    <title>RDF Wire</title>
    <link>https://rdf.example.org/</link>
    <description>x</description>
    <dc:language>fr-FR</dc:language>
  </channel>
  <item rdf:about="https://rdf.example.org/a">
    <title>T&#233;h&#233;ran et P&#xE9;kin</title>
    <link>https://rdf.example.org/a</link>
    <description>Un &lt;i&gt;accord&lt;/i&gt; sign&#233;</description>
    <dc:creator>Marie Curie</dc:creator>
    <dc:date>2025-06-10T09:00:00+02:00</dc:date>
  </item>
</rdf:RDF>"#;
        let feed = parse(doc.as_bytes(), None);
        assert_eq!(feed.title.as_deref(), Some("RDF Wire"));
        let [item] = feed.items.as_slice() else {
            panic!("one item expected: {:?}", feed.items);
        };
        assert_eq!(item.title, "Téhéran et Pékin");
        assert_eq!(item.guid, None);
        assert_eq!(
            item.link.as_ref().map(Url::as_str),
            Some("https://rdf.example.org/a")
        );
        assert_eq!(item.summary, "Un accord signé");
        assert_eq!(item.authors, ["Marie Curie"]);
        assert_eq!(item.published, Some(utc(2025, 6, 10, 7, 0)));
        assert_eq!(item.language.as_deref(), Some("fr-fr"));
        assert_eq!(item_key(item), "link:https://rdf.example.org/a");
    }

    #[test]
    fn rss091_in_latin1_is_decoded() {
        let mut doc = Vec::new();
        doc.extend_from_slice(
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n\
<!DOCTYPE rss PUBLIC \"-//Netscape Communications//DTD RSS 0.91//EN\"\n\
 \"http://my.netscape.com/publish/formats/rss-0.91.dtd\">\n\
<rss version=\"0.91\"><channel><title>Old Wire</title><link>http://old.example.com/</link>\n\
<description>d</description><language>en</language>\n\
<item><title>Caf\xe9 &amp; bar</title><link>http://old.example.com/1</link>\
<description>First &amp;nbsp;story</description></item>\n\
</channel></rss>",
        );
        let feed = parse(&doc, None);
        let [item] = feed.items.as_slice() else {
            panic!("one item expected: {:?}", feed.items);
        };
        assert_eq!(item.title, "Café & bar");
        assert_eq!(item.summary, "First story");
        assert_eq!(
            item.link.as_ref().map(Url::as_str),
            Some("http://old.example.com/1")
        );
        assert_eq!(item.language.as_deref(), Some("en"));
    }

    #[test]
    fn undeclared_latin1_bytes_are_read_as_windows_1252() {
        let no_decl: &[u8] = b"<rss version=\"2.0\"><channel><title>Not\xedcias</title>\
<item><title>Caf\xe9 \x93quoted\x94</title><link>https://l1.example/1</link></item></channel></rss>";
        let feed = parse(no_decl, None);
        assert_eq!(feed.title.as_deref(), Some("Not\u{ed}cias"));
        assert_eq!(feed.items[0].title, "Caf\u{e9} \u{201c}quoted\u{201d}");

        let mixed: &[u8] = "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel>\
<item><title>Tehr\u{101}n\u{2019}s X</title><link>https://l1.example/2</link></item></channel></rss>"
            .as_bytes();
        let mut mixed = mixed.to_vec();
        let x = mixed.iter().position(|b| *b == b'X').expect("marker");
        mixed[x] = 0x92;
        assert_eq!(
            parse(&mixed, None).items[0].title,
            "Tehr\u{101}n\u{2019}s \u{2019}"
        );
    }

    const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en" xml:base="https://atom.example.net/blog/">
  <title type="html">Atom &lt;i&gt;Wire&lt;/i&gt;</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <link href="/"/>
  <link rel="self" href="https://atom.example.net/feed.atom"/>
  <author><name>Feed Author</name></author>
  <updated>2025-06-10T10:00:00Z</updated>
  <entry>
    <title>Entry &amp;amp; one</title>
    <id>tag:atom.example.net,2025:1</id>
    <link rel="replies" href="posts/1/comments"/>
    <link rel="alternate" type="text/html" href="posts/1.html"/>
    <updated>2025-06-10T10:00:00Z</updated>
    <published>2025-06-09T10:00:00Z</published>
    <summary type="html">&lt;p&gt;Summary &lt;b&gt;bold&lt;/b&gt;&lt;/p&gt;&lt;p&gt;next&lt;/p&gt;</summary>
    <content type="xhtml" xml:lang="de"><div xmlns="http://www.w3.org/1999/xhtml"><p>Inhalt <b>fett</b></p><p>zwei</p></div></content>
    <category term="politics" label="Politics &amp; Power"/>
    <category term="asia"/>
    <author><name>Jane Roe</name><email>jane@example.net</email></author>
  </entry>
  <entry xml:base="https://other.example.net/x/">
    <title type="text">Second &lt;entry&gt; x&lt;y</title>
    <id>  tag:atom.example.net,2025:2  </id>
    <link href="../y/2"/>
    <updated>2025-06-11T10:00:00Z</updated>
  </entry>
</feed>"#;

    #[test]
    fn atom_resolves_xml_base_and_reduces_typed_text() {
        let feed = parse(ATOM.as_bytes(), Some("https://atom.example.net/feed.atom"));
        assert_eq!(feed.title.as_deref(), Some("Atom Wire"));
        let [first, second] = feed.items.as_slice() else {
            panic!("two items expected: {:?}", feed.items);
        };
        assert_eq!(first.guid.as_deref(), Some("tag:atom.example.net,2025:1"));
        assert_eq!(first.title, "Entry & one");
        assert_eq!(
            first.link.as_ref().map(Url::as_str),
            Some("https://atom.example.net/blog/posts/1.html")
        );
        assert_eq!(first.summary, "Summary bold next");
        assert_eq!(first.content, "Inhalt fett zwei");
        assert_eq!(first.published, Some(utc(2025, 6, 9, 10, 0)));
        assert_eq!(first.categories, ["Politics & Power", "asia"]);
        assert_eq!(first.authors, ["Jane Roe"]);
        assert_eq!(first.language.as_deref(), Some("de"));

        assert_eq!(second.guid.as_deref(), Some("tag:atom.example.net,2025:2"));
        // Declared plain text with no real tag in it keeps its angle brackets.
        assert_eq!(second.title, "Second <entry> x<y");
        assert_eq!(
            second.link.as_ref().map(Url::as_str),
            Some("https://other.example.net/y/2")
        );
        assert_eq!(second.published, Some(utc(2025, 6, 11, 10, 0)));
        assert_eq!(
            second.authors,
            ["Feed Author"],
            "entries inherit the feed's authors"
        );
        assert_eq!(second.language.as_deref(), Some("en"));
    }

    const JSON_FEED: &str = r#"{
  "version": "https://jsonfeed.org/version/1.1",
  "title": "JSON &amp; Wire",
  "home_page_url": "https://json.example.com/",
  "feed_url": "https://json.example.com/feed.json",
  "language": "en-GB",
  "authors": [{"name": "Desk"}],
  "items": [
    {
      "id": " 1 ",
      "url": "/items/1?fbclid=abc",
      "title": "Iran talks",
      "content_html": "<p>Talks <em>resume</em></p><p>today</p>",
      "summary": "Short &amp; sweet",
      "date_published": "2025-06-10T08:00:00Z",
      "tags": ["diplomacy", "iran"],
      "authors": [{"name": "A. Writer"}]
    },
    {"id": "2", "content_text": "Plain   text\nbody", "date_modified": "2025-06-11T08:00:00Z"},
    {"url": "https://json.example.com/items/3", "title": "No id"}
  ]
}"#;

    #[test]
    fn json_feed_items_are_normalized() {
        let feed = parse(
            JSON_FEED.as_bytes(),
            Some("https://json.example.com/feed.json"),
        );
        assert_eq!(feed.title.as_deref(), Some("JSON & Wire"));
        let [first, second, third] = feed.items.as_slice() else {
            panic!("three items expected: {:?}", feed.items);
        };
        assert_eq!(first.guid.as_deref(), Some("1"));
        assert_eq!(
            first.link.as_ref().map(Url::as_str),
            Some("https://json.example.com/items/1?fbclid=abc")
        );
        assert_eq!(first.content, "Talks resume today");
        assert_eq!(first.summary, "Short & sweet");
        assert_eq!(first.published, Some(utc(2025, 6, 10, 8, 0)));
        assert_eq!(first.categories, ["diplomacy", "iran"]);
        assert_eq!(first.authors, ["A. Writer"]);
        assert_eq!(first.language.as_deref(), Some("en-gb"));
        assert_eq!(item_key(first), "guid:1");

        assert_eq!(second.title, "");
        assert_eq!(second.content, "Plain text body");
        assert_eq!(second.published, Some(utc(2025, 6, 11, 8, 0)));
        assert_eq!(second.authors, ["Desk"]);

        assert_eq!(third.guid, None);
        assert_eq!(item_key(third), "link:https://json.example.com/items/3");
    }

    #[test]
    fn json_feed_relative_urls_resolve_against_the_home_page_without_a_fetch_url() {
        let feed = parse(JSON_FEED.as_bytes(), None);
        assert_eq!(
            feed.items[0].link.as_ref().map(Url::as_str),
            Some("https://json.example.com/items/1?fbclid=abc")
        );
    }

    #[test]
    fn json_feed_with_http_version_url_is_accepted() {
        let doc = JSON_FEED.replace(
            "https://jsonfeed.org/version/1.1",
            "http://jsonfeed.org/version/1",
        );
        assert_eq!(parse(doc.as_bytes(), None).items.len(), 3);
        let escaped = JSON_FEED.replace(
            "https://jsonfeed.org/version/1.1",
            "http:\\/\\/jsonfeed.org\\/version\\/1",
        );
        assert_eq!(parse(escaped.as_bytes(), None).items.len(), 3);
    }

    #[test]
    fn rss_without_version_is_read_as_rss2() {
        let doc = "<rss><channel><title>v</title><item><title>a</title><link>https://v.example/a</link></item></channel></rss>";
        let feed = parse(doc.as_bytes(), None);
        assert_eq!(feed.items.len(), 1);
        let odd = doc.replace("<rss>", "<rss version='0.94' >");
        assert_eq!(parse(odd.as_bytes(), None).items.len(), 1);
    }

    #[test]
    fn empty_media_description_does_not_sink_the_feed() {
        let doc = r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:m="http://search.yahoo.com/mrss/">
<channel><title>NYT-like</title>
<item><title>One</title><link>https://nyt.example/1</link><m:description/><m:title></m:title><m:credit/></item>
<item><title>Two</title><link>https://nyt.example/2</link>
<m:content url="https://nyt.example/2.jpg" medium="image"/><m:description type="plain">Photo caption</m:description></item>
</channel></rss>"#;
        let feed = parse(doc.as_bytes(), None);
        assert_eq!(feed.items.len(), 2);
        assert_eq!(
            feed.items[1].summary, "Photo caption",
            "media:description backs a missing summary"
        );
    }

    #[test]
    fn unknown_text_types_do_not_sink_the_feed() {
        let doc = r#"<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
<title type="text/plain">Typed</title>
<entry><id>e1</id><title type='TEXT'>One &lt;b&gt;x&lt;/b&gt;</title>
<media:group><media:content url="https://t.example/v.mp4"/><media:title type="text">Clip</media:title></media:group>
<summary type="text/plain">Sum</summary></entry>
</feed>"#;
        let feed = parse(doc.as_bytes(), None);
        assert_eq!(feed.title.as_deref(), Some("Typed"));
        assert_eq!(feed.items[0].title, "One x");
        assert_eq!(feed.items[0].summary, "Sum");
    }

    #[test]
    fn utf16_documents_are_transcoded() {
        let doc = "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss version=\"2.0\"><channel><title>Ünïcode</title>\
<item><title>Tehrān</title><link>https://u16.example/1</link></item></channel></rss>";
        let le_bom: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(doc.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be_plain: Vec<u8> = doc.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for body in [le_bom, be_plain] {
            let feed = parse(&body, None);
            assert_eq!(feed.title.as_deref(), Some("Ünïcode"));
            assert_eq!(feed.items[0].title, "Tehrān");
        }
    }

    #[test]
    fn documents_that_are_not_feeds_are_refused_with_a_hint() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b" \n\t ", "empty"),
            (
                b"<!DOCTYPE html>\n<html><head><meta charset=utf-8><title>x</title></head></html>",
                "HTML page",
            ),
            (
                b"\xef\xbb\xbf<html lang=en><body>hi</body></html>",
                "HTML page",
            ),
            (
                b"<?xml version=\"1.0\"?><opml version=\"2.0\"><body/></opml>",
                "OPML",
            ),
            (
                b"<?xml version=\"1.0\"?><sitemap><url/></sitemap>",
                "<sitemap>",
            ),
            (b"Service Unavailable", "neither xml nor json"),
            (b"{\"error\": \"rate limited\"}", "json"),
            (b"[{\"a\": 1}]", "json array"),
        ];
        for (body, hint) in cases {
            match parse_feed(body, None) {
                Err(err @ ParseError::NotAFeed(_)) => {
                    assert!(
                        err.to_string().contains(hint),
                        "{err} should mention {hint}"
                    );
                    assert_eq!(err.kind(), "not_a_feed");
                }
                other => panic!(
                    "{:?} should be refused as not a feed, got {other:?}",
                    String::from_utf8_lossy(body)
                ),
            }
        }
    }

    #[test]
    fn broken_feeds_are_malformed_with_feed_rs_message() {
        let cases: &[&[u8]] = &[
            b"<rss version=\"2.0\"><channel><item><title>cut off",
            b"<?xml version=\"1.0\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><title>x</titl></entry></feed>",
            b"{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \"t\", \"items\": [",
        ];
        for body in cases {
            match parse_feed(body, None) {
                Err(err @ ParseError::Malformed(_)) => {
                    assert!(err.to_string().starts_with("malformed feed: "), "{err}");
                }
                other => panic!(
                    "{:?} should be malformed, got {other:?}",
                    String::from_utf8_lossy(body)
                ),
            }
        }
    }

    #[test]
    fn a_crash_inside_feed_rs_becomes_a_malformed_error() {
        // feed-rs 3.0.0 unwraps an overflowing u64 when it reads this duration.
        let doc = br#"<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel><title>p</title><item><title>e</title><link>https://p.example/1</link>
<itunes:duration>99999999999999999999999:00:00</itunes:duration></item></channel></rss>"#;
        match parse_feed(doc, None) {
            Err(ParseError::Malformed(message)) => {
                assert!(message.contains("crashed"), "{message}")
            }
            other => panic!("expected a malformed error, got {other:?}"),
        }
    }

    #[test]
    fn declared_entities_are_never_expanded() {
        let doc = br#"<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<rss version="2.0"><channel><title>&lol3;</title>
<item><title>a &lol3; b</title><link>https://lol.example/1</link></item></channel></rss>"#;
        if let Ok(feed) = parse_feed(doc, None) {
            for item in &feed.items {
                assert!(item.title.len() < 64, "entity expanded: {}", item.title);
            }
        }
    }

    #[test]
    fn fields_and_item_count_are_capped() {
        let long_title = "é".repeat(5000);
        let long_body = "word ".repeat(40_000);
        let mut doc = format!(
            "<rss version=\"2.0\"><channel><title>{long_title}</title>\
<item><title>{long_title}</title><description>{long_body}</description><guid>big</guid></item>"
        );
        for n in 0..MAX_ITEMS + 50 {
            doc.push_str(&format!(
                "<item><guid>g{n}</guid><title>t{n}</title></item>"
            ));
        }
        doc.push_str("</channel></rss>");
        let feed = parse(doc.as_bytes(), None);
        assert_eq!(feed.items.len(), MAX_ITEMS);
        let title = feed.title.unwrap_or_default();
        assert!(title.len() <= MAX_TITLE_BYTES && title.len() > MAX_TITLE_BYTES - 4);
        assert!(title.chars().all(|c| c == 'é'));
        let big = &feed.items[0];
        assert!(big.title.len() <= MAX_TITLE_BYTES);
        assert!(big.summary.len() <= MAX_TEXT_BYTES && big.summary.len() > MAX_TEXT_BYTES - 8);
        assert!(big.summary.starts_with("word word") && !big.summary.ends_with(' '));
        assert_eq!(
            feed.items[MAX_ITEMS - 1].title,
            format!("t{}", MAX_ITEMS - 2)
        );
    }

    #[test]
    fn hostile_markup_stays_fast_and_bounded() {
        let started = std::time::Instant::now();
        for attack in [
            "<a".repeat(200_000),
            "<a x='".repeat(100_000),
            "&#".repeat(200_000),
            "<!-".repeat(200_000),
        ] {
            let text = html_to_text(&attack);
            assert!(text.len() <= attack.len());
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "quadratic behaviour"
        );
    }

    #[test]
    fn html_to_text_table() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("plain text", "plain text"),
            ("  lots   of \n\t space  ", "lots of space"),
            ("<p>a</p><p>b</p>", "a b"),
            ("a<br>b<br/>c<BR />d", "a b c d"),
            ("<b>Ir</b>an and <span>Chi</span>na", "Iran and China"),
            (
                "<a href=\"https://x.example/?q=1\" title=\"secret\">link</a>",
                "link",
            ),
            ("<a href='x>y' data-x=\"a > b\">z</a>", "z"),
            ("<img src=x alt=\"Alt text\">caption", "caption"),
            (
                "<script>alert('<p>x</p>')</script>visible<style>p { color: red }</style>",
                "visible",
            ),
            (
                "<SCRIPT type='text/javascript'>var a = '</p>';</SCRIPT >after",
                "after",
            ),
            (
                "AT&amp;T &lt;tag&gt; &quot;q&quot; &#39;s &apos;",
                "AT&T <tag> \"q\" 's '",
            ),
            (
                "it&#8217;s &#x2019; &#X2019; &rsquo;",
                "it\u{2019}s \u{2019} \u{2019} \u{2019}",
            ),
            ("&#146;quoted&#148;", "\u{2019}quoted\u{201d}"),
            ("a&nbsp;b&nbsp;&nbsp;c\u{a0}d", "a b c d"),
            ("&unknown; &amp &nbsp x &; & ;", "&unknown; & x &; & ;"),
            ("a < b and c > d", "a < b and c > d"),
            ("x <y", "x <y"),
            ("3<4", "3<4"),
            ("<p>unclosed <b>bold", "unclosed bold"),
            ("one <!-- hidden <p>x</p> --> two", "one two"),
            ("kept <!-- never closed", "kept"),
            ("<![CDATA[a < b]]> c", "a < b c"),
            ("<div><ul><li>one</li><li>two</li></ul></div>", "one two"),
            (
                "<h1>Title</h1><table><tr><td>a</td><td>b</td></tr></table>",
                "Title a b",
            ),
            ("<!DOCTYPE html><html><body>hi</body></html>", "hi"),
            ("<?xml version=\"1.0\"?><p>x</p>", "x"),
            (
                "soft\u{ad}hyphen \u{feff}bom \u{200e}mark",
                "softhyphen bom mark",
            ),
            ("<p>unterminated <script>never closed", "unterminated"),
            ("<o:p>word</o:p>next", "word next"),
            ("line1\r\nline2", "line1 line2"),
            ("Tehrān 伊朗 ایران", "Tehrān 伊朗 ایران"),
            ("&#0; &#xD800; &#99999999999;", "\u{fffd} \u{fffd} \u{fffd}"),
        ];
        for (input, expected) in cases {
            assert_eq!(html_to_text(input), *expected, "html_to_text({input:?})");
        }
    }

    #[test]
    fn plain_text_without_markup_is_unchanged_but_for_spaces_and_entities() {
        let text = "Iran's  FM: \"no deal\" <- 5 > 3 & more";
        assert_eq!(html_to_text(text), "Iran's FM: \"no deal\" <- 5 > 3 & more");
        assert_eq!(plain_or_html("x<y and y>z", 100), "x<y and y>z");
        assert_eq!(plain_or_html("x <b>bold</b>", 100), "x bold");
    }

    fn corpus_dir() -> Option<PathBuf> {
        let relative = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus"));
        [relative, Path::new("/work/shared/corpus")]
            .into_iter()
            .find(|dir| dir.join("MANIFEST.tsv").is_file())
            .map(Path::to_path_buf)
    }

    /// (path, category) of every corpus file.
    fn corpus_files(dir: &Path) -> Vec<(String, String)> {
        let manifest =
            std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("readable manifest");
        manifest
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut cols = line.split('\t');
                let path = cols.next()?.to_string();
                let category = cols.nth(1)?.to_string();
                Some((path, category))
            })
            .collect()
    }

    #[test]
    fn real_world_corpus_parses_with_non_empty_keys() {
        let Some(dir) = corpus_dir() else {
            println!("skipped: corpus not found at ../shared/corpus");
            return;
        };
        let (mut parsed, mut refused, mut items) = (0usize, 0usize, 0usize);
        for (path, category) in corpus_files(&dir) {
            if category != "real-world-news" && category != "real-world" {
                continue;
            }
            let body = std::fs::read(dir.join(&path)).expect("readable corpus file");
            let base = url("https://corpus.example/")
                .join(&path)
                .expect("corpus url");
            match parse_feed(&body, Some(&base)) {
                Ok(feed) => {
                    parsed += 1;
                    items += feed.items.len();
                    for item in &feed.items {
                        let key = item_key(item);
                        assert!(key.len() > 5, "{path}: empty key for {item:?}");
                        if let Some(link) = &item.link {
                            assert!(matches!(link.scheme(), "http" | "https"), "{path}: {link}");
                        }
                    }
                }
                Err(err) => {
                    refused += 1;
                    println!("refused {path}: {err}");
                }
            }
        }
        println!("real-world corpus: {parsed} parsed, {refused} refused, {items} items");
        assert!(parsed + refused > 100, "corpus unexpectedly small");
        assert!(
            parsed * 100 >= (parsed + refused) * 95,
            "too many refused: {refused}"
        );
    }

    #[test]
    fn whole_corpus_is_parsed_or_refused_without_panicking() {
        let Some(dir) = corpus_dir() else {
            println!("skipped: corpus not found at ../shared/corpus");
            return;
        };
        let (mut parsed, mut refused) = (0usize, 0usize);
        for (path, _) in corpus_files(&dir) {
            let Ok(body) = std::fs::read(dir.join(&path)) else {
                continue;
            };
            match parse_feed(&body, None) {
                Ok(feed) => {
                    parsed += 1;
                    assert!(feed.items.iter().all(|i| !item_key(i).is_empty()));
                }
                Err(err) => {
                    refused += 1;
                    if std::env::var_os("CORPUS_VERBOSE").is_some() {
                        println!("refused {path}: {err}");
                    }
                }
            }
        }
        println!("whole corpus: {parsed} parsed, {refused} refused");
    }
}
