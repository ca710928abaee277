//! Configuration: the TOML file of SPEC §2, turned into types that cannot be invalid.
//!
//! Loading happens in two steps. The raw file deserializes into plain `Raw*` structs that
//! keep the position of every value (`toml::Spanned`) and refuse unknown keys; its
//! `[[feeds]]` entries are parsed a chunk at a time ([`chunked`]), as 100,000 of them
//! would make the toml parser hold 300 MB. Those are then converted into [`Config`]: URLs
//! parsed, schedules compiled, watch-lists compiled into one [`Matcher`], names resolved to
//! indices, secrets read. Every problem found on the way is collected, so `wirewatch check`
//! can report all of them at once, each with file, line and column. Nothing downstream
//! re-checks what is validated here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use crate::guard;
use crate::matcher::{self, Field, Matcher, WatchlistSpec};

mod chunked;
mod files;
mod opml;

pub use opml::export as export_opml;

/// Where the configuration is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/wirewatch/wirewatch.toml";

/// The retry schedule of SPEC §5, used when a webhook does not set its own.
pub const DEFAULT_RETRY_SCHEDULE: [&str; 9] =
    ["5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"];

/// Resolves the config path: the flag, else `$WIREWATCH_CONFIG`, else the default.
pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    match std::env::var_os("WIREWATCH_CONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_CONFIG_PATH),
    }
}

// ---------------------------------------------------------------------------------------
// Validated configuration
// ---------------------------------------------------------------------------------------

/// A loaded, fully validated configuration.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub daemon: Daemon,
    pub poll: Poll,
    pub feeds: Vec<Feed>,
    pub watchlists: Vec<Watchlist>,
    pub webhooks: Vec<Webhook>,
    pub retention: Retention,
    /// One automaton over the terms of every watch-list; watch-list `i` of the matcher is
    /// `watchlists[i]`.
    pub matcher: Arc<Matcher>,
    /// What is allowed but probably a mistake (an open listener without a token, a secret
    /// file others can read): `check` prints these, `run` logs them.
    pub warnings: Vec<Problem>,
    /// Index of each feed by name: a daemon may watch 100,000 feeds, and `/metrics` looks
    /// every stored feed up by name.
    feed_indexes: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct Daemon {
    pub state_dir: PathBuf,
    /// The SQLite database file.
    pub database: PathBuf,
    pub listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// When set, `/api/*` and `/metrics` require `Authorization: Bearer <token>`.
    pub api_token: Option<ApiToken>,
}

/// The bearer token of the HTTP API (`daemon.api_token_file` / `api_token_env`).
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    /// Whether `presented` is the token, compared in constant time so that response
    /// times say nothing about how much of a guess was right. Digests of the same length
    /// are compared, so not even the token's length shows.
    pub fn verify(&self, presented: &str) -> bool {
        use sha2::{Digest as _, Sha256};
        use subtle::ConstantTimeEq as _;
        let (expected, given) = (Sha256::digest(&self.0), Sha256::digest(presented));
        expected.as_slice().ct_eq(given.as_slice()).into()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// How long rows are kept (`[retention]`, SPEC §14); `None` keeps them for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Items that never matched: rows and text. Items the feed still serves are kept.
    pub items: Option<Duration>,
    /// Matches, the items they point at and their stories.
    pub matches: Option<Duration>,
    /// Delivered outbox rows (their frozen bodies); dead letters are kept.
    pub deliveries: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Poll {
    pub schedule: Schedule,
    /// Each feed's due time is pushed back by a random delay up to this, so that many
    /// feeds on one schedule do not all fire in the same second.
    pub jitter: Duration,
    pub concurrency: usize,
    pub per_host: usize,
    pub timeout: Duration,
    pub max_body: u64,
    pub backfill: Backfill,
    /// A failing feed waits `backoff_base`, doubling per failure up to `backoff_max`
    /// (with jitter), or its schedule, whichever is later.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub allow_private_networks: bool,
    pub user_agent: String,
}

/// Which items of a feed's first fetch may alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backfill {
    All,
    None,
    /// Only items published less than this long ago.
    Window(Duration),
}

impl Backfill {
    /// Whether an item first seen on a feed's first fetch should alert.
    pub fn admits(self, published: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        match self {
            Backfill::All => true,
            Backfill::None => false,
            Backfill::Window(window) => match (published, chrono::Duration::from_std(window)) {
                (Some(at), Ok(window)) => at > now - window,
                // An undated item on a first fetch could be years old: storing it without an
                // alert is the conservative choice.
                _ => false,
            },
        }
    }
}

/// When a feed is due: a standard crontab expression or a fixed interval.
#[derive(Debug, Clone)]
pub enum Schedule {
    Cron {
        expr: String,
        /// Shared: a parsed pattern takes about 5 KB, and every feed on the default
        /// schedule holds a clone of it (500 MB for 100,000 feeds if each had its own).
        cron: Arc<croner::Cron>,
    },
    Every(Duration),
}

