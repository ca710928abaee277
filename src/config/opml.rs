//! OPML subscription lists: `[[opml]]` imports them, `opml export` writes one.
//!
//! [`import`] turns the feed outlines of each `[[opml]]` file into feeds, built by
//! [`build_feeds`] exactly as `[[feeds]]` entries are, their folders becoming tags.
//!
//! [`read`] finds those outlines: the `outline` elements of an OPML 1.0 or 2.0 file that
//! carry an `xmlUrl`, each with the folders it sits in. Input: the file's text. Output:
//! one [`Outline`] per feed, in document order, with its byte offset so that errors can
//! name the line; it validates neither URLs nor names. The tokenizer is quick-xml, which
//! never reads a DTD and resolves only the predefined entities and character references,
//! so a hostile file cannot expand.
//!
//! [`export`] writes the configured feeds back out, so that an import round-trips: each
//! feed sits in one folder per tag (an import gives a URL seen in several folders all of
//! their tags), named by the feed's name. Credentials in feed URLs are shown as
//! `REDACTED` unless the caller asks for them (`opml export --with-credentials`).

use std::collections::HashMap;
use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use toml::Spanned;
use url::Url;

use super::feeds::build_feeds;
use super::files;
use super::problems::{Problems, line_column};
use super::raw::{RawFeed, RawOpml};
use super::values::relative_to;
use super::{Declared, Feed, Poll};

/// Where a feed name was taken: a `[[feeds]]` entry at this byte offset of the config, or
/// an OPML outline, described.
enum Place {
    Feeds(usize),
    Opml(String),
}

