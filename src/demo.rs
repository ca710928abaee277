//! `wirewatch demo`: the whole pipeline on one machine, offline, in one command.
//!
//! Input: nothing but the binary. The sample feeds in `config/demo/` (fictional items,
//! written for the demo) are compiled in. Output: a walk-through on stdout, and exit 0 when
//! everything behaved as documented (1 if not, so the demo doubles as a smoke test).
//!
//! It starts two servers inside the process on 127.0.0.1 (port 0): one serves the sample
//! feeds with ETags and answers a conditional GET with 304, the other is a webhook
//! receiver that checks each alert's Standard Webhooks signature with the crate's own
//! signing code. It writes a configuration pointing at both into a fresh temporary
//! directory (or `--dir`), and then runs the real pipeline on it, exactly as `wirewatch
//! poll` does ([`daemon::open`], [`scheduler::poll_once`], [`Notifier::drain_outbox`]):
//! one cycle that alerts, then a second one that must send nothing. Nothing is written
//! outside that directory; the temporary one is removed at the end.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use clap::Args;
use rand::Rng as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::CliError;
use crate::config::{Config, Secret};
use crate::daemon;
use crate::notify::{Notifier, sign};
use crate::refresh::{Outcome, Report};
use crate::scheduler;
use crate::store::StoreError;
use crate::telemetry;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's config and database in this new or empty directory, instead of a
    /// temporary one that is removed at the end.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// One bundled sample feed.
