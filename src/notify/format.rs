//! The chat-service bodies of SPEC §5: an alert as a Slack message (Block Kit), a Discord
//! message (one embed) or a Microsoft Teams message (an Adaptive Card).
//!
//! Input: the same [`Alert`] the `json` body is built from, and the alert's time. Output:
//! the body to POST to that service's incoming webhook, with the `json` body's content:
//! the item's title as a link, the feed, the watch-list, the terms, the highlights'
//! snippets and the published time (the alert's time when the item has none). Like the
//! `json` body it is rendered once and frozen in the outbox row, so `at` is passed in rather
//! than read from the clock.
//!
//! Every body is valid for its service whatever the feed sends. The services reject a
//! message that breaks one of their limits as a whole (Slack `invalid_blocks`, Discord 400,
//! Teams 413), and a rejected body fails identically on every retry, so the alert would be
//! dead-lettered instead of read. So each piece of feed text is cleaned (every run of
//! whitespace or control characters made one space), escaped for the service's markup, and
//! cut to a length well inside the limit on a character boundary, ending with `…`, never
//! inside an escape sequence or a link. Lengths are counted in UTF-16 code units, never
//! fewer than characters, so a limit holds however the service counts; the Teams body is
//! measured in bytes, both as UTF-8 and as UTF-16.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::matcher::{Highlight, MAX_HIGHLIGHTS};
use crate::notify::payload::{Alert, rfc3339, short_summary};

/// Marks text that was cut.
const ELLIPSIS: &str = "…";
/// Longest item URL made into a link. Longer ones (the parse stage allows 4 KiB) would eat
/// a Slack section or a Teams card by themselves; such an item is shown without a link.
const MAX_LINK_URL: usize = 2048;
/// Shown when an item has no title.
const UNTITLED: &str = "(untitled)";

// Our own caps, in the service's length units: far inside every service limit, so that a
// whole alert stays readable and inside the message-wide limits too.
const TITLE_MAX: usize = 250;
const NAME_MAX: usize = 200;
const TERMS_MAX: usize = 1000;
const TERM_MAX: usize = 100;
const SNIPPET_MAX: usize = 500;
const TIME_MAX: usize = 64;

/// Slack limits (Block Kit reference): section text, context element text, context
/// elements per block, blocks per message. The top-level `text` may hold 40,000
/// characters, but it is the notification preview: we keep it to a title's length.
const SLACK_SECTION_MAX: usize = 3000;
const SLACK_CONTEXT_TEXT_MAX: usize = 2000;
const SLACK_CONTEXT_ELEMENTS_MAX: usize = 10;
const SLACK_BLOCKS_MAX: usize = 50;
const SLACK_FALLBACK_MAX: usize = 300;

/// Discord embed limits (Message resource, "Embed Limits").
const DISCORD_TITLE_MAX: usize = 256;
const DISCORD_DESCRIPTION_MAX: usize = 4096;
const DISCORD_FIELD_VALUE_MAX: usize = 1024;
const DISCORD_EMBED_TOTAL_MAX: usize = 6000;
const DISCORD_FOOTER: &str = "wirewatch";
/// The embed's side bar.
const DISCORD_COLOR: u32 = 0x00C0_392B;

/// Teams rejects an incoming-webhook message over 28 KB, and reports put the real edge
/// lower (about 21 KB) and do not say whether bytes or UTF-16 units are counted. The body
/// is kept under this many bytes both ways: as UTF-8, and as UTF-16 (two bytes a unit).
const TEAMS_MAX_BYTES: usize = 20_000;
/// Caps for Teams text, in [`teams_weight`] units (about two per character).
const TEAMS_TITLE_MAX: usize = 2 * TITLE_MAX;
const TEAMS_NAME_MAX: usize = 2 * NAME_MAX;
const TEAMS_TERMS_MAX: usize = 2 * TERMS_MAX;
const TEAMS_TERM_MAX: usize = 2 * TERM_MAX;
const TEAMS_SNIPPET_MAX: usize = 2 * SNIPPET_MAX;
const TEAMS_TIME_MAX: usize = 2 * TIME_MAX;

