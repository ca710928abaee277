//! Receivers that misbehave: outages with `Retry-After`, 410 Gone, redirects, and retry
//! schedules running out into dead letters that `redeliver` sends again.

use std::time::Duration;

use crate::helpers::{
    FeedServer, Hook, Item, Receiver, Reply, TestDir, rss, stderr, stdout, wait_for_rows,
};

fn one_story() -> String {
    rss(&[Item::new(
        "1",
        "SCO summit opens in Astana",
        "https://news.example.org/1",
    )])
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_loses_nothing_and_retries_are_spaced_as_told() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("wire", one_story());
    dir.config_with(
        &[("wire", feeds.url("wire"))],
        &[Hook::new("siem", &hook.url()).retry(&["1s", "1s", "1s", "1s", "1s"])],
        "*/5 * * * *",
    );
    hook.then([
        Reply::status(503).header("retry-after", "3"),
        Reply::status(500),
        Reply::status(500),
    ]);

    let daemon = dir.spawn_daemon();
    let received = hook
        .wait_until(Duration::from_secs(30), |r| r.iter().any(|r| r.accepted()))
        .await;
    assert_eq!(daemon.terminate().await, Some(0));

    let statuses: Vec<u16> = received.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 500, 500, 200]);
    let gaps: Vec<Duration> = received.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps[0] >= Duration::from_secs(3),
        "Retry-After: 3 honoured, got {gaps:?}"
    );
    for gap in &gaps[1..] {
        // "1s" with ±20% jitter, rounded up to whole seconds: never sooner. (How late is a
        // matter of load here; the notifier's paused-time tests pin the schedule.)
        assert!(
            *gap >= Duration::from_millis(800),
            "retry too early: {gaps:?}"
        );
    }
    let ids: Vec<String> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one webhook-id across retries"
    );

    let listed = dir.wirewatch(&["deliveries", "--json"]).await;
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["deliveries"][0]["status"], "delivered");
    assert_eq!(listed["deliveries"][0]["attempts"], 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_410_disables_that_webhook_only_until_it_is_re_enabled() {
    let feeds = FeedServer::start().await;
    let (gone, healthy, dir) = (
        Receiver::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    gone.always(Reply::status(410));
    feeds.set("wire", one_story());
    dir.config_with(
        &[("wire", feeds.url("wire"))],
        &[
            Hook::new("gone", &gone.url()),
            Hook::new("healthy", &healthy.url()),
        ],
        "*/5 * * * *",
    );

    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(gone.received().len(), 1);
    assert_eq!(healthy.received().len(), 1);

    // More stories: the healthy webhook gets them, the gone one is not called again.
    feeds.set(
        "wire",
        rss(&[
            Item::new(
                "1",
                "SCO summit opens in Astana",
                "https://news.example.org/1",
            ),
            Item::new(
                "2",
                "Iran and China sign a pact",
                "https://news.example.org/2",
            ),
            Item::new("3", "JCPOA talks resume", "https://news.example.org/3"),
        ]),
    );
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(gone.received().len(), 1, "no call after a 410");
    assert_eq!(healthy.received().len(), 3);

    let listed = dir.wirewatch(&["deliveries"]).await;
    let text = stdout(&listed);
    assert!(text.contains("webhook gone DISABLED since"), "{text}");
    assert!(text.contains("410 Gone"), "{text}");

    // The receiver comes back; the operator re-enables the webhook; all three go out.
    gone.always(Reply::ok());
    let out = dir.wirewatch(&["redeliver", "--webhook", "gone"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let received = gone.received();
    assert_eq!(received.len(), 4);
    assert!(received[1..].iter().all(|r| r.accepted()));
    let first = received[0].header("webhook-id");
    assert!(
        received[1..]
            .iter()
            .any(|r| r.header("webhook-id") == first),
        "the alert refused with 410 is sent again under its own id"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_a_failure_and_is_not_followed() {
    let feeds = FeedServer::start().await;
    let (moved, elsewhere, dir) = (
        Receiver::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    moved.always(Reply::status(301).header("location", elsewhere.url()));
    feeds.set("wire", one_story());
    dir.config_with(
        &[("wire", feeds.url("wire"))],
        &[Hook::new("moved", &moved.url())],
        "*/5 * * * *",
    );

    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(moved.received().len(), 1);
    assert!(elsewhere.received().is_empty(), "the redirect was followed");

    let listed = dir
        .wirewatch(&["deliveries", "--status", "failed", "--json"])
        .await;
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let row = &listed["deliveries"][0];
    assert_eq!(row["last_status"], 301);
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_after_the_schedule_is_sent_again_by_redeliver() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    hook.always(Reply::status(500));
    feeds.set("wire", one_story());
    dir.config_with(
        &[("wire", feeds.url("wire"))],
        &[Hook::new("siem", &hook.url()).retry(&["1s"])],
        "*/5 * * * *",
    );

    let daemon = dir.spawn_daemon();
    let received = hook.wait_for(2, Duration::from_secs(20)).await;
    // Stop once the second failure is recorded: the row is dead-lettered.
    wait_for_rows(
        &dir,
        "SELECT COUNT(*) FROM outbox WHERE status = 'dead'",
        Duration::from_secs(10),
        |n| n >= 1,
    )
    .await;
    assert_eq!(daemon.terminate().await, Some(0));
    assert_eq!(received.len(), 2, "one attempt and one retry, then nothing");

    let dead = dir
        .wirewatch(&["deliveries", "--status", "dead", "--json"])
        .await;
    let dead: serde_json::Value = serde_json::from_slice(&dead.stdout).unwrap();
    let rows = dead["deliveries"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["last_error"],
        "http status 500 Internal Server Error"
    );
    assert_eq!(rows[0]["id"], received[0].header("webhook-id"));

    hook.always(Reply::ok());
    let out = dir.wirewatch(&["redeliver", "--dead"]).await;
    assert!(
        stdout(&out).contains("1 dead deliveries re-queued"),
        "{}",
        stdout(&out)
    );
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let received = hook.received();
    assert_eq!(received.len(), 3);
    assert!(received[2].accepted());
    assert_eq!(
        received[2].header("webhook-id"),
        received[0].header("webhook-id")
    );

    let out = dir.wirewatch(&["redeliver", "msg_nonexistent"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no delivery with id msg_nonexistent"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_webhook_config_re_enables_a_webhook_disabled_by_a_410() {
    let feeds = FeedServer::start().await;
    let (gone, moved_to, dir) = (
        Receiver::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    gone.always(Reply::status(410));
    feeds.set("wire", one_story());
    dir.config_with(
        &[("wire", feeds.url("wire"))],
        &[Hook::new("siem", &gone.url())],
        "*/5 * * * *",
    );
    assert!(dir.wirewatch(&["poll"]).await.status.success());
    assert_eq!(gone.received().len(), 1);

    // The receiver moved; the operator points the webhook at its new address.
    dir.config_with(
        &[("wire", feeds.url("wire"))],
        &[Hook::new("siem", &moved_to.url())],
        "*/5 * * * *",
    );
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let received = moved_to.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].accepted());
    assert_eq!(
        received[0].header("webhook-id"),
        gone.received()[0].header("webhook-id")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_webhook_does_not_delay_another() {
    let feeds = FeedServer::start().await;
    let (stuck, quick, dir) = (
        Receiver::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    stuck.always(Reply::ok().after(Duration::from_secs(30)));
    feeds.set(
        "wire",
        rss(&[
            Item::new(
                "1",
                "SCO summit opens in Astana",
                "https://news.example.org/1",
            ),
            Item::new(
                "2",
                "Iran and China sign a pact",
                "https://news.example.org/2",
            ),
            Item::new("3", "JCPOA talks resume", "https://news.example.org/3"),
        ]),
    );
    dir.config_with(
        &[("wire", feeds.url("wire"))],
        &[
            Hook::new("stuck", &stuck.url()).timeout("20s"),
            Hook::new("quick", &quick.url()),
        ],
        "*/5 * * * *",
    );

    let daemon = dir.spawn_daemon();
    let started = std::time::Instant::now();
    let received = quick.wait_for(3, Duration::from_secs(19)).await;
    let took = started.elapsed();
    assert_eq!(received.len(), 3);
    // Held up behind the stuck receiver, the quick one would wait for its 20 s timeout.
    assert!(
        took < Duration::from_secs(19),
        "quick webhook waited {took:?}"
    );
    // Its worker runs beside the quick one's; on a loaded machine its first request may
    // land just after the quick receiver has all three.
    assert!(
        !stuck.wait_for(1, Duration::from_secs(10)).await.is_empty(),
        "the stuck webhook is being called too"
    );

    // SIGTERM while the stuck requests are in flight: the daemon exits 0 after its
    // shutdown deadline, and what got no 2xx stays queued.
    let stopping = std::time::Instant::now();
    assert_eq!(daemon.terminate().await, Some(0));
    // The shutdown grace is 10 s; the stuck requests' own 20 s timeout must not hold it.
    assert!(
        stopping.elapsed() < Duration::from_secs(19),
        "took {:?}",
        stopping.elapsed()
    );
    let pending = dir
        .wirewatch(&["deliveries", "--status", "pending", "--json"])
        .await;
    let pending: serde_json::Value = serde_json::from_slice(&pending.stdout).unwrap();
    let rows = pending["deliveries"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{pending}");
    assert!(rows.iter().all(|r| r["webhook"] == "stuck"));

    // Once the receiver answers, the next life delivers them at once, under the same ids.
    stuck.always(Reply::ok());
    let daemon = dir.spawn_daemon();
    let received = stuck
        .wait_until(Duration::from_secs(15), |r| {
            r.iter().filter(|r| r.accepted() && r.at > stopping).count() >= 3
        })
        .await;
    assert_eq!(daemon.terminate().await, Some(0));
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    for id in ids {
        assert!(
            received
                .iter()
                .any(|r| r.header("webhook-id") == id && r.accepted())
        );
    }
}
