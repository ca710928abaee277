//! The labelled titles the language detector is measured on, shared by the load tool
//! (`examples/language`) and the accuracy floor in `src/language.rs`'s tests, which both
//! name the parse stage and the language module as `crate::parse` and `crate::language`.
//!
//! Three sources, in this order:
//!
//! 1. the real-world feeds of `../shared/corpus` whose items declare a language (and the
//!    few other documents declaring a [`SCARCE`] language): each
//!    title is labelled with the declared primary subtag. A feed whose titles, read
//!    together (a long text, where detection is sure), are in another language than
//!    declared is dropped whole: mojibake copies and feeds declaring `en` over another
//!    language. At most [`PER_FEED`] titles a feed, so one large feed does not make a
//!    language's whole set;
//! 2. the hand-written wire titles of `tests/data/stories/pairs.jsonl` (English, Persian,
//!    Chinese), labelled by the pair's `lang`;
//! 3. `tests/data/language/titles.tsv`, hand-written (the Arabic and Russian titles: the
//!    corpus has no Arabic news feed, and its documents declaring Russian have numbered
//!    quotes or English for titles).
//!
//! Titles are de-duplicated and capped at [`PER_LANGUAGE`] a language.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::language::{iso639_1, primary_subtag};
use crate::parse::parse_feed;

/// Languages with few real-world feeds in the corpus: a document declaring one of them is
/// taken from any category (edge cases included, conformance cases too) when it has at
/// least 10 items. This brings in Russian: iBash's windows-1251 feed and a Russian Atom
/// feed from feedparser's sanitizer cases.
const SCARCE: &[&str] = &["ru", "fa", "ar", "zh"];

/// At most this many titles from one feed.
pub const PER_FEED: usize = 40;
/// At most this many titles a language.
pub const PER_LANGUAGE: usize = 200;

/// One labelled title.
pub struct Title {
    pub title: String,
    /// The item's summary, else its content (empty for the hand-written titles but for
    /// the story pairs, which have a lede).
    pub body: String,
    /// The language the item or feed declared, as it was written (`en-US`); the label for
    /// the hand-written sources.
    pub declared: String,
    /// ISO 639-1.
    pub label: &'static str,
    /// `corpus`, `pairs` or `hand`.
    pub source: &'static str,
}

/// The labelled titles, or `None` when `../shared/corpus` is not beside the repository.
/// `dropped` receives the feeds left out and why.
pub fn labelled(repo: &Path, dropped: &mut Vec<String>) -> Option<Vec<Title>> {
    let corpus = repo.join("../shared/corpus");
    let manifest = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).ok()?;
    let mut titles = Vec::new();
    for line in manifest.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let (Some(path), Some(category), Some(language), Some(items)) =
            (fields.first(), fields.get(2), fields.get(5), fields.get(7))
        else {
            continue;
        };
        let scarce = SCARCE.iter().any(|scarce| language.starts_with(scarce))
            && items.parse::<usize>().is_ok_and(|items| items >= 10);
        if !category.starts_with("real-world") && !scarce {
            continue;
        }
        let Ok(body) = std::fs::read(corpus.join(path)) else {
            continue;
        };
        let Ok(feed) = parse_feed(&body, None) else {
            continue;
        };
        let items: Vec<_> = feed
            .items
            .into_iter()
            .filter(|item| !item.title.trim().is_empty())
            .filter_map(|item| {
                let declared = item.language.clone()?;
                let label = primary_subtag(&declared)?;
                Some((item, declared, label))
            })
            .collect();
        let Some((_, _, label)) = items.first() else {
            continue;
        };
        let label = *label;
        let together: String = items
            .iter()
            .map(|(item, _, _)| item.title.as_str())
            .collect::<Vec<_>>()
            .join(". ");
        let together: String = together.chars().take(5_000).collect();
        let whole = whatlang::detect(&together).map(|info| iso639_1(info.lang()));
        if whole != Some(label) {
            dropped.push(format!(
                "{path}: declares {label}, its titles read together are {}",
                whole.unwrap_or("unknown")
            ));
            continue;
        }
        for (item, declared, label) in items.into_iter().take(PER_FEED) {
            let body = if item.summary.is_empty() {
                item.content
            } else {
                item.summary
            };
            titles.push(Title {
                title: item.title,
                body,
                declared,
                label,
                source: "corpus",
            });
        }
    }
    let pairs = repo.join("tests/data/stories/pairs.jsonl");
    for line in std::fs::read_to_string(pairs).unwrap_or_default().lines() {
        let Ok(pair) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(label) = pair["lang"].as_str().and_then(primary_subtag) else {
            continue;
        };
        for side in ["a", "b"] {
            let (Some(title), Some(summary)) =
                (pair[side]["title"].as_str(), pair[side]["summary"].as_str())
            else {
                continue;
            };
            titles.push(Title {
                title: title.to_owned(),
                body: summary.to_owned(),
                declared: label.to_owned(),
                label,
                source: "pairs",
            });
        }
    }
    let hand = repo.join("tests/data/language/titles.tsv");
    for line in std::fs::read_to_string(hand).unwrap_or_default().lines() {
        let Some((lang, title)) = line.split_once('\t') else {
            continue;
        };
        let Some(label) = primary_subtag(lang) else {
            continue;
        };
        titles.push(Title {
            title: title.to_owned(),
            body: String::new(),
            declared: label.to_owned(),
            label,
            source: "hand",
        });
    }
    let mut seen = HashSet::new();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    titles.retain(|title| {
        if !seen.insert(title.title.trim().to_owned()) {
            return false;
        }
        let n = count.entry(title.label).or_default();
        *n += 1;
        *n <= PER_LANGUAGE
    });
    Some(titles)
}
