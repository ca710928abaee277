//! What the two HTTP clients (the fetcher and the webhook notifier) share: the TLS set-up
//! and the reading of HTTP dates and `Retry-After`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{self, HeaderMap};

/// Installs the TLS crypto provider once per process; reqwest is built without its own.
pub fn init_tls() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP date (`Expires`, `Retry-After`, `Last-Modified`): the IMF-fixdate of RFC 9110
/// and the two obsolete forms it still asks to accept, else any RFC 2822 date, as servers
/// also send (`+0000` for `GMT`, a one-digit day, no weekday).
pub fn date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    match httpdate::parse_http_date(text) {
        Ok(at) => Some(DateTime::<Utc>::from(at)),
        Err(_) => DateTime::parse_from_rfc2822(text)
            .ok()
            .map(|at| at.to_utc()),
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (a date in the past means now).
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = date(value)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let at = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            retry_after(&headers, now())
        };
        assert_eq!(at("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            at("Sat, 28 Nov 2026 10:01:30 GMT"),
            Some(Duration::from_secs(90))
        );
        // The obsolete forms an HTTP date may still take.
        assert_eq!(
            at("Saturday, 28-Nov-26 10:01:30 GMT"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            at("Sat Nov 28 10:01:30 2026"),
            Some(Duration::from_secs(90))
        );
        // RFC 2822 dates that are not HTTP dates, as servers send them.
        assert_eq!(
            at("Sat, 28 Nov 2026 10:01:30 +0000"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            at("28 Nov 2026 11:01:30 +0100"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(at("Fri, 27 Nov 2026 10:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(at("soon"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now()), None);
    }
}
