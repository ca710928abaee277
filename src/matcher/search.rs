//! Matches one item against the compiled watch-lists.
//!
//! Input: a [`Document`] and which watch-lists are wanted. Output: the [`WatchlistMatch`]es.
//!
//! Per field (each category on its own): fold the text without an offset map, run the
//! automaton with overlapping iteration, and keep the hits that stand on word boundaries for
//! some wanted watch-list that searches this field. Only if some hit survives is the text
//! folded again with the offset map, to verify acronyms against the original letters and to
//! locate highlights. Then, per watch-list: excludes veto, the query (or "any term") decides,
//! and the highlights are chosen and cut into snippets.

use std::cell::RefCell;

use aho_corasick::AhoCorasick;
use unicode_normalization::char::is_combining_mark;

use super::compile::Target;
use super::normalize::{FoldCache, is_unspaced_script, normalize_into};
use super::snippet::{SNIPPET_CHARS, snippet};
use super::{Document, Examined, Field, Highlight, MAX_HIGHLIGHTS, Matcher, Miss, WatchlistMatch};

/// Buffers reused across items on the same thread, so matching does not allocate per field.
#[derive(Default)]
struct Scratch {
    /// Folded text: valid UTF-8, kept as bytes because the automaton searches bytes.
    norm: Vec<u8>,
    map: Vec<u32>,
    pending: Vec<Pending>,
    /// Per watch-list: 0 = not asked yet, 1 = wanted, 2 = not wanted.
    wanted: Vec<u8>,
    hits: Vec<bool>,
    fold: FoldCache,
}

/// Buffers larger than this are released after the item, so one huge item does not pin its
/// memory on a worker thread for good.
const KEEP_BYTES: usize = 1 << 20;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A hit in folded text, not yet mapped back to the original.
#[derive(Clone, Copy)]
struct Pending {
    target: Target,
    start: usize,
    end: usize,
}

/// A verified hit, located in the original text.
#[derive(Clone, Copy)]
struct Candidate {
    list: u32,
    slot: u32,
    exclude: bool,
    field: Field,
    /// Category index (0 for other fields).
    cat: u32,
    start: usize,
    end: usize,
}

pub(crate) fn examine(
    m: &Matcher,
    doc: &Document<'_>,
    wanted: &dyn Fn(usize) -> bool,
    miss_highlights: bool,
) -> Examined {
    let Some(ac) = &m.automaton else {
        return Examined::default();
    };
    // `wanted` is caller code and could re-enter `match_item`: then the thread's scratch is
    // busy and a fresh one is used instead of panicking on a double borrow.
    let result = SCRATCH.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => run(m, ac, doc, wanted, miss_highlights, &mut scratch),
        Err(_) => run(m, ac, doc, wanted, miss_highlights, &mut Scratch::default()),
    });
    match result {
        Ok(examined) => examined,
        // Thread-local storage is being torn down.
        Err(_) => run(m, ac, doc, wanted, miss_highlights, &mut Scratch::default()),
    }
}

fn run(
    m: &Matcher,
    ac: &AhoCorasick,
    doc: &Document<'_>,
    wanted: &dyn Fn(usize) -> bool,
    miss_highlights: bool,
    scratch: &mut Scratch,
) -> Examined {
    scratch.wanted.clear();
    scratch.wanted.resize(m.lists.len(), 0);
    let mut candidates = Vec::new();
    let mut ctx = FieldScan {
        m,
        ac,
        wanted,
        scratch: &mut *scratch,
        out: &mut candidates,
    };
    for field in Field::ALL {
        if m.fields & field.bit() == 0 {
            continue;
        }
        match field {
            Field::Title => ctx.scan(field, 0, doc.title),
            Field::Summary => ctx.scan(field, 0, doc.summary),
            Field::Content => ctx.scan(field, 0, doc.content),
            Field::Article => ctx.scan(field, 0, doc.article),
            Field::Categories => {
                for (i, category) in doc.categories.iter().enumerate() {
                    ctx.scan(field, u32::try_from(i).unwrap_or(u32::MAX), category);
                }
            }
        }
    }
    let examined = decide(m, doc, &mut candidates, &mut scratch.hits, miss_highlights);

    if scratch.norm.capacity() > KEEP_BYTES {
        scratch.norm = Vec::new();
    }
    if scratch.map.capacity() > KEEP_BYTES / 4 {
        scratch.map = Vec::new();
    }
    examined
}

