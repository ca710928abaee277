//! Feeds and webhooks as the configuration names them: registering them at start and on
//! reload, each feed's poll state and schedule, and its health as `wirewatch feeds`, the
//! API, `/metrics` and systemd's status line show it.
//!
//! Input: the configured (name, URL) and (name, fingerprint) pairs, and feed names.
//! Output: [`FeedState`] for a refresh, due times for the scheduler, [`FeedStatus`] rows
//! for whoever looks. What a refresh writes on a feed's row (validators, failures) is in
//! `pipeline.rs`, with the rest of the commit stage's writes.

use std::collections::HashMap;

use super::query_as;
use super::{ROWS_PER_STATEMENT, Result, Store, multi_row, values};
use crate::config::Config;
use crate::redact;

/// Why a feed's last refresh failed, as stored in `feeds.last_error_class` and counted in
/// metrics: the class, not the message, so failures can be counted and filtered without
/// parsing text. Written (and serialized) as the snake_case names of migration 0003.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The connection failed (DNS, refused, reset, TLS).
    Network,
    /// The fetch took longer than its deadline.
    Timeout,
    /// The server answered with an error status.
    HttpStatus,
    /// The body exceeded the size cap after decompression.
    TooLarge,
    /// The network guard refused the target.
    Forbidden,
    /// The body is not a feed at all.
    NotAFeed,
    /// The body is a feed that cannot be read.
    Malformed,
}

super::text_column!(ErrorClass {
    Network,
    Timeout,
    HttpStatus,
    TooLarge,
    Forbidden,
    NotAFeed,
    Malformed,
});

impl ErrorClass {
    /// The stable name: what the feed's row, the JSON output and metrics carry.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Network => "network",
            ErrorClass::Timeout => "timeout",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::TooLarge => "too_large",
            ErrorClass::Forbidden => "forbidden",
            ErrorClass::NotAFeed => "not_a_feed",
            ErrorClass::Malformed => "malformed",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that widths and alignment in format strings apply.
        f.pad(self.as_str())
    }
}

/// The poll state of one feed, as the scheduler and fetcher need it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FeedState {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub next_due_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub failure_count: i64,
    /// Why the feed is no longer polled (a 410), if it is not.
    pub disabled_reason: Option<String>,
    /// Where a permanent redirect moved the feed.
    pub moved_to: Option<String>,
}

/// A feed's health, as `wirewatch feeds` shows it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct FeedStatus {
    pub name: String,
    pub url: String,
    pub title: Option<String>,
    pub last_fetch_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub next_due_at: Option<i64>,
    pub failure_count: i64,
    pub last_error: Option<String>,
    /// The class as stored: an [`ErrorClass`] name, shown as it is, so that a class written
    /// by a newer wirewatch (after a rollback) is listed rather than refused.
    pub last_error_class: Option<String>,
    pub last_error_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    pub moved_to: Option<String>,
    /// Items stored from this feed.
    pub items: i64,
    /// The node refreshing it now, and until when its lease runs (several daemons on one
    /// PostgreSQL database; on SQLite never set).
    pub lease_node: Option<String>,
    pub lease_until: Option<i64>,
}

/// Each name of `pairs` once, with the last value given for it, in the order of those
/// last values.
fn last_of_each<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let last: HashMap<&str, usize> = pairs
        .iter()
        .enumerate()
        .map(|(index, (name, _))| (*name, index))
        .collect();
    pairs
        .iter()
        .enumerate()
        .filter(|(index, (name, _))| last.get(name) == Some(index))
        .map(|(_, pair)| *pair)
        .collect()
}

