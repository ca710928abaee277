//! Read-only look-ups of what the pipeline stored, for people: the stored matches that
//! `wirewatch matches` and `/api/v1/matches` list, and the stories that `wirewatch stories`
//! and `/api/v1/stories` list (SPEC §10).
//!
//! Input: a [`MatchQuery`] or a [`StoryQuery`] (watch-list, since, a limit; a search
//! string for matches). Output: [`MatchRow`]s, newest first, each with its story's size,
//! or [`StoryRow`]s, newest activity first, each with its watch-lists and its first
//! [`MAX_STORY_ITEMS`] items. Everything is read on the store's read-only connections, in
//! one snapshot per call, so that a slow listing never holds a connection the pipeline
//! needs and its counts agree with its rows.
//!
//! A listing reads its page first (the matches, or the ids of the stories), then what
//! each row of the page shows, with `IN (...)` over the page's story ids: the cost follows
//! the page, not the database.

use std::collections::{BTreeSet, HashMap};

use chrono::DateTime;
use sqlx::{AnyConnection, Connection as _};

use super::query_as;
use super::{Held, ROWS_PER_STATEMENT, Result, Store, multi_row_as, placeholder, values};
use crate::notify::body;

/// One stored match, as `wirewatch matches` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatchRow {
    pub alert_id: String,
    pub watchlist: String,
    pub terms: Vec<String>,
    pub created_at: i64,
    pub feed: String,
    pub title: String,
    pub url: Option<String>,
    pub published_at: Option<i64>,
    /// The story the match alerted on, as alert payloads carry it: a string.
    pub story_id: String,
    /// Items of the story over all feeds: how many times it was seen.
    pub sightings: u64,
    /// Distinct feeds that carried the story.
    pub feeds: u64,
    /// Why it did not alert on its own (`backfill`, `muted`, `rate_limited`, `digest`);
    /// `null` when it did.
    pub reason: Option<Held>,
}

/// Filters of `wirewatch matches`.
#[derive(Debug, Clone, Default)]
pub struct MatchQuery {
    pub watchlist: Option<String>,
    pub since: Option<i64>,
    pub search: Option<String>,
    pub limit: i64,
}

/// A [`MatchRow`] as read, its terms still the stored JSON array.
#[derive(sqlx::FromRow)]
struct StoredMatch {
    id: String,
    watchlist: String,
    terms: String,
    created_at: i64,
    feed: String,
    title: String,
    url: Option<String>,
    published_at: Option<i64>,
    story_id: i64,
    reason: Option<Held>,
}

impl StoredMatch {
    fn into_row(self, counts: StoryCounts) -> Result<MatchRow, serde_json::Error> {
        Ok(MatchRow {
            alert_id: self.id,
            watchlist: self.watchlist,
            terms: serde_json::from_str(&self.terms)?,
            created_at: self.created_at,
            feed: self.feed,
            title: self.title,
            url: self.url,
            published_at: self.published_at,
            story_id: self.story_id.to_string(),
            sightings: counts.items,
            feeds: counts.feeds,
            reason: self.reason,
        })
    }
}

/// The most items a listed story carries; [`StoryRow::item_count`] says how many it
/// holds. A story syndicated to hundreds of feeds stays a readable block, and a page of
/// [`StoryQuery::limit`] stories a bounded answer.
pub const MAX_STORY_ITEMS: usize = 100;

/// One story that matched at least one watch-list, as `wirewatch stories --json` and
/// `/api/v1/stories` show it (SPEC §10).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoryRow {
    /// The story's id, as alert payloads carry it: a string.
    pub id: String,
    /// The title of the story's first item.
    pub title: String,
    /// When the story's first item was stored.
    #[serde(rename = "first_seen", serialize_with = "unix_rfc3339")]
    pub first_seen_at: i64,
    /// When an item last joined the story.
    #[serde(rename = "last_seen", serialize_with = "unix_rfc3339")]
    pub last_seen_at: i64,
    /// Distinct feeds that carried the story.
    pub feeds: u64,
    /// The watch-lists it matched, sorted.
    pub watchlists: Vec<String>,
    /// Its first [`MAX_STORY_ITEMS`] items, in the order seen.
    pub items: Vec<StorySighting>,
    /// Items the story holds, over all feeds: more than `items` lists when capped.
    #[serde(skip)]
    pub item_count: u64,
}

