//! Matcher tests: a table of cases in the style of aho-corasick's `t!` tables (one line per
//! case: watch-list, document, expected canonical terms; `NO` = no match), then focused tests
//! for highlights, several watch-lists at once, `wanted`, and compile errors.

use std::cell::Cell;

use super::*;

/// A watch-list definition, const-constructible so cases fit on a line.
#[derive(Clone, Copy)]
struct L {
    terms: &'static [&'static str],
    aliases: &'static [(&'static str, &'static [&'static str])],
    query: Option<&'static str>,
    exclude: &'static [&'static str],
    fields: &'static [Field],
    exact: bool,
}

const fn terms(terms: &'static [&'static str]) -> L {
    L {
        terms,
        aliases: &[],
        query: None,
        exclude: &[],
        fields: &[],
        exact: true,
    }
}

impl L {
    const fn aliases(self, aliases: &'static [(&'static str, &'static [&'static str])]) -> L {
        L { aliases, ..self }
    }
    const fn query(self, query: &'static str) -> L {
        L {
            query: Some(query),
            ..self
        }
    }
    const fn exclude(self, exclude: &'static [&'static str]) -> L {
        L { exclude, ..self }
    }
    const fn fields(self, fields: &'static [Field]) -> L {
        L { fields, ..self }
    }
    const fn inexact(self) -> L {
        L {
            exact: false,
            ..self
        }
    }

    fn spec(self, name: &str) -> WatchlistSpec {
        WatchlistSpec {
            name: name.to_owned(),
            terms: self.terms.iter().map(|t| t.to_string()).collect(),
            aliases: self
                .aliases
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|a| a.to_string()).collect()))
                .collect(),
            query: self.query.map(str::to_owned),
            exclude: self.exclude.iter().map(|t| t.to_string()).collect(),
            fields: self.fields.to_vec(),
            acronyms_exact: self.exact,
        }
    }
}

/// A document, const-constructible.
#[derive(Clone, Copy)]
struct D {
    title: &'static str,
    summary: &'static str,
    content: &'static str,
    cats: &'static [&'static str],
}

const fn title(title: &'static str) -> D {
    D {
        title,
        summary: "",
        content: "",
        cats: &[],
    }
}
const fn summary(summary: &'static str) -> D {
    D {
        summary,
        ..title("")
    }
}
const fn content(content: &'static str) -> D {
    D {
        content,
        ..title("")
    }
}
const fn cats(cats: &'static [&'static str]) -> D {
    D { cats, ..title("") }
}
impl D {
    const fn and_summary(self, summary: &'static str) -> D {
        D { summary, ..self }
    }
}

struct Case {
    name: &'static str,
    list: L,
    doc: D,
    /// Canonical terms of the match, sorted; empty = the watch-list must not match.
    expect: &'static [&'static str],
}

macro_rules! t {
    ($name:ident, $list:expr, $doc:expr, $expect:expr) => {
        Case {
            name: stringify!($name),
            list: $list,
            doc: $doc,
            expect: $expect,
        }
    };
}

const NO: &[&str] = &[];
const ALL_FIELDS: &[Field] = &Field::ALL;
const SCO_ALIASES: &[(&str, &[&str])] = &[(
    "SCO",
    &[
        "Shanghai Cooperation Organisation",
        "Shanghai Cooperation Organization",
    ],
)];

// One case per line: keep rustfmt from spreading them over six.
#[rustfmt::skip]
const WHOLE_WORDS: &[Case] = &[
    t!(plain_word, terms(&["Iran"]), title("Iran test-fires missile"), &["Iran"]),
    t!(lowercase_text, terms(&["Iran"]), title("talks with iran resume"), &["Iran"]),
    t!(uppercase_text, terms(&["Iran", "China"]), title("IRAN AND CHINA SIGN DEAL"), &["China", "Iran"]),
    t!(possessive_ascii, terms(&["Iran"]), title("Iran's navy"), &["Iran"]),
    t!(possessive_curly, terms(&["Iran"]), title("Iran’s navy"), &["Iran"]),
    t!(possessive_modifier_apostrophe, terms(&["Iran"]), title("Iranʼs navy"), &["Iran"]),
    t!(hyphen_compound, terms(&["Iran", "China"]), title("Iran-China ties deepen"), &["China", "Iran"]),
    t!(parenthesised, terms(&["Iran"]), title("Tehran (Iran) — news"), &["Iran"]),
    t!(whole_text, terms(&["China"]), title("China"), &["China"]),
    t!(not_iranian, terms(&["Iran"]), title("Iranian oil exports"), NO),
    t!(not_irani, terms(&["Iran"]), title("Irani cuisine week"), NO),
    t!(not_scotland, terms(&["SCO"]), title("Scotland votes"), NO),
    t!(not_chinatown, terms(&["China"]), title("Chinatown parade"), NO),
    t!(not_indochina, terms(&["China"]), title("The Indochina war"), NO),
    t!(digit_neighbour_blocks, terms(&["G7"]), title("The G77 bloc"), NO),
    t!(digits_term, terms(&["G7"]), title("G7 leaders meet"), &["G7"]),
    t!(soft_hyphen_keeps_word_whole, terms(&["Iran"]), title("Iran\u{AD}ian oil"), NO),
];

