//! systemd integration through sd_notify(3), for `Type=notify` (SPEC §8): `READY=1` once
//! the daemon serves, `RELOADING=1` and `STOPPING=1` around a reload and a stop, a
//! `STATUS=` line for `systemctl status`, and `WATCHDOG=1` pings while the database answers.
//!
//! Input: `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`, set by systemd. Output:
//! datagrams on that socket. Without `NOTIFY_SOCKET` (a shell, a test, another service
//! manager) every function here does nothing, so the daemon calls them unconditionally.
//! A notification that cannot be sent is logged once and otherwise ignored: systemd
//! notices what matters (no `READY=1`, no watchdog ping) by itself.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::Store;

/// How often the `STATUS=` line is refreshed from the store.
const STATUS_EVERY: Duration = Duration::from_secs(30);

/// The longest error text a `STATUS=` line carries.
const STATUS_ERROR_CHARS: usize = 160;

/// Set by [`stopping`]: the status task no longer overwrites the stopping line.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Whether a failed notification was logged already.
static SEND_FAILED: AtomicBool = AtomicBool::new(false);

/// `READY=1`: start-up (or a reload) is complete. Send it once the store is open, the
/// listener bound and the scheduler started, and again after every reload, applied or
/// refused (`Type=notify-reload` waits for it to end the reload).
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// `RELOADING=1` with `MONOTONIC_USEC=` (which systemd ≥ 253 requires to match the
/// message to the reload it asked for): a SIGHUP reload has begun. [`ready`] ends it.
pub fn reloading() {
    let line = "reloading the configuration";
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now, NotifyState::Status(line)]),
        Err(_) => send(&[NotifyState::Reloading, NotifyState::Status(line)]),
    }
}

/// `STOPPING=1`: SIGTERM or SIGINT arrived and the daemon is finishing work in flight.
pub fn stopping() {
    STOPPING.store(true, Ordering::Relaxed);
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: finishing work in flight"),
    ]);
}

/// `STATUS=text`, the line `systemctl status` shows, made a single line first.
pub fn status(text: &str) {
    send(&[NotifyState::Status(&one_line(text, usize::MAX))]);
}

/// The status line: "polling 120 feeds, 3 deliveries pending, last error: …".
pub fn status_line(feeds: usize, pending: i64, last_error: Option<&str>) -> String {
    let feeds_word = if feeds == 1 { "feed" } else { "feeds" };
    let pending_word = if pending == 1 {
        "delivery"
    } else {
        "deliveries"
    };
    let mut line = format!("polling {feeds} {feeds_word}, {pending} {pending_word} pending");
    if let Some(error) = last_error.map(|e| one_line(e, STATUS_ERROR_CHARS))
        && !error.is_empty()
    {
        line.push_str(", last error: ");
        line.push_str(&error);
    }
    line
}

/// Sends `WATCHDOG=1` every half `WatchdogSec=`, each after a `store.ping()` that
/// succeeded (the database takes a write transaction), until `shutdown`. A database that
/// fails or hangs stops the pings, so systemd kills and restarts the service; the failure
/// is logged once, and the recovery too. After `shutdown` the task ends by itself once a
/// ping in flight returns: abort it, or await it before closing the store.
/// `None` when systemd runs no watchdog for this process (`WATCHDOG_USEC` unset, or
/// `WATCHDOG_PID` naming another process).
pub fn spawn_watchdog(store: Store, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled().filter(|i| !i.is_zero())?;
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "systemd watchdog enabled"
    );
    let ping = move || {
        let store = store.clone();
        async move { store.answers().await.map_err(|err| err.to_string()) }
    };
    let kick = || send(&[NotifyState::Watchdog]);
    Some(tokio::spawn(keep_alive(interval / 2, ping, kick, shutdown)))
}

