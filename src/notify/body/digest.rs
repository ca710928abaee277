//! Digest bodies (SPEC §11): the `watchlist.digest` event, and its chat messages.
//!
//! Input: a [`Digest`] of ranked stories. Output: the bodies to send, in order. The `json`
//! body is the event itself, one body for the whole digest. Slack, Discord and Teams get
//! the digest as one or more messages ("parts"): a heading (`Digest · energy · 12
//! stories`) with the period, over one entry per story in the digest's order: the title as
//! a link, `N outlets` when more than one feed carried the story, the terms, and the first
//! highlight's snippet that does not merely repeat the title.
//!
//! Each service's renderer (`slack.rs`, `discord.rs`, `teams.rs`) builds every entry once,
//! each within the service's limits for one element, and measures it in the units of the
//! limits that bind a whole message. [`pack`] then fills the parts in order, each with as
//! many stories as still fit, and never splits a story. When there is more than one part,
//! every heading says `part K of N`; room for the heading is kept at the widest numbering
//! the digest could get, so the number of parts is known before any part is rendered.

use std::ops::Range;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::text::{TIME_MAX, UNTITLED, clean, display_time, link, outlets};
use super::{Digest, DigestStory, Period, discord, rfc3339, slack, teams};
use crate::config::WebhookFormat;

/// A digest entry is one item of a list: its terms and snippet get less room than a single
/// alert's, in the service's length units (Teams doubles them, like its other caps).
pub(super) const DIGEST_TERMS_MAX: usize = 200;
pub(super) const DIGEST_SNIPPET_MAX: usize = 300;
/// The period: two times and a dash.
pub(super) const PERIOD_MAX: usize = 2 * TIME_MAX + 3;

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: &'a Digest<'a>,
}

pub(super) fn render(
    format: WebhookFormat,
    digest: &Digest<'_>,
    at: DateTime<Utc>,
) -> Result<Vec<String>, serde_json::Error> {
    match format {
        WebhookFormat::Json => Ok(vec![serde_json::to_string(&Envelope {
            kind: "watchlist.digest",
            timestamp: rfc3339(at),
            data: digest,
        })?]),
        WebhookFormat::Slack => slack::slack_digest(digest),
        WebhookFormat::Discord => discord::discord_digest(digest),
        WebhookFormat::Teams => teams::teams_digest(digest),
    }
}

/// What a chat digest shows of one story, as the feeds sent it (each service cleans,
/// escapes and cuts it).
pub(super) struct Entry<'a> {
    pub(super) title: &'a str,
    /// The first URL among the story's items that can be a link.
    pub(super) url: Option<&'a str>,
    /// `3 outlets`, when more than one feed carried the story.
    pub(super) outlets: Option<String>,
    pub(super) terms: &'a [String],
    /// The first highlight's snippet that shows more than the title: a hit in a short title
    /// makes a snippet that is the whole title again.
    pub(super) snippet: Option<&'a str>,
}

impl<'a> Entry<'a> {
    pub(super) fn of(story: &'a DigestStory) -> Entry<'a> {
        Entry {
            title: if clean(&story.title).is_empty() {
                UNTITLED
            } else {
                &story.title
            },
            url: story
                .items
                .iter()
                .find_map(|item| item.url.as_deref().and_then(link)),
            outlets: (story.feeds > 1).then(|| outlets(story.feeds)),
            terms: &story.terms,
            snippet: story
                .highlights
                .iter()
                .map(|highlight| highlight.snippet.as_str())
                .find(|snippet| {
                    let snippet = clean(snippet);
                    !snippet.is_empty() && snippet != clean(&story.title)
                }),
        }
    }
}

/// Which part of how many a message is: `None` when the digest is a single message.
pub(super) type PartNo = Option<(usize, usize)>;

/// `Digest · energy · 12 stories`, and ` · part 2 of 3` when the digest has several parts.
/// The watch-list comes escaped and cut by the caller; the rest needs no escaping in any
/// service.
pub(super) fn heading(watchlist: &str, stories: usize, part: PartNo) -> String {
    let noun = if stories == 1 { "story" } else { "stories" };
    let mut heading = format!("Digest · {watchlist} · {stories} {noun}");
    if let Some((k, n)) = part {
        heading.push_str(&format!(" · part {k} of {n}"));
    }
    heading
}

/// The numbering with the most digits a digest of `stories` can get: a part holds at least
/// one story, so there are never more parts than stories.
pub(super) fn widest(stories: usize) -> PartNo {
    let n = stories.max(1);
    Some((n, n))
}

/// `2026-11-27 08:00 UTC – 2026-11-28 08:00 UTC`, unescaped.
pub(super) fn period(period: &Period) -> String {
    format!(
        "{} – {}",
        display_time(&period.from),
        display_time(&period.to)
    )
}

/// Splits the stories, given what each costs, into parts: consecutive runs in order, each
/// taking stories while their costs add up to at most `room` and they number at most
/// `most` (at least one). A story that alone costs more than `room` gets a part of its
/// own. No stories make one empty part. Each part comes with its numbering.
pub(super) fn pack(costs: &[usize], room: usize, most: usize) -> Vec<(PartNo, Range<usize>)> {
    let most = most.max(1);
    let mut parts = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, &cost) in costs.iter().enumerate() {
        if i > start && (used + cost > room || i - start == most) {
            parts.push(start..i);
            start = i;
            used = 0;
        }
        used += cost;
    }
    parts.push(start..costs.len());
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(k, stories)| ((n > 1).then_some((k + 1, n)), stories))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_take_stories_in_order_while_they_fit() {
        let parts = pack(&[4, 4, 4, 9, 1, 1], 10, 100);
        let ranges: Vec<Range<usize>> = parts.iter().map(|(_, r)| r.clone()).collect();
        assert_eq!(ranges, [0..2, 2..3, 3..5, 5..6]);
        let numbers: Vec<PartNo> = parts.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            numbers,
            [Some((1, 4)), Some((2, 4)), Some((3, 4)), Some((4, 4))]
        );
    }

    #[test]
    fn parts_hold_at_most_so_many_stories() {
        let ranges: Vec<Range<usize>> = pack(&[0; 7], 10, 3).into_iter().map(|(_, r)| r).collect();
        assert_eq!(ranges, [0..3, 3..6, 6..7]);
    }

    #[test]
    fn a_story_too_big_for_any_part_gets_one_of_its_own() {
        let ranges: Vec<Range<usize>> = pack(&[1, 50, 1], 10, 100)
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(ranges, [0..1, 1..2, 2..3]);
    }

    #[test]
    fn one_part_is_not_numbered_and_no_stories_make_one_empty_part() {
        assert_eq!(pack(&[1, 2, 3], 10, 100), [(None, 0..3)]);
        assert_eq!(pack(&[], 10, 100), [(None, 0..0)]);
    }

    #[test]
    fn headings_count_stories_and_number_parts() {
        assert_eq!(heading("energy", 1, None), "Digest · energy · 1 story");
        assert_eq!(
            heading("energy", 12, Some((2, 3))),
            "Digest · energy · 12 stories · part 2 of 3"
        );
    }
}
