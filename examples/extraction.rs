//! Article extraction, measured: every page of the shared article benchmark
//! (`../shared/articles`, 97 pages with hand-labelled main text) through one extractor,
//! scored as the benchmark's README says (`tests/articles/mod.rs`), and timed per page.
//!
//! ```text
//! cargo run --release --example extraction -- wirewatch
//! cargo run --release --example extraction --features bench-readability,bench-trafilatura -- all
//! ```
//!
//! Extractors: `wirewatch` (`wirewatch::extract::extract`: charset, bounds, whitespace and
//! the cap around rs-trafilatura), `rs-trafilatura` (the crate alone, default options),
//! `dom_smoothie`, `readability` and `trafilatura` (the go-trafilatura port; also
//! `trafilatura+fallback`) with their `bench-*` features, or `all`. The
//! raw candidates get the page as UTF-8 (every benchmark page is) and its URL. Each page is
//! extracted `RUNS` times (default 3) and its time is the fastest run; the table gives the
//! median and p95 of those per-page times. `VERBOSE=1` prints every page's scores.
//! `-- hostile` instead times 16 MiB hostile pages (deep nesting, an attribute flood, a
//! script-heavy page, 16 MiB of paragraphs, unclosed formatting tags).
//! `-- hostile` instead times 16 MiB hostile pages (deep nesting, an attribute flood, a
//! script-heavy page, 16 MiB of paragraphs, unclosed formatting tags).

#[path = "../tests/articles/mod.rs"]
mod articles;

use std::time::{Duration, Instant};

use articles::Page;

type Extractor = fn(&Page) -> Result<String, String>;

fn with_wirewatch(page: &Page) -> Result<String, String> {
    let url = url::Url::parse(&page.url).ok();
    wirewatch::extract::extract(&page.html, Some("text/html"), url.as_ref())
        .map(|e| e.text)
        .map_err(|e| e.to_string())
}

fn with_trafilatura(page: &Page) -> Result<String, String> {
    let html = String::from_utf8_lossy(&page.html);
    let flag = |name: &str| std::env::var_os(name).is_some();
    let options = rs_trafilatura::Options {
        url: (!flag("TRAF_NO_URL")).then(|| page.url.clone()),
        favor_precision: flag("TRAF_PRECISION"),
        favor_recall: flag("TRAF_RECALL"),
        include_tables: !flag("TRAF_NO_TABLES"),
        page_type: flag("TRAF_ARTICLE").then_some(rs_trafilatura::page_type::PageType::Article),
        ..rs_trafilatura::Options::default()
    };
    rs_trafilatura::extract_with_options(&html, &options)
        .map(|r| r.content_text)
        .map_err(|e| e.to_string())
}

