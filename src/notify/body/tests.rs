//! Tests of the chat bodies: golden bodies, and every service limit held whatever the feed
//! sends.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::discord::{
    DISCORD, DISCORD_CONTENT_MAX, DISCORD_DESCRIPTION_MAX, DISCORD_EMBED_TOTAL_MAX,
    DISCORD_EMBEDS_MAX, DISCORD_FIELD_NAME_MAX, DISCORD_FIELD_VALUE_MAX, DISCORD_TITLE_MAX,
    discord,
};
use super::slack::{
    SLACK, SLACK_BLOCKS_MAX, SLACK_CONTEXT_ELEMENTS_MAX, SLACK_CONTEXT_TEXT_MAX,
    SLACK_FALLBACK_MAX, SLACK_HEADER_MAX, SLACK_SECTION_MAX, slack,
};
use super::teams::{TEAMS_MAX_BYTES, teams, teams_size};
use super::text::*;
use super::{
    Alert, Event, FeedPayload, ItemPayload, MAX_SIGHTINGS, SightingPayload, StoryPayload, render,
};
use crate::config::WebhookFormat;
use crate::matcher::{Field, Highlight, MAX_HIGHLIGHTS};

/// Golden bodies live in the crate's `tests/golden/`.
const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
const UPDATE_GOLDEN: &str = "WIREWATCH_UPDATE_GOLDEN";

type Render = fn(&Alert<'_>, DateTime<Utc>) -> Result<String, serde_json::Error>;
const FORMATS: [(&str, Render); 3] = [("slack", slack), ("discord", discord), ("teams", teams)];

/// Owns what an [`Alert`] borrows.
struct Fixture {
    title: String,
    url: Option<String>,
    published: Option<String>,
    summary: String,
    feed_name: String,
    feed_title: Option<String>,
    watchlist: String,
    terms: Vec<String>,
    highlights: Vec<Highlight>,
    event: Event,
    story: StoryPayload,
}

/// A story seen in one feed only: the alert's own item.
fn lone_story() -> StoryPayload {
    StoryPayload {
        id: "42".into(),
        first_seen: "2026-11-27T23:40:00Z".into(),
        feeds: 1,
        items: 1,
        sightings: Vec::new(),
    }
}

/// A story of `feeds` distinct feeds whose sightings came from `seen_in`, in that order.
fn story_in(feeds: u64, seen_in: &[&str]) -> StoryPayload {
    StoryPayload {
        feeds,
        items: u64::try_from(seen_in.len()).unwrap().max(feeds),
        sightings: seen_in
            .iter()
            .enumerate()
            .map(|(i, feed)| SightingPayload {
                feed: (*feed).into(),
                title: format!("Wire copy {i}"),
                url: Some(format!("https://{i}.example.org/story")),
                seen: format!("2026-11-27T23:{:02}:00Z", 12 + i),
            })
            .collect(),
        ..lone_story()
    }
}

impl Fixture {
    fn alert(&self) -> Alert<'_> {
        Alert {
            event: self.event,
            story: &self.story,
            alert_id: "01936f0e-7c1a-7d3e-9b2a-5f4c3d2e1f00",
            watchlist: &self.watchlist,
            terms: &self.terms,
            story_id: "42".into(),
            item: ItemPayload {
                id: "guid:story-42",
                title: &self.title,
                url: self.url.as_deref(),
                published: self.published.clone(),
                summary: &self.summary,
                authors: &[],
                categories: &[],
                language: None,
            },
            feed: FeedPayload {
                name: &self.feed_name,
                url: "https://feeds.example.org/rss",
                title: self.feed_title.as_deref(),
            },
            highlights: &self.highlights,
        }
    }
}

pub(super) fn highlight(field: Field, term: &str, snippet: &str) -> Highlight {
    Highlight {
        field,
        term: term.into(),
        snippet: snippet.into(),
        start: 0,
        end: term.len(),
    }
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T23:40:00Z")
        .unwrap()
        .to_utc()
}

