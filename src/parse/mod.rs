//! Parse stage: turns the raw bytes of one fetched document into normalized items.
//!
//! Input: the body exactly as fetched (RSS 0.9x/1.0/2.0, Atom or JSON Feed, in whatever
//! charset its BOM, XML declaration or `Content-Type` names: `encoding.rs` makes it UTF-8
//! first), the URL it came from, used to resolve relative links, and the `Content-Type`
//! header. Output: a [`ParsedFeed`] whose [`Item`]s are in document order, carry plain text
//! only (HTML reduced by [`html_to_text`], entities decoded, whitespace collapsed to single
//! spaces), absolute http(s) links, and the id the document itself gave (never one invented
//! by feed-rs, which makes random UUIDs for items without a link). Every field is capped
//! ([`MAX_ITEMS`], [`MAX_TITLE_BYTES`], [`MAX_TEXT_BYTES`], ...); entities other than the
//! predefined five are never expanded. Before feed-rs reads a document, `bounds` cuts what is
//! past the caps (items past [`MAX_ITEMS`], repeated children past [`MAX_NAMES`], JSON arrays
//! likewise; see [`MAX_DISTINCT_NAMES`], [`MAX_MEDIA_GROUPS`], [`MAX_MEDIA_ELEMENTS`],
//! [`MAX_FEED_AUTHOR_BYTES`]) and
//! refuses nesting past [`MAX_DEPTH`] and elements with more than [`MAX_ATTRIBUTES`]
//! attributes, so a document of any size up to the fetch limit parses in bounded memory; what
//! was cut is counted in [`ParsedFeed::dropped_items`] and [`ParsedFeed::dropped_elements`].
//! A document that is not a feed, or that feed-rs cannot read even after the few repairs in
//! `repair`, is a [`ParseError`]. The work is synchronous and CPU-bound: callers run it on a
//! blocking thread.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use feed_rs::model::{Feed, FeedType, Link, Person, Text};
use url::Url;

/// Items read from one document, in document order; later ones are cut before feed-rs
/// reads the document (counted in [`ParsedFeed::dropped_items`]).
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
/// Authors and categories kept per item. Also the cap on children of the same name under
/// one XML element, and on the entries of a JSON Feed array other than `items` (feed and item
/// `authors`, `tags`, `attachments`): later ones are cut before feed-rs reads the document
/// (counted in [`ParsedFeed::dropped_elements`]). Text constructs (titles, descriptions,
/// content) keep all their markup.
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
    /// Items in document order, at most [`MAX_ITEMS`]; an item repeating an earlier guid is
    /// dropped, and so is one with no guid, link, title or text at all.
    pub items: Vec<Item>,
    /// RSS `<ttl>`: minutes the publisher asks readers to wait between fetches.
    pub ttl: Option<u32>,
    /// Items past [`MAX_ITEMS`], never read.
    pub dropped_items: usize,
    /// Other XML elements or JSON values past a cap ([`MAX_NAMES`], [`MAX_DISTINCT_NAMES`],
    /// [`MAX_MEDIA_GROUPS`], [`MAX_MEDIA_ELEMENTS`], [`MAX_FEED_AUTHOR_BYTES`]), never read.
    pub dropped_elements: usize,
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
    /// The main text of the linked page, for a `full_text` feed; filled after parsing
    /// (empty from the parser).
    pub article: String,
}

/// Why a document yielded no items.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The document is something else: an HTML page (named by its `<title>`), an OPML
    /// list, another JSON document, plain text, still-compressed bytes, nothing at all. The
    /// message is a hint for the operator.
    #[error("not a feed: {0}")]
    NotAFeed(String),
    /// The document looks like a feed but cannot be read: feed-rs's message, a crash inside
    /// feed-rs, nesting deeper than [`MAX_DEPTH`], or an element with more than
    /// [`MAX_ATTRIBUTES`] attributes.
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

