//! The schedule stage: when each feed is due, and how many fetches run at once.
//!
//! Input: the configured feeds with their schedules and the due times stored in the
//! database. Output: calls to [`Pipeline::refresh`], never more than `poll.concurrency` in
//! flight overall nor `poll.per_host` per host, each feed again at its next due time (plus
//! jitter). Due times live in the database, so a restart resumes the schedule.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng as _;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Schedule;
use crate::fetch::error_chain;
use crate::notify::Wake;
use crate::refresh::{Outcome, Pipeline, Report};
use crate::store::StoreError;

/// The next due time after `now`, pushed back by a random delay up to `jitter`.
pub fn next_due(schedule: &Schedule, now: DateTime<Utc>, jitter: Duration) -> DateTime<Utc> {
    let next = schedule.next_after(now);
    if jitter.is_zero() {
        return next;
    }
    let millis = rand::rng().random_range(0..=jitter.as_millis().min(u64::MAX as u128) as u64);
    next + chrono::Duration::milliseconds(millis as i64)
}

/// Fetch slots: one semaphore for all feeds and one per host.
#[derive(Debug)]
pub struct Limits {
    global: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Limits {
    pub fn new(concurrency: usize, per_host: usize) -> Limits {
        Limits {
            global: Arc::new(Semaphore::new(concurrency)),
            per_host,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn host(&self, host: &str) -> Arc<Semaphore> {
        // A poisoned lock only means another task panicked while inserting; the map
        // itself is still usable.
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(host.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    /// Refreshes feed `index` once a global and a per-host slot are free.
    async fn refresh(&self, pipeline: &Pipeline, index: usize) -> Result<Report, StoreError> {
        let host = pipeline.config.feeds[index]
            .url
            .host_str()
            .unwrap_or_default()
            .to_string();
        let host_slots = self.host(&host);
        // The semaphores are never closed, so acquiring cannot fail; if it ever did,
        // fetching without the slot is better than never fetching.
        let _host = host_slots.acquire_owned().await.ok();
        let _global = self.global.clone().acquire_owned().await.ok();
        pipeline.refresh(index).await
    }
}

/// Refreshes the given feeds once, concurrently within the limits, and returns a report
/// per feed (`wirewatch poll`).
pub async fn poll_once(pipeline: &Pipeline, feeds: &[usize]) -> Vec<Result<Report, StoreError>> {
    let limits = Arc::new(Limits::new(
        pipeline.config.poll.concurrency,
        pipeline.config.poll.per_host,
    ));
    let mut tasks = JoinSet::new();
    for &index in feeds {
        let (limits, pipeline) = (limits.clone(), pipeline.clone());
        tasks.spawn(async move { (index, limits.refresh(&pipeline, index).await) });
    }
    let mut reports: Vec<(usize, Result<Report, StoreError>)> = Vec::with_capacity(feeds.len());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(report) => reports.push(report),
            Err(err) => tracing::error!(error = %err, "refresh task failed"),
        }
    }
    reports.sort_by_key(|(index, _)| *index);
    reports.into_iter().map(|(_, report)| report).collect()
}

/// Runs the schedule until `shutdown`: each feed is refreshed when due; `committed` is
/// notified whenever a refresh wrote outbox rows. In-flight refreshes get `grace` to finish
/// after shutdown; whatever has not committed by then is dropped, uncommitted, to be
/// fetched again on the next start.
pub async fn run(
    pipeline: Pipeline,
    committed: Wake,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let feeds = &pipeline.config.feeds;
    let limits = Arc::new(Limits::new(
        pipeline.config.poll.concurrency,
        pipeline.config.poll.per_host,
    ));
    let now = Utc::now();
    let mut due: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(feeds.len());
    for feed in feeds {
        let stored = match pipeline.store.feed_state(&feed.name).await {
            Ok(state) => state.and_then(|s| s.next_due_at),
            Err(err) => {
                tracing::error!(feed = %feed.name, error = %error_chain(&err), "cannot read the feed's state");
                None
            }
        };
        due.push(Some(
            stored
                .and_then(|at| DateTime::from_timestamp(at, 0))
                .unwrap_or(now),
        ));
    }

    let mut tasks: JoinSet<Option<DateTime<Utc>>> = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, usize> = HashMap::new();
    loop {
        let now = Utc::now();
        for (index, slot) in due.iter_mut().enumerate() {
            // `None` marks a feed in flight.
            if slot.is_some_and(|at| at <= now) {
                *slot = None;
                let (limits, pipeline, committed) =
                    (limits.clone(), pipeline.clone(), committed.clone());
                let handle = tasks.spawn(async move {
                    match limits.refresh(&pipeline, index).await {
                        Ok(report) => {
                            if matches!(report.outcome, Outcome::Updated { alerts, .. } if alerts > 0) {
                                committed.notify();
                            }
                            Some(report.next_due)
                        }
                        // The store failed (disk full, locked too long): try again soon
                        // rather than waiting for the next scheduled time.
                        Err(_) => Some(Utc::now() + chrono::Duration::seconds(60)),
                    }
                });
                in_flight.insert(handle.id(), index);
            }
        }
        let wait = due
            .iter()
            .flatten()
            .min()
            .map(|at| (*at - now).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, next) = match done {
                    Ok((id, next)) => (id, next),
                    Err(err) => {
                        tracing::error!(error = %err, "refresh task failed");
                        (err.id(), Some(Utc::now() + chrono::Duration::seconds(60)))
                    }
                };
                if let Some(index) = in_flight.remove(&id) {
                    due[index] = next;
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }

    // Shutdown: let in-flight refreshes commit within the grace period, then drop the rest.
    let finish = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, finish).await.is_err() {
        tracing::warn!("abandoning refreshes still in flight at shutdown");
        tasks.abort_all();
    }
}
