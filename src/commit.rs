//! The commit stage: one writer that stores what the refreshes found, many feeds per
//! transaction (group commit).
//!
//! Input: each refresh's result ([`FeedResult`]): a 304, a failure, or new items with their
//! matches. Output: committed rows (stories, items, matches, outbox rows rendered for each
//! webhook, every feed's new validators and due time) and, for each refresh, what it added
//! ([`Committed`]).
//!
//! The alert policy (SPEC §11) is decided here, in the transaction that stores the match:
//! a match alerts at once unless backfill, a mute, a digest-only watch-list or its
//! `max_alerts` holds it back (it then carries that reason, and waits for the digest when
//! there is one); an item whose terms hit a watch-list but that stored no match of it (its
//! story had one, an exclude vetoed it, the query was false) is stored as a miss with that
//! reason. Both are counted in `wirewatch_suppressed_total`.
//!
//! The one place besides [`crate::refresh`] where two stages meet: an alert's outbox rows
//! must commit in the same transaction as its match (a crash between the two would lose
//! the alert or send one for a match never stored), so the writer asks the notify stage to
//! build them ([`outbox::rows`]) and stores them itself; after a commit that queued any, it
//! wakes the outbox workers ([`Wake`]) directly.
//!
//! Why one writer: SQLite has one write lock, and what a write waits for is statements
//! (each one two hand-offs to sqlx's SQLite thread) and commits, not SQLite's own work. The
//! writer takes every result waiting in its queue, up to [`MAX_BATCH`], and writes them all
//! with a few multi-row statements in one transaction. Under load, dozens of feeds share
//! each statement and each commit; when the daemon is quiet, a lone result is written at
//! once, without waiting for company.
//!
//! Guarantees:
//! - a refresh hears "committed" only once the transaction holding its rows has committed;
//! - a batch is all or nothing: a crash mid-batch loses only uncommitted work, and those
//!   feeds keep their old validators, so they are fetched again and nothing is skipped;
//! - if a batch fails for a reason one result can cause (a constraint, bad data), each of
//!   its results is written again in a transaction of its own, so one bad result fails
//!   alone; if the database itself failed (busy, I/O, full, closed), the whole batch fails
//!   at once and its feeds are fetched again, rather than retried one slow write at a time;
//! - a result whose refresh was abandoned (at shutdown or reload) before the writer took
//!   it is not written: its feed keeps its old validators and is simply fetched again;
//! - the queue is bounded: when the writer falls behind, refreshes wait to hand over their
//!   results while still holding their fetch slots, so fetching slows to the writer's pace
//!   and memory stays bounded (backpressure).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::matcher::{Examined, Miss, WatchlistMatch};
use crate::metrics;
use crate::notify::Wake;
use crate::notify::body::{Event, MAX_SIGHTINGS};
use crate::notify::outbox::{self, NewAlert};
use crate::parse::Item;
use crate::store::{
    Escalation, FeedFailure, FeedUpdate, Held, ItemRow, MissReason, NewItem, NewMatch, NewMiss,
    Result, Store, StoreError, StoreTx, StorySighting, StorySummary,
};
use crate::stories::{Clusters, Fingerprint, StoryText};
use crate::telemetry::error_chain;

/// The most refresh results written in one transaction. Large enough that a cold start's
/// statements carry hundreds of rows; small enough that one transaction holds the write
/// lock for tens of milliseconds, not seconds.
pub const MAX_BATCH: usize = 64;

/// Results waiting for the writer before refreshes have to wait to hand theirs over.
const QUEUE: usize = 2 * MAX_BATCH;

/// What one refresh found, to be stored.
#[derive(Debug)]
pub enum FeedResult {
    /// 304: only the feed's schedule moves.
    NotModified {
        feed_id: i64,
        fetched_at: i64,
        next_due_at: i64,
    },
    /// The fetch or parse failed.
    Failed { feed_id: i64, failure: FeedFailure },
    /// A chain of permanent redirects moved the feed (the target passed the network
    /// guard). Stored as soon as it is known, whatever the new place serves.
    Moved { feed_id: i64, url: String },
    /// A document was fetched and parsed.
    Fetched(Box<Fetched>),
}

/// A fetched document's new items and the feed's new state.
#[derive(Debug)]
pub struct Fetched {
    /// Index of the feed in the config.
    pub feed: usize,
    pub feed_id: i64,
    /// When the refresh started: the time alerts are stamped with and backfill counts from.
    pub at: DateTime<Utc>,
    /// Items the feed did not hold when the document was read, each with its matches.
    pub candidates: Vec<Candidate>,
    /// The feed's first successful fetch: only items within `poll.backfill` alert.
    pub first_fetch: bool,
    pub update: FeedUpdate,
}

/// A new item with its matches, ready to store.
#[derive(Debug)]
pub struct Candidate {
    pub item: Item,
    /// [`crate::dedup::item_key`].
    pub key: String,
    /// [`crate::dedup::canonical_link`]: an item whose link a story already carries is
    /// that story.
    pub canonical: Option<String>,
    /// The text the item joins a story by, for an item that matched (else `None`).
    pub text: Option<StoryText>,
    pub matches: Vec<WatchlistMatch>,
    /// Watch-lists whose terms hit and that did not match: stored as the reason.
    pub misses: Vec<Miss>,
}

impl Candidate {
    /// A new item, with its key ([`crate::dedup::item_key`]) and what the watch-lists
    /// found in it: adds its canonical link and, when it matched, the text it joins a story
    /// by.
    pub fn new(key: String, item: Item, examined: Examined) -> Candidate {
        let Examined { matches, misses } = examined;
        // Only items that match join stories by their text (SPEC §10): fingerprinting
        // and indexing every item would cost more than the rest of the poll.
        let text = if matches.is_empty() {
            None
        } else {
            StoryText::of(
                &item.title,
                &crate::stories::lede(&item.summary, &item.article),
            )
        };
        Candidate {
            key,
            canonical: item.link.as_ref().map(crate::dedup::canonical_link),
            text,
            item,
            matches,
            misses,
        }
    }
}

/// What one refresh's result added once committed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Matches stored: a story matches each watch-list once, across all feeds.
    pub matches: usize,
    /// Outbox rows queued.
    pub alerts: usize,
}

struct Job {
    result: FeedResult,
    reply: oneshot::Sender<Result<Committed>>,
}

/// The handle refreshes hand their results to; cheap to clone. The writer task stops once
/// every handle is dropped and the queue is empty.
#[derive(Debug, Clone)]
pub struct Committer {
    queue: mpsc::Sender<Job>,
    /// Notified whenever a commit queued outbox rows.
    alerts: Wake,
}

/// The writer task behind a set of [`Committer`]s.
#[must_use = "a writer left running may still write after its configuration is replaced"]
pub struct Writer(JoinHandle<()>);

impl Writer {
    /// Waits until every [`Committer`] is dropped and every result handed over is written
    /// (or skipped, its refresh having been abandoned), for at most `grace`. Past it, stops
    /// the writer: the batch in hand rolls back, to be fetched again. Returns whether the
    /// writer finished.
    pub async fn finish_within(mut self, grace: Duration) -> bool {
        if tokio::time::timeout(grace, &mut self.0).await.is_ok() {
            return true;
        }
        self.0.abort();
        let _ = (&mut self.0).await;
        false
    }
}

