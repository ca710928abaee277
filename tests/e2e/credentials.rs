//! A feed URL's credentials never leave the process: alert bodies of every format, the
//! HTTP API, the CLI and the logs show `REDACTED` where the token was, and keep the rest
//! of the query, which is what identifies a search feed.

use std::time::Duration;

use crate::helpers::{
    FeedServer, Hook, Item, Receiver, TestDir, eventually, http_get, rss, stderr, stdout,
};

const TOKEN: &str = "s3cret-feed-token";
const SESSION: &str = "own-session-value";

#[tokio::test(flavor = "multi_thread")]
async fn a_token_in_a_feed_url_is_shown_as_redacted_everywhere_it_leaves_the_process() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set(
        "search",
        rss(&[Item::new(
            "1",
            "Iran and China sign a pact",
            "https://news.example.org/1",
        )]),
    );
    let url = format!(
        "{}?q=iran+china&token={TOKEN}&session={SESSION}",
        feeds.url("search")
    );
    let shown = format!(
        "{}?q=iran+china&token=REDACTED&session=REDACTED",
        feeds.url("search")
    );
    let hooks: Vec<Hook> = [
        ("json-hook", "json"),
        ("slack-hook", "slack"),
        ("discord-hook", "discord"),
        ("teams-hook", "teams"),
    ]
    .into_iter()
    .map(|(name, format)| Hook::new(name, &hook.url()).format(format))
    .collect();
    dir.config_with(&[("search", url)], &hooks, "*/5 * * * *");
    // `session` is this feed's own credential, beyond the default list.
    dir.edit_config(|text| {
        text.replacen(
            &format!("session={SESSION}\"\n"),
            &format!("session={SESSION}\"\nredact_params = [\"session\"]\n"),
            1,
        )
    });

    let check = dir.wirewatch(&["check"]).await;
    assert!(check.status.success(), "{}", stderr(&check));
    let out = tokio::process::Command::new(crate::helpers::BIN)
        .args(["poll", "--config"])
        .arg(dir.config_path())
        .env("RUST_LOG", "debug")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let received = hook.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 4);
    let json = received
        .iter()
        .find(|r| r.json()["type"] == "watchlist.match")
        .expect("the json body");
    assert_eq!(json.json()["data"]["feed"]["url"], shown.as_str());
    let feeds_json = dir.wirewatch(&["feeds", "--json"]).await;
    let feeds_listed: serde_json::Value = serde_json::from_slice(&feeds_json.stdout).unwrap();
    assert_eq!(feeds_listed[0]["url"], shown.as_str());
    assert!(stdout(&check).contains(&shown), "{}", stdout(&check));
    let exported = dir.wirewatch(&["opml", "export"]).await;
    assert!(
        stdout(&exported).contains(&shown.replace('&', "&amp;")),
        "{}",
        stdout(&exported)
    );
    // Only on request, for moving the feeds to another reader.
    let exact = dir
        .wirewatch(&["opml", "export", "--with-credentials"])
        .await;
    assert!(stdout(&exact).contains(TOKEN), "{}", stdout(&exact));

    // The API of a running daemon, and its logs.
    let port = dir.listen_on_free_port();
    let log = dir.path().join("daemon.log");
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg("exec \"$0\" run --config \"$1\" 2>\"$2\"")
        .arg(crate::helpers::BIN)
        .arg(dir.config_path())
        .arg(&log)
        .env("RUST_LOG", "debug");
    let daemon = dir.spawn_command(command);
    let api = format!("http://127.0.0.1:{port}/api/v1/feeds");
    let listed = eventually("the API to answer", Duration::from_secs(20), || async {
        match http_get(&api).await {
            Some((200, body)) => Some(body),
            _ => None,
        }
    })
    .await;
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["url"], shown.as_str());
    assert_eq!(daemon.terminate().await, Some(0));

    let everything = [
        received
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect::<Vec<_>>()
            .join("\n"),
        stdout(&check),
        stderr(&check),
        stdout(&out),
        stderr(&out),
        stdout(&feeds_json),
        std::fs::read_to_string(&log).unwrap(),
        stdout(&exported),
    ];
    for (place, text) in [
        "webhook bodies",
        "check stdout",
        "check stderr",
        "poll stdout",
        "poll logs",
        "feeds --json",
        "daemon logs",
        "opml export",
    ]
    .iter()
    .zip(&everything)
    {
        assert!(
            !text.contains(TOKEN) && !text.contains(SESSION),
            "{place} show a credential:\n{text}"
        );
    }
}