/// The alert as a Slack incoming-webhook message: a fallback `text` for notifications,
/// and `blocks`: the title linked to the story, a context line with feed, watch-list,
/// terms and time, then a section per highlight (or the summary when there is none).
pub fn slack(alert: &Alert<'_>, at: DateTime<Utc>) -> Result<String, serde_json::Error> {
    let content = Content::of(alert, at);
    let mut blocks = Vec::with_capacity(MAX_HIGHLIGHTS + 3);

    let title = match content.url.map(slack_url) {
        Some(url) if SLACK.len(&url) <= MAX_LINK_URL => {
            let text = SLACK.fit(content.title, TITLE_MAX);
            format!("<{url}|{text}>")
        }
        _ => SLACK.fit(content.title, TITLE_MAX),
    };
    blocks.push(slack_section(title));

    let context = vec![
        format!("*Feed:* {}", or_dash(SLACK.fit(content.feed, NAME_MAX))),
        format!(
            "*Watch-list:* {}",
            or_dash(SLACK.fit(content.watchlist, NAME_MAX))
        ),
        format!("*Terms:* {}", SLACK.fit_list(content.terms, TERMS_MAX)),
        format!(
            "*{}:* {}",
            content.time.0,
            or_dash(SLACK.fit(&content.time.1, TIME_MAX))
        ),
    ];
    debug_assert!(context.len() <= SLACK_CONTEXT_ELEMENTS_MAX);
    debug_assert!(
        context
            .iter()
            .all(|text| utf16_len(text) <= SLACK_CONTEXT_TEXT_MAX)
    );
    blocks.push(json!({
        "type": "context",
        "elements": context.into_iter().map(slack_mrkdwn).collect::<Vec<_>>(),
    }));

    for highlight in content.highlights {
        blocks.push(slack_section(format!(
            "*{}* · _{}_\n{}",
            SLACK.fit(&highlight.term, TERM_MAX),
            highlight.field,
            SLACK.fit(&highlight.snippet, SNIPPET_MAX),
        )));
    }
    if content.hidden > 0 {
        blocks.push(json!({
            "type": "context",
            "elements": [slack_mrkdwn(more_highlights(content.hidden))],
        }));
    } else if content.highlights.is_empty() && !content.summary.is_empty() {
        blocks.push(slack_section(SLACK.fit(content.summary, SNIPPET_MAX)));
    }
    debug_assert!(blocks.len() <= SLACK_BLOCKS_MAX);

    let fallback = format!("{}: {}", content.watchlist, content.title);
    serde_json::to_string(&json!({
        "text": SLACK.fit(&fallback, SLACK_FALLBACK_MAX),
        "blocks": blocks,
    }))
}

/// The alert as a Discord execute-webhook body: one embed whose title links to the story,
/// the highlights in the description, feed, watch-list, published time and terms as
/// fields, and the alert's time as the embed's timestamp. Mentions are disabled, so feed
/// text saying `@everyone` pings no one.
pub fn discord(alert: &Alert<'_>, at: DateTime<Utc>) -> Result<String, serde_json::Error> {
    let content = Content::of(alert, at);
    let title = DISCORD.fit(content.title, TITLE_MAX.min(DISCORD_TITLE_MAX));

    let mut fields = vec![
        ("Feed", or_dash(DISCORD.fit(content.feed, NAME_MAX)), true),
        (
            "Watch-list",
            or_dash(DISCORD.fit(content.watchlist, NAME_MAX)),
            true,
        ),
    ];
    if content.published {
        let published = or_dash(DISCORD.fit(&content.time.1, TIME_MAX));
        fields.push(("Published", published, true));
    }
    fields.push((
        "Terms",
        DISCORD.fit_list(content.terms, TERMS_MAX.min(DISCORD_FIELD_VALUE_MAX)),
        false,
    ));

    // Everything but the description counts towards the embed total first; the
    // description gets what is left.
    let used = DISCORD.len(&title)
        + DISCORD.len(DISCORD_FOOTER)
        + fields
            .iter()
            .map(|(name, value, _)| DISCORD.len(name) + DISCORD.len(value))
            .sum::<usize>();
    let room = DISCORD_DESCRIPTION_MAX.min(DISCORD_EMBED_TOTAL_MAX.saturating_sub(used));
    let description = discord_description(&content, room);

    let mut embed = json!({
        "title": title,
        "color": DISCORD_COLOR,
        "fields": fields
            .into_iter()
            .map(|(name, value, inline)| json!({"name": name, "value": value, "inline": inline}))
            .collect::<Vec<_>>(),
        "footer": {"text": DISCORD_FOOTER},
        "timestamp": rfc3339(at),
    });
    if let Some(url) = content.url {
        embed["url"] = json!(url);
    }
    if !description.is_empty() {
        embed["description"] = json!(description);
    }
    serde_json::to_string(&json!({
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }))
}

