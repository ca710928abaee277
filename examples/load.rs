//! Poll load: serves N feeds from a local HTTP server (with ETags, so unchanged feeds
//! answer 304) and measures wirewatch's pipeline against them. Two modes:
//!
//!     cargo run --release --example load -- [FEEDS] [CHANGED_PERCENT]
//!     cargo build --release && cargo run --release --example load -- steady [FEEDS] [MINUTES] [CHANGED_PERCENT]
//!     cargo build --release && cargo run --release --example load -- retention [FEEDS] [MINUTES] [CHANGED_PERCENT]
//!
//! The first runs poll cycles in this process with `scheduler::poll_once` (fetch, parse,
//! de-duplication, matching, the commit stage and the outbox), reporting feeds/s, items/s,
//! CPU seconds and peak RSS for a cold cycle (everything new), a warm one (everything 304)
//! and one with a share of the feeds changed.
//!
//! `steady` runs the real daemon (`target/release/wirewatch run`, built beforehand) on the
//! default schedule, `*/5 * * * *`, with `jitter = "4m"` so the feeds spread over each
//! five minutes. It waits for the cold start (every feed fetched once), then measures
//! MINUTES (default 15) of steady state, changing CHANGED_PERCENT (default 1) of the feeds
//! at the start of each five minutes, and reports the daemon's average CPU share of the
//! machine, its peak RSS, and the p99 of `wirewatch_schedule_lateness_seconds` over the
//! window, read from its `/metrics`. Alerts go to a receiver in this process. At the end
//! it counts the items stored; with `LOAD_KEEP` set in the environment it keeps the
//! temporary directory (config, OPML, daemon log, database) and prints its path.
//!
//! `retention` runs the real daemon every 30 seconds with short retention (`items` and
//! `deliveries` 5 minutes, `matches` 10 minutes) while CHANGED_PERCENT (default 10) of the
//! feeds roll their documents each 30 seconds: five new matching items in, the five
//! before them out, as a wire feed does. Every minute it prints the row counts, the size
//! of the database on disk, what retention pruned and the daemon's RSS, to show that the
//! database stops growing.
//!
//! Feed bodies are the real-world feeds of `../shared/corpus` (round-robin, so 2,000 feeds
//! are about 130 MB), or generated documents when the corpus is missing. The copies of a
//! body carry the same links, so the items of its copies are one story by their link; with
//! `LOAD_DISTINCT_LINKS` set in the environment, each feed's links get a path segment of
//! their own (`/copy-N`), so the copies of an item that matches must find their story by
//! its text, as wire copy in different outlets does. Every feed is on
//! 127.0.0.1, so `per_host` is raised to `concurrency` here: a real deployment spreads
//! feeds over many hosts.
//!
//! With `LOAD_POSTGRES` set in the environment, the database is PostgreSQL instead of a
//! SQLite file: a throwaway cluster started here (`tests/support/postgres.rs`, with
//! PostgreSQL's default settings, so every commit is flushed to disk; SQLite's WAL with
//! `synchronous = NORMAL` flushes at checkpoints only), whose CPU is reported beside
//! wirewatch's. `LOAD_NODES=N` (default 1) then runs N nodes on it: N pipelines in
//! this process for the cycles, N daemons for `steady`, each with its own `[cluster]
//! node`, all polling every feed, so that the leases decide who fetches what.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sqlx::Connection as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wirewatch::config::Config;
use wirewatch::refresh::Outcome;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(dead_code)]
#[path = "../tests/support/postgres.rs"]
mod postgres;

/// The PostgreSQL database of this run (`LOAD_POSTGRES`), started on first use; `None`:
/// SQLite.
fn postgres_url() -> Option<&'static str> {
    static DATABASE: OnceLock<Option<(postgres::Postgres, String)>> = OnceLock::new();
    DATABASE
        .get_or_init(|| {
            std::env::var_os("LOAD_POSTGRES")?;
            let cluster = postgres::Postgres::start_durable();
            cluster.stop_after_this_process();
            cluster.create_database("load");
            let url = cluster.url("load");
            Some((cluster, url))
        })
        .as_ref()
        .map(|(_, url)| url.as_str())
}

