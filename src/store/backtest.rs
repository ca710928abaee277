//! What a backtest reads (SPEC §12): the stored feeds, and the text of every item first
//! seen since a time, exactly as the matcher read it.
//!
//! Input: a time. Output: the feeds (id and name), then the items in pages of
//! [`SCAN_PAGE`], handed to the caller as they are read. Everything is read on one of the
//! store's read-only connections in ONE read transaction, so the whole scan sees one
//! snapshot while the daemon goes on writing (in WAL mode the writer never waits for it).
//!
//! Items come in rowid order, a page at a time from where the last page ended: a range
//! of the table's own b-tree, with no sort and no temporary table however many items
//! there are. The first item of the window is found through the retention indexes
//! (`items_unmatched_by_age`, `items_matched_by_age`, on `(first_seen_at, id)`), so older
//! items are not even read. Rowid order is not quite first-seen order (a clock set back
//! between two commits inverts it): a caller that needs that order sorts what it keeps.
//!
//! Rows are read as rows. Reading each page as one JSON value that SQLite builds
//! (`json_group_array`: one hand-off to sqlx's SQLite thread per page rather than per row)
//! was measured, and was slower: building, copying and parsing the JSON cost more than
//! the hand-offs it saved (BENCHMARKS.md, "Backtest").

use sqlx::Connection as _;

use super::{Result, Store};
use super::{query_as, query_scalar};

/// Items per page of [`Store::scan_items`]: large enough that a page's round trip to
/// sqlx's SQLite thread is a small part of reading it, small enough that the pages in
/// flight between the reader and the matching threads hold a few MB.
pub const SCAN_PAGE: usize = 512;

/// A feed row: the store's id and the configured name it was registered under.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredFeed {
    pub id: i64,
    pub name: String,
}

/// One stored item as the matcher read it, and what a backtest reports of it.
#[derive(Debug, Clone)]
pub struct ScannedItem {
    pub id: i64,
    pub feed_id: i64,
    pub story_id: i64,
    pub first_seen_at: i64,
    pub title: String,
    pub url: Option<String>,
    pub summary: String,
    /// `""` for an item without content (the column is NULL).
    pub content: String,
    pub categories: Vec<String>,
    /// The linked page's main text; `""` for none.
    pub article: String,
    /// Its detected language (ISO 639-1), when known.
    pub language: Option<String>,
}

/// A [`ScannedItem`] as read, its categories still the stored JSON array.
#[derive(sqlx::FromRow)]
struct StoredText {
    id: i64,
    feed_id: i64,
    story_id: i64,
    first_seen_at: i64,
    title: String,
    url: Option<String>,
    summary: String,
    content: Option<String>,
    categories: String,
    article: Option<String>,
    language: Option<String>,
}

impl StoredText {
    fn into_item(self) -> Result<ScannedItem, serde_json::Error> {
        Ok(ScannedItem {
            categories: serde_json::from_str(&self.categories)?,
            id: self.id,
            feed_id: self.feed_id,
            story_id: self.story_id,
            first_seen_at: self.first_seen_at,
            title: self.title,
            url: self.url,
            summary: self.summary,
            content: self.content.unwrap_or_default(),
            article: self.article.unwrap_or_default(),
            language: self.language,
        })
    }
}

/// Where [`Store::scan_items`] hands what it reads, as it reads it.
pub trait ScanSink: Send {
    /// Every stored feed, before any item.
    fn feeds(&mut self, feeds: Vec<StoredFeed>);
    /// The next page of items; answers whether to go on (`false`: the consumer has gone,
    /// and the scan ends early).
    fn page(&mut self, items: Vec<ScannedItem>) -> impl Future<Output = bool> + Send;
}

