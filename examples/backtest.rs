//! What `wirewatch backtest` costs over a full window: a real store (SQLite file, the
//! commit stage's own statements) filled with N items from 50 feeds, then the backtest
//! engine run over them, the configured watch-list against a candidate, as `wirewatch
//! backtest --with` runs it. Also timed: the snapshot scan alone (every item read, nothing
//! matched), to tell the store's part from the matcher's.
//!
//! ```text
//! cargo run --release --example backtest -- 100000
//! ```
//!
//! The first argument is the number of items (default 100,000); the second, if given, a
//! directory for the database, which a later run given the same directory reuses rather
//! than fills again (`ONLY=scan` or `ONLY=backtest` then times one of the two, e.g. under
//! `perf stat`). The texts are generated (seeded,
//! so every run stores the same): a 10-word title, a summary of about 300 bytes, and on
//! half the items a content of about 1 KB; 70% English, 10% each Persian, Chinese and
//! Russian, drawn from news vocabulary, with about 4% of the items naming a watched term.
//! Every item is its own story but for one in ten, which joins an earlier one. `RUNS`
//! (default 5) sets how many times each measurement is taken; the median is printed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use wirewatch::backtest::{self, Backtest, Definition};
use wirewatch::config::Config;
use wirewatch::store::{ItemRow, NewItem, ScanSink, ScannedItem, Store, StoredFeed};

const FEEDS: usize = 50;
/// Items stored per transaction while filling.
const FILL_BATCH: usize = 2_000;
/// When the items were first seen: within the last 30 days.
const DAY: i64 = 24 * 3600;

const ENGLISH: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "on",
    "for",
    "with",
    "said",
    "officials",
    "minister",
    "government",
    "talks",
    "agreement",
    "sanctions",
    "oil",
    "exports",
    "market",
    "prices",
    "election",
    "parliament",
    "president",
    "security",
    "forces",
    "border",
    "trade",
    "bank",
    "ministry",
    "foreign",
    "week",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "reported",
    "according",
    "statement",
    "spokesman",
    "deal",
    "nuclear",
    "energy",
    "gas",
    "pipeline",
    "port",
    "shipping",
    "tanker",
    "navy",
    "military",
    "drills",
    "summit",
    "leaders",
    "economy",
    "growth",
    "inflation",
    "currency",
    "investment",
    "infrastructure",
    "railway",
    "project",
    "cooperation",
    "bilateral",
    "regional",
    "delegation",
    "visit",
    "capital",
    "protest",
    "court",
    "ruling",
    "police",
    "arrested",
    "killed",
    "wounded",
    "attack",
    "ceasefire",
    "humanitarian",
    "aid",
    "refugees",
    "crisis",
    "weather",
    "football",
    "league",
    "season",
    "coach",
    "players",
    "film",
    "festival",
    "technology",
    "satellite",
    "launch",
];
const PERSIAN: &[&str] = &[
    "دولت",
    "وزیر",
    "امور",
    "خارجه",
    "مذاکرات",
    "توافق",
    "تحریم",
    "نفت",
    "صادرات",
    "بازار",
    "قیمت",
    "انتخابات",
    "مجلس",
    "رئیس",
    "جمهور",
    "امنیت",
    "مرز",
    "تجارت",
    "بانک",
    "هفته",
    "گزارش",
    "بیانیه",
    "سخنگو",
    "هسته‌ای",
    "انرژی",
    "گاز",
    "بندر",
    "کشتیرانی",
    "نیروی",
    "دریایی",
    "همکاری",
    "منطقه‌ای",
    "هیئت",
    "سفر",
    "پایتخت",
    "دادگاه",
    "پلیس",
    "اقتصاد",
];
const CHINESE: &[&str] = &[
    "政府",
    "外交部",
    "部长",
    "会谈",
    "协议",
    "制裁",
    "石油",
    "出口",
    "市场",
    "价格",
    "选举",
    "总统",
    "安全",
    "边境",
    "贸易",
    "银行",
    "本周",
    "报道",
    "声明",
    "发言人",
    "核",
    "能源",
    "天然气",
    "管道",
    "港口",
    "航运",
    "海军",
    "军事",
    "演习",
    "峰会",
    "领导人",
    "经济",
    "增长",
    "通胀",
    "货币",
    "投资",
    "基础设施",
    "铁路",
    "项目",
    "合作",
    "双边",
    "地区",
    "代表团",
];
const RUSSIAN: &[&str] = &[
    "правительство",
    "министр",
    "иностранных",
    "дел",
    "переговоры",
    "соглашение",
    "санкции",
    "нефть",
    "экспорт",
    "рынок",
    "цены",
    "выборы",
    "парламент",
    "президент",
    "безопасность",
    "граница",
    "торговля",
    "банк",
    "неделе",
    "сообщил",
    "заявление",
    "представитель",
    "ядерной",
    "энергетика",
    "газ",
    "трубопровод",
    "порт",
    "флот",
    "учения",
    "саммит",
    "экономика",
];

