//! Character encodings: which charset a fetched document is written in, and that document
//! rewritten as UTF-8.
//!
//! The charset comes from, in order: a byte-order mark (UTF-8, UTF-16LE/BE, UTF-32LE/BE) or,
//! without one, the UTF-16/UTF-32 byte pattern of a leading `<` (XML 1.0 appendix F); the
//! XML declaration's `encoding`; the `charset` parameter of the HTTP `Content-Type`; else
//! UTF-8. Labels are WHATWG's, as `encoding_rs` reads them (`latin1`, `gb2312`, `koi8-r`,
//! `x-sjis`, ...); a label it does not know counts as absent. Two exceptions, both because
//! real publishers get labels wrong far more often than text gets them right by accident:
//! a body that is already valid UTF-8 stays UTF-8 whatever the declaration or header claim
//! (UTF-8 served as ISO-8859-1 is common; miniflux makes the same call), and bytes that are
//! not UTF-8 inside a UTF-8 document are read as windows-1252, as browsers do.
//!
//! Output: valid UTF-8 without a BOM whose XML declaration, if it names an encoding, names
//! `utf-8` — quick-xml (inside feed-rs) switches its decoder to whatever the declaration
//! says, so a declaration left saying `windows-1251` would decode the UTF-8 a second time.

use std::borrow::Cow;

use encoding_rs::{Encoding, REPLACEMENT, UTF_8, UTF_16BE, UTF_16LE};

use super::html::CP1252_C1;
use super::sniff::{find_attr_value, find_bytes};

/// How far into the document the XML declaration's closing `?>` is looked for.
const DECLARATION_BYTES: usize = 1024;

/// The charset a document is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    /// UTF-8, with windows-1252 for stray bytes.
    Utf8,
    /// UTF-16 or UTF-32 (`width` bytes a unit), after a BOM of `bom` bytes.
    Wide {
        width: usize,
        big_endian: bool,
        bom: usize,
    },
    /// Any other encoding `encoding_rs` knows.
    Legacy(&'static Encoding),
}

/// The document as UTF-8 (see the module docs for how the charset is chosen).
/// `content_type` is the HTTP `Content-Type` header, when there was one.
pub(crate) fn to_utf8<'a>(body: &'a [u8], content_type: Option<&str>) -> Cow<'a, [u8]> {
    let text: Cow<'a, [u8]> = match detect(body, content_type) {
        Charset::Utf8 => decode_utf8_or_cp1252(body),
        Charset::Wide {
            width,
            big_endian,
            bom,
        } => Cow::Owned(decode_wide(&body[bom..], width, big_endian).into_bytes()),
        Charset::Legacy(encoding) => {
            let (text, _) = encoding.decode_without_bom_handling(body);
            match text {
                Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
                Cow::Owned(text) => Cow::Owned(text.into_bytes()),
            }
        }
    };
    declare_utf8(strip_bom(text))
}

/// Which charset the body is in.
fn detect(body: &[u8], content_type: Option<&str>) -> Charset {
    if let Some(wide) = unicode_signature(body) {
        return wide;
    }
    if body.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Charset::Utf8;
    }
    let labelled = declared_label(body)
        .and_then(encoding_for)
        .or_else(|| content_type.and_then(header_label).and_then(encoding_for));
    match labelled {
        // Already valid UTF-8: the label is wrong (pure ASCII reads the same either way in
        // every ASCII-compatible encoding).
        Some(encoding)
            if encoding != UTF_8
                && !(encoding.is_ascii_compatible() && std::str::from_utf8(body).is_ok()) =>
        {
            Charset::Legacy(encoding)
        }
        _ => Charset::Utf8,
    }
}

/// A UTF-16 or UTF-32 document, told by its BOM or by the bytes of its leading `<`.
fn unicode_signature(body: &[u8]) -> Option<Charset> {
    let wide = |width, big_endian, bom| {
        Some(Charset::Wide {
            width,
            big_endian,
            bom,
        })
    };
    match body {
        // UTF-32 first: its little-endian BOM starts like UTF-16's.
        [0x00, 0x00, 0xFE, 0xFF, ..] => wide(4, true, 4),
        [0xFF, 0xFE, 0x00, 0x00, ..] => wide(4, false, 4),
        [0xFE, 0xFF, ..] => wide(2, true, 2),
        [0xFF, 0xFE, ..] => wide(2, false, 2),
        [0x00, 0x00, 0x00, b'<', ..] => wide(4, true, 0),
        [b'<', 0x00, 0x00, 0x00, ..] => wide(4, false, 0),
        [0x00, b'<', 0x00, x, ..] if *x != 0 => wide(2, true, 0),
        [b'<', 0x00, x, 0x00, ..] if *x != 0 => wide(2, false, 0),
        _ => None,
    }
}

