//! One feed through the whole pipeline: fetch → parse → dedup → match → store. This is the
//! only place the stages meet (as miniflux's `RefreshFeed`); each stage knows nothing of
//! the others.
//!
//! Input: a configured feed and its stored poll state. Output: one committed transaction
//! holding the feed's new items, their matches, the outbox rows of those matches and the
//! feed's new validators and due time — or, on failure, the classified error on the feed's
//! row. Either the whole fetch is recorded or none of it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::dedup;
use crate::fetch::{self, FetchError, FetchOutcome, Fetcher};
use crate::matcher::{Document, WatchlistMatch};
use crate::metrics;
use crate::notify::{
    self,
    payload::{self, Alert, FeedPayload, ItemPayload},
};
use crate::parse::{self, Item, ParsedFeed};
use crate::schedule;
use crate::store::{FeedFailure, FeedState, FeedUpdate, NewItem, NewMatch, Store, StoreError};

/// What refreshing one feed did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NotModified,
    Updated {
        items: usize,
        new_items: usize,
        matches: usize,
        alerts: usize,
    },
    /// The fetch or parse failed; the message is stored on the feed's row.
    Failed {
        class: &'static str,
        error: String,
        /// The server asked (429/503 `Retry-After`) to be left alone this long.
        retry_after: Option<Duration>,
    },
    /// The feed is not polled (it answered 410 Gone).
    Disabled {
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct Report {
    pub feed: String,
    pub outcome: Outcome,
    /// When the feed is due again; `None` when it is disabled.
    pub next_due: Option<DateTime<Utc>>,
}

/// The parts a refresh needs, shared by every feed.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub config: Arc<Config>,
    pub store: Store,
    pub fetcher: Fetcher,
}

/// The fields of a parsed item the matcher searches.
pub fn document(item: &Item) -> Document<'_> {
    Document {
        title: &item.title,
        summary: &item.summary,
        content: &item.content,
        categories: &item.categories,
    }
}

/// A new item with its matches, ready to store.
struct Candidate {
    item: Item,
    key: String,
    canonical: Option<String>,
    matches: Vec<WatchlistMatch>,
}

impl Pipeline {
    /// Refreshes feed number `index` of the config. Only a store failure is an `Err`:
    /// fetch and parse failures are recorded on the feed and reported in the outcome.
    #[tracing::instrument(skip_all, fields(feed = %self.config.feeds[index].name), err(Display))]
    pub async fn refresh(&self, index: usize) -> Result<Report, StoreError> {
        let feed = &self.config.feeds[index];
        let poll = &self.config.poll;
        let clock = std::time::Instant::now();
        let started = Utc::now();
        let now = started.timestamp();
        let Some(state) = self.store.feed_state(&feed.name).await? else {
            // `sync_feeds` runs before any refresh; a missing row means the config changed
            // under us, and the next cycle will create it.
            return Ok(Report {
                feed: feed.name.clone(),
                outcome: Outcome::Failed {
                    class: "internal",
                    error: "feed has no row in the database yet".into(),
                    retry_after: None,
                },
                next_due: Some(schedule::next_due(&feed.schedule, started, poll.jitter)),
            });
        };
        if let Some(reason) = state.disabled_reason {
            return Ok(Report {
                feed: feed.name.clone(),
                outcome: Outcome::Disabled { reason },
                next_due: None,
            });
        }
        // A permanent redirect moved the feed; the configured URL is where it used to be.
        let url = state
            .moved_to
            .as_deref()
            .and_then(|moved| url::Url::parse(moved).ok())
            .unwrap_or_else(|| feed.url.clone());

        let fetched = self
            .fetcher
            .fetch(&url, state.etag.as_deref(), state.last_modified.as_deref())
            .await;
        let failures = u32::try_from(state.failure_count.saturating_add(1)).unwrap_or(u32::MAX);
        let body = match fetched {
            Ok(FetchOutcome::NotModified { fresh_for }) => {
                let next_due = schedule::after_success(feed, poll, started, fresh_for);
                self.store
                    .record_not_modified(state.id, now, next_due.timestamp())
                    .await?;
                metrics::fetch("not_modified", clock.elapsed());
                tracing::debug!("not modified");
                return Ok(Report {
                    feed: feed.name.clone(),
                    outcome: Outcome::NotModified,
                    next_due: Some(next_due),
                });
            }
            Ok(FetchOutcome::Fetched(body)) => *body,
            Err(err) => {
                let retry_after = match &err {
                    FetchError::Status { retry_after, .. } => *retry_after,
                    _ => None,
                };
                // 410 Gone: the publisher says the feed is gone for good.
                let gone = matches!(&err, FetchError::Status { status, .. } if *status == reqwest::StatusCode::GONE);
                let error = if gone {
                    format!(
                        "{err}: the feed is gone; polling stopped until its URL changes in the config"
                    )
                } else {
                    err.to_string()
                };
                let next_due = schedule::after_failure(feed, poll, started, failures, retry_after);
                metrics::fetch(err.class(), clock.elapsed());
                return self
                    .failed(&state, err.class(), error, next_due, gone, retry_after, now)
                    .await;
            }
        };

        let update = FeedUpdate {
            title: None,
            etag: body.etag,
            last_modified: body.last_modified,
            next_due_at: 0,
            fetched_at: now,
        };
        let fresh_for = body.fresh_for;
        if let Some(moved) = &body.moved_to {
            tracing::info!(moved_to = %fetch::redact(moved), "feed moved permanently");
            self.store.record_moved(state.id, moved.as_str()).await?;
        }
        let (bytes, base, content_type) = (body.body, body.final_url, body.content_type);
        // Parsing is CPU-bound: keep it off the runtime's I/O threads.
        let parsed = tokio::task::spawn_blocking(move || {
            parse::parse_document(&bytes, Some(&base), content_type.as_deref())
        })
        .await
        .map_err(|err| parse::ParseError::Malformed(format!("parser crashed: {err}")))
        .and_then(|parsed| parsed);
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(err) => {
                let next_due = schedule::after_failure(feed, poll, started, failures, None);
                metrics::fetch(err.kind(), clock.elapsed());
                return self
                    .failed(
                        &state,
                        err.kind(),
                        err.to_string(),
                        next_due,
                        false,
                        None,
                        now,
                    )
                    .await;
            }
        };

