//! Guards run before feed-rs sees a document, against input that would hurt the process
//! rather than just fail to parse.
//!
//! feed-rs recurses once per nesting level in places (nested `<media:group>`, nested
//! `<itunes:category>`): a few thousand levels overflow a 2 MiB thread stack, and a stack
//! overflow aborts the whole daemon — `catch_unwind` cannot stop it. [`check_nesting`]
//! tokenizes the document once with quick-xml, the tokenizer feed-rs itself uses (so both
//! agree on what is an element), and refuses it past [`MAX_DEPTH`] levels. Entities need no
//! guard: quick-xml never reads a DTD and feed-rs resolves only the five predefined entities
//! and character references, leaving `&name;` as it is, so neither billion laughs nor
//! external entities expand. Input: the document as UTF-8. Output: `Ok` or
//! [`ParseError::Malformed`].

use quick_xml::Reader;
use quick_xml::events::Event;

use super::ParseError;

/// Deepest element nesting accepted. Real feeds nest a dozen levels, XHTML content a few
/// dozen more; feed-rs handles this many levels on a 2 MiB stack even in a debug build.
pub const MAX_DEPTH: usize = 256;

/// Refuses an XML document whose elements nest deeper than [`MAX_DEPTH`]. A document
/// quick-xml cannot tokenize is let through: feed-rs will stop at the same place.
pub(super) fn check_nesting(xml: &[u8]) -> Result<(), ParseError> {
    let mut reader = Reader::from_reader(xml);
    let config = reader.config_mut();
    // As feed-rs configures it, so that both readers see the same elements.
    config.trim_markup_names_in_closing_tags = true;
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ParseError::Malformed(format!(
                        "nesting deeper than {MAX_DEPTH} levels"
                    )));
                }
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ParseError, parse_feed};
    use super::MAX_DEPTH;

    fn nested(open: &str, close: &str, levels: usize, item: bool) -> String {
        let mut doc = String::from(
            "<rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\" \
xmlns:itunes=\"http://www.itunes.com/dtds/podcast-1.0.dtd\"><channel><title>deep</title>",
        );
        if item {
            doc.push_str("<item><title>x</title><link>https://deep.example/1</link>");
        }
        doc.push_str(&open.repeat(levels));
        doc.push_str(&close.repeat(levels));
        if item {
            doc.push_str("</item>");
        }
        doc.push_str("</channel></rss>");
        doc
    }

    #[test]
    fn documents_nested_100000_levels_deep_are_refused_without_recursing() {
        // Without the guard, nested media:group or itunes:category abort the process with a
        // stack overflow after a few thousand levels.
        for (open, close, item) in [
            ("<media:group>", "</media:group>", true),
            ("<itunes:category text=\"a\">", "</itunes:category>", false),
            ("<div>", "</div>", true),
        ] {
            let doc = nested(open, close, 100_000, item);
            for doc in [doc.clone(), format!("junk before the root {doc}")] {
                match parse_feed(doc.as_bytes(), None) {
                    Err(err @ ParseError::Malformed(_)) => {
                        assert_eq!(
                            err.to_string(),
                            format!("malformed feed: nesting deeper than {MAX_DEPTH} levels")
                        );
                        assert_eq!(err.kind(), "malformed");
                    }
                    other => panic!("{open}: expected a nesting error, got {other:?}"),
                }
            }
        }
    }

    #[test]
    fn nesting_up_to_the_limit_is_parsed_on_a_small_stack() {
        // The rss/channel/item levels count too.
        let doc = nested("<media:group>", "</media:group>", MAX_DEPTH - 3, true);
        let parsed = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse_feed(doc.as_bytes(), None).map(|f| f.items.len()))
            .expect("thread")
            .join()
            .expect("no crash");
        assert_eq!(parsed.ok(), Some(1));
        let too_deep = nested("<media:group>", "</media:group>", MAX_DEPTH - 2, true);
        assert!(matches!(
            parse_feed(too_deep.as_bytes(), None),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn unclosed_deep_nesting_is_refused_too() {
        let doc = format!(
            "<rss version=\"2.0\"><channel>{}",
            "<a x='1>2'>".repeat(50_000)
        );
        assert!(matches!(
            parse_feed(doc.as_bytes(), None),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn markup_inside_cdata_comments_and_attributes_does_not_count() {
        let noise = "<a><b><c>".repeat(200);
        let doc = format!(
            "<?xml version=\"1.0\"?><!-- {noise} --><rss version=\"2.0\"><channel><title>t</title>\
<item><title>x</title><link>https://n.example/1</link>\
<description><![CDATA[{noise}]]></description><category domain=\"{}\">c</category>\
</item></channel></rss>",
            noise.replace('<', "&lt;")
        );
        let feed = parse_feed(doc.as_bytes(), None).expect("parses");
        assert_eq!(feed.items.len(), 1);
    }
}
