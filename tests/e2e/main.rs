//! End-to-end tests: the real `wirewatch` binary against feed servers and webhook
//! receivers started on 127.0.0.1 by the tests, with a real SQLite file in a temp dir,
//! or with `WIREWATCH_TEST_DATABASE=postgres` a new database on a throwaway PostgreSQL
//! cluster (`scripts/test` runs the main ones both ways). `cluster` runs several daemons
//! on one PostgreSQL database.

mod backtest;
mod batch;
mod check;
mod cluster;
mod console;
mod crash;
mod credentials;
mod delivery;
mod demo;
mod fulltext;
mod guard;
mod helpers;
mod hostile;
mod listener;
mod listings;
mod metrics;
mod opml;
mod outage;
mod output;
mod pipeline;
mod policy;
mod polite;
#[allow(dead_code)]
#[path = "../support/postgres.rs"]
mod postgres;
mod reload;
mod service;
mod storage;
mod stories;
