//! Backtests (SPEC §12) with the real binary: `wirewatch poll` stores two feeds' items,
//! then `wirewatch backtest` runs the configured watch-list and a candidate from a file
//! over them, and a running daemon answers `POST /api/v1/backtest` with the same document.

use serde_json::{Value, json};

use crate::helpers::{FeedServer, Item, TestDir, rss, stderr, stdout};

/// The configured watch-list: Iran or China, on both feeds, and no webhooks (a backtest
/// sends nothing anyway). The schedule is yearly, so a daemon started later does not poll.
fn config(feeds: &FeedServer) -> String {
    format!(
        r#"[daemon]
state_dir = "state"
listen = ""

[poll]
schedule = "0 0 1 1 *"
allow_private_networks = true
timeout = "5s"

[[feeds]]
name = "wire"
url = "{}"
tags = ["wires"]

[[feeds]]
name = "mirror"
url = "{}"
tags = ["wires"]

[[watchlists]]
name = "iran-china"
terms = ["Iran", "China"]
feeds = ["tag:wires"]
"#,
        feeds.url("wire"),
        feeds.url("mirror")
    )
}

/// The candidate: Iran or the SCO, football excluded.
const CANDIDATE: &str = r#"
[[watchlists]]
name = "iran-china"
terms = ["Iran", "SCO"]
aliases = { SCO = ["Shanghai Cooperation Organisation"] }
exclude = ["football"]
feeds = ["tag:wires"]
webhooks = ["a-webhook-the-configuration-does-not-have"]
"#;

/// `wire` carries a pact (also in `mirror`, under the same link with tracking
/// parameters: one story), a port, a summit and a football match; `wire` is polled first.
async fn stored(dir: &TestDir, feeds: &FeedServer) {
    feeds.set(
        "wire",
        rss(&[
            Item::new(
                "w-1",
                "Iran and China sign a 25-year pact",
                "https://news.example.org/world/pact",
            ),
            Item::new(
                "w-2",
                "China opens a deep-water port",
                "https://news.example.org/world/port",
            ),
            Item::new(
                "w-3",
                "Shanghai Cooperation Organisation summit opens",
                "https://news.example.org/world/summit",
            ),
            Item::new(
                "w-4",
                "Iran beat China at football",
                "https://news.example.org/sport/derby",
            ),
        ]),
    );
    feeds.set(
        "mirror",
        rss(&[
            Item::new(
                "m-1",
                "Iran, China sign long-term pact",
                "https://news.example.org/world/pact?utm_source=rss",
            ),
            Item::new(
                "m-2",
                "Weather: sunny in Astana",
                "https://mirror.example.net/weather",
            ),
        ]),
    );
    dir.write_config(&config(feeds));
    for feed in ["wire", "mirror"] {
        let out = dir.wirewatch(&["poll", feed]).await;
        assert!(out.status.success(), "poll {feed}: {}", stderr(&out));
    }
}

async fn json_of(dir: &TestDir, args: &[&str]) -> Value {
    let out = dir.wirewatch(args).await;
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|err| panic!("{args:?}: {err}"))
}

/// `backtest --json` of `iran-china` against the candidate in the file `with`, over 7 days.
async fn candidate_report(dir: &TestDir, with: &std::path::Path) -> Value {
    let with = with.to_str().unwrap();
    let args = [
        "backtest",
        "--watchlist",
        "iran-china",
        "--with",
        with,
        "--since",
        "7d",
        "--json",
    ];
    json_of(dir, &args).await
}

/// `(title, terms)` of each entry of a list of alerts.
fn alerts(list: &Value) -> Vec<(String, Vec<String>)> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|alert| {
            let terms = alert["terms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            (alert["title"].as_str().unwrap().to_string(), terms)
        })
        .collect()
}

fn entry(title: &str, terms: &[&str]) -> (String, Vec<String>) {
    (
        title.to_string(),
        terms.iter().map(|t| t.to_string()).collect(),
    )
}

