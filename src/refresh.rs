//! One feed through the whole pipeline: fetch → parse → dedup → match → commit. This is
//! the only place the stages meet (as miniflux's `RefreshFeed`); each stage knows nothing
//! of the others.
//!
//! Input: a configured feed and its stored poll state. Output: the feed's new items, their
//! matches and the feed's new validators and due time — or, on failure, the classified
//! error — handed to the commit stage, which stores them in one transaction (shared with
//! other feeds' results). Either the whole fetch is recorded or none of it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::article::Articles;
use crate::clock;
use crate::commit::{Candidate, Committed, Committer, FeedResult, Fetched, Writer};
use crate::config::Config;
use crate::dedup;
use crate::due;
use crate::fetch::{FetchError, FetchOutcome, FetchedBody, Fetcher};
use crate::matcher::{Document, Matcher};
// What a preview hands out, so that its users need not reach into the matcher.
// What a preview shows, named here so the commands that print it need no stage but this.
pub use crate::matcher::{Highlight, WatchlistMatch};
use crate::metrics;
pub use crate::parse::MAX_ITEMS;
use crate::parse::{self, Item, ParsedFeed};
use crate::redact;
use crate::store::{ErrorClass, FeedFailure, FeedState, FeedUpdate, Store, StoreError, retention};

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
    /// Another node holds the feed's lease (`holder`), or refreshed it this cycle
    /// already (SPEC §17): nothing was fetched here.
    Elsewhere {
        holder: Option<String>,
    },
}

impl Outcome {
    /// How `poll` and the demo say that another node has the feed.
    pub fn elsewhere(holder: &Option<String>) -> String {
        match holder {
            Some(node) => format!("being refreshed by node {node}"),
            None => "refreshed by another node this cycle".to_string(),
        }
    }
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
    /// The article pages of `full_text` feeds.
    pub articles: Articles,
}

/// An item's language (ISO 639-1): detected from its title and its article, summary or
/// content, the first of them it has; the feed's declared one when detection is unsure.
pub fn detect_language(item: &Item) -> Option<String> {
    let body = [&item.article, &item.summary, &item.content]
        .into_iter()
        .find(|text| !text.is_empty())
        .map_or("", String::as_str);
    crate::language::detect(&item.title, body, item.language.as_deref())
}

/// The fields of a parsed item the matcher searches.
pub fn document(item: &Item) -> Document<'_> {
    Document {
        title: &item.title,
        summary: &item.summary,
        content: &item.content,
        categories: &item.categories,
        article: &item.article,
    }
}

