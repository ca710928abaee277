//! The console (SPEC §16) in a real browser: the daemon polls local feeds (one of them
//! failing, one item with a hostile title) and alerts a webhook that keeps failing; headless
//! Chromium, driven through chromedriver, loads each page, and the test asserts on the
//! rendered DOM: the stories, the feeds with the failing one first, the deliveries, a
//! playground round trip whose results change as a term is typed, and that the hostile
//! title is text, not markup. Each page is saved as a screenshot under
//! `target/tmp/console/`. A second test checks the token: pages refuse requests without it,
//! and the login form's cookie opens them.
//!
//! Chromium and chromedriver are Debian's (`chromium`, `chromium-driver`), which
//! `scripts/test` installs; `WIREWATCH_CHROMIUM` and `WIREWATCH_CHROMEDRIVER` name other
//! binaries. Without them the browser test fails, saying so.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{
    FeedServer, Hook, Item, Receiver, Reply, TestDir, eventually, free_port, http_get, poll, rss,
    wait_for_rows,
};

/// How long the browser has to show what a step expects.
const WAIT: Duration = Duration::from_secs(10);

/// A title that would run script or break out of an attribute if it were markup.
const HOSTILE: &str =
    r#"Iran <script>window.pwned = 1</script>"><img src=x onerror="window.pwned = 2"> talks"#;

