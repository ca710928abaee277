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
        // The host's slot first: pages waiting for a busy host hold none of the slots
        // that other hosts' pages could use.
        let host = url.host_str().unwrap_or_default().to_owned();
        let per_host = self.host_slots(&host);
        let host_slot = per_host.acquire().await;
        let slot = self.slots.acquire().await;
        let fetched = self.fetcher.fetch_page(url).await;
        drop((slot, host_slot));
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
                            item.drop_nul();
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A page server that holds every request until `release` has a permit for it, and
    /// counts the requests in flight (now and at most).
    async fn held_pages(
        release: Arc<Semaphore>,
        now: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    ) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (release, now, most) = (release.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let inflight = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(inflight, Ordering::SeqCst);
                    let _ = release.acquire().await.map(|p| p.forget());
                    now.fetch_sub(1, Ordering::SeqCst);
                    let body = "<html><head><title>Page</title></head><body><article>\
                                <p>Diplomats met in Vienna on Monday for a new round of talks \
                                about the nuclear agreement, officials said afterwards.</p>\
                                </article></body></html>";
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                });
            }
        });
        addr
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn one_host_gets_per_host_pages_at_once_and_every_item_is_read() {
        let config = crate::config::Config::from_source(
            std::path::Path::new("/tmp/t.toml"),
            "[poll]\nallow_private_networks = true\nper_host = 2\narticle_concurrency = 8\ntimeout = \"30s\"",
        )
        .unwrap();
        let articles = Articles::new(&config.poll).unwrap();
        let release = Arc::new(Semaphore::new(0));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let addr = held_pages(release.clone(), now.clone(), most.clone()).await;
        let mut items: Vec<Item> = (0..6)
            .map(|n| Item {
                link: Some(Url::parse(&format!("http://{addr}/story/{n}")).unwrap()),
                ..Item::default()
            })
            .collect();
        let known = HashSet::from([format!("http://{addr}/story/5")]);
        {
            let fill = articles.fill(&mut items, &known);
            tokio::pin!(fill);
            // Let requests pile up until two are held; the limit keeps the others waiting.
            loop {
                tokio::select! {
                    _ = &mut fill => panic!("finished before any page was released"),
                    _ = tokio::task::yield_now() => {}
                }
                if now.load(Ordering::SeqCst) >= 2 {
                    break;
                }
            }
            // Released, the rest follow, never more than two at once.
            release.add_permits(5);
            fill.await;
        }
        assert_eq!(most.load(Ordering::SeqCst), 2, "per_host");
        let read: Vec<bool> = items.iter().map(|i| i.article.contains("Vienna")).collect();
        assert_eq!(
            read,
            [true, true, true, true, true, false],
            "a known story is not read"
        );
    }
}
