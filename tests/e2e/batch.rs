//! Group commit under crashes: many feeds fall due together, so the commit stage writes
//! several feeds' results per transaction, and the real daemon is SIGKILLed at random
//! moments while it does. Stories are shared across feeds (the same link, tracking
//! parameters added), so cross-feed de-duplication happens inside batches too. Afterwards
//! every feed holds every item it published, exactly once; every story was delivered; and
//! no story ever arrived under two `webhook-id`s. The daemon's own metrics show that
//! batches of more than one feed were committed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::helpers::{FeedServer, Hook, Item, Receiver, Rng, TestDir, http_get, rss};

const FEEDS: usize = 24;
const KILLS: usize = 12;

/// Story `n` is published by feed `n % FEEDS` and again, under its own guid and with a
/// tracking parameter on the link, by feed `(n + 7) % FEEDS`.
fn publishers(n: usize) -> [(usize, String, String); 2] {
    let link = format!("https://news.example.org/desk/{n}");
    [
        (n % FEEDS, format!("{n}"), link.clone()),
        (
            (n + 7) % FEEDS,
            format!("again-{n}"),
            format!("{link}?utm_source=desk"),
        ),
    ]
}

fn title(n: usize) -> String {
    format!("China and Iran: desk story {n}")
}

/// Every feed's document with stories `0..count`.
fn documents(count: usize) -> Vec<String> {
    let mut items: Vec<Vec<(String, String, String)>> = vec![Vec::new(); FEEDS];
    for n in 0..count {
        for (feed, guid, link) in publishers(n) {
            items[feed].push((guid, title(n), link));
        }
    }
    items
        .iter()
        .map(|items| {
            let items: Vec<Item> = items
                .iter()
                .rev()
                .map(|(guid, title, link)| Item::new(guid, title, link))
                .collect();
            rss(&items)
        })
        .collect()
}

/// (batches committed, batches of more than one feed) from the daemon's `/metrics`.
async fn batches(port: u16) -> (f64, f64) {
    let Some((200, text)) = http_get(&format!("http://127.0.0.1:{port}/metrics")).await else {
        return (0.0, 0.0);
    };
    let sample = |series: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let all = sample("wirewatch_commit_batch_feeds_count");
    (
        all,
        all - sample("wirewatch_commit_batch_feeds_bucket{le=\"1\"}"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_group_commits_loses_nothing_and_alerts_each_story_once() {
    let mut rng = Rng::seeded("batch crash test");
    let seed = rng.seed();
    let (server, dir, receiver) = (
        FeedServer::start().await,
        TestDir::new(),
        Receiver::start().await,
    );
    let names: Vec<String> = (0..FEEDS).map(|i| format!("desk-{i}")).collect();
    let feeds: Vec<(&str, String)> = names
        .iter()
        .map(|name| (name.as_str(), server.url(name)))
        .collect();
    dir.config_with(&feeds, &[Hook::new("ops", &receiver.url())], "every 1s");
    // Every feed is on 127.0.0.1: let them all be fetched at once, as feeds on many hosts
    // would be, so their results reach the writer together.
    dir.poll_settings("per_host = 64");
    let port = dir.listen_on_free_port();

    let mut published = 0;
    let mut multi_feed_batches = 0.0;
    for _ in 0..KILLS {
        published += 2 + rng.below(4) as usize;
        for (name, doc) in names.iter().zip(documents(published)) {
            server.set(name, doc);
        }
        let daemon = dir.spawn_daemon();
        tokio::time::sleep(Duration::from_millis(200 + rng.below(1000))).await;
        multi_feed_batches += batches(port).await.1;
        daemon.kill().await;
    }

    // Last life: runs until every story was delivered, then stops cleanly.
    let daemon = dir.spawn_daemon();
    let all = |r: &[crate::helpers::Received]| {
        r.iter()
            .filter(|r| r.accepted())
            .map(|r| r.json()["data"]["story_id"].to_string())
            .collect::<HashSet<_>>()
            .len()
            >= published
    };
    receiver.wait_until(Duration::from_secs(60), all).await;
    // Let this life commit one more round of every feed before stopping it.
    let polled = server.all_hits().len();
    tokio::time::timeout(Duration::from_secs(60), async {
        while server.all_hits().len() < polled + FEEDS {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the daemon polls every feed again within a minute");
    multi_feed_batches += batches(port).await.1;
    assert_eq!(daemon.terminate().await, Some(0));
    eprintln!("{published} stories, {multi_feed_batches} commits of more than one feed");
    assert!(
        multi_feed_batches > 0.0,
        "no commit held more than one feed, so batching was not exercised (seed {seed})"
    );

    // Every feed holds each item it published, once.
    let output = dir.wirewatch(&["feeds", "--json"]).await;
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let held: HashMap<String, i64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["name"].as_str().unwrap().to_string(),
                row["items"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut expected = vec![0i64; FEEDS];
    for n in 0..published {
        for (feed, _, _) in publishers(n) {
            expected[feed] += 1;
        }
    }
    for (name, count) in names.iter().zip(&expected) {
        assert_eq!(held.get(name), Some(count), "{name} (seed {seed})");
    }

    // Every story delivered, each under one webhook-id however often sent, and each
    // story once although two feeds carry it.
    let received = receiver.received();
    let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
    for r in &received {
        let title = r.json()["data"]["item"]["title"]
            .as_str()
            .unwrap()
            .to_string();
        ids.entry(title).or_default().insert(r.header("webhook-id"));
    }
    for n in 0..published {
        let title = title(n);
        let story_ids = ids.get(&title);
        assert!(
            story_ids.is_some(),
            "`{title}` never delivered (seed {seed})"
        );
        assert_eq!(
            story_ids.map(HashSet::len),
            Some(1),
            "`{title}`: {story_ids:?} (seed {seed})"
        );
    }
    assert_eq!(ids.len(), published, "one alert per story (seed {seed})");
}