/// The alert as a Teams incoming-webhook (or Workflows) message: an Adaptive Card with the
/// title (a link when the item has a URL), a line each for feed, watch-list, terms and
/// time, a line per highlight, and an "Open story" button when the item has a URL.
///
/// Feed text goes into `TextRun`s, which Teams never reads as Markdown: Teams clients
/// disagree on Markdown escapes, so escaping could not be trusted to show a title as sent.
pub fn teams(alert: &Alert<'_>, at: DateTime<Utc>) -> Result<String, serde_json::Error> {
    let content = Content::of(alert, at);
    let mut title = json!({
        "type": "TextRun",
        "text": TEAMS.fit(content.title, TEAMS_TITLE_MAX),
        "size": "Medium",
        "weight": "Bolder",
    });
    if let Some(url) = content.url {
        title["selectAction"] = json!({"type": "Action.OpenUrl", "url": url});
    }
    let mut head = vec![json!({"type": "RichTextBlock", "inlines": [title]})];
    let facts = [
        ("Feed", or_dash(TEAMS.fit(content.feed, TEAMS_NAME_MAX))),
        (
            "Watch-list",
            or_dash(TEAMS.fit(content.watchlist, TEAMS_NAME_MAX)),
        ),
        ("Terms", TEAMS.fit_list(content.terms, TEAMS_TERMS_MAX)),
        (
            content.time.0,
            or_dash(TEAMS.fit(&content.time.1, TEAMS_TIME_MAX)),
        ),
    ];
    for (i, (label, value)) in facts.into_iter().enumerate() {
        head.push(json!({
            "type": "RichTextBlock",
            "spacing": if i == 0 { "Medium" } else { "None" },
            "inlines": [
                {"type": "TextRun", "text": format!("{label}: "), "weight": "Bolder"},
                {"type": "TextRun", "text": value},
            ],
        }));
    }
    let mut lines: Vec<Value> = content
        .highlights
        .iter()
        .map(|highlight| {
            json!({
                "type": "RichTextBlock",
                "inlines": [
                    {"type": "TextRun", "text": TEAMS.fit(&highlight.term, TEAMS_TERM_MAX), "weight": "Bolder"},
                    {"type": "TextRun", "text": format!(" · {}: ", highlight.field), "isSubtle": true},
                    {"type": "TextRun", "text": TEAMS.fit(&highlight.snippet, TEAMS_SNIPPET_MAX)},
                ],
            })
        })
        .collect();
    if lines.is_empty() && !content.summary.is_empty() {
        lines.push(json!({
            "type": "RichTextBlock",
            "inlines": [{"type": "TextRun", "text": TEAMS.fit(content.summary, TEAMS_SNIPPET_MAX)}],
        }));
    }

    // The head (and a summary line) stays far below the size limit by the caps above:
    // highlights are dropped from the end until the whole body fits.
    let mut hidden = content.hidden;
    loop {
        let mut body = head.clone();
        body.extend(lines.iter().cloned());
        if hidden > 0 {
            body.push(json!({
                "type": "TextBlock",
                "text": more_highlights(hidden),
                "isSubtle": true,
                "wrap": true,
            }));
        }
        let mut card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
        });
        if let Some(url) = content.url {
            card["actions"] =
                json!([{"type": "Action.OpenUrl", "title": "Open story", "url": url}]);
        }
        let message = serde_json::to_string(&json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": card,
            }],
        }))?;
        if teams_size(&message) <= TEAMS_MAX_BYTES
            || content.highlights.is_empty()
            || lines.pop().is_none()
        {
            return Ok(message);
        }
        hidden += 1;
    }
}

/// What every format shows, taken from the alert once.
struct Content<'a> {
    title: &'a str,
    /// The item's URL when it can be a link.
    url: Option<&'a str>,
    /// The feed's title, else its configured name.
    feed: &'a str,
    watchlist: &'a str,
    terms: &'a [String],
    /// Whether `time` is the published time (else it is the alert's time).
    published: bool,
    /// Label and text: ("Published", item time) or ("Alerted", alert time).
    time: (&'static str, String),
    /// At most [`MAX_HIGHLIGHTS`].
    highlights: &'a [Highlight],
    /// Highlights beyond those shown.
    hidden: usize,
    summary: &'a str,
}

impl<'a> Content<'a> {
    fn of(alert: &'a Alert<'_>, at: DateTime<Utc>) -> Content<'a> {
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
        }
    }
}

