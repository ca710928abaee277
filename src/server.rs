//! The HTTP listener on `daemon.listen` (SPEC §7, §15): `/healthz` (the process answers),
//! `/readyz` (the database answers and a configuration is loaded), `/metrics`
//! (Prometheus text format) and the read-only JSON API `/api/v1/matches`,
//! `/api/v1/stories`, `/api/v1/feeds` and `POST /api/v1/backtest` (a watch-list definition
//! run over the stored items, SPEC §12; one at a time, its body at most
//! [`MAX_BACKTEST_BODY`]).
//!
//! The listener is exposed to whoever can reach the port, so it bounds what a client can
//! hold: at most [`MAX_CONNECTIONS`] connections (one more is closed unanswered), a request
//! head (or, on a kept-alive connection, the next one) within [`HEADER_READ_TIMEOUT`], a
//! whole request within [`REQUEST_TIMEOUT`], and an answer that stops moving for
//! [`WRITE_STALL_TIMEOUT`] is abandoned. With `daemon.api_token_file` or `api_token_env`
//! set, everything but `/healthz` and `/readyz` asks for `Authorization: Bearer <token>`,
//! checked against the configuration current at each request (a reload rotates it).
//!
//! Input: the store, the current configuration (swapped on reload) and the metrics
//! handle. Output: answers only; nothing here writes to the store or blocks the pipeline.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::{Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backtest::{self, Backtest, BacktestError, Definition};
use crate::clock;
use crate::config::{ApiToken, Config};
use crate::store::{MatchQuery, Store, StoryListing, StoryQuery};

/// The most matches one API call returns.
const MAX_LIMIT: i64 = 1000;

/// The most stories one API call returns. Each lists up to
/// [`crate::store::MAX_STORY_ITEMS`] items, so a full page is a few MB of JSON at most;
/// most stories hold a handful of items.
const MAX_STORIES: i64 = 200;

/// The largest body `POST /api/v1/backtest` reads: a watch-list definition, a few KB even
/// with hundreds of terms and aliases.
pub const MAX_BACKTEST_BODY: usize = 256 * 1024;

/// Backtests run one at a time: each takes about a CPU-second, spread over every core, per
/// 100,000 items of its window (BENCHMARKS.md) and holds one of the store's two read-only
/// connections meanwhile. Others wait their turn, within [`REQUEST_TIMEOUT`].
static BACKTESTS: Semaphore = Semaphore::const_new(1);

/// Connections served at once. The listener's clients are a Prometheus scraper, probes, an
/// operator's `curl` and a few analysts' browsers (about six connections each): a few
/// dozen at most. 128 leaves room for all of them while bounding what a flood can take:
/// file descriptors (outside systemd the soft limit is often 1024, and the fetches need
/// `poll.concurrency` of them, 64 by default) and memory (each connection may buffer up
/// to `MAX_HEADER_BUFFER`: 8 MiB in all). A connection past the cap is closed at once
/// rather than left in the accept queue, where it would wait, with no deadline of its
/// own, behind whatever holds the slots: its client learns at once to try again later.
pub const MAX_CONNECTIONS: usize = 128;

/// How long a client has to send a whole request head, from the moment the connection is
/// ready for one: just accepted, or idle after an answer (hyper 1.x starts the same timer
/// when a kept-alive connection goes idle, so this also closes idle connections). Real
/// clients send their head in one packet, within milliseconds; 10 s forgives a slow
/// network, while a client trickling a head out (slowloris) holds its slot no longer.
/// Prometheus re-opens its connection when a scrape interval is longer than this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one request may take from its head to its answer, the handler and any body it
/// reads included. Every answer here is a few indexed queries or a metrics render, done in
/// milliseconds; 30 s lets a query wait out the store's 10 s busy timeout more than once,
/// and stops a stuck handler or a trickled body from holding a slot for ever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long writing an answer may make no progress before the connection is dropped: a
/// client that stops reading a large answer (1,000 matches, the metrics of 100,000 feeds)
/// would otherwise hold its slot for ever once the socket buffers fill.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long answers in flight get after shutdown starts, before their connections are
/// dropped. Answers take milliseconds; a scrape cut off is simply retried. Short enough to
/// stay well inside systemd's `TimeoutStopSec=30s` after the pipeline's own grace.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The largest request head a connection buffers (hyper's default is about 400 KiB).
/// Heads here are a request line, a Host and maybe an Authorization header: a few
/// hundred bytes; 64 KiB is generous and keeps [`MAX_CONNECTIONS`] of them to 8 MiB.
const MAX_HEADER_BUFFER: usize = 64 * 1024;

