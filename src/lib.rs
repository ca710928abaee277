//! wirewatch: a news-wire monitoring daemon.
//!
//! The pipeline, one module per stage, wired together for one feed in [`refresh`]:
//!
//! ```text
//! scheduler ─► fetch ─► parse ─► dedup ─► matcher ─► commit ─► store ─► notify
//! ```
//!
//! [`scheduler`] runs the loop; [`due`] is its pure policy of when each feed is due.
//! [`refresh`] is the one junction: the only module that calls more than one stage, for a
//! refresh and for its preview without the commit (`poll --dry-run`, `test-feed`).
//! [`commit`] is the one writer: it stores many feeds' results per transaction, decides
//! which matches alert now and which wait (SPEC §11), and wakes [`notify`], whose workers
//! deliver the outbox rows it built for each alert. [`digest`] sends what waited, on each
//! watch-list's digest schedule.
//!
//! [`config`] turns the TOML file into validated types, [`cli`] holds the commands and
//! [`daemon`] runs the scheduler, the outbox workers and [`upkeep`] until a signal stops
//! them. [`clock`] is the time of day as tokio's clock sees it, so tests pause and move it.
//! [`backtest`] runs watch-lists over the stored items, sending and writing nothing.
//! [`language`] tells the language of an item from its text (SPEC §13).
//! [`article`] fetches the pages of `full_text` feeds' new items and [`extract`] finds
//! their main text (SPEC §13), on a blocking thread.

pub mod article;
pub mod backtest;
pub mod cli;
pub mod clock;
pub mod commit;
pub mod config;
pub mod console;
pub mod daemon;
pub mod dedup;
pub mod demo;
pub mod digest;
pub mod due;
pub mod extract;
pub mod fetch;
pub mod guard;
pub mod http;
pub mod language;
pub mod matcher;
pub mod metrics;
pub mod notify;
pub mod parse;
pub mod redact;
pub mod refresh;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod stories;
pub mod systemd;
pub mod telemetry;
/// The throwaway PostgreSQL cluster of the tests, shared with the integration tests.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../tests/support/postgres.rs"]
pub(crate) mod test_postgres;
pub mod upkeep;
