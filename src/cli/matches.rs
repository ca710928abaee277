//! `wirewatch matches`: stored matches, newest first, filtered by watch-list, age and text
//! ([`Store::matches`]), each with its story's reach (items and distinct feeds); printed as
//! a [`MatchList`] or as JSON.

use std::fmt;

use anyhow::Context as _;
use chrono::DateTime;
use clap::Args;

use crate::config::Config;
use crate::store::{MatchQuery, MatchRow, Store};

use super::{CliError, print, print_json};

#[derive(Debug, Args)]
pub struct MatchesArgs {
    #[arg(long)]
    pub watchlist: Option<String>,
    /// Only matches newer than this, e.g. 24h or 7d.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<std::time::Duration>,
    /// Only matches whose title or summary contains this text.
    #[arg(long)]
    pub search: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn matches(config: &Config, args: &MatchesArgs) -> Result<(), CliError> {
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let since = super::since(args.since);
    let rows = store
        .matches(&MatchQuery {
            watchlist: args.watchlist.clone(),
            since,
            search: args.search.clone(),
            limit: i64::from(args.limit),
        })
        .await
        .context("cannot read matches")?;
    store.close().await;
    if args.json {
        return print_json(&rows);
    }
    print(MatchList(&rows))
}

/// Matches as text: when, watch-list, terms, title and feed (and how many feeds carried
/// the story, when more than one), then the link; "no matches" for none.
struct MatchList<'a>(&'a [MatchRow]);

impl fmt::Display for MatchList<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.0;
        for row in rows {
            let at = DateTime::from_timestamp(row.created_at, 0).map_or_else(
                || row.created_at.to_string(),
                |t| t.format("%Y-%m-%d %H:%M").to_string(),
            );
            write!(
                out,
                "{at}  {}  [{}]  {}  ({}",
                row.watchlist,
                row.terms.join(", "),
                row.title,
                row.feed
            )?;
            // The story's reach: the other outlets' sightings were not alerted again.
            if row.feeds > 1 {
                write!(out, "; seen in {} feeds", row.feeds)?;
            }
            // Not sent on its own: why.
            if let Some(reason) = row.reason {
                write!(out, "; held: {}", reason.as_str())?;
            }
            writeln!(out, ")")?;
            if let Some(url) = &row.url {
                writeln!(out, "    {url}")?;
            }
        }
        if rows.is_empty() {
            writeln!(out, "no matches")?;
        }
        Ok(())
    }
}
