//! The story stage (SPEC §10): items that carry the same event, in any outlet, under any
//! URL, grouped into one story, so that a story alerts each watch-list once.
//!
//! [`fingerprint`] turns an item's text into shingles, decides whether two texts are the
//! same copy, and gives the MinHash band keys that index them.

pub mod fingerprint;

pub use fingerprint::{Conflict, Fingerprint, conflict};

/// The least [`Fingerprint::resemblance`] at which two items with no [`conflict`] are one
/// story. Chosen on the labelled pairs in `tests/data/stories/` (see BENCHMARKS.md).
pub const THRESHOLD: f64 = 0.8;

/// Whether two items' texts are the same story.
pub fn same_story(a: &Fingerprint, b: &Fingerprint) -> bool {
    a.resemblance(b) >= THRESHOLD && conflict(a, b).is_none()
}

#[cfg(test)]
mod tests;
