//! The configuration text into [`RawConfig`], a few dozen kilobytes at a time.
//!
//! `toml::from_str` holds the whole file's token list, event list and document tree at
//! once before it deserializes anything: about 3 KB per `[[feeds]]` entry, 300 MB for
//! 100,000 of them, while the entries themselves take about 300 bytes each.
//!
//! Input: the file's text. Output: exactly what `toml::from_str` gives for it, spans
//! included. The text is cut at its top-level `[[feeds]]` headers, found with the toml
//! crate's own lexer (so a header-like line inside a multi-line string or array is not
//! one). Runs of entries are parsed a chunk at a time and their spans moved back to file
//! offsets; everything else is parsed as one document in which the entries are blanked
//! out by comments of the same length, so every other span stays where it was. When any
//! piece fails, or the rest of the file names `feeds` in another way (`feeds = [...]`,
//! `[feeds.x]`), the whole text is parsed in one go as before: every error, and its
//! position, is the one `toml::from_str` reports.

use std::ops::Range;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;
use toml_parser::lexer::TokenKind;

use super::raw::{RawConfig, RawFeed};

/// Text per `toml::from_str` call for a run of entries: the parser's transient memory is
/// about 30 times the text it is given.
const CHUNK_BYTES: usize = 64 * 1024;

pub(super) fn parse(source: &str) -> Result<RawConfig, toml::de::Error> {
    parse_in_chunks(source, CHUNK_BYTES)
}

fn parse_in_chunks(source: &str, chunk_bytes: usize) -> Result<RawConfig, toml::de::Error> {
    feed_entries(source)
        .filter(|entries| !entries.is_empty())
        .and_then(|entries| assemble(source, &entries, chunk_bytes))
        .map_or_else(|| toml::from_str(source), Ok)
}

/// A run of `[[feeds]]` entries and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entries {
    feeds: Vec<RawFeed>,
}

/// The file parsed in pieces, or `None` if the whole text must decide.
fn assemble(source: &str, entries: &[Range<usize>], chunk_bytes: usize) -> Option<RawConfig> {
    // `feeds` must come only from the entries: any other mention makes the whole file
    // either an error or a merge that only the whole parse gets right.
    let rest: RawConfig<Option<IgnoredAny>> = toml::from_str(&blank(source, entries)?).ok()?;
    if rest.feeds.is_some() {
        return None;
    }
    let mut feeds = Vec::with_capacity(entries.len());
    let mut next = 0;
    while next < entries.len() {
        let start = entries[next].start;
        let mut end = entries[next].end;
        let first = next;
        next += 1;
        while next < entries.len()
            && entries[next].start == end
            && entries[next].end - start <= chunk_bytes
        {
            end = entries[next].end;
            next += 1;
        }
        let chunk: Entries = toml::from_str(&source[start..end]).ok()?;
        if chunk.feeds.len() != next - first {
            return None;
        }
        feeds.extend(chunk.feeds.into_iter().map(|feed| feed.shifted(start)));
    }
    let RawConfig {
        daemon,
        poll,
        feeds: _,
        opml,
        watchlists,
        webhooks,
        retention,
        stories,
        cluster,
    } = rest;
    Some(RawConfig {
        daemon,
        poll,
        feeds,
        opml,
        watchlists,
        webhooks,
        retention,
        stories,
        cluster,
    })
}

/// The text with every entry replaced by one comment line of the same length.
fn blank(source: &str, entries: &[Range<usize>]) -> Option<String> {
    let mut bytes = source.as_bytes().to_vec();
    for entry in entries {
        bytes[entry.clone()].fill(b' ');
        bytes[entry.start] = b'#';
        // An entry ends where the next header's line starts, or at the end of the text.
        if source.as_bytes()[entry.end - 1] == b'\n' {
            bytes[entry.end - 1] = b'\n';
        }
    }
    // Whole lines were replaced by ASCII, so the text is still UTF-8.
    String::from_utf8(bytes).ok()
}