/// The feeds of the `[[opml]]` files, each built by [`build_feeds`] exactly as a
/// `[[feeds]]` entry (URL rules, network guard, the default schedule).
///
/// - Every `outline` with an `xmlUrl` is a feed, named by its `title` (else `text`)
///   turned into a slug (`BBC News: World` → `bbc-news-world`), else by the URL's host.
/// - Its tags: the `[[opml]]` entry's `tags`, plus the slug of every folder (outline
///   without `xmlUrl`) it is nested in, so a feed reader's folders become `tag:NAME`s.
/// - A URL that a `[[feeds]]` entry already has is left to that entry, as written. The
///   same URL twice in the OPML files is one feed carrying the tags of both places.
/// - Two different URLs under one name are an error naming both places.
///
/// Problems are reported at the `[[opml]]` entry's `path`, naming the OPML file, the line
/// and column of the outline, and the outline.
pub(super) fn import(
    base: &Path,
    raw: &[RawOpml],
    hand_written: &[RawFeed],
    poll: Option<&Poll>,
    declared: &mut Declared,
    p: &mut Problems<'_>,
) -> Vec<Feed> {
    if raw.is_empty() {
        // Nothing to import: no need to index the hand-written feeds (100,000 of them
        // can take 30 MB).
        return Vec::new();
    }
    // Every name and URL taken so far, and where: a `[[feeds]]` entry (None) or the index
    // of an imported feed.
    // Places are rendered only for a message: turning every entry's offset into a line
    // up front would scan the file once per feed.
    let mut names: HashMap<String, Place> = HashMap::new();
    let mut urls: HashMap<Url, Option<usize>> = HashMap::new();
    for feed in hand_written {
        let url = Url::parse(feed.url.get_ref().trim()).ok();
        let name = match &feed.name {
            Some(name) => name.get_ref().trim().to_string(),
            None => url
                .as_ref()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default(),
        };
        names
            .entry(name)
            .or_insert(Place::Feeds(feed.url.span().start));
        if let Some(url) = url {
            urls.entry(url).or_insert(None);
        }
    }
    let mut imported: Vec<Feed> = Vec::new();
    for entry in raw {
        let span = entry.path.span();
        let mut tags = Vec::new();
        for tag in &entry.tags {
            let text = tag.get_ref().trim();
            if text.is_empty() || text.contains(':') {
                p.at(
                    tag.span(),
                    format!(
                        "tag `{}` must be non-empty and contain no `:`",
                        tag.get_ref()
                    ),
                );
            } else {
                declared.tags.insert(text.to_string());
                tags.push(text.to_string());
            }
        }
        let file = relative_to(base, entry.path.get_ref().trim());
        let shown = file.display();
        let text = match files::read_limited(&file, files::MAX_OPML_BYTES)
            .map(|contents| String::from_utf8(contents.bytes))
        {
            Ok(Ok(text)) => text,
            Ok(Err(_)) => {
                p.at(span, format!("opml `{shown}` is not UTF-8 text"));
                continue;
            }
            Err(why) => {
                p.at(span, format!("opml `{shown}` cannot be read: {why}"));
                continue;
            }
        };
        let outlines = match read(&text) {
            Ok(outlines) => outlines,
            Err(err) => {
                let (line, column) = line_column(&text, err.offset);
                p.at(
                    span,
                    format!("opml {shown}:{line}:{column}: {}", err.message),
                );
                continue;
            }
        };
        if outlines.is_empty() {
            p.at(
                span,
                format!("opml `{shown}` has no outline with an xmlUrl: no feed to import"),
            );
            continue;
        }
        // The feeds' own problems are placed in the OPML file, by the outline.
        let mut local = Problems::new(&text);
        for outline in outlines {
            let (line, column) = local.lines.locate(outline.offset);
            let here = format!("{shown}:{line}:{column}");
            let what = outline
                .title
                .as_ref()
                .map_or("outline".to_string(), |t| format!("outline `{t}`"));
            let url = Url::parse(outline.xml_url.trim()).ok();
            let name = outline
                .title
                .as_deref()
                .map(slug)
                .filter(|slug| !slug.is_empty())
                .or_else(|| url.as_ref().and_then(|u| u.host_str().map(str::to_string)))
                .unwrap_or_default();
            let mut feed_tags = tags.clone();
            for folder in outline.folders.iter().map(|f| slug(f)) {
                if !folder.is_empty() && !feed_tags.contains(&folder) {
                    feed_tags.push(folder);
                }
            }
            declared.feeds.insert(name.clone());
            declared.tags.extend(feed_tags.iter().cloned());
            if let Some(seen) = url.as_ref().and_then(|u| urls.get(u)) {
                if let Some(feed) = seen.and_then(|i| imported.get_mut(i)) {
                    for tag in feed_tags {
                        if !feed.tags.contains(&tag) {
                            feed.tags.push(tag);
                        }
                    }
                }
                continue;
            }
            if let Some(place) = names.get(&name) {
                let place = match place {
                    Place::Feeds(offset) => {
                        format!("the [[feeds]] entry at line {}", p.lines.locate(*offset).0)
                    }
                    Place::Opml(place) => place.clone(),
                };
                p.at(
                    span.clone(),
                    format!(
                        "opml {here}: {what}: the feed name `{name}` is already used by {place}, \
                         with another URL; rename one of them (in the OPML file, the outline's `title`)"
                    ),
                );
                continue;
            }
            names.insert(name.clone(), Place::Opml(format!("{here} ({what})")));
            // Positions in the OPML file, so that the feed path's messages can be placed.
            let at = outline.offset..outline.offset;
            let raw_feed = RawFeed {
                name: Some(Spanned::new(at.clone(), name)),
                url: Spanned::new(at.clone(), outline.xml_url),
                schedule: None,
                tags: feed_tags
                    .into_iter()
                    .map(|tag| Spanned::new(at.clone(), tag))
                    .collect(),
                redact_params: Vec::new(),
                full_text: None,
            };
            let built = build_feeds(vec![raw_feed], poll, &mut local);
            for problem in local.list.drain(..) {
                p.at(
                    span.clone(),
                    format!("opml {here}: {what}: {}", problem.message),
                );
            }
            if let Some(feed) = built.into_iter().next() {
                if let Some(url) = url {
                    urls.insert(url, Some(imported.len()));
                }
                imported.push(feed);
            }
        }
    }
    imported
}

