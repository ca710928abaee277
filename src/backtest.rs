//! Backtests (SPEC §12): what a watch-list would have alerted on among the items already
//! stored, as currently configured and as a candidate definition, and how the two differ.
//! Nothing is sent or written.
//!
//! Input: the store, the configuration (for its feeds), a candidate [`Definition`] and
//! the current one if the watch-list is configured, and a window start. Output: a
//! [`Report`], the JSON document of SPEC §12, which `wirewatch backtest --json` prints and
//! `POST /api/v1/backtest` answers.
//!
//! How: ONE matcher is compiled from both definitions (`[candidate, current]`), so each
//! item's text is folded and searched once for both. The store reads the items of the
//! window in pages, in one read transaction on a read-only connection
//! ([`Store::scan_items`]): one snapshot, while the daemon goes on writing. The pages go
//! round-robin to one matching thread per core as they are read, so reading and matching
//! overlap. A feed is in scope for a definition when its selector watches it: stored feed
//! rows map to the configuration's feeds by name, and items of a feed no longer
//! configured count only for a definition without a `feeds` selector.
//!
//! Stories are de-duplicated as the commit stage does it: a story alerts once, on its
//! first matching item in the order `first_seen_at, id`. The stories are the stored ones:
//! an item's story is what the commit stage made of it, and a story whose earlier items
//! fell before the window is judged on its items within it. Mutes, rate limits, digests
//! and backfill do not enter a backtest: it answers what the definition matches.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Watchlist};
use crate::matcher::{CompileError, Document, Field, Matcher, WatchlistSpec};
use crate::store::{ScanSink, ScannedItem, Store, StoreError, StoredFeed};

/// How far back a backtest looks when not told: `--since 30d`.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Pages waiting for each matching thread: enough that the reader never waits for a
/// thread between two pages, few enough to bound what is held.
const PAGES_IN_FLIGHT: usize = 2;

/// The most matching threads, whatever the machine.
const MAX_THREADS: usize = 8;

/// A watch-list definition to run: what it matches, which feeds it watches and which
/// languages it reads.
#[derive(Debug, Clone)]
pub struct Definition {
    pub spec: WatchlistSpec,
    /// Indices into [`Config::feeds`]; `None` watches every feed, those no longer
    /// configured included.
    pub feeds: Option<HashSet<usize>>,
    /// ISO 639-1 codes of the items it reads (their stored detected language); empty for
    /// all.
    pub languages: Vec<String>,
}

impl Definition {
    /// A configured watch-list's definition.
    pub fn of(watchlist: &Watchlist) -> Definition {
        Definition {
            spec: watchlist.spec.clone(),
            feeds: watchlist.feeds.clone(),
            languages: watchlist.languages.clone(),
        }
    }
}

/// What to run: the candidate, the configured definition to compare it with (`None` when
/// no watch-list of that name is configured: every story the candidate alerts on is
/// added), and the window's start in Unix seconds.
#[derive(Debug, Clone)]
pub struct Backtest {
    pub candidate: Definition,
    pub current: Option<Definition>,
    pub since: i64,
}

/// The result of a backtest: the document of SPEC §12.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The candidate's name.
    pub watchlist: String,
    /// The window's start, as RFC 3339 UTC.
    #[serde(serialize_with = "unix_rfc3339")]
    pub since: i64,
    /// Items of the window from the feeds the candidate watches: what it was run over.
    pub items_scanned: u64,
    /// The stories the candidate alerts on, each with the item it alerts on, oldest first.
    pub would_alert: Vec<Alert>,
    pub diff: Diff,
    /// Per term of the candidate (and per query word that hit): how many of the items it
    /// matched that term hit.
    pub terms: BTreeMap<String, u64>,
    /// Per exclude of the candidate: how many items whose terms hit it vetoed.
    pub excluded: BTreeMap<String, u64>,
    /// How many stories the configured definition alerts on; `None` when none is
    /// configured. For the text rendering only.
    #[serde(skip)]
    pub configured: Option<usize>,
}

/// The stories on which the candidate and the configured definition disagree.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    /// Stories the candidate alerts on and the configured definition does not (the
    /// candidate's item).
    pub added: Vec<Alert>,
    /// Stories the configured definition alerts on and the candidate does not (the
    /// configured definition's item).
    pub removed: Vec<Alert>,
}

