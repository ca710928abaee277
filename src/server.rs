//! The HTTP listener on `daemon.listen` (SPEC §7): `/healthz` (the process answers),
//! `/readyz` (the database answers and a configuration is loaded), `/metrics`
//! (Prometheus text format) and the read-only JSON API `/api/v1/matches` and
//! `/api/v1/feeds`.
//!
//! Input: the store, the current configuration (swapped on reload) and the metrics
//! handle. Output: answers only; nothing here writes to the store or blocks the pipeline.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::redact;
use crate::store::{FeedStatus, MatchQuery, Store};

/// The most matches one API call returns.
const MAX_LIMIT: i64 = 1000;

#[derive(Clone)]
struct App {
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    metrics: PrometheusHandle,
}

/// Binds `addr` now (so a taken port is a start-up error) and serves until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(listen = %addr, "serving health, metrics and the API");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .route("/api/v1/matches", get(matches))
        .route("/api/v1/feeds", get(feeds))
        .with_state(App {
            store,
            config,
            metrics,
        });
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the HTTP listener failed");
        }
    }))
}

/// A failure to answer, as JSON with the status it maps to.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1 });
        (self.0, Json(body)).into_response()
    }
}

fn unavailable(err: impl std::fmt::Display) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("database unavailable: {err}"),
    )
}

/// Ready while the database takes writes, as the last write found (the daemon probes it
/// while it fails and while it is idle): answered from memory, so it never waits for the
/// writer, and steady while a fault lasts.
async fn ready(State(app): State<App>) -> impl IntoResponse {
    match app.store.health().failing() {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(failing) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: the database does not take writes since {}: {}\n",
                failing
                    .since
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                failing.error
            ),
        ),
    }
}

/// The configured feeds' status rows (a feed removed from the config keeps its row, so
/// its stored items still back their matches, but is no longer reported).
pub async fn configured_feeds(
    store: &Store,
    config: &Config,
) -> crate::store::Result<Vec<FeedStatus>> {
    let mut statuses = store.feed_statuses().await?;
    statuses.retain_mut(|status| {
        let Some(feed) = config.feed_index(&status.name).map(|i| &config.feeds[i]) else {
            return false;
        };
        // Credentials in a feed URL never leave the process.
        for url in std::iter::once(&mut status.url).chain(status.moved_to.as_mut()) {
            *url = match url::Url::parse(url) {
                Ok(parsed) => redact::url(&parsed, &feed.redact_params).to_string(),
                // Not a URL the daemon could have stored; show nothing of it.
                Err(_) => redact::REDACTED.to_string(),
            };
        }
        true
    });
    Ok(statuses)
}

async fn render_metrics(State(app): State<App>) -> Result<impl IntoResponse, ApiError> {
    // Gauges are read from the store at scrape time, so they are never stale.
    let config = app.config.borrow().clone();
    metrics::gauge!("wirewatch_database_bytes").set(app.store.disk_bytes() as f64);
    metrics::gauge!("wirewatch_database_writable").set(if app.store.health().writable() {
        1.0
    } else {
        0.0
    });
    let pending = app.store.pending_deliveries().await.map_err(unavailable)?;
    metrics::gauge!("wirewatch_outbox_pending").set(pending as f64);
    let now = Utc::now().timestamp();
    for (feed, at) in app.store.last_successes().await.map_err(unavailable)? {
        if config.feed_index(&feed).is_some() {
            metrics::gauge!("wirewatch_feed_last_success_age_seconds", "feed" => feed)
                .set((now - at).max(0) as f64);
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    ))
}

#[derive(Debug, Deserialize)]
struct MatchesParams {
    watchlist: Option<String>,
    /// A duration back from now (`24h`) or an RFC 3339 time.
    since: Option<String>,
    q: Option<String>,
    limit: Option<i64>,
}

async fn matches(
    State(app): State<App>,
    Query(params): Query<MatchesParams>,
) -> Result<impl IntoResponse, ApiError> {
    let since = match params.since.as_deref() {
        None => None,
        Some(text) => Some(parse_since(text, Utc::now()).ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("since `{text}` is neither a duration like 24h nor an RFC 3339 time"),
            )
        })?),
    };
    let query = MatchQuery {
        watchlist: params.watchlist,
        since,
        search: params.q,
        limit: params.limit.unwrap_or(100).clamp(1, MAX_LIMIT),
    };
    let rows = app.store.matches(&query).await.map_err(unavailable)?;
    Ok(Json(rows))
}

async fn feeds(State(app): State<App>) -> Result<impl IntoResponse, ApiError> {
    let config = app.config.borrow().clone();
    let statuses = configured_feeds(&app.store, &config)
        .await
        .map_err(unavailable)?;
    Ok(Json(statuses))
}

/// `24h` (back from `now`) or an RFC 3339 time, as Unix seconds.
fn parse_since(text: &str, now: DateTime<Utc>) -> Option<i64> {
    if let Ok(back) = humantime::parse_duration(text) {
        let back = chrono::Duration::from_std(back).ok()?;
        return now.checked_sub_signed(back).map(|t| t.timestamp());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_or_an_rfc3339_time() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(parse_since("2h", now), Some(now.timestamp() - 7200));
        assert_eq!(
            parse_since("2026-11-27T10:00:00Z", now),
            Some(now.timestamp() - 86400)
        );
        assert_eq!(parse_since("yesterday", now), None);
        assert_eq!(
            parse_since("1000000y", now),
            None,
            "out of range, not a panic"
        );
    }
}