struct FieldScan<'a> {
    m: &'a Matcher,
    ac: &'a AhoCorasick,
    wanted: &'a dyn Fn(usize) -> bool,
    scratch: &'a mut Scratch,
    out: &'a mut Vec<Candidate>,
}

impl FieldScan<'_> {
    fn scan(&mut self, field: Field, cat: u32, text: &str) {
        if text.is_empty() {
            return;
        }
        let Scratch {
            norm,
            map,
            pending,
            wanted: wanted_cache,
            fold,
            ..
        } = &mut *self.scratch;
        normalize_into(text, norm, None, Some(fold));
        pending.clear();
        // Overlapping iteration needs standard match semantics, which the compiler sets; the
        // error case cannot happen, and would only mean "no hits".
        let Ok(hits) = self.ac.try_find_overlapping_iter(norm.as_slice()) else {
            return;
        };
        for hit in hits {
            let Some(pattern) = self.m.patterns.get(hit.pattern().as_usize()) else {
                continue;
            };
            let (start, end) = (hit.start(), hit.end());
            // The left boundary applies to every kind of term.
            if !pattern.left_free && !left_boundary(norm, start) {
                continue;
            }
            let right_ok = pattern.right_free || right_boundary(norm, end);
            for target in &pattern.targets {
                if !target.prefix && !right_ok {
                    continue;
                }
                let list = target.list as usize;
                let searches_field = self
                    .m
                    .lists
                    .get(list)
                    .is_some_and(|l| l.fields & field.bit() != 0);
                if searches_field && is_wanted(wanted_cache, list, self.wanted) {
                    pending.push(Pending {
                        target: *target,
                        start,
                        end,
                    });
                }
            }
        }
        if pending.is_empty() {
            return;
        }

        // Some hit survived: fold again, this time recording offsets. The folded text is the
        // same, so the hit positions stay valid.
        normalize_into(text, norm, Some(map), Some(fold));
        for p in pending.drain(..) {
            let Some((start, end)) = original_span(text, map, p.start, p.end) else {
                continue;
            };
            if p.target.acronym
                && text
                    .get(start..end)
                    .is_none_or(|s| s.chars().any(char::is_lowercase))
            {
                continue;
            }
            self.out.push(Candidate {
                list: p.target.list,
                slot: p.target.slot,
                exclude: p.target.exclude,
                field,
                cat,
                start,
                end,
            });
        }
    }
}

fn is_wanted(cache: &mut [u8], list: usize, wanted: &dyn Fn(usize) -> bool) -> bool {
    match cache.get_mut(list) {
        Some(1) => true,
        Some(2) | None => false,
        Some(state) => {
            let yes = wanted(list);
            *state = if yes { 1 } else { 2 };
            yes
        }
    }
}

/// In folded text (word characters and single spaces), a hit starting at `start` is a whole
/// word on the left if it starts the text, follows a space, or follows a character of a
/// script written without spaces.
fn left_boundary(norm: &[u8], start: usize) -> bool {
    match start.checked_sub(1).and_then(|i| norm.get(i)) {
        None => true,
        Some(b' ') => true,
        // Every other ASCII byte of folded text is a letter or digit: no boundary.
        Some(b) if b.is_ascii() => false,
        Some(_) => char_before(norm, start).is_some_and(is_unspaced_script),
    }
}

fn right_boundary(norm: &[u8], end: usize) -> bool {
    match norm.get(end) {
        None => true,
        Some(b' ') => true,
        Some(b) if b.is_ascii() => false,
        Some(_) => char_at(norm, end).is_some_and(is_unspaced_script),
    }
}