impl Schedule {
    /// The first due time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Cron { cron, .. } => cron
                .find_next_occurrence(&after, false)
                // croner only fails for patterns with no future occurrence (e.g. Feb 30);
                // polling daily is a safe fallback and `check` already rejected those.
                .unwrap_or_else(|_| after + chrono::Duration::days(1)),
            Schedule::Every(every) => {
                after + chrono::Duration::from_std(*every).unwrap_or(chrono::Duration::MAX)
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Cron { expr, .. } => write!(f, "{expr}"),
            Schedule::Every(every) => write!(f, "every {}", humantime::format_duration(*every)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Feed {
    pub name: String,
    pub url: Url,
    pub schedule: Schedule,
    /// Whether the feed's own hints (`Cache-Control: max-age`, `Expires`, RSS `<ttl>`)
    /// may stretch its interval: yes unless the feed has its own `schedule`, which the
    /// user chose deliberately.
    pub cache_hints: bool,
    pub tags: Vec<String>,
    /// Query parameters of `url` whose values are credentials, beyond
    /// [`crate::redact::SENSITIVE_PARAMS`]; never shown outside the process.
    pub redact_params: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Watchlist {
    pub name: String,
    /// Indices into [`Config::feeds`]; `None` means every feed.
    pub feeds: Option<HashSet<usize>>,
    /// Indices into [`Config::webhooks`].
    pub webhooks: Vec<usize>,
}

impl Watchlist {
    pub fn watches(&self, feed: usize) -> bool {
        self.feeds.as_ref().is_none_or(|set| set.contains(&feed))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Json,
    Slack,
    Discord,
    Teams,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Discord => "discord",
            WebhookFormat::Teams => "teams",
        }
    }
}

#[derive(Clone)]
pub struct Webhook {
    pub name: String,
    pub url: Url,
    pub format: WebhookFormat,
    pub secret: Option<Secret>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub retry_schedule: Vec<Duration>,
    pub allow_private_network: bool,
}

impl Webhook {
    /// A digest of everything that decides where and how this webhook is called. When it
    /// changes, a webhook disabled by a 410 is enabled again.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(self.url.as_str());
        hash.update([0]);
        hash.update(self.format.as_str());
        for (name, value) in &self.headers {
            hash.update([0]);
            hash.update(name.as_str());
            hash.update([0]);
            hash.update(value.as_bytes());
        }
        if let Some(secret) = &self.secret {
            hash.update([1]);
            hash.update(secret.key());
        }
        format!("{:x}", hash.finalize())
    }
}

impl fmt::Debug for Webhook {
    // The URL of a chat webhook is itself a credential: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("headers", &self.headers.len())
            .finish_non_exhaustive()
    }
}

/// A Standard Webhooks signing key: the bytes base64-decoded from after `whsec_`.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn key(&self) -> &[u8] {
        &self.0
    }

    pub fn parse(text: &str) -> Result<Secret, String> {
        use base64::Engine as _;
        let text = text.trim();
        let Some(encoded) = text.strip_prefix("whsec_") else {
            return Err("secret must have the form `whsec_<base64>` (Standard Webhooks)".into());
        };
        match base64::engine::general_purpose::STANDARD.decode(encoded) {
            Ok(key) if key.len() >= 16 => Ok(Secret(key)),
            Ok(key) => Err(format!(
                "secret is too short: {} bytes after base64 decoding, at least 16 needed",
                key.len()
            )),
            Err(_) => Err("secret after `whsec_` is not valid base64".into()),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Every problem found in one configuration file.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

/// One problem, at a position in the file when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl Problem {
    /// `file:line:column: message`, or `file: message` when it has no position.
    pub fn located<'a>(&'a self, path: &'a Path) -> impl fmt::Display + 'a {
        struct Located<'a>(&'a Problem, &'a Path);
        impl fmt::Display for Located<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let (problem, path) = (self.0, self.1.display());
                match (problem.line, problem.column) {
                    (Some(line), Some(column)) => {
                        write!(f, "{path}:{line}:{column}: {}", problem.message)
                    }
                    _ => write!(f, "{path}: {}", problem.message),
                }
            }
        }
        Located(self, path)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", problem.located(&self.path))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems (and warnings) while converting, turning byte spans into lines and
/// columns.
struct Problems<'a> {
    lines: Lines<'a>,
    list: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl<'a> Problems<'a> {
    fn new(source: &'a str) -> Problems<'a> {
        Problems {
            lines: Lines::new(source),
            list: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn place(&self, span: Range<usize>, message: String) -> Problem {
        let (line, column) = self.lines.locate(span.start);
        Problem {
            line: Some(line),
            column: Some(column),
            message,
        }
    }

    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let problem = self.place(span, message.into());
        self.list.push(problem);
    }

    /// Something allowed that is probably a mistake: reported, not refused.
    fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        let warning = self.place(span, format!("warning: {}", message.into()));
        self.warnings.push(warning);
    }
}

/// Where a feed name was taken: a `[[feeds]]` entry at this byte offset of the config, or
/// an OPML outline, described.
enum Place {
    Feeds(usize),
    Opml(String),
}

/// The line starts of a text, to place many offsets in it without rescanning it for each
/// (a file with 100,000 problems would otherwise be scanned 100,000 times). They are
/// found on the first offset placed: a valid file never needs them.
struct Lines<'a> {
    text: &'a str,
    starts: std::cell::OnceCell<Vec<usize>>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines {
            text,
            starts: std::cell::OnceCell::new(),
        }
    }

    /// As [`line_column`].
    fn locate(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        if !self.text.is_char_boundary(offset) {
            // Not a position in the text; placed as `line_column` places it.
            return line_column(self.text, offset);
        }
        let starts = self.starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let line = starts.partition_point(|&start| start <= offset);
        let start = starts[line.saturating_sub(1).min(starts.len() - 1)];
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |t| t.chars().count())
            + 1;
        (line, column)
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

// ---------------------------------------------------------------------------------------
// Raw configuration, as written
// ---------------------------------------------------------------------------------------

type S<T> = Spanned<T>;

/// The whole file. `F` is what `feeds` is read as: [`chunked`] reads the file without its
/// `[[feeds]]` entries with `F` only noting whether `feeds` appears at all.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig<F = Vec<RawFeed>> {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    poll: RawPoll,
    #[serde(default)]
    feeds: F,
    #[serde(default)]
    opml: Vec<RawOpml>,
    #[serde(default)]
    watchlists: Vec<RawWatchlist>,
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
    #[serde(default)]
    retention: RawRetention,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    state_dir: Option<S<String>>,
    database: Option<S<String>>,
    listen: Option<S<String>>,
    log_format: Option<S<String>>,
    api_token_file: Option<S<String>>,
    api_token_env: Option<S<String>>,
}

/// `[retention]`: how long rows are kept (SPEC §14).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    items: Option<S<String>>,
    matches: Option<S<String>>,
    deliveries: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoll {
    schedule: Option<S<String>>,
    jitter: Option<S<String>>,
    concurrency: Option<S<i64>>,
    per_host: Option<S<i64>>,
    timeout: Option<S<String>>,
    max_body: Option<S<String>>,
    backfill: Option<S<String>>,
    backoff_base: Option<S<String>>,
    backoff_max: Option<S<String>>,
    allow_private_networks: Option<bool>,
    user_agent: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    name: Option<S<String>>,
    url: S<String>,
    schedule: Option<S<String>>,
    #[serde(default)]
    tags: Vec<S<String>>,
    #[serde(default)]
    redact_params: Vec<S<String>>,
}

/// `[[opml]]`: feeds from an OPML subscription list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOpml {
    path: S<String>,
    #[serde(default)]
    tags: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatchlist {
    name: S<String>,
    terms: S<Vec<S<String>>>,
    #[serde(default)]
    aliases: BTreeMap<String, S<Vec<S<String>>>>,
    query: Option<S<String>>,
    #[serde(default)]
    exclude: Vec<S<String>>,
    fields: Option<S<Vec<S<String>>>>,
    feeds: Option<Vec<S<String>>>,
    #[serde(default)]
    webhooks: Vec<S<String>>,
    acronyms_exact: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: S<String>,
    url: S<String>,
    format: Option<S<String>>,
    secret: Option<S<String>>,
    secret_file: Option<S<String>>,
    secret_env: Option<S<String>>,
    #[serde(default)]
    headers: BTreeMap<String, S<String>>,
    #[serde(default)]
    headers_file: BTreeMap<String, S<String>>,
    #[serde(default)]
    headers_env: BTreeMap<String, S<String>>,
    timeout: Option<S<String>>,
    retry_schedule: Option<S<Vec<S<String>>>>,
    allow_private_network: Option<bool>,
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let unreadable = |why: String| ConfigError {
            path: path.to_path_buf(),
            problems: vec![Problem {
                line: None,
                column: None,
                message: format!("cannot read the configuration file: {why}"),
            }],
        };
        let contents = files::read_limited(path, files::MAX_CONFIG_BYTES).map_err(unreadable)?;
        let source = String::from_utf8(contents.bytes)
            .map_err(|_| unreadable("it is not UTF-8 text".into()))?;
        Config::from_source(path, &source)
    }

    /// Parses and validates `source`, the text of the file at `path` (relative paths in
    /// it are resolved against that file's directory).
    pub fn from_source(path: &Path, source: &str) -> Result<Config, ConfigError> {
        let mut problems = Problems::new(source);
        let raw = match chunked::parse(source) {
            Ok(raw) => raw,
            Err(err) => {
                let span = err.span().unwrap_or(0..0);
                problems.at(span, err.message().trim().to_string());
                return Err(ConfigError {
                    path: path.to_path_buf(),
                    problems: problems.list,
                });
            }
        };
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let config = build(path, &base_dir, raw, &mut problems);
        match config {
            Some(config) if problems.list.is_empty() => Ok(Config {
                warnings: problems.warnings,
                ..config
            }),
            _ => Err(ConfigError {
                path: path.to_path_buf(),
                problems: problems.list,
            }),
        }
    }

    /// Logs every warning, each with its place in the file.
    pub fn log_warnings(&self) {
        for warning in &self.warnings {
            tracing::warn!("{}", warning.located(&self.path));
        }
    }

    pub fn feed_index(&self, name: &str) -> Option<usize> {
        self.feed_indexes.get(name).copied()
    }
}

