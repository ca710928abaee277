//! Feed leases, for several daemons sharing one PostgreSQL database (SPEC §17): a node
//! refreshes a due feed only once it holds the feed's lease, renews it while the refresh
//! runs, and gives it back when the refresh is committed. A node that dies leaves its
//! leases to run out, and whichever node finds the feed due next takes it over. The lease
//! is claimed with `FOR UPDATE SKIP LOCKED`: two nodes claiming at once never wait for
//! each other, and one of them gets it.
//!
//! On SQLite, with its one daemon, every claim is granted without a statement: a single
//! install writes nothing it did not write before.
//!
//! Input: a feed's name, the node, the clock. Output: [`FeedClaim`], and for `/metrics`
//! and `wirewatch feeds` who holds what ([`LeaseCount`]).

use super::{Dialect, Result, Store, query, query_as};

/// The answer to a node asking for a feed's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedClaim {
    /// The node holds the lease: refresh the feed.
    Claimed,
    /// Not now; ask again at `at` (Unix seconds): when the feed is next due, or when the
    /// lease `holder` has runs out.
    Later { at: i64, holder: Option<String> },
}

/// The leases a node gave back at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub feeds: u64,
    pub deliveries: u64,
}

/// How many leases one node holds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseCount {
    pub node: String,
    pub feeds: i64,
    pub deliveries: i64,
}

/// A claim that found a feed locked by another node's claim at that very moment asks
/// again this much later.
const CONTENDED_RETRY_SECS: i64 = 1;

#[derive(sqlx::FromRow)]
struct FeedLease {
    next_due_at: Option<i64>,
    lease_node: Option<String>,
    lease_until: Option<i64>,
}

