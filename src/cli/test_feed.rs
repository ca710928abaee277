//! `wirewatch test-feed`: one document, from a URL or a file, parsed, keyed and matched
//! as a refresh would ([`refresh::preview_document`]), without a store; prints its items
//! and which watch-lists match them, and why ([`TestFeedOutput`], as text or JSON).

use std::fmt;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;

use crate::config::Config;
use crate::redact;
use crate::refresh::{self, Highlight, PreviewError, Source};
use crate::telemetry::error_chain;

use super::{CliError, print, print_json};

#[derive(Debug, Args)]
pub struct TestFeedArgs {
    /// An http(s) URL or a file path.
    pub source: String,
    /// Only this watch-list.
    #[arg(long)]
    pub watchlist: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `test-feed` found: the document's items, and what each watch-list matched in them.
#[derive(Debug, Serialize)]
struct TestFeedOutput {
    title: Option<String>,
    items: Vec<TestFeedItem>,
    /// Items past the parse stage's item cap, dropped unread.
    dropped_items: usize,
    /// Other elements past their caps (repeated categories, authors, ...), dropped.
    dropped_elements: usize,
}

#[derive(Debug, Serialize)]
struct TestFeedItem {
    key: String,
    title: String,
    link: Option<String>,
    canonical_link: Option<String>,
    published: Option<DateTime<Utc>>,
    matches: Vec<TestFeedMatch>,
    /// Watch-lists whose terms hit and that did not match, and why.
    misses: Vec<TestFeedMiss>,
}

#[derive(Debug, Serialize)]
struct TestFeedMiss {
    watchlist: String,
    /// `excluded` or `query_false`.
    reason: &'static str,
    terms: Vec<String>,
    /// The excludes that hit.
    excluded: Vec<String>,
}

#[derive(Debug, Serialize)]
struct TestFeedMatch {
    watchlist: String,
    terms: Vec<String>,
    highlights: Vec<Highlight>,
}

pub(super) async fn test_feed(config: &Config, args: &TestFeedArgs) -> Result<(), CliError> {
    let only = match &args.watchlist {
        Some(name) => match config.watchlists.iter().position(|w| &w.name == name) {
            Some(i) => Some(i),
            None => return Err(CliError::Usage(format!("no watch-list is named `{name}`"))),
        },
        None => None,
    };
    let source = match url::Url::parse(&args.source) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Source::Url(url),
        _ => Source::Bytes(
            std::fs::read(&args.source).with_context(|| format!("cannot read {}", args.source))?,
        ),
    };
    let shown = match &source {
        Source::Url(url) => redact::url(url, &[]).to_string(),
        Source::Bytes(_) => args.source.clone(),
    };
    let wanted = |i: usize| only.is_none_or(|only| only == i);
    let preview = match refresh::preview_document(config, source, &wanted).await {
        Ok(preview) => preview,
        Err(PreviewError::NotModified) => {
            return Err(anyhow::anyhow!("{shown}: unexpected 304 Not Modified").into());
        }
        Err(err @ PreviewError::Parse(_)) => {
            return Err(anyhow::Error::new(err)
                .context(format!("{shown} is not a usable feed"))
                .into());
        }
        Err(err) => return Err(anyhow::anyhow!("{shown}: {}", error_chain(&err)).into()),
    };
    let items = preview
        .items
        .into_iter()
        .map(|previewed| {
            let matches = previewed
                .matches
                .into_iter()
                .map(|m| TestFeedMatch {
                    watchlist: config.watchlists[m.watchlist].name.clone(),
                    terms: m.terms,
                    highlights: m.highlights,
                })
                .collect();
            let misses = previewed
                .misses
                .into_iter()
                .map(|m| TestFeedMiss {
                    watchlist: config.watchlists[m.watchlist].name.clone(),
                    reason: if m.excluded.is_empty() {
                        "query_false"
                    } else {
                        "excluded"
                    },
                    terms: m.terms,
                    excluded: m.excluded,
                })
                .collect();
            let item = previewed.item;
            TestFeedItem {
                key: previewed.key,
                title: item.title,
                link: item.link.as_ref().map(|l| l.to_string()),
                canonical_link: previewed.canonical,
                published: item.published,
                matches,
                misses,
            }
        })
        .collect();
    let output = TestFeedOutput {
        title: preview.title,
        items,
        dropped_items: preview.dropped_items,
        dropped_elements: preview.dropped_elements,
    };
    if args.json {
        return print_json(&output);
    }
    print(output)
}

impl fmt::Display for TestFeedOutput {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let output = self;
        let matching = output
            .items
            .iter()
            .filter(|i| !i.matches.is_empty())
            .count();
        writeln!(
            out,
            "{}: {} items, {matching} matching",
            output.title.as_deref().unwrap_or("(untitled feed)"),
            output.items.len()
        )?;
        if output.dropped_items + output.dropped_elements > 0 {
            writeln!(
                out,
                "past the parse caps, dropped: {} items (after the first {}), {} repeated elements",
                output.dropped_items,
                refresh::MAX_ITEMS,
                output.dropped_elements
            )?;
        }
        for item in &output.items {
            writeln!(out, "\n* {}", item.title)?;
            if let Some(link) = &item.link {
                writeln!(out, "  {link}")?;
            }
            let published = item.published.map_or("-".into(), |p| p.to_rfc3339());
            writeln!(out, "  published {published}  key {}", item.key)?;
            for m in &item.matches {
                writeln!(out, "  MATCH {}: {}", m.watchlist, m.terms.join(", "))?;
                for h in &m.highlights {
                    writeln!(
                        out,
                        "    {} [{}..{}] {}: {}",
                        h.field.as_str(),
                        h.start,
                        h.end,
                        h.term,
                        h.snippet
                    )?;
                }
            }
            for m in &item.misses {
                let why = if m.excluded.is_empty() {
                    "the query is false".to_owned()
                } else {
                    format!("excluded by {}", m.excluded.join(", "))
                };
                writeln!(
                    out,
                    "  NO {}: {why} (terms {})",
                    m.watchlist,
                    m.terms.join(", ")
                )?;
            }
        }
        Ok(())
    }
}
