//! The invariants the fuzz targets check, one function per target, shared with the
//! regression test `tests/fuzz_regressions.rs` (which includes this file by path), so a
//! minimized crash input fails there exactly as it failed under the fuzzer.
//!
//! Input: the raw bytes a fuzz target was given. Output: nothing; a broken invariant panics
//! with a message naming it. Only documented behaviour is asserted (the `//!` and `///`
//! docs of `wirewatch::parse`, `wirewatch::dedup` and `wirewatch::matcher`): caps, plain
//! single-line text, determinism, and highlight offsets that slice the field they name.
//! This file must compile both as the fuzz crate's library and as a module of an
//! integration test of the main crate, so it uses nothing but `std`, `url` and `wirewatch`.

use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::sync::{Mutex, OnceLock, PoisonError, mpsc};

use url::Url;
use wirewatch::dedup::item_key;
use wirewatch::extract::{ExtractError, MAX_ARTICLE_BYTES, extract};
use wirewatch::matcher::{Document, Field, MAX_HIGHLIGHTS, Matcher, WatchlistMatch, WatchlistSpec};
use wirewatch::parse::{
    MAX_GUID_BYTES, MAX_ITEMS, MAX_LINK_BYTES, MAX_NAME_BYTES, MAX_NAMES, MAX_TEXT_BYTES,
    MAX_TITLE_BYTES, ParsedFeed, html_to_text, parse_feed,
};

/// The fetch URL relative links resolve against.
const BASE: &str = "https://wire.example.org/feeds/world.xml";

/// Highlight snippets are at most this many characters, ellipses included (matcher docs).
const SNIPPET_CHARS: usize = 160;

// ---------------------------------------------------------------------------------------
// Panics: only those that escape count
// ---------------------------------------------------------------------------------------

thread_local! {
    /// The last panic seen on this thread: message with location, and where it came from.
    static LAST_PANIC: RefCell<Option<(String, Backtrace)>> = const { RefCell::new(None) };
}

/// Replaces libfuzzer-sys's panic hook, which aborts on EVERY panic, caught or not. The parse
/// stage deliberately runs feed-rs under `catch_unwind` (feed-rs and quick-xml panic on some
/// inputs) and turns a panic into `ParseError::Malformed`; that is handled, not a crash. The
/// hook only remembers the panic; [`run_checked`] aborts when one escapes. Call it from the
/// target's `init:`.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        // Unresolved until printed, so cheap for the panics that end up caught.
        let trace = Backtrace::capture();
        LAST_PANIC.with(|last| *last.borrow_mut() = Some((info.to_string(), trace)));
    }));
}

/// Stack size of the thread [`run_on_blocking_stack`] runs an input on: tokio's default for
/// its blocking threads, where the daemon parses. libFuzzer's main thread has 8 MiB, which
/// hides recursion too deep for production (a stack overflow aborts the whole daemon).
pub const STACK_BYTES: usize = 2 * 1024 * 1024;

/// Runs one check on the current thread; a panic escaping it (from the code under test or
/// from a broken invariant) is printed with its backtrace and aborts the process, which
/// libFuzzer reports as a crash.
pub fn run_checked(check: fn(&[u8]), data: &[u8]) {
    if std::panic::catch_unwind(|| check(data)).is_err() {
        if let Some((message, trace)) = LAST_PANIC.with(|last| last.borrow_mut().take()) {
            eprintln!("panic escaped the code under test: {message}\n{trace}");
        }
        std::process::abort();
    }
}

/// An input for the worker thread of [`run_on_blocking_stack`].
struct Job {
    check: fn(&[u8]),
    data: Vec<u8>,
}

