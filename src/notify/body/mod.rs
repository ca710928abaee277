//! The bodies an alert is sent as (SPEC §5): the `json` event, and messages for Slack,
//! Discord and Microsoft Teams.
//!
//! Input: a stored match with its item, feed, highlights and story, as an [`Alert`], and
//! the alert's time. Output: the exact bytes sent on every attempt. A body is built once,
//! when the match is committed, and frozen in the outbox row, so retries and restarts
//! resend identical, identically signed content; that is why `at` is passed in rather than
//! read from the clock.
//!
//! The chat bodies carry the `json` body's content: the item's title as a link, the feed,
//! the watch-list, the terms, the highlights' snippets and the published time (the alert's
//! time when the item has none). When other outlets carried the story (SPEC §10) they add
//! "Also in N outlets" (`story.feeds` − 1) with a few of those outlets' feed names from the
//! sightings; a story seen in one feed shows nothing more. A `watchlist.story_grew` event
//! reads as an escalation, not a new alert: "Story grew: now reported by N outlets"
//! (`story.feeds`) heads the message and leads its notification text.
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
//!
//! A digest (SPEC §11) is rendered by `digest.rs`: one `json` event, or for the chat
//! services one or more numbered messages, each within those same limits.

mod digest;
mod discord;
mod json;
mod slack;
mod teams;
mod text;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::config::WebhookFormat;
use crate::matcher::Highlight;

/// Longest summary carried in a payload, in bytes (cut on a character boundary).
pub(super) const MAX_SUMMARY_BYTES: usize = 2048;

#[derive(Debug, Serialize)]
pub struct Alert<'a> {
    /// Which event the body announces; the `json` body's `type`.
    #[serde(skip)]
    pub event: Event,
    pub alert_id: &'a str,
    pub watchlist: &'a str,
    pub terms: &'a [String],
    pub story_id: String,
    pub item: ItemPayload<'a>,
    pub feed: FeedPayload<'a>,
    pub highlights: &'a [Highlight],
    /// The story as known when the body is rendered (SPEC §10).
    pub story: &'a StoryPayload,
}

/// The events a watch-list's webhooks receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `watchlist.match`: a story matched the watch-list, for the first time.
    Match,
    /// `watchlist.story_grew`: a story the watch-list alerted on is now reported by as
    /// many distinct feeds as one of its `escalate` thresholds (`story.feeds`).
    StoryGrew,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Match => "watchlist.match",
            Event::StoryGrew => "watchlist.story_grew",
        }
    }
}

/// The `story` object of an alert (SPEC §10).
#[derive(Debug, Clone, Serialize)]
pub struct StoryPayload {
    pub id: String,
    /// RFC 3339: when the story's first item was stored.
    pub first_seen: String,
    /// Distinct feeds that carried the story.
    pub feeds: u64,
    /// Items the story holds, over all feeds.
    pub items: u64,
    /// The story's items in the order they were seen, the alerted one included, at most
    /// [`MAX_SIGHTINGS`].
    pub sightings: Vec<SightingPayload>,
}

impl StoryPayload {
    /// Other outlets (distinct feeds) that carried the story: "also in N outlets".
    pub fn other_outlets(&self) -> u64 {
        self.feeds.saturating_sub(1)
    }
}

/// One item of a story: where and when it was seen.
#[derive(Debug, Clone, Serialize)]
pub struct SightingPayload {
    /// The feed's configured name.
    pub feed: String,
    pub title: String,
    pub url: Option<String>,
    /// RFC 3339: when the item was stored.
    pub seen: String,
}

/// Most sightings carried in a payload.
pub const MAX_SIGHTINGS: usize = 20;

#[derive(Debug, Serialize)]
pub struct ItemPayload<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub url: Option<&'a str>,
    pub published: Option<String>,
    pub summary: &'a str,
    pub authors: &'a [String],
    pub categories: &'a [String],
    pub language: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct FeedPayload<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub title: Option<&'a str>,
}

/// A `watchlist.digest` event (SPEC §11): the stories a watch-list held back over one
/// period, for one webhook.
#[derive(Debug, Serialize)]
pub struct Digest<'a> {
    pub watchlist: &'a str,
    pub period: Period,
    /// Ranked: most feeds first, then earliest first seen.
    pub stories: &'a [DigestStory],
    /// Stories in this digest (`stories.len()`).
    pub count: usize,
}

/// A digest's period, RFC 3339 both.
#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub from: String,
    pub to: String,
}

/// One story of a digest: the story of SPEC §10 with the watch-list's terms and highlights
/// on its first matching item.
#[derive(Debug, Clone, Serialize)]
pub struct DigestStory {
    pub id: String,
    /// The title of the item that matched.
    pub title: String,
    /// RFC 3339.
    pub first_seen: String,
    /// Distinct feeds that carried the story.
    pub feeds: u64,
    /// The story's items in the order seen, the matching one first among them by time;
    /// at most [`MAX_SIGHTINGS`].
    pub items: Vec<SightingPayload>,
    pub terms: Vec<String>,
    pub highlights: Vec<Highlight>,
}

/// RFC 3339 in UTC with a `Z`, as receivers parse most easily.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A summary short enough for a notification, cut on a character boundary.
pub fn short_summary(summary: &str) -> &str {
    &summary[..summary.floor_char_boundary(MAX_SUMMARY_BYTES)]
}

/// Renders an alert as the body the webhook's format calls for.
pub fn render(
    format: WebhookFormat,
    alert: &Alert<'_>,
    at: DateTime<Utc>,
) -> Result<String, serde_json::Error> {
    match format {
        WebhookFormat::Json => json::body(alert, at),
        WebhookFormat::Slack => slack::slack(alert, at),
        WebhookFormat::Discord => discord::discord(alert, at),
        WebhookFormat::Teams => teams::teams(alert, at),
    }
}

/// Renders a digest as the bodies the webhook's format calls for: one for `json`, one or
/// more numbered parts for the chat services, each within that service's limits.
pub fn render_digest(
    format: WebhookFormat,
    digest: &Digest<'_>,
    at: DateTime<Utc>,
) -> Result<Vec<String>, serde_json::Error> {
    digest::render(format, digest, at)
}

#[cfg(test)]
mod digest_tests;
#[cfg(test)]
mod tests;