/// Parses one feed document whose charset is found in the document itself (BOM, XML
/// declaration), else UTF-8. Same as [`parse_document`] without a `Content-Type`.
pub fn parse_feed(body: &[u8], base: Option<&Url>) -> Result<ParsedFeed, ParseError> {
    parse_document(body, base, None)
}

/// Parses one fetched document.
///
/// `base` is the URL the body was fetched from (after redirects); relative links resolve
/// against `xml:base`, then `base`, then the feed's own home-page link. `content_type` is
/// the response's `Content-Type` header. The charset is the BOM's, else the XML
/// declaration's `encoding`, else the header's `charset`, else UTF-8 (stray bytes read as
/// windows-1252); a body that is valid UTF-8 is read as UTF-8 whatever a label claims.
pub fn parse_document(
    body: &[u8],
    base: Option<&Url>,
    content_type: Option<&str>,
) -> Result<ParsedFeed, ParseError> {
    if body.starts_with(&[0x1F, 0x8B]) {
        return Err(ParseError::NotAFeed(
            "gzip-compressed bytes (the body was not decompressed)".into(),
        ));
    }
    let body = encoding::to_utf8(body, content_type);
    let start = skip_bom_and_space(&body);
    let head = &body[start..];
    match head.first() {
        None => return Err(ParseError::NotAFeed("empty document".into())),
        Some(b'[') => {
            return Err(ParseError::NotAFeed(
                "a json array, not a json feed object".into(),
            ));
        }
        Some(b'<') if looks_like_html_page(head) => {
            return Err(ParseError::NotAFeed(html_page_hint(head)));
        }
        Some(_) => {}
    }
    let bounded = if head.starts_with(b"{") {
        bounds::bound_json(head)
    } else {
        // Anything else feed-rs reads as XML, even with junk before the first `<`.
        bounds::bound_xml(head)?
    };
    let feed = parse_with_repairs(&bounded.doc, base)?;
    Ok(ParsedFeed {
        dropped_items: bounded.dropped_items,
        dropped_elements: bounded.dropped_elements,
        ..normalize(feed, base)
    })
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

mod bounds;
mod encoding;
pub(crate) use encoding::to_utf8;
mod html;
mod repair;
mod sniff;

pub use bounds::{
    MAX_ATTRIBUTES, MAX_DEPTH, MAX_DISTINCT_NAMES, MAX_FEED_AUTHOR_BYTES, MAX_MEDIA_ELEMENTS,
    MAX_MEDIA_GROUPS,
};
use html::{looks_like_markup, reduce};
use repair::parse_with_repairs;
use sniff::{html_page_hint, looks_like_html_page, skip_bom_and_space};

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
        let mut item = Item {
            guid,
            title,
            link,
            published: entry.published.or(entry.updated),
            summary,
            content,
            authors,
            categories,
            language,
            article: String::new(),
        };
        item.drop_nul();
        items.push(item);
    }
    ParsedFeed {
        title: title.map(|t| t.replace('\0', "")),
        items,
        ttl: feed.ttl,
        ..ParsedFeed::default()
    }
}