/// [`run_checked`] on a long-lived worker thread with a [`STACK_BYTES`] stack, as the parse
/// stage runs in the daemon. One thread for all inputs: spawning one per input costs a third
/// of the execs/s under ASan and makes LeakSanitizer report the thread's own bookkeeping.
pub fn run_on_blocking_stack(check: fn(&[u8]), data: &[u8]) {
    static WORKER: OnceLock<Mutex<(mpsc::Sender<Job>, mpsc::Receiver<()>)>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("fuzz-2MiB".into())
            .stack_size(STACK_BYTES)
            .spawn(move || {
                for job in job_rx {
                    run_checked(job.check, &job.data);
                    if done_tx.send(()).is_err() {
                        return;
                    }
                }
            });
        if let Err(err) = spawned {
            eprintln!("cannot spawn the fuzz worker thread: {err}");
            std::process::abort();
        }
        Mutex::new((job_tx, done_rx))
    });
    let channels = worker.lock().unwrap_or_else(PoisonError::into_inner);
    let job = Job {
        check,
        data: data.to_vec(),
    };
    if channels.0.send(job).is_err() || channels.1.recv().is_err() {
        eprintln!("the fuzz worker thread is gone");
        std::process::abort();
    }
}

// ---------------------------------------------------------------------------------------
// parse_feed
// ---------------------------------------------------------------------------------------

/// `parse_feed` on arbitrary bytes: never panics, is deterministic, and every field of every
/// item respects its cap; item keys are non-empty and stable across two parses; what the
/// document caps cut is counted plausibly and does not depend on the base URL.
pub fn check_parse_feed(data: &[u8]) {
    let base = Url::parse(BASE).expect("BASE is a valid URL");
    let first = parse_feed(data, Some(&base));
    let second = parse_feed(data, Some(&base));
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "parse_feed is not deterministic");
            check_parsed(a, data);
            let keys_a: Vec<String> = a.items.iter().map(item_key).collect();
            let keys_b: Vec<String> = b.items.iter().map(item_key).collect();
            assert_eq!(keys_a, keys_b, "item_key differs across two parses");
            for key in &keys_a {
                assert!(
                    ["guid:", "link:", "hash:"]
                        .iter()
                        .any(|p| key.starts_with(p) && key.len() > p.len()),
                    "item_key is empty or has an unknown form: {key:?}"
                );
            }
        }
        (Err(a), Err(b)) => assert_eq!(
            a.to_string(),
            b.to_string(),
            "parse_feed errors differ across two parses"
        ),
        _ => panic!(
            "parse_feed succeeded once and failed once: {:?} vs {:?}",
            first.as_ref().map(|f| f.items.len()),
            second.as_ref().map(|f| f.items.len())
        ),
    }
    // Without a fetch URL (a local file, `test-feed`), links resolve against the home page;
    // what the caps cut does not depend on it.
    if let Ok(feed) = parse_feed(data, None) {
        check_parsed(&feed, data);
        if let Ok(with_base) = &first {
            assert_eq!(
                (feed.dropped_items, feed.dropped_elements),
                (with_base.dropped_items, with_base.dropped_elements),
                "the caps cut differently with and without a base URL"
            );
        }
    }
}

