//! `wirewatch check`: loads and validates the configuration, prints its warnings on stderr
//! and a [`Summary`] of what it configures on stdout (no secret is shown).

use std::fmt;
use std::path::Path;

use crate::config::Config;
use crate::redact;
use crate::store::Database;

use super::{CliError, print};

pub(super) fn check(path: &Path) -> Result<(), CliError> {
    let config = Config::load(path)?;
    for warning in &config.warnings {
        eprintln!("{}", warning.located(path));
    }
    print(Summary {
        path,
        config: &config,
    })
}

/// What a valid configuration sets up: storage, listener, polling, feeds, watch-lists
/// and webhooks, one line each (and one per feed, watch-list and webhook).
struct Summary<'a> {
    path: &'a Path,
    config: &'a Config,
}

/// A retention age as written in the file: "30d", "12h", "90m" (humantime would say
/// "11months 30days 3h 50m 24s" for 365d).
fn kept(age: Option<std::time::Duration>) -> String {
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
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Summary { path, config } = *self;
        let terms = config.matcher.pattern_count();
        writeln!(out, "{}: ok", path.display())?;
        writeln!(out, "database: {}", config.daemon.database)?;
        if matches!(config.daemon.database, Database::Postgres(_)) {
            writeln!(
                out,
                "cluster: node {}, lease {}s",
                config.cluster.node,
                config.cluster.lease.as_secs()
            )?;
        }
        let retention = &config.retention;
        writeln!(
            out,
            "retention: items {}, matches {}, deliveries {}",
            kept(retention.items),
            kept(retention.matches),
            kept(retention.deliveries)
        )?;
        writeln!(
            out,
            "stories: copies within {} join a story at resemblance {}",
            kept(Some(config.stories.window)),
            config.stories.threshold
        )?;
        match config.daemon.listen {
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
        }?;
        writeln!(
            out,
            "poll: {} (jitter {}), {} in flight, {} per host, timeout {}, max body {} bytes",
            config.poll.schedule,
            humantime::format_duration(config.poll.jitter),
            config.poll.concurrency,
            config.poll.per_host,
            humantime::format_duration(config.poll.timeout),
            config.poll.max_body
        )?;
        writeln!(out, "feeds: {}", config.feeds.len())?;
        for feed in &config.feeds {
            let tags = if feed.tags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", feed.tags.join(", "))
            };
            let full_text = if feed.full_text { ", full text" } else { "" };
            writeln!(
                out,
                "  {} ({}{full_text}) {}{tags}",
                feed.name,
                feed.schedule,
                redact::url(&feed.url, &feed.redact_params)
            )?;
        }
        writeln!(
            out,
            "watch-lists: {} ({terms} distinct patterns in one automaton)",
            config.watchlists.len()
        )?;
        for list in &config.watchlists {
            let feeds = list.feeds.as_ref().map_or("all feeds".to_string(), |set| {
                format!("{} feeds", set.len())
            });
            let hooks: Vec<&str> = list
                .webhooks
                .iter()
                .map(|&i| config.webhooks[i].name.as_str())
                .collect();
            let escalate = if list.escalate.is_empty() {
                String::new()
            } else {
                let thresholds: Vec<String> = list.escalate.iter().map(u32::to_string).collect();
                format!(", story_grew at {} feeds", thresholds.join(", "))
            };
            let policy = match (&list.digest, list.digest_only, list.max_alerts) {
                (Some(schedule), true, _) => format!(", digest only, at `{schedule}`"),
                (Some(schedule), false, Some(limit)) => {
                    format!(", at most {limit} alerts, the rest in a digest at `{schedule}`")
                }
                _ => String::new(),
            };
            writeln!(
                out,
                "  {} on {feeds} -> [{}]{escalate}{policy}",
                list.name,
                hooks.join(", ")
            )?;
        }
        writeln!(out, "webhooks: {}", config.webhooks.len())?;
        for hook in &config.webhooks {
            let signed = if hook.secret.is_some() {
                "signed"
            } else {
                "unsigned"
            };
            writeln!(out, "  {} ({:?}, {signed})", hook.name, hook.format)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_ages_read_as_written() {
        let days = |n: u64| Some(std::time::Duration::from_secs(n * 86_400));
        assert_eq!(kept(days(365)), "365d");
        assert_eq!(kept(Some(std::time::Duration::from_secs(90 * 60))), "90m");
        assert_eq!(kept(Some(std::time::Duration::from_secs(61))), "61s");
        assert_eq!(kept(None), "forever");
    }
}
