//! The SQLite store: opening it (WAL, busy timeout, embedded migrations, owner-only
//! files) and every SQL statement wirewatch runs.
//!
//! Input: the pipeline's facts (feed poll state, new items, matches, outbox rows).
//! Output: the rows that decide what is new. The unique constraints of `migrations/` do
//! the de-duplication; writers insert with `ON CONFLICT DO NOTHING` and read the rows
//! affected. Every write runs in [`Store::transaction`], which starts with `BEGIN
//! IMMEDIATE` (a deferred read-then-write transaction can fail with SQLITE_BUSY in WAL mode
//! when another writer got there first, instead of waiting for the busy timeout).
//!
//! Faults heal by themselves: a connection on which a transaction failed is closed, never
//! handed out again (after SQLITE_FULL, for one, SQLite may have rolled the transaction
//! back already, and a pooled connection that believes it is still inside one refuses
//! every later `BEGIN`); a read that failed on an I/O, memory or corruption error closes
//! its connection too. [`Health`] follows whether writes succeed, for readiness and for
//! the tasks that wait while they do not. The API and the CLI's listings read through
//! read-only connections of their own, so a slow reader never holds a connection the
//! pipeline needs.

pub mod health;
pub mod retention;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite};

pub use health::{Failing, Health};

/// How long a statement waits for another writer before failing with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a probe made while writes fail waits for another process's write lock.
const PROBE_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections of the pipeline (its reads and every write).
const PIPELINE_CONNECTIONS: u32 = 4;

/// Read-only connections for the API, `/metrics` and the CLI's listings.
const READER_CONNECTIONS: u32 = 2;

/// Errors of the store, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot make the database file {path} readable by its owner only: {source}")]
    Permissions {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot migrate the database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database row has invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the database writer has stopped")]
    WriterStopped,
    /// One failure shared by every result of a batch.
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

impl StoreError {
    /// Whether the data written could have caused this (a constraint, a value SQLite or
    /// serde refuses), rather than the database itself failing (busy, locked, I/O, full,
    /// read-only, corrupt, closed, or anything else), which fails every write alike.
    pub fn is_about_the_data(&self) -> bool {
        match self {
            StoreError::Json(_) => true,
            StoreError::Sql(sqlx::Error::Database(db)) => {
                // SQLITE_TOOBIG, CONSTRAINT (a trigger's RAISE included), MISMATCH, RANGE:
                // this row. Every other code is the database's.
                matches!(primary_code(db.as_ref()), Some(18 | 19 | 20 | 25))
            }
            StoreError::Sql(
                sqlx::Error::Encode(_) | sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. },
            ) => true,
            StoreError::Shared(err) => err.is_about_the_data(),
            _ => false,
        }
    }
}

impl StoreError {
    /// Whether the disk was full (SQLITE_FULL).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sql(sqlx::Error::Database(db)) => {
                primary_code(db.as_ref()) == Some(SQLITE_FULL)
            }
            StoreError::Shared(err) => err.is_disk_full(),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// The pipeline's connections: refresh reads and every write.
    pool: SqlitePool,
    /// Read-only connections for the API, `/metrics` and the CLI's listings.
    readers: SqlitePool,
    /// Write transactions of this process queue here rather than in SQLite's busy
    /// handler, which sleeps in growing steps and would leave the database idle while
    /// dozens of refreshes wait for the one write lock.
    writer: Arc<tokio::sync::Mutex<()>>,
    health: Arc<Health>,
    path: Arc<PathBuf>,
}

/// SQLite's primary result code of a database error (its extended code's low byte).
fn primary_code(db: &dyn sqlx::error::DatabaseError) -> Option<i32> {
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .map(|code| code & 0xff)
}

/// SQLITE_FULL: the disk (or the database's size limit) is full.
const SQLITE_FULL: i32 = 13;

/// Whether a failed statement may have left its connection unfit for reuse: an I/O
/// error, no memory, no space, a corrupt or vanished file, or a connection that broke.
fn poisons(err: &sqlx::Error) -> bool {
    match err {
        // SQLITE_NOMEM, IOERR, CORRUPT, FULL, CANTOPEN, NOTADB.
        sqlx::Error::Database(db) => {
            matches!(primary_code(db.as_ref()), Some(7 | 10 | 11 | 13 | 14 | 26))
        }
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// Creates the database file readable by its owner only, whatever the umask, and takes
/// group and other permissions off an existing database, WAL and shared-memory file
/// (SQLite creates the latter two with the database file's mode). They hold feed URLs
/// with their credentials and webhook bodies.
fn owner_only(path: &Path) -> Result<()> {
    let failed = |source| StoreError::Permissions {
        path: path.to_path_buf(),
        source,
    };
    // Only a missing file is created here (SQLite takes an empty file for a new
    // database); an existing one is not even opened, so a reader without write access to
    // it (an operator's `wirewatch matches`) still gets as far as SQLite.
    match std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(failed(source)),
    }
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for file in files {
        let metadata = match std::fs::metadata(&file) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(failed(source)),
        };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700)) {
                Ok(()) => {
                    tracing::info!(file = %file.display(), "database file made readable by its owner only")
                }
                // Someone else's file (the daemon's, opened by an operator): theirs to fix.
                Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                    tracing::warn!(file = %file.display(), mode = format!("{mode:04o}"), "the database file is readable by others and not ours to change")
                }
                Err(source) => {
                    return Err(StoreError::Permissions {
                        path: file.clone(),
                        source,
                    });
                }
            }
        }
    }
    Ok(())
}

/// The poll state of one feed, as the scheduler and fetcher need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedState {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub next_due_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub failure_count: i64,
    /// Why the feed is no longer polled (a 410), if it is not.
    pub disabled_reason: Option<String>,
    /// Where a permanent redirect moved the feed.
    pub moved_to: Option<String>,
}

/// A failed refresh, as recorded on the feed's row.
#[derive(Debug, Clone)]
pub struct FeedFailure {
    pub error: String,
    pub class: &'static str,
    pub at: i64,
    pub next_due_at: i64,
    pub disable: bool,
}