impl RawFeed {
    /// The entry with its spans moved `by` bytes further into the file.
    fn shifted(self, by: usize) -> RawFeed {
        fn shift<T>(value: Spanned<T>, by: usize) -> Spanned<T> {
            let span = value.span();
            Spanned::new(span.start + by..span.end + by, value.into_inner())
        }
        RawFeed {
            name: self.name.map(|name| shift(name, by)),
            url: shift(self.url, by),
            schedule: self.schedule.map(|schedule| shift(schedule, by)),
            tags: self.tags.into_iter().map(|tag| shift(tag, by)).collect(),
            redact_params: self
                .redact_params
                .into_iter()
                .map(|param| shift(param, by))
                .collect(),
            full_text: self.full_text,
        }
    }
}

/// The byte range of every top-level `[[feeds]]` entry: from the start of its header's
/// line to the start of the next header's line, or the end of the text. `None` if the
/// brackets do not balance (the whole parse will say why).
fn feed_entries(source: &str) -> Option<Vec<Range<usize>>> {
    let mut entries = Vec::new();
    // The start of the `[[feeds]]` entry being read, if one is.
    let mut open: Option<usize> = None;
    // A header line ends the entry being read, and starts one if it is `[[feeds]]`.
    let mut end_header = |tokens: &[(TokenKind, Range<usize>)], line_start: usize| {
        if let Some(start) = open.take() {
            entries.push(start..line_start);
        }
        if is_feeds_header(source, tokens) {
            open = Some(line_start);
        }
    };
    // Arrays and inline tables open in the current value: a newline inside them does not
    // end the line, and a `[` there opens an array, not a header.
    let mut depth = 0usize;
    let mut line_start = 0;
    let mut at_line_start = true;
    // The tokens of the header line being read, but whitespace.
    let mut header: Option<Vec<(TokenKind, Range<usize>)>> = None;
    for token in toml_parser::Source::new(source).lex() {
        let kind = token.kind();
        let span = token.span().start()..token.span().end();
        match kind {
            TokenKind::Eof => break,
            TokenKind::Whitespace => {}
            TokenKind::Newline if depth == 0 => {
                if let Some(tokens) = header.take() {
                    end_header(&tokens, line_start);
                }
                line_start = span.end;
                at_line_start = true;
            }
            _ if header.is_some() => {
                if let Some(tokens) = header.as_mut() {
                    tokens.push((kind, span));
                }
            }
            TokenKind::Comment => {}
            TokenKind::LeftSquareBracket if at_line_start && depth == 0 => {
                header = Some(vec![(kind, span)]);
                at_line_start = false;
            }
            _ => {
                at_line_start = false;
                match kind {
                    TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
                    TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                        depth = depth.checked_sub(1)?;
                    }
                    _ => {}
                }
            }
        }
    }
    if depth != 0 {
        return None;
    }
    // The last line may have no newline.
    if let Some(tokens) = header.take() {
        end_header(&tokens, line_start);
    }
    if let Some(start) = open {
        entries.push(start..source.len());
    }
    Some(entries)
}

