//! The single values every table uses, each parsed one way wherever it appears: paths
//! (relative to the configuration file), names that must be unique, schedules, http(s)
//! URLs under the network guard, durations and positive counts. Each reports its own
//! problem at the value's position and hands back a stand-in (or nothing), so that
//! loading goes on and one run finds every problem.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use url::Url;

use super::Schedule;
use super::problems::Problems;
use super::raw::S;
use crate::guard;

/// Resolves a path from the config file against the file's own directory: under systemd
/// the working directory is `/`, so "relative to where wirewatch was started" would mean
/// nothing useful.
pub(super) fn relative_to(base: &Path, value: &str) -> PathBuf {
    let path = PathBuf::from(value);
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

/// A name that is neither empty nor taken by an earlier entry of the same table.
pub(super) fn unique_name(
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

pub(super) fn parse_schedule(text: &S<String>, p: &mut Problems<'_>) -> Option<Schedule> {
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
pub(super) fn parse_http_url(
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

/// The duration `value` gives, or `default` when the setting is left out.
pub(super) fn duration_or(
    value: Option<&S<String>>,
    what: &str,
    default: Duration,
    p: &mut Problems<'_>,
) -> Duration {
    value.map_or(default, |value| duration(value, what, p))
}

/// A duration written like "90s", "5m" or "2h", at most [`MAX_DURATION`]; zero, and a
/// problem reported, when it is not one.
pub(super) fn duration(value: &S<String>, what: &str, p: &mut Problems<'_>) -> Duration {
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
pub(super) fn refuse_zero(value: Option<&S<String>>, what: &str, p: &mut Problems<'_>) {
    if let Some(value) = value
        && humantime::parse_duration(value.get_ref().trim()) == Ok(Duration::ZERO)
    {
        p.at(value.span(), format!("{what} must be longer than 0s"));
    }
}

/// The longest duration any setting takes: beyond it date arithmetic could overflow, and
/// no schedule, timeout or retry is meant to be that long.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

pub(super) fn positive(
    value: Option<&S<i64>>,
    what: &str,
    default: usize,
    p: &mut Problems<'_>,
) -> usize {
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
    use chrono::DateTime;

    use super::*;

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
}