/// Terms some items name, in each language: what makes them match.
const NAMED: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "Iran",
            "China",
            "SCO",
            "JCPOA",
            "Tehran",
            "Beijing",
            "Chinatown",
            "Iranian",
        ],
    ),
    ("fa", &["ایران", "چین", "تهران"]),
    ("zh", &["伊朗", "中国", "上海合作组织"]),
    ("ru", &["Иран", "Китай", "ШОС"]),
];

const CONFIG: &str = r#"
[[watchlists]]
name = "iran-china"
terms = ["Iran", "China", "SCO", "JCPOA"]
aliases = { SCO = ["Shanghai Cooperation Organisation", "上海合作组织", "ШОС"], JCPOA = ["Iran nuclear deal"], Iran = ["ایران", "伊朗", "Иран"], China = ["中国", "چین", "Китай"] }
exclude = ["football"]
"#;

/// The candidate: Tehran and Beijing added, the excludes widened, the SCO dropped.
fn candidate(config: &Config) -> Definition {
    let mut definition = Definition::of(config.watchlist("iran-china").expect("configured"));
    definition.spec.terms = ["Iran", "China", "JCPOA", "Tehran", "Beijing"]
        .map(String::from)
        .to_vec();
    definition.spec.aliases.retain(|(term, _)| term != "SCO");
    definition.spec.exclude = ["football", "festival", "film"].map(String::from).to_vec();
    definition
}

fn words(rng: &mut StdRng, vocabulary: &[&str], bytes: usize, joiner: &str) -> String {
    let mut text = String::with_capacity(bytes + 32);
    while text.len() < bytes {
        if !text.is_empty() {
            text.push_str(joiner);
        }
        text.push_str(vocabulary[rng.random_range(0..vocabulary.len())]);
    }
    text
}

/// One item's title, summary and content, in one of the four languages.
fn item(rng: &mut StdRng) -> (String, String, String) {
    let (language, vocabulary, joiner) = match rng.random_range(0..10) {
        0 => (1, PERSIAN, " "),
        1 => (2, CHINESE, ""),
        2 => (3, RUSSIAN, " "),
        _ => (0, ENGLISH, " "),
    };
    let mut title = words(rng, vocabulary, 60, joiner);
    let mut summary = words(rng, vocabulary, 300, joiner);
    let content = if rng.random_bool(0.5) {
        words(rng, vocabulary, 1000, joiner)
    } else {
        String::new()
    };
    if rng.random_bool(0.04) {
        let named = NAMED[language].1;
        let term = named[rng.random_range(0..named.len())];
        if rng.random_bool(0.5) {
            title = format!("{term}{joiner}{title}");
        } else {
            summary = format!("{summary}{joiner}{term}");
        }
    }
    (title, summary, content)
}

/// Reads every page and keeps nothing: the scan's own cost.
struct Drain(u64);

impl ScanSink for Drain {
    fn feeds(&mut self, _feeds: Vec<StoredFeed>) {}

    async fn page(&mut self, items: Vec<ScannedItem>) -> bool {
        self.0 += items.len() as u64;
        true
    }
}