fn english() -> Fixture {
    Fixture {
        title: "Iran and China sign 25-year pact on the SCO's sidelines".into(),
        url: Some(
            "https://news.example.org/world/2026/11/27/iran-china-pact?ref=rss&utm_source=feed"
                .into(),
        ),
        published: Some("2026-11-27T23:12:00Z".into()),
        summary: "Tehran and Beijing signed a 25-year cooperation pact.".into(),
        feed_name: "example-world".into(),
        feed_title: Some("Example News: World".into()),
        watchlist: "iran-china".into(),
        terms: vec!["China".into(), "Iran".into(), "SCO".into()],
        highlights: vec![
            highlight(
                Field::Title,
                "Iran",
                "Iran and China sign 25-year pact on the SCO's sidelines",
            ),
            highlight(
                Field::Summary,
                "China",
                "…officials said the deal (worth <$400bn> in oil & gas, ports and *5G*) binds China to Iran_s energy_sector…",
            ),
        ],
        event: Event::Match,
        story: lone_story(),
    }
}

fn multilingual() -> Fixture {
    Fixture {
        title: "ایران و چین سند همکاری ۲۵ ساله را در حاشیهٔ نشست شانگهای امضا کردند".into(),
        url: Some("https://www.example.ir/fa/news/1403/%D8%A7%DB%8C%D8%B1%D8%A7%D9%86".into()),
        published: Some("2026-11-28T03:30:00+03:30".into()),
        summary: "中国外交部发言人表示，中国与伊朗将在上海合作组织框架下深化合作。".into(),
        feed_name: "example-fa".into(),
        feed_title: Some("خبرگزاری نمونه".into()),
        watchlist: "iran-china".into(),
        terms: vec!["ایران".into(), "中国".into()],
        highlights: vec![
            highlight(
                Field::Title,
                "ایران",
                "ایران و چین سند همکاری ۲۵ ساله را در حاشیهٔ نشست شانگهای امضا کردند",
            ),
            highlight(
                Field::Summary,
                "中国",
                "中国外交部发言人表示，中国与伊朗将在上海合作组织框架下深化合作。",
            ),
        ],
        event: Event::Match,
        story: lone_story(),
    }
}

fn bare() -> Fixture {
    Fixture {
        title: "Talks on the JCPOA resume in Vienna".into(),
        url: None,
        published: None,
        summary: String::new(),
        feed_name: "wire-desk".into(),
        feed_title: None,
        watchlist: "jcpoa".into(),
        terms: vec!["JCPOA".into()],
        highlights: vec![highlight(Field::Categories, "JCPOA", "JCPOA")],
        event: Event::Match,
        story: lone_story(),
    }
}

/// The English alert on a story three other outlets carried, one of them twice.
fn story() -> Fixture {
    Fixture {
        story: story_in(
            4,
            &[
                "example-world",
                "reuters-world",
                "ap-top",
                "reuters-world",
                "bbc-world",
            ],
        ),
        ..english()
    }
}

/// The multilingual story grown to 20 outlets: more than are named.
fn grew() -> Fixture {
    Fixture {
        event: Event::StoryGrew,
        story: story_in(
            20,
            &[
                "example-fa",
                "irna-fa",
                "xinhua-zh",
                "example-fa",
                "reuters-world",
                "ap-top",
                "bbc-persian",
                "tass-en",
            ],
        ),
        ..multilingual()
    }
}

/// The worst a feed and a config can do at once.
fn huge() -> Fixture {
    let nasty = "ایران*_`<b>&amp;|@everyone 中国~[x](y)\\ ";
    let long = |chars: usize| nasty.chars().cycle().take(chars).collect::<String>();
    // Every sighting from another feed: huge, blank and markup-laden names.
    let names: Vec<String> = (0..MAX_SIGHTINGS)
        .map(|i| match i % 4 {
            0 => format!("{}{i}", long(1_000)),
            1 => String::new(),
            2 => " \n\t ".into(),
            _ => format!(
                "<!channel> *{i}* [x](y) &amp; @everyone # `c` {}",
                long(300)
            ),
        })
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Fixture {
        event: Event::Match,
        story: StoryPayload {
            id: long(1_000),
            first_seen: long(100),
            items: u64::MAX,
            ..story_in(u64::MAX, &names)
        },
        title: long(10_000),
        url: Some(format!("https://example.org/{}?a=1&b=|2", "x".repeat(1900))),
        published: Some(long(500)),
        summary: long(5_000),
        feed_name: long(1_000),
        feed_title: Some(long(1_000)),
        watchlist: long(1_000),
        terms: (0..200).map(|i| format!("ترم{i}*_<&>|@everyone")).collect(),
        highlights: (0..16)
            .map(|i| {
                highlight(
                    Field::ALL[i % 4],
                    &format!("{}{i}", long(300)),
                    &long(5_000),
                )
            })
            .collect(),
    }
}

