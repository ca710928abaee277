//! The command line (SPEC §6): clap definitions and one function per command.
//!
//! Every command returns a [`CliError`] that knows its exit code: 2 for usage and
//! configuration errors, 1 for failures at run time. The whole error chain is printed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::clock;
use crate::config::{self, Config, ConfigError};
use crate::daemon;
use crate::notify::Notifier;
use crate::redact;
use crate::refresh::{self, Highlight, Outcome, Pipeline, PreviewError, Source};
use crate::scheduler;
use crate::store::{DeliveryFilter, DeliveryRow, DisabledWebhook, MatchQuery, OutboxStatus, Store};
use crate::telemetry;

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
    /// Per-feed status: last fetch, last error, next due time.
    Feeds(FeedsArgs),
    /// OPML: `export` prints the configured feeds as OPML 2.0.
    #[command(subcommand)]
    Opml(OpmlCommand),
    /// List webhook deliveries (outbox rows), newest first, and disabled webhooks.
    Deliveries(DeliveriesArgs),
    /// Re-queue deliveries by id, or every dead letter; re-enable a disabled webhook.
    Redeliver(RedeliverArgs),
    /// Offline: bundled sample feeds, a local webhook receiver, the whole pipeline.
    Demo(crate::demo::DemoArgs),
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeliveryStatus {
    /// Waiting for a first attempt or a retry.
    Pending,
    /// Pending after at least one failed attempt.
    Failed,
    /// Retries used up: dead-lettered.
    Dead,
    Delivered,
}

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    #[arg(long, value_enum)]
    pub status: Option<DeliveryStatus>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RedeliverArgs {
    /// Delivery ids (the `webhook-id` a receiver saw).
    pub ids: Vec<String>,
    /// Re-queue every dead-lettered delivery (of `--webhook` only, when given).
    #[arg(long, conflicts_with = "ids")]
    pub dead: bool,
    /// Re-enable this webhook if a 410 disabled it.
    #[arg(long, conflicts_with = "ids")]
    pub webhook: Option<String>,
}

