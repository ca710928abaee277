//! What the chat bodies share: the content every format shows, taken from an alert once,
//! and how feed text is cleaned, escaped and cut to a service's limits ([`Style`]).

use chrono::{DateTime, Utc};

use super::{Alert, Event, short_summary};
use crate::matcher::{Highlight, MAX_HIGHLIGHTS};

/// Marks text that was cut.
pub(super) const ELLIPSIS: &str = "…";
/// Longest item URL made into a link. Longer ones (the parse stage allows 4 KiB) would eat
/// a Slack section or a Teams card by themselves; such an item is shown without a link.
pub(super) const MAX_LINK_URL: usize = 2048;
/// Shown when an item has no title.
pub(super) const UNTITLED: &str = "(untitled)";

// Our own caps, in the service's length units: far inside every service limit, so that a
// whole alert stays readable and inside the message-wide limits too.
pub(super) const TITLE_MAX: usize = 250;
pub(super) const NAME_MAX: usize = 200;
pub(super) const TERMS_MAX: usize = 1000;
pub(super) const TERM_MAX: usize = 100;
pub(super) const SNIPPET_MAX: usize = 500;
pub(super) const TIME_MAX: usize = 64;
/// The other outlets' names, all together.
pub(super) const OUTLETS_MAX: usize = 300;
/// Most other outlets named: "a few"; the count says how many there are.
pub(super) const OUTLETS_SHOWN: usize = 5;

/// What every format shows, taken from the alert once.
pub(super) struct Content<'a> {
    pub(super) title: &'a str,
    /// The item's URL when it can be a link.
    pub(super) url: Option<&'a str>,
    /// The feed's title, else its configured name.
    pub(super) feed: &'a str,
    pub(super) watchlist: &'a str,
    pub(super) terms: &'a [String],
    /// Whether `time` is the published time (else it is the alert's time).
    pub(super) published: bool,
    /// Label and text: ("Published", item time) or ("Alerted", alert time).
    pub(super) time: (&'static str, String),
    /// At most [`MAX_HIGHLIGHTS`].
    pub(super) highlights: &'a [Highlight],
    /// Highlights beyond those shown.
    pub(super) hidden: usize,
    pub(super) summary: &'a str,
    /// For a `watchlist.story_grew` event, the distinct feeds the story reached: the body
    /// announces an escalation ([`grew_heading`]) rather than a new story.
    pub(super) grew: Option<u64>,
    /// The other outlets that carried the story; `None` for a story seen in one feed.
    pub(super) also: Option<Also<'a>>,
}

impl<'a> Content<'a> {
    pub(super) fn of(alert: &'a Alert<'_>, at: DateTime<Utc>) -> Content<'a> {
        let title = if clean(alert.item.title).is_empty() {
            UNTITLED
        } else {
            alert.item.title
        };
        let feed = match alert.feed.title {
            Some(title) if !clean(title).is_empty() => title,
            _ => alert.feed.name,
        };
        let (published, time) = match alert.item.published.as_deref() {
            Some(published) => (true, ("Published", display_time(published))),
            None => (false, ("Alerted", human_time(at))),
        };
        let shown = alert.highlights.len().min(MAX_HIGHLIGHTS);
        Content {
            title,
            url: alert.item.url.and_then(link),
            feed,
            watchlist: alert.watchlist,
            terms: alert.terms,
            published,
            time,
            highlights: &alert.highlights[..shown],
            hidden: alert.highlights.len() - shown,
            summary: match short_summary(alert.item.summary) {
                summary if clean(summary).is_empty() => "",
                summary => summary,
            },
            grew: (alert.event == Event::StoryGrew).then_some(alert.story.feeds),
            also: Also::of(alert),
        }
    }
}

/// "Also in N outlets": the other outlets (distinct feeds) that carried the story, and a
/// few of their names.
pub(super) struct Also<'a> {
    /// How many: the story's distinct feeds but the alert's own.
    pub(super) outlets: u64,
    /// Distinct, non-blank feed names from the story's sightings, the alert's own feed left
    /// out, in the order seen; at most [`OUTLETS_SHOWN`].
    pub(super) names: Vec<&'a str>,
    /// Whether there are outlets beyond `names`: more names than shown, or outlets the
    /// sightings do not name (they hold at most `MAX_SIGHTINGS` items).
    pub(super) more: bool,
}

impl<'a> Also<'a> {
    fn of(alert: &'a Alert<'_>) -> Option<Also<'a>> {
        let outlets = alert.story.other_outlets();
        if outlets == 0 {
            return None;
        }
        let mut names: Vec<&str> = Vec::new();
        let mut more = false;
        for sighting in &alert.story.sightings {
            let name = sighting.feed.as_str();
            if name == alert.feed.name || clean(name).is_empty() || names.contains(&name) {
                continue;
            }
            if names.len() == OUTLETS_SHOWN {
                more = true;
                break;
            }
            names.push(name);
        }
        let named = u64::try_from(names.len()).unwrap_or(u64::MAX);
        Some(Also {
            outlets,
            more: more || named < outlets,
            names,
        })
    }

    /// `Also in 3 outlets`.
    pub(super) fn label(&self) -> String {
        format!("Also in {}", outlets(self.outlets))
    }
}

/// `1 outlet`, `3 outlets`.
pub(super) fn outlets(n: u64) -> String {
    let noun = if n == 1 { "outlet" } else { "outlets" };
    format!("{n} {noun}")
}

