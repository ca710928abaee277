//! The match stage: which watch-lists does a feed item match, on which terms, and where.
//!
//! Input: the watch-lists of the config ([`WatchlistSpec`]), compiled once at load time by
//! [`Matcher::compile`] (every error reported, each with a [`Location`]); then, per item, a
//! [`Document`] of plain-text fields. Output: one [`WatchlistMatch`] per matching watch-list,
//! with the canonical terms that hit and [`Highlight`]s (field, term, snippet, byte offsets
//! into the original field text).
//!
//! Semantics (SPEC §3): text and terms are folded alike (NFKD, full case folding, Latin
//! diacritics, Arabic letter variants, every run of non-word characters = one separator; see
//! `normalize`), hits must stand on word boundaries except next to scripts written without
//! spaces, `Iran*` is a prefix term, all-capitals terms (`SCO`) match only all-capitals text,
//! aliases report their canonical term, an optional boolean query combines terms, and any
//! `exclude` hit vetoes the watch-list.
//!
//! Cost grows with the text, not with the number of terms: every term, alias, query word and
//! exclude of every watch-list is one pattern of a single Aho-Corasick DFA, searched with
//! overlapping iteration (so `Iran` still hits inside `Iran nuclear deal`, and a longer hit
//! rejected at a word boundary cannot hide a shorter valid one). Each pattern lists the
//! watch-list terms it stands for. Measured (release, one core, BENCHMARKS.md): about 345 MB/s
//! of English feed text end to end with 10,000 patterns in 1,000 watch-lists (470 MB/s with
//! 10), of which the automaton takes over half the time and folding about a quarter.
//! Compiling 10,000 patterns takes about 28 ms.
//!
//! Reporting rules a caller relies on: a term is reported exactly as written in `terms` (an
//! alias hit reports its term); a query word that is not a term, exactly as written in the
//! query (`Russ*`, `"nuclear deal"`); words the query uses only under `NOT` are never reported;
//! terms the query does not mention are reported when they hit. A query that would hold when
//! nothing hits (`NOT football`) is a compile error, so every match has at least one term.
//!
//! Files: `normalize` (folding), `term` (one term), `query` (query language), `compile`
//! (specs → automaton), `search` (one item → matches), `snippet` (highlight excerpts).

mod compile;
mod normalize;
mod query;
mod search;
mod snippet;
mod term;

#[cfg(test)]
mod tests;

use std::fmt;

use aho_corasick::AhoCorasick;

/// A watch-list as the config describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchlistSpec {
    pub name: String,
    /// As written by the user: `Iran`, `Iran*`, `"Iran nuclear deal"`, `SCO`, `中国`.
    pub terms: Vec<String>,
    /// Canonical term (one of `terms`, compared as written) → alias strings.
    pub aliases: Vec<(String, Vec<String>)>,
    /// Boolean query over terms, e.g. `(Iran OR JCPOA) AND (China OR SCO)`.
    pub query: Option<String>,
    /// Any hit vetoes the whole watch-list for that item.
    pub exclude: Vec<String>,
    /// Fields searched; empty means all of them.
    pub fields: Vec<Field>,
    /// All-capitals terms match case-sensitively (the config's default is `true`).
    pub acronyms_exact: bool,
}

impl Default for WatchlistSpec {
    /// An empty watch-list with the config's defaults (notably `acronyms_exact = true`).
    fn default() -> Self {
        WatchlistSpec {
            name: String::new(),
            terms: Vec::new(),
            aliases: Vec::new(),
            query: None,
            exclude: Vec::new(),
            fields: Vec::new(),
            acronyms_exact: true,
        }
    }
}

/// A searchable field of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Title,
    Summary,
    Content,
    Categories,
    /// The main text of the item's linked page, for a `full_text` feed (SPEC §13).
    Article,
}

impl Field {
    pub const ALL: [Field; 5] = [
        Field::Title,
        Field::Summary,
        Field::Content,
        Field::Categories,
        Field::Article,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Summary => "summary",
            Field::Content => "content",
            Field::Categories => "categories",
            Field::Article => "article",
        }
    }

    /// Parses `title`, `summary`, `content`, `categories` or `article` (ASCII
    /// case-insensitive).
    pub fn parse(s: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// This field's bit in a field set.
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One item's text, already plain (HTML removed, entities decoded by the parse stage).
#[derive(Debug, Clone, Copy, Default)]
pub struct Document<'a> {
    pub title: &'a str,
    pub summary: &'a str,
    pub content: &'a str,
    /// Each category is matched on its own.
    pub categories: &'a [String],
    /// The linked page's main text (empty unless the feed is `full_text`).
    pub article: &'a str,
}