#[rustfmt::skip]
const UNICODE: &[Case] = &[
    t!(fullwidth_text, terms(&["Iran"]), title("ＩＲＡＮ sanctions"), &["Iran"]),
    t!(fullwidth_term, terms(&["Ｉｒａｎ"]), title("iran sanctions"), &["Ｉｒａｎ"]),
    t!(diacritic_in_text, terms(&["Tehran"]), title("Tehrān says no"), &["Tehran"]),
    t!(diacritic_in_term, terms(&["Tehrān"]), title("Tehran says no"), &["Tehrān"]),
    t!(decomposed_diacritic, terms(&["Tehran"]), title("Tehra\u{304}n says no"), &["Tehran"]),
    t!(zurich, terms(&["Zurich"]), title("Talks in Zürich"), &["Zurich"]),
    t!(sao_paulo, terms(&["São Paulo"]), title("Sao Paulo floods"), &["São Paulo"]),
    t!(cote_divoire_apostrophes, terms(&["Côte d'Ivoire"]), title("Cote d’Ivoire votes"), &["Côte d'Ivoire"]),
    t!(sharp_s_vs_ss, terms(&["Straße"]), title("STRASSE closed"), &["Straße"]),
    t!(ss_vs_sharp_s, terms(&["Strasse"]), title("Straße closed"), &["Strasse"]),
    t!(capital_sharp_s, terms(&["Straße"]), title("STRAẞE closed"), &["Straße"]),
    t!(ligature, terms(&["finance"]), title("ﬁnance ministers"), &["finance"]),
    t!(dotted_capital_i, terms(&["Istanbul"]), title("İstanbul talks"), &["Istanbul"]),
    t!(stroke_letters, terms(&["Lodz"]), title("Łódź mayor"), &["Lodz"]),
    t!(cyrillic_short_i_kept, terms(&["Йемен"]), title("Иемен"), NO),
    t!(cyrillic_short_i_matches, terms(&["Йемен"]), title("Новости: ЙЕМЕН"), &["Йемен"]),
    t!(indic_vowel_sign_is_part_of_word, terms(&["भारत"]), title("भारतीय सेना"), NO),
    t!(indic_whole_word, terms(&["भारत"]), title("भारत की सेना"), &["भारत"]),
];

#[rustfmt::skip]
const PERSIAN: &[Case] = &[
    t!(arabic_yeh_in_text, terms(&["ایران"]), title("سفر به ايران"), &["ایران"]),
    t!(arabic_yeh_in_term, terms(&["ايران"]), title("سفر به ایران"), &["ايران"]),
    t!(alef_maksura, terms(&["ایران"]), title("اىران"), &["ایران"]),
    t!(arabic_kaf, terms(&["پاکستان"]), title("پاكستان"), &["پاکستان"]),
    t!(harakat_and_tatweel, terms(&["ایران"]), title("ايـــرَان"), &["ایران"]),
    t!(chin, terms(&["چین"]), title("روابط چین و ایران"), &["چین"]),
    t!(persian_whole_word, terms(&["ایران"]), title("ایرانی"), NO),
    t!(zwnj_separates, terms(&["ایران"]), title("ایران\u{200C}شناسی"), &["ایران"]),
];

#[rustfmt::skip]
const UNSPACED_SCRIPTS: &[Case] = &[
    t!(han_prefix_of_text, terms(&["伊朗"]), title("伊朗核问题"), &["伊朗"]),
    t!(han_inside_text, terms(&["中国"]), title("美国与中国的关系"), &["中国"]),
    t!(latin_between_han, terms(&["China"]), title("在China的"), &["China"]),
    t!(latin_word_between_han_still_whole, terms(&["China"]), title("在Chinatown的"), NO),
    t!(katakana, terms(&["イラン"]), title("イラン核合意"), &["イラン"]),
    t!(halfwidth_katakana, terms(&["イラン"]), title("ｲﾗﾝ核合意"), &["イラン"]),
    t!(voiced_katakana, terms(&["ガザ"]), title("ガザ地区"), &["ガザ"]),
    t!(hiragana, terms(&["にほん"]), title("きょうのにほんご"), &["にほん"]),
    t!(thai, terms(&["อิหร่าน"]), title("ข่าวอิหร่านวันนี้"), &["อิหร่าน"]),
];

#[rustfmt::skip]
const ACRONYMS: &[Case] = &[
    t!(acronym_exact, terms(&["SCO"]), title("SCO summit opens"), &["SCO"]),
    t!(acronym_not_lowercase, terms(&["SCO"]), title("sco summit opens"), NO),
    t!(acronym_not_mixed_case, terms(&["SCO"]), title("Sco summit opens"), NO),
    t!(acronym_possessive, terms(&["SCO"]), title("SCO’s members"), &["SCO"]),
    t!(acronym_fullwidth_text, terms(&["SCO"]), title("ＳＣＯ summit"), &["SCO"]),
    t!(acronym_fullwidth_term, terms(&["ＳＣＯ"]), title("SCO summit"), &["ＳＣＯ"]),
    t!(acronym_fullwidth_term_lowercase, terms(&["ＳＣＯ"]), title("sco summit"), NO),
    t!(acronym_inexact, terms(&["SCO"]).inexact(), title("sco summit"), &["SCO"]),
    t!(acronym_with_dots, terms(&["U.S."]), title("U.S.-China talks"), &["U.S."]),
    t!(acronym_with_dots_lowercase, terms(&["U.S."]), title("u.s. china talks"), NO),
    t!(mixed_case_term_not_acronym, terms(&["Iran"]), title("IRAN"), &["Iran"]),
    t!(acronym_alias, terms(&["Iran"]).aliases(&[("Iran", &["IRI"])]), title("the iri said"), NO),
    t!(jcpoa_allcaps, terms(&["JCPOA"]), title("Return to the JCPOA?"), &["JCPOA"]),
];

