//! The story stage (SPEC §10): items that carry the same event, in any outlet, under any
//! URL, grouped into one story, so that a story alerts each watch-list once.
//!
//! [`fingerprint`] turns an item's text into shingles, decides whether two texts are the
//! same copy, and gives the MinHash band keys that index them; [`cluster`] finds the story
//! a new item joins among the indexed items that share a key with it. The commit stage
//! drives both, inside the transaction that stores the items (`src/commit.rs`), and the
//! store keeps the index (`story_bands`, `src/store/stories.rs`).

pub mod cluster;
pub mod fingerprint;

pub use cluster::Clusters;
pub use fingerprint::{Conflict, Fingerprint, conflict};

/// The least [`Fingerprint::resemblance`] at which two items with no [`conflict`] are one
/// story. Chosen on the labelled pairs in `tests/data/stories/` (see BENCHMARKS.md).
pub const THRESHOLD: f64 = 0.8;

/// Whether two items' texts are the same story at the default threshold.
pub fn same_story(a: &Fingerprint, b: &Fingerprint) -> bool {
    a.resemblance(b) >= THRESHOLD && conflict(a, b).is_none()
}

/// A summary shorter than this many words is a teaser: the article's opening is added to
/// it ([`lede`]).
const TEASER_WORDS: usize = 30;

/// How much of the article a teaser is followed by, in characters: about a lede.
pub const LEDE_CHARS: usize = 600;

/// The text after the title that the story stage compares: the summary, and after a
/// teaser (fewer than [`TEASER_WORDS`] words) the article's first [`LEDE_CHARS`]
/// characters, when a `full_text` feed read it. Copies with a one-line teaser are then
/// compared on their lede, as copies with a real summary are.
pub fn lede<'a>(summary: &'a str, article: &str) -> std::borrow::Cow<'a, str> {
    if article.is_empty() || summary.split_whitespace().nth(TEASER_WORDS - 1).is_some() {
        return summary.into();
    }
    let opening = match article.char_indices().nth(LEDE_CHARS) {
        Some((end, _)) => &article[..end],
        None => article,
    };
    format!("{summary} {opening}").into()
}

/// An item's text as the story stage compares and indexes it.
#[derive(Debug, Clone)]
pub struct StoryText {
    pub fingerprint: Fingerprint,
    /// [`Fingerprint::band_keys`].
    pub bands: Vec<i64>,
}

impl StoryText {
    /// The text of an item with this title and summary; `None` when it has no words to
    /// compare (such an item joins stories by its link only).
    pub fn of(title: &str, summary: &str) -> Option<StoryText> {
        let fingerprint = Fingerprint::of(title, summary);
        if fingerprint.is_empty() {
            return None;
        }
        let bands = fingerprint.band_keys();
        Some(StoryText { fingerprint, bands })
    }

    /// The band keys as stored on the item (`items.bands`): 8 bytes each, big-endian.
    pub fn bands_blob(&self) -> Vec<u8> {
        self.bands
            .iter()
            .flat_map(|key| key.to_be_bytes())
            .collect()
    }
}

/// The band keys of a stored `items.bands` value; trailing bytes short of a key are
/// ignored.
pub fn bands_of_blob(blob: &[u8]) -> Vec<i64> {
    blob.chunks_exact(8)
        .map(|chunk| {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(chunk);
            i64::from_be_bytes(bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests;