impl Pipeline {
    /// The pipeline of a configuration on `store`, and the database writer behind it
    /// (which runs until every clone of the pipeline is dropped). The store must know the
    /// configuration's feeds (`Store::register`) before a refresh; a preview needs not.
    pub fn new(config: &Arc<Config>, store: &Store) -> Result<(Pipeline, Writer), reqwest::Error> {
        let fetcher = Fetcher::new(&config.poll)?;
        let articles = Articles::new(&config.poll)?;
        let (committer, writer) = Committer::start(store.clone(), config.clone());
        let pipeline = Pipeline {
            config: config.clone(),
            store: store.clone(),
            fetcher,
            committer,
            parse_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            )),
            articles,
        };
        Ok((pipeline, writer))
    }

    /// Feed `index` as a refresh would find it now, fetched unconditionally, with nothing
    /// stored: every item keyed and matched by the watch-lists that follow the feed, and
    /// marked `known` when the store holds it already (`poll --dry-run`).
    pub async fn preview(&self, index: usize) -> Result<Preview, PreviewError> {
        let feed = &self.config.feeds[index];
        let body = match self.fetcher.fetch(&feed.url, None, None).await {
            Ok(FetchOutcome::Fetched(body)) => body,
            Ok(FetchOutcome::NotModified { .. }) => return Err(PreviewError::NotModified),
            Err(err) => return Err(PreviewError::Fetch(err)),
        };
        let parsed = parse_body(*body, Some(&self.parse_slots)).await?;
        let keys: Vec<String> = parsed.items.iter().map(dedup::item_key).collect();
        let known = match self.store.feed_state(&feed.name).await? {
            Some(state) => self.store.known_items(state.id, &keys).await?,
            None => HashSet::new(),
        };
        let watchlists = &self.config.watchlists;
        let wanted = |w: usize| watchlists.get(w).is_some_and(|list| list.watches(index));
        Ok(examine(parsed, &self.config.matcher, &wanted, &known))
    }

    /// Refreshes feed number `index` of the config. Only a store failure is an `Err`:
    /// fetch and parse failures are recorded on the feed and reported in the outcome.
    #[tracing::instrument(skip_all, fields(feed = %self.config.feeds[index].name), err(Display))]
    pub async fn refresh(&self, index: usize) -> Result<Report, StoreError> {
        let feed = &self.config.feeds[index];
        let poll = &self.config.poll;
        let timer = std::time::Instant::now();
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
                metrics::fetch("not_modified", timer.elapsed());
                tracing::debug!("not modified");
                return Ok(Report {
                    feed: feed.name.clone(),
                    outcome: Outcome::NotModified,
                    next_due: Some(next_due),
                });
            }
            Ok(FetchOutcome::Fetched(body)) => body,
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
                metrics::fetch(err.class(), timer.elapsed());
                let class = fetch_class(&err);
                return self
                    .failed(&state, class, error, next_due, gone, retry_after, now)
                    .await;
            }
        };

        let mut body = body;
        let update = FeedUpdate {
            title: None,
            etag: body.etag.take(),
            last_modified: body.last_modified.take(),
            next_due_at: 0,
            fetched_at: now,
            document_keys: None,
        };
        let fresh_for = body.fresh_for;
        if let Some(moved) = body.moved_to.take() {
            tracing::info!(moved_to = %redact::url(&moved, &feed.redact_params), "feed moved permanently");
            self.committer
                .commit(FeedResult::Moved {
                    feed_id: state.id,
                    url: moved.to_string(),
                })
                .await?;
        }
        let parsed = match parse_body(*body, Some(&self.parse_slots)).await {
            Ok(parsed) => parsed,
            Err(err) => {
                let next_due = due::after_failure(feed, poll, started, failures, None);
                metrics::fetch(err.kind(), timer.elapsed());
                return self
                    .failed(
                        &state,
                        parse_class(&err),
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
        metrics::fetch("ok", timer.elapsed());
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
        class: ErrorClass,
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
        let class = class.as_str();
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
        let (mut fresh, fresh_keys): (Vec<Item>, Vec<String>) = items
            .into_iter()
            .zip(keys)
            // Known already, or repeated within this document.
            .filter(|(_, key)| seen.insert(key.clone()))
            .unzip();
        if self.config.feeds[index].full_text && !fresh.is_empty() {
            let links: Vec<String> = fresh
                .iter()
                .filter_map(|item| item.link.as_ref().map(dedup::canonical_link))
                .collect();
            let known = self.store.linked(&links).await?;
            self.articles.fill(&mut fresh, &known).await;
        }
        let mut candidates = Vec::with_capacity(fresh.len());
        for (mut item, key) in fresh.into_iter().zip(fresh_keys) {
            let mut examined = self
                .config
                .matcher
                .examine(&document(&item), &wanted, false);
            item.language = detect_language(&item);
            let language = item.language.as_deref();
            let reads = |w: usize| watchlists.get(w).is_some_and(|l| l.reads(language));
            examined.matches.retain(|m| reads(m.watchlist));
            examined.misses.retain(|m| reads(m.watchlist));
            candidates.push(Candidate::new(key, item, examined));
        }
        Ok((candidates, document_keys))
    }
}

/// A document as the pipeline would take it, with nothing stored (see [`Pipeline::preview`]
/// and [`preview_document`]).
#[derive(Debug)]
pub struct Preview {
    pub title: Option<String>,
    pub items: Vec<PreviewItem>,
    /// Items past the parse stage's item cap, dropped unread.
    pub dropped_items: usize,
    /// Other elements past their caps (repeated categories, authors, ...), dropped.
    pub dropped_elements: usize,
}

/// One item of a [`Preview`].
#[derive(Debug)]
pub struct PreviewItem {
    pub item: Item,
    /// Its identity within its feed.
    pub key: String,
    /// Its canonical link, which decides its story.
    pub canonical: Option<String>,
    /// Whether the feed's stored items hold it already.
    pub known: bool,
    /// What each watch-list found in it.
    pub matches: Vec<WatchlistMatch>,
    /// Watch-lists whose terms hit it and that an exclude or their query still refused.
    pub misses: Vec<crate::matcher::Miss>,
}

/// The store's class of a failed fetch: the name [`FetchError::class`] gives metrics.
fn fetch_class(err: &FetchError) -> ErrorClass {
    match err {
        FetchError::Network(_) | FetchError::BadLocation(_) | FetchError::Redirect(_) => {
            ErrorClass::Network
        }
        FetchError::Timeout(_) => ErrorClass::Timeout,
        FetchError::Status { .. } => ErrorClass::HttpStatus,
        FetchError::TooLarge(_) => ErrorClass::TooLarge,
        FetchError::Forbidden(_) => ErrorClass::Forbidden,
    }
}

/// The store's class of a failed parse: the name [`parse::ParseError::kind`] gives metrics.
fn parse_class(err: &parse::ParseError) -> ErrorClass {
    match err {
        parse::ParseError::NotAFeed(_) => ErrorClass::NotAFeed,
        parse::ParseError::Malformed(_) => ErrorClass::Malformed,
    }
}

/// Why a preview has no document.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("not modified")]
    NotModified,
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client")]
    Client(#[from] reqwest::Error),
}

impl PreviewError {
    /// The failure's class, as `wirewatch feeds` and the metrics name it.
    pub fn class(&self) -> &'static str {
        match self {
            PreviewError::Fetch(err) => err.class(),
            PreviewError::Parse(err) => err.kind(),
            PreviewError::NotModified => "not_modified",
            PreviewError::Store(_) | PreviewError::Client(_) => "internal",
        }
    }
}