#[rustfmt::skip]
const PREFIXES: &[Case] = &[
    t!(prefix_longer_word, terms(&["Iran*"]), title("Iranian oil"), &["Iran*"]),
    t!(prefix_exact_word, terms(&["Iran*"]), title("Iran's oil"), &["Iran*"]),
    t!(prefix_left_boundary, terms(&["Iran*"]), title("antiIranian"), NO),
    t!(prefix_after_hyphen, terms(&["Iran*"]), title("pro-Iranian militia"), &["Iran*"]),
    t!(prefix_phrase, terms(&["\"nuclear deal*\""]), title("nuclear dealings"), &["\"nuclear deal*\""]),
];

#[rustfmt::skip]
const PHRASES: &[Case] = &[
    t!(phrase_across_em_dash, terms(&["Shanghai Cooperation Organisation"]), title("Shanghai Cooperation—Organisation"), &["Shanghai Cooperation Organisation"]),
    t!(quoted_phrase_across_comma, terms(&["\"Iran nuclear deal\""]), title("Iran, nuclear deal"), &["\"Iran nuclear deal\""]),
    t!(phrase_across_nbsp, terms(&["\"Iran nuclear deal\""]), title("Iran\u{A0}nuclear deal"), &["\"Iran nuclear deal\""]),
    t!(phrase_across_unicode_hyphen, terms(&["Iran-China"]), title("Iran\u{2010}China ties"), &["Iran-China"]),
    t!(phrase_across_minus_sign, terms(&["Iran-China"]), title("Iran\u{2212}China ties"), &["Iran-China"]),
    t!(phrase_hyphen_vs_space, terms(&["Iran-China"]), title("Iran China"), &["Iran-China"]),
    t!(phrase_words_adjacent, terms(&["\"Iran nuclear deal\""]), title("Iran signs nuclear deal"), NO),
    t!(phrase_whole_words, terms(&["\"Iran nuclear deal\""]), title("Iran nuclear dealer"), NO),
];

#[rustfmt::skip]
const ALIASES: &[Case] = &[
    t!(alias_reports_canonical, terms(&["SCO"]).aliases(SCO_ALIASES), title("Shanghai Cooperation Organization meets"), &["SCO"]),
    t!(alias_other_script, terms(&["Iran"]).aliases(&[("Iran", &["ایران", "伊朗"])]), title("伊朗外长访华"), &["Iran"]),
    t!(alias_and_term_once, terms(&["Iran"]).aliases(&[("Iran", &["ایران"])]), title("Iran / ایران"), &["Iran"]),
    t!(alias_key_without_star, terms(&["Iran*"]).aliases(&[("Iran", &["Persia"])]), title("Persia"), &["Iran*"]),
    t!(alias_whole_word, terms(&["SCO"]).aliases(SCO_ALIASES), title("Shanghai Cooperation Organisations"), NO),
];

#[rustfmt::skip]
const FIELDS: &[Case] = &[
    t!(only_in_summary, terms(&["Iran"]), summary("talks with Iran"), &["Iran"]),
    t!(only_in_content, terms(&["Iran"]), content("talks with Iran"), &["Iran"]),
    t!(only_in_category, terms(&["Iran"]), cats(&["Middle East", "Iran"]), &["Iran"]),
    t!(all_fields_listed, terms(&["Iran"]).fields(ALL_FIELDS), content("Iran"), &["Iran"]),
    t!(title_only_ignores_summary, terms(&["Iran"]).fields(&[Field::Title]), summary("talks with Iran"), NO),
    t!(title_only_ignores_categories, terms(&["Iran"]).fields(&[Field::Title]), cats(&["Iran"]), NO),
    t!(categories_only, terms(&["Iran"]).fields(&[Field::Categories]), cats(&["Iran"]), &["Iran"]),
    t!(categories_only_ignores_title, terms(&["Iran"]).fields(&[Field::Categories]), title("Iran"), NO),
    t!(each_category_separately, terms(&["Middle East"]), cats(&["Middle", "East"]), NO),
    t!(summary_and_content, terms(&["Iran", "China"]).fields(&[Field::Summary, Field::Content]), title("SCO").and_summary("Iran and China"), &["China", "Iran"]),
    t!(query_sees_only_chosen_fields, terms(&["Iran", "China"]).query("Iran AND China").fields(&[Field::Title]), title("Iran").and_summary("China"), NO),
    t!(exclude_only_in_chosen_fields, terms(&["Iran"]).exclude(&["football"]).fields(&[Field::Title]), title("Iran").and_summary("football"), &["Iran"]),
];

