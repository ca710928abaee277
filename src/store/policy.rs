//! The rows of the alert policy (SPEC §11): why an item that hit a watch-list did not
//! alert (misses), mutes, the single alerts a rate limit counts, and digests.
//!
//! Input: what the commit stage decided for each new match and item; mutes set from the
//! CLI; the digest task's ticks. Output: the reasons `explain` reads, the mutes and counts
//! each commit reads, and digests built in one transaction with the marking of the matches
//! they carry, so a crash neither loses nor repeats a story.

use std::collections::{HashMap, HashSet};

use super::{ROWS_PER_STATEMENT, Result, Store, StoreTx, multi_row, values};
use super::{query, query_as, query_scalar};

/// Why a stored match did not alert on its own (`matches.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Held {
    /// Stored on a feed's first fetch and older than `poll.backfill`.
    Backfill,
    /// The watch-list was muted.
    Muted,
    /// Past `max_alerts`: waits for the next digest.
    RateLimited,
    /// The watch-list sends digests only.
    Digest,
}

super::text_column!(Held {
    Backfill,
    Muted,
    RateLimited,
    Digest
});

impl Held {
    pub fn as_str(self) -> &'static str {
        match self {
            Held::Backfill => "backfill",
            Held::Muted => "muted",
            Held::RateLimited => "rate_limited",
            Held::Digest => "digest",
        }
    }
}

/// Why an item whose terms hit a watch-list stored no match of it (`misses.reason`). The
/// third reason, `same_story` (the item matched, its story had the match already), is not
/// a row: `items.watchlists` and the story's match tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissReason {
    /// An exclude vetoed it.
    Excluded,
    /// The watch-list's query was false.
    QueryFalse,
}

super::text_column!(MissReason {
    Excluded,
    QueryFalse
});

impl MissReason {
    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::Excluded => "excluded",
            MissReason::QueryFalse => "query_false",
        }
    }
}

/// A miss to store.
#[derive(Debug, Clone)]
pub struct NewMiss<'a> {
    pub item_id: i64,
    pub watchlist: &'a str,
    pub reason: MissReason,
    /// The exclude that vetoed, for [`MissReason::Excluded`].
    pub term: Option<&'a str>,
    pub terms_json: String,
}

/// A mute, as `wirewatch mute` lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Mute {
    pub watchlist: String,
    pub until: i64,
}

/// A match waiting for its watch-list's digest, with what the digest shows of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldMatch {
    pub match_id: String,
    pub story_id: i64,
    pub terms: String,
    pub highlights: String,
    pub title: String,
    pub created_at: i64,
}

/// A digest to store: its row, the matches it carries, and its outbox rows.
#[derive(Debug, Clone)]
pub struct NewDigest<'a> {
    pub id: &'a str,
    pub watchlist: &'a str,
    pub from: i64,
    pub to: i64,
    pub matches: &'a [String],
    /// (outbox row id, webhook, part number, body).
    pub rows: Vec<(String, &'a str, u32, String)>,
}