/// The character that ends at byte `end` of folded text (`None` if `end` is not on a
/// character boundary, which automaton hits always are).
fn char_before(norm: &[u8], end: usize) -> Option<char> {
    // A UTF-8 character is at most four bytes: step back over continuation bytes.
    let head = norm.get(..end)?;
    let start = (end.saturating_sub(4)..end)
        .rev()
        .find(|&i| head.get(i).is_some_and(|&b| (b & 0xC0) != 0x80))?;
    std::str::from_utf8(head.get(start..)?).ok()?.chars().next()
}

/// The character that starts at byte `start` of folded text.
fn char_at(norm: &[u8], start: usize) -> Option<char> {
    let rest = norm.get(start..)?;
    let len = rest.len().min(4);
    let prefix = rest.get(..len)?;
    // The prefix may cut a following character short: decode only what is valid.
    let valid = match std::str::from_utf8(prefix) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(prefix.get(..e.valid_up_to())?).ok()?,
    };
    valid.chars().next()
}

/// Maps a folded span back to the original text: from the start of the character that
/// produced its first byte to the end of the one that produced its last byte, plus any
/// combining marks that follow (they were folded away or belong to that letter).
fn original_span(text: &str, map: &[u32], start: usize, end: usize) -> Option<(usize, usize)> {
    let from = *map.get(start)? as usize;
    let last = *map.get(end.checked_sub(1)?)? as usize;
    let last_char = text.get(last..)?.chars().next()?;
    let mut to = last + last_char.len_utf8();
    for c in text.get(to..)?.chars() {
        if !is_combining_mark(c) {
            break;
        }
        to += c.len_utf8();
    }
    (from < to).then_some((from, to))
}

/// Turns the verified hits of all fields into matches (and misses), watch-list by
/// watch-list.
fn decide(
    m: &Matcher,
    doc: &Document<'_>,
    candidates: &mut [Candidate],
    hits: &mut Vec<bool>,
    miss_highlights: bool,
) -> Examined {
    let mut examined = Examined::default();
    if candidates.is_empty() {
        return examined;
    }
    candidates.sort_unstable_by_key(|c| {
        (
            c.list,
            c.field as u8,
            c.cat,
            c.start,
            std::cmp::Reverse(c.end),
            c.slot,
        )
    });
    for group in candidates.chunk_by(|a, b| a.list == b.list) {
        let Some(first) = group.first() else {
            continue;
        };
        let Some(list) = m.lists.get(first.list as usize) else {
            continue;
        };
        hits.clear();
        hits.resize(list.slots.len(), false);
        for c in group.iter().filter(|c| !c.exclude) {
            if let Some(h) = hits.get_mut(c.slot as usize) {
                *h = true;
            }
        }
        let mut excluded: Vec<String> = group
            .iter()
            .filter(|c| c.exclude)
            .filter_map(|c| list.excludes.get(c.slot as usize).cloned())
            .collect();
        excluded.sort_unstable();
        excluded.dedup();
        let matched = excluded.is_empty()
            && match &list.query {
                Some(query) => {
                    query.eval(&|slot| hits.get(slot as usize).copied().unwrap_or(false))
                }
                None => true,
            };
        let reported = |slot: u32| -> Option<&str> {
            let s = list.slots.get(slot as usize)?;
            (s.report && hits.get(slot as usize).copied().unwrap_or(false))
                .then_some(s.name.as_str())
        };

        let mut terms: Vec<String> = list
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, _)| reported(u32::try_from(i).ok()?))
            .map(str::to_owned)
            .collect();
        terms.sort_unstable();
        terms.dedup();
        // Only an exclude hit, or only words the query uses under NOT: no term hit.
        if terms.is_empty() {
            continue;
        }
        let highlights = if matched || miss_highlights {
            highlights(doc, group, &reported)
        } else {
            Vec::new()
        };
        let watchlist = first.list as usize;
        if matched {
            examined.matches.push(WatchlistMatch {
                watchlist,
                terms,
                highlights,
            });
        } else {
            examined.misses.push(Miss {
                watchlist,
                terms,
                excluded,
                highlights,
            });
        }
    }
    examined
}

