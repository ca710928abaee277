//! The command line (SPEC §6): clap definitions, dispatch to one module per command group,
//! and the mapping of a command's outcome to an exit code.
//!
//! Every command returns a [`CliError`] that knows its exit code: 2 for usage and
//! configuration errors, 1 for failures at run time. The whole error chain is printed.
//!
//! Results are types that implement [`std::fmt::Display`] (a summary, a table, a list),
//! written with `print` or `print_json`: a write that fails (a full disk, a closed
//! file) fails the command, except a broken pipe (`wirewatch matches | head`), which
//! ends it quietly.
//!
//! - `check` (the configuration summary) is in `check`;
//! - `poll` and `poll --dry-run` in `poll`;
//! - `test-feed` (one document parsed and matched) in `test_feed`;
//! - `feeds` (status per feed) and `opml export` in `feeds`;
//! - `matches` in `matches`;
//! - `stories` in `stories`;
//! - `backtest` in `backtest`;
//! - `deliveries` and `redeliver` in `deliveries`;
//! - `explain` in `explain`;
//! - `extract` in `extract`;
//! - `mute` and `unmute` in `mute`.
//!
//! `run` hands over to [`daemon::run`] and `demo` to [`crate::demo`].

mod backtest;
mod check;
mod deliveries;
mod explain;
mod extract;
mod feeds;
mod matches;
mod mute;
mod poll;
mod stories;
mod test_feed;

use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::DateTime;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::config::{self, Config, ConfigError};
use crate::daemon;
use crate::telemetry;

pub use backtest::BacktestArgs;
pub use deliveries::{DeliveriesArgs, DeliveryStatus, RedeliverArgs};
pub use explain::ExplainArgs;
pub use extract::ExtractArgs;
pub use feeds::{ExportArgs, FeedsArgs, OpmlCommand};
pub use matches::MatchesArgs;
pub use mute::{MuteArgs, UnmuteArgs};
pub use poll::PollArgs;
pub use stories::StoriesArgs;
pub use test_feed::TestFeedArgs;

#[derive(Debug, Parser)]
#[command(
    name = "wirewatch",
    version,
    about = "News-wire monitoring: feeds in, watch-list alerts out"
)]
pub struct Cli {
    /// Configuration file [default: $WIREWATCH_CONFIG, else /etc/wirewatch/wirewatch.toml]
    #[arg(long, short, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground: poll on schedule, deliver alerts.
    Run,
    /// Validate the configuration and print a summary.
    Check,
    /// One cycle now: fetch every (or each named) feed, store, deliver, exit.
    Poll(PollArgs),
    /// Parse one feed (URL or file) and show its items and which watch-lists match.
    TestFeed(TestFeedArgs),
    /// List stored matches, newest first.
    Matches(MatchesArgs),
    /// List the stories that matched a watch-list, newest activity first, each with the
    /// feeds that carried it.
    Stories(StoriesArgs),
    /// Run a watch-list, as configured or as a candidate file defines it, over the stored
    /// items: what would alert, and what changes. Sends nothing.
    Backtest(BacktestArgs),
    /// Per-feed status: last fetch, last error, next due time.
    Feeds(FeedsArgs),
    /// OPML: `export` prints the configured feeds as OPML 2.0.
    #[command(subcommand)]
    Opml(OpmlCommand),
    /// List webhook deliveries (outbox rows), newest first, and disabled webhooks.
    Deliveries(DeliveriesArgs),
    /// Re-queue deliveries by id, or every dead letter; re-enable a disabled webhook.
    Redeliver(RedeliverArgs),
    /// Why a stored item did (or did not) alert each watch-list.
    Explain(ExplainArgs),
    /// The main text (and language) of an article page, as a `full_text` feed matches it.
    Extract(ExtractArgs),
    /// Mute a watch-list for a while (its matches wait for its digest, if any), or list
    /// the mutes in force.
    Mute(MuteArgs),
    /// End a watch-list's mute.
    Unmute(UnmuteArgs),
    /// Offline: bundled sample feeds, a local webhook receiver, the whole pipeline.
    Demo(crate::demo::DemoArgs),
}

/// A command's failure, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
    /// The results could not be written (a full disk, a closed file). A broken pipe is
    /// one too, but [`main`] ends quietly on it: the reader has seen what it wanted.
    #[error("writing to standard output")]
    Output(#[source] io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Usage(_) => 2,
            CliError::Runtime(_) | CliError::Output(_) => 1,
        }
    }
}

/// The runtime's blocking threads: see `systemd/wirewatch.service`'s `TasksMax=`.
const MAX_BLOCKING_THREADS: usize = 128;

