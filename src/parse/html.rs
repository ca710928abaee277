//! HTML reduced to one line of plain text, in a single pass: tags and their attributes
//! dropped, script/style bodies dropped, block-level tags separating words, every entity
//! decoded, whitespace collapsed. Used for titles, summaries and content before matching
//! and in payloads.

use super::sniff::{find_byte, find_bytes, is_name_byte};
use super::truncated;

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
pub(super) fn looks_like_markup(text: &str) -> bool {
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
            if self.full() {
                break;
            }
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
            '\u{FEFF}' | '\u{00AD}' | '\u{061C}' | '\u{200E}' | '\u{200F}'
        )
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
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

/// The one-pass reducer behind [`html_to_text`](super::html_to_text); with `markup` false, `<` is plain text and
/// only entities and whitespace are handled. Stops once `cap` bytes are written.
pub(super) fn reduce(input: &str, markup: bool, cap: usize) -> String {
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
pub(super) const CP1252_C1: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}', '\u{017D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{9D}', '\u{017E}', '\u{0178}',
];
