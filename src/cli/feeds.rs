//! The configured feeds from the command line: `wirewatch feeds` prints each feed's
//! health from the store ([`FeedList`], or JSON); `wirewatch opml export` prints them as
//! OPML 2.0.

use std::fmt;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::config::{self, Config};
use crate::store::{FeedStatus, Store};

use super::{CliError, print, print_json, time};

#[derive(Debug, Subcommand)]
pub enum OpmlCommand {
    /// Print every configured feed as OPML 2.0, one folder per tag.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Print feed URLs as configured, credentials included (by default a token in a
    /// URL's query is shown as REDACTED, as everywhere else).
    #[arg(long)]
    pub with_credentials: bool,
}

#[derive(Debug, Args)]
pub struct FeedsArgs {
    #[arg(long)]
    pub json: bool,
}

pub(super) fn export(config: &Config, args: &ExportArgs) -> Result<(), CliError> {
    print(config::export_opml(&config.feeds, args.with_credentials))
}

pub(super) async fn feeds(config: &Config, args: &FeedsArgs) -> Result<(), CliError> {
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let statuses = store
        .configured_feeds(config)
        .await
        .context("cannot read feeds")?;
    store.close().await;
    if args.json {
        return print_json(&statuses);
    }
    print(FeedList {
        statuses: &statuses,
        now: crate::clock::unix(),
    })
}

/// Each feed's state (ok, failing and why, disabled, never fetched), its items, its last
/// fetch and next due time, and where it moved; "no feeds" for none.
struct FeedList<'a> {
    statuses: &'a [FeedStatus],
    /// A lease that ran out before now is not shown: its node died.
    now: i64,
}

impl fmt::Display for FeedList<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let statuses = self.statuses;
        for feed in statuses {
            let state = if let Some(reason) = &feed.disabled_reason {
                format!("DISABLED: {reason}")
            } else if feed.failure_count > 0 {
                format!(
                    "failing ({} in a row, {}): {}",
                    feed.failure_count,
                    feed.last_error_class.as_deref().unwrap_or("error"),
                    feed.last_error.as_deref().unwrap_or("")
                )
            } else if feed.last_success_at.is_some() {
                "ok".to_string()
            } else {
                "never fetched".to_string()
            };
            let last = feed.last_fetch_at.map_or("-".into(), time);
            let next = feed.next_due_at.map_or("now".into(), time);
            writeln!(out, "{}  {state}", feed.name)?;
            writeln!(
                out,
                "    {} items, last fetch {last}, next due {next}",
                feed.items
            )?;
            if let Some(moved) = &feed.moved_to {
                writeln!(out, "    moved permanently to {moved}")?;
            }
            if let (Some(node), Some(until)) = (&feed.lease_node, feed.lease_until)
                && until > self.now
            {
                writeln!(
                    out,
                    "    being refreshed by node {node} (lease until {})",
                    time(until)
                )?;
            }
        }
        if statuses.is_empty() {
            writeln!(out, "no feeds")?;
        }
        Ok(())
    }
}