/// A story a definition would alert on, with the item it would alert on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// The story's id, as `wirewatch stories --json` and alert payloads carry it.
    pub story: String,
    pub title: String,
    pub url: Option<String>,
    /// The terms that hit the item, as alerts report them.
    pub terms: Vec<String>,
    /// When the item was first seen. For the text rendering only.
    #[serde(skip)]
    pub seen_at: i64,
}

/// Why a backtest did not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The candidate does not compile (only the API's candidates can: the CLI's went
    /// through the configuration's validation).
    #[error("the watch-list does not compile: {}", compile_messages(.0).join("; "))]
    Invalid(Vec<CompileError>),
    #[error("cannot read the stored items")]
    Store(#[source] StoreError),
    #[error("a matching thread failed: {0}")]
    Thread(String),
}

fn compile_messages(errors: &[CompileError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

impl BacktestError {
    /// The compile errors of an invalid candidate, each as a message.
    pub fn problems(&self) -> Vec<String> {
        match self {
            BacktestError::Invalid(errors) => compile_messages(errors),
            _ => Vec::new(),
        }
    }
}

/// The index of each definition in the matcher, and its bit in a feed's scope.
const CANDIDATE: usize = 0;
const CURRENT: usize = 1;

/// Which definitions watch each stored feed, as bits (`1 << CANDIDATE`, `1 << CURRENT`).
struct Scopes {
    by_feed: HashMap<i64, u8>,
    /// For an item whose feed row is not known: the definitions without a selector.
    unconfigured: u8,
    /// Each definition's `languages`, by its index.
    languages: [Vec<String>; 2],
}

impl Scopes {
    fn new(config: &Config, backtest: &Backtest, feeds: &[StoredFeed]) -> Scopes {
        let definitions = [Some(&backtest.candidate), backtest.current.as_ref()];
        let bits = |watches: &dyn Fn(&Definition) -> bool| {
            definitions
                .iter()
                .enumerate()
                .filter(|(_, d)| d.is_some_and(watches))
                .fold(0u8, |bits, (index, _)| bits | 1 << index)
        };
        let unconfigured = bits(&|d| d.feeds.is_none());
        let by_feed = feeds
            .iter()
            .map(|feed| {
                let scope = match config.feed_index(&feed.name) {
                    Some(index) => bits(&|d| d.feeds.as_ref().is_none_or(|s| s.contains(&index))),
                    None => unconfigured,
                };
                (feed.id, scope)
            })
            .collect();
        let languages = |d: Option<&Definition>| d.map(|d| d.languages.clone()).unwrap_or_default();
        Scopes {
            by_feed,
            unconfigured,
            languages: [
                languages(Some(&backtest.candidate)),
                languages(backtest.current.as_ref()),
            ],
        }
    }

    /// Whether definition `index` reads an item in `language`.
    fn reads(&self, index: usize, language: Option<&str>) -> bool {
        self.languages
            .get(index)
            .is_some_and(|codes| crate::config::reads_language(codes, language))
    }

    fn of(&self, feed_id: i64) -> u8 {
        self.by_feed
            .get(&feed_id)
            .copied()
            .unwrap_or(self.unconfigured)
    }
}

/// An item at least one definition matched.
struct Hit {
    first_seen_at: i64,
    id: i64,
    story: i64,
    title: String,
    url: Option<String>,
    /// The terms of each definition's match, when it matched.
    candidate: Option<Vec<String>>,
    current: Option<Vec<String>>,
}

/// What one matching thread found in the pages it was given.
#[derive(Default)]
struct Found {
    scanned: u64,
    hits: Vec<Hit>,
    excluded: HashMap<String, u64>,
}

impl Found {
    fn page(&mut self, matcher: &Matcher, scopes: &Scopes, items: Vec<ScannedItem>) {
        for item in items {
            let scope = scopes.of(item.feed_id);
            if scope == 0 {
                continue;
            }
            if scope & 1 << CANDIDATE != 0 {
                self.scanned += 1;
            }
            let doc = Document {
                title: &item.title,
                summary: &item.summary,
                content: &item.content,
                categories: &item.categories,
                article: &item.article,
            };
            let language = item.language.as_deref();
            let wanted = |list: usize| scope & 1 << list != 0 && scopes.reads(list, language);
            let examined = matcher.examine(&doc, &wanted, false);
            for miss in examined.misses {
                if miss.watchlist == CANDIDATE {
                    for term in miss.excluded {
                        *self.excluded.entry(term).or_default() += 1;
                    }
                }
            }
            let (mut candidate, mut current) = (None, None);
            for found in examined.matches {
                match found.watchlist {
                    CANDIDATE => candidate = Some(found.terms),
                    CURRENT => current = Some(found.terms),
                    _ => {}
                }
            }
            if candidate.is_some() || current.is_some() {
                self.hits.push(Hit {
                    first_seen_at: item.first_seen_at,
                    id: item.id,
                    story: item.story_id,
                    title: item.title,
                    url: item.url,
                    candidate,
                    current,
                });
            }
        }
    }
}

/// A page of items for a matching thread, with the scopes to read it by.
type Page = (Arc<Scopes>, Vec<ScannedItem>);

/// Hands the pages the store reads to the matching threads, in turn.
struct Dispatch<'a> {
    config: &'a Config,
    backtest: &'a Backtest,
    /// Known once the store has read its feeds, before any item.
    scopes: Option<Arc<Scopes>>,
    senders: Vec<tokio::sync::mpsc::Sender<Page>>,
    next: usize,
}

impl ScanSink for Dispatch<'_> {
    fn feeds(&mut self, feeds: Vec<StoredFeed>) {
        self.scopes = Some(Arc::new(Scopes::new(self.config, self.backtest, &feeds)));
    }

    async fn page(&mut self, items: Vec<ScannedItem>) -> bool {
        let Some(scopes) = &self.scopes else {
            return false;
        };
        let Some(send) = self.senders.get(self.next % self.senders.len().max(1)) else {
            return false;
        };
        self.next += 1;
        send.send((scopes.clone(), items)).await.is_ok()
    }
}

