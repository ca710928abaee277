//! The store, on SQLite (the embedded default) or PostgreSQL (several daemons sharing one
//! database): opening it (on SQLite: WAL, busy timeout, owner-only files; on both: the
//! embedded migrations of its dialect), its connections and transactions, and every SQL
//! statement wirewatch runs, one file per concern. Statements are written once for both
//! dialects and run through sqlx's `Any` driver; what differs is in `dialect.rs`.
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
//!
//! This file holds what every statement shares: [`Store`], its pools, [`StoreTx`] and
//! the multi-row statement helpers. The statements live by concern: `feeds.rs`
//! (registering feeds and webhooks, poll state, schedules, statuses), `pipeline.rs` (what
//! a refresh reads and the commit stage writes), `stories.rs` (story links, the
//! near-duplicate band index, story summaries and escalations), `outbox.rs` (claiming,
//! leasing, marking and re-queueing deliveries), `leases.rs` (feed leases of several
//! daemons on one PostgreSQL database), `policy.rs` (misses, mutes, rate-limit
//! counts and digests of the alert policy), `explain.rs` (what `explain` reads of one
//! item), `queries.rs` (stored matches and stories,
//! for people), `backtest.rs` (the snapshot of stored item texts a backtest scans),
//! [`retention`] (pruning)
//! and [`health`] (whether writes succeed). Rows are read into `sqlx::FromRow` types,
//! never with `Row::get`, which panics on a value it cannot decode.

mod backtest;
mod dialect;
mod explain;
mod feeds;
pub mod health;
mod leases;
mod outbox;
mod pipeline;
mod policy;
mod queries;
pub mod retention;
mod stories;

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions as _};

pub use dialect::Dialect;

