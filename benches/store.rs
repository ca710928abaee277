//! Store throughput: items/s written with de-duplication, one transaction per polled feed.
//!
//! Input: generated items shaped like wire copy (URL guid, tracking parameters on the link,
//! a 300-byte summary, an author, two categories), keyed with `dedup::item_key` and
//! `dedup::canonical_link` as the pipeline keys them. Output: criterion's elements/s, one
//! element = one item.
//!
//! One iteration is one poll of a feed of 50 items, the way `refresh` stores it: one
//! `known_items` look-up for the document's keys, then one `BEGIN IMMEDIATE` transaction
//! with `stories_for` + `insert_items` (multi-row), and for 10% of the items a match and an
//! outbox row (the body rendered beforehand: rendering is the notify stage's cost), then
//! `update_feed` and `commit`. `store/new_items` writes 50 items never seen; `store/duplicates` polls a feed
//! already stored, so every item stops at `known_items` and the transaction only moves
//! the feed's schedule. The database is a real SQLite file (WAL, synchronous=NORMAL, as
//! `Store::open` sets it) in a temp dir, seeded with 10,000 items over 100 feeds first so
//! the indexes are not trivially small.
//!
//! Run: `cargo bench --bench store -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use url::Url;
use wirewatch::dedup::{canonical_link, item_key};
use wirewatch::matcher::{Field, Highlight};
use wirewatch::parse::Item;
use wirewatch::store::{FeedUpdate, NewItem, NewMatch, Store};

const ITEMS_PER_FEED: usize = 50;
const FEEDS: usize = 100;
/// Polls stored before measuring: 10,000 items.
const SEED_POLLS: usize = 200;
const NOW: i64 = 1_795_000_000;

/// One item as the pipeline holds it between dedup and store.
struct Prepared {
    item: Item,
    key: String,
    canonical: Option<String>,
    /// Set for 10% of the items: (terms JSON, highlights JSON, outbox body).
    matched: Option<(String, String, String)>,
}

/// One poll: a feed and its document's items.
struct Poll {
    feed_id: i64,
    items: Vec<Prepared>,
}

const SUMMARY: &str = "Negotiators from both sides met behind closed doors for a third day on \
    Wednesday as diplomats sought to narrow differences over sanctions relief and verification, \
    officials familiar with the talks said, adding that several technical issues remained \
    unresolved and that a further round could be scheduled for next week if progress is made.";

fn item(n: u64) -> Prepared {
    let url = format!("https://www.example-wire.com/world/2026/11/28/story-{n}-talks-resume/");
    let link = Url::parse(&format!("{url}?utm_source=rss&utm_medium=feed")).expect("valid URL");
    let item = Item {
        guid: Some(url),
        title: format!("Talks resume as diplomats seek a way forward, officials say ({n})"),
        link: Some(link),
        published: Utc.timestamp_opt(NOW - (n % 86_400) as i64, 0).single(),
        summary: SUMMARY.to_owned(),
        content: String::new(),
        authors: vec!["Wire Staff".to_owned()],
        categories: vec!["World".to_owned(), "Middle East".to_owned()],
        language: Some("en".to_owned()),
    };
    let key = item_key(&item);
    let canonical = item.link.as_ref().map(canonical_link);
    let matched = n.is_multiple_of(10).then(|| {
        let terms = vec!["Iran".to_owned()];
        let highlights = vec![Highlight {
            field: Field::Summary,
            term: "Iran".to_owned(),
            snippet: SUMMARY[..120].to_owned(),
            start: 40,
            end: 44,
        }];
        let body = serde_json::json!({
            "type": "watchlist.match",
            "timestamp": "2026-11-28T01:00:00Z",
            "data": {
                "watchlist": "iran-china",
                "terms": terms,
                "item": { "id": key, "title": item.title, "url": canonical, "summary": SUMMARY,
                          "authors": item.authors, "categories": item.categories },
                "highlights": highlights,
            }
        })
        .to_string();
        (
            serde_json::to_string(&terms).expect("serializable"),
            serde_json::to_string(&highlights).expect("serializable"),
            body,
        )
    });
    Prepared {
        item,
        key,
        canonical,
        matched,
    }
}

/// Items numbered from `*next` on, `polls` feeds' worth, spread over the feeds.
fn polls(feed_ids: &[i64], next: &mut u64, polls: u64) -> Vec<Poll> {
    (0..polls)
        .map(|p| Poll {
            feed_id: feed_ids[(p as usize) % feed_ids.len()],
            items: (0..ITEMS_PER_FEED)
                .map(|_| {
                    *next += 1;
                    item(*next)
                })
                .collect(),
        })
        .collect()
}