/// Where the screenshots go: `target/tmp/console/`.
fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An executable named by `variable`, else `name` on the `PATH`.
fn binary(variable: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// chromedriver on a free port, and a headless Chromium session through it.
struct Browser {
    client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let missing = |what: &str, variable: &str| {
            panic!(
                "the console test needs {what}: not found on the PATH nor in ${variable}. \
                 scripts/test installs Debian's chromium and chromium-driver \
                 (apt-get install -y chromium chromium-driver)"
            )
        };
        let chromium = binary("WIREWATCH_CHROMIUM", "chromium")
            .unwrap_or_else(|| missing("headless Chromium", "WIREWATCH_CHROMIUM"));
        let chromedriver = binary("WIREWATCH_CHROMEDRIVER", "chromedriver")
            .unwrap_or_else(|| missing("chromedriver", "WIREWATCH_CHROMEDRIVER"));
        let port = free_port();
        let driver = tokio::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let status = format!("http://127.0.0.1:{port}/status");
        eventually("chromedriver to listen", Duration::from_secs(30), || {
            http_get(&status)
        })
        .await;
        let profile = tempfile::tempdir().unwrap();
        // Flags as this machine needs them: root needs --no-sandbox, and the closed network
        // refuses the background connections Chromium otherwise makes.
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session: {e}"));
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let path = screenshots().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        eprintln!("console: screenshot {}", path.display());
    }

    /// The rendered text of every element matching `css`, whitespace runs (a table row's
    /// tabs, line breaks) as single spaces. Read in one script run, so that the playground
    /// re-rendering its results between two reads cannot leave a stale element.
    async fn texts(&self, css: &str) -> Vec<String> {
        let texts = self
            .client
            .execute(
                "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText);",
                vec![json!(css)],
            )
            .await
            .unwrap();
        let texts: Vec<String> = serde_json::from_value(texts).unwrap();
        texts
            .iter()
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// Waits (10 s at most, through the suite's [`poll`]) until the texts of `css` satisfy
    /// `done`; returns them.
    async fn wait_texts(&self, css: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let found = poll(WAIT, || async {
            let texts = self.texts(css).await;
            done(&texts).then_some(texts)
        })
        .await;
        match found {
            Some(texts) => texts,
            None => panic!("{css}: still {:?} after {WAIT:?}", self.texts(css).await),
        }
    }

    /// The `value` of the element with `id` (a form field).
    async fn value(&self, id: &str) -> String {
        let element = self.client.find(Locator::Id(id)).await.unwrap();
        element.prop("value").await.unwrap().unwrap_or_default()
    }

    /// Waits (10 s at most, through [`poll`]) until the `value` of the element with `id`
    /// satisfies `done`.
    async fn wait_value(&self, id: &str, done: impl Fn(&str) -> bool) -> String {
        let found = poll(WAIT, || async {
            let value = self.value(id).await;
            done(&value).then_some(value)
        })
        .await;
        match found {
            Some(value) => value,
            None => panic!("#{id}: still {:?} after {WAIT:?}", self.value(id).await),
        }
    }

    async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_stories_feeds_deliveries_and_runs_the_playground_in_chromium() {
    let (feeds, dir, desk) = (
        FeedServer::start().await,
        TestDir::new(),
        Receiver::start().await,
    );
    // The feed's title is HTML text, its markup escaped: the stored title is HOSTILE itself.
    let escaped = HOSTILE.replace('<', "&lt;").replace('>', "&gt;");
    let (pact, summit, football) = (
        feeds.url("pact"),
        feeds.url("summit"),
        feeds.url("football"),
    );
    feeds.set(
        "wire",
        rss(&[
            Item {
                description: "Iran and China signed a 25-year cooperation pact on Saturday.",
                ..Item::new("p", "Iran and China sign a pact", &pact)
            },
            Item {
                description: "A hostile title, to be shown as text.",
                ..Item::new("h", &escaped, "javascript:alert(3)")
            },
            Item::new("s", "Beijing hosts a summit on trade", &summit),
            Item::new("f", "Football results of the weekend", &football),
        ]),
    );
    feeds.then("broken", (0..100).map(|_| Reply::status(500)));
    // Every delivery fails and waits an hour for its next attempt.
    desk.always(Reply::status(500));
    dir.config_with(
        &[("wire", feeds.url("wire")), ("broken", feeds.url("broken"))],
        &[Hook::new("desk", &desk.url()).retry(&["1h", "1h"])],
        "*/5 * * * *",
    );
    let (daemon, base) = dir.spawn_listening_daemon().await;
    let failed_deliveries = wait_for_rows(
        &dir,
        "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts > 0",
        Duration::from_secs(30),
        |n| n >= 2,
    )
    .await;
    assert_eq!(failed_deliveries, 2, "both alerts failed once");
    wait_for_rows(
        &dir,
        "SELECT COUNT(*) FROM feeds WHERE name = 'broken' AND failure_count > 0",
        Duration::from_secs(30),
        |n| n == 1,
    )
    .await;

    let browser = Browser::start().await;
    let page = |path: &str| format!("{base}{path}");

    // Watch-lists: the configured one's stories, the hostile title as text.
    browser.client.goto(&page("/")).await.unwrap();
    let titles = browser.texts("table.stories td.title").await;
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(
        titles.contains(&"Iran and China sign a pact".to_string()),
        "{titles:?}"
    );
    assert!(
        titles.contains(&HOSTILE.to_string()),
        "the title is text: {titles:?}"
    );
    let injected = browser
        .client
        .execute(
            "return [typeof window.pwned, document.querySelectorAll('main img, main script').length,
                     Array.from(document.querySelectorAll('main a')).filter(a => a.protocol === 'javascript:').length]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        injected,
        json!(["undefined", 0, 0]),
        "no markup from the feed ran"
    );
    let terms = browser.texts("table.stories td.terms").await;
    assert!(terms.iter().all(|t| t.contains("Iran")), "{terms:?}");
    let snippets = browser.texts("table.stories td.snippet").await;
    assert!(
        snippets
            .iter()
            .any(|s| s.contains("title") && s.contains("Iran and China")),
        "{snippets:?}"
    );
    // Each sighting links to its item.
    let sightings = browser
        .client
        .execute(
            "return Array.from(document.querySelectorAll('td.feeds .sighting a'), a => a.href);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        sightings,
        json!([pact]),
        "the pact's sighting; the hostile link is text"
    );
    let heading = browser.texts("h2#stories-heading").await;
    assert_eq!(heading, ["Stories of iran-china"]);
    browser.screenshot("watchlists").await;

    // Feeds: the failing one first.
    browser.client.goto(&page("/feeds")).await.unwrap();
    let rows = browser.texts("table.feeds tbody tr").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].starts_with("broken") && rows[0].contains("failing"),
        "{rows:?}"
    );
    assert!(rows[0].contains("http_status"), "{rows:?}");
    assert!(
        rows[1].starts_with("wire") && rows[1].contains("ok"),
        "{rows:?}"
    );
    browser.screenshot("feeds").await;

    // Deliveries: the webhook's two failed alerts.
    browser.client.goto(&page("/deliveries")).await.unwrap();
    let webhooks = browser.texts("table.webhooks tbody tr").await;
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    let cells: Vec<&str> = webhooks[0].split_whitespace().collect();
    assert_eq!(
        cells,
        ["desk", "0", "2", "0", "0"],
        "pending, failed, dead, delivered"
    );
    let failed = browser
        .texts("section[aria-labelledby=failed-heading] tbody tr")
        .await;
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed.iter().all(|r| r.contains("status 500")),
        "{failed:?}"
    );
    browser.screenshot("deliveries").await;

    // Playground: typing a term runs a backtest; another term changes the results.
    browser.client.goto(&page("/playground")).await.unwrap();
    // Every field has a label a screen reader reads out, and the page one main heading.
    let unlabelled = browser
        .client
        .execute(
            "return Array.from(document.querySelectorAll('input, select, textarea'))
                 .filter(f => f.labels.length === 0 && !f.getAttribute('aria-label'))
                 .map(f => f.id || f.name);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unlabelled, json!([]), "fields without a label");
    assert_eq!(browser.texts("h1").await, ["Watch-list playground"]);
    let terms = browser.client.find(Locator::Id("terms")).await.unwrap();
    terms.send_keys("Beijing").await.unwrap();
    browser
        .wait_texts("#would-alert .title", |t| {
            t == ["Beijing hosts a summit on trade"]
        })
        .await;
    let status = browser.texts("#status").await;
    assert!(
        status[0].starts_with("As of "),
        "results are dated: {status:?}"
    );
    let counts = browser.texts("#term-counts tr").await;
    assert_eq!(counts, ["Beijing 1"]);
    terms.clear().await.unwrap();
    terms.send_keys("Football").await.unwrap();
    browser
        .wait_texts("#would-alert .title", |t| {
            t == ["Football results of the weekend"]
        })
        .await;
    let toml = browser
        .wait_value("toml", |t| t.contains("terms = [\"Football\"]"))
        .await;
    assert!(
        toml.contains("# webhooks = [\"NAME\"]"),
        "a new watch-list names none: {toml}"
    );
    // Starting from the configured watch-list fills the form; its diff is then empty.
    browser
        .client
        .find(Locator::Css("#compare option[value=iran-china]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_texts("#would-alert .title", |t| t.len() == 2)
        .await;
    let added = browser.wait_texts("#added h3", |t| !t.is_empty()).await;
    assert_eq!(added, ["Added against iran-china (0)"]);
    browser.screenshot("playground").await;
    // Renamed, it still compares with the watch-list it started from, and its TOML is a
    // watch-list the configuration accepts.
    let name = browser.client.find(Locator::Id("name")).await.unwrap();
    name.clear().await.unwrap();
    name.send_keys("iran-china-copy").await.unwrap();
    let toml = browser
        .wait_value("toml", |t| t.contains("name = \"iran-china-copy\""))
        .await;
    assert!(toml.contains("webhooks = [\"desk\"]"), "{toml}");
    assert!(
        toml.contains("\"SCO\" = [\"Shanghai Cooperation Organisation\"]"),
        "{toml}"
    );
    browser
        .wait_texts("#removed h3", |t| t == ["Removed against iran-china (0)"])
        .await;
    let config = std::fs::read_to_string(dir.config_path()).unwrap();
    let copy = dir.path().join("with-copy.toml");
    std::fs::write(&copy, format!("{config}\n{toml}")).unwrap();
    let checked = tokio::process::Command::new(env!("CARGO_BIN_EXE_wirewatch"))
        .args(["check", "--config"])
        .arg(&copy)
        .output()
        .await
        .unwrap();
    assert!(
        checked.status.success(),
        "the playground's TOML: {toml}\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );

    // One layout for a phone too.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.client.goto(&page("/")).await.unwrap();
    browser.screenshot("watchlists-phone").await;

    browser.close().await;
    daemon.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_token_the_pages_refuse_requests_without_it_and_the_login_cookie_opens_them() {
    let (feeds, dir, desk) = (
        FeedServer::start().await,
        TestDir::new(),
        Receiver::start().await,
    );
    feeds.set("wire", rss(&[]));
    dir.config_with(
        &[("wire", feeds.url("wire"))],
        &[Hook::new("desk", &desk.url())],
        "*/5 * * * *",
    );
    const TOKEN: &str = "console-token-0123456789";
    std::fs::write(dir.path().join("api-token"), format!("{TOKEN}\n")).unwrap();
    dir.edit_config(|t| {
        t.replacen(
            "[daemon]\n",
            "[daemon]\napi_token_file = \"api-token\"\n",
            1,
        )
    });
    let (daemon, base) = dir.spawn_listening_daemon().await;
    wirewatch::http::init_tls();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = async |path: &str, headers: &[(&str, &str)]| {
        let mut request = client.get(format!("{base}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    };
    const HTML: (&str, &str) = ("accept", "text/html,application/xhtml+xml");

    for path in [
        "/",
        "/feeds",
        "/deliveries",
        "/playground",
        "/assets/console.js",
    ] {
        let (status, _) = get(path, &[]).await;
        assert_eq!(status, 401, "{path} without the token");
        let (status, body) = get(path, &[HTML]).await;
        assert_eq!(status, 401, "{path} from a browser");
        assert!(
            body.contains("<form action=\"/login\""),
            "the login form: {body}"
        );
        let bearer = format!("Bearer {TOKEN}");
        let (status, _) = get(path, &[("authorization", &bearer)]).await;
        assert_eq!(status, 200, "{path} with the token");
    }
    assert_eq!(
        get("/assets/console.css", &[]).await.0,
        200,
        "the login page's style"
    );

    let login = async |token: &str| {
        client
            .post(format!("{base}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
            .await
            .unwrap()
    };
    let refused = login("not-the-token").await;
    assert_eq!(refused.status().as_u16(), 401);
    assert!(refused.headers().get("set-cookie").is_none());
    let signed_in = login(TOKEN).await;
    assert_eq!(signed_in.status().as_u16(), 303);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(TOKEN),
        "the cookie holds no token: {cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    let (status, body) = get("/", &[("cookie", session)]).await;
    assert_eq!(status, 200);
    assert!(body.contains("Stories of iran-china"), "{body}");
    assert!(
        body.contains(r#"href="/logout""#),
        "a way to sign out: {body}"
    );
    let (status, _) = get("/", &[("cookie", "wirewatch_session=forged")]).await;
    assert_eq!(status, 401);

    // A backtest by the cookie must come from the console's own pages.
    let backtest = async |headers: &[(&str, &str)]| {
        let mut request = client
            .post(format!("{base}/api/v1/backtest"))
            .header("cookie", session)
            .header("content-type", "application/json")
            .body(r#"{"watchlist": {"name": "w", "terms": ["Iran"]}, "since": "1d"}"#);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap().status().as_u16()
    };
    assert_eq!(backtest(&[("sec-fetch-site", "same-origin")]).await, 200);
    let origin = base.clone();
    assert_eq!(backtest(&[("origin", &origin)]).await, 200);
    assert_eq!(backtest(&[("sec-fetch-site", "same-site")]).await, 403);
    assert_eq!(backtest(&[("origin", "http://127.0.0.1:1")]).await, 403);
    assert_eq!(backtest(&[]).await, 403);

    // Signing out clears the cookie.
    let out = client.get(format!("{base}/logout")).send().await.unwrap();
    assert_eq!(out.status().as_u16(), 303);
    let cleared = out
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .unwrap();
    assert!(cleared.starts_with("wirewatch_session=;") && cleared.contains("Max-Age=0"));
    daemon.kill().await;
}
