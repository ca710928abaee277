//! What the listings show of a story (SPEC §10): two feeds carrying the same link are one
//! story, which `wirewatch matches` shows with its reach (items, feeds) and `wirewatch
//! stories` and `GET /api/v1/stories` list with the items of both feeds.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{
    FeedServer, Item, Receiver, TestDir, eventually, http_get, rss, stderr, stdout,
};

/// `wire` carries a pact story, a summit story and a football story; `mirror` carries the
/// pact story under a link that differs only by tracking parameters, fragment and host
/// case, and a story that matches nothing. `wire` is polled first, then `mirror`.
async fn two_feeds_one_story(feeds: &FeedServer, hook: &Receiver, dir: &TestDir) {
    feeds.set(
        "wire",
        rss(&[
            Item::new(
                "a-1",
                "Iran and China sign a 25-year pact",
                "https://news.example.org/world/pact?id=1",
            ),
            Item::new(
                "a-2",
                "SCO summit opens in Astana",
                "https://news.example.org/world/summit",
            ),
            Item::new(
                "a-3",
                "Scotland beat Wales in a friendly",
                "https://news.example.org/sport/scotland",
            ),
        ]),
    );
    feeds.set(
        "mirror",
        rss(&[
            Item::new(
                "mirror-77",
                "Iran, China sign long-term pact",
                "https://NEWS.Example.org/world/pact?utm_source=rss&id=1#top",
            ),
            Item::new(
                "mirror-79",
                "Chinatown festival draws crowds",
                "https://mirror.example.net/festival",
            ),
        ]),
    );
    dir.standard_config(
        &[("wire", feeds.url("wire")), ("mirror", feeds.url("mirror"))],
        &hook.url(),
        "*/5 * * * *",
    );
    for feed in ["wire", "mirror"] {
        let out = dir.wirewatch(&["poll", feed]).await;
        assert!(out.status.success(), "poll {feed}: {}", stderr(&out));
    }
}

async fn json(dir: &TestDir, args: &[&str]) -> Value {
    let out = dir.wirewatch(args).await;
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|err| panic!("{args:?}: {err}"))
}

/// The story listed with this title.
fn titled<'a>(listing: &'a Value, title: &str) -> &'a Value {
    listing["stories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|story| story["title"] == title)
        .unwrap_or_else(|| panic!("no story {title:?} in {listing:#}"))
}

/// The names of an object's fields, sorted.
fn fields(value: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

fn is_utc_time(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|t| t.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(t).is_ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_match_on_a_link_two_feeds_carry_shows_one_story_seen_in_both() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    two_feeds_one_story(&feeds, &hook, &dir).await;

    // One alert per story: the mirror's copy of the pact is a sighting.
    let matches = json(&dir, &["matches", "--json"]).await;
    let matches = matches.as_array().unwrap();
    assert_eq!(matches.len(), 2, "{matches:#?}");
    let pact = matches
        .iter()
        .find(|m| m["title"] == "Iran and China sign a 25-year pact")
        .unwrap();
    assert_eq!((&pact["sightings"], &pact["feeds"]), (&2.into(), &2.into()));
    let summit = matches
        .iter()
        .find(|m| m["title"] == "SCO summit opens in Astana")
        .unwrap();
    assert_eq!(
        (&summit["sightings"], &summit["feeds"]),
        (&1.into(), &1.into())
    );
    assert!(pact["story_id"].is_string() && summit["story_id"].is_string());
    assert_ne!(pact["story_id"], summit["story_id"]);
    let text = stdout(&dir.wirewatch(&["matches"]).await);
    assert!(text.contains("(wire; seen in 2 feeds)"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stories_lists_a_link_two_feeds_carry_as_one_story_with_the_items_of_both() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    two_feeds_one_story(&feeds, &hook, &dir).await;
    let matches = json(&dir, &["matches", "--json"]).await;
    let pact = matches
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["title"] == "Iran and China sign a 25-year pact")
        .unwrap();

    // Only the stories that matched, with exactly the fields of SPEC §10.
    let listing = json(&dir, &["stories", "--json"]).await;
    assert_eq!(fields(&listing), ["stories"]);
    assert_eq!(
        listing["stories"].as_array().unwrap().len(),
        2,
        "{listing:#}"
    );
    let story = titled(&listing, "Iran and China sign a 25-year pact");
    assert_eq!(
        fields(story),
        [
            "feeds",
            "first_seen",
            "id",
            "items",
            "last_seen",
            "title",
            "watchlists"
        ]
    );
    assert_eq!(story["id"], pact["story_id"]);
    assert_eq!(story["feeds"], 2);
    assert_eq!(story["watchlists"], serde_json::json!(["iran-china"]));
    assert!(is_utc_time(&story["first_seen"]) && is_utc_time(&story["last_seen"]));
    let items = story["items"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = items
        .iter()
        .map(|item| {
            (
                item["feed"].as_str().unwrap(),
                item["title"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("wire", "Iran and China sign a 25-year pact"),
            ("mirror", "Iran, China sign long-term pact"),
        ]
    );
    for item in items {
        assert_eq!(fields(item), ["feed", "seen", "title", "url"]);
        assert!(is_utc_time(&item["seen"]), "{item}");
        let url = item["url"].as_str().unwrap().to_lowercase();
        assert!(
            url.starts_with("https://news.example.org/world/pact"),
            "{item}"
        );
    }
    assert_eq!(titled(&listing, "SCO summit opens in Astana")["feeds"], 1);

    let text = stdout(&dir.wirewatch(&["stories"]).await);
    assert!(
        text.contains("2 feeds  [iran-china]  Iran and China sign a 25-year pact\n"),
        "{text}"
    );
    assert!(
        text.contains("    mirror: Iran, China sign long-term pact  https://"),
        "{text}"
    );
    let none = json(
        &dir,
        &["stories", "--json", "--watchlist", "nothing-like-it"],
    )
    .await;
    assert_eq!(none, serde_json::json!({ "stories": [] }));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_lists_the_stories_as_the_command_does() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    two_feeds_one_story(&feeds, &hook, &dir).await;
    let listing = json(&dir, &["stories", "--json"]).await;
    let port = dir.listen_on_free_port();
    let daemon = dir.spawn_daemon();
    let stories = format!("http://127.0.0.1:{port}/api/v1/stories");
    let (status, body) = eventually("the API to answer", Duration::from_secs(30), || {
        http_get(&stories)
    })
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), listing);
    let (status, body) = http_get(&format!("{stories}?watchlist=iran-china&since=1h&limit=1"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let one: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(one["stories"], serde_json::json!([listing["stories"][0]]));
    let (status, body) = http_get(&format!("{stories}?since=yesterday"))
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(daemon.terminate().await, Some(0));
}
