//! What the demo runs on: the bundled sample feeds (`config/demo/`, compiled in), the
//! items that must not alert and why, the story carried by two feeds under one link, the
//! story carried by three outlets under three links and its opposite, and the
//! configuration the demo writes for its run.

/// One bundled sample feed.
pub(super) struct SampleFeed {
    pub(super) name: &'static str,
    pub(super) file: &'static str,
    pub(super) kind: &'static str,
    pub(super) content_type: &'static str,
    pub(super) body: &'static str,
}

pub(super) const SAMPLE_FEEDS: [SampleFeed; 4] = [
    SampleFeed {
        name: "world-wire",
        file: "world-wire.rss",
        kind: "RSS 2.0",
        content_type: "application/rss+xml; charset=utf-8",
        body: include_str!("../../config/demo/world-wire.rss"),
    },
    SampleFeed {
        name: "asia-desk",
        file: "asia-desk.atom",
        kind: "Atom",
        content_type: "application/atom+xml; charset=utf-8",
        body: include_str!("../../config/demo/asia-desk.atom"),
    },
    SampleFeed {
        name: "briefing",
        file: "briefing.json",
        kind: "JSON Feed",
        content_type: "application/feed+json; charset=utf-8",
        body: include_str!("../../config/demo/briefing.json"),
    },
    SampleFeed {
        name: "regional",
        file: "regional.rss",
        kind: "RSS 2.0",
        content_type: "application/rss+xml; charset=utf-8",
        body: include_str!("../../config/demo/regional.rss"),
    },
];

/// Items of the sample feeds that look relevant but must not alert, and why.
pub(super) const NEAR_MISSES: [(&str, &str); 7] = [
    (
        "Trade envoy from Iran tours Scotland's whisky distilleries",
        "Iran matches, but Scotland is not SCO (terms match whole words only), so the \
         query's (China OR SCO) half is missing",
    ),
    (
        "Iran edge China 2-1 in Asian Cup football qualifier",
        "Iran and China match, but `football` is in `exclude`, and any exclude hit vetoes",
    ),
    (
        "China's factory output grows faster than forecast in October",
        "China matches, but the query also needs Iran or JCPOA",
    ),
    (
        "Chinatown businesses in San Francisco mark the Lunar New Year early",
        "Chinatown is not China, and Iranian-American (in the summary) is not Iran: whole \
         words only",
    ),
    (
        "Indochina rail tourism booms as Iranian travellers discover Laos",
        "Indochina is not China; Iranian is not Iran (the prefix term `Iran*` would match it)",
    ),
    (
        "Iranian filmmakers win top prizes at Shanghai festival",
        "Iranian is not Iran, and Shanghai is not one of the terms",
    ),
    (
        "ایرانیان مقیم چین جشن نوروز گرفتند",
        "(\"Iranians living in China celebrated Nowruz\") چین, an alias of China, matches, \
         but ایرانیان (Iranians) is not the whole word ایران, an alias of Iran",
    ),
];

/// One story in two feeds under two titles, with the same link once tracking parameters
/// and fragment are removed: it must alert once.
pub(super) const SAME_STORY: [&str; 2] = [
    "Iran and China sign 25-year cooperation roadmap in Beijing",
    "Iran, China agree 25-year cooperation roadmap",
];

/// One story from three outlets, each under its own link, as wire copy is edited: the
/// wire's original, an `UPDATE 1-` with a sentence added, and a republished copy with an
/// outlet suffix and a word changed, all over the same lede. (feed, title): the three are
/// one story, which alerts once.
pub(super) const ONE_STORY: [(&str, &str); 3] = [
    (
        "world-wire",
        "Iran and China resume talks on Bandar Abbas rail link",
    ),
    (
        "asia-desk",
        "UPDATE 1-Iran and China resume talks on Bandar Abbas rail link",
    ),
    (
        "briefing",
        "Iran and China resume talks on Bandar Abbas rail link - World Wire",
    ),
];

/// The same names over the same lede, but the opposite event: the talks end. A story of
/// its own, with an alert of its own. (feed, title)
pub(super) const OPPOSITE: (&str, &str) = (
    "world-wire",
    "Iran and China end talks on Bandar Abbas rail link",
);

/// The configuration of the demo; `{feeds}`, `{sink}` and `{secret}` are filled in.
pub(super) const CONFIG: &str = r#"# Written by `wirewatch demo`: the configuration of this run. The feeds and the webhook
# are servers inside the demo process, on 127.0.0.1, gone when it exits.

[daemon]
state_dir = "."                  # this directory: the database is wirewatch.db here
listen = ""                      # no HTTP listener

[poll]
allow_private_networks = true    # the demo's servers are on 127.0.0.1
backfill = "all"                 # the sample items are days old; by default a feed's
                                 # first fetch alerts only items of the last 6h
timeout = "10s"

[[feeds]]
name = "world-wire"
url = "{feeds}/world-wire.rss"
tags = ["wire"]

[[feeds]]
name = "asia-desk"
url = "{feeds}/asia-desk.atom"
tags = ["asia"]

[[feeds]]
name = "briefing"
url = "{feeds}/briefing.json"