pub use backtest::{SCAN_PAGE, ScanSink, ScannedItem, StoredFeed};
pub use explain::{ExplainedItem, MAX_EXPLAINED, StoredItem, StoredMiss, StoryMatch};
pub use feeds::{ErrorClass, FeedState, FeedStatus};
pub use health::{Failing, Health};
pub use leases::{FeedClaim, LeaseCount, Released};
pub use outbox::{
    Delivery, DeliveryCounts, DeliveryFilter, DeliveryRow, DisabledWebhook, OutboxStatus,
};
pub use pipeline::{FeedFailure, FeedUpdate, ItemRow, NewItem, NewMatch, OutboxRow};
pub use policy::{Held, HeldMatch, MissReason, Mute, NewDigest, NewMiss};
pub use queries::{
    MAX_STORY_ITEMS, MatchQuery, MatchRow, StoryListing, StoryQuery, StoryRow, StorySighting,
    WatchlistHit,
};
pub use stories::{Escalation, Neighbour, StorySummary};

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
    #[error("cannot open the database {database}: {source}")]
    Open {
        database: Database,
        source: sqlx::Error,
    },
    #[error("this process already uses a {settled} database and cannot also open {database}")]
    OtherDialect {
        database: Database,
        settled: &'static str,
    },
    #[error("cannot make the database file {path} readable by its owner only: {source}")]
    Permissions {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock the database {path} to open and migrate it: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot migrate the database {database}: {source}")]
    Migrate {
        database: Database,
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
                Dialect::current().about_the_data(db.as_ref())
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
    /// Whether the disk was full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sql(sqlx::Error::Database(db)) => Dialect::current().disk_full(db.as_ref()),
            StoreError::Shared(err) => err.is_disk_full(),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where the store lives: a SQLite file, or a PostgreSQL server (whose URL may hold a
/// password, so it is never shown whole).
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    pub fn dialect(&self) -> Dialect {
        match self {
            Database::Sqlite(_) => Dialect::Sqlite,
            Database::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// `SQLite, PATH` or `PostgreSQL, postgres://user@host:port/db`, without the password
/// or any query parameter (which may hold one).
impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "SQLite, {}", path.display()),
            Database::Postgres(url) => match url::Url::parse(url) {
                Ok(mut shown) => {
                    let _ = shown.set_password(None);
                    shown.set_query(None);
                    write!(f, "PostgreSQL, {shown}")
                }
                Err(_) => write!(f, "PostgreSQL, (an unreadable URL)"),
            },
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl From<&Database> for Database {
    fn from(database: &Database) -> Database {
        database.clone()
    }
}

impl From<&Path> for Database {
    fn from(path: &Path) -> Database {
        Database::Sqlite(path.to_path_buf())
    }
}

impl From<&PathBuf> for Database {
    fn from(path: &PathBuf) -> Database {
        Database::Sqlite(path.clone())
    }
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// The pipeline's connections: refresh reads and every write.
    pool: AnyPool,
    /// Read-only connections for the API, `/metrics` and the CLI's listings.
    readers: AnyPool,
    /// Write transactions of this process queue here rather than in SQLite's busy
    /// handler, which sleeps in growing steps and would leave the database idle while
    /// dozens of refreshes wait for the one write lock.
    writer: Arc<tokio::sync::Mutex<()>>,
    health: Arc<Health>,
    database: Arc<Database>,
}

/// Whether a PostgreSQL server could not be reached or went away: no connection, or one
/// that broke.
fn out_of_reach(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
    ) || matches!(err, sqlx::Error::Database(db) if Dialect::Postgres.poisons(db.as_ref()))
}

/// Whether a failed statement may have left its connection unfit for reuse: an I/O
/// error, no memory, no space, a corrupt or vanished file, or a connection that broke.
fn poisons(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => Dialect::current().poisons(db.as_ref()),
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// Creates the database file readable by its owner only, whatever the umask, and takes
/// group and other permissions off an existing database, WAL and shared-memory file
/// (SQLite creates the latter two with the database file's mode). They hold feed URLs
/// with their credentials and webhook bodies.
/// An exclusive `flock` on `path`, held until the file is dropped; waits for another
/// process's.
async fn lock_file(path: &Path) -> Result<std::fs::File> {
    let owned = path.to_path_buf();
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&owned)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|locked| locked);
    locked.map_err(|source| StoreError::Lock {
        path: path.to_path_buf(),
        source,
    })
}

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

impl Store {
    /// Opens the database (creating a SQLite file if needed) and brings its schema up to
    /// date.
    pub async fn open(database: impl Into<Database>) -> Result<Store> {
        let database = database.into();
        sqlx::any::install_default_drivers();
        Dialect::settle(database.dialect()).map_err(|settled| StoreError::OtherDialect {
            database: database.clone(),
            settled: settled.name(),
        })?;
        let (pool, readers) = match &database {
            Database::Sqlite(path) => Store::open_sqlite(path, &database).await?,
            Database::Postgres(url) => Store::open_postgres(url, &database).await?,
        };
        Ok(Store {
            pool,
            readers,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            health: Arc::new(Health::default()),
            database: Arc::new(database),
        })
    }

    /// The SQLite file's pools, after its migrations.
    async fn open_sqlite(path: &Path, database: &Database) -> Result<(AnyPool, AnyPool)> {
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
            database: database.clone(),
            source,
        };
        let base = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite:")
            .map_err(opening)?
            .filename(path);
        let writable =
            AnyConnectOptions::from_url(&base.clone().create_if_missing(true).to_url_lossy())
                .map_err(opening)?;
        let read_only =
            AnyConnectOptions::from_url(&base.read_only(true).to_url_lossy()).map_err(opening)?;
        // Two processes opening a database at once (the daemon, and `wirewatch poll` or
        // another daemon) would otherwise race: on a new file, switching it to WAL wants
        // an exclusive lock and fails at once with "database is locked" rather than wait;
        // and both would find a migration missing and run it (sqlx takes no lock on
        // SQLite), the second `ALTER TABLE` failing. An exclusive `flock` on the database
        // file (apart from SQLite's own POSIX locks) makes them take turns: one opens and
        // migrates while the other waits, then finds nothing left to do.
        let opening_alone = lock_file(path).await?;
        let pool = AnyPoolOptions::new()
            .max_connections(PIPELINE_CONNECTIONS)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL with NORMAL is durable across process crashes (what the outbox
                    // promises); only an OS crash can lose the last transactions.
                    sqlx::raw_sql("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                        .execute(&mut *conn)
                        .await?;
                    set_busy_timeout(conn, BUSY_TIMEOUT).await
                })
            })
            .connect_with(writable)
            .await
            .map_err(opening)?;
        // Once per file, not per connection (a connection opened on a full disk must not
        // fail on them). Incremental auto-vacuum lets retention give freed pages back to
        // the file system; it takes effect on a new database only (an older one would
        // need a VACUUM), and SQLite reuses freed pages either way.
        sqlx::raw_sql("PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;")
            .execute(&pool)
            .await
            .map_err(opening)?;
        let migrated = sqlx::migrate!("./migrations").run(&pool).await;
        drop(opening_alone);
        migrated.map_err(|source| StoreError::Migrate {
            database: database.clone(),
            source,
        })?;
        let readers = AnyPoolOptions::new()
            .max_connections(READER_CONNECTIONS)
            .after_connect(|conn, _| Box::pin(set_busy_timeout(conn, BUSY_TIMEOUT)))
            .connect_with(read_only)
            .await
            .map_err(opening)?;
        Ok((pool, readers))
    }

    /// A PostgreSQL database's pools, after its migrations (which sqlx runs under an
    /// advisory lock, so daemons starting together take turns).
    async fn open_postgres(url: &str, database: &Database) -> Result<(AnyPool, AnyPool)> {
        let opening = |source| StoreError::Open {
            database: database.clone(),
            source,
        };
        let options = AnyConnectOptions::from_str(url).map_err(opening)?;
        let pool = AnyPoolOptions::new()
            .max_connections(PIPELINE_CONNECTIONS)
            .acquire_timeout(BUSY_TIMEOUT)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // A node that stops in the middle of a transaction (hung, cut off)
                    // lets go of its locks within a minute, whatever TCP notices.
                    sqlx::raw_sql("SET idle_in_transaction_session_timeout = '60s'")
                        .execute(&mut *conn)
                        .await
                        .map(drop)
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(opening)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                database: database.clone(),
                source,
            })?;
        let readers = AnyPoolOptions::new()
            .max_connections(READER_CONNECTIONS)
            .acquire_timeout(BUSY_TIMEOUT)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // A reader's transaction is one snapshot (`explain`, the listings),
                    // as on SQLite: READ COMMITTED would take one per statement.
                    sqlx::raw_sql(
                        "SET default_transaction_read_only = on;
                         SET default_transaction_isolation = 'repeatable read'",
                    )
                    .execute(&mut *conn)
                    .await
                    .map(drop)
                })
            })
            .connect_with(options)
            .await
            .map_err(opening)?;
        Ok((pool, readers))
    }

    /// Where the store is.
    pub fn database(&self) -> &Database {
        &self.database
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
        self.transaction_waiting(BUSY_TIMEOUT, Lock::Writes, work)
            .await
    }

    /// A write transaction of leases and single-row updates (claiming feeds and
    /// deliveries, marking a delivery's outcome). On PostgreSQL it takes neither this
    /// process's writer queue nor the cluster-wide write lock: row locks (`FOR UPDATE
    /// SKIP LOCKED`) keep two nodes apart, and a claim need not wait for a commit stage.
    /// On SQLite it is [`Store::transaction`].
    async fn row_transaction<T>(
        &self,
        work: impl AsyncFnOnce(&mut StoreTx) -> Result<T>,
    ) -> Result<T> {
        self.transaction_waiting(BUSY_TIMEOUT, Lock::Rows, work)
            .await
    }

    /// [`Store::transaction`], waiting at most `busy` for another process's write lock.
    async fn transaction_waiting<T>(
        &self,
        busy: Duration,
        lock: Lock,
        work: impl AsyncFnOnce(&mut StoreTx) -> Result<T>,
    ) -> Result<T> {
        let outcome: Result<T> = async {
            let mut tx = self.begin(busy, lock).await?;
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

    async fn begin(&self, busy: Duration, lock: Lock) -> Result<StoreTx> {
        let dialect = self.database.dialect();
        let serialized = dialect == Dialect::Sqlite || lock == Lock::Writes;
        let writer = match serialized {
            true => Some(self.writer.clone().lock_owned().await),
            false => None,
        };
        let conn = self.pool.acquire().await?;
        let mut tx = StoreTx {
            conn,
            open: true,
            busy_changed: dialect == Dialect::Sqlite && busy != BUSY_TIMEOUT,
            _writer: writer,
        };
        if tx.busy_changed {
            set_busy_timeout(&mut tx.conn, busy).await?;
        }
        // Issued as a plain statement: sqlx's own transaction bookkeeping is what a failed
        // rollback used to leave wrong. Should it fail, the drop closes the connection.
        sqlx::query(dialect.begin_write())
            .execute(&mut *tx.conn)
            .await?;
        if dialect == Dialect::Postgres && lock == Lock::Writes {
            // Waits for another node's commit at most `busy`, as SQLite's busy timeout
            // does: a node that hangs mid-commit must not stop every other node's writes.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SET LOCAL lock_timeout = {}",
                busy.as_millis()
            )))
            .execute(&mut *tx.conn)
            .await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(dialect::WRITE_LOCK)
                .execute(&mut *tx.conn)
                .await?;
        }
        Ok(tx)
    }

    /// Runs a read on one of `pool`'s connections, closing it afterwards if the read
    /// failed in a way that may have left it unfit (see [`poisons`]).
    async fn read<T>(
        pool: &AnyPool,
        work: impl AsyncFnOnce(&mut AnyConnection) -> sqlx::Result<T>,
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
        work: impl AsyncFnOnce(&mut AnyConnection) -> sqlx::Result<T>,
    ) -> Result<T> {
        Store::read(&self.pool, work).await
    }

    /// A read for someone looking (the API, `/metrics`, the CLI), on a read-only
    /// connection: in WAL mode it never waits for the writer, and the writer never waits
    /// for it.
    async fn look<T>(
        &self,
        work: impl AsyncFnOnce(&mut AnyConnection) -> sqlx::Result<T>,
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
        self.transaction_waiting(busy, Lock::Writes, async |tx| {
            query(
                "INSERT INTO health_probe (id, at) VALUES (1, $1)
                   ON CONFLICT (id) DO UPDATE SET at = excluded.at",
            )
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
        // PostgreSQL's disk is the server's: its own errors say when it is full.
        let Database::Sqlite(path) = self.database.as_ref() else {
            return true;
        };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        match rustix::fs::statvfs(dir.unwrap_or(Path::new("."))) {
            Ok(fs) => {
                let free = fs.f_bavail.saturating_mul(fs.f_frsize);
                let size = fs.f_blocks.saturating_mul(fs.f_frsize);
                free >= ENOUGH.min(size / 10)
            }
            Err(_) => true,
        }
    }

    /// The size of a SQLite database on disk: its file and its write-ahead log. `None` on
    /// PostgreSQL, whose files are the server's.
    pub fn disk_bytes(&self) -> Option<u64> {
        let Database::Sqlite(path) = self.database.as_ref() else {
            return None;
        };
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let bytes = [path.clone(), PathBuf::from(wal)]
            .iter()
            .filter_map(|file| std::fs::metadata(file).ok())
            .map(|metadata| metadata.len())
            .sum();
        Some(bytes)
    }

    /// Whether the store answers at all: a trivial statement, queued behind this
    /// process's writers, for the systemd watchdog. A database that refuses writes (disk
    /// full, I/O errors) still answers, and heals without a restart (readiness reports
    /// it); a store that hangs — a wedged writer, a file system that stopped — does not.
    /// A PostgreSQL server that is down or out of reach counts as answering: this
    /// process is not wedged, a restart would not bring the server back, and readiness
    /// reports the outage until the pool reconnects.
    pub async fn answers(&self) -> Result<()> {
        let _writer = self.writer.lock().await;
        let answered = self
            .pipeline_read(async |conn| sqlx::query("SELECT 1").execute(&mut *conn).await.map(drop))
            .await;
        match answered {
            Err(StoreError::Sql(err))
                if self.database.dialect() == Dialect::Postgres && out_of_reach(&err) =>
            {
                Ok(())
            }
            other => other,
        }
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
    conn: PoolConnection<Any>,
    /// Until `COMMIT` succeeds. A transaction dropped while open (it failed, or its task
    /// was cancelled) closes its connection, which rolls it back, instead of returning it
    /// to the pool in a state nobody knows.
    open: bool,
    /// Whether the connection's busy timeout was changed for this transaction, to be put
    /// back after it.
    busy_changed: bool,
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// What a write transaction waits for (see [`Store::row_transaction`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// Every other write: this process's writer queue and, on PostgreSQL, the
    /// cluster-wide write lock ([`dialect::WRITE_LOCK`]).
    Writes,
    /// Only the rows it touches.
    Rows,
}

impl Drop for StoreTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

/// `rows` groups of `columns` placeholders, `($1, $2), ($3, $4)`, for a multi-row
/// statement whose values are its first parameters. Only placeholders are ever spliced
/// into SQL; every value is bound.
fn values(rows: usize, columns: usize) -> String {
    values_from(1, rows, columns)
}

/// [`values`] from parameter `first` on, for a statement with parameters before them.
fn values_from(first: usize, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * (columns * 5 + 4));
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&placeholder(first + row * columns + column));
        }
        sql.push(')');
    }
    sql
}

