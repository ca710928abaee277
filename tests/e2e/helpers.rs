//! Shared test rig: a feed server with ETag support, a webhook receiver that records
//! every request, a temp state dir with a config, and ways to run the real binary.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub const BIN: &str = env!("CARGO_BIN_EXE_wirewatch");

/// One request the feed server answered.
#[derive(Debug, Clone)]
pub struct FeedHit {
    pub feed: String,
    pub status: u16,
    pub at: Instant,
    /// Requests being answered by this server when this one arrived, itself included.
    pub concurrent: usize,
    /// The request's `User-Agent` (`poll.user_agent`: which node fetched, in the
    /// cluster tests).
    pub agent: String,
}

#[derive(Default)]
struct FeedState {
    docs: HashMap<String, String>,
    hits: Vec<FeedHit>,
    /// Replies for a feed's next requests, before its document is served again.
    scripts: HashMap<String, std::collections::VecDeque<Reply>>,
    /// A delay before every answer of a feed.
    delays: HashMap<String, Duration>,
    extra_headers: HashMap<String, Vec<(&'static str, String)>>,
    active: usize,
}

/// Serves `/feeds/{name}` from documents the test sets, with a strong ETag per document
/// and 304 for a matching `If-None-Match`.
#[derive(Clone)]
pub struct FeedServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<FeedState>>,
}

impl FeedServer {
    pub async fn start() -> FeedServer {
        let state = Arc::new(Mutex::new(FeedState::default()));
        let app = Router::new()
            .route("/feeds/{name}", get(serve_feed))
            .with_state(state.clone());
        let addr = serve(app).await;
        FeedServer { addr, state }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/feeds/{name}", self.addr)
    }

    pub fn set(&self, name: &str, doc: String) {
        self.state
            .lock()
            .unwrap()
            .docs
            .insert(name.to_string(), doc);
    }

    /// Answers the feed's next requests with these replies, then serves it again.
    pub fn then(&self, name: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut state = self.state.lock().unwrap();
        state
            .scripts
            .entry(name.to_string())
            .or_default()
            .extend(replies);
    }

    /// Adds a header to every `200` answer for this feed.
    pub fn set_header(&self, name: &str, header: &'static str, value: &str) {
        let mut state = self.state.lock().unwrap();
        state
            .extra_headers
            .entry(name.to_string())
            .or_default()
            .push((header, value.to_string()));
    }

    /// Delays every answer for this feed.
    pub fn delay(&self, name: &str, delay: Duration) {
        self.state
            .lock()
            .unwrap()
            .delays
            .insert(name.to_string(), delay);
    }

    pub fn all_hits(&self) -> Vec<FeedHit> {
        self.state.lock().unwrap().hits.clone()
    }

    pub fn hits(&self, name: &str) -> Vec<FeedHit> {
        let state = self.state.lock().unwrap();
        state
            .hits
            .iter()
            .filter(|h| h.feed == name)
            .cloned()
            .collect()
    }
}