impl Store {
    /// Leases feed `name` to `node` until `until`, if nobody holds an unexpired lease on
    /// it and (with `due_by`) it is due by then: another node may have refreshed it
    /// already this cycle. `None` claims it whenever it is due (`wirewatch poll`). Not
    /// even `node` itself claims a lease it holds: a `wirewatch poll` on a daemon's host
    /// has the daemon's node name, and must neither refresh a feed the daemon is
    /// refreshing nor give the daemon's lease back; a node restarted after a crash
    /// waits for its old leases like everyone else.
    pub async fn claim_feed(
        &self,
        name: &str,
        node: &str,
        now: i64,
        until: i64,
        due_by: Option<i64>,
    ) -> Result<FeedClaim> {
        if self.database().dialect() == Dialect::Sqlite {
            return Ok(FeedClaim::Claimed);
        }
        let claimed = self
            .row_transaction(async |tx| {
                Ok(query(
                    "UPDATE feeds SET lease_node = $2, lease_until = $3
                     WHERE id = (SELECT id FROM feeds
                                 WHERE name = $1
                                   AND (lease_until IS NULL OR lease_until <= $4)
                                   AND ($5 IS NULL OR next_due_at IS NULL OR next_due_at <= $5)
                                 /* FOR UPDATE SKIP LOCKED */)",
                )
                .bind(name)
                .bind(node)
                .bind(until)
                .bind(now)
                .bind(due_by)
                .execute(&mut *tx.conn)
                .await?
                .rows_affected())
            })
            .await?;
        if claimed > 0 {
            return Ok(FeedClaim::Claimed);
        }
        let lease: Option<FeedLease> = self
            .pipeline_read(async |conn| {
                query_as("SELECT next_due_at, lease_node, lease_until FROM feeds WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *conn)
                    .await
            })
            .await?;
        Ok(match lease {
            Some(FeedLease {
                lease_node: Some(holder),
                lease_until: Some(until),
                ..
            }) if until > now => FeedClaim::Later {
                at: until,
                holder: Some(holder),
            },
            Some(FeedLease {
                next_due_at: Some(due),
                ..
            }) if due_by.is_some_and(|by| due > by) => FeedClaim::Later {
                at: due,
                holder: None,
            },
            // Locked by a claim under way, or gone from the table: ask again soon.
            _ => FeedClaim::Later {
                at: now + CONTENDED_RETRY_SECS,
                holder: None,
            },
        })
    }

    /// Extends `node`'s lease on feed `name` to `until`; `false` if it no longer holds it.
    pub async fn renew_feed_lease(&self, name: &str, node: &str, until: i64) -> Result<bool> {
        if self.database().dialect() == Dialect::Sqlite {
            return Ok(true);
        }
        let renewed = self
            .row_transaction(async |tx| {
                Ok(
                    query("UPDATE feeds SET lease_until = $3 WHERE name = $1 AND lease_node = $2")
                        .bind(name)
                        .bind(node)
                        .bind(until)
                        .execute(&mut *tx.conn)
                        .await?
                        .rows_affected(),
                )
            })
            .await?;
        Ok(renewed > 0)
    }

    /// Gives `node`'s lease on feed `name` back.
    pub async fn release_feed_lease(&self, name: &str, node: &str) -> Result<()> {
        if self.database().dialect() == Dialect::Sqlite {
            return Ok(());
        }
        self.row_transaction(async |tx| {
            query(
                "UPDATE feeds SET lease_node = NULL, lease_until = NULL
                 WHERE name = $1 AND lease_node = $2",
            )
            .bind(name)
            .bind(node)
            .execute(&mut *tx.conn)
            .await?;
            Ok(())
        })
        .await
    }

    /// Releases every lease of `node`, on feeds and on deliveries (and the delivery
    /// leases of builds before leases named their node): run once by the daemon at start,
    /// when nothing of its own can be in flight, so the feeds it was refreshing and the
    /// alerts it was sending when it was killed are taken up at once rather than after
    /// their lease. Other nodes' leases stand. (A `wirewatch poll` of the same node at
    /// that very moment could see a feed refreshed or an alert sent twice, which the
    /// unique constraints and `webhook-id` make harmless.)
    pub async fn release_leases(&self, node: &str) -> Result<Released> {
        self.row_transaction(async |tx| {
            let feeds = query(
                "UPDATE feeds SET lease_node = NULL, lease_until = NULL WHERE lease_node = $1",
            )
            .bind(node)
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
            let deliveries = query(
                "UPDATE outbox SET leased_until = NULL, leased_by = NULL
                 WHERE leased_until IS NOT NULL AND (leased_by = $1 OR leased_by IS NULL)",
            )
            .bind(node)
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
            Ok(Released { feeds, deliveries })
        })
        .await
    }

    /// The unexpired leases on feeds and deliveries at `now`, per node.
    pub async fn lease_counts(&self, now: i64) -> Result<Vec<LeaseCount>> {
        self.look(async |conn| {
            query_as(
                "SELECT node, CAST(SUM(feeds) AS BIGINT) AS feeds,
                    CAST(SUM(deliveries) AS BIGINT) AS deliveries FROM (
                    SELECT lease_node AS node, COUNT(*) AS feeds, 0 AS deliveries FROM feeds
                    WHERE lease_node IS NOT NULL AND lease_until > $1 GROUP BY lease_node
                    UNION ALL
                    SELECT leased_by, 0, COUNT(*) FROM outbox
                    WHERE leased_by IS NOT NULL AND leased_until > $1 GROUP BY leased_by
                 ) AS leases GROUP BY node ORDER BY node",
            )
            .bind(now)
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

    #[tokio::test]
    async fn one_node_holds_a_feed_until_its_lease_runs_out_or_it_gives_it_back() {
        let (_dir, store) = temp_store().await;
        store
            .register(&[("wire", "https://wire.example/rss")], &[])
            .await
            .expect("register");
        let claim = |node, now| store.claim_feed("wire", node, now, now + 60, Some(now));
        assert_eq!(claim("a", 100).await.expect("claim"), FeedClaim::Claimed);
        if store.database().dialect() == Dialect::Sqlite {
            // One daemon: every claim is granted, and nothing is written.
            assert_eq!(claim("b", 101).await.expect("claim"), FeedClaim::Claimed);
            assert!(store.lease_counts(101).await.expect("counts").is_empty());
            return;
        }
        assert_eq!(
            claim("b", 101).await.expect("claim"),
            FeedClaim::Later {
                at: 160,
                holder: Some("a".into())
            }
        );
        assert_eq!(
            store.lease_counts(101).await.expect("counts"),
            [LeaseCount {
                node: "a".into(),
                feeds: 1,
                deliveries: 0
            }]
        );
        // Not even its holder claims it again (a `wirewatch poll` of the same node name).
        assert_eq!(
            claim("a", 102).await.expect("claim"),
            FeedClaim::Later {
                at: 160,
                holder: Some("a".into())
            }
        );
        // Renewed while the refresh runs; a node that no longer holds it cannot renew.
        assert!(
            store
                .renew_feed_lease("wire", "a", 190)
                .await
                .expect("renew")
        );
        assert!(
            !store
                .renew_feed_lease("wire", "b", 500)
                .await
                .expect("renew")
        );
        assert_eq!(
            claim("b", 170).await.expect("claim"),
            FeedClaim::Later {
                at: 190,
                holder: Some("a".into())
            }
        );
        // Node a died: once the lease has run out, b takes the feed over.
        assert_eq!(claim("b", 190).await.expect("claim"), FeedClaim::Claimed);
        store
            .release_feed_lease("wire", "a")
            .await
            .expect("release");
        assert_eq!(
            store.lease_counts(191).await.expect("counts")[0].node,
            "b",
            "a's late release leaves b's lease alone"
        );
        store
            .release_feed_lease("wire", "b")
            .await
            .expect("release");
        assert!(store.lease_counts(191).await.expect("counts").is_empty());

        // A node restarted after a crash gives back what it held, and only that.
        assert_eq!(claim("b", 200).await.expect("claim"), FeedClaim::Claimed);
        assert_eq!(store.release_leases("a").await.expect("release").feeds, 0);
        assert_eq!(store.release_leases("b").await.expect("release").feeds, 1);
        assert_eq!(claim("a", 201).await.expect("claim"), FeedClaim::Claimed);
    }

    #[tokio::test]
    async fn a_feed_refreshed_this_cycle_by_another_node_is_not_claimed_until_due_again() {
        let (_dir, store) = temp_store().await;
        if store.database().dialect() == Dialect::Sqlite {
            eprintln!("on PostgreSQL only (SQLite grants every claim, see the test above)");
            return;
        }
        store
            .register(&[("wire", "https://wire.example/rss")], &[])
            .await
            .expect("register");
        assert_eq!(
            store
                .claim_feed("wire", "a", 100, 160, Some(100))
                .await
                .expect("claim"),
            FeedClaim::Claimed
        );
        store
            .transaction(async |tx| {
                query("UPDATE feeds SET next_due_at = 400 WHERE name = 'wire'")
                    .execute(&mut *tx.conn)
                    .await?;
                Ok(())
            })
            .await
            .expect("refreshed");
        store
            .release_feed_lease("wire", "a")
            .await
            .expect("release");
        assert_eq!(
            store
                .claim_feed("wire", "b", 101, 161, Some(101))
                .await
                .expect("claim"),
            FeedClaim::Later {
                at: 400,
                holder: None
            }
        );
        // `wirewatch poll` refreshes it whenever asked.
        assert_eq!(
            store
                .claim_feed("wire", "b", 101, 161, None)
                .await
                .expect("claim"),
            FeedClaim::Claimed
        );
    }
}
