//! The two SQL dialects the store speaks, and every difference between them in one place.
//!
//! Statements are written once, in SQL that both SQLite and PostgreSQL read: numbered
//! placeholders (`$1`), `ON CONFLICT`, `RETURNING`, `COUNT(*) FILTER (WHERE ...)`,
//! `CAST(... AS BIGINT)`. What cannot be written once is listed here:
//!
//! - **Lists bound as one JSON array.** SQLite reads them with `json_each($N)`;
//!   PostgreSQL with `jsonb_array_elements_text` (or `jsonb_array_elements` where the
//!   statement reads pairs with `value ->> K`). [`Dialect::sql`] rewrites the first into
//!   the second.
//! - **`LIKE`** ignores ASCII case in SQLite; PostgreSQL's is `ILIKE`.
//! - **Row locks.** A claim's subquery ends in `/* FOR UPDATE SKIP LOCKED */`: a comment
//!   to SQLite (whose one writer claims alone), the clause itself to PostgreSQL, so that
//!   several nodes claiming at once each take other rows.
//! - **Write transactions.** SQLite's `BEGIN IMMEDIATE` takes its one write lock;
//!   PostgreSQL's `BEGIN` then takes [`WRITE_LOCK`], an advisory lock held to the commit,
//!   so that the commit stage's read-then-write steps (stories, rate limits, digests) run
//!   one at a time across every daemon sharing the database, as they do on SQLite. Leases
//!   (`FOR UPDATE SKIP LOCKED`) do not take it.
//! - **Errors.** SQLite reports numeric result codes, PostgreSQL SQLSTATEs.
//! - **Upkeep.** `PRAGMA`s (busy timeout, vacuum, page counts) are SQLite's alone.
//!
//! A process speaks one dialect, set by the first store it opens: a daemon or a command
//! uses one database.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Which database the store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The advisory lock a PostgreSQL write transaction holds to its end: "wirewatc" in
/// ASCII, so it cannot be mistaken for another application's.
pub const WRITE_LOCK: i64 = 0x7769_7265_7761_7463;

static DIALECT: OnceLock<Dialect> = OnceLock::new();

/// Statements already rewritten for PostgreSQL, by their text's address.
static REWRITTEN: OnceLock<Mutex<HashMap<usize, &'static str>>> = OnceLock::new();

impl Dialect {
    /// The process's dialect: the first store opened sets it; a later store of the other
    /// kind is refused.
    pub fn settle(dialect: Dialect) -> Result<(), Dialect> {
        let settled = *DIALECT.get_or_init(|| dialect);
        if settled == dialect {
            Ok(())
        } else {
            Err(settled)
        }
    }

    /// The process's dialect (SQLite until a store is opened).
    pub fn current() -> Dialect {
        DIALECT.get().copied().unwrap_or(Dialect::Sqlite)
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        }
    }

    /// `sql`, written for both, as this dialect reads it. A static statement is rewritten
    /// once per process.
    pub fn sql(self, sql: &'static str) -> &'static str {
        match self {
            Dialect::Sqlite => sql,
            Dialect::Postgres => {
                let cache = REWRITTEN.get_or_init(Default::default);
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                cache
                    .entry(sql.as_ptr() as usize)
                    .or_insert_with(|| match postgres(sql) {
                        Cow::Borrowed(same) => same,
                        // One leak per distinct statement of the program, bounded.
                        Cow::Owned(rewritten) => Box::leak(rewritten.into_boxed_str()),
                    })
            }
        }
    }

    /// [`Dialect::sql`] for a statement built at run time (a multi-row one).
    pub fn sql_owned(self, sql: String) -> String {
        match self {
            Dialect::Sqlite => sql,
            Dialect::Postgres => match postgres(&sql) {
                Cow::Borrowed(_) => sql,
                Cow::Owned(rewritten) => rewritten,
            },
        }
    }

    /// Parameter `n` of a statement built at run time (a multi-row one). SQLite's is the
    /// anonymous `?`, numbered by its place: SQLite finds a named parameter (`$N`, `?N`)
    /// by a linear search of the statement's names, so binding the thousands of a
    /// multi-row insert by name took a third of a cold poll's CPU. An anonymous one
    /// binds only in order, so a statement built with this uses it for every parameter.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// The statement that opens a write transaction.
    pub fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// Whether a database error is about the data written (a constraint, a value the
    /// database refuses) rather than the database failing.
    pub fn about_the_data(self, db: &dyn sqlx::error::DatabaseError) -> bool {
        match self {
            // SQLITE_TOOBIG, CONSTRAINT (a trigger's RAISE included), MISMATCH, RANGE.
            Dialect::Sqlite => matches!(sqlite_code(db), Some(18 | 19 | 20 | 25)),
            // Class 22 (data exception) and 23 (integrity constraint violation).
            Dialect::Postgres => {
                sqlstate(db).is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
            }
        }
    }

    /// Whether a database error says the disk is full.
    pub fn disk_full(self, db: &dyn sqlx::error::DatabaseError) -> bool {
        match self {
            Dialect::Sqlite => sqlite_code(db) == Some(SQLITE_FULL),
            Dialect::Postgres => sqlstate(db).is_some_and(|code| code == "53100"),
        }
    }

    /// Whether a database error may have left its connection unfit for reuse.
    pub fn poisons(self, db: &dyn sqlx::error::DatabaseError) -> bool {
        match self {
            // SQLITE_NOMEM, IOERR, CORRUPT, FULL, CANTOPEN, NOTADB.
            Dialect::Sqlite => matches!(sqlite_code(db), Some(7 | 10 | 11 | 13 | 14 | 26)),
            // Connection exceptions, and the server shutting down or crashing.
            Dialect::Postgres => sqlstate(db).is_some_and(|code| {
                code.starts_with("08") || code.starts_with("57P") || code == "XX000"
            }),
        }
    }
}