fn check_parsed(feed: &ParsedFeed, data: &[u8]) {
    assert!(
        feed.items.len() <= MAX_ITEMS,
        "{} items > MAX_ITEMS",
        feed.items.len()
    );
    // Whatever the caps cut was in the document: an item or element is at least two bytes
    // (`{}`, `0,`, `<a/>`), so a count past that is counting something twice.
    let dropped = feed.dropped_items.saturating_add(feed.dropped_elements);
    assert!(
        dropped <= data.len() / 2,
        "{} items and {} elements dropped from {} bytes",
        feed.dropped_items,
        feed.dropped_elements,
        data.len()
    );
    if let Some(title) = &feed.title {
        assert!(!title.is_empty(), "feed title is Some(\"\")");
        check_text("feed title", title, MAX_TITLE_BYTES);
    }
    for (i, item) in feed.items.iter().enumerate() {
        check_text(&format!("items[{i}].title"), &item.title, MAX_TITLE_BYTES);
        check_text(
            &format!("items[{i}].summary"),
            &item.summary,
            MAX_TEXT_BYTES,
        );
        check_text(
            &format!("items[{i}].content"),
            &item.content,
            MAX_TEXT_BYTES,
        );
        if let Some(guid) = &item.guid {
            assert!(
                !guid.is_empty() && guid.len() <= MAX_GUID_BYTES && guid.trim() == guid,
                "items[{i}].guid empty, untrimmed or over MAX_GUID_BYTES ({} bytes)",
                guid.len()
            );
        }
        if let Some(link) = &item.link {
            assert!(
                matches!(link.scheme(), "http" | "https")
                    && link.host_str().is_some_and(|h| !h.is_empty())
                    && link.as_str().len() <= MAX_LINK_BYTES,
                "items[{i}].link is not a capped absolute http(s) URL: {link}"
            );
        }
        for (what, names) in [("authors", &item.authors), ("categories", &item.categories)] {
            assert!(
                names.len() <= MAX_NAMES,
                "items[{i}].{what}: {} > MAX_NAMES",
                names.len()
            );
            for name in names {
                assert!(
                    !name.is_empty() && name.len() <= MAX_NAME_BYTES,
                    "items[{i}].{what} entry empty or over MAX_NAME_BYTES ({} bytes)",
                    name.len()
                );
            }
        }
        assert!(
            item.guid.is_some()
                || item.link.is_some()
                || !item.title.is_empty()
                || !item.summary.is_empty()
                || !item.content.is_empty(),
            "items[{i}] has no guid, link, title or text (should have been dropped)"
        );
    }
}

/// Plain text as the parse stage promises it: capped, one line, single spaces, trimmed.
fn check_text(what: &str, text: &str, cap: usize) {
    assert!(
        text.len() <= cap,
        "{what}: {} bytes > cap {cap}",
        text.len()
    );
    check_one_line(what, text);
}

// ---------------------------------------------------------------------------------------
// html_to_text
// ---------------------------------------------------------------------------------------

/// `html_to_text` on arbitrary UTF-8: never panics, deterministic, one trimmed line with
/// single spaces and no invisible characters; on input with no `<` and no `&` (no markup,
/// no entity) it only collapses whitespace and drops invisible characters.
pub fn check_html_to_text(data: &[u8]) {
    let Ok(html) = std::str::from_utf8(data) else {
        return;
    };
    let text = html_to_text(html);
    assert_eq!(
        text,
        html_to_text(html),
        "html_to_text is not deterministic"
    );
    check_one_line("html_to_text output", &text);
    if !html.contains(['<', '&']) {
        assert_eq!(
            text,
            collapse_plain(html),
            "html_to_text changed text that holds no markup and no entity"
        );
    }
}

/// What `html_to_text` documents for text without tags or entities.
fn collapse_plain(s: &str) -> String {
    let mut out = String::new();
    let mut pending = false;
    for c in s.chars() {
        if c.is_whitespace() || c == '\u{200B}' {
            pending = !out.is_empty();
        } else if !is_invisible(c) {
            if pending {
                out.push(' ');
                pending = false;
            }
            out.push(c);
        }
    }
    out
}

/// BOM, soft hyphen, bidi marks and controls: removed from plain text (parse docs).
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{FEFF}' | '\u{00AD}' | '\u{061C}' | '\u{200E}' | '\u{200F}'
        )
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// One line: no whitespace but single U+0020 spaces between visible characters, none at
/// either end, and no invisible characters.
fn check_one_line(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|c| is_invisible(*c)) {
        panic!("{what}: holds invisible/control character {c:?}");
    }
    if let Some(c) = text.chars().find(|c| c.is_whitespace() && *c != ' ') {
        panic!("{what}: holds whitespace {c:?} (should be collapsed to a space)");
    }
    assert!(
        !text.starts_with(' ') && !text.ends_with(' '),
        "{what}: leading or trailing space"
    );
    assert!(!text.contains("  "), "{what}: double space");
}

