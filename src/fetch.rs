//! The fetch stage: one HTTP GET of a feed, politely and within bounds.
//!
//! Input: a feed URL and the validators (ETag, Last-Modified) stored from the last fetch.
//! Output: a [`FetchOutcome`] — not modified, or the decoded body with its new validators —
//! or a classified [`FetchError`]. Built in two halves as miniflux does: a request builder
//! that adds the validators, and a response handler that decides what the answer means and
//! reads a capped body. The whole request, body included, runs under one deadline, and the
//! body is capped *after* decompression so a small gzip bomb cannot grow into gigabytes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{self, HeaderMap};
use reqwest::{StatusCode, redirect};
use url::Url;

use tokio::sync::watch;

use crate::config::Poll;
use crate::guard;
use crate::http;
use crate::telemetry::error_chain;

/// At most this many redirects are followed (SPEC §9).
const MAX_REDIRECTS: usize = 5;

/// A body past this size is a large body: reading further takes one of the fetcher's
/// [`LARGE_BODY_SLOTS`], held until the body is parsed and dropped. Real feeds are far
/// smaller (66 KB on average in the corpus).
pub const LARGE_BODY: usize = 1 << 20;

/// Large bodies in memory at once, however many fetches are in flight and however many
/// cores parse: what hostile or huge documents hold at once stays `2 × (max_body + its
/// parse)`, on any machine. The wait for a slot does not count against the request's
/// deadline, so a large feed waits rather than times out; it waits at most
/// [`LARGE_BODY_WAIT`] (or `timeout`, if longer).
pub const LARGE_BODY_SLOTS: usize = 2;

/// The longest a large body waits for its slot when `timeout` is shorter.
pub const LARGE_BODY_WAIT: Duration = Duration::from_secs(60);

/// What a feed fetch asks for.
const FEED_ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5";
/// What an article fetch asks for.
const PAGE_ACCEPT: &str = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1";

#[derive(Debug)]
pub enum FetchOutcome {
    /// 304: the stored validators still hold. `fresh_for` as in [`FetchedBody`].
    NotModified { fresh_for: Option<Duration> },
    /// 200: a new body.
    Fetched(Box<FetchedBody>),
}

#[derive(Debug)]
pub struct FetchedBody {
    pub body: Vec<u8>,
    /// The large-body slot this body holds (see [`LARGE_BODY`]): keep it with the body
    /// until the body is dropped.
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The URL after redirects, the base for relative links.
    pub final_url: Url,
    /// Set when every redirect on the way was permanent (301/308): the feed's new home,
    /// already checked by the network guard hop by hop.
    pub moved_to: Option<Url>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The `Content-Type` header, whose charset the parser may need.
    pub content_type: Option<String>,
    /// How long the server says the document stays fresh (`Cache-Control: max-age`,
    /// else `Expires`): the feed is not fetched again sooner.
    pub fresh_for: Option<Duration>,
}

/// Why a fetch failed, classified for the feed's row and for metrics.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed: no connection, TLS, a reset, a broken body. The chain holds the
    /// useful part ("connection refused"); the URL is stripped, as it may carry
    /// credentials.
    #[error("network: {}", error_chain(.0))]
    Network(#[source] reqwest::Error),
    #[error("network: redirect to an invalid location: {0}")]
    BadLocation(#[source] url::ParseError),
    /// A redirect not followed: too many, or from https down to http.
    #[error("network: {0}")]
    Redirect(#[source] guard::HopError),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("http status {status}")]
    Status {
        status: StatusCode,
        /// From a 429 or 503: how long the server asks us to stay away.
        retry_after: Option<Duration>,
    },
    #[error("too large: the body exceeds {0} bytes after decompression")]
    TooLarge(u64),
    /// The network guard refused the target (SPEC §9): the message names the address,
    /// why it is not public and the setting that would allow it.
    #[error("{0}")]
    Forbidden(String),
}

impl FetchError {
    /// A short stable name of the class, for logs and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            FetchError::Network(_) | FetchError::BadLocation(_) | FetchError::Redirect(_) => {
                "network"
            }
            FetchError::Timeout(_) => "timeout",
            FetchError::Status { .. } => "http_status",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Forbidden(_) => "forbidden",
        }
    }

    /// [`FetchError::Forbidden`] when the network guard caused `err` (a refused name,
    /// connection or redirect hop), with the guard's own message: "refused: localhost
    /// resolves to 127.0.0.1, a loopback address (set ...)".
    pub fn forbidden(err: &reqwest::Error) -> Option<FetchError> {
        let refused = guard::refusal(err)?;
        Some(FetchError::Forbidden(if err.is_redirect() {
            format!("redirect {refused}")
        } else {
            refused.to_string()
        }))
    }
}

