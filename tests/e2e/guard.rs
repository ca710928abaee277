//! The network guard (SPEC §9) from the outside: with `allow_private_networks = false`, no
//! spelling of a loopback address lets a feed fetch or a webhook POST reach the servers the
//! tests run on 127.0.0.1; with private networks allowed, the same URLs work.

use std::net::SocketAddr;

use crate::helpers::{
    FeedServer, Item, Receiver, Reply, SECRET, TestDir, rss, stderr, stdout,
    wait_until_retries_are_due,
};

/// Spellings of 127.0.0.1 (and of addresses a Linux connect() sends to it) as URL hosts.
/// The url crate turns every IPv4 one into 127.0.0.1 / 0.0.0.0; the guard must not care.
fn literal_spellings(port: u16) -> Vec<String> {
    [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "017700000001",
        "127.1",
        "127.0.1",
        "127.000.000.001",
        "127.0.0.1.",
        "%31%32%37.0.0.1",
        "0",
        "0.0.0.0",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
    ]
    .iter()
    .map(|host| format!("{host}:{port}"))
    .collect()
}

/// Names that resolve to 127.0.0.1: checked when resolved, not when the config loads.
fn name_spellings(port: u16) -> Vec<String> {
    ["localhost", "LOCALHOST", "LocalHost"]
        .iter()
        .map(|host| format!("{host}:{port}"))
        .collect()
}

fn config(allow_private: bool, feeds: &[(String, String)], hooks: &str) -> String {
    let mut text = format!(
        r#"[daemon]
state_dir = "state"
listen = ""

[poll]
schedule = "*/5 * * * *"
allow_private_networks = {allow_private}
timeout = "5s"
"#
    );
    for (name, url) in feeds {
        text.push_str(&format!(
            "\n[[feeds]]\nname = \"{name}\"\nurl = \"{url}\"\n"
        ));
    }
    text.push_str(hooks);
    text
}

/// One watch-list alerting webhook `siem` at `url`.
fn siem(url: &str, allow_private_network: bool) -> String {
    format!(
        r#"
[[watchlists]]
name = "iran-china"
terms = ["Iran", "China"]
webhooks = ["siem"]

[[webhooks]]
name = "siem"
url = "{url}"
secret = "{SECRET}"
timeout = "5s"
retry_schedule = ["1s", "1s", "1s", "1s"]
allow_private_network = {allow_private_network}
"#
    )
}

fn feeds_at(server: &FeedServer, hosts: &[String]) -> Vec<(String, String)> {
    hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = format!("s{i}");
            server.set(
                &name,
                rss(&[Item::new("1", "Iran", "https://news.example.org/1")]),
            );
            let url = format!("http://{host}/feeds/{name}");
            (name, url)
        })
        .collect()
}

