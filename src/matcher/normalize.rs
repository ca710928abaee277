//! Text folding for matching: turns a field's text (or a term) into the canonical form the
//! automaton searches, and optionally records where every output byte came from.
//!
//! Input: any `&str`. Output: UTF-8 text, kept as bytes since the automaton searches bytes,
//! made only of "word" characters (letters, digits and the combining marks that belong to
//! them) and single ASCII spaces, where
//! - each character is compatibility-decomposed (NFKD) and fully case-folded, so `ＩＲＡＮ`,
//!   `IRAN` and `iran` fold alike and `ß` becomes `ss`;
//! - diacritics on Latin letters are dropped (`Tehrān` → `tehran`), and a few Latin letters
//!   that do not decompose are folded to their base (`ø`, `ł`, `đ`, `ı`, `æ`, ...); marks on
//!   other scripts are kept (Cyrillic `й`, Indic vowel signs);
//! - Arabic yeh and kaf variants fold to the Persian letters, tatweel and harakat vanish;
//! - every run of other characters (spaces, punctuation, symbols, ZWNJ, ...) becomes one space.
//!
//! Terms and text go through the same per-character function, so a term's folded form occurs
//! in a text's folded form exactly where the term occurs in the text. Per-character NFKD is
//! not full NFKC (marks are not reordered across characters), which only matters for exotic
//! sequences of several combining marks; consistency is what matching needs.
//!
//! The offset map, when asked for, holds for every output byte the byte offset in the input of
//! the character that produced it. It costs memory and time, so the search builds it only for
//! fields where the automaton found a candidate hit.
//!
//! Speed (release build, one core, `cargo bench --bench matcher`, shared corpus): runs of
//! ASCII, nearly all of feed text, are folded eight bytes at a time with word arithmetic
//! (`fold_ascii`), not byte by byte; a unit test checks it against the per-character fold.
//! On the English feed text (0.9% non-ASCII bytes) folding, the second fold with offsets
//! included, takes about a quarter of the 2.9 ms that matching 1.00 MB against 10,000 terms
//! takes: well over 1 GB/s. A per-byte table loop, bound by its branches and a push per byte,
//! ran at 320-400 MB/s on the same text, which is why ASCII is not folded that way. Other
//! characters take the Unicode path once per thread and are then replayed from a small
//! per-thread [`FoldCache`] (measured at about 500 MB/s on Persian/Arabic/Cyrillic text, 75
//! MB/s without the cache).

use caseless::Caseless;
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// ASCII fold table: the separator byte `b' '` for anything that is not a letter or digit,
/// else the lower-cased byte. ASCII needs no NFKD, so an ASCII byte is one table lookup.
const ASCII_FOLD: [u8; 128] = {
    let mut table = [b' '; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            table[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

/// What was last written, which decides what a following combining mark means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prev {
    /// Start of text or a separator: a mark here has no base and is dropped.
    Nothing,
    /// A Latin letter: its diacritics are dropped.
    Latin,
    /// Any other word character: its marks are kept.
    Other,
}

/// Where folded characters go: the output text, or a recording for the cache.
trait Sink {
    /// What was last written (`Nothing` when it cannot be known, see `Recorder`).
    fn prev(&mut self) -> Prev;
    fn word(&mut self, c: char, prev: Prev);
    fn sep(&mut self);
}

/// Output buffer plus the optional offset map.
struct Out<'a> {
    text: &'a mut Vec<u8>,
    map: Option<&'a mut Vec<u32>>,
    prev: Prev,
    /// Input offset of the character being folded.
    src: u32,
}

impl Sink for Out<'_> {
    #[inline]
    fn prev(&mut self) -> Prev {
        self.prev
    }

    #[inline]
    fn word(&mut self, c: char, prev: Prev) {
        self.text
            .extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        if let Some(map) = self.map.as_deref_mut() {
            map.extend(std::iter::repeat_n(self.src, c.len_utf8()));
        }
        self.prev = prev;
    }

    #[inline]
    fn sep(&mut self) {
        // Collapse runs, and never start with a separator: the matcher treats the start of
        // the text as a word boundary already. `prev` is `Nothing` exactly at the start and
        // right after a separator.
        if self.prev != Prev::Nothing {
            self.text.push(b' ');
            if let Some(map) = self.map.as_deref_mut() {
                map.push(self.src);
            }
        }
        self.prev = Prev::Nothing;
    }
}