#[rustfmt::skip]
const QUERIES: &[Case] = &[
    t!(and_both, terms(&["Iran", "China"]).query("Iran AND China"), title("Iran and China"), &["China", "Iran"]),
    t!(and_one_missing, terms(&["Iran", "China"]).query("Iran AND China"), title("Iran alone"), NO),
    t!(or_one, terms(&["Iran", "China"]).query("Iran OR China"), title("China alone"), &["China"]),
    t!(not_vetoes, terms(&["Iran", "China"]).query("Iran AND NOT China"), title("Iran and China"), NO),
    t!(not_passes, terms(&["Iran", "China"]).query("Iran AND NOT China"), title("Iran alone"), &["Iran"]),
    t!(parens_match, terms(&["Iran", "China", "SCO", "JCPOA"]).query("(Iran OR JCPOA) AND (China OR SCO)"), title("JCPOA talks at the SCO"), &["JCPOA", "SCO"]),
    t!(parens_no_match, terms(&["Iran", "China", "SCO", "JCPOA"]).query("(Iran OR JCPOA) AND (China OR SCO)"), title("Iran and Russia"), NO),
    t!(precedence_and_over_or, terms(&["a1", "b1", "c1"]).query("a1 OR b1 AND c1"), title("a1"), &["a1"]),
    t!(adjacency_is_and, terms(&["Iran", "China"]).query("Iran China"), title("China alone"), NO),
    t!(adjacency_both, terms(&["Iran", "China"]).query("Iran China"), title("China, Iran"), &["China", "Iran"]),
    t!(phrase_in_query, terms(&["Iran"]).query("Iran AND \"nuclear deal\""), title("Iran nuclear deal"), &["\"nuclear deal\"", "Iran"]),
    t!(phrase_in_query_not_words, terms(&["Iran"]).query("Iran AND \"nuclear deal\""), title("Iran deal is not nuclear"), NO),
    t!(word_not_in_terms, terms(&["Iran"]).query("Iran AND Russia"), title("Iran, Russia"), &["Iran", "Russia"]),
    t!(word_not_in_terms_whole_word, terms(&["Iran"]).query("Iran AND Russia"), title("Iran, Russian"), NO),
    t!(prefix_word_not_in_terms, terms(&["Iran"]).query("Iran AND Russ*"), title("Iran, Russian"), &["Iran", "Russ*"]),
    t!(acronym_word_not_in_terms, terms(&["Iran"]).query("Iran AND IRGC"), title("Iran irgc"), NO),
    t!(lowercase_and_is_a_word, terms(&["Iran", "China"]).query("Iran and China"), title("Iran, China"), NO),
    t!(lowercase_and_word_hits, terms(&["Iran", "China"]).query("Iran and China"), title("Iran and China"), &["China", "Iran", "and"]),
    t!(query_names_term_case_insensitively, terms(&["Iran"]).query("iran"), title("Iran"), &["Iran"]),
    t!(query_names_prefix_term_without_star, terms(&["Iran*", "China"]).query("Iran AND China"), title("Iranian China"), &["China", "Iran*"]),
    t!(query_uses_term_aliases, terms(&["SCO", "Iran"]).aliases(SCO_ALIASES).query("SCO AND Iran"), title("Iran at Shanghai Cooperation Organisation"), &["Iran", "SCO"]),
    t!(negated_word_not_reported, terms(&["Iran"]).query("Iran AND NOT football"), title("Iran"), &["Iran"]),
    t!(unreferenced_term_reported, terms(&["Iran", "China", "SCO"]).query("Iran AND China"), title("Iran China SCO"), &["China", "Iran", "SCO"]),
    t!(double_not, terms(&["Iran"]).query("NOT NOT Iran"), title("Iran"), &["Iran"]),
];

#[rustfmt::skip]
const EXCLUDES: &[Case] = &[
    t!(exclude_vetoes, terms(&["Iran"]).exclude(&["football"]), title("Iran football team"), NO),
    t!(exclude_whole_word, terms(&["Iran"]).exclude(&["football"]), title("Iran footballer"), &["Iran"]),
    t!(exclude_chinatown, terms(&["China"]).exclude(&["Chinatown"]), title("China food in Chinatown"), NO),
    t!(exclude_in_other_field, terms(&["Iran"]).exclude(&["Sport"]), title("Iran").and_summary("Sport"), NO),
    t!(exclude_in_category, terms(&["Iran"]).exclude(&["Sport"]), D { title: "Iran", ..cats(&["Sport"]) }, NO),
    t!(exclude_acronym_case, terms(&["Iran"]).exclude(&["FIFA"]), title("Iran and fifa"), &["Iran"]),
    t!(exclude_prefix, terms(&["Iran"]).exclude(&["foot*"]), title("Iran footballer"), NO),
    t!(exclude_vetoes_query, terms(&["Iran", "China"]).query("Iran OR China").exclude(&["football"]), title("China football"), NO),
];

#[rustfmt::skip]
const OVERLAPS: &[Case] = &[
    t!(shorter_inside_phrase, terms(&["Iran", "\"Iran nuclear deal\""]), title("Iran nuclear deal"), &["\"Iran nuclear deal\"", "Iran"]),
    t!(rejected_longer_keeps_shorter, terms(&["Iran", "Iran nuclear"]), title("Iran nuclearisation"), &["Iran"]),
    t!(prefix_and_whole_same_pattern, terms(&["Iran", "Iran*"]), title("Iranian"), &["Iran*"]),
];

const ALL_CASES: &[&[Case]] = &[
    WHOLE_WORDS,
    UNICODE,
    PERSIAN,
    UNSPACED_SCRIPTS,
    ACRONYMS,
    PREFIXES,
    PHRASES,
    ALIASES,
    FIELDS,
    QUERIES,
    EXCLUDES,
    OVERLAPS,
];

fn owned(cats: &[&str]) -> Vec<String> {
    cats.iter().map(|c| c.to_string()).collect()
}