/// The feeds as an OPML 2.0 document: untagged feeds at the top, tagged ones inside a
/// folder per tag; feed URLs as configured with `credentials`, else redacted.
pub fn export(feeds: &[Feed], credentials: bool) -> String {
    use quick_xml::escape::escape;
    let outline = |feed: &Feed, indent: &str| {
        let url = if credentials {
            feed.url.to_string()
        } else {
            crate::redact::url(&feed.url, &feed.redact_params).to_string()
        };
        format!(
            "{indent}<outline type=\"rss\" text=\"{name}\" title=\"{name}\" xmlUrl=\"{url}\"/>\n",
            name = escape(feed.name.as_str()),
            url = escape(url.as_str()),
        )
    };
    let mut doc = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n  <head><title>wirewatch feeds</title></head>\n  <body>\n",
    );
    for feed in feeds.iter().filter(|f| f.tags.is_empty()) {
        doc.push_str(&outline(feed, "    "));
    }
    let mut tags: Vec<&str> = feeds
        .iter()
        .flat_map(|f| f.tags.iter().map(String::as_str))
        .collect();
    tags.sort_unstable();
    tags.dedup();
    for tag in tags {
        doc.push_str(&format!("    <outline text=\"{}\">\n", escape(tag)));
        for feed in feeds.iter().filter(|f| f.tags.iter().any(|t| t == tag)) {
            doc.push_str(&outline(feed, "      "));
        }
        doc.push_str("    </outline>\n");
    }
    doc.push_str("  </body>\n</opml>\n");
    doc
}

/// One outline with an `xmlUrl`: a feed to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outline {
    /// `title`, else `text`, trimmed; `None` when both are missing or blank.
    pub title: Option<String>,
    pub xml_url: String,
    /// Byte offset of the outline's `<` in the file.
    pub offset: usize,
    /// Titles of the outlines without `xmlUrl` it is nested in, outermost first
    /// (the folders of a feed reader's export).
    pub folders: Vec<String>,
}

/// Why a file could not be read as OPML, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OpmlError {
    pub offset: usize,
    pub message: String,
}

/// Reads every feed outline of an OPML document.
pub(super) fn read(text: &str) -> Result<Vec<Outline>, OpmlError> {
    // Offsets count from the start of the file, a byte order mark (3 bytes) included.
    let (text, shift) = match text.strip_prefix('\u{feff}') {
        Some(rest) => (rest, 3),
        None => (text, 0),
    };
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_markup_names_in_closing_tags = true;
    let mut outlines = Vec::new();
    // One entry per open `<outline>`: its title when it is a folder (no `xmlUrl`).
    let mut open: Vec<Option<String>> = Vec::new();
    let mut root_seen = false;
    loop {
        let start = reader.buffer_position() as usize + shift;
        let event = reader.read_event().map_err(|err| OpmlError {
            offset: reader.error_position() as usize + shift,
            message: format!("not well-formed XML: {err}"),
        })?;
        let (element, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                if e.local_name().as_ref() == "outline" {
                    open.pop();
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = element.local_name();
        if !root_seen {
            if name.as_ref() != "opml" {
                return Err(OpmlError {
                    offset: start,
                    message: format!(
                        "not an OPML document: the root element is `{}`, not `opml`",
                        name.as_ref()
                    ),
                });
            }
            root_seen = true;
            continue;
        }
        if name.as_ref() != "outline" {
            continue;
        }
        let attributes = outline_attributes(element).map_err(|message| OpmlError {
            offset: start,
            message,
        })?;
        let title = attributes.title.or(attributes.text);
        match attributes.xml_url {
            Some(xml_url) => {
                outlines.push(Outline {
                    title,
                    xml_url,
                    offset: start,
                    folders: open.iter().flatten().cloned().collect(),
                });
                if !empty {
                    // A feed outline with children is not a folder.
                    open.push(None);
                }
            }
            None if !empty => open.push(title),
            None => {}
        }
    }
    if !root_seen {
        return Err(OpmlError {
            offset: 0,
            message: "not an OPML document: no `opml` element".into(),
        });
    }
    Ok(outlines)
}

#[derive(Default)]
struct OutlineAttributes {
    title: Option<String>,
    text: Option<String>,
    xml_url: Option<String>,
}

/// The attributes of an `<outline>` that matter here. `xmlUrl` is matched without regard
/// to case, as some exporters write `xmlurl`.
fn outline_attributes(element: &BytesStart<'_>) -> Result<OutlineAttributes, String> {
    let mut found = OutlineAttributes::default();
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|err| format!("bad attribute: {err}"))?;
        let key = attribute.key.local_name();
        let key = key.as_ref();
        let is_url = key.eq_ignore_ascii_case("xmlUrl");
        let slot = if is_url {
            &mut found.xml_url
        } else if key == "title" {
            &mut found.title
        } else if key == "text" {
            &mut found.text
        } else {
            continue;
        };
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| format!("bad `{key}` attribute: {err}"))?;
        let value = value.trim();
        // A blank title falls back to `text`; a blank `xmlUrl` is kept, to be refused as
        // a URL like any other bad one.
        *slot = (is_url || !value.is_empty()).then(|| value.to_string());
    }
    Ok(found)
}