async fn serve_feed(
    State(state): State<Arc<Mutex<FeedState>>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let at = Instant::now();
    let (reply, delay) = {
        let mut state = state.lock().unwrap();
        state.active += 1;
        let reply = state.scripts.get_mut(&name).and_then(|s| s.pop_front());
        let delay = state.delays.get(&name).copied().unwrap_or_default();
        let delay = delay.max(reply.as_ref().map_or(Duration::ZERO, |r| r.delay));
        (reply, delay)
    };
    tokio::time::sleep(delay).await;
    let mut state = state.lock().unwrap();
    let concurrent = state.active;
    state.active -= 1;
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let hit = |status| FeedHit {
        feed: name.clone(),
        status,
        at,
        concurrent,
        agent: agent.clone(),
    };
    if let Some(reply) = reply {
        state.hits.push(hit(reply.status));
        let mut response = StatusCode::from_u16(reply.status).unwrap().into_response();
        for (name, value) in reply.headers {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        return response;
    }
    let Some(doc) = state.docs.get(&name).cloned() else {
        state.hits.push(hit(404));
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{:016x}\"", fnv(doc.as_bytes()));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let status = if fresh { 304 } else { 200 };
    state.hits.push(hit(status));
    let extra = state.extra_headers.get(&name).cloned().unwrap_or_default();
    let mut response = if fresh {
        (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response()
    } else {
        (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    "application/rss+xml; charset=utf-8".to_string(),
                ),
                (header::ETAG, etag),
            ],
            doc,
        )
            .into_response()
    };
    for (name, value) in extra {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// One webhook request as the receiver saw it, and the status it was answered with.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn ok() -> Reply {
        Reply::status(200)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

struct ReceiverState {
    received: Vec<Received>,
    /// Replies for the next requests, in order; then `default`.
    script: std::collections::VecDeque<Reply>,
    default: Reply,
}

/// Records every POST to `/hook` and answers as scripted (200 by default).
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState {
            received: Vec::new(),
            script: Default::default(),
            default: Reply::ok(),
        }));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let addr = serve(app).await;
        Receiver { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers the next requests with these replies, in order.
    pub fn then(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Answers every unscripted request with this reply.
    pub fn always(&self, reply: Reply) {
        self.state.lock().unwrap().default = reply;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits until at least `n` requests arrived (or the timeout passed) and returns all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(timeout, |r| r.len() >= n).await
    }

    /// Waits until `done` holds for the requests so far (or the timeout passed).
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let check = || async {
            let received = self.received();
            done(&received).then_some(received)
        };
        match poll(timeout, check).await {
            Some(received) => received,
            None => self.received(),
        }
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let reply = {
        let mut state = state.lock().unwrap();
        let reply = state
            .script
            .pop_front()
            .unwrap_or_else(|| state.default.clone());
        state.received.push(Received {
            headers,
            body,
            at,
            status: reply.status,
        });
        reply
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = StatusCode::from_u16(reply.status).unwrap().into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// A webhook of a test config.
#[derive(Debug, Clone)]
pub struct Hook {
    pub name: &'static str,
    pub url: String,
    pub format: &'static str,
    pub timeout: &'static str,
    pub retry: Vec<&'static str>,
}

impl Hook {
    pub fn new(name: &'static str, url: &str) -> Hook {
        Hook {
            name,
            url: url.to_string(),
            format: "json",
            timeout: "5s",
            retry: vec!["1s", "1s"],
        }
    }

    pub fn format(mut self, format: &'static str) -> Hook {
        self.format = format;
        self
    }

    pub fn retry(mut self, retry: &[&'static str]) -> Hook {
        self.retry = retry.to_vec();
        self
    }

    pub fn timeout(mut self, timeout: &'static str) -> Hook {
        self.timeout = timeout;
        self
    }
}

/// A temp dir holding the config and the state dir, and the test's database: a SQLite
/// file in the state dir, or with `WIREWATCH_TEST_DATABASE=postgres` a new database on
/// the tests' PostgreSQL cluster, which every config written here names.
pub struct TestDir {
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database's URL; `None` on SQLite.
    pub postgres: Option<String>,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::tempdir().unwrap(),
            postgres: crate::postgres::requested().then(crate::postgres::fresh_database),
        }
    }

    /// A test dir whose daemons use `url`, a PostgreSQL database (several nodes share
    /// one, each with a test dir of its own).
    pub fn on_postgres(url: &str) -> TestDir {
        TestDir {
            dir: tempfile::tempdir().unwrap(),
            postgres: Some(url.to_string()),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("wirewatch.toml")
    }

    /// A connection of the test's own to the daemon's database, as another process
    /// (a CLI command, an operator's `sqlite3` or `psql`) would open it.
    pub async fn database(&self) -> sqlx::AnyConnection {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let url = match &self.postgres {
            Some(url) => url.clone(),
            None => {
                let db = self.dir.path().join("state").join("wirewatch.db");
                format!("sqlite://{}", db.display())
            }
        };
        sqlx::AnyConnection::connect(&url).await.unwrap()
    }

    /// Rewrites the config file through `edit`.
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let path = self.config_path();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(text)).unwrap();
    }

    /// Points the config's `daemon.listen` at a free port on 127.0.0.1 and returns it.
    pub fn listen_on_free_port(&self) -> u16 {
        let port = free_port();
        self.edit_config(|t| {
            t.replacen(
                "listen = \"\"",
                &format!("listen = \"127.0.0.1:{port}\""),
                1,
            )
        });
        port
    }

    /// Adds lines to the `[poll]` table.
    pub fn poll_settings(&self, lines: &str) {
        self.edit_config(|text| text.replacen("[poll]\n", &format!("[poll]\n{lines}\n"), 1));
    }

    /// Writes the config; on PostgreSQL with the test's database added to `[daemon]`.
    pub fn write_config(&self, text: &str) -> PathBuf {
        let path = self.config_path();
        let text = match &self.postgres {
            Some(url) if text.contains("[daemon]\n") => text.replacen(
                "[daemon]\n",
                &format!("[daemon]\ndatabase = \"{url}\"\n"),
                1,
            ),
            Some(url) => format!("[daemon]\ndatabase = \"{url}\"\n\n{text}"),
            None => text.to_string(),
        };
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A config with the given feeds (name, url), one watch-list over Iran/China/SCO/JCPOA
    /// and one signed `json` webhook retrying after 1s twice.
    pub fn standard_config(&self, feeds: &[(&str, String)], hook: &str, schedule: &str) -> PathBuf {
        self.config_with(feeds, &[Hook::new("siem", hook)], schedule)
    }

    /// A config with the given feeds and webhooks; the one watch-list alerts them all.
    pub fn config_with(&self, feeds: &[(&str, String)], hooks: &[Hook], schedule: &str) -> PathBuf {
        let mut text = format!(
            r#"[daemon]
state_dir = "state"
listen = ""

[poll]
schedule = "{schedule}"
allow_private_networks = true
timeout = "5s"
"#
        );
        for (name, url) in feeds {
            text.push_str(&format!(
                "\n[[feeds]]\nname = \"{name}\"\nurl = \"{url}\"\n"
            ));
        }
        let names: Vec<String> = hooks.iter().map(|h| format!("\"{}\"", h.name)).collect();
        text.push_str(&format!(
            r#"
[[watchlists]]
name = "iran-china"
terms = ["Iran", "China", "SCO", "JCPOA"]
aliases = {{ SCO = ["Shanghai Cooperation Organisation"], Iran = ["ایران"] }}
webhooks = [{}]
"#,
            names.join(", ")
        ));
        for hook in hooks {
            let schedule: Vec<String> = hook.retry.iter().map(|r| format!("\"{r}\"")).collect();
            text.push_str(&format!(
                r#"
[[webhooks]]
name = "{}"
url = "{}"
format = "{}"
secret = "{SECRET}"
timeout = "{}"
retry_schedule = [{}]
"#,
                hook.name,
                hook.url,
                hook.format,
                hook.timeout,
                schedule.join(", ")
            ));
        }
        self.write_config(&text)
    }

    /// Runs `wirewatch <args> --config <this config>` to completion.
    pub async fn wirewatch(&self, args: &[&str]) -> Output {
        let output = tokio::process::Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .env("RUST_LOG", "info")
            .output()
            .await
            .unwrap();
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        }
        output
    }

    /// Starts `wirewatch run` listening on a free port of 127.0.0.1 and waits until it
    /// answers `/healthz`: the daemon and the listener's base URL.
    pub async fn spawn_listening_daemon(&self) -> (Daemon, String) {
        let port = self.listen_on_free_port();
        let daemon = self.spawn_daemon();
        let base = format!("http://127.0.0.1:{port}");
        let health = format!("{base}/healthz");
        eventually("the daemon to listen", Duration::from_secs(30), || {
            http_get(&health)
        })
        .await;
        (daemon, base)
    }

    /// Starts `wirewatch run` in the background.
    pub fn spawn_daemon(&self) -> Daemon {
        let stderr = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let child = tokio::process::Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(self.config_path())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Daemon { child }
    }

    /// Starts a prepared command in the background as [`TestDir::spawn_daemon`] does (logs
    /// hidden unless `TEST_LOG` is set), for a daemon that needs its own environment or a
    /// wrapper; it must `exec` the daemon so that the child's pid is the daemon's.
    pub fn spawn_command(&self, mut command: tokio::process::Command) -> Daemon {
        let stderr = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Daemon { child }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub struct Daemon {
    child: tokio::process::Child,
}

impl Daemon {
    /// SIGKILL: the daemon gets no chance to clean up.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// Sends SIGHUP: reload the configuration.
    pub fn hangup(&self) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Sends SIGTERM and waits for the exit code.
    pub async fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("daemon stops within 30s of SIGTERM")
            .unwrap();
        status.code()
    }
}

/// An RSS 2.0 document with the given items (guid, title, link, description).
pub fn rss(items: &[Item]) -> String {
    let now = chrono::Utc::now().to_rfc2822();
    let mut doc = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>Test wire</title><link>https://wire.example.org/</link><description>test</description>\n",
    );
    for item in items {
        doc.push_str("<item>");
        if let Some(guid) = item.guid {
            doc.push_str(&format!("<guid isPermaLink=\"false\">{guid}</guid>"));
        }
        doc.push_str(&format!("<title>{}</title>", escape(item.title)));
        if let Some(link) = item.link {
            doc.push_str(&format!("<link>{}</link>", escape(link)));
        }
        doc.push_str(&format!(
            "<description>{}</description><pubDate>{}</pubDate></item>\n",
            escape(item.description),
            item.published.unwrap_or(&now)
        ));
    }
    doc.push_str("</channel></rss>\n");
    doc
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub guid: Option<&'a str>,
    pub title: &'a str,
    pub link: Option<&'a str>,
    pub description: &'a str,
    pub published: Option<&'a str>,
}

impl<'a> Item<'a> {
    pub fn new(guid: &'a str, title: &'a str, link: &'a str) -> Item<'a> {
        Item {
            guid: Some(guid),
            title,
            link: Some(link),
            description: "Wire copy.",
            published: None,
        }
    }
}

/// A port nothing listens on right now, for a daemon's `listen`.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// GETs `url`: the status, or `None` when nothing answers, and the body.
pub async fn http_get(url: &str) -> Option<(u16, String)> {
    wirewatch::http::init_tls();
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asks `/readyz` every 50 ms until `done` holds for its status, for at most 60 s;
/// returns the last answer.
pub async fn readyz_until(base: &str, done: impl Fn(u16) -> bool) -> (u16, String) {
    let url = format!("{base}/readyz");
    let last = std::cell::RefCell::new((0, String::new()));
    let ask = || async {
        let answer = http_get(&url).await.unwrap_or((0, String::new()));
        let ready = done(answer.0);
        *last.borrow_mut() = answer;
        ready.then_some(())
    };
    poll(Duration::from_secs(60), ask).await;
    last.into_inner()
}

/// A tiny deterministic generator for the randomized tests, so a failure can be replayed:
/// its seed comes from `WIREWATCH_TEST_SEED` when set, else from the clock, and is printed.
pub struct Rng {
    seed: u64,
    state: u64,
}

impl Rng {
    /// A generator for the test named `test`, its seed printed on stderr.
    pub fn seeded(test: &str) -> Rng {
        let seed = std::env::var("WIREWATCH_TEST_SEED")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            | 1;
        eprintln!("{test}: seed {seed} (replay with WIREWATCH_TEST_SEED={seed})");
        Rng { seed, state: seed }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A number in `0..n` (xorshift).
    pub fn below(&mut self, n: u64) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % n
    }
}

/// Asks `check` every 50 ms until it answers `Some`, for at most `timeout`: the one wait
/// on a state every test uses; `None` when time ran out.
pub async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`poll`], failing the test with "`what` within `timeout`" when time runs out.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    check: impl FnMut() -> F,
) -> T {
    match poll(timeout, check).await {
        Some(found) => found,
        None => panic!("expected {what} within {timeout:?}"),
    }
}

/// Waits until `query` (one integer) on the daemon's database says `done`, for at most
/// `timeout`; returns the last value.
pub async fn wait_for_rows(
    dir: &TestDir,
    query: &str,
    timeout: Duration,
    done: impl Fn(i64) -> bool,
) -> i64 {
    let last = std::cell::Cell::new(-1);
    let read = || async {
        let mut db = dir.database().await;
        let value: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_string()))
            .fetch_one(&mut db)
            .await
            .unwrap_or(-1);
        last.set(value);
        done(value).then_some(value)
    };
    poll(timeout, read).await.unwrap_or(last.get())
}

/// Waits until every pending delivery is due (its retry time has come), for at most 10 s.
pub async fn wait_until_retries_are_due(dir: &TestDir) {
    // The latest retry time, read once: the clock then passes it.
    let mut db = dir.database().await;
    let latest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(next_attempt_at) FROM outbox WHERE status = 'pending'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    let value = poll(Duration::from_secs(10), || async {
        (latest.is_none_or(|at| now() >= at)).then_some(0)
    })
    .await
    .unwrap_or(1);
    assert_eq!(value, 0, "pending deliveries still not due after 10 s");
}