/// Runs `backtest` over the items stored since `backtest.since` (see the module docs).
pub async fn run(
    store: &Store,
    config: &Config,
    backtest: &Backtest,
) -> Result<Report, BacktestError> {
    // Nothing was stored before 1970; a window reaching further back is the whole store.
    let since = backtest.since.max(0);
    let mut specs = vec![backtest.candidate.spec.clone()];
    specs.extend(backtest.current.as_ref().map(|d| d.spec.clone()));
    let matcher = Arc::new(Matcher::compile(&specs).map_err(BacktestError::Invalid)?);

    let threads = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(1, MAX_THREADS);
    let mut senders = Vec::with_capacity(threads);
    let mut workers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let (send, mut pages) = tokio::sync::mpsc::channel::<Page>(PAGES_IN_FLIGHT);
        let matcher = matcher.clone();
        senders.push(send);
        workers.push(tokio::task::spawn_blocking(move || {
            let mut found = Found::default();
            while let Some((scopes, page)) = pages.blocking_recv() {
                found.page(&matcher, &scopes, page);
            }
            found
        }));
    }

    let mut dispatch = Dispatch {
        config,
        backtest,
        scopes: None,
        senders,
        next: 0,
    };
    let scanned = store.scan_items(since, &mut dispatch).await;
    // The threads finish the pages they hold, then see their channel closed.
    drop(dispatch);
    let mut found = Vec::with_capacity(threads);
    for worker in workers {
        found.push(
            worker
                .await
                .map_err(|err| BacktestError::Thread(err.to_string()))?,
        );
    }
    scanned.map_err(BacktestError::Store)?;
    Ok(report(backtest, since, found))
}

