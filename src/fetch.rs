//! The fetch stage: one HTTP GET of a feed, politely and within bounds.
//!
//! Input: a feed URL and the validators (ETag, Last-Modified) stored from the last fetch.
//! Output: a [`FetchOutcome`] — not modified, or the decoded body with its new validators —
//! or a classified [`FetchError`]. Built in two halves as miniflux does: a request builder
//! that adds the validators, and a response handler that decides what the answer means and
//! reads a capped body. The whole request, body included, runs under one deadline, and the
//! body is capped *after* decompression so a small gzip bomb cannot grow into gigabytes.

use std::time::Duration;

use reqwest::header::{self, HeaderMap};
use reqwest::{StatusCode, redirect};
use url::Url;

use crate::config::Poll;

/// At most this many redirects are followed (SPEC §9).
const MAX_REDIRECTS: usize = 5;

#[derive(Debug)]
pub enum FetchOutcome {
    /// 304: the stored validators still hold.
    NotModified,
    /// 200: a new body.
    Fetched(FetchedBody),
}

#[derive(Debug)]
pub struct FetchedBody {
    pub body: Vec<u8>,
    /// The URL after redirects, the base for relative links.
    pub final_url: Url,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Why a fetch failed, classified for the feed's row and for metrics.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("network: {0}")]
    Network(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("http status {0}")]
    Status(StatusCode),
    #[error("too large: the body exceeds {0} bytes after decompression")]
    TooLarge(u64),
}

impl FetchError {
    /// A short stable name of the class, for logs and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            FetchError::Network(_) => "network",
            FetchError::Timeout(_) => "timeout",
            FetchError::Status(_) => "http_status",
            FetchError::TooLarge(_) => "too_large",
        }
    }
}

/// Installs the TLS crypto provider once per process; reqwest is built without its own.
pub fn init_tls() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The redirect policy for feeds: at most five hops, never from https down to http.
fn redirect_policy() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let downgrade = attempt.previous().iter().any(|u| u.scheme() == "https")
            && attempt.url().scheme() == "http";
        if downgrade {
            return attempt.error("redirect from https to http refused");
        }
        attempt.follow()
    })
}

/// The feed fetcher: one connection pool shared by every feed.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    max_body: u64,
}

impl Fetcher {
    pub fn new(poll: &Poll) -> Result<Fetcher, reqwest::Error> {
        init_tls();
        let client = reqwest::Client::builder()
            .user_agent(poll.user_agent.clone())
            .redirect(redirect_policy())
            .timeout(poll.timeout)
            .connect_timeout(poll.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(poll.per_host)
            .build()?;
        Ok(Fetcher {
            client,
            timeout: poll.timeout,
            max_body: poll.max_body,
        })
    }

    /// GETs `url`, conditionally when validators are known.
    pub async fn fetch(
        &self,
        url: &Url,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<FetchOutcome, FetchError> {
        // reqwest's own timeout covers the body too; this outer one also bounds anything
        // reqwest does not count, so a trickling server is always cut off.
        match tokio::time::timeout(self.timeout, self.fetch_inner(url, etag, last_modified)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn fetch_inner(
        &self,
        url: &Url,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<FetchOutcome, FetchError> {
        let mut request = self.client.get(url.clone()).header(
            header::ACCEPT,
            "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
        );
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(last_modified) = last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, last_modified);
        }
        let response = request.send().await.map_err(|err| self.classify(err))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status(status));
        }
        let final_url = response.url().clone();
        let (etag, last_modified) = validators(response.headers());
        let body = self.read_capped(response).await?;
        Ok(FetchOutcome::Fetched(FetchedBody {
            body,
            final_url,
            etag,
            last_modified,
        }))
    }

    /// Reads the decoded body, refusing it as soon as it grows past the cap.
    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body)
        {
            return Err(FetchError::TooLarge(self.max_body));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| self.classify(err))? {
            if body.len() as u64 + chunk.len() as u64 > self.max_body {
                return Err(FetchError::TooLarge(self.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn classify(&self, err: reqwest::Error) -> FetchError {
        if err.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else {
            // The chain holds the useful part ("connection refused", "redirect ...");
            // URLs are stripped because they may carry credentials.
            FetchError::Network(error_chain(&err.without_url()))
        }
    }
}

fn validators(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    (get(header::ETAG), get(header::LAST_MODIFIED))
}

/// An error and its sources on one line, "a: b: c", skipping causes already quoted.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
