//! Configuration: the TOML file of SPEC §2, turned into types that cannot be invalid.
//!
//! Loading happens in two steps. The raw file deserializes into plain `Raw*` structs
//! (`raw`) that keep the position of every value (`toml::Spanned`) and refuse unknown
//! keys; its `[[feeds]]` entries are parsed a chunk at a time (`chunked`), as 100,000
//! of them would make the toml parser hold 300 MB. Those are then converted into
//! [`Config`]: URLs parsed, schedules compiled, watch-lists compiled into one
//! [`Matcher`], names resolved to indices, secrets read. Every problem found on the way
//! is collected (`problems`), so `wirewatch check` can report all of them at once, each
//! with file, line and column. Nothing downstream re-checks what is validated here.
//!
//! This file holds the validated types and [`Config::load`], which runs the two steps.
//! Each part of the file is converted by its own module:
//!
//! - `settings`: `[daemon]`, `[poll]`, `[retention]` and `[stories]`, with their defaults;
//! - `feeds`: `[[feeds]]`; `opml`: `[[opml]]` imports, and `opml export`;
//! - `webhooks`, whose secrets and headers `credentials` reads (as it does the API
//!   token);
//! - `watchlists`: feed and webhook selectors resolved to indices, terms compiled;
//! - `values`: the single values every table uses (paths, names, schedules, URLs,
//!   durations, counts);
//! - `files`: every file the configuration names, read within a size limit;
//! - `candidate`: one watch-list of another file, validated against this configuration
//!   (`wirewatch backtest --with`).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue};
use url::Url;

use crate::matcher::{Matcher, WatchlistSpec};

mod candidate;
mod chunked;
mod credentials;
mod feeds;
mod files;
mod opml;
mod problems;
mod raw;
mod settings;
mod values;
mod watchlists;
mod webhooks;

pub use opml::export as export_opml;
pub use problems::{ConfigError, Problem};
pub use values::parse_schedule_text;

use problems::Problems;
use raw::RawConfig;

/// Where the configuration is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/wirewatch/wirewatch.toml";

/// The retry schedule of SPEC §5 (5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h), used when a
/// webhook does not set its own.
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 9] = {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    [
        Duration::from_secs(5),
        Duration::from_secs(5 * MINUTE),
        Duration::from_secs(30 * MINUTE),
        Duration::from_secs(2 * HOUR),
        Duration::from_secs(5 * HOUR),
        Duration::from_secs(10 * HOUR),
        Duration::from_secs(14 * HOUR),
        Duration::from_secs(20 * HOUR),
        Duration::from_secs(24 * HOUR),
    ]
};

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
    pub stories: Stories,
    pub cluster: Cluster,
    /// One automaton over the terms of every watch-list; watch-list `i` of the matcher is
    /// `watchlists[i]`.
    pub matcher: Arc<Matcher>,
    /// What is allowed but probably a mistake (an open listener without a token, a secret
    /// file others can read): `check` prints these, `run` logs them.
    pub warnings: Vec<Problem>,
    /// Index of each feed by name: a daemon may watch 100,000 feeds, and `/metrics` looks
    /// every stored feed up by name (as watch-list selectors did while loading).
    feed_indexes: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct Daemon {
    pub state_dir: PathBuf,
    /// The database: a SQLite file (the default, in the state directory) or a PostgreSQL
    /// URL (`database`, `database_url_file` or `database_url_env`).
    pub database: crate::store::Database,
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

    /// The console's session cookie value for this token, good until `expires` (Unix
    /// seconds): `EXPIRES.MAC`, an HMAC keyed by the token over the expiry, so that the
    /// browser holds proof of the token, never the token; it lapses by itself, and a new
    /// token ends every session at once.
    pub fn session(&self, expires: i64) -> String {
        format!("{expires}.{}", self.session_mac(expires))
    }

    /// Whether `presented` is a [`ApiToken::session`] of this token that has not expired at
    /// `now`, its MAC compared in constant time.
    pub fn verify_session(&self, presented: &str, now: i64) -> bool {
        use subtle::ConstantTimeEq as _;
        let Some((expires, mac)) = presented.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires.parse::<i64>() else {
            return false;
        };
        let expected = self.session_mac(expires);
        expires > now
            && !expected.is_empty()
            && bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
    }

    fn session_mac(&self, expires: i64) -> String {
        use base64::Engine as _;
        use hmac::Mac as _;
        // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.0.as_bytes()) else {
            return String::new();
        };
        mac.update(format!("wirewatch console session v1\n{expires}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
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

/// How near-identical items group into one story (`[stories]`, SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stories {
    /// How far back a new item may join a story by its text: an item seen longer ago
    /// than this is never a candidate.
    pub window: Duration,
    /// The least [`crate::stories::Fingerprint::resemblance`] at which two texts with no
    /// conflict are one story.
    pub threshold: f64,
}

/// This daemon among several sharing one PostgreSQL database (`[cluster]`, SPEC §17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The name its leases carry (default: the host name).
    pub node: String,
    /// How long a lease on a feed or a delivery lasts unless renewed: how soon the other
    /// nodes take over the work of a node that died.
    pub lease: Duration,
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
    /// Article pages of `full_text` feeds fetched at once, all feeds together.
    pub article_concurrency: usize,
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
    /// `full_text`: each new item's linked page is fetched and its main text matched as
    /// the field `article` (SPEC §13).
    pub full_text: bool,
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
    /// Numbers of distinct feeds at which a story this watch-list alerted on sends one
    /// `watchlist.story_grew` event each (`escalate`), strictly increasing; empty for none.
    pub escalate: Vec<u32>,
    /// `digest` without `max_alerts`: no single alerts. With both, single alerts up to the
    /// limit, the overflow in the digest.
    pub digest_only: bool,
    /// When the stories it holds back go out: its `digest`, else, with `max_alerts`, the
    /// hourly [`OVERFLOW_DIGEST`]; `None` when what it holds back is never sent.
    pub digest: Option<Schedule>,
    /// `max_alerts`: single alerts allowed per period; the rest wait for a digest.
    pub max_alerts: Option<RateLimit>,
    /// The definition the matcher compiled, for `backtest`.
    pub spec: WatchlistSpec,
    /// `languages`: only items in these languages (ISO 639-1) are matched; empty for all.
    pub languages: Vec<String>,
}

/// `max_alerts = "20/h"`: at most `count` single alerts in any `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub period: Duration,
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.count,
            humantime::format_duration(self.period)
        )
    }
}