/// Highlight invariants that hold for every match: offsets slice the original field text,
/// snippets are bounded and contain the hit (unless the hit itself is too long).
fn check_highlights(doc: &Document<'_>, m: &WatchlistMatch) -> Result<(), String> {
    if m.highlights.is_empty() {
        return Err("no highlights".to_owned());
    }
    for h in &m.highlights {
        let text = match h.field {
            Field::Title => doc.title,
            Field::Summary => doc.summary,
            Field::Content => doc.content,
            Field::Article => doc.article,
            Field::Categories => doc
                .categories
                .iter()
                .map(String::as_str)
                .find(|c| c.get(h.start..h.end).is_some() && c.trim() == h.snippet)
                .ok_or_else(|| format!("no category fits {h:?}"))?,
        };
        let hit = text
            .get(h.start..h.end)
            .ok_or_else(|| format!("offsets do not slice the text: {h:?}"))?;
        if hit.is_empty() || !m.terms.contains(&h.term) {
            return Err(format!("bad highlight {h:?}"));
        }
        if h.snippet.chars().count() > snippet::SNIPPET_CHARS {
            return Err(format!("snippet too long: {h:?}"));
        }
        let first_word = hit
            .split(|c: char| c.is_whitespace() || c.is_control())
            .find(|w| !w.is_empty())
            .unwrap_or(hit);
        if !h.snippet.contains(first_word) {
            return Err(format!("snippet misses the hit: {h:?}"));
        }
    }
    Ok(())
}

