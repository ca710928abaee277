//! The database under stress: a file system that fills up while the daemon runs, a
//! result the database refuses during `poll`, and the permissions of the files that hold
//! feed URLs with their credentials.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::{
    FeedServer, Item, Receiver, TestDir, http_get, readyz_until, rss, stderr, stdout,
};

/// A tmpfs of `size` mounted on `dir` for the test's life: a file system that really fills
/// up. Mounting needs root, which CI and developers have.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status();
        match status {
            Ok(status) if status.success() => Tmpfs(dir.to_path_buf()),
            other => panic!(
                "this test mounts a tmpfs to fill a real file system and needs root \
                 (CAP_SYS_ADMIN): `mount -t tmpfs` gave {other:?}"
            ),
        }
    }

    /// Fills the file system to the last byte with one file; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in [1 << 16, 1 << 12, 1 << 9, 1] {
            let bytes = vec![0u8; chunk];
            while file.write_all(&bytes).is_ok() {}
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn story(n: u32) -> Item<'static> {
    let guid: &'static str = format!("story-{n}").leak();
    let title: &'static str = format!("Iran and China talks, day {n}").leak();
    let link: &'static str = format!("https://news.example.org/talks/{n}").leak();
    Item::new(guid, title, link)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_makes_the_daemon_unready_loses_nothing_and_it_resumes_by_itself() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    let disk = Tmpfs::mount(&dir.path().join("state"), "8m");
    feeds.set("wire", rss(&[story(1)]));
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "every 1s");
    let port = dir.listen_on_free_port();
    let base = format!("http://127.0.0.1:{port}");
    let daemon = dir.spawn_daemon();
    assert_eq!(hook.wait_for(1, Duration::from_secs(20)).await.len(), 1);

    // The disk fills up, then a new story arrives: it cannot be stored.
    let filler = disk.fill();
    feeds.set("wire", rss(&[story(1), story(2)]));
    let (status, body) = readyz_until(&base, |s| s == 503).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("full"), "{body}");
    // Steadily not ready while the disk stays full, and alive all along.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let (status, body) = http_get(&format!("{base}/readyz")).await.unwrap();
        assert_eq!(status, 503, "ready while the disk is full: {body}");
        assert_eq!(http_get(&format!("{base}/healthz")).await.unwrap().0, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        hook.received().len(),
        1,
        "nothing could be stored, so nothing sent"
    );

    // Space comes back: the story is stored and delivered without a restart.
    std::fs::remove_file(filler).unwrap();
    let freed = Instant::now();
    let received = hook.wait_for(2, Duration::from_secs(30)).await;
    eprintln!("delivered {:?} after space came back", freed.elapsed());
    assert_eq!(received.len(), 2, "the story stored after space came back");
    let (status, body) = readyz_until(&base, |s| s == 200).await;
    assert_eq!(status, 200, "{body}");

    // Each story once, under one webhook-id each.
    let titles: Vec<String> = received
        .iter()
        .map(|r| {
            r.json()["data"]["item"]["title"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        titles,
        ["Iran and China talks, day 1", "Iran and China talks, day 2"]
    );
    assert_ne!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    assert_eq!(
        daemon.terminate().await,
        Some(0),
        "the same process throughout"
    );
    assert_eq!(hook.received().len(), 2, "nothing sent twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_delivers_what_it_stored_and_exits_1_when_a_feeds_results_could_not_be_stored() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("good", rss(&[story(1)]));
    feeds.set(
        "refused",
        rss(&[Item::new(
            "x",
            "China refuses the poison pill",
            "https://news.example.org/poison",
        )]),
    );
    dir.standard_config(
        &[
            ("good", feeds.url("good")),
            ("refused", feeds.url("refused")),
        ],
        &hook.url(),
        "*/5 * * * *",
    );
    // The database refuses one feed's item, as a constraint or a failing disk sector would.
    let created = dir.wirewatch(&["feeds"]).await;
    assert!(created.status.success(), "{}", stderr(&created));
    let mut db = dir.database().await;
    sqlx::query(
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON items WHEN NEW.title LIKE '%poison%'
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(&mut db)
    .await
    .unwrap();

    let out = dir.wirewatch(&["poll"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let line = stdout(&out)
        .lines()
        .find(|line| line.starts_with("refused: "))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        line.contains("refused by the test") && line.ends_with("(not stored)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("the results of 1 feed(s) could not be stored"),
        "{}",
        stderr(&out)
    );
    let received = hook.received();
    assert_eq!(received.len(), 1, "the stored feed's alert went out first");
    assert_eq!(
        received[0].json()["data"]["item"]["title"],
        "Iran and China talks, day 1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_and_its_log_files_are_readable_by_their_owner_only_whatever_the_umask() {
    let (feeds, hook, dir) = (
        FeedServer::start().await,
        Receiver::start().await,
        TestDir::new(),
    );
    feeds.set("wire", rss(&[story(1)]));
    dir.standard_config(&[("wire", feeds.url("wire"))], &hook.url(), "every 1s");
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg("umask 000; exec \"$0\" run --config \"$1\"")
        .arg(crate::helpers::BIN)
        .arg(dir.config_path());
    let daemon = dir.spawn_command(command);
    assert_eq!(hook.wait_for(1, Duration::from_secs(20)).await.len(), 1);

    let state = dir.path().join("state");
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700, "a new state directory");
    for file in ["wirewatch.db", "wirewatch.db-wal", "wirewatch.db-shm"] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
    assert_eq!(daemon.terminate().await, Some(0));

    // A database left readable by others (an older version, a copy) is tightened.
    let db = state.join("wirewatch.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = dir.wirewatch(&["feeds"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&db), 0o600);
}

/// Processes opening a new database at once (the daemon and `wirewatch poll`, say) take
/// turns: none fails with "database is locked" while another switches the new file to WAL,
/// nor on a column another's migration just added.
#[tokio::test(flavor = "multi_thread")]
async fn processes_opening_a_new_database_at_once_migrate_it_once() {
    for round in 0..10 {
        let dir = crate::helpers::TestDir::new();
        dir.standard_config(&[], "http://127.0.0.1:9/hook", "*/5 * * * *");
        let dir = &dir;
        let (a, b, c, d) = tokio::join!(
            dir.wirewatch(&["feeds", "--json"]),
            dir.wirewatch(&["feeds", "--json"]),
            dir.wirewatch(&["feeds", "--json"]),
            dir.wirewatch(&["feeds", "--json"]),
        );
        for out in [a, b, c, d] {
            assert!(
                out.status.success(),
                "round {round}: {}",
                crate::helpers::stderr(&out)
            );
        }
    }
}
