//! `wirewatch explain URL|ITEM_ID` (SPEC §11): for a stored item, each watch-list's
//! verdict and why: the terms that hit and where, the reason it did not alert, the story
//! it belongs to and the alert (or digest) that covered that story.
//!
//! What was decided comes from the store (the match and its reason, or the miss); what the
//! watch-lists as configured now make of the item's stored text, which is the text that
//! was matched, is worked out again, so an edited watch-list shows its new verdict next
//! to the old one.

use std::fmt;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::config::Config;
use crate::matcher::{Document, Examined, Highlight};
use crate::store::{ExplainedItem, Held, Store};

use super::{CliError, print, print_json, time};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The item: its link (as stored, or canonical), its id in alerts (`item.id`), or its
    /// number in the database.
    pub item: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Explanation {
    items: Vec<ItemExplanation>,
}

#[derive(Debug, Serialize)]
struct ItemExplanation {
    /// The item's number in the database.
    id: i64,
    /// Its identity within its feed: the payload's `item.id`.
    key: String,
    feed: String,
    title: String,
    url: Option<String>,
    first_seen: String,
    story: StoryRef,
    watchlists: Vec<Verdict>,
}

#[derive(Debug, Serialize)]
struct StoryRef {
    id: String,
    feeds: u64,
    items: u64,
}

#[derive(Debug, Serialize)]
struct Verdict {
    watchlist: String,
    /// `alerted` (sent on its own), `matched` (stored; the watch-list has no webhooks),
    /// `digest` (in a digest, or waiting for the next), `suppressed` (see `reason`),
    /// `no_match` (no term hit) or `not_watched` (the watch-list does not follow the feed).
    verdict: &'static str,
    /// Why it did not alert on its own: `backfill`, `same_story`, `excluded`,
    /// `query_false`, `muted`, `rate_limited` or `digest`.
    reason: Option<&'static str>,
    /// For `excluded`: the exclude that vetoed it.
    excluded_by: Option<String>,
    terms: Vec<String>,
    highlights: Vec<Highlight>,
    /// The alert of the item's story for this watch-list (for `same_story`, the earlier
    /// item's).
    alert_id: Option<String>,
    /// The digest that carried it.
    digest_id: Option<String>,
    /// What the watch-list as configured now makes of the stored text: `match`,
    /// `excluded`, `query_false` or `no_match`; `null` when it is no longer configured.
    now: Option<&'static str>,
}

pub(super) async fn explain(config: &Config, args: &ExplainArgs) -> Result<(), CliError> {
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let canonical = url::Url::parse(args.item.trim())
        .map(|url| crate::dedup::canonical_link(&url))
        .unwrap_or_default();
    let found = store
        .explain(&args.item, &canonical)
        .await
        .context("cannot read the item")?;
    store.close().await;
    if found.is_empty() {
        return Err(CliError::Usage(format!(
            "no stored item is `{}` (a link, an item id, or a number; items are kept for \
             `retention.items`, matched ones for `retention.matches`)",
            args.item
        )));
    }
    let explanation = Explanation {
        items: found
            .iter()
            .map(|item| explain_item(config, item))
            .collect::<Result<_, _>>()
            .context("a stored match cannot be read")?,
    };
    if args.json {
        return print_json(&explanation);
    }
    print(Text(&explanation))
}

