//! Stories (SPEC §10) with the real binary: one wire story carried by several outlets
//! under their own links (verbatim, `UPDATE 1-`, an outlet suffix, a changed word, a new
//! headline over the same lede) alerts each watch-list once, across polls and within one
//! poll; different events that share their names (talks *resume* and *end*) stay apart;
//! `escalate` thresholds send one `watchlist.story_grew` each.

use std::collections::BTreeMap;

use crate::helpers::{FeedServer, Item, Received, Receiver, SECRET, TestDir, rss, stderr};

const LEDE: &str = "Iran and China signed a 25-year cooperation agreement in Tehran on \
                    Saturday, covering oil, banking, ports and telecommunications, officials \
                    said, in a deal that deepens ties between the two countries as both face \
                    pressure from Washington.";

/// Copies of one wire story as outlets run them: (title, description).
fn copies() -> Vec<(&'static str, String)> {
    vec![
        (
            "Iran and China sign 25-year cooperation pact",
            LEDE.to_string(),
        ),
        (
            "UPDATE 1-Iran and China sign 25-year cooperation pact",
            format!("{LEDE} The agreement was first proposed in 2016."),
        ),
        (
            "Iran and China sign 25-year cooperation pact - Reuters",
            LEDE.to_string(),
        ),
        (
            "Iran, China sign 25-year cooperation pact | World",
            LEDE.replace("telecommunications", "telecoms"),
        ),
        (
            "Iran and China seal 25-year cooperation pact",
            LEDE.to_string(),
        ),
        (
            "Iran and China sign 25-year cooperation pact",
            LEDE.replace("officials said", "state media reported"),
        ),
        (
            "Iran and China sign 25-year cooperation pact - AFP",
            LEDE.to_string(),
        ),
    ]
}

const TALKS: &str = "Talks between Iran and world powers on reviving the 2015 nuclear deal \
                     {} in Vienna on Monday, diplomats said, after months of disputes over \
                     sanctions relief and the pace of Iran's uranium enrichment.";

fn talks(verb: &str) -> String {
    TALKS.replace("{}", verb)
}

/// A config with `feeds` feeds `f0..`, two watch-lists over the same terms (`iran-china`
/// with `escalate` as given, and `gulf`), each alerting the receiver's `json` webhook.
fn config(dir: &TestDir, feeds: &FeedServer, count: usize, hook: &str, escalate: &str) {
    let mut text = String::from(
        "[daemon]\nstate_dir = \"state\"\nlisten = \"\"\n\n[poll]\nallow_private_networks = true\ntimeout = \"5s\"\n",
    );
    for n in 0..count {
        text.push_str(&format!(
            "\n[[feeds]]\nname = \"f{n}\"\nurl = \"{}\"\n",
            feeds.url(&format!("f{n}"))
        ));
    }
    text.push_str(&format!(
        r#"
[[watchlists]]
name = "iran-china"
terms = ["Iran", "China"]
escalate = [{escalate}]
webhooks = ["siem"]

[[watchlists]]
name = "gulf"
terms = ["Iran", "Tehran"]
webhooks = ["siem"]

[[webhooks]]
name = "siem"
url = "{hook}"
secret = "{SECRET}"
retry_schedule = ["1s"]
"#
    ));
    dir.write_config(&text);
}

/// Feed `feed` serving `items` (title, description), each under its own guid and link.
fn serve(feeds: &FeedServer, feed: usize, items: &[(&str, &str)]) {
    let ids: Vec<(String, String)> = items
        .iter()
        .enumerate()
        .map(|(i, _)| {
            (
                format!("f{feed}-{i}"),
                format!("https://outlet{feed}.example/news/{i}"),
            )
        })
        .collect();
    let items: Vec<Item> = items
        .iter()
        .zip(&ids)
        .map(|((title, description), (guid, link))| Item {
            description,
            ..Item::new(guid, title, link)
        })
        .collect();
    feeds.set(&format!("f{feed}"), rss(&items));
}