// ---------------------------------------------------------------------------------------
// extract
// ---------------------------------------------------------------------------------------

/// `extract` on arbitrary bytes (with and without an HTML `Content-Type`): never panics,
/// deterministic; a result has non-empty text of at most `MAX_ARTICLE_BYTES` whose lines are
/// trimmed and single-spaced, and a one-line title.
pub fn check_extract(data: &[u8]) {
    let base = Url::parse(BASE).expect("BASE is a valid URL");
    for content_type in [Some("text/html"), None] {
        let first = extract(data, content_type, Some(&base));
        let second = extract(data, content_type, Some(&base));
        match (&first, &second) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "extract is not deterministic");
                assert!(!a.text.is_empty(), "extracted text is empty");
                assert!(
                    a.text.len() <= MAX_ARTICLE_BYTES,
                    "text of {} bytes > MAX_ARTICLE_BYTES",
                    a.text.len()
                );
                for line in a.text.split("\n\n") {
                    check_one_line("extracted paragraph", line);
                }
                if let Some(title) = &a.title {
                    check_one_line("extracted title", title);
                }
            }
            (Err(a), Err(b)) => {
                assert_eq!(a.to_string(), b.to_string(), "extract errors differ");
                assert!(
                    !matches!(a, ExtractError::Malformed(m) if m.contains("panicked")),
                    "the extraction crate panicked (caught): {a}"
                );
            }
            _ => panic!("extract succeeded once and failed once"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// matcher
// ---------------------------------------------------------------------------------------

/// The fixed watch-lists the matcher target searches: Persian, Chinese, acronyms, prefixes,
/// phrases, aliases across scripts, a query, excludes, field restrictions, and terms whose
/// folding changes their length (`ß`, `ﬁ`, `İ`, full-width letters).
pub fn watchlist_specs() -> Vec<WatchlistSpec> {
    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }
    fn list(name: &str, terms: &[&str]) -> WatchlistSpec {
        WatchlistSpec {
            name: name.to_string(),
            terms: strings(terms),
            ..WatchlistSpec::default()
        }
    }
    vec![
        WatchlistSpec {
            aliases: vec![(
                "Iran".into(),
                strings(&["ایران", "伊朗", "Persia", "ايران", "イラン"]),
            )],
            ..list(
                "iran",
                &["Iran", "Tehran", "تهران", "\"Iran nuclear deal\""],
            )
        },
        WatchlistSpec {
            aliases: vec![(
                "SCO".into(),
                strings(&[
                    "Shanghai Cooperation Organisation",
                    "Shanghai Cooperation Organization",
                    "上海合作组织",
                ]),
            )],
            query: Some("(Iran* OR JCPOA) AND (China OR SCO OR 中国)".into()),
            ..list("sco", &["SCO", "China", "中国", "JCPOA", "Iran*"])
        },
        list(
            "acronyms",
            &["U.S.", "G7", "IRGC", "ＳＣＯ", "NATO", "\"nuclear deal*\""],
        ),
        WatchlistSpec {
            acronyms_exact: false,
            exclude: strings(&["football", "foot*", "Chinatown"]),
            ..list(
                "inexact",
                &["EU", "China*", "Straße", "finance", "İstanbul"],
            )
        },
        WatchlistSpec {
            fields: vec![Field::Title, Field::Categories],
            ..list(
                "title-only",
                &[
                    "پاکستان",
                    "چین",
                    "Côte d'Ivoire",
                    "São Paulo",
                    "Łódź",
                    "Йемен",
                ],
            )
        },
        WatchlistSpec {
            fields: vec![Field::Summary, Field::Content],
            query: Some("Gaza AND NOT \"football club\"".into()),
            ..list(
                "summary-content",
                &["Gaza", "ガザ", "भारत", "อิหร่าน", "Ｉｒａｎ", "Tehrān"],
            )
        },
    ]
}

