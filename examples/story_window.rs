//! What placing a new item in its story costs as the `[stories] window` fills up: a real
//! store (SQLite file, the commit stage's own statements) holding N indexed items, and
//! the look-up each new matched item makes in the commit stage (its fingerprint and band
//! keys → neighbours in the window → their fingerprints → the text test), timed for copies
//! of stored items and for new stories.
//!
//! ```text
//! cargo run --release --example story_window -- 100000 400000 1000000
//! ```
//!
//! Each argument is a size the window is filled to, in turn (default 100000). The texts
//! are generated: 10-word titles and 35-word ledes drawn from 5,000 words (seeded, so
//! every run stores the same). At 100,000 feeds, the load tool's steady state (1% of the
//! feeds get a new matching item every five minutes) puts 864,000 matched items in a 72 h
//! window; real feeds, where a few percent of items match, put fewer.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use wirewatch::store::{ItemRow, NewItem, Store};
use wirewatch::stories::{Clusters, Fingerprint, StoryText, THRESHOLD};

const WORDS: usize = 5_000;
/// Items stored per transaction while filling.
const FILL_BATCH: usize = 2_000;
/// New items looked up per size: half copies, half new stories.
const LOOKUPS: usize = 1_000;

fn word(rng: &mut StdRng) -> String {
    format!("w{}", rng.random_range(0..WORDS))
}

fn text(rng: &mut StdRng) -> (String, String) {
    let title: Vec<String> = (0..10).map(|_| word(rng)).collect();
    let lede: Vec<String> = (0..35).map(|_| word(rng)).collect();
    (title.join(" "), lede.join(" "))
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000]
    } else {
        sizes
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("wirewatch.db");
    let store = Store::open(&path).await.expect("open the store");
    store
        .register(&[("wire", "https://wire.example/rss")], &[])
        .await
        .expect("register");
    let feed = store
        .feed_state("wire")
        .await
        .expect("read")
        .expect("the feed")
        .id;
    let mut rng = StdRng::seed_from_u64(13);
    let mut stored: Vec<(String, String)> = Vec::new();
    let now = 1_800_000_000;
    for size in sizes {
        let started = Instant::now();
        while stored.len() < size {
            let batch: Vec<(String, String)> = (0..FILL_BATCH.min(size - stored.len()))
                .map(|_| text(&mut rng))
                .collect();
            let first = stored.len();
            store
                .transaction(async |tx| {
                    let texts: Vec<StoryText> = batch
                        .iter()
                        .map(|(t, s)| StoryText::of(t, s).expect("words"))
                        .collect();
                    let keys: Vec<String> = (first..first + batch.len())
                        .map(|n| format!("k{n}"))
                        .collect();
                    let first_story = tx.last_story_id().await? + 1;
                    let stories: Vec<i64> =
                        (first_story..first_story + batch.len() as i64).collect();
                    tx.insert_stories(&stories, now).await?;
                    let rows: Vec<ItemRow> = batch
                        .iter()
                        .zip(&texts)
                        .zip(&keys)
                        .zip(&stories)
                        .map(|((((title, summary), text), key), story)| ItemRow {
                            feed_id: feed,
                            story_id: *story,
                            matched: true,
                            watchlists: None,
                            bands: Some(text.bands_blob()),
                            item: NewItem {
                                item_key: key,
                                title,
                                url: None,
                                published_at: None,
                                summary,
                                content: "",
                                article: "",
                                authors: &[],
                                categories: &[],
                                language: None,
                            },
                        })
                        .collect();
                    let ids = tx.insert_items(&rows, now).await?;
                    let bands: Vec<(i64, &[i64])> = keys
                        .iter()
                        .zip(&texts)
                        .map(|(key, text)| (ids[&(feed, key.clone())], text.bands.as_slice()))
                        .collect();
                    tx.insert_bands(&bands).await
                })
                .await
                .expect("fill");
            stored.extend(batch);
        }
        let filling = started.elapsed();

        // Copies (one word of the lede changed) of stored items, and new texts.
        let mut copies = 0;
        let mut lookups = Vec::with_capacity(LOOKUPS);
        let mut met = 0;
        for n in 0..LOOKUPS {
            let (title, summary) = if n % 2 == 0 {
                let (title, summary) = &stored[rng.random_range(0..stored.len())];
                let mut words: Vec<String> = summary.split(' ').map(str::to_string).collect();
                let at = rng.random_range(0..words.len());
                words[at] = word(&mut rng);
                (title.clone(), words.join(" "))
            } else {
                text(&mut rng)
            };
            // Timed inside the transaction, as the commit stage runs it: the transaction's
            // own begin and commit are shared by a whole batch there.
            let (neighbours, found, took) = store
                .transaction(async |tx| {
                    let started = Instant::now();
                    let text = StoryText::of(&title, &summary).expect("words");
                    let neighbours = tx.band_neighbours(&text.bands, now - 72 * 3600).await?;
                    let prints: Vec<Fingerprint> = neighbours
                        .iter()
                        .map(|n| Fingerprint::of(&n.title, &n.summary))
                        .collect();
                    let mut clusters = Clusters::new(THRESHOLD);
                    for (n, print) in neighbours.iter().zip(&prints) {
                        clusters.add(n.story_id, &n.keys, print);
                    }
                    let found = clusters.find(&text);
                    Ok((neighbours.len(), found, started.elapsed()))
                })
                .await
                .expect("look up");
            lookups.push(took);
            met += neighbours;
            if n % 2 == 0 && found.is_some() {
                copies += 1;
            }
        }
        lookups.sort_unstable();
        let at = |q: f64| lookups[((lookups.len() - 1) as f64 * q) as usize];
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(path.with_extension("db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        println!(
            "{size} items in the window ({:.0} s to fill, {:.0} MB on disk, {:.0} bytes per item): \
             look-up p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs; {:.2} neighbours per look-up; \
             {copies} of {} copies found their story",
            filling.as_secs_f64(),
            bytes as f64 / 1e6,
            bytes as f64 / size as f64,
            micros(at(0.5)),
            micros(at(0.99)),
            micros(at(1.0)),
            met as f64 / LOOKUPS as f64,
            LOOKUPS / 2,
        );
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