#[derive(Debug, Args)]
pub struct PollArgs {
    /// Feed names; all feeds when none are given.
    pub feeds: Vec<String>,
    /// Fetch, parse and match, and show what would alert; store and send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct TestFeedArgs {
    /// An http(s) URL or a file path.
    pub source: String,
    /// Only this watch-list.
    #[arg(long)]
    pub watchlist: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

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

/// A command's failure, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Usage(_) => 2,
            CliError::Runtime(_) => 1,
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
        Err(err) => {
            match &err {
                CliError::Runtime(err) => eprintln!("error: {err:#}"),
                CliError::Config(err) => eprintln!("{err}"),
                CliError::Usage(message) => eprintln!("error: {message}"),
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
        Command::Check => check(&path),
        Command::Run => {
            let config = load(&path)?;
            runtime.block_on(daemon::run(path, config))?;
            Ok(())
        }
        Command::Poll(args) => {
            let config = load(&path)?;
            runtime.block_on(poll(config, &args))
        }
        Command::TestFeed(args) => {
            let explicit = cli.config.is_some() || std::env::var_os("WIREWATCH_CONFIG").is_some();
            let config = if explicit || path.exists() {
                Config::load(&path)?
            } else {
                // Trying a feed before writing any config is a normal first step.
                Config::from_source(Path::new("<none>"), "")?
            };
            telemetry::init(config.daemon.log_format);
            runtime.block_on(test_feed(&config, &args))
        }
        Command::Matches(args) => {
            let config = load(&path)?;
            runtime.block_on(matches(&config, &args))
        }
        Command::Opml(OpmlCommand::Export(args)) => {
            let config = Config::load(&path)?;
            print!(
                "{}",
                config::export_opml(&config.feeds, args.with_credentials)
            );
            Ok(())
        }
        Command::Feeds(args) => {
            let config = load(&path)?;
            runtime.block_on(feeds(&config, &args))
        }
        Command::Deliveries(args) => {
            let config = load(&path)?;
            runtime.block_on(deliveries(&config, &args))
        }
        Command::Redeliver(args) => {
            let config = load(&path)?;
            runtime.block_on(redeliver(&config, &args))
        }
        // Needs no configuration: it writes its own.
        Command::Demo(args) => runtime.block_on(crate::demo::run(&args)),
    }
}

fn load(path: &Path) -> Result<Arc<Config>, CliError> {
    let config = Config::load(path)?;
    telemetry::init(config.daemon.log_format);
    config.log_warnings();
    Ok(Arc::new(config))
}

fn check(path: &Path) -> Result<(), CliError> {
    let config = Config::load(path)?;
    for warning in &config.warnings {
        eprintln!("{}", warning.located(path));
    }
    let mut out = std::io::stdout().lock();
    let terms = config.matcher.pattern_count();
    let _ = writeln!(out, "{}: ok", path.display());
    let _ = writeln!(out, "database: {}", config.daemon.database.display());
    // As written in the file: "30d", "12h", "90m" (humantime would say "11months 30days
    // 3h 50m 24s" for 365d).
    let kept = |age: Option<std::time::Duration>| {
        let Some(secs) = age.map(|age| age.as_secs()) else {
            return "forever".to_string();
        };
        [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")]
            .into_iter()
            .find(|(unit, _)| secs.is_multiple_of(*unit))
            .map_or_else(
                || format!("{secs}s"),
                |(unit, suffix)| format!("{}{suffix}", secs / unit),
            )
    };
    let retention = &config.retention;
    let _ = writeln!(
        out,
        "retention: items {}, matches {}, deliveries {}",
        kept(retention.items),
        kept(retention.matches),
        kept(retention.deliveries)
    );
    let _ = match config.daemon.listen {
        Some(addr) => writeln!(
            out,
            "listen: {addr} (/metrics and /api/* {})",
            if config.daemon.api_token.is_some() {
                "need the API token"
            } else {
                "open to whoever can connect"
            }
        ),
        None => writeln!(out, "listen: off"),
    };
    let _ = writeln!(
        out,
        "poll: {} (jitter {}), {} in flight, {} per host, timeout {}, max body {} bytes",
        config.poll.schedule,
        humantime::format_duration(config.poll.jitter),
        config.poll.concurrency,
        config.poll.per_host,
        humantime::format_duration(config.poll.timeout),
        config.poll.max_body
    );
    let _ = writeln!(out, "feeds: {}", config.feeds.len());
    for feed in &config.feeds {
        let tags = if feed.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", feed.tags.join(", "))
        };
        let _ = writeln!(
            out,
            "  {} ({}) {}{tags}",
            feed.name,
            feed.schedule,
            redact::url(&feed.url, &feed.redact_params)
        );
    }
    let _ = writeln!(
        out,
        "watch-lists: {} ({terms} distinct patterns in one automaton)",
        config.watchlists.len()
    );
    for list in &config.watchlists {
        let feeds = list.feeds.as_ref().map_or("all feeds".to_string(), |set| {
            format!("{} feeds", set.len())
        });
        let hooks: Vec<&str> = list
            .webhooks
            .iter()
            .map(|&i| config.webhooks[i].name.as_str())
            .collect();
        let _ = writeln!(out, "  {} on {feeds} -> [{}]", list.name, hooks.join(", "));
    }
    let _ = writeln!(out, "webhooks: {}", config.webhooks.len());
    for hook in &config.webhooks {
        let signed = if hook.secret.is_some() {
            "signed"
        } else {
            "unsigned"
        };
        let _ = writeln!(out, "  {} ({:?}, {signed})", hook.name, hook.format);
    }
    Ok(())
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

async fn poll(config: Arc<Config>, args: &PollArgs) -> Result<(), CliError> {
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
    let mut out = std::io::stdout().lock();
    let mut failures = 0;
    let mut store_errors = Vec::new();
    for (index, report) in reports {
        // A feed whose results could not be stored must not keep the alerts the others
        // queued from going out: note it, deliver, then fail.
        let report = match report {
            Ok(report) => report,
            Err(err) => {
                let error = format!(
                    "{}: {}",
                    config.feeds[index].name,
                    crate::telemetry::error_chain(&err)
                );
                let _ = writeln!(out, "{error} (not stored)");
                store_errors.push(error);
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
                format!("{items} items, {new_items} new, {matches} matches, {alerts} alerts queued")
            }
            Outcome::Failed { class, error, .. } => {
                failures += 1;
                format!("failed ({class}): {error}")
            }
            Outcome::Disabled { reason } => format!("disabled: {reason}"),
        };
        let _ = writeln!(out, "{}: {line}", report.feed);
    }
    let notifier =
        Notifier::new(store.clone(), config.clone()).context("cannot build the HTTP client")?;
    let delivered = notifier
        .drain_outbox()
        .await
        .context("cannot deliver alerts")?;
    let _ = writeln!(
        out,
        "deliveries: {} delivered, {} to retry, {} dead",
        delivered.delivered, delivered.failed, delivered.dead
    );
    store.close().await;
    if failures > 0 {
        tracing::warn!(
            failures,
            "some feeds failed; their errors are stored on the feeds"
        );
    }
    if let Some(first) = store_errors.first() {
        return Err(anyhow::anyhow!(
            "the results of {} feed(s) could not be stored (first: {first}); they are fetched again at the next poll",
            store_errors.len(),
        )
        .into());
    }
    Ok(())
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
    let mut out = std::io::stdout().lock();
    for &index in indices {
        let feed = &config.feeds[index];
        let preview = match pipeline.preview(index).await {
            Ok(preview) => preview,
            Err(PreviewError::NotModified) => {
                let _ = writeln!(out, "{}: not modified", feed.name);
                continue;
            }
            Err(PreviewError::Store(err)) => {
                return Err(anyhow::Error::new(err)
                    .context("cannot read the store")
                    .into());
            }
            Err(err) => {
                let _ = writeln!(out, "{}: failed ({}): {err}", feed.name, err.class());
                continue;
            }
        };
        let fresh: Vec<_> = preview.items.iter().filter(|item| !item.known).collect();
        let _ = writeln!(
            out,
            "{}: {} items, {} new (dry run: nothing stored or sent)",
            feed.name,
            preview.items.len(),
            fresh.len()
        );
        for item in fresh {
            for found in &item.matches {
                let _ = writeln!(
                    out,
                    "  would match {} [{}]: {}",
                    config.watchlists[found.watchlist].name,
                    found.terms.join(", "),
                    item.item.title
                );
            }
        }
    }
    drop(pipeline);
    store.close().await;
    Ok(())
}

#[derive(Debug, Serialize)]
struct TestFeedOutput {
    title: Option<String>,
    items: Vec<TestFeedItem>,
    /// Items past the parse stage's item cap, dropped unread.
    dropped_items: usize,
    /// Other elements past their caps (repeated categories, authors, ...), dropped.
    dropped_elements: usize,
}

#[derive(Debug, Serialize)]
struct TestFeedItem {
    key: String,
    title: String,
    link: Option<String>,
    canonical_link: Option<String>,
    published: Option<DateTime<Utc>>,
    matches: Vec<TestFeedMatch>,
}

#[derive(Debug, Serialize)]
struct TestFeedMatch {
    watchlist: String,
    terms: Vec<String>,
    highlights: Vec<Highlight>,
}

async fn test_feed(config: &Config, args: &TestFeedArgs) -> Result<(), CliError> {
    let only = match &args.watchlist {
        Some(name) => match config.watchlists.iter().position(|w| &w.name == name) {
            Some(i) => Some(i),
            None => return Err(CliError::Usage(format!("no watch-list is named `{name}`"))),
        },
        None => None,
    };
    let source = match url::Url::parse(&args.source) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Source::Url(url),
        _ => Source::Bytes(
            std::fs::read(&args.source).with_context(|| format!("cannot read {}", args.source))?,
        ),
    };
    let shown = match &source {
        Source::Url(url) => redact::url(url, &[]).to_string(),
        Source::Bytes(_) => args.source.clone(),
    };
    let wanted = |i: usize| only.is_none_or(|only| only == i);
    let preview = match refresh::preview_document(config, source, &wanted).await {
        Ok(preview) => preview,
        Err(PreviewError::NotModified) => {
            return Err(anyhow::anyhow!("{shown}: unexpected 304 Not Modified").into());
        }
        Err(err @ PreviewError::Parse(_)) => {
            return Err(anyhow::Error::new(err)
                .context(format!("{shown} is not a usable feed"))
                .into());
        }
        Err(err) => return Err(anyhow::anyhow!("{shown}: {err}").into()),
    };
    let items = preview
        .items
        .into_iter()
        .map(|previewed| {
            let matches = previewed
                .matches
                .into_iter()
                .map(|m| TestFeedMatch {
                    watchlist: config.watchlists[m.watchlist].name.clone(),
                    terms: m.terms,
                    highlights: m.highlights,
                })
                .collect();
            let item = previewed.item;
            TestFeedItem {
                key: previewed.key,
                title: item.title,
                link: item.link.as_ref().map(|l| l.to_string()),
                canonical_link: previewed.canonical,
                published: item.published,
                matches,
            }
        })
        .collect();
    let output = TestFeedOutput {
        title: preview.title,
        items,
        dropped_items: preview.dropped_items,
        dropped_elements: preview.dropped_elements,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&output).context("cannot encode JSON")?;
        let _ = writeln!(out, "{text}");
        return Ok(());
    }
    let matching = output
        .items
        .iter()
        .filter(|i| !i.matches.is_empty())
        .count();
    let _ = writeln!(
        out,
        "{}: {} items, {matching} matching",
        output.title.as_deref().unwrap_or("(untitled feed)"),
        output.items.len()
    );
    if output.dropped_items + output.dropped_elements > 0 {
        let _ = writeln!(
            out,
            "past the parse caps, dropped: {} items, {} repeated elements",
            output.dropped_items, output.dropped_elements
        );
    }
    for item in &output.items {
        let _ = writeln!(out, "\n* {}", item.title);
        if let Some(link) = &item.link {
            let _ = writeln!(out, "  {link}");
        }
        let published = item.published.map_or("-".into(), |p| p.to_rfc3339());
        let _ = writeln!(out, "  published {published}  key {}", item.key);
        for m in &item.matches {
            let _ = writeln!(out, "  MATCH {}: {}", m.watchlist, m.terms.join(", "));
            for h in &m.highlights {
                let _ = writeln!(
                    out,
                    "    {} [{}..{}] {}: {}",
                    h.field.as_str(),
                    h.start,
                    h.end,
                    h.term,
                    h.snippet
                );
            }
        }
    }
    Ok(())
}

