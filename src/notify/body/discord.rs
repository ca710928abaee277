//! The Discord body: one embed for an execute-webhook call; a digest's part carries an
//! embed per story.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::digest::{
    DIGEST_SNIPPET_MAX, DIGEST_TERMS_MAX, Entry, PERIOD_MAX, heading, pack, period,
};
use super::text::{
    Content, NAME_MAX, OUTLETS_MAX, SNIPPET_MAX, Style, TERM_MAX, TERMS_MAX, TIME_MAX, TITLE_MAX,
    grew_heading, more_highlights, or_dash, utf16_len,
};
use super::{Alert, Digest, DigestStory, rfc3339};

/// Discord embed limits (Message resource, "Embed Limits").
pub(super) const DISCORD_TITLE_MAX: usize = 256;
pub(super) const DISCORD_DESCRIPTION_MAX: usize = 4096;
pub(super) const DISCORD_FIELD_VALUE_MAX: usize = 1024;
/// Across all the embeds of a message, too.
pub(super) const DISCORD_EMBED_TOTAL_MAX: usize = 6000;
pub(super) const DISCORD_EMBEDS_MAX: usize = 10;
pub(super) const DISCORD_FIELD_NAME_MAX: usize = 256;
/// The message's `content`, outside the embed.
pub(super) const DISCORD_CONTENT_MAX: usize = 2000;
const DISCORD_FOOTER: &str = "wirewatch";
/// The embed's side bar.
const DISCORD_COLOR: u32 = 0x00C0_392B;
/// The side bar of a story that grew: an escalation, not a new story.
const DISCORD_GREW_COLOR: u32 = 0x00E6_7E22;

pub(super) const DISCORD: Style = Style {
    escape: discord_escape,
    measure: utf16_len,
};

/// The alert as a Discord execute-webhook body: one embed whose title links to the story,
/// the highlights in the description, feed, watch-list, published time and terms as
/// fields, then the other outlets that carried the story, and the alert's time as the
/// embed's timestamp. For a story that grew, the message's `content` (above the embed, and
/// the notification text) says so, and the side bar changes colour. Mentions are
/// disabled, so feed text saying `@everyone` pings no one.
pub fn discord(alert: &Alert<'_>, at: DateTime<Utc>) -> Result<String, serde_json::Error> {
    let content = Content::of(alert, at);
    let title = DISCORD.fit(content.title, TITLE_MAX.min(DISCORD_TITLE_MAX));

    let mut fields = vec![
        (
            "Feed".to_string(),
            or_dash(DISCORD.fit(content.feed, NAME_MAX)),
            true,
        ),
        (
            "Watch-list".to_string(),
            or_dash(DISCORD.fit(content.watchlist, NAME_MAX)),
            true,
        ),
    ];
    if content.published {
        let published = or_dash(DISCORD.fit(&content.time.1, TIME_MAX));
        fields.push(("Published".to_string(), published, true));
    }
    fields.push((
        "Terms".to_string(),
        DISCORD.fit_list(content.terms, TERMS_MAX.min(DISCORD_FIELD_VALUE_MAX)),
        false,
    ));
    if let Some(also) = &content.also {
        let outlets = DISCORD.outlet_names(also, OUTLETS_MAX.min(DISCORD_FIELD_VALUE_MAX));
        // Our own text: nothing to escape, far inside the limit.
        debug_assert!(utf16_len(&also.label()) <= DISCORD_FIELD_NAME_MAX);
        fields.push((also.label(), outlets, false));
    }

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
        "color": if content.grew.is_some() { DISCORD_GREW_COLOR } else { DISCORD_COLOR },
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
    let mut message = json!({
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    });
    if let Some(feeds) = content.grew {
        // Our own text: no Markdown, nothing to escape.
        let heading = grew_heading(feeds);
        debug_assert!(utf16_len(&heading) <= DISCORD_CONTENT_MAX);
        message["content"] = json!(heading);
    }
    serde_json::to_string(&message)
}

/// A digest as Discord execute-webhook messages, one per part: the heading and the period
/// in the message's `content` (also the notification text), then an embed per story: its
/// title linking to the story, a description with the outlets, the terms and the snippet
/// as a quote, and the story's first sighting as the embed's timestamp. Parts are filled
/// up to 10 embeds and 6,000 units of embed text. Mentions are disabled.
pub(super) fn discord_digest(digest: &Digest<'_>) -> Result<Vec<String>, serde_json::Error> {
    let watchlist = or_dash(DISCORD.fit(digest.watchlist, NAME_MAX));
    let period = or_dash(DISCORD.fit(&period(&digest.period), PERIOD_MAX));
    let stories = digest.stories.len();
    let embeds: Vec<(Value, usize)> = digest.stories.iter().map(discord_digest_story).collect();
    let costs: Vec<usize> = embeds.iter().map(|(_, cost)| *cost).collect();
    let parts = pack(&costs, DISCORD_EMBED_TOTAL_MAX, DISCORD_EMBEDS_MAX);
    parts
        .into_iter()
        .map(|(part, range)| {
            // The watch-list and the period are cut: far inside the limit.
            let content = format!("**{}**\n{period}", heading(&watchlist, stories, part));
            debug_assert!(utf16_len(&content) <= DISCORD_CONTENT_MAX);
            let embeds: Vec<&Value> = embeds[range].iter().map(|(embed, _)| embed).collect();
            serde_json::to_string(&json!({
                "content": content,
                "embeds": embeds,
                "allowed_mentions": {"parse": []},
            }))
        })
        .collect()
}

/// One story of a digest as an embed, and what it counts towards the message's total.
fn discord_digest_story(story: &DigestStory) -> (Value, usize) {
    let entry = Entry::of(story);
    let title = DISCORD.fit(entry.title, TITLE_MAX.min(DISCORD_TITLE_MAX));
    let mut description = String::new();
    if let Some(outlets) = &entry.outlets {
        description.push_str(outlets);
        description.push_str(" · ");
    }
    description.push_str("**Terms:** ");
    description.push_str(&DISCORD.fit_list(entry.terms, DIGEST_TERMS_MAX));
    if let Some(snippet) = entry.snippet {
        description.push_str("\n> ");
        description.push_str(&DISCORD.fit(snippet, DIGEST_SNIPPET_MAX));
    }
    let cost = DISCORD.len(&title) + DISCORD.len(&description);
    let mut embed = json!({
        "title": title,
        "color": DISCORD_COLOR,
        "description": description,
    });
    if let Some(url) = entry.url {
        embed["url"] = json!(url);
    }
    // Ours and RFC 3339 already; read back so that Discord never gets one it rejects.
    if let Ok(seen) = DateTime::parse_from_rfc3339(&story.first_seen) {
        embed["timestamp"] = json!(rfc3339(seen.to_utc()));
    }
    (embed, cost)
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
