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

/// How often a pass runs: a tenth of the shortest retention or of the stories window
/// (whose band index is pruned in the same pass), between 30 seconds and an hour.
pub fn pass_every(retention: &Retention, window: Duration) -> Duration {
    [
        retention.items,
        retention.matches,
        retention.deliveries,
        Some(window),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(window)
    .div_f64(10.0)
    .clamp(Duration::from_secs(30), Duration::from_secs(3600))
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

/// What a pass needs from the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Settings {
    retention: Retention,
    window: Duration,
}

impl Settings {
    fn of(config: &Config) -> Settings {
        Settings {
            retention: config.retention,
            window: config.stories.window,
        }
    }

    fn every(&self) -> Duration {
        pass_every(&self.retention, self.window)
    }
}

async fn prune(
    store: Store,
    mut config: watch::Receiver<Arc<Config>>,
    shutdown: CancellationToken,
) {
    let mut settings = Settings::of(&config.borrow_and_update());
    // The first pass soon after start (a stopped daemon may have left a backlog), then
    // one per period from the start of the last.
    let mut next = tokio::time::Instant::now() + settings.every().min(FIRST_PRUNE);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = config.changed() => {
                if changed.is_err() {
                    return;
                }
                let reloaded = Settings::of(&config.borrow_and_update());
                if reloaded != settings {
                    settings = reloaded;
                    // Sooner if the new settings ask for it, never later (a daemon reloaded
                    // every hour must still prune).
                    next = next.min(tokio::time::Instant::now() + settings.every());
                }
                continue;
            }
            _ = tokio::time::sleep_until(next) => {}
        }
        next = tokio::time::Instant::now() + settings.every();
        if !store.health().writable() {
            continue; // the probes wait for the database; retention waits a period
        }
        let started = std::time::Instant::now();
        let now = crate::clock::unix();
        let window = i64::try_from(settings.window.as_secs()).unwrap_or(i64::MAX);
        let pass = async {
            let bands = store
                .prune_story_bands(now.saturating_sub(window), PRUNE_PAUSE)
                .await?;
            let pruned = store.prune(&settings.retention, now, PRUNE_PAUSE).await?;
            Ok::<_, crate::store::StoreError>((bands, pruned))
        };
        let pruned = tokio::select! {
            _ = shutdown.cancelled() => return,
            pruned = pass => pruned,
        };
        match pruned {
            Ok((bands, pruned)) => {
                metrics::pruned(&pruned);
                if pruned != Default::default() || bands > 0 {
                    tracing::info!(
                        deliveries = pruned.deliveries,
                        matches = pruned.matches,
                        items = pruned.items,
                        stories = pruned.stories,
                        story_index_items = bands,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_runs_a_tenth_of_the_shortest_retention_or_window_apart_within_bounds() {
        let day = Duration::from_secs(86400);
        let window = 3 * day;
        let every = |items, matches, deliveries, window| {
            pass_every(
                &Retention {
                    items,
                    matches,
                    deliveries,
                },
                window,
            )
        };
        assert_eq!(
            every(Some(30 * day), Some(365 * day), Some(30 * day), window),
            Duration::from_secs(3600)
        );
        assert_eq!(
            every(Some(Duration::from_secs(600)), None, None, window),
            Duration::from_secs(60)
        );
        assert_eq!(
            every(None, Some(Duration::from_secs(60)), None, window),
            Duration::from_secs(30)
        );
        // Everything kept for ever: the band index is still pruned, on the window's period.
        assert_eq!(every(None, None, None, window), Duration::from_secs(3600));
        assert_eq!(
            every(None, None, None, Duration::from_secs(3000)),
            Duration::from_secs(300)
        );
    }
}
