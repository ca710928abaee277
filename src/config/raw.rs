//! The configuration as written: plain serde structs, one per table. They keep the
//! position of every value (`toml::Spanned`, shortened to [`S`]) so that each problem can
//! name its line and column, and refuse unknown keys so that a misspelt setting is an
//! error rather than a silent default. Nothing here is validated: the other modules of
//! [`super`] build the [`super::Config`] from these.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub(super) type S<T> = Spanned<T>;

/// The whole file. `F` is what `feeds` is read as: [`super::chunked`] reads the file
/// without its `[[feeds]]` entries with `F` only noting whether `feeds` appears at all.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig<F = Vec<RawFeed>> {
    #[serde(default)]
    pub(super) daemon: RawDaemon,
    #[serde(default)]
    pub(super) poll: RawPoll,
    #[serde(default)]
    pub(super) feeds: F,
    #[serde(default)]
    pub(super) opml: Vec<RawOpml>,
    #[serde(default)]
    pub(super) watchlists: Vec<RawWatchlist>,
    #[serde(default)]
    pub(super) webhooks: Vec<RawWebhook>,
    #[serde(default)]
    pub(super) retention: RawRetention,
    #[serde(default)]
    pub(super) stories: RawStories,
    #[serde(default)]
    pub(super) cluster: RawCluster,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub(super) state_dir: Option<S<String>>,
    pub(super) database: Option<S<String>>,
    pub(super) database_url_file: Option<S<String>>,
    pub(super) database_url_env: Option<S<String>>,
    pub(super) listen: Option<S<String>>,
    pub(super) log_format: Option<S<String>>,
    pub(super) api_token_file: Option<S<String>>,
    pub(super) api_token_env: Option<S<String>>,
}

/// `[cluster]`: this daemon among several on one PostgreSQL database (SPEC §17).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) node: Option<S<String>>,
    pub(super) lease: Option<S<String>>,
}

/// `[retention]`: how long rows are kept (SPEC §14).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    pub(super) items: Option<S<String>>,
    pub(super) matches: Option<S<String>>,
    pub(super) deliveries: Option<S<String>>,
}

/// `[stories]`: how near-identical items group into one story (SPEC §10).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStories {
    pub(super) window: Option<S<String>>,
    pub(super) threshold: Option<S<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPoll {
    pub(super) schedule: Option<S<String>>,
    pub(super) jitter: Option<S<String>>,
    pub(super) concurrency: Option<S<i64>>,
    pub(super) per_host: Option<S<i64>>,
    pub(super) timeout: Option<S<String>>,
    pub(super) max_body: Option<S<String>>,
    pub(super) backfill: Option<S<String>>,
    pub(super) backoff_base: Option<S<String>>,
    pub(super) backoff_max: Option<S<String>>,
    pub(super) allow_private_networks: Option<bool>,
    pub(super) user_agent: Option<S<String>>,
    pub(super) article_concurrency: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeed {
    pub(super) name: Option<S<String>>,
    pub(super) url: S<String>,
    pub(super) schedule: Option<S<String>>,
    #[serde(default)]
    pub(super) tags: Vec<S<String>>,
    #[serde(default)]
    pub(super) redact_params: Vec<S<String>>,
    pub(super) full_text: Option<bool>,
}

/// `[[opml]]`: feeds from an OPML subscription list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOpml {
    pub(super) path: S<String>,
    #[serde(default)]
    pub(super) tags: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatchlist {
    pub(super) name: S<String>,
    pub(super) terms: S<Vec<S<String>>>,
    #[serde(default)]
    pub(super) aliases: BTreeMap<String, S<Vec<S<String>>>>,
    pub(super) query: Option<S<String>>,
    #[serde(default)]
    pub(super) exclude: Vec<S<String>>,
    pub(super) fields: Option<S<Vec<S<String>>>>,
    pub(super) feeds: Option<Vec<S<String>>>,
    #[serde(default)]
    pub(super) webhooks: Vec<S<String>>,
    pub(super) acronyms_exact: Option<bool>,
    pub(super) escalate: Option<S<Vec<S<i64>>>>,
    pub(super) digest: Option<S<String>>,
    pub(super) max_alerts: Option<S<String>>,
    pub(super) languages: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) name: S<String>,
    pub(super) url: S<String>,
    pub(super) format: Option<S<String>>,
    pub(super) secret: Option<S<String>>,
    pub(super) secret_file: Option<S<String>>,
    pub(super) secret_env: Option<S<String>>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, S<String>>,
    #[serde(default)]
    pub(super) headers_file: BTreeMap<String, S<String>>,
    #[serde(default)]
    pub(super) headers_env: BTreeMap<String, S<String>>,
    pub(super) timeout: Option<S<String>>,
    pub(super) retry_schedule: Option<S<Vec<S<String>>>>,
    pub(super) allow_private_network: Option<bool>,
}