/// Resolves a path from the config file against the file's own directory: under systemd
/// the working directory is `/`, so "relative to where wirewatch was started" would mean
/// nothing useful.
fn relative_to(base: &Path, value: &str) -> PathBuf {
    let path = PathBuf::from(value);
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

/// Every feed name, tag and webhook name the file declares, valid or not, so that a
/// watch-list naming a broken feed or webhook gets no second, misleading error.
#[derive(Debug, Default)]
struct Declared {
    feeds: HashSet<String>,
    tags: HashSet<String>,
    webhooks: HashSet<String>,
}

impl Declared {
    fn of(raw: &RawConfig) -> Declared {
        let mut declared = Declared::default();
        for feed in &raw.feeds {
            let name = match &feed.name {
                Some(name) => name.get_ref().trim().to_string(),
                None => Url::parse(feed.url.get_ref().trim())
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default(),
            };
            declared.feeds.insert(name);
            declared
                .tags
                .extend(feed.tags.iter().map(|t| t.get_ref().clone()));
        }
        declared.webhooks.extend(
            raw.webhooks
                .iter()
                .map(|w| w.name.get_ref().trim().to_string()),
        );
        declared
    }
}

fn build(path: &Path, base: &Path, raw: RawConfig, p: &mut Problems<'_>) -> Option<Config> {
    let mut declared = Declared::of(&raw);
    let daemon = build_daemon(base, raw.daemon, p);
    let poll = build_poll(raw.poll, p);
    let imported = load_opml(base, &raw.opml, &raw.feeds, poll.as_ref(), &mut declared, p);
    let mut feeds = build_feeds(raw.feeds, poll.as_ref(), p);
    feeds.extend(imported);
    let webhooks = build_webhooks(base, raw.webhooks, poll.as_ref(), p);
    let retention = build_retention(raw.retention, p);
    let (watchlists, matcher) = build_watchlists(raw.watchlists, &feeds, &webhooks, &declared, p);
    let feed_indexes = feeds
        .iter()
        .enumerate()
        .map(|(index, feed)| (feed.name.clone(), index))
        .collect();
    Some(Config {
        feed_indexes,
        path: path.to_path_buf(),
        daemon: daemon?,
        poll: poll?,
        feeds,
        watchlists,
        webhooks,
        retention,
        matcher: Arc::new(matcher?),
        warnings: Vec::new(),
    })
}

fn build_daemon(base: &Path, raw: RawDaemon, p: &mut Problems<'_>) -> Option<Daemon> {
    let state_dir = match &raw.state_dir {
        Some(dir) if dir.get_ref().trim().is_empty() => {
            p.at(dir.span(), "state_dir is empty");
            PathBuf::new()
        }
        Some(dir) => relative_to(base, dir.get_ref()),
        None => match std::env::var_os("STATE_DIRECTORY") {
            // systemd may pass several directories separated by ':'; the first is ours.
            Some(dirs) if !dirs.is_empty() => {
                let dirs = dirs.to_string_lossy().into_owned();
                PathBuf::from(dirs.split(':').next().unwrap_or_default())
            }
            _ => PathBuf::from("wirewatch-data"),
        },
    };
    let database = match &raw.database {
        None => state_dir.join("wirewatch.db"),
        Some(db) => {
            let text = db.get_ref().trim();
            let file = text
                .strip_prefix("sqlite://")
                .or_else(|| text.strip_prefix("sqlite:"))
                .unwrap_or(text);
            if file.is_empty() || file.contains("memory") {
                p.at(
                    db.span(),
                    format!("database `{text}` must name a SQLite file, e.g. sqlite:///var/lib/wirewatch/wirewatch.db"),
                );
            }
            relative_to(base, file)
        }
    };
    let listen = match &raw.listen {
        None => Some(SocketAddr::from(([127, 0, 0, 1], 9184))),
        Some(listen) if listen.get_ref().is_empty() => None,
        Some(listen) => match listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                p.at(
                    listen.span(),
                    format!(
                        "listen `{}` is not an address with a port, e.g. 127.0.0.1:9184 (\"\" disables the listener)",
                        listen.get_ref()
                    ),
                );
                None
            }
        },
    };
    let api_token = read_credential(
        base,
        "the API token",
        [
            ("api_token_file", Source::File, raw.api_token_file.as_ref()),
            ("api_token_env", Source::Env, raw.api_token_env.as_ref()),
        ],
        p,
    )
    .ok()
    .flatten()
    .and_then(|(text, span)| {
        let token = text.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            p.at(
                span,
                "the API token must be one word of visible ASCII characters (it is sent in an Authorization header)",
            );
            return None;
        }
        if token.len() < 16 {
            p.warn(
                span,
                format!("the API token is {} characters long: use at least 16 (e.g. `openssl rand -hex 32`)", token.len()),
            );
        }
        Some(ApiToken(token.to_string()))
    });
    if let (Some(addr), Some(listen), None) = (listen, &raw.listen, &api_token)
        && !addr.ip().is_loopback()
    {
        p.warn(
            listen.span(),
            format!(
                "listen `{addr}` is not a loopback address and no api_token_file or api_token_env is set: /metrics and /api/* are open to anyone who can reach it"
            ),
        );
    }
    let log_format = match raw
        .log_format
        .as_ref()
        .map(|f| (f.get_ref().as_str(), f.span()))
    {
        None | Some(("text", _)) => LogFormat::Text,
        Some(("json", _)) => LogFormat::Json,
        Some((other, span)) => {
            p.at(
                span,
                format!("log_format `{other}` is unknown: expected \"text\" or \"json\""),
            );
            LogFormat::Text
        }
    };
    Some(Daemon {
        state_dir,
        database,
        listen,
        log_format,
        api_token,
    })
}