/// The digest schedule of a watch-list with `max_alerts` and no `digest` of its own: its
/// overflow goes out hourly, on the hour.
pub const OVERFLOW_DIGEST: &str = "0 * * * *";

impl Watchlist {
    pub fn watches(&self, feed: usize) -> bool {
        self.feeds.as_ref().is_none_or(|set| set.contains(&feed))
    }

    /// Whether an item in `language` (its detected ISO 639-1 code) is for this watch-list:
    /// any is when it lists no `languages`; an item of unknown language is for none that
    /// does.
    pub fn reads(&self, language: Option<&str>) -> bool {
        reads_language(&self.languages, language)
    }
}

/// Whether a `languages` filter (ISO 639-1 codes, empty for all) admits an item in
/// `language`: any language when it is empty; an item of unknown language never otherwise.
pub fn reads_language(languages: &[String], language: Option<&str>) -> bool {
    languages.is_empty() || language.is_some_and(|l| languages.iter().any(|w| w == l))
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

    /// The watch-list of this name (a daemon has tens of them: a scan).
    pub fn watchlist(&self, name: &str) -> Option<&Watchlist> {
        self.watchlists.iter().find(|w| w.name == name)
    }

    /// The index of the watch-list of this name in [`Config::watchlists`].
    pub fn watchlist_index(&self, name: &str) -> Option<usize> {
        self.watchlists.iter().position(|w| w.name == name)
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

/// Converts each part of the file in turn; the order is the order in which `check` lists
/// their problems.
fn build(path: &Path, base: &Path, raw: RawConfig, p: &mut Problems<'_>) -> Option<Config> {
    let mut declared = Declared::of(&raw);
    let daemon = settings::build_daemon(base, raw.daemon, p);
    let poll = settings::build_poll(raw.poll, p);
    let imported = opml::import(base, &raw.opml, &raw.feeds, poll.as_ref(), &mut declared, p);
    let mut feeds = feeds::build_feeds(raw.feeds, poll.as_ref(), p);
    feeds.extend(imported);
    let webhooks = webhooks::build_webhooks(base, raw.webhooks, poll.as_ref(), p);
    let retention = settings::build_retention(raw.retention, p);
    let stories = settings::build_stories(raw.stories, p);
    let cluster = settings::build_cluster(raw.cluster, p);
    // Names are unique (duplicates were refused above), so each maps to its one feed.
    let feed_indexes = feeds
        .iter()
        .enumerate()
        .map(|(index, feed)| (feed.name.clone(), index))
        .collect();
    let (watchlists, matcher) = watchlists::build_watchlists(
        raw.watchlists,
        &feeds,
        &feed_indexes,
        &webhooks,
        &declared,
        p,
    );
    Some(Config {
        feed_indexes,
        path: path.to_path_buf(),
        daemon: daemon?,
        poll: poll?,
        feeds,
        watchlists,
        webhooks,
        retention,
        stories,
        cluster: cluster?,
        matcher: Arc::new(matcher?),
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `source` as the file `/etc/wirewatch/test.toml`; the other modules' tests use
    /// it too.
    pub(super) fn load(source: &str) -> Result<Config, ConfigError> {
        Config::from_source(Path::new("/etc/wirewatch/test.toml"), source)
    }

    /// The messages of the problems that refuse `source`, in the order `check` lists them.
    pub(super) fn problem_messages(source: &str) -> Vec<String> {
        match load(source) {
            Ok(_) => Vec::new(),
            Err(error) => error.problems.into_iter().map(|p| p.message).collect(),
        }
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

    #[test]
    fn the_default_retry_schedule_is_the_one_spec_section_5_writes() {
        let written = ["5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"];
        let parsed: Vec<Duration> = written
            .iter()
            .map(|text| humantime::parse_duration(text).unwrap())
            .collect();
        assert_eq!(parsed, DEFAULT_RETRY_SCHEDULE);
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
}