impl Store {
    /// Records the configured feeds and webhooks, keyed by name, in one transaction: a
    /// configuration is registered whole or not at all, so a failed reload leaves the
    /// running one's rows as they were. A feed whose URL changed starts afresh (the old
    /// URL's validators, redirect target and 410 are forgotten); a webhook whose
    /// configuration changed since a 410 disabled it is enabled again, as its owner has
    /// evidently fixed it. `webhooks` pairs a name with [`crate::config::Webhook::fingerprint`].
    ///
    /// Many rows per statement: a start or reload with 100,000 feeds runs 500 statements,
    /// not 100,000. PostgreSQL refuses a multi-row upsert that names a row twice, so a
    /// name given twice is written once, with the last value given for it.
    pub async fn register(&self, feeds: &[(&str, &str)], webhooks: &[(&str, &str)]) -> Result<()> {
        let (feeds, webhooks) = (last_of_each(feeds), last_of_each(webhooks));
        self.transaction(async |tx| {
            for chunk in feeds.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO feeds (name, url) VALUES {}
                     ON CONFLICT (name) DO UPDATE SET
                        url = excluded.url, etag = NULL, last_modified = NULL, moved_to = NULL,
                        disabled_at = NULL, disabled_reason = NULL, next_due_at = NULL,
                        last_success_at = NULL
                     WHERE feeds.url <> excluded.url",
                    values(chunk.len(), 2)
                );
                let mut insert = multi_row(sql, chunk.len());
                for (name, url) in chunk {
                    insert = insert.bind(*name).bind(*url);
                }
                insert.execute(&mut *tx.conn).await?;
            }
            for chunk in webhooks.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO webhooks (name, config_fingerprint) VALUES {}
                     ON CONFLICT (name) DO UPDATE SET
                        config_fingerprint = excluded.config_fingerprint,
                        disabled_at = NULL, disabled_reason = NULL
                     WHERE webhooks.config_fingerprint <> excluded.config_fingerprint",
                    values(chunk.len(), 2)
                );
                let mut insert = multi_row(sql, chunk.len());
                for (name, fingerprint) in chunk {
                    insert = insert.bind(*name).bind(*fingerprint);
                }
                insert.execute(&mut *tx.conn).await?;
            }
            Ok(())
        })
        .await
    }

    pub async fn feed_state(&self, name: &str) -> Result<Option<FeedState>> {
        self.pipeline_read(async |conn| {
            query_as(
                "SELECT id, name, url, etag, last_modified, next_due_at, last_success_at,
                    failure_count, disabled_reason, moved_to
                 FROM feeds WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
        })
        .await
    }

    /// Every feed's next due time and, if it is no longer polled, why: what the scheduler
    /// starts from, in one query however many feeds there are.
    pub async fn feed_schedules(&self) -> Result<HashMap<String, (Option<i64>, Option<String>)>> {
        let rows: Vec<(String, Option<i64>, Option<String>)> = self
            .pipeline_read(async |conn| {
                query_as("SELECT name, next_due_at, disabled_reason FROM feeds")
                    .fetch_all(&mut *conn)
                    .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(name, next_due_at, disabled_reason)| (name, (next_due_at, disabled_reason)))
            .collect())
    }

    /// When each feed last fetched successfully (feeds that never did are left out), for
    /// `/metrics`: one cheap query, unlike [`Store::feed_statuses`].
    pub async fn last_successes(&self) -> Result<Vec<(String, i64)>> {
        self.look(async |conn| {
            query_as("SELECT name, last_success_at FROM feeds WHERE last_success_at IS NOT NULL")
                .fetch_all(&mut *conn)
                .await
        })
        .await
    }

    /// The failing feeds' last errors, newest first (for systemd's `STATUS=`): a cheap
    /// query, unlike [`Store::feed_statuses`], which counts every feed's items.
    pub async fn recent_feed_errors(&self, limit: i64) -> Result<Vec<(String, String)>> {
        self.look(async |conn| {
            query_as(
                "SELECT name, last_error FROM feeds
                 WHERE failure_count > 0 AND last_error IS NOT NULL
                 ORDER BY last_error_at DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
        })
        .await
    }

    /// The configured feeds' health, for `wirewatch feeds` and the API: a feed removed
    /// from the config keeps its row, so its stored items still back their matches, but
    /// is no longer reported. Credentials in a feed's URL or redirect target are redacted
    /// as the feed's configuration says.
    pub async fn configured_feeds(&self, config: &Config) -> Result<Vec<FeedStatus>> {
        let mut statuses = self.feed_statuses().await?;
        statuses.retain_mut(|status| {
            let Some(feed) = config.feed_index(&status.name).map(|i| &config.feeds[i]) else {
                return false;
            };
            // Credentials in a feed URL never leave the process.
            for url in std::iter::once(&mut status.url).chain(status.moved_to.as_mut()) {
                *url = match url::Url::parse(url) {
                    Ok(parsed) => redact::url(&parsed, &feed.redact_params).to_string(),
                    // Not a URL the daemon could have stored; show nothing of it.
                    Err(_) => redact::REDACTED.to_string(),
                };
            }
            true
        });
        Ok(statuses)
    }

    /// Every feed's health, configured or not (see [`Store::configured_feeds`]).
    pub async fn feed_statuses(&self) -> Result<Vec<FeedStatus>> {
        self.look(async |conn| {
            query_as(
                "SELECT name, url, title, last_fetch_at, last_success_at, next_due_at,
                    failure_count, last_error, last_error_class, last_error_at,
                    disabled_at, disabled_reason, moved_to,
                    (SELECT COUNT(*) FROM items WHERE items.feed_id = feeds.id) AS items,
                    lease_node, lease_until
                 FROM feeds ORDER BY name",
            )
            .fetch_all(&mut *conn)
            .await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;
    use crate::store::{FeedFailure, FeedUpdate};
    use crate::store::{query, query_scalar};

    /// A webhook's `(disabled_at, disabled_reason)`.
    async fn webhook_disabled(store: &Store, name: &str) -> (Option<i64>, Option<String>) {
        store
            .look(async |conn| {
                query_as("SELECT disabled_at, disabled_reason FROM webhooks WHERE name = $1")
                    .bind(name)
                    .fetch_one(&mut *conn)
                    .await
            })
            .await
            .expect("read the webhook")
    }

    async fn state(store: &Store, name: &str) -> FeedState {
        store
            .feed_state(name)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("no row for {name}"))
    }

    /// A feed that has been fetched, moved, and then disabled by a 410.
    async fn fetched_moved_and_gone(store: &Store, id: i64) {
        let update = FeedUpdate {
            title: Some("Wire".into()),
            etag: Some("\"v1\"".into()),
            last_modified: Some("Tue, 14 Nov 2023 22:13:20 GMT".into()),
            next_due_at: 2_000,
            fetched_at: 1_000,
            document_keys: None,
        };
        let gone = FeedFailure {
            error: "http status 410 Gone".into(),
            class: ErrorClass::HttpStatus,
            at: 1_500,
            next_due_at: 3_000,
            disable: true,
        };
        store
            .transaction(async |tx| {
                tx.update_feeds(&[(id, &update)]).await?;
                tx.record_moved(id, "https://wire.example/new-rss").await?;
                tx.record_failure(id, &gone).await
            })
            .await
            .expect("written");
    }

    #[tokio::test]
    async fn a_feed_whose_url_changed_starts_afresh_and_one_whose_url_did_not_keeps_its_state() {
        let (_dir, store) = temp_store().await;
        let feeds = [
            ("wire", "https://wire.example/rss"),
            ("steady", "https://steady.example/rss"),
        ];
        store.register(&feeds, &[]).await.expect("register");
        let (wire, steady) = (state(&store, "wire").await, state(&store, "steady").await);
        fetched_moved_and_gone(&store, wire.id).await;
        fetched_moved_and_gone(&store, steady.id).await;

        store
            .register(
                &[
                    ("wire", "https://wire.example/atom"),
                    ("steady", "https://steady.example/rss"),
                ],
                &[],
            )
            .await
            .expect("register again");

        let afresh = state(&store, "wire").await;
        assert_eq!(
            afresh,
            FeedState {
                id: wire.id,
                name: "wire".into(),
                url: "https://wire.example/atom".into(),
                etag: None,
                last_modified: None,
                next_due_at: None,
                last_success_at: None,
                failure_count: afresh.failure_count,
                disabled_reason: None,
                moved_to: None,
            }
        );
        let kept = state(&store, "steady").await;
        assert_eq!(kept.etag.as_deref(), Some("\"v1\""));
        assert_eq!(
            kept.moved_to.as_deref(),
            Some("https://wire.example/new-rss")
        );
        assert_eq!(
            kept.disabled_reason.as_deref(),
            Some("http status 410 Gone")
        );
        assert_eq!(
            (kept.next_due_at, kept.last_success_at),
            (Some(3_000), Some(1_000))
        );
    }

    #[tokio::test]
    async fn a_webhook_disabled_by_a_410_is_enabled_again_when_its_fingerprint_changes_only() {
        let (_dir, store) = temp_store().await;
        let webhooks = [("siem", "fingerprint-1"), ("chat", "fingerprint-a")];
        store.register(&[], &webhooks).await.expect("register");
        store
            .disable_webhook("siem", "410 Gone", 100)
            .await
            .expect("disable");
        store
            .disable_webhook("chat", "410 Gone", 100)
            .await
            .expect("disable");

        // The same configuration again: both stay disabled.
        store
            .register(&[], &webhooks)
            .await
            .expect("register again");
        assert_eq!(webhook_disabled(&store, "siem").await.0, Some(100));
        assert_eq!(webhook_disabled(&store, "chat").await.0, Some(100));

        // `siem`'s configuration changed: its owner fixed it.
        store
            .register(&[], &[("siem", "fingerprint-2"), ("chat", "fingerprint-a")])
            .await
            .expect("register a changed webhook");
        assert_eq!(webhook_disabled(&store, "siem").await, (None, None));
        assert_eq!(
            webhook_disabled(&store, "chat").await,
            (Some(100), Some("410 Gone".into()))
        );
    }

    #[tokio::test]
    async fn a_thousand_feeds_register_in_one_call_and_registering_them_again_changes_nothing() {
        let (_dir, store) = temp_store().await;
        let feeds: Vec<(String, String)> = (0..1_000)
            .map(|i| {
                (
                    format!("feed-{i:04}"),
                    format!("https://wire.example/{i}/rss"),
                )
            })
            .collect();
        let pairs: Vec<(&str, &str)> = feeds
            .iter()
            .map(|(name, url)| (name.as_str(), url.as_str()))
            .collect();
        store.register(&pairs, &[]).await.expect("register");
        let first = store.feed_statuses().await.expect("read");
        assert_eq!(first.len(), 1_000);
        assert!(
            first
                .iter()
                .zip(&feeds)
                .all(|(status, (name, url))| &status.name == name && &status.url == url)
        );
        let ids: Vec<i64> = {
            let mut ids = Vec::new();
            for (name, _) in &feeds {
                ids.push(state(&store, name).await.id);
            }
            ids
        };
        // Ids follow the configuration's order, as one insert per feed gave them.
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");

        store.register(&pairs, &[]).await.expect("register again");
        for (name, id) in feeds.iter().map(|(name, _)| name).zip(&ids) {
            assert_eq!(state(&store, name).await.id, *id);
        }
        assert_eq!(store.feed_statuses().await.expect("read").len(), 1_000);
    }

    /// `n` configured feeds, `feed-0000` on, with URLs of the given `version`.
    fn configured(n: usize, version: &str) -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                (
                    format!("feed-{i:04}"),
                    format!("https://wire.example/{i}/{version}"),
                )
            })
            .collect()
    }

    fn pairs(feeds: &[(String, String)]) -> Vec<(&str, &str)> {
        feeds
            .iter()
            .map(|(name, url)| (name.as_str(), url.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn a_reload_over_several_statements_updates_changed_feeds_and_leaves_removed_ones_as_they_were()
     {
        let (_dir, store) = temp_store().await;
        let n = ROWS_PER_STATEMENT * 2 + 17;
        let first = configured(n, "rss");
        store.register(&pairs(&first), &[]).await.expect("register");
        // The last feed, in the last statement, was fetched, moved and disabled by a 410;
        // so was one that the reload removes.
        let last = state(&store, &first[n - 1].0).await;
        let removed = state(&store, &first[0].0).await;
        fetched_moved_and_gone(&store, last.id).await;
        fetched_moved_and_gone(&store, removed.id).await;
        let removed_before = state(&store, &first[0].0).await;

        // The reload drops feed-0000 and gives every other feed a new URL.
        let second = configured(n, "atom");
        store
            .register(&pairs(&second[1..]), &[])
            .await
            .expect("register again");

        for (name, url) in &second[1..] {
            let feed = state(&store, name).await;
            assert_eq!(&feed.url, url);
        }
        let afresh = state(&store, &first[n - 1].0).await;
        assert_eq!(afresh.id, last.id);
        assert_eq!(
            (
                afresh.etag,
                afresh.moved_to,
                afresh.disabled_reason,
                afresh.next_due_at
            ),
            (None, None, None, None)
        );
        // A feed removed from the config is neither deleted nor changed: its items still
        // back their matches. It is only no longer reported (see `configured_feeds`).
        assert_eq!(state(&store, &first[0].0).await, removed_before);
        assert_eq!(store.feed_statuses().await.expect("read").len(), n);
    }

    #[tokio::test]
    async fn a_name_given_twice_ends_with_its_last_url_as_one_insert_per_feed_left_it() {
        let (_dir, store) = temp_store().await;
        store
            .register(
                &[
                    ("wire", "https://wire.example/rss"),
                    ("other", "https://other.example/rss"),
                    ("wire", "https://wire.example/atom"),
                ],
                &[],
            )
            .await
            .expect("register");

        assert_eq!(state(&store, "wire").await.url, "https://wire.example/atom");
        assert_eq!(store.feed_statuses().await.expect("read").len(), 2);
    }

    #[tokio::test]
    async fn only_configured_feeds_are_reported_and_their_credentials_never_are() {
        let (dir, store) = temp_store().await;
        store
            .register(
                &[
                    ("wire", "https://reader:s3cret@wire.example/rss"),
                    ("removed", "https://removed.example/rss"),
                ],
                &[],
            )
            .await
            .expect("register");
        let text = "[[feeds]]\nname = \"wire\"\nurl = \"https://reader:s3cret@wire.example/rss\"\n";
        let config =
            Config::from_source(&dir.path().join("wirewatch.toml"), text).expect("a valid config");

        let statuses = store.configured_feeds(&config).await.expect("read");

        assert_eq!(statuses.len(), 1, "{statuses:?}");
        assert_eq!(statuses[0].name, "wire");
        assert!(!statuses[0].url.contains("s3cret"), "{}", statuses[0].url);
        assert!(
            statuses[0].url.contains("wire.example"),
            "{}",
            statuses[0].url
        );
    }

    #[tokio::test]
    async fn a_failed_feed_shows_its_error_class_and_serializes_it_as_the_stored_name() {
        let (_dir, store) = temp_store().await;
        store
            .register(&[("wire", "https://wire.example/rss")], &[])
            .await
            .expect("register");
        let id = state(&store, "wire").await.id;
        let failure = FeedFailure {
            error: "not a feed: an HTML page".into(),
            class: ErrorClass::NotAFeed,
            at: 1_000,
            next_due_at: 2_000,
            disable: false,
        };
        store
            .transaction(async |tx| tx.record_failure(id, &failure).await)
            .await
            .expect("written");

        let status = &store.feed_statuses().await.expect("read")[0];
        assert_eq!(status.last_error_class.as_deref(), Some("not_a_feed"));
        let json = serde_json::to_value(status).expect("json");
        assert_eq!(json["last_error_class"], "not_a_feed");
        let stored: String = store
            .look(async |conn| {
                query_scalar("SELECT last_error_class FROM feeds")
                    .fetch_one(&mut *conn)
                    .await
            })
            .await
            .expect("read");
        assert_eq!(stored, "not_a_feed");

        // A class this version does not know (a newer one wrote it) is listed as stored.
        store
            .transaction(async |tx| {
                query("UPDATE feeds SET last_error_class = 'extraction'")
                    .execute(&mut *tx.conn)
                    .await
                    .map(drop)
                    .map_err(crate::store::StoreError::from)
            })
            .await
            .expect("written");
        let status = &store.feed_statuses().await.expect("read")[0];
        assert_eq!(status.last_error_class.as_deref(), Some("extraction"));
    }

    #[tokio::test]
    async fn every_error_class_serializes_displays_and_is_stored_as_its_name() {
        let (_dir, store) = temp_store().await;
        let all = [
            (ErrorClass::Network, "network"),
            (ErrorClass::Timeout, "timeout"),
            (ErrorClass::HttpStatus, "http_status"),
            (ErrorClass::TooLarge, "too_large"),
            (ErrorClass::Forbidden, "forbidden"),
            (ErrorClass::NotAFeed, "not_a_feed"),
            (ErrorClass::Malformed, "malformed"),
        ];
        for (class, name) in all {
            assert_eq!(class.as_str(), name);
            assert_eq!(class.to_string(), name);
            assert_eq!(serde_json::to_value(class).expect("json"), name);
            let (stored, read): (String, ErrorClass) = store
                .look(async |conn| {
                    query_as("SELECT $1, $2")
                        .bind(class)
                        .bind(name)
                        .fetch_one(&mut *conn)
                        .await
                })
                .await
                .expect("round trip");
            assert_eq!((stored.as_str(), read), (name, class));
        }
        assert_eq!(format!("[{:<9}]", ErrorClass::Timeout), "[timeout  ]");
    }

    #[tokio::test]
    async fn a_success_or_a_304_clears_the_failures_the_backoff_counts() {
        let (_dir, store) = temp_store().await;
        store
            .register(
                &[
                    ("a", "https://a.example/rss"),
                    ("b", "https://b.example/rss"),
                ],
                &[],
            )
            .await
            .expect("register");
        let (a, b) = (state(&store, "a").await.id, state(&store, "b").await.id);
        let failure = FeedFailure {
            error: "http status 500".into(),
            class: ErrorClass::HttpStatus,
            at: 1_000,
            next_due_at: 2_000,
            disable: false,
        };
        for _ in 0..3 {
            store
                .transaction(async |tx| {
                    tx.record_failure(a, &failure).await?;
                    tx.record_failure(b, &failure).await
                })
                .await
                .expect("written");
        }
        assert_eq!(state(&store, "a").await.failure_count, 3);

        let update = FeedUpdate {
            title: None,
            etag: Some("\"v2\"".into()),
            last_modified: None,
            next_due_at: 3_000,
            fetched_at: 2_500,
            document_keys: None,
        };
        store
            .transaction(async |tx| {
                tx.update_feeds(&[(a, &update)]).await?;
                tx.record_not_modified(&[(b, 2_500, 3_000)]).await
            })
            .await
            .expect("written");
        for name in ["a", "b"] {
            let fed = state(&store, name).await;
            assert_eq!(fed.failure_count, 0, "{name}");
            assert_eq!(fed.next_due_at, Some(3_000), "{name}");
        }
        let statuses = store.feed_statuses().await.expect("read");
        assert!(
            statuses
                .iter()
                .all(|s| s.last_error.is_none() && s.last_error_class.is_none()),
            "{statuses:?}"
        );
    }
}