/// Parameter `n` of a statement built at run time, in the process's dialect (see
/// [`Dialect::placeholder`]): every parameter of such a statement is written with it, in
/// order.
fn placeholder(n: usize) -> String {
    Dialect::current().placeholder(n)
}

/// A statement whose text depends on how many rows or keys it carries. Only the small
/// variants stay in the connection's statement cache: they are the common ones (a quiet
/// daemon writes one feed at a time) and cheap to keep. Large ones are prepared each time:
/// there are hundreds of them, each prepared one takes tens of KB, they would push each
/// other out of the cache, and their preparing is shared by many rows.
fn multi_row<'q>(sql: String, rows: usize) -> sqlx::query::Query<'q, Any, AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(Dialect::current().sql_owned(sql)))
        .persistent(rows <= CACHED_ROWS)
}

/// Variants of a multi-row statement up to this many rows stay in the statement cache
/// (see [`multi_row`]).
const CACHED_ROWS: usize = 16;

/// [`multi_row`] for a statement that returns rows, read as `O`.
fn multi_row_as<'q, O>(sql: String, rows: usize) -> sqlx::query::QueryAs<'q, Any, O, AnyArguments>
where
    O: for<'r> sqlx::FromRow<'r, AnyRow>,
{
    sqlx::query_as(sqlx::AssertSqlSafe(Dialect::current().sql_owned(sql)))
        .persistent(rows <= CACHED_ROWS)
}