fn build_poll(raw: RawPoll, p: &mut Problems<'_>) -> Option<Poll> {
    let schedule = match &raw.schedule {
        Some(s) => parse_schedule(s, p)?,
        None => parse_schedule_text("*/5 * * * *").ok()?,
    };
    let jitter = duration_or(raw.jitter.as_ref(), "jitter", "0s", p);
    let backoff_base = duration_or(raw.backoff_base.as_ref(), "backoff_base", "1m", p);
    let backoff_max = duration_or(raw.backoff_max.as_ref(), "backoff_max", "6h", p);
    if backoff_max < backoff_base
        && let Some(max) = &raw.backoff_max
    {
        p.at(max.span(), "backoff_max is shorter than backoff_base");
    }
    let concurrency = positive(raw.concurrency.as_ref(), "concurrency", 64, p);
    let per_host = positive(raw.per_host.as_ref(), "per_host", 2, p);
    let timeout = duration_or(raw.timeout.as_ref(), "timeout", "30s", p);
    refuse_zero(raw.timeout.as_ref(), "timeout", p);
    let max_body = match &raw.max_body {
        None => 16 * 1024 * 1024,
        Some(size) => match size.get_ref().trim().parse::<bytesize::ByteSize>() {
            Ok(bytes) if bytes.as_u64() > 0 => bytes.as_u64(),
            _ => {
                p.at(
                    size.span(),
                    format!(
                        "max_body `{}` is not a size: write it like \"16MiB\" or \"512KiB\"",
                        size.get_ref()
                    ),
                );
                0
            }
        },
    };
    let backfill = match &raw.backfill {
        None => Backfill::Window(Duration::from_secs(6 * 3600)),
        Some(b) => {
            match b.get_ref().trim() {
                "all" => Backfill::All,
                "none" => Backfill::None,
                text => match humantime::parse_duration(text) {
                    Ok(window) if window <= MAX_DURATION => Backfill::Window(window),
                    _ => {
                        p.at(
                        b.span(),
                        format!("backfill `{text}` must be \"all\", \"none\" or a duration like \"6h\""),
                    );
                        Backfill::None
                    }
                },
            }
        }
    };
    let user_agent = match raw.user_agent {
        Some(ua) if ua.get_ref().trim().is_empty() => {
            p.at(ua.span(), "user_agent is empty");
            String::new()
        }
        Some(ua) => ua.into_inner(),
        None => format!(
            "wirewatch/{} (+https://github.com/wirewatch/wirewatch)",
            env!("CARGO_PKG_VERSION")
        ),
    };
    Some(Poll {
        schedule,
        jitter,
        concurrency,
        per_host,
        timeout,
        max_body,
        backfill,
        backoff_base,
        backoff_max,
        allow_private_networks: raw.allow_private_networks.unwrap_or(false),
        user_agent,
    })
}

fn build_feeds(raw: Vec<RawFeed>, poll: Option<&Poll>, p: &mut Problems<'_>) -> Vec<Feed> {
    let mut feeds = Vec::with_capacity(raw.len());
    let mut seen: HashMap<String, ()> = HashMap::new();
    for feed in raw {
        let guard = poll
            .is_some_and(|poll| !poll.allow_private_networks)
            .then_some(guard::Scope::Feeds);
        let Some(url) = parse_http_url(&feed.url, "feed url", guard, p) else {
            continue;
        };
        let (name, name_span) = match &feed.name {
            Some(name) => (name.get_ref().trim().to_string(), name.span()),
            None => (
                url.host_str().unwrap_or_default().to_string(),
                feed.url.span(),
            ),
        };
        if name.is_empty() {
            p.at(name_span, "feed name is empty");
            continue;
        }
        if seen.insert(name.clone(), ()).is_some() {
            let hint = if feed.name.is_none() {
                " (derived from the URL's host: give the feed a `name`)"
            } else {
                ""
            };
            p.at(name_span, format!("duplicate feed name `{name}`{hint}"));
            continue;
        }
        let schedule = match &feed.schedule {
            Some(s) => match parse_schedule(s, p) {
                Some(schedule) => schedule,
                None => continue,
            },
            None => match poll {
                Some(poll) => poll.schedule.clone(),
                None => continue,
            },
        };
        let mut tags = Vec::new();
        for tag in feed.tags {
            if tag.get_ref().trim().is_empty() || tag.get_ref().contains(':') {
                p.at(
                    tag.span(),
                    format!(
                        "tag `{}` must be non-empty and contain no `:`",
                        tag.get_ref()
                    ),
                );
            } else {
                tags.push(tag.into_inner());
            }
        }
        let mut redact_params = Vec::with_capacity(feed.redact_params.len());
        for param in feed.redact_params {
            let text = param.get_ref().trim();
            if text.is_empty() {
                p.at(param.span(), "redact_params: a parameter name is empty");
            } else {
                redact_params.push(text.to_string());
            }
        }
        feeds.push(Feed {
            name,
            url,
            schedule,
            cache_hints: feed.schedule.is_none(),
            tags,
            redact_params,
        });
    }
    feeds
}

/// The feeds of the `[[opml]]` files, each built by [`build_feeds`] exactly as a
/// `[[feeds]]` entry (URL rules, network guard, the default schedule).
///
/// - Every `outline` with an `xmlUrl` is a feed, named by its `title` (else `text`)
///   turned into a slug (`BBC News: World` → `bbc-news-world`), else by the URL's host.
/// - Its tags: the `[[opml]]` entry's `tags`, plus the slug of every folder (outline
///   without `xmlUrl`) it is nested in, so a feed reader's folders become `tag:NAME`s.
/// - A URL that a `[[feeds]]` entry already has is left to that entry, as written. The
///   same URL twice in the OPML files is one feed carrying the tags of both places.
/// - Two different URLs under one name are an error naming both places.
///
/// Problems are reported at the `[[opml]]` entry's `path`, naming the OPML file, the line
/// and column of the outline, and the outline.
fn load_opml(
    base: &Path,
    raw: &[RawOpml],
    hand_written: &[RawFeed],
    poll: Option<&Poll>,
    declared: &mut Declared,
    p: &mut Problems<'_>,
) -> Vec<Feed> {
    if raw.is_empty() {
        // Nothing to import: no need to index the hand-written feeds (100,000 of them
        // can take 30 MB).
        return Vec::new();
    }
    // Every name and URL taken so far, and where: a `[[feeds]]` entry (None) or the index
    // of an imported feed.
    // Places are rendered only for a message: turning every entry's offset into a line
    // up front would scan the file once per feed.
    let mut names: HashMap<String, Place> = HashMap::new();
    let mut urls: HashMap<Url, Option<usize>> = HashMap::new();
    for feed in hand_written {
        let url = Url::parse(feed.url.get_ref().trim()).ok();
        let name = match &feed.name {
            Some(name) => name.get_ref().trim().to_string(),
            None => url
                .as_ref()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default(),
        };
        names
            .entry(name)
            .or_insert(Place::Feeds(feed.url.span().start));
        if let Some(url) = url {
            urls.entry(url).or_insert(None);
        }
    }
    let mut imported: Vec<Feed> = Vec::new();
    for entry in raw {
        let span = entry.path.span();
        let mut tags = Vec::new();
        for tag in &entry.tags {
            let text = tag.get_ref().trim();
            if text.is_empty() || text.contains(':') {
                p.at(
                    tag.span(),
                    format!(
                        "tag `{}` must be non-empty and contain no `:`",
                        tag.get_ref()
                    ),
                );
            } else {
                declared.tags.insert(text.to_string());
                tags.push(text.to_string());
            }
        }
        let file = relative_to(base, entry.path.get_ref().trim());
        let shown = file.display();
        let text = match files::read_limited(&file, files::MAX_OPML_BYTES)
            .map(|contents| String::from_utf8(contents.bytes))
        {
            Ok(Ok(text)) => text,
            Ok(Err(_)) => {
                p.at(span, format!("opml `{shown}` is not UTF-8 text"));
                continue;
            }
            Err(why) => {
                p.at(span, format!("opml `{shown}` cannot be read: {why}"));
                continue;
            }
        };
        let outlines = match opml::read(&text) {
            Ok(outlines) => outlines,
            Err(err) => {
                let (line, column) = line_column(&text, err.offset);
                p.at(
                    span,
                    format!("opml {shown}:{line}:{column}: {}", err.message),
                );
                continue;
            }
        };
        if outlines.is_empty() {
            p.at(
                span,
                format!("opml `{shown}` has no outline with an xmlUrl: no feed to import"),
            );
            continue;
        }
        // The feeds' own problems are placed in the OPML file, by the outline.
        let mut local = Problems::new(&text);
        for outline in outlines {
            let (line, column) = local.lines.locate(outline.offset);
            let here = format!("{shown}:{line}:{column}");
            let what = outline
                .title
                .as_ref()
                .map_or("outline".to_string(), |t| format!("outline `{t}`"));
            let url = Url::parse(outline.xml_url.trim()).ok();
            let name = outline
                .title
                .as_deref()
                .map(opml::slug)
                .filter(|slug| !slug.is_empty())
                .or_else(|| url.as_ref().and_then(|u| u.host_str().map(str::to_string)))
                .unwrap_or_default();
            let mut feed_tags = tags.clone();
            for folder in outline.folders.iter().map(|f| opml::slug(f)) {
                if !folder.is_empty() && !feed_tags.contains(&folder) {
                    feed_tags.push(folder);
                }
            }
            declared.feeds.insert(name.clone());
            declared.tags.extend(feed_tags.iter().cloned());
            if let Some(seen) = url.as_ref().and_then(|u| urls.get(u)) {
                if let Some(feed) = seen.and_then(|i| imported.get_mut(i)) {
                    for tag in feed_tags {
                        if !feed.tags.contains(&tag) {
                            feed.tags.push(tag);
                        }
                    }
                }
                continue;
            }
            if let Some(place) = names.get(&name) {
                let place = match place {
                    Place::Feeds(offset) => {
                        format!("the [[feeds]] entry at line {}", p.lines.locate(*offset).0)
                    }
                    Place::Opml(place) => place.clone(),
                };
                p.at(
                    span.clone(),
                    format!(
                        "opml {here}: {what}: the feed name `{name}` is already used by {place}, \
                         with another URL; rename one of them (in the OPML file, the outline's `title`)"
                    ),
                );
                continue;
            }
            names.insert(name.clone(), Place::Opml(format!("{here} ({what})")));
            // Positions in the OPML file, so that the feed path's messages can be placed.
            let at = outline.offset..outline.offset;
            let raw_feed = RawFeed {
                name: Some(Spanned::new(at.clone(), name)),
                url: Spanned::new(at.clone(), outline.xml_url),
                schedule: None,
                tags: feed_tags
                    .into_iter()
                    .map(|tag| Spanned::new(at.clone(), tag))
                    .collect(),
                redact_params: Vec::new(),
            };
            let built = build_feeds(vec![raw_feed], poll, &mut local);
            for problem in local.list.drain(..) {
                p.at(
                    span.clone(),
                    format!("opml {here}: {what}: {}", problem.message),
                );
            }
            if let Some(feed) = built.into_iter().next() {
                if let Some(url) = url {
                    urls.insert(url, Some(imported.len()));
                }
                imported.push(feed);
            }
        }
    }
    imported
}

