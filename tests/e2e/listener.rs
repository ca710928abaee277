//! The HTTP listener as a stranger on the network meets it (SPEC §15): a client cannot
//! hold a connection by sending half a request, or nothing after an answer; more clients
//! than the cap are turned away at once, and the probes answer again once they are gone;
//! with an API token set, everything but `/healthz` and `/readyz` asks for it, and a
//! reload rotates it.

use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use wirewatch::server::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS};

use crate::helpers::{Daemon, TestDir, eventually, http_get};

/// How long a connection the listener should cut off may take to end: a few header
/// timeouts, so a loaded machine does not fail the test, while a listener that never
/// cuts it off does.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(6 * HEADER_READ_TIMEOUT.as_secs());

const TOKEN: &str = "c0ffee7e4a2b91d8f3e6a5b4c3d2e1f0";

/// A daemon with no feeds and its listener on a free port; returns it with the port once
/// `/healthz` answers.
async fn start(dir: &TestDir, daemon_lines: &str) -> (Daemon, u16) {
    dir.write_config(&format!(
        "[daemon]\nstate_dir = \"state\"\nlisten = \"\"\n{daemon_lines}"
    ));
    let port = dir.listen_on_free_port();
    let daemon = dir.spawn_daemon();
    let healthz = format!("http://127.0.0.1:{port}/healthz");
    eventually("the listener to answer", Duration::from_secs(30), || {
        http_get(&healthz)
    })
    .await;
    (daemon, port)
}

/// Reads until the peer closes the connection (end of stream or reset) and returns what
/// it sent; `None` if it is still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(got)
}

/// A connection that sends `bytes` and nothing more.
async fn send(port: u16, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // A listener that already closed the connection may make this fail: what it sent
    // back (nothing) is what the test reads.
    let _ = stream.write_all(bytes).await;
    stream
}

