//! The HTTP listener on `daemon.listen`: `/healthz` (the process answers), `/readyz` (the
//! database answers) and `/metrics` (Prometheus text format).
//!
//! Input: the store and the metrics handle. Output: small plain-text answers; nothing
//! here writes or blocks the pipeline.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

#[derive(Clone)]
struct App {
    store: Store,
    metrics: PrometheusHandle,
}

/// Binds `addr` now (so a taken port is a start-up error) and serves until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    store: Store,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(listen = %addr, "serving /healthz, /readyz and /metrics");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(App { store, metrics });
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the HTTP listener failed");
        }
    }))
}

async fn ready(State(app): State<App>) -> impl IntoResponse {
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unavailable: {err}\n"),
        ),
    }
}

async fn render_metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
}