/// The feed fetcher: one connection pool shared by every feed.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    /// `None` when private networks are allowed.
    guard: Option<guard::Scope>,
    timeout: Duration,
    max_body: u64,
    /// Slots for bodies past [`LARGE_BODY`] ([`LARGE_BODY_SLOTS`]).
    large_bodies: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Fetcher {
    pub fn new(poll: &Poll) -> Result<Fetcher, reqwest::Error> {
        http::init_tls();
        // `None`: private networks are allowed, nothing to guard.
        let guard = (!poll.allow_private_networks).then_some(guard::Scope::Feeds);
        let builder = reqwest::Client::builder()
            .user_agent(poll.user_agent.clone())
            // Redirects are followed by `fetch_inner`, hop by hop, so each hop passes the
            // guard and a chain of permanent ones can move the feed.
            .redirect(redirect::Policy::none())
            // A proxy from the environment would connect on our behalf, past the guard.
            .no_proxy()
            // No overall timeout here: `fetch` keeps the deadline, which must stop while
            // a large body waits for its slot.
            .connect_timeout(poll.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(poll.per_host);
        let client = match guard {
            Some(scope) => guard::protect(builder, scope),
            None => builder,
        }
        .build()?;
        Ok(Fetcher {
            client,
            guard,
            timeout: poll.timeout,
            max_body: poll.max_body,
            large_bodies: std::sync::Arc::new(tokio::sync::Semaphore::new(LARGE_BODY_SLOTS)),
        })
    }

    /// GETs `url`, conditionally when validators are known.
    pub async fn fetch(
        &self,
        url: &Url,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<FetchOutcome, FetchError> {
        self.get(url, FEED_ACCEPT, etag, last_modified).await
    }

    /// GETs a web page (an item's article), under the same guard, redirect rules,
    /// deadline and size cap as a feed.
    pub async fn fetch_page(&self, url: &Url) -> Result<FetchOutcome, FetchError> {
        self.get(url, PAGE_ACCEPT, None, None).await
    }

    async fn get(
        &self,
        url: &Url,
        accept: &'static str,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<FetchOutcome, FetchError> {
        // One deadline for everything, body included, so a trickling server is always
        // cut off; `None` while a large body waits for its slot.
        let (deadline, mut moved) =
            watch::channel(Some(tokio::time::Instant::now() + self.timeout));
        let inner = self.fetch_inner(url, accept, etag, last_modified, &deadline);
        tokio::pin!(inner);
        loop {
            let at = *moved.borrow_and_update();
            tokio::select! {
                result = &mut inner => return result,
                _ = moved.changed() => {}
                // While stopped (`None`), the branch is off and its sleep never polled.
                _ = tokio::time::sleep_until(at.unwrap_or_else(tokio::time::Instant::now)), if at.is_some() => {
                    return Err(FetchError::Timeout(self.timeout));
                }
            }
        }
    }

    async fn fetch_inner(
        &self,
        url: &Url,
        accept: &'static str,
        etag: Option<&str>,
        last_modified: Option<&str>,
        deadline: &Deadline,
    ) -> Result<FetchOutcome, FetchError> {
        // An IP literal never reaches the guarded resolver: check it before connecting,
        // so a refused target learns nothing (not even whether a port is open).
        if let Some(scope) = self.guard {
            guard::check_url(url, scope)
                .map_err(|refused| FetchError::Forbidden(refused.to_string()))?;
        }
        let mut hops = vec![url.clone()];
        let mut permanent = true;
        let response = loop {
            let current = hops.last().unwrap_or(url);
            let mut request = self
                .client
                .get(current.clone())
                .header(header::ACCEPT, accept);
            if let Some(etag) = etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(last_modified) = last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, last_modified);
            }
            let response = request.send().await.map_err(|err| self.classify(err))?;
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let (true, Some(location)) = (
                status.is_redirection() && status != StatusCode::NOT_MODIFIED,
                location,
            ) else {
                break response;
            };
            let next = current.join(location).map_err(FetchError::BadLocation)?;
            guard::check_hop(&next, &hops, MAX_REDIRECTS, self.guard).map_err(|err| match err {
                guard::HopError::Refused(refused) => {
                    FetchError::Forbidden(format!("redirect {refused}"))
                }
                other => FetchError::Redirect(other),
            })?;
            permanent &= matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
            );
            hops.push(next);
        };
        let status = response.status();
        let now = crate::clock::now();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified {
                fresh_for: fresh_for(response.headers(), now),
            });
        }
        if !status.is_success() {
            let retry_after = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            )
            .then(|| http::retry_after(response.headers(), now))
            .flatten();
            return Err(FetchError::Status {
                status,
                retry_after,
            });
        }
        let final_url = response.url().clone();
        // Only a chain of permanent redirects moves the feed; one temporary hop means
        // the configured URL is still the one to ask.
        let moved_to = (hops.len() > 1 && permanent).then(|| final_url.clone());
        let headers = response.headers();
        let (etag, last_modified) = validators(headers);
        let content_type = header_text(headers, header::CONTENT_TYPE);
        let fresh_for = fresh_for(headers, now);
        let (body, slot) = self.read_capped(response, deadline).await?;
        Ok(FetchOutcome::Fetched(Box::new(FetchedBody {
            body,
            slot,
            final_url,
            moved_to,
            etag,
            last_modified,
            content_type,
            fresh_for,
        })))
    }

    /// Reads the decoded body, refusing it as soon as it grows past the cap. A body that
    /// grows past [`LARGE_BODY`] waits for a large-body slot before it grows further.
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        deadline: &Deadline,
    ) -> Result<(Vec<u8>, Option<tokio::sync::OwnedSemaphorePermit>), FetchError> {
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body)
        {
            return Err(FetchError::TooLarge(self.max_body));
        }
        let mut body = Vec::new();
        let mut slot = None;
        while let Some(chunk) = response.chunk().await.map_err(|err| self.classify(err))? {
            if body.len() as u64 + chunk.len() as u64 > self.max_body {
                return Err(FetchError::TooLarge(self.max_body));
            }
            if slot.is_none() && body.len() + chunk.len() > LARGE_BODY {
                // The deadline stops while the body waits, and goes on with the time it
                // had left.
                let left = deadline
                    .send_replace(None)
                    .map(|at| at.saturating_duration_since(tokio::time::Instant::now()));
                let most = self.timeout.max(LARGE_BODY_WAIT);
                let waited = tokio::time::timeout(most, self.large_bodies.clone().acquire_owned())
                    .await
                    .map_err(|_| FetchError::Timeout(most))?;
                deadline.send_replace(left.map(|left| tokio::time::Instant::now() + left));
                // The semaphore is never closed; without a slot the body is read anyway.
                slot = waited.ok();
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, slot))
    }

    fn classify(&self, err: reqwest::Error) -> FetchError {
        if let Some(forbidden) = FetchError::forbidden(&err) {
            return forbidden;
        }
        if err.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else {
            FetchError::Network(err.without_url())
        }
    }
}

