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

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Retention};
use crate::fetch::error_chain;
use crate::metrics;
use crate::store::Store;

/// How often a failing database is probed.
const PROBE_WHILE_FAILING: Duration = Duration::from_secs(1);
/// How long the database may go without a write before a probe checks it.
const PROBE_WHEN_IDLE: Duration = Duration::from_secs(10);
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
    loop {
        let wait = if health.writable() {
            PROBE_WHEN_IDLE.saturating_sub(health.since_last_write())
        } else {
            PROBE_WHILE_FAILING
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            // A failure seen by another writer starts the fast probes at once.
            _ = health.changed() => continue,
        }
        if health.writable() && health.since_last_write() < PROBE_WHEN_IDLE {
            continue; // something else wrote meanwhile
        }
        // The outcome lands in `health`; a failure is logged there, once.
        let _ = store.probe(Utc::now().timestamp()).await;
    }
}

async fn prune(
    store: Store,
    mut config: watch::Receiver<Arc<Config>>,
    shutdown: CancellationToken,
) {
    loop {
        let retention = config.borrow_and_update().retention;
        let wait = prune_every(&retention);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = config.changed() => {
                if changed.is_err() {
                    return;
                }
                continue; // new settings: a new period
            }
            _ = sleep_or_forever(wait) => {}
        }
        if !store.health().writable() {
            continue; // the probes wait for the database; so does retention
        }
        let started = std::time::Instant::now();
        let pass = store.prune(&retention, Utc::now().timestamp(), PRUNE_PAUSE);
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

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
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
}
