//! Full text (SPEC §13) with the real binary: a `full_text` feed whose teaser misses a
//! term and whose article has it alerts, with an `article` highlight; an article that
//! cannot be fetched leaves its item matched on the feed's text; every item, matched or
//! not, gets the language of its text; a page is never fetched
//! twice for one story, nor for a feed that is not `full_text`; a page on a private
//! address is refused by the network guard; `extract --json` reads the shared article
//! pages.

use std::time::Duration;

use crate::helpers::{FeedServer, Item, Receiver, SECRET, TestDir, rss, stderr, stdout};

/// An article page whose fourth paragraph names the nuclear deal.
fn page(headline: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><title>{headline} | Example News</title>
<script>var tracking = "JCPOA-in-a-script-is-not-text";</script></head>
<body><nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>{headline}</h1>
<p>Diplomats from several countries met in Vienna on Monday for a new round of talks, officials said.</p>
<p>The meeting, held behind closed doors at a hotel in the city centre, lasted more than six hours.</p>
<p>Delegations are expected to report back to their capitals before the next round later this month.</p>
<p>Much of the discussion concerned the JCPOA, the 2015 agreement that limited Iran's nuclear programme in exchange for sanctions relief.</p>
<p>No date has been set for the next meeting, according to a statement released after the talks ended.</p>
</article><footer>Copyright Example News</footer></body></html>"#
    )
}