impl Committer {
    /// Starts the writer on the current tokio runtime.
    pub fn start(store: Store, config: Arc<Config>) -> (Committer, Writer) {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let alerts = Wake::new();
        let writer = tokio::spawn(run(store, config, jobs, alerts.clone()));
        (Committer { queue, alerts }, Writer(writer))
    }

    /// What wakes the outbox workers: notified each time a commit has queued alerts.
    pub fn alerts_committed(&self) -> Wake {
        self.alerts.clone()
    }

    /// Stores `result`; returns once it is committed.
    pub async fn commit(&self, result: FeedResult) -> Result<Committed> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { result, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(store: Store, config: Arc<Config>, mut queue: mpsc::Receiver<Job>, alerts: Wake) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let batch = std::mem::replace(&mut jobs, Vec::with_capacity(MAX_BATCH));
        // A panic while writing fails this batch (its refreshes hear "writer stopped" and
        // are retried), not every batch after it.
        let written = tokio::spawn(write_batch(store.clone(), config.clone(), batch)).await;
        match written {
            Ok(queued) if queued > 0 => alerts.notify(),
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "the database writer failed a batch"),
        }
    }
}

/// Writes a batch; returns how many outbox rows it queued.
async fn write_batch(store: Store, config: Arc<Config>, mut batch: Vec<Job>) -> usize {
    batch.retain(|job| !job.reply.is_closed());
    if batch.is_empty() {
        return 0;
    }
    let started = std::time::Instant::now();
    let results: Vec<&FeedResult> = batch.iter().map(|job| &job.result).collect();
    match write(&store, &config, &results).await {
        Ok(committed) => {
            metrics::commit(batch.len(), started.elapsed());
            let queued = committed.iter().map(|c| c.alerts).sum();
            for (job, committed) in batch.into_iter().zip(committed) {
                // A refresh abandoned while its batch was written no longer listens; its
                // rows are stored all the same.
                let _ = job.reply.send(Ok(committed));
            }
            queued
        }
        Err(err) if batch.len() > 1 && err.is_about_the_data() => {
            tracing::warn!(feeds = batch.len(), error = %error_chain(&err), "a batch of refreshes failed to commit; writing them one by one");
            let mut queued = 0;
            for job in batch {
                let alone = write(&store, &config, &[&job.result])
                    .await
                    .map(|committed| committed.first().copied().unwrap_or_default());
                queued += alone.as_ref().map_or(0, |c| c.alerts);
                let _ = job.reply.send(alone);
            }
            queued
        }
        Err(err) => {
            if batch.len() > 1 {
                tracing::warn!(feeds = batch.len(), error = %error_chain(&err), "a batch of refreshes failed to commit; their feeds will be fetched again");
            }
            let err = Arc::new(err);
            for job in batch {
                let _ = job.reply.send(Err(StoreError::Shared(err.clone())));
            }
            0
        }
    }
}

/// Writes `results` in one transaction; returns what each added, in order.
pub async fn write(
    store: &Store,
    config: &Config,
    results: &[&FeedResult],
) -> Result<Vec<Committed>> {
    let (added, counted) = store
        .transaction(async |tx| {
            let mut not_modified = Vec::new();
            let mut fetched = Vec::new();
            for result in results {
                match result {
                    FeedResult::NotModified {
                        feed_id,
                        fetched_at,
                        next_due_at,
                    } => not_modified.push((*feed_id, *fetched_at, *next_due_at)),
                    FeedResult::Failed { feed_id, failure } => {
                        tx.record_failure(*feed_id, failure).await?;
                    }
                    FeedResult::Moved { feed_id, url } => tx.record_moved(*feed_id, url).await?,
                    FeedResult::Fetched(found) => fetched.push(found.as_ref()),
                }
            }
            tx.record_not_modified(&not_modified).await?;
            write_fetched(tx, config, &fetched).await
        })
        .await?;

    for watchlist in counted.matched {
        metrics::matched(watchlist);
    }
    for (watchlist, reason) in counted.suppressed {
        metrics::suppressed(watchlist, reason);
    }
    let mut added = added.into_iter();
    Ok(results
        .iter()
        .map(|result| match result {
            FeedResult::Fetched(_) => added.next().unwrap_or_default(),
            _ => Committed::default(),
        })
        .collect())
}

/// A match found in a new item, waiting for its row.
struct Found<'a> {
    /// Index into the `fetched` of [`write_fetched`].
    feed: usize,
    candidate: &'a Candidate,
    story_id: i64,
    item_id: i64,
    found: &'a WatchlistMatch,
    alert_id: String,
}

/// What a commit counts once it is committed: the watch-list of every new match, and of
/// every item that did not alert, with why.
#[derive(Default)]
struct Counted<'c> {
    matched: Vec<&'c str>,
    suppressed: Vec<(&'c str, &'static str)>,
}

