//! `wirewatch poll`: one cycle now over every (or each named) feed through the real
//! pipeline ([`daemon::open`], [`scheduler::poll_once_observed`]), then the outbox drained
//! once; prints a [`PollReport`] line per feed and the deliveries' totals.
//!
//! `poll --dry-run` goes through [`Pipeline::preview`] instead: fetched, parsed and matched,
//! nothing stored or sent; prints a [`DryRun`] per feed.

use std::fmt;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;

use crate::config::Config;
use crate::daemon;
use crate::notify::{DrainReport, Notifier};
use crate::refresh::{Outcome, Pipeline, Preview, PreviewError, Report};
use crate::scheduler;
use crate::store::{Store, StoreError};
use crate::telemetry::error_chain;

use super::{CliError, print};

#[derive(Debug, Args)]
pub struct PollArgs {
    /// Feed names; all feeds when none are given.
    pub feeds: Vec<String>,
    /// Fetch, parse and match, and show what would alert; store and send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A progress bar on stderr for a long interactive command; hidden when stderr is not a
/// terminal (a pipe, a log, systemd), so scripts and journals see only the results.
fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
        .map(|s| s.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_prefix(what.to_string());
    bar
}

pub(super) async fn poll(config: Arc<Config>, args: &PollArgs) -> Result<(), CliError> {
    let mut indices = Vec::new();
    for name in &args.feeds {
        match config.feed_index(name) {
            Some(i) => indices.push(i),
            None => return Err(CliError::Usage(format!("no feed is named `{name}`"))),
        }
    }
    if args.feeds.is_empty() {
        indices = (0..config.feeds.len()).collect();
    }
    if args.dry_run {
        return dry_run(&config, &indices).await;
    }
    // Every refresh below waits for its commit, so the writer has nothing left to do
    // when they are done.
    let (store, pipeline, _writer) = daemon::open(&config).await?;
    let progress = progress_bar(indices.len() as u64, "polling");
    let reports = scheduler::poll_once_observed(&pipeline, &indices, |feed| {
        progress.set_message(feed.to_string());
        progress.inc(1);
    })
    .await;
    progress.finish_and_clear();
    let reports = PollReport {
        config: &config,
        reports,
    };
    // The alerts this cycle queued go out even when its report cannot be written.
    let printed = print(&reports);
    let failures = reports.failures();
    let store_errors = reports.store_errors();
    let notifier =
        Notifier::new(store.clone(), config.clone()).context("cannot build the HTTP client")?;
    let delivered = notifier
        .drain_outbox()
        .await
        .context("cannot deliver alerts")?;
    store.close().await;
    if failures > 0 {
        tracing::warn!(
            failures,
            "some feeds failed; their errors are stored on the feeds"
        );
    }
    // A feed whose results could not be stored must not keep the alerts the others
    // queued from going out: noted, delivered, then failed.
    let written = printed.and_then(|()| print(Delivered(&delivered)));
    if let Some(first) = store_errors.first() {
        // The failure to store is the one the exit code reports; a failed write beside
        // it is logged.
        if let Err(err) = written {
            tracing::warn!(error = %error_chain(&err), "cannot write the report");
        }
        return Err(anyhow::anyhow!(
            "the results of {} feed(s) could not be stored (first: {first}); they are fetched again at the next poll",
            store_errors.len(),
        )
        .into());
    }
    written
}

/// What one cycle did, a line per feed: its outcome, or why its results were not stored.
struct PollReport<'a> {
    config: &'a Config,
    reports: Vec<(usize, Result<Report, StoreError>)>,
}

impl PollReport<'_> {
    /// `feed: error` for each feed whose results could not be stored.
    fn store_errors(&self) -> Vec<String> {
        self.reports
            .iter()
            .filter_map(|(index, report)| {
                let err = report.as_ref().err()?;
                Some(format!(
                    "{}: {}",
                    self.config.feeds[*index].name,
                    error_chain(err)
                ))
            })
            .collect()
    }

    /// How many feeds failed to refresh.
    fn failures(&self) -> usize {
        self.reports
            .iter()
            .filter(|(_, report)| {
                matches!(
                    report,
                    Ok(Report {
                        outcome: Outcome::Failed { .. },
                        ..
                    })
                )
            })
            .count()
    }
}

impl fmt::Display for PollReport<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, report) in &self.reports {
            let report = match report {
                Ok(report) => report,
                Err(err) => {
                    let name = &self.config.feeds[*index].name;
                    writeln!(out, "{name}: {} (not stored)", error_chain(err))?;
                    continue;
                }
            };
            let line = match &report.outcome {
                Outcome::NotModified => "not modified".to_string(),
                Outcome::Updated {
                    items,
                    new_items,
                    matches,
                    alerts,
                } => {
                    format!(
                        "{items} items, {new_items} new, {matches} matches, {alerts} alerts queued"
                    )
                }
                Outcome::Failed { class, error, .. } => format!("failed ({class}): {error}"),
                Outcome::Disabled { reason } => format!("disabled: {reason}"),
                Outcome::Elsewhere { holder } => Outcome::elsewhere(holder),
            };
            writeln!(out, "{}: {line}", report.feed)?;
        }
        Ok(())
    }
}

/// The outbox drained once: its totals.
struct Delivered<'a>(&'a DrainReport);

impl fmt::Display for Delivered<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let delivered = self.0;
        writeln!(
            out,
            "deliveries: {} delivered, {} to retry, {} dead",
            delivered.delivered, delivered.failed, delivered.dead
        )
    }
}

/// `poll --dry-run`: each feed fetched unconditionally, parsed and matched by the
/// watch-lists that follow it; items the store already holds are left out. Nothing is
/// written (beyond creating an empty database when there is none yet).
async fn dry_run(config: &Arc<Config>, indices: &[usize]) -> Result<(), CliError> {
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    // Nothing is registered or committed: the writer behind the pipeline stays idle.
    let (pipeline, _writer) =
        Pipeline::new(config, &store).context("cannot build the HTTP client")?;
    for &index in indices {
        let feed = &config.feeds[index];
        // Each feed's lines as soon as it is done: a dry run over many feeds is slow.
        match pipeline.preview(index).await {
            Ok(preview) => print(DryRun {
                config,
                feed: &feed.name,
                preview: &preview,
            })?,
            Err(PreviewError::NotModified) => {
                print(format_args!("{}: not modified\n", feed.name))?;
            }
            Err(PreviewError::Store(err)) => {
                return Err(anyhow::Error::new(err)
                    .context("cannot read the store")
                    .into());
            }
            Err(err) => {
                print(format_args!(
                    "{}: failed ({}): {err}\n",
                    feed.name,
                    err.class()
                ))?;
            }
        }
    }
    drop(pipeline);
    store.close().await;
    Ok(())
}

/// One feed of a dry run: its items, the new ones, and what they would alert.
struct DryRun<'a> {
    config: &'a Config,
    feed: &'a str,
    preview: &'a Preview,
}

impl fmt::Display for DryRun<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let preview = self.preview;
        let fresh: Vec<_> = preview.items.iter().filter(|item| !item.known).collect();
        writeln!(
            out,
            "{}: {} items, {} new (dry run: nothing stored or sent)",
            self.feed,
            preview.items.len(),
            fresh.len()
        )?;
        for item in fresh {
            for found in &item.matches {
                writeln!(
                    out,
                    "  would match {} [{}]: {}",
                    self.config.watchlists[found.watchlist].name,
                    found.terms.join(", "),
                    item.item.title
                )?;
            }
        }
        Ok(())
    }
}