fn build_webhooks(
    base: &Path,
    raw: Vec<RawWebhook>,
    poll: Option<&Poll>,
    p: &mut Problems<'_>,
) -> Vec<Webhook> {
    let mut webhooks = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for hook in raw {
        let Some(name) = unique_name(&hook.name, "webhook", &mut seen, p) else {
            continue;
        };
        let guard = (poll.is_some_and(|poll| !poll.allow_private_networks)
            && hook.allow_private_network != Some(true))
        .then_some(guard::Scope::Webhooks);
        let url = parse_http_url(&hook.url, "webhook url", guard, p);
        let format = match hook
            .format
            .as_ref()
            .map(|f| (f.get_ref().as_str(), f.span()))
        {
            None | Some(("json", _)) => Some(WebhookFormat::Json),
            Some(("slack", _)) => Some(WebhookFormat::Slack),
            Some(("discord", _)) => Some(WebhookFormat::Discord),
            Some(("teams", _)) => Some(WebhookFormat::Teams),
            Some((other, span)) => {
                p.at(
                    span,
                    format!("webhook format `{other}` is unknown: expected \"json\", \"slack\", \"discord\" or \"teams\""),
                );
                None
            }
        };
        let secret = webhook_secret(base, &hook, p);
        let headers = webhook_headers(base, &hook, p);
        let timeout = duration_or(hook.timeout.as_ref(), "timeout", "15s", p);
        refuse_zero(hook.timeout.as_ref(), "timeout", p);
        let retry_schedule = match &hook.retry_schedule {
            None => DEFAULT_RETRY_SCHEDULE
                .iter()
                .filter_map(|d| humantime::parse_duration(d).ok())
                .collect(),
            Some(list) => {
                if list.get_ref().is_empty() {
                    p.at(
                        list.span(),
                        "retry_schedule is empty: give at least one delay, e.g. [\"5s\"]",
                    );
                }
                list.get_ref()
                    .iter()
                    .map(|d| duration_or(Some(d), "retry_schedule entry", "0s", p))
                    .collect()
            }
        };
        let (Some(url), Some(format), Ok(secret)) = (url, format, secret) else {
            continue;
        };
        webhooks.push(Webhook {
            name,
            url,
            format,
            secret,
            headers,
            timeout,
            retry_schedule,
            allow_private_network: hook.allow_private_network.unwrap_or(false)
                || poll.is_some_and(|poll| poll.allow_private_networks),
        });
    }
    webhooks
}

/// `[retention]`: each setting a duration of at least a minute, or `"forever"`.
fn build_retention(raw: RawRetention, p: &mut Problems<'_>) -> Retention {
    let mut keep = |value: Option<&S<String>>, what: &str, default: &str| {
        let text = value.map_or(default, |v| v.get_ref().trim());
        if text == "forever" {
            return None;
        }
        let span = value.map_or(0..0, Spanned::span);
        match humantime::parse_duration(text) {
            Ok(d) if d < Duration::from_secs(60) => {
                p.at(
                    span,
                    format!("retention.{what} `{text}` is shorter than a minute"),
                );
                None
            }
            Ok(d) if d > MAX_RETENTION => {
                p.at(
                    span,
                    format!(
                        "retention.{what} `{text}` is longer than 100 years: write \"forever\""
                    ),
                );
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                p.at(
                    span,
                    format!(
                        "retention.{what} `{text}` is not a duration like \"30d\" nor \"forever\""
                    ),
                );
                None
            }
        }
    };
    Retention {
        items: keep(raw.items.as_ref(), "items", "30d"),
        matches: keep(raw.matches.as_ref(), "matches", "365d"),
        deliveries: keep(raw.deliveries.as_ref(), "deliveries", "30d"),
    }
}

/// The longest retention written as a duration (date arithmetic stays far from overflow).
const MAX_RETENTION: Duration = Duration::from_secs(100 * 366 * 24 * 3600);

/// Where a credential's text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Inline,
    /// A file (`*_file`, e.g. a systemd credential), read within [`files::MAX_SECRET_BYTES`].
    File,
    /// An environment variable (`*_env`).
    Env,
}