/// One step of folding a character, replayable without the Unicode tables.
#[derive(Clone, Copy, Debug)]
enum Op {
    Word(char, Prev),
    Sep,
}

/// Most steps a cached character may produce (`ß` → `ss`, `ﬃ` → `ffi`, a Hangul syllable →
/// three jamo); rarer, longer expansions are folded each time.
const MAX_OPS: usize = 4;

/// Records the folding of one character for the cache.
struct Recorder {
    ops: [Op; MAX_OPS],
    len: usize,
    /// The fold looked at what came before this character (a leading combining mark) or
    /// produced too many steps: the recording must not be reused.
    unusable: bool,
}

impl Sink for Recorder {
    fn prev(&mut self) -> Prev {
        match self.ops[..self.len].last() {
            Some(Op::Word(_, prev)) => *prev,
            Some(Op::Sep) => Prev::Nothing,
            None => {
                self.unusable = true;
                Prev::Nothing
            }
        }
    }

    fn word(&mut self, c: char, prev: Prev) {
        self.push(Op::Word(c, prev));
    }

    fn sep(&mut self) {
        self.push(Op::Sep);
    }
}

impl Recorder {
    fn push(&mut self, op: Op) {
        match self.ops.get_mut(self.len) {
            Some(slot) => {
                *slot = op;
                self.len += 1;
            }
            None => self.unusable = true,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct CacheEntry {
    /// `'\0'` = empty: NUL is ASCII, which never reaches the cache.
    key: char,
    len: u8,
    ops: [Op; MAX_OPS],
}

const CACHE_SLOTS: usize = 512;

/// Direct-mapped cache of how non-ASCII characters fold. Text in one script uses a few dozen
/// characters over and over, and the Unicode lookups (decomposition, case folding, the
/// alphabetic property) cost several times more than replaying a cached result. Keep one per
/// thread and pass it to every [`normalize_into`].
#[derive(Debug, Clone)]
pub(crate) struct FoldCache {
    entries: Vec<CacheEntry>,
}

impl Default for FoldCache {
    fn default() -> Self {
        FoldCache {
            entries: vec![
                CacheEntry {
                    key: '\0',
                    len: 0,
                    ops: [Op::Sep; MAX_OPS],
                };
                CACHE_SLOTS
            ],
        }
    }
}

impl FoldCache {
    #[inline]
    fn slot(c: char) -> usize {
        // Fibonacci hashing: neighbouring code points (one script's letters) spread out.
        ((u32::from(c).wrapping_mul(0x9E37_79B9) >> 23) as usize) % CACHE_SLOTS
    }

    /// Folds `c` into `out`, from the cache when possible.
    #[inline]
    fn fold(&mut self, c: char, out: &mut Out<'_>) {
        let slot = Self::slot(c);
        if let Some(entry) = self.entries.get(slot)
            && entry.key == c
        {
            replay(&entry.ops[..usize::from(entry.len)], out);
            return;
        }
        let mut rec = Recorder {
            ops: [Op::Sep; MAX_OPS],
            len: 0,
            unusable: false,
        };
        fold_char(c, &mut rec);
        if rec.unusable {
            fold_char(c, out);
            return;
        }
        let ops = &rec.ops[..rec.len];
        replay(ops, out);
        if let Some(entry) = self.entries.get_mut(slot) {
            *entry = CacheEntry {
                key: c,
                len: rec.len as u8,
                ops: rec.ops,
            };
        }
    }
}

#[inline]
fn replay(ops: &[Op], out: &mut Out<'_>) {
    for op in ops {
        match *op {
            Op::Word(c, prev) => out.word(c, prev),
            Op::Sep => out.sep(),
        }
    }
}

/// Longest input the offset map can address (offsets are `u32` to keep the map small).
pub(crate) const MAX_TEXT: usize = u32::MAX as usize;

/// Folds `text` into `out` (cleared first). With `map`, also fills it (cleared first) so that
/// `map[i]` is the input offset of the character that produced output byte `i`.
///
/// The output is bytes because the automaton searches bytes; it is always valid UTF-8 (whole
/// characters and ASCII spaces are all that is ever written), which `normalize_term` and the
/// tests rely on.
///
/// Input longer than [`MAX_TEXT`] is folded up to that length only. `cache` only speeds up
/// non-ASCII text; the output is the same without it.
pub(crate) fn normalize_into(
    text: &str,
    out: &mut Vec<u8>,
    mut map: Option<&mut Vec<u32>>,
    mut cache: Option<&mut FoldCache>,
) {
    out.clear();
    if let Some(map) = map.as_deref_mut() {
        map.clear();
    }
    let text = truncate(text, MAX_TEXT);
    let bytes = text.as_bytes();
    out.reserve(bytes.len());
    let mut out = Out {
        text: out,
        map,
        prev: Prev::Nothing,
        src: 0,
    };
    let mut i = 0;
    while i < bytes.len() {
        // Feed text is nearly all ASCII: fold the whole run up to the next non-ASCII byte
        // eight bytes at a time instead of character by character.
        let rest = bytes.get(i..).unwrap_or_default();
        let (len, prev) = fold_ascii(rest, i as u32, out.text, out.map.as_deref_mut(), out.prev);
        out.prev = prev;
        i += len;
        if i >= bytes.len() {
            break;
        }
        // `i` is where a non-ASCII character starts: the run before it ended on a char
        // boundary, and `i` only ever advances by whole characters.
        let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) else {
            break;
        };
        out.src = i as u32;
        match cache.as_deref_mut() {
            Some(cache) => cache.fold(c, &mut out),
            None => fold_char(c, &mut out),
        }
        i += c.len_utf8();
    }
}

/// Eight copies of `b`, one per byte of a word.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The high bit of every byte.
const HIGH: u64 = splat(0x80);

/// For a word of ASCII bytes: `0x80` in each byte that lies in `lo..=hi`, else 0. Adding
/// `0x80 - lo` sets a byte's high bit exactly when it is `>= lo`, adding `0x7F - hi` exactly
/// when it is `> hi`; neither sum can carry into the next byte when all bytes are below 0x80.
#[inline]
const fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    (x.wrapping_add(splat(0x80 - lo)) & !x.wrapping_add(splat(0x7F - hi))) & HIGH
}

/// Folds the ASCII bytes at the start of `rest` (input offset `base`), up to the first
/// non-ASCII byte, after output whose last step was `prev`. Returns how many input bytes it
/// folded and the new `prev`. Same output and map as one `Out::word` / `Out::sep` per byte.
///
/// Eight bytes are folded at once, with word arithmetic instead of a table and branches:
/// letters are lower-cased, anything but a letter or digit becomes a space, and a space is
/// dropped when it follows a space (or the start of the text), so a run of separators leaves
/// one. Feed text mostly drops at most one byte in eight (the space of `, ` or `. `), which
/// is also done with word arithmetic; a word that drops more goes byte by byte.
#[inline]
fn fold_ascii(
    rest: &[u8],
    base: u32,
    text: &mut Vec<u8>,
    mut map: Option<&mut Vec<u32>>,
    prev: Prev,
) -> (usize, Prev) {
    // 1 when the last folded byte was a word character (letter or digit).
    let mut after_word = u64::from(prev != Prev::Nothing);
    let mut at = 0;
    let (words, _) = rest.as_chunks::<8>();
    for word in words {
        let x = u64::from_le_bytes(*word);
        if x & HIGH != 0 {
            break;
        }
        // `| 0x20` maps `A..=Z` onto `a..=z` and nothing else onto them.
        let letter = in_range(x | splat(0x20), b'a', b'z');
        let word_char = letter | in_range(x, b'0', b'9');
        // 0xFF in each byte that is a word character.
        let keep = (word_char >> 7) * 0xFF;
        let folded = ((x | (letter >> 2)) & keep) | (splat(b' ') & !keep);
        let sep = !word_char & HIGH;
        // A separator right after a separator; for the first byte, after what came before.
        let drop = sep & ((sep << 8) | ((after_word ^ 1) << 7));
        after_word = word_char >> 63;
        let src = base.wrapping_add(at as u32);
        at += 8;
        if drop & drop.wrapping_sub(1) == 0 {
            // At most one byte to drop: bytes below it stay, bytes above it move down one.
            // `below` has the bits under the dropped byte, or all of them when none drops.
            let below =
                ((drop ^ drop.wrapping_sub(1)) >> 8) | 0u64.wrapping_sub(u64::from(drop == 0));
            let packed = (folded & below) | ((folded >> 8) & !below);
            let n = 8 - usize::from(drop != 0);
            push_word(text, packed.to_le_bytes(), n);
            if let Some(map) = map.as_deref_mut() {
                let mut from = [0u32; 8];
                for (j, f) in from.iter_mut().enumerate() {
                    // Output byte `j` comes from input byte `j`, or `j + 1` past the drop.
                    let moved = u32::from((below >> (8 * j)) & 1 == 0);
                    *f = src.wrapping_add(j as u32 + moved);
                }
                push_word(map, from, n);
            }
        } else {
            let mut out = [0u8; 8];
            let mut from = [0u32; 8];
            let mut n = 0;
            for (j, b) in folded.to_le_bytes().into_iter().enumerate() {
                out[n & 7] = b;
                from[n & 7] = src.wrapping_add(j as u32);
                n += usize::from((drop >> (8 * j + 7)) & 1 == 0);
            }
            push_word(text, out, n);
            if let Some(map) = map.as_deref_mut() {
                push_word(map, from, n);
            }
        }
    }
    // The last few bytes, or the bytes before the first non-ASCII one, one at a time.
    for &b in rest.get(at..).unwrap_or_default() {
        if !b.is_ascii() {
            break;
        }
        let f = ASCII_FOLD[usize::from(b)];
        let word = u64::from(f != b' ');
        if word | after_word != 0 {
            text.push(f);
            if let Some(map) = map.as_deref_mut() {
                map.push(base.wrapping_add(at as u32));
            }
        }
        after_word = word;
        at += 1;
    }
    let prev = match at.checked_sub(1).and_then(|last| rest.get(last)) {
        None => prev,
        Some(_) if after_word == 0 => Prev::Nothing,
        Some(b) if b.is_ascii_digit() => Prev::Other,
        Some(_) => Prev::Latin,
    };
    (at, prev)
}

/// Appends the first `n` of eight values: all eight are copied (one fixed-size copy) and the
/// rest cut off again.
#[inline]
fn push_word<T: Copy>(out: &mut Vec<T>, word: [T; 8], n: usize) {
    let len = out.len();
    out.extend_from_slice(&word);
    out.truncate(len + n);
}

/// Folds `text` like [`normalize_term`], through a per-thread [`FoldCache`]: for callers
/// that fold much text outside a match (the story stage).
pub(crate) fn fold_text(text: &str) -> String {
    thread_local! {
        static CACHE: std::cell::RefCell<FoldCache> = std::cell::RefCell::new(FoldCache::default());
    }
    let mut out = Vec::with_capacity(text.len());
    CACHE.with(|cache| match cache.try_borrow_mut() {
        Ok(mut cache) => normalize_into(text, &mut out, None, Some(&mut cache)),
        Err(_) => normalize_into(text, &mut out, None, None),
    });
    let trimmed = out.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    out.truncate(trimmed);
    // Folding writes only whole characters and ASCII spaces, so this never fails.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Folds a term the way text is folded, without a trailing separator.
pub(crate) fn normalize_term(term: &str) -> String {
    let mut out = Vec::with_capacity(term.len());
    normalize_into(term, &mut out, None, None);
    let trimmed = out.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    out.truncate(trimmed);
    // Folding writes only whole characters and ASCII spaces, so this never fails; were it
    // to, a lossy copy still gives a (never matching) pattern rather than a panic.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
fn truncate(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max)]
}

/// The slow path for one non-ASCII character.
fn fold_char(c: char, out: &mut impl Sink) {
    match c {
        // Invisible format characters that sit inside words (soft hyphen from `&shy;`,
        // combining grapheme joiner, bidi marks common in Persian text, word joiner, BOM,
        // zero-width joiner, variation selectors) and Arabic tatweel/harakat: ignoring them
        // keeps the word whole.
        '\u{00AD}'
        | '\u{034F}'
        | '\u{061C}'
        | '\u{200D}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{E0100}'..='\u{E01EF}' => {}
        c if is_arabic_ignorable(c) => {}
        // The modifier-letter apostrophe is a letter to Unicode but an apostrophe to writers
        // ("Iranʼs"): treat it like `'` and `’`.
        '\u{02BC}' => out.sep(),
        _ => decompose_compatible(c, |d| fold_decomposed(d, out)),
    }
}

/// Folds one character of a decomposition.
fn fold_decomposed(d: char, out: &mut impl Sink) {
    if is_combining_mark(d) {
        if is_arabic_ignorable(d) {
            return;
        }
        match out.prev() {
            Prev::Nothing => {}
            Prev::Latin if is_latin_diacritic(d) => {}
            prev => out.word(d, prev),
        }
        return;
    }
    let d = fold_arabic(d);
    if is_arabic_ignorable(d) {
        return;
    }
    for f in std::iter::once(d).default_case_fold() {
        let (a, b) = fold_latin_letter(f);
        push_folded(a, out);
        if let Some(b) = b {
            push_folded(b, out);
        }
    }
}

#[inline]
fn push_folded(c: char, out: &mut impl Sink) {
    if c.is_alphanumeric() {
        let prev = if is_latin(c) {
            Prev::Latin
        } else {
            Prev::Other
        };
        out.word(c, prev);
    } else {
        out.sep();
    }
}

/// Tatweel and harakat (U+064B–U+065F, U+0670): decoration and vowel points, not letters.
#[inline]
fn is_arabic_ignorable(c: char) -> bool {
    matches!(c, '\u{0640}' | '\u{064B}'..='\u{065F}' | '\u{0670}')
}

/// Arabic yeh (ي), alef maksura (ى) and kaf (ك) fold to the Persian yeh (ی) and keheh (ک), so
/// Arabic-keyboard and Persian-keyboard spellings of the same word match.
#[inline]
fn fold_arabic(c: char) -> char {
    match c {
        '\u{064A}' | '\u{0649}' => '\u{06CC}',
        '\u{0643}' => '\u{06A9}',
        c => c,
    }
}

/// Latin letters with strokes, bars or ligatures have no decomposition; fold them the way
/// wire copy usually spells them in ASCII (`Łódź` → `lodz`, `Diyarbakır` → `diyarbakir`).
#[inline]
fn fold_latin_letter(c: char) -> (char, Option<char>) {
    match c {
        'ø' => ('o', None),
        'đ' | 'ð' => ('d', None),
        'ł' => ('l', None),
        'ħ' => ('h', None),
        'ŧ' => ('t', None),
        'ı' => ('i', None),
        'æ' => ('a', Some('e')),
        'œ' => ('o', Some('e')),
        'þ' => ('t', Some('h')),
        c => (c, None),
    }
}

/// Combining marks that are diacritics when they follow a Latin letter.
#[inline]
fn is_latin_diacritic(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

/// Letters of the Latin script (after folding, so mostly ASCII and the few letters above).
#[inline]
fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c,
            '\u{00C0}'..='\u{024F}'
            | '\u{0250}'..='\u{02AF}'
            | '\u{1E00}'..='\u{1EFF}'
            | '\u{2C60}'..='\u{2C7F}'
            | '\u{A720}'..='\u{A7FF}'
            | '\u{AB30}'..='\u{AB6F}')
}

