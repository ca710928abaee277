//! The Slack body: a Block Kit message for an incoming webhook.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Alert;
use super::text::{
    Content, MAX_LINK_URL, NAME_MAX, OUTLETS_MAX, SNIPPET_MAX, Style, TERM_MAX, TERMS_MAX,
    TIME_MAX, TITLE_MAX, grew_heading, more_highlights, or_dash, utf16_len,
};
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

    let title = match content.url.map(slack_url) {
        Some(url) if SLACK.len(&url) <= MAX_LINK_URL => {
            let text = SLACK.fit(content.title, TITLE_MAX);
            format!("<{url}|{text}>")
        }
        _ => SLACK.fit(content.title, TITLE_MAX),
    };
    blocks.push(slack_section(title));

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