/// A statement written for both dialects (see `dialect.rs`), as this process's reads it.
fn query(sql: &'static str) -> sqlx::query::Query<'static, Any, AnyArguments> {
    sqlx::query(Dialect::current().sql(sql))
}

/// [`query`], its rows read as `O`.
fn query_as<O>(sql: &'static str) -> sqlx::query::QueryAs<'static, Any, O, AnyArguments>
where
    O: for<'r> sqlx::FromRow<'r, AnyRow>,
{
    sqlx::query_as(Dialect::current().sql(sql))
}

/// [`query`], its rows' one column read as `O`.
fn query_scalar<O>(sql: &'static str) -> sqlx::query::QueryScalar<'static, Any, O, AnyArguments>
where
    (O,): for<'r> sqlx::FromRow<'r, AnyRow>,
{
    sqlx::query_scalar(Dialect::current().sql(sql))
}

/// Sets a SQLite connection's busy timeout: how long a statement waits for another
/// writer before failing with SQLITE_BUSY.
async fn set_busy_timeout(conn: &mut AnyConnection, busy: Duration) -> sqlx::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA busy_timeout = {}",
        busy.as_millis()
    )))
    .execute(conn)
    .await
    .map(drop)
}

/// Stores an enum as its `as_str` text, the names the migrations' columns hold.
macro_rules! text_column {
    ($ty:ident { $($variant:ident),+ $(,)? }) => {
        impl sqlx::Type<sqlx::Any> for $ty {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <str as sqlx::Type<sqlx::Any>>::type_info()
            }
            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <str as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }
        impl<'q> sqlx::Encode<'q, sqlx::Any> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Any>>::encode(self.as_str(), buf)
            }
        }
        impl<'r> sqlx::Decode<'r, sqlx::Any> for $ty {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
                [$($ty::$variant),+]
                    .into_iter()
                    .find(|known| known.as_str() == text)
                    .ok_or_else(|| format!("unknown {} `{text}`", stringify!($ty)).into())
            }
        }
    };
}
pub(crate) use text_column;

