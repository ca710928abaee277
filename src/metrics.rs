//! Metrics: what the pipeline counts, recorded through the `metrics` facade and rendered
//! in the Prometheus text format by `/metrics`.
//!
//! Every name starts with `wirewatch_` and carries its unit; labels are bounded (outcome
//! classes, watch-list and webhook names from the config, never URLs or item text).
//! Recording is a no-op until [`install`] runs, so commands that serve no `/metrics`
//! (`check`, `poll`) pay nothing.

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for request durations, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets for the feeds per group commit (at most `commit::MAX_BATCH`).
const BATCH_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// Buckets for scheduler lateness, in seconds: fine below a second, where it should be.
const LATENESS_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Installs the process-wide recorder and returns the handle that renders it.
pub fn install() -> Result<PrometheusHandle, String> {
    let configure = |err| format!("cannot configure metrics: {err}");
    PrometheusBuilder::new()
        .set_buckets(&DURATION_BUCKETS)
        .map_err(configure)?
        .set_buckets_for_metric(
            Matcher::Full("wirewatch_commit_batch_feeds".into()),
            &BATCH_BUCKETS,
        )
        .map_err(configure)?
        .set_buckets_for_metric(
            Matcher::Full("wirewatch_schedule_lateness_seconds".into()),
            &LATENESS_BUCKETS,
        )
        .map_err(configure)?
        .install_recorder()
        .map_err(|err| format!("cannot install the metrics recorder: {err}"))
}

/// One fetch and parse of a feed: `outcome` is `ok`, `not_modified`, or the class of the
/// failure (`network`, `timeout`, `http_status`, `too_large`, `forbidden`, `not_a_feed`,
/// `malformed`).
pub fn fetch(outcome: &'static str, took: Duration) {
    metrics::counter!("wirewatch_fetches_total", "outcome" => outcome).increment(1);
    metrics::histogram!("wirewatch_fetch_duration_seconds", "outcome" => outcome)
        .record(took.as_secs_f64());
}

/// What the parse stage cut from one document to keep it within its caps: items past
/// `parse::MAX_ITEMS`, and other elements or array entries past theirs.
pub fn capped(items: usize, elements: usize) {
    metrics::counter!("wirewatch_parse_dropped_total", "what" => "items").increment(items as u64);
    metrics::counter!("wirewatch_parse_dropped_total", "what" => "elements")
        .increment(elements as u64);
}

/// Items stored as new, matches made and alerts queued by one refresh.
pub fn refreshed(new_items: usize, alerts: usize) {
    metrics::counter!("wirewatch_items_new_total").increment(new_items as u64);
    metrics::counter!("wirewatch_alerts_queued_total").increment(alerts as u64);
}

/// One group commit: how many refreshes' results it wrote, and how long it took from the
/// writer taking the batch to `COMMIT`, waiting for the write lock included.
pub fn commit(feeds: usize, took: Duration) {
    metrics::histogram!("wirewatch_commit_batch_feeds").record(feeds as f64);
    metrics::histogram!("wirewatch_commit_duration_seconds").record(took.as_secs_f64());
}

/// How late the scheduler started a due feed: from its due time (jitter included) to the
/// moment it had its fetch slots. Waiting for a free slot counts, and so does waiting for
/// a host that asked to be left alone (`Retry-After`).
pub fn schedule_lateness(late: Duration) {
    metrics::histogram!("wirewatch_schedule_lateness_seconds").record(late.as_secs_f64());
}

/// Rows deleted by a retention pass, by table, and pages given back to the file system.
pub fn pruned(pruned: &crate::store::retention::Pruned) {
    for (table, rows) in [
        ("outbox", pruned.deliveries),
        ("digests", pruned.digests),
        ("matches", pruned.matches),
        ("items", pruned.items),
        ("stories", pruned.stories),
    ] {
        metrics::counter!("wirewatch_pruned_rows_total", "table" => table).increment(rows);
    }
    metrics::counter!("wirewatch_pages_released_total").increment(pruned.pages);
}

pub fn matched(watchlist: &str) {
    metrics::counter!("wirewatch_matches_total", "watchlist" => watchlist.to_string()).increment(1);
}

/// An item that hit a watch-list's terms and did not alert on its own, by why (SPEC §11):
/// `backfill`, `same_story`, `excluded`, `query_false`, `muted`, `rate_limited`, `digest`.
pub fn suppressed(watchlist: &str, reason: &'static str) {
    metrics::counter!("wirewatch_suppressed_total", "watchlist" => watchlist.to_string(), "reason" => reason)
        .increment(1);
}

/// A digest queued for a watch-list's webhooks, with the stories it carries.
pub fn digest(watchlist: &str, stories: usize) {
    metrics::counter!("wirewatch_digests_total", "watchlist" => watchlist.to_string()).increment(1);
    metrics::counter!("wirewatch_digest_stories_total", "watchlist" => watchlist.to_string())
        .increment(stories as u64);
}

/// One article page of a `full_text` feed (SPEC §13): `ok`, `known_story` (its story was
/// read already: not fetched), `timeout`, a fetch failure's class (`network`,
/// `http_status`, `too_large`, `forbidden`) or `unreadable` (no main text to extract).
pub fn article(outcome: &'static str) {
    metrics::counter!("wirewatch_article_fetches_total", "outcome" => outcome).increment(1);
}

/// Items stored as sightings of a story that already existed, by what joined them: `link`
/// (a canonical link the story carries) or `text` (a near-identical item in the window).
pub fn story_sightings(by: &'static str, items: usize) {
    metrics::counter!("wirewatch_story_sightings_total", "by" => by).increment(items as u64);
}

/// One delivery attempt: `outcome` is `delivered`, `failed`, `dead` or `disabled`.
pub fn delivery(webhook: &str, outcome: &'static str, took: Duration) {
    metrics::counter!("wirewatch_deliveries_total", "webhook" => webhook.to_string(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("wirewatch_delivery_duration_seconds", "webhook" => webhook.to_string())
        .record(took.as_secs_f64());
}

/// The HTTP listener started with room for `max` connections at once:
/// `wirewatch_http_connections_max`, and the refusal count from zero (a counter that never
/// moved is still scraped, so a rate over it is defined).
pub fn http_listener(max: usize) {
    metrics::gauge!("wirewatch_http_connections_max").set(max as f64);
    metrics::counter!("wirewatch_http_connections_refused_total").increment(0);
}

/// A connection the HTTP listener closed unanswered because its cap was reached.
pub fn http_connection_refused() {
    metrics::counter!("wirewatch_http_connections_refused_total").increment(1);
}

/// A request or connection the HTTP listener cut off: `stage` is `header` (the request
/// head, or the next one on an idle connection, took too long), `request` (the handler, or
/// the body it reads, took too long) or `write` (the client stopped reading the answer).
pub fn http_timeout(stage: &'static str) {
    metrics::counter!("wirewatch_http_timeouts_total", "stage" => stage).increment(1);
}

/// One open connection of the HTTP listener, counted in `wirewatch_http_connections_open`
/// for as long as it lives (dropped with its task, even an aborted one).
pub struct HttpConnection(());

impl HttpConnection {
    pub fn open() -> HttpConnection {
        metrics::gauge!("wirewatch_http_connections_open").increment(1.0);
        HttpConnection(())
    }
}

impl Drop for HttpConnection {
    fn drop(&mut self) {
        metrics::gauge!("wirewatch_http_connections_open").decrement(1.0);
    }
}