/// One item of a listed story: where and when it was seen.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StorySighting {
    /// The feed's configured name.
    pub feed: String,
    pub title: String,
    pub url: Option<String>,
    /// When the item was stored.
    #[serde(rename = "seen", serialize_with = "unix_rfc3339")]
    pub seen_at: i64,
}

/// Filters of `wirewatch stories`.
#[derive(Debug, Clone, Default)]
pub struct StoryQuery {
    /// Only stories with a match for this watch-list.
    pub watchlist: Option<String>,
    /// Only stories active (an item joined them) at or after this time.
    pub since: Option<i64>,
    pub limit: i64,
    /// Only stories listed after this one, `(last_seen_at, id)` of the last story of the
    /// page before (the console's pages): pages that stay put while new stories arrive.
    pub before: Option<(i64, i64)>,
}

/// What a watch-list's match of a story shows in the console: the terms that hit and the
/// first highlight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchlistHit {
    pub terms: Vec<String>,
    /// The field of the first highlight (`title`, `summary`, `article`, …).
    pub field: Option<String>,
    /// The text around the first hit, as the alert carried it.
    pub snippet: Option<String>,
}

#[derive(sqlx::FromRow)]
struct StoredWatchlistHit {
    story_id: i64,
    terms: String,
    highlights: String,
}

/// The document of `wirewatch stories --json` and `GET /api/v1/stories`:
/// `{"stories": [...]}`.
#[derive(Debug, serde::Serialize)]
pub struct StoryListing<'a> {
    pub stories: &'a [StoryRow],
}

/// A story of the page, before its items are read.
#[derive(sqlx::FromRow)]
struct StoryPage {
    id: i64,
    first_seen_at: i64,
    last_seen_at: i64,
}

/// How many items a story holds and from how many feeds, and when it began.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct StoryCounts {
    pub(super) items: u64,
    pub(super) feeds: u64,
    pub(super) first_seen_at: i64,
}

#[derive(sqlx::FromRow)]
struct CountedStory {
    story_id: i64,
    items: i64,
    feeds: i64,
    first_seen_at: i64,
}

#[derive(sqlx::FromRow)]
struct StoryWatchlist {
    story_id: i64,
    watchlist: String,
}

#[derive(sqlx::FromRow)]
struct StoredSighting {
    story_id: i64,
    feed: String,
    title: String,
    url: Option<String>,
    seen_at: i64,
}

/// Unix seconds as RFC 3339 UTC with a `Z`, as alert payloads write times.
fn unix_rfc3339<S: serde::Serializer>(at: &i64, out: S) -> Result<S::Ok, S::Error> {
    match DateTime::from_timestamp(*at, 0) {
        Some(at) => out.serialize_str(&body::rfc3339(at)),
        None => Err(serde::ser::Error::custom(format!(
            "the time {at} is out of range"
        ))),
    }
}

/// The distinct ids among `ids`, in a stable order.
fn distinct(ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
    ids.into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Items and distinct feeds of each of `stories`, and its first-seen time; a story
/// without items is left out.
pub(super) async fn story_counts(
    conn: &mut AnyConnection,
    stories: &[i64],
) -> sqlx::Result<HashMap<i64, StoryCounts>> {
    let mut counts = HashMap::with_capacity(stories.len());
    for chunk in stories.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT i.story_id, COUNT(*) AS items, COUNT(DISTINCT i.feed_id) AS feeds,
                s.first_seen_at
             FROM items i JOIN stories s ON s.id = i.story_id
             WHERE i.story_id IN {} GROUP BY i.story_id, s.first_seen_at",
            values(1, chunk.len())
        );
        let mut select = multi_row_as::<CountedStory>(sql, chunk.len());
        for id in chunk {
            select = select.bind(*id);
        }
        for row in select.fetch_all(&mut *conn).await? {
            counts.insert(
                row.story_id,
                StoryCounts {
                    items: u64::try_from(row.items).unwrap_or_default(),
                    feeds: u64::try_from(row.feeds).unwrap_or_default(),
                    first_seen_at: row.first_seen_at,
                },
            );
        }
    }
    Ok(counts)
}

