//! Under systemd (SPEC §8, `Type=notify`): the daemon reports on `NOTIFY_SOCKET` —
//! `READY=1` once it serves, `STATUS=` lines, `WATCHDOG=1` every half `WATCHDOG_USEC`,
//! `RELOADING=1` then `READY=1` around every SIGHUP (a refused file included), and
//! `STOPPING=1` on SIGTERM before it exits 0. The test plays systemd's part: it binds the
//! datagram socket and starts the binary with the environment systemd would give it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UnixDatagram;

use crate::helpers::{BIN, Daemon, FeedServer, Item, Receiver, TestDir, http_get, rss};

/// systemd's end of `NOTIFY_SOCKET`: every datagram received, in order, with its time.
struct NotifySocket {
    path: PathBuf,
    messages: Arc<Mutex<Vec<(Instant, String)>>>,
    bound_at: Instant,
}

impl NotifySocket {
    /// Binds `notify.sock` in `dir` and keeps reading it, so the daemon's blocking sends
    /// never wait on a full queue.
    fn bind(dir: &TestDir) -> NotifySocket {
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = socket.recv(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push((Instant::now(), text));
            }
        });
        NotifySocket {
            path,
            messages,
            bound_at: Instant::now(),
        }
    }

    fn messages(&self) -> Vec<(Instant, String)> {
        self.messages.lock().unwrap().clone()
    }

    /// Every `KEY=value` line received so far, with its datagram's time.
    fn lines(&self) -> Vec<(Instant, String)> {
        self.messages()
            .into_iter()
            .flat_map(|(at, text)| {
                text.lines()
                    .map(|line| (at, line.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Waits until the `n`th line (1-based) equal to `line` arrives, or starting with it
    /// when `line` ends with `…`; returns its time.
    async fn wait_for_nth(&self, n: usize, timeout: Duration, line: &str) -> Instant {
        self.wait_for_nth_since(self.bound_at, n, timeout, line)
            .await
    }

    /// [`NotifySocket::wait_for_nth`] counting only lines received at `since` or later.
    async fn wait_for_nth_since(
        &self,
        since: Instant,
        n: usize,
        timeout: Duration,
        line: &str,
    ) -> Instant {
        let want = |l: &str| {
            l == line || (line.ends_with("…") && l.starts_with(line.trim_end_matches('…')))
        };
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<Instant> = self
                .lines()
                .into_iter()
                .filter(|(at, line)| *at >= since && want(line))
                .map(|(at, _)| at)
                .collect();
            if let Some(at) = found.get(n - 1) {
                return *at;
            }
            assert!(
                Instant::now() < deadline,
                "no {line:?} (#{n}) within {timeout:?}; got {:?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_for(&self, timeout: Duration, line: &str) -> Instant {
        self.wait_for_nth(1, timeout, line).await
    }

    fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|(_, l)| l == line).count()
    }
}

/// Starts `wirewatch run` as systemd would with `WatchdogSec=400ms`: `NOTIFY_SOCKET`,
/// `WATCHDOG_USEC` and `WATCHDOG_PID` naming the daemon itself (hence the `exec`).
fn spawn_under_systemd(dir: &TestDir, notify: &NotifySocket) -> Daemon {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(r#"WATCHDOG_PID=$$ exec "$0" run --config "$1""#)
        .arg(BIN)
        .arg(dir.config_path())
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "400000")
        .env("RUST_LOG", "info");
    dir.spawn_command(command)
}

/// A running feed server and receiver, and a config polling one feed every second with
/// the HTTP listener on a free port (returned).
async fn rig(dir: &TestDir) -> (FeedServer, Receiver, u16) {
    let (feeds, hook) = (FeedServer::start().await, Receiver::start().await);
    feeds.set(
        "wire",
        rss(&[Item::new(
            "1",
            "Iran and China sign a pact",
            "https://news.example.org/1",
        )]),
    );
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "every 1s");
    let port = dir.listen_on_free_port();
    (feeds, hook, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_reports_ready_status_and_watchdog_then_stopping_on_sigterm() {
    let dir = TestDir::new();
    let (_feeds, hook, port) = rig(&dir).await;
    let notify = NotifySocket::bind(&dir);

    let daemon = spawn_under_systemd(&dir, &notify);

    // READY=1 means it serves: the listener answers at once.
    let ready_at = notify.wait_for(Duration::from_secs(15), "READY=1").await;
    let health = http_get(&format!("http://127.0.0.1:{port}/healthz"))
        .await
        .expect("/healthz answers once READY=1 is sent");
    assert_eq!(health.0, 200);

    // STATUS= says what it does, on one line.
    notify
        .wait_for(Duration::from_secs(5), "STATUS=polling 1 feed, …")
        .await;

    // WATCHDOG=1 every 200 ms (half of WATCHDOG_USEC=400000): several within 2s of READY.
    // (Their period is pinned by the watchdog's paused-time tests.)
    notify
        .wait_for_nth_since(ready_at, 4, Duration::from_secs(10), "WATCHDOG=1")
        .await;
    // The daemon did its job meanwhile.
    assert_eq!(hook.wait_for(1, Duration::from_secs(15)).await.len(), 1);

    // SIGTERM: STOPPING=1, then a clean exit.
    let code = daemon.terminate().await;
    assert_eq!(code, Some(0));
    let stopping_at = notify.wait_for(Duration::from_secs(2), "STOPPING=1").await;
    assert!(stopping_at > ready_at);
    assert_eq!(notify.count("READY=1"), 1, "{:?}", notify.messages());
    let lines = notify.lines();
    assert!(
        lines.iter().all(|(_, l)| l.contains('=')),
        "every line is KEY=value: {lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reports_reloading_then_ready_even_for_a_refused_file() {
    let dir = TestDir::new();
    let (_feeds, _hook, _port) = rig(&dir).await;
    let notify = NotifySocket::bind(&dir);
    let daemon = spawn_under_systemd(&dir, &notify);
    notify.wait_for(Duration::from_secs(15), "READY=1").await;

    // A valid reload: RELOADING=1 with MONOTONIC_USEC= in the same datagram, then READY=1.
    daemon.hangup();
    let reloading_at = notify
        .wait_for(Duration::from_secs(10), "RELOADING=1")
        .await;
    let ready_at = notify
        .wait_for_nth(2, Duration::from_secs(15), "READY=1")
        .await;
    assert!(ready_at >= reloading_at);
    let reloading = notify
        .messages()
        .into_iter()
        .find(|(_, text)| text.lines().any(|l| l == "RELOADING=1"))
        .unwrap()
        .1;
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC= with RELOADING=1: {reloading:?}"));
    assert!(usec.parse::<u64>().unwrap() > 0, "{reloading:?}");

    // A broken file is refused, and the reload still ends with READY=1 (systemd waits for
    // it under Type=notify-reload).
    dir.edit_config(|t| t.replacen("[poll]", "[poll\n", 1));
    daemon.hangup();
    notify
        .wait_for_nth(2, Duration::from_secs(10), "RELOADING=1")
        .await;
    notify
        .wait_for_nth(3, Duration::from_secs(15), "READY=1")
        .await;

    assert_eq!(daemon.terminate().await, Some(0));
}
