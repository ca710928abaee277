//! Tests of the digest bodies: golden digests, and every part of a digest of any size
//! within every limit of its service, each story in exactly one part, in order.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::slack::SLACK_DIGEST_TEXT_MAX;
use super::teams::{TEAMS_MAX_BYTES, teams_size};
use super::tests::{
    assert_discord_message, assert_golden, assert_slack_limits, assert_teams_card, chars,
    highlight, parse,
};
use super::{Digest, DigestStory, Period, SightingPayload, render_digest};
use crate::config::WebhookFormat;
use crate::matcher::Field;

const CHAT: [(&str, WebhookFormat); 3] = [
    ("slack", WebhookFormat::Slack),
    ("discord", WebhookFormat::Discord),
    ("teams", WebhookFormat::Teams),
];

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T08:00:00Z")
        .unwrap()
        .to_utc()
}

fn period() -> Period {
    Period {
        from: "2026-11-27T08:00:00Z".into(),
        to: "2026-11-28T08:00:00Z".into(),
    }
}

fn digest(stories: &[DigestStory]) -> Digest<'_> {
    Digest {
        watchlist: "iran-china",
        period: period(),
        stories,
        count: stories.len(),
    }
}

fn sighting(feed: &str, title: &str, url: Option<&str>, seen: &str) -> SightingPayload {
    SightingPayload {
        feed: feed.into(),
        title: title.into(),
        url: url.map(String::from),
        seen: seen.into(),
    }
}

/// Three stories as a digest ranks them: four outlets, two, then one.
fn three_stories() -> Vec<DigestStory> {
    let pact = "Iran and China sign 25-year pact on the SCO's sidelines";
    let persian = "ایران و چین سند همکاری ۲۵ ساله را در حاشیهٔ نشست شانگهای امضا کردند";
    let chinese = "中国外交部：中伊将在上海合作组织框架下深化能源合作";
    vec![
        DigestStory {
            id: "0193a1f0-0001".into(),
            title: pact.into(),
            first_seen: "2026-11-27T09:12:00Z".into(),
            feeds: 4,
            items: vec![
                sighting(
                    "example-world",
                    pact,
                    Some(
                        "https://news.example.org/world/2026/11/27/iran-china-pact?ref=rss&utm_source=feed",
                    ),
                    "2026-11-27T09:12:00Z",
                ),
                sighting(
                    "reuters-world",
                    "UPDATE 1-Iran and China sign 25-year pact - Reuters",
                    Some("https://wire.example.com/iran-china-pact"),
                    "2026-11-27T09:20:00Z",
                ),
                sighting("ap-top", pact, None, "2026-11-27T09:31:00Z"),
                sighting("bbc-world", pact, None, "2026-11-27T10:02:00Z"),
            ],
            terms: vec!["China".into(), "Iran".into(), "SCO".into()],
            highlights: vec![
                highlight(Field::Title, "Iran", pact),
                highlight(
                    Field::Summary,
                    "China",
                    "…Tehran and Beijing signed the 25-year cooperation pact on Friday, officials said…",
                ),
            ],
        },
        DigestStory {
            id: "0193a1f0-0002".into(),
            title: persian.into(),
            first_seen: "2026-11-27T11:40:00Z".into(),
            feeds: 2,
            // The first sighting has no URL: the title links to the next one's.
            items: vec![
                sighting("example-fa", persian, None, "2026-11-27T11:40:00Z"),
                sighting(
                    "irna-fa",
                    persian,
                    Some("https://www.example.ir/fa/news/1403/%D8%A7%DB%8C%D8%B1%D8%A7%D9%86"),
                    "2026-11-27T11:52:00Z",
                ),
            ],
            terms: vec!["ایران".into(), "چین".into()],
            highlights: vec![highlight(Field::Title, "ایران", persian)],
        },
        DigestStory {
            id: "0193a1f0-0003".into(),
            title: chinese.into(),
            first_seen: "2026-11-28T02:05:00Z".into(),
            feeds: 1,
            items: vec![sighting("xinhua-zh", chinese, None, "2026-11-28T02:05:00Z")],
            terms: vec!["中国".into()],
            highlights: vec![highlight(
                Field::Summary,
                "中国",
                "…发言人说，中国与伊朗的协议（价值 <$400bn> 的石油 & 天然气、港口和 *5G*）将…",
            )],
        },
    ]
}