/// The least time between two log lines about refused connections.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Paths that never ask for the API token: liveness and readiness probes (systemd,
/// a load balancer, an orchestrator) carry no credentials, and say nothing sensitive.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// What every handler reads: the store, the configuration current at the request, and
/// the metrics (the console's handlers in `console` too).
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) store: Store,
    pub(crate) config: watch::Receiver<Arc<Config>>,
    metrics: PrometheusHandle,
}

/// Binds `addr` now (so a taken port is a start-up error) and serves until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(listen = %addr, "serving health, metrics, the API and the console");
    let app = router(App {
        store,
        config,
        metrics,
    });
    Ok(tokio::spawn(accept(listener, app, shutdown)))
}

fn router(app: App) -> Router {
    let config = app.config.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .route("/api/v1/matches", get(matches))
        .route("/api/v1/stories", get(stories))
        .route("/api/v1/feeds", get(feeds))
        .route(
            "/api/v1/backtest",
            post(run_backtest).layer(DefaultBodyLimit::max(MAX_BACKTEST_BODY)),
        )
        .merge(crate::console::routes())
        // Applied to every route and the fallback: a route added later (the console) asks
        // for the token unless it is listed in `OPEN_PATHS`, and an unknown path answers
        // 401 rather than telling a stranger which paths exist.
        .layer(middleware::from_fn_with_state(config, require_token))
        .with_state(app)
}

/// Accepts connections until `shutdown`, each served on its own task within the cap;
/// then lets answers in flight finish for [`SHUTDOWN_GRACE`] and drops what is left.
async fn accept(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BUFFER);
    crate::metrics::http_listener(MAX_CONNECTIONS);
    let mut connections = JoinSet::new();
    let mut refused: u64 = 0;
    let mut last_warned = None;
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            // Reap finished connections as they end, so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Closed at once, unanswered (see `MAX_CONNECTIONS`).
            drop(stream);
            crate::metrics::http_connection_refused();
            refused += 1;
            // One line a minute at most: a flood must not flood the journal too.
            if last_warned.is_none_or(|at: Instant| at.elapsed() >= REFUSAL_LOG_INTERVAL) {
                tracing::warn!(
                    max = MAX_CONNECTIONS,
                    refused,
                    "the HTTP listener is serving all the connections it takes: new ones are closed unanswered"
                );
                last_warned = Some(Instant::now());
                refused = 0;
            }
            continue;
        };
        let conn = http.serve_connection(
            TokioIo::new(WriteDeadline::new(stream, WRITE_STALL_TIMEOUT)),
            Handler(app.clone()),
        );
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            let _open = crate::metrics::HttpConnection::open();
            let mut conn = std::pin::pin!(conn);
            let served = tokio::select! {
                served = conn.as_mut() => served,
                () = stop.cancelled() => {
                    // Finish the request in hand (if any), then close.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = served {
                if let Some(stage) = timeout_stage(&err) {
                    crate::metrics::http_timeout(stage);
                }
                // A client going away is routine: not worth more than a debug line.
                tracing::debug!(peer = %peer, error = %err, "HTTP connection closed on an error");
            }
        });
    }
    // Stop accepting: from here the kernel refuses new connections.
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "HTTP connections still open at the shutdown deadline are dropped"
        );
        connections.shutdown().await;
    }
}

/// An accept that failed: a connection reset before it was accepted is routine; anything
/// else (out of file descriptors) is logged, and the loop pauses a second instead of
/// spinning on the same error.
async fn accept_failed(err: io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "cannot accept an HTTP connection; trying again in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Which of the listener's deadlines ended a connection, if one did.
fn timeout_stage(err: &hyper::Error) -> Option<&'static str> {
    if err.is_timeout() {
        // The only timer hyper runs on a server connection is the header read timeout.
        return Some("header");
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            return Some("write");
        }
        source = cause.source();
    }
    None
}

/// The router as a hyper service, each request bounded by [`REQUEST_TIMEOUT`].
///
/// [`Incoming`]: hyper::body::Incoming
#[derive(Clone)]
struct Handler(Router);