/// The first `cap` items of each of `stories`, in the order seen, with their feed's name.
pub(super) async fn items_of_stories(
    conn: &mut AnyConnection,
    stories: &[i64],
    cap: usize,
) -> sqlx::Result<HashMap<i64, Vec<StorySighting>>> {
    let mut items: HashMap<i64, Vec<StorySighting>> = HashMap::with_capacity(stories.len());
    for chunk in stories.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT story_id, feed, title, url, seen_at FROM (
                SELECT i.story_id, f.name AS feed, i.title, i.url,
                    i.first_seen_at AS seen_at, i.id,
                    ROW_NUMBER() OVER (PARTITION BY i.story_id ORDER BY i.id) AS n
                FROM items i JOIN feeds f ON f.id = i.feed_id
                WHERE i.story_id IN {}) AS numbered
             WHERE n <= {} ORDER BY story_id, id",
            values(1, chunk.len()),
            placeholder(chunk.len() + 1)
        );
        let mut select = multi_row_as::<StoredSighting>(sql, chunk.len());
        for id in chunk {
            select = select.bind(*id);
        }
        let select = select.bind(i64::try_from(cap).unwrap_or(i64::MAX));
        for row in select.fetch_all(&mut *conn).await? {
            items.entry(row.story_id).or_default().push(StorySighting {
                feed: row.feed,
                title: row.title,
                url: row.url,
                seen_at: row.seen_at,
            });
        }
    }
    Ok(items)
}

impl Store {
    pub async fn matches(&self, query: &MatchQuery) -> Result<Vec<MatchRow>> {
        let search = query.search.as_ref().map(|s| {
            let escaped = s
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let (rows, counts) = self
            .look(async |conn| {
                let mut snapshot = conn.begin().await?;
                let rows: Vec<StoredMatch> = query_as(
                    "SELECT m.id, m.watchlist, m.terms, m.created_at, f.name AS feed, i.title,
                        i.url, i.published_at, m.story_id, m.reason
                     FROM matches m
                     JOIN items i ON i.id = m.item_id
                     JOIN feeds f ON f.id = i.feed_id
                     WHERE ($1 IS NULL OR m.watchlist = $1)
                       AND m.created_at >= $2
                       AND ($3 IS NULL OR i.title LIKE $3 ESCAPE '\\'
                            OR i.summary LIKE $3 ESCAPE '\\')
                     ORDER BY m.created_at DESC, m.id DESC
                     LIMIT $4",
                )
                .bind(query.watchlist.as_deref())
                .bind(query.since.unwrap_or(i64::MIN))
                .bind(search)
                .bind(query.limit)
                .fetch_all(&mut *snapshot)
                .await?;
                let stories = distinct(rows.iter().map(|row| row.story_id));
                let counts = story_counts(&mut snapshot, &stories).await?;
                snapshot.commit().await?;
                Ok((rows, counts))
            })
            .await?;
        rows.into_iter()
            .map(|row| {
                let story = counts.get(&row.story_id).copied().unwrap_or_default();
                Ok(row.into_row(story)?)
            })
            .collect()
    }

    /// The stories that matched at least one watch-list (with a match for
    /// `query.watchlist`, when given), newest activity first; the stories of items that
    /// matched nothing are not listed. Activity is `stories.last_seen_at`, which the commit
    /// stage sets whenever an item joins a story: a story without one is not listed.
    pub async fn stories(&self, query: &StoryQuery) -> Result<Vec<StoryRow>> {
        self.look(async |conn| {
            let mut snapshot = conn.begin().await?;
            // The page walks `stories_by_activity` backwards (its entries end with the row
            // id, so the order is complete) and stops at `since`; the EXISTS is a look-up
            // in the (story_id, watchlist) unique index of matches.
            let page: Vec<StoryPage> = query_as(
                "SELECT s.id, s.first_seen_at, s.last_seen_at
                 FROM stories s
                 WHERE s.last_seen_at >= $2
                   AND ($4 IS NULL OR s.last_seen_at < $4 OR (s.last_seen_at = $4 AND s.id < $5))
                   AND EXISTS (SELECT 1 FROM matches m
                               WHERE m.story_id = s.id AND ($1 IS NULL OR m.watchlist = $1))
                 ORDER BY s.last_seen_at DESC, s.id DESC
                 LIMIT $3",
            )
            .bind(query.watchlist.as_deref())
            .bind(query.since.unwrap_or(i64::MIN))
            .bind(query.limit)
            .bind(query.before.map(|(at, _)| at))
            .bind(query.before.map(|(_, id)| id))
            .fetch_all(&mut *snapshot)
            .await?;
            let ids: Vec<i64> = page.iter().map(|story| story.id).collect();
            let counts = story_counts(&mut snapshot, &ids).await?;
            let mut watchlists: HashMap<i64, Vec<String>> = HashMap::with_capacity(ids.len());
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    // One row per (story, watch-list): matches has that unique constraint.
                    "SELECT story_id, watchlist FROM matches
                     WHERE story_id IN {} ORDER BY story_id, watchlist",
                    values(1, chunk.len())
                );
                let mut select = multi_row_as::<StoryWatchlist>(sql, chunk.len());
                for id in chunk {
                    select = select.bind(*id);
                }
                for row in select.fetch_all(&mut *snapshot).await? {
                    watchlists
                        .entry(row.story_id)
                        .or_default()
                        .push(row.watchlist);
                }
            }
            let mut sightings = items_of_stories(&mut snapshot, &ids, MAX_STORY_ITEMS).await?;
            snapshot.commit().await?;
            Ok(page
                .into_iter()
                .map(|story| {
                    let items = sightings.remove(&story.id).unwrap_or_default();
                    let counts = counts.get(&story.id).copied().unwrap_or_default();
                    StoryRow {
                        id: story.id.to_string(),
                        title: items
                            .first()
                            .map(|item| item.title.clone())
                            .unwrap_or_default(),
                        first_seen_at: story.first_seen_at,
                        last_seen_at: story.last_seen_at,
                        feeds: counts.feeds,
                        watchlists: watchlists.remove(&story.id).unwrap_or_default(),
                        items,
                        item_count: counts.items,
                    }
                })
                .collect())
        })
        .await
    }

