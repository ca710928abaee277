//! Compiles watch-list specs into one [`Matcher`].
//!
//! Input: the `WatchlistSpec`s of the config. Output: the matcher, whose single automaton holds
//! every distinct folded pattern of every term, alias, query word and exclude, each pattern
//! listing the watch-list targets it stands for; or every error found in every watch-list.
//!
//! Per watch-list, "slots" number what can hit: slot `i < terms.len()` is `terms[i]` (its
//! aliases hit the same slot), later slots are query words that are not terms. Excludes have
//! their own numbering (a target flag tells them apart). A query becomes an expression over
//! slots.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::normalize::is_unspaced_script;
use super::query::{Expr, ParsedQuery, parse_query};
use super::term::{ParsedTerm, bare, parse_term};
use super::{CompileError, Field, Location, Matcher, WatchlistSpec};

/// What a hit on a pattern means for one watch-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Target {
    pub list: u32,
    /// Term slot, or exclude index when `exclude`.
    pub slot: u32,
    pub exclude: bool,
    /// No right word-boundary check.
    pub prefix: bool,
    /// The original text of the hit must contain no lowercase letter.
    pub acronym: bool,
}

/// One automaton pattern.
#[derive(Debug)]
pub(crate) struct Pattern {
    pub targets: Vec<Target>,
    /// The pattern starts with a character of a script written without spaces: no left
    /// boundary check.
    pub left_free: bool,
    /// Same for its last character and the right boundary.
    pub right_free: bool,
}