fn config(dir: &TestDir, feeds: &FeedServer, hook: &str) {
    dir.write_config(&format!(
        r#"[daemon]
state_dir = "state"
listen = ""

[poll]
schedule = "*/5 * * * *"
allow_private_networks = true
timeout = "5s"

[[feeds]]
name = "wire"
url = "{wire}"
full_text = true

[[feeds]]
name = "mirror"
url = "{mirror}"
full_text = true

[[feeds]]
name = "plain"
url = "{plain}"

[[watchlists]]
name = "deal"
terms = ["JCPOA"]
webhooks = ["desk"]

[[watchlists]]
name = "farsi"
terms = ["JCPOA"]
languages = ["fa"]
webhooks = ["desk"]

[[webhooks]]
name = "desk"
url = "{hook}"
secret = "{SECRET}"
"#,
        wire = feeds.url("wire"),
        mirror = feeds.url("mirror"),
        plain = feeds.url("plain"),
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_text_feed_alerts_on_what_only_its_article_says() {
    let (feeds, dir, desk) = (
        FeedServer::start().await,
        TestDir::new(),
        Receiver::start().await,
    );
    config(&dir, &feeds, &desk.url());
    let (talks, broken, other) = (feeds.url("talks"), feeds.url("gone"), feeds.url("other"));
    let (looping, pdf, persian) = (feeds.url("loop"), feeds.url("pdf"), feeds.url("fa"));
    // A page that redirects to itself, and a PDF: neither is read; both items are
    // matched on their own text.
    feeds.then(
        "loop",
        (0..10).map(|_| crate::helpers::Reply::status(302).header("location", looping.clone())),
    );
    feeds.set("pdf", "%PDF-1.7 JCPOA".into());
    feeds.set_header("pdf", "content-type", "application/pdf");
    feeds.set("talks", page("Vienna talks end without a date"));
    feeds.set_header("talks", "content-type", "text/html; charset=utf-8");
    feeds.set("other", page("Another page"));
    feeds.set_header("other", "content-type", "text/html; charset=utf-8");
    feeds.set(
        "wire",
        rss(&[
            Item {
                description: "Diplomats met in Vienna on Monday.",
                ..Item::new("t", "Vienna talks end without a date", &talks)
            },
            // Its page answers 404: matched on its own text, which names the deal.
            Item {
                description: "The JCPOA is back on the table, officials said.",
                ..Item::new("g", "Deal talks resume", &broken)
            },
            Item {
                description: "Sanctions relief under the JCPOA was discussed.",
                ..Item::new("l", "Envoys weigh sanctions relief", &looping)
            },
            Item {
                description: "The text of the JCPOA annex was published.",
                ..Item::new("d", "Annex published as a document", &pdf)
            },
            // Persian: the one item the `farsi` watch-list reads.
            Item {
                description: "مذاکرات درباره برجام (JCPOA) در وین ادامه دارد و هیئت‌ها به پایتخت‌های خود بازمی‌گردند.",
                ..Item::new("f", "گفت‌وگوهای وین درباره برجام ادامه دارد", &persian)
            },
        ]),
    );
    // An item that hits no watch-list still gets the language of its text (the feed
    // declares none).
    feeds.set(
        "plain",
        rss(&[Item {
            description: "Die Börsen in Frankfurt und Paris eröffneten am Montag mit deutlichen \
                          Gewinnen, nachdem die Zentralbank ihre Zinsen unverändert ließ.",
            ..Item::new("p", "Die Märkte öffnen mit Gewinnen", &other)
        }]),
    );
    feeds.set("mirror", rss(&[]));
    let polled = dir.wirewatch(&["poll"]).await;
    assert!(polled.status.success(), "{}", stderr(&polled));

    let received = desk.wait_for(6, Duration::from_secs(10)).await;
    let mut by_list: Vec<(String, String)> = received
        .iter()
        .map(|r| r.json())
        .map(|body| {
            (
                body["data"]["watchlist"].as_str().unwrap().to_owned(),
                body["data"]["item"]["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    by_list.sort();
    let farsi: Vec<&(String, String)> = by_list.iter().filter(|(w, _)| w == "farsi").collect();
    assert_eq!(
        farsi.len(),
        1,
        "only the Persian item for `farsi`: {by_list:?}"
    );
    assert_eq!(received.len(), 6, "{by_list:?}");
    let alert = |title: &str| {
        received
            .iter()
            .map(|r| r.json())
            .find(|body| body["data"]["item"]["title"] == title)
            .unwrap_or_else(|| panic!("no alert for {title}"))
    };
    let talks_alert = alert("Vienna talks end without a date");
    let highlight = &talks_alert["data"]["highlights"][0];
    assert_eq!(highlight["field"], "article", "{talks_alert}");
    assert!(
        highlight["snippet"]
            .as_str()
            .unwrap()
            .contains("the JCPOA, the 2015 agreement"),
        "{highlight}"
    );
    for title in [
        "Deal talks resume",
        "Envoys weigh sanctions relief",
        "Annex published as a document",
    ] {
        assert_eq!(
            alert(title)["data"]["highlights"][0]["field"],
            "summary",
            "{title}"
        );
    }
    assert_eq!(
        alert("گفت‌وگوهای وین درباره برجام ادامه دارد")["data"]["item"]["language"],
        "fa"
    );
    assert_eq!(
        feeds.hits("gone").len(),
        1,
        "the failed page was tried once"
    );
    assert!(
        feeds.hits("other").is_empty(),
        "a feed that is not full_text fetches no page"
    );
    let language: Option<String> = sqlx::query_scalar(
        "SELECT language FROM items WHERE title = 'Die Märkte öffnen mit Gewinnen'",
    )
    .fetch_one(&mut dir.database().await)
    .await
    .unwrap();
    assert_eq!(
        language.as_deref(),
        Some("de"),
        "every item's language is detected"
    );

    // Another outlet carries the same story under the same link: its page is not read again.
    feeds.set(
        "mirror",
        rss(&[Item::new("m", "Vienna talks end without a date", &talks)]),
    );
    assert!(dir.wirewatch(&["poll", "mirror"]).await.status.success());
    assert_eq!(feeds.hits("talks").len(), 1, "one fetch per story");
    assert_eq!(desk.received().len(), 6, "a sighting alerts nothing");

    // The stored article is what explain reads: the alert's highlight again.
    let explained = dir.wirewatch(&["explain", &talks, "--json"]).await;
    let explained: serde_json::Value = serde_json::from_str(&stdout(&explained)).unwrap();
    let verdict = &explained["items"][0]["watchlists"][0];
    assert_eq!(verdict["verdict"], "alerted");
    assert_eq!(verdict["now"], "match", "{explained}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_on_a_private_address_is_refused_by_the_guard() {
    let (feeds, dir) = (FeedServer::start().await, TestDir::new());
    feeds.set("page", page("Anything"));
    // The defaults: private networks refused.
    dir.write_config("[daemon]\nstate_dir = \"state\"\nlisten = \"\"\n");
    let out = dir.wirewatch(&["extract", &feeds.url("page")]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("refused") && stderr(&out).contains("loopback"),
        "{}",
        stderr(&out)
    );
    assert!(feeds.hits("page").is_empty(), "refused before connecting");
}

#[tokio::test(flavor = "multi_thread")]
async fn extract_json_reads_the_shared_article_pages() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/articles");
    let truth = shared.join("ground-truth.json");
    let Ok(truth) = std::fs::read_to_string(&truth) else {
        eprintln!("skipped: {} is missing", shared.display());
        return;
    };
    let truth: serde_json::Value = serde_json::from_str(&truth).unwrap();
    let dir = TestDir::new();
    dir.write_config("[daemon]\nstate_dir = \"state\"\nlisten = \"\"\n");
    let mut keys: Vec<&String> = truth.as_object().unwrap().keys().collect();
    keys.sort();
    for key in keys.into_iter().take(5) {
        let gz = shared.join("html").join(format!("{key}.html.gz"));
        let mut html = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap()),
            &mut html,
        )
        .unwrap();
        let file = dir.path().join(format!("{key}.html"));
        std::fs::write(&file, &html).unwrap();
        let out = dir
            .wirewatch(&["extract", file.to_str().unwrap(), "--json"])
            .await;
        assert!(out.status.success(), "{key}: {}", stderr(&out));
        let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let mut fields: Vec<&String> = value.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(fields, ["language", "text", "title"], "{key}");
        // The labelled body's opening words (as the benchmark counts words: runs of
        // letters and digits) are in the text.
        let words = |text: &str| -> String {
            text.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let body = words(truth[key]["articleBody"].as_str().unwrap());
        let opening: String = body.split(' ').take(8).collect::<Vec<_>>().join(" ");
        let text = words(value["text"].as_str().unwrap());
        assert!(
            text.contains(&opening),
            "{key}: the text lacks the body's opening {opening:?}"
        );
    }
}
