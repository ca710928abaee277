//! What a refresh reads and the commit stage writes: the items a feed already holds, and
//! the multi-row writes of one group commit on [`StoreTx`] (stories, items, matches,
//! outbox rows, and each feed's new validators, failure or redirect).
//!
//! Input: the rows of many refreshes, each feed's together. Output: which of them were
//! new (the ids the inserts returned); the unique constraints decide, with `ON CONFLICT
//! DO NOTHING`. Statements carry up to [`ROWS_PER_STATEMENT`] rows each: statements, not
//! SQLite's own work, are what a refresh waits for while the one write lock is held.

use std::collections::{HashMap, HashSet};

use super::query;
use super::{
    ErrorClass, Held, ROWS_PER_STATEMENT, Result, Store, StoreTx, multi_row, multi_row_as, values,
};

/// A failed refresh, as recorded on the feed's row.
#[derive(Debug, Clone)]
pub struct FeedFailure {
    pub error: String,
    pub class: ErrorClass,
    pub at: i64,
    pub next_due_at: i64,
    pub disable: bool,
}

/// What a fetch learned about a feed, written with the feed's items.
#[derive(Debug, Clone, Default)]
pub struct FeedUpdate {
    pub title: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub next_due_at: i64,
    pub fetched_at: i64,
    /// The item keys of the document just read, as [`super::retention::document_keys`]: items
    /// among them are never pruned. `None` leaves the stored list as it is.
    pub document_keys: Option<Vec<u8>>,
}

/// An item's fields as stored (see [`ItemRow`]). The default is an item with only empty
/// fields, for tests to fill in.
#[derive(Debug, Clone, Default)]
pub struct NewItem<'a> {
    pub item_key: &'a str,
    pub title: &'a str,
    pub url: Option<&'a str>,
    pub published_at: Option<i64>,
    pub summary: &'a str,
    /// The content text as matched; `""` for none.
    pub content: &'a str,
    /// The linked page's main text as matched; `""` for none.
    pub article: &'a str,
    pub authors: &'a [String],
    pub categories: &'a [String],
    pub language: Option<&'a str>,
}

/// A match to store (see [`StoreTx::insert_matches`]).
#[derive(Debug, Clone)]
pub struct NewMatch<'a> {
    pub id: &'a str,
    pub story_id: i64,
    pub watchlist: &'a str,
    pub item_id: i64,
    pub terms_json: String,
    pub highlights_json: String,
    pub created_at: i64,
    /// The highest `escalate` threshold the story has reached already (0: none).
    pub escalated: u32,
    /// Why it does not alert on its own; `None` when it does.
    pub held: Option<Held>,
    /// It waits for its watch-list's next digest.
    pub awaiting_digest: bool,
}

/// An item to insert: its feed, its story and its fields.
#[derive(Debug, Clone, Default)]
pub struct ItemRow<'a> {
    pub feed_id: i64,
    pub story_id: i64,
    /// Whether the item hit a watch-list: it is then kept for `retention.matches` rather
    /// than `retention.items`.
    pub matched: bool,
    /// The names of the watch-lists it matched, as a JSON array (`None` for none).
    pub watchlists: Option<String>,
    /// The item's story band keys when it enters the near-duplicate index
    /// ([`crate::stories::StoryText::bands_blob`]).
    pub bands: Option<Vec<u8>>,
    pub item: NewItem<'a>,
}

/// An item just inserted: its id, by its identity.
#[derive(sqlx::FromRow)]
struct InsertedItem {
    id: i64,
    feed_id: i64,
    item_key: String,
}

/// An outbox row: one alert rendered for one webhook.
#[derive(Debug, Clone)]
pub struct OutboxRow<'a> {
    pub id: String,
    pub match_id: &'a str,
    pub webhook: &'a str,
    /// 0 for the alert, N for `watchlist.story_grew` at N feeds.
    pub stage: u32,
    pub body: String,
}

