//! The Microsoft Teams body: an Adaptive Card for an incoming webhook or a Workflows
//! trigger.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::digest::{
    DIGEST_SNIPPET_MAX, DIGEST_TERMS_MAX, Entry, PERIOD_MAX, heading, pack, period, widest,
};
use super::text::{
    Content, NAME_MAX, OUTLETS_MAX, SNIPPET_MAX, Style, TERM_MAX, TERMS_MAX, TIME_MAX, TITLE_MAX,
    grew_heading, more_highlights, or_dash, plain, utf16_len,
};
use super::{Alert, Digest};

/// Teams rejects an incoming-webhook message over 28 KB, and reports put the real edge
/// lower (about 21 KB) and do not say whether bytes or UTF-16 units are counted. The body
/// is kept under this many bytes both ways: as UTF-8, and as UTF-16 (two bytes a unit).
pub(super) const TEAMS_MAX_BYTES: usize = 20_000;
/// Caps for Teams text, in [`teams_weight`] units (about two per character).
const TEAMS_TITLE_MAX: usize = 2 * TITLE_MAX;
const TEAMS_NAME_MAX: usize = 2 * NAME_MAX;
const TEAMS_TERMS_MAX: usize = 2 * TERMS_MAX;
const TEAMS_TERM_MAX: usize = 2 * TERM_MAX;
const TEAMS_SNIPPET_MAX: usize = 2 * SNIPPET_MAX;
const TEAMS_TIME_MAX: usize = 2 * TIME_MAX;
const TEAMS_OUTLETS_MAX: usize = 2 * OUTLETS_MAX;

pub(super) const TEAMS: Style = Style {
    escape: plain,
    measure: teams_weight,
};

/// The alert as a Teams incoming-webhook (or Workflows) message: an Adaptive Card with the
/// title (a link when the item has a URL), a line each for feed, watch-list, terms, time
/// and the other outlets that carried the story, a line per highlight, and an "Open story"
/// button when the item has a URL. For a story that grew, a heading above the title says
/// so; as the card's first text it is also what Teams previews in notifications.
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
    let mut head = Vec::new();
    if let Some(feeds) = content.grew {
        head.push(json!({
            "type": "TextBlock",
            "text": grew_heading(feeds),
            "weight": "Bolder",
            "color": "Accent",
            "wrap": true,
        }));
    }
    head.push(json!({"type": "RichTextBlock", "inlines": [title]}));
    let mut facts = vec![
        (
            "Feed".to_string(),
            or_dash(TEAMS.fit(content.feed, TEAMS_NAME_MAX)),
        ),
        (
            "Watch-list".to_string(),
            or_dash(TEAMS.fit(content.watchlist, TEAMS_NAME_MAX)),
        ),
        (
            "Terms".to_string(),
            TEAMS.fit_list(content.terms, TEAMS_TERMS_MAX),
        ),
        (
            content.time.0.to_string(),
            or_dash(TEAMS.fit(&content.time.1, TEAMS_TIME_MAX)),
        ),
    ];
    if let Some(also) = &content.also {
        facts.push((also.label(), TEAMS.outlet_names(also, TEAMS_OUTLETS_MAX)));
    }
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
        let mut card = teams_card(body);
        if let Some(url) = content.url {
            card["actions"] =
                json!([{"type": "Action.OpenUrl", "title": "Open story", "url": url}]);
        }
        let message = teams_message(card)?;
        if teams_size(&message) <= TEAMS_MAX_BYTES
            || content.highlights.is_empty()
            || lines.pop().is_none()
        {
            return Ok(message);
        }
        hidden += 1;
    }
}

/// An Adaptive Card of these elements.
fn teams_card(body: Vec<Value>) -> Value {
    json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    })
}

/// The incoming-webhook message carrying a card.
fn teams_message(card: Value) -> Result<String, serde_json::Error> {
    serde_json::to_string(&json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    }))
}