/// Generic over the body so that tests can call it without a connection; hyper calls it
/// with [`Incoming`](hyper::body::Incoming).
impl<B> hyper::service::Service<Request<B>> for Handler
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Self::Error>> + Send>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        // `Router` is always ready: no `poll_ready` needed before `call`.
        let mut router = self.0.clone();
        Box::pin(async move {
            let answer = tower_service::Service::call(&mut router, request);
            match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
                Ok(answered) => answered,
                Err(_) => {
                    crate::metrics::http_timeout("request");
                    Ok(timed_out())
                }
            }
        })
    }
}

fn timed_out() -> Response {
    let body = serde_json::json!({
        "error": format!("the request did not finish within {}s", REQUEST_TIMEOUT.as_secs())
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        // Whatever the client still had to send is not read: the connection ends here.
        [(header::CONNECTION, "close")],
        Json(body),
    )
        .into_response()
}

/// An IO whose writes fail with `TimedOut` once one has been pending for `limit`: the
/// client stopped reading. Reads are bounded elsewhere (the header read timeout, the
/// request timeout).
struct WriteDeadline<T> {
    io: T,
    limit: Duration,
    /// Running while a write is pending; cleared by any write that makes progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn new(io: T, limit: Duration) -> WriteDeadline<T> {
        WriteDeadline {
            io,
            limit,
            stalled: None,
        }
    }

    fn bound<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {}s", limit.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.bound(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.bound(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.bound(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_shutdown(cx);
        self.bound(cx, polled)
    }
}

/// Why a request was refused for want of the token.
#[derive(Debug, PartialEq, Eq)]
enum Unauthorized {
    /// No `Authorization` header.
    Missing,
    /// Another scheme, a malformed value or a wrong token.
    Invalid,
}

/// How a request was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No token is set, or the path never asks for it.
    Open,
    /// `Authorization: Bearer` with the token.
    Bearer,
    /// The console's session cookie, which a browser sends by itself.
    Session,
}

/// Whether a request to `path` with this `Authorization` header (or the console's session
/// cookie among `cookie`) may go on at `now`, the token being `required` (none: everything
/// is open).
fn authorize(
    required: Option<&ApiToken>,
    path: &str,
    authorization: Option<&HeaderValue>,
    cookie: Option<&HeaderValue>,
    now: i64,
) -> Result<Access, Unauthorized> {
    let Some(token) = required else {
        return Ok(Access::Open);
    };
    if OPEN_PATHS.contains(&path) || crate::console::OPEN_PATHS.contains(&path) {
        return Ok(Access::Open);
    }
    // A browser signed in at the console's `/login` carries the session cookie instead.
    let session = cookie
        .and_then(|c| c.to_str().ok())
        .and_then(crate::console::session_cookie);
    if authorization.is_none()
        && let Some(session) = session
    {
        return if token.verify_session(session, now) {
            Ok(Access::Session)
        } else {
            Err(Unauthorized::Invalid)
        };
    }
    let value = authorization.ok_or(Unauthorized::Missing)?;
    let presented = value
        .to_str()
        .ok()
        .and_then(bearer)
        .ok_or(Unauthorized::Invalid)?;
    if token.verify(presented) {
        Ok(Access::Bearer)
    } else {
        Err(Unauthorized::Invalid)
    }
}

/// Whether a request let in by the session cookie may act: reading is always fine, but a
/// `POST` (a backtest) must come from the console's own pages, told by `Sec-Fetch-Site` or,
/// from older browsers, an `Origin` naming this `Host`. A page of another port or
/// subdomain of the same site also gets a `SameSite=Strict` cookie, so the cookie alone is
/// no proof.
fn same_origin(request: &Request) -> bool {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return true;
    }
    let text = |name: HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(site) = text(HeaderName::from_static("sec-fetch-site")) {
        return site == "same-origin";
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority == host),
        _ => false,
    }
}

/// The token of an `Authorization: Bearer <token>` value (RFC 6750 §2.1): the scheme in any
/// case, then exactly one token, spaces around either forgiven. `None` for another scheme,
/// no token, or more than one word after the scheme.
fn bearer(value: &str) -> Option<&str> {
    let mut words = value.split_ascii_whitespace();
    let scheme = words.next()?;
    let token = words.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && words.next().is_none()).then_some(token)
}

