//! Several daemons on one PostgreSQL database (SPEC §17), on a throwaway cluster of their
//! own: three real `wirewatch run` processes share a few hundred feeds that keep changing.
//!
//! - One node is SIGKILLed in the middle: nothing is lost, no story is alerted under two
//!   `webhook-id`s, the others take over its feeds within the lease, and no feed is
//!   fetched by two nodes in one cycle except where the dead node's lease explains it.
//! - PostgreSQL itself is stopped and started again: the daemons say they are not ready
//!   while it is down, reconnect, and lose nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::helpers::{
    Daemon, FeedHit, FeedServer, Hook, Item, Received, Receiver, Rng, TestDir, eventually,
    http_get, poll, readyz_until, rss,
};
use crate::postgres::Postgres;

/// How long a node's lease on a feed lasts unless renewed (the shortest allowed).
const LEASE: Duration = Duration::from_secs(3);

/// Rounds of publishing in each phase of the kill test.
const ROUNDS: usize = 12;

/// Waits until the nodes have fetched 30 feeds more than now (an eighth of a cycle).
async fn fetched_more(feeds: &FeedServer) {
    let before = feeds.all_hits().len();
    eventually(
        "the nodes to fetch more",
        Duration::from_secs(30),
        || async { (feeds.all_hits().len() >= before + 30).then_some(()) },
    )
    .await;
}

/// A cluster's shared database and the feeds every node follows.
struct Cluster {
    postgres: Postgres,
    url: String,
    feeds: FeedServer,
    names: Vec<String>,
    receiver: Receiver,
}

impl Cluster {
    async fn start(feeds: usize) -> Cluster {
        let postgres = Postgres::start();
        postgres.create_database("wirewatch");
        let url = postgres.url("wirewatch");
        let server = FeedServer::start().await;
        let names: Vec<String> = (0..feeds).map(|n| format!("feed-{n:03}")).collect();
        for name in &names {
            server.set(name, rss(&[]));
            // A refresh takes a moment, so that leases are held while a node is killed.
            server.delay(name, Duration::from_millis(200));
        }
        Cluster {
            postgres,
            url,
            feeds: server,
            names,
            receiver: Receiver::start().await,
        }
    }

    /// A node's test dir: the same config as every other node's but for its name (and its
    /// user agent, which tells the feed server who fetched).
    fn node(&self, name: &str) -> TestDir {
        let dir = TestDir::on_postgres(&self.url);
        let feeds: Vec<(&str, String)> = self
            .names
            .iter()
            .map(|n| (n.as_str(), self.feeds.url(n)))
            .collect();
        dir.config_with(
            &feeds,
            &[Hook::new("siem", &self.receiver.url())],
            "every 2s",
        );
        // Every feed is on one host here: let a node fetch many of them at once.
        dir.poll_settings(&format!(
            "user_agent = \"wirewatch-test {name}\"\nper_host = 64\nconcurrency = 64"
        ));
        dir.edit_config(|text| {
            format!(
                "{text}\n[cluster]\nnode = \"{name}\"\nlease = \"{}s\"\n",
                LEASE.as_secs()
            )
        });
        dir
    }

    /// Publishes story `n` on feed `feed`: a new item whose title names Iran.
    fn publish(&self, published: &mut BTreeMap<usize, Vec<usize>>, feed: usize, n: usize) {
        let stories = published.entry(feed).or_default();
        stories.push(n);
        let titles: Vec<(String, String, String)> = stories
            .iter()
            .rev()
            .take(20)
            .map(|n| {
                (
                    format!("story-{n}"),
                    format!("Iran bulletin number {n}"),
                    format!("https://news.example.org/story/{n}"),
                )
            })
            .collect();
        let items: Vec<Item> = titles
            .iter()
            .map(|(guid, title, link)| Item::new(guid, title, link))
            .collect();
        self.feeds.set(&self.names[feed], rss(&items));
    }

    /// The stories alerted, each with the `webhook-id`s it arrived under.
    fn alerted(&self) -> HashMap<String, HashSet<String>> {
        alerted(&self.receiver.received())
    }
}

fn alerted(received: &[Received]) -> HashMap<String, HashSet<String>> {
    let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
    for r in received
        .iter()
        .filter(|r| r.accepted() && r.json()["type"] == "watchlist.match")
    {
        let link = r.json()["data"]["item"]["url"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ids.entry(link).or_default().insert(r.header("webhook-id"));
    }
    ids
}

/// Every story published, by link.
fn links(published: &BTreeMap<usize, Vec<usize>>) -> HashSet<String> {
    published
        .values()
        .flatten()
        .map(|n| format!("https://news.example.org/story/{n}"))
        .collect()
}

/// Which node fetched: the end of its user agent.
fn node_of(hit: &FeedHit) -> &str {
    hit.agent.rsplit(' ').next().unwrap_or_default()
}

/// Waits until every published story was alerted, for at most a minute; asserts that each
/// arrived under one `webhook-id`.
async fn every_story_alerted_once(cluster: &Cluster, published: &BTreeMap<usize, Vec<usize>>) {
    let wanted = links(published);
    let arrived = poll(Duration::from_secs(60), || async {
        let alerted = cluster.alerted();
        wanted
            .iter()
            .all(|link| alerted.contains_key(link))
            .then_some(alerted)
    })
    .await;
    let alerted = arrived.unwrap_or_else(|| {
        let alerted = cluster.alerted();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|l| !alerted.contains_key(*l))
            .collect();
        panic!(
            "{} of {} stories never alerted: {missing:?}",
            missing.len(),
            wanted.len()
        )
    });
    for (link, ids) in &alerted {
        assert_eq!(ids.len(), 1, "{link} alerted under {ids:?}");
    }
    assert_eq!(
        alerted.keys().cloned().collect::<HashSet<_>>(),
        wanted,
        "only published stories alert"
    );
}

