//! Matcher throughput: MB/s of `Matcher::match_item` over real news text, with watch-lists
//! of 10, 1,000 and 10,000 terms, and the time to compile 10,000 terms.
//!
//! Input: the titles and summaries of the corpus's real-world feeds, extracted once with
//! `parse_feed` (the text the daemon matches; `content` is left empty so the figure is
//! about titles and summaries). Two text sets: `english`, the items whose language is
//! English (declared by the item, the feed or the manifest; when nothing is declared, a
//! feed whose letters are nearly all ASCII and whose text is full of English function
//! words), and `all_languages`, every item. Without the corpus, a built-in English text
//! (group `fallback`) stands in and a notice says so.
//!
//! Watch-lists are made the way users write them: ten terms each. The first is always
//! `Iran, China, SCO, JCPOA` and six more on the same beat; the others hold real
//! countries, cities, people and organisations (a few dozen, which do occur in news) and
//! then generated, deterministic names shaped like countries, cities and people, which
//! almost never occur, as on a real watch-list. Before measuring, the bench prints how
//! many items matched and how many distinct terms hit, so that claim can be checked.
//!
//! One iteration matches every item once, on one thread, against every watch-list:
//! criterion's MB/s is per core.
//!
//! Run: `cargo bench --bench matcher -- --warm-up-time 1 --measurement-time 5`

mod common;

use std::collections::{BTreeSet, HashSet};
use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use url::Url;
use wirewatch::matcher::{Document, Matcher, WatchlistSpec};
use wirewatch::parse::{Item, parse_feed};

/// Terms per generated watch-list.
const TERMS_PER_LIST: usize = 10;

/// The first watch-list, in every term set.
const BEAT: [&str; TERMS_PER_LIST] = [
    "Iran",
    "China",
    "SCO",
    "JCPOA",
    "Tehran",
    "Beijing",
    "Xi Jinping",
    "\"Iran nuclear deal\"",
    "Shanghai Cooperation Organisation",
    "Sanction*",
];

/// Real names that do turn up in news text; they fill the first lists after the beat.
const REAL: &[&str] = &[
    "Russia",
    "Ukraine",
    "Israel",
    "Gaza",
    "Germany",
    "France",
    "India",
    "Japan",
    "Brazil",
    "Mexico",
    "Canada",
    "Syria",
    "Turkey",
    "Egypt",
    "Pakistan",
    "Taiwan",
    "North Korea",
    "Italy",
    "Spain",
    "Poland",
    "Afghanistan",
    "Saudi Arabia",
    "Venezuela",
    "Nigeria",
    "London",
    "Paris",
    "Moscow",
    "Kyiv",
    "Washington",
    "Berlin",
    "Tokyo",
    "Jerusalem",
    "New Delhi",
    "Brussels",
    "Hong Kong",
    "Joe Biden",
    "Donald Trump",
    "Vladimir Putin",
    "Emmanuel Macron",
    "Olaf Scholz",
    "Boris Johnson",
    "Volodymyr Zelensky",
    "Elon Musk",
    "NATO",
    "OPEC",
    "European Union",
    "United Nations",
    "Federal Reserve",
    "IAEA",
    "WHO",
];

const SYLLABLES: &[&str] = &[
    "ka", "ve", "lor", "dri", "mon", "sa", "tel", "qua", "ri", "bo", "zan", "mir", "gol", "the",
    "un", "pra", "vis", "ne", "tor", "ha", "li", "os", "jen", "ru", "dak", "fe", "sim", "ya",
    "bel", "cor", "an", "te", "mar", "ish", "ko", "ul", "rev", "den", "pa", "zor",
];
const COUNTRY_ENDINGS: &[&str] = &["ia", "stan", "land", "ora", "ica", "ania", "istan", "esh"];
const CITY_ENDINGS: &[&str] = &[
    "burg", "grad", "abad", "ville", "port", "polis", "ford", "heim", "ovo", "pur",
];
const SURNAME_ENDINGS: &[&str] = &["ov", "ez", "son", "ski", "ian", "ani", "berg", "escu", ""];

/// A small deterministic generator (SplitMix64), so the term sets never change.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn stem(rng: &mut SplitMix, syllables: usize) -> String {
    (0..syllables).map(|_| rng.pick(SYLLABLES)).collect()
}

/// One made-up name: a country, a city or a person.
fn made_up_name(rng: &mut SplitMix) -> String {
    match rng.next() % 3 {
        0 => {
            let n = 2 + (rng.next() % 2) as usize;
            capitalized(&(stem(rng, n) + rng.pick(COUNTRY_ENDINGS)))
        }
        1 => {
            let n = 1 + (rng.next() % 2) as usize;
            capitalized(&(stem(rng, n) + rng.pick(CITY_ENDINGS)))
        }
        _ => {
            let first = capitalized(&stem(rng, 2));
            let n = 2 + (rng.next() % 2) as usize;
            let last = capitalized(&(stem(rng, n) + rng.pick(SURNAME_ENDINGS)));
            format!("{first} {last}")
        }
    }
}