fn cases() -> [(&'static str, Fixture); 5] {
    [
        ("english", english()),
        ("multilingual", multilingual()),
        ("bare", bare()),
        ("story", story()),
        ("grew", grew()),
    ]
}

pub(super) fn parse(body: &str) -> Value {
    serde_json::from_str(body).expect("the body is JSON")
}

pub(super) fn chars(value: &Value) -> usize {
    let text = value.as_str().expect("a string");
    assert!(utf16_len(text) >= text.chars().count());
    utf16_len(text)
}

/// Every Slack limit; `text` objects are never empty.
pub(super) fn assert_slack_limits(body: &Value) {
    assert!(chars(&body["text"]) <= SLACK_FALLBACK_MAX);
    let blocks = body["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty() && blocks.len() <= SLACK_BLOCKS_MAX);
    for block in blocks {
        match block["type"].as_str() {
            Some("section") => {
                let n = chars(&block["text"]["text"]);
                assert!(n > 0 && n <= SLACK_SECTION_MAX, "section of {n}");
            }
            Some("header") => {
                assert_eq!(block["text"]["type"], "plain_text");
                let n = chars(&block["text"]["text"]);
                assert!(n > 0 && n <= SLACK_HEADER_MAX, "header of {n}");
            }
            Some("context") => {
                let elements = block["elements"].as_array().expect("elements");
                assert!(!elements.is_empty() && elements.len() <= SLACK_CONTEXT_ELEMENTS_MAX);
                for element in elements {
                    let n = chars(&element["text"]);
                    assert!(n > 0 && n <= SLACK_CONTEXT_TEXT_MAX, "context of {n}");
                }
            }
            other => panic!("unexpected block {other:?}"),
        }
    }
}

/// Every Discord limit of a single alert: one embed, with fields, footer and timestamp.
fn assert_discord_limits(body: &Value) {
    let embeds = assert_discord_message(body);
    assert_eq!(embeds.len(), 1);
    let embed = &embeds[0];
    assert!(embed["fields"].is_array());
    assert!(embed["footer"]["text"].is_string());
    assert!(embed["timestamp"].is_string());
}

/// Every Discord limit of a message, up to ten embeds whose text adds up within the
/// message-wide total, and mentions off. Returns the embeds.
pub(super) fn assert_discord_message(body: &Value) -> &Vec<Value> {
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    if let Some(content) = body.get("content") {
        let n = chars(content);
        assert!(n > 0 && n <= DISCORD_CONTENT_MAX);
    }
    let embeds = body["embeds"].as_array().expect("embeds");
    assert!(embeds.len() <= DISCORD_EMBEDS_MAX);
    assert!(!embeds.is_empty() || body.get("content").is_some());
    let total: usize = embeds.iter().map(assert_discord_embed).sum();
    assert!(total <= DISCORD_EMBED_TOTAL_MAX, "embed total {total}");
    embeds
}

/// Every limit of one embed; returns what it counts towards the message-wide total.
fn assert_discord_embed(embed: &Value) -> usize {
    let mut total = 0;
    let title = chars(&embed["title"]);
    assert!(title > 0 && title <= DISCORD_TITLE_MAX);
    total += title;
    if let Some(description) = embed.get("description") {
        let n = chars(description);
        assert!(n > 0 && n <= DISCORD_DESCRIPTION_MAX);
        total += n;
    }
    if let Some(fields) = embed.get("fields") {
        let fields = fields.as_array().expect("fields");
        assert!(fields.len() <= 25);
        for field in fields {
            let (name, value) = (chars(&field["name"]), chars(&field["value"]));
            assert!(name > 0 && name <= DISCORD_FIELD_NAME_MAX);
            assert!(value > 0 && value <= DISCORD_FIELD_VALUE_MAX);
            total += name + value;
        }
    }
    if let Some(footer) = embed.get("footer") {
        let footer = chars(&footer["text"]);
        assert!(footer <= 2048);
        total += footer;
    }
    if let Some(timestamp) = embed.get("timestamp") {
        let timestamp = timestamp.as_str().expect("timestamp");
        assert!(DateTime::parse_from_rfc3339(timestamp).is_ok());
    }
    if let Some(url) = embed.get("url") {
        assert!(link(url.as_str().expect("url")).is_some());
    }
    total
}

/// The Teams envelope, the size limit, and the action exactly when there is a URL.
fn assert_teams_limits(body: &str, has_url: bool) {
    let card = assert_teams_card(body);
    assert_eq!(card.get("actions").is_some(), has_url);
    if has_url {
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    }
}

/// The Teams envelope of an Adaptive Card and the size limit. Returns the card.
pub(super) fn assert_teams_card(body: &str) -> Value {
    assert!(body.len() <= 28 * 1024 && teams_size(body) <= TEAMS_MAX_BYTES);
    let mut value = parse(body);
    assert_eq!(value["type"], "message");
    let attachment = &mut value["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(attachment["contentUrl"], Value::Null);
    let card = attachment["content"].take();
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert!(!card["body"].as_array().expect("body").is_empty());
    card
}

fn assert_limits(format: &str, body: &str, has_url: bool) {
    match format {
        "slack" => assert_slack_limits(&parse(body)),
        "discord" => assert_discord_limits(&parse(body)),
        _ => assert_teams_limits(body, has_url),
    }
}

#[test]
fn every_format_matches_its_golden_file() {
    for (case, fixture) in cases() {
        let alert = fixture.alert();
        for (format, render) in FORMATS {
            let body = render(&alert, at()).unwrap();
            assert_limits(format, &body, fixture.url.is_some());
            assert_golden(&format!("{format}-{case}"), &parse(&body));
        }
    }
}

/// Compares `actual` with the golden file `name.json`, or writes it there when
/// `WIREWATCH_UPDATE_GOLDEN=1`.
pub(super) fn assert_golden(name: &str, actual: &Value) {
    let path = format!("{GOLDEN_DIR}/{name}.json");
    if std::env::var_os(UPDATE_GOLDEN).is_some_and(|v| v == "1") {
        std::fs::create_dir_all(GOLDEN_DIR).unwrap();
        let pretty = serde_json::to_string_pretty(actual).unwrap();
        std::fs::write(&path, pretty + "\n").unwrap();
        return;
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run with {UPDATE_GOLDEN}=1"));
    let expected: Value = serde_json::from_str(&golden).unwrap();
    assert_eq!(
        actual, &expected,
        "{path} differs; run with {UPDATE_GOLDEN}=1 and review"
    );
}

#[test]
fn huge_alerts_stay_within_every_limit_of_every_format() {
    for event in [Event::Match, Event::StoryGrew] {
        let fixture = Fixture { event, ..huge() };
        let alert = fixture.alert();
        for (format, render) in FORMATS {
            let body = render(&alert, at()).unwrap();
            assert_limits(format, &body, true);
        }
    }
}

#[test]
fn huge_slack_text_is_cut_with_an_ellipsis_and_escapes_intact() {
    let fixture = huge();
    let body = parse(&slack(&fixture.alert(), at()).unwrap());
    let title = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(title.starts_with("<https://example.org/") && title.ends_with("…>"));
    assert!(title.contains("?a=1&amp;b=%7C2|"), "{title}");
    assert!(body["text"].as_str().unwrap().ends_with('…'));
    for element in body["blocks"][1]["elements"].as_array().unwrap() {
        assert!(element["text"].as_str().unwrap().ends_with('…'));
    }
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2 + 16);
    for block in &blocks[2..] {
        let text = block["text"]["text"].as_str().unwrap();
        assert!(text.ends_with('…'));
        // Raw `<`/`>` only in our own link markup, every `&` starts an escape.
        assert!(!text.contains('<') && !text.contains('>'));
        let escapes = ["&amp;", "&lt;", "&gt;"];
        assert!(
            text.match_indices('&')
                .all(|(i, _)| escapes.iter().any(|e| text[i..].starts_with(e)))
        );
    }
}

/// Checks that `text` is escaped Discord text: every special character is escaped.
fn assert_discord_escaped(text: &str) {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let next = chars.next().expect("an escape is never cut in half");
            assert!(next.is_ascii_punctuation(), "{text}");
        } else {
            assert!(!"*_~`|><[]".contains(c), "unescaped {c} in {text}");
        }
    }
}

#[test]
fn huge_discord_text_is_cut_with_an_ellipsis_and_escapes_intact() {
    let fixture = huge();
    let body = parse(&discord(&fixture.alert(), at()).unwrap());
    let embed = &body["embeds"][0];
    let title = embed["title"].as_str().unwrap();
    assert!(title.ends_with('…'));
    assert_discord_escaped(title);
    for field in embed["fields"].as_array().unwrap() {
        let value = field["value"].as_str().unwrap();
        assert!(value.ends_with('…'), "{value}");
        assert_discord_escaped(value);
    }
    assert!(embed["description"].as_str().unwrap().ends_with('…'));
    assert!(embed["url"].as_str().unwrap().contains("&b=|2"));
}

#[test]
fn huge_teams_text_is_cut_with_an_ellipsis() {
    let fixture = huge();
    let body = parse(&teams(&fixture.alert(), at()).unwrap());
    let blocks = body["attachments"][0]["content"]["body"]
        .as_array()
        .unwrap();
    let title = blocks[0]["inlines"][0]["text"].as_str().unwrap();
    assert!(title.ends_with('…'));
    // Feed, watch-list, terms, time and the other outlets.
    for fact in &blocks[1..6] {
        assert!(fact["inlines"][1]["text"].as_str().unwrap().ends_with('…'));
    }
    // Some highlights fit, the rest are counted in a note.
    let last = blocks.last().unwrap();
    assert_eq!(last["type"], "TextBlock");
    assert!(last["text"].as_str().unwrap().ends_with("more highlights…"));
    assert!(blocks.len() > 7, "at least one highlight shown");
    for line in &blocks[6..blocks.len() - 1] {
        assert!(line["inlines"][2]["text"].as_str().unwrap().ends_with('…'));
    }
}

#[test]
fn blank_feed_text_still_makes_valid_bodies() {
    let fixture = Fixture {
        title: " \n ".into(),
        url: None,
        published: Some("  ".into()),
        summary: "\t".into(),
        feed_name: String::new(),
        feed_title: Some(" ".into()),
        watchlist: String::new(),
        terms: vec![" ".into()],
        highlights: Vec::new(),
        event: Event::Match,
        story: lone_story(),
    };
    let alert = fixture.alert();
    for (format, render) in FORMATS {
        assert_limits(format, &render(&alert, at()).unwrap(), false);
    }
    let body = parse(&discord(&alert, at()).unwrap());
    assert_eq!(body["embeds"][0]["title"], UNTITLED);
    assert!(body["embeds"][0].get("description").is_none());
}

#[test]
fn a_full_match_of_ordinary_snippets_shows_every_highlight() {
    // The matcher's most: 16 highlights of 160 characters.
    let mut fixture = multilingual();
    let snippet: String = "ایران و چین ".chars().cycle().take(159).collect();
    fixture.highlights = (0..MAX_HIGHLIGHTS)
        .map(|i| highlight(Field::Content, "ایران", &format!("{snippet}{i}")))
        .collect();
    let alert = fixture.alert();
    let slack = parse(&slack(&alert, at()).unwrap());
    assert_eq!(
        slack["blocks"].as_array().unwrap().len(),
        2 + MAX_HIGHLIGHTS
    );
    let discord = parse(&discord(&alert, at()).unwrap());
    let description = discord["embeds"][0]["description"].as_str().unwrap();
    assert_eq!(description.matches("**ایران**").count(), MAX_HIGHLIGHTS);
    assert!(!description.contains("more highlight"));
    let teams = teams(&alert, at()).unwrap();
    assert_teams_limits(&teams, true);
    assert_eq!(teams.matches(" · content: ").count(), MAX_HIGHLIGHTS);
    assert!(!teams.contains("more highlight"));
}

#[test]
fn discord_never_lets_feed_text_mention_anyone() {
    let mut fixture = english();
    fixture.title = "@everyone <@123> look".into();
    let body = parse(&discord(&fixture.alert(), at()).unwrap());
    assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    assert_eq!(body["embeds"][0]["title"], "@everyone \\<@123\\> look");
}

#[test]
fn discord_escapes_unescape_to_the_original_text() {
    let text = "# *bold* _it_ ~s~ `c` ||sp|| > q [l](u) \\ a-b #x";
    let escaped = DISCORD.fit(text, usize::MAX);
    assert_discord_escaped(&escaped);
    let mut unescaped = String::new();
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        unescaped.push(if c == '\\' { chars.next().unwrap() } else { c });
    }
    assert_eq!(unescaped, text);
    assert!(escaped.starts_with("\\# ") && escaped.ends_with(" #x"));
}