impl Store {
    /// Reads, in one snapshot, the stored feeds, then every item first seen at or after
    /// `since`, in pages of at most [`SCAN_PAGE`] items in rowid order, each handed to
    /// `sink` as soon as it is read. Returns how many items were read.
    pub async fn scan_items(&self, since: i64, sink: &mut impl ScanSink) -> Result<u64> {
        self.look(async |conn| {
            let mut snapshot = conn.begin().await?;
            let stored: Vec<StoredFeed> = query_as("SELECT id, name FROM feeds")
                .fetch_all(&mut *snapshot)
                .await?;
            sink.feeds(stored);
            // The first item of the window: every item is in exactly one of the two
            // retention indexes (`matched` is 0 or 1), each ordered by (first_seen_at, id),
            // so this reads index entries of the window only, never the items.
            let first: Option<i64> = query_scalar(
                "SELECT MIN(id) FROM (
                    SELECT MIN(id) AS id FROM items WHERE matched = 0 AND first_seen_at >= $1
                    UNION ALL
                    SELECT MIN(id) FROM items WHERE matched = 1 AND first_seen_at >= $1) AS firsts",
            )
            .bind(since)
            .fetch_one(&mut *snapshot)
            .await?;
            let mut read = 0u64;
            let Some(first) = first else {
                snapshot.commit().await?;
                return Ok(read);
            };
            let mut after = first - 1;
            let limit = i64::try_from(SCAN_PAGE).unwrap_or(i64::MAX);
            loop {
                let rows: Vec<StoredText> = query_as(
                    "SELECT id, feed_id, story_id, first_seen_at, title, url, summary, content,
                        categories, article, language
                     FROM items
                     WHERE id > $1 AND first_seen_at >= $2
                     ORDER BY id
                     LIMIT $3",
                )
                .bind(after)
                .bind(since)
                .bind(limit)
                .fetch_all(&mut *snapshot)
                .await?;
                let Some(last) = rows.last() else {
                    break;
                };
                after = last.id;
                let full = rows.len() == SCAN_PAGE;
                read += rows.len() as u64;
                let items = rows
                    .into_iter()
                    .map(StoredText::into_item)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
                if !sink.page(items).await || !full {
                    break;
                }
            }
            snapshot.commit().await?;
            Ok(read)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::wire_store;
    use crate::store::{ItemRow, NewItem};

    /// Stores items (key, first seen at) in feed `wire`, each its own story, one
    /// transaction per item as the commit stage writes them, in the order given.
    async fn store_items(store: &Store, feed: i64, items: &[(&str, i64)]) {
        for (key, at) in items {
            store
                .transaction(async |tx| {
                    let story = tx.last_story_id().await? + 1;
                    tx.insert_stories(&[story], *at).await?;
                    let categories = vec!["World".to_string()];
                    let row = ItemRow {
                        feed_id: feed,
                        story_id: story,
                        matched: key.starts_with('m'),
                        item: NewItem {
                            item_key: key,
                            title: key,
                            content: if key.ends_with('c') { "body" } else { "" },
                            categories: &categories,
                            ..NewItem::default()
                        },
                        ..ItemRow::default()
                    };
                    tx.insert_items(&[row], *at).await?;
                    Ok(())
                })
                .await
                .expect("stored");
        }
    }

    /// Keeps what a scan hands over; stops after `pages` pages when set.
    #[derive(Default)]
    struct Kept {
        feeds: Vec<String>,
        items: Vec<ScannedItem>,
        pages: usize,
        stop_after: Option<usize>,
    }

    impl ScanSink for Kept {
        fn feeds(&mut self, feeds: Vec<StoredFeed>) {
            self.feeds = feeds.into_iter().map(|f| f.name).collect();
        }

        async fn page(&mut self, items: Vec<ScannedItem>) -> bool {
            self.items.extend(items);
            self.pages += 1;
            self.stop_after.is_none_or(|n| self.pages < n)
        }
    }

    async fn scanned(store: &Store, since: i64) -> (Vec<String>, Vec<ScannedItem>) {
        let mut kept = Kept::default();
        store.scan_items(since, &mut kept).await.expect("scan");
        (kept.feeds, kept.items)
    }

    #[tokio::test]
    async fn a_scan_reads_the_feeds_then_every_item_of_the_window_matched_or_not() {
        let (_dir, store, wire) = wire_store().await;
        store_items(
            &store,
            wire,
            &[("u-old", 100), ("m-old", 150), ("u-1c", 200), ("m-2", 300)],
        )
        .await;
        // A clock set back: a later row first seen before the window's start, and one
        // inside it.
        store_items(&store, wire, &[("u-back", 120), ("m-3", 250)]).await;

        let (feeds, items) = scanned(&store, 200).await;

        assert_eq!(feeds, ["wire"]);
        let keys: Vec<(&str, i64)> = items
            .iter()
            .map(|item| (item.title.as_str(), item.first_seen_at))
            .collect();
        assert_eq!(keys, [("u-1c", 200), ("m-2", 300), ("m-3", 250)]);
        assert_eq!(items[0].content, "body");
        assert_eq!(items[1].content, "", "NULL content reads as empty");
        assert_eq!(items[0].categories, ["World"]);
        assert_eq!(items[0].feed_id, wire);
        assert!(scanned(&store, 301).await.1.is_empty());
    }

    #[tokio::test]
    async fn a_scan_pages_through_more_items_than_a_page_and_stops_when_asked() {
        let (_dir, store, wire) = wire_store().await;
        let keys: Vec<String> = (0..SCAN_PAGE + 3).map(|n| format!("u-{n}")).collect();
        store
            .transaction(async |tx| {
                let first = tx.last_story_id().await? + 1;
                let stories: Vec<i64> = (first..first + keys.len() as i64).collect();
                tx.insert_stories(&stories, 1000).await?;
                let rows: Vec<ItemRow> = keys
                    .iter()
                    .zip(&stories)
                    .map(|(key, story)| ItemRow {
                        feed_id: wire,
                        story_id: *story,
                        item: NewItem {
                            item_key: key,
                            title: key,
                            ..NewItem::default()
                        },
                        ..ItemRow::default()
                    })
                    .collect();
                tx.insert_items(&rows, 1000).await?;
                Ok(())
            })
            .await
            .expect("stored");

        let (_, items) = scanned(&store, 0).await;
        assert_eq!(items.len(), SCAN_PAGE + 3);

        let mut first_page = Kept {
            stop_after: Some(1),
            ..Kept::default()
        };
        let read = store.scan_items(0, &mut first_page).await.expect("scan");
        let pages = first_page.pages;
        assert_eq!((pages, read), (1, SCAN_PAGE as u64));
    }
}