/// Where a document to preview comes from.
#[derive(Debug)]
pub enum Source {
    /// Fetched as a feed is (network guard, deadline, size cap).
    Url(url::Url),
    /// Read already (a local file): no base URL for relative links.
    Bytes(Vec<u8>),
}

/// Any document, fetched or given, parsed, keyed and matched by the watch-lists `wanted`
/// selects, as a refresh would, without a store (`wirewatch test-feed`).
pub async fn preview_document(
    config: &Config,
    source: Source,
    wanted: &dyn Fn(usize) -> bool,
) -> Result<Preview, PreviewError> {
    let parsed = match source {
        Source::Url(url) => match Fetcher::new(&config.poll)?.fetch(&url, None, None).await? {
            FetchOutcome::Fetched(body) => parse_body(*body, None).await?,
            FetchOutcome::NotModified { .. } => return Err(PreviewError::NotModified),
        },
        Source::Bytes(bytes) => {
            tokio::task::spawn_blocking(move || parse::parse_document(&bytes, None, None))
                .await
                .map_err(|err| parse::ParseError::Malformed(format!("parser crashed: {err}")))??
        }
    };
    Ok(examine(parsed, &config.matcher, wanted, &HashSet::new()))
}

/// Parses a fetched body off the runtime's threads: CPU-bound, and with `slots`, no more
/// at once than there are cores (more would not finish sooner, and each holds a
/// document's worth of memory, which the allocator keeps once it has it). The body's
/// large-body slot goes once the document's memory has.
async fn parse_body(
    body: FetchedBody,
    slots: Option<&Arc<tokio::sync::Semaphore>>,
) -> Result<ParsedFeed, parse::ParseError> {
    let slot = match slots {
        Some(slots) => slots.clone().acquire_owned().await.ok(),
        None => None,
    };
    let FetchedBody {
        body: bytes,
        final_url,
        content_type,
        slot: large_body_slot,
        ..
    } = body;
    tokio::task::spawn_blocking(move || {
        let parsed = parse::parse_document(&bytes, Some(&final_url), content_type.as_deref());
        drop(bytes);
        drop((slot, large_body_slot));
        parsed
    })
    .await
    .map_err(|err| parse::ParseError::Malformed(format!("parser crashed: {err}")))?
}

/// Every item of `parsed`, keyed, matched by the watch-lists `wanted` selects, and marked
/// known when `known` holds its key.
fn examine(
    parsed: ParsedFeed,
    matcher: &Matcher,
    wanted: &dyn Fn(usize) -> bool,
    known: &HashSet<String>,
) -> Preview {
    let items = parsed
        .items
        .into_iter()
        .map(|item| {
            let key = dedup::item_key(&item);
            let examined = matcher.examine(&document(&item), wanted, true);
            PreviewItem {
                known: known.contains(&key),
                canonical: item.link.as_ref().map(dedup::canonical_link),
                matches: examined.matches,
                misses: examined.misses,
                key,
                item,
            }
        })
        .collect();
    Preview {
        title: parsed.title,
        items,
        dropped_items: parsed.dropped_items,
        dropped_elements: parsed.dropped_elements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_stored_under_the_class_name_its_metrics_carry() {
        let fetches = [
            FetchError::BadLocation(url::ParseError::EmptyHost),
            FetchError::Redirect(crate::guard::HopError::Downgrade),
            FetchError::Timeout(Duration::from_secs(30)),
            FetchError::Status {
                status: reqwest::StatusCode::GONE,
                retry_after: None,
            },
            FetchError::TooLarge(1),
            FetchError::Forbidden("refused".into()),
        ];
        for err in &fetches {
            assert_eq!(fetch_class(err).as_str(), err.class(), "{err}");
        }
        let parses = [
            parse::ParseError::NotAFeed("html".into()),
            parse::ParseError::Malformed("eof".into()),
        ];
        for err in &parses {
            assert_eq!(parse_class(err).as_str(), err.kind(), "{err}");
        }
    }
}