/// The URL if a chat service will take it as a link: absolute http(s), printable ASCII
/// (the parse stage's URLs are serialized, so percent-encoded), not absurdly long.
fn link(url: &str) -> Option<&str> {
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
fn display_time(published: &str) -> String {
    match DateTime::parse_from_rfc3339(published.trim()) {
        Ok(time) => human_time(time.to_utc()),
        Err(_) => published.to_string(),
    }
}

fn human_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A dash for a value with nothing to show: Slack and Discord reject empty text.
fn or_dash(text: String) -> String {
    if text.is_empty() { "—".into() } else { text }
}

fn more_highlights(hidden: usize) -> String {
    let noun = if hidden == 1 {
        "highlight"
    } else {
        "highlights"
    };
    format!("{hidden} more {noun}{ELLIPSIS}")
}

/// `text` with every run of whitespace or control characters made one space, trimmed: feed text must not break a service's layout (a newline starting a Markdown
/// list or quote) nor waste its length budget.
fn clean(text: &str) -> String {
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
struct Style {
    /// Writes one character as the service must see it; the flag is set for the first
    /// character of a line, where some characters start block markup.
    escape: fn(char, bool, &mut String),
    /// Length of already escaped text in the units the limits are in.
    measure: fn(&str) -> usize,
}

const SLACK: Style = Style {
    escape: slack_escape,
    measure: utf16_len,
};
const DISCORD: Style = Style {
    escape: discord_escape,
    measure: utf16_len,
};
const TEAMS: Style = Style {
    escape: plain,
    measure: teams_weight,
};

impl Style {
    fn len(self, escaped: &str) -> usize {
        (self.measure)(escaped)
    }

    /// `text`, cleaned and escaped, in at most `max` units: whole when it fits, else cut
    /// between two escaped characters (never inside an escape) and ended with `…`.
    fn fit(self, text: &str, max: usize) -> String {
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
    fn fit_list(self, items: &[String], max: usize) -> String {
        const SEP: &str = ", ";
        // (as given, escaped) for every item with something to show.
        let items: Vec<(&str, String)> = items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.as_str(), self.fit_from(item, usize::MAX, i == 0)))
            .filter(|(_, escaped)| !escaped.is_empty())
            .collect();
        let Some((first_raw, first)) = items.first() else {
            return or_dash(String::new());
        };
        let all: Vec<&str> = items.iter().map(|(_, escaped)| escaped.as_str()).collect();
        let joined = all.join(SEP);
        if self.len(&joined) <= max {
            return joined;
        }
        let tail = self.len(SEP) + self.len(ELLIPSIS);
        if self.len(first) + tail > max {
            return self.fit(first_raw, max);
        }
        let mut out = first.clone();
        let mut used = self.len(first);
        for (_, item) in &items[1..] {
            let more = self.len(SEP) + self.len(item);
            if used + more + tail > max {
                break;
            }
            out.push_str(SEP);
            out.push_str(item);
            used += more;
        }
        out.push_str(SEP);
        out.push_str(ELLIPSIS);
        out
    }
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// An upper bound of what a character adds to a JSON body, in bytes, counted both as
/// UTF-8 and as UTF-16: `"` and `\` are escaped by JSON, control characters never reach
/// here (see [`clean`]).
fn teams_weight(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let escaped = if matches!(c, '"' | '\\') { 2 } else { 1 };
            (escaped - 1 + c.len_utf8()).max(2 * (escaped - 1 + c.len_utf16()))
        })
        .sum()
}

/// The size Teams may see, whichever way it counts: UTF-8 bytes or UTF-16 bytes.
fn teams_size(body: &str) -> usize {
    body.len().max(2 * utf16_len(body))
}

fn plain(c: char, _line_start: bool, out: &mut String) {
    out.push(c);
}

/// Slack's mrkdwn control characters, escaped as Slack documents; Slack has no escape
/// for `*`, `_` or `~`, which at worst change emphasis.
fn slack_escape(c: char, _line_start: bool, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

/// A URL inside `<url|text>`: `|` would end the URL early and let the text after it pose
/// as the link's label; `&` is escaped as everywhere in mrkdwn.
fn slack_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '|' => out.push_str("%7C"),
            c => out.push(c),
        }
    }
    out
}

fn slack_mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

/// A section; `verbatim` keeps Slack from turning feed text into mentions or channel
/// links (our own `<url|title>` still works).
fn slack_section(text: String) -> Value {
    debug_assert!(utf16_len(&text) <= SLACK_SECTION_MAX);
    json!({"type": "section", "text": slack_mrkdwn(text)})
}

/// Discord Markdown: a backslash before any punctuation shows it literally, so every
/// character that can start emphasis, code, spoilers, quotes, masked links or `<@…>`
/// mentions is escaped, and `#`, `-`, `+` where they would start a heading or a list.
fn discord_escape(c: char, line_start: bool, out: &mut String) {
    let special = matches!(
        c,
        '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '[' | ']'
    ) || (line_start && matches!(c, '#' | '-' | '+'));
    if special {
        out.push('\\');
    }
    out.push(c);
}

