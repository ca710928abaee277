//! The story rows the commit stage reads and writes inside its transaction (SPEC §10):
//! the links each story carries, the band index of near-duplicate text, what a story looks
//! like when an alert is rendered, and the matches a growing story escalates.
//!
//! Input: canonical links, band keys, story ids. Output: story ids, index neighbours,
//! [`StorySummary`]s. All of it runs in the commit's `BEGIN IMMEDIATE` transaction: SQLite's
//! one write lock is what makes "look up, then place the item" atomic, so two copies of a
//! story committed at once, by this daemon or another process on the same file, still
//! form one story.
//!
//! The index holds items within `[stories] window` only: [`Store::prune_story_bands`]
//! removes an item's keys once it is older, using the keys stored on the item itself.
//!
//! Lists (links, keys, ids) go into a statement as one JSON array read with `json_each`:
//! one statement whatever their length, its text always the same, so it is prepared once
//! per connection. Under load what a commit waits for is statements (each one two
//! hand-offs to sqlx's SQLite thread), not SQLite's own work.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::queries::{StorySighting, items_of_stories, story_counts};
use super::{Result, Store, StoreTx};
use super::{query, query_as, query_scalar};

/// A stored item that shares band keys with new items of the commit.
#[derive(Debug)]
pub struct Neighbour {
    pub item_id: i64,
    pub story_id: i64,
    pub title: String,
    pub summary: String,
    /// The keys it shares with the ones looked up.
    pub keys: Vec<i64>,
}

/// A story as an alert shows it.
#[derive(Debug, Clone)]
pub struct StorySummary {
    pub id: i64,
    pub first_seen_at: i64,
    /// Distinct feeds of its items.
    pub feeds: u64,
    pub items: u64,
    /// Its first items, in the order seen, at most the number asked for.
    pub sightings: Vec<StorySighting>,
}

/// A match whose story may have grown past one of its watch-list's `escalate` thresholds,
/// with what its `watchlist.story_grew` event shows: the alerted item, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Escalation {
    pub match_id: String,
    pub story_id: i64,
    pub watchlist: String,
    /// The threshold announced last (0: none yet).
    pub escalated: i64,
    pub terms: String,
    pub highlights: String,
    pub feed: String,
    pub feed_title: Option<String>,
    pub item_key: String,
    pub title: String,
    pub url: Option<String>,
    pub published_at: Option<i64>,
    pub summary: String,
    pub authors: String,
    pub categories: String,
    pub language: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Link {
    canonical_url: String,
    story_id: i64,
}

impl Store {
    /// Which of these canonical links a stored story carries already.
    pub async fn linked(&self, urls: &[String]) -> Result<HashSet<String>> {
        if urls.is_empty() {
            return Ok(HashSet::new());
        }
        let urls = serde_json::to_string(urls)?;
        self.pipeline_read(async |conn| {
            let found: Vec<(String,)> = query_as(
                "SELECT canonical_url FROM story_links
                 WHERE canonical_url IN (SELECT value FROM json_each($1))",
            )
            .bind(&urls)
            .fetch_all(&mut *conn)
            .await?;
            Ok(found.into_iter().map(|(url,)| url).collect())
        })
        .await
    }
}

impl StoreTx {
    /// The stories that already carry these canonical links.
    pub async fn linked_stories(&mut self, urls: &[&str]) -> Result<HashMap<String, i64>> {
        if urls.is_empty() {
            return Ok(HashMap::new());
        }
        let links: Vec<Link> = query_as(
            "SELECT canonical_url, story_id FROM story_links
             WHERE canonical_url IN (SELECT value FROM json_each($1))",
        )
        .bind(serde_json::to_string(urls)?)
        .fetch_all(&mut *self.conn)
        .await?;
        Ok(links
            .into_iter()
            .map(|link| (link.canonical_url, link.story_id))
            .collect())
    }

    /// The highest story id in use. New stories of the commit take the ids after it: the
    /// transaction holds the write lock, so no other writer can take them meanwhile, and
    /// the commit knows every new item's story before a row is written.
    pub async fn last_story_id(&mut self) -> Result<i64> {
        Ok(query_scalar::<Option<i64>>("SELECT MAX(id) FROM stories")
            .fetch_one(&mut *self.conn)
            .await?
            .unwrap_or(0))
    }

    /// A new story of its own (tests build stories one at a time).
    #[cfg(test)]
    pub(crate) async fn new_story(&mut self, now: i64) -> Result<i64> {
        let id = self.last_story_id().await? + 1;
        self.insert_stories(&[id], now).await?;
        Ok(id)
    }