/// Puts the threads' findings together: the alerts of each definition in first-seen
/// order, one per story, their diff, and the counts.
fn report(backtest: &Backtest, since: i64, found: Vec<Found>) -> Report {
    let candidate = &backtest.candidate.spec;
    let mut items_scanned = 0;
    let mut hits = Vec::new();
    let mut excluded: BTreeMap<String, u64> =
        candidate.exclude.iter().map(|e| (e.clone(), 0)).collect();
    for part in found {
        items_scanned += part.scanned;
        hits.extend(part.hits);
        for (term, count) in part.excluded {
            *excluded.entry(term).or_default() += count;
        }
    }
    hits.sort_unstable_by_key(|hit| (hit.first_seen_at, hit.id));

    let mut terms: BTreeMap<String, u64> = candidate.terms.iter().map(|t| (t.clone(), 0)).collect();
    // Each definition's alerts, by story: its first matching item.
    let (mut would_alert, mut configured) = (Vec::new(), Vec::new());
    let (mut alerted, mut configured_alerted) = (HashSet::new(), HashSet::new());
    for hit in &hits {
        let alert = |terms: &[String]| Alert {
            story: hit.story.to_string(),
            title: hit.title.clone(),
            url: hit.url.clone(),
            terms: terms.to_vec(),
            seen_at: hit.first_seen_at,
        };
        if let Some(matched) = &hit.candidate {
            for term in matched {
                *terms.entry(term.clone()).or_default() += 1;
            }
            if alerted.insert(hit.story) {
                would_alert.push((hit.story, alert(matched)));
            }
        }
        if let Some(matched) = &hit.current
            && configured_alerted.insert(hit.story)
        {
            configured.push((hit.story, alert(matched)));
        }
    }
    let only = |alerts: &[(i64, Alert)], not_in: &HashSet<i64>| -> Vec<Alert> {
        alerts
            .iter()
            .filter(|(story, _)| !not_in.contains(story))
            .map(|(_, alert)| alert.clone())
            .collect()
    };
    let diff = Diff {
        added: only(&would_alert, &configured_alerted),
        removed: only(&configured, &alerted),
    };
    Report {
        watchlist: candidate.name.clone(),
        since,
        items_scanned,
        would_alert: would_alert.into_iter().map(|(_, alert)| alert).collect(),
        diff,
        terms,
        excluded,
        configured: backtest.current.as_ref().map(|_| configured.len()),
    }
}

/// Unix seconds as RFC 3339 UTC with a `Z`, as alert payloads write times.
fn unix_rfc3339<S: serde::Serializer>(at: &i64, out: S) -> Result<S::Ok, S::Error> {
    match DateTime::from_timestamp(*at, 0) {
        Some(at) => out.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        None => Err(serde::ser::Error::custom(format!(
            "the time {at} is out of range"
        ))),
    }
}

/// The body of `POST /api/v1/backtest`: a watch-list definition and how far back to run
/// it (a duration like `7d`, or an RFC 3339 time; [`DEFAULT_SINCE`] when left out).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub watchlist: DefinitionText,
    pub since: Option<String>,
    /// The configured watch-list to compare with; absent, the one of the definition's name.
    pub compare: Option<String>,
}

/// A watch-list definition as JSON: the keys of `[[watchlists]]` that decide what
/// matches. Which feeds it watches is the configured watch-list's choice.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionText {
    pub name: String,
    pub terms: Vec<String>,
    #[serde(default)]
    pub aliases: BTreeMap<String, Vec<String>>,
    pub query: Option<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub fields: Option<Vec<String>>,
    pub acronyms_exact: Option<bool>,
    /// Absent: the configured watch-list's, like its feeds; `[]` for every language.
    pub languages: Option<Vec<String>>,
}

