//! SIGHUP reloads the configuration without a restart; a broken file, or one the database
//! refuses to register, is refused and the running configuration goes on. The JSON API
//! reports what the daemon holds.

use std::time::Duration;

use crate::helpers::{FeedServer, Item, Receiver, TestDir, http_get, rss};

async fn get_json(url: &str) -> serde_json::Value {
    let (_, text) = http_get(url).await.expect("the API answers");
    serde_json::from_str(&text).unwrap()
}

/// `wire` carries a story about Iran and China, `steppe` one about the SCO in Kazakhstan.
fn serve_wire_and_steppe(feeds: &FeedServer) {
    feeds.set(
        "wire",
        rss(&[Item::new(
            "1",
            "Iran and China sign a pact",
            "https://news.example.org/1",
        )]),
    );
    feeds.set(
        "steppe",
        rss(&[Item::new(
            "k1",
            "Kazakhstan hosts the SCO summit",
            "https://steppe.example.kz/1",
        )]),
    );
}

/// `wire` gains a story about the JCPOA.
fn publish_a_second_wire_story(feeds: &FeedServer) {
    feeds.set(
        "wire",
        rss(&[
            Item::new(
                "1",
                "Iran and China sign a pact",
                "https://news.example.org/1",
            ),
            Item::new("2", "JCPOA talks resume", "https://news.example.org/2"),
        ]),
    );
}

/// The config text `t` with the `steppe` feed added before the watch-lists.
fn with_steppe(t: String, feeds: &FeedServer) -> String {
    t.replacen(
        "\n[[watchlists]]",
        &format!(
            "\n[[feeds]]\nname = \"steppe\"\nurl = \"{}\"\n\n[[watchlists]]",
            feeds.url("steppe")
        ),
        1,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_added_feeds_and_watchlists_and_refuses_a_broken_file() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    serve_wire_and_steppe(&feeds);
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "every 1s");
    let port = dir.listen_on_free_port();
    let api = format!("http://127.0.0.1:{port}/api/v1");

    let daemon = dir.spawn_daemon();
    assert_eq!(hook.wait_for(1, Duration::from_secs(15)).await.len(), 1);
    assert!(feeds.hits("steppe").is_empty());

    // Add a feed and a second watch-list, then SIGHUP.
    dir.edit_config(|t| {
        with_steppe(t, &feeds) + "\n[[watchlists]]\nname = \"central-asia\"\nterms = [\"Kazakhstan\"]\nwebhooks = [\"siem\"]\n"
    });
    daemon.hangup();
    let received = hook.wait_for(3, Duration::from_secs(15)).await;
    let lists: Vec<String> = received[1..]
        .iter()
        .map(|r| r.json()["data"]["watchlist"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(received.len(), 3, "{lists:?}");
    assert!(lists.contains(&"central-asia".to_string()), "{lists:?}");
    assert!(
        lists.contains(&"iran-china".to_string()),
        "the story is new to both lists: {lists:?}"
    );

    let listed = get_json(&format!("{api}/feeds")).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["steppe", "wire"]);

    // A broken file is refused; the daemon goes on with what it had.
    dir.edit_config(|t| t.replace("terms = [\"Kazakhstan\"]", "terms = [\"Kazakhstan\""));
    daemon.hangup();
    publish_a_second_wire_story(&feeds);
    let received = hook.wait_for(4, Duration::from_secs(15)).await;
    assert_eq!(received.len(), 4);
    assert_eq!(
        received[3].json()["data"]["item"]["title"],
        "JCPOA talks resume"
    );

    let found = get_json(&format!(
        "{api}/matches?watchlist=iran-china&q=JCPOA&since=1h"
    ))
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["terms"], serde_json::json!(["JCPOA"]));
    let all = get_json(&format!("{api}/matches?limit=10")).await;
    assert_eq!(all.as_array().unwrap().len(), 4, "{all}");
    let bad = http_get(&format!("{api}/matches?since=yesterday"))
        .await
        .unwrap();
    assert_eq!(bad.0, 400);

    assert_eq!(daemon.terminate().await, Some(0));
}

/// The names in the database's `feeds` and `webhooks` tables.
async fn registered(dir: &TestDir) -> (Vec<String>, Vec<String>) {
    let mut conn = dir.database().await;
    let feeds = sqlx::query_scalar("SELECT name FROM feeds ORDER BY name")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let webhooks = sqlx::query_scalar("SELECT name FROM webhooks ORDER BY name")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    (feeds, webhooks)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_the_database_refuses_is_not_half_applied() {
    let (feeds, siem, audit, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    serve_wire_and_steppe(&feeds);
    dir.standard_config(&[("wire", feeds.url("wire"))], &siem.url(), "every 1s");
    let daemon = dir.spawn_daemon();
    assert_eq!(siem.wait_for(1, Duration::from_secs(15)).await.len(), 1);

    // The database refuses the new webhook's row, as a full disk might refuse a write.
    let mut conn = dir.database().await;
    sqlx::query(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON webhooks WHEN NEW.name = 'audit'
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    // The new file adds a feed (registered before the webhooks) and the refused webhook.
    dir.edit_config(|t| {
        let t = with_steppe(t, &feeds)
            .replace("webhooks = [\"siem\"]", "webhooks = [\"siem\", \"audit\"]");
        format!(
            "{t}\n[[webhooks]]\nname = \"audit\"\nurl = \"{}\"\n",
            audit.url()
        )
    });
    let polled = feeds.hits("wire").len();
    daemon.hangup();
    // The old configuration goes on: `wire` is polled again after the refused reload...
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while feeds.hits("wire").len() < polled + 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon stopped polling"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...and nothing of the new one was registered or polled: not even the feed, which
    // the database accepted before it refused the webhook.
    assert_eq!(
        registered(&dir).await,
        (vec!["wire".to_string()], vec!["siem".to_string()])
    );
    assert!(feeds.hits("steppe").is_empty());
    publish_a_second_wire_story(&feeds);
    assert_eq!(siem.wait_for(2, Duration::from_secs(15)).await.len(), 2);

    // Once the database takes it, the same file applies whole.
    sqlx::query("DROP TRIGGER refuse_audit")
        .execute(&mut conn)
        .await
        .unwrap();
    daemon.hangup();
    let received = audit.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(
        received[0].json()["data"]["item"]["title"],
        "Kazakhstan hosts the SCO summit"
    );
    assert_eq!(
        registered(&dir).await,
        (
            vec!["steppe".to_string(), "wire".to_string()],
            vec!["audit".to_string(), "siem".to_string()]
        )
    );
    assert_eq!(daemon.terminate().await, Some(0));
}
