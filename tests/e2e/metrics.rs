//! The daemon's HTTP listener: health, readiness, and metrics in the Prometheus text
//! format, read back with an independent parser.

use std::time::Duration;

use crate::helpers::{
    FeedServer, Item, Receiver, TestDir, eventually, http_get, readyz_until, rss,
};

async fn get(url: &str) -> (u16, String) {
    http_get(url).await.expect("the listener answers")
}

fn sample(scrape: &prometheus_parse::Scrape, metric: &str, label: (&str, &str)) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && s.labels.get(label.0) == Some(label.1))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_fetch_outcomes_matches_and_deliveries() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set(
        "good",
        rss(&[Item::new(
            "1",
            "Iran and China sign a pact",
            "https://news.example.org/1",
        )]),
    );
    feeds.set(
        "page",
        "<!DOCTYPE html><html><head><title>Sign in</title></head></html>".into(),
    );
    dir.standard_config(
        &[
            ("good", feeds.url("good")),
            ("page", feeds.url("page")),
            ("missing", feeds.url("missing")),
        ],
        &hook.url(),
        "every 1s",
    );
    let port = dir.listen_on_free_port();

    let daemon = dir.spawn_daemon();
    hook.wait_for(1, Duration::from_secs(15)).await;
    // Until a second round of fetches has happened, so the good feed has a 304 too.
    eventually(
        "a 304 for the good feed",
        Duration::from_secs(15),
        || async {
            feeds
                .hits("good")
                .iter()
                .any(|h| h.status == 304)
                .then_some(())
        },
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let health = get(&format!("{base}/healthz")).await;
    let ready = get(&format!("{base}/readyz")).await;
    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(daemon.terminate().await, Some(0));

    assert_eq!(health.0, 200);
    assert_eq!(ready.0, 200);
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let fetches = |outcome| sample(&scrape, "wirewatch_fetches_total", ("outcome", outcome));
    assert!(fetches("ok") >= 1.0, "{text}");
    assert!(fetches("not_modified") >= 1.0, "{text}");
    assert!(fetches("not_a_feed") >= 1.0, "{text}");
    assert!(fetches("http_status") >= 1.0, "{text}");
    assert_eq!(
        sample(
            &scrape,
            "wirewatch_matches_total",
            ("watchlist", "iran-china")
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &scrape,
            "wirewatch_deliveries_total",
            ("outcome", "delivered")
        ),
        1.0,
        "{text}"
    );
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| s.metric.starts_with("wirewatch_"))
    );
    // Every family SPEC §7 names, units in the names.
    for family in [
        "wirewatch_fetch_duration_seconds",
        "wirewatch_items_new_total",
        "wirewatch_alerts_queued_total",
        "wirewatch_delivery_duration_seconds",
        "wirewatch_outbox_pending",
        "wirewatch_feed_last_success_age_seconds",
        // And wirewatch's own: how late feeds start, and the group commits.
        "wirewatch_schedule_lateness_seconds",
        "wirewatch_commit_batch_feeds",
        "wirewatch_commit_duration_seconds",
    ] {
        assert!(
            scrape.samples.iter().any(|s| s.metric.starts_with(family)),
            "{family} missing from:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_fails_while_the_database_is_write_locked_and_recovers() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set(
        "good",
        rss(&[Item::new("1", "A quiet day", "https://news.example.org/1")]),
    );
    dir.standard_config(&[("good", feeds.url("good"))], &hook.url(), "*/5 * * * *");
    let port = dir.listen_on_free_port();
    let daemon = dir.spawn_daemon();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline
        && http_get(&format!("{base}/healthz")).await.is_none()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(&format!("{base}/readyz")).await.0, 200);

    // Another process takes the write lock and keeps it: the daemon's next write (a
    // probe, on a quiet daemon) fails, and readiness says so until writes succeed again.
    let mut locker = dir.database().await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    let (status, body) = readyz_until(&base, |status| status == 503).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("not ready: the database does not take writes")
            && body.contains("database is locked"),
        "{body}"
    );
    assert_eq!(
        get(&format!("{base}/healthz")).await.0,
        200,
        "alive, just not ready"
    );

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let (status, body) = readyz_until(&base, |status| status == 200).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(daemon.terminate().await, Some(0));
}