fn with_dom_smoothie(page: &Page) -> Result<String, String> {
    let html = String::from_utf8_lossy(&page.html);
    let mut readability = dom_smoothie::Readability::new(html.as_ref(), Some(&page.url), None)
        .map_err(|e| e.to_string())?;
    readability
        .parse()
        .map(|a| a.text_content.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(feature = "bench-readability")]
fn with_readability(page: &Page) -> Result<String, String> {
    let url = url::Url::parse(&page.url).map_err(|e| e.to_string())?;
    readability::extractor::extract(&mut &page.html[..], &url)
        .map(|p| p.text)
        .map_err(|e| e.to_string())
}

#[cfg(feature = "bench-trafilatura")]
fn trafilatura_rs(page: &Page, fallback: bool) -> Result<String, String> {
    let html = String::from_utf8_lossy(&page.html);
    let mut options = trafilatura::Options::default().with_fallback(fallback);
    if let Ok(url) = url::Url::parse(&page.url) {
        options = options.with_url(url);
    }
    trafilatura::extract(&html, &options)
        .map(|r| r.content_text)
        .map_err(|e| e.to_string())
}

#[cfg(feature = "bench-trafilatura")]
fn with_trafilatura_rs(page: &Page) -> Result<String, String> {
    trafilatura_rs(page, false)
}

#[cfg(feature = "bench-trafilatura")]
fn with_trafilatura_rs_fallback(page: &Page) -> Result<String, String> {
    trafilatura_rs(page, true)
}

fn extractors() -> Vec<(&'static str, Extractor)> {
    #[allow(unused_mut)] // only pushed to with a bench-* feature
    let mut all: Vec<(&'static str, Extractor)> = vec![
        ("wirewatch", with_wirewatch),
        ("rs-trafilatura", with_trafilatura),
        ("dom_smoothie", with_dom_smoothie),
    ];
    #[cfg(feature = "bench-readability")]
    all.push(("readability", with_readability));
    #[cfg(feature = "bench-trafilatura")]
    all.push(("trafilatura", with_trafilatura_rs));
    #[cfg(feature = "bench-trafilatura")]
    all.push(("trafilatura+fallback", with_trafilatura_rs_fallback));
    all
}

/// 16 MiB hostile pages through `wirewatch::extract::extract`, each timed (peak memory: run
/// under `/usr/bin/time -v`).
fn hostile() {
    const SIZE: usize = 16 * 1024 * 1024;
    let fill = |head: &str, unit: &str, tail: &str| {
        let mut page = String::with_capacity(SIZE + unit.len());
        page.push_str(head);
        while page.len() + tail.len() < SIZE {
            page.push_str(unit);
        }
        page.push_str(tail);
        page
    };
    let attrs: String = (0..200).map(|i| format!(" a{i}=\"x\"")).collect();
    let cases = [
        ("deep nesting", fill("<html><body>", "<div>", "")),
        (
            "attribute flood",
            fill(
                "<html><body>",
                &format!("<span{attrs}>w</span>"),
                "</body></html>",
            ),
        ),
        (
            "script-heavy",
            fill(
                "<html><body><p>Short story text here.</p>",
                "<script>var a = '<div><div>';</script>",
                "</body></html>",
            ),
        ),
        (
            "16 MiB of paragraphs",
            fill(
                "<html><body><article>",
                "<p>Words of a very long article body, sentence after sentence.</p>",
                "</article></body></html>",
            ),
        ),
        ("unclosed formatting", fill("<html><body>", "<b><i>x", "")),
    ];
    for (name, page) in cases {
        let start = Instant::now();
        let outcome = wirewatch::extract::extract(page.as_bytes(), Some("text/html"), None);
        let summary = match outcome {
            Ok(e) => format!("ok, {} bytes of text", e.text.len()),
            Err(err) => format!("error: {err}"),
        };
        println!("{name}: {:.2} s, {summary}", start.elapsed().as_secs_f64());
    }
}

fn main() {
    let wanted = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "wirewatch".into());
    if wanted == "hostile" {
        return hostile();
    }
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let verbose = std::env::var_os("VERBOSE").is_some();
    let dir = articles::articles_dir();
    let pages = match articles::load(&dir) {
        Ok(pages) => pages,
        Err(err) => {
            eprintln!("cannot load the article benchmark: {err}");
            std::process::exit(2);
        }
    };
    let chosen: Vec<_> = extractors()
        .into_iter()
        .filter(|(name, _)| wanted == "all" || *name == wanted)
        .collect();
    if chosen.is_empty() {
        let names: Vec<_> = extractors().iter().map(|(n, _)| *n).collect();
        eprintln!(
            "unknown extractor {wanted:?}; built in: {names:?} or all (others need their bench-* feature)"
        );
        std::process::exit(2);
    }
    let words = articles::word_regex();
    println!(
        "{} pages from {}, {runs} runs per page\n",
        pages.len(),
        dir.display()
    );
    println!("| extractor | F1 | precision | recall | median ms/page | p95 ms/page | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, extract) in chosen {
        let mut scores = Vec::with_capacity(pages.len());
        let mut times = Vec::with_capacity(pages.len());
        let mut errors = 0;
        for page in &pages {
            let mut best = Duration::MAX;
            let mut text = String::new();
            for _ in 0..runs {
                let start = Instant::now();
                let out = extract(page);
                best = best.min(start.elapsed());
                text = match out {
                    Ok(text) => text,
                    Err(err) => {
                        if verbose {
                            eprintln!("{name} {}: {err}", page.key);
                        }
                        String::new()
                    }
                };
            }
            if text.is_empty() {
                errors += 1;
            }
            let score = articles::page_score(&words, &text, &page.expected);
            if verbose {
                eprintln!(
                    "{name} {} p={:?} r={:?} {:.1} ms {}",
                    &page.key[..8],
                    score.0,
                    score.1,
                    best.as_secs_f64() * 1e3,
                    page.url
                );
            }
            scores.push(score);
            times.push(best);
        }
        times.sort();
        let quantile = |q: f64| {
            let i = ((times.len() as f64 - 1.0) * q).round() as usize;
            times[i].as_secs_f64() * 1e3
        };
        let s = articles::average(&scores);
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} | {errors} |",
            s.f1,
            s.precision,
            s.recall,
            quantile(0.5),
            quantile(0.95)
        );
    }
}
