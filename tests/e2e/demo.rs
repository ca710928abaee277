//! `wirewatch demo`: offline, exit 0, the expected alerts and only those, nothing sent on
//! the second cycle, and nothing left behind outside its directory.

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

const EXPECTED_ALERTS: [&str; 9] = [
    "Iran's oil exports to China climb to a six-month high",
    "First freight train on the Iran-China rail corridor reaches Tehran",
    "Shanghai Cooperation Organisation ministers discuss Iran sanctions relief",
    "Iran becomes a full SCO member at Astana summit",
    "Beijing backs revival of the JCPOA as Tehran's envoy visits",
    "China urges talks on restoring the Joint Comprehensive Plan of Action",
    "SCO summit: China and Iran call for a regional payment system",
    "ایران و چین توافق همکاری راهبردی را تمدید کردند",
    "伊朗外长访问中国 讨论上合组织合作",
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
        alerts.contains("alerts received by the webhook: 10 (10 with a valid signature)"),
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
    for title in NEAR_MISSES {
        assert!(!alerts.contains(title), "{title} must not alert:\n{alerts}");
        assert!(
            section(&text, "not alerted", "cycle 2").contains(title),
            "{text}"
        );
    }
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
    assert_eq!(stdout(&matches).matches("  iran-china  [").count(), 10);

    let again = demo(tmp.path(), &["--dir", dir_arg]).await;
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("is not empty"),
        "{}",
        stderr(&again)
    );
}
