//! The alert policy (SPEC §11) with the real binary: a rate limit's overflow goes to the
//! digest and every story arrives exactly once across single alerts and digests; a digest
//! period with nothing in it sends nothing; a muted watch-list sends nothing, across a
//! reload and a restart, until unmuted; `explain` gives the reason of each kind.

use std::collections::HashMap;
use std::time::Duration;

use crate::helpers::{
    FeedServer, Item, Received, Receiver, SECRET, TestDir, eventually, http_get, rss, stderr,
    stdout,
};

fn config(dir: &TestDir, feeds: &FeedServer, hook: &str, watchlists: &str, schedule: &str) {
    dir.write_config(&format!(
        r#"[daemon]
state_dir = "state"
listen = ""

[poll]
schedule = "{schedule}"
allow_private_networks = true
backfill = "6h"

[[feeds]]
name = "wire"
url = "{wire}"

[[feeds]]
name = "mirror"
url = "{mirror}"

{watchlists}

[[webhooks]]
name = "desk"
url = "{hook}"
secret = "{SECRET}"
retry_schedule = ["1s"]
"#,
        wire = feeds.url("wire"),
        mirror = feeds.url("mirror"),
    ));
}

fn kind(r: &Received) -> String {
    r.json()["type"].as_str().unwrap_or_default().to_owned()
}

