//! wirewatch: a news-wire monitoring daemon.
//!
//! The pipeline, one module per stage, wired together for one feed in [`refresh`]:
//!
//! ```text
//! schedule ─► fetch ─► parse ─► dedup ─► matcher ─► commit ─► store ─► notify
//! ```
//!
//! [`commit`] is the one writer: it stores many feeds' results per transaction.
//!
//! [`config`] turns the TOML file into validated types, [`cli`] holds the commands and
//! [`daemon`] runs the scheduler and the outbox worker until a signal stops them.

pub mod cli;
pub mod clock;
pub mod commit;
pub mod config;
pub mod daemon;
pub mod dedup;
pub mod demo;
pub mod due;
pub mod fetch;
pub mod guard;
pub mod http;
pub mod matcher;
pub mod metrics;
pub mod notify;
pub mod parse;
pub mod redact;
pub mod refresh;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod upkeep;
