//! One feed through the whole pipeline: fetch → parse → dedup → match → commit. This is
//! the only place the stages meet (as miniflux's `RefreshFeed`); each stage knows nothing
//! of the others.
//!
//! Input: a configured feed and its stored poll state. Output: the feed's new items, their
//! matches and the feed's new validators and due time — or, on failure, the classified
//! error — handed to the commit stage, which stores them in one transaction (shared with
//! other feeds' results). Either the whole fetch is recorded or none of it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock;
use crate::commit::{Candidate, Committed, Committer, FeedResult, Fetched};
use crate::config::Config;
use crate::dedup;
use crate::due;
use crate::fetch::{FetchError, FetchOutcome, Fetcher};
use crate::matcher::Document;
use crate::metrics;
use crate::parse::{self, Item, ParsedFeed};
use crate::redact;
use crate::store::{FeedFailure, FeedState, FeedUpdate, Store, StoreError, retention};

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
    pub committer: Committer,
    /// One per core: the parses that may run at once.
    pub parse_slots: Arc<tokio::sync::Semaphore>,
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

impl Pipeline {
    /// Refreshes feed number `index` of the config. Only a store failure is an `Err`:
    /// fetch and parse failures are recorded on the feed and reported in the outcome.
    #[tracing::instrument(skip_all, fields(feed = %self.config.feeds[index].name), err(Display))]
    pub async fn refresh(&self, index: usize) -> Result<Report, StoreError> {
        let feed = &self.config.feeds[index];
        let poll = &self.config.poll;
        let clock = std::time::Instant::now();
        let started = clock::now();
        let now = started.timestamp();
        let Some(state) = self.store.feed_state(&feed.name).await? else {
            // `Store::register` runs before any refresh; a missing row means the config changed
            // under us, and the next cycle will create it.
            return Ok(Report {
                feed: feed.name.clone(),
                outcome: Outcome::Failed {
                    class: "internal",
                    error: "feed has no row in the database yet".into(),
                    retry_after: None,
                },
                next_due: Some(due::next_due(&feed.schedule, started, poll.jitter)),
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
                let next_due = due::after_success(feed, poll, started, fresh_for);
                self.committer
                    .commit(FeedResult::NotModified {
                        feed_id: state.id,
                        fetched_at: now,
                        next_due_at: next_due.timestamp(),
                    })
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
                let next_due = due::after_failure(feed, poll, started, failures, retry_after);
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
            document_keys: None,
        };
        let fresh_for = body.fresh_for;
        if let Some(moved) = body.moved_to {
            tracing::info!(moved_to = %redact::url(&moved, &feed.redact_params), "feed moved permanently");
            self.committer
                .commit(FeedResult::Moved {
                    feed_id: state.id,
                    url: moved.to_string(),
                })
                .await?;
        }
        let (bytes, base, content_type) = (body.body, body.final_url, body.content_type);
        let large_body_slot = body.slot;
        // Parsing is CPU-bound: keep it off the runtime's I/O threads, and run no more
        // parses at once than there are cores. More would not finish sooner, and each one
        // holds a document's worth of memory, which the allocator keeps once it has it.
        let slot = self.parse_slots.clone().acquire_owned().await.ok();
        let parsed = tokio::task::spawn_blocking(move || {
            let parsed = parse::parse_document(&bytes, Some(&base), content_type.as_deref());
            // The slots go once the document's memory has.
            drop(bytes);
            drop((slot, large_body_slot));
            parsed
        })
        .await
        .map_err(|err| parse::ParseError::Malformed(format!("parser crashed: {err}")))
        .and_then(|parsed| parsed);
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(err) => {
                let next_due = due::after_failure(feed, poll, started, failures, None);
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
        let next_due = due::after_success(feed, poll, started, hint);
        let update = FeedUpdate {
            next_due_at: next_due.timestamp(),
            ..update
        };
        if parsed.dropped_items + parsed.dropped_elements > 0 {
            tracing::warn!(
                dropped_items = parsed.dropped_items,
                dropped_elements = parsed.dropped_elements,
                kept_items = parsed.items.len(),
                "the document is past the parse caps: the items (and repeated elements) past them were dropped"
            );
            metrics::capped(parsed.dropped_items, parsed.dropped_elements);
        }
        let ParsedFeed { title, items, .. } = parsed;
        let total = items.len();
        let (candidates, document_keys) = self.new_candidates(index, state.id, items).await?;
        let new_items = candidates.len();
        let Committed { matches, alerts } = self
            .committer
            .commit(FeedResult::Fetched(Box::new(Fetched {
                feed: index,
                feed_id: state.id,
                at: started,
                candidates,
                // On a feed's first fetch only recent items alert (`poll.backfill`); the
                // rest are stored so they are never "new" again.
                first_fetch: state.last_success_at.is_none(),
                update: FeedUpdate {
                    title,
                    document_keys: Some(document_keys),
                    ..update
                },
            })))
            .await?;
        metrics::fetch("ok", clock.elapsed());
        metrics::refreshed(new_items, alerts);
        tracing::info!(items = total, new_items, matches, alerts, "feed refreshed");
        Ok(Report {
            feed: feed.name.clone(),
            outcome: Outcome::Updated {
                items: total,
                new_items,
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
        self.committer
            .commit(FeedResult::Failed {
                feed_id: state.id,
                failure: FeedFailure {
                    error: error.clone(),
                    class,
                    at: now,
                    next_due_at: next_due.timestamp(),
                    disable,
                },
            })
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
    /// watch-lists that follow this feed, and the digests of all its item keys (what
    /// retention must not forget).
    async fn new_candidates(
        &self,
        index: usize,
        feed_id: i64,
        items: Vec<Item>,
    ) -> Result<(Vec<Candidate>, Vec<u8>), StoreError> {
        let watchlists = &self.config.watchlists;
        let wanted = |w: usize| watchlists.get(w).is_some_and(|list| list.watches(index));
        let keys: Vec<String> = items.iter().map(dedup::item_key).collect();
        let document_keys = retention::document_keys(keys.iter().map(String::as_str));
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
        Ok((candidates, document_keys))
    }
}