#[test]
fn cuts_fall_between_escapes_never_inside_one() {
    // `&` is five units escaped: at every budget the cut lands before or after one.
    let full = SLACK.fit("ab&&&&", usize::MAX);
    let boundaries = [0, 1, 2, 7, 12, 17, 22];
    for max in 1..full.len() {
        let cut = SLACK.fit("ab&&&&", max);
        assert!(utf16_len(&cut) <= max, "{max}: {cut}");
        let kept = cut.strip_suffix('…').expect("a cut ends with …");
        assert!(
            full.starts_with(kept) && boundaries.contains(&kept.len()),
            "{max}: {cut}"
        );
    }
}

#[test]
fn cuts_count_characters_not_bytes_and_drop_trailing_space() {
    assert_eq!(DISCORD.fit("ایران و چین", 6), "ایران…");
    assert_eq!(DISCORD.fit("中国外交部", 3), "中国…");
    // A character outside the BMP is two UTF-16 units.
    assert_eq!(DISCORD.fit("😀😀😀", 4), "😀…");
    assert_eq!(DISCORD.fit("  a \n\t b\u{7}  ", 10), "a b");
}

#[test]
fn term_lists_are_cut_between_terms() {
    let terms: Vec<String> = ["China", "Iran", "SCO", "JCPOA"].map(String::from).to_vec();
    assert_eq!(SLACK.fit_list(&terms, 100), "China, Iran, SCO, JCPOA");
    assert_eq!(SLACK.fit_list(&terms, 16), "China, Iran, …");
    assert_eq!(SLACK.fit_list(&terms, 4), "Chi…");
    assert_eq!(SLACK.fit_list(&[], 4), "—");
}