/// A feed name or tag from a title: lower case, every run of characters that are not
/// letters or digits turned into one `-`, none at either end. "BBC News: World" gives
/// `bbc-news-world`; a title without letters or digits gives "".
pub(super) fn slug(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    let mut dash = false;
    for c in title.chars() {
        if c.is_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.extend(c.to_lowercase());
        } else {
            dash = true;
        }
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="Middle East" title="Middle East">
      <outline type="rss" text="Tehran Times" xmlUrl="https://www.tehrantimes.com/rss"/>
      <outline text="Iran">
        <outline type="rss" text="IRNA English" title="IRNA &amp; Co" xmlUrl="https://en.irna.ir/rss"/>
      </outline>
    </outline>
    <outline type="rss" text="" xmlurl="https://feeds.example.org/world.xml"/>
    <outline text="An empty folder"/>
  </body>
</opml>
"#;

    #[test]
    fn feed_outlines_are_read_with_their_folders() {
        let outlines = read(EXPORT).unwrap();
        let summary: Vec<(Option<&str>, &str, Vec<&str>)> = outlines
            .iter()
            .map(|o| {
                (
                    o.title.as_deref(),
                    o.xml_url.as_str(),
                    o.folders.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    Some("Tehran Times"),
                    "https://www.tehrantimes.com/rss",
                    vec!["Middle East"]
                ),
                (
                    Some("IRNA & Co"),
                    "https://en.irna.ir/rss",
                    vec!["Middle East", "Iran"]
                ),
                (None, "https://feeds.example.org/world.xml", vec![]),
            ]
        );
    }

    #[test]
    fn offsets_point_at_the_outline() {
        let outlines = read(EXPORT).unwrap();
        for outline in outlines {
            assert!(
                EXPORT[outline.offset..].starts_with("<outline"),
                "{outline:?}"
            );
        }
    }

    #[test]
    fn opml_1_0_without_a_body_wrapper_still_reads() {
        let doc = r#"<opml version="1.0"><body><outline title="A" xmlUrl="http://a.example/rss"></outline></body></opml>"#;
        let outlines = read(doc).unwrap();
        assert_eq!(outlines.len(), 1);
        assert_eq!(outlines[0].title.as_deref(), Some("A"));
    }

    #[test]
    fn a_byte_order_mark_does_not_shift_offsets_or_hide_the_root() {
        let doc = "\u{feff}<opml><body>\n<outline text=\"A\" xmlUrl=\"http://a.example/rss\"/></body></opml>";
        let outlines = read(doc).unwrap();
        assert!(doc[outlines[0].offset..].starts_with("<outline"));
    }

    #[test]
    fn ill_formed_xml_is_refused_with_a_position() {
        let doc =
            "<opml><body>\n<outline text=\"A\" xmlUrl=\"http://a.example/rss\">\n</body></opml>";
        let err = read(doc).unwrap_err();
        assert!(err.message.contains("not well-formed XML"), "{err:?}");
        assert!(err.offset > 0);
    }

    #[test]
    fn another_root_element_is_not_opml() {
        let err = read("<rss version=\"2.0\"><channel/></rss>").unwrap_err();
        assert!(err.message.contains("root element is `rss`"), "{err:?}");
        let err = read("just text").unwrap_err();
        assert!(err.message.contains("no `opml` element"), "{err:?}");
    }

    #[test]
    fn undefined_entities_are_refused_not_expanded() {
        let doc = "<!DOCTYPE opml [<!ENTITY x \"boom\">]><opml><body><outline text=\"&x;\" xmlUrl=\"http://a.example/\"/></body></opml>";
        let err = read(doc).unwrap_err();
        assert!(err.message.contains("bad `text` attribute"), "{err:?}");
    }

    #[test]
    fn slugs_keep_letters_and_digits_of_any_script() {
        assert_eq!(slug("BBC News: World"), "bbc-news-world");
        assert_eq!(slug("  Tehran Times "), "tehran-times");
        assert_eq!(slug("Reuters — World (EN)"), "reuters-world-en");
        assert_eq!(slug("ایران اینترنشنال"), "ایران-اینترنشنال");
        assert_eq!(slug("新华网 2024"), "新华网-2024");
        assert_eq!(slug("--- !!! ---"), "");
    }
}