#[test]
fn table() {
    let mut failures = Vec::new();
    let mut count = 0;
    for case in ALL_CASES.iter().flat_map(|group| group.iter()) {
        count += 1;
        let matcher = match Matcher::compile(&[case.list.spec(case.name)]) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: compile error {e:?}", case.name));
                continue;
            }
        };
        let categories = owned(case.doc.cats);
        let doc = Document {
            title: case.doc.title,
            summary: case.doc.summary,
            content: case.doc.content,
            categories: &categories,
            ..Document::default()
        };
        let got = matcher.match_item(&doc, &|_| true);
        let got_terms: Vec<&str> = got
            .first()
            .map(|m| m.terms.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if got_terms != case.expect {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                case.name, case.expect, got_terms
            ));
        }
        if let Some(m) = got.first()
            && let Err(e) = check_highlights(&doc, m)
        {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(count >= 70, "only {count} cases");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Highlights

fn compile(lists: &[L]) -> Matcher {
    let specs: Vec<WatchlistSpec> = lists
        .iter()
        .enumerate()
        .map(|(i, l)| l.spec(&format!("list{i}")))
        .collect();
    Matcher::compile(&specs).unwrap()
}

fn all(_: usize) -> bool {
    true
}

#[test]
fn highlight_offsets_slice_the_original_text_exactly() {
    let m = compile(&[terms(&["Tehran", "SCO", "ايران", "Iran"])]);
    let title = "Talks in Tehrān: ＳＣＯ and ایران’s role; IRAN";
    let got = m.match_item(
        &Document {
            title,
            ..Document::default()
        },
        &all,
    );
    let slices: Vec<(&str, &str)> = got[0]
        .highlights
        .iter()
        .map(|h| (h.term.as_str(), &title[h.start..h.end]))
        .collect();
    assert_eq!(
        slices,
        vec![
            ("Tehran", "Tehrān"),
            ("SCO", "ＳＣＯ"),
            ("ايران", "ایران"),
            ("Iran", "IRAN")
        ]
    );
    assert!(got[0].highlights.iter().all(|h| h.field == Field::Title));
}

#[test]
fn highlight_covers_trailing_combining_marks_and_whole_expansions() {
    let m = compile(&[terms(&["Tehran", "Strass*"])]);
    let title = "Tehra\u{304}n, Straße";
    let got = m.match_item(
        &Document {
            title,
            ..Document::default()
        },
        &all,
    );
    let slices: Vec<&str> = got[0]
        .highlights
        .iter()
        .map(|h| &title[h.start..h.end])
        .collect();
    assert_eq!(slices, vec!["Tehra\u{304}n", "Straß"]);
}

#[test]
fn highlight_in_a_category_points_into_that_category() {
    let m = compile(&[terms(&["Iran"])]);
    let categories = owned(&["World", "  Iran   nuclear  "]);
    let got = m.match_item(
        &Document {
            categories: &categories,
            ..Document::default()
        },
        &all,
    );
    assert_eq!(
        got[0].highlights,
        vec![Highlight {
            field: Field::Categories,
            term: "Iran".into(),
            snippet: "Iran   nuclear".into(),
            start: 2,
            end: 6,
        }]
    );
    let snippet = &got[0].highlights[0].snippet;
    assert_eq!(categories.iter().position(|c| c.trim() == snippet), Some(1));
}

#[test]
fn snippet_is_bounded_and_char_safe_on_long_multibyte_text() {
    let m = compile(&[terms(&["中国", "ایران"])]);
    for filler in ["汉字文本", "متن فارسی ", "é ", "🙂"] {
        let content = format!(
            "{}中国{} ایران {}",
            filler.repeat(400),
            filler.repeat(400),
            filler.repeat(5)
        );
        let got = m.match_item(
            &Document {
                content: &content,
                ..Document::default()
            },
            &all,
        );
        assert_eq!(got[0].terms, vec!["ایران", "中国"], "{filler}");
        for h in &got[0].highlights {
            assert!(
                h.snippet.chars().count() <= snippet::SNIPPET_CHARS,
                "{}",
                h.snippet
            );
            assert!(h.snippet.chars().count() >= 60, "{}", h.snippet);
            assert!(h.snippet.contains(&content[h.start..h.end]));
        }
        assert!(got[0].highlights[0].snippet.starts_with('…'));
        assert!(got[0].highlights[0].snippet.ends_with('…'));
    }
}

#[test]
fn snippet_collapses_whitespace_and_cuts_at_whitespace() {
    let m = compile(&[terms(&["Iran"])]);
    let words = "alpha beta gamma delta ".repeat(20);
    let content = format!("{words}\n\n  Iran\t said   {words}");
    let got = m.match_item(
        &Document {
            content: &content,
            ..Document::default()
        },
        &all,
    );
    let s = &got[0].highlights[0].snippet;
    assert!(s.contains("delta Iran said alpha"), "{s}");
    assert!(!s.contains("  "), "{s}");
    let inner = s.trim_start_matches('…').trim_end_matches('…');
    for word in inner.split(' ') {
        assert!(
            ["alpha", "beta", "gamma", "delta", "Iran", "said"].contains(&word),
            "cut mid-word: {s}"
        );
    }
}

#[test]
fn highlights_are_capped_and_every_term_gets_one() {
    let m = compile(&[terms(&["Iran", "China"])]);
    let content = format!("{} and finally China", "Iran ".repeat(40));
    let got = m.match_item(
        &Document {
            content: &content,
            ..Document::default()
        },
        &all,
    );
    let hs = &got[0].highlights;
    assert_eq!(hs.len(), MAX_HIGHLIGHTS);
    assert!(hs.iter().any(|h| h.term == "China"));
    assert!(
        hs.windows(2).all(|w| w[0].start < w[1].start),
        "in text order"
    );
}

#[test]
fn one_highlight_per_term_and_position_the_longest() {
    let m = compile(&[terms(&["SCO"]).aliases(&[("SCO", &["SCO summit"])])]);
    let title = "SCO summit in Astana";
    let got = m.match_item(
        &Document {
            title,
            ..Document::default()
        },
        &all,
    );
    let hs = &got[0].highlights;
    assert_eq!(hs.len(), 1);
    assert_eq!(&title[hs[0].start..hs[0].end], "SCO summit");
}

#[test]
fn highlights_follow_field_order() {
    let m = compile(&[terms(&["Iran"])]);
    let categories = owned(&["Iran"]);
    let doc = Document {
        title: "Iran",
        summary: "Iran",
        content: "Iran",
        categories: &categories,
        article: "Iran",
    };
    let fields: Vec<Field> = m.match_item(&doc, &all)[0]
        .highlights
        .iter()
        .map(|h| h.field)
        .collect();
    assert_eq!(fields, Field::ALL.to_vec());
}

// ---------------------------------------------------------------------------------------------
// Several watch-lists

#[test]
fn overlapping_terms_across_watch_lists_all_hit() {
    let m = compile(&[
        terms(&["Iran"]),
        terms(&["\"Iran nuclear deal\""]),
        terms(&["nuclear"]),
    ]);
    let got = m.match_item(
        &Document {
            title: "The Iran nuclear deal",
            ..Document::default()
        },
        &all,
    );
    let summary: Vec<(usize, Vec<String>)> =
        got.into_iter().map(|m| (m.watchlist, m.terms)).collect();
    assert_eq!(
        summary,
        vec![
            (0, vec!["Iran".to_owned()]),
            (1, vec!["\"Iran nuclear deal\"".to_owned()]),
            (2, vec!["nuclear".to_owned()]),
        ]
    );
}

#[test]
fn duplicate_pattern_across_lists_is_one_pattern_with_per_list_rules() {
    let m = compile(&[
        terms(&["Iran"]),
        terms(&["iran*"]),
        terms(&["IRAN"]),
        terms(&["IRAN"]).inexact(),
    ]);
    assert_eq!(m.pattern_count(), 1);
    let lists = |title: &str| -> Vec<usize> {
        m.match_item(
            &Document {
                title,
                ..Document::default()
            },
            &all,
        )
        .into_iter()
        .map(|m| m.watchlist)
        .collect()
    };
    assert_eq!(lists("Iranian"), vec![1]);
    assert_eq!(lists("IRAN"), vec![0, 1, 2, 3]);
    assert_eq!(lists("iran"), vec![0, 1, 3]);
}

#[test]
fn exclude_vetoes_only_its_own_watch_list() {
    let m = compile(&[terms(&["Iran"]).exclude(&["football"]), terms(&["Iran"])]);
    let got = m.match_item(
        &Document {
            title: "Iran football",
            ..Document::default()
        },
        &all,
    );
    assert_eq!(got.iter().map(|m| m.watchlist).collect::<Vec<_>>(), vec![1]);
}

#[test]
fn wanted_skips_watch_lists_and_is_asked_once_per_list() {
    let m = compile(&[
        terms(&["Iran"]),
        terms(&["Iran", "China"]),
        terms(&["China"]),
    ]);
    let asked = Cell::new(0);
    let wanted = |i: usize| {
        asked.set(asked.get() + 1);
        i != 1
    };
    let categories = owned(&["Iran", "China"]);
    let doc = Document {
        title: "Iran China",
        summary: "Iran China",
        categories: &categories,
        ..Document::default()
    };
    let got = m.match_item(&doc, &wanted);
    assert_eq!(
        got.iter().map(|m| m.watchlist).collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert_eq!(asked.get(), 3);
    assert!(m.match_item(&doc, &|_| false).is_empty());
}

#[test]
fn matcher_can_be_used_from_wanted_reentrantly() {
    let m = compile(&[terms(&["Iran"]), terms(&["China"])]);
    let doc = Document {
        title: "Iran China",
        ..Document::default()
    };
    let wanted = |i: usize| i == 0 || !m.match_item(&doc, &|j| j == 0).is_empty();
    assert_eq!(m.match_item(&doc, &wanted).len(), 2);
}

#[test]
fn empty_matcher_matches_nothing() {
    let m = Matcher::compile(&[]).unwrap();
    assert_eq!(m.pattern_count(), 0);
    assert!(
        m.match_item(
            &Document {
                title: "Iran",
                ..Document::default()
            },
            &all
        )
        .is_empty()
    );
}

#[test]
fn matcher_is_shareable() {
    fn assert_traits<T: Send + Sync + std::fmt::Debug>() {}
    assert_traits::<Matcher>();
}

#[test]
fn matches_serialize_for_the_webhook_payload() {
    let m = compile(&[terms(&["Iran"])]);
    let got = m.match_item(
        &Document {
            title: "Iran",
            ..Document::default()
        },
        &all,
    );
    let json = serde_json::to_value(&got[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "watchlist": 0,
            "terms": ["Iran"],
            "highlights": [{"field": "title", "term": "Iran", "snippet": "Iran", "start": 0, "end": 4}]
        })
    );
    let back: Highlight = serde_json::from_value(json["highlights"][0].clone()).unwrap();
    assert_eq!(back, got[0].highlights[0]);
}

#[test]
fn field_names_round_trip() {
    for f in Field::ALL {
        assert_eq!(Field::parse(f.as_str()), Some(f));
    }
    assert_eq!(Field::parse("Title"), Some(Field::Title));
    assert_eq!(Field::parse("body"), None);
}

// ---------------------------------------------------------------------------------------------
// Compile errors

fn errors(spec: WatchlistSpec) -> Vec<(Location, String)> {
    Matcher::compile(&[spec])
        .unwrap_err()
        .into_iter()
        .map(|e| (e.location, e.message))
        .collect()
}

fn locations(spec: WatchlistSpec) -> Vec<Location> {
    errors(spec).into_iter().map(|(l, _)| l).collect()
}

fn with_query(query: &str) -> WatchlistSpec {
    WatchlistSpec {
        query: Some(query.to_owned()),
        ..terms(&["Iran", "China"]).spec("q")
    }
}

#[test]
fn term_errors_point_at_the_term() {
    let errs = errors(terms(&["Iran", "", "--", "Ir*an", "\"Iran deal", "Iran -*"]).spec("t"));
    let locs: Vec<&Location> = errs.iter().map(|(l, _)| l).collect();
    assert_eq!(
        locs,
        vec![
            &Location::Term(1),
            &Location::Term(2),
            &Location::Term(3),
            &Location::Term(4),
            &Location::Term(5)
        ]
    );
    assert_eq!(errs[0].1, "empty term");
    assert!(errs[1].1.contains("no letters or digits"), "{}", errs[1].1);
    assert!(
        errs[2].1.contains("`*` is only allowed at the end"),
        "{}",
        errs[2].1
    );
    assert!(errs[3].1.contains("unterminated quote"), "{}", errs[3].1);
    assert!(errs[4].1.contains("directly follow"), "{}", errs[4].1);
}

#[test]
fn watch_list_without_terms_is_an_error() {
    assert_eq!(
        locations(terms(&[]).spec("empty")),
        vec![Location::Watchlist]
    );
}

#[test]
fn alias_errors_point_at_the_alias() {
    let spec = terms(&["Iran"])
        .aliases(&[
            ("Russia", &["Rossiya"]),
            ("Iran", &["Persia", "P*rsia", ""]),
        ])
        .spec("a");
    let errs = errors(spec);
    assert_eq!(
        errs.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
        vec![
            Location::Alias {
                term: "Russia".into(),
                index: 0
            },
            Location::Alias {
                term: "Iran".into(),
                index: 1
            },
            Location::Alias {
                term: "Iran".into(),
                index: 2
            },
        ]
    );
    assert!(
        errs[0].1.contains("not one of the watch-list's terms"),
        "{}",
        errs[0].1
    );
}

#[test]
fn query_errors_carry_byte_offsets() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "empty query"),
        ("(Iran OR China", 0, "unclosed `(`"),
        ("Iran OR China)", 13, "unmatched `)`"),
        ("Iran AND", 5, "`AND` needs a term after it"),
        ("Iran OR OR China", 5, "`OR` needs a term after it"),
        ("AND Iran", 0, "`AND` needs a term before it"),
        ("Iran AND NOT", 9, "`NOT` needs a term after it"),
        ("Iran ()", 5, "empty parentheses"),
        ("Iran AND \"nuclear deal", 9, "unterminated quote"),
        ("Iran AND Ru*ssia", 9, "only allowed at the end"),
        ("Iran AND --", 9, "no letters or digits"),
        ("NOT football", 0, "none of its terms"),
        ("Iran OR NOT China", 0, "none of its terms"),
        ("ایران AND )", 11, "`AND` needs a term after it"),
        ("ایران OR China)", 19, "unmatched `)`"),
    ];
    for &(query, offset, message) in cases {
        let errs = errors(with_query(query));
        assert_eq!(errs.len(), 1, "{query}: {errs:?}");
        assert_eq!(errs[0].0, Location::Query { offset }, "{query}: {errs:?}");
        assert!(errs[0].1.contains(message), "{query}: {errs:?}");
    }
}