/// A credential (`what`, for messages) given by at most one of `sources`, each a setting's
/// name, where its value leads, and the value if the setting is present. Returns the text
/// and the position to blame if it is wrong. A file that others may read draws a warning.
fn read_credential<const N: usize>(
    base: &Path,
    what: &str,
    sources: [(&str, Source, Option<&S<String>>); N],
    p: &mut Problems<'_>,
) -> Result<Option<(String, Range<usize>)>, ()> {
    let given: Vec<(&str, Source, &S<String>)> = sources
        .into_iter()
        .filter_map(|(key, source, value)| Some((key, source, value?)))
        .collect();
    let Some(&(key, source, value)) = given.first() else {
        return Ok(None);
    };
    if let Some((other, _, second)) = given.get(1) {
        p.at(
            second.span(),
            format!("`{key}` and `{other}` both give {what}: keep one"),
        );
        return Err(());
    }
    match source {
        Source::Inline => Ok(Some((value.get_ref().clone(), value.span()))),
        Source::File => {
            let path = relative_to(base, value.get_ref());
            let shown = path.display();
            let read = files::read_limited(&path, files::MAX_SECRET_BYTES).and_then(|contents| {
                let others = contents.readable_by_others().then_some(contents.mode);
                String::from_utf8(contents.bytes)
                    .map(|text| (text, others))
                    .map_err(|_| "it is not UTF-8 text".to_string())
            });
            match read {
                Ok((text, others)) => {
                    if let Some(mode) = others {
                        p.warn(
                            value.span(),
                            format!(
                                "{key} `{shown}` can be read by others (mode {mode:04o}): `chmod 600` it, or pass it as a systemd credential"
                            ),
                        );
                    }
                    // A trailing newline from `echo` or an editor is not part of the value.
                    Ok(Some((
                        text.trim_end_matches(['\n', '\r']).to_string(),
                        value.span(),
                    )))
                }
                Err(why) => {
                    p.at(
                        value.span(),
                        format!("{key} `{shown}` cannot be read: {why}"),
                    );
                    Err(())
                }
            }
        }
        Source::Env => match std::env::var(value.get_ref()) {
            Ok(text) => Ok(Some((text, value.span()))),
            Err(_) => {
                p.at(
                    value.span(),
                    format!(
                        "{key}: environment variable `{}` is not set",
                        value.get_ref()
                    ),
                );
                Err(())
            }
        },
    }
}

/// The webhook's signing secret from `secret`, `secret_file` or `secret_env`.
fn webhook_secret(
    base: &Path,
    hook: &RawWebhook,
    p: &mut Problems<'_>,
) -> Result<Option<Secret>, ()> {
    let given = read_credential(
        base,
        "the signing secret",
        [
            ("secret", Source::Inline, hook.secret.as_ref()),
            ("secret_file", Source::File, hook.secret_file.as_ref()),
            ("secret_env", Source::Env, hook.secret_env.as_ref()),
        ],
        p,
    )?;
    let Some((text, span)) = given else {
        return Ok(None);
    };
    Secret::parse(&text)
        .map(Some)
        .map_err(|message| p.at(span, message))
}

/// Extra request headers; each value inline (`headers`), from a file (`headers_file`) or
/// from the environment (`headers_env`). Values are marked sensitive so they never show
/// in debug output.
fn webhook_headers(
    base: &Path,
    hook: &RawWebhook,
    p: &mut Problems<'_>,
) -> Vec<(HeaderName, HeaderValue)> {
    let names: std::collections::BTreeSet<&String> = hook
        .headers
        .keys()
        .chain(hook.headers_file.keys())
        .chain(hook.headers_env.keys())
        .collect();
    let mut headers = Vec::new();
    for key in names {
        let what = format!("headers.{key}");
        let Ok(Some((text, span))) = read_credential(
            base,
            &format!("the value of header `{key}`"),
            [
                ("headers", Source::Inline, hook.headers.get(key)),
                ("headers_file", Source::File, hook.headers_file.get(key)),
                ("headers_env", Source::Env, hook.headers_env.get(key)),
            ],
            p,
        ) else {
            continue;
        };
        let name = HeaderName::from_bytes(key.as_bytes());
        let value = HeaderValue::from_str(text.trim());
        match (name, value) {
            (Ok(name), _) if is_protocol_header(&name) => p.at(
                span,
                format!(
                    "{what}: `{key}` is a protocol header that wirewatch sets itself; it cannot be configured"
                ),
            ),
            (Ok(name), Ok(mut value)) => {
                value.set_sensitive(true);
                headers.push((name, value));
            }
            (Err(_), _) => p.at(span, format!("{what}: `{key}` is not a valid header name")),
            (_, Err(_)) => p.at(
                span,
                format!("{what}: the value is not a valid HTTP header value"),
            ),
        }
    }
    headers
}

/// Headers that belong to HTTP itself or to Standard Webhooks: a configured value would
/// corrupt the request (`Content-Length`, `Transfer-Encoding`, `Host`) or forge its
/// signature (`webhook-*`). Names arrive lower-cased.
fn is_protocol_header(name: &HeaderName) -> bool {
    const PROTOCOL: &[&str] = &[
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ];
    let name = name.as_str();
    PROTOCOL.contains(&name) || name.starts_with("webhook-")
}

fn build_watchlists(
    raw: Vec<RawWatchlist>,
    feeds: &[Feed],
    webhooks: &[Webhook],
    declared: &Declared,
    p: &mut Problems<'_>,
) -> (Vec<Watchlist>, Option<Matcher>) {
    let mut watchlists = Vec::with_capacity(raw.len());
    let mut specs = Vec::with_capacity(raw.len());
    let mut spans = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for list in raw {
        let Some(name) = unique_name(&list.name, "watch-list", &mut seen, p) else {
            continue;
        };
        let selected = list.feeds.as_ref().map(|selectors| {
            let mut set = HashSet::new();
            for selector in selectors {
                let text = selector.get_ref().trim();
                if let Some(tag) = text.strip_prefix("tag:") {
                    set.extend(
                        feeds
                            .iter()
                            .enumerate()
                            .filter(|(_, f)| f.tags.iter().any(|t| t == tag))
                            .map(|(i, _)| i),
                    );
                    if !declared.tags.contains(tag) {
                        p.at(
                            selector.span(),
                            format!("watch-list `{name}`: no feed has the tag `{tag}`"),
                        );
                    }
                } else if let Some(i) = feeds.iter().position(|f| f.name == text) {
                    set.insert(i);
                } else if !declared.feeds.contains(text) {
                    p.at(
                        selector.span(),
                        format!("watch-list `{name}`: no feed is named `{text}` (use `tag:NAME` for a tag)"),
                    );
                }
            }
            set
        });
        let mut hooks = Vec::new();
        for hook in &list.webhooks {
            match webhooks.iter().position(|w| &w.name == hook.get_ref()) {
                Some(i) => hooks.push(i),
                None if declared.webhooks.contains(hook.get_ref()) => {}
                None => p.at(
                    hook.span(),
                    format!(
                        "watch-list `{name}`: no webhook is named `{}`",
                        hook.get_ref()
                    ),
                ),
            }
        }
        let mut fields = Vec::new();
        if let Some(list_fields) = &list.fields {
            if list_fields.get_ref().is_empty() {
                p.at(
                    list_fields.span(),
                    "fields is empty: leave it out to search all four",
                );
            }
            for field in list_fields.get_ref() {
                match Field::parse(field.get_ref()) {
                    Some(f) => fields.push(f),
                    None => p.at(
                        field.span(),
                        format!(
                            "field `{}` is unknown: expected title, summary, content or categories",
                            field.get_ref()
                        ),
                    ),
                }
            }
        }
        specs.push(WatchlistSpec {
            name: name.clone(),
            terms: list
                .terms
                .get_ref()
                .iter()
                .map(|t| t.get_ref().clone())
                .collect(),
            aliases: list
                .aliases
                .iter()
                .map(|(term, aliases)| {
                    (
                        term.clone(),
                        aliases
                            .get_ref()
                            .iter()
                            .map(|a| a.get_ref().clone())
                            .collect(),
                    )
                })
                .collect(),
            query: list.query.as_ref().map(|q| q.get_ref().clone()),
            exclude: list.exclude.iter().map(|e| e.get_ref().clone()).collect(),
            fields,
            acronyms_exact: list.acronyms_exact.unwrap_or(true),
        });
        watchlists.push(Watchlist {
            name,
            feeds: selected,
            webhooks: hooks,
        });
        spans.push(list);
    }
    match Matcher::compile(&specs) {
        Ok(matcher) => (watchlists, Some(matcher)),
        Err(errors) => {
            for error in errors {
                let span = specs
                    .iter()
                    .position(|s| s.name == error.watchlist)
                    .and_then(|i| spans.get(i))
                    .map_or(0..0, |raw| compile_error_span(raw, &error.location));
                p.at(span, error.to_string());
            }
            (watchlists, None)
        }
    }
}

