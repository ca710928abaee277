//! `[[opml]]`: feeds imported from an OPML subscription list are checked, listed and
//! polled like `[[feeds]]`; a broken OPML file is refused with its name and line.

use crate::helpers::{FeedServer, Item, Receiver, SECRET, TestDir, rss, stderr, stdout};

/// A config importing `feeds.opml` (tagged `imported`) next to one hand-written feed, with
/// a watch-list over the imported feeds only.
fn config(hook: &str) -> String {
    format!(
        r#"[daemon]
state_dir = "state"
listen = ""

[poll]
allow_private_networks = true
timeout = "5s"

[[feeds]]
name = "hand-written"
url = "http://127.0.0.1:1/feeds/hand-written"

[[opml]]
path = "feeds.opml"
tags = ["imported"]

[[watchlists]]
name = "iran-china"
terms = ["Iran", "China"]
feeds = ["tag:imported"]
webhooks = ["siem"]

[[webhooks]]
name = "siem"
url = "{hook}"
secret = "{SECRET}"
retry_schedule = ["1s"]
"#
    )
}

fn opml(outlines: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<opml version=\"2.0\">\n<head><title>Export</title></head>\n<body>\n{outlines}</body>\n</opml>\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn check_lists_the_imported_feeds_with_the_others() {
    let dir = TestDir::new();
    dir.write_config(&config("http://127.0.0.1:1/hook"));
    std::fs::write(
        dir.path().join("feeds.opml"),
        opml(
            r#"<outline text="Middle East">
  <outline text="Tehran Wire" xmlUrl="http://127.0.0.1:1/feeds/tehran"/>
  <outline text="Gulf Desk: English" xmlUrl="http://127.0.0.1:1/feeds/gulf"/>
</outline>
"#,
        ),
    )
    .unwrap();

    let out = dir.wirewatch(&["check"]).await;

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("feeds: 3"), "{text}");
    assert!(text.contains("  hand-written ("), "{text}");
    assert!(
        text.contains("  tehran-wire (") && text.contains("/feeds/tehran"),
        "{text}"
    );
    assert!(text.contains("  gulf-desk-english ("), "{text}");
    assert!(text.contains("iran-china on 2 feeds -> [siem]"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_opml_file_is_refused_with_exit_2_naming_the_file_and_line() {
    let dir = TestDir::new();
    dir.write_config(&config("http://127.0.0.1:1/hook"));
    let path = dir.path().join("feeds.opml");
    std::fs::write(
        &path,
        opml("<outline text=\"Tehran Wire\" xmlUrl=\"http://127.0.0.1:1/feeds/tehran\">\n"),
    )
    .unwrap();

    let out = dir.wirewatch(&["check"]).await;

    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = stderr(&out);
    assert!(
        text.contains(&format!("wirewatch.toml:14:8: opml {}:6:", path.display())),
        "{text}"
    );
    assert!(text.contains("not well-formed XML"), "{text}");

    // A bad URL in a well-formed file names the outline.
    std::fs::write(
        &path,
        opml("<outline text=\"Tehran Wire\" xmlUrl=\"ftp://127.0.0.1/feeds/tehran\"/>\n"),
    )
    .unwrap();
    let out = dir.wirewatch(&["check"]).await;
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.contains(&format!(
            "{}:5:1: outline `Tehran Wire`: feed url must be an http or https URL",
            path.display()
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_fetches_an_imported_feed_and_alerts_under_its_imported_name() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set(
        "tehran",
        rss(&[Item::new(
            "t-1",
            "Iran and China open a new rail corridor",
            "https://tehran.example.org/rail",
        )]),
    );
    dir.write_config(&config(&hook.url()));
    std::fs::write(
        dir.path().join("feeds.opml"),
        opml(&format!(
            "<outline text=\"Tehran Wire\" xmlUrl=\"{}\"/>\n",
            feeds.url("tehran")
        )),
    )
    .unwrap();

    let out = dir.wirewatch(&["poll", "tehran-wire"]).await;

    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(feeds.hits("tehran").len(), 1);
    let received = hook.received();
    assert_eq!(received.len(), 1, "{}", stdout(&out));
    let body = received[0].json();
    assert_eq!(body["data"]["feed"]["name"], "tehran-wire");
    assert_eq!(
        body["data"]["item"]["title"],
        "Iran and China open a new rail corridor"
    );
}

/// The `feeds:` section of `check`'s summary: one line per feed with schedule, URL and
/// tags (sorted: their order is not part of a feed's identity).
fn feed_lines(check: &str) -> Vec<String> {
    let mut lines: Vec<String> = check
        .lines()
        .skip_while(|l| !l.starts_with("feeds:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|line| match line.split_once(" [") {
            Some((feed, tags)) => {
                let mut tags: Vec<&str> = tags.trim_end_matches(']').split(", ").collect();
                tags.sort_unstable();
                format!("{feed} [{}]", tags.join(", "))
            }
            None => line.to_string(),
        })
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn opml_export_round_trips_an_import_with_its_tags() {
    let dir = TestDir::new();
    std::fs::write(
        dir.path().join("feeds.opml"),
        r#"<?xml version="1.0"?>
<opml version="2.0"><body>
  <outline text="Middle East">
    <outline text="Tehran Times" xmlUrl="https://www.tehrantimes.com/rss"/>
    <outline text="Wire: World" xmlUrl="https://wire.example.org/world.xml"/>
  </outline>
  <outline text="Asia &amp; Pacific">
    <outline text="Wire: World" xmlUrl="https://wire.example.org/world.xml"/>
  </outline>
  <outline text="Loose" xmlUrl="https://loose.example.net/feed"/>
</body></opml>"#,
    )
    .unwrap();
    dir.write_config("[[opml]]\npath = \"feeds.opml\"\ntags = [\"imported\"]\n");
    let before = dir.wirewatch(&["check"]).await;
    assert!(before.status.success(), "{}", stderr(&before));
    let before = feed_lines(&stdout(&before));
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(
        before.contains(&"  wire-world (*/5 * * * *) https://wire.example.org/world.xml [asia-pacific, imported, middle-east]".to_string()),
        "a URL in two folders has both folders' tags: {before:?}"
    );

    // Export, import the export instead of the original, and compare.
    let exported = dir.wirewatch(&["opml", "export"]).await;
    assert!(exported.status.success(), "{}", stderr(&exported));
    std::fs::write(dir.path().join("exported.opml"), &exported.stdout).unwrap();
    dir.write_config("[[opml]]\npath = \"exported.opml\"\n");
    let after = dir.wirewatch(&["check"]).await;
    assert!(after.status.success(), "{}", stderr(&after));
    assert_eq!(feed_lines(&stdout(&after)), before);
}