/// The `encoding` of an XML declaration at the start of the body (after whitespace).
fn declared_label(body: &[u8]) -> Option<&[u8]> {
    declared_label_range(body).map(|(from, to)| &body[from..to])
}

/// Where [`declared_label`] lies in the body.
fn declared_label_range(body: &[u8]) -> Option<(usize, usize)> {
    let start = body.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let head = &body[start..];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = find_bytes(&head[..head.len().min(DECLARATION_BYTES)], 5, b"?>")?;
    let (from, to) = find_attr_value(&head[5..end], b"encoding")?;
    Some((start + 5 + from, start + 5 + to))
}

/// The `charset` parameter of a `Content-Type` value (`text/xml; charset="koi8-r"`).
fn header_label(content_type: &str) -> Option<&[u8]> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then_some(value.as_bytes())
    })
}

/// The encoding a label names, trying `_` as `-` and an `x-` prefix (`mac-cyrillic`) too.
/// UTF-16 named by a document readable as ASCII is a mislabel, and `replacement` (what
/// WHATWG maps ISO-2022-KR and HZ to) would erase the text: both count as no label.
fn encoding_for(label: &[u8]) -> Option<&'static Encoding> {
    if label.is_empty() || label.len() > 64 {
        return None;
    }
    let dashed: Vec<u8> = label
        .iter()
        .map(|b| if *b == b'_' { b'-' } else { *b })
        .collect();
    let prefixed = [&b"x-"[..], label].concat();
    let encoding = Encoding::for_label(label)
        .or_else(|| Encoding::for_label(&dashed))
        .or_else(|| Encoding::for_label(&prefixed))?;
    (![UTF_16LE, UTF_16BE, REPLACEMENT].contains(&encoding)).then_some(encoding)
}

/// Decodes UTF-16 or UTF-32; invalid units become U+FFFD, a trailing partial unit is dropped.
fn decode_wide(body: &[u8], width: usize, big_endian: bool) -> String {
    if width == 2 {
        let encoding = if big_endian { UTF_16BE } else { UTF_16LE };
        let end = body.len() - body.len() % 2;
        return encoding
            .decode_without_bom_handling(&body[..end])
            .0
            .into_owned();
    }
    body.chunks_exact(4)
        .map(|unit| {
            let bytes = [unit[0], unit[1], unit[2], unit[3]];
            let value = if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            };
            char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER)
        })
        .collect()
}

/// Keeps every valid UTF-8 sequence and reads each invalid byte as windows-1252.
fn decode_utf8_or_cp1252(body: &[u8]) -> Cow<'_, [u8]> {
    if std::str::from_utf8(body).is_ok() {
        return Cow::Borrowed(body);
    }
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
    Cow::Owned(out.into_bytes())
}

/// Drops leading UTF-8 BOMs (a decoded UTF-16 document may start with one, too).
fn strip_bom(text: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    let mut skip = 0;
    while text[skip..].starts_with(&[0xEF, 0xBB, 0xBF]) {
        skip += 3;
    }
    match text {
        _ if skip == 0 => text,
        Cow::Borrowed(text) => Cow::Borrowed(&text[skip..]),
        Cow::Owned(mut text) => {
            text.drain(..skip);
            Cow::Owned(text)
        }
    }
}

/// Makes the XML declaration, if it names an encoding, name UTF-8.
fn declare_utf8(text: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    let Some((from, to)) = declared_label_range(&text) else {
        return text;
    };
    if Encoding::for_label(&text[from..to]) == Some(UTF_8) {
        return text;
    }
    let mut fixed = Vec::with_capacity(text.len() + 8);
    fixed.extend_from_slice(&text[..from]);
    fixed.extend_from_slice(b"utf-8");
    fixed.extend_from_slice(&text[to..]);
    Cow::Owned(fixed)
}

#[cfg(test)]
mod tests {
    use super::super::tests::corpus_dir;
    use super::super::{ParseError, ParsedFeed, parse_document, parse_feed};
    use super::*;

    fn parse_with(body: &[u8], content_type: Option<&str>) -> ParsedFeed {
        match parse_document(body, None, content_type) {
            Ok(feed) => feed,
            Err(err) => panic!("document should parse: {err}"),
        }
    }