/// Keeps the `STATUS=` line current: now, whenever the configuration changes, and every
/// 30 seconds, until `shutdown` or [`stopping`]. `None` without `NOTIFY_SOCKET`.
pub fn spawn_status(
    store: Store,
    mut config: watch::Receiver<Arc<Config>>,
    shutdown: CancellationToken,
) -> Option<JoinHandle<()>> {
    std::env::var_os("NOTIFY_SOCKET")?;
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(STATUS_EVERY);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
                changed = config.changed() => if changed.is_err() { return },
            }
            let current = config.borrow_and_update().clone();
            let line = match current_status(&store, &current).await {
                Ok(line) => line,
                Err(err) => format!("database unavailable: {err}"),
            };
            if STOPPING.load(Ordering::Relaxed) {
                return;
            }
            status(&line);
        }
    }))
}

/// The status line from the store: configured feeds, pending deliveries and the most
/// recent error of a configured feed that is still failing.
async fn current_status(store: &Store, config: &Config) -> crate::store::Result<String> {
    let pending = store.pending_deliveries().await?;
    // A few rows: a feed removed from the config keeps its row and may be among them.
    let last_error = store
        .recent_feed_errors(16)
        .await?
        .into_iter()
        .find(|(name, _)| config.feed_index(name).is_some())
        .map(|(name, error)| format!("{name}: {error}"));
    Ok(status_line(
        config.feeds.len(),
        pending,
        last_error.as_deref(),
    ))
}

/// The watchdog loop: every `period`, `ping`; if it answers `Ok`, `kick`.
///
/// A ping is never cut short, by a timeout or by `shutdown`: dropping `Store::ping` in
/// the middle could return a connection to the pool inside its `BEGIN IMMEDIATE`, which
/// would wedge the database for real. A ping that never returns stops the kicks, which is
/// the point; one that is merely slow delays them (`store.ping` waits at most a second for
/// the write lock, far below `WatchdogSec=`).
async fn keep_alive<P, F>(
    period: Duration,
    mut ping: P,
    kick: impl Fn(),
    shutdown: CancellationToken,
) where
    P: FnMut() -> F,
    F: Future<Output = Result<(), String>>,
{
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let answer = ping().await;
        if shutdown.is_cancelled() {
            // The store may be closing: its answer means nothing any more.
            return;
        }
        match answer {
            Ok(()) => {
                if failing {
                    tracing::info!("the database answers again: watchdog pings resume");
                    failing = false;
                }
                kick();
            }
            Err(error) if !failing => {
                tracing::error!(
                    %error,
                    "the database does not answer: watchdog pings stop, and systemd restarts \
                     the service unless it recovers"
                );
                failing = true;
            }
            Err(_) => {}
        }
    }
}

fn send(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(states)
        && !SEND_FAILED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            error = %err,
            "cannot notify systemd through NOTIFY_SOCKET; further failures are not logged"
        );
    }
}