async fn matches(config: &Config, args: &MatchesArgs) -> Result<(), CliError> {
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let since = args
        .since
        .map(|d| clock::unix() - i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2));
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
    let mut out = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&rows).context("cannot encode JSON")?;
        let _ = writeln!(out, "{text}");
        return Ok(());
    }
    for row in &rows {
        let at = DateTime::from_timestamp(row.created_at, 0).map_or_else(
            || row.created_at.to_string(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        );
        let _ = writeln!(
            out,
            "{at}  {}  [{}]  {}  ({})",
            row.watchlist,
            row.terms.join(", "),
            row.title,
            row.feed
        );
        if let Some(url) = &row.url {
            let _ = writeln!(out, "    {url}");
        }
    }
    if rows.is_empty() {
        let _ = writeln!(out, "no matches");
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct DeliveriesOutput {
    disabled_webhooks: Vec<DisabledWebhook>,
    deliveries: Vec<DeliveryRow>,
}

fn time(at: i64) -> String {
    DateTime::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

async fn deliveries(config: &Config, args: &DeliveriesArgs) -> Result<(), CliError> {
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let status = args.status.map(|s| match s {
        DeliveryStatus::Pending => DeliveryFilter::Pending,
        DeliveryStatus::Failed => DeliveryFilter::Failed,
        DeliveryStatus::Dead => DeliveryFilter::Dead,
        DeliveryStatus::Delivered => DeliveryFilter::Delivered,
    });
    let output = DeliveriesOutput {
        disabled_webhooks: store
            .disabled_webhooks()
            .await
            .context("cannot read webhooks")?,
        deliveries: store
            .deliveries(status, i64::from(args.limit))
            .await
            .context("cannot read deliveries")?,
    };
    store.close().await;
    let mut out = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&output).context("cannot encode JSON")?;
        let _ = writeln!(out, "{text}");
        return Ok(());
    }
    for hook in &output.disabled_webhooks {
        let _ = writeln!(
            out,
            "webhook {} DISABLED since {}: {} (re-enable: wirewatch redeliver --webhook {})",
            hook.name,
            time(hook.disabled_at),
            hook.reason,
            hook.name
        );
    }
    for row in &output.deliveries {
        let next = match row.status {
            OutboxStatus::Pending => format!("next {}", time(row.next_attempt_at)),
            OutboxStatus::Delivered => format!("at {}", row.delivered_at.map_or("-".into(), time)),
            OutboxStatus::Dead => String::new(),
        };
        let _ = writeln!(
            out,
            "{}  {:<9} {}  attempts {}  {next}  [{}] {}",
            row.id, row.status, row.webhook, row.attempts, row.watchlist, row.title
        );
        if let Some(error) = &row.last_error {
            let _ = writeln!(out, "    last error: {error}");
        }
    }
    if output.deliveries.is_empty() {
        let _ = writeln!(out, "no deliveries");
    }
    Ok(())
}

async fn redeliver(config: &Config, args: &RedeliverArgs) -> Result<(), CliError> {
    if args.ids.is_empty() && !args.dead && args.webhook.is_none() {
        return Err(CliError::Usage(
            "name delivery ids, or --dead, or --webhook NAME".into(),
        ));
    }
    if let Some(name) = &args.webhook
        && !config.webhooks.iter().any(|w| &w.name == name)
    {
        return Err(CliError::Usage(format!("no webhook is named `{name}`")));
    }
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let now = clock::unix();
    let mut out = std::io::stdout().lock();
    let mut missing = Vec::new();
    for id in &args.ids {
        if store.requeue(id, now).await.context("cannot re-queue")? {
            let _ = writeln!(out, "{id}: re-queued");
        } else {
            missing.push(id.as_str());
        }
    }
    if let Some(name) = &args.webhook {
        store
            .enable_webhook(name)
            .await
            .context("cannot enable the webhook")?;
        let _ = writeln!(out, "webhook {name}: enabled");
    }
    if args.dead {
        let count = store
            .requeue_dead(args.webhook.as_deref(), now)
            .await
            .context("cannot re-queue")?;
        let _ = writeln!(out, "{count} dead deliveries re-queued");
    }
    store.close().await;
    if !missing.is_empty() {
        return Err(anyhow::anyhow!("no delivery with id {}", missing.join(", ")).into());
    }
    Ok(())
}

async fn feeds(config: &Config, args: &FeedsArgs) -> Result<(), CliError> {
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let statuses = store
        .configured_feeds(config)
        .await
        .context("cannot read feeds")?;
    store.close().await;
    let mut out = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&statuses).context("cannot encode JSON")?;
        let _ = writeln!(out, "{text}");
        return Ok(());
    }
    for feed in &statuses {
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
        let _ = writeln!(out, "{}  {state}", feed.name);
        let _ = writeln!(
            out,
            "    {} items, last fetch {last}, next due {next}",
            feed.items
        );
        if let Some(moved) = &feed.moved_to {
            let _ = writeln!(out, "    moved permanently to {moved}");
        }
    }
    if statuses.is_empty() {
        let _ = writeln!(out, "no feeds");
    }
    Ok(())
}