impl StoreTx {
    /// Stores why these items did not alert these watch-lists. An item keeps the first
    /// reason stored for a watch-list.
    pub async fn insert_misses(&mut self, misses: &[NewMiss<'_>]) -> Result<()> {
        for chunk in misses.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO misses (item_id, watchlist, reason, term, terms) VALUES {}
                 ON CONFLICT (item_id, watchlist) DO NOTHING",
                values(chunk.len(), 5)
            );
            let mut insert = multi_row(sql, chunk.len());
            for miss in chunk {
                insert = insert
                    .bind(miss.item_id)
                    .bind(miss.watchlist)
                    .bind(miss.reason)
                    .bind(miss.term)
                    .bind(miss.terms_json.as_str());
            }
            insert.execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    /// Holds these matches, stored by this transaction, back for the next digest, with
    /// `reason`.
    pub async fn hold_for_digest(&mut self, matches: &[&str], reason: Held) -> Result<()> {
        if matches.is_empty() {
            return Ok(());
        }
        query(
            "UPDATE matches SET reason = $1, awaiting_digest = 1
             WHERE id IN (SELECT value FROM json_each($2))",
        )
        .bind(reason)
        .bind(serde_json::to_string(matches)?)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    /// The watch-lists muted at `now`.
    pub async fn muted(&mut self, now: i64) -> Result<HashSet<String>> {
        let rows: Vec<(String,)> = query_as("SELECT watchlist FROM mutes WHERE until > $1")
            .bind(now)
            .fetch_all(&mut *self.conn)
            .await?;
        Ok(rows.into_iter().map(|(w,)| w).collect())
    }

    /// Single alerts of each of `watchlists` stored after `since` (their own unix seconds
    /// each), for `max_alerts`.
    pub async fn alerts_since(
        &mut self,
        watchlists: &[(&str, i64)],
    ) -> Result<HashMap<String, u64>> {
        let mut counts = HashMap::with_capacity(watchlists.len());
        for &(watchlist, since) in watchlists {
            let count: i64 = query_scalar(
                "SELECT COUNT(*) FROM matches
                 WHERE watchlist = $1 AND created_at > $2 AND reason IS NULL",
            )
            .bind(watchlist)
            .bind(since)
            .fetch_one(&mut *self.conn)
            .await?;
            counts.insert(watchlist.to_owned(), u64::try_from(count).unwrap_or(0));
        }
        Ok(counts)
    }

    /// Where the watch-list's next digest period starts: the end of its last digest.
    pub async fn last_digest_end(&mut self, watchlist: &str) -> Result<Option<i64>> {
        Ok(
            query_scalar("SELECT MAX(period_to) FROM digests WHERE watchlist = $1")
                .bind(watchlist)
                .fetch_one(&mut *self.conn)
                .await?,
        )
    }

    /// The watch-list's matches waiting for a digest, stored at or before `until`, oldest
    /// first.
    pub async fn awaiting_digest(&mut self, watchlist: &str, until: i64) -> Result<Vec<HeldMatch>> {
        Ok(query_as(
            "SELECT m.id AS match_id, m.story_id, m.terms, m.highlights, i.title, m.created_at
             FROM matches m JOIN items i ON i.id = m.item_id
             WHERE m.watchlist = $1 AND m.awaiting_digest = 1 AND m.created_at <= $2
             ORDER BY m.created_at, m.id",
        )
        .bind(watchlist)
        .bind(until)
        .fetch_all(&mut *self.conn)
        .await?)
    }

    /// Stores a digest, queues its outbox rows and marks its matches as carried by it.
    pub async fn insert_digest(&mut self, digest: &NewDigest<'_>, now: i64) -> Result<()> {
        query(
            "INSERT INTO digests (id, watchlist, period_from, period_to, stories, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(digest.id)
        .bind(digest.watchlist)
        .bind(digest.from)
        .bind(digest.to)
        .bind(i64::try_from(digest.matches.len()).unwrap_or(i64::MAX))
        .bind(now)
        .execute(&mut *self.conn)
        .await?;
        for (id, webhook, part, body) in &digest.rows {
            query(
                "INSERT INTO outbox (id, digest_id, webhook, stage, body, next_attempt_at,
                                     created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(id.as_str())
            .bind(digest.id)
            .bind(*webhook)
            .bind(i64::from(*part))
            .bind(body.as_str())
            .bind(now)
            .execute(&mut *self.conn)
            .await?;
        }
        query(
            "UPDATE matches SET awaiting_digest = 0, digest_id = $1
             WHERE id IN (SELECT value FROM json_each($2))",
        )
        .bind(digest.id)
        .bind(serde_json::to_string(digest.matches)?)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Mutes `watchlist` until `until` (replacing an earlier mute of it).
    pub async fn mute(&self, watchlist: &str, until: i64, now: i64) -> Result<()> {
        self.transaction(async |tx| {
            query(
                "INSERT INTO mutes (watchlist, until, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (watchlist) DO UPDATE SET until = $2, created_at = $3",
            )
            .bind(watchlist)
            .bind(until)
            .bind(now)
            .execute(&mut *tx.conn)
            .await?;
            Ok(())
        })
        .await
    }

    /// Ends the mute of `watchlist`; whether it was muted at `now`.
    pub async fn unmute(&self, watchlist: &str, now: i64) -> Result<bool> {
        self.transaction(async |tx| {
            let ended: Option<i64> =
                query_scalar("DELETE FROM mutes WHERE watchlist = $1 RETURNING until")
                    .bind(watchlist)
                    .fetch_optional(&mut *tx.conn)
                    .await?;
            Ok(ended.is_some_and(|until| until > now))
        })
        .await
    }

    /// The mutes in force at `now`, by watch-list name.
    pub async fn mutes(&self, now: i64) -> Result<Vec<Mute>> {
        self.look(async |conn| {
            query_as("SELECT watchlist, until FROM mutes WHERE until > $1 ORDER BY watchlist")
                .bind(now)
                .fetch_all(&mut *conn)
                .await
        })
        .await
    }
}
