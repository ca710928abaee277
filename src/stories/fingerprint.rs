//! An item's text as a set of shingles, the near-duplicate test between two such sets, and
//! the MinHash band keys that find candidates without a scan.
//!
//! Input: an item's title and summary. Output: a [`Fingerprint`].
//!
//! The text is folded as the matcher folds it (case, width, diacritics, Arabic letter
//! variants), then cut into runs by script:
//! - words of scripts written with spaces (Latin, Cyrillic, Greek, ...) become word pairs
//!   (`talks resume`, `resume in`), plus the words themselves: a changed word touches two
//!   or three shingles of a lede, not the whole text;
//! - scripts where a space or a zero-width non-joiner may or may not separate the same two
//!   parts (Persian `می‌گوید`, `می گوید`, `میگوید`), and scripts written without spaces
//!   (Han), are read as letters with every separator removed and cut into character
//!   trigrams (Arabic script) or bigrams (Han), so every spelling of a word gives the same
//!   shingles.
//!
//! Two items are the same story when the shingle sets overlap enough
//! ([`Fingerprint::resemblance`]) and nothing that names the event differs ([`conflict`]):
//! no other number in the titles, no pair of opposed event words (talks *resume* and
//! *end*), and not each text naming, in its title and lede, something the other never
//! does (another place, actor or development).
//!
//! The band keys ([`Fingerprint::band_keys`]) are the index: a new item is compared only
//! with the items it shares a key with.

use std::hash::Hasher as _;

use crate::matcher;

/// The least size a text counts as in [`Fingerprint::resemblance`]: a title of about ten
/// words with no summary. Chosen on the corpus's real feed text, where short titles
/// ("Mocking Screw-Unit") merged with longer ones that contain them ("Mocking Screw-Unit
/// Part Deux") at smaller values (BENCHMARKS.md, "Stories").
pub const MIN_SHINGLES: usize = 20;

/// Bins of the MinHash signature: [`BANDS`] bands of [`ROWS`] rows.
pub const SIGNATURE: usize = BANDS * ROWS;
/// Bands of the locality-sensitive index: two texts share a band key with probability
/// about `1 - (1 - j^ROWS)^BANDS` at Jaccard similarity `j` (0.9999 at 0.6, 0.93 at 0.4,
/// 0.27 at 0.2). What an index of every item's bands costs at 100,000 feeds is not
/// measured yet; these may change before the keys are stored.
pub const BANDS: usize = 40;
/// Rows per band.
pub const ROWS: usize = 3;

/// One item's text, ready to be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Distinct shingle hashes, sorted.
    shingles: Vec<u64>,
    /// The title's numbers (digits of any script, as ASCII), distinct and sorted.
    title_numbers: Vec<String>,
    /// The letter runs of the scripts read as runs, where the opposed-words check looks
    /// (in spaced scripts it looks for the word's shingle).
    runs: Vec<String>,
    /// The title's and the summary's own tokens (words, or letter grams in scripts read as
    /// runs), hashed, distinct and sorted: what [`Conflict::Named`] compares.
    title_tokens: Vec<u64>,
    summary_tokens: Vec<u64>,
}

