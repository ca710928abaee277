//! The language of an item (SPEC §13): an ISO 639-1 code detected from its own text, the
//! feed's declared language only when detection is unsure.
//!
//! Input: the item's title, the start of its body (summary or article text) and the
//! language the feed or entry declared (`<language>`, `xml:lang`, JSON Feed `language`).
//! Output: `Some("en")`, `Some("fa")`, `Some("zh")`, … or `None` when nothing is known.
//!
//! The detector is `whatlang` (trigrams over 70 languages, pure Rust, no model files). It
//! looks at the title plus at most [`BODY_CHARS`] characters of the body, so the cost stays
//! small and flat however long the article: about 30–45 µs a title and 50–85 µs a title with
//! its summary on one core (`examples/language`, BENCHMARKS.md "Language of titles"); most
//! of it is whatlang comparing the text with each candidate language's trigram profile. It
//! allocates one string of at most about a kilobyte, plus whatlang's own lower-cased copy
//! and trigram table.
//!
//! The order of trust:
//!
//! 1. whatlang's answer, when it is sure: [`Info::is_reliable`] (confidence above 0.9), or
//!    a confidence of at least [`MIN_CONFIDENCE`] on a text long enough to count;
//! 2. else the declared language, reduced to its primary subtag (`en-US` → `en`,
//!    `zh_CN` → `zh`, `eng` → `en`);
//! 3. else a guess from the script alone, where the script names one language: Hangul →
//!    `ko`, Hiragana or Katakana → `ja`, and the scripts whatlang gives a single language
//!    (Greek, Hebrew, Thai, Georgian, …). Han alone is not enough to tell Chinese from
//!    Japanese, nor Arabic letters Arabic from Persian or Urdu: those give `None` here;
//! 4. else `None`.
//!
//! Han text: whatlang calls every Han-only text Chinese with full confidence (it turns to
//! Japanese only when kana make up more than 2% of the CJK letters). A Japanese headline
//! written in kanji alone (`東京都知事選 投票率`) is real, a Chinese feed declaring `ja` is
//! not, so a Han-only text from a feed that declares `ja` is taken as `ja`.

use whatlang::{Info, Lang, Script};

/// Characters of the body looked at after the title: the lede of a summary or an article.
/// Accuracy on the labelled titles is the same as with 1,000 (BENCHMARKS.md "Language of
/// titles"); the time per call is a fifth lower on long bodies.
pub const BODY_CHARS: usize = 300;

/// The confidence below which whatlang's answer is not trusted on its own (unless
/// [`Info::is_reliable`] says otherwise). Chosen on the labelled titles of
/// `examples/language.rs`: see BENCHMARKS.md "Language of titles".
pub const MIN_CONFIDENCE: f64 = 0.5;

/// The language of an item: ISO 639-1, lower case. See the module documentation for the
/// order of trust between the text and `declared`.
pub fn detect(title: &str, body: &str, declared: Option<&str>) -> Option<String> {
    let declared = declared.and_then(primary_subtag);
    let text = sample(title, body);
    match whatlang::detect(&text) {
        Some(info) => {
            if let Some(code) = trusted(&info, declared) {
                return Some(code.to_owned());
            }
            declared
                .map(str::to_owned)
                .or_else(|| script_guess(info.script()).map(str::to_owned))
        }
        None => declared.map(str::to_owned),
    }
}

/// The title, a separator and the first [`BODY_CHARS`] characters of the body.
fn sample(title: &str, body: &str) -> String {
    let title = title.trim();
    let body = body.trim();
    let end = body
        .char_indices()
        .nth(BODY_CHARS)
        .map_or(body.len(), |(at, _)| at);
    let body = &body[..end];
    let mut text = String::with_capacity(title.len() + body.len() + 2);
    text.push_str(title);
    if !title.is_empty() && !body.is_empty() {
        text.push_str(". ");
    }
    text.push_str(body);
    text
}

/// whatlang's answer as ISO 639-1, when it is sure enough to stand without the declared
/// language.
fn trusted(info: &Info, declared: Option<&'static str>) -> Option<&'static str> {
    let code = iso639_1(info.lang());
    if code == "zh" && declared == Some("ja") && info.script() == Script::Mandarin {
        // Han alone: see the module documentation.
        return Some("ja");
    }
    (info.is_reliable() || info.confidence() >= MIN_CONFIDENCE).then_some(code)
}

/// The one language a script stands for, when there is only one.
fn script_guess(script: Script) -> Option<&'static str> {
    match script {
        Script::Hangul => Some("ko"),
        Script::Hiragana | Script::Katakana => Some("ja"),
        // Chinese or Japanese: see the module documentation.
        Script::Mandarin => None,
        other => match other.langs() {
            [only] => Some(iso639_1(*only)),
            _ => None,
        },
    }
}