#[test]
fn only_absolute_printable_http_urls_become_links() {
    assert!(link("https://example.org/a?b=c").is_some());
    assert!(link("HTTP://example.org").is_some());
    assert!(link("javascript:alert(1)").is_none());
    assert!(link("https:///path").is_none());
    assert!(link("https://exa mple.org").is_none());
    assert!(link(&format!("https://example.org/{}", "a".repeat(MAX_LINK_URL))).is_none());
}

#[test]
fn an_item_without_a_usable_url_has_no_link_anywhere() {
    let mut fixture = english();
    fixture.url = Some("ftp://example.org/file".into());
    let alert = fixture.alert();
    let slack = parse(&slack(&alert, at()).unwrap());
    assert!(
        !slack["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains('<')
    );
    let discord = parse(&discord(&alert, at()).unwrap());
    assert!(discord["embeds"][0].get("url").is_none());
    let body = teams(&alert, at()).unwrap();
    assert_teams_limits(&body, false);
    assert!(!body.contains("selectAction"));
}

#[test]
fn the_published_time_shows_in_utc_and_the_alert_time_stands_in_for_a_missing_one() {
    assert_eq!(
        display_time("2026-11-28T03:30:00+03:30"),
        "2026-11-28 00:00 UTC"
    );
    assert_eq!(display_time("yesterday"), "yesterday");
    let body = parse(&slack(&bare().alert(), at()).unwrap());
    assert_eq!(
        body["blocks"][1]["elements"][3]["text"],
        "*Alerted:* 2026-11-27 23:40 UTC"
    );
}

/// The Slack context element naming the other outlets, if any.
fn slack_also(body: &Value) -> Option<String> {
    body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|block| block["type"] == "context")
        .flat_map(|block| block["elements"].as_array().unwrap())
        .map(|element| element["text"].as_str().unwrap())
        .find(|text| text.starts_with("*Also in "))
        .map(String::from)
}

