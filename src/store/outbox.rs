//! The durable outbox, from the worker's side and the operator's: claiming due rows under
//! a lease, marking each attempt's outcome, re-queueing, listing deliveries, and the
//! webhooks a 410 disabled.
//!
//! Input: a webhook's name and the time now (every statement takes `now` rather than
//! reading a clock). Output: claimed [`Delivery`] rows, and [`DeliveryRow`]s for
//! `wirewatch deliveries`. The rows themselves are inserted by the commit stage with their
//! match (see `pipeline.rs`), so an alert is never lost between the two. A claimed row is
//! leased (`leased_until`), apart from its retry time, so a process that dies mid-send
//! leaves it to be sent again, never lost and never marked delivered.

use super::{Result, Store};
use super::{query, query_as, query_scalar};

/// Where an outbox row stands, as stored in `outbox.status` (whose CHECK constraint
/// allows these three) and serialized by `wirewatch deliveries --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for a first attempt or a retry.
    Pending,
    /// A receiver accepted it.
    Delivered,
    /// Retries used up: dead-lettered until an operator re-queues it.
    Dead,
}

super::text_column!(OutboxStatus {
    Pending,
    Delivered,
    Dead
});

impl OutboxStatus {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }
}

impl std::fmt::Display for OutboxStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that the listing's column width applies.
        f.pad(self.as_str())
    }
}

/// Which rows `wirewatch deliveries --status` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryFilter {
    Pending,
    /// Pending, not tried yet.
    Waiting,
    /// Pending after at least one failed attempt.
    Failed,
    Dead,
    Delivered,
}

impl DeliveryFilter {
    /// The filter's name: the status it selects, or `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryFilter::Pending => "pending",
            DeliveryFilter::Waiting => "waiting",
            DeliveryFilter::Failed => "failed",
            DeliveryFilter::Dead => "dead",
            DeliveryFilter::Delivered => "delivered",
        }
    }
}

/// An outbox row claimed for delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub webhook: String,
    pub body: String,
    pub attempts: i64,
}

/// One outbox row, as `wirewatch deliveries` shows it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook: String,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub watchlist: String,
    /// The alerted item's title; for a digest, how many stories it carries.
    pub title: String,
    /// For a `watchlist.story_grew` event, the number of feeds the story reached; `null`
    /// for the alert itself.
    #[sqlx(try_from = "i64")]
    #[serde(serialize_with = "grew_to")]
    pub grew_to: u32,
    /// For a `watchlist.digest` part, the digest's id (else `null`).
    pub digest: Option<String>,
}

/// 0 (the alert itself) as `null`.
fn grew_to<S: serde::Serializer>(feeds: &u32, out: S) -> Result<S::Ok, S::Error> {
    match feeds {
        0 => out.serialize_none(),
        n => out.serialize_u32(*n),
    }
}

/// A webhook disabled by a 410.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct DisabledWebhook {
    pub name: String,
    pub disabled_at: i64,
    pub reason: String,
}

/// How many outbox rows of one webhook are in each state (the console's deliveries page).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryCounts {
    pub webhook: String,
    /// Pending, not tried yet.
    pub pending: i64,
    /// Pending after at least one failed attempt.
    pub failed: i64,
    pub dead: i64,
    pub delivered: i64,
}

impl Store {
    /// Claims up to `limit` pending deliveries of one webhook due at `now`, leasing them
    /// to `node` until `lease_until`: a process that dies mid-send leaves the row to be
    /// retried once the lease runs out, never lost and never marked delivered. A disabled
    /// webhook's rows are not claimed. The rows claimed are the oldest due; they come back
    /// in the order the database updated them, which is not promised to be oldest first.
    /// On PostgreSQL rows another node is claiming at that moment are skipped, not waited
    /// for: each row is in flight on one node at a time.
    pub async fn claim_deliveries(
        &self,
        webhook: &str,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        self.row_transaction(async |tx| {
            Ok(query_as(
                "UPDATE outbox SET leased_until = $3, leased_by = $5
                 WHERE id IN (SELECT id FROM outbox
                              WHERE webhook = $1 AND status = 'pending' AND next_attempt_at <= $2
                                AND (leased_until IS NULL OR leased_until <= $2)
                                AND NOT EXISTS (SELECT 1 FROM webhooks w
                                                WHERE w.name = $1 AND w.disabled_at IS NOT NULL)
                              ORDER BY next_attempt_at, id LIMIT $4
                              /* FOR UPDATE SKIP LOCKED */)
                 RETURNING id, webhook, body, attempts",
            )
            .bind(webhook)
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .bind(node)
            .fetch_all(&mut *tx.conn)
            .await?)
        })
        .await
    }