/// One compiled watch-list.
#[derive(Debug)]
pub(crate) struct List {
    /// Fields searched, as bits (`Field::bit`).
    pub fields: u8,
    pub slots: Vec<Slot>,
    /// Over slot indices.
    pub query: Option<Expr>,
    /// The excludes as written, by exclude index.
    pub excludes: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Slot {
    /// Reported name: the term as written, or the query word as written.
    pub name: String,
    /// False for a slot that the query only uses under `NOT`: it vetoes, it is not a hit.
    pub report: bool,
}

/// Patterns collected so far, de-duplicated across all watch-lists.
#[derive(Default)]
struct Patterns {
    ids: HashMap<String, usize>,
    strings: Vec<String>,
    infos: Vec<Pattern>,
}

impl Patterns {
    fn add(&mut self, pattern: &str, target: Target) {
        let id = match self.ids.get(pattern) {
            Some(&id) => id,
            None => {
                let id = self.strings.len();
                self.strings.push(pattern.to_owned());
                self.ids.insert(pattern.to_owned(), id);
                self.infos.push(Pattern {
                    targets: Vec::new(),
                    left_free: pattern.chars().next().is_some_and(is_unspaced_script),
                    right_free: pattern.chars().next_back().is_some_and(is_unspaced_script),
                });
                id
            }
        };
        if let Some(info) = self.infos.get_mut(id) {
            info.targets.push(target);
        }
    }
}

pub(crate) fn compile(specs: &[WatchlistSpec]) -> Result<Matcher, Vec<CompileError>> {
    let mut patterns = Patterns::default();
    let mut errors = Vec::new();
    let mut lists = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let mut report = |location, message| {
            errors.push(CompileError {
                watchlist: spec.name.clone(),
                location,
                message,
            });
        };
        let Ok(index) = u32::try_from(index) else {
            report(Location::Watchlist, "too many watch-lists".to_owned());
            break;
        };
        lists.push(compile_list(index, spec, &mut patterns, &mut report));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let Patterns {
        strings, mut infos, ..
    } = patterns;
    for info in &mut infos {
        // The same term written twice (or an alias equal to its term) is one target.
        info.targets.sort_unstable();
        info.targets.dedup();
    }
    let automaton = if strings.is_empty() {
        None
    } else {
        let build = |kind| {
            AhoCorasick::builder()
                // Standard semantics is what overlapping search requires.
                .match_kind(MatchKind::Standard)
                .kind(kind)
                .build(&strings)
        };
        // The DFA is what keeps throughput at hundreds of MB/s with thousands of patterns
        // (PERFORMANCE-NOTES); should it exceed its size limits, an NFA still matches alike.
        match build(Some(AhoCorasickKind::DFA)).or_else(|_| build(None)) {
            Ok(ac) => Some(ac),
            Err(e) => {
                return Err(vec![CompileError {
                    watchlist: "*".to_owned(),
                    location: Location::Watchlist,
                    message: format!("cannot build the term automaton: {e}"),
                }]);
            }
        }
    };
    let fields = lists.iter().fold(0, |acc, l| acc | l.fields);
    Ok(Matcher {
        automaton,
        patterns: infos,
        lists,
        fields,
    })
}

fn compile_list(
    list: u32,
    spec: &WatchlistSpec,
    patterns: &mut Patterns,
    report: &mut dyn FnMut(Location, String),
) -> List {
    let exact = spec.acronyms_exact;
    if spec.terms.is_empty() {
        report(Location::Watchlist, "has no terms".to_owned());
    }

    let mut slots = Vec::with_capacity(spec.terms.len());
    let mut parsed_terms = Vec::with_capacity(spec.terms.len());
    for (i, raw) in spec.terms.iter().enumerate() {
        slots.push(Slot {
            name: raw.clone(),
            report: true,
        });
        match parse_term(raw) {
            Ok(term) => {
                add_target(patterns, &term, list, i, false, exact);
                parsed_terms.push(Some(term));
            }
            Err(message) => {
                report(Location::Term(i), message);
                parsed_terms.push(None);
            }
        }
    }

    for (key, aliases) in &spec.aliases {
        let Some(slot) = find_term(&spec.terms, key) else {
            report(
                Location::Alias {
                    term: key.clone(),
                    index: 0,
                },
                format!("`{key}` is not one of the watch-list's terms"),
            );
            continue;
        };
        for (index, raw) in aliases.iter().enumerate() {
            match parse_term(raw) {
                Ok(term) => add_target(patterns, &term, list, slot, false, exact),
                Err(message) => report(
                    Location::Alias {
                        term: key.clone(),
                        index,
                    },
                    format!("alias {message}"),
                ),
            }
        }
    }

    let query = spec
        .query
        .as_deref()
        .and_then(|q| compile_query(q, list, exact, &parsed_terms, &mut slots, patterns, report));

    for (i, raw) in spec.exclude.iter().enumerate() {
        match parse_term(raw) {
            Ok(term) => add_target(patterns, &term, list, i, true, exact),
            Err(message) => report(Location::Exclude(i), message),
        }
    }

    let fields = if spec.fields.is_empty() {
        Field::ALL.iter().fold(0, |acc, f| acc | f.bit())
    } else {
        spec.fields.iter().fold(0, |acc, f| acc | f.bit())
    };
    List {
        fields,
        slots,
        query,
        excludes: spec.exclude.clone(),
    }
}

fn add_target(
    patterns: &mut Patterns,
    term: &ParsedTerm,
    list: u32,
    slot: usize,
    exclude: bool,
    acronyms_exact: bool,
) {
    patterns.add(
        &term.pattern,
        Target {
            list,
            slot: u32::try_from(slot).unwrap_or(u32::MAX),
            exclude,
            prefix: term.prefix,
            acronym: term.acronym && acronyms_exact,
        },
    );
}

/// The term an alias key names: the term written exactly so, else the only term that differs
/// from it just by quotes or `*` (so `Iran` names `Iran*`).
fn find_term(terms: &[String], key: &str) -> Option<usize> {
    if let Some(i) = terms.iter().position(|t| t == key) {
        return Some(i);
    }
    let mut found = terms
        .iter()
        .enumerate()
        .filter(|(_, t)| bare(t) == bare(key));
    match (found.next(), found.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// The term slot a query operand names: a term with the same folded text (so case-insensitive)
/// and the same `*`, or a prefix term named without its `*`.
fn name_term(parsed_terms: &[Option<ParsedTerm>], operand: &ParsedTerm) -> Option<usize> {
    let same_text = |t: &&Option<ParsedTerm>| {
        t.as_ref()
            .is_some_and(|t| t.pattern == operand.pattern && (t.prefix || !operand.prefix))
    };
    let exact = parsed_terms
        .iter()
        .position(|t| same_text(&t) && t.as_ref().is_some_and(|t| t.prefix == operand.prefix));
    exact.or_else(|| parsed_terms.iter().position(|t| same_text(&t)))
}

#[allow(clippy::too_many_arguments)]
fn compile_query(
    query: &str,
    list: u32,
    exact: bool,
    parsed_terms: &[Option<ParsedTerm>],
    slots: &mut Vec<Slot>,
    patterns: &mut Patterns,
    report: &mut dyn FnMut(Location, String),
) -> Option<Expr> {
    let ParsedQuery { mut expr, operands } = match parse_query(query) {
        Ok(parsed) => parsed,
        Err(errors) => {
            for (offset, message) in errors {
                report(Location::Query { offset }, message);
            }
            return None;
        }
    };

    // Resolve each operand to a slot: a term it names, else a hidden extra term (one slot per
    // distinct word, however often the query repeats it).
    let mut extra: HashMap<(String, bool, bool), usize> = HashMap::new();
    let mut leaf_slots = Vec::with_capacity(operands.len());
    for operand in &operands {
        let slot = match name_term(parsed_terms, &operand.term) {
            Some(slot) => slot,
            None => {
                let key = (
                    operand.term.pattern.clone(),
                    operand.term.prefix,
                    operand.term.acronym,
                );
                *extra.entry(key).or_insert_with(|| {
                    let slot = slots.len();
                    slots.push(Slot {
                        name: operand.text.clone(),
                        report: false,
                    });
                    add_target(patterns, &operand.term, list, slot, false, exact);
                    slot
                })
            }
        };
        leaf_slots.push(u32::try_from(slot).unwrap_or(u32::MAX));
    }
    expr.map_leaves(&|leaf| leaf_slots.get(leaf as usize).copied().unwrap_or(u32::MAX));

    // Report a slot's hits unless the query uses it only under NOT; terms the query does not
    // mention are still reported when they hit.
    let mut referenced = vec![false; slots.len()];
    let mut positive = vec![false; slots.len()];
    expr.visit_polarity(true, &mut |slot, is_positive| {
        let slot = slot as usize;
        if let Some(r) = referenced.get_mut(slot) {
            *r = true;
        }
        if is_positive && let Some(p) = positive.get_mut(slot) {
            *p = true;
        }
    });
    for (i, slot) in slots.iter_mut().enumerate() {
        slot.report = !referenced[i] || positive[i];
    }

    // A query that holds when nothing hits (`NOT football`, `Iran OR NOT China`) would alert
    // on nearly every item of every feed: refuse it.
    if expr.eval(&|_| false) {
        report(
            Location::Query { offset: 0 },
            "query matches items that contain none of its terms: use `NOT` together with a \
             term, like `Iran AND NOT football`"
                .to_owned(),
        );
        return None;
    }
    Some(expr)
}
