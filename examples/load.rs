//! Poll load: serves N feeds from a local HTTP server (with ETags, so unchanged feeds
//! answer 304) and runs real poll cycles through wirewatch's pipeline — fetch, parse,
//! de-duplication, matching, the SQLite store and the outbox — reporting feeds/s, items/s,
//! CPU seconds and peak RSS for a cold cycle (everything new), a warm one (everything
//! 304) and one with a share of the feeds changed.
//!
//!     cargo run --release --example load -- [FEEDS] [CHANGED_PERCENT]
//!
//! Feed bodies are the real-world feeds of `../shared/corpus` (round-robin, so 2,000 feeds
//! are about 130 MB), or generated documents when the corpus is missing. Every feed is on
//! 127.0.0.1, so `per_host` is raised to `concurrency` here: a real deployment spreads
//! feeds over many hosts.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use wirewatch::config::Config;
use wirewatch::refresh::Outcome;

type Docs = Arc<RwLock<HashMap<usize, (String, Arc<Vec<u8>>)>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let feeds: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let changed_percent: f64 = args.next().map_or(Ok(1.0), |a| a.parse())?;

    let bodies = corpus_bodies().unwrap_or_else(generated_bodies);
    let docs: Docs = Arc::new(RwLock::new(HashMap::new()));
    let mut total_bytes = 0usize;
    {
        let mut map = docs.write().map_err(|_| anyhow::anyhow!("lock"))?;
        for i in 0..feeds {
            let body = bodies[i % bodies.len()].clone();
            total_bytes += body.len();
            map.insert(i, (etag(i, 0), body));
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/f/{id}", get(serve))
        .with_state(docs.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("load.toml");
    std::fs::write(&config_path, config_text(feeds, &addr.to_string()))?;
    let config = Arc::new(Config::load(&config_path)?);
    let (store, pipeline) = wirewatch::daemon::open(&config).await?;
    let all: Vec<usize> = (0..feeds).collect();

    println!(
        "{feeds} feeds, {:.1} MB of feed documents, {} distinct bodies",
        total_bytes as f64 / 1e6,
        bodies.len()
    );
    let cold = cycle("cold (all new)", &pipeline, &all, total_bytes).await;
    let warm = cycle("warm (all 304)", &pipeline, &all, 0).await;
    // Change a share of the feeds: a new ETag and one new item each.
    let changed = ((feeds as f64) * changed_percent / 100.0).ceil() as usize;
    {
        let mut map = docs.write().map_err(|_| anyhow::anyhow!("lock"))?;
        for i in 0..changed {
            let (_, body) = &map[&i];
            let text = String::from_utf8_lossy(body).replacen(
                "<item>",
                &format!("<item><title>Update {i}: Iran and China talks</title><guid>load-update-{i}</guid><link>https://load.example/u/{i}</link></item><item>"),
                1,
            );
            map.insert(i, (etag(i, 1), Arc::new(text.into_bytes())));
        }
    }
    let label = format!("{changed_percent}% changed ({changed} feeds)");
    let some = cycle(&label, &pipeline, &all, 0).await;
    println!(
        "peak RSS {:.1} MiB; new items {} / {} / {}",
        peak_rss_kib() as f64 / 1024.0,
        cold,
        warm,
        some
    );
    store.close().await;
    Ok(())
}

/// One poll cycle over `feeds`; prints its numbers and returns the new items.
async fn cycle(
    label: &str,
    pipeline: &wirewatch::refresh::Pipeline,
    feeds: &[usize],
    bytes: usize,
) -> usize {
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let reports = wirewatch::schedule::poll_once(pipeline, feeds).await;
    let wall = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    let (mut new_items, mut failed, mut not_modified) = (0, 0, 0);
    for report in reports.iter().flatten() {
        match &report.outcome {
            Outcome::Updated { new_items: n, .. } => new_items += n,
            Outcome::NotModified => not_modified += 1,
            _ => failed += 1,
        }
    }
    let secs = wall.as_secs_f64().max(f64::EPSILON);
    println!(
        "{label}: {:.2}s wall, {:.0} feeds/s, {:.0} new items/s, {:.1} MB/s, {:.2} CPU s ({:.0}% of 2 cores), {not_modified} not modified, {failed} failed",
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
    State(docs): State<Docs>,
    UrlPath(id): UrlPath<usize>,
    headers: HeaderMap,
) -> Response {
    let Some((tag, body)) = docs.read().ok().and_then(|d| d.get(&id).cloned()) else {
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

fn etag(feed: usize, version: usize) -> String {
    format!("\"{feed}-{version}\"")
}

fn config_text(feeds: usize, addr: &str) -> String {
    let mut text = String::from(
        "[daemon]\nstate_dir = \"state\"\nlisten = \"\"\n\n[poll]\nallow_private_networks = true\nconcurrency = 64\nper_host = 64\nbackfill = \"all\"\n",
    );
    for i in 0..feeds {
        text.push_str(&format!(
            "\n[[feeds]]\nname = \"feed-{i}\"\nurl = \"http://{addr}/f/{i}\"\n"
        ));
    }
    text.push_str(
        "\n[[watchlists]]\nname = \"iran-china\"\nterms = [\"Iran\", \"China\", \"SCO\", \"JCPOA\", \"Russia\", \"Ukraine\", \"Trump\", \"Biden\"]\nwebhooks = [\"sink\"]\n\n[[webhooks]]\nname = \"sink\"\nurl = \"http://127.0.0.1:9/never-called\"\n",
    );
    text
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

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
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

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