fn port(addr: SocketAddr) -> u16 {
    addr.port()
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_private_literals_in_feed_and_webhook_urls_with_their_position() {
    let (server, dir) = (FeedServer::start().await, TestDir::new());
    let literals = literal_spellings(port(server.addr));
    let mut hosts = literals.clone();
    hosts.extend(name_spellings(port(server.addr)));
    let feeds = feeds_at(&server, &hosts);
    dir.write_config(&config(
        false,
        &feeds,
        &siem("http://[::ffff:7f00:1]:1/hook", false),
    ));

    let out = dir.wirewatch(&["check"]).await;

    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let errors = stderr(&out);
    let refused: Vec<&str> = errors.lines().filter(|l| l.contains("refused: ")).collect();
    // Every literal feed URL and the webhook; the names pass (they are checked when
    // resolved).
    assert_eq!(refused.len(), literals.len() + 1, "{errors}");
    let path = dir.config_path().display().to_string();
    for line in &refused {
        assert!(line.starts_with(&format!("{path}:")), "{line}");
    }
    let first_feed_line = 1 + line_index_of(&dir, "url = \"http://127.0.0.1:");
    assert!(
        errors.contains(&format!(
            "{path}:{first_feed_line}:7: feed url: refused: 127.0.0.1 is a loopback address (set poll.allow_private_networks = true to allow)"
        )),
        "{errors}"
    );
    assert!(
        errors.contains("webhook url: refused: ::ffff:127.0.0.1 is an IPv6 address embedding 127.0.0.1, a loopback address (set allow_private_network = true on the webhook"),
        "{errors}"
    );
    assert!(server.all_hits().is_empty());

    // The webhook's own flag lets its URL through; the feeds stay refused.
    dir.write_config(&config(
        false,
        &[],
        &siem("http://[::ffff:7f00:1]:1/hook", true),
    ));
    let out = dir.wirewatch(&["check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The 0-based index of the first line of the config containing `needle`.
fn line_index_of(dir: &TestDir, needle: &str) -> usize {
    let text = std::fs::read_to_string(dir.config_path()).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_spelling_of_loopback_reaches_the_feed_server_at_run_time() {
    let (server, dir) = (FeedServer::start().await, TestDir::new());
    server.set(
        "wire",
        rss(&[Item::new("1", "Iran", "https://news.example.org/1")]),
    );

    // A URL that never went through the config (here `test-feed`; in the daemon a
    // redirect target or a stored permanent move) is checked when connecting.
    dir.write_config(&config(false, &[], ""));
    let mut hosts = literal_spellings(port(server.addr));
    hosts.extend(name_spellings(port(server.addr)));
    for host in &hosts {
        let url = format!("http://{host}/feeds/wire");
        let out = dir.wirewatch(&["test-feed", &url]).await;
        let errors = stderr(&out);
        assert!(!out.status.success(), "{url} was fetched: {}", stdout(&out));
        // `0`, `0.0.0.0` and `[::]` are "the unspecified address", the rest loopback.
        assert!(
            errors.contains("refused: ")
                && (errors.contains("a loopback address")
                    || errors.contains("the unspecified address"))
                && errors.contains("(set poll.allow_private_networks = true to allow)"),
            "{url}: {errors}"
        );
    }

    // Feeds whose names resolve inside fail at poll time, with the reason stored.
    let names = name_spellings(port(server.addr));
    let feeds = feeds_at(&server, &names);
    dir.write_config(&config(false, &feeds, ""));
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for (name, _) in &feeds {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"));
        assert!(
            line.contains("failed (")
                && line.contains("refused: localhost resolves to 127.0.0.1, a loopback address (set poll.allow_private_networks = true to allow)"),
            "{line}"
        );
    }
    let out = dir.wirewatch(&["feeds", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("refused: localhost resolves to 127.0.0.1"),
        "{}",
        stdout(&out)
    );

    assert!(
        server.all_hits().is_empty(),
        "requests reached the server: {:?}",
        server.all_hits()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_private_networks_allowed_the_same_urls_are_fetched() {
    let (server, dir) = (FeedServer::start().await, TestDir::new());
    let mut hosts = literal_spellings(port(server.addr));
    hosts.extend(name_spellings(port(server.addr)));
    let feeds = feeds_at(&server, &hosts);
    dir.write_config(&config(true, &feeds, ""));

    let out = dir.wirewatch(&["poll"]).await;

    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for (name, url) in &feeds {
        assert!(
            text.contains(&format!("{name}: 1 items, 1 new")),
            "{url}: {text}"
        );
        assert_eq!(server.hits(name).len(), 1, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_inside_is_refused_unless_it_allows_private_networks() {
    let (server, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    server.set(
        "wire",
        rss(&[Item::new(
            "1",
            "Iran and China",
            "https://news.example.org/1",
        )]),
    );
    let feed = vec![("wire".to_string(), server.url("wire"))];
    let inside = format!("http://localhost:{}/hook", port(hook.addr));
    // Arrange an alert in the outbox: private networks allowed, the receiver failing once.
    hook.then([Reply::status(503)]);
    dir.write_config(&config(true, &feed, &siem(&hook.url(), false)));
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(hook.received().len(), 1);

    // Private networks refused: the retry is refused before any request.
    let feed = vec![(
        "wire".to_string(),
        format!("http://localhost:{}/feeds/wire", port(server.addr)),
    )];
    dir.write_config(&config(false, &feed, &siem(&inside, false)));
    wait_until_retries_are_due(&dir).await;
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("deliveries: 0 delivered, 1 to retry"),
        "{}",
        stdout(&out)
    );
    assert_eq!(hook.received().len(), 1, "the refused attempt sent nothing");
    let out = dir.wirewatch(&["deliveries", "--json"]).await;
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &listed["deliveries"][0];
    assert_eq!(row["attempts"], 2, "{listed}");
    let error = row["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("refused: localhost resolves to 127.0.0.1, a loopback address (set allow_private_network = true on the webhook"),
        "{error}"
    );

    // The webhook's own flag lets it through (the feeds stay refused).
    dir.write_config(&config(false, &feed, &siem(&inside, true)));
    wait_until_retries_are_due(&dir).await;
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("deliveries: 1 delivered"),
        "{}",
        stdout(&out)
    );
    let received = hook.received();
    assert_eq!(received.len(), 2);
    assert!(received[1].accepted());
    assert!(stdout(&out).contains("wire: failed ("), "{}", stdout(&out));
    assert_eq!(
        server.hits("wire").len(),
        1,
        "only the first, allowed fetch"
    );
}
