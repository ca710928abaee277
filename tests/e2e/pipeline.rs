//! The whole pipeline through `wirewatch poll`: alerts once per story and watch-list,
//! conditional GET, cross-feed story de-duplication, backfill.

use std::time::Duration;

use crate::helpers::{FeedServer, Item, Receiver, TestDir, rss, stderr, stdout};

fn wire_items() -> Vec<Item<'static>> {
    vec![
        Item::new(
            "a-1",
            "Iran and China sign a 25-year pact",
            "https://news.example.org/world/pact?id=1",
        ),
        Item {
            description: "Ministers of the Shanghai Cooperation Organisation met in Astana.",
            ..Item::new(
                "a-2",
                "Summit in Astana",
                "https://news.example.org/world/summit",
            )
        },
        Item::new(
            "a-3",
            "Scotland beat Wales in a friendly",
            "https://news.example.org/sport/scotland",
        ),
    ]
}

fn titles(received: &[crate::helpers::Received]) -> Vec<String> {
    let mut titles: Vec<String> = received
        .iter()
        .map(|r| {
            r.json()["data"]["item"]["title"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    titles.sort();
    titles
}

#[tokio::test(flavor = "multi_thread")]
async fn two_polls_of_an_unchanged_feed_alert_once_and_the_second_fetch_is_a_304() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("wire", rss(&wire_items()));
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "*/5 * * * *");

    let first = dir.wirewatch(&["poll"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let second = dir.wirewatch(&["poll"]).await;
    assert!(second.status.success(), "{}", stderr(&second));

    let received = hook.received();
    assert_eq!(
        titles(&received),
        ["Iran and China sign a 25-year pact", "Summit in Astana"]
    );
    let statuses: Vec<u16> = feeds.hits("wire").iter().map(|h| h.status).collect();
    assert_eq!(statuses, [200, 304]);
    assert!(
        stdout(&second).contains("wire: not modified"),
        "{}",
        stdout(&second)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_names_the_watchlist_terms_and_highlights_of_spec_section_5() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("wire", rss(&wire_items()[1..2]));
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "*/5 * * * *");

    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));

    let received = hook.received();
    assert_eq!(received.len(), 1);
    let body = received[0].json();
    assert_eq!(body["type"], "watchlist.match");
    let data = &body["data"];
    assert_eq!(data["watchlist"], "iran-china");
    assert_eq!(data["terms"], serde_json::json!(["SCO"]));
    assert_eq!(data["feed"]["name"], "wire");
    assert_eq!(data["feed"]["title"], "Test wire");
    assert_eq!(data["item"]["url"], "https://news.example.org/world/summit");
    let highlight = &data["highlights"][0];
    assert_eq!(highlight["field"], "summary");
    assert_eq!(highlight["term"], "SCO");
    let summary = data["item"]["summary"].as_str().unwrap();
    let (start, end) = (
        highlight["start"].as_u64().unwrap() as usize,
        highlight["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&summary[start..end], "Shanghai Cooperation Organisation");
    assert_eq!(received[0].header("content-type"), "application/json");
    assert!(received[0].header("webhook-id").starts_with("msg_"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_story_in_another_feed_is_not_alerted_again_but_new_items_are() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("wire", rss(&wire_items()));
    // The same pact story, its link differing only by tracking parameters, fragment
    // and host case; its guid and title differ as they would in another outlet.
    feeds.set(
        "mirror",
        rss(&[Item::new(
            "mirror-77",
            "Iran, China sign long-term pact",
            "https://NEWS.Example.org/world/pact?utm_source=rss&id=1&utm_medium=feed&fbclid=xyz#top",
        )]),
    );
    dir.standard_config(
        &[("wire", feeds.url("wire")), ("mirror", feeds.url("mirror"))],
        &hook.url(),
        "*/5 * * * *",
    );

    let out = dir.wirewatch(&["poll", "wire"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(hook.received().len(), 2);
    let out = dir.wirewatch(&["poll", "mirror"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        hook.received().len(),
        2,
        "the mirrored story must not alert twice"
    );

    // One new matching item and one that matches nothing.
    feeds.set(
        "mirror",
        rss(&[
            Item::new(
                "mirror-77",
                "Iran, China sign long-term pact",
                "https://NEWS.Example.org/world/pact?utm_source=rss&id=1#top",
            ),
            Item::new(
                "mirror-78",
                "JCPOA talks resume in Vienna",
                "https://mirror.example.net/jcpoa",
            ),
            Item::new(
                "mirror-79",
                "Chinatown festival draws crowds",
                "https://mirror.example.net/festival",
            ),
        ]),
    );
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let received = hook.received();
    assert_eq!(received.len(), 3);
    assert_eq!(
        received[2].json()["data"]["item"]["title"],
        "JCPOA talks resume in Vienna"
    );
    assert_eq!(
        received[2].json()["data"]["terms"],
        serde_json::json!(["JCPOA"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_fetch_alerts_only_items_inside_the_backfill_window() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set(
        "wire",
        rss(&[
            Item::new(
                "new",
                "China opens a new port",
                "https://news.example.org/new",
            ),
            Item {
                published: Some("Mon, 02 Jan 2023 10:00:00 +0000"),
                ..Item::new(
                    "old",
                    "Iran holds elections",
                    "https://news.example.org/old",
                )
            },
        ]),
    );
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "*/5 * * * *");

    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(titles(&hook.received()), ["China opens a new port"]);

    // The old item is stored and listed as a match, but never alerts later either.
    let listed = dir.wirewatch(&["matches", "--json"]).await;
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success());
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn matches_can_be_filtered_by_watchlist_time_and_text() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("wire", rss(&wire_items()));
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "*/5 * * * *");
    assert!(dir.wirewatch(&["poll"]).await.status.success());

    let all = dir.wirewatch(&["matches", "--since", "1h", "--json"]).await;
    let all: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);

    let found = dir
        .wirewatch(&["matches", "--search", "25-year", "--json"])
        .await;
    let found: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["terms"], serde_json::json!(["China", "Iran"]));

    let none = dir
        .wirewatch(&["matches", "--watchlist", "other", "--json"])
        .await;
    let none: serde_json::Value = serde_json::from_slice(&none.stdout).unwrap();
    assert!(none.as_array().unwrap().is_empty());

    let text = dir.wirewatch(&["matches", "--limit", "1"]).await;
    assert_eq!(
        stdout(&text)
            .lines()
            .filter(|l| l.contains("iran-china"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_feed_shows_items_and_why_they_match() {
    let dir = TestDir::new();
    dir.standard_config(&[], "http://127.0.0.1:9/hook", "*/5 * * * *");
    let file = dir.path().join("sample.xml");
    std::fs::write(&file, rss(&wire_items())).unwrap();

    let out = dir
        .wirewatch(&["test-feed", file.to_str().unwrap(), "--json"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = shown["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["key"], "guid:a-1");
    assert_eq!(
        items[0]["matches"][0]["terms"],
        serde_json::json!(["China", "Iran"])
    );
    assert_eq!(items[0]["matches"][0]["highlights"][0]["start"], 0);
    assert!(
        items[2]["matches"].as_array().unwrap().is_empty(),
        "Scotland is not SCO"
    );

    let text = dir.wirewatch(&["test-feed", file.to_str().unwrap()]).await;
    assert!(
        stdout(&text).contains("3 items, 2 matching"),
        "{}",
        stdout(&text)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_feed_is_reported_and_the_others_still_alert() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("wire", rss(&wire_items()));
    feeds.set(
        "broken",
        "<html><head><title>Sorry</title></head><body>gone</body></html>".into(),
    );
    dir.standard_config(
        &[
            ("wire", feeds.url("wire")),
            ("broken", feeds.url("broken")),
            ("missing", feeds.url("missing")),
        ],
        &hook.url(),
        "*/5 * * * *",
    );

    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("broken: failed (not_a_feed): not a feed: an HTML page (\"Sorry\")"),
        "{text}"
    );
    assert!(
        text.contains("missing: failed (http_status): http status 404"),
        "{text}"
    );
    assert_eq!(hook.wait_for(2, Duration::from_secs(1)).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_shows_what_would_alert_and_stores_nothing() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("wire", rss(&wire_items()));
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "*/5 * * * *");

    let out = dir.wirewatch(&["poll", "--dry-run"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("wire: 3 items, 3 new (dry run"), "{text}");
    assert!(
        text.contains("would match iran-china [China, Iran]: Iran and China sign a 25-year pact"),
        "{text}"
    );
    assert!(!text.contains("Scotland"), "{text}");
    assert!(hook.received().is_empty(), "a dry run sends nothing");

    // Nothing was stored: the real poll still finds every item new and alerts.
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(hook.received().len(), 2);
}
