//! Article extraction (SPEC §13): the main text of a fetched article page, without the
//! navigation, comments and boilerplate around it.
//!
//! Input: the body exactly as fetched, its `Content-Type` header and the URL it came from.
//! Output: an [`Extracted`] title and text, or an [`ExtractError`] saying why there is none.
//! The charset is decoded as the parse stage decodes feeds (`parse::encoding`: BOM, then the
//! declared charset, valid UTF-8 kept whatever the label says); a body that is plainly not
//! an HTML page (a PDF, an image, JSON, a feed; told by the `Content-Type` or the first
//! bytes) is refused before anything is parsed. The extraction itself is rs-trafilatura's
//! (a port of trafilatura), chosen by measurement against dom_smoothie and readability on
//! the shared article benchmark (BENCHMARKS.md, "Article extraction").
//!
//! Bounded: only the first [`MAX_HTML_BYTES`] of markup are read; a document nested deeper
//! than [`MAX_DEPTH`] elements is refused before it is parsed (the crate walks the DOM
//! recursively, and 100,000 nested `<div>`s would overflow a 2 MiB blocking-thread stack);
//! a panic inside the crate is caught and reported as [`ExtractError::Malformed`]; the text
//! is cut to [`MAX_ARTICLE_BYTES`] and the title to [`MAX_TITLE_BYTES`], on char boundaries.
//!
//! The text is one paragraph a line-pair: paragraphs separated by a blank line, whitespace
//! runs inside a paragraph collapsed to single spaces, invisible characters dropped, so
//! snippets cut from it read well.
//!
//! Extraction is synchronous CPU work (a few milliseconds for a typical page, tens for a
//! large one): callers run it on a blocking thread (`tokio::task::spawn_blocking`).

use std::borrow::Cow;

use url::Url;

use crate::parse::to_utf8;

/// Cap on the extracted text, in bytes, cut on a char boundary.
pub const MAX_ARTICLE_BYTES: usize = 64 * 1024;
/// Cap on the extracted title, in bytes, cut on a char boundary.
pub const MAX_TITLE_BYTES: usize = crate::parse::MAX_TITLE_BYTES;
/// Markup past this many bytes (of the decoded page) is not read: article pages are far
/// smaller (the benchmark's largest is under 1 MiB), and parse time grows with the input.
pub const MAX_HTML_BYTES: usize = 4 * 1024 * 1024;
/// Deepest element nesting read. Real pages stay under a hundred levels; the extraction
/// crate recurses over the DOM, and this keeps it well inside a 2 MiB stack.
pub const MAX_DEPTH: usize = 512;

/// How far into the body the not-HTML sniffing looks.
const SNIFF_BYTES: usize = 1024;

/// The main text of one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The article's title (its headline, else the page's `<title>`), one line; `None` when
    /// the page names none.
    pub title: Option<String>,
    /// The main text: paragraphs separated by blank lines, at most [`MAX_ARTICLE_BYTES`].
    /// Never empty.
    pub text: String,
}

/// Why a page has no main text.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The body is not an HTML page; the hint says what it looks like instead.
    #[error("not an html page: looks like {0}")]
    NotHtml(&'static str),
    /// Elements nest deeper than [`MAX_DEPTH`] (hostile or broken markup).
    #[error("html nests too deep: more than {MAX_DEPTH} levels")]
    TooDeep,
    /// The page parsed, but nothing in it reads as main text.
    #[error("no main text found in the page")]
    NoText,
    /// The extraction crate failed or panicked on this page.
    #[error("malformed html: {0}")]
    Malformed(String),
}

impl ExtractError {
    /// A stable snake_case name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ExtractError::NotHtml(_) => "not_html",
            ExtractError::TooDeep => "too_deep",
            ExtractError::NoText => "no_text",
            ExtractError::Malformed(_) => "malformed",
        }
    }
}

/// The main text of an article page. `content_type` is the HTTP `Content-Type` header, when
/// there was one; `url` the address the page came from (it helps the crate's site rules).
/// CPU-bound: run it on a blocking thread.
pub fn extract(
    body: &[u8],
    content_type: Option<&str>,
    url: Option<&Url>,
) -> Result<Extracted, ExtractError> {
    if let Some(hint) = not_html(body, content_type) {
        return Err(ExtractError::NotHtml(hint));
    }
    let with_meta;
    let content_type = match meta_charset(body) {
        Some(label)
            if !content_type.is_some_and(|t| t.to_ascii_lowercase().contains("charset")) =>
        {
            with_meta = format!("text/html; charset={label}");
            Some(with_meta.as_str())
        }
        _ => content_type,
    };
    let decoded = to_utf8(body, content_type);
    let bytes = &decoded[..decoded.len().min(MAX_HTML_BYTES)];
    let html: Cow<'_, str> = String::from_utf8_lossy(bytes);
    if nesting_depth(html.as_bytes(), MAX_DEPTH) > MAX_DEPTH {
        return Err(ExtractError::TooDeep);
    }
    let options = rs_trafilatura::Options {
        url: url.map(|u| u.as_str().to_owned()),
        // A full-text feed links to articles: skipping the page-type classifier halves the
        // time per page and changes the benchmark's F1 by a page's worth of noise.
        page_type: Some(rs_trafilatura::page_type::PageType::Article),
        ..rs_trafilatura::Options::default()
    };
    let outcome =
        std::panic::catch_unwind(|| rs_trafilatura::extract_with_options(&html, &options));
    let result = match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(rs_trafilatura::Error::NoContent)) => return Err(ExtractError::NoText),
        Ok(Err(err)) => return Err(ExtractError::Malformed(err.to_string())),
        Err(_) => return Err(ExtractError::Malformed("the extractor panicked".into())),
    };
    let text = paragraphs(&result.content_text, MAX_ARTICLE_BYTES);
    if text.is_empty() {
        return Err(ExtractError::NoText);
    }
    let title = result
        .metadata
        .title
        .map(|t| one_line(&t, MAX_TITLE_BYTES))
        .filter(|t| !t.is_empty());
    Ok(Extracted { title, text })
}