/// Whether a header line's tokens (but whitespace) are exactly `[[feeds]]`, optionally
/// followed by a comment.
fn is_feeds_header(source: &str, tokens: &[(TokenKind, Range<usize>)]) -> bool {
    use TokenKind::{Atom, Comment, LeftSquareBracket as Open, RightSquareBracket as Close};
    let tokens = match tokens {
        [rest @ .., (Comment, _)] => rest,
        all => all,
    };
    match tokens {
        [
            (Open, o1),
            (Open, o2),
            (Atom, key),
            (Close, c1),
            (Close, c2),
        ] => o1.end == o2.start && c1.end == c2.start && &source[key.clone()] == "feeds",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces give exactly what one `toml::from_str` of the text gives: the same
    /// values and spans, or the same error at the same place.
    fn assert_same_as_whole(source: &str) {
        let whole: Result<RawConfig, toml::de::Error> = toml::from_str(source);
        for chunk_bytes in [1, 64, CHUNK_BYTES] {
            let pieces = parse_in_chunks(source, chunk_bytes);
            match (&whole, &pieces) {
                (Ok(whole), Ok(pieces)) => {
                    assert_eq!(format!("{whole:?}"), format!("{pieces:?}"), "{source}")
                }
                (Err(whole), Err(pieces)) => {
                    assert_eq!(whole.message(), pieces.message(), "{source}");
                    assert_eq!(whole.span(), pieces.span(), "{source}");
                }
                _ => panic!("{source}\nwhole: {whole:?}\npieces: {pieces:?}"),
            }
        }
    }

    const FEEDS: &str = r#"
[poll]
schedule = "every 5m" # a comment

[[feeds]]
name = "one"
url = "https://example.org/one.xml"
tags = ["news", "région"]

[[feeds]] # with a comment
url = "https://example.org/two.xml"
schedule = "0 * * * *"

[[watchlists]]
name = "w"
terms = [
  "Iran",
  "[[feeds]]",
]
query = """
[[feeds]]
url = "nope"
"""
feeds = ["one", "tag:news"]

  [[feeds]]
name = "three"
url = "https://example.org/three.xml"
tags = [
  "a",
]

[daemon]
state_dir = "state"

[[feeds]]
name = "four"
url = "https://example.org/four.xml""#;

    #[test]
    fn entries_parsed_in_pieces_match_the_whole_file() {
        // Not by falling back to the whole parse.
        let entries = feed_entries(FEEDS).unwrap();
        assert!(assemble(FEEDS, &entries, 1).is_some());
        assert_same_as_whole(FEEDS);
        assert_same_as_whole(&format!("{FEEDS}\n"));
        assert_same_as_whole(&FEEDS.replace('\n', "\r\n"));
        assert_same_as_whole(&format!("\u{feff}{}", FEEDS.trim_start()));
        assert_same_as_whole("[[feeds]]\nurl = \"https://example.org/\"\n");
        assert_same_as_whole("");
        assert_same_as_whole("[poll]\nconcurrency = 3\n");
    }

    #[test]
    fn the_pieces_find_only_real_entries() {
        let entries = feed_entries(FEEDS).unwrap();
        let names: Vec<&str> = entries
            .iter()
            .map(|e| FEEDS[e.clone()].lines().nth(1).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "name = \"one\"",
                "url = \"https://example.org/two.xml\"",
                "name = \"three\"",
                "name = \"four\"",
            ]
        );
    }

    #[test]
    fn errors_are_those_of_the_whole_file() {
        for source in [
            // An unknown key in an entry, and in the rest.
            "[[feeds]]\nurl = \"https://a.example/\"\nnmae = \"x\"\n",
            "[pol]\n[[feeds]]\nurl = \"https://a.example/\"\n",
            // Entries whose meaning depends on the rest of the file.
            "feeds = []\n[[feeds]]\nurl = \"https://a.example/\"\n",
            "[[feeds]]\nurl = \"https://a.example/\"\n[feeds.extra]\nx = 1\n",
            "[[feeds]]\nurl = \"https://a.example/\"\n[[\"feeds\"]]\nurl = \"https://b.example/\"\n",
            "[[feeds]]\nurl = \"https://a.example/\"\n[[feeds.x]]\n",
            "[[feeds]]\nurl = \"https://a.example/\"\n[poll]\n[poll]\n",
            // Syntax errors inside and around entries.
            "[[feeds]]\nurl = \"https://a.example/\n",
            "[[feeds]]\nurl = \"\"\"https://a.example/\n[poll]\n",
            "[[feeds]]\ntags = [\"a\",\n[poll]\n",
            "[[feeds]] x = 1\nurl = \"https://a.example/\"\n",
            "[[feeds]\nurl = \"https://a.example/\"\n",
            "x = ]\n[[feeds]]\nurl = \"https://a.example/\"\n",
            "[[feeds]]\nurl = \"https://a.example/\"\nurl = \"https://b.example/\"\n",
            "[[feeds]]\n",
        ] {
            assert_same_as_whole(source);
        }
    }
}