impl Fingerprint {
    pub fn of(title: &str, summary: &str) -> Fingerprint {
        let title = matcher::fold(title);
        let summary = matcher::fold(summary);
        let mut shingles = Vec::new();
        let title = strip_update_prefix(&title);
        let mut runs = Vec::new();
        let mut tokens = [Vec::new(), Vec::new()];
        for (text, tokens) in [title, summary.as_str()].into_iter().zip(&mut tokens) {
            let mut split = Split {
                shingles: &mut shingles,
                tokens,
                runs: &mut runs,
            };
            split.text(text);
            tokens.sort_unstable();
            tokens.dedup();
        }
        let [title_tokens, summary_tokens] = tokens;
        shingles.sort_unstable();
        shingles.dedup();
        let mut title_numbers: Vec<String> = title
            .split(' ')
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_numeric()))
            .map(ascii_digits)
            .collect();
        title_numbers.sort_unstable();
        title_numbers.dedup();
        Fingerprint {
            shingles,
            title_numbers,
            runs,
            title_tokens,
            summary_tokens,
        }
    }

    /// Whether the text had anything to compare: an item with an empty title and summary
    /// joins no story by its text.
    pub fn is_empty(&self) -> bool {
        self.shingles.is_empty()
    }

    /// How much of the smaller text the larger one holds: shared shingles over the
    /// smaller set, so that an outlet's trimmed summary or an added sentence still counts
    /// as the same copy, but over at least [`MIN_SHINGLES`], so that a short title is not
    /// the same story as every longer one that contains it. 0 when either is empty.
    pub fn resemblance(&self, other: &Fingerprint) -> f64 {
        let smaller = self
            .shingles
            .len()
            .min(other.shingles.len())
            .max(MIN_SHINGLES);
        if self.shingles.is_empty() || other.shingles.is_empty() {
            return 0.0;
        }
        shared(&self.shingles, &other.shingles) as f64 / smaller as f64
    }

    /// The MinHash signature, by one-permutation hashing: each shingle is hashed once and
    /// falls in one of [`SIGNATURE`] bins, each bin keeping its least hash; an empty bin
    /// takes the value of a filled one chosen by a fixed random sequence of its own
    /// (optimal densification), so that two texts' empty bins agree as often as their
    /// filled ones. Two texts agree in a bin with probability close to their Jaccard
    /// similarity, for one hash per shingle instead of one per shingle and bin.
    pub fn signature(&self) -> [u64; SIGNATURE] {
        let mut bins = [u64::MAX; SIGNATURE];
        for &shingle in &self.shingles {
            let h = mix(shingle ^ SEED);
            // The high bits choose the bin (a multiply-shift range reduction), all of them
            // order it.
            let bin = (((h >> 32) * SIGNATURE as u64) >> 32) as usize;
            bins[bin] = bins[bin].min(h);
        }
        if bins.iter().all(|&b| b == u64::MAX) {
            return bins;
        }
        let mut signature = bins;
        for (i, slot) in signature.iter_mut().enumerate() {
            let mut attempt = 0u64;
            while *slot == u64::MAX {
                let pick = mix(SEED ^ ((i as u64) << 32) ^ attempt);
                let from = (((pick >> 32) * SIGNATURE as u64) >> 32) as usize;
                *slot = bins[from];
                attempt += 1;
            }
        }
        signature
    }

    /// The index keys: one per band, each the hash of the band's rows and its number. An
    /// empty text has none.
    pub fn band_keys(&self) -> Vec<i64> {
        if self.is_empty() {
            return Vec::new();
        }
        let signature = self.signature();
        signature
            .chunks(ROWS)
            .enumerate()
            .map(|(band, rows)| {
                let mut hasher = fnv::FnvHasher::default();
                hasher.write_u64(band as u64);
                for row in rows {
                    hasher.write_u64(*row);
                }
                // SQLite's integers are signed: the bits as they are.
                hasher.finish() as i64
            })
            .collect()
    }
}

impl Fingerprint {
    /// Whether the text holds `word` (folded): as a word in spaced scripts, anywhere in a
    /// run of letters in the others.
    fn says(&self, word: &str) -> bool {
        match joined_script(word) {
            Some(_) => self.runs.iter().any(|run| run.contains(word)),
            None => self
                .shingles
                .binary_search(&hash(word.as_bytes(), 0))
                .is_ok(),
        }
    }
}

/// Why two near-identical texts are still two events, if they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// A number in one title is not in the other ("7 killed" and "12 killed").
    Number,
    /// One text says one of a pair of opposed event words and the other its opposite
    /// ("resume" and "end"), each missing from the other.
    Opposed(&'static str, &'static str),
    /// One names something, in its title and its summary alike, that the other never
    /// does, and the other names something of its own: another place, actor or
    /// development ("southern Iran" and "northeastern Iran"). Outlets that edit a wire
    /// story add words (a suffix, a sentence) or change one in passing; they do not drop
    /// what the headline and the lede both say for something else.
    Named,
}

