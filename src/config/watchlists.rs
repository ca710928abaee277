//! `[[watchlists]]`: each entry into a [`Watchlist`], and all of them into one
//! [`Matcher`]. Feed selectors (a feed's name, or `tag:NAME`) resolve to feed indices
//! through indexes built once, webhook names to webhook indices; terms, aliases, queries
//! and excludes are compiled together, and each compile error is placed at the value it
//! is about. A selector naming a feed, tag or webhook that is declared but invalid gets
//! no second error: its declaration already has one.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

type S<T> = Spanned<T>;

use super::problems::Problems;
use super::raw::RawWatchlist;
use super::values::{MAX_DURATION, parse_schedule_text, unique_name};
use super::{Declared, Feed, OVERFLOW_DIGEST, RateLimit, Watchlist, Webhook};
use crate::matcher::{self, Field, Matcher, WatchlistSpec};

/// The watch-lists and their matcher (`None` when a watch-list does not compile). Feeds
/// are found through `feed_indexes` (each feed's index by name) and an index by tag,
/// built on the first `tag:` selector: with 100,000 feeds, a scan of them per selector
/// would make loading quadratic.
pub(super) fn build_watchlists(
    raw: Vec<RawWatchlist>,
    feeds: &[Feed],
    feed_indexes: &HashMap<String, usize>,
    webhooks: &[Webhook],
    declared: &Declared,
    p: &mut Problems<'_>,
) -> (Vec<Watchlist>, Option<Matcher>) {
    let mut feeds_by_tag: Option<HashMap<&str, Vec<usize>>> = None;
    let webhook_indexes: HashMap<&str, usize> = webhooks
        .iter()
        .enumerate()
        .map(|(index, hook)| (hook.name.as_str(), index))
        .collect();
    let mut watchlists = Vec::with_capacity(raw.len());
    let mut specs = Vec::with_capacity(raw.len());
    let mut spans = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for list in raw {
        let Some(name) = unique_name(&list.name, "watch-list", &mut seen, p) else {
            continue;
        };
        let selected = list.feeds.as_ref().map(|selectors| {
            let mut set = HashSet::new();
            for selector in selectors {
                let text = selector.get_ref().trim();
                if let Some(tag) = text.strip_prefix("tag:") {
                    let by_tag = feeds_by_tag.get_or_insert_with(|| index_by_tag(feeds));
                    set.extend(by_tag.get(tag).into_iter().flatten().copied());
                    if !declared.tags.contains(tag) {
                        p.at(
                            selector.span(),
                            format!("watch-list `{name}`: no feed has the tag `{tag}`"),
                        );
                    }
                } else if let Some(&i) = feed_indexes.get(text) {
                    set.insert(i);
                } else if !declared.feeds.contains(text) {
                    p.at(
                        selector.span(),
                        format!("watch-list `{name}`: no feed is named `{text}` (use `tag:NAME` for a tag)"),
                    );
                }
            }
            set
        });
        let mut hooks = Vec::new();
        for hook in &list.webhooks {
            match webhook_indexes.get(hook.get_ref().as_str()) {
                Some(&i) => hooks.push(i),
                None if declared.webhooks.contains(hook.get_ref()) => {}
                None => p.at(
                    hook.span(),
                    format!(
                        "watch-list `{name}`: no webhook is named `{}`",
                        hook.get_ref()
                    ),
                ),
            }
        }
        let mut fields = Vec::new();
        if let Some(list_fields) = &list.fields {
            if list_fields.get_ref().is_empty() {
                p.at(
                    list_fields.span(),
                    "fields is empty: leave it out to search all four",
                );
            }
            for field in list_fields.get_ref() {
                match Field::parse(field.get_ref()) {
                    Some(f) => fields.push(f),
                    None => p.at(
                        field.span(),
                        format!(
                            "field `{}` is unknown: expected title, summary, content, categories or article",
                            field.get_ref()
                        ),
                    ),
                }
            }
        }
        let spec = WatchlistSpec {
            name: name.clone(),
            terms: list
                .terms
                .get_ref()
                .iter()
                .map(|t| t.get_ref().clone())
                .collect(),
            aliases: list
                .aliases
                .iter()
                .map(|(term, aliases)| {
                    (
                        term.clone(),
                        aliases
                            .get_ref()
                            .iter()
                            .map(|a| a.get_ref().clone())
                            .collect(),
                    )
                })
                .collect(),
            query: list.query.as_ref().map(|q| q.get_ref().clone()),
            exclude: list.exclude.iter().map(|e| e.get_ref().clone()).collect(),
            fields,
            acronyms_exact: list.acronyms_exact.unwrap_or(true),
        };
        let escalate = escalate(&list, &name, p);
        let own_digest =
            list.digest
                .as_ref()
                .and_then(|text| match parse_schedule_text(text.get_ref()) {
                    Ok(schedule) => Some(schedule),
                    Err(message) => {
                        p.at(
                            text.span(),
                            format!("watch-list `{name}`: digest {message}"),
                        );
                        None
                    }
                });
        let max_alerts = list
            .max_alerts
            .as_ref()
            .and_then(|text| rate_limit(text, &name, p));
        let digest = match (&own_digest, max_alerts) {
            (Some(schedule), _) => Some(schedule.clone()),
            (None, Some(_)) => parse_schedule_text(OVERFLOW_DIGEST).ok(),
            (None, None) => None,
        };
        let languages = languages(&list, &name, p);
        watchlists.push(Watchlist {
            name,
            feeds: selected,
            webhooks: hooks,
            escalate,
            digest_only: own_digest.is_some() && max_alerts.is_none(),
            digest,
            max_alerts,
            spec: spec.clone(),
            languages,
        });
        specs.push(spec);
        spans.push(list);
    }
    match Matcher::compile(&specs) {
        Ok(matcher) => (watchlists, Some(matcher)),
        Err(errors) => {
            let by_name: HashMap<&str, usize> = specs
                .iter()
                .enumerate()
                .map(|(index, spec)| (spec.name.as_str(), index))
                .collect();
            for error in errors {
                let span = by_name
                    .get(error.watchlist.as_str())
                    .and_then(|&i| spans.get(i))
                    .map_or(0..0, |raw| compile_error_span(raw, &error.location));
                p.at(span, error.to_string());
            }
            (watchlists, None)
        }
    }
}