/// Parses the command line, runs the command and returns the process's exit code.
pub fn main() -> ExitCode {
    // A panic that a stage catches on purpose (feed-rs and quick-xml can panic on hostile
    // documents) becomes one log line in the journal, not a dump on stderr.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if tracing::dispatcher::has_been_set() {
            tracing::error!(panic = %info, "panic");
        } else {
            default_hook(info);
        }
    }));
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): it has what it wanted, as when the output
        // ends. Rust ignores SIGPIPE, so this is an error to recognise, not a signal.
        Err(CliError::Output(err)) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            match &err {
                CliError::Runtime(err) => eprintln!("error: {err:#}"),
                CliError::Config(err) => eprintln!("{err}"),
                CliError::Usage(message) => eprintln!("error: {message}"),
                CliError::Output(_) => eprintln!("error: {}", telemetry::error_chain(&err)),
            }
            ExitCode::from(err.exit_code())
        }
    }
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    let path = config::resolve_path(cli.config.as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking threads run DNS lookups (one per fetch in flight, at most
        // `poll.concurrency`) and parses (one per core); tokio's default of 512 would let
        // a burst of lookups reach the unit's TasksMax=.
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Check => check::check(&path),
        Command::Run => {
            let config = load(&path)?;
            runtime.block_on(daemon::run(path, config))?;
            Ok(())
        }
        Command::Poll(args) => {
            let config = load(&path)?;
            runtime.block_on(poll::poll(config, &args))
        }
        Command::TestFeed(args) => {
            let config = load_if_any(cli.config.is_some(), &path)?;
            runtime.block_on(test_feed::test_feed(&config, &args))
        }
        Command::Matches(args) => {
            let config = load(&path)?;
            runtime.block_on(matches::matches(&config, &args))
        }
        Command::Stories(args) => {
            let config = load(&path)?;
            runtime.block_on(stories::stories(&config, &args))
        }
        Command::Backtest(args) => {
            let config = load(&path)?;
            runtime.block_on(backtest::backtest(&config, &args))
        }
        Command::Opml(OpmlCommand::Export(args)) => {
            let config = Config::load(&path)?;
            feeds::export(&config, &args)
        }
        Command::Feeds(args) => {
            let config = load(&path)?;
            runtime.block_on(feeds::feeds(&config, &args))
        }
        Command::Deliveries(args) => {
            let config = load(&path)?;
            runtime.block_on(deliveries::deliveries(&config, &args))
        }
        Command::Redeliver(args) => {
            let config = load(&path)?;
            runtime.block_on(deliveries::redeliver(&config, &args))
        }
        Command::Extract(args) => {
            let config = load_if_any(cli.config.is_some(), &path)?;
            runtime.block_on(extract::extract(&config, &args))
        }
        Command::Explain(args) => {
            let config = load(&path)?;
            runtime.block_on(explain::explain(&config, &args))
        }
        Command::Mute(args) => {
            let config = load(&path)?;
            runtime.block_on(mute::mute(&config, &args))
        }
        Command::Unmute(args) => {
            let config = load(&path)?;
            runtime.block_on(mute::unmute(&config, &args))
        }
        // Needs no configuration: it writes its own.
        Command::Demo(args) => runtime.block_on(crate::demo::run(&args)),
    }
}

/// The configuration at `path` when one was named (`--config`, `$WIREWATCH_CONFIG`) or
/// exists there, else the defaults: trying a feed or a page before writing any
/// configuration is a normal first step.
fn load_if_any(named: bool, path: &Path) -> Result<Config, CliError> {
    let named = named || std::env::var_os("WIREWATCH_CONFIG").is_some();
    let config = if named || path.exists() {
        Config::load(path)?
    } else {
        Config::from_source(Path::new("<none>"), "")?
    };
    telemetry::init(config.daemon.log_format);
    Ok(config)
}

fn load(path: &Path) -> Result<Arc<Config>, CliError> {
    let config = Config::load(path)?;
    telemetry::init(config.daemon.log_format);
    config.log_warnings();
    Ok(Arc::new(config))
}

/// Writes `value` to standard output and flushes it; a failed write is the command's
/// failure ([`CliError::Output`]).
pub(crate) fn print(value: impl fmt::Display) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    write!(out, "{value}")
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

/// Writes `value` to standard output as pretty-printed JSON and a newline.
pub(crate) fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).context("cannot encode JSON")?;
    print(format_args!("{text}\n"))
}

/// The Unix time `--since` stands for: that long before now.
fn since(age: Option<std::time::Duration>) -> Option<i64> {
    age.map(|d| crate::clock::unix() - i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2))
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS` (UTC), or the number when it is out of range.
fn time(at: i64) -> String {
    DateTime::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}