/// The highlights of one watch-list's hits: at most one per (field, category, position,
/// term), the longest, chosen by [`choose`].
fn highlights<'c>(
    doc: &Document<'_>,
    group: &'c [Candidate],
    reported: &dyn Fn(u32) -> Option<&'c str>,
) -> Vec<Highlight> {
    let mut located: Vec<(&Candidate, &str)> = group
        .iter()
        .filter(|c| !c.exclude)
        .filter_map(|c| Some((c, reported(c.slot)?)))
        .collect();
    located.sort_by_key(|&(c, name)| {
        (
            c.field as u8,
            c.cat,
            c.start,
            name,
            std::cmp::Reverse(c.end),
        )
    });
    located.dedup_by(|b, a| {
        (a.0.field, a.0.cat, a.0.start, a.1) == (b.0.field, b.0.cat, b.0.start, b.1)
    });
    choose(&located)
        .into_iter()
        .filter_map(|(c, name)| {
            let text = field_text(doc, c.field, c.cat)?;
            Some(Highlight {
                field: c.field,
                term: name.to_owned(),
                snippet: highlight_snippet(text, c.field, c.start, c.end),
                start: c.start,
                end: c.end,
            })
        })
        .collect()
}

/// Picks at most `MAX_HIGHLIGHTS`, every term's first hit before any term's second, and
/// returns them in text order.
fn choose<'c>(located: &[(&'c Candidate, &'c str)]) -> Vec<(&'c Candidate, &'c str)> {
    if located.len() <= MAX_HIGHLIGHTS {
        return located.to_vec();
    }
    let mut chosen = vec![false; located.len()];
    let mut seen: Vec<&str> = Vec::new();
    let mut count = 0;
    for (i, &(_, name)) in located.iter().enumerate() {
        if count == MAX_HIGHLIGHTS {
            break;
        }
        if !seen.contains(&name) {
            seen.push(name);
            chosen[i] = true;
            count += 1;
        }
    }
    for flag in &mut chosen {
        if count == MAX_HIGHLIGHTS {
            break;
        }
        if !*flag {
            *flag = true;
            count += 1;
        }
    }
    located
        .iter()
        .zip(chosen)
        .filter_map(|(&l, keep)| keep.then_some(l))
        .collect()
}

/// A category's snippet is the category itself, trimmed and otherwise untouched, so the
/// caller can tell which category a highlight is in (`c.trim() == snippet`). Other fields, and
/// categories too long for a snippet, get an excerpt around the hit.
fn highlight_snippet(text: &str, field: Field, start: usize, end: usize) -> String {
    let trimmed = text.trim();
    if field == Field::Categories && trimmed.chars().count() <= SNIPPET_CHARS {
        return trimmed.to_owned();
    }
    snippet(text, start, end)
}

fn field_text<'a>(doc: &Document<'a>, field: Field, cat: u32) -> Option<&'a str> {
    match field {
        Field::Title => Some(doc.title),
        Field::Summary => Some(doc.summary),
        Field::Content => Some(doc.content),
        Field::Categories => doc.categories.get(cat as usize).map(String::as_str),
        Field::Article => Some(doc.article),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn boundaries_decode_the_neighbouring_character() {
        let text = "iran 伊朗x й中";
        let norm = text.as_bytes();
        let at = |s: &str| text.find(s).unwrap();
        assert!(left_boundary(norm, 0));
        assert!(right_boundary(norm, 4), "before a space");
        assert!(!right_boundary(norm, 3), "before a letter");
        assert!(left_boundary(norm, at("伊")), "after a space");
        assert!(left_boundary(norm, at("x")), "after Han");
        assert!(right_boundary(norm, at("朗")), "before Han");
        assert!(!right_boundary(norm, at("x")), "before an ASCII letter");
        assert!(!left_boundary(norm, at("中")), "after Cyrillic");
        assert!(!right_boundary(norm, at("й")), "before Cyrillic");
        assert!(right_boundary(norm, norm.len()));
        assert_eq!(char_before(norm, at("x")), Some('朗'));
        assert_eq!(char_before(norm, norm.len()), Some('中'));
        assert_eq!(char_at(norm, at("й")), Some('й'));
        assert_eq!(char_at(norm, at("中")), Some('中'));
    }
}
