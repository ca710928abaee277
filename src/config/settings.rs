//! The tables of single settings, `[daemon]`, `[poll]`, `[retention]`, `[stories]` and
//! `[cluster]`, into [`Daemon`], [`Poll`], [`Retention`], [`Stories`] and [`Cluster`]; a
//! setting left out takes its default.
//! Defaults are typed constants rather than text parsed at load, so that none can turn
//! into zero, or go missing, without a word.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::credentials::{Source, read_credential};
use super::problems::{Problem, Problems};
use super::raw::{RawCluster, RawDaemon, RawPoll, RawRetention, RawStories, S};
use super::values::{
    MAX_DURATION, duration_or, parse_schedule, parse_schedule_text, positive, refuse_zero,
    relative_to,
};
use super::{ApiToken, Backfill, Cluster, Daemon, LogFormat, Poll, Retention, Schedule, Stories};
use crate::store::Database;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// `[daemon] state_dir` when systemd gives no `$STATE_DIRECTORY`.
const DEFAULT_STATE_DIR: &str = "wirewatch-data";
/// Whether `database` names a PostgreSQL server rather than a SQLite file.
fn is_postgres_url(database: &str) -> bool {
    let lower = database.trim().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// `[daemon] database`: this file in the state directory.
const DEFAULT_DATABASE_FILE: &str = "wirewatch.db";
/// `[daemon] listen`: health, metrics and the API, on loopback only.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9184);

/// `[poll] schedule`: every five minutes, on the clock's five-minute marks.
const DEFAULT_SCHEDULE: &str = "*/5 * * * *";
/// `[poll] jitter`: none, so due times are exactly the schedule's.
const DEFAULT_JITTER: Duration = Duration::ZERO;
const DEFAULT_CONCURRENCY: usize = 64;
const DEFAULT_PER_HOST: usize = 2;
/// Article pages in flight at once (SPEC §13).
const DEFAULT_ARTICLE_CONCURRENCY: usize = 8;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_BODY: u64 = 16 * 1024 * 1024;
/// `[poll] backfill`: a feed's first fetch alerts on what was published in the last six
/// hours.
const DEFAULT_BACKFILL: Backfill = Backfill::Window(Duration::from_secs(6 * HOUR));
const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(MINUTE);
const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(6 * HOUR);

/// `[retention]`: a month of items that never matched and of delivered alerts, a year of
/// matches.
const DEFAULT_RETENTION: Retention = Retention {
    items: Some(Duration::from_secs(30 * DAY)),
    matches: Some(Duration::from_secs(365 * DAY)),
    deliveries: Some(Duration::from_secs(30 * DAY)),
};

/// `[stories]`: three days, and the threshold chosen on the labelled pairs.
const DEFAULT_STORIES: Stories = Stories {
    window: Duration::from_secs(3 * DAY),
    threshold: crate::stories::THRESHOLD,
};
/// The least `[stories] threshold` taken: below it, most texts that share a topic's
/// vocabulary would be one story.
const MIN_STORY_THRESHOLD: f64 = 0.5;

/// [`DEFAULT_SCHEDULE`], compiled. A crontab pattern cannot be built in a `const`; this
/// one is a literal that every load leaving `[poll] schedule` out compiles (every test of
/// this module does), so a typo in it could not get past the tests. Were it refused all
/// the same, the load is refused with the reason: never a panic, never a silent stand-in.
fn default_schedule(p: &mut Problems<'_>) -> Option<Schedule> {
    match parse_schedule_text(DEFAULT_SCHEDULE) {
        Ok(schedule) => Some(schedule),
        Err(message) => {
            p.list.push(Problem {
                line: None,
                column: None,
                message: format!("the default [poll] schedule: {message}"),
            });
            None
        }
    }
}

pub(super) fn build_daemon(base: &Path, raw: RawDaemon, p: &mut Problems<'_>) -> Option<Daemon> {
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
            _ => PathBuf::from(DEFAULT_STATE_DIR),
        },
    };
    let database = build_database(base, &raw, &state_dir, p);
    let listen = match &raw.listen {
        None => Some(DEFAULT_LISTEN),
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

/// `database`, `database_url_file` or `database_url_env`: a PostgreSQL URL from any of
/// them, or a SQLite file from `database` (default: in the state directory). A URL is
/// never repeated in a message: it may hold a password.
fn build_database(
    base: &Path,
    raw: &RawDaemon,
    state_dir: &Path,
    p: &mut Problems<'_>,
) -> Database {
    let default = || Database::Sqlite(state_dir.join(DEFAULT_DATABASE_FILE));
    let given = read_credential(
        base,
        "the database",
        [
            ("database", Source::Inline, raw.database.as_ref()),
            (
                "database_url_file",
                Source::File,
                raw.database_url_file.as_ref(),
            ),
            (
                "database_url_env",
                Source::Env,
                raw.database_url_env.as_ref(),
            ),
        ],
        p,
    );
    let Ok(Some((text, span))) = given else {
        return default();
    };
    let text = text.trim();
    if is_postgres_url(text) {
        return match url::Url::parse(text) {
            Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => {
                Database::Postgres(text.to_string())
            }
            _ => {
                p.at(
                    span,
                    "the database URL is not a PostgreSQL URL with a host, e.g. \
                     postgres://wirewatch@db.example/wirewatch",
                );
                default()
            }
        };
    }
    if raw.database.is_none() {
        p.at(
            span,
            "database_url_file and database_url_env take a PostgreSQL URL \
             (postgres://...); name a SQLite file with `database`",
        );
        return default();
    }
    let file = text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
        .unwrap_or(text);
    if file.is_empty() || file.contains("memory") {
        p.at(
            span,
            format!("database `{text}` must name a SQLite file, e.g. sqlite:///var/lib/wirewatch/wirewatch.db, or a PostgreSQL URL"),
        );
    }
    Database::Sqlite(relative_to(base, file))
}

/// `[cluster]`: the node's name (default: the host name) and the lease (default 60 s).
pub(super) fn build_cluster(raw: RawCluster, p: &mut Problems<'_>) -> Option<Cluster> {
    let node = match &raw.node {
        Some(node) => {
            let name = node.get_ref().trim();
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                p.at(
                    node.span(),
                    "node must be a name of 1 to 64 printable characters",
                );
                return None;
            }
            name.to_string()
        }
        None => host_name(),
    };
    let lease = duration_or(raw.lease.as_ref(), "lease", DEFAULT_LEASE, p);
    if lease < MIN_LEASE
        && let Some(raw_lease) = &raw.lease
    {
        p.at(
            raw_lease.span(),
            format!(
                "lease must be at least {}s: a node renews its leases every third of it",
                MIN_LEASE.as_secs()
            ),
        );
        return None;
    }
    Some(Cluster { node, lease })
}