/// Scripts written without spaces between words (Han, Hiragana, Katakana, Thai, Lao, Khmer,
/// Myanmar). A term matches inside such text anywhere, and such a character next to a Latin
/// term does not make it part of a longer word.
#[inline]
pub(crate) fn is_unspaced_script(c: char) -> bool {
    matches!(c,
        '\u{0E00}'..='\u{0EFF}'         // Thai, Lao
        | '\u{1000}'..='\u{109F}'       // Myanmar
        | '\u{1780}'..='\u{17FF}'       // Khmer
        | '\u{19E0}'..='\u{19FF}'       // Khmer symbols
        | '\u{2E80}'..='\u{2FDF}'       // CJK radicals, Kangxi radicals
        | '\u{3005}'..='\u{3007}'       // ideographic iteration mark, closing mark, zero
        | '\u{3021}'..='\u{3029}'       // Hangzhou numerals
        | '\u{3038}'..='\u{303B}'
        | '\u{3040}'..='\u{30FF}'       // Hiragana, Katakana (incl. voicing marks)
        | '\u{31F0}'..='\u{31FF}'       // Katakana phonetic extensions
        | '\u{3400}'..='\u{4DBF}'       // CJK extension A
        | '\u{4E00}'..='\u{9FFF}'       // CJK unified ideographs
        | '\u{A9E0}'..='\u{A9FF}'       // Myanmar extended-B
        | '\u{AA60}'..='\u{AA7F}'       // Myanmar extended-A
        | '\u{F900}'..='\u{FAFF}'       // CJK compatibility ideographs
        | '\u{FF66}'..='\u{FF9F}'       // halfwidth Katakana
        | '\u{1B000}'..='\u{1B16F}'     // Kana supplement and extensions
        | '\u{20000}'..='\u{3134F}') // CJK extensions B–G
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn folding_text_through_the_thread_cache_folds_as_a_term() {
        for text in [
            "Iran, IAEA agree — ＩＲＡＮ Tehrān ",
            "ايران مي\u{200C}گويد گفت\u{200C}وگو",
            "中国3月出口同比增长。",
            "",
        ] {
            // Twice: the second time the cache answers.
            assert_eq!(fold_text(text), normalize_term(text), "{text}");
            assert_eq!(fold_text(text), normalize_term(text), "{text}");
        }
    }

    fn norm(s: &str) -> String {
        let mut out = Vec::new();
        normalize_into(s, &mut out, None, None);
        String::from_utf8(out).expect("folded text is UTF-8")
    }

    #[test]
    fn folds_case_width_diacritics_and_separators() {
        assert_eq!(norm("ＩＲＡＮ’s  nuclear—deal!"), "iran s nuclear deal ");
        assert_eq!(
            norm("Tehrān, Zürich, São Paulo, Côte d’Ivoire"),
            "tehran zurich sao paulo cote d ivoire"
        );
        assert_eq!(norm("Straße ẞ"), "strasse ss");
        assert_eq!(norm("Łódź Diyarbakır Æsir"), "lodz diyarbakir aesir");
        assert_eq!(norm("  (Iran)"), "iran ");
    }

    #[test]
    fn decomposed_input_folds_like_precomposed() {
        assert_eq!(norm("Tehra\u{0304}n"), norm("Tehrān"));
        assert_eq!(norm("й"), norm("и\u{0306}"));
        assert_ne!(norm("й"), norm("и"), "Cyrillic short i keeps its breve");
    }

    #[test]
    fn persian_and_arabic_variants_fold_together() {
        assert_eq!(norm("ايران"), norm("ایران"));
        assert_eq!(norm("إيرَان"), norm("ایران"));
        assert_eq!(norm("ﻛﺘﺎﺏ"), norm("کتاب"));
        assert_eq!(norm("ایـــران"), norm("ایران"));
    }

    #[test]
    fn invisible_characters_do_not_split_words() {
        assert_eq!(norm("Iran\u{00AD}ian"), "iranian");
        assert_eq!(norm("Iran\u{200C}ian"), "iran ian", "ZWNJ separates");
        assert_eq!(norm("Iran\u{00A0}nuclear"), "iran nuclear");
    }

    #[test]
    fn offset_map_points_at_source_characters() {
        let text = "ＳＣＯ ß";
        let mut out = Vec::new();
        let mut map = Vec::new();
        normalize_into(text, &mut out, Some(&mut map), None);
        assert_eq!(out, b"sco ss");
        assert_eq!(map, vec![0, 3, 6, 9, 10, 10]);
    }

    #[test]
    fn cache_changes_nothing() {
        let text = "ÉCOLE \u{301}é ß ẞ ﬃ 한국어 Йй и\u{306} ایرانِ ـ ﷺ ㍿ 伊朗 ｲﾗﾝ ガ \u{0308}x Tehrān Ǆ İ ı ß";
        let mut cache = FoldCache::default();
        for _ in 0..3 {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let (mut ma, mut mb) = (Vec::new(), Vec::new());
            normalize_into(text, &mut a, Some(&mut ma), None);
            normalize_into(text, &mut b, Some(&mut mb), Some(&mut cache));
            assert_eq!(a, b);
            assert_eq!(ma, mb);
        }
    }

    /// The per-character fold the ASCII fast path replaced (one `Out::sep` / `Out::word` per
    /// ASCII byte), kept as the reference the fast path must equal byte for byte.
    fn per_char(text: &str) -> (Vec<u8>, Vec<u32>) {
        let (mut folded, mut map) = (Vec::new(), Vec::new());
        {
            let mut out = Out {
                text: &mut folded,
                map: Some(&mut map),
                prev: Prev::Nothing,
                src: 0,
            };
            for (i, c) in text.char_indices() {
                out.src = i as u32;
                if c.is_ascii() {
                    match ASCII_FOLD[c as usize] {
                        b' ' => out.sep(),
                        f if f.is_ascii_digit() => out.word(char::from(f), Prev::Other),
                        f => out.word(char::from(f), Prev::Latin),
                    }
                } else {
                    fold_char(c, &mut out);
                }
            }
        }
        (folded, map)
    }

    /// Folds `text` every way there is (with and without map and cache) and checks each
    /// against the per-character reference.
    fn assert_folds_like_per_char(text: &str, cache: &mut FoldCache) {
        let (want, want_map) = per_char(text);
        assert!(std::str::from_utf8(&want).is_ok());
        let (mut got, mut got_map) = (Vec::new(), Vec::new());
        normalize_into(text, &mut got, None, None);
        assert_eq!(got, want, "{text:?}");
        normalize_into(text, &mut got, None, Some(cache));
        assert_eq!(got, want, "{text:?} (cache)");
        normalize_into(text, &mut got, Some(&mut got_map), None);
        assert_eq!((&got, &got_map), (&want, &want_map), "{text:?} (map)");
        normalize_into(text, &mut got, Some(&mut got_map), Some(cache));
        assert_eq!(
            (&got, &got_map),
            (&want, &want_map),
            "{text:?} (map, cache)"
        );
    }

    /// Pieces of feed-like text: ASCII words, digits, punctuation and whitespace runs, Latin
    /// letters with precomposed and combining diacritics, marks that may follow a letter, a
    /// digit or a separator, Persian/Arabic, CJK, invisible characters and expansions.
    const PIECES: &[&str] = &[
        "Iran",
        "SCO",
        "nuclear",
        "deal",
        "x",
        "E",
        "2015",
        "7",
        " ",
        "  ",
        "\t\n",
        ",",
        ", ",
        "-",
        "'",
        "...",
        "(",
        ")",
        "\"",
        "é",
        "e\u{301}",
        "\u{301}",
        "\u{304}",
        "\u{308}",
        "ß",
        "ẞ",
        "Й",
        "и\u{306}",
        "ایران",
        "ي",
        "ـ",
        "\u{64E}",
        "伊朗",
        "ｲﾗﾝ",
        "\u{200C}",
        "\u{AD}",
        "\u{A0}",
        "’",
        "—",
        "ﬃ",
        "Ǆ",
        "İ",
        "ı",
        "Łódź",
        "한국",
        "\u{2BC}",
        "²",
        "①",
        "ＩＲＡＮ",
        "\u{E9}\u{301}",
        "🙂",
    ];

    #[test]
    fn ascii_fast_path_folds_like_per_char() {
        // SplitMix64: deterministic, so a failure always reproduces.
        let mut state = 0x5EED_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as usize
        };
        let mut cache = FoldCache::default();
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..next() % 24 {
                if next() % 3 == 0 {
                    // A longer ASCII run, so runs end at every offset of an 8-byte word.
                    let ascii = b"ab Z9,.-  'Q";
                    for _ in 0..next() % 40 {
                        text.push(char::from(ascii[next() % ascii.len()]));
                    }
                } else {
                    text.push_str(PIECES[next() % PIECES.len()]);
                }
            }
            assert_folds_like_per_char(&text, &mut cache);
        }
    }

    #[test]
    fn ascii_runs_end_anywhere_in_a_word() {
        let mut cache = FoldCache::default();
        for len in 0..40 {
            for fill in ["x", " ", "7", ",", "A "] {
                let run = fill.repeat(len);
                for tail in ["", "é", "\u{301}", "\u{304}x", " ", "伊", "\u{200C}", "ß"] {
                    assert_folds_like_per_char(&format!("{run}{tail}"), &mut cache);
                    assert_folds_like_per_char(&format!("{tail}{run}{tail}"), &mut cache);
                }
            }
        }
    }
}
