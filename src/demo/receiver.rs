//! The demo's webhook receiver: on 127.0.0.1, it verifies each alert's Standard Webhooks
//! signature as any receiver would (HMAC-SHA256 with the webhook's secret, compared in
//! constant time by `hmac`), records what it was sent, and answers 204, or 401 for a bad
//! signature.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Secret;

use super::serve;

/// One alert as the receiver saw it.
#[derive(Debug, Clone)]
pub(super) struct Alert {
    pub(super) verified: bool,
    pub(super) watchlist: String,
    pub(super) terms: Vec<String>,
    pub(super) title: String,
    pub(super) feed: String,
    /// `data.story.id`: the story the alert is about, as the store numbers it.
    pub(super) story: Option<i64>,
    /// (field, term, snippet)
    pub(super) highlights: Vec<(String, String, String)>,
}

struct ReceiverState {
    secret: Secret,
    received: Mutex<Vec<Alert>>,
}

pub(super) struct Receiver {
    pub(super) addr: std::net::SocketAddr,
    state: Arc<ReceiverState>,
    pub(super) task: JoinHandle<()>,
}

impl Receiver {
    pub(super) async fn start(
        secret: Secret,
        stop: &CancellationToken,
    ) -> anyhow::Result<Receiver> {
        let state = Arc::new(ReceiverState {
            secret,
            received: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let (addr, task) = serve(app, stop).await?;
        Ok(Receiver { addr, state, task })
    }

    /// Every alert so far, sorted by feed and title so the output reads the same each run.
    pub(super) fn received(&self) -> Vec<Alert> {
        let mut alerts = self
            .state
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        alerts.sort_by(|a, b| (&a.feed, &a.title).cmp(&(&b.feed, &b.title)));
        alerts
    }
}

/// Verifies the signature as any Standard Webhooks receiver would, records the alert, and
/// answers 204, or 401 for a bad signature (wirewatch then retries it).
async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let verified = verify(&state.secret, &headers, &body, Utc::now().timestamp());
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let data = &event["data"];
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_string();
    let alert = Alert {
        verified,
        watchlist: text(&data["watchlist"]),
        terms: data["terms"]
            .as_array()
            .map(|terms| terms.iter().map(text).collect())
            .unwrap_or_default(),
        title: text(&data["item"]["title"]),
        feed: text(&data["feed"]["name"]),
        story: data["story"]["id"].as_str().and_then(|id| id.parse().ok()),
        highlights: data["highlights"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|h| (text(&h["field"]), text(&h["term"]), text(&h["snippet"])))
                    .collect()
            })
            .unwrap_or_default(),
    };
    state
        .received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(alert);
    if verified {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    }
}

/// Standard Webhooks verification: one of the `v1,` signatures of `webhook-signature` is
/// the HMAC of `{webhook-id}.{webhook-timestamp}.{body}`, and the timestamp is within five
/// minutes of `now` (an old message replayed is refused).
fn verify(secret: &Secret, headers: &HeaderMap, body: &[u8], now: i64) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(at) = timestamp.parse::<i64>() else {
        return false;
    };
    if (now - at).abs() > 300 {
        return false;
    }
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.key()) else {
        return false;
    };
    mac.update(format!("{id}.{at}.").as_bytes());
    mac.update(body);
    signatures.split_whitespace().any(|given| {
        // `v1,<base64>`; other versions and schemes are not ours to check.
        let tag = given
            .strip_prefix("v1,")
            .and_then(|tag| base64::engine::general_purpose::STANDARD.decode(tag).ok());
        // Compared in constant time, so response times do not reveal how much of a
        // forged signature was right.
        tag.is_some_and(|tag| mac.clone().verify_slice(&tag).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::sign;

    fn signed(secret: &Secret, id: &str, at: i64, body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert("webhook-timestamp", at.to_string().parse().unwrap());
        let signature = format!("v1,bogus {}", sign::signature(secret, id, at, body));
        headers.insert("webhook-signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn the_receiver_accepts_a_good_signature_and_nothing_else() {
        let secret = Secret::parse(&crate::demo::random_secret()).unwrap();
        let now = 1_800_000_000;
        let headers = signed(&secret, "msg_1", now, b"{}");
        assert!(verify(&secret, &headers, b"{}", now + 10));
        assert!(!verify(&secret, &headers, b"{ }", now), "another body");
        assert!(!verify(&secret, &headers, b"{}", now + 600), "too old");
        let other = Secret::parse(&crate::demo::random_secret()).unwrap();
        assert!(!verify(&other, &headers, b"{}", now), "another key");
        assert!(!verify(&secret, &HeaderMap::new(), b"{}", now), "unsigned");
    }
}