/// The charset a `<meta charset>` or `<meta http-equiv="Content-Type" content="...;
/// charset=...">` in the first [`SNIFF_BYTES`] names (the HTML prescan's window); the HTTP
/// header's charset, when there is one, wins over it, as in browsers.
fn meta_charset(body: &[u8]) -> Option<String> {
    let head = body[..body.len().min(SNIFF_BYTES)].to_ascii_lowercase();
    let mut at = 0;
    while let Some(offset) = memchr::memmem::find(&head[at..], b"<meta") {
        let start = at + offset;
        let end = memchr::memchr(b'>', &head[start..]).map_or(head.len(), |e| start + e);
        let tag = &head[start..end];
        if let Some(pos) = memchr::memmem::find(tag, b"charset") {
            let value = tag[pos + 7..]
                .trim_ascii_start()
                .strip_prefix(b"=")
                .map(|v| v.trim_ascii_start())
                .unwrap_or_default();
            let value = value
                .strip_prefix(b"\"")
                .or_else(|| value.strip_prefix(b"'"))
                .unwrap_or(value);
            let label: String = value
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
                .map(|&b| char::from(b))
                .collect();
            if !label.is_empty() {
                return Some(label);
            }
        }
        at = end;
    }
    None
}

/// What the body looks like when it is plainly not an HTML page: by its `Content-Type`
/// (HTML, XHTML, plain text, unknown and absent types pass), then by its first bytes.
fn not_html(body: &[u8], content_type: Option<&str>) -> Option<&'static str> {
    if let Some(hint) = content_type.and_then(hint_from_type) {
        return Some(hint);
    }
    let head = &body[..body.len().min(SNIFF_BYTES)];
    let magic: &[(&[u8], &'static str)] = &[
        (b"%PDF-", "a pdf"),
        (b"\x89PNG", "an image"),
        (b"\xff\xd8\xff", "an image"),
        (b"GIF8", "an image"),
        (b"PK\x03\x04", "an archive"),
        (b"\x1f\x8b", "gzip data"),
    ];
    if let Some((_, hint)) = magic.iter().find(|(m, _)| head.starts_with(m)) {
        return Some(hint);
    }
    if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        return Some("an image");
    }
    let text = head
        .strip_prefix(&[0xEF, 0xBB, 0xBF])
        .unwrap_or(head)
        .trim_ascii_start();
    if text.starts_with(b"{") || text.starts_with(b"[") {
        return Some("json");
    }
    let lower = text.to_ascii_lowercase();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if (lower.starts_with(b"<?xml") || lower.starts_with(b"<rss") || lower.starts_with(b"<feed"))
        && !has(b"<html")
        && (has(b"<rss") || has(b"<feed") || has(b"<rdf:rdf"))
    {
        return Some("a feed");
    }
    if !body.contains(&b'<') {
        return Some("plain text without markup");
    }
    None
}

/// The hint for a `Content-Type` that names something other than a web page.
fn hint_from_type(content_type: &str) -> Option<&'static str> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let hint = match essence.as_str() {
        "" | "text/html" | "application/xhtml+xml" | "text/plain" | "application/octet-stream" => {
            return None;
        }
        "application/pdf" => "a pdf",
        "application/json" | "application/feed+json" | "text/json" => "json",
        "application/rss+xml" | "application/atom+xml" | "application/rdf+xml" => "a feed",
        "text/xml" | "application/xml" => "xml",
        t if t.starts_with("image/") => "an image",
        t if t.starts_with("video/") || t.starts_with("audio/") => "audio or video",
        t if t.ends_with("+json") => "json",
        t if t.ends_with("+xml") => "xml",
        _ => "a file that is not a web page",
    };
    Some(hint)
}

