//! A throwaway PostgreSQL cluster for tests (SPEC §17): `initdb` into a temporary
//! directory, the server started on a free port of 127.0.0.1 (its socket in that directory
//! too), and stopped, with its files removed, when the value is dropped. Nothing is shared
//! with a PostgreSQL the machine may run.
//!
//! The binaries are Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`, the
//! newest there), or the directory `WIREWATCH_PG_BIN` names; `scripts/test` installs the
//! package when it is missing. PostgreSQL refuses to run as root, so as root (CI and the
//! developers' machines) every command runs as the `postgres` user, through `runuser`, in a
//! directory handed to that user.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `WIREWATCH_TEST_DATABASE=postgres` runs the tests that honour it (the store's unit
/// tests, the main e2e tests) on PostgreSQL instead of SQLite: `scripts/test` runs them
/// both ways.
pub fn requested() -> bool {
    std::env::var("WIREWATCH_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// A new, empty database on the test process's one shared cluster (started on first use,
/// and stopped by a watcher once the process has exited, however it exited): its URL.
pub fn fresh_database() -> String {
    static SHARED: OnceLock<Postgres> = OnceLock::new();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let cluster = SHARED.get_or_init(|| {
        let cluster = Postgres::start();
        cluster.stop_after_this_process();
        cluster
    });
    let name = format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    cluster.create_database(&name);
    cluster.url(&name)
}

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// `-c` settings of the server: tests trade durability for speed (`fsync=off`).
    settings: &'static str,
    /// `Some(user)` when the commands run as that user (the tests run as root).
    run_as: Option<&'static str>,
}

impl Postgres {
    /// A new cluster for tests, running, with `fsync` off: a commit is written to the
    /// server's WAL before it returns, so it survives the server's crash (the restart
    /// tests stop it abruptly), not the machine's. Panics, saying what to install, when
    /// PostgreSQL is missing.
    pub fn start() -> Postgres {
        Postgres::start_with("-c fsync=off")
    }

    /// A new cluster with PostgreSQL's own defaults (a commit is flushed to disk before it
    /// returns), for benchmarks.
    pub fn start_durable() -> Postgres {
        Postgres::start_with("")
    }

    fn start_with(settings: &'static str) -> Postgres {
        let bin = binaries().unwrap_or_else(|| {
            panic!(
                "these tests need PostgreSQL's initdb and pg_ctl: none in /usr/lib/postgresql/*/bin \
                 nor in $WIREWATCH_PG_BIN. scripts/test installs Debian's postgresql package \
                 (apt-get install -y postgresql)"
            )
        });
        let dir = tempfile::tempdir().expect("a temporary directory");
        let run_as = is_root().then_some("postgres");
        if let Some(user) = run_as {
            let (uid, gid) = (id(user, "-u"), id(user, "-g"));
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("the cluster's directory handed to the postgres user");
        }
        let port = free_port();
        let cluster = Postgres {
            dir,
            bin,
            port,
            settings,
            run_as,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
        );
        cluster.start_server();
        cluster
    }

    /// Creates an empty database.
    pub fn create_database(&self, name: &str) {
        let port = self.port.to_string();
        let socket = self.dir.path().to_string_lossy().into_owned();
        self.run(
            "createdb",
            &["-h", &socket, "-p", &port, "-U", "postgres", name],
        );
    }

    /// Stops the server (as an abrupt crash would: `immediate`), keeping its files.
    pub fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    /// Starts the server again on the same port, after [`Postgres::stop`].
    pub fn restart(&self) {
        self.start_server();
    }

    /// For a cluster that is never dropped (a `static`): a watcher, in a session of its
    /// own, stops the server and removes its files once this process has exited.
    pub fn stop_after_this_process(&self) {
        let pg_ctl = self.command_line("pg_ctl");
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {pg_ctl} -D '{data}' -m immediate -w stop; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data(),
            dir = self.dir.path().display(),
        );
        // `--fork`: setsid returns at once, leaving the watcher in its own session.
        let started = Command::new("setsid")
            .args(["--fork", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            started.is_ok_and(|status| status.success()),
            "setsid and sh, to stop the shared cluster after the tests"
        );
    }

    /// How a shell runs `program` of the cluster (as its user when the tests are root).
    fn command_line(&self, program: &str) -> String {
        let path = self.bin.join(program);
        match self.run_as {
            Some(user) => format!("runuser -u {user} -- '{}'", path.display()),
            None => format!("'{}'", path.display()),
        }
    }

    fn start_server(&self) {
        let data = self.data();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 {}",
            self.port,
            self.dir.path().display(),
            self.settings
        );
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-o",
                &options,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "start",
            ],
        );
    }

    /// The URL of `database` on this cluster, as the `postgres` superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    /// One of the cluster's binaries, as its user when the tests are root, in its
    /// directory.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        command.current_dir(self.dir.path());
        command
    }

    /// Runs one of the cluster's binaries; panics with its output when it fails.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// The directory of `initdb` and `pg_ctl`: `WIREWATCH_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` that has them.
fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WIREWATCH_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The uid (`-u`) or gid (`-g`) of `user`.
fn id(user: &str, which: &str) -> u32 {
    let output = Command::new("id")
        .args([which, user])
        .output()
        .expect("id runs");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no user {user}: the postgresql package creates it"))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