/// Points a matcher compile error at the value it is about.
fn compile_error_span(raw: &RawWatchlist, location: &matcher::Location) -> Range<usize> {
    use matcher::Location;
    match location {
        Location::Term(i) => raw
            .terms
            .get_ref()
            .get(*i)
            .map_or(raw.terms.span(), Spanned::span),
        Location::Alias { term, index } => raw.aliases.get(term).map_or(raw.name.span(), |a| {
            a.get_ref().get(*index).map_or(a.span(), Spanned::span)
        }),
        Location::Query { offset } => raw.query.as_ref().map_or(raw.name.span(), |q| {
            // The span starts at the opening quote; the offset counts from the text inside.
            let start = q.span().start + 1 + offset;
            start..start
        }),
        Location::Exclude(i) => raw.exclude.get(*i).map_or(raw.name.span(), Spanned::span),
        Location::Watchlist => raw.name.span(),
    }
}

/// A name that is neither empty nor taken by an earlier entry of the same table.
fn unique_name(
    name: &S<String>,
    what: &str,
    seen: &mut HashSet<String>,
    p: &mut Problems<'_>,
) -> Option<String> {
    let text = name.get_ref().trim().to_string();
    if text.is_empty() {
        p.at(name.span(), format!("{what} name is empty"));
        return None;
    }
    if !seen.insert(text.clone()) {
        p.at(name.span(), format!("duplicate {what} name `{text}`"));
        return None;
    }
    Some(text)
}

fn parse_schedule(text: &S<String>, p: &mut Problems<'_>) -> Option<Schedule> {
    match parse_schedule_text(text.get_ref()) {
        Ok(schedule) => Some(schedule),
        Err(message) => {
            p.at(text.span(), message);
            None
        }
    }
}

/// `every 5m`, or a standard 5-field crontab line with an optional leading seconds field.
pub fn parse_schedule_text(text: &str) -> Result<Schedule, String> {
    let text = text.trim();
    if let Some(interval) = text.strip_prefix("every ") {
        return match humantime::parse_duration(interval.trim()) {
            Ok(every) if every > MAX_DURATION => Err(format!(
                "schedule `{text}`: the interval is longer than a year"
            )),
            Ok(every) if every >= Duration::from_secs(1) => Ok(Schedule::Every(every)),
            Ok(_) => Err(format!(
                "schedule `{text}`: the interval must be at least 1s"
            )),
            Err(err) => Err(format!("schedule `{text}`: bad interval: {err}")),
        };
    }
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .build();
    let cron = parser
        .parse(text)
        .map_err(|err| format!("schedule `{text}` is not a crontab expression: {err}"))?;
    // A pattern that never fires (e.g. 30 February) would silently never poll.
    cron.find_next_occurrence(&Utc::now(), false)
        .map_err(|_| format!("schedule `{text}` never fires"))?;
    Ok(Schedule::Cron {
        expr: text.to_string(),
        cron: Arc::new(cron),
    })
}

/// An http(s) URL with a host. With `guard`, a host that is an IP address (in any
/// spelling) outside the public ranges is refused too (SPEC §9); host names are checked
/// when they are resolved, at connect time.
fn parse_http_url(
    text: &S<String>,
    what: &str,
    guard: Option<guard::Scope>,
    p: &mut Problems<'_>,
) -> Option<Url> {
    match Url::parse(text.get_ref().trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            if let Some(scope) = guard
                && let Err(refused) = guard::check_url(&url, scope)
            {
                // The URL itself is not repeated: a webhook's URL may be its credential.
                p.at(text.span(), format!("{what}: {refused}"));
                return None;
            }
            Some(url)
        }
        Ok(url) => {
            p.at(
                text.span(),
                format!(
                    "{what} must be an http or https URL with a host, not `{}:`",
                    url.scheme()
                ),
            );
            None
        }
        Err(err) => {
            p.at(
                text.span(),
                // The text is not repeated: a chat webhook's URL is its credential.
                format!("{what} is not a URL: {err}"),
            );
            None
        }
    }
}

fn duration_or(
    value: Option<&S<String>>,
    what: &str,
    default: &str,
    p: &mut Problems<'_>,
) -> Duration {
    let Some(value) = value else {
        return humantime::parse_duration(default).unwrap_or_default();
    };
    match humantime::parse_duration(value.get_ref().trim()) {
        Ok(d) if d <= MAX_DURATION => d,
        Ok(_) => {
            p.at(
                value.span(),
                format!("{what} `{}` is longer than a year", value.get_ref()),
            );
            Duration::ZERO
        }
        Err(_) => {
            p.at(
                value.span(),
                format!(
                    "{what} `{}` is not a duration: write it like \"90s\", \"5m\" or \"2h\"",
                    value.get_ref()
                ),
            );
            Duration::ZERO
        }
    }
}

/// A zero timeout would fail every request; it is a mistake, not a setting.
fn refuse_zero(value: Option<&S<String>>, what: &str, p: &mut Problems<'_>) {
    if let Some(value) = value
        && humantime::parse_duration(value.get_ref().trim()) == Ok(Duration::ZERO)
    {
        p.at(value.span(), format!("{what} must be longer than 0s"));
    }
}

/// The longest duration any setting takes: beyond it date arithmetic could overflow, and
/// no schedule, timeout or retry is meant to be that long.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