/// How many nodes share the database (`LOAD_NODES`, PostgreSQL only).
fn nodes() -> usize {
    match postgres_url() {
        Some(_) => std::env::var("LOAD_NODES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1)
            .max(1),
        None => 1,
    }
}

/// CPU seconds of every PostgreSQL server process on the machine (this run's cluster).
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .map(cpu_seconds)
        .sum()
}

/// The documents served, by feed number: (ETag, body).
type Docs = Arc<RwLock<HashMap<usize, (String, Arc<Vec<u8>>)>>>;

/// What the local server serves and counts.
#[derive(Clone)]
struct Served {
    docs: Docs,
    /// Alerts POSTed to `/hook`.
    alerts: Arc<AtomicUsize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("steady") => steady(&args[1..]).await,
        Some("retention") => retention(&args[1..]).await,
        _ => cycles(&args).await,
    }
}

/// The `n`-th argument, or `default` when it is absent.
fn arg<T: std::str::FromStr>(args: &[String], n: usize, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match args.get(n) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|err| anyhow::anyhow!("argument {}: {text:?}: {err}", n + 1)),
    }
}

/// Starts the feed server (with an alert receiver at `/hook`) for `feeds` feeds; returns
/// its address, what it serves and the bytes of all feed documents.
async fn serve_feeds(feeds: usize) -> anyhow::Result<(std::net::SocketAddr, Served, usize)> {
    let bodies = corpus_bodies().unwrap_or_else(generated_bodies);
    let mut map = HashMap::with_capacity(feeds);
    let mut total_bytes = 0usize;
    let distinct = std::env::var_os("LOAD_DISTINCT_LINKS").is_some();
    for i in 0..feeds {
        let body = bodies[i % bodies.len()].clone();
        let body = if distinct {
            Arc::new(links_of_their_own(&body, i))
        } else {
            body
        };
        total_bytes += body.len();
        map.insert(i, (etag(i, 0), body));
    }
    let served = Served {
        docs: Arc::new(RwLock::new(map)),
        alerts: Arc::new(AtomicUsize::new(0)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/f/{id}", get(serve))
        .route("/hook", post(receive))
        .with_state(served.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!(
        "{feeds} feeds, {:.1} MB of feed documents, {} distinct bodies",
        total_bytes as f64 / 1e6,
        bodies.len()
    );
    Ok((addr, served, total_bytes))
}

/// `body` with `/copy-{feed}` added to every http(s) link: RSS `<link>`, Atom `href`,
/// JSON Feed `url`.
fn links_of_their_own(body: &[u8], feed: usize) -> Vec<u8> {
    let suffix = format!("/copy-{feed}");
    let mut out = Vec::with_capacity(body.len() + 1024);
    let mut rest = body;
    'scan: while !rest.is_empty() {
        for (open, close) in [
            (&b"<link>"[..], &b"<"[..]),
            (&b"href=\""[..], &b"\""[..]),
            (&b"\"url\": \""[..], &b"\""[..]),
            (&b"\"url\":\""[..], &b"\""[..]),
        ] {
            if rest.starts_with(open) && rest[open.len()..].starts_with(b"http") {
                let value = &rest[open.len()..];
                let end = find(value, close).unwrap_or(value.len());
                out.extend_from_slice(open);
                out.extend_from_slice(&value[..end]);
                out.extend_from_slice(suffix.as_bytes());
                rest = &value[end..];
                continue 'scan;
            }
        }
        out.push(rest[0]);
        rest = &rest[1..];
    }
    out
}

/// Gives feeds `range` a new ETag and a new item at the top: a story about Iran and
/// China, so that it matches and alerts.
fn change(docs: &Docs, range: std::ops::Range<usize>, version: usize) -> anyhow::Result<()> {
    let mut map = docs.write().map_err(|_| anyhow::anyhow!("lock"))?;
    for i in range {
        let Some((_, body)) = map.get(&i) else {
            continue;
        };
        let story = format!("load-{version}-{i}");
        let (at, entry) = if let Some(at) = find(body, b"<item>") {
            (
                at,
                format!(
                    "<item><title>Update {story}: Iran and China talks</title><guid>{story}</guid><link>https://load.example/{story}</link></item>"
                ),
            )
        } else if let Some(at) = find(body, b"<entry>") {
            (
                at,
                format!(
                    "<entry><title>Update {story}: Iran and China talks</title><id>urn:{story}</id><link href=\"https://load.example/{story}\"/><updated>2026-11-28T00:00:00Z</updated></entry>"
                ),
            )
        } else {
            (body.len(), String::new())
        };
        let mut changed = Vec::with_capacity(body.len() + entry.len());
        changed.extend_from_slice(&body[..at]);
        changed.extend_from_slice(entry.as_bytes());
        changed.extend_from_slice(&body[at..]);
        map.insert(i, (etag(i, version), Arc::new(changed)));
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Poll cycles in this process: cold, warm, then a share of the feeds changed.
async fn cycles(args: &[String]) -> anyhow::Result<()> {
    let feeds: usize = arg(args, 0, 2000)?;
    let changed_percent: f64 = arg(args, 1, 1.0)?;
    let (addr, served, total_bytes) = serve_feeds(feeds).await?;

    let dir = tempfile::tempdir()?;
    let mut pipelines = Vec::new();
    let mut writers = Vec::new();
    let mut store = None;
    for node in 1..=nodes() {
        let config_path = write_config(
            dir.path(),
            feeds,
            &addr.to_string(),
            "listen = \"\"",
            "backfill = \"all\"",
            &format!("[cluster]\nnode = \"node-{node}\"\n"),
        )?;
        let config = Arc::new(Config::load(&config_path)?);
        let (opened, pipeline, writer) = wirewatch::daemon::open(&config).await?;
        store.get_or_insert(opened);
        pipelines.push(pipeline);
        writers.push(writer);
    }
    let store = store.context("no node")?;
    println!(
        "database: {}, {} node(s)",
        store.database(),
        pipelines.len()
    );
    let all: Vec<usize> = (0..feeds).collect();

    let cold = cycle("cold (all new)", &pipelines, &all, total_bytes).await;
    let warm = cycle("warm (all 304)", &pipelines, &all, 0).await;
    let changed = ((feeds as f64) * changed_percent / 100.0).ceil() as usize;
    change(&served.docs, 0..changed, 1)?;
    let label = format!("{changed_percent}% changed ({changed} feeds)");
    let some = cycle(&label, &pipelines, &all, 0).await;
    println!(
        "peak RSS {:.1} MiB; new items {} / {} / {}",
        peak_rss_kib(std::process::id()) as f64 / 1024.0,
        cold,
        warm,
        some
    );
    drop(pipelines);
    drop(writers);
    store.close().await;
    Ok(())
}

/// The real daemon on a five-minute schedule: cold start, then MINUTES of steady state.
/// With `LOAD_NODES=N` on PostgreSQL, N daemons share the feeds; their CPU, fetches and
/// lateness are summed.
async fn steady(args: &[String]) -> anyhow::Result<()> {
    let feeds: usize = arg(args, 0, 100_000)?;
    let minutes: u64 = arg(args, 1, 15)?;
    let changed_percent: f64 = arg(args, 2, 1.0)?;
    let daemon = daemon_binary()?;
    let (addr, served, _) = serve_feeds(feeds).await?;

    let dir = tempfile::tempdir()?;
    let mut children = Vec::new();
    let (mut pids, mut listens) = (Vec::new(), Vec::new());
    for node in 1..=nodes() {
        let node_dir = dir.path().join(format!("node-{node}"));
        std::fs::create_dir_all(&node_dir)?;
        let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let config_path = write_config(
            &node_dir,
            feeds,
            &addr.to_string(),
            &format!("listen = \"{listen}\""),
            "schedule = \"*/5 * * * *\"\njitter = \"4m\"",
            &format!("[cluster]\nnode = \"node-{node}\"\n"),
        )?;
        let (child, pid) = start_daemon(&daemon, &node_dir, &config_path)?;
        println!(
            "daemon pid {pid}, log {}",
            node_dir.join("daemon.log").display()
        );
        children.push(child);
        pids.push(pid);
        listens.push(listen);
    }
    // Interrupted, this tool would otherwise leave the daemons polling a dead server.
    let killable = pids.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            for pid in killable {
                let _ = std::process::Command::new("kill")
                    .arg(pid.to_string())
                    .status();
            }
            std::process::exit(130);
        }
    });
    let cpu = |pids: &[u32]| pids.iter().copied().map(cpu_seconds).sum::<f64>();
    let rss = |pids: &[u32]| pids.iter().copied().map(rss_kib).max().unwrap_or(0);
    let peak = |pids: &[u32]| pids.iter().copied().map(peak_rss_kib).max().unwrap_or(0);

    // Cold start: until every feed has been fetched once.
    let started = Instant::now();
    loop {
        // Not too often: each scrape renders a gauge per feed.
        tokio::time::sleep(Duration::from_secs(15)).await;
        for child in &mut children {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("a daemon exited during the cold start: {status}");
            }
        }
        let Ok(metrics) = scrape_all(&listens).await else {
            continue;
        };
        let fetched = sum(&metrics, "wirewatch_fetches_total");
        println!(
            "cold start: {fetched:.0} of {feeds} feeds after {:.0} s, RSS {:.0} MiB",
            started.elapsed().as_secs_f64(),
            rss(&pids) as f64 / 1024.0
        );
        if fetched >= feeds as f64 {
            break;
        }
    }
    let cold = started.elapsed().as_secs_f64();
    println!(
        "cold start done: {cold:.0} s, {:.0} feeds/s, {:.0} CPU s, PostgreSQL {:.0} CPU s, peak RSS {:.0} MiB",
        feeds as f64 / cold,
        cpu(&pids),
        postgres_cpu_seconds(),
        peak(&pids) as f64 / 1024.0
    );

    // Steady state, measured from the next five-minute boundary, when the feeds that the
    // cold start polled fall due again.
    let changed = ((feeds as f64) * changed_percent / 100.0).ceil() as usize;
    let cycles = minutes.div_ceil(5).max(1);
    let mut before = None;
    let mut peak_steady_rss = 0;
    for cycle in 0..=cycles {
        let boundary = Instant::now() + next_five_minutes();
        // Change this cycle's share just before its feeds fall due.
        let change_at = boundary - Duration::from_secs(2);
        sample_until(&pids, change_at, &mut peak_steady_rss, before.is_some()).await;
        if cycle < cycles {
            let first = (cycle as usize * changed) % feeds.max(1);
            change(
                &served.docs,
                first..(first + changed).min(feeds),
                cycle as usize + 1,
            )?;
        }
        sample_until(&pids, boundary, &mut peak_steady_rss, before.is_some()).await;
        let metrics = scrape_all(&listens).await?;
        if before.is_some() {
            // Rendering a gauge per feed is the largest transient allocation: count it.
            peak_steady_rss = peak_steady_rss.max(rss(&pids));
        }
        let now = (Instant::now(), cpu(&pids), postgres_cpu_seconds(), metrics);
        match &before {
            None => {
                println!("steady state: measuring {cycles} × 5 minutes from now");
                before = Some(now);
            }
            Some(_) if cycle < cycles => println!(
                "cycle {cycle} done; RSS {:.0} MiB",
                rss(&pids) as f64 / 1024.0
            ),
            Some((at, cpu, pg, metrics)) => {
                let wall = now.0.duration_since(*at).as_secs_f64();
                report_steady(
                    changed,
                    wall,
                    now.1 - cpu,
                    metrics,
                    &now.3,
                    peak_steady_rss,
                    peak(&pids),
                    served.alerts.load(Ordering::Relaxed),
                );
                let pg = now.2 - pg;
                if postgres_url().is_some() {
                    println!(
                        "  PostgreSQL CPU {pg:.1} s = {:.1}% of the machine, {} node(s)",
                        pg / wall / 2.0 * 100.0,
                        pids.len()
                    );
                }
            }
        }
    }
    for child in &mut children {
        child.start_kill()?;
        child.wait().await?;
    }

    let db = dir.path().join("node-1").join("state").join("wirewatch.db");
    let url = match postgres_url() {
        Some(url) => url.to_string(),
        None => format!("sqlite://{}?mode=ro", db.display()),
    };
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&url)
        .await
        .context("cannot open the daemons' database")?;
    let items: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
        .fetch_one(&mut conn)
        .await?;
    let bytes = std::fs::metadata(&db).map_or(0, |m| m.len());
    println!(
        "database: {items} items, {:.0} MB (SQLite file)",
        bytes as f64 / 1e6
    );
    if std::env::var_os("LOAD_KEEP").is_some() {
        println!("kept (LOAD_KEEP): {}", dir.keep().display());
    }
    Ok(())
}