    /// An RSS document around `title` (raw bytes) with one item titled `item`.
    fn rss(declaration: &str, title: &[u8], item: &[u8]) -> Vec<u8> {
        [
            declaration.as_bytes(),
            b"<rss version=\"2.0\"><channel><title>",
            title,
            b"</title><item><title>",
            item,
            b"</title><link>https://enc.example/1</link></item></channel></rss>",
        ]
        .concat()
    }

    #[test]
    fn charset_is_taken_from_bom_then_declaration_then_header() {
        let koi8 = Some(Charset::Legacy(encoding_rs::KOI8_R));
        let cp1251 = Some(Charset::Legacy(encoding_rs::WINDOWS_1251));
        let wide = |width, big_endian, bom| {
            Some(Charset::Wide {
                width,
                big_endian,
                bom,
            })
        };
        let cases: &[(&[u8], Option<&str>, Option<Charset>)] = &[
            (b"<rss>\xe9</rss>", None, Some(Charset::Utf8)),
            (
                b"\xef\xbb\xbf<?xml version='1.0' encoding='koi8-r'?>\xe9",
                None,
                Some(Charset::Utf8),
            ),
            (
                b"<?xml version='1.0' encoding='koi8-r'?>\xe9",
                Some("text/xml; charset=windows-1251"),
                koi8,
            ),
            (
                b"  <?xml version=\"1.0\" encoding = \"KOI8-R\" ?>\xe9",
                None,
                koi8,
            ),
            (
                b"<?xml version='1.0'?>\xe9",
                Some("text/xml; charset=windows-1251"),
                cp1251,
            ),
            (
                b"<rss>\xe9",
                Some("application/rss+xml;charset = \"Windows-1251\""),
                cp1251,
            ),
            (
                b"<rss>\xe9",
                Some("text/xml; charset='cp1251'; q=1"),
                cp1251,
            ),
            (b"<rss>\xe9", Some("text/xml"), Some(Charset::Utf8)),
            (
                b"<rss>\xe9",
                Some("text/xml; charset=x-bogus"),
                Some(Charset::Utf8),
            ),
            // Unknown or unusable labels fall through to the next source.
            (
                b"<?xml version='1.0' encoding='bogus'?>\xe9",
                Some("text/xml; charset=koi8-r"),
                koi8,
            ),
            (
                b"<?xml version='1.0' encoding='utf-16'?>\xe9",
                None,
                Some(Charset::Utf8),
            ),
            (
                b"<?xml version='1.0' encoding='iso-2022-kr'?>\xe9",
                None,
                Some(Charset::Utf8),
            ),
            (
                b"<?xml version='1.0' encoding='mac-cyrillic'?>\xe9",
                None,
                Some(Charset::Legacy(encoding_rs::X_MAC_CYRILLIC)),
            ),
            (
                b"<?xml version='1.0' encoding='windows_1251'?>\xe9",
                None,
                cp1251,
            ),
            // Valid UTF-8 stays UTF-8 whatever the label says.
            (
                "<?xml version='1.0' encoding='iso-8859-1'?>é".as_bytes(),
                None,
                Some(Charset::Utf8),
            ),
            (
                "<rss>é</rss>".as_bytes(),
                Some("text/xml; charset=iso-8859-1"),
                Some(Charset::Utf8),
            ),
            (
                b"\xfe\xff\x00<",
                Some("text/xml; charset=koi8-r"),
                wide(2, true, 2),
            ),
            (b"\xff\xfe<\x00", None, wide(2, false, 2)),
            (b"\x00<\x00?", None, wide(2, true, 0)),
            (b"<\x00?\x00", None, wide(2, false, 0)),
            (b"\x00\x00\xfe\xff", None, wide(4, true, 4)),
            (b"\xff\xfe\x00\x00", None, wide(4, false, 4)),
            (b"\x00\x00\x00<", None, wide(4, true, 0)),
            (b"<\x00\x00\x00", None, wide(4, false, 0)),
        ];
        for (body, content_type, expected) in cases {
            assert_eq!(
                Some(detect(body, *content_type)),
                *expected,
                "{:?} with {content_type:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn only_the_content_type_names_the_charset() {
        // windows-1251 without a declaration: "Новости Москвы".
        let doc = rss(
            "",
            b"\xcd\xee\xe2\xee\xf1\xf2\xe8 \xcc\xee\xf1\xea\xe2\xfb",
            b"\xcd\xee\xe2\xee\xf1\xf2\xe8",
        );
        let feed = parse_with(&doc, Some("text/xml; charset=windows-1251"));
        assert_eq!(feed.title.as_deref(), Some("Новости Москвы"));
        assert_eq!(feed.items[0].title, "Новости");
        // Without the header the bytes are read as windows-1252: no Cyrillic.
        let guessed = parse_with(&doc, None);
        assert_eq!(guessed.title.as_deref(), Some("Íîâîñòè Ìîñêâû"));
        // A declaration without an encoding leaves the header in charge too.
        let declared = rss(
            "<?xml version=\"1.0\"?>",
            b"\xee\xcf\xd7\xcf\xd3\xd4\xc9",
            b"x",
        );
        let feed = parse_with(&declared, Some("application/rss+xml; charset=\"KOI8-R\""));
        assert_eq!(feed.title.as_deref(), Some("Новости"));
    }

    #[test]
    fn a_json_feed_follows_the_content_type_charset() {
        let doc = [
            &b"{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \""[..],
            b"\xe3\xd1\xcd\xc8\xc7",
            b"\", \"items\": [{\"id\": \"1\", \"title\": \"x\"}]}",
        ]
        .concat();
        let feed = parse_with(&doc, Some("application/feed+json; charset=windows-1256"));
        assert_eq!(feed.title.as_deref(), Some("مرحبا"));
    }

    #[test]
    fn the_declaration_wins_over_the_header_and_the_bom_over_both() {
        let koi8 = rss(
            "<?xml version=\"1.0\" encoding=\"koi8-r\"?>",
            b"\xee\xcf\xd7\xcf\xd3\xd4\xc9",
            b"x",
        );
        let feed = parse_with(&koi8, Some("text/xml; charset=windows-1251"));
        assert_eq!(feed.title.as_deref(), Some("Новости"));

        let bom_utf8 = [
            &b"\xef\xbb\xbf"[..],
            &rss(
                "<?xml version=\"1.0\" encoding=\"windows-1251\"?>",
                "Новости".as_bytes(),
                b"x",
            ),
        ]
        .concat();
        let feed = parse_with(&bom_utf8, Some("text/xml; charset=koi8-r"));
        assert_eq!(feed.title.as_deref(), Some("Новости"));
    }

    #[test]
    fn legacy_encodings_named_in_the_declaration_are_transcoded() {
        let cases: &[(&str, &[u8], &str)] = &[
            (
                "windows-1256",
                b"\xc3\xce\xc8\xc7\xd1 \xc5\xed\xd1\xc7\xe4",
                "أخبار إيران",
            ),
            (
                "ISO-8859-7",
                b"\xc5\xe9\xe4\xde\xf3\xe5\xe9\xf2",
                "Ειδήσεις",
            ),
            (
                "Shift_JIS",
                b"\x93\x8c\x8b\x9e\x83j\x83\x85\x81[\x83X",
                "東京ニュース",
            ),
            ("windows-1251", b"\xcd\xee\xe2\xee\xf1\xf2\xe8", "Новости"),
        ];
        for (label, bytes, text) in cases {
            let doc = rss(
                &format!("<?xml version=\"1.0\" encoding=\"{label}\"?>\n"),
                bytes,
                bytes,
            );
            let feed = parse_with(&doc, None);
            assert_eq!(feed.title.as_deref(), Some(*text), "{label}");
            assert_eq!(feed.items[0].title, *text, "{label}");
        }
    }

    #[test]
    fn utf8_mislabelled_as_latin1_stays_utf8() {
        let doc = rss(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
            "Café Tehrān".as_bytes(),
            "ایران".as_bytes(),
        );
        let feed = parse_with(&doc, Some("text/xml; charset=iso-8859-1"));
        assert_eq!(feed.title.as_deref(), Some("Café Tehrān"));
        assert_eq!(feed.items[0].title, "ایران");
    }

    #[test]
    fn utf32_documents_are_transcoded() {
        let doc = String::from_utf8(rss(
            "<?xml version=\"1.0\" encoding=\"utf-32\"?>",
            "Ünï".as_bytes(),
            "Tehrān".as_bytes(),
        ))
        .expect("utf-8");
        let be: Vec<u8> = doc
            .chars()
            .flat_map(|c| u32::from(c).to_be_bytes())
            .collect();
        let le_bom: Vec<u8> = ['\u{feff}']
            .into_iter()
            .chain(doc.chars())
            .flat_map(|c| u32::from(c).to_le_bytes())
            .collect();
        for body in [be, le_bom] {
            let feed = parse_with(&body, None);
            assert_eq!(feed.title.as_deref(), Some("Ünï"));
            assert_eq!(feed.items[0].title, "Tehrān");
        }
    }

    #[test]
    fn the_declaration_is_rewritten_to_utf8() {
        let decoded = to_utf8(
            b"\xef\xbb\xbf<?xml version='1.0' encoding='koi8-r'?><a/>",
            None,
        );
        assert_eq!(&*decoded, b"<?xml version='1.0' encoding='utf-8'?><a/>");
        let untouched = to_utf8(b"<?xml version=\"1.0\"?><a>\xc3\xa9</a>", None);
        assert!(matches!(untouched, Cow::Borrowed(_)));
    }

    /// Corpus documents in a legacy or wide charset, the `Content-Type` to serve them with
    /// (feedparser's chardet cases carry no charset themselves), and native text their feed
    /// title or first item title must contain.
    const CORPUS_CASES: &[(&str, Option<&str>, &str, &str)] = &[
        (
            "miniflux/parser/encoding_WINDOWS-1251.xml",
            None,
            "iBash.Org.Ru",
            "Цитата #17703",
        ),
        (
            "node-feedparser/iconv.xml",
            None,
            "Новости Оренбурга",
            "В Бузулуке",
        ),
        (
            "miniflux/encoding/koi8r.xml",
            None,
            "Пример RSS ленты",
            "Первая новость",
        ),
        (
            "miniflux/xml/koi8r.xml",
            None,
            "Пример RSS ленты",
            "Первая новость",
        ),
        (
            "rsparser/kc0011.rss",
            None,
            "投资资讯网交易在线",
            "建国35周年纪念",
        ),
        ("feedparser-tests/encoding/euc-kr.xml", None, "년", ""),
        (
            "miniflux/parser/encoding_ISO-8859-1.xml",
            None,
            "Golem.de",
            "",
        ),
        ("miniflux/encoding/iso-8859-1.xml", None, "Café", ""),
        (
            "feed-rs/rss1/rss_1.0_iso8859.xml",
            None,
            "Golem.de",
            "Glasfaserförderung",
        ),
        ("miniflux/encoding/windows-1252.xml", None, "Euro €", ""),
        (
            "miniflux/encoding/utf8-incorrect-prolog.xml",
            None,
            "테스트 피드",
            "Café",
        ),
        (
            "miniflux/encoding/invalid-prolog.xml",
            None,
            "테스트 피드",
            "Café",
        ),
        (
            "feedparser-tests/illformed/chardet/big5.xml",
            Some("application/atom+xml; charset=big5"),
            "我希望",
            "",
        ),
        (
            "feedparser-tests/illformed/chardet/gb2312.xml",
            Some("text/xml; charset=gb2312"),
            "",
            "不归移民漫画系列",
        ),
        (
            "feedparser-tests/illformed/chardet/koi8r.xml",
            Some("text/xml; charset=KOI8-R"),
            "",
            "Как пережить новогоднюю ночь",
        ),
    ];

    #[test]
    fn corpus_documents_in_legacy_charsets_read_as_native_text() {
        let Some(dir) = corpus_dir() else {
            println!("skipped: corpus not found at ../shared/corpus");
            return;
        };
        for (path, content_type, title, item) in CORPUS_CASES {
            let body = std::fs::read(dir.join(path)).expect("readable corpus file");
            let feed = match parse_document(&body, None, *content_type) {
                Ok(feed) => feed,
                Err(err) => panic!("{path}: {err}"),
            };
            let feed_title = feed.title.clone().unwrap_or_default();
            assert!(feed_title.contains(title), "{path}: title {feed_title:?}");
            if !item.is_empty() {
                let first = feed.items.first().map(|i| i.title.as_str());
                assert!(
                    first.is_some_and(|t| t.contains(item)),
                    "{path}: first item {first:?}"
                );
            }
        }
    }

    #[test]
    fn corpus_utf16_and_utf32_documents_are_read() {
        let Some(dir) = corpus_dir() else {
            println!("skipped: corpus not found at ../shared/corpus");
            return;
        };
        // Each holds `<rss></rss>` behind a comment: reading the root proves the transcoding.
        let mut seen = 0;
        for width in ["16", "32"] {
            for variant in [
                "be",
                "le",
                "be-bom",
                "le-bom",
                "be-autodetect",
                "le-autodetect",
            ] {
                let path = format!("feedparser-tests/encoding/utf-{width}{variant}.xml");
                let body = std::fs::read(dir.join(&path)).expect("readable corpus file");
                match parse_feed(&body, None) {
                    Err(ParseError::NotAFeed(hint)) => {
                        assert!(hint.contains("<rss>"), "{path}: {hint}");
                    }
                    other => panic!("{path}: expected an empty <rss>, got {other:?}"),
                }
                seen += 1;
            }
        }
        assert_eq!(seen, 12);
    }
}