/// Stores one poll as `refresh` does; returns how many items were new.
async fn store_poll(store: &Store, poll: &Poll) -> usize {
    let keys: Vec<String> = poll.items.iter().map(|p| p.key.clone()).collect();
    let known = store
        .known_items(poll.feed_id, &keys)
        .await
        .expect("known_items");
    let fresh: Vec<_> = poll
        .items
        .iter()
        .filter(|p| !known.contains(&p.key))
        .collect();
    let mut tx = store.begin().await.expect("begin");
    let urls: Vec<&str> = fresh
        .iter()
        .filter_map(|p| p.canonical.as_deref())
        .collect();
    let stories = tx.stories_for(&urls, NOW).await.expect("stories_for");
    let mut rows = Vec::with_capacity(fresh.len());
    for p in &fresh {
        let story_id = match p.canonical.as_deref().and_then(|u| stories.get(u)) {
            Some(id) => *id,
            None => tx.story_for(None, NOW).await.expect("story_for"),
        };
        rows.push((
            story_id,
            NewItem {
                item_key: &p.key,
                title: &p.item.title,
                url: p.item.link.as_ref().map(Url::as_str),
                published_at: p.item.published.map(|t| t.timestamp()),
                summary: &p.item.summary,
                authors: &p.item.authors,
                categories: &p.item.categories,
                language: p.item.language.as_deref(),
            },
        ));
    }
    let item_ids = tx
        .insert_items(poll.feed_id, &rows, NOW)
        .await
        .expect("insert_items");
    let mut stored = 0;
    for (p, (story_id, _)) in fresh.iter().zip(&rows) {
        let story_id = *story_id;
        let Some(&item_id) = item_ids.get(&p.key) else {
            continue;
        };
        stored += 1;
        if let Some((terms, highlights, body)) = &p.matched {
            let alert_id = uuid::Uuid::now_v7().to_string();
            let inserted = tx
                .insert_match(&NewMatch {
                    id: &alert_id,
                    story_id,
                    watchlist: "iran-china",
                    item_id,
                    terms_json: terms,
                    highlights_json: highlights,
                    created_at: NOW,
                })
                .await
                .expect("insert_match");
            if inserted {
                let outbox_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
                tx.insert_outbox(&outbox_id, &alert_id, "ops", body, NOW)
                    .await
                    .expect("insert_outbox");
            }
        }
    }
    let update = FeedUpdate {
        title: Some("Example Wire: World".to_owned()),
        etag: Some("\"5f2a-61c8\"".to_owned()),
        last_modified: None,
        next_due_at: NOW + 300,
        fetched_at: NOW,
    };
    tx.update_feed(poll.feed_id, &update)
        .await
        .expect("update_feed");
    tx.commit().await.expect("commit");
    stored
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("wirewatch.db");
    let (store, feed_ids) = rt.block_on(async {
        let store = Store::open(&path).await.expect("open the store");
        let names: Vec<(String, String)> = (0..FEEDS)
            .map(|i| {
                (
                    format!("feed-{i:03}"),
                    format!("https://feeds.example.com/{i}.xml"),
                )
            })
            .collect();
        let pairs: Vec<(&str, &str)> = names
            .iter()
            .map(|(n, u)| (n.as_str(), u.as_str()))
            .collect();
        store.sync_feeds(&pairs).await.expect("sync_feeds");
        let mut ids = Vec::with_capacity(pairs.len());
        for (name, _) in &pairs {
            let state = store.feed_state(name).await.expect("feed_state");
            ids.push(state.expect("the feed was just synced").id);
        }
        (store, ids)
    });

    let mut next = 0u64;
    let seed = polls(&feed_ids, &mut next, SEED_POLLS as u64);
    let started = Instant::now();
    rt.block_on(async {
        for poll in &seed {
            assert_eq!(store_poll(&store, poll).await, ITEMS_PER_FEED);
        }
    });
    eprintln!(
        "store: seeded {} items in {:.2} s ({} polls of {ITEMS_PER_FEED})",
        SEED_POLLS * ITEMS_PER_FEED,
        started.elapsed().as_secs_f64(),
        SEED_POLLS
    );
    // The last polls stored, re-polled unchanged by `store/duplicates`.
    let again = &seed[SEED_POLLS - FEEDS..];

    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(ITEMS_PER_FEED as u64));
    group.bench_function("new_items", |b| {
        b.iter_custom(|iters| {
            let batch = polls(&feed_ids, &mut next, iters);
            let started = Instant::now();
            rt.block_on(async {
                for poll in &batch {
                    assert_eq!(store_poll(&store, poll).await, ITEMS_PER_FEED);
                }
            });
            started.elapsed()
        });
    });
    group.bench_function("duplicates", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            rt.block_on(async {
                let started = Instant::now();
                for i in 0..iters as usize {
                    let stored = store_poll(&store, &again[i % again.len()]).await;
                    assert_eq!(black_box(stored), 0);
                }
                elapsed = started.elapsed();
            });
            elapsed
        });
    });
    group.finish();

    let bytes: u64 = std::fs::read_dir(dir.path())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    eprintln!(
        "store: {} items stored in all; database files {:.1} MB",
        next,
        bytes as f64 / 1e6
    );
    rt.block_on(store.close());
}

criterion_group!(benches, store);
criterion_main!(benches);