/// A 0/1 column read as a `bool`, with `#[sqlx(try_from = "Flag")]`: both dialects
/// store flags as integers.
struct Flag(i64);

impl sqlx::Type<Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<Any>>::type_info()
    }
    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <i64 as sqlx::Decode<'r, Any>>::decode(value).map(Flag)
    }
}

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0 != 0
    }
}

/// Rows per multi-row statement: SQLite binds at most 32,766 parameters, and smaller
/// statements keep the prepared-statement cache small.
const ROWS_PER_STATEMENT: usize = 200;

impl StoreTx {
    async fn commit(mut self) -> Result<()> {
        sqlx::query("COMMIT").execute(&mut *self.conn).await?;
        self.open = false;
        // The commit stands; a connection left with a short busy timeout goes.
        if self.busy_changed
            && set_busy_timeout(&mut self.conn, BUSY_TIMEOUT)
                .await
                .is_err()
        {
            self.conn.close_on_drop();
        }
        Ok(())
    }
}

impl Store {
    /// The same database opened again, as a second process (another daemon, a command)
    /// would open it.
    #[cfg(test)]
    pub(crate) async fn reopen(&self) -> Result<Store> {
        Store::open(self.database.as_ref()).await
    }

    /// A connection pool of a test's own on the database, as another process would open
    /// it, to look at rows the store has no reader for.
    #[cfg(test)]
    pub(crate) async fn outside_pool(&self) -> AnyPool {
        let options = match self.database.as_ref() {
            Database::Sqlite(path) => AnyConnectOptions::from_url(
                &sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .to_url_lossy(),
            ),
            Database::Postgres(url) => AnyConnectOptions::from_str(url),
        };
        AnyPool::connect_with(options.expect("the database's URL"))
            .await
            .expect("a pool of the test's own")
    }
}