/// The host's name, or `wirewatch` if it has none.
fn host_name() -> String {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    if name.is_empty() {
        "wirewatch".to_string()
    } else {
        name
    }
}

/// `[cluster] lease`: a minute.
const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// The shortest lease: renewals every third of it must not crowd the database.
const MIN_LEASE: Duration = Duration::from_secs(3);

pub(super) fn build_poll(raw: RawPoll, p: &mut Problems<'_>) -> Option<Poll> {
    let schedule = match &raw.schedule {
        Some(s) => parse_schedule(s, p)?,
        None => default_schedule(p)?,
    };
    let jitter = duration_or(raw.jitter.as_ref(), "jitter", DEFAULT_JITTER, p);
    let backoff_base = duration_or(
        raw.backoff_base.as_ref(),
        "backoff_base",
        DEFAULT_BACKOFF_BASE,
        p,
    );
    let backoff_max = duration_or(
        raw.backoff_max.as_ref(),
        "backoff_max",
        DEFAULT_BACKOFF_MAX,
        p,
    );
    if backoff_max < backoff_base
        && let Some(max) = &raw.backoff_max
    {
        p.at(max.span(), "backoff_max is shorter than backoff_base");
    }
    let concurrency = positive(
        raw.concurrency.as_ref(),
        "concurrency",
        DEFAULT_CONCURRENCY,
        p,
    );
    let per_host = positive(raw.per_host.as_ref(), "per_host", DEFAULT_PER_HOST, p);
    let timeout = duration_or(raw.timeout.as_ref(), "timeout", DEFAULT_TIMEOUT, p);
    refuse_zero(raw.timeout.as_ref(), "timeout", p);
    let max_body = match &raw.max_body {
        None => DEFAULT_MAX_BODY,
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
        None => DEFAULT_BACKFILL,
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
        article_concurrency: positive(
            raw.article_concurrency.as_ref(),
            "article_concurrency",
            DEFAULT_ARTICLE_CONCURRENCY,
            p,
        ),
    })
}

