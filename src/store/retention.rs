//! Retention (SPEC §14): forgetting old rows in small batches, without forgetting anything
//! de-duplication still needs.
//!
//! Input: the `[retention]` settings and the time now. Output: deleted rows, in batches of
//! [`BATCH`], each batch its own short write transaction queued behind the pipeline's
//! writer like any other, with a pause between batches so that polling never waits on a
//! long delete. The rules:
//! - delivered outbox rows older than `deliveries` go (their frozen bodies are the bulk);
//!   pending and dead-lettered rows stay;
//! - matches older than `matches` go once no outbox row refers to them;
//! - items go once older than `items` (never matched) or `matches` (matched), and only if
//!   no match refers to them and the feed's latest document does not hold them: every
//!   feed row keeps the sorted 8-byte digests of its latest document's item keys
//!   ([`document_keys`]), so an item a feed still serves is never forgotten and never
//!   alerts again as new. An item that leaves its feed's document, stays away longer than
//!   the retention and then comes back is new again;
//! - a story goes with its last item and match;
//! - then freed pages beyond a fifth of the file go back to the file system (on a
//!   database created with incremental auto-vacuum); the rest SQLite reuses before it
//!   grows the file, so at steady churn the file stops growing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

use super::{Result, Store, multi_row, values};
use crate::config::Retention;

/// Rows per delete transaction: a few milliseconds of the write lock.
pub const BATCH: usize = 500;

/// Pages given back to the file system per transaction of incremental vacuum.
const VACUUM_PAGES: i64 = 2048;

/// What one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub deliveries: u64,
    pub matches: u64,
    pub items: u64,
    pub stories: u64,
    /// Pages given back to the file system.
    pub pages: u64,
}

/// The digest kept for an item key in a feed's document list.
fn digest(key: &str) -> u64 {
    let hash = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first)
}

/// The digests of a document's item keys, sorted, as stored in `feeds.document_keys`.
pub fn document_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut digests: Vec<u64> = keys.into_iter().map(digest).collect();
    digests.sort_unstable();
    digests.dedup();
    digests.iter().flat_map(|d| d.to_be_bytes()).collect()
}

/// Whether a document's stored digests hold `key`. A list that is not a whole number of
/// digests (never written by wirewatch) holds everything: keeping is the safe mistake.
fn holds(document: &[u8], key: &str) -> bool {
    if !document.len().is_multiple_of(8) {
        return true;
    }
    let wanted = digest(key);
    let (mut low, mut high) = (0, document.len() / 8);
    while low < high {
        let middle = (low + high) / 2;
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&document[middle * 8..middle * 8 + 8]);
        match u64::from_be_bytes(bytes).cmp(&wanted) {
            std::cmp::Ordering::Less => low = middle + 1,
            std::cmp::Ordering::Greater => high = middle,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// The Unix time `age` before `now`, saturating.
fn before(now: i64, age: Duration) -> i64 {
    now.saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX))
}

/// An item the pruner may delete, as read before the delete.
struct Candidate {
    id: i64,
    feed_id: i64,
    key: String,
    story_id: i64,
}