/// HTML elements that never hold children, or whose end tag is usually left out and which
/// the HTML parser closes by itself: counting them would read flat pages as deep ones.
const NOT_NESTING: &[&[u8]] = &[
    b"area",
    b"base",
    b"br",
    b"col",
    b"embed",
    b"hr",
    b"img",
    b"input",
    b"link",
    b"meta",
    b"param",
    b"source",
    b"track",
    b"wbr",
    b"p",
    b"li",
    b"dt",
    b"dd",
    b"option",
    b"optgroup",
    b"tr",
    b"td",
    b"th",
    b"thead",
    b"tbody",
    b"tfoot",
    b"colgroup",
    b"rb",
    b"rt",
    b"rp",
    b"html",
    b"head",
    b"body",
    b"image",
    b"keygen",
    b"basefont",
    b"frame",
];

/// Elements whose content is raw text: a `<` inside them is not a tag.
const RAW_TEXT: &[&[u8]] = &[
    b"script",
    b"style",
    b"textarea",
    b"title",
    b"xmp",
    b"noscript",
];

/// An estimate of how deep the elements of `html` nest: open tags minus close tags, not
/// counting void elements, elements with optional end tags, self-closing tags, comments,
/// or markup inside raw-text elements. Stops counting once past `limit`. An overestimate
/// only for pages that leave many ordinary elements unclosed.
fn nesting_depth(html: &[u8], limit: usize) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut at = 0;
    while let Some(offset) = memchr::memchr(b'<', &html[at..]) {
        let start = at + offset;
        let rest = &html[start + 1..];
        if rest.starts_with(b"!--") {
            at = match memchr::memmem::find(&rest[3..], b"-->") {
                Some(end) => start + 1 + 3 + end + 3,
                None => return deepest,
            };
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = usize::from(closing);
        let name_len = rest[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'_'))
            .count();
        if name_len == 0 || !rest[name_start].is_ascii_alphabetic() {
            at = start + 1;
            continue;
        }
        let name = rest[name_start..name_start + name_len].to_ascii_lowercase();
        let tag_end = match memchr::memchr(b'>', &rest[name_start + name_len..]) {
            Some(end) => start + 1 + name_start + name_len + end,
            None => return deepest,
        };
        at = tag_end + 1;
        if NOT_NESTING.contains(&name.as_slice()) {
            continue;
        }
        if closing {
            // A raw-text element's end tag: its start tag was not counted.
            if !RAW_TEXT.contains(&name.as_slice()) {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        if html[tag_end - 1] == b'/' {
            continue;
        }
        if RAW_TEXT.contains(&name.as_slice()) {
            // Skip to the matching end tag (any case); unterminated: the rest is its text.
            let close = [b"</".as_slice(), &name].concat();
            let lower_rest = &html[at..];
            match find_ascii_case_insensitive(lower_rest, &close) {
                Some(end) => {
                    at += end;
                    continue;
                }
                None => return deepest,
            }
        }
        depth += 1;
        deepest = deepest.max(depth);
        if deepest > limit {
            return deepest;
        }
    }
    deepest
}

/// Where `needle` (lowercase ASCII) first occurs in `haystack`, ignoring ASCII case.
fn find_ascii_case_insensitive(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = 0;
    while let Some(offset) = memchr::memchr(first, &haystack[at..]) {
        let start = at + offset;
        let candidate = haystack.get(start..start + needle.len())?;
        if candidate.eq_ignore_ascii_case(needle) {
            return Some(start);
        }
        at = start + 1;
    }
    None
}

/// Characters dropped from text: BOM, soft hyphen, bidi marks and controls (the same set
/// the parse stage drops from feed text).
fn is_invisible(c: char) -> bool {
    (c.is_control() && !c.is_whitespace())
        || matches!(
            c,
            '\u{FEFF}' | '\u{00AD}' | '\u{061C}' | '\u{200B}' | '\u{200E}' | '\u{200F}'
        )
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with each line's whitespace collapsed to single spaces, invisible characters
/// dropped, empty lines dropped, and the lines joined by blank lines; at most `cap` bytes,
/// cut on a char boundary (and trimmed after the cut).
fn paragraphs(text: &str, cap: usize) -> String {
    let mut out = String::with_capacity(text.len().min(cap));
    for line in text.lines() {
        let line = one_line(line, usize::MAX);
        if line.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&line);
        if out.len() >= cap {
            break;
        }
    }
    truncate(&mut out, cap);
    out.truncate(out.trim_end().len());
    out
}

/// `text` as one line: whitespace runs collapsed to single spaces, invisible characters
/// dropped, trimmed; at most `cap` bytes, cut on a char boundary.
fn one_line(text: &str, cap: usize) -> String {
    let mut out = String::with_capacity(text.len().min(cap));
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if !is_invisible(c) {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
            if out.len() > cap {
                break;
            }
        }
    }
    truncate(&mut out, cap);
    out.truncate(out.trim_end().len());
    out
}

/// Cuts `s` to at most `cap` bytes, on a char boundary.
fn truncate(s: &mut String, cap: usize) {
    if s.len() > cap {
        let mut end = cap;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}