/// `count` distinct terms: the beat, the real names, then made-up names.
fn terms(count: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(count);
    let mut push = |term: String, out: &mut Vec<String>| {
        if out.len() < count && seen.insert(term.to_lowercase()) {
            out.push(term);
        }
    };
    for term in BEAT.iter().chain(REAL) {
        push((*term).to_owned(), &mut out);
    }
    let mut rng = SplitMix(0x0005_EED0_FA11_1157);
    while out.len() < count {
        push(made_up_name(&mut rng), &mut out);
    }
    out
}

/// Watch-lists of ten terms each over `terms(count)`.
fn watchlists(count: usize) -> Vec<WatchlistSpec> {
    terms(count)
        .chunks(TERMS_PER_LIST)
        .enumerate()
        .map(|(i, chunk)| WatchlistSpec {
            name: format!("list-{i:04}"),
            terms: chunk.to_vec(),
            ..WatchlistSpec::default()
        })
        .collect()
}

/// One item's text as the matcher sees it here.
struct Text {
    title: String,
    summary: String,
}

impl Text {
    fn document(&self) -> Document<'_> {
        Document {
            title: &self.title,
            summary: &self.summary,
            ..Document::default()
        }
    }
    fn len(&self) -> usize {
        self.title.len() + self.summary.len()
    }
}

/// English function words, padded with spaces, for feeds that declare no language.
/// (`in` is left out: German, Dutch and Italian use it too.)
const ENGLISH_WORDS: &[&str] = &[" the ", " and ", " of ", " to ", " is ", " for ", " with "];

/// A feed that declares no language is taken for English when under 1% of its letters are
/// non-ASCII (typographic quotes and dashes are not letters) and English function words
/// turn up at least once per 250 bytes (English prose has two or three per 100; headlines
/// alone have fewer).
fn looks_english(items: &[Item]) -> bool {
    let text: String = items
        .iter()
        .flat_map(|i| [" ", i.title.as_str(), " ", i.summary.as_str(), " "])
        .collect::<String>()
        .to_lowercase();
    if text.len() < 200 {
        return false;
    }
    let (letters, foreign) = text
        .chars()
        .filter(|c| c.is_alphabetic())
        .fold((0usize, 0usize), |(all, foreign), c| {
            (all + 1, foreign + usize::from(!c.is_ascii()))
        });
    let words: usize = ENGLISH_WORDS.iter().map(|w| text.matches(w).count()).sum();
    foreign * 100 < letters && words * 250 > text.len()
}

fn is_english_tag(tag: &str) -> bool {
    let tag = tag.trim().to_ascii_lowercase();
    tag == "en" || tag.starts_with("en-") || tag.starts_with("en_")
}

/// (English items, all items) of the corpus's real-world feeds.
fn corpus_texts() -> Option<(Vec<Text>, Vec<Text>)> {
    let files = common::real_world_feeds()?;
    let base = Url::parse("https://feeds.example.com/news/feed.xml").expect("a valid URL");
    let verbose = std::env::var_os("WIREWATCH_BENCH_VERBOSE").is_some();
    let (mut english, mut all) = (Vec::new(), Vec::new());
    for file in &files {
        let Ok(feed) = parse_feed(&file.bytes, Some(&base)) else {
            continue;
        };
        let undeclared_english = looks_english(&feed.items);
        let mut english_items = 0;
        for item in &feed.items {
            let declared = item
                .language
                .as_deref()
                .or((!file.language.is_empty()).then_some(file.language.as_str()));
            let is_english = declared.map_or(undeclared_english, is_english_tag);
            let text = || Text {
                title: item.title.clone(),
                summary: item.summary.clone(),
            };
            if is_english {
                english.push(text());
                english_items += 1;
            }
            all.push(text());
        }
        if verbose {
            eprintln!(
                "  {:<70} {:>4} items, {:>4} English",
                file.path,
                feed.items.len(),
                english_items
            );
        }
    }
    Some((english, all))
}

