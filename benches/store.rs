//! Store throughput: items/s written with de-duplication by the commit stage, with one
//! feed per transaction and with many (group commit).
//!
//! Input: generated items shaped like wire copy (URL guid, tracking parameters on the link,
//! a 300-byte summary, an author, two categories), keyed with `dedup::item_key` and
//! `dedup::canonical_link` as the pipeline keys them; 10% of them match a watch-list with
//! one webhook. Output: criterion's elements/s, one element = one item.
//!
//! One poll is a feed of 50 items, stored the way `refresh` stores it: one `known_items`
//! look-up for the document's keys, then `commit::write` of the new ones (stories, items,
//! matches, outbox bodies rendered as JSON, the feed's new state: multi-row statements in
//! one `BEGIN IMMEDIATE` transaction). `store/new_items/1` writes each poll in its own
//! transaction, as when the daemon is quiet; `store/new_items/16` writes 16 polls per
//! transaction, as the commit stage does under load. `store/duplicates` polls a feed
//! already stored, so every item stops at `known_items` and the transaction only moves the
//! feed's schedule. The database is a real SQLite file (WAL, synchronous=NORMAL, as
//! `Store::open` sets it) in a temp dir, seeded with 10,000 items over 100 feeds first so
//! the indexes are not trivially small.
//!
//! Run: `cargo bench --bench store -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use url::Url;
use wirewatch::commit::{self, Candidate, FeedResult, Fetched};
use wirewatch::config::Config;
use wirewatch::dedup::item_key;
use wirewatch::matcher::{Examined, Field, Highlight, WatchlistMatch};
use wirewatch::parse::Item;
use wirewatch::store::{FeedUpdate, Store};

const ITEMS_PER_FEED: usize = 50;
const FEEDS: usize = 100;
/// Polls stored before measuring: 10,000 items.
const SEED_POLLS: usize = 200;
const NOW: i64 = 1_795_000_000;

/// One poll: a feed (index in the config, row id) and its document's items.
struct Poll {
    feed: usize,
    feed_id: i64,
    items: Vec<(Item, Option<WatchlistMatch>)>,
}

const SUMMARY: &str = "Negotiators from both sides met behind closed doors for a third day on \
    Wednesday as diplomats sought to narrow differences over sanctions relief and verification, \
    officials familiar with the talks said, adding that several technical issues remained \
    unresolved and that a further round could be scheduled for next week if progress is made.";

fn item(n: u64) -> (Item, Option<WatchlistMatch>) {
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
        article: String::new(),
    };
    let matched = n.is_multiple_of(10).then(|| WatchlistMatch {
        watchlist: 0,
        terms: vec!["Iran".to_owned()],
        highlights: vec![Highlight {
            field: Field::Summary,
            term: "Iran".to_owned(),
            snippet: SUMMARY[..120].to_owned(),
            start: 40,
            end: 44,
        }],
    });
    (item, matched)
}

/// Items numbered from `*next` on, `polls` feeds' worth, spread over the feeds.
fn polls(feed_ids: &[i64], next: &mut u64, polls: u64) -> Vec<Poll> {
    (0..polls)
        .map(|p| {
            let feed = (p as usize) % feed_ids.len();
            Poll {
                feed,
                feed_id: feed_ids[feed],
                items: (0..ITEMS_PER_FEED)
                    .map(|_| {
                        *next += 1;
                        item(*next)
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The new items of a poll, as `refresh` hands them to the commit stage.
async fn result(store: &Store, poll: &Poll) -> FeedResult {
    let keys: Vec<String> = poll.items.iter().map(|(item, _)| item_key(item)).collect();
    let known = store
        .known_items(poll.feed_id, &keys)
        .await
        .expect("known_items");
    // As a refresh does: the digests of every key of the document, for retention.
    let document_keys = Some(wirewatch::store::retention::document_keys(
        keys.iter().map(String::as_str),
    ));
    let candidates: Vec<Candidate> = poll
        .items
        .iter()
        .zip(keys)
        .filter(|(_, key)| !known.contains(key))
        .map(|((item, matched), key)| {
            let matches = matched.iter().cloned().collect();
            Candidate::new(
                key,
                item.clone(),
                Examined {
                    matches,
                    misses: Vec::new(),
                },
            )
        })
        .collect();
    let at: DateTime<Utc> = Utc.timestamp_opt(NOW, 0).single().expect("a valid time");
    FeedResult::Fetched(Box::new(Fetched {
        feed: poll.feed,
        feed_id: poll.feed_id,
        at,
        candidates,
        first_fetch: false,
        update: FeedUpdate {
            title: Some("Example Wire: World".to_owned()),
            etag: Some("\"5f2a-61c8\"".to_owned()),
            last_modified: None,
            next_due_at: NOW + 300,
            fetched_at: NOW,
            document_keys,
        },
    }))
}

/// Stores `polls` in transactions of `per_tx`; returns how many items were new.
async fn store_polls(store: &Store, config: &Config, polls: &[Poll], per_tx: usize) -> usize {
    let mut stored = 0;
    for group in polls.chunks(per_tx) {
        let mut results = Vec::with_capacity(group.len());
        for poll in group {
            results.push(result(store, poll).await);
        }
        for result in &results {
            if let FeedResult::Fetched(fetched) = result {
                stored += fetched.candidates.len();
            }
        }
        let refs: Vec<&FeedResult> = results.iter().collect();
        commit::write(store, config, &refs).await.expect("commit");
    }
    stored
}

fn config() -> Config {
    let mut text = String::from("[poll]\nbackfill = \"all\"\n");
    for i in 0..FEEDS {
        text.push_str(&format!(
            "\n[[feeds]]\nname = \"feed-{i:03}\"\nurl = \"https://feeds.example.com/{i}.xml\"\n"
        ));
    }
    text.push_str(
        "\n[[watchlists]]\nname = \"iran-china\"\nterms = [\"Iran\", \"China\"]\nwebhooks = [\"ops\"]\n\n[[webhooks]]\nname = \"ops\"\nurl = \"https://hooks.example.com/wirewatch\"\n",
    );
    Config::from_source(Path::new("bench.toml"), &text).expect("a valid bench config")
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("wirewatch.db");
    let config = config();
    let (store, feed_ids) = rt.block_on(async {
        let store = Store::open(&path).await.expect("open the store");
        let pairs: Vec<(&str, &str)> = config
            .feeds
            .iter()
            .map(|f| (f.name.as_str(), f.url.as_str()))
            .collect();
        store
            .register(&pairs, &[])
            .await
            .expect("register the feeds");
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
        let stored = store_polls(&store, &config, &seed, 1).await;
        assert_eq!(stored, SEED_POLLS * ITEMS_PER_FEED);
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
    for per_tx in [1, 16] {
        group.bench_with_input(
            BenchmarkId::new("new_items", per_tx),
            &per_tx,
            |b, &per_tx| {
                b.iter_custom(|iters| {
                    let batch = polls(&feed_ids, &mut next, iters);
                    let started = Instant::now();
                    rt.block_on(async {
                        let stored = store_polls(&store, &config, &batch, per_tx).await;
                        assert_eq!(stored, batch.len() * ITEMS_PER_FEED);
                    });
                    started.elapsed()
                });
            },
        );
    }
    group.bench_function("duplicates", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            rt.block_on(async {
                let started = Instant::now();
                for i in 0..iters as usize {
                    let poll = std::slice::from_ref(&again[i % again.len()]);
                    let stored = store_polls(&store, &config, poll, 1).await;
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
