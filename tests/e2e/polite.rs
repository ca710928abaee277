//! Politeness, as seen from the feed server: fetches in flight per host, pauses after
//! `Retry-After`, exponential backoff of a failing feed, cache hints, and 410 Gone.

use std::time::{Duration, Instant};

use crate::helpers::{
    FeedHit, FeedServer, Item, Receiver, Reply, TestDir, eventually, rss, stderr, stdout,
};

fn doc(n: usize) -> String {
    rss(&[Item::new(
        "1",
        &format!("Wire story {n}"),
        "https://news.example.org/1",
    )])
}

fn gaps(hits: &[FeedHit]) -> Vec<Duration> {
    hits.windows(2).map(|w| w[1].at - w[0].at).collect()
}

async fn polite_setup(per_host: usize) -> (FeedServer, TestDir) {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    let names = ["a", "b", "c", "d", "e", "f"];
    for (n, name) in names.iter().enumerate() {
        feeds.set(name, doc(n));
        feeds.delay(name, Duration::from_millis(300));
    }
    let list: Vec<(&str, String)> = names.iter().map(|n| (*n, feeds.url(n))).collect();
    dir.standard_config(&list, &hook.url(), "*/5 * * * *");
    dir.poll_settings(&format!("per_host = {per_host}"));
    (feeds, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn fetches_in_flight_per_host_never_exceed_per_host() {
    for per_host in [1, 2] {
        let (feeds, dir) = polite_setup(per_host).await;
        let out = dir.wirewatch(&["poll"]).await;
        assert!(out.status.success(), "{}", stderr(&out));
        let hits = feeds.all_hits();
        assert_eq!(hits.len(), 6);
        let most = hits.iter().map(|h| h.concurrent).max().unwrap();
        assert_eq!(most, per_host, "per_host = {per_host}: {hits:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_pauses_every_feed_of_that_host() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("a", doc(1));
    feeds.set("b", doc(2));
    // The first fetch of `a` is answered 429 with Retry-After: 3.
    feeds.then("a", [Reply::status(429).header("retry-after", "3")]);
    dir.standard_config(
        &[("a", feeds.url("a")), ("b", feeds.url("b"))],
        &hook.url(),
        "every 1s",
    );
    dir.poll_settings("per_host = 1");

    let daemon = dir.spawn_daemon();
    // Until the host has been asked again after its 429 (and `b` once more after that).
    eventually(
        "two fetches after the 429",
        Duration::from_secs(20),
        || async {
            let hits = feeds.all_hits();
            let limited = hits.iter().find(|h| h.status == 429).map(|h| h.at);
            limited
                .is_some_and(|at| hits.iter().filter(|h| h.at > at).count() >= 2)
                .then_some(())
        },
    )
    .await;
    assert_eq!(daemon.terminate().await, Some(0));

    let hits = feeds.all_hits();
    let limited = hits
        .iter()
        .find(|h| h.status == 429)
        .expect("a 429 was served");
    let resumed = hits
        .iter()
        .filter(|h| h.at > limited.at)
        .map(|h| h.at - limited.at);
    let resumed: Vec<Duration> = resumed.collect();
    assert!(!resumed.is_empty(), "the host was polled again: {hits:?}");
    for after in &resumed {
        assert!(
            *after >= Duration::from_millis(2900),
            "host polled {after:?} after a Retry-After: 3"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_feed_backs_off_exponentially_and_recovers_on_success() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("a", doc(1));
    feeds.then("a", (0..5).map(|_| Reply::status(500)));
    dir.standard_config(&[("a", feeds.url("a"))], &hook.url(), "every 1s");
    dir.poll_settings("backoff_base = \"1s\"\nbackoff_max = \"4s\"");

    let daemon = dir.spawn_daemon();
    let started = Instant::now();
    // Five failures take 1 + 1..2 + 2..4 + 2..4 seconds or so; then it succeeds (200),
    // and is fetched again on its schedule (304).
    while feeds.hits("a").len() < 7 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(daemon.terminate().await, Some(0));

    let hits = feeds.hits("a");
    let statuses: Vec<u16> = hits.iter().map(|h| h.status).collect();
    assert_eq!(
        &statuses[..6],
        [500, 500, 500, 500, 500, 200],
        "{statuses:?}"
    );
    let gaps = gaps(&hits);
    // After the 3rd and 4th failures the backoff (2s and 4s, each at least half) exceeds
    // the 1s schedule; after a success the schedule applies again.
    // (The cap at `backoff_max` is pinned by `due`'s tests and the reset after a success
    // by the store's; how soon either shows here is a matter of load.)
    assert!(gaps[2] >= Duration::from_millis(1900), "{gaps:?}");
    assert!(gaps[3] >= Duration::from_millis(1900), "{gaps:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_control_max_age_is_a_minimum_interval() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("a", doc(1));
    feeds.set_header("a", "cache-control", "max-age=3");
    feeds.set("b", doc(2));
    dir.standard_config(
        &[("a", feeds.url("a")), ("b", feeds.url("b"))],
        &hook.url(),
        "every 1s",
    );

    let daemon = dir.spawn_daemon();
    // Until `a` has been fetched three times (two gaps of its max-age).
    eventually("three fetches of `a`", Duration::from_secs(20), || async {
        (feeds.hits("a").len() >= 3).then_some(())
    })
    .await;
    assert_eq!(daemon.terminate().await, Some(0));

    // The gaps are measured where the requests arrive: a request the loaded machine sent
    // late shortens the gap after it, though the daemon waited its 3 s from the fetch's
    // start. Anything well above the 1 s schedule shows that max-age set the pace.
    let a = gaps(&feeds.hits("a"));
    assert!(
        !a.is_empty() && a.iter().all(|g| *g >= Duration::from_millis(2500)),
        "{a:?}"
    );
    // The other feed keeps its 1s schedule.
    assert!(feeds.hits("b").len() >= 4, "{:?}", gaps(&feeds.hits("b")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_answering_410_is_disabled_with_a_visible_reason() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.then("gone", [Reply::status(410)]);
    feeds.set("gone", doc(1));
    dir.standard_config(&[("gone", feeds.url("gone"))], &hook.url(), "*/5 * * * *");

    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("gone: disabled: http status 410 Gone"),
        "{}",
        stdout(&out)
    );
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success());
    assert_eq!(
        feeds.hits("gone").len(),
        1,
        "a disabled feed is not fetched"
    );

    let status = dir.wirewatch(&["feeds"]).await;
    assert!(
        stdout(&status).contains("gone  DISABLED: http status 410 Gone"),
        "{}",
        stdout(&status)
    );
    let json = dir.wirewatch(&["feeds", "--json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json[0]["last_error_class"], "http_status");
    assert!(json[0]["disabled_at"].is_i64());

    // A new URL in the config (the publisher moved it) enables it again.
    dir.edit_config(|text| text.replace("/feeds/gone", "/feeds/gone?v=2"));
    let out = dir.wirewatch(&["poll"]).await;
    assert!(stdout(&out).contains("gone: 1 items"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_redirect_moves_the_feed_and_a_temporary_one_does_not() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("new-home", doc(1));
    feeds.set("elsewhere", doc(2));
    feeds.then(
        "old-home",
        [Reply::status(301).header("location", feeds.url("new-home"))],
    );
    feeds.then(
        "wandering",
        [Reply::status(302).header("location", feeds.url("elsewhere"))],
    );
    feeds.set("wandering", doc(3));
    dir.standard_config(
        &[
            ("moved", feeds.url("old-home")),
            ("hopping", feeds.url("wandering")),
        ],
        &hook.url(),
        "*/5 * * * *",
    );

    for _ in 0..2 {
        let out = dir.wirewatch(&["poll"]).await;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // The 301 was followed once, then the new URL was used directly.
    assert_eq!(feeds.hits("old-home").len(), 1);
    assert_eq!(feeds.hits("new-home").len(), 2);
    // The 302 was followed, and the next poll went back to the configured URL.
    assert_eq!(feeds.hits("wandering").len(), 2);
    assert_eq!(feeds.hits("elsewhere").len(), 1);

    let json = dir.wirewatch(&["feeds", "--json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let moved = json
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "moved")
        .unwrap();
    assert_eq!(moved["moved_to"], feeds.url("new-home"));
    let hopping = json
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "hopping")
        .unwrap();
    assert!(hopping["moved_to"].is_null());
}