/// A digest as Teams messages, one Adaptive Card per part: the heading and the period,
/// then for each story, below a separator, its title (a link when it has a URL), a line
/// with the outlets and terms, and the snippet in italics. Parts are filled up to
/// [`TEAMS_MAX_BYTES`].
pub(super) fn teams_digest(digest: &Digest<'_>) -> Result<Vec<String>, serde_json::Error> {
    let watchlist = or_dash(TEAMS.fit(digest.watchlist, TEAMS_NAME_MAX));
    let period = or_dash(TEAMS.fit(&period(&digest.period), 2 * PERIOD_MAX));
    let stories = digest.stories.len();
    let head = |part| {
        vec![
            json!({
                "type": "RichTextBlock",
                "inlines": [{
                    "type": "TextRun",
                    "text": heading(&watchlist, stories, part),
                    "size": "Medium",
                    "weight": "Bolder",
                }],
            }),
            json!({
                "type": "RichTextBlock",
                "spacing": "None",
                "inlines": [{"type": "TextRun", "text": period, "isSubtle": true}],
            }),
        ]
    };
    let entries: Vec<Vec<Value>> = digest
        .stories
        .iter()
        .map(|story| teams_digest_story(&Entry::of(story)))
        .collect();

    // A story's elements add themselves and a comma each to the card's body; the size of
    // the parts is at most the sum of theirs, whichever way Teams counts.
    const COMMA: usize = 2;
    let costs = entries
        .iter()
        .map(|elements| {
            elements.iter().try_fold(0, |sum, element| {
                Ok(sum + teams_size(&serde_json::to_string(element)?) + COMMA)
            })
        })
        .collect::<Result<Vec<usize>, serde_json::Error>>()?;
    let empty = teams_size(&teams_message(teams_card(head(widest(stories))))?);
    let parts = pack(&costs, TEAMS_MAX_BYTES.saturating_sub(empty), usize::MAX);
    parts
        .into_iter()
        .map(|(part, range)| {
            let mut body = head(part);
            body.extend(entries[range].iter().flatten().cloned());
            let message = teams_message(teams_card(body))?;
            debug_assert!(teams_size(&message) <= TEAMS_MAX_BYTES);
            Ok(message)
        })
        .collect()
}

/// One story of a digest: its card elements.
fn teams_digest_story(entry: &Entry<'_>) -> Vec<Value> {
    let mut title = json!({
        "type": "TextRun",
        "text": TEAMS.fit(entry.title, TEAMS_TITLE_MAX),
        "weight": "Bolder",
    });
    if let Some(url) = entry.url {
        title["selectAction"] = json!({"type": "Action.OpenUrl", "url": url});
    }
    let mut facts = Vec::new();
    if let Some(outlets) = &entry.outlets {
        facts.push(json!({"type": "TextRun", "text": format!("{outlets} · "), "isSubtle": true}));
    }
    facts.push(json!({"type": "TextRun", "text": "Terms: ", "weight": "Bolder"}));
    facts.push(json!({
        "type": "TextRun",
        "text": TEAMS.fit_list(entry.terms, 2 * DIGEST_TERMS_MAX),
    }));
    let mut elements = vec![
        json!({
            "type": "RichTextBlock",
            "separator": true,
            "spacing": "Medium",
            "inlines": [title],
        }),
        json!({"type": "RichTextBlock", "spacing": "None", "inlines": facts}),
    ];
    if let Some(snippet) = entry.snippet {
        elements.push(json!({
            "type": "RichTextBlock",
            "spacing": "None",
            "inlines": [{
                "type": "TextRun",
                "text": TEAMS.fit(snippet, 2 * DIGEST_SNIPPET_MAX),
                "italic": true,
            }],
        }));
    }
    elements
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
pub(super) fn teams_size(body: &str) -> usize {
    body.len().max(2 * utf16_len(body))
}
