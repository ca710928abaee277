//! PostgreSQL's migrations (`migrations/postgres/`, SPEC §17) kept in step with SQLite's
//! (`migrations/`): the same versions with the same names, and, once both are applied,
//! the same tables with the same columns (nullable or not), the same unique constraints
//! and the same named indexes. Runs on a throwaway PostgreSQL cluster
//! (`tests/support/postgres.rs`) and an SQLite file in a temporary directory.

#[allow(dead_code)]
#[path = "support/postgres.rs"]
mod postgres;

use std::collections::BTreeSet;

use sqlx::Connection as _;

/// `(table, column, not null)` of every column.
type Columns = BTreeSet<(String, String, bool)>;
/// `(table, columns joined by ",")` of every unique constraint, the primary key included.
type Uniques = BTreeSet<(String, String)>;

#[test]
fn postgres_migrations_have_the_versions_of_sqlites() {
    let names = |migrator: &sqlx::migrate::Migrator| -> Vec<(i64, String)> {
        migrator
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    };
    let sqlite = names(&sqlx::migrate!("./migrations"));
    let postgres = names(&sqlx::migrate!("./migrations/postgres"));
    assert_eq!(postgres, sqlite);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_and_sqlite_migrations_give_the_same_schema() {
    let cluster = postgres::Postgres::start();
    let mut pg = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .expect("connect to the throwaway cluster");
    sqlx::migrate!("./migrations/postgres")
        .run(&mut pg)
        .await
        .expect("PostgreSQL's migrations apply");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wirewatch.db");
    let mut lite = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::migrate!("./migrations")
        .run(&mut lite)
        .await
        .expect("SQLite's migrations apply");

    let (pg_columns, pg_uniques, pg_indexes) = postgres_schema(&mut pg).await;
    let (lite_columns, lite_uniques, lite_indexes) = sqlite_schema(&mut lite).await;
    assert!(pg_columns.len() > 50, "{pg_columns:?}");
    assert_eq!(
        difference(&pg_columns, &lite_columns),
        difference(&lite_columns, &pg_columns),
        "columns only in PostgreSQL (left) and only in SQLite (right)"
    );
    assert_eq!(pg_columns, lite_columns);
    assert_eq!(pg_uniques, lite_uniques, "unique constraints");
    assert_eq!(pg_indexes, lite_indexes, "named indexes");
}

fn difference<T: Ord + Clone>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> Vec<T> {
    a.difference(b).cloned().collect()
}

async fn postgres_schema(pg: &mut sqlx::PgConnection) -> (Columns, Uniques, BTreeSet<String>) {
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, is_nullable::text
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&mut *pg)
    .await
    .unwrap();
    let uniques: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text,
                string_agg(a.attname::text, ',' ORDER BY k.ord)
         FROM pg_constraint c
         CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
         WHERE c.contype IN ('u', 'p') AND c.connamespace = 'public'::regnamespace
           AND c.conrelid::regclass::text NOT LIKE '\\_sqlx%'
         GROUP BY c.oid, c.conrelid",
    )
    .fetch_all(&mut *pg)
    .await
    .unwrap();
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT i.indexname::text FROM pg_indexes i
         WHERE i.schemaname = 'public'
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
    )
    .fetch_all(&mut *pg)
    .await
    .unwrap();
    (
        columns
            .into_iter()
            .map(|(t, c, nullable)| (t, c, nullable == "NO"))
            .collect(),
        uniques.into_iter().collect(),
        indexes.into_iter().map(|(name,)| name).collect(),
    )
}

async fn sqlite_schema(lite: &mut sqlx::SqliteConnection) -> (Columns, Uniques, BTreeSet<String>) {
    // A primary key column is not null whatever SQLite records (a rowid alias, or a key
    // that the store never writes NULL to).
    let columns: Vec<(String, String, bool, i64)> = sqlx::query_as(
        "SELECT m.name, p.name, p.\"notnull\", p.pk
         FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\'
           AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )
    .fetch_all(&mut *lite)
    .await
    .unwrap();
    let uniques: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, (SELECT group_concat(name, ',') FROM
                           (SELECT ii.name FROM pragma_index_info(l.name) ii ORDER BY ii.seqno))
         FROM sqlite_master m, pragma_index_list(m.name) l
         WHERE m.type = 'table' AND l.origin IN ('u', 'pk') AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
    )
    .fetch_all(&mut *lite)
    .await
    .unwrap();
    // A rowid alias (`INTEGER PRIMARY KEY`) has no index of its own: its key is the column.
    let rowid_keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND p.pk = 1 AND p.type = 'INTEGER'
           AND (SELECT COUNT(*) FROM pragma_table_info(m.name) WHERE pk > 0) = 1
           AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )
    .fetch_all(&mut *lite)
    .await
    .unwrap();
    let indexes: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .fetch_all(&mut *lite)
            .await
            .unwrap();
    (
        columns
            .into_iter()
            .map(|(t, c, not_null, pk)| (t, c, not_null || pk > 0))
            .collect(),
        uniques.into_iter().chain(rowid_keys).collect(),
        indexes.into_iter().map(|(name,)| name).collect(),
    )
}