fn is_utc_time(value: &Value) -> bool {
    value
        .as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .is_some_and(|_| value.as_str().is_some_and(|t| t.ends_with('Z')))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_configured_watchlist_alerts_each_stored_story_once_and_differs_from_nothing() {
    let (feeds, dir) = (FeedServer::start().await, TestDir::new());
    stored(&dir, &feeds).await;

    let report = json_of(&dir, &["backtest", "--watchlist", "iran-china", "--json"]).await;

    let mut keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "diff",
            "excluded",
            "items_scanned",
            "since",
            "terms",
            "watchlist",
            "would_alert"
        ]
    );
    assert_eq!(report["watchlist"], "iran-china");
    assert!(is_utc_time(&report["since"]), "{report:#}");
    assert_eq!(report["items_scanned"], 6);
    assert_eq!(
        alerts(&report["would_alert"]),
        [
            entry("Iran and China sign a 25-year pact", &["China", "Iran"]),
            entry("China opens a deep-water port", &["China"]),
            entry("Iran beat China at football", &["China", "Iran"]),
        ],
        "the pact once, on the wire's item: {report:#}"
    );
    let pact = &report["would_alert"][0];
    assert_eq!(pact["url"], "https://news.example.org/world/pact");
    let mut entry_keys: Vec<&str> = pact
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    entry_keys.sort_unstable();
    assert_eq!(entry_keys, ["story", "terms", "title", "url"]);
    assert_eq!(report["diff"], json!({"added": [], "removed": []}));
    assert_eq!(report["terms"], json!({"China": 4, "Iran": 3}));
    assert_eq!(report["excluded"], json!({}));

    // The story is the one `wirewatch stories` lists, written the same way.
    let stories = json_of(&dir, &["stories", "--json"]).await;
    let listed = stories["stories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|story| story["title"] == "Iran and China sign a 25-year pact")
        .unwrap_or_else(|| panic!("{stories:#}"));
    assert_eq!(pact["story"], listed["id"]);
    assert!(pact["story"].is_string());

    let text = stdout(
        &dir.wirewatch(&["backtest", "--watchlist", "iran-china"])
            .await,
    );
    assert!(
        text.starts_with("iran-china: 3 stories would alert, from 6 items first seen since "),
        "{text}"
    );
    assert!(
        text.contains("as configured it alerts on 3 stories: 0 added, 0 removed"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_candidate_from_a_file_shows_the_stories_it_adds_and_removes() {
    let (feeds, dir) = (FeedServer::start().await, TestDir::new());
    stored(&dir, &feeds).await;
    // A whole candidate copy of the configuration, and a file of just the watch-list.
    let copy = dir.path().join("candidate.toml");
    let whole = config(&feeds).replace(
        "[[watchlists]]\nname = \"iran-china\"\nterms = [\"Iran\", \"China\"]\nfeeds = [\"tag:wires\"]\n",
        CANDIDATE,
    );
    assert!(
        whole.contains("exclude"),
        "the candidate replaced the watch-list"
    );
    std::fs::write(&copy, whole).unwrap();
    let alone = dir.path().join("just-the-watchlist.toml");
    std::fs::write(&alone, CANDIDATE).unwrap();

    let report = candidate_report(&dir, &copy).await;

    assert_eq!(
        alerts(&report["would_alert"]),
        [
            entry("Iran and China sign a 25-year pact", &["Iran"]),
            entry("Shanghai Cooperation Organisation summit opens", &["SCO"]),
        ],
        "{report:#}"
    );
    assert_eq!(
        alerts(&report["diff"]["added"]),
        [entry(
            "Shanghai Cooperation Organisation summit opens",
            &["SCO"]
        )]
    );
    assert_eq!(
        alerts(&report["diff"]["removed"]),
        [
            entry("China opens a deep-water port", &["China"]),
            entry("Iran beat China at football", &["China", "Iran"]),
        ]
    );
    assert_eq!(report["terms"], json!({"Iran": 2, "SCO": 1}));
    assert_eq!(report["excluded"], json!({"football": 1}));
    assert_eq!(report["items_scanned"], 6);

    let same = candidate_report(&dir, &alone).await;
    assert_eq!(same["diff"], report["diff"]);
    assert_eq!(same["would_alert"], report["would_alert"]);

    let text = stdout(
        &dir.wirewatch(&[
            "backtest",
            "--watchlist",
            "iran-china",
            "--with",
            alone.to_str().unwrap(),
        ])
        .await,
    );
    assert!(text.contains("1 added, 2 removed"), "{text}");
    assert!(
        text.contains("[SCO]  Shanghai Cooperation Organisation summit opens  https://news.example.org/world/summit\n"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|line| line.starts_with("+ ") && line.contains("summit")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|line| line.starts_with("- ") && line.contains("port")),
        "{text}"
    );
    assert!(text.contains("  football  1\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_watchlist_or_an_invalid_candidate_is_a_usage_error() {
    let (feeds, dir) = (FeedServer::start().await, TestDir::new());
    stored(&dir, &feeds).await;
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        "[[watchlists]]\nname = \"iran-china\"\nterms = [\"Iran\"]\nfeeds = [\"nowhere\"]\nqury = \"Iran\"\n",
    )
    .unwrap();
    let broken = broken.to_str().unwrap();

    let out = dir.wirewatch(&["backtest", "--watchlist", "nothing"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no watch-list is named `nothing`"),
        "{}",
        stderr(&out)
    );

    let out = dir
        .wirewatch(&["backtest", "--watchlist", "iran-china", "--with", broken])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{broken}:5:1: unknown field `qury`")),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());

    std::fs::write(
        dir.path().join("broken.toml"),
        "[[watchlists]]\nname = \"iran-china\"\nterms = [\"Iran\"]\nfeeds = [\"nowhere\"]\n",
    )
    .unwrap();
    let out = dir
        .wirewatch(&["backtest", "--watchlist", "iran-china", "--with", broken])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{broken}:4:10: watch-list `iran-china`: no feed is named `nowhere`"
        )),
        "{}",
        stderr(&out)
    );

    let out = dir
        .wirewatch(&["backtest", "--watchlist", "other", "--with", broken])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no watch-list is named `other` (it has iran-china)"),
        "{}",
        stderr(&out)
    );
}

/// POSTs `body` to the daemon's backtest endpoint; the status and the JSON answer.
async fn post(url: &str, body: &Value) -> (u16, Value) {
    wirewatch::http::init_tls();
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{err}: {text}"));
    (status, value)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_answers_a_backtest_as_the_command_does() {
    let (feeds, dir) = (FeedServer::start().await, TestDir::new());
    stored(&dir, &feeds).await;
    let copy = dir.path().join("candidate.toml");
    std::fs::write(&copy, CANDIDATE).unwrap();
    let command = candidate_report(&dir, &copy).await;
    let (daemon, base) = dir.spawn_listening_daemon().await;
    let url = format!("{base}/api/v1/backtest");

    let (status, answer) = post(
        &url,
        &json!({
            "watchlist": {
                "name": "iran-china",
                "terms": ["Iran", "SCO"],
                "aliases": {"SCO": ["Shanghai Cooperation Organisation"]},
                "exclude": ["football"],
            },
            "since": "7d",
        }),
    )
    .await;

    assert_eq!(status, 200, "{answer:#}");
    for key in [
        "watchlist",
        "items_scanned",
        "would_alert",
        "diff",
        "terms",
        "excluded",
    ] {
        assert_eq!(answer[key], command[key], "{key}: {answer:#}");
    }
    assert!(is_utc_time(&answer["since"]));

    let (status, answer) = post(
        &url,
        &json!({"watchlist": {"name": "iran-china", "terms": ["Iran"], "query": "Iran AND ("}}),
    )
    .await;
    assert_eq!(status, 400, "{answer:#}");
    assert!(
        answer["error"].as_str().unwrap().contains("query"),
        "{answer:#}"
    );
    assert_eq!(
        answer["problems"].as_array().map(Vec::len),
        Some(1),
        "{answer:#}"
    );

    let (status, answer) = post(&url, &json!({"watchlist": {"name": "x"}})).await;
    assert_eq!(status, 400, "{answer:#}");
    assert!(
        answer["error"].as_str().unwrap().contains("terms"),
        "{answer:#}"
    );

    // A name not configured: every feed, and everything it alerts on is added.
    let (status, answer) = post(
        &url,
        &json!({"watchlist": {"name": "china", "terms": ["China"]}, "since": "1h"}),
    )
    .await;
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(answer["diff"]["added"], answer["would_alert"]);
    assert_eq!(answer["would_alert"].as_array().map(Vec::len), Some(3));
    assert_eq!(daemon.terminate().await, Some(0));
}
