//! Parse throughput: MB/s of `parse_feed` over the corpus's real-world feeds.
//!
//! Input: every `real-world-news` / `real-world` file of the shared corpus that
//! `parse_feed` accepts (the others, OPML lists and JSON documents that are not feeds,
//! are counted and left out, so the figure is about feeds). One iteration parses all of
//! them once, on one thread, with a base URL as the fetcher would give. Without the
//! corpus the bench prints a skip notice and measures nothing.
//!
//! Run: `cargo bench --bench parse -- --warm-up-time 1 --measurement-time 5`

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use url::Url;
use wirewatch::parse::parse_feed;

fn parse(c: &mut Criterion) {
    let Some(files) = common::real_world_feeds() else {
        common::skip_notice("parse");
        return;
    };
    let base = Url::parse("https://feeds.example.com/news/feed.xml").expect("a valid URL");
    let (mut feeds, mut rejected) = (Vec::new(), Vec::new());
    for file in &files {
        match parse_feed(&file.bytes, Some(&base)) {
            Ok(parsed) => feeds.push((file, parsed.items.len())),
            Err(err) => rejected.push(format!("{} ({})", file.path, err.kind())),
        }
    }
    let bytes: usize = feeds.iter().map(|(f, _)| f.bytes.len()).sum();
    let items: usize = feeds.iter().map(|(_, n)| n).sum();
    eprintln!(
        "parse: {} of {} real-world files parse: {:.1} MB, {items} items; left out: {}",
        feeds.len(),
        files.len(),
        common::mb(bytes),
        if rejected.is_empty() {
            "none".to_owned()
        } else {
            rejected.join(", ")
        }
    );

    let mut group = c.benchmark_group("parse");
    // One iteration is ~10 MB of feeds: a few hundred ms.
    group.sample_size(10);
    group.throughput(Throughput::BytesDecimal(bytes as u64));
    group.bench_function("real_world_feeds", |b| {
        b.iter(|| {
            for (file, _) in &feeds {
                let parsed = parse_feed(black_box(&file.bytes), Some(&base));
                black_box(parsed.ok());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