/// Writes the fetched documents' stories, items, matches, misses and outbox rows and the
/// feeds' new state. Returns what each document added, and what to count.
async fn write_fetched<'c>(
    tx: &mut StoreTx,
    config: &'c Config,
    fetched: &[&Fetched],
) -> Result<(Vec<Committed>, Counted<'c>)> {
    let mut added = vec![Committed::default(); fetched.len()];
    let mut counted = Counted::default();
    if fetched.is_empty() {
        return Ok((added, counted));
    }
    let at = crate::clock::unix();
    let candidates: Vec<(usize, &Candidate)> = fetched
        .iter()
        .enumerate()
        .flat_map(|(index, f)| f.candidates.iter().map(move |c| (index, c)))
        .collect();

    // Stories: each new item joins the story of its link, else of a near-identical item,
    // else starts its own.
    let (placed, joined) = place_in_stories(tx, config, &candidates, at).await?;
    let rows: Vec<ItemRow> = candidates
        .iter()
        .zip(&placed)
        .map(|(&(index, candidate), &placed)| {
            let item = &candidate.item;
            ItemRow {
                feed_id: fetched[index].feed_id,
                story_id: placed.story,
                matched: !candidate.matches.is_empty(),
                watchlists: (!candidate.matches.is_empty())
                    .then(|| {
                        candidate
                            .matches
                            .iter()
                            .map(|m| config.watchlists[m.watchlist].name.as_str())
                            .collect::<Vec<&str>>()
                    })
                    .and_then(|names| serde_json::to_string(&names).ok()),
                bands: candidate
                    .text
                    .as_ref()
                    .filter(|_| placed.indexed(candidate))
                    .map(StoryText::bands_blob),
                item: NewItem {
                    item_key: &candidate.key,
                    title: &item.title,
                    url: item.link.as_ref().map(url::Url::as_str),
                    published_at: item.published.map(|p| p.timestamp()),
                    summary: &item.summary,
                    content: &item.content,
                    article: &item.article,
                    authors: &item.authors,
                    categories: &item.categories,
                    language: item.language.as_deref(),
                },
            }
        })
        .collect();
    let item_ids = tx.insert_items(&rows, at).await?;

    // The band index gets the items just stored; matches and escalations read the stories
    // with them.
    let mut found = Vec::new();
    let mut banded = Vec::new();
    let mut misses = Vec::new();
    for ((row, &(index, candidate)), placed) in rows.iter().zip(&candidates).zip(&placed) {
        let Some(&item_id) = item_ids.get(&(row.feed_id, candidate.key.clone())) else {
            continue; // stored meanwhile by another writer
        };
        for miss in &candidate.misses {
            let watchlist = config.watchlists[miss.watchlist].name.as_str();
            let reason = match miss.excluded.first() {
                Some(_) => MissReason::Excluded,
                None => MissReason::QueryFalse,
            };
            counted.suppressed.push((watchlist, reason.as_str()));
            misses.push(NewMiss {
                item_id,
                watchlist,
                reason,
                term: miss.excluded.first().map(String::as_str),
                terms_json: serde_json::to_string(&miss.terms)?,
            });
        }
        if let Some(text) = candidate
            .text
            .as_ref()
            .filter(|_| placed.indexed(candidate))
        {
            banded.push((item_id, text.bands.as_slice()));
        }
        for hit in &candidate.matches {
            found.push(Found {
                feed: index,
                candidate,
                story_id: row.story_id,
                item_id,
                found: hit,
                alert_id: uuid::Uuid::now_v7().to_string(),
            });
        }
    }
    tx.insert_bands(&banded).await?;

    // The stories begun by this commit hold only this commit's items: they are summed up
    // from them rather than read back.
    let begun: HashSet<i64> = found
        .iter()
        .map(|f| f.story_id)
        .filter(|id| joined.binary_search(id).is_err())
        .collect();
    let stored = rows
        .iter()
        .zip(&candidates)
        .filter(|(row, (_, candidate))| {
            begun.contains(&row.story_id)
                && item_ids.contains_key(&(row.feed_id, candidate.key.clone()))
        })
        .map(|(row, &(index, candidate))| {
            (row, &config.feeds[fetched[index].feed].name, candidate)
        });
    let mut stories = sum_up(stored, at);

    // Matches: a story matches a watch-list once, whichever feed brought it first. Each is
    // held back from alerting alone by backfill, a mute or a digest (a rate limit is
    // counted once the new matches are known).
    let muted = tx.muted(at).await?;
    let held: Vec<Option<Held>> = found
        .iter()
        .map(|f| held_back(config, fetched[f.feed], f, &muted))
        .collect();
    let new_matches = found
        .iter()
        .zip(&held)
        .map(|(f, &held)| {
            let watchlist = &config.watchlists[f.found.watchlist];
            Ok(NewMatch {
                id: &f.alert_id,
                story_id: f.story_id,
                watchlist: &watchlist.name,
                item_id: f.item_id,
                terms_json: serde_json::to_string(&f.found.terms)?,
                highlights_json: serde_json::to_string(&f.found.highlights)?,
                created_at: at,
                // A story that arrives already this widely reported announces no growth
                // (for an older story, see below).
                escalated: stories
                    .get(&f.story_id)
                    .map_or(0, |s| reached(&watchlist.escalate, s.feeds)),
                held,
                awaiting_digest: held.is_some_and(|h| h != Held::Backfill)
                    && watchlist.digest.is_some(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let inserted = tx.insert_matches(&new_matches).await?;
    let mut held: HashMap<&str, Held> = found
        .iter()
        .zip(held)
        .filter_map(|(f, held)| Some((f.alert_id.as_str(), held?)))
        .collect();
    // A match its story already had: the item is a sighting (`same_story`), which its
    // `watchlists` and the story's match record.
    for f in found.iter().filter(|f| !inserted.contains(&f.alert_id)) {
        counted
            .suppressed
            .push((&config.watchlists[f.found.watchlist].name, "same_story"));
    }
    tx.insert_misses(&misses).await?;
    for alert in rate_limit(tx, config, &found, &inserted, &held, at).await? {
        held.insert(alert, Held::RateLimited);
    }
    for f in found.iter().filter(|f| inserted.contains(&f.alert_id)) {
        if let Some(reason) = held.get(f.alert_id.as_str()) {
            counted
                .suppressed
                .push((&config.watchlists[f.found.watchlist].name, reason.as_str()));
        }
    }

    // The older stories of the new matches are read, with what earlier commits stored.
    // Only these: most copies of an older story bring a match that story already has.
    let older: HashSet<i64> = found
        .iter()
        .filter(|f| inserted.contains(&f.alert_id) && !begun.contains(&f.story_id))
        .map(|f| f.story_id)
        .collect();
    stories.extend(tx.story_summaries(&older, MAX_SIGHTINGS).await?);
    for f in found.iter().filter(|f| inserted.contains(&f.alert_id)) {
        let thresholds = &config.watchlists[f.found.watchlist].escalate;
        let reached = stories
            .get(&f.story_id)
            .map_or(0, |s| reached(thresholds, s.feeds));
        if older.contains(&f.story_id) && reached > 0 {
            tx.set_escalated(&f.alert_id, reached).await?;
        }
    }

    // Alerts: the outbox rows of every new match that alerts, from the notify stage.
    let mut outbox = Vec::new();
    for f in found.iter().filter(|f| inserted.contains(&f.alert_id)) {
        let document = fetched[f.feed];
        added[f.feed].matches += 1;
        counted
            .matched
            .push(config.watchlists[f.found.watchlist].name.as_str());
        if held.contains_key(f.alert_id.as_str()) {
            continue;
        }
        let item = &f.candidate.item;
        let Some(story) = stories.get(&f.story_id) else {
            continue; // every stored item's story was just read
        };
        let rows = outbox::rows(
            config,
            &NewAlert {
                event: Event::Match,
                stage: 0,
                alert_id: &f.alert_id,
                feed: document.feed,
                feed_title: document.update.title.as_deref(),
                story_id: f.story_id,
                item_key: &f.candidate.key,
                item,
                found: f.found,
                at: document.at,
            },
            &outbox::story_payload(story),
        )?;
        added[f.feed].alerts += rows.len();
        outbox.extend(rows);
    }

    // Stories that grew: the earlier alerts of the stories this commit added to.
    let grown = escalate(tx, config, &joined, &mut stories, &inserted).await?;
    let now = crate::clock::now();
    for (escalation, threshold) in &grown {
        let Some(story) = stories.get(&escalation.story_id) else {
            continue; // every escalation's story was just read
        };
        let rows = outbox::grew(
            config,
            escalation,
            *threshold,
            &outbox::story_payload(story),
            now,
        )?;
        outbox.extend(rows);
        tx.set_escalated(&escalation.match_id, *threshold).await?;
    }
    tx.insert_outbox(&outbox, at).await?;

    let updates: Vec<(i64, &FeedUpdate)> = fetched.iter().map(|f| (f.feed_id, &f.update)).collect();
    tx.update_feeds(&updates).await?;
    Ok((added, counted))
}

/// Why a match found in `document` does not alert on its own, as far as it is known
/// before the commit's new matches are stored (a rate limit counts those): backfill, a
/// mute of its watch-list, or a watch-list that sends digests only.
fn held_back(
    config: &Config,
    document: &Fetched,
    f: &Found<'_>,
    muted: &HashSet<String>,
) -> Option<Held> {
    let watchlist = &config.watchlists[f.found.watchlist];
    if document.first_fetch
        && !config
            .poll
            .backfill
            .admits(f.candidate.item.published, document.at)
    {
        Some(Held::Backfill)
    } else if muted.contains(&watchlist.name) {
        Some(Held::Muted)
    } else if watchlist.digest_only {
        Some(Held::Digest)
    } else {
        None
    }
}

/// The new matches (`inserted`, not `held` already) past their watch-list's `max_alerts`,
/// in the order found: each is marked to wait for the next digest instead.
async fn rate_limit<'f>(
    tx: &mut StoreTx,
    config: &Config,
    found: &'f [Found<'_>],
    inserted: &HashSet<String>,
    held: &HashMap<&str, Held>,
    at: i64,
) -> Result<Vec<&'f str>> {
    let limited: Vec<&Found<'_>> = found
        .iter()
        .filter(|f| {
            inserted.contains(&f.alert_id)
                && !held.contains_key(f.alert_id.as_str())
                && config.watchlists[f.found.watchlist].max_alerts.is_some()
        })
        .collect();
    if limited.is_empty() {
        return Ok(Vec::new());
    }
    let mut since: Vec<(&str, i64)> = Vec::new();
    for f in &limited {
        let watchlist = &config.watchlists[f.found.watchlist];
        if let Some(limit) = watchlist.max_alerts
            && !since.iter().any(|(name, _)| *name == watchlist.name)
        {
            let period = i64::try_from(limit.period.as_secs()).unwrap_or(i64::MAX);
            since.push((&watchlist.name, at.saturating_sub(period)));
        }
    }
    // The matches of this commit are stored already, unheld: counted among the alerts.
    let mut sent = tx.alerts_since(&since).await?;
    let mut over = Vec::new();
    // This commit's new matches, newest last: the last ones over the limit wait.
    for f in limited.iter().rev() {
        let watchlist = &config.watchlists[f.found.watchlist];
        let (Some(limit), Some(count)) = (watchlist.max_alerts, sent.get_mut(&watchlist.name))
        else {
            continue;
        };
        if *count > u64::from(limit.count) {
            *count -= 1;
            over.push(f.alert_id.as_str());
        }
    }
    over.reverse();
    tx.hold_for_digest(&over, Held::RateLimited).await?;
    Ok(over)
}

/// The story of each candidate, in order: the story its canonical link already belongs to;
/// else, for an item that matched, the story whose indexed first item within `[stories]
/// window` it resembles most (stories begun earlier in this commit included); else a new
/// story. Also returns
/// the stories that existed before and gained an item. New stories and links are written
/// here; items are not.
async fn place_in_stories(
    tx: &mut StoreTx,
    config: &Config,
    candidates: &[(usize, &Candidate)],
    at: i64,
) -> Result<(Vec<Placed>, Vec<i64>)> {
    let urls: Vec<&str> = candidates
        .iter()
        .filter_map(|(_, c)| c.canonical.as_deref())
        .collect();
    let mut linked = tx.linked_stories(&urls).await?;

    // Only items no link places (their link is not known, nor carried by an earlier item
    // of this commit) are looked up by their text.
    let mut links_seen: HashSet<&str> = HashSet::new();
    let texts: Vec<&StoryText> = candidates
        .iter()
        .filter(|(_, c)| match c.canonical.as_deref() {
            Some(url) => !linked.contains_key(url) && links_seen.insert(url),
            None => true,
        })
        .filter_map(|(_, c)| c.text.as_ref())
        .collect();
    let window = i64::try_from(config.stories.window.as_secs()).unwrap_or(i64::MAX);
    let since = at.saturating_sub(window);
    // Two rounds: a near-identical copy of a stored story shares one of its first 10 bands
    // with it all but one time in a thousand (at Jaccard similarity 0.8), so only the texts
    // that find no story of theirs in those look up the other 30. Nothing is missed (the
    // rest look up every band), and most copies of a syndicated story cost a quarter of
    // the index look-ups; a text placed in the first round is not also compared with the
    // items that share only later bands with it.
    let first = tx
        .band_neighbours(&band_keys(&texts, 0, FIRST_ROUND_BANDS), since)
        .await?;
    let first_prints: Vec<Fingerprint> = first
        .iter()
        .map(|n| Fingerprint::of(&n.title, &n.summary))
        .collect();
    let mut found = Clusters::new(config.stories.threshold);
    for (neighbour, fingerprint) in first.iter().zip(&first_prints) {
        found.add(neighbour.story_id, &neighbour.keys, fingerprint);
    }
    let unplaced: Vec<&StoryText> = texts
        .into_iter()
        .filter(|text| found.find(text).is_none())
        .collect();
    let second = tx
        .band_neighbours(&band_keys(&unplaced, FIRST_ROUND_BANDS, usize::MAX), since)
        .await?;
    let second_prints: Vec<Fingerprint> = second
        .iter()
        .map(|n| Fingerprint::of(&n.title, &n.summary))
        .collect();
    let mut clusters = found;
    for (neighbour, fingerprint) in second.iter().zip(&second_prints) {
        clusters.add(neighbour.story_id, &neighbour.keys, fingerprint);
    }

    let mut next = tx.last_story_id().await? + 1;
    let first_new = next;
    let mut joined = Vec::new();
    let mut links = Vec::new();
    let mut placed = Vec::with_capacity(candidates.len());
    for (_, candidate) in candidates {
        let canonical = candidate.canonical.as_deref();
        let (story, by) = if let Some(&story) = canonical.and_then(|url| linked.get(url)) {
            (story, By::Link)
        } else if let Some(story) = candidate.text.as_ref().and_then(|text| clusters.find(text)) {
            (story, By::Text)
        } else {
            next += 1;
            (next - 1, By::New)
        };
        if story < first_new {
            joined.push(story);
        }
        if let Some(url) = canonical
            && !linked.contains_key(url)
        {
            linked.insert(url.to_string(), story);
            links.push((url, story));
        }
        let placement = Placed { story, by };
        if let Some(text) = candidate
            .text
            .as_ref()
            .filter(|_| placement.indexed(candidate))
        {
            clusters.add(story, &text.bands, &text.fingerprint);
        }
        placed.push(placement);
    }
    let new: Vec<i64> = (first_new..next).collect();
    tx.insert_stories(&new, at).await?;
    tx.link_stories(&links).await?;
    joined.sort_unstable();
    joined.dedup();
    tx.touch_stories(&joined, at).await?;
    let count = |by| placed.iter().filter(|p| p.by == by).count();
    metrics::story_sightings("link", count(By::Link));
    metrics::story_sightings("text", count(By::Text));
    Ok((placed, joined))
}

/// How a new item found its story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    /// A story already carries its canonical link.
    Link,
    /// A near-identical story's first matched item, within the window.
    Text,
    /// Neither: the item starts a story.
    New,
}

/// A new item's story, and how it was found.
#[derive(Debug, Clone, Copy)]
struct Placed {
    story: i64,
    by: By,
}

impl Placed {
    /// Whether the item enters the band index: it matched and starts a story. The index
    /// holds a story's first matched text only: its copies are near-identical to it by
    /// definition, and every row of the index is 40 random-keyed writes, so indexing each
    /// copy would multiply the cost of a story carried by many outlets by their number.
    fn indexed(self, candidate: &Candidate) -> bool {
        candidate.text.is_some() && self.by == By::New
    }
}

/// The stories of items just stored, each `(row, feed name, candidate)` in the order
/// stored, from those items alone.
fn sum_up<'a>(
    items: impl Iterator<Item = (&'a ItemRow<'a>, &'a String, &'a Candidate)>,
    at: i64,
) -> HashMap<i64, StorySummary> {
    let mut stories: HashMap<i64, StorySummary> = HashMap::new();
    let mut feeds_of: HashSet<(i64, i64)> = HashSet::new();
    for (row, feed, candidate) in items {
        let story = stories.entry(row.story_id).or_insert_with(|| StorySummary {
            id: row.story_id,
            first_seen_at: at,
            feeds: 0,
            items: 0,
            sightings: Vec::new(),
        });
        story.items += 1;
        if feeds_of.insert((row.story_id, row.feed_id)) {
            story.feeds += 1;
        }
        if story.sightings.len() < MAX_SIGHTINGS {
            story.sightings.push(StorySighting {
                feed: feed.clone(),
                title: candidate.item.title.clone(),
                url: candidate.item.link.as_ref().map(url::Url::to_string),
                seen_at: at,
            });
        }
    }
    stories
}

