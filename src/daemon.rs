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
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::fetch::Fetcher;
use crate::notify::{Notifier, Wake};
use crate::refresh::Pipeline;
use crate::schedule;
use crate::server;
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
    let fingerprints: Vec<String> = config.webhooks.iter().map(|w| w.fingerprint()).collect();
    let webhooks: Vec<(&str, &str)> = config
        .webhooks
        .iter()
        .zip(&fingerprints)
        .map(|(w, f)| (w.name.as_str(), f.as_str()))
        .collect();
    store
        .sync_webhooks(&webhooks)
        .await
        .context("cannot register the configured webhooks")?;
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
    // Listen first: a SIGTERM that arrives while the store is still opening must stop
    // the daemon cleanly, not kill it with the default disposition.
    let stop = stop_signal()?;
    let (store, pipeline) = open(&config).await?;
    let notifier =
        Notifier::new(store.clone(), config.clone()).context("cannot build the HTTP client")?;
    let released = store
        .release_leases()
        .await
        .context("cannot release the outbox leases")?;
    if released > 0 {
        tracing::info!(
            deliveries = released,
            "resuming deliveries interrupted by the last stop"
        );
    }
    tracing::info!(
        feeds = config.feeds.len(),
        watchlists = config.watchlists.len(),
        webhooks = config.webhooks.len(),
        database = %config.daemon.database.display(),
        "wirewatch started"
    );

    let shutdown = CancellationToken::new();
    let listener = match config.daemon.listen {
        Some(addr) => {
            let metrics = crate::metrics::install().map_err(anyhow::Error::msg)?;
            Some(server::serve(addr, store.clone(), metrics, shutdown.clone()).await?)
        }
        None => None,
    };
    let committed = Wake::new();
    let scheduler = tokio::spawn(schedule::run(
        pipeline,
        committed.clone(),
        shutdown.clone(),
        SHUTDOWN_GRACE.saturating_sub(Duration::from_secs(1)),
    ));
    let worker = tokio::spawn(notifier.run(committed, shutdown.clone()));

    stop.await;
    tracing::info!("shutting down");
    shutdown.cancel();
    let mut tasks = [scheduler, worker];
    let stopped = async {
        for task in &mut tasks {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, stopped).await.is_err() {
        // Whatever is still in flight never got its 2xx or its commit: it stays queued
        // (or unfetched) and is done again after the restart.
        tracing::warn!(
            "work still in flight at the shutdown deadline is abandoned; it stays queued"
        );
        for task in &tasks {
            task.abort();
        }
    }
    if let Some(listener) = listener {
        let _ = listener.await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Registers for SIGTERM and SIGINT now; the returned future completes on either.
fn stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