/// The `/metrics` of every node, one after the other: counters sum across them, and
/// [`buckets`] adds up each bucket.
async fn scrape_all(listens: &[std::net::SocketAddr]) -> anyhow::Result<String> {
    let mut all = String::new();
    for listen in listens {
        all.push_str(&scrape(*listen).await?);
        all.push('\n');
    }
    Ok(all)
}

/// Items each rolling document carries beyond its real-world ones.
const WINDOW: usize = 5;

/// Feed `feed`'s document at `version`: its real-world body with the rolling window of
/// matching items `version * WINDOW ..` on top (RSS items or Atom entries, as the body
/// has), so each new version drops the last one's.
fn rolled(base: &[u8], feed: usize, version: usize) -> Vec<u8> {
    let (at, atom) = match find(base, b"<item>") {
        Some(at) => (at, false),
        None => (find(base, b"<entry>").unwrap_or(base.len()), true),
    };
    let items: String = (version * WINDOW..(version + 1) * WINDOW)
        .map(|n| {
            let (title, link) = (
                format!("Roll {feed}-{n}: Iran and China talks"),
                format!("https://load.example/roll/{feed}/{n}"),
            );
            if atom {
                format!(
                    "<entry><title>{title}</title><id>urn:roll-{feed}-{n}</id><link href=\"{link}\"/><updated>2026-11-28T00:00:00Z</updated></entry>"
                )
            } else {
                format!("<item><title>{title}</title><guid>roll-{feed}-{n}</guid><link>{link}</link></item>")
            }
        })
        .collect();
    let mut doc = Vec::with_capacity(base.len() + items.len());
    doc.extend_from_slice(&base[..at]);
    doc.extend_from_slice(items.as_bytes());
    doc.extend_from_slice(&base[at..]);
    doc
}

