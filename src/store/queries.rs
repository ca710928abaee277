//! Read-only look-ups of what the pipeline stored, for people: the stored matches that
//! `wirewatch matches` and the API list, and the items of one story.
//!
//! Input: a [`MatchQuery`] (watch-list, since, a search string, a limit), or a story's id.
//! Output: [`MatchRow`]s, newest first, or a story's [`Sighting`]s in the order seen, read
//! on the store's read-only connections so that a slow listing never holds a connection
//! the pipeline needs.

use super::{Result, Sighting, Store};

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
}

impl TryFrom<StoredMatch> for MatchRow {
    type Error = serde_json::Error;

    fn try_from(row: StoredMatch) -> Result<MatchRow, serde_json::Error> {
        Ok(MatchRow {
            alert_id: row.id,
            watchlist: row.watchlist,
            terms: serde_json::from_str(&row.terms)?,
            created_at: row.created_at,
            feed: row.feed,
            title: row.title,
            url: row.url,
            published_at: row.published_at,
        })
    }
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
        let rows: Vec<StoredMatch> = self
            .look(async |conn| {
                sqlx::query_as(
                    "SELECT m.id, m.watchlist, m.terms, m.created_at, f.name AS feed, i.title,
                        i.url, i.published_at
                     FROM matches m
                     JOIN items i ON i.id = m.item_id
                     JOIN feeds f ON f.id = i.feed_id
                     WHERE (?1 IS NULL OR m.watchlist = ?1)
                       AND m.created_at >= ?2
                       AND (?3 IS NULL OR i.title LIKE ?3 ESCAPE '\\'
                            OR i.summary LIKE ?3 ESCAPE '\\')
                     ORDER BY m.created_at DESC, m.id DESC
                     LIMIT ?4",
                )
                .bind(query.watchlist.as_deref())
                .bind(query.since.unwrap_or(i64::MIN))
                .bind(search)
                .bind(query.limit)
                .fetch_all(&mut *conn)
                .await
            })
            .await?;
        rows.into_iter()
            .map(|row| Ok(MatchRow::try_from(row)?))
            .collect()
    }

    /// The items of one story, in the order they were seen, each with its feed's name:
    /// every outlet that carried it (`wirewatch demo` shows where else a story was seen).
    pub async fn story_items(&self, story: i64) -> Result<Vec<Sighting>> {
        self.look(async |conn| {
            // One story's rows through `items_by_story`, not a scan.
            sqlx::query_as(
                "SELECT i.story_id, f.name AS feed, i.title, i.url, i.first_seen_at
                 FROM items i JOIN feeds f ON f.id = i.feed_id
                 WHERE i.story_id = ?1 ORDER BY i.id",
            )
            .bind(story)
            .fetch_all(&mut *conn)
            .await
        })
        .await
    }
}