/// The deadline of one fetch: when it ends, or `None` while it is stopped.
type Deadline = watch::Sender<Option<tokio::time::Instant>>;

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn validators(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    (
        header_text(headers, header::ETAG),
        header_text(headers, header::LAST_MODIFIED),
    )
}

/// Freshness from `Cache-Control: max-age` (which wins, as in RFC 9111), else `Expires`.
/// `no-cache`/`no-store` mean no hint.
fn fresh_for(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(control) = header_text(headers, header::CACHE_CONTROL) {
        let mut max_age = None;
        for directive in control.split(',').map(str::trim) {
            let directive = directive.to_ascii_lowercase();
            if directive == "no-cache" || directive == "no-store" {
                return None;
            }
            if let Some(secs) = directive.strip_prefix("max-age=") {
                max_age = secs.trim_matches('"').parse::<u64>().ok();
            }
        }
        if let Some(secs) = max_age {
            return Some(Duration::from_secs(secs));
        }
    }
    let at = http::date(&header_text(headers, header::EXPIRES)?)?;
    (at - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn freshness_prefers_max_age_then_expires_and_respects_no_cache() {
        let fresh = |pairs: &[(header::HeaderName, &str)]| fresh_for(&headers(pairs), now());
        assert_eq!(
            fresh(&[(header::CACHE_CONTROL, "public, max-age=600")]),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            fresh(&[
                (header::CACHE_CONTROL, "max-age=60"),
                (header::EXPIRES, "Sat, 28 Nov 2026 11:00:00 GMT")
            ]),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            fresh(&[(header::EXPIRES, "Sat, 28 Nov 2026 11:00:00 GMT")]),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            fresh(&[(header::EXPIRES, "Sat, 28 Nov 2026 09:00:00 GMT")]),
            None
        );
        assert_eq!(
            fresh(&[(header::CACHE_CONTROL, "no-cache, max-age=600")]),
            None
        );
        assert_eq!(fresh(&[(header::EXPIRES, "0")]), None);
    }

    /// Serves every connection one 200 with a body of `size` bytes.
    async fn serve_body(size: usize) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&vec![b' '; size]).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_large_body_waits_for_a_slot_and_holds_it_until_it_is_dropped() {
        // A deadline shorter than the wait below: the wait must not count against it.
        let config = crate::config::Config::from_source(
            std::path::Path::new("/tmp/t.toml"),
            "[poll]\nallow_private_networks = true\ntimeout = \"1s\"",
        )
        .unwrap();
        let fetcher = Fetcher::new(&config.poll).unwrap();
        let small = Url::parse(&format!("http://{}/small", serve_body(1000).await)).unwrap();
        let large = Url::parse(&format!(
            "http://{}/large",
            serve_body(LARGE_BODY + 1).await
        ))
        .unwrap();
        let slots = fetcher.large_bodies.available_permits();
        assert_eq!(slots, LARGE_BODY_SLOTS);

        // Every slot taken: a small body is read at once, a large one waits.
        let taken = fetcher
            .large_bodies
            .clone()
            .acquire_many_owned(slots as u32)
            .await
            .unwrap();
        match fetcher.fetch(&small, None, None).await {
            Ok(FetchOutcome::Fetched(body)) => assert!(body.slot.is_none()),
            other => panic!("{other:?}"),
        }
        let waiting = tokio::spawn({
            let (fetcher, large) = (fetcher.clone(), large.clone());
            async move { fetcher.fetch(&large, None, None).await }
        });
        // Longer than the whole request may take: the wait is not part of it.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!waiting.is_finished(), "a large body waits for a slot");

        drop(taken);
        let body = match waiting.await.unwrap() {
            Ok(FetchOutcome::Fetched(body)) => body,
            other => panic!("{other:?}"),
        };
        assert_eq!(body.body.len(), LARGE_BODY + 1);
        assert_eq!(
            fetcher.large_bodies.available_permits(),
            slots - 1,
            "held with the body"
        );
        drop(body);
        assert_eq!(fetcher.large_bodies.available_permits(), slots);
    }

    #[tokio::test]
    async fn a_network_failure_keeps_its_cause_and_never_shows_the_url() {
        let config = crate::config::Config::from_source(
            std::path::Path::new("/tmp/t.toml"),
            "[poll]\nallow_private_networks = true",
        )
        .unwrap();
        let fetcher = Fetcher::new(&config.poll).unwrap();
        // A port nothing listens on: bound, then closed.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let url = Url::parse(&format!("http://reader:s3cret@{addr}/feed?token=s3cret")).unwrap();

        let err = fetcher.fetch(&url, None, None).await.unwrap_err();
        assert!(matches!(err, FetchError::Network(_)), "{err:?}");
        assert_eq!(err.class(), "network");
        let source = std::error::Error::source(&err).expect("the cause is kept");
        assert!(source.downcast_ref::<reqwest::Error>().is_some());
        let text = err.to_string();
        assert!(text.starts_with("network: "), "{text}");
        assert!(
            text.contains("onnect"),
            "says the connection failed: {text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(error_chain(&err), text, "the chain adds nothing twice");
    }
}