impl Item {
    /// Removes NUL characters from its text. A feed may carry them (a JSON Feed's
    /// `"\u0000"`, a broken encoding); they mean nothing in news text, and PostgreSQL
    /// refuses them in a `TEXT` column, which would fail the feed's every commit.
    pub fn drop_nul(&mut self) {
        let fields = [
            &mut self.title,
            &mut self.summary,
            &mut self.content,
            &mut self.article,
        ];
        let lists = self.authors.iter_mut().chain(self.categories.iter_mut());
        for text in fields.into_iter().chain(lists).chain(self.guid.as_mut()) {
            if text.contains('\0') {
                text.retain(|c| c != '\0');
            }
        }
    }
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
    &s[..s.floor_char_boundary(max)]
}

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
    fn nul_characters_are_dropped_from_every_text_an_item_stores() {
        let doc = br#"{"version": "https://jsonfeed.org/version/1.1", "title": "wire\u0000",
            "items": [{"id": "a\u0000b", "title": "Iran\u0000 talks",
                       "summary": "in\u0000 Vienna", "content_text": "x\u0000y",
                       "tags": ["poli\u0000tics"], "authors": [{"name": "A\u0000B"}]}]}"#;
        let parsed = parse_feed(doc, None).expect("a JSON Feed");
        assert_eq!(parsed.title.as_deref(), Some("wire"));
        let item = &parsed.items[0];
        assert_eq!(item.guid.as_deref(), Some("ab"));
        assert_eq!(item.title, "Iran talks");
        assert_eq!(item.summary, "in Vienna");
        assert_eq!(item.content, "xy");
        assert_eq!(item.categories, ["politics"]);
        assert_eq!(item.authors, ["AB"]);
    }

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
    fn whitespace_or_a_bom_before_the_declaration_is_skipped() {
        let doc = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>\
<title>Lead</title><item><title>Tehr\u{101}n</title><link>https://lead.example/1</link></item></channel></rss>";
        for prefix in [
            "\n",
            "\r\n  \t\n",
            "\u{feff}",
            "\u{feff}\n ",
            "\u{feff}\u{feff}",
        ] {
            let feed = parse(format!("{prefix}{doc}").as_bytes(), None);
            assert_eq!(feed.title.as_deref(), Some("Lead"), "{prefix:?}");
            assert_eq!(feed.items[0].title, "Tehr\u{101}n", "{prefix:?}");
        }
        let declared =
            b"\n\n<?xml version=\"1.0\" encoding=\"windows-1251\"?><rss version=\"2.0\"><channel>\
<title>\xcd\xee\xe2\xee\xf1\xf2\xe8</title></channel></rss>";
        assert_eq!(
            parse(declared, None).title.as_deref(),
            Some("\u{41d}\u{43e}\u{432}\u{43e}\u{441}\u{442}\u{438}")
        );
    }

    #[test]
    fn an_html_page_is_refused_naming_its_title() {
        let cases: &[(&str, &str)] = &[
            (
                "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n<title>Access denied</title></head><body>x</body></html>",
                "not a feed: an HTML page (\"Access denied\")",
            ),
            (
                "<html><head><TITLE data-x=1>\n  Just a moment&hellip;\n</TITLE><script>x</script>",
                "not a feed: an HTML page (\"Just a moment\u{2026}\")",
            ),
            (
                "<!doctype html><title>404 &ndash; <b>not</b> found",
                "not a feed: an HTML page (\"404 \u{2013} <b>not</b> found\")",
            ),
            (
                "<?xml version=\"1.0\"?><!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"x\">\
<html xmlns=\"http://www.w3.org/1999/xhtml\"><body><p>no title</p></body></html>",
                "not a feed: an HTML page",
            ),
        ];
        for (page, expected) in cases {
            match parse_feed(page.as_bytes(), None) {
                Err(err @ ParseError::NotAFeed(_)) => assert_eq!(err.to_string(), *expected),
                other => panic!("{page:?}: expected not a feed, got {other:?}"),
            }
        }
        let long = format!("<html><title>{}</title></html>", "word ".repeat(100));
        let message = parse_feed(long.as_bytes(), None)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(message.len() < 150, "{message}");
    }

    #[test]
    fn an_xhtml_doctype_before_an_rss_root_does_not_make_it_a_page() {
        let doc = "<?xml version=\"1.0\"?><!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" \"x\">\
<rss version=\"2.0\"><channel><title>found</title><item><title>a</title><link>https://d.example/a</link></item></channel></rss>";
        let feed = parse(doc.as_bytes(), None);
        assert_eq!(feed.title.as_deref(), Some("found"));
        assert_eq!(feed.items.len(), 1);
    }

    #[test]
    fn gzip_bytes_are_refused_as_not_decompressed() {
        let err = parse_feed(b"\x1f\x8b\x08\x00\x00\x00\x00\x00", None).unwrap_err();
        assert_eq!(err.kind(), "not_a_feed");
        assert!(err.to_string().contains("gzip"), "{err}");
    }

    #[test]
    fn rss_in_the_userland_namespace_is_read() {
        for namespace in [
            "http://backend.userland.com/rss2",
            "http://backend.userland.com/rss",
        ] {
            let doc = format!(
                "<rss version=\"2.0\" xmlns=\"{namespace}\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\
<channel><title>Userland</title><item><title>One</title><link>https://u.example/1</link>\
<dc:creator>Dave</dc:creator></item></channel></rss>"
            );
            let feed = parse(doc.as_bytes(), None);
            assert_eq!(feed.title.as_deref(), Some("Userland"), "{namespace}");
            assert_eq!(feed.items[0].title, "One");
            assert_eq!(feed.items[0].authors, ["Dave"]);
        }
    }

    #[test]
    fn rss_relative_links_resolve_against_xml_base_then_the_feed_url() {
        let doc = r#"<rss version="2.0"><channel><title>b</title><link>https://home.example/</link>
<item xml:base="https://cdn.example/news/"><title>based</title><link>2025/a.html</link></item>
<item><title>plain</title><link>../b.html</link></item>
<item><title>rooted</title><link>/c.html</link></item>
<item><title>scheme-relative</title><link>//other.example/d</link></item>
</channel></rss>"#;
        let feed = parse(doc.as_bytes(), Some("https://feeds.example/world/rss.xml"));
        let links: Vec<&str> = feed
            .items
            .iter()
            .map(|i| i.link.as_ref().map_or("", Url::as_str))
            .collect();
        assert_eq!(
            links,
            [
                "https://cdn.example/news/2025/a.html",
                "https://feeds.example/b.html",
                "https://feeds.example/c.html",
                "https://other.example/d",
            ]
        );
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
            (b"{\"version\": 2, \"items\": []}", "not a json feed"),
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
    fn billion_laughs_is_never_expanded() {
        let mut doc =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n <!ENTITY lol0 \"lol\">\n");
        for level in 1..=9 {
            let previous = format!("&lol{};", level - 1).repeat(10);
            doc.push_str(&format!(" <!ENTITY lol{level} \"{previous}\">\n"));
        }
        doc.push_str(
            "]>\n<rss version=\"2.0\"><channel><title>&lol9;</title>\
<item><title>a &lol9; b &amp; &#233;</title><link>https://lol.example/1</link>\
<description>&lol5;&lol9;</description></item></channel></rss>",
        );
        let feed = parse(doc.as_bytes(), None);
        assert_eq!(feed.title.as_deref(), Some("&lol9;"));
        assert_eq!(
            feed.items[0].title, "a &lol9; b & \u{e9}",
            "only predefined and numeric"
        );
        assert_eq!(feed.items[0].summary, "&lol5;&lol9;");
    }

    #[test]
    fn external_and_parameter_entities_are_never_resolved() {
        let doc = br#"<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY % remote SYSTEM "http://169.254.169.254/latest/meta-data/">
 %remote;
 <!ENTITY file SYSTEM "file:///etc/passwd">
 <!ENTITY net SYSTEM "http://127.0.0.1:1/secret">
]>
<rss version="2.0"><channel><title>x</title>
<item><title>&file;</title><link>https://xxe.example/1</link><description>&net;</description></item>
</channel></rss>"#;
        let feed = parse(doc, None);
        assert_eq!(feed.items[0].title, "&file;");
        assert_eq!(feed.items[0].summary, "&net;");
    }

    #[test]
    fn deeply_nested_json_returns_without_recursing() {
        // serde_json skips unknown values without recursing and stops typed values at 128
        // levels: either way the document comes back, parsed or refused.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for (field, expect_ok) in [("_ext", true), ("authors", false), ("title", false)] {
            let doc = format!(
                "{{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \"j\", \
\"items\": [{{\"id\": \"1\", \"{field}\": {deep}}}]}}"
            );
            match parse_feed(doc.as_bytes(), None) {
                Ok(feed) if expect_ok => assert_eq!(feed.items.len(), 1),
                Err(err @ ParseError::Malformed(_)) if !expect_ok => {
                    assert!(err.to_string().starts_with("malformed feed: "))
                }
                other => panic!("{field}: unexpected {other:?}"),
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
    fn guids_links_and_names_are_capped() {
        let guid = "g".repeat(MAX_GUID_BYTES + 100);
        let long_link = format!("https://cap.example/{}", "p".repeat(MAX_LINK_BYTES));
        let categories: String = (0..MAX_NAMES + 10)
            .map(|n| format!("<category>c{n}</category>"))
            .collect();
        let doc = format!(
            "<rss version=\"2.0\"><channel><title>caps</title><item><guid>{guid}</guid>\
<title>t</title><link>{long_link}</link><author>{}</author>{categories}</item></channel></rss>",
            "n".repeat(MAX_NAME_BYTES * 2)
        );
        let feed = parse(doc.as_bytes(), None);
        let item = &feed.items[0];
        assert_eq!(item.guid.as_deref().map(str::len), Some(MAX_GUID_BYTES));
        assert_eq!(item.link, None, "over-long links are dropped");
        assert_eq!(item.categories.len(), MAX_NAMES);
        assert!(item.authors.iter().all(|a| a.len() <= MAX_NAME_BYTES));
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

    pub(super) fn corpus_dir() -> Option<PathBuf> {
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

    /// Every file under `dir` (data, licences, manifests alike), sorted, relative to `dir`.
    fn every_file(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(folder) = pending.pop() {
            let entries = std::fs::read_dir(&folder).expect("readable corpus folder");
            for entry in entries {
                let path = entry.expect("readable corpus entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else if let Ok(relative) = path.strip_prefix(dir) {
                    files.push(relative.to_path_buf());
                }
            }
        }
        files.sort();
        files
    }

    /// The `Content-type` a feedparser test case says it is served with (`Header:` line).
    fn declared_content_type(body: &[u8]) -> Option<String> {
        let head = String::from_utf8_lossy(&body[..body.len().min(1024)]);
        head.lines().find_map(|line| {
            let value = line.trim().strip_prefix("Header:")?.trim();
            let (name, value) = value.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
    }

    #[test]
    fn whole_corpus_is_parsed_or_refused_without_panicking() {
        let Some(dir) = corpus_dir() else {
            println!("skipped: corpus not found at ../shared/corpus");
            return;
        };
        let verbose = std::env::var_os("CORPUS_VERBOSE").is_some();
        let files = every_file(&dir);
        let mut outcomes: std::collections::BTreeMap<&str, usize> = Default::default();
        let (mut items, mut crashes_caught) = (0usize, 0usize);
        let mut panicked = Vec::new();
        for path in &files {
            let body = std::fs::read(dir.join(path)).expect("readable corpus file");
            let content_type = declared_content_type(&body);
            let base = url("https://corpus.example/")
                .join(&path.to_string_lossy())
                .expect("corpus url");
            let outcome = std::panic::catch_unwind(|| {
                parse_document(&body, Some(&base), content_type.as_deref())
            });
            let kind = match outcome {
                Err(_) => {
                    panicked.push(path.display().to_string());
                    continue;
                }
                Ok(Ok(feed)) => {
                    items += feed.items.len();
                    assert!(feed.items.len() <= MAX_ITEMS);
                    for item in &feed.items {
                        assert!(!item_key(item).is_empty(), "{}: empty key", path.display());
                        assert!(item.title.len() <= MAX_TITLE_BYTES);
                        assert!(item.summary.len() <= MAX_TEXT_BYTES);
                    }
                    "parsed"
                }
                Ok(Err(err)) => {
                    let message = err.to_string();
                    let (what, why) = message.split_once(": ").unwrap_or((&message, ""));
                    assert!(
                        ["not a feed", "malformed feed"].contains(&what) && !why.trim().is_empty(),
                        "{}: message is not \"what: why\": {message}",
                        path.display()
                    );
                    crashes_caught += usize::from(message.contains("feed parser crashed"));
                    if verbose {
                        println!("{} {}: {message}", err.kind(), path.display());
                    }
                    err.kind()
                }
            };
            *outcomes.entry(kind).or_default() += 1;
        }
        assert!(panicked.is_empty(), "panicked on {panicked:?}");
        let count = |kind: &str| outcomes.get(kind).copied().unwrap_or(0);
        let refused = count("not_a_feed") + count("malformed");
        assert_eq!(
            count("parsed") + refused,
            files.len(),
            "unknown kinds: {outcomes:?}"
        );
        println!(
            "whole corpus: {} files: {} parsed ({items} items), {refused} refused \
             (not_a_feed {}, malformed {}, of which feed-rs crashes caught {crashes_caught})",
            files.len(),
            count("parsed"),
            count("not_a_feed"),
            count("malformed"),
        );
    }

    #[test]
    fn ordinary_feeds_are_read_as_they_are() {
        for doc in [RSS2, ATOM] {
            let bounded = bounds::bound_xml(doc.as_bytes()).expect("within the caps");
            assert!(matches!(bounded.doc, std::borrow::Cow::Borrowed(_)));
        }
        let bounded = bounds::bound_json(JSON_FEED.as_bytes());
        assert!(matches!(bounded.doc, std::borrow::Cow::Borrowed(_)));
        let feed = parse(RSS2.as_bytes(), None);
        assert_eq!((feed.dropped_items, feed.dropped_elements), (0, 0));
    }

    #[test]
    fn the_caps_change_no_item_of_the_corpus() {
        let Some(dir) = corpus_dir() else {
            println!("skipped: corpus not found at ../shared/corpus");
            return;
        };
        let (mut compared, mut cut) = (0usize, Vec::new());
        for path in every_file(&dir) {
            let body = std::fs::read(dir.join(&path)).expect("readable corpus file");
            let content_type = declared_content_type(&body);
            let Ok(bounded) = parse_document(&body, None, content_type.as_deref()) else {
                continue;
            };
            // The same document, straight to feed-rs.
            let utf8 = encoding::to_utf8(&body, content_type.as_deref());
            let head = &utf8[skip_bom_and_space(&utf8)..];
            let whole = parse_with_repairs(head, None).map(|feed| normalize(feed, None));
            let Ok(whole) = whole else {
                panic!("{}: parses only once cut", path.display());
            };
            compared += 1;
            if bounded.dropped_items + bounded.dropped_elements > 0 {
                cut.push(format!(
                    "{} ({} items, {} elements)",
                    path.display(),
                    bounded.dropped_items,
                    bounded.dropped_elements
                ));
            }
            assert_eq!(
                (bounded.title, bounded.items, bounded.ttl),
                (whole.title, whole.items, whole.ttl),
                "{}",
                path.display()
            );
        }
        println!("corpus: {compared} feeds compared; cut: {cut:?}");
        assert!(compared > 100, "corpus unexpectedly small");
    }

    #[test]
    fn rss_ttl_is_read_as_minutes() {
        let doc = b"<rss version=\"2.0\"><channel><title>t</title><ttl>45</ttl>\
            <item><guid>1</guid><title>a</title></item></channel></rss>";
        assert_eq!(parse_feed(doc, None).unwrap().ttl, Some(45));
        let doc = b"<rss version=\"2.0\"><channel><title>t</title>\
            <item><guid>1</guid><title>a</title></item></channel></rss>";
        assert_eq!(parse_feed(doc, None).unwrap().ttl, None);
    }
}
