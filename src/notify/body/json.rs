//! The `json` body: the `watchlist.match` event of SPEC §5, or the
//! `watchlist.story_grew` event of SPEC §10, in the same envelope.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Alert, rfc3339};

#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: String,
    pub data: &'a Alert<'a>,
}

/// The alert's event (`watchlist.match` or `watchlist.story_grew`) as JSON.
pub(super) fn body(alert: &Alert<'_>, at: DateTime<Utc>) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Event {
        kind: alert.event.as_str(),
        timestamp: rfc3339(at),
        data: alert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Field;
    use crate::matcher::Highlight;
    use crate::notify::body::{FeedPayload, ItemPayload, MAX_SUMMARY_BYTES, short_summary};

    #[test]
    fn the_body_has_the_shape_of_spec_section_5() {
        let highlights = vec![Highlight {
            field: Field::Title,
            term: "Iran".into(),
            snippet: "Iran and China sign".into(),
            start: 0,
            end: 4,
        }];
        let terms = vec!["China".to_string(), "Iran".to_string()];
        let at = DateTime::parse_from_rfc3339("2026-11-27T23:40:00Z")
            .unwrap()
            .to_utc();
        let body = body(
            &Alert {
                event: crate::notify::body::Event::Match,
                story: &crate::notify::body::StoryPayload {
                    id: "7".into(),
                    first_seen: "2026-11-27T23:40:00Z".into(),
                    feeds: 1,
                    items: 1,
                    sightings: Vec::new(),
                },
                alert_id: "0193",
                watchlist: "iran-china",
                terms: &terms,
                story_id: "7".into(),
                item: ItemPayload {
                    id: "guid:1",
                    title: "Iran and China sign",
                    url: Some("https://example.org/a"),
                    published: None,
                    summary: "s",
                    authors: &[],
                    categories: &[],
                    language: Some("en"),
                },
                feed: FeedPayload {
                    name: "f",
                    url: "https://example.org/rss",
                    title: None,
                },
                highlights: &highlights,
            },
            at,
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["type"], "watchlist.match");
        assert_eq!(value["timestamp"], "2026-11-27T23:40:00Z");
        assert_eq!(value["data"]["terms"], serde_json::json!(["China", "Iran"]));
        assert_eq!(value["data"]["item"]["published"], serde_json::Value::Null);
        assert_eq!(value["data"]["highlights"][0]["field"], "title");
        assert_eq!(value["data"]["highlights"][0]["end"], 4);
        assert_eq!(value["data"]["feed"]["title"], serde_json::Value::Null);
    }

    #[test]
    fn long_summaries_are_cut_on_a_character_boundary() {
        let text = "ایران".repeat(1000);
        let cut = short_summary(&text);
        assert!(cut.len() <= MAX_SUMMARY_BYTES);
        assert!(text.starts_with(cut));
    }
}