struct SampleFeed {
    name: &'static str,
    file: &'static str,
    kind: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const SAMPLE_FEEDS: [SampleFeed; 4] = [
    SampleFeed {
        name: "world-wire",
        file: "world-wire.rss",
        kind: "RSS 2.0",
        content_type: "application/rss+xml; charset=utf-8",
        body: include_str!("../config/demo/world-wire.rss"),
    },
    SampleFeed {
        name: "asia-desk",
        file: "asia-desk.atom",
        kind: "Atom",
        content_type: "application/atom+xml; charset=utf-8",
        body: include_str!("../config/demo/asia-desk.atom"),
    },
    SampleFeed {
        name: "briefing",
        file: "briefing.json",
        kind: "JSON Feed",
        content_type: "application/feed+json; charset=utf-8",
        body: include_str!("../config/demo/briefing.json"),
    },
    SampleFeed {
        name: "regional",
        file: "regional.rss",
        kind: "RSS 2.0",
        content_type: "application/rss+xml; charset=utf-8",
        body: include_str!("../config/demo/regional.rss"),
    },
];

/// Items of the sample feeds that look relevant but must not alert, and why.
const NEAR_MISSES: [(&str, &str); 7] = [
    (
        "Trade envoy from Iran tours Scotland's whisky distilleries",
        "Iran matches, but Scotland is not SCO (terms match whole words only), so the \
         query's (China OR SCO) half is missing",
    ),
    (
        "Iran edge China 2-1 in Asian Cup football qualifier",
        "Iran and China match, but `football` is in `exclude`, and any exclude hit vetoes",
    ),
    (
        "China's factory output grows faster than forecast in October",
        "China matches, but the query also needs Iran or JCPOA",
    ),
    (
        "Chinatown businesses in San Francisco mark the Lunar New Year early",
        "Chinatown is not China, and Iranian-American (in the summary) is not Iran: whole \
         words only",
    ),
    (
        "Indochina rail tourism booms as Iranian travellers discover Laos",
        "Indochina is not China; Iranian is not Iran (the prefix term `Iran*` would match it)",
    ),
    (
        "Iranian filmmakers win top prizes at Shanghai festival",
        "Iranian is not Iran, and Shanghai is not one of the terms",
    ),
    (
        "ایرانیان مقیم چین جشن نوروز گرفتند",
        "(\"Iranians living in China celebrated Nowruz\") چین, an alias of China, matches, \
         but ایرانیان (Iranians) is not the whole word ایران, an alias of Iran",
    ),
];

/// One story in two feeds under two titles, with the same link once tracking parameters
/// and fragment are removed: it must alert once.
const SAME_STORY: [&str; 2] = [
    "Iran and China sign 25-year cooperation roadmap in Beijing",
    "Iran, China agree 25-year cooperation roadmap",
];

/// The configuration of the demo; `{feeds}`, `{sink}` and `{secret}` are filled in.
const CONFIG: &str = r#"# Written by `wirewatch demo`: the configuration of this run. The feeds and the webhook
# are servers inside the demo process, on 127.0.0.1, gone when it exits.

[daemon]
state_dir = "."                  # this directory: the database is wirewatch.db here
listen = ""                      # no HTTP listener

[poll]
allow_private_networks = true    # the demo's servers are on 127.0.0.1
backfill = "all"                 # the sample items are days old; by default a feed's
                                 # first fetch alerts only items of the last 6h
timeout = "10s"

[[feeds]]
name = "world-wire"
url = "{feeds}/world-wire.rss"
tags = ["wire"]

[[feeds]]
name = "asia-desk"
url = "{feeds}/asia-desk.atom"
tags = ["asia"]

[[feeds]]
name = "briefing"
url = "{feeds}/briefing.json"

[[feeds]]
name = "regional"
url = "{feeds}/regional.rss"
tags = ["asia"]

[[watchlists]]
name = "iran-china"
terms = ["Iran", "China", "SCO", "JCPOA"]
aliases = { SCO = ["Shanghai Cooperation Organisation", "Shanghai Cooperation Organization"],
            JCPOA = ["Joint Comprehensive Plan of Action", "Iran nuclear deal"],
            Iran = ["ایران", "伊朗"], China = ["中国", "چین"] }
query = '(Iran OR JCPOA) AND (China OR SCO)'
exclude = ["football"]
webhooks = ["demo-receiver"]

[[webhooks]]
name = "demo-receiver"
url = "{sink}"
format = "json"
secret = "{secret}"
retry_schedule = ["1s"]
"#;

/// Runs the demo.
pub async fn run(args: &DemoArgs) -> Result<(), CliError> {
    // The pipeline's own log lines only when asked for: the walk-through is the output.
    if std::env::var_os("RUST_LOG").is_some() {
        telemetry::init(crate::config::LogFormat::Text);
    }
    let dir = WorkDir::prepare(args.dir.as_deref())?;
    let result = tokio::select! {
        result = walk_through(&dir.path, dir.temporary) => result,
        _ = tokio::signal::ctrl_c() => Err(CliError::Runtime(anyhow::anyhow!("interrupted"))),
    };
    dir.finish();
    result
}

async fn walk_through(dir: &Path, temporary: bool) -> Result<(), CliError> {
    let stop = CancellationToken::new();
    let feeds = FeedServer::start(&stop).await?;
    let secret_text = random_secret();
    let secret = Secret::parse(&secret_text).map_err(anyhow::Error::msg)?;
    let receiver = Receiver::start(secret, &stop).await?;
    let result = cycles(dir, temporary, &feeds, &receiver, &secret_text).await;
    stop.cancel();
    for server in [feeds.task, receiver.task] {
        // Keep-alive connections from the pipeline's clients may linger; do not wait on them.
        if tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .is_err()
        {
            tracing::debug!("a demo server did not stop in time");
        }
    }
    result
}

async fn cycles(
    dir: &Path,
    temporary: bool,
    feeds: &FeedServer,
    receiver: &Receiver,
    secret: &str,
) -> Result<(), CliError> {
    let path = dir.join("wirewatch.toml");
    let text = CONFIG
        .replace("{feeds}", &format!("http://{}/feeds", feeds.addr))
        .replace("{sink}", &format!("http://{}/hook", receiver.addr))
        .replace("{secret}", secret);
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    let config = Arc::new(
        Config::from_source(&path, &text)
            .map_err(|err| anyhow::anyhow!("the demo's own configuration is refused: {err}"))?,
    );
    let mut out = std::io::stdout().lock();
    let mut problems: Vec<String> = Vec::new();

    let _ = writeln!(
        out,
        "wirewatch demo: the whole pipeline on this machine, offline\n"
    );
    let _ = writeln!(
        out,
        "  feeds     {} sample feeds served from http://{}/feeds/",
        SAMPLE_FEEDS.len(),
        feeds.addr
    );
    let _ = writeln!(
        out,
        "  webhook   a receiver at http://{}/hook that verifies every signature",
        receiver.addr
    );
    let kept = if temporary {
        "removed at the end; `--dir DIR` keeps them"
    } else {
        "kept"
    };
    let _ = writeln!(
        out,
        "  files     {}: wirewatch.toml, wirewatch.db\n            ({kept})\n",
        dir.display()
    );
    let _ = writeln!(out, "watch-list iran-china");
    let _ = writeln!(out, "  terms     Iran, China, SCO, JCPOA");
    let _ = writeln!(
        out,
        "  aliases   SCO: Shanghai Cooperation Organisation/Organization; JCPOA: Joint"
    );
    let _ = writeln!(
        out,
        "            Comprehensive Plan of Action, Iran nuclear deal; Iran: ایران, 伊朗;"
    );
    let _ = writeln!(out, "            China: 中国, چین");
    let _ = writeln!(out, "  query     (Iran OR JCPOA) AND (China OR SCO)");
    let _ = writeln!(out, "  exclude   football\n");

    let (store, pipeline, _writer) = daemon::open(&config)
        .await
        .context("cannot open the demo's store")?;
    let notifier =
        Notifier::new(store.clone(), config.clone()).context("cannot build the HTTP client")?;
    let all: Vec<usize> = (0..config.feeds.len()).collect();

    // Cycle 1: everything is new.
    let _ = writeln!(
        out,
        "cycle 1: fetch, parse, de-duplicate, match, store, deliver"
    );
    let reports = scheduler::poll_once(&pipeline, &all).await;
    let first = print_reports(&mut out, reports, &mut problems)?;
    let drained = notifier
        .drain_outbox()
        .await
        .context("cannot deliver alerts")?;
    let alerts = receiver.received();
    let verified = alerts.iter().filter(|a| a.verified).count();
    let _ = writeln!(
        out,
        "\nalerts received by the webhook: {} ({verified} with a valid signature)",
        alerts.len()
    );
    for alert in &alerts {
        print_alert(&mut out, alert);
    }
    if alerts.is_empty() {
        problems.push("no alert reached the webhook".into());
    }
    if verified != alerts.len() {
        problems.push(format!(
            "{} alerts had a bad signature",
            alerts.len() - verified
        ));
    }
    if drained.delivered != verified || drained.failed + drained.dead > 0 {
        problems.push(format!(
            "deliveries: {} delivered, {} failed, {} dead; the webhook accepted {verified}",
            drained.delivered,
            drained.failed + drained.dead,
            drained.dead
        ));
    }

    let _ = writeln!(out, "\nnot alerted, and why:");
    let alerted = |title: &str| alerts.iter().filter(|a| a.title == title).count();
    for (title, why) in NEAR_MISSES {
        let _ = writeln!(out, "  - {title}\n{}", wrap(why, 6, WIDTH));
        if alerted(title) > 0 {
            problems.push(format!("near miss alerted: {title}"));
        }
    }
    match SAME_STORY.map(alerted) {
        [1, 0] | [0, 1] => {
            let (sent, other) = if alerted(SAME_STORY[0]) == 1 {
                (SAME_STORY[0], SAME_STORY[1])
            } else {
                (SAME_STORY[1], SAME_STORY[0])
            };
            let why = format!(
                "the same story as \"{sent}\", from another feed: the links are the same once \
                 tracking parameters and fragment are removed, and a story alerts a watch-list once"
            );
            let _ = writeln!(out, "  - {other}\n{}", wrap(&why, 6, WIDTH));
        }
        counts => problems.push(format!(
            "one story in two feeds alerted {} times",
            counts.iter().sum::<usize>()
        )),
    }
    let unrelated = first
        .items
        .saturating_sub(alerts.len() + NEAR_MISSES.len() + SAME_STORY.len() - 1);
    let _ = writeln!(
        out,
        "  and {unrelated} more items that mention none of the terms"
    );

    // Cycle 2: the feeds have not changed.
    let _ = writeln!(out, "\ncycle 2: the same feeds again");
    let reports = scheduler::poll_once(&pipeline, &all).await;
    let second = print_reports(&mut out, reports, &mut problems)?;
    let drained = notifier
        .drain_outbox()
        .await
        .context("cannot deliver alerts")?;
    let resent = receiver.received().len() - alerts.len();
    let _ = writeln!(
        out,
        "  deliveries: {} sent; nothing is sent twice",
        drained.delivered
    );
    if second.not_modified != config.feeds.len() {
        problems.push(format!(
            "cycle 2: {} of {} feeds answered 304 Not Modified",
            second.not_modified,
            config.feeds.len()
        ));
    }
    if drained.delivered + resent > 0 {
        problems.push(format!(
            "cycle 2 sent {} alerts",
            drained.delivered.max(resent)
        ));
    }

    let _ = writeln!(
        out,
        "\nsummary: {} feeds, {} items, {} matches, {verified} alerts delivered and verified; \
         cycle 2: {} new items, {} alerts",
        config.feeds.len(),
        first.items,
        first.matches,
        second.new_items,
        drained.delivered
    );
    let _ = writeln!(
        out,
        "\nnext: `wirewatch test-feed FILE` shows why each item of a feed matches or not;\n\
         config/wirewatch.toml documents every key; `wirewatch demo --dir DIR` keeps this\n\
         run's files, e.g. for `wirewatch matches --config DIR/wirewatch.toml`."
    );
    drop(pipeline);
    drop(notifier);
    store.close().await;
    if problems.is_empty() {
        Ok(())
    } else {
        let _ = writeln!(out, "\nUNEXPECTED:");
        for problem in &problems {
            let _ = writeln!(out, "  - {problem}");
        }
        Err(anyhow::anyhow!(
            "the demo did not behave as documented: {}",
            problems.join("; ")
        )
        .into())
    }
}

/// The width the walk-through's prose is wrapped to.
const WIDTH: usize = 88;

/// `text` wrapped at spaces to `width` columns, every line indented by `indent`.
fn wrap(text: &str, indent: usize, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && indent + len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    let pad = " ".repeat(indent);
    lines
        .iter()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What one cycle did, over all feeds.
#[derive(Debug, Default)]
struct Totals {
    items: usize,
    new_items: usize,
    matches: usize,
    not_modified: usize,
}

fn print_reports(
    out: &mut impl std::io::Write,
    reports: Vec<Result<Report, StoreError>>,
    problems: &mut Vec<String>,
) -> Result<Totals, CliError> {
    let mut totals = Totals::default();
    for report in reports {
        let report = report.context("cannot store a feed's results")?;
        let kind = SAMPLE_FEEDS
            .iter()
            .find(|f| f.name == report.feed)
            .map_or("", |f| f.kind);
        let line = match &report.outcome {
            Outcome::Updated {
                items,
                new_items,
                matches,
                alerts,
            } => {
                totals.items += items;
                totals.new_items += new_items;
                totals.matches += matches;
                format!("{items} items, {new_items} new, {matches} matches, {alerts} alerts queued")
            }
            Outcome::NotModified => {
                totals.not_modified += 1;
                "not modified (304 to a conditional GET)".to_string()
            }
            Outcome::Failed { class, error, .. } => {
                problems.push(format!("{} failed: {error}", report.feed));
                format!("FAILED ({class}): {error}")
            }
            Outcome::Disabled { reason } => {
                problems.push(format!("{} disabled: {reason}", report.feed));
                format!("DISABLED: {reason}")
            }
        };
        let _ = writeln!(out, "  {:<11} {kind:<10} {line}", report.feed);
    }
    Ok(totals)
}

fn print_alert(out: &mut impl std::io::Write, alert: &Alert) {
    let mark = if alert.verified {
        "signature ok"
    } else {
        "BAD SIGNATURE"
    };
    let _ = writeln!(
        out,
        "  [{}] {}: {}",
        alert.watchlist,
        alert.terms.join(", "),
        alert.title
    );
    let _ = writeln!(out, "      from {}, {mark}", alert.feed);
    // One line per snippet, with the terms found in it.
    let mut snippets: Vec<(String, String, Vec<String>)> = Vec::new();
    for (field, term, snippet) in &alert.highlights {
        match snippets
            .iter_mut()
            .find(|(f, s, _)| f == field && s == snippet)
        {
            Some((_, _, terms)) if !terms.contains(term) => terms.push(term.clone()),
            Some(_) => {}
            None => snippets.push((field.clone(), snippet.clone(), vec![term.clone()])),
        }
    }
    for (field, snippet, terms) in snippets {
        let _ = writeln!(out, "      {field} ({}): \"{snippet}\"", terms.join(", "));
    }
}

/// A fresh Standard Webhooks secret for this run: never a fixed one that could end up in
/// a real configuration.
fn random_secret() -> String {
    use base64::Engine as _;
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

// ---------------------------------------------------------------------------------------
// The working directory
// ---------------------------------------------------------------------------------------

/// Where the demo writes its config and database: a new temporary directory removed at
/// the end, or the user's `--dir`, which must be new or empty and is kept.
struct WorkDir {
    path: PathBuf,
    temporary: bool,
}

impl WorkDir {
    fn prepare(dir: Option<&Path>) -> Result<WorkDir, CliError> {
        if let Some(dir) = dir {
            let empty = match std::fs::read_dir(dir) {
                Ok(mut entries) => entries.next().is_none(),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    true
                }
                Err(err) => {
                    return Err(CliError::Usage(format!(
                        "--dir {}: cannot read it: {err}",
                        dir.display()
                    )));
                }
            };
            if !empty {
                // A database from an earlier run would make every item old news.
                return Err(CliError::Usage(format!(
                    "--dir {} is not empty: give a new or empty directory",
                    dir.display()
                )));
            }
            return Ok(WorkDir {
                path: dir.to_path_buf(),
                temporary: false,
            });
        }
        let path = std::env::temp_dir().join(format!(
            "wirewatch-demo-{:016x}",
            rand::rng().random::<u64>()
        ));
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(WorkDir {
            path,
            temporary: true,
        })
    }

    fn finish(self) {
        if self.temporary
            && let Err(err) = std::fs::remove_dir_all(&self.path)
        {
            eprintln!("warning: cannot remove {}: {err}", self.path.display());
        }
    }
}

// ---------------------------------------------------------------------------------------
// The feed server
// ---------------------------------------------------------------------------------------

struct FeedServer {
    addr: std::net::SocketAddr,
    task: JoinHandle<()>,
}

impl FeedServer {
    async fn start(stop: &CancellationToken) -> anyhow::Result<FeedServer> {
        let app = Router::new().route("/feeds/{file}", get(serve_feed));
        let (addr, task) = serve(app, stop).await?;
        Ok(FeedServer { addr, task })
    }
}

/// A sample feed with a strong ETag; 304 when the client already has it.
async fn serve_feed(UrlPath(file): UrlPath<String>, headers: HeaderMap) -> Response {
    let Some(feed) = SAMPLE_FEEDS.iter().find(|f| f.file == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = etag(feed.body);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, feed.content_type.to_string()),
            (header::ETAG, etag),
        ],
        feed.body,
    )
        .into_response()
}