/// A feed's health, as `wirewatch feeds` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedStatus {
    pub name: String,
    pub url: String,
    pub title: Option<String>,
    pub last_fetch_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub next_due_at: Option<i64>,
    pub failure_count: i64,
    pub last_error: Option<String>,
    pub last_error_class: Option<String>,
    pub last_error_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    pub moved_to: Option<String>,
    /// Items stored from this feed.
    pub items: i64,
}

/// What a fetch learned about a feed, written with the feed's items.
#[derive(Debug, Clone, Default)]
pub struct FeedUpdate {
    pub title: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub next_due_at: i64,
    pub fetched_at: i64,
    /// The item keys of the document just read, as [`retention::document_keys`]: items
    /// among them are never pruned. `None` leaves the stored list as it is.
    pub document_keys: Option<Vec<u8>>,
}

/// An item's fields as stored (see [`ItemRow`]).
#[derive(Debug, Clone)]
pub struct NewItem<'a> {
    pub item_key: &'a str,
    pub title: &'a str,
    pub url: Option<&'a str>,
    pub published_at: Option<i64>,
    pub summary: &'a str,
    pub authors: &'a [String],
    pub categories: &'a [String],
    pub language: Option<&'a str>,
}

/// A match to store (see [`StoreTx::insert_matches`]).
#[derive(Debug, Clone)]
pub struct NewMatch<'a> {
    pub id: &'a str,
    pub story_id: i64,
    pub watchlist: &'a str,
    pub item_id: i64,
    pub terms_json: String,
    pub highlights_json: String,
    pub created_at: i64,
}

/// An outbox row claimed for delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub webhook: String,
    pub body: String,
    pub attempts: i64,
}

/// One outbox row, as `wirewatch deliveries` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub watchlist: String,
    pub title: String,
}

/// A webhook disabled by a 410.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DisabledWebhook {
    pub name: String,
    pub disabled_at: i64,
    pub reason: String,
}

/// One stored match, as `wirewatch matches` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatchRow {
    pub alert_id: String,
    pub watchlist: String,
    pub terms: Vec<String>,
    pub created_at: i64,
    pub feed: String,
    pub title: String,
    pub url: Option<String>,
    pub published_at: Option<i64>,
}