#[test]
fn exclude_errors_point_at_the_exclude() {
    let spec = terms(&["Iran"])
        .exclude(&["football", "*", "foot*ball"])
        .spec("e");
    assert_eq!(
        locations(spec),
        vec![Location::Exclude(1), Location::Exclude(2)]
    );
}

#[test]
fn all_errors_of_all_watch_lists_are_reported() {
    let specs = vec![
        terms(&["Iran", ""]).exclude(&["*"]).spec("first"),
        terms(&["Iran"]).spec("fine"),
        WatchlistSpec {
            query: Some("Iran AND".into()),
            ..terms(&["Ir*an"]).spec("third")
        },
    ];
    let errs = Matcher::compile(&specs).unwrap_err();
    let got: Vec<(&str, Location)> = errs
        .iter()
        .map(|e| (e.watchlist.as_str(), e.location.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("first", Location::Term(1)),
            ("first", Location::Exclude(0)),
            ("third", Location::Term(0)),
            ("third", Location::Query { offset: 5 }),
        ]
    );
    assert_eq!(
        errs[3].to_string(),
        "watch-list `third`: query at byte 5: `AND` needs a term after it"
    );
    assert_eq!(
        errs[0].to_string(),
        "watch-list `first`: terms[1]: empty term"
    );
}