/// `[retention]`: each setting a duration of at least a minute, or `"forever"`.
pub(super) fn build_retention(raw: RawRetention, p: &mut Problems<'_>) -> Retention {
    let mut keep = |value: Option<&S<String>>, what: &str, default: Option<Duration>| {
        let Some(value) = value else {
            return default;
        };
        let text = value.get_ref().trim();
        if text == "forever" {
            return None;
        }
        let span = value.span();
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
        items: keep(raw.items.as_ref(), "items", DEFAULT_RETENTION.items),
        matches: keep(raw.matches.as_ref(), "matches", DEFAULT_RETENTION.matches),
        deliveries: keep(
            raw.deliveries.as_ref(),
            "deliveries",
            DEFAULT_RETENTION.deliveries,
        ),
    }
}

/// `[stories]`: a window of at least a minute and at most [`MAX_DURATION`], a threshold
/// from [`MIN_STORY_THRESHOLD`] to 1.
pub(super) fn build_stories(raw: RawStories, p: &mut Problems<'_>) -> Stories {
    let window = duration_or(
        raw.window.as_ref(),
        "stories.window",
        DEFAULT_STORIES.window,
        p,
    );
    if let Some(value) = &raw.window
        && window < Duration::from_secs(MINUTE)
        && humantime::parse_duration(value.get_ref().trim()).is_ok()
    {
        p.at(
            value.span(),
            format!(
                "stories.window `{}` is shorter than a minute",
                value.get_ref()
            ),
        );
    }
    let threshold = match &raw.threshold {
        None => DEFAULT_STORIES.threshold,
        Some(value) => {
            let t = *value.get_ref();
            if !(MIN_STORY_THRESHOLD..=1.0).contains(&t) {
                p.at(
                    value.span(),
                    format!(
                        "stories.threshold {t} must be from {MIN_STORY_THRESHOLD} to 1 (the default is {})",
                        DEFAULT_STORIES.threshold
                    ),
                );
            }
            t
        }
    };
    Stories { window, threshold }
}