    /// The terms and first highlight of `watchlist`'s match of each of `stories` (a story
    /// without one is left out).
    pub async fn story_matches(
        &self,
        watchlist: &str,
        stories: &[i64],
    ) -> Result<HashMap<i64, WatchlistHit>> {
        let rows = self
            .look(async |conn| {
                let mut rows: Vec<StoredWatchlistHit> = Vec::with_capacity(stories.len());
                for chunk in stories.chunks(ROWS_PER_STATEMENT) {
                    let sql = format!(
                        "SELECT story_id, terms, highlights FROM matches
                         WHERE story_id IN {} AND watchlist = {}",
                        values(1, chunk.len()),
                        placeholder(chunk.len() + 1)
                    );
                    let mut select = multi_row_as::<StoredWatchlistHit>(sql, chunk.len() + 1);
                    for id in chunk {
                        select = select.bind(*id);
                    }
                    select = select.bind(watchlist);
                    rows.extend(select.fetch_all(&mut *conn).await?);
                }
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|row| {
                let highlights: Vec<serde_json::Value> = serde_json::from_str(&row.highlights)?;
                let first = highlights.first();
                let text = |key: &str| {
                    first
                        .and_then(|h| h.get(key))
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                };
                let found = WatchlistHit {
                    terms: serde_json::from_str(&row.terms)?,
                    field: text("field"),
                    snippet: text("snippet"),
                };
                Ok((row.story_id, found))
            })
            .collect()
    }

    /// The items of one story, in the order they were seen, each with its feed's name, at
    /// most [`MAX_STORY_ITEMS`] (`wirewatch demo` shows where else a story was seen).
    pub async fn story_items(&self, story: i64) -> Result<Vec<StorySighting>> {
        self.look(async |conn| {
            let mut items = items_of_stories(conn, &[story], MAX_STORY_ITEMS).await?;
            Ok(items.remove(&story).unwrap_or_default())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{query, query_scalar};
    use serde_json::json;

    use super::*;
    use crate::store::temp_store;

    /// A store holding the feeds `wire`, `mirror` and `agency`, and their ids.
    async fn three_feeds() -> (tempfile::TempDir, Store, [i64; 3]) {
        let (dir, store) = temp_store().await;
        store
            .register(
                &[
                    ("wire", "https://wire.example/rss"),
                    ("mirror", "https://mirror.example/rss"),
                    ("agency", "https://agency.example/rss"),
                ],
                &[],
            )
            .await
            .expect("register");
        let mut ids = [0; 3];
        for (id, name) in ids.iter_mut().zip(["wire", "mirror", "agency"]) {
            *id = store.feed_state(name).await.expect("read").expect("row").id;
        }
        (dir, store, ids)
    }

    /// What a test stores of one story: its items (feed, title, seen at) in the order
    /// seen, and the watch-lists that matched it, each on its item at that index.
    struct Told<'a> {
        items: &'a [(i64, &'a str, i64)],
        matches: &'a [(&'a str, usize)],
    }

    /// Stores a story as the commit stage leaves it: first seen with its first item, last
    /// seen with its last, its items, and one match per watch-list. Returns its id.
    async fn tell(store: &Store, story: Told<'_>) -> i64 {
        let first = story.items.first().map_or(0, |item| item.2);
        let last = story.items.iter().map(|item| item.2).max().unwrap_or(first);
        store
            .transaction(async |tx| {
                let id: i64 = query_scalar(
                    "INSERT INTO stories (first_seen_at, last_seen_at) VALUES ($1, $2)
                     RETURNING id",
                )
                .bind(first)
                .bind(last)
                .fetch_one(&mut *tx.conn)
                .await?;
                let mut items = Vec::new();
                for (n, (feed, title, at)) in story.items.iter().enumerate() {
                    let item: i64 = query_scalar(
                        "INSERT INTO items (feed_id, item_key, story_id, title, url, summary,
                                            authors, categories, first_seen_at)
                         VALUES ($1, $2, $3, $4, $5, '', '[]', '[]', $6) RETURNING id",
                    )
                    .bind(feed)
                    .bind(format!("{id}-{n}"))
                    .bind(id)
                    .bind(*title)
                    .bind(format!("https://news.example/{id}/{n}"))
                    .bind(at)
                    .fetch_one(&mut *tx.conn)
                    .await?;
                    items.push((item, *at));
                }
                for (watchlist, index) in story.matches {
                    let (item, at) = items[*index];
                    query(
                        "INSERT INTO matches (id, story_id, watchlist, item_id, terms,
                                              highlights, created_at)
                         VALUES ($1, $2, $3, $4, '[\"Iran\"]', '[]', $5)",
                    )
                    .bind(format!("match-{id}-{watchlist}"))
                    .bind(id)
                    .bind(*watchlist)
                    .bind(item)
                    .bind(at)
                    .execute(&mut *tx.conn)
                    .await?;
                }
                Ok(id)
            })
            .await
            .expect("story stored")
    }

    /// Four stories across the three feeds, and their ids in the order told:
    /// - `pact`: 4 items in 3 feeds (seen 1000 to 3000), matched `iran-china` and `energy`;
    /// - `summit`: 2 items in 2 feeds (seen 1500 and 4000), matched `iran-china`;
    /// - `football`: 2 items (seen last, at 5000), matched nothing;
    /// - `pipeline`: 1 item (seen at 2500), matched `energy`.
    async fn newsroom(store: &Store, [wire, mirror, agency]: [i64; 3]) -> [i64; 4] {
        let pact = tell(
            store,
            Told {
                items: &[
                    (wire, "Iran and China sign a 25-year pact", 1000),
                    (mirror, "Iran, China sign long-term pact", 2000),
                    (wire, "Iran and China sign a 25-year pact - update", 2200),
                    (agency, "UPDATE 1-Iran and China sign pact", 3000),
                ],
                matches: &[("iran-china", 0), ("energy", 3)],
            },
        )
        .await;
        let summit = tell(
            store,
            Told {
                items: &[
                    (wire, "Summit in Astana", 1500),
                    (agency, "SCO summit opens in Astana", 4000),
                ],
                matches: &[("iran-china", 0)],
            },
        )
        .await;
        let football = tell(
            store,
            Told {
                items: &[
                    (wire, "Scotland beat Wales", 4500),
                    (mirror, "Scotland beat Wales 2-0", 5000),
                ],
                matches: &[],
            },
        )
        .await;
        let pipeline = tell(
            store,
            Told {
                items: &[(mirror, "Gas pipeline deal stalls", 2500)],
                matches: &[("energy", 0)],
            },
        )
        .await;
        [pact, summit, football, pipeline]
    }

    async fn listed(store: &Store, query: StoryQuery) -> Vec<i64> {
        store
            .stories(&query)
            .await
            .expect("stories")
            .iter()
            .map(|story| story.id.parse().expect("a numeric id"))
            .collect()
    }

    fn page(limit: i64) -> StoryQuery {
        StoryQuery {
            limit,
            ..StoryQuery::default()
        }
    }

    #[tokio::test]
    async fn stories_that_matched_are_listed_newest_activity_first_and_unmatched_ones_never() {
        let (_dir, store, feeds) = three_feeds().await;
        let [pact, summit, _football, pipeline] = newsroom(&store, feeds).await;

        assert_eq!(listed(&store, page(50)).await, [summit, pact, pipeline]);
    }

    #[tokio::test]
    async fn a_listed_story_has_its_first_items_title_its_distinct_feeds_its_watchlists_and_items_in_order()
     {
        let (_dir, store, feeds) = three_feeds().await;
        let [pact, ..] = newsroom(&store, feeds).await;

        let stories = store.stories(&page(50)).await.expect("stories");
        let story = stories
            .iter()
            .find(|story| story.id == pact.to_string())
            .expect("the pact story");
        assert_eq!(story.item_count, 4);
        assert_eq!(
            serde_json::to_value(story).expect("json"),
            json!({
                "id": pact.to_string(),
                "title": "Iran and China sign a 25-year pact",
                "first_seen": "1970-01-01T00:16:40Z",
                "last_seen": "1970-01-01T00:50:00Z",
                "feeds": 3,
                "watchlists": ["energy", "iran-china"],
                "items": [
                    {"feed": "wire", "title": "Iran and China sign a 25-year pact",
                     "url": format!("https://news.example/{pact}/0"), "seen": "1970-01-01T00:16:40Z"},
                    {"feed": "mirror", "title": "Iran, China sign long-term pact",
                     "url": format!("https://news.example/{pact}/1"), "seen": "1970-01-01T00:33:20Z"},
                    {"feed": "wire", "title": "Iran and China sign a 25-year pact - update",
                     "url": format!("https://news.example/{pact}/2"), "seen": "1970-01-01T00:36:40Z"},
                    {"feed": "agency", "title": "UPDATE 1-Iran and China sign pact",
                     "url": format!("https://news.example/{pact}/3"), "seen": "1970-01-01T00:50:00Z"},
                ],
            })
        );
        let listing = serde_json::to_value(StoryListing { stories: &stories }).expect("json");
        assert_eq!(listing["stories"].as_array().map(Vec::len), Some(3));
    }

    #[tokio::test]
    async fn stories_filter_by_watchlist_by_last_activity_and_by_count() {
        let (_dir, store, feeds) = three_feeds().await;
        let [pact, summit, _football, pipeline] = newsroom(&store, feeds).await;
        let query = |watchlist: Option<&str>, since: Option<i64>, limit: i64| StoryQuery {
            watchlist: watchlist.map(str::to_string),
            since,
            limit,
            before: None,
        };

        // Any of a story's watch-lists lists it, with all of its watch-lists.
        assert_eq!(
            listed(&store, query(Some("energy"), None, 50)).await,
            [pact, pipeline]
        );
        let energy = store
            .stories(&query(Some("energy"), None, 50))
            .await
            .expect("stories");
        assert_eq!(energy[0].watchlists, ["energy", "iran-china"]);
        assert_eq!(
            listed(&store, query(Some("iran-china"), None, 50)).await,
            [summit, pact]
        );
        assert!(
            listed(&store, query(Some("unknown"), None, 50))
                .await
                .is_empty()
        );
        // `since` is inclusive, and counts the story's last activity, not its start.
        assert_eq!(
            listed(&store, query(None, Some(3000), 50)).await,
            [summit, pact]
        );
        assert_eq!(listed(&store, query(None, Some(3001), 50)).await, [summit]);
        assert!(listed(&store, query(None, Some(4001), 50)).await.is_empty());
        assert_eq!(
            listed(&store, query(Some("energy"), Some(2500), 50)).await,
            [pact, pipeline]
        );
        // The limit takes the newest.
        assert_eq!(listed(&store, query(None, None, 2)).await, [summit, pact]);
        assert_eq!(listed(&store, query(Some("energy"), None, 1)).await, [pact]);
        // The console's pages: each starts after the last story of the page before.
        let mut pages = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .stories(&StoryQuery {
                    before,
                    ..query(None, None, 1)
                })
                .await
                .expect("stories");
            let Some(last) = page.last() else { break };
            before = Some((last.last_seen_at, last.id.parse().expect("numeric")));
            pages.push(last.id.parse::<i64>().expect("numeric"));
        }
        assert_eq!(pages, [summit, pact, pipeline]);

        // The console's terms and highlight of each story, for one watch-list.
        let hits = store
            .story_matches("iran-china", &[summit, pact, pipeline])
            .await
            .expect("hits");
        assert_eq!(
            hits.len(),
            2,
            "the pipeline story is energy's only: {hits:?}"
        );
        assert!(
            hits[&summit].terms.contains(&"Iran".to_string()),
            "{hits:?}"
        );
    }

    #[tokio::test]
    async fn stories_last_active_in_the_same_second_list_the_later_story_first() {
        let (_dir, store, [wire, mirror, _]) = three_feeds().await;
        let older = tell(
            &store,
            Told {
                items: &[
                    (wire, "Iran holds elections", 100),
                    (mirror, "Iran votes", 900),
                ],
                matches: &[("iran-china", 0)],
            },
        )
        .await;
        let newer = tell(
            &store,
            Told {
                items: &[(mirror, "China opens a port", 900)],
                matches: &[("iran-china", 0)],
            },
        )
        .await;

        assert_eq!(listed(&store, page(50)).await, [newer, older]);
        assert_eq!(listed(&store, page(1)).await, [newer]);
    }

    #[tokio::test]
    async fn a_story_lists_its_first_items_up_to_the_cap_and_counts_all_of_them() {
        let (_dir, store, [wire, mirror, agency]) = three_feeds().await;
        let extra = 5;
        let titles: Vec<String> = (0..MAX_STORY_ITEMS + extra)
            .map(|n| format!("Iran story, copy {n}"))
            .collect();
        // Every feed carries copies, the agency's only past the cap.
        let items: Vec<(i64, &str, i64)> = titles
            .iter()
            .enumerate()
            .map(|(n, title)| {
                let feed = match n {
                    n if n >= MAX_STORY_ITEMS => agency,
                    n if n % 2 == 0 => wire,
                    _ => mirror,
                };
                (feed, title.as_str(), 1000 + n as i64)
            })
            .collect();
        tell(
            &store,
            Told {
                items: &items,
                matches: &[("iran-china", 0)],
            },
        )
        .await;

        let stories = store.stories(&page(50)).await.expect("stories");
        let story = &stories[0];
        assert_eq!(story.items.len(), MAX_STORY_ITEMS);
        assert_eq!(story.item_count, (MAX_STORY_ITEMS + extra) as u64);
        assert_eq!(
            story.feeds, 3,
            "counted over every item, not the listed ones"
        );
        assert_eq!(story.title, "Iran story, copy 0");
        let listed: Vec<&str> = story.items.iter().map(|item| item.title.as_str()).collect();
        let first: Vec<&str> = titles[..MAX_STORY_ITEMS]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(listed, first);
        assert_eq!(
            story.last_seen_at,
            1000 + (MAX_STORY_ITEMS + extra) as i64 - 1
        );
    }

    #[tokio::test]
    async fn a_match_shows_its_story_and_how_many_items_and_feeds_carried_it() {
        let (_dir, store, feeds) = three_feeds().await;
        let [pact, summit, _football, pipeline] = newsroom(&store, feeds).await;

        let reach: Vec<(String, String, u64, u64)> = store
            .matches(&MatchQuery {
                limit: 50,
                ..MatchQuery::default()
            })
            .await
            .expect("matches")
            .into_iter()
            .map(|row| (row.watchlist, row.story_id, row.sightings, row.feeds))
            .collect();
        let expected = [
            ("energy", pact, 4, 3),
            ("energy", pipeline, 1, 1),
            ("iran-china", summit, 2, 2),
            ("iran-china", pact, 4, 3),
        ]
        .map(|(watchlist, story, items, feeds)| {
            (watchlist.to_string(), story.to_string(), items, feeds)
        });
        assert_eq!(reach, expected);
        let row = serde_json::to_value(
            &store
                .matches(&MatchQuery {
                    watchlist: Some("energy".into()),
                    limit: 1,
                    ..MatchQuery::default()
                })
                .await
                .expect("matches")[0],
        )
        .expect("json");
        assert_eq!(row["story_id"], json!(pact.to_string()));
        assert_eq!(row["sightings"], json!(4));
        assert_eq!(row["feeds"], json!(3));
        assert_eq!(row["title"], json!("UPDATE 1-Iran and China sign pact"));
    }
}