/// The real daemon with short retention under steady churn.
async fn retention(args: &[String]) -> anyhow::Result<()> {
    let feeds: usize = arg(args, 0, 2000)?;
    let minutes: u64 = arg(args, 1, 40)?;
    let changed_percent: f64 = arg(args, 2, 10.0)?;
    let daemon = daemon_binary()?;
    let (addr, served, _) = serve_feeds(feeds).await?;
    let bases: Vec<Arc<Vec<u8>>> = {
        let docs = served.docs.read().map_err(|_| anyhow::anyhow!("lock"))?;
        (0..feeds).map(|i| docs[&i].1.clone()).collect()
    };
    let dir = tempfile::tempdir()?;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config_path = write_config(
        dir.path(),
        feeds,
        &addr.to_string(),
        &format!("listen = \"{listen}\""),
        "schedule = \"every 30s\"\njitter = \"20s\"\nbackfill = \"all\"",
        "[retention]\nitems = \"5m\"\nmatches = \"10m\"\ndeliveries = \"5m\"\n",
    )?;
    let (mut child, pid) = start_daemon(&daemon, dir.path(), &config_path)?;
    let db = dir.path().join("state").join("wirewatch.db");
    println!("daemon pid {pid}, database {}", db.display());
    println!(
        "minute  items  matches  outbox  stories  db+wal MB  pruned items/matches/outbox  RSS MiB"
    );

    let changed = ((feeds as f64) * changed_percent / 100.0).ceil() as usize;
    let started = Instant::now();
    let mut version = vec![0usize; feeds];
    let mut tick = 0usize;
    while started.elapsed() < Duration::from_secs(minutes * 60) {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the daemon exited: {status}");
        }
        {
            let mut docs = served.docs.write().map_err(|_| anyhow::anyhow!("lock"))?;
            let first = (tick * changed) % feeds.max(1);
            for feed in (first..first + changed).map(|i| i % feeds) {
                version[feed] += 1;
                let doc = rolled(&bases[feed], feed, version[feed]);
                docs.insert(feed, (etag(feed, version[feed]), Arc::new(doc)));
            }
        }
        tick += 1;
        tokio::time::sleep(Duration::from_secs(30)).await;
        if tick.is_multiple_of(2) {
            let counts = row_counts(&db).await.unwrap_or_default();
            let metrics = scrape(listen).await.unwrap_or_default();
            let pruned = |table: &str| {
                value(
                    &metrics,
                    &format!("wirewatch_pruned_rows_total{{table=\"{table}\"}}"),
                )
            };
            println!(
                "{:>6}  {:>5}  {:>7}  {:>6}  {:>7}  {:>9.1}  {:>10.0}/{:.0}/{:.0}  {:>7.0}",
                tick / 2,
                counts[0],
                counts[1],
                counts[2],
                counts[3],
                value(&metrics, "wirewatch_database_bytes") / 1e6,
                pruned("items"),
                pruned("matches"),
                pruned("outbox"),
                rss_kib(pid) as f64 / 1024.0
            );
        }
    }
    println!(
        "{} alerts received; peak RSS {:.0} MiB",
        served.alerts.load(Ordering::Relaxed),
        peak_rss_kib(pid) as f64 / 1024.0
    );
    child.start_kill()?;
    child.wait().await?;
    if std::env::var_os("LOAD_KEEP").is_some() {
        println!("kept (LOAD_KEEP): {}", dir.keep().display());
    }
    Ok(())
}

