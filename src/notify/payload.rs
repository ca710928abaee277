//! The `json` webhook body of SPEC §5.
//!
//! Input: a stored match with its item, feed and highlights. Output: the exact bytes sent
//! on every attempt — the body is built once, when the match is committed, and frozen in
//! the outbox row, so retries and restarts resend identical, identically signed content.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::matcher::Highlight;

/// Longest summary carried in a payload, in bytes (cut on a character boundary).
const MAX_SUMMARY_BYTES: usize = 2048;

#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: String,
    pub data: &'a Alert<'a>,
}

#[derive(Debug, Serialize)]
pub struct Alert<'a> {
    pub alert_id: &'a str,
    pub watchlist: &'a str,
    pub terms: &'a [String],
    pub story_id: String,
    pub item: ItemPayload<'a>,
    pub feed: FeedPayload<'a>,
    pub highlights: &'a [Highlight],
}

#[derive(Debug, Serialize)]
pub struct ItemPayload<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub url: Option<&'a str>,
    pub published: Option<String>,
    pub summary: &'a str,
    pub authors: &'a [String],
    pub categories: &'a [String],
    pub language: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct FeedPayload<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub title: Option<&'a str>,
}

/// RFC 3339 in UTC with a `Z`, as receivers parse most easily.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A summary short enough for a notification, cut on a character boundary.
pub fn short_summary(summary: &str) -> &str {
    &summary[..summary.floor_char_boundary(MAX_SUMMARY_BYTES)]
}

/// The `watchlist.match` event as JSON.
pub fn json_body(alert: &Alert<'_>, at: DateTime<Utc>) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Event {
        kind: "watchlist.match",
        timestamp: rfc3339(at),
        data: alert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Field;

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
        let body = json_body(
            &Alert {
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
