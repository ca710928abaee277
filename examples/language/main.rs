//! How well `wirewatch::language::detect` tells the language of a news title, and what it
//! costs: runs it over the labelled titles of [`titles`] (real-world feeds of
//! `../shared/corpus` with a declared language, the hand-written story pairs, the
//! hand-written Arabic titles) and prints, per language:
//!
//! - `pure`: accuracy of the title alone, no declared language (detection only);
//! - `+body`: the same with the item's summary (the first 1,000 characters) after the title;
//! - `declared`: accuracy of the title with the feed's declared language as the fallback,
//!   and the share of titles where that fallback was taken;
//! - the commonest wrong answers of `pure`;
//!
//! then accuracy against the confidence threshold, and the time per title.
//!
//! ```text
//! cargo run --release --example language
//! ```

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use wirewatch::language::{BODY_CHARS, MIN_CONFIDENCE, detect, iso639_1, primary_subtag};

/// The shared module names the library's stages as `crate::…`, so it compiles in the
/// library's tests as well as here.
mod parse {
    pub use wirewatch::parse::*;
}
mod language {
    pub use wirewatch::language::*;
}
mod titles;

/// How many times the whole set is detected for the timing.
const TIMING_ROUNDS: usize = 20;

#[derive(Default)]
struct Row {
    n: usize,
    pure: usize,
    body: usize,
    declared: usize,
    fell_back: usize,
    wrong: BTreeMap<String, usize>,
}

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dropped = Vec::new();
    let Some(titles) = titles::labelled(repo, &mut dropped) else {
        eprintln!("../shared/corpus not found: nothing to measure");
        return;
    };
    for line in &dropped {
        println!("dropped {line}");
    }
    let mut sources: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for title in &titles {
        *sources.entry((title.label, title.source)).or_default() += 1;
    }
    println!("\ntitles by language and source: {sources:?}\n");

    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
    for title in &titles {
        let row = rows.entry(title.label).or_default();
        row.n += 1;
        let pure = detect(&title.title, "", None);
        if pure.as_deref() == Some(title.label) {
            row.pure += 1;
        } else {
            *row.wrong
                .entry(pure.unwrap_or_else(|| "none".to_owned()))
                .or_default() += 1;
        }
        if detect(&title.title, &title.body, None).as_deref() == Some(title.label) {
            row.body += 1;
        }
        let with = detect(&title.title, "", Some(&title.declared));
        if with.as_deref() == Some(title.label) {
            row.declared += 1;
        }
        let sure = detect(&title.title, "", Some("und"));
        if sure.is_none() || sure != with {
            row.fell_back += 1;
        }
    }
    println!(
        "| language | titles | pure (title only) | pure, title + summary | with declared fallback | fell back to declared | commonest wrong (pure) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let (mut n, mut pure, mut body, mut declared, mut fell_back) = (0, 0, 0, 0, 0);
    for (label, row) in &rows {
        let mut wrong: Vec<_> = row.wrong.iter().collect();
        wrong.sort_by(|a, b| b.1.cmp(a.1));
        let wrong: Vec<String> = wrong
            .iter()
            .take(3)
            .map(|(l, c)| format!("{l} {c}"))
            .collect();
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} |",
            row.n,
            pct(row.pure, row.n),
            pct(row.body, row.n),
            pct(row.declared, row.n),
            pct(row.fell_back, row.n),
            wrong.join(", ")
        );
        n += row.n;
        pure += row.pure;
        body += row.body;
        declared += row.declared;
        fell_back += row.fell_back;
    }
    println!(
        "| all | {n} | {} | {} | {} | {} | |",
        pct(pure, n),
        pct(body, n),
        pct(declared, n),
        pct(fell_back, n)
    );

    // The rule of `detect` at other thresholds: whatlang's answer when reliable or at
    // least `threshold` confident, else the declared language.
    println!(
        "\nthreshold sweep (title only; MIN_CONFIDENCE = {MIN_CONFIDENCE}): accuracy pure (unsure = none) / with declared / fell back"
    );
    for threshold in [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.01] {
        let (mut pure, mut with, mut back) = (0, 0, 0);
        for title in &titles {
            let info = whatlang::detect(&title.title);
            let sure = info
                .as_ref()
                .filter(|info| info.is_reliable() || info.confidence() >= threshold)
                .map(|info| iso639_1(info.lang()));
            pure += usize::from(sure == Some(title.label));
            let guess = sure.or_else(|| {
                back += 1;
                primary_subtag(&title.declared)
            });
            with += usize::from(guess == Some(title.label));
        }
        println!(
            "  {threshold:>4}: {} / {} / {}",
            pct(pure, titles.len()),
            pct(with, titles.len()),
            pct(back, titles.len())
        );
    }

    let start = Instant::now();
    for _ in 0..TIMING_ROUNDS {
        for title in &titles {
            black_box(detect(black_box(&title.title), "", Some(&title.declared)));
        }
    }
    let per_title = start.elapsed().as_secs_f64() * 1e6 / (TIMING_ROUNDS * titles.len()) as f64;
    let start = Instant::now();
    for _ in 0..TIMING_ROUNDS {
        for title in &titles {
            black_box(detect(
                black_box(&title.title),
                &title.body,
                Some(&title.declared),
            ));
        }
    }
    let per_item = start.elapsed().as_secs_f64() * 1e6 / (TIMING_ROUNDS * titles.len()) as f64;
    let long = "word ".repeat(20_000);
    let start = Instant::now();
    for _ in 0..TIMING_ROUNDS {
        black_box(detect("A title", black_box(&long), None));
    }
    let per_long = start.elapsed().as_secs_f64() * 1e6 / TIMING_ROUNDS as f64;
    println!(
        "\ntime per call, one core: {per_title:.1} µs a title, {per_item:.1} µs a title + summary, {per_long:.1} µs a title + 100 KB body (bounded at {BODY_CHARS} chars)"
    );
}

fn pct(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    format!("{:.1}%", 100.0 * part as f64 / whole as f64)
}