/// Rows of items, matches, outbox and stories, read beside the running daemon.
async fn row_counts(db: &Path) -> anyhow::Result<[i64; 4]> {
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display())).await?;
    let mut counts = [0; 4];
    for (count, table) in counts
        .iter_mut()
        .zip(["items", "matches", "outbox", "stories"])
    {
        *count = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut conn)
            .await?;
    }
    Ok(counts)
}

#[allow(clippy::too_many_arguments)]
fn report_steady(
    changed: usize,
    wall: f64,
    cpu: f64,
    before: &str,
    after: &str,
    peak_steady_rss: u64,
    peak_rss: u64,
    alerts: usize,
) {
    let fetched = sum(after, "wirewatch_fetches_total") - sum(before, "wirewatch_fetches_total");
    let not_modified = value(after, "wirewatch_fetches_total{outcome=\"not_modified\"}")
        - value(before, "wirewatch_fetches_total{outcome=\"not_modified\"}");
    let lateness: Vec<(f64, f64)> = buckets(after, "wirewatch_schedule_lateness_seconds")
        .into_iter()
        .zip(buckets(before, "wirewatch_schedule_lateness_seconds"))
        .map(|((le, a), (_, b))| (le, a - b))
        .collect();
    let total = lateness.last().map_or(0.0, |(_, n)| *n);
    let quantile = |q: f64| {
        lateness
            .iter()
            .find(|(_, n)| *n >= q * total)
            .map_or(f64::INFINITY, |(le, _)| *le)
    };
    println!(
        "steady state over {wall:.0} s: {fetched:.0} fetches ({not_modified:.0} not modified; {:.0} feeds/s), {changed} feeds changed per cycle, {alerts} alerts received in all",
        fetched / wall
    );
    println!(
        "  CPU {cpu:.1} s = {:.1}% of the machine (2 cores), {:.1}% of one core",
        cpu / wall / 2.0 * 100.0,
        cpu / wall * 100.0
    );
    println!(
        "  RSS: peak {:.0} MiB during the steady state, {:.0} MiB over the whole run (cold start included)",
        peak_steady_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    println!(
        "  scheduler lateness over {total:.0} starts: p50 <= {} s, p99 <= {} s, p99.9 <= {} s (histogram bucket bounds)",
        quantile(0.5),
        quantile(0.99),
        quantile(0.999)
    );
    println!("  buckets (le, starts): {lateness:?}");
}

/// Samples the daemons' RSS each second until `end`, keeping the peak when `measuring`.
async fn sample_until(pids: &[u32], end: Instant, peak: &mut u64, measuring: bool) {
    while Instant::now() < end {
        tokio::time::sleep(
            Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())),
        )
        .await;
        if measuring {
            for pid in pids {
                *peak = (*peak).max(rss_kib(*pid));
            }
        }
    }
}

