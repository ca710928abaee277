//! Where the CLI's results go: a write that fails (a full disk) fails the command with
//! exit 1 and says so; a reader that goes away early (`| head`) ends it quietly, exit 0.

use std::process::Stdio;

use crate::helpers::{BIN, TestDir, stderr};

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