async fn poll(dir: &TestDir) {
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The JSON bodies received, by (type, watch-list, title).
fn events(received: &[Received]) -> BTreeMap<(String, String, String), Vec<serde_json::Value>> {
    let mut events: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for r in received {
        let body = r.json();
        let key = (
            body["type"].as_str().unwrap_or_default().to_string(),
            body["data"]["watchlist"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            body["data"]["item"]["title"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        events.entry(key).or_default().push(body);
    }
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn one_story_in_many_outlets_alerts_each_watchlist_once_and_other_events_stay_apart() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    let copies = copies();
    config(&dir, &feeds, copies.len(), &hook.url(), "");
    let (resume, end) = (talks("resume"), talks("end"));

    // First poll: four outlets carry the story (one poll, so the commit stage sees them
    // together), and one reports talks resuming.
    for (feed, (title, lede)) in copies.iter().enumerate().take(4) {
        let mut items = vec![(*title, lede.as_str())];
        if feed == 0 {
            items.push(("Iran nuclear talks resume in Vienna", resume.as_str()));
        }
        serve(&feeds, feed, &items);
    }
    for feed in 4..copies.len() {
        serve(&feeds, feed, &[]);
    }
    poll(&dir).await;
    let first = events(&hook.received());
    let pact: Vec<_> = first
        .iter()
        .filter(|((kind, _, title), _)| kind == "watchlist.match" && title.contains("pact"))
        .collect();
    assert_eq!(
        pact.len(),
        2,
        "the story alerted each watch-list once: {:?}",
        first.keys()
    );
    for (_, bodies) in &pact {
        assert_eq!(bodies.len(), 1);
    }

    // Second poll: the rest of the outlets carry it, one more time each (new headline,
    // other words, another suffix), and another outlet reports the talks ending.
    for (feed, (title, lede)) in copies.iter().enumerate().skip(4) {
        let mut items = vec![(*title, lede.as_str())];
        if feed == 4 {
            items.push(("Iran nuclear talks end in Vienna", end.as_str()));
        }
        serve(&feeds, feed, &items);
    }
    poll(&dir).await;

    let all = hook.received();
    let by_key = events(&all);
    let kinds: Vec<_> = by_key.keys().collect();
    // Pact: once per watch-list, whatever the headline; talks: two events, each once per
    // watch-list.
    assert_eq!(all.len(), 6, "{kinds:?}");
    for watchlist in ["iran-china", "gulf"] {
        let titles: Vec<&str> = by_key
            .keys()
            .filter(|(kind, w, _)| kind == "watchlist.match" && w == watchlist)
            .map(|(_, _, title)| title.as_str())
            .collect();
        assert_eq!(titles.len(), 3, "{watchlist}: {titles:?}");
        assert!(
            titles.contains(&"Iran nuclear talks resume in Vienna"),
            "{titles:?}"
        );
        assert!(
            titles.contains(&"Iran nuclear talks end in Vienna"),
            "{titles:?}"
        );
    }

    // The alert carried the story as it stood when it was committed: its own item first,
    // then whatever copies of the same poll were committed with or before it.
    let (_, bodies) = pact[0];
    let data = &bodies[0]["data"];
    let story = &data["story"];
    let feeds = story["feeds"].as_u64().unwrap_or_default();
    assert!((1..=4).contains(&feeds), "{story}");
    assert_eq!(story["items"], feeds, "{story}");
    assert_eq!(
        story["sightings"].as_array().map(Vec::len),
        Some(feeds as usize),
        "{story}"
    );
    assert_eq!(story["id"], data["story_id"]);
    assert!(
        story["sightings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["feed"] == data["feed"]["name"] && s["url"] == data["item"]["url"]),
        "{story}"
    );
    for key in ["feed", "title", "url", "seen"] {
        assert!(story["sightings"][0].get(key).is_some(), "{key}: {story}");
    }

    // In the database: one story for the pact, seven items in it; the talks apart.
    let mut db = dir.database().await;
    let sizes: Vec<(i64, String)> = sqlx::query_as(
        "SELECT COUNT(*), MIN(i.title) FROM items i GROUP BY i.story_id ORDER BY 1 DESC",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    assert_eq!(sizes[0].0, copies.len() as i64, "{sizes:?}");
    assert_eq!((sizes[1].0, sizes[2].0), (1, 1), "{sizes:?}");

    // `wirewatch stories --json`: the three stories, the pact first with all its outlets,
    // in exactly the shape of §10.
    let out = dir.wirewatch(&["stories", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stories = listing["stories"].as_array().unwrap();
    assert_eq!(stories.len(), 3, "{listing}");
    let pact = stories
        .iter()
        .find(|s| s["items"].as_array().map(Vec::len) == Some(copies.len()))
        .expect("the pact's story lists every outlet");
    let keys = |v: &serde_json::Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(pact),
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
    assert_eq!(keys(&pact["items"][0]), ["feed", "seen", "title", "url"]);
    assert_eq!(pact["feeds"], copies.len());
    assert_eq!(
        pact["watchlists"],
        serde_json::json!(["gulf", "iran-china"])
    );
    assert_eq!(pact["id"], data["story_id"]);
    let feeds: Vec<&str> = pact["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["feed"].as_str().unwrap())
        .collect();
    assert_eq!(feeds.len(), copies.len());
    assert!(feeds.contains(&"f6"), "{feeds:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_growing_story_escalates_once_per_threshold() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    let copies = copies();
    config(&dir, &feeds, copies.len(), &hook.url(), "3, 5");
    for feed in 0..copies.len() {
        serve(&feeds, feed, &[]);
    }
    // Outlets pick the story up poll by poll: 1, then 3, 4, 5 and 7 feeds in all.
    let mut carried = 0;
    let mut grew_at = Vec::new();
    for upto in [1, 3, 4, 5, 7] {
        while carried < upto {
            let (title, lede) = &copies[carried];
            serve(&feeds, carried, &[(*title, lede.as_str())]);
            carried += 1;
        }
        poll(&dir).await;
        let grew: Vec<serde_json::Value> = hook
            .received()
            .iter()
            .map(Received::json)
            .filter(|b| b["type"] == "watchlist.story_grew")
            .collect();
        grew_at.push(grew.len());
        if let Some(last) = grew.last() {
            assert_eq!(last["data"]["watchlist"], "iran-china", "{last}");
        }
    }
    // One event when the story reached 3 feeds, one at 5; none between or after.
    assert_eq!(grew_at, [0, 1, 1, 2, 2]);
    let all: Vec<serde_json::Value> = hook.received().iter().map(Received::json).collect();
    let grew: Vec<&serde_json::Value> = all
        .iter()
        .filter(|b| b["type"] == "watchlist.story_grew")
        .collect();
    assert_eq!(grew[0]["data"]["story"]["feeds"], 3);
    assert_eq!(grew[1]["data"]["story"]["feeds"], 5);
    // The events tell about the alert they escalate: same alert id, story and item.
    let alert = all
        .iter()
        .find(|b| b["type"] == "watchlist.match" && b["data"]["watchlist"] == "iran-china")
        .expect("the alert");
    for event in &grew {
        assert_eq!(event["data"]["alert_id"], alert["data"]["alert_id"]);
        assert_eq!(event["data"]["story_id"], alert["data"]["story_id"]);
        assert_eq!(
            event["data"]["item"]["title"],
            alert["data"]["item"]["title"]
        );
    }
    // `gulf` has no thresholds: its one alert and nothing more.
    let gulf = all
        .iter()
        .filter(|b| b["data"]["watchlist"] == "gulf")
        .count();
    assert_eq!(gulf, 1);
    // `wirewatch deliveries` tells the events from the alerts.
    let out = dir
        .wirewatch(&["deliveries", "--status", "delivered", "--json"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut grew_to: Vec<serde_json::Value> = listed["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["grew_to"].clone())
        .collect();
    grew_to.sort_by_key(|v| v.as_u64());
    assert_eq!(
        grew_to,
        [
            serde_json::Value::Null,
            serde_json::Value::Null,
            3.into(),
            5.into()
        ]
    );
    // Each event went out under its own webhook-id.
    let mut ids: Vec<String> = hook
        .received()
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_committing_copies_at_once_still_make_one_story() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    let copies = copies();
    config(&dir, &feeds, copies.len(), &hook.url(), "");
    // Rounds of one new story each (its number in the title and lede), every outlet
    // carrying a copy; two `wirewatch poll` processes commit half the outlets each, at
    // the same time, on the same database.
    const ROUNDS: usize = 4;
    let mut items: Vec<Vec<(String, String)>> = vec![Vec::new(); copies.len()];
    for round in 0..ROUNDS {
        for (feed, (title, lede)) in copies.iter().enumerate() {
            let lede = lede.replace("25-year", &format!("{}-year", 25 + round));
            let title = title.replace("25-year", &format!("{}-year", 25 + round));
            items[feed].push((title, lede));
            let served: Vec<(&str, &str)> = items[feed]
                .iter()
                .map(|(t, l)| (t.as_str(), l.as_str()))
                .collect();
            serve(&feeds, feed, &served);
        }
        let (first, second): (Vec<String>, Vec<String>) = (0..copies.len())
            .map(|n| format!("f{n}"))
            .partition(|name| name.trim_start_matches('f').parse::<usize>().unwrap() % 2 == 0);
        let run = |names: Vec<String>| {
            let mut args = vec!["poll".to_string()];
            args.extend(names);
            let dir = &dir;
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = dir.wirewatch(&args).await;
                assert!(out.status.success(), "{}", stderr(&out));
            }
        };
        tokio::join!(run(first), run(second));
    }
    // Each round's story alerted each watch-list once, from whichever process came first.
    let received = events(&hook.received());
    let alerts: usize = received.values().map(Vec::len).sum();
    assert_eq!(alerts, 2 * ROUNDS, "{:?}", received.keys());
    let mut db = dir.database().await;
    let stories: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT story_id) FROM items")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(stories, ROUNDS as i64);
}