impl Store {
    /// Which of `keys` the feed already holds: one query per few hundred keys rather
    /// than one per item, since most items of most fetches are already known.
    pub async fn known_items(&self, feed_id: i64, keys: &[String]) -> Result<HashSet<String>> {
        // SQLite allows 32,766 parameters; stay far below so the statements stay small.
        const CHUNK: usize = 400;
        self.pipeline_read(async |conn| {
            let mut known = HashSet::new();
            for chunk in keys.chunks(CHUNK) {
                let sql = format!(
                    "SELECT item_key FROM items WHERE feed_id = {} AND item_key IN {}",
                    super::placeholder(1),
                    super::values_from(2, 1, chunk.len())
                );
                let mut query = multi_row_as::<(String,)>(sql, chunk.len()).bind(feed_id);
                for key in chunk {
                    query = query.bind(key);
                }
                for (key,) in query.fetch_all(&mut *conn).await? {
                    known.insert(key);
                }
            }
            Ok(known)
        })
        .await
    }
}

impl StoreTx {
    /// Inserts items of any number of feeds; returns the ids of those inserted, by
    /// (feed id, item key). An item its feed already holds is left out.
    pub async fn insert_items(
        &mut self,
        rows: &[ItemRow<'_>],
        now: i64,
    ) -> Result<HashMap<(i64, String), i64>> {
        let mut ids = HashMap::with_capacity(rows.len());
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO items (feed_id, item_key, story_id, title, url, published_at,
                                    summary, authors, categories, language, first_seen_at,
                                    matched, bands, content, watchlists, article)
                 VALUES {}
                 ON CONFLICT (feed_id, item_key) DO NOTHING
                 RETURNING id, feed_id, item_key",
                values(chunk.len(), 16)
            );
            let mut insert = multi_row_as::<InsertedItem>(sql, chunk.len());
            for row in chunk {
                let item = &row.item;
                insert = insert
                    .bind(row.feed_id)
                    .bind(item.item_key)
                    .bind(row.story_id)
                    .bind(item.title)
                    .bind(item.url)
                    .bind(item.published_at)
                    .bind(item.summary)
                    .bind(serde_json::to_string(item.authors)?)
                    .bind(serde_json::to_string(item.categories)?)
                    .bind(item.language)
                    .bind(now)
                    .bind(i64::from(row.matched))
                    .bind(row.bands.as_deref())
                    .bind(Some(item.content).filter(|c| !c.is_empty()))
                    .bind(row.watchlists.as_deref())
                    .bind(Some(item.article).filter(|a| !a.is_empty()));
            }
            for item in insert.fetch_all(&mut *self.conn).await? {
                ids.insert((item.feed_id, item.item_key), item.id);
            }
        }
        Ok(ids)
    }

    /// Inserts matches; returns the ids of those inserted. A match is left out when its
    /// story already has one for that watch-list, whether from an earlier transaction or
    /// from an earlier row of `matches`.
    pub async fn insert_matches(&mut self, matches: &[NewMatch<'_>]) -> Result<HashSet<String>> {
        let mut inserted = HashSet::with_capacity(matches.len());
        for chunk in matches.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO matches (id, story_id, watchlist, item_id, terms, highlights,
                                      created_at, escalated, reason, awaiting_digest)
                 VALUES {}
                 ON CONFLICT (story_id, watchlist) DO NOTHING
                 RETURNING id",
                values(chunk.len(), 10)
            );
            let mut insert = multi_row_as::<(String,)>(sql, chunk.len());
            for m in chunk {
                insert = insert
                    .bind(m.id)
                    .bind(m.story_id)
                    .bind(m.watchlist)
                    .bind(m.item_id)
                    .bind(m.terms_json.as_str())
                    .bind(m.highlights_json.as_str())
                    .bind(m.created_at)
                    .bind(i64::from(m.escalated))
                    .bind(m.held)
                    .bind(i64::from(m.awaiting_digest));
            }
            for (id,) in insert.fetch_all(&mut *self.conn).await? {
                inserted.insert(id);
            }
        }
        Ok(inserted)
    }

    /// Queues rendered alerts for delivery, due at once.
    pub async fn insert_outbox(&mut self, rows: &[OutboxRow<'_>], now: i64) -> Result<()> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO outbox (id, match_id, webhook, stage, body, next_attempt_at,
                                     created_at)
                 VALUES {}
                 ON CONFLICT (match_id, webhook, stage) DO NOTHING",
                values(chunk.len(), 7)
            );
            let mut insert = multi_row(sql, chunk.len());
            for row in chunk {
                insert = insert
                    .bind(row.id.as_str())
                    .bind(row.match_id)
                    .bind(row.webhook)
                    .bind(i64::from(row.stage))
                    .bind(row.body.as_str())
                    .bind(now)
                    .bind(now);
            }
            insert.execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    /// Successful fetches: each feed's new validators, title and due time.
    pub async fn update_feeds(&mut self, updates: &[(i64, &FeedUpdate)]) -> Result<()> {
        for chunk in updates.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "WITH v (id, title, etag, last_modified, next_due_at, fetched_at,
                         document_keys) AS (VALUES {})
                 UPDATE feeds SET title = COALESCE(v.title, feeds.title), etag = v.etag,
                    last_modified = v.last_modified, next_due_at = v.next_due_at,
                    last_fetch_at = v.fetched_at, last_success_at = v.fetched_at,
                    failure_count = 0, last_error = NULL, last_error_class = NULL,
                    document_keys = COALESCE(v.document_keys, feeds.document_keys)
                 FROM v WHERE feeds.id = v.id",
                values(chunk.len(), 7)
            );
            let mut update = multi_row(sql, chunk.len());
            for (feed_id, u) in chunk {
                update = update
                    .bind(*feed_id)
                    .bind(u.title.as_deref())
                    .bind(u.etag.as_deref())
                    .bind(u.last_modified.as_deref())
                    .bind(u.next_due_at)
                    .bind(u.fetched_at)
                    .bind(u.document_keys.as_deref());
            }
            update.execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    /// Fetches that changed nothing (304): only each feed's schedule moves. Takes
    /// (feed id, fetched at, next due at).
    pub async fn record_not_modified(&mut self, feeds: &[(i64, i64, i64)]) -> Result<()> {
        for chunk in feeds.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "WITH v (id, fetched_at, next_due_at) AS (VALUES {})
                 UPDATE feeds SET last_fetch_at = v.fetched_at, last_success_at = v.fetched_at,
                    next_due_at = v.next_due_at, failure_count = 0, last_error = NULL,
                    last_error_class = NULL
                 FROM v WHERE feeds.id = v.id",
                values(chunk.len(), 3)
            );
            let mut update = multi_row(sql, chunk.len());
            for (feed_id, fetched_at, next_due_at) in chunk {
                update = update.bind(*feed_id).bind(*fetched_at).bind(*next_due_at);
            }
            update.execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    /// A failed fetch or parse: the error and its class are kept on the feed's row with
    /// the time. `disable` (a 410) stops polling the feed, with the error as the reason.
    pub async fn record_failure(&mut self, feed_id: i64, failure: &FeedFailure) -> Result<()> {
        query(
            "UPDATE feeds SET last_fetch_at = $4, last_error = $2, last_error_class = $3,
                last_error_at = $4, failure_count = failure_count + 1, next_due_at = $5,
                disabled_at = CASE WHEN $6 THEN $4 ELSE disabled_at END,
                disabled_reason = CASE WHEN $6 THEN $2 ELSE disabled_reason END
             WHERE id = $1",
        )
        .bind(feed_id)
        .bind(failure.error.as_str())
        .bind(failure.class)
        .bind(failure.at)
        .bind(failure.next_due_at)
        .bind(failure.disable)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    /// A permanent redirect moved the feed (its target already passed the network guard).
    pub async fn record_moved(&mut self, feed_id: i64, url: &str) -> Result<()> {
        query("UPDATE feeds SET moved_to = $2 WHERE id = $1")
            .bind(feed_id)
            .bind(url)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}
