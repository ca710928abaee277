//! `wirewatch backtest`: a watch-list, as configured or as a candidate file defines it,
//! run over the items already stored ([`crate::backtest`]); printed as a
//! [`BacktestText`] or as the JSON document of SPEC §12, the one `POST /api/v1/backtest`
//! answers. Nothing is sent or written.

use std::fmt;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::DateTime;
use clap::Args;

use crate::backtest::{self, Alert, Backtest, BacktestError, Definition, Report};
use crate::config::Config;
use crate::store::Store;

use super::{CliError, print, print_json};

#[derive(Debug, Args)]
#[command(
    after_help = "Runs the watch-list over the items stored within --since (retention \
     permitting), and, with --with, compares the candidate with the watch-list as configured: \
     stories the candidate adds (+) and removes (-). A story counts once, on its first matching \
     item. Mutes, rate limits, digests and backfill do not enter a backtest; nothing is sent."
)]
pub struct BacktestArgs {
    /// The watch-list to run.
    #[arg(long, value_name = "NAME")]
    pub watchlist: String,
    /// A candidate definition: the `[[watchlists]]` entry named NAME in this TOML file (a
    /// copy of the whole configuration, or a file holding just that entry).
    #[arg(long, value_name = "FILE")]
    pub with: Option<PathBuf>,
    /// How far back to look, e.g. 24h or 7d.
    // The API's default is the same: `backtest::DEFAULT_SINCE`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30d")]
    pub since: std::time::Duration,
    /// Print the JSON document that `POST /api/v1/backtest` answers.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn backtest(config: &Config, args: &BacktestArgs) -> Result<(), CliError> {
    let current = config.watchlist(&args.watchlist);
    let candidate = match &args.with {
        Some(path) => config.load_candidate(path, &args.watchlist)?,
        None => current
            .cloned()
            .ok_or_else(|| unknown(config, &args.watchlist))?,
    };
    let run = Backtest {
        candidate: Definition::of(&candidate),
        current: current.map(Definition::of),
        since: super::since(Some(args.since)).unwrap_or_default(),
    };
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let report = backtest::run(&store, config, &run).await;
    store.close().await;
    let report = report.map_err(|err| match err {
        BacktestError::Invalid(_) => CliError::Usage(err.to_string()),
        other => CliError::Runtime(anyhow::Error::new(other).context("the backtest failed")),
    })?;
    if args.json {
        return print_json(&report);
    }
    print(BacktestText(&report))
}

/// No watch-list of that name is configured.
fn unknown(config: &Config, name: &str) -> CliError {
    let names: Vec<&str> = config.watchlists.iter().map(|w| w.name.as_str()).collect();
    let known = if names.is_empty() {
        "it configures none".to_string()
    } else {
        format!("it configures {}", names.join(", "))
    };
    CliError::Usage(format!(
        "no watch-list is named `{name}` in {} ({known}); to try a new one, pass its \
         definition with --with FILE",
        config.path.display()
    ))
}

/// A backtest as text: a summary line, the stories that would alert, the diff with the
/// configured watch-list as `+`/`-` lines, then the count of each term and exclude.
struct BacktestText<'a>(&'a Report);

impl fmt::Display for BacktestText<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.0;
        let stories = |n: usize| if n == 1 { "story" } else { "stories" };
        let alerts = report.would_alert.len();
        writeln!(
            out,
            "{}: {alerts} {} would alert, from {} items first seen since {} UTC",
            report.watchlist,
            stories(alerts),
            report.items_scanned,
            super::time(report.since)
        )?;
        match report.configured {
            Some(configured) => writeln!(
                out,
                "as configured it alerts on {configured} {}: {} added, {} removed",
                stories(configured),
                report.diff.added.len(),
                report.diff.removed.len()
            )?,
            None => writeln!(
                out,
                "no watch-list of this name is configured: every story is added"
            )?,
        }
        writeln!(out, "\nwould alert:")?;
        alert_lines(out, "  ", &report.would_alert)?;
        if report.configured.is_some() {
            writeln!(out, "\nadded:")?;
            alert_lines(out, "+ ", &report.diff.added)?;
            writeln!(out, "\nremoved:")?;
            alert_lines(out, "- ", &report.diff.removed)?;
        }
        writeln!(out, "\nterms (matched items each hit):")?;
        counts(out, &report.terms)?;
        if !report.excluded.is_empty() {
            writeln!(out, "\nexcluded (items each vetoed):")?;
            counts(out, &report.excluded)?;
        }
        Ok(())
    }
}

