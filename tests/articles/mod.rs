//! The shared article benchmark (`../shared/articles`: 97 article pages with hand-labelled
//! main text) and its score, for `tests/extraction.rs` and `examples/extraction.rs` (which
//! includes this file by path).
//!
//! Scored as the benchmark's README says: tokens are `\w+` runs (Unicode); each text is a
//! multiset of 4-token shingles; per page, true positives are the shingles both texts hold
//! (by count), false positives the extracted text's extra ones, false negatives the labelled
//! text's missing ones, each normalized by their sum; precision and recall are averaged over
//! the pages (a page with nothing to score is skipped) and F1 is taken from the two averages.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use regex::Regex;

/// One labelled page.
pub struct Page {
    /// The file's key (a hash), the ground truth's key.
    pub key: String,
    pub url: String,
    /// The page as fetched (gunzipped), bytes in whatever charset it came in.
    pub html: Vec<u8>,
    /// The main text a person marked.
    pub expected: String,
}

/// `../shared/articles` beside the repository, or `WIREWATCH_ARTICLES` when set.
pub fn articles_dir() -> PathBuf {
    match std::env::var_os("WIREWATCH_ARTICLES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/articles"),
    }
}

/// Every page of `dir` (`ground-truth.json` and `html/<key>.html.gz`), sorted by key.
pub fn load(dir: &Path) -> Result<Vec<Page>, String> {
    let truth_path = dir.join("ground-truth.json");
    let truth =
        std::fs::read(&truth_path).map_err(|e| format!("read {}: {e}", truth_path.display()))?;
    let truth: HashMap<String, serde_json::Value> = serde_json::from_slice(&truth)
        .map_err(|e| format!("parse {}: {e}", truth_path.display()))?;
    let mut pages = Vec::with_capacity(truth.len());
    for (key, entry) in truth {
        let path = dir.join("html").join(format!("{key}.html.gz"));
        let gz = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        let mut html = Vec::new();
        GzDecoder::new(&gz[..])
            .read_to_end(&mut html)
            .map_err(|e| format!("gunzip {}: {e}", path.display()))?;
        let text = |field: &str| entry[field].as_str().unwrap_or_default().to_string();
        pages.push(Page {
            url: text("url"),
            expected: text("articleBody"),
            key,
            html,
        });
    }
    pages.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(pages)
}

/// Precision and recall of one page, each `None` when it has nothing to score: precision
/// when the extracted text has no 4-token shingle, recall when the labelled one has none
/// (as the benchmark's own `evaluate.py` skips them).
pub fn page_score(words: &Regex, extracted: &str, expected: &str) -> (Option<f64>, Option<f64>) {
    let got = shingles(words, extracted);
    let want = shingles(words, expected);
    let mut tp = 0usize;
    let mut fp = 0usize;
    for (shingle, &n) in &got {
        let m = want.get(shingle).copied().unwrap_or(0);
        tp += n.min(m);
        fp += n.saturating_sub(m);
    }
    let fn_: usize = want
        .iter()
        .map(|(shingle, &m)| m.saturating_sub(got.get(shingle).copied().unwrap_or(0)))
        .sum();
    let total = (tp + fp + fn_).max(1) as f64;
    let (tp, fp, fn_) = (tp as f64 / total, fp as f64 / total, fn_ as f64 / total);
    let precision = (tp + fp > 0.0).then(|| tp / (tp + fp));
    let recall = (tp + fn_ > 0.0).then(|| tp / (tp + fn_));
    (precision, recall)
}

/// The `\w+` token regex (Unicode).
pub fn word_regex() -> Regex {
    Regex::new(r"\w+").unwrap_or_else(|e| panic!("word regex: {e}"))
}

fn shingles<'a>(words: &Regex, text: &'a str) -> HashMap<Vec<&'a str>, usize> {
    let tokens: Vec<&str> = words.find_iter(text).map(|m| m.as_str()).collect();
    let mut out = HashMap::new();
    for window in tokens.windows(4) {
        *out.entry(window.to_vec()).or_insert(0) += 1;
    }
    out
}

/// Averages of per-page precision and recall, and F1 from the two.
#[derive(Debug, Clone, Copy)]
pub struct Score {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

pub fn average(per_page: &[(Option<f64>, Option<f64>)]) -> Score {
    let mean = |values: Vec<f64>| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let precision = mean(per_page.iter().filter_map(|s| s.0).collect());
    let recall = mean(per_page.iter().filter_map(|s| s.1).collect());
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Score {
        precision,
        recall,
        f1,
    }
}