/// The token check in front of every route: the token comes from the configuration
/// current at this request, so a reload that changes it takes effect at once. Neither the
/// token nor the header is ever logged.
async fn require_token(
    State(config): State<watch::Receiver<Arc<Config>>>,
    request: Request,
    next: Next,
) -> Response {
    let config = config.borrow().clone();
    let checked = authorize(
        config.daemon.api_token.as_ref(),
        request.uri().path(),
        request.headers().get(header::AUTHORIZATION),
        request.headers().get(header::COOKIE),
        clock::unix(),
    );
    match checked {
        Ok(Access::Session) if !same_origin(&request) => ApiError(
            StatusCode::FORBIDDEN,
            "a request signed in by the console's cookie must come from the console's pages".into(),
        )
        .into_response(),
        Ok(_) => next.run(request).await,
        // A browser asking for a page gets the console's sign-in form, still a 401.
        Err(_) if wants_html(&request) => crate::console::login_required(false),
        Err(why) => {
            let (challenge, message) = match why {
                Unauthorized::Missing => (
                    r#"Bearer realm="wirewatch""#,
                    "this path needs Authorization: Bearer <token> (daemon.api_token_file or api_token_env)",
                ),
                Unauthorized::Invalid => (
                    r#"Bearer realm="wirewatch", error="invalid_token""#,
                    "the bearer token is not valid",
                ),
            };
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                Json(serde_json::json!({ "error": message })),
            )
                .into_response()
        }
    }
}

/// Whether a request is a browser's for a page (its `Accept` names HTML) rather than a
/// program's for the API.
fn wants_html(request: &Request) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// A failure to answer, as JSON with the status it maps to.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1 });
        (self.0, Json(body)).into_response()
    }
}

fn unavailable(err: impl std::fmt::Display) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("database unavailable: {err}"),
    )
}

/// Ready while the database takes writes, as the last write found (the daemon probes it
/// while it fails and while it is idle): answered from memory, so it never waits for the
/// writer, and steady while a fault lasts.
async fn ready(State(app): State<App>) -> impl IntoResponse {
    match app.store.health().failing() {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(failing) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: the database does not take writes since {}: {}\n",
                failing
                    .since
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                failing.error
            ),
        ),
    }
}

async fn render_metrics(State(app): State<App>) -> Result<impl IntoResponse, ApiError> {
    // Gauges are read from the store at scrape time, so they are never stale.
    let config = app.config.borrow().clone();
    if let Some(bytes) = app.store.disk_bytes() {
        metrics::gauge!("wirewatch_database_bytes").set(bytes as f64);
    }
    metrics::gauge!("wirewatch_database_writable").set(if app.store.health().writable() {
        1.0
    } else {
        0.0
    });
    let pending = app.store.pending_deliveries().await.map_err(unavailable)?;
    metrics::gauge!("wirewatch_outbox_pending").set(pending as f64);
    let now = clock::unix();
    // Which node this is, and the leases it holds (several daemons on one database).
    let node = config.cluster.node.clone();
    metrics::gauge!("wirewatch_node_info", "node" => node.clone()).set(1.0);
    let leases = app.store.lease_counts(now).await.map_err(unavailable)?;
    let held = leases.iter().find(|count| count.node == node);
    for (kind, count) in [
        ("feed", held.map_or(0, |c| c.feeds)),
        ("delivery", held.map_or(0, |c| c.deliveries)),
    ] {
        metrics::gauge!("wirewatch_leases", "node" => node.clone(), "kind" => kind)
            .set(count as f64);
    }
    for (feed, at) in app.store.last_successes().await.map_err(unavailable)? {
        if config.feed_index(&feed).is_some() {
            metrics::gauge!("wirewatch_feed_last_success_age_seconds", "feed" => feed)
                .set((now - at).max(0) as f64);
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    ))
}

#[derive(Debug, Deserialize)]
struct MatchesParams {
    watchlist: Option<String>,
    /// A duration back from now (`24h`) or an RFC 3339 time.
    since: Option<String>,
    q: Option<String>,
    limit: Option<i64>,
}

