//! The scheduler: the loop that starts each feed's refresh when it is due, within the
//! limits of what may be in flight.
//!
//! Input: the configured feeds and the due times stored in the database (so a restart
//! resumes the schedule). Output: calls to [`Pipeline::refresh`], never more than
//! `poll.concurrency` in flight overall nor `poll.per_host` per host, a host that asked to
//! be left alone (429/503 with `Retry-After`) waited out, each feed again at the due time
//! its refresh decided (`due.rs`). While the database refuses writes nothing is started
//! (nothing fetched could be stored); a feed whose results the database refused comes
//! back soon, then backing off. The loop itself ([`drive`]) is generic over how a feed is
//! refreshed, so that its timing is tested on tokio's paused clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::config::Poll;
use crate::due::{self, MAX_HINTED_INTERVAL};
use crate::metrics;
use crate::refresh::{Outcome, Pipeline, Report};
use crate::store::{FeedClaim, Health, StoreError};
use crate::telemetry::error_chain;

/// Fetch slots: one semaphore for all feeds and one per host, and per-host pauses after
/// a host answered 429 or 503 with `Retry-After`.
#[derive(Debug)]
pub struct Limits {
    global: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HashMap<String, Host>>,
}

#[derive(Debug, Clone)]
struct Host {
    slots: Arc<Semaphore>,
    paused_until: Option<tokio::time::Instant>,
}

/// A host's slot and a global one, held while a fetch of that host is in flight.
#[derive(Debug)]
pub struct Slots {
    _host: Option<OwnedSemaphorePermit>,
    _global: Option<OwnedSemaphorePermit>,
}

