//! Due times: when each feed is fetched next. Pure policy, no I/O and no clock of its own:
//! every function takes the time `now` it decides from.
//!
//! Input: a feed's schedule (crontab or `every N`, with jitter), the outcome of its last
//! fetch (the server's freshness hints, failures in a row, a `Retry-After`) and the poll
//! settings. Output: the next due time. The scheduler (`scheduler.rs`) keeps the queue of
//! due times and starts refreshes; the refresh (`refresh.rs`) stores the due time it got
//! from here with the feed's results.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng as _;

use crate::config::{Feed, Poll, Schedule};

/// The longest a feed's own hints (`max-age`, `Expires`, `<ttl>`) may stretch its
/// interval: a misconfigured server must not silence a feed for a week.
pub const MAX_HINTED_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// How soon a feed whose results the database failed to store is fetched again (once
/// the database takes writes), the first time.
pub const STORE_RETRY: Duration = Duration::from_secs(5);

/// How soon a feed is fetched again after the database refused its results for the
/// `failures`-th time in a row: soon (the scheduler waits for the database to take writes
/// first), then backing off up to `backoff_max`, so that a document the database keeps
/// refusing, or a disk with room for small writes only, is not downloaded every few
/// seconds. What the feed's own data made the database refuse (`about_the_data`) starts
/// from a minute.
pub fn store_retry(about_the_data: bool, failures: u32, poll: &Poll) -> chrono::Duration {
    let base = if about_the_data {
        Duration::from_secs(60)
    } else {
        STORE_RETRY
    };
    to_chrono(backoff(failures, base, poll.backoff_max.max(base)))
}

/// The next due time after `now`, pushed back by a random delay up to `jitter`.
pub fn next_due(schedule: &Schedule, now: DateTime<Utc>, jitter: Duration) -> DateTime<Utc> {
    let next = schedule.next_after(now);
    if jitter.is_zero() {
        return next;
    }
    let millis = rand::rng().random_range(0..=jitter.as_millis().min(u64::MAX as u128) as u64);
    next + chrono::Duration::milliseconds(millis as i64)
}

/// When a feed that was fetched successfully is due again: its schedule, but never
/// sooner than the feed asked (`hint`), when it may ask.
pub fn after_success(
    feed: &Feed,
    poll: &Poll,
    now: DateTime<Utc>,
    hint: Option<Duration>,
) -> DateTime<Utc> {
    let next = next_due(&feed.schedule, now, poll.jitter);
    match hint.filter(|_| feed.cache_hints) {
        Some(hint) => next.max(now + to_chrono(hint.min(MAX_HINTED_INTERVAL))),
        None => next,
    }
}

/// When a feed whose fetch failed for the `failures`-th time in a row is due again: its
/// schedule, but no sooner than its exponential backoff or a `Retry-After`.
pub fn after_failure(
    feed: &Feed,
    poll: &Poll,
    now: DateTime<Utc>,
    failures: u32,
    retry_after: Option<Duration>,
) -> DateTime<Utc> {
    let next = next_due(&feed.schedule, now, poll.jitter);
    let wait = backoff(failures, poll.backoff_base, poll.backoff_max)
        .max(retry_after.unwrap_or_default().min(MAX_HINTED_INTERVAL));
    next.max(now + to_chrono(wait))
}

/// `base` doubled per failure after the first, capped at `max`, with "equal jitter"
/// (between half and all of it) so that feeds failing together spread out.
pub fn backoff(failures: u32, base: Duration, max: Duration) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let exp = base
        .checked_mul(1u32.checked_shl(failures - 1).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max);
    exp.mul_f64(rand::rng().random_range(0.5..=1.0))
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(extra_poll: &str, feed_schedule: Option<&str>) -> Config {
        let schedule = feed_schedule.map_or(String::new(), |s| format!("schedule = \"{s}\"\n"));
        let text = format!(
            "[poll]\nschedule = \"every 60s\"\n{extra_poll}\n\n[[feeds]]\nname = \"f\"\nurl = \"https://example.org/rss\"\n{schedule}"
        );
        Config::from_source(std::path::Path::new("/tmp/t.toml"), &text).unwrap()
    }

    fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        (to - from).num_seconds()
    }

    #[test]
    fn backoff_doubles_per_failure_with_equal_jitter_up_to_the_cap() {
        let (base, max) = (Duration::from_secs(60), Duration::from_secs(600));
        assert_eq!(backoff(0, base, max), Duration::ZERO);
        for _ in 0..100 {
            for (failures, full) in [(1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (40, 600)] {
                let wait = backoff(failures, base, max).as_secs_f64();
                let full = full as f64;
                assert!(
                    wait >= full / 2.0 - 0.001 && wait <= full + 0.001,
                    "{failures}: {wait}"
                );
            }
        }
    }

    #[test]
    fn a_feed_the_database_keeps_refusing_is_retried_soon_then_less_and_less_often() {
        let config = config("backoff_max = \"10m\"", None);
        for _ in 0..50 {
            let secs = |data, n| store_retry(data, n, &config.poll).num_milliseconds();
            assert!((2_500..=5_000).contains(&secs(false, 1)));
            assert!((20_000..=40_000).contains(&secs(false, 4)));
            assert!((300_000..=600_000).contains(&secs(false, 40)), "capped");
            assert!((30_000..=60_000).contains(&secs(true, 1)));
        }
    }

    #[test]
    fn a_failure_waits_for_the_later_of_schedule_backoff_and_retry_after() {
        let config = config("backoff_base = \"10m\"\nbackoff_max = \"1h\"", None);
        let (feed, poll) = (&config.feeds[0], &config.poll);
        let now = Utc::now();
        // First failure: backoff 5-10 minutes beats the 60s schedule.
        let next = secs(now, after_failure(feed, poll, now, 1, None));
        assert!((300..=600).contains(&next), "{next}");
        // A longer Retry-After wins over both.
        let next = secs(
            now,
            after_failure(feed, poll, now, 1, Some(Duration::from_secs(7200))),
        );
        assert_eq!(next, 7200);
        // Retry-After is capped: a server cannot park a feed for a week.
        let next = secs(
            now,
            after_failure(feed, poll, now, 1, Some(Duration::from_secs(7 * 86400))),
        );
        assert_eq!(next, 86400);
    }

    #[test]
    fn cache_hints_stretch_the_default_schedule_but_not_an_explicit_one() {
        let now = Utc::now();
        let after = |config: &Config, hint: u64| {
            let (feed, poll) = (&config.feeds[0], &config.poll);
            secs(
                now,
                after_success(feed, poll, now, Some(Duration::from_secs(hint))),
            )
        };
        let hinted = config("", None);
        assert_eq!(after(&hinted, 900), 900);
        // A hint shorter than the schedule changes nothing.
        assert_eq!(after(&hinted, 5), 60);
        let explicit = config("", Some("every 2m"));
        assert_eq!(after(&explicit, 900), 120);
    }
}