/// Stories `0..count`, newest first, each its own event.
fn stories(count: usize) -> String {
    let titles: Vec<String> = (0..count)
        .map(|n| {
            format!(
                "Iran story {n}: {}",
                [
                    "talks",
                    "sanctions",
                    "exports",
                    "drills",
                    "vote",
                    "visit",
                    "accord",
                    "tanker"
                ][n % 8]
            )
        })
        .collect();
    let links: Vec<String> = (0..count)
        .map(|n| format!("https://wire.example.org/{n}"))
        .collect();
    let guids: Vec<String> = (0..count).map(|n| format!("g{n}")).collect();
    let descriptions: Vec<String> = (0..count)
        .map(|n| format!("Report {n} on a separate event, with its own wording number {n}."))
        .collect();
    let mut items: Vec<Item> = (0..count)
        .map(|n| Item {
            description: &descriptions[n],
            ..Item::new(&guids[n], &titles[n], &links[n])
        })
        .collect();
    items.reverse();
    rss(&items)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_overflows_into_the_digest_and_every_story_arrives_once() {
    let (feeds, dir, desk) = (
        FeedServer::start().await,
        TestDir::new(),
        Receiver::start().await,
    );
    config(
        &dir,
        &feeds,
        &desk.url(),
        r#"[[watchlists]]
name = "iran"
terms = ["Iran"]
max_alerts = "2/h"
digest = "*/2 * * * * *"
webhooks = ["desk"]"#,
        "every 1s",
    );
    let port = dir.listen_on_free_port();
    feeds.set("wire", stories(5));
    feeds.set("mirror", rss(&[]));
    let daemon = dir.spawn_daemon();

    // Two single alerts, then the other three stories in a digest.
    let received = desk
        .wait_until(Duration::from_secs(30), |r| {
            r.iter()
                .any(|r| r.accepted() && kind(r) == "watchlist.digest")
        })
        .await;
    let singles: Vec<String> = received
        .iter()
        .filter(|r| kind(r) == "watchlist.match")
        .map(|r| {
            r.json()["data"]["item"]["title"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(singles.len(), 2, "{singles:?}");
    let first = received
        .iter()
        .find(|r| kind(r) == "watchlist.digest")
        .unwrap()
        .json();
    assert_eq!(first["data"]["watchlist"], "iran");
    assert_eq!(first["data"]["count"], 3);
    let digested: Vec<String> = first["data"]["stories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap().to_owned())
        .collect();
    let mut all: Vec<String> = singles.iter().chain(&digested).cloned().collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        5,
        "every story once across singles and digest: {all:?}"
    );
    let (_, metrics) = http_get(&format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"wirewatch_suppressed_total{watchlist="iran",reason="rate_limited"} 3"#),
        "{metrics}"
    );

    // Periods with nothing in them pass (the feed is polled every second, the digest
    // ticks every two); then one more story, past the limit, comes in the next digest,
    // whose period starts where the first one ended: nothing was sent in between.
    let polled = feeds.hits("wire").len();
    eventually("six more polls", Duration::from_secs(30), || async {
        (feeds.hits("wire").len() >= polled + 6).then_some(())
    })
    .await;
    assert_eq!(
        desk.received()
            .iter()
            .filter(|r| kind(r) == "watchlist.digest")
            .count(),
        1,
        "an empty period sends nothing"
    );
    feeds.set("wire", stories(6));
    let received = desk
        .wait_until(Duration::from_secs(30), |r| {
            r.iter().filter(|r| kind(r) == "watchlist.digest").count() >= 2
        })
        .await;
    let digests: Vec<serde_json::Value> = received
        .iter()
        .filter(|r| kind(r) == "watchlist.digest")
        .map(Received::json)
        .collect();
    assert_eq!(digests[1]["data"]["count"], 1);
    assert_eq!(
        digests[1]["data"]["stories"][0]["title"],
        "Iran story 5: visit"
    );
    assert_eq!(
        digests[1]["data"]["period"]["from"],
        digests[0]["data"]["period"]["to"]
    );
    let from = chrono::DateTime::parse_from_rfc3339(
        digests[1]["data"]["period"]["from"].as_str().unwrap(),
    )
    .unwrap();
    let to =
        chrono::DateTime::parse_from_rfc3339(digests[1]["data"]["period"]["to"].as_str().unwrap())
            .unwrap();
    assert!(
        (to - from).num_seconds() >= 4,
        "the second digest spans the empty ticks: {from} .. {to}"
    );
    assert_eq!(
        received
            .iter()
            .filter(|r| kind(r) == "watchlist.match")
            .count(),
        2,
        "no single alert past the limit"
    );
    assert_eq!(daemon.terminate().await, Some(0));

    let matches = dir.wirewatch(&["matches", "--json"]).await;
    let matches: serde_json::Value = serde_json::from_str(&stdout(&matches)).unwrap();
    let held = matches
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["reason"] == "rate_limited")
        .count();
    assert_eq!(held, 4, "{matches}");

    let deliveries = dir.wirewatch(&["deliveries", "--json"]).await;
    assert!(deliveries.status.success(), "{}", stderr(&deliveries));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&deliveries)).unwrap();
    let digest_rows = listed["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| !d["digest"].is_null())
        .count();
    assert_eq!(digest_rows, 2, "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_muted_watch_list_sends_nothing_until_unmuted() {
    let (feeds, dir, desk) = (
        FeedServer::start().await,
        TestDir::new(),
        Receiver::start().await,
    );
    config(
        &dir,
        &feeds,
        &desk.url(),
        "[[watchlists]]\nname = \"iran\"\nterms = [\"Iran\"]\nwebhooks = [\"desk\"]",
        "every 1s",
    );
    feeds.set("mirror", rss(&[]));
    feeds.set("wire", rss(&[]));
    let daemon = dir.spawn_daemon();

    // Muted while the daemon runs, and reloaded: the mute holds.
    let muted = dir.wirewatch(&["mute", "iran", "--for", "2h"]).await;
    assert!(muted.status.success(), "{}", stderr(&muted));
    assert!(
        stdout(&muted).starts_with("iran muted until "),
        "{}",
        stdout(&muted)
    );
    let listed = dir.wirewatch(&["mute"]).await;
    assert!(
        stdout(&listed).contains("iran muted until"),
        "{}",
        stdout(&listed)
    );
    daemon.hangup();
    feeds.set("wire", stories(1));
    let reason = || async {
        let output = dir
            .wirewatch(&["explain", "https://wire.example.org/0", "--json"])
            .await;
        let value: serde_json::Value = serde_json::from_str(&stdout(&output)).ok()?;
        value["items"][0]["watchlists"][0]["reason"]
            .as_str()
            .map(str::to_owned)
    };
    let muted_reason = eventually("the story stored", Duration::from_secs(20), reason).await;
    assert_eq!(muted_reason, "muted");

    // Restarted, then unmuted: only what comes after alerts.
    assert_eq!(daemon.terminate().await, Some(0));
    let daemon = dir.spawn_daemon();
    let unmuted = dir.wirewatch(&["unmute", "iran"]).await;
    assert_eq!(stdout(&unmuted), "iran unmuted: it alerts again\n");
    feeds.set("wire", stories(2));
    let received = desk.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(daemon.terminate().await, Some(0));
    let titles: Vec<String> = received
        .iter()
        .map(|r| {
            r.json()["data"]["item"]["title"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        titles,
        ["Iran story 1: sanctions"],
        "only what came after the unmute"
    );

    let unknown = dir.wirewatch(&["mute", "nope", "--for", "1h"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("no watch-list is named `nope`"),
        "{}",
        stderr(&unknown)
    );
}

/// `wirewatch explain LINK --json`: the first item's verdicts by watch-list.
async fn explain(dir: &TestDir, link: &str) -> HashMap<String, serde_json::Value> {
    let output = dir.wirewatch(&["explain", link, "--json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    value["items"][0]["watchlists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["watchlist"].as_str().unwrap().to_owned(), w.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_gives_the_reason_of_every_kind() {
    let (feeds, dir, desk) = (
        FeedServer::start().await,
        TestDir::new(),
        Receiver::start().await,
    );
    config(
        &dir,
        &feeds,
        &desk.url(),
        r#"[[watchlists]]
name = "iran"
terms = ["Iran"]
exclude = ["football"]
webhooks = ["desk"]

[[watchlists]]
name = "both"
terms = ["Iran", "China"]
query = "Iran AND China"
webhooks = ["desk"]

[[watchlists]]
name = "capped"
terms = ["Tehran"]
max_alerts = "1/h"
webhooks = ["desk"]

[[watchlists]]
name = "daily"
terms = ["SCO"]
digest = "0 8 * * *"
webhooks = ["desk"]

[[watchlists]]
name = "quiet"
terms = ["JCPOA"]
webhooks = ["desk"]"#,
        "*/5 * * * *",
    );
    assert!(
        dir.wirewatch(&["mute", "quiet", "--until", "2099-01-01 00:00"])
            .await
            .status
            .success()
    );
    let old = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc2822();
    let items = [
        Item {
            published: Some(&old),
            ..Item::new("old", "Iran archive piece", "https://wire.example.org/old")
        },
        Item::new(
            "accord",
            "Iran and China sign accord",
            "https://wire.example.org/accord",
        ),
        Item::new("votes", "Iran votes", "https://wire.example.org/votes"),
        Item::new(
            "football",
            "Iran football team wins",
            "https://wire.example.org/football",
        ),
        Item::new("t1", "Tehran traffic", "https://wire.example.org/t1"),
        Item::new("t2", "Tehran weather", "https://wire.example.org/t2"),
        Item::new("sco", "SCO summit opens", "https://wire.example.org/sco"),
        Item::new(
            "jcpoa",
            "JCPOA talks stall",
            "https://wire.example.org/jcpoa",
        ),
    ];
    feeds.set("wire", rss(&items));
    feeds.set("mirror", rss(&[]));
    let first = dir.wirewatch(&["poll"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    // The accord again in another outlet (its own guid, the same link): the same story.
    feeds.set(
        "mirror",
        rss(&[Item::new(
            "m-accord",
            "Iran and China sign accord",
            "https://wire.example.org/accord?utm_source=x",
        )]),
    );
    assert!(dir.wirewatch(&["poll"]).await.status.success());

    let old = explain(&dir, "https://wire.example.org/old").await;
    assert_eq!(
        (
            old["iran"]["verdict"].as_str(),
            old["iran"]["reason"].as_str()
        ),
        (Some("suppressed"), Some("backfill"))
    );
    let accord = explain(&dir, "https://wire.example.org/accord").await;
    assert_eq!(accord["iran"]["verdict"], "alerted");
    assert_eq!(accord["both"]["verdict"], "alerted");
    assert_eq!(
        accord["both"]["terms"],
        serde_json::json!(["China", "Iran"])
    );
    assert_eq!(accord["both"]["highlights"][0]["field"], "title");
    assert!(accord["iran"]["alert_id"].is_string());
    assert_eq!(accord["capped"]["verdict"], "no_match");
    let copy = explain(&dir, "https://wire.example.org/accord?utm_source=x").await;
    assert_eq!(copy["iran"]["reason"], "same_story");
    assert_eq!(
        copy["iran"]["alert_id"], accord["iran"]["alert_id"],
        "the alert that covered it"
    );
    let votes = explain(&dir, "https://wire.example.org/votes").await;
    assert_eq!(votes["iran"]["verdict"], "alerted");
    assert_eq!(votes["both"]["reason"], "query_false");
    assert_eq!(votes["both"]["terms"], serde_json::json!(["Iran"]));
    let football = explain(&dir, "https://wire.example.org/football").await;
    assert_eq!(football["iran"]["reason"], "excluded");
    assert_eq!(football["iran"]["excluded_by"], "football");
    assert_eq!(football["iran"]["now"], "excluded");
    let second = explain(&dir, "https://wire.example.org/t2").await;
    let first = explain(&dir, "https://wire.example.org/t1").await;
    let reasons = [
        first["capped"]["reason"].clone(),
        second["capped"]["reason"].clone(),
    ];
    assert!(
        reasons.contains(&serde_json::Value::Null)
            && reasons.contains(&serde_json::json!("rate_limited")),
        "{reasons:?}"
    );
    let sco = explain(&dir, "https://wire.example.org/sco").await;
    assert_eq!(
        (
            sco["daily"]["verdict"].as_str(),
            sco["daily"]["reason"].as_str()
        ),
        (Some("digest"), Some("digest"))
    );
    let jcpoa = explain(&dir, "https://wire.example.org/jcpoa").await;
    assert_eq!(
        (
            jcpoa["quiet"]["verdict"].as_str(),
            jcpoa["quiet"]["reason"].as_str()
        ),
        (Some("suppressed"), Some("muted"))
    );

    // `test-feed` tells the same of a document before anything is stored.
    let tried = dir
        .wirewatch(&["test-feed", &feeds.url("wire"), "--json"])
        .await;
    assert!(tried.status.success(), "{}", stderr(&tried));
    let tried: serde_json::Value = serde_json::from_str(&stdout(&tried)).unwrap();
    let item = tried["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "Iran football team wins")
        .unwrap()
        .clone();
    assert_eq!(
        item["misses"],
        serde_json::json!([
            {"watchlist": "iran", "reason": "excluded", "terms": ["Iran"], "excluded": ["football"]},
            {"watchlist": "both", "reason": "query_false", "terms": ["Iran"], "excluded": []},
        ])
    );

    // The text form says the same, one line per watch-list.
    let text = dir
        .wirewatch(&["explain", "https://wire.example.org/football"])
        .await;
    assert!(
        stdout(&text).contains("suppressed: excluded by `football`"),
        "{}",
        stdout(&text)
    );
    let missing = dir
        .wirewatch(&["explain", "https://nowhere.example/"])
        .await;
    assert_eq!(missing.status.code(), Some(2));

    let received = desk.received();
    assert_eq!(
        received
            .iter()
            .filter(|r| kind(r) == "watchlist.match")
            .count(),
        4,
        "iran: accord and votes; both: accord; capped: one Tehran story"
    );
}