/// A store on a new database, which lives as long as the returned guard: a SQLite file in
/// a temporary directory, or with `WIREWATCH_TEST_DATABASE=postgres` a new database on
/// the tests' PostgreSQL cluster.
#[cfg(test)]
pub(crate) async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = if crate::test_postgres::requested() {
        Database::Postgres(crate::test_postgres::fresh_database())
    } else {
        Database::Sqlite(dir.path().join("wirewatch.db"))
    };
    let store = Store::open(database).await.expect("open");
    (dir, store)
}

/// Whether a test of SQLite's own behaviour (its files, its `PRAGMA`s) should stand
/// aside: the tests run on PostgreSQL, and it has run, and passed, on SQLite already.
#[cfg(test)]
pub(crate) fn sqlite_only(what: &str) -> bool {
    let skip = crate::test_postgres::requested();
    if skip {
        eprintln!("on SQLite only, not on PostgreSQL: {what}");
    }
    skip
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    /// A new store with one feed, `wire`, and that feed's id.
    pub(super) async fn wire_store() -> (tempfile::TempDir, Store, i64) {
        let (dir, store) = temp_store().await;
        store
            .register(&[("wire", "https://wire.example/rss")], &[])
            .await
            .expect("register");
        let wire = store
            .feed_state("wire")
            .await
            .expect("read")
            .expect("row")
            .id;
        (dir, store, wire)
    }

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
        if sqlite_only("a full disk under the database file") {
            return;
        }
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
        if sqlite_only("a full disk under the database file") {
            return;
        }
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
    async fn while_postgresql_is_down_writes_fail_the_store_still_answers_and_it_reconnects() {
        if !crate::test_postgres::requested() {
            eprintln!("on PostgreSQL only (WIREWATCH_TEST_DATABASE=postgres)");
            return;
        }
        let server = crate::test_postgres::Postgres::start();
        server.create_database("outage");
        let store = Store::open(Database::Postgres(server.url("outage")))
            .await
            .expect("open");
        register_feeds(&store, 0, 2).await.expect("a write");

        server.stop();
        let err = register_feeds(&store, 1, 2)
            .await
            .expect_err("no write while the server is down");
        assert!(!err.is_about_the_data(), "{err}");
        assert!(!store.health().writable());
        store
            .answers()
            .await
            .expect("the watchdog's ping: this process is not wedged");

        // `restart` returns once the server takes connections; the pool drops the broken
        // ones (it tests each before handing it out), so the first write goes through.
        server.restart();
        register_feeds(&store, 2, 2)
            .await
            .expect("writes resume once the server is back");
        assert!(store.health().writable());
        let names = store.feed_schedules().await.expect("read");
        assert!(names.contains_key("feed-0-1") && names.contains_key("feed-2-1"));
        assert!(!names.contains_key("feed-1-0"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_write_waits_for_another_processs_transaction_only_so_long() {
        let (_dir, store) = temp_store().await;
        // Another daemon (another node on PostgreSQL) that hangs in the middle of a write.
        let other = store.reopen().await.expect("open again");
        let (inside, entered) = tokio::sync::oneshot::channel::<()>();
        let (finish, finished) = tokio::sync::oneshot::channel::<()>();
        let hung = tokio::spawn(async move {
            other
                .transaction(async |_| {
                    let _ = inside.send(());
                    let _ = finished.await;
                    Ok(())
                })
                .await
        });
        entered.await.expect("inside the other transaction");
        let waited = std::time::Instant::now();
        let write = tokio::time::timeout(
            BUSY_TIMEOUT + Duration::from_secs(10),
            register_feeds(&store, 0, 1),
        )
        .await
        .expect("the write gives up instead of waiting for ever");
        assert!(write.is_err(), "no write while another holds the lock");
        assert!(
            waited.elapsed() >= BUSY_TIMEOUT / 2,
            "{:?}",
            waited.elapsed()
        );
        let _ = finish.send(());
        hung.await
            .expect("task")
            .expect("the other transaction commits");
        register_feeds(&store, 1, 1).await.expect("writes go on");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_api_reads_while_every_pipeline_connection_is_taken() {
        let (_dir, store) = temp_store().await;
        let mut held = Vec::new();
        for _ in 0..PIPELINE_CONNECTIONS {
            held.push(store.pool.acquire().await.expect("a pipeline connection"));
        }
        let query = MatchQuery {
            limit: 10,
            ..MatchQuery::default()
        };
        let stories = StoryQuery {
            limit: 10,
            ..StoryQuery::default()
        };
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            (
                store.matches(&query).await,
                store.feed_statuses().await,
                store.pending_deliveries().await,
                store.stories(&stories).await,
            )
        })
        .await
        .expect("API reads do not wait for the pipeline's connections");
        assert!(read.0.expect("matches").is_empty());
        assert!(read.1.expect("feeds").is_empty());
        assert_eq!(read.2.expect("pending"), 0);
        assert!(read.3.expect("stories").is_empty());
        drop(held);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_transaction_dropped_half_way_leaves_nothing_and_the_next_one_works() {
        let (_dir, store) = temp_store().await;
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