#[test]
fn a_story_seen_in_one_feed_shows_nothing_of_stories() {
    let fixture = english();
    let alert = fixture.alert();
    for (format, render) in FORMATS {
        let body = render(&alert, at()).unwrap();
        assert!(
            !body.contains("Also in") && !body.contains("Story grew"),
            "{format}"
        );
    }
}

#[test]
fn other_outlets_are_counted_and_named_once_each_without_the_alerts_own_feed() {
    let fixture = story();
    let alert = fixture.alert();
    let also = Content::of(&alert, at()).also.unwrap();
    assert_eq!(also.outlets, 3);
    assert_eq!(also.names, ["reuters-world", "ap-top", "bbc-world"]);
    assert!(!also.more);
    let body = parse(&slack(&alert, at()).unwrap());
    assert_eq!(
        slack_also(&body).unwrap(),
        "*Also in 3 outlets:* reuters-world, ap-top, bbc-world"
    );
}

#[test]
fn a_few_other_outlets_are_named_and_the_list_ends_with_an_ellipsis_when_there_are_more() {
    let fixture = grew();
    let body = parse(&slack(&fixture.alert(), at()).unwrap());
    assert_eq!(
        slack_also(&body).unwrap(),
        "*Also in 19 outlets:* irna-fa, xinhua-zh, reuters-world, ap-top, bbc-persian, …"
    );
}

