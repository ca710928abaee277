//! Hostile feed servers: a gzip bomb, a trickle, an oversized body and a document whose
//! charset only the HTTP header names. Each is refused (or read) with a classified error
//! on the feed, in bounded memory and time, and the other feeds still alert. And hostile
//! documents: 16 MiB of empty items, read in bounded memory.

use std::net::SocketAddr;
use std::path::Path;
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
    // Inflating the bomb would take far longer: a liveness bound, not a speed target.
    assert!(started.elapsed() < Duration::from_secs(60));
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
    // Uncut, the trickle would take hours.
    assert!(took < Duration::from_secs(60), "poll took {took:?}");
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
    // Read to the end, the slow 20 MiB would take 16 s.
    assert!(started.elapsed() < Duration::from_secs(12));
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

/// Runs `wirewatch test-feed FILE --json` with its address space limited to `limit_mib`.
async fn test_feed_with_memory_limit(
    dir: &TestDir,
    file: &Path,
    limit_mib: u64,
) -> std::process::Output {
    let command = format!(
        "ulimit -v {}; exec \"$0\" test-feed \"$1\" --json --config \"$2\"",
        limit_mib * 1024
    );
    tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .arg(crate::helpers::BIN)
        .arg(file)
        .arg(dir.config_path())
        .env("MALLOC_ARENA_MAX", "2")
        .output()
        .await
        .unwrap()
}

/// A 16 MiB document of one format: `head`, `MAX_ITEMS` items made by `item`, then as many
/// copies of `empty` as fit before `tail`.
struct EmptyItemBomb {
    format: &'static str,
    head: &'static str,
    item: fn(usize) -> String,
    empty: &'static str,
    tail: &'static str,
}

impl EmptyItemBomb {
    fn document(&self) -> Vec<u8> {
        const SIZE: usize = 16 << 20;
        let mut doc = String::with_capacity(SIZE);
        doc.push_str(self.head);
        for n in 0..wirewatch::parse::MAX_ITEMS {
            doc.push_str(&(self.item)(n));
        }
        while doc.len() + self.empty.len() + self.tail.len() <= SIZE {
            doc.push_str(self.empty);
        }
        doc.push_str(self.tail);
        doc.into_bytes()
    }
}

/// 16 MiB documents (`max_body`) of 10,000 items with an id, then empty items: RSS, Atom
/// and JSON Feed.
fn empty_item_bombs() -> [EmptyItemBomb; 3] {
    [
        EmptyItemBomb {
            format: "rss",
            head: "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>bomb</title>",
            item: |n| format!("<item><guid>g{n}</guid></item>"),
            empty: "<item/>",
            tail: "</channel></rss>",
        },
        EmptyItemBomb {
            format: "atom",
            head: "<?xml version=\"1.0\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>bomb</title>",
            item: |n| format!("<entry><id>e{n}</id></entry>"),
            empty: "<entry/>",
            tail: "</feed>",
        },
        EmptyItemBomb {
            format: "json",
            head: "{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \"bomb\", \"items\": [",
            item: |n| format!("{{\"id\": \"j{n}\"}},"),
            empty: "{},",
            tail: "{}]}",
        },
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_mib_of_empty_items_are_read_in_bounded_memory() {
    // Before the document caps, feed-rs built every entry before any was dropped: 1.5 to
    // 8 GB for these documents. 512 MiB of address space holds the debug binary, its
    // threads and a 16 MiB document a few times over (it needs under 200 MiB), not millions
    // of entries.
    let bombs = empty_item_bombs();
    let dir = TestDir::new();
    dir.standard_config(&[], "http://127.0.0.1:9/hook", "*/5 * * * *");
    for bomb in &bombs {
        let format = bomb.format;
        let file = dir.path().join(format!("bomb-{format}"));
        std::fs::write(&file, bomb.document()).unwrap();

        let out = test_feed_with_memory_limit(&dir, &file, 512).await;
        assert!(out.status.success(), "{format}: {}", stderr(&out));
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let items = shown["items"].as_array().unwrap();
        assert_eq!(items.len(), wirewatch::parse::MAX_ITEMS, "{format}");
        assert!(
            shown["dropped_items"].as_u64().unwrap() > 1_000_000,
            "{format}"
        );
        assert_eq!(items[0]["title"], "", "{format}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_of_six_sixteen_mib_bombs_stays_in_bounded_memory_and_the_good_feed_alerts() {
    // Before the caps, two such feeds took a poll to 15 GB. Each document now parses
    // within its caps, and bodies past 1 MiB wait for one of two large-body slots, so of
    // the six in flight at once no more than two are in memory whole.
    let bombs = FeedServer::start().await;
    let mut hostile = Vec::new();
    for bomb in empty_item_bombs() {
        let doc = String::from_utf8(bomb.document()).unwrap();
        for copy in 1..=2 {
            let name: &'static str = format!("bomb-{}-{copy}", bomb.format).leak();
            bombs.set(name, doc.clone());
            hostile.push((name, bombs.url(name)));
        }
    }
    let (_feeds, hook, dir) = with_a_good_feed(&hostile).await;

    let out = poll_with_memory_limit(&dir, 768).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for (name, _) in &hostile {
        assert!(
            text.contains(&format!("{name}: 10000 items, 10000 new, 0 matches")),
            "{text}"
        );
    }
    assert!(
        stderr(&out).contains("the document is past the parse caps"),
        "the cut is logged: {}",
        stderr(&out)
    );
    assert_eq!(hook.received().len(), 1, "the good feed still alerts");
}