/// Stories as hostile as a feed can make them, each title starting with `story#NNNN`.
fn hostile_stories(n: usize) -> Vec<DigestStory> {
    let nasty = "ایران*_`<b>&amp;|@everyone <!channel> 中国~[x](y)\\ # > - ";
    let long = |chars: usize| nasty.chars().cycle().take(chars).collect::<String>();
    let huge_url = format!("https://example.org/{}?a=1&b=|2", "x".repeat(1_900));
    (0..n)
        .map(|i| {
            let url = match i % 4 {
                0 => None,
                1 => Some(huge_url.clone()),
                2 => Some("javascript:alert(1)".to_string()),
                _ => Some(format!("https://example.org/{i}?q=<a>&b=(c)|d")),
            };
            DigestStory {
                id: format!("story#{i:04}"),
                title: format!("story#{i:04} {}", long(3_000)),
                first_seen: if i % 5 == 0 {
                    long(80)
                } else {
                    "2026-11-27T09:00:00Z".into()
                },
                feeds: [1, 12, u64::MAX][i % 3],
                items: vec![SightingPayload {
                    feed: long(500),
                    title: long(500),
                    url,
                    seen: long(40),
                }],
                terms: (0..60).map(|t| format!("ترم{t}*_<&>|@everyone")).collect(),
                highlights: vec![highlight(Field::Summary, &long(300), &long(5_000))],
            }
        })
        .collect()
}

/// Stories as short as they come: each title `story#NNNN`, nothing else to show.
fn short_stories(n: usize) -> Vec<DigestStory> {
    (0..n)
        .map(|i| DigestStory {
            id: format!("story#{i:04}"),
            title: format!("story#{i:04}"),
            first_seen: "2026-11-27T09:00:00Z".into(),
            feeds: 1,
            items: Vec::new(),
            terms: vec!["x".into()],
            highlights: Vec::new(),
        })
        .collect()
}

/// Every limit of the service, for one part of a digest.
fn assert_part_limits(format: &str, body: &str) {
    match format {
        "slack" => {
            let value = parse(body);
            assert_slack_limits(&value);
            let text = slack_blocks_text(&value);
            assert!(text <= SLACK_DIGEST_TEXT_MAX, "blocks text {text}");
        }
        "discord" => {
            assert_discord_message(&parse(body));
        }
        _ => {
            assert_teams_card(body);
        }
    }
}

/// All the text of a Slack message's blocks, in UTF-16 units.
fn slack_blocks_text(body: &Value) -> usize {
    body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|block| match block["type"].as_str() {
            Some("context") => block["elements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|element| chars(&element["text"]))
                .sum(),
            _ => chars(&block["text"]["text"]),
        })
        .sum()
}

/// The heading of a part: where it says which part it is.
fn part_heading(format: &str, body: &Value) -> String {
    let heading = match format {
        "slack" => &body["blocks"][0]["text"]["text"],
        "discord" => &body["content"],
        _ => &body["attachments"][0]["content"]["body"][0]["inlines"][0]["text"],
    };
    heading.as_str().unwrap().to_string()
}

/// The `story#NNNN` numbers in the stories of a part, in order.
fn story_numbers(format: &str, body: &Value) -> Vec<usize> {
    let stories = match format {
        "slack" => body["blocks"].to_string(),
        "discord" => body["embeds"].to_string(),
        _ => body.to_string(),
    };
    stories
        .match_indices("story#")
        .map(|(i, marker)| {
            let digits = &stories[i + marker.len()..i + marker.len() + 4];
            digits.parse().unwrap()
        })
        .collect()
}