/// A watch-list that matched an item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WatchlistMatch {
    /// Index into the specs given to [`Matcher::compile`].
    pub watchlist: usize,
    /// Canonical terms that hit, sorted and de-duplicated. A term is reported exactly as
    /// written in `terms`; a query word that is not a term, exactly as written in the query.
    pub terms: Vec<String>,
    /// In field order, then by position; at most [`MAX_HIGHLIGHTS`].
    pub highlights: Vec<Highlight>,
}

/// A watch-list whose terms hit an item that it still did not match: an exclude vetoed
/// it, or its query was false. What `explain` and `backtest` report, and what the commit
/// stage stores as the reason an item did not alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Miss {
    /// Index into the specs given to [`Matcher::compile`].
    pub watchlist: usize,
    /// Terms that hit, as [`WatchlistMatch::terms`].
    pub terms: Vec<String>,
    /// The excludes that hit, as written, sorted; empty when the query was false.
    pub excluded: Vec<String>,
    /// As [`WatchlistMatch::highlights`], when asked for ([`Matcher::examine`]).
    pub highlights: Vec<Highlight>,
}

/// What the watch-lists made of one item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Examined {
    pub matches: Vec<WatchlistMatch>,
    pub misses: Vec<Miss>,
}

/// Where a term hit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Highlight {
    pub field: Field,
    /// Canonical term.
    pub term: String,
    /// At most 160 characters of the original text around the hit, whitespace runs collapsed,
    /// `…` where cut. For a category: the category itself, trimmed (and, past 160
    /// characters, shortened like any other snippet).
    pub snippet: String,
    /// Byte offsets into the ORIGINAL field text given in [`Document`] (for a category, into
    /// that category string): `&text[start..end]` is exactly the matched text.
    pub start: usize,
    pub end: usize,
}

/// Most highlights kept per watch-list match. Every term that hit gets one before any term
/// gets a second.
pub const MAX_HIGHLIGHTS: usize = 16;

/// A watch-list definition error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("watch-list `{watchlist}`: {location}: {message}")]
pub struct CompileError {
    /// The watch-list's name.
    pub watchlist: String,
    pub location: Location,
    pub message: String,
}

/// Which value of a watch-list an error is about, so the config loader can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `terms[i]`.
    Term(usize),
    /// `aliases.<term>[index]`. For an alias key that names no term, `index` is 0 and the
    /// message says so.
    Alias { term: String, index: usize },
    /// Byte offset into the query string.
    Query { offset: usize },
    /// `exclude[i]`.
    Exclude(usize),
    /// The watch-list as a whole (for example: no terms).
    Watchlist,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Term(i) => write!(f, "terms[{i}]"),
            Location::Alias { term, index } => write!(f, "aliases.{term}[{index}]"),
            Location::Query { offset } => write!(f, "query at byte {offset}"),
            Location::Exclude(i) => write!(f, "exclude[{i}]"),
            Location::Watchlist => f.write_str("definition"),
        }
    }
}

/// The compiled watch-lists: one automaton for all of them. Immutable, `Send + Sync`; share it
/// behind an `Arc` and swap the `Arc` on reload.
#[derive(Debug)]
pub struct Matcher {
    /// `None` when there is no pattern at all (no watch-lists).
    automaton: Option<AhoCorasick>,
    /// Per automaton pattern: what a hit on it means.
    patterns: Vec<compile::Pattern>,
    lists: Vec<compile::List>,
    /// Union of the fields any watch-list searches.
    fields: u8,
}

impl Matcher {
    /// Compiles every watch-list into one matcher, or returns ALL the errors found.
    pub fn compile(specs: &[WatchlistSpec]) -> Result<Matcher, Vec<CompileError>> {
        compile::compile(specs)
    }

    /// Matches one item against every watch-list `i` for which `wanted(i)` is true (false:
    /// the item's feed is not subscribed to it). Results are ordered by watch-list index.
    pub fn match_item(
        &self,
        doc: &Document<'_>,
        wanted: &dyn Fn(usize) -> bool,
    ) -> Vec<WatchlistMatch> {
        search::examine(self, doc, wanted, false).matches
    }

    /// [`Matcher::match_item`], and also the watch-lists whose terms hit but that did not
    /// match ([`Miss`]), with their highlights when `miss_highlights`.
    pub fn examine(
        &self,
        doc: &Document<'_>,
        wanted: &dyn Fn(usize) -> bool,
        miss_highlights: bool,
    ) -> Examined {
        search::examine(self, doc, wanted, miss_highlights)
    }

    /// Number of distinct folded patterns in the automaton.
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Number of compiled watch-lists (the length of the specs given to `compile`).
    pub fn watchlist_count(&self) -> usize {
        self.lists.len()
    }
}

/// `text` folded as the matcher reads it (case, width, diacritics, Arabic letter variants;
/// every run of other characters one space, none at the end): what the story stage
/// fingerprints, so that every script clusters as it matches.
pub fn fold(text: &str) -> String {
    normalize::fold_text(text)
}

pub(crate) use normalize::is_unspaced_script;
