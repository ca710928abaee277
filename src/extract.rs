//! Article extraction (SPEC §13): the main text of a fetched article page, without the
//! navigation, comments and boilerplate around it.
//!
//! Input: the body exactly as fetched, its `Content-Type` header and the URL it came from.
//! Output: an [`Extracted`] title and text, or an [`ExtractError`] saying why there is none.
//! The charset is decoded as the parse stage decodes feeds (`parse::encoding`: BOM, then the
//! declared charset, valid UTF-8 kept whatever the label says); a body that is plainly not
//! an HTML page (a PDF, an image, JSON, a feed; told by the `Content-Type` or the first
//! bytes) is refused before anything is parsed. The page is read by two maintained crates,
//! rs-trafilatura (a port of trafilatura) and dom_smoothie (a port of Readability.js), and
//! [`choose`] keeps one reading: together they score higher on the shared article
//! benchmark than either alone (BENCHMARKS.md, "Article extraction").
//!
//! Bounded: only the first [`MAX_HTML_BYTES`] of markup are read; a document nested deeper
//! than [`MAX_DEPTH`] elements is refused before it is parsed (the crates walk the DOM
//! recursively, and 100,000 nested `<div>`s would overflow a 2 MiB blocking-thread stack);
//! a panic inside either crate is caught (the other's reading stands; with neither, it is
//! reported as [`ExtractError::Malformed`]); the text
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

/// Cap on the extracted text, in bytes, cut on a char boundary. News articles run to a few
/// KiB; the longest on the shared benchmark, a Russian interview series, is 94 KiB (two
/// bytes a Cyrillic letter).
pub const MAX_ARTICLE_BYTES: usize = 128 * 1024;
/// Cap on the extracted title, in bytes, cut on a char boundary.
pub const MAX_TITLE_BYTES: usize = crate::parse::MAX_TITLE_BYTES;
/// Markup past this many bytes (of the decoded page) is not read: article pages are far
/// smaller (the benchmark's largest is under 1 MiB), and parse time grows with the input.
pub const MAX_HTML_BYTES: usize = 4 * 1024 * 1024;
/// Deepest element nesting read. Real pages stay under a hundred levels; the extraction
/// crate recurses over the DOM, and this keeps it well inside a 2 MiB stack.
pub const MAX_DEPTH: usize = 512;

/// The fewest words of dom_smoothie's reading that [`choose`] prefers to rs-trafilatura's:
/// a short news item's length (the shortest article [`choose`] takes it for on the
/// benchmark has about 100).
const MIN_READABLE_WORDS: usize = 50;

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
    // A panic in either crate is caught: one extractor's failure leaves the other's text.
    let second = std::panic::catch_unwind(|| readability(&html, url)).unwrap_or_else(|_| {
        tracing::warn!(
            extractor = "dom_smoothie",
            "the extractor panicked on a page"
        );
        None
    });
    let (second, second_title) = match &second {
        Some(article) => (article.text_content.as_ref(), article.title.as_str()),
        None => ("", ""),
    };
    let main = match std::panic::catch_unwind(|| trafilatura(&html, url)) {
        Ok(Ok(main)) => Ok(main),
        Ok(Err(rs_trafilatura::Error::NoContent)) => Err(ExtractError::NoText),
        Ok(Err(err)) => Err(ExtractError::Malformed(err.to_string())),
        Err(_) => {
            tracing::warn!(
                extractor = "rs-trafilatura",
                "the extractor panicked on a page"
            );
            Err(ExtractError::Malformed("the extractor panicked".into()))
        }
    };
    let main = match main {
        Ok(main) => Some(main),
        Err(err) if second.split_whitespace().next().is_none() => return Err(err),
        Err(_) => None,
    };
    let title = main
        .as_ref()
        .and_then(|m| m.metadata.title.as_deref())
        .map(|t| one_line(t, MAX_TITLE_BYTES))
        .filter(|t| !t.is_empty())
        .or_else(|| Some(one_line(second_title, MAX_TITLE_BYTES)).filter(|t| !t.is_empty()));
    let text = paragraphs(choose(main.as_ref(), second), MAX_ARTICLE_BYTES);
    // On a page without a body the crate's fallback returns the title, repeated: no text.
    let beyond_title = match &title {
        Some(title) => text.replace(title.as_str(), ""),
        None => text.clone(),
    };
    if !beyond_title.chars().any(char::is_alphanumeric) {
        return Err(ExtractError::NoText);
    }
    Ok(Extracted { title, text })
}