#[test]
fn one_other_outlet_is_singular() {
    let fixture = Fixture {
        story: story_in(2, &["example-world", "ap-top"]),
        ..english()
    };
    let body = parse(&slack(&fixture.alert(), at()).unwrap());
    assert_eq!(slack_also(&body).unwrap(), "*Also in 1 outlet:* ap-top");
}

#[test]
fn outlets_the_sightings_do_not_name_are_an_ellipsis_or_a_dash() {
    // The sightings hold at most 20 items, and may name fewer feeds than the story has.
    let partly = Fixture {
        story: story_in(5, &["example-world", "ap-top", "example-world"]),
        ..english()
    };
    let body = parse(&slack(&partly.alert(), at()).unwrap());
    assert_eq!(slack_also(&body).unwrap(), "*Also in 4 outlets:* ap-top, …");
    let unnamed = Fixture {
        story: story_in(3, &["example-world", "", " \t"]),
        ..english()
    };
    let alert = unnamed.alert();
    let body = parse(&slack(&alert, at()).unwrap());
    assert_eq!(slack_also(&body).unwrap(), "*Also in 2 outlets:* —");
    let body = parse(&discord(&alert, at()).unwrap());
    let fields = body["embeds"][0]["fields"].as_array().unwrap();
    assert_eq!(
        fields.last().unwrap(),
        &json!({"name": "Also in 2 outlets", "value": "—", "inline": false})
    );
    assert_limits("teams", &teams(&alert, at()).unwrap(), true);
}

#[test]
fn outlet_lists_keep_their_cap_and_say_when_more_go_unnamed() {
    let names = ["reuters-world", "ap-top", "bbc-world"];
    let also = |more| Also {
        outlets: 9,
        names: names.to_vec(),
        more,
    };
    assert_eq!(
        SLACK.outlet_names(&also(false), 100),
        "reuters-world, ap-top, bbc-world"
    );
    assert_eq!(
        SLACK.outlet_names(&also(true), 100),
        "reuters-world, ap-top, bbc-world, …"
    );
    // Whole names while they fit, then the ellipsis, whether or not more go unnamed.
    for more in [false, true] {
        assert_eq!(
            SLACK.outlet_names(&also(more), 30),
            "reuters-world, ap-top, …"
        );
        assert_eq!(SLACK.outlet_names(&also(more), 8), "reuters…");
    }
}