        // The feed's own hints: HTTP freshness, or RSS `<ttl>` (minutes).
        let hint = fresh_for.max(
            parsed
                .ttl
                .map(|minutes| Duration::from_secs(u64::from(minutes) * 60)),
        );
        let next_due = schedule::after_success(feed, poll, started, hint);
        let update = FeedUpdate {
            next_due_at: next_due.timestamp(),
            ..update
        };
        let ParsedFeed { title, items, .. } = parsed;
        let total = items.len();
        let candidates = self.new_candidates(index, state.id, items).await?;
        let update = FeedUpdate { title, ..update };
        // On a feed's first fetch only recent items alert (`poll.backfill`); the rest are
        // stored so they are never "new" again.
        let first_fetch = state.last_success_at.is_none();
        let (matches, alerts) = self
            .store_candidates(index, state.id, &candidates, first_fetch, &update, started)
            .await?;
        metrics::fetch("ok", clock.elapsed());
        metrics::refreshed(candidates.len(), alerts);
        tracing::info!(
            items = total,
            new_items = candidates.len(),
            matches,
            alerts,
            "feed refreshed"
        );
        Ok(Report {
            feed: feed.name.clone(),
            outcome: Outcome::Updated {
                items: total,
                new_items: candidates.len(),
                matches,
                alerts,
            },
            next_due: Some(next_due),
        })
    }

    /// Records a failed refresh on the feed's row and reports it.
    #[allow(clippy::too_many_arguments)]
    async fn failed(
        &self,
        state: &FeedState,
        class: &'static str,
        error: String,
        next_due: DateTime<Utc>,
        disable: bool,
        retry_after: Option<Duration>,
        now: i64,
    ) -> Result<Report, StoreError> {
        self.store
            .record_failure(
                state.id,
                &FeedFailure {
                    error: &error,
                    class,
                    at: now,
                    next_due_at: next_due.timestamp(),
                    disable,
                },
            )
            .await?;
        tracing::warn!(class, error = %error, failures = state.failure_count + 1, next_due = %next_due, "refresh failed");
        Ok(Report {
            feed: state.name.clone(),
            outcome: if disable {
                Outcome::Disabled { reason: error }
            } else {
                Outcome::Failed {
                    class,
                    error,
                    retry_after,
                }
            },
            next_due: (!disable).then_some(next_due),
        })
    }

    /// The document's items that the feed does not hold yet, each matched against the
    /// watch-lists that follow this feed.
    async fn new_candidates(
        &self,
        index: usize,
        feed_id: i64,
        items: Vec<Item>,
    ) -> Result<Vec<Candidate>, StoreError> {
        let watchlists = &self.config.watchlists;
        let wanted = |w: usize| watchlists.get(w).is_some_and(|list| list.watches(index));
        let keys: Vec<String> = items.iter().map(dedup::item_key).collect();
        let mut seen = self.store.known_items(feed_id, &keys).await?;
        let mut candidates = Vec::new();
        for (item, key) in items.into_iter().zip(keys) {
            // Known already, or repeated within this document.
            if !seen.insert(key.clone()) {
                continue;
            }
            let matches = self.config.matcher.match_item(&document(&item), &wanted);
            candidates.push(Candidate {
                canonical: item.link.as_ref().map(dedup::canonical_link),
                key,
                item,
                matches,
            });
        }
        Ok(candidates)
    }

    /// Writes the candidates, their matches and outbox rows and the feed's new state in
    /// one transaction. Returns (new matches, outbox rows written).
    async fn store_candidates(
        &self,
        index: usize,
        feed_id: i64,
        candidates: &[Candidate],
        first_fetch: bool,
        update: &FeedUpdate,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), StoreError> {
        let feed = &self.config.feeds[index];
        let feed_url = fetch::without_credentials(&feed.url);
        let at = now.timestamp();
        let (mut matches, mut alerts) = (0, 0);
        let mut matched = Vec::new();
        let mut tx = self.store.begin().await?;
        let urls: Vec<&str> = candidates
            .iter()
            .filter_map(|c| c.canonical.as_deref())
            .collect();
        let stories = tx.stories_for(&urls, at).await?;
        let mut rows = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            let item = &candidate.item;
            let story_id = match candidate.canonical.as_deref() {
                Some(url) => match stories.get(url) {
                    Some(id) => *id,
                    None => tx.story_for(Some(url), at).await?,
                },
                // Without a link an item is a story of its own.
                None => tx.story_for(None, at).await?,
            };
            rows.push((
                story_id,
                NewItem {
                    item_key: &candidate.key,
                    title: &item.title,
                    url: item.link.as_ref().map(url::Url::as_str),
                    published_at: item.published.map(|p| p.timestamp()),
                    summary: &item.summary,
                    authors: &item.authors,
                    categories: &item.categories,
                    language: item.language.as_deref(),
                },
            ));
        }
        let item_ids = tx.insert_items(feed_id, &rows, at).await?;
        for (candidate, (story_id, new_item)) in candidates.iter().zip(&rows) {
            let story_id = *story_id;
            let item = &candidate.item;
            let Some(&item_id) = item_ids.get(&candidate.key) else {
                continue; // stored meanwhile by another writer
            };
            let alerting = !first_fetch || self.config.poll.backfill.admits(item.published, now);
            for found in &candidate.matches {
                let watchlist = &self.config.watchlists[found.watchlist];
                let alert_id = uuid::Uuid::now_v7().to_string();
                let terms_json = serde_json::to_string(&found.terms)?;
                let highlights_json = serde_json::to_string(&found.highlights)?;
                let inserted = tx
                    .insert_match(&NewMatch {
                        id: &alert_id,
                        story_id,
                        watchlist: &watchlist.name,
                        item_id,
                        terms_json: &terms_json,
                        highlights_json: &highlights_json,
                        created_at: at,
                    })
                    .await?;
                if !inserted {
                    continue; // the story already alerted this watch-list
                }
                matches += 1;
                matched.push(watchlist.name.as_str());
                if !alerting || watchlist.webhooks.is_empty() {
                    continue;
                }
                let alert = Alert {
                    alert_id: &alert_id,
                    watchlist: &watchlist.name,
                    terms: &found.terms,
                    story_id: story_id.to_string(),
                    item: ItemPayload {
                        id: &candidate.key,
                        title: &item.title,
                        url: new_item.url,
                        published: item.published.map(payload::rfc3339),
                        summary: payload::short_summary(&item.summary),
                        authors: &item.authors,
                        categories: &item.categories,
                        language: item.language.as_deref(),
                    },
                    feed: FeedPayload {
                        name: &feed.name,
                        url: feed_url.as_str(),
                        title: update.title.as_deref(),
                    },
                    highlights: &found.highlights,
                };
                // The body is rendered once, in the webhook's format, and frozen in the
                // outbox row: every retry sends (and signs) the same bytes.
                for &hook in &watchlist.webhooks {
                    let webhook = &self.config.webhooks[hook];
                    let body = notify::render(webhook.format, &alert, now)?;
                    let outbox_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
                    tx.insert_outbox(&outbox_id, &alert_id, &webhook.name, &body, at)
                        .await?;
                    alerts += 1;
                }
            }
        }
        tx.update_feed(feed_id, update).await?;
        tx.commit().await?;
        for watchlist in matched {
            metrics::matched(watchlist);
        }
        Ok((matches, alerts))
    }
}