impl Store {
    /// One retention pass: everything past `retention` at `now`, batch by batch, with
    /// `pause` between batches. Stops at the first failure (the next pass resumes).
    pub async fn prune(&self, retention: &Retention, now: i64, pause: Duration) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        if let Some(age) = retention.deliveries {
            pruned.deliveries = self.prune_deliveries(before(now, age), pause).await?;
        }
        if let Some(age) = retention.matches {
            pruned.matches = self.prune_matches(before(now, age), pause).await?;
        }
        for (matched, age) in [(false, retention.items), (true, retention.matches)] {
            if let Some(age) = age {
                let (items, stories) = self.prune_items(matched, before(now, age), pause).await?;
                pruned.items += items;
                pruned.stories += stories;
            }
        }
        pruned.pages = self.release_free_pages(pause).await?;
        Ok(pruned)
    }

    /// Runs `delete` (a statement deleting at most [`BATCH`] rows, binding `cutoff` as ?1)
    /// until a batch deletes fewer; returns the rows deleted.
    async fn delete_in_batches(
        &self,
        delete: &'static str,
        cutoff: i64,
        pause: Duration,
    ) -> Result<u64> {
        let mut total = 0;
        loop {
            let deleted = self
                .transaction(async |tx| {
                    Ok(sqlx::query(delete)
                        .bind(cutoff)
                        .bind(BATCH as i64)
                        .execute(&mut *tx.conn)
                        .await?
                        .rows_affected())
                })
                .await?;
            total += deleted;
            if deleted < BATCH as u64 {
                return Ok(total);
            }
            tokio::time::sleep(pause).await;
        }
    }

    async fn prune_deliveries(&self, cutoff: i64, pause: Duration) -> Result<u64> {
        self.delete_in_batches(
            "DELETE FROM outbox WHERE id IN (
                 SELECT id FROM outbox
                 WHERE status = 'delivered' AND delivered_at < ?1
                 ORDER BY delivered_at LIMIT ?2)",
            cutoff,
            pause,
        )
        .await
    }

    async fn prune_matches(&self, cutoff: i64, pause: Duration) -> Result<u64> {
        self.delete_in_batches(
            "DELETE FROM matches WHERE id IN (
                 SELECT m.id FROM matches m
                 WHERE m.created_at < ?1
                   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.match_id = m.id)
                 ORDER BY m.created_at LIMIT ?2)",
            cutoff,
            pause,
        )
        .await
    }

    /// Items of one kind (`matched` or not) first seen before `cutoff`, oldest first.
    /// Candidates are read on a read-only connection, and each batch is checked again,
    /// against the feeds' latest documents, inside the transaction that deletes it.
    async fn prune_items(&self, matched: bool, cutoff: i64, pause: Duration) -> Result<(u64, u64)> {
        let (mut items, mut stories) = (0, 0);
        // Where the scan is: items still served are passed over once per pass, not once
        // per batch.
        let mut after = (i64::MIN, i64::MIN);
        loop {
            let rows = self
                .look(async |conn| {
                    sqlx::query(
                        "SELECT i.id, i.feed_id, i.item_key, i.story_id, i.first_seen_at
                         FROM items i
                         WHERE i.matched = ?1 AND i.first_seen_at < ?2
                           AND (i.first_seen_at > ?3 OR (i.first_seen_at = ?3 AND i.id > ?4))
                           AND NOT EXISTS (SELECT 1 FROM matches m WHERE m.item_id = i.id)
                         ORDER BY i.first_seen_at, i.id LIMIT ?5",
                    )
                    .bind(matched)
                    .bind(cutoff)
                    .bind(after.0)
                    .bind(after.1)
                    .bind(BATCH as i64)
                    .fetch_all(&mut *conn)
                    .await
                })
                .await?;
            let Some(last) = rows.last() else {
                return Ok((items, stories));
            };
            after = (last.try_get("first_seen_at")?, last.try_get("id")?);
            let full = rows.len() == BATCH;
            let candidates = rows
                .iter()
                .map(|row| {
                    Ok(Candidate {
                        id: row.try_get("id")?,
                        feed_id: row.try_get("feed_id")?,
                        key: row.try_get("item_key")?,
                        story_id: row.try_get("story_id")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let (deleted, orphans) = self
                .transaction(async |tx| {
                    let feeds: HashSet<i64> = candidates.iter().map(|c| c.feed_id).collect();
                    let documents = tx.documents(&feeds).await?;
                    let gone: Vec<&Candidate> = candidates
                        .iter()
                        .filter(|c| match documents.get(&c.feed_id) {
                            Some(Some(document)) => !holds(document, &c.key),
                            // No document read since this was stored (or the feed row is
                            // gone): keep.
                            _ => false,
                        })
                        .collect();
                    let ids: Vec<i64> = gone.iter().map(|c| c.id).collect();
                    let deleted = tx.delete_items(&ids).await?;
                    let story_ids: HashSet<i64> = gone.iter().map(|c| c.story_id).collect();
                    let orphans = tx.delete_orphan_stories(&story_ids).await?;
                    Ok((deleted, orphans))
                })
                .await?;
            items += deleted;
            stories += orphans;
            if !full {
                return Ok((items, stories));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Gives free pages beyond a fifth of the file back to the file system, a few
    /// megabytes per transaction. Does nothing on a database without incremental
    /// auto-vacuum (created before retention existed: SQLite reuses its free pages).
    async fn release_free_pages(&self, pause: Duration) -> Result<u64> {
        let mut released = 0;
        loop {
            let (mode, pages, free): (i64, i64, i64) = self
                .pipeline_read(async |conn| {
                    let mode = sqlx::query_scalar("PRAGMA auto_vacuum")
                        .fetch_one(&mut *conn)
                        .await?;
                    let pages = sqlx::query_scalar("PRAGMA page_count")
                        .fetch_one(&mut *conn)
                        .await?;
                    let free = sqlx::query_scalar("PRAGMA freelist_count")
                        .fetch_one(&mut *conn)
                        .await?;
                    Ok((mode, pages, free))
                })
                .await?;
            // 2 = INCREMENTAL.
            let excess = free - pages / 5;
            if mode != 2 || excess <= 0 {
                return Ok(released);
            }
            let step = excess.min(VACUUM_PAGES);
            self.transaction(async |tx| {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "PRAGMA incremental_vacuum({step})"
                )))
                .execute(&mut *tx.conn)
                .await?;
                Ok(())
            })
            .await?;
            released += step as u64;
            tokio::time::sleep(pause).await;
        }
    }
}

impl super::StoreTx {
    /// The latest document's key digests of each feed (`None`: none read yet).
    async fn documents(&mut self, feeds: &HashSet<i64>) -> Result<HashMap<i64, Option<Vec<u8>>>> {
        let ids: Vec<i64> = feeds.iter().copied().collect();
        let mut documents = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH) {
            let sql = format!(
                "SELECT id, document_keys FROM feeds WHERE id IN {}",
                values(1, chunk.len())
            );
            let mut select = multi_row(sql, chunk.len());
            for id in chunk {
                select = select.bind(*id);
            }
            for row in select.fetch_all(&mut *self.conn).await? {
                documents.insert(row.try_get("id")?, row.try_get("document_keys")?);
            }
        }
        Ok(documents)
    }

    /// Deletes the items by id, unless a match refers to one after all.
    async fn delete_items(&mut self, ids: &[i64]) -> Result<u64> {
        let mut deleted = 0;
        for chunk in ids.chunks(BATCH) {
            let sql = format!(
                "DELETE FROM items WHERE id IN {}
                 AND NOT EXISTS (SELECT 1 FROM matches m WHERE m.item_id = items.id)",
                values(1, chunk.len())
            );
            let mut delete = multi_row(sql, chunk.len());
            for id in chunk {
                delete = delete.bind(*id);
            }
            deleted += delete.execute(&mut *self.conn).await?.rows_affected();
        }
        Ok(deleted)
    }

    /// Deletes those of `stories` that no item and no match refers to any more.
    async fn delete_orphan_stories(&mut self, stories: &HashSet<i64>) -> Result<u64> {
        let ids: Vec<i64> = stories.iter().copied().collect();
        let mut deleted = 0;
        for chunk in ids.chunks(BATCH) {
            let sql = format!(
                "DELETE FROM stories WHERE id IN {}
                 AND NOT EXISTS (SELECT 1 FROM items i WHERE i.story_id = stories.id)
                 AND NOT EXISTS (SELECT 1 FROM matches m WHERE m.story_id = stories.id)",
                values(1, chunk.len())
            );
            let mut delete = multi_row(sql, chunk.len());
            for id in chunk {
                delete = delete.bind(*id);
            }
            deleted += delete.execute(&mut *self.conn).await?.rows_affected();
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_holds_exactly_its_keys() {
        let keys = ["guid:1", "link:https://a.example/2", "hash:3", "guid:1"];
        let document = document_keys(keys);
        assert_eq!(document.len(), 3 * 8, "duplicates are stored once");
        for key in keys {
            assert!(holds(&document, key), "{key}");
        }
        assert!(!holds(&document, "guid:4"));
        assert!(!holds(&document_keys([]), "guid:1"));
        assert!(
            holds(&[1, 2, 3], "guid:4"),
            "a damaged list keeps everything"
        );
    }
}