fn matcher() -> &'static Matcher {
    static MATCHER: OnceLock<Matcher> = OnceLock::new();
    MATCHER.get_or_init(|| match Matcher::compile(&watchlist_specs()) {
        Ok(m) => m,
        Err(errors) => panic!("fuzz watch-lists do not compile: {errors:?}"),
    })
}

/// `match_item` on arbitrary UTF-8, split on `\n` into title, summary, content and then
/// categories: never panics; every highlight's `start..end` slices its field on char
/// boundaries and is non-empty; terms are sorted, unique and cover the highlights; at most
/// `MAX_HIGHLIGHTS`; results ordered by watch-list; `wanted` only filters.
pub fn check_matcher(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = input.split('\n');
    let title = parts.next().unwrap_or("");
    let summary = parts.next().unwrap_or("");
    let content = parts.next().unwrap_or("");
    let categories: Vec<String> = parts.map(str::to_string).collect();
    // The article is the content again: another field over the same hostile text.
    let doc = Document {
        title,
        summary,
        content,
        categories: &categories,
        article: content,
    };
    let m = matcher();
    let all = m.match_item(&doc, &|_| true);
    let mut last = None;
    for wm in &all {
        assert!(
            wm.watchlist < m.watchlist_count(),
            "watch-list index out of range"
        );
        assert!(
            last.is_none_or(|l| l < wm.watchlist),
            "matches not ordered by watch-list index (or repeated)"
        );
        last = Some(wm.watchlist);
        check_match(wm, &doc);
    }
    let even = m.match_item(&doc, &|i| i % 2 == 0);
    let expected: Vec<WatchlistMatch> = all
        .iter()
        .filter(|wm| wm.watchlist % 2 == 0)
        .cloned()
        .collect();
    assert_eq!(
        even, expected,
        "`wanted` changed more than which watch-lists match"
    );
}

fn check_match(wm: &WatchlistMatch, doc: &Document<'_>) {
    let list = wm.watchlist;
    assert!(
        !wm.terms.is_empty(),
        "watch-list {list}: a match with no term"
    );
    assert!(
        wm.terms.windows(2).all(|w| w[0] < w[1]),
        "watch-list {list}: terms not sorted and de-duplicated: {:?}",
        wm.terms
    );
    assert!(
        wm.highlights.len() <= MAX_HIGHLIGHTS,
        "watch-list {list}: {} highlights > MAX_HIGHLIGHTS",
        wm.highlights.len()
    );
    for h in &wm.highlights {
        assert!(
            wm.terms.contains(&h.term),
            "watch-list {list}: highlight term {:?} not among the match's terms {:?}",
            h.term,
            wm.terms
        );
        let in_range = |text: &str| {
            h.start < h.end
                && h.end <= text.len()
                && text.is_char_boundary(h.start)
                && text.is_char_boundary(h.end)
        };
        let ok = match h.field {
            Field::Title => in_range(doc.title),
            Field::Summary => in_range(doc.summary),
            Field::Content => in_range(doc.content),
            Field::Article => in_range(doc.article),
            // The snippet is the trimmed category itself, or an excerpt when that is over
            // SNIPPET_CHARS (see `highlight_snippet`); several categories may qualify, and
            // the span must fit one of them.
            Field::Categories => doc.categories.iter().any(|c| {
                in_range(c) && (c.trim() == h.snippet || c.trim().chars().count() > SNIPPET_CHARS)
            }),
        };
        assert!(
            ok,
            "watch-list {list}: highlight {}..{} of {} (snippet {:?}) is empty, out of range \
             or not on char boundaries of its field",
            h.start, h.end, h.field, h.snippet
        );
        assert!(
            h.snippet.chars().count() <= SNIPPET_CHARS,
            "watch-list {list}: snippet of {} chars > {SNIPPET_CHARS}",
            h.snippet.chars().count()
        );
    }
}
