//! An alert's outbox rows: one per webhook of its watch-list, each holding the body
//! rendered once, in that webhook's format, and frozen, so that every retry sends (and
//! signs) the same bytes.
//!
//! Input: a match the commit stage has just stored and that alerts ([`NewAlert`]), and the
//! configuration. Output: the rows to insert. The commit stage calls [`rows`] inside the
//! transaction that stores the match, so the alert and its outbox rows commit together;
//! the outbox workers (`notify/mod.rs`) send them.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::matcher::Highlight;
use crate::matcher::WatchlistMatch;
use crate::notify::body::{
    self, Alert, Event, FeedPayload, ItemPayload, SightingPayload, StoryPayload,
};
use crate::parse::Item;
use crate::redact;
use crate::store::{Escalation, OutboxRow, StorySummary};

/// A match just stored that alerts, or a story of a match that grew.
#[derive(Debug)]
pub struct NewAlert<'a> {
    pub event: Event,
    /// 0 for the alert itself, else the `escalate` threshold reached: one row per (match,
    /// webhook, stage).
    pub stage: u32,
    /// The match's id, the payload's `alert_id`.
    pub alert_id: &'a str,
    /// Index of the feed in the configuration.
    pub feed: usize,
    /// The feed's title, as its document gives it.
    pub feed_title: Option<&'a str>,
    pub story_id: i64,
    /// The item's identity within its feed (`dedup::item_key`).
    pub item_key: &'a str,
    pub item: &'a Item,
    /// What the watch-list found: terms and highlights.
    pub found: &'a WatchlistMatch,
    /// The alert's time (the refresh's), in the body and its signature.
    pub at: DateTime<Utc>,
}

/// The outbox rows of `alert`: one per webhook of its watch-list, each with a new
/// `webhook-id` and the body in the webhook's format.
/// `story` is the story as it stands in the transaction that stores the rows.
pub fn rows<'a>(
    config: &'a Config,
    alert: &NewAlert<'a>,
    story: &StoryPayload,
) -> Result<Vec<OutboxRow<'a>>, serde_json::Error> {
    let watchlist = &config.watchlists[alert.found.watchlist];
    let feed = &config.feeds[alert.feed];
    // Credentials in the feed's URL never leave the process.
    let feed_url = redact::url(&feed.url, &feed.redact_params);
    let item = alert.item;
    let body = Alert {
        event: alert.event,
        alert_id: alert.alert_id,
        watchlist: &watchlist.name,
        terms: &alert.found.terms,
        story_id: alert.story_id.to_string(),
        item: ItemPayload {
            id: alert.item_key,
            title: &item.title,
            url: item.link.as_ref().map(url::Url::as_str),
            published: item.published.map(body::rfc3339),
            summary: body::short_summary(&item.summary),
            authors: &item.authors,
            categories: &item.categories,
            language: item.language.as_deref(),
        },
        feed: FeedPayload {
            name: &feed.name,
            url: feed_url.as_str(),
            title: alert.feed_title,
        },
        highlights: &alert.found.highlights,
        story,
    };
    render(
        config,
        alert.alert_id,
        &watchlist.webhooks,
        &body,
        alert.stage,
        alert.at,
    )
}

/// The outbox rows of a `watchlist.story_grew` event: the match's story now reaches
/// `threshold` distinct feeds. The body is the match's alert as stored (its item, feed,
/// terms and highlights) with the story as it stands now. None when the watch-list or the
/// feed is gone from the configuration.
pub fn grew<'a>(
    config: &'a Config,
    escalation: &'a Escalation,
    threshold: u32,
    story: &StoryPayload,
    at: DateTime<Utc>,
) -> Result<Vec<OutboxRow<'a>>, serde_json::Error> {
    let (Some(watchlist), Some(feed)) = (
        config.watchlist(&escalation.watchlist),
        config
            .feed_index(&escalation.feed)
            .and_then(|i| config.feeds.get(i)),
    ) else {
        return Ok(Vec::new());
    };
    let terms: Vec<String> = serde_json::from_str(&escalation.terms)?;
    let highlights: Vec<Highlight> = serde_json::from_str(&escalation.highlights)?;
    let authors: Vec<String> = serde_json::from_str(&escalation.authors)?;
    let categories: Vec<String> = serde_json::from_str(&escalation.categories)?;
    let feed_url = redact::url(&feed.url, &feed.redact_params);
    let body = Alert {
        event: Event::StoryGrew,
        alert_id: &escalation.match_id,
        watchlist: &watchlist.name,
        terms: &terms,
        story_id: escalation.story_id.to_string(),
        item: ItemPayload {
            id: &escalation.item_key,
            title: &escalation.title,
            url: escalation.url.as_deref(),
            published: escalation
                .published_at
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .map(body::rfc3339),
            summary: body::short_summary(&escalation.summary),
            authors: &authors,
            categories: &categories,
            language: escalation.language.as_deref(),
        },
        feed: FeedPayload {
            name: &feed.name,
            url: feed_url.as_str(),
            title: escalation.feed_title.as_deref(),
        },
        highlights: &highlights,
        story,
    };
    render(
        config,
        &escalation.match_id,
        &watchlist.webhooks,
        &body,
        threshold,
        at,
    )
}

/// One row per webhook, each with a new `webhook-id` and the body in its format.
fn render<'a>(
    config: &'a Config,
    match_id: &'a str,
    webhooks: &[usize],
    body: &Alert<'_>,
    stage: u32,
    at: DateTime<Utc>,
) -> Result<Vec<OutboxRow<'a>>, serde_json::Error> {
    webhooks
        .iter()
        .map(|&hook| {
            let webhook = &config.webhooks[hook];
            Ok(OutboxRow {
                id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
                match_id,
                webhook: &webhook.name,
                stage,
                body: body::render(webhook.format, body, at)?,
            })
        })
        .collect()
}

/// A stored story as a payload's `story` object.
pub fn story_payload(story: &StorySummary) -> StoryPayload {
    let time = |t: i64| {
        DateTime::from_timestamp(t, 0)
            .map(body::rfc3339)
            .unwrap_or_default()
    };
    StoryPayload {
        id: story.id.to_string(),
        first_seen: time(story.first_seen_at),
        feeds: story.feeds,
        items: story.items,
        sightings: story
            .sightings
            .iter()
            .map(|s| SightingPayload {
                feed: s.feed.clone(),
                title: s.title.clone(),
                url: s.url.clone(),
                seen: time(s.seen_at),
            })
            .collect(),
    }
}
