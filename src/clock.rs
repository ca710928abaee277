//! The time of day as the pipeline reads it, so that tests can move it.
//!
//! In the daemon and the CLI, [`now`] is the system clock. Under tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`, the `test-util` feature) it runs ahead of the
//! system clock by exactly as much as tokio's clock was advanced: due times, backoffs,
//! retry times, leases and the watchdog's periods all move together with
//! `tokio::time::advance`, and a test of a schedule takes no real time. Pure policy takes
//! `now` as an argument instead (see `due`); the loops that drive it read it here.

use chrono::{DateTime, Utc};

/// The current time.
pub fn now() -> DateTime<Utc> {
    // Outside a paused runtime tokio's clock is the system's monotonic clock, and the
    // offset is zero (to within the nanoseconds between the two readings). Under a paused
    // one it is how far tokio's clock was advanced, less the real time that went by.
    let (tokio, system) = (
        tokio::time::Instant::now().into_std(),
        std::time::Instant::now(),
    );
    let offset = |d| chrono::Duration::from_std(d).unwrap_or_default();
    if tokio >= system {
        Utc::now() + offset(tokio - system)
    } else {
        Utc::now() - offset(system - tokio)
    }
}

/// [`now`] in Unix seconds.
pub fn unix() -> i64 {
    now().timestamp()
}

/// Holds tokio's paused clock still while it is alive, for tests that wait on real work
/// (SQLite's worker threads, a local HTTP server) under `start_paused`: a blocking task in
/// flight stops tokio's auto-advance, so the clock moves only with `tokio::time::advance`.
#[cfg(test)]
pub(crate) fn hold() -> Held {
    let (release, held) = std::sync::mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        let _ = held.recv();
    });
    Held { _release: release }
}

/// See [`hold`]: the clock is released when this is dropped.
#[cfg(test)]
pub(crate) struct Held {
    _release: std::sync::mpsc::Sender<()>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn under_a_paused_runtime_the_clock_moves_with_tokio_time() {
        let before = now();
        tokio::time::advance(std::time::Duration::from_secs(3600)).await;
        let moved = (now() - before).num_seconds();
        assert!((3599..=3601).contains(&moved), "{moved}");
    }

    #[test]
    fn outside_a_runtime_it_is_the_system_clock() {
        let drift = (now() - Utc::now()).num_milliseconds().abs();
        assert!(drift < 1000, "{drift} ms");
    }
}