#[test]
fn every_format_of_a_digest_matches_its_golden_file() {
    let stories = three_stories();
    let digest = digest(&stories);
    let formats = [("json", WebhookFormat::Json)].into_iter().chain(CHAT);
    for (name, format) in formats {
        let bodies = render_digest(format, &digest, at()).unwrap();
        assert_eq!(bodies.len(), 1, "{name}");
        if name != "json" {
            assert_part_limits(name, &bodies[0]);
        }
        assert_golden(&format!("{name}-digest"), &parse(&bodies[0]));
    }
}

#[test]
fn the_json_digest_is_the_event_of_spec_section_11() {
    let stories = three_stories();
    let bodies = render_digest(WebhookFormat::Json, &digest(&stories), at()).unwrap();
    let value = parse(&bodies[0]);
    assert_eq!(value["type"], "watchlist.digest");
    assert_eq!(value["timestamp"], "2026-11-28T08:00:00Z");
    let data = &value["data"];
    assert_eq!(data["watchlist"], "iran-china");
    assert_eq!(data["period"]["from"], "2026-11-27T08:00:00Z");
    assert_eq!(data["count"], 3);
    let story = data["stories"][0].as_object().unwrap();
    let mut keys: Vec<&str> = story.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "feeds",
            "first_seen",
            "highlights",
            "id",
            "items",
            "terms",
            "title"
        ]
    );
}

#[test]
fn a_small_digest_is_one_message_without_part_numbers() {
    let stories = three_stories();
    let digest = digest(&stories);
    for (name, format) in CHAT {
        let bodies = render_digest(format, &digest, at()).unwrap();
        assert_eq!(bodies.len(), 1, "{name}");
        assert!(!bodies[0].contains("part "), "{name}: {}", bodies[0]);
        let body = parse(&bodies[0]);
        assert!(
            part_heading(name, &body).contains("Digest · iran-china · 3 stories"),
            "{name}"
        );
        assert!(
            bodies[0].contains("2026-11-27 08:00 UTC – 2026-11-28 08:00 UTC"),
            "{name}"
        );
    }
}

#[test]
fn a_large_hostile_digest_splits_into_numbered_parts_within_every_limit() {
    const STORIES: usize = 500;
    let stories = hostile_stories(STORIES);
    let digest = digest(&stories);
    for (name, format) in CHAT {
        let bodies = render_digest(format, &digest, at()).unwrap();
        let n = bodies.len();
        assert!(n > 1, "{name}");
        let mut seen = Vec::new();
        for (k, body) in bodies.iter().enumerate() {
            assert_part_limits(name, body);
            let value = parse(body);
            let numbering = format!("part {} of {n}", k + 1);
            let heading = part_heading(name, &value);
            assert!(heading.contains(&numbering), "{name}: {heading}");
            if name == "slack" {
                let text = value["text"].as_str().unwrap();
                assert!(text.contains(&numbering), "{text}");
            }
            let numbers = story_numbers(name, &value);
            assert!(!numbers.is_empty(), "{name}: part {} is empty", k + 1);
            seen.extend(numbers);
        }
        let all: Vec<usize> = (0..STORIES).collect();
        assert_eq!(seen, all, "{name}: every story once, in order");
    }
}

#[test]
fn parts_take_as_many_short_stories_as_the_service_allows() {
    let stories = short_stories(100);
    let digest = digest(&stories);
    let count = |name: &str, format| -> Vec<usize> {
        let bodies = render_digest(format, &digest, at()).unwrap();
        for body in &bodies {
            assert_part_limits(name, body);
        }
        bodies
            .iter()
            .map(|body| story_numbers(name, &parse(body)).len())
            .collect()
    };
    // 50 blocks, two of them the heading and the period.
    assert_eq!(count("slack", WebhookFormat::Slack), [48, 48, 4]);
    // 10 embeds.
    assert_eq!(count("discord", WebhookFormat::Discord), [10; 10]);
}

