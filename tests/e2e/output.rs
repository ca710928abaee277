//! Where the CLI's results go: a write that fails (a full disk) fails the command with
//! exit 1 and says so; a reader that goes away early (`| head`) ends it quietly, exit 0.

use std::process::Stdio;

use crate::helpers::{BIN, TestDir, stderr, stdout};

/// A config with one feed that is never fetched: `check` and `matches` need no network.
fn config(dir: &TestDir) {
    dir.standard_config(
        &[("wire", "http://127.0.0.1:1/rss".to_string())],
        "http://127.0.0.1:1/hook",
        "*/5 * * * *",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_results_write_that_fails_is_an_error_with_exit_1() {
    let dir = TestDir::new();
    config(&dir);
    for args in [
        &["check"][..],
        &["matches"],
        &["matches", "--json"],
        &["opml", "export"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();

        // `spawn`, not `output`: tokio's `output` would pipe stdout over the file.
        let out = tokio::process::Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(dir.config_path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::from(full))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
            .wait_with_output()
            .await
            .unwrap();

        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("error: writing to standard output: No space left on device"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_goes_away_ends_the_command_quietly() {
    let dir = TestDir::new();
    config(&dir);
    let mut child = tokio::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(dir.config_path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The read end closed before the summary is written: its write meets a broken pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().await.unwrap();

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("error"), "{}", stderr(&out));
}

async fn test_feed(dir: &TestDir, file: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(BIN)
        .arg("test-feed")
        .arg(file)
        .arg("--config")
        .arg(dir.config_path())
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn test_feed_says_what_the_caps_dropped_and_why_a_document_is_refused_once() {
    let dir = TestDir::new();
    config(&dir);

    let extra = 3;
    let mut rss = String::from("<rss version=\"2.0\"><channel><title>Wire</title>");
    for i in 0..wirewatch::parse::MAX_ITEMS + extra {
        rss.push_str(&format!(
            "<item><guid>g{i}</guid><title>t{i}</title></item>"
        ));
    }
    rss.push_str("</channel></rss>");
    let file = dir.path().join("long.xml");
    std::fs::write(&file, rss).unwrap();
    let out = test_feed(&dir, &file).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = format!(
        "past the parse caps, dropped: {extra} items (after the first {}), 0 repeated elements",
        wirewatch::parse::MAX_ITEMS
    );
    assert!(stdout(&out).contains(&expected), "{}", stdout(&out));

    let page = dir.path().join("page.html");
    std::fs::write(&page, "<!DOCTYPE html><html><body>a page</body></html>").unwrap();
    let out = test_feed(&dir, &page).await;
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(said.contains("is not a usable feed: not a feed"), "{said}");
    assert_eq!(
        said.matches("not a feed").count(),
        1,
        "the reason once: {said}"
    );
}