// ---------------------------------------------------------------------------------------------
// Robustness

#[test]
fn random_text_never_panics_and_highlights_always_slice() {
    // Deterministic pseudo-random text over characters that stress folding: combining marks
    // with and without a base, expansions, invisibles, unspaced scripts, separators.
    const PALETTE: &[&str] = &[
        "Iran",
        "iran",
        "IRAN",
        "SCO",
        "sco",
        "ß",
        "ẞ",
        "ﬃ",
        "é",
        "e\u{301}",
        "\u{301}",
        "\u{306}",
        "й",
        "ایران",
        "ي",
        "ـ",
        "\u{64e}",
        "\u{200c}",
        "\u{ad}",
        "\u{a0}",
        "’",
        "-",
        " ",
        "  ",
        "\n",
        "中国",
        "伊朗",
        "ｲﾗﾝ",
        "ガ",
        "한국",
        "อิหร่าน",
        "🙂",
        "\u{fe0f}",
        "Ｓ",
        "ＳＣＯ",
        "1",
        "Tehrān",
        "Straße",
        "\u{0}",
        "\"",
        "*",
        "(",
        "OR",
    ];
    let m = compile(&[
        terms(&[
            "Iran",
            "SCO",
            "ایران",
            "中国",
            "Straße",
            "Tehran*",
            "\"Iran SCO\"",
        ]),
        terms(&["iran*", "ss", "e", "ガ"])
            .exclude(&["sco"])
            .inexact(),
        terms(&["Iran"])
            .query("Iran AND NOT \"中国\"")
            .fields(&[Field::Title, Field::Categories]),
    ]);
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _ in 0..2_000 {
        let mut parts =
            |len: usize| -> String { (0..len).map(|_| PALETTE[next(PALETTE.len())]).collect() };
        let title = parts(12);
        let content = parts(120);
        let categories = vec![parts(3), parts(2)];
        let doc = Document {
            title: &title,
            summary: "",
            content: &content,
            categories: &categories,
            ..Document::default()
        };
        for wm in m.match_item(&doc, &all) {
            if let Err(e) = check_highlights(&doc, &wm) {
                panic!("{e}\ntitle={title:?}\ncontent={content:?}\ncategories={categories:?}");
            }
        }
    }
}

#[test]
fn misses_name_what_vetoed_a_watch_list_whose_terms_hit() {
    let m = compile(&[
        terms(&["Iran", "China"]).exclude(&["football", "Chinatown"]),
        terms(&["Iran", "China"]).query("Iran AND China"),
        terms(&["SCO"]).exclude(&["football"]),
    ]);
    let doc = Document {
        title: "Iran football team tours China, visits Chinatown",
        ..Document::default()
    };
    let examined = m.examine(&doc, &all, true);
    assert!(examined.matches.iter().any(|w| w.watchlist == 1));
    let miss = &examined.misses[0];
    assert_eq!(miss.watchlist, 0);
    assert_eq!(miss.terms, ["China", "Iran"]);
    assert_eq!(miss.excluded, ["Chinatown", "football"]);
    assert!(miss.highlights.iter().all(|h| h.term != "football"));
    assert_eq!(miss.highlights.len(), 2);
    // Only an exclude hit (no term of the watch-list): no miss at all.
    assert_eq!(examined.misses.len(), 1);

    let doc = Document {
        title: "Iran votes",
        ..Document::default()
    };
    let examined = m.examine(&doc, &all, false);
    assert_eq!(examined.matches.len(), 1, "watch-list 0 matches");
    let miss = &examined.misses[0];
    assert_eq!((miss.watchlist, miss.excluded.len()), (1, 0), "query false");
    assert_eq!(miss.terms, ["Iran"]);
    assert!(miss.highlights.is_empty(), "not asked for");
    assert_eq!(m.match_item(&doc, &all), examined.matches);
}

#[test]
fn the_article_field_is_searched_by_default_and_can_be_chosen_alone() {
    let m = compile(&[
        terms(&["JCPOA"]),
        terms(&["JCPOA"]).fields(&[Field::Article]),
        terms(&["JCPOA"]).fields(&[Field::Title, Field::Summary]),
    ]);
    let doc = Document {
        title: "Talks in Vienna",
        summary: "Diplomats met on Monday.",
        article: "Diplomats met on Monday. The fourth paragraph: the JCPOA is back on the table.",
        ..Document::default()
    };
    let found = m.match_item(&doc, &all);
    let lists: Vec<usize> = found.iter().map(|w| w.watchlist).collect();
    assert_eq!(lists, [0, 1]);
    let h = &found[0].highlights[0];
    assert_eq!(
        (h.field, &doc.article[h.start..h.end]),
        (Field::Article, "JCPOA")
    );
    assert!(h.snippet.contains("JCPOA is back"), "{}", h.snippet);
}