#[test]
fn markup_laden_outlet_names_are_escaped_in_every_format() {
    let hostile = [
        "<!channel> <@U123>",
        "*bold* _it_ ~s~",
        "[x](https://evil.example) |a|",
        "&amp; & @everyone",
        "# `code`",
    ];
    let mut seen_in = vec!["example-world"];
    seen_in.extend(hostile);
    let fixture = Fixture {
        story: story_in(6, &seen_in),
        ..english()
    };
    let alert = fixture.alert();

    let body = parse(&slack(&alert, at()).unwrap());
    assert_slack_limits(&body);
    let also = slack_also(&body).unwrap();
    assert!(!also.contains('<') && !also.contains('>'), "{also}");
    assert!(also.contains("&lt;!channel&gt; &lt;@U123&gt;"), "{also}");
    assert!(also.contains("&amp;amp; &amp; @everyone"), "{also}");

    let body = parse(&discord(&alert, at()).unwrap());
    assert_discord_limits(&body);
    let fields = body["embeds"][0]["fields"].as_array().unwrap();
    let field = fields.last().unwrap();
    assert_eq!(field["name"], "Also in 5 outlets");
    let value = field["value"].as_str().unwrap();
    assert_discord_escaped(value);
    assert!(value.contains("\\<!channel\\>"), "{value}");

    // Teams shows text runs as sent: the names arrive whole, cut only by the cap.
    let body = teams(&alert, at()).unwrap();
    assert_teams_limits(&body, true);
    let card = &parse(&body)["attachments"][0]["content"];
    let line = &card["body"][5]["inlines"];
    assert_eq!(line[0]["text"], "Also in 5 outlets: ");
    assert_eq!(line[1]["text"], hostile.join(", "));
}

#[test]
fn huge_outlet_names_are_cut_within_the_outlets_cap() {
    let fixture = huge();
    let alert = fixture.alert();
    let body = parse(&slack(&alert, at()).unwrap());
    let also = slack_also(&body).unwrap();
    let names = also.strip_prefix("*Also in 18446744073709551614 outlets:* ");
    let names = names.expect("the count as it is");
    assert!(utf16_len(names) <= OUTLETS_MAX && names.ends_with('…'));
    assert!(!names.contains('<') && !names.contains('>'));

    let body = parse(&discord(&alert, at()).unwrap());
    let field = body["embeds"][0]["fields"]
        .as_array()
        .unwrap()
        .last()
        .unwrap();
    let value = field["value"].as_str().unwrap();
    assert!(utf16_len(value) <= OUTLETS_MAX && value.ends_with('…'));
    assert_discord_escaped(value);
}

#[test]
fn a_story_that_grew_reads_as_an_escalation_in_every_format() {
    let fixture = grew();
    let alert = fixture.alert();
    let heading = "Story grew: now reported by 20 outlets";

    let body = parse(&slack(&alert, at()).unwrap());
    assert_eq!(body["blocks"][0]["type"], "header");
    assert_eq!(body["blocks"][0]["text"]["text"], heading);
    let title = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(title.starts_with("<https://www.example.ir/"), "{title}");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("{heading} · iran-china: ")),
        "{text}"
    );

    let body = parse(&discord(&alert, at()).unwrap());
    assert_eq!(body["content"], heading);
    assert_eq!(body["embeds"][0]["title"], fixture.title);
    assert!(body["embeds"][0]["url"].is_string());

    let body = parse(&teams(&alert, at()).unwrap());
    let card = &body["attachments"][0]["content"];
    assert_eq!(card["body"][0]["type"], "TextBlock");
    assert_eq!(card["body"][0]["text"], heading);
    assert_eq!(card["body"][1]["inlines"][0]["text"], fixture.title);
    assert!(card["body"][1]["inlines"][0]["selectAction"].is_object());
}

#[test]
fn a_huge_story_that_grew_keeps_its_heading_in_the_notification_text() {
    let fixture = Fixture {
        event: Event::StoryGrew,
        ..huge()
    };
    let body = parse(&slack(&fixture.alert(), at()).unwrap());
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("Story grew: now reported by 18446744073709551615 outlets · "),
        "{text}"
    );
    assert!(text.ends_with('…'));
}

#[test]
fn the_json_body_of_a_story_that_grew_carries_the_story_of_spec_section_10() {
    let fixture = grew();
    let body = render(WebhookFormat::Json, &fixture.alert(), at()).unwrap();
    let value = parse(&body);
    assert_eq!(value["type"], "watchlist.story_grew");
    let story = value["data"]["story"].as_object().unwrap();
    let mut keys: Vec<&str> = story.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["feeds", "first_seen", "id", "items", "sightings"]);
    assert_eq!(story["feeds"], 20);
    let sightings = story["sightings"].as_array().unwrap();
    assert_eq!(sightings.len(), 8);
    let mut keys: Vec<&str> = sightings[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["feed", "seen", "title", "url"]);
    assert_eq!(sightings[1]["feed"], "irna-fa");
}