/// The nodes' leases on feeds now, by node (read from the shared database).
async fn feed_leases(dir: &TestDir) -> HashMap<String, Vec<String>> {
    let mut db = dir.database().await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT lease_node, name FROM feeds
         WHERE lease_node IS NOT NULL AND lease_until > CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let mut leases: HashMap<String, Vec<String>> = HashMap::new();
    for (node, feed) in rows {
        leases.entry(node).or_default().push(feed);
    }
    leases
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_lose_nothing_when_one_is_killed_and_the_others_take_its_feeds_within_the_lease()
 {
    let mut rng = Rng::seeded("cluster kill test");
    let seed = rng.seed();
    let cluster = Cluster::start(240).await;
    let (a, b, c) = (
        cluster.node("node-a"),
        cluster.node("node-b"),
        cluster.node("node-c"),
    );
    let mut published: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut story = 0;
    // Migrations run once, under PostgreSQL's advisory lock, whichever node starts first.
    let mut nodes: Vec<Daemon> = vec![a.spawn_daemon(), b.spawn_daemon(), c.spawn_daemon()];
    let names = &cluster.names;

    // Every node fetches, stories keep coming; a third of them on two feeds at once, so
    // that two nodes may commit one story at the same moment: it still alerts once.
    let mut publish_some = |count: usize, rng: &mut Rng| {
        for _ in 0..count {
            let feed = rng.below(names.len() as u64) as usize;
            cluster.publish(&mut published, feed, story);
            if rng.below(3) == 0 {
                let other = (feed + 1 + rng.below(names.len() as u64 - 1) as usize) % names.len();
                cluster.publish(&mut published, other, story);
            }
            story += 1;
        }
    };
    // The stories come at the nodes' pace, not the clock's: a round publishes a few, then
    // waits for the nodes to fetch some more. At least ROUNDS, until all three fetched.
    for round in 1.. {
        publish_some(3, &mut rng);
        fetched_more(&cluster.feeds).await;
        let fetchers: HashSet<String> = cluster
            .feeds
            .all_hits()
            .iter()
            .map(|h| node_of(h).to_string())
            .collect();
        if round >= ROUNDS && fetchers.len() == 3 {
            break;
        }
        assert!(
            round < 10 * ROUNDS,
            "not every node fetched: {fetchers:?} (seed {seed})"
        );
    }

    // Kill node b while it holds leases: its refreshes are under way.
    let held = poll(Duration::from_secs(30), || async {
        feed_leases(&a)
            .await
            .remove("node-b")
            .filter(|f| !f.is_empty())
    })
    .await
    .unwrap_or_else(|| panic!("node-b never held a lease (seed {seed})"));
    let b_daemon = nodes.remove(1);
    b_daemon.kill().await;
    let killed = Instant::now();
    let orphaned: Vec<String> = feed_leases(&a).await.remove("node-b").unwrap_or_default();
    assert!(
        !held.is_empty() && !orphaned.is_empty(),
        "node-b held no lease when killed (seed {seed})"
    );

    // More stories, at least ROUNDS rounds, until the survivors fetched every feed the
    // killed node held.
    let taken_over = |hits: &[FeedHit]| {
        orphaned.iter().all(|feed| {
            hits.iter()
                .any(|h| &h.feed == feed && h.at > killed && node_of(h) != "node-b")
        })
    };
    for round in 1.. {
        publish_some(3, &mut rng);
        fetched_more(&cluster.feeds).await;
        if round >= ROUNDS && taken_over(&cluster.feeds.all_hits()) {
            break;
        }
        assert!(
            round < 10 * ROUNDS,
            "the killed node's feeds were not taken over (seed {seed})"
        );
    }
    every_story_alerted_once(&cluster, &published).await;

    // The dead node's feeds were taken over within the lease (plus a fetch's time).
    let hits = cluster.feeds.all_hits();
    for feed in &orphaned {
        let taken = hits
            .iter()
            .find(|h| &h.feed == feed && h.at > killed && node_of(h) != "node-b")
            .unwrap_or_else(|| panic!("{feed}, leased by the killed node, never fetched again"));
        let after = taken.at - killed;
        assert!(
            after <= LEASE + Duration::from_secs(2),
            "{feed} taken over {after:?} after the kill (seed {seed})"
        );
    }
    assert!(
        hits.iter()
            .all(|h| node_of(h) != "node-b" || h.at <= killed),
        "a killed node fetched nothing"
    );

    // No feed fetched twice in one cycle (every 2 s), but where the killed node's lease
    // explains it: it fetched, died before its commit, and another node fetched again.
    let mut by_feed: HashMap<&str, Vec<&FeedHit>> = HashMap::new();
    for hit in &hits {
        by_feed.entry(&hit.feed).or_default().push(hit);
    }
    for (feed, mut fetched) in by_feed {
        fetched.sort_by_key(|h| h.at);
        for pair in fetched.windows(2) {
            let gap = pair[1].at - pair[0].at;
            let explained = node_of(pair[0]) == "node-b"
                && pair[0].at <= killed
                && pair[1].at - pair[0].at <= LEASE + Duration::from_secs(3);
            assert!(
                gap >= Duration::from_millis(900) || explained,
                "{feed} fetched by {} and then {} {gap:?} apart (seed {seed})",
                node_of(pair[0]),
                node_of(pair[1]),
            );
        }
    }
    // The survivors shared the feeds between them.
    let after_kill: HashSet<&str> = hits.iter().filter(|h| h.at > killed).map(node_of).collect();
    assert_eq!(after_kill, HashSet::from(["node-a", "node-c"]));

    for daemon in nodes {
        assert_eq!(daemon.terminate().await, Some(0));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgresql_restart_is_survived_readiness_reports_it_and_nothing_is_lost() {
    let mut rng = Rng::seeded("cluster restart test");
    let seed = rng.seed();
    let cluster = Cluster::start(20).await;
    let (a, b) = (cluster.node("node-a"), cluster.node("node-b"));
    let (node_a, base_a) = a.spawn_listening_daemon().await;
    let (node_b, base_b) = b.spawn_listening_daemon().await;
    let mut published: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for n in 0..10 {
        cluster.publish(&mut published, rng.below(20) as usize, n);
    }
    every_story_alerted_once(&cluster, &published).await;

    // Each node names itself and counts its leases; `feeds` shows who refreshes what.
    let (_, metrics) = http_get(&format!("{base_a}/metrics")).await.unwrap();
    assert!(
        metrics.contains("wirewatch_node_info{node=\"node-a\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wirewatch_leases{node=\"node-a\",kind=\"feed\"}"),
        "{metrics}"
    );
    // A refresh that outlasts the lease keeps it by renewing it: no other node fetches
    // the feed meanwhile. (Within the fetch timeout of 5 s.)
    let slow = LEASE + Duration::from_secs(1);
    cluster.feeds.delay(&cluster.names[0], slow);
    let slowed = Instant::now();
    let leased = poll(Duration::from_secs(30), || async {
        let listed = crate::helpers::stdout(&a.wirewatch(&["feeds"]).await);
        listed.contains("being refreshed by node").then_some(listed)
    })
    .await;
    let listed = leased.expect("a feed being refreshed, in `wirewatch feeds`");
    assert!(
        listed.contains("by node node-a") || listed.contains("by node node-b"),
        "{listed}"
    );
    let slow_fetches = || -> Vec<FeedHit> {
        cluster
            .feeds
            .hits(&cluster.names[0])
            .into_iter()
            .filter(|h| h.at >= slowed)
            .collect()
    };
    eventually(
        "two slow refreshes of one feed",
        Duration::from_secs(40),
        || async { (slow_fetches().len() >= 3).then_some(()) },
    )
    .await;
    for pair in slow_fetches().windows(2) {
        assert!(
            pair[1].at - pair[0].at >= slow,
            "{} fetched by {} while {} still held it (seed {seed})",
            pair[1].feed,
            node_of(&pair[1]),
            node_of(&pair[0])
        );
    }
    cluster
        .feeds
        .delay(&cluster.names[0], Duration::from_millis(200));

    cluster.postgres.stop();
    // Stories published while the database is down wait for it.
    for n in 10..20 {
        cluster.publish(&mut published, rng.below(20) as usize, n);
    }
    for base in [&base_a, &base_b] {
        let (status, body) = readyz_until(base, |status| status == 503).await;
        assert_eq!(
            status, 503,
            "not ready while PostgreSQL is down (seed {seed}): {body}"
        );
        assert!(body.contains("does not take writes"), "{body}");
    }
    cluster.postgres.restart();
    for base in [&base_a, &base_b] {
        let (status, body) = readyz_until(base, |status| status == 200).await;
        assert_eq!(status, 200, "ready again (seed {seed}): {body}");
    }
    for n in 20..30 {
        cluster.publish(&mut published, rng.below(20) as usize, n);
    }
    every_story_alerted_once(&cluster, &published).await;
    assert!(http_get(&format!("{base_a}/healthz")).await.is_some());
    for daemon in [node_a, node_b] {
        assert_eq!(daemon.terminate().await, Some(0));
    }
}