/// The longest retention written as a duration (date arithmetic stays far from overflow).
const MAX_RETENTION: Duration = Duration::from_secs(100 * 366 * DAY);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{load, problem_messages};

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let config = load("").expect("empty config is valid");
        let poll = &config.poll;
        assert_eq!(poll.schedule.to_string(), "*/5 * * * *");
        assert_eq!(poll.jitter, Duration::ZERO);
        assert_eq!(poll.concurrency, 64);
        assert_eq!(poll.per_host, 2);
        assert_eq!(poll.timeout, Duration::from_secs(30));
        assert_eq!(poll.max_body, 16 * 1024 * 1024);
        assert_eq!(
            poll.backfill,
            Backfill::Window(Duration::from_secs(6 * 3600))
        );
        assert_eq!(poll.backoff_base, Duration::from_secs(60));
        assert_eq!(poll.backoff_max, Duration::from_secs(6 * 3600));
        let days = |d: u64| Some(Duration::from_secs(d * 24 * 3600));
        assert_eq!(
            config.retention,
            Retention {
                items: days(30),
                matches: days(365),
                deliveries: days(30),
            }
        );
        assert_eq!(
            config.daemon.listen,
            Some("127.0.0.1:9184".parse().unwrap())
        );
    }

    #[test]
    fn a_written_setting_that_does_not_parse_is_reported_as_before() {
        let source = "[poll]\njitter = \"2 fortnights\"\nmax_body = \"lots\"\n\
                      backfill = \"soon\"\n[retention]\nitems = \"30s\"\n";
        assert_eq!(
            problem_messages(source),
            [
                "jitter `2 fortnights` is not a duration: write it like \"90s\", \"5m\" or \"2h\"",
                "max_body `lots` is not a size: write it like \"16MiB\" or \"512KiB\"",
                "backfill `soon` must be \"all\", \"none\" or a duration like \"6h\"",
                "retention.items `30s` is shorter than a minute",
            ]
        );
    }

    #[test]
    fn stories_settings_default_to_three_days_at_the_measured_threshold_and_refuse_nonsense() {
        let config = load("").unwrap();
        assert_eq!(config.stories.window, Duration::from_secs(72 * 3600));
        assert_eq!(config.stories.threshold, crate::stories::THRESHOLD);
        let config = load("[stories]\nwindow = \"24h\"\nthreshold = 0.9\n").unwrap();
        assert_eq!(
            (config.stories.window, config.stories.threshold),
            (Duration::from_secs(24 * 3600), 0.9)
        );
        let source = "[stories]\nwindow = \"10s\"\nthreshold = 0.2\n\
                      [[watchlists]]\nname = \"w\"\nterms = [\"Iran\"]\nescalate = [5, 3, 1]\n";
        assert_eq!(
            problem_messages(source),
            [
                "stories.window `10s` is shorter than a minute",
                "stories.threshold 0.2 must be from 0.5 to 1 (the default is 0.8)",
                "watch-list `w`: escalate thresholds must increase (3 follows 5)",
                "watch-list `w`: escalate threshold 1 is not a number of feeds of at least 2",
            ]
        );
    }

    #[test]
    fn alert_policy_settings_parse_and_refuse_nonsense() {
        let config = load(
            "[[watchlists]]\nname = \"only\"\nterms = [\"Iran\"]\ndigest = \"0 8 * * 1-5\"\n\
             [[watchlists]]\nname = \"capped\"\nterms = [\"Iran\"]\nmax_alerts = \"20/h\"\n\
             [[watchlists]]\nname = \"both\"\nterms = [\"Iran\"]\nmax_alerts = \"5 / 30m\"\n\
             digest = \"*/10 * * * * *\"\n\
             [[watchlists]]\nname = \"loud\"\nterms = [\"Iran\"]\n",
        )
        .unwrap();
        let [only, capped, both, loud] = &config.watchlists[..] else {
            panic!("four watch-lists");
        };
        assert!(only.digest_only && only.max_alerts.is_none());
        assert_eq!(only.digest.as_ref().unwrap().to_string(), "0 8 * * 1-5");
        assert!(!capped.digest_only);
        assert_eq!(
            capped.max_alerts,
            Some(crate::config::RateLimit {
                count: 20,
                period: Duration::from_secs(3600)
            })
        );
        // The overflow of a watch-list without a digest goes out hourly.
        assert_eq!(capped.digest.as_ref().unwrap().to_string(), "0 * * * *");
        assert!(
            !both.digest_only,
            "alerts up to the limit, digests the rest"
        );
        assert_eq!(both.max_alerts.unwrap().period, Duration::from_secs(1800));
        assert_eq!(both.digest.as_ref().unwrap().to_string(), "*/10 * * * * *");
        assert!(loud.digest.is_none() && loud.max_alerts.is_none() && !loud.digest_only);

        let source = "[[watchlists]]\nname = \"w\"\nterms = [\"Iran\"]\nmax_alerts = \"0/h\"\n\
                      digest = \"every day\"\n\
                      [[watchlists]]\nname = \"v\"\nterms = [\"Iran\"]\nmax_alerts = \"many\"\n";
        let problems = problem_messages(source);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("watch-list `w`: digest schedule `every day`"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("max_alerts `0/h` is not a rate"),
            "{problems:?}"
        );
        assert!(
            problems[2].contains("max_alerts `many` is not a rate"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_postgresql_url_comes_inline_from_a_file_or_the_environment_and_never_shows_its_password() {
        let url = "postgres://wire:s3cret-pw@db.example:5433/wirewatch?sslmode=require";
        let inline = load(&format!("[daemon]\ndatabase = \"{url}\"\n")).unwrap();
        assert_eq!(inline.daemon.database, Database::Postgres(url.to_string()));
        let shown = inline.daemon.database.to_string();
        assert_eq!(
            shown,
            "PostgreSQL, postgres://wire@db.example:5433/wirewatch"
        );
        assert_eq!(format!("{:?}", inline.daemon.database), shown);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("database-url");
        std::fs::write(&file, format!("{url}\n")).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let from_file = load(&format!(
            "[daemon]\ndatabase_url_file = \"{}\"\n",
            file.display()
        ))
        .unwrap();
        assert_eq!(
            from_file.daemon.database,
            Database::Postgres(url.to_string())
        );

        // SAFETY: no other test reads this variable.
        unsafe { std::env::set_var("WIREWATCH_TEST_DATABASE_URL", url) };
        let from_env =
            load("[daemon]\ndatabase_url_env = \"WIREWATCH_TEST_DATABASE_URL\"\n").unwrap();
        assert_eq!(
            from_env.daemon.database,
            Database::Postgres(url.to_string())
        );

        for (source, expected) in [
            (
                format!("[daemon]\ndatabase = \"{url}\"\ndatabase_url_env = \"X\"\n"),
                "`database` and `database_url_env` both give the database",
            ),
            (
                "[daemon]\ndatabase = \"postgres://wire:s3cret-pw@/wirewatch\"\n".to_string(),
                "not a PostgreSQL URL with a host",
            ),
            (
                format!(
                    "[daemon]\ndatabase_url_file = \"{}\"\n",
                    dir.path().join("none").display()
                ),
                "database_url_file",
            ),
        ] {
            let problems = problem_messages(&source);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains(expected), "{problems:?}");
            assert!(!problems[0].contains("s3cret"), "{problems:?}");
        }
    }

    #[test]
    fn the_cluster_names_its_node_and_lease_and_defaults_to_the_host_name() {
        let config = load("[cluster]\nnode = \"wire-2\"\nlease = \"30s\"\n").unwrap();
        assert_eq!(config.cluster.node, "wire-2");
        assert_eq!(config.cluster.lease, Duration::from_secs(30));
        let default = load("").unwrap().cluster;
        assert_eq!(default.node, host_name());
        assert!(!default.node.is_empty());
        assert_eq!(default.lease, Duration::from_secs(60));
        let problems = problem_messages("[cluster]\nnode = \"\"\nlease = \"1s\"\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("node must be a name"), "{problems:?}");
        let problems = problem_messages("[cluster]\nlease = \"1s\"\n");
        assert!(
            problems[0].contains("lease must be at least 3s"),
            "{problems:?}"
        );
    }

    #[test]
    fn full_text_and_languages_parse_and_refuse_nonsense() {
        let config = load(
            "[poll]\narticle_concurrency = 3\n\
             [[feeds]]\nname = \"a\"\nurl = \"https://a.example.org/rss\"\nfull_text = true\n\
             [[feeds]]\nname = \"b\"\nurl = \"https://b.example.org/rss\"\n\
             [[watchlists]]\nname = \"w\"\nterms = [\"Iran\"]\nlanguages = [\"en\", \"fa\"]\n\
             fields = [\"article\"]\n",
        )
        .unwrap();
        assert_eq!(config.poll.article_concurrency, 3);
        assert!(config.feeds[0].full_text && !config.feeds[1].full_text);
        let w = &config.watchlists[0];
        assert_eq!(w.languages, ["en", "fa"]);
        assert!(w.reads(Some("fa")) && !w.reads(Some("zh")) && !w.reads(None));
        assert_eq!(load("").unwrap().poll.article_concurrency, 8);
        let problems = problem_messages(
            "[poll]\narticle_concurrency = 0\n\
             [[watchlists]]\nname = \"w\"\nterms = [\"Iran\"]\nlanguages = [\"English\"]\n",
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("article_concurrency must be a positive number"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("language `English` is not an ISO 639-1 code"),
            "{problems:?}"
        );
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
            Database::Sqlite(PathBuf::from("/etc/wirewatch/data/wirewatch.db"))
        );
    }
}
