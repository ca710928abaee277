//! Which story a new item joins by its text: the items already indexed that share a band
//! key with it, compared one by one.
//!
//! Input: the indexed items (within the window) that share a key with any new item of a
//! commit, then each new item in commit order. Output: for each new item, the story of the
//! most resembling item that is the same story, if any. New items are added as they are
//! placed, so that two copies of one story in the same commit meet each other.
//!
//! The choice is deterministic: the highest resemblance wins, and between equal ones the
//! older story (the smaller id).

use std::collections::HashMap;

use super::{Fingerprint, StoryText, conflict};

/// The band index of one commit: the stored items its new items may join, and the new
/// items placed so far.
pub struct Clusters<'a> {
    threshold: f64,
    /// Band key → indices into `members`.
    index: HashMap<i64, Vec<usize>>,
    members: Vec<Member<'a>>,
}

struct Member<'a> {
    story: i64,
    fingerprint: &'a Fingerprint,
}

impl<'a> Clusters<'a> {
    /// An empty index; two texts are one story at [`Fingerprint::resemblance`] of at least
    /// `threshold` and no [`conflict`].
    pub fn new(threshold: f64) -> Clusters<'a> {
        Clusters {
            threshold,
            index: HashMap::new(),
            members: Vec::new(),
        }
    }

    /// Adds an item of `story` under the band `keys` given.
    pub fn add(&mut self, story: i64, keys: &[i64], fingerprint: &'a Fingerprint) {
        let member = self.members.len();
        self.members.push(Member { story, fingerprint });
        for &key in keys {
            let list = self.index.entry(key).or_default();
            if list.last() != Some(&member) {
                list.push(member);
            }
        }
    }

    /// The story `text` belongs to: of the items sharing a band key with it, the one it
    /// resembles most among those that are the same story.
    pub fn find(&self, text: &StoryText) -> Option<i64> {
        let mut seen: Vec<usize> = text
            .bands
            .iter()
            .filter_map(|key| self.index.get(key))
            .flatten()
            .copied()
            .collect();
        seen.sort_unstable();
        seen.dedup();
        let mut best: Option<(f64, i64)> = None;
        for member in seen.into_iter().map(|i| &self.members[i]) {
            let resemblance = text.fingerprint.resemblance(member.fingerprint);
            if resemblance < self.threshold
                || conflict(&text.fingerprint, member.fingerprint).is_some()
            {
                continue;
            }
            let better = match best {
                None => true,
                Some((r, story)) => resemblance > r || (resemblance == r && member.story < story),
            };
            if better {
                best = Some((resemblance, member.story));
            }
        }
        best.map(|(_, story)| story)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stories::THRESHOLD;

    fn text(title: &str, summary: &str) -> StoryText {
        StoryText::of(title, summary).expect("the text has words")
    }

    const LEDE: &str = "Iran and China signed a 25-year cooperation agreement in Tehran on \
                        Saturday, covering oil, banking and ports, officials said, in a deal \
                        that deepens ties between the two countries.";

    #[test]
    fn a_copy_joins_the_story_it_resembles_and_a_stranger_starts_its_own() {
        let wire = text("Iran and China sign 25-year cooperation pact", LEDE);
        let copy = text(
            "UPDATE 1-Iran and China sign 25-year cooperation pact - Reuters",
            LEDE,
        );
        let other = text(
            "Japan's exports climb for a third month",
            "Japanese exports rose in October on demand for cars and chips, data showed.",
        );
        let mut clusters = Clusters::new(THRESHOLD);
        clusters.add(7, &wire.bands, &wire.fingerprint);
        assert_eq!(clusters.find(&copy), Some(7));
        assert_eq!(clusters.find(&other), None);
    }

    #[test]
    fn an_opposite_event_with_the_same_names_stays_apart() {
        let resume = text(
            "Iran nuclear talks resume in Vienna",
            "Talks between Iran and world powers on reviving the 2015 nuclear deal resume in Vienna on Monday, diplomats said.",
        );
        let end = text(
            "Iran nuclear talks end in Vienna",
            "Talks between Iran and world powers on reviving the 2015 nuclear deal end in Vienna on Monday, diplomats said.",
        );
        let mut clusters = Clusters::new(THRESHOLD);
        clusters.add(1, &resume.bands, &resume.fingerprint);
        assert_eq!(clusters.find(&end), None);
    }

    #[test]
    fn the_most_resembling_story_wins_and_equal_ones_go_to_the_older_story() {
        let wire = text("Iran and China sign 25-year cooperation pact", LEDE);
        let mut clusters = Clusters::new(THRESHOLD);
        // The same text in two stories (as two stores' worth of history might hold it):
        // the older one is chosen, whatever the order they were added in.
        clusters.add(9, &wire.bands, &wire.fingerprint);
        clusters.add(4, &wire.bands, &wire.fingerprint);
        assert_eq!(clusters.find(&wire), Some(4));

        // One word changed (not a text holding the other whole, which resembles it fully).
        let edited = text(
            "Iran and China sign 25-year cooperation pact",
            &LEDE.replace("banking", "finance"),
        );
        let resemblance = wire.fingerprint.resemblance(&edited.fingerprint);
        assert!((THRESHOLD..1.0).contains(&resemblance), "{resemblance}");
        let mut clusters = Clusters::new(THRESHOLD);
        clusters.add(2, &edited.bands, &edited.fingerprint);
        clusters.add(3, &wire.bands, &wire.fingerprint);
        assert_eq!(clusters.find(&wire), Some(3), "the identical text wins");
    }

    #[test]
    fn a_stricter_threshold_keeps_an_edited_copy_apart() {
        let wire = text("Iran and China sign 25-year cooperation pact", LEDE);
        let edited = text(
            "Iran, China sign 25-year cooperation pact",
            "Iran and China signed a 25-year cooperation agreement in Tehran on Saturday, \
             covering oil and ports, officials said.",
        );
        let resemblance = wire.fingerprint.resemblance(&edited.fingerprint);
        assert!(resemblance < 1.0, "{resemblance}");
        let mut loose = Clusters::new(resemblance.min(THRESHOLD));
        loose.add(1, &wire.bands, &wire.fingerprint);
        assert_eq!(loose.find(&edited), Some(1));
        let mut strict = Clusters::new(1.0);
        strict.add(1, &wire.bands, &wire.fingerprint);
        assert_eq!(strict.find(&edited), None);
    }
}