/// Stands in when the corpus is missing: English wire copy, repeated.
const FALLBACK: &[(&str, &str)] = &[
    (
        "Iran says talks on reviving the nuclear deal to resume in Vienna",
        "Iran's foreign ministry said negotiators would return to Vienna next week to discuss \
         reviving the 2015 agreement, known as the JCPOA, as Western diplomats warned that time \
         was running out.",
    ),
    (
        "China's exports slow for a third month as global demand cools",
        "Shipments from the world's second-largest economy rose less than expected in October, \
         customs data showed on Monday, adding pressure on Beijing to step up support.",
    ),
    (
        "Leaders gather in Samarkand for SCO summit",
        "Heads of state of the Shanghai Cooperation Organisation met on Thursday, with trade, \
         security and energy on the agenda, officials said.",
    ),
    (
        "Central bank raises rates by half a point, signals more to come",
        "The bank lifted its benchmark rate to the highest level in fourteen years and said \
         further increases were likely as inflation remains well above target.",
    ),
    (
        "Storm leaves thousands without power along the coast",
        "Utility crews worked through the night to restore electricity after high winds and \
         heavy rain brought down lines across three counties, authorities said.",
    ),
    (
        "Parliament passes budget after marathon overnight session",
        "Lawmakers approved the spending plan by a narrow margin early on Friday after the \
         government agreed to last-minute concessions on energy subsidies and pensions.",
    ),
    (
        "Shares edge higher as investors weigh earnings and jobs data",
        "Stocks rose modestly in early trading on Wall Street, led by technology shares, while \
         the dollar held steady against major currencies ahead of the monthly payrolls report.",
    ),
    (
        "Wildfire forces evacuation of hillside towns",
        "Firefighters battled a fast-moving blaze fanned by dry winds, and officials ordered \
         residents of several communities to leave their homes as a precaution.",
    ),
];

fn fallback_texts() -> Vec<Text> {
    (0..500)
        .flat_map(|_| FALLBACK)
        .map(|(title, summary)| Text {
            title: (*title).to_owned(),
            summary: (*summary).to_owned(),
        })
        .collect()
}

fn bytes_of(texts: &[Text]) -> usize {
    texts.iter().map(Text::len).sum()
}

fn non_ascii_share(texts: &[Text]) -> f64 {
    let non_ascii: usize = texts
        .iter()
        .flat_map(|t| t.title.bytes().chain(t.summary.bytes()))
        .filter(|b| !b.is_ascii())
        .count();
    non_ascii as f64 * 100.0 / bytes_of(texts).max(1) as f64
}

/// Matches every text once; returns how many items matched, for the summary line.
fn match_all(matcher: &Matcher, texts: &[Text], hit: &mut BTreeSet<String>) -> usize {
    let mut matched = 0;
    for text in texts {
        let found = matcher.match_item(&text.document(), &|_| true);
        matched += usize::from(!found.is_empty());
        for m in found {
            hit.extend(m.terms);
        }
    }
    matched
}

fn matcher(c: &mut Criterion) {
    let sets = match corpus_texts() {
        Some((english, all)) if !english.is_empty() => {
            vec![("english", english), ("all_languages", all)]
        }
        _ => {
            eprintln!(
                "matcher: the shared corpus is missing at {}: measuring the built-in \
                 fallback text instead",
                common::CORPUS_DIR
            );
            vec![("fallback", fallback_texts())]
        }
    };
    let sample = terms(10_000);
    eprintln!(
        "matcher: made-up names look like: {}",
        sample[sample.len() - 4..].join(", ")
    );
    let sizes = [10usize, 1_000, 10_000];
    let matchers: Vec<(usize, Matcher)> = sizes
        .iter()
        .map(|&n| {
            let started = Instant::now();
            let m = Matcher::compile(&watchlists(n)).expect("generated watch-lists compile");
            eprintln!(
                "matcher: {n} terms: {} watch-lists, {} patterns, compiled in {:.1} ms",
                m.watchlist_count(),
                m.pattern_count(),
                started.elapsed().as_secs_f64() * 1e3
            );
            (n, m)
        })
        .collect();

    for (set, texts) in &sets {
        eprintln!(
            "matcher: text `{set}`: {} items, {:.2} MB (titles + summaries), {:.1}% non-ASCII bytes",
            texts.len(),
            common::mb(bytes_of(texts)),
            non_ascii_share(texts)
        );
        for (n, m) in &matchers {
            let mut hit = BTreeSet::new();
            let matched = match_all(m, texts, &mut hit);
            let made_up = hit
                .iter()
                .filter(|t| !BEAT.contains(&t.as_str()) && !REAL.contains(&t.as_str()))
                .count();
            eprintln!(
                "matcher:   {n:>5} terms: {matched} items matched; {} distinct terms hit \
                 ({made_up} of them made-up names)",
                hit.len()
            );
        }

        let mut group = c.benchmark_group(format!("matcher/{set}"));
        group.throughput(Throughput::BytesDecimal(bytes_of(texts) as u64));
        for (n, m) in &matchers {
            group.bench_with_input(BenchmarkId::from_parameter(n), m, |b, m| {
                b.iter(|| {
                    for text in texts.iter() {
                        black_box(m.match_item(black_box(&text.document()), &|_| true));
                    }
                });
            });
        }
        group.finish();
    }

    let specs = watchlists(10_000);
    let mut group = c.benchmark_group("matcher/compile");
    group.sample_size(10);
    group.bench_function("10000", |b| {
        b.iter(|| Matcher::compile(black_box(&specs)).map(|m| m.pattern_count()));
    });
    group.finish();
}

criterion_group!(benches, matcher);
criterion_main!(benches);
