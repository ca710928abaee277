//! Hostile feed servers: a gzip bomb, a trickle, an oversized body and a document whose
//! charset only the HTTP header names. Each is refused (or read) with a classified error
//! on the feed, in bounded memory and time, and the other feeds still alert.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{FeedServer, Item, Receiver, TestDir, rss, stderr, stdout};

/// A raw HTTP/1.1 server answering every request with `head` and then `body`, written
/// in chunks of `chunk` bytes every `pause`.
async fn raw_server(head: String, body: Vec<u8>, chunk: usize, pause: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (head, body) = (head.clone(), body.clone());
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for part in body.chunks(chunk.max(1)) {
                    if socket.write_all(part).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(pause).await;
                }
            });
        }
    });
    addr
}

/// `n` bytes of zeros, gzip-compressed by the system's gzip (about 1000:1).
fn gzip_zeros(n: u64) -> Vec<u8> {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("head -c {n} /dev/zero | gzip -1"))
        .output()
        .expect("gzip runs");
    assert!(output.status.success());
    output.stdout
}

/// Runs `wirewatch poll` with its address space limited to `limit_mib`: a process that
/// tried to hold a decompressed bomb in memory would fail to allocate.
async fn poll_with_memory_limit(dir: &TestDir, limit_mib: u64) -> std::process::Output {
    let command = format!(
        "ulimit -v {}; exec \"$0\" poll --config \"$1\"",
        limit_mib * 1024
    );
    tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .arg(crate::helpers::BIN)
        .arg(dir.config_path())
        .env("MALLOC_ARENA_MAX", "2")
        .output()
        .await
        .unwrap()
}

async fn with_a_good_feed(hostile: &[(&str, String)]) -> (FeedServer, Receiver, TestDir) {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set(
        "good",
        rss(&[Item::new(
            "1",
            "Iran and China sign a pact",
            "https://news.example.org/1",
        )]),
    );
    let mut list = vec![("good", feeds.url("good"))];
    list.extend(hostile.iter().cloned());
    dir.standard_config(&list, &hook.url(), "*/5 * * * *");
    (feeds, hook, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_bomb_is_refused_early_in_bounded_memory() {
    // 1 GiB of zeros in about 1 MiB on the wire.
    let bomb = gzip_zeros(1 << 30);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bomb.len()
    );
    let addr = raw_server(head, bomb, 64 * 1024, Duration::ZERO).await;
    let (_feeds, hook, dir) = with_a_good_feed(&[("bomb", format!("http://{addr}/rss"))]).await;
    dir.poll_settings("max_body = \"4MiB\"");

    let started = Instant::now();
    let out = poll_with_memory_limit(&dir, 768).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("bomb: failed (too_large): too large: the body exceeds 4194304 bytes after decompression"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(hook.received().len(), 1, "the good feed still alerts");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trickling_server_is_cut_off_at_the_deadline() {
    let body = vec![b' '; 100_000];
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let addr = raw_server(head, body, 1, Duration::from_millis(100)).await;
    let (_feeds, hook, dir) = with_a_good_feed(&[("trickle", format!("http://{addr}/rss"))]).await;
    dir.poll_settings("timeout = \"2s\"");
    dir.edit_config(|t| t.replacen("timeout = \"5s\"\n", "", 1));

    let started = Instant::now();
    let out = dir.wirewatch(&["poll"]).await;
    let took = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("trickle: failed (timeout): timed out after 2s"),
        "{}",
        stdout(&out)
    );
    assert!(took < Duration::from_secs(8), "poll took {took:?}");
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_is_refused_before_it_is_read() {
    // Announces 20 MiB, then sends it slowly: a refusal must not wait for it.
    let body = vec![b'x'; 20 << 20];
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let addr = raw_server(head, body, 64 * 1024, Duration::from_millis(50)).await;
    let (_feeds, hook, dir) = with_a_good_feed(&[("huge", format!("http://{addr}/rss"))]).await;
    dir.poll_settings("max_body = \"1MiB\"");

    let started = Instant::now();
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("huge: failed (too_large)"),
        "{}",
        stdout(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(hook.received().len(), 1);

    let feeds = dir.wirewatch(&["feeds", "--json"]).await;
    let feeds: serde_json::Value = serde_json::from_slice(&feeds.stdout).unwrap();
    let huge = feeds
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "huge")
        .unwrap();
    assert_eq!(huge["last_error_class"], "too_large");
    assert!(huge["last_error_at"].is_i64());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_charset_named_only_by_the_http_header_is_decoded() {
    // "Россия и Китай" (Russia and China) in windows-1251, with no XML declaration.
    let title = "Россия и Китай подписали соглашение";
    let (encoded, _, _) = encoding_rs::WINDOWS_1251.encode(title);
    let mut body =
        b"<rss version=\"2.0\"><channel><title>Wire</title><item><guid>1</guid><title>".to_vec();
    body.extend_from_slice(&encoded);
    body.extend_from_slice(b"</title><link>https://news.example.ru/1</link><pubDate>");
    body.extend_from_slice(chrono::Utc::now().to_rfc2822().as_bytes());
    body.extend_from_slice(b"</pubDate></item></channel></rss>");
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=windows-1251\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let addr = raw_server(head, body, 1 << 20, Duration::ZERO).await;
    let dir = TestDir::new();
    let hook = Receiver::start().await;
    dir.standard_config(
        &[("ru", format!("http://{addr}/rss"))],
        &hook.url(),
        "*/5 * * * *",
    );
    dir.edit_config(|t| {
        t.replace(
            "terms = [\"Iran\", \"China\", \"SCO\", \"JCPOA\"]",
            "terms = [\"Iran\", \"China\", \"SCO\", \"JCPOA\", \"Китай\"]",
        )
    });

    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let received = hook.received();
    assert_eq!(received.len(), 1, "{}", stdout(&out));
    assert_eq!(received[0].json()["data"]["item"]["title"], title);
    assert_eq!(
        received[0].json()["data"]["terms"],
        serde_json::json!(["Китай"])
    );
}
