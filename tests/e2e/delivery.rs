//! Delivery through the daemon: Standard Webhooks signatures, retries, and restarts that
//! never resend what was delivered.

use std::collections::HashSet;
use std::time::Duration;

use crate::helpers::{
    FeedServer, Hook, Item, Receiver, Reply, SECRET, TestDir, rss, stderr, wait_for_rows,
};

#[tokio::test(flavor = "multi_thread")]
async fn signatures_verify_with_the_standardwebhooks_crate() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set(
        "wire",
        rss(&[
            Item::new(
                "1",
                "Iran and China sign a pact",
                "https://news.example.org/1",
            ),
            Item::new("2", "ایران و چین", "https://news.example.org/2"),
        ]),
    );
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "*/5 * * * *");
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));

    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    let received = hook.received();
    assert_eq!(received.len(), 2);
    for request in &received {
        let mut headers = http::HeaderMap::new();
        for (name, value) in &request.headers {
            headers.insert(name.clone(), value.clone());
        }
        verifier
            .verify(&request.body, &headers)
            .expect("the signature verifies");
        // A tampered body must not verify: the check above is not vacuous.
        let mut tampered = request.body.to_vec();
        tampered.push(b' ');
        assert!(verifier.verify(&tampered, &headers).is_err());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_delivery_is_retried_under_the_same_webhook_id() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set(
        "wire",
        rss(&[Item::new(
            "1",
            "SCO summit opens",
            "https://news.example.org/1",
        )]),
    );
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "*/5 * * * *");
    hook.then([Reply::status(500)]);

    let daemon = dir.spawn_daemon();
    let received = hook.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(daemon.terminate().await, Some(0));

    assert_eq!(received.len(), 2, "one failed attempt, then one retry");
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    assert_eq!(
        received[0].body, received[1].body,
        "a retry resends the same bytes"
    );
    // retry_schedule = ["1s", ...] with ±20% jitter, on whole seconds.
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_millis(500), "retried after {gap:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restarting_the_daemon_after_delivery_sends_nothing_again() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
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
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "every 1s");

    let daemon = dir.spawn_daemon();
    let received = hook.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 2);
    assert_eq!(daemon.terminate().await, Some(0), "SIGTERM exits 0");
    let polls_before = feeds.hits("wire").len();

    let daemon = dir.spawn_daemon();
    // The restarted daemon polls (every second) and finds nothing new to send.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while feeds.hits("wire").len() < polls_before + 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        feeds.hits("wire").len() >= polls_before + 2,
        "the restarted daemon polls"
    );
    assert_eq!(daemon.terminate().await, Some(0));
    assert_eq!(hook.received().len(), 2);

    // While running, new items still alert exactly once each.
    feeds.set(
        "wire",
        rss(&[
            Item::new(
                "1",
                "Iran and China sign a pact",
                "https://news.example.org/1",
            ),
            Item::new("2", "JCPOA talks resume", "https://news.example.org/2"),
            Item::new(
                "3",
                "China and SCO partners meet",
                "https://news.example.org/3",
            ),
        ]),
    );
    let daemon = dir.spawn_daemon();
    let received = hook.wait_for(3, Duration::from_secs(20)).await;
    // Stop once all three are marked delivered, not while a mark is on its way.
    wait_for_rows(
        &dir,
        "SELECT COUNT(*) FROM outbox WHERE status = 'delivered'",
        Duration::from_secs(10),
        |n| n >= 3,
    )
    .await;
    assert_eq!(daemon.terminate().await, Some(0));
    let received = if received.len() == 3 {
        hook.received()
    } else {
        received
    };
    assert_eq!(received.len(), 3);
    let ids: HashSet<String> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_format_is_signed_and_verifies_with_the_standardwebhooks_crate() {
    let feeds = FeedServer::start().await;
    let dir = TestDir::new();
    let formats = ["json", "slack", "discord", "teams"];
    let mut receivers = Vec::new();
    for _ in formats {
        receivers.push(Receiver::start().await);
    }
    let hooks: Vec<Hook> = formats
        .iter()
        .zip(&receivers)
        .map(|(format, receiver)| Hook::new(format, &receiver.url()).format(format))
        .collect();
    feeds.set(
        "wire",
        rss(&[Item::new(
            "1",
            "Iran & China sign a *pact* (a < b)",
            "https://news.example.org/1",
        )]),
    );
    dir.config_with(&[("wire", feeds.url("wire"))], &hooks, "*/5 * * * *");
    let out = dir.wirewatch(&["poll"]).await;
    assert!(out.status.success(), "{}", stderr(&out));

    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    let mut ids = HashSet::new();
    for (format, receiver) in formats.iter().zip(&receivers) {
        let received = receiver.received();
        assert_eq!(received.len(), 1, "{format}");
        let request = &received[0];
        let mut headers = http::HeaderMap::new();
        for (name, value) in &request.headers {
            headers.insert(name.clone(), value.clone());
        }
        verifier
            .verify(&request.body, &headers)
            .unwrap_or_else(|err| panic!("{format}: {err:?}"));
        ids.insert(request.header("webhook-id"));
        let body = request.json();
        let shape = match *format {
            "json" => &body["data"]["item"]["title"],
            "slack" => &body["blocks"],
            "discord" => &body["embeds"][0]["title"],
            _ => &body["attachments"][0]["content"]["body"],
        };
        assert!(!shape.is_null(), "{format}: {body}");
    }
    assert_eq!(ids.len(), 4, "each webhook's row has its own id");
}