async fn matches(
    State(app): State<App>,
    Query(params): Query<MatchesParams>,
) -> Result<impl IntoResponse, ApiError> {
    let since = since_param(params.since.as_deref())?;
    let query = MatchQuery {
        watchlist: params.watchlist,
        since,
        search: params.q,
        limit: params.limit.unwrap_or(100).clamp(1, MAX_LIMIT),
    };
    let rows = app.store.matches(&query).await.map_err(unavailable)?;
    Ok(Json(rows))
}

#[derive(Debug, Deserialize)]
struct StoriesParams {
    watchlist: Option<String>,
    /// A duration back from now (`24h`) or an RFC 3339 time.
    since: Option<String>,
    limit: Option<i64>,
}

/// The stories that matched a watch-list, newest activity first: the document of
/// `wirewatch stories --json`.
async fn stories(
    State(app): State<App>,
    Query(params): Query<StoriesParams>,
) -> Result<impl IntoResponse, ApiError> {
    let since = since_param(params.since.as_deref())?;
    let query = StoryQuery {
        watchlist: params.watchlist,
        since,
        limit: params.limit.unwrap_or(100).clamp(1, MAX_STORIES),
        before: None,
    };
    let rows = app.store.stories(&query).await.map_err(unavailable)?;
    Ok(Json(StoryListing { stories: &rows }).into_response())
}

/// The `since` parameter as Unix seconds; a 400 when it is neither a duration nor a time.
fn since_param(since: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(text) = since else {
        return Ok(None);
    };
    parse_since(text, clock::now()).map(Some).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("since `{text}` is neither a duration like 24h nor an RFC 3339 time"),
        )
    })
}

async fn feeds(State(app): State<App>) -> Result<impl IntoResponse, ApiError> {
    let config = app.config.borrow().clone();
    let statuses = app
        .store
        .configured_feeds(&config)
        .await
        .map_err(unavailable)?;
    Ok(Json(statuses))
}

/// `POST /api/v1/backtest`: the definition in the body run over the stored items, against
/// the configured watch-list of the same name (whose feeds it watches; every feed when
/// there is none). A definition that does not compile is a 400 listing its problems.
async fn run_backtest(State(app): State<App>, body: Bytes) -> Response {
    let request: backtest::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return ApiError(
                StatusCode::BAD_REQUEST,
                format!("the body is not a backtest request: {err}"),
            )
            .into_response();
        }
    };
    let since = match request.since.as_deref() {
        Some(text) => match since_param(Some(text)) {
            Ok(since) => since.unwrap_or_default(),
            Err(err) => return err.into_response(),
        },
        None => {
            let back = i64::try_from(backtest::DEFAULT_SINCE.as_secs()).unwrap_or(i64::MAX / 2);
            clock::unix() - back
        }
    };
    let config = app.config.borrow().clone();
    let current = match request.compare.as_deref().map(str::trim) {
        Some(name) => match config.watchlist(name) {
            Some(current) => Some(current),
            None => {
                return not_a_watchlist(vec![format!(
                    "compare: no configured watch-list is named `{name}`"
                )]);
            }
        },
        None => config.watchlist(request.watchlist.name.trim()),
    };
    let candidate = match request.watchlist.into_definition(current) {
        Ok(candidate) => candidate,
        Err(problems) => return not_a_watchlist(problems),
    };
    let run = Backtest {
        candidate,
        current: current.map(Definition::of),
        since,
    };
    let Ok(_turn) = BACKTESTS.acquire().await else {
        return ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "backtests are closed".into(),
        )
        .into_response();
    };
    match backtest::run(&app.store, &config, &run).await {
        Ok(report) => Json(report).into_response(),
        Err(err @ BacktestError::Invalid(_)) => not_a_watchlist(err.problems()),
        Err(err @ BacktestError::Store(_)) => {
            unavailable(crate::telemetry::error_chain(&err)).into_response()
        }
        Err(err) => ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::telemetry::error_chain(&err),
        )
        .into_response(),
    }
}