impl DefinitionText {
    /// The definition, watching the feeds of `configured` (the configured watch-list of
    /// its name, if any) and reading its languages unless it names its own; the problems
    /// of its name, fields and languages (its terms and query are checked when it is
    /// compiled, by [`run`]).
    pub fn into_definition(
        self,
        configured: Option<&Watchlist>,
    ) -> Result<Definition, Vec<String>> {
        let mut problems = Vec::new();
        let name = self.name.trim().to_string();
        if name.is_empty() {
            problems.push("the watch-list's name is empty".to_string());
        }
        let mut fields = Vec::new();
        if let Some(names) = &self.fields {
            if names.is_empty() {
                problems.push("fields is empty: leave it out to search all four".to_string());
            }
            for field in names {
                match Field::parse(field) {
                    Some(f) => fields.push(f),
                    None => problems.push(format!(
                        "field `{field}` is unknown: expected title, summary, content, categories or article"
                    )),
                }
            }
        }
        let languages = match self.languages {
            Some(codes) => codes,
            None => configured.map(|w| w.languages.clone()).unwrap_or_default(),
        };
        for code in &languages {
            if !crate::language::is_iso639_1(code) {
                problems.push(format!(
                    "language `{code}` is not an ISO 639-1 code like \"en\", \"fa\" or \"zh\""
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let spec = WatchlistSpec {
            name,
            terms: self.terms,
            aliases: self.aliases.into_iter().collect(),
            query: self.query,
            exclude: self.exclude,
            fields,
            acronyms_exact: self.acronyms_exact.unwrap_or(true),
        };
        Ok(Definition {
            spec,
            feeds: configured.and_then(|w| w.feeds.clone()),
            languages,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::{ItemRow, NewItem};

    /// Three configured feeds (`wire` and `mirror` tagged `asia`, `agency`), and a
    /// watch-list on the first two.
    const CONFIG: &str = r#"
[[feeds]]
name = "wire"
url = "https://wire.example/rss"
tags = ["asia"]

[[feeds]]
name = "mirror"
url = "https://mirror.example/rss"
tags = ["asia"]

[[feeds]]
name = "agency"
url = "https://agency.example/rss"

[[watchlists]]
name = "iran-china"
terms = ["Iran", "China"]
exclude = ["football"]
feeds = ["tag:asia"]
"#;

    /// A store on a new database holding the configuration's feeds and `gone`, a feed
    /// stored by an earlier configuration.
    struct Db {
        _dir: tempfile::TempDir,
        store: Store,
        config: Config,
    }

    impl Db {
        async fn new() -> Db {
            let (dir, store) = crate::store::temp_store().await;
            let config =
                Config::from_source(&dir.path().join("wirewatch.toml"), CONFIG).expect("config");
            let mut feeds: Vec<(&str, &str)> = config
                .feeds
                .iter()
                .map(|f| (f.name.as_str(), f.url.as_str()))
                .collect();
            feeds.push(("gone", "https://gone.example/rss"));
            store.register(&feeds, &[]).await.expect("register");
            Db {
                _dir: dir,
                store,
                config,
            }
        }

        async fn feed_id(&self, name: &str) -> i64 {
            self.store
                .feed_state(name)
                .await
                .expect("read")
                .expect("registered")
                .id
        }

        /// Stores an item of `feed` first seen at `at`, as the commit stage writes one:
        /// in `story`, or a story of its own. Returns its story.
        async fn item(&self, feed: &str, story: Option<i64>, title: &str, at: i64) -> i64 {
            self.item_in(feed, story, title, at, None).await
        }

        /// [`Db::item`], stored with a detected `language`.
        async fn item_in(
            &self,
            feed: &str,
            story: Option<i64>,
            title: &str,
            at: i64,
            language: Option<&str>,
        ) -> i64 {
            let feed_id = self.feed_id(feed).await;
            let key = format!("{feed}-{title}-{at}");
            let url = format!("https://{feed}.example/{at}");
            self.store
                .transaction(async |tx| {
                    let story = match story {
                        Some(story) => story,
                        None => {
                            let id = tx.last_story_id().await? + 1;
                            tx.insert_stories(&[id], at).await?;
                            id
                        }
                    };
                    let row = ItemRow {
                        feed_id,
                        story_id: story,
                        item: NewItem {
                            item_key: &key,
                            title,
                            url: Some(&url),
                            summary: "Wire copy.",
                            language,
                            ..NewItem::default()
                        },
                        ..ItemRow::default()
                    };
                    tx.insert_items(&[row], at).await?;
                    Ok(story)
                })
                .await
                .expect("stored")
        }

        fn configured(&self) -> Definition {
            Definition::of(self.config.watchlist("iran-china").expect("configured"))
        }

        async fn run(&self, candidate: Definition, since: i64) -> Report {
            let backtest = Backtest {
                candidate,
                current: Some(self.configured()),
                since,
            };
            run(&self.store, &self.config, &backtest)
                .await
                .expect("backtest")
        }
    }

    /// The configured watch-list with other terms and excludes, on the same feeds.
    fn candidate(db: &Db, terms: &[&str], exclude: &[&str]) -> Definition {
        let mut definition = db.configured();
        definition.spec.terms = terms.iter().map(|t| t.to_string()).collect();
        definition.spec.exclude = exclude.iter().map(|t| t.to_string()).collect();
        definition
    }

    fn titles(alerts: &[Alert]) -> Vec<&str> {
        alerts.iter().map(|a| a.title.as_str()).collect()
    }

    #[tokio::test]
    async fn a_story_alerts_once_on_its_first_matching_item_in_first_seen_order() {
        let db = Db::new().await;
        let pact = db
            .item("wire", None, "Iran and China sign a pact", 200)
            .await;
        db.item("mirror", Some(pact), "Iran, China sign pact", 300)
            .await;
        // Stored later, first seen earlier (a clock set back): the story's first item.
        db.item("mirror", Some(pact), "UPDATE 1-Iran pact", 150)
            .await;
        let talks = db.item("wire", None, "Weather in Tehran", 100).await;
        db.item("mirror", Some(talks), "Iran talks resume", 400)
            .await;

        let report = db.run(db.configured(), 0).await;

        assert_eq!(
            titles(&report.would_alert),
            ["UPDATE 1-Iran pact", "Iran talks resume"]
        );
        assert_eq!(report.would_alert[0].story, pact.to_string());
        assert_eq!(report.would_alert[0].seen_at, 150);
        assert_eq!(report.would_alert[1].terms, ["Iran"]);
        assert_eq!(
            report.would_alert[1].url.as_deref(),
            Some("https://mirror.example/400")
        );
        assert!(report.diff.added.is_empty() && report.diff.removed.is_empty());
        assert_eq!(report.items_scanned, 5);
        assert_eq!(report.configured, Some(2));
    }

    #[tokio::test]
    async fn only_items_of_the_window_and_of_the_feeds_a_definition_watches_count() {
        let db = Db::new().await;
        db.item("wire", None, "Iran before the window", 50).await;
        db.item("wire", None, "Iran on the wire", 100).await;
        db.item("agency", None, "Iran at the agency", 110).await;
        db.item("gone", None, "Iran in a feed no longer configured", 120)
            .await;

        let watched = db.run(db.configured(), 100).await;
        assert_eq!(titles(&watched.would_alert), ["Iran on the wire"]);
        assert_eq!(watched.items_scanned, 1);

        let everywhere = Definition {
            feeds: None,
            ..db.configured()
        };
        let all = db.run(everywhere, 100).await;
        assert_eq!(
            titles(&all.would_alert),
            [
                "Iran on the wire",
                "Iran at the agency",
                "Iran in a feed no longer configured"
            ]
        );
        assert_eq!(all.items_scanned, 3);
        assert_eq!(
            titles(&all.diff.added),
            ["Iran at the agency", "Iran in a feed no longer configured"]
        );

        let agency_only = Definition {
            feeds: Some([2].into_iter().collect()),
            ..db.configured()
        };
        let agency = db.run(agency_only, 0).await;
        assert_eq!(titles(&agency.would_alert), ["Iran at the agency"]);
        assert_eq!(
            titles(&agency.diff.removed),
            ["Iran before the window", "Iran on the wire"],
            "a feed no longer configured counts for no selector"
        );
    }

    #[tokio::test]
    async fn terms_count_the_matched_items_each_hit_and_excludes_the_items_each_vetoed() {
        let db = Db::new().await;
        let story = db.item("wire", None, "Iran and China trade", 100).await;
        db.item("mirror", Some(story), "Iran, China trade", 110)
            .await;
        db.item("wire", None, "Iran beat China at football", 120)
            .await;
        db.item("wire", None, "Iran football and cricket results", 130)
            .await;
        db.item("wire", None, "Football and cricket without a term", 140)
            .await;
        db.item("mirror", None, "China opens a port", 150).await;

        let report = db
            .run(
                candidate(&db, &["Iran", "China", "SCO"], &["football", "cricket"]),
                0,
            )
            .await;

        assert_eq!(
            report.terms,
            [("China", 3), ("Iran", 2), ("SCO", 0)]
                .into_iter()
                .map(|(t, n)| (t.to_string(), n))
                .collect(),
            "every matched item counts, not only the alerting ones"
        );
        assert_eq!(
            report.excluded,
            [("cricket", 1), ("football", 2)]
                .into_iter()
                .map(|(t, n)| (t.to_string(), n))
                .collect(),
            "only items whose terms hit"
        );
        assert_eq!(report.items_scanned, 6);
    }

    #[tokio::test]
    async fn the_diff_lists_stories_the_candidate_adds_and_the_ones_it_removes() {
        let db = Db::new().await;
        let pact = db
            .item("wire", None, "Iran and China sign a pact", 100)
            .await;
        db.item("wire", None, "China opens a port", 200).await;
        db.item("mirror", None, "SCO summit opens", 300).await;
        // Both alert on this story, each on its own first item: not a difference.
        db.item("mirror", Some(pact), "SCO backs the Iran pact", 50)
            .await;
        db.item("wire", None, "Shanghai Cooperation Organisation meets", 400)
            .await;

        let mut sco = candidate(&db, &["Iran", "SCO"], &[]);
        sco.spec.aliases = vec![(
            "SCO".to_string(),
            vec!["Shanghai Cooperation Organisation".to_string()],
        )];
        let report = db.run(sco, 0).await;

        assert_eq!(
            titles(&report.would_alert),
            [
                "SCO backs the Iran pact",
                "SCO summit opens",
                "Shanghai Cooperation Organisation meets"
            ]
        );
        assert_eq!(
            titles(&report.diff.added),
            [
                "SCO summit opens",
                "Shanghai Cooperation Organisation meets"
            ]
        );
        assert_eq!(report.diff.added[1].terms, ["SCO"]);
        assert_eq!(titles(&report.diff.removed), ["China opens a port"]);
        assert_eq!(report.diff.removed[0].terms, ["China"]);
        assert_eq!(report.configured, Some(2));
    }

    #[tokio::test]
    async fn without_a_configured_watchlist_every_story_is_added() {
        let db = Db::new().await;
        db.item("agency", None, "Iran and China sign a pact", 100)
            .await;
        let mut new = candidate(&db, &["China"], &[]);
        new.spec.name = "china".to_string();
        new.feeds = None;
        let backtest = Backtest {
            candidate: new,
            current: None,
            since: 0,
        };

        let report = run(&db.store, &db.config, &backtest).await.expect("run");

        assert_eq!(report.watchlist, "china");
        assert_eq!(titles(&report.diff.added), ["Iran and China sign a pact"]);
        assert!(report.diff.removed.is_empty());
        assert_eq!(report.configured, None);
    }

    #[tokio::test]
    async fn a_languages_filter_reads_only_items_stored_in_those_languages() {
        let db = Db::new().await;
        db.item_in("wire", None, "Iran talks resume", 100, Some("en"))
            .await;
        db.item_in("wire", None, "Iran in Persian copy", 200, Some("fa"))
            .await;
        db.item_in("wire", None, "Iran, language unknown", 300, None)
            .await;
        let mut persian = candidate(&db, &["Iran"], &[]);
        persian.languages = vec!["fa".into()];
        let report = db.run(persian, 0).await;
        assert_eq!(titles(&report.would_alert), ["Iran in Persian copy"]);
        assert_eq!(
            report.items_scanned, 3,
            "every item of the window is scanned"
        );
        assert_eq!(
            titles(&report.diff.removed),
            ["Iran talks resume", "Iran, language unknown"],
            "the configured watch-list reads every language"
        );

        // Configured with `languages`, the watch-list reads only those; a posted definition
        // without `languages` reads what the configured one reads, and `[]` reads all.
        let mut configured = db
            .config
            .watchlist("iran-china")
            .expect("configured")
            .clone();
        configured.languages = vec!["en".into()];
        let posted = |languages: serde_json::Value| -> Definition {
            let mut text = json!({"name": "iran-china", "terms": ["Iran"]});
            if !languages.is_null() {
                text["languages"] = languages;
            }
            serde_json::from_value::<DefinitionText>(text)
                .expect("well formed")
                .into_definition(Some(&configured))
                .expect("valid")
        };
        let run = async |candidate: Definition| {
            let backtest = Backtest {
                candidate,
                current: Some(Definition::of(&configured)),
                since: 0,
            };
            run(&db.store, &db.config, &backtest)
                .await
                .expect("backtest")
        };
        let inherited = run(posted(serde_json::Value::Null)).await;
        assert_eq!(titles(&inherited.would_alert), ["Iran talks resume"]);
        assert!(inherited.diff.added.is_empty() && inherited.diff.removed.is_empty());
        let every = run(posted(json!([]))).await;
        assert_eq!(
            titles(&every.diff.added),
            ["Iran in Persian copy", "Iran, language unknown"]
        );
    }

    #[tokio::test]
    async fn the_report_is_the_json_document_of_the_spec() {
        let db = Db::new().await;
        let story = db
            .item("wire", None, "Iran and China sign a pact", 1_764_000_000)
            .await;
        let report = db.run(db.configured(), 1_763_000_000).await;

        assert_eq!(
            serde_json::to_value(&report).expect("json"),
            json!({
                "watchlist": "iran-china",
                "since": "2025-11-13T02:13:20Z",
                "items_scanned": 1,
                "would_alert": [{
                    "story": story.to_string(),
                    "title": "Iran and China sign a pact",
                    "url": "https://wire.example/1764000000",
                    "terms": ["China", "Iran"],
                }],
                "diff": {"added": [], "removed": []},
                "terms": {"China": 1, "Iran": 1},
                "excluded": {"football": 0},
            })
        );
    }

    #[tokio::test]
    async fn a_candidate_that_does_not_compile_is_refused_with_its_problems() {
        let db = Db::new().await;
        let mut broken = db.configured();
        broken.spec.query = Some("Iran AND (".to_string());
        let backtest = Backtest {
            candidate: broken,
            current: Some(db.configured()),
            since: 0,
        };

        let err = run(&db.store, &db.config, &backtest).await.unwrap_err();

        assert!(matches!(err, BacktestError::Invalid(_)), "{err}");
        let problems = err.problems();
        assert!(!problems.is_empty());
        assert!(
            problems[0].starts_with("watch-list `iran-china`: query"),
            "{problems:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_backtest_reads_a_snapshot_while_a_write_is_under_way() {
        let db = Db::new().await;
        db.item("wire", None, "Iran and China sign a pact", 100)
            .await;
        let wire = db.feed_id("wire").await;
        let (started, begun) = tokio::sync::oneshot::channel::<()>();
        let (finish, finished) = tokio::sync::oneshot::channel::<()>();
        let writer = tokio::spawn({
            let store = db.store.clone();
            async move {
                store
                    .transaction(async |tx| {
                        let story = tx.last_story_id().await? + 1;
                        tx.insert_stories(&[story], 200).await?;
                        let row = ItemRow {
                            feed_id: wire,
                            story_id: story,
                            item: NewItem {
                                item_key: "late",
                                title: "Iran votes",
                                ..NewItem::default()
                            },
                            ..ItemRow::default()
                        };
                        tx.insert_items(&[row], 200).await?;
                        let _ = started.send(());
                        let _ = finished.await;
                        Ok(())
                    })
                    .await
            }
        });
        begun.await.expect("the write is under way");

        let during = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            db.run(db.configured(), 0),
        )
        .await
        .expect("a backtest does not wait for the writer");
        let _ = finish.send(());
        writer.await.expect("joined").expect("committed");
        let after = db.run(db.configured(), 0).await;

        assert_eq!(titles(&during.would_alert), ["Iran and China sign a pact"]);
        assert_eq!(
            titles(&after.would_alert),
            ["Iran and China sign a pact", "Iran votes"]
        );
    }

    #[test]
    fn an_api_definition_becomes_a_spec_and_bad_names_and_fields_are_refused() {
        let text: Request = serde_json::from_value(json!({
            "watchlist": {
                "name": " iran ",
                "terms": ["Iran", "SCO"],
                "aliases": {"SCO": ["Shanghai Cooperation Organisation"]},
                "query": "Iran OR SCO",
                "exclude": ["football"],
                "fields": ["title", "Summary"],
                "languages": ["en", "fa"],
            },
            "since": "7d",
        }))
        .expect("a request");
        assert_eq!(text.since.as_deref(), Some("7d"));
        let definition = text.watchlist.into_definition(None).expect("valid");
        assert_eq!(definition.languages, ["en", "fa"]);
        let spec = definition.spec;
        assert_eq!(spec.name, "iran");
        assert_eq!(spec.fields, [Field::Title, Field::Summary]);
        assert_eq!(
            spec.aliases,
            [(
                "SCO".to_string(),
                vec!["Shanghai Cooperation Organisation".to_string()]
            )]
        );
        assert!(spec.acronyms_exact);

        let bad: DefinitionText = serde_json::from_value(json!({
            "name": "", "terms": ["Iran"], "fields": ["body"], "languages": ["English"],
        }))
        .expect("well formed");
        assert_eq!(
            bad.into_definition(None).unwrap_err(),
            [
                "the watch-list's name is empty",
                "field `body` is unknown: expected title, summary, content, categories or article",
                "language `English` is not an ISO 639-1 code like \"en\", \"fa\" or \"zh\"",
            ]
        );
        let unknown = serde_json::from_value::<DefinitionText>(json!({
            "name": "x", "terms": ["Iran"], "webhooks": ["siem"],
        }));
        assert!(unknown.is_err(), "unknown keys are refused");
    }
}