[[feeds]]
name = "regional"
url = "{feeds}/regional.rss"
tags = ["asia"]

[[watchlists]]
name = "iran-china"
terms = ["Iran", "China", "SCO", "JCPOA"]
aliases = { SCO = ["Shanghai Cooperation Organisation", "Shanghai Cooperation Organization"],
            JCPOA = ["Joint Comprehensive Plan of Action", "Iran nuclear deal"],
            Iran = ["ایران", "伊朗"], China = ["中国", "چین"] }
query = '(Iran OR JCPOA) AND (China OR SCO)'
exclude = ["football"]
webhooks = ["demo-receiver"]

[[webhooks]]
name = "demo-receiver"
url = "{sink}"
format = "json"
secret = "{secret}"
retry_schedule = ["1s"]
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::refresh::{self, Source};
    use crate::stories::{self, StoryText};

    fn config() -> Config {
        let text = CONFIG
            .replace("{feeds}", "http://127.0.0.1:1/feeds")
            .replace("{sink}", "http://127.0.0.1:2/hook")
            .replace("{secret}", &crate::demo::random_secret());
        Config::from_source(Path::new("/tmp/demo/wirewatch.toml"), &text).unwrap()
    }

    #[test]
    fn the_demo_configuration_is_valid() {
        let config = config();
        assert_eq!(config.feeds.len(), SAMPLE_FEEDS.len());
        for (feed, sample) in config.feeds.iter().zip(&SAMPLE_FEEDS) {
            assert_eq!(feed.name, sample.name);
            assert!(feed.url.as_str().ends_with(sample.file));
        }
    }

    #[tokio::test]
    async fn every_sample_feed_parses_and_the_near_misses_are_in_them() {
        let config = config();
        let mut titles = Vec::new();
        for sample in &SAMPLE_FEEDS {
            // As `wirewatch test-feed FILE` reads it: through the pipeline's preview.
            let source = Source::Bytes(sample.body.as_bytes().to_vec());
            let preview = refresh::preview_document(&config, source, &|_| true)
                .await
                .unwrap_or_else(|err| panic!("{}: {err}", sample.file));
            assert!(preview.items.len() >= 4, "{}", sample.file);
            titles.extend(preview.items.into_iter().map(|i| i.item.title));
        }
        let stories = ONE_STORY.iter().chain([&OPPOSITE]).map(|(_, t)| *t);
        for title in NEAR_MISSES
            .iter()
            .map(|(t, _)| *t)
            .chain(SAME_STORY)
            .chain(stories)
        {
            assert!(titles.iter().any(|t| t == title), "{title}");
        }
    }

    /// One sample item as the pipeline reads it.
    struct Sample {
        feed: &'static str,
        title: String,
        canonical: Option<String>,
        /// Words of its summary (the lede the story stage compares with the title).
        lede_words: usize,
        matched: bool,
        text: StoryText,
    }

    async fn sample_items() -> Vec<Sample> {
        let config = config();
        let mut items = Vec::new();
        for sample in &SAMPLE_FEEDS {
            let source = Source::Bytes(sample.body.as_bytes().to_vec());
            let preview = refresh::preview_document(&config, source, &|_| true)
                .await
                .unwrap();
            for preview in preview.items {
                items.push(Sample {
                    feed: sample.name,
                    text: StoryText::of(&preview.item.title, &preview.item.summary).unwrap(),
                    title: preview.item.title,
                    canonical: preview.canonical,
                    lede_words: preview.item.summary.split_whitespace().count(),
                    matched: !preview.matches.is_empty(),
                });
            }
        }
        items
    }

    #[tokio::test]
    async fn the_three_outlets_copies_are_one_story_and_its_opposite_is_not() {
        let items = sample_items().await;
        let item = |(feed, title): (&str, &str)| {
            items
                .iter()
                .find(|i| i.feed == feed && i.title == title)
                .unwrap_or_else(|| panic!("{feed}: no item {title}"))
        };
        let copies = ONE_STORY.map(item);
        let opposite = item(OPPOSITE);
        // Each under its own link, and each matched (only matched items join stories by
        // their text).
        let mut links: Vec<_> = copies
            .iter()
            .chain([&opposite])
            .map(|i| i.canonical.clone().unwrap())
            .collect();
        links.sort();
        links.dedup();
        assert_eq!(links.len(), 4, "{links:?}");
        assert!(copies.iter().chain([&opposite]).all(|i| i.matched));
        // Short titles alone do not merge: each is compared by its lede too.
        assert!(copies.iter().chain([&opposite]).all(|i| i.lede_words >= 35));

        for a in copies {
            for b in copies {
                let (a, b) = (&a.text.fingerprint, &b.text.fingerprint);
                assert!(stories::same_story(a, b), "{a:?}\n{b:?}");
            }
            // A hard negative: as near-identical as the copies, and still another event.
            let (a, b) = (&a.text.fingerprint, &opposite.text.fingerprint);
            assert!(a.resemblance(b) >= stories::THRESHOLD);
            assert_eq!(
                stories::conflict(a, b),
                Some(stories::Conflict::Opposed("resume", "end"))
            );
        }
    }
}