/// Whether `code` is written as an ISO 639-1 code: two lower-case ASCII letters (what a
/// watch-list's `languages` lists, and what [`detect`] gives).
pub fn is_iso639_1(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase())
}

/// A declared language tag reduced to ISO 639-1: the primary subtag, lower-cased (`en-US`
/// → `en`, `zh_CN` → `zh`); a three-letter ISO 639-2/3 code or an English language name
/// (`eng`, `fas`, `English`) is mapped when whatlang knows the language. `und`, `mul` and
/// anything else unknown give `None`.
pub fn primary_subtag(tag: &str) -> Option<&'static str> {
    let primary = tag.trim().split(['-', '_']).next()?.trim();
    if primary.is_empty() || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let lower = primary.to_ascii_lowercase();
    match lower.len() {
        2 => Lang::all()
            .iter()
            .map(|&lang| iso639_1(lang))
            .chain(EXTRA_639_1.iter().copied())
            .find(|code| *code == lower),
        3 => match lower.as_str() {
            "fas" | "per" => Some("fa"),
            "zho" | "chi" => Some("zh"),
            "ara" | "arb" => Some("ar"),
            "deu" | "ger" => Some("de"),
            "fra" | "fre" => Some("fr"),
            "nld" | "dut" => Some("nl"),
            "ces" | "cze" => Some("cs"),
            "ell" | "gre" => Some("el"),
            "nor" => Some("no"),
            _ => Lang::from_code(lower.as_str()).map(iso639_1),
        },
        _ => Lang::all()
            .iter()
            .find(|lang| lang.eng_name().eq_ignore_ascii_case(primary))
            .map(|&lang| iso639_1(lang)),
    }
}

/// Two-letter codes a feed may declare for languages whatlang does not detect (or names
/// otherwise: `no` for Norwegian, whatlang's Bokmål being `nb`). The declared language is
/// kept when detection is unsure, so these must survive [`primary_subtag`].
const EXTRA_639_1: &[&str] = &[
    "no", "nn", "ga", "gd", "eu", "gl", "is", "lb", "mt", "sq", "bs", "ms", "sw", "ps", "ku", "kk",
    "ky", "tg", "mn", "bo", "ug", "so", "ha", "yo", "ig", "xh", "st", "mi", "sm", "fy", "br", "co",
    "oc", "fo", "rm",
];

/// whatlang's language (ISO 639-3) as ISO 639-1. Every language whatlang 0.18 knows has
/// one; the match is exhaustive, so a whatlang upgrade that adds a language does not
/// compile until it is mapped here.
pub fn iso639_1(lang: Lang) -> &'static str {
    match lang {
        Lang::Epo => "eo",
        Lang::Eng => "en",
        Lang::Rus => "ru",
        Lang::Cmn => "zh",
        Lang::Spa => "es",
        Lang::Por => "pt",
        Lang::Ita => "it",
        Lang::Ben => "bn",
        Lang::Fra => "fr",
        Lang::Deu => "de",
        Lang::Ukr => "uk",
        Lang::Kat => "ka",
        Lang::Ara => "ar",
        Lang::Hin => "hi",
        Lang::Jpn => "ja",
        Lang::Heb => "he",
        Lang::Yid => "yi",
        Lang::Pol => "pl",
        Lang::Amh => "am",
        Lang::Jav => "jv",
        Lang::Kor => "ko",
        Lang::Nob => "nb",
        Lang::Dan => "da",
        Lang::Swe => "sv",
        Lang::Fin => "fi",
        Lang::Tur => "tr",
        Lang::Nld => "nl",
        Lang::Hun => "hu",
        Lang::Ces => "cs",
        Lang::Ell => "el",
        Lang::Bul => "bg",
        Lang::Bel => "be",
        Lang::Mar => "mr",
        Lang::Kan => "kn",
        Lang::Ron => "ro",
        Lang::Slv => "sl",
        Lang::Hrv => "hr",
        Lang::Srp => "sr",
        Lang::Mkd => "mk",
        Lang::Lit => "lt",
        Lang::Lav => "lv",
        Lang::Est => "et",
        Lang::Tam => "ta",
        Lang::Vie => "vi",
        Lang::Urd => "ur",
        Lang::Tha => "th",
        Lang::Guj => "gu",
        Lang::Uzb => "uz",
        Lang::Pan => "pa",
        Lang::Aze => "az",
        Lang::Ind => "id",
        Lang::Tel => "te",
        Lang::Pes => "fa",
        Lang::Mal => "ml",
        Lang::Ori => "or",
        Lang::Mya => "my",
        Lang::Nep => "ne",
        Lang::Sin => "si",
        Lang::Khm => "km",
        Lang::Tuk => "tk",
        Lang::Aka => "ak",
        Lang::Zul => "zu",
        Lang::Sna => "sn",
        Lang::Afr => "af",
        Lang::Lat => "la",
        Lang::Slk => "sk",
        Lang::Cat => "ca",
        Lang::Tgl => "tl",
        Lang::Hye => "hy",
        Lang::Cym => "cy",
    }
}

