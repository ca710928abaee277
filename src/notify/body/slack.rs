//! The Slack body: a Block Kit message for an incoming webhook.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::digest::{
    DIGEST_SNIPPET_MAX, DIGEST_TERMS_MAX, Entry, PERIOD_MAX, heading, pack, period, widest,
};
use super::text::{
    Content, MAX_LINK_URL, NAME_MAX, OUTLETS_MAX, SNIPPET_MAX, Style, TERM_MAX, TERMS_MAX,
    TIME_MAX, TITLE_MAX, grew_heading, more_highlights, or_dash, utf16_len,
};
use super::{Alert, Digest};
use crate::matcher::MAX_HIGHLIGHTS;

/// Slack limits (Block Kit reference): section text, context element text, context
/// elements per block, blocks per message. The top-level `text` may hold 40,000
/// characters, but it is the notification preview: we keep it to a title's length.
pub(super) const SLACK_SECTION_MAX: usize = 3000;
pub(super) const SLACK_CONTEXT_TEXT_MAX: usize = 2000;
pub(super) const SLACK_CONTEXT_ELEMENTS_MAX: usize = 10;
pub(super) const SLACK_BLOCKS_MAX: usize = 50;
pub(super) const SLACK_FALLBACK_MAX: usize = 300;
/// A header block's `plain_text`.
pub(super) const SLACK_HEADER_MAX: usize = 150;
/// Slack also rejects a message whose blocks hold more than about 12,000 characters of
/// text altogether (`msg_blocks_too_long`: undocumented, and reported as low as 11,300),
/// so a digest part keeps the text of its blocks, link markup included, under this.
pub(super) const SLACK_DIGEST_TEXT_MAX: usize = 10_000;

pub(super) const SLACK: Style = Style {
    escape: slack_escape,
    measure: utf16_len,
};

/// The alert as a Slack incoming-webhook message: a fallback `text` for notifications,
/// and `blocks`: for a story that grew, a header saying so; the title linked to the story,
/// a context line with feed, watch-list, terms, time and the other outlets that carried
/// the story, then a section per highlight (or the summary when there is none).
pub fn slack(alert: &Alert<'_>, at: DateTime<Utc>) -> Result<String, serde_json::Error> {
    let content = Content::of(alert, at);
    let mut blocks = Vec::with_capacity(MAX_HIGHLIGHTS + 4);

    let heading = content.grew.map(grew_heading);
    if let Some(heading) = &heading {
        // Our own text: plain, nothing to escape, far inside the limit.
        debug_assert!(utf16_len(heading) <= SLACK_HEADER_MAX);
        blocks.push(json!({
            "type": "header",
            "text": {"type": "plain_text", "text": heading},
        }));
    }

    blocks.push(slack_section(slack_title(content.title, content.url)));

    let mut context = vec![
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
    if let Some(also) = &content.also {
        context.push(format!(
            "*{}:* {}",
            also.label(),
            SLACK.outlet_names(also, OUTLETS_MAX)
        ));
    }
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

    // The notification preview: for a story that grew, the heading comes first so that it
    // survives a cut.
    let fallback = match &heading {
        Some(heading) => format!("{heading} · {}: {}", content.watchlist, content.title),
        None => format!("{}: {}", content.watchlist, content.title),
    };
    serde_json::to_string(&json!({
        "text": SLACK.fit(&fallback, SLACK_FALLBACK_MAX),
        "blocks": blocks,
    }))
}

/// A digest as Slack incoming-webhook messages, one per part: a bold heading section and
/// a context line with the period, then a section per story with the title linked, a line
/// with the outlets and terms, and the snippet as a quote. Parts are filled up to 50
/// blocks and [`SLACK_DIGEST_TEXT_MAX`] units of text. The fallback `text` is the heading
/// followed by the part's first title.
pub(super) fn slack_digest(digest: &Digest<'_>) -> Result<Vec<String>, serde_json::Error> {
    let watchlist = or_dash(SLACK.fit(digest.watchlist, NAME_MAX));
    let period = or_dash(SLACK.fit(&period(&digest.period), PERIOD_MAX));
    let entries: Vec<Entry<'_>> = digest.stories.iter().map(Entry::of).collect();
    let sections: Vec<String> = entries.iter().map(slack_digest_story).collect();
    let stories = entries.len();
    let head = |part| format!("*{}*", heading(&watchlist, stories, part));

    const HEAD_BLOCKS: usize = 2;
    let head_len = utf16_len(&head(widest(stories))) + utf16_len(&period);
    let costs: Vec<usize> = sections.iter().map(|text| utf16_len(text)).collect();
    let parts = pack(
        &costs,
        SLACK_DIGEST_TEXT_MAX.saturating_sub(head_len),
        SLACK_BLOCKS_MAX - HEAD_BLOCKS,
    );
    parts
        .into_iter()
        .map(|(part, range)| {
            let mut blocks = vec![
                slack_section(head(part)),
                json!({"type": "context", "elements": [slack_mrkdwn(period.clone())]}),
            ];
            blocks.extend(sections[range.clone()].iter().cloned().map(slack_section));
            debug_assert!(blocks.len() <= SLACK_BLOCKS_MAX);

            // The heading is short (the watch-list is cut), so the part number survives;
            // the first title gets what is left.
            let mut fallback = heading(&watchlist, stories, part);
            debug_assert!(utf16_len(&fallback) < SLACK_FALLBACK_MAX);
            if let Some(first) = entries[range].first() {
                const SEP: &str = ": ";
                let room = SLACK_FALLBACK_MAX.saturating_sub(utf16_len(&fallback) + SEP.len());
                let title = SLACK.fit(first.title, room);
                if !title.is_empty() {
                    fallback.push_str(SEP);
                    fallback.push_str(&title);
                }
            }
            serde_json::to_string(&json!({"text": fallback, "blocks": blocks}))
        })
        .collect()
}

/// One story of a digest: a section's text.
fn slack_digest_story(entry: &Entry<'_>) -> String {
    let mut text = slack_title(entry.title, entry.url);
    text.push('\n');
    if let Some(outlets) = &entry.outlets {
        text.push_str(outlets);
        text.push_str(" · ");
    }
    text.push_str("*Terms:* ");
    text.push_str(&SLACK.fit_list(entry.terms, DIGEST_TERMS_MAX));
    if let Some(snippet) = entry.snippet {
        text.push_str("\n>");
        text.push_str(&SLACK.fit(snippet, DIGEST_SNIPPET_MAX));
    }
    text
}

/// The title, cut, as a link to `url` when there is one short enough once escaped.
fn slack_title(title: &str, url: Option<&str>) -> String {
    let text = SLACK.fit(title, TITLE_MAX);
    match url.map(slack_url) {
        Some(url) if SLACK.len(&url) <= MAX_LINK_URL => format!("<{url}|{text}>"),
        _ => text,
    }
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
pub(super) fn slack_url(url: &str) -> String {
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
