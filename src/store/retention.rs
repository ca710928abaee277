//! Retention (SPEC §14): forgetting old rows in small batches, without forgetting anything
//! de-duplication still needs.
//!
//! Input: the `[retention]` settings and the time now. Output: deleted rows, in batches of
//! [`BATCH`], each batch its own short write transaction queued behind the pipeline's
//! writer like any other, with a pause between batches so that polling never waits on a
//! long delete. The rules:
//! - delivered outbox rows older than `deliveries` go (their frozen bodies are the bulk);
//!   pending and dead-lettered rows stay;
//! - digests older than `deliveries` go once their outbox rows have gone;
//! - matches older than `matches` go once no outbox row refers to them and they wait for
//!   no digest;
//! - items go once older than `items` (never matched) or `matches` (matched), and only if
//!   no match refers to them and the feed's latest document does not hold them: every
//!   feed row keeps the sorted 8-byte digests of its latest document's item keys
//!   ([`document_keys`]), so an item a feed still serves is never forgotten and never
//!   alerts again as new. An item older than its retention is forgotten at the first pass
//!   after it leaves its feed's document; should the feed serve it again, it is new;
//! - a story goes with its last item and match;
//! - then freed pages beyond a fifth of the file go back to the file system (on a
//!   database created with incremental auto-vacuum); the rest SQLite reuses before it
//!   grows the file, so at steady churn the file stops growing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{Result, Store, multi_row, multi_row_as, values};
use super::{query_as, query_scalar};
use crate::config::Retention;
use sha2::{Digest as _, Sha256};

/// Rows per delete transaction: a few milliseconds of the write lock.
pub const BATCH: usize = 500;

/// Pages given back to the file system per transaction of incremental vacuum.
const VACUUM_PAGES: i64 = 2048;

/// What one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub deliveries: u64,
    pub digests: u64,
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
#[derive(sqlx::FromRow)]
struct Candidate {
    id: i64,
    feed_id: i64,
    #[sqlx(rename = "item_key")]
    key: String,
    story_id: i64,
    first_seen_at: i64,
}