/// `escalate = [5, 20]`: numbers of distinct feeds, each at least 2 (one feed is where
/// the story began), strictly increasing, at most [`MAX_ESCALATE`] of them.
fn escalate(list: &RawWatchlist, name: &str, p: &mut Problems<'_>) -> Vec<u32> {
    let Some(raw) = &list.escalate else {
        return Vec::new();
    };
    if raw.get_ref().len() > MAX_ESCALATE {
        p.at(
            raw.span(),
            format!("watch-list `{name}`: escalate has more than {MAX_ESCALATE} thresholds"),
        );
    }
    let mut thresholds: Vec<u32> = Vec::with_capacity(raw.get_ref().len());
    for value in raw.get_ref() {
        let n = *value.get_ref();
        match u32::try_from(n) {
            Ok(n) if n >= 2 => {
                if thresholds.last().is_some_and(|&last| n <= last) {
                    p.at(
                        value.span(),
                        format!(
                            "watch-list `{name}`: escalate thresholds must increase ({n} follows {})",
                            thresholds.last().copied().unwrap_or_default()
                        ),
                    );
                } else {
                    thresholds.push(n);
                }
            }
            _ => p.at(
                value.span(),
                format!(
                    "watch-list `{name}`: escalate threshold {n} is not a number of feeds of at least 2"
                ),
            ),
        }
    }
    thresholds
}

/// `languages = ["en", "fa"]`: ISO 639-1 codes, two lower-case letters each.
fn languages(list: &RawWatchlist, name: &str, p: &mut Problems<'_>) -> Vec<String> {
    let mut codes = Vec::new();
    for code in list.languages.iter().flatten() {
        let text = code.get_ref().trim();
        if crate::language::is_iso639_1(text) {
            codes.push(text.to_owned());
        } else {
            p.at(
                code.span(),
                format!(
                    "watch-list `{name}`: language `{text}` is not an ISO 639-1 code like \"en\", \"fa\" or \"zh\""
                ),
            );
        }
    }
    codes
}

