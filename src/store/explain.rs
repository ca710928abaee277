//! What `wirewatch explain` reads of one stored item (SPEC §11): its text as matched, its
//! story, its story's match of each watch-list (with whether that match was sent on its
//! own, waits for a digest or went in one), and why the item did not alert where it did
//! not. All in one read transaction on a read-only connection.

use std::collections::HashMap;

use super::queries::story_counts;
use super::query_as;
use super::{Held, MissReason, Result, Store};

/// A stored item found by `explain`, with what was stored about it.
#[derive(Debug, Clone)]
pub struct ExplainedItem {
    pub item: StoredItem,
    /// Distinct feeds and items of its story.
    pub story_feeds: u64,
    pub story_items: u64,
    /// The story's match of each watch-list, by watch-list name.
    pub story_matches: HashMap<String, StoryMatch>,
    /// Why the item did not match a watch-list whose terms it hit, by watch-list name.
    pub misses: HashMap<String, StoredMiss>,
}

/// An item's stored fields, the text exactly as the matcher read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredItem {
    pub id: i64,
    pub feed: String,
    pub item_key: String,
    pub story_id: i64,
    pub title: String,
    pub url: Option<String>,
    pub summary: String,
    pub content: Option<String>,
    pub article: Option<String>,
    /// JSON array.
    pub categories: String,
    pub first_seen_at: i64,
    /// The watch-lists it matched, a JSON array (`None`: none).
    pub watchlists: Option<String>,
}

/// A story's match of one watch-list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoryMatch {
    pub id: String,
    pub watchlist: String,
    /// The item that made it.
    pub item_id: i64,
    pub reason: Option<Held>,
    #[sqlx(try_from = "super::Flag")]
    pub awaiting_digest: bool,
    pub digest_id: Option<String>,
    /// Whether outbox rows were queued for it (it alerted on its own).
    #[sqlx(try_from = "super::Flag")]
    pub sent: bool,
    pub terms: String,
    pub highlights: String,
}

/// Why an item did not alert a watch-list whose terms it hit.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredMiss {
    pub watchlist: String,
    pub reason: MissReason,
    pub term: Option<String>,
    pub terms: String,
}

/// Most items one `explain` shows (a link carried by many feeds is many items).
pub const MAX_EXPLAINED: i64 = 20;

impl Store {
    /// The stored items `needle` names: an item id (a number), an item key (the payload's
    /// `item.id`), or a link as stored or in its canonical form (`canonical`): those it
    /// names exactly first, then oldest first.
    pub async fn explain(&self, needle: &str, canonical: &str) -> Result<Vec<ExplainedItem>> {
        let id: Option<i64> = needle.trim().parse().ok();
        self.look(async |conn| {
            // One snapshot: rolled back when dropped, whatever fails.
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let items: Vec<StoredItem> = query_as(
                "SELECT i.id, f.name AS feed, i.item_key, i.story_id, i.title, i.url, i.summary,
                    i.content, i.article, i.categories, i.first_seen_at, i.watchlists
                 FROM items i JOIN feeds f ON f.id = i.feed_id
                 WHERE i.id = $1 OR i.item_key = $2 OR i.url = $2 OR i.url = $3
                 ORDER BY (COALESCE(i.id = $1, false) OR i.item_key = $2 OR i.url = $2) DESC, i.first_seen_at, i.id
                 LIMIT $4",
            )
            .bind(id)
            .bind(needle)
            .bind(canonical)
            .bind(MAX_EXPLAINED)
            .fetch_all(&mut *tx)
            .await?;
            let stories: Vec<i64> = items.iter().map(|i| i.story_id).collect();
            let counts = story_counts(&mut tx, &stories).await?;
            let mut explained = Vec::with_capacity(items.len());
            for item in items {
                let story_matches: Vec<StoryMatch> = query_as(
                    "SELECT m.id, m.watchlist, m.item_id, m.reason, m.awaiting_digest,
                        m.digest_id, m.terms, m.highlights,
                        CASE WHEN EXISTS (
                            SELECT 1 FROM outbox o WHERE o.match_id = m.id AND o.stage = 0
                        ) THEN 1 ELSE 0 END AS sent
                     FROM matches m WHERE m.story_id = $1",
                )
                .bind(item.story_id)
                .fetch_all(&mut *tx)
                .await?;
                let misses: Vec<StoredMiss> = query_as(
                    "SELECT watchlist, reason, term, terms FROM misses WHERE item_id = $1",
                )
                .bind(item.id)
                .fetch_all(&mut *tx)
                .await?;
                let story = counts.get(&item.story_id);
                explained.push(ExplainedItem {
                    story_feeds: story.map_or(0, |s| s.feeds),
                    story_items: story.map_or(0, |s| s.items),
                    story_matches: story_matches
                        .into_iter()
                        .map(|m| (m.watchlist.clone(), m))
                        .collect(),
                    misses: misses
                        .into_iter()
                        .map(|m| (m.watchlist.clone(), m))
                        .collect(),
                    item,
                });
            }
            tx.commit().await?;
            Ok(explained)
        })
        .await
    }
}
