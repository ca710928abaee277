//! `wirewatch demo`: the whole pipeline on one machine, offline, in one command.
//!
//! Input: nothing but the binary. The sample feeds in `config/demo/` (fictional items,
//! written for the demo) are compiled in. Output: a walk-through on stdout, and exit 0 when
//! everything behaved as documented (1 if not, so the demo doubles as a smoke test).
//!
//! It starts two servers inside the process on 127.0.0.1 (port 0): one serves the sample
//! feeds with ETags and answers a conditional GET with 304 (`feed_server`), the other is
//! a webhook receiver that checks each alert's Standard Webhooks signature as a receiver
//! would, on its own rather than with the crate's signing code (`receiver`). It writes a configuration pointing at both
//! (`samples`) into a fresh temporary directory (or `--dir`), and then runs the real
//! pipeline on it (`walk`), exactly as `wirewatch poll` does ([`daemon::open`],
//! [`scheduler::poll_once`], [`Notifier::drain_outbox`]): one cycle that alerts, then a
//! second one that must send nothing. Nothing is written outside that directory; the
//! temporary one is removed at the end.
//!
//! [`daemon::open`]: crate::daemon::open
//! [`scheduler::poll_once`]: crate::scheduler::poll_once
//! [`Notifier::drain_outbox`]: crate::notify::Notifier::drain_outbox

mod feed_server;
mod receiver;
mod samples;
mod walk;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use clap::Args;
use rand::Rng as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::CliError;
use crate::config::Secret;
use crate::telemetry;

use feed_server::FeedServer;
use receiver::Receiver;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's config and database in this new or empty directory, instead of a
    /// temporary one that is removed at the end.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs the demo.
pub async fn run(args: &DemoArgs) -> Result<(), CliError> {
    // The pipeline's own log lines only when asked for: the walk-through is the output.
    if std::env::var_os("RUST_LOG").is_some() {
        telemetry::init(crate::config::LogFormat::Text);
    }
    let dir = WorkDir::prepare(args.dir.as_deref())?;
    let result = tokio::select! {
        result = walk_through(dir.path(), dir.is_temporary()) => result,
        _ = tokio::signal::ctrl_c() => Err(CliError::Runtime(anyhow::anyhow!("interrupted"))),
    };
    dir.finish();
    result
}

async fn walk_through(dir: &Path, temporary: bool) -> Result<(), CliError> {
    let stop = CancellationToken::new();
    let feeds = FeedServer::start(&stop).await?;
    let secret_text = random_secret();
    let secret = Secret::parse(&secret_text).map_err(anyhow::Error::msg)?;
    let receiver = Receiver::start(secret, &stop).await?;
    let result = walk::cycles(dir, temporary, &feeds, &receiver, &secret_text).await;
    stop.cancel();
    for server in [feeds.task, receiver.task] {
        // Keep-alive connections from the pipeline's clients may linger; do not wait on them.
        if tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .is_err()
        {
            tracing::debug!("a demo server did not stop in time");
        }
    }
    result
}

/// A fresh Standard Webhooks secret for this run: never a fixed one that could end up in
/// a real configuration.
fn random_secret() -> String {
    use base64::Engine as _;
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Serves `app` on 127.0.0.1 (a free port) until `stop`.
async fn serve(
    app: Router,
    stop: &CancellationToken,
) -> anyhow::Result<(std::net::SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let stop = stop.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::warn!(error = %err, "demo server stopped");
        }
    });
    Ok((addr, task))
}

// ---------------------------------------------------------------------------------------
// The working directory
// ---------------------------------------------------------------------------------------

/// Where the demo writes its config and database: a new temporary directory (owner only)
/// removed at the end, or the user's `--dir`, which must be new or empty and is kept.
enum WorkDir {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl WorkDir {
    fn prepare(dir: Option<&Path>) -> Result<WorkDir, CliError> {
        use std::os::unix::fs::PermissionsExt as _;
        if let Some(dir) = dir {
            let empty = match std::fs::read_dir(dir) {
                Ok(mut entries) => entries.next().is_none(),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    true
                }
                Err(err) => {
                    return Err(CliError::Usage(format!(
                        "--dir {}: cannot read it: {err}",
                        dir.display()
                    )));
                }
            };
            if !empty {
                // A database from an earlier run would make every item old news.
                return Err(CliError::Usage(format!(
                    "--dir {} is not empty: give a new or empty directory",
                    dir.display()
                )));
            }
            return Ok(WorkDir::Kept(dir.to_path_buf()));
        }
        let temp = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("wirewatch-demo-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&temp)
            .with_context(|| format!("cannot create a directory in {}", temp.display()))?;
        Ok(WorkDir::Temporary(dir))
    }

    fn path(&self) -> &Path {
        match self {
            WorkDir::Temporary(dir) => dir.path(),
            WorkDir::Kept(path) => path,
        }
    }

    fn is_temporary(&self) -> bool {
        matches!(self, WorkDir::Temporary(_))
    }

    fn finish(self) {
        if let WorkDir::Temporary(dir) = self {
            let path = dir.path().to_path_buf();
            if let Err(err) = dir.close() {
                eprintln!("warning: cannot remove {}: {err}", path.display());
            }
        }
    }
}
