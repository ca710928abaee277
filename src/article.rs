//! The article stage (SPEC §13): for a `full_text` feed, each new item's linked page is
//! fetched and its main text extracted, to be matched as the field `article`.
//!
//! Input: the new items of one refresh (those the feed did not hold), and the canonical
//! links already carried by a stored story. Output: the same items, each with its
//! `article` text when its page could be fetched and read in time.
//!
//! Politeness and safety: a page is fetched by the feeds' own [`Fetcher`] (the network
//! guard on every connection and redirect hop, at most 5 redirects, no https→http, the
//! request deadline `poll.timeout`, the decoded-size cap `poll.max_body`); at most
//! `poll.article_concurrency` pages are in flight over all feeds, and at most
//! `poll.per_host` on one host. A page is never fetched for an item whose canonical link a
//! stored story already carries: that story was read (or tried) when it began, and its
//! items are sightings that alert nothing.
//!
//! Where the wait goes: the refresh of a `full_text` feed waits for its new items' pages,
//! all in parallel within the limits above, for at most `poll.timeout` in all; a page not
//! read by then (or failing) leaves its item matched on the feed's own text. The feed
//! itself was fetched and parsed before any page is asked for, so articles never delay the
//! feed's fetch, and a feed with no new items fetches nothing more. Extraction is CPU work
//! and runs on a blocking thread.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use url::Url;

use crate::config::Poll;
use crate::extract::{self, ExtractError, Extracted};
use crate::fetch::{FetchError, FetchOutcome, Fetcher};
use crate::metrics;
use crate::parse::Item;

/// Why an article could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArticleError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A 304 to a request that sent no validators: a broken server.
    #[error("the server answered 304 Not Modified to an unconditional request")]
    NotModified,
    #[error("the page has no readable main text: {0}")]
    Extract(#[from] ExtractError),
    /// The extraction thread failed (a panic in the extractor).
    #[error("extraction failed: {0}")]
    Crashed(String),
}

impl ArticleError {
    /// The outcome label of `wirewatch_article_fetches_total`.
    pub fn class(&self) -> &'static str {
        match self {
            ArticleError::Fetch(err) => err.class(),
            ArticleError::NotModified => "http_status",
            ArticleError::Extract(_) | ArticleError::Crashed(_) => "unreadable",
        }
    }
}

/// Fetches and reads article pages, within the limits of `[poll]`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Articles {
    fetcher: Fetcher,
    /// `poll.article_concurrency` slots over all feeds.
    slots: Arc<Semaphore>,
    /// `poll.per_host` slots per host, made on first use and dropped when idle.
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    per_host: usize,
    /// How long a refresh waits for its articles, all together.
    wait: Duration,
}

impl Articles {
    pub fn new(poll: &Poll) -> Result<Articles, reqwest::Error> {
        Ok(Articles {
            fetcher: Fetcher::new(poll)?,
            slots: Arc::new(Semaphore::new(poll.article_concurrency)),
            hosts: Arc::new(Mutex::new(HashMap::new())),
            per_host: poll.per_host,
            wait: poll.timeout,
        })
    }

    /// Fetches and reads one page.
    pub async fn read(&self, url: &Url) -> Result<Extracted, ArticleError> {
        let _slot = self.slots.acquire().await;
        let host = url.host_str().unwrap_or_default().to_owned();
        let per_host = self.host_slots(&host);
        let _host_slot = per_host.acquire().await;
        let fetched = self.fetcher.fetch_page(url).await;
        drop(_host_slot);
        drop(per_host);
        self.forget_idle(&host);
        let body = match fetched? {
            FetchOutcome::Fetched(body) => body,
            FetchOutcome::NotModified { .. } => return Err(ArticleError::NotModified),
        };
        let base = body.final_url.clone();
        tokio::task::spawn_blocking(move || {
            extract::extract(&body.body, body.content_type.as_deref(), Some(&base))
        })
        .await
        .map_err(|err| ArticleError::Crashed(err.to_string()))?
        .map_err(ArticleError::from)
    }

    /// Fills the `article` of each item with a link whose canonical form is not in
    /// `known`, waiting at most `poll.timeout` for all of them; counts every outcome.
    pub async fn fill(&self, items: &mut [Item], known: &HashSet<String>) {
        let mut wanted: HashSet<String> = HashSet::new();
        let mut tasks = JoinSet::new();
        for (index, item) in items.iter().enumerate() {
            let Some(link) = &item.link else { continue };
            let canonical = crate::dedup::canonical_link(link);
            if known.contains(&canonical) {
                metrics::article("known_story");
                continue;
            }
            // Two items of one document with one link: one fetch.
            if !wanted.insert(canonical) {
                continue;
            }
            let (articles, link) = (self.clone(), link.clone());
            tasks.spawn(async move { (index, articles.read(&link).await) });
        }
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(Ok((index, read)))) => match read {
                    Ok(extracted) => {
                        metrics::article("ok");
                        if let Some(item) = items.get_mut(index) {
                            item.article = extracted.text;
                        }
                    }
                    Err(err) => {
                        metrics::article(err.class());
                        tracing::debug!(error = %crate::telemetry::error_chain(&err), "article not read; the item is matched on the feed's text");
                    }
                },
                Ok(Some(Err(err))) => {
                    metrics::article("unreadable");
                    tracing::warn!(error = %err, "an article task failed");
                }
                Ok(None) => break,
                Err(_) => {
                    // Past the wait: what is still loading is dropped, its items matched
                    // on the feed's text.
                    for _ in 0..tasks.len() {
                        metrics::article("timeout");
                    }
                    tasks.abort_all();
                    break;
                }
            }
        }
    }

    fn host_slots(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    /// Drops a host's slots once nothing holds them, so the map stays as small as the
    /// set of hosts being fetched.
    fn forget_idle(&self, host: &str) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if hosts.get(host).is_some_and(|s| Arc::strong_count(s) == 1) {
            hosts.remove(host);
        }
    }
}