/// The binary's allocator, so that the figures are the command's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// CPU time of the whole process so far (every thread, user and system), from
/// `/proc/self/stat` (clock ticks of 10 ms).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses: utime and stime are the
    // 12th and 13th of them.
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|f| f.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    // The database goes in DIR when given (and a database already there is reused),
    // else in a temporary directory.
    let temp = tempfile::tempdir().expect("a temp dir");
    let dir = std::env::args()
        .nth(2)
        .map_or_else(|| temp.path().to_path_buf(), std::path::PathBuf::from);
    let path = dir.join("wirewatch.db");
    let reused = path.exists();
    let mut source = String::new();
    for n in 0..FEEDS {
        source.push_str(&format!(
            "[[feeds]]\nname = \"feed-{n}\"\nurl = \"https://feed{n}.example/rss\"\n\n"
        ));
    }
    source.push_str(CONFIG);
    let config = Config::from_source(&dir.join("wirewatch.toml"), &source).expect("config");
    let store = Store::open(&path).await.expect("open the store");
    let feeds: Vec<(&str, &str)> = config
        .feeds
        .iter()
        .map(|f| (f.name.as_str(), f.url.as_str()))
        .collect();
    store.register(&feeds, &[]).await.expect("register");
    let mut feed_ids = Vec::new();
    for feed in &config.feeds {
        feed_ids.push(
            store
                .feed_state(&feed.name)
                .await
                .expect("read")
                .expect("row")
                .id,
        );
    }

    let now = wirewatch::clock::unix();
    if reused {
        println!("reusing {}", path.display());
    } else {
        let mut rng = StdRng::seed_from_u64(12);
        let started = Instant::now();
        let mut stored = 0;
        let mut text_bytes = 0;
        let mut stories: Vec<i64> = Vec::new();
        while stored < count {
            let batch: Vec<(String, String, String)> = (0..FILL_BATCH.min(count - stored))
                .map(|_| item(&mut rng))
                .collect();
            text_bytes += batch
                .iter()
                .map(|(t, s, c)| t.len() + s.len() + c.len())
                .sum::<usize>();
            // First seen spread over the last 30 days, in order.
            let at = now - 30 * DAY + (stored as i64 * 30 * DAY) / count as i64;
            let joins: Vec<Option<i64>> = batch
                .iter()
                .map(|_| {
                    (!stories.is_empty() && rng.random_bool(0.1))
                        .then(|| stories[rng.random_range(0..stories.len())])
                })
                .collect();
            let feeds: Vec<i64> = batch
                .iter()
                .map(|_| feed_ids[rng.random_range(0..feed_ids.len())])
                .collect();
            let new_stories = store
                .transaction(async |tx| {
                    let first = tx.last_story_id().await? + 1;
                    let fresh = joins.iter().filter(|j| j.is_none()).count() as i64;
                    let new: Vec<i64> = (first..first + fresh).collect();
                    tx.insert_stories(&new, at).await?;
                    let mut next = new.iter();
                    let keys: Vec<String> = (stored..stored + batch.len())
                        .map(|n| format!("item-{n}"))
                        .collect();
                    let urls: Vec<String> = (stored..stored + batch.len())
                        .map(|n| format!("https://news.example/{n}"))
                        .collect();
                    let rows: Vec<ItemRow> = batch
                        .iter()
                        .zip(&joins)
                        .zip(&keys)
                        .zip(&urls)
                        .zip(&feeds)
                        .map(|((((text, join), key), url), feed)| ItemRow {
                            feed_id: *feed,
                            story_id: join.or_else(|| next.next().copied()).unwrap_or(first),
                            matched: false,
                            watchlists: None,
                            bands: None,
                            item: NewItem {
                                item_key: key,
                                title: &text.0,
                                url: Some(url),
                                published_at: None,
                                summary: &text.1,
                                content: &text.2,
                                article: "",
                                authors: &[],
                                categories: &[],
                                language: None,
                            },
                        })
                        .collect();
                    tx.insert_items(&rows, at).await?;
                    Ok(new)
                })
                .await
                .expect("fill");
            stories.extend(new_stories);
            stored += batch.len();
        }
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "{count} items, {:.0} MB of text, {:.0} MB on disk, stored in {:.0} s",
            text_bytes as f64 / 1e6,
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
    }
    // The last 31 days: every item of a database filled within the last day.
    let since = now - 31 * DAY;
    let only = std::env::var("ONLY").unwrap_or_default();
    let mut scans = Vec::new();
    let scan_cpu = cpu();
    for _ in 0..runs {
        if only == "backtest" {
            break;
        }
        let started = Instant::now();
        let mut drain = Drain(0);
        store.scan_items(since, &mut drain).await.expect("scan");
        scans.push(started.elapsed());
        if !reused {
            assert_eq!(drain.0 as usize, count);
        }
    }
    let scan_cpu = (cpu() - scan_cpu) / runs as u32;
    let configured = Definition::of(config.watchlist("iran-china").expect("configured"));
    let run = Backtest {
        candidate: candidate(&config),
        current: Some(configured),
        since,
    };
    let mut backtests = Vec::new();
    let mut report = None;
    let backtest_cpu = cpu();
    for _ in 0..runs {
        if only == "scan" {
            break;
        }
        let started = Instant::now();
        report = Some(
            backtest::run(&store, &config, &run)
                .await
                .expect("backtest"),
        );
        backtests.push(started.elapsed());
    }
    let backtest_cpu = (cpu() - backtest_cpu) / runs as u32;
    if !scans.is_empty() {
        println!(
            "scan alone: median {:.0} ms of {runs} ({:?}), {:.0} ms of CPU per run",
            median(scans.clone()).as_secs_f64() * 1e3,
            scans.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
            scan_cpu.as_secs_f64() * 1e3
        );
    }
    let Some(report) = report else {
        return;
    };
    let stories: HashSet<&str> = report
        .would_alert
        .iter()
        .map(|a| a.story.as_str())
        .collect();
    println!(
        "backtest: median {:.0} ms of {runs} ({:?}), {:.0} ms of CPU per run; {} items scanned, {} stories would alert, +{} -{}",
        median(backtests.clone()).as_secs_f64() * 1e3,
        backtests.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
        backtest_cpu.as_secs_f64() * 1e3,
        report.items_scanned,
        stories.len(),
        report.diff.added.len(),
        report.diff.removed.len()
    );
}