/// Time from now to the next wall-clock multiple of five minutes (cron's `*/5`, UTC).
fn next_five_minutes() -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let period = 300_000u128;
    let into = now.as_millis() % period;
    Duration::from_millis((period - into) as u64)
}

/// `target/release/wirewatch`, next to this example's directory.
fn daemon_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("wirewatch"))
        .context("cannot find the target directory")?;
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `cargo build --release` first",
        path.display()
    );
    Ok(path)
}

/// `GET /metrics` of the daemon, over plain HTTP/1.0.
async fn scrape(listen: std::net::SocketAddr) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(listen).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

/// The value of the sample named exactly `series` (labels included), summed over nodes.
fn value(metrics: &str, series: &str) -> f64 {
    // Summed: several nodes' metrics (`scrape_all`) each have the series.
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .sum()
}

/// The sum of every sample of `family` (all label sets).
fn sum(metrics: &str, family: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A histogram's cumulative buckets: (upper bound, count), `+Inf` last.
fn buckets(metrics: &str, family: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{family}_bucket{{le=\"");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    let parsed = metrics.lines().filter_map(|line| {
        let rest = line.strip_prefix(&prefix)?;
        let (le, count) = rest.split_once("\"} ")?;
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().ok()?
        };
        Some((le, count.trim().parse::<f64>().ok()?))
    });
    // Several nodes' histograms (`scrape_all`) add up bucket by bucket.
    for (le, count) in parsed {
        match buckets.iter_mut().find(|(bound, _)| *bound == le) {
            Some((_, total)) => *total += count,
            None => buckets.push((le, count)),
        }
    }
    buckets
}

/// Makes every feed due now (`next_due_at` cleared), on the nodes' database.
async fn all_due(pipelines: &[wirewatch::refresh::Pipeline]) -> anyhow::Result<()> {
    let Some(pipeline) = pipelines.first() else {
        return Ok(());
    };
    let url = match pipeline.store.database() {
        wirewatch::store::Database::Sqlite(path) => format!("sqlite://{}", path.display()),
        wirewatch::store::Database::Postgres(url) => url.clone(),
    };
    let mut conn = sqlx::AnyConnection::connect(&url).await?;
    sqlx::query("UPDATE feeds SET next_due_at = NULL")
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// One poll of every feed by each of `pipelines` (the nodes) at once: with several, each
/// feed is fetched by whichever node claims its lease first, and the others find it
/// refreshed. Prints its numbers and returns the new items.
async fn cycle(
    label: &str,
    pipelines: &[wirewatch::refresh::Pipeline],
    feeds: &[usize],
    bytes: usize,
) -> usize {
    // Every feed falls due now, as at a cycle's start.
    if let Err(err) = all_due(pipelines).await {
        eprintln!("cannot make every feed due: {err}");
    }
    let cpu_before = cpu_seconds(std::process::id());
    let pg_before = postgres_cpu_seconds();
    let started = Instant::now();
    let mut polls = tokio::task::JoinSet::new();
    for pipeline in pipelines {
        let (pipeline, feeds) = (pipeline.clone(), feeds.to_vec());
        polls.spawn(async move { wirewatch::scheduler::poll_due(&pipeline, &feeds).await });
    }
    let reports = polls.join_all().await;
    let wall = started.elapsed();
    let cpu = cpu_seconds(std::process::id()) - cpu_before;
    let pg = postgres_cpu_seconds() - pg_before;
    let (mut new_items, mut failed, mut not_modified, mut elsewhere) = (0, 0, 0, 0);
    for report in reports.iter().flatten().flatten() {
        match &report.outcome {
            Outcome::Updated { new_items: n, .. } => new_items += n,
            Outcome::NotModified => not_modified += 1,
            Outcome::Elsewhere { .. } => elsewhere += 1,
            _ => failed += 1,
        }
    }
    let secs = wall.as_secs_f64().max(f64::EPSILON);
    println!(
        "{label}: {:.2}s wall, {:.0} feeds/s, {:.0} new items/s, {:.1} MB/s, {:.2} CPU s ({:.0}% of 2 cores), PostgreSQL {pg:.2} CPU s, {not_modified} not modified, {failed} failed, {elsewhere} left to another node",
        secs,
        feeds.len() as f64 / secs,
        new_items as f64 / secs,
        bytes as f64 / 1e6 / secs,
        cpu,
        cpu / secs / 2.0 * 100.0,
    );
    new_items
}

async fn serve(
    State(served): State<Served>,
    UrlPath(id): UrlPath<usize>,
    headers: HeaderMap,
) -> Response {
    let Some((tag, body)) = served.docs.read().ok().and_then(|d| d.get(&id).cloned()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag);
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/xml".to_string()),
            (header::ETAG, tag),
        ],
        body.as_ref().clone(),
    )
        .into_response()
}