impl Store {
    /// One retention pass: everything past `retention` at `now`, batch by batch, with
    /// `pause` between batches. Stops at the first failure (the next pass resumes).
    pub async fn prune(&self, retention: &Retention, now: i64, pause: Duration) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        if let Some(age) = retention.deliveries {
            pruned.deliveries = self.prune_deliveries(before(now, age), pause).await?;
            pruned.digests = self
                .delete_in_batches(
                    "DELETE FROM digests WHERE id IN (
                         SELECT d.id FROM digests d
                         WHERE d.created_at < $1
                           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.digest_id = d.id)
                         ORDER BY d.created_at LIMIT $2)",
                    before(now, age),
                    pause,
                )
                .await?;
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

    /// Runs `delete` (a statement deleting at most [`BATCH`] rows, binding `cutoff` as $1)
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
                 WHERE status = 'delivered' AND delivered_at < $1
                 ORDER BY delivered_at LIMIT $2)",
            cutoff,
            pause,
        )
        .await
    }

    async fn prune_matches(&self, cutoff: i64, pause: Duration) -> Result<u64> {
        self.delete_in_batches(
            "DELETE FROM matches WHERE id IN (
                 SELECT m.id FROM matches m
                 WHERE m.created_at < $1 AND m.awaiting_digest = 0
                   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.match_id = m.id)
                 ORDER BY m.created_at LIMIT $2)",
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
            let candidates: Vec<Candidate> = self
                .look(async |conn| {
                    query_as(
                        "SELECT i.id, i.feed_id, i.item_key, i.story_id, i.first_seen_at
                         FROM items i
                         WHERE i.matched = $1 AND i.first_seen_at < $2
                           AND (i.first_seen_at > $3 OR (i.first_seen_at = $3 AND i.id > $4))
                           AND NOT EXISTS (SELECT 1 FROM matches m WHERE m.item_id = i.id)
                         ORDER BY i.first_seen_at, i.id LIMIT $5",
                    )
                    .bind(i64::from(matched))
                    .bind(cutoff)
                    .bind(after.0)
                    .bind(after.1)
                    .bind(BATCH as i64)
                    .fetch_all(&mut *conn)
                    .await
                })
                .await?;
            let Some(last) = candidates.last() else {
                return Ok((items, stories));
            };
            after = (last.first_seen_at, last.id);
            let full = candidates.len() == BATCH;
            // Most old items of a quiet feed are still served: those are passed over here,
            // on the read-only connection, and a write transaction is opened only for
            // what may go, checked again inside it (a refresh may have committed since).
            let feeds: HashSet<i64> = candidates.iter().map(|c| c.feed_id).collect();
            let served = self
                .look(async |conn| documents(conn, &feeds).await)
                .await?;
            let mut gone = forgettable(&candidates, &served);
            if gone.is_empty() {
                if !full {
                    return Ok((items, stories));
                }
                continue;
            }
            let (deleted, orphans) = self
                .transaction(async |tx| {
                    let feeds: HashSet<i64> = gone.iter().map(|c| c.feed_id).collect();
                    let served = documents(&mut tx.conn, &feeds).await?;
                    gone = forgettable(gone.iter().copied(), &served);
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
        // PostgreSQL's autovacuum looks after its own files.
        if self.database.dialect() == super::Dialect::Postgres {
            return Ok(0);
        }
        let mut released = 0;
        loop {
            let (mode, pages, free): (i64, i64, i64) = self
                .pipeline_read(async |conn| {
                    let mode = query_scalar("PRAGMA auto_vacuum")
                        .fetch_one(&mut *conn)
                        .await?;
                    let pages = query_scalar("PRAGMA page_count")
                        .fetch_one(&mut *conn)
                        .await?;
                    let free = query_scalar("PRAGMA freelist_count")
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

/// The latest document's key digests of each feed (`None`: none read yet).
async fn documents(
    conn: &mut sqlx::AnyConnection,
    feeds: &HashSet<i64>,
) -> sqlx::Result<HashMap<i64, Option<Vec<u8>>>> {
    let ids: Vec<i64> = feeds.iter().copied().collect();
    let mut documents = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(BATCH) {
        let sql = format!(
            "SELECT id, document_keys FROM feeds WHERE id IN {}",
            values(1, chunk.len())
        );
        let mut select = multi_row_as::<(i64, Option<Vec<u8>>)>(sql, chunk.len());
        for id in chunk {
            select = select.bind(*id);
        }
        documents.extend(select.fetch_all(&mut *conn).await?);
    }
    Ok(documents)
}

/// The candidates their feed's latest document no longer holds. A feed with no document
/// read since they were stored (or no row) keeps them.
fn forgettable<'a>(
    candidates: impl IntoIterator<Item = &'a Candidate>,
    documents: &HashMap<i64, Option<Vec<u8>>>,
) -> Vec<&'a Candidate> {
    candidates
        .into_iter()
        .filter(|c| match documents.get(&c.feed_id) {
            Some(Some(document)) => !holds(document, &c.key),
            _ => false,
        })
        .collect()
}

impl super::StoreTx {
    /// Deletes the items by id, unless a match refers to one after all. Items still in
    /// the story band index (a retention shorter than `[stories] window`) leave it first.
    async fn delete_items(&mut self, ids: &[i64]) -> Result<u64> {
        let mut deleted = 0;
        for chunk in ids.chunks(BATCH) {
            let sql = format!(
                "SELECT id, bands FROM items WHERE id IN {} AND bands IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM matches m WHERE m.item_id = items.id)",
                values(1, chunk.len())
            );
            let mut banded = multi_row_as::<(i64, Vec<u8>)>(sql, chunk.len());
            for id in chunk {
                banded = banded.bind(*id);
            }
            let banded = banded.fetch_all(&mut *self.conn).await?;
            self.unband(&banded).await?;
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
    use crate::store::query;
    use std::collections::BTreeSet;

    use super::*;
    use crate::store::temp_store;
    use crate::store::tests::wire_store;
    use crate::store::{FeedUpdate, ItemRow, NewItem, NewMatch, OutboxRow};

    const DAY: i64 = 86_400;
    /// When the test's items are stored; every later time counts from here.
    const T0: i64 = 1_700_000_000;

    fn retention() -> Retention {
        Retention {
            items: Some(Duration::from_secs(30 * DAY as u64)),
            matches: Some(Duration::from_secs(365 * DAY as u64)),
            deliveries: Some(Duration::from_secs(30 * DAY as u64)),
        }
    }

    /// An item to store: its key, whether it matched, and what became of its alert.
    struct Stored {
        key: &'static str,
        matched: bool,
        /// `Some(status)` for an alert with one outbox row in that state.
        alert: Option<&'static str>,
    }

    /// Stores `items` on feed `feed` at `at`, each a story of its own.
    async fn store_items(store: &Store, feed: i64, at: i64, items: &[Stored]) {
        store
            .transaction(async |tx| {
                for item in items {
                    let url = format!("https://wire.example/{}", item.key);
                    let story = tx.new_story(at).await?;
                    let row = ItemRow {
                        feed_id: feed,
                        story_id: story,
                        matched: item.matched,
                        item: NewItem {
                            item_key: item.key,
                            title: item.key,
                            url: Some(&url),
                            ..NewItem::default()
                        },
                        ..ItemRow::default()
                    };
                    let ids = tx.insert_items(&[row], at).await?;
                    let Some(status) = item.alert else { continue };
                    let match_id = format!("match-{}", item.key);
                    tx.insert_matches(&[NewMatch {
                        id: &match_id,
                        story_id: story,
                        watchlist: "iran-china",
                        item_id: ids[&(feed, item.key.to_string())],
                        terms_json: "[]".into(),
                        highlights_json: "[]".into(),
                        created_at: at,
                        escalated: 0,
                        held: None,
                        awaiting_digest: false,
                    }])
                    .await?;
                    tx.insert_outbox(
                        &[OutboxRow {
                            id: format!("msg-{}", item.key),
                            match_id: &match_id,
                            stage: 0,
                            webhook: "siem",
                            body: "{}".into(),
                        }],
                        at,
                    )
                    .await?;
                    query("UPDATE outbox SET status = $2, delivered_at = $3 WHERE id = $1")
                        .bind(format!("msg-{}", item.key))
                        .bind(status)
                        .bind((status == "delivered").then_some(at))
                        .execute(&mut *tx.conn)
                        .await?;
                }
                Ok(())
            })
            .await
            .expect("stored");
    }

    /// The feed's latest document holds exactly `keys` (`None`: no document read yet).
    async fn serve(store: &Store, feed: i64, keys: Option<&[&str]>) {
        let update = FeedUpdate {
            document_keys: keys.map(|keys| document_keys(keys.iter().copied())),
            ..FeedUpdate::default()
        };
        store
            .transaction(async |tx| tx.update_feeds(&[(feed, &update)]).await)
            .await
            .expect("document stored");
    }

    /// What is left: item keys, match ids, outbox ids, and the number of stories.
    async fn left(store: &Store) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>, i64) {
        store
            .look(async |conn| {
                let column = async |conn: &mut sqlx::AnyConnection, sql: &'static str| {
                    query_scalar::<String>(sql)
                        .fetch_all(&mut *conn)
                        .await
                        .map(|rows| rows.into_iter().collect::<BTreeSet<String>>())
                };
                let items = column(conn, "SELECT item_key FROM items").await?;
                let matches = column(conn, "SELECT id FROM matches").await?;
                let outbox = column(conn, "SELECT id FROM outbox").await?;
                let stories = query_scalar("SELECT COUNT(*) FROM stories")
                    .fetch_one(&mut *conn)
                    .await?;
                Ok((items, matches, outbox, stories))
            })
            .await
            .expect("read")
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[tokio::test]
    async fn retention_forgets_old_rows_but_never_what_a_feed_still_serves_or_an_alert_still_needs()
    {
        let (_dir, store) = temp_store().await;
        store
            .register(
                &[
                    ("wire", "https://wire.example/rss"),
                    ("quiet", "https://quiet.example/rss"),
                ],
                &[],
            )
            .await
            .expect("register");
        let wire = store
            .feed_state("wire")
            .await
            .expect("read")
            .expect("row")
            .id;
        let quiet = store
            .feed_state("quiet")
            .await
            .expect("read")
            .expect("row")
            .id;
        let stored = |key, matched, alert| Stored {
            key,
            matched,
            alert,
        };
        store_items(
            &store,
            wire,
            T0,
            &[
                stored("gone", false, None),
                stored("served", false, None),
                stored("alerted", true, Some("delivered")),
                stored("dead-letter", true, Some("dead")),
                stored("waiting", true, Some("pending")),
            ],
        )
        .await;
        store_items(
            &store,
            wire,
            T0 + 20 * DAY,
            &[stored("recent", false, None)],
        )
        .await;
        // A feed whose document was never read since its items were stored: all kept.
        store_items(&store, quiet, T0, &[stored("unknown", false, None)]).await;
        serve(&store, wire, Some(&["served", "recent"])).await;
        serve(&store, quiet, None).await;

        // Within every retention nothing goes.
        let pruned = store
            .prune(&retention(), T0 + 29 * DAY, Duration::ZERO)
            .await
            .expect("prune");
        assert_eq!(pruned, Pruned::default());

        // Past 30 days: the old unmatched item the feed no longer serves and its story, and
        // the delivered outbox row (its body); matched items and their matches stay.
        let pruned = store
            .prune(&retention(), T0 + 31 * DAY, Duration::ZERO)
            .await
            .expect("prune");
        assert_eq!(
            (
                pruned.items,
                pruned.stories,
                pruned.deliveries,
                pruned.matches
            ),
            (1, 1, 1, 0),
            "{pruned:?}"
        );
        let (items, matches, outbox, stories) = left(&store).await;
        assert_eq!(
            items,
            set(&[
                "served",
                "alerted",
                "dead-letter",
                "waiting",
                "recent",
                "unknown"
            ])
        );
        assert_eq!(
            matches,
            set(&["match-alerted", "match-dead-letter", "match-waiting"])
        );
        assert_eq!(outbox, set(&["msg-dead-letter", "msg-waiting"]));
        assert_eq!(stories, 6);

        // Past a year: the delivered alert's match, item and story go; an alert still
        // pending or dead-lettered keeps its match and item; what the feed serves stays.
        let later = T0 + 366 * DAY;
        let pruned = store
            .prune(&retention(), later, Duration::ZERO)
            .await
            .expect("prune");
        assert_eq!((pruned.matches, pruned.items), (1, 1), "{pruned:?}");
        let (items, matches, outbox, _) = left(&store).await;
        assert_eq!(
            items,
            set(&["served", "recent", "dead-letter", "waiting", "unknown"])
        );
        assert_eq!(matches, set(&["match-dead-letter", "match-waiting"]));
        assert_eq!(outbox, set(&["msg-dead-letter", "msg-waiting"]));

        // Once the feed stops serving an item, it goes at the next pass; a document read
        // for the quiet feed lets its old item go too.
        serve(&store, wire, Some(&[])).await;
        serve(&store, quiet, Some(&["something else"])).await;
        store
            .prune(&retention(), later, Duration::ZERO)
            .await
            .expect("prune");
        let (items, ..) = left(&store).await;
        assert_eq!(items, set(&["dead-letter", "waiting"]));

        // Kept for ever: nothing goes, whatever the age.
        let forever = Retention {
            items: None,
            matches: None,
            deliveries: None,
        };
        store_items(&store, wire, T0, &[stored("ancient", false, None)]).await;
        let pruned = store
            .prune(&forever, T0 + 3650 * DAY, Duration::ZERO)
            .await
            .expect("prune");
        assert_eq!(pruned, Pruned::default());
    }

    #[tokio::test]
    async fn a_match_waiting_for_its_digest_is_kept_and_sent_digests_and_reasons_go() {
        let (_dir, store, wire) = wire_store().await;
        let rows = [
            Stored {
                key: "waiting",
                matched: true,
                alert: None,
            },
            Stored {
                key: "digested",
                matched: true,
                alert: None,
            },
            Stored {
                key: "vetoed",
                matched: false,
                alert: None,
            },
        ];
        store_items(&store, wire, T0, &rows).await;
        serve(&store, wire, Some(&[])).await;
        store
            .transaction(async |tx| {
                for (key, awaiting) in [("waiting", true), ("digested", false)] {
                    let (item, story): (i64, i64) =
                        query_as("SELECT id, story_id FROM items WHERE item_key = $1")
                            .bind(key)
                            .fetch_one(&mut *tx.conn)
                            .await?;
                    let id = format!("match-{key}");
                    tx.insert_matches(&[NewMatch {
                        id: &id,
                        story_id: story,
                        watchlist: "daily",
                        item_id: item,
                        terms_json: "[]".into(),
                        highlights_json: "[]".into(),
                        created_at: T0,
                        escalated: 0,
                        held: Some(super::super::Held::Digest),
                        awaiting_digest: awaiting,
                    }])
                    .await?;
                }
                tx.insert_digest(
                    &super::super::NewDigest {
                        id: "digest-1",
                        watchlist: "daily",
                        from: T0,
                        to: T0,
                        matches: &["match-digested".to_string()],
                        rows: vec![("msg-d".into(), "siem", 1, "{}".into())],
                    },
                    T0,
                )
                .await?;
                query("UPDATE outbox SET status = 'delivered', delivered_at = $1")
                    .bind(T0)
                    .execute(&mut *tx.conn)
                    .await?;
                let vetoed: i64 = query_scalar("SELECT id FROM items WHERE item_key = 'vetoed'")
                    .fetch_one(&mut *tx.conn)
                    .await?;
                tx.insert_misses(&[super::super::NewMiss {
                    item_id: vetoed,
                    watchlist: "daily",
                    reason: super::super::MissReason::Excluded,
                    term: Some("football"),
                    terms_json: "[\"Iran\"]".into(),
                }])
                .await
            })
            .await
            .expect("stored");

        let pruned = store
            .prune(&retention(), T0 + 400 * DAY, Duration::ZERO)
            .await
            .expect("prune");
        assert_eq!((pruned.deliveries, pruned.digests), (1, 1));
        let (items, matches, outbox, _) = left(&store).await;
        assert_eq!(matches, set(&["match-waiting"]), "waits for its digest");
        assert_eq!(items, set(&["waiting"]));
        assert!(outbox.is_empty());
        let misses: i64 = store
            .look(async |conn| {
                query_scalar("SELECT COUNT(*) FROM misses")
                    .fetch_one(&mut *conn)
                    .await
            })
            .await
            .expect("count");
        assert_eq!(misses, 0, "a reason goes with its item");
    }

    #[tokio::test]
    async fn a_pass_goes_through_more_items_than_one_batch_and_passes_over_served_ones() {
        let (_dir, store, wire) = wire_store().await;
        // More still-served items than a batch, stored first (so scanned first), then
        // more than a batch of forgettable ones.
        let keys: Vec<&'static str> = (0..BATCH * 2 + 7)
            .map(|i| &*format!("item-{i:05}").leak())
            .collect();
        let (served, old) = keys.split_at(BATCH + 3);
        let rows: Vec<Stored> = keys
            .iter()
            .map(|key| Stored {
                key,
                matched: false,
                alert: None,
            })
            .collect();
        store_items(&store, wire, T0, &rows).await;
        serve(&store, wire, Some(served)).await;

        let pruned = store
            .prune(&retention(), T0 + 31 * DAY, Duration::ZERO)
            .await
            .expect("prune");
        assert_eq!(pruned.items, old.len() as u64);
        let (items, ..) = left(&store).await;
        assert_eq!(items, served.iter().map(|k| k.to_string()).collect());
    }

    #[tokio::test]
    async fn a_pass_gives_the_pages_it_freed_back_to_the_file_system_beyond_a_fifth_of_the_file() {
        if crate::store::sqlite_only("incremental vacuum of the database file") {
            return;
        }
        let (_dir, store, wire) = wire_store().await;
        // About 8 MB of items no document serves any more.
        let summary = "x".repeat(4096);
        let keys: Vec<String> = (0..2_000).map(|i| format!("item-{i}")).collect();
        store
            .transaction(async |tx| {
                let story = tx.new_story(T0).await?;
                let rows: Vec<ItemRow> = keys
                    .iter()
                    .map(|key| ItemRow {
                        feed_id: wire,
                        story_id: story,
                        item: NewItem {
                            item_key: key,
                            title: key,
                            summary: &summary,
                            ..NewItem::default()
                        },
                        ..ItemRow::default()
                    })
                    .collect();
                tx.insert_items(&rows, T0).await?;
                Ok(())
            })
            .await
            .expect("stored");
        serve(&store, wire, Some(&[])).await;
        let pages = async || -> (i64, i64) {
            store
                .look(async |conn| {
                    let pages = query_scalar("PRAGMA page_count")
                        .fetch_one(&mut *conn)
                        .await?;
                    let free = query_scalar("PRAGMA freelist_count")
                        .fetch_one(&mut *conn)
                        .await?;
                    Ok((pages, free))
                })
                .await
                .expect("read")
        };
        let (before, _) = pages().await;

        let pruned = store
            .prune(&retention(), T0 + 31 * DAY, Duration::ZERO)
            .await
            .expect("prune");

        assert_eq!((pruned.items, pruned.stories), (2_000, 1), "{pruned:?}");
        let (after, free) = pages().await;
        assert!(pruned.pages > 0, "{pruned:?}");
        // Pointer-map pages of the freed ones go with them.
        assert!(
            after <= before - pruned.pages as i64,
            "{before} pages before, {after} after, {pruned:?}"
        );
        assert!(free <= after / 5, "{free} free of {after} pages");
    }
}