/// Bands of the first round of index look-ups (see [`place_in_stories`]).
const FIRST_ROUND_BANDS: usize = 10;

/// The band keys of `texts` in bands `from..to`.
fn band_keys(texts: &[&StoryText], from: usize, to: usize) -> Vec<i64> {
    texts
        .iter()
        .flat_map(|text| text.bands.iter().take(to).skip(from))
        .copied()
        .collect()
}

/// The highest of `thresholds` that `feeds` reaches; 0 for none.
fn reached(thresholds: &[u32], feeds: u64) -> u32 {
    thresholds
        .iter()
        .copied()
        .filter(|&t| u64::from(t) <= feeds)
        .max()
        .unwrap_or(0)
}

/// The alerted matches of `stories` whose story now reaches a higher `escalate` threshold
/// than any announced yet, each with that threshold. Matches stored by this very commit
/// (`fresh`) are left out: their alert already tells how widely the story is carried.
/// Fills `summaries` with the stories it reads.
async fn escalate(
    tx: &mut StoreTx,
    config: &Config,
    stories: &[i64],
    summaries: &mut HashMap<i64, StorySummary>,
    fresh: &HashSet<String>,
) -> Result<Vec<(Escalation, u32)>> {
    let watchlists: Vec<&str> = config
        .watchlists
        .iter()
        .filter(|w| !w.escalate.is_empty() && !w.webhooks.is_empty())
        .map(|w| w.name.as_str())
        .collect();
    if watchlists.is_empty() || stories.is_empty() {
        return Ok(Vec::new());
    }
    let candidates: Vec<Escalation> = tx
        .escalations(stories, &watchlists)
        .await?
        .into_iter()
        .filter(|e| !fresh.contains(&e.match_id))
        .collect();
    let missing: HashSet<i64> = candidates
        .iter()
        .map(|e| e.story_id)
        .filter(|id| !summaries.contains_key(id))
        .collect();
    if !missing.is_empty() {
        summaries.extend(tx.story_summaries(&missing, MAX_SIGHTINGS).await?);
    }
    let mut due = Vec::new();
    for escalation in candidates {
        let (Some(watchlist), Some(story)) = (
            config.watchlist(&escalation.watchlist),
            summaries.get(&escalation.story_id),
        ) else {
            continue;
        };
        let threshold = reached(&watchlist.escalate, story.feeds);
        if i64::from(threshold) > escalation.escalated {
            due.push((escalation, threshold));
        }
    }
    Ok(due)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use sqlx::Row as _;

    use super::*;
    use crate::dedup;
    use crate::refresh::document;

    const CONFIG: &str = r#"
[poll]
backfill = "all"

[[feeds]]
name = "wire-a"
url = "https://a.example.com/rss"

[[feeds]]
name = "wire-b"
url = "https://b.example.com/rss"

[[feeds]]
name = "wire-c"
url = "https://c.example.com/rss"

[[feeds]]
name = "wire-d"
url = "https://d.example.com/rss"

[[watchlists]]
name = "iran-china"
terms = ["Iran", "China"]
webhooks = ["ops", "desk"]

[[watchlists]]
name = "sco"
terms = ["SCO"]
webhooks = ["ops"]

[[webhooks]]
name = "ops"
url = "https://hooks.example.com/ops"

[[webhooks]]
name = "desk"
url = "https://hooks.example.com/desk"
format = "slack"
"#;

    struct Db {
        _dir: tempfile::TempDir,
        store: Store,
        config: Arc<Config>,
        feed_ids: Vec<i64>,
    }

    async fn db() -> Db {
        db_with(CONFIG).await
    }

    async fn db_with(config: &str) -> Db {
        let (dir, store) = crate::store::temp_store().await;
        let config =
            Arc::new(Config::from_source(&dir.path().join("wirewatch.toml"), config).unwrap());
        let pairs: Vec<(&str, &str)> = config
            .feeds
            .iter()
            .map(|f| (f.name.as_str(), f.url.as_str()))
            .collect();
        store.register(&pairs, &[]).await.unwrap();
        let mut feed_ids = Vec::new();
        for feed in &config.feeds {
            feed_ids.push(store.feed_state(&feed.name).await.unwrap().unwrap().id);
        }
        Db {
            _dir: dir,
            store,
            config,
            feed_ids,
        }
    }

    /// A fetched document of feed `feed` with items `(guid, title, link)`, matched the way
    /// `refresh` matches them.
    fn fetched(db: &Db, feed: usize, items: &[(&str, &str, &str)]) -> FeedResult {
        let items: Vec<_> = items.iter().map(|&(g, t, l)| (g, t, l, "")).collect();
        fetched_with_summaries(db, feed, &items)
    }

    /// [`fetched`] with items `(guid, title, link, summary)`.
    fn fetched_with_summaries(
        db: &Db,
        feed: usize,
        items: &[(&str, &str, &str, &str)],
    ) -> FeedResult {
        let candidates = items
            .iter()
            .map(|(guid, title, link, summary)| {
                let item = Item {
                    guid: Some((*guid).to_owned()),
                    title: (*title).to_owned(),
                    link: Some(url::Url::parse(link).unwrap()),
                    summary: (*summary).to_owned(),
                    ..Item::default()
                };
                let examined = db
                    .config
                    .matcher
                    .examine(&document(&item), &|_| true, false);
                Candidate::new(dedup::item_key(&item), item, examined)
            })
            .collect();
        FeedResult::Fetched(Box::new(Fetched {
            feed,
            feed_id: db.feed_ids[feed],
            at: Utc::now(),
            candidates,
            first_fetch: false,
            update: FeedUpdate {
                title: Some(format!("Wire {feed}")),
                etag: Some(format!("\"{feed}\"")),
                next_due_at: 1,
                fetched_at: 1,
                ..FeedUpdate::default()
            },
        }))
    }

    /// What the database holds, keyed by what users see: items by feed and key, matches
    /// by story link and watch-list, outbox rows by story link, watch-list and webhook (a
    /// story of one link each, in these tests).
    async fn contents(db: &Db) -> [BTreeSet<String>; 3] {
        let pool = db.store.outside_pool().await;
        let column = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query(sql)
                    .fetch_all(&pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| row.get::<String, _>(0))
                    .collect::<BTreeSet<String>>()
            }
        };
        let items = column(
            "SELECT f.name || ' ' || i.item_key FROM items i JOIN feeds f ON f.id = i.feed_id",
        )
        .await;
        let matches = column(
            "SELECT l.canonical_url || ' ' || m.watchlist FROM matches m
             JOIN story_links l ON l.story_id = m.story_id",
        )
        .await;
        let outbox = column(
            "SELECT l.canonical_url || ' ' || m.watchlist || ' ' || o.webhook FROM outbox o
             JOIN matches m ON m.id = o.match_id JOIN story_links l ON l.story_id = m.story_id",
        )
        .await;
        pool.close().await;
        [items, matches, outbox]
    }

    /// Three feeds whose documents share stories (the same link with and without tracking
    /// parameters), with matches for both watch-lists.
    fn documents(db: &Db) -> Vec<FeedResult> {
        vec![
            fetched(
                db,
                0,
                &[
                    (
                        "a1",
                        "Iran and China sign accord",
                        "https://news.example/accord",
                    ),
                    (
                        "a2",
                        "SCO summit opens",
                        "https://news.example/sco?utm_source=rss",
                    ),
                    ("a3", "Weather: sunny", "https://news.example/weather"),
                ],
            ),
            fetched(
                db,
                1,
                &[
                    (
                        "b1",
                        "China, Iran sign accord",
                        "https://NEWS.example/accord#top",
                    ),
                    (
                        "b2",
                        "SCO summit opens in Tianjin",
                        "https://news.example/sco",
                    ),
                ],
            ),
            fetched(
                db,
                2,
                &[(
                    "c1",
                    "China Iran SCO all at once",
                    "https://other.example/all",
                )],
            ),
        ]
    }

    #[tokio::test]
    async fn copies_of_one_story_in_one_batch_alert_once_with_every_outlet_in_the_story() {
        let db = db().await;
        const LEDE: &str = "Iran and China signed a 25-year cooperation agreement in Tehran \
                            on Saturday, covering oil, banking and ports, officials said, in a \
                            deal that deepens ties between the two countries.";
        let results = [
            (
                "Iran and China sign 25-year cooperation pact",
                "https://a.example/1",
            ),
            (
                "UPDATE 1-Iran and China sign 25-year cooperation pact",
                "https://b.example/2",
            ),
            (
                "Iran and China sign 25-year cooperation pact - Reuters",
                "https://c.example/3",
            ),
        ]
        .iter()
        .enumerate()
        .map(|(feed, (title, link))| {
            fetched_with_summaries(&db, feed, &[(&format!("g{feed}"), title, link, LEDE)])
        })
        .collect::<Vec<_>>();
        let refs: Vec<&FeedResult> = results.iter().collect();
        let added = write(&db.store, &db.config, &refs).await.unwrap();
        // One match (iran-china) for the story, for the feed that came first: two webhooks.
        assert_eq!(
            added,
            [
                Committed {
                    matches: 1,
                    alerts: 2
                },
                Committed::default(),
                Committed::default()
            ]
        );
        let [items, matches, _] = contents(&db).await;
        assert_eq!(items.len(), 3, "{items:?}");
        // The one match, listed under each of the three links its story carries.
        assert_eq!(
            matches,
            ["a.example/1", "b.example/2", "c.example/3"]
                .map(|link| format!("https://{link} iran-china"))
                .into()
        );
        // Its alert tells of all three outlets: they were stored in the same transaction,
        // before the body was rendered.
        let bodies: Vec<String> =
            column(&db, "SELECT body FROM outbox WHERE webhook = 'ops'").await;
        let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        let story = &body["data"]["story"];
        assert_eq!(
            (story["feeds"].as_u64(), story["items"].as_u64()),
            (Some(3), Some(3)),
            "{story}"
        );
        let feeds: Vec<&str> = story["sightings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["feed"].as_str().unwrap())
            .collect();
        assert_eq!(feeds, ["wire-a", "wire-b", "wire-c"]);
    }

    /// The `stage` of every outbox row of webhook `ops`, sorted (0: an alert; N: a
    /// `watchlist.story_grew` at N feeds).
    async fn stages(db: &Db) -> Vec<i64> {
        column(
            db,
            "SELECT stage FROM outbox WHERE webhook = 'ops' ORDER BY 1",
        )
        .await
    }

    /// One column of `sql` over the test database, read as another process would.
    async fn column<T>(db: &Db, sql: &'static str) -> Vec<T>
    where
        T: Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        let pool = db.store.outside_pool().await;
        let rows = sqlx::query_scalar(crate::store::Dialect::current().sql(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    }

    #[tokio::test]
    async fn a_story_grows_one_event_per_commit_for_the_highest_threshold_it_passed() {
        let config = CONFIG.replace(
            "webhooks = [\"ops\", \"desk\"]",
            "webhooks = [\"ops\", \"desk\"]\nescalate = [2, 3, 9]",
        );
        const LEDE: &str = "Iran and China signed a 25-year cooperation agreement in Tehran \
                            on Saturday, covering oil, banking and ports, officials said, in a \
                            deal that deepens ties between the two countries.";
        let copy = |db: &Db, feed: usize, link: &str| {
            let title = "Iran and China sign 25-year cooperation pact";
            fetched_with_summaries(db, feed, &[(&format!("g{feed}"), title, link, LEDE)])
        };

        // One feed, then three more in one commit: 4 feeds pass 2 and 3 at once, and the
        // story grows once, announced at 3.
        let db = db_with(&config).await;
        write(
            &db.store,
            &db.config,
            &[&copy(&db, 0, "https://a.example/1")],
        )
        .await
        .unwrap();
        assert_eq!(stages(&db).await, [0]);
        let more = [
            copy(&db, 1, "https://b.example/2"),
            copy(&db, 2, "https://c.example/3"),
            copy(&db, 3, "https://d.example/4"),
        ];
        let refs: Vec<&FeedResult> = more.iter().collect();
        write(&db.store, &db.config, &refs).await.unwrap();
        assert_eq!(stages(&db).await, [0, 3]);

        // Three feeds in the commit that first alerts: 2 and 3 are reached already, and the
        // fourth feed announces nothing (9 is far).
        let db = db_with(&config).await;
        let first = [
            copy(&db, 0, "https://a.example/1"),
            copy(&db, 1, "https://b.example/2"),
            copy(&db, 2, "https://c.example/3"),
        ];
        let refs: Vec<&FeedResult> = first.iter().collect();
        write(&db.store, &db.config, &refs).await.unwrap();
        write(
            &db.store,
            &db.config,
            &[&copy(&db, 3, "https://d.example/4")],
        )
        .await
        .unwrap();
        assert_eq!(stages(&db).await, [0]);
    }

    #[tokio::test]
    async fn a_batch_stores_the_same_as_one_transaction_per_feed() {
        let batched = db().await;
        let results = documents(&batched);
        let refs: Vec<&FeedResult> = results.iter().collect();
        let added = write(&batched.store, &batched.config, &refs).await.unwrap();

        let alone = db().await;
        let mut added_alone = Vec::new();
        for result in documents(&alone) {
            added_alone.extend(
                write(&alone.store, &alone.config, &[&result])
                    .await
                    .unwrap(),
            );
        }

        assert_eq!(added, added_alone);
        // The shared stories matched once, for the feed that came first.
        assert_eq!(
            added,
            vec![
                Committed {
                    matches: 2,
                    alerts: 3
                },
                Committed {
                    matches: 0,
                    alerts: 0
                },
                Committed {
                    matches: 2,
                    alerts: 3
                },
            ]
        );
        let [items, matches, outbox] = contents(&batched).await;
        assert_eq!(
            [items.clone(), matches.clone(), outbox.clone()],
            contents(&alone).await
        );
        assert_eq!(items.len(), 6, "{items:?}");
        assert_eq!(
            matches.into_iter().collect::<Vec<_>>(),
            [
                "https://news.example/accord iran-china",
                "https://news.example/sco sco",
                "https://other.example/all iran-china",
                "https://other.example/all sco",
            ]
        );
        assert_eq!(outbox.len(), 6, "{outbox:?}");
    }

    #[tokio::test]
    async fn a_failing_result_fails_alone_and_its_batch_still_commits() {
        let db = db().await;
        let mut results = documents(&db);
        // A feed row that does not exist: its items break the foreign key.
        if let FeedResult::Fetched(fetched) = &mut results[1] {
            fetched.feed_id = 999_999;
        }
        let mut answers = Vec::new();
        let mut batch = Vec::new();
        for result in results {
            let (reply, answer) = oneshot::channel();
            batch.push(Job { result, reply });
            answers.push(answer);
        }
        write_batch(db.store.clone(), db.config.clone(), batch).await;

        let mut outcomes = Vec::new();
        for answer in answers {
            outcomes.push(answer.await.unwrap());
        }
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
        assert!(
            matches!(outcomes[1], Err(StoreError::Sql(_))),
            "{:?}",
            outcomes[1]
        );
        let [items, matches, _] = contents(&db).await;
        assert_eq!(items.len(), 4, "{items:?}");
        assert_eq!(matches.len(), 4, "{matches:?}");
    }

    #[tokio::test]
    async fn the_committer_answers_every_refresh_it_is_handed() {
        let db = db().await;
        let (committer, writer) = Committer::start(db.store.clone(), db.config.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for result in documents(&db) {
            let committer = committer.clone();
            tasks.spawn(async move { committer.commit(result).await });
        }
        tasks.spawn({
            let committer = committer.clone();
            let feed_id = db.feed_ids[3];
            async move {
                committer
                    .commit(FeedResult::NotModified {
                        feed_id,
                        fetched_at: 7,
                        next_due_at: 8,
                    })
                    .await
            }
        });
        let mut total = Committed::default();
        while let Some(done) = tasks.join_next().await {
            let added = done.unwrap().unwrap();
            total.matches += added.matches;
            total.alerts += added.alerts;
        }
        assert_eq!(
            total,
            Committed {
                matches: 4,
                alerts: 6
            }
        );
        drop(committer);
        assert!(writer.finish_within(Duration::from_secs(10)).await);
        let state = db.store.feed_state("wire-d").await.unwrap().unwrap();
        assert_eq!(state.next_due_at, Some(8));
        let state = db.store.feed_state("wire-a").await.unwrap().unwrap();
        assert_eq!(state.etag.as_deref(), Some("\"0\""));
    }

    #[tokio::test]
    async fn a_held_up_writer_makes_refreshes_wait_and_then_stores_everything() {
        let db = db().await;
        let (committer, _writer) = Committer::start(db.store.clone(), db.config.clone());
        // Another writer holds the write lock: the commit stage cannot start a batch.
        let (release, released) = oneshot::channel::<()>();
        let (holding, held) = oneshot::channel::<()>();
        let hold = tokio::spawn({
            let store = db.store.clone();
            async move {
                store
                    .transaction(async |_tx| {
                        let _ = holding.send(());
                        let _ = released.await;
                        Ok(())
                    })
                    .await
            }
        });
        held.await.unwrap();
        let total = 2 * QUEUE + MAX_BATCH;
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..total {
            let guid = format!("held-{n}");
            let link = format!("https://held.example/{n}");
            let result = fetched(&db, n % 4, &[(&guid, "Weather report", &link)]);
            let committer = committer.clone();
            tasks.spawn(async move { committer.commit(result).await });
        }
        // The writer took one batch and waits for the lock; the queue fills up, and the
        // refreshes after it wait to hand their results over.
        tokio::time::timeout(Duration::from_secs(10), async {
            while committer.queue.capacity() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the queue fills up");
        assert!(
            tasks.try_join_next().is_none(),
            "nothing commits while held up"
        );
        assert_eq!(tasks.len(), total);

        release.send(()).unwrap();
        hold.await.unwrap().unwrap();
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        let [items, _, _] = contents(&db).await;
        assert_eq!(items.len(), total);
    }

    #[tokio::test]
    async fn a_result_whose_refresh_was_abandoned_is_not_written() {
        let db = db().await;
        let (kept, kept_answer) = oneshot::channel();
        let (gone, gone_answer) = oneshot::channel();
        let batch = vec![
            Job {
                result: fetched(&db, 0, &[("kept-1", "Iran talks", "https://a.example/1")]),
                reply: kept,
            },
            Job {
                result: fetched(&db, 1, &[("gone-1", "China talks", "https://b.example/1")]),
                reply: gone,
            },
        ];
        // The second refresh was abandoned (killed at the end of a reload's grace period).
        drop(gone_answer);
        write_batch(db.store.clone(), db.config.clone(), batch).await;

        kept_answer.await.unwrap().unwrap();
        let [items, _, _] = contents(&db).await;
        assert_eq!(items.len(), 1, "{items:?}");
        let state = db.store.feed_state("wire-b").await.unwrap().unwrap();
        assert_eq!(
            state.etag, None,
            "the abandoned feed keeps its old validators"
        );
    }

    #[tokio::test]
    async fn a_batch_the_database_fails_fails_whole() {
        let db = db().await;
        let batch_of = |n: usize| {
            (0..n)
                .map(|i| {
                    let guid = format!("closed-{i}");
                    let (reply, answer) = oneshot::channel();
                    let result =
                        fetched(&db, i % 4, &[(&guid, "Iran talks", "https://c.example/")]);
                    (Job { result, reply }, answer)
                })
                .unzip::<_, _, Vec<_>, Vec<_>>()
        };
        let (batch, answers) = batch_of(3);
        db.store.close().await;
        write_batch(db.store.clone(), db.config.clone(), batch).await;
        for answer in answers {
            let err = answer.await.unwrap().unwrap_err();
            assert!(
                matches!(&err, StoreError::Shared(inner) if !inner.is_about_the_data()),
                "{err:?}"
            );
        }
    }

    /// Rows of `sql` (one text column) from the test database.
    async fn texts(db: &Db, sql: &'static str) -> Vec<String> {
        column(db, sql).await
    }

    const POLICY: &str = r#"
[poll]
backfill = "all"

[[feeds]]
name = "wire-a"
url = "https://a.example.com/rss"

[[feeds]]
name = "wire-b"
url = "https://b.example.com/rss"

[[watchlists]]
name = "capped"
terms = ["Iran"]
exclude = ["football"]
max_alerts = "2/h"
webhooks = ["ops"]

[[watchlists]]
name = "daily"
terms = ["Iran", "China"]
query = "Iran AND China"
digest = "0 8 * * *"
webhooks = ["ops", "desk"]

[[webhooks]]
name = "ops"
url = "https://hooks.example.com/ops"

[[webhooks]]
name = "desk"
url = "https://hooks.example.com/desk"
format = "slack"
"#;

    #[tokio::test]
    async fn every_hit_that_does_not_alert_is_stored_with_its_reason() {
        let db = db_with(POLICY).await;
        let first = fetched(
            &db,
            0,
            &[
                ("1", "Iran and China sign accord", "https://a.example/1"),
                ("2", "Iran votes", "https://a.example/2"),
                ("3", "Iran football team wins", "https://a.example/3"),
                ("4", "Iran elects", "https://a.example/4"),
            ],
        );
        write(&db.store, &db.config, &[&first]).await.unwrap();
        // The same story in another outlet.
        let copy = fetched(
            &db,
            1,
            &[("5", "Iran and China sign accord", "https://a.example/1")],
        );
        write(&db.store, &db.config, &[&copy]).await.unwrap();

        let reasons = texts(
            &db,
            "SELECT i.item_key || ' ' || m.watchlist || ' ' || COALESCE(m.reason, 'alerted')
                    || ' ' || m.awaiting_digest
             FROM matches m JOIN items i ON i.id = m.item_id ORDER BY 1",
        )
        .await;
        assert_eq!(
            reasons,
            [
                "guid:1 capped alerted 0",
                "guid:1 daily digest 1",
                "guid:2 capped alerted 0",
                "guid:4 capped rate_limited 1",
            ]
            .map(|r| r.replace("guid:", &dedup_prefix())),
        );
        let misses = texts(
            &db,
            "SELECT i.item_key || ' ' || x.watchlist || ' ' || x.reason || ' '
                    || COALESCE(x.term, '-') || ' ' || x.terms
             FROM misses x JOIN items i ON i.id = x.item_id ORDER BY 1",
        )
        .await;
        assert_eq!(
            misses,
            [
                r#"guid:2 daily query_false - ["Iran"]"#,
                r#"guid:3 capped excluded football ["Iran"]"#,
                r#"guid:3 daily query_false - ["Iran"]"#,
                r#"guid:4 daily query_false - ["Iran"]"#,
            ]
            .map(|r| r.replace("guid:", &dedup_prefix())),
        );
        // The copy in the other outlet matched both: a sighting of a story that had both
        // matches (`same_story`), told by the watch-lists it records.
        let copies = texts(
            &db,
            "SELECT i.item_key || ' ' || i.watchlists FROM items i
             WHERE i.watchlists IS NOT NULL ORDER BY 1",
        )
        .await;
        assert_eq!(
            copies,
            [
                r#"guid:1 ["capped","daily"]"#,
                r#"guid:2 ["capped"]"#,
                r#"guid:4 ["capped"]"#,
                r#"guid:5 ["capped","daily"]"#,
            ]
            .map(|r| r.replace("guid:", &dedup_prefix())),
        );
        // Only the two single alerts of `capped` were queued.
        assert_eq!(stages(&db).await, [0, 0]);
    }

    /// How [`dedup::item_key`] prefixes a guid.
    fn dedup_prefix() -> String {
        let item = Item {
            guid: Some("x".into()),
            ..Item::default()
        };
        dedup::item_key(&item).trim_end_matches('x').to_owned()
    }

    #[tokio::test]
    async fn a_muted_watch_list_stores_its_matches_for_the_digest_and_sends_none() {
        let db = db_with(POLICY).await;
        let now = crate::clock::unix();
        db.store.mute("capped", now + 3600, now).await.unwrap();
        db.store.mute("daily", now - 1, now - 7200).await.unwrap(); // ended already
        let result = fetched(
            &db,
            0,
            &[("1", "Iran and China sign accord", "https://a.example/1")],
        );
        write(&db.store, &db.config, &[&result]).await.unwrap();
        let reasons = texts(
            &db,
            "SELECT watchlist || ' ' || reason || ' ' || awaiting_digest FROM matches ORDER BY 1",
        )
        .await;
        assert_eq!(reasons, ["capped muted 1", "daily digest 1"]);
        assert!(stages(&db).await.is_empty());

        assert!(db.store.unmute("capped", now).await.unwrap());
        assert!(
            !db.store.unmute("capped", now).await.unwrap(),
            "not muted any more"
        );
        let result = fetched(&db, 0, &[("2", "Iran votes", "https://a.example/2")]);
        write(&db.store, &db.config, &[&result]).await.unwrap();
        assert_eq!(stages(&db).await, [0], "alerts again once unmuted");
    }

    #[tokio::test]
    async fn a_digest_carries_each_waiting_story_once_and_an_empty_period_sends_nothing() {
        let db = db_with(POLICY).await;
        let results = [
            fetched(
                &db,
                0,
                &[
                    ("1", "Iran and China sign accord", "https://a.example/1"),
                    ("2", "China and Iran hold talks", "https://a.example/2"),
                ],
            ),
            fetched(
                &db,
                1,
                &[("3", "Iran and China sign accord", "https://a.example/1")],
            ),
        ];
        for result in &results {
            write(&db.store, &db.config, &[result]).await.unwrap();
        }
        let daily = db.config.watchlist_index("daily").unwrap();
        let sent = crate::digest::send(&db.store, &db.config, daily, Utc::now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sent.stories, 2);
        let bodies = texts(
            &db,
            "SELECT body FROM outbox WHERE digest_id IS NOT NULL AND webhook = 'ops'",
        )
        .await;
        assert_eq!(bodies.len(), 1);
        let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(body["type"], "watchlist.digest");
        assert_eq!(body["data"]["count"], 2);
        let stories = body["data"]["stories"].as_array().unwrap();
        // Ranked by outlets: the accord (two feeds) before the talks (one).
        assert_eq!(stories[0]["title"], "Iran and China sign accord");
        assert_eq!(stories[0]["feeds"], 2);
        assert_eq!(stories[1]["feeds"], 1);
        assert_eq!(stories[0]["terms"], serde_json::json!(["China", "Iran"]));
        assert_eq!(
            texts(
                &db,
                "SELECT webhook FROM outbox WHERE digest_id IS NOT NULL ORDER BY 1"
            )
            .await,
            ["desk", "ops"]
        );
        assert!(
            texts(
                &db,
                "SELECT id FROM matches WHERE awaiting_digest = 1 AND watchlist = 'daily'"
            )
            .await
            .is_empty()
        );
        // Nothing new: the next period sends nothing.
        let again = crate::digest::send(&db.store, &db.config, daily, Utc::now()).await;
        assert_eq!(again.unwrap(), None);
    }
}