#[test]
fn teams_parts_are_full_but_for_the_last() {
    let stories = short_stories(100);
    let bodies = render_digest(WebhookFormat::Teams, &digest(&stories), at()).unwrap();
    assert!(bodies.len() > 1);
    for body in &bodies[..bodies.len() - 1] {
        assert_part_limits("teams", body);
        // A short story is two elements here, after the heading and the period; one more
        // would not have fitted.
        let card = assert_teams_card(body);
        let story: usize = card["body"].as_array().unwrap()[2..4]
            .iter()
            .map(|element| teams_size(&element.to_string()) + 2)
            .sum();
        assert!(teams_size(body) + story > TEAMS_MAX_BYTES);
    }
}

#[test]
fn the_title_links_to_the_first_item_url_that_can_be_a_link() {
    let stories = three_stories();
    let digest = digest(&stories);
    let bodies = render_digest(WebhookFormat::Discord, &digest, at()).unwrap();
    let body = parse(&bodies[0]);
    let embeds = body["embeds"].as_array().unwrap();
    assert_eq!(
        embeds[0]["url"],
        "https://news.example.org/world/2026/11/27/iran-china-pact?ref=rss&utm_source=feed"
    );
    assert_eq!(
        embeds[1]["url"],
        "https://www.example.ir/fa/news/1403/%D8%A7%DB%8C%D8%B1%D8%A7%D9%86"
    );
    assert!(embeds[2].get("url").is_none());
}

#[test]
fn outlets_show_only_for_a_story_more_than_one_feed_carried() {
    let stories = three_stories();
    let digest = digest(&stories);
    let bodies = render_digest(WebhookFormat::Slack, &digest, at()).unwrap();
    let body = parse(&bodies[0]);
    let sections: Vec<&str> = body["blocks"].as_array().unwrap()[2..]
        .iter()
        .map(|block| block["text"]["text"].as_str().unwrap())
        .collect();
    assert!(sections[0].contains("\n4 outlets · *Terms:* China, Iran, SCO\n"));
    assert!(sections[1].contains("\n2 outlets · *Terms:* "));
    assert!(sections[2].contains("\n*Terms:* 中国\n"));
    assert!(!sections[2].contains("outlet"));
}

#[test]
fn the_snippet_is_the_first_that_shows_more_than_the_title() {
    let stories = three_stories();
    let digest = digest(&stories);
    let bodies = render_digest(WebhookFormat::Discord, &digest, at()).unwrap();
    let body = parse(&bodies[0]);
    let embeds = body["embeds"].as_array().unwrap();
    let description = |i: usize| embeds[i]["description"].as_str().unwrap();
    // A hit in the title, then one in the summary: the summary's snippet.
    assert!(description(0).ends_with(
        "\n> …Tehran and Beijing signed the 25-year cooperation pact on Friday, officials said…"
    ));
    // Only a hit in the title: no snippet.
    assert!(!description(1).contains('\n'), "{}", description(1));
    assert!(description(2).contains("\n> …发言人说"));
}

#[test]
fn an_empty_digest_is_one_valid_part() {
    let digest = digest(&[]);
    for (name, format) in CHAT {
        let bodies = render_digest(format, &digest, at()).unwrap();
        assert_eq!(bodies.len(), 1, "{name}");
        assert_part_limits(name, &bodies[0]);
        assert!(bodies[0].contains("0 stories"), "{name}");
    }
}

#[test]
fn one_story_is_singular() {
    let stories = short_stories(1);
    let bodies = render_digest(WebhookFormat::Teams, &digest(&stories), at()).unwrap();
    let heading = part_heading("teams", &parse(&bodies[0]));
    assert_eq!(heading, "Digest · iran-china · 1 story");
}
