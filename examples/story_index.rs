//! What the story stage's band index would cost on real feed text: fingerprints the items
//! of every real-world feed in `../shared/corpus` and reports how long a fingerprint takes,
//! how many earlier items each item meets in the band index (the candidates the text test
//! must then read), and how many of those the test merges.
//!
//! ```text
//! cargo run --release --example story_index [N]
//! ```
//!
//! With `N`, the first `N` pairs the text test merges are printed.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use wirewatch::stories::{Fingerprint, same_story};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let Ok(manifest) = std::fs::read_to_string(root.join("MANIFEST.tsv")) else {
        eprintln!("../shared/corpus not found: nothing to measure");
        return;
    };
    let mut texts: Vec<(String, String)> = Vec::new();
    for line in manifest.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let (Some(category), Some(path)) = (fields.get(2), fields.first()) else {
            continue;
        };
        if !category.starts_with("real-world") {
            continue;
        }
        let Ok(body) = std::fs::read(root.join(path)) else {
            continue;
        };
        if let Ok(parsed) = wirewatch::parse::parse_document(&body, None, None) {
            texts.extend(parsed.items.into_iter().map(|i| (i.title, i.summary)));
        }
    }
    texts.sort();
    texts.dedup();

    let started = Instant::now();
    let prints: Vec<Fingerprint> = texts
        .iter()
        .map(|(title, summary)| Fingerprint::of(title, summary))
        .collect();
    let fingerprinting = started.elapsed();
    let started = Instant::now();
    let keys: Vec<Vec<i64>> = prints.iter().map(Fingerprint::band_keys).collect();
    let banding = started.elapsed();

    // Items in arrival order: each meets the earlier items sharing a band key.
    let mut index: HashMap<i64, Vec<usize>> = HashMap::new();
    let (mut candidates, mut merged, mut most) = (0usize, 0usize, 0usize);
    // The first merges are printed, to be read.
    let shown: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for (i, item_keys) in keys.iter().enumerate() {
        let mut met: Vec<usize> = item_keys
            .iter()
            .filter_map(|k| index.get(k))
            .flatten()
            .copied()
            .collect();
        met.sort_unstable();
        met.dedup();
        candidates += met.len();
        most = most.max(met.len());
        for &j in &met {
            if same_story(&prints[i], &prints[j]) {
                merged += 1;
                if merged <= shown {
                    println!("merged: {:?}\n    and {:?}", texts[j].0, texts[i].0);
                }
            }
        }
        for k in item_keys {
            index.entry(*k).or_default().push(i);
        }
    }
    let n = texts.len().max(1);
    println!(
        "{} distinct items from the corpus's real-world feeds",
        texts.len()
    );
    println!(
        "fingerprint: {:.1} µs per item; band keys: {:.1} µs per item",
        fingerprinting.as_secs_f64() * 1e6 / n as f64,
        banding.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "band index: {:.2} earlier items met per item on average, {most} at most; {merged} pairs merged by the text test",
        candidates as f64 / n as f64
    );
}
