//! The delivery guarantee under crashes: the real daemon is SIGKILLed at random moments
//! while new stories keep arriving and the receiver is sometimes slow. Afterwards every
//! matching story was delivered at least once, and no story × watch-list × webhook ever
//! arrived under two different `webhook-id`s. A second watch-list sends digests every
//! second meanwhile: every story is in exactly one digest (one `webhook-id`, however
//! often that digest was re-sent after a kill).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::helpers::{FeedServer, Hook, Item, Receiver, Reply, Rng, TestDir, rss};

const KILLS: usize = 20;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_loses_no_alert_and_never_changes_an_alerts_id() {
    let mut rng = Rng::seeded("crash test");
    let seed = rng.seed();
    let (feeds, dir) = (FeedServer::start().await, TestDir::new());
    let (fast, slow) = (Receiver::start().await, Receiver::start().await);
    slow.always(Reply::ok().after(Duration::from_millis(400)));
    dir.config_with(
        &[("wire", feeds.url("wire")), ("mirror", feeds.url("mirror"))],
        &[
            Hook::new("fast", &fast.url()),
            Hook::new("slow", &slow.url()).timeout("2s"),
        ],
        "every 1s",
    );
    dir.edit_config(|text| {
        text.replacen(
            "\n[[webhooks]]",
            "\n[[watchlists]]\nname = \"roundup\"\nterms = [\"Iran\"]\ndigest = \"* * * * * *\"\nwebhooks = [\"fast\"]\n\n[[webhooks]]",
            1,
        )
    });

    // Stories keep arriving on the wire; the mirror repeats every third one under its
    // own guid and a tracking-tagged link, so cross-feed dedup is under fire too.
    let titles: Vec<String> = (0..200)
        .map(|n| format!("Iran update number {n}"))
        .collect();
    let links: Vec<String> = (0..200)
        .map(|n| format!("https://news.example.org/u/{n}"))
        .collect();
    let mirror_links: Vec<String> = links
        .iter()
        .map(|l| format!("{l}?utm_source=mirror"))
        .collect();
    let mirror_guids: Vec<String> = (0..200).map(|n| format!("mirror-{n}")).collect();
    let guids: Vec<String> = (0..200).map(|n| n.to_string()).collect();
    let publish = |count: usize| {
        let wire: Vec<Item> = (0..count)
            .map(|n| Item::new(&guids[n], &titles[n], &links[n]))
            .collect();
        let mirror: Vec<Item> = (0..count)
            .filter(|n| n % 3 == 0)
            .map(|n| Item::new(&mirror_guids[n], &titles[n], &mirror_links[n]))
            .collect();
        // Newest first, as feeds are; keep documents to the latest 30 items.
        let newest = |items: Vec<Item<'_>>| -> String {
            let mut items = items;
            items.reverse();
            items.truncate(30);
            rss(&items)
        };
        (newest(wire), newest(mirror))
    };

    let mut published = 0;
    for _ in 0..KILLS {
        published += 1 + rng.below(3) as usize;
        let (wire, mirror) = publish(published);
        feeds.set("wire", wire);
        feeds.set("mirror", mirror);
        let daemon = dir.spawn_daemon();
        tokio::time::sleep(Duration::from_millis(150 + rng.below(1200))).await;
        daemon.kill().await;
    }

    // Last life: runs until every story reached both receivers, then stops cleanly.
    let daemon = dir.spawn_daemon();
    let all = |r: &[crate::helpers::Received]| {
        r.iter()
            .filter(|r| r.accepted() && r.json()["type"] == "watchlist.match")
            .map(|r| r.json()["data"]["story_id"].to_string())
            .collect::<HashSet<_>>()
            .len()
            >= published
    };
    let digested = |r: &[crate::helpers::Received]| {
        r.iter()
            .filter(|r| r.accepted() && r.json()["type"] == "watchlist.digest")
            .flat_map(|r| {
                r.json()["data"]["stories"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|story| story["id"].to_string())
            .collect::<HashSet<_>>()
            .len()
            >= published
    };
    let polled = feeds.hits("wire").len();
    fast.wait_until(Duration::from_secs(60), |r| all(r) && digested(r))
        .await;
    slow.wait_until(Duration::from_secs(60), all).await;
    // Make sure this life is up (it polled) before asking it to stop.
    while feeds.hits("wire").len() == polled {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(daemon.terminate().await, Some(0));

    // Each story in exactly one digest: one webhook-id per digest, and no story in two.
    let mut digest_of: HashMap<String, String> = HashMap::new();
    for r in fast
        .received()
        .iter()
        .filter(|r| r.json()["type"] == "watchlist.digest")
    {
        let id = r.header("webhook-id");
        for story in r.json()["data"]["stories"].as_array().unwrap() {
            let story = story["title"].as_str().unwrap().to_string();
            let earlier = digest_of.insert(story.clone(), id.clone());
            assert!(
                earlier.is_none_or(|earlier| earlier == id),
                "`{story}` in two digests (seed {seed})"
            );
        }
    }
    for title in &titles[..published] {
        assert!(
            digest_of.contains_key(title),
            "`{title}` in no digest (seed {seed})"
        );
    }

    for (name, receiver) in [("fast", &fast), ("slow", &slow)] {
        let received: Vec<_> = receiver
            .received()
            .into_iter()
            .filter(|r| r.json()["type"] == "watchlist.match")
            .collect();
        let delivered: HashSet<String> = received
            .iter()
            .filter(|r| r.accepted())
            .map(|r| {
                r.json()["data"]["item"]["title"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        for title in &titles[..published] {
            assert!(
                delivered.contains(title),
                "{name}: `{title}` never delivered (seed {seed})"
            );
        }
        // One story × watch-list (× this webhook) → one webhook-id, however often sent.
        let mut ids: HashMap<(String, String), HashSet<String>> = HashMap::new();
        for r in &received {
            let body = r.json();
            let key = (
                body["data"]["story_id"].to_string(),
                body["data"]["watchlist"].to_string(),
            );
            ids.entry(key).or_default().insert(r.header("webhook-id"));
        }
        for (story, ids) in &ids {
            assert_eq!(
                ids.len(),
                1,
                "{name}: story {story:?} under ids {ids:?} (seed {seed})"
            );
        }
        assert_eq!(
            ids.len(),
            published,
            "{name}: one alert per story (seed {seed})"
        );
    }
}