async fn scrape(port: u16, token: Option<&str>) -> prometheus_parse::Scrape {
    let (status, text, _) = get(&format!("http://127.0.0.1:{port}/metrics"), token).await;
    assert_eq!(status, 200, "{text}");
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

fn counter(scrape: &prometheus_parse::Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// GETs `url`, with `Authorization: Bearer <token>` when given: the status, the body and
/// the `WWW-Authenticate` header.
async fn get(url: &str, token: Option<&str>) -> (u16, String, String) {
    wirewatch::http::init_tls();
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the listener answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, response.text().await.unwrap_or_default(), challenge)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_sending_half_a_request_line_is_cut_off_while_others_are_answered() {
    let dir = TestDir::new();
    let (daemon, port) = start(&dir, "").await;

    let mut slow = send(port, b"GET /heal").await;
    let (status, _, _) = get(&format!("http://127.0.0.1:{port}/healthz"), None).await;
    assert_eq!(status, 200, "other clients are answered meanwhile");
    let got = read_until_closed(&mut slow, CUT_OFF_WITHIN)
        .await
        .expect("the listener closes a connection stuck in its request line");

    assert!(got.is_empty(), "no answer to half a request: {got:?}");
    let scrape = scrape(port, None).await;
    assert!(
        counter(
            &scrape,
            "wirewatch_http_timeouts_total",
            Some(("stage", "header"))
        ) >= 1.0
    );
    assert_eq!(daemon.terminate().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let dir = TestDir::new();
    let (daemon, port) = start(&dir, "").await;

    let mut client = send(port, b"GET /healthz HTTP/1.1\r\nHost: wirewatch\r\n\r\n").await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"ok\n") {
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    let after = read_until_closed(&mut client, CUT_OFF_WITHIN)
        .await
        .expect("the listener closes a kept-alive connection that sends nothing more");

    assert!(after.is_empty(), "{after:?}");
    assert_eq!(daemon.terminate().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_connection_cap_a_client_is_closed_at_once_until_the_slow_ones_leave() {
    let dir = TestDir::new();
    let (daemon, port) = start(&dir, "").await;
    let healthz = format!("http://127.0.0.1:{port}/healthz");

    let mut slow = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        slow.push(send(port, b"GET /heal").await);
    }
    // A probe that is answered went in while some slow clients still waited in the
    // accept queue; once every slot is taken, the next one gets no answer at all. (The
    // slow clients hold their slots for a header timeout, the window to see it in.)
    let probe = b"GET /healthz HTTP/1.1\r\nHost: wirewatch\r\nConnection: close\r\n\r\n";
    let deadline = Instant::now() + HEADER_READ_TIMEOUT;
    let refused = loop {
        let mut client = send(port, probe).await;
        let got = read_until_closed(&mut client, CUT_OFF_WITHIN)
            .await
            .expect("a probe is answered or closed");
        if got.is_empty() {
            break true;
        }
        assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        refused,
        "{MAX_CONNECTIONS} half-open clients, and a further one was still answered"
    );

    drop(slow);
    eventually(
        "/healthz to answer again after the slow clients left",
        Duration::from_secs(30),
        || async {
            http_get(&healthz)
                .await
                .filter(|(status, _)| *status == 200)
        },
    )
    .await;
    let scrape = scrape(port, None).await;
    assert!(counter(&scrape, "wirewatch_http_connections_refused_total", None) >= 1.0);
    assert_eq!(
        counter(&scrape, "wirewatch_http_connections_max", None),
        MAX_CONNECTIONS as f64
    );
    assert_eq!(daemon.terminate().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_is_not_held_up_by_a_client_that_never_finishes_its_request() {
    let dir = TestDir::new();
    let (daemon, port) = start(&dir, "").await;
    let _slow = send(port, b"GET /heal").await;
    // The half-open connection is accepted before the daemon is told to stop.
    let (status, _, _) = get(&format!("http://127.0.0.1:{port}/healthz"), None).await;
    assert_eq!(status, 200);

    assert_eq!(daemon.terminate().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_token_the_api_and_metrics_ask_for_it_the_probes_never_and_a_reload_rotates_it() {
    let dir = TestDir::new();
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (daemon, port) = start(&dir, "api_token_file = \"api-token\"\n").await;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");

    for path in [
        "/api/v1/feeds",
        "/api/v1/matches",
        "/api/v1/stories",
        "/metrics",
        "/nowhere",
    ] {
        let (status, body, challenge) = get(&url(path), None).await;
        assert_eq!(status, 401, "{path} without a token: {body}");
        assert!(challenge.starts_with("Bearer"), "{path}: {challenge:?}");
        let (status, _, challenge) = get(&url(path), Some("not-the-token-0123456789")).await;
        assert_eq!(status, 401, "{path} with a wrong token");
        assert!(challenge.contains("invalid_token"), "{path}: {challenge:?}");
    }
    for path in [
        "/api/v1/feeds",
        "/api/v1/matches",
        "/api/v1/stories",
        "/metrics",
    ] {
        let (status, body, _) = get(&url(path), Some(TOKEN)).await;
        assert_eq!(status, 200, "{path} with the token: {body}");
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(get(&url(path), None).await.0, 200, "{path} without a token");
    }

    let rotated = "5e7a1c9b0d2f4e6a8c1b3d5f7e9a0c2b";
    std::fs::write(&token_file, format!("{rotated}\n")).unwrap();
    daemon.hangup();
    let feeds = url("/api/v1/feeds");
    eventually(
        "the new token to be accepted after SIGHUP",
        Duration::from_secs(30),
        || async { (get(&feeds, Some(rotated)).await.0 == 200).then_some(()) },
    )
    .await;
    assert_eq!(get(&url("/api/v1/feeds"), Some(TOKEN)).await.0, 401);
    assert_eq!(get(&url("/metrics"), Some(TOKEN)).await.0, 401);
    assert_eq!(get(&url("/metrics"), Some(rotated)).await.0, 200);
    assert_eq!(get(&url("/healthz"), None).await.0, 200);
    assert_eq!(daemon.terminate().await, Some(0));
}
