//! Metrics: what the pipeline counts, recorded through the `metrics` facade and rendered
//! in the Prometheus text format by `/metrics`.
//!
//! Every name starts with `wirewatch_` and carries its unit; labels are bounded (outcome
//! classes, watch-list and webhook names from the config, never URLs or item text).
//! Recording is a no-op until [`install`] runs, so commands that serve no `/metrics`
//! (`check`, `poll`) pay nothing.

use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for request durations, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the process-wide recorder and returns the handle that renders it.
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets(&DURATION_BUCKETS)
        .map_err(|err| format!("cannot configure metrics: {err}"))?
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

/// Items stored as new, matches made and alerts queued by one refresh.
pub fn refreshed(new_items: usize, alerts: usize) {
    metrics::counter!("wirewatch_items_new_total").increment(new_items as u64);
    metrics::counter!("wirewatch_alerts_queued_total").increment(alerts as u64);
}

pub fn matched(watchlist: &str) {
    metrics::counter!("wirewatch_matches_total", "watchlist" => watchlist.to_string()).increment(1);
}

/// One delivery attempt: `outcome` is `delivered`, `failed`, `dead` or `disabled`.
pub fn delivery(webhook: &str, outcome: &'static str, took: Duration) {
    metrics::counter!("wirewatch_deliveries_total", "webhook" => webhook.to_string(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("wirewatch_delivery_duration_seconds", "webhook" => webhook.to_string())
        .record(took.as_secs_f64());
}
