//! The daemon's wiring: open the store, run the scheduler and the outbox workers with the
//! current configuration, swap it on SIGHUP, and stop cleanly on SIGTERM or SIGINT.
//!
//! The scheduler and the workers of one configuration form a *generation*. Reload and
//! shutdown stop a generation the same way, and the order matters for the delivery
//! guarantee: the scheduler stops launching fetches and gives in-flight refreshes a grace
//! period to commit (a refresh abandoned before the database writer took its result
//! commits nothing, so it is simply fetched again); the workers stop claiming rows and
//! finish the requests in flight; then the writer finishes the batch in hand, so nothing of
//! the old configuration is written after the new one is registered. A row whose send was
//! interrupted stays pending, to be sent again. Nothing is marked delivered without a 2xx.
//! An invalid file on reload is refused with a log line and the running generation goes
//! on untouched; so does a configuration the store cannot register (it is registered in
//! one transaction, whole or not at all).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::commit::Writer;
use crate::config::Config;
use crate::notify::Notifier;
use crate::refresh::Pipeline;
use crate::scheduler;
use crate::server;
use crate::store::Store;
use crate::systemd;
use crate::telemetry::error_chain;

/// How long in-flight work may take to finish after SIGTERM or SIGHUP.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Opens the store, registers the configuration and prepares the pipeline: the start of
/// `run` and `poll`. The writer behind the pipeline runs until the pipeline is dropped.
pub async fn open(config: &Arc<Config>) -> anyhow::Result<(Store, Pipeline, Writer)> {
    let store = Store::open(&config.daemon.database).await?;
    register(config, &store).await?;
    let (pipeline, writer) =
        Pipeline::new(config, &store).context("cannot build the HTTP client")?;
    Ok((store, pipeline, writer))
}

/// Registers every configured feed and webhook with the store, in one transaction.
async fn register(config: &Config, store: &Store) -> anyhow::Result<()> {
    let feeds: Vec<(&str, &str)> = config
        .feeds
        .iter()
        .map(|f| (f.name.as_str(), f.url.as_str()))
        .collect();
    let fingerprints: Vec<String> = config.webhooks.iter().map(|w| w.fingerprint()).collect();
    let webhooks: Vec<(&str, &str)> = config
        .webhooks
        .iter()
        .zip(&fingerprints)
        .map(|(w, f)| (w.name.as_str(), f.as_str()))
        .collect();
    store
        .register(&feeds, &webhooks)
        .await
        .context("cannot register the configured feeds and webhooks")
}

/// The scheduler, the outbox workers, the digests and the database writer of one
/// configuration.
struct Generation {
    stop: CancellationToken,
    tasks: [JoinHandle<()>; 3],
    writer: Writer,
}

impl Generation {
    fn start(pipeline: Pipeline, writer: Writer) -> anyhow::Result<Generation> {
        let notifier = Notifier::new(pipeline.store.clone(), pipeline.config.clone())
            .context("cannot build the HTTP client")?;
        let stop = CancellationToken::new();
        // The database writer wakes the outbox workers when it commits alerts.
        let alerts = pipeline.committer.alerts_committed();
        let digests = tokio::spawn(crate::digest::run(
            pipeline.store.clone(),
            pipeline.config.clone(),
            alerts.clone(),
            stop.clone(),
        ));
        let scheduler = tokio::spawn(scheduler::run(
            pipeline,
            stop.clone(),
            SHUTDOWN_GRACE.saturating_sub(Duration::from_secs(1)),
        ));
        let workers = tokio::spawn(notifier.run(alerts, stop.clone()));
        Ok(Generation {
            stop,
            tasks: [scheduler, digests, workers],
            writer,
        })
    }

    /// Stops launching work, lets work in flight finish within the grace period, and
    /// abandons what is left (it stays queued, or unfetched, and is done again). Returns
    /// once the database writer has finished, so nothing of this generation is written
    /// afterwards.
    async fn stop(self) {
        let Generation {
            stop,
            mut tasks,
            writer,
        } = self;
        stop.cancel();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let mut abandoned = false;
        for task in &mut tasks {
            if tokio::time::timeout_at(deadline, &mut *task).await.is_err() {
                abandoned = true;
                task.abort();
                // An aborted task drops its future when it next runs, not at `abort`.
                let _ = task.await;
            }
        }
        if abandoned {
            tracing::warn!("work still in flight at the deadline is abandoned; it stays queued");
        }
        // Every committer is gone with the scheduler: the writer finishes the batch in
        // hand and skips the results of abandoned refreshes.
        if !writer.finish_within(SHUTDOWN_GRACE).await {
            tracing::warn!("the database writer did not finish in time; its batch rolls back");
        }
    }
}