    pub async fn mark_delivered(&self, id: &str, status: u16, at: i64) -> Result<()> {
        self.row_transaction(async |tx| {
            query(
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_status = $2,
                    last_error = NULL, delivered_at = $3, leased_until = NULL, leased_by = NULL
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(i64::from(status))
            .bind(at)
            .execute(&mut *tx.conn)
            .await?;
            Ok(())
        })
        .await
    }

    /// A failed attempt: retried at `next_attempt_at`, or dead-lettered when `None`.
    pub async fn mark_failed(
        &self,
        id: &str,
        status: Option<u16>,
        error: &str,
        next_attempt_at: Option<i64>,
    ) -> Result<()> {
        self.row_transaction(async |tx| {
            query(
                "UPDATE outbox SET attempts = attempts + 1, last_status = $2, last_error = $3,
                    status = CASE WHEN $4 IS NULL THEN 'dead' ELSE 'pending' END,
                    next_attempt_at = COALESCE($4, next_attempt_at), leased_until = NULL,
                    leased_by = NULL
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(status.map(i64::from))
            .bind(error)
            .bind(next_attempt_at)
            .execute(&mut *tx.conn)
            .await?;
            Ok(())
        })
        .await
    }

    /// Releases the lease of a claimed row that was not attempted after all.
    pub async fn release_lease(&self, id: &str) -> Result<()> {
        self.row_transaction(async |tx| {
            query("UPDATE outbox SET leased_until = NULL, leased_by = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut *tx.conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// When the next pending delivery of an enabled webhook is due, if any.
    pub async fn next_delivery_due(&self, webhook: &str) -> Result<Option<i64>> {
        self.pipeline_read(async |conn| {
            query_scalar(
                "SELECT MIN(CASE WHEN leased_until > next_attempt_at THEN leased_until
                                 ELSE next_attempt_at END) AS due FROM outbox
                 WHERE webhook = $1 AND status = 'pending'
                   AND NOT EXISTS (SELECT 1 FROM webhooks w
                                   WHERE w.name = $1 AND w.disabled_at IS NOT NULL)",
            )
            .bind(webhook)
            .fetch_one(&mut *conn)
            .await
        })
        .await
    }

    /// How many deliveries wait for an attempt (pending, whatever their webhook).
    pub async fn pending_deliveries(&self) -> Result<i64> {
        self.look(async |conn| {
            query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                .fetch_one(&mut *conn)
                .await
        })
        .await
    }

    pub async fn disable_webhook(&self, name: &str, reason: &str, at: i64) -> Result<()> {
        self.transaction(async |tx| {
            query(
                "UPDATE webhooks SET disabled_at = $2, disabled_reason = $3
                 WHERE name = $1 AND disabled_at IS NULL",
            )
            .bind(name)
            .bind(at)
            .bind(reason)
            .execute(&mut *tx.conn)
            .await?;
            Ok(())
        })
        .await
    }

    /// Enables a webhook a 410 disabled (a no-op for an enabled one).
    pub async fn enable_webhook(&self, name: &str) -> Result<()> {
        self.transaction(async |tx| {
            query("UPDATE webhooks SET disabled_at = NULL, disabled_reason = NULL WHERE name = $1")
                .bind(name)
                .execute(&mut *tx.conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// The outbox rows of each webhook by state, webhooks by name.
    pub async fn delivery_counts(&self) -> Result<Vec<DeliveryCounts>> {
        self.look(async |conn| {
            query_as(
                "SELECT webhook,
                    COUNT(*) FILTER (WHERE status = 'pending' AND attempts = 0) AS pending,
                    COUNT(*) FILTER (WHERE status = 'pending' AND attempts > 0) AS failed,
                    COUNT(*) FILTER (WHERE status = 'dead') AS dead,
                    COUNT(*) FILTER (WHERE status = 'delivered') AS delivered
                 FROM outbox GROUP BY webhook ORDER BY webhook",
            )
            .fetch_all(&mut *conn)
            .await
        })
        .await
    }

    /// Webhooks disabled by a 410, with when and why.
    pub async fn disabled_webhooks(&self) -> Result<Vec<DisabledWebhook>> {
        self.look(async |conn| {
            query_as(
                "SELECT name, disabled_at, COALESCE(disabled_reason, '') AS reason FROM webhooks
                 WHERE disabled_at IS NOT NULL ORDER BY name",
            )
            .fetch_all(&mut *conn)
            .await
        })
        .await
    }

    /// Outbox rows for `wirewatch deliveries` and the console, newest first.
    /// [`DeliveryFilter::Failed`] means pending after at least one failed attempt,
    /// [`DeliveryFilter::Waiting`] pending before any.
    pub async fn deliveries(
        &self,
        status: Option<DeliveryFilter>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>> {
        self.look(async |conn| {
            query_as(
                "SELECT o.id, o.webhook, o.status, o.attempts, o.next_attempt_at, o.last_status,
                    o.last_error, o.created_at, o.delivered_at,
                    COALESCE(m.watchlist, d.watchlist, '') AS watchlist,
                    COALESCE(i.title, 'digest of ' || d.stories || ' stories, part ' || o.stage, '')
                        AS title,
                    CASE WHEN o.digest_id IS NULL THEN o.stage ELSE 0 END AS grew_to,
                    o.digest_id AS digest
                 FROM outbox o
                 LEFT JOIN matches m ON m.id = o.match_id
                 LEFT JOIN items i ON i.id = m.item_id
                 LEFT JOIN digests d ON d.id = o.digest_id
                 WHERE $1 IS NULL
                    OR ($1 = 'failed' AND o.status = 'pending' AND o.attempts > 0)
                    OR ($1 = 'waiting' AND o.status = 'pending' AND o.attempts = 0)
                    OR o.status = $1
                 ORDER BY o.created_at DESC, o.id DESC
                 LIMIT $2",
            )
            .bind(status.map(DeliveryFilter::as_str))
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
        })
        .await
    }

    /// Re-queues one row (whatever its status) for an attempt now, with a fresh retry
    /// schedule; `false` when no row has that id.
    pub async fn requeue(&self, id: &str, now: i64) -> Result<bool> {
        let done = self
            .transaction(async |tx| {
                Ok(query(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2,
                        delivered_at = NULL, leased_until = NULL
                     WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx.conn)
                .await?)
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Re-queues every dead-lettered row, or those of one webhook; returns how many.
    pub async fn requeue_dead(&self, webhook: Option<&str>, now: i64) -> Result<u64> {
        let done = self
            .transaction(async |tx| {
                Ok(query(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2
                     WHERE status = 'dead' AND ($1 IS NULL OR webhook = $1)",
                )
                .bind(webhook)
                .bind(now)
                .execute(&mut *tx.conn)
                .await?)
            })
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;
    use crate::store::{ItemRow, NewItem, NewMatch, OutboxRow};

    /// A lease long enough not to run out during a test that does not mean it to.
    const LEASE: i64 = 60;

    /// A store holding one outbox row per `(id, webhook, at)`, each the alert of an item
    /// of its own, created and due at `at`. Webhooks `siem` and `chat` are registered.
    async fn queued(rows: &[(&str, &str, i64)]) -> (tempfile::TempDir, Store) {
        let (dir, store) = temp_store().await;
        store
            .register(
                &[("wire", "https://wire.example/rss")],
                &[("siem", "siem-v1"), ("chat", "chat-v1"), ("ops", "ops-v1")],
            )
            .await
            .expect("register");
        let feed = store
            .feed_state("wire")
            .await
            .expect("read")
            .expect("row")
            .id;
        store
            .transaction(async |tx| {
                for &(id, webhook, at) in rows {
                    let url = format!("https://wire.example/{id}");
                    let story = tx.new_story(at).await?;
                    let item = ItemRow {
                        feed_id: feed,
                        story_id: story,
                        matched: true,
                        item: NewItem {
                            item_key: id,
                            title: id,
                            url: Some(&url),
                            ..NewItem::default()
                        },
                        ..ItemRow::default()
                    };
                    let items = tx.insert_items(&[item], at).await?;
                    let match_id = format!("match-{id}");
                    tx.insert_matches(&[NewMatch {
                        id: &match_id,
                        story_id: story,
                        watchlist: "wire",
                        item_id: items[&(feed, id.to_string())],
                        terms_json: "[]".into(),
                        highlights_json: "[]".into(),
                        created_at: at,
                        escalated: 0,
                        held: None,
                        awaiting_digest: false,
                    }])
                    .await?;
                    let body = format!("{{\"alert\":\"{id}\"}}");
                    tx.insert_outbox(
                        &[OutboxRow {
                            id: id.to_string(),
                            match_id: &match_id,
                            stage: 0,
                            webhook,
                            body,
                        }],
                        at,
                    )
                    .await?;
                }
                Ok(())
            })
            .await
            .expect("queued");
        (dir, store)
    }

    /// The ids a claim took, sorted: which rows a claim takes is decided oldest first,
    /// but they come back in no promised order.
    async fn claim(store: &Store, webhook: &str, now: i64, limit: i64) -> Vec<String> {
        let mut ids: Vec<String> = store
            .claim_deliveries(webhook, "node-a", now, now + LEASE, limit)
            .await
            .expect("claim")
            .into_iter()
            .map(|delivery| delivery.id)
            .collect();
        ids.sort();
        ids
    }

    /// The row as `wirewatch deliveries` lists it.
    async fn row(store: &Store, id: &str) -> DeliveryRow {
        store
            .deliveries(None, 100)
            .await
            .expect("list")
            .into_iter()
            .find(|row| row.id == id)
            .unwrap_or_else(|| panic!("no row {id}"))
    }

    async fn listed(store: &Store, filter: Option<DeliveryFilter>) -> Vec<String> {
        store
            .deliveries(filter, 100)
            .await
            .expect("list")
            .into_iter()
            .map(|row| row.id)
            .collect()
    }

    #[tokio::test]
    async fn a_claim_takes_only_the_webhooks_rows_that_are_due() {
        let (_dir, store) = queued(&[
            ("later", "siem", 300),
            ("second", "siem", 200),
            ("first", "siem", 100),
            ("other-webhook", "chat", 100),
        ])
        .await;

        assert_eq!(claim(&store, "siem", 99, 10).await, Vec::<String>::new());
        assert_eq!(claim(&store, "siem", 250, 10).await, ["first", "second"]);
        let claimed = store
            .claim_deliveries("siem", "node-a", 300, 300 + LEASE, 10)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        assert_eq!(
            (claimed[0].id.as_str(), claimed[0].webhook.as_str()),
            ("later", "siem")
        );
        assert_eq!(claimed[0].body, "{\"alert\":\"later\"}");
        assert_eq!(claimed[0].attempts, 0);
    }

    #[tokio::test]
    async fn a_claim_takes_no_more_rows_than_its_limit_and_the_oldest_due_first() {
        // Queued newest first, so that neither insertion order nor ids give the answer.
        let (_dir, store) = queued(&[
            ("c-newest", "siem", 102),
            ("b-middle", "siem", 101),
            ("a-oldest", "siem", 100),
        ])
        .await;

        assert_eq!(claim(&store, "siem", 200, 1).await, ["a-oldest"]);
        assert_eq!(claim(&store, "siem", 200, 1).await, ["b-middle"]);
        assert_eq!(claim(&store, "siem", 200, 5).await, ["c-newest"]);
    }

    #[tokio::test]
    async fn a_disabled_webhooks_rows_are_not_claimed_until_it_is_enabled_again() {
        let (_dir, store) = queued(&[("a", "siem", 100), ("b", "chat", 100)]).await;
        store
            .disable_webhook("siem", "410 Gone", 150)
            .await
            .expect("disable");

        assert_eq!(claim(&store, "siem", 200, 10).await, Vec::<String>::new());
        assert_eq!(store.next_delivery_due("siem").await.expect("due"), None);
        assert_eq!(claim(&store, "chat", 200, 10).await, ["b"]);
        let disabled = store.disabled_webhooks().await.expect("list");
        assert_eq!(disabled.len(), 1);
        assert_eq!(
            (
                disabled[0].name.as_str(),
                disabled[0].disabled_at,
                disabled[0].reason.as_str()
            ),
            ("siem", 150, "410 Gone")
        );

        store.enable_webhook("siem").await.expect("enable");
        assert_eq!(claim(&store, "siem", 200, 10).await, ["a"]);
        assert!(store.disabled_webhooks().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn a_claimed_row_is_not_claimed_again_until_its_lease_passes() {
        let (_dir, store) = queued(&[("a", "siem", 100)]).await;
        assert_eq!(
            store
                .claim_deliveries("siem", "node-a", 100, 130, 10)
                .await
                .expect("claim")
                .len(),
            1
        );

        assert_eq!(claim(&store, "siem", 129, 10).await, Vec::<String>::new());
        assert_eq!(
            store.next_delivery_due("siem").await.expect("due"),
            Some(130)
        );
        // A process that died mid-send: once its lease runs out, the row goes again.
        assert_eq!(claim(&store, "siem", 130, 10).await, ["a"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_two_processes_claiming_the_same_rows_at_once_each_row_goes_to_one() {
        let rows: Vec<(String, &str, i64)> = (0..40)
            .map(|i| (format!("row-{i:02}"), "siem", 100 + i))
            .collect();
        let borrowed: Vec<(&str, &str, i64)> = rows
            .iter()
            .map(|(id, webhook, at)| (id.as_str(), *webhook, *at))
            .collect();
        let (_dir, first) = queued(&borrowed).await;
        // A second process: its own pools and its own writer queue on the same file.
        let second = first.reopen().await.expect("open again");

        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            let (x, y) = tokio::join!(
                first.claim_deliveries("siem", "node-a", 1_000, 1_000 + LEASE, 3),
                second.claim_deliveries("siem", "node-b", 1_000, 1_000 + LEASE, 3),
            );
            a.extend(x.expect("first claims").into_iter().map(|d| d.id));
            b.extend(y.expect("second claims").into_iter().map(|d| d.id));
        }

        let mut all: Vec<String> = a.iter().chain(&b).cloned().collect();
        all.sort();
        let total = all.len();
        all.dedup();
        assert_eq!(all.len(), total, "a row claimed twice: {a:?} {b:?}");
        let expected: Vec<String> = rows.iter().map(|(id, ..)| id.clone()).collect();
        assert_eq!(all, expected, "every row claimed once");
        second.close().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_taken_on_the_clock_keeps_the_row_until_the_clock_passes_it() {
        let _held = crate::clock::hold();
        let lease = 60;
        let start = crate::clock::unix();
        let (_dir, store) = queued(&[("a", "siem", start)]).await;
        let claimed = store
            .claim_deliveries("siem", "node-a", start, start + lease, 10)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);

        // Well within the lease (seconds are whole, so a margin either side).
        tokio::time::advance(std::time::Duration::from_secs(50)).await;
        let now = crate::clock::unix();
        assert!(now < start + lease, "{now} {start}");
        assert_eq!(claim(&store, "siem", now, 10).await, Vec::<String>::new());

        tokio::time::advance(std::time::Duration::from_secs(20)).await;
        let now = crate::clock::unix();
        assert!(now >= start + lease, "{now} {start}");
        assert_eq!(claim(&store, "siem", now, 10).await, ["a"]);
    }

    #[tokio::test]
    async fn a_released_lease_makes_the_row_claimable_at_once() {
        let (_dir, store) = queued(&[("a", "siem", 100), ("b", "siem", 100)]).await;
        assert_eq!(claim(&store, "siem", 100, 10).await, ["a", "b"]);

        store.release_lease("a").await.expect("release");

        assert_eq!(claim(&store, "siem", 101, 10).await, ["a"]);
    }

    #[tokio::test]
    async fn releasing_a_nodes_leases_at_start_frees_what_it_had_claimed_and_not_the_others() {
        let (_dir, store) = queued(&[
            ("a", "siem", 100),
            ("b", "chat", 100),
            ("c", "siem", 500),
            ("d", "ops", 100),
        ])
        .await;
        assert_eq!(claim(&store, "siem", 100, 10).await, ["a"]);
        assert_eq!(claim(&store, "chat", 100, 10).await, ["b"]);
        let elsewhere = store
            .claim_deliveries("ops", "node-b", 100, 100 + LEASE, 10)
            .await
            .expect("node-b claims");
        assert_eq!(elsewhere.len(), 1);

        assert_eq!(
            store
                .release_leases("node-a")
                .await
                .expect("release")
                .deliveries,
            2
        );

        assert_eq!(claim(&store, "siem", 101, 10).await, ["a"]);
        assert_eq!(claim(&store, "chat", 101, 10).await, ["b"]);
        assert!(
            claim(&store, "ops", 101, 10).await.is_empty(),
            "node-b's send is still in flight"
        );
        assert_eq!(
            store
                .release_leases("node-a")
                .await
                .expect("release")
                .deliveries,
            2
        );
        assert_eq!(
            store
                .release_leases("node-a")
                .await
                .expect("release")
                .deliveries,
            0
        );
        assert_eq!(
            store
                .release_leases("node-b")
                .await
                .expect("release")
                .deliveries,
            1
        );
    }

    #[tokio::test]
    async fn a_delivered_row_keeps_its_status_and_time_and_is_not_claimed_again() {
        let (_dir, store) = queued(&[("a", "siem", 100)]).await;
        claim(&store, "siem", 100, 10).await;

        store.mark_delivered("a", 204, 105).await.expect("mark");

        let delivered = row(&store, "a").await;
        assert_eq!(delivered.status, OutboxStatus::Delivered);
        assert_eq!(
            (
                delivered.attempts,
                delivered.last_status,
                delivered.delivered_at
            ),
            (1, Some(204), Some(105))
        );
        assert_eq!(claim(&store, "siem", 1_000, 10).await, Vec::<String>::new());
        assert_eq!(store.pending_deliveries().await.expect("count"), 0);
    }

    #[tokio::test]
    async fn a_failed_attempt_is_retried_at_its_next_attempt_time() {
        let (_dir, store) = queued(&[("a", "siem", 100)]).await;
        store
            .claim_deliveries("siem", "node-a", 100, 10_000, 10)
            .await
            .expect("claim");

        store
            .mark_failed("a", Some(503), "http status 503", Some(160))
            .await
            .expect("mark");

        let failed = row(&store, "a").await;
        assert_eq!(failed.status, OutboxStatus::Pending);
        assert_eq!(
            (failed.attempts, failed.last_status, failed.next_attempt_at),
            (1, Some(503), 160)
        );
        assert_eq!(failed.last_error.as_deref(), Some("http status 503"));
        // The mark released the lease: the retry time alone decides.
        assert_eq!(claim(&store, "siem", 159, 10).await, Vec::<String>::new());
        assert_eq!(claim(&store, "siem", 160, 10).await, ["a"]);
    }

    #[tokio::test]
    async fn a_failed_attempt_without_a_retry_time_dead_letters_the_row() {
        let (_dir, store) = queued(&[("a", "siem", 100)]).await;
        claim(&store, "siem", 100, 10).await;

        store
            .mark_failed("a", None, "connection refused", None)
            .await
            .expect("mark");

        let dead = row(&store, "a").await;
        assert_eq!(dead.status, OutboxStatus::Dead);
        assert_eq!((dead.attempts, dead.last_status), (1, None));
        assert_eq!(
            dead.next_attempt_at, 100,
            "the retry time is left as it was"
        );
        assert_eq!(
            claim(&store, "siem", 10_000, 10).await,
            Vec::<String>::new()
        );
        assert_eq!(store.next_delivery_due("siem").await.expect("due"), None);
    }

    #[tokio::test]
    async fn a_row_already_delivered_is_not_touched_by_a_late_mark() {
        let (_dir, store) = queued(&[("a", "siem", 100)]).await;
        store.mark_delivered("a", 200, 105).await.expect("mark");
        let before = row(&store, "a").await;

        store
            .mark_failed("a", Some(500), "a late failure", Some(300))
            .await
            .expect("mark failed");
        store
            .mark_failed("a", None, "a late dead letter", None)
            .await
            .expect("mark dead");
        store
            .mark_delivered("a", 202, 400)
            .await
            .expect("mark again");

        let after = row(&store, "a").await;
        assert_eq!(after.status, OutboxStatus::Delivered);
        assert_eq!(
            (
                after.attempts,
                after.last_status,
                after.last_error,
                after.delivered_at,
                after.next_attempt_at
            ),
            (
                before.attempts,
                before.last_status,
                before.last_error,
                before.delivered_at,
                before.next_attempt_at
            )
        );
    }

    #[tokio::test]
    async fn requeuing_a_row_by_id_makes_it_due_now_with_a_fresh_retry_count() {
        let (_dir, store) = queued(&[("dead", "siem", 100), ("delivered", "siem", 100)]).await;
        claim(&store, "siem", 100, 10).await;
        store
            .mark_failed("dead", Some(500), "boom", None)
            .await
            .expect("mark");
        store
            .mark_delivered("delivered", 200, 101)
            .await
            .expect("mark");

        assert!(store.requeue("dead", 1_000).await.expect("requeue"));
        assert!(store.requeue("delivered", 1_000).await.expect("requeue"));
        assert!(!store.requeue("no-such-row", 1_000).await.expect("requeue"));

        for id in ["dead", "delivered"] {
            let requeued = row(&store, id).await;
            assert_eq!(requeued.status, OutboxStatus::Pending, "{id}");
            assert_eq!(
                (
                    requeued.attempts,
                    requeued.next_attempt_at,
                    requeued.delivered_at
                ),
                (0, 1_000, None),
                "{id}"
            );
        }
        assert_eq!(claim(&store, "siem", 999, 10).await, Vec::<String>::new());
        assert_eq!(
            claim(&store, "siem", 1_000, 10).await,
            ["dead", "delivered"]
        );
    }

    #[tokio::test]
    async fn requeuing_a_leased_row_by_id_releases_its_lease() {
        let (_dir, store) = queued(&[("a", "siem", 100)]).await;
        assert_eq!(
            store
                .claim_deliveries("siem", "node-a", 100, 10_000, 10)
                .await
                .expect("claim")
                .len(),
            1
        );

        assert!(store.requeue("a", 200).await.expect("requeue"));

        assert_eq!(claim(&store, "siem", 200, 10).await, ["a"]);
    }

    #[tokio::test]
    async fn requeuing_dead_letters_takes_every_dead_row_or_only_one_webhooks() {
        let (_dir, store) = queued(&[
            ("siem-dead", "siem", 100),
            ("chat-dead", "chat", 100),
            ("siem-pending", "siem", 100),
        ])
        .await;
        for id in ["siem-dead", "chat-dead"] {
            store
                .mark_failed(id, None, "gave up", None)
                .await
                .expect("mark");
        }
        store
            .mark_failed("siem-pending", Some(500), "retry", Some(900))
            .await
            .expect("mark");

        assert_eq!(
            store
                .requeue_dead(Some("siem"), 1_000)
                .await
                .expect("requeue"),
            1
        );
        assert_eq!(row(&store, "siem-dead").await.status, OutboxStatus::Pending);
        assert_eq!(row(&store, "chat-dead").await.status, OutboxStatus::Dead);
        let untouched = row(&store, "siem-pending").await;
        assert_eq!((untouched.attempts, untouched.next_attempt_at), (1, 900));

        assert_eq!(store.requeue_dead(None, 1_000).await.expect("requeue"), 1);
        let requeued = row(&store, "chat-dead").await;
        assert_eq!(
            (requeued.status, requeued.attempts, requeued.next_attempt_at),
            (OutboxStatus::Pending, 0, 1_000)
        );
        assert_eq!(store.requeue_dead(None, 1_000).await.expect("requeue"), 0);
    }

    #[tokio::test]
    async fn the_deliveries_listing_filters_by_status_and_failed_means_pending_after_a_failed_attempt()
     {
        let (_dir, store) = queued(&[
            ("fresh", "siem", 100),
            ("retrying", "siem", 101),
            ("dead", "siem", 102),
            ("delivered", "siem", 103),
        ])
        .await;
        store
            .mark_failed("retrying", Some(500), "retry", Some(900))
            .await
            .expect("mark");
        store
            .mark_failed("dead", None, "gave up", None)
            .await
            .expect("mark");
        store
            .mark_delivered("delivered", 200, 110)
            .await
            .expect("mark");

        // Newest first.
        assert_eq!(
            listed(&store, None).await,
            ["delivered", "dead", "retrying", "fresh"]
        );
        assert_eq!(
            listed(&store, Some(DeliveryFilter::Pending)).await,
            ["retrying", "fresh"]
        );
        assert_eq!(
            listed(&store, Some(DeliveryFilter::Failed)).await,
            ["retrying"]
        );
        assert_eq!(
            listed(&store, Some(DeliveryFilter::Waiting)).await,
            ["fresh"]
        );
        assert_eq!(listed(&store, Some(DeliveryFilter::Dead)).await, ["dead"]);
        assert_eq!(
            listed(&store, Some(DeliveryFilter::Delivered)).await,
            ["delivered"]
        );
        assert_eq!(store.pending_deliveries().await.expect("count"), 2);
        // The console's counts: each row in exactly one state.
        let counts = store.delivery_counts().await.expect("counts");
        assert_eq!(counts.len(), 1, "{counts:?}");
        let c = &counts[0];
        assert_eq!(
            (c.pending, c.failed, c.dead, c.delivered),
            (1, 1, 1, 1),
            "{counts:?}"
        );

        let json = serde_json::to_value(row(&store, "dead").await).expect("json");
        assert_eq!(json["status"], "dead");
        assert_eq!(json["watchlist"], "wire");
        assert_eq!(json["title"], "dead");
    }

    #[tokio::test]
    async fn every_outbox_status_serializes_displays_and_is_stored_as_its_name() {
        let (_dir, store) = temp_store().await;
        for (status, name) in [
            (OutboxStatus::Pending, "pending"),
            (OutboxStatus::Delivered, "delivered"),
            (OutboxStatus::Dead, "dead"),
        ] {
            assert_eq!(status.as_str(), name);
            assert_eq!(status.to_string(), name);
            assert_eq!(serde_json::to_value(status).expect("json"), name);
            let (stored, read): (String, OutboxStatus) = store
                .look(async |conn| {
                    query_as("SELECT $1, $2")
                        .bind(status)
                        .bind(name)
                        .fetch_one(&mut *conn)
                        .await
                })
                .await
                .expect("round trip");
            assert_eq!((stored.as_str(), read), (name, status));
        }
        assert_eq!(format!("[{:<9}]", OutboxStatus::Dead), "[dead     ]");
    }
}
