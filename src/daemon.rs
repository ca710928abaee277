//! The daemon's wiring: open the store, start the scheduler and the outbox worker, and
//! stop both cleanly on SIGTERM or SIGINT.
//!
//! Shutdown order matters for the delivery guarantee: the scheduler stops launching
//! fetches and gives in-flight refreshes a grace period to commit (an abandoned refresh
//! commits nothing, so it is simply fetched again next time); the worker stops claiming
//! rows, and a row whose send was interrupted stays pending under its lease, to be sent
//! again after restart. Nothing is marked delivered without a 2xx.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::fetch::Fetcher;
use crate::notify::Notifier;
use crate::refresh::Pipeline;
use crate::schedule;
use crate::store::Store;

/// How long in-flight work may take to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Opens the store and registers every configured feed: the start of `run` and `poll`.
pub async fn open(config: &Arc<Config>) -> anyhow::Result<(Store, Pipeline)> {
    let store = Store::open(&config.daemon.database).await?;
    let feeds: Vec<(&str, &str)> = config
        .feeds
        .iter()
        .map(|f| (f.name.as_str(), f.url.as_str()))
        .collect();
    store
        .sync_feeds(&feeds)
        .await
        .context("cannot register the configured feeds")?;
    let fetcher = Fetcher::new(&config.poll).context("cannot build the HTTP client")?;
    let pipeline = Pipeline {
        config: config.clone(),
        store: store.clone(),
        fetcher,
    };
    Ok((store, pipeline))
}

/// `wirewatch run`: polls on schedule and delivers alerts until SIGTERM/SIGINT.
pub async fn run(config: Arc<Config>) -> anyhow::Result<()> {
    let (store, pipeline) = open(&config).await?;
    let notifier =
        Notifier::new(store.clone(), config.clone()).context("cannot build the HTTP client")?;
    tracing::info!(
        feeds = config.feeds.len(),
        watchlists = config.watchlists.len(),
        webhooks = config.webhooks.len(),
        database = %config.daemon.database.display(),
        "wirewatch started"
    );

    let shutdown = CancellationToken::new();
    let committed = Arc::new(Notify::new());
    let scheduler = tokio::spawn(schedule::run(
        pipeline,
        committed.clone(),
        shutdown.clone(),
        SHUTDOWN_GRACE,
    ));
    let worker = tokio::spawn(notifier.run(committed, shutdown.clone()));

    wait_for_signal().await?;
    tracing::info!("shutting down");
    shutdown.cancel();
    let stopped = async {
        let _ = scheduler.await;
        let _ = worker.await;
    };
    if tokio::time::timeout(SHUTDOWN_GRACE * 2, stopped)
        .await
        .is_err()
    {
        tracing::warn!("tasks did not stop in time; pending work stays queued");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