/// The signals the daemon acts on, registered before anything else so that a SIGTERM
/// during start-up stops it cleanly instead of killing it.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

enum Request {
    Stop,
    Reload,
}

impl Signals {
    fn register() -> anyhow::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            hup: signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
        })
    }

    async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Stop,
            _ = self.int.recv() => Request::Stop,
            _ = self.hup.recv() => Request::Reload,
        }
    }
}

/// `wirewatch run`: polls on schedule and delivers alerts until SIGTERM/SIGINT; SIGHUP
/// re-reads the file at `path`.
pub async fn run(path: PathBuf, config: Arc<Config>) -> anyhow::Result<()> {
    let mut signals = Signals::register()?;
    let (store, pipeline, writer) = open(&config).await?;
    let released = store
        .release_leases(&config.cluster.node)
        .await
        .context("cannot release the leases of the last run")?;
    if released.feeds + released.deliveries > 0 {
        tracing::info!(
            feeds = released.feeds,
            deliveries = released.deliveries,
            "resuming refreshes and deliveries interrupted by the last stop"
        );
    }

    let shutdown = CancellationToken::new();
    let watchdog = systemd::spawn_watchdog(store.clone(), shutdown.clone());
    let (current, watched) = watch::channel(config.clone());
    let listener = match config.daemon.listen {
        Some(addr) => {
            let metrics = crate::metrics::install().map_err(anyhow::Error::msg)?;
            Some(server::serve(addr, store.clone(), watched, metrics, shutdown.clone()).await?)
        }
        None => None,
    };

    let mut generation = Generation::start(pipeline, writer)?;
    announce(&config, "wirewatch started");
    systemd::ready();
    let status = systemd::spawn_status(store.clone(), current.subscribe(), shutdown.clone());
    let upkeep = crate::upkeep::spawn(store.clone(), current.subscribe(), shutdown.clone());
    loop {
        match signals.next().await {
            Request::Stop => break,
            Request::Reload => {
                systemd::reloading();
                tracing::info!(path = %path.display(), "SIGHUP: reloading the configuration");
                match Config::load(&path) {
                    Ok(mut new) => {
                        new.log_warnings();
                        let old = current.borrow().clone();
                        if new.daemon.listen != old.daemon.listen
                            || new.daemon.database != old.daemon.database
                            || new.cluster != old.cluster
                        {
                            tracing::warn!(
                                "daemon.listen, daemon.database and [cluster] take effect at the next restart"
                            );
                        }
                        // The node keeps the name its leases carry until it restarts.
                        new.cluster = old.cluster.clone();
                        let new = Arc::new(new);
                        // Stop the old generation before the store learns the new feeds
                        // and webhooks, so no refresh of the old config writes onto a
                        // feed whose URL just changed.
                        generation.stop().await;
                        let applied = match register(&new, &store).await {
                            Ok(()) => new,
                            Err(err) => {
                                tracing::error!(error = %error_chain(err.as_ref()), "cannot apply the new configuration: the old one goes on");
                                old
                            }
                        };
                        let (next, writer) = Pipeline::new(&applied, &store)
                            .context("cannot build the HTTP client")?;
                        generation = Generation::start(next, writer)?;
                        current.send_replace(applied.clone());
                        announce(&applied, "configuration applied");
                    }
                    Err(err) => tracing::error!(
                        path = %path.display(),
                        error = %err,
                        "reload refused: the running configuration stays"
                    ),
                }
                systemd::ready();
            }
        }
    }

    systemd::stopping();
    tracing::info!("shutting down");
    generation.stop().await;
    shutdown.cancel();
    if let Some(listener) = listener {
        let _ = listener.await;
    }
    for task in [watchdog, status].into_iter().flatten() {
        task.abort();
    }
    for task in upkeep {
        // Both end at `shutdown`, after at most the transaction in hand.
        let _ = task.await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

fn announce(config: &Config, what: &str) {
    tracing::info!(
        feeds = config.feeds.len(),
        watchlists = config.watchlists.len(),
        webhooks = config.webhooks.len(),
        database = %config.daemon.database,
        "{what}"
    );
}