async fn receive(State(served): State<Served>) -> StatusCode {
    served.alerts.fetch_add(1, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

fn etag(feed: usize, version: usize) -> String {
    format!("\"{feed}-{version}\"")
}

/// Writes `load.toml` in `dir`: `feeds` feeds served at `addr`, listed in `feeds.opml` (as
/// large feed lists are kept: an OPML file takes less than half the memory to load that
/// the same list as `[[feeds]]` tables does), with `daemon` and `poll` lines added, one
/// watch-list of eight terms, alerts sent to `/hook` on the same server, and `extra`
/// tables at the end.
fn write_config(
    dir: &Path,
    feeds: usize,
    addr: &str,
    daemon: &str,
    poll: &str,
    extra: &str,
) -> anyhow::Result<PathBuf> {
    let mut opml = String::from(
        "<?xml version=\"1.0\"?>\n<opml version=\"2.0\"><head><title>load</title></head><body>\n",
    );
    for i in 0..feeds {
        opml.push_str(&format!(
            "<outline type=\"rss\" text=\"feed-{i}\" xmlUrl=\"http://{addr}/f/{i}\"/>\n"
        ));
    }
    opml.push_str("</body></opml>\n");
    std::fs::write(dir.join("feeds.opml"), opml)?;
    let database = postgres_url().map_or(String::new(), |url| format!("database = \"{url}\"\n"));
    let text = format!(
        "[daemon]\nstate_dir = \"state\"\n{database}{daemon}\n\n[poll]\nallow_private_networks = true\nconcurrency = 64\nper_host = 64\n{poll}\n\n[[opml]]\npath = \"feeds.opml\"\n\n[[watchlists]]\nname = \"iran-china\"\nterms = [\"Iran\", \"China\", \"SCO\", \"JCPOA\", \"Russia\", \"Ukraine\", \"Trump\", \"Biden\"]\nwebhooks = [\"sink\"]\n\n[[webhooks]]\nname = \"sink\"\nurl = \"http://{addr}/hook\"\n\n{extra}"
    );
    let path = dir.join("load.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Starts `wirewatch run` on `config`, its output in `daemon.log` under `dir`; returns the
/// child (killed when dropped) and its pid.
fn start_daemon(
    daemon: &Path,
    dir: &Path,
    config: &Path,
) -> anyhow::Result<(tokio::process::Child, u32)> {
    let log = std::fs::File::create(dir.join("daemon.log"))?;
    let child = tokio::process::Command::new(daemon)
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", daemon.display()))?;
    let pid = child.id().context("the daemon exited at once")?;
    Ok((child, pid))
}

/// The real-world feeds of the shared corpus, when it is there.
fn corpus_bodies() -> Option<Vec<Arc<Vec<u8>>>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let manifest = std::fs::read_to_string(root.join("MANIFEST.tsv")).ok()?;
    let bodies: Vec<Arc<Vec<u8>>> = manifest
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let category = fields.get(2)?;
            let format = fields.get(3)?;
            let wanted = (*category == "real-world-news" || *category == "real-world")
                && (format.starts_with("rss") || format.starts_with("atom"));
            wanted.then(|| std::fs::read(root.join(fields[0])).ok().map(Arc::new))?
        })
        .collect();
    if bodies.is_empty() {
        eprintln!("../shared/corpus not found: serving generated feeds");
        return None;
    }
    Some(bodies)
}

fn generated_bodies() -> Vec<Arc<Vec<u8>>> {
    (0..50)
        .map(|doc| {
            let mut text = String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Generated</title>");
            for i in 0..30 {
                text.push_str(&format!(
                    "<item><guid>g-{doc}-{i}</guid><title>Story {i} of desk {doc}: talks between China and partners</title><link>https://gen.example/{doc}/{i}</link><description>Ministers met to discuss trade, energy and security in the region; officials said more talks would follow next month.</description></item>"
                ));
            }
            text.push_str("</channel></rss>");
            Arc::new(text.into_bytes())
        })
        .collect()
}

/// User + system CPU seconds of process `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at ") ".
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of /proc/PID/stat, 12 and 13 here; clock ticks
    // are 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// A `kB` line of `/proc/PID/status`: `VmRSS` (now) or `VmHWM` (peak).
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}