fn etag(body: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

// ---------------------------------------------------------------------------------------
// The webhook receiver
// ---------------------------------------------------------------------------------------

/// One alert as the receiver saw it.
#[derive(Debug, Clone)]
struct Alert {
    verified: bool,
    watchlist: String,
    terms: Vec<String>,
    title: String,
    feed: String,
    /// (field, term, snippet)
    highlights: Vec<(String, String, String)>,
}

struct ReceiverState {
    secret: Secret,
    received: Mutex<Vec<Alert>>,
}

struct Receiver {
    addr: std::net::SocketAddr,
    state: Arc<ReceiverState>,
    task: JoinHandle<()>,
}

impl Receiver {
    async fn start(secret: Secret, stop: &CancellationToken) -> anyhow::Result<Receiver> {
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
    fn received(&self) -> Vec<Alert> {
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
    let expected = sign::signature(secret, id, at, body);
    signatures
        .split_whitespace()
        .any(|given| constant_time_eq(given.as_bytes(), expected.as_bytes()))
}

/// Compares without stopping at the first difference, so response times do not reveal how
/// much of a forged signature was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Serves `app` on 127.0.0.1 (a free port) until `stop`.
async fn serve(
    app: Router,
    stop: &CancellationToken,
) -> anyhow::Result<(std::net::SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let stop = stop.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::warn!(error = %err, "demo server stopped");
        }
    });
    Ok((addr, task))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let secret = Secret::parse(&random_secret()).unwrap();
        let now = 1_800_000_000;
        let headers = signed(&secret, "msg_1", now, b"{}");
        assert!(verify(&secret, &headers, b"{}", now + 10));
        assert!(!verify(&secret, &headers, b"{ }", now), "another body");
        assert!(!verify(&secret, &headers, b"{}", now + 600), "too old");
        let other = Secret::parse(&random_secret()).unwrap();
        assert!(!verify(&other, &headers, b"{}", now), "another key");
        assert!(!verify(&secret, &HeaderMap::new(), b"{}", now), "unsigned");
    }

    #[test]
    fn the_demo_configuration_is_valid() {
        let text = CONFIG
            .replace("{feeds}", "http://127.0.0.1:1/feeds")
            .replace("{sink}", "http://127.0.0.1:2/hook")
            .replace("{secret}", &random_secret());
        let config = Config::from_source(Path::new("/tmp/demo/wirewatch.toml"), &text).unwrap();
        assert_eq!(config.feeds.len(), SAMPLE_FEEDS.len());
        for (feed, sample) in config.feeds.iter().zip(&SAMPLE_FEEDS) {
            assert_eq!(feed.name, sample.name);
            assert!(feed.url.as_str().ends_with(sample.file));
        }
    }

    #[test]
    fn every_sample_feed_parses_and_the_near_misses_are_in_them() {
        let mut titles = Vec::new();
        for sample in &SAMPLE_FEEDS {
            let parsed = crate::parse::parse_document(
                sample.body.as_bytes(),
                None,
                Some(sample.content_type),
            )
            .unwrap_or_else(|err| panic!("{}: {err}", sample.file));
            assert!(parsed.items.len() >= 4, "{}", sample.file);
            titles.extend(parsed.items.into_iter().map(|i| i.title));
        }
        for title in NEAR_MISSES.iter().map(|(t, _)| *t).chain(SAME_STORY) {
            assert!(titles.iter().any(|t| t == title), "{title}");
        }
    }
}