/// `text` as one line of at most `max` characters: `STATUS=` ends at a newline, so runs
/// of whitespace and control characters become one space, and a cut ends with `…`.
fn one_line(text: &str, max: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max));
    let mut chars = 0;
    let mut space = false;
    for c in text.trim().chars() {
        if c.is_whitespace() || c.is_control() {
            space = true;
            continue;
        }
        let needed = if space { 2 } else { 1 };
        if chars + needed > max {
            line.push('…');
            return line;
        }
        if space {
            line.push(' ');
            space = false;
        }
        line.push(c);
        chars += needed;
    }
    line
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn status_line_counts_feeds_and_deliveries() {
        let cases: &[(usize, i64, Option<&str>, &str)] = &[
            (120, 3, None, "polling 120 feeds, 3 deliveries pending"),
            (1, 1, None, "polling 1 feed, 1 delivery pending"),
            (0, 0, None, "polling 0 feeds, 0 deliveries pending"),
            (
                2,
                0,
                Some("wire: timeout: no answer within 20s"),
                "polling 2 feeds, 0 deliveries pending, last error: wire: timeout: no answer within 20s",
            ),
            (2, 0, Some("  \n "), "polling 2 feeds, 0 deliveries pending"),
        ];
        for (feeds, pending, error, want) in cases {
            assert_eq!(status_line(*feeds, *pending, *error), *want);
        }
    }

    #[test]
    fn status_line_keeps_a_multiline_error_on_one_line() {
        let line = status_line(
            3,
            0,
            Some("wire: malformed:\n  line 4\r\n\tunexpected </rss>"),
        );
        assert_eq!(
            line,
            "polling 3 feeds, 0 deliveries pending, last error: wire: malformed: line 4 unexpected </rss>"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn status_line_cuts_a_long_error_on_a_char_boundary() {
        let error = "ایران ".repeat(100);
        let line = status_line(1, 0, Some(&error));
        let (_, tail) = line.split_once("last error: ").unwrap();
        assert!(tail.ends_with('…'), "{tail}");
        assert!(tail.chars().count() <= STATUS_ERROR_CHARS + 1, "{tail}");
        assert!(tail.starts_with("ایران ایران"));
    }

    #[test]
    fn one_line_collapses_whitespace_and_control_characters() {
        assert_eq!(one_line("a\u{0}\u{7}b  c\n\nd", usize::MAX), "a b c d");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("ab cd", 3), "ab…");
        assert_eq!(one_line("abc", 3), "abc");
    }

    #[test]
    fn notifications_without_notify_socket_do_nothing() {
        // The test process has no NOTIFY_SOCKET (unless run under systemd: then skip).
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            return;
        }
        ready();
        reloading();
        status("polling 1 feed");
        assert!(!SEND_FAILED.load(Ordering::Relaxed));
    }

    /// The watchdog period of the tests: `WatchdogSec=30s` pings every 15 s.
    const PERIOD: Duration = Duration::from_secs(15);

    /// Runs the watchdog loop for `run` of tokio's (paused) time, answering pings from
    /// `answers` in turn (then `Ok`) after `delay` each, and returns when each kick was
    /// sent, in seconds since the start.
    async fn kicks(answers: Vec<Result<(), String>>, delay: Duration, run: Duration) -> Vec<u64> {
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        let kicked = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let ping = {
            let answers = answers.clone();
            move || {
                let answer = answers.lock().unwrap().next().unwrap_or(Ok(()));
                async move {
                    tokio::time::sleep(delay).await;
                    answer
                }
            }
        };
        let started = tokio::time::Instant::now();
        let kick = {
            let kicked = kicked.clone();
            move || kicked.lock().unwrap().push(started.elapsed().as_secs())
        };
        let task = tokio::spawn(keep_alive(PERIOD, ping, kick, shutdown.clone()));
        tokio::time::sleep(run).await;
        shutdown.cancel();
        task.await.unwrap();
        kicked.lock().unwrap().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_kicks_every_period_while_the_database_answers() {
        let at = kicks(vec![], Duration::ZERO, Duration::from_secs(100)).await;
        assert_eq!(at, [0, 15, 30, 45, 60, 75, 90]);
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_stops_kicking_while_the_database_fails() {
        let failing = vec![Err("database is locked".to_string()); 1000];
        let at = kicks(failing, Duration::ZERO, Duration::from_secs(600)).await;
        assert_eq!(at, Vec::<u64>::new());
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_stops_kicking_while_a_ping_hangs() {
        let kicked = Arc::new(AtomicUsize::new(0));
        let counter = kicked.clone();
        let kick = move || {
            counter.fetch_add(1, Ordering::SeqCst);
        };
        let ping = || std::future::pending::<Result<(), String>>();
        let task = tokio::spawn(keep_alive(PERIOD, ping, kick, CancellationToken::new()));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        task.abort();
        assert_eq!(kicked.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_kicks_when_a_slow_ping_answers_and_keeps_its_period() {
        // Each ping takes 5 s: the kick comes when it answers.
        let at = kicks(vec![], Duration::from_secs(5), Duration::from_secs(50)).await;
        assert_eq!(at, [5, 20, 35]);
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_resumes_when_the_database_recovers() {
        let answers = vec![Err("disk I/O error".to_string()); 3];
        let at = kicks(answers, Duration::ZERO, Duration::from_secs(100)).await;
        assert_eq!(
            at,
            [45, 60, 75, 90],
            "the fourth ping is the first that answers"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_ends_at_shutdown() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let ping = || async { Ok(()) };
        tokio::time::timeout(
            Duration::from_secs(1),
            keep_alive(Duration::from_secs(3600), ping, || {}, shutdown),
        )
        .await
        .expect("returns at once");
    }
}