/// What sets two texts apart as events, whatever their resemblance.
pub fn conflict(a: &Fingerprint, b: &Fingerprint) -> Option<Conflict> {
    if !a.title_numbers.is_empty()
        && !b.title_numbers.is_empty()
        && a.title_numbers != b.title_numbers
    {
        return Some(Conflict::Number);
    }
    for &(x, y) in OPPOSED {
        for (one, other) in [(a, b), (b, a)] {
            if one.says(x) && !one.says(y) && other.says(y) && !other.says(x) {
                return Some(Conflict::Opposed(x, y));
            }
        }
    }
    if (names_apart(a, b) && says_more(b, a)) || (names_apart(b, a) && says_more(a, b)) {
        return Some(Conflict::Named);
    }
    None
}

/// Whether `a` names, in its title and its summary, something `b` names in neither.
fn names_apart(a: &Fingerprint, b: &Fingerprint) -> bool {
    let has = |list: &[u64], token: &u64| list.binary_search(token).is_ok();
    a.title_tokens.iter().any(|token| {
        has(&a.summary_tokens, token)
            && !has(&b.title_tokens, token)
            && !has(&b.summary_tokens, token)
    })
}

/// Whether `a` has a token `b` has nowhere.
fn says_more(a: &Fingerprint, b: &Fingerprint) -> bool {
    let has = |list: &[u64], token: &u64| list.binary_search(token).is_ok();
    a.title_tokens
        .iter()
        .chain(&a.summary_tokens)
        .any(|token| !has(&b.title_tokens, token) && !has(&b.summary_tokens, token))
}

/// The title without a wire's `UPDATE 1-` (or `UPDATE 2`, ...) prefix, folded: the
/// update's number is no number of the event.
fn strip_update_prefix(title: &str) -> &str {
    let Some(rest) = title.strip_prefix("update ") else {
        return title;
    };
    match rest.split_once(' ') {
        Some((n, rest)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => title,
    }
}

/// Event words that name opposite developments, folded: English in the forms headlines
/// use, Persian and Chinese as written (looked for inside letter runs, so a Persian word
/// is found however its parts are joined).
const OPPOSED: &[(&str, &str)] = &[
    ("resume", "end"),
    ("resumes", "ends"),
    ("resumed", "ended"),
    ("rise", "fall"),
    ("rises", "falls"),
    ("rose", "fell"),
    ("climb", "fall"),
    ("climbs", "falls"),
    ("climbed", "fell"),
    ("gain", "loss"),
    ("gains", "losses"),
    ("seized", "released"),
    ("seizes", "releases"),
    ("seize", "release"),
    ("approve", "reject"),
    ("approves", "rejects"),
    ("approved", "rejected"),
    ("lift", "impose"),
    ("lifts", "imposes"),
    ("lifted", "imposed"),
    ("open", "close"),
    ("opens", "closes"),
    ("opened", "closed"),
    ("raise", "cut"),
    ("raises", "cuts"),
    ("raised", "cut"),
    ("accept", "reject"),
    ("accepts", "rejects"),
    ("accepted", "rejected"),
    ("win", "lose"),
    ("wins", "loses"),
    ("won", "lost"),
    ("start", "end"),
    ("starts", "ends"),
    ("started", "ended"),
    ("arrested", "freed"),
    ("expand", "cut"),
    ("higher", "lower"),
    ("increase", "decrease"),
    ("increases", "decreases"),
    ("surge", "slump"),
    ("ازسرگیری", "پایان"),
    ("افزایش", "کاهش"),
    ("توقیف", "آزادی"),
    ("تصویب", "رد"),
    ("لغو", "اعمال"),
    ("恢复", "结束"),
    ("上升", "下降"),
    ("增长", "下降"),
    ("增加", "减少"),
    ("扣押", "释放"),
    ("批准", "否决"),
    ("取消", "实施"),
    ("上调", "下调"),
];

/// Where one folded text's pieces go.
struct Split<'a> {
    /// Every shingle: tokens and word pairs.
    shingles: &'a mut Vec<u64>,
    /// Words of spaced scripts and letter grams of the others.
    tokens: &'a mut Vec<u64>,
    /// Letter runs of the other scripts, separators dropped.
    runs: &'a mut Vec<String>,
}

