//! `wirewatch mute` and `unmute` (SPEC §11): a muted watch-list stores its matches with the
//! reason `muted` and sends none of them on their own; they go to its next digest if it
//! has one. Mutes live in the database, so the running daemon sees them at its next
//! commit, and they outlast reloads and restarts.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Args;

use crate::config::Config;
use crate::store::Store;

use super::{CliError, print, time};

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("how_long").args(["duration", "until"]))]
pub struct MuteArgs {
    /// The watch-list to mute; without one, the mutes in force are listed.
    #[arg(requires = "how_long")]
    pub watchlist: Option<String>,
    /// Mute for this long, e.g. 2h or 3d.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Mute until this time (UTC): `2026-12-01T08:00:00Z` or `2026-12-01 08:00`.
    #[arg(long, value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Args)]
pub struct UnmuteArgs {
    /// The watch-list to unmute.
    pub watchlist: String,
}

/// RFC 3339, or its relaxed forms without a zone (taken as UTC) or without seconds.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let padded = if text.len() == 16 {
        format!("{text}:00")
    } else {
        text.to_owned()
    };
    humantime::parse_rfc3339_weak(&padded)
        .map(DateTime::<Utc>::from)
        .map_err(|err| format!("`{text}` is not a time like 2026-12-01T08:00:00Z: {err}"))
}

pub(super) async fn mute(config: &Config, args: &MuteArgs) -> Result<(), CliError> {
    let now = crate::clock::now();
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let Some(name) = &args.watchlist else {
        let mutes = store
            .mutes(now.timestamp())
            .await
            .context("cannot read mutes")?;
        store.close().await;
        if mutes.is_empty() {
            return print("no watch-list is muted\n");
        }
        let lines: String = mutes
            .iter()
            .map(|m| format!("{} muted until {} UTC\n", m.watchlist, time(m.until)))
            .collect();
        return print(lines);
    };
    let watchlist = known(config, name)?;
    let until = match (args.duration, args.until) {
        (Some(d), _) => now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX),
        (None, Some(until)) => until,
        (None, None) => return Err(CliError::Usage("give --for or --until".into())),
    };
    if until <= now {
        return Err(CliError::Usage(format!(
            "{} is in the past",
            until.format("%Y-%m-%d %H:%M:%S UTC")
        )));
    }
    store
        .mute(name, until.timestamp(), now.timestamp())
        .await
        .context("cannot store the mute")?;
    store.close().await;
    let then = if watchlist.digest.is_some() {
        "its matches wait for its next digest"
    } else {
        "its matches are stored and not sent"
    };
    print(format!(
        "{name} muted until {} UTC: {then}\n",
        time(until.timestamp())
    ))
}

pub(super) async fn unmute(config: &Config, args: &UnmuteArgs) -> Result<(), CliError> {
    known(config, &args.watchlist)?;
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let was = store
        .unmute(&args.watchlist, crate::clock::unix())
        .await
        .context("cannot remove the mute")?;
    store.close().await;
    print(if was {
        format!("{} unmuted: it alerts again\n", args.watchlist)
    } else {
        format!("{} was not muted\n", args.watchlist)
    })
}

fn known<'c>(config: &'c Config, name: &str) -> Result<&'c crate::config::Watchlist, CliError> {
    config.watchlist(name).ok_or_else(|| {
        CliError::Usage(format!(
            "no watch-list is named `{name}` in the configuration"
        ))
    })
}