    /// Creates the stories with these ids, first and last seen `now`.
    pub async fn insert_stories(&mut self, ids: &[i64], now: i64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        query(
            "INSERT INTO stories (id, first_seen_at, last_seen_at)
             SELECT CAST(value AS BIGINT), $2, $2 FROM json_each($1)",
        )
        .bind(serde_json::to_string(ids)?)
        .bind(now)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    /// Records which story each canonical link belongs to; a link already recorded keeps
    /// its story.
    pub async fn link_stories(&mut self, links: &[(&str, i64)]) -> Result<()> {
        if links.is_empty() {
            return Ok(());
        }
        query(
            "INSERT INTO story_links (canonical_url, story_id)
             SELECT value ->> 0, CAST(value ->> 1 AS BIGINT) FROM json_each($1) WHERE true
             ON CONFLICT (canonical_url) DO NOTHING",
        )
        .bind(serde_json::to_string(links)?)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    /// Marks existing stories as active `now` (an item joined them).
    pub async fn touch_stories(&mut self, ids: &[i64], now: i64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        query(
            "UPDATE stories SET last_seen_at = $2
             WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each($1))",
        )
        .bind(serde_json::to_string(ids)?)
        .bind(now)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    /// The indexed items first seen at `since` or later that share any of `keys`, each
    /// with the keys it shares, in item order.
    pub async fn band_neighbours(&mut self, keys: &[i64], since: i64) -> Result<Vec<Neighbour>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut unique = keys.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let rows: Vec<(i64, i64, i64, String, String, Option<String>)> = query_as(
            "SELECT b.band_key, i.id, i.story_id, i.title, i.summary,
                substr(i.article, 1, CAST($3 AS INTEGER))
             FROM story_bands b JOIN items i ON i.id = b.item_id
             WHERE b.band_key IN (SELECT CAST(value AS BIGINT) FROM json_each($1)) AND i.first_seen_at >= $2
             ORDER BY i.id",
        )
        .bind(serde_json::to_string(&unique)?)
        .bind(since)
        .bind(i64::try_from(crate::stories::LEDE_CHARS).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.conn)
        .await?;
        let mut neighbours: Vec<Neighbour> = Vec::new();
        for (key, item_id, story_id, title, summary, article) in rows {
            // Compared as it was indexed: its summary, or its teaser and lede.
            let summary = match article {
                Some(article) => crate::stories::lede(&summary, &article).into_owned(),
                None => summary,
            };
            match neighbours.last_mut() {
                Some(last) if last.item_id == item_id => last.keys.push(key),
                _ => neighbours.push(Neighbour {
                    item_id,
                    story_id,
                    title,
                    summary,
                    keys: vec![key],
                }),
            }
        }
        Ok(neighbours)
    }

    /// Adds items to the band index, each under its keys.
    pub async fn insert_bands(&mut self, items: &[(i64, &[i64])]) -> Result<()> {
        let rows: Vec<(i64, i64)> = items
            .iter()
            .flat_map(|(item, keys)| keys.iter().map(move |key| (*key, *item)))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        query(
            "INSERT INTO story_bands (band_key, item_id)
             SELECT CAST(value ->> 0 AS BIGINT), CAST(value ->> 1 AS BIGINT)
             FROM json_each($1) WHERE true
             ON CONFLICT DO NOTHING",
        )
        .bind(serde_json::to_string(&rows)?)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    /// Takes items out of the band index: their rows, under the keys stored on each item,
    /// and the keys themselves.
    pub(super) async fn unband(&mut self, items: &[(i64, Vec<u8>)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        for (item, blob) in items {
            // Point look-ups on the primary key (band_key, item_id), one per key.
            query(
                "DELETE FROM story_bands
                 WHERE item_id = $1 AND band_key IN (SELECT CAST(value AS BIGINT) FROM json_each($2))",
            )
            .bind(*item)
            .bind(serde_json::to_string(&crate::stories::bands_of_blob(blob))?)
            .execute(&mut *self.conn)
            .await?;
        }
        let ids: Vec<i64> = items.iter().map(|(id, _)| *id).collect();
        query("UPDATE items SET bands = NULL WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each($1))")
            .bind(serde_json::to_string(&ids)?)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    /// The stories as alerts show them: counts, first seen, and up to `sightings` items
    /// each, in the order seen.
    pub async fn story_summaries(
        &mut self,
        ids: &HashSet<i64>,
        sightings: usize,
    ) -> Result<HashMap<i64, StorySummary>> {
        let mut ids: Vec<i64> = ids.iter().copied().collect();
        ids.sort_unstable();
        let counts = story_counts(&mut self.conn, &ids).await?;
        let mut items = items_of_stories(&mut self.conn, &ids, sightings).await?;
        Ok(counts
            .into_iter()
            .map(|(id, counts)| {
                let summary = StorySummary {
                    id,
                    first_seen_at: counts.first_seen_at,
                    feeds: counts.feeds,
                    items: counts.items,
                    sightings: items.remove(&id).unwrap_or_default(),
                };
                (id, summary)
            })
            .collect())
    }

    /// The matches of these stories that alerted (an outbox row was queued for them) on
    /// one of `watchlists`, with the item each alerted on.
    pub async fn escalations(
        &mut self,
        stories: &[i64],
        watchlists: &[&str],
    ) -> Result<Vec<Escalation>> {
        if watchlists.is_empty() {
            return Ok(Vec::new());
        }
        Ok(query_as(
            "SELECT m.id AS match_id, m.story_id, m.watchlist, m.escalated, m.terms,
                m.highlights, f.name AS feed, f.title AS feed_title, i.item_key, i.title,
                i.url, i.published_at, i.summary, i.authors, i.categories, i.language
             FROM matches m
             JOIN items i ON i.id = m.item_id
             JOIN feeds f ON f.id = i.feed_id
             WHERE m.story_id IN (SELECT CAST(value AS BIGINT) FROM json_each($1))
               AND m.watchlist IN (SELECT value FROM json_each($2))
               AND EXISTS (SELECT 1 FROM outbox o WHERE o.match_id = m.id)
             ORDER BY m.story_id, m.watchlist",
        )
        .bind(serde_json::to_string(stories)?)
        .bind(serde_json::to_string(watchlists)?)
        .fetch_all(&mut *self.conn)
        .await?)
    }

    /// Records that a match's story was announced at `threshold` feeds.
    pub async fn set_escalated(&mut self, match_id: &str, threshold: u32) -> Result<()> {
        query("UPDATE matches SET escalated = $2 WHERE id = $1 AND escalated < $2")
            .bind(match_id)
            .bind(i64::from(threshold))
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}

/// Items taken out of the band index per transaction.
const UNBAND_BATCH: i64 = 500;

impl Store {
    /// Takes every item first seen before `cutoff` out of the band index, a few hundred
    /// per transaction with `pause` between them. Returns how many.
    pub async fn prune_story_bands(&self, cutoff: i64, pause: Duration) -> Result<u64> {
        let mut pruned = 0;
        loop {
            let done = self
                .transaction(async |tx| {
                    let old: Vec<(i64, Vec<u8>)> = query_as(
                        "SELECT id, bands FROM items
                         WHERE bands IS NOT NULL AND first_seen_at < $1
                         ORDER BY first_seen_at, id LIMIT $2",
                    )
                    .bind(cutoff)
                    .bind(UNBAND_BATCH)
                    .fetch_all(&mut *tx.conn)
                    .await?;
                    tx.unband(&old).await?;
                    Ok(old.len())
                })
                .await?;
            pruned += done as u64;
            if (done as i64) < UNBAND_BATCH {
                return Ok(pruned);
            }
            tokio::time::sleep(pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::wire_store;
    use crate::store::{ItemRow, NewItem};
    use crate::stories::StoryText;

    /// Stores one indexed item per text on the feed `wire`, first seen at `at[i]`; returns
    /// their ids and texts.
    async fn indexed(store: &Store, feed: i64, texts: &[(&str, i64)]) -> Vec<(i64, StoryText)> {
        let mut stored = Vec::new();
        for (n, &(title, at)) in texts.iter().enumerate() {
            let text = StoryText::of(title, "").expect("words");
            let key = format!("k{n}");
            let id = store
                .transaction(async |tx| {
                    let story = tx.new_story(at).await?;
                    let row = ItemRow {
                        feed_id: feed,
                        story_id: story,
                        matched: true,
                        bands: Some(text.bands_blob()),
                        item: NewItem {
                            item_key: &key,
                            title,
                            ..NewItem::default()
                        },
                        ..ItemRow::default()
                    };
                    let ids = tx.insert_items(&[row], at).await?;
                    let id = ids[&(feed, key.clone())];
                    tx.insert_bands(&[(id, text.bands.as_slice())]).await?;
                    Ok(id)
                })
                .await
                .expect("store");
            stored.push((id, text));
        }
        stored
    }

    #[tokio::test]
    async fn the_index_finds_items_within_the_window_and_forgets_them_past_it() {
        let (_dir, store, feed) = wire_store().await;
        let title = "Iran and China sign a 25-year cooperation pact covering oil banking and ports";
        let stored = indexed(&store, feed, &[(title, 1_000), (title, 5_000)]).await;
        let keys = stored[0].1.bands.clone();
        let neighbours = |since: i64| {
            let keys = keys.clone();
            let store = store.clone();
            async move {
                store
                    .transaction(async |tx| tx.band_neighbours(&keys, since).await)
                    .await
                    .expect("look up")
            }
        };
        let found = neighbours(0).await;
        assert_eq!(
            found.iter().map(|n| n.item_id).collect::<Vec<_>>(),
            [stored[0].0, stored[1].0]
        );
        assert_eq!(found[0].keys.len(), keys.len(), "every key is shared");
        // The window starts after the first item: only the second is a candidate.
        let found = neighbours(2_000).await;
        assert_eq!(
            found.iter().map(|n| n.item_id).collect::<Vec<_>>(),
            [stored[1].0]
        );

        // Pruning takes the first item out of the index, rows and stored keys alike.
        let pruned = store
            .prune_story_bands(2_000, Duration::ZERO)
            .await
            .expect("prune");
        assert_eq!(pruned, 1);
        let found = neighbours(0).await;
        assert_eq!(
            found.iter().map(|n| n.item_id).collect::<Vec<_>>(),
            [stored[1].0]
        );
        let rows: i64 = store
            .transaction(async |tx| {
                Ok(query_scalar("SELECT COUNT(*) FROM story_bands")
                    .fetch_one(&mut *tx.conn)
                    .await?)
            })
            .await
            .expect("count");
        assert_eq!(rows, keys.len() as i64);
        let banded: i64 = store
            .transaction(async |tx| {
                Ok(
                    query_scalar("SELECT COUNT(*) FROM items WHERE bands IS NOT NULL")
                        .fetch_one(&mut *tx.conn)
                        .await?,
                )
            })
            .await
            .expect("count");
        assert_eq!(banded, 1);
    }
}

#[cfg(test)]
mod upgrade {
    use super::*;

    /// A database of the release before stories (migrations 1–4), holding a story with a
    /// link, its item, its match and a pending outbox row, opened by this version: nothing
    /// is lost, the link still finds its story, and the pending alert is still due.
    #[tokio::test]
    async fn a_database_from_before_stories_keeps_its_stories_links_and_pending_alerts() {
        if crate::store::sqlite_only("upgrading a SQLite file of the release before stories") {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wirewatch.db");
        {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .foreign_keys(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.expect("open");
            sqlx::migrate!("./migrations")
                .run_to(4, &pool)
                .await
                .expect("migrations 1 to 4");
            for statement in [
                "INSERT INTO feeds (id, name, url) VALUES (1, 'wire', 'https://wire.example/rss')",
                "INSERT INTO stories (id, canonical_url, first_seen_at)
                 VALUES (7, 'https://wire.example/a', 100)",
                "INSERT INTO items (id, feed_id, item_key, story_id, title, summary, authors,
                                    categories, first_seen_at, matched)
                 VALUES (3, 1, 'guid:a', 7, 'Iran and China sign', '', '[]', '[]', 100, 1)",
                "INSERT INTO matches (id, story_id, watchlist, item_id, terms, highlights,
                                      created_at)
                 VALUES ('m1', 7, 'iran-china', 3, '[]', '[]', 100)",
                "INSERT INTO outbox (id, match_id, webhook, body, next_attempt_at, created_at,
                                     attempts, last_error)
                 VALUES ('msg_1', 'm1', 'siem', '{}', 150, 100, 2, 'HTTP 503')",
            ] {
                sqlx::query(statement)
                    .execute(&pool)
                    .await
                    .expect(statement);
            }
            pool.close().await;
        }

        let store = Store::open(&path).await.expect("upgrade");
        let (links, last_seen, outbox) = store
            .transaction(async |tx| {
                let links = tx.linked_stories(&["https://wire.example/a"]).await?;
                let last_seen: Option<i64> =
                    query_scalar("SELECT last_seen_at FROM stories WHERE id = 7")
                        .fetch_one(&mut *tx.conn)
                        .await?;
                let outbox: (String, i64, String, i64, i64, Option<String>) = query_as(
                    "SELECT match_id, stage, status, attempts, next_attempt_at, last_error
                     FROM outbox WHERE id = 'msg_1'",
                )
                .fetch_one(&mut *tx.conn)
                .await?;
                Ok((links, last_seen, outbox))
            })
            .await
            .expect("read");
        assert_eq!(links.get("https://wire.example/a"), Some(&7));
        assert_eq!(last_seen, Some(100));
        assert_eq!(
            outbox,
            (
                "m1".to_string(),
                0,
                "pending".to_string(),
                2,
                150,
                Some("HTTP 503".to_string())
            )
        );
    }
}