/// The heading of a `watchlist.story_grew` body: `Story grew: now reported by 5 outlets`.
pub(super) fn grew_heading(feeds: u64) -> String {
    format!("Story grew: now reported by {}", outlets(feeds))
}

/// The URL if a chat service will take it as a link: absolute http(s), printable ASCII
/// (the parse stage's URLs are serialized, so percent-encoded), not absurdly long.
pub(super) fn link(url: &str) -> Option<&str> {
    let rest = strip_prefix_ignore_case(url, "https://")
        .or_else(|| strip_prefix_ignore_case(url, "http://"))?;
    let usable = url.len() <= MAX_LINK_URL
        && url.bytes().all(|b| b.is_ascii_graphic())
        && !rest.is_empty()
        && !rest.starts_with('/');
    usable.then_some(url)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// An RFC 3339 time as `2026-11-27 23:40 UTC`; anything else as it came.
pub(super) fn display_time(published: &str) -> String {
    match DateTime::parse_from_rfc3339(published.trim()) {
        Ok(time) => human_time(time.to_utc()),
        Err(_) => published.to_string(),
    }
}

pub(super) fn human_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A dash for a value with nothing to show: Slack and Discord reject empty text.
pub(super) fn or_dash(text: String) -> String {
    if text.is_empty() { "—".into() } else { text }
}

pub(super) fn more_highlights(hidden: usize) -> String {
    let noun = if hidden == 1 {
        "highlight"
    } else {
        "highlights"
    };
    format!("{hidden} more {noun}{ELLIPSIS}")
}

/// `text` with every run of whitespace or control characters made one space, trimmed: feed text must not break a service's layout (a newline starting a Markdown
/// list or quote) nor waste its length budget.
pub(super) fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// How one service writes feed text: its escaping, and how it counts length.
#[derive(Clone, Copy)]
pub(super) struct Style {
    /// Writes one character as the service must see it; the flag is set for the first
    /// character of a line, where some characters start block markup.
    pub(super) escape: fn(char, bool, &mut String),
    /// Length of already escaped text in the units the limits are in.
    pub(super) measure: fn(&str) -> usize,
}

impl Style {
    pub(super) fn len(self, escaped: &str) -> usize {
        (self.measure)(escaped)
    }

    /// `text`, cleaned and escaped, in at most `max` units: whole when it fits, else cut
    /// between two escaped characters (never inside an escape) and ended with `…`.
    pub(super) fn fit(self, text: &str, max: usize) -> String {
        self.fit_from(text, max, true)
    }

    fn fit_from(self, text: &str, max: usize, line_start: bool) -> String {
        let mut out = String::new();
        // After each escaped character: (end in `out`, units so far).
        let mut ends = Vec::new();
        let mut units = 0;
        for (i, c) in clean(text).chars().enumerate() {
            let start = out.len();
            (self.escape)(c, line_start && i == 0, &mut out);
            units += self.len(&out[start..]);
            ends.push((out.len(), units));
        }
        if units <= max {
            return out;
        }
        let ellipsis = self.len(ELLIPSIS);
        let Some(room) = max.checked_sub(ellipsis) else {
            return String::new();
        };
        let keep = ends
            .iter()
            .rev()
            .find(|&&(_, units)| units <= room)
            .map_or(0, |&(end, _)| end);
        out.truncate(keep);
        out.truncate(out.trim_end().len());
        out.push_str(ELLIPSIS);
        out
    }

    /// `items` joined with `, ` in at most `max` units. Whole items while they fit, then
    /// `…`; only an item too long to fit alone is cut inside.
    pub(super) fn fit_list(self, items: &[String], max: usize) -> String {
        self.fit_list_more(items, false, max)
    }

    /// The other outlets' names as a list in at most `max` units, ending with `…` when
    /// there are more than it names; a dash when it names none.
    pub(super) fn outlet_names(self, also: &Also<'_>, max: usize) -> String {
        self.fit_list_more(&also.names, also.more, max)
    }

    /// [`Style::fit_list`], ending with `, …` also when every item fits if `more` says the
    /// list goes on beyond `items`.
    fn fit_list_more<S: AsRef<str>>(self, items: &[S], more: bool, max: usize) -> String {
        const SEP: &str = ", ";
        // (as given, escaped) for every item with something to show.
        let items: Vec<(&str, String)> = items
            .iter()
            .map(AsRef::as_ref)
            .enumerate()
            .map(|(i, item)| (item, self.fit_from(item, usize::MAX, i == 0)))
            .filter(|(_, escaped)| !escaped.is_empty())
            .collect();
        let Some((first_raw, first)) = items.first() else {
            return or_dash(String::new());
        };
        let all: Vec<&str> = items.iter().map(|(_, escaped)| escaped.as_str()).collect();
        let mut joined = all.join(SEP);
        let tail = self.len(SEP) + self.len(ELLIPSIS);
        if !more && self.len(&joined) <= max {
            return joined;
        }
        if more && self.len(&joined) + tail <= max {
            joined.push_str(SEP);
            joined.push_str(ELLIPSIS);
            return joined;
        }
        if self.len(first) + tail > max {
            return self.fit(first_raw, max);
        }
        let mut out = first.clone();
        let mut used = self.len(first);
        for (_, item) in &items[1..] {
            let step = self.len(SEP) + self.len(item);
            if used + step + tail > max {
                break;
            }
            out.push_str(SEP);
            out.push_str(item);
            used += step;
        }
        out.push_str(SEP);
        out.push_str(ELLIPSIS);
        out
    }
}

pub(super) fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

pub(super) fn plain(c: char, _line_start: bool, out: &mut String) {
    out.push(c);
}