impl Limits {
    pub fn new(concurrency: usize, per_host: usize) -> Limits {
        Limits {
            global: Arc::new(Semaphore::new(concurrency)),
            per_host,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn with_host<T>(&self, host: &str, f: impl FnOnce(&mut Host) -> T) -> T {
        // A poisoned lock only means another task panicked while holding it; the map
        // itself is still usable.
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let host = hosts
            .entry(host.to_ascii_lowercase())
            .or_insert_with(|| Host {
                slots: Arc::new(Semaphore::new(self.per_host)),
                paused_until: None,
            });
        f(host)
    }

    /// Keeps every feed of `host` waiting for `wait` (at most a day).
    pub fn pause(&self, host: &str, wait: Duration) {
        let until = tokio::time::Instant::now() + wait.min(MAX_HINTED_INTERVAL);
        self.with_host(host, |h| {
            h.paused_until = Some(h.paused_until.map_or(until, |u| u.max(until)));
        });
    }

    /// Waits for a slot of `host`, for the host's pause to end, then for a global slot.
    /// A paused host is waited out holding only its own slot, not a global one.
    pub async fn acquire(&self, host: &str) -> Slots {
        let host_slots = self.with_host(host, |h| h.slots.clone());
        // The semaphores are never closed, so acquiring cannot fail; if it ever did,
        // fetching without the slot is better than never fetching.
        let host_slot = host_slots.acquire_owned().await.ok();
        while let Some(until) = self.with_host(host, |h| h.paused_until) {
            if until <= tokio::time::Instant::now() {
                break;
            }
            tokio::time::sleep_until(until).await;
        }
        Slots {
            _host: host_slot,
            _global: self.global.clone().acquire_owned().await.ok(),
        }
    }

    /// Refreshes feed `index` once a global and a per-host slot are free. `due` is when
    /// the schedule wanted it, to measure how late it starts.
    async fn refresh(
        &self,
        pipeline: &Pipeline,
        index: usize,
        due: Option<DateTime<Utc>>,
    ) -> Result<Report, StoreError> {
        let host = pipeline.config.feeds[index]
            .url
            .host_str()
            .unwrap_or_default()
            .to_string();
        let _slots = self.acquire(&host).await;
        // Several daemons on one database: refresh the feed only under its lease (a
        // scheduled refresh only if it is still due: another node may have refreshed it
        // this cycle), renewed while the refresh runs and given back after its commit.
        let feed = &pipeline.config.feeds[index].name;
        let cluster = &pipeline.config.cluster;
        let lease = i64::try_from(cluster.lease.as_secs()).unwrap_or(i64::MAX);
        let now = clock::unix();
        let due_by = due.map(|_| now);
        let claim = pipeline
            .store
            .claim_feed(feed, &cluster.node, now, now.saturating_add(lease), due_by)
            .await?;
        if let FeedClaim::Later { at, holder } = claim {
            return Ok(Report {
                feed: feed.clone(),
                outcome: Outcome::Elsewhere { holder },
                next_due: DateTime::from_timestamp(at, 0),
            });
        }
        if let Some(due) = due {
            metrics::schedule_lateness((clock::now() - due).to_std().unwrap_or_default());
        }
        // Boxed: until here a task only waits for slots, and a cold start of 100,000 feeds
        // keeps that many waiting; the refresh's own state is allocated once it runs.
        let refreshed = tokio::select! {
            refreshed = Box::pin(pipeline.refresh(index)) => refreshed,
            never = renew_lease(pipeline, feed, cluster.lease) => match never {},
        };
        if let Err(err) = pipeline.store.release_feed_lease(feed, &cluster.node).await {
            // It runs out by itself within the lease.
            tracing::warn!(feed, error = %error_chain(&err), "cannot give the feed's lease back");
        }
        let report = refreshed?;
        if let Outcome::Failed {
            retry_after: Some(wait),
            ..
        } = &report.outcome
        {
            tracing::warn!(host = %host, wait_secs = wait.as_secs(), "host asked to slow down: pausing it");
            self.pause(&host, *wait);
        }
        Ok(report)
    }
}

/// Renews this node's lease on `feed` every third of `lease`, for as long as it is polled
/// (a refresh runs beside it). A renewal that fails is logged: the lease may then run out
/// and another node refresh the feed as well, which the database's constraints make
/// harmless (each item and alert is stored once).
async fn renew_lease(pipeline: &Pipeline, feed: &str, lease: Duration) -> std::convert::Infallible {
    let node = &pipeline.config.cluster.node;
    let every = lease / 3;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let lease = i64::try_from(lease.as_secs()).unwrap_or(i64::MAX);
    loop {
        ticks.tick().await;
        match pipeline
            .store
            .renew_feed_lease(feed, node, clock::unix().saturating_add(lease))
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(feed, "the feed's lease was taken over by another node"),
            Err(err) => {
                tracing::warn!(feed, error = %error_chain(&err), "cannot renew the feed's lease")
            }
        }
    }
}

/// Refreshes the given feeds once, concurrently within the limits, and returns a report
/// per feed (`wirewatch poll`).
pub async fn poll_once(pipeline: &Pipeline, feeds: &[usize]) -> Vec<Result<Report, StoreError>> {
    poll_once_observed(pipeline, feeds, |_| {})
        .await
        .into_iter()
        .map(|(_, report)| report)
        .collect()
}

/// As [`poll_once`], but each feed as the schedule starts it when due: on a database that
/// several nodes share, a feed another node holds or refreshed already this cycle is left
/// to it ([`Outcome::Elsewhere`]). For the load tool, whose nodes run in one process.
pub async fn poll_due(pipeline: &Pipeline, feeds: &[usize]) -> Vec<Result<Report, StoreError>> {
    poll_feeds(pipeline, feeds, Some(clock::now()), |_| {})
        .await
        .into_iter()
        .map(|(_, report)| report)
        .collect()
}

/// As [`poll_once`], calling `done` as each feed finishes (for a progress bar), and
/// pairing each report with its feed's index.
pub async fn poll_once_observed(
    pipeline: &Pipeline,
    feeds: &[usize],
    done: impl Fn(&str),
) -> Vec<(usize, Result<Report, StoreError>)> {
    poll_feeds(pipeline, feeds, None, done).await
}

/// Refreshes `feeds` once, concurrently within the limits; `due`: as the schedule does.
async fn poll_feeds(
    pipeline: &Pipeline,
    feeds: &[usize],
    due: Option<DateTime<Utc>>,
    done: impl Fn(&str),
) -> Vec<(usize, Result<Report, StoreError>)> {
    let limits = Arc::new(Limits::new(
        pipeline.config.poll.concurrency,
        pipeline.config.poll.per_host,
    ));
    let mut tasks = JoinSet::new();
    for &index in feeds {
        let (limits, pipeline) = (limits.clone(), pipeline.clone());
        tasks.spawn(async move { (index, limits.refresh(&pipeline, index, due).await) });
    }
    let mut reports: Vec<(usize, Result<Report, StoreError>)> = Vec::with_capacity(feeds.len());
    while let Some(finished) = tasks.join_next().await {
        match finished {
            Ok(report) => {
                done(&pipeline.config.feeds[report.0].name);
                reports.push(report);
            }
            Err(err) => tracing::error!(error = %err, "refresh task failed"),
        }
    }
    reports.sort_by_key(|(index, _)| *index);
    reports
}

/// Runs the schedule until `shutdown`: each feed is refreshed when due. In-flight
/// refreshes get `grace` to finish after shutdown; those still running then are dropped,
/// and unless the database writer had already taken their results, nothing of them is
/// committed: they are fetched again on the next start.
pub async fn run(pipeline: Pipeline, shutdown: CancellationToken, grace: Duration) {
    let limits = Arc::new(Limits::new(
        pipeline.config.poll.concurrency,
        pipeline.config.poll.per_host,
    ));
    let started = clock::now();
    let stored = match pipeline.store.feed_schedules().await {
        Ok(stored) => stored,
        Err(err) => {
            tracing::error!(error = %error_chain(&err), "cannot read the feeds' schedules; polling every feed now");
            HashMap::new()
        }
    };
    let mut due = Vec::with_capacity(pipeline.config.feeds.len());
    for (index, feed) in pipeline.config.feeds.iter().enumerate() {
        let (next_due_at, disabled_reason) = stored.get(&feed.name).cloned().unwrap_or_default();
        if let Some(reason) = disabled_reason {
            tracing::warn!(feed = %feed.name, reason, "feed is disabled; not polling it");
            continue;
        }
        let at = next_due_at
            .and_then(|at| DateTime::from_timestamp(at, 0))
            .unwrap_or(started);
        due.push((at, index));
    }
    drop(stored);
    let health = pipeline.store.health().clone();
    let poll = pipeline.config.poll.clone();
    let refresh = move |index: usize, late_from: DateTime<Utc>| {
        let (limits, pipeline) = (limits.clone(), pipeline.clone());
        async move {
            let report = limits.refresh(&pipeline, index, Some(late_from)).await?;
            Ok(report.next_due)
        }
    };
    drive(due, &health, &poll, refresh, shutdown, grace).await;
}

/// The scheduler's loop over feeds `due` (due time, feed index): starts `refresh(index,
/// late_from)` for each feed when it falls due, and queues the feed again at the due time
/// the refresh returns (`None`: never, the feed is disabled). While `health` says the
/// database refuses writes nothing is started. A feed whose refresh failed in the
/// database is retried after [`due::store_retry`]. Returns after `shutdown`, once the
/// refreshes in flight have finished or `grace` has passed.
pub async fn drive<F, Fut>(
    due: Vec<(DateTime<Utc>, usize)>,
    health: &Health,
    poll: &Poll,
    refresh: F,
    shutdown: CancellationToken,
    grace: Duration,
) where
    F: Fn(usize, DateTime<Utc>) -> Fut,
    Fut: Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send + 'static,
{
    let started = clock::now();
    // The feeds waiting for their due time, soonest first. A feed is out of the queue
    // while it is in flight, and for good once it is disabled (410 Gone).
    let mut due: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> =
        due.into_iter().map(Reverse).collect();
    let mut tasks: JoinSet<Result<Option<DateTime<Utc>>, StoreError>> = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, usize> = HashMap::new();
    // Feeds whose results the database refused, with how many times in a row.
    let mut store_failures: HashMap<usize, u32> = HashMap::new();
    loop {
        let now = clock::now();
        // While the database refuses writes, nothing fetched could be stored: due feeds
        // wait, and start as soon as it takes writes again.
        let writable = health.writable();
        while let Some(&Reverse((at, index))) = due.peek() {
            if at > now || !writable {
                break;
            }
            due.pop();
            // Lateness counts from the due time, or from start-up for a feed that fell due
            // while the daemon was not running.
            let handle = tasks.spawn(refresh(index, at.max(started)));
            in_flight.insert(handle.id(), index);
        }
        let wait = due
            .peek()
            .map(|Reverse((at, _))| (*at - now).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, stored) = match done {
                    Ok((id, stored)) => (id, stored),
                    Err(err) => {
                        tracing::error!(error = %err, "refresh task failed");
                        (err.id(), Ok(Some(clock::now() + chrono::Duration::seconds(60))))
                    }
                };
                let Some(index) = in_flight.remove(&id) else { continue };
                let next = match stored {
                    Ok(next) => {
                        store_failures.remove(&index);
                        next
                    }
                    Err(err) => {
                        let failures = store_failures.entry(index).or_insert(0);
                        *failures = failures.saturating_add(1);
                        let wait = due::store_retry(err.is_about_the_data(), *failures, poll);
                        Some(clock::now() + wait)
                    }
                };
                if let Some(next) = next {
                    due.push(Reverse((next, index)));
                }
            }
            _ = health.until_writable(), if !writable => {}
            _ = tokio::time::sleep(wait), if writable => {}
        }
    }

    // Shutdown: let in-flight refreshes commit within the grace period, then drop the rest.
    let finish = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, finish).await.is_err() {
        tracing::warn!("abandoning refreshes still in flight at shutdown");
        tasks.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::config::Config;

    fn poll() -> Poll {
        let text = "[poll]\nbackoff_max = \"1h\"\n";
        Config::from_source(std::path::Path::new("/tmp/t.toml"), text)
            .expect("config")
            .poll
    }

    /// When each feed's refresh started, in seconds since the test began.
    type Starts = Arc<Mutex<Vec<(usize, i64)>>>;

    /// Runs the loop over `due` for `run` of tokio's (paused) time, each refresh answering
    /// with `answer(index, now)`; returns when each feed started.
    async fn drive_for(
        due: &[(i64, usize)],
        health: &Health,
        run: Duration,
        answer: impl Fn(usize, DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError>
        + Send
        + Sync
        + 'static,
    ) -> Vec<(usize, i64)> {
        let t0 = clock::now();
        let starts: Starts = Arc::default();
        let answer = Arc::new(answer);
        let refresh = {
            let starts = starts.clone();
            move |index: usize, _late_from: DateTime<Utc>| {
                let now = clock::now();
                // To the nearest second: the clock reads two clocks a few nanoseconds apart.
                let secs = ((now - t0).num_milliseconds() + 500).div_euclid(1000);
                starts.lock().expect("lock").push((index, secs));
                let answer = answer.clone();
                async move { answer(index, now) }
            }
        };
        let due = due
            .iter()
            .map(|(secs, index)| (t0 + chrono::Duration::seconds(*secs), *index))
            .collect();
        let shutdown = CancellationToken::new();
        let poll = poll();
        let stop = async {
            tokio::time::sleep(run).await;
            shutdown.cancel();
        };
        tokio::join!(
            drive(
                due,
                health,
                &poll,
                refresh,
                shutdown.clone(),
                Duration::ZERO
            ),
            stop
        );
        starts.lock().expect("lock").clone()
    }

    fn times(starts: &[(usize, i64)], feed: usize) -> Vec<i64> {
        starts
            .iter()
            .filter(|(index, _)| *index == feed)
            .map(|(_, at)| *at)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn each_feed_starts_when_due_and_again_when_its_refresh_says() {
        let health = Health::default();
        // Feed 0 every minute from now, feed 1 every two minutes from 30 s.
        let starts = drive_for(
            &[(0, 0), (30, 1)],
            &health,
            Duration::from_secs(301),
            |index, now| {
                Ok(Some(
                    now + chrono::Duration::seconds(60 * (index as i64 + 1)),
                ))
            },
        )
        .await;
        assert_eq!(times(&starts, 0), [0, 60, 120, 180, 240, 300]);
        assert_eq!(times(&starts, 1), [30, 150, 270]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_disabled_feed_leaves_the_schedule() {
        let health = Health::default();
        let starts = drive_for(
            &[(0, 0), (0, 1)],
            &health,
            Duration::from_secs(630),
            |index, now| Ok((index == 0).then(|| now + chrono::Duration::seconds(60))),
        )
        .await;
        assert_eq!(times(&starts, 1), [0], "disabled after its first refresh");
        assert_eq!(times(&starts, 0).len(), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn a_feed_the_database_keeps_refusing_backs_off_from_seconds() {
        let health = Health::default();
        let starts = drive_for(&[(0, 0)], &health, Duration::from_secs(600), |_, _| {
            Err(StoreError::WriterStopped)
        })
        .await;
        let at = times(&starts, 0);
        let gaps: Vec<i64> = at.windows(2).map(|w| w[1] - w[0]).collect();
        // 5 s doubling per failure, with equal jitter (half to all of it), whole seconds.
        for (n, gap) in gaps.iter().enumerate().take(6) {
            let full = 5 << n;
            assert!(
                (full / 2 - 1..=full).contains(gap),
                "failure {}: {gap} s, expected {}..={full}: {gaps:?}",
                n + 1,
                full / 2
            );
        }
        assert!(gaps.len() >= 6, "{gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_starts_while_the_database_refuses_writes() {
        let health = Arc::new(Health::default());
        health.failed("database or disk is full", true);
        let healed = {
            let health = health.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(100)).await;
                health.wrote();
            })
        };
        let starts = drive_for(
            &[(0, 0), (50, 1)],
            &health,
            Duration::from_secs(130),
            |_, now| Ok(Some(now + chrono::Duration::seconds(3600))),
        )
        .await;
        healed.await.expect("healed");
        // Both were due while it failed; both start the moment writes work again.
        assert_eq!(starts, [(0, 100), (1, 100)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_that_asked_to_be_left_alone_is_waited_out_and_others_are_not() {
        let limits = Arc::new(Limits::new(4, 1));
        limits.pause("wire.example", Duration::from_secs(120));
        let started = tokio::time::Instant::now();
        let paused = {
            let limits = limits.clone();
            tokio::spawn(async move {
                let _slots = limits.acquire("wire.example").await;
                started.elapsed()
            })
        };
        let other = limits.acquire("other.example").await;
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "another host goes at once"
        );
        drop(other);
        assert_eq!(paused.await.expect("task"), Duration::from_secs(120));
        // At most `per_host` in flight: a second fetch of the host waits for the first.
        let first = limits.acquire("wire.example").await;
        let second = {
            let limits = limits.clone();
            tokio::spawn(async move { limits.acquire("wire.example").await })
        };
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!second.is_finished());
        drop(first);
        second
            .await
            .expect("the second goes once the first is done");
    }
}