/// A 400 for a watch-list definition that is not valid: every problem, in one message
/// and as a list.
fn not_a_watchlist(problems: Vec<String>) -> Response {
    let body = serde_json::json!({
        "error": format!("the watch-list is not valid: {}", problems.join("; ")),
        "problems": problems,
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// `24h` (back from `now`) or an RFC 3339 time, as Unix seconds.
fn parse_since(text: &str, now: DateTime<Utc>) -> Option<i64> {
    if let Ok(back) = humantime::parse_duration(text) {
        let back = chrono::Duration::from_std(back).ok()?;
        return now.checked_sub_signed(back).map(|t| t.timestamp());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_or_an_rfc3339_time() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(parse_since("2h", now), Some(now.timestamp() - 7200));
        assert_eq!(
            parse_since("2026-11-27T10:00:00Z", now),
            Some(now.timestamp() - 86400)
        );
        assert_eq!(parse_since("yesterday", now), None);
        assert_eq!(
            parse_since("1000000y", now),
            None,
            "out of range, not a panic"
        );
    }

    #[test]
    fn bearer_takes_the_scheme_in_any_case_and_exactly_one_token() {
        for (value, token) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("Bearer   abc  ", Some("abc")),
            ("  Bearer\tabc", Some("abc")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Bearer abc def", None),
            ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", None),
            ("Bearerabc", None),
            ("abc", None),
            ("", None),
        ] {
            assert_eq!(bearer(value), token, "{value:?}");
        }
    }

    /// A configuration whose API token is `token`, read from a file as in production.
    /// A time for the session checks: 2026-11-30.
    const NOW: i64 = 1_764_460_800;

    fn with_token(dir: &tempfile::TempDir, token: &str) -> Config {
        std::fs::write(dir.path().join("api-token"), format!("{token}\n")).unwrap();
        Config::from_source(
            &dir.path().join("wirewatch.toml"),
            "[daemon]\napi_token_file = \"api-token\"\n",
        )
        .unwrap()
    }

    #[test]
    fn with_a_token_set_only_the_probes_answer_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = with_token(&dir, "0123456789abcdef0123");
        let token = config.daemon.api_token.as_ref();
        let value = |text: &str| HeaderValue::from_str(text).unwrap();
        let right = value("Bearer 0123456789abcdef0123");

        for path in ["/healthz", "/readyz"] {
            assert_eq!(
                authorize(token, path, None, None, NOW),
                Ok(Access::Open),
                "{path}"
            );
        }
        for path in [
            "/metrics",
            "/api/v1/feeds",
            "/api/v1/matches",
            "/api/v1/backtest",
            "/",
            "/healthz/",
        ] {
            assert_eq!(
                authorize(token, path, None, None, NOW),
                Err(Unauthorized::Missing),
                "{path}"
            );
            assert_eq!(
                authorize(token, path, Some(&right), None, NOW),
                Ok(Access::Bearer),
                "{path}"
            );
        }
        // The console's login form and its stylesheet are open; its pages are not.
        for path in ["/login", "/assets/console.css"] {
            assert_eq!(
                authorize(token, path, None, None, NOW),
                Ok(Access::Open),
                "{path}"
            );
        }
        for path in ["/feeds", "/playground", "/assets/console.js"] {
            assert_eq!(
                authorize(token, path, None, None, NOW),
                Err(Unauthorized::Missing),
                "{path}"
            );
        }
        // A browser signed in at `/login` carries the session cookie: an HMAC of the token
        // and the session's end, good until then.
        let session = token.unwrap().session(NOW + 60);
        assert!(!session.contains("0123456789abcdef0123"));
        let cookie = value(&format!("theme=dark; wirewatch_session={session}"));
        assert_eq!(
            authorize(token, "/", None, Some(&cookie), NOW),
            Ok(Access::Session)
        );
        assert_eq!(
            authorize(token, "/api/v1/backtest", None, Some(&cookie), NOW + 59),
            Ok(Access::Session)
        );
        assert_eq!(
            authorize(token, "/", None, Some(&cookie), NOW + 60),
            Err(Unauthorized::Invalid),
            "a session ends by itself"
        );
        let (end, mac) = session.split_once('.').unwrap();
        let extended = value(&format!(
            "wirewatch_session={}.{mac}",
            end.parse::<i64>().unwrap() + 3600
        ));
        for forged in [
            extended,
            value("wirewatch_session=0123456789abcdef0123"),
            value(&format!("wirewatch_session={}", NOW + 60)),
        ] {
            assert_eq!(
                authorize(token, "/", None, Some(&forged), NOW),
                Err(Unauthorized::Invalid),
                "{forged:?}"
            );
        }
        let other = with_token(&dir, "another-token-456789");
        assert_eq!(
            authorize(
                other.daemon.api_token.as_ref(),
                "/",
                None,
                Some(&cookie),
                NOW
            ),
            Err(Unauthorized::Invalid),
            "a new token ends the sessions of the old one"
        );
        for wrong in [
            "Bearer 0123456789abcdef012",
            "Bearer 0123456789abcdef01234",
            "Bearer 0123456789ABCDEF0123",
            "Basic 0123456789abcdef0123",
            "0123456789abcdef0123",
            "Bearer",
        ] {
            assert_eq!(
                authorize(token, "/metrics", Some(&value(wrong)), None, NOW),
                Err(Unauthorized::Invalid),
                "{wrong}"
            );
        }
        let not_text = HeaderValue::from_bytes(b"Bearer \xff").unwrap();
        assert_eq!(
            authorize(token, "/metrics", Some(&not_text), None, NOW),
            Err(Unauthorized::Invalid)
        );
    }

    #[test]
    fn without_a_token_everything_is_open() {
        let config =
            Config::from_source(std::path::Path::new("/etc/wirewatch/w.toml"), "").unwrap();
        assert!(config.daemon.api_token.is_none());
        let stray = HeaderValue::from_static("Bearer whatever");
        for header in [None, Some(&stray)] {
            assert_eq!(
                authorize(None, "/api/v1/feeds", header, None, NOW),
                Ok(Access::Open)
            );
        }
    }

    #[tokio::test]
    async fn the_token_check_covers_unknown_paths_and_follows_the_current_config() {
        let dir = tempfile::tempdir().unwrap();
        let (current, watched) = watch::channel(Arc::new(with_token(&dir, "first-token-0123456")));
        // The layer as `router` applies it, over routes that need no store.
        let mut app: Router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(|| async { "metrics" }))
            .layer(middleware::from_fn_with_state(watched, require_token));
        let mut status = async |path: &str, token: Option<&str>| {
            let mut request = Request::builder().uri(path);
            if let Some(token) = token {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let request = request.body(axum::body::Body::empty()).unwrap();
            let response = tower_service::Service::call(&mut app, request)
                .await
                .unwrap();
            let challenge = response.headers().get(header::WWW_AUTHENTICATE).cloned();
            (response.status().as_u16(), challenge)
        };

        assert_eq!(status("/healthz", None).await, (200, None));
        let (code, challenge) = status("/nowhere", None).await;
        assert_eq!(code, 401, "an unknown path asks for the token too");
        assert!(challenge.unwrap().to_str().unwrap().starts_with("Bearer"));
        assert_eq!(status("/nowhere", Some("first-token-0123456")).await.0, 404);
        assert_eq!(status("/metrics", Some("first-token-0123456")).await.0, 200);

        current.send_replace(Arc::new(with_token(&dir, "second-token-012345")));
        assert_eq!(status("/metrics", Some("first-token-0123456")).await.0, 401);
        assert_eq!(status("/metrics", Some("second-token-012345")).await.0, 200);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_not_answered_in_time_gets_503_and_closes_the_connection() {
        use hyper::service::Service as _;
        let app = Router::new()
            .route("/stuck", get(std::future::pending::<&'static str>))
            .route("/quick", get(|| async { "ok" }));
        let handler = Handler(app);
        let request = |path: &str| {
            Request::builder()
                .uri(path)
                .body(axum::body::Body::empty())
                .unwrap()
        };

        let started = tokio::time::Instant::now();
        let stuck = handler.call(request("/stuck")).await.unwrap();
        assert_eq!(stuck.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(started.elapsed(), REQUEST_TIMEOUT);
        assert_eq!(stuck.headers()[header::CONNECTION], "close");
        let quick = handler.call(request("/quick")).await.unwrap();
        assert_eq!(quick.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_never_reads_fails_after_the_stall_limit() {
        use tokio::io::AsyncWriteExt as _;
        // A peer with a 64-byte buffer that it never reads.
        let (near, _far) = tokio::io::duplex(64);
        let mut io = WriteDeadline::new(near, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let err = io.write_all(&[b'x'; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = WriteDeadline::new(near, Duration::from_secs(30));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            // Reads 64 bytes every 20 s: slower than nothing, never stalled for 30 s.
            while total < 1024 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                total += far.read(&mut buf).await.unwrap();
            }
            total
        });
        io.write_all(&[b'x'; 1024]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 1024);
    }
}