fn positive(value: Option<&S<i64>>, what: &str, default: usize, p: &mut Problems<'_>) -> usize {
    match value {
        None => default,
        Some(v) => match usize::try_from(*v.get_ref()) {
            Ok(n) if n > 0 => n,
            _ => {
                p.at(
                    v.span(),
                    format!("{what} must be a positive number, not {}", v.get_ref()),
                );
                1
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(source: &str) -> Result<Config, ConfigError> {
        Config::from_source(Path::new("/etc/wirewatch/test.toml"), source)
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let config = load("").expect("empty config is valid");
        assert_eq!(config.poll.concurrency, 64);
        assert_eq!(config.poll.per_host, 2);
        assert_eq!(config.poll.timeout, Duration::from_secs(30));
        assert_eq!(config.poll.max_body, 16 * 1024 * 1024);
        assert_eq!(
            config.poll.backfill,
            Backfill::Window(Duration::from_secs(6 * 3600))
        );
        assert_eq!(
            config.daemon.listen,
            Some("127.0.0.1:9184".parse().unwrap())
        );
    }

    #[test]
    fn every_default_is_the_documented_value() {
        let config =
            load("[[webhooks]]\nname = \"w\"\nurl = \"https://hooks.example.org/x\"\n").unwrap();
        let poll = &config.poll;
        assert_eq!(poll.schedule.to_string(), "*/5 * * * *");
        assert_eq!(poll.jitter, Duration::ZERO);
        assert_eq!(poll.backoff_base, Duration::from_secs(60));
        assert_eq!(poll.backoff_max, Duration::from_secs(6 * 3600));
        assert_eq!(poll.timeout, Duration::from_secs(30));
        let hook = &config.webhooks[0];
        assert_eq!(hook.timeout, Duration::from_secs(15));
        let hours = |h: u64| Duration::from_secs(h * 3600);
        assert_eq!(
            hook.retry_schedule,
            [
                Duration::from_secs(5),
                Duration::from_secs(5 * 60),
                Duration::from_secs(30 * 60),
                hours(2),
                hours(5),
                hours(10),
                hours(14),
                hours(20),
                hours(24),
            ]
        );
        let days = |d: u64| Some(Duration::from_secs(d * 24 * 3600));
        assert_eq!(
            config.retention,
            Retention {
                items: days(30),
                matches: days(365),
                deliveries: days(30),
            }
        );
    }

    const THREE_FEEDS: &str = r#"
[[feeds]]
name = "a"
url = "https://a.example.org/rss"
tags = ["wire"]

[[feeds]]
name = "b"
url = "https://b.example.org/rss"
tags = ["wire", "asia", "asia"]

[[feeds]]
name = "c"
url = "https://c.example.org/rss"
"#;

    #[test]
    fn feed_selectors_pick_feeds_by_name_and_by_tag() {
        let source = format!(
            "{THREE_FEEDS}
[[watchlists]]
name = \"named\"
terms = [\"x\"]
feeds = [\"c\"]

[[watchlists]]
name = \"tagged\"
terms = [\"x\"]
feeds = [\"tag:asia\"]

[[watchlists]]
name = \"both\"
terms = [\"x\"]
feeds = [\"tag:wire\", \"c\", \"a\"]

[[watchlists]]
name = \"all\"
terms = [\"x\"]
"
        );
        let config = load(&source).unwrap();
        let selected: Vec<Option<Vec<usize>>> = config
            .watchlists
            .iter()
            .map(|list| {
                list.feeds.as_ref().map(|set| {
                    let mut feeds: Vec<usize> = set.iter().copied().collect();
                    feeds.sort_unstable();
                    feeds
                })
            })
            .collect();
        assert_eq!(
            selected,
            [Some(vec![2]), Some(vec![1]), Some(vec![0, 1, 2]), None]
        );
    }

    #[test]
    fn a_selector_naming_no_feed_or_tag_is_reported_where_it_is_written() {
        let source = format!(
            "{THREE_FEEDS}
[[watchlists]]
name = \"w\"
terms = [\"x\"]
feeds = [\"d\", \"tag:europe\"]
"
        );
        let messages: Vec<(Option<usize>, Option<usize>, String)> = load(&source)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|problem| (problem.line, problem.column, problem.message))
            .collect();
        assert_eq!(
            messages,
            [
                (
                    Some(19),
                    Some(10),
                    "watch-list `w`: no feed is named `d` (use `tag:NAME` for a tag)".to_string()
                ),
                (
                    Some(19),
                    Some(15),
                    "watch-list `w`: no feed has the tag `europe`".to_string()
                ),
            ]
        );
    }

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        for text in ["ab\ncdé f", "", "\n\nx\n", "é\n\né"] {
            let lines = Lines::new(text);
            for offset in 0..=text.len() + 1 {
                if text.is_char_boundary(offset.min(text.len())) {
                    assert_eq!(
                        lines.locate(offset),
                        line_column(text, offset),
                        "{text:?} {offset}"
                    );
                }
            }
        }
        assert_eq!(line_column("ab\ncdé f", 0), (1, 1));
        assert_eq!(line_column("ab\ncdé f", 3), (2, 1));
        assert_eq!(line_column("ab\ncdé f", 8), (2, 5));
    }

    #[test]
    fn every_refused_feed_is_reported_at_its_own_line_in_file_order() {
        let source: String = (0..2000)
            .map(|i| format!("[[feeds]]\nname = \"f{i}\"\nurl = \"http://127.0.0.1/{i}\"\n\n"))
            .collect();
        let err = load(&source).unwrap_err();
        assert_eq!(err.problems.len(), 2000);
        for (i, problem) in err.problems.iter().enumerate() {
            assert_eq!(
                (problem.line, problem.column),
                (Some(4 * i + 3), Some(7)),
                "{}",
                problem.message
            );
            assert!(
                problem
                    .message
                    .starts_with("feed url: refused: 127.0.0.1 is a loopback address")
            );
        }
    }

    #[test]
    fn crontab_weekdays_follow_cron_8_where_0_and_7_are_sunday() {
        let monday = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .to_utc();
        for expr in ["0 9 * * 0", "0 9 * * 7", "0 9 * * SUN"] {
            let next = parse_schedule_text(expr).unwrap().next_after(monday);
            assert_eq!(next.to_rfc3339(), "2026-11-29T09:00:00+00:00", "{expr}");
        }
    }

    #[test]
    fn an_optional_leading_seconds_field_is_accepted() {
        let start = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .to_utc();
        let next = parse_schedule_text("30 */5 * * * *")
            .unwrap()
            .next_after(start);
        assert_eq!(next.to_rfc3339(), "2026-11-23T12:00:30+00:00");
    }

    #[test]
    fn intervals_add_to_the_last_due_time() {
        let start = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .to_utc();
        let next = parse_schedule_text("every 90s").unwrap().next_after(start);
        assert_eq!(next.to_rfc3339(), "2026-11-23T12:01:30+00:00");
    }

    #[test]
    fn backfill_window_admits_only_recent_dated_items() {
        let now = Utc::now();
        let window = Backfill::Window(Duration::from_secs(3600));
        assert!(window.admits(Some(now - chrono::Duration::minutes(10)), now));
        assert!(!window.admits(Some(now - chrono::Duration::hours(2)), now));
        assert!(!window.admits(None, now));
        assert!(Backfill::All.admits(None, now));
        assert!(!Backfill::None.admits(Some(now), now));
    }

    #[test]
    fn secrets_need_the_whsec_prefix_and_enough_key_bytes() {
        assert!(Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(Secret::parse("whsec_!!!").is_err());
        assert!(Secret::parse("whsec_c2hvcnQ=").is_err());
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let config = load("[daemon]\nstate_dir = \"data\"\n").unwrap();
        assert_eq!(
            config.daemon.state_dir,
            PathBuf::from("/etc/wirewatch/data")
        );
        assert_eq!(
            config.daemon.database,
            PathBuf::from("/etc/wirewatch/data/wirewatch.db")
        );
    }
}
