//! The daemon's upkeep of its database: probing whether it takes writes, and retention.
//!
//! Input: the store and the current configuration (swapped on reload). Output: probe
//! writes — every second while the database refuses writes, so that polling, deliveries
//! and readiness resume within seconds of the cause going away, and every few seconds
//! while nothing else writes, so that `/readyz` learns of a fault on a quiet daemon too —
//! and retention passes (`Store::prune`) on a period set by the shortest retention.
//! Neither ever holds the write lock for more than one small transaction at a time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Retention};
use crate::metrics;
use crate::store::Store;
use crate::telemetry::error_chain;

/// How often a failing database is probed.
const PROBE_WHILE_FAILING: Duration = Duration::from_secs(1);
/// How long the database may go without a write before a probe checks it.
const PROBE_WHEN_IDLE: Duration = Duration::from_secs(10);
/// How soon after start the first retention pass runs (or the period, if shorter).
const FIRST_PRUNE: Duration = Duration::from_secs(60);
/// The pause between two delete batches of a retention pass.
const PRUNE_PAUSE: Duration = Duration::from_millis(50);

/// How often retention runs: a tenth of the shortest retention, between 30 seconds and
/// an hour. `None` when everything is kept for ever.
pub fn prune_every(retention: &Retention) -> Option<Duration> {
    [retention.items, retention.matches, retention.deliveries]
        .into_iter()
        .flatten()
        .min()
        .map(|shortest| (shortest / 10).clamp(Duration::from_secs(30), Duration::from_secs(3600)))
}

/// Starts the probes and retention; both end at `shutdown`.
pub fn spawn(
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    shutdown: CancellationToken,
) -> [JoinHandle<()>; 2] {
    [
        tokio::spawn(probe(store.clone(), shutdown.clone())),
        tokio::spawn(prune(store, config, shutdown)),
    ]
}

async fn probe(store: Store, shutdown: CancellationToken) {
    let health = store.health().clone();
    let mut changes = health.subscribe();
    loop {
        // Marks the state seen: a change from here on wakes the wait below.
        changes.borrow_and_update();
        let wait = if health.writable() {
            PROBE_WHEN_IDLE.saturating_sub(health.since_last_write())
        } else {
            PROBE_WHILE_FAILING
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            // A failure seen by another writer starts the fast probes at once.
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        if health.writable() && health.since_last_write() < PROBE_WHEN_IDLE {
            continue; // something else wrote meanwhile
        }
        if health.failing().is_some_and(|f| f.disk_full) && !store.room_to_write() {
            continue; // still full: a probe could fit and be fooled
        }
        // The outcome lands in `health`; a failure is logged there, once.
        let _ = store.probe(crate::clock::unix()).await;
    }
}

async fn prune(
    store: Store,
    mut config: watch::Receiver<Arc<Config>>,
    shutdown: CancellationToken,
) {
    let mut retention = config.borrow_and_update().retention;
    // The first pass soon after start (a stopped daemon may have left a backlog), then
    // one per period from the start of the last.
    let mut next =
        prune_every(&retention).map(|every| tokio::time::Instant::now() + every.min(FIRST_PRUNE));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = config.changed() => {
                if changed.is_err() {
                    return;
                }
                let reloaded = config.borrow_and_update().retention;
                if reloaded != retention {
                    retention = reloaded;
                    next = rescheduled(next, &retention, tokio::time::Instant::now());
                }
                continue;
            }
            // Retention off (`None`): the branch is off and its sleep never polled.
            _ = tokio::time::sleep_until(next.unwrap_or_else(tokio::time::Instant::now)), if next.is_some() => {}
        }
        next = prune_every(&retention).map(|every| tokio::time::Instant::now() + every);
        if !store.health().writable() {
            continue; // the probes wait for the database; retention waits a period
        }
        let started = std::time::Instant::now();
        let pass = store.prune(&retention, crate::clock::unix(), PRUNE_PAUSE);
        let pruned = tokio::select! {
            _ = shutdown.cancelled() => return,
            pruned = pass => pruned,
        };
        match pruned {
            Ok(pruned) => {
                metrics::pruned(&pruned);
                if pruned != Default::default() {
                    tracing::info!(
                        deliveries = pruned.deliveries,
                        matches = pruned.matches,
                        items = pruned.items,
                        stories = pruned.stories,
                        pages_released = pruned.pages,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "retention pass"
                    );
                }
            }
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "retention pass failed; the next one resumes it")
            }
        }
    }
}

/// When the next pass runs after the retention settings changed: sooner if the new
/// settings ask for it, never later (a daemon reloaded every hour must still prune).
fn rescheduled(
    next: Option<tokio::time::Instant>,
    retention: &Retention,
    now: tokio::time::Instant,
) -> Option<tokio::time::Instant> {
    let sooner = prune_every(retention).map(|every| now + every);
    match (next, sooner) {
        (Some(at), Some(sooner)) => Some(at.min(sooner)),
        (_, sooner) => sooner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_runs_a_tenth_of_the_shortest_retention_apart_within_bounds() {
        let day = Duration::from_secs(86400);
        let every = |items, matches, deliveries| {
            prune_every(&Retention {
                items,
                matches,
                deliveries,
            })
        };
        assert_eq!(
            every(Some(30 * day), Some(365 * day), Some(30 * day)),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            every(Some(Duration::from_secs(600)), None, None),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            every(None, Some(Duration::from_secs(60)), None),
            Some(Duration::from_secs(30))
        );
        assert_eq!(every(None, None, None), None);
    }

    #[test]
    fn new_retention_settings_bring_the_next_pass_forward_never_back() {
        let now = tokio::time::Instant::now();
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let items = |age| Retention {
            items: Some(age),
            matches: None,
            deliveries: None,
        };
        let next = Some(now + minutes(50));
        // 30 minutes of retention: a pass every 3 minutes, so in 3 minutes.
        assert_eq!(
            rescheduled(next, &items(minutes(30)), now),
            Some(now + minutes(3))
        );
        // A longer retention does not put off the pass already planned.
        assert_eq!(rescheduled(next, &items(minutes(60 * 24)), now), next);
        // Retention switched on: the first pass a period from now.
        assert_eq!(
            rescheduled(None, &items(minutes(100)), now),
            Some(now + minutes(10))
        );
        // Switched off: none.
        let forever = Retention {
            items: None,
            matches: None,
            deliveries: None,
        };
        assert_eq!(rescheduled(next, &forever, now), None);
    }
}
