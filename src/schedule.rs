//! The schedule stage: when each feed is due, and how many fetches run at once.
//!
//! Input: the configured feeds with their schedules and the due times stored in the
//! database. Output: calls to [`Pipeline::refresh`], never more than `poll.concurrency` in
//! flight overall nor `poll.per_host` per host, each feed again at its next due time (plus
//! jitter). Due times live in the database, so a restart resumes the schedule.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng as _;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::config::{Feed, Poll, Schedule};
use crate::metrics;
use crate::notify::Wake;
use crate::refresh::{Outcome, Pipeline, Report};
use crate::store::StoreError;
use crate::telemetry::error_chain;

/// The longest a feed's own hints (`max-age`, `Expires`, `<ttl>`) may stretch its
/// interval: a misconfigured server must not silence a feed for a week.
const MAX_HINTED_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// How soon a feed whose results the database failed to store is fetched again (once
/// the database takes writes), the first time.
const STORE_RETRY: Duration = Duration::from_secs(5);

/// How soon a feed is fetched again after the database refused its results for the
/// `failures`-th time in a row: soon (the scheduler waits for the database to take writes
/// first), then backing off up to `backoff_max`, so that a document the database keeps
/// refusing, or a disk with room for small writes only, is not downloaded every few
/// seconds. What the feed's own data made the database refuse starts from a minute.
fn store_retry(err: &StoreError, failures: u32, poll: &Poll) -> chrono::Duration {
    let base = if err.is_about_the_data() {
        Duration::from_secs(60)
    } else {
        STORE_RETRY
    };
    to_chrono(backoff(failures, base, poll.backoff_max.max(base)))
}

/// The next due time after `now`, pushed back by a random delay up to `jitter`.
pub fn next_due(schedule: &Schedule, now: DateTime<Utc>, jitter: Duration) -> DateTime<Utc> {
    let next = schedule.next_after(now);
    if jitter.is_zero() {
        return next;
    }
    let millis = rand::rng().random_range(0..=jitter.as_millis().min(u64::MAX as u128) as u64);
    next + chrono::Duration::milliseconds(millis as i64)
}

/// When a feed that was fetched successfully is due again: its schedule, but never
/// sooner than the feed asked (`hint`), when it may ask.
pub fn after_success(
    feed: &Feed,
    poll: &Poll,
    now: DateTime<Utc>,
    hint: Option<Duration>,
) -> DateTime<Utc> {
    let next = next_due(&feed.schedule, now, poll.jitter);
    match hint.filter(|_| feed.cache_hints) {
        Some(hint) => next.max(now + to_chrono(hint.min(MAX_HINTED_INTERVAL))),
        None => next,
    }
}

/// When a feed whose fetch failed for the `failures`-th time in a row is due again: its
/// schedule, but no sooner than its exponential backoff or a `Retry-After`.
pub fn after_failure(
    feed: &Feed,
    poll: &Poll,
    now: DateTime<Utc>,
    failures: u32,
    retry_after: Option<Duration>,
) -> DateTime<Utc> {
    let next = next_due(&feed.schedule, now, poll.jitter);
    let wait = backoff(failures, poll.backoff_base, poll.backoff_max)
        .max(retry_after.unwrap_or_default().min(MAX_HINTED_INTERVAL));
    next.max(now + to_chrono(wait))
}