/// Filters of `wirewatch matches`.
#[derive(Debug, Clone, Default)]
pub struct MatchQuery {
    pub watchlist: Option<String>,
    pub since: Option<i64>,
    pub search: Option<String>,
    pub limit: i64,
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // A new state directory is the owner's alone; an existing one is left as is.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| StoreError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        owner_only(path)?;
        let opening = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let base = SqliteConnectOptions::from_str("sqlite:")
            .map_err(opening)?
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL is durable across process crashes (what the outbox promises);
            // only an OS crash can lose the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            // Lets retention give freed pages back to the file system. Takes effect on a
            // new database only (an older one would need a VACUUM); either way SQLite
            // reuses freed pages before it grows the file.
            .auto_vacuum(SqliteAutoVacuum::Incremental);
        let pool = SqlitePoolOptions::new()
            .max_connections(PIPELINE_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(opening)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READER_CONNECTIONS)
            .connect_with(base.read_only(true))
            .await
            .map_err(opening)?;
        Ok(Store {
            pool,
            readers,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            health: Arc::new(Health::default()),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// Whether the database takes writes, as the last write found.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Runs `work` in one write transaction, after this process's other writers: `BEGIN
    /// IMMEDIATE`, `work`, `COMMIT`. On any failure the transaction is rolled back and its
    /// connection closed rather than reused. The outcome updates [`Store::health`]: a
    /// commit means the database takes writes (after a full disk, once there is room too,
    /// see [`Store::room_to_write`]); a failure of the database itself (not of the data
    /// written) means it does not.
    pub async fn transaction<T>(
        &self,
        work: impl AsyncFnOnce(&mut StoreTx) -> Result<T>,
    ) -> Result<T> {
        self.transaction_waiting(BUSY_TIMEOUT, work).await
    }

    /// [`Store::transaction`], waiting at most `busy` for another process's write lock.
    async fn transaction_waiting<T>(
        &self,
        busy: Duration,
        work: impl AsyncFnOnce(&mut StoreTx) -> Result<T>,
    ) -> Result<T> {
        let outcome: Result<T> = async {
            let mut tx = self.begin(busy).await?;
            let value = work(&mut tx).await?;
            tx.commit().await?;
            Ok(value)
        }
        .await;
        match &outcome {
            // After a full disk, a write small enough for the space left proves little:
            // writes count as working again once there is room as well.
            Ok(_)
                if self.health.failing().is_some_and(|f| f.disk_full) && !self.room_to_write() => {}
            Ok(_) => self.health.wrote(),
            Err(err) if !err.is_about_the_data() => self
                .health
                .failed(&crate::telemetry::error_chain(err), err.is_disk_full()),
            Err(_) => {}
        }
        outcome
    }

    async fn begin(&self, busy: Duration) -> Result<StoreTx> {
        let writer = self.writer.clone().lock_owned().await;
        let conn = self.pool.acquire().await?;
        let mut tx = StoreTx {
            conn,
            open: true,
            busy_changed: busy != BUSY_TIMEOUT,
            _writer: writer,
        };
        if tx.busy_changed {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA busy_timeout = {}",
                busy.as_millis()
            )))
            .execute(&mut *tx.conn)
            .await?;
        }
        // Issued as a plain statement: sqlx's own transaction bookkeeping is what a failed
        // rollback used to leave wrong. Should it fail, the drop closes the connection.
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *tx.conn)
            .await?;
        Ok(tx)
    }

    /// Runs a read on one of `pool`'s connections, closing it afterwards if the read
    /// failed in a way that may have left it unfit (see [`poisons`]).
    async fn read<T>(
        pool: &SqlitePool,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> sqlx::Result<T>,
    ) -> Result<T> {
        let mut conn = pool.acquire().await?;
        let result = work(&mut conn).await;
        if let Err(err) = &result
            && poisons(err)
        {
            conn.close_on_drop();
        }
        Ok(result?)
    }

    /// A read of the pipeline (refreshes, the scheduler, the outbox workers).
    async fn pipeline_read<T>(
        &self,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> sqlx::Result<T>,
    ) -> Result<T> {
        Store::read(&self.pool, work).await
    }

    /// A read for someone looking (the API, `/metrics`, the CLI), on a read-only
    /// connection: in WAL mode it never waits for the writer, and the writer never waits
    /// for it.
    async fn look<T>(
        &self,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> sqlx::Result<T>,
    ) -> Result<T> {
        Store::read(&self.readers, work).await
    }

    /// A write as small as a write can be, to learn whether the database takes writes
    /// (while it fails, and now and then while nothing else writes). Updates
    /// [`Store::health`] like every write.
    pub async fn probe(&self, now: i64) -> Result<()> {
        // While writes fail, a probe stuck behind another process's lock must not hold up
        // the next one; otherwise it waits like any write (an operator's command may hold
        // the lock a few seconds without anything being wrong).
        let busy = if self.health.writable() {
            BUSY_TIMEOUT
        } else {
            PROBE_BUSY_TIMEOUT
        };
        self.transaction_waiting(busy, async |tx| {
            sqlx::query("INSERT OR REPLACE INTO health_probe (id, at) VALUES (1, ?1)")
                .bind(now)
                .execute(&mut *tx.conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// Whether the database's file system has room for writes again after a full disk:
    /// free space of at least a tenth of the file system, or 64 MiB on a larger one. A
    /// disk left with a few free blocks takes small writes and refuses large ones, and
    /// would otherwise be judged healed by the first small probe that fits. `true` when
    /// the free space cannot be read.
    pub fn room_to_write(&self) -> bool {
        const ENOUGH: u64 = 64 << 20;
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty());
        match rustix::fs::statvfs(dir.unwrap_or(Path::new("."))) {
            Ok(fs) => {
                let free = fs.f_bavail.saturating_mul(fs.f_frsize);
                let size = fs.f_blocks.saturating_mul(fs.f_frsize);
                free >= ENOUGH.min(size / 10)
            }
            Err(_) => true,
        }
    }

    /// The size of the database on disk: its file and its write-ahead log.
    pub fn disk_bytes(&self) -> u64 {
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        [self.path.as_ref().clone(), PathBuf::from(wal)]
            .iter()
            .filter_map(|file| std::fs::metadata(file).ok())
            .map(|metadata| metadata.len())
            .sum()
    }

    /// Records the configured feeds and webhooks, keyed by name, in one transaction: a
    /// configuration is registered whole or not at all, so a failed reload leaves the
    /// running one's rows as they were. A feed whose URL changed starts afresh (the old
    /// URL's validators, redirect target and 410 are forgotten); a webhook whose
    /// configuration changed since a 410 disabled it is enabled again, as its owner has
    /// evidently fixed it. `webhooks` pairs a name with [`crate::config::Webhook::fingerprint`].
    pub async fn register(&self, feeds: &[(&str, &str)], webhooks: &[(&str, &str)]) -> Result<()> {
        self.transaction(async |tx| {
            for (name, url) in feeds {
                sqlx::query(
                    "INSERT INTO feeds (name, url) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET
                    url = excluded.url, etag = NULL, last_modified = NULL, moved_to = NULL,
                    disabled_at = NULL, disabled_reason = NULL, next_due_at = NULL,
                    last_success_at = NULL
                 WHERE feeds.url <> excluded.url",
                )
                .bind(name)
                .bind(url)
                .execute(&mut *tx.conn)
                .await?;
            }
            for (name, fingerprint) in webhooks {
                sqlx::query(
                    "INSERT INTO webhooks (name, config_fingerprint) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET
                    config_fingerprint = excluded.config_fingerprint,
                    disabled_at = NULL, disabled_reason = NULL
                 WHERE webhooks.config_fingerprint <> excluded.config_fingerprint",
                )
                .bind(name)
                .bind(fingerprint)
                .execute(&mut *tx.conn)
                .await?;
            }
            Ok(())
        })
        .await
    }

    pub async fn feed_state(&self, name: &str) -> Result<Option<FeedState>> {
        let row = self
            .pipeline_read(async |conn| {
                sqlx::query(
                    "SELECT id, name, url, etag, last_modified, next_due_at, last_success_at,
                    failure_count, disabled_reason, moved_to
             FROM feeds WHERE name = ?1",
                )
                .bind(name)
                .fetch_optional(&mut *conn)
                .await
            })
            .await?;
        Ok(row.map(|row| FeedState {
            id: row.get("id"),
            name: row.get("name"),
            url: row.get("url"),
            etag: row.get("etag"),
            last_modified: row.get("last_modified"),
            next_due_at: row.get("next_due_at"),
            last_success_at: row.get("last_success_at"),
            failure_count: row.get("failure_count"),
            disabled_reason: row.get("disabled_reason"),
            moved_to: row.get("moved_to"),
        }))
    }

    /// Every feed's next due time and, if it is no longer polled, why: what the scheduler
    /// starts from, in one query however many feeds there are.
    pub async fn feed_schedules(&self) -> Result<HashMap<String, (Option<i64>, Option<String>)>> {
        let rows = self
            .pipeline_read(async |conn| {
                sqlx::query("SELECT name, next_due_at, disabled_reason FROM feeds")
                    .fetch_all(&mut *conn)
                    .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                (
                    row.get("name"),
                    (row.get("next_due_at"), row.get("disabled_reason")),
                )
            })
            .collect())
    }

    /// When each feed last fetched successfully (feeds that never did are left out), for
    /// `/metrics`: one cheap query, unlike [`Store::feed_statuses`].
    pub async fn last_successes(&self) -> Result<Vec<(String, i64)>> {
        let rows = self
            .look(async |conn| {
                sqlx::query(
                    "SELECT name, last_success_at FROM feeds WHERE last_success_at IS NOT NULL",
                )
                .fetch_all(&mut *conn)
                .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get("name"), row.get("last_success_at")))
            .collect())
    }

    /// The failing feeds' last errors, newest first (for systemd's `STATUS=`): a cheap
    /// query, unlike [`Store::feed_statuses`], which counts every feed's items.
    pub async fn recent_feed_errors(&self, limit: i64) -> Result<Vec<(String, String)>> {
        let rows = self
            .look(async |conn| {
                sqlx::query(
                    "SELECT name, last_error FROM feeds
             WHERE failure_count > 0 AND last_error IS NOT NULL
             ORDER BY last_error_at DESC LIMIT ?1",
                )
                .bind(limit)
                .fetch_all(&mut *conn)
                .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get("name"), row.get("last_error")))
            .collect())
    }

    /// Every feed's health, for `wirewatch feeds`.
    pub async fn feed_statuses(&self) -> Result<Vec<FeedStatus>> {
        let rows = self
            .look(async |conn| {
                sqlx::query(
                    "SELECT name, url, title, last_fetch_at, last_success_at, next_due_at,
                    failure_count, last_error, last_error_class, last_error_at,
                    disabled_at, disabled_reason, moved_to,
                    (SELECT COUNT(*) FROM items WHERE items.feed_id = feeds.id) AS items
             FROM feeds ORDER BY name",
                )
                .fetch_all(&mut *conn)
                .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| FeedStatus {
                name: row.get("name"),
                url: row.get("url"),
                title: row.get("title"),
                last_fetch_at: row.get("last_fetch_at"),
                last_success_at: row.get("last_success_at"),
                next_due_at: row.get("next_due_at"),
                failure_count: row.get("failure_count"),
                last_error: row.get("last_error"),
                last_error_class: row.get("last_error_class"),
                last_error_at: row.get("last_error_at"),
                disabled_at: row.get("disabled_at"),
                disabled_reason: row.get("disabled_reason"),
                moved_to: row.get("moved_to"),
                items: row.get("items"),
            })
            .collect())
    }

    /// Which of `keys` the feed already holds: one query per few hundred keys rather
    /// than one per item, since most items of most fetches are already known.
    pub async fn known_items(&self, feed_id: i64, keys: &[String]) -> Result<HashSet<String>> {
        // SQLite allows 32,766 parameters; stay far below so the statements stay small.
        const CHUNK: usize = 400;
        self.pipeline_read(async |conn| {
            let mut known = HashSet::new();
            for chunk in keys.chunks(CHUNK) {
                let placeholders = vec!["?"; chunk.len()].join(", ");
                // Only placeholders are spliced in; every value is bound.
                let sql = format!(
                    "SELECT item_key FROM items WHERE feed_id = ? AND item_key IN ({placeholders})"
                );
                let mut query = multi_row(sql, chunk.len()).bind(feed_id);
                for key in chunk {
                    query = query.bind(key);
                }
                for row in query.fetch_all(&mut *conn).await? {
                    known.insert(row.get("item_key"));
                }
            }
            Ok(known)
        })
        .await
    }

    /// Claims up to `limit` pending deliveries of one webhook due at `now`, leasing them
    /// until `lease_until`: a process that dies mid-send leaves the row to be retried once
    /// the lease runs out, never lost and never marked delivered. A disabled webhook's
    /// rows are not claimed.
    pub async fn claim_deliveries(
        &self,
        webhook: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let rows = self
            .transaction(async |tx| {
                Ok(sqlx::query(
                    "UPDATE outbox SET leased_until = ?3
             WHERE id IN (SELECT id FROM outbox
                          WHERE webhook = ?1 AND status = 'pending' AND next_attempt_at <= ?2
                            AND (leased_until IS NULL OR leased_until <= ?2)
                            AND NOT EXISTS (SELECT 1 FROM webhooks w
                                            WHERE w.name = ?1 AND w.disabled_at IS NOT NULL)
                          ORDER BY next_attempt_at, id LIMIT ?4)
             RETURNING id, webhook, body, attempts",
                )
                .bind(webhook)
                .bind(now)
                .bind(lease_until)
                .bind(limit)
                .fetch_all(&mut *tx.conn)
                .await?)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| Delivery {
                id: row.get("id"),
                webhook: row.get("webhook"),
                body: row.get("body"),
                attempts: row.get("attempts"),
            })
            .collect())
    }

    pub async fn mark_delivered(&self, id: &str, status: u16, at: i64) -> Result<()> {
        self.transaction(async |tx| {
            sqlx::query(
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_status = ?2,
                last_error = NULL, delivered_at = ?3, leased_until = NULL
             WHERE id = ?1 AND status = 'pending'",
            )
            .bind(id)
            .bind(i64::from(status))
            .bind(at)
            .execute(&mut *tx.conn)
            .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// A failed attempt: retried at `next_attempt_at`, or dead-lettered when `None`.
    pub async fn mark_failed(
        &self,
        id: &str,
        status: Option<u16>,
        error: &str,
        next_attempt_at: Option<i64>,
    ) -> Result<()> {
        self.transaction(async |tx| {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_status = ?2, last_error = ?3,
                status = CASE WHEN ?4 IS NULL THEN 'dead' ELSE 'pending' END,
                next_attempt_at = COALESCE(?4, next_attempt_at), leased_until = NULL
             WHERE id = ?1 AND status = 'pending'",
            )
            .bind(id)
            .bind(status.map(i64::from))
            .bind(error)
            .bind(next_attempt_at)
            .execute(&mut *tx.conn)
            .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Releases the lease of a claimed row that was not attempted after all.
    pub async fn release_lease(&self, id: &str) -> Result<()> {
        self.transaction(async |tx| {
            sqlx::query("UPDATE outbox SET leased_until = NULL WHERE id = ?1")
                .bind(id)
                .execute(&mut *tx.conn)
                .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Releases every lease: run once by the daemon at start, when no send of its own can
    /// be in flight, so rows a killed process had claimed go out at once instead of after
    /// their lease. (A `wirewatch poll` sending at that very moment could send a row
    /// twice, which at-least-once delivery allows and `webhook-id` lets receivers drop.)
    pub async fn release_leases(&self) -> Result<u64> {
        let done = self
            .transaction(async |tx| {
                Ok(sqlx::query(
                    "UPDATE outbox SET leased_until = NULL WHERE leased_until IS NOT NULL",
                )
                .execute(&mut *tx.conn)
                .await?)
            })
            .await?;
        Ok(done.rows_affected())
    }

    /// When the next pending delivery of an enabled webhook is due, if any.
    pub async fn next_delivery_due(&self, webhook: &str) -> Result<Option<i64>> {
        let row = self
            .pipeline_read(async |conn| {
                sqlx::query(
                    "SELECT MIN(MAX(next_attempt_at, COALESCE(leased_until, 0))) AS due FROM outbox
             WHERE webhook = ?1 AND status = 'pending'
               AND NOT EXISTS (SELECT 1 FROM webhooks w
                               WHERE w.name = ?1 AND w.disabled_at IS NOT NULL)",
                )
                .bind(webhook)
                .fetch_one(&mut *conn)
                .await
            })
            .await?;
        Ok(row.get("due"))
    }

    pub async fn disable_webhook(&self, name: &str, reason: &str, at: i64) -> Result<()> {
        self.transaction(async |tx| {
            sqlx::query(
                "UPDATE webhooks SET disabled_at = ?2, disabled_reason = ?3
             WHERE name = ?1 AND disabled_at IS NULL",
            )
            .bind(name)
            .bind(at)
            .bind(reason)
            .execute(&mut *tx.conn)
            .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Enables a webhook a 410 disabled (a no-op for an enabled one).
    pub async fn enable_webhook(&self, name: &str) -> Result<()> {
        self.transaction(async |tx| {
            sqlx::query(
                "UPDATE webhooks SET disabled_at = NULL, disabled_reason = NULL WHERE name = ?1",
            )
            .bind(name)
            .execute(&mut *tx.conn)
            .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Webhooks disabled by a 410, with when and why.
    pub async fn disabled_webhooks(&self) -> Result<Vec<DisabledWebhook>> {
        let rows = self
            .look(async |conn| {
                sqlx::query(
                    "SELECT name, disabled_at, disabled_reason FROM webhooks
             WHERE disabled_at IS NOT NULL ORDER BY name",
                )
                .fetch_all(&mut *conn)
                .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| DisabledWebhook {
                name: row.get("name"),
                disabled_at: row.get("disabled_at"),
                reason: row
                    .get::<Option<String>, _>("disabled_reason")
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Outbox rows for `wirewatch deliveries`, newest first. `failed` means pending after
    /// at least one failed attempt.
    pub async fn deliveries(&self, status: Option<&str>, limit: i64) -> Result<Vec<DeliveryRow>> {
        let rows = self
            .look(async |conn| {
                sqlx::query(
            "SELECT o.id, o.webhook, o.status, o.attempts, o.next_attempt_at, o.last_status,
                    o.last_error, o.created_at, o.delivered_at, m.watchlist, i.title
             FROM outbox o
             JOIN matches m ON m.id = o.match_id
             JOIN items i ON i.id = m.item_id
             WHERE ?1 IS NULL
                OR (?1 = 'failed' AND o.status = 'pending' AND o.attempts > 0)
                OR o.status = ?1
             ORDER BY o.created_at DESC, o.id DESC
             LIMIT ?2",
        )
        .bind(status)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| DeliveryRow {
                id: row.get("id"),
                webhook: row.get("webhook"),
                status: row.get("status"),
                attempts: row.get("attempts"),
                next_attempt_at: row.get("next_attempt_at"),
                last_status: row.get("last_status"),
                last_error: row.get("last_error"),
                created_at: row.get("created_at"),
                delivered_at: row.get("delivered_at"),
                watchlist: row.get("watchlist"),
                title: row.get("title"),
            })
            .collect())
    }

    /// Re-queues one row (whatever its status) for an attempt now, with a fresh retry
    /// schedule; `false` when no row has that id.
    pub async fn requeue(&self, id: &str, now: i64) -> Result<bool> {
        let done = self
            .transaction(async |tx| {
                Ok(sqlx::query(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?2,
                delivered_at = NULL, leased_until = NULL
             WHERE id = ?1",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx.conn)
                .await?)
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Re-queues every dead-lettered row, or those of one webhook; returns how many.
    pub async fn requeue_dead(&self, webhook: Option<&str>, now: i64) -> Result<u64> {
        let done = self
            .transaction(async |tx| {
                Ok(sqlx::query(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?2
             WHERE status = 'dead' AND (?1 IS NULL OR webhook = ?1)",
                )
                .bind(webhook)
                .bind(now)
                .execute(&mut *tx.conn)
                .await?)
            })
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn matches(&self, query: &MatchQuery) -> Result<Vec<MatchRow>> {
        let search = query.search.as_ref().map(|s| {
            let escaped = s
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let rows = self
            .look(async |conn| {
                sqlx::query(
            "SELECT m.id, m.watchlist, m.terms, m.created_at, f.name AS feed, i.title, i.url,
                    i.published_at
             FROM matches m
             JOIN items i ON i.id = m.item_id
             JOIN feeds f ON f.id = i.feed_id
             WHERE (?1 IS NULL OR m.watchlist = ?1)
               AND m.created_at >= ?2
               AND (?3 IS NULL OR i.title LIKE ?3 ESCAPE '\\' OR i.summary LIKE ?3 ESCAPE '\\')
             ORDER BY m.created_at DESC, m.id DESC
             LIMIT ?4",
        )
        .bind(query.watchlist.as_deref())
        .bind(query.since.unwrap_or(i64::MIN))
        .bind(search)
        .bind(query.limit)
        .fetch_all(&mut *conn)
        .await
            })
            .await?;
        rows.into_iter()
            .map(|row| {
                let terms: String = row.get("terms");
                Ok(MatchRow {
                    alert_id: row.get("id"),
                    watchlist: row.get("watchlist"),
                    terms: serde_json::from_str(&terms)?,
                    created_at: row.get("created_at"),
                    feed: row.get("feed"),
                    title: row.get("title"),
                    url: row.get("url"),
                    published_at: row.get("published_at"),
                })
            })
            .collect()
    }

    /// How many deliveries wait for an attempt (pending, whatever their webhook).
    pub async fn pending_deliveries(&self) -> Result<i64> {
        let row = self
            .look(async |conn| {
                sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'")
                    .fetch_one(&mut *conn)
                    .await
            })
            .await?;
        Ok(row.get("n"))
    }

    /// Whether the store answers at all: a trivial statement, queued behind this
    /// process's writers, for the systemd watchdog. A database that refuses writes (disk
    /// full, I/O errors) still answers, and heals without a restart (readiness reports
    /// it); a store that hangs — a wedged writer, a file system that stopped — does not.
    pub async fn answers(&self) -> Result<()> {
        let _writer = self.writer.lock().await;
        self.pipeline_read(async |conn| sqlx::query("SELECT 1").execute(&mut *conn).await.map(drop))
            .await
    }

    pub async fn close(&self) {
        self.readers.close().await;
        self.pool.close().await;
    }
}

/// A write transaction over the pipeline's tables. The commit stage writes the results of
/// many refreshes in one, so each feed's items, matches, outbox rows and new validators
/// commit together or not at all. The inserts take many rows per statement: statements,
/// not SQLite's own work, are what a refresh waits for while the one write lock is held
/// (each costs two hand-offs to sqlx's SQLite thread, see BENCHMARKS.md).
pub struct StoreTx {
    conn: PoolConnection<Sqlite>,
    /// Until `COMMIT` succeeds. A transaction dropped while open (it failed, or its task
    /// was cancelled) closes its connection, which rolls it back, instead of returning it
    /// to the pool in a state nobody knows.
    open: bool,
    /// Whether the connection's busy timeout was changed for this transaction, to be put
    /// back after it.
    busy_changed: bool,
    _writer: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for StoreTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

/// `rows` groups of `columns` placeholders, `(?, ?), (?, ?)`, for a multi-row statement.
/// Only placeholders are ever spliced into SQL; every value is bound.
fn values(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// A statement whose text depends on how many rows or keys it carries. Only the small
/// variants stay in the connection's statement cache: they are the common ones (a quiet
/// daemon writes one feed at a time) and cheap to keep. Large ones are prepared each time:
/// there are hundreds of them, each prepared one takes tens of KB, they would push each
/// other out of the cache, and their preparing is shared by many rows.
fn multi_row<'q>(
    sql: String,
    rows: usize,
) -> sqlx::query::Query<'q, Sqlite, <Sqlite as sqlx::Database>::Arguments> {
    const CACHED_ROWS: usize = 16;
    sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows <= CACHED_ROWS)
}

/// Rows per multi-row statement: SQLite binds at most 32,766 parameters, and smaller
/// statements keep the prepared-statement cache small.
const ROWS_PER_STATEMENT: usize = 200;

/// An item to insert: its feed, its story and its fields.
#[derive(Debug, Clone)]
pub struct ItemRow<'a> {
    pub feed_id: i64,
    pub story_id: i64,
    /// Whether the item hit a watch-list: it is then kept for `retention.matches` rather
    /// than `retention.items`.
    pub matched: bool,
    pub item: NewItem<'a>,
}

/// An outbox row: one alert rendered for one webhook.
#[derive(Debug, Clone)]
pub struct OutboxRow<'a> {
    pub id: String,
    pub match_id: &'a str,
    pub webhook: &'a str,
    pub body: String,
}

impl StoreTx {
    /// A story of its own, for an item without a link.
    pub async fn new_story(&mut self, now: i64) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO stories (canonical_url, first_seen_at) VALUES (NULL, ?1) RETURNING id",
        )
        .bind(now)
        .fetch_one(&mut *self.conn)
        .await?;
        Ok(row.get("id"))
    }

    /// The stories of many canonical links at once: existing ones found, missing ones
    /// created.
    pub async fn stories_for(&mut self, urls: &[&str], now: i64) -> Result<HashMap<String, i64>> {
        let mut unique: Vec<&str> = urls.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut ids = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            // Most stories are new: insert first, then look up those already known.
            let sql = format!(
                "INSERT INTO stories (canonical_url, first_seen_at) VALUES {}
                 ON CONFLICT (canonical_url) DO NOTHING
                 RETURNING id, canonical_url",
                values(chunk.len(), 2)
            );
            let mut insert = multi_row(sql, chunk.len());
            for url in chunk {
                insert = insert.bind(*url).bind(now);
            }
            for row in insert.fetch_all(&mut *self.conn).await? {
                ids.insert(
                    row.get::<String, _>("canonical_url"),
                    row.get::<i64, _>("id"),
                );
            }
            let known: Vec<&str> = chunk
                .iter()
                .copied()
                .filter(|url| !ids.contains_key(*url))
                .collect();
            if known.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT id, canonical_url FROM stories WHERE canonical_url IN {}",
                values(1, known.len())
            );
            let mut select = multi_row(sql, known.len());
            for url in &known {
                select = select.bind(*url);
            }
            for row in select.fetch_all(&mut *self.conn).await? {
                ids.insert(
                    row.get::<String, _>("canonical_url"),
                    row.get::<i64, _>("id"),
                );
            }
        }
        Ok(ids)
    }

    /// Inserts items of any number of feeds; returns the ids of those inserted, by
    /// (feed id, item key). An item its feed already holds is left out.
    pub async fn insert_items(
        &mut self,
        rows: &[ItemRow<'_>],
        now: i64,
    ) -> Result<HashMap<(i64, String), i64>> {
        let mut ids = HashMap::with_capacity(rows.len());
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO items (feed_id, item_key, story_id, title, url, published_at,
                                    summary, authors, categories, language, first_seen_at,
                                    matched)
                 VALUES {}
                 ON CONFLICT (feed_id, item_key) DO NOTHING
                 RETURNING id, feed_id, item_key",
                values(chunk.len(), 12)
            );
            let mut insert = multi_row(sql, chunk.len());
            for row in chunk {
                let item = &row.item;
                insert = insert
                    .bind(row.feed_id)
                    .bind(item.item_key)
                    .bind(row.story_id)
                    .bind(item.title)
                    .bind(item.url)
                    .bind(item.published_at)
                    .bind(item.summary)
                    .bind(serde_json::to_string(item.authors)?)
                    .bind(serde_json::to_string(item.categories)?)
                    .bind(item.language)
                    .bind(now)
                    .bind(row.matched);
            }
            for row in insert.fetch_all(&mut *self.conn).await? {
                ids.insert(
                    (
                        row.get::<i64, _>("feed_id"),
                        row.get::<String, _>("item_key"),
                    ),
                    row.get::<i64, _>("id"),
                );
            }
        }
        Ok(ids)
    }

    /// Inserts matches; returns the ids of those inserted. A match is left out when its
    /// story already has one for that watch-list, whether from an earlier transaction or
    /// from an earlier row of `matches`.
    pub async fn insert_matches(&mut self, matches: &[NewMatch<'_>]) -> Result<HashSet<String>> {
        let mut inserted = HashSet::with_capacity(matches.len());
        for chunk in matches.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO matches (id, story_id, watchlist, item_id, terms, highlights,
                                      created_at)
                 VALUES {}
                 ON CONFLICT (story_id, watchlist) DO NOTHING
                 RETURNING id",
                values(chunk.len(), 7)
            );
            let mut insert = multi_row(sql, chunk.len());
            for m in chunk {
                insert = insert
                    .bind(m.id)
                    .bind(m.story_id)
                    .bind(m.watchlist)
                    .bind(m.item_id)
                    .bind(m.terms_json.as_str())
                    .bind(m.highlights_json.as_str())
                    .bind(m.created_at);
            }
            for row in insert.fetch_all(&mut *self.conn).await? {
                inserted.insert(row.get::<String, _>("id"));
            }
        }
        Ok(inserted)
    }

    /// Queues rendered alerts for delivery, due at once.
    pub async fn insert_outbox(&mut self, rows: &[OutboxRow<'_>], now: i64) -> Result<()> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO outbox (id, match_id, webhook, body, next_attempt_at, created_at)
                 VALUES {}
                 ON CONFLICT (match_id, webhook) DO NOTHING",
                values(chunk.len(), 6)
            );
            let mut insert = multi_row(sql, chunk.len());
            for row in chunk {
                insert = insert
                    .bind(row.id.as_str())
                    .bind(row.match_id)
                    .bind(row.webhook)
                    .bind(row.body.as_str())
                    .bind(now)
                    .bind(now);
            }
            insert.execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    /// Successful fetches: each feed's new validators, title and due time.
    pub async fn update_feeds(&mut self, updates: &[(i64, &FeedUpdate)]) -> Result<()> {
        for chunk in updates.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "WITH v (id, title, etag, last_modified, next_due_at, fetched_at,
                         document_keys) AS (VALUES {})
                 UPDATE feeds SET title = COALESCE(v.title, feeds.title), etag = v.etag,
                    last_modified = v.last_modified, next_due_at = v.next_due_at,
                    last_fetch_at = v.fetched_at, last_success_at = v.fetched_at,
                    failure_count = 0, last_error = NULL, last_error_class = NULL,
                    document_keys = COALESCE(v.document_keys, feeds.document_keys)
                 FROM v WHERE feeds.id = v.id",
                values(chunk.len(), 7)
            );
            let mut update = multi_row(sql, chunk.len());
            for (feed_id, u) in chunk {
                update = update
                    .bind(*feed_id)
                    .bind(u.title.as_deref())
                    .bind(u.etag.as_deref())
                    .bind(u.last_modified.as_deref())
                    .bind(u.next_due_at)
                    .bind(u.fetched_at)
                    .bind(u.document_keys.as_deref());
            }
            update.execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    /// Fetches that changed nothing (304): only each feed's schedule moves. Takes
    /// (feed id, fetched at, next due at).
    pub async fn record_not_modified(&mut self, feeds: &[(i64, i64, i64)]) -> Result<()> {
        for chunk in feeds.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "WITH v (id, fetched_at, next_due_at) AS (VALUES {})
                 UPDATE feeds SET last_fetch_at = v.fetched_at, last_success_at = v.fetched_at,
                    next_due_at = v.next_due_at, failure_count = 0, last_error = NULL,
                    last_error_class = NULL
                 FROM v WHERE feeds.id = v.id",
                values(chunk.len(), 3)
            );
            let mut update = multi_row(sql, chunk.len());
            for (feed_id, fetched_at, next_due_at) in chunk {
                update = update.bind(*feed_id).bind(*fetched_at).bind(*next_due_at);
            }
            update.execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    /// A failed fetch or parse: the error and its class are kept on the feed's row with
    /// the time. `disable` (a 410) stops polling the feed, with the error as the reason.
    pub async fn record_failure(&mut self, feed_id: i64, failure: &FeedFailure) -> Result<()> {
        sqlx::query(
            "UPDATE feeds SET last_fetch_at = ?4, last_error = ?2, last_error_class = ?3,
                last_error_at = ?4, failure_count = failure_count + 1, next_due_at = ?5,
                disabled_at = CASE WHEN ?6 THEN ?4 ELSE disabled_at END,
                disabled_reason = CASE WHEN ?6 THEN ?2 ELSE disabled_reason END
             WHERE id = ?1",
        )
        .bind(feed_id)
        .bind(failure.error.as_str())
        .bind(failure.class)
        .bind(failure.at)
        .bind(failure.next_due_at)
        .bind(failure.disable)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    /// A permanent redirect moved the feed (its target already passed the network guard).
    pub async fn record_moved(&mut self, feed_id: i64, url: &str) -> Result<()> {
        sqlx::query("UPDATE feeds SET moved_to = ?2 WHERE id = ?1")
            .bind(feed_id)
            .bind(url)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn commit(mut self) -> Result<()> {
        sqlx::query("COMMIT").execute(&mut *self.conn).await?;
        self.open = false;
        if self.busy_changed {
            let reset = sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA busy_timeout = {}",
                BUSY_TIMEOUT.as_millis()
            )))
            .execute(&mut *self.conn)
            .await;
            if reset.is_err() {
                // The commit stands; the connection, left with a short timeout, goes.
                self.conn.close_on_drop();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    /// A tmpfs of `size` mounted on a temporary directory for the test's life: a file
    /// system that really fills up. Mounting needs root, which CI and developers have.
    struct Tmpfs {
        dir: tempfile::TempDir,
    }

    impl Tmpfs {
        fn mount(size: &str) -> Tmpfs {
            let dir = tempfile::tempdir().expect("temp dir");
            let status = Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0700"),
                    "tmpfs",
                ])
                .arg(dir.path())
                .status();
            match status {
                Ok(status) if status.success() => Tmpfs { dir },
                other => panic!(
                    "this test mounts a tmpfs to fill a real file system and needs root \
                     (CAP_SYS_ADMIN): `mount -t tmpfs` gave {other:?}"
                ),
            }
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        /// Fills the file system to the last byte with one file; returns its path.
        fn fill(&self) -> PathBuf {
            use std::io::Write as _;
            let path = self.path().join("filler");
            let mut file = std::fs::File::create(&path).expect("filler");
            for chunk in [1 << 16, 1 << 12, 1 << 9, 1] {
                let bytes = vec![0u8; chunk];
                while file.write_all(&bytes).is_ok() {}
            }
            let _ = file.sync_all();
            path
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }

    /// A write large enough to need new pages: `n` feeds with long URLs.
    async fn register_feeds(store: &Store, round: usize, n: usize) -> Result<()> {
        let feeds: Vec<(String, String)> = (0..n)
            .map(|i| {
                (
                    format!("feed-{round}-{i}"),
                    format!("https://wire.example/{round}/{i}/{}", "x".repeat(400)),
                )
            })
            .collect();
        let pairs: Vec<(&str, &str)> = feeds
            .iter()
            .map(|(name, url)| (name.as_str(), url.as_str()))
            .collect();
        store.register(&pairs, &[]).await
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_full_disk_fails_writes_without_spoiling_a_connection_and_writes_resume_with_space() {
        let fs = Tmpfs::mount("4m");
        let store = Store::open(&fs.path().join("wirewatch.db"))
            .await
            .expect("open");
        register_feeds(&store, 0, 10).await.expect("room to write");
        assert!(store.health().writable());

        let filler = fs.fill();
        let mut failures = Vec::new();
        for round in 1..=8 {
            match register_feeds(&store, round, 200).await {
                Ok(()) => panic!("round {round} was written to a full disk"),
                Err(err) => {
                    assert!(!err.is_about_the_data(), "the database failed: {err}");
                    failures.push(err.to_string());
                }
            }
        }
        assert!(
            store.probe(1).await.is_err(),
            "the probe fails while full too"
        );
        // Every round failed for the disk, none for a connection left inside a
        // transaction by an earlier failure.
        for failure in &failures {
            assert!(failure.contains("full"), "{failures:#?}");
            assert!(!failure.contains("transaction depth"), "{failures:#?}");
        }
        let failing = store.health().failing().expect("not writable while full");
        assert!(failing.error.contains("full"), "{failing:?}");

        std::fs::remove_file(filler).expect("free the space");
        // More rounds than the pool has connections: a spoiled one would fail one of them.
        for round in 9..=9 + PIPELINE_CONNECTIONS as usize * 2 {
            register_feeds(&store, round, 20)
                .await
                .unwrap_or_else(|err| panic!("round {round} after space came back: {err}"));
        }
        assert!(store.health().writable());
        let names = store.feed_schedules().await.expect("read");
        assert!(names.contains_key("feed-0-9") && names.contains_key("feed-9-19"));
        assert!(
            !names.contains_key("feed-1-0"),
            "a failed round left nothing"
        );
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn after_a_full_disk_small_writes_that_fit_do_not_count_as_healed_until_there_is_room() {
        let fs = Tmpfs::mount("64m");
        let store = Store::open(&fs.path().join("wirewatch.db"))
            .await
            .expect("open");
        register_feeds(&store, 0, 10).await.expect("room to write");
        // Full but for half a megabyte: small writes may fit, large ones do not.
        let filler = fs.fill();
        let full = std::fs::metadata(&filler).expect("filler").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&filler)
            .and_then(|file| file.set_len(full - (512 << 10)))
            .expect("leave a little room");
        let err = register_feeds(&store, 1, 4000)
            .await
            .expect_err("too large to fit");
        assert!(err.is_disk_full(), "{err}");
        assert!(!store.room_to_write());

        // Small writes go on fitting, and prove nothing.
        for round in 0..5 {
            let _ = store.probe(round).await;
            assert!(
                store.health().failing().is_some_and(|f| f.disk_full),
                "judged healed by a write that fit in the last free blocks"
            );
        }

        std::fs::remove_file(filler).expect("free the space");
        assert!(store.room_to_write());
        store.probe(9).await.expect("a write with room");
        assert!(store.health().writable());
        register_feeds(&store, 2, 4000)
            .await
            .expect("the large write now fits");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_api_reads_while_every_pipeline_connection_is_taken() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("wirewatch.db"))
            .await
            .expect("open");
        let mut held = Vec::new();
        for _ in 0..PIPELINE_CONNECTIONS {
            held.push(store.pool.acquire().await.expect("a pipeline connection"));
        }
        let query = MatchQuery {
            limit: 10,
            ..MatchQuery::default()
        };
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            (
                store.matches(&query).await,
                store.feed_statuses().await,
                store.pending_deliveries().await,
            )
        })
        .await
        .expect("API reads do not wait for the pipeline's connections");
        assert!(read.0.expect("matches").is_empty());
        assert!(read.1.expect("feeds").is_empty());
        assert_eq!(read.2.expect("pending"), 0);
        drop(held);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_transaction_dropped_half_way_leaves_nothing_and_the_next_one_works() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("wirewatch.db"))
            .await
            .expect("open");
        let (started, begun) = tokio::sync::oneshot::channel::<()>();
        let writer = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .transaction(async |tx| {
                        sqlx::query(
                            "INSERT INTO feeds (name, url) VALUES ('cut', 'https://a.example/')",
                        )
                        .execute(&mut *tx.conn)
                        .await?;
                        let _ = started.send(());
                        std::future::pending::<()>().await;
                        Ok(())
                    })
                    .await
            }
        });
        begun.await.expect("inside the transaction");
        // A refresh abandoned at shutdown: its task is cancelled mid-transaction.
        writer.abort();
        let _ = writer.await;
        for round in 0..PIPELINE_CONNECTIONS as usize * 2 {
            register_feeds(&store, round, 1)
                .await
                .expect("the next writes work");
        }
        assert!(store.feed_state("cut").await.expect("read").is_none());
    }
}