fn explain_item(
    config: &Config,
    found: &ExplainedItem,
) -> Result<ItemExplanation, serde_json::Error> {
    let item = &found.item;
    let feed = config.feed_index(&item.feed);
    let watches = |w: usize| {
        config
            .watchlists
            .get(w)
            .is_some_and(|list| feed.is_none_or(|f| list.watches(f)))
    };
    let categories: Vec<String> = serde_json::from_str(&item.categories)?;
    let doc = Document {
        title: &item.title,
        summary: &item.summary,
        content: item.content.as_deref().unwrap_or_default(),
        categories: &categories,
        article: item.article.as_deref().unwrap_or_default(),
    };
    let now = config.matcher.examine(&doc, &watches, true);
    let matched: Vec<String> = item
        .watchlists
        .as_deref()
        .map(serde_json::from_str)
        .transpose()?
        .unwrap_or_default();

    let mut names: Vec<&str> = config.watchlists.iter().map(|w| w.name.as_str()).collect();
    for name in found.story_matches.keys().chain(found.misses.keys()) {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let mut watchlists = Vec::with_capacity(names.len());
    for name in names {
        let index = config.watchlist_index(name);
        let current = index.map(|i| current_verdict(&now, i, watches(i)));
        let story_match = found.story_matches.get(name);
        let mut verdict = Verdict {
            watchlist: name.to_owned(),
            verdict: "no_match",
            reason: None,
            excluded_by: None,
            terms: Vec::new(),
            highlights: Vec::new(),
            alert_id: story_match.map(|m| m.id.clone()),
            digest_id: None,
            now: current.as_ref().map(|(now, _, _)| *now),
        };
        if let Some(m) = story_match.filter(|m| m.item_id == item.id) {
            verdict.terms = serde_json::from_str(&m.terms)?;
            verdict.highlights = serde_json::from_str(&m.highlights)?;
            verdict.digest_id = m.digest_id.clone();
            (verdict.verdict, verdict.reason) = match m.reason {
                None if m.sent => ("alerted", None),
                None => ("matched", None),
                Some(Held::Backfill) => ("suppressed", Some(Held::Backfill.as_str())),
                Some(held) if m.awaiting_digest || m.digest_id.is_some() => {
                    ("digest", Some(held.as_str()))
                }
                Some(held) => ("suppressed", Some(held.as_str())),
            };
        } else if matched.iter().any(|m| m == name) {
            // It matched, and its story had this watch-list's match already: a sighting.
            verdict.verdict = "suppressed";
            verdict.reason = Some("same_story");
            if let Some(m) = index.and_then(|i| now.matches.iter().find(|m| m.watchlist == i)) {
                verdict.terms = m.terms.clone();
                verdict.highlights = m.highlights.clone();
            }
        } else if let Some(miss) = found.misses.get(name) {
            verdict.verdict = "suppressed";
            verdict.reason = Some(miss.reason.as_str());
            verdict.excluded_by = miss.term.clone();
            verdict.terms = serde_json::from_str(&miss.terms)?;
            // The story's alert, if any, came from another item: not this item's.
            verdict.alert_id = None;
            verdict.highlights = current.map(|(_, h, _)| h).unwrap_or_default();
        } else {
            verdict.alert_id = None;
            if current.as_ref().is_some_and(|(_, _, watched)| !watched) {
                verdict.verdict = "not_watched";
            }
        }
        watchlists.push(verdict);
    }
    Ok(ItemExplanation {
        id: item.id,
        key: item.item_key.clone(),
        feed: item.feed.clone(),
        title: item.title.clone(),
        url: item.url.clone(),
        first_seen: time(item.first_seen_at),
        story: StoryRef {
            id: item.story_id.to_string(),
            feeds: found.story_feeds,
            items: found.story_items,
        },
        watchlists,
    })
}

/// What watch-list `index` makes of the text now, its highlights, and whether it follows
/// the item's feed.
fn current_verdict(
    now: &Examined,
    index: usize,
    watched: bool,
) -> (&'static str, Vec<Highlight>, bool) {
    if let Some(m) = now.matches.iter().find(|m| m.watchlist == index) {
        return ("match", m.highlights.clone(), watched);
    }
    match now.misses.iter().find(|m| m.watchlist == index) {
        Some(miss) if miss.excluded.is_empty() => ("query_false", miss.highlights.clone(), watched),
        Some(miss) => ("excluded", miss.highlights.clone(), watched),
        None => ("no_match", Vec::new(), watched),
    }
}

/// The explanation as text: each item, then a line per watch-list with its verdict, and
/// the highlights of those whose terms hit.
struct Text<'a>(&'a Explanation);

impl fmt::Display for Text<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        for item in &self.0.items {
            writeln!(
                out,
                "item {} · {} · first seen {}",
                item.id, item.feed, item.first_seen
            )?;
            writeln!(out, "  {}", item.title)?;
            if let Some(url) = &item.url {
                writeln!(out, "  {url}")?;
            }
            writeln!(
                out,
                "  story {}: {} feed(s), {} item(s)",
                item.story.id, item.story.feeds, item.story.items
            )?;
            let width = item
                .watchlists
                .iter()
                .map(|w| w.watchlist.chars().count())
                .max()
                .unwrap_or(0);
            for w in &item.watchlists {
                let mut line = match (w.verdict, w.reason) {
                    ("suppressed", Some("excluded")) => format!(
                        "suppressed: excluded by `{}`",
                        w.excluded_by.as_deref().unwrap_or("?")
                    ),
                    ("suppressed", Some("same_story")) => {
                        "suppressed: its story had alerted already".to_owned()
                    }
                    ("suppressed", Some("query_false")) => {
                        "suppressed: the query was false".to_owned()
                    }
                    (verdict, Some(reason)) => format!("{verdict}: {reason}"),
                    ("no_match", None) => "no term hit".to_owned(),
                    ("not_watched", None) => "does not follow this feed".to_owned(),
                    (verdict, None) => verdict.to_owned(),
                };
                if !w.terms.is_empty() {
                    line.push_str(&format!("; terms {}", w.terms.join(", ")));
                }
                if let Some(id) = &w.alert_id {
                    line.push_str(&format!("; alert {id}"));
                }
                if let Some(id) = &w.digest_id {
                    line.push_str(&format!("; digest {id}"));
                }
                let changed = match (w.now, w.verdict) {
                    (Some("match"), "no_match" | "not_watched") => Some("would match now"),
                    (
                        Some("no_match" | "excluded" | "query_false"),
                        "alerted" | "matched" | "digest",
                    ) => Some("would not match now"),
                    _ => None,
                };
                if let Some(changed) = changed {
                    line.push_str(&format!(" ({changed})"));
                }
                writeln!(out, "  {:width$}  {line}", w.watchlist)?;
                for h in &w.highlights {
                    writeln!(
                        out,
                        "  {:width$}    {} · {}: {}",
                        "", h.field, h.term, h.snippet
                    )?;
                }
            }
        }
        Ok(())
    }
}