impl Split<'_> {
    fn text(&mut self, text: &str) {
        let mut spaced: Vec<&str> = Vec::new();
        let mut run = String::new();
        let mut kind = Joined::Arabic;
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            match joined_script(word) {
                Some(this) => {
                    if this != kind {
                        self.run(&mut run, kind);
                        kind = this;
                    }
                    run.push_str(word);
                }
                None => {
                    self.run(&mut run, kind);
                    spaced.push(word);
                }
            }
        }
        self.run(&mut run, kind);
        for word in &spaced {
            self.shingles.push(hash(word.as_bytes(), 0));
            self.tokens.push(hash(stem(word).as_bytes(), 3));
        }
        for pair in spaced.windows(2) {
            let mut hasher = fnv::FnvHasher::default();
            hasher.write(pair[0].as_bytes());
            hasher.write_u8(0xff);
            hasher.write(pair[1].as_bytes());
            hasher.write_u8(1);
            self.shingles.push(hasher.finish());
        }
    }

    /// A run of letters as its grams; a run shorter than a gram as itself.
    fn run(&mut self, run: &mut String, kind: Joined) {
        if run.is_empty() {
            return;
        }
        let chars: Vec<char> = run.chars().collect();
        if chars.len() < kind.gram() {
            self.token(hash(run.as_bytes(), 2));
        } else {
            let mut gram = String::new();
            for window in chars.windows(kind.gram()) {
                gram.clear();
                gram.extend(window);
                self.token(hash(gram.as_bytes(), 2));
            }
        }
        self.runs.push(std::mem::take(run));
    }

    fn token(&mut self, hash: u64) {
        self.shingles.push(hash);
        self.tokens.push(hash);
    }
}

/// A word's first four letters: enough to tell names and events apart, few enough that
/// a word's forms agree (`kuwait` and `kuwaitis`, `drops` and `dropped`).
fn stem(word: &str) -> &str {
    &word[..word.char_indices().nth(4).map_or(word.len(), |(i, _)| i)]
}

/// Scripts read as runs of letters rather than words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joined {
    /// Arabic script: a space or a zero-width non-joiner may or may not split a word.
    Arabic,
    /// Scripts written without spaces between words (Han, kana, Thai, ...).
    Unspaced,
}

impl Joined {
    fn gram(self) -> usize {
        match self {
            Joined::Arabic => 3,
            Joined::Unspaced => 2,
        }
    }
}

fn joined_script(word: &str) -> Option<Joined> {
    let first = word.chars().next()?;
    if matcher::is_unspaced_script(first) {
        Some(Joined::Unspaced)
    } else if matches!(first, '\u{0600}'..='\u{06FF}' | '\u{0750}'..='\u{077F}' | '\u{08A0}'..='\u{08FF}' | '\u{FB50}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFF}')
    {
        Some(Joined::Arabic)
    } else {
        None
    }
}

/// Digits of any script as ASCII digits (Persian `۱۲` as `12`).
fn ascii_digits(word: &str) -> String {
    word.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from(b'0' + d as u8),
            None => match c {
                '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
                '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
                other => other,
            },
        })
        .collect()
}

/// A shingle's hash, with `kind` keeping words, pairs and letter grams apart.
fn hash(bytes: &[u8], kind: u8) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(bytes);
    hasher.write_u8(kind);
    hasher.finish()
}

/// Shared elements of two sorted, distinct lists.
fn shared(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// SplitMix64's finalizer: a bijective mix, so each seed gives an independent-looking
/// permutation of the shingle hashes.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The seed of the signature's one hash, fixed: band keys are stored, so they must not
/// change between runs or versions.
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
