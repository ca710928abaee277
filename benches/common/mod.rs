//! What the benches share: the real-world feeds of the shared corpus.
//!
//! Input: `../shared/corpus/MANIFEST.tsv` beside the crate (never copied into the repo).
//! Output: the raw bytes of every file the manifest files under `real-world-news` or
//! `real-world`, with the language the manifest declares; `None` when the corpus is not
//! there, so each bench can print a skip notice instead of failing.

// Each bench compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Where the shared corpus lives, relative to this crate.
pub const CORPUS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");

/// One corpus file.
pub struct CorpusFeed {
    /// Relative to the corpus directory.
    pub path: String,
    /// The manifest's `language` column; empty when it declares none.
    pub language: String,
    pub bytes: Vec<u8>,
}

/// The corpus's real-world feeds (both categories), in manifest order; `None` when the
/// corpus or its manifest is missing.
pub fn real_world_feeds() -> Option<Vec<CorpusFeed>> {
    let dir = Path::new(CORPUS_DIR);
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).ok()?;
    let mut feeds = Vec::new();
    // Columns: path, source, category, format, declared_encoding, language, ...
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(path), Some(category)) = (cols.first(), cols.get(2)) else {
            continue;
        };
        if !matches!(*category, "real-world-news" | "real-world") {
            continue;
        }
        let full: PathBuf = dir.join(path);
        let Ok(bytes) = std::fs::read(&full) else {
            eprintln!(
                "note: corpus file {} is listed but unreadable",
                full.display()
            );
            continue;
        };
        feeds.push(CorpusFeed {
            path: (*path).to_owned(),
            language: cols.get(5).copied().unwrap_or_default().to_owned(),
            bytes,
        });
    }
    (!feeds.is_empty()).then_some(feeds)
}

/// The notice a bench prints when the corpus is missing.
pub fn skip_notice(bench: &str) {
    eprintln!("{bench}: skipped: the shared corpus is not at {CORPUS_DIR}");
}

/// Megabytes, for the one-line summaries the benches print before measuring.
pub fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}
