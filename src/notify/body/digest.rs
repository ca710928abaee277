//! Digest bodies (SPEC §11): the `watchlist.digest` event, and its chat messages.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Digest, rfc3339};
use crate::config::WebhookFormat;

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
        // The chat formats are built by the digest renderers of each service.
        _ => Ok(vec![serde_json::to_string(&Envelope {
            kind: "watchlist.digest",
            timestamp: rfc3339(at),
            data: digest,
        })?]),
    }
}
