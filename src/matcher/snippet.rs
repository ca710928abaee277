//! Highlight snippets: a short, readable excerpt of the original text around a hit.
//!
//! Input: the original field text and the hit's byte range in it. Output: at most
//! [`SNIPPET_CHARS`] characters, cut on character boundaries (preferably at whitespace), with
//! `…` where text was cut and every whitespace run collapsed to one space.

/// Upper bound on a snippet's length in characters, ellipses included.
pub(crate) const SNIPPET_CHARS: usize = 160;

/// How far (in characters) a cut may move to land on whitespace.
const WORD_SLACK: usize = 24;

/// The snippet for the hit `start..end` of `text`. Offsets that are out of range or not on
/// char boundaries are clamped rather than trusted (a snippet is never worth a panic).
pub(crate) fn snippet(text: &str, start: usize, end: usize) -> String {
    let start = text.floor_char_boundary(start.min(text.len()));
    let end = text.floor_char_boundary(end.clamp(start, text.len()));
    // Two characters are reserved for the ellipses.
    let budget = SNIPPET_CHARS - 2;
    let hit_chars = text.get(start..end).map_or(0, |h| h.chars().count());

    let (mut from, mut to) = if hit_chars >= budget {
        // A hit longer than the budget: show its beginning.
        (start, walk_right(text, start, budget).0)
    } else {
        let context = budget - hit_chars;
        let (left, walked_left) = walk_left(text, start, context / 2);
        let (right, walked_right) = walk_right(text, end, context - walked_left);
        // Near the end of the text: give the unused budget back to the left side.
        let (left, _) = walk_left(text, left, context - walked_left - walked_right);
        (left, right)
    };

    // Prefer cutting at whitespace, so the snippet does not start or end mid-word; but only
    // near the cut, as text in scripts written without spaces may have none for a long way.
    if from > 0 {
        let near = walk_right(text, from, WORD_SLACK).0.min(start);
        if let Some(ws) = text
            .get(from..near)
            .and_then(|s| s.find(char::is_whitespace))
        {
            from += ws;
        }
    }
    if to < text.len() {
        let near = walk_left(text, to, WORD_SLACK).0.max(end);
        if let Some(ws) = text
            .get(near..to)
            .and_then(|s| s.rfind(char::is_whitespace))
        {
            to = near + ws;
        }
    }

    let cut_left = text.get(..from).is_some_and(|s| !s.trim().is_empty());
    let cut_right = text.get(to..).is_some_and(|s| !s.trim().is_empty());
    let mut out = String::with_capacity(to - from + 8);
    if cut_left {
        out.push('…');
    }
    let mut pending_space = false;
    for c in text.get(from..to).unwrap_or_default().chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() && out != "…" {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    if cut_right {
        out.push('…');
    }
    out
}

/// Moves left from `from` by up to `n` characters: (new position, characters walked).
fn walk_left(text: &str, from: usize, n: usize) -> (usize, usize) {
    let mut pos = from;
    let mut walked = 0;
    for (i, _) in text
        .get(..from)
        .unwrap_or_default()
        .char_indices()
        .rev()
        .take(n)
    {
        pos = i;
        walked += 1;
    }
    (pos, walked)
}

/// Moves right from `from` by up to `n` characters: (new position, characters walked).
fn walk_right(text: &str, from: usize, n: usize) -> (usize, usize) {
    let mut pos = from;
    let mut walked = 0;
    for c in text.get(from..).unwrap_or_default().chars().take(n) {
        pos += c.len_utf8();
        walked += 1;
    }
    (pos, walked)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn short_text_is_whole_and_collapsed() {
        assert_eq!(snippet("  Iran \n\t and   China ", 2, 6), "Iran and China");
    }

    #[test]
    fn long_text_is_cut_at_whitespace_with_ellipses() {
        let text = format!("{} Iran {}", "word ".repeat(100), "more ".repeat(100));
        let start = text.find("Iran").unwrap();
        let s = snippet(&text, start, start + 4);
        assert!(s.starts_with("…word") && s.ends_with("more…"), "{s}");
        assert!(s.contains("Iran"));
        assert!(s.chars().count() <= SNIPPET_CHARS);
    }

    #[test]
    fn unused_budget_goes_to_the_other_side() {
        let text = format!("Iran {}", "x ".repeat(200));
        let s = snippet(&text, 0, 4);
        assert!(s.chars().count() > 150, "{}", s.chars().count());
    }

    #[test]
    fn bad_offsets_are_clamped() {
        assert_eq!(snippet("é", 1, 99), "é");
        assert_eq!(snippet("", 5, 2), "");
    }
}
