//! The digest stage (SPEC §11): on each watch-list's digest schedule, the stories it held
//! back (`digest`, `max_alerts` overflow, matches while muted) go out as one
//! `watchlist.digest` per webhook.
//!
//! Input: the configuration's watch-lists with a digest schedule (their own `digest`, or
//! the hourly one `max_alerts` implies) and the matches waiting for it in the store.
//! Output: a digest row, its outbox rows (one per webhook, or per numbered part for chat
//! services) and the marking of its matches, all in one transaction: a crash before the
//! commit leaves every match waiting for the next digest, one after it has queued the
//! digest and marked its matches, so a story is neither lost nor sent twice. A period with
//! nothing waiting sends nothing.
//!
//! The schedule runs on wall-clock time ([`crate::clock`]); a tick missed while the daemon
//! was stopped is not caught up, as what waited goes out at the next one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Schedule};
use crate::matcher::Highlight;
use crate::metrics;
use crate::notify::Wake;
use crate::notify::body::{self, Digest, DigestStory, MAX_SIGHTINGS, Period};
use crate::notify::outbox::story_payload;
use crate::store::{NewDigest, Result, Store};
use crate::telemetry::error_chain;

/// A digest just queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub id: String,
    pub stories: usize,
    /// Outbox rows queued (webhooks × parts).
    pub rows: usize,
}

/// Sends each watch-list's digests on its schedule until `stop`; wakes the outbox
/// workers (`alerts`) after each digest queued.
pub async fn run(store: Store, config: Arc<Config>, alerts: Wake, stop: CancellationToken) {
    let schedules: Vec<(usize, Schedule)> = config
        .watchlists
        .iter()
        .enumerate()
        .filter_map(|(index, list)| Some((index, list.digest.clone()?)))
        .collect();
    let start = crate::clock::now();
    let mut next: Vec<DateTime<Utc>> = schedules.iter().map(|(_, s)| s.next_after(start)).collect();
    loop {
        let Some(&due) = next.iter().min() else {
            // No watch-list sends digests.
            stop.cancelled().await;
            return;
        };
        let wait = (due - crate::clock::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        for ((index, schedule), at) in schedules.iter().zip(&mut next) {
            if *at > due {
                continue;
            }
            let name = &config.watchlists[*index].name;
            match send(&store, &config, *index, *at).await {
                Ok(Some(sent)) => {
                    tracing::info!(watchlist = %name, digest = %sent.id, stories = sent.stories, "digest queued");
                    alerts.notify();
                }
                Ok(None) => tracing::debug!(watchlist = %name, "nothing for the digest"),
                // What waited still waits: it goes out with the next digest.
                Err(err) => {
                    tracing::error!(watchlist = %name, error = %error_chain(&err), "cannot build the digest");
                }
            }
            *at = schedule.next_after(*at);
        }
    }
}

/// Builds and queues the digest of watch-list `index` for the period ending `to`: the
/// matches waiting for it, stored up to then. `None` when none waits.
pub async fn send(
    store: &Store,
    config: &Config,
    index: usize,
    to: DateTime<Utc>,
) -> Result<Option<Sent>> {
    let watchlist = &config.watchlists[index];
    let until = to.timestamp();
    let sent = store
        .transaction(async |tx| {
            let held = tx.awaiting_digest(&watchlist.name, until).await?;
            let Some(first) = held.first() else {
                return Ok(None);
            };
            let from = tx
                .last_digest_end(&watchlist.name)
                .await?
                .unwrap_or(first.created_at)
                .min(first.created_at);
            let ids: HashSet<i64> = held.iter().map(|m| m.story_id).collect();
            let summaries = tx.story_summaries(&ids, MAX_SIGHTINGS).await?;
            let mut stories = Vec::with_capacity(held.len());
            let mut order: HashMap<String, (u64, i64, i64)> = HashMap::new();
            for held in &held {
                let Some(summary) = summaries.get(&held.story_id) else {
                    continue; // every held match's story was just read
                };
                let story = story_payload(summary);
                let terms: Vec<String> = serde_json::from_str(&held.terms)?;
                let highlights: Vec<Highlight> = serde_json::from_str(&held.highlights)?;
                order.insert(
                    story.id.clone(),
                    (summary.feeds, summary.first_seen_at, summary.id),
                );
                stories.push(DigestStory {
                    id: story.id,
                    title: held.title.clone(),
                    first_seen: story.first_seen,
                    feeds: story.feeds,
                    items: story.sightings,
                    terms,
                    highlights,
                });
            }
            // Most outlets first, then the earliest story.
            stories.sort_by_key(|s| {
                let (feeds, first_seen, id) = order.get(&s.id).copied().unwrap_or_default();
                (std::cmp::Reverse(feeds), first_seen, id)
            });
            let id = uuid::Uuid::now_v7().to_string();
            let time = |t: i64| {
                DateTime::from_timestamp(t, 0)
                    .map(body::rfc3339)
                    .unwrap_or_default()
            };
            let digest = Digest {
                watchlist: &watchlist.name,
                period: Period {
                    from: time(from),
                    to: body::rfc3339(to),
                },
                stories: &stories,
                count: stories.len(),
            };
            let mut rows = Vec::new();
            for &hook in &watchlist.webhooks {
                let webhook = &config.webhooks[hook];
                let parts = body::render_digest(webhook.format, &digest, to)?;
                for (part, body) in (1u32..).zip(parts) {
                    let row_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
                    rows.push((row_id, webhook.name.as_str(), part, body));
                }
            }
            let matches: Vec<String> = held.iter().map(|m| m.match_id.clone()).collect();
            let queued = rows.len();
            tx.insert_digest(
                &NewDigest {
                    id: &id,
                    watchlist: &watchlist.name,
                    from,
                    to: until,
                    matches: &matches,
                    rows,
                },
                crate::clock::unix(),
            )
            .await?;
            Ok(Some(Sent {
                id,
                stories: stories.len(),
                rows: queued,
            }))
        })
        .await?;
    if let Some(sent) = &sent {
        metrics::digest(&watchlist.name, sent.stories);
    }
    Ok(sent)
}