/// `[[opml]]` through the whole configuration loader.
#[cfg(test)]
mod loading_tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    const SUBSCRIPTIONS: &str = r#"<?xml version="1.0"?>
<opml version="2.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="Middle East">
      <outline text="Tehran Times" xmlUrl="https://www.tehrantimes.com/rss"/>
      <outline text="Wire: World" xmlUrl="https://wire.example.org/world.xml"/>
    </outline>
    <outline text="Asia">
      <outline text="Wire (Asia copy)" xmlUrl="https://wire.example.org/world.xml"/>
    </outline>
    <outline xmlUrl="https://news.example.net/feed"/>
  </body>
</opml>
"#;

    /// Writes the OPML file next to a config holding `toml`, and loads the config.
    fn load(toml: &str, opml: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("feeds.opml"), opml).unwrap();
        let path = dir.path().join("wirewatch.toml");
        let config = Config::from_source(&path, toml);
        (dir, config)
    }

    fn message(result: Result<Config, ConfigError>) -> String {
        result.expect_err("the config is refused").to_string()
    }

    #[test]
    fn outlines_become_feeds_named_by_title_and_tagged_by_folder() {
        let toml = r#"
[[opml]]
path = "feeds.opml"
tags = ["imported"]

[[watchlists]]
name = "mideast"
terms = ["Iran"]
feeds = ["tag:middle-east", "news.example.net"]
"#;
        let (_dir, config) = load(toml, SUBSCRIPTIONS);
        let config = config.unwrap();
        let feeds: Vec<(&str, &str, Vec<&str>)> = config
            .feeds
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.url.as_str(),
                    f.tags.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            feeds,
            vec![
                (
                    "tehran-times",
                    "https://www.tehrantimes.com/rss",
                    vec!["imported", "middle-east"]
                ),
                (
                    "wire-world",
                    "https://wire.example.org/world.xml",
                    vec!["imported", "middle-east", "asia"]
                ),
                (
                    "news.example.net",
                    "https://news.example.net/feed",
                    vec!["imported"]
                ),
            ]
        );
        assert_eq!(config.watchlists[0].feeds.as_ref().unwrap().len(), 3);
        assert!(config.feeds.iter().all(|f| f.cache_hints));
    }

    #[test]
    fn a_url_already_in_feeds_is_left_to_that_entry() {
        let toml = r#"
[[feeds]]
name = "tt"
url = "https://www.tehrantimes.com/rss"
tags = ["mine"]

[[opml]]
path = "feeds.opml"
tags = ["imported"]
"#;
        let (_dir, config) = load(toml, SUBSCRIPTIONS);
        let config = config.unwrap();
        let tt: Vec<_> = config
            .feeds
            .iter()
            .filter(|f| f.url.as_str() == "https://www.tehrantimes.com/rss")
            .collect();
        assert_eq!(tt.len(), 1);
        assert_eq!(tt[0].name, "tt");
        assert_eq!(tt[0].tags, vec!["mine".to_string()]);
        assert_eq!(config.feeds.len(), 3);
    }

    #[test]
    fn a_name_taken_by_feeds_is_an_error_naming_both_places() {
        let toml = "[[feeds]]\nname = \"tehran-times\"\nurl = \"https://other.example/rss\"\n\n[[opml]]\npath = \"feeds.opml\"\n";
        let (dir, config) = load(toml, SUBSCRIPTIONS);
        let text = message(config);
        let opml = dir.path().join("feeds.opml");
        assert!(
            text.contains(&format!("wirewatch.toml:6:8: opml {}:6:7: outline `Tehran Times`: the feed name `tehran-times` is already used by the [[feeds]] entry at line 3", opml.display())),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn a_name_used_twice_in_the_opml_files_names_both_outlines() {
        let opml = r#"<opml><body>
<outline text="News" xmlUrl="https://a.example/rss"/>
<outline text="News" xmlUrl="https://b.example/rss"/>
</body></opml>"#;
        let (_dir, config) = load("[[opml]]\npath = \"feeds.opml\"\n", opml);
        let text = message(config);
        assert!(text.contains("feeds.opml:3:1: outline `News`"), "{text}");
        assert!(
            text.contains("already used by") && text.contains("feeds.opml:2:1 (outline `News`)"),
            "{text}"
        );
    }

    #[test]
    fn outline_urls_are_validated_like_feed_urls() {
        let opml = r#"<opml><body>
  <outline text="Gopher" xmlUrl="gopher://a.example/rss"/>
  <outline text="Inside" xmlUrl="http://10.0.0.7/rss"/>
  <outline text="Nothing" xmlUrl=""/>
</body></opml>"#;
        let (_dir, config) = load("[[opml]]\npath = \"feeds.opml\"\n", opml);
        let text = message(config);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].contains(
                "feeds.opml:2:3: outline `Gopher`: feed url must be an http or https URL"
            ),
            "{text}"
        );
        assert!(
            lines[1].contains("feeds.opml:3:3: outline `Inside`: feed url:"),
            "{text}"
        );
        assert!(
            lines[2].contains("outline `Nothing`: feed url is not a URL"),
            "{text}"
        );
        // With private networks allowed, the same 10/8 address is fine.
        let toml = "[poll]\nallow_private_networks = true\n\n[[opml]]\npath = \"feeds.opml\"\n";
        let (_dir, config) = load(toml, opml);
        assert_eq!(message(config).lines().count(), 2);
    }

    #[test]
    fn a_missing_or_broken_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wirewatch.toml");
        let text = Config::from_source(&path, "[[opml]]\npath = \"nowhere.opml\"\n")
            .unwrap_err()
            .to_string();
        assert!(text.contains("wirewatch.toml:2:8: opml `"), "{text}");
        assert!(text.contains("nowhere.opml` cannot be read"), "{text}");

        let (_dir, config) = load(
            "[[opml]]\npath = \"feeds.opml\"\n",
            "<opml><body>\n<outline text=\"A\" xmlUrl=\"http://a.example/\">\n</body></opml>",
        );
        let text = message(config);
        assert!(text.contains("feeds.opml:3:"), "{text}");
        assert!(text.contains("not well-formed XML"), "{text}");

        let (_dir, config) = load("[[opml]]\npath = \"feeds.opml\"\n", "<opml><body/></opml>");
        assert!(message(config).contains("no outline with an xmlUrl"));
    }

    #[test]
    fn opml_entries_refuse_unknown_keys_and_bad_tags() {
        let (_dir, config) = load(
            "[[opml]]\npath = \"feeds.opml\"\nschedule = \"every 5m\"\n",
            SUBSCRIPTIONS,
        );
        assert!(message(config).contains("unknown field `schedule`"));
        let (_dir, config) = load(
            "[[opml]]\npath = \"feeds.opml\"\ntags = [\"a:b\"]\n",
            SUBSCRIPTIONS,
        );
        assert!(message(config).contains("tag `a:b` must be non-empty"));
    }

    #[test]
    fn the_opml_path_is_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/feeds.opml"), SUBSCRIPTIONS).unwrap();
        let config = Config::from_source(
            &dir.path().join("etc/wirewatch.toml"),
            "[[opml]]\npath = \"feeds.opml\"\n",
        )
        .unwrap();
        assert_eq!(config.feeds.len(), 3);
        assert!(!Path::new("feeds.opml").exists());
    }
}
