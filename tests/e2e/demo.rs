//! `wirewatch demo`: offline, exit 0, the expected alerts and only those (a story from
//! three outlets once, with where else it was seen; its opposite on its own), nothing sent
//! on the second cycle, and nothing left behind outside its directory.

use std::path::Path;
use std::process::Output;

use crate::helpers::{BIN, stderr, stdout};

/// Runs `wirewatch demo` with `TMPDIR` pointing at `tmp`.
async fn demo(tmp: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .arg("demo")
        .args(args)
        .env("TMPDIR", tmp)
        .env_remove("RUST_LOG")
        .env_remove("WIREWATCH_CONFIG")
        .output()
        .await
        .unwrap()
}

/// The part of the output between two headings.
fn section<'a>(text: &'a str, from: &str, to: &str) -> &'a str {
    let start = text
        .find(from)
        .unwrap_or_else(|| panic!("no `{from}` in:\n{text}"));
    let rest = &text[start..];
    &rest[..rest.find(to).unwrap_or(rest.len())]
}

const EXPECTED_ALERTS: [&str; 10] = [
    "Iran's oil exports to China climb to a six-month high",
    "Iran and China end talks on Bandar Abbas rail link",
    "First freight train on the Iran-China rail corridor reaches Tehran",
    "Shanghai Cooperation Organisation ministers discuss Iran sanctions relief",
    "Iran becomes a full SCO member at Astana summit",
    "Beijing backs revival of the JCPOA as Tehran's envoy visits",
    "China urges talks on restoring the Joint Comprehensive Plan of Action",
    "SCO summit: China and Iran call for a regional payment system",
    "ایران و چین توافق همکاری راهبردی را تمدید کردند",
    "伊朗外长访问中国 讨论上合组织合作",
];

/// One story from three outlets under three links: (feed, title).
const ONE_STORY: [(&str, &str); 3] = [
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

const NEAR_MISSES: [&str; 7] = [
    "Trade envoy from Iran tours Scotland's whisky distilleries",
    "Iran edge China 2-1 in Asian Cup football qualifier",
    "China's factory output grows faster than forecast in October",
    "Chinatown businesses in San Francisco mark the Lunar New Year early",
    "Indochina rail tourism booms as Iranian travellers discover Laos",
    "Iranian filmmakers win top prizes at Shanghai festival",
    "ایرانیان مقیم چین جشن نوروز گرفتند",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_alerts_the_expected_headlines_once_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();

    let out = demo(tmp.path(), &[]).await;

    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    let alerts = section(&text, "alerts received by the webhook", "not alerted");
    assert!(
        alerts.contains("alerts received by the webhook: 12 (12 with a valid signature)"),
        "{alerts}"
    );
    for title in EXPECTED_ALERTS {
        assert_eq!(
            alerts.matches(&format!(": {title}\n")).count(),
            1,
            "{title} alerts once:\n{alerts}"
        );
    }
    // The one story carried by two feeds alerts once, under either title.
    let roadmap = alerts.matches("25-year cooperation roadmap").count();
    assert_eq!(roadmap, 2, "one alert line and its highlight:\n{alerts}");
    // The story from three outlets alerts once, under any of its titles.
    let copies: usize = ONE_STORY
        .iter()
        .map(|(_, title)| alerts.matches(&format!(": {title}\n")).count())
        .sum();
    assert_eq!(copies, 1, "one alert for three outlets:\n{alerts}");
    for title in NEAR_MISSES {
        assert!(!alerts.contains(title), "{title} must not alert:\n{alerts}");
        assert!(
            section(&text, "not alerted", "cycle 2").contains(title),
            "{text}"
        );
    }
    // Where else it was seen, read from the database: the two copies that did not alert.
    let stories = section(&text, "stories:", "cycle 2");
    assert!(
        stories.contains("  one story, 3 outlets, 1 alert: "),
        "{stories}"
    );
    assert_eq!(stories.matches("also seen in ").count(), 2, "{stories}");
    for (feed, title) in ONE_STORY {
        let alerted = stories.contains(&format!("1 alert: {title}\n"))
            && stories.contains(&format!("alerted from {feed}\n"));
        let seen = stories.contains(&format!("also seen in {feed}: \"{title}\"\n"));
        assert!(alerted != seen, "{feed}: {title}:\n{stories}");
    }
    assert!(
        stories.contains(
            "  a story of its own, 1 alert: Iran and China end talks on Bandar Abbas rail link\n"
        ),
        "{stories}"
    );
    let second = section(&text, "cycle 2", "summary");
    assert_eq!(second.matches("not modified (304").count(), 4, "{second}");
    assert!(second.contains("deliveries: 0 sent"), "{second}");
    assert!(!text.contains("UNEXPECTED"), "{text}");
    assert!(!text.contains("whsec_"), "the secret is not printed");
    // Its temporary directory is gone: nothing was left behind.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_dir_the_demo_keeps_its_files_there_and_refuses_a_used_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let dir_arg = dir.to_str().unwrap();

    let out = demo(tmp.path(), &["--dir", dir_arg]).await;

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(dir.join("wirewatch.toml").is_file());
    assert!(dir.join("wirewatch.db").is_file());
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["demo".to_string()], "nothing else in TMPDIR");

    // The kept files work with the other commands.
    let matches = tokio::process::Command::new(BIN)
        .args(["matches", "--config"])
        .arg(dir.join("wirewatch.toml"))
        .output()
        .await
        .unwrap();
    assert!(matches.status.success(), "{}", stderr(&matches));
    assert_eq!(stdout(&matches).matches("  iran-china  [").count(), 12);

    let again = demo(tmp.path(), &["--dir", dir_arg]).await;
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("is not empty"),
        "{}",
        stderr(&again)
    );
}