/// rs-trafilatura's reading of the page. A full-text feed links to articles: skipping the
/// page-type classifier halves the time per page and changes the benchmark's F1 by a
/// page's worth of noise.
fn trafilatura(
    html: &str,
    url: Option<&Url>,
) -> Result<rs_trafilatura::ExtractResult, rs_trafilatura::Error> {
    let options = rs_trafilatura::Options {
        url: url.map(|u| u.as_str().to_owned()),
        page_type: Some(rs_trafilatura::page_type::PageType::Article),
        ..rs_trafilatura::Options::default()
    };
    rs_trafilatura::extract_with_options(html, &options)
}

/// dom_smoothie's (Readability.js's algorithm) reading of the page, its text with paragraphs
/// on their own lines; `None` when it finds none.
fn readability(html: &str, url: Option<&Url>) -> Option<dom_smoothie::Article> {
    let config = dom_smoothie::Config {
        text_mode: dom_smoothie::TextMode::Formatted,
        ..dom_smoothie::Config::default()
    };
    let mut reader =
        dom_smoothie::Readability::new(html, url.map(Url::as_str), Some(config)).ok()?;
    reader.parse().ok()
}

/// Which of the two readings is the main text. rs-trafilatura's, as a rule: it scores
/// higher on the benchmark. Readability's where rs-trafilatura found no main content and
/// fell back to the whole page's text (it then gives no `content_html`), or where its text
/// has more than twice as many words as Readability's: on the benchmark pages that happens
/// only when it swept in a sidebar, an archive list or a section repeated by nested markup
/// (the mirror of trafilatura's own comparison, which takes the baseline's text when that
/// is more than twice as long). Readability's reading is only taken when it is an article's
/// worth, [`MIN_READABLE_WORDS`] or more: a caption or a headline it settled on must not
/// replace a text that holds the article. Measured in BENCHMARKS.md, "Article extraction".
fn choose<'a>(main: Option<&'a rs_trafilatura::ExtractResult>, second: &'a str) -> &'a str {
    let words = |text: &str| text.split_whitespace().count();
    let second_words = words(second);
    match main {
        None => second,
        Some(main) if second_words < MIN_READABLE_WORDS => &main.content_text,
        Some(main)
            if main.content_html.is_none() || words(&main.content_text) > 2 * second_words =>
        {
            second
        }
        Some(main) => &main.content_text,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// rs-trafilatura's reading: `text`, and whether it found main content (`content_html`).
    fn reading(text: &str, found_main_content: bool) -> rs_trafilatura::ExtractResult {
        rs_trafilatura::ExtractResult {
            content_text: text.into(),
            content_html: found_main_content.then(|| format!("<p>{text}</p>")),
            ..Default::default()
        }
    }

    #[test]
    fn trafilatura_is_kept_unless_it_fell_back_or_read_twice_readabilitys_words() {
        let words = |n: usize| {
            (0..n)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let (article, swept, close) = (words(60), words(121), words(120));
        let (article, swept, close) = (article.as_str(), swept.as_str(), close.as_str());
        // As a rule rs-trafilatura's text stands, also when it reads a little more.
        assert_eq!(choose(Some(&reading(close, true)), article), close);
        // More than twice the words: it swept in a sidebar or a repeated section.
        assert_eq!(choose(Some(&reading(swept, true)), article), article);
        // It found no main content and gave the whole page's text.
        assert_eq!(choose(Some(&reading(close, false)), article), article);
        // Readability found nothing: whatever rs-trafilatura read, or nothing at all.
        assert_eq!(choose(Some(&reading(swept, false)), ""), swept);
        assert_eq!(choose(None, article), article);
        assert_eq!(choose(None, ""), "");
        // A caption or a headline is no article: rs-trafilatura's text stays.
        let caption = words(MIN_READABLE_WORDS - 1);
        assert_eq!(choose(Some(&reading(swept, true)), &caption), swept);
        assert_eq!(choose(Some(&reading(swept, false)), &caption), swept);
    }

    /// An article page: a title, navigation, and `paragraphs` of body text.
    fn page(head: &str, paragraphs: &[&str]) -> String {
        let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>\n")).collect();
        format!(
            "<!DOCTYPE html><html><head>{head}<title>Rain in the valley | Wire</title></head>\
             <body><nav><a href='/'>Home</a> <a href='/world'>World</a></nav>\
             <article><h1>Rain in the valley</h1>{body}</article>\
             <footer>Copyright 2026 Wire</footer></body></html>"
        )
    }

    const PARAGRAPHS: &[&str] = &[
        "Heavy rain fell across the valley on Tuesday, flooding roads and closing two schools \
         as rivers rose faster than forecasters had expected.",
        "Emergency crews   worked through the night to move families from low-lying homes, \
         and the regional council opened three shelters in community halls.",
        "Officials said the water would begin to recede by Thursday if the weather held, but \
         warned residents to stay away from riverbanks until then.",
    ];

    fn extract_ok(body: &[u8], content_type: Option<&str>) -> Extracted {
        match extract(body, content_type, None) {
            Ok(extracted) => extracted,
            Err(err) => panic!("page should extract: {err}"),
        }
    }

    /// Runs `f` on a thread with a 2 MiB stack, as tokio's blocking threads have.
    fn on_blocking_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let thread = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(f)
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        thread
            .join()
            .unwrap_or_else(|_| panic!("extraction thread panicked"))
    }

    #[test]
    fn an_article_yields_its_paragraphs_and_title() {
        let html = page("", PARAGRAPHS);
        let extracted = extract_ok(html.as_bytes(), Some("text/html; charset=utf-8"));
        assert_eq!(extracted.title.as_deref(), Some("Rain in the valley"));
        assert!(extracted.text.contains("Heavy rain fell across the valley"));
        assert!(
            extracted
                .text
                .contains("Emergency crews worked through the night"),
            "whitespace runs collapse: {:?}",
            extracted.text
        );
        assert!(extracted.text.contains("\n\n"), "paragraphs stay apart");
        assert!(
            !extracted.text.contains("Copyright"),
            "{:?}",
            extracted.text
        );
    }

    #[test]
    fn what_is_not_an_html_page_is_refused_with_a_hint() {
        let html = page("", PARAGRAPHS);
        let cases: &[(&[u8], Option<&str>, &str)] = &[
            (b"%PDF-1.7\n1 0 obj", None, "a pdf"),
            (html.as_bytes(), Some("application/pdf"), "a pdf"),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", None, "an image"),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", Some("text/html"), "an image"),
            (b"  {\"title\": \"x\"}", None, "json"),
            (b"[1, 2]", Some("application/json; charset=utf-8"), "json"),
            (
                b"<?xml version='1.0'?><rss version='2.0'><channel></channel></rss>",
                None,
                "a feed",
            ),
            (
                b"<feed xmlns='http://www.w3.org/2005/Atom'></feed>",
                None,
                "a feed",
            ),
            (html.as_bytes(), Some("application/atom+xml"), "a feed"),
            (html.as_bytes(), Some("image/webp"), "an image"),
            (
                b"just some words, no markup at all",
                None,
                "plain text without markup",
            ),
        ];
        for (body, content_type, hint) in cases {
            match extract(body, *content_type, None) {
                Err(ExtractError::NotHtml(got)) => assert_eq!(got, *hint, "{content_type:?}"),
                other => panic!("{:?} with {content_type:?}: {other:?}", &body[..8]),
            }
        }
    }

    #[test]
    fn a_page_without_main_text_is_no_text() {
        let html = b"<html><head><title>t</title></head><body><div> </div></body></html>";
        let outcome = extract(html, Some("text/html"), None);
        assert!(matches!(outcome, Err(ExtractError::NoText)), "{outcome:?}");
    }

    #[test]
    fn deep_nesting_is_refused_quickly_on_a_small_stack() {
        let deep = format!(
            "<html><body>{}<p>{}</p>{}</body></html>",
            "<div>".repeat(100_000),
            PARAGRAPHS[0],
            "</div>".repeat(100_000)
        );
        let outcome = on_blocking_stack(move || extract(deep.as_bytes(), None, None));
        assert!(matches!(outcome, Err(ExtractError::TooDeep)), "{outcome:?}");
        // Unclosed `<p>`, `<li>` and void elements do not count as nesting.
        let flat = page(
            "<meta charset='utf-8'>",
            &[&"<li>item<br><img src=x>".repeat(2_000), PARAGRAPHS[1]],
        );
        assert!(nesting_depth(flat.as_bytes(), MAX_DEPTH) < 10);
    }

    #[test]
    fn nesting_just_under_the_limit_extracts_on_a_small_stack() {
        let depth = MAX_DEPTH - 10;
        let html = format!(
            "<html><body>{}<article>{}</article>{}</body></html>",
            "<div>".repeat(depth),
            PARAGRAPHS
                .iter()
                .map(|p| format!("<p>{p}</p>"))
                .collect::<String>(),
            "</div>".repeat(depth)
        );
        let outcome = on_blocking_stack(move || extract(html.as_bytes(), None, None));
        assert!(outcome.is_ok(), "{outcome:?}");
    }

    #[test]
    fn markup_in_scripts_and_comments_is_not_nesting() {
        let html = format!(
            "<html><body><script>{}</script><!-- {} --><div>x</div></body></html>",
            "<div>".repeat(5_000),
            "<div>".repeat(5_000)
        );
        assert_eq!(nesting_depth(html.as_bytes(), MAX_DEPTH), 1);
    }

    #[test]
    fn the_text_is_capped_on_a_char_boundary() {
        // Three-byte characters: the cap falls inside one unless cut with care.
        let long = "漢字のニュース記事です。".repeat(400);
        let paragraphs: Vec<&str> = std::iter::repeat_n(long.as_str(), 12).collect();
        let html = page("<meta charset=\"utf-8\">", &paragraphs);
        let extracted = extract_ok(html.as_bytes(), None);
        assert!(extracted.text.len() <= MAX_ARTICLE_BYTES);
        assert!(extracted.text.len() > MAX_ARTICLE_BYTES - 4 - 2);
        assert!(extracted.text.ends_with(|c: char| !c.is_whitespace()));

        let mut s = "ab€".to_string();
        truncate(&mut s, 4);
        assert_eq!(s, "ab");
    }

    #[test]
    fn a_windows_1256_page_is_decoded_by_its_meta_charset() {
        // "خبر عاجل من طهران" (urgent news from Tehran) in windows-1256.
        let (arabic, _, _) = encoding_rs::WINDOWS_1256.encode("خبر عاجل من طهران");
        let paragraph = [&b"<p>"[..], &arabic.repeat(12), b"</p>"].concat();
        let html = [
            &b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1256\">\
               <title>t</title></head><body><article>"[..],
            &paragraph.repeat(3),
            b"</article></body></html>",
        ]
        .concat();
        let extracted = extract_ok(&html, Some("text/html"));
        assert!(
            extracted.text.contains("خبر عاجل من طهران"),
            "{:?}",
            extracted.text
        );
    }

    #[test]
    fn a_gbk_page_is_decoded_by_its_content_type() {
        let (chinese, _, _) =
            encoding_rs::GBK.encode("上海合作组织峰会在北京举行，各国领导人出席会议。");
        let paragraph = [&b"<p>"[..], &chinese.repeat(8), b"</p>"].concat();
        let html = [
            &b"<html><head><title>t</title></head><body><article>"[..],
            &paragraph.repeat(3),
            b"</article></body></html>",
        ]
        .concat();
        let extracted = extract_ok(&html, Some("text/html; charset=gbk"));
        assert!(
            extracted.text.contains("上海合作组织峰会"),
            "{:?}",
            extracted.text
        );
        // The header wins over a meta charset that disagrees.
        let lying = [&b"<meta charset=\"iso-8859-1\">"[..], &html].concat();
        let extracted = extract_ok(&lying, Some("text/html; charset=gbk"));
        assert!(extracted.text.contains("上海合作组织峰会"));
    }

    #[test]
    fn meta_charset_is_read_in_its_forms() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"<meta charset=\"windows-1256\">", Some("windows-1256")),
            (b"<META CHARSET=gbk>", Some("gbk")),
            (
                b"<meta http-equiv='content-type' content='text/html; charset=koi8-r'>",
                Some("koi8-r"),
            ),
            (b"<meta name=description content=charset>", None),
            (b"<p>charset=gbk</p>", None),
        ];
        for (html, want) in cases {
            assert_eq!(
                meta_charset(html).as_deref(),
                *want,
                "{}",
                String::from_utf8_lossy(html)
            );
        }
    }

    #[test]
    fn paragraphs_are_collapsed_and_separated_by_blank_lines() {
        let text = "  First\tline  of text \u{00AD}\n\n\n   \nSecond\u{200B} line\r\n";
        assert_eq!(
            paragraphs(text, MAX_ARTICLE_BYTES),
            "First line of text\n\nSecond line"
        );
    }
}