/// SQLITE_FULL: the disk (or the database's size limit) is full.
const SQLITE_FULL: i32 = 13;

/// SQLite's primary result code of a database error (its extended code's low byte).
fn sqlite_code(db: &dyn sqlx::error::DatabaseError) -> Option<i32> {
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .map(|code| code & 0xff)
}

fn sqlstate(db: &dyn sqlx::error::DatabaseError) -> Option<Cow<'_, str>> {
    db.code()
}

/// A statement written for both, rewritten where PostgreSQL reads it otherwise (see the
/// module's list).
fn postgres(sql: &str) -> Cow<'_, str> {
    if !sql.contains("json_each(") && !sql.contains(" LIKE ") && !sql.contains(SKIP_LOCKED) {
        return Cow::Borrowed(sql);
    }
    let elements = if sql.contains("value ->>") {
        "jsonb_array_elements"
    } else {
        "jsonb_array_elements_text"
    };
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    while let Some(at) = rest.find("json_each(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "json_each(".len()..];
        let Some(close) = after.find(')') else {
            break;
        };
        let argument = &after[..close];
        out.push_str(&format!("{elements}(CAST({argument} AS jsonb)) AS value"));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Cow::Owned(
        out.replace(" LIKE ", " ILIKE ")
            .replace(SKIP_LOCKED, "FOR UPDATE SKIP LOCKED"),
    )
}

/// Where a claim locks the rows it takes, on PostgreSQL.
const SKIP_LOCKED: &str = "/* FOR UPDATE SKIP LOCKED */";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_reads_json_lists_and_like_its_own_way() {
        assert_eq!(
            postgres(
                "DELETE FROM items WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each($1))"
            ),
            "DELETE FROM items WHERE id IN \
             (SELECT CAST(value AS BIGINT) FROM jsonb_array_elements_text(CAST($1 AS jsonb)) AS value)"
        );
        assert_eq!(
            postgres("SELECT value ->> 0, value ->> 1 FROM json_each($2) WHERE true"),
            "SELECT value ->> 0, value ->> 1 FROM jsonb_array_elements(CAST($2 AS jsonb)) AS value WHERE true"
        );
        assert_eq!(postgres("WHERE title LIKE $3"), "WHERE title ILIKE $3");
        assert_eq!(
            postgres("WHERE id IN (SELECT id FROM outbox LIMIT 3 /* FOR UPDATE SKIP LOCKED */)"),
            "WHERE id IN (SELECT id FROM outbox LIMIT 3 FOR UPDATE SKIP LOCKED)"
        );
        assert!(matches!(postgres("SELECT 1"), Cow::Borrowed(_)));
    }

    #[test]
    fn sqlite_statements_are_left_as_they_are() {
        let sql = "SELECT value FROM json_each($1) WHERE title LIKE $2";
        assert!(std::ptr::eq(Dialect::Sqlite.sql(sql), sql));
        assert_eq!(
            Dialect::Postgres.sql(sql),
            "SELECT value FROM jsonb_array_elements_text(CAST($1 AS jsonb)) AS value WHERE title ILIKE $2"
        );
    }
}