/// `base` doubled per failure after the first, capped at `max`, with "equal jitter"
/// (between half and all of it) so that feeds failing together spread out.
pub fn backoff(failures: u32, base: Duration, max: Duration) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let exp = base
        .checked_mul(1u32.checked_shl(failures - 1).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max);
    exp.mul_f64(rand::rng().random_range(0.5..=1.0))
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

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

    /// Keeps every feed of `host` waiting for `wait`.
    fn pause(&self, host: &str, wait: Duration) {
        let until = tokio::time::Instant::now() + wait.min(MAX_HINTED_INTERVAL);
        self.with_host(host, |h| {
            h.paused_until = Some(h.paused_until.map_or(until, |u| u.max(until)));
        });
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
        let host_slots = self.with_host(&host, |h| h.slots.clone());
        // The semaphores are never closed, so acquiring cannot fail; if it ever did,
        // fetching without the slot is better than never fetching.
        let _host = host_slots.acquire_owned().await.ok();
        // A paused host is waited out holding only its own slot, not a global one.
        while let Some(until) = self.with_host(&host, |h| h.paused_until) {
            if until <= tokio::time::Instant::now() {
                break;
            }
            tokio::time::sleep_until(until).await;
        }
        let _global = self.global.clone().acquire_owned().await.ok();
        if let Some(due) = due {
            metrics::schedule_lateness((clock::now() - due).to_std().unwrap_or_default());
        }
        // Boxed: until here a task only waits for slots, and a cold start of 100,000 feeds
        // keeps that many waiting; the refresh's own state is allocated once it runs.
        let report = Box::pin(pipeline.refresh(index)).await?;
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

/// Refreshes the given feeds once, concurrently within the limits, and returns a report
/// per feed (`wirewatch poll`).
pub async fn poll_once(pipeline: &Pipeline, feeds: &[usize]) -> Vec<Result<Report, StoreError>> {
    poll_once_observed(pipeline, feeds, |_| {})
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
    let limits = Arc::new(Limits::new(
        pipeline.config.poll.concurrency,
        pipeline.config.poll.per_host,
    ));
    let mut tasks = JoinSet::new();
    for &index in feeds {
        let (limits, pipeline) = (limits.clone(), pipeline.clone());
        tasks.spawn(async move { (index, limits.refresh(&pipeline, index, None).await) });
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

/// Runs the schedule until `shutdown`: each feed is refreshed when due; `committed` is
/// notified whenever a refresh wrote outbox rows. In-flight refreshes get `grace` to finish
/// after shutdown; those still running then are dropped, and unless the database writer
/// had already taken their results, nothing of them is committed: they are fetched again
/// on the next start.
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
    let started = clock::now();
    // The feeds waiting for their due time, soonest first. A feed is out of the queue
    // while it is in flight, and for good once it is disabled (410 Gone).
    let mut due = BinaryHeap::with_capacity(feeds.len());
    let stored = match pipeline.store.feed_schedules().await {
        Ok(stored) => stored,
        Err(err) => {
            tracing::error!(error = %error_chain(&err), "cannot read the feeds' schedules; polling every feed now");
            HashMap::new()
        }
    };
    for (index, feed) in feeds.iter().enumerate() {
        let (next_due_at, disabled_reason) = stored.get(&feed.name).cloned().unwrap_or_default();
        if let Some(reason) = disabled_reason {
            tracing::warn!(feed = %feed.name, reason, "feed is disabled; not polling it");
            continue;
        }
        let at = next_due_at
            .and_then(|at| DateTime::from_timestamp(at, 0))
            .unwrap_or(started);
        due.push(Reverse((at, index)));
    }
    drop(stored);

    let mut tasks: JoinSet<Result<Option<DateTime<Utc>>, StoreError>> = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, usize> = HashMap::new();
    // Feeds whose results the database refused, with how many times in a row.
    let mut store_failures: HashMap<usize, u32> = HashMap::new();
    let health = pipeline.store.health().clone();
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
            let late_from = at.max(started);
            let (limits, pipeline, committed) =
                (limits.clone(), pipeline.clone(), committed.clone());
            let handle = tasks.spawn(async move {
                match limits.refresh(&pipeline, index, Some(late_from)).await {
                    Ok(report) => {
                        if matches!(report.outcome, Outcome::Updated { alerts, .. } if alerts > 0) {
                            committed.notify();
                        }
                        Ok(report.next_due)
                    }
                    Err(err) => Err(err),
                }
            });
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
                        Some(clock::now() + store_retry(&err, *failures, &pipeline.config.poll))
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
    use super::*;
    use crate::config::Config;

    fn config(extra_poll: &str, feed_schedule: Option<&str>) -> Config {
        let schedule = feed_schedule.map_or(String::new(), |s| format!("schedule = \"{s}\"\n"));
        let text = format!(
            "[poll]\nschedule = \"every 60s\"\n{extra_poll}\n\n[[feeds]]\nname = \"f\"\nurl = \"https://example.org/rss\"\n{schedule}"
        );
        Config::from_source(std::path::Path::new("/tmp/t.toml"), &text).unwrap()
    }

    fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        (to - from).num_seconds()
    }

    #[test]
    fn backoff_doubles_per_failure_with_equal_jitter_up_to_the_cap() {
        let (base, max) = (Duration::from_secs(60), Duration::from_secs(600));
        assert_eq!(backoff(0, base, max), Duration::ZERO);
        for _ in 0..100 {
            for (failures, full) in [(1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (40, 600)] {
                let wait = backoff(failures, base, max).as_secs_f64();
                let full = full as f64;
                assert!(
                    wait >= full / 2.0 - 0.001 && wait <= full + 0.001,
                    "{failures}: {wait}"
                );
            }
        }
    }

    #[test]
    fn a_feed_the_database_keeps_refusing_is_retried_soon_then_less_and_less_often() {
        let config = config("backoff_max = \"10m\"", None);
        let database = StoreError::WriterStopped;
        let data = StoreError::Json(serde_json::from_str::<u8>("x").unwrap_err());
        assert!(!database.is_about_the_data() && data.is_about_the_data());
        for _ in 0..50 {
            let secs = |err: &StoreError, n| store_retry(err, n, &config.poll).num_milliseconds();
            assert!((2_500..=5_000).contains(&secs(&database, 1)));
            assert!((20_000..=40_000).contains(&secs(&database, 4)));
            assert!((300_000..=600_000).contains(&secs(&database, 40)), "capped");
            assert!((30_000..=60_000).contains(&secs(&data, 1)));
        }
    }

    #[test]
    fn a_failure_waits_for_the_later_of_schedule_backoff_and_retry_after() {
        let config = config("backoff_base = \"10m\"\nbackoff_max = \"1h\"", None);
        let (feed, poll) = (&config.feeds[0], &config.poll);
        let now = Utc::now();
        // First failure: backoff 5-10 minutes beats the 60s schedule.
        let next = secs(now, after_failure(feed, poll, now, 1, None));
        assert!((300..=600).contains(&next), "{next}");
        // A longer Retry-After wins over both.
        let next = secs(
            now,
            after_failure(feed, poll, now, 1, Some(Duration::from_secs(7200))),
        );
        assert_eq!(next, 7200);
        // Retry-After is capped: a server cannot park a feed for a week.
        let next = secs(
            now,
            after_failure(feed, poll, now, 1, Some(Duration::from_secs(7 * 86400))),
        );
        assert_eq!(next, 86400);
    }

    #[test]
    fn cache_hints_stretch_the_default_schedule_but_not_an_explicit_one() {
        let now = Utc::now();
        let hinted = config("", None);
        let next = secs(
            now,
            after_success(
                &hinted.feeds[0],
                &hinted.poll,
                now,
                Some(Duration::from_secs(900)),
            ),
        );
        assert_eq!(next, 900);
        // A hint shorter than the schedule changes nothing.
        let next = secs(
            now,
            after_success(
                &hinted.feeds[0],
                &hinted.poll,
                now,
                Some(Duration::from_secs(5)),
            ),
        );
        assert_eq!(next, 60);
        let explicit = config("", Some("every 2m"));
        let next = secs(
            now,
            after_success(
                &explicit.feeds[0],
                &explicit.poll,
                now,
                Some(Duration::from_secs(900)),
            ),
        );
        assert_eq!(next, 120);
    }
}