// The labelled titles of the load tool, for the accuracy floor; it reads every field, the
// test only some.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../examples/language/titles.rs"]
mod titles;

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! t {
        ($name:ident, $title:expr, $body:expr, $declared:expr, $want:expr) => {
            #[test]
            fn $name() {
                assert_eq!(detect($title, $body, $declared).as_deref(), $want);
            }
        };
    }

    // Short English titles are mostly unsure (BENCHMARKS.md "Language of titles"): this
    // one with its lede is not.
    t!(
        english_title_with_its_lede,
        "Iran summons Swiss ambassador over US remarks",
        "The foreign ministry in Tehran said on Tuesday that it had summoned the ambassador of Switzerland, which represents the interests of the United States.",
        None,
        Some("en")
    );
    t!(
        russian_title,
        "Иран вызвал посла Швейцарии после заявлений США",
        "",
        None,
        Some("ru")
    );
    t!(
        persian_title_with_zwnj_and_persian_letters,
        "گزارش‌ها از افزایش قیمت بنزین در پمپ‌بنزین‌های تهران حکایت دارد",
        "",
        None,
        Some("fa")
    );
    t!(
        persian_title_with_zhe_and_gaf,
        "ژاپن و چین درباره گسترش همکاری‌های اقتصادی گفت‌وگو کردند",
        "",
        None,
        Some("fa")
    );
    t!(
        arabic_title,
        "الوكالة الدولية للطاقة الذرية: مخزون إيران من اليورانيوم المخصب يرتفع",
        "",
        None,
        Some("ar")
    );
    t!(
        chinese_title,
        "伊朗议会投票恢复与国际原子能机构合作",
        "",
        None,
        Some("zh")
    );
    t!(
        traditional_chinese_title,
        "颱風逼近台灣 東部停班停課",
        "",
        None,
        Some("zh")
    );
    t!(
        japanese_title_with_kana,
        "東京株式市場、日経平均が大幅に値上がり",
        "",
        None,
        Some("ja")
    );
    t!(korean_title, "이란, 스위스 대사 초치", "", None, Some("ko"));
    t!(
        han_only_title_from_a_japanese_feed_is_japanese,
        "東京都知事選 投票率",
        "",
        Some("ja-JP"),
        Some("ja")
    );
    t!(
        han_only_title_without_a_declared_language_is_chinese,
        "東京都知事選 投票率",
        "",
        None,
        Some("zh")
    );
    t!(
        short_ambiguous_title_falls_back_to_declared,
        "Brexit",
        "",
        Some("en-GB"),
        Some("en")
    );
    t!(
        short_ambiguous_title_without_declared_is_unknown,
        "Brexit",
        "",
        None,
        None
    );
    t!(
        declared_language_is_not_used_when_detection_is_sure,
        "Iran summons Swiss ambassador over US remarks",
        "The foreign ministry in Tehran said on Tuesday that it had summoned the ambassador of Switzerland, which represents the interests of the United States.",
        Some("fa"),
        Some("en")
    );
    t!(
        body_decides_when_the_title_alone_cannot,
        "Brexit",
        "Le gouvernement britannique a présenté mardi un nouveau projet de loi sur les relations commerciales avec l'Union européenne.",
        None,
        Some("fr")
    );
    t!(
        no_letters_and_no_declared_is_unknown,
        "2024 — 3:1",
        "",
        None,
        None
    );
    t!(
        no_letters_falls_back_to_declared,
        "2024 — 3:1",
        "",
        Some("zh_CN"),
        Some("zh")
    );
    t!(empty_text_and_no_declared_is_unknown, "", "", None, None);

    #[test]
    fn declared_tags_reduce_to_their_primary_subtag() {
        let cases = [
            ("en-US", Some("en")),
            ("EN-gb", Some("en")),
            ("zh_CN", Some("zh")),
            ("zh-Hant-TW", Some("zh")),
            ("fa-IR", Some("fa")),
            ("ar", Some("ar")),
            (" ru ", Some("ru")),
            ("eng", Some("en")),
            ("fas", Some("fa")),
            ("per", Some("fa")),
            ("epo", Some("eo")),
            ("English", Some("en")),
            ("no", Some("no")),
            ("und", None),
            ("mul", None),
            ("xx", None),
            ("", None),
            ("-", None),
            ("e1", None),
        ];
        for (tag, want) in cases {
            assert_eq!(primary_subtag(tag), want, "{tag:?}");
        }
    }

    #[test]
    fn every_whatlang_language_maps_to_a_distinct_two_letter_code() {
        let mut seen = std::collections::HashSet::new();
        for &lang in Lang::all() {
            let code = iso639_1(lang);
            assert!(
                code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase()),
                "{lang:?} -> {code:?}"
            );
            assert!(seen.insert(code), "{code} twice");
            assert_eq!(
                primary_subtag(code),
                Some(code),
                "{code} must survive as declared"
            );
        }
        assert_eq!(iso639_1(Lang::Pes), "fa");
        assert_eq!(iso639_1(Lang::Cmn), "zh");
        assert_eq!(iso639_1(Lang::Ara), "ar");
        assert_eq!(iso639_1(Lang::Eng), "en");
        assert_eq!(iso639_1(Lang::Rus), "ru");
    }

    #[test]
    fn the_body_is_bounded() {
        let long = "x".repeat(10 * BODY_CHARS);
        let text = sample("Title", &long);
        assert_eq!(text.chars().count(), "Title. ".len() + BODY_CHARS);
        let multibyte = "گ".repeat(2 * BODY_CHARS);
        assert_eq!(sample("", &multibyte).chars().count(), BODY_CHARS);
    }

    /// Accuracy floors on the labelled titles (title only, no declared language; then with
    /// it), a little below what `examples/language` measured (BENCHMARKS.md "Language of
    /// titles"). Skips when `../shared/corpus` is not there.
    #[test]
    fn labelled_titles_meet_their_accuracy_floor() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let Some(titles) = titles::labelled(repo, &mut Vec::new()) else {
            eprintln!("skipped: ../shared/corpus not found");
            return;
        };
        // (language, floor pure, floor with the declared fallback)
        for (label, pure_floor, declared_floor) in FLOORS {
            let set: Vec<_> = titles.iter().filter(|t| t.label == label).collect();
            assert!(!set.is_empty(), "no {label} titles");
            let pure = set
                .iter()
                .filter(|t| detect(&t.title, "", None).as_deref() == Some(label))
                .count() as f64
                / set.len() as f64;
            let with = set
                .iter()
                .filter(|t| detect(&t.title, "", Some(&t.declared)).as_deref() == Some(label))
                .count() as f64
                / set.len() as f64;
            eprintln!(
                "{label}: {} titles, pure {pure:.3}, with declared {with:.3}",
                set.len()
            );
            assert!(pure >= pure_floor, "{label}: pure {pure:.3} < {pure_floor}");
            assert!(
                with >= declared_floor,
                "{label}: with declared {with:.3} < {declared_floor}"
            );
        }
    }

    /// Measured on 2026-11-30: pure en 0.305, ru 0.65, fa 0.745, ar 0.933, zh 1.0; with
    /// the declared fallback en 0.995, the others 1.0.
    const FLOORS: [(&str, f64, f64); 5] = [
        ("en", 0.25, 0.97),
        ("ru", 0.55, 0.95),
        ("fa", 0.65, 0.97),
        ("ar", 0.85, 0.97),
        ("zh", 0.95, 0.97),
    ];
}
