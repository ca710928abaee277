//! Whether the database takes writes: what `/readyz` answers, what the scheduler and the
//! outbox workers wait for, and what tells them to resume.
//!
//! Input: the outcome of every write transaction (see `Store::transaction`), and of the
//! probes the daemon makes while the database fails or the daemon is idle. Output: the
//! current state, and a way to wait for it to change. A write the *database* refused
//! (disk full, I/O error, out of memory, locked past the busy timeout, read-only, corrupt)
//! makes the state failing until a write succeeds; a write refused for its data (a
//! constraint) says nothing about the database and changes nothing.

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// Why the database does not take writes, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    pub since: DateTime<Utc>,
    pub error: String,
    /// The disk was full: a probe that fits in what little space is left does not mean
    /// writes work again (see `Store::room_to_write`).
    pub disk_full: bool,
}

/// The shared write health of one database.
#[derive(Debug)]
pub struct Health {
    state: watch::Sender<Option<Failing>>,
    /// When a write last committed.
    last_write: std::sync::Mutex<tokio::time::Instant>,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            state: watch::Sender::new(None),
            last_write: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }
}

impl Health {
    /// `None` while writes succeed; the first failure of the current run of failures.
    pub fn failing(&self) -> Option<Failing> {
        self.state.borrow().clone()
    }

    pub fn writable(&self) -> bool {
        self.state.borrow().is_none()
    }

    /// How long ago a write last committed (or this handle was made).
    pub fn since_last_write(&self) -> std::time::Duration {
        // A poisoned lock only means a panic elsewhere while holding it; the instant is
        // still good.
        let last = *self.last_write.lock().unwrap_or_else(|e| e.into_inner());
        last.elapsed()
    }

    /// A write transaction committed.
    pub(crate) fn wrote(&self) {
        *self.last_write.lock().unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
        self.state.send_if_modified(|state| match state.take() {
            Some(failing) => {
                let down = (crate::clock::now() - failing.since).num_milliseconds() as f64 / 1000.0;
                tracing::info!(
                    down_secs = down,
                    "the database takes writes again: polling and deliveries resume"
                );
                true
            }
            None => false,
        });
    }

    /// A write failed because of the database itself. Logged once per run of failures.
    pub(crate) fn failed(&self, error: &str, disk_full: bool) {
        self.state.send_if_modified(|state| {
            if let Some(failing) = state {
                // A full disk seen later in the run still holds back the first probe.
                let was_full = failing.disk_full;
                failing.disk_full |= disk_full;
                return failing.disk_full != was_full;
            }
            tracing::error!(
                error,
                "the database does not take writes: not ready; polling and deliveries wait, and resume by themselves once it does"
            );
            *state = Some(Failing {
                since: crate::clock::now(),
                error: error.to_string(),
                disk_full,
            });
            true
        });
    }

    /// Waits until the database takes writes (at once if it does).
    pub async fn until_writable(&self) {
        let mut changes = self.state.subscribe();
        // `wait_for` fails only when the sender is gone, and `self` holds it.
        let _ = changes.wait_for(Option::is_none).await;
    }

    /// A receiver of every change of state, for a loop that must not miss one between
    /// two waits (`changed()` on it, then `borrow_and_update()`).
    pub fn subscribe(&self) -> watch::Receiver<Option<Failing>> {
        self.state.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_lasts_until_a_write_succeeds_and_keeps_its_first_error() {
        let health = std::sync::Arc::new(Health::default());
        assert!(health.writable());
        health.failed("disk I/O error", false);
        health.failed("database or disk is full", true);
        let failing = health.failing().expect("failing");
        assert_eq!(
            failing.error, "disk I/O error",
            "the first error of the run"
        );
        assert!(failing.disk_full, "a full disk seen during the run counts");

        let waiter = tokio::spawn({
            let health = health.clone();
            async move { health.until_writable().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits while failing");
        health.wrote();
        waiter.await.expect("the waiter ends once writes succeed");
        assert!(health.writable());
        // Already writable: returns at once.
        health.until_writable().await;
    }
}