/// One line per alert: marker, when its item was first seen, its terms, title and link;
/// `none` for none.
fn alert_lines(out: &mut fmt::Formatter<'_>, marker: &str, alerts: &[Alert]) -> fmt::Result {
    for alert in alerts {
        let at = DateTime::from_timestamp(alert.seen_at, 0).map_or_else(
            || alert.seen_at.to_string(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        );
        write!(
            out,
            "{marker}{at}  [{}]  {}",
            alert.terms.join(", "),
            alert.title
        )?;
        match &alert.url {
            Some(url) => writeln!(out, "  {url}")?,
            None => writeln!(out)?,
        }
    }
    if alerts.is_empty() {
        writeln!(out, "  none")?;
    }
    Ok(())
}

/// Counts, most first (then by name), names aligned.
fn counts(
    out: &mut fmt::Formatter<'_>,
    counts: &std::collections::BTreeMap<String, u64>,
) -> fmt::Result {
    let mut sorted: Vec<(&String, &u64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let width = sorted
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    for (name, count) in sorted {
        writeln!(out, "  {name:<width$}  {count}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::Diff;

    fn alert(story: &str, title: &str, terms: &[&str], url: Option<&str>) -> Alert {
        Alert {
            story: story.to_string(),
            title: title.to_string(),
            url: url.map(str::to_string),
            terms: terms.iter().map(|t| t.to_string()).collect(),
            seen_at: 1_764_000_000,
        }
    }

    #[test]
    fn a_backtest_reads_as_a_summary_the_alerts_the_diff_and_the_counts() {
        let pact = alert(
            "7",
            "Iran and China sign a pact",
            &["China", "Iran"],
            Some("https://wire.example/pact"),
        );
        let summit = alert("9", "SCO summit opens", &["SCO"], None);
        let derby = alert("4", "Iran beat China at football", &["Iran"], None);
        let report = Report {
            watchlist: "iran-china".to_string(),
            since: 1_763_000_000,
            items_scanned: 1200,
            would_alert: vec![pact.clone(), summit.clone()],
            diff: Diff {
                added: vec![summit],
                removed: vec![derby],
            },
            terms: [("Iran", 1), ("China", 1), ("SCO", 3)]
                .into_iter()
                .map(|(t, n)| (t.to_string(), n))
                .collect(),
            excluded: [("football".to_string(), 2)].into_iter().collect(),
            configured: Some(2),
        };

        assert_eq!(
            BacktestText(&report).to_string(),
            "iran-china: 2 stories would alert, from 1200 items first seen since 2025-11-13 02:13:20 UTC\n\
             as configured it alerts on 2 stories: 1 added, 1 removed\n\
             \n\
             would alert:\n\
             \x20 2025-11-24 16:00  [China, Iran]  Iran and China sign a pact  https://wire.example/pact\n\
             \x20 2025-11-24 16:00  [SCO]  SCO summit opens\n\
             \n\
             added:\n\
             + 2025-11-24 16:00  [SCO]  SCO summit opens\n\
             \n\
             removed:\n\
             - 2025-11-24 16:00  [Iran]  Iran beat China at football\n\
             \n\
             terms (matched items each hit):\n\
             \x20 SCO    3\n\
             \x20 China  1\n\
             \x20 Iran   1\n\
             \n\
             excluded (items each vetoed):\n\
             \x20 football  2\n"
        );
    }
}