/// The highlights, in at most `room` units: each `**term** · *field*` over its snippet,
/// as many as fit; if any is left out the description ends with a note ending in `…`.
fn discord_description(content: &Content<'_>, room: usize) -> String {
    const SEP: &str = "\n\n";
    /// A snippet cut shorter than this says nothing; stop instead.
    const MIN_SNIPPET: usize = 24;
    if content.highlights.is_empty() {
        return DISCORD.fit(content.summary, room.min(SNIPPET_MAX));
    }
    let total = content.highlights.len() + content.hidden;
    // Room kept for the note, were it needed.
    let reserve = DISCORD.len(SEP) + DISCORD.len(&more_highlights(total));
    let mut out = String::new();
    let mut used = 0;
    let mut shown = 0;
    for highlight in content.highlights {
        let head = format!(
            "{}**{}** · *{}*\n",
            if out.is_empty() { "" } else { SEP },
            DISCORD.fit(&highlight.term, TERM_MAX),
            highlight.field,
        );
        let left = room.saturating_sub(used + reserve + DISCORD.len(&head));
        if left < MIN_SNIPPET {
            break;
        }
        let snippet = DISCORD.fit(&highlight.snippet, left.min(SNIPPET_MAX));
        used += DISCORD.len(&head) + DISCORD.len(&snippet);
        out.push_str(&head);
        out.push_str(&snippet);
        shown += 1;
    }
    if shown < total {
        if !out.is_empty() {
            out.push_str(SEP);
        }
        out.push_str(&more_highlights(total - shown));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Field;
    use crate::notify::payload::{FeedPayload, ItemPayload};

    /// Golden bodies live in the crate's `tests/golden/`.
    const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
    const UPDATE_GOLDEN: &str = "WIREWATCH_UPDATE_GOLDEN";

    type Render = fn(&Alert<'_>, DateTime<Utc>) -> Result<String, serde_json::Error>;
    const FORMATS: [(&str, Render); 3] = [("slack", slack), ("discord", discord), ("teams", teams)];

    /// Owns what an [`Alert`] borrows.
    struct Fixture {
        title: String,
        url: Option<String>,
        published: Option<String>,
        summary: String,
        feed_name: String,
        feed_title: Option<String>,
        watchlist: String,
        terms: Vec<String>,
        highlights: Vec<Highlight>,
    }

    impl Fixture {
        fn alert(&self) -> Alert<'_> {
            Alert {
                alert_id: "01936f0e-7c1a-7d3e-9b2a-5f4c3d2e1f00",
                watchlist: &self.watchlist,
                terms: &self.terms,
                story_id: "42".into(),
                item: ItemPayload {
                    id: "guid:story-42",
                    title: &self.title,
                    url: self.url.as_deref(),
                    published: self.published.clone(),
                    summary: &self.summary,
                    authors: &[],
                    categories: &[],
                    language: None,
                },
                feed: FeedPayload {
                    name: &self.feed_name,
                    url: "https://feeds.example.org/rss",
                    title: self.feed_title.as_deref(),
                },
                highlights: &self.highlights,
            }
        }
    }

    fn highlight(field: Field, term: &str, snippet: &str) -> Highlight {
        Highlight {
            field,
            term: term.into(),
            snippet: snippet.into(),
            start: 0,
            end: term.len(),
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T23:40:00Z")
            .unwrap()
            .to_utc()
    }

    fn english() -> Fixture {
        Fixture {
            title: "Iran and China sign 25-year pact on the SCO's sidelines".into(),
            url: Some(
                "https://news.example.org/world/2026/11/27/iran-china-pact?ref=rss&utm_source=feed"
                    .into(),
            ),
            published: Some("2026-11-27T23:12:00Z".into()),
            summary: "Tehran and Beijing signed a 25-year cooperation pact.".into(),
            feed_name: "example-world".into(),
            feed_title: Some("Example News: World".into()),
            watchlist: "iran-china".into(),
            terms: vec!["China".into(), "Iran".into(), "SCO".into()],
            highlights: vec![
                highlight(
                    Field::Title,
                    "Iran",
                    "Iran and China sign 25-year pact on the SCO's sidelines",
                ),
                highlight(
                    Field::Summary,
                    "China",
                    "…officials said the deal (worth <$400bn> in oil & gas, ports and *5G*) binds China to Iran_s energy_sector…",
                ),
            ],
        }
    }

    fn multilingual() -> Fixture {
        Fixture {
            title: "ایران و چین سند همکاری ۲۵ ساله را در حاشیهٔ نشست شانگهای امضا کردند".into(),
            url: Some("https://www.example.ir/fa/news/1403/%D8%A7%DB%8C%D8%B1%D8%A7%D9%86".into()),
            published: Some("2026-11-28T03:30:00+03:30".into()),
            summary: "中国外交部发言人表示，中国与伊朗将在上海合作组织框架下深化合作。".into(),
            feed_name: "example-fa".into(),
            feed_title: Some("خبرگزاری نمونه".into()),
            watchlist: "iran-china".into(),
            terms: vec!["ایران".into(), "中国".into()],
            highlights: vec![
                highlight(
                    Field::Title,
                    "ایران",
                    "ایران و چین سند همکاری ۲۵ ساله را در حاشیهٔ نشست شانگهای امضا کردند",
                ),
                highlight(
                    Field::Summary,
                    "中国",
                    "中国外交部发言人表示，中国与伊朗将在上海合作组织框架下深化合作。",
                ),
            ],
        }
    }

    fn bare() -> Fixture {
        Fixture {
            title: "Talks on the JCPOA resume in Vienna".into(),
            url: None,
            published: None,
            summary: String::new(),
            feed_name: "wire-desk".into(),
            feed_title: None,
            watchlist: "jcpoa".into(),
            terms: vec!["JCPOA".into()],
            highlights: vec![highlight(Field::Categories, "JCPOA", "JCPOA")],
        }
    }

    /// The worst a feed and a config can do at once.
    fn huge() -> Fixture {
        let nasty = "ایران*_`<b>&amp;|@everyone 中国~[x](y)\\ ";
        let long = |chars: usize| nasty.chars().cycle().take(chars).collect::<String>();
        Fixture {
            title: long(10_000),
            url: Some(format!("https://example.org/{}?a=1&b=|2", "x".repeat(1900))),
            published: Some(long(500)),
            summary: long(5_000),
            feed_name: long(1_000),
            feed_title: Some(long(1_000)),
            watchlist: long(1_000),
            terms: (0..200).map(|i| format!("ترم{i}*_<&>|@everyone")).collect(),
            highlights: (0..16)
                .map(|i| {
                    highlight(
                        Field::ALL[i % 4],
                        &format!("{}{i}", long(300)),
                        &long(5_000),
                    )
                })
                .collect(),
        }
    }

    fn cases() -> [(&'static str, Fixture); 3] {
        [
            ("english", english()),
            ("multilingual", multilingual()),
            ("bare", bare()),
        ]
    }

    fn parse(body: &str) -> Value {
        serde_json::from_str(body).expect("the body is JSON")
    }

    fn chars(value: &Value) -> usize {
        let text = value.as_str().expect("a string");
        assert!(utf16_len(text) >= text.chars().count());
        utf16_len(text)
    }

    /// Every Slack limit; `text` objects are never empty.
    fn assert_slack_limits(body: &Value) {
        assert!(chars(&body["text"]) <= SLACK_FALLBACK_MAX);
        let blocks = body["blocks"].as_array().expect("blocks");
        assert!(!blocks.is_empty() && blocks.len() <= SLACK_BLOCKS_MAX);
        for block in blocks {
            match block["type"].as_str() {
                Some("section") => {
                    let n = chars(&block["text"]["text"]);
                    assert!(n > 0 && n <= SLACK_SECTION_MAX, "section of {n}");
                }
                Some("header") => assert!(chars(&block["text"]["text"]) <= 150),
                Some("context") => {
                    let elements = block["elements"].as_array().expect("elements");
                    assert!(!elements.is_empty() && elements.len() <= SLACK_CONTEXT_ELEMENTS_MAX);
                    for element in elements {
                        let n = chars(&element["text"]);
                        assert!(n > 0 && n <= SLACK_CONTEXT_TEXT_MAX, "context of {n}");
                    }
                }
                other => panic!("unexpected block {other:?}"),
            }
        }
    }

    /// Every Discord limit, and mentions off.
    fn assert_discord_limits(body: &Value) {
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
        if let Some(content) = body.get("content") {
            assert!(chars(content) <= 2000);
        }
        let embeds = body["embeds"].as_array().expect("embeds");
        assert_eq!(embeds.len(), 1);
        let embed = &embeds[0];
        let mut total = 0;
        let title = chars(&embed["title"]);
        assert!(title > 0 && title <= DISCORD_TITLE_MAX);
        total += title;
        if let Some(description) = embed.get("description") {
            let n = chars(description);
            assert!(n > 0 && n <= DISCORD_DESCRIPTION_MAX);
            total += n;
        }
        let fields = embed["fields"].as_array().expect("fields");
        assert!(fields.len() <= 25);
        for field in fields {
            let (name, value) = (chars(&field["name"]), chars(&field["value"]));
            assert!(name > 0 && name <= 256 && value > 0 && value <= DISCORD_FIELD_VALUE_MAX);
            total += name + value;
        }
        let footer = chars(&embed["footer"]["text"]);
        assert!(footer <= 2048);
        total += footer;
        assert!(total <= DISCORD_EMBED_TOTAL_MAX, "embed total {total}");
        let timestamp = embed["timestamp"].as_str().expect("timestamp");
        assert!(DateTime::parse_from_rfc3339(timestamp).is_ok());
        if let Some(url) = embed.get("url") {
            assert!(link(url.as_str().expect("url")).is_some());
        }
    }

    /// The Teams envelope, the size limit, and the action exactly when there is a URL.
    fn assert_teams_limits(body: &str, has_url: bool) {
        assert!(body.len() <= 28 * 1024 && teams_size(body) <= TEAMS_MAX_BYTES);
        let value = parse(body);
        assert_eq!(value["type"], "message");
        let attachment = &value["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(attachment["contentUrl"], Value::Null);
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        assert!(!card["body"].as_array().expect("body").is_empty());
        assert_eq!(card.get("actions").is_some(), has_url);
        if has_url {
            assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        }
    }

    fn assert_limits(format: &str, body: &str, has_url: bool) {
        match format {
            "slack" => assert_slack_limits(&parse(body)),
            "discord" => assert_discord_limits(&parse(body)),
            _ => assert_teams_limits(body, has_url),
        }
    }

    #[test]
    fn every_format_matches_its_golden_file() {
        let update = std::env::var_os(UPDATE_GOLDEN).is_some_and(|v| v == "1");
        for (case, fixture) in cases() {
            let alert = fixture.alert();
            for (format, render) in FORMATS {
                let body = render(&alert, at()).unwrap();
                assert_limits(format, &body, fixture.url.is_some());
                let actual = parse(&body);
                let path = format!("{GOLDEN_DIR}/{format}-{case}.json");
                if update {
                    std::fs::create_dir_all(GOLDEN_DIR).unwrap();
                    let pretty = serde_json::to_string_pretty(&actual).unwrap();
                    std::fs::write(&path, pretty + "\n").unwrap();
                    continue;
                }
                let golden = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{path}: {e}; run with {UPDATE_GOLDEN}=1"));
                let expected: Value = serde_json::from_str(&golden).unwrap();
                assert_eq!(
                    actual, expected,
                    "{path} differs; run with {UPDATE_GOLDEN}=1 and review"
                );
            }
        }
    }

    #[test]
    fn huge_alerts_stay_within_every_limit_of_every_format() {
        let fixture = huge();
        let alert = fixture.alert();
        for (format, render) in FORMATS {
            let body = render(&alert, at()).unwrap();
            assert_limits(format, &body, true);
        }
    }

    #[test]
    fn huge_slack_text_is_cut_with_an_ellipsis_and_escapes_intact() {
        let fixture = huge();
        let body = parse(&slack(&fixture.alert(), at()).unwrap());
        let title = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(title.starts_with("<https://example.org/") && title.ends_with("…>"));
        assert!(title.contains("?a=1&amp;b=%7C2|"), "{title}");
        assert!(body["text"].as_str().unwrap().ends_with('…'));
        for element in body["blocks"][1]["elements"].as_array().unwrap() {
            assert!(element["text"].as_str().unwrap().ends_with('…'));
        }
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 2 + 16);
        for block in &blocks[2..] {
            let text = block["text"]["text"].as_str().unwrap();
            assert!(text.ends_with('…'));
            // Raw `<`/`>` only in our own link markup, every `&` starts an escape.
            assert!(!text.contains('<') && !text.contains('>'));
            let escapes = ["&amp;", "&lt;", "&gt;"];
            assert!(
                text.match_indices('&')
                    .all(|(i, _)| escapes.iter().any(|e| text[i..].starts_with(e)))
            );
        }
    }

    /// Checks that `text` is escaped Discord text: every special character is escaped.
    fn assert_discord_escaped(text: &str) {
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                let next = chars.next().expect("an escape is never cut in half");
                assert!(next.is_ascii_punctuation(), "{text}");
            } else {
                assert!(!"*_~`|><[]".contains(c), "unescaped {c} in {text}");
            }
        }
    }

    #[test]
    fn huge_discord_text_is_cut_with_an_ellipsis_and_escapes_intact() {
        let fixture = huge();
        let body = parse(&discord(&fixture.alert(), at()).unwrap());
        let embed = &body["embeds"][0];
        let title = embed["title"].as_str().unwrap();
        assert!(title.ends_with('…'));
        assert_discord_escaped(title);
        for field in embed["fields"].as_array().unwrap() {
            let value = field["value"].as_str().unwrap();
            assert!(value.ends_with('…'), "{value}");
            assert_discord_escaped(value);
        }
        assert!(embed["description"].as_str().unwrap().ends_with('…'));
        assert!(embed["url"].as_str().unwrap().contains("&b=|2"));
    }

    #[test]
    fn huge_teams_text_is_cut_with_an_ellipsis() {
        let fixture = huge();
        let body = parse(&teams(&fixture.alert(), at()).unwrap());
        let blocks = body["attachments"][0]["content"]["body"]
            .as_array()
            .unwrap();
        let title = blocks[0]["inlines"][0]["text"].as_str().unwrap();
        assert!(title.ends_with('…'));
        for fact in &blocks[1..5] {
            assert!(fact["inlines"][1]["text"].as_str().unwrap().ends_with('…'));
        }
        // Some highlights fit, the rest are counted in a note.
        let last = blocks.last().unwrap();
        assert_eq!(last["type"], "TextBlock");
        assert!(last["text"].as_str().unwrap().ends_with("more highlights…"));
        assert!(blocks.len() > 6, "at least one highlight shown");
        for line in &blocks[5..blocks.len() - 1] {
            assert!(line["inlines"][2]["text"].as_str().unwrap().ends_with('…'));
        }
    }

    #[test]
    fn blank_feed_text_still_makes_valid_bodies() {
        let fixture = Fixture {
            title: " \n ".into(),
            url: None,
            published: Some("  ".into()),
            summary: "\t".into(),
            feed_name: String::new(),
            feed_title: Some(" ".into()),
            watchlist: String::new(),
            terms: vec![" ".into()],
            highlights: Vec::new(),
        };
        let alert = fixture.alert();
        for (format, render) in FORMATS {
            assert_limits(format, &render(&alert, at()).unwrap(), false);
        }
        let body = parse(&discord(&alert, at()).unwrap());
        assert_eq!(body["embeds"][0]["title"], UNTITLED);
        assert!(body["embeds"][0].get("description").is_none());
    }

    #[test]
    fn a_full_match_of_ordinary_snippets_shows_every_highlight() {
        // The matcher's most: 16 highlights of 160 characters.
        let mut fixture = multilingual();
        let snippet: String = "ایران و چین ".chars().cycle().take(159).collect();
        fixture.highlights = (0..MAX_HIGHLIGHTS)
            .map(|i| highlight(Field::Content, "ایران", &format!("{snippet}{i}")))
            .collect();
        let alert = fixture.alert();
        let slack = parse(&slack(&alert, at()).unwrap());
        assert_eq!(
            slack["blocks"].as_array().unwrap().len(),
            2 + MAX_HIGHLIGHTS
        );
        let discord = parse(&discord(&alert, at()).unwrap());
        let description = discord["embeds"][0]["description"].as_str().unwrap();
        assert_eq!(description.matches("**ایران**").count(), MAX_HIGHLIGHTS);
        assert!(!description.contains("more highlight"));
        let teams = teams(&alert, at()).unwrap();
        assert_teams_limits(&teams, true);
        assert_eq!(teams.matches(" · content: ").count(), MAX_HIGHLIGHTS);
        assert!(!teams.contains("more highlight"));
    }

    #[test]
    fn discord_never_lets_feed_text_mention_anyone() {
        let mut fixture = english();
        fixture.title = "@everyone <@123> look".into();
        let body = parse(&discord(&fixture.alert(), at()).unwrap());
        assert_eq!(body["allowed_mentions"]["parse"], json!([]));
        assert_eq!(body["embeds"][0]["title"], "@everyone \\<@123\\> look");
    }

    #[test]
    fn discord_escapes_unescape_to_the_original_text() {
        let text = "# *bold* _it_ ~s~ `c` ||sp|| > q [l](u) \\ a-b #x";
        let escaped = DISCORD.fit(text, usize::MAX);
        assert_discord_escaped(&escaped);
        let mut unescaped = String::new();
        let mut chars = escaped.chars();
        while let Some(c) = chars.next() {
            unescaped.push(if c == '\\' { chars.next().unwrap() } else { c });
        }
        assert_eq!(unescaped, text);
        assert!(escaped.starts_with("\\# ") && escaped.ends_with(" #x"));
    }

    #[test]
    fn cuts_fall_between_escapes_never_inside_one() {
        // `&` is five units escaped: at every budget the cut lands before or after one.
        let full = SLACK.fit("ab&&&&", usize::MAX);
        let boundaries = [0, 1, 2, 7, 12, 17, 22];
        for max in 1..full.len() {
            let cut = SLACK.fit("ab&&&&", max);
            assert!(utf16_len(&cut) <= max, "{max}: {cut}");
            let kept = cut.strip_suffix('…').expect("a cut ends with …");
            assert!(
                full.starts_with(kept) && boundaries.contains(&kept.len()),
                "{max}: {cut}"
            );
        }
    }

    #[test]
    fn cuts_count_characters_not_bytes_and_drop_trailing_space() {
        assert_eq!(DISCORD.fit("ایران و چین", 6), "ایران…");
        assert_eq!(DISCORD.fit("中国外交部", 3), "中国…");
        // A character outside the BMP is two UTF-16 units.
        assert_eq!(DISCORD.fit("😀😀😀", 4), "😀…");
        assert_eq!(DISCORD.fit("  a \n\t b\u{7}  ", 10), "a b");
    }

    #[test]
    fn term_lists_are_cut_between_terms() {
        let terms: Vec<String> = ["China", "Iran", "SCO", "JCPOA"].map(String::from).to_vec();
        assert_eq!(SLACK.fit_list(&terms, 100), "China, Iran, SCO, JCPOA");
        assert_eq!(SLACK.fit_list(&terms, 16), "China, Iran, …");
        assert_eq!(SLACK.fit_list(&terms, 4), "Chi…");
        assert_eq!(SLACK.fit_list(&[], 4), "—");
    }

    #[test]
    fn only_absolute_printable_http_urls_become_links() {
        assert!(link("https://example.org/a?b=c").is_some());
        assert!(link("HTTP://example.org").is_some());
        assert!(link("javascript:alert(1)").is_none());
        assert!(link("https:///path").is_none());
        assert!(link("https://exa mple.org").is_none());
        assert!(link(&format!("https://example.org/{}", "a".repeat(MAX_LINK_URL))).is_none());
    }

    #[test]
    fn an_item_without_a_usable_url_has_no_link_anywhere() {
        let mut fixture = english();
        fixture.url = Some("ftp://example.org/file".into());
        let alert = fixture.alert();
        let slack = parse(&slack(&alert, at()).unwrap());
        assert!(
            !slack["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains('<')
        );
        let discord = parse(&discord(&alert, at()).unwrap());
        assert!(discord["embeds"][0].get("url").is_none());
        let body = teams(&alert, at()).unwrap();
        assert_teams_limits(&body, false);
        assert!(!body.contains("selectAction"));
    }

    #[test]
    fn the_published_time_shows_in_utc_and_the_alert_time_stands_in_for_a_missing_one() {
        assert_eq!(
            display_time("2026-11-28T03:30:00+03:30"),
            "2026-11-28 00:00 UTC"
        );
        assert_eq!(display_time("yesterday"), "yesterday");
        let body = parse(&slack(&bare().alert(), at()).unwrap());
        assert_eq!(
            body["blocks"][1]["elements"][3]["text"],
            "*Alerted:* 2026-11-27 23:40 UTC"
        );
    }
}