/// `max_alerts = "N/PERIOD"`: a positive count of single alerts per period, the period a
/// duration (`"30m"`, `"1h"`) or a bare unit (`"h"`, `"day"`).
fn rate_limit(text: &S<String>, name: &str, p: &mut Problems<'_>) -> Option<RateLimit> {
    let parsed = text.get_ref().split_once('/').and_then(|(count, period)| {
        let count = count.trim().parse::<u32>().ok().filter(|&n| n > 0)?;
        let period = period.trim();
        let period = humantime::parse_duration(period)
            .or_else(|_| humantime::parse_duration(&format!("1{period}")))
            .ok()
            .filter(|d| *d >= Duration::from_secs(1) && *d <= MAX_DURATION)?;
        Some(RateLimit { count, period })
    });
    if parsed.is_none() {
        p.at(
            text.span(),
            format!(
                "watch-list `{name}`: max_alerts `{}` is not a rate: write it like \"20/h\" or \"100/1d\" (a positive count per period)",
                text.get_ref()
            ),
        );
    }
    parsed
}

/// The most thresholds one watch-list's `escalate` may list.
const MAX_ESCALATE: usize = 16;

/// The indices of the feeds carrying each tag, in feed order.
fn index_by_tag(feeds: &[Feed]) -> HashMap<&str, Vec<usize>> {
    let mut by_tag: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, feed) in feeds.iter().enumerate() {
        for tag in &feed.tags {
            let indices = by_tag.entry(tag.as_str()).or_default();
            // A tag written twice on one feed lists the feed once.
            if indices.last() != Some(&index) {
                indices.push(index);
            }
        }
    }
    by_tag
}

/// Points a matcher compile error at the value it is about.
fn compile_error_span(raw: &RawWatchlist, location: &matcher::Location) -> Range<usize> {
    use matcher::Location;
    match location {
        Location::Term(i) => raw
            .terms
            .get_ref()
            .get(*i)
            .map_or(raw.terms.span(), Spanned::span),
        Location::Alias { term, index } => raw.aliases.get(term).map_or(raw.name.span(), |a| {
            a.get_ref().get(*index).map_or(a.span(), Spanned::span)
        }),
        Location::Query { offset } => raw.query.as_ref().map_or(raw.name.span(), |q| {
            // The span starts at the opening quote; the offset counts from the text inside.
            let start = q.span().start + 1 + offset;
            start..start
        }),
        Location::Exclude(i) => raw.exclude.get(*i).map_or(raw.name.span(), Spanned::span),
        Location::Watchlist => raw.name.span(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load;

    const THREE_FEEDS: &str = r#"
[[feeds]]
name = "a"
url = "https://a.example.org/rss"
tags = ["wire"]

[[feeds]]
name = "b"
url = "https://b.example.org/rss"
tags = ["wire", "asia", "asia"]

[[feeds]]
name = "c"
url = "https://c.example.org/rss"
"#;

    #[test]
    fn feed_selectors_pick_feeds_by_name_and_by_tag() {
        let source = format!(
            "{THREE_FEEDS}
[[watchlists]]
name = \"named\"
terms = [\"x\"]
feeds = [\"c\"]

[[watchlists]]
name = \"tagged\"
terms = [\"x\"]
feeds = [\"tag:asia\"]

[[watchlists]]
name = \"both\"
terms = [\"x\"]
feeds = [\"tag:wire\", \"c\", \"a\"]

[[watchlists]]
name = \"all\"
terms = [\"x\"]
"
        );
        let config = load(&source).unwrap();
        let selected: Vec<Option<Vec<usize>>> = config
            .watchlists
            .iter()
            .map(|list| {
                list.feeds.as_ref().map(|set| {
                    let mut feeds: Vec<usize> = set.iter().copied().collect();
                    feeds.sort_unstable();
                    feeds
                })
            })
            .collect();
        assert_eq!(
            selected,
            [Some(vec![2]), Some(vec![1]), Some(vec![0, 1, 2]), None]
        );
    }

    #[test]
    fn a_selector_naming_no_feed_or_tag_is_reported_where_it_is_written() {
        let source = format!(
            "{THREE_FEEDS}
[[watchlists]]
name = \"w\"
terms = [\"x\"]
feeds = [\"d\", \"tag:europe\"]
"
        );
        let messages: Vec<(Option<usize>, Option<usize>, String)> = load(&source)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|problem| (problem.line, problem.column, problem.message))
            .collect();
        assert_eq!(
            messages,
            [
                (
                    Some(19),
                    Some(10),
                    "watch-list `w`: no feed is named `d` (use `tag:NAME` for a tag)".to_string()
                ),
                (
                    Some(19),
                    Some(15),
                    "watch-list `w`: no feed has the tag `europe`".to_string()
                ),
            ]
        );
    }
}
